// listen_guard.c - a listener watched by a thread of its own, replaced
// when nng stops taking its connections (listen_guard.h says why).
//
// Threads: the guard thread alone dials, waits and replaces the listener;
// nng's pipe callback only counts pipes (an atomic). listen_guard_stop()
// wakes the thread and joins it.
#include "listen_guard.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/nng_code.h"

#include <errno.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GUARD_URL_MAX 600
#define GUARD_MISSES 2 // checks in a row without a new pipe

struct listen_guard {
    nng_socket             sock; // the listening socket (not ours)
    nng_listener           l;
    char                   url[GUARD_URL_MAX];  // listened on
    char                   self[GUARD_URL_MAX]; // dialed by the checks
    struct nng_tls_config *tls;
    size_t                 recv_max;
    atomic_uint_fast64_t   pipes; // pipes the socket added
    atomic_int             replaced;
    nng_socket             probe; // the checks' client socket
    bool                   probe_open;
    atomic_uint_fast64_t   probe_pipes; // pipes the probe socket added
    nng_dialer             pending;     // a check's, not connected yet
    bool                   has_pending;
    uint64_t               pending_at; // probe_pipes when it started
    pthread_t              thread;
    bool                   running;
    atomic_bool            done;     // guard_main returned
    bool                   orphaned; // left running: g is never freed
    pthread_mutex_t        lock;     // guards stop
    pthread_cond_t         cv;
    bool                   stop;
};

bool
listen_guard_self_url(const char *listen, char *out, size_t len)
{
    static const char *const any[][2] = {
        { "tcp://0.0.0.0:", "tcp://127.0.0.1:" },
        { "tcp://*:", "tcp://127.0.0.1:" },
        { "tcp://:", "tcp://127.0.0.1:" },
        { "tcp4://0.0.0.0:", "tcp4://127.0.0.1:" },
        { "tcp://[::]:", "tcp://[::1]:" },
        { "tcp6://[::]:", "tcp6://[::1]:" },
    };
    for (size_t i = 0; i < sizeof(any) / sizeof(any[0]); i++) {
        size_t n = strlen(any[i][0]);
        if (strncmp(listen, any[i][0], n) == 0)
            return snprintf(out, len, "%s%s", any[i][1], listen + n)
                < (int) len;
    }
    bool plain = strncmp(listen, "ipc://", 6) == 0
        || strncmp(listen, "tcp://", 6) == 0
        || strncmp(listen, "tcp4://", 7) == 0
        || strncmp(listen, "tcp6://", 7) == 0;
    return plain && snprintf(out, len, "%s", listen) < (int) len;
}

static void
on_pipe_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void) p;
    (void) ev;
    struct listen_guard *g = arg;
    atomic_fetch_add(&g->pipes, 1);
}

static void
on_pipe_added_probe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void) p;
    (void) ev;
    struct listen_guard *g = arg;
    atomic_fetch_add(&g->probe_pipes, 1);
}

// Creates and starts a listener on g->url: 0 or an nng error.
static int
listen_now(struct listen_guard *g)
{
    int rv = nng_listener_create(&g->l, g->sock, g->url);
    if (rv == 0 && g->tls != NULL)
        rv = nng_listener_set_ptr(g->l, NNG_OPT_TLS_CONFIG, g->tls);
    if (rv == 0)
        rv = nng_listener_set_size(g->l, NNG_OPT_RECVMAXSZ, g->recv_max);
    if (rv == 0)
        rv = nng_listener_start(g->l, 0);
    return rv;
}

// Sleeps ms or until listen_guard_stop(); true when stopping.
static bool
pause_ms(struct listen_guard *g, int64_t ms)
{
    struct timespec ts = av_deadline_in(CLOCK_REALTIME, ms);
    pthread_mutex_lock(&g->lock);
    while (!g->stop && pthread_cond_timedwait(&g->cv, &g->lock, &ts) == 0)
        ;
    bool stop = g->stop;
    pthread_mutex_unlock(&g->lock);
    return stop;
}

// Waits until *counter differs from before, for ms at most (or until
// listen_guard_stop()); true when it does.
static bool
wait_change(struct listen_guard *g, atomic_uint_fast64_t *counter,
    uint64_t before, int64_t end)
{
    for (;;) {
        if (atomic_load(counter) != before)
            return true;
        if (av_mono_ms() >= end || pause_ms(g, 10))
            return atomic_load(counter) != before;
    }
}

// One check: false when a new connection from the probe socket was set up
// and did not become a pipe of the listening socket within a period.
//
// The check must not be what it looks for: a client that leaves while
// the server has yet to send its header is what stops nng 1.5.2's
// listener. So a check's dialer is closed only once its own connection
// is set up (the probe socket added a pipe: the server has sent its
// header by then); one still connecting is left to finish and closed by
// a later check.
static bool
check(struct listen_guard *g)
{
    if (!g->probe_open) {
        if (nng_req0_open(&g->probe) != 0)
            return true; // cannot check: no evidence either way
        g->probe_open = true;
        nng_pipe_notify(g->probe, NNG_PIPE_EV_ADD_POST, on_pipe_added_probe, g);
    }
    if (g->has_pending) {
        if (atomic_load(&g->probe_pipes) == g->pending_at)
            return true; // the last check's connection is still not set up
        nng_dialer_close(g->pending);
        g->has_pending = false;
    }
    uint64_t   srv = atomic_load(&g->pipes);
    uint64_t   cli = atomic_load(&g->probe_pipes);
    nng_dialer d;
    if (nng_dialer_create(&d, g->probe, g->self) != 0)
        return true;
    nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, 50);
    nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, 200);
    if (nng_dialer_start(d, NNG_FLAG_NONBLOCK) != 0) {
        nng_dialer_close(d); // never connected
        return true;
    }
    // Only a connection set up on this side and not adopted by the
    // listening socket is evidence of the stuck listener (nng's transport
    // still greets every connection then). One that is not set up in time
    // proves nothing: the URL may not be reachable from this host, or the
    // machine is busy; the listener is not replaced for it.
    int64_t end = av_mono_ms() + LISTEN_GUARD_PERIOD_MS;
    bool    up  = wait_change(g, &g->probe_pipes, cli, end);
    bool    ok  = !up || wait_change(g, &g->pipes, srv, end);
    if (up) {
        nng_dialer_close(d);
    } else {
        g->pending     = d;
        g->has_pending = true;
        g->pending_at  = cli;
    }
    return ok;
}

static void *
guard_main(void *arg)
{
    struct listen_guard *g      = arg;
    int                  misses = 0;
    while (!pause_ms(g, LISTEN_GUARD_PERIOD_MS)) {
        if (check(g)) {
            misses = 0;
            continue;
        }
        pthread_mutex_lock(&g->lock);
        bool stop = g->stop;
        pthread_mutex_unlock(&g->lock);
        if (stop || ++misses < GUARD_MISSES)
            continue;
        misses = 0;
        nng_listener_close(g->l);
        int rv = listen_now(g);
        atomic_fetch_add(&g->replaced, 1);
        if (rv == 0)
            AV_WARN("listener.replaced",
                "url=%s msg=\"no new connection became a pipe in %d ms "
                "(nng 1.5.2 stops accepting after a peer that leaves "
                "mid-handshake); listening again\"",
                g->url, GUARD_MISSES * LISTEN_GUARD_PERIOD_MS);
        else
            AV_ERR("listener.replaced",
                "url=%s err=\"%s\" msg=\"could not listen again; the next "
                "check tries again\"",
                g->url, nng_strerror(rv));
    }
    // The probe's close is this thread's, so that a close that never
    // returns (nng 1.5.2, a dialer caught mid-handshake) holds up only it.
    if (g->probe_open)
        nng_close(g->probe);
    g->probe_open = false;
    atomic_store(&g->done, true);
    return NULL;
}

int
listen_guard_start(nng_socket sock, const char *url, struct nng_tls_config *tls,
    size_t recv_max, struct listen_guard **out, struct anvil_error *err)
{
    struct listen_guard *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    if (snprintf(g->url, sizeof(g->url), "%s", url) >= (int) sizeof(g->url)) {
        free(g);
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "cannot listen on %.60s...: the URL is too long", url);
    }
    g->sock     = sock;
    g->tls      = tls;
    g->recv_max = recv_max;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cv, NULL);
    nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST, on_pipe_added, g);
    int rv = listen_now(g);
    if (rv != 0) {
        nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST, NULL, NULL);
        listen_guard_free(g);
        return av_error_set(err, av_code_from_nng(rv),
            "cannot listen on %s: %s", url, nng_strerror(rv));
    }
    if (listen_guard_self_url(url, g->self, sizeof(g->self))) {
        if (pthread_create(&g->thread, NULL, guard_main, g) != 0) {
            nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST, NULL, NULL);
            listen_guard_free(g);
            return av_error_set(
                err, ANVIL_RESOURCE_EXHAUSTED, "cannot start a thread");
        }
        g->running = true;
    }
    *out = g;
    return ANVIL_OK;
}

int
listen_guard_replaced(const struct listen_guard *g)
{
    return g != NULL ? atomic_load(&g->replaced) : 0;
}

void
listen_guard_stop(struct listen_guard *g)
{
    if (g == NULL || !g->running)
        return;
    pthread_mutex_lock(&g->lock);
    g->stop = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->lock);
    // A check ends within a period; nng calls inside one (a dialer's or
    // the listener's close) have been seen to hang in nng 1.5.2. After two
    // seconds the thread is left to itself, with g, and anvild stops
    // without it.
    for (int i = 0; i < 200 && !atomic_load(&g->done); i++) {
        struct timespec ts = { 0, 10000000L };
        nanosleep(&ts, NULL);
    }
    g->running = false;
    if (atomic_load(&g->done)) {
        pthread_join(g->thread, NULL);
        return;
    }
    pthread_detach(g->thread);
    g->orphaned = true;
    AV_WARN("listener.guard_stuck",
        "url=%s msg=\"the listener's guard did not stop within 2 s (inside "
        "nng); stopping without it\"",
        g->url);
}

void
listen_guard_free(struct listen_guard *g)
{
    if (g == NULL)
        return;
    listen_guard_stop(g);
    if (g->orphaned)
        return;        // its thread may still touch it
    if (g->probe_open) // no thread ever ran
        nng_close(g->probe);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cv);
    free(g);
}
