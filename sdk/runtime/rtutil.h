// rtutil.h - small helpers every module of the worker runtime uses:
// retry backoff, which codes mean "no answer", log-safe strings and timed
// waits on the monotonic clock. No state, no lock; any thread.
//
// The runtime's modules, lowest first (each calls only those above it):
//
//   rtutil     helpers (this file)
//   tasks      the leased jobs: held set, slot queue, job contexts, phase
//   poller     the poll thread: leases jobs into tasks (adaptive prefetch)
//   heartbeat  the heartbeat thread: extends the leases tasks holds
//   reporter   the reporter thread: sends outcomes, releases their tasks
//   slots      the slot threads: run handlers, hand outcomes to reporter
//   worker     anvil/worker.h: options, handlers, start, the stop order
#ifndef RUNTIME_RTUTIL_H
#define RUNTIME_RTUTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RTUTIL_BACKOFF_MIN_MS 100
#define RTUTIL_BACKOFF_MAX_MS 5000

// The next backoff after prev (0 at first), doubling up to the maximum.
int64_t rtutil_next_backoff(int64_t prev);

// True for the codes that mean "no answer": retry later.
bool rtutil_transient(int code);

// Copies s into out for a log field in double quotes. Returns out.
const char *rtutil_log_safe(char *out, size_t cap, const char *s);

// Waits on cv (a monotonic condvar, held with mu) until deadline_ms.
void rtutil_wait_until(
    pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms);

// Initialises a condvar on the monotonic clock. 0 on success.
int rtutil_cond_init_mono(pthread_cond_t *cv);

#endif // RUNTIME_RTUTIL_H
