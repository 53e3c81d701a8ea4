// test_util_hash.c - the string map of sdk/util/hash.h: insert, find,
// replace, delete (also inside a run of colliding keys, and across the end
// of the table), growth, and a long random run checked against a plain
// array.
#include "util/hash.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define NKEYS 512

static char keys[NKEYS][16];

static int
group_setup(void **state)
{
    (void) state;
    for (int i = 0; i < NKEYS; i++)
        snprintf(keys[i], sizeof(keys[i]), "key-%d", i);
    return 0;
}

// Up to n keys (from a static pool) whose hashes land on slot `home` of a
// 16-slot table; *found how many.
static const char **
colliding(size_t home, size_t n)
{
    static char        pool[64][16];
    static const char *out[64];
    size_t             got = 0;
    for (int i = 0; got < n && got < 64 && i < 100000; i++) {
        snprintf(pool[got], sizeof(pool[got]), "c%d", i);
        if ((av_hash_str(pool[got]) & 15) == home) {
            out[got] = pool[got];
            got++;
        }
    }
    assert_int_equal(got, n);
    return out;
}

static void
assert_has(const struct av_hash *t, const char *key, size_t want)
{
    size_t v = SIZE_MAX;
    if (!av_hash_get(t, key, &v))
        fail_msg("key %s missing", key);
    assert_int_equal(v, want);
}

static void
test_hash_finds_what_was_put_and_nothing_else(void **state)
{
    (void) state;
    struct av_hash t;
    size_t         v = 7;
    assert_int_equal(av_hash_init(&t, 4), 0);
    assert_false(av_hash_get(&t, "a", &v));
    assert_int_equal(av_hash_put(&t, "a", 1), 0);
    assert_int_equal(av_hash_put(&t, "b", 2), 0);
    assert_has(&t, "a", 1);
    assert_has(&t, "b", 2);
    assert_false(av_hash_get(&t, "c", &v));
    assert_false(av_hash_get(&t, "", &v));
    assert_int_equal(v, 7); // untouched by a miss
    assert_int_equal(t.n, 2);
    av_hash_fini(&t);
}

static void
test_hash_compares_keys_by_content_not_pointer(void **state)
{
    (void) state;
    struct av_hash t;
    char           probe[8];
    assert_int_equal(av_hash_init(&t, 0), 0);
    assert_int_equal(av_hash_put(&t, "step-1", 41), 0);
    snprintf(probe, sizeof(probe), "step-%d", 1);
    assert_has(&t, probe, 41);
    av_hash_fini(&t);
}

static void
test_hash_put_replaces_and_add_reports_the_existing_value(void **state)
{
    (void) state;
    struct av_hash t;
    size_t         old = 0;
    assert_int_equal(av_hash_init(&t, 0), 0);
    assert_int_equal(av_hash_add(&t, "x", 1, &old), 0);
    assert_int_equal(av_hash_add(&t, "x", 2, &old), 1);
    assert_int_equal(old, 1);
    assert_has(&t, "x", 1); // add does not replace
    assert_int_equal(av_hash_put(&t, "x", 3), 0);
    assert_has(&t, "x", 3);
    assert_int_equal(t.n, 1);
    av_hash_fini(&t);
}

static void
test_hash_delete_removes_only_that_key(void **state)
{
    (void) state;
    struct av_hash t;
    size_t         v;
    assert_int_equal(av_hash_init(&t, 0), 0);
    assert_false(av_hash_del(&t, "nothing")); // empty table
    assert_int_equal(av_hash_put(&t, "a", 1), 0);
    assert_int_equal(av_hash_put(&t, "b", 2), 0);
    assert_true(av_hash_del(&t, "a"));
    assert_false(av_hash_get(&t, "a", &v));
    assert_false(av_hash_del(&t, "a"));
    assert_has(&t, "b", 2);
    assert_int_equal(t.n, 1);
    assert_int_equal(av_hash_put(&t, "a", 5), 0); // back again
    assert_has(&t, "a", 5);
    av_hash_fini(&t);
}

// Deleting any key of a run that shares one home slot leaves every other
// key of the run findable (the run must be shifted, not holed).
static void
test_hash_delete_inside_a_run_of_collisions_keeps_the_rest(void **state)
{
    (void) state;
    const char **c = colliding(3, 6);
    for (size_t gone = 0; gone < 6; gone++) {
        struct av_hash t;
        assert_int_equal(av_hash_init(&t, 7), 0);
        assert_int_equal(t.cap, 16);
        for (size_t i = 0; i < 6; i++)
            assert_int_equal(av_hash_put(&t, c[i], i), 0);
        assert_int_equal(t.cap, 16); // no growth: they truly collide
        assert_true(av_hash_del(&t, c[gone]));
        for (size_t i = 0; i < 6; i++) {
            size_t v;
            if (i == gone)
                assert_false(av_hash_get(&t, c[i], &v));
            else
                assert_has(&t, c[i], i);
        }
        av_hash_fini(&t);
    }
}

// A run that starts at the last slot wraps to slot 0; deletion must shift
// entries back across the wrap.
static void
test_hash_delete_works_across_the_end_of_the_table(void **state)
{
    (void) state;
    const char   **c = colliding(15, 4);
    struct av_hash t;
    assert_int_equal(av_hash_init(&t, 7), 0);
    assert_int_equal(av_hash_put(&t, "key-0", 100), 0);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(av_hash_put(&t, c[i], i), 0);
    assert_true(av_hash_del(&t, c[0]));
    assert_true(av_hash_del(&t, c[2]));
    assert_has(&t, c[1], 1);
    assert_has(&t, c[3], 3);
    assert_has(&t, "key-0", 100);
    assert_int_equal(t.n, 3);
    av_hash_fini(&t);
}

static void
test_hash_grows_past_its_hint_and_keeps_every_key(void **state)
{
    (void) state;
    struct av_hash t;
    assert_int_equal(av_hash_init(&t, 0), 0);
    size_t cap0 = t.cap;
    for (size_t i = 0; i < NKEYS; i++)
        assert_int_equal(av_hash_put(&t, keys[i], i * 3), 0);
    assert_true(t.cap > cap0);
    assert_true(t.n * 2 <= t.cap); // at most half full
    assert_int_equal(t.n, NKEYS);
    for (size_t i = 0; i < NKEYS; i++)
        assert_has(&t, keys[i], i * 3);
    av_hash_fini(&t);
}

static void
test_hash_fini_is_safe_twice_and_on_a_zeroed_table(void **state)
{
    (void) state;
    struct av_hash t = { 0 };
    size_t         v;
    assert_false(av_hash_get(&t, "a", &v));
    assert_false(av_hash_del(&t, "a"));
    av_hash_fini(&t);
    assert_int_equal(av_hash_put(&t, "a", 1), 0); // a zeroed table works
    assert_has(&t, "a", 1);
    av_hash_fini(&t);
    av_hash_fini(&t);
}

// A small deterministic generator, so a failure can be replayed.
static uint64_t
next_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static void
test_hash_random_puts_and_deletes_match_a_plain_array(void **state)
{
    (void) state;
    struct av_hash t;
    size_t         want[NKEYS];
    uint64_t       seed = 17;
    assert_int_equal(av_hash_init(&t, 0), 0);
    for (size_t i = 0; i < NKEYS; i++)
        want[i] = SIZE_MAX; // absent
    for (int op = 0; op < 50000; op++) {
        size_t k = (size_t) next_rand(&seed) % 200;
        if (next_rand(&seed) % 3 == 0) {
            assert_int_equal(av_hash_del(&t, keys[k]), want[k] != SIZE_MAX);
            want[k] = SIZE_MAX;
        } else {
            assert_int_equal(av_hash_put(&t, keys[k], (size_t) op), 0);
            want[k] = (size_t) op;
        }
    }
    size_t n = 0;
    for (size_t k = 0; k < 200; k++) {
        size_t v;
        if (want[k] == SIZE_MAX) {
            assert_false(av_hash_get(&t, keys[k], &v));
        } else {
            assert_has(&t, keys[k], want[k]);
            n++;
        }
    }
    assert_int_equal(t.n, n);
    av_hash_fini(&t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_finds_what_was_put_and_nothing_else),
        cmocka_unit_test(test_hash_compares_keys_by_content_not_pointer),
        cmocka_unit_test(
            test_hash_put_replaces_and_add_reports_the_existing_value),
        cmocka_unit_test(test_hash_delete_removes_only_that_key),
        cmocka_unit_test(
            test_hash_delete_inside_a_run_of_collisions_keeps_the_rest),
        cmocka_unit_test(test_hash_delete_works_across_the_end_of_the_table),
        cmocka_unit_test(test_hash_grows_past_its_hint_and_keeps_every_key),
        cmocka_unit_test(test_hash_fini_is_safe_twice_and_on_a_zeroed_table),
        cmocka_unit_test(test_hash_random_puts_and_deletes_match_a_plain_array),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
