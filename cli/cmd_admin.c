// cmd_admin.c - `anvil workers` (the server's worker registry) and the
// token verbs: `anvil token create|list|revoke` (an admin token is needed).
#include "cli.h"
#include "output.h"

#include <util/clock.h>

// ---- workers

static int
run_workers(struct cli_ctx *x)
{
    struct anvil_worker_status_list *l   = NULL;
    struct anvil_error               err = { 0, "" };
    int rc = anvil_worker_status_list(x->client, &l, &err);
    if (rc != ANVIL_OK)
        return cli_report(x, rc, &err);
    if (x->opts->json)
        rc = cli_print_json(x, output_workers_json(l->workers, l->n));
    else
        output_workers_human(x->out, l->workers, l->n, av_now_ms());
    anvil_worker_status_list_free(l);
    return rc;
}

const struct cli_verb cli_verb_workers = {
    .name     = "workers",
    .synopsis = "",
    .summary  = "list the workers the server has heard from",
    .help     = "A worker is lost when it missed its heartbeats (anvild "
                "--worker-timeout).\nWith --json: {\"workers\": [{\"name\", "
                "\"host\", \"pid\", \"version\", \"types\",\n\"queues\", "
                "\"slots\", \"running\", \"first_seen\", \"last_seen\", "
                "\"state\"}]}\n(state: \"alive\" or \"lost\").\n",
    .flags    = cli_no_flags,
    .run      = run_workers,
};

// ---- token flags

static int
set_role(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    if (anvil_role_parse(value, &o->role) != ANVIL_OK)
        return cli_usage_error(err,
            "--role: unknown role '%s' (admin, client, worker or reader)",
            value);
    return CLI_EXIT_OK;
}

static int
set_expires_in(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    int64_t ms;
    if (av_parse_duration(value, &ms) != 0 || ms <= 0)
        return cli_usage_error(err,
            "--expires-in: '%s' is not a duration (e.g. 90d, 12h, 30m, "
            "45s)",
            value);
    o->expires_in_ms = ms;
    return CLI_EXIT_OK;
}

static int
check_token_create(struct cli_opts *o, struct anvil_error *err)
{
    if (o->role == 0)
        return cli_usage_error(err,
            "token create: --role is required (admin, client, worker or "
            "reader)");
    return CLI_EXIT_OK;
}

// ---- token verbs

static int
run_token_create(struct cli_ctx *x)
{
    const struct cli_opts *o      = x->opts;
    struct anvil_token    *t      = NULL;
    char                  *secret = NULL;
    struct anvil_error     err    = { 0, "" };
    int                    rc     = anvil_token_create(
                               x->client, o->role, o->name, o->expires_in_ms, &t, &secret, &err);
    if (rc != ANVIL_OK)
        return cli_report(x, rc, &err);
    if (o->json) {
        rc = cli_print_json(x, output_token_created_json(t, secret));
    } else {
        static const char *const labels[]
            = { "ID", "Name", "Role", "Expires", "Secret" };
        char expires[48] = "never";
        if (t->expires_at_ms > 0)
            av_format_time(t->expires_at_ms, expires, sizeof(expires));
        const char *values[]
            = { t->id, t->name, anvil_role_name(t->role), expires, secret };
        output_fields(x->out, labels, values, 5);
        fprintf(x->err,
            "anvil: keep the secret now: it is not shown again (only its "
            "hash is stored)\n");
    }
    anvil_free(secret);
    anvil_token_free(t);
    return rc;
}

static int
run_token_list(struct cli_ctx *x)
{
    struct anvil_token_list *l   = NULL;
    struct anvil_error       err = { 0, "" };
    int                      rc  = anvil_token_list(x->client, &l, &err);
    if (rc != ANVIL_OK)
        return cli_report(x, rc, &err);
    if (x->opts->json)
        rc = cli_print_json(
            x, output_tokens_json(l->tokens, l->n, av_now_ms()));
    else
        output_tokens_human(x->out, l->tokens, l->n, av_now_ms());
    anvil_token_list_free(l);
    return rc;
}

static int
run_token_revoke(struct cli_ctx *x)
{
    struct anvil_token *t   = NULL;
    struct anvil_error  err = { 0, "" };
    int rc = anvil_token_revoke(x->client, x->opts->id, &t, &err);
    if (rc != ANVIL_OK)
        return cli_report(x, rc, &err);
    if (x->opts->json)
        rc = cli_print_json(x, output_token_json(t, av_now_ms()));
    else
        fprintf(x->out, "%s revoked\n", t->id);
    anvil_token_free(t);
    return rc;
}

static const struct cli_flag token_create_flags[] = {
    { "--role", "R", set_role },
    { "--name", "N", cli_set_name },
    { "--expires-in", "DURATION", set_expires_in },
    { NULL, NULL, NULL },
};

const struct cli_verb cli_verb_token_create = {
    .name     = "token create",
    .synopsis = "--role R [--name N] [--expires-in DURATION]",
    .summary  = "create a token and print its secret (once)",
    .help     = "Flags:\n"
                "  --role R           admin, client, worker or reader "
                "(docs/security.md)\n"
                "  --name N           a label, [A-Za-z0-9_.-]{1,128}\n"
                "  --expires-in D     lifetime: 90d, 12h, 30m, 45s, 500ms "
                "(default: never)\n"
                "\nPrints the id and the secret; the secret is not shown "
                "again. With --json:\n{\"id\", \"name\", \"role\", "
                "\"secret\", \"expires_at\"}.\n",
    .flags    = token_create_flags,
    .check    = check_token_create,
    .run      = run_token_create,
};

const struct cli_verb cli_verb_token_list = {
    .name     = "token list",
    .synopsis = "",
    .summary  = "list tokens (never their secrets)",
    .help     = "With --json: {\"tokens\": [{\"id\", \"name\", \"role\", "
                "\"created_at\",\n\"expires_at\", \"revoked_at\", "
                "\"state\"}]} (state: active, expired or revoked).\n",
    .flags    = cli_no_flags,
    .run      = run_token_list,
};

const struct cli_verb cli_verb_token_revoke = {
    .name           = "token revoke",
    .positional     = "ID",
    .synopsis       = "",
    .summary        = "revoke a token at once",
    .help           = "NOT_FOUND for an unknown id.\n",
    .flags          = cli_no_flags,
    .set_positional = cli_set_id_arg,
    .run            = run_token_revoke,
};

static const struct cli_verb *const token_verbs[] = {
    &cli_verb_token_create,
    &cli_verb_token_list,
    &cli_verb_token_revoke,
    NULL,
};

const struct cli_verb cli_verb_token = {
    .name     = "token",
    .synopsis = "",
    .summary  = "create, list and revoke API tokens (admin)",
    .help     = "Tokens and roles are described in docs/security.md.\n",
    .flags    = cli_no_flags,
    .subverbs = token_verbs,
};
