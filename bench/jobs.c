// jobs.c - the throughput and latency workloads: tiny no-op jobs submitted
// by the SDK (or, with --transport http, by HTTP/JSON requests), run by a
// worker-library worker in this process, over the real transport.
#include "bench.h"

#include <anvil/worker.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// With --transport http, the server's HTTP endpoint (else NULL).
static int
http_endpoint(
    const struct bench_opts *o, const struct bench_server *s, const char **url)
{
    *url = NULL;
    if (strcmp(o->transport, "http") != 0)
        return 0;
    if (s->http_url[0] == '\0') {
        fprintf(stderr,
            "anvil-bench: --transport http with --server needs --http URL, "
            "the server's HTTP endpoint\n");
        return -1;
    }
    *url = s->http_url;
    return 0;
}

// ---- throughput ----

// Jobs of the submit-only phase that follows the end-to-end one.
#define SUBMIT_ONLY_JOBS 50000

static void
tp_figures(struct result *r, const struct submitter *sub, int64_t end_ns)
{
    double total = (double) (end_ns - sub->t0) / 1e9;
    result_add(r, "jobs_per_s", "end to end (first submit -> last complete)",
        "jobs/s", (double) sub->jobs / total);
    result_add(r, "submit_per_s", "submit rate, workers running", "jobs/s",
        bench_submit_rate(sub));
    result_add(r, "elapsed_s", "elapsed", "s", total);
    result_add(
        r, "submit_s", "submitting", "s", (double) (sub->t1 - sub->t0) / 1e9);
}

static int
throughput_measure(struct submitter *sub, anvil_worker *w,
    _Atomic uint64_t *handled, struct bench_server *s, struct result *r)
{
    double cpu0  = bench_server_cpu_s(s);
    double self0 = bench_self_cpu_s();
    if (bench_submit(sub) != 0)
        return -1;
    int64_t deadline = bench_now_ns() + (60 + sub->jobs / 1000) * 1000000000LL;
    // The last handler call, then the worker's last Complete reply (the
    // warm-up job is the + 1).
    if (!bench_wait_handled(w, handled, (uint64_t) sub->jobs + 1, deadline)) {
        fprintf(stderr, "anvil-bench: only %llu of %ld jobs ran in time\n",
            (unsigned long long) atomic_load(handled) - 1, sub->jobs);
        return -1;
    }
    int64_t end = bench_now_ns();
    tp_figures(r, sub, end);
    bench_add_server_figs(r, s, cpu0, self0, (double) sub->jobs);
    return bench_check_drained(sub->c, sub->type);
}

// Submits up to SUBMIT_ONLY_JOBS jobs of a type no worker serves, in the
// same way: the submit rate when nothing else competes for the engine.
static int
submit_only(struct submitter *sub, struct result *r)
{
    char type[64];
    bench_type_name(type, sizeof(type), "idle");
    sub->type = type;
    sub->jobs = sub->jobs < SUBMIT_ONLY_JOBS ? sub->jobs : SUBMIT_ONLY_JOBS;
    int rc    = bench_submit(sub);
    if (rc == 0)
        result_add(r, "submit_only_per_s", "submit rate, no worker running",
            "jobs/s", bench_submit_rate(sub));
    sub->type = NULL;
    return rc;
}

static void
describe_throughput(const struct bench_opts *o, long jobs, struct result *r)
{
    char how[300];
    bench_describe_submit(o, how, sizeof(how));
    r->workload = "throughput";
    snprintf(r->sizes, sizeof(r->sizes),
        "jobs=%ld workers=%d payload=%dB batch=%d producers=%d transport=%s",
        jobs, o->workers, BENCH_PAYLOAD, o->batch, o->producers, o->transport);
    snprintf(r->notes, sizeof(r->notes),
        "%s; one worker with %d slots runs a no-op handler and reports "
        "through the worker library's default path; the clock runs from the "
        "first submit to the worker's last Complete reply, then Health "
        "confirms nothing is queued or running; then up to %d jobs of a "
        "type no worker serves, submitted the same way, give the submit "
        "rate alone",
        how, o->workers, SUBMIT_ONLY_JOBS);
}

int
bench_throughput(const struct bench_opts *o, struct bench_server *s, long jobs,
    struct result *r)
{
    static struct submitter sub; // large (err); one run at a time
    _Atomic uint64_t        handled = 0;
    char                    type[64];
    anvil_worker           *w = NULL;
    memset(&sub, 0, sizeof(sub));
    bench_type_name(type, sizeof(type), "noop");
    sub.type      = type;
    sub.jobs      = jobs;
    sub.batch     = o->batch;
    sub.producers = o->producers;
    describe_throughput(o, jobs, r);
    int rc = http_endpoint(o, s, &sub.http_url);
    if (rc == 0)
        rc = bench_client_open(s, &sub.c);
    if (rc == 0)
        rc = bench_worker_start(
            s, o->workers, type, bench_noop_handler, &handled, &w);
    if (rc == 0)
        rc = bench_warm_up(sub.c, type);
    if (rc == 0)
        rc = throughput_measure(&sub, w, &handled, s, r);
    if (rc == 0)
        rc = submit_only(&sub, r);
    anvil_worker_free(w);
    bench_submit_close(&sub);
    anvil_client_close(sub.c);
    return rc;
}

// ---- latency ----

// When the handler of the one job in flight started and ended.
struct lat_marks {
    _Atomic int64_t start_ns;
    _Atomic int64_t end_ns;
};

static int
mark_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) lease;
    (void) ctx;
    struct lat_marks *m = arg;
    atomic_store(&m->start_ns, bench_now_ns());
    atomic_store(&m->end_ns, bench_now_ns());
    return ANVIL_OK;
}

struct lat_samples {
    double            *total;    // submit call -> WaitJob reply
    double            *submit;   // the SubmitJob call
    double            *dispatch; // submit call -> handler start
    double            *finish;   // handler end -> WaitJob reply
    struct bench_hops *hops;     // per-hop breakdown; NULL over HTTP
};

// The latency workload's client: the SDK, or one HTTP connection.
struct lat_client {
    anvil_client      *c;
    struct bench_http *h; // NULL: submit and wait through the SDK (nng)
};

// One job through the SDK: SubmitJob, then WaitJob until it is final.
// t[0] the submit call, t[1] its reply, t[2] the WaitJob reply.
static int
round_trip_nng(anvil_client *c, const char *type, int64_t t[3])
{
    struct anvil_error e   = { 0 };
    char              *id  = NULL;
    struct anvil_job  *job = NULL;
    t[0]                   = bench_now_ns();
    int rc = anvil_job_submit(c, type, "{}", 2, NULL, &id, NULL, &e);
    t[1]   = bench_now_ns();
    if (rc == ANVIL_OK)
        rc = anvil_job_wait(c, id, 30000, &job, &e);
    t[2] = bench_now_ns();
    if (rc == ANVIL_OK && job->state != ANVIL_JOB_SUCCEEDED) {
        snprintf(e.msg, sizeof(e.msg), "job %s ended %s", id,
            anvil_job_state_name(job->state));
        rc = ANVIL_INTERNAL;
    }
    anvil_job_free(job);
    anvil_free(id);
    if (rc == ANVIL_OK)
        return 0;
    fprintf(stderr, "anvil-bench: latency job: %s\n", e.msg);
    return -1;
}

// The same over HTTP, on one keep-alive connection: POST /v1/jobs, then
// GET /v1/jobs/{id}?wait=30s (WaitJob).
static int
round_trip_http(struct bench_http *h, const char *type, int64_t t[3])
{
    char body[160];
    char answer[2048];
    char id[32];
    char path[96];
    char err[300];
    int  status = 0;
    int  n      = snprintf(
              body, sizeof(body), "{\"type\":\"%s\",\"payload\":{}}", type);
    t[0]   = bench_now_ns();
    int rc = bench_http_request(h, "POST", "/v1/jobs", body, (size_t) n,
        &status, answer, sizeof(answer), err, sizeof(err));
    t[1]   = bench_now_ns();
    if (rc == 0
        && (status != 201
            || bench_http_json_string(answer, "id", id, sizeof(id)) != 0)) {
        snprintf(
            err, sizeof(err), "POST /v1/jobs: HTTP %d: %.100s", status, answer);
        rc = -1;
    }
    if (rc == 0) {
        snprintf(path, sizeof(path), "/v1/jobs/%s?wait=30s", id);
        rc = bench_http_request(h, "GET", path, NULL, 0, &status, answer,
            sizeof(answer), err, sizeof(err));
    }
    t[2] = bench_now_ns();
    if (rc == 0
        && (status != 200
            || strstr(answer, "\"state\":\"JOB_STATE_SUCCEEDED\"") == NULL)) {
        snprintf(err, sizeof(err), "GET %.96s: HTTP %d: %.100s", path, status,
            answer);
        rc = -1;
    }
    if (rc != 0)
        fprintf(stderr, "anvil-bench: latency job: %s\n", err);
    return rc;
}

// One round trip: submit, wait until it finished. Fills sample i.
static int
one_job(const struct lat_client *lc, const char *type, struct lat_marks *m,
    struct lat_samples *s, long i)
{
    int64_t t[3];
    int     rc = lc->h != NULL ? round_trip_http(lc->h, type, t)
                               : round_trip_nng(lc->c, type, t);
    int64_t t0 = t[0];
    int64_t t1 = t[1];
    int64_t t2 = t[2];
    if (rc != 0)
        return -1;
    if (i >= 0) {
        s->total[i]    = (double) (t2 - t0) / 1e3;
        s->submit[i]   = (double) (t1 - t0) / 1e3;
        s->dispatch[i] = (double) (atomic_load(&m->start_ns) - t0) / 1e3;
        s->finish[i]   = (double) (t2 - atomic_load(&m->end_ns)) / 1e3;
        if (s->hops != NULL)
            bench_hops_sample(
                s->hops, i, atomic_load(&m->start_ns), atomic_load(&m->end_ns));
    }
    return 0;
}

static int
latency_measure(const struct bench_opts *o, const struct lat_client *c,
    const char *type, struct lat_marks *m, struct bench_server *s, long jobs,
    struct result *r)
{
    struct lat_samples smp;
    smp.total    = calloc((size_t) jobs, sizeof(double));
    smp.submit   = calloc((size_t) jobs, sizeof(double));
    smp.dispatch = calloc((size_t) jobs, sizeof(double));
    smp.finish   = calloc((size_t) jobs, sizeof(double));
    smp.hops     = NULL;
    int rc       = -1;
    if (c->h == NULL && bench_hops_start(&smp.hops, jobs) != 0)
        smp.hops = NULL;
    if (smp.total == NULL || smp.submit == NULL || smp.dispatch == NULL
        || smp.finish == NULL) {
        fprintf(stderr, "anvil-bench: out of memory\n");
        goto out;
    }
    for (long i = 0; i < o->warmup; i++) {
        if (one_job(c, type, m, &smp, -1) != 0)
            goto out;
    }
    double  cpu0  = bench_server_cpu_s(s);
    double  self0 = bench_self_cpu_s();
    int64_t t0    = bench_now_ns();
    for (long i = 0; i < jobs; i++) {
        if (one_job(c, type, m, &smp, i) != 0)
            goto out;
    }
    double secs = (double) (bench_now_ns() - t0) / 1e9;
    result_add_pcts(r, "latency", "round trip", smp.total, (size_t) jobs, true);
    result_add(
        r, "round_trips_per_s", "round trips", "/s", (double) jobs / secs);
    result_add_pcts(
        r, "submit", "SubmitJob call", smp.submit, (size_t) jobs, true);
    result_add_pcts(r, "dispatch", "submit -> handler start", smp.dispatch,
        (size_t) jobs, false);
    result_add_pcts(r, "finish", "handler end -> WaitJob reply", smp.finish,
        (size_t) jobs, false);
    bench_add_server_figs(r, s, cpu0, self0, (double) jobs);
    if (smp.hops != NULL)
        bench_hops_report(smp.hops, r);
    bench_hops_stop(smp.hops);
    smp.hops = NULL;
    rc       = bench_check_drained(c->c, type);
    if (rc == 0 && c->h == NULL)
        rc = bench_raw_nng(jobs, r);
    if (rc == 0 && c->h == NULL)
        result_add(r, "submit_vs_raw_nng", "SubmitJob call p50 / raw nng p50",
            "x",
            result_ratio(result_fig(r, "submit_p50_us"),
                result_fig(r, "raw_nng_p50_us")));
out:
    bench_hops_stop(smp.hops);
    free(smp.total);
    free(smp.submit);
    free(smp.dispatch);
    free(smp.finish);
    return rc;
}

int
bench_latency(const struct bench_opts *o, struct bench_server *s, long jobs,
    struct result *r)
{
    struct lat_marks  m  = { 0 };
    struct lat_client lc = { 0 };
    char              type[64];
    char              err[160];
    const char       *url;
    anvil_worker     *w = NULL;
    bench_type_name(type, sizeof(type), "mark");
    r->workload = "latency";
    snprintf(r->sizes, sizeof(r->sizes),
        "jobs=%ld warmup=%ld workers=%d transport=%s", jobs, o->warmup,
        o->workers, o->transport);
    snprintf(r->notes, sizeof(r->notes),
        "one job at a time: SubmitJob, then WaitJob until it SUCCEEDED%s; a "
        "worker with %d slots runs a no-op handler; the round trip is from "
        "the submit call to the WaitJob reply, after %ld warm-up jobs",
        strcmp(o->transport, "http") == 0
            ? " (over HTTP, on one keep-alive connection: POST /v1/jobs, then "
              "GET /v1/jobs/{id}?wait=30s)"
            : "",
        o->workers, o->warmup);
    int rc = http_endpoint(o, s, &url);
    if (rc == 0 && url != NULL
        && bench_http_open(url, &lc.h, err, sizeof(err)) != 0) {
        fprintf(stderr, "anvil-bench: %s: %s\n", url, err);
        rc = -1;
    }
    if (rc == 0)
        rc = bench_client_open(s, &lc.c);
    if (rc == 0)
        rc = bench_worker_start(s, o->workers, type, mark_handler, &m, &w);
    if (rc == 0)
        rc = latency_measure(o, &lc, type, &m, s, jobs, r);
    anvil_worker_free(w);
    anvil_client_close(lc.c);
    bench_http_close(lc.h);
    return rc;
}
