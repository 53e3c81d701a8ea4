// handlers.c - the handler table (the rpc side of rpc_table.h's rows,
// found through the service descriptor), the checks every rpc shares, the
// reply memory and list builder the encoders share, and the job rpcs'
// decode/validate and encode. The worker rpcs are in
// handlers_worker.c, workflows in handlers_flow.c, tokens in
// handlers_admin.c, events in handlers_events.c, batches in
// handlers_batch.c. Every bad input is named in the error message.
#include "handlers_impl.h"

#include "anvil/v1/anvil.pb-c.h"
#include "dag.h"
#include "util/error.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_POLL_NAMES 64

struct handler {
    const char   *name;
    enum cmd_kind kind;
    decode_fn     decode;
    encode_fn     encode;
    void (*free_reply)(void *scratch); // what encode allocated
    unsigned roles; // roles besides admin that may call it: bit 1 << role
};

bool
handlers_valid_name(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return n >= 1 && n <= MAX_NAME;
}

int
handlers_check_name(const char *field, const char *s, struct anvil_error *err)
{
    if (handlers_valid_name(s))
        return ANVIL_OK;
    return av_error_set(err, ANVIL_INVALID_ARGUMENT,
        "%s '%.64s%s' is not a valid name: use 1 to %d of A-Z a-z 0-9 _ . -",
        field, s, strlen(s) > 64 ? "..." : "", MAX_NAME);
}

int
handlers_check_policy(const struct handler_policy *p, struct anvil_error *err)
{
    if (p->retry.max_attempts > MAX_ATTEMPTS_LIMIT)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "max_attempts %u is over the limit of %u", p->retry.max_attempts,
            MAX_ATTEMPTS_LIMIT);
    if (p->timeout_ms < 0 || p->retry.initial_backoff_ms < 0
        || p->retry.max_backoff_ms < 0 || p->timeout_ms > MAX_DURATION_MS
        || p->retry.initial_backoff_ms > MAX_DURATION_MS
        || p->retry.max_backoff_ms > MAX_DURATION_MS)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "timeout_ms, initial_backoff_ms and max_backoff_ms must be "
            "between 0 and %lld (ten years)",
            (long long) MAX_DURATION_MS);
    if (p->lease_ms != 0
        && (p->lease_ms < MIN_LEASE_MS || p->lease_ms > MAX_LEASE_MS))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "lease_ms %lld is outside %d..%d ms", (long long) p->lease_ms,
            MIN_LEASE_MS, MAX_LEASE_MS);
    if (!(p->retry.backoff_multiplier >= 0
            && p->retry.backoff_multiplier <= 100))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "backoff_multiplier must be between 0 (default) and 100");
    return ANVIL_OK;
}

int
handlers_check_concurrency(
    const char *key, uint32_t limit, struct anvil_error *err)
{
    if (key[0] == '\0' && limit == 0)
        return ANVIL_OK;
    if (key[0] == '\0')
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "concurrency_limit %u needs a concurrency_key", limit);
    if (handlers_check_name("concurrency_key", key, err))
        return err->code;
    if (limit < 1 || limit > JOB_MAX_CONCURRENCY)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "concurrency_limit %u is outside 1..%d (concurrency_key '%s' "
            "needs one)",
            limit, JOB_MAX_CONCURRENCY, key);
    return ANVIL_OK;
}

int
handlers_parse_job_id(const char *s, int64_t *id, struct anvil_error *err)
{
    if (job_id_parse(s, id) == 0)
        return ANVIL_OK;
    if (s[0] == '\0')
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "job id is empty");
    return av_error_set(err, ANVIL_NOT_FOUND,
        "no job with id '%.64s' (job ids look like j42)", s);
}

// ---- decode ----

int
handlers_decode_submit_item(const struct handler_limits *lim,
    const Anvil__V1__SubmitJobRequest *r, struct cmd *c,
    struct anvil_error *err)
{
    struct cmd_submit *s     = &c->u.submit;
    const char        *queue = r->queue[0] != '\0' ? r->queue : "default";
    if (handlers_check_name("type", r->type, err)
        || handlers_check_name("queue", queue, err))
        return err->code;
    if (r->payload.len > lim->max_payload)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "payload is %zu bytes, over the server's limit of %zu bytes "
            "(anvild --max-payload)",
            r->payload.len, lim->max_payload);
    if (strlen(r->idempotency_key) > MAX_KEY)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "idempotency_key is longer than %d bytes", MAX_KEY);
    if (r->delay_ms < 0 || r->run_at_ms < 0 || r->delay_ms > MAX_DURATION_MS
        || r->run_at_ms > MAX_TIME_MS)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "delay_ms must be between 0 and %lld (ten years) and run_at_ms "
            "between 0 and %lld",
            (long long) MAX_DURATION_MS, MAX_TIME_MS);
    struct handler_policy pol = {
        .retry = { r->max_attempts, r->initial_backoff_ms, r->max_backoff_ms,
            r->backoff_multiplier },
        .timeout_ms = r->timeout_ms,
        .lease_ms   = r->lease_ms,
    };
    if (handlers_check_policy(&pol, err) != ANVIL_OK
        || handlers_check_concurrency(
            r->concurrency_key, r->concurrency_limit, err))
        return err->code;
    c->kind       = CMD_SUBMIT;
    s->type       = r->type;
    s->queue      = queue;
    s->key        = r->idempotency_key[0] != '\0' ? r->idempotency_key : NULL;
    s->payload    = r->payload.data;
    s->len        = r->payload.len;
    s->priority   = r->priority;
    s->delay_ms   = r->delay_ms;
    s->run_at_ms  = r->run_at_ms;
    s->timeout_ms = r->timeout_ms;
    s->lease_ms   = r->lease_ms;
    s->retry      = pol.retry;
    s->ckey       = r->concurrency_key[0] != '\0' ? r->concurrency_key : NULL;
    s->climit     = r->concurrency_limit;
    return ANVIL_OK;
}

int
hjobs_decode_submit(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    return handlers_decode_submit_item(
        lim, (Anvil__V1__SubmitJobRequest *) call->req, &call->cmd, err);
}

int
hjobs_decode_get(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    Anvil__V1__GetJobRequest *r = (Anvil__V1__GetJobRequest *) call->req;
    if (r->idempotency_key[0] == '\0')
        return handlers_parse_job_id(r->id, &call->cmd.u.get.id, err);
    if (r->id[0] != '\0')
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "give id or idempotency_key, not both");
    if (strlen(r->idempotency_key) > MAX_KEY)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "idempotency_key is longer than %d bytes", MAX_KEY);
    call->cmd.u.get.key = r->idempotency_key;
    return ANVIL_OK;
}

int
hjobs_decode_cancel(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    Anvil__V1__CancelJobRequest *r = (Anvil__V1__CancelJobRequest *) call->req;
    return handlers_parse_job_id(r->id, &call->cmd.u.cancel.id, err);
}

int
hjobs_decode_retry(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    Anvil__V1__RetryJobRequest *r = (Anvil__V1__RetryJobRequest *) call->req;
    if (r->max_attempts > MAX_ATTEMPTS_LIMIT)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "max_attempts %u is over the limit of %u", r->max_attempts,
            MAX_ATTEMPTS_LIMIT);
    call->cmd.u.retry.max_attempts = r->max_attempts;
    return handlers_parse_job_id(r->id, &call->cmd.u.retry.id, err);
}

int
hjobs_decode_wait(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    Anvil__V1__WaitJobRequest *r = (Anvil__V1__WaitJobRequest *) call->req;
    if (r->timeout_ms > MAX_WAIT_MS)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "timeout_ms %u is over the limit of %u ms; wait again instead",
            r->timeout_ms, MAX_WAIT_MS);
    call->cmd.u.wait.timeout_ms = r->timeout_ms;
    call->long_poll             = r->timeout_ms > 0;
    return handlers_parse_job_id(r->id, &call->cmd.u.wait.id, err);
}

int
handlers_decode_filter(const struct handler_filter *in, uint32_t def_limit,
    struct store_list_filter *f, struct anvil_error *err)
{
    if (in->limit > MAX_LIST_LIMIT)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "limit %u is over the maximum of %d jobs per call", in->limit,
            MAX_LIST_LIMIT);
    if (in->state < 0 || in->state > ANVIL_JOB_CANCELED)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "state %d is not a job state", in->state);
    if ((in->type[0] && handlers_check_name("type", in->type, err))
        || (in->queue[0] && handlers_check_name("queue", in->queue, err)))
        return err->code;
    if (in->cursor[0] != '\0' && job_id_parse(in->cursor, &f->before_id) != 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "cursor '%.64s' is not a cursor this server returned", in->cursor);
    if (in->since_ms < 0 || in->until_ms < 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s %lld is negative: give Unix epoch milliseconds",
            in->since_ms < 0 ? "since_ms" : "until_ms",
            (long long) (in->since_ms < 0 ? in->since_ms : in->until_ms));
    if (in->until_ms > 0 && in->since_ms >= in->until_ms)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "since_ms %lld is not before until_ms %lld: nothing can match",
            (long long) in->since_ms, (long long) in->until_ms);
    f->state = in->state;
    f->type  = in->type[0] ? in->type : NULL;
    f->queue = in->queue[0] ? in->queue : NULL;
    f->limit = in->limit ? in->limit : def_limit;
    f->since = in->since_ms;
    f->until = in->until_ms;
    return ANVIL_OK;
}

int
hjobs_decode_list(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    Anvil__V1__ListJobsRequest *r = (Anvil__V1__ListJobsRequest *) call->req;
    struct handler_filter in = { (int) r->state, r->type, r->queue, r->limit,
        r->cursor, r->since_ms, r->until_ms };
    return handlers_decode_filter(
        &in, DEFAULT_LIST_LIMIT, &call->cmd.u.list.f, err);
}

int
handlers_check_names(
    const char *field, char **names, size_t n, struct anvil_error *err)
{
    if (n > MAX_POLL_NAMES)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s names %zu entries, over the limit of %d", field, n,
            MAX_POLL_NAMES);
    for (size_t i = 0; i < n; i++) {
        if (handlers_check_name(field, names[i], err))
            return err->code;
    }
    return ANVIL_OK;
}

// ---- encode ----

void
handlers_job_to_pb(const struct job *j, struct pb_job *p)
{
    anvil__v1__job__init(&p->m);
    job_id_format(j->id, p->id, sizeof(p->id));
    Anvil__V1__Job *m  = &p->m;
    m->id              = p->id;
    m->type            = j->type;
    m->queue           = j->queue;
    m->payload         = (ProtobufCBinaryData) { j->payload_len, j->payload };
    m->priority        = j->priority;
    m->state           = (Anvil__V1__JobState) j->state;
    m->attempt         = j->attempt;
    m->max_attempts    = j->retry.max_attempts;
    m->result          = (ProtobufCBinaryData) { j->result_len, j->result };
    m->error           = j->error;
    m->created_at_ms   = j->created_at;
    m->started_at_ms   = j->started_at;
    m->finished_at_ms  = j->finished_at;
    m->run_at_ms       = j->run_at;
    m->timeout_ms      = j->timeout_ms;
    m->idempotency_key = j->idem_key;
    m->worker_id       = j->worker_id;
    m->lease_ms        = j->lease_ms;
    m->initial_backoff_ms = j->retry.initial_backoff_ms;
    m->max_backoff_ms     = j->retry.max_backoff_ms;
    m->backoff_multiplier = j->retry.backoff_multiplier;
    if (j->concurrency_key != NULL && j->concurrency_key[0] != '\0') {
        m->concurrency_key   = j->concurrency_key;
        m->concurrency_limit = j->concurrency_limit;
    }
    if (j->has_progress) {
        anvil__v1__progress__init(&p->progress);
        p->progress.percent = j->progress_percent;
        p->progress.message = j->progress_message;
        m->progress         = &p->progress;
    }
    if (j->workflow_id != 0) {
        workflow_id_format(j->workflow_id, p->wf, sizeof(p->wf));
        m->workflow_id = p->wf;
        m->step        = j->step;
        m->n_after     = j->n_after;
        m->after       = j->after;
    }
}

// ---- reply memory ----

// A block of reply memory: the blocks of one reply are chained from
// *scratch, newest first, and the data follows the link, aligned for any
// type.
struct reply_block {
    struct reply_block *next;
    max_align_t         data[];
};

void *
handlers_alloc(void **scratch, size_t n, size_t size)
{
    struct reply_block *b;
    if (size != 0 && n > (SIZE_MAX - sizeof(*b)) / size)
        return NULL;
    b = calloc(1, sizeof(*b) + n * size);
    if (b == NULL)
        return NULL;
    b->next  = *scratch;
    *scratch = b;
    return b->data;
}

void
handlers_free(void *scratch)
{
    struct reply_block *b = scratch;
    while (b != NULL) {
        struct reply_block *next = b->next;
        free(b);
        b = next;
    }
}

void **
handlers_list(void **scratch, const void *from, size_t n, size_t from_size,
    size_t size, pb_fill_fn fill)
{
    void **ptrs  = handlers_alloc(scratch, n, sizeof(*ptrs));
    char  *items = handlers_alloc(scratch, n, size);
    if (ptrs == NULL || items == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = items + i * size;
        fill((const char *) from + i * from_size, ptrs[i]);
    }
    return ptrs;
}

static void
fill_job(const void *from, void *to)
{
    handlers_job_to_pb(from, to);
}

Anvil__V1__Job **
handlers_jobs_to_pb(void **scratch, const struct job *jobs, size_t n)
{
    return (Anvil__V1__Job **) handlers_list(
        scratch, jobs, n, sizeof(*jobs), sizeof(struct pb_job), fill_job);
}

// Encoders build the response in *scratch (freed by the caller) and
// point *out at it.

// SubmitJob and SubmitWorkflow answer the id they stored (or found by the
// idempotency key) and whether it existed.
struct submit_reply {
    union {
        Anvil__V1__SubmitJobResponse      job;
        Anvil__V1__SubmitWorkflowResponse wf;
    } m;
    char id[24];
};

int
handlers_encode_submit(
    struct call *call, ProtobufCMessage **out, void **scratch)
{
    struct submit_reply *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    *scratch = r;
    if (call->cmd.kind == CMD_WF_SUBMIT) {
        anvil__v1__submit_workflow_response__init(&r->m.wf);
        workflow_id_format(call->cmd.u.wf_submit.id, r->id, sizeof(r->id));
        r->m.wf.id      = r->id;
        r->m.wf.existed = call->cmd.u.wf_submit.existed;
        *out            = &r->m.wf.base;
    } else {
        anvil__v1__submit_job_response__init(&r->m.job);
        job_id_format(call->cmd.u.submit.id, r->id, sizeof(r->id));
        r->m.job.id      = r->id;
        r->m.job.existed = call->cmd.u.submit.existed;
        *out             = &r->m.job.base;
    }
    return ANVIL_OK;
}

// GetJob, CancelJob, RetryJob and WaitJob answer a job (WaitJob also
// `done`).
struct job_reply {
    union {
        Anvil__V1__GetJobResponse    get;
        Anvil__V1__CancelJobResponse cancel;
        Anvil__V1__RetryJobResponse  retry;
        Anvil__V1__WaitJobResponse   wait;
    } m;
    struct pb_job job;
};

int
hjobs_encode_job(struct call *call, ProtobufCMessage **out, void **scratch)
{
    struct job_reply *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    *scratch = r;
    switch (call->cmd.kind) {
    case CMD_WAIT:
        anvil__v1__wait_job_response__init(&r->m.wait);
        handlers_job_to_pb(&call->cmd.u.wait.job, &r->job);
        r->m.wait.job  = &r->job.m;
        r->m.wait.done = call->cmd.u.wait.done;
        *out           = &r->m.wait.base;
        break;
    case CMD_CANCEL:
        anvil__v1__cancel_job_response__init(&r->m.cancel);
        handlers_job_to_pb(&call->cmd.u.cancel.job, &r->job);
        r->m.cancel.job = &r->job.m;
        *out            = &r->m.cancel.base;
        break;
    case CMD_RETRY:
        anvil__v1__retry_job_response__init(&r->m.retry);
        handlers_job_to_pb(&call->cmd.u.retry.job, &r->job);
        r->m.retry.job = &r->job.m;
        *out           = &r->m.retry.base;
        break;
    default:
        anvil__v1__get_job_response__init(&r->m.get);
        handlers_job_to_pb(&call->cmd.u.get.job, &r->job);
        r->m.get.job = &r->job.m;
        *out         = &r->m.get.base;
        break;
    }
    return ANVIL_OK;
}

// ListJobs' reply and the text of its cursor.
struct list_reply {
    Anvil__V1__ListJobsResponse m;
    char                        cursor[24];
};

int
hjobs_encode_list(struct call *call, ProtobufCMessage **out, void **scratch)
{
    struct cmd_list   *l    = &call->cmd.u.list;
    struct list_reply *r    = handlers_alloc(scratch, 1, sizeof(*r));
    Anvil__V1__Job   **jobs = handlers_jobs_to_pb(scratch, l->jobs, l->n);
    if (r == NULL || jobs == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    anvil__v1__list_jobs_response__init(&r->m);
    r->m.n_jobs = l->n;
    r->m.jobs   = jobs;
    if (l->next_before > 0)
        job_id_format(l->next_before, r->cursor, sizeof(r->cursor));
    r->m.next_cursor = r->cursor;
    *out             = &r->m.base;
    return ANVIL_OK;
}

// The decode of an rpc whose request carries nothing the engine needs.
int
handlers_decode_none(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    (void) call;
    (void) err;
    return ANVIL_OK;
}

// One row per rpc of rpc_table.h; an rpc of `service Anvil` without a row
// answers UNIMPLEMENTED.
#define R(x) (1u << ANVIL_ROLE_##x)
#define ROLES_ADMIN 0u
#define ROLES_CLIENT R(CLIENT)
#define ROLES_WORKER R(WORKER)
#define ROLES_READ (R(CLIENT) | R(READER))
#define ROLES_READ_WORKER (R(CLIENT) | R(READER) | R(WORKER))
static const struct handler table[] = {
#define RPC(                                                              \
    method, kind, apply, fini, access, decode, encode, free_reply, roles) \
    { #method, CMD_##kind, decode, encode, free_reply, ROLES_##roles },
#define CMD(...)
#include "rpc_table.h"
#undef RPC
#undef CMD
};
#undef R

#define NHANDLERS (sizeof(table) / sizeof(table[0]))

static const ProtobufCServiceDescriptor *const service
    = &anvil__v1__anvil__descriptor;

int
handlers_check(void)
{
    for (size_t i = 0; i < NHANDLERS; i++) {
        if (protobuf_c_service_descriptor_get_method_by_name(
                service, table[i].name)
            == NULL) {
            AV_ERR("handlers.mismatch",
                "handler=%s msg=\"not in the "
                "service descriptor\"",
                table[i].name);
            return -1;
        }
    }
    return 0;
}

static int
find_handler(const char *name)
{
    for (size_t i = 0; i < NHANDLERS; i++) {
        if (strcmp(table[i].name, name) == 0)
            return (int) i;
    }
    return -1;
}

unsigned
handlers_roles(const char *method)
{
    int i = find_handler(method);
    return i < 0 ? 0 : table[i].roles;
}

int
handlers_method_index(const char *method)
{
    const ProtobufCMethodDescriptor *md
        = protobuf_c_service_descriptor_get_method_by_name(service, method);
    return md != NULL ? (int) (md - service->methods) : -1;
}

size_t
handlers_method_count(void)
{
    return service->n_methods;
}

const char *
handlers_method_name(int i)
{
    if (i < 0 || (size_t) i >= service->n_methods)
        return NULL;
    return service->methods[i].name;
}

int
handlers_decode_msg(const struct handler_limits *lim, const char *method,
    ProtobufCMessage *req, struct call *call, struct anvil_error *err)
{
    memset(call, 0, sizeof(*call));
    call->req = req;
    const ProtobufCMethodDescriptor *md
        = protobuf_c_service_descriptor_get_method_by_name(service, method);
    if (md == NULL)
        return av_error_set(err, ANVIL_UNIMPLEMENTED,
            "unknown method '%.64s': this server implements anvil.v1.Anvil",
            method);
    call->method = find_handler(md->name);
    if (call->method < 0)
        return av_error_set(err, ANVIL_UNIMPLEMENTED,
            "method %s is not implemented by this server", md->name);
    call->cmd.kind = table[call->method].kind;
    if (req == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "body is not a valid %s message", md->input->name);
    if (req->descriptor != md->input)
        return av_error_set(err, ANVIL_INTERNAL,
            "request of %s is a %s, not a %s", md->name, req->descriptor->name,
            md->input->name);
    return table[call->method].decode(lim, call, err);
}

const ProtobufCMessageDescriptor *
handlers_input(const char *method)
{
    const ProtobufCMethodDescriptor *md
        = protobuf_c_service_descriptor_get_method_by_name(service, method);
    return md == NULL ? NULL : md->input;
}

int
handlers_decode(const struct handler_limits *lim, const char *method,
    const uint8_t *body, size_t len, struct call *call, struct anvil_error *err)
{
    const ProtobufCMessageDescriptor *in  = handlers_input(method);
    ProtobufCMessage                 *req = NULL;
    if (in != NULL)
        req = protobuf_c_message_unpack(in, NULL, len, body);
    return handlers_decode_msg(lim, method, req, call, err);
}

int
handlers_reply(struct call *call, ProtobufCMessage **out, void **scratch,
    struct anvil_error *err)
{
    *out     = NULL;
    *scratch = NULL;
    int rc   = table[call->method].encode(call, out, scratch);
    if (rc != ANVIL_OK) {
        handlers_reply_free(call, *scratch);
        *scratch = NULL;
        return av_error_set(err, rc, "out of memory encoding the reply");
    }
    return ANVIL_OK;
}

void
handlers_reply_free(struct call *call, void *scratch)
{
    table[call->method].free_reply(scratch);
}

int
handlers_encode(
    struct call *call, uint8_t **out, size_t *len, struct anvil_error *err)
{
    ProtobufCMessage *msg;
    void             *scratch;
    int               rc = handlers_reply(call, &msg, &scratch, err);
    if (rc != ANVIL_OK)
        return rc;
    *len = protobuf_c_message_get_packed_size(msg);
    *out = malloc(*len + 1);
    if (*out != NULL)
        protobuf_c_message_pack(msg, *out);
    handlers_reply_free(call, scratch);
    if (*out == NULL)
        return av_error_set(
            err, ANVIL_RESOURCE_EXHAUSTED, "out of memory encoding the reply");
    return ANVIL_OK;
}

void
handlers_call_fini(struct call *call)
{
    engine_cmd_fini(&call->cmd);
    if (call->req != NULL)
        protobuf_c_message_free_unpacked(call->req, NULL);
    if (call->scratch_free != NULL)
        call->scratch_free(call->scratch);
    else
        free(call->scratch);
    call->req     = NULL;
    call->scratch = NULL;
}
