// slots.h - the slot threads: each takes the next task, runs its job's
// handler and hands the outcome to the reporter, then takes the next at
// once. Calls tasks, reporter and rtutil.
//
// Threads: slots_start() and slots_join() from the thread that starts and
// stops the worker. No lock of its own: the handler table and the other
// fields are set before the threads start and read-only after. A slot
// exits once tasks reach POLL_DONE with nothing queued.
#ifndef RUNTIME_SLOTS_H
#define RUNTIME_SLOTS_H

#include "runtime/reporter.h"
#include "runtime/tasks.h"

#include <anvil/worker.h>

#include <pthread.h>
#include <stddef.h>

// The handler of one job type.
struct handler {
    char            *type;
    anvil_handler_fn fn;
    void            *arg;
};

struct slots {
    struct tasks         *ts;
    struct reporter      *rep;
    const struct handler *handlers; // the worker's; borrowed
    size_t                n_handlers;
    const char           *name; // the worker's; borrowed
    pthread_t            *thr;
    int                   n_thr;
};

// Starts n slot threads; on failure the ones started keep running until
// joined. ANVIL_RESOURCE_EXHAUSTED or ANVIL_INTERNAL.
int slots_start(struct slots *s, int n);

// Joins every slot thread (after tasks reached POLL_DONE) and frees them.
void slots_join(struct slots *s);

#endif // RUNTIME_SLOTS_H
