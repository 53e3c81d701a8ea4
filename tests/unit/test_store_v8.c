// test_store_v8.c - schema version 8 of the store: a job's progress
// (store_job_progress), kept across a reopen and once the job is final,
// cleared by the next lease; a JOB_PROGRESS event's percent; and the
// migration from a version-7 database.
#include "../../server/store.h"
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

// ---- helpers ----

// Leases job id to worker "w1" (a new attempt).
static void
lease(struct store *st, int64_t id)
{
    struct job         j   = { 0 };
    struct anvil_error err = { 0 };
    assert_int_equal(
        store_job_lease(st, id, "w1", 0, 100, 30000, &j, &err), ANVIL_OK);
    job_fini(&j);
}

// A job of type "t", leased (its first attempt) unless `queued`; its id.
static int64_t
add_job(struct store *st, bool queued)
{
    struct store_new_job nj = { .type = "t", .queue = "q", .payload_len = 0 };
    nj.payload              = (const uint8_t *) "";
    nj.state                = ANVIL_JOB_QUEUED;
    nj.retry                = (struct retry_policy) { 3, 1000, 60000, 2.0 };
    nj.created_at = nj.run_at = 10;
    struct anvil_error err    = { 0 };
    int64_t            id     = 0;
    assert_int_equal(store_job_insert(st, &nj, &id, &err), ANVIL_OK);
    if (!queued)
        lease(st, id);
    return id;
}

// Records a progress; returns whether the store called it a change.
static bool
progress(struct store *st, int64_t id, int percent, const char *msg)
{
    struct anvil_error err     = { 0 };
    bool               changed = false;
    assert_int_equal(
        store_job_progress(st, id, percent, msg, &changed, &err), ANVIL_OK);
    return changed;
}

// Asserts job id's progress: has, percent and message.
static void
expect_progress(
    struct store *st, int64_t id, bool has, int percent, const char *msg)
{
    struct job         j   = { 0 };
    struct anvil_error err = { 0 };
    assert_int_equal(store_job_get(st, id, &j, &err), ANVIL_OK);
    assert_int_equal(j.has_progress, has);
    if (has) {
        assert_int_equal(j.progress_percent, percent);
        assert_string_equal(j.progress_message, msg);
    }
    job_fini(&j);
}

static int64_t
sql_int(const char *path, const char *sql)
{
    sqlite3      *db = NULL;
    sqlite3_stmt *s  = NULL;
    int64_t       v  = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK
        && sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK
        && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void
sql_run(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

// ---- progress ----

static void
test_store_progress_is_absent_until_reported_then_kept(void **state)
{
    struct harness_store *f  = *state;
    int64_t               id = add_job(f->st, true);
    expect_progress(f->st, id, false, 0, NULL);
    lease(f->st, id);
    assert_true(progress(f->st, id, 40, "copying"));
    expect_progress(f->st, id, true, 40, "copying");
    // 0% with no message is a report too, not "none".
    assert_true(progress(f->st, id, 0, NULL));
    expect_progress(f->st, id, true, 0, "");
}

static void
test_store_progress_repeated_is_not_a_change(void **state)
{
    struct harness_store *f  = *state;
    int64_t               id = add_job(f->st, false);
    assert_true(progress(f->st, id, 10, "a"));
    assert_false(progress(f->st, id, 10, "a"));
    assert_true(progress(f->st, id, 10, "b"));
    assert_true(progress(f->st, id, 11, "b"));
    // An unknown job changes nothing and is no error.
    assert_false(progress(f->st, id + 100, 5, "x"));
}

static void
test_store_progress_survives_a_reopen(void **state)
{
    struct harness_store *f  = *state;
    int64_t               id = add_job(f->st, false);
    assert_true(progress(f->st, id, 75, "almost"));
    store_close(f->st);
    f->st                  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(store_open(f->path, 1, &f->st, &err), ANVIL_OK);
    expect_progress(f->st, id, true, 75, "almost");
}

static void
test_store_progress_is_kept_when_final_and_cleared_by_a_new_attempt(
    void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    int64_t               id  = add_job(f->st, false);
    assert_true(progress(f->st, id, 30, "first try"));
    // A failed attempt waits again: the last value stays until a lease.
    assert_int_equal(
        store_job_requeue(f->st, id, ANVIL_JOB_QUEUED, 200, "boom", &err),
        ANVIL_OK);
    expect_progress(f->st, id, true, 30, "first try");
    lease(f->st, id);
    expect_progress(f->st, id, false, 0, NULL);
    assert_true(progress(f->st, id, 100, "done"));
    assert_int_equal(store_job_finish(f->st, id, ANVIL_JOB_SUCCEEDED,
                         (const uint8_t *) "ok", 2, NULL, 300, &err),
        ANVIL_OK);
    expect_progress(f->st, id, true, 100, "done");
}

static void
test_store_a_progress_event_keeps_its_percent(void **state)
{
    struct harness_store  *f     = *state;
    struct anvil_error     e     = { 0 };
    struct store_new_event ev    = { .kind = EV_JOB_PROGRESS,
           .at                             = 5,
           .job_id                         = 1,
           .message                        = "half",
           .has_progress                   = true,
           .progress_percent               = 50 };
    struct store_new_event plain = { .kind = EV_JOB_STARTED, .at = 6 };
    uint64_t               seq;
    assert_int_equal(store_event_insert(f->st, &ev, &seq, &e), ANVIL_OK);
    assert_int_equal(store_event_insert(f->st, &plain, &seq, &e), ANVIL_OK);
    struct store_event_filter flt = { .limit = 10 };
    struct store_event       *out = NULL;
    size_t                    n   = 0;
    uint64_t                  to  = 0;
    assert_int_equal(
        store_events_read(f->st, &flt, &out, &n, &to, &e), ANVIL_OK);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].kind, EV_JOB_PROGRESS);
    assert_true(out[0].has_progress);
    assert_int_equal(out[0].progress_percent, 50);
    assert_string_equal(out[0].message, "half");
    assert_false(out[1].has_progress);
    store_events_free(out, n);
}

// ---- migration ----

// A version-7 database: today's schema without version 8's columns (what
// the 6 -> 7 step left), holding a running and a finished job and an
// event written through the store.
static void
make_v7_database(struct harness_store *f, int64_t *running, int64_t *done)
{
    struct anvil_error err = { 0 };
    *running               = add_job(f->st, false);
    *done                  = add_job(f->st, false);
    assert_int_equal(store_job_finish(f->st, *done, ANVIL_JOB_FAILED, NULL, 0,
                         "boom", 300, &err),
        ANVIL_OK);
    struct store_new_event ev = { .kind = EV_JOB_FAILED, .at = 300 };
    uint64_t               seq;
    assert_int_equal(store_event_insert(f->st, &ev, &seq, &err), ANVIL_OK);
    store_close(f->st);
    f->st = NULL;
    sql_run(f->path, HARNESS_SQL_BACK_TO_V7 "PRAGMA user_version = 7;");
}

static void
test_store_migrates_a_version_7_database_adding_progress(void **state)
{
    struct harness_store *f = *state;
    int64_t               running, done;
    make_v7_database(f, &running, &done);
    assert_int_equal(sql_int(f->path,
                         "SELECT COUNT(*) FROM pragma_table_info('jobs') "
                         "WHERE name LIKE 'progress%'"),
        0);
    struct anvil_error err = { 0 };
    assert_int_equal(store_open(f->path, 1, &f->st, &err), ANVIL_OK);
    assert_int_equal(
        sql_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM jobs"), 2);
    assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM events"), 1);
    // Old rows have no progress, and take one.
    expect_progress(f->st, running, false, 0, NULL);
    expect_progress(f->st, done, false, 0, NULL);
    assert_true(progress(f->st, running, 20, "resumed"));
    expect_progress(f->st, running, true, 20, "resumed");
    // Reopening a migrated database migrates nothing more.
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(store_open(f->path, 1, &f->st, &err), ANVIL_OK);
    expect_progress(f->st, running, true, 20, "resumed");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_store_progress_is_absent_until_reported_then_kept, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_store_progress_repeated_is_not_a_change, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_progress_survives_a_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_progress_is_kept_when_final_and_cleared_by_a_new_attempt,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_a_progress_event_keeps_its_percent, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_migrates_a_version_7_database_adding_progress, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
