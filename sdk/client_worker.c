// client_worker.c - the worker calls of anvil.h: Poll, Complete, Fail and
// Heartbeat, and the leases Poll returns. Most programs use them through
// the worker library (anvil/worker.h, sdk/runtime/).
#include "anvil/v1/anvil.pb-c.h"
#include "client_impl.h"
#include "convert.h"
#include "util/error.h"
#include "util/utf8.h"

#include <stdlib.h>
#include <string.h>

static void
lease_fini(struct anvil_lease *l)
{
    convert_job_fini(&l->job);
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
    if (pb == NULL || pb->job == NULL || convert_job(&l->job, pb->job) != 0)
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
        p->step   = convert_str(pr->step);
        p->result = convert_bytes(pr->result, &p->result_len);
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
anvil_lease_list_free(struct anvil_lease_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; list->leases != NULL && i < list->n; i++)
        lease_fini(&list->leases[i]);
    free(list->leases);
    free(list);
}

static int
check_names(
    const char *const *v, size_t n, const char *what, struct anvil_error *err)
{
    if (v == NULL && n > 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "anvil_lease_poll: %s is NULL but n_%s is %zu", what, what, n);
    for (size_t i = 0; i < n; i++) {
        if (v[i] == NULL)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "anvil_lease_poll: %s[%zu] is NULL", what, i);
    }
    return ANVIL_OK;
}

static int
check_poll(anvil_client *c, const struct anvil_poll_req *r,
    struct anvil_lease_list **out, struct anvil_error *err)
{
    static const char fn[] = "anvil_lease_poll";
    int               rc   = client_check(c, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    if (r == NULL || out == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: %s is NULL", fn,
            r == NULL ? "req" : "out");
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
leases_from_pb(const Anvil__V1__PollResponse *rep,
    struct anvil_lease_list **out, struct anvil_error *err)
{
    struct anvil_lease_list *list = calloc(1, sizeof(*list));
    if (list == NULL)
        return convert_oom(err, "Poll");
    if (rep->n_leases > 0) {
        list->leases = calloc(rep->n_leases, sizeof(*list->leases));
        if (list->leases == NULL) {
            free(list);
            return convert_oom(err, "Poll");
        }
    }
    for (; list->n < rep->n_leases; list->n++) {
        if (lease_from_pb(&list->leases[list->n], rep->leases[list->n]) != 0)
            break;
    }
    size_t i = list->n;
    if (i < rep->n_leases) {
        bool nojob = rep->leases[i] == NULL || rep->leases[i]->job == NULL;
        anvil_lease_list_free(list);
        if (nojob)
            return av_error_set(err, ANVIL_INTERNAL,
                "lease %zu of the reply to Poll has no job", i);
        return convert_oom(err, "Poll");
    }
    *out = list;
    return ANVIL_OK;
}

int
anvil_lease_poll(anvil_client *c, const struct anvil_poll_req *r,
    struct anvil_lease_list **out, struct anvil_error *err)
{
    if (out != NULL)
        *out = NULL;
    int rc = check_poll(c, r, out, err);
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
    req.info = (Anvil__V1__WorkerInfo *) client_worker_info(c);
    Anvil__V1__PollResponse *rep;
    rc = client_call(
        c, "Poll", &req.base, r->wait_ms, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    rc = leases_from_pb(rep, out, err);
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

int
anvil_job_complete(anvil_client *c, const char *job_id, uint32_t token,
    const void *result, size_t len, struct anvil_error *err)
{
    static const char fn[] = "anvil_job_complete";
    int               rc   = check_id_call(c, job_id, fn, err);
    if (rc == ANVIL_OK)
        rc = client_check_bytes(result, len, "result", fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__CompleteRequest req = ANVIL__V1__COMPLETE_REQUEST__INIT;
    req.job_id                     = (char *) job_id;
    req.token                      = token;
    req.result.data                = (uint8_t *) result;
    req.result.len                 = len;
    ProtobufCMessage *rep;
    rc = client_call(c, "Complete", &req.base, 0, &rep, err);
    client_free_reply(rep);
    return rc;
}

int
anvil_job_fail(anvil_client *c, const char *job_id, uint32_t token,
    const char *error, bool retryable, enum anvil_job_state *state,
    struct anvil_error *err)
{
    static const char fn[] = "anvil_job_fail";
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
    rc = client_call(c, "Fail", &req.base, 0, (ProtobufCMessage **) &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    if (state != NULL)
        *state = (enum anvil_job_state) rep->state;
    client_free_reply(&rep->base);
    return ANVIL_OK;
}

static int
check_heartbeat(anvil_client *c, const char *worker_id,
    const struct anvil_lease_ref *refs, size_t n, struct anvil_error *err)
{
    static const char fn[] = "anvil_lease_heartbeat";
    int               rc   = client_check(c, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    if (worker_id == NULL || worker_id[0] == '\0')
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "%s: worker_id is not set", fn);
    if (refs == NULL && n > 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: refs is NULL but n is %zu", fn, n);
    for (size_t i = 0; i < n; i++) {
        if (refs[i].job_id == NULL || refs[i].job_id[0] == '\0')
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s: refs[%zu].job_id is not set", fn, i);
        if (refs[i].has_progress
            && !av_progress_valid(
                refs[i].progress_percent, refs[i].progress_message))
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s: refs[%zu] has a progress out of bounds (percent 0..100, "
                "a message of at most %d bytes of UTF-8)",
                fn, i, ANVIL_PROGRESS_MESSAGE_MAX);
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
    Anvil__V1__Progress  *prog = calloc(n > 0 ? n : 1, sizeof(*prog));
    int                   rc;
    if (pbs == NULL || ptrs == NULL || prog == NULL) {
        rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        Anvil__V1__LeaseRef init = ANVIL__V1__LEASE_REF__INIT;
        pbs[i]                   = init;
        pbs[i].job_id            = (char *) refs[i].job_id;
        pbs[i].token             = refs[i].token;
        ptrs[i]                  = &pbs[i];
        if (refs[i].has_progress) {
            anvil__v1__progress__init(&prog[i]);
            prog[i].percent = refs[i].progress_percent;
            prog[i].message = (char *) (refs[i].progress_message != NULL
                    ? refs[i].progress_message
                    : "");
            pbs[i].progress = &prog[i];
        }
    }
    Anvil__V1__HeartbeatRequest req = ANVIL__V1__HEARTBEAT_REQUEST__INIT;
    req.worker_id                   = (char *) worker_id;
    req.leases                      = ptrs;
    req.n_leases                    = n;
    req.info = (Anvil__V1__WorkerInfo *) client_worker_info(c);
    rc       = client_call(
              c, "Heartbeat", &req.base, 0, (ProtobufCMessage **) rep, err);
out:
    free(pbs);
    free(ptrs);
    free(prog);
    return rc;
}

void
anvil_heartbeat_result_free(struct anvil_heartbeat_result *r)
{
    if (r == NULL)
        return;
    convert_strv_free(r->canceled, r->n_canceled);
    convert_strv_free(r->lost, r->n_lost);
    free(r);
}

// *out = the ids of rep, copied. ANVIL_OK or RESOURCE_EXHAUSTED.
static int
heartbeat_result_from_pb(const Anvil__V1__HeartbeatResponse *rep,
    struct anvil_heartbeat_result **out, struct anvil_error *err)
{
    struct anvil_heartbeat_result *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return convert_oom(err, "Heartbeat");
    if (convert_strv(rep->canceled, rep->n_canceled, &r->canceled) != 0)
        goto fail;
    r->n_canceled = rep->n_canceled;
    if (convert_strv(rep->lost, rep->n_lost, &r->lost) != 0)
        goto fail;
    r->n_lost = rep->n_lost;
    *out      = r;
    return ANVIL_OK;
fail:
    anvil_heartbeat_result_free(r);
    return convert_oom(err, "Heartbeat");
}

int
anvil_lease_heartbeat(anvil_client *c, const char *worker_id,
    const struct anvil_lease_ref *refs, size_t n,
    struct anvil_heartbeat_result **out, struct anvil_error *err)
{
    if (out != NULL)
        *out = NULL;
    int rc = check_heartbeat(c, worker_id, refs, n, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__HeartbeatResponse *rep;
    rc = heartbeat_call(c, worker_id, refs, n, &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    if (out != NULL)
        rc = heartbeat_result_from_pb(rep, out, err);
    client_free_reply(&rep->base);
    return rc;
}
