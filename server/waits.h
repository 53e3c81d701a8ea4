// waits.h - counts the long-polls in flight, in total and per connection,
// against their limits (anvild --max-waits and --max-waits-per-conn, each
// up to 10,000,000). Connections are counted in slots by pipe id modulo
// WAITS_SLOTS: two connections sharing a slot share its limit, which can
// only make the limit stricter, never looser.
//
// Not thread-safe: the caller holds its own lock (rpc.lock).
#ifndef SERVER_WAITS_H
#define SERVER_WAITS_H

#include <anvil/anvil.h>
#include <stdint.h>

#define WAITS_SLOTS 4096

struct waits {
    int      max;          // in total
    int      max_per_conn; // per connection
    int      total;
    uint32_t by_pipe[WAITS_SLOTS];
};

// Counts one long-poll on pipe in. RESOURCE_EXHAUSTED, naming the limit,
// if that would pass one.
int waits_enter(struct waits *w, uint32_t pipe, struct anvil_error *err);

// Counts one long-poll on pipe out (one that waits_enter() let in).
void waits_leave(struct waits *w, uint32_t pipe);

#endif
