// engine_impl.h - the engine's private state, shared by the files that
// run on its thread: engine.c (thread, batches, timers, parked long-polls),
// jobs.c (the job state machine, the only writer of job states), flow.c
// (the workflow state machine, the only writer of workflow states) and
// tokens.c. Everything here is touched by the engine thread only, except
// engine.lock's and engine.sync_lock's fields.
#ifndef SERVER_ENGINE_IMPL_H
#define SERVER_ENGINE_IMPL_H

#include "engine.h"
#include "engine_ops.h"
#include "readyq.h"
#include "timers.h"

#include <pthread.h>
#include <stdatomic.h>

#define POLL_MEMORY 256

// A recent Poll: its request id and what it leased, so that a resent Poll
// gets the same jobs back instead of a second lease nobody reads.
struct poll_memo {
    uint64_t rid;
    int64_t  token_id; // only the same caller may replay it
    int64_t *ids;
    size_t   n;
};

#define BULK_MEMORY 64

// A recent RetryJobs or CancelJobs and its answer, so that a resend is
// answered the same and changes nothing more (jobs_bulk.c).
struct bulk_memo {
    uint64_t rid;
    int64_t  token_id; // only the same caller may replay it
    int      kind;     // CMD_RETRY_MANY or CMD_CANCEL_MANY
    int64_t *ids;
    size_t   n;
    int64_t  next_before;
};

struct engine {
    struct store        *st;
    struct engine_config cfg;
    struct readyq       *ready;
    struct timers       *timers;
    struct registry     *workers;
    pthread_t            thread;
    int64_t              started_at;

    pthread_mutex_t lock; // guards incoming ... wait_until
    pthread_cond_t  wake;
    struct cmd     *incoming;
    struct cmd     *tail;
    int             queued;
    bool            stopping;
    // A batch runs (engine thread or an engine_call() caller): only its
    // thread may touch what follows "Engine thread only" below.
    bool    busy;
    bool    waits_busy; // the engine thread waits for busy to clear
    int64_t wait_until; // the engine thread sleeps until then (ms)

    // Deferred sync (store_needs_sync): the engine commits without
    // waiting for the disk and hands each committed batch's replies to the
    // sync thread, which makes them durable (store_sync) and then answers
    // them, in commit order, while the engine applies the next batch.
    bool            deferred;
    pthread_t       sync_thread;
    pthread_mutex_t sync_lock; // guards sync_head, sync_tail, sync_stop
    pthread_cond_t  sync_wake;
    struct cmd     *sync_head; // committed, not yet durable: FIFO
    struct cmd     *sync_tail;
    bool            sync_stop;

    // Engine thread only (the thread that set busy).
    struct cmd      *parked_polls;  // FIFO
    struct cmd      *parked_waits;  // WaitJob
    struct cmd      *parked_flows;  // WaitWorkflow
    struct cmd      *parked_events; // WatchEvents
    uint64_t         waiter_seq;
    struct poll_memo memo[POLL_MEMORY];
    size_t           memo_next;
    struct bulk_memo bulk_memo[BULK_MEMORY];
    size_t           bulk_next;
    uint32_t         rand_state;

    // events.c: ended jobs per minute, per queue and type (Health.recent),
    // oldest first; and whether the worker-loss timer is set.
    struct minute_count *minutes;
    size_t               n_minutes;
    bool                 workers_timer;

    // rates.c: when the pending TIMER_RESUMED for an empty bucket is due
    // (0: none pending).
    int64_t rate_wake_at;

    // Set once a sync or a rebuild failed (engine.c fatal()): every
    // command is then refused. Engine and sync thread.
    atomic_bool failed;
};

// What one batch did, for after the commit.
struct id_list {
    int64_t *ids;
    size_t   n, cap;
};

struct batch {
    struct cmd    *reply;    // commands to answer after the commit
    struct id_list finished; // jobs that reached a final state
    struct id_list flows;    // workflows that reached a final state
    bool           ready_added;
    bool           tokens_changed; // a token command ran: see tokens_committed
    bool           queues_changed; // a queue was paused or resumed: see
                                   // queues_committed
    bool events_written;           // wake the event watchers
    // Events written by the batch's commands, kept here until
    // events_flush() stores them all at the end of the batch: a command's
    // savepoint then never copies the events table's pages (see events.c).
    // ev_mark: how many there were when the open savepoint began.
    struct event_buf *events;
    size_t            ev_mark;
    // Concurrency keys (readyq ids) whose running jobs stopped in the open
    // savepoint: released in the ready queues when it is kept
    // (limits_keep), dropped when it is undone, so an undone Complete never
    // frees a slot.
    uint32_t *released;
    size_t    n_released, cap_released;
    // A savepoint could not be undone: the batch is rolled back whole.
    bool               broken;
    struct anvil_error broken_err;
    int64_t            now;
    int64_t            taken_us; // av_mono_us() when the batch began
};

// What an apply function returns when the command waits (a long-poll):
// it is not answered now; its done() runs when it is woken or its wait
// ends. Distinct from every enum anvil_code.
#define ENGINE_PARKED (-1)

// engine.c
#define ENGINE_MSG_FAILED                                                  \
    "the server hit a fatal storage error and is stopping; retry once it " \
    "is back"
// Answers every command of list: with its own result when code is OK,
// else (freeing what it produced) with code and msg.
void engine_answer_all(struct cmd *list, int code, const char *msg);
// Stamps hop h (enum cmd_trace_hop) on the traced commands of list.
void engine_trace_list(struct cmd *list, int h);
// The engine can no longer vouch for what it answers: refuses every later
// command and tells its owner (engine_config.on_fatal), once.
void engine_fatal(struct engine *e, const struct anvil_error *err);
void engine_timer_add(
    struct engine *e, int kind, int64_t at, int64_t id, uint32_t attempt);
void engine_mark(struct id_list *l, int64_t id);
void engine_list_push(struct cmd **head, struct cmd *c);
// Queues job id; ckey ("" or NULL = none) and limit are its concurrency
// limit.
int  engine_push_ready(struct engine *e, struct batch *b, int64_t id,
     const char *queue, const char *type, int32_t priority, const char *ckey,
     uint32_t limit);
void engine_park(
    struct engine *e, struct cmd **list, struct cmd *c, int64_t deadline);

// engine_cmd.c: how a submit finds what it already made, by the request
// id of a resend or by its idempotency key (store_job_by_* or
// store_workflow_by_*).
struct submit_lookup {
    int (*by_request)(
        struct store *st, uint64_t rid, int64_t *id, struct anvil_error *err);
    int (*by_key)(struct store *st, const char *key, int64_t *id,
        struct anvil_error *err);
};
// True if c is answered already: a resend of an applied submit, or a key
// naming an existing one (*existed). *id is then that one's and
// c->err.code the answer, a store error included.
bool engine_submit_known(struct engine *e, struct cmd *c,
    const struct submit_lookup *l, const char *key, int64_t *id, bool *existed);

// engine_park.c: parked long-polls.
void engine_drop_pipe(struct engine *e, uint32_t pipe, struct cmd **reply);
// True if worker waits in a parked Poll (connected, however long silent).
bool engine_worker_waiting(const struct engine *e, const char *worker);
void engine_unpark_expired(struct engine *e, struct batch *b, uint64_t seq);
// Before the commit: answers the waits and watchers the batch satisfied.
void engine_wake_waiters(struct engine *e, struct batch *b);
// After a rebuild: every parked long-poll gets a timer again (now).
void engine_park_retime(struct engine *e);
// Answers every parked long-poll UNAVAILABLE (the engine stops).
void engine_park_stop(struct engine *e);

// events.c: the event stream (writes in the batch's transaction, the
// WatchEvents long-poll, per-minute counts for Health).
// Writes ev (ev->at is set to the batch's time) and marks the batch.
int events_emit(struct engine *e, struct batch *b, struct store_new_event *ev,
    struct anvil_error *err);
// Stores the batch's events (in the batch's transaction, outside any
// savepoint) and frees them; on failure the batch must be rolled back.
int events_flush(struct engine *e, struct batch *b, struct anvil_error *err);
// A savepoint begins (ev_mark) or was rolled back (its events dropped).
void events_mark(struct batch *b);
void events_undo(struct batch *b);
// Frees what the batch still holds (after a failed batch).
void events_batch_free(struct batch *b);
// The parked watchers whose filter now has events are answered.
void events_wake(struct engine *e, struct batch *b);
// Health's per-minute counts, oldest first: *out (free()), *n.
int events_recent(
    struct engine *e, int64_t now, struct minute_count **out, size_t *n);
void events_free(struct engine *e);
// Worker joined / lost events (registry.h).
int events_worker(struct engine *e, struct batch *b, int kind,
    const char *worker, struct anvil_error *err);
// Timer TIMER_WORKERS: writes a WORKER_LOST event for each worker that
// has missed its heartbeats since the last look.
int events_workers_check(struct engine *e, struct batch *b);

// jobs_bulk.c: RetryJobs and CancelJobs through jobs_retry_one and
// jobs_cancel_one. Forgets the remembered answers (after a rollback), or
// frees them (engine_stop).
void jobs_bulk_forget(struct engine *e);
void jobs_bulk_free(struct engine *e);

// jobs.c: the job state machine.
// Job id ends in final state `state`; br is its row as the caller read it
// in this batch (its workflow and the metrics' labels come from it).
int jobs_finish(struct engine *e, struct batch *b, int64_t id,
    const struct store_job_brief *br, int state, const uint8_t *result,
    size_t len, const char *error, struct anvil_error *err);
// The only writes of a job's state; flow.c asks through these.
// Inserts a job (a step too) and queues or schedules it.
int jobs_insert(struct engine *e, struct batch *b,
    const struct store_new_job *nj, int64_t *id, struct anvil_error *err);
// A FAILED or CANCELED job j (as read in this batch) waits again: QUEUED,
// or PENDING on `pending` parents; it keeps the attempts it had left and
// gets at least `more` (0 = 1) more. why is its RETRIED event's message.
int jobs_retry_final(struct engine *e, struct batch *b, const struct job *j,
    uint32_t pending, uint32_t more, const char *why, struct anvil_error *err);
// CancelJob's change: a waiting job (PENDING, SCHEDULED, QUEUED) ends
// CANCELED (its workflow follows its policy), a running one's worker is
// asked to stop. OK with *changed false when the job was CANCELED already
// or its cancel was asked already; FAILED_PRECONDITION when it finished
// otherwise; NOT_FOUND (err untouched) for no such job.
int jobs_cancel_one(struct engine *e, struct batch *b, int64_t id,
    bool *changed, struct anvil_error *err);
// RetryJob's change: a FAILED or CANCELED plain job is QUEUED again with at
// least `more` (0 = 1) more attempts; why is its RETRIED event's message.
// FAILED_PRECONDITION for a workflow step or any other state; NOT_FOUND.
int jobs_retry_one(struct engine *e, struct batch *b, int64_t id, uint32_t more,
    const char *why, struct anvil_error *err);
// Ends a job that is not running (PENDING, QUEUED, SCHEDULED) CANCELED.
int jobs_cancel_waiting(struct engine *e, struct batch *b, int64_t id,
    const char *why, struct anvil_error *err);
// Asks a running job's worker to stop (heartbeat/report tells it).
int jobs_request_cancel(struct engine *e, int64_t id, struct anvil_error *err);
// One parent of PENDING job id succeeded: queues it when it was the last.
int jobs_parent_succeeded(
    struct engine *e, struct batch *b, int64_t id, struct anvil_error *err);
int jobs_poll_take(struct engine *e, struct batch *b, struct cmd *c);
// Remembers what a Poll leased, for a resend of it by the same caller.
void jobs_memo_add(struct engine *e, const struct cmd *c);
void jobs_lease_timers(struct engine *e, const struct job *j);
// Timers run inside a savepoint; a non-OK return rolls it back and the
// engine tries the timer again a second later.
int jobs_fire_timer(struct engine *e, struct batch *b, const struct timer *t);

// engine_sync.c: the sync thread (engine.deferred).
void *engine_sync_main(void *arg);
// Hands a committed batch's replies (in order) to the sync thread.
void engine_sync_post(struct engine *e, struct cmd *list);
// Syncs and answers list on the calling (engine) thread.
void engine_sync_inline(struct engine *e, struct cmd *list);
// Answers what the sync thread still holds and joins it.
void engine_sync_join(struct engine *e);

// tokens.c: API tokens.
// After the batch committed: applies the token commands of list that
// succeeded to the auth table (never before the commit).
void tokens_committed(struct engine *e, const struct cmd *list);

// queues.c: paused queues.
// After the batch committed: applies the pauses and resumes of list that
// succeeded to the ready queues (never before the commit); a resume with
// parked polls sets a TIMER_RESUMED so the next batch serves them.
void queues_committed(struct engine *e, const struct cmd *list);
// Marks the ready queues' paused queues as the store has them (start and
// rebuild).
int queues_load(struct engine *e, struct anvil_error *err);
// Health: the paused queues (*out: store_names_free), each depth row's
// paused flag, and the busiest concurrency keys (a walk of every key).
int queues_health(struct engine *e, struct cmd_health *h);

// rates.c: queue rate limits (the buckets live in readyq.h).
// SetQueueLimit's apply: stores the limit; the ready queues get it once
// the batch committed (rates_committed).
int rates_set(struct engine *e, struct batch *b, struct cmd *c);
// After the batch committed: gives the ready queues the limits set by the
// QUEUE_LIMIT commands of list that succeeded, and wakes the parked polls.
void rates_committed(struct engine *e, const struct cmd *list);
// Loads the stored limits into the ready queues (start and rebuild).
int rates_load(struct engine *e, struct anvil_error *err);
// Before the commit: stores every bucket a lease took from in this batch.
int rates_flush(struct engine *e, struct anvil_error *err);
// With parked polls and an empty bucket, sets a TIMER_RESUMED for when
// it next holds a token (at most one such timer pending).
void rates_wake(struct engine *e, struct batch *b);
// Health: every limit with its bucket now (*out: store_queue_limits_free).
int rates_health(struct engine *e, struct cmd_health *h);

// limits.c: concurrency limits (readyq.h holds the counts).
// A running job with concurrency key ckey ("" = none) stops running in the
// open savepoint: its slot is freed when the savepoint is kept.
void limits_stopped(struct engine *e, struct batch *b, const char *ckey);
// The open savepoint was kept: frees the slots it recorded (parked polls
// are then served in this batch).
void limits_keep(struct engine *e, struct batch *b);
// The open savepoint was undone: forgets the slots it recorded.
void limits_undo(struct batch *b);
void limits_batch_free(struct batch *b);
// A job taken from the ready queues goes back (its lease was rolled
// back): queued again, and its slot under ckey (NULL = none) freed.
int limits_unpop(struct engine *e, const struct job *j, const char *ckey);
// Rebuild: a QUEUED or RUNNING job as the store has it.
int limits_rebuild_job(struct engine *e, const struct job *j);
// schedules.c: cron schedules.
// Timer TIMER_SCHEDULE of schedule id: submits the jobs of its due ticks
// (as its catch-up and overlap policies say) and advances its next tick,
// in the timer's savepoint.
int schedules_fire_timer(struct engine *e, struct batch *b, int64_t id);
// A timer at each unpaused schedule's next tick (start and rebuild).
int schedules_load(struct engine *e, struct anvil_error *err);

// flow.c: the workflow state machine: what a step's end does.
int flow_step_final(struct engine *e, struct batch *b, int64_t workflow_id,
    int64_t step_id, int state, struct anvil_error *err);
int flow_fire_timer(struct engine *e, struct batch *b, int64_t workflow_id);
// Cancels RUNNING workflow workflow_id (CancelWorkflow, a schedule's
// overlap CANCEL_PREVIOUS): it ends CANCELED with error `why`, and every
// step not yet finished is cancelled.
int flow_cancel_running(struct engine *e, struct batch *b, int64_t workflow_id,
    const char *why, struct anvil_error *err);

#endif
