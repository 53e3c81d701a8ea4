// client_admin.c - the token and worker-registry calls of anvil.h:
// CreateToken, ListTokens, RevokeToken and ListWorkers, and role names.
#include "anvil/v1/anvil.pb-c.h"
#include "client_impl.h"
#include "convert.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

// ---- roles ----

static const char *const role_names[] = {
    [ANVIL_ROLE_ADMIN]  = "admin",
    [ANVIL_ROLE_CLIENT] = "client",
    [ANVIL_ROLE_WORKER] = "worker",
    [ANVIL_ROLE_READER] = "reader",
};
#define N_ROLES (sizeof(role_names) / sizeof(role_names[0]))

const char *
anvil_role_name(int role)
{
    if (role >= ANVIL_ROLE_ADMIN && (size_t) role < N_ROLES)
        return role_names[role];
    return "unspecified";
}

int
anvil_role_parse(const char *name, int *role)
{
    if (name == NULL || role == NULL)
        return ANVIL_INVALID_ARGUMENT;
    for (size_t i = ANVIL_ROLE_ADMIN; i < N_ROLES; i++) {
        if (strcasecmp(name, role_names[i]) == 0) {
            *role = (int) i;
            return ANVIL_OK;
        }
    }
    return ANVIL_INVALID_ARGUMENT;
}

// ---- tokens ----

static void
token_fini(struct anvil_token *t)
{
    free(t->id);
    free(t->name);
    memset(t, 0, sizeof(*t));
}

void
anvil_tokens_free(struct anvil_token *t, size_t n)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        token_fini(&t[i]);
    free(t);
}

// Fills t from pb. 0, or -1 (out of memory; t is then empty).
static int
token_from_pb(struct anvil_token *t, const Anvil__V1__Token *pb)
{
    memset(t, 0, sizeof(*t));
    t->id            = convert_str(pb->id);
    t->name          = convert_str(pb->name);
    t->role          = (int) pb->role;
    t->created_at_ms = pb->created_at_ms;
    t->expires_at_ms = pb->expires_at_ms;
    t->revoked_at_ms = pb->revoked_at_ms;
    if (t->id != NULL && t->name != NULL)
        return 0;
    token_fini(t);
    return -1;
}

// *out = a new one-token array copied from pb (the reply to method).
static int
token_new(const Anvil__V1__Token *pb, const char *method,
    struct anvil_token **out, struct anvil_error *err)
{
    if (pb == NULL)
        return av_error_set(
            err, ANVIL_INTERNAL, "the reply to %s has no token", method);
    struct anvil_token *t = malloc(sizeof(*t));
    if (t == NULL || token_from_pb(t, pb) != 0) {
        free(t);
        return convert_oom(err, method);
    }
    *out = t;
    return ANVIL_OK;
}

int
anvil_token_create(anvil_client *c, int role, const char *name,
    int64_t expires_in_ms, struct anvil_token **out, char **secret,
    struct anvil_error *err)
{
    static const char fn[] = "anvil_token_create";
    if (out != NULL)
        *out = NULL;
    if (secret != NULL)
        *secret = NULL;
    int rc = client_check(c, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    if (role < ANVIL_ROLE_ADMIN || role > ANVIL_ROLE_READER)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: role %d is not a role (admin, client, worker or reader)", fn,
            role);
    if (expires_in_ms < 0)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "%s: expires_in_ms is negative", fn);
    Anvil__V1__CreateTokenRequest req = ANVIL__V1__CREATE_TOKEN_REQUEST__INIT;
    req.role                          = (Anvil__V1__Role) role;
    req.name                          = (char *) (name != NULL ? name : "");
    req.expires_in_ms                 = expires_in_ms;
    Anvil__V1__CreateTokenResponse *rep;
    rc = client_call(
        c, "CreateToken", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    struct anvil_token *t = NULL;
    char               *s = NULL;
    rc                    = token_new(rep->token, "CreateToken", &t, err);
    if (rc == ANVIL_OK && secret != NULL) {
        s = convert_str(rep->secret);
        if (s == NULL)
            rc = convert_oom(err, "CreateToken");
    }
    if (rep->secret != NULL)
        memset(rep->secret, 0, strlen(rep->secret));
    client_free_reply(&rep->base);
    if (rc != ANVIL_OK) {
        anvil_tokens_free(t, t != NULL ? 1 : 0);
        return rc;
    }
    if (out != NULL)
        *out = t;
    else
        anvil_tokens_free(t, 1);
    if (secret != NULL)
        *secret = s;
    return ANVIL_OK;
}

int
anvil_token_list(anvil_client *c, struct anvil_token **tokens, size_t *n,
    struct anvil_error *err)
{
    static const char fn[] = "anvil_token_list";
    if (tokens == NULL || n == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: %s is NULL", fn,
            tokens == NULL ? "tokens" : "n");
    *tokens = NULL;
    *n      = 0;
    int rc  = client_check(c, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__ListTokensRequest   req = ANVIL__V1__LIST_TOKENS_REQUEST__INIT;
    Anvil__V1__ListTokensResponse *rep;
    rc = client_call(
        c, "ListTokens", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    struct anvil_token *ts = NULL;
    size_t              i  = 0;
    if (rep->n_tokens > 0) {
        ts = calloc(rep->n_tokens, sizeof(*ts));
        if (ts == NULL)
            rc = convert_oom(err, "ListTokens");
    }
    for (; rc == ANVIL_OK && i < rep->n_tokens; i++) {
        if (rep->tokens[i] == NULL)
            rc = av_error_set(err, ANVIL_INTERNAL,
                "token %zu of the reply to ListTokens is empty", i);
        else if (token_from_pb(&ts[i], rep->tokens[i]) != 0)
            rc = convert_oom(err, "ListTokens");
    }
    client_free_reply(&rep->base);
    if (rc != ANVIL_OK) {
        anvil_tokens_free(ts, i);
        return rc;
    }
    *tokens = ts;
    *n      = i;
    return ANVIL_OK;
}

int
anvil_token_revoke(anvil_client *c, const char *id, struct anvil_token **out,
    struct anvil_error *err)
{
    static const char fn[] = "anvil_token_revoke";
    if (out != NULL)
        *out = NULL;
    int rc = client_check(c, fn, err);
    if (rc == ANVIL_OK)
        rc = client_check_id(id, "token id", fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__RevokeTokenRequest req = ANVIL__V1__REVOKE_TOKEN_REQUEST__INIT;
    req.id                            = (char *) id;
    Anvil__V1__RevokeTokenResponse *rep;
    rc = client_call(
        c, "RevokeToken", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    if (out != NULL)
        rc = token_new(rep->token, "RevokeToken", out, err);
    client_free_reply(&rep->base);
    return rc;
}

// ---- workers ----

static void
worker_fini(struct anvil_worker_status *w)
{
    free(w->name);
    free(w->host);
    free(w->version);
    anvil_strv_free(w->types, w->n_types);
    anvil_strv_free(w->queues, w->n_queues);
    memset(w, 0, sizeof(*w));
}

void
anvil_workers_free(struct anvil_worker_status *w, size_t n)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        worker_fini(&w[i]);
    free(w);
}

// Fills w from pb (info may be absent). 0, or -1 (out of memory).
static int
worker_from_pb(struct anvil_worker_status *w, const Anvil__V1__Worker *pb)
{
    static const Anvil__V1__WorkerInfo none = ANVIL__V1__WORKER_INFO__INIT;
    const Anvil__V1__WorkerInfo       *in   = pb->info ? pb->info : &none;
    memset(w, 0, sizeof(*w));
    w->name          = convert_str(pb->name);
    w->host          = convert_str(in->host);
    w->version       = convert_str(in->version);
    w->pid           = in->pid;
    w->slots         = in->slots;
    w->first_seen_ms = pb->first_seen_ms;
    w->last_seen_ms  = pb->last_seen_ms;
    w->running       = pb->running;
    w->lost          = pb->lost;
    int r1           = convert_strv(in->types, in->n_types, &w->types);
    if (r1 == 0)
        w->n_types = in->n_types;
    int r2 = convert_strv(in->queues, in->n_queues, &w->queues);
    if (r2 == 0)
        w->n_queues = in->n_queues;
    if (w->name && w->host && w->version && r1 == 0 && r2 == 0)
        return 0;
    worker_fini(w);
    return -1;
}

int
anvil_workers_list(anvil_client *c, struct anvil_worker_status **out, size_t *n,
    struct anvil_error *err)
{
    static const char fn[] = "anvil_workers_list";
    if (out == NULL || n == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: %s is NULL", fn,
            out == NULL ? "out" : "n");
    *out   = NULL;
    *n     = 0;
    int rc = client_check(c, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__ListWorkersRequest   req = ANVIL__V1__LIST_WORKERS_REQUEST__INIT;
    Anvil__V1__ListWorkersResponse *rep;
    rc = client_call(
        c, "ListWorkers", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    struct anvil_worker_status *ws = NULL;
    size_t                      i  = 0;
    if (rep->n_workers > 0) {
        ws = calloc(rep->n_workers, sizeof(*ws));
        if (ws == NULL)
            rc = convert_oom(err, "ListWorkers");
    }
    for (; rc == ANVIL_OK && i < rep->n_workers; i++) {
        if (rep->workers[i] == NULL)
            rc = av_error_set(err, ANVIL_INTERNAL,
                "worker %zu of the reply to ListWorkers is empty", i);
        else if (worker_from_pb(&ws[i], rep->workers[i]) != 0)
            rc = convert_oom(err, "ListWorkers");
    }
    client_free_reply(&rep->base);
    if (rc != ANVIL_OK) {
        anvil_workers_free(ws, i);
        return rc;
    }
    *out = ws;
    *n   = i;
    return ANVIL_OK;
}
