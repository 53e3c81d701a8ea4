// client_call.c - the one path every rpc of the SDK takes: client_call()
// packs the request envelope (wire.c), sends it on a context of the
// client's socket, waits for the reply and unpacks it, and the argument
// checks every public call makes before it sends anything.
//
// Shutdown. nng 1.5.2 must never see the socket closed while another
// thread is inside an nng call on it (opening or using a context: that race
// was seen to end in "panic: pthread_mutex_lock: Invalid argument"). So the
// socket is closed only once no call is in flight. Every call registers its aio
// in c->inflight and starts each nng operation under c->mu after checking
// c->closing; anvil_client_shutdown() sets c->closing and cancels every
// registered aio under the same lock, so no operation can start after the
// cancel and every parked one (a long-poll) ends at once. Shutdown then
// waits for the calls to leave (they fail with UNAVAILABLE) and closes the
// socket. anvil_client_close() is shutdown plus freeing.
//
// nng 1.5.2 has a second bug here that no ordering avoids: nng_close can
// hang for good when a message arrives on the connection while the socket
// closes (nanomsg/nng#1543 and #1813, fixed in nng 1.8.0 by #1824). A call
// cancelled by shutdown may still get its reply from the server; for the
// long-polls shutdown exists for, the reply comes when the poll's time is
// up, seconds later, so the close does not meet it. Shutting down a client
// while short calls are still being answered can meet it (a stress test
// did, about once in fifty rounds); so can any nng_close under traffic.
//
// Resend timing, and which timeout means UNAVAILABLE and which
// DEADLINE_EXCEEDED, follow from how nng's REQ behaves: see the top of
// wire.c.
#include "anvil/v1/anvil.pb-c.h"
#include "client_impl.h"
#include "client_trace.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "wire.h"

#include <inttypes.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

static nng_duration
clamp_ms(int64_t ms)
{
    if (ms < 0)
        return 0;
    if (ms > INT32_MAX)
        return INT32_MAX;
    return (nng_duration) ms;
}

// Admits a call: starts the dialer on the first one, opens the call's
// context and aio and registers them. UNAVAILABLE once shutdown has begun.
static int
call_enter(anvil_client *c, struct inflight *in, const char *method,
    int64_t budget_ms, struct anvil_error *err)
{
    int rv = 0;
    pthread_mutex_lock(&c->mu);
    if (c->closing)
        rv = NNG_ECLOSED;
    if (rv == 0 && !c->dialing) {
        // Non-blocking: returns at once, connects in the background.
        rv         = nng_dialer_start(c->dialer, NNG_FLAG_NONBLOCK);
        c->dialing = rv == 0;
    }
    if (rv == 0)
        rv = nng_aio_alloc(&in->aio, NULL, NULL);
    if (rv == 0) {
        rv = nng_ctx_open(&in->ctx, c->sock);
        if (rv != 0)
            nng_aio_free(in->aio);
    }
    if (rv == 0) {
        // Keep the resend timer out of the call's time (see wire.c).
        if (budget_ms + 1000 > WIRE_RESEND_MS)
            nng_ctx_set_ms(
                in->ctx, NNG_OPT_REQ_RESENDTIME, clamp_ms(budget_ms + 1000));
        pthread_mutex_lock(&c->pmu); // the pipe callback reads the list
        in->next    = c->inflight;
        c->inflight = in;
        pthread_mutex_unlock(&c->pmu);
        c->calls++;
    }
    pthread_mutex_unlock(&c->mu);
    if (rv != 0)
        return wire_nng_error(rv, method, client_url(c), 0, err);
    return ANVIL_OK;
}

// Unregisters the call, closes its context and aio, and lets a waiting
// shutdown go on once it was the last call.
static void
call_leave(anvil_client *c, struct inflight *in)
{
    pthread_mutex_lock(&c->mu);
    struct inflight **p = &c->inflight;
    while (*p != in)
        p = &(*p)->next;
    pthread_mutex_lock(&c->pmu);
    *p = in->next;
    pthread_mutex_unlock(&c->pmu);
    pthread_mutex_unlock(&c->mu);
    nng_ctx_close(in->ctx);
    nng_aio_free(in->aio);
    pthread_mutex_lock(&c->mu);
    if (--c->calls == 0 && c->closing)
        pthread_cond_broadcast(&c->idle);
    pthread_mutex_unlock(&c->mu);
}

// Starts a send or a receive on the call's aio and waits for it; NNG_ECLOSED
// without starting once shutdown has begun.
static int
run_op(anvil_client *c, struct inflight *in, bool send)
{
    pthread_mutex_lock(&c->mu);
    bool closing = c->closing;
    if (!closing && send)
        nng_ctx_send(in->ctx, in->aio);
    else if (!closing)
        nng_ctx_recv(in->ctx, in->aio);
    pthread_mutex_unlock(&c->mu);
    if (closing)
        return NNG_ECLOSED;
    nng_aio_wait(in->aio);
    int rv = nng_aio_result(in->aio);
    if (rv == NNG_ECANCELED) {
        // Only shutdown cancels our aios.
        rv = NNG_ECLOSED;
    }
    return rv;
}

// A send that found no connection for a whole call timeout: nng 1.5.2's
// dialer can give up for good when the server dies mid-handshake (it takes
// the failure for its own close), so start a fresh dialer, at most once per
// reconnect period, and retire the old one.
static void
redial(anvil_client *c)
{
    pthread_mutex_lock(&c->mu);
    int64_t now = av_mono_ms();
    if (!c->closing && c->dialing
        && now - c->redialed >= CLIENT_RECONNECT_MAX_MS) {
        nng_dialer d;
        c->redialed = now;
        if (nng_dialer_create(&d, c->sock, c->servers.urls[c->cur]) == 0) {
            if (client_dialer_options(c, d, c->cur) == 0
                && nng_dialer_start(d, NNG_FLAG_NONBLOCK) == 0) {
                nng_dialer_close(c->dialer);
                c->dialer = d;
            } else {
                nng_dialer_close(d);
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
}

// Sets err for a send that found no connection for timeout_ms.
static int
send_timed_out(anvil_client *c, const char *method, int timeout_ms,
    bool first_dial, struct anvil_error *err)
{
    const char *url = client_url(c);
    if (first_dial)
        return av_error_set(err, ANVIL_UNAVAILABLE,
            "nothing listens at %s (no connection within %d ms to send %s; "
            "is anvild running?)",
            url, timeout_ms, method);
    if (client_url_is_tls(url))
        return av_error_set(err, ANVIL_UNAVAILABLE,
            "could not reach anvild at %s within %d ms to send %s (is "
            "it running? does the TLS CA%s trust its certificate, and "
            "does it name the host?)",
            url, timeout_ms, method, c->tls ? "" : " (none set)");
    return av_error_set(err, ANVIL_UNAVAILABLE,
        "could not reach anvild at %s within %d ms to send %s (is it "
        "running?)",
        url, timeout_ms, method);
}

// Sends the aio's message within timeout_ms. A client that never had a
// connection and has a connect timeout shorter than that gives up after
// it (*first_dial then says so) unless a connection came meanwhile.
static int
send_msg(anvil_client *c, struct inflight *in, int timeout_ms, bool *first_dial,
    int *waited_ms)
{
    int connect_ms = atomic_load(&c->connect_ms);
    *first_dial    = connect_ms > 0 && connect_ms < timeout_ms
        && !atomic_load(&c->connected);
    *waited_ms = *first_dial ? connect_ms : timeout_ms;
    nng_aio_set_timeout(in->aio, *waited_ms);
    int rv = run_op(c, in, true);
    if (rv == NNG_ETIMEDOUT && *first_dial && atomic_load(&c->connected)) {
        // Connected just in time: the rest of the call's time is its own.
        *first_dial = false;
        *waited_ms  = timeout_ms;
        nng_aio_set_timeout(in->aio, timeout_ms - connect_ms);
        rv = run_op(c, in, true);
    }
    return rv;
}

// Sends *msg and receives the reply into *msg: up to timeout_ms for the
// request to go out (else UNAVAILABLE: it was not delivered) and for the
// reply, plus wait_ms for a long-poll. *msg is NULL on failure.
static int
exchange(anvil_client *c, struct inflight *in, const char *method,
    nng_msg **msg, int timeout_ms, int64_t wait_ms, struct anvil_error *err)
{
    int64_t deadline = av_mono_ms() + timeout_ms;
    bool    first_dial;
    int     waited_ms;
    nng_aio_set_msg(in->aio, *msg);
    *msg   = NULL;
    int rv = send_msg(c, in, timeout_ms, &first_dial, &waited_ms);
    if (rv != 0) {
        nng_msg_free(nng_aio_get_msg(in->aio)); // an unsent message is ours
        nng_aio_set_msg(in->aio, NULL);
        if (rv == NNG_ETIMEDOUT && !first_dial)
            redial(c);
        if (rv == NNG_ETIMEDOUT)
            return send_timed_out(c, method, waited_ms, first_dial, err);
        return wire_nng_error(rv, method, client_url(c), timeout_ms, err);
    }
    int64_t left = deadline - av_mono_ms();
    nng_aio_set_timeout(in->aio, clamp_ms((left > 0 ? left : 0) + wait_ms));
    rv = run_op(c, in, false);
    if (rv != 0)
        return wire_nng_error(
            rv, method, client_url(c), timeout_ms + wait_ms, err);
    *msg = nng_aio_get_msg(in->aio);
    return ANVIL_OK;
}

// The trace hook (client_trace.h): NULL unless anvil-bench set one.
static _Atomic(const struct client_trace_hook *) trace_hook;

void
client_trace_set(const struct client_trace_hook *h)
{
    atomic_store(&trace_hook, h);
}

// Request.trace = true, appended to the packed envelope: field 5, varint 1
// (a field may come anywhere in a protobuf message).
static int
trace_ask(nng_msg *msg)
{
    static const uint8_t field[] = { 5 << 3, 1 };
    return nng_msg_append(msg, field, sizeof(field));
}

// Reads Reply.trace_us again from the envelope and calls the hook.
static void
trace_report(
    const struct client_trace_hook *h, struct client_trace *t, nng_msg *msg)
{
    Anvil__V1__Reply *rep
        = anvil__v1__reply__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
    for (size_t i = 0; rep != NULL && i < rep->n_trace_us; i++)
        if (i < CLIENT_TRACE_HOPS)
            t->server_us[i] = rep->trace_us[i];
    if (rep != NULL)
        anvil__v1__reply__free_unpacked(rep, NULL);
    h->fn(h->arg, t);
}

static int call_with_id(anvil_client *c, const char *method,
    const ProtobufCMessage *req, int64_t wait_ms, uint64_t id,
    ProtobufCMessage **reply, struct anvil_error *err);

int
client_call(anvil_client *c, const char *method, const ProtobufCMessage *req,
    int64_t wait_ms, ProtobufCMessage **reply, struct anvil_error *err)
{
    return call_with_id(c, method, req, wait_ms, wire_request_id(), reply, err);
}

int
client_call_ids(anvil_client *c, const char *method,
    const ProtobufCMessage *req, uint32_t n_ids, ProtobufCMessage **reply,
    struct anvil_error *err)
{
    return call_with_id(c, method, req, 0, wire_request_ids(n_ids), reply, err);
}

static int
call_with_id(anvil_client *c, const char *method, const ProtobufCMessage *req,
    int64_t wait_ms, uint64_t id, ProtobufCMessage **reply,
    struct anvil_error *err)
{
    *reply                             = NULL;
    const ProtobufCMethodDescriptor *m = wire_method(method);
    if (m == NULL)
        return av_error_set(err, ANVIL_UNIMPLEMENTED,
            "anvil.v1.Anvil has no rpc named \"%s\"", method ? method : "");
    if (req == NULL || req->descriptor != m->input)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s takes a %s",
            method, m->input->name);
    int      timeout_ms = atomic_load(&c->timeout_ms);
    int64_t  t0         = av_mono_ms();
    nng_msg *msg;
    if (wait_ms < 0)
        wait_ms = 0;
    int rc = wire_request_encode(method, req, c->token, id, &msg, err);
    if (rc != ANVIL_OK)
        return rc;
    const struct client_trace_hook *tfn = atomic_load(&trace_hook);
    struct client_trace             tr = { .method = method, .request_id = id };
    if (tfn != NULL && trace_ask(msg) != 0)
        tfn = NULL;
    struct inflight in = { .next = NULL };
    rc                 = call_enter(c, &in, method, timeout_ms + wait_ms, err);
    if (rc != ANVIL_OK) {
        nng_msg_free(msg);
        return rc;
    }
    if (tfn != NULL)
        tr.sent_us = av_mono_us();
    bool follow = c->servers.n > 1;
    if (follow)
        rc = client_follow_exchange(c, &in, method, id, m->output, &msg,
            timeout_ms, wait_ms, reply, err);
    else
        rc = exchange(c, &in, method, &msg, timeout_ms, wait_ms, err);
    if (tfn != NULL)
        tr.reply_us = av_mono_us();
    call_leave(c, &in);
    if (!follow && rc == ANVIL_OK)
        rc = wire_reply_decode(nng_msg_body(msg), nng_msg_len(msg), method, id,
            m->output, reply, NULL, err);
    if (msg != NULL) { // a reply (decoded above or by the follower)
        tr.code = rc;
        if (tfn != NULL)
            trace_report(tfn, &tr, msg);
        nng_msg_free(msg);
    }
    AV_DEBUG("rpc_call", "method=%s request_id=%" PRIu64 " code=%s ms=%" PRId64,
        method, id, anvil_code_name(rc), av_mono_ms() - t0);
    return rc;
}

void
client_free_reply(ProtobufCMessage *m)
{
    if (m != NULL)
        protobuf_c_message_free_unpacked(m, NULL);
}

int
client_check(anvil_client *c, const char *fn, struct anvil_error *err)
{
    if (c == NULL)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "%s: client is NULL", fn);
    return ANVIL_OK;
}

int
client_check_out(
    anvil_client *c, void *out, const char *fn, struct anvil_error *err)
{
    if (out == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: out is NULL", fn);
    *(void **) out = NULL;
    return client_check(c, fn, err);
}

int
client_check_id(
    const char *id, const char *what, const char *fn, struct anvil_error *err)
{
    if (id == NULL || id[0] == '\0')
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: %s is %s", fn,
            what, id == NULL ? "NULL" : "empty");
    return ANVIL_OK;
}

int
client_check_bytes(const void *p, size_t len, const char *what, const char *fn,
    struct anvil_error *err)
{
    if (p == NULL && len > 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: %s is NULL but its length is %zu", fn, what, len);
    return ANVIL_OK;
}

void *
client_field(const ProtobufCMessage *m, const char *name)
{
    const ProtobufCFieldDescriptor *f
        = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    return f != NULL ? (char *) m + f->offset : NULL;
}

void *
client_repeated(const ProtobufCMessage *m, const char *name, size_t *n)
{
    const ProtobufCFieldDescriptor *f
        = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    *n = 0;
    if (f == NULL || f->label != PROTOBUF_C_LABEL_REPEATED)
        return NULL;
    *n = *(const size_t *) ((const char *) m + f->quantifier_offset);
    return *(void **) ((char *) m + f->offset);
}

int
client_call_take(anvil_client *c, const char *method,
    const ProtobufCMessage *req, int64_t wait_ms, client_take_fn take,
    void *out, struct anvil_error *err)
{
    ProtobufCMessage *rep;
    int               rc = client_call(c, method, req, wait_ms, &rep, err);
    if (rc == ANVIL_OK && out != NULL)
        rc = take(rep, method, out, err);
    client_free_reply(rep);
    return rc;
}

// One long-poll of a wait, of at most chunk_ms: *out becomes what it
// returned, *done says whether that has ended.
static int
wait_once(anvil_client *c, const struct client_waiter *w, ProtobufCMessage *req,
    uint32_t chunk_ms, void *out, bool *done, struct anvil_error *err)
{
    *(uint32_t *) client_field(req, "timeout_ms") = chunk_ms;
    ProtobufCMessage *rep;
    int               rc = client_call(c, w->method, req, chunk_ms, &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    rc    = w->take(rep, w->method, out, err);
    *done = *(protobuf_c_boolean *) client_field(rep, "done");
    client_free_reply(rep);
    return rc;
}

int
client_wait(anvil_client *c, const struct client_waiter *w, const char *id,
    ProtobufCMessage *req, int timeout_ms, void *out, struct anvil_error *err)
{
    int rc = client_check(c, w->fn, err);
    if (rc == ANVIL_OK)
        rc = client_check_id(id, w->id_name, w->fn, err);
    if (rc == ANVIL_OK && timeout_ms < 0)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: timeout_ms is negative (%d)", w->fn, timeout_ms);
    if (rc != ANVIL_OK)
        return rc;
    *(char **) client_field(req, "id") = (char *) id;
    int64_t deadline = timeout_ms > 0 ? av_mono_ms() + timeout_ms : -1;
    for (;;) {
        int64_t chunk = CLIENT_WAIT_CHUNK_MS;
        if (deadline >= 0) {
            int64_t left = deadline - av_mono_ms();
            chunk        = left < 0 ? 0 : left < chunk ? left : chunk;
        }
        bool done = false;
        rc        = wait_once(c, w, req, (uint32_t) chunk, out, &done, err);
        if (rc != ANVIL_OK || done)
            return rc;
        if (deadline >= 0 && av_mono_ms() >= deadline)
            return av_error_set(err, ANVIL_DEADLINE_EXCEEDED,
                "%s %s is still %s after %d ms", w->what, id, w->state(out),
                timeout_ms);
    }
}
