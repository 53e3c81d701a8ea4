// test_leader.c - the leader lease (server/leader.c) and the fence on the
// PostgreSQL store's transactions (store_pg_fence), with two sessions on
// the private cluster of pg_harness.h: take, hold, renew, expire, take
// over, release; a deposed leader's renewal and its transactions fail; a
// transaction left idle by a stopped leader is ended by PostgreSQL, and a
// takeover waits for a fenced transaction in flight.
#include "../../server/leader.h"
#include "../../server/store.h"
#include "../harness.h"
#include "../pg_harness.h"
#include "util/clock.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define TTL 400 // ms

struct fx {
    char           conninfo[256];
    struct leader *a, *b;
};

static int
setup(void **state)
{
    struct fx         *f   = calloc(1, sizeof(*f));
    struct anvil_error err = { 0 };
    if (f == NULL || pg_harness_new_db(f->conninfo, sizeof(f->conninfo)) != 0
        || leader_open(
               f->conninfo, "host-a tcp://a:1", "tcp://a:1", TTL, &f->a, &err)
            != ANVIL_OK
        || leader_open(
               f->conninfo, "host-b tcp://b:1", "tcp://b:1", TTL, &f->b, &err)
            != ANVIL_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    leader_close(f->a);
    leader_close(f->b);
    free(f);
    return 0;
}

static void
sleep_ms(int64_t ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static int64_t
take(struct leader *l)
{
    struct anvil_error err = { 0 };
    int64_t            e   = 0;
    char               url[64];
    assert_int_equal(leader_try(l, &e, url, sizeof(url), &err), ANVIL_OK);
    assert_true(e > 0);
    return e;
}

// Tries until the lease is taken (it expires within the ttl); the epoch.
static int64_t
take_eventually(struct leader *l)
{
    int64_t t0 = av_mono_ms();
    while (av_mono_ms() - t0 < 5 * TTL) {
        struct anvil_error err = { 0 };
        int64_t            e   = 0;
        char               url[64];
        int                rc = leader_try(l, &e, url, sizeof(url), &err);
        if (rc == ANVIL_OK)
            return e;
        assert_int_equal(rc, ANVIL_NOT_FOUND);
        sleep_ms(20);
    }
    fail_msg("the lease never expired");
    return 0;
}

static void
test_one_holder_the_other_sees_its_url(void **state)
{
    struct fx *f = *state;
    int64_t    e = take(f->a);
    char       url[64];
    int64_t    e2 = 0;
    for (int i = 0; i < 3; i++) { // held while renewed
        struct anvil_error err = { 0 };
        assert_int_equal(
            leader_try(f->b, &e2, url, sizeof(url), &err), ANVIL_NOT_FOUND);
        assert_string_equal(url, "tcp://a:1");
        assert_int_equal(leader_renew(f->a, e, &err), ANVIL_OK);
        sleep_ms(TTL / 3);
    }
    // The holder itself takes it again at once, with a new epoch.
    int64_t again = take(f->a);
    assert_true(again == e + 1);
}

static void
test_expiry_takeover_deposes(void **state)
{
    struct fx *f  = *state;
    int64_t    ea = take(f->a);
    int64_t    eb = take_eventually(f->b); // a does not renew
    assert_true(eb == ea + 1);
    struct anvil_error err = { 0 };
    assert_int_equal(leader_renew(f->a, ea, &err), ANVIL_FAILED_PRECONDITION);
    assert_non_null(strstr(err.msg, "another anvild"));
    assert_int_equal(leader_renew(f->b, eb, &err), ANVIL_OK);
    // The deposed one now sees b's URL.
    int64_t e = 0;
    char    url[64];
    assert_int_equal(
        leader_try(f->a, &e, url, sizeof(url), &err), ANVIL_NOT_FOUND);
    assert_string_equal(url, "tcp://b:1");
}

static void
test_release_hands_over_at_once(void **state)
{
    struct fx *f  = *state;
    int64_t    ea = take(f->a);
    leader_release(f->a, ea);
    assert_true(take(f->b) == ea + 1);
}

static int
pause(struct store *st, const char *queue, struct anvil_error *err)
{
    bool changed = false;
    return store_queue_set_paused(st, queue, true, 1000, &changed, err);
}

// A store fenced with a stale epoch cannot commit; with the current one it
// can.
static void
test_fenced_write_fails(void **state)
{
    struct fx         *f   = *state;
    int64_t            ea  = take(f->a);
    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(store_open_pg(f->conninfo, &st, &err), ANVIL_OK);
    store_pg_fence(st, ea, TTL);
    assert_int_equal(store_begin(st, &err), ANVIL_OK);
    assert_int_equal(pause(st, "q1", &err), ANVIL_OK);
    assert_int_equal(store_commit(st, &err), ANVIL_OK);

    int64_t eb = take_eventually(f->b);
    assert_int_equal(store_begin(st, &err), ANVIL_OK);
    assert_int_equal(pause(st, "q2", &err), ANVIL_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "no longer the leader"));
    assert_int_equal(store_rollback(st, &err), ANVIL_OK);
    // From then on nothing is even tried.
    assert_int_equal(store_begin(st, &err), ANVIL_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "no longer the leader"));

    store_pg_fence(st, eb, TTL);
    assert_int_equal(store_begin(st, &err), ANVIL_OK);
    assert_int_equal(pause(st, "q3", &err), ANVIL_OK);
    assert_int_equal(store_commit(st, &err), ANVIL_OK);
    char buf[64];
    assert_int_equal(pg_harness_sql_text(f->conninfo,
                         "SELECT string_agg(queue, ',' ORDER BY queue) "
                         "FROM paused_queues",
                         buf, sizeof(buf)),
        0);
    assert_string_equal(buf, "q1,q3");
    store_close(st);
}

// A leader stopped inside a transaction (SIGSTOP): PostgreSQL ends the
// idle transaction after the ttl, so nothing of it commits, and a
// takeover can go ahead.
static void
test_idle_transaction_of_a_stopped_leader_ends(void **state)
{
    struct fx         *f   = *state;
    int64_t            ea  = take(f->a);
    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(store_open_pg(f->conninfo, &st, &err), ANVIL_OK);
    store_pg_fence(st, ea, TTL);
    assert_int_equal(store_begin(st, &err), ANVIL_OK);
    assert_int_equal(pause(st, "zombie", &err), ANVIL_OK);
    // While the transaction holds the row, b cannot take over...
    int64_t e = 0;
    char    url[64];
    sleep_ms(TTL + 100);                // the lease has expired by now
    int64_t eb = take_eventually(f->b); // ...until PostgreSQL ends it
    assert_true(eb == ea + 1);
    assert_int_not_equal(store_commit(st, &err), ANVIL_OK);
    char buf[64];
    assert_int_equal(
        pg_harness_sql_text(f->conninfo, "SELECT count(*) FROM paused_queues",
            buf, sizeof(buf)),
        0);
    assert_string_equal(buf, "0");
    (void) e;
    (void) url;
    store_close(st);
}

// A fenced transaction in flight holds the lease row: a takeover waits for
// its COMMIT and then finds the lease renewed.
static void
test_takeover_waits_for_a_fenced_transaction(void **state)
{
    struct fx         *f   = *state;
    int64_t            ea  = take(f->a);
    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(store_open_pg(f->conninfo, &st, &err), ANVIL_OK);
    sleep_ms(TTL + 50); // expired, not yet taken
    store_pg_fence(st, ea, TTL);
    assert_int_equal(store_begin(st, &err), ANVIL_OK);
    assert_int_equal(pause(st, "inflight", &err), ANVIL_OK);
    int64_t e = 0;
    char    url[64];
    assert_int_equal(
        leader_try(f->b, &e, url, sizeof(url), &err), ANVIL_NOT_FOUND);
    assert_int_equal(store_commit(st, &err), ANVIL_OK);
    assert_int_equal(
        leader_try(f->b, &e, url, sizeof(url), &err), ANVIL_NOT_FOUND);
    assert_string_equal(url, "tcp://a:1");
    store_close(st);
}

static void
test_bad_conninfo(void **state)
{
    (void) state;
    struct leader     *l   = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(
        leader_open("host=/nonexistent-dir dbname=x", "h", "u", TTL, &l, &err),
        ANVIL_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "cannot reach PostgreSQL"));
    assert_null(l);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_one_holder_the_other_sees_its_url),
        T(test_expiry_takeover_deposes),
        T(test_release_hands_over_at_once),
        T(test_fenced_write_fails),
        T(test_idle_transaction_of_a_stopped_leader_ends),
        T(test_takeover_waits_for_a_fenced_transaction),
        cmocka_unit_test(test_bad_conninfo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
