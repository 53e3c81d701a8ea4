// test_timers.c - the engine's deadline min-heap: ordering, pop_due against
// "now", the empty heap, and many random deadlines coming out sorted.
#include "../../server/timers.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

// ---- fixture ----

static int
setup(void **state)
{
    struct timers *t = timers_new();
    if (t == NULL)
        return -1;
    *state = t;
    return 0;
}

static int
teardown(void **state)
{
    timers_free(*state);
    return 0;
}

static struct timer
tm(int64_t at, int kind, int64_t id, uint32_t attempt)
{
    return (
        struct timer) { .at = at, .kind = kind, .id = id, .attempt = attempt };
}

// A small deterministic generator, so a failure can be replayed.
static uint64_t
next_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

// ---- tests ----

static void
test_timers_empty_heap_has_no_next_deadline_and_pops_nothing(void **state)
{
    struct timers *t   = *state;
    struct timer   out = tm(-1, -1, -1, 7);
    assert_int_equal(timers_next(t), INT64_MAX);
    assert_int_equal(timers_size(t), 0);
    assert_false(timers_pop_due(t, INT64_MAX, &out));
    // A failed pop leaves the output alone.
    assert_int_equal(out.at, -1);
    assert_int_equal(out.attempt, 7);
}

static void
test_timers_pop_in_deadline_order_keeping_every_field(void **state)
{
    struct timers *t = *state;
    assert_int_equal(timers_add(t, tm(300, TIMER_TIMEOUT, 3, 30)), 0);
    assert_int_equal(timers_add(t, tm(100, TIMER_LEASE, 1, 10)), 0);
    assert_int_equal(timers_add(t, tm(200, TIMER_RUN_AT, 2, 20)), 0);
    assert_int_equal(timers_add(t, tm(150, TIMER_WAITER, 4, 0)), 0);
    assert_int_equal(timers_size(t), 4);
    assert_int_equal(timers_next(t), 100);

    struct timer out;
    int64_t      want_at[] = { 100, 150, 200, 300 };
    int          want_kind[]
        = { TIMER_LEASE, TIMER_WAITER, TIMER_RUN_AT, TIMER_TIMEOUT };
    int64_t  want_id[]  = { 1, 4, 2, 3 };
    uint32_t want_att[] = { 10, 0, 20, 30 };
    for (size_t i = 0; i < 4; i++) {
        assert_true(timers_pop_due(t, 1000, &out));
        assert_int_equal(out.at, want_at[i]);
        assert_int_equal(out.kind, want_kind[i]);
        assert_int_equal(out.id, want_id[i]);
        assert_int_equal(out.attempt, want_att[i]);
    }
    assert_false(timers_pop_due(t, 1000, &out));
    assert_int_equal(timers_next(t), INT64_MAX);
}

static void
test_timers_pop_due_refuses_deadlines_after_now(void **state)
{
    struct timers *t = *state;
    assert_int_equal(timers_add(t, tm(30, TIMER_LEASE, 3, 0)), 0);
    assert_int_equal(timers_add(t, tm(10, TIMER_LEASE, 1, 0)), 0);
    assert_int_equal(timers_add(t, tm(20, TIMER_LEASE, 2, 0)), 0);

    struct timer out;
    assert_false(timers_pop_due(t, 9, &out));
    assert_int_equal(timers_size(t), 3);
    // Due exactly at its deadline.
    assert_true(timers_pop_due(t, 10, &out));
    assert_int_equal(out.id, 1);
    assert_false(timers_pop_due(t, 19, &out));
    assert_int_equal(timers_next(t), 20);
    assert_true(timers_pop_due(t, 25, &out));
    assert_int_equal(out.id, 2);
    assert_false(timers_pop_due(t, 25, &out));
    assert_int_equal(timers_size(t), 1);
}

static void
test_timers_equal_deadlines_all_come_out(void **state)
{
    struct timers *t = *state;
    for (int64_t i = 0; i < 50; i++)
        assert_int_equal(timers_add(t, tm(500, TIMER_RUN_AT, i, 0)), 0);
    uint64_t     seen = 0;
    struct timer out;
    while (timers_pop_due(t, 500, &out)) {
        assert_int_equal(out.at, 500);
        assert_true(out.id >= 0 && out.id < 50);
        assert_false(seen & (1ull << out.id));
        seen |= 1ull << out.id;
    }
    assert_int_equal(seen, (1ull << 50) - 1);
}

static void
test_timers_many_random_deadlines_come_out_sorted(void **state)
{
    struct timers *t = *state;
    enum { N = 20000 };
    uint64_t seed = 42;
    int64_t  sum  = 0;
    for (int64_t i = 0; i < N; i++) {
        int64_t at = (int64_t) (next_rand(&seed) % 100000) - 50000;
        sum += at;
        assert_int_equal(timers_add(t, tm(at, TIMER_LEASE, i, 0)), 0);
    }
    assert_int_equal(timers_size(t), N);

    // Interleave pops with a moving "now": nothing later than now leaves.
    int64_t      last = INT64_MIN, got_sum = 0;
    size_t       n = 0;
    struct timer out;
    for (int64_t now = -50000; now <= 50000; now += 997) {
        while (timers_pop_due(t, now, &out)) {
            assert_true(out.at <= now);
            assert_true(out.at >= last);
            last = out.at;
            got_sum += out.at;
            n++;
        }
        assert_true(timers_next(t) > now);
    }
    while (timers_pop_due(t, INT64_MAX, &out)) {
        assert_true(out.at >= last);
        last = out.at;
        got_sum += out.at;
        n++;
    }
    assert_int_equal(n, N);
    assert_int_equal(got_sum, sum);
    assert_int_equal(timers_size(t), 0);
}

static void
test_timers_heap_refills_after_draining(void **state)
{
    struct timers *t = *state;
    struct timer   out;
    for (int round = 0; round < 3; round++) {
        for (int64_t i = 100; i > 0; i--)
            assert_int_equal(timers_add(t, tm(i, TIMER_LEASE, i, 0)), 0);
        for (int64_t i = 1; i <= 100; i++) {
            assert_true(timers_pop_due(t, 100, &out));
            assert_int_equal(out.id, i);
        }
        assert_false(timers_pop_due(t, INT64_MAX, &out));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_timers_empty_heap_has_no_next_deadline_and_pops_nothing, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_timers_pop_in_deadline_order_keeping_every_field, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_timers_pop_due_refuses_deadlines_after_now, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_timers_equal_deadlines_all_come_out, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_timers_many_random_deadlines_come_out_sorted, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_timers_heap_refills_after_draining, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
