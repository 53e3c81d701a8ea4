// convert.c - deep copies of protobuf-c replies into anvil.h structs.
#include "convert.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>

int
convert_oom(struct anvil_error *err, const char *method)
{
    return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED,
        "out of memory copying the reply to %s", method);
}

char *
convert_str(const char *s)
{
    return strdup(s != NULL ? s : "");
}

uint8_t *
convert_bytes(ProtobufCBinaryData b, size_t *len)
{
    uint8_t *p = malloc(b.len + 1);
    if (p == NULL)
        return NULL;
    if (b.len > 0)
        memcpy(p, b.data, b.len);
    p[b.len] = '\0';
    *len     = b.len;
    return p;
}

void
convert_strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int
convert_strv(char **v, size_t n, char ***out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    char **c = calloc(n, sizeof(*c));
    if (c == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        c[i] = convert_str(v[i]);
        if (c[i] == NULL) {
            convert_strv_free(c, i);
            return -1;
        }
    }
    *out = c;
    return 0;
}

void
convert_job_fini(struct anvil_job *j)
{
    free(j->id);
    free(j->type);
    free(j->queue);
    free(j->payload);
    free(j->result);
    free(j->error);
    free(j->workflow_id);
    free(j->step);
    free(j->idempotency_key);
    free(j->worker_id);
    free(j->progress_message);
    free(j->concurrency_key);
    convert_strv_free(j->after, j->n_after);
    memset(j, 0, sizeof(*j));
}

int
convert_job(struct anvil_job *j, const Anvil__V1__Job *pb)
{
    memset(j, 0, sizeof(*j));
    j->id                       = convert_str(pb->id);
    j->type                     = convert_str(pb->type);
    j->queue                    = convert_str(pb->queue);
    j->payload                  = convert_bytes(pb->payload, &j->payload_len);
    j->priority                 = pb->priority;
    j->state                    = (enum anvil_job_state) pb->state;
    j->attempt                  = pb->attempt;
    j->retry.max_attempts       = pb->max_attempts;
    j->result                   = convert_bytes(pb->result, &j->result_len);
    j->error                    = convert_str(pb->error);
    j->created_at_ms            = pb->created_at_ms;
    j->started_at_ms            = pb->started_at_ms;
    j->finished_at_ms           = pb->finished_at_ms;
    j->run_at_ms                = pb->run_at_ms;
    j->timeout_ms               = pb->timeout_ms;
    j->workflow_id              = convert_str(pb->workflow_id);
    j->step                     = convert_str(pb->step);
    j->idempotency_key          = convert_str(pb->idempotency_key);
    j->worker_id                = convert_str(pb->worker_id);
    j->lease_ms                 = pb->lease_ms;
    j->retry.initial_backoff_ms = pb->initial_backoff_ms;
    j->retry.max_backoff_ms     = pb->max_backoff_ms;
    j->retry.backoff_multiplier = pb->backoff_multiplier;
    j->has_progress             = pb->progress != NULL;
    j->progress_percent = pb->progress != NULL ? pb->progress->percent : 0;
    j->progress_message
        = convert_str(pb->progress != NULL ? pb->progress->message : "");
    j->concurrency_key   = convert_str(pb->concurrency_key);
    j->concurrency_limit = pb->concurrency_limit;
    int after_rc         = convert_strv(pb->after, pb->n_after, &j->after);
    if (after_rc == 0)
        j->n_after = pb->n_after;
    if (j->id && j->type && j->queue && j->payload && j->result && j->error
        && j->workflow_id && j->step && j->idempotency_key && j->worker_id
        && j->progress_message && j->concurrency_key && after_rc == 0)
        return 0;
    convert_job_fini(j);
    return -1;
}

int
convert_job_new(const Anvil__V1__Job *pb, const char *method,
    struct anvil_job **out, struct anvil_error *err)
{
    if (pb == NULL)
        return av_error_set(
            err, ANVIL_INTERNAL, "the reply to %s has no job", method);
    struct anvil_job *j = malloc(sizeof(*j));
    if (j == NULL || convert_job(j, pb) != 0) {
        free(j);
        return convert_oom(err, method);
    }
    *out = j;
    return ANVIL_OK;
}

void
convert_workflow_fini(struct anvil_workflow *w)
{
    free(w->id);
    free(w->name);
    free(w->error);
    for (size_t i = 0; i < w->n_steps; i++)
        convert_job_fini(&w->steps[i]);
    free(w->steps);
    memset(w, 0, sizeof(*w));
}

int
convert_workflow(struct anvil_workflow *w, const Anvil__V1__Workflow *pb)
{
    memset(w, 0, sizeof(*w));
    w->id              = convert_str(pb->id);
    w->name            = convert_str(pb->name);
    w->error           = convert_str(pb->error);
    w->state           = (enum anvil_workflow_state) pb->state;
    w->on_failure      = (enum anvil_failure_policy) pb->on_failure;
    w->created_at_ms   = pb->created_at_ms;
    w->finished_at_ms  = pb->finished_at_ms;
    w->timeout_ms      = pb->timeout_ms;
    w->steps_total     = pb->steps_total;
    w->steps_succeeded = pb->steps_succeeded;
    w->steps_failed    = pb->steps_failed;
    w->steps_settled   = pb->steps_settled;
    if (w->id == NULL || w->name == NULL || w->error == NULL)
        goto fail;
    if (pb->n_steps == 0)
        return 0;
    w->steps = calloc(pb->n_steps, sizeof(*w->steps));
    if (w->steps == NULL)
        goto fail;
    for (; w->n_steps < pb->n_steps; w->n_steps++) {
        const Anvil__V1__Job *s = pb->steps[w->n_steps];
        if (s == NULL || convert_job(&w->steps[w->n_steps], s) != 0)
            goto fail;
    }
    return 0;
fail:
    convert_workflow_fini(w);
    return -1;
}

int
convert_event(struct anvil_event *e, const Anvil__V1__Event *pb)
{
    memset(e, 0, sizeof(*e));
    e->seq         = pb->seq;
    e->kind        = (enum anvil_event_kind) pb->kind;
    e->at_ms       = pb->at_ms;
    e->attempt     = pb->attempt;
    e->job_id      = convert_str(pb->job_id);
    e->workflow_id = convert_str(pb->workflow_id);
    e->step        = convert_str(pb->step);
    e->type        = convert_str(pb->type);
    e->queue       = convert_str(pb->queue);
    e->worker      = convert_str(pb->worker);
    e->message     = convert_str(pb->message);
    if (pb->progress != NULL)
        e->progress_percent = pb->progress->percent;
    if (e->job_id == NULL || e->workflow_id == NULL || e->step == NULL
        || e->type == NULL || e->queue == NULL || e->worker == NULL
        || e->message == NULL) {
        convert_event_fini(e);
        return -1;
    }
    return 0;
}

void
convert_event_fini(struct anvil_event *e)
{
    free(e->job_id);
    free(e->workflow_id);
    free(e->step);
    free(e->type);
    free(e->queue);
    free(e->worker);
    free(e->message);
    memset(e, 0, sizeof(*e));
}

int
convert_event_list(
    const Anvil__V1__WatchEventsResponse *rep, struct anvil_event_list **out)
{
    struct anvil_event_list *l = calloc(1, sizeof(*l));
    *out                       = NULL;
    if (l == NULL)
        return -1;
    l->next_seq  = rep->next_seq;
    l->missed    = rep->missed;
    l->first_seq = rep->first_seq;
    l->last_seq  = rep->last_seq;
    if (rep->n_events > 0) {
        l->events = calloc(rep->n_events, sizeof(*l->events));
        if (l->events == NULL)
            goto fail;
    }
    for (; l->n < rep->n_events; l->n++) {
        if (rep->events[l->n] == NULL)
            goto fail;
        if (convert_event(&l->events[l->n], rep->events[l->n]) != 0)
            goto fail;
    }
    *out = l;
    return 0;
fail:
    anvil_event_list_free(l);
    return -1;
}
