// store_sqlite.c - the SQLite backend's connection: prepared statements,
// binds and steps, error mapping, ids, transactions, and the ops table.
//
// The hot path (insert, lease, finish, a workflow step's unblocking) is a
// few single-row statements by rowid, all prepared once in store_open. Two
// things SQLite 3.40 makes expensive are kept off it, and
// test_store_hot_path_statements_build_no_temporary_tables checks both with
// EXPLAIN: `state IN (a, b, c)` in a partial index's WHERE (an ephemeral
// table built each time a row enters or leaves the index; ranges are plain
// comparisons) and `UPDATE ... RETURNING` (its rows go through an ephemeral
// table; we UPDATE, then read by rowid or compute the values in C).
#include "store_sqlite.h"

#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int (*store_hook_step)(int stmt);
int (*store_hook_fdatasync)(int fd);

// ListJobs' filter (store_list_filter), shared by RetryJobs and CancelJobs.
#define JOB_FILTER                                          \
    "(?1 = 0 OR state = ?1) AND (?2 IS NULL OR type = ?2) " \
    "AND (?3 IS NULL OR queue = ?3) AND id < ?4 "           \
    "AND created_at >= ?6 AND created_at < ?7"

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
                         "backoff_multiplier, id, concurrency_key, "
                         "concurrency_limit) "
                         "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                         "?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, "
                         "?21)",
    [STMT_JOB_BY_RID]  = "SELECT id FROM jobs WHERE request_id = ?1",
    [STMT_JOB_BY_KEY]  = "SELECT id FROM jobs WHERE idem_key = ?1",
    [STMT_JOB_GET]     = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
    [STMT_JOB_LEASE]   = "UPDATE jobs SET state = 4, attempt = ?2, "
                         "started_at = ?3, lease_deadline = ?4, "
                         "worker_id = ?5, lease_token = ?6, "
                         "finished_at = NULL, progress_percent = NULL, "
                         "progress_message = NULL WHERE id = ?1",
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
    [STMT_JOB_BRIEF] = "SELECT state, attempt, max_attempts, lease_deadline, "
                       "started_at, timeout_ms, lease_ms, run_at, priority, "
                       "cancel_requested, workflow_id, backoff_initial_ms, "
                       "backoff_max_ms, backoff_multiplier, lease_token, "
                       "queue, type, step, concurrency_key, "
                       "concurrency_limit FROM jobs WHERE id = ?1",
    [STMT_JOB_LIST]  = "SELECT " JOB_COLS " FROM jobs WHERE " JOB_FILTER
                      " ORDER BY id DESC LIMIT ?5",
    [STMT_SCAN_ACTIVE]
    = "SELECT id, type, queue, priority, state, attempt, "
      "run_at, lease_deadline, started_at, timeout_ms, "
      "concurrency_key, concurrency_limit FROM jobs WHERE " JOBS_ACTIVE
      " ORDER BY state, queue, type, id", // index order
    // Covered by jobs_active: counted in the index, no table row read.
    [STMT_DEPTHS]    = "SELECT state, queue, type, COUNT(*) FROM jobs "
                       "WHERE " JOBS_ACTIVE " GROUP BY state, queue, type",
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
    [STMT_WF_SCAN_ACTIVE] = "SELECT id, max(created_at, retried_at) + "
                            "timeout_ms FROM workflows "
                            "WHERE state = 1 AND timeout_ms > 0",
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
    // FAILED or CANCELED (6-7) waits again.
    [STMT_JOB_RETRY] = "UPDATE jobs SET state = ?2, pending_parents = ?3, "
                       "max_attempts = ?4, result = NULL, "
                       "finished_at = NULL, lease_deadline = NULL, "
                       "lease_token = 0, worker_id = NULL, "
                       "cancel_requested = 0 "
                       "WHERE id = ?1 AND state BETWEEN 6 AND 7",
    // FAILED or CANCELED (3-4) runs again.
    [STMT_WF_REOPEN]    = "UPDATE workflows SET state = 1, error = NULL, "
                          "finished_at = NULL, n_settled = n_succeeded, "
                          "n_failed = 0, retried_at = ?2 "
                          "WHERE id = ?1 AND state BETWEEN 3 AND 4",
    [STMT_EVENT_INSERT] = "INSERT INTO events(" EV_COLS ") VALUES(?1, ?2, "
                          "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    // Reads in seq order: by rowid, or along events_job / events_workflow
    // (job_id, seq), which are in seq order within an id. ?2 < 0 is no
    // LIMIT.
    [STMT_EVENTS_SCAN]    = "SELECT " EV_COLS " FROM events WHERE seq > ?1 "
                            "ORDER BY seq LIMIT ?2",
    [STMT_EVENTS_BY_JOB]  = "SELECT " EV_COLS " FROM events WHERE job_id = ?3 "
                            "AND seq > ?1 ORDER BY seq LIMIT ?2",
    [STMT_EVENTS_BY_FLOW] = "SELECT " EV_COLS " FROM events "
                            "WHERE workflow_id = ?3 AND seq > ?1 "
                            "ORDER BY seq LIMIT ?2",
    [STMT_EVENTS_BOUNDS]  = "SELECT coalesce((SELECT min(seq) FROM events), "
                            "0), coalesce((SELECT seq FROM sqlite_sequence "
                            "WHERE name = 'events'), 0)",
    [STMT_SWEEP_EVENTS_SCAN] = "SELECT seq, at FROM events ORDER BY seq "
                               "LIMIT ?1",
    [STMT_SWEEP_EVENTS]      = "DELETE FROM events WHERE seq <= ?1",
    // A queue paused twice keeps the time it was first paused.
    [STMT_QUEUE_PAUSE]   = "INSERT OR IGNORE INTO paused_queues(queue, "
                           "paused_at) VALUES(?1, ?2)",
    [STMT_QUEUE_RESUME]  = "DELETE FROM paused_queues WHERE queue = ?1",
    [STMT_QUEUES_PAUSED] = "SELECT queue FROM paused_queues ORDER BY queue",
    [STMT_LIMIT_SET]     = "INSERT OR REPLACE INTO queue_limits(queue, rate, "
                           "burst, tokens, at_ms) VALUES(?1, ?2, ?3, ?4, ?5)",
    [STMT_LIMIT_DELETE]  = "DELETE FROM queue_limits WHERE queue = ?1",
    [STMT_LIMIT_SAVE]    = "UPDATE queue_limits SET tokens = ?2, at_ms = ?3 "
                           "WHERE queue = ?1",
    [STMT_LIMIT_GET]     = "SELECT rate, burst, tokens, at_ms FROM "
                           "queue_limits WHERE queue = ?1",
    [STMT_LIMITS]        = "SELECT queue, rate, burst, tokens, at_ms FROM "
                           "queue_limits ORDER BY queue",
    // Writes only a change, so that a repeated report costs no page write
    // and tells the caller that nothing changed (no event).
    [STMT_JOB_PROGRESS] = "UPDATE jobs SET progress_percent = ?2, "
                          "progress_message = ?3 WHERE id = ?1 AND "
                          "(progress_percent IS NOT ?2 OR "
                          "progress_message IS NOT ?3)",
    [STMT_JOB_IDS]      = "SELECT id FROM jobs WHERE " JOB_FILTER
                     " AND (?8 = 0 OR workflow_id IS NULL)"
                     " ORDER BY id DESC LIMIT ?5",
    [STMT_SCHED_INSERT] = "INSERT INTO schedules(" SCHED_COLS ") VALUES(NULL, "
                          "?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
                          "?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, "
                          "?24, ?25, ?26)",
    [STMT_SCHED_GET]    = "SELECT " SCHED_COLS " FROM schedules WHERE id = ?1",
    [STMT_SCHED_GET_NAME]
    = "SELECT " SCHED_COLS " FROM schedules WHERE name = ?1",
    [STMT_SCHED_LIST] = "SELECT " SCHED_COLS " FROM schedules ORDER BY name",
    [STMT_SCHED_UPDATE]
    = "UPDATE schedules SET paused = ?2, next_fire_at = ?3, last_fire_at = ?4, "
      "last_job_id = ?5, fired = ?6, skipped = ?7 WHERE id = ?1",
    [STMT_SCHED_DELETE] = "DELETE FROM schedules WHERE id = ?1",
};

static bool
is_failure(int rc)
{
    return rc != SQLITE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE;
}

int
sq_error(struct sqlite_store *st, struct anvil_error *err, const char *what)
{
    int rc = st->last_rc;
    if (!is_failure(rc))
        rc = sqlite3_extended_errcode(st->db);
    st->last_rc = SQLITE_OK;
    // The connection's message belongs to its last failure; an injected or
    // bind failure has only its code.
    const char *msg  = sqlite3_extended_errcode(st->db) == rc
         ? sqlite3_errmsg(st->db)
         : sqlite3_errstr(rc);
    bool        full = (rc & 0xff) == SQLITE_FULL
        || ((rc & 0xff) == SQLITE_IOERR
            && sqlite3_system_errno(st->db) == ENOSPC);
    AV_ERR("store.error", "op=\"%s\" rc=%d err=\"%s\"", what, rc, msg);
    if (full)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED,
            "disk full while %s: free space on the database's file system",
            what);
    return av_error_set(
        err, ANVIL_INTERNAL, "database error while %s: %s", what, msg);
}

sqlite3_stmt *
sq_stmt(struct sqlite_store *st, int id)
{
    sqlite3_stmt *s = st->stmt[id];
    // Both repeat an earlier step's result, already handled; clearing
    // bindings cannot fail.
    (void) sqlite3_reset(s);
    (void) sqlite3_clear_bindings(s);
    st->bind_rc = SQLITE_OK;
    st->last_rc = SQLITE_OK; // a failure not reported stays with its call
    return s;
}

static void
bound(struct sqlite_store *st, int rc)
{
    if (rc != SQLITE_OK && st->bind_rc == SQLITE_OK)
        st->bind_rc = rc;
}

void
sq_bind_i64(struct sqlite_store *st, sqlite3_stmt *s, int i, int64_t v)
{
    bound(st, sqlite3_bind_int64(s, i, v));
}

sqlite3_stmt *
sq_stmt_pair(struct sqlite_store *st, int id, int64_t a, int64_t b)
{
    sqlite3_stmt *s = sq_stmt(st, id);
    sq_bind_i64(st, s, 1, a);
    sq_bind_i64(st, s, 2, b);
    return s;
}

void
sq_bind_double(struct sqlite_store *st, sqlite3_stmt *s, int i, double v)
{
    bound(st, sqlite3_bind_double(s, i, v));
}

void
sq_bind_text(struct sqlite_store *st, sqlite3_stmt *s, int i, const char *v)
{
    bound(st, sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC));
}

void
sq_bind_text_len(
    struct sqlite_store *st, sqlite3_stmt *s, int i, const char *v, size_t len)
{
    if (len > (size_t) INT32_MAX) {
        bound(st, SQLITE_TOOBIG);
        return;
    }
    bound(st, sqlite3_bind_text(s, i, v, (int) len, SQLITE_STATIC));
}

void
sq_bind_text_or_null(
    struct sqlite_store *st, sqlite3_stmt *s, int i, const char *v)
{
    if (v == NULL || v[0] == '\0')
        bound(st, sqlite3_bind_null(s, i));
    else
        sq_bind_text(st, s, i, v);
}

void
sq_bind_blob(
    struct sqlite_store *st, sqlite3_stmt *s, int i, const void *p, size_t n)
{
    if (n > (size_t) INT32_MAX) {
        bound(st, SQLITE_TOOBIG);
        return;
    }
    bound(st, sqlite3_bind_blob(s, i, p, (int) n, SQLITE_STATIC));
}

int
sq_step(struct sqlite_store *st, int id)
{
    int rc = st->bind_rc;
    if (rc == SQLITE_OK && store_hook_step != NULL) {
        int h = store_hook_step(id);
        if (h == ANVIL_RESOURCE_EXHAUSTED)
            rc = SQLITE_FULL;
        else if (h != 0)
            rc = SQLITE_IOERR;
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st->stmt[id]);
    st->last_rc = rc;
    return rc;
}

void
sq_reset(struct sqlite_store *st, int id)
{
    (void) sqlite3_reset(st->stmt[id]); // repeats the step's result
}

void
sq_note_writes(struct sqlite_store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        return;
    sqlite3_int64 n = sqlite3_total_changes64(st->db);
    if (n != st->changes_seen) {
        st->changes_seen = n;
        atomic_fetch_add(&st->write_seq, 1);
    }
}

int
sq_exec(
    struct sqlite_store *st, int id, struct anvil_error *err, const char *what)
{
    int rc = sq_step(st, id);
    sq_reset(st, id);
    sq_note_writes(st);
    if (rc != SQLITE_DONE)
        return sq_error(st, err, what);
    return ANVIL_OK;
}

int
sq_update_one(
    struct sqlite_store *st, int id, struct anvil_error *err, const char *what)
{
    int rc = sq_exec(st, id, err, what);
    if (rc == ANVIL_OK && sq_changes(st) == 0)
        return ANVIL_NOT_FOUND;
    return rc;
}

int
sq_find_id(struct sqlite_store *st, int id, int64_t *out,
    struct anvil_error *err, const char *what)
{
    int rc = sq_step(st, id);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st->stmt[id], 0);
    sq_reset(st, id);
    if (rc == SQLITE_ROW)
        return ANVIL_OK;
    if (rc == SQLITE_DONE)
        return ANVIL_NOT_FOUND;
    return sq_error(st, err, what);
}

int
sq_find_by_i64(struct sqlite_store *st, int id, int64_t v, int64_t *out,
    struct anvil_error *err, const char *what)
{
    sq_bind_i64(st, sq_stmt(st, id), 1, v);
    return sq_find_id(st, id, out, err, what);
}

int
sq_find_by_text(struct sqlite_store *st, int id, const char *v, int64_t *out,
    struct anvil_error *err, const char *what)
{
    sq_bind_text(st, sq_stmt(st, id), 1, v);
    return sq_find_id(st, id, out, err, what);
}

int
sq_read_ids(struct sqlite_store *st, int id, int64_t **ids, size_t *n,
    struct anvil_error *err, const char *what)
{
    int64_t *out = NULL;
    size_t   cnt = 0, cap = 0;
    int      rc, code     = ANVIL_OK;
    while ((rc = sq_step(st, id)) == SQLITE_ROW) {
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
        out[cnt++] = sqlite3_column_int64(st->stmt[id], 0);
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = sq_error(st, err, what);
    sq_reset(st, id);
    if (code != ANVIL_OK) {
        free(out);
        return code;
    }
    *ids = out;
    *n   = cnt;
    return ANVIL_OK;
}

int64_t
sq_changes(struct sqlite_store *st)
{
    return sqlite3_changes64(st->db);
}

char *
sq_col_str(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return strdup(t ? (const char *) t : "");
}

uint8_t *
sq_col_blob(sqlite3_stmt *s, int i, size_t *len)
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

sqlite3 *
store_sqlite_db(struct store *st)
{
    return sq(st)->db;
}

static int
configure(struct sqlite_store *st, int synchronous, struct anvil_error *err)
{
    char sql[160];
    snprintf(sql, sizeof(sql),
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = %d; "
        "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY",
        synchronous);
    if (sqlite3_busy_timeout(st->db, 5000) != SQLITE_OK
        || sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sq_error(st, err, "configuring the database");
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
// Event seqs are counted the same way; their mark is the events table's
// AUTOINCREMENT counter in sqlite_sequence, which SQLite raises on every
// insert (also of an explicit seq) and keeps when rows are deleted.
static int
next_ids(struct sqlite_store *st, struct anvil_error *err)
{
    static const char sql[]
        = "SELECT max(coalesce((SELECT max(id) FROM jobs), 0), "
          "coalesce((SELECT value FROM meta WHERE key = '" HWM_JOBS "'), 0)), "
          "max(coalesce((SELECT max(id) FROM workflows), 0), "
          "coalesce((SELECT value FROM meta WHERE key = '" HWM_FLOWS "'), 0)), "
          "max(coalesce((SELECT max(seq) FROM events), 0), "
          "coalesce((SELECT seq FROM sqlite_sequence "
          "WHERE name = 'events'), 0))";
    sqlite3_stmt *s  = NULL;
    int           rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        st->next_job_id    = sqlite3_column_int64(s, 0) + 1;
        st->next_wf_id     = sqlite3_column_int64(s, 1) + 1;
        st->next_event_seq = sqlite3_column_int64(s, 2) + 1;
    }
    (void) sqlite3_finalize(s); // repeats the step's result, handled
    if (rc != SQLITE_ROW)
        return sq_error(st, err, "reading the highest ids");
    return ANVIL_OK;
}

// Raises a high-water mark to the highest id handed out so far; writes
// nothing when it is already there (an idle server's sweeps stay
// read-only).
int
sq_raise_hwm(struct sqlite_store *st, const char *key, int64_t next,
    struct anvil_error *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_META_HWM);
    sq_bind_text(st, s, 1, key);
    sq_bind_i64(st, s, 2, next - 1);
    return sq_exec(st, STMT_META_HWM, err, "recording the highest id");
}

static void fill_ops(struct store_ops *o);
static void sq_close(struct store *base);

int
store_open(const char *path, int synchronous, struct store **out,
    struct anvil_error *err)
{
    struct sqlite_store *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    fill_ops(&st->ops);
    st->base.ops = &st->ops;
    st->wal_fd   = -1;
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
        rc = sq_migrate(st, err);
    if (rc == ANVIL_OK)
        rc = next_ids(st, err);
    for (int i = 0; rc == ANVIL_OK && i < STMT_COUNT; i++) {
        if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
                SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL)
            != SQLITE_OK)
            rc = sq_error(st, err, "preparing statements");
    }
    if (rc != ANVIL_OK) {
        sq_close(&st->base);
        return rc;
    }
    st->changes_seen = sqlite3_total_changes64(st->db);
    *out             = &st->base;
    return ANVIL_OK;
}

static void
sq_close(struct store *base)
{
    struct sqlite_store *st = sq(base);
    sq_sync_fini(st);
    for (int i = 0; i < STMT_COUNT; i++)
        (void) sqlite3_finalize(st->stmt[i]); // closing: nothing to undo
    if (st->db != NULL && sqlite3_close(st->db) != SQLITE_OK)
        AV_ERR("store.close", "err=\"%s\"", sqlite3_errmsg(st->db));
    free(st);
}

const char *
store_stmt_sql(int i)
{
    return i >= 0 && i < STMT_COUNT ? stmt_sql[i] : NULL;
}

static int
sq_begin(struct store *base, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    return sq_exec(st, STMT_BEGIN, err, "starting a transaction");
}

static int
sq_commit(struct store *base, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    return sq_exec(st, STMT_COMMIT, err, "committing");
}

static int
sq_rollback(struct store *base, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    if (sqlite3_get_autocommit(st->db))
        return ANVIL_OK;
    return sq_exec(st, STMT_ROLLBACK, err, "rolling back");
}

static int
sq_savepoint(struct store *base, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    return sq_exec(st, STMT_SAVEPOINT, err, "opening a savepoint");
}

static int
sq_release(struct store *base, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    return sq_exec(st, STMT_RELEASE, err, "releasing a savepoint");
}

static int
sq_rollback_savepoint(struct store *base, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    int rc = sq_exec(st, STMT_ROLLBACK_TO, err, "rolling back a savepoint");
    if (rc != ANVIL_OK)
        return rc;
    return sq_exec(st, STMT_RELEASE, err, "releasing a savepoint");
}

// The ops table: the connection's own calls, then each concept's.
static void
fill_ops(struct store_ops *o)
{
    o->name               = "sqlite";
    o->close              = sq_close;
    o->begin              = sq_begin;
    o->commit             = sq_commit;
    o->rollback           = sq_rollback;
    o->savepoint          = sq_savepoint;
    o->release            = sq_release;
    o->rollback_savepoint = sq_rollback_savepoint;
    sq_jobs_ops(o);
    sq_flows_ops(o);
    sq_tokens_ops(o);
    sq_events_ops(o);
    sq_retention_ops(o);
    sq_sync_ops(o);
    sq_queues_ops(o);
    sq_schedules_ops(o);
}
