// test_dag.c - workflow graph validation (server/dag.c): chains, diamonds,
// groups and joins, steps listed before their parents, the 10,000-step
// limit, and every error with its exact message: no steps, too many steps,
// invalid name, duplicate name, unknown parent, self-dependency, duplicate
// parent, too many edges, and cycles (named, also behind a non-cycle prefix).
#include "../../server/dag.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define CYCLE_PREFIX "steps form a cycle: "
#define CYCLE_SUFFIX " (each runs after the one before it)"

// ---- helpers ----

// Heap-built steps for the large cases: names "s0".."s<n-1>", each with
// room for its own after list.
struct big {
    struct dag_step *steps;
    char (*names)[24];
    const char ***after; // per step, owned array of borrowed names
    size_t        n;
};

static void
big_init(struct big *b, size_t n)
{
    b->n     = n;
    b->steps = calloc(n, sizeof(*b->steps));
    b->names = calloc(n, sizeof(*b->names));
    b->after = calloc(n, sizeof(*b->after));
    assert_non_null(b->steps);
    assert_non_null(b->names);
    assert_non_null(b->after);
    for (size_t i = 0; i < n; i++) {
        snprintf(b->names[i], sizeof(b->names[i]), "s%zu", i);
        b->steps[i].name = b->names[i];
    }
}

// Step i runs after the n_after steps listed in parents.
static void
big_after(struct big *b, size_t i, const size_t *parents, size_t n_after)
{
    free(b->after[i]);
    b->after[i] = calloc(n_after + 1, sizeof(*b->after[i]));
    assert_non_null(b->after[i]);
    for (size_t k = 0; k < n_after; k++)
        b->after[i][k] = b->names[parents[k]];
    b->steps[i].after   = (const char *const *) b->after[i];
    b->steps[i].n_after = n_after;
}

static void
big_fini(struct big *b)
{
    for (size_t i = 0; b->after != NULL && i < b->n; i++)
        free(b->after[i]);
    free(b->after);
    free(b->names);
    free(b->steps);
}

// Asserts d->order is a permutation of the steps with every parent before
// its children, and that the parents match the steps' after lists.
static void
assert_valid_dag(const struct dag *d, const struct dag_step *steps, size_t n)
{
    size_t *pos   = malloc(n * sizeof(*pos));
    size_t  edges = 0;

    assert_non_null(pos);
    assert_int_equal(d->n, n);
    for (size_t i = 0; i < n; i++)
        pos[i] = SIZE_MAX;
    for (size_t k = 0; k < n; k++) {
        assert_true(d->order[k] < n);
        assert_int_equal(pos[d->order[k]], SIZE_MAX); // listed once
        pos[d->order[k]] = k;
    }
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(d->n_parents[i], steps[i].n_after);
        for (size_t k = 0; k < d->n_parents[i]; k++) {
            size_t p = d->parents[i][k];

            assert_true(p < n);
            assert_string_equal(steps[p].name, steps[i].after[k]);
            assert_true(pos[p] < pos[i]);
        }
        edges += steps[i].n_after;
    }
    assert_int_equal(d->n_edges, edges);
    free(pos);
}

static struct dag *
build_ok(const struct dag_step *steps, size_t n)
{
    struct anvil_error err = { 0 };
    struct dag        *d   = NULL;
    int                rv  = dag_build(steps, n, &d, &err);

    if (rv != ANVIL_OK)
        print_error("dag_build: %s: %s\n", anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
    assert_non_null(d);
    assert_valid_dag(d, steps, n);
    return d;
}

// Asserts dag_build fails with INVALID_ARGUMENT and exactly `want`, and
// hands nothing back.
static void
build_fails(const struct dag_step *steps, size_t n, const char *want)
{
    struct anvil_error err = { 0 };
    struct dag        *d   = NULL;
    int                rv  = dag_build(steps, n, &d, &err);

    assert_int_equal(rv, ANVIL_INVALID_ARGUMENT);
    assert_int_equal(err.code, ANVIL_INVALID_ARGUMENT);
    assert_null(d);
    if (want != NULL)
        assert_string_equal(err.msg, want);
}

static int
step_index(const struct dag_step *steps, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(steps[i].name, name) == 0)
            return (int) i;
    }
    return -1;
}

static bool
runs_after(const struct dag_step *s, const char *parent)
{
    for (size_t k = 0; k < s->n_after; k++) {
        if (strcmp(s->after[k], parent) == 0)
            return true;
    }
    return false;
}

// Asserts msg names one cycle "x -> y -> ... -> x" in which every arrow is
// an edge of steps (y runs after x), made of exactly the n_members steps
// given, each once.
static void
assert_names_cycle(const char *msg, const struct dag_step *steps, size_t n,
    const char *const *members, size_t n_members)
{
    size_t plen = strlen(CYCLE_PREFIX), slen = strlen(CYCLE_SUFFIX);
    size_t mlen = strlen(msg);
    char   path[256];
    char  *names[64];
    size_t k = 0;

    assert_true(mlen > plen + slen);
    assert_memory_equal(msg, CYCLE_PREFIX, plen);
    assert_string_equal(msg + mlen - slen, CYCLE_SUFFIX);
    snprintf(
        path, sizeof(path), "%.*s", (int) (mlen - plen - slen), msg + plen);
    for (char *p = path; p != NULL && k < 64;) {
        char *arrow = strstr(p, " -> ");

        if (arrow != NULL)
            *arrow = '\0';
        names[k++] = p;
        p          = arrow != NULL ? arrow + 4 : NULL;
    }
    assert_int_equal(k, n_members + 1);
    assert_string_equal(names[0], names[k - 1]);
    for (size_t i = 0; i + 1 < k; i++) {
        int child = step_index(steps, n, names[i + 1]);

        assert_true(child >= 0);
        assert_true(runs_after(&steps[child], names[i]));
    }
    for (size_t m = 0; m < n_members; m++) {
        int seen = 0;

        for (size_t i = 0; i + 1 < k; i++)
            seen += strcmp(names[i], members[m]) == 0;
        assert_int_equal(seen, 1);
    }
}

static const char *const AFTER_A[]   = { "a" };
static const char *const AFTER_B[]   = { "b" };
static const char *const AFTER_C[]   = { "c" };
static const char *const AFTER_BC[]  = { "b", "c" };
static const char *const AFTER_AA[]  = { "b", "a", "a" };
static const char *const AFTER_ZZ[]  = { "zz" };
static const char *const AFTER_UPA[] = { "A" };

// ---- happy paths ----

static void
test_dag_builds_a_chain_in_order(void **state)
{
    struct dag_step steps[] = {
        { "a", NULL, 0 },
        { "b", AFTER_A, 1 },
        { "c", AFTER_B, 1 },
        { "d", AFTER_C, 1 },
    };
    struct dag *d = build_ok(steps, 4);

    (void) state;
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(d->order[i], i);
    assert_int_equal(d->n_parents[0], 0);
    assert_int_equal(d->parents[3][0], 2);
    assert_int_equal(d->n_edges, 3);
    dag_free(d);
}

static void
test_dag_orders_steps_listed_before_their_parents(void **state)
{
    // d, c, b, a in submission order; the chain runs a, b, c, d.
    struct dag_step steps[] = {
        { "d", AFTER_C, 1 },
        { "c", AFTER_B, 1 },
        { "b", AFTER_A, 1 },
        { "a", NULL, 0 },
    };
    struct dag *d = build_ok(steps, 4);

    (void) state;
    assert_int_equal(d->order[0], 3);
    assert_int_equal(d->order[3], 0);
    dag_free(d);
}

static void
test_dag_builds_a_diamond(void **state)
{
    struct dag_step steps[] = {
        { "a", NULL, 0 },
        { "b", AFTER_A, 1 },
        { "c", AFTER_A, 1 },
        { "d", AFTER_BC, 2 },
    };
    struct dag *d = build_ok(steps, 4);

    (void) state;
    assert_int_equal(d->n_parents[3], 2);
    assert_int_equal(d->parents[3][0], 1);
    assert_int_equal(d->parents[3][1], 2);
    assert_int_equal(d->order[0], 0);
    assert_int_equal(d->order[3], 3);
    assert_int_equal(d->n_edges, 4);
    dag_free(d);
}

static void
test_dag_builds_a_group_with_a_join(void **state)
{
    struct big  b;
    size_t      root = 0, members[20];
    struct dag *d;

    (void) state;
    big_init(&b, 22); // s0 root, s1..s20 the group, s21 the join
    for (size_t i = 1; i <= 20; i++) {
        big_after(&b, i, &root, 1);
        members[i - 1] = i;
    }
    big_after(&b, 21, members, 20);
    d = build_ok(b.steps, b.n);
    assert_int_equal(d->n_edges, 40);
    assert_int_equal(d->order[0], 0);
    assert_int_equal(d->order[21], 21);
    assert_int_equal(d->n_parents[21], 20);
    dag_free(d);
    big_fini(&b);
}

static void
test_dag_builds_independent_steps_and_one_step(void **state)
{
    struct dag_step one[]   = { { "only", NULL, 0 } };
    struct dag_step three[] = {
        { "x", NULL, 0 },
        { "y", NULL, 0 },
        { "z", NULL, 0 },
    };
    struct dag *d = build_ok(one, 1);

    (void) state;
    assert_int_equal(d->n_edges, 0);
    dag_free(d);
    d = build_ok(three, 3);
    assert_int_equal(d->n_edges, 0);
    dag_free(d);
}

static void
test_dag_accepts_names_of_every_allowed_character_and_length(void **state)
{
    char            longest[129];
    const char     *after_long[] = { longest };
    struct dag_step steps[]      = {
             { "A-Za_z.0-9", NULL, 0 },
             { longest, NULL, 0 },
             { "x", after_long, 1 },
    };
    struct dag *d;

    (void) state;
    memset(longest, 'n', 128);
    longest[128] = '\0';
    d            = build_ok(steps, 3);
    dag_free(d);
}

static void
test_dag_builds_a_chain_of_ten_thousand_steps(void **state)
{
    struct big  b;
    struct dag *d;

    (void) state;
    big_init(&b, DAG_MAX_STEPS);
    // Listed children first, so the order has to be computed.
    for (size_t i = 0; i + 1 < b.n; i++) {
        size_t parent = i + 1;

        big_after(&b, i, &parent, 1);
    }
    d = build_ok(b.steps, b.n);
    assert_int_equal(d->order[0], DAG_MAX_STEPS - 1);
    assert_int_equal(d->order[DAG_MAX_STEPS - 1], 0);
    assert_int_equal(d->n_edges, DAG_MAX_STEPS - 1);
    dag_free(d);
    big_fini(&b);
}

static void
test_dag_builds_a_fan_of_ten_thousand_steps(void **state)
{
    struct big  b;
    size_t      root = 0;
    struct dag *d;

    (void) state;
    big_init(&b, DAG_MAX_STEPS);
    for (size_t i = 1; i < b.n; i++)
        big_after(&b, i, &root, 1);
    d = build_ok(b.steps, b.n);
    assert_int_equal(d->order[0], 0);
    dag_free(d);
    big_fini(&b);
}

// Steps 100..1099 each run after the 100 steps before them: exactly
// DAG_MAX_EDGES edges.
static void
build_edge_band(struct big *b, size_t extra)
{
    size_t parents[101];

    big_init(b, 1100 + extra);
    for (size_t i = 100; i < 1100; i++) {
        for (size_t k = 0; k < 100; k++)
            parents[k] = i - 100 + k;
        big_after(b, i, parents, 100);
    }
    for (size_t i = 1100; i < 1100 + extra; i++) {
        parents[0] = 0;
        big_after(b, i, parents, 1);
    }
}

static void
test_dag_accepts_exactly_the_edge_limit(void **state)
{
    struct big  b;
    struct dag *d;

    (void) state;
    build_edge_band(&b, 0);
    d = build_ok(b.steps, b.n);
    assert_int_equal(d->n_edges, DAG_MAX_EDGES);
    dag_free(d);
    big_fini(&b);
}

// ---- errors ----

static void
test_dag_rejects_no_steps(void **state)
{
    struct dag_step one[] = { { "a", NULL, 0 } };

    (void) state;
    build_fails(one, 0, "a workflow needs at least one step");
    build_fails(NULL, 0, "a workflow needs at least one step");
}

static void
test_dag_rejects_more_than_ten_thousand_steps(void **state)
{
    struct big b;

    (void) state;
    big_init(&b, DAG_MAX_STEPS + 1);
    build_fails(
        b.steps, b.n, "workflow has 10001 steps, over the limit of 10000");
    big_fini(&b);
}

static void
test_dag_rejects_invalid_step_names(void **state)
{
    char            too_long[130];
    struct dag_step bad[]   = { { "a", NULL, 0 }, { "bad name!", NULL, 0 } };
    struct dag_step empty[] = { { "", NULL, 0 } };
    struct dag_step slash[] = { { "a/b", NULL, 0 } };
    struct dag_step longer[]
        = { { "a", NULL, 0 }, { "b", NULL, 0 }, { too_long, NULL, 0 } };
    char want[256];

    (void) state;
    build_fails(bad, 2,
        "step 2: name 'bad name!' is not a valid name: use 1 to 128 of "
        "A-Z a-z 0-9 _ . -");
    build_fails(empty, 1,
        "step 1: name '' is not a valid name: use 1 to 128 of A-Z a-z 0-9 "
        "_ . -");
    build_fails(slash, 1,
        "step 1: name 'a/b' is not a valid name: use 1 to 128 of A-Z a-z "
        "0-9 _ . -");
    memset(too_long, 'x', 129);
    too_long[129] = '\0';
    // The name is cut to 64 characters in the message.
    snprintf(want, sizeof(want),
        "step 3: name '%.64s' is not a valid name: use 1 to 128 of A-Z a-z "
        "0-9 _ . -",
        too_long);
    build_fails(longer, 3, want);
}

static void
test_dag_rejects_a_duplicate_step_name(void **state)
{
    struct dag_step steps[] = {
        { "a", NULL, 0 },
        { "b", AFTER_A, 1 },
        { "c", NULL, 0 },
        { "b", NULL, 0 },
    };

    (void) state;
    build_fails(steps, 4, "step name 'b' is used twice (steps 2 and 4)");
}

static void
test_dag_rejects_an_unknown_parent(void **state)
{
    struct dag_step steps[] = {
        { "a", NULL, 0 },
        { "b", AFTER_ZZ, 1 },
    };
    struct dag_step upper[] = {
        { "a", NULL, 0 },
        { "b", AFTER_UPA, 1 },
    };

    (void) state;
    build_fails(steps, 2,
        "step 'b' runs after 'zz', which is not a step of this workflow");
    // Names are case-sensitive.
    build_fails(upper, 2,
        "step 'b' runs after 'A', which is not a step of this workflow");
}

static void
test_dag_rejects_a_step_after_itself(void **state)
{
    struct dag_step steps[] = {
        { "a", NULL, 0 },
        { "b", AFTER_B, 1 },
    };

    (void) state;
    build_fails(steps, 2, "step 'b' runs after itself");
}

static void
test_dag_rejects_a_parent_named_twice(void **state)
{
    struct dag_step steps[] = {
        { "a", NULL, 0 },
        { "b", NULL, 0 },
        { "c", AFTER_AA, 3 },
    };

    (void) state;
    build_fails(steps, 3, "step 'c' names 'a' twice in after");
}

static void
test_dag_rejects_one_edge_over_the_limit(void **state)
{
    struct big b;

    (void) state;
    build_edge_band(&b, 1);
    build_fails(b.steps, b.n, "workflow has more than 100000 `after` edges");
    big_fini(&b);
}

static void
test_dag_names_a_three_step_cycle(void **state)
{
    // a after c, b after a, c after b.
    struct dag_step steps[] = {
        { "a", AFTER_C, 1 },
        { "b", AFTER_A, 1 },
        { "c", AFTER_B, 1 },
    };
    const char *const  members[] = { "a", "b", "c" };
    struct anvil_error err       = { 0 };
    struct dag        *d         = NULL;

    (void) state;
    assert_int_equal(dag_build(steps, 3, &d, &err), ANVIL_INVALID_ARGUMENT);
    assert_null(d);
    assert_names_cycle(err.msg, steps, 3, members, 3);
    // Today's walk starts at the first step left unordered ("a") and
    // prints parent to child.
    build_fails(steps, 3, CYCLE_PREFIX "b -> c -> a -> b" CYCLE_SUFFIX);
}

static void
test_dag_names_a_two_step_cycle(void **state)
{
    struct dag_step steps[] = {
        { "root", NULL, 0 },
        { "a", AFTER_B, 1 },
        { "b", AFTER_A, 1 },
    };
    const char *const  members[] = { "a", "b" };
    struct anvil_error err       = { 0 };
    struct dag        *d         = NULL;

    (void) state;
    assert_int_equal(dag_build(steps, 3, &d, &err), ANVIL_INVALID_ARGUMENT);
    assert_null(d);
    assert_names_cycle(err.msg, steps, 3, members, 2);
}

// z runs after y, y after a, and a, b, c form a cycle: z and y cannot be
// ordered either, but they are not part of the cycle the message names.
static void
test_dag_names_only_the_cycle_behind_a_non_cycle_prefix(void **state)
{
    static const char *const after_y[]    = { "y" };
    static const char *const after_a_ok[] = { "a", "ok" };
    struct dag_step          steps[]      = {
                      { "z", after_y, 1 },
                      { "y", AFTER_A, 1 },
                      { "ok", NULL, 0 },
                      { "a", AFTER_C, 1 },
                      { "b", after_a_ok, 2 },
                      { "c", AFTER_B, 1 },
    };
    const char *const  members[] = { "a", "b", "c" };
    struct anvil_error err       = { 0 };
    struct dag        *d         = NULL;

    (void) state;
    assert_int_equal(dag_build(steps, 6, &d, &err), ANVIL_INVALID_ARGUMENT);
    assert_null(d);
    assert_names_cycle(err.msg, steps, 6, members, 3);
}

// A cycle closed by the last step of a long valid chain: 9,999 steps can
// be ordered up to the one that loops back.
static void
test_dag_finds_a_cycle_through_ten_thousand_steps(void **state)
{
    struct big         b;
    struct anvil_error err = { 0 };
    struct dag        *d   = NULL;

    (void) state;
    big_init(&b, DAG_MAX_STEPS);
    for (size_t i = 0; i < b.n; i++) {
        size_t parent = (i + b.n - 1) % b.n; // s0 runs after s9999

        big_after(&b, i, &parent, 1);
    }
    assert_int_equal(dag_build(b.steps, b.n, &d, &err), ANVIL_INVALID_ARGUMENT);
    assert_null(d);
    // Too long to print whole; the message still says what it is.
    assert_memory_equal(err.msg, CYCLE_PREFIX, strlen(CYCLE_PREFIX));
    big_fini(&b);
}

static void
test_dag_free_accepts_null(void **state)
{
    (void) state;
    dag_free(NULL);
    assert_true(true);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dag_builds_a_chain_in_order),
        cmocka_unit_test(test_dag_orders_steps_listed_before_their_parents),
        cmocka_unit_test(test_dag_builds_a_diamond),
        cmocka_unit_test(test_dag_builds_a_group_with_a_join),
        cmocka_unit_test(test_dag_builds_independent_steps_and_one_step),
        cmocka_unit_test(
            test_dag_accepts_names_of_every_allowed_character_and_length),
        cmocka_unit_test(test_dag_builds_a_chain_of_ten_thousand_steps),
        cmocka_unit_test(test_dag_builds_a_fan_of_ten_thousand_steps),
        cmocka_unit_test(test_dag_accepts_exactly_the_edge_limit),
        cmocka_unit_test(test_dag_rejects_no_steps),
        cmocka_unit_test(test_dag_rejects_more_than_ten_thousand_steps),
        cmocka_unit_test(test_dag_rejects_invalid_step_names),
        cmocka_unit_test(test_dag_rejects_a_duplicate_step_name),
        cmocka_unit_test(test_dag_rejects_an_unknown_parent),
        cmocka_unit_test(test_dag_rejects_a_step_after_itself),
        cmocka_unit_test(test_dag_rejects_a_parent_named_twice),
        cmocka_unit_test(test_dag_rejects_one_edge_over_the_limit),
        cmocka_unit_test(test_dag_names_a_three_step_cycle),
        cmocka_unit_test(test_dag_names_a_two_step_cycle),
        cmocka_unit_test(
            test_dag_names_only_the_cycle_behind_a_non_cycle_prefix),
        cmocka_unit_test(test_dag_finds_a_cycle_through_ten_thousand_steps),
        cmocka_unit_test(test_dag_free_accepts_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
