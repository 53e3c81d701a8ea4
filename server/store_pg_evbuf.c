// store_pg_evbuf.c - a transaction's events, sent as one INSERT: the
// events store_event_append queues in a row (a batch's, events_flush) are
// collected into one binary array per column and inserted by one
// statement (PG_EVENT_INSERT_MANY, unnest) just before whatever is sent
// next, so they keep their place among the statements (and their seqs
// their order) as if each had been sent alone.
#include "store_pg.h"

#include "util/error.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

// Element types of the columns, as PG_EVENT_INSERT_MANY casts them.
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
#define HEADER 20 // ndim, flags, element type, length, lower bound

static const unsigned col_oid[PG_EV_NCOLS]
    = { OID_INT8, OID_INT8, OID_INT8, OID_INT8, OID_TEXT, OID_TEXT, OID_TEXT,
          OID_TEXT, OID_INT8, OID_BYTEA, OID_INT8 };

static int
grow(struct pg_evcol *c, size_t more)
{
    if (c->len + more <= c->cap)
        return 0;
    size_t cap = c->cap > 0 ? c->cap : 256;
    while (cap < c->len + more)
        cap *= 2;
    char *p = realloc(c->buf, cap);
    if (p == NULL)
        return -1;
    c->buf = p;
    c->cap = cap;
    return 0;
}

static void
put32(struct pg_evcol *c, int32_t v)
{
    uint32_t be = htobe32((uint32_t) v);
    memcpy(c->buf + c->len, &be, 4);
    c->len += 4;
}

static int
add_i64(struct pg_evcol *c, int64_t v, bool null)
{
    if (grow(c, 12) != 0)
        return -1;
    put32(c, null ? -1 : 8);
    if (!null) {
        uint64_t be = htobe64((uint64_t) v);
        memcpy(c->buf + c->len, &be, 8);
        c->len += 8;
    }
    return 0;
}

// NULL or "" (the text columns) and NULL (message) are SQL NULL, as
// pg_p_text_or_null and the single insert bind them.
static int
add_bytes(struct pg_evcol *c, const char *v, size_t n, bool null)
{
    if (grow(c, 4 + n) != 0)
        return -1;
    put32(c, null ? -1 : (int32_t) n);
    if (!null && n > 0) {
        memcpy(c->buf + c->len, v, n);
        c->len += n;
    }
    return 0;
}

static int
add_text(struct pg_evcol *c, const char *v)
{
    bool null = v == NULL || v[0] == '\0';
    return add_bytes(c, v, null ? 0 : strlen(v), null);
}

int
pg_evbuf_add(struct pg_store *st, const struct store_new_event *ev,
    size_t message_len, struct anvil_error *err)
{
    struct pg_evbuf *b = &st->evbuf;
    if (b->n == 0)
        for (int i = 0; i < PG_EV_NCOLS; i++)
            b->col[i].len = HEADER; // filled by pg_evbuf_send
    int bad = add_i64(&b->col[0], ev->kind, false)
        | add_i64(&b->col[1], ev->at, false)
        | add_i64(&b->col[2], ev->job_id, ev->job_id == 0)
        | add_i64(&b->col[3], ev->workflow_id, ev->workflow_id == 0)
        | add_text(&b->col[4], ev->step) | add_text(&b->col[5], ev->type)
        | add_text(&b->col[6], ev->queue) | add_text(&b->col[7], ev->worker)
        | add_i64(&b->col[8], ev->attempt, false)
        | add_bytes(&b->col[9], ev->message, message_len, message_len == 0)
        | add_i64(&b->col[10], ev->progress_percent, !ev->has_progress);
    if (bad != 0) {
        pg_evbuf_drop(st);
        return av_error_set(
            err, ANVIL_RESOURCE_EXHAUSTED, "recording an event: out of memory");
    }
    b->n++;
    if (b->n >= PG_EV_MAX)
        return pg_evbuf_send(st, err);
    return ANVIL_OK;
}

void
pg_evbuf_drop(struct pg_store *st)
{
    st->evbuf.n = 0;
}

void
pg_evbuf_free(struct pg_store *st)
{
    for (int i = 0; i < PG_EV_NCOLS; i++)
        free(st->evbuf.col[i].buf);
    memset(&st->evbuf, 0, sizeof(st->evbuf));
}

int
pg_evbuf_send(struct pg_store *st, struct anvil_error *err)
{
    struct pg_evbuf *b = &st->evbuf;
    if (b->n == 0)
        return ANVIL_OK;
    struct pg_params p;
    pg_p_init(&p);
    for (int i = 0; i < PG_EV_NCOLS; i++) {
        struct pg_evcol *c   = &b->col[i];
        size_t           len = c->len;
        c->len               = 0;
        put32(c, 1); // one dimension
        put32(c, 1); // may hold NULLs
        put32(c, (int32_t) col_oid[i]);
        put32(c, b->n);
        put32(c, 1); // lower bound
        c->len = len;
        pg_p_blob(&p, c->buf, c->len);
    }
    b->n = 0; // sent or not, these are gone: a failure fails the caller
    return pg_pipe_queue(st, PG_EVENT_INSERT_MANY, &p, err, "recording events");
}
