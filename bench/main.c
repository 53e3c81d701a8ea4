// main.c - anvil-bench: parse flags, run each workload --runs times on a
// fresh server, print the medians. See bench.h for the parts and
// docs/performance.md for the figures.
#include "bench.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ANVIL_BIN_DIR
#define ANVIL_BIN_DIR "bin"
#endif

// Sizes when not given: --workload all (throughput, latency, workflow)
// takes about a minute on a 2-core machine (make bench must stay under 5
// minutes); scale, not part of all, a few minutes more.
#define ALL_JOBS_THROUGHPUT 100000
#define ALL_JOBS_LATENCY 5000
#define SCALE_JOBS 50000
// limits: jobs per queue and keys (the full figure: --jobs 100000
// --keys 10000).
#define LIMITS_JOBS 20000
#define LIMITS_KEYS 2000
#define SCALE_QUEUED 1000000
#define SCALE_FILL_BATCH 1000

static const char usage_text[]
    = "usage: anvil-bench [options]\n"
      "\n"
      "Starts anvild on a temporary database (tcp loopback), runs workers\n"
      "through the worker library and measures end to end.\n"
      "\n"
      "  --workload W      throughput, latency, workflow, scale, http, events\n"
      "                    or all (default all: the first three; scale takes\n"
      "                    longer; http: single submits over nng and over\n"
      "                    HTTP, and nng with metrics on and off, on two\n"
      "                    anvilds; events: throughput with events on and\n"
      "                    --no-events, on two anvilds; limits: a plain\n"
      "                    queue and one over --keys concurrency keys\n"
      "                    drained in turn, with their ratio and the\n"
      "                    server's CPU per job of each)\n"
      "  --jobs N          jobs: throughput 100000, latency 5000, scale 50000\n"
      "                    limits 20000 per queue\n"
      "                    (per rate measured)\n"
      "  --warmup N        latency warm-up jobs (default 200)\n"
      "  --workers W       worker slots (default 4)\n"
      "  --batch B         jobs per submit call, 1 to 1000 (default 32):\n"
      "                    anvil_job_submit_many; 1 = anvil_job_submit\n"
      "  --producers P     submitting threads, one call in flight each\n"
      "                    (default 1; --batch 1 --producers 32 is the old\n"
      "                    single-submit mode)\n"
      "  --queued Q        scale: jobs queued in the full server (1000000)\n"
      "  --fill-batch B    scale: jobs per submit call of the fill (1000)\n"
      "  --keys K          limits: concurrency keys (2000; the full figure:\n"
      "                    --jobs 100000 --keys 10000)\n"
      "  --chains C        workflow chains (default 1000)\n"
      "  --steps S         steps per chain (default 10)\n"
      "  --fan F           fan-out width of the 1 -> F -> 1 workflow (1000)\n"
      "  --durability D    full (default) or normal, passed to anvild\n"
      "  --transport T     how throughput and latency submit jobs: nng\n"
      "                    (default; the SDK) or http (POST /v1/jobs, or\n"
      "                    /v1/jobs:batch when --batch > 1, one keep-alive\n"
      "                    connection per producer; anvild gets --http)\n"
      "  --runs R          repeat each workload R times, report medians (1)\n"
      "  --json            one JSON object per workload instead of tables\n"
      "  --server URL      use a running anvild instead of starting one\n"
      "  --http URL        with --server and --transport http: its HTTP\n"
      "                    endpoint, http://IPv4:port\n"
      "  --anvild PATH     the anvild to start (default " ANVIL_BIN_DIR
      "/anvild)\n"
      "  --store URL       start anvild on this PostgreSQL database\n"
      "                    (anvild --store) instead of an SQLite file; give\n"
      "                    an empty database: runs add to what is there\n";

static int
parse_long(const char *flag, const char *s, long min, long max, long *out)
{
    char *end;
    errno  = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        fprintf(stderr,
            "anvil-bench: %s wants a number from %ld to %ld, "
            "not \"%s\"\n",
            flag, min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int
parse_int(const char *flag, const char *s, long min, long max, int *out)
{
    long v;
    if (parse_long(flag, s, min, max, &v) != 0)
        return -1;
    *out = (int) v;
    return 0;
}

static bool
one_of(const char *s, const char *const *set)
{
    for (; *set != NULL; set++) {
        if (strcmp(s, *set) == 0)
            return true;
    }
    return false;
}

// Applies the flag at argv[*i] (and its value). Returns 0, 1 for --help,
// or -1 after printing what is wrong.
static int
parse_flag(struct bench_opts *o, int argc, char **argv, int *i)
{
    static const char *const workloads[]  = { "throughput", "latency",
         "workflow", "scale", "http", "events", "limits", "all", NULL };
    static const char *const modes[]      = { "full", "normal", NULL };
    static const char *const transports[] = { "nng", "http", NULL };
    const char              *f            = argv[*i];
    if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0)
        return 1;
    if (strcmp(f, "--json") == 0) {
        o->json = true;
        return 0;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "anvil-bench: %s needs a value (see --help)\n", f);
        return -1;
    }
    const char *v = argv[++*i];
    if (strcmp(f, "--workload") == 0 && one_of(v, workloads))
        o->workload = v;
    else if (strcmp(f, "--durability") == 0 && one_of(v, modes))
        o->durability = v;
    else if (strcmp(f, "--transport") == 0 && one_of(v, transports))
        o->transport = v;
    else if (strcmp(f, "--workload") == 0 || strcmp(f, "--durability") == 0
        || strcmp(f, "--transport") == 0) {
        fprintf(stderr, "anvil-bench: bad %s \"%s\" (see --help)\n", f, v);
        return -1;
    } else if (strcmp(f, "--jobs") == 0)
        return parse_long(f, v, 1, 100000000, &o->jobs);
    else if (strcmp(f, "--warmup") == 0)
        return parse_long(f, v, 0, 1000000, &o->warmup);
    else if (strcmp(f, "--workers") == 0)
        return parse_int(f, v, 1, 1024, &o->workers);
    else if (strcmp(f, "--batch") == 0)
        return parse_int(f, v, 1, ANVIL_SUBMIT_MANY_MAX, &o->batch);
    else if (strcmp(f, "--producers") == 0)
        return parse_int(f, v, 1, BENCH_MAX_PRODUCERS, &o->producers);
    else if (strcmp(f, "--queued") == 0)
        return parse_long(f, v, 1, 100000000, &o->queued);
    else if (strcmp(f, "--keys") == 0)
        return parse_long(f, v, 1, 10000000, &o->keys);
    else if (strcmp(f, "--fill-batch") == 0)
        return parse_int(f, v, 1, ANVIL_SUBMIT_MANY_MAX, &o->fill_batch);
    else if (strcmp(f, "--chains") == 0)
        return parse_int(f, v, 1, 1000000, &o->chains);
    else if (strcmp(f, "--steps") == 0)
        return parse_int(f, v, 2, 10000, &o->steps);
    else if (strcmp(f, "--fan") == 0)
        return parse_int(f, v, 1, 9998, &o->fan);
    else if (strcmp(f, "--runs") == 0)
        return parse_int(f, v, 1, 100, &o->runs);
    else if (strcmp(f, "--server") == 0)
        o->server_url = v;
    else if (strcmp(f, "--anvild") == 0)
        o->anvild = v;
    else if (strcmp(f, "--store") == 0)
        o->store = v;
    else if (strcmp(f, "--http") == 0)
        o->http_url = v;
    else {
        fprintf(stderr, "anvil-bench: unknown option %s (see --help)\n", f);
        return -1;
    }
    return 0;
}

static int
parse_args(struct bench_opts *o, int argc, char **argv)
{
    *o = (struct bench_opts) { .workload = "all",
        .jobs                            = -1,
        .warmup                          = 200,
        .workers                         = 4,
        .batch                           = 32,
        .producers                       = 1,
        .queued                          = SCALE_QUEUED,
        .keys                            = LIMITS_KEYS,
        .fill_batch                      = SCALE_FILL_BATCH,
        .chains                          = 1000,
        .steps                           = 10,
        .fan                             = 1000,
        .durability                      = "full",
        .transport                       = "nng",
        .runs                            = 1,
        .anvild                          = ANVIL_BIN_DIR "/anvild" };
    for (int i = 1; i < argc; i++) {
        int rc = parse_flag(o, argc, argv, &i);
        if (rc != 0)
            return rc;
    }
    return 0;
}

// Library warnings and errors go to stderr; the rest is dropped.
static void
log_line(void *arg, int level, const char *line)
{
    (void) arg;
    if (level <= 1)
        fprintf(stderr, "anvil-bench: libanvil: %s\n", line);
}

enum workload {
    WL_THROUGHPUT,
    WL_LATENCY,
    WL_WORKFLOW,
    WL_SCALE,
    WL_HTTP,
    WL_EVENTS,
    WL_LIMITS
};

static int
run_once(const struct bench_opts *o, enum workload wl, struct result *r)
{
    struct bench_server s;
    long                jobs = o->jobs;
    memset(r, 0, sizeof(*r));
    if (wl == WL_HTTP) // starts its own servers
        return bench_compare(o, jobs > 0 ? jobs : ALL_JOBS_THROUGHPUT,
            jobs > 0 ? (jobs + 19) / 20 : ALL_JOBS_LATENCY, r);
    if (wl == WL_EVENTS) // starts its own servers
        return bench_events(o, jobs > 0 ? jobs : ALL_JOBS_THROUGHPUT, r);
    if (bench_server_start(o, &s) != 0)
        return -1;
    int rc = -1;
    switch (wl) {
    case WL_THROUGHPUT:
        rc = bench_throughput(o, &s, jobs > 0 ? jobs : ALL_JOBS_THROUGHPUT, r);
        break;
    case WL_LATENCY:
        rc = bench_latency(o, &s, jobs > 0 ? jobs : ALL_JOBS_LATENCY, r);
        break;
    case WL_WORKFLOW:
        rc = bench_workflow(o, &s, o->chains, o->steps, o->fan, r);
        break;
    case WL_SCALE:
        rc = bench_scale(o, &s, jobs > 0 ? jobs : SCALE_JOBS, r);
        break;
    case WL_LIMITS:
        rc = bench_limits(o, &s, jobs > 0 ? jobs : LIMITS_JOBS, o->keys, r);
        break;
    case WL_HTTP:
    case WL_EVENTS:
        break;
    }
    if (bench_server_stop(&s) != 0)
        rc = -1;
    return rc;
}

static int
run_workload(const struct bench_opts *o, enum workload wl, const char *name)
{
    struct result *runs = calloc((size_t) o->runs, sizeof(*runs));
    struct result  med;
    if (runs == NULL) {
        fprintf(stderr, "anvil-bench: out of memory\n");
        return -1;
    }
    for (int i = 0; i < o->runs; i++) {
        if (!o->json)
            fprintf(stderr, "anvil-bench: %s, run %d of %d ...\n", name, i + 1,
                o->runs);
        if (run_once(o, wl, &runs[i]) != 0) {
            fprintf(stderr, "anvil-bench: %s run %d failed\n", name, i + 1);
            free(runs);
            return -1;
        }
    }
    report_median(runs, o->runs, &med);
    report_result(o, &med, o->runs);
    free(runs);
    return 0;
}

int
main(int argc, char **argv)
{
    struct bench_opts o;
    int               rc = parse_args(&o, argc, argv);
    if (rc > 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (rc < 0)
        return 2;
    // A server or worker connection that drops must not kill us.
    signal(SIGPIPE, SIG_IGN);
    anvil_logger_set(log_line, NULL);
    report_machine(&o);
    bool all = strcmp(o.workload, "all") == 0;
    if (rc == 0 && (all || strcmp(o.workload, "throughput") == 0))
        rc = run_workload(&o, WL_THROUGHPUT, "throughput");
    if (rc == 0 && (all || strcmp(o.workload, "latency") == 0))
        rc = run_workload(&o, WL_LATENCY, "latency");
    if (rc == 0 && (all || strcmp(o.workload, "workflow") == 0))
        rc = run_workload(&o, WL_WORKFLOW, "workflow");
    if (rc == 0 && strcmp(o.workload, "scale") == 0)
        rc = run_workload(&o, WL_SCALE, "scale");
    if (rc == 0 && strcmp(o.workload, "http") == 0)
        rc = run_workload(&o, WL_HTTP, "http");
    if (rc == 0 && strcmp(o.workload, "events") == 0)
        rc = run_workload(&o, WL_EVENTS, "events");
    if (rc == 0 && strcmp(o.workload, "limits") == 0)
        rc = run_workload(&o, WL_LIMITS, "limits");
    return rc == 0 ? 0 : 1;
}
