// client_queue.c - pausing and resuming a queue (PauseQueue and
// ResumeQueue) and its rate limit (SetQueueLimit).
#include "anvil/v1/anvil.pb-c.h"
#include "client_impl.h"

// Runs PauseQueue (pause) or ResumeQueue on queue; *changed (may be NULL)
// tells whether the queue's state changed.
static int
set_paused(anvil_client *c, const char *queue, bool pause, bool *changed,
    const char *fn, struct anvil_error *err)
{
    if (changed != NULL)
        *changed = false;
    int rc = client_check(c, fn, err);
    if (rc == ANVIL_OK)
        rc = client_check_id(queue, "queue", fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__PauseQueueRequest  preq = ANVIL__V1__PAUSE_QUEUE_REQUEST__INIT;
    Anvil__V1__ResumeQueueRequest rreq = ANVIL__V1__RESUME_QUEUE_REQUEST__INIT;
    preq.queue                         = (char *) queue;
    rreq.queue                         = (char *) queue;
    ProtobufCMessage *rep              = NULL;
    rc = client_call(c, pause ? "PauseQueue" : "ResumeQueue",
        pause ? &preq.base : &rreq.base, 0, &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    const protobuf_c_boolean *ch = client_field(rep, "changed");
    if (changed != NULL && ch != NULL)
        *changed = *ch;
    client_free_reply(rep);
    return ANVIL_OK;
}

int
anvil_queue_pause(
    anvil_client *c, const char *queue, bool *changed, struct anvil_error *err)
{
    return set_paused(c, queue, true, changed, "anvil_queue_pause", err);
}

int
anvil_queue_resume(
    anvil_client *c, const char *queue, bool *changed, struct anvil_error *err)
{
    return set_paused(c, queue, false, changed, "anvil_queue_resume", err);
}

int
anvil_queue_limit(anvil_client *c, const char *queue, double rate_per_second,
    uint32_t burst, uint32_t *burst_set, bool *changed, struct anvil_error *err)
{
    if (changed != NULL)
        *changed = false;
    if (burst_set != NULL)
        *burst_set = 0;
    int rc = client_check(c, "anvil_queue_limit", err);
    if (rc == ANVIL_OK)
        rc = client_check_id(queue, "queue", "anvil_queue_limit", err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__SetQueueLimitRequest req
        = ANVIL__V1__SET_QUEUE_LIMIT_REQUEST__INIT;
    req.queue             = (char *) queue;
    req.rate_per_second   = rate_per_second;
    req.burst             = burst;
    ProtobufCMessage *rep = NULL;
    rc = client_call(c, "SetQueueLimit", &req.base, 0, &rep, err);
    if (rc != ANVIL_OK)
        return rc;
    const Anvil__V1__SetQueueLimitResponse *r
        = (const Anvil__V1__SetQueueLimitResponse *) rep;
    if (changed != NULL)
        *changed = r->changed;
    if (burst_set != NULL && r->limit != NULL)
        *burst_set = r->limit->burst;
    client_free_reply(rep);
    return ANVIL_OK;
}
