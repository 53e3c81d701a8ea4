// runtime_impl.h - what the files of the worker library share: the worker
// and task structs and the entry points of each part.
//
// The library is three parts, each with its own threads:
// - runtime.c: options, handlers, the slot threads, start and stop.
// - runtime_poll.c: the poll thread (leases jobs for the slots and the
//   prefetch queue) and the heartbeat thread (extends every lease held and
//   flags the jobs the server says to stop).
// - runtime_report.c: the reporter thread, which sends the outcomes the
//   slots hand it, batched in one Report per round trip (or, against an
//   older anvild, one Complete or Fail each).
//
// Every shared field is guarded by w->mu (see struct anvil_worker). A task
// is "held" from the Poll reply that leased it until its outcome is
// acknowledged (or given up): the heartbeat covers exactly the held tasks.
// A held task is "unfinished" until its handler returns: the unfinished
// ones take the slots and the prefetch queue, the rest wait only for the
// reporter.
#ifndef WORKER_RUNTIME_IMPL_H
#define WORKER_RUNTIME_IMPL_H

#include <anvil/worker.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RUNTIME_BACKOFF_MIN_MS 100
#define RUNTIME_BACKOFF_MAX_MS 5000
// Once stopping, a report still retries this long past the grace period.
#define RUNTIME_STOP_REPORT_MS 10000
// The most jobs one Poll may ask for (the server's limit).
#define RUNTIME_MAX_POLL_JOBS 1000
// anvil_worker_stop() cuts a Poll short only once it has been in flight
// this long, i.e. parked: see end_parked_poll() in runtime.c.
#define RUNTIME_CUT_POLL_MS 250
// Outcomes waiting for the reporter beyond which the poll thread waits:
// bounds the leases held (and each heartbeat) when reports fall behind.
#define RUNTIME_MAX_BACKLOG ANVIL_REPORT_MAX

// What a handler gets besides its lease. canceled is shared (guarded by
// w->mu); the rest belongs to the thread that owns the task: the slot
// running the handler, then the reporter.
struct anvil_job_ctx {
    struct anvil_worker *w;
    int64_t              deadline_ms; // monotonic end of the job's timeout
    bool                 canceled;    // guarded by w->mu
    uint8_t             *result;
    size_t               result_len;
    char                *error; // NULL until anvil_job_ctx_fail()
    bool                 retryable;
};

struct lease_batch;
struct report_buf;

// One leased job, from the Poll reply until its outcome is acknowledged.
struct task {
    // In the slot queue, then in the report queue (never both); w->mu.
    struct task              *next_queued;
    struct task              *next_held; // the held list; guarded by w->mu
    struct task              *prev_held;
    bool                      lost; // the server says the lease is gone; w->mu
    bool                      finished; // the handler returned; w->mu
    bool                      skip; // canceled before it started; the slot's
    bool                      ok;   // the outcome: Complete (true) or Fail
    struct lease_batch       *batch;
    const struct anvil_lease *lease; // in batch->leases
    struct anvil_job_ctx      ctx;
};

// The leases of one Poll reply and their tasks, freed with the last task.
struct lease_batch {
    struct anvil_lease *leases;
    size_t              n;
    size_t              refs; // tasks not yet released; guarded by w->mu
    struct task         tasks[];
};

struct handler {
    char            *type;
    anvil_handler_fn fn;
    void            *arg;
};

struct anvil_worker {
    // Set by anvil_worker_new() and _handle(), read-only once started.
    char              *url;
    char              *name;
    char             **queues;
    size_t             n_queues;
    int                slots;
    int                prefetch;      // leases beyond the slots now; 0 = none
    int                prefetch_max;  // what adaptive prefetch may reach
    bool               prefetch_auto; // opts.prefetch was 0: adapts
    int                poll_wait_ms;
    int                heartbeat_ms;
    struct handler    *handlers;
    const char       **types; // handlers[i].type, for Poll
    size_t             n_handlers;
    anvil_client      *client;      // reports and heartbeats
    anvil_client      *poll_client; // the poll thread's
    pthread_t          poll_thr;
    pthread_t          hb_thr;
    pthread_t          rep_thr;
    pthread_t         *slot_thr;
    int                n_slot_thr;
    bool               hb_started;
    bool               poll_started;
    bool               rep_started;
    struct report_buf *rep_buf; // the reporter thread's

    pthread_mutex_t mu;      // guards every field below and ctx.canceled
    pthread_cond_t  work_cv; // a task was queued, or slots should exit
    pthread_cond_t  rep_cv;  // an outcome was queued, or the reporter
                             // should exit
    pthread_cond_t free_cv;  // (monotonic) a handler returned, a task was
                             // released (the poll may ask for more), or
                             // stopping began
    pthread_cond_t state_cv; // (monotonic) a job canceled, stopping began,
                             // a lease arrived (the heartbeat period)
    struct task *queue_head; // tasks waiting for a slot, FIFO
    struct task *queue_tail;
    struct task *rep_head; // outcomes waiting for the reporter, FIFO
    struct task *rep_tail;
    struct task *held; // every task held, in any state
    size_t       n_held;
    size_t       n_unfinished;  // held tasks whose handler has not returned
    uint64_t     n_returned;    // handlers that returned, ever
    uint64_t     poll_returned; // n_returned when the Poll in flight left
    bool         started;
    bool         stop_called;
    bool         stopping;     // no more polls
    bool         poll_done;    // the poll thread exited
    bool         poll_in_call; // a Poll is in flight, sent at poll_call_ms
    int64_t      poll_call_ms; // monotonic
    bool         cancel_all;   // grace is over: every job is canceled
    bool         rep_stop;     // the slots are gone: flush and exit
    bool         legacy;       // the server has no Report: Complete/Fail
    bool         hb_stop;
    int64_t      give_up_ms; // monotonic; reports stop retrying then
    struct anvil_worker_stats stats;
};

// ---- runtime.c: helpers the other parts share ----

// The next backoff after prev (0 at first), doubling up to the maximum.
int64_t runtime_next_backoff(int64_t prev);

// True for the codes that mean "no answer": retry later.
bool runtime_transient(int code);

// Copies s into out for a log field in double quotes. Returns out.
const char *runtime_log_safe(char *out, size_t cap, const char *s);

// Waits on cv (a monotonic condvar, held with mu) until deadline_ms.
void runtime_wait_until(
    pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms);

// Sleeps ms, waking early once the worker stops polling when wake_on_stop.
void runtime_nap(struct anvil_worker *w, int64_t ms, bool wake_on_stop);

// Drops an acknowledged (or given up) task; frees its batch with the last.
void runtime_release_task(struct anvil_worker *w, struct task *t);

// ---- runtime_poll.c: the poll and heartbeat threads ----

void *runtime_poll_main(void *arg);
void *runtime_poll_hb_main(void *arg);

// ---- runtime_report.c: the reporter ----

// Hands the outcome of t (rc: the handler's return) over to be reported;
// the task is released once the server acknowledged it. Slot threads.
void runtime_report_outcome(struct anvil_worker *w, struct task *t, int rc);

// The reporter thread's buffers: NULL when out of memory.
struct report_buf *runtime_report_buf_new(void);
void               runtime_report_buf_free(struct report_buf *rb);

// The reporter thread; w->rep_buf must be set.
void *runtime_report_main(void *arg);

// Once no slot runs: sends every outcome still queued (retrying until the
// give-up time) and joins the reporter thread.
void runtime_report_finish(struct anvil_worker *w);

#endif // WORKER_RUNTIME_IMPL_H
