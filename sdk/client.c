// client.c - anvil_client and the job, health and worker calls of anvil.h.
//
// Each public call validates its arguments, fills a protobuf-c request,
// hands it to wire_call() and copies the reply into the plain structs of
// anvil.h, so callers never see protobuf-c types or nng.
//
// One nng REQ socket per client, shared by all threads: every call opens
// its own nng context in wire_call(). anvil_client_open() creates the
// dialer, which checks the URL, and the first call starts it with
// NNG_FLAG_NONBLOCK: it connects in the background and redials after a
// loss, so calls made while the server is down wait for it up to their
// timeout. Starting on first use rather than at open is a workaround: nng
// 1.5.2 leaks the dialer's half-negotiated pipe (and the listener's) when a
// socket is closed while its connection is being set up, which a client
// opened and closed without a call would otherwise hit whenever a server
// listens (LeakSanitizer reports it; probe: dial, close, nng_fini).
//
// anvil_client_close() may run while calls are in flight: it closes the
// socket, which fails them with NNG_ECLOSED, and waits for them to leave
// before freeing the client.
#include "anvil/v1/anvil.pb-c.h"
#include "util/error.h"
#include "wire.h"

#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS 10000
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 2000

struct anvil_client {
    struct wire_peer peer;       // sock; url and token point below
    char            *url;        // immutable after open
    char            *token;      // set before calls (anvil_client_set_token)
    _Atomic int      timeout_ms; // per call, long-polls excluded
    nng_dialer       dialer;     // created at open, started by a call
    pthread_mutex_t  mu;         // guards dialing, calls and closing
    bool             dialing;    // the dialer was started
    pthread_cond_t   idle;       // signalled when calls drops to 0
    int              calls;      // calls in flight
    bool             closing;    // anvil_client_close() has begun
};

// ---- copying replies into anvil.h structs ----

static int
oom(struct anvil_error *err, const char *method)
{
    return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED,
        "out of memory copying the reply to %s", method);
}

// A copy of s; "" for NULL. NULL only when out of memory.
static char *
dup_str(const char *s)
{
    return strdup(s != NULL ? s : "");
}

// A copy of b with a NUL byte after it. NULL only when out of memory.
static uint8_t *
dup_bytes(ProtobufCBinaryData b, size_t *len)
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
anvil_strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

// *out = a copy of the n strings of v (NULL when n is 0).
static int
strv_dup(char **v, size_t n, char ***out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    char **c = calloc(n, sizeof(*c));
    if (c == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        c[i] = dup_str(v[i]);
        if (c[i] == NULL) {
            anvil_strv_free(c, i);
            return -1;
        }
    }
    *out = c;
    return 0;
}

static void
job_fini(struct anvil_job *j)
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
    anvil_strv_free(j->after, j->n_after);
    memset(j, 0, sizeof(*j));
}

// Fills j from pb. Returns 0, or -1 out of memory (j is then empty).
static int
job_from_pb(struct anvil_job *j, const Anvil__V1__Job *pb)
{
    memset(j, 0, sizeof(*j));
    j->id              = dup_str(pb->id);
    j->type            = dup_str(pb->type);
    j->queue           = dup_str(pb->queue);
    j->payload         = dup_bytes(pb->payload, &j->payload_len);
    j->priority        = pb->priority;
    j->state           = (int) pb->state;
    j->attempt         = pb->attempt;
    j->max_attempts    = pb->max_attempts;
    j->result          = dup_bytes(pb->result, &j->result_len);
    j->error           = dup_str(pb->error);
    j->created_at_ms   = pb->created_at_ms;
    j->started_at_ms   = pb->started_at_ms;
    j->finished_at_ms  = pb->finished_at_ms;
    j->run_at_ms       = pb->run_at_ms;
    j->timeout_ms      = pb->timeout_ms;
    j->workflow_id     = dup_str(pb->workflow_id);
    j->step            = dup_str(pb->step);
    j->idempotency_key = dup_str(pb->idempotency_key);
    j->worker_id       = dup_str(pb->worker_id);
    int after_rc       = strv_dup(pb->after, pb->n_after, &j->after);
    if (after_rc == 0)
        j->n_after = pb->n_after;
    if (j->id && j->type && j->queue && j->payload && j->result && j->error
        && j->workflow_id && j->step && j->idempotency_key && j->worker_id
        && after_rc == 0)
        return 0;
    job_fini(j);
    return -1;
}

// *out = a new job copied from pb.
static int
job_new(const Anvil__V1__Job *pb, const char *method, struct anvil_job **out,
    struct anvil_error *err)
{
    if (pb == NULL)
        return av_error_set(
            err, ANVIL_INTERNAL, "the reply to %s has no job", method);
    struct anvil_job *j = malloc(sizeof(*j));
    if (j == NULL || job_from_pb(j, pb) != 0) {
        free(j);
        return oom(err, method);
    }
    *out = j;
    return ANVIL_OK;
}

void
anvil_job_free(struct anvil_job *job)
{
    if (job == NULL)
        return;
    job_fini(job);
    free(job);
}

void
anvil_free(void *p)
{
    free(p);
}

// ---- the client ----

// The URL to use: url, else $ANVIL_SERVER, else the default.
static const char *
pick_url(const char *url)
{
    if (url != NULL)
        return url;
    const char *env = getenv("ANVIL_SERVER");
    if (env != NULL && env[0] != '\0')
        return env;
    return ANVIL_DEFAULT_URL;
}

static int
make_dialer(anvil_client *c, struct anvil_error *err)
{
    nng_socket s;
    int        rv = nng_req0_open(&s);
    if (rv != 0)
        return wire_nng_error(rv, "opening a socket", c->url, 0, err);
    c->peer.sock = s;
    // Our own messages are bounded; a peer's are not: cap what we buffer.
    nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, WIRE_MAX_MSG);
    nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, WIRE_RESEND_MS);
    nng_socket_set_ms(s, NNG_OPT_RECONNMINT, RECONNECT_MIN_MS);
    nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, RECONNECT_MAX_MS);
    // Checks the URL; the first call starts it (see the top of the file).
    rv = nng_dialer_create(&c->dialer, s, c->url);
    if (rv == 0) {
        nng_dialer_set_size(c->dialer, NNG_OPT_RECVMAXSZ, WIRE_MAX_MSG);
        nng_dialer_set_ms(c->dialer, NNG_OPT_RECONNMINT, RECONNECT_MIN_MS);
        nng_dialer_set_ms(c->dialer, NNG_OPT_RECONNMAXT, RECONNECT_MAX_MS);
        return ANVIL_OK;
    }
    nng_close(s);
    int code = wire_code_from_nng(rv);
    if (code == ANVIL_INVALID_ARGUMENT)
        return av_error_set(err, code,
            "bad server URL \"%s\": %s (want e.g. tcp://127.0.0.1:7700 or "
            "ipc:///path/to/socket)",
            c->url, nng_strerror(rv));
    return wire_nng_error(rv, "dialling", c->url, 0, err);
}

static void
client_free(anvil_client *c)
{
    pthread_cond_destroy(&c->idle);
    pthread_mutex_destroy(&c->mu);
    free(c->url);
    free(c->token);
    free(c);
}

int
anvil_client_open(anvil_client **out, const char *url, struct anvil_error *err)
{
    if (out == NULL)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "anvil_client_open: out is NULL");
    *out = NULL;
    url  = pick_url(url);
    if (url[0] == '\0')
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "the server URL is empty (want e.g. %s)", ANVIL_DEFAULT_URL);
    anvil_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->idle, NULL);
    c->url   = strdup(url);
    c->token = dup_str(getenv("ANVIL_TOKEN"));
    atomic_init(&c->timeout_ms, DEFAULT_TIMEOUT_MS);
    if (c->url == NULL || c->token == NULL) {
        client_free(c);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    c->peer.url   = c->url;
    c->peer.token = c->token;
    int rc        = make_dialer(c, err);
    if (rc != ANVIL_OK) {
        client_free(c);
        return rc;
    }
    *out = c;
    return ANVIL_OK;
}

void
anvil_client_set_timeout(anvil_client *c, int timeout_ms)
{
    if (c == NULL)
        return;
    atomic_store(
        &c->timeout_ms, timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
}

int
anvil_client_set_token(
    anvil_client *c, const char *token, struct anvil_error *err)
{
    if (c == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "anvil_client_set_token: client is NULL");
    char *t = dup_str(token);
    if (t == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    free(c->token);
    c->token      = t;
    c->peer.token = t;
    return ANVIL_OK;
}

void
anvil_client_close(anvil_client *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->closing = true;
    pthread_mutex_unlock(&c->mu);
    nng_close(c->peer.sock); // calls in flight fail with NNG_ECLOSED
    pthread_mutex_lock(&c->mu);
    while (c->calls > 0)
        pthread_cond_wait(&c->idle, &c->mu);
    pthread_mutex_unlock(&c->mu);
    client_free(c);
}

// Counts a call in flight (so close waits for it) and starts the dialer
// on the first call. Call with c->mu held.
static int
call_enter(anvil_client *c, const char *method, struct anvil_error *err)
{
    if (c->closing)
        return av_error_set(err, ANVIL_UNAVAILABLE,
            "%s: the client for %s is closed", method, c->url);
    if (!c->dialing) {
        // Non-blocking: returns at once, connects in the background.
        int rv = nng_dialer_start(c->dialer, NNG_FLAG_NONBLOCK);
        if (rv != 0)
            return wire_nng_error(rv, method, c->url, 0, err);
        c->dialing = true;
    }
    c->calls++;
    return ANVIL_OK;
}

// Runs one rpc on c.
static int
call(anvil_client *c, const char *method, const ProtobufCMessage *req,
    int64_t wait_ms, ProtobufCMessage **reply, struct anvil_error *err)
{
    *reply = NULL;
    pthread_mutex_lock(&c->mu);
    int rc = call_enter(c, method, err);
    pthread_mutex_unlock(&c->mu);
    if (rc != ANVIL_OK)
        return rc;
    rc = wire_call(&c->peer, method, req, atomic_load(&c->timeout_ms), wait_ms,
        reply, err);
    pthread_mutex_lock(&c->mu);
    if (--c->calls == 0 && c->closing)
        pthread_cond_broadcast(&c->idle);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static int
check_client(anvil_client *c, const char *fn, struct anvil_error *err)
{
    if (c == NULL)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "%s: client is NULL", fn);
    return ANVIL_OK;
}

static int
check_id(const char *id, const char *fn, struct anvil_error *err)
{
    if (id == NULL || id[0] == '\0')
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: job id is %s", fn,
            id == NULL ? "NULL" : "empty");
    return ANVIL_OK;
}

static int
check_bytes(const void *p, size_t len, const char *what, const char *fn,
    struct anvil_error *err)
{
    if (p == NULL && len > 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: %s is NULL but its length is %zu", fn, what, len);
    return ANVIL_OK;
}

static void
free_reply(ProtobufCMessage *m)
{
    if (m != NULL)
        protobuf_c_message_free_unpacked(m, NULL);
}

// ---- jobs ----

static void
submit_opts_to_pb(
    const struct anvil_submit_opts *o, Anvil__V1__SubmitJobRequest *req)
{
    if (o == NULL)
        return;
    req->queue        = (char *) (o->queue != NULL ? o->queue : "");
    req->priority     = o->priority;
    req->delay_ms     = o->delay_ms;
    req->run_at_ms    = o->run_at_ms;
    req->max_attempts = o->max_attempts;
    req->timeout_ms   = o->timeout_ms;
    req->idempotency_key
        = (char *) (o->idempotency_key != NULL ? o->idempotency_key : "");
}

int
anvil_job_submit(anvil_client *c, const char *type, const void *payload,
    size_t len, const struct anvil_submit_opts *opts, char **id_out,
    bool *existed, struct anvil_error *err)
{
    static const char fn[] = "anvil_job_submit";
    if (id_out != NULL)
        *id_out = NULL;
    if (existed != NULL)
        *existed = false;
    int rc = check_client(c, fn, err);
    if (rc == ANVIL_OK && type == NULL)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: type is NULL", fn);
    if (rc == ANVIL_OK)
        rc = check_bytes(payload, len, "payload", fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__SubmitJobRequest req = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    req.type                        = (char *) type;
    req.payload.data                = (uint8_t *) payload;
    req.payload.len                 = len;
    submit_opts_to_pb(opts, &req);
    Anvil__V1__SubmitJobResponse *rep;
    rc = call(c, "SubmitJob", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    if (id_out != NULL) {
        *id_out = dup_str(rep->id);
        if (*id_out == NULL)
            rc = oom(err, "SubmitJob");
    }
    if (rc == ANVIL_OK && existed != NULL)
        *existed = rep->existed;
    free_reply(&rep->base);
    return rc;
}

// Checks the arguments of a call that takes a job id.
static int
check_id_call(
    anvil_client *c, const char *id, const char *fn, struct anvil_error *err)
{
    int rc = check_client(c, fn, err);
    if (rc == ANVIL_OK)
        rc = check_id(id, fn, err);
    return rc;
}

int
anvil_job_get(anvil_client *c, const char *id, struct anvil_job **out,
    struct anvil_error *err)
{
    static const char fn[] = "anvil_job_get";
    if (out == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: out is NULL", fn);
    *out   = NULL;
    int rc = check_id_call(c, id, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__GetJobRequest req = ANVIL__V1__GET_JOB_REQUEST__INIT;
    req.id                       = (char *) id;
    Anvil__V1__GetJobResponse *rep;
    rc = call(c, "GetJob", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    rc = job_new(rep->job, "GetJob", out, err);
    free_reply(&rep->base);
    return rc;
}

int
anvil_job_cancel(anvil_client *c, const char *id, struct anvil_job **out,
    struct anvil_error *err)
{
    static const char fn[] = "anvil_job_cancel";
    if (out != NULL)
        *out = NULL;
    int rc = check_id_call(c, id, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__CancelJobRequest req = ANVIL__V1__CANCEL_JOB_REQUEST__INIT;
    req.id                          = (char *) id;
    Anvil__V1__CancelJobResponse *rep;
    rc = call(c, "CancelJob", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    if (out != NULL)
        rc = job_new(rep->job, "CancelJob", out, err);
    free_reply(&rep->base);
    return rc;
}

int
anvil_job_wait(anvil_client *c, const char *id, int timeout_ms,
    struct anvil_job **out, struct anvil_error *err)
{
    static const char fn[] = "anvil_job_wait";
    if (out == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: out is NULL", fn);
    *out   = NULL;
    int rc = check_id_call(c, id, fn, err);
    if (rc == ANVIL_OK && timeout_ms < 0)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: timeout_ms is negative (%d)", fn, timeout_ms);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__WaitJobRequest req = ANVIL__V1__WAIT_JOB_REQUEST__INIT;
    req.id                        = (char *) id;
    req.timeout_ms                = (uint32_t) timeout_ms;
    Anvil__V1__WaitJobResponse *rep;
    rc = call(
        c, "WaitJob", &req.base, timeout_ms, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    rc = job_new(rep->job, "WaitJob", out, err);
    if (rc == ANVIL_OK && !rep->done)
        rc = av_error_set(err, ANVIL_DEADLINE_EXCEEDED,
            "job %s is still %s after %d ms", id,
            anvil_job_state_name((*out)->state), timeout_ms);
    free_reply(&rep->base);
    return rc;
}

static int
list_from_pb(const Anvil__V1__ListJobsResponse *rep,
    struct anvil_job_list **out, struct anvil_error *err)
{
    struct anvil_job_list *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return oom(err, "ListJobs");
    *out           = l;
    l->next_cursor = dup_str(rep->next_cursor);
    if (rep->n_jobs > 0)
        l->jobs = calloc(rep->n_jobs, sizeof(*l->jobs));
    if (l->next_cursor == NULL || (rep->n_jobs > 0 && l->jobs == NULL))
        goto fail;
    for (; l->n < rep->n_jobs; l->n++) {
        if (rep->jobs[l->n] == NULL)
            goto fail;
        if (job_from_pb(&l->jobs[l->n], rep->jobs[l->n]) != 0)
            goto fail;
    }
    return ANVIL_OK;
fail:
    anvil_job_list_free(l);
    *out = NULL;
    return oom(err, "ListJobs");
}

int
anvil_job_list(anvil_client *c, const struct anvil_list_filter *filter,
    struct anvil_job_list **out, struct anvil_error *err)
{
    static const char fn[] = "anvil_job_list";
    if (out == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: out is NULL", fn);
    *out   = NULL;
    int rc = check_client(c, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__ListJobsRequest req = ANVIL__V1__LIST_JOBS_REQUEST__INIT;
    if (filter != NULL) {
        req.state  = (Anvil__V1__JobState) filter->state;
        req.type   = (char *) (filter->type ? filter->type : "");
        req.queue  = (char *) (filter->queue ? filter->queue : "");
        req.limit  = filter->limit;
        req.cursor = (char *) (filter->cursor ? filter->cursor : "");
    }
    Anvil__V1__ListJobsResponse *rep;
    rc = call(c, "ListJobs", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    rc = list_from_pb(rep, out, err);
    free_reply(&rep->base);
    return rc;
}

void
anvil_job_list_free(struct anvil_job_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n; i++)
        job_fini(&list->jobs[i]);
    free(list->jobs);
    free(list->next_cursor);
    free(list);
}

// ---- health ----

static int
health_from_pb(const Anvil__V1__HealthResponse *rep, struct anvil_health *h)
{
    h->version    = dup_str(rep->version);
    h->uptime_ms  = rep->uptime_ms;
    h->jobs_total = rep->jobs_total;
    if (h->version == NULL)
        return -1;
    if (rep->n_depths == 0)
        return 0;
    h->depths = calloc(rep->n_depths, sizeof(*h->depths));
    if (h->depths == NULL)
        return -1;
    for (; h->n_depths < rep->n_depths; h->n_depths++) {
        const Anvil__V1__QueueDepth *pb = rep->depths[h->n_depths];
        struct anvil_queue_depth    *d  = &h->depths[h->n_depths];
        if (pb == NULL)
            return -1;
        d->queue   = dup_str(pb->queue);
        d->type    = dup_str(pb->type);
        d->queued  = pb->queued;
        d->running = pb->running;
        if (d->queue == NULL || d->type == NULL) {
            h->n_depths++; // so anvil_health_free() frees this one too
            return -1;
        }
    }
    return 0;
}

int
anvil_health(
    anvil_client *c, struct anvil_health **out, struct anvil_error *err)
{
    if (out == NULL)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "anvil_health: out is NULL");
    *out   = NULL;
    int rc = check_client(c, "anvil_health", err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__HealthRequest   req = ANVIL__V1__HEALTH_REQUEST__INIT;
    Anvil__V1__HealthResponse *rep;
    rc = call(c, "Health", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    struct anvil_health *h = calloc(1, sizeof(*h));
    if (h == NULL || health_from_pb(rep, h) != 0) {
        anvil_health_free(h);
        rc = oom(err, "Health");
    } else {
        *out = h;
    }
    free_reply(&rep->base);
    return rc;
}

void
anvil_health_free(struct anvil_health *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n_depths; i++) {
        free(h->depths[i].queue);
        free(h->depths[i].type);
    }
    free(h->depths);
    free(h->version);
    free(h);
}

// ---- worker calls ----

static void
lease_fini(struct anvil_lease *l)
{
    job_fini(&l->job);
    for (size_t i = 0; i < l->n_parents; i++) {
        free(l->parents[i].step);
        free(l->parents[i].result);
    }
    free(l->parents);
    l->parents   = NULL;
    l->n_parents = 0;
}

// Fills l from pb. 0, or -1 (out of memory or no job; l is then empty).
static int
lease_from_pb(struct anvil_lease *l, const Anvil__V1__Lease *pb)
{
    memset(l, 0, sizeof(*l));
    if (pb == NULL || pb->job == NULL || job_from_pb(&l->job, pb->job) != 0)
        return -1;
    l->token       = pb->token;
    l->deadline_ms = pb->deadline_ms;
    if (pb->n_parents == 0)
        return 0;
    l->parents = calloc(pb->n_parents, sizeof(*l->parents));
    if (l->parents == NULL)
        goto fail;
    for (; l->n_parents < pb->n_parents; l->n_parents++) {
        const Anvil__V1__ParentResult *pr = pb->parents[l->n_parents];
        struct anvil_parent_result    *p  = &l->parents[l->n_parents];
        if (pr == NULL)
            goto fail;
        p->step   = dup_str(pr->step);
        p->result = dup_bytes(pr->result, &p->result_len);
        if (p->step == NULL || p->result == NULL) {
            l->n_parents++;
            goto fail;
        }
    }
    return 0;
fail:
    lease_fini(l);
    return -1;
}

void
anvil_leases_free(struct anvil_lease *leases, size_t n)
{
    if (leases == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        lease_fini(&leases[i]);
    free(leases);
}

static int
check_names(
    const char *const *v, size_t n, const char *what, struct anvil_error *err)
{
    if (v == NULL && n > 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "anvil_poll: %s is NULL but n_%s is %zu", what, what, n);
    for (size_t i = 0; i < n; i++) {
        if (v[i] == NULL)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "anvil_poll: %s[%zu] is NULL", what, i);
    }
    return ANVIL_OK;
}

static int
check_poll(anvil_client *c, const struct anvil_poll_req *r,
    struct anvil_lease **leases, size_t *n, struct anvil_error *err)
{
    static const char fn[] = "anvil_poll";
    int               rc   = check_client(c, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    if (r == NULL || leases == NULL || n == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: %s is NULL", fn,
            r == NULL            ? "req"
                : leases == NULL ? "leases"
                                 : "n");
    if (r->worker_id == NULL || r->worker_id[0] == '\0')
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "%s: worker_id is not set", fn);
    if (r->max_jobs == 0)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "%s: max_jobs must be at least 1", fn);
    rc = check_names(r->queues, r->n_queues, "queues", err);
    if (rc == ANVIL_OK)
        rc = check_names(r->types, r->n_types, "types", err);
    return rc;
}

static int
leases_from_pb(const Anvil__V1__PollResponse *rep, struct anvil_lease **leases,
    size_t *n, struct anvil_error *err)
{
    if (rep->n_leases == 0)
        return ANVIL_OK;
    struct anvil_lease *ls = calloc(rep->n_leases, sizeof(*ls));
    if (ls == NULL)
        return oom(err, "Poll");
    size_t i = 0;
    for (; i < rep->n_leases; i++) {
        if (lease_from_pb(&ls[i], rep->leases[i]) != 0)
            break;
    }
    if (i < rep->n_leases) {
        bool nojob = rep->leases[i] == NULL || rep->leases[i]->job == NULL;
        anvil_leases_free(ls, i);
        if (nojob)
            return av_error_set(err, ANVIL_INTERNAL,
                "lease %zu of the reply to Poll has no job", i);
        return oom(err, "Poll");
    }
    *leases = ls;
    *n      = i;
    return ANVIL_OK;
}

int
anvil_poll(anvil_client *c, const struct anvil_poll_req *r,
    struct anvil_lease **leases, size_t *n, struct anvil_error *err)
{
    if (leases != NULL)
        *leases = NULL;
    if (n != NULL)
        *n = 0;
    int rc = check_poll(c, r, leases, n, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__PollRequest req = ANVIL__V1__POLL_REQUEST__INIT;
    req.worker_id              = (char *) r->worker_id;
    req.queues                 = (char **) r->queues;
    req.n_queues               = r->n_queues;
    req.types                  = (char **) r->types;
    req.n_types                = r->n_types;
    req.max_jobs               = r->max_jobs;
    req.wait_ms                = r->wait_ms;
    Anvil__V1__PollResponse *rep;
    rc = call(
        c, "Poll", &req.base, r->wait_ms, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    rc = leases_from_pb(rep, leases, n, err);
    free_reply(&rep->base);
    return rc;
}

int
anvil_complete(anvil_client *c, const char *job_id, uint32_t token,
    const void *result, size_t len, struct anvil_error *err)
{
    static const char fn[] = "anvil_complete";
    int               rc   = check_id_call(c, job_id, fn, err);
    if (rc == ANVIL_OK)
        rc = check_bytes(result, len, "result", fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__CompleteRequest req = ANVIL__V1__COMPLETE_REQUEST__INIT;
    req.job_id                     = (char *) job_id;
    req.token                      = token;
    req.result.data                = (uint8_t *) result;
    req.result.len                 = len;
    ProtobufCMessage *rep;
    rc = call(c, "Complete", &req.base, 0, &rep, err);
    free_reply(rep);
    return rc;
}

int
anvil_fail(anvil_client *c, const char *job_id, uint32_t token,
    const char *error, bool retryable, int *state, struct anvil_error *err)
{
    static const char fn[] = "anvil_fail";
    if (state != NULL)
        *state = ANVIL_JOB_UNSPECIFIED;
    int rc = check_id_call(c, job_id, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__FailRequest req = ANVIL__V1__FAIL_REQUEST__INIT;
    req.job_id                 = (char *) job_id;
    req.token                  = token;
    req.error                  = (char *) (error != NULL ? error : "");
    req.no_retry               = !retryable;
    Anvil__V1__FailResponse *rep;
    rc = call(c, "Fail", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    if (state != NULL)
        *state = (int) rep->state;
    free_reply(&rep->base);
    return ANVIL_OK;
}

static int
check_heartbeat(anvil_client *c, const char *worker_id,
    const struct anvil_lease_ref *refs, size_t n, char ***canceled,
    size_t *n_canceled, char ***lost, size_t *n_lost, struct anvil_error *err)
{
    static const char fn[] = "anvil_heartbeat";
    int               rc   = check_client(c, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    if (worker_id == NULL || worker_id[0] == '\0')
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "%s: worker_id is not set", fn);
    if ((canceled != NULL && n_canceled == NULL)
        || (lost != NULL && n_lost == NULL))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: an id array needs its count (n_canceled, n_lost)", fn);
    if (refs == NULL && n > 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: refs is NULL but n is %zu", fn, n);
    for (size_t i = 0; i < n; i++) {
        if (refs[i].job_id == NULL || refs[i].job_id[0] == '\0')
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s: refs[%zu].job_id is not set", fn, i);
    }
    return ANVIL_OK;
}

static int
heartbeat_call(anvil_client *c, const char *worker_id,
    const struct anvil_lease_ref *refs, size_t n,
    Anvil__V1__HeartbeatResponse **rep, struct anvil_error *err)
{
    Anvil__V1__LeaseRef  *pbs  = calloc(n > 0 ? n : 1, sizeof(*pbs));
    Anvil__V1__LeaseRef **ptrs = calloc(n > 0 ? n : 1, sizeof(*ptrs));
    int                   rc;
    if (pbs == NULL || ptrs == NULL) {
        rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        Anvil__V1__LeaseRef init = ANVIL__V1__LEASE_REF__INIT;
        pbs[i]                   = init;
        pbs[i].job_id            = (char *) refs[i].job_id;
        pbs[i].token             = refs[i].token;
        ptrs[i]                  = &pbs[i];
    }
    Anvil__V1__HeartbeatRequest req = ANVIL__V1__HEARTBEAT_REQUEST__INIT;
    req.worker_id                   = (char *) worker_id;
    req.leases                      = ptrs;
    req.n_leases                    = n;
    rc = call(c, "Heartbeat", &req.base, 0, (ProtobufCMessage **) rep, err);
out:
    free(pbs);
    free(ptrs);
    return rc;
}

int
anvil_heartbeat(anvil_client *c, const char *worker_id,
    const struct anvil_lease_ref *refs, size_t n, char ***canceled,
    size_t *n_canceled, char ***lost, size_t *n_lost, struct anvil_error *err)
{
    if (canceled != NULL)
        *canceled = NULL;
    if (n_canceled != NULL)
        *n_canceled = 0;
    if (lost != NULL)
        *lost = NULL;
    if (n_lost != NULL)
        *n_lost = 0;
    int rc = check_heartbeat(
        c, worker_id, refs, n, canceled, n_canceled, lost, n_lost, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__HeartbeatResponse *rep;
    rc = heartbeat_call(c, worker_id, refs, n, &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    if (canceled != NULL
        && strv_dup(rep->canceled, rep->n_canceled, canceled) != 0)
        rc = oom(err, "Heartbeat");
    else if (canceled != NULL)
        *n_canceled = rep->n_canceled;
    if (rc == ANVIL_OK && lost != NULL) {
        if (strv_dup(rep->lost, rep->n_lost, lost) != 0) {
            rc = oom(err, "Heartbeat");
        } else {
            *n_lost = rep->n_lost;
        }
    }
    if (rc != ANVIL_OK && canceled != NULL) {
        anvil_strv_free(*canceled, *n_canceled);
        *canceled   = NULL;
        *n_canceled = 0;
    }
    free_reply(&rep->base);
    return rc;
}
