// flow.c - the workflow state machine: submit a DAG of steps in one
// transaction, queue a step the moment its last parent succeeds, apply the
// failure policy, cancel, time out, and end the workflow when its steps
// have settled. Runs on the engine thread inside a batch's transaction.
//
// A step is a job row with workflow_id and pending_parents. Its state is
// PENDING until pending_parents reaches 0 (every parent SUCCEEDED), then
// QUEUED in the same transaction as the parent's Complete.
#include "dag.h"
#include "engine_impl.h"
#include "util/error.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
wf_not_found(struct cmd *c, int64_t id)
{
    return av_error_set(
        &c->err, ANVIL_NOT_FOUND, "no workflow with id w%lld", (long long) id);
}

static int
flow_event(struct engine *e, struct batch *b, int kind, int64_t wf,
    const char *name, const char *message, struct anvil_error *err)
{
    struct store_new_event ev = {
        .kind        = kind,
        .workflow_id = wf,
        .type        = name,
        .message     = message,
    };
    return events_emit(e, b, &ev, err);
}

// Ends a RUNNING workflow; a no-op if it had already ended.
static int
end_flow(struct engine *e, struct batch *b, int64_t wf, int state,
    const char *error, struct anvil_error *err)
{
    int rc = store_workflow_finish(e->st, wf, state, error, b->now, err);
    if (rc == ANVIL_NOT_FOUND)
        return ANVIL_OK;
    int kind = state == WF_SUCCEEDED ? EV_WORKFLOW_SUCCEEDED
        : state == WF_FAILED         ? EV_WORKFLOW_FAILED
                                     : EV_WORKFLOW_CANCELED;
    if (rc == ANVIL_OK)
        rc = flow_event(e, b, kind, wf, NULL, error, err);
    if (rc == ANVIL_OK) {
        engine_mark(&b->flows, wf);
        AV_INFO("workflow.finished", "workflow=w%lld state=%s err=\"%s\"",
            (long long) wf,
            state == WF_SUCCEEDED    ? "SUCCEEDED"
                : state == WF_FAILED ? "FAILED"
                                     : "CANCELED",
            error ? error : "");
    }
    return rc;
}

// Has jobs.c cancel a waiting step, and counts it settled.
static int
cancel_waiting(struct engine *e, struct batch *b, int64_t wf, int64_t id,
    const char *why, struct anvil_error *err)
{
    struct store_wf_counts cnt;
    int                    rc = jobs_cancel_waiting(e, b, id, why, err);
    if (rc == ANVIL_OK)
        rc = store_workflow_settle(e->st, wf, false, false, &cnt, err);
    return rc;
}

// Cancels every step not yet finished: waiting ones at once, running ones
// at their worker's next heartbeat or report.
static int
cancel_unfinished(struct engine *e, struct batch *b, int64_t wf,
    const char *why, struct anvil_error *err)
{
    int64_t *ids = NULL;
    size_t   n   = 0;
    int      rc  = store_workflow_unfinished(e->st, wf, &ids, &n, err);
    for (size_t i = 0; rc == ANVIL_OK && i < n; i++) {
        struct store_job_brief br;
        rc = store_job_brief(e->st, ids[i], &br, err);
        if (rc != ANVIL_OK)
            break;
        if (br.state == ANVIL_JOB_RUNNING)
            rc = jobs_request_cancel(e, ids[i], err);
        else
            rc = cancel_waiting(e, b, wf, ids[i], why, err);
    }
    free(ids);
    return rc;
}

// Cancels the PENDING descendants of a step that will never succeed.
static int
cancel_descendants(struct engine *e, struct batch *b, int64_t wf, int64_t from,
    struct anvil_error *err)
{
    struct id_list todo = { 0 };
    engine_mark(&todo, from);
    int rc = todo.n == 1 ? ANVIL_OK : ANVIL_RESOURCE_EXHAUSTED;
    while (rc == ANVIL_OK && todo.n > 0) {
        int64_t  parent = todo.ids[--todo.n];
        int64_t *kids   = NULL;
        size_t   nk     = 0;
        rc              = store_job_children(e->st, parent, &kids, &nk, err);
        for (size_t i = 0; rc == ANVIL_OK && i < nk; i++) {
            struct store_job_brief br;
            rc = store_job_brief(e->st, kids[i], &br, err);
            if (rc != ANVIL_OK || br.state != ANVIL_JOB_PENDING)
                continue;
            rc = cancel_waiting(
                e, b, wf, kids[i], "a step it runs after did not succeed", err);
            engine_mark(&todo, kids[i]);
        }
        free(kids);
    }
    free(todo.ids);
    return rc;
}

// A parent succeeded: children whose parents have all succeeded are queued.
static int
unblock_children(
    struct engine *e, struct batch *b, int64_t parent, struct anvil_error *err)
{
    int64_t *kids = NULL;
    size_t   nk   = 0;
    int      rc   = store_job_children(e->st, parent, &kids, &nk, err);
    if (rc != ANVIL_OK)
        return rc;
    for (size_t i = 0; rc == ANVIL_OK && i < nk; i++)
        rc = jobs_parent_succeeded(e, b, kids[i], err);
    free(kids);
    return rc;
}

// Ends the workflow once every step has settled.
static int
settle_flow(
    struct engine *e, struct batch *b, int64_t wf, struct anvil_error *err)
{
    struct workflow w;
    int             rc = store_workflow_get(e->st, wf, false, &w, err);
    if (rc != ANVIL_OK)
        return rc;
    if (w.state == WF_RUNNING && w.n_settled >= w.n_steps) {
        char why[96] = "";
        int  state   = WF_SUCCEEDED;
        if (w.n_failed > 0) {
            state = WF_FAILED;
            snprintf(why, sizeof(why), "%u of %u steps failed", w.n_failed,
                w.n_steps);
        } else if (w.n_succeeded < w.n_steps) {
            state = WF_CANCELED;
            snprintf(why, sizeof(why), "%u of %u steps were canceled",
                w.n_steps - w.n_succeeded, w.n_steps);
        }
        rc = end_flow(e, b, wf, state, why[0] ? why : NULL, err);
    }
    workflow_fini(&w);
    return rc;
}

int
flow_step_final(struct engine *e, struct batch *b, int64_t wf, int64_t id,
    int state, struct anvil_error *err)
{
    struct store_wf_counts cnt;
    int rc = store_workflow_settle(e->st, wf, state == ANVIL_JOB_SUCCEEDED,
        state == ANVIL_JOB_FAILED, &cnt, err);
    if (rc != ANVIL_OK)
        return rc;
    if (state == ANVIL_JOB_SUCCEEDED) {
        rc = unblock_children(e, b, id, err);
    } else if (state == ANVIL_JOB_FAILED && cnt.state == WF_RUNNING
        && cnt.on_failure == WF_FAIL_FAST) {
        struct job j = { 0 };
        char       why[320];
        rc = store_job_get(e->st, id, &j, err);
        snprintf(why, sizeof(why), "step '%s' failed: %.200s",
            j.step ? j.step : "?", j.error ? j.error : "");
        job_fini(&j);
        if (rc == ANVIL_OK)
            rc = end_flow(e, b, wf, WF_FAILED, why, err);
        if (rc == ANVIL_OK)
            rc = cancel_unfinished(e, b, wf, "the workflow failed", err);
    } else {
        rc = cancel_descendants(e, b, wf, id, err);
    }
    if (rc == ANVIL_OK)
        rc = settle_flow(e, b, wf, err);
    return rc;
}

int
flow_fire_timer(struct engine *e, struct batch *b, int64_t wf)
{
    struct anvil_error err = { 0 };
    struct workflow    w;
    int                rc = store_workflow_get(e->st, wf, false, &w, &err);
    if (rc != ANVIL_OK)
        return rc == ANVIL_NOT_FOUND ? ANVIL_OK : rc;
    // A retried workflow's timeout counts from its retry; the timer set
    // before it is stale.
    int64_t start = w.retried_at > w.created_at ? w.retried_at : w.created_at;
    bool    due   = w.state == WF_RUNNING && b->now >= start + w.timeout_ms;
    workflow_fini(&w);
    if (!due)
        return ANVIL_OK;
    AV_WARN("workflow.timeout", "workflow=w%lld", (long long) wf);
    rc = end_flow(e, b, wf, WF_FAILED, "workflow timed out", &err);
    if (rc == ANVIL_OK)
        rc = cancel_unfinished(e, b, wf, "the workflow timed out", &err);
    return rc;
}

// ---- commands ----

// Inserts the steps in submission order, then the edges.
static int
insert_steps(
    struct engine *e, struct batch *b, struct cmd *c, int64_t wf, int64_t *ids)
{
    struct cmd_wf_submit *s   = &c->u.wf_submit;
    const struct dag     *dag = s->dag;
    int                   rc  = ANVIL_OK;
    for (size_t i = 0; rc == ANVIL_OK && i < s->n; i++) {
        const struct cmd_wf_step *st = &s->steps[i];
        struct store_new_job      nj = {
                 .type        = st->type,
                 .queue       = st->queue,
                 .payload     = st->payload,
                 .payload_len = st->len,
                 .priority    = st->priority,
                 .state = dag->n_parents[i] ? ANVIL_JOB_PENDING : ANVIL_JOB_QUEUED,
                 .retry             = st->retry,
                 .created_at        = b->now,
                 .run_at            = b->now,
                 .timeout_ms        = st->timeout_ms,
                 .workflow_id       = wf,
                 .step              = st->name,
                 .pending_parents   = (uint32_t) dag->n_parents[i],
                 .lease_ms          = st->lease_ms,
                 .concurrency_key   = st->ckey,
                 .concurrency_limit = st->climit,
        };
        rc = jobs_insert(e, b, &nj, &ids[i], &c->err);
    }
    for (size_t i = 0; rc == ANVIL_OK && i < s->n; i++) {
        for (size_t k = 0; rc == ANVIL_OK && k < dag->n_parents[i]; k++)
            rc = store_edge_insert(
                e->st, ids[dag->parents[i][k]], ids[i], &c->err);
    }
    return rc;
}

int
flow_submit(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_wf_submit             *s = &c->u.wf_submit;
    static const struct submit_lookup known
        = { store_workflow_by_request, store_workflow_by_key };
    if (engine_submit_known(e, c, &known, s->key, &s->id, &s->existed))
        return c->err.code;
    struct store_new_workflow nw = {
        .name       = s->name,
        .on_failure = s->on_failure,
        .created_at = b->now,
        .timeout_ms = s->timeout_ms,
        .idem_key   = s->key,
        .request_id = c->request_id,
        .n_steps    = (uint32_t) s->n,
    };
    int64_t *ids = calloc(s->n, sizeof(*ids));
    if (ids == NULL)
        return av_error_set(&c->err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    int rc = store_workflow_insert(e->st, &nw, &s->id, &c->err);
    if (rc == ANVIL_OK)
        rc = flow_event(
            e, b, EV_WORKFLOW_STARTED, s->id, s->name, NULL, &c->err);
    if (rc == ANVIL_OK)
        rc = insert_steps(e, b, c, s->id, ids);
    free(ids);
    if (rc == ANVIL_OK && s->timeout_ms > 0)
        engine_timer_add(e, TIMER_WORKFLOW, b->now + s->timeout_ms, s->id, 0);
    if (rc == ANVIL_OK)
        AV_INFO("workflow.submitted", "workflow=w%lld name=%s steps=%zu",
            (long long) s->id, s->name, s->n);
    return rc;
}

static int
read_get(struct engine *e, struct cmd *c)
{
    int rc = store_workflow_get(e->st, c->u.wf.id, true, &c->u.wf.wf, &c->err);
    return rc == ANVIL_NOT_FOUND ? wf_not_found(c, c->u.wf.id) : rc;
}

int
flow_wait(struct engine *e, struct batch *b, struct cmd *c)
{
    int rc = read_get(e, c);
    if (rc != ANVIL_OK)
        return rc;
    c->u.wf.done = c->u.wf.wf.state != WF_RUNNING;
    if (c->u.wf.done || c->u.wf.timeout_ms == 0)
        return ANVIL_OK;
    workflow_fini(&c->u.wf.wf);
    engine_park(e, &e->parked_flows, c, b->now + c->u.wf.timeout_ms);
    return ENGINE_PARKED;
}

int
flow_cancel_running(struct engine *e, struct batch *b, int64_t wf,
    const char *why, struct anvil_error *err)
{
    int rc = end_flow(e, b, wf, WF_CANCELED, why, err);
    if (rc == ANVIL_OK)
        rc = cancel_unfinished(e, b, wf, "the workflow was canceled", err);
    return rc;
}

int
flow_cancel(struct engine *e, struct batch *b, struct cmd *c)
{
    struct workflow w;
    int64_t         id = c->u.wf.id;
    int             rc = store_workflow_get(e->st, id, false, &w, &c->err);
    if (rc == ANVIL_NOT_FOUND)
        return wf_not_found(c, id);
    if (rc != ANVIL_OK)
        return rc;
    int state = w.state;
    workflow_fini(&w);
    if (state == WF_CANCELED) // cancelling twice is no error
        return read_get(e, c);
    if (state != WF_RUNNING)
        return av_error_set(&c->err, ANVIL_FAILED_PRECONDITION,
            "workflow w%lld already finished: it is %s", (long long) id,
            state == WF_SUCCEEDED ? "SUCCEEDED" : "FAILED");
    rc = flow_cancel_running(e, b, id, "canceled", &c->err);
    if (rc == ANVIL_OK)
        rc = read_get(e, c);
    return rc;
}

static int
read_list(struct engine *e, struct cmd *c)
{
    struct cmd_wf_list      *l = &c->u.wf_list;
    struct store_list_filter f = l->f;
    f.limit++;
    int rc = store_workflow_list(e->st, &f, &l->wfs, &l->n, &c->err);
    if (rc == ANVIL_OK && l->n > l->f.limit) {
        workflow_fini(&l->wfs[--l->n]);
        l->next_before = l->wfs[l->n - 1].id;
    }
    return rc;
}

int
flow_get(struct engine *e, struct batch *b, struct cmd *c)
{
    (void) b;
    return read_get(e, c);
}

int
flow_list(struct engine *e, struct batch *b, struct cmd *c)
{
    (void) b;
    return read_list(e, c);
}

// ---- RetryWorkflow ----

static int
name_cmp(const void *a, const void *b)
{
    const struct job *x = *(const struct job *const *) a;
    const struct job *y = *(const struct job *const *) b;
    return strcmp(x->step, y->step);
}

// The step named name among the sorted steps, or NULL.
static const struct job *
step_named(const struct job *const *by_name, size_t n, const char *name)
{
    struct job               key = { .step = (char *) name };
    const struct job        *k   = &key;
    const struct job *const *hit
        = bsearch(&k, by_name, n, sizeof(*by_name), name_cmp);
    return hit != NULL ? *hit : NULL;
}

// Every step that did not succeed waits again, on the parents that did
// not succeed either.
static int
retry_steps(struct engine *e, struct batch *b, const struct workflow *w,
    struct anvil_error *err)
{
    const struct job **by_name = malloc(w->n * sizeof(*by_name));
    if (by_name == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < w->n; i++)
        by_name[i] = &w->steps[i];
    qsort(by_name, w->n, sizeof(*by_name), name_cmp);
    int rc = ANVIL_OK;
    for (size_t i = 0; rc == ANVIL_OK && i < w->n; i++) {
        const struct job *s = &w->steps[i];
        if (s->state == ANVIL_JOB_SUCCEEDED)
            continue;
        uint32_t pending = 0;
        for (size_t k = 0; k < s->n_after; k++) {
            const struct job *p = step_named(by_name, w->n, s->after[k]);
            if (p == NULL || p->state != ANVIL_JOB_SUCCEEDED)
                pending++;
        }
        rc = jobs_retry_final(
            e, b, s, pending, 1, "its workflow was retried", err);
    }
    free(by_name);
    return rc;
}

// Why w cannot be retried (FAILED_PRECONDITION), or ANVIL_OK.
static int
check_retry(const struct workflow *w, struct anvil_error *err)
{
    if (w->state != WF_FAILED && w->state != WF_CANCELED)
        return av_error_set(err, ANVIL_FAILED_PRECONDITION,
            "workflow w%lld is %s: only a FAILED or CANCELED workflow can "
            "be retried",
            (long long) w->id,
            w->state == WF_RUNNING ? "RUNNING" : "SUCCEEDED");
    for (size_t i = 0; i < w->n; i++) {
        const struct job *s = &w->steps[i];
        if (!anvil_job_state_final(s->state))
            return av_error_set(err, ANVIL_FAILED_PRECONDITION,
                "step '%s' (j%lld) of workflow w%lld is still %s (its "
                "worker has not stopped yet); retry once it has ended",
                s->step, (long long) s->id, (long long) w->id,
                anvil_job_state_name(s->state));
    }
    return ANVIL_OK;
}

int
flow_retry(struct engine *e, struct batch *b, struct cmd *c)
{
    int64_t         id = c->u.wf.id;
    struct workflow w;
    int             rc = store_workflow_get(e->st, id, true, &w, &c->err);
    if (rc == ANVIL_NOT_FOUND)
        return wf_not_found(c, id);
    if (rc != ANVIL_OK)
        return rc;
    rc = check_retry(&w, &c->err);
    if (rc == ANVIL_OK)
        rc = store_workflow_reopen(e->st, id, b->now, &c->err);
    if (rc == ANVIL_OK)
        rc = flow_event(e, b, EV_WORKFLOW_RETRIED, id, w.name,
            "retried on request", &c->err);
    if (rc == ANVIL_OK)
        rc = retry_steps(e, b, &w, &c->err);
    if (rc == ANVIL_OK && w.timeout_ms > 0)
        engine_timer_add(e, TIMER_WORKFLOW, b->now + w.timeout_ms, id, 0);
    if (rc == ANVIL_OK)
        AV_INFO("workflow.retried", "workflow=w%lld", (long long) id);
    workflow_fini(&w);
    if (rc == ANVIL_OK)
        rc = read_get(e, c);
    return rc;
}
