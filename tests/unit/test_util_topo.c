// test_util_topo.c - the topological sort of sdk/util/topo.h: parents
// before children, index order among ready nodes, depths, repeated edges,
// and cycles (what is left unordered, and the one cycle named).
#include "util/topo.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MAXN 64

struct graph {
    size_t n, ne;
    size_t from[256], to[256];
};

static void
edge(struct graph *g, size_t parent, size_t child)
{
    g->from[g->ne] = parent;
    g->to[g->ne]   = child;
    g->ne++;
}

static size_t
sort(const struct graph *g, size_t *order, size_t *depth)
{
    size_t done = SIZE_MAX;
    assert_int_equal(
        av_topo_sort(g->n, g->from, g->to, g->ne, order, depth, &done), 0);
    return done;
}

static void
assert_order(const size_t *order, const size_t *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(order[i], want[i]);
}

static void
test_topo_orders_a_chain_listed_backwards(void **state)
{
    (void) state;
    struct graph g = { .n = 4 };
    size_t       order[MAXN], depth[MAXN];
    edge(&g, 3, 2); // 3 -> 2 -> 1 -> 0
    edge(&g, 2, 1);
    edge(&g, 1, 0);
    assert_int_equal(sort(&g, order, depth), 4);
    assert_order(order, (size_t[]) { 3, 2, 1, 0 }, 4);
    assert_int_equal(depth[3], 0);
    assert_int_equal(depth[0], 3);
}

// Nodes with no order between them keep index order, even when a later
// one becomes ready first.
static void
test_topo_takes_the_lowest_ready_index_first(void **state)
{
    (void) state;
    struct graph g = { .n = 5 };
    size_t       order[MAXN];
    edge(&g, 4, 1); // 1 waits for 4; 0, 2, 3, 4 are roots
    assert_int_equal(sort(&g, order, NULL), 5);
    assert_order(order, (size_t[]) { 0, 2, 3, 4, 1 }, 5);
}

static void
test_topo_depth_is_the_longest_chain_above(void **state)
{
    (void) state;
    struct graph g = { .n = 5 };
    size_t       order[MAXN], depth[MAXN];
    edge(&g, 0, 1); // 0 -> 1 -> 2 -> 4 and 0 -> 3 -> 4
    edge(&g, 1, 2);
    edge(&g, 2, 4);
    edge(&g, 0, 3);
    edge(&g, 3, 4);
    assert_int_equal(sort(&g, order, depth), 5);
    assert_order(order, (size_t[]) { 0, 1, 2, 3, 4 }, 5);
    assert_int_equal(depth[4], 3);
    assert_int_equal(depth[3], 1);
}

static void
test_topo_accepts_repeated_edges_and_no_edges(void **state)
{
    (void) state;
    struct graph g = { .n = 3 };
    size_t       order[MAXN];
    assert_int_equal(sort(&g, order, NULL), 3);
    assert_order(order, (size_t[]) { 0, 1, 2 }, 3);
    edge(&g, 2, 0);
    edge(&g, 2, 0);
    assert_int_equal(sort(&g, order, NULL), 3);
    assert_order(order, (size_t[]) { 1, 2, 0 }, 3);
    g.n  = 0;
    g.ne = 0;
    assert_int_equal(sort(&g, order, NULL), 0);
}

// Every edge of a random DAG (edges only from lower to higher labels,
// under a shuffled numbering) points forward in the order.
static void
test_topo_random_dags_put_every_parent_first(void **state)
{
    (void) state;
    uint64_t s = 5;
    for (int round = 0; round < 50; round++) {
        struct graph g = { .n = MAXN };
        size_t       label[MAXN], pos[MAXN], order[MAXN];
        for (size_t i = 0; i < MAXN; i++)
            label[i] = i;
        for (size_t i = MAXN; i-- > 1;) {
            s        = s * 6364136223846793005ull + 1442695040888963407ull;
            size_t j = (size_t) (s >> 33) % (i + 1), t = label[i];
            label[i] = label[j];
            label[j] = t;
        }
        while (g.ne < 200) {
            s        = s * 6364136223846793005ull + 1442695040888963407ull;
            size_t a = (size_t) (s >> 20) % MAXN, b = (size_t) (s >> 40) % MAXN;
            if (label[a] < label[b])
                edge(&g, a, b);
            else if (label[a] > label[b])
                edge(&g, b, a);
        }
        assert_int_equal(sort(&g, order, NULL), MAXN);
        for (size_t i = 0; i < MAXN; i++)
            pos[order[i]] = i;
        for (size_t e = 0; e < g.ne; e++)
            assert_true(pos[g.from[e]] < pos[g.to[e]]);
    }
}

// 0 -> 1 -> 2 -> 0 is a cycle, 3 runs after 2 (blocked, not on it), 4 is
// free. The cycle is named from the lowest unordered node's parent chain.
static void
test_topo_cycle_leaves_nodes_unordered_and_is_named(void **state)
{
    (void) state;
    struct graph g = { .n = 5 };
    size_t       order[MAXN], depth[MAXN], cycle[MAXN + 1], len = 0;
    edge(&g, 0, 1);
    edge(&g, 1, 2);
    edge(&g, 2, 0);
    edge(&g, 2, 3);
    size_t done = sort(&g, order, depth);
    assert_int_equal(done, 1);
    assert_int_equal(order[0], 4);
    assert_int_equal(depth[3], 0);
    assert_int_equal(
        av_topo_cycle(g.n, g.from, g.to, g.ne, order, done, cycle, &len), 0);
    assert_int_equal(len, 4);
    // From 0 the parent walk visits 0, 2, 1 and meets 0 again; the cycle
    // reads back from the last node visited, parent to child.
    assert_order(cycle, (size_t[]) { 1, 2, 0, 1 }, 4);
}

// A node below a cycle starts the walk but is not part of the cycle named.
static void
test_topo_cycle_named_skips_the_nodes_below_it(void **state)
{
    (void) state;
    struct graph g = { .n = 4 };
    size_t       order[MAXN], cycle[MAXN + 1], len = 0;
    edge(&g, 1, 0); // 0 waits on the cycle 1 <-> 2 (3 -> 2 also)
    edge(&g, 2, 1);
    edge(&g, 1, 2);
    edge(&g, 3, 2);
    size_t done = sort(&g, order, NULL);
    assert_int_equal(done, 1);
    assert_int_equal(
        av_topo_cycle(g.n, g.from, g.to, g.ne, order, done, cycle, &len), 0);
    assert_int_equal(len, 3);
    assert_order(cycle, (size_t[]) { 2, 1, 2 }, 3);
}

static void
test_topo_self_edge_is_a_cycle_of_one(void **state)
{
    (void) state;
    struct graph g = { .n = 2 };
    size_t       order[MAXN], cycle[MAXN + 1], len = 0;
    edge(&g, 1, 1);
    size_t done = sort(&g, order, NULL);
    assert_int_equal(done, 1);
    assert_int_equal(
        av_topo_cycle(g.n, g.from, g.to, g.ne, order, done, cycle, &len), 0);
    assert_int_equal(len, 2);
    assert_order(cycle, (size_t[]) { 1, 1 }, 2);
}

static void
test_topo_cycle_refuses_when_everything_was_ordered(void **state)
{
    (void) state;
    struct graph g = { .n = 2 };
    size_t       order[MAXN], cycle[MAXN + 1], len = 9;
    edge(&g, 0, 1);
    size_t done = sort(&g, order, NULL);
    assert_int_equal(done, 2);
    assert_int_equal(
        av_topo_cycle(g.n, g.from, g.to, g.ne, order, done, cycle, &len), -1);
    assert_int_equal(len, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topo_orders_a_chain_listed_backwards),
        cmocka_unit_test(test_topo_takes_the_lowest_ready_index_first),
        cmocka_unit_test(test_topo_depth_is_the_longest_chain_above),
        cmocka_unit_test(test_topo_accepts_repeated_edges_and_no_edges),
        cmocka_unit_test(test_topo_random_dags_put_every_parent_first),
        cmocka_unit_test(test_topo_cycle_leaves_nodes_unordered_and_is_named),
        cmocka_unit_test(test_topo_cycle_named_skips_the_nodes_below_it),
        cmocka_unit_test(test_topo_self_edge_is_a_cycle_of_one),
        cmocka_unit_test(test_topo_cycle_refuses_when_everything_was_ordered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
