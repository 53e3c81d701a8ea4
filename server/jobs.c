// jobs.c - the job state machine: submit, lease (Poll), heartbeat,
// complete, fail, cancel, retries with backoff, lease expiry and attempt
// timeouts. Runs on the engine thread inside a batch's transaction; see
// engine.c for the batch and docs/architecture.md for the states.
#include "auth.h"
#include "engine_impl.h"
#include "metrics.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double
rand01(struct engine *e)
{
    // xorshift32: jitter needs spread, not strength.
    uint32_t x = e->rand_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    e->rand_state = x;
    return (double) x / 4294967296.0;
}

int64_t
engine_backoff_ms(uint32_t attempt, int64_t initial, int64_t max,
    double multiplier, double jitter)
{
    double d = (double) initial;
    for (uint32_t i = 1; i < attempt && d < (double) max; i++)
        d *= multiplier;
    if (d > (double) max)
        d = (double) max;
    return (int64_t) (d * (0.8 + 0.4 * jitter));
}

// The event of a change to job id; br (its row as read in this batch)
// labels it.
static int
job_event(struct engine *e, struct batch *b, int kind, int64_t id,
    const struct store_job_brief *br, uint32_t attempt, const char *message,
    struct anvil_error *err)
{
    struct store_new_event ev = {
        .kind        = kind,
        .job_id      = id,
        .workflow_id = br->workflow_id,
        .step        = br->step[0] != '\0' ? br->step : NULL,
        .type        = br->type,
        .queue       = br->queue,
        .attempt     = attempt,
        .message     = message,
    };
    return events_emit(e, b, &ev, err);
}

// The same, labelled from a whole row.
static int
job_row_event(struct engine *e, struct batch *b, int kind, const struct job *j,
    const char *worker, const char *message, struct anvil_error *err)
{
    struct store_new_event ev = {
        .kind        = kind,
        .job_id      = j->id,
        .workflow_id = j->workflow_id,
        .step        = j->step != NULL && j->step[0] ? j->step : NULL,
        .type        = j->type,
        .queue       = j->queue,
        .worker      = worker,
        .attempt     = j->attempt,
        .message     = message,
    };
    return events_emit(e, b, &ev, err);
}

static int
final_kind(int state)
{
    return state == ANVIL_JOB_SUCCEEDED ? EV_JOB_SUCCEEDED
        : state == ANVIL_JOB_FAILED     ? EV_JOB_FAILED
                                        : EV_JOB_CANCELED;
}

// The one write of a final state: stores it, marks the job for its
// waiters, writes its event and counts it. br is its row as the caller
// read it in this batch (NULL: read here).
static int
finish_row(struct engine *e, struct batch *b, int64_t id,
    const struct store_job_brief *br, int state, const uint8_t *result,
    size_t len, const char *error, struct anvil_error *err)
{
    struct store_job_brief read;
    if (br == NULL) {
        int rc = store_job_brief(e->st, id, &read, err);
        if (rc != ANVIL_OK)
            return rc;
        br = &read;
    }
    int rc
        = store_job_finish(e->st, id, state, result, len, error, b->now, err);
    if (rc == ANVIL_OK)
        rc = job_event(
            e, b, final_kind(state), id, br, br->attempt, error, err);
    if (rc != ANVIL_OK)
        return rc;
    if (br->state == ANVIL_JOB_RUNNING)
        limits_stopped(e, b, br->concurrency_key);
    engine_mark(&b->finished, id);
    metrics_job_finished(e->cfg.metrics, br->queue, br->type, state,
        br->state == ANVIL_JOB_RUNNING ? b->now - br->started_at : -1);
    return ANVIL_OK;
}

int
jobs_finish(struct engine *e, struct batch *b, int64_t id,
    const struct store_job_brief *br, int state, const uint8_t *result,
    size_t len, const char *error, struct anvil_error *err)
{
    int rc = finish_row(e, b, id, br, state, result, len, error, err);
    if (rc != ANVIL_OK)
        return rc;
    AV_INFO("job.finished", "job=j%lld state=%s", (long long) id,
        anvil_job_state_name(state));
    if (br->workflow_id == 0)
        return ANVIL_OK;
    return flow_step_final(e, b, br->workflow_id, id, state, err);
}

// A failed attempt: retry after a backoff, or fail for good.
static int
fail_attempt(struct engine *e, struct batch *b, int64_t id,
    const struct store_job_brief *br, const char *error, bool retryable,
    int *state, int64_t *retry_at, struct anvil_error *err)
{
    *retry_at = 0;
    if (br->cancel_requested) {
        *state = ANVIL_JOB_CANCELED;
        return jobs_finish(e, b, id, br, *state, NULL, 0, "canceled", err);
    }
    if (!retryable || br->attempt >= br->retry.max_attempts) {
        *state = ANVIL_JOB_FAILED;
        return jobs_finish(e, b, id, br, *state, NULL, 0, error, err);
    }
    int64_t delay = engine_backoff_ms(br->attempt, br->retry.initial_backoff_ms,
        br->retry.max_backoff_ms, br->retry.backoff_multiplier, rand01(e));
    *state        = ANVIL_JOB_SCHEDULED;
    *retry_at     = b->now + delay;
    int rc        = store_job_requeue(e->st, id, *state, *retry_at, error, err);
    if (rc == ANVIL_OK)
        rc = job_event(e, b, EV_JOB_RETRIED, id, br, br->attempt, error, err);
    if (rc == ANVIL_OK) {
        limits_stopped(e, b, br->concurrency_key); // it was RUNNING
        engine_timer_add(e, TIMER_RUN_AT, *retry_at, id, br->attempt);
        AV_INFO("job.retry", "job=j%lld attempt=%u delay_ms=%lld err=\"%s\"",
            (long long) id, br->attempt, (long long) delay, error);
    }
    return rc;
}

int
jobs_insert(struct engine *e, struct batch *b, const struct store_new_job *nj,
    int64_t *id, struct anvil_error *err)
{
    // The one place a submitted retry policy gets its defaults.
    struct store_new_job full = *nj;
    full.retry = retry_policy_resolve(nj->retry, e->cfg.max_attempts);
    int                    rc = store_job_insert(e->st, &full, id, err);
    struct store_new_event ev = {
        .kind        = EV_JOB_SUBMITTED,
        .job_id      = *id,
        .workflow_id = nj->workflow_id,
        .step        = nj->step,
        .type        = nj->type,
        .queue       = nj->queue,
    };
    if (rc == ANVIL_OK)
        rc = events_emit(e, b, &ev, err);
    if (rc != ANVIL_OK)
        return rc;
    metrics_job_submitted(e->cfg.metrics, nj->queue, nj->type);
    if (nj->state == ANVIL_JOB_SCHEDULED)
        engine_timer_add(e, TIMER_RUN_AT, nj->run_at, *id, 0);
    else if (nj->state == ANVIL_JOB_QUEUED
        && engine_push_ready(e, b, *id, nj->queue, nj->type, nj->priority,
            nj->concurrency_key, nj->concurrency_limit))
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    return ANVIL_OK;
}

int
jobs_cancel_waiting(struct engine *e, struct batch *b, int64_t id,
    const char *why, struct anvil_error *err)
{
    return finish_row(e, b, id, NULL, ANVIL_JOB_CANCELED, NULL, 0, why, err);
}

int
jobs_request_cancel(struct engine *e, int64_t id, struct anvil_error *err)
{
    return store_job_request_cancel(e->st, id, err);
}

int
jobs_parent_succeeded(
    struct engine *e, struct batch *b, int64_t id, struct anvil_error *err)
{
    uint32_t pending;
    int      rc = store_job_parent_done(e->st, id, &pending, err);
    if (rc == ANVIL_NOT_FOUND)
        return ANVIL_OK; // cancelled meanwhile
    if (rc != ANVIL_OK || pending > 0)
        return rc;
    struct job j = { 0 };
    rc           = store_job_make_ready(e->st, id, err);
    if (rc == ANVIL_OK)
        rc = store_job_get(e->st, id, &j, err);
    if (rc == ANVIL_OK)
        rc = engine_push_ready(e, b, j.id, j.queue, j.type, j.priority,
            j.concurrency_key, j.concurrency_limit);
    job_fini(&j);
    return rc;
}

int
jobs_submit(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_submit                *s = &c->u.submit;
    static const struct submit_lookup known
        = { store_job_by_request, store_job_by_key };
    if (engine_submit_known(e, c, &known, s->key, &s->id, &s->existed))
        return c->err.code;
    int64_t run_at = s->run_at_ms;
    if (s->delay_ms > 0 && b->now + s->delay_ms > run_at)
        run_at = b->now + s->delay_ms;
    struct store_new_job nj = {
        .type        = s->type,
        .queue       = s->queue,
        .payload     = s->payload,
        .payload_len = s->len,
        .priority    = s->priority,
        .state       = run_at > b->now ? ANVIL_JOB_SCHEDULED : ANVIL_JOB_QUEUED,
        .retry       = s->retry,
        .created_at  = b->now,
        .run_at      = run_at > b->now ? run_at : b->now,
        .timeout_ms  = s->timeout_ms,
        .lease_ms    = s->lease_ms,
        .idem_key    = s->key,
        .request_id  = c->request_id,
        .concurrency_key   = s->ckey,
        .concurrency_limit = s->climit,
    };
    int rc = jobs_insert(e, b, &nj, &s->id, &c->err);
    if (rc != ANVIL_OK)
        return rc;
    AV_INFO("job.submitted", "job=j%lld type=%s queue=%s", (long long) s->id,
        s->type, s->queue);
    return ANVIL_OK;
}

static int
not_found(struct cmd *c, int64_t id)
{
    return av_error_set(
        &c->err, ANVIL_NOT_FOUND, "no job with id j%lld", (long long) id);
}

static int
read_get(struct engine *e, struct cmd *c)
{
    struct cmd_job *g = &c->u.get;
    if (g->key != NULL) {
        int rc = store_job_by_key(e->st, g->key, &g->id, &c->err);
        if (rc == ANVIL_NOT_FOUND)
            return av_error_set(&c->err, ANVIL_NOT_FOUND,
                "no job with idempotency key '%.64s%s'", g->key,
                strlen(g->key) > 64 ? "..." : "");
        if (rc != ANVIL_OK)
            return rc;
    }
    int rc = store_job_get(e->st, g->id, &g->job, &c->err);
    return rc == ANVIL_NOT_FOUND ? not_found(c, g->id) : rc;
}

static int
read_list(struct engine *e, struct cmd *c)
{
    // One row more than the page tells whether another page follows.
    struct cmd_list         *l = &c->u.list;
    struct store_list_filter f = l->f;
    f.limit++;
    int rc = store_job_list(e->st, &f, &l->jobs, &l->n, &c->err);
    if (rc == ANVIL_OK && l->n > l->f.limit) {
        job_fini(&l->jobs[--l->n]);
        l->next_before = l->jobs[l->n - 1].id;
    }
    return rc;
}

// Returns ENGINE_PARKED when the command was parked (no answer yet).
int
jobs_wait(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_wait *w  = &c->u.wait;
    int              rc = store_job_get(e->st, w->id, &w->job, &c->err);
    if (rc == ANVIL_NOT_FOUND)
        return not_found(c, w->id);
    if (rc != ANVIL_OK)
        return rc;
    w->done = anvil_job_state_final(w->job.state);
    if (w->done || w->timeout_ms == 0)
        return ANVIL_OK;
    job_fini(&w->job);
    engine_park(e, &e->parked_waits, c, b->now + w->timeout_ms);
    return ENGINE_PARKED;
}

int
jobs_cancel_one(struct engine *e, struct batch *b, int64_t id, bool *changed,
    struct anvil_error *err)
{
    struct store_job_brief br;
    *changed = false;
    int rc   = store_job_brief(e->st, id, &br, err);
    if (rc != ANVIL_OK || br.state == ANVIL_JOB_CANCELED)
        return rc; // cancelling twice is no error
    if (anvil_job_state_final(br.state))
        return av_error_set(err, ANVIL_FAILED_PRECONDITION,
            "job j%lld already finished: it is %s", (long long) id,
            anvil_job_state_name(br.state));
    if (br.state == ANVIL_JOB_RUNNING) {
        *changed = !br.cancel_requested;
        return jobs_request_cancel(e, id, err);
    }
    *changed = true;
    return jobs_finish(
        e, b, id, &br, ANVIL_JOB_CANCELED, NULL, 0, "canceled", err);
}

int
jobs_cancel(struct engine *e, struct batch *b, struct cmd *c)
{
    int64_t id = c->u.cancel.id;
    bool    changed;
    int     rc = jobs_cancel_one(e, b, id, &changed, &c->err);
    if (rc == ANVIL_NOT_FOUND)
        return not_found(c, id);
    if (rc == ANVIL_OK)
        rc = store_job_get(e->st, id, &c->u.cancel.job, &c->err);
    return rc;
}

int
jobs_retry_final(struct engine *e, struct batch *b, const struct job *j,
    uint32_t pending, uint32_t more, const char *why, struct anvil_error *err)
{
    uint32_t max = j->retry.max_attempts;
    if (more == 0)
        more = 1;
    if (j->attempt > UINT32_MAX - more)
        max = UINT32_MAX;
    else if (j->attempt + more > max)
        max = j->attempt + more;
    int state = pending > 0 ? ANVIL_JOB_PENDING : ANVIL_JOB_QUEUED;
    int rc    = store_job_retry(e->st, j->id, state, pending, max, err);
    if (rc == ANVIL_NOT_FOUND)
        return av_error_set(err, ANVIL_FAILED_PRECONDITION,
            "job j%lld is no longer FAILED or CANCELED", (long long) j->id);
    if (rc == ANVIL_OK)
        rc = job_row_event(e, b, EV_JOB_RETRIED, j, NULL, why, err);
    if (rc == ANVIL_OK && state == ANVIL_JOB_QUEUED
        && engine_push_ready(e, b, j->id, j->queue, j->type, j->priority,
            j->concurrency_key, j->concurrency_limit))
        rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    if (rc == ANVIL_OK)
        AV_INFO("job.retried", "job=j%lld attempt=%u max_attempts=%u",
            (long long) j->id, j->attempt, max);
    return rc;
}

int
jobs_retry_one(struct engine *e, struct batch *b, int64_t id, uint32_t more,
    const char *why, struct anvil_error *err)
{
    struct job j  = { 0 };
    int        rc = store_job_get(e->st, id, &j, err);
    if (rc == ANVIL_OK && j.workflow_id != 0)
        rc = av_error_set(err, ANVIL_FAILED_PRECONDITION,
            "job j%lld is step '%s' of workflow w%lld: retry the workflow "
            "(anvil workflow retry w%lld)",
            (long long) j.id, j.step, (long long) j.workflow_id,
            (long long) j.workflow_id);
    else if (rc == ANVIL_OK && j.state != ANVIL_JOB_FAILED
        && j.state != ANVIL_JOB_CANCELED)
        rc = av_error_set(err, ANVIL_FAILED_PRECONDITION,
            "job j%lld is %s: only a FAILED or CANCELED job can be retried",
            (long long) j.id, anvil_job_state_name(j.state));
    if (rc == ANVIL_OK)
        rc = jobs_retry_final(e, b, &j, 0, more, why, err);
    job_fini(&j);
    return rc;
}

int
jobs_retry(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_retry *r  = &c->u.retry;
    int               rc = jobs_retry_one(
                      e, b, r->id, r->max_attempts, "retried on request", &c->err);
    if (rc == ANVIL_NOT_FOUND)
        return not_found(c, r->id);
    if (rc == ANVIL_OK)
        rc = store_job_get(e->st, r->id, &r->job, &c->err);
    return rc;
}

static struct poll_memo *
memo_find(struct engine *e, const struct cmd *c)
{
    for (size_t i = 0; c->request_id != 0 && i < POLL_MEMORY; i++) {
        if (e->memo[i].rid == c->request_id
            && e->memo[i].token_id == c->token_id)
            return &e->memo[i];
    }
    return NULL;
}

void
jobs_memo_add(struct engine *e, const struct cmd *c)
{
    uint64_t          rid  = c->request_id;
    const struct job *jobs = c->u.poll.jobs;
    size_t            n    = c->u.poll.n;
    if (rid == 0 || n == 0)
        return;
    struct poll_memo *m = &e->memo[e->memo_next++ % POLL_MEMORY];
    free(m->ids);
    m->ids      = malloc(n * sizeof(*m->ids));
    m->rid      = m->ids ? rid : 0;
    m->token_id = c->token_id;
    m->n        = m->ids ? n : 0;
    for (size_t i = 0; i < m->n; i++)
        m->ids[i] = jobs[i].id;
}

// A resent Poll: answer with the jobs the first one leased, if still held.
static int
poll_replay(struct engine *e, struct cmd *c, const struct poll_memo *m)
{
    struct cmd_poll *p = &c->u.poll;
    p->jobs            = calloc(m->n, sizeof(*p->jobs));
    if (p->jobs == NULL)
        return av_error_set(&c->err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < m->n; i++) {
        int rc = store_job_get(e->st, m->ids[i], &p->jobs[p->n], &c->err);
        if (rc == ANVIL_NOT_FOUND)
            continue;
        if (rc != ANVIL_OK)
            return rc;
        if (p->jobs[p->n].state == ANVIL_JOB_RUNNING
            && strcmp(p->jobs[p->n].worker_id, p->worker) == 0)
            p->n++;
        else
            job_fini(&p->jobs[p->n]);
    }
    return ANVIL_OK;
}

void
jobs_lease_timers(struct engine *e, const struct job *j)
{
    engine_timer_add(e, TIMER_LEASE, j->lease_deadline, j->id, j->attempt);
    if (j->timeout_ms > 0)
        engine_timer_add(
            e, TIMER_TIMEOUT, j->started_at + j->timeout_ms, j->id, j->attempt);
}

// Leases up to p->max ready jobs to the polling worker.
// A lease failed and the command's savepoint will be rolled back: the
// failed job (taken under concurrency key ckey, NULL = none) and those
// leased before it in this command are QUEUED again in the database, so
// they go back to the ready queues too, and free their slots.
static void
unpop(struct engine *e, struct cmd *c, int64_t failed, const char *ckey)
{
    struct cmd_poll   *p   = &c->u.poll;
    struct job         j   = { 0 };
    struct anvil_error err = { 0 };
    // The failed job's row is unchanged: read where it belongs.
    bool read = store_job_get(e->st, failed, &j, &err) == ANVIL_OK;
    limits_unpop(e, read ? &j : NULL, ckey);
    job_fini(&j);
    for (size_t i = 0; i < p->n; i++) {
        const char *k = p->jobs[i].concurrency_key;
        limits_unpop(e, &p->jobs[i], k != NULL && k[0] != '\0' ? k : NULL);
    }
    job_array_free(p->jobs, p->n);
    p->jobs = NULL;
    p->n    = 0;
}

int
jobs_poll_take(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_poll *p = &c->u.poll;
    int64_t          id;
    if (p->jobs == NULL)
        p->jobs = calloc(p->max, sizeof(*p->jobs));
    if (p->jobs == NULL)
        return av_error_set(&c->err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    const char *key, *ckey;
    size_t      first = p->n;
    while (p->n < p->max
        && readyq_take(
            e->ready, p->queues, p->nq, p->types, p->nt, &id, &key, &ckey)) {
        int rc = store_job_lease_key(e->st, id, key, p->worker, c->token_id,
            b->now, e->cfg.lease_ms, &p->jobs[p->n], &c->err);
        if (rc == ANVIL_NOT_FOUND) { // cancelled while queued: a stale entry
            readyq_rate_refund(e->ready, key);
            if (ckey != NULL && readyq_release(e->ready, ckey) > 0)
                b->ready_added = true;
            continue;
        }
        struct job *j = &p->jobs[p->n];
        if (rc == ANVIL_OK && j->workflow_id != 0)
            rc = store_job_parent_results(
                e->st, id, &j->parents, &j->n_parents, &c->err);
        if (rc == ANVIL_OK)
            rc = job_row_event(
                e, b, EV_JOB_STARTED, j, p->worker, NULL, &c->err);
        if (rc != ANVIL_OK) {
            job_fini(j);
            unpop(e, c, id, ckey);
            return rc;
        }
        jobs_lease_timers(e, j);
        AV_INFO("job.leased", "job=j%lld worker=%s attempt=%u", (long long) id,
            p->worker, p->jobs[p->n].attempt);
        p->n++;
    }
    // Counted once the whole take held (a failed lease above undoes them).
    for (size_t i = first; i < p->n; i++)
        metrics_job_started(e->cfg.metrics, p->jobs[i].queue, p->jobs[i].type,
            b->now - p->jobs[i].run_at);
    return ANVIL_OK;
}

static int
seen(struct engine *e, struct batch *b, struct cmd *c, const char *worker,
    const struct worker_info *info)
{
    int joined = registry_seen(e->workers, worker, info, b->now);
    if (joined < 0)
        return av_error_set(&c->err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    if (joined > 0) {
        AV_INFO("worker.joined", "worker=%s", worker);
        return events_worker(e, b, EV_WORKER_JOINED, worker, &c->err);
    }
    return ANVIL_OK;
}

int
jobs_poll(struct engine *e, struct batch *b, struct cmd *c)
{
    if (seen(e, b, c, c->u.poll.worker, c->u.poll.info) != ANVIL_OK)
        return c->err.code;
    struct poll_memo *m = memo_find(e, c);
    if (m != NULL)
        return poll_replay(e, c, m);
    int rc = jobs_poll_take(e, b, c);
    if (rc != ANVIL_OK)
        return rc;
    if (c->u.poll.n == 0 && c->u.poll.wait_ms > 0) {
        engine_park(e, &e->parked_polls, c, b->now + c->u.poll.wait_ms);
        return ENGINE_PARKED;
    }
    jobs_memo_add(e, c);
    return ANVIL_OK;
}

static int
lease_lost(const struct store_job_brief *br, uint32_t token)
{
    return br->state != ANVIL_JOB_RUNNING || br->attempt != token;
}

// With auth on, only the API token that took a lease may report on it
// (admin tokens may report on any).
static bool
not_holder(const struct cmd *c, const struct store_job_brief *br)
{
    return c->token_id != 0 && c->role != ANVIL_ROLE_ADMIN
        && br->lease_token != c->token_id;
}

static int
not_yours(struct cmd *c, int64_t id)
{
    return av_error_set(&c->err, ANVIL_PERMISSION_DENIED,
        "job j%lld is leased to another worker's token", (long long) id);
}

// Stores a lease holder's progress report; a change (only) writes a
// JOB_PROGRESS event, so a worker that repeats itself adds nothing.
static int
heartbeat_progress(struct engine *e, struct batch *b, struct cmd *c,
    const struct lease_ref *ref, const struct store_job_brief *br)
{
    bool changed = false;
    int  rc      = store_job_progress(e->st, ref->id, ref->progress_percent,
              ref->progress_message, &changed, &c->err);
    if (rc != ANVIL_OK || !changed)
        return rc;
    struct store_new_event ev = {
        .kind             = EV_JOB_PROGRESS,
        .job_id           = ref->id,
        .workflow_id      = br->workflow_id,
        .step             = br->step[0] != '\0' ? br->step : NULL,
        .type             = br->type,
        .queue            = br->queue,
        .worker           = c->u.heartbeat.worker,
        .attempt          = br->attempt,
        .message          = ref->progress_message,
        .has_progress     = true,
        .progress_percent = ref->progress_percent,
    };
    return events_emit(e, b, &ev, &c->err);
}

int
jobs_heartbeat(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_heartbeat *h = &c->u.heartbeat;
    if (seen(e, b, c, h->worker, h->info) != ANVIL_OK)
        return c->err.code;
    h->canceled = calloc(h->n + 1, sizeof(*h->canceled));
    h->lost     = calloc(h->n + 1, sizeof(*h->lost));
    if (h->canceled == NULL || h->lost == NULL)
        return av_error_set(&c->err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    h->deadline = INT64_MAX; // the earliest of the extended leases

    for (size_t i = 0; i < h->n; i++) {
        struct store_job_brief br;
        int64_t                id = h->refs[i].id;
        int                    rc = store_job_brief(e->st, id, &br, &c->err);
        if (rc == ANVIL_NOT_FOUND
            || (rc == ANVIL_OK
                && (lease_lost(&br, h->refs[i].token) || not_holder(c, &br)))) {
            h->lost[h->nlost++] = id;
            continue;
        }
        int64_t until
            = b->now + (br.lease_ms > 0 ? br.lease_ms : e->cfg.lease_ms);
        if (rc == ANVIL_OK)
            rc = store_job_extend(e->st, id, until, &c->err);
        if (rc == ANVIL_OK && h->refs[i].has_progress)
            rc = heartbeat_progress(e, b, c, &h->refs[i], &br);
        if (rc != ANVIL_OK)
            return rc;
        if (until < h->deadline)
            h->deadline = until;
        engine_timer_add(e, TIMER_LEASE, until, id, br.attempt);
        if (br.cancel_requested)
            h->canceled[h->ncanceled++] = id;
    }
    if (h->deadline == INT64_MAX)
        h->deadline = 0;
    return ANVIL_OK;
}

static int
stale(
    struct cmd *c, int64_t id, uint32_t token, const struct store_job_brief *br)
{
    return av_error_set(&c->err, ANVIL_FAILED_PRECONDITION,
        "lease of job j%lld attempt %u is no longer held (the job is %s at "
        "attempt %u)",
        (long long) id, token, anvil_job_state_name(br->state), br->attempt);
}

int
jobs_complete(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_complete   *k = &c->u.complete;
    struct store_job_brief br;
    int                    rc = store_job_brief(e->st, k->id, &br, &c->err);
    if (rc == ANVIL_NOT_FOUND)
        return not_found(c, k->id);
    if (rc != ANVIL_OK)
        return rc;
    if (not_holder(c, &br))
        return not_yours(c, k->id);
    if (br.attempt == k->token
        && (br.state == ANVIL_JOB_SUCCEEDED
            || (br.state == ANVIL_JOB_CANCELED && br.cancel_requested)))
        return ANVIL_OK; // a resend of a Complete already applied
    if (lease_lost(&br, k->token))
        return stale(c, k->id, k->token, &br);
    if (br.cancel_requested)
        return jobs_finish(
            e, b, k->id, &br, ANVIL_JOB_CANCELED, NULL, 0, "canceled", &c->err);
    return jobs_finish(e, b, k->id, &br, ANVIL_JOB_SUCCEEDED, k->result, k->len,
        NULL, &c->err);
}

int
jobs_fail(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_fail       *f = &c->u.fail;
    struct store_job_brief br;
    int                    rc = store_job_brief(e->st, f->id, &br, &c->err);
    if (rc == ANVIL_NOT_FOUND)
        return not_found(c, f->id);
    if (rc != ANVIL_OK)
        return rc;
    if (not_holder(c, &br))
        return not_yours(c, f->id);
    if (lease_lost(&br, f->token)) {
        bool repeat = br.attempt == f->token && br.state != ANVIL_JOB_RUNNING
            && br.state != ANVIL_JOB_SUCCEEDED;
        if (!repeat)
            return stale(c, f->id, f->token, &br);
        f->state    = br.state; // a resend of a Fail already applied
        f->retry_at = br.state == ANVIL_JOB_SCHEDULED ? br.run_at : 0;
        return ANVIL_OK;
    }
    return fail_attempt(e, b, f->id, &br, f->error, !f->no_retry, &f->state,
        &f->retry_at, &c->err);
}

int
jobs_fire_timer(struct engine *e, struct batch *b, const struct timer *t)
{
    struct store_job_brief br;
    struct anvil_error     err = { 0 };
    int                    rc  = store_job_brief(e->st, t->id, &br, &err);
    if (rc != ANVIL_OK)
        return rc == ANVIL_NOT_FOUND ? ANVIL_OK : rc;
    if (t->kind == TIMER_RUN_AT) {
        if (br.state != ANVIL_JOB_SCHEDULED || br.run_at > b->now)
            return ANVIL_OK;
        struct job j = { 0 };
        rc           = store_job_make_ready(e->st, t->id, &err);
        if (rc == ANVIL_OK)
            rc = store_job_get(e->st, t->id, &j, &err);
        if (rc == ANVIL_OK)
            rc = engine_push_ready(e, b, j.id, j.queue, j.type, j.priority,
                j.concurrency_key, j.concurrency_limit);
        job_fini(&j);
        return rc;
    }
    if (br.state != ANVIL_JOB_RUNNING || br.attempt != t->attempt)
        return ANVIL_OK;
    char why[96] = "lease expired";
    if (t->kind == TIMER_LEASE && br.lease_deadline > b->now)
        return ANVIL_OK; // extended by a heartbeat
    if (t->kind == TIMER_TIMEOUT)
        snprintf(why, sizeof(why), "timed out after %lld ms",
            (long long) br.timeout_ms);
    int     state;
    int64_t at;
    AV_WARN("job.attempt_lost", "job=j%lld attempt=%u why=\"%s\"",
        (long long) t->id, br.attempt, why);
    return fail_attempt(e, b, t->id, &br, why, true, &state, &at, &err);
}

int
jobs_get(struct engine *e, struct batch *b, struct cmd *c)
{
    (void) b;
    return read_get(e, c);
}

int
jobs_list(struct engine *e, struct batch *b, struct cmd *c)
{
    (void) b;
    return read_list(e, c);
}
