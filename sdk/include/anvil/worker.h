// worker.h - the anvil worker library: run job handlers for an anvild.
//
// A worker polls one server for the job types it has handlers for, on the
// queues it serves, taking only as many jobs as it has free slots. Each job
// runs on one of N slot threads; the library heartbeats the leases it holds,
// reports results (Complete) and failures (Fail), and reconnects with
// backoff when the server goes away (the server keeps the jobs meanwhile).
// It never prints: its log lines go to anvil_set_logger().
//
// Thread safety: anvil_worker_handle() is called before anvil_worker_start();
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
// return is a failed attempt, with the error from anvil_job_ctx_fail()
// (a generic one if not set); it is retried unless marked final.
typedef int (*anvil_handler_fn)(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx);

// Copies the result (len bytes) to report on success.
ANVIL_API int anvil_job_ctx_set_result(
    struct anvil_job_ctx *ctx, const void *result, size_t len);

// Sets the error to report; retryable=false makes the failure final.
ANVIL_API void anvil_job_ctx_fail(struct anvil_job_ctx *ctx, bool retryable,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

// True once the job was cancelled, its lease lost, its timeout passed or the
// worker is stopping without grace: the handler should return soon.
ANVIL_API bool anvil_job_ctx_canceled(const struct anvil_job_ctx *ctx);

// Sleeps up to ms milliseconds, waking early when the job is cancelled.
// Returns true when the full time passed, false when cancelled.
ANVIL_API bool anvil_job_ctx_sleep(struct anvil_job_ctx *ctx, int64_t ms);

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
};

// Creates a worker. *out is the caller's (anvil_worker_free); opts and
// what it points to are copied. INVALID_ARGUMENT for a bad url, option,
// token or TLS setting (the message names it).
ANVIL_API int anvil_worker_new(anvil_worker **out,
    const struct anvil_worker_opts *opts, struct anvil_error *err);

// Registers the handler of one job type; arg is passed to every call.
// ALREADY_EXISTS if the type has a handler, INVALID_ARGUMENT for a bad name.
ANVIL_API int anvil_worker_handle(anvil_worker *w, const char *type,
    anvil_handler_fn fn, void *arg, struct anvil_error *err);

// Starts polling and the slot threads; returns at once. The worker tells
// the server who it is with every Poll and Heartbeat (host, pid,
// ANVIL_VERSION, its job types, queues and slots), so anvil_workers_list()
// shows it.
ANVIL_API int anvil_worker_start(anvil_worker *w, struct anvil_error *err);

// Stops polling, lets running handlers finish for up to grace_ms (then
// marks them cancelled and waits for them to return), reports their
// outcomes, and joins every thread. Safe to call twice.
ANVIL_API void anvil_worker_stop(anvil_worker *w, int grace_ms);

// As anvil_worker_stop(), except that a long-poll in flight runs to its
// end (up to poll_wait_ms) instead of being cut off, and the jobs it leases
// run within the grace period too. A cut-off Poll may have leased a job
// whose reply is lost: that job waits for its lease to expire. Use it when
// the process goes on (anvil-worker's SIGHUP reload), from a thread that
// may block that long. Safe to call twice; not with anvil_worker_stop().
ANVIL_API void anvil_worker_drain(anvil_worker *w, int grace_ms);

// Stops the worker if needed and frees it; NULL is ignored.
ANVIL_API void anvil_worker_free(anvil_worker *w);

struct anvil_worker_stats {
    uint64_t succeeded; // attempts reported as Complete
    uint64_t failed;    // attempts reported as Fail
    uint64_t running;   // handlers running now
};

ANVIL_API void anvil_worker_get_stats(
    anvil_worker *w, struct anvil_worker_stats *st);

#ifdef __cplusplus
}
#endif

#endif // ANVIL_WORKER_H
