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

// Allocates the reply arrays: n pointers, n items of `size` bytes, and a
// message (and, with ids, an id text) per item.
static struct batch_reply *
reply_alloc(size_t n, size_t size, bool ids)
{
    struct batch_reply *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->n     = n;
    r->ptrs  = calloc(n, sizeof(*r->ptrs));
    r->items = calloc(n, size);
    if (ids)
        r->ids = calloc(n, sizeof(*r->ids));
    if (r->ptrs == NULL || r->items == NULL || (ids && r->ids == NULL)) {
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

int
hbatch_encode_submit(struct call *call, ProtobufCMessage **out, void **scratch)
{
    const struct cmd_batch *bt = &call->cmd.u.batch;
    struct batch_reply     *r
        = reply_alloc(bt->n, sizeof(Anvil__V1__SubmitJobsResult), true);
    if (r == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    Anvil__V1__SubmitJobsResult *items = r->items;
    for (size_t i = 0; i < bt->n; i++) {
        const struct cmd *it = &bt->items[i];
        anvil__v1__submit_jobs_result__init(&items[i]);
        items[i].code    = (Anvil__V1__Code) it->err.code;
        items[i].message = item_message(r, i, "jobs", &it->err);
        items[i].id      = r->ids[i];
        if (it->err.code == ANVIL_OK) {
            job_id_format(it->u.submit.id, r->ids[i], sizeof(r->ids[i]));
            items[i].existed = it->u.submit.existed;
        }
        r->ptrs[i] = &items[i];
    }
    anvil__v1__submit_jobs_response__init(&r->m.submit);
    r->m.submit.n_results = bt->n;
    r->m.submit.results   = (Anvil__V1__SubmitJobsResult **) r->ptrs;
    *scratch              = r;
    *out                  = &r->m.submit.base;
    return ANVIL_OK;
}

int
hbatch_encode_report(struct call *call, ProtobufCMessage **out, void **scratch)
{
    const struct cmd_batch *bt = &call->cmd.u.batch;
    struct batch_reply     *r
        = reply_alloc(bt->n, sizeof(Anvil__V1__OutcomeResult), false);
    if (r == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    Anvil__V1__OutcomeResult *items = r->items;
    for (size_t i = 0; i < bt->n; i++) {
        const struct cmd *it = &bt->items[i];
        anvil__v1__outcome_result__init(&items[i]);
        items[i].code    = (Anvil__V1__Code) it->err.code;
        items[i].message = item_message(r, i, "outcomes", &it->err);
        if (it->err.code == ANVIL_OK && it->kind == CMD_FAIL) {
            items[i].state       = (Anvil__V1__JobState) it->u.fail.state;
            items[i].retry_at_ms = it->u.fail.retry_at;
        }
        r->ptrs[i] = &items[i];
    }
    anvil__v1__report_response__init(&r->m.report);
    r->m.report.n_results = bt->n;
    r->m.report.results   = (Anvil__V1__OutcomeResult **) r->ptrs;
    *scratch              = r;
    *out                  = &r->m.report.base;
    return ANVIL_OK;
}
