// submit.c - jobs submitted as fast as the SDK allows: `producers` threads,
// each with one call in flight, each call carrying `batch` jobs
// (anvil_job_submit_many, the SubmitJobs rpc) or one (anvil_job_submit,
// the SubmitJob rpc, when batch is 1). So at most producers x batch jobs
// are outstanding. Every job's answer is checked: a refused job is an
// error of the run. Over HTTP (s->http_url), each producer has its own
// keep-alive connection and posts one job (POST /v1/jobs) or one batch
// (POST /v1/jobs:batch) at a time.
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAYLOAD_BUF 48
#define HTTP_BODY_ONE 256 // one job's JSON: {"type":...,"payload":...}
#define HTTP_ANSWER 256   // POST /v1/jobs's answer, with room to spare

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

// Job i's payload as valid JSON of exactly BENCH_PAYLOAD bytes, e.g.
// {"n":42,"pad":"xxxxxxxxxxxxxxx"}: anvild's HTTP endpoint parses the
// payload (the leading zeros of payload_of() are not JSON) and stores its
// compact text, so the stored payload is as long as the nng one.
static void
payload_json_of(char *buf, long i)
{
    char text[96];
    int  digits = snprintf(text, sizeof(text), "%ld", i);
    int  pad    = BENCH_PAYLOAD - 15 - digits; // {"n":,"pad":""} is 15
    snprintf(text, sizeof(text), "{\"n\":%ld,\"pad\":\"%.*s\"}", i,
        pad > 0 ? pad : 0, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    snprintf(buf, PAYLOAD_BUF, "%.*s", PAYLOAD_BUF - 1, text);
}

static void
http_fail(
    struct submitter *s, const char *what, uint64_t jobs, const char *detail)
{
    struct anvil_error e = { ANVIL_UNAVAILABLE, "" };
    snprintf(e.msg, sizeof(e.msg), "%.200s", detail);
    atomic_fetch_add(&s->refused, jobs);
    sub_fail(s, what, &e);
}

// Producer k of a single-submit run over HTTP: POST /v1/jobs, 201 and an
// id expected.
static void
produce_one_http(struct submitter *s, int k)
{
    struct bench_http *c = s->conns[k];
    char               body[HTTP_BODY_ONE];
    char               answer[HTTP_ANSWER];
    char               payload[PAYLOAD_BUF];
    char               err[160];
    char               id[32];
    for (long i = k; i < s->jobs && !s->failed; i += s->producers) {
        int status = 0;
        payload_json_of(payload, i);
        int n = snprintf(body, sizeof(body), "{\"type\":\"%s\",\"payload\":%s}",
            s->type, payload);
        if (bench_http_request(c, "POST", "/v1/jobs", body, (size_t) n, &status,
                answer, sizeof(answer), err, sizeof(err))
            != 0) {
            http_fail(s, "POST /v1/jobs", 1, err);
        } else if (status != 201
            || bench_http_json_string(answer, "id", id, sizeof(id)) != 0) {
            snprintf(err, sizeof(err), "HTTP %d: %.120s", status, answer);
            http_fail(s, "POST /v1/jobs", 1, err);
        }
    }
}

// One batch over HTTP: jobs first .. first + n - 1 in one POST
// /v1/jobs:batch; every result must be OK. Returns false on failure.
static bool
submit_batch_http(struct submitter *s, struct bench_http *c, char *body,
    char *answer, size_t answer_cap, long first, size_t n)
{
    char   payload[PAYLOAD_BUF];
    char   err[160];
    size_t len = (size_t) snprintf(body, 16, "{\"jobs\":[");
    for (size_t j = 0; j < n; j++) {
        payload_json_of(payload, first + (long) j);
        len += (size_t) snprintf(body + len, HTTP_BODY_ONE,
            "%s{\"type\":\"%s\",\"payload\":%s}", j > 0 ? "," : "", s->type,
            payload);
    }
    len += (size_t) snprintf(body + len, 4, "]}");
    int status = 0;
    if (bench_http_request(c, "POST", "/v1/jobs:batch", body, len, &status,
            answer, answer_cap, err, sizeof(err))
        != 0) {
        http_fail(s, "POST /v1/jobs:batch", n, err);
        return false;
    }
    size_t ok = status == 200 ? bench_http_count(answer, "\"code\":\"OK\"") : 0;
    if (ok == n)
        return true;
    snprintf(err, sizeof(err), "HTTP %d, %zu of %zu OK: %.100s", status, ok, n,
        answer);
    http_fail(s, "POST /v1/jobs:batch", n - ok, err);
    return false;
}

// Producer k of a batched run over HTTP.
static void
produce_many_http(struct submitter *s, int k)
{
    size_t b          = (size_t) s->batch;
    size_t answer_cap = b * 96 + 64; // {"code":"OK","message":"","id":...}
    char  *body       = malloc(b * (HTTP_BODY_ONE + 1) + 16);
    char  *answer     = malloc(answer_cap);
    long   step       = (long) s->producers * s->batch;
    if (body == NULL || answer == NULL)
        http_fail(s, "producer", 0, "out of memory");
    for (long first = (long) k * s->batch; first < s->jobs && !s->failed;
         first += step) {
        long n = s->jobs - first < s->batch ? s->jobs - first : s->batch;
        if (!submit_batch_http(
                s, s->conns[k], body, answer, answer_cap, first, (size_t) n))
            break;
    }
    free(body);
    free(answer);
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
    if (s->http_url != NULL && s->batch <= 1)
        produce_one_http(s, k);
    else if (s->http_url != NULL)
        produce_many_http(s, k);
    else if (s->batch <= 1)
        produce_one(s, k);
    else
        produce_many(s, k);
}

// Opens the producers' HTTP connections (kept for the next runs of s).
static int
open_conns(struct submitter *s)
{
    char err[160];
    for (int k = 0; s->http_url != NULL && k < s->producers; k++) {
        if (s->conns[k] != NULL)
            continue;
        if (bench_http_open(s->http_url, &s->conns[k], err, sizeof(err)) != 0) {
            fprintf(stderr, "anvil-bench: %s: %s\n", s->http_url, err);
            return -1;
        }
    }
    return 0;
}

void
bench_submit_close(struct submitter *s)
{
    for (int k = 0; k < BENCH_MAX_PRODUCERS; k++) {
        bench_http_close(s->conns[k]);
        s->conns[k] = NULL;
    }
}

int
bench_submit(struct submitter *s)
{
    s->failed  = false;
    s->refused = 0;
    s->err[0]  = '\0';
    if (open_conns(s) != 0)
        return -1;
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
    bool http = strcmp(o->transport, "http") == 0;
    if (http && o->batch <= 1)
        snprintf(buf, len,
            "%d producer thread%s, each with its own keep-alive HTTP/1.1 "
            "connection, post%s one job at a time (POST /v1/jobs, JSON body, "
            "no pipelining), so at most %d jobs are outstanding",
            o->producers, o->producers == 1 ? "" : "s",
            o->producers == 1 ? "s" : "", o->producers);
    else if (http)
        snprintf(buf, len,
            "%d producer thread%s, each with its own keep-alive HTTP/1.1 "
            "connection, post%s batches of %d jobs (POST /v1/jobs:batch), "
            "one in flight per connection, so at most %d jobs are "
            "outstanding; every job's result is checked",
            o->producers, o->producers == 1 ? "" : "s",
            o->producers == 1 ? "s" : "", o->batch, o->producers * o->batch);
    else if (o->batch <= 1)
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
