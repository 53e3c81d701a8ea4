// client_job.c - the job and health calls of anvil.h: submit, get (by id
// or key), wait, cancel, retry, list, health. Each checks its arguments, fills
// a protobuf-c request, runs it with client_call() and copies the reply
// (convert.c).
#include "anvil/v1/anvil.pb-c.h"
#include "client_impl.h"
#include "convert.h"
#include "util/clock.h"
#include "util/error.h"

#include <stdlib.h>

void
anvil_job_free(struct anvil_job *job)
{
    if (job == NULL)
        return;
    convert_job_fini(job);
    free(job);
}

void
client_submit_opts_to_pb(
    const struct anvil_job_opts *o, Anvil__V1__SubmitJobRequest *req)
{
    if (o == NULL)
        return;
    req->queue      = (char *) (o->queue != NULL ? o->queue : "");
    req->priority   = o->priority;
    req->delay_ms   = o->delay_ms;
    req->run_at_ms  = o->run_at_ms;
    req->timeout_ms = o->timeout_ms;
    req->idempotency_key
        = (char *) (o->idempotency_key != NULL ? o->idempotency_key : "");
    req->lease_ms           = o->lease_ms;
    req->max_attempts       = o->retry.max_attempts;
    req->initial_backoff_ms = o->retry.initial_backoff_ms;
    req->max_backoff_ms     = o->retry.max_backoff_ms;
    req->backoff_multiplier = o->retry.backoff_multiplier;
    req->concurrency_key
        = (char *) (o->concurrency_key != NULL ? o->concurrency_key : "");
    req->concurrency_limit = o->concurrency_limit;
}

int
anvil_job_submit(anvil_client *c, const char *type, const void *payload,
    size_t len, const struct anvil_job_opts *opts, char **id_out, bool *existed,
    struct anvil_error *err)
{
    static const char fn[] = "anvil_job_submit";
    if (id_out != NULL)
        *id_out = NULL;
    if (existed != NULL)
        *existed = false;
    int rc = client_check(c, fn, err);
    if (rc == ANVIL_OK && type == NULL)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: type is NULL", fn);
    if (rc == ANVIL_OK)
        rc = client_check_bytes(payload, len, "payload", fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__SubmitJobRequest req = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    req.type                        = (char *) type;
    req.payload.data                = (uint8_t *) payload;
    req.payload.len                 = len;
    client_submit_opts_to_pb(opts, &req);
    Anvil__V1__SubmitJobResponse *rep;
    rc = client_call(
        c, "SubmitJob", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    if (id_out != NULL) {
        *id_out = convert_str(rep->id);
        if (*id_out == NULL)
            rc = convert_oom(err, "SubmitJob");
    }
    if (rc == ANVIL_OK && existed != NULL)
        *existed = rep->existed;
    client_free_reply(&rep->base);
    return rc;
}

// Checks the arguments of a call that takes a job id.
static int
check_id_call(
    anvil_client *c, const char *id, const char *fn, struct anvil_error *err)
{
    int rc = client_check(c, fn, err);
    if (rc == ANVIL_OK)
        rc = client_check_id(id, "job id", fn, err);
    return rc;
}

// Replaces the job at out (a struct anvil_job **) with the reply's job.
static int
take_job(const ProtobufCMessage *rep, const char *method, void *out,
    struct anvil_error *err)
{
    struct anvil_job     **job = out;
    Anvil__V1__Job *const *pb  = client_field(rep, "job");
    anvil_job_free(*job);
    *job = NULL;
    return convert_job_new(pb != NULL ? *pb : NULL, method, job, err);
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
    return client_call_take(c, "GetJob", &req.base, 0, take_job, out, err);
}

int
anvil_job_get_by_key(anvil_client *c, const char *key, struct anvil_job **out,
    struct anvil_error *err)
{
    static const char fn[] = "anvil_job_get_by_key";
    int               rc   = client_check_out(c, out, fn, err);
    if (rc == ANVIL_OK)
        rc = client_check_id(key, "key", fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__GetJobRequest req = ANVIL__V1__GET_JOB_REQUEST__INIT;
    req.idempotency_key          = (char *) key;
    return client_call_take(c, "GetJob", &req.base, 0, take_job, out, err);
}

int
anvil_job_retry(anvil_client *c, const char *id, uint32_t max_attempts,
    struct anvil_job **out, struct anvil_error *err)
{
    if (out != NULL)
        *out = NULL;
    int rc = check_id_call(c, id, "anvil_job_retry", err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__RetryJobRequest req = ANVIL__V1__RETRY_JOB_REQUEST__INIT;
    req.id                         = (char *) id;
    req.max_attempts               = max_attempts;
    return client_call_take(c, "RetryJob", &req.base, 0, take_job, out, err);
}

int
anvil_job_cancel(anvil_client *c, const char *id, struct anvil_job **out,
    struct anvil_error *err)
{
    if (out != NULL)
        *out = NULL;
    int rc = check_id_call(c, id, "anvil_job_cancel", err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__CancelJobRequest req = ANVIL__V1__CANCEL_JOB_REQUEST__INIT;
    req.id                          = (char *) id;
    return client_call_take(c, "CancelJob", &req.base, 0, take_job, out, err);
}

static const char *
job_state(const void *out)
{
    const struct anvil_job *const *job = out;
    return anvil_job_state_name(*job != NULL ? (*job)->state : 0);
}

int
anvil_job_wait(anvil_client *c, const char *id, int timeout_ms,
    struct anvil_job **out, struct anvil_error *err)
{
    static const struct client_waiter w
        = { "anvil_job_wait", "job", "job id", "WaitJob", take_job, job_state };
    if (out == NULL)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "anvil_job_wait: out is NULL");
    *out                          = NULL;
    Anvil__V1__WaitJobRequest req = ANVIL__V1__WAIT_JOB_REQUEST__INIT;
    return client_wait(c, &w, id, &req.base, timeout_ms, out, err);
}

// Puts a new list of the reply's jobs at out (a struct anvil_job_list **).
static int
take_jobs(const ProtobufCMessage *rep, const char *method, void *out,
    struct anvil_error *err)
{
    const Anvil__V1__ListJobsResponse *r = (const void *) rep;
    struct anvil_job_list             *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return convert_oom(err, method);
    l->next_cursor = convert_str(r->next_cursor);
    if (r->n_jobs > 0)
        l->jobs = calloc(r->n_jobs, sizeof(*l->jobs));
    if (l->next_cursor == NULL || (r->n_jobs > 0 && l->jobs == NULL))
        goto fail;
    for (; l->n < r->n_jobs; l->n++) {
        if (r->jobs[l->n] == NULL)
            goto fail;
        if (convert_job(&l->jobs[l->n], r->jobs[l->n]) != 0)
            goto fail;
    }
    *(struct anvil_job_list **) out = l;
    return ANVIL_OK;
fail:
    anvil_job_list_free(l);
    return convert_oom(err, method);
}

int
anvil_job_list(anvil_client *c, const struct anvil_job_filter *filter,
    struct anvil_job_list **out, struct anvil_error *err)
{
    int rc = client_check_out(c, out, "anvil_job_list", err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__ListJobsRequest req = ANVIL__V1__LIST_JOBS_REQUEST__INIT;
    if (filter != NULL) {
        req.state    = (Anvil__V1__JobState) filter->state;
        req.type     = (char *) (filter->type ? filter->type : "");
        req.queue    = (char *) (filter->queue ? filter->queue : "");
        req.limit    = filter->limit;
        req.cursor   = (char *) (filter->cursor ? filter->cursor : "");
        req.since_ms = filter->since_ms;
        req.until_ms = filter->until_ms;
    }
    return client_call_take(c, "ListJobs", &req.base, 0, take_jobs, out, err);
}

void
anvil_job_list_free(struct anvil_job_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n; i++)
        convert_job_fini(&list->jobs[i]);
    free(list->jobs);
    free(list->next_cursor);
    free(list);
}

// ---- health ----

// Copies the reply's per-minute counts into h->recent.
static int
recent_from_pb(const Anvil__V1__HealthResponse *rep, struct anvil_health *h)
{
    if (rep->n_recent == 0)
        return 0;
    h->recent = calloc(rep->n_recent, sizeof(*h->recent));
    if (h->recent == NULL)
        return -1;
    for (; h->n_recent < rep->n_recent; h->n_recent++) {
        const Anvil__V1__MinuteCount *pb = rep->recent[h->n_recent];
        struct anvil_minute_count    *m  = &h->recent[h->n_recent];
        if (pb == NULL)
            return -1;
        m->minute_ms = pb->minute_ms;
        m->queue     = convert_str(pb->queue);
        m->type      = convert_str(pb->type);
        m->succeeded = pb->succeeded;
        m->failed    = pb->failed;
        m->retried   = pb->retried;
        if (m->queue == NULL || m->type == NULL) {
            h->n_recent++; // so anvil_health_free() frees this one too
            return -1;
        }
    }
    return 0;
}

// The paused queues and the rate limits.
static int
queues_from_pb(const Anvil__V1__HealthResponse *rep, struct anvil_health *h)
{
    if (convert_strv(
            rep->paused_queues, rep->n_paused_queues, &h->paused_queues)
        != 0)
        return -1;
    h->n_paused_queues = rep->n_paused_queues;
    if (rep->n_queue_limits == 0)
        return 0;
    h->queue_limits = calloc(rep->n_queue_limits, sizeof(*h->queue_limits));
    if (h->queue_limits == NULL)
        return -1;
    for (; h->n_queue_limits < rep->n_queue_limits; h->n_queue_limits++) {
        const Anvil__V1__QueueLimit *pb = rep->queue_limits[h->n_queue_limits];
        struct anvil_queue_limit    *l  = &h->queue_limits[h->n_queue_limits];
        if (pb == NULL || (l->queue = convert_str(pb->queue)) == NULL)
            return -1;
        l->rate_per_second = pb->rate_per_second;
        l->burst           = pb->burst;
        l->tokens          = pb->tokens;
    }
    return 0;
}

static int
keys_from_pb(const Anvil__V1__HealthResponse *rep, struct anvil_health *h)
{
    if (rep->n_busiest_keys == 0)
        return 0;
    h->busiest_keys = calloc(rep->n_busiest_keys, sizeof(*h->busiest_keys));
    if (h->busiest_keys == NULL)
        return -1;
    for (; h->n_busiest_keys < rep->n_busiest_keys; h->n_busiest_keys++) {
        const Anvil__V1__ConcurrencyKeyState *pb
            = rep->busiest_keys[h->n_busiest_keys];
        struct anvil_key_state *k = &h->busiest_keys[h->n_busiest_keys];
        if (pb == NULL)
            return -1;
        k->key     = convert_str(pb->key);
        k->running = pb->running;
        k->waiting = pb->waiting;
        k->limit   = pb->limit;
        if (k->key == NULL) {
            h->n_busiest_keys++; // so anvil_health_free() frees this one too
            return -1;
        }
    }
    return 0;
}

static int
health_from_pb(const Anvil__V1__HealthResponse *rep, struct anvil_health *h)
{
    h->version    = convert_str(rep->version);
    h->uptime_ms  = rep->uptime_ms;
    h->jobs_total = rep->jobs_total;
    if (h->version == NULL)
        return -1;
    h->last_event_seq = rep->last_event_seq;
    if (recent_from_pb(rep, h) != 0 || queues_from_pb(rep, h) != 0
        || keys_from_pb(rep, h) != 0)
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
        d->queue     = convert_str(pb->queue);
        d->type      = convert_str(pb->type);
        d->queued    = pb->queued;
        d->running   = pb->running;
        d->no_worker = pb->no_worker;
        d->scheduled = pb->scheduled;
        d->paused    = pb->paused;
        if (d->queue == NULL || d->type == NULL) {
            h->n_depths++; // so anvil_health_free() frees this one too
            return -1;
        }
    }
    return 0;
}

int
anvil_health_get(
    anvil_client *c, struct anvil_health **out, struct anvil_error *err)
{
    if (out == NULL)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "anvil_health: out is NULL");
    *out   = NULL;
    int rc = client_check(c, "anvil_health", err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__HealthRequest   req = ANVIL__V1__HEALTH_REQUEST__INIT;
    Anvil__V1__HealthResponse *rep;
    rc = client_call(
        c, "Health", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    struct anvil_health *h = calloc(1, sizeof(*h));
    if (h == NULL || health_from_pb(rep, h) != 0) {
        anvil_health_free(h);
        rc = convert_oom(err, "Health");
    } else {
        *out = h;
    }
    client_free_reply(&rep->base);
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
    for (size_t i = 0; i < h->n_recent; i++) {
        free(h->recent[i].queue);
        free(h->recent[i].type);
    }
    free(h->recent);
    convert_strv_free(h->paused_queues, h->n_paused_queues);
    for (size_t i = 0; i < h->n_queue_limits; i++)
        free(h->queue_limits[i].queue);
    free(h->queue_limits);
    for (size_t i = 0; i < h->n_busiest_keys; i++)
        free(h->busiest_keys[i].key);
    free(h->busiest_keys);
    free(h->version);
    free(h);
}
