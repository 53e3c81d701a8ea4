// auth.c - the token table and the role -> rpc rules.
//
// Lookup compares the presented token's hash with every entry in constant
// time per entry (deployments hold tens of tokens, not millions), so the
// time taken does not tell how much of a guess matched.
#include "auth.h"
#include "handlers.h"

#include "util/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

struct entry {
    uint8_t hash[AV_SHA256_LEN];
    int64_t id;
    int     role;
    int64_t expires_at; // 0 = never
    int64_t revoked_at; // 0 = not revoked
};

struct auth {
    bool             enabled;
    pthread_rwlock_t lock; // guards e, n, cap
    struct entry    *e;
    size_t           n, cap;
};

static const char *const role_names[]
    = { NULL, "admin", "client", "worker", "reader" };

struct auth *
auth_new(bool enabled)
{
    struct auth *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->enabled = enabled;
    pthread_rwlock_init(&a->lock, NULL);
    return a;
}

void
auth_free(struct auth *a)
{
    if (a == NULL)
        return;
    pthread_rwlock_destroy(&a->lock);
    free(a->e);
    free(a);
}

bool
auth_enabled(const struct auth *a)
{
    return a->enabled;
}

int
auth_put(struct auth *a, const uint8_t hash[AV_SHA256_LEN], int64_t id,
    int role, int64_t expires_at, int64_t revoked_at)
{
    struct entry e = { .id = id,
        .role              = role,
        .expires_at        = expires_at,
        .revoked_at        = revoked_at };
    memcpy(e.hash, hash, AV_SHA256_LEN);
    int rc = 0;
    pthread_rwlock_wrlock(&a->lock);
    size_t i = 0;
    while (i < a->n && a->e[i].id != id)
        i++;
    if (i == a->n && a->n == a->cap) {
        size_t        cap = a->cap ? a->cap * 2 : 16;
        struct entry *p   = realloc(a->e, cap * sizeof(*p));
        if (p == NULL)
            rc = -1;
        else {
            a->e   = p;
            a->cap = cap;
        }
    }
    if (rc == 0) {
        a->e[i] = e;
        if (i == a->n)
            a->n++;
    }
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

void
auth_revoke(struct auth *a, int64_t id, int64_t at)
{
    pthread_rwlock_wrlock(&a->lock);
    for (size_t i = 0; i < a->n; i++) {
        if (a->e[i].id == id)
            a->e[i].revoked_at = at;
    }
    pthread_rwlock_unlock(&a->lock);
}

static bool
allowed(int role, const char *method)
{
    if (role == ANVIL_ROLE_ADMIN)
        return true;
    // Each rpc's row in the handler table names its roles; token
    // management and unknown methods are admin only.
    return (handlers_roles(method) & (1u << role)) != 0;
}

// Finds the entry whose hash matches, touching every entry.
static bool
find(struct auth *a, const uint8_t hash[AV_SHA256_LEN], struct entry *out)
{
    bool found = false;
    for (size_t i = 0; i < a->n; i++) {
        if (av_ct_compare(a->e[i].hash, hash, AV_SHA256_LEN) == 0) {
            *out  = a->e[i];
            found = true;
        }
    }
    return found;
}

int
auth_check(struct auth *a, const char *token, const char *method, int64_t now,
    int64_t *token_id, int *role, struct anvil_error *err)
{
    *token_id = 0;
    *role     = ANVIL_ROLE_ADMIN;
    if (!a->enabled)
        return ANVIL_OK;
    if (token == NULL || token[0] == '\0')
        return av_error_set(err, ANVIL_UNAUTHENTICATED,
            "this server requires a token: set ANVIL_TOKEN (or --token)");
    uint8_t      hash[AV_SHA256_LEN];
    struct entry e = { 0 };
    auth_hash(token, hash);
    pthread_rwlock_rdlock(&a->lock);
    bool found = find(a, hash, &e);
    pthread_rwlock_unlock(&a->lock);
    if (!found)
        return av_error_set(err, ANVIL_UNAUTHENTICATED,
            "the token is not valid on this server");
    if (e.revoked_at != 0)
        return av_error_set(err, ANVIL_UNAUTHENTICATED,
            "token t%lld was revoked", (long long) e.id);
    if (e.expires_at != 0 && e.expires_at <= now)
        return av_error_set(err, ANVIL_UNAUTHENTICATED,
            "token t%lld has expired", (long long) e.id);
    if (!allowed(e.role, method))
        return av_error_set(err, ANVIL_PERMISSION_DENIED,
            "a %s token may not call %.64s", auth_role_name(e.role), method);
    *token_id = e.id;
    *role     = e.role;
    return ANVIL_OK;
}

void
auth_hash(const char *secret, uint8_t hash[AV_SHA256_LEN])
{
    av_sha256(secret, strlen(secret), hash);
}

int
auth_token_new(char *buf, size_t len, uint8_t hash[AV_SHA256_LEN])
{
    uint8_t rnd[32];
    if (len < AUTH_TOKEN_LEN + 1
        || getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd))
        return -1;
    memcpy(buf, "anv_", 4);
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(buf + 4 + 2 * i, 3, "%02x", rnd[i]);
    auth_hash(buf, hash);
    return 0;
}

const char *
auth_role_name(int role)
{
    if (role < ANVIL_ROLE_ADMIN || role > ANVIL_ROLE_READER)
        return NULL;
    return role_names[role];
}

int
auth_role_parse(const char *name, int *role)
{
    for (int r = ANVIL_ROLE_ADMIN; r <= ANVIL_ROLE_READER; r++) {
        if (strcasecmp(name, role_names[r]) == 0) {
            *role = r;
            return 0;
        }
    }
    return -1;
}
