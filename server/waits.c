// waits.c - long-poll counting against the server's limits.
#include "waits.h"

#include "util/error.h"

int
waits_enter(struct waits *w, uint32_t pipe, struct anvil_error *err)
{
    uint32_t *slot = &w->by_pipe[pipe % WAITS_SLOTS];
    if (w->total >= w->max)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED,
            "the server holds %d long-polls, its limit (anvild "
            "--max-waits); retry later",
            w->total);
    if (w->max_per_conn < 1 || *slot >= (uint32_t) w->max_per_conn)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED,
            "this connection holds %lu long-polls, the limit per "
            "connection (anvild --max-waits-per-conn)",
            (unsigned long) *slot);
    w->total++;
    (*slot)++;
    return ANVIL_OK;
}

void
waits_leave(struct waits *w, uint32_t pipe)
{
    w->total--;
    w->by_pipe[pipe % WAITS_SLOTS]--;
}
