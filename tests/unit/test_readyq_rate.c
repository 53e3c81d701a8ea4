// test_readyq_rate.c - the ready queues' rate limits: a token bucket per
// queue that takes skip while it is empty (other queues still served),
// refilled by readyq_clock up to its burst, refunds, the dirty marks the
// engine stores, the time the next token is whole, and removal.
#include "../../server/readyq.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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

static const char *const TYPES[] = { "t" };

// Takes one job from queue (or from both "lim" and "free" when queue is
// NULL); -1 if none.
static int64_t
take(struct readyq *q, const char *queue)
{
    const char *const both[] = { "lim", "free" };
    const char *const one[]  = { queue };
    int64_t           id     = -1;
    const char       *key, *ckey;
    if (!readyq_take(q, queue != NULL ? one : both, queue != NULL ? 1 : 2,
            TYPES, 1, &id, &key, &ckey))
        return -1;
    return id;
}

static void
limit(struct readyq *q, const char *queue, double rate, uint32_t burst,
    double tokens, int64_t at)
{
    struct readyq_rate r = { rate, burst, tokens, at };
    assert_int_equal(readyq_rate_set(q, queue, &r), 0);
}

static void
test_an_empty_bucket_skips_its_queue_and_others_go_on(void **state)
{
    struct readyq *q = *state;
    for (int64_t i = 1; i <= 10; i++)
        assert_int_equal(readyq_push(q, "lim", "t", i, 0), 0);
    for (int64_t i = 101; i <= 103; i++)
        assert_int_equal(readyq_push(q, "free", "t", i, 0), 0);
    limit(q, "lim", 10, 3, 3, 0);
    readyq_clock(q, 0);
    // Three tokens: three of lim's jobs (they came first), then free's.
    assert_int_equal(take(q, NULL), 1);
    assert_int_equal(take(q, NULL), 2);
    assert_int_equal(take(q, NULL), 3);
    assert_int_equal(take(q, NULL), 101);
    const char *const lim[] = { "lim" };
    assert_false(readyq_any(q, lim, 1, TYPES, 1));
    assert_int_equal(take(q, "lim"), -1);
    // 10/s: one token 100 ms later, whole at 100 (next says 101 at most).
    int64_t next = readyq_rate_next(q);
    assert_in_range(next, 100, 101);
    readyq_clock(q, 99);
    assert_int_equal(take(q, "lim"), -1);
    readyq_clock(q, 101);
    assert_int_equal(take(q, "lim"), 4);
    assert_int_equal(take(q, "lim"), -1);
    // A long idle spell fills the bucket to its burst, no more.
    readyq_clock(q, 60000);
    struct readyq_rate r;
    assert_true(readyq_rate_get(q, "lim", &r));
    assert_true(r.tokens == 3);
    assert_int_equal(take(q, "lim"), 5);
    assert_int_equal(take(q, "lim"), 6);
    assert_int_equal(take(q, "lim"), 7);
    assert_int_equal(take(q, "lim"), -1);
    assert_int_equal(readyq_rate_next(q), 60101);
}

static void
test_takes_mark_the_bucket_dirty_and_refunds_give_tokens_back(void **state)
{
    struct readyq *q = *state;
    for (int64_t i = 1; i <= 3; i++)
        assert_int_equal(readyq_push(q, "lim", "t", i, 0), 0);
    limit(q, "lim", 1, 2, 2, 0);
    limit(q, "other", 1, 1, 1, 0);
    readyq_clock(q, 0);
    assert_int_equal(readyq_rate_count(q), 2);
    struct readyq_rate r;
    bool               dirty = true;
    assert_string_equal(readyq_rate_name(q, 0, &r, &dirty), "lim");
    assert_false(dirty);
    assert_int_equal(take(q, "lim"), 1);
    assert_string_equal(readyq_rate_name(q, 0, &r, &dirty), "lim");
    assert_true(dirty);
    assert_true(r.tokens == 1);
    assert_string_equal(readyq_rate_name(q, 1, &r, &dirty), "other");
    assert_false(dirty);
    assert_null(readyq_rate_name(q, 2, &r, &dirty));
    readyq_rate_clean(q);
    assert_string_equal(readyq_rate_name(q, 0, &r, &dirty), "lim");
    assert_false(dirty);
    // A refund by the take's key, then capped at the burst.
    readyq_rate_refund(q, "lim\x1ft");
    readyq_rate_refund(q, "lim");
    readyq_rate_refund(q, "unlimited\x1ft");
    assert_true(readyq_rate_get(q, "lim", &r));
    assert_true(r.tokens == 2);
    assert_string_equal(readyq_rate_name(q, 0, &r, &dirty), "lim");
    assert_true(dirty);
    assert_false(readyq_rate_get(q, "unlimited", &r));
    assert_int_equal(readyq_rate_next(q), INT64_MAX);
}

static void
test_a_removed_limit_serves_at_once_and_limits_stay_sorted(void **state)
{
    struct readyq *q = *state;
    for (int64_t i = 1; i <= 3; i++)
        assert_int_equal(readyq_push(q, "lim", "t", i, 0), 0);
    limit(q, "zeta", 1, 1, 1, 0);
    limit(q, "lim", 1, 1, 0, 0);
    limit(q, "alpha", 1, 1, 1, 0);
    readyq_clock(q, 0);
    assert_int_equal(take(q, "lim"), -1);
    struct readyq_rate r;
    bool               dirty;
    assert_string_equal(readyq_rate_name(q, 0, &r, &dirty), "alpha");
    assert_string_equal(readyq_rate_name(q, 1, &r, &dirty), "lim");
    assert_string_equal(readyq_rate_name(q, 2, &r, &dirty), "zeta");
    // A changed limit replaces the bucket; a removed one serves at once.
    limit(q, "lim", 100, 1, 1, 0);
    assert_int_equal(take(q, "lim"), 1);
    assert_int_equal(take(q, "lim"), -1);
    assert_int_equal(readyq_rate_set(q, "lim", NULL), 0);
    assert_int_equal(readyq_rate_count(q), 2);
    assert_int_equal(take(q, "lim"), 2);
    assert_int_equal(take(q, "lim"), 3);
    // Removing a queue that has no limit changes nothing.
    assert_int_equal(readyq_rate_set(q, "nope", NULL), 0);
    assert_int_equal(readyq_rate_count(q), 2);
    // A clock that goes back refills nothing and takes nothing away.
    readyq_clock(q, 1000);
    readyq_clock(q, 500);
    assert_true(readyq_rate_get(q, "zeta", &r));
    assert_true(r.tokens == 1);
    assert_int_equal(r.at, 1000);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_an_empty_bucket_skips_its_queue_and_others_go_on, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_takes_mark_the_bucket_dirty_and_refunds_give_tokens_back,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_removed_limit_serves_at_once_and_limits_stay_sorted, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
