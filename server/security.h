// security.h - what anvild sets up before it serves: whether tokens are
// required, the token table loaded from the store, the bootstrap admin
// token, and the TLS configuration of a tls+tcp:// listener.
// Called from server_start() only, before the engine thread exists.
#ifndef SERVER_SECURITY_H
#define SERVER_SECURITY_H

#include "auth.h"
#include "server.h"
#include "store.h"

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stdbool.h>

// True for URLs only this machine can reach: ipc://, inproc://, and
// tcp/ws/tls+tcp on 127.0.0.0/8, ::1 or localhost.
bool security_is_local(const char *url);

// Whether cfg asks for token authentication (see server_config.auth).
bool security_auth_on(const struct server_config *cfg);

// Loads every token of the store into a.
int security_load_tokens(
    struct store *st, struct auth *a, struct anvil_error *err);

// Makes sure an admin token exists for the bootstrap file: if the file
// exists, its token is registered as admin (once); if not, a new admin
// token is made and written to it (mode 0600).
int security_bootstrap(struct store *st, struct auth *a, const char *path,
    struct anvil_error *err);

// A server TLS configuration from cfg's certificate, key and optional
// client CA (which makes client certificates required). *out is NULL when
// the URL is not tls+tcp://. Free with nng_tls_config_free().
int security_tls(const struct server_config *cfg, nng_tls_config **out,
    struct anvil_error *err);

#endif
