// store.c - SQLite persistence. All SQL of anvild lives here.
//
// Schema changes: bump STORE_SCHEMA_VERSION, append one migration step to
// migrations[] that takes version N-1 to N (never edit a shipped step),
// update the SCHEMA_* DDL a new database is created with so that it matches
// what the migrations produce (test_store compares the two), add a unit test
// that opens a database of the previous version, and describe the change in
// docs/architecture.md.
//
// The hot path (insert, lease, finish, a workflow step's unblocking) is a
// few single-row statements by rowid, all prepared once in store_open. Two
// things SQLite 3.40 makes expensive are kept off it, and
// test_store_hot_path_statements_build_no_temporary_tables checks both with
// EXPLAIN: `state IN (a, b, c)` in a partial index's WHERE (an ephemeral
// table built each time a row enters or leaves the index; ranges are plain
// comparisons) and `UPDATE ... RETURNING` (its rows go through an ephemeral
// table; we UPDATE, then read by rowid or compute the values in C).
#include "store.h"

#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int (*store_hook_step)(int stmt);
int (*store_hook_fdatasync)(int fd);

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
    STMT_WF_INSERT,
    STMT_WF_BY_RID,
    STMT_WF_BY_KEY,
    STMT_WF_GET,
    STMT_WF_STEPS,
    STMT_WF_EDGES,
    STMT_WF_LIST,
    STMT_WF_COUNTS,
    STMT_WF_SETTLE,
    STMT_WF_FINISH,
    STMT_WF_UNFINISHED,
    STMT_WF_SCAN_ACTIVE,
    STMT_EDGE_INSERT,
    STMT_CHILDREN,
    STMT_PARENT_RESULTS,
    STMT_PARENT_PENDING,
    STMT_PARENT_DONE,
    STMT_SWEEP_JOBS,
    STMT_SWEEP_FLOWS,
    STMT_SWEEP_FLOW_EDGES,
    STMT_SWEEP_FLOW_STEPS,
    STMT_SWEEP_FLOW,
    STMT_META_HWM,
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

// The partial indexes' predicates (schema version 5), as ranges over the
// .proto's numbers: jobs 1 PENDING, 2 SCHEDULED, 3 QUEUED, 4 RUNNING,
// 5 SUCCEEDED, 6 FAILED, 7 CANCELED; workflows 1 RUNNING, 2-4 final.
// SQLite uses a partial index only for a query whose WHERE contains the
// index's terms as written, so every query meant to use one includes the
// same macro, then narrows it.
#define JOBS_ACTIVE "state BETWEEN 2 AND 4"
#define JOBS_FINAL "state >= 5 AND workflow_id IS NULL"
#define FLOWS_FINAL "state >= 2"

// The high-water marks of ids in table meta (see next_ids()).
#define HWM_JOBS "job_id_hwm"
#define HWM_FLOWS "workflow_id_hwm"

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
                         "backoff_multiplier, id) "
                         "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                         "?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
    [STMT_JOB_BY_RID]  = "SELECT id FROM jobs WHERE request_id = ?1",
    [STMT_JOB_BY_KEY]  = "SELECT id FROM jobs WHERE idem_key = ?1",
    [STMT_JOB_GET]     = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
    [STMT_JOB_LEASE]   = "UPDATE jobs SET state = 4, attempt = ?2, "
                         "started_at = ?3, lease_deadline = ?4, "
                         "worker_id = ?5, lease_token = ?6, "
                         "finished_at = NULL WHERE id = ?1",
    [STMT_JOB_FINISH]  = "UPDATE jobs SET state = ?2, result = ?3, error = ?4, "
                         "finished_at = ?5, lease_deadline = NULL "
                         "WHERE id = ?1",
    [STMT_JOB_REQUEUE] = "UPDATE jobs SET state = ?2, run_at = ?3, "
                         "error = ?4, lease_deadline = NULL WHERE id = ?1",
    [STMT_JOB_MAKE_READY] = "UPDATE jobs SET state = 3 "
                            "WHERE id = ?1 AND state BETWEEN 1 AND 2",
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
                         "FROM jobs WHERE " JOBS_ACTIVE
                         " ORDER BY state, queue, type, id", // index order
    // Covered by jobs_active: counted in the index, no table row read.
    [STMT_DEPTHS]    = "SELECT state, queue, type, COUNT(*) FROM jobs "
                       "WHERE " JOBS_ACTIVE " AND state >= 3 "
                       "GROUP BY state, queue, type",
    [STMT_WF_INSERT] = "INSERT INTO workflows(name, state, on_failure, "
                       "created_at, timeout_ms, idem_key, request_id, "
                       "n_steps, id) VALUES(?1, 1, ?2, ?3, ?4, ?5, ?6, ?7, "
                       "?8)",
    [STMT_WF_BY_RID] = "SELECT id FROM workflows WHERE request_id = ?1",
    [STMT_WF_BY_KEY] = "SELECT id FROM workflows WHERE idem_key = ?1",
    [STMT_WF_GET]    = "SELECT " WF_COLS " FROM workflows WHERE id = ?1",
    [STMT_WF_STEPS]  = "SELECT " JOB_COLS " FROM jobs WHERE workflow_id = ?1 "
                       "ORDER BY id",
    [STMT_WF_EDGES]  = "SELECT e.child, p.step FROM jobs p "
                       "JOIN edges e ON e.parent = p.id "
                       "WHERE p.workflow_id = ?1 ORDER BY e.child, p.id",
    [STMT_WF_LIST]   = "SELECT " WF_COLS " FROM workflows "
                       "WHERE (?1 = 0 OR state = ?1) "
                       "AND (?2 IS NULL OR name = ?2) "
                       "AND id < ?3 ORDER BY id DESC LIMIT ?4",
    [STMT_WF_COUNTS] = "SELECT state, on_failure, n_steps, n_settled, "
                       "n_succeeded, n_failed FROM workflows WHERE id = ?1",
    [STMT_WF_SETTLE] = "UPDATE workflows SET n_settled = ?2, "
                       "n_succeeded = ?3, n_failed = ?4 WHERE id = ?1",
    [STMT_WF_FINISH] = "UPDATE workflows SET state = ?2, error = ?3, "
                       "finished_at = ?4 WHERE id = ?1 AND state = 1",
    [STMT_WF_UNFINISHED]  = "SELECT id FROM jobs WHERE workflow_id = ?1 "
                            "AND state BETWEEN 1 AND 4 ORDER BY id",
    [STMT_WF_SCAN_ACTIVE] = "SELECT id, created_at + timeout_ms FROM "
                            "workflows WHERE state = 1 AND timeout_ms > 0",
    [STMT_EDGE_INSERT]    = "INSERT INTO edges(parent, child) VALUES(?1, ?2)",
    [STMT_CHILDREN]       = "SELECT child FROM edges WHERE parent = ?1",
    // Parents in id order: edges_child(child, parent) is already in it.
    [STMT_PARENT_RESULTS] = "SELECT p.step, p.result FROM edges e "
                            "JOIN jobs p ON p.id = e.parent "
                            "WHERE e.child = ?1 ORDER BY e.parent",
    [STMT_PARENT_PENDING] = "SELECT state, pending_parents FROM jobs "
                            "WHERE id = ?1",
    [STMT_PARENT_DONE]    = "UPDATE jobs SET pending_parents = ?2 "
                            "WHERE id = ?1",
    [STMT_SWEEP_JOBS]     = "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs "
                            "WHERE " JOBS_FINAL " AND finished_at < ?1 "
                            "LIMIT ?2)",
    [STMT_SWEEP_FLOWS]    = "SELECT id FROM workflows WHERE " FLOWS_FINAL
                         " AND finished_at < ?1 AND n_settled >= n_steps "
                         "LIMIT ?2",
    [STMT_SWEEP_FLOW_EDGES]  = "DELETE FROM edges WHERE child IN "
                               "(SELECT id FROM jobs WHERE workflow_id = ?1)",
    [STMT_SWEEP_FLOW_STEPS]  = "DELETE FROM jobs WHERE workflow_id = ?1",
    [STMT_SWEEP_FLOW]        = "DELETE FROM workflows WHERE id = ?1",
    [STMT_META_HWM]          = "UPDATE meta SET value = ?2 "
                               "WHERE key = ?1 AND value < ?2",
    [STMT_RUNNING_BY_WORKER] = "SELECT worker_id, COUNT(*) FROM jobs "
                               "WHERE " JOBS_ACTIVE " AND state = 4 "
                               "GROUP BY worker_id",
    [STMT_TOKEN_INSERT] = "INSERT INTO tokens(name, role, hash, created_at, "
                          "expires_at) VALUES(?1, ?2, ?3, ?4, ?5)",
    [STMT_TOKEN_LIST]   = "SELECT id, name, role, hash, created_at, "
                          "expires_at, revoked_at FROM tokens ORDER BY id",
    [STMT_TOKEN_REVOKE] = "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 "
                          "AND revoked_at = 0",
};

// Schema version 5: jobs and workflows without AUTOINCREMENT (ids come
// from next_ids()), the partial indexes with range predicates, and table
// meta. Shared by migration step 4 -> 5 and SCHEMA_NEW, so that a migrated
// database and a new one are the same.
#define JOBS_TABLE_V5                                                         \
    "CREATE TABLE jobs ("                                                     \
    " id INTEGER PRIMARY KEY,"                                                \
    " type TEXT NOT NULL,"                                                    \
    " queue TEXT NOT NULL,"                                                   \
    " payload BLOB NOT NULL,"                                                 \
    " priority INTEGER NOT NULL DEFAULT 0,"                                   \
    " state INTEGER NOT NULL,"                                                \
    " attempt INTEGER NOT NULL DEFAULT 0,"                                    \
    " max_attempts INTEGER NOT NULL,"                                         \
    " result BLOB,"                                                           \
    " error TEXT,"                                                            \
    " created_at INTEGER NOT NULL,"                                           \
    " started_at INTEGER,"                                                    \
    " finished_at INTEGER,"                                                   \
    " run_at INTEGER NOT NULL DEFAULT 0,"                                     \
    " timeout_ms INTEGER NOT NULL DEFAULT 0,"                                 \
    " lease_ms INTEGER NOT NULL DEFAULT 0,"                                   \
    " lease_deadline INTEGER,"                                                \
    " worker_id TEXT,"                                                        \
    " idem_key TEXT,"                                                         \
    " request_id INTEGER,"                                                    \
    " cancel_requested INTEGER NOT NULL DEFAULT 0,"                           \
    " workflow_id INTEGER,"                                                   \
    " step TEXT,"                                                             \
    " pending_parents INTEGER NOT NULL DEFAULT 0,"                            \
    " backoff_initial_ms INTEGER NOT NULL DEFAULT 1000,"                      \
    " backoff_max_ms INTEGER NOT NULL DEFAULT 60000,"                         \
    " backoff_multiplier REAL NOT NULL DEFAULT 2.0,"                          \
    " lease_token INTEGER NOT NULL DEFAULT 0);"                               \
    "CREATE UNIQUE INDEX jobs_idem_key ON jobs(idem_key)"                     \
    " WHERE idem_key IS NOT NULL;"                                            \
    "CREATE UNIQUE INDEX jobs_request_id ON jobs(request_id)"                 \
    " WHERE request_id IS NOT NULL;"                                          \
    "CREATE INDEX jobs_active ON jobs(state, queue, type) WHERE " JOBS_ACTIVE \
    ";"                                                                       \
    "CREATE INDEX jobs_workflow ON jobs(workflow_id, id)"                     \
    " WHERE workflow_id IS NOT NULL;"                                         \
    "CREATE INDEX jobs_finished ON jobs(finished_at)"                         \
    " WHERE " JOBS_FINAL ";"

#define FLOWS_TABLE_V5                                                  \
    "CREATE TABLE workflows ("                                          \
    " id INTEGER PRIMARY KEY,"                                          \
    " name TEXT NOT NULL,"                                              \
    " state INTEGER NOT NULL,"                                          \
    " on_failure INTEGER NOT NULL,"                                     \
    " created_at INTEGER NOT NULL,"                                     \
    " finished_at INTEGER,"                                             \
    " timeout_ms INTEGER NOT NULL DEFAULT 0,"                           \
    " error TEXT,"                                                      \
    " idem_key TEXT,"                                                   \
    " request_id INTEGER,"                                              \
    " n_steps INTEGER NOT NULL,"                                        \
    " n_settled INTEGER NOT NULL DEFAULT 0,"                            \
    " n_succeeded INTEGER NOT NULL DEFAULT 0,"                          \
    " n_failed INTEGER NOT NULL DEFAULT 0);"                            \
    "CREATE UNIQUE INDEX workflows_idem_key ON workflows(idem_key)"     \
    " WHERE idem_key IS NOT NULL;"                                      \
    "CREATE UNIQUE INDEX workflows_request_id ON workflows(request_id)" \
    " WHERE request_id IS NOT NULL;"                                    \
    "CREATE INDEX workflows_state ON workflows(state, id);"             \
    "CREATE INDEX workflows_finished ON workflows(finished_at)"         \
    " WHERE " FLOWS_FINAL ";"

// Unchanged since version 4, which added it.
#define TOKENS_TABLE                          \
    "CREATE TABLE tokens ("                   \
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"  \
    " name TEXT NOT NULL,"                    \
    " role INTEGER NOT NULL,"                 \
    " hash BLOB NOT NULL UNIQUE,"             \
    " created_at INTEGER NOT NULL,"           \
    " expires_at INTEGER NOT NULL DEFAULT 0," \
    " revoked_at INTEGER NOT NULL DEFAULT 0);"

#define META_TABLE_V5        \
    "CREATE TABLE meta ("    \
    " key TEXT PRIMARY KEY," \
    " value INTEGER NOT NULL) WITHOUT ROWID;"

#define JOB_COLS_V4                                                      \
    "id, type, queue, payload, priority, state, attempt, max_attempts, " \
    "result, error, created_at, started_at, finished_at, run_at, "       \
    "timeout_ms, lease_ms, lease_deadline, worker_id, idem_key, "        \
    "request_id, cancel_requested, workflow_id, step, pending_parents, " \
    "backoff_initial_ms, backoff_max_ms, backoff_multiplier, lease_token"

#define WF_COLS_V4                                                       \
    "id, name, state, on_failure, created_at, finished_at, timeout_ms, " \
    "error, idem_key, request_id, n_steps, n_settled, n_succeeded, "     \
    "n_failed"

// The highest id a table ever had: AUTOINCREMENT's counter, or a larger
// id still present.
#define HWM_V4(table)                                                    \
    "max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = '" table \
    "'), 0), coalesce((SELECT max(id) FROM " table "), 0))"

// 4 -> 5: keep each table's highest id ever in meta, then rebuild jobs
// and workflows without AUTOINCREMENT and with the range predicates.
// clang-format off
#define MIGRATE_4_TO_5                                                     \
    META_TABLE_V5                                                          \
    "INSERT INTO meta(key, value)"                                         \
    " VALUES('" HWM_JOBS "', " HWM_V4("jobs") "),"                         \
    " ('" HWM_FLOWS "', " HWM_V4("workflows") ");"                         \
    "ALTER TABLE jobs RENAME TO jobs_v4;"                                  \
    "ALTER TABLE workflows RENAME TO workflows_v4;"                        \
    "DROP INDEX jobs_idem_key; DROP INDEX jobs_request_id;"                \
    "DROP INDEX jobs_active; DROP INDEX jobs_workflow;"                    \
    "DROP INDEX jobs_finished; DROP INDEX workflows_idem_key;"             \
    "DROP INDEX workflows_request_id; DROP INDEX workflows_state;"         \
    "DROP INDEX workflows_finished;"                                       \
    JOBS_TABLE_V5                                                          \
    FLOWS_TABLE_V5                                                         \
    "INSERT INTO jobs(" JOB_COLS_V4 ") SELECT " JOB_COLS_V4                \
    " FROM jobs_v4;"                                                       \
    "INSERT INTO workflows(" WF_COLS_V4 ") SELECT " WF_COLS_V4             \
    " FROM workflows_v4;"                                                  \
    "DROP TABLE jobs_v4; DROP TABLE workflows_v4;"
// clang-format on

// A new database: version 5 in one step.
static const char SCHEMA_NEW[] = JOBS_TABLE_V5 FLOWS_TABLE_V5
    "CREATE TABLE edges ("
    " parent INTEGER NOT NULL,"
    " child INTEGER NOT NULL,"
    " PRIMARY KEY (parent, child)) WITHOUT ROWID;"
    "CREATE INDEX edges_child ON edges(child, parent);" TOKENS_TABLE
        META_TABLE_V5 "INSERT INTO meta(key, value) VALUES('" HWM_JOBS
    "', 0), ('" HWM_FLOWS "', 0);";

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

    TOKENS_TABLE
    "ALTER TABLE jobs ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;",

    MIGRATE_4_TO_5,
};

struct store {
    sqlite3      *db;
    sqlite3_stmt *stmt[STMT_COUNT];
    int           synchronous; // as opened: 2 FULL, 1 NORMAL, 0 OFF
    int           injected;    // the SQLite code the test seam injected
    // Engine thread only: the next ids to hand out (see next_ids()), and
    // sqlite3_total_changes64() when writes were last counted.
    int64_t       next_job_id;
    int64_t       next_wf_id;
    sqlite3_int64 changes_seen;
    // Deferred sync (store_set_deferred_sync). write_seq counts commits that
    // wrote (bumped by the engine thread after COMMIT returns); synced_seq
    // is the write_seq the last successful fdatasync covered. sync_lock
    // guards the wal_* fields and the sticky failure, and serialises
    // store_sync callers; it is never held across an SQLite call.
    atomic_bool           deferred;
    atomic_uint_least64_t write_seq;
    atomic_uint_least64_t synced_seq;
    pthread_mutex_t       sync_lock;
    char                 *wal_path;
    int                   wal_fd;
    dev_t                 wal_dev;
    ino_t                 wal_ino;
    bool                  sync_failed;
    char                  sync_msg[200];
};

// The SQLite result code of the last failure: an injected one (the test
// seam) or the connection's own.
static int
last_code(struct store *st)
{
    int rc       = st->injected != 0 ? st->injected : sqlite3_errcode(st->db);
    st->injected = 0;
    return rc & 0xff;
}

// A failed SQLite call as a code and a sentence. A full disk (or a database
// grown to its size limit) is RESOURCE_EXHAUSTED: the operator can act on
// it; anything else is INTERNAL.
static int
db_error(struct store *st, struct anvil_error *err, const char *what)
{
    int         rc  = last_code(st);
    const char *msg = rc == SQLITE_FULL ? "disk full" : sqlite3_errstr(rc);
    if (rc != SQLITE_FULL && sqlite3_errcode(st->db) == rc)
        msg = sqlite3_errmsg(st->db);
    AV_ERR("store.error", "op=%s err=\"%s\"", what, msg);
    if (rc == SQLITE_FULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED,
            "database error while %s: disk full; free space on the "
            "database's file system",
            what);
    return av_error_set(
        err, ANVIL_INTERNAL, "database error while %s: %s", what, msg);
}

// Steps a statement, honouring the failure seam.
static int
step(struct store *st, int id)
{
    int h = store_hook_step != NULL ? store_hook_step(id) : 0;
    if (h != 0) {
        st->injected
            = h == ANVIL_RESOURCE_EXHAUSTED ? SQLITE_FULL : SQLITE_IOERR;
        return st->injected;
    }
    st->injected = 0;
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

// Outside a transaction, counts one more commit for store_sync if rows
// changed since the last count: after a COMMIT, or a write in autocommit
// mode. Every write of this file goes through exec_stmt, which calls it.
static void
note_writes(struct store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        return;
    sqlite3_int64 n = sqlite3_total_changes64(st->db);
    if (n != st->changes_seen) {
        st->changes_seen = n;
        atomic_fetch_add(&st->write_seq, 1);
    }
}

// Runs a statement that returns no rows.
static int
exec_stmt(struct store *st, int id, struct anvil_error *err, const char *what)
{
    int rc = step(st, id);
    sqlite3_reset(st->stmt[id]);
    note_writes(st);
    if (rc != SQLITE_DONE)
        return db_error(st, err, what);
    return ANVIL_OK;
}

// Runs sql and sets the schema version to `to`, in one transaction.
static int
migrate_step(struct store *st, const char *sql, int to, const char *event,
    struct anvil_error *err)
{
    char version[64];
    snprintf(version, sizeof(version), "PRAGMA user_version = %d", to);
    if (sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL)
        || sqlite3_exec(st->db, sql, NULL, NULL, NULL)
        || sqlite3_exec(st->db, version, NULL, NULL, NULL)
        || sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL)) {
        int code = db_error(st, err, "migrating the schema");
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return code;
    }
    AV_INFO(event, "version=%d", to);
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
    if (version == 0)
        return migrate_step(
            st, SCHEMA_NEW, STORE_SCHEMA_VERSION, "store.created", err);
    int rc = ANVIL_OK;
    for (; rc == ANVIL_OK && version < STORE_SCHEMA_VERSION; version++)
        rc = migrate_step(
            st, migrations[version], version + 1, "store.migrated", err);
    return rc;
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
    st->synchronous = synchronous;
    return ANVIL_OK;
}

// Ids. Job and workflow ids are shown to users, so one is never handed out
// twice, not even after retention deleted the newest rows and anvild
// restarted. A plain INTEGER PRIMARY KEY would reuse max(id) + 1, and
// AUTOINCREMENT costs a read and a write of sqlite_sequence per INSERT.
// Instead the engine thread counts ids in memory and inserts them
// explicitly; a rolled-back insert leaves a gap, never a reuse. The only
// statements that delete jobs or workflows are the sweeps, and each first
// raises the table's high-water mark in meta to the highest id handed out
// (in the caller's transaction, before the DELETE). So every id ever
// committed is at most max(max(id), mark), where the counters restart.
static int
next_ids(struct store *st, struct anvil_error *err)
{
    static const char sql[]
        = "SELECT max(coalesce((SELECT max(id) FROM jobs), 0), "
          "coalesce((SELECT value FROM meta WHERE key = '" HWM_JOBS "'), 0)), "
          "max(coalesce((SELECT max(id) FROM workflows), 0), "
          "coalesce((SELECT value FROM meta WHERE key = '" HWM_FLOWS "'), 0))";
    sqlite3_stmt *s  = NULL;
    int           rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        st->next_job_id = sqlite3_column_int64(s, 0) + 1;
        st->next_wf_id  = sqlite3_column_int64(s, 1) + 1;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW)
        return db_error(st, err, "reading the highest ids");
    return ANVIL_OK;
}

// Raises a high-water mark to the highest id handed out so far; writes
// nothing when it is already there (an idle server's sweeps stay
// read-only).
static int
raise_hwm(
    struct store *st, const char *key, int64_t next, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_META_HWM);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, next - 1);
    return exec_stmt(st, STMT_META_HWM, err, "recording the highest id");
}

int
store_open(const char *path, int synchronous, struct store **out,
    struct anvil_error *err)
{
    struct store *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    st->wal_fd = -1;
    pthread_mutex_init(&st->sync_lock, NULL);
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
    if (rc == ANVIL_OK)
        rc = next_ids(st, err);
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
    st->changes_seen = sqlite3_total_changes64(st->db);
    *out             = st;
    return ANVIL_OK;
}

void
store_close(struct store *st)
{
    if (st == NULL)
        return;
    if (st->wal_fd >= 0)
        close(st->wal_fd);
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    if (st->db != NULL && sqlite3_close(st->db) != SQLITE_OK)
        AV_ERR("store.close", "err=\"%s\"", sqlite3_errmsg(st->db));
    pthread_mutex_destroy(&st->sync_lock);
    free(st->wal_path);
    free(st);
}

const char *
store_stmt_sql(int i)
{
    return i >= 0 && i < STMT_COUNT ? stmt_sql[i] : NULL;
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

int
store_rollback(struct store *st, struct anvil_error *err)
{
    if (sqlite3_get_autocommit(st->db))
        return ANVIL_OK;
    return exec_stmt(st, STMT_ROLLBACK, err, "rolling back");
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

int
store_rollback_savepoint(struct store *st, struct anvil_error *err)
{
    int rc = exec_stmt(st, STMT_ROLLBACK_TO, err, "rolling back a savepoint");
    if (rc != ANVIL_OK)
        return rc;
    return exec_stmt(st, STMT_RELEASE, err, "releasing a savepoint");
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
    sqlite3_bind_int64(s, 19, st->next_job_id);
    int rc = exec_stmt(st, STMT_JOB_INSERT, err, "inserting a job");
    if (rc == ANVIL_OK)
        *id = st->next_job_id++;
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

// Whether key is "queue\x1ftype" of j.
static bool
key_matches(const struct job *j, const char *key)
{
    size_t ql = strlen(j->queue);
    return strncmp(key, j->queue, ql) == 0 && key[ql] == '\x1f'
        && strcmp(key + ql + 1, j->type) == 0;
}

// Reads the job, checks it in C, then updates it by rowid: no
// UPDATE ... RETURNING (see the top of this file).
int
store_job_lease_key(struct store *st, int64_t id, const char *key,
    const char *worker, int64_t token_id, int64_t now, int64_t default_lease,
    struct job *out, struct anvil_error *err)
{
    sqlite3_bind_int64(stmt_get(st, STMT_JOB_GET), 1, id);
    int rc = one_job(st, STMT_JOB_GET, out, err, "leasing a job");
    if (rc != ANVIL_OK)
        return rc;
    if (out->state != ANVIL_JOB_QUEUED
        || (key != NULL && !key_matches(out, key))) {
        job_fini(out);
        return ANVIL_NOT_FOUND;
    }
    int64_t deadline
        = now + (out->lease_ms > 0 ? out->lease_ms : default_lease);
    char *w = strdup(worker != NULL ? worker : "");
    if (w == NULL) {
        job_fini(out);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    sqlite3_stmt *s = stmt_get(st, STMT_JOB_LEASE);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, (sqlite3_int64) out->attempt + 1);
    sqlite3_bind_int64(s, 3, now);
    sqlite3_bind_int64(s, 4, deadline);
    sqlite3_bind_text(s, 5, worker, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, token_id);
    rc = exec_stmt(st, STMT_JOB_LEASE, err, "leasing a job");
    if (rc != ANVIL_OK) {
        free(w);
        job_fini(out);
        return rc;
    }
    free(out->worker_id);
    out->worker_id      = w;
    out->state          = ANVIL_JOB_RUNNING;
    out->attempt        = out->attempt + 1;
    out->started_at     = now;
    out->lease_deadline = deadline;
    out->finished_at    = 0;
    return ANVIL_OK;
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
depth_cmp(const void *a, const void *b)
{
    const struct store_depth *x = a, *y = b;
    int                       c = strcmp(x->queue, y->queue);
    return c != 0 ? c : strcmp(x->type, y->type);
}

int
store_depths(struct store *st, struct store_depth **out, size_t *n,
    uint64_t *total, struct anvil_error *err)
{
    sqlite3_stmt       *s   = stmt_get(st, STMT_DEPTHS);
    struct store_depth *d   = NULL;
    size_t              cnt = 0;
    int                 rc, code = ANVIL_OK;
    // Rows come by state (QUEUED, then RUNNING), then queue and type.
    while ((rc = step(st, STMT_DEPTHS)) == SQLITE_ROW) {
        const char *queue = (const char *) sqlite3_column_text(s, 1);
        const char *type  = (const char *) sqlite3_column_text(s, 2);
        size_t      i     = 0;
        while (i < cnt
            && (strcmp(d[i].queue, queue) != 0 || strcmp(d[i].type, type) != 0))
            i++;
        if (i == cnt) {
            struct store_depth *p = realloc(d, (cnt + 1) * sizeof(*d));
            if (p == NULL) {
                code = av_error_set(
                    err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
                break;
            }
            d      = p;
            d[cnt] = (struct store_depth) { .queue = col_str(s, 1),
                .type                              = col_str(s, 2) };
            cnt++;
        }
        uint64_t k = (uint64_t) sqlite3_column_int64(s, 3);
        if (sqlite3_column_int(s, 0) == ANVIL_JOB_QUEUED)
            d[i].queued = k;
        else
            d[i].running = k;
    }
    if (code == ANVIL_OK && cnt > 1)
        qsort(d, cnt, sizeof(*d), depth_cmp);
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = db_error(st, err, "reading queue depths");
    sqlite3_reset(s);
    if (code != ANVIL_OK) {
        store_depths_free(d, cnt);
        return code;
    }
    *out   = d;
    *n     = cnt;
    *total = (uint64_t) (st->next_job_id - 1);
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
    sqlite3_bind_int64(s, 8, st->next_wf_id);
    int rc = exec_stmt(st, STMT_WF_INSERT, err, "inserting a workflow");
    if (rc == ANVIL_OK)
        *id = st->next_wf_id++;
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

// Reads the counts by rowid, then writes the new ones (no RETURNING).
int
store_workflow_settle(struct store *st, int64_t id, bool succeeded, bool failed,
    struct store_wf_counts *c, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_WF_COUNTS);
    sqlite3_bind_int64(s, 1, id);
    int rc = step(st, STMT_WF_COUNTS);
    if (rc == SQLITE_ROW) {
        c->state       = sqlite3_column_int(s, 0);
        c->on_failure  = sqlite3_column_int(s, 1);
        c->n_steps     = (uint32_t) sqlite3_column_int64(s, 2);
        c->n_settled   = (uint32_t) sqlite3_column_int64(s, 3) + 1;
        c->n_succeeded = (uint32_t) sqlite3_column_int64(s, 4) + succeeded;
        c->n_failed    = (uint32_t) sqlite3_column_int64(s, 5) + failed;
    }
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return ANVIL_NOT_FOUND;
    if (rc != SQLITE_ROW)
        return db_error(st, err, "counting a workflow's steps");
    s = stmt_get(st, STMT_WF_SETTLE);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, c->n_settled);
    sqlite3_bind_int64(s, 3, c->n_succeeded);
    sqlite3_bind_int64(s, 4, c->n_failed);
    return exec_stmt(st, STMT_WF_SETTLE, err, "counting a workflow's steps");
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
    size_t                cnt = 0, cap = 0;
    int                   rc, code     = ANVIL_OK;
    sqlite3_bind_int64(s, 1, child);
    while ((rc = step(st, STMT_PARENT_RESULTS)) == SQLITE_ROW) {
        struct parent_result *p = r;
        if (cnt == cap) { // a join may have thousands of parents
            cap = cap ? cap * 2 : 4;
            p   = realloc(r, cap * sizeof(*r));
        }
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

// Reads the count by rowid, then writes the new one (no RETURNING).
int
store_job_parent_done(
    struct store *st, int64_t child, uint32_t *pending, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_PARENT_PENDING);
    sqlite3_bind_int64(s, 1, child);
    int     rc    = step(st, STMT_PARENT_PENDING);
    int     state = 0;
    int64_t left  = 0;
    if (rc == SQLITE_ROW) {
        state = sqlite3_column_int(s, 0);
        left  = sqlite3_column_int64(s, 1) - 1;
    }
    sqlite3_reset(s);
    if (rc == SQLITE_DONE || (rc == SQLITE_ROW && state != ANVIL_JOB_PENDING))
        return ANVIL_NOT_FOUND;
    if (rc != SQLITE_ROW)
        return db_error(st, err, "unblocking a step");
    s = stmt_get(st, STMT_PARENT_DONE);
    sqlite3_bind_int64(s, 1, child);
    sqlite3_bind_int64(s, 2, left);
    rc = exec_stmt(st, STMT_PARENT_DONE, err, "unblocking a step");
    if (rc == ANVIL_OK)
        *pending = (uint32_t) left;
    return rc;
}

// ---- retention ----

int
store_sweep_jobs(struct store *st, int64_t before, int limit, int *deleted,
    struct anvil_error *err)
{
    *deleted = 0;
    int rc   = raise_hwm(st, HWM_JOBS, st->next_job_id, err);
    if (rc != ANVIL_OK)
        return rc;
    sqlite3_stmt *s = stmt_get(st, STMT_SWEEP_JOBS);
    sqlite3_bind_int64(s, 1, before);
    sqlite3_bind_int(s, 2, limit);
    rc = exec_stmt(st, STMT_SWEEP_JOBS, err, "deleting old jobs");
    if (rc == ANVIL_OK)
        *deleted = sqlite3_changes(st->db);
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
    if (rc == ANVIL_OK && n > 0)
        rc = raise_hwm(st, HWM_JOBS, st->next_job_id, err);
    if (rc == ANVIL_OK && n > 0)
        rc = raise_hwm(st, HWM_FLOWS, st->next_wf_id, err);
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

// ---- deferred sync ----
//
// Why a COMMIT under synchronous=NORMAL followed by store_sync() is as
// durable as a COMMIT under synchronous=FULL (SQLite 3.40, WAL mode, the
// unix VFS), for everything committed before the store_sync() call:
//
// - COMMIT appends the transaction's frames, the last one marked as a
//   commit, to the -wal file with write(2). FULL then fsyncs the WAL;
//   NORMAL does not. store_sync() fdatasync()s the same inode through our
//   own descriptor, which writes back every page of it written so far, the
//   file size included: the frames are then on disk as FULL would have put
//   them. Recovery after a power loss replays the WAL up to the last
//   commit frame whose checksum chain holds, so a synced commit is
//   replayed; a commit after it that was only partly written is dropped,
//   as under FULL.
// - Checkpoints do not depend on the commit's mode: with NORMAL, SQLite
//   still syncs the WAL before copying frames into the database and syncs
//   the database before recording the copy (walCheckpoint with
//   CKPT_SYNC_FLAGS), so a checkpoint never leaves a commit only in pages
//   that are not on disk.
// - A WAL restart (the first commit after a complete checkpoint writes from
//   the start of the file again) happens only once every frame is in the
//   synced database; SQLite writes and syncs the new WAL header (new salts)
//   before any frame, under NORMAL too, so old frames are never taken for
//   new ones. The file is rewritten or truncated in place, never unlinked
//   while our connection is open (SQLite deletes it only when the last
//   connection closes); store_sync() checks the inode and reopens if that
//   ever changed, and fails if the file is gone.
// - A new WAL file's directory entry: under FULL, SQLite syncs the
//   directory on the WAL's first sync; we fsync it when we open our
//   descriptor (store_set_deferred_sync) and on any reopen.
// - FULL pads the last frame to a sector boundary when the file system may
//   tear writes beyond the bytes written (no SQLITE_IOCAP_POWERSAFE_
//   OVERWRITE); NORMAL never pads, so the next commit's frames could share
//   a sector with a synced commit frame and, torn by a power cut, damage
//   it. The unix VFS assumes power-safe overwrite by default (and then FULL
//   does not pad either); store_set_deferred_sync refuses to defer when it
//   is off.
// - A failed fdatasync may have dropped the dirty pages (Linux marks them
//   clean), so a later fdatasync would succeed without the data: a failure
//   is therefore sticky, and every later store_sync() fails.
// What the engine must do (and does): send no reply of a batch before a
// store_sync() that started after its COMMIT returned OK. Replies of
// batches applied after a commit that was not yet synced rest on it, so
// they wait for a sync too; a sync covers every commit before it.
// One difference that is not about acknowledged commits: under FULL other
// connections (a `sqlite3 .backup`) see a commit only once it is synced;
// deferred, they may copy one that a power cut then takes back.
//
// Never open the database or -shm file here: closing any descriptor of a
// file drops every POSIX lock this process holds on it, SQLite's included.
// SQLite takes no locks on the -wal file itself.

// strerror(3) is not thread-safe, and store_sync runs on another thread.
static const char *
errtext(int e, char *buf, size_t len)
{
    if (strerror_r(e, buf, len) != 0)
        snprintf(buf, len, "error %d", e);
    return buf;
}

// Fsyncs the directory holding path (ignoring file systems that cannot).
static int
sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char        dir[1024];
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if ((size_t) (slash - path) >= sizeof(dir))
        return ENAMETOOLONG;
    else
        snprintf(dir, sizeof(dir), "%.*s", (int) (slash - path), path);
    if (dir[0] == '\0')
        snprintf(dir, sizeof(dir), "/");
    int fd = open(dir, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) == 0 || errno == EINVAL ? 0 : errno;
    close(fd);
    return rc;
}

// Opens our descriptor of the -wal file (sync_lock held, or no syncer).
static int
wal_open(struct store *st, char *msg, size_t len)
{
    char        eb[96];
    int         fd = open(st->wal_path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        snprintf(msg, len, "cannot open the WAL file %s: %s", st->wal_path,
            errtext(e, eb, sizeof(eb)));
        return -1;
    }
    int e = sync_dir(st->wal_path);
    if (e != 0) {
        close(fd);
        snprintf(msg, len, "cannot sync the directory of %s: %s", st->wal_path,
            errtext(e, eb, sizeof(eb)));
        return -1;
    }
    if (st->wal_fd >= 0)
        close(st->wal_fd);
    st->wal_fd  = fd;
    st->wal_dev = sb.st_dev;
    st->wal_ino = sb.st_ino;
    return 0;
}

static int
datasync(int fd)
{
    if (store_hook_fdatasync != NULL)
        return store_hook_fdatasync(fd);
    return fdatasync(fd);
}

// The sync itself (sync_lock held). On failure, fills st->sync_msg.
static int
wal_sync(struct store *st)
{
    char        eb[96];
    char       *msg = st->sync_msg;
    size_t      len = sizeof(st->sync_msg);
    struct stat sb;
    if (stat(st->wal_path, &sb) != 0) {
        snprintf(msg, len, "the WAL file %s is gone: %s", st->wal_path,
            errtext(errno, eb, sizeof(eb)));
        return -1;
    }
    if (sb.st_ino != st->wal_ino || sb.st_dev != st->wal_dev) {
        // Not seen with SQLite 3.40; sync both files to be safe.
        if (datasync(st->wal_fd) != 0) {
            snprintf(msg, len, "fdatasync of the old WAL file failed: %s",
                errtext(errno, eb, sizeof(eb)));
            return -1;
        }
        if (wal_open(st, msg, len) != 0)
            return -1;
    }
    if (datasync(st->wal_fd) != 0) {
        snprintf(msg, len, "fdatasync of %s failed: %s", st->wal_path,
            errtext(errno, eb, sizeof(eb)));
        return -1;
    }
    return 0;
}

int
store_sync(struct store *st, struct anvil_error *err)
{
    if (!atomic_load(&st->deferred))
        return ANVIL_OK; // every commit synced itself
    uint_least64_t want = atomic_load(&st->write_seq);
    if (atomic_load(&st->synced_seq) >= want)
        return ANVIL_OK; // nothing written since the last sync
    int rc = ANVIL_OK;
    pthread_mutex_lock(&st->sync_lock);
    if (atomic_load(&st->synced_seq) < want && st->wal_fd >= 0) {
        if (!st->sync_failed && wal_sync(st) != 0) {
            st->sync_failed = true;
            AV_ERR("store.sync", "err=\"%s\"", st->sync_msg);
        }
        if (st->sync_failed)
            rc = av_error_set(err, ANVIL_INTERNAL,
                "cannot make commits durable: %s", st->sync_msg);
        else
            atomic_store(&st->synced_seq, want);
    }
    pthread_mutex_unlock(&st->sync_lock);
    return rc;
}

bool
store_needs_sync(const struct store *st)
{
    return atomic_load(&st->deferred);
}

// Whether deferring keeps FULL's durability here (see above); logs why not.
static bool
can_defer(struct store *st, const char **wal)
{
    int psow = -1;
    if (sqlite3_file_control(
            st->db, "main", SQLITE_FCNTL_POWERSAFE_OVERWRITE, &psow)
            != SQLITE_OK
        || psow != 1) {
        AV_WARN("store.sync",
            "msg=\"no power-safe overwrite: keeping "
            "synchronous=FULL\"");
        return false;
    }
    *wal = sqlite3_filename_wal(sqlite3_db_filename(st->db, "main"));
    if (*wal == NULL || (*wal)[0] == '\0') {
        AV_WARN("store.sync",
            "msg=\"no WAL file (a temporary database): "
            "keeping synchronous=FULL\"");
        return false;
    }
    return true;
}

static int
defer_on(struct store *st, struct anvil_error *err)
{
    const char *wal = NULL;
    if (!can_defer(st, &wal))
        return ANVIL_OK;
    free(st->wal_path);
    st->wal_path = strdup(wal);
    if (st->wal_path == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    pthread_mutex_lock(&st->sync_lock);
    int rc = wal_open(st, st->sync_msg, sizeof(st->sync_msg));
    pthread_mutex_unlock(&st->sync_lock);
    if (rc != 0)
        return av_error_set(err, ANVIL_INTERNAL, "%s", st->sync_msg);
    if (sqlite3_exec(st->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL))
        return db_error(st, err, "deferring the sync");
    // Every earlier commit synced itself under FULL.
    atomic_store(&st->synced_seq, atomic_load(&st->write_seq));
    atomic_store(&st->deferred, true);
    AV_INFO("store.deferred_sync", "wal=%s", st->wal_path);
    return ANVIL_OK;
}

static int
defer_off(struct store *st, struct anvil_error *err)
{
    int rc = store_sync(st, err);
    if (rc != ANVIL_OK)
        return rc;
    if (sqlite3_exec(st->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL))
        return db_error(st, err, "restoring synchronous=FULL");
    atomic_store(&st->deferred, false);
    pthread_mutex_lock(&st->sync_lock);
    if (st->wal_fd >= 0)
        close(st->wal_fd);
    st->wal_fd = -1;
    pthread_mutex_unlock(&st->sync_lock);
    return ANVIL_OK;
}

int
store_set_deferred_sync(struct store *st, bool on, struct anvil_error *err)
{
    if (st->synchronous < 2 || on == atomic_load(&st->deferred))
        return ANVIL_OK;
    if (!sqlite3_get_autocommit(st->db))
        return av_error_set(err, ANVIL_FAILED_PRECONDITION,
            "the sync mode can change only between transactions");
    return on ? defer_on(st, err) : defer_off(st, err);
}
