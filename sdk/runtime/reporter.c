// reporter.c - the reporter thread and the slots' hand-over (see
// reporter.h).
#include "runtime/reporter.h"

#include "runtime/rtutil.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
give_up(struct reporter *r)
{
    pthread_mutex_lock(&r->mu);
    bool g = r->give_up_ms > 0 && av_mono_ms() >= r->give_up_ms;
    pthread_mutex_unlock(&r->mu);
    return g;
}

// Sleeps a retry's backoff, cut short at the give-up time once stopping.
static void
backoff_nap(struct reporter *r, int64_t ms)
{
    pthread_mutex_lock(&r->mu);
    if (r->give_up_ms > 0 && r->give_up_ms - av_mono_ms() < ms)
        ms = r->give_up_ms - av_mono_ms();
    pthread_mutex_unlock(&r->mu);
    if (ms > 0) {
        struct timespec ts
            = { (time_t) (ms / 1000), (long) (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0)
            continue; // interrupted: sleep the rest
    }
}

static void
count_report(struct reporter *r, bool ok)
{
    pthread_mutex_lock(&r->mu);
    if (ok)
        r->succeeded++;
    else
        r->failed++;
    pthread_mutex_unlock(&r->mu);
}

static void
log_report_error(const struct task *t, int rc, const char *why)
{
    char msg[300];
    rtutil_log_safe(msg, sizeof(msg), why);
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
    anvil_job_ctx_set_error(&t->ctx, false, "result rejected: %s", why);
    t->ok = false;
}

// ---- one outcome at a time: Complete or Fail (older servers) ----

static int
send_one(struct reporter *r, const struct task *t, struct anvil_error *err)
{
    const struct anvil_lease *l = t->lease;
    if (t->ok)
        return anvil_job_complete(r->client, l->job.id, l->token, t->ctx.result,
            t->ctx.result_len, err);
    const char *msg = t->ctx.error != NULL ? t->ctx.error : "failed";
    return anvil_job_fail(
        r->client, l->job.id, l->token, msg, t->ctx.retryable, NULL, err);
}

// Sends Complete or Fail until the server answers. Returns the last code.
static int
retry_one(struct reporter *r, const struct task *t, struct anvil_error *err)
{
    const char *what    = t->ok ? "Complete" : "Fail";
    int64_t     backoff = 0;
    char        msg[300];
    for (int tries = 1;; tries++) {
        av_error_clear(err);
        int rc = send_one(r, t, err);
        if (!rtutil_transient(rc) || give_up(r))
            return rc;
        backoff = rtutil_next_backoff(backoff);
        AV_LOG(tries == 1 ? AV_LOG_WARN : AV_LOG_DEBUG, "worker.report.retry",
            "id=%s rpc=%s code=%s tries=%d retry_ms=%lld msg=\"%s\"",
            t->lease->job.id, what, anvil_code_name(rc), tries,
            (long long) backoff, rtutil_log_safe(msg, sizeof(msg), err->msg));
        backoff_nap(r, backoff);
    }
}

// Reports t with Complete or Fail, then releases it.
static void
report_one(struct reporter *r, struct task *t)
{
    if (tasks_lost(r->ts, t)) {
        log_lost(t);
        tasks_release(r->ts, t);
        return;
    }
    struct anvil_error e    = { 0 };
    int                sent = retry_one(r, t, &e);
    if (t->ok && sent == ANVIL_INVALID_ARGUMENT) {
        reject_result(t, e.msg);
        sent = retry_one(r, t, &e);
    }
    if (sent == ANVIL_OK)
        count_report(r, t->ok);
    else
        log_report_error(t, sent, e.msg);
    tasks_release(r->ts, t);
}

// ---- the slots' side ----

static void send_now(struct reporter *r, struct task *t);

void
reporter_hand(struct reporter *r, struct task *t)
{
    if (tasks_finish(r->ts, t)) { // lost: nothing to report
        log_lost(t);
        tasks_release(r->ts, t);
        return;
    }
    struct tasks_load load;
    tasks_load(r->ts, &load);
    pthread_mutex_lock(&r->mu);
    bool legacy = r->legacy;
    bool lead   = !legacy && !r->sending && r->head == NULL && !load.queued;
    if (lead)
        r->sending = true;
    if (!legacy && !lead) {
        t->next_queued = NULL;
        if (r->tail != NULL)
            r->tail->next_queued = t;
        else
            r->head = t;
        r->tail = t;
        pthread_cond_signal(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    if (lead)
        send_now(r, t);
    else if (legacy)
        report_one(r, t);
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
take_batch(struct reporter *r, struct task **tasks, bool *legacy)
{
    size_t n = 0, bytes = 0;
    pthread_mutex_lock(&r->mu);
    // A slot's Report in flight (send_now) comes first: what queued
    // meanwhile goes in the next one, as it would behind ours.
    while ((r->head == NULL && !r->stop) || r->sending)
        pthread_cond_wait(&r->cv, &r->mu);
    while (r->head != NULL && n < ANVIL_REPORT_MAX) {
        struct task *t    = r->head;
        size_t       size = outcome_bytes(t);
        if (n > 0 && bytes + size > REPORT_MAX_BYTES)
            break;
        r->head = t->next_queued;
        if (r->head == NULL)
            r->tail = NULL;
        tasks[n++] = t;
        bytes += size;
    }
    *legacy    = r->legacy;
    r->sending = n > 0;
    pthread_mutex_unlock(&r->mu);
    return n;
}

// Puts t back at the head of the report queue (its outcome changed).
static void
requeue(struct reporter *r, struct task *t)
{
    pthread_mutex_lock(&r->mu);
    t->next_queued = r->head;
    r->head        = t;
    if (r->tail == NULL)
        r->tail = t;
    pthread_mutex_unlock(&r->mu);
}

// Releases the tasks whose lease the heartbeat found lost (there is no
// point reporting them) and packs the others to the front. Returns how
// many are left.
static size_t
drop_lost(struct reporter *r, struct task **tasks, size_t n)
{
    size_t keep = 0;
    for (size_t i = 0; i < n; i++) {
        if (!tasks_lost(r->ts, tasks[i])) {
            tasks[keep++] = tasks[i];
            continue;
        }
        log_lost(tasks[i]);
        tasks_release(r->ts, tasks[i]);
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
retry_batch(struct reporter *r, struct report_buf *rb, size_t n,
    struct anvil_error *err)
{
    int64_t backoff = 0;
    char    msg[300];
    for (int tries = 1;; tries++) {
        av_error_clear(err);
        int rc = anvil_job_report(r->client, rb->outs, n, rb->res, err);
        if (!rtutil_transient(rc) || give_up(r))
            return rc;
        backoff = rtutil_next_backoff(backoff);
        AV_LOG(tries == 1 ? AV_LOG_WARN : AV_LOG_DEBUG, "worker.report.retry",
            "rpc=Report outcomes=%zu first=%s code=%s tries=%d retry_ms=%lld "
            "msg=\"%s\"",
            n, rb->tasks[0]->lease->job.id, anvil_code_name(rc), tries,
            (long long) backoff, rtutil_log_safe(msg, sizeof(msg), err->msg));
        backoff_nap(r, backoff);
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
apply_results(struct reporter *r, struct report_buf *rb, size_t n,
    const struct anvil_error *err)
{
    bool first = true; // err names the first refused outcome
    for (size_t i = 0; i < n; i++) {
        struct task *t    = rb->tasks[i];
        int          code = rb->res[i].code;
        const char  *why  = "";
        if (code == ANVIL_OK) {
            count_report(r, t->ok);
            tasks_release(r->ts, t);
            continue;
        }
        if (first)
            why = outcome_msg(err->msg);
        first = false;
        if (t->ok && code == ANVIL_INVALID_ARGUMENT) {
            reject_result(t, why[0] != '\0' ? why : "refused by the server");
            requeue(r, t);
            continue;
        }
        log_report_error(t, code, why);
        tasks_release(r->ts, t);
    }
}

// From now on, outcomes go one by one with Complete and Fail.
static void
go_legacy(struct reporter *r)
{
    pthread_mutex_lock(&r->mu);
    r->legacy = true;
    pthread_mutex_unlock(&r->mu);
    AV_WARN("worker.report.fallback",
        "name=%s msg=\"the server does not know Report (an older anvild): "
        "reporting with Complete and Fail\"",
        r->name);
}

// Reports a batch taken from the queue, and releases what is done.
static void
send_batch(struct reporter *r, struct report_buf *rb, size_t n, bool legacy)
{
    n = drop_lost(r, rb->tasks, n);
    if (n == 0)
        return;
    struct anvil_error e  = { 0 };
    int                rc = ANVIL_UNIMPLEMENTED;
    if (!legacy) {
        fill_outcomes(rb, n);
        rc = retry_batch(r, rb, n, &e);
    }
    if (rc == ANVIL_OK) {
        apply_results(r, rb, n, &e);
        return;
    }
    if (!legacy && rc == ANVIL_UNIMPLEMENTED)
        go_legacy(r);
    if (rtutil_transient(rc)) { // gave up: the leases will expire
        for (size_t i = 0; i < n; i++) {
            log_report_error(rb->tasks[i], rc, e.msg);
            tasks_release(r->ts, rb->tasks[i]);
        }
        return;
    }
    // No Report, or the server refused the request as a whole: each
    // outcome on its own says which one it refuses.
    if (rc != ANVIL_UNIMPLEMENTED)
        AV_DEBUG("worker.report.split", "outcomes=%zu code=%s", n,
            anvil_code_name(rc));
    for (size_t i = 0; i < n; i++)
        report_one(r, rb->tasks[i]);
}

// A slot's Report of its one outcome when nothing else was pending (the
// slot holds r->sending): one attempt on this thread, so the outcome goes
// out without waking the reporter thread. Whatever that attempt leaves
// unsettled (no answer, an older server, a refused request) goes to the
// reporter thread's queue, which retries, falls back or splits as usual;
// a slot never waits out a retry's backoff.
static void
send_now(struct reporter *r, struct task *t)
{
    struct task                *tasks[1] = { t };
    struct anvil_outcome        outs[1];
    struct anvil_outcome_result res[1];
    struct report_buf  rb = { .tasks = tasks, .outs = outs, .res = res };
    struct anvil_error e  = { 0 };
    size_t             n  = drop_lost(r, rb.tasks, 1);
    int                rc = ANVIL_OK;
    if (n > 0) {
        fill_outcomes(&rb, n);
        rc = anvil_job_report(r->client, rb.outs, n, rb.res, &e);
    }
    if (n > 0 && rc == ANVIL_OK)
        apply_results(r, &rb, n, &e);
    else if (n > 0)
        requeue(r, t);
    pthread_mutex_lock(&r->mu);
    r->sending = false;
    if (r->head != NULL)
        pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void
report_buf_free(struct report_buf *rb)
{
    if (rb == NULL)
        return;
    free(rb->tasks);
    free(rb->outs);
    free(rb->res);
    free(rb);
}

static struct report_buf *
report_buf_new(void)
{
    struct report_buf *rb = calloc(1, sizeof(*rb));
    if (rb == NULL)
        return NULL;
    rb->tasks = calloc(ANVIL_REPORT_MAX, sizeof(*rb->tasks));
    rb->outs  = calloc(ANVIL_REPORT_MAX, sizeof(*rb->outs));
    rb->res   = calloc(ANVIL_REPORT_MAX, sizeof(*rb->res));
    if (rb->tasks == NULL || rb->outs == NULL || rb->res == NULL) {
        report_buf_free(rb);
        return NULL;
    }
    return rb;
}

static void *
reporter_main(void *arg)
{
    struct reporter *r = arg;
    for (;;) {
        bool   legacy;
        size_t n = take_batch(r, r->buf->tasks, &legacy);
        if (n == 0)
            break;
        send_batch(r, r->buf, n, legacy);
        pthread_mutex_lock(&r->mu);
        r->sending = false;
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

int
reporter_init(struct reporter *r, struct tasks *ts, anvil_client *client,
    const char *name)
{
    memset(r, 0, sizeof(*r));
    r->buf = report_buf_new();
    if (r->buf == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->ts     = ts;
    r->client = client;
    r->name   = name;
    return ANVIL_OK;
}

void
reporter_fini(struct reporter *r)
{
    if (r->buf == NULL)
        return; // never initialised
    report_buf_free(r->buf);
    r->buf = NULL;
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

int
reporter_start(struct reporter *r)
{
    if (pthread_create(&r->thr, NULL, reporter_main, r) != 0)
        return ANVIL_INTERNAL;
    r->started = true;
    return ANVIL_OK;
}

void
reporter_give_up_at(struct reporter *r, int64_t at_ms)
{
    pthread_mutex_lock(&r->mu);
    r->give_up_ms = at_ms > 0 ? at_ms : 1;
    pthread_mutex_unlock(&r->mu);
}

void
reporter_finish(struct reporter *r)
{
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->started)
        pthread_join(r->thr, NULL);
    r->started = false;
}

void
reporter_counts(struct reporter *r, uint64_t *succeeded, uint64_t *failed)
{
    pthread_mutex_lock(&r->mu);
    *succeeded = r->succeeded;
    *failed    = r->failed;
    pthread_mutex_unlock(&r->mu);
}
