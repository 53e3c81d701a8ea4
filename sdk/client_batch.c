// client_batch.c - the batch calls of anvil.h: anvil_job_submit_many()
// (SubmitJobs) and anvil_job_report() (Report). One request carries many
// items; the server applies each on its own and answers each.
#include "client_impl.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Requests are cut at this many bytes of items (or one item, if larger):
// anvild drops a request over its payload limit plus 64 KiB unanswered,
// so a batch cut this way always fits a server that takes its largest job.
#define CHUNK_BYTES (60 * 1024)

// Sets err to the first refused item's message, renumbered from its
// request's "<what>[k]: ..." to the call's index i.
static void
item_failure(struct anvil_error *err, int code, const char *msg,
    const char *what, size_t i)
{
    const char *rest = msg != NULL ? msg : "";
    size_t      w    = strlen(what);
    if (strncmp(rest, what, w) == 0 && rest[w] == '[') {
        const char *p = strstr(rest, "]: ");
        if (p != NULL)
            rest = p + 3;
    }
    av_error_set(err, code, "%s[%zu]: %s", what, i, rest);
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

// The end of the request that starts at item `from`: items up to
// CHUNK_BYTES, at least one.
static size_t
chunk_end(ProtobufCMessage *const *items, size_t from, size_t n)
{
    size_t bytes = 0, i = from;
    for (; i < n; i++) {
        size_t sz = protobuf_c_message_get_packed_size(items[i]) + 8;
        if (i > from && bytes + sz > CHUNK_BYTES)
            break;
        bytes += sz;
    }
    return i;
}

static int
check_specs(const struct anvil_job_spec *specs, size_t n,
    const struct anvil_submit_result *results, const char *fn,
    struct anvil_error *err)
{
    if (specs == NULL || results == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: specs and results must not be NULL", fn);
    int rc = check_count(n, ANVIL_SUBMIT_MANY_MAX, "jobs", fn, err);
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
    return rc;
}

// Sends items [from, to) as one SubmitJobs and fills their results;
// *failed counts refused jobs (err names the first of the call).
static int
submit_chunk(anvil_client *c, Anvil__V1__SubmitJobRequest **ptrs, size_t from,
    size_t to, struct anvil_submit_result *results, size_t *failed,
    struct anvil_error *err)
{
    static const char            fn[] = "anvil_job_submit_many";
    Anvil__V1__SubmitJobsRequest req  = ANVIL__V1__SUBMIT_JOBS_REQUEST__INIT;
    req.n_jobs                        = to - from;
    req.jobs                          = ptrs + from;
    Anvil__V1__SubmitJobsResponse *rep;
    int rc = client_call_ids(c, "SubmitJobs", &req.base, (uint32_t) (to - from),
        (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    if (rep->n_results != to - from) {
        rc = av_error_set(err, ANVIL_INTERNAL,
            "%s: the server answered %zu of %zu jobs", fn, rep->n_results,
            to - from);
        client_free_reply(&rep->base);
        return rc;
    }
    for (size_t i = from; i < to; i++) {
        const Anvil__V1__SubmitJobsResult *r   = rep->results[i - from];
        struct anvil_submit_result        *out = &results[i];
        out->code                              = (int) r->code;
        out->existed                           = r->existed;
        out->id[0]                             = '\0';
        if (r->code == ANVIL__V1__CODE__OK && strlen(r->id) >= sizeof(out->id))
            out->code = ANVIL_INTERNAL;
        if (out->code != ANVIL_OK) {
            if ((*failed)++ == 0)
                item_failure(err, out->code,
                    r->code != ANVIL__V1__CODE__OK
                        ? r->message
                        : "the server sent an over-long job id",
                    "jobs", i);
            continue;
        }
        strcpy(out->id, r->id);
    }
    client_free_reply(&rep->base);
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
    if (rc == ANVIL_OK)
        rc = check_specs(specs, n, results, fn, err);
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
    size_t failed = 0;
    for (size_t from = 0; from < n;) {
        size_t to = chunk_end((ProtobufCMessage *const *) ptrs, from, n);
        rc        = submit_chunk(c, ptrs, from, to, results, &failed, err);
        if (rc != ANVIL_OK) {
            // No answer for these and the rest: say so in each result.
            for (size_t i = from; i < n; i++) {
                results[i].code  = rc;
                results[i].id[0] = '\0';
            }
            break;
        }
        from = to;
    }
    free(ptrs);
    free(items);
    if (n_failed != NULL)
        *n_failed = failed;
    return rc;
}

// Sends outcomes [from, to) as one Report and fills their results.
static int
report_chunk(anvil_client *c, Anvil__V1__Outcome **ptrs, size_t from, size_t to,
    struct anvil_outcome_result *results, bool *first, struct anvil_error *err)
{
    Anvil__V1__ReportRequest req = ANVIL__V1__REPORT_REQUEST__INIT;
    req.n_outcomes               = to - from;
    req.outcomes                 = ptrs + from;
    Anvil__V1__ReportResponse *rep;
    int                        rc = client_call(
                               c, "Report", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    if (rep->n_results != to - from) {
        rc = av_error_set(err, ANVIL_INTERNAL,
            "anvil_job_report: the server answered %zu of %zu outcomes",
            rep->n_results, to - from);
        client_free_reply(&rep->base);
        return rc;
    }
    for (size_t i = from; i < to; i++) {
        const Anvil__V1__OutcomeResult *r = rep->results[i - from];
        results[i].code                   = (int) r->code;
        results[i].state                  = (enum anvil_job_state) r->state;
        results[i].retry_at_ms            = r->retry_at_ms;
        if (r->code != ANVIL__V1__CODE__OK && *first) {
            item_failure(err, (int) r->code, r->message, "outcomes", i);
            *first = false;
        }
    }
    client_free_reply(&rep->base);
    return ANVIL_OK;
}

int
anvil_job_report(anvil_client *c, const struct anvil_outcome *outcomes,
    size_t n, struct anvil_outcome_result *results, struct anvil_error *err)
{
    static const char fn[] = "anvil_job_report";
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
    bool first = true;
    for (size_t from = 0; from < n && rc == ANVIL_OK;) {
        size_t to = chunk_end((ProtobufCMessage *const *) ptrs, from, n);
        rc        = report_chunk(c, ptrs, from, to, results, &first, err);
        if (rc != ANVIL_OK)
            for (size_t i = from; i < n; i++)
                results[i] = (struct anvil_outcome_result) { .code = rc };
        from = to;
    }
    free(ptrs);
    free(items);
    return rc;
}
