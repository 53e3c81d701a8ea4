// store_pg.h - the PostgreSQL backend of store.h, private to its files.
//
// The backend speaks to one PostgreSQL server through libpq, over one
// connection owned by the engine thread. It is split by concept, each file
// filling its part of the store_ops table that store_pg.c assembles:
//   store_pg.c         connection, parameters, prepared statements, error
//                      mapping, ids, transactions, the ops table
//   store_pg_sql.c     the SQL of every prepared statement
//   store_pg_schema.c  DDL, the schema_version table and migrations
//   store_pg_jobs.c    job rows
//   store_pg_flows.c   workflows, edges, a step's parents
//   store_pg_events.c  the event stream and the sweeps (retention)
//   store_pg_misc.c    API tokens, paused queues, rate limits, schedules
//   store_pg_merge.c   consecutive writes of one kind sent as one statement
// Names with the pg_ prefix belong to this backend and to no other file.
//
// Every statement is prepared once per connection (PQprepare) and run with
// PQexecPrepared: integers and text go as text parameters, BLOBs (payloads,
// results, token hashes, workflow templates) as binary bytea parameters,
// and every result comes back in binary form (pg_i64 and friends read it).
// Threads as in store.h: the engine thread calls everything; sync and
// needs_sync, which any thread may call, touch no connection state.
#ifndef SERVER_STORE_PG_H
#define SERVER_STORE_PG_H

#include "store.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>

enum pg_stmt_id {
    PG_JOB_INSERT,
    PG_JOB_BY_RID,
    PG_JOB_BY_RIDS,
    PG_JOB_BY_KEY,
    PG_JOB_GET,
    PG_JOB_LEASE,
    PG_JOB_LEASE_QUEUED,
    PG_JOB_FINISH,
    PG_JOB_FINISH_CHECKED,
    PG_JOB_REQUEUE,
    PG_JOB_MAKE_READY,
    PG_JOB_EXTEND,
    PG_JOB_CANCEL_REQ,
    PG_JOB_BRIEF,
    PG_JOB_BRIEF_CHECK,
    PG_JOB_LIST,
    PG_JOB_IDS,
    PG_SCAN_ACTIVE,
    PG_DEPTHS,
    PG_RUNNING_BY_WORKER,
    PG_JOB_RETRY,
    PG_JOB_PROGRESS,
    PG_WF_INSERT,
    PG_WF_BY_RID,
    PG_WF_BY_KEY,
    PG_WF_GET,
    PG_WF_STEPS,
    PG_WF_EDGES,
    PG_WF_LIST,
    PG_WF_SETTLE,
    PG_WF_FINISH,
    PG_WF_UNFINISHED,
    PG_WF_SCAN_ACTIVE,
    PG_WF_REOPEN,
    PG_EDGE_INSERT,
    PG_CHILDREN,
    PG_PARENT_RESULTS,
    PG_PARENT_DONE,
    PG_SWEEP_JOBS,
    PG_SWEEP_FLOWS,
    PG_SWEEP_FLOW_EDGES,
    PG_SWEEP_FLOW_STEPS,
    PG_SWEEP_FLOW,
    PG_META_HWM,
    PG_TOKEN_INSERT,
    PG_TOKEN_LIST,
    PG_TOKEN_REVOKE,
    PG_EVENT_INSERT,
    PG_EVENT_INSERT_MANY,
    PG_EVENTS_SCAN,
    PG_EVENTS_BY_JOB,
    PG_EVENTS_BY_FLOW,
    PG_EVENTS_BOUNDS,
    PG_SWEEP_EVENTS_SCAN,
    PG_SWEEP_EVENTS,
    PG_QUEUE_PAUSE,
    PG_QUEUE_RESUME,
    PG_QUEUES_PAUSED,
    PG_LIMIT_SET,
    PG_LIMIT_DELETE,
    PG_LIMIT_SAVE,
    PG_LIMITS,
    PG_LIMIT_GET,
    PG_SCHED_INSERT,
    PG_SCHED_GET,
    PG_SCHED_GET_NAME,
    PG_SCHED_LIST,
    PG_SCHED_UPDATE,
    PG_SCHED_DELETE,
    // The merged forms of writes (store_pg_merge.c, pg_merge_specs).
    PG_JOB_INSERT_MANY,
    PG_JOB_LEASE_QUEUED_MANY,
    PG_JOB_FINISH_MANY,
    PG_JOB_FINISH_CHECKED_MANY,
    PG_STMT_COUNT,
    // Transaction control (pg_control), after the prepared statements.
    PG_BEGIN = PG_STMT_COUNT,
    PG_COMMIT,
    PG_ROLLBACK,
    PG_SAVEPOINT,
    PG_RELEASE,
    PG_ROLLBACK_TO
};

// The SQL of statement i (store_pg_sql.c); its name on the server is
// "a<i>".
extern const char *const pg_stmt_sql[PG_STMT_COUNT];
// How a checked write begins (PG_CHECKED, store_pg_sql.c): the UPDATE
// follows.
#define PG_CHECKED_HEAD "WITH w AS ("

// The partial indexes' predicates, as in the SQLite backend (store_sqlite.h
// explains the numbers).
#define PG_JOBS_ACTIVE "state BETWEEN 2 AND 4"
#define PG_JOBS_FINAL "state >= 5 AND workflow_id IS NULL"
#define PG_FLOWS_FINAL "state >= 2"

// The high-water marks of ids in table meta (see store_pg.c).
#define PG_HWM_JOBS "job_id_hwm"
#define PG_HWM_FLOWS "workflow_id_hwm"

// A statement queued in the pipeline: what it does, for its error, and
// the savepoint epoch it was sent in (0: outside the open command's).
#define PG_QUEUE_MAX 256
#define PG_RID_SPAN 64
#define PG_BRIEFS 1024
#define PG_KEPT 4096
// A binary array parameter being built (store_pg_evbuf.c, pg_arr_*):
// PG_ARR_HEADER bytes left for its header, then its elements.
#define PG_ARR_HEADER 20 // ndim, flags, element type, length, lower bound
#define PG_MAX_PARAMS 30 // of a statement
struct pg_arr {
    char  *buf;
    size_t len, cap;
};
// Events collected into one INSERT (store_pg_evbuf.c): a column's values
// as one array each.
#define PG_EV_NCOLS 11
#define PG_EV_MAX 4096
struct pg_evbuf {
    int           n;
    struct pg_arr col[PG_EV_NCOLS];
};
struct pg_brief;
struct pg_kept_job;
#define PG_HELD_MAX 64
struct pg_held;
// Writes of one statement queued in a row, not sent yet
// (store_pg_merge.c): copies of their parameters, sent as one statement
// (its merged form) before anything else is sent.
#define PG_MERGE_MAX 128
struct pg_merge {
    int             sid; // the statement merged; -1: none
    int             n;
    int             epoch; // as note() tags a queued statement
    const char     *what;
    struct pg_held *rows;               // PG_MERGE_MAX
    struct pg_arr   col[PG_MAX_PARAMS]; // the arrays, built when sent
};
struct pg_queued {
    const char *what;
    int         epoch;
};

struct pg_store {
    struct store     base; // first: a struct store * is a struct pg_store *
    struct store_ops ops;  // base.ops points here
    PGconn          *conn;
    char             where[200]; // "host=... port=... dbname=..." for errors
    // Transaction control not sent yet (store_pg.c, "Round trips"): a
    // BEGIN, and a RELEASE of the last command's savepoint.
    bool begin_pending;
    bool release_pending;
    // The pipeline (store_pg_pipe.c): in pipeline mode, the statements
    // whose answers are not read yet, the open command's savepoint
    // (epoch counts them; cmd_open until its release) and a transaction
    // poisoned by a queued statement that failed.
    bool             piped;
    int              n_queued;
    struct pg_queued queued[PG_QUEUE_MAX];
    int              epoch;
    bool             cmd_open;
    bool             in_tx; // between store_begin and its end
    // Request ids [rid_lo, rid_lo + PG_RID_SPAN) and their jobs (0: none),
    // read at once for a SubmitJobs' items (ids R + i) and kept up to date
    // by this transaction's inserts; forgotten at every savepoint
    // rollback, transaction end and DELETE (store_pg_jobs.c).
    // The briefs of jobs leased (store_pg_brief.c), and what each
    // statement does to them: 0 nothing, 1 forgets the job $1, 2 all.
    struct pg_brief *briefs;
    int              n_briefs;
    char             brief_effect[PG_STMT_COUNT];
    // The rows of jobs inserted QUEUED, until leased (store_pg_lease.c).
    struct pg_kept_job *kept;
    int                 n_kept;
    struct pg_evbuf     evbuf; // events not sent yet (store_pg_evbuf.c)
    struct pg_merge     merge; // writes not sent yet (store_pg_merge.c)
    // Deferred sync (store_pg_sync.c): its own connection, the commits
    // counted and the count the last sync covered.
    char                *conninfo;
    atomic_bool          deferred;
    atomic_uint_fast64_t commits;
    PGconn              *sync_conn;
    pthread_mutex_t      sync_lock;
    uint64_t             synced;
    bool                 sync_failed;
    struct anvil_error   sync_err;
    // The open command's savepoint not sent yet and its writes held
    // (store_pg_pipe.c); sp_sent: it was sent.
    bool               sp_pending;
    bool               sp_sent;
    int                n_held;
    struct pg_held    *held;
    bool               rid_valid;
    int64_t            rid_lo;
    int64_t            rid_job[PG_RID_SPAN];
    bool               poisoned;
    struct anvil_error poison;
    // Sent right after each BEGIN: "" or "SELECT anvil_fence(...); "
    // (store_pg_fence.c).
    char fence[80];
    bool fenced; // a fence failed: this node is no longer the leader
    // Engine thread only: the next ids to hand out, and the rows the last
    // pg_exec changed.
    int64_t next_job_id;
    int64_t next_wf_id;
    int64_t changes;
};

static inline struct pg_store *
pg(struct store *st)
{
    return (struct pg_store *) st;
}

// ---- parameters: appended in order, $1 first ----

struct pg_params {
    int         n;
    const char *values[PG_MAX_PARAMS];
    int         lengths[PG_MAX_PARAMS];
    int         formats[PG_MAX_PARAMS];
    char        num[PG_MAX_PARAMS][32];
};

void pg_p_init(struct pg_params *p);
void pg_p_i64(struct pg_params *p, int64_t v);
void pg_p_double(struct pg_params *p, double v);
void pg_p_null(struct pg_params *p);
// Borrowed until the statement ran. NULL binds SQL NULL.
void pg_p_text(struct pg_params *p, const char *v);
// NULL or "" binds SQL NULL.
void pg_p_text_or_null(struct pg_params *p, const char *v);
// The first len bytes of v, as text.
void pg_p_text_len(struct pg_params *p, const char *v, size_t len);
// A C string as binary bytea (the text columns that take any bytes);
// NULL or "" binds SQL NULL.
void pg_p_bytes_or_null(struct pg_params *p, const char *v);
// Binary bytea; p NULL with n 0 is an empty value, not NULL.
void pg_p_blob(struct pg_params *p, const void *v, size_t n);

// A write kept to be sent later: its parameters, with copies of the
// values that p does not hold itself (bytes: free()).
struct pg_held {
    int              sid;
    const char      *what;
    struct pg_params p;
    char            *bytes;
};
// Fills h with sid, what and a copy of p (NULL: no parameters).
int pg_held_set(
    struct pg_held *h, int sid, const struct pg_params *p, const char *what);
void pg_held_free(struct pg_held *h);

// ---- running statements ----

// Runs statement sid with p (NULL: no parameters): ANVIL_OK and *out, the
// result (binary columns, the caller's to PQclear), or the error mapped
// into err (pg_error).
int pg_query(struct pg_store *st, int sid, const struct pg_params *p,
    PGresult **out, struct anvil_error *err, const char *what);

// Runs a statement that returns no rows that matter; st->changes receives
// how many rows it changed.
int pg_exec(struct pg_store *st, int sid, const struct pg_params *p,
    struct anvil_error *err, const char *what);

// pg_exec of an UPDATE or DELETE of one row; NOT_FOUND (err untouched)
// when it changed none.
int pg_update_one(struct pg_store *st, int sid, const struct pg_params *p,
    struct anvil_error *err, const char *what);

// Runs a one-column id query; NOT_FOUND (err untouched) when no row.
int pg_find_id(struct pg_store *st, int sid, const struct pg_params *p,
    int64_t *out, struct anvil_error *err, const char *what);

// Collects column 0 of a statement's rows as ids (*ids: free()).
int pg_read_ids(struct pg_store *st, int sid, const struct pg_params *p,
    int64_t **ids, size_t *n, struct anvil_error *err, const char *what);

// Runs sid and calls fn for each row as it arrives (single-row mode: a
// million rows are never held at once). fn's non-zero result stops the
// calls (the rest of the rows are read and dropped) and is returned with
// err set to "<what>: out of memory".
int pg_each_row(struct pg_store *st, int sid, const struct pg_params *p,
    int (*fn)(void *arg, const PGresult *r), void *arg, struct anvil_error *err,
    const char *what);

// Maps a failure (res: the failed result, or NULL for a failure to send)
// to the caller's error and logs it: a lost connection or a server
// shutting down is UNAVAILABLE naming the server, disk full (SQLSTATE
// 53100) RESOURCE_EXHAUSTED with "disk full", out of memory (53200)
// RESOURCE_EXHAUSTED, anything else INTERNAL with the server's message.
int pg_error(struct pg_store *st, const PGresult *res, struct anvil_error *err,
    const char *what);

// Runs SQL text (no parameters, several statements allowed) for DDL and
// transaction control.
int pg_simple(struct pg_store *st, const char *sql, struct anvil_error *err,
    const char *what);

// Runs transaction control statement id (PG_BEGIN...) as SQL text.
int pg_control(struct pg_store *st, int id, const char *sql,
    struct anvil_error *err, const char *what);

// ---- the pipeline (store_pg_pipe.c) ----

// Queues a write whose only answer is success (no row count): its
// failure is reported by a later call (see store_pg_pipe.c).
int pg_defer(struct pg_store *st, int sid, const struct pg_params *p,
    struct anvil_error *err, const char *what);

// pg_defer of sid standing in for statement seam (its failure seam,
// store_hook_step): a queued form of a statement that waits.
int pg_defer_as(struct pg_store *st, int sid, int seam,
    const struct pg_params *p, struct anvil_error *err, const char *what);

// Queues SQL text without parameters (one statement); own: it belongs
// to the open command's savepoint.
int pg_pipe_sql(struct pg_store *st, const char *sql, bool own,
    struct anvil_error *err, const char *what);

// Queues the BEGIN not sent yet, if there is one.
int pg_pipe_begin(struct pg_store *st, struct anvil_error *err);

// Sends SQL text like pg_pipe_send, to be read by pg_pipe_sync(out).
int pg_pipe_sql_send(struct pg_store *st, const char *sql,
    struct anvil_error *err, const char *what);

// Sends statement sid (after the BEGIN not sent yet) without noting it:
// the caller reads its answer with pg_pipe_sync(out).
int pg_pipe_send(struct pg_store *st, int sid, const struct pg_params *p,
    struct anvil_error *err, const char *what);

// Sends everything queued and reads the answers; out (or NULL): the last
// statement sent by pg_pipe_send, the caller's to PQclear.
int pg_pipe_sync(struct pg_store *st, PGresult **out, struct anvil_error *err,
    const char *what);

// Reads every queued answer and leaves pipeline mode (before a statement
// run the plain way). discard_own: a failure of the open command's own
// statements is no error (it is being rolled back).
int pg_pipe_end(struct pg_store *st, bool discard_own, struct anvil_error *err,
    const char *what);

// The poisoned transaction's error, or ANVIL_OK.
int pg_pipe_check(struct pg_store *st, struct anvil_error *err);

// Forgets the pipeline's state (a new transaction, a new connection).
void pg_pipe_reset(struct pg_store *st);

// ---- the leased jobs' briefs (store_pg_brief.c) ----

int  pg_briefs_open(struct pg_store *st);
void pg_briefs_close(struct pg_store *st);
// Forgets every brief (a rollback, a new connection).
void pg_briefs_forget(struct pg_store *st);
// Statement sid with p is about to run: forgets what it may change.
void pg_brief_written(struct pg_store *st, int sid, const struct pg_params *p);
// Keeps the brief of job j, just leased with token_id.
void pg_brief_leased(
    struct pg_store *st, const struct job *j, int64_t token_id);
// *hit and *b when the job's brief is kept (its check queued).
int pg_brief_cached(struct pg_store *st, int64_t id, struct store_job_brief *b,
    struct anvil_error *err, bool *hit);

// ---- events collected into one INSERT (store_pg_evbuf.c) ----

// Adds an event (its message cut to message_len bytes).
int pg_evbuf_add(struct pg_store *st, const struct store_new_event *ev,
    size_t message_len, struct anvil_error *err);
// Queues the INSERT of the events added, if any.
int  pg_evbuf_send(struct pg_store *st, struct anvil_error *err);
void pg_evbuf_drop(struct pg_store *st); // forgets them (a rollback)
void pg_evbuf_free(struct pg_store *st);

// Binary array parameters (store_pg_evbuf.c): pg_arr_start, one element
// or more (null: an SQL NULL element), then pg_arr_end with the element
// type and count fills the header. Non-zero: out of memory.
void pg_arr_start(struct pg_arr *a);
int  pg_arr_i64(struct pg_arr *a, int64_t v, bool null);
int  pg_arr_f64(struct pg_arr *a, double v, bool null);
int  pg_arr_bytes(struct pg_arr *a, const char *v, size_t n, bool null);
void pg_arr_end(struct pg_arr *a, unsigned oid, int n);
void pg_arr_free(struct pg_arr *a);

// ---- writes merged into one statement (store_pg_merge.c) ----

// What each merged statement stands for: single, the statement merged;
// kinds, the element type of each parameter's array: 'i' int8, 'f'
// float8, 't' text, 'b' bytea; by_id, whether $1 names the job an UPDATE
// changes (store_pg_sql.c).
struct pg_merge_spec {
    int         single;
    int         many;
    const char *kinds;
    bool        by_id;
};
extern const struct pg_merge_spec pg_merge_specs[];
extern const int                  pg_merge_nspecs;

int  pg_merge_open(struct pg_store *st);
void pg_merge_close(struct pg_store *st);
// Queues a write of the transaction (as pg_pipe_send and note() would),
// merged with the writes of the same statement queued just before it.
int pg_merge_queue(struct pg_store *st, int sid, const struct pg_params *p,
    int epoch, struct anvil_error *err, const char *what);
// Sends the writes merged, if any; before anything else is sent.
int  pg_merge_send(struct pg_store *st, struct anvil_error *err);
void pg_merge_drop(struct pg_store *st); // forgets them (a rollback)

// The open command's savepoint: opened (queued) now, before a read, with
// the writes held; released (the writes held queued without one).
int pg_cmd_protect(struct pg_store *st, struct anvil_error *err);
int pg_cmd_release(struct pg_store *st, struct anvil_error *err);
// A write of the open command: held while its savepoint is not sent,
// else queued.
int  pg_hold_or_queue(struct pg_store *st, int sid, const struct pg_params *p,
     struct anvil_error *err, const char *what);
void pg_hold_drop(struct pg_store *st);
// Whether the last write held is sid of job id ($1).
bool pg_hold_last_is(struct pg_store *st, int sid, int64_t id);
// Replaces that write with sid, whose parameters are front's followed by
// the held one's but its first.
int pg_hold_fold(struct pg_store *st, int sid, const struct pg_params *front,
    struct anvil_error *err, const char *what);
int pg_hold_open(struct pg_store *st);

// The savepoint epoch a statement queued now is tagged with (own: it
// belongs to the open command), and the noting of its answer to read.
int pg_pipe_epoch(const struct pg_store *st, bool own);
int pg_pipe_note(
    struct pg_store *st, const char *what, int epoch, struct anvil_error *err);
// pg_pipe_send, noted as queued (no failure seam; pg_defer has one).
int pg_pipe_queue(struct pg_store *st, int sid, const struct pg_params *p,
    struct anvil_error *err, const char *what);

// ---- deferred sync (store_pg_sync.c) ----

int  pg_sync_set(struct pg_store *st, bool on, struct anvil_error *err);
bool pg_sync_needed(const struct pg_store *st);
void pg_sync_committed(struct pg_store *st); // after each COMMIT
int  pg_sync(struct pg_store *st, struct anvil_error *err);
void pg_sync_close(struct pg_store *st);

// ---- the rows of jobs inserted, until leased (store_pg_lease.c) ----

int  pg_kept_open(struct pg_store *st);
void pg_kept_close(struct pg_store *st);
void pg_kept_forget_all(struct pg_store *st);
void pg_kept_forget(struct pg_store *st, int64_t id);
// Job id was just inserted as nj.
void pg_kept_inserted(
    struct pg_store *st, const struct store_new_job *nj, int64_t id);
// *hit and *out when job id is kept and leasable as store_job_lease_key
// asks (its UPDATE queued).
int pg_kept_lease(struct pg_store *st, int64_t id, const char *key,
    const char *worker, int64_t token_id, int64_t now, int64_t default_lease,
    struct job *out, struct anvil_error *err, bool *hit);

// The failure seam (store_hook_step, store.h) for statement sid.
int pg_injected(int sid, struct anvil_error *err, const char *what);

// ---- reading binary result columns (NULL reads as 0 / "") ----

bool    pg_null(const PGresult *r, int row, int col);
int64_t pg_i64(const PGresult *r, int row, int col);
double  pg_f64(const PGresult *r, int row, int col);
// Copies; NULL only when out of memory.
char *pg_str(const PGresult *r, int row, int col);
// A copy with a NUL after it; NULL only when out of memory.
uint8_t *pg_blob(const PGresult *r, int row, int col, size_t *len);

// Raises high-water mark key to next - 1, the highest id handed out.
int pg_raise_hwm(struct pg_store *st, const char *key, int64_t next,
    struct anvil_error *err);

// ---- store_pg_schema.c ----

// Creates the schema in an empty database or migrates an older one; a
// newer one is FAILED_PRECONDITION.
int pg_migrate(struct pg_store *st, struct anvil_error *err);

// ---- store_pg_jobs.c ----

// Columns read into a struct job, in this order (as JOB_COLS in
// store_sqlite.h).
#define PG_JOB_COLS                                                       \
    "id, type, queue, payload, priority, state, attempt, max_attempts, "  \
    "result, error, created_at, started_at, finished_at, run_at, "        \
    "timeout_ms, lease_deadline, worker_id, idem_key, cancel_requested, " \
    "workflow_id, step, lease_ms, backoff_initial_ms, backoff_max_ms, "   \
    "backoff_multiplier, progress_percent, progress_message, "            \
    "concurrency_key, concurrency_limit"

#define PG_WF_COLS                                                       \
    "id, name, state, on_failure, created_at, finished_at, timeout_ms, " \
    "error, idem_key, n_steps, n_settled, n_succeeded, n_failed, "       \
    "retried_at"

#define PG_EV_COLS                                                    \
    "seq, kind, at, job_id, workflow_id, step, type, queue, worker, " \
    "attempt, message, progress"

#define PG_SCHED_COLS                                                      \
    "id, name, expr, tz, type, queue, payload, priority, max_attempts, "   \
    "backoff_initial_ms, backoff_max_ms, backoff_multiplier, timeout_ms, " \
    "lease_ms, overlap, catch_up, catch_up_limit, paused, next_fire_at, "  \
    "last_fire_at, last_job_id, fired, skipped, created_at, request_id, "  \
    "workflow"

// Reads the PG_JOB_COLS rows of statement sid into a new array
// (job_array_free).
int pg_read_jobs(struct pg_store *st, int sid, const struct pg_params *p,
    struct job **jobs, size_t *n, struct anvil_error *err, const char *what);

void pg_jobs_ops(struct store_ops *o);   // store_pg_jobs.c
void pg_flows_ops(struct store_ops *o);  // store_pg_flows.c
void pg_events_ops(struct store_ops *o); // store_pg_events.c
void pg_misc_ops(struct store_ops *o);   // store_pg_misc.c

#endif
