// queues.c - pausing and resuming a queue (PauseQueue, ResumeQueue) on the
// engine thread, and what Health says of the ready queues (paused queues,
// the busiest concurrency keys). The store keeps the paused queues; the ready
// queues skip them (readyq_pause) only once the batch has committed
// (queues_committed), never before, so a rolled-back pause never stops a
// lease and a rolled-back resume never starts one. A resume wakes the
// parked polls in the batch after its commit.
#include "engine_impl.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

static int
set_paused(struct engine *e, struct batch *b, struct cmd *c, bool paused)
{
    struct cmd_queue *q  = &c->u.queue;
    int               rc = store_queue_set_paused(
                      e->st, q->queue, paused, b->now, &q->changed, &c->err);
    if (rc != ANVIL_OK)
        return rc;
    b->queues_changed = true;
    if (!q->changed)
        return ANVIL_OK;
    struct store_new_event ev = {
        .kind  = paused ? EV_QUEUE_PAUSED : EV_QUEUE_RESUMED,
        .queue = q->queue,
    };
    rc = events_emit(e, b, &ev, &c->err);
    if (rc == ANVIL_OK)
        AV_INFO(
            paused ? "queue.paused" : "queue.resumed", "queue=%s", q->queue);
    return rc;
}

int
queues_pause(struct engine *e, struct batch *b, struct cmd *c)
{
    return set_paused(e, b, c, true);
}

int
queues_resume(struct engine *e, struct batch *b, struct cmd *c)
{
    return set_paused(e, b, c, false);
}

void
queues_committed(struct engine *e, const struct cmd *list)
{
    bool resumed = false;
    for (const struct cmd *c = list; c != NULL; c = c->next) {
        bool pause = c->kind == CMD_QUEUE_PAUSE;
        if ((!pause && c->kind != CMD_QUEUE_RESUME) || c->err.code != ANVIL_OK)
            continue;
        resumed = resumed || !pause;
        if (readyq_pause(e->ready, c->u.queue.queue, pause) != 0)
            AV_ERR("queue.oom",
                "queue=%s msg=\"out of memory: the queue is paused after a "
                "restart\"",
                c->u.queue.queue);
    }
    // Leasing needs a transaction: the next batch serves the parked polls,
    // at once.
    if (resumed && e->parked_polls != NULL)
        engine_timer_add(e, TIMER_RESUMED, av_now_ms(), 0, 0);
}

int
queues_load(struct engine *e, struct anvil_error *err)
{
    char **names = NULL;
    size_t n     = 0;
    int    rc    = store_queues_paused(e->st, &names, &n, err);
    for (size_t i = 0; rc == ANVIL_OK && i < n; i++) {
        if (readyq_pause(e->ready, names[i], true) != 0)
            rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    store_names_free(names, n);
    return rc;
}

// The busiest concurrency keys, copied (the readyq's names go when their
// key is released, maybe before the reply is encoded).
static int
busiest_keys(struct engine *e, struct cmd_health *h)
{
    struct readyq_key_counts top[HEALTH_BUSIEST_KEYS];
    size_t n = readyq_busiest(e->ready, top, HEALTH_BUSIEST_KEYS);
    if (n == 0)
        return ANVIL_OK;
    h->keys = calloc(n, sizeof(*h->keys));
    if (h->keys == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    for (; h->n_keys < n; h->n_keys++) {
        struct cmd_key_state *k = &h->keys[h->n_keys];
        k->key                  = strdup(top[h->n_keys].key);
        if (k->key == NULL)
            return ANVIL_RESOURCE_EXHAUSTED;
        k->running = top[h->n_keys].running;
        k->waiting = top[h->n_keys].waiting;
        k->limit   = top[h->n_keys].limit;
    }
    return ANVIL_OK;
}

int
queues_health(struct engine *e, struct cmd_health *h)
{
    size_t n = readyq_paused_count(e->ready);
    for (size_t i = 0; i < h->n; i++)
        h->depths[i].paused = readyq_paused(e->ready, h->depths[i].queue);
    if (busiest_keys(e, h) != ANVIL_OK)
        return ANVIL_RESOURCE_EXHAUSTED;
    if (n == 0)
        return ANVIL_OK;
    h->paused = calloc(n, sizeof(*h->paused));
    if (h->paused == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    for (; h->n_paused < n; h->n_paused++) {
        h->paused[h->n_paused]
            = strdup(readyq_paused_name(e->ready, h->n_paused));
        if (h->paused[h->n_paused] == NULL)
            return ANVIL_RESOURCE_EXHAUSTED;
    }
    return ANVIL_OK;
}
