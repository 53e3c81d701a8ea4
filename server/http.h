// http.h - the HTTP/JSON endpoint (anvild --http URL): every rpc as a JSON
// route (http_routes.c), the seed's POST /job, GET /metrics, /healthz and
// /readyz, on libmicrohttpd (docs/architecture.md says why).
//
// A request becomes the same engine command the nng endpoint makes: its
// JSON is turned into the rpc's request message (pbjson.c) and decoded by
// the same handler (handlers.c), with the same tokens and limits. The
// connection is suspended while the engine works and resumed by the
// command's done() callback, so a long-poll holds no thread.
//
// Threads: libmicrohttpd's polling thread runs the request callbacks; the
// engine and its sync thread run done(), which only stores the reply and
// resumes the connection; a sweeper thread cuts connections whose request
// takes longer than the read timeout to arrive. http.lock guards the
// connection list, the long-poll counts and the gate (gate.h).
#ifndef SERVER_HTTP_H
#define SERVER_HTTP_H

#include "engine.h"
#include "handlers.h"

#include <anvil/anvil.h>
#include <stdbool.h>
#include <stdint.h>

struct auth;
struct metrics;

struct http_config {
    const char           *url; // http://host:port or https://host:port
    struct engine        *engine;
    struct auth          *auth;
    struct metrics       *metrics; // NULL: /metrics answers 503
    struct handler_limits limits;
    size_t                max_body;           // request body limit
    int                   max_conns;          // connections open at once
    int                   max_waits;          // long-polls in flight
    int                   max_waits_per_conn; // ... per connection
    int64_t               idle_timeout_ms;    // keep-alive connection idle
    int64_t               read_timeout_ms;    // a whole request must arrive
    int64_t sse_keepalive_ms; // an idle event stream's keep-alive; 0 = 15 s
                              // (at most half the idle timeout)
    const char *tls_cert;     // PEM files, for https://
    const char *tls_key;
    const char *tls_client_ca;  // NULL: no client certificates
    bool        public_metrics; // /metrics without a token
};

struct http;

// Listens on cfg->url (on return, clients can connect). Errors:
// INVALID_ARGUMENT (bad URL, TLS files), UNAVAILABLE (address in use).
int http_start(
    const struct http_config *cfg, struct http **out, struct anvil_error *err);

// The TCP port listened on (useful with port 0).
int http_port(const struct http *h);

// Stops handing requests to the engine: later ones, and /readyz, answer
// 503. Waits until no callback is inside engine_submit().
void http_quiesce(struct http *h);

// Stops the listener and frees h; call after engine_stop() (which answers
// every parked long-poll). NULL is ignored.
void http_free(struct http *h);

// The HTTP status of an anvil code (NOT_FOUND 404, ...).
int http_status_of(int code);

#endif
