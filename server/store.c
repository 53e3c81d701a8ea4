// store.c - SQLite persistence. All SQL of anvild lives here.
//
// Schema changes: bump STORE_SCHEMA_VERSION, append one migration step to
// migrations[] that takes version N-1 to N (never edit a shipped step), add
// a unit test that opens a database of the previous version, and describe
// the change in docs/architecture.md.
#include "store.h"

#include "util/error.h"
#include "util/log.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int (*store_hook_step)(int stmt);

enum stmt_id {
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_SAVEPOINT,
    STMT_RELEASE,
    STMT_ROLLBACK_TO,
    STMT_JOB_INSERT,
    STMT_JOB_BY_RID,
    STMT_JOB_BY_KEY,
    STMT_JOB_GET,
    STMT_JOB_LEASE,
    STMT_JOB_FINISH,
    STMT_JOB_REQUEUE,
    STMT_JOB_MAKE_READY,
    STMT_JOB_EXTEND,
    STMT_JOB_CANCEL_REQ,
    STMT_JOB_BRIEF,
    STMT_JOB_LIST,
    STMT_SCAN_ACTIVE,
    STMT_DEPTHS,
    STMT_TOTAL,
    STMT_WF_INSERT,
    STMT_WF_BY_RID,
    STMT_WF_BY_KEY,
    STMT_WF_GET,
    STMT_WF_STEPS,
    STMT_WF_EDGES,
    STMT_WF_LIST,
    STMT_WF_SETTLE,
    STMT_WF_FINISH,
    STMT_WF_UNFINISHED,
    STMT_WF_SCAN_ACTIVE,
    STMT_EDGE_INSERT,
    STMT_CHILDREN,
    STMT_PARENT_RESULTS,
    STMT_PARENT_DONE,
    STMT_SWEEP_JOBS,
    STMT_SWEEP_FLOWS,
    STMT_SWEEP_FLOW_EDGES,
    STMT_SWEEP_FLOW_STEPS,
    STMT_SWEEP_FLOW,
    STMT_RUNNING_BY_WORKER,
    STMT_TOKEN_INSERT,
    STMT_TOKEN_LIST,
    STMT_TOKEN_REVOKE,
    STMT_COUNT
};

// Columns read into a struct job by read_job(), in this order.
#define JOB_COLS                                                          \
    "id, type, queue, payload, priority, state, attempt, max_attempts, "  \
    "result, error, created_at, started_at, finished_at, run_at, "        \
    "timeout_ms, lease_deadline, worker_id, idem_key, cancel_requested, " \
    "workflow_id, step, lease_ms, backoff_initial_ms, backoff_max_ms, "   \
    "backoff_multiplier"

#define WF_COLS                                                          \
    "id, name, state, on_failure, created_at, finished_at, timeout_ms, " \
    "error, idem_key, n_steps, n_settled, n_succeeded, n_failed"

static const char *const stmt_sql[STMT_COUNT] = {
    [STMT_BEGIN]       = "BEGIN IMMEDIATE",
    [STMT_COMMIT]      = "COMMIT",
    [STMT_ROLLBACK]    = "ROLLBACK",
    [STMT_SAVEPOINT]   = "SAVEPOINT cmd",
    [STMT_RELEASE]     = "RELEASE cmd",
    [STMT_ROLLBACK_TO] = "ROLLBACK TO cmd",
    [STMT_JOB_INSERT]  = "INSERT INTO jobs(type, queue, payload, priority, "
                         "state, max_attempts, created_at, run_at, "
                         "timeout_ms, lease_ms, idem_key, request_id, "
                         "workflow_id, step, pending_parents, "
                         "backoff_initial_ms, backoff_max_ms, "
                         "backoff_multiplier) "
                         "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                         "?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    [STMT_JOB_BY_RID]  = "SELECT id FROM jobs WHERE request_id = ?1",
    [STMT_JOB_BY_KEY]  = "SELECT id FROM jobs WHERE idem_key = ?1",
    [STMT_JOB_GET]     = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
    [STMT_JOB_LEASE]   = "UPDATE jobs SET state = 4, attempt = attempt + 1, "
                         "started_at = ?2, lease_deadline = ?2 + CASE WHEN "
                         "lease_ms > 0 THEN lease_ms ELSE ?3 END, "
                         "worker_id = ?4, lease_token = ?5, "
                         "finished_at = NULL "
                         "WHERE id = ?1 AND state = 3 AND (?6 IS NULL OR "
                         "queue || char(31) || type = ?6) RETURNING " JOB_COLS,
    [STMT_JOB_FINISH]  = "UPDATE jobs SET state = ?2, result = ?3, error = ?4, "
                         "finished_at = ?5, lease_deadline = NULL "
                         "WHERE id = ?1",
    [STMT_JOB_REQUEUE] = "UPDATE jobs SET state = ?2, run_at = ?3, "
                         "error = ?4, lease_deadline = NULL WHERE id = ?1",
    [STMT_JOB_MAKE_READY] = "UPDATE jobs SET state = 3 "
                            "WHERE id = ?1 AND state IN (1, 2)",
    [STMT_JOB_EXTEND]     = "UPDATE jobs SET lease_deadline = ?2 WHERE id = ?1",
    [STMT_JOB_CANCEL_REQ] = "UPDATE jobs SET cancel_requested = 1 "
                            "WHERE id = ?1",
    [STMT_JOB_BRIEF]   = "SELECT state, attempt, max_attempts, lease_deadline, "
                         "started_at, timeout_ms, lease_ms, run_at, priority, "
                         "cancel_requested, workflow_id, backoff_initial_ms, "
                         "backoff_max_ms, backoff_multiplier, lease_token "
                         "FROM jobs WHERE id = ?1",
    [STMT_JOB_LIST]    = "SELECT " JOB_COLS " FROM jobs "
                         "WHERE (?1 = 0 OR state = ?1) "
                         "AND (?2 IS NULL OR type = ?2) "
                         "AND (?3 IS NULL OR queue = ?3) "
                         "AND id < ?4 ORDER BY id DESC LIMIT ?5",
    [STMT_SCAN_ACTIVE] = "SELECT id, type, queue, priority, state, attempt, "
                         "run_at, lease_deadline, started_at, timeout_ms "
                         "FROM jobs WHERE state IN (2, 3, 4) ORDER BY id",
    [STMT_DEPTHS]      = "SELECT queue, type, SUM(state = 3), SUM(state = 4) "
                         "FROM jobs WHERE state IN (3, 4) "
                         "GROUP BY queue, type ORDER BY queue, type",
    [STMT_TOTAL]       = "SELECT seq FROM sqlite_sequence WHERE name = 'jobs'",
    [STMT_WF_INSERT]   = "INSERT INTO workflows(name, state, on_failure, "
                         "created_at, timeout_ms, idem_key, request_id, "
                         "n_steps) VALUES(?1, 1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [STMT_WF_BY_RID]   = "SELECT id FROM workflows WHERE request_id = ?1",
    [STMT_WF_BY_KEY]   = "SELECT id FROM workflows WHERE idem_key = ?1",
    [STMT_WF_GET]      = "SELECT " WF_COLS " FROM workflows WHERE id = ?1",
    [STMT_WF_STEPS]    = "SELECT " JOB_COLS " FROM jobs WHERE workflow_id = ?1 "
                         "ORDER BY id",
    [STMT_WF_EDGES]    = "SELECT e.child, p.step FROM jobs p "
                         "JOIN edges e ON e.parent = p.id "
                         "WHERE p.workflow_id = ?1 ORDER BY e.child, p.id",
    [STMT_WF_LIST]     = "SELECT " WF_COLS " FROM workflows "
                         "WHERE (?1 = 0 OR state = ?1) "
                         "AND (?2 IS NULL OR name = ?2) "
                         "AND id < ?3 ORDER BY id DESC LIMIT ?4",
    [STMT_WF_SETTLE]   = "UPDATE workflows SET n_settled = n_settled + 1, "
                         "n_succeeded = n_succeeded + ?2, "
                         "n_failed = n_failed + ?3 WHERE id = ?1 "
                         "RETURNING state, on_failure, n_steps, n_settled, "
                         "n_succeeded, n_failed",
    [STMT_WF_FINISH]   = "UPDATE workflows SET state = ?2, error = ?3, "
                         "finished_at = ?4 WHERE id = ?1 AND state = 1",
    [STMT_WF_UNFINISHED]  = "SELECT id FROM jobs WHERE workflow_id = ?1 "
                            "AND state IN (1, 2, 3, 4) ORDER BY id",
    [STMT_WF_SCAN_ACTIVE] = "SELECT id, created_at + timeout_ms FROM "
                            "workflows WHERE state = 1 AND timeout_ms > 0",
    [STMT_EDGE_INSERT]    = "INSERT INTO edges(parent, child) VALUES(?1, ?2)",
    [STMT_CHILDREN]       = "SELECT child FROM edges WHERE parent = ?1",
    [STMT_PARENT_RESULTS] = "SELECT p.step, p.result FROM edges e "
                            "JOIN jobs p ON p.id = e.parent "
                            "WHERE e.child = ?1 ORDER BY p.id",
    [STMT_PARENT_DONE]    = "UPDATE jobs SET pending_parents = "
                            "pending_parents - 1 WHERE id = ?1 AND state = 1 "
                            "RETURNING pending_parents",
    [STMT_SWEEP_JOBS]     = "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs "
                            "WHERE state IN (5, 6, 7) AND workflow_id IS NULL "
                            "AND finished_at < ?1 LIMIT ?2)",
    [STMT_SWEEP_FLOWS]    = "SELECT id FROM workflows WHERE state IN (2, 3, 4) "
                            "AND finished_at < ?1 AND n_settled >= n_steps "
                            "LIMIT ?2",
    [STMT_SWEEP_FLOW_EDGES]  = "DELETE FROM edges WHERE child IN "
                               "(SELECT id FROM jobs WHERE workflow_id = ?1)",
    [STMT_SWEEP_FLOW_STEPS]  = "DELETE FROM jobs WHERE workflow_id = ?1",
    [STMT_SWEEP_FLOW]        = "DELETE FROM workflows WHERE id = ?1",
    [STMT_RUNNING_BY_WORKER] = "SELECT worker_id, COUNT(*) FROM jobs "
                               "WHERE state = 4 GROUP BY worker_id",
    [STMT_TOKEN_INSERT] = "INSERT INTO tokens(name, role, hash, created_at, "
                          "expires_at) VALUES(?1, ?2, ?3, ?4, ?5)",
    [STMT_TOKEN_LIST]   = "SELECT id, name, role, hash, created_at, "
                          "expires_at, revoked_at FROM tokens ORDER BY id",
    [STMT_TOKEN_REVOKE] = "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 "
                          "AND revoked_at = 0",
};

// Migration i takes the schema from version i to i + 1.
static const char *const migrations[] = {
    "CREATE TABLE jobs ("
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
    "CREATE INDEX jobs_active ON jobs(state) WHERE state IN (2, 3, 4);",

    "CREATE TABLE workflows ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT NOT NULL,"
    " state INTEGER NOT NULL,"
    " on_failure INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " finished_at INTEGER,"
    " timeout_ms INTEGER NOT NULL DEFAULT 0,"
    " error TEXT,"
    " idem_key TEXT,"
    " request_id INTEGER,"
    " n_steps INTEGER NOT NULL,"
    " n_settled INTEGER NOT NULL DEFAULT 0,"
    " n_succeeded INTEGER NOT NULL DEFAULT 0,"
    " n_failed INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX workflows_idem_key ON workflows(idem_key)"
    " WHERE idem_key IS NOT NULL;"
    "CREATE UNIQUE INDEX workflows_request_id ON workflows(request_id)"
    " WHERE request_id IS NOT NULL;"
    "CREATE INDEX workflows_state ON workflows(state, id);"
    "ALTER TABLE jobs ADD COLUMN workflow_id INTEGER;"
    "ALTER TABLE jobs ADD COLUMN step TEXT;"
    "ALTER TABLE jobs ADD COLUMN pending_parents INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX jobs_workflow ON jobs(workflow_id, id)"
    " WHERE workflow_id IS NOT NULL;"
    "CREATE TABLE edges ("
    " parent INTEGER NOT NULL,"
    " child INTEGER NOT NULL,"
    " PRIMARY KEY (parent, child)) WITHOUT ROWID;"
    "CREATE INDEX edges_child ON edges(child, parent);",

    "ALTER TABLE jobs ADD COLUMN backoff_initial_ms INTEGER NOT NULL"
    " DEFAULT 1000;"
    "ALTER TABLE jobs ADD COLUMN backoff_max_ms INTEGER NOT NULL"
    " DEFAULT 60000;"
    "ALTER TABLE jobs ADD COLUMN backoff_multiplier REAL NOT NULL"
    " DEFAULT 2.0;"
    "CREATE INDEX jobs_finished ON jobs(finished_at)"
    " WHERE state IN (5, 6, 7) AND workflow_id IS NULL;"
    "CREATE INDEX workflows_finished ON workflows(finished_at)"
    " WHERE state IN (2, 3, 4);",

    "CREATE TABLE tokens ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT NOT NULL,"
    " role INTEGER NOT NULL,"
    " hash BLOB NOT NULL UNIQUE,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL DEFAULT 0,"
    " revoked_at INTEGER NOT NULL DEFAULT 0);"
    "ALTER TABLE jobs ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;",
};

struct store {
    sqlite3      *db;
    sqlite3_stmt *stmt[STMT_COUNT];
};

static int
db_error(struct store *st, struct anvil_error *err, const char *what)
{
    AV_ERR("store.error", "op=%s err=\"%s\"", what, sqlite3_errmsg(st->db));
    return av_error_set(err, ANVIL_INTERNAL, "database error while %s: %s",
        what, sqlite3_errmsg(st->db));
}

// Steps a statement, honouring the failure seam.
static int
step(struct store *st, int id)
{
    if (store_hook_step != NULL && store_hook_step(id) != 0)
        return SQLITE_IOERR;
    return sqlite3_step(st->stmt[id]);
}

static sqlite3_stmt *
stmt_get(struct store *st, int id)
{
    sqlite3_stmt *s = st->stmt[id];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

// Runs a statement that returns no rows.
static int
exec_stmt(struct store *st, int id, struct anvil_error *err, const char *what)
{
    int rc = step(st, id);
    sqlite3_reset(st->stmt[id]);
    if (rc != SQLITE_DONE)
        return db_error(st, err, what);
    return ANVIL_OK;
}

static int
migrate(struct store *st, struct anvil_error *err)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL))
        return db_error(st, err, "reading the schema version");
    int version = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    sqlite3_finalize(s);
    if (version > STORE_SCHEMA_VERSION)
        return av_error_set(err, ANVIL_FAILED_PRECONDITION,
            "database schema version %d is newer than this anvild's (%d); "
            "upgrade anvild",
            version, STORE_SCHEMA_VERSION);
    for (; version < STORE_SCHEMA_VERSION; version++) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
        if (sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL)
            || sqlite3_exec(st->db, migrations[version], NULL, NULL, NULL)
            || sqlite3_exec(st->db, sql, NULL, NULL, NULL)
            || sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL)) {
            int code = db_error(st, err, "migrating the schema");
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            return code;
        }
        AV_INFO("store.migrated", "version=%d", version + 1);
    }
    return ANVIL_OK;
}

static int
configure(struct store *st, int synchronous, struct anvil_error *err)
{
    char sql[160];
    snprintf(sql, sizeof(sql),
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = %d; "
        "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY",
        synchronous);
    sqlite3_busy_timeout(st->db, 5000);
    if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_error(st, err, "configuring the database");
    return ANVIL_OK;
}

int
store_open(const char *path, int synchronous, struct store **out,
    struct anvil_error *err)
{
    struct store *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    int flags
        = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = ANVIL_OK;
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK)
        rc = av_error_set(err, ANVIL_INTERNAL, "cannot open database %s: %s",
            path, st->db ? sqlite3_errmsg(st->db) : "out of memory");
    if (rc == ANVIL_OK)
        rc = configure(st, synchronous, err);
    if (rc == ANVIL_OK)
        rc = migrate(st, err);
    for (int i = 0; rc == ANVIL_OK && i < STMT_COUNT; i++) {
        if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
                SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL)
            != SQLITE_OK)
            rc = db_error(st, err, "preparing statements");
    }
    if (rc != ANVIL_OK) {
        store_close(st);
        return rc;
    }
    *out = st;
    return ANVIL_OK;
}

void
store_close(struct store *st)
{
    if (st == NULL)
        return;
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    if (st->db != NULL && sqlite3_close(st->db) != SQLITE_OK)
        AV_ERR("store.close", "err=\"%s\"", sqlite3_errmsg(st->db));
    free(st);
}

int
store_begin(struct store *st, struct anvil_error *err)
{
    return exec_stmt(st, STMT_BEGIN, err, "starting a transaction");
}

int
store_commit(struct store *st, struct anvil_error *err)
{
    return exec_stmt(st, STMT_COMMIT, err, "committing");
}

void
store_rollback(struct store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        exec_stmt(st, STMT_ROLLBACK, NULL, "rolling back");
}

int
store_savepoint(struct store *st, struct anvil_error *err)
{
    return exec_stmt(st, STMT_SAVEPOINT, err, "opening a savepoint");
}

int
store_release(struct store *st, struct anvil_error *err)
{
    return exec_stmt(st, STMT_RELEASE, err, "releasing a savepoint");
}

void
store_rollback_savepoint(struct store *st)
{
    exec_stmt(st, STMT_ROLLBACK_TO, NULL, "rolling back a savepoint");
    exec_stmt(st, STMT_RELEASE, NULL, "releasing a savepoint");
}

static void
bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
    if (v == NULL || v[0] == '\0')
        sqlite3_bind_null(s, i);
    else
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

int
store_job_insert(struct store *st, const struct store_new_job *nj, int64_t *id,
    struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_JOB_INSERT);
    sqlite3_bind_text(s, 1, nj->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, nj->queue, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, nj->payload ? (const void *) nj->payload : "",
        (int) nj->payload_len, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, nj->priority);
    sqlite3_bind_int(s, 5, nj->state);
    sqlite3_bind_int64(s, 6, nj->max_attempts);
    sqlite3_bind_int64(s, 7, nj->created_at);
    sqlite3_bind_int64(s, 8, nj->run_at);
    sqlite3_bind_int64(s, 9, nj->timeout_ms);
    sqlite3_bind_int64(s, 10, nj->lease_ms);
    bind_text_or_null(s, 11, nj->idem_key);
    if (nj->request_id != 0)
        sqlite3_bind_int64(s, 12, (sqlite3_int64) nj->request_id);
    if (nj->workflow_id != 0) {
        sqlite3_bind_int64(s, 13, nj->workflow_id);
        sqlite3_bind_text(s, 14, nj->step, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(s, 15, (sqlite3_int64) nj->pending_parents);
    sqlite3_bind_int64(s, 16, nj->backoff_initial_ms);
    sqlite3_bind_int64(s, 17, nj->backoff_max_ms);
    sqlite3_bind_double(s, 18, nj->backoff_multiplier);
    int rc = exec_stmt(st, STMT_JOB_INSERT, err, "inserting a job");
    if (rc == ANVIL_OK)
        *id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

// Runs a one-column id query; NOT_FOUND when it yields no row.
static int
find_id(struct store *st, int sid, int64_t *id, struct anvil_error *err)
{
    int rc = step(st, sid);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st->stmt[sid], 0);
    sqlite3_reset(st->stmt[sid]);
    if (rc == SQLITE_ROW)
        return ANVIL_OK;
    if (rc == SQLITE_DONE)
        return ANVIL_NOT_FOUND;
    return db_error(st, err, "looking up a job");
}

int
store_job_by_request(
    struct store *st, uint64_t rid, int64_t *id, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_JOB_BY_RID);
    sqlite3_bind_int64(s, 1, (sqlite3_int64) rid);
    return find_id(st, STMT_JOB_BY_RID, id, err);
}

int
store_job_by_key(
    struct store *st, const char *key, int64_t *id, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_JOB_BY_KEY);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    return find_id(st, STMT_JOB_BY_KEY, id, err);
}

static char *
col_str(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return strdup(t ? (const char *) t : "");
}

// Copies a blob column and adds a NUL after it, for callers that treat it
// as text.
static uint8_t *
col_blob(sqlite3_stmt *s, int i, size_t *len)
{
    const void *b = sqlite3_column_blob(s, i);
    size_t      n = (size_t) sqlite3_column_bytes(s, i);
    uint8_t    *p = malloc(n + 1);
    if (p == NULL)
        return NULL;
    if (n > 0)
        memcpy(p, b, n);
    p[n] = 0;
    *len = n;
    return p;
}

static int
read_job(sqlite3_stmt *s, struct job *j)
{
    memset(j, 0, sizeof(*j));
    j->id                 = sqlite3_column_int64(s, 0);
    j->type               = col_str(s, 1);
    j->queue              = col_str(s, 2);
    j->payload            = col_blob(s, 3, &j->payload_len);
    j->priority           = sqlite3_column_int(s, 4);
    j->state              = sqlite3_column_int(s, 5);
    j->attempt            = (uint32_t) sqlite3_column_int64(s, 6);
    j->max_attempts       = (uint32_t) sqlite3_column_int64(s, 7);
    j->result             = col_blob(s, 8, &j->result_len);
    j->error              = col_str(s, 9);
    j->created_at         = sqlite3_column_int64(s, 10);
    j->started_at         = sqlite3_column_int64(s, 11);
    j->finished_at        = sqlite3_column_int64(s, 12);
    j->run_at             = sqlite3_column_int64(s, 13);
    j->timeout_ms         = sqlite3_column_int64(s, 14);
    j->lease_deadline     = sqlite3_column_int64(s, 15);
    j->worker_id          = col_str(s, 16);
    j->idem_key           = col_str(s, 17);
    j->cancel_requested   = sqlite3_column_int(s, 18) != 0;
    j->workflow_id        = sqlite3_column_int64(s, 19);
    j->step               = col_str(s, 20);
    j->lease_ms           = sqlite3_column_int64(s, 21);
    j->backoff_initial_ms = sqlite3_column_int64(s, 22);
    j->backoff_max_ms     = sqlite3_column_int64(s, 23);
    j->backoff_multiplier = sqlite3_column_double(s, 24);
    if (!j->type || !j->queue || !j->payload || !j->result || !j->error
        || !j->worker_id || !j->idem_key || !j->step) {
        job_fini(j);
        return ANVIL_RESOURCE_EXHAUSTED;
    }
    return ANVIL_OK;
}

// Steps a statement expected to yield one job row.
static int
one_job(struct store *st, int sid, struct job *out, struct anvil_error *err,
    const char *what)
{
    int rc   = step(st, sid);
    int code = ANVIL_OK;
    if (rc == SQLITE_ROW)
        code = read_job(st->stmt[sid], out);
    else if (rc == SQLITE_DONE)
        code = ANVIL_NOT_FOUND;
    else
        code = db_error(st, err, what);
    // A RETURNING statement completes its update only when stepped to DONE.
    if (rc == SQLITE_ROW && step(st, sid) != SQLITE_DONE) {
        job_fini(out);
        code = db_error(st, err, what);
    }
    sqlite3_reset(st->stmt[sid]);
    if (code == ANVIL_RESOURCE_EXHAUSTED)
        av_error_set(err, code, "out of memory reading job");
    return code;
}

int
store_job_get(
    struct store *st, int64_t id, struct job *out, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_JOB_GET);
    sqlite3_bind_int64(s, 1, id);
    return one_job(st, STMT_JOB_GET, out, err, "reading a job");
}

int
store_job_lease(struct store *st, int64_t id, const char *worker,
    int64_t token_id, int64_t now, int64_t default_lease, struct job *out,
    struct anvil_error *err)
{
    return store_job_lease_key(
        st, id, NULL, worker, token_id, now, default_lease, out, err);
}

int
store_job_lease_key(struct store *st, int64_t id, const char *key,
    const char *worker, int64_t token_id, int64_t now, int64_t default_lease,
    struct job *out, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_JOB_LEASE);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, now);
    sqlite3_bind_int64(s, 3, default_lease);
    sqlite3_bind_text(s, 4, worker, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, token_id);
    if (key != NULL)
        sqlite3_bind_text(s, 6, key, -1, SQLITE_STATIC);
    return one_job(st, STMT_JOB_LEASE, out, err, "leasing a job");
}

int
store_job_finish(struct store *st, int64_t id, int state, const uint8_t *result,
    size_t result_len, const char *error, int64_t now, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_JOB_FINISH);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int(s, 2, state);
    if (result != NULL)
        sqlite3_bind_blob(s, 3, result, (int) result_len, SQLITE_STATIC);
    bind_text_or_null(s, 4, error);
    sqlite3_bind_int64(s, 5, now);
    return exec_stmt(st, STMT_JOB_FINISH, err, "finishing a job");
}

int
store_job_requeue(struct store *st, int64_t id, int state, int64_t run_at,
    const char *error, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_JOB_REQUEUE);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int(s, 2, state);
    sqlite3_bind_int64(s, 3, run_at);
    bind_text_or_null(s, 4, error);
    return exec_stmt(st, STMT_JOB_REQUEUE, err, "requeueing a job");
}

int
store_job_make_ready(struct store *st, int64_t id, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_JOB_MAKE_READY);
    sqlite3_bind_int64(s, 1, id);
    int rc = exec_stmt(st, STMT_JOB_MAKE_READY, err, "queueing a job");
    if (rc == ANVIL_OK && sqlite3_changes(st->db) == 0)
        return ANVIL_NOT_FOUND;
    return rc;
}

int
store_job_extend(
    struct store *st, int64_t id, int64_t deadline, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_JOB_EXTEND);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, deadline);
    return exec_stmt(st, STMT_JOB_EXTEND, err, "extending a lease");
}

int
store_job_request_cancel(struct store *st, int64_t id, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_JOB_CANCEL_REQ);
    sqlite3_bind_int64(s, 1, id);
    return exec_stmt(st, STMT_JOB_CANCEL_REQ, err, "requesting a cancel");
}

int
store_job_brief(struct store *st, int64_t id, struct store_job_brief *b,
    struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_JOB_BRIEF);
    sqlite3_bind_int64(s, 1, id);
    int rc = step(st, STMT_JOB_BRIEF);
    if (rc == SQLITE_ROW) {
        b->state              = sqlite3_column_int(s, 0);
        b->attempt            = (uint32_t) sqlite3_column_int64(s, 1);
        b->max_attempts       = (uint32_t) sqlite3_column_int64(s, 2);
        b->lease_deadline     = sqlite3_column_int64(s, 3);
        b->started_at         = sqlite3_column_int64(s, 4);
        b->timeout_ms         = sqlite3_column_int64(s, 5);
        b->lease_ms           = sqlite3_column_int64(s, 6);
        b->run_at             = sqlite3_column_int64(s, 7);
        b->priority           = sqlite3_column_int(s, 8);
        b->cancel_requested   = sqlite3_column_int(s, 9) != 0;
        b->workflow_id        = sqlite3_column_int64(s, 10);
        b->backoff_initial_ms = sqlite3_column_int64(s, 11);
        b->backoff_max_ms     = sqlite3_column_int64(s, 12);
        b->backoff_multiplier = sqlite3_column_double(s, 13);
        b->lease_token        = sqlite3_column_int64(s, 14);
    }
    sqlite3_reset(s);
    if (rc == SQLITE_ROW)
        return ANVIL_OK;
    if (rc == SQLITE_DONE)
        return ANVIL_NOT_FOUND;
    return db_error(st, err, "reading a job's state");
}

// Grows *jobs to hold at least want entries.
static int
grow(struct job **jobs, size_t *cap, size_t want)
{
    if (want <= *cap)
        return 0;
    size_t      ncap = *cap ? *cap * 2 : 16;
    struct job *p    = realloc(*jobs, ncap * sizeof(**jobs));
    if (p == NULL)
        return -1;
    *jobs = p;
    *cap  = ncap;
    return 0;
}

int
store_job_list(struct store *st, const struct store_list_filter *f,
    struct job **jobs, size_t *n, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_JOB_LIST);
    sqlite3_bind_int(s, 1, f->state);
    bind_text_or_null(s, 2, f->type);
    bind_text_or_null(s, 3, f->queue);
    sqlite3_bind_int64(s, 4, f->before_id > 0 ? f->before_id : INT64_MAX);
    sqlite3_bind_int64(s, 5, f->limit);
    struct job *out = NULL;
    size_t      cnt = 0, cap = 0;
    int         rc, code     = ANVIL_OK;
    while ((rc = step(st, STMT_JOB_LIST)) == SQLITE_ROW) {
        if (grow(&out, &cap, cnt + 1) || read_job(s, &out[cnt])) {
            code = av_error_set(
                err, ANVIL_RESOURCE_EXHAUSTED, "out of memory listing jobs");
            break;
        }
        cnt++;
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = db_error(st, err, "listing jobs");
    sqlite3_reset(s);
    if (code != ANVIL_OK) {
        job_array_free(out, cnt);
        return code;
    }
    *jobs = out;
    *n    = cnt;
    return ANVIL_OK;
}

int
store_scan_active(struct store *st, int (*fn)(void *, const struct job *),
    void *arg, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_SCAN_ACTIVE);
    int           rc, code = ANVIL_OK;
    while ((rc = step(st, STMT_SCAN_ACTIVE)) == SQLITE_ROW) {
        struct job j = {
            .id             = sqlite3_column_int64(s, 0),
            .type           = (char *) sqlite3_column_text(s, 1),
            .queue          = (char *) sqlite3_column_text(s, 2),
            .priority       = sqlite3_column_int(s, 3),
            .state          = sqlite3_column_int(s, 4),
            .attempt        = (uint32_t) sqlite3_column_int64(s, 5),
            .run_at         = sqlite3_column_int64(s, 6),
            .lease_deadline = sqlite3_column_int64(s, 7),
            .started_at     = sqlite3_column_int64(s, 8),
            .timeout_ms     = sqlite3_column_int64(s, 9),
        };
        code = fn(arg, &j);
        if (code != ANVIL_OK) {
            av_error_set(err, code, "rebuilding state: out of memory");
            break;
        }
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = db_error(st, err, "scanning active jobs");
    sqlite3_reset(s);
    return code;
}

static int
read_total(struct store *st, uint64_t *total, struct anvil_error *err)
{
    stmt_get(st, STMT_TOTAL);
    int rc = step(st, STMT_TOTAL);
    *total = rc == SQLITE_ROW
        ? (uint64_t) sqlite3_column_int64(st->stmt[STMT_TOTAL], 0)
        : 0;
    sqlite3_reset(st->stmt[STMT_TOTAL]);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_error(st, err, "counting jobs");
    return ANVIL_OK;
}

int
store_depths(struct store *st, struct store_depth **out, size_t *n,
    uint64_t *total, struct anvil_error *err)
{
    sqlite3_stmt       *s   = stmt_get(st, STMT_DEPTHS);
    struct store_depth *d   = NULL;
    size_t              cnt = 0;
    int                 rc, code = ANVIL_OK;
    while ((rc = step(st, STMT_DEPTHS)) == SQLITE_ROW) {
        struct store_depth *p = realloc(d, (cnt + 1) * sizeof(*d));
        if (p == NULL) {
            code = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
            break;
        }
        d      = p;
        d[cnt] = (struct store_depth) {
            .queue   = col_str(s, 0),
            .type    = col_str(s, 1),
            .queued  = (uint64_t) sqlite3_column_int64(s, 2),
            .running = (uint64_t) sqlite3_column_int64(s, 3),
        };
        cnt++;
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = db_error(st, err, "reading queue depths");
    sqlite3_reset(s);
    if (code == ANVIL_OK)
        code = read_total(st, total, err);
    if (code != ANVIL_OK) {
        store_depths_free(d, cnt);
        return code;
    }
    *out = d;
    *n   = cnt;
    return ANVIL_OK;
}

void
store_depths_free(struct store_depth *d, size_t n)
{
    for (size_t i = 0; d != NULL && i < n; i++) {
        free(d[i].queue);
        free(d[i].type);
    }
    free(d);
}

// ---- workflows ----

int
store_workflow_insert(struct store *st, const struct store_new_workflow *nw,
    int64_t *id, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_WF_INSERT);
    sqlite3_bind_text(s, 1, nw->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, nw->on_failure);
    sqlite3_bind_int64(s, 3, nw->created_at);
    sqlite3_bind_int64(s, 4, nw->timeout_ms);
    bind_text_or_null(s, 5, nw->idem_key);
    if (nw->request_id != 0)
        sqlite3_bind_int64(s, 6, (sqlite3_int64) nw->request_id);
    sqlite3_bind_int64(s, 7, nw->n_steps);
    int rc = exec_stmt(st, STMT_WF_INSERT, err, "inserting a workflow");
    if (rc == ANVIL_OK)
        *id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int
store_workflow_by_request(
    struct store *st, uint64_t rid, int64_t *id, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_WF_BY_RID);
    sqlite3_bind_int64(s, 1, (sqlite3_int64) rid);
    return find_id(st, STMT_WF_BY_RID, id, err);
}

int
store_workflow_by_key(
    struct store *st, const char *key, int64_t *id, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_WF_BY_KEY);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    return find_id(st, STMT_WF_BY_KEY, id, err);
}

int
store_edge_insert(
    struct store *st, int64_t parent, int64_t child, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_EDGE_INSERT);
    sqlite3_bind_int64(s, 1, parent);
    sqlite3_bind_int64(s, 2, child);
    return exec_stmt(st, STMT_EDGE_INSERT, err, "inserting an edge");
}

static int
read_workflow(sqlite3_stmt *s, struct workflow *w)
{
    memset(w, 0, sizeof(*w));
    w->id          = sqlite3_column_int64(s, 0);
    w->name        = col_str(s, 1);
    w->state       = sqlite3_column_int(s, 2);
    w->on_failure  = sqlite3_column_int(s, 3);
    w->created_at  = sqlite3_column_int64(s, 4);
    w->finished_at = sqlite3_column_int64(s, 5);
    w->timeout_ms  = sqlite3_column_int64(s, 6);
    w->error       = col_str(s, 7);
    w->idem_key    = col_str(s, 8);
    w->n_steps     = (uint32_t) sqlite3_column_int64(s, 9);
    w->n_settled   = (uint32_t) sqlite3_column_int64(s, 10);
    w->n_succeeded = (uint32_t) sqlite3_column_int64(s, 11);
    w->n_failed    = (uint32_t) sqlite3_column_int64(s, 12);
    if (!w->name || !w->error || !w->idem_key) {
        workflow_fini(w);
        return ANVIL_RESOURCE_EXHAUSTED;
    }
    return ANVIL_OK;
}

// Reads a statement's job rows into a new array.
static int
read_jobs(struct store *st, int sid, struct job **jobs, size_t *n,
    struct anvil_error *err)
{
    struct job *out = NULL;
    size_t      cnt = 0, cap = 0;
    int         rc, code     = ANVIL_OK;
    while ((rc = step(st, sid)) == SQLITE_ROW) {
        if (grow(&out, &cap, cnt + 1) || read_job(st->stmt[sid], &out[cnt])) {
            code = av_error_set(
                err, ANVIL_RESOURCE_EXHAUSTED, "out of memory reading jobs");
            break;
        }
        cnt++;
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = db_error(st, err, "reading jobs");
    sqlite3_reset(st->stmt[sid]);
    if (code != ANVIL_OK) {
        job_array_free(out, cnt);
        return code;
    }
    *jobs = out;
    *n    = cnt;
    return ANVIL_OK;
}

// Finds the step with id in steps (sorted by id).
static struct job *
step_by_id(struct workflow *w, int64_t id)
{
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (w->steps[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < w->n && w->steps[lo].id == id ? &w->steps[lo] : NULL;
}

static int
add_after(struct job *j, const char *name)
{
    char **p = realloc(j->after, (j->n_after + 1) * sizeof(*p));
    if (p == NULL)
        return -1;
    j->after      = p;
    p[j->n_after] = strdup(name);
    return p[j->n_after++] ? 0 : -1;
}

// Fills each step's `after` with its parents' names.
static int
read_edges(struct store *st, struct workflow *w, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_WF_EDGES);
    sqlite3_bind_int64(s, 1, w->id);
    int rc, code = ANVIL_OK;
    while ((rc = step(st, STMT_WF_EDGES)) == SQLITE_ROW) {
        struct job *child = step_by_id(w, sqlite3_column_int64(s, 0));
        const char *name  = (const char *) sqlite3_column_text(s, 1);
        if (child != NULL && add_after(child, name ? name : "") != 0) {
            code = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
            break;
        }
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = db_error(st, err, "reading workflow edges");
    sqlite3_reset(s);
    return code;
}

int
store_workflow_get(struct store *st, int64_t id, bool with_steps,
    struct workflow *out, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_WF_GET);
    sqlite3_bind_int64(s, 1, id);
    int rc   = step(st, STMT_WF_GET);
    int code = ANVIL_OK;
    if (rc == SQLITE_ROW)
        code = read_workflow(s, out);
    else if (rc == SQLITE_DONE)
        code = ANVIL_NOT_FOUND;
    else
        code = db_error(st, err, "reading a workflow");
    sqlite3_reset(s);
    if (code != ANVIL_OK || !with_steps)
        return code;
    sqlite3_bind_int64(stmt_get(st, STMT_WF_STEPS), 1, id);
    code = read_jobs(st, STMT_WF_STEPS, &out->steps, &out->n, err);
    if (code == ANVIL_OK)
        code = read_edges(st, out, err);
    if (code != ANVIL_OK)
        workflow_fini(out);
    return code;
}

int
store_workflow_list(struct store *st, const struct store_list_filter *f,
    struct workflow **out, size_t *n, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_WF_LIST);
    sqlite3_bind_int(s, 1, f->state);
    bind_text_or_null(s, 2, f->type);
    sqlite3_bind_int64(s, 3, f->before_id > 0 ? f->before_id : INT64_MAX);
    sqlite3_bind_int64(s, 4, f->limit);
    struct workflow *w   = NULL;
    size_t           cnt = 0;
    int              rc, code = ANVIL_OK;
    while ((rc = step(st, STMT_WF_LIST)) == SQLITE_ROW) {
        struct workflow *p = realloc(w, (cnt + 1) * sizeof(*w));
        if (p == NULL || read_workflow(s, &p[cnt]) != ANVIL_OK) {
            if (p != NULL)
                w = p;
            code = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
            break;
        }
        w = p;
        cnt++;
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = db_error(st, err, "listing workflows");
    sqlite3_reset(s);
    if (code != ANVIL_OK) {
        workflow_array_free(w, cnt);
        return code;
    }
    *out = w;
    *n   = cnt;
    return ANVIL_OK;
}

int
store_workflow_settle(struct store *st, int64_t id, bool succeeded, bool failed,
    struct store_wf_counts *c, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_WF_SETTLE);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int(s, 2, succeeded);
    sqlite3_bind_int(s, 3, failed);
    int rc = step(st, STMT_WF_SETTLE);
    if (rc == SQLITE_ROW) {
        c->state       = sqlite3_column_int(s, 0);
        c->on_failure  = sqlite3_column_int(s, 1);
        c->n_steps     = (uint32_t) sqlite3_column_int64(s, 2);
        c->n_settled   = (uint32_t) sqlite3_column_int64(s, 3);
        c->n_succeeded = (uint32_t) sqlite3_column_int64(s, 4);
        c->n_failed    = (uint32_t) sqlite3_column_int64(s, 5);
        rc             = step(st, STMT_WF_SETTLE);
        if (rc == SQLITE_DONE)
            rc = SQLITE_ROW;
    }
    sqlite3_reset(s);
    if (rc == SQLITE_ROW)
        return ANVIL_OK;
    if (rc == SQLITE_DONE)
        return ANVIL_NOT_FOUND;
    return db_error(st, err, "counting a workflow's steps");
}

int
store_workflow_finish(struct store *st, int64_t id, int state,
    const char *error, int64_t now, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_WF_FINISH);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int(s, 2, state);
    bind_text_or_null(s, 3, error);
    sqlite3_bind_int64(s, 4, now);
    int rc = exec_stmt(st, STMT_WF_FINISH, err, "finishing a workflow");
    if (rc == ANVIL_OK && sqlite3_changes(st->db) == 0)
        return ANVIL_NOT_FOUND;
    return rc;
}

// Collects column 0 of a statement's rows as ids.
static int
read_ids(struct store *st, int sid, int64_t **ids, size_t *n,
    struct anvil_error *err)
{
    int64_t *out = NULL;
    size_t   cnt = 0, cap = 0;
    int      rc, code     = ANVIL_OK;
    while ((rc = step(st, sid)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap        = cap ? cap * 2 : 16;
            int64_t *p = realloc(out, cap * sizeof(*p));
            if (p == NULL) {
                code = av_error_set(
                    err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
                break;
            }
            out = p;
        }
        out[cnt++] = sqlite3_column_int64(st->stmt[sid], 0);
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = db_error(st, err, "reading ids");
    sqlite3_reset(st->stmt[sid]);
    if (code != ANVIL_OK) {
        free(out);
        return code;
    }
    *ids = out;
    *n   = cnt;
    return ANVIL_OK;
}

int
store_workflow_unfinished(struct store *st, int64_t id, int64_t **ids,
    size_t *n, struct anvil_error *err)
{
    sqlite3_bind_int64(stmt_get(st, STMT_WF_UNFINISHED), 1, id);
    return read_ids(st, STMT_WF_UNFINISHED, ids, n, err);
}

int
store_job_children(struct store *st, int64_t parent, int64_t **ids, size_t *n,
    struct anvil_error *err)
{
    sqlite3_bind_int64(stmt_get(st, STMT_CHILDREN), 1, parent);
    return read_ids(st, STMT_CHILDREN, ids, n, err);
}

int
store_workflow_scan_active(struct store *st,
    int (*fn)(void *arg, int64_t id, int64_t deadline), void *arg,
    struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_WF_SCAN_ACTIVE);
    int           rc, code = ANVIL_OK;
    while ((rc = step(st, STMT_WF_SCAN_ACTIVE)) == SQLITE_ROW) {
        code = fn(arg, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1));
        if (code != ANVIL_OK)
            break;
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = db_error(st, err, "scanning workflows");
    sqlite3_reset(s);
    return code;
}

int
store_job_parent_results(struct store *st, int64_t child,
    struct parent_result **out, size_t *n, struct anvil_error *err)
{
    sqlite3_stmt         *s   = stmt_get(st, STMT_PARENT_RESULTS);
    struct parent_result *r   = NULL;
    size_t                cnt = 0;
    int                   rc, code = ANVIL_OK;
    sqlite3_bind_int64(s, 1, child);
    while ((rc = step(st, STMT_PARENT_RESULTS)) == SQLITE_ROW) {
        struct parent_result *p = realloc(r, (cnt + 1) * sizeof(*r));
        if (p != NULL) {
            r             = p;
            r[cnt].step   = col_str(s, 0);
            r[cnt].result = col_blob(s, 1, &r[cnt].len);
        }
        if (p == NULL || !r[cnt].step || !r[cnt].result) {
            if (p != NULL)
                cnt++;
            code = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
            break;
        }
        cnt++;
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = db_error(st, err, "reading parents' results");
    sqlite3_reset(s);
    if (code != ANVIL_OK) {
        for (size_t i = 0; i < cnt; i++) {
            free(r[i].step);
            free(r[i].result);
        }
        free(r);
        return code;
    }
    *out = r;
    *n   = cnt;
    return ANVIL_OK;
}

int
store_job_parent_done(
    struct store *st, int64_t child, uint32_t *pending, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_PARENT_DONE);
    sqlite3_bind_int64(s, 1, child);
    int rc = step(st, STMT_PARENT_DONE);
    if (rc == SQLITE_ROW) {
        *pending = (uint32_t) sqlite3_column_int64(s, 0);
        rc       = step(st, STMT_PARENT_DONE) == SQLITE_DONE ? SQLITE_ROW
                                                             : SQLITE_ERROR;
    }
    sqlite3_reset(s);
    if (rc == SQLITE_ROW)
        return ANVIL_OK;
    if (rc == SQLITE_DONE)
        return ANVIL_NOT_FOUND;
    return db_error(st, err, "unblocking a step");
}

// ---- retention ----

int
store_sweep_jobs(struct store *st, int64_t before, int limit, int *deleted,
    struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_SWEEP_JOBS);
    sqlite3_bind_int64(s, 1, before);
    sqlite3_bind_int(s, 2, limit);
    int rc   = exec_stmt(st, STMT_SWEEP_JOBS, err, "deleting old jobs");
    *deleted = rc == ANVIL_OK ? sqlite3_changes(st->db) : 0;
    return rc;
}

static int
delete_flow(struct store *st, int64_t id, struct anvil_error *err)
{
    const int sids[]
        = { STMT_SWEEP_FLOW_EDGES, STMT_SWEEP_FLOW_STEPS, STMT_SWEEP_FLOW };
    for (size_t i = 0; i < 3; i++) {
        sqlite3_bind_int64(stmt_get(st, sids[i]), 1, id);
        int rc = exec_stmt(st, sids[i], err, "deleting an old workflow");
        if (rc != ANVIL_OK)
            return rc;
    }
    return ANVIL_OK;
}

int
store_sweep_workflows(struct store *st, int64_t before, int limit, int *deleted,
    struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_SWEEP_FLOWS);
    sqlite3_bind_int64(s, 1, before);
    sqlite3_bind_int(s, 2, limit);
    int64_t *ids = NULL;
    size_t   n   = 0;
    int      rc  = read_ids(st, STMT_SWEEP_FLOWS, &ids, &n, err);
    for (size_t i = 0; rc == ANVIL_OK && i < n; i++)
        rc = delete_flow(st, ids[i], err);
    free(ids);
    *deleted = rc == ANVIL_OK ? (int) n : 0;
    return rc;
}

int
store_running_by_worker(struct store *st,
    void (*fn)(void *arg, const char *worker, uint32_t running), void *arg,
    struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_RUNNING_BY_WORKER);
    int           rc;
    while ((rc = step(st, STMT_RUNNING_BY_WORKER)) == SQLITE_ROW) {
        const char *w = (const char *) sqlite3_column_text(s, 0);
        fn(arg, w ? w : "", (uint32_t) sqlite3_column_int64(s, 1));
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return db_error(st, err, "counting running jobs");
    return ANVIL_OK;
}

// ---- tokens ----

int
store_token_insert(struct store *st, const char *name, int role,
    const uint8_t *hash, size_t hash_len, int64_t created_at,
    int64_t expires_at, int64_t *id, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_TOKEN_INSERT);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, role);
    sqlite3_bind_blob(s, 3, hash, (int) hash_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, created_at);
    sqlite3_bind_int64(s, 5, expires_at);
    int rc = exec_stmt(st, STMT_TOKEN_INSERT, err, "inserting a token");
    if (rc == ANVIL_OK)
        *id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int
store_token_list(struct store *st, struct store_token **out, size_t *n,
    struct anvil_error *err)
{
    sqlite3_stmt       *s   = stmt_get(st, STMT_TOKEN_LIST);
    struct store_token *t   = NULL;
    size_t              cnt = 0;
    int                 rc, code = ANVIL_OK;
    while ((rc = step(st, STMT_TOKEN_LIST)) == SQLITE_ROW) {
        struct store_token *p = realloc(t, (cnt + 1) * sizeof(*t));
        if (p == NULL) {
            code = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
            break;
        }
        t                     = p;
        struct store_token *r = &t[cnt];
        memset(r, 0, sizeof(*r));
        r->id   = sqlite3_column_int64(s, 0);
        r->name = col_str(s, 1);
        r->role = sqlite3_column_int(s, 2);
        int hl  = sqlite3_column_bytes(s, 3);
        if (hl == (int) sizeof(r->hash))
            memcpy(r->hash, sqlite3_column_blob(s, 3), sizeof(r->hash));
        r->created_at = sqlite3_column_int64(s, 4);
        r->expires_at = sqlite3_column_int64(s, 5);
        r->revoked_at = sqlite3_column_int64(s, 6);
        cnt++;
        if (r->name == NULL) {
            code = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
            break;
        }
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = db_error(st, err, "listing tokens");
    sqlite3_reset(s);
    if (code != ANVIL_OK) {
        store_tokens_free(t, cnt);
        return code;
    }
    *out = t;
    *n   = cnt;
    return ANVIL_OK;
}

void
store_tokens_free(struct store_token *t, size_t n)
{
    for (size_t i = 0; t != NULL && i < n; i++)
        free(t[i].name);
    free(t);
}

int
store_token_revoke(
    struct store *st, int64_t id, int64_t now, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_TOKEN_REVOKE);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, now);
    int rc = exec_stmt(st, STMT_TOKEN_REVOKE, err, "revoking a token");
    if (rc == ANVIL_OK && sqlite3_changes(st->db) == 0)
        return ANVIL_NOT_FOUND;
    return rc;
}
