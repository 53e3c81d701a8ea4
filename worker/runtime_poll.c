// runtime_poll.c - the leases side of the worker library: the poll thread,
// which leases jobs for the slots and the prefetch queue, and the heartbeat
// thread, which keeps every lease held alive.
//
// The poll thread asks for as many jobs as the slots plus the prefetch
// queue can take, minus the leases whose handler has not returned yet, so
// that a slot whose handler returns finds its next job waiting instead of
// waiting a Poll round trip. Leases whose outcome is only waiting for the
// reporter no longer count, unless more than RUNTIME_MAX_BACKLOG of them
// pile up (the server is slow to take reports): then the poll waits.
//
// The heartbeat covers every task held, whether queued, running or waiting
// for its report, so a prefetched job's lease or a report retried for long
// never expires while the worker still holds it.
#include "runtime_impl.h"

#include "util/clock.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

// ---- polling (poll thread) ----

// Queues the leases of one Poll reply. Consumes leases.
static void
enqueue_leases(struct anvil_worker *w, struct anvil_lease *leases, size_t n)
{
    if (n == 0) {
        anvil_leases_free(leases, n);
        return;
    }
    struct lease_batch *b = calloc(1, sizeof(*b) + n * sizeof(struct task));
    if (b == NULL) {
        AV_ERR("worker.poll.oom", "leases=%zu", n);
        anvil_leases_free(leases, n); // the leases expire on the server
        return;
    }
    b->leases   = leases;
    b->n        = n;
    b->refs     = n;
    int64_t now = av_mono_ms();
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < n; i++) {
        struct task *t = &b->tasks[i];
        t->batch       = b;
        t->lease       = &leases[i];
        t->ctx.w       = w;
        // The server counts the timeout from the lease, queued or not.
        if (leases[i].job.timeout_ms > 0)
            t->ctx.deadline_ms = now + leases[i].job.timeout_ms;
        t->next_held = w->held;
        if (w->held != NULL)
            w->held->prev_held = t;
        w->held = t;
        if (w->queue_tail != NULL)
            w->queue_tail->next_queued = t;
        else
            w->queue_head = t;
        w->queue_tail = t;
    }
    w->n_held += n;
    w->n_unfinished += n;
    pthread_cond_broadcast(&w->work_cv);
    pthread_cond_broadcast(&w->state_cv); // the heartbeat period may shrink
    pthread_mutex_unlock(&w->mu);
}

// How many jobs the next Poll may ask for; caller holds w->mu.
static uint32_t
capacity_locked(const struct anvil_worker *w)
{
    size_t cap  = (size_t) w->slots + (size_t) w->prefetch;
    size_t room = cap + RUNTIME_MAX_BACKLOG;
    if (w->n_unfinished >= cap || w->n_held >= room)
        return 0;
    size_t n = cap - w->n_unfinished;
    if (n > room - w->n_held)
        n = room - w->n_held;
    return n > RUNTIME_MAX_POLL_JOBS ? RUNTIME_MAX_POLL_JOBS : (uint32_t) n;
}

// Waits until the worker can take a job; returns how many, 0 once stopping.
// It polls as soon as one job fits: waiting for more to fit measured no
// faster, and a slot may go idle meanwhile.
static uint32_t
wait_capacity(struct anvil_worker *w)
{
    uint32_t n = 0;
    pthread_mutex_lock(&w->mu);
    while (!w->stopping) {
        n = capacity_locked(w);
        if (n > 0)
            break;
        pthread_cond_wait(&w->free_cv, &w->mu);
    }
    if (w->stopping)
        n = 0;
    w->poll_in_call = n > 0;
    w->poll_call_ms = av_mono_ms();
    pthread_mutex_unlock(&w->mu);
    return n;
}

// Adaptive prefetch, judged when a Poll the server answered in full, in
// about a round trip (not a long-poll's wait), comes back, before its
// leases are queued: if handlers returned since the previous reply and a
// slot now sits idle with nothing queued, the queue was too short to cover
// the round trip, so it doubles (up to prefetch_max); if jobs are still
// waiting, it was deep enough and shrinks by one. Fast handlers thus get a
// deep queue, while handlers slower than a round trip never grow it and
// shrink it to one or none, so a worker with slow jobs does not hoard them
// while other workers idle. Caller holds w->mu.
static void
adapt_prefetch(struct anvil_worker *w, uint32_t asked, size_t got)
{
    // A Poll that was parked waited for work, not for a round trip.
    bool parked = av_mono_ms() - w->poll_call_ms > RUNTIME_CUT_POLL_MS;
    if (!w->prefetch_auto || got < asked || parked)
        return;
    bool returned = w->n_returned != w->poll_returned;
    bool starved  = returned && w->queue_head == NULL
        && w->stats.running < (uint64_t) w->slots;
    if (starved) {
        int next    = w->prefetch < w->slots ? w->slots : 2 * w->prefetch;
        w->prefetch = next < w->prefetch_max ? next : w->prefetch_max;
    } else if (w->queue_head != NULL && w->prefetch > 0) {
        w->prefetch--;
    }
}

// The Poll sent after wait_capacity() has its answer (or none).
static void
poll_ended(struct anvil_worker *w, uint32_t asked, size_t got)
{
    pthread_mutex_lock(&w->mu);
    adapt_prefetch(w, asked, got);
    w->poll_returned = w->n_returned;
    w->poll_in_call  = false;
    pthread_cond_broadcast(&w->state_cv); // end_parked_poll() may wait
    pthread_mutex_unlock(&w->mu);
}

// The first of a run of transient errors is a warning, the rest debug;
// any other error (the server refuses the request) is an error each time.
static void
log_poll_error(int rc, const struct anvil_error *e, int64_t backoff, bool first)
{
    char msg[300];
    int  level = AV_LOG_ERROR;
    if (runtime_transient(rc))
        level = first ? AV_LOG_WARN : AV_LOG_DEBUG;
    AV_LOG(level, "worker.poll.error", "code=%s msg=\"%s\" retry_ms=%lld",
        anvil_code_name(rc), runtime_log_safe(msg, sizeof(msg), e->msg),
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

void *
runtime_poll_main(void *arg)
{
    struct anvil_worker  *w       = arg;
    int64_t               backoff = 0;
    struct anvil_poll_req req     = { 0 };
    poll_req_init(w, &req);
    for (;;) {
        req.max_jobs = wait_capacity(w);
        if (req.max_jobs == 0)
            break;
        struct anvil_lease *leases = NULL;
        size_t              n      = 0;
        struct anvil_error  e      = { 0 };
        int rc = anvil_poll(w->poll_client, &req, &leases, &n, &e);
        poll_ended(w, req.max_jobs, rc == ANVIL_OK ? n : 0);
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
        log_poll_error(rc, &e, runtime_next_backoff(backoff), backoff == 0);
        backoff = runtime_next_backoff(backoff);
        runtime_nap(w, backoff, true);
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
        runtime_wait_until(&w->state_cv, &w->mu, start + hb_period(w));
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
// A job whose handler already returned only waits for its report: a lost
// one is dropped by the reporter (which logs it), a canceled one changes
// nothing (the server applies its outcome as a cancel).
static void
flag_jobs(struct anvil_worker *w, char **ids, size_t n, bool lost)
{
    bool *running = calloc(n + 1, sizeof(*running));
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < n; i++) {
        for (struct task *t = w->held; t != NULL; t = t->next_held) {
            if (strcmp(t->lease->job.id, ids[i]) != 0)
                continue;
            t->ctx.canceled = true;
            t->lost         = t->lost || lost;
            if (running != NULL && !t->finished)
                running[i] = true;
        }
    }
    pthread_cond_broadcast(&w->state_cv);
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < n; i++) {
        if (running == NULL || running[i])
            AV_INFO("worker.job.cancel", "id=%s reason=%s", ids[i],
                lost ? "lost" : "canceled");
    }
    free(running);
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
            runtime_log_safe(msg, sizeof(msg), e.msg));
        *failing = true;
        return;
    }
    *failing = false;
    flag_jobs(w, canceled, n_canceled, false);
    flag_jobs(w, lost, n_lost, true);
    anvil_strv_free(canceled, n_canceled);
    anvil_strv_free(lost, n_lost);
}

void *
runtime_poll_hb_main(void *arg)
{
    struct anvil_worker *w       = arg;
    bool                 failing = false;
    while (hb_wait(w))
        heartbeat_once(w, &failing);
    return NULL;
}
