// test_waits.c - long-poll counting: the limits hold at every count the
// flags allow, far above 65,535.
#include "../../server/waits.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void
test_waits_per_connection_limit_holds_above_65535(void **state)
{
    (void) state;
    struct waits *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->max                 = 10000000;
    w->max_per_conn        = 70000;
    struct anvil_error err = { 0 };
    for (int i = 0; i < 70000; i++)
        assert_int_equal(waits_enter(w, 7, &err), ANVIL_OK);
    assert_int_equal(waits_enter(w, 7, &err), ANVIL_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(err.msg, "70000"));
    // Another connection has its own count.
    assert_int_equal(waits_enter(w, 8, &err), ANVIL_OK);
    waits_leave(w, 7);
    assert_int_equal(waits_enter(w, 7, &err), ANVIL_OK);
    assert_int_equal(w->total, 70001);
    free(w);
}

static void
test_waits_total_limit_holds_across_connections(void **state)
{
    (void) state;
    struct waits *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->max                 = 3;
    w->max_per_conn        = 2;
    struct anvil_error err = { 0 };
    assert_int_equal(waits_enter(w, 1, &err), ANVIL_OK);
    assert_int_equal(waits_enter(w, 1, &err), ANVIL_OK);
    assert_int_equal(waits_enter(w, 1, &err), ANVIL_RESOURCE_EXHAUSTED);
    assert_int_equal(waits_enter(w, 2, &err), ANVIL_OK);
    assert_int_equal(waits_enter(w, 3, &err), ANVIL_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(err.msg, "--max-waits)"));
    waits_leave(w, 1);
    assert_int_equal(waits_enter(w, 3, &err), ANVIL_OK);
    free(w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_waits_per_connection_limit_holds_above_65535),
        cmocka_unit_test(test_waits_total_limit_holds_across_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
