// standby.c - a standby's answers (standby.h): nng REP contexts that reply
// to anything, and a libmicrohttpd daemon that answers 503.
#include "standby.h"

#include "anvil/v1/anvil.pb-c.h"
#include "http_impl.h"
#include "listen_guard.h"
#include "metrics.h"
#include "util/error.h"
#include "util/log.h"

#include <jansson.h>
#include <microhttpd.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STANDBY_CONTEXTS 8
#define STANDBY_URL_MAX 512

// What a context's aio is doing. A context that received a request always
// answers it, even while the node hands its socket over: a request taken
// off the connection and never answered would leave its client waiting
// for its whole timeout.
enum sb_state { SB_RECV, SB_SEND, SB_IDLE };

struct sb_ctx {
    struct standby *sb;
    nng_aio        *aio;
    nng_ctx         ctx;
    enum sb_state   state; // under sb->lock
};

struct standby {
    pthread_mutex_t      lock; // guards leader, closing and each ctx's state
    char                 leader[STANDBY_URL_MAX];
    bool                 closing; // handing over: answer, receive no more
    nng_socket           sock;
    bool                 sock_open;
    struct sb_ctx        ctx[STANDBY_CONTEXTS];
    int                  n_ctx;
    struct MHD_Daemon   *http[8];
    int                  n_http;
    struct listen_guard *guard; // the listener
};

void
standby_set_leader(struct standby *s, const char *url)
{
    pthread_mutex_lock(&s->lock);
    snprintf(s->leader, sizeof(s->leader), "%s", url != NULL ? url : "");
    pthread_mutex_unlock(&s->lock);
}

// The message and the leader's URL as they stand now.
static void
answer_text(struct standby *s, char *msg, size_t len, char *url, size_t ulen)
{
    pthread_mutex_lock(&s->lock);
    snprintf(url, ulen, "%s", s->leader);
    bool closing = s->closing;
    pthread_mutex_unlock(&s->lock);
    if (closing)
        snprintf(msg, len,
            "this anvild is taking over as the leader at %s; send the "
            "request again",
            url);
    else if (url[0] != '\0')
        snprintf(msg, len,
            "this anvild is a standby; the leader is at %s (send requests "
            "there, or give the client every server's URL)",
            url);
    else
        snprintf(msg, len,
            "this anvild is a standby and no leader holds the lease yet; "
            "retry shortly");
}

// ---- nng ----

static void next(struct sb_ctx *x, int rv);

static void
reply(struct sb_ctx *x, nng_msg *in)
{
    Anvil__V1__Request *req
        = anvil__v1__request__unpack(NULL, nng_msg_len(in), nng_msg_body(in));
    nng_msg_free(in);
    char msg[STANDBY_URL_MAX + 128], url[STANDBY_URL_MAX];
    answer_text(x->sb, msg, sizeof(msg), url, sizeof(url));
    Anvil__V1__Reply rep = ANVIL__V1__REPLY__INIT;
    rep.code             = ANVIL__V1__CODE__UNAVAILABLE;
    rep.message          = msg;
    rep.leader           = url;
    rep.request_id       = req != NULL ? req->request_id : 0;
    anvil__v1__request__free_unpacked(req, NULL);
    nng_msg *out;
    if (nng_msg_alloc(&out, anvil__v1__reply__get_packed_size(&rep)) != 0) {
        next(x, 0);
        return;
    }
    anvil__v1__reply__pack(&rep, nng_msg_body(out));
    nng_aio_set_msg(x->aio, out);
    pthread_mutex_lock(&x->sb->lock);
    x->state = SB_SEND;
    pthread_mutex_unlock(&x->sb->lock);
    nng_ctx_send(x->ctx, x->aio);
}

// After an answer (or a failed receive): receive again, unless the socket
// is closing or being handed over.
static void
next(struct sb_ctx *x, int rv)
{
    struct standby *s = x->sb;
    pthread_mutex_lock(&s->lock);
    bool again = !s->closing && rv != NNG_ECLOSED && rv != NNG_ECANCELED;
    x->state   = again ? SB_RECV : SB_IDLE;
    pthread_mutex_unlock(&s->lock);
    if (again)
        nng_ctx_recv(x->ctx, x->aio);
}

static void
ctx_cb(void *arg)
{
    struct sb_ctx *x  = arg;
    int            rv = nng_aio_result(x->aio);
    pthread_mutex_lock(&x->sb->lock);
    bool sent = x->state == SB_SEND;
    pthread_mutex_unlock(&x->sb->lock);
    if (sent) {
        if (rv != 0)
            nng_msg_free(nng_aio_get_msg(x->aio));
    } else if (rv == 0) {
        reply(x, nng_aio_get_msg(x->aio));
        return;
    }
    next(x, rv);
}

// The contexts receive before the listener starts: clients reconnect the
// moment the URL is back (a node restarted after a crash), and their
// requests must find a context waiting.
static int
start_nng(struct standby *s, const struct standby_config *cfg,
    struct anvil_error *err)
{
    int rv = nng_rep0_open(&s->sock);
    if (rv != 0)
        return av_error_set(
            err, ANVIL_INTERNAL, "cannot open socket: %s", nng_strerror(rv));
    s->sock_open = true;
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, cfg->recv_max);
    for (; s->n_ctx < STANDBY_CONTEXTS; s->n_ctx++) {
        struct sb_ctx *x = &s->ctx[s->n_ctx];
        x->sb            = s;
        if ((rv = nng_aio_alloc(&x->aio, ctx_cb, x)) != 0)
            break;
        if ((rv = nng_ctx_open(&x->ctx, s->sock)) != 0) {
            nng_aio_free(x->aio);
            break;
        }
        nng_ctx_recv(x->ctx, x->aio);
    }
    if (rv != 0)
        return av_error_set(
            err, ANVIL_INTERNAL, "cannot open contexts: %s", nng_strerror(rv));
    return listen_guard_start(
        s->sock, cfg->url, cfg->tls, cfg->recv_max, &s->guard, err);
}

// ---- HTTP ----

// A body of ours (malloc'd, freed by libmicrohttpd) with its type.
static enum MHD_Result
send_text(struct MHD_Connection *mc, unsigned status, char *body, size_t len,
    const char *type)
{
    struct MHD_Response *r
        = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ok = MHD_queue_response(mc, status, r);
    MHD_destroy_response(r);
    return ok;
}

// GET /healthz (the process is up: an orchestrator's liveness probe must
// not restart a standby) and GET /metrics (anvil_leader 0, so a scrape of
// every node shows which one serves). Anything else, /readyz included,
// is 503: a standby takes no traffic.
static enum MHD_Result
answer_own(
    struct MHD_Connection *mc, const char *url, const char *verb, bool *done)
{
    bool get    = strcmp(verb, "GET") == 0;
    bool health = get && strcmp(url, "/healthz") == 0;
    bool scrape = get && strcmp(url, "/metrics") == 0;
    *done       = health || scrape;
    if (!*done)
        return MHD_YES;
    char  *text = NULL;
    size_t len  = 0;
    if (health) {
        text = strdup("ok\n");
        len  = 3;
    } else if (metrics_render_standby(&text, &len) != ANVIL_OK) {
        text = NULL;
    }
    if (text == NULL)
        return MHD_NO;
    return send_text(
        mc, 200, text, len, health ? "text/plain" : METRICS_CONTENT_TYPE);
}

static enum MHD_Result
on_http(void *cls, struct MHD_Connection *mc, const char *url, const char *verb,
    const char *version, const char *upload, size_t *upload_size,
    void **con_cls)
{
    (void) version;
    (void) upload;
    if (*con_cls == NULL) { // headers only: wait for the body
        *con_cls = cls;
        return MHD_YES;
    }
    if (*upload_size > 0) { // a body is read and dropped
        *upload_size = 0;
        return MHD_YES;
    }
    bool            done = false;
    enum MHD_Result own  = answer_own(mc, url, verb, &done);
    if (done)
        return own;
    char msg[STANDBY_URL_MAX + 128], lurl[STANDBY_URL_MAX];
    answer_text(cls, msg, sizeof(msg), lurl, sizeof(lurl));
    json_t *j = json_pack(
        "{s:s,s:s,s:s}", "code", "UNAVAILABLE", "message", msg, "leader", lurl);
    char *body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (body == NULL)
        return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Retry-After", "1");
    if (lurl[0] != '\0')
        MHD_add_response_header(r, "Anvil-Leader", lurl);
    enum MHD_Result ok = MHD_queue_response(mc, 503, r);
    MHD_destroy_response(r);
    return ok;
}

static int
start_http(struct standby *s, const char *url, struct anvil_error *err)
{
    bool                    tls = false;
    struct sockaddr_storage sa;
    socklen_t               salen;
    int                     rc = http_parse_url(url, &tls, &sa, &salen, err);
    if (rc != ANVIL_OK)
        return rc;
    if (tls) {
        AV_WARN("standby.https",
            "url=%s msg=\"not served while this anvild stands by\"", url);
        return ANVIL_OK;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL
        | (sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    struct MHD_Daemon *d = MHD_start_daemon(flags, 0, NULL, NULL, on_http, s,
        MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 10,
        MHD_OPTION_END);
    if (d == NULL)
        return av_error_set(err, ANVIL_UNAVAILABLE, "cannot listen on %s", url);
    s->http[s->n_http++] = d;
    return ANVIL_OK;
}

int
standby_start(const struct standby_config *cfg, struct standby **out,
    struct anvil_error *err)
{
    struct standby *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    pthread_mutex_init(&s->lock, NULL);
    int rc = start_nng(s, cfg, err);
    for (int i = 0; rc == ANVIL_OK && i < cfg->n_http && i < 8; i++)
        rc = start_http(s, cfg->http_urls[i], err);
    if (rc != ANVIL_OK) {
        standby_stop(s);
        return rc;
    }
    AV_INFO("standby.listening", "url=%s", cfg->url);
    *out = s;
    return ANVIL_OK;
}

// The nng side's teardown, on a thread of its own: nng 1.5.2's nng_close
// can wait forever for a connection that was mid-handshake when the
// socket closed. Its listener is closed first, so the URL is free again
// even then; the rest (this socket and s) is then left to the thread.
struct closer {
    struct standby *s;
    atomic_bool     done;
};

static void *
close_nng(void *arg)
{
    struct closer  *c = arg;
    struct standby *s = c->s;
    for (int i = 0; i < s->n_ctx; i++)
        nng_aio_stop(s->ctx[i].aio);
    if (s->sock_open)
        nng_close(s->sock);
    listen_guard_free(s->guard); // after its socket closed
    for (int i = 0; i < s->n_ctx; i++) {
        nng_ctx_close(s->ctx[i].ctx);
        nng_aio_free(s->ctx[i].aio);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
    atomic_store(&c->done, true); // c's last use here
    return NULL;
}

void
standby_stop(struct standby *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < s->n_http; i++)
        MHD_stop_daemon(s->http[i]);
    listen_guard_stop(s->guard); // its listener is not opened again
    struct closer *c = malloc(sizeof(*c));
    pthread_t      t;
    if (c == NULL)
        return; // out of memory: s is leaked, open
    c->s = s;
    atomic_init(&c->done, false);
    if (pthread_create(&t, NULL, close_nng, c) != 0) {
        close_nng(c);
        free(c);
        return;
    }
    pthread_detach(t);
    for (int i = 0; i < 100 && !atomic_load(&c->done); i++) {
        struct timespec ts = { 0, 5000000L };
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&c->done))
        free(c);
    else
        AV_WARN("standby.close_slow",
            "msg=\"the standby socket is still closing; serving anyway\"");
}

// True when no context is receiving or answering.
static bool
all_idle(struct standby *s)
{
    bool idle = true;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n_ctx; i++)
        idle = idle && s->ctx[i].state == SB_IDLE;
    pthread_mutex_unlock(&s->lock);
    return idle;
}

void
standby_hand_over(struct standby *s, nng_socket *sock,
    struct listen_guard **guard, const char *self)
{
    for (int i = 0; i < s->n_http; i++)
        MHD_stop_daemon(s->http[i]);
    // Receives still waiting are cancelled (their requests stay queued on
    // the connections for the rpc endpoint's contexts); a request already
    // received is answered, naming this node, before its context closes.
    // The cancel only queues the callback (nng's task queue), so it may be
    // made under the lock that makes "still waiting" true.
    pthread_mutex_lock(&s->lock);
    s->closing = true;
    snprintf(s->leader, sizeof(s->leader), "%s", self);
    for (int i = 0; i < s->n_ctx; i++)
        if (s->ctx[i].state == SB_RECV)
            nng_aio_cancel(s->ctx[i].aio);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < 200 && !all_idle(s); i++) {
        struct timespec ts = { 0, 1000000L };
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < s->n_ctx; i++)
        nng_aio_stop(s->ctx[i].aio);
    for (int i = 0; i < s->n_ctx; i++) {
        nng_ctx_close(s->ctx[i].ctx);
        nng_aio_free(s->ctx[i].aio);
    }
    *sock  = s->sock;
    *guard = s->guard;
    pthread_mutex_destroy(&s->lock);
    free(s);
}
