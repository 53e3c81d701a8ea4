// store_pg_events.c - the event stream of the PostgreSQL backend and the
// sweeps of retention.
//
// Seqs come from the sequence events_seq, which plays the part of the
// SQLite backend's AUTOINCREMENT counter (store_events.c): a value is
// never handed out twice, not when the insert is rolled back (a gap), nor
// after the newest events were deleted, and its last value is what
// store_events_bounds() reports as `last`.
//
// A read walks the rows after after_seq in seq order in pages of at most
// PAGE rows (along a job's or a workflow's index when the filter names
// one), matching the other terms in C as the SQLite backend does, so that
// it knows the highest seq it looked at and scan_max bounds the walk.
#include "store_pg.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>

#define PAGE 512

// The length of message cut to at most EVENT_MESSAGE_MAX bytes, never in
// the middle of a UTF-8 sequence (as store_events.c).
static size_t
message_len(const char *m)
{
    size_t n = strnlen(m, EVENT_MESSAGE_MAX + 1);
    if (n <= EVENT_MESSAGE_MAX)
        return n;
    n = EVENT_MESSAGE_MAX;
    for (int back = 0; back < 3 && n > 0; back++) {
        if (((unsigned char) m[n] & 0xc0) != 0x80)
            break;
        n--;
    }
    return n;
}

static void
event_params(struct pg_params *p, const struct store_new_event *ev)
{
    pg_p_init(p);
    pg_p_i64(p, ev->kind);
    pg_p_i64(p, ev->at);
    if (ev->job_id != 0)
        pg_p_i64(p, ev->job_id);
    else
        pg_p_null(p);
    if (ev->workflow_id != 0)
        pg_p_i64(p, ev->workflow_id);
    else
        pg_p_null(p);
    pg_p_text_or_null(p, ev->step);
    pg_p_text_or_null(p, ev->type);
    pg_p_text_or_null(p, ev->queue);
    pg_p_text_or_null(p, ev->worker);
    pg_p_i64(p, ev->attempt);
    size_t mlen = ev->message != NULL ? message_len(ev->message) : 0;
    if (mlen > 0)
        pg_p_text_len(p, ev->message, mlen);
    else
        pg_p_null(p);
    if (ev->has_progress)
        pg_p_i64(p, ev->progress_percent);
    else
        pg_p_null(p);
}

static int
pgs_event_insert(struct store *base, const struct store_new_event *ev,
    uint64_t *seq, struct anvil_error *err)
{
    struct pg_params p;
    event_params(&p, ev);
    int64_t v  = 0;
    int     rc = pg_find_id(
            pg(base), PG_EVENT_INSERT, &p, &v, err, "recording an event");
    if (rc == ANVIL_NOT_FOUND)
        rc = av_error_set(
            err, ANVIL_INTERNAL, "recording an event: no seq returned");
    if (rc == ANVIL_OK)
        *seq = (uint64_t) v;
    return rc;
}

// Queued: sent with the next read or the COMMIT (store_pg_pipe.c).
static int
pgs_event_append(struct store *base, const struct store_new_event *ev,
    struct anvil_error *err)
{
    struct pg_store *st = pg(base);
    if (st->in_tx) { // collected into one INSERT
        int rc = pg_pipe_check(st, err);
        if (rc == ANVIL_OK)
            rc = pg_injected(PG_EVENT_INSERT, err, "recording an event");
        size_t mlen = ev->message != NULL ? message_len(ev->message) : 0;
        return rc != ANVIL_OK ? rc : pg_evbuf_add(st, ev, mlen, err);
    }
    struct pg_params p;
    event_params(&p, ev);
    return pg_defer(st, PG_EVENT_INSERT, &p, err, "recording an event");
}

static bool
text_is(const PGresult *r, int row, int col, const char *want)
{
    return !pg_null(r, row, col) && strcmp(PQgetvalue(r, row, col), want) == 0;
}

// Whether row i matches what the statement did not filter.
static bool
matches(const PGresult *r, int i, const struct store_event_filter *f)
{
    if (f->kinds != 0) {
        int64_t kind = pg_i64(r, i, 1);
        if (kind < 0 || kind > 31 || (f->kinds & (1u << kind)) == 0)
            return false;
    }
    if (f->job_id != 0 && pg_i64(r, i, 3) != f->job_id)
        return false;
    if (f->workflow_id != 0 && pg_i64(r, i, 4) != f->workflow_id)
        return false;
    if (f->type != NULL && !text_is(r, i, 6, f->type))
        return false;
    if (f->queue != NULL && !text_is(r, i, 7, f->queue))
        return false;
    return true;
}

static char *
str_or_null(const PGresult *r, int i, int col, bool *oom)
{
    if (pg_null(r, i, col))
        return NULL;
    char *p = pg_str(r, i, col);
    if (p == NULL)
        *oom = true;
    return p;
}

static int
read_event(const PGresult *r, int i, struct store_event *e)
{
    bool oom = false;
    *e       = (struct store_event) {
              .seq              = (uint64_t) pg_i64(r, i, 0),
              .kind             = (int) pg_i64(r, i, 1),
              .at               = pg_i64(r, i, 2),
              .job_id           = pg_i64(r, i, 3),
              .workflow_id      = pg_i64(r, i, 4),
              .attempt          = (uint32_t) pg_i64(r, i, 9),
              .has_progress     = !pg_null(r, i, 11),
              .progress_percent = (int32_t) pg_i64(r, i, 11),
    };
    e->step    = str_or_null(r, i, 5, &oom);
    e->type    = str_or_null(r, i, 6, &oom);
    e->queue   = str_or_null(r, i, 7, &oom);
    e->worker  = str_or_null(r, i, 8, &oom);
    e->message = str_or_null(r, i, 10, &oom);
    return oom ? ANVIL_RESOURCE_EXHAUSTED : ANVIL_OK;
}

static int
append(
    const PGresult *r, int i, struct store_event **out, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t              ncap = *cap ? *cap * 2 : 16;
        struct store_event *p    = realloc(*out, ncap * sizeof(*p));
        if (p == NULL)
            return ANVIL_RESOURCE_EXHAUSTED;
        *out = p;
        *cap = ncap;
    }
    int rc = read_event(r, i, &(*out)[*n]);
    (*n)++; // a partial copy too, for store_events_free
    return rc;
}

// Runs one page of the walk: rows after *to, at most `rows` of them.
static int
page(struct pg_store *st, const struct store_event_filter *f, uint64_t after,
    uint32_t rows, PGresult **r, struct anvil_error *err)
{
    int              sid = PG_EVENTS_SCAN;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, (int64_t) after);
    pg_p_i64(&p, rows);
    if (f->job_id != 0) {
        sid = PG_EVENTS_BY_JOB;
        pg_p_i64(&p, f->job_id);
    } else if (f->workflow_id != 0) {
        sid = PG_EVENTS_BY_FLOW;
        pg_p_i64(&p, f->workflow_id);
    }
    return pg_query(st, sid, &p, r, err, "reading events");
}

static int
pgs_events_read(struct store *base, const struct store_event_filter *f,
    struct store_event **out, size_t *n, uint64_t *scanned_to,
    struct anvil_error *err)
{
    if (f->limit == 0)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "reading events: limit must be >= 1");
    struct pg_store    *st  = pg(base);
    struct store_event *ev  = NULL;
    size_t              cnt = 0, cap = 0;
    uint64_t            to = f->after_seq, left = f->scan_max;
    int                 rc   = ANVIL_OK;
    bool                more = true;
    while (rc == ANVIL_OK && more && cnt < f->limit) {
        uint32_t rows = f->scan_max > 0 && left < PAGE ? (uint32_t) left : PAGE;
        PGresult *r   = NULL;
        rc            = page(st, f, to, rows, &r, err);
        if (rc != ANVIL_OK)
            break;
        int got = PQntuples(r);
        for (int i = 0; rc == ANVIL_OK && i < got && cnt < f->limit; i++) {
            to = (uint64_t) pg_i64(r, i, 0);
            left--;
            if (matches(r, i, f) && append(r, i, &ev, &cnt, &cap) != ANVIL_OK)
                rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED,
                    "out of memory reading events");
        }
        PQclear(r);
        more = (uint32_t) got == rows && (f->scan_max == 0 || left > 0);
    }
    if (rc != ANVIL_OK) {
        store_events_free(ev, cnt);
        return rc;
    }
    *out        = ev;
    *n          = cnt;
    *scanned_to = to;
    return ANVIL_OK;
}

static int
pgs_events_bounds(struct store *base, uint64_t *first, uint64_t *last,
    struct anvil_error *err)
{
    PGresult *r  = NULL;
    int       rc = pg_query(pg(base), PG_EVENTS_BOUNDS, NULL, &r, err,
              "reading the event stream's bounds");
    if (rc != ANVIL_OK)
        return rc;
    *first = (uint64_t) pg_i64(r, 0, 0);
    *last  = (uint64_t) pg_i64(r, 0, 1);
    PQclear(r);
    return ANVIL_OK;
}

// ---- retention ----

static int
pgs_sweep_jobs(struct store *base, int64_t before, int limit, int *deleted,
    struct anvil_error *err)
{
    struct pg_store *st = pg(base);
    *deleted            = 0;
    int rc              = pg_raise_hwm(st, PG_HWM_JOBS, st->next_job_id, err);
    if (rc != ANVIL_OK)
        return rc;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, before);
    pg_p_i64(&p, limit);
    rc = pg_exec(st, PG_SWEEP_JOBS, &p, err, "deleting old jobs");
    if (rc == ANVIL_OK)
        *deleted = (int) st->changes;
    return rc;
}

static int
delete_flow(struct pg_store *st, int64_t id, struct anvil_error *err)
{
    const int sids[]
        = { PG_SWEEP_FLOW_EDGES, PG_SWEEP_FLOW_STEPS, PG_SWEEP_FLOW };
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    for (size_t i = 0; i < 3; i++) {
        int rc = pg_exec(st, sids[i], &p, err, "deleting an old workflow");
        if (rc != ANVIL_OK)
            return rc;
    }
    return ANVIL_OK;
}

static int
pgs_sweep_workflows(struct store *base, int64_t before, int limit, int *deleted,
    struct anvil_error *err)
{
    struct pg_store *st = pg(base);
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, before);
    pg_p_i64(&p, limit);
    int64_t *ids = NULL;
    size_t   n   = 0;
    int      rc  = pg_read_ids(
              st, PG_SWEEP_FLOWS, &p, &ids, &n, err, "finding old workflows");
    if (rc == ANVIL_OK && n > 0)
        rc = pg_raise_hwm(st, PG_HWM_JOBS, st->next_job_id, err);
    if (rc == ANVIL_OK && n > 0)
        rc = pg_raise_hwm(st, PG_HWM_FLOWS, st->next_wf_id, err);
    for (size_t i = 0; rc == ANVIL_OK && i < n; i++)
        rc = delete_flow(st, ids[i], err);
    free(ids);
    *deleted = rc == ANVIL_OK ? (int) n : 0;
    return rc;
}

// The oldest events go first, as in store_retention.c: from the lowest
// seq, each row older than `before` or below below_seq, up to limit,
// stopping at the first row that is neither; then one range delete.
static int
pgs_sweep_events(struct store *base, int64_t before, uint64_t below_seq,
    int limit, int *deleted, struct anvil_error *err)
{
    struct pg_store *st = pg(base);
    *deleted            = 0;
    if (limit <= 0)
        return ANVIL_OK;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, limit);
    PGresult *r = NULL;
    int       rc
        = pg_query(st, PG_SWEEP_EVENTS_SCAN, &p, &r, err, "finding old events");
    if (rc != ANVIL_OK)
        return rc;
    int64_t cut = 0;
    int     n   = 0;
    for (; n < PQntuples(r); n++) {
        int64_t seq = pg_i64(r, n, 0);
        if (pg_i64(r, n, 1) >= before && (uint64_t) seq >= below_seq)
            break;
        cut = seq;
    }
    PQclear(r);
    if (n == 0)
        return ANVIL_OK;
    pg_p_init(&p);
    pg_p_i64(&p, cut);
    rc = pg_exec(st, PG_SWEEP_EVENTS, &p, err, "deleting old events");
    if (rc == ANVIL_OK)
        *deleted = (int) st->changes;
    return rc;
}

void
pg_events_ops(struct store_ops *o)
{
    o->event_insert    = pgs_event_insert;
    o->event_append    = pgs_event_append;
    o->events_read     = pgs_events_read;
    o->events_bounds   = pgs_events_bounds;
    o->sweep_jobs      = pgs_sweep_jobs;
    o->sweep_workflows = pgs_sweep_workflows;
    o->sweep_events    = pgs_sweep_events;
}
