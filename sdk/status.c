// status.c - names of the public enums: job and workflow states, failure
// policies, roles and event kinds (enum value <-> "QUEUED", "fail_fast",
// "admin", "JOB_SUCCEEDED"). One
// table per enum and one lookup for all of them. Any thread; read-only data.
#include <anvil/anvil.h>
#include <anvil/workflow.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const job_states[] = {
    "UNSPECIFIED",
    "PENDING",
    "SCHEDULED",
    "QUEUED",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "CANCELED",
};

static const char *const workflow_states[] = {
    "UNSPECIFIED",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "CANCELED",
};

static const char *const policies[] = {
    [ANVIL_POLICY_FAIL_FAST] = "fail_fast",
    [ANVIL_POLICY_CONTINUE]  = "continue",
};

static const char *const event_kinds[] = {
    "UNSPECIFIED",
    "JOB_SUBMITTED",
    "JOB_STARTED",
    "JOB_RETRIED",
    "JOB_SUCCEEDED",
    "JOB_FAILED",
    "JOB_CANCELED",
    "WORKFLOW_STARTED",
    "WORKFLOW_SUCCEEDED",
    "WORKFLOW_FAILED",
    "WORKFLOW_CANCELED",
    "WORKFLOW_RETRIED",
    "WORKER_JOINED",
    "WORKER_LOST",
    "QUEUE_PAUSED",
    "QUEUE_RESUMED",
    "JOB_PROGRESS",
    "SCHEDULE_FIRED",
    "QUEUE_LIMITED",
};

// The same, as people and the SSE stream write them.
static const char *const event_labels[] = {
    "unspecified",
    "job.submitted",
    "job.started",
    "job.retried",
    "job.succeeded",
    "job.failed",
    "job.canceled",
    "workflow.started",
    "workflow.succeeded",
    "workflow.failed",
    "workflow.canceled",
    "workflow.retried",
    "worker.joined",
    "worker.lost",
    "queue.paused",
    "queue.resumed",
    "job.progress",
    "schedule.fired",
    "queue.limited",
};

static const char *const roles[] = {
    [0]                 = NULL,
    [ANVIL_ROLE_ADMIN]  = "admin",
    [ANVIL_ROLE_CLIENT] = "client",
    [ANVIL_ROLE_WORKER] = "worker",
    [ANVIL_ROLE_READER] = "reader",
};

// names[v], or fallback when v is out of the table or has no name.
static const char *
name_of(const char *const *names, size_t n, int v, const char *fallback)
{
    if (v < 0 || (size_t) v >= n || names[v] == NULL)
        return fallback;
    return names[v];
}

// The index whose name is name (any case; "CANCELLED" also names canceled,
// the British spelling of the status code CANCELLED), or -1.
static int
index_of(const char *const *names, size_t n, const char *name, int canceled)
{
    if (name == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (names[i] != NULL && strcasecmp(name, names[i]) == 0)
            return (int) i;
    if (canceled > 0 && strcasecmp(name, "CANCELLED") == 0)
        return canceled;
    return -1;
}

const char *
anvil_job_state_name(enum anvil_job_state state)
{
    return name_of(job_states, COUNT(job_states), (int) state, job_states[0]);
}

int
anvil_job_state_parse(const char *name, enum anvil_job_state *state)
{
    int i = index_of(job_states, COUNT(job_states), name, ANVIL_JOB_CANCELED);
    if (i < 0 || state == NULL)
        return ANVIL_INVALID_ARGUMENT;
    *state = (enum anvil_job_state) i;
    return ANVIL_OK;
}

bool
anvil_job_state_final(enum anvil_job_state state)
{
    return state == ANVIL_JOB_SUCCEEDED || state == ANVIL_JOB_FAILED
        || state == ANVIL_JOB_CANCELED;
}

const char *
anvil_workflow_state_name(enum anvil_workflow_state state)
{
    return name_of(workflow_states, COUNT(workflow_states), (int) state,
        workflow_states[0]);
}

int
anvil_workflow_state_parse(const char *name, enum anvil_workflow_state *state)
{
    int i = index_of(
        workflow_states, COUNT(workflow_states), name, ANVIL_WORKFLOW_CANCELED);
    if (i < 0 || state == NULL)
        return ANVIL_INVALID_ARGUMENT;
    *state = (enum anvil_workflow_state) i;
    return ANVIL_OK;
}

bool
anvil_workflow_state_final(enum anvil_workflow_state state)
{
    return state == ANVIL_WORKFLOW_SUCCEEDED || state == ANVIL_WORKFLOW_FAILED
        || state == ANVIL_WORKFLOW_CANCELED;
}

const char *
anvil_failure_policy_name(enum anvil_failure_policy policy)
{
    return name_of(policies, COUNT(policies), (int) policy, "unknown");
}

int
anvil_failure_policy_parse(const char *name, enum anvil_failure_policy *policy)
{
    int i = index_of(policies, COUNT(policies), name, -1);
    if (i < 0 || policy == NULL)
        return ANVIL_INVALID_ARGUMENT;
    *policy = (enum anvil_failure_policy) i;
    return ANVIL_OK;
}

const char *
anvil_role_name(enum anvil_role role)
{
    return name_of(roles, COUNT(roles), (int) role, "unspecified");
}

int
anvil_role_parse(const char *name, enum anvil_role *role)
{
    int i = index_of(roles, COUNT(roles), name, -1);
    if (i < 0 || role == NULL)
        return ANVIL_INVALID_ARGUMENT;
    *role = (enum anvil_role) i;
    return ANVIL_OK;
}

const char *
anvil_event_kind_name(enum anvil_event_kind kind)
{
    return name_of(event_kinds, COUNT(event_kinds), (int) kind, event_kinds[0]);
}

const char *
anvil_event_kind_label(enum anvil_event_kind kind)
{
    return name_of(
        event_labels, COUNT(event_labels), (int) kind, event_labels[0]);
}

int
anvil_event_kind_parse(const char *name, enum anvil_event_kind *kind)
{
    static const char prefix[] = "EVENT_KIND_";
    char              buf[48];
    if (name == NULL || kind == NULL)
        return ANVIL_INVALID_ARGUMENT;
    if (strncasecmp(name, prefix, sizeof(prefix) - 1) == 0)
        name += sizeof(prefix) - 1;
    size_t len = strlen(name);
    if (len >= sizeof(buf))
        return ANVIL_INVALID_ARGUMENT;
    for (size_t i = 0; i <= len; i++) // "job.succeeded" = "job_succeeded"
        buf[i] = name[i] == '.' ? '_' : name[i];
    int i = index_of(event_kinds, COUNT(event_kinds), buf, -1);
    if (i <= 0) // UNSPECIFIED names no kind one can watch
        return ANVIL_INVALID_ARGUMENT;
    *kind = (enum anvil_event_kind) i;
    return ANVIL_OK;
}
