// runtime.c - the worker library of anvil/worker.h: slots, poll, heartbeat,
// reports and reconnect, on top of the worker calls of anvil.h.
//
// Threads: one poll thread long-polls for as many jobs as there are free
// slots and queues the leases it gets; N slot threads take them, run the
// handler and report the outcome (Complete or Fail, retried while the
// server is away); one heartbeat thread extends the leases held and flags
// the jobs the server says to stop. The poll thread has a client of its
// own, so reports and heartbeats (sharing w->client; a client is
// thread-safe) never queue behind a parked long-poll.
//
// anvil_worker_stop() cuts a parked long-poll short (anvil_client_shutdown
// of the poll client); anvil_worker_drain() lets it run to its end (at
// most poll_wait_ms), so a lease the server hands that poll is never lost.
// Leases that poll returns are held and run within the grace period like
// the others.
//
// A job is "held" from the Poll reply that leased it until its outcome is
// reported; held jobs take the slots, so the worker never leases more than
// it can run, and never drops one it holds.
#include <anvil/worker.h>

#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define DEFAULT_WAIT_MS 5000
#define DEFAULT_HEARTBEAT_MS 5000
#define MAX_SLOTS 1024
#define MAX_ERROR_LEN 4096
// Once stopping, a report still retries this long past the grace period.
#define STOP_REPORT_MS 10000

// What a handler gets besides its lease. canceled is shared (guarded by
// w->mu); the rest belongs to the slot thread running the handler.
struct anvil_job_ctx {
    struct anvil_worker *w;
    int64_t              deadline_ms; // monotonic end of the job's timeout
    bool                 canceled;    // guarded by w->mu
    uint8_t             *result;
    size_t               result_len;
    char                *error; // NULL until anvil_job_ctx_fail()
    bool                 retryable;
};

struct batch;

// One leased job, from the Poll reply until its outcome is reported.
struct task {
    struct task              *next_queued; // guarded by w->mu
    struct task              *next_held;   // guarded by w->mu
    bool                      lost;        // guarded by w->mu
    bool                      skip;        // canceled before it started; slot's
    struct batch             *batch;
    const struct anvil_lease *lease; // in batch->leases
    struct anvil_job_ctx      ctx;
};

// The leases of one Poll reply and their tasks, freed with the last task.
struct batch {
    struct anvil_lease *leases;
    size_t              n;
    size_t              refs; // tasks not yet released; guarded by w->mu
    struct task         tasks[];
};

struct handler {
    char            *type;
    anvil_handler_fn fn;
    void            *arg;
};

struct anvil_worker {
    // Set by anvil_worker_new() and _handle(), read-only once started.
    char           *url;
    char           *name;
    char          **queues;
    size_t          n_queues;
    int             slots;
    int             poll_wait_ms;
    int             heartbeat_ms;
    struct handler *handlers;
    const char    **types; // handlers[i].type, for Poll
    size_t          n_handlers;
    anvil_client   *client;      // reports and heartbeats
    anvil_client   *poll_client; // the poll thread's
    pthread_t       poll_thr;
    pthread_t       hb_thr;
    pthread_t      *slot_thr;
    int             n_slot_thr;
    bool            hb_started;
    bool            poll_started;

    pthread_mutex_t mu;       // guards every field below and ctx.canceled
    pthread_cond_t  work_cv;  // a task was queued, or slots should exit
    pthread_cond_t  state_cv; // (monotonic) a slot freed, a job canceled,
                              // stopping began
    struct task *queue_head;  // tasks waiting for a slot, FIFO
    struct task *queue_tail;
    struct task *held; // every task held, queued or not
    size_t       n_held;
    bool         started;
    bool         stop_called;
    bool         stopping;   // no more polls
    bool         poll_done;  // the poll thread exited
    bool         cancel_all; // grace is over: every job is canceled
    bool         hb_stop;
    int64_t      give_up_ms; // monotonic; reports stop retrying then
    struct anvil_worker_stats stats;
};

// ---- small helpers ----

static int64_t
next_backoff(int64_t prev)
{
    if (prev <= 0)
        return BACKOFF_MIN_MS;
    return prev * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : prev * 2;
}

static bool
transient(int code)
{
    return code == ANVIL_UNAVAILABLE || code == ANVIL_DEADLINE_EXCEEDED;
}

// Copies s into out for a log field in double quotes: quotes become ',
// control characters spaces.
static const char *
log_safe(char *out, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s != NULL && s[i] != '\0' && i + 1 < cap; i++) {
        char c = s[i];
        out[i] = c == '"' ? '\'' : (unsigned char) c < 0x20 ? ' ' : c;
    }
    out[i] = '\0';
    return out;
}

static bool
valid_name(const char *s)
{
    size_t n = s == NULL ? 0 : strlen(s);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c  = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

// Waits on cv (held with w->mu) until the monotonic deadline.
static void
wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec ts;
    ts.tv_sec  = (time_t) (deadline_ms / 1000);
    ts.tv_nsec = (long) (deadline_ms % 1000) * 1000000L;
    pthread_cond_timedwait(cv, mu, &ts);
}

// Sleeps ms, waking early once the worker stops polling when wake_on_stop.
static void
nap(struct anvil_worker *w, int64_t ms, bool wake_on_stop)
{
    int64_t end = av_mono_ms() + ms;
    pthread_mutex_lock(&w->mu);
    while (av_mono_ms() < end && !(wake_on_stop && w->stopping))
        wait_until(&w->state_cv, &w->mu, end);
    pthread_mutex_unlock(&w->mu);
}

// ---- job context (slot threads) ----

int
anvil_job_ctx_set_result(
    struct anvil_job_ctx *ctx, const void *result, size_t len)
{
    if (result == NULL && len > 0)
        return ANVIL_INVALID_ARGUMENT;
    uint8_t *copy = malloc(len + 1);
    if (copy == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    if (len > 0)
        memcpy(copy, result, len);
    copy[len] = '\0';
    free(ctx->result);
    ctx->result     = copy;
    ctx->result_len = len;
    return ANVIL_OK;
}

void
anvil_job_ctx_fail(
    struct anvil_job_ctx *ctx, bool retryable, const char *fmt, ...)
{
    char   *msg = malloc(MAX_ERROR_LEN);
    va_list ap;
    if (msg != NULL) {
        va_start(ap, fmt);
        vsnprintf(msg, MAX_ERROR_LEN, fmt, ap);
        va_end(ap);
    }
    free(ctx->error);
    ctx->error     = msg;
    ctx->retryable = retryable;
}

// True once canceled or past the job's timeout; caller holds w->mu.
static bool
ctx_stopped_locked(const struct anvil_job_ctx *ctx, int64_t now)
{
    return ctx->canceled || (ctx->deadline_ms > 0 && now >= ctx->deadline_ms);
}

bool
anvil_job_ctx_canceled(const struct anvil_job_ctx *ctx)
{
    pthread_mutex_lock(&ctx->w->mu);
    bool c = ctx_stopped_locked(ctx, av_mono_ms());
    pthread_mutex_unlock(&ctx->w->mu);
    return c;
}

bool
anvil_job_ctx_sleep(struct anvil_job_ctx *ctx, int64_t ms)
{
    struct anvil_worker *w   = ctx->w;
    int64_t              now = av_mono_ms();
    int64_t              end = now + (ms > 0 ? ms : 0);
    bool                 stopped;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        stopped = ctx_stopped_locked(ctx, now);
        if (stopped || now >= end)
            break;
        int64_t until = end;
        if (ctx->deadline_ms > 0 && ctx->deadline_ms < until)
            until = ctx->deadline_ms;
        wait_until(&w->state_cv, &w->mu, until);
        now = av_mono_ms();
    }
    pthread_mutex_unlock(&w->mu);
    return !stopped;
}

// ---- creation and handlers ----

// "<host>-<pid>", with characters a name may not hold replaced by '-'.
static char *
default_name(void)
{
    char host[100] = "worker";
    char buf[128];
    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "worker");
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, sizeof(buf), "%s-%ld", host, (long) getpid());
    for (char *c = buf; *c != '\0'; c++) {
        char one[2] = { *c, '\0' };
        if (!valid_name(one))
            *c = '-';
    }
    return strdup(buf);
}

static int
check_opts(const struct anvil_worker_opts *o, struct anvil_error *err)
{
    if (o->slots < 0 || o->slots > MAX_SLOTS)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "worker slots must be between 1 and %d, not %d", MAX_SLOTS,
            o->slots);
    if (o->poll_wait_ms < 0 || o->heartbeat_ms < 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "worker poll_wait_ms and heartbeat_ms must not be negative");
    if (o->name != NULL && !valid_name(o->name))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "worker name \"%s\" must be 1 to 128 of [A-Za-z0-9_.-]", o->name);
    if (o->n_queues > 0 && o->queues == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "worker n_queues is %zu but queues is NULL", o->n_queues);
    for (size_t i = 0; i < o->n_queues; i++) {
        if (!valid_name(o->queues[i]))
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "worker queue name \"%s\" must be 1 to 128 of "
                "[A-Za-z0-9_.-]",
                o->queues[i] ? o->queues[i] : "(null)");
    }
    return ANVIL_OK;
}

static int
copy_opts(struct anvil_worker *w, const struct anvil_worker_opts *o)
{
    w->slots        = o->slots > 0 ? o->slots : 1;
    w->poll_wait_ms = o->poll_wait_ms > 0 ? o->poll_wait_ms : DEFAULT_WAIT_MS;
    w->heartbeat_ms
        = o->heartbeat_ms > 0 ? o->heartbeat_ms : DEFAULT_HEARTBEAT_MS;
    w->name = o->name != NULL ? strdup(o->name) : default_name();
    if (o->url != NULL)
        w->url = strdup(o->url);
    else if (getenv("ANVIL_SERVER") != NULL)
        w->url = strdup(getenv("ANVIL_SERVER"));
    else
        w->url = strdup(ANVIL_DEFAULT_URL);
    w->queues = calloc(o->n_queues + 1, sizeof(char *));
    if (w->name == NULL || w->url == NULL || w->queues == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    for (size_t i = 0; i < o->n_queues; i++) {
        w->queues[i] = strdup(o->queues[i]);
        if (w->queues[i] == NULL)
            return ANVIL_RESOURCE_EXHAUSTED;
        w->n_queues++;
    }
    return ANVIL_OK;
}

static int
init_sync(struct anvil_worker *w)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return ANVIL_INTERNAL;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&w->state_cv, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return ANVIL_INTERNAL;
    pthread_cond_init(&w->work_cv, NULL);
    pthread_mutex_init(&w->mu, NULL);
    return ANVIL_OK;
}

static void worker_release(struct anvil_worker *w);

// Applies the token and TLS settings of o to a new client.
static int
secure_client(
    anvil_client *c, const struct anvil_worker_opts *o, struct anvil_error *err)
{
    int rc = ANVIL_OK;
    if (o->token != NULL)
        rc = anvil_client_set_token(c, o->token, err);
    if (rc == ANVIL_OK && o->tls != NULL)
        rc = anvil_client_set_tls(c, o->tls, err);
    return rc;
}

// Tells both clients who this worker is: every Poll and Heartbeat carries
// it, and the server lists the worker from it.
static int
register_info(struct anvil_worker *w, struct anvil_error *err)
{
    static const char *const default_queue[] = { "default" };
    char                     host[256]       = "";
    if (gethostname(host, sizeof(host)) != 0)
        host[0] = '\0';
    host[sizeof(host) - 1]        = '\0';
    struct anvil_worker_info info = {
        .host    = host,
        .pid     = (int64_t) getpid(),
        .version = ANVIL_VERSION,
        .types   = w->types,
        .n_types = w->n_handlers,
        .queues
        = w->n_queues > 0 ? (const char *const *) w->queues : default_queue,
        .n_queues = w->n_queues > 0 ? w->n_queues : 1,
        .slots    = (uint32_t) w->slots,
    };
    int rc = anvil_client_set_worker_info(w->client, &info, err);
    if (rc == ANVIL_OK)
        rc = anvil_client_set_worker_info(w->poll_client, &info, err);
    return rc;
}

int
anvil_worker_new(anvil_worker **out, const struct anvil_worker_opts *opts,
    struct anvil_error *err)
{
    struct anvil_worker_opts        none = { 0 };
    const struct anvil_worker_opts *o    = opts != NULL ? opts : &none;
    *out                                 = NULL;
    int rc                               = check_opts(o, err);
    if (rc != ANVIL_OK)
        return rc;
    struct anvil_worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    if (init_sync(w) != ANVIL_OK) {
        free(w);
        return av_error_set(err, ANVIL_INTERNAL, "cannot create a condvar");
    }
    rc = copy_opts(w, o);
    if (rc != ANVIL_OK) {
        av_error_set(err, rc, "out of memory");
        goto fail;
    }
    rc = anvil_client_open(&w->client, w->url, err);
    if (rc == ANVIL_OK)
        rc = anvil_client_open(&w->poll_client, w->url, err);
    if (rc == ANVIL_OK)
        rc = secure_client(w->client, o, err);
    if (rc == ANVIL_OK)
        rc = secure_client(w->poll_client, o, err);
    if (rc != ANVIL_OK)
        goto fail;
    *out = w;
    return ANVIL_OK;
fail:
    worker_release(w);
    return rc;
}

int
anvil_worker_handle(anvil_worker *w, const char *type, anvil_handler_fn fn,
    void *arg, struct anvil_error *err)
{
    if (w->started)
        return av_error_set(err, ANVIL_FAILED_PRECONDITION,
            "handlers must be registered before the worker starts");
    if (!valid_name(type) || fn == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "job type \"%s\" must be 1 to 128 of [A-Za-z0-9_.-], with a "
            "handler",
            type != NULL ? type : "(null)");
    for (size_t i = 0; i < w->n_handlers; i++) {
        if (strcmp(w->handlers[i].type, type) == 0)
            return av_error_set(err, ANVIL_ALREADY_EXISTS,
                "job type \"%s\" already has a handler", type);
    }
    size_t          n  = w->n_handlers + 1;
    struct handler *hs = realloc(w->handlers, n * sizeof(*hs));
    if (hs != NULL)
        w->handlers = hs;
    const char **ts = realloc(w->types, n * sizeof(*ts));
    if (ts != NULL)
        w->types = ts;
    char *copy = strdup(type);
    if (hs == NULL || ts == NULL || copy == NULL) {
        free(copy);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    hs[n - 1]     = (struct handler) { copy, fn, arg };
    ts[n - 1]     = copy;
    w->n_handlers = n;
    return ANVIL_OK;
}

static const struct handler *
find_handler(const struct anvil_worker *w, const char *type)
{
    for (size_t i = 0; i < w->n_handlers; i++) {
        if (strcmp(w->handlers[i].type, type) == 0)
            return &w->handlers[i];
    }
    return NULL;
}

// ---- tasks: queue, held list, release ----

// Queues the leases of one Poll reply. Consumes leases.
static void
enqueue_leases(struct anvil_worker *w, struct anvil_lease *leases, size_t n)
{
    if (n == 0) {
        anvil_leases_free(leases, n);
        return;
    }
    struct batch *b = calloc(1, sizeof(*b) + n * sizeof(struct task));
    if (b == NULL) {
        AV_ERR("worker.poll.oom", "leases=%zu", n);
        anvil_leases_free(leases, n); // the leases expire on the server
        return;
    }
    b->leases = leases;
    b->n      = n;
    b->refs   = n;
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < n; i++) {
        struct task *t = &b->tasks[i];
        t->batch       = b;
        t->lease       = &leases[i];
        t->ctx.w       = w;
        t->next_held   = w->held;
        w->held        = t;
        w->n_held++;
        if (w->queue_tail != NULL)
            w->queue_tail->next_queued = t;
        else
            w->queue_head = t;
        w->queue_tail = t;
    }
    pthread_cond_broadcast(&w->work_cv);
    pthread_cond_broadcast(&w->state_cv); // the heartbeat period may shrink
    pthread_mutex_unlock(&w->mu);
}

// Drops a reported task; frees its batch with the last one.
static void
release_task(struct anvil_worker *w, struct task *t)
{
    struct batch *b = t->batch;
    free(t->ctx.result);
    free(t->ctx.error);
    pthread_mutex_lock(&w->mu);
    for (struct task **p = &w->held; *p != NULL; p = &(*p)->next_held) {
        if (*p == t) {
            *p = t->next_held;
            break;
        }
    }
    w->n_held--;
    bool last = --b->refs == 0;
    pthread_cond_broadcast(&w->state_cv);
    pthread_mutex_unlock(&w->mu);
    if (last) {
        anvil_leases_free(b->leases, b->n);
        free(b);
    }
}

// Takes the next queued task; NULL when the slot should exit.
static struct task *
next_task(struct anvil_worker *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->queue_head == NULL && !(w->stopping && w->poll_done))
        pthread_cond_wait(&w->work_cv, &w->mu);
    struct task *t = w->queue_head;
    if (t != NULL) {
        w->queue_head = t->next_queued;
        if (w->queue_head == NULL)
            w->queue_tail = NULL;
        if (w->cancel_all)
            t->ctx.canceled = true;
        t->skip = t->ctx.canceled;
        if (!t->skip)
            w->stats.running++;
    }
    pthread_mutex_unlock(&w->mu);
    return t;
}

// ---- running a job (slot threads) ----

static int
call_handler(struct anvil_worker *w, struct task *t)
{
    const struct anvil_job *job = &t->lease->job;
    const struct handler   *h   = find_handler(w, job->type);
    if (h == NULL) {
        anvil_job_ctx_fail(&t->ctx, true, "worker %s has no handler for %s",
            w->name, job->type);
        return ANVIL_UNIMPLEMENTED;
    }
    if (job->timeout_ms > 0)
        t->ctx.deadline_ms = av_mono_ms() + job->timeout_ms;
    int rc = h->fn(h->arg, t->lease, &t->ctx);
    if (rc != ANVIL_OK && t->ctx.error == NULL)
        anvil_job_ctx_fail(&t->ctx, true, "%s handler failed: %s", job->type,
            anvil_code_name(rc));
    return rc;
}

static void
log_outcome(const struct task *t, int rc, int64_t ms)
{
    const struct anvil_job *job = &t->lease->job;
    char                    msg[512];
    if (rc == ANVIL_OK) {
        AV_INFO("worker.job.done", "id=%s type=%s attempt=%u ms=%lld", job->id,
            job->type, job->attempt, (long long) ms);
        return;
    }
    AV_INFO("worker.job.fail",
        "id=%s type=%s attempt=%u ms=%lld code=%s retryable=%s error=\"%s\"",
        job->id, job->type, job->attempt, (long long) ms, anvil_code_name(rc),
        t->ctx.retryable ? "true" : "false",
        log_safe(msg, sizeof(msg), t->ctx.error));
}

// Runs the handler of t, unless it was canceled before it started.
static int
run_task(struct anvil_worker *w, struct task *t)
{
    const struct anvil_job *job = &t->lease->job;
    if (t->skip) {
        anvil_job_ctx_fail(&t->ctx, true, "canceled before it started");
        log_outcome(t, ANVIL_CANCELLED, 0);
        return ANVIL_CANCELLED;
    }
    AV_INFO("worker.job.start", "id=%s type=%s attempt=%u", job->id, job->type,
        job->attempt);
    int64_t start = av_mono_ms();
    int     rc    = call_handler(w, t);
    log_outcome(t, rc, av_mono_ms() - start);
    pthread_mutex_lock(&w->mu);
    w->stats.running--;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

// ---- reporting (slot threads) ----

static int
report_once(struct anvil_worker *w, const struct task *t, bool ok,
    struct anvil_error *err)
{
    const struct anvil_lease *l = t->lease;
    if (ok)
        return anvil_complete(w->client, l->job.id, l->token, t->ctx.result,
            t->ctx.result_len, err);
    const char *msg = t->ctx.error != NULL ? t->ctx.error : "failed";
    return anvil_fail(
        w->client, l->job.id, l->token, msg, t->ctx.retryable, NULL, err);
}

static bool
give_up(struct anvil_worker *w)
{
    pthread_mutex_lock(&w->mu);
    bool g = w->stopping && av_mono_ms() >= w->give_up_ms;
    pthread_mutex_unlock(&w->mu);
    return g;
}

// Sends Complete (ok) or Fail until the server answers; the server applies
// a resent report once. Returns the last code.
static int
report_retry(struct anvil_worker *w, const struct task *t, bool ok,
    struct anvil_error *err)
{
    const char *what    = ok ? "Complete" : "Fail";
    int64_t     backoff = 0;
    char        msg[300];
    for (int tries = 1;; tries++) {
        av_error_clear(err);
        int rc = report_once(w, t, ok, err);
        if (!transient(rc) || give_up(w))
            return rc;
        backoff = next_backoff(backoff);
        AV_LOG(tries == 1 ? AV_LOG_WARN : AV_LOG_DEBUG, "worker.report.retry",
            "id=%s rpc=%s code=%s tries=%d retry_ms=%lld msg=\"%s\"",
            t->lease->job.id, what, anvil_code_name(rc), tries,
            (long long) backoff, log_safe(msg, sizeof(msg), err->msg));
        nap(w, backoff, false);
    }
}

static void
count_report(struct anvil_worker *w, bool ok)
{
    pthread_mutex_lock(&w->mu);
    if (ok)
        w->stats.succeeded++;
    else
        w->stats.failed++;
    pthread_mutex_unlock(&w->mu);
}

static void
log_report_error(const struct task *t, int rc, const struct anvil_error *e)
{
    char msg[300];
    log_safe(msg, sizeof(msg), e->msg);
    if (rc == ANVIL_FAILED_PRECONDITION)
        AV_WARN("worker.job.lease_lost", "id=%s token=%u msg=\"%s\"",
            t->lease->job.id, t->lease->token, msg);
    else
        AV_ERR("worker.report.error", "id=%s code=%s msg=\"%s\"",
            t->lease->job.id, anvil_code_name(rc), msg);
}

// Reports the outcome rc of t. A result the server refuses (too large)
// turns into a final failure, so the job does not wait for its lease.
static void
report_task(struct anvil_worker *w, struct task *t, int rc)
{
    pthread_mutex_lock(&w->mu);
    bool lost = t->lost;
    pthread_mutex_unlock(&w->mu);
    if (lost) {
        AV_WARN("worker.job.lease_lost", "id=%s token=%u reason=heartbeat",
            t->lease->job.id, t->lease->token);
        return;
    }
    struct anvil_error e    = { 0 };
    bool               ok   = rc == ANVIL_OK;
    int                sent = report_retry(w, t, ok, &e);
    if (ok && sent == ANVIL_INVALID_ARGUMENT) {
        anvil_job_ctx_fail(&t->ctx, false, "result rejected: %s", e.msg);
        ok   = false;
        sent = report_retry(w, t, ok, &e);
    }
    if (sent == ANVIL_OK)
        count_report(w, ok);
    else
        log_report_error(t, sent, &e);
}

static void *
slot_main(void *arg)
{
    struct anvil_worker *w = arg;
    for (;;) {
        struct task *t = next_task(w);
        if (t == NULL)
            break;
        int rc = run_task(w, t);
        report_task(w, t, rc);
        release_task(w, t);
    }
    return NULL;
}

// ---- polling (poll thread) ----

// Waits for a free slot; returns how many are free, 0 once stopping.
static uint32_t
wait_free_slots(struct anvil_worker *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->stopping && w->n_held >= (size_t) w->slots)
        pthread_cond_wait(&w->state_cv, &w->mu);
    uint32_t n = w->stopping ? 0 : (uint32_t) (w->slots - (int) w->n_held);
    pthread_mutex_unlock(&w->mu);
    return n;
}

// The first of a run of transient errors is a warning, the rest debug;
// any other error (the server refuses the request) is an error each time.
static void
log_poll_error(int rc, const struct anvil_error *e, int64_t backoff, bool first)
{
    char msg[300];
    int  level = AV_LOG_ERROR;
    if (transient(rc))
        level = first ? AV_LOG_WARN : AV_LOG_DEBUG;
    AV_LOG(level, "worker.poll.error", "code=%s msg=\"%s\" retry_ms=%lld",
        anvil_code_name(rc), log_safe(msg, sizeof(msg), e->msg),
        (long long) backoff);
}

static void
poll_req_init(const struct anvil_worker *w, struct anvil_poll_req *req)
{
    req->worker_id = w->name;
    req->queues    = (const char *const *) w->queues;
    req->n_queues  = w->n_queues;
    req->types     = w->types;
    req->n_types   = w->n_handlers;
    req->wait_ms   = (uint32_t) w->poll_wait_ms;
}

static void *
poll_main(void *arg)
{
    struct anvil_worker  *w       = arg;
    int64_t               backoff = 0;
    struct anvil_poll_req req     = { 0 };
    poll_req_init(w, &req);
    for (;;) {
        req.max_jobs = wait_free_slots(w);
        if (req.max_jobs == 0)
            break;
        struct anvil_lease *leases = NULL;
        size_t              n      = 0;
        struct anvil_error  e      = { 0 };
        int rc = anvil_poll(w->poll_client, &req, &leases, &n, &e);
        if (rc == ANVIL_OK) {
            if (backoff > 0)
                AV_INFO("worker.poll.resumed", "name=%s", w->name);
            backoff = 0;
            enqueue_leases(w, leases, n); // held even when stopping
            continue;
        }
        pthread_mutex_lock(&w->mu);
        bool stopping = w->stopping;
        pthread_mutex_unlock(&w->mu);
        if (stopping)
            break; // the stop cut the poll short: not an error
        log_poll_error(rc, &e, next_backoff(backoff), backoff == 0);
        backoff = next_backoff(backoff);
        nap(w, backoff, true);
    }
    pthread_mutex_lock(&w->mu);
    w->poll_done = true;
    pthread_cond_broadcast(&w->work_cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

// ---- heartbeats (heartbeat thread) ----

// The heartbeat period: heartbeat_ms, or a third of the shortest lease
// held (lease length = deadline - start, both on the server's clock), so
// that even short leases are extended in time. Called with w->mu held.
static int64_t
hb_period(const struct anvil_worker *w)
{
    int64_t period = w->heartbeat_ms;
    for (const struct task *t = w->held; t != NULL; t = t->next_held) {
        int64_t lease = t->lease->deadline_ms - t->lease->job.started_at_ms;
        if (lease > 0 && lease / 3 < period)
            period = lease / 3;
    }
    return period < 50 ? 50 : period;
}

// Waits one heartbeat period (shortened when a shorter lease arrives);
// false once the heartbeat should stop.
static bool
hb_wait(struct anvil_worker *w)
{
    int64_t start = av_mono_ms();
    pthread_mutex_lock(&w->mu);
    while (!w->hb_stop && av_mono_ms() < start + hb_period(w))
        wait_until(&w->state_cv, &w->mu, start + hb_period(w));
    bool go = !w->hb_stop;
    pthread_mutex_unlock(&w->mu);
    return go;
}

static void
free_refs(struct anvil_lease_ref *refs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((char *) refs[i].job_id);
    free(refs);
}

// Copies the refs of the leases held; *n = 0 and NULL when none (or OOM).
static struct anvil_lease_ref *
collect_refs(struct anvil_worker *w, size_t *n)
{
    pthread_mutex_lock(&w->mu);
    struct anvil_lease_ref *refs = calloc(w->n_held + 1, sizeof(*refs));
    *n                           = 0;
    for (struct task *t = w->held; refs != NULL && t != NULL;
         t              = t->next_held) {
        char *id = strdup(t->lease->job.id);
        if (id == NULL)
            break;
        refs[*n].job_id = id;
        refs[*n].token  = t->lease->token;
        (*n)++;
    }
    pthread_mutex_unlock(&w->mu);
    return refs;
}

// Flags the held jobs named in ids (canceled or lost) to their handlers.
static void
flag_jobs(struct anvil_worker *w, char **ids, size_t n, bool lost)
{
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < n; i++) {
        for (struct task *t = w->held; t != NULL; t = t->next_held) {
            if (strcmp(t->lease->job.id, ids[i]) != 0)
                continue;
            t->ctx.canceled = true;
            t->lost         = t->lost || lost;
        }
    }
    pthread_cond_broadcast(&w->state_cv);
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < n; i++)
        AV_INFO("worker.job.cancel", "id=%s reason=%s", ids[i],
            lost ? "lost" : "canceled");
}

static void
heartbeat_once(struct anvil_worker *w, bool *failing)
{
    size_t                  n, n_canceled = 0, n_lost = 0;
    char                  **canceled = NULL, **lost = NULL;
    struct anvil_error      e    = { 0 };
    struct anvil_lease_ref *refs = collect_refs(w, &n);
    int rc = anvil_heartbeat(w->client, w->name, refs, n, &canceled,
        &n_canceled, &lost, &n_lost, &e);
    free_refs(refs, n);
    if (rc != ANVIL_OK) {
        char msg[300];
        AV_LOG(*failing ? AV_LOG_DEBUG : AV_LOG_WARN, "worker.heartbeat.error",
            "code=%s leases=%zu msg=\"%s\"", anvil_code_name(rc), n,
            log_safe(msg, sizeof(msg), e.msg));
        *failing = true;
        return;
    }
    *failing = false;
    flag_jobs(w, canceled, n_canceled, false);
    flag_jobs(w, lost, n_lost, true);
    anvil_strv_free(canceled, n_canceled);
    anvil_strv_free(lost, n_lost);
}

static void *
hb_main(void *arg)
{
    struct anvil_worker *w       = arg;
    bool                 failing = false;
    while (hb_wait(w))
        heartbeat_once(w, &failing);
    return NULL;
}

// ---- start and stop ----

static int
start_threads(struct anvil_worker *w)
{
    w->slot_thr = calloc((size_t) w->slots, sizeof(pthread_t));
    if (w->slot_thr == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    for (; w->n_slot_thr < w->slots; w->n_slot_thr++) {
        if (pthread_create(&w->slot_thr[w->n_slot_thr], NULL, slot_main, w))
            return ANVIL_INTERNAL;
    }
    if (pthread_create(&w->hb_thr, NULL, hb_main, w) != 0)
        return ANVIL_INTERNAL;
    w->hb_started = true;
    if (pthread_create(&w->poll_thr, NULL, poll_main, w) != 0)
        return ANVIL_INTERNAL;
    w->poll_started = true;
    return ANVIL_OK;
}

static void
log_start(const struct anvil_worker *w)
{
    char types[512] = "", queues[512] = "default";
    for (size_t i = 0, at = 0; i < w->n_handlers && at < sizeof(types); i++)
        at += (size_t) snprintf(
            types + at, sizeof(types) - at, "%s%s", i ? "," : "", w->types[i]);
    for (size_t i = 0, at = 0; i < w->n_queues && at < sizeof(queues); i++)
        at += (size_t) snprintf(queues + at, sizeof(queues) - at, "%s%s",
            i ? "," : "", w->queues[i]);
    AV_INFO("worker.start", "name=%s url=%s slots=%d types=%s queues=%s",
        w->name, w->url, w->slots, types, queues);
}

int
anvil_worker_start(anvil_worker *w, struct anvil_error *err)
{
    if (w->started)
        return av_error_set(
            err, ANVIL_FAILED_PRECONDITION, "the worker was started before");
    if (w->n_handlers == 0)
        return av_error_set(err, ANVIL_FAILED_PRECONDITION,
            "the worker has no handlers: register one with "
            "anvil_worker_handle()");
    int rc = register_info(w, err);
    if (rc != ANVIL_OK)
        return rc;
    w->started = true;
    log_start(w);
    rc = start_threads(w);
    if (rc != ANVIL_OK) {
        anvil_worker_stop(w, 0);
        return av_error_set(err, rc, "cannot start the worker threads");
    }
    return ANVIL_OK;
}

// Marks the worker stopping. Returns false when there is nothing to stop.
static bool
begin_stop(struct anvil_worker *w, int grace_ms)
{
    pthread_mutex_lock(&w->mu);
    if (!w->started || w->stop_called) {
        pthread_mutex_unlock(&w->mu);
        return false;
    }
    w->stop_called = true;
    w->stopping    = true;
    w->poll_done   = !w->poll_started;
    w->give_up_ms  = av_mono_ms() + grace_ms + STOP_REPORT_MS;
    pthread_cond_broadcast(&w->state_cv);
    pthread_cond_broadcast(&w->work_cv);
    pthread_mutex_unlock(&w->mu);
    return true;
}

// Waits until no job is held or the grace period ends, then cancels all.
static void
drain(struct anvil_worker *w, int grace_ms)
{
    int64_t end = av_mono_ms() + grace_ms;
    pthread_mutex_lock(&w->mu);
    while (w->n_held > 0 && av_mono_ms() < end)
        wait_until(&w->state_cv, &w->mu, end);
    w->cancel_all = true;
    for (struct task *t = w->held; t != NULL; t = t->next_held)
        t->ctx.canceled = true;
    size_t left = w->n_held;
    pthread_cond_broadcast(&w->state_cv);
    pthread_mutex_unlock(&w->mu);
    if (left > 0)
        AV_INFO("worker.stop.cancel", "jobs=%zu", left);
}

static void
join_slots(struct anvil_worker *w)
{
    for (int i = 0; i < w->n_slot_thr; i++)
        pthread_join(w->slot_thr[i], NULL);
    w->n_slot_thr = 0;
}

// Stops the worker; cut_poll ends a parked long-poll at once (a lease
// the server gives that cut-off Poll runs again only after the lease),
// else the poll runs to its end and what it leases is run in the grace.
static void
stop_worker(anvil_worker *w, int grace_ms, bool cut_poll)
{
    if (w == NULL || !begin_stop(w, grace_ms > 0 ? grace_ms : 0))
        return;
    AV_INFO("worker.stop", "name=%s grace_ms=%d cut_poll=%s", w->name, grace_ms,
        cut_poll ? "true" : "false");
    if (cut_poll)
        anvil_client_shutdown(w->poll_client); // reports use w->client
    if (w->poll_started)
        pthread_join(w->poll_thr, NULL);
    drain(w, grace_ms > 0 ? grace_ms : 0);
    join_slots(w);
    pthread_mutex_lock(&w->mu);
    w->hb_stop = true;
    pthread_cond_broadcast(&w->state_cv);
    pthread_mutex_unlock(&w->mu);
    if (w->hb_started)
        pthread_join(w->hb_thr, NULL);
    AV_INFO("worker.stopped", "name=%s succeeded=%llu failed=%llu", w->name,
        (unsigned long long) w->stats.succeeded,
        (unsigned long long) w->stats.failed);
}

// Frees everything a worker owns; threads must be gone.
static void
worker_release(struct anvil_worker *w)
{
    anvil_client_close(w->client);
    anvil_client_close(w->poll_client);
    for (size_t i = 0; i < w->n_handlers; i++)
        free(w->handlers[i].type);
    free(w->handlers);
    free(w->types);
    for (size_t i = 0; i < w->n_queues; i++)
        free(w->queues[i]);
    free(w->queues);
    free(w->slot_thr);
    free(w->name);
    free(w->url);
    pthread_cond_destroy(&w->work_cv);
    pthread_cond_destroy(&w->state_cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

void
anvil_worker_stop(anvil_worker *w, int grace_ms)
{
    stop_worker(w, grace_ms, true);
}

void
anvil_worker_drain(anvil_worker *w, int grace_ms)
{
    stop_worker(w, grace_ms, false);
}

void
anvil_worker_free(anvil_worker *w)
{
    if (w == NULL)
        return;
    anvil_worker_stop(w, 0);
    worker_release(w);
}

void
anvil_worker_get_stats(anvil_worker *w, struct anvil_worker_stats *st)
{
    pthread_mutex_lock(&w->mu);
    *st = w->stats;
    pthread_mutex_unlock(&w->mu);
}
