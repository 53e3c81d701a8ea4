// test_gate.c - the transports' door to the engine (server/gate.c): an
// open gate lets callbacks in, a closed one refuses them, and closing
// waits until the last one inside has left.
#include "../../server/gate.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void
test_an_open_gate_counts_who_is_inside(void **state)
{
    (void) state;
    struct gate g;
    gate_init(&g, &lock);
    assert_true(gate_enter(&g));
    assert_true(gate_enter(&g));
    assert_int_equal(g.inside, 2);
    gate_leave(&g);
    gate_leave(&g);
    assert_int_equal(g.inside, 0);
    gate_close(&g); // nobody inside: returns at once
    assert_true(g.closing);
    assert_false(gate_enter(&g));
    assert_int_equal(g.inside, 0);
    gate_fini(&g);
}

struct closer {
    struct gate *g;
    atomic_bool  closed;
};

static void *
close_gate(void *arg)
{
    struct closer *c = arg;
    gate_close(c->g);
    atomic_store(&c->closed, true);
    return NULL;
}

static void
test_closing_waits_for_the_last_one_inside(void **state)
{
    (void) state;
    struct gate g;
    gate_init(&g, &lock);
    assert_true(gate_enter(&g));
    struct closer c = { .g = &g };
    atomic_store(&c.closed, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, close_gate, &c), 0);
    // Until closing is set, new callers still pass; after it they do not.
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&lock);
        bool closing = g.closing;
        pthread_mutex_unlock(&lock);
        if (closing)
            break;
        nanosleep(&(struct timespec) { .tv_nsec = 1000000 }, NULL);
    }
    assert_false(gate_enter(&g));
    // The closer still waits for the one inside.
    nanosleep(&(struct timespec) { .tv_nsec = 20000000 }, NULL);
    assert_false(atomic_load(&c.closed));
    gate_leave(&g);
    pthread_join(t, NULL);
    assert_true(atomic_load(&c.closed));
    gate_fini(&g);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_open_gate_counts_who_is_inside),
        cmocka_unit_test(test_closing_waits_for_the_last_one_inside),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
