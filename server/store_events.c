// store_events.c - the event stream of the SQLite backend: appending an
// event, reading them back in seq order with filters, and the stream's
// bounds. Retention's sweep of old events is in store_retention.c.
//
// A seq comes from the engine thread's counter (st->next_event_seq, see
// next_ids in store_sqlite.c), as job ids do: an insert that is rolled back
// leaves a gap, never a reuse. The table's AUTOINCREMENT keeps the highest
// seq stored in sqlite_sequence, so deleting the newest events and
// reopening does not lower the counter either.
//
// A read walks the rows after after_seq in seq order (along a job's or a
// workflow's index when the filter names one) and matches the other terms
// in C rather than in SQL, so that it knows the highest seq it looked at:
// that is where a filtered read resumes, and scan_max bounds the walk.
#include "store_sqlite.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>

// The length of message cut to at most EVENT_MESSAGE_MAX bytes, never in
// the middle of a UTF-8 sequence: when the byte at the cut continues a
// sequence (10xxxxxx), the cut moves back to that sequence's first byte
// (at most 3 bytes back, so bytes that are not UTF-8 still end the walk).
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

static int
sq_event_insert(struct store *base, const struct store_new_event *ev,
    uint64_t *seq, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s
        = sq_stmt_pair(st, STMT_EVENT_INSERT, st->next_event_seq, ev->kind);
    sq_bind_i64(st, s, 3, ev->at);
    if (ev->job_id != 0)
        sq_bind_i64(st, s, 4, ev->job_id);
    if (ev->workflow_id != 0)
        sq_bind_i64(st, s, 5, ev->workflow_id);
    sq_bind_text_or_null(st, s, 6, ev->step);
    sq_bind_text_or_null(st, s, 7, ev->type);
    sq_bind_text_or_null(st, s, 8, ev->queue);
    sq_bind_text_or_null(st, s, 9, ev->worker);
    sq_bind_i64(st, s, 10, ev->attempt);
    size_t mlen = ev->message != NULL ? message_len(ev->message) : 0;
    if (mlen > 0)
        sq_bind_text_len(st, s, 11, ev->message, mlen);
    if (ev->has_progress)
        sq_bind_i64(st, s, 12, ev->progress_percent);
    int rc = sq_exec(st, STMT_EVENT_INSERT, err, "recording an event");
    if (rc == ANVIL_OK)
        *seq = (uint64_t) st->next_event_seq++;
    return rc;
}

// A copy of a text column, NULL for SQL NULL. Sets *oom when the copy of
// a value fails.
static char *
col_str_or_null(sqlite3_stmt *s, int i, bool *oom)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    if (t == NULL)
        return NULL;
    char *p = strdup((const char *) t);
    if (p == NULL)
        *oom = true;
    return p;
}

// Whether the row under s matches what the statement did not filter.
static bool
matches(sqlite3_stmt *s, const struct store_event_filter *f)
{
    if (f->kinds != 0) {
        int kind = sqlite3_column_int(s, 1);
        if (kind < 0 || kind > 31 || (f->kinds & (1u << kind)) == 0)
            return false;
    }
    if (f->job_id != 0 && sqlite3_column_int64(s, 3) != f->job_id)
        return false;
    if (f->workflow_id != 0 && sqlite3_column_int64(s, 4) != f->workflow_id)
        return false;
    const char *type  = (const char *) sqlite3_column_text(s, 6);
    const char *queue = (const char *) sqlite3_column_text(s, 7);
    if (f->type != NULL && (type == NULL || strcmp(type, f->type) != 0))
        return false;
    if (f->queue != NULL && (queue == NULL || strcmp(queue, f->queue) != 0))
        return false;
    return true;
}

// Copies the row under s into *e; ANVIL_RESOURCE_EXHAUSTED when out of
// memory (e then holds what was copied, for store_events_free).
static int
read_event(sqlite3_stmt *s, struct store_event *e)
{
    bool oom = false;
    *e       = (struct store_event) {
              .seq              = (uint64_t) sqlite3_column_int64(s, 0),
              .kind             = sqlite3_column_int(s, 1),
              .at               = sqlite3_column_int64(s, 2),
              .job_id           = sqlite3_column_int64(s, 3),
              .workflow_id      = sqlite3_column_int64(s, 4),
              .attempt          = (uint32_t) sqlite3_column_int64(s, 9),
              .has_progress     = sqlite3_column_type(s, 11) != SQLITE_NULL,
              .progress_percent = sqlite3_column_int(s, 11),
    };
    e->step    = col_str_or_null(s, 5, &oom);
    e->type    = col_str_or_null(s, 6, &oom);
    e->queue   = col_str_or_null(s, 7, &oom);
    e->worker  = col_str_or_null(s, 8, &oom);
    e->message = col_str_or_null(s, 10, &oom);
    return oom ? ANVIL_RESOURCE_EXHAUSTED : ANVIL_OK;
}

// Takes the statement that walks the rows after f->after_seq in seq order:
// by the job's or the workflow's index when f names one, else by seq.
static int
take_scan(struct sqlite_store *st, const struct store_event_filter *f)
{
    int     sid = STMT_EVENTS_SCAN;
    int64_t id  = 0;
    if (f->job_id != 0) {
        sid = STMT_EVENTS_BY_JOB;
        id  = f->job_id;
    } else if (f->workflow_id != 0) {
        sid = STMT_EVENTS_BY_FLOW;
        id  = f->workflow_id;
    }
    sqlite3_stmt *s = sq_stmt_pair(st, sid, (int64_t) f->after_seq,
        f->scan_max > 0 ? (int64_t) f->scan_max : -1);
    if (id != 0)
        sq_bind_i64(st, s, 3, id);
    return sid;
}

// Appends the row under s to *out, growing it.
static int
append(sqlite3_stmt *s, struct store_event **out, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t              ncap = *cap ? *cap * 2 : 16;
        struct store_event *p    = realloc(*out, ncap * sizeof(*p));
        if (p == NULL)
            return ANVIL_RESOURCE_EXHAUSTED;
        *out = p;
        *cap = ncap;
    }
    int rc = read_event(s, &(*out)[*n]);
    (*n)++; // a partial copy too, for store_events_free
    return rc;
}

static int
sq_events_read(struct store *base, const struct store_event_filter *f,
    struct store_event **out, size_t *n, uint64_t *scanned_to,
    struct anvil_error *err)
{
    if (f->limit == 0)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "reading events: limit must be >= 1");
    struct sqlite_store *st  = sq(base);
    int                  sid = take_scan(st, f);
    sqlite3_stmt        *s   = st->stmt[sid];
    struct store_event  *ev  = NULL;
    size_t               cnt = 0, cap = 0;
    uint64_t             to = f->after_seq;
    int                  rc = SQLITE_DONE, code = ANVIL_OK;
    while (cnt < f->limit && (rc = sq_step(st, sid)) == SQLITE_ROW) {
        to = (uint64_t) sqlite3_column_int64(s, 0);
        if (matches(s, f) && append(s, &ev, &cnt, &cap) != ANVIL_OK) {
            code = av_error_set(
                err, ANVIL_RESOURCE_EXHAUSTED, "out of memory reading events");
            break;
        }
    }
    if (code == ANVIL_OK && cnt < f->limit && rc != SQLITE_DONE)
        code = sq_error(st, err, "reading events");
    sq_reset(st, sid);
    if (code != ANVIL_OK) {
        store_events_free(ev, cnt);
        return code;
    }
    *out        = ev;
    *n          = cnt;
    *scanned_to = to;
    return ANVIL_OK;
}

static int
sq_events_bounds(struct store *base, uint64_t *first, uint64_t *last,
    struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_EVENTS_BOUNDS);
    int                  rc = sq_step(st, STMT_EVENTS_BOUNDS);
    if (rc == SQLITE_ROW) {
        *first = (uint64_t) sqlite3_column_int64(s, 0);
        *last  = (uint64_t) sqlite3_column_int64(s, 1);
    }
    sq_reset(st, STMT_EVENTS_BOUNDS);
    if (rc != SQLITE_ROW)
        return sq_error(st, err, "reading the event stream's bounds");
    return ANVIL_OK;
}

void
sq_events_ops(struct store_ops *o)
{
    o->event_insert  = sq_event_insert;
    o->events_read   = sq_events_read;
    o->events_bounds = sq_events_bounds;
}
