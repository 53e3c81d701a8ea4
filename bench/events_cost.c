// events_cost.c - the events workload: what writing the event stream
// costs. Two anvilds per run on fresh databases, events on (the default)
// and --no-events, each with the throughput workload (batched submits, the
// headline figure) and then single submits from BENCH_HTTP_CONNS
// producers, in alternating order from run to run so that neither always
// goes first; the ratios compare like with like within one run.
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { ON_BATCHED, ON_SINGLE, OFF_BATCHED, OFF_SINGLE, N_PARTS };

// One anvild (events on or off): batched, then single submits.
static int
one_server(const struct bench_opts *o, bool off, long jobs, struct result *res)
{
    struct bench_opts   p = *o;
    struct bench_server s;
    p.no_events = off;
    if (!o->json)
        fprintf(stderr, "anvil-bench: events: %s ...\n",
            off ? "--no-events" : "events on");
    if (bench_server_start(&p, &s) != 0)
        return -1;
    int rc
        = bench_throughput(&p, &s, jobs, &res[off ? OFF_BATCHED : ON_BATCHED]);
    p.batch     = 1;
    p.producers = BENCH_HTTP_CONNS;
    if (rc == 0)
        rc = bench_throughput(&p, &s, jobs, &res[off ? OFF_SINGLE : ON_SINGLE]);
    if (bench_server_stop(&s) != 0)
        rc = -1;
    return rc;
}

// The figures of one pair (batched or single); keys and labels are
// literals, as result_add keeps the pointers.
struct pair_names {
    const char *on, *off, *ratio, *on_cpu, *off_cpu;
    const char *l_on, *l_off, *l_ratio, *l_on_cpu, *l_off_cpu;
};

static const struct pair_names batched_names = { "batched_on_jobs_per_s",
    "batched_off_jobs_per_s", "ratio_batched", "batched_on_cpu_us",
    "batched_off_cpu_us", "events on: batched submits, end to end",
    "--no-events: batched submits, end to end",
    "events on / off: batched submits", "events on: server CPU per job",
    "--no-events: server CPU per job" };

static const struct pair_names single_names = { "single_on_jobs_per_s",
    "single_off_jobs_per_s", "ratio_single", "single_on_cpu_us",
    "single_off_cpu_us", "events on: single submits, end to end",
    "--no-events: single submits, end to end",
    "events on / off: single submits", "events on: server CPU per job, single",
    "--no-events: server CPU per job, single" };

static void
add_pair(struct result *r, const struct result *on, const struct result *off,
    const struct pair_names *n)
{
    result_add(r, n->on, n->l_on, "jobs/s", result_fig(on, "jobs_per_s"));
    result_add(r, n->off, n->l_off, "jobs/s", result_fig(off, "jobs_per_s"));
    result_add(r, n->ratio, n->l_ratio, "x",
        result_ratio(
            result_fig(on, "jobs_per_s"), result_fig(off, "jobs_per_s")));
    result_add(r, n->on_cpu, n->l_on_cpu, "us",
        result_fig(on, "server_cpu_us_per_unit"));
    result_add(r, n->off_cpu, n->l_off_cpu, "us",
        result_fig(off, "server_cpu_us_per_unit"));
}

int
bench_events(const struct bench_opts *o, long jobs, struct result *r)
{
    static struct result res[N_PARTS]; // large; one run at a time
    static int           runs;         // alternates which server goes first
    if (o->server_url != NULL) {
        fprintf(stderr,
            "anvil-bench: the events workload starts its own anvilds (events "
            "on and off); it cannot use --server\n");
        return -1;
    }
    memset(res, 0, sizeof(res));
    r->workload = "events";
    snprintf(r->sizes, sizeof(r->sizes),
        "jobs=%ld workers=%d producers=%d batch=%d, then %d single", jobs,
        o->workers, o->producers, o->batch, BENCH_HTTP_CONNS);
    snprintf(r->notes, sizeof(r->notes),
        "two anvilds on fresh databases, events on (the default: three "
        "events per job, submitted, started, succeeded, each written in the "
        "transaction of its change) and --no-events; on each, the "
        "throughput workload with batched submits and then with single "
        "submits from %d producers. The servers alternate which runs first "
        "from run to run. Target: events on >= 0.9x off",
        BENCH_HTTP_CONNS);
    bool off_first = runs++ % 2 == 1;
    int  rc        = one_server(o, off_first, jobs, res);
    if (rc == 0)
        rc = one_server(o, !off_first, jobs, res);
    if (rc != 0)
        return -1;
    add_pair(r, &res[ON_BATCHED], &res[OFF_BATCHED], &batched_names);
    add_pair(r, &res[ON_SINGLE], &res[OFF_SINGLE], &single_names);
    return 0;
}
