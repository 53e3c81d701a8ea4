// client_event.c - anvil_event_watch: one WatchEvents long-poll, or a few
// when the caller's timeout is longer than the server's longest poll.
//
// The server parks a WatchEvents until a matching event is written or the
// request's timeout_ms ends, and answers next_seq past every event it looked
// at, matching or not. A long wait is therefore a chain of polls of at most
// CLIENT_WAIT_CHUNK_MS (as client_wait() makes anvil_job_wait), each one
// starting from the previous next_seq, so that events that did not match
// are never looked at twice; it ends at the first reply that has events or
// says events were missed, or when the caller's time is up.
#include "anvil/v1/anvil.pb-c.h"
#include "client_impl.h"
#include "convert.h"
#include "util/clock.h"
#include "util/error.h"

#include <stdlib.h>

void
anvil_event_list_free(struct anvil_event_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n; i++)
        convert_event_fini(&list->events[i]);
    free(list->events);
    free(list);
}

static int
check_filter(
    const struct anvil_event_filter *f, const char *fn, struct anvil_error *err)
{
    if (f->timeout_ms < 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: timeout_ms is negative (%d)", fn, f->timeout_ms);
    if (f->kinds == NULL && f->n_kinds > 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: kinds is NULL but n_kinds is %zu", fn, f->n_kinds);
    return ANVIL_OK;
}

static char *
or_empty(const char *s)
{
    return (char *) (s != NULL ? s : "");
}

// Fills req from f; req->kinds is a new array (free it) when f has kinds.
static int
filter_to_pb(const struct anvil_event_filter *f,
    Anvil__V1__WatchEventsRequest *req, struct anvil_error *err)
{
    req->after_seq   = f->after_seq;
    req->job_id      = or_empty(f->job_id);
    req->workflow_id = or_empty(f->workflow_id);
    req->type        = or_empty(f->type);
    req->queue       = or_empty(f->queue);
    req->limit       = f->limit;
    req->tail        = f->tail;
    if (f->n_kinds == 0)
        return ANVIL_OK;
    // A copy, not a cast: the two enum types need not share a size.
    req->kinds = calloc(f->n_kinds, sizeof(*req->kinds));
    if (req->kinds == NULL)
        return av_error_set(
            err, ANVIL_RESOURCE_EXHAUSTED, "anvil_event_watch: out of memory");
    for (size_t i = 0; i < f->n_kinds; i++)
        req->kinds[i] = (Anvil__V1__EventKind) f->kinds[i];
    req->n_kinds = f->n_kinds;
    return ANVIL_OK;
}

// The timeout of the next poll: what is left until deadline, at most one
// chunk, 0 once it has passed.
static uint32_t
next_chunk(int64_t deadline)
{
    int64_t left = deadline - av_mono_ms();
    if (left <= 0)
        return 0;
    return (
        uint32_t) (left < CLIENT_WAIT_CHUNK_MS ? left : CLIENT_WAIT_CHUNK_MS);
}

// Polls from req->after_seq until a reply is worth returning (see the top
// of this file), then copies it into *out.
static int
watch(anvil_client *c, Anvil__V1__WatchEventsRequest *req, int timeout_ms,
    struct anvil_event_list **out, struct anvil_error *err)
{
    int64_t deadline = av_mono_ms() + timeout_ms;
    for (;;) {
        uint32_t                        chunk = next_chunk(deadline);
        Anvil__V1__WatchEventsResponse *rep;
        req->timeout_ms = chunk;
        int rc          = client_call(c, "WatchEvents", &req->base, chunk,
                     (ProtobufCMessage **) &rep, err);
        if (rc != ANVIL_OK)
            return rc;
        bool done = rep->n_events > 0 || rep->missed || chunk == 0
            || av_mono_ms() >= deadline;
        if (done) {
            if (convert_event_list(rep, out) != 0)
                rc = convert_oom(err, "WatchEvents");
            client_free_reply(&rep->base);
            return rc;
        }
        if (rep->next_seq > req->after_seq)
            req->after_seq = rep->next_seq;
        client_free_reply(&rep->base);
    }
}

int
anvil_event_watch(anvil_client *c, const struct anvil_event_filter *filter,
    struct anvil_event_list **out, struct anvil_error *err)
{
    static const char                      fn[] = "anvil_event_watch";
    static const struct anvil_event_filter none = { 0 };
    const struct anvil_event_filter       *f = filter != NULL ? filter : &none;
    int rc = client_check_out(c, out, fn, err);
    if (rc == ANVIL_OK)
        rc = check_filter(f, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    Anvil__V1__WatchEventsRequest req = ANVIL__V1__WATCH_EVENTS_REQUEST__INIT;
    rc                                = filter_to_pb(f, &req, err);
    if (rc == ANVIL_OK)
        rc = watch(c, &req, f->timeout_ms, out, err);
    free(req.kinds);
    return rc;
}
