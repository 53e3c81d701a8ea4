// workflow.c - the workflow builder and the workflow calls of workflow.h:
// SubmitWorkflow, GetWorkflow, WaitWorkflow, CancelWorkflow, ListWorkflows.
//
// The builder checks locally only what it can know cheaply and for sure
// (NULL arguments, names used twice, edges to unknown steps); the graph as
// a whole (cycles, limits, name syntax) is the server's to judge, so there
// is one set of rules and one wording of each error.
#include "workflow_impl.h"

#include "client_impl.h"
#include "convert.h"
#include "util/clock.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

// ---- the name index ----

long
workflow_find(const anvil_workflow_spec *wf, const char *name)
{
    size_t at;
    return av_hash_get(&wf->index, name, &at) ? (long) at : -1;
}

// Makes room for one more step.
static int
reserve_step(anvil_workflow_spec *wf)
{
    if (wf->n < wf->cap)
        return 0;
    size_t          cap = wf->cap ? wf->cap * 2 : 8;
    struct wf_step *s   = realloc(wf->steps, cap * sizeof(*s));
    if (s == NULL)
        return -1;
    wf->steps = s;
    wf->cap   = cap;
    return 0;
}

// ---- building ----

static int
oom(struct anvil_error *err)
{
    return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
}

int
anvil_workflow_spec_new(
    anvil_workflow_spec **out, const char *name, struct anvil_error *err)
{
    if (out == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "anvil_workflow_spec_new: out is NULL");
    *out = NULL;
    if (name == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "anvil_workflow_spec_new: the workflow name is NULL");
    anvil_workflow_spec *wf = calloc(1, sizeof(*wf));
    if (wf == NULL)
        return oom(err);
    wf->name   = strdup(name);
    wf->policy = ANVIL_POLICY_FAIL_FAST;
    if (wf->name == NULL) {
        free(wf);
        return oom(err);
    }
    *out = wf;
    return ANVIL_OK;
}

static void
step_fini(struct wf_step *s)
{
    free(s->name);
    free(s->type);
    free(s->queue);
    free(s->payload);
    free(s->ckey);
    convert_strv_free(s->after, s->n_after);
}

void
anvil_workflow_spec_free(anvil_workflow_spec *wf)
{
    if (wf == NULL)
        return;
    for (size_t i = 0; i < wf->n; i++)
        step_fini(&wf->steps[i]);
    free(wf->steps);
    av_hash_fini(&wf->index);
    free(wf->name);
    free(wf->key);
    free(wf);
}

int
anvil_workflow_spec_set_policy(anvil_workflow_spec *wf,
    enum anvil_failure_policy policy, struct anvil_error *err)
{
    static const char fn[] = "anvil_workflow_spec_set_policy";
    if (wf == NULL)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "%s: workflow is NULL", fn);
    if (policy != ANVIL_POLICY_FAIL_FAST && policy != ANVIL_POLICY_CONTINUE)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: %d is not a failure policy (fail_fast or continue)", fn,
            (int) policy);
    wf->policy = policy;
    return ANVIL_OK;
}

int
anvil_workflow_spec_set_timeout(
    anvil_workflow_spec *wf, int64_t timeout_ms, struct anvil_error *err)
{
    static const char fn[] = "anvil_workflow_spec_set_timeout";
    if (wf == NULL)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "%s: workflow is NULL", fn);
    if (timeout_ms < 0)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "%s: timeout_ms is negative", fn);
    wf->timeout_ms = timeout_ms;
    return ANVIL_OK;
}

int
anvil_workflow_spec_set_key(anvil_workflow_spec *wf,
    const char *idempotency_key, struct anvil_error *err)
{
    if (wf == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "anvil_workflow_spec_set_key: workflow is NULL");
    char *key = NULL;
    if (idempotency_key != NULL && idempotency_key[0] != '\0') {
        key = strdup(idempotency_key);
        if (key == NULL)
            return oom(err);
    }
    free(wf->key);
    wf->key = key;
    return ANVIL_OK;
}

static int
check_step_args(const anvil_workflow_spec *wf, const char *name,
    const char *type, const void *payload, size_t len, struct anvil_error *err)
{
    static const char fn[] = "anvil_workflow_spec_add_step";
    if (wf == NULL || name == NULL || type == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: %s is NULL", fn,
            wf == NULL         ? "workflow"
                : name == NULL ? "the step name"
                               : "the step type");
    if (payload == NULL && len > 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: step \"%.128s\": payload is NULL but its length is %zu", fn,
            name, len);
    if (workflow_find(wf, name) >= 0)
        return av_error_set(err, ANVIL_ALREADY_EXISTS,
            "workflow \"%.128s\" already has a step \"%.128s\"", wf->name,
            name);
    return ANVIL_OK;
}

// A copy of an optional string (NULL stays NULL).
static char *
dup_opt(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

int
anvil_workflow_spec_add_step(anvil_workflow_spec *wf, const char *name,
    const char *type, const void *payload, size_t len,
    const struct anvil_step_opts *opts, struct anvil_error *err)
{
    int rc = check_step_args(wf, name, type, payload, len, err);
    if (rc != ANVIL_OK)
        return rc;
    if (reserve_step(wf) != 0)
        return oom(err);
    struct wf_step s = { .len = len };
    s.name           = strdup(name);
    s.type           = strdup(type);
    s.payload        = malloc(len + 1);
    if (opts != NULL) {
        s.queue      = dup_opt(opts->queue);
        s.priority   = opts->priority;
        s.timeout_ms = opts->timeout_ms;
        s.lease_ms   = opts->lease_ms;
        s.retry      = opts->retry;
        s.ckey       = dup_opt(opts->concurrency_key);
        s.climit     = opts->concurrency_limit;
    }
    if (s.name == NULL || s.type == NULL || s.payload == NULL
        || (opts != NULL && opts->queue != NULL && s.queue == NULL)
        || (opts != NULL && opts->concurrency_key != NULL && s.ckey == NULL)) {
        step_fini(&s);
        return oom(err);
    }
    if (len > 0)
        memcpy(s.payload, payload, len);
    s.payload[len] = '\0';
    // The index borrows the name: a heap string that moves with no step.
    if (av_hash_put(&wf->index, s.name, wf->n) != 0) {
        step_fini(&s);
        return oom(err);
    }
    wf->steps[wf->n++] = s;
    return ANVIL_OK;
}

// The index of step `name`, or NOT_FOUND naming it and the function.
static int
find_step(const anvil_workflow_spec *wf, const char *name, const char *fn,
    long *at, struct anvil_error *err)
{
    if (name == NULL)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "%s: a step name is NULL", fn);
    *at = workflow_find(wf, name);
    if (*at < 0)
        return av_error_set(err, ANVIL_NOT_FOUND,
            "%s: workflow \"%.100s\" has no step \"%.100s\" (add it with "
            "anvil_workflow_spec_add_step first)",
            fn, wf->name, name);
    return ANVIL_OK;
}

// Checks that step `name` may run after `parent`: both exist, not the same.
static int
check_edge(const anvil_workflow_spec *wf, const char *name, const char *parent,
    const char *fn, struct anvil_error *err)
{
    long a = -1, b = -1;
    int  rc = find_step(wf, name, fn, &a, err);
    if (rc == ANVIL_OK)
        rc = find_step(wf, parent, fn, &b, err);
    if (rc == ANVIL_OK && a == b)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: step \"%.128s\" cannot run after itself", fn, name);
    return rc;
}

// Adds the edge parent -> name, once. Both were checked by check_edge().
static int
add_edge(anvil_workflow_spec *wf, const char *name, const char *parent)
{
    struct wf_step *s = &wf->steps[workflow_find(wf, name)];
    for (size_t i = 0; i < s->n_after; i++)
        if (strcmp(s->after[i], parent) == 0)
            return 0;
    if (s->n_after == s->cap_after) {
        size_t cap = s->cap_after ? s->cap_after * 2 : 4;
        char **v   = realloc(s->after, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        s->after     = v;
        s->cap_after = cap;
    }
    s->after[s->n_after] = strdup(parent);
    if (s->after[s->n_after] == NULL)
        return -1;
    s->n_after++;
    return 0;
}

int
anvil_workflow_spec_add_edge(anvil_workflow_spec *wf, const char *name,
    const char *parent, struct anvil_error *err)
{
    static const char fn[] = "anvil_workflow_spec_add_edge";
    if (wf == NULL)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "%s: workflow is NULL", fn);
    int rc = check_edge(wf, name, parent, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    return add_edge(wf, name, parent) == 0 ? ANVIL_OK : oom(err);
}

static int
check_list(const anvil_workflow_spec *wf, const char *const *steps, size_t n,
    const char *fn, struct anvil_error *err)
{
    if (wf == NULL)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "%s: workflow is NULL", fn);
    if (steps == NULL && n > 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: steps is NULL but n is %zu", fn, n);
    for (size_t i = 0; i < n; i++) {
        if (steps[i] == NULL)
            return av_error_set(
                err, ANVIL_INVALID_ARGUMENT, "%s: steps[%zu] is NULL", fn, i);
    }
    return ANVIL_OK;
}

int
anvil_workflow_spec_add_chain(anvil_workflow_spec *wf, const char *const *steps,
    size_t n, struct anvil_error *err)
{
    static const char fn[] = "anvil_workflow_spec_add_chain";
    int               rc   = check_list(wf, steps, n, fn, err);
    long              at;
    if (rc == ANVIL_OK && n == 1)
        rc = find_step(wf, steps[0], fn, &at, err);
    // Check every link first, so a bad one leaves the spec unchanged.
    for (size_t i = 1; rc == ANVIL_OK && i < n; i++)
        rc = check_edge(wf, steps[i], steps[i - 1], fn, err);
    for (size_t i = 1; rc == ANVIL_OK && i < n; i++) {
        if (add_edge(wf, steps[i], steps[i - 1]) != 0)
            rc = oom(err);
    }
    return rc;
}

static int
check_group(const anvil_workflow_spec *wf, const char *after,
    const char *const *steps, size_t n, const char *join,
    struct anvil_error *err)
{
    static const char fn[] = "anvil_workflow_spec_add_group";
    int               rc   = check_list(wf, steps, n, fn, err);
    if (rc == ANVIL_OK && n == 0)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: a group needs at least one step", fn);
    for (size_t i = 0; rc == ANVIL_OK && i < n; i++) {
        long at;
        if (after != NULL)
            rc = check_edge(wf, steps[i], after, fn, err);
        else if (join == NULL)
            rc = find_step(wf, steps[i], fn, &at, err);
        if (rc == ANVIL_OK && join != NULL)
            rc = check_edge(wf, join, steps[i], fn, err);
    }
    return rc;
}

int
anvil_workflow_spec_add_group(anvil_workflow_spec *wf, const char *after,
    const char *const *steps, size_t n, const char *join,
    struct anvil_error *err)
{
    int rc = check_group(wf, after, steps, n, join, err);
    for (size_t i = 0; rc == ANVIL_OK && i < n; i++) {
        if (after != NULL && add_edge(wf, steps[i], after) != 0)
            rc = oom(err);
        if (rc == ANVIL_OK && join != NULL && add_edge(wf, join, steps[i]) != 0)
            rc = oom(err);
    }
    return rc;
}

// ---- the wire form ----

int
workflow_pb_init(struct workflow_pb *pb, const anvil_workflow_spec *wf)
{
    memset(pb, 0, sizeof(*pb));
    anvil__v1__workflow_spec__init(&pb->spec);
    pb->spec.name            = wf->name;
    pb->spec.on_failure      = (Anvil__V1__FailurePolicy) wf->policy;
    pb->spec.timeout_ms      = wf->timeout_ms;
    pb->spec.idempotency_key = wf->key != NULL ? wf->key : (char *) "";
    if (wf->n == 0)
        return 0;
    pb->steps = calloc(wf->n, sizeof(*pb->steps));
    pb->ptrs  = calloc(wf->n, sizeof(*pb->ptrs));
    if (pb->steps == NULL || pb->ptrs == NULL) {
        workflow_pb_fini(pb);
        return -1;
    }
    for (size_t i = 0; i < wf->n; i++) {
        const struct wf_step *s = &wf->steps[i];
        Anvil__V1__StepSpec  *p = &pb->steps[i];
        anvil__v1__step_spec__init(p);
        p->name               = s->name;
        p->type               = s->type;
        p->payload.data       = s->payload;
        p->payload.len        = s->len;
        p->after              = s->after;
        p->n_after            = s->n_after;
        p->queue              = s->queue != NULL ? s->queue : (char *) "";
        p->priority           = s->priority;
        p->max_attempts       = s->retry.max_attempts;
        p->timeout_ms         = s->timeout_ms;
        p->lease_ms           = s->lease_ms;
        p->initial_backoff_ms = s->retry.initial_backoff_ms;
        p->max_backoff_ms     = s->retry.max_backoff_ms;
        p->backoff_multiplier = s->retry.backoff_multiplier;
        p->concurrency_key    = s->ckey != NULL ? s->ckey : (char *) "";
        p->concurrency_limit  = s->climit;
        pb->ptrs[i]           = p;
    }
    pb->spec.steps   = pb->ptrs;
    pb->spec.n_steps = wf->n;
    return 0;
}

void
workflow_pb_fini(struct workflow_pb *pb)
{
    free(pb->steps);
    free(pb->ptrs);
    pb->steps = NULL;
    pb->ptrs  = NULL;
}

// ---- running ----

int
anvil_workflow_submit(anvil_client *c, const anvil_workflow_spec *wf,
    char **id_out, bool *existed, struct anvil_error *err)
{
    static const char fn[] = "anvil_workflow_submit";
    if (id_out != NULL)
        *id_out = NULL;
    if (existed != NULL)
        *existed = false;
    int rc = client_check(c, fn, err);
    if (rc == ANVIL_OK && wf == NULL)
        rc = av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "%s: workflow is NULL", fn);
    if (rc == ANVIL_OK && wf->n == 0)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "workflow \"%.128s\" has no steps (add one with "
            "anvil_workflow_spec_add_step)",
            wf->name);
    if (rc != ANVIL_OK)
        return rc;
    struct workflow_pb pb;
    if (workflow_pb_init(&pb, wf) != 0)
        return oom(err);
    Anvil__V1__SubmitWorkflowRequest req
        = ANVIL__V1__SUBMIT_WORKFLOW_REQUEST__INIT;
    req.spec = &pb.spec;
    Anvil__V1__SubmitWorkflowResponse *rep;
    rc = client_call(
        c, "SubmitWorkflow", &req.base, 0, (ProtobufCMessage **) &rep, err);
    workflow_pb_fini(&pb);
    if (rc != ANVIL_OK)
        return rc;
    if (id_out != NULL) {
        *id_out = convert_str(rep->id);
        if (*id_out == NULL)
            rc = convert_oom(err, "SubmitWorkflow");
    }
    if (rc == ANVIL_OK && existed != NULL)
        *existed = rep->existed;
    client_free_reply(&rep->base);
    return rc;
}

void
anvil_workflow_free(struct anvil_workflow *wf)
{
    if (wf == NULL)
        return;
    convert_workflow_fini(wf);
    free(wf);
}

const struct anvil_job *
anvil_workflow_find_step(const struct anvil_workflow *wf, const char *name)
{
    if (wf == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < wf->n_steps; i++)
        if (strcmp(wf->steps[i].step, name) == 0)
            return &wf->steps[i];
    return NULL;
}

// Replaces the workflow at out (a struct anvil_workflow **) with the
// reply's workflow.
static int
take_workflow(const ProtobufCMessage *rep, const char *method, void *out,
    struct anvil_error *err)
{
    struct anvil_workflow     **wf = out;
    Anvil__V1__Workflow *const *pb = client_field(rep, "workflow");
    anvil_workflow_free(*wf);
    *wf = NULL;
    if (pb == NULL || *pb == NULL)
        return av_error_set(
            err, ANVIL_INTERNAL, "the reply to %s has no workflow", method);
    struct anvil_workflow *w = malloc(sizeof(*w));
    if (w == NULL || convert_workflow(w, *pb) != 0) {
        free(w);
        return convert_oom(err, method);
    }
    *wf = w;
    return ANVIL_OK;
}

static int
check_id_call(anvil_client *c, const char *id, void *out, const char *fn,
    struct anvil_error *err)
{
    int rc = client_check(c, fn, err);
    if (rc == ANVIL_OK)
        rc = client_check_id(id, "workflow id", fn, err);
    if (rc == ANVIL_OK && out == NULL)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: out is NULL", fn);
    return rc;
}

int
anvil_workflow_get(anvil_client *c, const char *id, struct anvil_workflow **out,
    struct anvil_error *err)
{
    if (out != NULL)
        *out = NULL;
    int rc = check_id_call(c, id, out, "anvil_workflow_get", err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__GetWorkflowRequest req = ANVIL__V1__GET_WORKFLOW_REQUEST__INIT;
    req.id                            = (char *) id;
    return client_call_take(
        c, "GetWorkflow", &req.base, 0, take_workflow, out, err);
}

static const char *
workflow_state(const void *out)
{
    const struct anvil_workflow *const *wf = out;
    return anvil_workflow_state_name(*wf != NULL ? (*wf)->state : 0);
}

int
anvil_workflow_wait(anvil_client *c, const char *id, int timeout_ms,
    struct anvil_workflow **out, struct anvil_error *err)
{
    static const struct client_waiter w = { "anvil_workflow_wait", "workflow",
        "workflow id", "WaitWorkflow", take_workflow, workflow_state };
    if (out == NULL)
        return check_id_call(c, id, out, w.fn, err);
    *out                               = NULL;
    Anvil__V1__WaitWorkflowRequest req = ANVIL__V1__WAIT_WORKFLOW_REQUEST__INIT;
    return client_wait(c, &w, id, &req.base, timeout_ms, out, err);
}

// Runs method, an {id} -> {workflow} rpc, with req (its id set here) for
// the public call fn; out may be NULL (the caller does not want it).
static int
workflow_act(anvil_client *c, const char *fn, const char *method,
    const char *id, ProtobufCMessage *req, struct anvil_workflow **out,
    struct anvil_error *err)
{
    struct anvil_workflow *ignored;
    if (out != NULL)
        *out = NULL;
    int rc = check_id_call(c, id, &ignored, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    *(char **) client_field(req, "id") = (char *) id;
    return client_call_take(c, method, req, 0, take_workflow, out, err);
}

int
anvil_workflow_cancel(anvil_client *c, const char *id,
    struct anvil_workflow **out, struct anvil_error *err)
{
    Anvil__V1__CancelWorkflowRequest req
        = ANVIL__V1__CANCEL_WORKFLOW_REQUEST__INIT;
    return workflow_act(
        c, "anvil_workflow_cancel", "CancelWorkflow", id, &req.base, out, err);
}

int
anvil_workflow_retry(anvil_client *c, const char *id,
    struct anvil_workflow **out, struct anvil_error *err)
{
    Anvil__V1__RetryWorkflowRequest req
        = ANVIL__V1__RETRY_WORKFLOW_REQUEST__INIT;
    return workflow_act(
        c, "anvil_workflow_retry", "RetryWorkflow", id, &req.base, out, err);
}

// Puts a new list of the reply's workflows at out (a struct
// anvil_workflow_list **).
static int
take_workflows(const ProtobufCMessage *rep, const char *method, void *out,
    struct anvil_error *err)
{
    const Anvil__V1__ListWorkflowsResponse *r = (const void *) rep;
    struct anvil_workflow_list             *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return convert_oom(err, method);
    l->next_cursor = convert_str(r->next_cursor);
    if (r->n_workflows > 0)
        l->workflows = calloc(r->n_workflows, sizeof(*l->workflows));
    if (l->next_cursor == NULL || (r->n_workflows > 0 && !l->workflows))
        goto fail;
    for (; l->n < r->n_workflows; l->n++) {
        const Anvil__V1__Workflow *pb = r->workflows[l->n];
        if (pb == NULL || convert_workflow(&l->workflows[l->n], pb) != 0)
            goto fail;
    }
    *(struct anvil_workflow_list **) out = l;
    return ANVIL_OK;
fail:
    anvil_workflow_list_free(l);
    return convert_oom(err, method);
}

int
anvil_workflow_list(anvil_client *c, const struct anvil_workflow_filter *filter,
    struct anvil_workflow_list **out, struct anvil_error *err)
{
    int rc = client_check_out(c, out, "anvil_workflow_list", err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__ListWorkflowsRequest req
        = ANVIL__V1__LIST_WORKFLOWS_REQUEST__INIT;
    if (filter != NULL) {
        req.state  = (Anvil__V1__WorkflowState) filter->state;
        req.name   = (char *) (filter->name ? filter->name : "");
        req.limit  = filter->limit;
        req.cursor = (char *) (filter->cursor ? filter->cursor : "");
    }
    return client_call_take(
        c, "ListWorkflows", &req.base, 0, take_workflows, out, err);
}

void
anvil_workflow_list_free(struct anvil_workflow_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n; i++)
        convert_workflow_fini(&list->workflows[i]);
    free(list->workflows);
    free(list->next_cursor);
    free(list);
}
