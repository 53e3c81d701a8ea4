// poller.h - the poll thread: leases jobs for the slots and the prefetch
// queue and hands them to tasks. Calls tasks and rtutil only.
//
// It asks for as many jobs as the slots plus the prefetch queue can take,
// minus the held tasks whose handler has not returned, so that a slot
// whose handler returns finds its next job waiting instead of waiting a
// Poll round trip. Tasks whose outcome only waits for the reporter no
// longer count, unless more than POLLER_MAX_BACKLOG of them pile up (the
// server is slow to take reports): then the poll waits. Adaptive prefetch
// sizes the queue after each Poll (see adapt() in poller.c).
//
// Threads: poller_start() and poller_join() from the thread that starts
// and stops the worker; poller_cut() and poller_peek() from any thread.
// p->mu guards in_call, call_ms and prefetch (which only the poll thread
// writes); the rest is set before the thread starts and read-only after.
#ifndef RUNTIME_POLLER_H
#define RUNTIME_POLLER_H

#include "runtime/tasks.h"

#include <anvil/anvil.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

// Outcomes waiting for the reporter beyond which the poll thread waits:
// bounds the leases held (and each heartbeat) when reports fall behind.
#define POLLER_MAX_BACKLOG ANVIL_REPORT_MAX
// poller_cut() ends a Poll only once it has been in flight this long.
#define POLLER_CUT_MS 250

struct poller {
    struct tasks         *ts;
    anvil_client         *client; // the poll thread's own; borrowed
    struct anvil_poll_req req;    // borrows the worker's names
    int                   slots;
    int                   prefetch_max; // what adaptive prefetch may reach
    bool                  prefetch_auto;
    uint64_t              returned; // n_returned at the last reply; thread's
    pthread_t             thr;
    bool                  started;

    pthread_mutex_t mu;
    pthread_cond_t  cv;       // (monotonic) a Poll ended
    bool            in_call;  // a Poll is in flight, sent at call_ms
    int64_t         call_ms;  // monotonic
    int             prefetch; // leases beyond the slots now; 0 = none
};

// Sets p up; req borrows what it points to for the poller's life.
// prefetch and prefetch_max as the worker computed them. ANVIL_INTERNAL
// when a condvar cannot be made.
int  poller_init(struct poller *p, struct tasks *ts, anvil_client *client,
     const struct anvil_poll_req *req, int slots, int prefetch, int prefetch_max,
     bool prefetch_auto);
void poller_fini(struct poller *p);

// Starts the poll thread. It runs until tasks leave the OPEN phase.
int poller_start(struct poller *p);

// Ends the Poll in flight, if any, once it is parked (see poller.c).
void poller_cut(struct poller *p);

// Joins the poll thread (after tasks left OPEN); safe if never started.
void poller_join(struct poller *p);

// The prefetch now and whether a Poll is in flight.
void poller_peek(struct poller *p, int *prefetch, bool *in_call);

#endif // RUNTIME_POLLER_H
