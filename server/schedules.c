// schedules.c - cron schedules on the engine thread: the rpcs
// (CreateSchedule ... DeleteSchedule) and the timer that fires a tick.
//
// Exactly once: a tick's job is inserted and the schedule's next tick
// written in ONE savepoint of the batch's transaction, so a crash leaves
// either both or neither; the job's idempotency key
// "schedule/<name>/<tick ms>" makes a tick that runs again (a timer fired
// twice, a rolled-back batch retried) find the job it made instead of
// making a second. The store is the truth: a timer only says when to
// look, and one that no longer applies (paused, deleted, moved) does
// nothing. A workflow template fires the same way: its workflow (built by
// flowspec.c, submitted by flow.c) takes the tick's key. See
// docs/schedules.md for the policies.
#include "cron.h"
#include "engine_impl.h"
#include "flowspec.h"
#include "tz.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <anvil/schedule.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CATCH_UP_DEFAULT 100
#define SCAN_MAX 100000          // ticks looked at per timer, at most
#define ON_TIME_MS (60 * 1000LL) // a tick later than this was missed

// A schedule's expression and zone, ready for cron_next.
struct clock {
    struct cron c;
    struct tz  *z;
};

static int
clock_open(
    const struct store_schedule *s, struct clock *k, struct anvil_error *err)
{
    k->z   = NULL;
    int rc = cron_parse(s->expr, &k->c, err);
    if (rc == ANVIL_OK && k->c.every_ms == 0)
        rc = tz_load(s->tz, &k->z, err);
    return rc;
}

static int
not_found(struct cmd *c)
{
    return av_error_set(&c->err, ANVIL_NOT_FOUND,
        "no schedule named '%s' (anvil schedule list shows them)",
        c->u.schedule.name);
}

// Reads the schedule the command names into its output.
static int
read_named(struct engine *e, struct cmd *c)
{
    struct cmd_schedule *q = &c->u.schedule;
    q->out                 = calloc(1, sizeof(*q->out));
    if (q->out == NULL)
        return av_error_set(&c->err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    int rc = store_schedule_get(e->st, 0, q->name, q->out, &c->err);
    if (rc == ANVIL_OK)
        q->n = 1;
    return rc == ANVIL_NOT_FOUND ? not_found(c) : rc;
}

int
schedules_create(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_schedule   *q = &c->u.schedule;
    struct store_schedule *s = &q->spec;
    q->name                  = s->name;
    int rc                   = read_named(e, c);
    if (rc == ANVIL_OK) {
        if (c->request_id != 0 && q->out->request_id == c->request_id)
            return ANVIL_OK; // a resend: answered as the first time
        return av_error_set(&c->err, ANVIL_ALREADY_EXISTS,
            "a schedule named '%s' already exists (delete it first, or "
            "choose another name)",
            s->name);
    }
    if (rc != ANVIL_NOT_FOUND)
        return rc;
    struct clock k;
    rc = clock_open(s, &k, &c->err);
    if (rc == ANVIL_OK && cron_next(&k.c, k.z, b->now, &s->next_fire_at) != 0)
        rc = av_error_set(&c->err, ANVIL_INVALID_ARGUMENT,
            "the expression '%s' never fires in the next ten years", s->expr);
    tz_free(k.z);
    s->created_at = b->now;
    s->request_id = c->request_id;
    int64_t id    = 0;
    if (rc == ANVIL_OK)
        rc = store_schedule_insert(e->st, s, &id, &c->err);
    if (rc == ANVIL_OK)
        rc = store_schedule_get(e->st, id, NULL, q->out, &c->err);
    if (rc != ANVIL_OK)
        return rc;
    q->n = 1;
    engine_timer_add(e, TIMER_SCHEDULE, s->next_fire_at, id, 0);
    AV_INFO("schedule.created", "schedule=%s expr=\"%s\" tz=%s next=%lld",
        s->name, s->expr, s->tz, (long long) s->next_fire_at);
    return ANVIL_OK;
}

int
schedules_get(struct engine *e, struct batch *b, struct cmd *c)
{
    (void) b;
    return read_named(e, c);
}

int
schedules_list(struct engine *e, struct batch *b, struct cmd *c)
{
    (void) b;
    struct cmd_schedule *q = &c->u.schedule;
    return store_schedule_list(e->st, &q->out, &q->n, &c->err);
}

// Pause or resume: a resumed schedule goes on from its next tick after
// now; the ticks that fell while it was paused never fire.
static int
set_paused(struct engine *e, struct batch *b, struct cmd *c, bool paused)
{
    int rc = read_named(e, c);
    if (rc != ANVIL_OK)
        return rc;
    struct store_schedule *s = c->u.schedule.out;
    if (s->paused == paused)
        return ANVIL_OK;
    s->paused = paused;
    if (!paused) {
        struct clock k;
        rc = clock_open(s, &k, &c->err);
        if (rc == ANVIL_OK && cron_next(&k.c, k.z, b->now, &s->next_fire_at))
            rc = av_error_set(&c->err, ANVIL_FAILED_PRECONDITION,
                "schedule '%s' never fires again", s->name);
        tz_free(k.z);
    }
    if (rc == ANVIL_OK)
        rc = store_schedule_update(e->st, s, &c->err);
    if (rc != ANVIL_OK)
        return rc;
    if (!paused)
        engine_timer_add(e, TIMER_SCHEDULE, s->next_fire_at, s->id, 0);
    AV_INFO(paused ? "schedule.paused" : "schedule.resumed", "schedule=%s",
        s->name);
    return ANVIL_OK;
}

int
schedules_pause(struct engine *e, struct batch *b, struct cmd *c)
{
    return set_paused(e, b, c, true);
}

int
schedules_resume(struct engine *e, struct batch *b, struct cmd *c)
{
    return set_paused(e, b, c, false);
}

int
schedules_delete(struct engine *e, struct batch *b, struct cmd *c)
{
    (void) b;
    int rc = read_named(e, c);
    if (rc == ANVIL_OK)
        rc = store_schedule_delete(e->st, c->u.schedule.out->id, &c->err);
    if (rc == ANVIL_OK)
        AV_INFO("schedule.deleted", "schedule=%s", c->u.schedule.name);
    return rc;
}

// ---- firing ----

#define CANCEL_WHY \
    "canceled: the schedule's next tick came (overlap CANCEL_PREVIOUS)"

// Overlap of a workflow template: its previous workflow still RUNNING
// makes SKIP skip and CANCEL_PREVIOUS cancel it.
static int
overlap_workflow(struct engine *e, struct batch *b, struct store_schedule *s,
    bool *go, struct anvil_error *err)
{
    struct workflow w;
    int rc = store_workflow_get(e->st, s->last_job_id, false, &w, err);
    if (rc == ANVIL_NOT_FOUND)
        return ANVIL_OK; // gone (retention)
    if (rc != ANVIL_OK)
        return rc;
    bool running = w.state == WF_RUNNING;
    workflow_fini(&w);
    if (!running)
        return ANVIL_OK;
    if (s->overlap != ANVIL_OVERLAP_CANCEL_PREVIOUS) {
        *go = false;
        return ANVIL_OK;
    }
    return flow_cancel_running(e, b, s->last_job_id, CANCEL_WHY, err);
}

// Overlap: true when the tick may submit. The previous job still going
// makes SKIP skip and CANCEL_PREVIOUS cancel it.
static int
overlap_allows(struct engine *e, struct batch *b, struct store_schedule *s,
    bool *go, struct anvil_error *err)
{
    *go = true;
    if (s->last_job_id == 0 || s->overlap == ANVIL_OVERLAP_ALLOW)
        return ANVIL_OK;
    if (s->workflow != NULL)
        return overlap_workflow(e, b, s, go, err);
    struct store_job_brief br;
    int rc = store_job_brief(e->st, s->last_job_id, &br, err);
    if (rc == ANVIL_NOT_FOUND
        || (rc == ANVIL_OK
            && anvil_job_state_final((enum anvil_job_state) br.state)))
        return ANVIL_OK; // gone (retention) or finished
    if (rc != ANVIL_OK)
        return rc;
    if (s->overlap != ANVIL_OVERLAP_CANCEL_PREVIOUS) {
        *go = false;
        return ANVIL_OK;
    }
    if (br.state == ANVIL_JOB_RUNNING)
        return jobs_request_cancel(e, s->last_job_id, err);
    return jobs_cancel_waiting(e, b, s->last_job_id, CANCEL_WHY, err);
}

// The event of a tick that fired: its job, or its workflow (by name).
static int
fire_event(struct engine *e, struct batch *b, const struct store_schedule *s,
    int64_t id, const char *wf_name, int64_t tick, struct anvil_error *err)
{
    char when[40], msg[200];
    snprintf(msg, sizeof(msg), "schedule %s tick %s", s->name,
        av_format_time(tick, when, sizeof(when)));
    struct store_new_event ev = {
        .kind        = EV_SCHEDULE_FIRED,
        .job_id      = wf_name == NULL ? id : 0,
        .workflow_id = wf_name != NULL ? id : 0,
        .type        = wf_name != NULL ? wf_name : s->type,
        .queue       = wf_name != NULL ? NULL : s->queue,
        .message     = msg,
    };
    return events_emit(e, b, &ev, err);
}

// A tick's workflow, with key `key`: flow.c submits it (or finds the one
// the key made already: *made false).
static int
fire_workflow(struct engine *e, struct batch *b, struct store_schedule *s,
    const char *key, int64_t tick, int64_t *id, struct anvil_error *err)
{
    struct flowspec fs = { 0 };
    struct cmd      c  = { .kind = CMD_WF_SUBMIT };
    int             rc = flowspec_unpack(
                    s->workflow, s->workflow_len, &fs, &c.u.wf_submit, err);
    if (rc == ANVIL_OK) {
        c.u.wf_submit.key = key;
        rc                = flow_submit(e, b, &c);
        if (rc != ANVIL_OK)
            *err = c.err;
    }
    *id = c.u.wf_submit.id;
    if (rc == ANVIL_OK && !c.u.wf_submit.existed)
        rc = fire_event(e, b, s, *id, c.u.wf_submit.name, tick, err);
    if (rc == ANVIL_OK && !c.u.wf_submit.existed) {
        s->fired++;
        AV_INFO("schedule.fired", "schedule=%s tick=%lld workflow=w%lld",
            s->name, (long long) tick, (long long) *id);
    }
    flowspec_fini(&fs);
    return rc;
}

// One tick: its job (or workflow), unless the overlap policy says no, or
// the tick made its job already (its key exists).
static int
fire_tick(struct engine *e, struct batch *b, struct store_schedule *s,
    int64_t tick, struct anvil_error *err)
{
    bool go = true;
    int  rc = overlap_allows(e, b, s, &go, err);
    if (rc != ANVIL_OK || !go) {
        s->skipped += rc == ANVIL_OK;
        return rc;
    }
    char key[320];
    snprintf(key, sizeof(key), "schedule/%s/%lld", s->name, (long long) tick);
    int64_t id = 0;
    if (s->workflow != NULL)
        rc = fire_workflow(e, b, s, key, tick, &id, err);
    else
        rc = store_job_by_key(e->st, key, &id, err);
    if (rc == ANVIL_NOT_FOUND) {
        struct store_new_job nj = {
            .type        = s->type,
            .queue       = s->queue,
            .payload     = s->payload,
            .payload_len = s->payload_len,
            .priority    = s->priority,
            .state       = ANVIL_JOB_QUEUED,
            .retry       = s->retry,
            .created_at  = b->now,
            .run_at      = b->now,
            .timeout_ms  = s->timeout_ms,
            .lease_ms    = s->lease_ms,
            .idem_key    = key,
        };
        rc = jobs_insert(e, b, &nj, &id, err);
        if (rc == ANVIL_OK)
            rc = fire_event(e, b, s, id, NULL, tick, err);
        if (rc == ANVIL_OK)
            s->fired++;
        if (rc == ANVIL_OK)
            AV_INFO("schedule.fired", "schedule=%s tick=%lld job=j%lld",
                s->name, (long long) tick, (long long) id);
    }
    if (rc != ANVIL_OK)
        return rc;
    s->last_job_id  = id;
    s->last_fire_at = tick;
    return ANVIL_OK;
}

// The due ticks (<= now) from s->next_fire_at on: the newest `keep` of
// them in ring (oldest first after the call), how many were due, and the
// first tick after now.
struct due {
    int64_t *ring;
    size_t   keep, n_ring;
    uint64_t n_due;
    int64_t  next;
    bool     more; // SCAN_MAX reached: next is not yet past now
};

static int
scan_due(const struct clock *k, int64_t from, int64_t now, struct due *d)
{
    int64_t t = from;
    if (k->c.every_ms > 0 && (now - t) / k->c.every_ms > (int64_t) d->keep) {
        // Intervals jump straight to the ticks that may still fire.
        int64_t jump = (now - t) / k->c.every_ms - (int64_t) d->keep;
        t += jump * k->c.every_ms;
        d->n_due += (uint64_t) jump;
    }
    for (size_t i = 0; t <= now; i++) {
        if (i == SCAN_MAX) {
            d->more = true;
            break;
        }
        if (d->n_ring == d->keep)
            memmove(d->ring, d->ring + 1, (d->keep - 1) * sizeof(*d->ring));
        d->ring[d->n_ring < d->keep ? d->n_ring++ : d->keep - 1] = t;
        d->n_due++;
        int64_t n;
        if (cron_next(&k->c, k->z, t, &n) != 0)
            n = INT64_MAX; // fires no more
        t = n;
    }
    d->next = t;
    return ANVIL_OK;
}

// Which of the due ticks fire, by the catch-up policy: all of them when
// only one was due and it is on time (the common case).
static int
fire_due(struct engine *e, struct batch *b, struct store_schedule *s,
    const struct due *d, struct anvil_error *err)
{
    int64_t last    = d->ring[d->n_ring - 1];
    int64_t grace   = d->next - last < ON_TIME_MS ? d->next - last : ON_TIME_MS;
    bool    on_time = !d->more && b->now - last < grace;
    size_t  first   = d->n_ring - 1; // ONCE, and one tick on time
    if (d->n_due > 1 || !on_time) {
        if (s->catch_up == ANVIL_CATCH_UP_EACH)
            first = 0;
        else if (s->catch_up == ANVIL_CATCH_UP_SKIP && !on_time)
            first = d->n_ring;
    }
    s->skipped += d->n_due - (d->n_ring - first);
    int rc = ANVIL_OK;
    for (size_t i = first; rc == ANVIL_OK && i < d->n_ring; i++)
        rc = fire_tick(e, b, s, d->ring[i], err);
    if (rc == ANVIL_OK && d->n_due > 1)
        AV_INFO("schedule.caught_up", "schedule=%s due=%llu fired=%zu", s->name,
            (unsigned long long) d->n_due, d->n_ring - first);
    return rc;
}

int
schedules_fire_timer(struct engine *e, struct batch *b, int64_t id)
{
    struct anvil_error    err = { 0 };
    struct store_schedule s   = { 0 };
    int                   rc  = store_schedule_get(e->st, id, NULL, &s, &err);
    if (rc == ANVIL_NOT_FOUND || (rc == ANVIL_OK && s.paused))
        return ANVIL_OK; // deleted or paused since the timer was set
    if (rc == ANVIL_OK && s.next_fire_at > b->now) {
        // Moved (a resume): the timer of the new tick may be lost with a
        // rebuild, so one is set again; a duplicate finds nothing due.
        engine_timer_add(e, TIMER_SCHEDULE, s.next_fire_at, id, 0);
        store_schedule_fini(&s);
        return ANVIL_OK;
    }
    struct clock k = { 0 };
    if (rc == ANVIL_OK)
        rc = clock_open(&s, &k, &err);
    struct due d = { .keep = 1 };
    if (s.catch_up == ANVIL_CATCH_UP_EACH)
        d.keep = s.catch_up_limit > 0 ? s.catch_up_limit : CATCH_UP_DEFAULT;
    d.ring = rc == ANVIL_OK ? calloc(d.keep, sizeof(*d.ring)) : NULL;
    if (rc == ANVIL_OK && d.ring == NULL)
        rc = av_error_set(&err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    if (rc == ANVIL_OK)
        rc = scan_due(&k, s.next_fire_at, b->now, &d);
    if (rc == ANVIL_OK && !d.more)
        rc = fire_due(e, b, &s, &d, &err);
    if (rc == ANVIL_OK) {
        s.skipped += d.more ? d.n_due : 0;
        s.next_fire_at = d.next;
        rc             = store_schedule_update(e->st, &s, &err);
    }
    if (rc == ANVIL_OK && d.next != INT64_MAX)
        engine_timer_add(e, TIMER_SCHEDULE, d.more ? b->now : d.next, id, 0);
    if (rc != ANVIL_OK)
        AV_ERR("schedule.fire", "schedule=%s code=%s msg=\"%s\"",
            s.name ? s.name : "?", anvil_code_name(rc), err.msg);
    free(d.ring);
    tz_free(k.z);
    store_schedule_fini(&s);
    return rc;
}

int
schedules_load(struct engine *e, struct anvil_error *err)
{
    struct store_schedule *v  = NULL;
    size_t                 n  = 0;
    int                    rc = store_schedule_list(e->st, &v, &n, err);
    for (size_t i = 0; rc == ANVIL_OK && i < n; i++)
        if (!v[i].paused)
            engine_timer_add(e, TIMER_SCHEDULE, v[i].next_fire_at, v[i].id, 0);
    store_schedules_free(v, n);
    return rc;
}
