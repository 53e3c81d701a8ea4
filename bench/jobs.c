// jobs.c - the throughput and latency workloads: tiny no-op jobs submitted
// by the SDK, run by a worker-library worker in this process, over the
// real transport.
#include "bench.h"

#include <anvil/worker.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- throughput ----

// Jobs of the submit-only phase that follows the end-to-end one.
#define SUBMIT_ONLY_JOBS 20000

// Shared by the producer threads and the handler.
struct tp {
    anvil_client    *c;
    const char      *type;
    long             jobs;
    _Atomic uint64_t handled; // handler calls
    _Atomic bool     failed;
    pthread_mutex_t  mu; // guards err
    char             err[300];
    int64_t          t0; // first submit
    int64_t          ts; // last submit reply
};

static int
noop_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) lease;
    (void) ctx;
    _Atomic uint64_t *handled = arg;
    atomic_fetch_add(handled, 1);
    return ANVIL_OK;
}

static void
tp_fail(struct tp *tp, const char *what, const struct anvil_error *e)
{
    pthread_mutex_lock(&tp->mu);
    if (!tp->failed)
        snprintf(tp->err, sizeof(tp->err), "%s: %s", what, e->msg);
    tp->failed = true;
    pthread_mutex_unlock(&tp->mu);
}

// Producer k submits jobs k, k + 32, k + 64, ...: one synchronous call at a
// time, so 32 threads keep at most 32 submits in flight.
static void
produce(void *arg, int k)
{
    struct tp *tp = arg;
    char       payload[64]; // BENCH_PAYLOAD bytes are sent
    for (long i = k; i < tp->jobs && !tp->failed; i += BENCH_PRODUCERS) {
        snprintf(
            payload, sizeof(payload), "{\"n\":%012ld,\"pad\":\"xxxxx\"}", i);
        struct anvil_error e  = { 0 };
        int                rc = anvil_job_submit(
                           tp->c, tp->type, payload, BENCH_PAYLOAD, NULL, NULL, NULL, &e);
        if (rc != ANVIL_OK) {
            tp_fail(tp, "SubmitJob", &e);
            break;
        }
    }
}

static int
run_producers(struct tp *tp)
{
    if (bench_produce(produce, tp, &tp->t0, &tp->ts) != 0)
        return -1;
    if (tp->failed)
        fprintf(stderr, "anvil-bench: %s\n", tp->err);
    return tp->failed ? -1 : 0;
}

// Submits one job and waits for it: connects the client and the worker
// before the clock starts.
static int
warm_up(anvil_client *c, const char *type)
{
    struct anvil_error e  = { 0 };
    char              *id = NULL;
    int rc = anvil_job_submit(c, type, "{}", 2, NULL, &id, NULL, &e);
    struct anvil_job *job = NULL;
    if (rc == ANVIL_OK)
        rc = anvil_job_wait(c, id, 30000, &job, &e);
    if (rc == ANVIL_OK && job->state != ANVIL_JOB_SUCCEEDED)
        rc = ANVIL_INTERNAL;
    anvil_job_free(job);
    anvil_free(id);
    if (rc == ANVIL_OK)
        return 0;
    fprintf(stderr, "anvil-bench: warm-up job did not succeed: %s\n",
        e.msg[0] != '\0' ? e.msg : anvil_code_name(rc));
    return -1;
}

static bool
handled_all(void *arg)
{
    struct tp *tp = arg;
    return atomic_load(&tp->handled) >= (uint64_t) tp->jobs + 1;
}

static void
tp_figures(struct result *r, const struct tp *tp, int64_t end_ns)
{
    double total  = (double) (end_ns - tp->t0) / 1e9;
    double submit = (double) (tp->ts - tp->t0) / 1e9;
    result_add(r, "jobs_per_s", "end to end (first submit -> last complete)",
        "jobs/s", (double) tp->jobs / total);
    result_add(r, "submit_per_s", "submit rate, workers running", "jobs/s",
        (double) tp->jobs / submit);
    result_add(r, "elapsed_s", "elapsed", "s", total);
    result_add(r, "submit_s", "submitting", "s", submit);
}

static int
throughput_measure(
    struct tp *tp, anvil_worker *w, struct bench_server *s, struct result *r)
{
    double cpu0  = bench_server_cpu_s(s);
    double self0 = bench_self_cpu_s();
    if (run_producers(tp) != 0)
        return -1;
    int64_t deadline = bench_now_ns() + (60 + tp->jobs / 1000) * 1000000000LL;
    // The last handler call, then the worker's last Complete reply.
    if (!bench_wait_until(handled_all, tp, deadline)
        || !bench_wait_succeeded(w, (uint64_t) tp->jobs + 1, deadline)) {
        fprintf(stderr, "anvil-bench: only %llu of %ld jobs ran in time\n",
            (unsigned long long) atomic_load(&tp->handled) - 1, tp->jobs);
        return -1;
    }
    int64_t end = bench_now_ns();
    tp_figures(r, tp, end);
    bench_add_server_figs(r, s, cpu0, self0, (double) tp->jobs);
    return bench_check_drained(tp->c, tp->type);
}

// Submits up to SUBMIT_ONLY_JOBS jobs of a type no worker serves: the
// submit rate when nothing else competes for the engine.
static int
submit_only(struct tp *tp, struct result *r)
{
    char type[64];
    bench_type_name(type, sizeof(type), "idle");
    tp->type = type;
    tp->jobs = tp->jobs < SUBMIT_ONLY_JOBS ? tp->jobs : SUBMIT_ONLY_JOBS;
    int rc   = run_producers(tp);
    if (rc == 0)
        result_add(r, "submit_only_per_s", "submit rate, no worker running",
            "jobs/s", (double) tp->jobs / ((double) (tp->ts - tp->t0) / 1e9));
    tp->type = NULL;
    return rc;
}

int
bench_throughput(const struct bench_opts *o, struct bench_server *s, long jobs,
    struct result *r)
{
    static struct tp tp; // large (err, timestamps); one run at a time
    char             type[64];
    anvil_worker    *w = NULL;
    memset(&tp, 0, sizeof(tp));
    bench_type_name(type, sizeof(type), "noop");
    tp.type = type;
    tp.jobs = jobs;
    pthread_mutex_init(&tp.mu, NULL);
    r->workload = "throughput";
    snprintf(r->sizes, sizeof(r->sizes),
        "jobs=%ld workers=%d payload=%dB producers=%d", jobs, o->workers,
        BENCH_PAYLOAD, BENCH_PRODUCERS);
    snprintf(r->notes, sizeof(r->notes),
        "%d producer threads share one client, each making synchronous "
        "anvil_job_submit calls (the SDK has no async or batch submit), so "
        "at most %d submits are in flight; one worker with %d slots runs a "
        "no-op handler and completes through the worker library; the clock "
        "stops at the worker's last Complete reply, then Health confirms "
        "nothing is queued or running; then up to %d jobs of a type no "
        "worker serves measure the submit rate alone",
        BENCH_PRODUCERS, BENCH_PRODUCERS, o->workers, SUBMIT_ONLY_JOBS);
    int rc = bench_client_open(s, &tp.c);
    if (rc == 0)
        rc = bench_worker_start(
            s, o->workers, type, noop_handler, &tp.handled, &w);
    if (rc == 0)
        rc = warm_up(tp.c, type);
    if (rc == 0)
        rc = throughput_measure(&tp, w, s, r);
    if (rc == 0)
        rc = submit_only(&tp, r);
    anvil_worker_free(w);
    anvil_client_close(tp.c);
    pthread_mutex_destroy(&tp.mu);
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
    double *total;    // submit call -> WaitJob reply
    double *submit;   // the SubmitJob call
    double *dispatch; // submit call -> handler start
    double *finish;   // handler end -> WaitJob reply
};

// One round trip: submit, wait until it finished. Fills sample i.
static int
one_job(anvil_client *c, const char *type, struct lat_marks *m,
    struct lat_samples *s, long i)
{
    struct anvil_error e   = { 0 };
    char              *id  = NULL;
    struct anvil_job  *job = NULL;
    int64_t            t0  = bench_now_ns();
    int     rc = anvil_job_submit(c, type, "{}", 2, NULL, &id, NULL, &e);
    int64_t t1 = bench_now_ns();
    if (rc == ANVIL_OK)
        rc = anvil_job_wait(c, id, 30000, &job, &e);
    int64_t t2 = bench_now_ns();
    if (rc == ANVIL_OK && job->state != ANVIL_JOB_SUCCEEDED) {
        snprintf(e.msg, sizeof(e.msg), "job %s ended %s", id,
            anvil_job_state_name(job->state));
        rc = ANVIL_INTERNAL;
    }
    anvil_job_free(job);
    anvil_free(id);
    if (rc != ANVIL_OK) {
        fprintf(stderr, "anvil-bench: latency job: %s\n", e.msg);
        return -1;
    }
    if (i >= 0) {
        s->total[i]    = (double) (t2 - t0) / 1e3;
        s->submit[i]   = (double) (t1 - t0) / 1e3;
        s->dispatch[i] = (double) (atomic_load(&m->start_ns) - t0) / 1e3;
        s->finish[i]   = (double) (t2 - atomic_load(&m->end_ns)) / 1e3;
    }
    return 0;
}

static int
latency_measure(const struct bench_opts *o, anvil_client *c, const char *type,
    struct lat_marks *m, struct bench_server *s, long jobs, struct result *r)
{
    struct lat_samples smp;
    smp.total    = calloc((size_t) jobs, sizeof(double));
    smp.submit   = calloc((size_t) jobs, sizeof(double));
    smp.dispatch = calloc((size_t) jobs, sizeof(double));
    smp.finish   = calloc((size_t) jobs, sizeof(double));
    int rc       = -1;
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
        r, "submit", "SubmitJob call", smp.submit, (size_t) jobs, false);
    result_add_pcts(r, "dispatch", "submit -> handler start", smp.dispatch,
        (size_t) jobs, false);
    result_add_pcts(r, "finish", "handler end -> WaitJob reply", smp.finish,
        (size_t) jobs, false);
    bench_add_server_figs(r, s, cpu0, self0, (double) jobs);
    rc = bench_check_drained(c, type);
out:
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
    struct lat_marks m = { 0 };
    char             type[64];
    anvil_client    *c = NULL;
    anvil_worker    *w = NULL;
    bench_type_name(type, sizeof(type), "mark");
    r->workload = "latency";
    snprintf(r->sizes, sizeof(r->sizes), "jobs=%ld warmup=%ld workers=%d", jobs,
        o->warmup, o->workers);
    snprintf(r->notes, sizeof(r->notes),
        "one job at a time: SubmitJob, then WaitJob until it SUCCEEDED; a "
        "worker with %d slots runs a no-op handler; the round trip is from "
        "the submit call to the WaitJob reply, after %ld warm-up jobs",
        o->workers, o->warmup);
    int rc = bench_client_open(s, &c);
    if (rc == 0)
        rc = bench_worker_start(s, o->workers, type, mark_handler, &m, &w);
    if (rc == 0)
        rc = latency_measure(o, c, type, &m, s, jobs, r);
    anvil_worker_free(w);
    anvil_client_close(c);
    return rc;
}
