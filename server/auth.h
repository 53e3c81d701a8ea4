// auth.h - tokens and roles: the in-memory table the rpc threads check each
// request's token against, and the token format.
//
// The table holds each token's SHA-256 hash, never the secret. It is loaded
// from the store at start and changed by the engine when tokens are created
// or revoked. Thread-safe: auth.lock (a rwlock) guards the table; checks
// take it shared.
#ifndef SERVER_AUTH_H
#define SERVER_AUTH_H

#include "util/sha256.h"

#include <anvil/anvil.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Roles are enum anvil_role (anvil/anvil.h): one numbering for the wire,
// the SDK and the server.

// Token secrets: "anv_" and 64 hex digits (256 random bits).
#define AUTH_TOKEN_LEN 68

struct auth;

// enabled=false: every request passes as an admin (token id 0).
struct auth *auth_new(bool enabled);
void         auth_free(struct auth *a);
bool         auth_enabled(const struct auth *a);

// Adds or replaces a token. 0, or -1 if out of memory.
int auth_put(struct auth *a, const uint8_t hash[AV_SHA256_LEN], int64_t id,
    int role, int64_t expires_at, int64_t revoked_at);

// Marks token id revoked at `at`.
void auth_revoke(struct auth *a, int64_t id, int64_t at);

// Checks the envelope's token for rpc `method` at time now. ANVIL_OK with
// the token's id and role (0 and ANVIL_ROLE_ADMIN when auth is off);
// UNAUTHENTICATED (no, unknown, expired or revoked token) or
// PERMISSION_DENIED (the role may not call method), with a message.
int auth_check(struct auth *a, const char *token, const char *method,
    int64_t now, int64_t *token_id, int *role, struct anvil_error *err);

// Makes a new random secret into buf (>= AUTH_TOKEN_LEN + 1) and its hash.
int auth_token_new(char *buf, size_t len, uint8_t hash[AV_SHA256_LEN]);

void auth_hash(const char *secret, uint8_t hash[AV_SHA256_LEN]);

// "admin", "client", "worker", "reader"; NULL for others.
const char *auth_role_name(int role);
int         auth_role_parse(const char *name, int *role);

#endif
