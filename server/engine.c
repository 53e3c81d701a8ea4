// engine.c - the engine thread, the command queue, group commit and the job
// state machine. This is the only place where job state changes.
//
// One batch: take every posted command, BEGIN, fire due timers, apply each
// command inside a savepoint, serve parked polls that can now be served,
// COMMIT, then answer. Answers wait for the commit, so nothing is
// acknowledged before it is durable; batching is sized by what is waiting
// (no timer), so an idle server answers after one commit and a busy one
// folds hundreds of requests into each. See docs/architecture.md.
#include "engine.h"

#include "readyq.h"
#include "timers.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_INITIAL_MS 1000
#define BACKOFF_MAX_MS 60000
#define BACKOFF_MULTIPLIER 2.0
#define POLL_MEMORY 256

// A recent Poll: its request id and what it leased, so that a resent Poll
// gets the same jobs back instead of a second lease nobody reads.
struct poll_memo {
    uint64_t rid;
    int64_t *ids;
    size_t   n;
};

struct engine {
    struct store        *st;
    struct engine_config cfg;
    struct readyq       *ready;
    struct timers       *timers;
    pthread_t            thread;
    int64_t              started_at;

    pthread_mutex_t lock; // guards incoming, tail, stopping
    pthread_cond_t  wake;
    struct cmd     *incoming;
    struct cmd     *tail;
    bool            stopping;

    // Engine thread only.
    struct cmd      *parked_polls; // FIFO
    struct cmd      *parked_waits;
    uint64_t         waiter_seq;
    struct poll_memo memo[POLL_MEMORY];
    size_t           memo_next;
    uint32_t         rand_state;
};

// What one batch did, for after the commit.
struct batch {
    struct cmd *reply; // commands to answer after the commit
    int64_t    *finished;
    size_t      nfinished, cap;
    bool        ready_added;
    int64_t     now;
};

static void
list_push(struct cmd **head, struct cmd *c)
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

static void
add_timer(struct engine *e, int kind, int64_t at, int64_t id, uint32_t att)
{
    struct timer t = { .at = at, .kind = kind, .id = id, .attempt = att };
    if (timers_add(e->timers, t) != 0)
        AV_ERR("engine.oom", "what=timer job=%lld", (long long) id);
}

static void
mark_finished(struct batch *b, int64_t id)
{
    if (b->nfinished == b->cap) {
        size_t   cap = b->cap ? b->cap * 2 : 32;
        int64_t *p   = realloc(b->finished, cap * sizeof(*p));
        if (p == NULL)
            return; // its waiters then wake at their timeout
        b->finished = p;
        b->cap      = cap;
    }
    b->finished[b->nfinished++] = id;
}

static int
push_ready(struct engine *e, struct batch *b, int64_t id, const char *queue,
    const char *type, int32_t priority)
{
    if (readyq_push(e->ready, queue, type, id, priority) != 0)
        return ANVIL_RESOURCE_EXHAUSTED;
    b->ready_added = true;
    return ANVIL_OK;
}

static int
finish(struct engine *e, struct batch *b, int64_t id, int state,
    const uint8_t *result, size_t len, const char *error,
    struct anvil_error *err)
{
    int rc = store_job_finish(e->st, id, state, result, len, error, b->now,
        err);
    if (rc == ANVIL_OK) {
        mark_finished(b, id);
        AV_INFO("job.finished", "job=j%lld state=%s", (long long) id,
            anvil_job_state_name(state));
    }
    return rc;
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
        return finish(e, b, id, *state, NULL, 0, "canceled", err);
    }
    if (!retryable || br->attempt >= br->max_attempts) {
        *state = ANVIL_JOB_FAILED;
        return finish(e, b, id, *state, NULL, 0, error, err);
    }
    int64_t delay = engine_backoff_ms(br->attempt, BACKOFF_INITIAL_MS,
        BACKOFF_MAX_MS, BACKOFF_MULTIPLIER, rand01(e));
    *state        = ANVIL_JOB_SCHEDULED;
    *retry_at     = b->now + delay;
    int rc = store_job_requeue(e->st, id, *state, *retry_at, error, err);
    if (rc == ANVIL_OK) {
        add_timer(e, TIMER_RUN_AT, *retry_at, id, br->attempt);
        AV_INFO("job.retry", "job=j%lld attempt=%u delay_ms=%lld err=\"%s\"",
            (long long) id, br->attempt, (long long) delay, error);
    }
    return rc;
}

// ---- commands ----

static int
apply_submit(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_submit *s = &c->u.submit;
    if (c->request_id != 0 &&
        store_job_by_request(e->st, c->request_id, &s->id, &c->err) !=
            ANVIL_NOT_FOUND)
        return c->err.code; // a resend of a submit already applied
    if (s->key != NULL && store_job_by_key(e->st, s->key, &s->id, &c->err) !=
            ANVIL_NOT_FOUND) {
        s->existed = c->err.code == ANVIL_OK;
        return c->err.code;
    }
    int64_t run_at = s->run_at_ms;
    if (s->delay_ms > 0 && b->now + s->delay_ms > run_at)
        run_at = b->now + s->delay_ms;
    struct store_new_job nj = {
        .type         = s->type,
        .queue        = s->queue,
        .payload      = s->payload,
        .payload_len  = s->len,
        .priority     = s->priority,
        .state        = run_at > b->now ? ANVIL_JOB_SCHEDULED : ANVIL_JOB_QUEUED,
        .max_attempts = s->max_attempts ? s->max_attempts : e->cfg.max_attempts,
        .created_at   = b->now,
        .run_at       = run_at > b->now ? run_at : b->now,
        .timeout_ms   = s->timeout_ms,
        .idem_key     = s->key,
        .request_id   = c->request_id,
    };
    int rc = store_job_insert(e->st, &nj, &s->id, &c->err);
    if (rc != ANVIL_OK)
        return rc;
    if (nj.state == ANVIL_JOB_SCHEDULED)
        add_timer(e, TIMER_RUN_AT, nj.run_at, s->id, 0);
    else if (push_ready(e, b, s->id, s->queue, s->type, s->priority))
        return av_error_set(&c->err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    AV_INFO("job.submitted", "job=j%lld type=%s queue=%s", (long long) s->id,
        s->type, s->queue);
    return ANVIL_OK;
}

static int
not_found(struct cmd *c, int64_t id)
{
    return av_error_set(&c->err, ANVIL_NOT_FOUND, "no job with id j%lld",
        (long long) id);
}

static int
apply_get(struct engine *e, struct cmd *c)
{
    int rc = store_job_get(e->st, c->u.get.id, &c->u.get.job, &c->err);
    return rc == ANVIL_NOT_FOUND ? not_found(c, c->u.get.id) : rc;
}

static int
apply_list(struct engine *e, struct cmd *c)
{
    struct cmd_list *l  = &c->u.list;
    int              rc = store_job_list(e->st, &l->f, &l->jobs, &l->n,
                     &c->err);
    if (rc == ANVIL_OK && l->n > 0 && l->n == l->f.limit)
        l->next_before = l->jobs[l->n - 1].id;
    return rc;
}

static void
park(struct engine *e, struct cmd **list, struct cmd *c, int64_t deadline)
{
    c->waiter_seq = ++e->waiter_seq;
    list_append(list, c);
    add_timer(e, TIMER_WAITER, deadline, (int64_t) c->waiter_seq, 0);
}

// Returns ANVIL_ABORTED when the command was parked (no answer yet).
static int
apply_wait(struct engine *e, struct batch *b, struct cmd *c)
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
    park(e, &e->parked_waits, c, b->now + w->timeout_ms);
    return ANVIL_ABORTED;
}

static int
apply_cancel(struct engine *e, struct batch *b, struct cmd *c)
{
    int64_t                id = c->u.cancel.id;
    struct store_job_brief br;
    int                    rc = store_job_brief(e->st, id, &br, &c->err);
    if (rc == ANVIL_NOT_FOUND)
        return not_found(c, id);
    if (rc != ANVIL_OK)
        return rc;
    if (anvil_job_state_final(br.state))
        return av_error_set(&c->err, ANVIL_FAILED_PRECONDITION,
            "job j%lld already finished: it is %s", (long long) id,
            anvil_job_state_name(br.state));
    if (br.state == ANVIL_JOB_RUNNING)
        rc = store_job_request_cancel(e->st, id, &c->err);
    else
        rc = finish(e, b, id, ANVIL_JOB_CANCELED, NULL, 0, "canceled",
            &c->err);
    if (rc == ANVIL_OK)
        rc = store_job_get(e->st, id, &c->u.cancel.job, &c->err);
    return rc;
}

static struct poll_memo *
memo_find(struct engine *e, uint64_t rid)
{
    for (size_t i = 0; rid != 0 && i < POLL_MEMORY; i++) {
        if (e->memo[i].rid == rid)
            return &e->memo[i];
    }
    return NULL;
}

static void
memo_add(struct engine *e, uint64_t rid, const struct job *jobs, size_t n)
{
    if (rid == 0 || n == 0)
        return;
    struct poll_memo *m = &e->memo[e->memo_next++ % POLL_MEMORY];
    free(m->ids);
    m->ids = malloc(n * sizeof(*m->ids));
    m->rid = m->ids ? rid : 0;
    m->n   = m->ids ? n : 0;
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
        if (p->jobs[p->n].state == ANVIL_JOB_RUNNING)
            p->n++;
        else
            job_fini(&p->jobs[p->n]);
    }
    return ANVIL_OK;
}

static void
lease_timers(struct engine *e, const struct job *j)
{
    add_timer(e, TIMER_LEASE, j->lease_deadline, j->id, j->attempt);
    if (j->timeout_ms > 0)
        add_timer(e, TIMER_TIMEOUT, j->started_at + j->timeout_ms, j->id,
            j->attempt);
}

// Leases up to p->max ready jobs to the polling worker.
static int
poll_take(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_poll *p = &c->u.poll;
    int64_t          id;
    if (p->jobs == NULL)
        p->jobs = calloc(p->max, sizeof(*p->jobs));
    if (p->jobs == NULL)
        return av_error_set(&c->err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    while (p->n < p->max &&
        readyq_pop(e->ready, p->queues, p->nq, p->types, p->nt, &id)) {
        int rc = store_job_lease(e->st, id, p->worker, b->now,
            b->now + e->cfg.lease_ms, &p->jobs[p->n], &c->err);
        if (rc == ANVIL_NOT_FOUND)
            continue; // cancelled while queued: a stale entry
        if (rc != ANVIL_OK)
            return rc;
        lease_timers(e, &p->jobs[p->n]);
        AV_INFO("job.leased", "job=j%lld worker=%s attempt=%u",
            (long long) id, p->worker, p->jobs[p->n].attempt);
        p->n++;
    }
    return ANVIL_OK;
}

static int
apply_poll(struct engine *e, struct batch *b, struct cmd *c)
{
    struct poll_memo *m = memo_find(e, c->request_id);
    if (m != NULL)
        return poll_replay(e, c, m);
    int rc = poll_take(e, b, c);
    if (rc != ANVIL_OK)
        return rc;
    if (c->u.poll.n == 0 && c->u.poll.wait_ms > 0) {
        park(e, &e->parked_polls, c, b->now + c->u.poll.wait_ms);
        return ANVIL_ABORTED;
    }
    memo_add(e, c->request_id, c->u.poll.jobs, c->u.poll.n);
    return ANVIL_OK;
}

static int
lease_lost(const struct store_job_brief *br, uint32_t token)
{
    return br->state != ANVIL_JOB_RUNNING || br->attempt != token;
}

static int
apply_heartbeat(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_heartbeat *h = &c->u.heartbeat;
    h->canceled             = calloc(h->n + 1, sizeof(*h->canceled));
    h->lost                 = calloc(h->n + 1, sizeof(*h->lost));
    if (h->canceled == NULL || h->lost == NULL)
        return av_error_set(&c->err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    h->deadline = b->now + e->cfg.lease_ms;
    for (size_t i = 0; i < h->n; i++) {
        struct store_job_brief br;
        int64_t                id = h->refs[i].id;
        int rc = store_job_brief(e->st, id, &br, &c->err);
        if (rc == ANVIL_NOT_FOUND || (rc == ANVIL_OK &&
                lease_lost(&br, h->refs[i].token))) {
            h->lost[h->nlost++] = id;
            continue;
        }
        if (rc == ANVIL_OK)
            rc = store_job_extend(e->st, id, h->deadline, &c->err);
        if (rc != ANVIL_OK)
            return rc;
        add_timer(e, TIMER_LEASE, h->deadline, id, br.attempt);
        if (br.cancel_requested)
            h->canceled[h->ncanceled++] = id;
    }
    return ANVIL_OK;
}

static int
stale(struct cmd *c, int64_t id, uint32_t token,
    const struct store_job_brief *br)
{
    return av_error_set(&c->err, ANVIL_FAILED_PRECONDITION,
        "lease of job j%lld attempt %u is no longer held (the job is %s at "
        "attempt %u)",
        (long long) id, token, anvil_job_state_name(br->state), br->attempt);
}

static int
apply_complete(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_complete   *k = &c->u.complete;
    struct store_job_brief br;
    int                    rc = store_job_brief(e->st, k->id, &br, &c->err);
    if (rc == ANVIL_NOT_FOUND)
        return not_found(c, k->id);
    if (rc != ANVIL_OK)
        return rc;
    if (br.attempt == k->token && (br.state == ANVIL_JOB_SUCCEEDED ||
            (br.state == ANVIL_JOB_CANCELED && br.cancel_requested)))
        return ANVIL_OK; // a resend of a Complete already applied
    if (lease_lost(&br, k->token))
        return stale(c, k->id, k->token, &br);
    if (br.cancel_requested)
        return finish(e, b, k->id, ANVIL_JOB_CANCELED, NULL, 0, "canceled",
            &c->err);
    return finish(e, b, k->id, ANVIL_JOB_SUCCEEDED, k->result, k->len, NULL,
        &c->err);
}

static int
apply_fail(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_fail       *f = &c->u.fail;
    struct store_job_brief br;
    int                    rc = store_job_brief(e->st, f->id, &br, &c->err);
    if (rc == ANVIL_NOT_FOUND)
        return not_found(c, f->id);
    if (rc != ANVIL_OK)
        return rc;
    if (lease_lost(&br, f->token)) {
        bool repeat = br.attempt == f->token &&
            br.state != ANVIL_JOB_RUNNING && br.state != ANVIL_JOB_SUCCEEDED;
        if (!repeat)
            return stale(c, f->id, f->token, &br);
        f->state = br.state; // a resend of a Fail already applied
        return ANVIL_OK;
    }
    return fail_attempt(e, b, f->id, &br, f->error, !f->no_retry, &f->state,
        &f->retry_at, &c->err);
}

static int
apply_health(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_health *h = &c->u.health;
    h->uptime_ms         = b->now - e->started_at;
    return store_depths(e->st, &h->depths, &h->n, &h->total, &c->err);
}

static bool
is_read_only(enum cmd_kind k)
{
    return k == CMD_GET || k == CMD_LIST || k == CMD_WAIT || k == CMD_HEALTH;
}

static int
dispatch(struct engine *e, struct batch *b, struct cmd *c)
{
    switch (c->kind) {
    case CMD_SUBMIT:
        return apply_submit(e, b, c);
    case CMD_GET:
        return apply_get(e, c);
    case CMD_LIST:
        return apply_list(e, c);
    case CMD_WAIT:
        return apply_wait(e, b, c);
    case CMD_CANCEL:
        return apply_cancel(e, b, c);
    case CMD_POLL:
        return apply_poll(e, b, c);
    case CMD_HEARTBEAT:
        return apply_heartbeat(e, b, c);
    case CMD_COMPLETE:
        return apply_complete(e, b, c);
    case CMD_FAIL:
        return apply_fail(e, b, c);
    case CMD_HEALTH:
        return apply_health(e, b, c);
    }
    return av_error_set(&c->err, ANVIL_INTERNAL, "unknown command %d",
        (int) c->kind);
}

// Applies one command inside its own savepoint: a failure undoes that
// command's writes only.
static void
apply(struct engine *e, struct batch *b, struct cmd *c)
{
    bool rw = !is_read_only(c->kind);
    av_error_clear(&c->err);
    if (rw && store_savepoint(e->st, &c->err) != ANVIL_OK) {
        list_push(&b->reply, c);
        return;
    }
    int rc = dispatch(e, b, c);
    if (rc == ANVIL_ABORTED && c->err.code == ANVIL_OK) {
        if (rw)
            store_release(e->st, NULL);
        return; // parked
    }
    c->err.code = rc;
    if (rw && rc == ANVIL_INTERNAL)
        store_rollback_savepoint(e->st);
    else if (rw && store_release(e->st, &c->err) != ANVIL_OK)
        store_rollback_savepoint(e->st);
    list_push(&b->reply, c);
}

// ---- timers ----

static void
unpark_expired(struct engine *e, struct batch *b, uint64_t seq)
{
    struct cmd **lists[] = { &e->parked_polls, &e->parked_waits };
    for (size_t i = 0; i < 2; i++) {
        for (struct cmd **pp = lists[i]; *pp != NULL; pp = &(*pp)->next) {
            struct cmd *c = *pp;
            if (c->waiter_seq != seq)
                continue;
            *pp = c->next;
            av_error_clear(&c->err);
            if (c->kind == CMD_WAIT)
                c->err.code = store_job_get(e->st, c->u.wait.id,
                    &c->u.wait.job, &c->err);
            list_push(&b->reply, c);
            return;
        }
    }
}

static void
fire_job_timer(struct engine *e, struct batch *b, const struct timer *t)
{
    struct store_job_brief br;
    struct anvil_error     err = { 0 };
    if (store_job_brief(e->st, t->id, &br, &err) != ANVIL_OK)
        return;
    if (t->kind == TIMER_RUN_AT) {
        if (br.state != ANVIL_JOB_SCHEDULED || br.run_at > b->now)
            return;
        struct job j = { 0 };
        if (store_job_make_ready(e->st, t->id, &err) == ANVIL_OK &&
            store_job_get(e->st, t->id, &j, &err) == ANVIL_OK)
            push_ready(e, b, j.id, j.queue, j.type, j.priority);
        job_fini(&j);
        return;
    }
    if (br.state != ANVIL_JOB_RUNNING || br.attempt != t->attempt)
        return;
    char why[96] = "lease expired";
    if (t->kind == TIMER_LEASE && br.lease_deadline > b->now)
        return; // extended by a heartbeat
    if (t->kind == TIMER_TIMEOUT)
        snprintf(why, sizeof(why), "timed out after %lld ms",
            (long long) br.timeout_ms);
    int     state;
    int64_t at;
    AV_WARN("job.attempt_lost", "job=j%lld attempt=%u why=\"%s\"",
        (long long) t->id, br.attempt, why);
    fail_attempt(e, b, t->id, &br, why, true, &state, &at, &err);
}

static void
fire_timers(struct engine *e, struct batch *b)
{
    struct timer t;
    while (timers_pop_due(e->timers, b->now, &t)) {
        if (t.kind == TIMER_WAITER)
            unpark_expired(e, b, (uint64_t) t.id);
        else
            fire_job_timer(e, b, &t);
    }
}

// ---- parked long-polls ----

static void
serve_parked_polls(struct engine *e, struct batch *b)
{
    struct cmd **pp = &e->parked_polls;
    while (*pp != NULL && readyq_size(e->ready) > 0) {
        struct cmd      *c = *pp;
        struct cmd_poll *p = &c->u.poll;
        if (!readyq_any(e->ready, p->queues, p->nq, p->types, p->nt)) {
            pp = &c->next;
            continue;
        }
        struct anvil_error err = { 0 };
        if (store_savepoint(e->st, &err) != ANVIL_OK)
            return;
        int rc = poll_take(e, b, c);
        if (rc == ANVIL_OK)
            store_release(e->st, &err);
        else
            store_rollback_savepoint(e->st);
        if (rc != ANVIL_OK || p->n == 0) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        memo_add(e, c->request_id, p->jobs, p->n);
        list_push(&b->reply, c);
    }
}

static void
wake_waiters(struct engine *e, struct batch *b)
{
    for (size_t i = 0; i < b->nfinished; i++) {
        struct cmd **pp = &e->parked_waits;
        while (*pp != NULL) {
            struct cmd *c = *pp;
            if (c->u.wait.id != b->finished[i]) {
                pp = &c->next;
                continue;
            }
            *pp         = c->next;
            c->err.code = store_job_get(e->st, c->u.wait.id, &c->u.wait.job,
                &c->err);
            c->u.wait.done = true;
            list_push(&b->reply, c);
        }
    }
}

// ---- the batch ----

static int rebuild(struct engine *e, struct anvil_error *err);

static void
answer_all(struct cmd *list, int code, const char *msg)
{
    while (list != NULL) {
        struct cmd *next = list->next;
        if (code != ANVIL_OK) {
            engine_cmd_fini(list);
            av_error_set(&list->err, code, "%s", msg);
        }
        list->done(list, list->done_arg);
        list = next;
    }
}

static void
reverse(struct cmd **list)
{
    struct cmd *out = NULL;
    while (*list != NULL) {
        struct cmd *c = *list;
        *list         = c->next;
        list_push(&out, c);
    }
    *list = out;
}

static void
run_batch(struct engine *e, struct cmd *cmds)
{
    struct batch       b   = { .now = av_now_ms() };
    struct anvil_error err = { 0 };
    if (store_begin(e->st, &err) != ANVIL_OK) {
        answer_all(cmds, ANVIL_INTERNAL, err.msg);
        return;
    }
    fire_timers(e, &b);
    while (cmds != NULL) {
        struct cmd *c = cmds;
        cmds          = c->next;
        apply(e, &b, c);
    }
    if (b.ready_added)
        serve_parked_polls(e, &b);
    wake_waiters(e, &b);
    reverse(&b.reply);
    if (store_commit(e->st, &err) != ANVIL_OK) {
        store_rollback(e->st);
        rebuild(e, &err);
        answer_all(b.reply, ANVIL_INTERNAL,
            "the server could not commit this request; it was not applied");
    } else {
        answer_all(b.reply, ANVIL_OK, NULL);
    }
    free(b.finished);
}

static struct cmd *
take_incoming(struct engine *e, bool *stopping)
{
    pthread_mutex_lock(&e->lock);
    for (;;) {
        if (e->incoming != NULL || e->stopping)
            break;
        int64_t next = timers_next(e->timers);
        if (next <= av_now_ms())
            break;
        if (next == INT64_MAX) {
            pthread_cond_wait(&e->wake, &e->lock);
            continue;
        }
        struct timespec ts = { .tv_sec = next / 1000,
            .tv_nsec = (long) (next % 1000) * 1000000 };
        pthread_cond_timedwait(&e->wake, &e->lock, &ts);
    }
    struct cmd *cmds = e->incoming;
    e->incoming = e->tail = NULL;
    *stopping             = e->stopping;
    pthread_mutex_unlock(&e->lock);
    return cmds;
}

static void *
engine_main(void *arg)
{
    struct engine *e = arg;
    for (;;) {
        bool        stopping;
        struct cmd *cmds = take_incoming(e, &stopping);
        if (cmds != NULL || !stopping)
            run_batch(e, cmds);
        if (stopping && cmds == NULL)
            break;
    }
    answer_all(e->parked_polls, ANVIL_UNAVAILABLE, "the server is stopping");
    answer_all(e->parked_waits, ANVIL_UNAVAILABLE, "the server is stopping");
    e->parked_polls = e->parked_waits = NULL;
    return NULL;
}

// ---- lifecycle ----

static int
rebuild_one(void *arg, const struct job *j)
{
    struct engine *e = arg;
    switch (j->state) {
    case ANVIL_JOB_QUEUED:
        if (readyq_push(e->ready, j->queue, j->type, j->id, j->priority))
            return ANVIL_RESOURCE_EXHAUSTED;
        break;
    case ANVIL_JOB_SCHEDULED:
        add_timer(e, TIMER_RUN_AT, j->run_at, j->id, j->attempt);
        break;
    case ANVIL_JOB_RUNNING:
        lease_timers(e, j);
        break;
    }
    return ANVIL_OK;
}

// (Re)builds the ready queues and timers from the store.
static int
rebuild(struct engine *e, struct anvil_error *err)
{
    readyq_free(e->ready);
    timers_free(e->timers);
    e->ready  = readyq_new();
    e->timers = timers_new();
    if (e->ready == NULL || e->timers == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    // Parked long-polls keep their place; give them their timers back.
    struct cmd *lists[] = { e->parked_polls, e->parked_waits };
    for (size_t i = 0; i < 2; i++) {
        for (struct cmd *c = lists[i]; c != NULL; c = c->next)
            add_timer(e, TIMER_WAITER, av_now_ms(), (int64_t) c->waiter_seq,
                0);
    }
    return store_scan_active(e->st, rebuild_one, e, err);
}

int
engine_start(struct store *st, const struct engine_config *cfg,
    struct engine **out, struct anvil_error *err)
{
    struct engine *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    e->st         = st;
    e->cfg        = *cfg;
    e->started_at = av_now_ms();
    e->rand_state = (uint32_t) av_mono_us() | 1u;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->wake, NULL);
    int rc = rebuild(e, err);
    if (rc == ANVIL_OK && pthread_create(&e->thread, NULL, engine_main, e))
        rc = av_error_set(err, ANVIL_INTERNAL, "cannot start engine thread");
    if (rc != ANVIL_OK) {
        readyq_free(e->ready);
        timers_free(e->timers);
        pthread_mutex_destroy(&e->lock);
        pthread_cond_destroy(&e->wake);
        free(e);
        return rc;
    }
    AV_INFO("engine.started", "queued=%zu timers=%zu", readyq_size(e->ready),
        timers_size(e->timers));
    *out = e;
    return ANVIL_OK;
}

void
engine_submit(struct engine *e, struct cmd *c)
{
    c->next = NULL;
    pthread_mutex_lock(&e->lock);
    if (e->stopping) {
        pthread_mutex_unlock(&e->lock);
        av_error_set(&c->err, ANVIL_UNAVAILABLE, "the server is stopping");
        c->done(c, c->done_arg);
        return;
    }
    if (e->tail != NULL)
        e->tail->next = c;
    else
        e->incoming = c;
    e->tail = c;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
}

void
engine_stop(struct engine *e)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&e->lock);
    e->stopping = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->thread, NULL);
    for (size_t i = 0; i < POLL_MEMORY; i++)
        free(e->memo[i].ids);
    readyq_free(e->ready);
    timers_free(e->timers);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->wake);
    free(e);
}

void
engine_cmd_fini(struct cmd *c)
{
    switch (c->kind) {
    case CMD_GET:
    case CMD_CANCEL:
        job_fini(&c->u.get.job);
        break;
    case CMD_WAIT:
        job_fini(&c->u.wait.job);
        break;
    case CMD_LIST:
        job_array_free(c->u.list.jobs, c->u.list.n);
        c->u.list.jobs = NULL;
        c->u.list.n    = 0;
        break;
    case CMD_POLL:
        job_array_free(c->u.poll.jobs, c->u.poll.n);
        c->u.poll.jobs = NULL;
        c->u.poll.n    = 0;
        break;
    case CMD_HEARTBEAT:
        free(c->u.heartbeat.canceled);
        free(c->u.heartbeat.lost);
        c->u.heartbeat.canceled = c->u.heartbeat.lost = NULL;
        c->u.heartbeat.ncanceled = c->u.heartbeat.nlost = 0;
        break;
    case CMD_HEALTH:
        store_depths_free(c->u.health.depths, c->u.health.n);
        c->u.health.depths = NULL;
        c->u.health.n      = 0;
        break;
    default:
        break;
    }
}
