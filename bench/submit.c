// submit.c - jobs submitted as fast as the SDK allows: `producers` threads,
// each with one call in flight, each call carrying `batch` jobs
// (anvil_job_submit_many, the SubmitJobs rpc) or one (anvil_job_submit,
// the SubmitJob rpc, when batch is 1). So at most producers x batch jobs
// are outstanding. Every job's answer is checked: a refused job is an
// error of the run.
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAYLOAD_BUF 48

// Records the first failure; later ones only count.
static void
sub_fail(struct submitter *s, const char *what, const struct anvil_error *e)
{
    pthread_mutex_lock(&s->mu);
    if (!s->failed)
        snprintf(s->err, sizeof(s->err), "%s: %s", what,
            e->msg[0] != '\0' ? e->msg : anvil_code_name(e->code));
    s->failed = true;
    pthread_mutex_unlock(&s->mu);
}

// Job i's payload: BENCH_PAYLOAD bytes of JSON, e.g.
// {"n":000000000042,"pad":"xxxxx"}, in a buffer of PAYLOAD_BUF bytes (room
// for any long, though only the first BENCH_PAYLOAD bytes are sent).
static void
payload_of(char *buf, long i)
{
    snprintf(buf, PAYLOAD_BUF, "{\"n\":%012ld,\"pad\":\"xxxxx\"}", i);
}

// Producer k of a single-submit run: jobs k, k + P, k + 2P, ...
static void
produce_one(struct submitter *s, int k)
{
    char payload[PAYLOAD_BUF];
    for (long i = k; i < s->jobs && !s->failed; i += s->producers) {
        struct anvil_error e = { 0 };
        payload_of(payload, i);
        int rc = anvil_job_submit(
            s->c, s->type, payload, BENCH_PAYLOAD, NULL, NULL, NULL, &e);
        if (rc != ANVIL_OK) {
            atomic_fetch_add(&s->refused, 1);
            sub_fail(s, "SubmitJob", &e);
        }
    }
}

// One batch call: jobs first .. first + n - 1. Returns false on failure.
static bool
submit_batch(struct submitter *s, struct anvil_job_spec *specs,
    struct anvil_submit_result *res, char (*payloads)[PAYLOAD_BUF], long first,
    size_t n)
{
    struct anvil_error e = { 0 };
    size_t             failed;
    for (size_t j = 0; j < n; j++) {
        payload_of(payloads[j], first + (long) j);
        specs[j] = (struct anvil_job_spec) { s->type, payloads[j],
            BENCH_PAYLOAD, NULL };
    }
    int rc = anvil_job_submit_many(s->c, specs, n, res, &failed, &e);
    if (rc != ANVIL_OK) {
        // No answer: none of these jobs is known to be stored.
        atomic_fetch_add(&s->refused, n);
        sub_fail(s, "SubmitJobs", &e);
        return false;
    }
    // Count from the results themselves, not only from n_failed.
    uint64_t bad = 0;
    for (size_t j = 0; j < n; j++) {
        if (res[j].code != ANVIL_OK || res[j].id[0] == '\0')
            bad++;
    }
    if (bad == 0)
        return true;
    atomic_fetch_add(&s->refused, bad);
    sub_fail(s, "SubmitJobs", &e);
    return false;
}

// Producer k of a batched run: batches k, k + P, ... of `batch` jobs.
static void
produce_many(struct submitter *s, int k)
{
    size_t                      b     = (size_t) s->batch;
    struct anvil_job_spec      *specs = calloc(b, sizeof(*specs));
    struct anvil_submit_result *res   = calloc(b, sizeof(*res));
    char(*payloads)[PAYLOAD_BUF]      = calloc(b, sizeof(*payloads));
    struct anvil_error oom  = { ANVIL_RESOURCE_EXHAUSTED, "out of memory" };
    long               step = (long) s->producers * s->batch;
    if (specs == NULL || res == NULL || payloads == NULL)
        sub_fail(s, "producer", &oom);
    for (long first = (long) k * s->batch; first < s->jobs && !s->failed;
         first += step) {
        long n = s->jobs - first < s->batch ? s->jobs - first : s->batch;
        if (!submit_batch(s, specs, res, payloads, first, (size_t) n))
            break;
    }
    free(specs);
    free(res);
    free(payloads);
}

static void
produce(void *arg, int k)
{
    struct submitter *s = arg;
    if (s->batch <= 1)
        produce_one(s, k);
    else
        produce_many(s, k);
}

int
bench_submit(struct submitter *s)
{
    s->failed  = false;
    s->refused = 0;
    s->err[0]  = '\0';
    pthread_mutex_init(&s->mu, NULL);
    int rc = bench_produce(s->producers, produce, s, &s->t0, &s->t1);
    pthread_mutex_destroy(&s->mu);
    if (rc != 0)
        return -1;
    if (!s->failed)
        return 0;
    fprintf(stderr,
        "anvil-bench: submitting %ld jobs of %s: %llu not stored; first: "
        "%s\n",
        s->jobs, s->type, (unsigned long long) atomic_load(&s->refused),
        s->err);
    return -1;
}

void
bench_describe_submit(const struct bench_opts *o, char *buf, size_t len)
{
    if (o->batch <= 1)
        snprintf(buf, len,
            "%d producer thread%s share%s one client, each making "
            "synchronous anvil_job_submit calls (SubmitJob), so at most %d "
            "jobs are outstanding",
            o->producers, o->producers == 1 ? "" : "s",
            o->producers == 1 ? "s" : "", o->producers);
    else
        snprintf(buf, len,
            "%d producer thread%s submit%s batches of %d jobs with "
            "anvil_job_submit_many (SubmitJobs), one batch in flight per "
            "thread, so at most %d jobs are outstanding; every job's result "
            "is checked",
            o->producers, o->producers == 1 ? "" : "s",
            o->producers == 1 ? "s" : "", o->batch, o->producers * o->batch);
}

double
bench_submit_rate(const struct submitter *s)
{
    return (double) s->jobs / ((double) (s->t1 - s->t0) / 1e9);
}
