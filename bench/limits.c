// limits.c - the limits workload: what concurrency limits cost dispatch.
// One run queues `jobs` plain jobs of one type and `jobs` jobs of another
// spread over `keys` concurrency keys (limit 2; each key's jobs queued
// together, so most takes meet a key at its limit and set jobs aside),
// with no worker serving either; then drains each type in turn with a
// worker of o->workers slots and a no-op handler, timing it from the
// worker's start to its last Complete reply. Both rates come from the
// same server in the same run; the figure to watch is their ratio. Each
// drain also gives the server's CPU per job (from /proc), steadier than
// the rates on a shared machine.
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMITS_KEY_LIMIT 2

// Queues jobs of type, keyed (key i * keys / jobs) when keys > 0.
static int
fill(anvil_client *c, const char *type, long jobs, long keys)
{
    static struct anvil_job_spec      specs[ANVIL_SUBMIT_MANY_MAX];
    static struct anvil_job_opts      opts[ANVIL_SUBMIT_MANY_MAX];
    static struct anvil_submit_result res[ANVIL_SUBMIT_MANY_MAX];
    static char                       names[ANVIL_SUBMIT_MANY_MAX][24];
    for (long at = 0; at < jobs;) {
        size_t n = 0;
        for (; n < ANVIL_SUBMIT_MANY_MAX && at < jobs; n++, at++) {
            opts[n] = (struct anvil_job_opts) { 0 };
            if (keys > 0) {
                snprintf(names[n], sizeof(names[n]), "k%ld", at * keys / jobs);
                opts[n].concurrency_key   = names[n];
                opts[n].concurrency_limit = LIMITS_KEY_LIMIT;
            }
            specs[n] = (struct anvil_job_spec) {
                .type = type, .payload = "{}", .len = 2, .opts = &opts[n]
            };
        }
        struct anvil_error err    = { 0 };
        size_t             failed = 0;
        if (anvil_job_submit_many(c, specs, n, res, &failed, &err) != ANVIL_OK
            || failed > 0) {
            fprintf(
                stderr, "anvil-bench: limits: submit failed: %s\n", err.msg);
            return -1;
        }
    }
    return 0;
}

// Drains type with a fresh worker: jobs per second, and the server's CPU
// per job in microseconds (the steadier figure on a shared machine).
static int
drain(const struct bench_opts *o, struct bench_server *s, anvil_client *c,
    const char *type, long jobs, double *rate, double *cpu_us)
{
    _Atomic uint64_t handled = 0;
    anvil_worker    *w       = NULL;
    double           cpu0    = bench_server_cpu_s(s);
    int64_t          t0      = bench_now_ns();
    if (bench_worker_start(
            s, o->workers, type, bench_noop_handler, &handled, &w)
        != 0)
        return -1;
    int64_t deadline = t0 + (60 + jobs / 1000) * 1000000000LL;
    bool    ok   = bench_wait_handled(w, &handled, (uint64_t) jobs, deadline);
    int64_t t1   = bench_now_ns();
    double  cpu1 = bench_server_cpu_s(s);
    anvil_worker_free(w);
    if (!ok) {
        fprintf(stderr, "anvil-bench: limits: %llu of %ld jobs drained\n",
            (unsigned long long) atomic_load(&handled), jobs);
        return -1;
    }
    *rate   = (double) jobs / ((double) (t1 - t0) / 1e9);
    *cpu_us = (cpu1 - cpu0) / (double) jobs * 1e6;
    return bench_check_drained(c, type);
}

int
bench_limits(const struct bench_opts *o, struct bench_server *s, long jobs,
    long keys, struct result *r)
{
    char          plain[64], keyed[64];
    anvil_client *c          = NULL;
    double        plain_rate = 0, keyed_rate = 0, plain_cpu = 0, keyed_cpu = 0;
    bench_type_name(plain, sizeof(plain), "plain");
    bench_type_name(keyed, sizeof(keyed), "keyed");
    if (bench_client_open(s, &c) != 0)
        return -1;
    int rc = fill(c, plain, jobs, 0);
    if (rc == 0)
        rc = fill(c, keyed, jobs, keys);
    if (rc == 0)
        rc = drain(o, s, c, plain, jobs, &plain_rate, &plain_cpu);
    if (rc == 0)
        rc = drain(o, s, c, keyed, jobs, &keyed_rate, &keyed_cpu);
    anvil_client_close(c);
    if (rc != 0)
        return -1;
    r->workload = "limits";
    snprintf(r->sizes, sizeof(r->sizes),
        "jobs=%ld keys=%ld limit=%d workers=%d", jobs, keys, LIMITS_KEY_LIMIT,
        o->workers);
    result_add(r, "plain_rate", "plain queue: drain", "jobs/s", plain_rate);
    result_add(r, "keyed_rate", "keyed queue: drain", "jobs/s", keyed_rate);
    result_add(
        r, "ratio", "keyed / plain", "x", result_ratio(keyed_rate, plain_rate));
    result_add(
        r, "plain_cpu_us", "plain queue: server CPU per job", "us", plain_cpu);
    result_add(
        r, "keyed_cpu_us", "keyed queue: server CPU per job", "us", keyed_cpu);
    result_add(r, "cpu_ratio", "server CPU per job, keyed / plain", "x",
        result_ratio(keyed_cpu, plain_cpu));
    return 0;
}
