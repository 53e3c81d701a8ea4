// views.c - the engine's read-only views that are not one job or
// workflow: Health (queue depths, paused and rate-limited queues,
// per-minute counts, the newest event), ListWorkers and the metrics'
// exposition. Engine thread, read-only commands (no savepoint).
#include "engine_impl.h"
#include "metrics.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

int
views_health(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_health *h = &c->u.health;
    h->uptime_ms         = b->now - e->started_at;
    int rc = store_depths(e->st, &h->depths, &h->n, &h->total, &c->err);
    for (size_t i = 0; rc == ANVIL_OK && i < h->n; i++)
        h->depths[i].no_worker = !registry_serves(
            e->workers, h->depths[i].queue, h->depths[i].type, b->now);
    if (rc == ANVIL_OK
        && (queues_health(e, h) != ANVIL_OK || rates_health(e, h) != ANVIL_OK))
        rc = av_error_set(&c->err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    uint64_t first;
    if (rc == ANVIL_OK)
        rc = store_events_bounds(e->st, &first, &h->last_event_seq, &c->err);
    if (rc == ANVIL_OK && events_recent(e, b->now, &h->recent, &h->n_recent))
        rc = av_error_set(&c->err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    return rc;
}

static void
count_running(void *arg, const char *worker, uint32_t running)
{
    struct cmd_workers *w = arg;
    for (size_t i = 0; i < w->n; i++) {
        if (strcmp(w->w[i].name, worker) == 0)
            w->w[i].running = running;
    }
}

// A worker parked in a long-poll is connected and waiting: not lost.
static void
mark_waiting(struct engine *e, struct cmd_workers *w, int64_t now)
{
    for (size_t i = 0; i < w->n; i++) {
        if (engine_worker_waiting(e, w->w[i].name)) {
            w->w[i].lost      = false;
            w->w[i].last_seen = now;
        }
    }
}

int
views_workers(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_workers *w = &c->u.workers;
    if (registry_list(e->workers, b->now, &w->w, &w->n) != 0)
        return av_error_set(&c->err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    mark_waiting(e, w, b->now);
    return store_running_by_worker(e->st, count_running, w, &c->err);
}

// Live and lost workers, as ListWorkers reports them.
static int
count_workers(struct engine *e, int64_t now, struct metrics_state *s)
{
    struct cmd_workers w = { 0 };
    if (registry_list(e->workers, now, &w.w, &w.n) != 0)
        return ANVIL_RESOURCE_EXHAUSTED;
    mark_waiting(e, &w, now);
    for (size_t i = 0; i < w.n; i++) {
        if (w.w[i].lost)
            s->workers_lost++;
        else
            s->workers_live++;
    }
    registry_entries_free(w.w, w.n);
    return ANVIL_OK;
}

static uint32_t
count_list(const struct cmd *c)
{
    uint32_t n = 0;
    for (; c != NULL; c = c->next)
        n++;
    return n;
}

int
views_metrics(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_metrics *out = &c->u.metrics;
    if (e->cfg.metrics == NULL)
        return av_error_set(&c->err, ANVIL_UNAVAILABLE,
            "metrics are off (anvild --no-metrics)");
    struct store_depth  *d = NULL;
    uint64_t             total;
    struct metrics_state s = {
        .parked_polls = count_list(e->parked_polls),
        .parked_waits = count_list(e->parked_waits),
        .parked_flows = count_list(e->parked_flows),
    };
    // The depths Health reports.
    int rc = store_depths(e->st, &d, &s.n_depths, &total, &c->err);
    if (rc != ANVIL_OK)
        return rc;
    s.depths = d;
    size_t keys;
    readyq_key_totals(
        e->ready, &keys, &s.concurrency_running, &s.concurrency_waiting);
    s.concurrency_keys = keys;
    rc                 = count_workers(e, b->now, &s);
    if (rc == ANVIL_OK)
        rc = metrics_render(e->cfg.metrics, &s, &out->text, &out->len);
    store_depths_free(d, s.n_depths);
    if (rc != ANVIL_OK)
        return av_error_set(&c->err, rc, "out of memory rendering the metrics");
    return ANVIL_OK;
}
