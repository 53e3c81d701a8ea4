// metrics.h - counters and histograms for GET /metrics (Prometheus text
// exposition format 0.0.4).
//
// Two kinds of writers, so the hot path takes no lock:
// - any thread (both transports, the engine's sync thread): metrics_rpc()
//   and metrics_sync() update relaxed atomics;
// - the engine thread alone: metrics_job_*() and metrics_commit(), whose
//   series are labelled by queue and type and live in a table only that
//   thread touches.
// The scrape is an engine command (CMD_METRICS): the engine thread renders
// every series, with queue depths, workers and parked long-polls read from
// its own state, into one text buffer. A NULL struct metrics (metrics off)
// makes every call a no-op.
#ifndef SERVER_METRICS_H
#define SERVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum metrics_transport {
    METRICS_NNG  = 0,
    METRICS_HTTP = 1,
};

struct metrics;

// NULL when out of memory.
struct metrics *metrics_new(void);
void            metrics_free(struct metrics *m);

// One rpc answered: method is its index in anvil.v1.Anvil's service
// descriptor (-1 = unknown method), code its anvil code, us its time from
// request received to reply handed to the transport. Any thread.
void metrics_rpc(struct metrics *m, enum metrics_transport t, int method,
    int code, int64_t us);

// One durable sync of a committed batch took us microseconds. Any thread.
void metrics_sync(struct metrics *m, int64_t us);

// Engine thread only.
void metrics_job_submitted(
    struct metrics *m, const char *queue, const char *type);
// A job was leased after waiting wait_ms since it became ready.
void metrics_job_started(
    struct metrics *m, const char *queue, const char *type, int64_t wait_ms);
// A job reached final state (enum job_state) after run_ms of its last
// attempt (0 when it never ran).
void metrics_job_finished(struct metrics *m, const char *queue,
    const char *type, int state, int64_t run_ms);
// One batch of n commands committed in us microseconds.
void metrics_commit(struct metrics *m, size_t n, int64_t us);

#endif
