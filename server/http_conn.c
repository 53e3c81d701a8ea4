// http_conn.c - the HTTP endpoint's connections: their list, the read
// deadline of each, and the sweeper thread that cuts a connection whose
// request is late or whose client hung up (see http_impl.h).
#define _GNU_SOURCE // POLLRDHUP
#include "http_impl.h"

#include "engine.h"
#include "util/clock.h"
#include "util/log.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>

void
http_arm(struct http *h, struct hconn *c, int64_t ms)
{
    pthread_mutex_lock(&h->lock);
    c->armed_at = av_mono_ms();
    c->deadline = ms > 0 ? c->armed_at + ms : 0;
    pthread_mutex_unlock(&h->lock);
}

void
http_on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
    struct http *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct hconn *c = calloc(1, sizeof(*c));
        if (c == NULL)
            return;
        const union MHD_ConnectionInfo *ci
            = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = ci != NULL ? ci->connect_fd : -1;
        pthread_mutex_lock(&h->lock);
        c->id       = CONN_ID_BIT | (++h->next_conn & ~CONN_ID_BIT);
        c->armed_at = av_mono_ms();
        c->deadline = c->armed_at + h->cfg.read_timeout_ms;
        c->next     = h->conns;
        if (h->conns != NULL)
            h->conns->prev = c;
        h->conns = c;
        pthread_mutex_unlock(&h->lock);
        *socket_context = c;
        return;
    }
    struct hconn *c = *socket_context;
    if (c == NULL)
        return;
    pthread_mutex_lock(&h->lock);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&h->lock);
    free(c);
    *socket_context = NULL;
}

void
http_conn_stream_end(struct http *h, struct hconn *c)
{
    pthread_mutex_lock(&h->lock);
    c->stream = false;
    c->gone   = false;
    pthread_mutex_unlock(&h->lock);
}

// Cuts c: shutdown() makes libmicrohttpd see the end of the stream and
// close the connection itself.
static void
cut(struct hconn *c)
{
    c->deadline = 0;
    shutdown(c->fd, SHUT_RDWR);
}

// Whether the sweeper may check c for a client gone: armed (reading a
// request, or idle) for a sweep at least, so that a request that came
// whole with the client's FIN is served first; or writing an event
// stream whose client has not been seen to go yet.
static bool
idle_armed(const struct hconn *c, int64_t now)
{
    if (c->fd < 0)
        return false;
    if (c->stream)
        return !c->gone;
    return c->deadline != 0 && now - c->armed_at >= HTTP_SWEEP_MS;
}

// Cuts the armed connections whose client has hung up: libmicrohttpd
// 0.9.75 does not notice a client that closes halfway through a request,
// which would otherwise hold its slot until the read timeout, nor one
// that closes while its connection is suspended (an event stream waiting
// for the engine). Returns how many streams' ids it put in h->gone: their
// parked commands are the engine's to drop.
static size_t
sweep_gone(struct http *h, int64_t now)
{
    size_t n = 0;
    for (struct hconn *c = h->conns; c != NULL; c = c->next)
        n += idle_armed(c, now);
    if (n == 0)
        return 0;
    if (n > h->pfd_cap) {
        struct pollfd *p = realloc(h->pfd, n * 2 * sizeof(*p));
        if (p == NULL)
            return 0;
        h->pfd      = p;
        uint32_t *g = realloc(h->gone, n * 2 * sizeof(*g));
        if (g == NULL)
            return 0;
        h->gone    = g;
        h->pfd_cap = n * 2;
    }
    size_t i = 0;
    for (struct hconn *c = h->conns; c != NULL; c = c->next) {
        if (idle_armed(c, now))
            h->pfd[i++] = (struct pollfd) { .fd = c->fd, .events = POLLRDHUP };
    }
    if (poll(h->pfd, n, 0) <= 0)
        return 0;
    size_t ng = 0;
    i         = 0;
    for (struct hconn *c = h->conns; c != NULL; c = c->next) {
        if (!idle_armed(c, now))
            continue;
        if (h->pfd[i++].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
            AV_DEBUG("http.client_gone", "conn=%u",
                (unsigned) (c->id & ~CONN_ID_BIT));
            if (c->stream) {
                c->gone       = true;
                h->gone[ng++] = c->id;
            }
            cut(c);
        }
    }
    return ng;
}

// Cuts connections whose request did not arrive in time, or whose client
// has gone.
void *
http_sweep(void *arg)
{
    struct http *h = arg;
    pthread_mutex_lock(&h->lock);
    while (!h->stopping) {
        struct timespec ts = av_deadline_in(CLOCK_REALTIME, HTTP_SWEEP_MS);
        pthread_cond_timedwait(&h->cv, &h->lock, &ts);
        if (h->stopping)
            break;
        int64_t now = av_mono_ms();
        for (struct hconn *c = h->conns; c != NULL; c = c->next) {
            if (c->deadline == 0 || now < c->deadline || c->fd < 0)
                continue;
            AV_WARN("http.slow_client",
                "conn=%u timeout_ms=%lld msg=\"request not received in time: "
                "connection closed (anvild --http-read-timeout)\"",
                (unsigned) (c->id & ~CONN_ID_BIT),
                (long long) h->cfg.read_timeout_ms);
            cut(c);
        }
        size_t ng = sweep_gone(h, now);
        // The ids are the sweeper's: no one else writes h->gone.
        uint32_t *gone = h->gone;
        pthread_mutex_unlock(&h->lock);
        for (size_t i = 0; i < ng; i++)
            gate_pipe_closed(&h->gate, h->cfg.engine, gone[i]);
        pthread_mutex_lock(&h->lock);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}
