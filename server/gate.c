// gate.c - see gate.h.
#include "gate.h"

#include "engine.h"

#include <stdlib.h>

void
gate_init(struct gate *g, pthread_mutex_t *lock)
{
    g->lock    = lock;
    g->closing = false;
    g->inside  = 0;
    pthread_cond_init(&g->idle, NULL);
}

void
gate_fini(struct gate *g)
{
    pthread_cond_destroy(&g->idle);
}

bool
gate_enter(struct gate *g)
{
    pthread_mutex_lock(g->lock);
    bool open = !g->closing;
    if (open)
        g->inside++;
    pthread_mutex_unlock(g->lock);
    return open;
}

void
gate_leave(struct gate *g)
{
    pthread_mutex_lock(g->lock);
    if (--g->inside == 0 && g->closing)
        pthread_cond_broadcast(&g->idle);
    pthread_mutex_unlock(g->lock);
}

void
gate_close(struct gate *g)
{
    pthread_mutex_lock(g->lock);
    g->closing = true;
    while (g->inside > 0)
        pthread_cond_wait(&g->idle, g->lock);
    pthread_mutex_unlock(g->lock);
}

static void
free_cmd(struct cmd *c, void *arg)
{
    (void) arg;
    free(c);
}

void
gate_pipe_closed(struct gate *g, struct engine *e, uint32_t pipe)
{
    struct cmd *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->kind = CMD_PIPE_CLOSED;
    c->pipe = pipe;
    c->done = free_cmd;
    if (!gate_enter(g)) {
        free(c);
        return;
    }
    engine_submit(e, c);
    gate_leave(g);
}
