// tokens.c - API token commands on the engine thread: create (the secret
// is made here, shown once in the reply, and only its hash is stored),
// list, revoke. The auth table the rpc threads check follows once the
// batch has committed (tokens_committed), never before.
#include "auth.h"
#include "engine_impl.h"
#include "util/error.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

static int
one_token(struct engine *e, struct cmd *c, int64_t id)
{
    struct store_token *all;
    size_t              n;
    int                 rc = store_token_list(e->st, &all, &n, &c->err);
    if (rc != ANVIL_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (all[i].id != id)
            continue;
        c->u.token.tokens = malloc(sizeof(*c->u.token.tokens));
        if (c->u.token.tokens == NULL)
            break;
        c->u.token.tokens[0] = all[i];
        c->u.token.n         = 1;
        all[i].name          = NULL; // moved
        break;
    }
    store_tokens_free(all, n);
    if (c->u.token.n == 0)
        return av_error_set(&c->err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    return ANVIL_OK;
}

int
tokens_create(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_token *t = &c->u.token;
    int64_t           id;
    if (auth_token_new(t->secret, sizeof(t->secret), t->hash) != 0)
        return av_error_set(
            &c->err, ANVIL_INTERNAL, "cannot read random bytes for a token");
    int64_t expires   = t->expires_in > 0 ? b->now + t->expires_in : 0;
    int     rc        = store_token_insert(e->st, t->name, t->role, t->hash,
                   sizeof(t->hash), b->now, expires, &id, &c->err);
    t->id             = id;
    t->expires_at     = expires;
    b->tokens_changed = true;
    if (rc == ANVIL_OK)
        rc = one_token(e, c, id);
    if (rc == ANVIL_OK)
        AV_INFO("token.created", "token=t%lld role=%s name=%s", (long long) id,
            auth_role_name(t->role), t->name);
    return rc;
}

int
tokens_revoke(struct engine *e, struct batch *b, struct cmd *c)
{
    int64_t id = c->u.token.id;
    int     rc = store_token_revoke(e->st, id, b->now, &c->err);
    if (rc == ANVIL_NOT_FOUND)
        return av_error_set(&c->err, ANVIL_NOT_FOUND,
            "no active token with id t%lld", (long long) id);
    c->u.token.at     = b->now;
    b->tokens_changed = true;
    if (rc == ANVIL_OK)
        rc = one_token(e, c, id);
    if (rc == ANVIL_OK)
        AV_INFO("token.revoked", "token=t%lld", (long long) id);
    return rc;
}

void
tokens_committed(struct engine *e, const struct cmd *list)
{
    for (const struct cmd *c = list; c != NULL && e->cfg.auth; c = c->next) {
        const struct cmd_token *t = &c->u.token;
        if (c->err.code != ANVIL_OK)
            continue;
        if (c->kind == CMD_TOKEN_REVOKE)
            auth_revoke(e->cfg.auth, t->id, t->at);
        if (c->kind == CMD_TOKEN_CREATE
            && auth_put(e->cfg.auth, t->hash, t->id, t->role, t->expires_at, 0))
            AV_ERR("token.oom",
                "token=t%lld msg=\"out of memory: the token works after a "
                "restart\"",
                (long long) t->id);
    }
}

int
tokens_list(struct engine *e, struct batch *b, struct cmd *c)
{
    (void) b;
    return store_token_list(e->st, &c->u.token.tokens, &c->u.token.n, &c->err);
}
