// topo.c - Kahn's algorithm over a compressed adjacency list, with a
// min-heap of ready node indexes.
#include "topo.h"

#include "heap.h"

#include <stdbool.h>
#include <stdlib.h>

// Groups the edges by `by`: list[first[v] .. first[v + 1]) holds the other
// end of v's edges, in edge order. first has n + 1 entries, list ne.
static void
group(size_t n, const size_t *by, const size_t *other, size_t ne, size_t *first,
    size_t *list)
{
    for (size_t i = 0; i <= n; i++)
        first[i] = 0;
    for (size_t e = 0; e < ne; e++)
        first[by[e] + 1]++;
    for (size_t i = 0; i < n; i++)
        first[i + 1] += first[i];
    // Fill back to front so each node's edges keep their order; first[v]
    // then ends where it began.
    for (size_t e = ne; e-- > 0;)
        list[--first[by[e] + 1]] = other[e];
    for (size_t i = 0; i < n; i++)
        first[i] = first[i + 1];
    first[n] = ne;
}

static bool
lower(const void *a, const void *b)
{
    return *(const size_t *) a < *(const size_t *) b;
}

// Kahn's algorithm proper; pending[v] counts v's parents not yet ordered.
static int
kahn(size_t n, const size_t *first, const size_t *kids, size_t *pending,
    size_t *order, size_t *depth, size_t *done)
{
    struct av_heap ready;
    int            rc = 0;
    av_heap_init(&ready, sizeof(size_t), lower);
    for (size_t i = 0; i < n && rc == 0; i++)
        if (pending[i] == 0)
            rc = av_heap_push(&ready, &i);
    size_t s;
    while (rc == 0 && av_heap_pop(&ready, &s)) {
        order[(*done)++] = s;
        for (size_t e = first[s]; e < first[s + 1] && rc == 0; e++) {
            size_t k = kids[e];
            if (depth != NULL && depth[k] < depth[s] + 1)
                depth[k] = depth[s] + 1;
            if (--pending[k] == 0)
                rc = av_heap_push(&ready, &k);
        }
    }
    av_heap_fini(&ready);
    return rc;
}

int
av_topo_sort(size_t n, const size_t *from, const size_t *to, size_t ne,
    size_t *order, size_t *depth, size_t *n_ordered)
{
    size_t *first   = malloc((n + 1) * sizeof(*first));
    size_t *kids    = malloc((ne + 1) * sizeof(*kids));
    size_t *pending = calloc(n + 1, sizeof(*pending));
    int     rc      = -1;
    *n_ordered      = 0;
    if (first == NULL || kids == NULL || pending == NULL)
        goto out;
    for (size_t e = 0; e < ne; e++)
        pending[to[e]]++;
    for (size_t i = 0; depth != NULL && i < n; i++)
        depth[i] = 0;
    group(n, from, to, ne, first, kids);
    rc = kahn(n, first, kids, pending, order, depth, n_ordered);
    for (size_t i = 0; depth != NULL && i < n; i++)
        if (pending[i] > 0)
            depth[i] = 0;
out:
    free(first);
    free(kids);
    free(pending);
    return rc;
}

// The first unordered parent of v (in edge order), or v if it has none.
static size_t
left_parent(
    const size_t *first, const size_t *parents, const bool *left, size_t v)
{
    for (size_t e = first[v]; e < first[v + 1]; e++)
        if (left[parents[e]])
            return parents[e];
    return v;
}

int
av_topo_cycle(size_t n, const size_t *from, const size_t *to, size_t ne,
    const size_t *order, size_t n_ordered, size_t *cycle, size_t *len)
{
    size_t *first   = malloc((n + 1) * sizeof(*first));
    size_t *parents = malloc((ne + 1) * sizeof(*parents));
    size_t *seen    = calloc(n + 1, sizeof(*seen)); // position + 1 on walk
    size_t *path    = malloc((n + 1) * sizeof(*path));
    bool   *left    = malloc((n + 1) * sizeof(*left));
    size_t  start   = 0;
    int     rc      = -1;
    *len            = 0;
    if (!first || !parents || !seen || !path || !left)
        goto out;
    for (size_t i = 0; i < n; i++)
        left[i] = true;
    for (size_t k = 0; k < n_ordered; k++)
        left[order[k]] = false;
    while (start < n && !left[start])
        start++;
    if (start == n)
        goto out;
    group(n, to, from, ne, first, parents);
    // Every unordered node has an unordered parent (or Kahn's algorithm
    // would have ordered it), so the walk ends on a repeat.
    size_t plen = 0, cur = start, last = start;
    while (seen[cur] == 0) {
        seen[cur]      = ++plen;
        path[plen - 1] = cur;
        last           = cur;
        cur            = left_parent(first, parents, left, cur);
    }
    // path[seen[cur] - 1 .. plen - 1] runs child to parent: reverse it.
    for (size_t i = plen; i-- > seen[cur] - 1;)
        cycle[(*len)++] = path[i];
    cycle[(*len)++] = last;
    rc              = 0;
out:
    free(first);
    free(parents);
    free(seen);
    free(path);
    free(left);
    return rc;
}
