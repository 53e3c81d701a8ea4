// wire.c - the anvil.v1 envelope on the client side.
//
// A call (client_call() in client_call.c) is: look the rpc up in the
// generated service descriptor, pack the request into a Request envelope
// with a fresh request id, send it on a new nng REQ context, wait for the
// reply, unpack the Reply envelope and then its body with the rpc's output
// descriptor. No per-method code.
//
// What nng's REQ does for us, checked against nng 1.5.2's req0 protocol
// (src/protocol/reqrep0/req.c) and by a probe against Debian's libnng1:
//  - A send waits in the socket's send queue until some pipe (connection)
//    is ready; with nothing connected it fails only at its aio timeout, so
//    a send that times out was never delivered (we say UNAVAILABLE).
//  - After a send, the context arms a resend timer of
//    NNG_OPT_REQ_RESENDTIME (default 60 s, copied from the socket when the
//    context opens) and sends the same bytes again when it fires.
//  - When the pipe that carried the request closes (server crash, restart,
//    network loss) and the resend time is > 0, req0_pipe_close puts the
//    context straight back on the send queue: the request goes out at once
//    on the next pipe, i.e. to the new server process as soon as the dialer
//    reconnects (13 ms after a restart in the probe). With the resend time
//    disabled (NNG_DURATION_INFINITE) the receive fails with
//    NNG_ECONNRESET instead.
//  - A resend is byte-identical, so it carries the same envelope
//    request_id: the server applies it once (DESIGN.md).
//  - A receive that times out cancels the context's state machine, so a
//    call that gave up is never resent afterwards.
// So we keep resends on (a restarted anvild still gets our request), and
// set the resend time above the call's whole budget, so the timer never
// fires within a call: a parked long-poll is not sent twice.
#include "wire.h"

#include "anvil/v1/anvil.pb-c.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/nng_code.h"

#include <fcntl.h>
#include <inttypes.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

// ---- request ids ----

static _Atomic uint64_t next_request_id;
static pthread_once_t   request_id_once = PTHREAD_ONCE_INIT;

static uint64_t
random_u64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), 0) == (ssize_t) sizeof(v))
        return v;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, &v, sizeof(v));
        close(fd);
        if (n == (ssize_t) sizeof(v))
            return v;
    }
    // No entropy source: mix what differs between processes.
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    v = (uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 30)
        ^ ((uint64_t) getpid() << 42) ^ (uint64_t) (uintptr_t) &v;
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdULL;
    v ^= v >> 33;
    return v;
}

// Runs once, and again in every forked child: a child must not repeat the
// ids its parent hands out.
static void
request_id_reseed(void)
{
    atomic_store(&next_request_id, random_u64());
}

static void
request_id_init(void)
{
    request_id_reseed();
    pthread_atfork(NULL, NULL, request_id_reseed);
}

uint64_t
wire_request_ids(uint32_t n)
{
    pthread_once(&request_id_once, request_id_init);
    if (n == 0)
        n = 1;
    uint64_t id;
    do {
        id = atomic_fetch_add(&next_request_id, n);
    } while (id == 0 || id + (n - 1) < id); // 0 means "no id" on the wire
    return id;
}

uint64_t
wire_request_id(void)
{
    return wire_request_ids(1);
}

// ---- methods and errors ----

const ProtobufCMethodDescriptor *
wire_method(const char *name)
{
    if (name == NULL)
        return NULL;
    return protobuf_c_service_descriptor_get_method_by_name(
        &anvil__v1__anvil__descriptor, name);
}

int
wire_nng_error(int rv, const char *what, const char *url, int64_t timeout_ms,
    struct anvil_error *err)
{
    int code = av_code_from_nng(rv);
    if (url == NULL)
        url = "(no url)";
    switch (rv) {
    case NNG_ETIMEDOUT:
        return av_error_set(err, code,
            "no reply to %s from %s within %" PRId64 " ms (is anvild running?)",
            what, url, timeout_ms);
    case NNG_ECONNREFUSED:
        return av_error_set(err, code,
            "%s: connection to %s refused (is anvild running?)", what, url);
    case NNG_ECLOSED:
        return av_error_set(
            err, code, "%s: the client for %s is closed", what, url);
    default:
        return av_error_set(
            err, code, "%s to %s failed: %s", what, url, nng_strerror(rv));
    }
}

// ---- envelopes ----

static int
out_of_memory(struct anvil_error *err, const char *what)
{
    return av_error_set(
        err, ANVIL_RESOURCE_EXHAUSTED, "out of memory packing %s", what);
}

// Packs body into a malloc'd buffer: *data (the caller's) and *len.
static int
pack_body(const ProtobufCMessage *body, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len  = 0;
    if (body == NULL)
        return 0;
    size_t n = protobuf_c_message_get_packed_size(body);
    *data    = malloc(n > 0 ? n : 1);
    if (*data == NULL)
        return -1;
    *len = protobuf_c_message_pack(body, *data);
    return 0;
}

// Packs an envelope straight into a new nng message.
static int
pack_msg(const ProtobufCMessage *env, nng_msg **out)
{
    size_t n = protobuf_c_message_get_packed_size(env);
    if (nng_msg_alloc(out, n) != 0)
        return -1;
    protobuf_c_message_pack(env, nng_msg_body(*out));
    return 0;
}

int
wire_request_encode(const char *method, const ProtobufCMessage *body,
    const char *token, uint64_t request_id, nng_msg **out,
    struct anvil_error *err)
{
    *out                   = NULL;
    Anvil__V1__Request env = ANVIL__V1__REQUEST__INIT;
    uint8_t           *data;
    size_t             len;
    if (method == NULL || method[0] == '\0')
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "a request needs a method name");
    if (pack_body(body, &data, &len) != 0)
        return out_of_memory(err, method);
    env.method     = (char *) method;
    env.body.data  = data;
    env.body.len   = len;
    env.token      = (char *) (token != NULL ? token : "");
    env.request_id = request_id;
    size_t size    = protobuf_c_message_get_packed_size(&env.base);
    if (size > WIRE_MAX_MSG) {
        free(data);
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "the %s request is %zu bytes; a message may have at most %zu",
            method, size, WIRE_MAX_MSG);
    }
    int rv = pack_msg(&env.base, out);
    free(data);
    if (rv != 0)
        return out_of_memory(err, method);
    return ANVIL_OK;
}

// The reply's status as our code and message; OK leaves err alone.
static int
reply_status(
    const Anvil__V1__Reply *rep, const char *method, struct anvil_error *err)
{
    int         code = (int) rep->code;
    const char *msg  = rep->message != NULL ? rep->message : "";
    if (code == ANVIL_OK)
        return ANVIL_OK;
    if (code < 0 || code > ANVIL_UNAUTHENTICATED)
        return av_error_set(err, ANVIL_UNKNOWN,
            "server answered %s with unknown status code %d: %s", method, code,
            msg[0] != '\0' ? msg : "(no message)");
    if (msg[0] == '\0')
        return av_error_set(err, code, "%s: %s", method, anvil_strerror(code));
    return av_error_set(err, code, "%s", msg);
}

// A standby's UNAVAILABLE names the leader (Reply.leader): a copy into
// *leader, the caller's; an out-of-memory copy is NULL, as if none.
static void
reply_leader(const Anvil__V1__Reply *rep, int code, char **leader)
{
    if (leader == NULL || code != ANVIL_UNAVAILABLE || rep->leader == NULL
        || rep->leader[0] == '\0')
        return;
    *leader = strdup(rep->leader);
}

int
wire_reply_decode(const void *buf, size_t len, const char *method,
    uint64_t request_id, const ProtobufCMessageDescriptor *desc,
    ProtobufCMessage **body, char **leader, struct anvil_error *err)
{
    if (body != NULL)
        *body = NULL;
    if (leader != NULL)
        *leader = NULL;
    if (method == NULL)
        method = "request";
    if (buf == NULL && len > 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "reply to %s: no buffer for %zu bytes", method, len);
    Anvil__V1__Reply *rep = anvil__v1__reply__unpack(NULL, len, buf);
    if (rep == NULL)
        return av_error_set(err, ANVIL_INTERNAL,
            "the reply to %s is not an anvil.v1.Reply envelope (%zu "
            "bytes): is the server an anvild?",
            method, len);
    int code;
    if (rep->request_id != 0 && rep->request_id != request_id) {
        code = av_error_set(err, ANVIL_INTERNAL,
            "the reply to %s request %" PRIu64 " answers request %" PRIu64,
            method, request_id, (uint64_t) rep->request_id);
        goto out;
    }
    code = reply_status(rep, method, err);
    reply_leader(rep, code, leader);
    if (code != ANVIL_OK || desc == NULL || body == NULL)
        goto out;
    *body
        = protobuf_c_message_unpack(desc, NULL, rep->body.len, rep->body.data);
    if (*body == NULL)
        code = av_error_set(err, ANVIL_INTERNAL,
            "could not decode the %s in the reply to %s (%zu bytes): "
            "client and server disagree on the protocol",
            desc->name, method, rep->body.len);
out:
    anvil__v1__reply__free_unpacked(rep, NULL);
    return code;
}
