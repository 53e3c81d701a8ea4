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
    STMT_COUNT
};

// Columns read into a struct job by read_job(), in this order.
#define JOB_COLS                                                             \
    "id, type, queue, payload, priority, state, attempt, max_attempts, "     \
    "result, error, created_at, started_at, finished_at, run_at, "           \
    "timeout_ms, lease_deadline, worker_id, idem_key, cancel_requested"

static const char *const stmt_sql[STMT_COUNT] = {
    [STMT_BEGIN]       = "BEGIN IMMEDIATE",
    [STMT_COMMIT]      = "COMMIT",
    [STMT_ROLLBACK]    = "ROLLBACK",
    [STMT_SAVEPOINT]   = "SAVEPOINT cmd",
    [STMT_RELEASE]     = "RELEASE cmd",
    [STMT_ROLLBACK_TO] = "ROLLBACK TO cmd",
    [STMT_JOB_INSERT]  = "INSERT INTO jobs(type, queue, payload, priority, "
                        "state, max_attempts, created_at, run_at, "
                        "timeout_ms, lease_ms, idem_key, request_id) "
                        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                        "?11, ?12)",
    [STMT_JOB_BY_RID]  = "SELECT id FROM jobs WHERE request_id = ?1",
    [STMT_JOB_BY_KEY]  = "SELECT id FROM jobs WHERE idem_key = ?1",
    [STMT_JOB_GET]     = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
    [STMT_JOB_LEASE] = "UPDATE jobs SET state = 4, attempt = attempt + 1, "
                       "started_at = ?2, lease_deadline = ?3, worker_id = ?4, "
                       "finished_at = NULL "
                       "WHERE id = ?1 AND state = 3 RETURNING " JOB_COLS,
    [STMT_JOB_FINISH] = "UPDATE jobs SET state = ?2, result = ?3, error = ?4, "
                        "finished_at = ?5, lease_deadline = NULL "
                        "WHERE id = ?1",
    [STMT_JOB_REQUEUE] = "UPDATE jobs SET state = ?2, run_at = ?3, "
                         "error = ?4, lease_deadline = NULL WHERE id = ?1",
    [STMT_JOB_MAKE_READY] = "UPDATE jobs SET state = 3 "
                            "WHERE id = ?1 AND state = 2",
    [STMT_JOB_EXTEND] = "UPDATE jobs SET lease_deadline = ?2 WHERE id = ?1",
    [STMT_JOB_CANCEL_REQ] = "UPDATE jobs SET cancel_requested = 1 "
                            "WHERE id = ?1",
    [STMT_JOB_BRIEF] = "SELECT state, attempt, max_attempts, lease_deadline, "
                       "started_at, timeout_ms, lease_ms, run_at, priority, "
                       "cancel_requested FROM jobs WHERE id = ?1",
    [STMT_JOB_LIST] = "SELECT " JOB_COLS " FROM jobs "
                      "WHERE (?1 = 0 OR state = ?1) "
                      "AND (?2 IS NULL OR type = ?2) "
                      "AND (?3 IS NULL OR queue = ?3) "
                      "AND id < ?4 ORDER BY id DESC LIMIT ?5",
    [STMT_SCAN_ACTIVE] = "SELECT id, type, queue, priority, state, attempt, "
                         "run_at, lease_deadline, started_at, timeout_ms "
                         "FROM jobs WHERE state IN (2, 3, 4) ORDER BY id",
    [STMT_DEPTHS] = "SELECT queue, type, SUM(state = 3), SUM(state = 4) "
                    "FROM jobs WHERE state IN (3, 4) "
                    "GROUP BY queue, type ORDER BY queue, type",
    [STMT_TOTAL]  = "SELECT seq FROM sqlite_sequence WHERE name = 'jobs'",
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
        if (sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL) ||
            sqlite3_exec(st->db, migrations[version], NULL, NULL, NULL) ||
            sqlite3_exec(st->db, sql, NULL, NULL, NULL) ||
            sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL)) {
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
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
        SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
        av_error_set(err, ANVIL_INTERNAL, "cannot open database %s: %s",
            path, st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    if (configure(st, synchronous, err) || migrate(st, err))
        goto fail;
    for (int i = 0; i < STMT_COUNT; i++) {
        if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
                SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL) != SQLITE_OK) {
            db_error(st, err, "preparing statements");
            goto fail;
        }
    }
    *out = st;
    return ANVIL_OK;
fail:
    store_close(st);
    return err ? err->code : ANVIL_INTERNAL;
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
store_job_insert(struct store *st, const struct store_new_job *nj,
    int64_t *id, struct anvil_error *err)
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
    j->id               = sqlite3_column_int64(s, 0);
    j->type             = col_str(s, 1);
    j->queue            = col_str(s, 2);
    j->payload          = col_blob(s, 3, &j->payload_len);
    j->priority         = sqlite3_column_int(s, 4);
    j->state            = sqlite3_column_int(s, 5);
    j->attempt          = (uint32_t) sqlite3_column_int64(s, 6);
    j->max_attempts     = (uint32_t) sqlite3_column_int64(s, 7);
    j->result           = col_blob(s, 8, &j->result_len);
    j->error            = col_str(s, 9);
    j->created_at       = sqlite3_column_int64(s, 10);
    j->started_at       = sqlite3_column_int64(s, 11);
    j->finished_at      = sqlite3_column_int64(s, 12);
    j->run_at           = sqlite3_column_int64(s, 13);
    j->timeout_ms       = sqlite3_column_int64(s, 14);
    j->lease_deadline   = sqlite3_column_int64(s, 15);
    j->worker_id        = col_str(s, 16);
    j->idem_key         = col_str(s, 17);
    j->cancel_requested = sqlite3_column_int(s, 18) != 0;
    if (!j->type || !j->queue || !j->payload || !j->result || !j->error ||
        !j->worker_id || !j->idem_key) {
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
store_job_lease(struct store *st, int64_t id, const char *worker, int64_t now,
    int64_t deadline, struct job *out, struct anvil_error *err)
{
    sqlite3_stmt *s = stmt_get(st, STMT_JOB_LEASE);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, now);
    sqlite3_bind_int64(s, 3, deadline);
    sqlite3_bind_text(s, 4, worker, -1, SQLITE_STATIC);
    return one_job(st, STMT_JOB_LEASE, out, err, "leasing a job");
}

int
store_job_finish(struct store *st, int64_t id, int state,
    const uint8_t *result, size_t result_len, const char *error, int64_t now,
    struct anvil_error *err)
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
        b->state            = sqlite3_column_int(s, 0);
        b->attempt          = (uint32_t) sqlite3_column_int64(s, 1);
        b->max_attempts     = (uint32_t) sqlite3_column_int64(s, 2);
        b->lease_deadline   = sqlite3_column_int64(s, 3);
        b->started_at       = sqlite3_column_int64(s, 4);
        b->timeout_ms       = sqlite3_column_int64(s, 5);
        b->lease_ms         = sqlite3_column_int64(s, 6);
        b->run_at           = sqlite3_column_int64(s, 7);
        b->priority         = sqlite3_column_int(s, 8);
        b->cancel_requested = sqlite3_column_int(s, 9) != 0;
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
    int         rc, code = ANVIL_OK;
    while ((rc = step(st, STMT_JOB_LIST)) == SQLITE_ROW) {
        if (grow(&out, &cap, cnt + 1) || read_job(s, &out[cnt])) {
            code = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED,
                "out of memory listing jobs");
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
        d           = p;
        d[cnt]      = (struct store_depth) {
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
