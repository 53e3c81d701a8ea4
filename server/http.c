// http.c - the HTTP/JSON endpoint on libmicrohttpd (see http.h).
//
// One request's life: the URI callback allocates its struct hreq and arms
// the read deadline; the access callback matches the route and checks the
// size, type and token as soon as the headers are in, collects the body,
// then builds the rpc's request message and posts the command, suspending
// the connection; done() (engine thread) renders the JSON reply and
// resumes it; the access callback then queues the reply.
#include "http.h"
#include "http_impl.h"

#include "anvil/v1/anvil.pb-c.h"
#include "auth.h"
#include "dashboard.h"
#include "gate.h"
#include "http_routes.h"
#include "metrics.h"
#include "pbjson.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/file.h"
#include "util/log.h"
#include "waits.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define HEADER_MEMORY (32 * 1024) // headers and read buffer per connection

static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
    struct http *h = cls;
    struct hreq *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->h       = h;
    q->mc      = mc;
    q->method  = -1;
    q->t0_us   = av_mono_us();
    q->metrics = h->cfg.metrics;
    const union MHD_ConnectionInfo *ci
        = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    q->conn = ci != NULL ? ci->socket_context : NULL;
    if (q->conn != NULL)
        http_arm(h, q->conn, h->cfg.read_timeout_ms);
    // The path without the query (libmicrohttpd has not split it yet).
    size_t n = strcspn(uri, "?");
    if (n >= sizeof(q->path))
        n = 0; // too long: matches nothing
    memcpy(q->path, uri, n);
    q->path[n] = '\0';
    return q;
}

static void
on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
    struct http *h = cls;
    struct hreq *q = *con_cls;
    (void) mc;
    (void) toe;
    if (q == NULL)
        return;
    // Between requests, the next one must start within the idle timeout.
    if (q->conn != NULL) {
        http_conn_stream_end(h, q->conn);
        http_arm(h, q->conn, h->cfg.idle_timeout_ms);
    }
    handlers_call_fini(&q->call);
    free(q->body);
    free(q->text);
    free(q);
    *con_cls = NULL;
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
log_mhd(void *cls, const char *fmt, va_list ap)
{
    struct http *h = cls;
    char         buf[sizeof(h->last_error)];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    pthread_mutex_lock(&h->lock);
    snprintf(h->last_error, sizeof(h->last_error), "%s", buf);
    pthread_mutex_unlock(&h->lock);
    AV_DEBUG("http.mhd", "msg=\"%s\"", buf);
}

// ---- long-polls and the engine ----

static int
wait_enter(struct hreq *q, struct anvil_error *err)
{
    struct http *h  = q->h;
    uint32_t     id = q->conn != NULL ? q->conn->id : CONN_ID_BIT;
    pthread_mutex_lock(&h->lock);
    int rc = waits_enter(&h->waits, id, err);
    pthread_mutex_unlock(&h->lock);
    q->waiting = rc == ANVIL_OK;
    return rc;
}

static void
wait_leave(struct hreq *q)
{
    if (!q->waiting)
        return;
    struct http *h  = q->h;
    uint32_t     id = q->conn != NULL ? q->conn->id : CONN_ID_BIT;
    pthread_mutex_lock(&h->lock);
    waits_leave(&h->waits, id);
    pthread_mutex_unlock(&h->lock);
    q->waiting = false;
}

// Engine (or sync) thread: the command is done; answer and resume.
static void
call_done(struct cmd *c, void *arg)
{
    struct hreq *q = arg;
    (void) c;
    wait_leave(q);
    http_answer_reply(q);
    if (q->call.cmd.err.code != ANVIL_OK)
        AV_DEBUG("http.error", "rpc=%s code=%s msg=\"%s\"", q->rpc,
            anvil_code_name(q->call.cmd.err.code), q->call.cmd.err.msg);
    MHD_resume_connection(q->mc);
}

// Posts q's command unless the endpoint is closing. The connection is
// suspended first: done() may resume it before this returns, so the
// caller must not touch q after a true return.
static bool
submit(struct hreq *q)
{
    struct http *h = q->h;
    if (!gate_enter(&h->gate)) {
        wait_leave(q);
        http_answer_error(q, 503, ANVIL_UNAVAILABLE, "the server is stopping");
        return false;
    }
    q->call.cmd.done     = call_done;
    q->call.cmd.done_arg = q;
    MHD_suspend_connection(q->mc);
    engine_submit(h->cfg.engine, &q->call.cmd);
    gate_leave(&h->gate);
    return true;
}

// A client certificate signed by the client CA, when one is required.
static int
check_client_cert(struct hreq *q, struct anvil_error *err)
{
    if (q->h->ca == NULL)
        return ANVIL_OK;
    const union MHD_ConnectionInfo *ci
        = MHD_get_connection_info(q->mc, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    unsigned int n = 0, status = 1;
    if (ci != NULL && ci->tls_session != NULL) {
        gnutls_session_t s = ci->tls_session;
        if (gnutls_certificate_get_peers(s, &n) == NULL)
            n = 0;
        if (n > 0 && gnutls_certificate_verify_peers2(s, &status) != 0)
            status = 1;
    }
    if (n == 0 || status != 0)
        return av_error_set(err, ANVIL_UNAUTHENTICATED,
            "this server requires a client certificate signed by its client "
            "CA (anvild --tls-client-ca)");
    return ANVIL_OK;
}

// The bearer token's check for rpc `method`, saying how to send one over
// HTTP when it is missing.
static int
check_token(struct http *h, struct hreq *q, const char *method,
    int64_t *token_id, int *role, struct anvil_error *err)
{
    const char *token  = http_bearer(q);
    bool        stream = q->m.route != NULL && q->m.route->kind == ROUTE_EVENTS;
    if (stream && token[0] == '\0') {
        // EventSource sends no headers: the stream takes ?access_token=.
        const char *t = MHD_lookup_connection_value(
            q->mc, MHD_GET_ARGUMENT_KIND, "access_token");
        token = t != NULL ? t : "";
    }
    if (auth_enabled(h->cfg.auth) && token[0] == '\0')
        return av_error_set(err, ANVIL_UNAUTHENTICATED,
            "this server requires a token: send the header "
            "'Authorization: Bearer <token>'%s",
            stream ? " (or ?access_token=<token>)" : "");
    return auth_check(
        h->cfg.auth, token, method, av_now_ms(), token_id, role, err);
}

// ---- dispatch ----

static void
answer_openapi(struct hreq *q)
{
    q->code = ANVIL_OK;
    http_answer_json(q, 200, routes_openapi(ANVIL_VERSION));
}

// GET /v1/events: the filter from the query, the token (which may come as
// ?access_token=), then the stream (http_events.c).
static enum MHD_Result
open_events(struct hreq *q)
{
    struct anvil_error err      = { 0 };
    ProtobufCMessage  *m        = NULL;
    int64_t            token_id = 0;
    int                role     = 0;
    int                rc       = http_build_request(q, &m, &err);
    q->method                   = handlers_method_index(q->rpc);
    if (rc == ANVIL_OK)
        rc = check_token(q->h, q, q->rpc, &token_id, &role, &err);
    if (rc == ANVIL_OK)
        return http_events_open(q, m, token_id, role);
    if (m != NULL)
        protobuf_c_message_free_unpacked(m, NULL);
    http_answer_err(q, &err);
    return http_send_answer(q);
}

// Runs q's route once its body is in. True when the command was posted
// (the connection is suspended: q is done()'s until it resumes); false
// when q holds the answer.
static bool
dispatch(struct hreq *q)
{
    struct http        *h   = q->h;
    const struct route *r   = q->m.route;
    struct anvil_error  err = { 0 };
    switch (r->kind) {
    case ROUTE_HEALTHZ:
        q->code = ANVIL_OK;
        http_answer(q, 200, "text/plain", strdup("ok\n"), 3);
        return false;
    case ROUTE_OPENAPI:
        answer_openapi(q);
        return false;
    case ROUTE_READYZ: {
        // Ready when the engine answers a Health command.
        q->rpc = "Health";
        ProtobufCMessage *m;
        if (pbjson_to_msg(handlers_input("Health"), NULL, &m, &err) != ANVIL_OK
            || handlers_decode_msg(&h->cfg.limits, "Health", m, &q->call, &err)
                != ANVIL_OK) {
            http_answer_err(q, &err);
            return false;
        }
        return submit(q);
    }
    case ROUTE_METRICS:
        q->call.cmd.kind = CMD_METRICS;
        return submit(q);
    case ROUTE_RPC:
    case ROUTE_EVENTS: // on_request() opens streams
        break;
    }
    ProtobufCMessage *m  = NULL;
    int               rc = http_build_request(q, &m, &err);
    q->method            = handlers_method_index(q->rpc);
    int64_t token_id     = 0;
    int     role         = 0;
    if (rc == ANVIL_OK)
        rc = check_token(h, q, q->rpc, &token_id, &role, &err);
    if (rc == ANVIL_OK) {
        rc = handlers_decode_msg(&h->cfg.limits, q->rpc, m, &q->call, &err);
        m  = NULL; // the call's now
    }
    if (rc == ANVIL_OK && q->call.long_poll)
        rc = wait_enter(q, &err);
    if (m != NULL)
        protobuf_c_message_free_unpacked(m, NULL);
    if (rc != ANVIL_OK) {
        http_answer_err(q, &err);
        return false;
    }
    const char *key = http_header(q, "Idempotency-Key");
    if (key != NULL && key[0] != '\0' && q->request_id == 0)
        q->request_id = http_request_id_of_key(key);
    q->call.cmd.request_id = q->request_id;
    q->call.cmd.token_id   = token_id;
    q->call.cmd.role       = role;
    q->call.cmd.pipe       = q->conn != NULL ? q->conn->id : CONN_ID_BIT;
    return submit(q);
}

// "application/json", in any case, alone or with parameters.
static bool
is_json_type(const char *ct)
{
    size_t n = strlen(HTTP_JSON_TYPE);
    return strncasecmp(ct, HTTP_JSON_TYPE, n) == 0
        && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t');
}

// What can be refused once the headers are in: the route, the body's size
// and type, TLS client certificates, the token of a non-rpc route.
static bool
check_headers(struct hreq *q, const char *verb)
{
    struct http       *h   = q->h;
    struct anvil_error err = { 0 };
    const char        *allow;
    int                st = routes_match(verb, q->path, &q->m, &allow);
    if (st == 404) {
        http_answer_error(q, 404, ANVIL_NOT_FOUND,
            "no such route: see GET /v1/openapi.json for the routes");
        return false;
    }
    if (st == 405) {
        char msg[96];
        snprintf(
            msg, sizeof(msg), "this route takes %s, not %.16s", allow, verb);
        q->allow = allow;
        http_answer_error(q, 405, ANVIL_UNIMPLEMENTED, msg); // as grpc-gateway
        return false;
    }
    if (q->m.route->rpc != NULL)
        q->method = handlers_method_index(q->m.route->rpc);
    const char *cl = http_header(q, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL && strtoull(cl, NULL, 10) > h->cfg.max_body) {
        char msg[128];
        snprintf(msg, sizeof(msg),
            "body of %.20s bytes is over the limit of %zu (anvild "
            "--max-payload)",
            cl, h->cfg.max_body);
        http_answer_error(q, 413, ANVIL_RESOURCE_EXHAUSTED, msg);
        return false;
    }
    const char *ct         = http_header(q, MHD_HTTP_HEADER_CONTENT_TYPE);
    bool        takes_json = q->m.route->body == ROUTE_BODY_MESSAGE
        || q->m.route->body == ROUTE_BODY_WORKFLOW;
    if (takes_json && ct != NULL && !is_json_type(ct)) {
        http_answer_error(q, 415, ANVIL_INVALID_ARGUMENT,
            "Content-Type must be application/json (curl: -H "
            "'Content-Type: application/json')");
        return false;
    }
    // Probes stay open to load balancers, which hold no client certificate.
    bool probe
        = q->m.route->kind == ROUTE_HEALTHZ || q->m.route->kind == ROUTE_READYZ;
    if (!probe && check_client_cert(q, &err) != ANVIL_OK) {
        http_answer_err(q, &err);
        return false;
    }
    int64_t tid;
    int     role;
    if (q->m.route->kind == ROUTE_METRICS && !h->cfg.public_metrics
        && check_token(h, q, "Health", &tid, &role, &err) != ANVIL_OK) {
        http_answer_err(q, &err);
        return false;
    }
    return true;
}

// Whether path is the API's (a route, or a 404 of the API's): /v1 and
// below, /metrics, /healthz, /readyz and the seed's /job. The rest is the
// dashboard's.
static bool
in_api(const char *path)
{
    static const char *const exact[]
        = { "/v1", "/metrics", "/healthz", "/readyz", "/job" };
    if (path[0] != '/' || strncmp(path, "/v1/", 4) == 0)
        return true;
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
        if (strcmp(path, exact[i]) == 0)
            return true;
    }
    return false;
}

// A path outside the API: the dashboard's files (dashboard.c) for GET and
// HEAD, 405 for any other method.
static enum MHD_Result
dashboard(struct hreq *q, const char *verb)
{
    struct anvil_error err = { 0 };
    if (strcmp(verb, "GET") != 0 && strcmp(verb, "HEAD") != 0) {
        char msg[96];
        snprintf(
            msg, sizeof(msg), "this page takes GET or HEAD, not %.16s", verb);
        q->allow = "GET, HEAD";
        http_answer_error(q, 405, ANVIL_UNIMPLEMENTED, msg);
        return http_send_answer(q);
    }
    if (check_client_cert(q, &err) != ANVIL_OK) {
        http_answer_err(q, &err);
        return http_send_answer(q);
    }
    return dashboard_answer(q->mc, verb, q->path);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *mc, const char *url,
    const char *verb, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
    struct http *h = cls;
    struct hreq *q = *con_cls;
    (void) url;
    (void) version;
    if (q == NULL)
        return MHD_NO; // out of memory in on_uri: drop the connection
    if (q->replied)
        return http_send_answer(q);
    if (!q->started) {
        q->started = true;
        q->mc      = mc;
        if (!in_api(q->path))
            return dashboard(q, verb);
        if (!check_headers(q, verb))
            return http_send_answer(q);
        return MHD_YES;
    }
    if (*upload_size > 0) {
        size_t n     = *upload_size;
        *upload_size = 0;
        if (q->len + n > h->cfg.max_body) {
            AV_WARN("http.body_too_large",
                "limit=%zu msg=\"connection closed\"", h->cfg.max_body);
            return MHD_NO;
        }
        if (q->len + n + 1 > q->cap) {
            size_t cap = q->cap ? q->cap : 1024;
            while (cap < q->len + n + 1)
                cap *= 2;
            char *p = realloc(q->body, cap);
            if (p == NULL)
                return MHD_NO;
            q->body = p;
            q->cap  = cap;
        }
        memcpy(q->body + q->len, upload, n);
        q->len += n;
        return MHD_YES;
    }
    // The whole request is in: the read deadline ends here.
    if (q->conn != NULL)
        http_arm(h, q->conn, 0);
    if (q->m.route->kind == ROUTE_EVENTS)
        return open_events(q);
    return dispatch(q) ? MHD_YES : http_send_answer(q);
}

// ---- start and stop ----

// "http://host:port" or "https://host:port" into an address.
int
http_parse_url(const char *url, bool *tls, struct sockaddr_storage *sa,
    socklen_t *salen, struct anvil_error *err)
{
    const char *p;
    if (strncmp(url, "http://", 7) == 0)
        *tls = false, p = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        *tls = true, p = url + 8;
    else
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "--http '%.64s': the URL must be http://host:port or "
            "https://host:port",
            url);
    char        host[256];
    const char *end;
    if (*p == '[') {
        end = strchr(p, ']');
        if (end == NULL || end[1] != ':')
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "--http '%.64s': an IPv6 address is [addr]:port", url);
        snprintf(host, sizeof(host), "%.*s", (int) (end - p - 1), p + 1);
        end++;
    } else {
        end = strrchr(p, ':');
        if (end == NULL || end - p >= (long) sizeof(host))
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "--http '%.64s': the URL needs a port, e.g. "
                "http://127.0.0.1:8000",
                url);
        snprintf(host, sizeof(host), "%.*s", (int) (end - p), p);
    }
    const char *port = end + 1;
    size_t      plen = strcspn(port, "/");
    if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen
        || (port[plen] == '/' && port[plen + 1] != '\0') || atoi(port) > 65535)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "--http '%.64s': the port must be a number up to 65535, with no "
            "path after it",
            url);
    char pbuf[8];
    snprintf(pbuf, sizeof(pbuf), "%.*s", (int) plen, port);
    struct addrinfo  hints = { .ai_family = AF_UNSPEC,
         .ai_socktype                     = SOCK_STREAM,
         .ai_flags                        = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *ai;
    int              rv = getaddrinfo(host[0] ? host : NULL, pbuf, &hints, &ai);
    if (rv != 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "--http '%.64s': cannot resolve '%s': %s", url, host,
            gai_strerror(rv));
    memcpy(sa, ai->ai_addr, ai->ai_addrlen);
    *salen = ai->ai_addrlen;
    freeaddrinfo(ai);
    return ANVIL_OK;
}

static int
load_tls(struct http *h, struct anvil_error *err)
{
    const struct http_config *c = &h->cfg;
    size_t                    n;
    if (c->tls_cert == NULL || c->tls_key == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "--http %s needs --tls-cert and --tls-key", c->url);
    int rc = av_read_file(c->tls_cert, 1 << 20, &h->cert, &n, err);
    if (rc == ANVIL_OK)
        rc = av_read_file(c->tls_key, 1 << 20, &h->key, &n, err);
    if (rc == ANVIL_OK && c->tls_client_ca != NULL)
        rc = av_read_file(c->tls_client_ca, 1 << 20, &h->ca, &n, err);
    return rc;
}

int
http_start(
    const struct http_config *cfg, struct http **out, struct anvil_error *err)
{
    struct http *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    h->cfg = *cfg;
    // An idle stream writes a keep-alive well within the idle timeout.
    if (h->cfg.sse_keepalive_ms <= 0)
        h->cfg.sse_keepalive_ms = 15000;
    if (h->cfg.sse_keepalive_ms > cfg->idle_timeout_ms / 2)
        h->cfg.sse_keepalive_ms = cfg->idle_timeout_ms / 2;
    h->waits.max          = cfg->max_waits;
    h->waits.max_per_conn = cfg->max_waits_per_conn;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cv, NULL);
    gate_init(&h->gate, &h->lock);
    bool                    tls = false;
    struct sockaddr_storage sa;
    socklen_t               salen;
    int rc = http_parse_url(cfg->url, &tls, &sa, &salen, err);
    if (rc == ANVIL_OK && tls)
        rc = load_tls(h, err);
    if (rc != ANVIL_OK) {
        http_free(h);
        return rc;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL
        | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG
        | (sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0)
        | (tls ? MHD_USE_TLS : 0);
    unsigned idle_s = (unsigned) ((cfg->idle_timeout_ms + 999) / 1000);
    struct MHD_OptionItem opts[] = {
        { MHD_OPTION_SOCK_ADDR, 0, &sa },
        { MHD_OPTION_CONNECTION_LIMIT, cfg->max_conns, NULL },
        { MHD_OPTION_CONNECTION_TIMEOUT, idle_s, NULL },
        { MHD_OPTION_CONNECTION_MEMORY_LIMIT, HEADER_MEMORY, NULL },
        { MHD_OPTION_NOTIFY_CONNECTION, (intptr_t) http_on_connection, h },
        { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t) on_completed, h },
        { MHD_OPTION_URI_LOG_CALLBACK, (intptr_t) on_uri, h },
        { MHD_OPTION_EXTERNAL_LOGGER, (intptr_t) log_mhd, h },
        { tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, h->cert },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, h->key },
        { h->ca != NULL ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0,
            h->ca },
        { MHD_OPTION_END, 0, NULL },
    };
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
        MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (h->d == NULL) {
        av_error_set(err, ANVIL_UNAVAILABLE, "cannot listen on %s: %s",
            cfg->url, h->last_error[0] ? h->last_error : "failed to start");
        http_free(h);
        return ANVIL_UNAVAILABLE;
    }
    const union MHD_DaemonInfo *di
        = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di != NULL ? di->port : 0;
    if (pthread_create(&h->sweeper, NULL, http_sweep, h) != 0) {
        http_free(h);
        return av_error_set(
            err, ANVIL_RESOURCE_EXHAUSTED, "cannot start a thread");
    }
    h->sweeper_on = true;
    *out          = h;
    return ANVIL_OK;
}

int
http_port(const struct http *h)
{
    return h->port;
}

void
http_quiesce(struct http *h)
{
    if (h == NULL)
        return;
    gate_close(&h->gate);
}

void
http_free(struct http *h)
{
    if (h == NULL)
        return;
    http_quiesce(h);
    if (h->d != NULL)
        MHD_stop_daemon(h->d);
    pthread_mutex_lock(&h->lock);
    h->stopping = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->lock);
    if (h->sweeper_on)
        pthread_join(h->sweeper, NULL);
    free(h->pfd);
    free(h->gone);
    free(h->cert);
    free(h->key);
    free(h->ca);
    gate_fini(&h->gate);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->cv);
    free(h);
}
