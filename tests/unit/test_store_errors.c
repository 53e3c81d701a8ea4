// test_store_errors.c - the store's answers to failures at the transaction
// boundary: a real disk full (a lowered max_page_count) and an injected one
// answer RESOURCE_EXHAUSTED with "disk full"; a failed ROLLBACK TO is
// reported; a value SQLite refuses to bind fails the call and writes
// nothing; and the failure seam sees the transaction statements too.
#include "../../server/store.h"
#include "../../server/store_sqlite.h"
#include "../harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

static int
setup(void **state)
{
    return harness_store_setup(state, 1);
}

static int
teardown(void **state)
{
    return harness_store_teardown(state);
}

// ---- the failure seam: fail one statement, found by its SQL ----

static int hook_fail_stmt = -1;
static int hook_fail_code = 0;
static int hook_seen[64];
static int hook_n_seen = 0;

static int
hook(int stmt)
{
    if (hook_n_seen < (int) (sizeof(hook_seen) / sizeof(hook_seen[0])))
        hook_seen[hook_n_seen++] = stmt;
    return stmt == hook_fail_stmt ? hook_fail_code : 0;
}

// The index of the statement whose SQL is exactly sql.
static int
stmt_index(const char *sql)
{
    for (int i = 0; store_stmt_sql(i) != NULL; i++)
        if (strcmp(store_stmt_sql(i), sql) == 0)
            return i;
    fail_msg("no statement \"%s\"", sql);
    return -1;
}

static void
hook_fail(const char *sql, int code)
{
    hook_fail_stmt  = stmt_index(sql);
    hook_fail_code  = code;
    hook_n_seen     = 0;
    store_hook_step = hook;
}

// ---- helpers ----

static struct store_new_job
new_job(const uint8_t *payload, size_t len)
{
    return (struct store_new_job) {
        .type        = "t",
        .queue       = "default",
        .payload     = payload,
        .payload_len = len,
        .state       = ANVIL_JOB_QUEUED,
        .retry       = { .max_attempts = 3 },
        .created_at  = 1000,
        .run_at      = 1000,
    };
}

static int64_t
insert(struct store *st)
{
    struct store_new_job nj  = new_job((const uint8_t *) "{}", 2);
    struct anvil_error   err = { 0 };
    int64_t              id  = 0;
    assert_int_equal(store_job_insert(st, &nj, &id, &err), ANVIL_OK);
    return id;
}

static int
state_of(struct store *st, int64_t id)
{
    struct job         j   = { 0 };
    struct anvil_error err = { 0 };
    assert_int_equal(store_job_get(st, id, &j, &err), ANVIL_OK);
    int s = j.state;
    job_fini(&j);
    return s;
}

static void
assert_disk_full(int rc, const struct anvil_error *err)
{
    assert_int_equal(rc, ANVIL_RESOURCE_EXHAUSTED);
    assert_int_equal(err->code, ANVIL_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(err->msg, "disk full"));
}

static int64_t
pragma_int(struct store *st, const char *sql)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(store_sqlite_db(st), sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

// ---- disk full ----

static void
test_store_full_database_answers_resource_exhausted_disk_full(void **state)
{
    struct harness_store *f = *state;
    insert(f->st);
    // Let the database grow by a few pages at most, then fill them.
    int64_t pages = pragma_int(f->st, "PRAGMA page_count");
    char    sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
        (long long) pages + 2);
    assert_int_equal(
        sqlite3_exec(store_sqlite_db(f->st), sql, NULL, NULL, NULL), SQLITE_OK);
    static uint8_t       big[16384];
    struct store_new_job nj  = new_job(big, sizeof(big));
    struct anvil_error   err = { 0 };
    int64_t              id  = 0;
    int                  rc  = ANVIL_OK;
    for (int i = 0; rc == ANVIL_OK && i < 64; i++)
        rc = store_job_insert(f->st, &nj, &id, &err);
    assert_disk_full(rc, &err);
}

static void
test_store_injected_disk_full_at_commit_answers_resource_exhausted(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    int64_t id = insert(f->st);
    hook_fail("COMMIT", ANVIL_RESOURCE_EXHAUSTED);
    assert_disk_full(store_commit(f->st, &err), &err);
    store_hook_step = NULL;
    assert_int_equal(store_rollback(f->st, &err), ANVIL_OK);
    struct job j = { 0 };
    assert_int_equal(store_job_get(f->st, id, &j, &err), ANVIL_NOT_FOUND);
}

static void
test_store_injected_io_error_at_begin_answers_internal(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    hook_fail("BEGIN IMMEDIATE", 1);
    assert_int_equal(store_begin(f->st, &err), ANVIL_INTERNAL);
    assert_int_equal(err.code, ANVIL_INTERNAL);
    assert_null(strstr(err.msg, "disk full"));
    assert_non_null(strstr(err.msg, "transaction"));
}

// ---- savepoints ----

static void
test_store_failed_rollback_to_savepoint_is_reported(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    int64_t id = insert(f->st);
    hook_fail("ROLLBACK TO cmd", 1);
    int rc = store_rollback_savepoint(f->st, &err);
    assert_int_not_equal(rc, ANVIL_OK);
    assert_int_equal(err.code, rc);
    assert_true(err.msg[0] != '\0');
    // The caller then rolls the whole transaction back: nothing stays.
    store_hook_step = NULL;
    assert_int_equal(store_rollback(f->st, &err), ANVIL_OK);
    struct job j = { 0 };
    assert_int_equal(store_job_get(f->st, id, &j, &err), ANVIL_NOT_FOUND);
}

static void
test_store_failed_release_after_rollback_to_is_reported(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    insert(f->st);
    hook_fail("RELEASE cmd", ANVIL_RESOURCE_EXHAUSTED);
    assert_disk_full(store_rollback_savepoint(f->st, &err), &err);
    store_hook_step = NULL;
    assert_int_equal(store_rollback(f->st, &err), ANVIL_OK);
}

static void
test_store_seam_sees_every_transaction_statement(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    hook_fail("COMMIT", 0); // record only
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    assert_int_equal(store_rollback_savepoint(f->st, &err), ANVIL_OK);
    assert_int_equal(store_rollback(f->st, &err), ANVIL_OK);
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    const char *want[] = { "BEGIN IMMEDIATE", "SAVEPOINT cmd", "RELEASE cmd",
        "SAVEPOINT cmd", "ROLLBACK TO cmd", "RELEASE cmd", "ROLLBACK",
        "BEGIN IMMEDIATE", "COMMIT" };
    size_t      n      = sizeof(want) / sizeof(want[0]);
    assert_int_equal(hook_n_seen, (int) n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(store_stmt_sql(hook_seen[i]), want[i]);
}

// ---- binds ----

static void
test_store_result_too_long_to_bind_fails_the_finish_and_writes_nothing(
    void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    struct job            j   = { 0 };
    int64_t               id  = insert(f->st);
    assert_int_equal(
        store_job_lease(f->st, id, "w1", 0, 2000, 30000, &j, &err), ANVIL_OK);
    job_fini(&j);
    sqlite3_limit(store_sqlite_db(f->st), SQLITE_LIMIT_LENGTH, 1000);
    static uint8_t result[4000];
    memset(result, 'r', sizeof(result));
    int rc = store_job_finish(f->st, id, ANVIL_JOB_SUCCEEDED, result,
        sizeof(result), NULL, 3000, &err);
    assert_int_equal(rc, ANVIL_INTERNAL);
    assert_int_equal(err.code, ANVIL_INTERNAL);
    assert_non_null(strstr(err.msg, "too big"));
    // Nothing was written: the job is still running, without a result.
    sqlite3_limit(store_sqlite_db(f->st), SQLITE_LIMIT_LENGTH, 1000000000);
    assert_int_equal(store_job_get(f->st, id, &j, &err), ANVIL_OK);
    assert_int_equal(j.state, ANVIL_JOB_RUNNING);
    assert_int_equal(j.result_len, 0);
    job_fini(&j);
    // And the statement works again once the value fits.
    assert_int_equal(store_job_finish(f->st, id, ANVIL_JOB_SUCCEEDED, result,
                         10, NULL, 3000, &err),
        ANVIL_OK);
    assert_int_equal(state_of(f->st, id), ANVIL_JOB_SUCCEEDED);
}

static void
test_store_key_too_long_to_bind_fails_the_insert_and_stores_nothing(
    void **state)
{
    struct harness_store *f = *state;
    sqlite3_limit(store_sqlite_db(f->st), SQLITE_LIMIT_LENGTH, 1000);
    char key[2000];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1]    = '\0';
    struct store_new_job nj = new_job((const uint8_t *) "{}", 2);
    nj.idem_key             = key;
    struct anvil_error err  = { 0 };
    int64_t            id   = 0;
    int                rc   = store_job_insert(f->st, &nj, &id, &err);
    assert_int_equal(rc, ANVIL_INTERNAL);
    assert_non_null(strstr(err.msg, "too big"));
    sqlite3_limit(store_sqlite_db(f->st), SQLITE_LIMIT_LENGTH, 1000000000);
    struct store_depth *d     = NULL;
    size_t              n     = 0;
    uint64_t            total = 0;
    assert_int_equal(store_depths(f->st, &d, &n, &total, &err), ANVIL_OK);
    assert_int_equal(n, 0); // no job is queued
    store_depths_free(d, n);
    assert_int_equal(store_job_by_key(f->st, key, &id, &err), ANVIL_NOT_FOUND);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_store_full_database_answers_resource_exhausted_disk_full),
        T(test_store_injected_disk_full_at_commit_answers_resource_exhausted),
        T(test_store_injected_io_error_at_begin_answers_internal),
        T(test_store_failed_rollback_to_savepoint_is_reported),
        T(test_store_failed_release_after_rollback_to_is_reported),
        T(test_store_seam_sees_every_transaction_statement),
        T(test_store_result_too_long_to_bind_fails_the_finish_and_writes_nothing),
        T(test_store_key_too_long_to_bind_fails_the_insert_and_stores_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
