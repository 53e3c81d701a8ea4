// worker_peek.h - a look at a running worker's private state, for tests
// that check what it holds. Any thread.
#ifndef RUNTIME_WORKER_PEEK_H
#define RUNTIME_WORKER_PEEK_H

#include <anvil/worker.h>

#include <stdbool.h>
#include <stddef.h>

struct worker_peek {
    bool   quiet;    // no Poll in flight or due; every outcome acknowledged
    size_t n_held;   // leases held
    int    prefetch; // its prefetch now
};

// Fills out from w's poller and tasks (read one after the other).
void worker_peek(anvil_worker *w, struct worker_peek *out);

#endif // RUNTIME_WORKER_PEEK_H
