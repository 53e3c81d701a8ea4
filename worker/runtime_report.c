// runtime_report.c - the reporter: the outcomes the slots hand over, sent
// to the server in batches.
//
// A slot whose handler returned queues the outcome here and takes its next
// job at once. One reporter thread sends everything queued in one Report
// (anvil_report), so outcomes batch by themselves while the previous
// Report is in flight: one commit-bound round trip carries as many
// outcomes as finished during the last one. A task stays held (and
// heartbeated) until the server acknowledged its outcome, so its lease
// cannot expire while a report is retried.
//
// The server applies each outcome as its Complete or Fail and a resent
// Report changes nothing, so a Report with no answer (UNAVAILABLE,
// DEADLINE_EXCEEDED) is resent with backoff until it gets one, or until
// the give-up time once stopping. An anvild older than Report answers
// UNIMPLEMENTED: the worker then reports with one Complete or Fail per
// outcome for the rest of its life, from the slot threads as before
// Report existed.
#include "runtime_impl.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Bytes of results and errors in one Report, unless one outcome alone is
// larger: keeps a batch far below the server's message limit (its payload
// limit plus a margin) whatever that limit is.
#define REPORT_MAX_BYTES (48 * 1024)

// What the reporter thread sends one Report with.
struct report_buf {
    struct task                **tasks;
    struct anvil_outcome        *outs;
    struct anvil_outcome_result *res;
};

static bool
give_up(struct anvil_worker *w)
{
    pthread_mutex_lock(&w->mu);
    bool g = w->stopping && av_mono_ms() >= w->give_up_ms;
    pthread_mutex_unlock(&w->mu);
    return g;
}

// Sleeps a retry's backoff, cut short at the give-up time once stopping.
static void
backoff_nap(struct anvil_worker *w, int64_t ms)
{
    pthread_mutex_lock(&w->mu);
    if (w->stopping && w->give_up_ms - av_mono_ms() < ms)
        ms = w->give_up_ms - av_mono_ms();
    pthread_mutex_unlock(&w->mu);
    if (ms > 0)
        runtime_nap(w, ms, false);
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
log_report_error(const struct task *t, int rc, const char *why)
{
    char msg[300];
    runtime_log_safe(msg, sizeof(msg), why);
    if (rc == ANVIL_FAILED_PRECONDITION)
        AV_WARN("worker.job.lease_lost", "id=%s token=%u msg=\"%s\"",
            t->lease->job.id, t->lease->token, msg);
    else
        AV_ERR("worker.report.error", "id=%s code=%s msg=\"%s\"",
            t->lease->job.id, anvil_code_name(rc), msg);
}

static void
log_lost(const struct task *t)
{
    AV_WARN("worker.job.lease_lost", "id=%s token=%u reason=heartbeat",
        t->lease->job.id, t->lease->token);
}

// A result the server refused (too large) becomes a final failure, so the
// job does not wait for its lease to expire.
static void
reject_result(struct task *t, const char *why)
{
    anvil_job_ctx_fail(&t->ctx, false, "result rejected: %s", why);
    t->ok = false;
}

// ---- one outcome at a time: Complete or Fail (older servers) ----

static int
send_one(struct anvil_worker *w, const struct task *t, struct anvil_error *err)
{
    const struct anvil_lease *l = t->lease;
    if (t->ok)
        return anvil_complete(w->client, l->job.id, l->token, t->ctx.result,
            t->ctx.result_len, err);
    const char *msg = t->ctx.error != NULL ? t->ctx.error : "failed";
    return anvil_fail(
        w->client, l->job.id, l->token, msg, t->ctx.retryable, NULL, err);
}

// Sends Complete or Fail until the server answers. Returns the last code.
static int
retry_one(struct anvil_worker *w, const struct task *t, struct anvil_error *err)
{
    const char *what    = t->ok ? "Complete" : "Fail";
    int64_t     backoff = 0;
    char        msg[300];
    for (int tries = 1;; tries++) {
        av_error_clear(err);
        int rc = send_one(w, t, err);
        if (!runtime_transient(rc) || give_up(w))
            return rc;
        backoff = runtime_next_backoff(backoff);
        AV_LOG(tries == 1 ? AV_LOG_WARN : AV_LOG_DEBUG, "worker.report.retry",
            "id=%s rpc=%s code=%s tries=%d retry_ms=%lld msg=\"%s\"",
            t->lease->job.id, what, anvil_code_name(rc), tries,
            (long long) backoff, runtime_log_safe(msg, sizeof(msg), err->msg));
        backoff_nap(w, backoff);
    }
}

// Reports t with Complete or Fail, then releases it.
static void
report_one(struct anvil_worker *w, struct task *t)
{
    pthread_mutex_lock(&w->mu);
    bool lost = t->lost;
    pthread_mutex_unlock(&w->mu);
    if (lost) {
        log_lost(t);
        runtime_release_task(w, t);
        return;
    }
    struct anvil_error e    = { 0 };
    int                sent = retry_one(w, t, &e);
    if (t->ok && sent == ANVIL_INVALID_ARGUMENT) {
        reject_result(t, e.msg);
        sent = retry_one(w, t, &e);
    }
    if (sent == ANVIL_OK)
        count_report(w, t->ok);
    else
        log_report_error(t, sent, e.msg);
    runtime_release_task(w, t);
}

// ---- the slots' side ----

void
runtime_report_outcome(struct anvil_worker *w, struct task *t, int rc)
{
    t->ok = rc == ANVIL_OK;
    pthread_mutex_lock(&w->mu);
    w->n_unfinished--;
    w->n_returned++;
    t->finished = true;
    bool lost   = t->lost;
    bool legacy = w->legacy;
    if (!lost && !legacy) {
        t->next_queued = NULL;
        if (w->rep_tail != NULL)
            w->rep_tail->next_queued = t;
        else
            w->rep_head = t;
        w->rep_tail = t;
        pthread_cond_signal(&w->rep_cv);
    }
    pthread_cond_broadcast(&w->free_cv);
    pthread_mutex_unlock(&w->mu);
    if (lost) {
        log_lost(t);
        runtime_release_task(w, t);
    } else if (legacy) {
        report_one(w, t);
    }
}

// ---- the reporter thread ----

static size_t
outcome_bytes(const struct task *t)
{
    size_t n = strlen(t->lease->job.id) + 32;
    if (t->ok)
        return n + t->ctx.result_len;
    return n + (t->ctx.error != NULL ? strlen(t->ctx.error) : 0);
}

// Waits for outcomes and takes a batch of them into tasks (at most
// ANVIL_REPORT_MAX, REPORT_MAX_BYTES unless one alone is larger). Returns
// how many; 0 once the queue is empty and the slots are gone. *legacy
// tells whether to send them with Complete and Fail.
static size_t
take_batch(struct anvil_worker *w, struct task **tasks, bool *legacy)
{
    size_t n = 0, bytes = 0;
    pthread_mutex_lock(&w->mu);
    while (w->rep_head == NULL && !w->rep_stop)
        pthread_cond_wait(&w->rep_cv, &w->mu);
    while (w->rep_head != NULL && n < ANVIL_REPORT_MAX) {
        struct task *t    = w->rep_head;
        size_t       size = outcome_bytes(t);
        if (n > 0 && bytes + size > REPORT_MAX_BYTES)
            break;
        w->rep_head = t->next_queued;
        if (w->rep_head == NULL)
            w->rep_tail = NULL;
        tasks[n++] = t;
        bytes += size;
    }
    *legacy = w->legacy;
    pthread_mutex_unlock(&w->mu);
    return n;
}

// Puts t back at the head of the report queue (its outcome changed).
static void
requeue(struct anvil_worker *w, struct task *t)
{
    pthread_mutex_lock(&w->mu);
    t->next_queued = w->rep_head;
    w->rep_head    = t;
    if (w->rep_tail == NULL)
        w->rep_tail = t;
    pthread_mutex_unlock(&w->mu);
}

// Releases the tasks whose lease the heartbeat found lost (there is no
// point reporting them) and packs the others to the front. Returns how
// many are left.
static size_t
drop_lost(struct anvil_worker *w, struct task **tasks, size_t n)
{
    size_t keep = 0;
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&w->mu);
        bool lost = tasks[i]->lost;
        pthread_mutex_unlock(&w->mu);
        if (!lost) {
            tasks[keep++] = tasks[i];
            continue;
        }
        log_lost(tasks[i]);
        runtime_release_task(w, tasks[i]);
    }
    return keep;
}

static void
fill_outcomes(struct report_buf *rb, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct task *t = rb->tasks[i];
        rb->outs[i]          = (struct anvil_outcome) {
                     .job_id    = t->lease->job.id,
                     .token     = t->lease->token,
                     .failed    = !t->ok,
                     .result    = t->ctx.result,
                     .len       = t->ok ? t->ctx.result_len : 0,
                     .error     = t->ctx.error != NULL ? t->ctx.error : "failed",
                     .retryable = t->ctx.retryable,
        };
    }
}

// Sends one Report until the server answers. Returns the last code.
static int
retry_batch(struct anvil_worker *w, struct report_buf *rb, size_t n,
    struct anvil_error *err)
{
    int64_t backoff = 0;
    char    msg[300];
    for (int tries = 1;; tries++) {
        av_error_clear(err);
        int rc = anvil_report(w->client, rb->outs, n, rb->res, err);
        if (!runtime_transient(rc) || give_up(w))
            return rc;
        backoff = runtime_next_backoff(backoff);
        AV_LOG(tries == 1 ? AV_LOG_WARN : AV_LOG_DEBUG, "worker.report.retry",
            "rpc=Report outcomes=%zu first=%s code=%s tries=%d retry_ms=%lld "
            "msg=\"%s\"",
            n, rb->tasks[0]->lease->job.id, anvil_code_name(rc), tries,
            (long long) backoff, runtime_log_safe(msg, sizeof(msg), err->msg));
        backoff_nap(w, backoff);
    }
}

// The message of one refused outcome without its "outcomes[i]: " prefix,
// which names a place in a Report nobody else sees.
static const char *
outcome_msg(const char *msg)
{
    const char *rest = strstr(msg, "]: ");
    if (strncmp(msg, "outcomes[", 9) == 0 && rest != NULL)
        return rest + 3;
    return msg;
}

// Applies the server's answer to each outcome of a Report.
static void
apply_results(struct anvil_worker *w, struct report_buf *rb, size_t n,
    const struct anvil_error *err)
{
    bool first = true; // err names the first refused outcome
    for (size_t i = 0; i < n; i++) {
        struct task *t    = rb->tasks[i];
        int          code = rb->res[i].code;
        const char  *why  = "";
        if (code == ANVIL_OK) {
            count_report(w, t->ok);
            runtime_release_task(w, t);
            continue;
        }
        if (first)
            why = outcome_msg(err->msg);
        first = false;
        if (t->ok && code == ANVIL_INVALID_ARGUMENT) {
            reject_result(t, why[0] != '\0' ? why : "refused by the server");
            requeue(w, t);
            continue;
        }
        log_report_error(t, code, why);
        runtime_release_task(w, t);
    }
}

// From now on, outcomes go one by one with Complete and Fail.
static void
go_legacy(struct anvil_worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->legacy = true;
    pthread_mutex_unlock(&w->mu);
    AV_WARN("worker.report.fallback",
        "name=%s msg=\"the server does not know Report (an older anvild): "
        "reporting with Complete and Fail\"",
        w->name);
}

// Reports a batch taken from the queue, and releases what is done.
static void
send_batch(struct anvil_worker *w, struct report_buf *rb, size_t n, bool legacy)
{
    n = drop_lost(w, rb->tasks, n);
    if (n == 0)
        return;
    struct anvil_error e  = { 0 };
    int                rc = ANVIL_UNIMPLEMENTED;
    if (!legacy) {
        fill_outcomes(rb, n);
        rc = retry_batch(w, rb, n, &e);
    }
    if (rc == ANVIL_OK) {
        apply_results(w, rb, n, &e);
        return;
    }
    if (!legacy && rc == ANVIL_UNIMPLEMENTED)
        go_legacy(w);
    if (runtime_transient(rc)) { // gave up: the leases will expire
        for (size_t i = 0; i < n; i++) {
            log_report_error(rb->tasks[i], rc, e.msg);
            runtime_release_task(w, rb->tasks[i]);
        }
        return;
    }
    // No Report, or the server refused the request as a whole: each
    // outcome on its own says which one it refuses.
    if (rc != ANVIL_UNIMPLEMENTED)
        AV_DEBUG("worker.report.split", "outcomes=%zu code=%s", n,
            anvil_code_name(rc));
    for (size_t i = 0; i < n; i++)
        report_one(w, rb->tasks[i]);
}

void
runtime_report_buf_free(struct report_buf *rb)
{
    if (rb == NULL)
        return;
    free(rb->tasks);
    free(rb->outs);
    free(rb->res);
    free(rb);
}

struct report_buf *
runtime_report_buf_new(void)
{
    struct report_buf *rb = calloc(1, sizeof(*rb));
    if (rb == NULL)
        return NULL;
    rb->tasks = calloc(ANVIL_REPORT_MAX, sizeof(*rb->tasks));
    rb->outs  = calloc(ANVIL_REPORT_MAX, sizeof(*rb->outs));
    rb->res   = calloc(ANVIL_REPORT_MAX, sizeof(*rb->res));
    if (rb->tasks == NULL || rb->outs == NULL || rb->res == NULL) {
        runtime_report_buf_free(rb);
        return NULL;
    }
    return rb;
}

void *
runtime_report_main(void *arg)
{
    struct anvil_worker *w = arg;
    for (;;) {
        bool   legacy;
        size_t n = take_batch(w, w->rep_buf->tasks, &legacy);
        if (n == 0)
            break;
        send_batch(w, w->rep_buf, n, legacy);
    }
    return NULL;
}

void
runtime_report_finish(struct anvil_worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->rep_stop = true;
    pthread_cond_broadcast(&w->rep_cv);
    pthread_mutex_unlock(&w->mu);
    if (w->rep_started)
        pthread_join(w->rep_thr, NULL);
    w->rep_started = false;
}
