// jobs_bulk.c - RetryJobs and CancelJobs: dead letters replayed, or work
// cancelled, many jobs per command. Runs on the engine thread inside the
// command's savepoint. It changes no job itself: it selects the jobs
// ListJobs would list for the filter and hands each to jobs.c's own
// jobs_retry_one or jobs_cancel_one, so every job goes through the same
// rules, events, metrics and workflow effects as RetryJob or CancelJob one
// by one. Any error rolls the whole command back (its savepoint): a call
// changes all the jobs it answers, or none.
//
// A resend (same request id and caller) is answered from memory with the
// first answer: the ring of the last BULK_MEMORY answers, forgotten when a
// batch is rolled back (its answers were never sent) and on a restart.
#include "engine_impl.h"
#include "util/error.h"
#include "util/log.h"

#include <stdlib.h>

static struct bulk_memo *
memo_find(struct engine *e, const struct cmd *c)
{
    for (size_t i = 0; c->request_id != 0 && i < BULK_MEMORY; i++) {
        struct bulk_memo *m = &e->bulk_memo[i];
        if (m->rid == c->request_id && m->token_id == c->token_id
            && m->kind == (int) c->kind)
            return m;
    }
    return NULL;
}

// Remembers c's answer for a resend. Out of memory only costs the memory.
static void
memo_add(struct engine *e, const struct cmd *c)
{
    const struct cmd_bulk *k = &c->u.bulk;
    if (c->request_id == 0)
        return;
    struct bulk_memo *m = &e->bulk_memo[e->bulk_next++ % BULK_MEMORY];
    free(m->ids);
    m->ids         = malloc((k->n + 1) * sizeof(*m->ids));
    m->rid         = m->ids != NULL ? c->request_id : 0;
    m->token_id    = c->token_id;
    m->kind        = (int) c->kind;
    m->n           = m->ids != NULL ? k->n : 0;
    m->next_before = k->next_before;
    for (size_t i = 0; i < m->n; i++)
        m->ids[i] = k->ids[i];
}

static int
replay(struct cmd *c, const struct bulk_memo *m)
{
    struct cmd_bulk *k = &c->u.bulk;
    k->ids             = malloc((m->n + 1) * sizeof(*k->ids));
    if (k->ids == NULL)
        return av_error_set(&c->err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    for (k->n = 0; k->n < m->n; k->n++)
        k->ids[k->n] = m->ids[k->n];
    k->next_before = m->next_before;
    return ANVIL_OK;
}

// Changes one job; *changed says whether it did.
typedef int (*bulk_one_fn)(struct engine *e, struct batch *b, struct cmd *c,
    int64_t id, bool *changed);

static int
retry_one(
    struct engine *e, struct batch *b, struct cmd *c, int64_t id, bool *changed)
{
    *changed = true;
    return jobs_retry_one(e, b, id, c->u.bulk.max_attempts,
        "retried on request (RetryJobs)", &c->err);
}

static int
cancel_one(
    struct engine *e, struct batch *b, struct cmd *c, int64_t id, bool *changed)
{
    return jobs_cancel_one(e, b, id, changed, &c->err);
}

static int
apply(struct engine *e, struct batch *b, struct cmd *c, bulk_one_fn one)
{
    struct cmd_bulk        *k = &c->u.bulk;
    const struct bulk_memo *m = memo_find(e, c);
    if (m != NULL)
        return replay(c, m);
    // One id more than the limit tells whether more match.
    struct store_list_filter f   = k->f;
    int64_t                 *ids = NULL;
    size_t                   n   = 0;
    f.limit++;
    int rc = store_job_ids(
        e->st, &f, c->kind == CMD_RETRY_MANY, &ids, &n, &c->err);
    size_t take = n > k->f.limit ? k->f.limit : n;
    if (rc == ANVIL_OK) {
        k->ids = malloc((take + 1) * sizeof(*k->ids));
        if (k->ids == NULL)
            rc = av_error_set(
                &c->err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (size_t i = 0; rc == ANVIL_OK && i < take; i++) {
        bool changed = false;
        rc           = one(e, b, c, ids[i], &changed);
        if (rc == ANVIL_NOT_FOUND)
            rc = av_error_set(&c->err, ANVIL_INTERNAL,
                "job j%lld vanished while it was changed", (long long) ids[i]);
        if (changed)
            k->ids[k->n++] = ids[i];
    }
    if (rc == ANVIL_OK && n > take)
        k->next_before = ids[take - 1];
    free(ids);
    if (rc != ANVIL_OK)
        return rc;
    memo_add(e, c);
    AV_INFO(c->kind == CMD_RETRY_MANY ? "jobs.retried" : "jobs.canceled",
        "count=%zu state=%s more=%d", k->n, anvil_job_state_name(k->f.state),
        k->next_before != 0);
    return ANVIL_OK;
}

int
jobs_retry_many(struct engine *e, struct batch *b, struct cmd *c)
{
    return apply(e, b, c, retry_one);
}

int
jobs_cancel_many(struct engine *e, struct batch *b, struct cmd *c)
{
    return apply(e, b, c, cancel_one);
}

void
jobs_bulk_forget(struct engine *e)
{
    for (size_t i = 0; i < BULK_MEMORY; i++)
        e->bulk_memo[i].rid = 0;
}

void
jobs_bulk_free(struct engine *e)
{
    for (size_t i = 0; i < BULK_MEMORY; i++)
        free(e->bulk_memo[i].ids);
}
