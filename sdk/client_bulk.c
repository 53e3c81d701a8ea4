// client_bulk.c - many jobs at once: anvil_job_retry_many (RetryJobs,
// dead-letter replay) and anvil_job_cancel_many (CancelJobs). Both take
// ListJobs' filter and answer the same shape.
#include "anvil/v1/anvil.pb-c.h"
#include "client_impl.h"
#include "convert.h"
#include "util/error.h"

#include <stdlib.h>

void
anvil_job_id_list_free(struct anvil_job_id_list *list)
{
    if (list == NULL)
        return;
    convert_strv_free(list->ids, list->n);
    free(list->next_cursor);
    free(list);
}

// Puts a new list of the reply's ids at out (a struct anvil_job_id_list
// **).
static int
take_ids(const ProtobufCMessage *rep, const char *method, void *out,
    struct anvil_error *err)
{
    size_t      n;
    char      **ids;
    const char *cursor;
    if (rep->descriptor == &anvil__v1__retry_jobs_response__descriptor) {
        const Anvil__V1__RetryJobsResponse *r = (const void *) rep;
        n                                     = r->n_ids;
        ids                                   = r->ids;
        cursor                                = r->next_cursor;
    } else {
        const Anvil__V1__CancelJobsResponse *r = (const void *) rep;
        n                                      = r->n_ids;
        ids                                    = r->ids;
        cursor                                 = r->next_cursor;
    }
    struct anvil_job_id_list *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return convert_oom(err, method);
    l->next_cursor = convert_str(cursor);
    if (l->next_cursor == NULL || convert_strv(ids, n, &l->ids) != 0) {
        anvil_job_id_list_free(l);
        return convert_oom(err, method);
    }
    l->n                               = n;
    *(struct anvil_job_id_list **) out = l;
    return ANVIL_OK;
}

static int
check(anvil_client *c, const struct anvil_job_filter *filter,
    struct anvil_job_id_list **out, const char *fn, struct anvil_error *err)
{
    int rc = client_check_out(c, out, fn, err);
    if (rc == ANVIL_OK && filter == NULL)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: filter is NULL (it needs at least a state)", fn);
    return rc;
}

#define FILTER_TO_PB(req, filter)                                             \
    do {                                                                      \
        (req).state    = (Anvil__V1__JobState) (filter)->state;               \
        (req).type     = (char *) ((filter)->type ? (filter)->type : "");     \
        (req).queue    = (char *) ((filter)->queue ? (filter)->queue : "");   \
        (req).limit    = (filter)->limit;                                     \
        (req).cursor   = (char *) ((filter)->cursor ? (filter)->cursor : ""); \
        (req).since_ms = (filter)->since_ms;                                  \
        (req).until_ms = (filter)->until_ms;                                  \
    } while (0)

int
anvil_job_retry_many(anvil_client *c, const struct anvil_job_filter *filter,
    uint32_t max_attempts, struct anvil_job_id_list **out,
    struct anvil_error *err)
{
    int rc = check(c, filter, out, "anvil_job_retry_many", err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__RetryJobsRequest req = ANVIL__V1__RETRY_JOBS_REQUEST__INIT;
    FILTER_TO_PB(req, filter);
    req.max_attempts = max_attempts;
    return client_call_take(c, "RetryJobs", &req.base, 0, take_ids, out, err);
}

int
anvil_job_cancel_many(anvil_client *c, const struct anvil_job_filter *filter,
    struct anvil_job_id_list **out, struct anvil_error *err)
{
    int rc = check(c, filter, out, "anvil_job_cancel_many", err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__CancelJobsRequest req = ANVIL__V1__CANCEL_JOBS_REQUEST__INIT;
    FILTER_TO_PB(req, filter);
    return client_call_take(c, "CancelJobs", &req.base, 0, take_ids, out, err);
}
