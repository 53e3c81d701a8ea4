// events.c - the event stream: every state change jobs.c, flow.c and the
// worker registry make is written here as an event, in the batch's
// transaction (so an event exists exactly when its change does); the
// WatchEvents long-poll; and the per-minute counts of ended jobs that
// Health reports. Engine thread only.
//
// A watcher reads the store from its after_seq: events are not kept in
// memory, so a thousand parked watchers cost their commands only. Each
// batch that wrote events re-reads for every parked watcher before the
// commit (answers go out after it, as every answer does).
#include "engine_impl.h"
#include "util/error.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// A watcher looks at no more than this many rows per read: a filter that
// matches nothing in a long stream answers (with next_seq past them)
// instead of scanning it all in one batch.
#define SCAN_MAX 10000
#define MINUTES_KEPT 15
#define MINUTE_MS 60000
// Rows of (minute, queue, type) kept: past this, new pairs in a minute are
// not counted (the events themselves are all written).
#define MINUTE_ROWS_MAX (MINUTES_KEPT * 64)
#define WORKERS_CHECK_MS 1000

static void
drop_old_minutes(struct engine *e, int64_t minute)
{
    size_t k = 0;
    while (k < e->n_minutes
        && e->minutes[k].minute_ms <= minute - MINUTES_KEPT * MINUTE_MS)
        k++;
    if (k == 0)
        return;
    memmove(
        e->minutes, e->minutes + k, (e->n_minutes - k) * sizeof(*e->minutes));
    e->n_minutes -= k;
}

static struct minute_count *
minute_row(struct engine *e, int64_t now, const char *queue, const char *type)
{
    int64_t minute = now - now % MINUTE_MS;
    drop_old_minutes(e, minute);
    // Rows are in minute order: this minute's are at the end.
    for (size_t i = e->n_minutes; i > 0; i--) {
        struct minute_count *m = &e->minutes[i - 1];
        if (m->minute_ms != minute)
            break;
        if (strcmp(m->queue, queue) == 0 && strcmp(m->type, type) == 0)
            return m;
    }
    if (e->minutes == NULL)
        e->minutes = calloc(MINUTE_ROWS_MAX, sizeof(*e->minutes));
    if (e->minutes == NULL || e->n_minutes == MINUTE_ROWS_MAX)
        return NULL;
    struct minute_count *m = &e->minutes[e->n_minutes++];
    *m                     = (struct minute_count) { .minute_ms = minute };
    snprintf(m->queue, sizeof(m->queue), "%s", queue);
    snprintf(m->type, sizeof(m->type), "%s", type);
    return m;
}

static void
count_minute(struct engine *e, const struct store_new_event *ev)
{
    if ((ev->kind != EV_JOB_SUCCEEDED && ev->kind != EV_JOB_FAILED
            && ev->kind != EV_JOB_RETRIED)
        || ev->queue == NULL || ev->type == NULL)
        return;
    struct minute_count *m = minute_row(e, ev->at, ev->queue, ev->type);
    if (m == NULL)
        return;
    if (ev->kind == EV_JOB_SUCCEEDED)
        m->succeeded++;
    else if (ev->kind == EV_JOB_FAILED)
        m->failed++;
    else
        m->retried++;
}

// ---- the batch's events ----
//
// A command runs in its own savepoint, and SQLite keeps a copy of every
// page a savepoint changes (to roll it back). Written at once, an event
// would have each command's savepoint copy the events table's last pages:
// most of what events cost. So a batch keeps its events here, drops a
// command's when its savepoint is rolled back, and stores them all after
// the last command (events_flush), still in the batch's transaction and
// before any answer leaves.

#define N_TEXT 5 // step, type, queue, worker, message

struct pending_event {
    struct store_new_event ev;          // its strings are in text:
    size_t                 off[N_TEXT]; // offset + 1 in text; 0 = NULL
    size_t                 text_at;     // text's length before them
};

struct event_buf {
    struct pending_event *ev;
    size_t                n, cap;
    char                 *text;
    size_t                len, tcap;
};

static int
grow(void **p, size_t *cap, size_t want, size_t size)
{
    if (want <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < want)
        ncap *= 2;
    void *q = realloc(*p, ncap * size);
    if (q == NULL)
        return -1;
    *p   = q;
    *cap = ncap;
    return 0;
}

// Copies s (NULL stays NULL; a message at most one byte past what the
// store keeps, so that it still cuts at a character) into the text.
static int
keep_text(struct event_buf *eb, const char *s, size_t max, size_t *off)
{
    *off = 0;
    if (s == NULL)
        return 0;
    size_t n = strnlen(s, max);
    if (grow((void **) &eb->text, &eb->tcap, eb->len + n + 1, 1) != 0)
        return -1;
    memcpy(eb->text + eb->len, s, n);
    eb->text[eb->len + n] = '\0';
    *off                  = eb->len + 1;
    eb->len += n + 1;
    return 0;
}

static int
buffer(struct batch *b, const struct store_new_event *ev)
{
    if (b->events == NULL
        && (b->events = calloc(1, sizeof(*b->events))) == NULL)
        return -1;
    struct event_buf *eb = b->events;
    if (grow((void **) &eb->ev, &eb->cap, eb->n + 1, sizeof(*eb->ev)) != 0)
        return -1;
    struct pending_event *p = &eb->ev[eb->n];
    const char *const     t[N_TEXT]
        = { ev->step, ev->type, ev->queue, ev->worker, ev->message };
    p->ev      = *ev;
    p->text_at = eb->len;
    for (int i = 0; i < N_TEXT; i++) {
        size_t max = i == 4 ? EVENT_MESSAGE_MAX + 1 : SIZE_MAX;
        if (keep_text(eb, t[i], max, &p->off[i]) != 0) {
            eb->len = p->text_at;
            return -1;
        }
    }
    eb->n++;
    return 0;
}

int
events_emit(struct engine *e, struct batch *b, struct store_new_event *ev,
    struct anvil_error *err)
{
    if (e->cfg.no_events)
        return ANVIL_OK;
    ev->at = b->now;
    if (buffer(b, ev) != 0)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    return ANVIL_OK;
}

void
events_mark(struct batch *b)
{
    b->ev_mark = b->events != NULL ? b->events->n : 0;
}

void
events_undo(struct batch *b)
{
    struct event_buf *eb = b->events;
    if (eb == NULL || b->ev_mark >= eb->n)
        return;
    eb->len = eb->ev[b->ev_mark].text_at;
    eb->n   = b->ev_mark;
}

static const char *
text_of(const struct event_buf *eb, size_t off)
{
    return off != 0 ? eb->text + off - 1 : NULL;
}

int
events_flush(struct engine *e, struct batch *b, struct anvil_error *err)
{
    struct event_buf *eb = b->events;
    for (size_t i = 0; eb != NULL && i < eb->n; i++) {
        const struct pending_event *p  = &eb->ev[i];
        struct store_new_event      ev = p->ev;
        ev.step                        = text_of(eb, p->off[0]);
        ev.type                        = text_of(eb, p->off[1]);
        ev.queue                       = text_of(eb, p->off[2]);
        ev.worker                      = text_of(eb, p->off[3]);
        ev.message                     = text_of(eb, p->off[4]);
        int rc                         = store_event_append(e->st, &ev, err);
        if (rc != ANVIL_OK)
            return rc;
        count_minute(e, &ev);
    }
    b->events_written = eb != NULL && eb->n > 0;
    if (eb != NULL)
        eb->n = eb->len = 0;
    return ANVIL_OK;
}

void
events_batch_free(struct batch *b)
{
    if (b->events == NULL)
        return;
    free(b->events->ev);
    free(b->events->text);
    free(b->events);
    b->events = NULL;
}

int
events_recent(
    struct engine *e, int64_t now, struct minute_count **out, size_t *n)
{
    drop_old_minutes(e, now - now % MINUTE_MS);
    *out = NULL;
    *n   = 0;
    if (e->n_minutes == 0)
        return ANVIL_OK;
    *out = malloc(e->n_minutes * sizeof(**out));
    if (*out == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    memcpy(*out, e->minutes, e->n_minutes * sizeof(**out));
    *n = e->n_minutes;
    return ANVIL_OK;
}

void
events_free(struct engine *e)
{
    free(e->minutes);
    e->minutes   = NULL;
    e->n_minutes = 0;
}

// ---- workers ----

struct lost_walk {
    struct engine     *e;
    struct batch      *b;
    struct anvil_error err;
    int                rc;
};

// A worker waiting in a parked Poll is there, however long it waits.
static bool
waiting(void *arg, const char *name)
{
    struct lost_walk *w = arg;
    return engine_worker_waiting(w->e, name);
}

static void
lost(void *arg, const char *name)
{
    struct lost_walk *w = arg;
    if (w->rc == ANVIL_OK)
        w->rc = events_worker(w->e, w->b, EV_WORKER_LOST, name, &w->err);
    AV_WARN("worker.lost", "worker=%s", name);
}

int
events_worker(struct engine *e, struct batch *b, int kind, const char *worker,
    struct anvil_error *err)
{
    struct store_new_event ev = { .kind = kind, .worker = worker };
    int                    rc = events_emit(e, b, &ev, err);
    if (rc == ANVIL_OK && kind == EV_WORKER_JOINED && !e->workers_timer) {
        engine_timer_add(e, TIMER_WORKERS, b->now + WORKERS_CHECK_MS, 0, 0);
        e->workers_timer = true;
    }
    return rc;
}

int
events_workers_check(struct engine *e, struct batch *b)
{
    struct lost_walk w = { .e = e, .b = b };
    size_t live = registry_take_lost(e->workers, b->now, waiting, lost, &w);
    if (w.rc != ANVIL_OK)
        return w.rc; // rolled back: the timer fires again
    e->workers_timer = live > 0;
    if (live > 0)
        engine_timer_add(e, TIMER_WORKERS, b->now + WORKERS_CHECK_MS, 0, 0);
    return ANVIL_OK;
}

// ---- WatchEvents ----

// Reads what matches from f.after_seq on; moves after_seq past what was
// looked at. A job's or workflow's events are read along their index, to
// the end (they are few): when fewer than the limit matched, nothing up
// to the newest event is left to look at.
static int
read_events(struct engine *e, struct cmd *c)
{
    struct cmd_events *w     = &c->u.events;
    uint64_t           to    = w->f.after_seq;
    bool               by_id = w->f.job_id != 0 || w->f.workflow_id != 0;
    w->f.scan_max            = by_id ? 0 : SCAN_MAX;
    int rc = store_events_read(e->st, &w->f, &w->events, &w->n, &to, &c->err);
    uint64_t first, last = 0;
    if (rc == ANVIL_OK && by_id && w->n < w->f.limit)
        rc = store_events_bounds(e->st, &first, &last, &c->err);
    if (rc != ANVIL_OK)
        return rc;
    if (last > to)
        to = last;
    w->f.after_seq = to;
    w->next_seq    = to;
    if (to > w->last_seq)
        w->last_seq = to;
    return ANVIL_OK;
}

int
events_watch(struct engine *e, struct batch *b, struct cmd *c)
{
    struct cmd_events *w = &c->u.events;
    uint64_t           first, last;
    if (e->cfg.no_events)
        return av_error_set(
            &c->err, ANVIL_UNAVAILABLE, "events are off (anvild --no-events)");
    int rc = store_events_bounds(e->st, &first, &last, &c->err);
    if (rc != ANVIL_OK)
        return rc;
    if (w->f.after_seq == 0 && w->tail > 0)
        w->f.after_seq = last > w->tail ? last - w->tail : 0;
    if (w->f.after_seq > last) {
        // Past the newest event: a consumer of another database. Say so,
        // and go on from the newest.
        w->missed      = true;
        w->f.after_seq = last;
    } else if (first != 0 ? w->f.after_seq + 1 < first
                          : w->f.after_seq < last) {
        w->missed = true; // retention deleted what came next
    }
    w->first_seq = first;
    w->last_seq  = last;
    rc           = read_events(e, c);
    // Nothing yet, and nothing more to look at: wait for a write.
    if (rc != ANVIL_OK || w->n > 0 || w->timeout_ms == 0 || w->next_seq < last)
        return rc;
    engine_park(e, &e->parked_events, c, b->now + w->timeout_ms);
    return ENGINE_PARKED;
}

void
events_wake(struct engine *e, struct batch *b)
{
    for (struct cmd **pp = &e->parked_events; *pp != NULL;) {
        struct cmd *c  = *pp;
        int         rc = read_events(e, c);
        if (rc == ANVIL_OK && c->u.events.n == 0) {
            pp = &c->next;
            continue;
        }
        *pp         = c->next;
        c->err.code = rc;
        engine_list_push(&b->reply, c);
    }
}
