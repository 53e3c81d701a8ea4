// test_store_v6.c - schema version 6 of the store beside the event stream
// (test_store_events.c): the migration from a version-5 database, a new
// database built to the same schema, retrying a job (store_job_retry),
// reopening a workflow (store_workflow_reopen, its timeout counted from
// retried_at), and the SCHEDULED count of the queue depths.
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

// Runs sql on a second connection to path; its first column as an integer
// (-1 if it yields nothing).
static int64_t
sql_int(const char *path, const char *sql)
{
    sqlite3      *db = NULL;
    sqlite3_stmt *s  = NULL;
    int64_t       v  = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK
        && sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK
        && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void
sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int   rc  = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "sql: %s\n", msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
    assert_int_equal(rc, SQLITE_OK);
}

static int64_t
insert_job(struct store *st, int state, int64_t wf, const char *step)
{
    struct store_new_job nj = {
        .type        = "t",
        .queue       = "default",
        .payload     = (const uint8_t *) "{}",
        .payload_len = 2,
        .state       = state,
        .retry       = { .max_attempts = 2 },
        .created_at  = 10,
        .run_at      = 10,
        .workflow_id = wf,
        .step        = step,
    };
    struct anvil_error err = { 0 };
    int64_t            id  = 0;
    assert_int_equal(store_job_insert(st, &nj, &id, &err), ANVIL_OK);
    return id;
}

// Leases the QUEUED job id to worker w1 under token 5.
static void
lease(struct store *st, int64_t id)
{
    struct anvil_error err = { 0 };
    struct job         j   = { 0 };
    assert_int_equal(
        store_job_lease(st, id, "w1", 5, 100, 30000, &j, &err), ANVIL_OK);
    job_fini(&j);
}

static void
finish(struct store *st, int64_t id, int state, const char *error)
{
    struct anvil_error err = { 0 };
    assert_int_equal(store_job_finish(st, id, state, (const uint8_t *) "r", 1,
                         error, 200, &err),
        ANVIL_OK);
}

static struct job
get(struct store *st, int64_t id)
{
    struct job         j   = { 0 };
    struct anvil_error err = { 0 };
    assert_int_equal(store_job_get(st, id, &j, &err), ANVIL_OK);
    return j;
}

static int64_t
insert_flow(struct store *st, int64_t created_at, int64_t timeout_ms)
{
    struct store_new_workflow nw  = { .name = "flow",
         .created_at                        = created_at,
         .timeout_ms                        = timeout_ms,
         .n_steps                           = 3 };
    struct anvil_error        err = { 0 };
    int64_t                   id  = 0;
    assert_int_equal(store_workflow_insert(st, &nw, &id, &err), ANVIL_OK);
    return id;
}

// The deadlines store_workflow_scan_active reports, by workflow id.
struct deadlines {
    size_t  n;
    int64_t id[8];
    int64_t at[8];
};

static int
record_deadline(void *arg, int64_t id, int64_t deadline)
{
    struct deadlines *d = arg;
    if (d->n < 8) {
        d->id[d->n] = id;
        d->at[d->n] = deadline;
    }
    d->n++;
    return ANVIL_OK;
}

// The deadline of workflow id, or -1 when the scan does not report it.
static int64_t
deadline_of(struct store *st, int64_t id)
{
    struct deadlines   d   = { 0 };
    struct anvil_error err = { 0 };
    assert_int_equal(
        store_workflow_scan_active(st, record_deadline, &d, &err), ANVIL_OK);
    for (size_t i = 0; i < d.n && i < 8; i++)
        if (d.id[i] == id)
            return d.at[i];
    return -1;
}

// ---- a version-5 database, as anvild wrote it before version 6 ----

static const char V5_SCHEMA[]
    = "CREATE TABLE jobs ("
      " id INTEGER PRIMARY KEY, type TEXT NOT NULL, queue TEXT NOT NULL,"
      " payload BLOB NOT NULL, priority INTEGER NOT NULL DEFAULT 0,"
      " state INTEGER NOT NULL, attempt INTEGER NOT NULL DEFAULT 0,"
      " max_attempts INTEGER NOT NULL, result BLOB, error TEXT,"
      " created_at INTEGER NOT NULL, started_at INTEGER,"
      " finished_at INTEGER, run_at INTEGER NOT NULL DEFAULT 0,"
      " timeout_ms INTEGER NOT NULL DEFAULT 0,"
      " lease_ms INTEGER NOT NULL DEFAULT 0, lease_deadline INTEGER,"
      " worker_id TEXT, idem_key TEXT, request_id INTEGER,"
      " cancel_requested INTEGER NOT NULL DEFAULT 0, workflow_id INTEGER,"
      " step TEXT, pending_parents INTEGER NOT NULL DEFAULT 0,"
      " backoff_initial_ms INTEGER NOT NULL DEFAULT 1000,"
      " backoff_max_ms INTEGER NOT NULL DEFAULT 60000,"
      " backoff_multiplier REAL NOT NULL DEFAULT 2.0,"
      " lease_token INTEGER NOT NULL DEFAULT 0);"
      "CREATE UNIQUE INDEX jobs_idem_key ON jobs(idem_key)"
      " WHERE idem_key IS NOT NULL;"
      "CREATE UNIQUE INDEX jobs_request_id ON jobs(request_id)"
      " WHERE request_id IS NOT NULL;"
      "CREATE INDEX jobs_active ON jobs(state, queue, type)"
      " WHERE state BETWEEN 2 AND 4;"
      "CREATE INDEX jobs_workflow ON jobs(workflow_id, id)"
      " WHERE workflow_id IS NOT NULL;"
      "CREATE INDEX jobs_finished ON jobs(finished_at)"
      " WHERE state >= 5 AND workflow_id IS NULL;"
      "CREATE TABLE workflows ("
      " id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
      " state INTEGER NOT NULL, on_failure INTEGER NOT NULL,"
      " created_at INTEGER NOT NULL, finished_at INTEGER,"
      " timeout_ms INTEGER NOT NULL DEFAULT 0, error TEXT, idem_key TEXT,"
      " request_id INTEGER, n_steps INTEGER NOT NULL,"
      " n_settled INTEGER NOT NULL DEFAULT 0,"
      " n_succeeded INTEGER NOT NULL DEFAULT 0,"
      " n_failed INTEGER NOT NULL DEFAULT 0);"
      "CREATE UNIQUE INDEX workflows_idem_key ON workflows(idem_key)"
      " WHERE idem_key IS NOT NULL;"
      "CREATE UNIQUE INDEX workflows_request_id ON workflows(request_id)"
      " WHERE request_id IS NOT NULL;"
      "CREATE INDEX workflows_state ON workflows(state, id);"
      "CREATE INDEX workflows_finished ON workflows(finished_at)"
      " WHERE state >= 2;"
      "CREATE TABLE edges (parent INTEGER NOT NULL, child INTEGER NOT NULL,"
      " PRIMARY KEY (parent, child)) WITHOUT ROWID;"
      "CREATE INDEX edges_child ON edges(child, parent);"
      "CREATE TABLE tokens (id INTEGER PRIMARY KEY AUTOINCREMENT,"
      " name TEXT NOT NULL, role INTEGER NOT NULL,"
      " hash BLOB NOT NULL UNIQUE, created_at INTEGER NOT NULL,"
      " expires_at INTEGER NOT NULL DEFAULT 0,"
      " revoked_at INTEGER NOT NULL DEFAULT 0);"
      "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
      " WITHOUT ROWID;"
      "INSERT INTO meta(key, value) VALUES('job_id_hwm', 0),"
      " ('workflow_id_hwm', 0);";

// A failed plain job (1), a RUNNING workflow (1, timeout 5000) with a
// succeeded step (2) and a pending one (3), a FAILED workflow (2); jobs up
// to 6 and workflows up to 4 were swept (the marks say so).
static const char V5_DATA[]
    = "INSERT INTO workflows(id, name, state, on_failure, created_at,"
      " timeout_ms, n_steps, n_settled, n_succeeded)"
      " VALUES(1, 'wf', 1, 0, 50, 5000, 2, 1, 1);"
      "INSERT INTO workflows(id, name, state, on_failure, created_at,"
      " finished_at, error, n_steps, n_settled, n_failed)"
      " VALUES(2, 'bad', 3, 0, 60, 70, 'step x failed', 1, 1, 1);"
      "INSERT INTO jobs(id, type, queue, payload, state, max_attempts,"
      " attempt, created_at, error, finished_at)"
      " VALUES(1, 'f', 'q', x'01', 6, 3, 3, 100, 'boom', 200);"
      "INSERT INTO jobs(id, type, queue, payload, state, max_attempts,"
      " created_at, workflow_id, step, result, finished_at)"
      " VALUES(2, 'a', 'default', x'02', 5, 3, 100, 1, 'a', x'7261', 110);"
      "INSERT INTO jobs(id, type, queue, payload, state, max_attempts,"
      " created_at, workflow_id, step, pending_parents)"
      " VALUES(3, 'b', 'default', x'03', 1, 3, 100, 1, 'b', 1);"
      "INSERT INTO edges(parent, child) VALUES(2, 3);"
      "UPDATE meta SET value = 6 WHERE key = 'job_id_hwm';"
      "UPDATE meta SET value = 4 WHERE key = 'workflow_id_hwm';"
      "INSERT INTO tokens(name, role, hash, created_at)"
      " VALUES('admin', 1, x'00112233445566778899aabbccddeeff00112233445566"
      "778899aabbccddeeff', 5);";

static void
make_v5_database(const char *path, bool with_data)
{
    sql_exec(path, V5_SCHEMA);
    if (with_data)
        sql_exec(path, V5_DATA);
    sql_exec(path, "PRAGMA user_version = 5");
}

// ---- migration and schema ----

static void
test_store_migrates_a_version_5_database_keeping_its_data(void **state)
{
    struct harness_store *f = *state;
    char                  path[160];
    snprintf(path, sizeof(path), "%s/v5.db", f->dir);
    make_v5_database(path, true);

    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(store_open(path, 1, &st, &err), ANVIL_OK);
    assert_int_equal(
        sql_int(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    // Every row kept.
    assert_int_equal(sql_int(path, "SELECT COUNT(*) FROM jobs"), 3);
    assert_int_equal(sql_int(path, "SELECT COUNT(*) FROM workflows"), 2);
    assert_int_equal(sql_int(path, "SELECT COUNT(*) FROM edges"), 1);
    assert_int_equal(sql_int(path, "SELECT COUNT(*) FROM tokens"), 1);
    struct job j = get(st, 1);
    assert_int_equal(j.state, ANVIL_JOB_FAILED);
    assert_string_equal(j.error, "boom");
    job_fini(&j);
    struct workflow w = { 0 };
    assert_int_equal(store_workflow_get(st, 1, true, &w, &err), ANVIL_OK);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.steps[1].n_after, 1);
    assert_string_equal(w.steps[1].after[0], "a");
    workflow_fini(&w);
    // The new column: 0 in every old workflow, so deadlines do not move.
    assert_int_equal(
        sql_int(path, "SELECT COUNT(*) FROM workflows WHERE retried_at = 0"),
        2);
    assert_int_equal(deadline_of(st, 1), 50 + 5000);
    // The events table is there and empty (with version 8's progress
    // column); its first seq is 1.
    assert_int_equal(sql_int(path, "SELECT COUNT(*) FROM events"), 0);
    assert_int_equal(
        sql_int(path, "SELECT COUNT(*) FROM pragma_table_info('events')"), 12);
    uint64_t first = 9, last = 9;
    assert_int_equal(store_events_bounds(st, &first, &last, &err), ANVIL_OK);
    assert_int_equal(first, 0);
    assert_int_equal(last, 0);
    struct store_new_event ev  = { .kind = EV_JOB_RETRIED, .at = 300 };
    uint64_t               seq = 0;
    assert_int_equal(store_event_insert(st, &ev, &seq, &err), ANVIL_OK);
    assert_int_equal(seq, 1);
    // Ids still go on past the marks; the old rows work with the new calls.
    assert_int_equal(insert_job(st, ANVIL_JOB_QUEUED, 0, NULL), 7);
    assert_int_equal(insert_flow(st, 400, 0), 5);
    assert_int_equal(
        store_job_retry(st, 1, ANVIL_JOB_QUEUED, 0, 6, &err), ANVIL_OK);
    assert_int_equal(store_workflow_reopen(st, 2, 1000, &err), ANVIL_OK);
    store_close(st);
    // A second open does not migrate again.
    assert_int_equal(store_open(path, 1, &st, &err), ANVIL_OK);
    assert_int_equal(sql_int(path, "SELECT COUNT(*) FROM events"), 1);
    store_close(st);
}

// The shape of a database: each table's columns and whether it has
// AUTOINCREMENT, and each index's SQL, one line per row.
static void
schema_of(const char *path, char *out, size_t len)
{
    static const char sql[]
        = "SELECT m.type, m.name, m.sql LIKE '%AUTOINCREMENT%', "
          "CASE m.type WHEN 'index' THEN m.sql END, c.name, c.type, "
          "c.\"notnull\", c.dflt_value, c.pk FROM sqlite_master m "
          "LEFT JOIN pragma_table_xinfo(m.name) c ON m.type = 'table' "
          "WHERE m.name NOT LIKE 'sqlite_%' ORDER BY m.type, m.name, c.cid";
    sqlite3      *db = NULL;
    sqlite3_stmt *s  = NULL;
    size_t        at = 0;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW) {
        for (int c = 0; c < 9; c++) {
            const char *v   = (const char *) sqlite3_column_text(s, c);
            char        end = c == 8 ? '\n' : '|';
            int k = snprintf(out + at, len - at, "%s%c", v ? v : "-", end);
            assert_true(k > 0 && (size_t) k < len - at);
            at += (size_t) k;
        }
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    assert_true(at > 0);
}

static void
test_store_a_new_database_has_the_schema_a_migrated_v5_one_has(void **state)
{
    struct harness_store *f = *state;
    char                  path[160];
    snprintf(path, sizeof(path), "%s/v5.db", f->dir);
    make_v5_database(path, false);
    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(store_open(path, 1, &st, &err), ANVIL_OK);
    store_close(st);

    static char fresh[20000], migrated[20000];
    schema_of(f->path, fresh, sizeof(fresh));
    schema_of(path, migrated, sizeof(migrated));
    assert_string_equal(fresh, migrated);
    assert_non_null(strstr(fresh, "|retried_at|INTEGER|1|0|0\n"));
    assert_non_null(strstr(fresh, "table|events|1|"));
    assert_non_null(strstr(fresh, "WHERE job_id IS NOT NULL"));
    assert_non_null(strstr(fresh, "WHERE workflow_id IS NOT NULL"));
}

static void
test_store_a_failed_migration_leaves_the_version_5_database_as_it_was(
    void **state)
{
    struct harness_store *f = *state;
    char                  path[160];
    snprintf(path, sizeof(path), "%s/v5-conflict.db", f->dir);
    make_v5_database(path, true);
    // A table in the way makes the version-6 step fail after its ALTER.
    sql_exec(path, "CREATE TABLE events(x);");
    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(store_open(path, 1, &st, &err), ANVIL_INTERNAL);
    assert_null(st);
    assert_non_null(strstr(err.msg, "migrating"));
    assert_int_equal(sql_int(path, "PRAGMA user_version"), 5);
    assert_int_equal(sql_int(path,
                         "SELECT COUNT(*) FROM pragma_table_info('workflows') "
                         "WHERE name = 'retried_at'"),
        0);
    assert_int_equal(sql_int(path, "SELECT COUNT(*) FROM jobs"), 3);
}

// ---- retrying a job ----

static void
test_store_job_retry_queues_a_failed_job_again(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    int64_t               id  = insert_job(f->st, ANVIL_JOB_QUEUED, 0, NULL);
    lease(f->st, id);
    assert_int_equal(store_job_request_cancel(f->st, id, &err), ANVIL_OK);
    finish(f->st, id, ANVIL_JOB_FAILED, "boom");

    // Attempts taken (1) plus a fresh budget (2).
    assert_int_equal(
        store_job_retry(f->st, id, ANVIL_JOB_QUEUED, 0, 3, &err), ANVIL_OK);
    struct job j = get(f->st, id);
    assert_int_equal(j.state, ANVIL_JOB_QUEUED);
    assert_int_equal(j.attempt, 1);
    assert_int_equal(j.retry.max_attempts, 3);
    assert_string_equal(j.error, "boom");
    assert_int_equal(j.result_len, 0);
    assert_int_equal(j.finished_at, 0);
    assert_int_equal(j.lease_deadline, 0);
    assert_string_equal(j.worker_id, "");
    assert_false(j.cancel_requested);
    job_fini(&j);
    struct store_job_brief b = { 0 };
    assert_int_equal(store_job_brief(f->st, id, &b, &err), ANVIL_OK);
    assert_int_equal(b.lease_token, 0);
    // It can be leased again, as its second attempt.
    struct job l = { 0 };
    assert_int_equal(
        store_job_lease(f->st, id, "w2", 0, 300, 30000, &l, &err), ANVIL_OK);
    assert_int_equal(l.attempt, 2);
    job_fini(&l);
}

static void
test_store_job_retry_makes_a_canceled_step_pending(void **state)
{
    struct harness_store *f    = *state;
    struct anvil_error    err  = { 0 };
    int64_t               wf   = insert_flow(f->st, 10, 0);
    int64_t               step = insert_job(f->st, ANVIL_JOB_QUEUED, wf, "s");
    finish(f->st, step, ANVIL_JOB_CANCELED, "canceled");
    assert_int_equal(
        store_job_retry(f->st, step, ANVIL_JOB_PENDING, 2, 4, &err), ANVIL_OK);
    struct job j = get(f->st, step);
    assert_int_equal(j.state, ANVIL_JOB_PENDING);
    assert_int_equal(j.retry.max_attempts, 4);
    assert_int_equal(j.workflow_id, wf);
    job_fini(&j);
    // Two parents to wait for.
    uint32_t pending = 9;
    assert_int_equal(
        store_job_parent_done(f->st, step, &pending, &err), ANVIL_OK);
    assert_int_equal(pending, 1);
    int64_t *ids = NULL;
    size_t   n   = 0;
    assert_int_equal(
        store_workflow_unfinished(f->st, wf, &ids, &n, &err), ANVIL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], step);
    free(ids);
}

static void
test_store_job_retry_answers_not_found_unless_failed_or_canceled(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    int64_t               ids[5];
    ids[0] = insert_job(f->st, ANVIL_JOB_PENDING, 0, NULL);
    ids[1] = insert_job(f->st, ANVIL_JOB_SCHEDULED, 0, NULL);
    ids[2] = insert_job(f->st, ANVIL_JOB_QUEUED, 0, NULL);
    ids[3] = insert_job(f->st, ANVIL_JOB_QUEUED, 0, NULL);
    lease(f->st, ids[3]);
    ids[4] = insert_job(f->st, ANVIL_JOB_QUEUED, 0, NULL);
    finish(f->st, ids[4], ANVIL_JOB_SUCCEEDED, NULL);
    for (size_t i = 0; i < 5; i++) {
        struct job j      = get(f->st, ids[i]);
        int        before = j.state;
        job_fini(&j);
        assert_int_equal(
            store_job_retry(f->st, ids[i], ANVIL_JOB_QUEUED, 0, 5, &err),
            ANVIL_NOT_FOUND);
        j = get(f->st, ids[i]);
        assert_int_equal(j.state, before);
        assert_int_equal(j.retry.max_attempts, 2);
        job_fini(&j);
    }
    assert_int_equal(store_job_retry(f->st, 999, ANVIL_JOB_QUEUED, 0, 5, &err),
        ANVIL_NOT_FOUND);
    // A state to wait in other than QUEUED or PENDING is refused.
    int64_t failed = insert_job(f->st, ANVIL_JOB_QUEUED, 0, NULL);
    finish(f->st, failed, ANVIL_JOB_FAILED, "x");
    assert_int_equal(
        store_job_retry(f->st, failed, ANVIL_JOB_RUNNING, 0, 5, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_int_equal(err.code, ANVIL_INVALID_ARGUMENT);
    struct job j = get(f->st, failed);
    assert_int_equal(j.state, ANVIL_JOB_FAILED);
    job_fini(&j);
}

// ---- reopening a workflow ----

static void
test_store_workflow_reopen_runs_it_again_with_a_fresh_deadline(void **state)
{
    struct harness_store  *f   = *state;
    struct anvil_error     err = { 0 };
    int64_t                wf  = insert_flow(f->st, 50, 5000);
    struct store_wf_counts c;
    assert_int_equal(deadline_of(f->st, wf), 5050);
    assert_int_equal(
        store_workflow_settle(f->st, wf, true, false, &c, &err), ANVIL_OK);
    assert_int_equal(
        store_workflow_settle(f->st, wf, false, true, &c, &err), ANVIL_OK);
    assert_int_equal(
        store_workflow_finish(f->st, wf, WF_FAILED, "step b failed", 200, &err),
        ANVIL_OK);
    assert_int_equal(deadline_of(f->st, wf), -1);

    assert_int_equal(store_workflow_reopen(f->st, wf, 10000, &err), ANVIL_OK);
    struct workflow w = { 0 };
    assert_int_equal(store_workflow_get(f->st, wf, false, &w, &err), ANVIL_OK);
    assert_int_equal(w.state, WF_RUNNING);
    assert_string_equal(w.error, "");
    assert_int_equal(w.finished_at, 0);
    assert_int_equal(w.created_at, 50);
    assert_int_equal(w.n_settled, 1);
    assert_int_equal(w.n_succeeded, 1);
    assert_int_equal(w.n_failed, 0);
    workflow_fini(&w);
    // The timeout counts from the retry.
    assert_int_equal(deadline_of(f->st, wf), 15000);
    // The counts go on from there.
    assert_int_equal(
        store_workflow_settle(f->st, wf, true, false, &c, &err), ANVIL_OK);
    assert_int_equal(c.n_settled, 2);
    assert_int_equal(c.n_succeeded, 2);
    assert_int_equal(c.n_failed, 0);
    // And a canceled workflow reopens too; a retry time before its
    // creation does not pull its deadline back.
    assert_int_equal(
        store_workflow_finish(f->st, wf, WF_CANCELED, NULL, 300, &err),
        ANVIL_OK);
    assert_int_equal(store_workflow_reopen(f->st, wf, 20, &err), ANVIL_OK);
    assert_int_equal(deadline_of(f->st, wf), 5050);
}

static void
test_store_workflow_reopen_answers_not_found_unless_failed_or_canceled(
    void **state)
{
    struct harness_store *f       = *state;
    struct anvil_error    err     = { 0 };
    int64_t               running = insert_flow(f->st, 50, 0);
    int64_t               done    = insert_flow(f->st, 50, 0);
    assert_int_equal(
        store_workflow_finish(f->st, done, WF_SUCCEEDED, NULL, 100, &err),
        ANVIL_OK);
    assert_int_equal(
        store_workflow_reopen(f->st, running, 1000, &err), ANVIL_NOT_FOUND);
    assert_int_equal(
        store_workflow_reopen(f->st, done, 1000, &err), ANVIL_NOT_FOUND);
    assert_int_equal(
        store_workflow_reopen(f->st, 999, 1000, &err), ANVIL_NOT_FOUND);
    struct workflow w = { 0 };
    assert_int_equal(
        store_workflow_get(f->st, done, false, &w, &err), ANVIL_OK);
    assert_int_equal(w.state, WF_SUCCEEDED);
    assert_int_equal(w.finished_at, 100);
    workflow_fini(&w);
    // Without a timeout a reopened workflow has no deadline to scan.
    int64_t failed = insert_flow(f->st, 50, 0);
    assert_int_equal(
        store_workflow_finish(f->st, failed, WF_FAILED, "x", 100, &err),
        ANVIL_OK);
    assert_int_equal(
        store_workflow_reopen(f->st, failed, 1000, &err), ANVIL_OK);
    assert_int_equal(deadline_of(f->st, failed), -1);
}

// ---- depths ----

static void
test_store_depths_count_scheduled_jobs_per_queue_and_type(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    int64_t               a   = insert_job(f->st, ANVIL_JOB_SCHEDULED, 0, NULL);
    insert_job(f->st, ANVIL_JOB_SCHEDULED, 0, NULL);
    insert_job(f->st, ANVIL_JOB_QUEUED, 0, NULL);
    insert_job(f->st, ANVIL_JOB_PENDING, 0, NULL); // not counted
    struct store_depth *d     = NULL;
    size_t              n     = 0;
    uint64_t            total = 0;
    assert_int_equal(store_depths(f->st, &d, &n, &total, &err), ANVIL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].scheduled, 2);
    assert_int_equal(d[0].queued, 1);
    assert_int_equal(d[0].running, 0);
    store_depths_free(d, n);
    // Due: one moves to QUEUED.
    assert_int_equal(store_job_make_ready(f->st, a, &err), ANVIL_OK);
    assert_int_equal(store_depths(f->st, &d, &n, &total, &err), ANVIL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].scheduled, 1);
    assert_int_equal(d[0].queued, 2);
    store_depths_free(d, n);
    assert_int_equal(total, 4);
}

static void
test_store_depths_are_counted_in_the_active_index_alone(void **state)
{
    struct harness_store *f  = *state;
    sqlite3              *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    const char *sql = NULL;
    for (int i = 0; store_stmt_sql(i) != NULL; i++)
        if (strncmp(
                store_stmt_sql(i), "SELECT state, queue, type, COUNT(*)", 35)
            == 0)
            sql = store_stmt_sql(i);
    assert_non_null(sql);
    char *q = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sql);
    assert_non_null(q);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &s, NULL), SQLITE_OK);
    int covering = 0, temp = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *v = (const char *) sqlite3_column_text(s, 3);
        covering += strstr(v, "COVERING INDEX jobs_active") != NULL;
        temp += strstr(v, "TEMP B-TREE") != NULL;
    }
    sqlite3_finalize(s);
    sqlite3_free(q);
    sqlite3_close(db);
    assert_int_equal(covering, 1);
    assert_int_equal(temp, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_store_migrates_a_version_5_database_keeping_its_data),
        T(test_store_a_new_database_has_the_schema_a_migrated_v5_one_has),
        T(test_store_a_failed_migration_leaves_the_version_5_database_as_it_was),
        T(test_store_job_retry_queues_a_failed_job_again),
        T(test_store_job_retry_makes_a_canceled_step_pending),
        T(test_store_job_retry_answers_not_found_unless_failed_or_canceled),
        T(test_store_workflow_reopen_runs_it_again_with_a_fresh_deadline),
        T(test_store_workflow_reopen_answers_not_found_unless_failed_or_canceled),
        T(test_store_depths_count_scheduled_jobs_per_queue_and_type),
        T(test_store_depths_are_counted_in_the_active_index_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
