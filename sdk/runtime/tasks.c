// tasks.c - the jobs a worker holds and their contexts (see tasks.h).
#include "runtime/tasks.h"

#include "runtime/rtutil.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ERROR_LEN 4096
#define MIN_HEARTBEAT_MS 50

// The leases of one Poll reply and their tasks, freed with the last task.
struct lease_batch {
    struct anvil_lease_list *list;
    size_t                   refs; // tasks not yet released; ts->mu
    struct task              tasks[];
};

// ---- job context (handlers, on slot threads) ----

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

int
anvil_job_ctx_set_error(
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
    return msg != NULL ? ANVIL_OK : ANVIL_RESOURCE_EXHAUSTED;
}

int
anvil_job_ctx_set_progress(
    struct anvil_job_ctx *ctx, int percent, const char *message)
{
    if (message == NULL)
        message = "";
    if (!av_progress_valid(percent, message))
        return ANVIL_INVALID_ARGUMENT;
    struct tasks *ts = ctx->ts;
    pthread_mutex_lock(&ts->mu);
    bool same = ctx->has_progress && ctx->progress_percent == percent
        && strcmp(ctx->progress_message, message) == 0;
    if (!same) {
        ctx->has_progress     = true;
        ctx->progress_percent = percent;
        snprintf(ctx->progress_message, sizeof(ctx->progress_message), "%s",
            message);
        if (!ctx->progress_dirty) // wake the heartbeat once per change
            pthread_cond_broadcast(&ts->state_cv);
        ctx->progress_dirty = true;
    }
    pthread_mutex_unlock(&ts->mu);
    return ANVIL_OK;
}

// True once canceled or past the job's timeout; caller holds ts->mu.
static bool
ctx_stopped_locked(const struct anvil_job_ctx *ctx, int64_t now)
{
    return ctx->canceled || (ctx->deadline_ms > 0 && now >= ctx->deadline_ms);
}

bool
anvil_job_ctx_is_canceled(const struct anvil_job_ctx *ctx)
{
    pthread_mutex_lock(&ctx->ts->mu);
    bool c = ctx_stopped_locked(ctx, av_mono_ms());
    pthread_mutex_unlock(&ctx->ts->mu);
    return c;
}

bool
anvil_job_ctx_sleep(struct anvil_job_ctx *ctx, int64_t ms)
{
    struct tasks *ts  = ctx->ts;
    int64_t       now = av_mono_ms();
    int64_t       end = now + (ms > 0 ? ms : 0);
    bool          stopped;
    pthread_mutex_lock(&ts->mu);
    for (;;) {
        stopped = ctx_stopped_locked(ctx, now);
        if (stopped || now >= end)
            break;
        int64_t until = end;
        if (ctx->deadline_ms > 0 && ctx->deadline_ms < until)
            until = ctx->deadline_ms;
        rtutil_wait_until(&ts->state_cv, &ts->mu, until);
        now = av_mono_ms();
    }
    pthread_mutex_unlock(&ts->mu);
    return !stopped;
}

// ---- life and phase ----

int
tasks_init(struct tasks *ts)
{
    memset(ts, 0, sizeof(*ts));
    if (rtutil_cond_init_mono(&ts->state_cv) != 0)
        return ANVIL_INTERNAL;
    if (rtutil_cond_init_mono(&ts->free_cv) != 0) {
        pthread_cond_destroy(&ts->state_cv);
        return ANVIL_INTERNAL;
    }
    pthread_cond_init(&ts->work_cv, NULL);
    pthread_mutex_init(&ts->mu, NULL);
    ts->phase = TASKS_OPEN;
    return ANVIL_OK;
}

void
tasks_fini(struct tasks *ts)
{
    pthread_cond_destroy(&ts->work_cv);
    pthread_cond_destroy(&ts->free_cv);
    pthread_cond_destroy(&ts->state_cv);
    pthread_mutex_destroy(&ts->mu);
}

bool
tasks_set_phase(struct tasks *ts, enum tasks_phase p)
{
    pthread_mutex_lock(&ts->mu);
    bool moved = p > ts->phase;
    if (moved)
        ts->phase = p;
    if (moved && p == TASKS_CANCELED) {
        for (struct task *t = ts->held; t != NULL; t = t->next_held)
            t->ctx.canceled = true;
    }
    pthread_cond_broadcast(&ts->state_cv);
    pthread_cond_broadcast(&ts->free_cv);
    pthread_cond_broadcast(&ts->work_cv);
    pthread_mutex_unlock(&ts->mu);
    return moved;
}

// ---- the poll thread's side ----

// Links t at the head of the held list and the tail of the slot queue.
static void
hold_locked(struct tasks *ts, struct task *t)
{
    t->next_held = ts->held;
    if (ts->held != NULL)
        ts->held->prev_held = t;
    ts->held = t;
    if (ts->queue_tail != NULL)
        ts->queue_tail->next_queued = t;
    else
        ts->queue_head = t;
    ts->queue_tail = t;
}

void
tasks_add(struct tasks *ts, struct anvil_lease_list *list)
{
    size_t n = list != NULL ? list->n : 0;
    if (n == 0) {
        anvil_lease_list_free(list);
        return;
    }
    struct lease_batch *b = calloc(1, sizeof(*b) + n * sizeof(struct task));
    if (b == NULL) {
        AV_ERR("worker.poll.oom", "leases=%zu", n);
        anvil_lease_list_free(list); // the leases expire on the server
        return;
    }
    struct anvil_lease *leases = list->leases;
    b->list                    = list;
    b->refs                    = n;
    int64_t now                = av_mono_ms();
    pthread_mutex_lock(&ts->mu);
    for (size_t i = 0; i < n; i++) {
        struct task *t = &b->tasks[i];
        t->batch       = b;
        t->lease       = &leases[i];
        t->ctx.ts      = ts;
        // The server counts the timeout from the lease, queued or not.
        if (leases[i].job.timeout_ms > 0)
            t->ctx.deadline_ms = now + leases[i].job.timeout_ms;
        hold_locked(ts, t);
    }
    ts->n_held += n;
    ts->n_unfinished += n;
    pthread_cond_broadcast(&ts->work_cv);
    pthread_cond_broadcast(&ts->state_cv); // the heartbeat period may shrink
    pthread_mutex_unlock(&ts->mu);
}

static uint32_t
room_locked(const struct tasks *ts, size_t cap, size_t room, uint32_t max)
{
    if (ts->n_unfinished >= cap || ts->n_held >= room)
        return 0;
    size_t n = cap - ts->n_unfinished;
    if (n > room - ts->n_held)
        n = room - ts->n_held;
    return n > max ? max : (uint32_t) n;
}

uint32_t
tasks_wait_room(struct tasks *ts, size_t cap, size_t room, uint32_t max)
{
    uint32_t n = 0;
    pthread_mutex_lock(&ts->mu);
    while (ts->phase == TASKS_OPEN) {
        n = room_locked(ts, cap, room, max);
        if (n > 0)
            break;
        pthread_cond_wait(&ts->free_cv, &ts->mu);
    }
    if (ts->phase != TASKS_OPEN)
        n = 0;
    pthread_mutex_unlock(&ts->mu);
    return n;
}

void
tasks_nap(struct tasks *ts, int64_t ms)
{
    int64_t end = av_mono_ms() + ms;
    pthread_mutex_lock(&ts->mu);
    while (av_mono_ms() < end && ts->phase == TASKS_OPEN)
        rtutil_wait_until(&ts->state_cv, &ts->mu, end);
    pthread_mutex_unlock(&ts->mu);
}

void
tasks_load(struct tasks *ts, struct tasks_load *out)
{
    pthread_mutex_lock(&ts->mu);
    out->n_held       = ts->n_held;
    out->n_unfinished = ts->n_unfinished;
    out->n_returned   = ts->n_returned;
    out->running      = ts->running;
    out->queued       = ts->queue_head != NULL;
    out->phase        = ts->phase;
    pthread_mutex_unlock(&ts->mu);
}

// ---- the slots' and the reporter's side ----

struct task *
tasks_next(struct tasks *ts)
{
    pthread_mutex_lock(&ts->mu);
    while (ts->queue_head == NULL && ts->phase < TASKS_POLL_DONE)
        pthread_cond_wait(&ts->work_cv, &ts->mu);
    struct task *t = ts->queue_head;
    if (t != NULL) {
        ts->queue_head = t->next_queued;
        if (ts->queue_head == NULL)
            ts->queue_tail = NULL;
        t->next_queued = NULL;
        if (ts->phase >= TASKS_CANCELED)
            t->ctx.canceled = true;
        t->skip = t->ctx.canceled;
        if (!t->skip)
            ts->running++;
    }
    pthread_mutex_unlock(&ts->mu);
    return t;
}

bool
tasks_finish(struct tasks *ts, struct task *t)
{
    pthread_mutex_lock(&ts->mu);
    if (!t->skip)
        ts->running--;
    ts->n_unfinished--;
    ts->n_returned++;
    t->finished = true;
    bool lost   = t->lost;
    pthread_cond_broadcast(&ts->free_cv);
    pthread_mutex_unlock(&ts->mu);
    return lost;
}

bool
tasks_lost(struct tasks *ts, const struct task *t)
{
    pthread_mutex_lock(&ts->mu);
    bool lost = t->lost;
    pthread_mutex_unlock(&ts->mu);
    return lost;
}

void
tasks_release(struct tasks *ts, struct task *t)
{
    struct lease_batch *b = t->batch;
    free(t->ctx.result);
    free(t->ctx.error);
    pthread_mutex_lock(&ts->mu);
    if (t->prev_held != NULL)
        t->prev_held->next_held = t->next_held;
    else
        ts->held = t->next_held;
    if (t->next_held != NULL)
        t->next_held->prev_held = t->prev_held;
    ts->n_held--;
    bool last = --b->refs == 0;
    pthread_cond_broadcast(&ts->free_cv);
    pthread_mutex_unlock(&ts->mu);
    if (last) {
        anvil_lease_list_free(b->list);
        free(b);
    }
}

size_t
tasks_drain(struct tasks *ts, int64_t end_ms)
{
    pthread_mutex_lock(&ts->mu);
    while (ts->n_unfinished > 0 && av_mono_ms() < end_ms)
        rtutil_wait_until(&ts->free_cv, &ts->mu, end_ms);
    size_t left = ts->n_unfinished;
    pthread_mutex_unlock(&ts->mu);
    tasks_set_phase(ts, TASKS_CANCELED);
    return left;
}

// ---- the heartbeat's side ----

// period_ms, or a third of the shortest lease held (lease length =
// deadline - start, both on the server's clock), so that even short
// leases are extended in time. Caller holds ts->mu.
static int64_t
hb_period_locked(const struct tasks *ts, int64_t period_ms)
{
    int64_t period = period_ms;
    for (const struct task *t = ts->held; t != NULL; t = t->next_held) {
        int64_t lease = t->lease->deadline_ms - t->lease->job.started_at_ms;
        if (lease > 0 && lease / 3 < period)
            period = lease / 3;
    }
    return period < MIN_HEARTBEAT_MS ? MIN_HEARTBEAT_MS : period;
}

// True when a handler reported progress that no heartbeat carried yet.
// Caller holds ts->mu.
static bool
progress_dirty_locked(const struct tasks *ts)
{
    for (const struct task *t = ts->held; t != NULL; t = t->next_held)
        if (t->ctx.progress_dirty)
            return true;
    return false;
}

bool
tasks_wait_heartbeat(struct tasks *ts, int64_t period_ms)
{
    int64_t start = av_mono_ms();
    pthread_mutex_lock(&ts->mu);
    while (ts->phase < TASKS_CLOSED) {
        int64_t end  = start + hb_period_locked(ts, period_ms);
        int64_t soon = ts->progress_sent_ms + TASKS_PROGRESS_GAP_MS;
        if (soon < end && progress_dirty_locked(ts))
            end = soon;
        if (av_mono_ms() >= end)
            break;
        rtutil_wait_until(&ts->state_cv, &ts->mu, end);
    }
    bool go = ts->phase < TASKS_CLOSED;
    pthread_mutex_unlock(&ts->mu);
    return go;
}

void
tasks_refs_free(struct anvil_lease_ref *refs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *) refs[i].job_id);
        free((char *) refs[i].progress_message);
    }
    free(refs);
}

// Copies the progress of t into ref (the message is the ref's) and marks
// it carried. Caller holds ts->mu.
static void
ref_progress_locked(struct anvil_lease_ref *ref, struct task *t)
{
    char *msg = strdup(t->ctx.progress_message);
    if (msg == NULL)
        return; // stays dirty: the next heartbeat tries again
    ref->has_progress     = true;
    ref->progress_percent = t->ctx.progress_percent;
    ref->progress_message = msg;
    t->ctx.progress_dirty = false;
}

struct anvil_lease_ref *
tasks_refs(struct tasks *ts, size_t *n)
{
    pthread_mutex_lock(&ts->mu);
    struct anvil_lease_ref *refs = calloc(ts->n_held + 1, sizeof(*refs));
    int64_t                 now  = av_mono_ms();
    bool progress = now >= ts->progress_sent_ms + TASKS_PROGRESS_GAP_MS;
    bool carried  = false;
    *n            = 0;
    for (struct task *t = ts->held; refs != NULL && t != NULL;
         t              = t->next_held) {
        char *id = strdup(t->lease->job.id);
        if (id == NULL)
            break;
        refs[*n].job_id = id;
        refs[*n].token  = t->lease->token;
        if (progress && t->ctx.progress_dirty) {
            ref_progress_locked(&refs[*n], t);
            carried = true;
        }
        (*n)++;
    }
    if (carried)
        ts->progress_sent_ms = now;
    pthread_mutex_unlock(&ts->mu);
    return refs;
}

void
tasks_progress_unsent(
    struct tasks *ts, const struct anvil_lease_ref *refs, size_t n)
{
    pthread_mutex_lock(&ts->mu);
    for (size_t i = 0; i < n; i++) {
        if (!refs[i].has_progress)
            continue;
        for (struct task *t = ts->held; t != NULL; t = t->next_held)
            if (t->lease->token == refs[i].token
                && strcmp(t->lease->job.id, refs[i].job_id) == 0)
                t->ctx.progress_dirty = true;
    }
    pthread_mutex_unlock(&ts->mu);
}

void
tasks_flag(struct tasks *ts, char **ids, size_t n, bool lost, bool *running)
{
    pthread_mutex_lock(&ts->mu);
    for (size_t i = 0; i < n; i++) {
        for (struct task *t = ts->held; t != NULL; t = t->next_held) {
            if (strcmp(t->lease->job.id, ids[i]) != 0)
                continue;
            t->ctx.canceled = true;
            t->lost         = t->lost || lost;
            if (running != NULL && !t->finished)
                running[i] = true;
        }
    }
    pthread_cond_broadcast(&ts->state_cv);
    pthread_mutex_unlock(&ts->mu);
}
