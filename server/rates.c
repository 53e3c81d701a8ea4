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

// The bucket a new or changed limit starts with: a new one full, a
// changed one with what it had (at most the new burst).
static void
next_bucket(struct engine *e, const struct cmd_queue *q, int64_t now,
    struct readyq_rate *out, bool *changed)
{
    struct readyq_rate old;
    bool               had = readyq_rate_get(e->ready, q->queue, &old);
    *out                   = (struct readyq_rate) {
                          .rate = q->rate, .burst = q->burst, .at = now
    };
    if (q->rate <= 0) {
        *changed = had;
        return;
    }
    out->tokens = (double) q->burst;
    if (had && old.tokens < out->tokens)
        out->tokens = old.tokens;
    *changed = !had || old.rate != q->rate || old.burst != q->burst;
}

int
rates_set(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_queue  *q = &c->u.queue;
    struct readyq_rate r;
    next_bucket(e, q, b->now, &r, &q->changed);
    q->tokens = r.tokens;
    if (!q->changed)
        return ANVIL_OK;
    struct store_queue_limit l = {
        .queue  = (char *) q->queue,
        .rate   = r.rate,
        .burst  = r.burst,
        .tokens = r.tokens,
        .at     = r.at,
    };
    int rc = store_queue_limit_set(e->st, &l, &c->err);
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
        // Leases later in the batch may have spent tokens: keep them spent.
        struct readyq_rate r, now;
        bool               changed;
        next_bucket(e, q, av_now_ms(), &r, &changed);
        if (readyq_rate_get(e->ready, q->queue, &now) && now.tokens < r.tokens)
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
