// handlers_schedule.c - decode/encode of the schedule rpcs
// (CreateSchedule, GetSchedule, ListSchedules, PauseSchedule,
// ResumeSchedule, DeleteSchedule). Get, Pause, Resume and Delete carry
// only a name and answer one Schedule, so one decode and one encode serve
// them all, finding the field by name in the message's descriptor.
#include "cron.h"
#include "flowspec.h"
#include "handlers_impl.h"
#include "tz.h"

#include "util/error.h"

#include <anvil/schedule.h>
#include <stdio.h>
#include <string.h>

#define MAX_CATCH_UP 1000

// The job template: a submit without the fields each tick sets itself.
static int
decode_job(const struct handler_limits *lim,
    const Anvil__V1__SubmitJobRequest *j, struct store_schedule *s,
    struct anvil_error *err)
{
    if (j->delay_ms != 0 || j->run_at_ms != 0 || j->idempotency_key[0])
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "spec.job: delay_ms, run_at_ms and idempotency_key are set by "
            "each tick; leave them unset");
    if (j->concurrency_key[0] || j->concurrency_limit != 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "spec.job: a schedule's jobs take no concurrency_key or "
            "concurrency_limit yet; use overlap to keep its runs apart");
    struct cmd c  = { 0 };
    int        rc = handlers_decode_submit_item(lim, j, &c, err);
    if (rc != ANVIL_OK)
        return rc;
    s->type        = (char *) c.u.submit.type;
    s->queue       = (char *) c.u.submit.queue;
    s->payload     = (uint8_t *) c.u.submit.payload;
    s->payload_len = c.u.submit.len;
    s->priority    = c.u.submit.priority;
    s->retry       = c.u.submit.retry;
    s->timeout_ms  = c.u.submit.timeout_ms;
    s->lease_ms    = c.u.submit.lease_ms;
    return ANVIL_OK;
}

// The workflow template: checked as SubmitWorkflow checks a spec, then
// kept packed (in call->scratch until the engine stores it).
static int
decode_workflow(const struct handler_limits *lim, struct call *call,
    const Anvil__V1__WorkflowSpec *w, struct store_schedule *s,
    struct anvil_error *err)
{
    if (w->idempotency_key[0])
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "spec.workflow: idempotency_key is set by each tick "
            "(schedule/<name>/<tick ms>); leave it unset");
    struct flowspec      fs = { 0 };
    struct cmd_wf_submit ws = { 0 };
    struct anvil_error   e  = { 0 };
    int                  rc = flowspec_build(lim, w, &fs, &ws, &e);
    flowspec_fini(&fs);
    if (rc != ANVIL_OK)
        return av_error_set(err, rc, "spec.workflow: %s", e.msg);
    uint8_t *packed = NULL;
    rc              = flowspec_pack(w, &packed, &s->workflow_len, err);
    if (rc != ANVIL_OK)
        return rc;
    call->scratch  = packed;
    s->workflow    = packed;
    s->type        = "";
    s->queue       = "";
    s->payload     = (uint8_t *) "";
    s->payload_len = 0;
    return ANVIL_OK;
}

// Exactly one template: the job or the workflow each tick submits.
static int
decode_template(const struct handler_limits *lim, struct call *call,
    const Anvil__V1__ScheduleSpec *sp, struct store_schedule *s,
    struct anvil_error *err)
{
    if (sp->job != NULL && sp->workflow != NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "spec.job and spec.workflow are both set: a schedule submits "
            "either a job or a workflow on each tick; set one of them");
    if (sp->workflow != NULL)
        return decode_workflow(lim, call, sp->workflow, s, err);
    if (sp->job == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "spec.job and spec.workflow are both missing: set the job (its "
            "type at least) or the workflow each tick submits");
    return decode_job(lim, sp->job, s, err);
}

// The expression and its zone: INVALID_ARGUMENT unless both are good.
static int
check_clock(const char *expr, const char *zone, struct anvil_error *err)
{
    struct cron c;
    int         rc = cron_parse(expr, &c, err);
    if (rc != ANVIL_OK)
        return rc;
    struct tz *z = NULL;
    rc           = tz_load(zone, &z, err);
    tz_free(z);
    return rc;
}

int
hsched_decode_create(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    const Anvil__V1__ScheduleSpec *sp
        = ((Anvil__V1__CreateScheduleRequest *) call->req)->spec;
    struct store_schedule *s = &call->cmd.u.schedule.spec;
    if (sp == NULL)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "spec is missing: the schedule");
    if (handlers_check_name("name", sp->name, err) != ANVIL_OK
        || check_clock(sp->cron, sp->time_zone, err) != ANVIL_OK
        || decode_template(lim, call, sp, s, err) != ANVIL_OK)
        return err->code;
    if ((unsigned) sp->overlap > ANVIL_OVERLAP_CANCEL_PREVIOUS)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "overlap %d is not an OverlapPolicy", (int) sp->overlap);
    if ((unsigned) sp->catch_up > ANVIL_CATCH_UP_SKIP)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "catch_up %d is not a CatchUpPolicy", (int) sp->catch_up);
    if (sp->catch_up_limit > MAX_CATCH_UP)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "catch_up_limit %u is over %d", sp->catch_up_limit, MAX_CATCH_UP);
    s->name                   = sp->name;
    s->expr                   = sp->cron;
    s->tz                     = sp->time_zone[0] ? sp->time_zone : "UTC";
    s->overlap                = (int) sp->overlap;
    s->catch_up               = (int) sp->catch_up;
    s->catch_up_limit         = sp->catch_up_limit;
    call->cmd.u.schedule.name = sp->name;
    return ANVIL_OK;
}

int
hsched_decode_name(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    const ProtobufCFieldDescriptor *f
        = protobuf_c_message_descriptor_get_field_by_name(
            call->req->descriptor, "name");
    AV_ASSERT(f != NULL && f->type == PROTOBUF_C_TYPE_STRING);
    const char *name = *(char **) ((char *) call->req + f->offset);
    if (name[0] == '\0')
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "name is empty: name the schedule");
    if (handlers_check_name("name", name, err) != ANVIL_OK)
        return err->code;
    call->cmd.u.schedule.name = name;
    return ANVIL_OK;
}

// A schedule's wire form, in reply memory.
struct pb_sched {
    Anvil__V1__Schedule         m;
    Anvil__V1__ScheduleSpec     spec;
    Anvil__V1__SubmitJobRequest job;
    char                        last[24];
};

// Reply memory as protobuf-c's allocator: a workflow template unpacks
// into the reply's blocks, freed with them.
static void *
scratch_alloc(void *scratch, size_t size)
{
    return handlers_alloc(scratch, 1, size > 0 ? size : 1);
}

static void
scratch_keep(void *scratch, void *p)
{
    (void) scratch;
    (void) p;
}

// A workflow template's spec in place of the job: 0, or -1 when out of
// memory or the stored bytes do not decode.
static int
workflow_to_pb(
    void **scratch, const struct store_schedule *s, struct pb_sched *p)
{
    ProtobufCAllocator a = { scratch_alloc, scratch_keep, scratch };
    p->spec.job          = NULL;
    p->spec.workflow
        = anvil__v1__workflow_spec__unpack(&a, s->workflow_len, s->workflow);
    p->m.last_job_id = (char *) protobuf_c_empty_string;
    if (s->last_job_id != 0) {
        workflow_id_format(s->last_job_id, p->last, sizeof(p->last));
        p->m.last_workflow_id = p->last;
    }
    return p->spec.workflow != NULL ? 0 : -1;
}

static void
sched_to_pb(const void *from, void *to)
{
    const struct store_schedule *s  = from;
    struct pb_sched             *p  = to;
    Anvil__V1__SubmitJobRequest *j  = &p->job;
    Anvil__V1__ScheduleSpec     *sp = &p->spec;
    anvil__v1__schedule__init(&p->m);
    anvil__v1__schedule_spec__init(sp);
    anvil__v1__submit_job_request__init(j);
    j->type         = s->type;
    j->queue        = s->queue;
    j->payload      = (ProtobufCBinaryData) { s->payload_len, s->payload };
    j->priority     = s->priority;
    j->max_attempts = s->retry.max_attempts;
    j->timeout_ms   = s->timeout_ms;
    j->lease_ms     = s->lease_ms;
    j->initial_backoff_ms = s->retry.initial_backoff_ms;
    j->max_backoff_ms     = s->retry.max_backoff_ms;
    j->backoff_multiplier = s->retry.backoff_multiplier;
    sp->name              = s->name;
    sp->cron              = s->expr;
    sp->time_zone         = s->tz;
    sp->job               = j;
    sp->overlap           = (Anvil__V1__OverlapPolicy) s->overlap;
    sp->catch_up          = (Anvil__V1__CatchUpPolicy) s->catch_up;
    sp->catch_up_limit    = s->catch_up_limit;
    p->m.spec             = sp;
    p->m.paused           = s->paused;
    p->m.next_fire_ms     = s->next_fire_at;
    p->m.last_fire_ms     = s->last_fire_at;
    p->m.fired            = s->fired;
    p->m.skipped          = s->skipped;
    p->m.created_at_ms    = s->created_at;
    if (s->last_job_id != 0) {
        job_id_format(s->last_job_id, p->last, sizeof(p->last));
        p->m.last_job_id = p->last;
    }
}

static const ProtobufCMessageDescriptor *
reply_of(enum cmd_kind k)
{
    switch (k) {
    case CMD_SCHED_CREATE:
        return &anvil__v1__create_schedule_response__descriptor;
    case CMD_SCHED_GET:
        return &anvil__v1__get_schedule_response__descriptor;
    case CMD_SCHED_PAUSE:
        return &anvil__v1__pause_schedule_response__descriptor;
    case CMD_SCHED_RESUME:
        return &anvil__v1__resume_schedule_response__descriptor;
    case CMD_SCHED_DELETE:
        return &anvil__v1__delete_schedule_response__descriptor;
    default:
        return &anvil__v1__list_schedules_response__descriptor;
    }
}

int
hsched_encode(struct call *call, ProtobufCMessage **out, void **scratch)
{
    const struct cmd_schedule        *q = &call->cmd.u.schedule;
    const ProtobufCMessageDescriptor *d = reply_of(call->cmd.kind);
    ProtobufCMessage *m = handlers_alloc(scratch, 1, d->sizeof_message);
    void **list         = handlers_list(scratch, q->out, q->n, sizeof(*q->out),
                sizeof(struct pb_sched), sched_to_pb);
    if (m == NULL || (q->n > 0 && list == NULL))
        return ANVIL_RESOURCE_EXHAUSTED;
    for (size_t i = 0; i < q->n; i++) {
        if (q->out[i].workflow != NULL
            && workflow_to_pb(scratch, &q->out[i], list[i]) != 0)
            return ANVIL_RESOURCE_EXHAUSTED;
    }
    protobuf_c_message_init(d, m);
    if (call->cmd.kind == CMD_SCHED_LIST) {
        Anvil__V1__ListSchedulesResponse *r = (void *) m;
        r->schedules                        = (Anvil__V1__Schedule **) list;
        r->n_schedules                      = q->n;
    } else {
        const ProtobufCFieldDescriptor *f
            = protobuf_c_message_descriptor_get_field_by_name(d, "schedule");
        AV_ASSERT(f != NULL && q->n == 1);
        *(void **) ((char *) m + f->offset) = list[0];
    }
    *out = m;
    return ANVIL_OK;
}
