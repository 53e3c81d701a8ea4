// handlers_bulk.c - decode/encode of RetryJobs and CancelJobs. The two
// requests share ListJobs' filter (fields 1-7) and the two responses have
// the same fields, so one pair serves both rpcs (the command kind tells
// them apart).
#include "handlers_impl.h"

#include "util/error.h"

#define DEFAULT_BULK_LIMIT 100

// INVALID_ARGUMENT unless state is one a retry (or a cancel) can act on.
static int
check_state(bool retry, int state, struct anvil_error *err)
{
    const char *want = retry ? "FAILED or CANCELED"
                             : "PENDING, SCHEDULED, QUEUED or RUNNING";
    if (state == ANVIL_JOB_UNSPECIFIED)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "state is required: the state of the jobs to %s (%s)",
            retry ? "retry" : "cancel", want);
    bool ok = retry ? state == ANVIL_JOB_FAILED || state == ANVIL_JOB_CANCELED
                    : !anvil_job_state_final(state);
    if (!ok)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "state %s: only %s jobs can be %s", anvil_job_state_name(state),
            want, retry ? "retried" : "canceled");
    return ANVIL_OK;
}

int
hbulk_decode(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    bool                  retry = call->cmd.kind == CMD_RETRY_MANY;
    struct handler_filter in;
    if (retry) {
        const Anvil__V1__RetryJobsRequest *r = (const void *) call->req;
        in = (struct handler_filter) { (int) r->state, r->type, r->queue,
            r->limit, r->cursor, r->since_ms, r->until_ms };
        if (r->max_attempts > MAX_ATTEMPTS_LIMIT)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "max_attempts %u is over the limit of %u", r->max_attempts,
                MAX_ATTEMPTS_LIMIT);
        call->cmd.u.bulk.max_attempts = r->max_attempts;
    } else {
        const Anvil__V1__CancelJobsRequest *r = (const void *) call->req;
        in = (struct handler_filter) { (int) r->state, r->type, r->queue,
            r->limit, r->cursor, r->since_ms, r->until_ms };
    }
    int rc = handlers_decode_filter(
        &in, DEFAULT_BULK_LIMIT, &call->cmd.u.bulk.f, err);
    if (rc == ANVIL_OK)
        rc = check_state(retry, in.state, err);
    return rc;
}

// Both responses: count, ids, next_cursor and the cursor's text.
struct bulk_reply {
    union {
        Anvil__V1__RetryJobsResponse  retry;
        Anvil__V1__CancelJobsResponse cancel;
    } m;
    char cursor[24];
};

int
hbulk_encode(struct call *call, ProtobufCMessage **out, void **scratch)
{
    const struct cmd_bulk *k   = &call->cmd.u.bulk;
    struct bulk_reply     *r   = handlers_alloc(scratch, 1, sizeof(*r));
    char                 **ids = handlers_job_ids(scratch, k->ids, k->n);
    if (r == NULL || ids == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    if (k->next_before > 0)
        job_id_format(k->next_before, r->cursor, sizeof(r->cursor));
    if (call->cmd.kind == CMD_RETRY_MANY) {
        anvil__v1__retry_jobs_response__init(&r->m.retry);
        r->m.retry.count       = (uint32_t) k->n;
        r->m.retry.n_ids       = k->n;
        r->m.retry.ids         = ids;
        r->m.retry.next_cursor = r->cursor;
        *out                   = &r->m.retry.base;
    } else {
        anvil__v1__cancel_jobs_response__init(&r->m.cancel);
        r->m.cancel.count       = (uint32_t) k->n;
        r->m.cancel.n_ids       = k->n;
        r->m.cancel.ids         = ids;
        r->m.cancel.next_cursor = r->cursor;
        *out                    = &r->m.cancel.base;
    }
    return ANVIL_OK;
}
