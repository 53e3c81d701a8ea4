// test_util_heap.c - the binary heap of sdk/util/heap.h: the empty heap,
// order, FIFO among equals through a sequence number (as the ready queues
// use it), wide elements copied whole, and random pushes and pops checked
// against a sorted array.
#include "util/heap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static bool
less_int(const void *a, const void *b)
{
    return *(const int *) a < *(const int *) b;
}

struct job {
    int32_t  priority;
    uint64_t seq;
    char     name[40];
};

// Higher priority first, then lower sequence.
static bool
job_before(const void *a, const void *b)
{
    const struct job *x = a;
    const struct job *y = b;
    if (x->priority != y->priority)
        return x->priority > y->priority;
    return x->seq < y->seq;
}

static uint64_t
next_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static int
cmp_int(const void *a, const void *b)
{
    int x = *(const int *) a;
    int y = *(const int *) b;
    return (x > y) - (x < y);
}

static void
test_heap_empty_has_no_top_and_pops_nothing(void **state)
{
    (void) state;
    struct av_heap h;
    int            out = 42;
    av_heap_init(&h, sizeof(int), less_int);
    assert_null(av_heap_top(&h));
    assert_false(av_heap_pop(&h, &out));
    assert_int_equal(out, 42);
    assert_int_equal(av_heap_len(&h), 0);
    av_heap_fini(&h);
    av_heap_fini(&h); // twice is safe
}

static void
test_heap_pops_in_order_and_top_shows_the_next(void **state)
{
    (void) state;
    static const int in[] = { 5, 1, 9, 3, 7, 1, 8 };
    struct av_heap   h;
    av_heap_init(&h, sizeof(int), less_int);
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
        assert_int_equal(av_heap_push(&h, &in[i]), 0);
    assert_int_equal(av_heap_len(&h), 7);
    static const int want[] = { 1, 1, 3, 5, 7, 8, 9 };
    for (size_t i = 0; i < 7; i++) {
        int out;
        assert_int_equal(*(const int *) av_heap_top(&h), want[i]);
        assert_true(av_heap_pop(&h, &out));
        assert_int_equal(out, want[i]);
    }
    assert_null(av_heap_top(&h));
    av_heap_fini(&h);
}

// Jobs of equal priority come out in push order; every byte of the element
// survives the sifting.
static void
test_heap_with_a_sequence_keeps_equals_first_in_first_out(void **state)
{
    (void) state;
    struct av_heap h;
    av_heap_init(&h, sizeof(struct job), job_before);
    for (uint64_t i = 0; i < 300; i++) {
        struct job j = { .priority = (int32_t) (i % 3), .seq = i };
        snprintf(j.name, sizeof(j.name), "job-%llu", (unsigned long long) i);
        assert_int_equal(av_heap_push(&h, &j), 0);
    }
    int32_t  prio = 2;
    uint64_t last = 0;
    bool     any  = false;
    for (int k = 0; k < 300; k++) {
        struct job j;
        char       name[40];
        assert_true(av_heap_pop(&h, &j));
        if (j.priority != prio) {
            assert_int_equal(j.priority, prio - 1);
            prio = j.priority;
            any  = false;
        }
        if (any)
            assert_true(j.seq > last);
        last = j.seq;
        any  = true;
        snprintf(name, sizeof(name), "job-%llu", (unsigned long long) j.seq);
        assert_string_equal(j.name, name);
        assert_int_equal(j.seq % 3, (uint64_t) j.priority);
    }
    assert_int_equal(prio, 0);
    av_heap_fini(&h);
}

static void
test_heap_random_pushes_and_pops_match_a_sorted_array(void **state)
{
    (void) state;
    enum { N = 5000 };
    int           *ref = calloc(N, sizeof(int));
    size_t         n   = 0;
    uint64_t       s   = 99;
    struct av_heap h;
    assert_non_null(ref);
    av_heap_init(&h, sizeof(int), less_int);
    for (int op = 0; op < 4 * N; op++) {
        if (n < N && (n == 0 || next_rand(&s) % 3 != 0)) {
            int x    = (int) (next_rand(&s) % 1000);
            ref[n++] = x;
            assert_int_equal(av_heap_push(&h, &x), 0);
        } else {
            int out;
            qsort(ref, n, sizeof(int), cmp_int);
            assert_true(av_heap_pop(&h, &out));
            assert_int_equal(out, ref[0]);
            memmove(ref, ref + 1, --n * sizeof(int));
        }
        assert_int_equal(av_heap_len(&h), n);
    }
    av_heap_fini(&h);
    free(ref);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_empty_has_no_top_and_pops_nothing),
        cmocka_unit_test(test_heap_pops_in_order_and_top_shows_the_next),
        cmocka_unit_test(
            test_heap_with_a_sequence_keeps_equals_first_in_first_out),
        cmocka_unit_test(test_heap_random_pushes_and_pops_match_a_sorted_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
