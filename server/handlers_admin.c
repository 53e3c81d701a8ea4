// handlers_admin.c - decode/encode of the token rpcs: CreateToken,
// ListTokens, RevokeToken (admin only; see auth.c).
#include "auth.h"
#include "handlers_impl.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
hadmin_decode_create(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    Anvil__V1__CreateTokenRequest *r
        = (Anvil__V1__CreateTokenRequest *) call->req;
    if (auth_role_name((int) r->role) == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "role %d is not a role: use admin, client, worker or reader",
            (int) r->role);
    if (r->name[0] && handlers_check_name("name", r->name, err))
        return err->code;
    if (r->expires_in_ms < 0 || r->expires_in_ms > MAX_DURATION_MS)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "expires_in_ms must be between 0 (never) and %lld (ten years)",
            (long long) MAX_DURATION_MS);
    call->cmd.u.token.role       = (int) r->role;
    call->cmd.u.token.name       = r->name;
    call->cmd.u.token.expires_in = r->expires_in_ms;
    return ANVIL_OK;
}

int
hadmin_decode_revoke(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    Anvil__V1__RevokeTokenRequest *r
        = (Anvil__V1__RevokeTokenRequest *) call->req;
    const char *s = r->id;
    char       *end;
    long long   v = s[0] == 't' ? strtoll(s + 1, &end, 10) : 0;
    if (v <= 0 || *end != '\0')
        return av_error_set(err, ANVIL_NOT_FOUND,
            "no token with id '%.64s' (token ids look like t3)", s);
    call->cmd.u.token.id = v;
    return ANVIL_OK;
}

struct pb_token {
    Anvil__V1__Token m;
    char             id[24];
};

static void
token_to_pb(const void *from, void *to)
{
    const struct store_token *t = from;
    struct pb_token          *p = to;
    anvil__v1__token__init(&p->m);
    snprintf(p->id, sizeof(p->id), "t%lld", (long long) t->id);
    p->m.id            = p->id;
    p->m.name          = t->name;
    p->m.role          = (Anvil__V1__Role) t->role;
    p->m.created_at_ms = t->created_at;
    p->m.expires_at_ms = t->expires_at;
    p->m.revoked_at_ms = t->revoked_at;
}

union token_reply {
    Anvil__V1__CreateTokenResponse create;
    Anvil__V1__RevokeTokenResponse revoke;
    Anvil__V1__ListTokensResponse  list;
};

int
hadmin_encode(struct call *call, ProtobufCMessage **out, void **s)
{
    struct cmd_token  *c = &call->cmd.u.token;
    union token_reply *r = handlers_alloc(s, 1, sizeof(*r));
    Anvil__V1__Token **t = (Anvil__V1__Token **) handlers_list(s, c->tokens,
        c->n, sizeof(*c->tokens), sizeof(struct pb_token), token_to_pb);
    if (r == NULL || t == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    switch (call->cmd.kind) {
    case CMD_TOKEN_CREATE:
        anvil__v1__create_token_response__init(&r->create);
        r->create.token  = c->n ? t[0] : NULL;
        r->create.secret = c->secret;
        *out             = &r->create.base;
        break;
    case CMD_TOKEN_REVOKE:
        anvil__v1__revoke_token_response__init(&r->revoke);
        r->revoke.token = c->n ? t[0] : NULL;
        *out            = &r->revoke.base;
        break;
    default:
        anvil__v1__list_tokens_response__init(&r->list);
        r->list.n_tokens = c->n;
        r->list.tokens   = t;
        *out             = &r->list.base;
        break;
    }
    return ANVIL_OK;
}
