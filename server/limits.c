// limits.c - concurrency limits on the engine thread: what the job state
// machine (jobs.c) tells the ready queues when a job with a concurrency
// key stops running, and how the keys' counts are rebuilt from the store.
//
// The counts live in readyq (readyq.h). A lease counts at once (the take
// that leased it); a job that stops running frees its slot only once its
// command's savepoint is kept, so a rolled-back Complete or Fail never
// lets one job too many run. A batch that does not commit rebuilds memory
// from the store (engine.c), counts included.
#include "engine_impl.h"
#include "util/log.h"

#include <stdlib.h>

static bool
has_key(const char *ckey)
{
    return ckey != NULL && ckey[0] != '\0';
}

// The key is recorded by its readyq id, not its name: the stopped job
// still counts under it until limits_keep() releases it, so the id keeps
// naming the key (readyq.h), and no copy of the name is made per job.
void
limits_stopped(struct engine *e, struct batch *b, const char *ckey)
{
    if (!has_key(ckey))
        return;
    uint32_t id = readyq_key_id(e->ready, ckey);
    if (id == 0) // not held: nothing to release (as readyq_release)
        return;
    if (b->n_released == b->cap_released) {
        size_t    cap = b->cap_released ? b->cap_released * 2 : 8;
        uint32_t *v   = realloc(b->released, cap * sizeof(*v));
        if (v == NULL) {
            AV_ERR("limits.oom",
                "key=%s msg=\"out of memory: the key keeps one slot until a "
                "restart\"",
                ckey);
            return;
        }
        b->released     = v;
        b->cap_released = cap;
    }
    b->released[b->n_released++] = id;
}

void
limits_undo(struct batch *b)
{
    b->n_released = 0;
}

void
limits_keep(struct engine *e, struct batch *b)
{
    for (size_t i = 0; i < b->n_released; i++) {
        if (readyq_release_id(e->ready, b->released[i]) > 0)
            b->ready_added = true;
    }
    limits_undo(b);
}

void
limits_batch_free(struct batch *b)
{
    limits_undo(b);
    free(b->released);
    b->released = NULL;
}

int
limits_unpop(struct engine *e, const struct job *j, const char *ckey)
{
    // Pushed before the release, so the key is never forgotten between.
    int rc = 0;
    if (j != NULL)
        readyq_rate_refund(e->ready, j->queue);
    if (j != NULL)
        rc = readyq_push_key(e->ready, j->queue, j->type, j->id, j->priority,
            has_key(j->concurrency_key) ? j->concurrency_key : NULL,
            j->concurrency_limit);
    if (ckey != NULL)
        readyq_release(e->ready, ckey);
    return rc;
}

int
limits_rebuild_job(struct engine *e, const struct job *j)
{
    const char *ckey = has_key(j->concurrency_key) ? j->concurrency_key : NULL;
    int         rc   = 0;
    if (j->state == ANVIL_JOB_QUEUED)
        rc = readyq_push_key(e->ready, j->queue, j->type, j->id, j->priority,
            ckey, j->concurrency_limit);
    else if (j->state == ANVIL_JOB_RUNNING && ckey != NULL)
        rc = readyq_running(e->ready, ckey, j->concurrency_limit, j->id);
    return rc != 0 ? ANVIL_RESOURCE_EXHAUSTED : ANVIL_OK;
}
