// gate.h - the door between a transport and the engine: callbacks pass it
// to post a command, and stopping closes it and waits until no callback is
// still inside engine_submit(). rpc.c (nng) and http.c (HTTP) each keep
// one, under their own mutex, so that what else that mutex guards (the
// contexts, the connections) stays consistent with `closing`.
#ifndef SERVER_GATE_H
#define SERVER_GATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct engine;

struct gate {
    pthread_mutex_t *lock;    // the owner's; guards closing and inside
    pthread_cond_t   idle;    // signalled when inside drops to 0
    bool             closing; // read it under *lock
    int              inside;
};

void gate_init(struct gate *g, pthread_mutex_t *lock);
void gate_fini(struct gate *g);

// Passes the gate unless it is closing (then false). Any thread; takes
// *lock.
bool gate_enter(struct gate *g);
void gate_leave(struct gate *g);

// Closes the gate and waits until nobody is inside. Takes *lock.
void gate_close(struct gate *g);

// A connection (nng pipe, or HTTP connection id) closed: posts a
// CMD_PIPE_CLOSED through the gate, so that the engine answers that
// connection's parked long-polls at once. When the gate is closing or
// memory is short, nothing is posted and they end at their timeout.
void gate_pipe_closed(struct gate *g, struct engine *e, uint32_t pipe);

#endif
