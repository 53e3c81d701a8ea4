// handlers_flow.c - decode/validate and encode of the workflow rpcs:
// SubmitWorkflow, GetWorkflow, ListWorkflows, WaitWorkflow, CancelWorkflow.
// A workflow spec is validated whole (graph included: flowspec.c) here, on
// the rpc thread, so a bad spec never reaches the engine.
#include "flowspec.h"
#include "handlers_impl.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
free_wf_input(void *p)
{
    struct flowspec *fs = p;
    if (fs == NULL)
        return;
    flowspec_fini(fs);
    free(fs);
}

static int
parse_wf_id(const char *s, int64_t *id, struct anvil_error *err)
{
    if (workflow_id_parse(s, id) == 0)
        return ANVIL_OK;
    if (s[0] == '\0')
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "workflow id is empty");
    return av_error_set(err, ANVIL_NOT_FOUND,
        "no workflow with id '%.64s' (workflow ids look like w7)", s);
}

int
hflow_decode_submit(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    Anvil__V1__SubmitWorkflowRequest *r
        = (Anvil__V1__SubmitWorkflowRequest *) call->req;
    struct flowspec *fs = calloc(1, sizeof(*fs));
    if (fs == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    call->scratch      = fs;
    call->scratch_free = free_wf_input;
    return flowspec_build(lim, r->spec, fs, &call->cmd.u.wf_submit, err);
}

// GetWorkflow, CancelWorkflow and RetryWorkflow name one workflow.
int
hflow_decode_id(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    const char *id;
    switch (call->cmd.kind) {
    case CMD_WF_CANCEL:
        id = ((Anvil__V1__CancelWorkflowRequest *) call->req)->id;
        break;
    case CMD_WF_RETRY:
        id = ((Anvil__V1__RetryWorkflowRequest *) call->req)->id;
        break;
    default:
        id = ((Anvil__V1__GetWorkflowRequest *) call->req)->id;
        break;
    }
    return parse_wf_id(id, &call->cmd.u.wf.id, err);
}

int
hflow_decode_wait(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    Anvil__V1__WaitWorkflowRequest *r
        = (Anvil__V1__WaitWorkflowRequest *) call->req;
    if (r->timeout_ms > MAX_WAIT_MS)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "timeout_ms %u is over the limit of %u ms; wait again instead",
            r->timeout_ms, MAX_WAIT_MS);
    call->cmd.u.wf.timeout_ms = r->timeout_ms;
    call->long_poll           = r->timeout_ms > 0;
    return parse_wf_id(r->id, &call->cmd.u.wf.id, err);
}

int
hflow_decode_list(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    Anvil__V1__ListWorkflowsRequest *r
        = (Anvil__V1__ListWorkflowsRequest *) call->req;
    struct store_list_filter *f = &call->cmd.u.wf_list.f;
    if (r->limit > MAX_LIST_LIMIT)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "limit %u is over the maximum page size of %d", r->limit,
            MAX_LIST_LIMIT);
    if ((int) r->state < 0 || (int) r->state > WF_CANCELED)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "state %d is not a workflow state", (int) r->state);
    if (r->name[0] && handlers_check_name("name", r->name, err))
        return err->code;
    if (r->cursor[0] != '\0'
        && workflow_id_parse(r->cursor, &f->before_id) != 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "cursor '%.64s' is not a cursor this server returned", r->cursor);
    f->state = (int) r->state;
    f->type  = r->name[0] ? r->name : NULL;
    f->limit = r->limit ? r->limit : DEFAULT_LIST_LIMIT;
    return ANVIL_OK;
}

// ---- encode ----

// A wire workflow and the text of its id.
struct pb_flow {
    Anvil__V1__Workflow m;
    char                id[24];
};

// Fills p with w, its steps in reply memory.
static int
flow_to_pb(void **s, const struct workflow *w, struct pb_flow *p)
{
    Anvil__V1__Workflow *m = &p->m;
    anvil__v1__workflow__init(m);
    workflow_id_format(w->id, p->id, sizeof(p->id));
    m->id              = p->id;
    m->name            = w->name;
    m->state           = (Anvil__V1__WorkflowState) w->state;
    m->on_failure      = (Anvil__V1__FailurePolicy) w->on_failure;
    m->created_at_ms   = w->created_at;
    m->finished_at_ms  = w->finished_at;
    m->error           = w->error;
    m->timeout_ms      = w->timeout_ms;
    m->steps_total     = w->n_steps;
    m->steps_succeeded = w->n_succeeded;
    m->steps_failed    = w->n_failed;
    m->steps_settled   = w->n_settled;
    m->idempotency_key = w->idem_key;
    if (w->n == 0)
        return ANVIL_OK;
    m->n_steps = w->n;
    m->steps   = handlers_jobs_to_pb(s, w->steps, w->n);
    return m->steps != NULL ? ANVIL_OK : ANVIL_RESOURCE_EXHAUSTED;
}

// GetWorkflow, WaitWorkflow, CancelWorkflow and RetryWorkflow answer a
// workflow.
struct flow_reply {
    union {
        Anvil__V1__GetWorkflowResponse    get;
        Anvil__V1__WaitWorkflowResponse   wait;
        Anvil__V1__CancelWorkflowResponse cancel;
        Anvil__V1__RetryWorkflowResponse  retry;
    } m;
    struct pb_flow flow;
};

int
hflow_encode_workflow(struct call *call, ProtobufCMessage **out, void **s)
{
    struct flow_reply *r = handlers_alloc(s, 1, sizeof(*r));
    if (r == NULL || flow_to_pb(s, &call->cmd.u.wf.wf, &r->flow) != ANVIL_OK)
        return ANVIL_RESOURCE_EXHAUSTED;
    switch (call->cmd.kind) {
    case CMD_WF_WAIT:
        anvil__v1__wait_workflow_response__init(&r->m.wait);
        r->m.wait.workflow = &r->flow.m;
        r->m.wait.done     = call->cmd.u.wf.done;
        *out               = &r->m.wait.base;
        break;
    case CMD_WF_CANCEL:
        anvil__v1__cancel_workflow_response__init(&r->m.cancel);
        r->m.cancel.workflow = &r->flow.m;
        *out                 = &r->m.cancel.base;
        break;
    case CMD_WF_RETRY:
        anvil__v1__retry_workflow_response__init(&r->m.retry);
        r->m.retry.workflow = &r->flow.m;
        *out                = &r->m.retry.base;
        break;
    default:
        anvil__v1__get_workflow_response__init(&r->m.get);
        r->m.get.workflow = &r->flow.m;
        *out              = &r->m.get.base;
        break;
    }
    return ANVIL_OK;
}

// ListWorkflows' reply and the text of its cursor.
struct list_reply {
    Anvil__V1__ListWorkflowsResponse m;
    char                             cursor[24];
};

int
hflow_encode_list(struct call *call, ProtobufCMessage **out, void **s)
{
    struct cmd_wf_list   *l     = &call->cmd.u.wf_list;
    struct list_reply    *r     = handlers_alloc(s, 1, sizeof(*r));
    Anvil__V1__Workflow **ptrs  = handlers_alloc(s, l->n, sizeof(*ptrs));
    struct pb_flow       *flows = handlers_alloc(s, l->n, sizeof(*flows));
    if (r == NULL || ptrs == NULL || flows == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    for (size_t i = 0; i < l->n; i++) {
        if (flow_to_pb(s, &l->wfs[i], &flows[i]) != ANVIL_OK)
            return ANVIL_RESOURCE_EXHAUSTED;
        ptrs[i] = &flows[i].m;
    }
    anvil__v1__list_workflows_response__init(&r->m);
    r->m.n_workflows = l->n;
    r->m.workflows   = ptrs;
    if (l->next_before > 0)
        workflow_id_format(l->next_before, r->cursor, sizeof(r->cursor));
    r->m.next_cursor = r->cursor;
    *out             = &r->m.base;
    return ANVIL_OK;
}
