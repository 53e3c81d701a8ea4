// client_admin.c - the token and worker-registry calls of anvil.h:
// CreateToken, ListTokens, RevokeToken and ListWorkers, and role names.
#include "anvil/v1/anvil.pb-c.h"
#include "client_impl.h"
#include "convert.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

// ---- lists ----

// Empties the first n items of array a with k->fini(), then frees a.
static void
free_items(const struct client_list_kind *k, char *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        k->fini(a + i * k->size);
    free(a);
}

// Copies the n reply items pb[0..n-1] into a new array *items with
// k->from(), undoing with k->fini() on failure (*items is then NULL).
// INTERNAL for a NULL item, RESOURCE_EXHAUSTED when out of memory.
static int
copy_items(const struct client_list_kind *k, void *const *pb, size_t n,
    void **items, struct anvil_error *err)
{
    char *a  = NULL;
    int   rc = ANVIL_OK;
    *items   = NULL;
    if (n > 0) {
        a = calloc(n, k->size);
        if (a == NULL)
            return convert_oom(err, k->method);
    }
    size_t i = 0;
    for (; rc == ANVIL_OK && i < n; i++) {
        if (pb[i] == NULL)
            rc = av_error_set(err, ANVIL_INTERNAL,
                "%s %zu of the reply to %s is empty", k->what, i, k->method);
        else if (k->from(a + i * k->size, pb[i]) != 0)
            rc = convert_oom(err, k->method);
    }
    if (rc != ANVIL_OK) {
        free_items(k, a, i - 1); // the one that failed is empty
        return rc;
    }
    *items = a;
    return ANVIL_OK;
}

// Puts a new list of the items of reply rep (to k->method) at out.
static int
take_list(const struct client_list_kind *k, const ProtobufCMessage *rep,
    void *out, struct anvil_error *err)
{
    size_t n;
    void  *pb = client_repeated(rep, k->field, &n);
    void  *items;
    int    rc = copy_items(k, pb, n, &items, err);
    if (rc != ANVIL_OK)
        return rc;
    void *l = k->new_list(items, n);
    if (l == NULL) {
        free_items(k, items, n);
        return convert_oom(err, k->method);
    }
    *(void **) out = l;
    return ANVIL_OK;
}

// Runs list call k with req and puts the new list at out (a pointer to
// the caller's list pointer).
int
client_list_call(anvil_client *c, const struct client_list_kind *k,
    const ProtobufCMessage *req, void *out, struct anvil_error *err)
{
    int rc = client_check_out(c, out, k->fn, err);
    if (rc != ANVIL_OK)
        return rc;
    ProtobufCMessage *rep;
    rc = client_call(c, k->method, req, 0, &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    rc = take_list(k, rep, out, err);
    client_free_reply(rep);
    return rc;
}

// ---- tokens ----

static void
token_fini(void *item)
{
    struct anvil_token *t = item;
    free(t->id);
    free(t->name);
    memset(t, 0, sizeof(*t));
}

void
anvil_token_free(struct anvil_token *t)
{
    if (t == NULL)
        return;
    token_fini(t);
    free(t);
}

void
anvil_token_list_free(struct anvil_token_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n; i++)
        token_fini(&list->tokens[i]);
    free(list->tokens);
    free(list);
}

// Fills item (a struct anvil_token) from pb (an Anvil__V1__Token). 0, or
// -1 (out of memory; the token is then empty).
static int
token_from_pb(void *item, const void *pb_token)
{
    struct anvil_token     *t  = item;
    const Anvil__V1__Token *pb = pb_token;
    memset(t, 0, sizeof(*t));
    t->id            = convert_str(pb->id);
    t->name          = convert_str(pb->name);
    t->role          = (enum anvil_role) pb->role;
    t->created_at_ms = pb->created_at_ms;
    t->expires_at_ms = pb->expires_at_ms;
    t->revoked_at_ms = pb->revoked_at_ms;
    if (t->id != NULL && t->name != NULL)
        return 0;
    token_fini(t);
    return -1;
}

// A new list of the n tokens at items; NULL when out of memory.
static void *
token_list_new(void *items, size_t n)
{
    struct anvil_token_list *l = malloc(sizeof(*l));
    if (l != NULL)
        *l = (struct anvil_token_list) { items, n };
    return l;
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
anvil_token_create(anvil_client *c, enum anvil_role role, const char *name,
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
            (int) role);
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
        anvil_token_free(t);
        return rc;
    }
    if (out != NULL)
        *out = t;
    else
        anvil_token_free(t);
    if (secret != NULL)
        *secret = s;
    return ANVIL_OK;
}

int
anvil_token_list(
    anvil_client *c, struct anvil_token_list **out, struct anvil_error *err)
{
    static const struct client_list_kind k = { "anvil_token_list", "ListTokens",
        "tokens", "token", sizeof(struct anvil_token), token_from_pb,
        token_fini, token_list_new };
    Anvil__V1__ListTokensRequest req = ANVIL__V1__LIST_TOKENS_REQUEST__INIT;
    return client_list_call(c, &k, &req.base, out, err);
}

// Puts the reply's token at out (a struct anvil_token **).
static int
take_token(const ProtobufCMessage *rep, const char *method, void *out,
    struct anvil_error *err)
{
    Anvil__V1__Token *const *pb = client_field(rep, "token");
    return token_new(pb != NULL ? *pb : NULL, method, out, err);
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
    return client_call_take(
        c, "RevokeToken", &req.base, 0, take_token, out, err);
}

// ---- workers ----

static void
worker_fini(void *item)
{
    struct anvil_worker_status *w = item;
    free(w->name);
    free(w->host);
    free(w->version);
    convert_strv_free(w->types, w->n_types);
    convert_strv_free(w->queues, w->n_queues);
    memset(w, 0, sizeof(*w));
}

void
anvil_worker_status_list_free(struct anvil_worker_status_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n; i++)
        worker_fini(&list->workers[i]);
    free(list->workers);
    free(list);
}

// Fills item (a struct anvil_worker_status) from pb (an Anvil__V1__Worker;
// info may be absent). 0, or -1 (out of memory).
static int
worker_from_pb(void *item, const void *pb_worker)
{
    struct anvil_worker_status        *w    = item;
    const Anvil__V1__Worker           *pb   = pb_worker;
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

// A new list of the n workers at items; NULL when out of memory.
static void *
worker_list_new(void *items, size_t n)
{
    struct anvil_worker_status_list *l = malloc(sizeof(*l));
    if (l != NULL)
        *l = (struct anvil_worker_status_list) { items, n };
    return l;
}

int
anvil_worker_status_list(anvil_client *c, struct anvil_worker_status_list **out,
    struct anvil_error *err)
{
    static const struct client_list_kind k = { "anvil_worker_status_list",
        "ListWorkers", "workers", "worker", sizeof(struct anvil_worker_status),
        worker_from_pb, worker_fini, worker_list_new };
    Anvil__V1__ListWorkersRequest req = ANVIL__V1__LIST_WORKERS_REQUEST__INIT;
    return client_list_call(c, &k, &req.base, out, err);
}
