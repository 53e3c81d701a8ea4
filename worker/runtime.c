// runtime.c - the worker library of anvil/worker.h: options, handlers,
// the slot threads, start and stop, on top of the worker calls of anvil.h.
//
// Threads: one poll thread (runtime_poll.c) long-polls for as many jobs as
// the slots and the prefetch queue can take and queues the leases it gets;
// N slot threads take them, run the handler and hand the outcome to the
// reporter thread (runtime_report.c), which sends the outcomes in batches;
// one heartbeat thread (runtime_poll.c) extends the leases held and flags
// the jobs the server says to stop. The poll thread has a client of its
// own, so reports and heartbeats (sharing w->client; a client is
// thread-safe) never queue behind a parked long-poll.
//
// anvil_worker_stop() cuts a parked long-poll short (anvil_client_shutdown
// of the poll client; see end_parked_poll()); anvil_worker_drain() lets
// it run to its end (at most poll_wait_ms), so a lease the server hands
// that poll is never lost.
// Leases that poll returns, like the prefetched ones, are held and run
// within the grace period. Stopping then flushes the reports, and the
// heartbeat stops last: a lease is kept until its outcome is acknowledged.
//
// A job is "held" from the Poll reply that leased it until its outcome is
// acknowledged, and never dropped while held (see runtime_impl.h).
#include "runtime_impl.h"

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

#define DEFAULT_WAIT_MS 5000
#define DEFAULT_HEARTBEAT_MS 5000
#define MAX_SLOTS 1024
#define MAX_PREFETCH 1000
#define PREFETCH_AUTO_PER_SLOT 16
#define MAX_ERROR_LEN 4096

// ---- small helpers ----

int64_t
runtime_next_backoff(int64_t prev)
{
    if (prev <= 0)
        return RUNTIME_BACKOFF_MIN_MS;
    return prev * 2 > RUNTIME_BACKOFF_MAX_MS ? RUNTIME_BACKOFF_MAX_MS
                                             : prev * 2;
}

bool
runtime_transient(int code)
{
    return code == ANVIL_UNAVAILABLE || code == ANVIL_DEADLINE_EXCEEDED;
}

// Quotes become ', control characters spaces.
const char *
runtime_log_safe(char *out, size_t cap, const char *s)
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

void
runtime_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec ts;
    ts.tv_sec  = (time_t) (deadline_ms / 1000);
    ts.tv_nsec = (long) (deadline_ms % 1000) * 1000000L;
    pthread_cond_timedwait(cv, mu, &ts);
}

void
runtime_nap(struct anvil_worker *w, int64_t ms, bool wake_on_stop)
{
    int64_t end = av_mono_ms() + ms;
    pthread_mutex_lock(&w->mu);
    while (av_mono_ms() < end && !(wake_on_stop && w->stopping))
        runtime_wait_until(&w->state_cv, &w->mu, end);
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
        runtime_wait_until(&w->state_cv, &w->mu, until);
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
    if (o->prefetch < -1 || o->prefetch > MAX_PREFETCH)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "worker prefetch must be -1 (none), 0 (adaptive) or up to %d, "
            "not %d",
            MAX_PREFETCH, o->prefetch);
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
    w->slots         = o->slots > 0 ? o->slots : 1;
    w->prefetch_auto = o->prefetch == 0;
    w->prefetch      = o->prefetch == 0 ? w->slots
             : o->prefetch < 0          ? 0
                                        : o->prefetch;
    w->prefetch_max  = w->prefetch_auto
         ? (w->slots * PREFETCH_AUTO_PER_SLOT < MAX_PREFETCH
                 ? w->slots * PREFETCH_AUTO_PER_SLOT
                 : MAX_PREFETCH)
         : w->prefetch;
    w->poll_wait_ms  = o->poll_wait_ms > 0 ? o->poll_wait_ms : DEFAULT_WAIT_MS;
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
    if (rc == 0 && pthread_cond_init(&w->free_cv, &attr) != 0) {
        pthread_cond_destroy(&w->state_cv);
        rc = -1;
    }
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return ANVIL_INTERNAL;
    pthread_cond_init(&w->work_cv, NULL);
    pthread_cond_init(&w->rep_cv, NULL);
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

// ---- tasks: the slot queue and release ----

void
runtime_release_task(struct anvil_worker *w, struct task *t)
{
    struct lease_batch *b = t->batch;
    free(t->ctx.result);
    free(t->ctx.error);
    pthread_mutex_lock(&w->mu);
    if (t->prev_held != NULL)
        t->prev_held->next_held = t->next_held;
    else
        w->held = t->next_held;
    if (t->next_held != NULL)
        t->next_held->prev_held = t->prev_held;
    w->n_held--;
    bool last = --b->refs == 0;
    pthread_cond_broadcast(&w->free_cv);
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
        runtime_log_safe(msg, sizeof(msg), t->ctx.error));
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

// ---- the slot threads ----

static void *
slot_main(void *arg)
{
    struct anvil_worker *w = arg;
    for (;;) {
        struct task *t = next_task(w);
        if (t == NULL)
            break;
        int rc = run_task(w, t);
        runtime_report_outcome(w, t, rc); // and take the next job at once
    }
    return NULL;
}

// ---- start and stop ----

static int
start_threads(struct anvil_worker *w)
{
    // The reporter and the heartbeat first: they outlive the slots.
    w->slot_thr = calloc((size_t) w->slots, sizeof(pthread_t));
    w->rep_buf  = runtime_report_buf_new();
    if (w->slot_thr == NULL || w->rep_buf == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    if (pthread_create(&w->rep_thr, NULL, runtime_report_main, w) != 0)
        return ANVIL_INTERNAL;
    w->rep_started = true;
    if (pthread_create(&w->hb_thr, NULL, runtime_poll_hb_main, w) != 0)
        return ANVIL_INTERNAL;
    w->hb_started = true;
    for (; w->n_slot_thr < w->slots; w->n_slot_thr++) {
        if (pthread_create(&w->slot_thr[w->n_slot_thr], NULL, slot_main, w))
            return ANVIL_INTERNAL;
    }
    if (pthread_create(&w->poll_thr, NULL, runtime_poll_main, w) != 0)
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
    AV_INFO("worker.start",
        "name=%s url=%s slots=%d prefetch=%d types=%s queues=%s", w->name,
        w->url, w->slots, w->prefetch, types, queues);
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
    w->give_up_ms  = av_mono_ms() + grace_ms + RUNTIME_STOP_REPORT_MS;
    pthread_cond_broadcast(&w->state_cv);
    pthread_cond_broadcast(&w->free_cv);
    pthread_cond_broadcast(&w->work_cv);
    pthread_mutex_unlock(&w->mu);
    return true;
}

// Waits until every handler of a job held (queued ones included) returned
// or the grace period ends, then cancels the rest.
static void
drain(struct anvil_worker *w, int grace_ms)
{
    int64_t end = av_mono_ms() + grace_ms;
    pthread_mutex_lock(&w->mu);
    while (w->n_unfinished > 0 && av_mono_ms() < end)
        runtime_wait_until(&w->free_cv, &w->mu, end);
    w->cancel_all = true;
    for (struct task *t = w->held; t != NULL; t = t->next_held)
        t->ctx.canceled = true;
    size_t left = w->n_unfinished;
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

// Ends the Poll in flight, if any, once it is parked. Closing the poll
// client while the server answers a Poll would lose that Poll's leases
// until they expire and, worse, can hang nng_close for good (nng 1.5.2,
// see sdk/client.c). A Poll with work waiting is answered within a commit,
// so one still in flight after RUNTIME_CUT_POLL_MS is parked, and its
// answer comes only when its wait ends or a job arrives.
static void
end_parked_poll(struct anvil_worker *w)
{
    pthread_mutex_lock(&w->mu);
    bool cut = false;
    while (w->poll_in_call) {
        int64_t at = w->poll_call_ms + RUNTIME_CUT_POLL_MS;
        cut        = av_mono_ms() >= at;
        if (cut)
            break;
        runtime_wait_until(&w->state_cv, &w->mu, at);
    }
    pthread_mutex_unlock(&w->mu);
    // Otherwise the poll thread sees stopping before its next Poll.
    if (cut)
        anvil_client_shutdown(w->poll_client); // reports use w->client
}

// Stops the worker; cut_poll ends a parked long-poll soon (a lease
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
        end_parked_poll(w);
    if (w->poll_started)
        pthread_join(w->poll_thr, NULL);
    drain(w, grace_ms > 0 ? grace_ms : 0);
    join_slots(w);
    runtime_report_finish(w); // every outcome sent, or given up
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
    runtime_report_buf_free(w->rep_buf);
    free(w->name);
    free(w->url);
    pthread_cond_destroy(&w->work_cv);
    pthread_cond_destroy(&w->rep_cv);
    pthread_cond_destroy(&w->free_cv);
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
