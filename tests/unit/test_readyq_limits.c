// test_readyq_limits.c - concurrency keys in the ready queues: a job whose
// key is at its limit is set aside (and never looked at again by a take),
// released slots bring set-aside jobs back in order, other keys and plain
// jobs are never held up behind a saturated key, the newest job's limit
// applies, rebuilt running counts, keys forgotten once unused, the
// busiest keys and totals Health and the metrics read, releases by key
// id, and one take order for jobs let go and jobs never set aside.
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
    *state = readyq_new();
    return *state == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    readyq_free(*state);
    return 0;
}

static const char *const QS[] = { "q" };
static const char *const TS[] = { "t" };

static void
push(struct readyq *q, int64_t id, int32_t prio, const char *ckey,
    uint32_t limit)
{
    assert_int_equal(readyq_push_key(q, "q", "t", id, prio, ckey, limit), 0);
}

// Takes one job; its id, or -1. *ckey (may be NULL) gets its key.
static int64_t
take(struct readyq *q, const char **ckey)
{
    int64_t     id = -1;
    const char *key, *k = NULL;
    if (!readyq_take(q, QS, 1, TS, 1, &id, &key, &k))
        return -1;
    if (ckey != NULL)
        *ckey = k;
    return id;
}

static void
expect_key(struct readyq *q, const char *ckey, uint32_t running, size_t waiting,
    uint32_t limit)
{
    uint32_t r = 0, l = 0;
    size_t   w = 0;
    assert_true(readyq_key_state(q, ckey, &r, &w, &l));
    assert_int_equal(r, running);
    assert_int_equal(w, waiting);
    assert_int_equal(l, limit);
}

static void
test_readyq_sets_aside_a_job_whose_key_is_at_its_limit(void **state)
{
    struct readyq *q = *state;
    for (int64_t id = 1; id <= 3; id++)
        push(q, id, 0, "k", 2);
    const char *k = NULL;
    assert_int_equal(take(q, &k), 1);
    assert_string_equal(k, "k");
    assert_int_equal(take(q, NULL), 2);
    assert_int_equal(take(q, NULL), -1);
    expect_key(q, "k", 2, 1, 2);
    assert_false(readyq_any(q, QS, 1, TS, 1));
    // Held still: a set-aside job counts in the size.
    assert_int_equal(readyq_size(q), 1);
}

static void
test_readyq_release_brings_a_set_aside_job_back(void **state)
{
    struct readyq *q = *state;
    for (int64_t id = 1; id <= 4; id++)
        push(q, id, 0, "k", 1);
    assert_int_equal(take(q, NULL), 1);
    assert_int_equal(take(q, NULL), -1);
    expect_key(q, "k", 1, 3, 1);
    // One slot frees one job, the first in FIFO order.
    assert_int_equal(readyq_release(q, "k"), 1);
    expect_key(q, "k", 0, 2, 1);
    assert_int_equal(take(q, NULL), 2);
    assert_int_equal(take(q, NULL), -1);
    assert_int_equal(readyq_release(q, "k"), 1);
    assert_int_equal(take(q, NULL), 3);
}

static void
test_readyq_serves_other_keys_behind_a_saturated_one(void **state)
{
    struct readyq *q = *state;
    // Key "hot" holds the head of the queue with 100 high-priority jobs.
    for (int64_t id = 1; id <= 100; id++)
        push(q, id, 9, "hot", 1);
    push(q, 101, 0, "cold", 1);
    assert_int_equal(readyq_push(q, "q", "t", 102, 0), 0);
    assert_int_equal(take(q, NULL), 1);
    assert_int_equal(take(q, NULL), 101);
    assert_int_equal(take(q, NULL), 102);
    assert_int_equal(take(q, NULL), -1);
    // The 99 are set aside once: later takes find nothing at once.
    expect_key(q, "hot", 1, 99, 1);
    push(q, 103, 0, NULL, 0);
    assert_int_equal(take(q, NULL), 103);
    expect_key(q, "hot", 1, 99, 1);
}

static void
test_readyq_set_aside_jobs_keep_their_priority_order(void **state)
{
    struct readyq *q = *state;
    push(q, 1, 0, "k", 1);
    push(q, 2, 0, "k", 1);
    push(q, 3, 5, "k", 1);
    assert_int_equal(take(q, NULL), 3);
    assert_int_equal(take(q, NULL), -1);
    readyq_release(q, "k");
    assert_int_equal(take(q, NULL), 1);
    readyq_release(q, "k");
    assert_int_equal(take(q, NULL), 2);
}

static void
test_readyq_applies_the_newest_jobs_limit(void **state)
{
    struct readyq *q = *state;
    push(q, 1, 0, "k", 1);
    push(q, 2, 0, "k", 1);
    push(q, 3, 0, "k", 1);
    assert_int_equal(take(q, NULL), 1);
    assert_int_equal(take(q, NULL), -1);
    // A newer job raises the limit: set-aside jobs may run at once.
    push(q, 4, 0, "k", 3);
    expect_key(q, "k", 1, 0, 3);
    assert_int_equal(take(q, NULL), 2);
    assert_int_equal(take(q, NULL), 3);
    assert_int_equal(take(q, NULL), -1);
    // An older job (a retry, id 1) does not lower it back.
    push(q, 1, 0, "k", 1);
    expect_key(q, "k", 3, 1, 3);
}

static void
test_readyq_counts_rebuilt_running_jobs(void **state)
{
    struct readyq *q = *state;
    assert_int_equal(readyq_running(q, "k", 2, 1), 0);
    assert_int_equal(readyq_running(q, "k", 2, 2), 0);
    push(q, 3, 0, "k", 2);
    assert_int_equal(take(q, NULL), -1);
    assert_int_equal(readyq_release(q, "k"), 1);
    assert_int_equal(take(q, NULL), 3);
}

static void
test_readyq_forgets_a_key_no_job_holds(void **state)
{
    struct readyq *q = *state;
    for (int i = 0; i < 1000; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        push(q, i + 1, 0, key, 1);
    }
    assert_int_equal(readyq_key_count(q), 1000);
    const char *k;
    for (int i = 0; i < 1000; i++) {
        assert_true(take(q, &k) > 0);
        assert_int_equal(readyq_release(q, k), 0);
    }
    assert_int_equal(readyq_key_count(q), 0);
    uint32_t r, l;
    size_t   w;
    assert_false(readyq_key_state(q, "k1", &r, &w, &l));
    // Slots are reused, and a released unknown key is no error.
    push(q, 5000, 0, "again", 1);
    assert_int_equal(readyq_key_count(q), 1);
    assert_int_equal(readyq_release(q, "unknown"), 0);
}

static void
test_readyq_keeps_a_set_aside_job_of_a_paused_queue_paused(void **state)
{
    struct readyq *q = *state;
    push(q, 1, 0, "k", 1);
    push(q, 2, 0, "k", 1);
    assert_int_equal(take(q, NULL), 1);
    assert_int_equal(take(q, NULL), -1);
    assert_int_equal(readyq_pause(q, "q", true), 0);
    assert_int_equal(readyq_release(q, "k"), 1);
    assert_int_equal(take(q, NULL), -1);
    assert_int_equal(readyq_pause(q, "q", false), 0);
    assert_int_equal(take(q, NULL), 2);
}

// 30 keys pushed in a scrambled order, key kNN with NN + 1 jobs and limit
// 1 (2 for k05), then every job taken that may be: kNN has NN waiting.
static void
fill_keys(struct readyq *q)
{
    int64_t id = 1;
    for (int n = 0; n < 30; n++) {
        int  i = (n * 7) % 30;
        char key[16];
        snprintf(key, sizeof(key), "k%02d", i);
        for (int j = 0; j <= i; j++)
            push(q, id++, 0, key, i == 5 ? 2 : 1);
    }
    // "a", like k29, has 29 waiting: it sorts first among the two.
    for (int j = 0; j < 30; j++)
        push(q, id++, 0, "a", 1);
    while (take(q, NULL) > 0)
        ;
}

static void
test_readyq_busiest_lists_the_most_waiting_first(void **state)
{
    struct readyq           *q = *state;
    struct readyq_key_counts top[20];
    assert_int_equal(readyq_busiest(q, top, 20), 0); // no key held
    fill_keys(q);
    assert_int_equal(readyq_busiest(q, top, 20), 20);
    assert_string_equal(top[0].key, "a");
    assert_int_equal(top[0].waiting, 29);
    assert_int_equal(top[0].running, 1);
    assert_int_equal(top[0].limit, 1);
    for (int i = 1; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%02d", 30 - i);
        assert_string_equal(top[i].key, key);
        assert_int_equal(top[i].waiting, 30 - i);
        assert_int_equal(top[i].running, 1);
    }
    // Fewer asked, fewer given; the same order. More asked than held:
    // every key, the idle ones (none waiting) by name at the end.
    assert_int_equal(readyq_busiest(q, top, 3), 3);
    assert_string_equal(top[0].key, "a");
    assert_string_equal(top[2].key, "k28");
    assert_int_equal(readyq_busiest(q, top, 0), 0);
    struct readyq_key_counts all[40];
    assert_int_equal(readyq_busiest(q, all, 40), 31);
    assert_string_equal(all[29].key, "k01");
    assert_string_equal(all[30].key, "k00");
    assert_int_equal(all[30].waiting, 0);
    // k05 runs 2 under its limit of 2: 4 wait, as many as k04, which
    // sorts before it.
    assert_string_equal(all[25].key, "k04");
    assert_string_equal(all[26].key, "k05");
    assert_int_equal(all[26].running, 2);
    assert_int_equal(all[26].waiting, 4);
    assert_int_equal(all[26].limit, 2);
}

static void
test_readyq_key_totals_sum_every_key(void **state)
{
    struct readyq *q = *state;
    size_t         keys;
    uint64_t       running, waiting;
    readyq_key_totals(q, &keys, &running, &waiting);
    assert_int_equal(keys, 0);
    assert_int_equal(running + waiting, 0);
    fill_keys(q);
    readyq_key_totals(q, &keys, &running, &waiting);
    assert_int_equal(keys, 31);
    assert_int_equal(running, 32);                   // k05 runs 2
    assert_int_equal(waiting, 29 + 29 * 30 / 2 - 1); // less k05's second
    // A release moves one job back to its heap: one fewer waits.
    assert_int_equal(readyq_release(q, "k29"), 1);
    readyq_key_totals(q, &keys, &running, &waiting);
    assert_int_equal(running, 31);
    assert_int_equal(waiting, 29 + 29 * 30 / 2 - 2);
    // A key whose last job is released is forgotten.
    assert_int_equal(readyq_release(q, "k00"), 0);
    readyq_key_totals(q, &keys, &running, &waiting);
    assert_int_equal(keys, 30);
}

static void
test_readyq_releases_a_key_by_its_id(void **state)
{
    struct readyq *q = *state;
    push(q, 1, 0, "k", 1);
    push(q, 2, 0, "k", 1);
    assert_int_equal(readyq_key_id(q, "unknown"), 0);
    uint32_t id = readyq_key_id(q, "k");
    assert_true(id != 0);
    assert_int_equal(take(q, NULL), 1);
    assert_int_equal(take(q, NULL), -1);
    // As readyq_release(): the slot frees, the set-aside job comes back.
    assert_int_equal(readyq_release_id(q, id), 1);
    expect_key(q, "k", 0, 0, 1);
    assert_int_equal(take(q, NULL), 2);
    assert_int_equal(readyq_key_id(q, "k"), id);
    assert_int_equal(readyq_release_id(q, id), 0);
    // The key is forgotten: its id names nothing, nor do 0 and ids past
    // every key.
    assert_int_equal(readyq_key_count(q), 0);
    assert_int_equal(readyq_release_id(q, id), 0);
    assert_int_equal(readyq_release_id(q, 0), 0);
    assert_int_equal(readyq_release_id(q, 1000), 0);
    assert_int_equal(readyq_key_count(q), 0);
}

static void
test_readyq_takes_jobs_let_go_and_fresh_ones_in_one_order(void **state)
{
    struct readyq *q = *state;
    push(q, 1, 0, "k", 1);
    push(q, 2, 0, "k", 1); // set aside, then let go
    push(q, 3, 0, NULL, 0);
    assert_int_equal(take(q, NULL), 1);
    assert_int_equal(take(q, NULL), 3);
    push(q, 4, 0, NULL, 0);
    push(q, 5, 7, NULL, 0);
    assert_int_equal(readyq_release(q, "k"), 1);
    // Priority first (5), then FIFO: 2 was ready before 4.
    assert_int_equal(take(q, NULL), 5);
    assert_int_equal(take(q, NULL), 2);
    assert_int_equal(take(q, NULL), 4);
    // Across queues too: a job let go in q/t against a newer one in q/u.
    const char *const ts[] = { "t", "u" };
    push(q, 6, 0, "k", 1);
    assert_int_equal(take(q, NULL), -1); // 6 set aside: 2 runs
    assert_int_equal(readyq_push(q, "q", "u", 7, 0), 0);
    assert_int_equal(readyq_release(q, "k"), 1);
    int64_t     id;
    const char *key, *ck;
    assert_true(readyq_take(q, QS, 1, ts, 2, &id, &key, &ck));
    assert_int_equal(id, 6);
    assert_string_equal(ck, "k");
    assert_true(readyq_take(q, QS, 1, ts, 2, &id, &key, &ck));
    assert_int_equal(id, 7);
    assert_string_equal(key, "q\x1fu");
    assert_null(ck);
}

static void
test_readyq_takes_over_many_queue_type_pairs(void **state)
{
    struct readyq *q = *state;
    // 5 x 4 = 20 pairs: more than a take resolves once.
    const char *const qs[] = { "q0", "q1", "q2", "q3", "q4" };
    const char *const ts[] = { "t0", "t1", "t2", "t3" };
    int64_t           id   = 1;
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++)
            assert_int_equal(
                readyq_push_key(q, qs[i], ts[j], id++, 0, "k", 2), 0);
    int64_t     got;
    const char *key, *ck;
    assert_true(readyq_take(q, qs, 5, ts, 4, &got, &key, &ck));
    assert_int_equal(got, 1);
    assert_string_equal(key, "q0\x1ft0");
    assert_true(readyq_take(q, qs, 5, ts, 4, &got, &key, &ck));
    assert_int_equal(got, 2);
    assert_false(readyq_take(q, qs, 5, ts, 4, &got, &key, &ck));
    expect_key(q, "k", 2, 18, 2);
    assert_int_equal(readyq_release(q, "k"), 1);
    assert_true(readyq_take(q, qs, 5, ts, 4, &got, &key, &ck));
    assert_int_equal(got, 3);
    assert_string_equal(key, "q0\x1ft2");
    // A paused queue is skipped on that path too.
    assert_int_equal(readyq_pause(q, "q0", true), 0);
    assert_int_equal(readyq_release(q, "k"), 1); // lets 4 (q0) go
    assert_int_equal(readyq_release(q, "k"), 2); // and 5, 6 (q1)
    assert_true(readyq_take(q, qs, 5, ts, 4, &got, &key, &ck));
    assert_int_equal(got, 5);
    assert_string_equal(key, "q1\x1ft0");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_readyq_sets_aside_a_job_whose_key_is_at_its_limit, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_release_brings_a_set_aside_job_back, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_serves_other_keys_behind_a_saturated_one, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_set_aside_jobs_keep_their_priority_order, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_applies_the_newest_jobs_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_counts_rebuilt_running_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_forgets_a_key_no_job_holds, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_keeps_a_set_aside_job_of_a_paused_queue_paused, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_busiest_lists_the_most_waiting_first, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_key_totals_sum_every_key, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_releases_a_key_by_its_id, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_takes_jobs_let_go_and_fresh_ones_in_one_order, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_readyq_takes_over_many_queue_type_pairs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
