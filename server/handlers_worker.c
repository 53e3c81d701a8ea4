// handlers_worker.c - decode/validate and encode of the worker and server
// rpcs: Poll, Heartbeat, Complete, Fail, Health, ListWorkers.
#include "handlers_impl.h"

#include "util/error.h"
#include "util/utf8.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ERROR_TEXT 65536
#define MAX_POLL_WAIT_MS 60000u
#define MAX_POLL_JOBS 1000u
#define MAX_HEARTBEAT_LEASES 10000

static const char *const default_queues[] = { "default" };

// Checks what a worker says of itself (Poll/Heartbeat `info`) into out.
static int
decode_info(const Anvil__V1__WorkerInfo *pi, struct worker_info *out,
    struct anvil_error *err)
{
    if (handlers_check_names("info.types", pi->types, pi->n_types, err)
        || handlers_check_names("info.queues", pi->queues, pi->n_queues, err))
        return err->code;
    if (strlen(pi->host) > MAX_HOST || strlen(pi->version) > MAX_NAME)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "info.host is at most %d bytes and info.version at most %d",
            MAX_HOST, MAX_NAME);
    *out = (struct worker_info) {
        .host     = pi->host,
        .pid      = pi->pid,
        .version  = pi->version,
        .types    = (const char *const *) pi->types,
        .n_types  = pi->n_types,
        .queues   = (const char *const *) pi->queues,
        .n_queues = pi->n_queues,
        .slots    = pi->slots,
    };
    return ANVIL_OK;
}

int
hwork_decode_poll(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    Anvil__V1__PollRequest *r = (Anvil__V1__PollRequest *) call->req;
    struct cmd_poll        *p = &call->cmd.u.poll;
    if (handlers_check_name("worker_id", r->worker_id, err)
        || handlers_check_names("queues", r->queues, r->n_queues, err)
        || handlers_check_names("types", r->types, r->n_types, err))
        return err->code;
    if (r->n_types == 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "types is empty: name the job types this worker runs");
    if (r->max_jobs > MAX_POLL_JOBS || r->wait_ms > MAX_POLL_WAIT_MS)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "max_jobs is at most %u and wait_ms at most %u", MAX_POLL_JOBS,
            MAX_POLL_WAIT_MS);
    if (r->info != NULL) {
        struct worker_info *info = calloc(1, sizeof(*info));
        if (info == NULL)
            return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
        call->scratch = info;
        if (decode_info(r->info, info, err) != ANVIL_OK)
            return err->code;
        p->info = info;
    }
    p->worker  = r->worker_id;
    p->queues  = r->n_queues ? (const char *const *) r->queues : default_queues;
    p->nq      = r->n_queues ? r->n_queues : 1;
    p->types   = (const char *const *) r->types;
    p->nt      = r->n_types;
    p->max     = r->max_jobs ? r->max_jobs : 1;
    p->wait_ms = r->wait_ms;
    call->long_poll = r->wait_ms > 0;
    return ANVIL_OK;
}

// Checks the progress report of leases[i] into ref. A bad one refuses the
// whole heartbeat, before anything of it is applied.
static int
decode_progress(size_t i, const Anvil__V1__Progress *p, struct lease_ref *ref,
    struct anvil_error *err)
{
    if (p->percent < 0 || p->percent > 100)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "leases[%zu].progress.percent is %d: it must be 0 to 100", i,
            (int) p->percent);
    size_t n = strlen(p->message);
    if (n > ANVIL_PROGRESS_MESSAGE_MAX)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "leases[%zu].progress.message is %zu bytes, over the limit of %d",
            i, n, ANVIL_PROGRESS_MESSAGE_MAX);
    if (!av_utf8_valid(p->message, n))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "leases[%zu].progress.message is not valid UTF-8", i);
    ref->has_progress     = true;
    ref->progress_percent = p->percent;
    ref->progress_message = p->message;
    return ANVIL_OK;
}

struct heartbeat_input {
    struct worker_info info;
    struct lease_ref   refs[]; // n_leases + 1
};

int
hwork_decode_heartbeat(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    Anvil__V1__HeartbeatRequest *r = (Anvil__V1__HeartbeatRequest *) call->req;
    if (handlers_check_name("worker_id", r->worker_id, err))
        return err->code;
    if (r->n_leases > MAX_HEARTBEAT_LEASES)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "leases holds %zu entries, over the limit of %d", r->n_leases,
            MAX_HEARTBEAT_LEASES);
    struct heartbeat_input *in
        = calloc(1, sizeof(*in) + (r->n_leases + 1) * sizeof(in->refs[0]));
    if (in == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    call->scratch = in;
    for (size_t i = 0; i < r->n_leases; i++) {
        if (handlers_parse_job_id(r->leases[i]->job_id, &in->refs[i].id, err))
            return err->code;
        in->refs[i].token = r->leases[i]->token;
        if (r->leases[i]->progress != NULL
            && decode_progress(i, r->leases[i]->progress, &in->refs[i], err))
            return err->code;
    }
    struct cmd_heartbeat *h = &call->cmd.u.heartbeat;
    if (r->info != NULL) {
        if (decode_info(r->info, &in->info, err) != ANVIL_OK)
            return err->code;
        h->info = &in->info;
    }
    h->worker = r->worker_id;
    h->refs   = in->refs;
    h->n      = r->n_leases;
    return ANVIL_OK;
}

int
handlers_decode_complete_item(const struct handler_limits *lim,
    const char *job_id, uint32_t token, const ProtobufCBinaryData *result,
    struct cmd *c, struct anvil_error *err)
{
    if (result->len > lim->max_payload)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "result is %zu bytes, over the server's limit of %zu bytes",
            result->len, lim->max_payload);
    c->kind              = CMD_COMPLETE;
    c->u.complete.token  = token;
    c->u.complete.result = result->data;
    c->u.complete.len    = result->len;
    return handlers_parse_job_id(job_id, &c->u.complete.id, err);
}

int
handlers_decode_fail_item(const char *job_id, uint32_t token, const char *error,
    bool no_retry, struct cmd *c, struct anvil_error *err)
{
    if (strlen(error) > MAX_ERROR_TEXT)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "error text is over the limit of %d bytes", MAX_ERROR_TEXT);
    c->kind            = CMD_FAIL;
    c->u.fail.token    = token;
    c->u.fail.error    = error[0] ? error : "failed";
    c->u.fail.no_retry = no_retry;
    return handlers_parse_job_id(job_id, &c->u.fail.id, err);
}

int
hwork_decode_complete(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    Anvil__V1__CompleteRequest *r = (Anvil__V1__CompleteRequest *) call->req;
    return handlers_decode_complete_item(
        lim, r->job_id, r->token, &r->result, &call->cmd, err);
}

int
hwork_decode_fail(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    Anvil__V1__FailRequest *r = (Anvil__V1__FailRequest *) call->req;
    return handlers_decode_fail_item(
        r->job_id, r->token, r->error, r->no_retry, &call->cmd, err);
}

// ---- encode ----

struct poll_reply {
    Anvil__V1__PollResponse   m;
    Anvil__V1__Lease        **ptrs;
    Anvil__V1__Lease         *leases;
    struct pb_job            *jobs;
    Anvil__V1__ParentResult  *parents; // every lease's, one after another
    Anvil__V1__ParentResult **pptrs;
};

// Points a lease at its parents' results, taken from r->parents at *at.
static void
lease_parents(
    struct poll_reply *r, Anvil__V1__Lease *l, const struct job *j, size_t *at)
{
    l->n_parents = j->n_parents;
    l->parents   = &r->pptrs[*at];
    for (size_t k = 0; k < j->n_parents; k++, (*at)++) {
        Anvil__V1__ParentResult *pr = &r->parents[*at];
        anvil__v1__parent_result__init(pr);
        pr->step = j->parents[k].step;
        pr->result
            = (ProtobufCBinaryData) { j->parents[k].len, j->parents[k].result };
        r->pptrs[*at] = pr;
    }
}

int
hwork_encode_poll(struct call *call, ProtobufCMessage **out, void **scratch)
{
    struct cmd_poll   *p = &call->cmd.u.poll;
    struct poll_reply *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    *scratch  = r;
    r->ptrs   = calloc(p->n + 1, sizeof(*r->ptrs));
    r->leases = calloc(p->n + 1, sizeof(*r->leases));
    r->jobs   = calloc(p->n + 1, sizeof(*r->jobs));
    size_t np = 0, at = 0;
    for (size_t i = 0; i < p->n; i++)
        np += p->jobs[i].n_parents;
    r->parents = calloc(np + 1, sizeof(*r->parents));
    r->pptrs   = calloc(np + 1, sizeof(*r->pptrs));
    if (r->ptrs == NULL || r->leases == NULL || r->jobs == NULL
        || r->parents == NULL || r->pptrs == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    anvil__v1__poll_response__init(&r->m);
    for (size_t i = 0; i < p->n; i++) {
        anvil__v1__lease__init(&r->leases[i]);
        lease_parents(r, &r->leases[i], &p->jobs[i], &at);
        handlers_job_to_pb(&p->jobs[i], &r->jobs[i]);
        r->leases[i].job         = &r->jobs[i].m;
        r->leases[i].token       = p->jobs[i].attempt;
        r->leases[i].deadline_ms = p->jobs[i].lease_deadline;
        r->ptrs[i]               = &r->leases[i];
    }
    r->m.n_leases = p->n;
    r->m.leases   = r->ptrs;
    *out          = &r->m.base;
    return ANVIL_OK;
}

void
hwork_free_poll_reply(void *p)
{
    struct poll_reply *r = p;
    if (r == NULL)
        return;
    free(r->ptrs);
    free(r->leases);
    free(r->jobs);
    free(r->parents);
    free(r->pptrs);
    free(r);
}

// The text of n job ids in reply memory: n pointers, then the 24 bytes
// each points at.
char **
handlers_job_ids(void **scratch, const int64_t *ids, size_t n)
{
    char **ptrs = handlers_alloc(scratch, n, sizeof(char *) + 24);
    if (ptrs == NULL)
        return NULL;
    char *text = (char *) (ptrs + n);
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = text + 24 * i;
        job_id_format(ids[i], ptrs[i], 24);
    }
    return ptrs;
}

int
hwork_encode_heartbeat(
    struct call *call, ProtobufCMessage **out, void **scratch)
{
    struct cmd_heartbeat         *h = &call->cmd.u.heartbeat;
    Anvil__V1__HeartbeatResponse *m = handlers_alloc(scratch, 1, sizeof(*m));
    char **canceled = handlers_job_ids(scratch, h->canceled, h->ncanceled);
    char **lost     = handlers_job_ids(scratch, h->lost, h->nlost);
    if (m == NULL || canceled == NULL || lost == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    anvil__v1__heartbeat_response__init(m);
    m->n_canceled  = h->ncanceled;
    m->canceled    = canceled;
    m->n_lost      = h->nlost;
    m->lost        = lost;
    m->deadline_ms = h->deadline;
    *out           = &m->base;
    return ANVIL_OK;
}

int
hwork_encode_complete(struct call *call, ProtobufCMessage **out, void **scratch)
{
    (void) call;
    Anvil__V1__CompleteResponse *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    anvil__v1__complete_response__init(r);
    *scratch = r;
    *out     = &r->base;
    return ANVIL_OK;
}

int
hwork_encode_fail(struct call *call, ProtobufCMessage **out, void **scratch)
{
    Anvil__V1__FailResponse *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    anvil__v1__fail_response__init(r);
    r->state       = (Anvil__V1__JobState) call->cmd.u.fail.state;
    r->retry_at_ms = call->cmd.u.fail.retry_at;
    *scratch       = r;
    *out           = &r->base;
    return ANVIL_OK;
}

static void
depth_to_pb(const void *from, void *to)
{
    const struct store_depth *d = from;
    Anvil__V1__QueueDepth    *m = to;
    anvil__v1__queue_depth__init(m);
    m->queue     = d->queue;
    m->type      = d->type;
    m->queued    = d->queued;
    m->running   = d->running;
    m->no_worker = d->no_worker;
    m->scheduled = d->scheduled;
    m->paused    = d->paused;
}

static void
minute_to_pb(const void *from, void *to)
{
    const struct minute_count *c = from;
    Anvil__V1__MinuteCount    *m = to;
    anvil__v1__minute_count__init(m);
    m->minute_ms = c->minute_ms;
    m->queue     = (char *) c->queue;
    m->type      = (char *) c->type;
    m->succeeded = c->succeeded;
    m->failed    = c->failed;
    m->retried   = c->retried;
}

static void
limit_to_pb(const void *from, void *to)
{
    const struct store_queue_limit *l = from;
    Anvil__V1__QueueLimit          *m = to;
    anvil__v1__queue_limit__init(m);
    m->queue           = l->queue;
    m->rate_per_second = l->rate;
    m->burst           = l->burst;
    m->tokens          = l->tokens;
}

static void
key_to_pb(const void *from, void *to)
{
    const struct cmd_key_state     *k = from;
    Anvil__V1__ConcurrencyKeyState *m = to;
    anvil__v1__concurrency_key_state__init(m);
    m->key     = k->key;
    m->running = k->running;
    m->waiting = k->waiting;
    m->limit   = k->limit;
}

int
hwork_encode_health(struct call *call, ProtobufCMessage **out, void **scratch)
{
    struct cmd_health         *h = &call->cmd.u.health;
    Anvil__V1__HealthResponse *m = handlers_alloc(scratch, 1, sizeof(*m));
    void **depths = handlers_list(scratch, h->depths, h->n, sizeof(*h->depths),
        sizeof(Anvil__V1__QueueDepth), depth_to_pb);
    void **recent = handlers_list(scratch, h->recent, h->n_recent,
        sizeof(*h->recent), sizeof(Anvil__V1__MinuteCount), minute_to_pb);
    void **limits = handlers_list(scratch, h->limits, h->n_limits,
        sizeof(*h->limits), sizeof(Anvil__V1__QueueLimit), limit_to_pb);
    void **keys   = handlers_list(scratch, h->keys, h->n_keys, sizeof(*h->keys),
          sizeof(Anvil__V1__ConcurrencyKeyState), key_to_pb);
    if (m == NULL || depths == NULL || recent == NULL || limits == NULL
        || keys == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    anvil__v1__health_response__init(m);
    m->n_busiest_keys  = h->n_keys;
    m->busiest_keys    = (Anvil__V1__ConcurrencyKeyState **) keys;
    m->n_depths        = h->n;
    m->depths          = (Anvil__V1__QueueDepth **) depths;
    m->n_recent        = h->n_recent;
    m->recent          = (Anvil__V1__MinuteCount **) recent;
    m->last_event_seq  = h->last_event_seq;
    m->n_paused_queues = h->n_paused;
    m->paused_queues   = h->paused;
    m->n_queue_limits  = h->n_limits;
    m->queue_limits    = (Anvil__V1__QueueLimit **) limits;
    // Without tokens every caller may do everything.
    m->caller_role = (Anvil__V1__Role) (call->cmd.role != 0 ? call->cmd.role
                                                            : ANVIL_ROLE_ADMIN);
    m->version     = ANVIL_VERSION;
    m->uptime_ms   = h->uptime_ms;
    m->jobs_total  = h->total;
    *out           = &m->base;
    return ANVIL_OK;
}

// A wire worker and the info it points at.
struct pb_worker {
    Anvil__V1__Worker     m;
    Anvil__V1__WorkerInfo info;
};

static void
worker_to_pb(const void *from, void *to)
{
    const struct registry_entry *e = from;
    struct pb_worker            *p = to;
    anvil__v1__worker__init(&p->m);
    anvil__v1__worker_info__init(&p->info);
    p->info.host       = e->host;
    p->info.pid        = e->pid;
    p->info.version    = e->version;
    p->info.n_types    = e->n_types;
    p->info.types      = e->types;
    p->info.n_queues   = e->n_queues;
    p->info.queues     = e->queues;
    p->info.slots      = e->slots;
    p->m.name          = e->name;
    p->m.info          = &p->info;
    p->m.first_seen_ms = e->first_seen;
    p->m.last_seen_ms  = e->last_seen;
    p->m.running       = e->running;
    p->m.lost          = e->lost;
}

int
hwork_encode_workers(struct call *call, ProtobufCMessage **out, void **scratch)
{
    struct cmd_workers             *c = &call->cmd.u.workers;
    Anvil__V1__ListWorkersResponse *m = handlers_alloc(scratch, 1, sizeof(*m));
    void **w = handlers_list(scratch, c->w, c->n, sizeof(*c->w),
        sizeof(struct pb_worker), worker_to_pb);
    if (m == NULL || w == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    anvil__v1__list_workers_response__init(m);
    m->n_workers = c->n;
    m->workers   = (Anvil__V1__Worker **) w;
    *out         = &m->base;
    return ANVIL_OK;
}
