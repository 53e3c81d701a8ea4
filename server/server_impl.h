// server_impl.h - struct server, shared by server.c (its lifecycle) and
// server_node.c (leader lease and standby, PostgreSQL only).
#ifndef SERVER_SERVER_IMPL_H
#define SERVER_SERVER_IMPL_H

#include "server.h"

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

// What an rpc's receive limit allows beyond --max-payload (the envelope).
#define SERVER_RECV_MARGIN (64 * 1024)

struct server {
    struct server_config cfg;
    struct store        *store;
    struct auth         *auth;
    nng_tls_config      *tls;
    struct engine       *engine;
    struct rpc          *rpc;
    struct http         *http[SERVER_MAX_HTTP];
    struct metrics      *metrics; // NULL = off

    // PostgreSQL only (server_node.c): the lease, the standby's answers
    // while not leading, and the node thread that renews or waits.
    struct leader       *leader;
    struct standby      *standby;
    nng_socket           sock;  // the standby's, handed to rpc (has_sock)
    struct listen_guard *guard; // its listener's, handed with it
    bool                 has_sock;
    int64_t              epoch;   // the lease's epoch while leading; else 0
    bool                 leading; // serving: store, engine and listeners open
    bool                 node_on; // node thread started
    pthread_t            node;

    pthread_mutex_t lock; // guards ended, code, stopping
    pthread_cond_t  ended_cv;
    bool            ended;    // server_shutdown() or a fatal engine error
    int             code;     // ANVIL_OK, or the fatal error's code
    bool            stopping; // server_stop(): the node thread ends
};

// Opens the store, rebuilds the engine from it and listens (what a
// restart does); on failure the caller stops the server.
int server_serve(struct server *s, struct anvil_error *err);

// Ends server_wait() with code (the first end wins). Any thread.
void server_end(struct server *s, int code);

// server_node.c: opens the lease, stands by on the listen URLs, takes the
// lease if it is free (then serves at once) and starts the node thread.
int server_node_start(struct server *s, struct anvil_error *err);

// Ends the node thread and the standby; NULL-safe parts. Before the
// engine stops.
void server_node_stop(struct server *s);

// Gives the lease up if this node leads, and closes it. After the engine
// stopped (its last transaction committed).
void server_node_release(struct server *s);

#endif
