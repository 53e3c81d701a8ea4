// worker.h - the anvil worker library: run job handlers for an anvild.
//
// A worker polls one server for the job types it has handlers for, on the
// queues it serves, taking as many jobs as its free slots and its prefetch
// queue can take. Each job runs on one of N slot threads; the library
// heartbeats the leases it holds, reports results and failures, and
// reconnects with backoff when the server goes away (the server keeps the
// jobs meanwhile). It never prints: its log lines go to anvil_logger_set().
//
// Reports are asynchronous: when a handler returns, its slot hands the
// outcome to a reporter thread and takes its next job at once. The reporter
// sends every outcome waiting in one Report (anvil_job_report()), so they batch
// by themselves while the previous Report is in flight; against an anvild
// without Report it falls back to one Complete or Fail per outcome. A job's
// lease is held (and heartbeated) until the server acknowledged its
// outcome; the stats count only what the server accepted.
//
// Thread safety: anvil_worker_add_handler() is called before
// anvil_worker_start();
// anvil_worker_stop() and anvil_worker_free() from the thread that started
// it. Handlers run on slot threads, several at once.
#ifndef ANVIL_WORKER_H
#define ANVIL_WORKER_H

#include <anvil/anvil.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct anvil_worker anvil_worker;

// What a running handler is given besides its job: where to put the result
// or error, and whether the job was cancelled. Valid only during the call.
struct anvil_job_ctx;

// A handler runs one job attempt. Return ANVIL_OK for success, with the
// result set by anvil_job_ctx_set_result() (empty if not set). Any other
// return is a failed attempt, with the error from anvil_job_ctx_set_error()
// (a generic one if not set); it is retried unless marked final.
typedef int (*anvil_handler_fn)(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx);

// Copies the result (len bytes) to report on success. ANVIL_OK,
// INVALID_ARGUMENT (NULL result with len > 0) or RESOURCE_EXHAUSTED.
ANVIL_API int anvil_job_ctx_set_result(
    struct anvil_job_ctx *ctx, const void *result, size_t len);

// Sets the error to report; retryable=false makes the failure final.
// ANVIL_OK, or RESOURCE_EXHAUSTED (the failure is then reported with a
// generic error).
ANVIL_API int anvil_job_ctx_set_error(struct anvil_job_ctx *ctx, bool retryable,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

// Records the attempt's progress: percent 0..100 and a short message (NULL
// = "", at most ANVIL_PROGRESS_MESSAGE_MAX bytes of UTF-8). Only the latest
// value counts: the worker sends it with its next heartbeat, which comes
// within about a second of a change (progress goes out at most once a
// second; calling this often is cheap). The server keeps it on the job
// (anvil_job.progress_percent/progress_message) until the next attempt
// starts, and writes a JOB_PROGRESS event when it changed. ANVIL_OK or
// INVALID_ARGUMENT (out of bounds: nothing is recorded). Thread safe.
ANVIL_API int anvil_job_ctx_set_progress(
    struct anvil_job_ctx *ctx, int percent, const char *message);

// True once the job was cancelled, its lease lost, its timeout passed or the
// worker is stopping without grace: the handler should return soon.
ANVIL_API bool anvil_job_ctx_is_canceled(const struct anvil_job_ctx *ctx);

// Sleeps up to ms milliseconds, waking early when the job is cancelled.
// Returns true when the full time passed, false when cancelled.
ANVIL_API bool anvil_job_ctx_sleep(struct anvil_job_ctx *ctx, int64_t ms);

// The special values of anvil_worker_opts.prefetch; any other is a fixed
// depth from 1 to ANVIL_PREFETCH_MAX.
enum anvil_prefetch {
    ANVIL_PREFETCH_NONE     = -1, // never lease beyond the free slots
    ANVIL_PREFETCH_ADAPTIVE = 0,  // size the queue by the handlers (default)
    ANVIL_PREFETCH_MAX      = 1000,
};

struct anvil_worker_opts {
    const char             *url;  // NULL: $ANVIL_SERVER or ANVIL_DEFAULT_URL
    const char             *name; // NULL: "<host>-<pid>"
    const char *const      *queues;
    size_t                  n_queues;     // 0 = {"default"}
    int                     slots;        // 0 = 1
    int                     poll_wait_ms; // long-poll length; 0 = 5000
    int                     heartbeat_ms; // 0 = 5000
    const char             *token;        // NULL: $ANVIL_TOKEN, if set
    const struct anvil_tls *tls; // NULL: $ANVIL_TLS_* for tls+tcp:// URLs
    int prefetch; // leases held beyond the slots, queued for the next free
                  // slot: ANVIL_PREFETCH_ADAPTIVE (0, the default),
                  // ANVIL_PREFETCH_NONE, or a fixed N (enum anvil_prefetch)
};

// Prefetch: the worker leases up to slots + prefetch jobs whose handlers
// have not returned, so a slot whose handler returns finds its next job
// waiting instead of waiting a Poll round trip. The price: a prefetched
// job waits behind running ones, on this worker, while another worker may
// be idle, and its timeout_ms (counted from the lease, by the server and
// the worker alike) runs meanwhile; heartbeats keep its lease alive. On
// anvil_worker_stop()/drain(), prefetched jobs are run within the grace
// period like running ones; those that cannot start before it ends are
// reported as a retryable failure ("canceled before it started"), which
// costs each an attempt (as a lease that expired would). With slow or
// long handlers, or jobs with max_attempts = 1, use prefetch = -1.
//
// Adaptive prefetch (0, the default) starts at the number of slots and
// sizes the queue by what the handlers do: whenever a Poll comes back
// while a slot sat idle with nothing queued, the queue was too short to
// cover a Poll round trip and doubles, up to 16 per slot (at most 1000);
// whenever jobs are still waiting, it shrinks by one. Handlers much
// faster than a round trip (~0.3 ms) thus get a deep queue, and handlers
// slower than that shrink it to one job or none, so slow jobs are not
// hoarded by one worker while others idle.

// Creates a worker. *out is the caller's (anvil_worker_free); opts and
// what it points to are copied. INVALID_ARGUMENT for a bad url, option,
// token or TLS setting (the message names it).
ANVIL_API int anvil_worker_new(anvil_worker **out,
    const struct anvil_worker_opts *opts, struct anvil_error *err);

// Registers the handler of one job type; arg is passed to every call.
// ALREADY_EXISTS if the type has a handler, INVALID_ARGUMENT for a bad name.
ANVIL_API int anvil_worker_add_handler(anvil_worker *w, const char *type,
    anvil_handler_fn fn, void *arg, struct anvil_error *err);

// Starts polling and the slot threads; returns at once. The worker tells
// the server who it is with every Poll and Heartbeat (host, pid,
// ANVIL_VERSION, its job types, queues and slots), so
// anvil_worker_status_list() shows it.
ANVIL_API int anvil_worker_start(anvil_worker *w, struct anvil_error *err);

// Stops polling, lets running handlers and the prefetched jobs finish for
// up to grace_ms (then marks them cancelled and waits for them to return),
// sends every outcome not yet acknowledged (retrying while the server is
// away, for at most 10 s past the grace period; an outcome given up is
// logged), and joins every thread. Safe to call twice.
ANVIL_API void anvil_worker_stop(anvil_worker *w, int grace_ms);

// As anvil_worker_stop(), except that a long-poll in flight runs to its
// end (up to poll_wait_ms) instead of being cut off once it has been
// parked for 250 ms, and the jobs it leases run within the grace period
// too. A cut-off Poll may have leased a job whose reply is lost: that job
// waits for its lease to expire. Use it when
// the process goes on (anvil-worker's SIGHUP reload), from a thread that
// may block that long. Safe to call twice; not with anvil_worker_stop().
ANVIL_API void anvil_worker_drain(anvil_worker *w, int grace_ms);

// Stops the worker if needed and frees it; NULL is ignored.
ANVIL_API void anvil_worker_free(anvil_worker *w);

struct anvil_worker_stats {
    uint64_t succeeded; // attempts reported as Complete, acknowledged
    uint64_t failed;    // attempts reported as Fail, acknowledged
    uint64_t running;   // handlers running now
};

ANVIL_API void anvil_worker_get_stats(
    anvil_worker *w, struct anvil_worker_stats *st);

#ifdef __cplusplus
}
#endif

#endif // ANVIL_WORKER_H
