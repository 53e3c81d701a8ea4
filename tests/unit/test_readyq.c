// test_readyq.c - the ready queues keyed by (queue, type): priority order,
// FIFO within a priority, popping only the pairs asked for, growth past many
// keys and many entries, empty pops, and paused queues.
#include "../../server/readyq.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

// ---- fixture ----

static int
setup(void **state)
{
    struct readyq *q = readyq_new();
    if (q == NULL)
        return -1;
    *state = q;
    return 0;
}

static int
teardown(void **state)
{
    readyq_free(*state);
    return 0;
}

static const char *const Q_DEFAULT[] = { "default" };

// Pops one job from queue "default" over the given types; -1 if none.
static int64_t
pop1(struct readyq *q, const char *const *types, size_t nt)
{
    int64_t id = -1;
    if (!readyq_pop(q, Q_DEFAULT, 1, types, nt, &id))
        return -1;
    return id;
}

static uint64_t
next_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

// ---- tests ----

static void
test_readyq_pops_nothing_when_empty(void **state)
{
    struct readyq    *q       = *state;
    const char *const types[] = { "a" };
    int64_t           id      = 77;
    assert_int_equal(readyq_size(q), 0);
    assert_false(readyq_pop(q, Q_DEFAULT, 1, types, 1, &id));
    assert_int_equal(id, 77);
    assert_false(readyq_any(q, Q_DEFAULT, 1, types, 1));

    // Drained: the key exists now but holds nothing.
    assert_int_equal(readyq_push(q, "default", "a", 5, 0), 0);
    assert_int_equal(pop1(q, types, 1), 5);
    assert_int_equal(pop1(q, types, 1), -1);
    assert_false(readyq_any(q, Q_DEFAULT, 1, types, 1));
    assert_int_equal(readyq_size(q), 0);
}

static void
test_readyq_pops_nothing_for_empty_queue_or_type_lists(void **state)
{
    struct readyq    *q       = *state;
    const char *const types[] = { "a" };
    int64_t           id      = 77;
    assert_int_equal(readyq_push(q, "default", "a", 1, 0), 0);
    assert_false(readyq_pop(q, Q_DEFAULT, 1, types, 0, &id));
    assert_false(readyq_pop(q, Q_DEFAULT, 0, types, 1, &id));
    assert_false(readyq_any(q, Q_DEFAULT, 0, types, 1));
    assert_int_equal(id, 77);
    assert_int_equal(readyq_size(q), 1);
}

static void
test_readyq_pops_higher_priority_first(void **state)
{
    struct readyq    *q       = *state;
    const char *const types[] = { "a" };
    int32_t           prio[]  = { 1, 5, 3, 5, -2, 0, INT32_MAX, INT32_MIN };
    for (int64_t i = 0; i < 8; i++)
        assert_int_equal(readyq_push(q, "default", "a", i + 1, prio[i]), 0);
    assert_int_equal(readyq_size(q), 8);
    int64_t want[] = { 7, 2, 4, 3, 1, 6, 5, 8 };
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(pop1(q, types, 1), want[i]);
    assert_int_equal(pop1(q, types, 1), -1);
}

static void
test_readyq_keeps_fifo_order_within_a_priority(void **state)
{
    struct readyq    *q       = *state;
    const char *const types[] = { "a" };
    // Two interleaved priorities; each must come out in push order.
    for (int64_t i = 1; i <= 500; i++)
        assert_int_equal(
            readyq_push(q, "default", "a", i, (int32_t) (i % 2)), 0);
    for (int64_t i = 1; i <= 500; i += 2)
        assert_int_equal(pop1(q, types, 1), i);
    for (int64_t i = 2; i <= 500; i += 2)
        assert_int_equal(pop1(q, types, 1), i);
    assert_int_equal(pop1(q, types, 1), -1);
}

static void
test_readyq_keeps_fifo_order_across_keys(void **state)
{
    struct readyq    *q       = *state;
    const char *const types[] = { "b", "a" };
    assert_int_equal(readyq_push(q, "default", "a", 1, 0), 0);
    assert_int_equal(readyq_push(q, "default", "b", 2, 0), 0);
    assert_int_equal(readyq_push(q, "default", "a", 3, 0), 0);
    assert_int_equal(readyq_push(q, "default", "b", 4, 0), 0);
    for (int64_t i = 1; i <= 4; i++)
        assert_int_equal(pop1(q, types, 2), i);
}

static void
test_readyq_pops_only_the_requested_queue_and_type_pairs(void **state)
{
    struct readyq *q = *state;
    // id = 10 * queue + type, all at one priority except (q3, a).
    const char *qs[] = { "q1", "q2", "q3" };
    const char *ts[] = { "a", "b", "c" };
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            int32_t prio = (i == 2 && j == 0) ? 9 : 0;
            assert_int_equal(
                readyq_push(q, qs[i], ts[j], 10 * (i + 1) + j + 1, prio), 0);
        }
    }
    assert_int_equal(readyq_size(q), 9);

    const char *const q1[] = { "q1" };
    const char *const ta[] = { "a" };
    int64_t           id   = -1;
    assert_true(readyq_pop(q, q1, 1, ta, 1, &id));
    assert_int_equal(id, 11);
    assert_false(readyq_pop(q, q1, 1, ta, 1, &id));

    // (q3, a) has the highest priority but is not asked for.
    const char *const q12[] = { "q1", "q2" };
    const char *const tbc[] = { "b", "c" };
    int64_t           got[4];
    for (size_t i = 0; i < 4; i++)
        assert_true(readyq_pop(q, q12, 2, tbc, 2, &got[i]));
    assert_false(readyq_pop(q, q12, 2, tbc, 2, &id));
    // FIFO in push order across the four keys.
    int64_t want[] = { 12, 13, 22, 23 };
    assert_memory_equal(got, want, sizeof(want));

    // Unknown names find nothing and change nothing.
    const char *const qx[] = { "nope" };
    assert_false(readyq_pop(q, qx, 1, ta, 1, &id));
    assert_false(readyq_any(q, qx, 1, ta, 1));
    assert_int_equal(readyq_size(q), 4);

    const char *const q23[] = { "q2", "q3" };
    assert_true(readyq_pop(q, q23, 2, ta, 1, &id));
    assert_int_equal(id, 31); // priority 9 beats (q2, a)
    assert_true(readyq_pop(q, q23, 2, ta, 1, &id));
    assert_int_equal(id, 21);
    assert_int_equal(readyq_size(q), 2); // (q3, b) and (q3, c) remain
}

static void
test_readyq_any_reports_without_removing(void **state)
{
    struct readyq    *q    = *state;
    const char *const ta[] = { "a" };
    const char *const tb[] = { "b" };
    assert_int_equal(readyq_push(q, "default", "a", 1, 0), 0);
    assert_true(readyq_any(q, Q_DEFAULT, 1, ta, 1));
    assert_true(readyq_any(q, Q_DEFAULT, 1, ta, 1));
    assert_false(readyq_any(q, Q_DEFAULT, 1, tb, 1));
    assert_int_equal(readyq_size(q), 1);
    assert_int_equal(pop1(q, ta, 1), 1);
    assert_false(readyq_any(q, Q_DEFAULT, 1, ta, 1));
}

static void
test_readyq_does_not_mix_keys_that_concatenate_alike(void **state)
{
    struct readyq *q = *state;
    // "ab" + "c" and "a" + "bc" must be different keys.
    assert_int_equal(readyq_push(q, "ab", "c", 1, 0), 0);
    assert_int_equal(readyq_push(q, "a", "bc", 2, 0), 0);
    const char *const qa[] = { "a" }, *const tbc[] = { "bc" };
    const char *const tc[] = { "c" };
    int64_t           id   = -1;
    assert_false(readyq_pop(q, qa, 1, tc, 1, &id));
    assert_true(readyq_pop(q, qa, 1, tbc, 1, &id));
    assert_int_equal(id, 2);
}

static void
test_readyq_handles_longest_names(void **state)
{
    struct readyq *q = *state;
    char           qa[129], qb[129], ta[129], tb[129];
    memset(qa, 'q', 128);
    memset(qb, 'q', 128);
    memset(ta, 't', 128);
    memset(tb, 't', 128);
    qa[128] = qb[128] = ta[128] = tb[128] = '\0';
    qb[127]                               = 'Q';
    tb[127]                               = 'T';
    assert_int_equal(readyq_push(q, qa, ta, 1, 0), 0);
    assert_int_equal(readyq_push(q, qa, tb, 2, 0), 0);
    assert_int_equal(readyq_push(q, qb, ta, 3, 0), 0);
    assert_int_equal(readyq_push(q, qb, tb, 4, 0), 0);
    const char *const qs[] = { qb };
    const char *const ts[] = { tb };
    int64_t           id   = -1;
    assert_true(readyq_pop(q, qs, 1, ts, 1, &id));
    assert_int_equal(id, 4);
    assert_false(readyq_pop(q, qs, 1, ts, 1, &id));
    assert_int_equal(readyq_size(q), 3);
}

static void
test_readyq_grows_past_a_thousand_types(void **state)
{
    struct readyq *q = *state;
    enum { NTYPES = 1000, PER = 3 };
    char names[NTYPES][24];
    for (int i = 0; i < NTYPES; i++)
        snprintf(names[i], sizeof(names[i]), "type-%d", i);
    // Jobs of type i get ids i*PER+1 .. i*PER+PER.
    for (int k = 0; k < PER; k++) {
        for (int i = 0; i < NTYPES; i++)
            assert_int_equal(
                readyq_push(q, "default", names[i], i * PER + k + 1, 0), 0);
    }
    assert_int_equal(readyq_size(q), NTYPES * PER);
    // Reverse order so the table must find keys placed before each grow.
    for (int i = NTYPES - 1; i >= 0; i--) {
        const char *const ts[] = { names[i] };
        for (int k = 0; k < PER; k++)
            assert_int_equal(pop1(q, ts, 1), i * PER + k + 1);
        assert_int_equal(pop1(q, ts, 1), -1);
    }
    assert_int_equal(readyq_size(q), 0);
}

static void
test_readyq_holds_a_hundred_thousand_entries_in_order(void **state)
{
    struct readyq *q = *state;
    enum { N = 100000, NPRIO = 8 };
    const char *const types[] = { "a", "b", "c" };
    uint64_t          seed    = 7;
    // ids are push order; priorities random in 0..7 over three types.
    for (int64_t i = 1; i <= N; i++) {
        int32_t prio = (int32_t) (next_rand(&seed) % NPRIO);
        assert_int_equal(
            readyq_push(q, "default", types[i % 3], i, prio * 1000 + 1), 0);
    }
    assert_int_equal(readyq_size(q), N);

    // Recompute each id's priority to check the pop order.
    int32_t *prio = calloc(N + 1, sizeof(*prio));
    assert_non_null(prio);
    seed = 7;
    for (int64_t i = 1; i <= N; i++)
        prio[i] = (int32_t) (next_rand(&seed) % NPRIO) * 1000 + 1;

    int64_t prev = 0, id;
    size_t  n    = 0;
    while (readyq_pop(q, Q_DEFAULT, 1, types, 3, &id)) {
        assert_true(id >= 1 && id <= N);
        if (prev != 0) {
            assert_true(prio[id] <= prio[prev]);
            if (prio[id] == prio[prev])
                assert_true(id > prev);
        }
        prev = id;
        n++;
    }
    free(prio);
    assert_int_equal(n, N);
    assert_int_equal(readyq_size(q), 0);
}

static void
test_readyq_free_accepts_null_and_a_full_queue(void **state)
{
    (void) state;
    readyq_free(NULL);
    struct readyq *q = readyq_new();
    assert_non_null(q);
    for (int64_t i = 0; i < 1000; i++) {
        char type[16];
        snprintf(type, sizeof(type), "t%d", (int) (i % 40));
        assert_int_equal(readyq_push(q, "default", type, i, 0), 0);
    }
    assert_int_equal(readyq_size(q), 1000);
    readyq_free(q); // LeakSanitizer checks the rest under asan
}

static void
test_readyq_skips_a_paused_queue_until_it_is_resumed(void **state)
{
    struct readyq    *q        = *state;
    const char *const queues[] = { "slow", "default" };
    const char *const types[]  = { "t" };
    int64_t           id;
    assert_int_equal(readyq_push(q, "slow", "t", 1, 9), 0);
    assert_int_equal(readyq_push(q, "default", "t", 2, 0), 0);
    assert_int_equal(readyq_pause(q, "slow", true), 0);
    assert_true(readyq_paused(q, "slow"));
    assert_false(readyq_paused(q, "default"));
    // The higher priority job waits in the paused queue; the other is
    // served.
    assert_true(readyq_pop(q, queues, 2, types, 1, &id));
    assert_int_equal(id, 2);
    assert_false(readyq_any(q, queues, 2, types, 1));
    assert_false(readyq_pop(q, queues, 1, types, 1, &id));
    assert_int_equal(readyq_size(q), 1); // held, not dropped
    assert_int_equal(readyq_pause(q, "slow", false), 0);
    assert_true(readyq_any(q, queues, 1, types, 1));
    assert_true(readyq_pop(q, queues, 2, types, 1, &id));
    assert_int_equal(id, 1);
}

static void
test_readyq_keeps_paused_queues_sorted_once_each(void **state)
{
    struct readyq *q = *state;
    // Queues with no entries may be paused; twice is once.
    const char *const names[] = { "m", "b", "z", "a", "b" };
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(readyq_pause(q, names[i], true), 0);
    assert_int_equal(readyq_paused_count(q), 4);
    assert_string_equal(readyq_paused_name(q, 0), "a");
    assert_string_equal(readyq_paused_name(q, 1), "b");
    assert_string_equal(readyq_paused_name(q, 2), "m");
    assert_string_equal(readyq_paused_name(q, 3), "z");
    assert_null(readyq_paused_name(q, 4));
    assert_int_equal(readyq_pause(q, "m", false), 0);
    assert_int_equal(readyq_pause(q, "never", false), 0); // not paused: OK
    assert_int_equal(readyq_paused_count(q), 3);
    assert_string_equal(readyq_paused_name(q, 2), "z");
    assert_false(readyq_paused(q, "m"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_readyq_pops_nothing_when_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_pops_nothing_for_empty_queue_or_type_lists, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_pops_higher_priority_first, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_keeps_fifo_order_within_a_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_keeps_fifo_order_across_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_pops_only_the_requested_queue_and_type_pairs, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_any_reports_without_removing, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_does_not_mix_keys_that_concatenate_alike, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_handles_longest_names, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_grows_past_a_thousand_types, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_holds_a_hundred_thousand_entries_in_order, setup,
            teardown),
        cmocka_unit_test(test_readyq_free_accepts_null_and_a_full_queue),
        cmocka_unit_test_setup_teardown(
            test_readyq_skips_a_paused_queue_until_it_is_resumed, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_keeps_paused_queues_sorted_once_each, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
