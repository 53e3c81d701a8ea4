// store.h - anvil's persistence: jobs, workflows, tokens, retention and
// transactions, behind an interface a backend fills (struct store_ops).
//
// The engine calls only the store_* functions below; each dispatches through
// the ops of the opened store. store_open() opens the SQLite backend
// (store_sqlite.h and the store_*.c files beside it). Another backend (say
// PostgreSQL) adds its own open function, which fills every member of a
// struct store_ops and returns its own struct whose first member is a
// struct store pointing at those ops; the engine and the store_* calls do
// not change; store_open_pg() opens the PostgreSQL backend (store_pg.h).
// What every backend must guarantee:
//
// - Threads: one store is owned by the engine thread, the only caller of
//   everything (tests call it from their own single thread), except
//   store_sync() and store_needs_sync(), which any thread may call at any
//   time, also while the engine thread runs the next transaction.
// - Transactions: store_begin() opens the batch's transaction and
//   store_commit() makes it durable (or, with deferred sync on, durable at
//   the next store_sync()). Inside it store_savepoint() opens one command's
//   savepoint (never nested); store_release() keeps its writes in the
//   transaction; store_rollback_savepoint() undoes them and closes it.
//   When that fails it returns an error, and the caller must roll back the
//   whole transaction, never commit it. store_rollback() undoes the
//   transaction, a no-op when none is open (a backend whose failure
//   already ended the transaction answers OK). After any failed write the
//   caller rolls back (savepoint or transaction): a backend need not undo
//   a failed call's partial writes itself.
// - Ids: job and workflow ids are positive, increasing, and never handed
//   out twice, not even after retention deleted the newest rows and the
//   store was reopened; an id taken by an insert that was rolled back is
//   skipped, not reused. Token ids are never reused either.
// - Errors: every function returns 0 (ANVIL_OK) or a code with err set
//   (except where ANVIL_NOT_FOUND is documented as leaving err untouched):
//   NOT_FOUND and ALREADY_EXISTS as documented per call; disk full is
//   RESOURCE_EXHAUSTED with "disk full" in the message (out of memory is
//   RESOURCE_EXHAUSTED too); FAILED_PRECONDITION for a schema newer than
//   the server; any other failure INTERNAL with a sentence naming what was
//   being done. No backend function exits or aborts the process.
// - Deferred sync is optional: a backend without it answers
//   store_set_deferred_sync() OK without changing anything,
//   store_needs_sync() false and store_sync() OK.
// - Results are copied out: strings and arrays a call returns are the
//   caller's (freed as each call says); arguments are borrowed for the
//   call only.
//
// Failure seams for tests (store_hook_step, store_stmt_sql,
// store_hook_fdatasync) act on the SQLite backend, and store_hook_step on
// the PostgreSQL backend too; see the end of this file.
#ifndef SERVER_STORE_H
#define SERVER_STORE_H

#include "job.h"

#include <anvil/anvil.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION 12

struct store;
struct store_new_job;
struct store_job_brief;
struct store_list_filter;
struct store_depth;
struct store_new_workflow;
struct store_wf_counts;
struct store_token;
struct store_new_event;
struct store_event;
struct store_event_filter;
struct store_schedule;
struct store_queue_limit;

// A backend's functions, one per store_* call of the same name (the
// store_* comments below are their contracts). Every member is set.
// store_job_lease, store_depths_free, store_tokens_free,
// store_names_free, store_schedule_fini and store_schedules_free need none.
struct store_ops {
    const char *name; // "sqlite"
    void (*close)(struct store *st);
    int (*set_deferred_sync)(
        struct store *st, bool on, struct anvil_error *err);
    bool (*needs_sync)(const struct store *st);
    int (*sync)(struct store *st, struct anvil_error *err);
    int (*begin)(struct store *st, struct anvil_error *err);
    int (*commit)(struct store *st, struct anvil_error *err);
    int (*rollback)(struct store *st, struct anvil_error *err);
    int (*savepoint)(struct store *st, struct anvil_error *err);
    int (*release)(struct store *st, struct anvil_error *err);
    int (*rollback_savepoint)(struct store *st, struct anvil_error *err);
    int (*job_insert)(struct store *st, const struct store_new_job *nj,
        int64_t *id, struct anvil_error *err);
    int (*job_by_request)(
        struct store *st, uint64_t rid, int64_t *id, struct anvil_error *err);
    int (*job_by_key)(struct store *st, const char *key, int64_t *id,
        struct anvil_error *err);
    int (*job_get)(
        struct store *st, int64_t id, struct job *out, struct anvil_error *err);
    int (*job_lease_key)(struct store *st, int64_t id, const char *key,
        const char *worker, int64_t token_id, int64_t now,
        int64_t default_lease, struct job *out, struct anvil_error *err);
    int (*job_finish)(struct store *st, int64_t id, int state,
        const uint8_t *result, size_t result_len, const char *error,
        int64_t now, struct anvil_error *err);
    int (*job_requeue)(struct store *st, int64_t id, int state, int64_t run_at,
        const char *error, struct anvil_error *err);
    int (*job_make_ready)(
        struct store *st, int64_t id, struct anvil_error *err);
    int (*job_extend)(struct store *st, int64_t id, int64_t deadline,
        struct anvil_error *err);
    int (*job_request_cancel)(
        struct store *st, int64_t id, struct anvil_error *err);
    int (*job_progress)(struct store *st, int64_t id, int32_t percent,
        const char *message, bool *changed, struct anvil_error *err);
    int (*job_brief)(struct store *st, int64_t id, struct store_job_brief *b,
        struct anvil_error *err);
    int (*job_list)(struct store *st, const struct store_list_filter *f,
        struct job **jobs, size_t *n, struct anvil_error *err);
    int (*job_ids)(struct store *st, const struct store_list_filter *f,
        bool plain_only, int64_t **ids, size_t *n, struct anvil_error *err);
    int (*scan_active)(struct store *st,
        int (*fn)(void *arg, const struct job *j), void *arg,
        struct anvil_error *err);
    int (*depths)(struct store *st, struct store_depth **out, size_t *n,
        uint64_t *total, struct anvil_error *err);
    int (*running_by_worker)(struct store *st,
        void (*fn)(void *arg, const char *worker, uint32_t running), void *arg,
        struct anvil_error *err);
    int (*workflow_insert)(struct store *st,
        const struct store_new_workflow *nw, int64_t *id,
        struct anvil_error *err);
    int (*workflow_by_request)(
        struct store *st, uint64_t rid, int64_t *id, struct anvil_error *err);
    int (*workflow_by_key)(struct store *st, const char *key, int64_t *id,
        struct anvil_error *err);
    int (*edge_insert)(struct store *st, int64_t parent, int64_t child,
        struct anvil_error *err);
    int (*workflow_get)(struct store *st, int64_t id, bool with_steps,
        struct workflow *out, struct anvil_error *err);
    int (*workflow_list)(struct store *st, const struct store_list_filter *f,
        struct workflow **out, size_t *n, struct anvil_error *err);
    int (*workflow_settle)(struct store *st, int64_t id, bool succeeded,
        bool failed, struct store_wf_counts *c, struct anvil_error *err);
    int (*workflow_finish)(struct store *st, int64_t id, int state,
        const char *error, int64_t now, struct anvil_error *err);
    int (*workflow_unfinished)(struct store *st, int64_t id, int64_t **ids,
        size_t *n, struct anvil_error *err);
    int (*workflow_scan_active)(struct store *st,
        int (*fn)(void *arg, int64_t id, int64_t deadline), void *arg,
        struct anvil_error *err);
    int (*job_children)(struct store *st, int64_t parent, int64_t **ids,
        size_t *n, struct anvil_error *err);
    int (*job_parent_results)(struct store *st, int64_t child,
        struct parent_result **out, size_t *n, struct anvil_error *err);
    int (*job_parent_done)(struct store *st, int64_t child, uint32_t *pending,
        struct anvil_error *err);
    int (*sweep_jobs)(struct store *st, int64_t before, int limit, int *deleted,
        struct anvil_error *err);
    int (*sweep_workflows)(struct store *st, int64_t before, int limit,
        int *deleted, struct anvil_error *err);
    int (*token_insert)(struct store *st, const char *name, int role,
        const uint8_t *hash, size_t hash_len, int64_t created_at,
        int64_t expires_at, int64_t *id, struct anvil_error *err);
    int (*token_list)(struct store *st, struct store_token **out, size_t *n,
        struct anvil_error *err);
    int (*token_revoke)(
        struct store *st, int64_t id, int64_t now, struct anvil_error *err);
    int (*job_retry)(struct store *st, int64_t id, int state,
        uint32_t pending_parents, uint32_t max_attempts,
        struct anvil_error *err);
    int (*workflow_reopen)(
        struct store *st, int64_t id, int64_t now, struct anvil_error *err);
    int (*event_insert)(struct store *st, const struct store_new_event *ev,
        uint64_t *seq, struct anvil_error *err);
    // Optional (NULL: event_insert): store_event_append.
    int (*event_append)(struct store *st, const struct store_new_event *ev,
        struct anvil_error *err);
    int (*events_read)(struct store *st, const struct store_event_filter *f,
        struct store_event **out, size_t *n, uint64_t *scanned_to,
        struct anvil_error *err);
    int (*events_bounds)(struct store *st, uint64_t *first, uint64_t *last,
        struct anvil_error *err);
    int (*sweep_events)(struct store *st, int64_t before, uint64_t below_seq,
        int limit, int *deleted, struct anvil_error *err);
    int (*queue_set_paused)(struct store *st, const char *queue, bool paused,
        int64_t now, bool *changed, struct anvil_error *err);
    int (*queues_paused)(
        struct store *st, char ***names, size_t *n, struct anvil_error *err);
    int (*queue_limit_set)(struct store *st, const struct store_queue_limit *l,
        struct anvil_error *err);
    int (*queue_limit_save)(struct store *st, const char *queue, double tokens,
        int64_t at, struct anvil_error *err);
    int (*queue_limit_get)(struct store *st, const char *queue,
        struct store_queue_limit *out, struct anvil_error *err);
    int (*queue_limits)(struct store *st, struct store_queue_limit **out,
        size_t *n, struct anvil_error *err);
    int (*schedule_insert)(struct store *st, const struct store_schedule *s,
        int64_t *id, struct anvil_error *err);
    int (*schedule_get)(struct store *st, int64_t id, const char *name,
        struct store_schedule *out, struct anvil_error *err);
    int (*schedule_list)(struct store *st, struct store_schedule **out,
        size_t *n, struct anvil_error *err);
    int (*schedule_update)(struct store *st, const struct store_schedule *s,
        struct anvil_error *err);
    int (*schedule_delete)(
        struct store *st, int64_t id, struct anvil_error *err);
};

// The head of every backend's store: its ops. A backend embeds it as the
// first member of its own struct.
struct store {
    const struct store_ops *ops;
};

// Opens (creating or migrating) the SQLite database at path. synchronous is
// SQLite's PRAGMA synchronous (2 FULL, 1 NORMAL). *out is the caller's.
int store_open(const char *path, int synchronous, struct store **out,
    struct anvil_error *err);

// Opens (creating or migrating) the schema in the PostgreSQL database that
// conninfo names (any libpq connection string or postgresql:// URI). A
// server that cannot be reached is UNAVAILABLE, naming it. Commits are as
// durable as the server's synchronous_commit makes them (store_pg.c).
// *out is the caller's.
int store_open_pg(
    const char *conninfo, struct store **out, struct anvil_error *err);

// Fences every later transaction of a PostgreSQL store with the leader
// lease of epoch (leader.h): each starts with anvil_fence(epoch, ttl_ms),
// and fails UNAVAILABLE once another node holds the lease; after such a
// failure every transaction fails UNAVAILABLE until the next call here.
// Between transactions; a no-op for another backend.
void store_pg_fence(struct store *st, int64_t epoch, int64_t ttl_ms);

// Closes the database; NULL is ignored. Call it after every thread that
// calls store_sync() has stopped.
void store_close(struct store *st);

// Deferred sync, opt-in (the engine overlaps the fsync with its next
// batch). On a store opened FULL, on = true runs SQLite at NORMAL, where
// COMMIT writes the WAL without fsync, and makes store_sync() the fsync;
// on = false goes back to FULL (syncing first). A no-op on a store opened
// NORMAL or OFF, and where deferring would be less durable than FULL (no
// power-safe overwrite) or has no WAL file to sync (":memory:"): the store
// stays FULL and store_needs_sync() false. Engine thread, outside a
// transaction (else FAILED_PRECONDITION); INTERNAL if the -wal file cannot
// be opened. On any failure the store stays as it was and remains usable.
int store_set_deferred_sync(struct store *st, bool on, struct anvil_error *err);

// True when commits are durable only after store_sync() (FULL, deferred).
bool store_needs_sync(const struct store *st);

// Makes every transaction committed before the call durable, as
// synchronous=FULL's COMMIT would have (the argument is in store.c):
// fdatasync() of the -wal file. Returns at once when nothing was committed
// since the last sync, or when the store does not defer its sync. Any
// thread, also while the engine thread runs the next transaction. After a
// failure (INTERNAL) every later call fails too: the data may be lost and
// only a restart can tell.
int store_sync(struct store *st, struct anvil_error *err);

// Transactions: one per engine batch, a savepoint per command inside it.
// store_rollback() is a no-op outside a transaction. A failed
// store_rollback_savepoint() leaves the savepoint's writes in the open
// transaction: the caller must then roll back the whole transaction, never
// commit it.
int store_begin(struct store *st, struct anvil_error *err);
int store_commit(struct store *st, struct anvil_error *err);
int store_rollback(struct store *st, struct anvil_error *err);
int store_savepoint(struct store *st, struct anvil_error *err);
int store_release(struct store *st, struct anvil_error *err);
int store_rollback_savepoint(struct store *st, struct anvil_error *err);

// A new job's fields. Strings are borrowed for the call.
struct store_new_job {
    const char         *type;
    const char         *queue;
    const uint8_t      *payload;
    size_t              payload_len;
    int32_t             priority;
    int                 state; // QUEUED or SCHEDULED
    struct retry_policy retry; // resolved: no 0 fields
    int64_t             created_at;
    int64_t             run_at;
    int64_t             timeout_ms;
    int64_t             lease_ms;
    const char         *idem_key;          // NULL = none
    uint64_t            request_id;        // 0 = none
    int64_t             workflow_id;       // 0 = a plain job
    const char         *step;              // with workflow_id
    uint32_t            pending_parents;   // parents yet to succeed (PENDING)
    const char         *concurrency_key;   // NULL = none
    uint32_t            concurrency_limit; // with concurrency_key
};

// Inserts a job; *id receives its id.
int store_job_insert(struct store *st, const struct store_new_job *nj,
    int64_t *id, struct anvil_error *err);

// Finds the job created by request id rid or idempotency key; ANVIL_OK and
// *id, or ANVIL_NOT_FOUND (err untouched).
int store_job_by_request(
    struct store *st, uint64_t rid, int64_t *id, struct anvil_error *err);
int store_job_by_key(
    struct store *st, const char *key, int64_t *id, struct anvil_error *err);

// Reads a whole job into *out (caller job_fini's it). NOT_FOUND if absent.
int store_job_get(
    struct store *st, int64_t id, struct job *out, struct anvil_error *err);

// QUEUED -> RUNNING: attempt+1, leased to worker until now + the job's
// lease_ms (default_lease when it has none). Fills *out
// with the leased job. NOT_FOUND if the job is no longer QUEUED.
// token_id is the caller's API token (0 without auth): only it may report
// on the lease.
int store_job_lease(struct store *st, int64_t id, const char *worker,
    int64_t token_id, int64_t now, int64_t default_lease, struct job *out,
    struct anvil_error *err);

// The same, leasing only if the job's "queue\x1ftype" is key (the ready
// queue it was taken from); otherwise NOT_FOUND. (Since schema version 5 the
// id of a rolled-back insert is never reused, so a stale ready-queue entry
// finds no row at all; the key check stays as a second guard.)
int store_job_lease_key(struct store *st, int64_t id, const char *key,
    const char *worker, int64_t token_id, int64_t now, int64_t default_lease,
    struct job *out, struct anvil_error *err);

// Sets a final state (SUCCEEDED, FAILED, CANCELED) with result or error.
int store_job_finish(struct store *st, int64_t id, int state,
    const uint8_t *result, size_t result_len, const char *error, int64_t now,
    struct anvil_error *err);

// Back to waiting after a failed attempt or a delay: state QUEUED or
// SCHEDULED, earliest start run_at, last error kept.
int store_job_requeue(struct store *st, int64_t id, int state, int64_t run_at,
    const char *error, struct anvil_error *err);

// SCHEDULED or PENDING -> QUEUED. NOT_FOUND if it was neither.
int store_job_make_ready(struct store *st, int64_t id, struct anvil_error *err);

int store_job_extend(
    struct store *st, int64_t id, int64_t deadline, struct anvil_error *err);
int store_job_request_cancel(
    struct store *st, int64_t id, struct anvil_error *err);

// Records the progress of job id's running attempt (percent 0..100,
// message UTF-8, borrowed; NULL = ""). *changed is false when the job
// already held exactly this progress (nothing is written) or does not
// exist. A lease (store_job_lease) clears it; a final state keeps it.
int store_job_progress(struct store *st, int64_t id, int32_t percent,
    const char *message, bool *changed, struct anvil_error *err);

// The fields the engine checks before a transition.
// A queue or type name copied into a struct (valid names are at most 128
// bytes).
#define STORE_LABEL_LEN 129

struct store_job_brief {
    int                 state;
    uint32_t            attempt;
    struct retry_policy retry;
    int64_t             lease_deadline;
    int64_t             started_at;
    int64_t             timeout_ms;
    int64_t             lease_ms;
    int64_t             run_at;
    int32_t             priority;
    bool                cancel_requested;
    int64_t             workflow_id;
    int64_t             lease_token; // the API token that holds the lease
    char                queue[STORE_LABEL_LEN];
    char                type[STORE_LABEL_LEN];
    char                step[STORE_LABEL_LEN];            // "" for a plain job
    char                concurrency_key[STORE_LABEL_LEN]; // "" = none
    uint32_t            concurrency_limit;
};
int store_job_brief(struct store *st, int64_t id, struct store_job_brief *b,
    struct anvil_error *err);

struct store_list_filter {
    int         state;     // 0 = any
    const char *type;      // NULL = any
    const char *queue;     // NULL = any
    int64_t     before_id; // 0 = from the newest
    uint32_t    limit;
    int64_t     since; // jobs only: created at or after (epoch ms); 0 = any
    int64_t     until; // jobs only: created before (epoch ms); 0 = any
};

// Newest first. *jobs is an array of *n jobs (job_array_free).
int store_job_list(struct store *st, const struct store_list_filter *f,
    struct job **jobs, size_t *n, struct anvil_error *err);

// The ids of the jobs store_job_list would list for f (f->state set),
// newest first, in *ids (free(); NULL when *n is 0); plain_only leaves
// workflow steps out.
int store_job_ids(struct store *st, const struct store_list_filter *f,
    bool plain_only, int64_t **ids, size_t *n, struct anvil_error *err);

// Calls fn for each job in state SCHEDULED, QUEUED or RUNNING, by state
// and oldest first within a state (the active index's order: a million
// jobs need no sort), to rebuild the engine's memory on start. The struct
// job passed holds id, type, queue, priority, state, attempt, run_at,
// lease_deadline, started_at, timeout_ms, concurrency_key ("" = none) and
// concurrency_limit; it is valid for the call only.
int store_scan_active(struct store *st,
    int (*fn)(void *arg, const struct job *j), void *arg,
    struct anvil_error *err);

struct store_depth {
    char    *queue;
    char    *type;
    uint64_t queued;
    uint64_t running;
    uint64_t scheduled;
    bool     no_worker; // filled by the engine from its registry
    bool     paused;    // filled by the engine: the queue is paused
};

// Queue depths per (queue, type), and in *total the highest job id handed
// out: the number of jobs ever created (ids of rolled-back inserts count).
int  store_depths(struct store *st, struct store_depth **out, size_t *n,
     uint64_t *total, struct anvil_error *err);
void store_depths_free(struct store_depth *d, size_t n);

// ---- workflows ----

struct store_new_workflow {
    const char *name;
    int         on_failure;
    int64_t     created_at;
    int64_t     timeout_ms;
    const char *idem_key;   // NULL = none
    uint64_t    request_id; // 0 = none
    uint32_t    n_steps;
};

int store_workflow_insert(struct store *st, const struct store_new_workflow *nw,
    int64_t *id, struct anvil_error *err);
int store_workflow_by_request(
    struct store *st, uint64_t rid, int64_t *id, struct anvil_error *err);
int store_workflow_by_key(
    struct store *st, const char *key, int64_t *id, struct anvil_error *err);

// Records that child runs after parent.
int store_edge_insert(
    struct store *st, int64_t parent, int64_t child, struct anvil_error *err);

// Reads a workflow (caller workflow_fini's it); with_steps also reads every
// step, in submission order, with its parents' names in `after`.
int store_workflow_get(struct store *st, int64_t id, bool with_steps,
    struct workflow *out, struct anvil_error *err);

// Newest first, without steps. f->type filters by workflow name.
int store_workflow_list(struct store *st, const struct store_list_filter *f,
    struct workflow **out, size_t *n, struct anvil_error *err);

struct store_wf_counts {
    int      state;
    int      on_failure;
    uint32_t n_steps;
    uint32_t n_settled;
    uint32_t n_succeeded;
    uint32_t n_failed;
};

// Counts one more step as settled (final); returns the counts after.
int store_workflow_settle(struct store *st, int64_t id, bool succeeded,
    bool failed, struct store_wf_counts *c, struct anvil_error *err);

// RUNNING -> state. NOT_FOUND if the workflow was no longer RUNNING.
int store_workflow_finish(struct store *st, int64_t id, int state,
    const char *error, int64_t now, struct anvil_error *err);

// Ids of the steps not yet in a final state, oldest first (free()).
int store_workflow_unfinished(struct store *st, int64_t id, int64_t **ids,
    size_t *n, struct anvil_error *err);

// Calls fn for each RUNNING workflow with a timeout, with its deadline.
int store_workflow_scan_active(struct store *st,
    int (*fn)(void *arg, int64_t id, int64_t deadline), void *arg,
    struct anvil_error *err);

// The steps that run after parent (free()).
int store_job_children(struct store *st, int64_t parent, int64_t **ids,
    size_t *n, struct anvil_error *err);

// The parents' names and results of a step, for its lease.
int store_job_parent_results(struct store *st, int64_t child,
    struct parent_result **out, size_t *n, struct anvil_error *err);

// One more parent of a PENDING step succeeded; *pending receives how many
// remain. NOT_FOUND if the step is not PENDING.
int store_job_parent_done(struct store *st, int64_t child, uint32_t *pending,
    struct anvil_error *err);

// Retention: deletes up to limit finished plain jobs / settled workflows
// (with their steps) that finished before `before`; *deleted says how many.
int store_sweep_jobs(struct store *st, int64_t before, int limit, int *deleted,
    struct anvil_error *err);
int store_sweep_workflows(struct store *st, int64_t before, int limit,
    int *deleted, struct anvil_error *err);

// Calls fn with each worker that holds RUNNING jobs and how many.
int store_running_by_worker(struct store *st,
    void (*fn)(void *arg, const char *worker, uint32_t running), void *arg,
    struct anvil_error *err);

// ---- tokens ----

struct store_token {
    int64_t id;
    char   *name;
    int     role;
    uint8_t hash[32];
    int64_t created_at;
    int64_t expires_at; // 0 = never
    int64_t revoked_at; // 0 = not revoked
};

int  store_token_insert(struct store *st, const char *name, int role,
     const uint8_t *hash, size_t hash_len, int64_t created_at,
     int64_t expires_at, int64_t *id, struct anvil_error *err);
int  store_token_list(struct store *st, struct store_token **out, size_t *n,
     struct anvil_error *err);
void store_tokens_free(struct store_token *t, size_t n);
// NOT_FOUND if there is no such token or it was already revoked.
int store_token_revoke(
    struct store *st, int64_t id, int64_t now, struct anvil_error *err);

// ---- retrying ----

// A FAILED or CANCELED job (or workflow step) waits again: state QUEUED or
// PENDING (pending_parents parents yet to succeed), max_attempts as given
// (the caller adds the fresh budget to the attempts taken), attempt and
// the last error kept; result, finished_at, the lease, worker_id and
// cancel_requested cleared. NOT_FOUND if the job is in neither state.
int store_job_retry(struct store *st, int64_t id, int state,
    uint32_t pending_parents, uint32_t max_attempts, struct anvil_error *err);

// A FAILED or CANCELED workflow is RUNNING again: error and finished_at
// cleared, n_settled = n_succeeded, n_failed = 0, and its timeout counted
// from now (store_workflow_scan_active's deadline is then now +
// timeout_ms). NOT_FOUND if it is in neither state.
int store_workflow_reopen(
    struct store *st, int64_t id, int64_t now, struct anvil_error *err);

// ---- events ----

// A new event; strings borrowed for the call, NULL = none. message is
// stored cut to EVENT_MESSAGE_MAX bytes.
struct store_new_event {
    int         kind; // enum event_kind
    int64_t     at;
    int64_t     job_id;      // 0 = none
    int64_t     workflow_id; // 0 = none
    const char *step;
    const char *type;
    const char *queue;
    const char *worker;
    uint32_t    attempt;
    const char *message;
    bool        has_progress; // JOB_PROGRESS: progress_percent is set
    int32_t     progress_percent;
};

// An event read back; strings are the caller's (NULL = none), freed with
// store_events_free().
struct store_event {
    uint64_t seq;
    int      kind;
    int64_t  at;
    int64_t  job_id;
    int64_t  workflow_id;
    char    *step;
    char    *type;
    char    *queue;
    char    *worker;
    uint32_t attempt;
    char    *message;
    bool     has_progress; // JOB_PROGRESS: progress_percent is set
    int32_t  progress_percent;
};

struct store_event_filter {
    uint64_t    after_seq;   // events with seq > after_seq
    int64_t     job_id;      // 0 = any
    int64_t     workflow_id; // 0 = any
    const char *type;        // NULL = any
    const char *queue;       // NULL = any
    uint32_t    kinds;       // bit 1 << kind; 0 = any
    uint32_t    limit;       // at most this many events (>= 1)
    uint32_t    scan_max;    // look at no more than this many rows past
                             // after_seq (0 = no bound)
};

// Appends an event; *seq receives its sequence number: greater than every
// seq handed out before, never reused (not even after the newest events
// were deleted and the store reopened, nor when the insert is rolled back).
int store_event_insert(struct store *st, const struct store_new_event *ev,
    uint64_t *seq, struct anvil_error *err);

// store_event_insert for a caller that needs no seq: a backend may send
// it with the transaction's COMMIT, and then reports its failure there
// (the PostgreSQL backend's pipeline), so it suits only writes whose
// failure refuses the whole transaction anyway (the batch's events).
int store_event_append(struct store *st, const struct store_new_event *ev,
    struct anvil_error *err);

// The events after f->after_seq that match f, in seq order, at most
// f->limit of them (*out, *n: store_events_free). *scanned_to receives the
// seq a next read should start after: the last matching event's when
// f->limit were found, else the highest seq looked at (f->after_seq when
// none were), so that a filtered read never looks at the same rows twice.
int  store_events_read(struct store *st, const struct store_event_filter *f,
     struct store_event **out, size_t *n, uint64_t *scanned_to,
     struct anvil_error *err);
void store_events_free(struct store_event *ev, size_t n);

// *first: the oldest event kept (0 when none is); *last: the highest seq
// ever handed out (0 when none was), also after retention deleted it.
int store_events_bounds(
    struct store *st, uint64_t *first, uint64_t *last, struct anvil_error *err);

// Retention: deletes up to limit of the oldest events that are older than
// `before` or whose seq is below below_seq (the count bound); *deleted
// says how many.
int store_sweep_events(struct store *st, int64_t before, uint64_t below_seq,
    int limit, int *deleted, struct anvil_error *err);

// ---- paused queues ----

// Pauses (paused true) or resumes a queue by name: a paused queue is
// remembered until it is resumed, also across a reopen. *changed is false
// when the queue already was in that state (nothing is written then).
// Any queue name may be paused, one no job has used yet included.
int store_queue_set_paused(struct store *st, const char *queue, bool paused,
    int64_t now, bool *changed, struct anvil_error *err);

// The paused queues' names, sorted (bytewise): *names is an array of *n
// strings (store_names_free), NULL when there are none.
int store_queues_paused(
    struct store *st, char ***names, size_t *n, struct anvil_error *err);
void store_names_free(char **names, size_t n);

// ---- queue rate limits ----

// A queue's rate limit (SetQueueLimit) and its token bucket as last
// stored: tokens as of at (ms).
struct store_queue_limit {
    char    *queue;
    double   rate; // tokens a second; 0 = no limit
    uint32_t burst;
    double   tokens;
    int64_t  at;
};

// Sets queue l->queue's limit and bucket (l->rate > 0), or removes it
// (l->rate == 0: the other fields are not read).
int store_queue_limit_set(struct store *st, const struct store_queue_limit *l,
    struct anvil_error *err);

// Stores a limited queue's bucket after leases took from it (a queue with
// no limit: nothing is written).
int store_queue_limit_save(struct store *st, const char *queue, double tokens,
    int64_t at, struct anvil_error *err);

// Queue's limit and stored bucket in *out (out->queue is left NULL);
// NOT_FOUND when it has none.
int store_queue_limit_get(struct store *st, const char *queue,
    struct store_queue_limit *out, struct anvil_error *err);

// Every limit, sorted by queue (bytewise): *out has *n of them
// (store_queue_limits_free), NULL when there are none.
int  store_queue_limits(struct store *st, struct store_queue_limit **out,
     size_t *n, struct anvil_error *err);
void store_queue_limits_free(struct store_queue_limit *v, size_t n);

// ---- schedules ----

// A cron schedule: its job template and where its ticks stand. Strings
// and the payload are the caller's to pass in (borrowed) and, when a call
// returns a schedule, the caller's to free (store_schedule_fini).
struct store_schedule {
    int64_t             id; // positive, never reused
    char               *name;
    char               *expr; // cron expression, a macro or "@every 30s"
    char               *tz;   // IANA zone; "" = UTC
    char               *type; // the job template ("" with a workflow)
    char               *queue;
    uint8_t            *payload;
    size_t              payload_len;
    int32_t             priority;
    struct retry_policy retry; // 0 fields = the server's default
    int64_t             timeout_ms;
    int64_t             lease_ms;
    int                 overlap;  // enum anvil_schedule_overlap
    int                 catch_up; // enum anvil_schedule_catch_up
    uint32_t            catch_up_limit;
    bool                paused;
    int64_t             next_fire_at; // the next tick (epoch ms)
    int64_t             last_fire_at; // the last tick that fired; 0 = none
    int64_t last_job_id; // its job (or workflow: a workflow template); 0 = none
    uint64_t fired;      // jobs submitted
    uint64_t skipped;    // ticks that submitted nothing
    int64_t  created_at;
    uint64_t request_id; // the CreateSchedule's; 0 = none
    // The workflow template, packed (flowspec.h); NULL = a job template.
    uint8_t *workflow;
    size_t   workflow_len;
};

// Inserts schedule s (s->id is ignored) and sets *id. The name must be
// free: the engine looks it up first (a taken name is INTERNAL here).
int store_schedule_insert(struct store *st, const struct store_schedule *s,
    int64_t *id, struct anvil_error *err);
// The schedule named `name`, or (name NULL) with id `id`, into *out
// (store_schedule_fini). NOT_FOUND (err untouched) when there is none.
int store_schedule_get(struct store *st, int64_t id, const char *name,
    struct store_schedule *out, struct anvil_error *err);
// Every schedule, by name: *out is an array of *n (store_schedules_free),
// NULL when there are none.
int store_schedule_list(struct store *st, struct store_schedule **out,
    size_t *n, struct anvil_error *err);
// Writes the state of schedule s->id: paused, next_fire_at, last_fire_at,
// last_job_id, fired and skipped. NOT_FOUND when it does not exist.
int store_schedule_update(
    struct store *st, const struct store_schedule *s, struct anvil_error *err);
// Deletes schedule id. NOT_FOUND when it does not exist.
int store_schedule_delete(
    struct store *st, int64_t id, struct anvil_error *err);
void store_schedule_fini(struct store_schedule *s);
void store_schedules_free(struct store_schedule *s, size_t n);

// ---- failure seams for tests (SQLite backend) ----
//
// store_hook_step, when set, is called before EVERY statement step of the
// SQLite backend (each row of a query, and BEGIN, COMMIT, SAVEPOINT,
// RELEASE, ROLLBACK TO and ROLLBACK too) with the statement's index. 0 lets
// the step run; ANVIL_RESOURCE_EXHAUSTED makes it fail as SQLITE_FULL (the
// call answers RESOURCE_EXHAUSTED, "disk full"); any other non-zero value
// makes it fail as SQLITE_IOERR (the call answers INTERNAL). The statement
// is not run. The PostgreSQL backend calls it the same way before each
// statement it sends (its own indexes, store_pg.h), with the same answers.
// Set it only while no store is in use on another thread.
extern int (*store_hook_step)(int stmt);

// Seam for tests: when set, store_sync() calls it instead of fdatasync(2)
// on its -wal descriptor (0, or -1 with errno set).
extern int (*store_hook_fdatasync)(int fd);

// For tests (EXPLAIN, and finding an index for store_hook_step, e.g. the
// statement whose SQL starts "ROLLBACK TO"): the SQL of prepared statement
// i, or NULL past the last one.
const char *store_stmt_sql(int i);

#endif
