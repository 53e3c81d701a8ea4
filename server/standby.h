// standby.h - what a standby anvild serves: on its nng URL, every rpc is
// answered UNAVAILABLE with the leader's advertised URL in the message and
// in Reply.leader; on its http:// listeners, every request is answered 503
// with {"code":"UNAVAILABLE","message":...,"leader":...} and an
// Anvil-Leader header. It holds no engine and no store: when the node
// takes the lease it stops the standby and starts serving on the same
// URLs (server_node.c).
//
// Threads: nng's aio callbacks and libmicrohttpd's thread answer; any
// thread may call standby_set_leader(). standby.lock guards the URL.
#ifndef SERVER_STANDBY_H
#define SERVER_STANDBY_H

#include <anvil/anvil.h>

struct nng_tls_config;
struct standby;

struct standby_config {
    const char            *url; // the nng URL
    struct nng_tls_config *tls; // for tls+tcp:// URLs; NULL otherwise
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

#endif
