// timers.h - the engine's deadlines in one min-heap: lease expiries,
// delayed and backoff runs, attempt timeouts, long-poll timeouts.
//
// Owned by the engine thread; not thread-safe. Entries are never removed
// early: when one fires, the engine checks whether it still applies (the
// lease was extended, the waiter already answered) and ignores it if not.
#ifndef SERVER_TIMERS_H
#define SERVER_TIMERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum timer_kind {
    TIMER_LEASE,    // id = job, attempt: lease deadline
    TIMER_RUN_AT,   // id = job: SCHEDULED -> QUEUED
    TIMER_TIMEOUT,  // id = job, attempt: attempt run-time limit
    TIMER_WAITER,   // id = parked long-poll's sequence number
    TIMER_WORKFLOW, // id = workflow: its whole-workflow timeout
    TIMER_SWEEP,    // retention: delete old finished work
    TIMER_WORKERS,  // look for workers lost since the last look
    TIMER_RESUMED,  // a queue was resumed: serve the parked polls
    TIMER_SCHEDULE, // id = schedule: its next tick
};

struct timer {
    int64_t  at; // epoch ms
    int      kind;
    int64_t  id;
    uint32_t attempt;
};

struct timers;

struct timers *timers_new(void);
void           timers_free(struct timers *t);

// 0, or -1 if out of memory.
int timers_add(struct timers *t, struct timer tm);

// The earliest deadline, or INT64_MAX when empty.
int64_t timers_next(const struct timers *t);

// Pops the earliest entry if it is due at now; false otherwise.
bool timers_pop_due(struct timers *t, int64_t now, struct timer *out);

size_t timers_size(const struct timers *t);

#endif
