// output_admin.c - printing workers and tokens for people and scripts.
#include "output.h"

#include <stdlib.h>
#include <string.h>
#include <util/clock.h>

// ---- Workers

// A JSON array of n strings.
static json_t *
strv_json(char *const *v, size_t n)
{
    json_t *a  = json_array();
    int     rc = a == NULL ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = json_array_append_new(a, output_json_text(v[i]));
    return output_json_done(a, rc);
}

static json_t *
worker_json(const struct anvil_worker_status *w)
{
    json_t *o  = json_object();
    int     rc = o == NULL ? -1 : 0;
    rc |= json_object_set_new(o, "name", output_json_text(w->name));
    rc |= json_object_set_new(o, "host", output_json_text(w->host));
    rc |= json_object_set_new(o, "pid", json_integer(w->pid));
    rc |= json_object_set_new(o, "version", output_json_text(w->version));
    rc |= json_object_set_new(o, "types", strv_json(w->types, w->n_types));
    rc |= json_object_set_new(o, "queues", strv_json(w->queues, w->n_queues));
    rc |= json_object_set_new(o, "slots", json_integer(w->slots));
    rc |= json_object_set_new(o, "running", json_integer(w->running));
    rc |= json_object_set_new(
        o, "first_seen", output_json_time(w->first_seen_ms));
    rc |= json_object_set_new(
        o, "last_seen", output_json_time(w->last_seen_ms));
    rc |= json_object_set_new(
        o, "state", json_string(w->lost ? "lost" : "alive"));
    return output_json_done(o, rc);
}

json_t *
output_workers_json(const struct anvil_worker_status *w, size_t n)
{
    json_t *a  = json_array();
    int     rc = a == NULL ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = json_array_append_new(a, worker_json(&w[i]));
    return output_json_wrap("workers", output_json_done(a, rc));
}

// "a,b,c" of n names, cleaned for a terminal; "-" when n is 0. Caller
// frees; NULL on OOM.
static char *
join(char *const *v, size_t n)
{
    size_t len = 2;
    for (size_t i = 0; i < n; i++)
        len += strlen(v[i]) + 1;
    char *s = malloc(len);
    if (s == NULL)
        return NULL;
    strcpy(s, n == 0 ? "-" : "");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            strcat(s, ",");
        strcat(s, v[i]);
    }
    char *clean = output_text_clean(s, strlen(s));
    free(s);
    return clean;
}

void
output_workers_human(
    FILE *f, const struct anvil_worker_status *w, size_t n, int64_t now_ms)
{
    static const char *const hdr[] = { "NAME", "HOST", "PID", "TYPES", "QUEUES",
        "SLOTS", "RUNNING", "LAST-SEEN", "STATE" };
    if (n == 0) {
        fputs("No workers.\n", f);
        return;
    }
    struct output_table *t = output_table_new(9, hdr);
    if (t == NULL)
        return;
    output_table_align_right(t, 2);
    output_table_align_right(t, 5);
    output_table_align_right(t, 6);
    for (size_t i = 0; i < n; i++) {
        const struct anvil_worker_status *s = &w[i];
        char  pid[24], slots[16], running[16], age[32], seen[48];
        char *types  = join(s->types, s->n_types);
        char *queues = join(s->queues, s->n_queues);
        char *name   = output_text_clean(s->name, strlen(s->name));
        char *host   = output_text_clean(s->host, strlen(s->host));
        snprintf(pid, sizeof(pid), "%lld", (long long) s->pid);
        snprintf(slots, sizeof(slots), "%u", (unsigned) s->slots);
        snprintf(running, sizeof(running), "%u", (unsigned) s->running);
        if (s->last_seen_ms > 0) {
            int64_t d = now_ms - s->last_seen_ms;
            snprintf(seen, sizeof(seen), "%s ago",
                output_duration(d < 0 ? 0 : d, age, sizeof(age)));
        } else {
            snprintf(seen, sizeof(seen), "-");
        }
        const char *row[]
            = { name, host[0] ? host : NULL, s->pid > 0 ? pid : NULL, types,
                  queues, slots, running, seen, s->lost ? "lost" : "alive" };
        output_table_add(t, row);
        free(types);
        free(queues);
        free(name);
        free(host);
    }
    output_table_print(t, f);
    output_table_free(t);
}

// ---- Tokens

const char *
output_token_state(const struct anvil_token *t, int64_t now_ms)
{
    if (t->revoked_at_ms > 0)
        return "revoked";
    if (t->expires_at_ms > 0 && t->expires_at_ms <= now_ms)
        return "expired";
    return "active";
}

json_t *
output_token_json(const struct anvil_token *t, int64_t now_ms)
{
    json_t *o  = json_object();
    int     rc = o == NULL ? -1 : 0;
    rc |= json_object_set_new(o, "id", output_json_text(t->id));
    rc |= json_object_set_new(o, "name", output_json_text(t->name));
    rc |= json_object_set_new(o, "role", json_string(anvil_role_name(t->role)));
    rc |= json_object_set_new(
        o, "created_at", output_json_time(t->created_at_ms));
    rc |= json_object_set_new(
        o, "expires_at", output_json_time(t->expires_at_ms));
    rc |= json_object_set_new(
        o, "revoked_at", output_json_time(t->revoked_at_ms));
    rc |= json_object_set_new(
        o, "state", json_string(output_token_state(t, now_ms)));
    return output_json_done(o, rc);
}

json_t *
output_tokens_json(const struct anvil_token *t, size_t n, int64_t now_ms)
{
    json_t *a  = json_array();
    int     rc = a == NULL ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = json_array_append_new(a, output_token_json(&t[i], now_ms));
    return output_json_wrap("tokens", output_json_done(a, rc));
}

json_t *
output_token_created_json(const struct anvil_token *t, const char *secret)
{
    json_t *o  = json_object();
    int     rc = o == NULL ? -1 : 0;
    rc |= json_object_set_new(o, "id", output_json_text(t->id));
    rc |= json_object_set_new(o, "name", output_json_text(t->name));
    rc |= json_object_set_new(o, "role", json_string(anvil_role_name(t->role)));
    rc |= json_object_set_new(o, "secret", output_json_text(secret));
    rc |= json_object_set_new(
        o, "expires_at", output_json_time(t->expires_at_ms));
    return output_json_done(o, rc);
}

void
output_tokens_human(
    FILE *f, const struct anvil_token *t, size_t n, int64_t now_ms)
{
    static const char *const hdr[]
        = { "ID", "NAME", "ROLE", "CREATED", "EXPIRES", "STATE" };
    if (n == 0) {
        fputs("No tokens.\n", f);
        return;
    }
    struct output_table *tab = output_table_new(6, hdr);
    if (tab == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        char  created[48], expires[48];
        char *id   = output_text_clean(t[i].id, strlen(t[i].id));
        char *name = output_text_clean(t[i].name, strlen(t[i].name));
        av_format_time(t[i].created_at_ms, created, sizeof(created));
        if (t[i].expires_at_ms > 0)
            av_format_time(t[i].expires_at_ms, expires, sizeof(expires));
        else
            snprintf(expires, sizeof(expires), "never");
        const char *row[] = { id, name != NULL && name[0] ? name : NULL,
            anvil_role_name(t[i].role), created, expires,
            output_token_state(&t[i], now_ms) };
        output_table_add(tab, row);
        free(id);
        free(name);
    }
    output_table_print(tab, f);
    output_table_free(tab);
}
