// handlers_events.c - WatchEvents: the filter's checks, and the events'
// wire form.
#include "handlers_impl.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_EVENTS_LIMIT 100
#define MAX_EVENTS_LIMIT 1000
#define MAX_EVENTS_TAIL 100000

static int
decode_filter(const Anvil__V1__WatchEventsRequest *r,
    struct store_event_filter *f, struct anvil_error *err)
{
    if (r->job_id[0] != '\0' && job_id_parse(r->job_id, &f->job_id) != 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "job_id '%.64s' is not a job id (job ids look like j42)",
            r->job_id);
    if (r->workflow_id[0] != '\0'
        && workflow_id_parse(r->workflow_id, &f->workflow_id) != 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "workflow_id '%.64s' is not a workflow id (workflow ids look "
            "like w7)",
            r->workflow_id);
    if ((r->type[0] && handlers_check_name("type", r->type, err))
        || (r->queue[0] && handlers_check_name("queue", r->queue, err)))
        return err->code;
    f->type  = r->type[0] ? r->type : NULL;
    f->queue = r->queue[0] ? r->queue : NULL;
    for (size_t i = 0; i < r->n_kinds; i++) {
        int k = (int) r->kinds[i];
        if (k < 1 || k > EV_KIND_MAX)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "kinds[%zu] = %d is not an event kind (1 to %d)", i, k,
                EV_KIND_MAX);
        f->kinds |= 1u << k;
    }
    return ANVIL_OK;
}

int
hevents_decode_watch(const struct handler_limits *lim, struct call *call,
    struct anvil_error *err)
{
    (void) lim;
    Anvil__V1__WatchEventsRequest *r
        = (Anvil__V1__WatchEventsRequest *) call->req;
    struct cmd_events *w = &call->cmd.u.events;
    if (r->limit > MAX_EVENTS_LIMIT)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "limit %u is over the maximum of %d events", r->limit,
            MAX_EVENTS_LIMIT);
    if (r->timeout_ms > MAX_WAIT_MS)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "timeout_ms %u is over the limit of %u ms; watch again instead",
            r->timeout_ms, MAX_WAIT_MS);
    if (r->tail > MAX_EVENTS_TAIL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "tail %u is over the limit of %d events", r->tail, MAX_EVENTS_TAIL);
    if (decode_filter(r, &w->f, err) != ANVIL_OK)
        return err->code;
    w->f.after_seq  = r->after_seq;
    w->f.limit      = r->limit ? r->limit : DEFAULT_EVENTS_LIMIT;
    w->tail         = r->tail;
    w->timeout_ms   = r->timeout_ms;
    call->long_poll = r->timeout_ms > 0;
    return ANVIL_OK;
}

// A wire event and the text of its ids.
struct pb_event {
    Anvil__V1__Event    m;
    Anvil__V1__Progress progress;
    char                job[24];
    char                wf[24];
};

static char *
or_empty(char *s)
{
    return s != NULL ? s : "";
}

static void
event_to_pb(const void *from, void *to)
{
    const struct store_event *e = from;
    struct pb_event          *p = to;
    Anvil__V1__Event         *m = &p->m;
    anvil__v1__event__init(m);
    m->seq     = e->seq;
    m->kind    = (Anvil__V1__EventKind) e->kind;
    m->at_ms   = e->at;
    m->step    = or_empty(e->step);
    m->type    = or_empty(e->type);
    m->queue   = or_empty(e->queue);
    m->worker  = or_empty(e->worker);
    m->attempt = e->attempt;
    m->message = or_empty(e->message);
    if (e->has_progress) {
        anvil__v1__progress__init(&p->progress);
        p->progress.percent = e->progress_percent;
        p->progress.message = m->message;
        m->progress         = &p->progress;
    }
    if (e->job_id != 0) {
        job_id_format(e->job_id, p->job, sizeof(p->job));
        m->job_id = p->job;
    }
    if (e->workflow_id != 0) {
        workflow_id_format(e->workflow_id, p->wf, sizeof(p->wf));
        m->workflow_id = p->wf;
    }
}

int
hevents_encode_watch(struct call *call, ProtobufCMessage **out, void **s)
{
    const struct cmd_events        *w = &call->cmd.u.events;
    Anvil__V1__WatchEventsResponse *m = handlers_alloc(s, 1, sizeof(*m));
    void **ev = handlers_list(s, w->events, w->n, sizeof(*w->events),
        sizeof(struct pb_event), event_to_pb);
    if (m == NULL || ev == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    anvil__v1__watch_events_response__init(m);
    m->n_events  = w->n;
    m->events    = (Anvil__V1__Event **) ev;
    m->next_seq  = w->next_seq;
    m->missed    = w->missed;
    m->first_seq = w->first_seq;
    m->last_seq  = w->last_seq;
    *out         = &m->base;
    return ANVIL_OK;
}
