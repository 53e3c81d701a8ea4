// client_schedule.c - the cron schedule calls of schedule.h:
// CreateSchedule, GetSchedule, ListSchedules, PauseSchedule,
// ResumeSchedule and DeleteSchedule, and the policies' names.
#include "anvil/v1/anvil.pb-c.h"
#include "client_impl.h"
#include "convert.h"
#include "util/error.h"
#include "workflow_impl.h"

#include <anvil/schedule.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const overlaps[]  = { "skip", "allow", "cancel" };
static const char *const catch_ups[] = { "once", "each", "skip" };

const char *
anvil_schedule_overlap_name(enum anvil_schedule_overlap o)
{
    return (unsigned) o < 3 ? overlaps[o] : NULL;
}

const char *
anvil_schedule_catch_up_name(enum anvil_schedule_catch_up p)
{
    return (unsigned) p < 3 ? catch_ups[p] : NULL;
}

static int
parse_of(const char *const names[3], const char *name, int *out)
{
    for (int i = 0; name != NULL && i < 3; i++) {
        if (strcasecmp(name, names[i]) == 0) {
            *out = i;
            return ANVIL_OK;
        }
    }
    return ANVIL_INVALID_ARGUMENT;
}

int
anvil_schedule_overlap_parse(const char *name, enum anvil_schedule_overlap *out)
{
    int v  = 0;
    int rc = parse_of(overlaps, name, &v);
    if (rc == ANVIL_OK)
        *out = (enum anvil_schedule_overlap) v;
    return rc;
}

int
anvil_schedule_catch_up_parse(
    const char *name, enum anvil_schedule_catch_up *out)
{
    int v  = 0;
    int rc = parse_of(catch_ups, name, &v);
    if (rc == ANVIL_OK)
        *out = (enum anvil_schedule_catch_up) v;
    return rc;
}

// ---- copies ----

static void
sched_fini(void *item)
{
    struct anvil_schedule *s = item;
    free(s->name);
    free(s->cron);
    free(s->time_zone);
    free(s->type);
    free(s->queue);
    free(s->payload);
    free(s->last_job_id);
    free(s->workflow_name);
    free(s->last_workflow_id);
    memset(s, 0, sizeof(*s));
}

// Fills item (a struct anvil_schedule) from pb (an Anvil__V1__Schedule).
// 0, or -1 (out of memory or no spec; the schedule is then empty).
static int
sched_from_pb(void *item, const void *pb_sched)
{
    struct anvil_schedule     *s  = item;
    const Anvil__V1__Schedule *pb = pb_sched;
    memset(s, 0, sizeof(*s));
    const Anvil__V1__ScheduleSpec *sp = pb->spec;
    if (sp == NULL || (sp->job == NULL) == (sp->workflow == NULL))
        return -1;
    Anvil__V1__SubmitJobRequest none     = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    const Anvil__V1__SubmitJobRequest *j = sp->job ? sp->job : &none;
    const Anvil__V1__WorkflowSpec     *w = sp->workflow;
    s->workflow_name    = convert_str(w != NULL ? w->name : "");
    s->workflow_steps   = w != NULL ? w->n_steps : 0;
    s->last_workflow_id = convert_str(pb->last_workflow_id);
    s->name             = convert_str(sp->name);
    s->cron             = convert_str(sp->cron);
    s->time_zone        = convert_str(sp->time_zone);
    s->type             = convert_str(j->type);
    s->queue            = convert_str(j->queue);
    s->payload          = convert_bytes(j->payload, &s->payload_len);
    s->last_job_id      = convert_str(pb->last_job_id);
    s->priority         = j->priority;
    s->retry            = (struct anvil_retry_policy) { j->max_attempts,
                   j->initial_backoff_ms, j->max_backoff_ms, j->backoff_multiplier };
    s->timeout_ms       = j->timeout_ms;
    s->lease_ms         = j->lease_ms;
    s->overlap          = (enum anvil_schedule_overlap) sp->overlap;
    s->catch_up         = (enum anvil_schedule_catch_up) sp->catch_up;
    s->catch_up_limit   = sp->catch_up_limit;
    s->paused           = pb->paused;
    s->next_fire_ms     = pb->next_fire_ms;
    s->last_fire_ms     = pb->last_fire_ms;
    s->fired            = pb->fired;
    s->skipped          = pb->skipped;
    s->created_at_ms    = pb->created_at_ms;
    if (s->name && s->cron && s->time_zone && s->type && s->queue && s->payload
        && s->last_job_id && s->workflow_name && s->last_workflow_id)
        return 0;
    sched_fini(s);
    return -1;
}

static void *
sched_list_new(void *items, size_t n)
{
    struct anvil_schedule_list *l = malloc(sizeof(*l));
    if (l != NULL)
        *l = (struct anvil_schedule_list) { items, n };
    return l;
}

void
anvil_schedule_list_free(struct anvil_schedule_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n; i++)
        sched_fini(&list->schedules[i]);
    free(list->schedules);
    free(list);
}

void
anvil_schedule_free(struct anvil_schedule *s)
{
    if (s == NULL)
        return;
    sched_fini(s);
    free(s);
}

// Puts a new copy of the reply's schedule at out (a struct anvil_schedule
// **).
static int
take_sched(const ProtobufCMessage *rep, const char *method, void *out,
    struct anvil_error *err)
{
    Anvil__V1__Schedule *const *pb = client_field(rep, "schedule");
    if (pb == NULL || *pb == NULL)
        return av_error_set(
            err, ANVIL_INTERNAL, "the reply to %s has no schedule", method);
    struct anvil_schedule *s = malloc(sizeof(*s));
    if (s == NULL || sched_from_pb(s, *pb) != 0) {
        free(s);
        return convert_oom(err, method);
    }
    anvil_schedule_free(*(struct anvil_schedule **) out);
    *(struct anvil_schedule **) out = s;
    return ANVIL_OK;
}

// ---- calls ----

int
anvil_schedule_create(anvil_client *c, const struct anvil_schedule_spec *spec,
    struct anvil_schedule **out, struct anvil_error *err)
{
    static const char fn[] = "anvil_schedule_create";
    if (out != NULL)
        *out = NULL;
    int rc = client_check(c, fn, err);
    if (rc == ANVIL_OK && spec == NULL)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: spec is NULL", fn);
    if (rc == ANVIL_OK)
        rc = client_check_id(spec->name, "spec->name", fn, err);
    if (rc == ANVIL_OK)
        rc = client_check_id(spec->cron, "spec->cron", fn, err);
    if (rc == ANVIL_OK && spec->type == NULL && spec->workflow == NULL)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: spec->type and spec->workflow are both NULL: set the job "
            "type or the workflow each tick submits",
            fn);
    if (rc == ANVIL_OK && spec->type != NULL)
        rc = client_check_id(spec->type, "spec->type", fn, err);
    if (rc == ANVIL_OK)
        rc = client_check_bytes(spec->payload, spec->len, "payload", fn, err);
    if (rc != ANVIL_OK)
        return rc;
    // Both templates go when both are set: the server names the mistake.
    struct workflow_pb wpb = { 0 };
    if (spec->workflow != NULL && workflow_pb_init(&wpb, spec->workflow) != 0)
        return convert_oom(err, "CreateSchedule");
    Anvil__V1__SubmitJobRequest job = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    client_submit_opts_to_pb(spec->opts, &job);
    job.type = (char *) spec->type;
    job.payload
        = (ProtobufCBinaryData) { spec->len, (uint8_t *) spec->payload };
    Anvil__V1__ScheduleSpec sp = ANVIL__V1__SCHEDULE_SPEC__INIT;
    sp.name                    = (char *) spec->name;
    sp.cron                    = (char *) spec->cron;
    sp.time_zone      = (char *) (spec->time_zone ? spec->time_zone : "");
    sp.job            = spec->type != NULL ? &job : NULL;
    sp.workflow       = spec->workflow != NULL ? &wpb.spec : NULL;
    sp.overlap        = (Anvil__V1__OverlapPolicy) spec->overlap;
    sp.catch_up       = (Anvil__V1__CatchUpPolicy) spec->catch_up;
    sp.catch_up_limit = spec->catch_up_limit;
    Anvil__V1__CreateScheduleRequest req
        = ANVIL__V1__CREATE_SCHEDULE_REQUEST__INIT;
    req.spec = &sp;
    rc       = client_call_take(
              c, "CreateSchedule", &req.base, 0, take_sched, out, err);
    workflow_pb_fini(&wpb);
    return rc;
}

// GetSchedule, PauseSchedule, ResumeSchedule, DeleteSchedule: a request
// of one name (each message's field 1), a reply of one schedule.
static int
by_name(anvil_client *c, const char *method,
    const ProtobufCMessageDescriptor *d, const char *name,
    struct anvil_schedule **out, const char *fn, struct anvil_error *err)
{
    if (out != NULL)
        *out = NULL;
    int rc = client_check(c, fn, err);
    if (rc == ANVIL_OK)
        rc = client_check_id(name, "name", fn, err);
    if (rc != ANVIL_OK)
        return rc;
    // All four requests are { base; char *name; }.
    Anvil__V1__GetScheduleRequest req = ANVIL__V1__GET_SCHEDULE_REQUEST__INIT;
    req.base.descriptor               = d;
    req.name                          = (char *) name;
    return client_call_take(c, method, &req.base, 0, take_sched, out, err);
}

int
anvil_schedule_get(anvil_client *c, const char *name,
    struct anvil_schedule **out, struct anvil_error *err)
{
    if (out == NULL)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "anvil_schedule_get: out is NULL");
    return by_name(c, "GetSchedule",
        &anvil__v1__get_schedule_request__descriptor, name, out,
        "anvil_schedule_get", err);
}

int
anvil_schedule_pause(anvil_client *c, const char *name,
    struct anvil_schedule **out, struct anvil_error *err)
{
    return by_name(c, "PauseSchedule",
        &anvil__v1__pause_schedule_request__descriptor, name, out,
        "anvil_schedule_pause", err);
}

int
anvil_schedule_resume(anvil_client *c, const char *name,
    struct anvil_schedule **out, struct anvil_error *err)
{
    return by_name(c, "ResumeSchedule",
        &anvil__v1__resume_schedule_request__descriptor, name, out,
        "anvil_schedule_resume", err);
}

int
anvil_schedule_delete(anvil_client *c, const char *name,
    struct anvil_schedule **out, struct anvil_error *err)
{
    return by_name(c, "DeleteSchedule",
        &anvil__v1__delete_schedule_request__descriptor, name, out,
        "anvil_schedule_delete", err);
}

int
anvil_schedule_list(
    anvil_client *c, struct anvil_schedule_list **out, struct anvil_error *err)
{
    static const struct client_list_kind k = { "anvil_schedule_list",
        "ListSchedules", "schedules", "schedule", sizeof(struct anvil_schedule),
        sched_from_pb, sched_fini, sched_list_new };
    Anvil__V1__ListSchedulesRequest      req
        = ANVIL__V1__LIST_SCHEDULES_REQUEST__INIT;
    return client_list_call(c, &k, &req.base, out, err);
}
