// listen_guard.h - an nng listener that is watched and replaced when it
// stops taking connections.
//
// nng 1.5.2 (Debian bookworm's) has a defect in its ipc transport (its
// tcp transport has the same code, though a peer that leaves does not
// make the send fail there in practice; we could not make it happen):
// when the SP header exchange of a newly accepted connection
// fails because the peer has already gone (EPIPE, which nng maps to
// NNG_ECLOSED), the error is handed to the socket's pending accept, which
// takes NNG_ECLOSED for "the listener was closed" and never accepts again.
// The transport keeps accepting and negotiating, so clients connect and
// send, and nothing ever reads their requests. A few hundred connections
// that close right after connecting are enough (test_hostile shows it);
// the fail-over test hit it with clients whose dialers were being
// replaced. Later nng versions map the error to NNG_ECONNSHUT.
//
// The guard is a thread: every LISTEN_GUARD_PERIOD_MS it dials the URL
// from a socket of its own and waits for the listening socket to report a
// new pipe (NNG_PIPE_EV_ADD_POST, any pipe counts). After two checks in a
// row without one, it logs listener.replaced and closes the listener and
// listens again on the same URL: connections already open stay open. URLs
// it cannot dial as a client (tls+tcp://, whose client would need the
// CA) are listened on without a guard.
#ifndef SERVER_LISTEN_GUARD_H
#define SERVER_LISTEN_GUARD_H

#include <anvil/anvil.h>
#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>

#define LISTEN_GUARD_PERIOD_MS 500

struct nng_tls_config;
struct listen_guard;

// Listens on url with sock (synchronously: on return clients can
// connect), with the TLS configuration for tls+tcp:// URLs and recv_max
// as NNG_OPT_RECVMAXSZ, and starts the guard. Registers the socket's
// NNG_PIPE_EV_ADD_POST callback (no one else may). Errors:
// INVALID_ARGUMENT (bad URL), UNAVAILABLE (address in use), INTERNAL.
int listen_guard_start(nng_socket sock, const char *url,
    struct nng_tls_config *tls, size_t recv_max, struct listen_guard **out,
    struct anvil_error *err);

// How many times the listener was replaced.
int listen_guard_replaced(const struct listen_guard *g);

// Stops the guard thread (which closes its client socket), waiting 2 s
// at most: the listener is no longer replaced (it stays open: closing the
// socket closes it). NULL is ignored.
void listen_guard_stop(struct listen_guard *g);

// Stops the guard if it runs and frees g: after the socket was closed
// (its pipe callback counts into g until then). NULL is ignored.
void listen_guard_free(struct listen_guard *g);

// The URL a client on this host dials to reach listen into out: the same
// URL, or for a tcp wildcard the loopback address. False for tls+tcp://
// and any other URL the guard does not check.
bool listen_guard_self_url(const char *listen, char *out, size_t len);

#endif
