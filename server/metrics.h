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
//
// Series (all prefixed anvil_, in base units): jobs submitted and finished
// per queue and type, queue depths, job wait and run time, rpcs per
// transport, method and code with their duration, commit batch size and
// time, sync time, workers, parked long-polls, concurrency keys (totals
// only: never a series per key), build info, whether the node leads
// (anvil_leader) and the standard process_* series. Queue and type pairs
// past METRICS_MAX_LABEL_SETS are
// counted together under queue="*", type="*" (names never contain '*').
#ifndef SERVER_METRICS_H
#define SERVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum metrics_transport {
    METRICS_NNG  = 0,
    METRICS_HTTP = 1,
};

// The Content-Type of what metrics_render() produces.
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#define METRICS_MAX_LABEL_SETS 1000

struct metrics;
struct store_depth;

// What the engine reads from its own state for a scrape.
struct metrics_state {
    const struct store_depth *depths; // QUEUED and RUNNING per queue, type
    size_t                    n_depths;
    uint32_t                  workers_live;
    uint32_t                  workers_lost;
    uint32_t                  parked_polls; // Poll
    uint32_t                  parked_waits; // WaitJob
    uint32_t                  parked_flows; // WaitWorkflow
    // Concurrency keys held, and the jobs running and waiting (set aside
    // at the key's limit) under them, summed over every key.
    uint64_t concurrency_keys;
    uint64_t concurrency_running;
    uint64_t concurrency_waiting;
};

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
// A job reached final state (enum anvil_job_state: SUCCEEDED, FAILED or
// CANCELED) after run_ms of its last attempt; run_ms < 0 when it ended
// without running (cancelled while waiting): then it is counted but its
// run time is not observed.
void metrics_job_finished(struct metrics *m, const char *queue,
    const char *type, int state, int64_t run_ms);
// One batch of n commands committed in us microseconds (n = 0: timers
// alone; timed, but not counted as a batch size).
void metrics_commit(struct metrics *m, size_t n, int64_t us);

// Renders every series in the text format into *text (malloc'd,
// NUL-terminated; *len excludes the NUL; the caller frees it). Engine
// thread only (the queue and type table is its own); m is not NULL.
// ANVIL_OK, or ANVIL_RESOURCE_EXHAUSTED.
int metrics_render(
    struct metrics *m, const struct metrics_state *s, char **text, size_t *len);

// What a standby renders (it has no engine): anvil_build_info,
// anvil_leader 0 and the process_* series. Any thread; the same contract
// for *text and *len.
int metrics_render_standby(char **text, size_t *len);

#endif
