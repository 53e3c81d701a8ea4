// reporter.h - the reporter: the outcomes the slots hand over, sent to the
// server in batches, and their tasks released once acknowledged. Calls
// tasks and rtutil only.
//
// A slot whose handler returned hands the task here (reporter_hand) and
// takes its next job at once. One reporter thread sends everything queued
// in one Report (anvil_job_report), so outcomes batch by themselves while the
// previous Report is in flight: one commit-bound round trip carries as
// many outcomes as finished during the last one. When nothing else is
// pending (no Report in flight, no outcome queued, no job waiting for a
// slot) the slot sends its outcome's Report itself, once, instead of
// waking the reporter thread; what that attempt does not settle goes to
// the reporter thread's queue as usual. A task stays held (and
// heartbeated) until the server acknowledged its outcome, so its lease
// cannot expire while a report is retried.
//
// The server applies each outcome as its Complete or Fail and a resent
// Report changes nothing, so a Report with no answer (UNAVAILABLE,
// DEADLINE_EXCEEDED) is resent with backoff until it gets one, or until
// the give-up time once the worker stops. An anvild older than Report
// answers UNIMPLEMENTED: the worker then reports with one Complete or Fail
// per outcome for the rest of its life, from the slot threads.
//
// Threads: reporter_hand() from slot threads; reporter_start(),
// reporter_give_up_at() and reporter_finish() from the thread that starts
// and stops the worker; reporter_counts() from any thread. r->mu guards
// the queue, stop, legacy, give_up_ms and the counts; the send buffers
// belong to the reporter thread.
#ifndef RUNTIME_REPORTER_H
#define RUNTIME_REPORTER_H

#include "runtime/tasks.h"

#include <anvil/anvil.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct report_buf;

struct reporter {
    struct tasks      *ts;
    anvil_client      *client; // shared with the heartbeat; borrowed
    const char        *name;   // the worker's; borrowed
    struct report_buf *buf;    // the reporter thread's
    pthread_t          thr;
    bool               started;

    pthread_mutex_t mu;
    pthread_cond_t  cv;   // an outcome was queued, or stop was set
    struct task    *head; // outcomes waiting to be sent, FIFO
    struct task    *tail;
    bool            stop;       // the slots are gone: flush and exit
    bool            sending;    // a Report is in flight (thread or slot)
    bool            legacy;     // the server has no Report: Complete/Fail
    int64_t         give_up_ms; // monotonic; retries end then (0 = never)
    uint64_t        succeeded;  // outcomes acknowledged as Complete
    uint64_t        failed;     // outcomes acknowledged as Fail
};

// Sets r up. ANVIL_RESOURCE_EXHAUSTED when out of memory.
int  reporter_init(struct reporter *r, struct tasks *ts, anvil_client *client,
     const char *name);
void reporter_fini(struct reporter *r);

// Starts the reporter thread.
int reporter_start(struct reporter *r);

// The handler of t returned; its outcome is t->ok and t->ctx. Finishes t
// in tasks and queues it (or, against an older server, reports it now).
// The task is released once the server acknowledged it. Slot threads.
void reporter_hand(struct reporter *r, struct task *t);

// From now on, a report that gets no answer is given up at at_ms.
void reporter_give_up_at(struct reporter *r, int64_t at_ms);

// Once no slot runs: sends every outcome still queued (retrying until the
// give-up time) and joins the reporter thread.
void reporter_finish(struct reporter *r);

// The outcomes acknowledged so far.
void reporter_counts(struct reporter *r, uint64_t *succeeded, uint64_t *failed);

#endif // RUNTIME_REPORTER_H
