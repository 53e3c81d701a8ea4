// client_batch.c - the batch calls of anvil.h: anvil_job_submit_many()
// (SubmitJobs) and anvil_report() (Report). One request carries many
// items; the server applies each on its own and answers each.
#include "client_impl.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The message of the first refused item, "<what>[i]: ..." as the server
// wrote it.
static void
first_failure(struct anvil_error *err, int code, const char *msg)
{
    av_error_set(err, code, "%s", msg != NULL ? msg : "");
}

static int
check_count(size_t n, size_t max, const char *what, const char *fn,
    struct anvil_error *err)
{
    if (n == 0 || n > max)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: %zu %s; send 1 to %zu in one call", fn, n, what, max);
    return ANVIL_OK;
}

int
anvil_job_submit_many(anvil_client *c, const struct anvil_job_spec *specs,
    size_t n, struct anvil_submit_result *results, size_t *n_failed,
    struct anvil_error *err)
{
    static const char fn[] = "anvil_job_submit_many";
    if (n_failed != NULL)
        *n_failed = 0;
    int rc = client_check(c, fn, err);
    if (rc == ANVIL_OK && (specs == NULL || results == NULL))
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: specs and results must not be NULL", fn);
    if (rc == ANVIL_OK)
        rc = check_count(n, ANVIL_SUBMIT_MANY_MAX, "jobs", fn, err);
    for (size_t i = 0; rc == ANVIL_OK && i < n; i++) {
        char what[48];
        snprintf(what, sizeof(what), "specs[%zu].payload", i);
        if (specs[i].type == NULL)
            rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s: specs[%zu].type is NULL", fn, i);
        else
            rc = client_check_bytes(
                specs[i].payload, specs[i].len, what, fn, err);
    }
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__SubmitJobRequest  *items = calloc(n, sizeof(*items));
    Anvil__V1__SubmitJobRequest **ptrs  = calloc(n, sizeof(*ptrs));
    if (items == NULL || ptrs == NULL) {
        free(items);
        free(ptrs);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED,
            "%s: out of memory for %zu jobs", fn, n);
    }
    for (size_t i = 0; i < n; i++) {
        anvil__v1__submit_job_request__init(&items[i]);
        items[i].type         = (char *) specs[i].type;
        items[i].payload.data = (uint8_t *) specs[i].payload;
        items[i].payload.len  = specs[i].len;
        client_submit_opts_to_pb(specs[i].opts, &items[i]);
        ptrs[i] = &items[i];
    }
    Anvil__V1__SubmitJobsRequest req = ANVIL__V1__SUBMIT_JOBS_REQUEST__INIT;
    req.n_jobs                       = n;
    req.jobs                         = ptrs;
    Anvil__V1__SubmitJobsResponse *rep;
    rc = client_call_ids(c, "SubmitJobs", &req.base, (uint32_t) n,
        (ProtobufCMessage **) &rep, err);
    free(ptrs);
    free(items);
    if (rc != ANVIL_OK)
        return rc;
    if (rep->n_results != n) {
        rc = av_error_set(err, ANVIL_INTERNAL,
            "%s: the server answered %zu of %zu jobs", fn, rep->n_results, n);
        client_free_reply(&rep->base);
        return rc;
    }
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        const Anvil__V1__SubmitJobsResult *r = rep->results[i];
        results[i].code                      = (int) r->code;
        results[i].existed                   = r->existed;
        results[i].id[0]                     = '\0';
        if (r->code != ANVIL__V1__CODE__OK) {
            if (failed++ == 0)
                first_failure(err, (int) r->code, r->message);
            continue;
        }
        if (strlen(r->id) >= sizeof(results[i].id)) {
            results[i].code = ANVIL_INTERNAL;
            if (failed++ == 0)
                av_error_set(err, ANVIL_INTERNAL,
                    "%s: jobs[%zu]: the server sent an id of %zu bytes", fn, i,
                    strlen(r->id));
            continue;
        }
        strcpy(results[i].id, r->id);
    }
    client_free_reply(&rep->base);
    if (n_failed != NULL)
        *n_failed = failed;
    return ANVIL_OK;
}

int
anvil_report(anvil_client *c, const struct anvil_outcome *outcomes, size_t n,
    struct anvil_outcome_result *results, struct anvil_error *err)
{
    static const char fn[] = "anvil_report";
    int               rc   = client_check(c, fn, err);
    if (rc == ANVIL_OK && (outcomes == NULL || results == NULL))
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: outcomes and results must not be NULL", fn);
    if (rc == ANVIL_OK)
        rc = check_count(n, ANVIL_REPORT_MAX, "outcomes", fn, err);
    for (size_t i = 0; rc == ANVIL_OK && i < n; i++) {
        char what[48];
        snprintf(what, sizeof(what), "outcomes[%zu].job_id", i);
        rc = client_check_id(outcomes[i].job_id, what, fn, err);
        snprintf(what, sizeof(what), "outcomes[%zu].result", i);
        if (rc == ANVIL_OK && !outcomes[i].failed)
            rc = client_check_bytes(
                outcomes[i].result, outcomes[i].len, what, fn, err);
    }
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__Outcome  *items = calloc(n, sizeof(*items));
    Anvil__V1__Outcome **ptrs  = calloc(n, sizeof(*ptrs));
    if (items == NULL || ptrs == NULL) {
        free(items);
        free(ptrs);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED,
            "%s: out of memory for %zu outcomes", fn, n);
    }
    for (size_t i = 0; i < n; i++) {
        const struct anvil_outcome *o = &outcomes[i];
        anvil__v1__outcome__init(&items[i]);
        items[i].job_id = (char *) o->job_id;
        items[i].token  = o->token;
        items[i].failed = o->failed;
        if (o->failed) {
            items[i].error    = (char *) (o->error != NULL ? o->error : "");
            items[i].no_retry = !o->retryable;
        } else {
            items[i].result.data = (uint8_t *) o->result;
            items[i].result.len  = o->len;
        }
        ptrs[i] = &items[i];
    }
    Anvil__V1__ReportRequest req = ANVIL__V1__REPORT_REQUEST__INIT;
    req.n_outcomes               = n;
    req.outcomes                 = ptrs;
    Anvil__V1__ReportResponse *rep;
    rc = client_call(
        c, "Report", &req.base, 0, (ProtobufCMessage **) &rep, err);
    free(ptrs);
    free(items);
    if (rc != ANVIL_OK)
        return rc;
    if (rep->n_results != n) {
        rc = av_error_set(err, ANVIL_INTERNAL,
            "%s: the server answered %zu of %zu outcomes", fn, rep->n_results,
            n);
        client_free_reply(&rep->base);
        return rc;
    }
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        const Anvil__V1__OutcomeResult *r = rep->results[i];
        results[i].code                   = (int) r->code;
        results[i].state                  = (int) r->state;
        results[i].retry_at_ms            = r->retry_at_ms;
        if (r->code != ANVIL__V1__CODE__OK && first) {
            first_failure(err, (int) r->code, r->message);
            first = false;
        }
    }
    client_free_reply(&rep->base);
    return ANVIL_OK;
}
