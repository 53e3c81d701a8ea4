// test_store_v5.c - schema version 5 of the store: the migration from a
// version-4 database, a new database built to the same schema, ids that are
// never handed out twice, the lean hot path (checked with EXPLAIN and
// EXPLAIN QUERY PLAN on every prepared statement), and deferred sync
// (store_set_deferred_sync, store_sync).
#include "../../server/store.h"
#include "../harness.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

// ---- fixture: a fresh directory and database per test ----

// Opens the fixture's database FULL (2), as anvild does by default.
static int
setup(void **state)
{
    return harness_store_setup(state, 2);
}

static int
teardown(void **state)
{
    return harness_store_teardown(state);
}

// ---- helpers ----

static int64_t
insert_job(struct store *st, const char *type)
{
    struct store_new_job nj = {
        .type        = type,
        .queue       = "default",
        .payload     = (const uint8_t *) "{}",
        .payload_len = 2,
        .state       = ANVIL_JOB_QUEUED,
        .retry       = { .max_attempts = 3 },
        .created_at  = 10,
        .run_at      = 10,
    };
    struct anvil_error err = { 0 };
    int64_t            id  = 0;
    assert_int_equal(store_job_insert(st, &nj, &id, &err), ANVIL_OK);
    assert_true(id > 0);
    return id;
}

static void
finish_job(struct store *st, int64_t id, int64_t at)
{
    struct anvil_error err = { 0 };
    assert_int_equal(
        store_job_finish(st, id, ANVIL_JOB_SUCCEEDED, NULL, 0, NULL, at, &err),
        ANVIL_OK);
}

static int64_t
insert_flow(struct store *st)
{
    struct store_new_workflow nw
        = { .name = "flow", .created_at = 10, .n_steps = 1 };
    struct anvil_error err = { 0 };
    int64_t            id  = 0;
    assert_int_equal(store_workflow_insert(st, &nw, &id, &err), ANVIL_OK);
    assert_true(id > 0);
    return id;
}

static void
reopen(struct harness_store *f)
{
    struct anvil_error err = { 0 };
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(store_open(f->path, 2, &f->st, &err), ANVIL_OK);
}

// Runs one SQL statement on a second connection; returns its first
// column as an integer (-1 if it yields nothing).
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

// ---- a version-4 database, as anvild wrote it before version 5 ----

// The schema migrations 1-4 produce (columns added by ALTER TABLE are
// written inline, which SQLite treats the same).
static const char V4_SCHEMA[]
    = "CREATE TABLE jobs ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT,"
      " type TEXT NOT NULL, queue TEXT NOT NULL, payload BLOB NOT NULL,"
      " priority INTEGER NOT NULL DEFAULT 0, state INTEGER NOT NULL,"
      " attempt INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,"
      " result BLOB, error TEXT, created_at INTEGER NOT NULL,"
      " started_at INTEGER, finished_at INTEGER,"
      " run_at INTEGER NOT NULL DEFAULT 0,"
      " timeout_ms INTEGER NOT NULL DEFAULT 0,"
      " lease_ms INTEGER NOT NULL DEFAULT 0, lease_deadline INTEGER,"
      " worker_id TEXT, idem_key TEXT, request_id INTEGER,"
      " cancel_requested INTEGER NOT NULL DEFAULT 0,"
      " workflow_id INTEGER, step TEXT,"
      " pending_parents INTEGER NOT NULL DEFAULT 0,"
      " backoff_initial_ms INTEGER NOT NULL DEFAULT 1000,"
      " backoff_max_ms INTEGER NOT NULL DEFAULT 60000,"
      " backoff_multiplier REAL NOT NULL DEFAULT 2.0,"
      " lease_token INTEGER NOT NULL DEFAULT 0);"
      "CREATE UNIQUE INDEX jobs_idem_key ON jobs(idem_key)"
      " WHERE idem_key IS NOT NULL;"
      "CREATE UNIQUE INDEX jobs_request_id ON jobs(request_id)"
      " WHERE request_id IS NOT NULL;"
      "CREATE INDEX jobs_active ON jobs(state) WHERE state IN (2, 3, 4);"
      "CREATE TABLE workflows ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,"
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
      "CREATE INDEX jobs_workflow ON jobs(workflow_id, id)"
      " WHERE workflow_id IS NOT NULL;"
      "CREATE TABLE edges ("
      " parent INTEGER NOT NULL,"
      " child INTEGER NOT NULL,"
      " PRIMARY KEY (parent, child)) WITHOUT ROWID;"
      "CREATE INDEX edges_child ON edges(child, parent);"
      "CREATE INDEX jobs_finished ON jobs(finished_at)"
      " WHERE state IN (5, 6, 7) AND workflow_id IS NULL;"
      "CREATE INDEX workflows_finished ON workflows(finished_at)"
      " WHERE state IN (2, 3, 4);"
      "CREATE TABLE tokens ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT,"
      " name TEXT NOT NULL,"
      " role INTEGER NOT NULL,"
      " hash BLOB NOT NULL UNIQUE,"
      " created_at INTEGER NOT NULL,"
      " expires_at INTEGER NOT NULL DEFAULT 0,"
      " revoked_at INTEGER NOT NULL DEFAULT 0);";

// One job in every state (1-7), two of them the steps of workflow 1; jobs
// 8 and 9 and workflow 2 were the newest and are gone (swept), so the
// AUTOINCREMENT counters are ahead of max(id).
static const char V4_DATA[]
    = "INSERT INTO workflows(id, name, state, on_failure, created_at,"
      " n_steps, n_settled, n_succeeded) VALUES(1, 'wf', 1, 0, 50, 2, 1, 1);"
      "INSERT INTO workflows(id, name, state, on_failure, created_at,"
      " n_steps) VALUES(2, 'gone', 2, 0, 60, 1);"
      "INSERT INTO jobs(id, type, queue, payload, state, max_attempts,"
      " created_at, workflow_id, step, pending_parents)"
      " VALUES(1, 'b.t', 'default', x'01', 1, 3, 100, 1, 'b', 1);"
      "INSERT INTO jobs(id, type, queue, payload, state, max_attempts,"
      " created_at, run_at) VALUES(2, 'sched', 'q', x'02', 2, 3, 100, 9000);"
      "INSERT INTO jobs(id, type, queue, payload, state, max_attempts,"
      " created_at, idem_key, request_id, priority)"
      " VALUES(3, 'queued', 'q', x'03', 3, 3, 100, 'k3', 33, 7);"
      "INSERT INTO jobs(id, type, queue, payload, state, max_attempts,"
      " created_at, attempt, worker_id, lease_deadline, started_at,"
      " lease_token) VALUES(4, 'run', 'q', x'04', 4, 3, 100, 1, 'w1', 8000,"
      " 120, 77);"
      "INSERT INTO jobs(id, type, queue, payload, state, max_attempts,"
      " created_at, workflow_id, step, result, finished_at)"
      " VALUES(5, 'a.t', 'default', x'05', 5, 3, 100, 1, 'a', x'7261', 110);"
      "INSERT INTO jobs(id, type, queue, payload, state, max_attempts,"
      " created_at, error, finished_at)"
      " VALUES(6, 'failed', 'q', x'06', 6, 3, 100, 'boom', 200);"
      "INSERT INTO jobs(id, type, queue, payload, state, max_attempts,"
      " created_at, finished_at) VALUES(7, 'canceled', 'q', x'07', 7, 3, 100,"
      " 300);"
      "INSERT INTO jobs(id, type, queue, payload, state, max_attempts,"
      " created_at, finished_at) VALUES(8, 'x', 'q', x'', 5, 3, 100, 300),"
      " (9, 'x', 'q', x'', 5, 3, 100, 300);"
      "DELETE FROM jobs WHERE id IN (8, 9);"
      "DELETE FROM workflows WHERE id = 2;"
      "INSERT INTO edges(parent, child) VALUES(5, 1);"
      "INSERT INTO tokens(name, role, hash, created_at)"
      " VALUES('admin', 1, x'00112233445566778899aabbccddeeff00112233445566"
      "778899aabbccddeeff', 5);";

static void
make_v4_database(const char *path, bool with_data)
{
    sql_exec(path, V4_SCHEMA);
    if (with_data)
        sql_exec(path, V4_DATA);
    sql_exec(path, "PRAGMA user_version = 4");
}

// ---- migration and schema ----

static void
test_store_migrates_a_version_4_database_keeping_every_job(void **state)
{
    struct harness_store *f = *state;
    char                  path[160];
    snprintf(path, sizeof(path), "%s/v4.db", f->dir);
    make_v4_database(path, true);

    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(store_open(path, 2, &st, &err), ANVIL_OK);
    assert_int_equal(
        sql_int(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(sql_int(path, "SELECT COUNT(*) FROM jobs"), 7);
    for (int64_t id = 1; id <= 7; id++) {
        struct job j = { 0 };
        assert_int_equal(store_job_get(st, id, &j, &err), ANVIL_OK);
        assert_int_equal(j.id, id);
        assert_int_equal(j.state, (int) id); // job n is in state n
        assert_int_equal(j.payload_len, 1);
        assert_int_equal(j.payload[0], id);
        job_fini(&j);
    }
    struct job j = { 0 };
    assert_int_equal(store_job_get(st, 5, &j, &err), ANVIL_OK);
    assert_string_equal(j.step, "a");
    assert_int_equal(j.workflow_id, 1);
    assert_memory_equal(j.result, "ra", 2);
    job_fini(&j);
    assert_int_equal(store_job_get(st, 6, &j, &err), ANVIL_OK);
    assert_string_equal(j.error, "boom");
    assert_int_equal(j.finished_at, 200);
    job_fini(&j);
    struct store_job_brief b;
    assert_int_equal(store_job_brief(st, 4, &b, &err), ANVIL_OK);
    assert_int_equal(b.lease_token, 77);
    assert_int_equal(b.lease_deadline, 8000);
    assert_int_equal(b.attempt, 1);
    int64_t id = 0;
    assert_int_equal(store_job_by_key(st, "k3", &id, &err), ANVIL_OK);
    assert_int_equal(id, 3);
    assert_int_equal(store_job_by_request(st, 33, &id, &err), ANVIL_OK);
    assert_int_equal(id, 3);

    // The workflow, its edge and the token came along.
    struct workflow w = { 0 };
    assert_int_equal(store_workflow_get(st, 1, true, &w, &err), ANVIL_OK);
    assert_int_equal(w.n_steps, 2);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.steps[0].n_after, 1); // b (job 1) after a (job 5)
    assert_string_equal(w.steps[0].after[0], "a");
    workflow_fini(&w);
    struct store_token *t  = NULL;
    size_t              nt = 0;
    assert_int_equal(store_token_list(st, &t, &nt, &err), ANVIL_OK);
    assert_int_equal(nt, 1);
    store_tokens_free(t, nt);

    // The work goes on: the queued job leases, the pending step unblocks.
    assert_int_equal(
        store_job_lease(st, 3, "w", 0, 500, 1000, &j, &err), ANVIL_OK);
    assert_int_equal(j.attempt, 1);
    assert_int_equal(j.priority, 7);
    job_fini(&j);
    uint32_t pending = 9;
    assert_int_equal(store_job_parent_done(st, 1, &pending, &err), ANVIL_OK);
    assert_int_equal(pending, 0);
    assert_int_equal(store_job_make_ready(st, 1, &err), ANVIL_OK);
    store_close(st);
}

static void
test_store_ids_after_migration_exceed_every_old_one(void **state)
{
    struct harness_store *f = *state;
    char                  path[160];
    snprintf(path, sizeof(path), "%s/v4.db", f->dir);
    make_v4_database(path, true);

    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(store_open(path, 2, &st, &err), ANVIL_OK);
    // Jobs 8 and 9 and workflow 2 existed once: their ids stay used.
    struct store_depth *d     = NULL;
    size_t              n     = 0;
    uint64_t            total = 0;
    assert_int_equal(store_depths(st, &d, &n, &total, &err), ANVIL_OK);
    store_depths_free(d, n);
    assert_int_equal(total, 9);
    assert_int_equal(insert_job(st, "new"), 10);
    assert_int_equal(insert_flow(st), 3);
    // AUTOINCREMENT is gone from jobs and workflows, kept for tokens (and
    // events, which version 6 added, and schedules, version 8).
    assert_int_equal(sql_int(path,
                         "SELECT COUNT(*) FROM sqlite_sequence "
                         "WHERE name IN ('jobs', 'workflows')"),
        0);
    assert_int_equal(sql_int(path,
                         "SELECT COUNT(*) FROM sqlite_master WHERE sql "
                         "LIKE '%AUTOINCREMENT%'"),
        3);
    store_close(st);
    // The same after a reopen.
    assert_int_equal(store_open(path, 2, &st, &err), ANVIL_OK);
    assert_int_equal(insert_job(st, "new"), 11);
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
test_store_a_new_database_has_the_schema_a_migrated_one_has(void **state)
{
    struct harness_store *f = *state;
    char                  path[160];
    snprintf(path, sizeof(path), "%s/v4.db", f->dir);
    make_v4_database(path, false);
    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(store_open(path, 1, &st, &err), ANVIL_OK);
    store_close(st);

    static char fresh[16384], migrated[16384];
    schema_of(f->path, fresh, sizeof(fresh));
    schema_of(path, migrated, sizeof(migrated));
    assert_string_equal(fresh, migrated);
    // And the partial indexes are written as ranges.
    assert_non_null(strstr(fresh, "WHERE state BETWEEN 2 AND 4"));
    assert_non_null(strstr(fresh, "WHERE state >= 5 AND workflow_id IS NULL"));
    assert_null(strstr(fresh, " IN ("));
}

static void
test_store_refuses_a_version_4_database_it_cannot_migrate(void **state)
{
    struct harness_store *f = *state;
    char                  path[160];
    snprintf(path, sizeof(path), "%s/v4-conflict.db", f->dir);
    make_v4_database(path, true);
    // A table in the way of the version-5 step makes it fail half-way.
    sql_exec(path, "CREATE TABLE jobs_v4(x);");

    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(store_open(path, 2, &st, &err), ANVIL_INTERNAL);
    assert_null(st);
    assert_non_null(strstr(err.msg, "migrating"));
    // Nothing changed: still version 4, every job, AUTOINCREMENT, no meta.
    assert_int_equal(sql_int(path, "PRAGMA user_version"), 4);
    assert_int_equal(sql_int(path, "SELECT COUNT(*) FROM jobs"), 7);
    assert_int_equal(
        sql_int(path, "SELECT seq FROM sqlite_sequence WHERE name = 'jobs'"),
        9);
    assert_int_equal(sql_int(path,
                         "SELECT COUNT(*) FROM sqlite_master "
                         "WHERE name = 'meta'"),
        0);
}

// ---- ids ----

static void
test_store_never_reuses_the_ids_of_swept_jobs_even_after_a_reopen(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    int64_t               a   = insert_job(f->st, "t");
    int64_t               b   = insert_job(f->st, "t");
    finish_job(f->st, a, 100);
    finish_job(f->st, b, 100);
    int deleted = 0;
    assert_int_equal(store_sweep_jobs(f->st, 1000, 10, &deleted, &err), 0);
    assert_int_equal(deleted, 2);
    assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM jobs"), 0);
    int64_t c = insert_job(f->st, "t");
    assert_true(c > b);

    // The newest job is swept too, then the store restarts empty.
    finish_job(f->st, c, 100);
    assert_int_equal(store_sweep_jobs(f->st, 1000, 10, &deleted, &err), 0);
    assert_int_equal(deleted, 1);
    reopen(f);
    assert_true(insert_job(f->st, "t") > c);
    // A sweep that deletes nothing writes nothing.
    int64_t mark = sql_int(f->path,
        "SELECT value FROM meta "
        "WHERE key = 'job_id_hwm'");
    assert_int_equal(mark, c);
    assert_int_equal(store_sweep_jobs(f->st, 1000, 10, &deleted, &err), 0);
    assert_int_equal(deleted, 0);
}

static void
test_store_never_reuses_the_ids_of_swept_workflows_after_a_reopen(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    int64_t               wf  = insert_flow(f->st);
    struct store_new_job  nj  = {
          .type        = "step",
          .queue       = "default",
          .state       = ANVIL_JOB_QUEUED,
          .retry       = { .max_attempts = 1 },
          .workflow_id = wf,
          .step        = "s",
    };
    int64_t step = 0;
    assert_int_equal(store_job_insert(f->st, &nj, &step, &err), ANVIL_OK);
    finish_job(f->st, step, 100);
    struct store_wf_counts cnt;
    assert_int_equal(
        store_workflow_settle(f->st, wf, true, false, &cnt, &err), ANVIL_OK);
    assert_int_equal(cnt.n_settled, 1);
    assert_int_equal(cnt.n_succeeded, 1);
    assert_int_equal(
        store_workflow_finish(f->st, wf, 2, NULL, 100, &err), ANVIL_OK);
    int deleted = 0;
    assert_int_equal(
        store_sweep_workflows(f->st, 1000, 10, &deleted, &err), ANVIL_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM workflows"), 0);
    assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM jobs"), 0);

    reopen(f);
    assert_true(insert_flow(f->st) > wf);
    assert_true(insert_job(f->st, "t") > step);
}

static void
test_store_skips_the_id_of_a_rolled_back_insert(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    int64_t gone = insert_job(f->st, "t");
    store_rollback(f->st, NULL);
    struct job j;
    assert_int_equal(store_job_get(f->st, gone, &j, &err), ANVIL_NOT_FOUND);
    assert_true(insert_job(f->st, "t") > gone);
}

// ---- the hot path, by EXPLAIN ----

// Counts the rows of EXPLAIN [QUERY PLAN] sql on db whose column col
// contains `what`.
static int
explain_count(
    sqlite3 *db, const char *how, const char *sql, int col, const char *what)
{
    char *q = sqlite3_mprintf("%s %s", how, sql);
    assert_non_null(q);
    sqlite3_stmt *s  = NULL;
    int           rc = sqlite3_prepare_v2(db, q, -1, &s, NULL);
    if (rc != SQLITE_OK)
        fprintf(stderr, "explain %s: %s\n", sql, sqlite3_errmsg(db));
    assert_int_equal(rc, SQLITE_OK);
    int n = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *v = (const char *) sqlite3_column_text(s, col);
        n += v != NULL && strstr(v, what) != NULL;
    }
    sqlite3_finalize(s);
    sqlite3_free(q);
    return n;
}

static void
test_store_hot_path_statements_build_no_temporary_tables(void **state)
{
    struct harness_store *f  = *state;
    sqlite3              *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    int checked = 0;
    for (int i = 0; store_stmt_sql(i) != NULL; i++) {
        const char *sql = store_stmt_sql(i);
        int         eph = explain_count(db, "EXPLAIN", sql, 1, "OpenEphemeral");
        // Only retention's `id IN (SELECT ...)` may materialise a list.
        if (strstr(sql, " IN (SELECT") != NULL)
            continue;
        if (eph != 0)
            fprintf(stderr, "ephemeral table in: %s\n", sql);
        assert_int_equal(eph, 0);
        // And no statement is an UPDATE ... RETURNING.
        assert_null(strstr(sql, "RETURNING"));
        checked++;
    }
    assert_true(checked > 40);
    sqlite3_close(db);
}

// Each partial index, the terms of its WHERE, and the least number of
// statements that must use it.
static const struct {
    const char *terms;
    const char *index;
    int         min;
} partial[] = {
    { "state BETWEEN 2 AND 4", "jobs_active", 3 },
    { "state >= 5 AND workflow_id IS NULL", "jobs_finished", 1 },
    { "FROM workflows WHERE state >= 2", "workflows_finished", 1 },
};

static void
test_store_queries_use_the_partial_indexes(void **state)
{
    struct harness_store *f  = *state;
    sqlite3              *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    for (size_t k = 0; k < sizeof(partial) / sizeof(partial[0]); k++) {
        int users = 0;
        for (int i = 0; store_stmt_sql(i) != NULL; i++) {
            const char *sql = store_stmt_sql(i);
            if (strstr(sql, partial[k].terms) == NULL)
                continue;
            int uses = explain_count(
                db, "EXPLAIN QUERY PLAN", sql, 3, partial[k].index);
            if (uses == 0)
                fprintf(stderr, "%s not used by: %s\n", partial[k].index, sql);
            assert_true(uses > 0);
            users++;
        }
        assert_true(users >= partial[k].min);
    }
    sqlite3_close(db);
}

// ---- deferred sync ----

static atomic_int syncs;     // fdatasync calls through the seam
static atomic_int sync_fail; // make the next calls fail with EIO
static atomic_int sync_fd;   // the descriptor last synced

static int
count_sync(int fd)
{
    atomic_fetch_add(&syncs, 1);
    atomic_store(&sync_fd, fd);
    if (atomic_load(&sync_fail)) {
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

static void
hook_sync(void)
{
    atomic_store(&syncs, 0);
    atomic_store(&sync_fail, 0);
    atomic_store(&sync_fd, -1);
    store_hook_fdatasync = count_sync;
}

static void
defer(struct harness_store *f)
{
    struct anvil_error err = { 0 };
    int                rc  = store_set_deferred_sync(f->st, true, &err);
    if (rc != ANVIL_OK)
        fprintf(stderr, "defer: %s\n", err.msg);
    assert_int_equal(rc, ANVIL_OK);
    assert_true(store_needs_sync(f->st));
}

static void
commit_one(struct store *st)
{
    struct anvil_error err = { 0 };
    assert_int_equal(store_begin(st, &err), ANVIL_OK);
    insert_job(st, "t");
    assert_int_equal(store_commit(st, &err), ANVIL_OK);
}

static void
test_store_sync_makes_each_commit_durable_with_one_fdatasync(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    hook_sync();
    assert_false(store_needs_sync(f->st)); // opt-in: FULL as opened
    defer(f);
    // Nothing written yet: nothing to sync.
    assert_int_equal(store_sync(f->st, &err), ANVIL_OK);
    assert_int_equal(atomic_load(&syncs), 0);

    commit_one(f->st);
    assert_int_equal(store_sync(f->st, &err), ANVIL_OK);
    assert_int_equal(atomic_load(&syncs), 1);
    // It synced the -wal file.
    char wal[272];
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    struct stat a, b;
    assert_int_equal(stat(wal, &a), 0);
    assert_int_equal(fstat(atomic_load(&sync_fd), &b), 0);
    assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
    // Twice in a row, or after a read-only transaction: no second sync.
    assert_int_equal(store_sync(f->st, &err), ANVIL_OK);
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    assert_int_equal(store_sync(f->st, &err), ANVIL_OK);
    assert_int_equal(atomic_load(&syncs), 1);
    // Two commits, one sync; a write outside a transaction counts too.
    commit_one(f->st);
    insert_job(f->st, "t");
    assert_int_equal(store_sync(f->st, &err), ANVIL_OK);
    assert_int_equal(atomic_load(&syncs), 2);
    // What was committed is there after a reopen.
    reopen(f);
    assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM jobs"), 3);
}

static void
test_store_sync_is_a_no_op_unless_deferred(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    hook_sync();
    // FULL, not deferred: each COMMIT synced itself.
    commit_one(f->st);
    assert_int_equal(store_sync(f->st, &err), ANVIL_OK);
    assert_int_equal(atomic_load(&syncs), 0);

    // NORMAL: deferring is a no-op, and so is store_sync.
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(store_open(f->path, 1, &f->st, &err), ANVIL_OK);
    assert_int_equal(store_set_deferred_sync(f->st, true, &err), ANVIL_OK);
    assert_false(store_needs_sync(f->st));
    commit_one(f->st);
    assert_int_equal(store_sync(f->st, &err), ANVIL_OK);
    assert_int_equal(atomic_load(&syncs), 0);

    // A database in memory has no WAL file to sync: it stays FULL.
    struct store *mem = NULL;
    assert_int_equal(store_open(":memory:", 2, &mem, &err), ANVIL_OK);
    assert_int_equal(store_set_deferred_sync(mem, true, &err), ANVIL_OK);
    assert_false(store_needs_sync(mem));
    commit_one(mem);
    assert_int_equal(store_sync(mem, &err), ANVIL_OK);
    assert_int_equal(atomic_load(&syncs), 0);
    store_close(mem);
}

static void
test_store_deferred_sync_changes_only_between_transactions(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(
        store_set_deferred_sync(f->st, true, &err), ANVIL_FAILED_PRECONDITION);
    assert_non_null(strstr(err.msg, "between transactions"));
    assert_false(store_needs_sync(f->st));
    store_rollback(f->st, NULL);
    defer(f);
}

static void
test_store_turning_deferred_sync_off_syncs_first(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    hook_sync();
    defer(f);
    commit_one(f->st);
    assert_int_equal(store_set_deferred_sync(f->st, false, &err), ANVIL_OK);
    assert_int_equal(atomic_load(&syncs), 1);
    assert_false(store_needs_sync(f->st));
    commit_one(f->st);
    assert_int_equal(store_sync(f->st, &err), ANVIL_OK);
    assert_int_equal(atomic_load(&syncs), 1);
}

static void
test_store_sync_failure_is_reported_and_sticks(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    hook_sync();
    defer(f);
    commit_one(f->st);
    atomic_store(&sync_fail, 1);
    assert_int_equal(store_sync(f->st, &err), ANVIL_INTERNAL);
    assert_non_null(strstr(err.msg, "fdatasync"));
    // The disk may have dropped the data: a later sync must not say OK.
    atomic_store(&sync_fail, 0);
    commit_one(f->st);
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_sync(f->st, &err), ANVIL_INTERNAL);
    assert_true(strlen(err.msg) > 0);
}

static void
test_store_sync_fails_when_the_wal_file_is_gone(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    hook_sync();
    defer(f);
    char wal[272];
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    assert_int_equal(unlink(wal), 0);
    commit_one(f->st);
    assert_int_equal(store_sync(f->st, &err), ANVIL_INTERNAL);
    assert_non_null(strstr(err.msg, "gone"));
    assert_int_equal(atomic_load(&syncs), 0);
}

// SQLite rewrites and truncates the -wal file in place while a connection
// is open, so one descriptor covers it across checkpoints and restarts.
static void
test_store_sync_follows_the_wal_across_checkpoints_and_restarts(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    hook_sync();
    defer(f);
    char wal[272];
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    struct stat before, after;
    assert_int_equal(stat(wal, &before), 0);
    commit_one(f->st);
    assert_int_equal(store_sync(f->st, &err), ANVIL_OK);
    int fd = atomic_load(&sync_fd);

    // Another connection (as `sqlite3 anvil.db .backup` would) checkpoints,
    // truncates the WAL and closes; the next commit restarts the WAL.
    assert_int_equal(sql_int(f->path, "PRAGMA wal_checkpoint(TRUNCATE)"), 0);
    assert_int_equal(stat(wal, &after), 0);
    assert_int_equal(after.st_size, 0);
    for (int i = 0; i < 3; i++)
        commit_one(f->st);
    assert_int_equal(store_sync(f->st, &err), ANVIL_OK);
    assert_int_equal(stat(wal, &after), 0);
    assert_true(after.st_size > 0);
    assert_true(after.st_ino == before.st_ino);
    assert_int_equal(atomic_load(&sync_fd), fd);
    assert_int_equal(atomic_load(&syncs), 2);
    reopen(f);
    assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM jobs"), 4);
}

struct syncer {
    struct store *st;
    atomic_int    running;
    atomic_int    stop;
    int           calls;
    int           failures;
};

static void *
syncer_main(void *arg)
{
    struct syncer *s = arg;
    atomic_store(&s->running, 1);
    do {
        struct anvil_error err = { 0 };
        s->failures += store_sync(s->st, &err) != ANVIL_OK;
        s->calls++;
    } while (!atomic_load(&s->stop));
    return NULL;
}

static void
test_store_sync_runs_on_another_thread_beside_the_transactions(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    hook_sync();
    defer(f);
    struct syncer s = { .st = f->st };
    pthread_t     t;
    assert_int_equal(pthread_create(&t, NULL, syncer_main, &s), 0);
    while (!atomic_load(&s.running))
        sched_yield(); // the thread starts at once; no deadline needed
    for (int i = 0; i < 100; i++)
        commit_one(f->st);
    atomic_store(&s.stop, 1);
    pthread_join(t, NULL);
    assert_int_equal(s.failures, 0);
    assert_true(s.calls > 0);
    assert_int_equal(store_sync(f->st, &err), ANVIL_OK);
    int n = atomic_load(&syncs);
    assert_true(n >= 1 && n <= 101);
    // Nothing more to sync afterwards.
    assert_int_equal(store_sync(f->st, &err), ANVIL_OK);
    assert_int_equal(atomic_load(&syncs), n);
    reopen(f);
    assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM jobs"), 100);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_store_migrates_a_version_4_database_keeping_every_job),
        T(test_store_ids_after_migration_exceed_every_old_one),
        T(test_store_a_new_database_has_the_schema_a_migrated_one_has),
        T(test_store_refuses_a_version_4_database_it_cannot_migrate),
        T(test_store_never_reuses_the_ids_of_swept_jobs_even_after_a_reopen),
        T(test_store_never_reuses_the_ids_of_swept_workflows_after_a_reopen),
        T(test_store_skips_the_id_of_a_rolled_back_insert),
        T(test_store_hot_path_statements_build_no_temporary_tables),
        T(test_store_queries_use_the_partial_indexes),
        T(test_store_sync_makes_each_commit_durable_with_one_fdatasync),
        T(test_store_sync_is_a_no_op_unless_deferred),
        T(test_store_deferred_sync_changes_only_between_transactions),
        T(test_store_turning_deferred_sync_off_syncs_first),
        T(test_store_sync_failure_is_reported_and_sticks),
        T(test_store_sync_fails_when_the_wal_file_is_gone),
        T(test_store_sync_follows_the_wal_across_checkpoints_and_restarts),
        T(test_store_sync_runs_on_another_thread_beside_the_transactions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
