// engine.c - the engine thread, the command queue and group commit.
// The state machines it drives are in jobs.c (jobs) and flow.c
// (workflows); no other code changes job or workflow state.
//
// One batch: take every posted command, BEGIN, fire due timers, apply each
// command inside a savepoint, serve parked polls that can now be served,
// COMMIT, then answer. Answers wait for the commit, so nothing is
// acknowledged before it is durable; batching is sized by what is waiting
// (no timer), so an idle server answers after one commit and a busy one
// folds hundreds of requests into each. See docs/architecture.md.
#include "engine_impl.h"
#include "metrics.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SWEEP_JOBS 500
#define SWEEP_FLOWS 20
#define SWEEP_EVENTS 5000
#define SWEEP_INTERVAL_MS 60000

void
engine_timer_add(
    struct engine *e, int kind, int64_t at, int64_t id, uint32_t att)
{
    struct timer t = { .at = at, .kind = kind, .id = id, .attempt = att };
    if (timers_add(e->timers, t) != 0)
        AV_ERR("engine.oom", "what=timer job=%lld", (long long) id);
}

void
engine_mark(struct id_list *l, int64_t id)
{
    if (l->n == l->cap) {
        size_t   cap = l->cap ? l->cap * 2 : 32;
        int64_t *p   = realloc(l->ids, cap * sizeof(*p));
        if (p == NULL)
            return; // its waiters then wake at their timeout
        l->ids = p;
        l->cap = cap;
    }
    l->ids[l->n++] = id;
}

int
engine_push_ready(struct engine *e, struct batch *b, int64_t id,
    const char *queue, const char *type, int32_t priority, const char *ckey,
    uint32_t limit)
{
    if (readyq_push_key(e->ready, queue, type, id, priority,
            ckey != NULL && ckey[0] != '\0' ? ckey : NULL, limit)
        != 0)
        return ANVIL_RESOURCE_EXHAUSTED;
    b->ready_added = true;
    return ANVIL_OK;
}

int
engine_pipe_closed(struct engine *e, struct batch *b, struct cmd *c)
{
    engine_drop_pipe(e, c->pipe, &b->reply);
    return ANVIL_OK;
}

// How a kind is applied: the access column of rpc_table.h.
enum access {
    READS,  // no savepoint: it changes nothing
    WRITES, // in its own savepoint
    ITEMS,  // a batch: each item in its own (engine_items)
};

// Each command kind's row of rpc_table.h, as the engine uses it. A kind
// without a row is refused, never routed by its place in the enum.
static const struct {
    int (*apply)(struct engine *e, struct batch *b, struct cmd *c);
    enum access access;
    void (*fini)(struct cmd *c); // frees its outputs
} kinds[CMD_NKINDS] = {
#define RPC(method, kind, apply, fini, access, ...) \
    [CMD_##kind] = { apply, access, fini },
#define CMD(kind, apply, fini, access) [CMD_##kind] = { apply, access, fini },
#include "rpc_table.h"
#undef RPC
#undef CMD
};

static enum access
access_of(enum cmd_kind k)
{
    return (size_t) k < CMD_NKINDS ? kinds[k].access : WRITES;
}

void
engine_cmd_fini(struct cmd *c)
{
    if ((size_t) c->kind < CMD_NKINDS && kinds[c->kind].fini != NULL)
        kinds[c->kind].fini(c);
}

static int
dispatch(struct engine *e, struct batch *b, struct cmd *c)
{
    if ((size_t) c->kind >= CMD_NKINDS || kinds[c->kind].apply == NULL)
        return av_error_set(
            &c->err, ANVIL_INTERNAL, "unknown command %d", (int) c->kind);
    return kinds[c->kind].apply(e, b, c);
}

// The batch can no longer tell what it holds: its transaction is rolled
// back whole and every command in it refused (run_batch).
static void
break_batch(struct batch *b, const struct anvil_error *err)
{
    if (b->broken)
        return;
    b->broken = true;
    av_error_set(&b->broken_err, err->code, "%s", err->msg);
}

// Undoes the open savepoint. If even that fails, the savepoint's writes
// would stay in the transaction: the whole batch is refused.
static void
undo(struct engine *e, struct batch *b)
{
    struct anvil_error err = { 0 };
    events_undo(b);
    limits_undo(b);
    if (store_rollback_savepoint(e->st, &err) != ANVIL_OK)
        break_batch(b, &err);
}

// Opens one command's (or timer's) savepoint.
static int
savepoint(struct engine *e, struct batch *b, struct anvil_error *err)
{
    events_mark(b);
    return store_savepoint(e->st, err);
}

// Ends the open savepoint, keeping its writes; undoes it if that fails.
static int
keep(struct engine *e, struct batch *b, struct anvil_error *err)
{
    int rc = store_release(e->st, err);
    if (rc != ANVIL_OK)
        undo(e, b);
    else
        limits_keep(e, b);
    return rc;
}

// Applies one command inside its own savepoint: a failure undoes that
// command's writes only. Returns false when the command was parked.
static bool
apply_one(struct engine *e, struct batch *b, struct cmd *c)
{
    bool rw = access_of(c->kind) != READS;
    av_error_clear(&c->err);
    if (rw && savepoint(e, b, &c->err) != ANVIL_OK)
        return true;
    int rc = dispatch(e, b, c);
    if (rc == ENGINE_PARKED) {
        struct anvil_error err = { 0 };
        if (rw)
            keep(e, b, &err);
        return false; // parked
    }
    c->err.code = rc;
    // A refused command writes nothing: whatever it wrote before failing
    // is undone.
    if (rw && rc != ANVIL_OK)
        undo(e, b);
    else if (rw)
        keep(e, b, &c->err);
    return true;
}

// A batch's items, each as if posted alone (see struct cmd_batch): the
// apply of the ITEMS rows (SubmitJobs, Report).
int
engine_items(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_batch *bt = &c->u.batch;
    if (bt->n > 0 && c->request_id > UINT64_MAX - (bt->n - 1)) {
        // Item ids R + i would wrap past 0 ("no id"): a resend could not
        // be recognised.
        for (size_t i = 0; i < bt->n; i++)
            if (bt->items[i].err.code == ANVIL_OK)
                av_error_set(&bt->items[i].err, ANVIL_INVALID_ARGUMENT,
                    "request_id %llu + %zu items passes 2^64; number "
                    "batches so that request_id + n - 1 < 2^64",
                    (unsigned long long) c->request_id, bt->n);
        return ANVIL_OK;
    }
    for (size_t i = 0; i < bt->n; i++) {
        struct cmd *it = &bt->items[i];
        if (it->err.code != ANVIL_OK)
            continue; // refused at decode
        it->request_id = c->request_id != 0 ? c->request_id + i : 0;
        it->token_id   = c->token_id;
        it->role       = c->role;
        it->pipe       = c->pipe;
        apply_one(e, b, it); // SUBMIT, COMPLETE or FAIL: never parks
    }
    return ANVIL_OK;
}

// Stamps hop h on every traced command of list (Request.trace).
void
engine_trace_list(struct cmd *list, int h)
{
    int64_t now = 0;
    for (; list != NULL; list = list->next) {
        if (list->trace == NULL)
            continue;
        if (now == 0)
            now = av_mono_us();
        list->trace[h] = now;
    }
}

// A broken batch applies nothing more: its commands are refused with the
// rest of it (run_batch).
static void
apply(struct engine *e, struct batch *b, struct cmd *c)
{
    if (c->trace != NULL)
        c->trace[CMD_TRACE_TAKEN] = b->taken_us;
    bool parked = false;
    if (!b->broken && access_of(c->kind) == ITEMS) {
        av_error_clear(&c->err); // no savepoint: each item has its own
        c->err.code = dispatch(e, b, c);
    } else if (!b->broken) {
        parked = !apply_one(e, b, c);
    }
    if (c->trace != NULL)
        c->trace[CMD_TRACE_APPLIED] = av_mono_us();
    if (!parked)
        engine_list_push(&b->reply, c);
}

// Events past --event-retention or past the newest event_max.
static int
sweep_events(
    struct engine *e, struct batch *b, int *deleted, struct anvil_error *err)
{
    uint64_t first, last;
    int      rc = store_events_bounds(e->st, &first, &last, err);
    if (rc != ANVIL_OK || first == 0)
        return rc;
    uint64_t below = last > e->cfg.event_max ? last - e->cfg.event_max + 1 : 0;
    return store_sweep_events(e->st, b->now - e->cfg.event_retention_ms, below,
        SWEEP_EVENTS, deleted, err);
}

// Retention: deletes a bounded slice of old finished work and events per
// batch, and comes back at once while there is more, so the engine never
// stalls on it.
static int
sweep(struct engine *e, struct batch *b)
{
    struct anvil_error err    = { 0 };
    int64_t            before = b->now - e->cfg.retention_ms;
    int                jobs = 0, flows = 0, events = 0;
    int                rc = ANVIL_OK;
    if (e->cfg.retention_ms > 0)
        rc = store_sweep_jobs(e->st, before, SWEEP_JOBS, &jobs, &err);
    if (rc == ANVIL_OK && e->cfg.retention_ms > 0)
        rc = store_sweep_workflows(e->st, before, SWEEP_FLOWS, &flows, &err);
    if (rc == ANVIL_OK)
        rc = sweep_events(e, b, &events, &err);
    if (rc != ANVIL_OK)
        return rc; // retried by fire_timers
    if (jobs + flows + events > 0)
        AV_INFO("retention.deleted", "jobs=%d workflows=%d events=%d", jobs,
            flows, events);
    bool more
        = jobs == SWEEP_JOBS || flows == SWEEP_FLOWS || events == SWEEP_EVENTS;
    int64_t next = more ? b->now : b->now + SWEEP_INTERVAL_MS;
    engine_timer_add(e, TIMER_SWEEP, next, 0, 0);
    return ANVIL_OK;
}

// Fires every due timer, each in its own savepoint: one that fails is
// rolled back alone and tried again a second later.
static void
fire_timers(struct engine *e, struct batch *b)
{
    struct timer t;
    while (timers_pop_due(e->timers, b->now, &t)) {
        if (t.kind == TIMER_WAITER) {
            engine_unpark_expired(e, b, (uint64_t) t.id);
            continue;
        }
        if (t.kind == TIMER_RESUMED) { // queues_committed
            b->ready_added = true;
            continue;
        }
        struct anvil_error err = { 0 };
        if (savepoint(e, b, &err) != ANVIL_OK) {
            engine_timer_add(e, t.kind, b->now + 1000, t.id, t.attempt);
            break;
        }
        int rc = t.kind == TIMER_SWEEP ? sweep(e, b)
            : t.kind == TIMER_WORKFLOW ? flow_fire_timer(e, b, t.id)
            : t.kind == TIMER_WORKERS  ? events_workers_check(e, b)
            : t.kind == TIMER_SCHEDULE ? schedules_fire_timer(e, b, t.id)
                                       : jobs_fire_timer(e, b, &t);
        if (rc == ANVIL_OK && keep(e, b, &err) == ANVIL_OK)
            continue;
        if (rc != ANVIL_OK)
            undo(e, b);
        AV_ERR("engine.timer", "kind=%d id=%lld code=%s", t.kind,
            (long long) t.id, anvil_code_name(rc));
        engine_timer_add(e, t.kind, b->now + 1000, t.id, t.attempt);
    }
}

static void
serve_parked_polls(struct engine *e, struct batch *b)
{
    struct cmd **pp = &e->parked_polls;
    while (*pp != NULL && readyq_size(e->ready) > 0) {
        struct cmd      *c = *pp;
        struct cmd_poll *p = &c->u.poll;
        if (!readyq_any(e->ready, p->queues, p->nq, p->types, p->nt)) {
            pp = &c->next;
            continue;
        }
        struct anvil_error err = { 0 };
        if (savepoint(e, b, &err) != ANVIL_OK)
            return;
        int rc = jobs_poll_take(e, b, c);
        if (rc == ANVIL_OK)
            rc = keep(e, b, &err);
        else
            undo(e, b);
        if (b->broken)
            return;
        if (rc != ANVIL_OK || p->n == 0) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        jobs_memo_add(e, c);
        engine_list_push(&b->reply, c);
    }
}

static int rebuild(struct engine *e, struct anvil_error *err);

// Frees what c's apply produced and answers it with code and msg instead.
static void
refuse(struct cmd *c, int code, const char *msg)
{
    engine_cmd_fini(c);
    av_error_set(&c->err, code, "%s", msg);
    if (access_of(c->kind) != ITEMS)
        return;
    for (size_t i = 0; i < c->u.batch.n; i++)
        av_error_set(&c->u.batch.items[i].err, code, "%s", msg);
}

void
engine_answer_all(struct cmd *list, int code, const char *msg)
{
    while (list != NULL) {
        struct cmd *next = list->next;
        if (code != ANVIL_OK)
            refuse(list, code, msg);
        list->done(list, list->done_arg);
        list = next;
    }
}

// The engine can no longer vouch for what it answers (a sync or a rebuild
// failed): from now on it refuses every command, and asks its owner to
// stop the server (engine_config.on_fatal).
void
engine_fatal(struct engine *e, const struct anvil_error *err)
{
    if (atomic_exchange(&e->failed, true))
        return;
    AV_ERR("engine.fatal",
        "code=%s msg=\"%s; the server stops so that a restart recovers "
        "from what is on disk\"",
        anvil_code_name(err->code), err->msg);
    if (e->cfg.on_fatal != NULL)
        e->cfg.on_fatal(e->cfg.fatal_arg, err);
}

static void
reverse(struct cmd **list)
{
    struct cmd *out = NULL;
    while (*list != NULL) {
        struct cmd *c = *list;
        *list         = c->next;
        engine_list_push(&out, c);
    }
    *list = out;
}

// True if commands wait for the engine: then the sync thread takes this
// batch's sync while the engine applies them.
static bool
more_waiting(struct engine *e)
{
    pthread_mutex_lock(&e->lock);
    bool more = e->incoming != NULL;
    pthread_mutex_unlock(&e->lock);
    return more;
}

// The batch's transaction did not commit (or must not): rolls it back,
// rebuilds memory from the database and refuses every command in it. The
// store's code passes through (disk full is RESOURCE_EXHAUSTED).
static void
fail_batch(struct engine *e, struct batch *b, const struct anvil_error *why)
{
    struct anvil_error err = { 0 };
    char               msg[sizeof(err.msg) + 80];
    snprintf(msg, sizeof(msg),
        "the server could not commit this request; it was not applied: %.*s",
        (int) sizeof(err.msg) - 1, why->msg);
    int code = why->code != ANVIL_OK ? why->code : ANVIL_INTERNAL;
    AV_ERR("engine.batch_failed", "code=%s msg=\"%s\"", anvil_code_name(code),
        why->msg);
    if (store_rollback(e->st, &err) != ANVIL_OK || rebuild(e, &err) != ANVIL_OK)
        engine_fatal(e, &err);
    engine_answer_all(b->reply, code, msg);
}

// Answers a committed batch: inline, or through the sync thread.
static void
answer_committed(struct engine *e, struct batch *b)
{
    if (b->tokens_changed)
        tokens_committed(e, b->reply);
    if (b->queues_changed) {
        queues_committed(e, b->reply);
        rates_committed(e, b->reply);
    }
    engine_trace_list(b->reply, CMD_TRACE_COMMITTED);
    if (!e->deferred)
        engine_trace_list(b->reply, CMD_TRACE_SYNCED);
    if (e->deferred && more_waiting(e))
        engine_sync_post(e, b->reply);
    else if (e->deferred)
        engine_sync_inline(e, b->reply);
    else
        engine_answer_all(b->reply, ANVIL_OK, NULL);
}

static void
run_batch(struct engine *e, struct cmd *cmds)
{
    struct batch       b   = { .now = av_now_ms(), .taken_us = av_mono_us() };
    struct anvil_error err = { 0 };
    if (atomic_load(&e->failed)) {
        engine_answer_all(cmds, ANVIL_UNAVAILABLE, ENGINE_MSG_FAILED);
        return;
    }
    if (store_begin(e->st, &err) != ANVIL_OK) {
        engine_answer_all(cmds, err.code, err.msg);
        return;
    }
    readyq_clock(e->ready, b.now);
    fire_timers(e, &b);
    size_t n = 0;
    for (; cmds != NULL; n++) {
        struct cmd *c = cmds;
        cmds          = c->next;
        apply(e, &b, c);
    }
    if (b.ready_added && !b.broken)
        serve_parked_polls(e, &b);
    if (!b.broken && rates_flush(e, &err) != ANVIL_OK)
        break_batch(&b, &err);
    if (!b.broken)
        rates_wake(e, &b);
    if (!b.broken && events_flush(e, &b, &err) != ANVIL_OK)
        break_batch(&b, &err);
    if (!b.broken)
        engine_wake_waiters(e, &b);
    reverse(&b.reply);
    int64_t t0 = av_mono_us();
    if (b.broken)
        fail_batch(e, &b, &b.broken_err);
    else if (store_commit(e->st, &err) != ANVIL_OK)
        fail_batch(e, &b, &err);
    else {
        metrics_commit(e->cfg.metrics, n, av_mono_us() - t0);
        answer_committed(e, &b);
    }
    free(b.finished.ids);
    free(b.flows.ids);
    limits_batch_free(&b);
    events_batch_free(&b);
}

// Waits (e->lock held) until commands are posted, a timer is due or the
// engine stops, and never while an engine_call() caller runs a batch:
// the timers are then its own.
static void
wait_work(struct engine *e)
{
    for (;;) {
        if (e->busy) {
            e->waits_busy = true;
            pthread_cond_wait(&e->wake, &e->lock);
            continue;
        }
        e->waits_busy = false;
        if (e->incoming != NULL || e->stopping)
            return;
        int64_t next = timers_next(e->timers);
        if (next <= av_now_ms())
            return;
        e->wait_until = next;
        if (next == INT64_MAX) {
            pthread_cond_wait(&e->wake, &e->lock);
            continue;
        }
        struct timespec ts = { .tv_sec = next / 1000,
            .tv_nsec                   = (long) (next % 1000) * 1000000 };
        pthread_cond_timedwait(&e->wake, &e->lock, &ts);
    }
}

static struct cmd *
take_incoming(struct engine *e, bool *stopping)
{
    pthread_mutex_lock(&e->lock);
    wait_work(e);
    struct cmd *cmds = e->incoming;
    e->incoming = e->tail = NULL;
    e->queued             = 0;
    *stopping             = e->stopping;
    e->busy               = true;
    pthread_mutex_unlock(&e->lock);
    return cmds;
}

// A batch ended (any thread): lets the next one run, and wakes the engine
// thread when it has something to do that it may not know of: posted
// commands, a stop, a timer due before its wake-up, or the end of its wait
// for busy.
static void
batch_end(struct engine *e, bool engine_thread)
{
    int64_t next = engine_thread ? INT64_MAX : timers_next(e->timers);
    pthread_mutex_lock(&e->lock);
    e->busy = false;
    if (!engine_thread
        && (e->incoming != NULL || e->stopping || e->waits_busy
            || next < e->wait_until))
        pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
}

static void *
engine_main(void *arg)
{
    struct engine *e = arg;
    for (;;) {
        bool        stopping;
        struct cmd *cmds = take_incoming(e, &stopping);
        if (cmds != NULL || !stopping)
            run_batch(e, cmds);
        batch_end(e, true);
        if (stopping && cmds == NULL)
            break;
    }
    engine_park_stop(e);
    return NULL;
}

static int
rebuild_one(void *arg, const struct job *j)
{
    struct engine *e = arg;
    switch (j->state) {
    case ANVIL_JOB_SCHEDULED:
        engine_timer_add(e, TIMER_RUN_AT, j->run_at, j->id, j->attempt);
        break;
    case ANVIL_JOB_RUNNING:
        jobs_lease_timers(e, j);
        break;
    }
    return limits_rebuild_job(e, j);
}

static int
rebuild_flow(void *arg, int64_t id, int64_t deadline)
{
    engine_timer_add(arg, TIMER_WORKFLOW, deadline, id, 0);
    return ANVIL_OK;
}

// (Re)builds the ready queues and timers from the store.
static int
rebuild(struct engine *e, struct anvil_error *err)
{
    readyq_free(e->ready);
    timers_free(e->timers);
    e->ready  = readyq_new();
    e->timers = timers_new();
    // Leases remembered for resent Polls may have been rolled back.
    for (size_t i = 0; i < POLL_MEMORY; i++)
        e->memo[i].rid = 0;
    jobs_bulk_forget(e);
    if (e->ready == NULL || e->timers == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    // Parked long-polls keep their place; give them their timers back.
    engine_park_retime(e);
    // Events are swept (by age and count) whatever retention_ms says.
    engine_timer_add(e, TIMER_SWEEP, av_now_ms(), 0, 0);
    engine_timer_add(e, TIMER_WORKERS, av_now_ms() + 1000, 0, 0);
    e->workers_timer = true;
    int rc           = queues_load(e, err);
    if (rc == ANVIL_OK)
        rc = rates_load(e, err);
    if (rc == ANVIL_OK)
        rc = store_scan_active(e->st, rebuild_one, e, err);
    if (rc == ANVIL_OK)
        rc = store_workflow_scan_active(e->st, rebuild_flow, e, err);
    if (rc == ANVIL_OK)
        rc = schedules_load(e, err);
    return rc;
}

int
engine_start(struct store *st, const struct engine_config *cfg,
    struct engine **out, struct anvil_error *err)
{
    struct engine *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    e->st  = st;
    e->cfg = *cfg;
    if (e->cfg.max_queue <= 0)
        e->cfg.max_queue = 100000;
    if (e->cfg.event_retention_ms <= 0)
        e->cfg.event_retention_ms = ENGINE_EVENT_RETENTION_MS;
    if (e->cfg.event_max == 0)
        e->cfg.event_max = ENGINE_EVENT_MAX;
    e->started_at = av_now_ms();
    e->rand_state = (uint32_t) av_mono_us() | 1u;
    e->workers
        = registry_new(cfg->worker_lost_ms > 0 ? cfg->worker_lost_ms : 15000);
    if (e->workers == NULL) {
        free(e);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->wake, NULL);
    pthread_mutex_init(&e->sync_lock, NULL);
    pthread_cond_init(&e->sync_wake, NULL);
    e->deferred = store_needs_sync(st);
    int rc      = rebuild(e, err);
    if (rc == ANVIL_OK && e->deferred
        && pthread_create(&e->sync_thread, NULL, engine_sync_main, e))
        rc = av_error_set(err, ANVIL_INTERNAL, "cannot start sync thread");
    else if (rc == ANVIL_OK
        && pthread_create(&e->thread, NULL, engine_main, e)) {
        rc = av_error_set(err, ANVIL_INTERNAL, "cannot start engine thread");
        engine_sync_join(e);
    }
    if (rc != ANVIL_OK) {
        pthread_mutex_destroy(&e->sync_lock);
        pthread_cond_destroy(&e->sync_wake);
        registry_free(e->workers);
        readyq_free(e->ready);
        timers_free(e->timers);
        pthread_mutex_destroy(&e->lock);
        pthread_cond_destroy(&e->wake);
        free(e);
        return rc;
    }
    AV_INFO("engine.started", "queued=%zu timers=%zu", readyq_size(e->ready),
        timers_size(e->timers));
    *out = e;
    return ANVIL_OK;
}

void
engine_submit(struct engine *e, struct cmd *c)
{
    c->next = NULL;
    pthread_mutex_lock(&e->lock);
    if (e->stopping || e->queued >= e->cfg.max_queue) {
        bool stopping = e->stopping;
        pthread_mutex_unlock(&e->lock);
        if (stopping)
            av_error_set(&c->err, ANVIL_UNAVAILABLE, "the server is stopping");
        else
            av_error_set(&c->err, ANVIL_RESOURCE_EXHAUSTED,
                "the server has %d requests waiting, its limit (anvild "
                "--max-queue); retry later",
                e->cfg.max_queue);
        c->done(c, c->done_arg);
        return;
    }
    e->queued++;
    if (e->tail != NULL)
        e->tail->next = c;
    else
        e->incoming = c;
    e->tail = c;
    // A running batch's thread looks at incoming when it ends (batch_end,
    // take_incoming): a wake-up now would only cost a futex call.
    if (!e->busy)
        pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
}

// The leader/follower shape of LevelDB's DBImpl::Write: the first caller to
// find the engine idle runs the batch on its own thread (a follower that
// comes meanwhile posts, and the engine thread takes it after), so an
// idle server's request is applied, committed, synced and answered by the
// thread that received it: no wake-up of the engine thread and none of the
// sync thread. Durability is the engine thread's: run_batch answers only
// after the sync.
void
engine_call(struct engine *e, struct cmd *c)
{
    c->next = NULL;
    pthread_mutex_lock(&e->lock);
    bool lead = !e->busy && !e->stopping && e->incoming == NULL;
    if (lead)
        e->busy = true;
    pthread_mutex_unlock(&e->lock);
    if (!lead) {
        engine_submit(e, c);
        return;
    }
    run_batch(e, c);
    batch_end(e, false);
}

void
engine_stop(struct engine *e)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&e->lock);
    e->stopping = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->thread, NULL);
    engine_sync_join(e);
    pthread_mutex_destroy(&e->sync_lock);
    pthread_cond_destroy(&e->sync_wake);
    for (size_t i = 0; i < POLL_MEMORY; i++)
        free(e->memo[i].ids);
    jobs_bulk_free(e);
    readyq_free(e->ready);
    timers_free(e->timers);
    registry_free(e->workers);
    events_free(e);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->wake);
    free(e);
}
