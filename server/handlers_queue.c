// handlers_queue.c - decode/encode of PauseQueue and ResumeQueue (both
// requests and both responses have the same fields, so one pair serves the
// two rpcs: the command kind tells them apart), and of SetQueueLimit.
#include "handlers_impl.h"

#include "util/error.h"

#include <math.h>
#include <stdlib.h>

int
hqueue_decode(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    bool        pause = call->cmd.kind == CMD_QUEUE_PAUSE;
    const char *queue = pause
        ? ((Anvil__V1__PauseQueueRequest *) call->req)->queue
        : ((Anvil__V1__ResumeQueueRequest *) call->req)->queue;
    if (queue[0] == '\0')
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "queue is empty: name the queue to %s", pause ? "pause" : "resume");
    if (handlers_check_name("queue", queue, err) != ANVIL_OK)
        return err->code;
    call->cmd.u.queue.queue = queue;
    return ANVIL_OK;
}

int
hqueue_encode(struct call *call, ProtobufCMessage **out, void **scratch)
{
    const struct cmd_queue *q = &call->cmd.u.queue;
    union {
        Anvil__V1__PauseQueueResponse  pause;
        Anvil__V1__ResumeQueueResponse resume;
    } *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    if (call->cmd.kind == CMD_QUEUE_PAUSE) {
        anvil__v1__pause_queue_response__init(&r->pause);
        r->pause.queue   = (char *) q->queue;
        r->pause.paused  = true;
        r->pause.changed = q->changed;
        *out             = &r->pause.base;
    } else {
        anvil__v1__resume_queue_response__init(&r->resume);
        r->resume.queue   = (char *) q->queue;
        r->resume.paused  = false;
        r->resume.changed = q->changed;
        *out              = &r->resume.base;
    }
    *scratch = r;
    return ANVIL_OK;
}

// Rate limits' bounds (SetQueueLimitRequest).
#define RATE_MIN 0.001
#define RATE_MAX 1000000.0
#define BURST_MAX 1000000u

int
hqueue_decode_limit(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    const Anvil__V1__SetQueueLimitRequest *r
        = (const Anvil__V1__SetQueueLimitRequest *) call->req;
    struct cmd_queue *q = &call->cmd.u.queue;
    if (r->queue[0] == '\0')
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "queue is empty: name the queue to limit");
    if (handlers_check_name("queue", r->queue, err) != ANVIL_OK)
        return err->code;
    double rate = r->rate_per_second;
    if (!isfinite(rate) || rate < 0 || rate > RATE_MAX
        || (rate > 0 && rate < RATE_MIN))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "rate_per_second %g is out of range: give %g to %g starts a "
            "second, or 0 to remove the limit",
            rate, RATE_MIN, RATE_MAX);
    if (rate == 0 && r->burst != 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "burst %u without a rate: rate_per_second 0 removes the limit, "
            "so burst must be 0 too",
            r->burst);
    if (r->burst > BURST_MAX)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "burst %u is too large: at most %u", r->burst, BURST_MAX);
    q->queue = r->queue;
    q->rate  = rate;
    q->burst = r->burst;
    if (rate > 0 && q->burst == 0) // a tenth of a second's worth
        q->burst = rate >= 15 ? (uint32_t) (rate / 10 + 0.5) : 1;
    return ANVIL_OK;
}

int
hqueue_encode_limit(struct call *call, ProtobufCMessage **out, void **scratch)
{
    const struct cmd_queue *q = &call->cmd.u.queue;
    struct {
        Anvil__V1__SetQueueLimitResponse m;
        Anvil__V1__QueueLimit            limit;
    } *r = handlers_alloc(scratch, 1, sizeof(*r));
    if (r == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    anvil__v1__set_queue_limit_response__init(&r->m);
    anvil__v1__queue_limit__init(&r->limit);
    r->limit.queue           = (char *) q->queue;
    r->limit.rate_per_second = q->rate;
    r->limit.burst           = q->burst;
    r->limit.tokens          = q->tokens;
    r->m.limit               = &r->limit;
    r->m.changed             = q->changed;
    *out                     = &r->m.base;
    return ANVIL_OK;
}
