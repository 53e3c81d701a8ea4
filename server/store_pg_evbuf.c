// store_pg_evbuf.c - a transaction's events, sent as one INSERT: the
// events store_event_append queues in a row (a batch's, events_flush) are
// collected into one binary array per column and inserted by one
// statement (PG_EVENT_INSERT_MANY, unnest) just before whatever is sent
// next, so they keep their place among the statements (and their seqs
// their order) as if each had been sent alone. The binary arrays
// (pg_arr_*) serve the merged writes too (store_pg_merge.c).
#include "store_pg.h"

#include "util/error.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

// Element types of the columns, as PG_EVENT_INSERT_MANY casts them.
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25

static const unsigned col_oid[PG_EV_NCOLS]
    = { OID_INT8, OID_INT8, OID_INT8, OID_INT8, OID_TEXT, OID_TEXT, OID_TEXT,
          OID_TEXT, OID_INT8, OID_BYTEA, OID_INT8 };

// ---- binary array parameters ----

static int
grow(struct pg_arr *a, size_t more)
{
    if (a->len + more <= a->cap)
        return 0;
    size_t cap = a->cap > 0 ? a->cap : 256;
    while (cap < a->len + more)
        cap *= 2;
    char *p = realloc(a->buf, cap);
    if (p == NULL)
        return -1;
    a->buf = p;
    a->cap = cap;
    return 0;
}

static void
put32(struct pg_arr *a, int32_t v)
{
    uint32_t be = htobe32((uint32_t) v);
    memcpy(a->buf + a->len, &be, 4);
    a->len += 4;
}

static void
put64(struct pg_arr *a, uint64_t v)
{
    uint64_t be = htobe64(v);
    memcpy(a->buf + a->len, &be, 8);
    a->len += 8;
}

void
pg_arr_start(struct pg_arr *a)
{
    a->len = PG_ARR_HEADER; // filled by pg_arr_end
}

int
pg_arr_i64(struct pg_arr *a, int64_t v, bool null)
{
    if (grow(a, 12) != 0)
        return -1;
    put32(a, null ? -1 : 8);
    if (!null)
        put64(a, (uint64_t) v);
    return 0;
}

int
pg_arr_f64(struct pg_arr *a, double v, bool null)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    if (grow(a, 12) != 0)
        return -1;
    put32(a, null ? -1 : 8);
    if (!null)
        put64(a, bits);
    return 0;
}

int
pg_arr_bytes(struct pg_arr *a, const char *v, size_t n, bool null)
{
    if (grow(a, 4 + n) != 0)
        return -1;
    put32(a, null ? -1 : (int32_t) n);
    if (!null && n > 0) {
        memcpy(a->buf + a->len, v, n);
        a->len += n;
    }
    return 0;
}

void
pg_arr_end(struct pg_arr *a, unsigned oid, int n)
{
    size_t len = a->len; // an element's grow() made room for the header
    a->len     = 0;
    put32(a, 1); // one dimension
    put32(a, 1); // may hold NULLs
    put32(a, (int32_t) oid);
    put32(a, n);
    put32(a, 1); // lower bound
    a->len = len;
}

void
pg_arr_free(struct pg_arr *a)
{
    free(a->buf);
    memset(a, 0, sizeof(*a));
}

// ---- the events ----

// NULL or "" (the text columns) and NULL (message) are SQL NULL, as
// pg_p_text_or_null and the single insert bind them.
static int
add_text(struct pg_arr *a, const char *v)
{
    bool null = v == NULL || v[0] == '\0';
    return pg_arr_bytes(a, v, null ? 0 : strlen(v), null);
}

int
pg_evbuf_add(struct pg_store *st, const struct store_new_event *ev,
    size_t message_len, struct anvil_error *err)
{
    struct pg_evbuf *b = &st->evbuf;
    if (b->n == 0)
        for (int i = 0; i < PG_EV_NCOLS; i++)
            pg_arr_start(&b->col[i]);
    int bad = pg_arr_i64(&b->col[0], ev->kind, false)
        | pg_arr_i64(&b->col[1], ev->at, false)
        | pg_arr_i64(&b->col[2], ev->job_id, ev->job_id == 0)
        | pg_arr_i64(&b->col[3], ev->workflow_id, ev->workflow_id == 0)
        | add_text(&b->col[4], ev->step) | add_text(&b->col[5], ev->type)
        | add_text(&b->col[6], ev->queue) | add_text(&b->col[7], ev->worker)
        | pg_arr_i64(&b->col[8], ev->attempt, false)
        | pg_arr_bytes(&b->col[9], ev->message, message_len, message_len == 0)
        | pg_arr_i64(&b->col[10], ev->progress_percent, !ev->has_progress);
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
        pg_arr_free(&st->evbuf.col[i]);
    st->evbuf.n = 0;
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
        pg_arr_end(&b->col[i], col_oid[i], b->n);
        pg_p_blob(&p, b->col[i].buf, b->col[i].len);
    }
    b->n = 0; // sent or not, these are gone: a failure fails the caller
    return pg_pipe_queue(st, PG_EVENT_INSERT_MANY, &p, err, "recording events");
}
