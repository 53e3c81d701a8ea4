// handlers_queue.c - decode/encode of PauseQueue and ResumeQueue. Both
// requests and both responses have the same fields, so one pair serves the
// two rpcs (the command kind tells them apart).
#include "handlers_impl.h"

#include "util/error.h"

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
