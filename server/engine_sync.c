// engine_sync.c - the engine's sync thread (deferred sync, see
// store_needs_sync): it makes committed batches durable with one
// store_sync() each round and answers them, in commit order, while the
// engine thread applies the next batch. A failed sync stops the engine
// (engine_fatal) instead of acknowledging what may not be on disk.
#include "engine_impl.h"
#include "metrics.h"
#include "util/clock.h"
#include "util/error.h"

#include <stdatomic.h>
#include <stddef.h>

// The commits are applied but may not be on disk, and the engine's memory
// already moved on: acknowledging them would break durability. Their
// outcome is unknown, so they are answered UNAVAILABLE (a resend with the
// same request id is safe), and the server stops, so that a restart
// recovers from exactly what the disk holds.
static void
sync_failed(struct engine *e, const struct anvil_error *err, struct cmd *list)
{
    engine_fatal(e, err);
    engine_answer_all(list, ANVIL_UNAVAILABLE,
        "the server could not make this request durable and is stopping; "
        "it may or may not be applied: resend it with the same request id "
        "once the server is back");
}

// Syncs and answers list; once a sync failed, never syncs again (a later
// sync could succeed without the lost pages on disk).
static void
sync_answer(struct engine *e, struct cmd *list)
{
    struct anvil_error err = { 0 };
    if (atomic_load(&e->failed)) {
        engine_answer_all(list, ANVIL_UNAVAILABLE, ENGINE_MSG_FAILED);
        return;
    }
    int64_t t0 = av_mono_us();
    if (store_sync(e->st, &err) != ANVIL_OK) {
        sync_failed(e, &err, list);
        return;
    }
    metrics_sync(e->cfg.metrics, av_mono_us() - t0);
    engine_trace_list(list, CMD_TRACE_SYNCED);
    engine_answer_all(list, ANVIL_OK, NULL);
}

// Hands a committed batch's replies (in order) to the sync thread.
void
engine_sync_post(struct engine *e, struct cmd *list)
{
    if (list == NULL)
        return;
    struct cmd *last = list;
    while (last->next != NULL)
        last = last->next;
    pthread_mutex_lock(&e->sync_lock);
    if (e->sync_tail != NULL)
        e->sync_tail->next = list;
    else
        e->sync_head = list;
    e->sync_tail = last;
    pthread_cond_signal(&e->sync_wake);
    pthread_mutex_unlock(&e->sync_lock);
}

// The sync thread: takes every reply committed so far, makes them durable
// with one store_sync() and answers them. One sync covers every batch
// committed before it started, so under load it folds several commits.
void *
engine_sync_main(void *arg)
{
    struct engine *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->sync_lock);
        while (e->sync_head == NULL && !e->sync_stop)
            pthread_cond_wait(&e->sync_wake, &e->sync_lock);
        struct cmd *list = e->sync_head;
        e->sync_head = e->sync_tail = NULL;
        bool stop                   = e->sync_stop;
        pthread_mutex_unlock(&e->sync_lock);
        if (list == NULL && stop)
            break;
        sync_answer(e, list);
    }
    return NULL;
}

// Nothing else waits: waking the sync thread would only add its wake-up to
// the reply's latency, so the engine syncs and answers itself. Replies may
// then overtake a batch the sync thread still holds; that is safe, since
// this sync covers that batch too.
void
engine_sync_inline(struct engine *e, struct cmd *list)
{
    sync_answer(e, list);
}

// Answers what the sync thread still holds and joins it.
void
engine_sync_join(struct engine *e)
{
    if (!e->deferred)
        return;
    pthread_mutex_lock(&e->sync_lock);
    e->sync_stop = true;
    pthread_cond_signal(&e->sync_wake);
    pthread_mutex_unlock(&e->sync_lock);
    pthread_join(e->sync_thread, NULL);
}
