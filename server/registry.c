// registry.c - a small array of workers, searched linearly: a deployment
// has tens of workers, not millions, and each Poll touches one entry.
#include "registry.h"

#include <stdlib.h>
#include <string.h>

#define FORGET_AFTER_MS (3600 * 1000)

struct registry {
    struct registry_entry *w;
    size_t                 n, cap;
    int64_t                lost_after;
};

struct registry *
registry_new(int64_t lost_after_ms)
{
    struct registry *r = calloc(1, sizeof(*r));
    if (r != NULL)
        r->lost_after = lost_after_ms;
    return r;
}

static void
strv_free(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i]);
    free(v);
}

static void
entry_fini(struct registry_entry *e)
{
    free(e->name);
    free(e->host);
    free(e->version);
    strv_free(e->types, e->n_types);
    strv_free(e->queues, e->n_queues);
    memset(e, 0, sizeof(*e));
}

void
registry_free(struct registry *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        entry_fini(&r->w[i]);
    free(r->w);
    free(r);
}

static char **
strv_dup(const char *const *v, size_t n)
{
    char **out = calloc(n + 1, sizeof(*out));
    for (size_t i = 0; out != NULL && i < n; i++) {
        out[i] = strdup(v[i]);
        if (out[i] == NULL) {
            strv_free(out, i);
            return NULL;
        }
    }
    return out;
}

// Copies info's fields into e, replacing what e had.
static int
set_info(struct registry_entry *e, const struct worker_info *info)
{
    struct registry_entry n = { 0 };
    n.host                  = strdup(info->host ? info->host : "");
    n.version               = strdup(info->version ? info->version : "");
    n.types                 = strv_dup(info->types, info->n_types);
    n.queues                = strv_dup(info->queues, info->n_queues);
    if (!n.host || !n.version || !n.types || !n.queues) {
        entry_fini(&n);
        return -1;
    }
    free(e->host);
    free(e->version);
    strv_free(e->types, e->n_types);
    strv_free(e->queues, e->n_queues);
    e->host     = n.host;
    e->version  = n.version;
    e->types    = n.types;
    e->n_types  = info->n_types;
    e->queues   = n.queues;
    e->n_queues = info->n_queues;
    e->pid      = info->pid;
    e->slots    = info->slots;
    return 0;
}

static struct registry_entry *
add(struct registry *r, const char *name, int64_t now)
{
    if (r->n == r->cap) {
        size_t                 cap = r->cap ? r->cap * 2 : 16;
        struct registry_entry *w   = realloc(r->w, cap * sizeof(*w));
        if (w == NULL)
            return NULL;
        r->w   = w;
        r->cap = cap;
    }
    struct registry_entry *e = &r->w[r->n];
    memset(e, 0, sizeof(*e));
    e->name = strdup(name);
    if (e->name == NULL)
        return NULL;
    e->first_seen = now;
    r->n++;
    return e;
}

static bool
is_lost(const struct registry *r, const struct registry_entry *e, int64_t now)
{
    return now - e->last_seen > r->lost_after;
}

int
registry_seen(struct registry *r, const char *name,
    const struct worker_info *info, int64_t now)
{
    struct registry_entry *e = NULL;
    for (size_t i = 0; i < r->n && e == NULL; i++) {
        if (strcmp(r->w[i].name, name) == 0)
            e = &r->w[i];
    }
    bool joined = e == NULL || e->told_lost;
    if (e == NULL && (e = add(r, name, now)) == NULL)
        return -1;
    e->last_seen = now;
    e->told_lost = false;
    if (info != NULL && set_info(e, info) != 0)
        return -1;
    return joined ? 1 : 0;
}

size_t
registry_take_lost(struct registry *r, int64_t now,
    bool (*live)(void *arg, const char *name),
    void (*fn)(void *arg, const char *name), void *arg)
{
    size_t n_live = 0;
    for (size_t i = 0; i < r->n; i++) {
        struct registry_entry *e = &r->w[i];
        if (e->told_lost)
            continue;
        if (!is_lost(r, e, now) || live(arg, e->name)) {
            n_live++;
            continue;
        }
        e->told_lost = true;
        fn(arg, e->name);
    }
    return n_live;
}

static void
forget_old(struct registry *r, int64_t now)
{
    for (size_t i = 0; i < r->n;) {
        if (now - r->w[i].last_seen > FORGET_AFTER_MS) {
            entry_fini(&r->w[i]);
            r->w[i] = r->w[--r->n];
        } else {
            i++;
        }
    }
}

static int
entry_copy(struct registry_entry *dst, const struct registry_entry *src)
{
    *dst                    = (struct registry_entry) { 0 };
    struct worker_info info = {
        .host     = src->host,
        .pid      = src->pid,
        .version  = src->version,
        .types    = (const char *const *) src->types,
        .n_types  = src->n_types,
        .queues   = (const char *const *) src->queues,
        .n_queues = src->n_queues,
        .slots    = src->slots,
    };
    dst->name = strdup(src->name);
    if (dst->name == NULL || set_info(dst, &info) != 0) {
        entry_fini(dst);
        return -1;
    }
    dst->first_seen = src->first_seen;
    dst->last_seen  = src->last_seen;
    return 0;
}

int
registry_list(
    struct registry *r, int64_t now, struct registry_entry **out, size_t *n)
{
    forget_old(r, now);
    struct registry_entry *v = calloc(r->n + 1, sizeof(*v));
    if (v == NULL)
        return -1;
    for (size_t i = 0; i < r->n; i++) {
        if (entry_copy(&v[i], &r->w[i]) != 0) {
            registry_entries_free(v, i);
            return -1;
        }
        v[i].lost = is_lost(r, &r->w[i], now);
    }
    *out = v;
    *n   = r->n;
    return 0;
}

void
registry_entries_free(struct registry_entry *e, size_t n)
{
    for (size_t i = 0; e != NULL && i < n; i++)
        entry_fini(&e[i]);
    free(e);
}

static bool
has(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i], s) == 0)
            return true;
    }
    return false;
}

bool
registry_serves(
    const struct registry *r, const char *queue, const char *type, int64_t now)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct registry_entry *e = &r->w[i];
        if (!is_lost(r, e, now) && has(e->types, e->n_types, type)
            && (e->n_queues == 0 ? strcmp(queue, "default") == 0
                                 : has(e->queues, e->n_queues, queue)))
            return true;
    }
    return false;
}
