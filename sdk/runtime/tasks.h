// tasks.h - the jobs a worker holds: each leased job's task and context,
// the held set the heartbeat covers, the queue the slots take jobs from,
// and the phase of a worker's stop. The bottom of the runtime: it calls
// no other module of it (the order is drawn in rtutil.h).
//
// A task is "held" from the Poll reply that leased it (tasks_add) until
// its outcome is acknowledged or given up (tasks_release): the heartbeat
// covers exactly the held tasks. A held task is "unfinished" until its
// handler returns (tasks_finish): the unfinished ones take the slots and
// the prefetch queue; the rest wait only for the reporter.
//
// Threads: the poll thread adds, slot threads take and finish, the
// reporter releases, the heartbeat reads the held set and flags jobs,
// handlers read their context, the thread that stops the worker raises
// the phase. One lock, ts->mu, guards every field of struct tasks and of
// each task marked so below; the rest of a task belongs to the thread
// that owns it at the time: the slot running it, then the reporter.
#ifndef RUNTIME_TASKS_H
#define RUNTIME_TASKS_H

#include <anvil/worker.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tasks;

// What a handler gets besides its lease. canceled and the progress are
// guarded by ts->mu; the rest belongs to the task's owner (the slot, then
// the reporter).
struct anvil_job_ctx {
    struct tasks *ts;
    int64_t       deadline_ms; // monotonic end of the job's timeout
    bool          canceled;    // guarded by ts->mu
    uint8_t      *result;
    size_t        result_len;
    char         *error; // NULL until anvil_job_ctx_set_error()
    bool          retryable;
    // The latest progress (anvil_job_ctx_set_progress); ts->mu.
    bool    has_progress;
    bool    progress_dirty; // not yet carried by a heartbeat
    int32_t progress_percent;
    char    progress_message[ANVIL_PROGRESS_MESSAGE_MAX + 1];
};

struct lease_batch;

// One leased job, from the Poll reply until its outcome is acknowledged.
struct task {
    // In the slot queue (ts->mu), then in the reporter's queue (its lock),
    // never both.
    struct task              *next_queued;
    struct task              *next_held; // the held list; ts->mu
    struct task              *prev_held;
    bool                      lost;     // the lease is gone; ts->mu
    bool                      finished; // the handler returned; ts->mu
    bool                      skip;     // canceled before it started; owner's
    bool                      ok;       // the outcome: Complete (true) or Fail
    struct lease_batch       *batch;
    const struct anvil_lease *lease; // in batch->leases
    struct anvil_job_ctx      ctx;
};

// How far a worker's stop has gone; it only moves forward.
enum tasks_phase {
    TASKS_OPEN,      // running
    TASKS_STOPPING,  // no more polls: room waits and naps end
    TASKS_POLL_DONE, // no more tasks come: slots exit once the queue empties
    TASKS_CANCELED,  // the grace is over: every task held is canceled
    TASKS_CLOSED,    // every outcome is sent: the heartbeat ends
};

struct tasks {
    pthread_mutex_t mu;
    pthread_cond_t  work_cv;     // a task was queued, or the phase moved
    pthread_cond_t  free_cv;     // (monotonic) a handler returned, a task
                                 // was released, or the phase moved
    pthread_cond_t state_cv;     // (monotonic) a job canceled, a lease came
                                 // (the heartbeat period), the phase moved
    struct task     *queue_head; // tasks waiting for a slot, FIFO
    struct task     *queue_tail;
    struct task     *held; // every task held, in any state
    size_t           n_held;
    size_t           n_unfinished; // held tasks whose handler runs or waits
    uint64_t         n_returned;   // handlers that returned, ever
    uint64_t         running;      // handlers running now
    enum tasks_phase phase;
    int64_t progress_sent_ms; // monotonic: a heartbeat last carried progress
};

// What the poller judges its prefetch by; read at one instant.
struct tasks_load {
    size_t           n_held;
    size_t           n_unfinished;
    uint64_t         n_returned;
    uint64_t         running;
    bool             queued; // a task waits for a slot
    enum tasks_phase phase;
};

// Initialises an empty set in the OPEN phase. ANVIL_INTERNAL on failure.
int tasks_init(struct tasks *ts);
// Frees what tasks_init made; no task may be held any more.
void tasks_fini(struct tasks *ts);

// Moves the phase forward to p (never back). Returns true when it moved.
// Any thread; the worker's stop.
bool tasks_set_phase(struct tasks *ts, enum tasks_phase p);

// Holds the leases of one Poll reply and queues them for the slots.
// Consumes list (freed with the last task). Poll thread.
void tasks_add(struct tasks *ts, struct anvil_lease_list *list);

// Waits until fewer than cap tasks are unfinished and fewer than room
// held; returns how many more fit (at most max), 0 once STOPPING.
uint32_t tasks_wait_room(
    struct tasks *ts, size_t cap, size_t room, uint32_t max);

// Sleeps ms, waking early once STOPPING. Poll thread.
void tasks_nap(struct tasks *ts, int64_t ms);

// The counters at one instant.
void tasks_load(struct tasks *ts, struct tasks_load *out);

// Takes the next queued task for a slot and counts it running unless it
// was canceled (t->skip). NULL once the slot should exit. Slot threads.
struct task *tasks_next(struct tasks *ts);

// The handler of t returned (or t was skipped): t is no longer unfinished.
// Returns true when its lease is already lost. Slot threads.
bool tasks_finish(struct tasks *ts, struct task *t);

// True when the heartbeat found the lease of t gone.
bool tasks_lost(struct tasks *ts, const struct task *t);

// Drops an acknowledged (or given up) task; frees its batch with the last.
// The reporter, or a slot.
void tasks_release(struct tasks *ts, struct task *t);

// Waits until no task is unfinished or until end_ms (monotonic), then
// moves to CANCELED. Returns how many were still unfinished.
size_t tasks_drain(struct tasks *ts, int64_t end_ms);

// Waits one heartbeat period: period_ms, or a third of the shortest lease
// held (shortened when a shorter lease arrives), at least 50 ms; or less
// when a handler reported new progress: then until TASKS_PROGRESS_GAP_MS
// after the last heartbeat that carried progress. Returns false once
// CLOSED. Heartbeat thread.
bool tasks_wait_heartbeat(struct tasks *ts, int64_t period_ms);

// Progress goes out at most once per this long (for every job at once).
#define TASKS_PROGRESS_GAP_MS 1000

// Copies the job id and token of every lease held; *n of them (the ids
// are the caller's: tasks_refs_free), with the progress each handler
// reported since the last heartbeat that carried it (at most once per
// TASKS_PROGRESS_GAP_MS). NULL and *n = 0 when none or OOM.
struct anvil_lease_ref *tasks_refs(struct tasks *ts, size_t *n);
void                    tasks_refs_free(struct anvil_lease_ref *refs, size_t n);

// The heartbeat that carried refs failed: their progress goes out again
// with the next one.
void tasks_progress_unsent(
    struct tasks *ts, const struct anvil_lease_ref *refs, size_t n);

// Flags the held jobs named in ids canceled (and lost when lost); sets
// running[i] when job ids[i] has a handler that has not returned.
void tasks_flag(
    struct tasks *ts, char **ids, size_t n, bool lost, bool *running);

#endif // RUNTIME_TASKS_H
