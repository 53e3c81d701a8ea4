// dag.c - workflow validation: names are resolved through a hash table and
// the order comes from av_topo_sort(), so validation stays near
// O(steps + edges).
#include "dag.h"

#include "handlers.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/topo.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STEP_NAME 128

static int
index_names(const struct dag_step *steps, size_t n, struct av_hash *t,
    struct anvil_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!handlers_valid_name(steps[i].name))
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "step %zu: name '%.64s' is not a valid name: use 1 to 128 "
                "of A-Z a-z 0-9 _ . -",
                i + 1, steps[i].name);
        size_t first;
        int    rc = av_hash_add(t, steps[i].name, i, &first);
        if (rc < 0)
            return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
        if (rc > 0)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "step name '%s' is used twice (steps %zu and %zu)",
                steps[i].name, first + 1, i + 1);
    }
    return ANVIL_OK;
}

static int
resolve_parents(const struct dag_step *steps, struct dag *d,
    const struct av_hash *t, struct anvil_error *err)
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
            if (!av_hash_get(t, s->after[k], &p))
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

// The message naming one cycle among the steps left unordered, parent to
// child: "a -> b" means b runs after a. A long cycle is shortened in the
// middle: "a -> b -> ... -> a".
static int
cycle_error(const struct dag_step *steps, const size_t *cycle, size_t len,
    struct anvil_error *err)
{
    char   msg[400];
    size_t at = 0, room = sizeof(msg) - MAX_STEP_NAME - 16;
    for (size_t i = 0; i + 1 < len; i++) {
        const char *name = steps[cycle[i]].name;
        if (at + strlen(name) + 4 > room) {
            at += (size_t) snprintf(msg + at, sizeof(msg) - at, "... -> ");
            break;
        }
        at += (size_t) snprintf(msg + at, sizeof(msg) - at, "%s -> ", name);
    }
    snprintf(msg + at, sizeof(msg) - at, "%s", steps[cycle[len - 1]].name);
    return av_error_set(err, ANVIL_INVALID_ARGUMENT,
        "steps form a cycle: %s (each runs after the one before it)", msg);
}

// d->order gets every step after its parents; a cycle is an error naming
// it.
static int
topo_sort(const struct dag_step *steps, struct dag *d, struct anvil_error *err)
{
    size_t *from  = malloc((d->n_edges + 1) * sizeof(*from));
    size_t *to    = malloc((d->n_edges + 1) * sizeof(*to));
    size_t *cycle = malloc((d->n + 1) * sizeof(*cycle));
    size_t  ne = 0, done = 0, len = 0;
    int     rc = ANVIL_OK;
    if (from == NULL || to == NULL || cycle == NULL)
        goto oom;
    for (size_t i = 0; i < d->n; i++) {
        for (size_t k = 0; k < d->n_parents[i]; k++) {
            from[ne] = d->parents[i][k];
            to[ne++] = i;
        }
    }
    if (av_topo_sort(d->n, from, to, ne, d->order, NULL, &done) != 0)
        goto oom;
    if (done < d->n) {
        if (av_topo_cycle(d->n, from, to, ne, d->order, done, cycle, &len) != 0)
            goto oom;
        rc = cycle_error(steps, cycle, len, err);
    }
    goto out;
oom:
    rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
out:
    free(from);
    free(to);
    free(cycle);
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
    struct av_hash t = { 0 };
    struct dag    *d = calloc(1, sizeof(*d));
    int            rc;
    if (d == NULL || av_hash_init(&t, n) != 0) {
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
    av_hash_fini(&t);
    *out = d;
    return ANVIL_OK;
fail:
    av_hash_fini(&t);
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
