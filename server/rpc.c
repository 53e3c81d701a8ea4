// rpc.c - nng REP with contexts (the shape of nng's demo/async server).
//
// Each context loops RECV -> (engine) -> SEND -> RECV. A long-poll keeps
// its context parked in the engine, so whenever a request arrives and fewer
// than `contexts` remain receiving, another context is opened: parked
// long-polls never starve new requests.
#include "rpc.h"

#include "anvil/v1/anvil.pb-c.h"
#include "auth.h"
#include "gate.h"
#include "listen_guard.h"
#include "metrics.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/nng_code.h"
#include "waits.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum ctx_state { CTX_RECV, CTX_SEND };

struct rpc_ctx {
    struct rpc     *rpc;
    nng_aio        *aio;
    nng_ctx         ctx;
    enum ctx_state  state;
    uint64_t        request_id;
    uint32_t        pipe;    // the connection the request came on
    int             method;  // descriptor index; -1 = unknown (metrics)
    int64_t         t0;      // av_mono_us() when the request arrived
    bool            waiting; // counted as a long-poll in flight
    bool            trace;   // Request.trace: reply with hops[]
    int64_t         hops[CMD_TRACE_HOPS];
    struct call     call;
    struct rpc_ctx *next; // all contexts, under rpc.lock
};

struct rpc {
    struct rpc_config    cfg;
    nng_socket           sock;
    pthread_mutex_t      lock; // guards all, receiving, gate, waits
    struct gate          gate; // callbacks inside engine_submit()
    struct rpc_ctx      *all;
    int                  receiving;
    struct waits         waits; // long-polls in flight
    int                  conns; // connections open (pipe callbacks)
    struct listen_guard *guard; // the listener, when rpc_start made it
};

static void ctx_cb(void *arg);

// Opens one more context and starts it receiving.
static int
ctx_add(struct rpc *r)
{
    struct rpc_ctx *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return NNG_ENOMEM;
    x->rpc = r;
    int rv = nng_aio_alloc(&x->aio, ctx_cb, x);
    if (rv == 0 && (rv = nng_ctx_open(&x->ctx, r->sock)) != 0)
        nng_aio_free(x->aio);
    if (rv != 0) {
        free(x);
        return rv;
    }
    pthread_mutex_lock(&r->lock);
    x->next = r->all;
    r->all  = x;
    r->receiving++;
    pthread_mutex_unlock(&r->lock);
    x->state = CTX_RECV;
    nng_ctx_recv(x->ctx, x->aio);
    return 0;
}

// Packs and sends a Reply envelope. On failure the context goes back to
// receiving and the client's REQ will resend.
static void
send_reply(struct rpc_ctx *x, int code, const char *message,
    const uint8_t *body, size_t len)
{
    Anvil__V1__Reply rep = ANVIL__V1__REPLY__INIT;
    rep.code             = (Anvil__V1__Code) code;
    rep.message          = (char *) (message ? message : "");
    rep.body             = (ProtobufCBinaryData) { len, (uint8_t *) body };
    rep.request_id       = x->request_id;
    if (x->trace) {
        x->hops[CMD_TRACE_REPLIED] = av_mono_us();
        rep.n_trace_us             = CMD_TRACE_HOPS;
        rep.trace_us               = x->hops;
    }
    size_t   n = anvil__v1__reply__get_packed_size(&rep);
    nng_msg *msg;
    metrics_rpc(x->rpc->cfg.metrics, METRICS_NNG, x->method, code,
        av_mono_us() - x->t0);
    x->state = CTX_SEND;
    if (nng_msg_alloc(&msg, n) != 0) {
        AV_ERR("rpc.oom", "bytes=%zu", n);
        x->state = CTX_RECV;
        nng_ctx_recv(x->ctx, x->aio);
        return;
    }
    anvil__v1__reply__pack(&rep, nng_msg_body(msg));
    nng_aio_set_msg(x->aio, msg);
    nng_ctx_send(x->ctx, x->aio);
}

static void
log_error(struct rpc_ctx *x, const char *method, const struct anvil_error *e)
{
    int level = e->code == ANVIL_INTERNAL ? AV_LOG_ERROR
        : e->code == ANVIL_UNAUTHENTICATED || e->code == ANVIL_PERMISSION_DENIED
        ? AV_LOG_WARN
        : AV_LOG_DEBUG;
    AV_LOG(level, "rpc.error",
        "method=%.64s request_id=%llu code=%s "
        "msg=\"%s\"",
        method, (unsigned long long) x->request_id, anvil_code_name(e->code),
        e->msg);
}

// Counts a long-poll in, unless that passes a limit.
static int
wait_enter(struct rpc_ctx *x, struct anvil_error *err)
{
    struct rpc *r = x->rpc;
    pthread_mutex_lock(&r->lock);
    int rc = waits_enter(&r->waits, x->pipe, err);
    pthread_mutex_unlock(&r->lock);
    x->waiting = rc == ANVIL_OK;
    return rc;
}

static void
wait_leave(struct rpc_ctx *x)
{
    if (!x->waiting)
        return;
    struct rpc *r = x->rpc;
    pthread_mutex_lock(&r->lock);
    waits_leave(&r->waits, x->pipe);
    pthread_mutex_unlock(&r->lock);
    x->waiting = false;
}

// Engine thread: the command finished; encode and send its reply.
static void
call_done(struct cmd *c, void *arg)
{
    struct rpc_ctx *x = arg;
    (void) c;
    wait_leave(x);
    uint8_t           *body = NULL;
    size_t             len  = 0;
    struct anvil_error err  = x->call.cmd.err;
    if (err.code == ANVIL_OK)
        handlers_encode(&x->call, &body, &len, &err);
    if (err.code != ANVIL_OK)
        log_error(x, "-", &err);
    handlers_call_fini(&x->call);
    send_reply(x, err.code, err.code ? err.msg : NULL, body, len);
    free(body);
}

// Hands the command to the engine unless the server is stopping; counted,
// so that rpc_quiesce() knows when no callback can reach the engine.
static bool
submit_cmd(struct rpc *r, struct cmd *c)
{
    if (!gate_enter(&r->gate))
        return false;
    engine_call(r->cfg.engine, c);
    gate_leave(&r->gate);
    return true;
}

static void
submit(struct rpc_ctx *x)
{
    if (submit_cmd(x->rpc, &x->call.cmd))
        return;
    av_error_set(&x->call.cmd.err, ANVIL_UNAVAILABLE, "the server is stopping");
    call_done(&x->call.cmd, x);
}

static void
handle_request(struct rpc_ctx *x, nng_msg *msg)
{
    struct anvil_error err = { 0 };
    x->t0                  = av_mono_us();
    x->method              = -1;
    Anvil__V1__Request *req
        = anvil__v1__request__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
    x->pipe = nng_msg_get_pipe(msg).id;
    nng_msg_free(msg);
    memset(&x->call, 0, sizeof(x->call));
    x->request_id = 0;
    x->trace      = false;
    if (req == NULL) {
        av_error_set(&err, ANVIL_INVALID_ARGUMENT,
            "request is not an anvil.v1.Request envelope");
        log_error(x, "-", &err);
        send_reply(x, err.code, err.msg, NULL, 0);
        return;
    }
    x->request_id = req->request_id;
    x->method     = handlers_method_index(req->method);
    if (req->trace) {
        x->trace = true;
        memset(x->hops, 0, sizeof(x->hops));
        x->hops[CMD_TRACE_RECEIVED] = x->t0;
    }
    int64_t token_id;
    int     role;
    int rc = auth_check(x->rpc->cfg.auth, req->token, req->method, av_now_ms(),
        &token_id, &role, &err);
    if (rc == ANVIL_OK)
        rc = handlers_decode(&x->rpc->cfg.limits, req->method, req->body.data,
            req->body.len, &x->call, &err);
    if (rc == ANVIL_OK && x->call.long_poll)
        rc = wait_enter(x, &err);
    if (rc != ANVIL_OK) {
        log_error(x, req->method, &err);
        anvil__v1__request__free_unpacked(req, NULL);
        handlers_call_fini(&x->call);
        send_reply(x, err.code, err.msg, NULL, 0);
        return;
    }
    anvil__v1__request__free_unpacked(req, NULL);
    x->call.cmd.request_id = x->request_id;
    x->call.cmd.token_id   = token_id;
    x->call.cmd.role       = role;
    x->call.cmd.pipe       = x->pipe;
    x->call.cmd.done       = call_done;
    x->call.cmd.done_arg   = x;
    x->call.cmd.trace      = x->trace ? x->hops : NULL;
    submit(x);
}

// Keeps at least cfg.contexts contexts receiving.
static void
top_up(struct rpc *r)
{
    pthread_mutex_lock(&r->lock);
    r->receiving--;
    bool more = !r->gate.closing && r->receiving < r->cfg.contexts;
    pthread_mutex_unlock(&r->lock);
    if (more && ctx_add(r) != 0)
        AV_WARN("rpc.context", "msg=\"cannot open another context\"");
}

static void
back_to_recv(struct rpc_ctx *x)
{
    pthread_mutex_lock(&x->rpc->lock);
    x->rpc->receiving++;
    pthread_mutex_unlock(&x->rpc->lock);
    x->state = CTX_RECV;
    nng_ctx_recv(x->ctx, x->aio);
}

static void
ctx_cb(void *arg)
{
    struct rpc_ctx *x  = arg;
    int             rv = nng_aio_result(x->aio);
    if (x->state == CTX_SEND) {
        if (rv != 0)
            nng_msg_free(nng_aio_get_msg(x->aio));
        if (rv != NNG_ECLOSED)
            back_to_recv(x);
        return;
    }
    if (rv != 0) {
        if (rv != NNG_ECLOSED) {
            AV_WARN("rpc.recv", "err=\"%s\"", nng_strerror(rv));
            nng_ctx_recv(x->ctx, x->aio);
        }
        return;
    }
    top_up(x->rpc);
    handle_request(x, nng_aio_get_msg(x->aio));
}

// Connections past max_conns are closed as they arrive: each may hold a
// partly received message of up to recv_max bytes.
static void
on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct rpc *r    = arg;
    bool        over = false;
    pthread_mutex_lock(&r->lock);
    if (ev == NNG_PIPE_EV_ADD_PRE)
        over = ++r->conns > r->cfg.max_conns;
    else if (ev == NNG_PIPE_EV_REM_POST && r->conns > 0)
        r->conns--; // (pipes a standby's socket had are not counted)
    pthread_mutex_unlock(&r->lock);
    if (over) {
        AV_WARN("rpc.conns",
            "limit=%d msg=\"connection refused: too many "
            "connections (anvild --max-conns)\"",
            r->cfg.max_conns);
        nng_pipe_close(p);
    }
    if (ev == NNG_PIPE_EV_REM_POST)
        gate_pipe_closed(&r->gate, r->cfg.engine, (uint32_t) nng_pipe_id(p));
}

int
rpc_start(
    const struct rpc_config *cfg, struct rpc **out, struct anvil_error *err)
{
    struct rpc *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        listen_guard_free(cfg->guard);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    r->cfg                = *cfg;
    r->guard              = cfg->guard; // NULL unless has_sock
    r->waits.max          = cfg->max_waits;
    r->waits.max_per_conn = cfg->max_waits_per_conn;
    pthread_mutex_init(&r->lock, NULL);
    gate_init(&r->gate, &r->lock);
    int rv = 0;
    if (cfg->has_sock)
        r->sock = cfg->sock;
    else
        rv = nng_rep0_open(&r->sock);
    if (rv != 0) {
        gate_fini(&r->gate);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return av_error_set(
            err, ANVIL_INTERNAL, "cannot open socket: %s", nng_strerror(rv));
    }
    nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, cfg->recv_max);
    nng_pipe_notify(r->sock, NNG_PIPE_EV_ADD_PRE, on_pipe, r);
    nng_pipe_notify(r->sock, NNG_PIPE_EV_REM_POST, on_pipe, r);
    if (!cfg->has_sock) {
        int rc = listen_guard_start(
            r->sock, cfg->url, cfg->tls, cfg->recv_max, &r->guard, err);
        if (rc != ANVIL_OK) {
            rpc_close(r);
            rpc_free(r);
            return rc;
        }
    }
    for (int i = 0; i < cfg->contexts && rv == 0; i++)
        rv = ctx_add(r);
    if (rv != 0) {
        av_error_set(err, av_code_from_nng(rv), "cannot open contexts: %s",
            nng_strerror(rv));
        rpc_close(r);
        rpc_free(r);
        return err ? err->code : ANVIL_INTERNAL;
    }
    *out = r;
    return ANVIL_OK;
}

void
rpc_quiesce(struct rpc *r)
{
    if (r == NULL)
        return;
    gate_close(&r->gate);
}

void
rpc_close(struct rpc *r)
{
    if (r == NULL)
        return;
    rpc_quiesce(r);
    listen_guard_stop(r->guard); // no listener is opened again
    nng_close(r->sock);
}

void
rpc_free(struct rpc *r)
{
    if (r == NULL)
        return;
    // No callback adds contexts once closing is set, so the list is final.
    for (struct rpc_ctx *x = r->all; x != NULL; x = x->next)
        nng_aio_stop(x->aio);
    while (r->all != NULL) {
        struct rpc_ctx *x = r->all;
        r->all            = x->next;
        nng_ctx_close(x->ctx);
        nng_aio_free(x->aio);
        free(x);
    }
    listen_guard_free(r->guard);
    gate_fini(&r->gate);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
