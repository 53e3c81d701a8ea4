// client.c - anvil_client, the one path every rpc takes (client_call), and
// the job and health calls of anvil.h. The worker calls are in
// client_worker.c, the workflow calls in workflow.c; reply copying is in
// convert.c.
//
// Each public call validates its arguments, fills a protobuf-c request,
// hands it to client_call() and copies the reply into the plain structs of
// anvil.h, so callers never see protobuf-c types or nng.
//
// One nng REQ socket per client, shared by all threads: every call opens
// its own nng context and aio. anvil_client_open() creates the dialer,
// which checks the URL, and the first call starts it with
// NNG_FLAG_NONBLOCK: it connects in the background and redials after a
// loss, so calls made while the server is down wait for it up to their
// timeout. Starting on first use rather than at open is a workaround: nng
// 1.5.2 leaks the dialer's half-negotiated pipe (and the listener's) when a
// socket is closed while its connection is being set up, which a client
// opened and closed without a call would otherwise hit whenever a server
// listens (LeakSanitizer reports it; probe: dial, close, nng_fini).
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
// The exchange mirrors wire_call() in wire.c (resend timing, which timeout
// means UNAVAILABLE and which DEADLINE_EXCEEDED; see the notes there), with
// the aio registered so that shutdown can cancel it.
#include "anvil/v1/anvil.pb-c.h"
#include "client_impl.h"
#include "convert.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/file.h"
#include "util/log.h"
#include "wire.h"

#include <inttypes.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS 10000
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 2000
#define TLS_FILE_MAX (1 << 20) // a PEM certificate or key file

// One call in flight: its own context and aio, listed in c->inflight so
// that shutdown can cancel the aio.
struct inflight {
    nng_ctx          ctx;
    nng_aio         *aio;
    struct inflight *next; // guarded by c->mu
};

struct anvil_client {
    nng_socket             sock;
    char                  *url;   // immutable after open
    char                  *token; // set before calls (anvil_client_set_token)
    bool                   tls;   // a TLS config was set (error messages)
    Anvil__V1__WorkerInfo *info;  // sent with Poll/Heartbeat; NULL = none
    _Atomic int            timeout_ms; // per call, long-polls excluded
    nng_dialer             dialer;     // created at open, started by a call
    pthread_mutex_t        mu;         // guards everything below
    bool                   dialing;    // the dialer was started
    pthread_cond_t         idle;       // signalled when calls drops to 0
    int                    calls;    // calls between call_enter and call_leave
    struct inflight       *inflight; // their aios
    bool                   closing;  // shutdown (or close) has begun
    bool                   sock_closed;
    nng_tls_config        *tls_cfg;  // held, to redial with; NULL = none
    int64_t                redialed; // av_mono_ms() of the last redial
};

// ---- the client ----

// The URL to use: url, else $ANVIL_SERVER, else the default.
static const char *
pick_url(const char *url)
{
    if (url != NULL)
        return url;
    const char *env = getenv("ANVIL_SERVER");
    if (env != NULL && env[0] != '\0')
        return env;
    return ANVIL_DEFAULT_URL;
}

// Sets a dialer's options (and TLS configuration, when one is set).
static int
dialer_options(anvil_client *c, nng_dialer d)
{
    nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ, WIRE_MAX_MSG);
    nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, RECONNECT_MIN_MS);
    nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, RECONNECT_MAX_MS);
    if (c->tls_cfg != NULL)
        return nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, c->tls_cfg);
    return 0;
}

static int
make_dialer(anvil_client *c, struct anvil_error *err)
{
    nng_socket s;
    int        rv = nng_req0_open(&s);
    if (rv != 0)
        return wire_nng_error(rv, "opening a socket", c->url, 0, err);
    c->sock = s;
    // Our own messages are bounded; a peer's are not: cap what we buffer.
    nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, WIRE_MAX_MSG);
    nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, WIRE_RESEND_MS);
    nng_socket_set_ms(s, NNG_OPT_RECONNMINT, RECONNECT_MIN_MS);
    nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, RECONNECT_MAX_MS);
    // Checks the URL; the first call starts it (see the top of the file).
    rv = nng_dialer_create(&c->dialer, s, c->url);
    if (rv == 0) {
        dialer_options(c, c->dialer);
        return ANVIL_OK;
    }
    nng_close(s);
    int code = wire_code_from_nng(rv);
    if (code == ANVIL_INVALID_ARGUMENT)
        return av_error_set(err, code,
            "bad server URL \"%s\": %s (want e.g. tcp://127.0.0.1:7700 or "
            "ipc:///path/to/socket)",
            c->url, nng_strerror(rv));
    return wire_nng_error(rv, "dialling", c->url, 0, err);
}

static void
info_free(Anvil__V1__WorkerInfo *info)
{
    if (info == NULL)
        return;
    free(info->host);
    free(info->version);
    anvil_strv_free(info->types, info->n_types);
    anvil_strv_free(info->queues, info->n_queues);
    free(info);
}

static void
client_free(anvil_client *c)
{
    if (c->tls_cfg != NULL)
        nng_tls_config_free(c->tls_cfg);
    pthread_cond_destroy(&c->idle);
    pthread_mutex_destroy(&c->mu);
    info_free(c->info);
    free(c->url);
    free(c->token);
    free(c);
}

// ---- TLS ----

static bool
url_is_tls(const char *url)
{
    return strncmp(url, "tls+", 4) == 0 || strncmp(url, "wss://", 6) == 0;
}

// The host of url ("tls+tcp://host:port"; "[::1]" gives "::1") into buf.
static void
url_host(const char *url, char *buf, size_t len)
{
    const char *p = strstr(url, "://");
    p             = p != NULL ? p + 3 : url;
    size_t n;
    if (p[0] == '[') {
        p++;
        n = strcspn(p, "]");
    } else {
        n = strcspn(p, ":/");
    }
    snprintf(buf, len, "%.*s", (int) n, p);
}

// Applies t to cfg: server name, CA, own certificate.
static int
tls_configure(anvil_client *c, nng_tls_config *cfg, const struct anvil_tls *t,
    struct anvil_error *err)
{
    char host[256];
    url_host(c->url, host, sizeof(host));
    const char *name = t->server_name != NULL && t->server_name[0] != '\0'
        ? t->server_name
        : host;
    int         rv   = nng_tls_config_server_name(cfg, name);
    if (rv != 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "TLS server name \"%s\": %s", name, nng_strerror(rv));
    if (t->ca_file != NULL) {
        rv = nng_tls_config_ca_file(cfg, t->ca_file);
        if (rv == 0)
            rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
        if (rv != 0)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "TLS CA file %s: %s", t->ca_file, nng_strerror(rv));
    }
    if (t->cert_file == NULL)
        return ANVIL_OK;
    char              *crt = NULL, *key = NULL;
    size_t             len;
    struct anvil_error fe = { 0, "" };
    int rc = av_read_file(t->cert_file, TLS_FILE_MAX, &crt, &len, &fe);
    if (rc == ANVIL_OK)
        rc = av_read_file(t->key_file, TLS_FILE_MAX, &key, &len, &fe);
    if (rc != ANVIL_OK)
        rc = av_error_set(err, rc, "TLS: %s", fe.msg);
    if (rc == ANVIL_OK) {
        rv = nng_tls_config_own_cert(cfg, crt, key, NULL);
        if (rv != 0)
            rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "TLS certificate %s with key %s: %s", t->cert_file, t->key_file,
                nng_strerror(rv));
    }
    free(crt);
    if (key != NULL)
        memset(key, 0, strlen(key));
    free(key);
    return rc;
}

int
anvil_client_set_tls(
    anvil_client *c, const struct anvil_tls *tls, struct anvil_error *err)
{
    static const char fn[] = "anvil_client_set_tls";
    int               rc   = client_check(c, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    if (tls == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: tls is NULL", fn);
    if (!url_is_tls(c->url))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "TLS settings need a tls+tcp:// server URL, not %s", c->url);
    if ((tls->cert_file == NULL) != (tls->key_file == NULL))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "TLS: a client certificate needs its key and a key its "
            "certificate (got only the %s)",
            tls->cert_file != NULL ? "certificate" : "key");
    pthread_mutex_lock(&c->mu);
    bool started = c->dialing || c->closing;
    pthread_mutex_unlock(&c->mu);
    if (started)
        return av_error_set(err, ANVIL_FAILED_PRECONDITION,
            "%s: the connection has started; set TLS before the first call",
            fn);
    nng_tls_config *cfg = NULL;
    int             rv  = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT);
    if (rv != 0)
        return av_error_set(err, wire_code_from_nng(rv),
            "cannot make a TLS configuration: %s", nng_strerror(rv));
    rc = tls_configure(c, cfg, tls, err);
    if (rc == ANVIL_OK) {
        rv = nng_dialer_set_ptr(c->dialer, NNG_OPT_TLS_CONFIG, cfg);
        if (rv != 0)
            rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "cannot use TLS on %s: %s", c->url, nng_strerror(rv));
    }
    if (rc == ANVIL_OK) {
        c->tls     = true;
        c->tls_cfg = cfg; // kept for redial()
    } else {
        nng_tls_config_free(cfg);
    }
    return rc;
}

static const char *
env_or_null(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

// $ANVIL_TLS_CA, $ANVIL_TLS_CERT, $ANVIL_TLS_KEY for a tls+tcp:// URL.
static int
tls_from_env(anvil_client *c, struct anvil_error *err)
{
    struct anvil_tls t = {
        .ca_file   = env_or_null("ANVIL_TLS_CA"),
        .cert_file = env_or_null("ANVIL_TLS_CERT"),
        .key_file  = env_or_null("ANVIL_TLS_KEY"),
    };
    if (!url_is_tls(c->url)
        || (t.ca_file == NULL && t.cert_file == NULL && t.key_file == NULL))
        return ANVIL_OK;
    return anvil_client_set_tls(c, &t, err);
}

// ---- worker info ----

int
anvil_client_set_worker_info(anvil_client *c,
    const struct anvil_worker_info *in, struct anvil_error *err)
{
    static const char fn[] = "anvil_client_set_worker_info";
    int               rc   = client_check(c, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    if (in == NULL) {
        info_free(c->info);
        c->info = NULL;
        return ANVIL_OK;
    }
    for (size_t i = 0; i < in->n_types + in->n_queues; i++) {
        bool               type = i < in->n_types;
        const char *const *v    = type ? in->types : in->queues;
        size_t             k    = type ? i : i - in->n_types;
        if (v == NULL || v[k] == NULL)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s: %s[%zu] is NULL", fn, type ? "types" : "queues", k);
    }
    Anvil__V1__WorkerInfo *info = calloc(1, sizeof(*info));
    if (info == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    anvil__v1__worker_info__init(info);
    info->host    = convert_str(in->host);
    info->version = convert_str(in->version);
    info->pid     = in->pid;
    info->slots   = in->slots;
    int r1 = convert_strv((char **) in->types, in->n_types, &info->types);
    if (r1 == 0)
        info->n_types = in->n_types;
    int r2 = convert_strv((char **) in->queues, in->n_queues, &info->queues);
    if (r2 == 0)
        info->n_queues = in->n_queues;
    if (info->host == NULL || info->version == NULL || r1 != 0 || r2 != 0) {
        info_free(info);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    info_free(c->info);
    c->info = info;
    return ANVIL_OK;
}

const Anvil__V1__WorkerInfo *
client_worker_info(const anvil_client *c)
{
    return c->info;
}

int
anvil_client_open(anvil_client **out, const char *url, struct anvil_error *err)
{
    if (out == NULL)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "anvil_client_open: out is NULL");
    *out = NULL;
    url  = pick_url(url);
    if (url[0] == '\0')
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "the server URL is empty (want e.g. %s)", ANVIL_DEFAULT_URL);
    anvil_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->idle, NULL);
    c->url   = strdup(url);
    c->token = convert_str(getenv("ANVIL_TOKEN"));
    atomic_init(&c->timeout_ms, DEFAULT_TIMEOUT_MS);
    if (c->url == NULL || c->token == NULL) {
        client_free(c);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    int rc = make_dialer(c, err);
    if (rc != ANVIL_OK) {
        client_free(c);
        return rc;
    }
    rc = tls_from_env(c, err);
    if (rc != ANVIL_OK) {
        nng_close(c->sock); // the dialer never started
        client_free(c);
        return rc;
    }
    *out = c;
    return ANVIL_OK;
}

void
anvil_client_set_timeout(anvil_client *c, int timeout_ms)
{
    if (c == NULL)
        return;
    atomic_store(
        &c->timeout_ms, timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
}

int
anvil_client_set_token(
    anvil_client *c, const char *token, struct anvil_error *err)
{
    if (c == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "anvil_client_set_token: client is NULL");
    char *t = convert_str(token);
    if (t == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    free(c->token);
    c->token = t;
    return ANVIL_OK;
}

void
anvil_client_shutdown(anvil_client *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->closing = true;
    for (struct inflight *in = c->inflight; in != NULL; in = in->next)
        nng_aio_cancel(in->aio);
    while (c->calls > 0)
        pthread_cond_wait(&c->idle, &c->mu);
    // No call is inside nng now, and none can start: closing is safe.
    if (!c->sock_closed) {
        c->sock_closed = true;
        nng_close(c->sock);
    }
    pthread_mutex_unlock(&c->mu);
}

void
anvil_client_close(anvil_client *c)
{
    if (c == NULL)
        return;
    anvil_client_shutdown(c);
    client_free(c);
}

void
anvil_free(void *p)
{
    free(p);
}

// ---- one call ----

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
        in->next    = c->inflight;
        c->inflight = in;
        c->calls++;
    }
    pthread_mutex_unlock(&c->mu);
    if (rv != 0)
        return wire_nng_error(rv, method, c->url, 0, err);
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
    *p = in->next;
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
    if (!c->closing && c->dialing && now - c->redialed >= RECONNECT_MAX_MS) {
        nng_dialer d;
        c->redialed = now;
        if (nng_dialer_create(&d, c->sock, c->url) == 0) {
            if (dialer_options(c, d) == 0
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

// Sends *msg and receives the reply into *msg: up to timeout_ms for the
// request to go out (else UNAVAILABLE: it was not delivered) and for the
// reply, plus wait_ms for a long-poll. *msg is NULL on failure.
static int
exchange(anvil_client *c, struct inflight *in, const char *method,
    nng_msg **msg, int timeout_ms, int64_t wait_ms, struct anvil_error *err)
{
    int64_t deadline = av_mono_ms() + timeout_ms;
    nng_aio_set_msg(in->aio, *msg);
    *msg = NULL;
    nng_aio_set_timeout(in->aio, clamp_ms(timeout_ms));
    int rv = run_op(c, in, true);
    if (rv != 0) {
        nng_msg_free(nng_aio_get_msg(in->aio)); // an unsent message is ours
        nng_aio_set_msg(in->aio, NULL);
        if (rv == NNG_ETIMEDOUT)
            redial(c);
        if (rv == NNG_ETIMEDOUT && url_is_tls(c->url))
            return av_error_set(err, ANVIL_UNAVAILABLE,
                "could not reach anvild at %s within %d ms to send %s (is "
                "it running? does the TLS CA%s trust its certificate, and "
                "does it name the host?)",
                c->url, timeout_ms, method, c->tls ? "" : " (none set)");
        if (rv == NNG_ETIMEDOUT)
            return av_error_set(err, ANVIL_UNAVAILABLE,
                "could not reach anvild at %s within %d ms to send %s (is "
                "it running?)",
                c->url, timeout_ms, method);
        return wire_nng_error(rv, method, c->url, timeout_ms, err);
    }
    int64_t left = deadline - av_mono_ms();
    nng_aio_set_timeout(in->aio, clamp_ms((left > 0 ? left : 0) + wait_ms));
    rv = run_op(c, in, false);
    if (rv != 0)
        return wire_nng_error(rv, method, c->url, timeout_ms + wait_ms, err);
    *msg = nng_aio_get_msg(in->aio);
    return ANVIL_OK;
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
    struct inflight in = { .next = NULL };
    rc                 = call_enter(c, &in, method, timeout_ms + wait_ms, err);
    if (rc != ANVIL_OK) {
        nng_msg_free(msg);
        return rc;
    }
    rc = exchange(c, &in, method, &msg, timeout_ms, wait_ms, err);
    call_leave(c, &in);
    if (rc == ANVIL_OK) {
        rc = wire_reply_decode(nng_msg_body(msg), nng_msg_len(msg), method, id,
            m->output, reply, err);
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

// ---- jobs ----

void
anvil_job_free(struct anvil_job *job)
{
    if (job == NULL)
        return;
    convert_job_fini(job);
    free(job);
}

void
client_submit_opts_to_pb(
    const struct anvil_submit_opts *o, Anvil__V1__SubmitJobRequest *req)
{
    if (o == NULL)
        return;
    req->queue        = (char *) (o->queue != NULL ? o->queue : "");
    req->priority     = o->priority;
    req->delay_ms     = o->delay_ms;
    req->run_at_ms    = o->run_at_ms;
    req->max_attempts = o->max_attempts;
    req->timeout_ms   = o->timeout_ms;
    req->idempotency_key
        = (char *) (o->idempotency_key != NULL ? o->idempotency_key : "");
    req->lease_ms           = o->lease_ms;
    req->initial_backoff_ms = o->initial_backoff_ms;
    req->max_backoff_ms     = o->max_backoff_ms;
    req->backoff_multiplier = o->backoff_multiplier;
}

int
anvil_job_submit(anvil_client *c, const char *type, const void *payload,
    size_t len, const struct anvil_submit_opts *opts, char **id_out,
    bool *existed, struct anvil_error *err)
{
    static const char fn[] = "anvil_job_submit";
    if (id_out != NULL)
        *id_out = NULL;
    if (existed != NULL)
        *existed = false;
    int rc = client_check(c, fn, err);
    if (rc == ANVIL_OK && type == NULL)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: type is NULL", fn);
    if (rc == ANVIL_OK)
        rc = client_check_bytes(payload, len, "payload", fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__SubmitJobRequest req = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    req.type                        = (char *) type;
    req.payload.data                = (uint8_t *) payload;
    req.payload.len                 = len;
    client_submit_opts_to_pb(opts, &req);
    Anvil__V1__SubmitJobResponse *rep;
    rc = client_call(
        c, "SubmitJob", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    if (id_out != NULL) {
        *id_out = convert_str(rep->id);
        if (*id_out == NULL)
            rc = convert_oom(err, "SubmitJob");
    }
    if (rc == ANVIL_OK && existed != NULL)
        *existed = rep->existed;
    client_free_reply(&rep->base);
    return rc;
}

// Checks the arguments of a call that takes a job id.
static int
check_id_call(
    anvil_client *c, const char *id, const char *fn, struct anvil_error *err)
{
    int rc = client_check(c, fn, err);
    if (rc == ANVIL_OK)
        rc = client_check_id(id, "job id", fn, err);
    return rc;
}

int
anvil_job_get(anvil_client *c, const char *id, struct anvil_job **out,
    struct anvil_error *err)
{
    static const char fn[] = "anvil_job_get";
    if (out == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: out is NULL", fn);
    *out   = NULL;
    int rc = check_id_call(c, id, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__GetJobRequest req = ANVIL__V1__GET_JOB_REQUEST__INIT;
    req.id                       = (char *) id;
    Anvil__V1__GetJobResponse *rep;
    rc = client_call(
        c, "GetJob", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    rc = convert_job_new(rep->job, "GetJob", out, err);
    client_free_reply(&rep->base);
    return rc;
}

int
anvil_job_cancel(anvil_client *c, const char *id, struct anvil_job **out,
    struct anvil_error *err)
{
    static const char fn[] = "anvil_job_cancel";
    if (out != NULL)
        *out = NULL;
    int rc = check_id_call(c, id, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__CancelJobRequest req = ANVIL__V1__CANCEL_JOB_REQUEST__INIT;
    req.id                          = (char *) id;
    Anvil__V1__CancelJobResponse *rep;
    rc = client_call(
        c, "CancelJob", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    if (out != NULL)
        rc = convert_job_new(rep->job, "CancelJob", out, err);
    client_free_reply(&rep->base);
    return rc;
}

int
anvil_job_wait(anvil_client *c, const char *id, int timeout_ms,
    struct anvil_job **out, struct anvil_error *err)
{
    static const char fn[] = "anvil_job_wait";
    if (out == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: out is NULL", fn);
    *out   = NULL;
    int rc = check_id_call(c, id, fn, err);
    if (rc == ANVIL_OK && timeout_ms < 0)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: timeout_ms is negative (%d)", fn, timeout_ms);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__WaitJobRequest req = ANVIL__V1__WAIT_JOB_REQUEST__INIT;
    req.id                        = (char *) id;
    req.timeout_ms                = (uint32_t) timeout_ms;
    Anvil__V1__WaitJobResponse *rep;
    rc = client_call(
        c, "WaitJob", &req.base, timeout_ms, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    rc = convert_job_new(rep->job, "WaitJob", out, err);
    if (rc == ANVIL_OK && !rep->done)
        rc = av_error_set(err, ANVIL_DEADLINE_EXCEEDED,
            "job %s is still %s after %d ms", id,
            anvil_job_state_name((*out)->state), timeout_ms);
    client_free_reply(&rep->base);
    return rc;
}

static int
list_from_pb(const Anvil__V1__ListJobsResponse *rep,
    struct anvil_job_list **out, struct anvil_error *err)
{
    struct anvil_job_list *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return convert_oom(err, "ListJobs");
    *out           = l;
    l->next_cursor = convert_str(rep->next_cursor);
    if (rep->n_jobs > 0)
        l->jobs = calloc(rep->n_jobs, sizeof(*l->jobs));
    if (l->next_cursor == NULL || (rep->n_jobs > 0 && l->jobs == NULL))
        goto fail;
    for (; l->n < rep->n_jobs; l->n++) {
        if (rep->jobs[l->n] == NULL)
            goto fail;
        if (convert_job(&l->jobs[l->n], rep->jobs[l->n]) != 0)
            goto fail;
    }
    return ANVIL_OK;
fail:
    anvil_job_list_free(l);
    *out = NULL;
    return convert_oom(err, "ListJobs");
}

int
anvil_job_list(anvil_client *c, const struct anvil_list_filter *filter,
    struct anvil_job_list **out, struct anvil_error *err)
{
    static const char fn[] = "anvil_job_list";
    if (out == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: out is NULL", fn);
    *out   = NULL;
    int rc = client_check(c, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__ListJobsRequest req = ANVIL__V1__LIST_JOBS_REQUEST__INIT;
    if (filter != NULL) {
        req.state  = (Anvil__V1__JobState) filter->state;
        req.type   = (char *) (filter->type ? filter->type : "");
        req.queue  = (char *) (filter->queue ? filter->queue : "");
        req.limit  = filter->limit;
        req.cursor = (char *) (filter->cursor ? filter->cursor : "");
    }
    Anvil__V1__ListJobsResponse *rep;
    rc = client_call(
        c, "ListJobs", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    rc = list_from_pb(rep, out, err);
    client_free_reply(&rep->base);
    return rc;
}

void
anvil_job_list_free(struct anvil_job_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n; i++)
        convert_job_fini(&list->jobs[i]);
    free(list->jobs);
    free(list->next_cursor);
    free(list);
}

// ---- health ----

static int
health_from_pb(const Anvil__V1__HealthResponse *rep, struct anvil_health *h)
{
    h->version    = convert_str(rep->version);
    h->uptime_ms  = rep->uptime_ms;
    h->jobs_total = rep->jobs_total;
    if (h->version == NULL)
        return -1;
    if (rep->n_depths == 0)
        return 0;
    h->depths = calloc(rep->n_depths, sizeof(*h->depths));
    if (h->depths == NULL)
        return -1;
    for (; h->n_depths < rep->n_depths; h->n_depths++) {
        const Anvil__V1__QueueDepth *pb = rep->depths[h->n_depths];
        struct anvil_queue_depth    *d  = &h->depths[h->n_depths];
        if (pb == NULL)
            return -1;
        d->queue     = convert_str(pb->queue);
        d->type      = convert_str(pb->type);
        d->queued    = pb->queued;
        d->running   = pb->running;
        d->no_worker = pb->no_worker;
        if (d->queue == NULL || d->type == NULL) {
            h->n_depths++; // so anvil_health_free() frees this one too
            return -1;
        }
    }
    return 0;
}

int
anvil_health(
    anvil_client *c, struct anvil_health **out, struct anvil_error *err)
{
    if (out == NULL)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "anvil_health: out is NULL");
    *out   = NULL;
    int rc = client_check(c, "anvil_health", err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__HealthRequest   req = ANVIL__V1__HEALTH_REQUEST__INIT;
    Anvil__V1__HealthResponse *rep;
    rc = client_call(
        c, "Health", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    struct anvil_health *h = calloc(1, sizeof(*h));
    if (h == NULL || health_from_pb(rep, h) != 0) {
        anvil_health_free(h);
        rc = convert_oom(err, "Health");
    } else {
        *out = h;
    }
    client_free_reply(&rep->base);
    return rc;
}

void
anvil_health_free(struct anvil_health *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n_depths; i++) {
        free(h->depths[i].queue);
        free(h->depths[i].type);
    }
    free(h->depths);
    free(h->version);
    free(h);
}
