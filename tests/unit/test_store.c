// test_store.c - the store: schema version and WAL, reopening, refusing a
// newer schema, the job rows and their transitions, listing and paging,
// the active scan, queue depths, and the failure seam (store_hook_step)
// with savepoint rollback. With ANVIL_TEST_STORE=postgresql the same cases
// run on the PostgreSQL backend (pg_harness.h); the few about what only
// SQLite has (WAL, PRAGMA user_version, its old schema versions) skip.
#include "../../server/store.h"
#include "../harness.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

// ---- fixture: a fresh directory and database per test ----

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

static struct store_new_job
new_job(const char *type, const char *queue)
{
    return (struct store_new_job) {
        .type        = type,
        .queue       = queue,
        .payload     = (const uint8_t *) "{}",
        .payload_len = 2,
        .state       = ANVIL_JOB_QUEUED,
        .retry       = { .max_attempts = 3 },
        .created_at  = 1000,
        .run_at      = 1000,
    };
}

static int64_t
insert(struct store *st, const struct store_new_job *nj)
{
    struct anvil_error err = { 0 };
    int64_t            id  = 0;
    int                rc  = store_job_insert(st, nj, &id, &err);
    if (rc != ANVIL_OK)
        fprintf(stderr, "insert: %s\n", err.msg);
    assert_int_equal(rc, ANVIL_OK);
    assert_true(id > 0);
    return id;
}

static int64_t
insert_queued(struct store *st, const char *type, const char *queue)
{
    struct store_new_job nj = new_job(type, queue);
    return insert(st, &nj);
}

// Reads a job; asserts it exists. Caller job_fini's.
static struct job
get(struct store *st, int64_t id)
{
    struct job         j   = { 0 };
    struct anvil_error err = { 0 };
    assert_int_equal(store_job_get(st, id, &j, &err), ANVIL_OK);
    return j;
}

static int
state_of(struct store *st, int64_t id)
{
    struct job j = get(st, id);
    int        s = j.state;
    job_fini(&j);
    return s;
}

// Runs one SQL statement on a second connection (SQLite file or
// PostgreSQL database); returns an int result.
static int
sql_int(const char *path, const char *sql)
{
    return (int) harness_sql_int(path, sql);
}

// The query of the schema version, per backend.
static const char *
version_sql(const struct harness_store *f)
{
    return f->pg ? "SELECT max(version) FROM schema_version"
                 : "PRAGMA user_version";
}

// Sets the schema version on a second connection.
static void
set_version(const struct harness_store *f, int v)
{
    char sql[96];
    if (f->pg)
        snprintf(sql, sizeof(sql),
            "INSERT INTO schema_version(version) VALUES(%d)", v);
    else
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
    assert_int_equal(harness_sql_exec(f->path, sql), 0);
}

// Opens f's store again on its backend.
static int
open_again(struct harness_store *f, int synchronous, struct store **st,
    struct anvil_error *err)
{
    return f->pg ? store_open_pg(f->path, st, err)
                 : store_open(f->path, synchronous, st, err);
}

// What only the SQLite backend has skips on PostgreSQL.
#define SQLITE_ONLY(f) \
    do {               \
        if ((f)->pg)   \
            skip();    \
    } while (0)

// ---- the failure seam ----
//
// store.h does not export the statement indexes, so a test learns the
// index of a statement by recording what one call steps, then arms a
// failure for that index.

static int hook_last     = -1; // index of the last statement stepped
static int hook_calls    = 0;
static int hook_fail_id  = -1; // fail steps of this statement...
static int hook_fail_cnt = 0;  // ...this many times

static int
hook(int stmt)
{
    hook_last = stmt;
    hook_calls++;
    if (stmt == hook_fail_id && hook_fail_cnt > 0) {
        hook_fail_cnt--;
        return 1;
    }
    return 0;
}

static void
hook_record(void)
{
    hook_last       = -1;
    hook_calls      = 0;
    hook_fail_id    = -1;
    hook_fail_cnt   = 0;
    store_hook_step = hook;
}

static void
hook_arm(int stmt, int times)
{
    hook_fail_id    = stmt;
    hook_fail_cnt   = times;
    store_hook_step = hook;
}

// ---- open, schema, reopen ----

static void
test_store_open_creates_schema_version_and_wal_mode(void **state)
{
    struct harness_store *f = *state;
    assert_int_equal(sql_int(f->path, version_sql(f)), STORE_SCHEMA_VERSION);
    // The jobs table exists and is empty.
    assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM jobs"), 0);
    if (f->pg)
        return;
    sqlite3      *db = NULL;
    sqlite3_stmt *s  = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *) sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void
test_store_open_fails_for_a_path_it_cannot_create(void **state)
{
    (void) state;
    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    int rc = store_open("/nonexistent-anvil-dir/x/anvil.db", 1, &st, &err);
    assert_int_equal(rc, ANVIL_INTERNAL);
    assert_int_equal(err.code, ANVIL_INTERNAL);
    assert_null(st);
    assert_non_null(strstr(err.msg, "/nonexistent-anvil-dir/x/anvil.db"));
}

static void
test_store_open_refuses_a_file_that_is_not_a_database(void **state)
{
    struct harness_store *f = *state;
    char                  path[160];
    snprintf(path, sizeof(path), "%s/garbage.db", f->dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 4096; i++)
        fputc((i * 7 + 3) & 0xff, fp);
    fclose(fp);
    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_not_equal(store_open(path, 1, &st, &err), ANVIL_OK);
    assert_int_not_equal(err.code, ANVIL_OK);
    assert_true(strlen(err.msg) > 0);
    assert_null(st);
}

static void
test_store_reopen_keeps_jobs_and_schema(void **state)
{
    struct harness_store *f  = *state;
    struct store_new_job  nj = new_job("email.send", "mail");
    nj.idem_key              = "key-1";
    int64_t id               = insert(f->st, &nj);
    store_close(f->st);
    f->st = NULL;

    struct anvil_error err = { 0 };
    assert_int_equal(open_again(f, 2, &f->st, &err), ANVIL_OK);
    struct job j = get(f->st, id);
    assert_string_equal(j.type, "email.send");
    assert_string_equal(j.queue, "mail");
    assert_int_equal(j.state, ANVIL_JOB_QUEUED);
    job_fini(&j);
    int64_t found = 0;
    assert_int_equal(store_job_by_key(f->st, "key-1", &found, &err), ANVIL_OK);
    assert_int_equal(found, id);
    // Ids keep growing after a reopen.
    assert_true(insert_queued(f->st, "t", "default") > id);
    assert_int_equal(sql_int(f->path, version_sql(f)), STORE_SCHEMA_VERSION);
}

static void
test_store_open_refuses_a_newer_schema_version(void **state)
{
    struct harness_store *f = *state;
    insert_queued(f->st, "t", "default");
    store_close(f->st);
    f->st = NULL;
    set_version(f, STORE_SCHEMA_VERSION + 1);

    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(open_again(f, 1, &st, &err), ANVIL_FAILED_PRECONDITION);
    assert_null(st);
    assert_non_null(strstr(err.msg, "newer"));
    // Nothing was changed: the version and the row are still there.
    assert_int_equal(
        sql_int(f->path, version_sql(f)), STORE_SCHEMA_VERSION + 1);
    assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM jobs"), 1);
}

static void
test_store_open_refuses_a_newer_schema_without_an_error_struct(void **state)
{
    struct harness_store *f = *state;
    store_close(f->st);
    f->st = NULL;
    set_version(f, 999);
    struct store *st = NULL;
    // err may be NULL; the code must not change because of that.
    assert_int_equal(open_again(f, 1, &st, NULL), ANVIL_FAILED_PRECONDITION);
    assert_null(st);
}

// The version-1 schema as shipped (store.c migrations[0]), to test the
// upgrade path from a database an older anvild wrote.
static const char V1_SCHEMA[]
    = "CREATE TABLE jobs ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT,"
      " type TEXT NOT NULL,"
      " queue TEXT NOT NULL,"
      " payload BLOB NOT NULL,"
      " priority INTEGER NOT NULL DEFAULT 0,"
      " state INTEGER NOT NULL,"
      " attempt INTEGER NOT NULL DEFAULT 0,"
      " max_attempts INTEGER NOT NULL,"
      " result BLOB,"
      " error TEXT,"
      " created_at INTEGER NOT NULL,"
      " started_at INTEGER,"
      " finished_at INTEGER,"
      " run_at INTEGER NOT NULL DEFAULT 0,"
      " timeout_ms INTEGER NOT NULL DEFAULT 0,"
      " lease_ms INTEGER NOT NULL DEFAULT 0,"
      " lease_deadline INTEGER,"
      " worker_id TEXT,"
      " idem_key TEXT,"
      " request_id INTEGER,"
      " cancel_requested INTEGER NOT NULL DEFAULT 0);"
      "CREATE UNIQUE INDEX jobs_idem_key ON jobs(idem_key)"
      " WHERE idem_key IS NOT NULL;"
      "CREATE UNIQUE INDEX jobs_request_id ON jobs(request_id)"
      " WHERE request_id IS NOT NULL;"
      "CREATE INDEX jobs_active ON jobs(state) WHERE state IN (2, 3, 4);"
      "INSERT INTO jobs(type, queue, payload, priority, state, max_attempts,"
      " created_at, run_at, idem_key, result, error)"
      " VALUES('old.type', 'legacy', x'00ff01', 4, 5, 3, 1234, 1234, 'k-old',"
      " x'6f6b', NULL);"
      "INSERT INTO jobs(type, queue, payload, state, max_attempts, created_at)"
      " VALUES('old.queued', 'default', x'', 3, 3, 1300);"
      "PRAGMA user_version = 1;";

// Writes a version-1 database at path, plus `extra` SQL.
static void
make_v1_database(const char *path, const char *extra)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, V1_SCHEMA, NULL, NULL, NULL), SQLITE_OK);
    if (extra != NULL)
        assert_int_equal(sqlite3_exec(db, extra, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void
test_store_open_migrates_a_version_1_database_keeping_its_jobs(void **state)
{
    struct harness_store *f = *state;
    SQLITE_ONLY(f);
    char path[160];
    snprintf(path, sizeof(path), "%s/v1.db", f->dir);
    make_v1_database(path, NULL);

    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(store_open(path, 1, &st, &err), ANVIL_OK);
    assert_int_equal(
        sql_int(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);

    struct job j = get(st, 1);
    assert_string_equal(j.type, "old.type");
    assert_string_equal(j.queue, "legacy");
    assert_int_equal(j.payload_len, 3);
    assert_memory_equal(j.payload, "\x00\xff\x01", 3);
    assert_int_equal(j.priority, 4);
    assert_int_equal(j.state, ANVIL_JOB_SUCCEEDED);
    assert_int_equal(j.result_len, 2);
    assert_memory_equal(j.result, "ok", 2);
    assert_string_equal(j.idem_key, "k-old");
    job_fini(&j);
    int64_t id = 0;
    assert_int_equal(store_job_by_key(st, "k-old", &id, &err), ANVIL_OK);
    assert_int_equal(id, 1);

    // The old queued job is still active and leasable.
    assert_int_equal(store_job_lease(st, 2, "w", 0, 1, 1, &j, &err), ANVIL_OK);
    assert_int_equal(j.attempt, 1);
    job_fini(&j);
    // New jobs continue the id sequence.
    assert_int_equal(insert_queued(st, "new", "default"), 3);
    store_close(st);
    // A second open does not migrate again.
    assert_int_equal(store_open(path, 1, &st, &err), ANVIL_OK);
    assert_int_equal(sql_int(path, "SELECT COUNT(*) FROM jobs"), 3);
    store_close(st);
}

static void
test_store_failed_migration_leaves_the_old_database_untouched(void **state)
{
    struct harness_store *f = *state;
    SQLITE_ONLY(f);
    char path[160];
    snprintf(path, sizeof(path), "%s/v1-conflict.db", f->dir);
    // A table in the way of the version-2 step makes it fail half-way.
    make_v1_database(path, "CREATE TABLE edges(x);");

    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(store_open(path, 1, &st, &err), ANVIL_INTERNAL);
    assert_null(st);
    assert_non_null(strstr(err.msg, "migrating"));
    assert_int_equal(sql_int(path, "PRAGMA user_version"), 1);
    assert_int_equal(sql_int(path, "SELECT COUNT(*) FROM jobs"), 2);
    // Nothing of the failed step stayed behind.
    assert_int_equal(sql_int(path,
                         "SELECT COUNT(*) FROM pragma_table_info("
                         "'jobs') WHERE name = 'workflow_id'"),
        0);
    assert_int_equal(sql_int(path,
                         "SELECT COUNT(*) FROM sqlite_master "
                         "WHERE name = 'workflows'"),
        0);
}

// ---- rows ----

static void
test_store_insert_and_get_round_trip_every_field(void **state)
{
    struct harness_store *f         = *state;
    const uint8_t         payload[] = { 'a', 0, 'b', 0, 0, 0xff, 'c' };
    struct store_new_job  nj        = new_job("image.resize", "media-2");
    nj.payload                      = payload;
    nj.payload_len                  = sizeof(payload);
    nj.priority                     = -7;
    nj.state                        = ANVIL_JOB_SCHEDULED;
    nj.retry.max_attempts           = 9;
    nj.created_at                   = 1700000000123;
    nj.run_at                       = 1700000005000;
    nj.timeout_ms                   = 4500;
    nj.lease_ms                     = 1234;
    nj.idem_key                     = "order-17";
    nj.request_id                   = 0xfeedbeefcafe;
    nj.retry.initial_backoff_ms     = 250;
    nj.retry.max_backoff_ms         = 9000;
    nj.retry.backoff_multiplier     = 1.5;
    int64_t    id                   = insert(f->st, &nj);
    struct job j                    = get(f->st, id);
    assert_int_equal(j.id, id);
    assert_string_equal(j.type, "image.resize");
    assert_string_equal(j.queue, "media-2");
    assert_int_equal(j.payload_len, sizeof(payload));
    assert_memory_equal(j.payload, payload, sizeof(payload));
    assert_int_equal(j.priority, -7);
    assert_int_equal(j.state, ANVIL_JOB_SCHEDULED);
    assert_int_equal(j.attempt, 0);
    assert_int_equal(j.retry.max_attempts, 9);
    assert_int_equal(j.result_len, 0);
    assert_string_equal(j.error, "");
    assert_int_equal(j.created_at, 1700000000123);
    assert_int_equal(j.started_at, 0);
    assert_int_equal(j.finished_at, 0);
    assert_int_equal(j.run_at, 1700000005000);
    assert_int_equal(j.timeout_ms, 4500);
    assert_int_equal(j.lease_deadline, 0);
    assert_string_equal(j.worker_id, "");
    assert_string_equal(j.idem_key, "order-17");
    assert_false(j.cancel_requested);
    assert_int_equal(j.lease_ms, 1234);
    assert_int_equal(j.retry.initial_backoff_ms, 250);
    assert_int_equal(j.retry.max_backoff_ms, 9000);
    assert_true(j.retry.backoff_multiplier == 1.5);
    assert_int_equal(j.workflow_id, 0);
    job_fini(&j);

    struct store_job_brief br  = { 0 };
    struct anvil_error     err = { 0 };
    assert_int_equal(store_job_brief(f->st, id, &br, &err), ANVIL_OK);
    assert_int_equal(br.state, ANVIL_JOB_SCHEDULED);
    assert_int_equal(br.retry.max_attempts, 9);
    assert_int_equal(br.lease_ms, 1234);
    assert_int_equal(br.timeout_ms, 4500);
    assert_int_equal(br.run_at, 1700000005000);
    assert_int_equal(br.priority, -7);
    assert_int_equal(br.retry.initial_backoff_ms, 250);
    assert_int_equal(br.retry.max_backoff_ms, 9000);
    assert_true(br.retry.backoff_multiplier == 1.5);
    assert_int_equal(br.workflow_id, 0);
    assert_string_equal(br.queue, "media-2");
    assert_string_equal(br.type, "image.resize");
    assert_string_equal(br.step, "");
    assert_string_equal(br.concurrency_key, "");

    int64_t found = 0;
    assert_int_equal(
        store_job_by_request(f->st, 0xfeedbeefcafe, &found, &err), ANVIL_OK);
    assert_int_equal(found, id);
}

static void
test_store_keeps_an_empty_payload_empty(void **state)
{
    struct harness_store *f  = *state;
    struct store_new_job  nj = new_job("t", "default");
    nj.payload               = NULL;
    nj.payload_len           = 0;
    int64_t    id            = insert(f->st, &nj);
    struct job j             = get(f->st, id);
    assert_int_equal(j.payload_len, 0);
    assert_non_null(j.payload);
    assert_string_equal(j.idem_key, "");
    job_fini(&j);
}

static void
test_store_get_of_an_unknown_id_is_not_found(void **state)
{
    struct harness_store *f   = *state;
    struct job            j   = { .id = 99 };
    struct anvil_error    err = { 0 };
    assert_int_equal(store_job_get(f->st, 12345, &j, &err), ANVIL_NOT_FOUND);
    assert_int_equal(store_job_get(f->st, 0, &j, &err), ANVIL_NOT_FOUND);
    assert_int_equal(store_job_get(f->st, -1, &j, &err), ANVIL_NOT_FOUND);
    struct store_job_brief br;
    assert_int_equal(store_job_brief(f->st, 12345, &br, &err), ANVIL_NOT_FOUND);
    int64_t id = 0;
    assert_int_equal(
        store_job_by_key(f->st, "nope", &id, &err), ANVIL_NOT_FOUND);
    assert_int_equal(
        store_job_by_request(f->st, 42, &id, &err), ANVIL_NOT_FOUND);
    assert_int_equal(id, 0);
}

static void
test_store_duplicate_idempotency_key_keeps_the_first_job(void **state)
{
    struct harness_store *f     = *state;
    struct store_new_job  first = new_job("a", "default");
    first.idem_key              = "same";
    int64_t id1                 = insert(f->st, &first);

    struct store_new_job second = new_job("b", "other");
    second.idem_key             = "same";
    int64_t            id2      = 0;
    struct anvil_error err      = { 0 };
    assert_int_not_equal(
        store_job_insert(f->st, &second, &id2, &err), ANVIL_OK);
    assert_int_not_equal(err.code, ANVIL_OK);

    int64_t found = 0;
    assert_int_equal(store_job_by_key(f->st, "same", &found, &err), ANVIL_OK);
    assert_int_equal(found, id1);
    struct job j = get(f->st, found);
    assert_string_equal(j.type, "a");
    job_fini(&j);
    assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM jobs"), 1);
}

static void
test_store_duplicate_request_id_keeps_the_first_job(void **state)
{
    struct harness_store *f  = *state;
    struct store_new_job  nj = new_job("a", "default");
    nj.request_id            = 77;
    int64_t            id1   = insert(f->st, &nj);
    int64_t            id2   = 0;
    struct anvil_error err   = { 0 };
    assert_int_not_equal(store_job_insert(f->st, &nj, &id2, &err), ANVIL_OK);
    int64_t found = 0;
    assert_int_equal(store_job_by_request(f->st, 77, &found, &err), ANVIL_OK);
    assert_int_equal(found, id1);
    assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM jobs"), 1);
}

static void
test_store_lease_takes_only_queued_jobs_and_counts_attempts(void **state)
{
    struct harness_store *f   = *state;
    int64_t               id  = insert_queued(f->st, "t", "default");
    struct job            j   = { 0 };
    struct anvil_error    err = { 0 };
    assert_int_equal(
        store_job_lease(f->st, id, "worker-1", 0, 5000, 30000, &j, &err),
        ANVIL_OK);
    assert_int_equal(j.id, id);
    assert_int_equal(j.state, ANVIL_JOB_RUNNING);
    assert_int_equal(j.attempt, 1);
    assert_int_equal(j.started_at, 5000);
    assert_int_equal(j.lease_deadline, 35000);
    assert_string_equal(j.worker_id, "worker-1");
    assert_string_equal(j.type, "t");
    job_fini(&j);

    // The update is stored, not only returned.
    j = get(f->st, id);
    assert_int_equal(j.state, ANVIL_JOB_RUNNING);
    assert_int_equal(j.attempt, 1);
    assert_int_equal(j.lease_deadline, 35000);
    job_fini(&j);

    // Second lease of the same job: it is no longer QUEUED.
    assert_int_equal(
        store_job_lease(f->st, id, "worker-2", 0, 6000, 30000, &j, &err),
        ANVIL_NOT_FOUND);
    j = get(f->st, id);
    assert_int_equal(j.attempt, 1);
    assert_string_equal(j.worker_id, "worker-1");
    job_fini(&j);

    // SCHEDULED and unknown jobs cannot be leased either.
    struct store_new_job nj = new_job("t", "default");
    nj.state                = ANVIL_JOB_SCHEDULED;
    int64_t sched           = insert(f->st, &nj);
    assert_int_equal(
        store_job_lease(f->st, sched, "w", 0, 1, 1, &j, &err), ANVIL_NOT_FOUND);
    assert_int_equal(state_of(f->st, sched), ANVIL_JOB_SCHEDULED);
    assert_int_equal(
        store_job_lease(f->st, 9999, "w", 0, 1, 1, &j, &err), ANVIL_NOT_FOUND);
}

static void
test_store_lease_uses_the_jobs_own_lease_and_records_the_token(void **state)
{
    struct harness_store *f  = *state;
    struct store_new_job  nj = new_job("t", "default");
    nj.lease_ms              = 500;
    int64_t            own   = insert(f->st, &nj);
    int64_t            dflt  = insert_queued(f->st, "t", "default");
    struct job         j     = { 0 };
    struct anvil_error err   = { 0 };
    assert_int_equal(
        store_job_lease(f->st, own, "w", 7, 1000, 30000, &j, &err), ANVIL_OK);
    assert_int_equal(j.lease_deadline, 1500);
    job_fini(&j);
    assert_int_equal(
        store_job_lease(f->st, dflt, "w", 0, 1000, 30000, &j, &err), ANVIL_OK);
    assert_int_equal(j.lease_deadline, 31000);
    job_fini(&j);

    struct store_job_brief br = { 0 };
    assert_int_equal(store_job_brief(f->st, own, &br, &err), ANVIL_OK);
    assert_int_equal(br.lease_token, 7);
    assert_int_equal(br.lease_ms, 500);
    assert_int_equal(store_job_brief(f->st, dflt, &br, &err), ANVIL_OK);
    assert_int_equal(br.lease_token, 0);
}

static void
test_store_finish_stores_final_state_result_and_error(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    struct job            j   = { 0 };
    int64_t               ok  = insert_queued(f->st, "t", "default");
    assert_int_equal(
        store_job_lease(f->st, ok, "w", 0, 10, 10, &j, &err), ANVIL_OK);
    job_fini(&j);
    const uint8_t result[] = { 'r', 0, 's' };
    assert_int_equal(store_job_finish(f->st, ok, ANVIL_JOB_SUCCEEDED, result,
                         sizeof(result), NULL, 50, &err),
        ANVIL_OK);
    j = get(f->st, ok);
    assert_int_equal(j.state, ANVIL_JOB_SUCCEEDED);
    assert_int_equal(j.result_len, sizeof(result));
    assert_memory_equal(j.result, result, sizeof(result));
    assert_string_equal(j.error, "");
    assert_int_equal(j.finished_at, 50);
    assert_int_equal(j.lease_deadline, 0);
    assert_int_equal(j.attempt, 1);
    job_fini(&j);

    int64_t bad = insert_queued(f->st, "t", "default");
    assert_int_equal(store_job_finish(f->st, bad, ANVIL_JOB_FAILED, NULL, 0,
                         "disk on fire", 60, &err),
        ANVIL_OK);
    j = get(f->st, bad);
    assert_int_equal(j.state, ANVIL_JOB_FAILED);
    assert_int_equal(j.result_len, 0);
    assert_string_equal(j.error, "disk on fire");
    assert_int_equal(j.finished_at, 60);
    job_fini(&j);

    // Finishing an id that does not exist stores nothing.
    assert_int_equal(store_job_finish(f->st, 4242, ANVIL_JOB_SUCCEEDED, NULL, 0,
                         NULL, 70, &err),
        ANVIL_OK);
    assert_int_equal(store_job_get(f->st, 4242, &j, &err), ANVIL_NOT_FOUND);
    assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM jobs"), 2);
}

static void
test_store_requeue_and_make_ready_move_a_job_back_to_work(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    struct job            j   = { 0 };
    int64_t               id  = insert_queued(f->st, "t", "default");
    assert_int_equal(
        store_job_lease(f->st, id, "w", 0, 10, 10, &j, &err), ANVIL_OK);
    job_fini(&j);

    assert_int_equal(store_job_requeue(f->st, id, ANVIL_JOB_SCHEDULED, 9000,
                         "connection reset", &err),
        ANVIL_OK);
    j = get(f->st, id);
    assert_int_equal(j.state, ANVIL_JOB_SCHEDULED);
    assert_int_equal(j.run_at, 9000);
    assert_string_equal(j.error, "connection reset");
    assert_int_equal(j.lease_deadline, 0);
    assert_int_equal(j.attempt, 1);
    job_fini(&j);

    // A SCHEDULED job is not leasable until made ready.
    assert_int_equal(
        store_job_lease(f->st, id, "w", 0, 30, 10, &j, &err), ANVIL_NOT_FOUND);
    assert_int_equal(store_job_make_ready(f->st, id, &err), ANVIL_OK);
    assert_int_equal(state_of(f->st, id), ANVIL_JOB_QUEUED);
    // Only SCHEDULED jobs can be made ready.
    assert_int_equal(store_job_make_ready(f->st, id, &err), ANVIL_NOT_FOUND);
    assert_int_equal(store_job_make_ready(f->st, 777, &err), ANVIL_NOT_FOUND);

    assert_int_equal(
        store_job_lease(f->st, id, "w2", 0, 50, 10, &j, &err), ANVIL_OK);
    assert_int_equal(j.attempt, 2);
    assert_string_equal(j.error, "connection reset"); // last error kept
    assert_string_equal(j.worker_id, "w2");
    job_fini(&j);

    // Requeue straight to QUEUED as well.
    assert_int_equal(
        store_job_requeue(f->st, id, ANVIL_JOB_QUEUED, 70, NULL, &err),
        ANVIL_OK);
    assert_int_equal(state_of(f->st, id), ANVIL_JOB_QUEUED);
}

static void
test_store_extend_and_request_cancel_update_a_running_job(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    struct job            j   = { 0 };
    int64_t               id  = insert_queued(f->st, "t", "default");
    assert_int_equal(
        store_job_lease(f->st, id, "w", 0, 10, 10, &j, &err), ANVIL_OK);
    job_fini(&j);
    assert_int_equal(store_job_extend(f->st, id, 8888, &err), ANVIL_OK);
    assert_int_equal(store_job_request_cancel(f->st, id, &err), ANVIL_OK);

    struct store_job_brief br = { 0 };
    assert_int_equal(store_job_brief(f->st, id, &br, &err), ANVIL_OK);
    assert_int_equal(br.state, ANVIL_JOB_RUNNING);
    assert_int_equal(br.attempt, 1);
    assert_int_equal(br.lease_deadline, 8888);
    assert_int_equal(br.started_at, 10);
    assert_true(br.cancel_requested);
    j = get(f->st, id);
    assert_true(j.cancel_requested);
    assert_int_equal(j.lease_deadline, 8888);
    job_fini(&j);

    // Another job is untouched.
    int64_t other = insert_queued(f->st, "t", "default");
    assert_int_equal(store_job_brief(f->st, other, &br, &err), ANVIL_OK);
    assert_false(br.cancel_requested);
    assert_int_equal(br.lease_deadline, 0);
}

// ---- list ----

static void
test_store_list_pages_newest_first_covering_every_job_once(void **state)
{
    struct harness_store *f = *state;
    enum { N = 47 };
    int64_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = insert_queued(f->st, "t", "default");

    struct store_list_filter flt  = { .limit = 10 };
    int                      seen = 0;
    int64_t                  prev = INT64_MAX;
    for (int page = 0; page < 10; page++) {
        struct job        *jobs = NULL;
        size_t             n    = 0;
        struct anvil_error err  = { 0 };
        assert_int_equal(
            store_job_list(f->st, &flt, &jobs, &n, &err), ANVIL_OK);
        assert_true(n <= 10);
        for (size_t i = 0; i < n; i++) {
            assert_true(jobs[i].id < prev); // strictly newest first
            prev = jobs[i].id;
            assert_int_equal(jobs[i].id, ids[N - 1 - seen]);
            seen++;
        }
        int64_t last = n > 0 ? jobs[n - 1].id : 0;
        job_array_free(jobs, n);
        if (n < 10)
            break;
        flt.before_id = last;
    }
    assert_int_equal(seen, N);
}

static void
test_store_list_filters_by_state_type_and_queue(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    struct job            j   = { 0 };
    int64_t               a1  = insert_queued(f->st, "a", "q1");
    int64_t               a2  = insert_queued(f->st, "a", "q2");
    int64_t               b1  = insert_queued(f->st, "b", "q1");
    int64_t               a1r = insert_queued(f->st, "a", "q1");
    assert_int_equal(
        store_job_lease(f->st, a1r, "w", 0, 1, 1, &j, &err), ANVIL_OK);
    job_fini(&j);

    struct {
        struct store_list_filter flt;
        size_t                   n;
        int64_t                  want[4];
    } cases[] = {
        { { .limit = 100 }, 4, { a1r, b1, a2, a1 } },
        { { .type = "a", .limit = 100 }, 3, { a1r, a2, a1 } },
        { { .queue = "q1", .limit = 100 }, 3, { a1r, b1, a1 } },
        { { .type = "a", .queue = "q1", .limit = 100 }, 2, { a1r, a1 } },
        { { .state = ANVIL_JOB_RUNNING, .limit = 100 }, 1, { a1r } },
        { { .state = ANVIL_JOB_QUEUED, .type = "a", .limit = 100 }, 2,
            { a2, a1 } },
        { { .type = "a", .limit = 2 }, 2, { a1r, a2 } },
        { { .type = "a", .before_id = a2, .limit = 100 }, 1, { a1 } },
        // Matching nothing is an empty page, not an error.
        { { .type = "nope", .limit = 100 }, 0, { 0 } },
        { { .state = ANVIL_JOB_FAILED, .limit = 100 }, 0, { 0 } },
        { { .before_id = a1, .limit = 100 }, 0, { 0 } },
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct job *jobs = NULL;
        size_t      n    = 99;
        assert_int_equal(
            store_job_list(f->st, &cases[c].flt, &jobs, &n, &err), ANVIL_OK);
        if (n != cases[c].n)
            fprintf(stderr, "case %zu: %zu jobs\n", c, n);
        assert_int_equal(n, cases[c].n);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(jobs[i].id, cases[c].want[i]);
        job_array_free(jobs, n);
    }
}

// ---- active scan and depths ----

struct scan_rec {
    size_t  n;
    int64_t ids[16];
    int     states[16];
    char    types[16][8];
    int     stop_after; // return an error after this many calls; 0 = never
};

static int
scan_cb(void *arg, const struct job *j)
{
    struct scan_rec *r = arg;
    if (r->n < 16) {
        r->ids[r->n]    = j->id;
        r->states[r->n] = j->state;
        snprintf(r->types[r->n], sizeof(r->types[r->n]), "%s", j->type);
    }
    r->n++;
    if (r->stop_after > 0 && r->n >= (size_t) r->stop_after)
        return ANVIL_RESOURCE_EXHAUSTED;
    return ANVIL_OK;
}

// One job in each state but PENDING; returns ids in state order 2..7.
static void
one_of_each_state(struct store *st, int64_t ids[6])
{
    struct anvil_error   err = { 0 };
    struct job           j   = { 0 };
    struct store_new_job nj  = new_job("s", "default");
    nj.state                 = ANVIL_JOB_SCHEDULED;
    ids[0]                   = insert(st, &nj);                   // SCHEDULED
    ids[1]                   = insert_queued(st, "q", "default"); // QUEUED
    ids[2]                   = insert_queued(st, "r", "default"); // RUNNING
    assert_int_equal(store_job_lease(st, ids[2], "w", 0, 1, 1, &j, &err), 0);
    job_fini(&j);
    for (int k = 3; k < 6; k++) {
        ids[k] = insert_queued(st, "f", "default");
        assert_int_equal(store_job_finish(st, ids[k], ANVIL_JOB_SCHEDULED + k,
                             NULL, 0, NULL, 5, &err),
            ANVIL_OK);
    }
}

static void
test_store_scan_active_sees_only_scheduled_queued_and_running(void **state)
{
    struct harness_store *f = *state;
    int64_t               ids[6];
    one_of_each_state(f->st, ids);
    assert_int_equal(state_of(f->st, ids[5]), ANVIL_JOB_CANCELED);

    struct scan_rec    r   = { 0 };
    struct anvil_error err = { 0 };
    assert_int_equal(store_scan_active(f->st, scan_cb, &r, &err), ANVIL_OK);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.ids[0], ids[0]); // oldest first
    assert_int_equal(r.states[0], ANVIL_JOB_SCHEDULED);
    assert_string_equal(r.types[0], "s");
    assert_int_equal(r.ids[1], ids[1]);
    assert_int_equal(r.states[1], ANVIL_JOB_QUEUED);
    assert_int_equal(r.ids[2], ids[2]);
    assert_int_equal(r.states[2], ANVIL_JOB_RUNNING);
}

static void
test_store_scan_active_stops_when_the_callback_fails(void **state)
{
    struct harness_store *f = *state;
    for (int i = 0; i < 5; i++)
        insert_queued(f->st, "t", "default");
    struct scan_rec    r   = { .stop_after = 2 };
    struct anvil_error err = { 0 };
    assert_int_equal(
        store_scan_active(f->st, scan_cb, &r, &err), ANVIL_RESOURCE_EXHAUSTED);
    assert_int_equal(r.n, 2);
    assert_int_equal(err.code, ANVIL_RESOURCE_EXHAUSTED);
    // The statement was reset: a second scan works and sees all five.
    struct scan_rec again = { 0 };
    assert_int_equal(store_scan_active(f->st, scan_cb, &again, &err), 0);
    assert_int_equal(again.n, 5);
}

static void
test_store_depths_count_scheduled_queued_and_running_per_queue_and_type(
    void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    struct store_depth   *d   = NULL;
    size_t                n   = 99;
    uint64_t              tot = 99;
    // Empty database: no rows, no jobs ever.
    assert_int_equal(store_depths(f->st, &d, &n, &tot, &err), ANVIL_OK);
    assert_int_equal(n, 0);
    assert_int_equal(tot, 0);
    store_depths_free(d, n);

    int64_t ids[6];
    one_of_each_state(f->st, ids); // s:SCHEDULED q:QUEUED r:RUNNING f:final
    insert_queued(f->st, "q", "default");
    insert_queued(f->st, "q", "other");
    d = NULL;
    assert_int_equal(store_depths(f->st, &d, &n, &tot, &err), ANVIL_OK);
    assert_int_equal(tot, 8);
    // Ordered by queue, then type; final jobs are not counted.
    assert_int_equal(n, 4);
    assert_string_equal(d[0].queue, "default");
    assert_string_equal(d[0].type, "q");
    assert_int_equal(d[0].queued, 2);
    assert_int_equal(d[0].running, 0);
    assert_int_equal(d[0].scheduled, 0);
    assert_string_equal(d[1].queue, "default");
    assert_string_equal(d[1].type, "r");
    assert_int_equal(d[1].queued, 0);
    assert_int_equal(d[1].running, 1);
    assert_int_equal(d[1].scheduled, 0);
    assert_string_equal(d[2].queue, "default");
    assert_string_equal(d[2].type, "s");
    assert_int_equal(d[2].queued, 0);
    assert_int_equal(d[2].running, 0);
    assert_int_equal(d[2].scheduled, 1);
    assert_string_equal(d[3].queue, "other");
    assert_int_equal(d[3].queued, 1);
    assert_int_equal(d[3].scheduled, 0);
    store_depths_free(d, n);
    store_depths_free(NULL, 0);
}

// ---- retention, workers, tokens ----

static void
test_store_sweep_deletes_only_old_finished_jobs_up_to_the_limit(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    int64_t               old[5];
    for (int i = 0; i < 5; i++) {
        old[i] = insert_queued(f->st, "t", "default");
        assert_int_equal(
            store_job_finish(f->st, old[i], ANVIL_JOB_SUCCEEDED + i % 3, NULL,
                0, NULL, 100 + i, &err),
            ANVIL_OK);
    }
    int64_t recent = insert_queued(f->st, "t", "default");
    assert_int_equal(store_job_finish(f->st, recent, ANVIL_JOB_SUCCEEDED, NULL,
                         0, NULL, 5000, &err),
        ANVIL_OK);
    int64_t queued = insert_queued(f->st, "t", "default");

    int deleted = -1;
    assert_int_equal(store_sweep_jobs(f->st, 1000, 3, &deleted, &err), 0);
    assert_int_equal(deleted, 3);
    assert_int_equal(store_sweep_jobs(f->st, 1000, 3, &deleted, &err), 0);
    assert_int_equal(deleted, 2);
    assert_int_equal(store_sweep_jobs(f->st, 1000, 3, &deleted, &err), 0);
    assert_int_equal(deleted, 0);
    struct job j;
    for (int i = 0; i < 5; i++)
        assert_int_equal(
            store_job_get(f->st, old[i], &j, &err), ANVIL_NOT_FOUND);
    assert_int_equal(state_of(f->st, recent), ANVIL_JOB_SUCCEEDED);
    assert_int_equal(state_of(f->st, queued), ANVIL_JOB_QUEUED);
    // The total of jobs ever created does not shrink.
    struct store_depth *d   = NULL;
    size_t              n   = 0;
    uint64_t            tot = 0;
    assert_int_equal(store_depths(f->st, &d, &n, &tot, &err), ANVIL_OK);
    assert_int_equal(tot, 7);
    store_depths_free(d, n);
}

struct worker_count {
    char     name[16][16];
    uint32_t running[16];
    size_t   n;
};

static void
count_cb(void *arg, const char *worker, uint32_t running)
{
    struct worker_count *c = arg;
    if (c->n < 16) {
        snprintf(c->name[c->n], sizeof(c->name[0]), "%s", worker);
        c->running[c->n] = running;
    }
    c->n++;
}

static void
test_store_counts_running_jobs_per_worker(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    struct job            j   = { 0 };
    const char           *w[] = { "a", "b", "a", "a" };
    for (int i = 0; i < 4; i++) {
        int64_t id = insert_queued(f->st, "t", "default");
        assert_int_equal(
            store_job_lease(f->st, id, w[i], 0, 1, 1, &j, &err), ANVIL_OK);
        job_fini(&j);
    }
    insert_queued(f->st, "t", "default"); // queued: counted nowhere
    struct worker_count c = { 0 };
    assert_int_equal(store_running_by_worker(f->st, count_cb, &c, &err), 0);
    assert_int_equal(c.n, 2);
    for (size_t i = 0; i < c.n; i++) {
        if (strcmp(c.name[i], "a") == 0)
            assert_int_equal(c.running[i], 3);
        else
            assert_int_equal(c.running[i], 1);
    }
}

static void
test_store_tokens_round_trip_and_revoke_once(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    uint8_t               h1[32], h2[32];
    memset(h1, 0xa1, sizeof(h1));
    memset(h2, 0x02, sizeof(h2));
    int64_t id1 = 0, id2 = 0;
    assert_int_equal(
        store_token_insert(f->st, "ci", 2, h1, 32, 100, 0, &id1, &err), 0);
    assert_int_equal(
        store_token_insert(f->st, "worker", 3, h2, 32, 200, 900, &id2, &err),
        0);
    assert_true(id2 > id1);

    assert_int_equal(store_token_revoke(f->st, id1, 300, &err), ANVIL_OK);
    // Twice, or an unknown id: NOT_FOUND.
    assert_int_equal(
        store_token_revoke(f->st, id1, 400, &err), ANVIL_NOT_FOUND);
    assert_int_equal(
        store_token_revoke(f->st, 999, 400, &err), ANVIL_NOT_FOUND);

    struct store_token *t = NULL;
    size_t              n = 0;
    assert_int_equal(store_token_list(f->st, &t, &n, &err), ANVIL_OK);
    assert_int_equal(n, 2);
    assert_int_equal(t[0].id, id1);
    assert_string_equal(t[0].name, "ci");
    assert_int_equal(t[0].role, 2);
    assert_memory_equal(t[0].hash, h1, 32);
    assert_int_equal(t[0].created_at, 100);
    assert_int_equal(t[0].revoked_at, 300);
    assert_string_equal(t[1].name, "worker");
    assert_memory_equal(t[1].hash, h2, 32);
    assert_int_equal(t[1].expires_at, 900);
    assert_int_equal(t[1].revoked_at, 0);
    store_tokens_free(t, n);
}

// ---- transactions and the failure seam ----

static void
test_store_failed_statement_returns_internal_with_a_message(void **state)
{
    struct harness_store *f  = *state;
    int64_t               id = insert_queued(f->st, "t", "default");

    // Learn the index of the get statement, then make it fail once.
    struct job         j   = { 0 };
    struct anvil_error err = { 0 };
    hook_record();
    j = get(f->st, id);
    job_fini(&j);
    int get_stmt = hook_last;
    assert_true(get_stmt >= 0);

    hook_arm(get_stmt, 1);
    assert_int_equal(store_job_get(f->st, id, &j, &err), ANVIL_INTERNAL);
    assert_int_equal(err.code, ANVIL_INTERNAL);
    assert_non_null(strstr(err.msg, "database error"));
    assert_null(j.type);
    // The failure was transient: the next read works.
    j = get(f->st, id);
    assert_string_equal(j.type, "t");
    job_fini(&j);
}

static void
test_store_rolled_back_savepoint_leaves_nothing_half_written(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    struct job            j   = { 0 };

    // Learn the index of the extend statement (one step per call).
    int64_t probe = insert_queued(f->st, "probe", "default");
    hook_record();
    assert_int_equal(store_job_extend(f->st, probe, 1, &err), ANVIL_OK);
    int extend_stmt = hook_last;
    assert_int_equal(hook_calls, 1);
    store_hook_step = NULL;

    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    // Command 1 succeeds.
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    int64_t kept = insert_queued(f->st, "kept", "default");
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    // Command 2 writes twice, then fails on its third statement.
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    int64_t half = insert_queued(f->st, "half", "default");
    assert_int_equal(
        store_job_lease(f->st, half, "w", 0, 1, 1, &j, &err), ANVIL_OK);
    job_fini(&j);
    hook_arm(extend_stmt, 1);
    assert_int_equal(store_job_extend(f->st, half, 99, &err), ANVIL_INTERNAL);
    store_rollback_savepoint(f->st, NULL);
    // Command 3 succeeds after the failure.
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    int64_t after = insert_queued(f->st, "after", "default");
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);

    assert_int_equal(state_of(f->st, kept), ANVIL_JOB_QUEUED);
    assert_int_equal(state_of(f->st, after), ANVIL_JOB_QUEUED);
    // (SQLite may give `after` the id `half` had: its insert was undone.)
    j = get(f->st, after);
    assert_string_equal(j.type, "after");
    assert_int_equal(j.attempt, 0);
    job_fini(&j);
    assert_int_equal(
        sql_int(f->path, "SELECT COUNT(*) FROM jobs WHERE type = 'half'"), 0);
    assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM jobs"), 3);
}

static void
test_store_failed_insert_stores_nothing(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    hook_record();
    insert_queued(f->st, "probe", "default");
    int insert_stmt = hook_last;

    hook_arm(insert_stmt, 1);
    struct store_new_job nj = new_job("lost", "default");
    nj.idem_key             = "k";
    int64_t id              = -5;
    assert_int_equal(store_job_insert(f->st, &nj, &id, &err), ANVIL_INTERNAL);
    assert_int_equal(id, -5);
    assert_int_equal(
        sql_int(f->path, "SELECT COUNT(*) FROM jobs WHERE type = 'lost'"), 0);
    assert_int_equal(store_job_by_key(f->st, "k", &id, &err), ANVIL_NOT_FOUND);
    // The same key is free for the retry.
    assert_true(insert(f->st, &nj) > 0);
}

static void
test_store_rollback_of_the_transaction_discards_every_command(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    int64_t               pre = insert_queued(f->st, "pre", "default");
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    insert_queued(f->st, "gone", "default");
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    assert_int_equal(store_job_finish(f->st, pre, ANVIL_JOB_SUCCEEDED, NULL, 0,
                         NULL, 1, &err),
        ANVIL_OK);
    store_rollback(f->st, NULL);
    assert_int_equal(state_of(f->st, pre), ANVIL_JOB_QUEUED);
    assert_int_equal(
        sql_int(f->path, "SELECT COUNT(*) FROM jobs WHERE type = 'gone'"), 0);
    // Rolling back outside a transaction is harmless.
    store_rollback(f->st, NULL);
    assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM jobs"), 1);
}

static void
test_store_failed_commit_is_reported_and_can_be_rolled_back(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };

    // Learn the commit statement's index.
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    hook_record();
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    int commit_stmt = hook_last;

    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    insert_queued(f->st, "uncommitted", "default");
    hook_arm(commit_stmt, 1);
    assert_int_equal(store_commit(f->st, &err), ANVIL_INTERNAL);
    assert_non_null(strstr(err.msg, "committing"));
    store_rollback(f->st, NULL);
    assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM jobs"), 0);
    // The store still works.
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    insert_queued(f->st, "committed", "default");
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM jobs"), 1);
}

static void
test_store_close_accepts_null(void **state)
{
    (void) state;
    store_close(NULL);
    job_fini(NULL);
    job_array_free(NULL, 0);
    // And the id text form round-trips.
    char    buf[24];
    int64_t id = 0;
    job_id_format(42, buf, sizeof(buf));
    assert_string_equal(buf, "j42");
    assert_int_equal(job_id_parse(buf, &id), 0);
    assert_int_equal(id, 42);
    assert_int_equal(job_id_parse("j0", &id), -1);
    assert_int_equal(job_id_parse("42", &id), -1);
    assert_int_equal(job_id_parse("j42x", &id), -1);
    assert_int_equal(job_id_parse("j99999999999999999999999", &id), -1);
    assert_int_equal(job_id_parse(NULL, &id), -1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_store_open_creates_schema_version_and_wal_mode),
        T(test_store_open_fails_for_a_path_it_cannot_create),
        T(test_store_open_refuses_a_file_that_is_not_a_database),
        T(test_store_reopen_keeps_jobs_and_schema),
        T(test_store_open_refuses_a_newer_schema_version),
        T(test_store_open_refuses_a_newer_schema_without_an_error_struct),
        T(test_store_open_migrates_a_version_1_database_keeping_its_jobs),
        T(test_store_failed_migration_leaves_the_old_database_untouched),
        T(test_store_insert_and_get_round_trip_every_field),
        T(test_store_keeps_an_empty_payload_empty),
        T(test_store_get_of_an_unknown_id_is_not_found),
        T(test_store_duplicate_idempotency_key_keeps_the_first_job),
        T(test_store_duplicate_request_id_keeps_the_first_job),
        T(test_store_lease_takes_only_queued_jobs_and_counts_attempts),
        T(test_store_lease_uses_the_jobs_own_lease_and_records_the_token),
        T(test_store_finish_stores_final_state_result_and_error),
        T(test_store_requeue_and_make_ready_move_a_job_back_to_work),
        T(test_store_extend_and_request_cancel_update_a_running_job),
        T(test_store_list_pages_newest_first_covering_every_job_once),
        T(test_store_list_filters_by_state_type_and_queue),
        T(test_store_scan_active_sees_only_scheduled_queued_and_running),
        T(test_store_scan_active_stops_when_the_callback_fails),
        T(test_store_depths_count_scheduled_queued_and_running_per_queue_and_type),
        T(test_store_sweep_deletes_only_old_finished_jobs_up_to_the_limit),
        T(test_store_counts_running_jobs_per_worker),
        T(test_store_tokens_round_trip_and_revoke_once),
        T(test_store_failed_statement_returns_internal_with_a_message),
        T(test_store_rolled_back_savepoint_leaves_nothing_half_written),
        T(test_store_failed_insert_stores_nothing),
        T(test_store_rollback_of_the_transaction_discards_every_command),
        T(test_store_failed_commit_is_reported_and_can_be_rolled_back),
        T(test_store_close_accepts_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
