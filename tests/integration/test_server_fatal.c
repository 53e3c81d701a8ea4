// test_server_fatal.c - an in-process anvild whose storage fails for good
// (a failed sync) does not abort the process: it refuses the request,
// wakes server_wait() with the error, and stops through server_stop().
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/store.h"
#include "../harness.h"

static atomic_int sync_fail; // fdatasync calls still to fail

static int
fdatasync_hook(int fd)
{
    (void) fd;
    return atomic_fetch_sub(&sync_fail, 1) > 0 ? -1 : 0;
}

static int
setup(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -1;
    atomic_store(&sync_fail, 0);
    store_hook_fdatasync = fdatasync_hook;
    if (harness_start(h) != 0) { // synchronous FULL: the sync is deferred
        harness_stop(h);
        free(h);
        return -1;
    }
    *state = h;
    return 0;
}

static int
teardown(void **state)
{
    struct harness *h    = *state;
    int             rc   = harness_stop(h);
    store_hook_fdatasync = NULL;
    free(h);
    return rc;
}

static int
submit(struct harness *h, struct anvil_error *err)
{
    char *id = NULL;
    int   rc = anvil_job_submit(h->client, "t", "{}", 2, NULL, &id, NULL, err);
    anvil_free(id);
    return rc;
}

static void
test_server_failed_sync_stops_the_server_with_an_error(void **state)
{
    struct harness    *h   = *state;
    struct anvil_error err = { 0 };
    assert_int_equal(submit(h, &err), ANVIL_OK);
    atomic_store(&sync_fail, 1);
    int rc = submit(h, &err);
    if (rc == ANVIL_OK && atomic_load(&sync_fail) > 0)
        skip(); // this file system cannot defer the sync: SQLite syncs
    assert_int_equal(rc, ANVIL_UNAVAILABLE);
    // server_wait() returns at once, with the failure's code.
    assert_int_not_equal(server_wait(h->server), ANVIL_OK);
    assert_int_not_equal(submit(h, &err), ANVIL_OK);
}

static void
test_server_shutdown_wakes_server_wait_with_ok(void **state)
{
    struct harness *h = *state;
    server_shutdown(h->server);
    assert_int_equal(server_wait(h->server), ANVIL_OK);
    struct anvil_error err = { 0 };
    int                rc  = submit(h, &err);
    if (rc != ANVIL_OK)
        fprintf(stderr, "submit: %s\n", err.msg);
    assert_int_equal(rc, ANVIL_OK); // it runs until stopped
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_server_failed_sync_stops_the_server_with_an_error),
        T(test_server_shutdown_wakes_server_wait_with_ok),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
