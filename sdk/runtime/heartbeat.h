// heartbeat.h - the heartbeat thread: extends every lease tasks holds and
// flags the jobs the server says to stop. Calls tasks and rtutil only.
//
// The heartbeat covers every task held, whether queued, running or waiting
// for its report, so a prefetched job's lease or a report retried for long
// never expires while the worker still holds it. It runs until tasks reach
// the CLOSED phase, i.e. after the last outcome was sent.
//
// Threads: heartbeat_start() and heartbeat_join() from the thread that
// starts and stops the worker. No lock of its own: the fields are set
// before the thread starts and read-only after.
#ifndef RUNTIME_HEARTBEAT_H
#define RUNTIME_HEARTBEAT_H

#include "runtime/tasks.h"

#include <anvil/anvil.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct heartbeat {
    struct tasks *ts;
    anvil_client *client; // shared with the reporter; borrowed
    const char   *name;   // the worker's; borrowed
    int64_t       period_ms;
    pthread_t     thr;
    bool          started;
};

// Starts the heartbeat thread; every field but thr and started is set.
int heartbeat_start(struct heartbeat *hb);

// Joins the thread (tasks must be CLOSED); safe if never started.
void heartbeat_join(struct heartbeat *hb);

#endif // RUNTIME_HEARTBEAT_H
