// engine_cmd.c - what command kinds share: freeing what each kind's apply
// left in its outputs (each row of rpc_table.h names one of these) and the
// idempotency lookup of the submits.
#include "engine_impl.h"

#include <stdlib.h>
#include <string.h>

bool
engine_submit_known(struct engine *e, struct cmd *c,
    const struct submit_lookup *l, const char *key, int64_t *id, bool *existed)
{
    if (c->request_id != 0
        && l->by_request(e->st, c->request_id, id, &c->err) != ANVIL_NOT_FOUND)
        return true; // a resend of a submit already applied
    if (key != NULL && l->by_key(e->st, key, id, &c->err) != ANVIL_NOT_FOUND) {
        *existed = c->err.code == ANVIL_OK;
        return true;
    }
    return false;
}

void
engine_fini_none(struct cmd *c)
{
    (void) c;
}

void
engine_fini_job(struct cmd *c) // GET, CANCEL (struct cmd_job)
{
    job_fini(&c->u.get.job);
}

void
engine_fini_wait(struct cmd *c)
{
    job_fini(&c->u.wait.job);
}

static void
free_jobs(struct job **jobs, size_t *n)
{
    job_array_free(*jobs, *n);
    *jobs = NULL;
    *n    = 0;
}

void
engine_fini_list(struct cmd *c)
{
    free_jobs(&c->u.list.jobs, &c->u.list.n);
}

void
engine_fini_bulk(struct cmd *c) // RETRY_MANY, CANCEL_MANY
{
    free(c->u.bulk.ids);
    c->u.bulk.ids = NULL;
    c->u.bulk.n   = 0;
}

void
engine_fini_poll(struct cmd *c)
{
    free_jobs(&c->u.poll.jobs, &c->u.poll.n);
}

void
engine_fini_heartbeat(struct cmd *c)
{
    free(c->u.heartbeat.canceled);
    free(c->u.heartbeat.lost);
    c->u.heartbeat.canceled = c->u.heartbeat.lost = NULL;
    c->u.heartbeat.ncanceled = c->u.heartbeat.nlost = 0;
}

void
engine_fini_health(struct cmd *c)
{
    store_depths_free(c->u.health.depths, c->u.health.n);
    c->u.health.depths = NULL;
    c->u.health.n      = 0;
    free(c->u.health.recent);
    c->u.health.recent   = NULL;
    c->u.health.n_recent = 0;
    store_names_free(c->u.health.paused, c->u.health.n_paused);
    c->u.health.paused   = NULL;
    c->u.health.n_paused = 0;
    store_queue_limits_free(c->u.health.limits, c->u.health.n_limits);
    c->u.health.limits   = NULL;
    c->u.health.n_limits = 0;
    for (size_t i = 0; i < c->u.health.n_keys; i++)
        free(c->u.health.keys[i].key);
    free(c->u.health.keys);
    c->u.health.keys   = NULL;
    c->u.health.n_keys = 0;
}

void
engine_fini_retry(struct cmd *c)
{
    job_fini(&c->u.retry.job);
}

void
engine_fini_events(struct cmd *c)
{
    store_events_free(c->u.events.events, c->u.events.n);
    c->u.events.events = NULL;
    c->u.events.n      = 0;
}

void
engine_fini_token(struct cmd *c)
{
    store_tokens_free(c->u.token.tokens, c->u.token.n);
    c->u.token.tokens = NULL;
    c->u.token.n      = 0;
    memset(c->u.token.secret, 0, sizeof(c->u.token.secret));
    memset(c->u.token.hash, 0, sizeof(c->u.token.hash));
}

void
engine_fini_schedule(struct cmd *c)
{
    store_schedules_free(c->u.schedule.out, c->u.schedule.n);
    c->u.schedule.out = NULL;
    c->u.schedule.n   = 0;
}

void
engine_fini_workers(struct cmd *c)
{
    registry_entries_free(c->u.workers.w, c->u.workers.n);
    c->u.workers.w = NULL;
    c->u.workers.n = 0;
}

void
engine_fini_workflow(struct cmd *c) // struct cmd_wf
{
    workflow_fini(&c->u.wf.wf);
}

void
engine_fini_wf_list(struct cmd *c)
{
    workflow_array_free(c->u.wf_list.wfs, c->u.wf_list.n);
    c->u.wf_list.wfs = NULL;
    c->u.wf_list.n   = 0;
}

void
engine_fini_batch(struct cmd *c)
{
    for (size_t i = 0; i < c->u.batch.n; i++)
        engine_cmd_fini(&c->u.batch.items[i]);
}

void
engine_fini_metrics(struct cmd *c)
{
    free(c->u.metrics.text);
    c->u.metrics.text = NULL;
    c->u.metrics.len  = 0;
}
