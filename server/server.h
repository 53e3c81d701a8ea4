// server.h - the lifecycle of one anvild: config, start, stop.
//
// A struct server owns the store, the engine thread and the rpc endpoint.
// server_start() returns once the endpoint listens, so a test may connect
// the moment it returns. Several servers may run in one process (tests),
// each on its own URL and database. Call from one thread; server_stop() from
// the thread that started it.
#ifndef SERVER_SERVER_H
#define SERVER_SERVER_H

#include <anvil/anvil.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// The largest --max-payload: replies carry payloads and results, and must
// stay below the clients' 16 MiB receive limit.
#define SERVER_MAX_PAYLOAD (4 * 1024 * 1024)

// HTTP listeners one server may have (anvild --http, repeated).
#define SERVER_MAX_HTTP 8

enum server_auth {
    SERVER_AUTH_AUTO = 0, // tokens required unless the URL is local-only
    SERVER_AUTH_ON   = 1, // --auth
    SERVER_AUTH_OFF  = 2, // --insecure
};

struct server_config {
    const char *listen_url;   // default "tcp://127.0.0.1:7700"
    const char *db_path;      // default "./anvil.db"
    const char *store_url;    // PostgreSQL conninfo; NULL = SQLite db_path
    size_t      max_payload;  // payload and result limit; default 1 MiB
    int         synchronous;  // SQLite synchronous: 2 FULL (default), 1 NORMAL
    int         contexts;     // REP contexts receiving at once; default 64
    int64_t     lease_ms;     // default lease of a polled job; 30000
    int64_t     retention_ms; // finished work kept; 7 days; 0 = forever
    int64_t     worker_lost_ms;     // worker unheard of this long is lost; 15 s
    int64_t     event_retention_ms; // events kept this long; 24 h
    uint64_t    event_max;          // and at most this many; 10,000,000
    bool        events;             // write events; true
    int         auth;               // enum server_auth
    const char *bootstrap_token_file; // NULL = none
    const char *tls_cert;             // PEM files, for tls+tcp:// URLs
    const char *tls_key;
    const char *tls_client_ca;      // NULL = client certificates not required
    int         max_waits;          // long-polls in flight; 10000
    int         max_waits_per_conn; // per connection; 256
    int         max_queue;          // requests waiting for the engine; 100000
    int         max_conns;          // connections open at once; 1024
    // HTTP/JSON listeners: http://host:port or https://host:port (with
    // tls_cert and tls_key). Tokens are required when any listener, nng
    // or HTTP, is reachable off this machine (SERVER_AUTH_AUTO).
    const char *http_urls[SERVER_MAX_HTTP];
    int         n_http;
    int64_t     http_idle_timeout_ms;  // keep-alive idle; 60 s
    int64_t     http_read_timeout_ms;  // a request must arrive in; 10 s
    int64_t     http_sse_keepalive_ms; // an idle event stream's; 15 s
    bool        public_metrics;        // GET /metrics without a token
    bool        metrics; // count for GET /metrics; true (--no-metrics)
    // Several nodes on one PostgreSQL database (store_url set): the URL
    // clients are sent to while this node leads (NULL = listen_url), and
    // the leader lease's time to live (leader.h; default 2 s).
    const char *advertise_url;
    int64_t     leader_ttl_ms;
};

// Fills cfg with the defaults above.
void server_config_init(struct server_config *cfg);

struct server;

// Opens the database (creating or migrating it), rebuilds in-memory state
// from it, starts the engine thread and listens on cfg->listen_url. With
// a PostgreSQL store the node first takes the leader lease: while another
// node holds it, this one listens as a standby (answering UNAVAILABLE with
// the leader's URL) and does all that when it takes over; a leader that
// finds the lease taken by another ends server_wait() with UNAVAILABLE.
// On success *out is the caller's, to stop with server_stop(). cfg's
// strings must outlive the server. Errors: INVALID_ARGUMENT (bad URL or
// option), UNAVAILABLE (address in use), INTERNAL (database).
int server_start(const struct server_config *cfg, struct server **out,
    struct anvil_error *err);

// Blocks until server_shutdown() is called or the server fails for good
// (its storage can no longer be trusted: a failed sync or rebuild, already
// logged). Returns ANVIL_OK after server_shutdown(), else the failure's
// code. Either way the caller then calls server_stop(). Any thread.
int server_wait(struct server *s);

// The TCP port of HTTP listener i (in cfg.http_urls), or -1.
int server_http_port(const struct server *s, int i);

// Wakes server_wait() with ANVIL_OK (e.g. on SIGTERM). Any thread.
void server_shutdown(struct server *s);

// Stops accepting, lets the engine finish its batch, closes the database
// and frees the server. NULL is ignored.
void server_stop(struct server *s);

#endif
