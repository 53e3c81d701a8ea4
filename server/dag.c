// dag.c - Kahn's algorithm over step indices; names are resolved through
// an open-addressing table so validation stays O(steps + edges).
#include "dag.h"

#include "handlers.h"
#include "util/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STEP_NAME 128

struct names {
    const char **key;
    size_t      *idx;
    size_t       cap; // power of two, > 2 * n
};

static uint64_t
hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char) *s) * 1099511628211ull;
    return h;
}

static size_t *
names_slot(struct names *t, const char *name, bool *found)
{
    size_t i = (size_t) hash(name) & (t->cap - 1);
    while (t->key[i] != NULL && strcmp(t->key[i], name) != 0)
        i = (i + 1) & (t->cap - 1);
    *found = t->key[i] != NULL;
    if (!*found)
        t->key[i] = name;
    return &t->idx[i];
}

static int
names_init(struct names *t, size_t n)
{
    t->cap = 16;
    while (t->cap < 2 * n + 1)
        t->cap *= 2;
    t->key = calloc(t->cap, sizeof(*t->key));
    t->idx = calloc(t->cap, sizeof(*t->idx));
    return t->key && t->idx ? 0 : -1;
}

static void
names_fini(struct names *t)
{
    free(t->key);
    free(t->idx);
}

static int
find(struct names *t, const char *name, size_t *idx)
{
    size_t i = (size_t) hash(name) & (t->cap - 1);
    while (t->key[i] != NULL) {
        if (strcmp(t->key[i], name) == 0) {
            *idx = t->idx[i];
            return 0;
        }
        i = (i + 1) & (t->cap - 1);
    }
    return -1;
}

static int
index_names(const struct dag_step *steps, size_t n, struct names *t,
    struct anvil_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!handlers_valid_name(steps[i].name))
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "step %zu: name '%.64s' is not a valid name: use 1 to 128 "
                "of A-Z a-z 0-9 _ . -",
                i + 1, steps[i].name);
        bool    found;
        size_t *slot = names_slot(t, steps[i].name, &found);
        if (found)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "step name '%s' is used twice (steps %zu and %zu)",
                steps[i].name, *slot + 1, i + 1);
        *slot = i;
    }
    return ANVIL_OK;
}

static int
resolve_parents(const struct dag_step *steps, struct dag *d, struct names *t,
    struct anvil_error *err)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct dag_step *s = &steps[i];
        d->n_edges += s->n_after;
        if (d->n_edges > DAG_MAX_EDGES)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "workflow has more than %d `after` edges", DAG_MAX_EDGES);
        d->parents[i] = calloc(s->n_after + 1, sizeof(size_t));
        if (d->parents[i] == NULL)
            return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
        for (size_t k = 0; k < s->n_after; k++) {
            size_t p;
            if (find(t, s->after[k], &p) != 0)
                return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                    "step '%s' runs after '%.64s', which is not a step of "
                    "this workflow",
                    s->name, s->after[k]);
            if (p == i)
                return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                    "step '%s' runs after itself", s->name);
            for (size_t m = 0; m < k; m++) {
                if (d->parents[i][m] == p)
                    return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                        "step '%s' names '%s' twice in after", s->name,
                        s->after[k]);
            }
            d->parents[i][k] = p;
        }
        d->n_parents[i] = s->n_after;
    }
    return ANVIL_OK;
}

// Names one cycle among the steps Kahn's algorithm could not order
// (left[i] is true for those): walk parent links until a step repeats.
static int
cycle_error(const struct dag_step *steps, const struct dag *d, const bool *left,
    struct anvil_error *err)
{
    size_t  start = 0;
    size_t *seen  = calloc(d->n, sizeof(*seen)); // position + 1 on the walk
    size_t *path  = calloc(d->n + 1, sizeof(*path));
    if (seen == NULL || path == NULL) {
        free(seen);
        free(path);
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "the steps' `after` edges form a cycle");
    }
    while (!left[start])
        start++;
    size_t len = 0, cur = start;
    while (seen[cur] == 0) {
        seen[cur]     = ++len;
        path[len - 1] = cur;
        for (size_t k = 0; k < d->n_parents[cur]; k++) {
            if (left[d->parents[cur][k]]) {
                cur = d->parents[cur][k];
                break;
            }
        }
    }
    // path[seen[cur]-1 .. len-1] is the cycle, child to parent; print it
    // parent to child: "a -> b" means b runs after a.
    // A long cycle is shortened in the middle: "a -> b -> ... -> a".
    char   msg[400];
    size_t at = 0, room = sizeof(msg) - MAX_STEP_NAME - 16;
    for (size_t i = len; i-- > seen[cur] - 1;) {
        const char *name = steps[path[i]].name;
        if (at + strlen(name) + 4 > room) {
            at += (size_t) snprintf(msg + at, sizeof(msg) - at, "... -> ");
            break;
        }
        at += (size_t) snprintf(msg + at, sizeof(msg) - at, "%s -> ", name);
    }
    snprintf(msg + at, sizeof(msg) - at, "%s", steps[path[len - 1]].name);
    free(seen);
    free(path);
    return av_error_set(err, ANVIL_INVALID_ARGUMENT,
        "steps form a cycle: %s (each runs after the one before it)", msg);
}

// Kahn's algorithm: d->order gets every step whose parents come first.
static int
topo_sort(const struct dag_step *steps, struct dag *d, struct anvil_error *err)
{
    size_t *pending = calloc(d->n, sizeof(*pending));
    size_t *nchild  = calloc(d->n + 1, sizeof(*nchild));
    size_t *first   = calloc(d->n + 1, sizeof(*first)); // CSR children
    size_t *child   = calloc(d->n_edges + 1, sizeof(*child));
    bool   *left    = calloc(d->n, sizeof(*left));
    int     rc      = ANVIL_OK;
    if (!pending || !nchild || !first || !child || !left) {
        rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < d->n; i++) {
        pending[i] = d->n_parents[i];
        for (size_t k = 0; k < d->n_parents[i]; k++)
            nchild[d->parents[i][k]]++;
    }
    for (size_t i = 0; i < d->n; i++)
        first[i + 1] = first[i] + nchild[i];
    memset(nchild, 0, (d->n + 1) * sizeof(*nchild));
    for (size_t i = 0; i < d->n; i++) {
        for (size_t k = 0; k < d->n_parents[i]; k++) {
            size_t p                      = d->parents[i][k];
            child[first[p] + nchild[p]++] = i;
        }
    }
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (pending[i] == 0)
            d->order[tail++] = i;
    }
    while (head < tail) {
        size_t p = d->order[head++];
        for (size_t k = first[p]; k < first[p + 1]; k++) {
            if (--pending[child[k]] == 0)
                d->order[tail++] = child[k];
        }
    }
    if (tail < d->n) {
        for (size_t i = 0; i < d->n; i++)
            left[i] = pending[i] > 0;
        rc = cycle_error(steps, d, left, err);
    }
out:
    free(pending);
    free(nchild);
    free(first);
    free(child);
    free(left);
    return rc;
}

int
dag_build(const struct dag_step *steps, size_t n, struct dag **out,
    struct anvil_error *err)
{
    if (n == 0)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "a workflow needs at least one step");
    if (n > DAG_MAX_STEPS)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "workflow has %zu steps, over the limit of %d", n, DAG_MAX_STEPS);
    struct names t = { 0 };
    struct dag  *d = calloc(1, sizeof(*d));
    int          rc;
    if (d == NULL || names_init(&t, n) != 0) {
        rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    d->n         = n;
    d->n_parents = calloc(n, sizeof(*d->n_parents));
    d->parents   = calloc(n, sizeof(*d->parents));
    d->order     = calloc(n, sizeof(*d->order));
    if (!d->n_parents || !d->parents || !d->order) {
        rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    rc = index_names(steps, n, &t, err);
    if (rc == ANVIL_OK)
        rc = resolve_parents(steps, d, &t, err);
    if (rc == ANVIL_OK)
        rc = topo_sort(steps, d, err);
    if (rc != ANVIL_OK)
        goto fail;
    names_fini(&t);
    *out = d;
    return ANVIL_OK;
fail:
    names_fini(&t);
    dag_free(d);
    return rc;
}

void
dag_free(struct dag *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; d->parents != NULL && i < d->n; i++)
        free(d->parents[i]);
    free(d->parents);
    free(d->n_parents);
    free(d->order);
    free(d);
}
