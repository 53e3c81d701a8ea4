// rpc.h - the nng REP endpoint: contexts, the aio state machine, envelope
// decode and reply encode. It never touches SQLite: decoded requests go to
// the engine as commands.
//
// Threads: nng's aio callbacks run on nng's threads; replies are sent from
// the engine thread (a command's done callback). rpc.lock guards the list
// of contexts and the idle count.
#ifndef SERVER_RPC_H
#define SERVER_RPC_H

#include "engine.h"
#include "handlers.h"

#include <anvil/anvil.h>
#include <nng/nng.h>
#include <stdbool.h>

struct auth;
struct metrics;
struct nng_tls_config;

struct rpc_config {
    const char            *url;
    size_t                 recv_max; // NNG_OPT_RECVMAXSZ
    int                    contexts; // contexts kept receiving
    struct handler_limits  limits;
    struct engine         *engine;
    struct auth           *auth;
    int                    max_waits;          // long-polls in flight, total
    int                    max_waits_per_conn; // ... per connection
    int                    max_conns;          // connections open at once
    struct nng_tls_config *tls;     // for tls+tcp:// URLs; NULL otherwise
    struct metrics        *metrics; // each reply counted; NULL = off
    // A REP socket already listening on url (a standby's that took over,
    // standby.h), used instead of a new one so that no connection to it
    // is dropped; false: rpc_start opens and listens.
    bool       has_sock;
    nng_socket sock;
    // With has_sock: the guard of its listener (listen_guard.h), which the
    // endpoint stops and frees with the socket, whatever rpc_start returns.
    struct listen_guard *guard;
};

struct listen_guard;
struct rpc;

// Listens on cfg->url (synchronously: on return, clients can connect).
// Errors: INVALID_ARGUMENT (bad URL), UNAVAILABLE (address in use).
int rpc_start(
    const struct rpc_config *cfg, struct rpc **out, struct anvil_error *err);

// Stops handing requests to the engine (later ones are answered
// UNAVAILABLE) and waits until no callback is inside engine_submit(). The
// socket stays open, so the engine can still answer what it holds.
void rpc_quiesce(struct rpc *r);

// Quiesces, then closes the socket: no request is taken after this.
void rpc_close(struct rpc *r);

// Frees every context; call after rpc_close() and engine_stop(). NULL is
// ignored.
void rpc_free(struct rpc *r);

#endif
