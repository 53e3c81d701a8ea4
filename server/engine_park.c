// engine_park.c - parked long-polls (Poll, WaitJob, WaitWorkflow,
// WatchEvents): parking one, waking those whose answer arrived in a batch,
// answering one whose wait ended, dropping those of a closed connection,
// and answering all of them when the engine stops. Engine thread only.
#include "engine_impl.h"
#include "util/clock.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

void
engine_list_push(struct cmd **head, struct cmd *c)
{
    c->next = *head;
    *head   = c;
}

static void
list_append(struct cmd **head, struct cmd *c)
{
    c->next = NULL;
    while (*head != NULL)
        head = &(*head)->next;
    *head = c;
}

// Every parked list, for the code that walks them all.
#define N_PARKED 4

static void
parked_lists(struct engine *e, struct cmd **lists[N_PARKED])
{
    lists[0] = &e->parked_polls;
    lists[1] = &e->parked_waits;
    lists[2] = &e->parked_flows;
    lists[3] = &e->parked_events;
}

void
engine_park(
    struct engine *e, struct cmd **list, struct cmd *c, int64_t deadline)
{
    c->waiter_seq = ++e->waiter_seq;
    // Polls keep their order (the longest-waiting worker is served first);
    // waits have none, and thousands may park: no walk to the tail.
    if (list == &e->parked_polls)
        list_append(list, c);
    else
        engine_list_push(list, c);
    engine_timer_add(e, TIMER_WAITER, deadline, (int64_t) c->waiter_seq, 0);
}

bool
engine_worker_waiting(const struct engine *e, const char *worker)
{
    for (const struct cmd *c = e->parked_polls; c != NULL; c = c->next) {
        if (strcmp(c->u.poll.worker, worker) == 0)
            return true;
    }
    return false;
}

// A connection closed: its parked long-polls can no longer be answered.
// A Poll left parked would lease jobs to nobody (they would wait out their
// lease), so they are answered now, to no one.
void
engine_drop_pipe(struct engine *e, uint32_t pipe, struct cmd **reply)
{
    struct cmd **lists[N_PARKED];
    parked_lists(e, lists);
    for (size_t i = 0; i < N_PARKED; i++) {
        for (struct cmd **pp = lists[i]; *pp != NULL;) {
            struct cmd *c = *pp;
            if (c->pipe != pipe) {
                pp = &c->next;
                continue;
            }
            *pp = c->next;
            av_error_set(&c->err, ANVIL_UNAVAILABLE, "connection closed");
            engine_list_push(reply, c);
        }
    }
}

// A long-poll's wait ended: answer it with what there is now.
void
engine_unpark_expired(struct engine *e, struct batch *b, uint64_t seq)
{
    struct cmd **lists[N_PARKED];
    parked_lists(e, lists);
    for (size_t i = 0; i < N_PARKED; i++) {
        for (struct cmd **pp = lists[i]; *pp != NULL; pp = &(*pp)->next) {
            struct cmd *c = *pp;
            if (c->waiter_seq != seq)
                continue;
            *pp = c->next;
            av_error_clear(&c->err);
            if (c->kind == CMD_WAIT)
                c->err.code = store_job_get(
                    e->st, c->u.wait.id, &c->u.wait.job, &c->err);
            else if (c->kind == CMD_WF_WAIT)
                c->err.code = store_workflow_get(
                    e->st, c->u.wf.id, true, &c->u.wf.wf, &c->err);
            // WatchEvents answers as it stands: no events, next_seq
            // where its last read got to.
            engine_list_push(&b->reply, c);
            return;
        }
    }
}

static int
id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

// Sorts l for id_in(): a batch may finish thousands of jobs while
// thousands of waits are parked, so each wait looks its id up.
static void
id_sort(struct id_list *l)
{
    if (l->n > 1)
        qsort(l->ids, l->n, sizeof(*l->ids), id_cmp);
}

static bool
id_in(const struct id_list *l, int64_t id)
{
    return l->n > 0
        && bsearch(&id, l->ids, l->n, sizeof(*l->ids), id_cmp) != NULL;
}

// Answers the parked waits whose job or workflow ended in this batch, and
// the event watchers that have events now.
void
engine_wake_waiters(struct engine *e, struct batch *b)
{
    if (b->events_written)
        events_wake(e, b);
    if (e->parked_waits == NULL && e->parked_flows == NULL)
        return;
    id_sort(&b->finished);
    id_sort(&b->flows);
    for (struct cmd **pp = &e->parked_waits; *pp != NULL;) {
        struct cmd *c = *pp;
        if (!id_in(&b->finished, c->u.wait.id)) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        c->err.code
            = store_job_get(e->st, c->u.wait.id, &c->u.wait.job, &c->err);
        c->u.wait.done = true;
        engine_list_push(&b->reply, c);
    }
    for (struct cmd **pp = &e->parked_flows; *pp != NULL;) {
        struct cmd *c = *pp;
        if (!id_in(&b->flows, c->u.wf.id)) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        c->err.code
            = store_workflow_get(e->st, c->u.wf.id, true, &c->u.wf.wf, &c->err);
        c->u.wf.done = true;
        engine_list_push(&b->reply, c);
    }
}

void
engine_park_retime(struct engine *e)
{
    struct cmd **lists[N_PARKED];
    parked_lists(e, lists);
    for (size_t i = 0; i < N_PARKED; i++) {
        for (struct cmd *c = *lists[i]; c != NULL; c = c->next)
            engine_timer_add(
                e, TIMER_WAITER, av_now_ms(), (int64_t) c->waiter_seq, 0);
    }
}

void
engine_park_stop(struct engine *e)
{
    struct cmd **lists[N_PARKED];
    parked_lists(e, lists);
    for (size_t i = 0; i < N_PARKED; i++) {
        engine_answer_all(
            *lists[i], ANVIL_UNAVAILABLE, "the server is stopping");
        *lists[i] = NULL;
    }
}
