// rates.c - queue rate limits (SetQueueLimit) on the engine thread. A
// limit is a token bucket (readyq.h) of burst tokens gaining rate a
// second; every lease from the queue spends one.
//
// The store keeps each limit with its bucket: the tokens left and when.
// A batch whose leases took tokens writes its buckets before it commits
// (rates_flush), so the stored bucket is always the one of the committed
// leases, and a restart refills it from there: no second burst. A batch
// that does not commit rebuilds the ready queues from the store, buckets
// included. SetQueueLimit reaches the ready queues only once committed.
#include "engine_impl.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The limit the store holds for queue now (earlier commands of this
// batch included) in *old, its bucket refilled to now and no fuller than
// the ready queues' one (leases earlier in the batch spent from that);
// *had false when there is none.
static int
stored_bucket(struct engine *e, const char *queue, int64_t now,
    struct readyq_rate *old, bool *had, struct anvil_error *err)
{
    struct store_queue_limit l;
    int                      rc = store_queue_limit_get(e->st, queue, &l, err);
    *had                        = rc == ANVIL_OK;
    if (rc == ANVIL_NOT_FOUND) {
        av_error_clear(err);
        return ANVIL_OK;
    }
    if (rc != ANVIL_OK)
        return rc;
    *old = (struct readyq_rate) {
        .rate = l.rate, .burst = l.burst, .tokens = l.tokens, .at = l.at
    };
    readyq_rate_refill(old, now);
    struct readyq_rate mem;
    if (readyq_rate_get(e->ready, queue, &mem) && mem.tokens < old->tokens)
        old->tokens = mem.tokens;
    return ANVIL_OK;
}

int
rates_set(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_queue  *q = &c->u.queue;
    struct readyq_rate old;
    int rc = stored_bucket(e, q->queue, b->now, &old, &q->had, &c->err);
    if (rc != ANVIL_OK)
        return rc;
    // A new limit starts full; a changed one keeps its tokens (at most the
    // new burst).
    q->at     = b->now;
    q->tokens = q->rate > 0 ? (double) q->burst : 0;
    if (q->had && q->rate > 0 && old.tokens < q->tokens)
        q->tokens = old.tokens;
    q->changed = q->rate > 0
        ? !q->had || old.rate != q->rate || old.burst != q->burst
        : q->had;
    if (!q->changed)
        return ANVIL_OK;
    struct store_queue_limit l = {
        .queue  = (char *) q->queue,
        .rate   = q->rate,
        .burst  = q->burst,
        .tokens = q->tokens,
        .at     = q->at,
    };
    rc = store_queue_limit_set(e->st, &l, &c->err);
    if (rc != ANVIL_OK)
        return rc;
    b->queues_changed = true;
    char msg[96];
    if (q->rate > 0)
        snprintf(msg, sizeof(msg), "rate=%g/s burst=%u", q->rate, q->burst);
    else
        snprintf(msg, sizeof(msg), "no rate limit");
    struct store_new_event ev
        = { .kind = EV_QUEUE_LIMITED, .queue = q->queue, .message = msg };
    rc = events_emit(e, b, &ev, &c->err);
    if (rc == ANVIL_OK)
        AV_INFO("queue.limited", "queue=%s %s", q->queue, msg);
    return rc;
}

void
rates_committed(struct engine *e, const struct cmd *list)
{
    bool woke = false;
    for (const struct cmd *c = list; c != NULL; c = c->next) {
        const struct cmd_queue *q = &c->u.queue;
        if (c->kind != CMD_QUEUE_LIMIT || c->err.code != ANVIL_OK
            || !q->changed)
            continue;
        // Leases later in the batch may have spent from the bucket the
        // limit changed: those stay spent.
        struct readyq_rate r = {
            .rate = q->rate, .burst = q->burst, .tokens = q->tokens, .at = q->at
        };
        struct readyq_rate now;
        if (q->had && readyq_rate_get(e->ready, q->queue, &now)
            && now.tokens < r.tokens)
            r.tokens = now.tokens;
        if (readyq_rate_set(e->ready, q->queue, q->rate > 0 ? &r : NULL) != 0)
            AV_ERR("queue.oom",
                "queue=%s msg=\"out of memory: the rate limit takes effect "
                "after a restart\"",
                q->queue);
        woke = true;
    }
    if (woke && e->parked_polls != NULL)
        engine_timer_add(e, TIMER_RESUMED, av_now_ms(), 0, 0);
}

int
rates_load(struct engine *e, struct anvil_error *err)
{
    struct store_queue_limit *v  = NULL;
    size_t                    n  = 0;
    int                       rc = store_queue_limits(e->st, &v, &n, err);
    e->rate_wake_at              = 0;
    for (size_t i = 0; rc == ANVIL_OK && i < n; i++) {
        struct readyq_rate r = {
            .rate   = v[i].rate,
            .burst  = v[i].burst,
            .tokens = v[i].tokens,
            .at     = v[i].at,
        };
        if (readyq_rate_set(e->ready, v[i].queue, &r) != 0)
            rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    store_queue_limits_free(v, n);
    if (rc == ANVIL_OK)
        readyq_clock(e->ready, av_now_ms());
    return rc;
}

int
rates_flush(struct engine *e, struct anvil_error *err)
{
    size_t n = readyq_rate_count(e->ready);
    for (size_t i = 0; i < n; i++) {
        struct readyq_rate r;
        bool               dirty;
        const char        *queue = readyq_rate_name(e->ready, i, &r, &dirty);
        if (!dirty)
            continue;
        int rc = store_queue_limit_save(e->st, queue, r.tokens, r.at, err);
        if (rc != ANVIL_OK)
            return rc;
    }
    readyq_rate_clean(e->ready);
    return ANVIL_OK;
}

void
rates_wake(struct engine *e, struct batch *b)
{
    if (e->parked_polls == NULL || readyq_rate_count(e->ready) == 0)
        return;
    int64_t next = readyq_rate_next(e->ready);
    if (next == INT64_MAX)
        return;
    if (e->rate_wake_at > b->now && e->rate_wake_at <= next)
        return; // an earlier one is pending
    engine_timer_add(e, TIMER_RESUMED, next, 0, 0);
    e->rate_wake_at = next;
}

int
rates_health(struct engine *e, struct cmd_health *h)
{
    size_t n = readyq_rate_count(e->ready);
    if (n == 0)
        return ANVIL_OK;
    h->limits = calloc(n, sizeof(*h->limits));
    if (h->limits == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    for (; h->n_limits < n; h->n_limits++) {
        struct readyq_rate        r;
        bool                      dirty;
        struct store_queue_limit *l = &h->limits[h->n_limits];
        const char *queue = readyq_rate_name(e->ready, h->n_limits, &r, &dirty);
        l->queue          = strdup(queue);
        if (l->queue == NULL)
            return ANVIL_RESOURCE_EXHAUSTED;
        l->rate   = r.rate;
        l->burst  = r.burst;
        l->tokens = r.tokens;
        l->at     = r.at;
    }
    return ANVIL_OK;
}
