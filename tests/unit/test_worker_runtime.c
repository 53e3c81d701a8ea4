// test_worker_runtime.c - the worker library (sdk/runtime/) against a
// tiny fake server, and its tasks module on its own.
//
// The fake is an nng REP socket on ipc:///tmp/<mkdtemp>/s served by a few
// threads, one REP context each. It hands out the jobs a test scripts (as
// many per Poll as max_jobs allows, parking the Poll up to wait_ms when
// none is left), and records every Poll, Heartbeat, Report, Complete and
// Fail in a struct under its mutex (each outcome of a Report is recorded
// as the Complete or Fail it stands for). It can hold Reports until the
// test lets them go, and answer them UNIMPLEMENTED as an older anvild. Handlers
// record into a probe the same way. The test thread waits for a recorded event
// against a deadline, stops the worker, and asserts only then.

// cmocka.h needs these first.
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include "../../worker/handlers.h"
#include "../harness.h"
#include "../wire_test.h"
#include "anvil/v1/anvil.pb-c.h"
#include "runtime/tasks.h"
#include "util/clock.h"
#include "util/log.h"
#include "wire.h"

#include <anvil/worker.h>
#include <dirent.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FAKE_THREADS 4
#define MAX_JOBS 8
#define MAX_CALLS 32
#define WAIT_MS 10000

struct fake_job {
    const char *id;
    const char *type;
    const char *payload;
    uint32_t    token;
    int64_t     timeout_ms;
};

// One Complete or Fail the fake received.
struct call {
    char     job_id[32];
    uint32_t token;
    char     body[256]; // result of a Complete, error of a Fail
    bool     no_retry;
};

struct fake {
    char            dir[64];
    char            url[128];
    nng_socket      sock;
    pthread_t       thr[FAKE_THREADS];
    pthread_mutex_t mu; // guards every field below
    pthread_cond_t  cv; // (monotonic) jobs added or stopping
    bool            stop;
    // Script, set by the test before the worker starts.
    struct fake_job jobs[MAX_JOBS];
    size_t          n_jobs;
    size_t          next_job;
    int             cap; // the worker's slots + prefetch, for the Poll check
    int             poll_unavailable;     // Polls to refuse first
    int             complete_unavailable; // Completes (Reports) to refuse first
    bool            report_unimplemented; // answer Report as an old anvild
    bool            report_hold;          // park Reports until cleared
    int             complete_code;        // then answer Complete with this
    const char     *hb_cancel;            // job id to cancel in heartbeats
    const char     *hb_lost;              // job id to call lost in them
    const char     *want_types; // "a,b": the types every Poll must name
    // Records.
    int         n_polls;
    char        worker_id[160]; // of the last Poll
    uint32_t    first_max_jobs;
    bool        poll_over_free; // a Poll asked for more than cap allows
    bool        poll_bad_types; // a Poll named other types than want_types
    int         outstanding;    // leased and not yet through a probe handler
    int         n_reports;      // Reports received, answered or not
    int         report_sizes[MAX_CALLS]; // outcomes in each
    int         n_heartbeats;
    uint32_t    hb_token; // token of hb_cancel's job seen in a Heartbeat
    struct call completes[MAX_CALLS];
    int         n_completes;
    struct call fails[MAX_CALLS];
    int         n_fails;
};

enum probe_mode { PROBE_OK, PROBE_GATE, PROBE_SLEEP };

// What the test handlers saw; guarded by mu.
struct probe {
    struct fake    *fake; // told when a handler leaves (outstanding)
    pthread_mutex_t mu;
    int             calls;
    int             running;
    int             max_running;
    bool            release;   // PROBE_GATE handlers may return
    bool            slept_all; // PROBE_SLEEP: anvil_job_ctx_sleep's answer
    bool            saw_cancel;
};

struct env {
    struct fake   fake;
    struct probe  probe;
    int           prefetch; // for start_worker
    anvil_worker *w;
    int           threads_before;
};

// Log lines of the library, kept for asserts; guarded by log_mu.
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char            log_text[16384];

static void
test_logger(void *arg, int level, const char *line)
{
    (void) arg;
    (void) level;
    pthread_mutex_lock(&log_mu);
    size_t at = strlen(log_text);
    snprintf(log_text + at, sizeof(log_text) - at, "%s\n", line);
    pthread_mutex_unlock(&log_mu);
    if (getenv("ANVIL_TEST_LOG") != NULL)
        fprintf(stderr, "%s\n", line);
}

static bool
log_has(const char *needle)
{
    pthread_mutex_lock(&log_mu);
    bool has = strstr(log_text, needle) != NULL;
    pthread_mutex_unlock(&log_mu);
    return has;
}

// ---- the fake server ----

static void
copy_bytes(char *out, size_t cap, const void *data, size_t len)
{
    size_t n = len < cap - 1 ? len : cap - 1;
    if (n > 0)
        memcpy(out, data, n);
    out[n] = '\0';
}

static nng_msg *
reply(int code, const ProtobufCMessage *body, uint64_t request_id)
{
    nng_msg           *m = NULL;
    struct anvil_error err;
    const char        *msg = code == ANVIL_OK ? "" : "fake says no";
    if (wire_test_reply_encode(code, msg, body, request_id, &m, &err) != 0)
        return NULL;
    return m;
}

static void
record_poll(struct fake *f, const Anvil__V1__PollRequest *p)
{
    char types[256] = "";
    for (size_t i = 0, at = 0; i < p->n_types && at < sizeof(types); i++)
        at += (size_t) snprintf(types + at, sizeof(types) - at, "%s%s",
            i > 0 ? "," : "", p->types[i]);
    if (f->want_types != NULL && strcmp(types, f->want_types) != 0)
        f->poll_bad_types = true;
    snprintf(f->worker_id, sizeof(f->worker_id), "%s", p->worker_id);
    if (f->n_polls++ == 0)
        f->first_max_jobs = p->max_jobs;
    if (p->max_jobs == 0 || (int) p->max_jobs > f->cap - f->outstanding)
        f->poll_over_free = true;
}

// Waits (f->mu held) until a job is left, the fake stops, or wait_ms ends.
static void
park_poll(struct fake *f, uint32_t wait_ms)
{
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += wait_ms / 1000;
    end.tv_nsec += (long) (wait_ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    while (!f->stop && f->next_job == f->n_jobs) {
        if (pthread_cond_timedwait(&f->cv, &f->mu, &end) != 0)
            break;
    }
}

// Leases up to max jobs into the arrays; returns how many.
static size_t
take_jobs(struct fake *f, uint32_t max, Anvil__V1__Job *jobs,
    Anvil__V1__Lease *leases, Anvil__V1__Lease **ptrs)
{
    size_t k = 0;
    while (k < max && k < MAX_JOBS && f->next_job < f->n_jobs) {
        const struct fake_job *j = &f->jobs[f->next_job++];
        anvil__v1__job__init(&jobs[k]);
        jobs[k].id           = (char *) j->id;
        jobs[k].type         = (char *) j->type;
        jobs[k].payload.data = (uint8_t *) j->payload;
        jobs[k].payload.len  = strlen(j->payload);
        jobs[k].attempt      = j->token;
        jobs[k].timeout_ms   = j->timeout_ms;
        jobs[k].state        = ANVIL__V1__JOB_STATE__JOB_STATE_RUNNING;
        anvil__v1__lease__init(&leases[k]);
        leases[k].job   = &jobs[k];
        leases[k].token = j->token;
        ptrs[k]         = &leases[k];
        k++;
    }
    f->outstanding += (int) k;
    return k;
}

static nng_msg *
fake_poll(struct fake *f, const Anvil__V1__Request *req)
{
    Anvil__V1__PollRequest *p
        = anvil__v1__poll_request__unpack(NULL, req->body.len, req->body.data);
    if (p == NULL)
        return reply(ANVIL_INVALID_ARGUMENT, NULL, req->request_id);
    Anvil__V1__Job          jobs[MAX_JOBS];
    Anvil__V1__Lease        leases[MAX_JOBS];
    Anvil__V1__Lease       *ptrs[MAX_JOBS];
    Anvil__V1__PollResponse resp = ANVIL__V1__POLL_RESPONSE__INIT;
    int                     code = ANVIL_OK;
    pthread_mutex_lock(&f->mu);
    record_poll(f, p);
    if (f->poll_unavailable > 0) {
        f->poll_unavailable--;
        code = ANVIL_UNAVAILABLE;
    } else {
        park_poll(f, p->wait_ms);
        resp.n_leases = take_jobs(f, p->max_jobs, jobs, leases, ptrs);
        resp.leases   = ptrs;
    }
    pthread_mutex_unlock(&f->mu);
    anvil__v1__poll_request__free_unpacked(p, NULL);
    return reply(code, code == ANVIL_OK ? &resp.base : NULL, req->request_id);
}

static nng_msg *
fake_heartbeat(struct fake *f, const Anvil__V1__Request *req)
{
    Anvil__V1__HeartbeatRequest *h = anvil__v1__heartbeat_request__unpack(
        NULL, req->body.len, req->body.data);
    if (h == NULL)
        return reply(ANVIL_INVALID_ARGUMENT, NULL, req->request_id);
    Anvil__V1__HeartbeatResponse resp = ANVIL__V1__HEARTBEAT_RESPONSE__INIT;
    char                        *ids[1];
    pthread_mutex_lock(&f->mu);
    f->n_heartbeats++;
    for (size_t i = 0; i < h->n_leases; i++) {
        const char *id = h->leases[i]->job_id;
        if (f->hb_cancel != NULL && strcmp(id, f->hb_cancel) == 0) {
            f->hb_token     = h->leases[i]->token;
            ids[0]          = (char *) f->hb_cancel;
            resp.canceled   = ids;
            resp.n_canceled = 1;
        }
        if (f->hb_lost != NULL && strcmp(id, f->hb_lost) == 0) {
            f->hb_token = h->leases[i]->token;
            ids[0]      = (char *) f->hb_lost;
            resp.lost   = ids;
            resp.n_lost = 1;
        }
    }
    pthread_mutex_unlock(&f->mu);
    anvil__v1__heartbeat_request__free_unpacked(h, NULL);
    return reply(ANVIL_OK, &resp.base, req->request_id);
}

static nng_msg *
fake_complete(struct fake *f, const Anvil__V1__Request *req)
{
    Anvil__V1__CompleteRequest *c = anvil__v1__complete_request__unpack(
        NULL, req->body.len, req->body.data);
    if (c == NULL)
        return reply(ANVIL_INVALID_ARGUMENT, NULL, req->request_id);
    pthread_mutex_lock(&f->mu);
    if (f->n_completes < MAX_CALLS) {
        struct call *r = &f->completes[f->n_completes++];
        copy_bytes(r->job_id, sizeof(r->job_id), c->job_id, strlen(c->job_id));
        copy_bytes(r->body, sizeof(r->body), c->result.data, c->result.len);
        r->token = c->token;
    }
    int code = f->complete_code;
    if (f->complete_unavailable > 0) {
        f->complete_unavailable--;
        code = ANVIL_UNAVAILABLE;
    }
    pthread_mutex_unlock(&f->mu);
    anvil__v1__complete_request__free_unpacked(c, NULL);
    return reply(code, NULL, req->request_id);
}

static nng_msg *
fake_fail(struct fake *f, const Anvil__V1__Request *req)
{
    Anvil__V1__FailRequest *c
        = anvil__v1__fail_request__unpack(NULL, req->body.len, req->body.data);
    if (c == NULL)
        return reply(ANVIL_INVALID_ARGUMENT, NULL, req->request_id);
    pthread_mutex_lock(&f->mu);
    if (f->n_fails < MAX_CALLS) {
        struct call *r = &f->fails[f->n_fails++];
        copy_bytes(r->job_id, sizeof(r->job_id), c->job_id, strlen(c->job_id));
        copy_bytes(r->body, sizeof(r->body), c->error, strlen(c->error));
        r->token    = c->token;
        r->no_retry = c->no_retry;
    }
    pthread_mutex_unlock(&f->mu);
    anvil__v1__fail_request__free_unpacked(c, NULL);
    return reply(ANVIL_OK, NULL, req->request_id);
}

// Records one outcome of a Report as its Complete or Fail; returns the
// code to answer it with. Caller holds f->mu.
static int
record_outcome(struct fake *f, const Anvil__V1__Outcome *o)
{
    bool         fail = o->failed;
    struct call *r    = NULL;
    if (!fail && f->n_completes < MAX_CALLS)
        r = &f->completes[f->n_completes++];
    if (fail && f->n_fails < MAX_CALLS)
        r = &f->fails[f->n_fails++];
    if (r != NULL) {
        copy_bytes(r->job_id, sizeof(r->job_id), o->job_id, strlen(o->job_id));
        if (fail)
            copy_bytes(r->body, sizeof(r->body), o->error, strlen(o->error));
        else
            copy_bytes(r->body, sizeof(r->body), o->result.data, o->result.len);
        r->token    = o->token;
        r->no_retry = o->no_retry;
    }
    return fail ? ANVIL_OK : f->complete_code;
}

// Waits (f->mu held) while the test holds Reports.
static void
hold_report(struct fake *f)
{
    while (f->report_hold && !f->stop)
        pthread_cond_wait(&f->cv, &f->mu);
}

static nng_msg *
fake_report(struct fake *f, const Anvil__V1__Request *req)
{
    Anvil__V1__ReportRequest *q = anvil__v1__report_request__unpack(
        NULL, req->body.len, req->body.data);
    if (q == NULL)
        return reply(ANVIL_INVALID_ARGUMENT, NULL, req->request_id);
    Anvil__V1__OutcomeResult  res[MAX_JOBS];
    Anvil__V1__OutcomeResult *ptrs[MAX_JOBS];
    Anvil__V1__ReportResponse resp = ANVIL__V1__REPORT_RESPONSE__INIT;
    int                       code = ANVIL_OK;
    pthread_mutex_lock(&f->mu);
    if (f->n_reports < MAX_CALLS)
        f->report_sizes[f->n_reports] = (int) q->n_outcomes;
    f->n_reports++;
    hold_report(f);
    if (f->report_unimplemented) {
        code = ANVIL_UNIMPLEMENTED;
    } else if (q->n_outcomes > MAX_JOBS) {
        code = ANVIL_INVALID_ARGUMENT;
    } else {
        for (size_t i = 0; i < q->n_outcomes; i++) {
            anvil__v1__outcome_result__init(&res[i]);
            int rc         = record_outcome(f, q->outcomes[i]);
            res[i].code    = (Anvil__V1__Code) rc;
            res[i].message = (char *) (rc == ANVIL_OK ? "" : "fake says no");
            ptrs[i]        = &res[i];
        }
        resp.n_results = q->n_outcomes;
        resp.results   = ptrs;
        if (f->complete_unavailable > 0) {
            f->complete_unavailable--;
            code = ANVIL_UNAVAILABLE;
        }
    }
    pthread_mutex_unlock(&f->mu);
    anvil__v1__report_request__free_unpacked(q, NULL);
    return reply(code, code == ANVIL_OK ? &resp.base : NULL, req->request_id);
}

static nng_msg *
fake_dispatch(struct fake *f, nng_msg *in)
{
    Anvil__V1__Request *req
        = anvil__v1__request__unpack(NULL, nng_msg_len(in), nng_msg_body(in));
    if (req == NULL)
        return reply(ANVIL_INVALID_ARGUMENT, NULL, 0);
    nng_msg *out;
    if (strcmp(req->method, "Poll") == 0)
        out = fake_poll(f, req);
    else if (strcmp(req->method, "Heartbeat") == 0)
        out = fake_heartbeat(f, req);
    else if (strcmp(req->method, "Complete") == 0)
        out = fake_complete(f, req);
    else if (strcmp(req->method, "Fail") == 0)
        out = fake_fail(f, req);
    else if (strcmp(req->method, "Report") == 0)
        out = fake_report(f, req);
    else
        out = reply(ANVIL_UNIMPLEMENTED, NULL, req->request_id);
    anvil__v1__request__free_unpacked(req, NULL);
    return out;
}

static bool
fake_stopping(struct fake *f)
{
    pthread_mutex_lock(&f->mu);
    bool stop = f->stop;
    pthread_mutex_unlock(&f->mu);
    return stop;
}

static void *
fake_main(void *arg)
{
    struct fake *f = arg;
    nng_ctx      ctx;
    nng_aio     *aio;
    if (nng_ctx_open(&ctx, f->sock) != 0)
        return NULL;
    if (nng_aio_alloc(&aio, NULL, NULL) != 0) {
        nng_ctx_close(ctx);
        return NULL;
    }
    // Receives time out now and then, so the thread sees f->stop and
    // leaves before fake_stop() closes the socket: nng 1.5.2 can panic
    // when a socket closes under a context send still in progress.
    nng_aio_set_timeout(aio, 20);
    while (!fake_stopping(f)) {
        nng_ctx_recv(ctx, aio);
        nng_aio_wait(aio);
        int rv = nng_aio_result(aio);
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0)
            break;
        nng_msg *in  = nng_aio_get_msg(aio);
        nng_msg *out = fake_dispatch(f, in);
        nng_msg_free(in);
        if (out == NULL)
            continue;
        nng_aio_set_msg(aio, out);
        nng_ctx_send(ctx, aio);
        nng_aio_wait(aio);
        if (nng_aio_result(aio) != 0)
            nng_msg_free(out);
    }
    nng_aio_free(aio);
    nng_ctx_close(ctx);
    return NULL;
}

static int
fake_start(struct fake *f)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&f->mu, NULL);
    snprintf(f->dir, sizeof(f->dir), "/tmp/anvil-wrt-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->url, sizeof(f->url), "ipc://%s/s", f->dir);
    if (nng_rep0_open(&f->sock) != 0)
        return -1;
    nng_socket_set_size(f->sock, NNG_OPT_RECVMAXSZ, 1 << 20);
    if (nng_listen(f->sock, f->url, NULL, 0) != 0)
        return -1;
    for (int i = 0; i < FAKE_THREADS; i++)
        pthread_create(&f->thr[i], NULL, fake_main, f);
    return 0;
}

static void
fake_stop(struct fake *f)
{
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    for (int i = 0; i < FAKE_THREADS; i++)
        pthread_join(f->thr[i], NULL);
    nng_close(f->sock);
    char path[128];
    snprintf(path, sizeof(path), "%s/s", f->dir);
    unlink(path);
    rmdir(f->dir);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
}

static void
fake_add_job(struct fake *f, const char *id, const char *type,
    const char *payload, uint32_t token)
{
    pthread_mutex_lock(&f->mu);
    f->jobs[f->n_jobs++] = (struct fake_job) { id, type, payload, token, 0 };
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

// ---- test handlers ----

static void
probe_enter(struct probe *p)
{
    pthread_mutex_lock(&p->mu);
    p->calls++;
    p->running++;
    if (p->running > p->max_running)
        p->max_running = p->running;
    pthread_mutex_unlock(&p->mu);
}

static void
probe_leave(struct probe *p)
{
    pthread_mutex_lock(&p->mu);
    p->running--;
    pthread_mutex_unlock(&p->mu);
    if (p->fake == NULL)
        return;
    pthread_mutex_lock(&p->fake->mu);
    p->fake->outstanding--;
    pthread_mutex_unlock(&p->fake->mu);
}

static bool
probe_released(struct probe *p)
{
    pthread_mutex_lock(&p->mu);
    bool r = p->release;
    pthread_mutex_unlock(&p->mu);
    return r;
}

// Returns "done:<payload>".
static int
probe_ok(void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    probe_enter(arg);
    char out[128];
    int  n = snprintf(out, sizeof(out), "done:%s", (char *) lease->job.payload);
    probe_leave(arg);
    return anvil_job_ctx_set_result(ctx, out, (size_t) n);
}

static int
probe_fail_final(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) lease;
    probe_enter(arg);
    anvil_job_ctx_set_error(ctx, false, "boom %d", 42);
    probe_leave(arg);
    return ANVIL_INTERNAL;
}

static int
probe_fail_silent(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) lease;
    (void) ctx;
    probe_enter(arg);
    probe_leave(arg);
    return ANVIL_ABORTED;
}

// Runs until the test releases it (or the job is canceled).
static int
probe_gate(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    struct probe *p = arg;
    probe_enter(p);
    while (!probe_released(p) && !anvil_job_ctx_is_canceled(ctx))
        anvil_job_ctx_sleep(ctx, 2);
    probe_leave(p);
    return anvil_job_ctx_set_result(ctx, lease->job.id, strlen(lease->job.id));
}

// Sleeps a minute unless canceled.
static int
probe_sleep(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) lease;
    struct probe *p = arg;
    probe_enter(p);
    bool all = anvil_job_ctx_sleep(ctx, 60000);
    bool cxl = anvil_job_ctx_is_canceled(ctx);
    pthread_mutex_lock(&p->mu);
    p->slept_all  = all;
    p->saw_cancel = cxl;
    pthread_mutex_unlock(&p->mu);
    probe_leave(p);
    if (all)
        return ANVIL_OK;
    anvil_job_ctx_set_error(ctx, true, "canceled");
    return ANVIL_CANCELLED;
}

// ---- fixtures and waits ----

static int
thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    int  n = 0;
    if (d == NULL)
        return -1;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int
setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    if (e == NULL || fake_start(&e->fake) != 0)
        return -1;
    pthread_mutex_init(&e->probe.mu, NULL);
    e->probe.fake = &e->fake;
    e->fake.cap   = 1;
    pthread_mutex_lock(&log_mu);
    log_text[0] = '\0';
    pthread_mutex_unlock(&log_mu);
    e->threads_before = thread_count();
    *state            = e;
    return 0;
}

static int
teardown(void **state)
{
    struct env *e = *state;
    anvil_worker_free(e->w);
    fake_stop(&e->fake);
    pthread_mutex_destroy(&e->probe.mu);
    free(e);
    return 0;
}

// Creates e->w with `slots` slots, e->prefetch, 200 ms polls and 50 ms
// heartbeats, registers the (type, fn, arg) triples (a NULL type ends
// them; a NULL arg means the probe) and starts it.
static void
start_worker(struct env *e, int slots, ...)
{
    struct anvil_worker_opts o   = { 0 };
    struct anvil_error       err = { 0 };
    o.url                        = e->fake.url;
    o.name                       = "w-test";
    o.slots                      = slots;
    o.poll_wait_ms               = 200;
    o.heartbeat_ms               = 50;
    o.prefetch                   = e->prefetch;
    pthread_mutex_lock(&e->fake.mu);
    e->fake.cap = slots
        + (e->prefetch == 0       ? slots
                : e->prefetch < 0 ? 0
                                  : e->prefetch);
    pthread_mutex_unlock(&e->fake.mu);
    assert_int_equal(anvil_worker_new(&e->w, &o, &err), ANVIL_OK);
    va_list ap;
    va_start(ap, slots);
    for (const char *t = va_arg(ap, const char *); t != NULL;
         t             = va_arg(ap, const char *)) {
        anvil_handler_fn fn  = va_arg(ap, anvil_handler_fn);
        void            *arg = va_arg(ap, void *);
        arg                  = arg != NULL ? arg : &e->probe;
        assert_int_equal(
            anvil_worker_add_handler(e->w, t, fn, arg, &err), ANVIL_OK);
    }
    va_end(ap);
    assert_int_equal(anvil_worker_start(e->w, &err), ANVIL_OK);
}

// A counter guarded by a mutex, and the value a wait expects of it.
struct count_wait {
    pthread_mutex_t *mu;
    const int       *field;
    int              at_least;
};

static bool
count_reached(void *arg)
{
    struct count_wait *cw = arg;
    pthread_mutex_lock(cw->mu);
    bool ok = *cw->field >= cw->at_least;
    pthread_mutex_unlock(cw->mu);
    return ok;
}

// Waits up to WAIT_MS until *field (guarded by mu) reaches at_least.
static bool
wait_count(pthread_mutex_t *mu, const int *field, int at_least)
{
    struct count_wait cw = { mu, field, at_least };
    return harness_wait_for(count_reached, &cw, WAIT_MS);
}

static int
read_count(pthread_mutex_t *mu, const int *field)
{
    pthread_mutex_lock(mu);
    int v = *field;
    pthread_mutex_unlock(mu);
    return v;
}

// ---- tests ----

static void
test_worker_runs_a_leased_job_once_and_completes_it_with_its_result(
    void **state)
{
    struct env  *e = *state;
    struct fake *f = &e->fake;
    f->want_types  = "probe,other";
    fake_add_job(f, "j1", "probe", "hi", 7);
    start_worker(
        e, 1, "probe", probe_ok, NULL, "other", probe_fail_final, NULL, NULL);
    assert_true(wait_count(&f->mu, &f->n_completes, 1));
    assert_true(wait_count(&f->mu, &f->n_polls, 2)); // the next poll began
    anvil_worker_stop(e->w, 1000);
    struct anvil_worker_stats st;
    anvil_worker_get_stats(e->w, &st);

    assert_int_equal(e->probe.calls, 1);
    assert_int_equal(f->n_completes, 1);
    assert_string_equal(f->completes[0].job_id, "j1");
    assert_int_equal(f->completes[0].token, 7);
    assert_string_equal(f->completes[0].body, "done:hi");
    assert_int_equal(f->n_fails, 0);
    assert_false(f->poll_bad_types);
    assert_false(f->poll_over_free);
    assert_int_equal(st.succeeded, 1);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.running, 0);
    assert_true(log_has("worker.job.start id=j1 type=probe attempt=7"));
    assert_true(log_has("worker.job.done id=j1 type=probe"));
}

static void
test_worker_reports_a_handler_failure_with_its_error_and_final_flag(
    void **state)
{
    struct env  *e = *state;
    struct fake *f = &e->fake;
    fake_add_job(f, "j2", "bad", "x", 3);
    start_worker(e, 1, "bad", probe_fail_final, NULL, NULL);
    assert_true(wait_count(&f->mu, &f->n_fails, 1));
    anvil_worker_stop(e->w, 1000);
    struct anvil_worker_stats st;
    anvil_worker_get_stats(e->w, &st);

    assert_int_equal(f->n_fails, 1);
    assert_string_equal(f->fails[0].job_id, "j2");
    assert_int_equal(f->fails[0].token, 3);
    assert_string_equal(f->fails[0].body, "boom 42");
    assert_true(f->fails[0].no_retry);
    assert_int_equal(f->n_completes, 0);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.succeeded, 0);
}

static void
test_worker_gives_a_silent_failure_a_retryable_error_naming_type_and_code(
    void **state)
{
    struct env  *e = *state;
    struct fake *f = &e->fake;
    fake_add_job(f, "j3", "quiet", "x", 1);
    start_worker(e, 1, "quiet", probe_fail_silent, NULL, NULL);
    assert_true(wait_count(&f->mu, &f->n_fails, 1));
    anvil_worker_stop(e->w, 1000);

    assert_int_equal(f->n_fails, 1);
    assert_non_null(strstr(f->fails[0].body, "quiet"));
    assert_non_null(strstr(f->fails[0].body, "ABORTED"));
    assert_false(f->fails[0].no_retry);
}

static void
test_worker_without_prefetch_never_polls_for_more_jobs_than_free_slots(
    void **state)
{
    struct env  *e = *state;
    struct fake *f = &e->fake;
    e->prefetch    = -1;
    fake_add_job(f, "g1", "gate", "", 1);
    fake_add_job(f, "g2", "gate", "", 1);
    fake_add_job(f, "g3", "gate", "", 1);
    start_worker(e, 2, "gate", probe_gate, NULL, NULL);
    assert_true(wait_count(&e->probe.mu, &e->probe.running, 2));
    // Both slots are busy: give the poll thread a few heartbeats' time to
    // misbehave before the gate opens.
    int hb = read_count(&f->mu, &f->n_heartbeats);
    assert_true(wait_count(&f->mu, &f->n_heartbeats, hb + 3));
    int polls_while_full = read_count(&f->mu, &f->n_polls);
    pthread_mutex_lock(&e->probe.mu);
    e->probe.release = true;
    pthread_mutex_unlock(&e->probe.mu);
    assert_true(wait_count(&f->mu, &f->n_completes, 3));
    anvil_worker_stop(e->w, 1000);

    assert_int_equal(polls_while_full, 1);
    assert_int_equal(f->first_max_jobs, 2);
    assert_false(f->poll_over_free);
    assert_int_equal(e->probe.calls, 3);
    assert_int_equal(e->probe.max_running, 2);
}

static void
test_worker_stop_cancels_a_running_handler_after_the_grace_and_joins_all(
    void **state)
{
    struct env  *e = *state;
    struct fake *f = &e->fake;
    fake_add_job(f, "s1", "nap", "", 2);
    start_worker(e, 2, "nap", probe_sleep, NULL, NULL);
    assert_true(wait_count(&e->probe.mu, &e->probe.running, 1));
    assert_true(thread_count() > e->threads_before);
    anvil_worker_stop(e->w, 50);
    int threads_after = thread_count();
    anvil_worker_stop(e->w, 50); // a second stop is harmless

    assert_int_equal(threads_after, e->threads_before);
    assert_false(e->probe.slept_all);
    assert_true(e->probe.saw_cancel);
    assert_int_equal(f->n_fails, 1);
    assert_string_equal(f->fails[0].job_id, "s1");
    assert_string_equal(f->fails[0].body, "canceled");
    assert_false(f->fails[0].no_retry);
}

static void
test_worker_wakes_a_sleeping_handler_when_a_heartbeat_cancels_its_job(
    void **state)
{
    struct env  *e = *state;
    struct fake *f = &e->fake;
    f->hb_cancel   = "c1";
    fake_add_job(f, "c1", "nap", "", 5);
    start_worker(e, 1, "nap", probe_sleep, NULL, NULL);
    assert_true(wait_count(&f->mu, &f->n_fails, 1));
    anvil_worker_stop(e->w, 1000);

    assert_int_equal(f->hb_token, 5);
    assert_false(e->probe.slept_all);
    assert_true(e->probe.saw_cancel);
    assert_string_equal(f->fails[0].job_id, "c1");
    assert_string_equal(f->fails[0].body, "canceled");
    assert_true(log_has("worker.job.cancel id=c1 reason=canceled"));
}

static void
test_worker_resends_complete_while_the_server_is_unavailable(void **state)
{
    struct env  *e          = *state;
    struct fake *f          = &e->fake;
    f->complete_unavailable = 2;
    fake_add_job(f, "r1", "probe", "a", 4);
    start_worker(e, 1, "probe", probe_ok, NULL, NULL);
    assert_true(wait_count(&f->mu, &f->n_completes, 3));
    assert_true(wait_count(&f->mu, &f->n_polls, 2));
    anvil_worker_stop(e->w, 1000);
    struct anvil_worker_stats st;
    anvil_worker_get_stats(e->w, &st);

    assert_int_equal(e->probe.calls, 1);
    assert_int_equal(f->n_completes, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(f->completes[i].job_id, "r1");
        assert_int_equal(f->completes[i].token, 4);
        assert_string_equal(f->completes[i].body, "done:a");
    }
    assert_int_equal(st.succeeded, 1);
    assert_int_equal(f->n_reports, 3);
    assert_true(log_has(
        "worker.report.retry rpc=Report outcomes=1 first=r1 code=UNAVAILABLE"));
}

static void
test_worker_gives_up_a_report_when_its_lease_is_gone(void **state)
{
    struct env  *e   = *state;
    struct fake *f   = &e->fake;
    f->complete_code = ANVIL_FAILED_PRECONDITION;
    fake_add_job(f, "l1", "probe", "a", 9);
    start_worker(e, 1, "probe", probe_ok, NULL, NULL);
    assert_true(wait_count(&f->mu, &f->n_completes, 1));
    // The slot is free again only once the report loop has ended.
    assert_true(wait_count(&f->mu, &f->n_polls, 2));
    anvil_worker_stop(e->w, 1000);
    struct anvil_worker_stats st;
    anvil_worker_get_stats(e->w, &st);

    assert_int_equal(f->n_completes, 1);
    assert_int_equal(st.succeeded, 0);
    assert_true(log_has("warn  worker worker.job.lease_lost id=l1 token=9"));
}

static void
test_worker_polls_again_after_the_server_refuses_a_poll(void **state)
{
    struct env  *e      = *state;
    struct fake *f      = &e->fake;
    f->poll_unavailable = 2;
    fake_add_job(f, "p1", "probe", "b", 1);
    start_worker(e, 1, "probe", probe_ok, NULL, NULL);
    assert_true(wait_count(&f->mu, &f->n_completes, 1));
    anvil_worker_stop(e->w, 1000);

    assert_true(f->n_polls >= 3);
    assert_string_equal(f->completes[0].body, "done:b");
    assert_true(log_has("worker.poll.error code=UNAVAILABLE"));
    assert_true(log_has("worker.poll.resumed"));
}

static void
test_worker_cancels_a_handler_once_its_job_timeout_passes(void **state)
{
    struct env  *e = *state;
    struct fake *f = &e->fake;
    fake_add_job(f, "t1", "nap", "", 1);
    f->jobs[0].timeout_ms = 30;
    start_worker(e, 1, "nap", probe_sleep, NULL, NULL);
    assert_true(wait_count(&f->mu, &f->n_fails, 1));
    anvil_worker_stop(e->w, 1000);

    assert_false(e->probe.slept_all);
    assert_true(e->probe.saw_cancel);
    assert_string_equal(f->fails[0].job_id, "t1");
    assert_string_equal(f->fails[0].body, "canceled");
}

static void
test_worker_drops_the_report_of_a_job_whose_lease_was_lost(void **state)
{
    struct env  *e = *state;
    struct fake *f = &e->fake;
    f->hb_lost     = "x1";
    fake_add_job(f, "x1", "nap", "", 6);
    start_worker(e, 1, "nap", probe_sleep, NULL, NULL);
    assert_true(wait_count(&e->probe.mu, &e->probe.calls, 1));
    // The slot frees (and the worker polls again) once the job is dropped.
    assert_true(wait_count(&f->mu, &f->n_polls, 2));
    anvil_worker_stop(e->w, 1000);

    assert_int_equal(f->hb_token, 6);
    assert_true(e->probe.saw_cancel);
    assert_int_equal(f->n_fails, 0);
    assert_int_equal(f->n_completes, 0);
    assert_true(log_has("worker.job.cancel id=x1 reason=lost"));
    assert_true(log_has("worker.job.lease_lost id=x1 token=6"));
}

static void
test_worker_turns_a_refused_result_into_a_final_failure(void **state)
{
    struct env  *e   = *state;
    struct fake *f   = &e->fake;
    f->complete_code = ANVIL_INVALID_ARGUMENT;
    fake_add_job(f, "b1", "probe", "big", 2);
    start_worker(e, 1, "probe", probe_ok, NULL, NULL);
    assert_true(wait_count(&f->mu, &f->n_fails, 1));
    anvil_worker_stop(e->w, 1000);

    assert_int_equal(f->n_completes, 1);
    assert_string_equal(f->fails[0].job_id, "b1");
    assert_int_equal(f->fails[0].token, 2);
    assert_true(f->fails[0].no_retry);
    assert_string_equal(f->fails[0].body, "result rejected: fake says no");
}

static void
test_worker_leases_at_most_slots_plus_prefetch_jobs_while_handlers_run(
    void **state)
{
    struct env  *e     = *state;
    struct fake *f     = &e->fake;
    const char  *ids[] = { "h1", "h2", "h3", "h4", "h5", "h6", "h7" };
    e->prefetch        = 3;
    for (size_t i = 0; i < 7; i++)
        fake_add_job(f, ids[i], "gate", "", 1);
    start_worker(e, 2, "gate", probe_gate, NULL, NULL);
    assert_true(wait_count(&e->probe.mu, &e->probe.running, 2));
    int hb = read_count(&f->mu, &f->n_heartbeats);
    assert_true(wait_count(&f->mu, &f->n_heartbeats, hb + 3));
    int polls_while_full = read_count(&f->mu, &f->n_polls);
    int leased           = read_count(&f->mu, &f->outstanding);
    pthread_mutex_lock(&e->probe.mu);
    e->probe.release = true;
    pthread_mutex_unlock(&e->probe.mu);
    assert_true(wait_count(&f->mu, &f->n_completes, 7));
    anvil_worker_stop(e->w, 1000);

    assert_int_equal(f->first_max_jobs, 5);
    assert_int_equal(polls_while_full, 1);
    assert_int_equal(leased, 5);
    assert_false(f->poll_over_free);
    assert_int_equal(e->probe.calls, 7);
    assert_int_equal(e->probe.max_running, 2);
}

static void
test_worker_new_takes_prefetch_none_and_default_as_documented(void **state)
{
    struct env  *e = *state;
    struct fake *f = &e->fake;
    fake_add_job(f, "d1", "probe", "x", 1);
    start_worker(e, 3, "probe", probe_ok, NULL, NULL);
    assert_true(wait_count(&f->mu, &f->n_completes, 1));
    anvil_worker_stop(e->w, 1000);

    assert_int_equal(f->first_max_jobs, 6); // prefetch 0: as many as slots
    assert_true(log_has("slots=3 prefetch=3"));
}

static bool
worker_idle(void *arg)
{
    struct anvil_worker_stats st;
    anvil_worker_get_stats(arg, &st);
    return st.running == 0;
}

static void
release_gates(struct probe *p)
{
    pthread_mutex_lock(&p->mu);
    p->release = true;
    pthread_mutex_unlock(&p->mu);
}

static void
test_worker_sends_outcomes_that_finish_during_a_report_in_one_report(
    void **state)
{
    struct env  *e     = *state;
    struct fake *f     = &e->fake;
    const char  *ids[] = { "b2", "b3", "b4", "b5", "b6" };
    f->report_hold     = true;
    fake_add_job(f, "b1", "probe", "b1", 2);
    for (size_t i = 0; i < 5; i++)
        fake_add_job(f, ids[i], "gate", "", 2);
    start_worker(e, 4, "probe", probe_ok, NULL, "gate", probe_gate, NULL, NULL);
    // b1's outcome goes alone and is parked; the others finish meanwhile.
    assert_true(wait_count(&f->mu, &f->n_reports, 1));
    release_gates(&e->probe);
    assert_true(wait_count(&e->probe.mu, &e->probe.calls, 6));
    assert_true(harness_wait_for(worker_idle, e->w, WAIT_MS));
    pthread_mutex_lock(&f->mu);
    f->report_hold = false;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    assert_true(wait_count(&f->mu, &f->n_completes, 6));
    anvil_worker_stop(e->w, 1000);
    struct anvil_worker_stats st;
    anvil_worker_get_stats(e->w, &st);

    assert_int_equal(f->report_sizes[0], 1);
    assert_string_equal(f->completes[0].job_id, "b1");
    assert_string_equal(f->completes[0].body, "done:b1");
    // The five land in one Report (two if a slot was preempted between
    // its handler's return and its hand-over).
    assert_true(f->n_reports == 2 || f->n_reports == 3);
    assert_int_equal(f->report_sizes[1] + f->report_sizes[2], 5);
    assert_int_equal(st.succeeded, 6);
    for (int i = 1; i < 6; i++)
        assert_string_equal(f->completes[i].body, f->completes[i].job_id);
}

static void
test_worker_falls_back_to_complete_and_fail_when_report_is_unknown(void **state)
{
    struct env  *e          = *state;
    struct fake *f          = &e->fake;
    f->report_unimplemented = true;
    f->complete_unavailable = 1; // the legacy path retries too
    fake_add_job(f, "o1", "probe", "a", 1);
    fake_add_job(f, "o2", "bad", "b", 1);
    fake_add_job(f, "o3", "probe", "c", 1);
    start_worker(
        e, 1, "probe", probe_ok, NULL, "bad", probe_fail_final, NULL, NULL);
    assert_true(wait_count(&f->mu, &f->n_completes, 3));
    assert_true(wait_count(&f->mu, &f->n_fails, 1));
    anvil_worker_stop(e->w, 1000);
    struct anvil_worker_stats st;
    anvil_worker_get_stats(e->w, &st);

    assert_int_equal(f->n_reports, 1); // asked once, never again
    assert_int_equal(st.succeeded, 2);
    assert_int_equal(st.failed, 1);
    assert_string_equal(f->fails[0].job_id, "o2");
    assert_true(f->fails[0].no_retry);
    assert_true(log_has("worker.report.fallback"));
    assert_true(log_has("rpc=Complete code=UNAVAILABLE tries=1"));
}

static void
test_worker_stop_flushes_a_report_the_server_has_not_taken_yet(void **state)
{
    struct env  *e          = *state;
    struct fake *f          = &e->fake;
    f->complete_unavailable = 2;
    fake_add_job(f, "f1", "probe", "z", 3);
    start_worker(e, 1, "probe", probe_ok, NULL, NULL);
    assert_true(wait_count(&f->mu, &f->n_completes, 1)); // refused once
    anvil_worker_stop(e->w, 0);
    struct anvil_worker_stats st;
    anvil_worker_get_stats(e->w, &st);

    assert_int_equal(f->n_completes, 3);
    assert_int_equal(f->complete_unavailable, 0);
    assert_int_equal(st.succeeded, 1);
}

static bool
hb_saw_token(void *arg)
{
    struct fake *f = arg;
    pthread_mutex_lock(&f->mu);
    bool seen = f->hb_token != 0;
    pthread_mutex_unlock(&f->mu);
    return seen;
}

static void
test_worker_drops_a_pending_report_whose_lease_was_lost_and_goes_on(
    void **state)
{
    struct env  *e = *state;
    struct fake *f = &e->fake;
    f->report_hold = true;
    fake_add_job(f, "q1", "probe", "a", 1);
    fake_add_job(f, "q2", "gate", "", 4);
    fake_add_job(f, "q3", "gate", "", 1);
    start_worker(e, 1, "probe", probe_ok, NULL, "gate", probe_gate, NULL, NULL);
    assert_true(wait_count(&f->mu, &f->n_reports, 1)); // q1's, parked
    release_gates(&e->probe);
    // One slot: q3 ran only after q2's outcome was queued behind q1's.
    assert_true(wait_count(&e->probe.mu, &e->probe.calls, 3));
    pthread_mutex_lock(&f->mu);
    f->hb_lost = "q2";
    pthread_mutex_unlock(&f->mu);
    assert_true(harness_wait_for(hb_saw_token, f, WAIT_MS));
    pthread_mutex_lock(&f->mu);
    f->report_hold = false;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    assert_true(wait_count(&f->mu, &f->n_completes, 2));
    fake_add_job(f, "q4", "probe", "d", 1); // the worker goes on
    assert_true(wait_count(&f->mu, &f->n_completes, 3));
    anvil_worker_stop(e->w, 1000);
    struct anvil_worker_stats st;
    anvil_worker_get_stats(e->w, &st);

    assert_int_equal(f->report_sizes[0], 1);
    assert_int_equal(f->hb_token, 4);
    assert_string_equal(f->completes[0].job_id, "q1");
    assert_string_equal(f->completes[1].job_id, "q3");
    assert_string_equal(f->completes[2].job_id, "q4");
    assert_int_equal(st.succeeded, 3);
    assert_true(
        log_has("worker.job.lease_lost id=q2 token=4 reason=heartbeat"));
    assert_false(log_has("worker.job.cancel id=q2"));
}

static void
test_builtin_echo_handler_returns_its_payload(void **state)
{
    struct env  *e = *state;
    struct fake *f = &e->fake;
    fake_add_job(f, "e1", "echo", "{\"a\": [1, 2]}", 1);
    fake_add_job(f, "e2", "echo", "", 1);
    start_worker(e, 1, "echo", handler_echo, NULL, NULL);
    assert_true(wait_count(&f->mu, &f->n_completes, 2));
    anvil_worker_stop(e->w, 1000);

    assert_string_equal(f->completes[0].job_id, "e1");
    assert_string_equal(f->completes[0].body, "{\"a\": [1, 2]}");
    assert_string_equal(f->completes[1].job_id, "e2");
    assert_string_equal(f->completes[1].body, "");
    assert_int_equal(f->n_fails, 0);
}

static void
test_builtin_sleep_handler_prints_and_returns_its_message(void **state)
{
    struct env  *e   = *state;
    struct fake *f   = &e->fake;
    FILE        *out = tmpfile();
    assert_non_null(out);
    fake_add_job(f, "k1", "Sleep",
        "{\"SleepTimeInSeconds\": 0.01, \"Message\": \"Hello World\"}", 1);
    fake_add_job(f, "k2", "Sleep", "{\"SleepTimeInSeconds\": -1}", 1);
    start_worker(e, 1, "Sleep", handler_sleep, out, NULL);
    assert_true(wait_count(&f->mu, &f->n_completes, 1));
    assert_true(wait_count(&f->mu, &f->n_fails, 1));
    anvil_worker_stop(e->w, 1000);
    char line[64] = "";
    rewind(out);
    char *got = fgets(line, sizeof(line), out);
    fclose(out);

    assert_non_null(got);
    assert_string_equal(line, "Hello World\n");
    assert_string_equal(f->completes[0].job_id, "k1");
    assert_string_equal(f->completes[0].body, "\"Hello World\"");
    assert_string_equal(f->fails[0].job_id, "k2");
    assert_true(f->fails[0].no_retry);
    assert_string_equal(f->fails[0].body,
        "Sleep: \"SleepTimeInSeconds\" must be a number of seconds between 0 "
        "and 86400");
}

static void
test_worker_new_rejects_bad_options(void **state)
{
    struct env              *e        = *state;
    struct anvil_error       err      = { 0 };
    anvil_worker            *w        = NULL;
    const char *const        bad_q[]  = { "no spaces allowed" };
    const char *const        good_q[] = { "default", "mail.high" };
    struct anvil_worker_opts o        = { .url = e->fake.url };

    o.slots = -1;
    assert_int_equal(anvil_worker_new(&w, &o, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "slots"));
    assert_null(w);
    o.slots    = 2;
    o.queues   = bad_q;
    o.n_queues = 1;
    assert_int_equal(anvil_worker_new(&w, &o, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "no spaces allowed"));
    o.queues = good_q;
    o.name   = "bad name";
    assert_int_equal(anvil_worker_new(&w, &o, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "bad name"));
    o.name     = NULL;
    o.prefetch = -2;
    assert_int_equal(anvil_worker_new(&w, &o, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "prefetch"));
    assert_non_null(strstr(err.msg, "-2"));
    o.prefetch = 1001;
    assert_int_equal(anvil_worker_new(&w, &o, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "prefetch"));
    assert_null(w);
    o.prefetch = -1;
    assert_int_equal(anvil_worker_new(&w, &o, &err), ANVIL_OK);
    anvil_worker_free(w);
    w          = NULL;
    o.prefetch = 1000;
    o.name     = "w-1.ok_name";
    o.n_queues = 2;
    assert_int_equal(anvil_worker_new(&w, &o, &err), ANVIL_OK);
    assert_non_null(w);
    anvil_worker_free(w);
}

static void
test_worker_add_handler_rejects_duplicate_and_bad_types(void **state)
{
    struct env              *e   = *state;
    struct anvil_error       err = { 0 };
    struct anvil_worker_opts o   = { .url = e->fake.url };
    assert_int_equal(anvil_worker_new(&e->w, &o, &err), ANVIL_OK);

    assert_int_equal(anvil_worker_start(e->w, &err), ANVIL_FAILED_PRECONDITION);
    assert_int_equal(
        anvil_worker_add_handler(e->w, "ok.type-1", probe_ok, NULL, &err),
        ANVIL_OK);
    assert_int_equal(
        anvil_worker_add_handler(e->w, "ok.type-1", probe_ok, NULL, &err),
        ANVIL_ALREADY_EXISTS);
    assert_int_equal(
        anvil_worker_add_handler(e->w, "bad type", probe_ok, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_int_equal(anvil_worker_add_handler(e->w, "", probe_ok, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_int_equal(anvil_worker_add_handler(e->w, "nofn", NULL, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
}

static void
test_worker_names_itself_host_dash_pid_by_default(void **state)
{
    struct env              *e         = *state;
    struct fake             *f         = &e->fake;
    struct anvil_error       err       = { 0 };
    struct anvil_worker_opts o         = { .url = f->url, .poll_wait_ms = 50 };
    char                     host[100] = "";
    char                     want[160];
    gethostname(host, sizeof(host));
    snprintf(want, sizeof(want), "%s-%ld", host, (long) getpid());
    assert_int_equal(anvil_worker_new(&e->w, &o, &err), ANVIL_OK);
    assert_int_equal(
        anvil_worker_add_handler(e->w, "probe", probe_ok, &e->probe, &err),
        ANVIL_OK);
    assert_int_equal(anvil_worker_start(e->w, &err), ANVIL_OK);
    assert_true(wait_count(&f->mu, &f->n_polls, 1));
    anvil_worker_stop(e->w, 0);

    assert_string_equal(f->worker_id, want);
}

// ---- the tasks module on its own (no server) ----

// A list of n leases of type "t" with ids "j0".., each lease 3 s long.
static struct anvil_lease_list *
make_leases(size_t n)
{
    struct anvil_lease_list *list = calloc(1, sizeof(*list));
    assert_non_null(list);
    struct anvil_lease *ls = calloc(n, sizeof(*ls));
    assert_non_null(ls);
    list->leases = ls;
    list->n      = n;
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "j%zu", i);
        ls[i].job.id            = strdup(id);
        ls[i].job.type          = strdup("t");
        ls[i].token             = (uint32_t) i + 1;
        ls[i].job.started_at_ms = 1000;
        ls[i].deadline_ms       = 4000;
    }
    return list;
}

// Takes, finishes and releases every queued task (as slots and the
// reporter would); returns how many.
static size_t
finish_all(struct tasks *ts)
{
    size_t n = 0;
    for (struct task *t = ts->queue_head; t != NULL; t = ts->queue_head) {
        assert_ptr_equal(tasks_next(ts), t);
        tasks_finish(ts, t);
        tasks_release(ts, t);
        n++;
    }
    return n;
}

static void
test_tasks_room_counts_unfinished_jobs_and_the_report_backlog(void **state)
{
    (void) state;
    struct tasks ts;
    assert_int_equal(tasks_init(&ts), ANVIL_OK);
    assert_int_equal(tasks_wait_room(&ts, 4, 6, 1000), 4);
    tasks_add(&ts, make_leases(3));
    assert_int_equal(tasks_wait_room(&ts, 4, 6, 1000), 1);
    // Two handlers return: their outcomes still wait for the reporter, so
    // they free a slot's room but still count against the backlog.
    struct task *a = tasks_next(&ts);
    struct task *b = tasks_next(&ts);
    assert_false(tasks_finish(&ts, a));
    assert_false(tasks_finish(&ts, b));
    struct tasks_load ld;
    tasks_load(&ts, &ld);
    assert_int_equal(ld.n_held, 3);
    assert_int_equal(ld.n_unfinished, 1);
    assert_int_equal(ld.n_returned, 2);
    assert_int_equal(tasks_wait_room(&ts, 4, 4, 1000), 1);
    tasks_release(&ts, a);
    tasks_release(&ts, b);
    assert_int_equal(tasks_wait_room(&ts, 4, 6, 1000), 3);
    assert_int_equal(finish_all(&ts), 1);
    tasks_fini(&ts);
}

static void
test_tasks_phase_moves_forward_only_and_cancel_flags_every_held_job(
    void **state)
{
    (void) state;
    struct tasks ts;
    assert_int_equal(tasks_init(&ts), ANVIL_OK);
    tasks_add(&ts, make_leases(2));
    struct task *running = tasks_next(&ts);
    assert_false(running->skip);
    assert_false(anvil_job_ctx_is_canceled(&running->ctx));
    assert_true(tasks_set_phase(&ts, TASKS_STOPPING));
    assert_false(tasks_set_phase(&ts, TASKS_STOPPING));
    assert_int_equal(tasks_wait_room(&ts, 10, 10, 1000), 0); // no more polls
    assert_true(tasks_set_phase(&ts, TASKS_POLL_DONE));
    assert_int_equal(tasks_drain(&ts, 0), 2); // grace over at once
    assert_false(tasks_set_phase(&ts, TASKS_OPEN));
    assert_true(anvil_job_ctx_is_canceled(&running->ctx));
    assert_false(anvil_job_ctx_sleep(&running->ctx, 60000));
    struct task *queued = tasks_next(&ts);
    assert_non_null(queued);
    assert_true(queued->skip);    // canceled before it started
    assert_null(tasks_next(&ts)); // the slot exits: queue empty, polls done
    tasks_finish(&ts, running);
    tasks_finish(&ts, queued);
    tasks_release(&ts, running);
    tasks_release(&ts, queued);
    assert_true(tasks_set_phase(&ts, TASKS_CLOSED));
    assert_false(tasks_wait_heartbeat(&ts, 60000));
    tasks_fini(&ts);
}

static void
test_tasks_flag_marks_lost_jobs_and_tells_which_still_run(void **state)
{
    (void) state;
    struct tasks ts;
    assert_int_equal(tasks_init(&ts), ANVIL_OK);
    tasks_add(&ts, make_leases(3));
    struct task *t0 = tasks_next(&ts);
    struct task *t1 = tasks_next(&ts);
    tasks_finish(&ts, t1);
    size_t                  n;
    struct anvil_lease_ref *refs = tasks_refs(&ts, &n);
    assert_int_equal(n, 3);
    tasks_refs_free(refs, n);
    char *ids[]      = { "j0", "j1", "nope" };
    bool  running[3] = { false, false, false };
    tasks_flag(&ts, ids, 3, true, running);
    assert_true(running[0]);  // its handler runs: it is told to stop
    assert_false(running[1]); // returned already: only its report waits
    assert_false(running[2]); // not held
    assert_true(tasks_lost(&ts, t0));
    assert_true(tasks_lost(&ts, t1));
    assert_true(tasks_finish(&ts, t0)); // lost: nothing to report
    tasks_release(&ts, t0);
    tasks_release(&ts, t1);
    assert_int_equal(finish_all(&ts), 1);
    tasks_fini(&ts);
}

// The progress refs of one heartbeat: how many carry one.
static size_t
refs_with_progress(struct tasks *ts, int *percent, char *msg, size_t cap)
{
    size_t                  n, k = 0;
    struct anvil_lease_ref *refs = tasks_refs(ts, &n);
    for (size_t i = 0; i < n; i++) {
        if (!refs[i].has_progress)
            continue;
        *percent = refs[i].progress_percent;
        snprintf(msg, cap, "%s", refs[i].progress_message);
        k++;
    }
    tasks_refs_free(refs, n);
    return k;
}

static void
test_tasks_progress_goes_out_once_per_change_at_most_once_a_second(void **state)
{
    (void) state;
    struct tasks ts;
    int          pct = -1;
    char         msg[ANVIL_PROGRESS_MESSAGE_MAX + 1];
    assert_int_equal(tasks_init(&ts), ANVIL_OK);
    tasks_add(&ts, make_leases(2));
    struct task *t = tasks_next(&ts);
    assert_int_equal(refs_with_progress(&ts, &pct, msg, sizeof(msg)), 0);
    // Out of bounds: refused, nothing recorded.
    assert_int_equal(
        anvil_job_ctx_set_progress(&t->ctx, 101, "x"), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(anvil_job_ctx_set_progress(&t->ctx, 5, "bad \xff"),
        ANVIL_INVALID_ARGUMENT);
    assert_int_equal(refs_with_progress(&ts, &pct, msg, sizeof(msg)), 0);
    // A change wakes the heartbeat at once (no progress went out yet).
    assert_int_equal(anvil_job_ctx_set_progress(&t->ctx, 30, "a"), ANVIL_OK);
    int64_t start = av_mono_ms();
    assert_true(tasks_wait_heartbeat(&ts, 60000));
    assert_true(av_mono_ms() - start < 30000);
    assert_int_equal(refs_with_progress(&ts, &pct, msg, sizeof(msg)), 1);
    assert_int_equal(pct, 30);
    assert_string_equal(msg, "a");
    // Carried: not again. A new value waits for the second to pass.
    assert_int_equal(refs_with_progress(&ts, &pct, msg, sizeof(msg)), 0);
    assert_int_equal(anvil_job_ctx_set_progress(&t->ctx, 30, "a"), ANVIL_OK);
    assert_int_equal(anvil_job_ctx_set_progress(&t->ctx, 40, NULL), ANVIL_OK);
    assert_int_equal(refs_with_progress(&ts, &pct, msg, sizeof(msg)), 0);
    ts.progress_sent_ms -= TASKS_PROGRESS_GAP_MS; // as if a second passed
    assert_int_equal(refs_with_progress(&ts, &pct, msg, sizeof(msg)), 1);
    assert_int_equal(pct, 40);
    assert_string_equal(msg, "");
    // A failed heartbeat sends it again.
    size_t                  n;
    struct anvil_lease_ref *refs = tasks_refs(&ts, &n);
    struct anvil_lease_ref  sent = refs[0];
    if (strcmp(refs[1].job_id, t->lease->job.id) == 0)
        sent = refs[1];
    sent.has_progress = true;
    tasks_progress_unsent(&ts, &sent, 1);
    tasks_refs_free(refs, n);
    ts.progress_sent_ms -= TASKS_PROGRESS_GAP_MS;
    assert_int_equal(refs_with_progress(&ts, &pct, msg, sizeof(msg)), 1);
    tasks_finish(&ts, t);
    tasks_release(&ts, t);
    assert_int_equal(finish_all(&ts), 1);
    tasks_fini(&ts);
}

int
main(void)
{
    anvil_logger_set(test_logger, NULL);
    av_log_set_level(AV_LOG_DEBUG);
    av_log_set_component("worker");
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_worker_runs_a_leased_job_once_and_completes_it_with_its_result),
        T(test_worker_reports_a_handler_failure_with_its_error_and_final_flag),
        T(test_worker_gives_a_silent_failure_a_retryable_error_naming_type_and_code),
        T(test_worker_without_prefetch_never_polls_for_more_jobs_than_free_slots),
        T(test_worker_leases_at_most_slots_plus_prefetch_jobs_while_handlers_run),
        T(test_worker_new_takes_prefetch_none_and_default_as_documented),
        T(test_worker_sends_outcomes_that_finish_during_a_report_in_one_report),
        T(test_worker_falls_back_to_complete_and_fail_when_report_is_unknown),
        T(test_worker_stop_flushes_a_report_the_server_has_not_taken_yet),
        T(test_worker_drops_a_pending_report_whose_lease_was_lost_and_goes_on),
        T(test_worker_stop_cancels_a_running_handler_after_the_grace_and_joins_all),
        T(test_worker_wakes_a_sleeping_handler_when_a_heartbeat_cancels_its_job),
        T(test_worker_resends_complete_while_the_server_is_unavailable),
        T(test_worker_gives_up_a_report_when_its_lease_is_gone),
        T(test_worker_polls_again_after_the_server_refuses_a_poll),
        T(test_worker_cancels_a_handler_once_its_job_timeout_passes),
        T(test_worker_drops_the_report_of_a_job_whose_lease_was_lost),
        T(test_worker_turns_a_refused_result_into_a_final_failure),
        T(test_builtin_echo_handler_returns_its_payload),
        T(test_builtin_sleep_handler_prints_and_returns_its_message),
        T(test_worker_new_rejects_bad_options),
        T(test_worker_add_handler_rejects_duplicate_and_bad_types),
        T(test_worker_names_itself_host_dash_pid_by_default),
        cmocka_unit_test(
            test_tasks_room_counts_unfinished_jobs_and_the_report_backlog),
        cmocka_unit_test(
            test_tasks_phase_moves_forward_only_and_cancel_flags_every_held_job),
        cmocka_unit_test(
            test_tasks_flag_marks_lost_jobs_and_tells_which_still_run),
        cmocka_unit_test(
            test_tasks_progress_goes_out_once_per_change_at_most_once_a_second),
    };
#undef T
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nng_fini();
    return rc;
}
