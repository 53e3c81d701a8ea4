// store_sqlite.h - the SQLite backend of store.h, private to its files.
//
// The backend is split by concept, each file filling its part of the
// store_ops table that store_sqlite.c assembles:
//   store_sqlite.c     connection, prepared statements, transactions, binds
//                      and error mapping, ids, the ops table
//   store_schema.c     DDL, schema version and migrations
//   store_jobs.c       job rows
//   store_flows.c      workflows, edges, a step's parents
//   store_tokens.c     API tokens
//   store_events.c     the event stream
//   store_retention.c  the sweeps of finished jobs, workflows and events
//   store_sync.c       deferred sync of the -wal file
// Names with the sq_ prefix belong to this backend and to no other file.
// Threads as in store.h: the engine thread calls everything but sq_sync and
// sq_needs_sync.
#ifndef SERVER_STORE_SQLITE_H
#define SERVER_STORE_SQLITE_H

#include "store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/types.h>

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
    STMT_JOB_RETRY,
    STMT_WF_REOPEN,
    STMT_EVENT_INSERT,
    STMT_EVENTS_SCAN,
    STMT_EVENTS_BY_JOB,
    STMT_EVENTS_BY_FLOW,
    STMT_EVENTS_BOUNDS,
    STMT_SWEEP_EVENTS_SCAN,
    STMT_SWEEP_EVENTS,
    STMT_QUEUE_PAUSE,
    STMT_QUEUE_RESUME,
    STMT_QUEUES_PAUSED,
    STMT_LIMIT_SET,
    STMT_LIMIT_DELETE,
    STMT_LIMIT_SAVE,
    STMT_LIMIT_GET,
    STMT_LIMITS,
    STMT_JOB_PROGRESS,
    STMT_JOB_IDS,
    STMT_SCHED_INSERT,
    STMT_SCHED_GET,
    STMT_SCHED_GET_NAME,
    STMT_SCHED_LIST,
    STMT_SCHED_UPDATE,
    STMT_SCHED_DELETE,
    STMT_COUNT
};

// The partial indexes' predicates (schema version 5), as ranges over the
// .proto's numbers: jobs 1 PENDING, 2 SCHEDULED, 3 QUEUED, 4 RUNNING,
// 5 SUCCEEDED, 6 FAILED, 7 CANCELED; workflows 1 RUNNING, 2-4 final.
// SQLite uses a partial index only for a query whose WHERE contains the
// index's terms as written, so every query meant to use one includes the
// same macro, then narrows it.
#define JOBS_ACTIVE "state BETWEEN 2 AND 4"
#define JOBS_FINAL "state >= 5 AND workflow_id IS NULL"
#define FLOWS_FINAL "state >= 2"

// The high-water marks of ids in table meta (see store_sqlite.c).
#define HWM_JOBS "job_id_hwm"
#define HWM_FLOWS "workflow_id_hwm"

struct sqlite_store {
    struct store     base; // first: a struct store * is a struct sqlite_store *
    struct store_ops ops;  // base.ops points here; filled by store_open
    sqlite3         *db;
    sqlite3_stmt    *stmt[STMT_COUNT];
    int              synchronous; // as opened: 2 FULL, 1 NORMAL, 0 OFF
    // Engine thread only: the first failed bind since the statement was
    // taken with sq_stmt (sq_step then fails without running it), the next
    // ids and event seq to hand out, and sqlite3_total_changes64() when
    // writes were last counted.
    int           bind_rc;
    int           last_rc; // the last sq_step's result, for sq_error
    int64_t       next_job_id;
    int64_t       next_wf_id;
    int64_t       next_event_seq;
    sqlite3_int64 changes_seen;
    // Deferred sync (store_sync.c). write_seq counts commits that wrote
    // (bumped by the engine thread after COMMIT returns); synced_seq is the
    // write_seq the last successful fdatasync covered. sync_lock guards the
    // wal_* fields and the sticky failure, and serialises sq_sync callers;
    // it is never held across an SQLite call.
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

static inline struct sqlite_store *
sq(struct store *st)
{
    return (struct sqlite_store *) st;
}

// ---- store_sqlite.c: statements, binds, errors ----

// Maps the last failure (the failed sq_step's result, else the
// connection's error code) to the caller's error: disk full (SQLITE_FULL,
// or an I/O error with errno ENOSPC) is RESOURCE_EXHAUSTED with "disk full"
// in the message, anything else INTERNAL; both name what was being done.
// Logs it. Returns the code.
int sq_error(
    struct sqlite_store *st, struct anvil_error *err, const char *what);

// Takes statement id for a new use: reset, bindings cleared, no failed bind.
sqlite3_stmt *sq_stmt(struct sqlite_store *st, int id);

// Binds; a failure is recorded (the first one) and fails the next sq_step.
// Strings and blobs are borrowed until the statement is reset.
void sq_bind_i64(struct sqlite_store *st, sqlite3_stmt *s, int i, int64_t v);
// sq_stmt with parameters 1 and 2 bound: the pair most statements start
// with (an id and a time, a state or another id).
sqlite3_stmt *sq_stmt_pair(
    struct sqlite_store *st, int id, int64_t a, int64_t b);
void sq_bind_double(struct sqlite_store *st, sqlite3_stmt *s, int i, double v);
void sq_bind_text(
    struct sqlite_store *st, sqlite3_stmt *s, int i, const char *v);
// The first len bytes of v (len >= 1).
void sq_bind_text_len(
    struct sqlite_store *st, sqlite3_stmt *s, int i, const char *v, size_t len);
// NULL or "" binds SQL NULL.
void sq_bind_text_or_null(
    struct sqlite_store *st, sqlite3_stmt *s, int i, const char *v);
void sq_bind_blob(
    struct sqlite_store *st, sqlite3_stmt *s, int i, const void *p, size_t n);

// Steps statement id: a failed bind's code, or the failure store_hook_step
// injects, or sqlite3_step's result.
int sq_step(struct sqlite_store *st, int id);

// Resets statement id after its last step (the reset repeats the step's
// result, which the caller has already handled).
void sq_reset(struct sqlite_store *st, int id);

// Runs a statement that returns no rows; on failure sq_error(what).
int sq_exec(
    struct sqlite_store *st, int id, struct anvil_error *err, const char *what);

// sq_exec of an UPDATE or DELETE of one row; NOT_FOUND (err untouched)
// when it changed none.
int sq_update_one(
    struct sqlite_store *st, int id, struct anvil_error *err, const char *what);

// Runs a one-column id query; NOT_FOUND when it yields no row.
int sq_find_id(struct sqlite_store *st, int id, int64_t *out,
    struct anvil_error *err, const char *what);

// sq_find_id on statement id with its parameter 1 bound to v.
int sq_find_by_i64(struct sqlite_store *st, int id, int64_t v, int64_t *out,
    struct anvil_error *err, const char *what);
int sq_find_by_text(struct sqlite_store *st, int id, const char *v,
    int64_t *out, struct anvil_error *err, const char *what);

// Collects column 0 of a statement's rows as ids (*ids: free()).
int sq_read_ids(struct sqlite_store *st, int id, int64_t **ids, size_t *n,
    struct anvil_error *err, const char *what);

// Rows changed by the last statement.
int64_t sq_changes(struct sqlite_store *st);

// Copies of a text column ("" for NULL) and of a blob column with a NUL
// after it; NULL only when out of memory.
char    *sq_col_str(sqlite3_stmt *s, int i);
uint8_t *sq_col_blob(sqlite3_stmt *s, int i, size_t *len);

// Raises high-water mark key to next - 1, the highest id handed out.
int sq_raise_hwm(struct sqlite_store *st, const char *key, int64_t next,
    struct anvil_error *err);

// Counts one more commit for deferred sync when rows changed outside a
// transaction (after COMMIT or an autocommit write).
void sq_note_writes(struct sqlite_store *st);

// ---- store_schema.c ----

// Creates the schema in an empty database or migrates an older one.
int sq_migrate(struct sqlite_store *st, struct anvil_error *err);

// ---- store_jobs.c ----

// Columns read into a struct job by store_jobs.c, in this order.
#define JOB_COLS                                                          \
    "id, type, queue, payload, priority, state, attempt, max_attempts, "  \
    "result, error, created_at, started_at, finished_at, run_at, "        \
    "timeout_ms, lease_deadline, worker_id, idem_key, cancel_requested, " \
    "workflow_id, step, lease_ms, backoff_initial_ms, backoff_max_ms, "   \
    "backoff_multiplier, progress_percent, progress_message, "            \
    "concurrency_key, concurrency_limit"

// Columns of a workflow row, in the order store_flows.c reads them.
#define WF_COLS                                                          \
    "id, name, state, on_failure, created_at, finished_at, timeout_ms, " \
    "error, idem_key, n_steps, n_settled, n_succeeded, n_failed, "       \
    "retried_at"

// Columns of an event row, in the order store_events.c reads them.
#define EV_COLS                                                       \
    "seq, kind, at, job_id, workflow_id, step, type, queue, worker, " \
    "attempt, message, progress"

// Columns of a schedule row, in the order store_schedules.c reads and
// inserts them.
#define SCHED_COLS                                                         \
    "id, name, expr, tz, type, queue, payload, priority, max_attempts, "   \
    "backoff_initial_ms, backoff_max_ms, backoff_multiplier, timeout_ms, " \
    "lease_ms, overlap, catch_up, catch_up_limit, paused, next_fire_at, "  \
    "last_fire_at, last_job_id, fired, skipped, created_at, request_id, "  \
    "workflow"

// Reads the statement's JOB_COLS rows into a new array (job_array_free).
int sq_read_jobs(struct sqlite_store *st, int id, struct job **jobs, size_t *n,
    struct anvil_error *err, const char *what);

// Each concept's file fills its members of the backend's ops table (the
// functions behind store.h's calls of the same names stay static there).
void sq_jobs_ops(struct store_ops *o);      // store_jobs.c
void sq_flows_ops(struct store_ops *o);     // store_flows.c
void sq_tokens_ops(struct store_ops *o);    // store_tokens.c
void sq_events_ops(struct store_ops *o);    // store_events.c
void sq_retention_ops(struct store_ops *o); // store_retention.c
void sq_sync_ops(struct store_ops *o);      // store_sync.c
void sq_queues_ops(struct store_ops *o);    // store_queues.c
void sq_schedules_ops(struct store_ops *o); // store_schedules.c

// ---- store_sync.c ----

// Closes the -wal descriptor and frees the sync state (store closing).
void sq_sync_fini(struct sqlite_store *st);

// ---- for tests only ----

// The store's SQLite connection (a store opened by store_open), so a test
// can lower a limit (SQLITE_LIMIT_LENGTH, PRAGMA max_page_count) and see
// the store's answer to a real failure.
sqlite3 *store_sqlite_db(struct store *st);

#endif
