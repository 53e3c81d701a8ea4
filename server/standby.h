// standby.h - what a standby anvild serves: on its nng URL, every rpc is
// answered UNAVAILABLE with the leader's advertised URL in the message and
// in Reply.leader; on its http:// listeners, every request is answered 503
// with {"code":"UNAVAILABLE","message":...,"leader":...} and an
// Anvil-Leader header. It holds no engine and no store: when the node
// takes the lease, standby_hand_over() gives its nng socket, still
// listening and with every connection open, to the rpc endpoint, and the
// HTTP listeners are started again by the server (server_node.c).
//
// Threads: nng's aio callbacks and libmicrohttpd's thread answer; any
// thread may call standby_set_leader(). standby.lock guards the URL.
#ifndef SERVER_STANDBY_H
#define SERVER_STANDBY_H

#include <anvil/anvil.h>
#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>

struct listen_guard;
struct nng_tls_config;
struct standby;

struct standby_config {
    const char            *url;      // the nng URL
    struct nng_tls_config *tls;      // for tls+tcp:// URLs; NULL otherwise
    size_t                 recv_max; // NNG_OPT_RECVMAXSZ, as rpc.h
    const char *const     *http_urls;
    int                    n_http;
};

// Listens on every URL. https:// listeners are not served while standing
// by (logged). Errors: INVALID_ARGUMENT, UNAVAILABLE (address in use).
int standby_start(const struct standby_config *cfg, struct standby **out,
    struct anvil_error *err);

// The leader's advertised URL ("" or NULL: none known).
void standby_set_leader(struct standby *s, const char *url);

// Stops answering and closes every listener; NULL is ignored.
void standby_stop(struct standby *s);

// Stops answering and closes the HTTP listeners, but keeps the nng socket
// open and listening: *sock is the caller's (rpc.h has_sock). Frees s.
// Closing it instead would drop a connection being set up in a way nng
// 1.5.2 never reports to the client, whose dialer then waits forever.
// Requests not yet received stay queued for the caller's contexts; one
// already received is answered UNAVAILABLE naming self (this node's
// advertised URL), so its client sends it again at once. *guard: the
// listener's guard (listen_guard.h), the caller's to stop and free with
// the socket.
void standby_hand_over(struct standby *s, nng_socket *sock,
    struct listen_guard **guard, const char *self);

#endif
