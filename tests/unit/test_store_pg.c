// test_store_pg.c - what only the PostgreSQL backend has: its
// schema_version table, the errors of a server that cannot be reached or
// goes away (and the reconnect), real failed statements inside a
// transaction and a savepoint, bytes that are not UTF-8 in free text, and
// streaming the active scan. Runs on the private cluster of pg_harness.h
// whatever ANVIL_TEST_STORE says (the rest of the store tests run on
// PostgreSQL with ANVIL_TEST_STORE=postgresql).
#include "../../server/store.h"
#include "../harness.h"
#include "../pg_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct fx {
    char          conninfo[256];
    struct store *st;
};

static int
setup(void **state)
{
    struct fx         *f   = calloc(1, sizeof(*f));
    struct anvil_error err = { 0 };
    if (f == NULL || pg_harness_new_db(f->conninfo, sizeof(f->conninfo)) != 0
        || store_open_pg(f->conninfo, &f->st, &err) != ANVIL_OK) {
        if (err.msg[0] != '\0')
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
    struct fx *f    = *state;
    store_hook_step = NULL;
    store_close(f->st);
    free(f);
    return 0;
}

static struct store_new_job
new_job(const char *type, const char *key)
{
    return (struct store_new_job) {
        .type        = type,
        .queue       = "default",
        .payload     = (const uint8_t *) "{\"a\":\0\x01}",
        .payload_len = 9,
        .state       = ANVIL_JOB_QUEUED,
        .retry       = { .max_attempts = 3 },
        .created_at  = 1000,
        .run_at      = 1000,
        .idem_key    = key,
    };
}

static int64_t
insert(struct store *st, const char *type, const char *key)
{
    struct store_new_job nj  = new_job(type, key);
    struct anvil_error   err = { 0 };
    int64_t              id  = 0;
    assert_int_equal(store_job_insert(st, &nj, &id, &err), ANVIL_OK);
    return id;
}

static int64_t
count_jobs(const struct fx *f)
{
    return harness_sql_int(f->conninfo, "SELECT COUNT(*) FROM jobs");
}

static void
test_store_pg_records_the_schema_version_once(void **state)
{
    struct fx *f = *state;
    assert_int_equal(
        harness_sql_int(f->conninfo, "SELECT max(version) FROM schema_version"),
        STORE_SCHEMA_VERSION);
    struct anvil_error err = { 0 };
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(store_open_pg(f->conninfo, &f->st, &err), ANVIL_OK);
    assert_int_equal(
        harness_sql_int(f->conninfo, "SELECT COUNT(*) FROM schema_version"), 1);
}

static void
test_store_pg_unreachable_server_is_unavailable_naming_it(void **state)
{
    (void) state;
    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    int                rc  = store_open_pg(
                        "host=/nonexistent-anvil-dir dbname=jobs user=anvil password=sekret",
                        &st, &err);
    assert_int_equal(rc, ANVIL_UNAVAILABLE);
    assert_int_equal(err.code, ANVIL_UNAVAILABLE);
    assert_null(st);
    assert_non_null(strstr(err.msg, "cannot connect to PostgreSQL"));
    assert_non_null(strstr(err.msg, "host=/nonexistent-anvil-dir"));
    assert_non_null(strstr(err.msg, "dbname=jobs"));
    assert_null(strstr(err.msg, "sekret"));
}

static void
test_store_pg_lost_connection_is_unavailable_then_reconnects(void **state)
{
    struct fx         *f   = *state;
    struct anvil_error err = { 0 };
    int64_t            id  = insert(f->st, "t", NULL);
    // Every other connection to database anvil is the store's.
    assert_int_equal(
        harness_sql_int(f->conninfo,
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = 'anvil' AND pid <> pg_backend_pid()"),
        1);
    struct job j = { 0 };
    assert_int_equal(store_job_get(f->st, id, &j, &err), ANVIL_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "lost the connection to PostgreSQL"));
    assert_non_null(strstr(err.msg, "reading a job"));
    // The engine rolls back; the next batch reconnects.
    assert_int_equal(store_rollback(f->st, &err), ANVIL_OK);
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_job_get(f->st, id, &j, &err), ANVIL_OK);
    assert_string_equal(j.type, "t");
    job_fini(&j);
    insert(f->st, "after", NULL);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    assert_int_equal(count_jobs(f), 2);
}

static void
test_store_pg_unique_violation_is_internal_with_the_servers_message(
    void **state)
{
    struct fx *f = *state;
    insert(f->st, "a", "same");
    struct store_new_job nj  = new_job("b", "same");
    struct anvil_error   err = { 0 };
    int64_t              id  = -1;
    assert_int_equal(store_job_insert(f->st, &nj, &id, &err), ANVIL_INTERNAL);
    assert_int_equal(id, -1);
    assert_non_null(strstr(err.msg, "database error while inserting a job"));
    assert_non_null(strstr(err.msg, "jobs_idem_key"));
    assert_int_equal(count_jobs(f), 1);
}

// A statement PostgreSQL refuses aborts its transaction; rolling back to
// the command's savepoint makes it usable again, as the engine does. In a
// transaction a write is queued (store_pg_pipe.c): its failure is
// reported by the command's next read.
static void
test_store_pg_a_failed_command_is_undone_by_its_savepoint(void **state)
{
    struct fx         *f   = *state;
    struct anvil_error err = { 0 };
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    insert(f->st, "kept", "k1");
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    insert(f->st, "half", "k2");
    struct store_new_job dup = new_job("dup", "k1");
    int64_t              id  = 0;
    assert_int_equal(store_job_insert(f->st, &dup, &id, &err), ANVIL_OK);
    int64_t found = 0;
    assert_int_equal(
        store_job_by_key(f->st, "k2", &found, &err), ANVIL_INTERNAL);
    assert_non_null(strstr(err.msg, "database error while inserting a job"));
    assert_non_null(strstr(err.msg, "jobs_idem_key"));
    assert_int_equal(store_rollback_savepoint(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    insert(f->st, "after", "k2");
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    assert_int_equal(count_jobs(f), 2);
    assert_int_equal(harness_sql_int(f->conninfo,
                         "SELECT COUNT(*) FROM jobs WHERE type = 'half'"),
        0);
}

// A queued write of a command already released fails later: that
// command was answered OK, so the transaction cannot commit any more;
// every later call fails, a rollback to a savepoint too (the engine then
// refuses the batch), and nothing of it is kept.
static void
test_store_pg_a_failed_write_of_an_earlier_command_fails_the_transaction(
    void **state)
{
    struct fx         *f   = *state;
    struct anvil_error err = { 0 };
    insert(f->st, "a", "same");
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    insert(f->st, "lost", NULL);
    struct store_new_job dup = new_job("dup", "same");
    int64_t              id  = 0;
    assert_int_equal(store_job_insert(f->st, &dup, &id, &err), ANVIL_OK);
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    int64_t found = 0;
    assert_int_equal(
        store_job_by_key(f->st, "same", &found, &err), ANVIL_INTERNAL);
    assert_non_null(strstr(err.msg, "jobs_idem_key"));
    err = (struct anvil_error) { 0 };
    assert_int_equal(store_rollback_savepoint(f->st, &err), ANVIL_INTERNAL);
    assert_non_null(strstr(err.msg, "jobs_idem_key"));
    assert_int_equal(store_job_insert(f->st, &dup, &id, &err), ANVIL_INTERNAL);
    assert_int_equal(store_commit(f->st, &err), ANVIL_INTERNAL);
    assert_int_equal(store_rollback(f->st, &err), ANVIL_OK);
    assert_int_equal(count_jobs(f), 1);
    // The store still works.
    insert(f->st, "b", NULL);
    assert_int_equal(count_jobs(f), 2);
}

// The batch's events and last writes go with COMMIT: a failure there
// fails the commit.
static void
test_store_pg_commit_of_a_failed_transaction_is_reported(void **state)
{
    struct fx         *f   = *state;
    struct anvil_error err = { 0 };
    insert(f->st, "a", "same");
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    insert(f->st, "lost", NULL);
    struct store_new_job dup = new_job("dup", "same");
    int64_t              id  = 0;
    assert_int_equal(store_job_insert(f->st, &dup, &id, &err), ANVIL_OK);
    assert_int_equal(store_commit(f->st, &err), ANVIL_INTERNAL);
    assert_non_null(strstr(err.msg, "jobs_idem_key"));
    assert_int_equal(store_rollback(f->st, &err), ANVIL_OK);
    assert_int_equal(count_jobs(f), 1);
    // The store still works, in and out of transactions.
    insert(f->st, "b", NULL);
    assert_int_equal(count_jobs(f), 2);
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    insert(f->st, "c", NULL);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    assert_int_equal(count_jobs(f), 3);
}

// Errors, idempotency keys and event messages take any bytes, as in
// SQLite; PostgreSQL's TEXT would refuse these.
static void
test_store_pg_free_text_keeps_bytes_that_are_not_utf8(void **state)
{
    struct fx         *f   = *state;
    struct anvil_error err = { 0 };
    int64_t            id  = insert(f->st, "t", "key-\xfe\xff");
    int64_t            got = 0;
    assert_int_equal(
        store_job_by_key(f->st, "key-\xfe\xff", &got, &err), ANVIL_OK);
    assert_int_equal(got, id);
    assert_int_equal(store_job_finish(f->st, id, ANVIL_JOB_FAILED, NULL, 0,
                         "bad \x80 bytes", 5, &err),
        ANVIL_OK);
    struct job j = { 0 };
    assert_int_equal(store_job_get(f->st, id, &j, &err), ANVIL_OK);
    assert_string_equal(j.error, "bad \x80 bytes");
    assert_string_equal(j.idem_key, "key-\xfe\xff");
    assert_int_equal(j.payload_len, 9);
    assert_memory_equal(j.payload, "{\"a\":\0\x01}", 9);
    job_fini(&j);
    struct store_new_event ev
        = { .kind = EV_JOB_FAILED, .at = 1, .message = "\xc3 half" };
    uint64_t seq = 0;
    assert_int_equal(store_event_insert(f->st, &ev, &seq, &err), ANVIL_OK);
    struct store_event_filter ef  = { .limit = 10 };
    struct store_event       *out = NULL;
    size_t                    n   = 0;
    uint64_t                  to  = 0;
    assert_int_equal(store_events_read(f->st, &ef, &out, &n, &to, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].message, "\xc3 half");
    store_events_free(out, n);
}

static int
hook_full(int stmt)
{
    (void) stmt;
    return ANVIL_RESOURCE_EXHAUSTED;
}

static void
test_store_pg_disk_full_is_resource_exhausted(void **state)
{
    struct fx         *f   = *state;
    struct anvil_error err = { 0 };
    store_hook_step        = hook_full;
    assert_int_equal(store_begin(f->st, &err), ANVIL_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(err.msg, "disk full"));
    store_hook_step = NULL;
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
}

static int
count_cb(void *arg, const struct job *j)
{
    int *n = arg;
    assert_string_equal(j->queue, "default");
    assert_string_equal(j->concurrency_key, "");
    return ++*n == 1500 ? ANVIL_RESOURCE_EXHAUSTED : ANVIL_OK;
}

// The scan streams rows (single-row mode); a failing callback stops the
// calls and is reported, and the connection is usable after it.
static void
test_store_pg_scan_active_streams_and_stops_on_a_failure(void **state)
{
    struct fx         *f   = *state;
    struct anvil_error err = { 0 };
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    for (int i = 0; i < 2000; i++)
        insert(f->st, "t", NULL);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    int n = 0;
    assert_int_equal(
        store_scan_active(f->st, count_cb, &n, &err), ANVIL_RESOURCE_EXHAUSTED);
    assert_int_equal(n, 1500);
    assert_non_null(strstr(err.msg, "out of memory"));
    n = -1000000;
    assert_int_equal(store_scan_active(f->st, count_cb, &n, &err), ANVIL_OK);
    assert_int_equal(n, -1000000 + 2000);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_store_pg_records_the_schema_version_once),
        T(test_store_pg_unreachable_server_is_unavailable_naming_it),
        T(test_store_pg_lost_connection_is_unavailable_then_reconnects),
        T(test_store_pg_unique_violation_is_internal_with_the_servers_message),
        T(test_store_pg_a_failed_command_is_undone_by_its_savepoint),
        T(test_store_pg_a_failed_write_of_an_earlier_command_fails_the_transaction),
        T(test_store_pg_commit_of_a_failed_transaction_is_reported),
        T(test_store_pg_free_text_keeps_bytes_that_are_not_utf8),
        T(test_store_pg_disk_full_is_resource_exhausted),
        T(test_store_pg_scan_active_streams_and_stops_on_a_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
