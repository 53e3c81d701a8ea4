// handlers_batch.c - the batch rpcs: SubmitJobs (many SubmitJob) and Report
// (many Complete/Fail). Each item is decoded and checked as its own rpc
// would be; an item refused here keeps its error and the engine skips it,
// so one bad item never stops the others. The engine applies the rest in
// a savepoint each (access ITEMS) and every item is answered on its own.
#include "handlers_impl.h"

#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 1000u

static int
batch_alloc(
    struct call *call, size_t n, const char *what, struct anvil_error *err)
{
    if (n == 0 || n > MAX_BATCH)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%zu %s in one request; send 1 to %u", n, what, MAX_BATCH);
    struct cmd *items = calloc(n, sizeof(*items));
    if (items == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    call->scratch           = items;
    call->cmd.u.batch.items = items;
    call->cmd.u.batch.n     = n;
    return ANVIL_OK;
}

int
hbatch_decode_submit(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    Anvil__V1__SubmitJobsRequest *r
        = (Anvil__V1__SubmitJobsRequest *) call->req;
    int rc = batch_alloc(call, r->n_jobs, "jobs", err);
    for (size_t i = 0; rc == ANVIL_OK && i < r->n_jobs; i++) {
        struct cmd *it = &call->cmd.u.batch.items[i];
        handlers_decode_submit_item(lim, r->jobs[i], it, &it->err);
    }
    return rc;
}

int
hbatch_decode_report(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    Anvil__V1__ReportRequest *r = (Anvil__V1__ReportRequest *) call->req;
    int rc = batch_alloc(call, r->n_outcomes, "outcomes", err);
    for (size_t i = 0; rc == ANVIL_OK && i < r->n_outcomes; i++) {
        const Anvil__V1__Outcome *o  = r->outcomes[i];
        struct cmd               *it = &call->cmd.u.batch.items[i];
        if (o->failed)
            handlers_decode_fail_item(
                o->job_id, o->token, o->error, o->no_retry, it, &it->err);
        else
            handlers_decode_complete_item(
                lim, o->job_id, o->token, &o->result, it, &it->err);
    }
    return rc;
}

// The reply of a batch, with every item's message and id text in one
// allocation.
struct batch_reply {
    union {
        Anvil__V1__SubmitJobsResponse submit;
        Anvil__V1__ReportResponse     report;
    } m;
    void **ptrs;
    void  *items;
    char (*msgs)[sizeof(((struct anvil_error *) 0)->msg) + 32];
    size_t n;
    char (*ids)[24];
};

void
hbatch_free(void *p)
{
    struct batch_reply *r = p;
    if (r == NULL)
        return;
    free(r->ptrs);
    free(r->items);
    free(r->msgs);
    free(r->ids);
    free(r);
}

// Allocates the reply arrays of n items: pointers, the results of
// SubmitJobs (with an id text each) or of Report, and later a message each.
static struct batch_reply *
reply_alloc(size_t n, bool submit)
{
    struct batch_reply *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->n     = n;
    r->ptrs  = calloc(n, sizeof(*r->ptrs));
    r->items = calloc(n,
        submit ? sizeof(Anvil__V1__SubmitJobsResult)
               : sizeof(Anvil__V1__OutcomeResult));
    if (submit)
        r->ids = calloc(n, sizeof(*r->ids));
    if (r->ptrs == NULL || r->items == NULL || (submit && r->ids == NULL)) {
        hbatch_free(r);
        return NULL;
    }
    return r;
}

// "<what>[i]: <message>" for a refused item, "" otherwise. The message
// buffers are allocated with the first refused item.
static char *
item_message(struct batch_reply *r, size_t i, const char *what,
    const struct anvil_error *e)
{
    static char none[] = "";
    if (e->code == ANVIL_OK)
        return none;
    if (r->msgs == NULL && (r->msgs = calloc(r->n, sizeof(*r->msgs))) == NULL)
        return none;
    snprintf(r->msgs[i], sizeof(r->msgs[i]), "%s[%zu]: %s", what, i, e->msg);
    return r->msgs[i];
}

// Item i of a SubmitJobs reply: its code and message, and the id of the
// job it stored (or found) and whether that existed.
static void
submit_result(struct batch_reply *r, size_t i, const struct cmd *it)
{
    Anvil__V1__SubmitJobsResult *res
        = &((Anvil__V1__SubmitJobsResult *) r->items)[i];
    anvil__v1__submit_jobs_result__init(res);
    res->code    = (Anvil__V1__Code) it->err.code;
    res->message = item_message(r, i, "jobs", &it->err);
    res->id      = r->ids[i];
    if (it->err.code == ANVIL_OK) {
        job_id_format(it->u.submit.id, r->ids[i], sizeof(r->ids[i]));
        res->existed = it->u.submit.existed;
    }
    r->ptrs[i] = res;
}

// Item i of a Report reply: its code and message, and for a Fail the
// job's new state and retry time.
static void
outcome_result(struct batch_reply *r, size_t i, const struct cmd *it)
{
    Anvil__V1__OutcomeResult *res = &((Anvil__V1__OutcomeResult *) r->items)[i];
    anvil__v1__outcome_result__init(res);
    res->code    = (Anvil__V1__Code) it->err.code;
    res->message = item_message(r, i, "outcomes", &it->err);
    if (it->err.code == ANVIL_OK && it->kind == CMD_FAIL) {
        res->state       = (Anvil__V1__JobState) it->u.fail.state;
        res->retry_at_ms = it->u.fail.retry_at;
    }
    r->ptrs[i] = res;
}

int
hbatch_encode(struct call *call, ProtobufCMessage **out, void **scratch)
{
    const struct cmd_batch *bt     = &call->cmd.u.batch;
    bool                    submit = call->cmd.kind == CMD_SUBMIT_BATCH;
    struct batch_reply     *r      = reply_alloc(bt->n, submit);
    if (r == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    *scratch = r;
    for (size_t i = 0; i < bt->n; i++) {
        if (submit)
            submit_result(r, i, &bt->items[i]);
        else
            outcome_result(r, i, &bt->items[i]);
    }
    if (submit) {
        anvil__v1__submit_jobs_response__init(&r->m.submit);
        r->m.submit.n_results = bt->n;
        r->m.submit.results   = (Anvil__V1__SubmitJobsResult **) r->ptrs;
        *out                  = &r->m.submit.base;
    } else {
        anvil__v1__report_response__init(&r->m.report);
        r->m.report.n_results = bt->n;
        r->m.report.results   = (Anvil__V1__OutcomeResult **) r->ptrs;
        *out                  = &r->m.report.base;
    }
    return ANVIL_OK;
}
