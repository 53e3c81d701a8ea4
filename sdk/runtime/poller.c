// poller.c - the poll thread (see poller.h).
#include "runtime/poller.h"

#include "runtime/rtutil.h"
#include "util/clock.h"
#include "util/log.h"

#include <string.h>

// The most jobs one Poll may ask for (the server's limit).
#define MAX_POLL_JOBS 1000

int
poller_init(struct poller *p, struct tasks *ts, anvil_client *client,
    const struct anvil_poll_req *req, int slots, int prefetch, int prefetch_max,
    bool prefetch_auto)
{
    memset(p, 0, sizeof(*p));
    if (rtutil_cond_init_mono(&p->cv) != 0)
        return ANVIL_INTERNAL;
    pthread_mutex_init(&p->mu, NULL);
    p->ts            = ts;
    p->client        = client;
    p->req           = *req;
    p->slots         = slots;
    p->prefetch      = prefetch;
    p->prefetch_max  = prefetch_max;
    p->prefetch_auto = prefetch_auto;
    return ANVIL_OK;
}

void
poller_fini(struct poller *p)
{
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

static bool
stopping(struct tasks *ts)
{
    struct tasks_load ld;
    tasks_load(ts, &ld);
    return ld.phase != TASKS_OPEN;
}

static void
set_idle(struct poller *p)
{
    pthread_mutex_lock(&p->mu);
    p->in_call = false;
    pthread_cond_broadcast(&p->cv); // poller_cut() may wait
    pthread_mutex_unlock(&p->mu);
}

// Waits until the worker can take a job; returns how many, 0 once
// stopping. It polls as soon as one job fits: waiting for more to fit
// measured no faster, and a slot may go idle meanwhile.
static uint32_t
wait_room(struct poller *p)
{
    pthread_mutex_lock(&p->mu);
    size_t cap = (size_t) p->slots + (size_t) p->prefetch;
    pthread_mutex_unlock(&p->mu);
    uint32_t n
        = tasks_wait_room(p->ts, cap, cap + POLLER_MAX_BACKLOG, MAX_POLL_JOBS);
    pthread_mutex_lock(&p->mu);
    p->in_call = n > 0;
    p->call_ms = av_mono_ms();
    pthread_mutex_unlock(&p->mu);
    // A stop that began before in_call was set did not see this Poll to
    // cut it: so it is not sent.
    if (n > 0 && stopping(p->ts)) {
        set_idle(p);
        n = 0;
    }
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
// while other workers idle. Caller holds p->mu.
static void
adapt_locked(
    struct poller *p, const struct tasks_load *ld, uint32_t asked, size_t got)
{
    // A Poll that was parked waited for work, not for a round trip.
    bool parked = av_mono_ms() - p->call_ms > POLLER_CUT_MS;
    if (!p->prefetch_auto || got < asked || parked)
        return;
    bool returned = ld->n_returned != p->returned;
    bool starved = returned && !ld->queued && ld->running < (uint64_t) p->slots;
    if (starved) {
        int next    = p->prefetch < p->slots ? p->slots : 2 * p->prefetch;
        p->prefetch = next < p->prefetch_max ? next : p->prefetch_max;
    } else if (ld->queued && p->prefetch > 0) {
        p->prefetch--;
    }
}

// The Poll sent after wait_room() has its answer (or none).
static void
poll_ended(struct poller *p, uint32_t asked, size_t got)
{
    struct tasks_load ld;
    tasks_load(p->ts, &ld);
    pthread_mutex_lock(&p->mu);
    adapt_locked(p, &ld, asked, got);
    p->returned = ld.n_returned;
    p->in_call  = false;
    pthread_cond_broadcast(&p->cv); // poller_cut() may wait
    pthread_mutex_unlock(&p->mu);
}

// The first of a run of transient errors is a warning, the rest debug;
// any other error (the server refuses the request) is an error each time.
static void
log_poll_error(int rc, const struct anvil_error *e, int64_t backoff, bool first)
{
    char msg[300];
    int  level = AV_LOG_ERROR;
    if (rtutil_transient(rc))
        level = first ? AV_LOG_WARN : AV_LOG_DEBUG;
    AV_LOG(level, "worker.poll.error", "code=%s msg=\"%s\" retry_ms=%lld",
        anvil_code_name(rc), rtutil_log_safe(msg, sizeof(msg), e->msg),
        (long long) backoff);
}

static void *
poll_main(void *arg)
{
    struct poller        *p       = arg;
    int64_t               backoff = 0;
    struct anvil_poll_req req     = p->req;
    for (;;) {
        req.max_jobs = wait_room(p);
        if (req.max_jobs == 0)
            break;
        struct anvil_lease_list *leases = NULL;
        struct anvil_error       e      = { 0 };
        int rc = anvil_lease_poll(p->client, &req, &leases, &e);
        poll_ended(p, req.max_jobs, rc == ANVIL_OK ? leases->n : 0);
        if (rc == ANVIL_OK) {
            if (backoff > 0)
                AV_INFO("worker.poll.resumed", "name=%s", req.worker_id);
            backoff = 0;
            tasks_add(p->ts, leases); // held even when stopping
            continue;
        }
        if (stopping(p->ts))
            break; // the stop cut the poll short: not an error
        log_poll_error(rc, &e, rtutil_next_backoff(backoff), backoff == 0);
        backoff = rtutil_next_backoff(backoff);
        tasks_nap(p->ts, backoff);
    }
    return NULL;
}

int
poller_start(struct poller *p)
{
    if (pthread_create(&p->thr, NULL, poll_main, p) != 0)
        return ANVIL_INTERNAL;
    p->started = true;
    return ANVIL_OK;
}

// Closing the poll client while the server answers a Poll would lose that
// Poll's leases until they expire and, worse, can hang nng_close for good
// (nng 1.5.2, see sdk/client.c). A Poll with work waiting is answered
// within a commit, so one still in flight after POLLER_CUT_MS is parked,
// and its answer comes only when its wait ends or a job arrives.
void
poller_cut(struct poller *p)
{
    pthread_mutex_lock(&p->mu);
    bool cut = false;
    while (p->in_call) {
        int64_t at = p->call_ms + POLLER_CUT_MS;
        cut        = av_mono_ms() >= at;
        if (cut)
            break;
        rtutil_wait_until(&p->cv, &p->mu, at);
    }
    pthread_mutex_unlock(&p->mu);
    // Otherwise the poll thread sees the phase before its next Poll.
    if (cut)
        anvil_client_shutdown(p->client);
}

void
poller_join(struct poller *p)
{
    if (p->started)
        pthread_join(p->thr, NULL);
    p->started = false;
}

void
poller_peek(struct poller *p, int *prefetch, bool *in_call)
{
    pthread_mutex_lock(&p->mu);
    *prefetch = p->prefetch;
    *in_call  = p->in_call;
    pthread_mutex_unlock(&p->mu);
}
