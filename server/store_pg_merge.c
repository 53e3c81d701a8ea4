// store_pg_merge.c - consecutive writes of one statement, sent as one.
//
// A batch writes jobs one row at a time: a SubmitJobs of 32 items is 32
// inserts, and every lease and every report is an UPDATE of its own.
// PostgreSQL spends about as much on a statement's messages and executor
// set-up as on its row, so the writes whose only answer is success (a
// command's writes held and released, or queued: pg_hold_or_queue) are
// merged: a write of a statement that has a merged form (pg_merge_specs,
// store_pg_sql.c) is kept here with the writes of the same statement that
// follow it, and they go as one statement over arrays (unnest) just
// before anything else is sent, so they keep their place among the
// statements. A write alone goes as itself.
//
// Merged, the writes mean what they meant one by one:
// - the rows they must change add up: n leases that must each change one
//   row must change n together, else the statement fails (PG_CHECKED,
//   store_pg_sql.c: "the row changed outside this server");
// - only writes tagged with the same savepoint epoch merge (a tag whose
//   command has ended is no tag), so a failure is the open command's
//   exactly when it would have been;
// - an UPDATE names a job once: a write naming a job already kept sends
//   those first (an UPDATE ... FROM would apply one of the two rows, not
//   both in order);
// - the merged UPDATEs find their jobs by id = ANY(ids) and are planned
//   with sequential scans off (SET LOCAL around each): PostgreSQL caches
//   one plan for a prepared statement, and a plan made while the table
//   was small would otherwise scan the whole table for ever after;
// - a failure to send them (out of memory, a lost connection) poisons the
//   transaction: they may belong to commands already answered.
#include "store_pg.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>

// Element types (pg_type oids) of the kinds of pg_merge_spec.
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
#define OID_FLOAT8 701

static const struct pg_merge_spec *
spec_of(int sid)
{
    for (int i = 0; i < pg_merge_nspecs; i++)
        if (pg_merge_specs[i].single == sid)
            return &pg_merge_specs[i];
    return NULL;
}

int
pg_merge_open(struct pg_store *st)
{
    st->merge.sid  = -1;
    st->merge.rows = calloc(PG_MERGE_MAX, sizeof(*st->merge.rows));
    return st->merge.rows != NULL ? 0 : -1;
}

void
pg_merge_drop(struct pg_store *st)
{
    struct pg_merge *m = &st->merge;
    for (int i = 0; i < m->n; i++)
        pg_held_free(&m->rows[i]);
    m->n   = 0;
    m->sid = -1;
}

void
pg_merge_close(struct pg_store *st)
{
    pg_merge_drop(st);
    free(st->merge.rows);
    st->merge.rows = NULL;
    for (int i = 0; i < PG_MAX_PARAMS; i++)
        pg_arr_free(&st->merge.col[i]);
}

// Whether p's values go into the arrays of sp: one per kind, each
// non-NULL one in the form its kind is bound in (numbers as text, bytea
// binary, text either).
static bool
fits(const struct pg_merge_spec *sp, const struct pg_params *p)
{
    if (p == NULL || (size_t) p->n != strlen(sp->kinds))
        return false;
    for (int i = 0; i < p->n; i++) {
        char k = sp->kinds[i];
        if (p->values[i] == NULL || k == 't')
            continue;
        if ((k == 'b') != (p->formats[i] == 1))
            return false;
    }
    return true;
}

// Whether a write kept names the job p's $1 names (an UPDATE's id).
static bool
names_kept(const struct pg_merge *m, const struct pg_params *p)
{
    if (!spec_of(m->sid)->by_id || p->values[0] == NULL)
        return false;
    for (int i = 0; i < m->n; i++)
        if (m->rows[i].p.values[0] != NULL
            && strcmp(m->rows[i].p.values[0], p->values[0]) == 0)
            return true;
    return false;
}

static int
send_one(struct pg_store *st, int sid, const struct pg_params *p, int epoch,
    struct anvil_error *err, const char *what)
{
    int rc = pg_pipe_send(st, sid, p, err, what);
    return rc == ANVIL_OK ? pg_pipe_note(st, what, epoch, err) : rc;
}

int
pg_merge_queue(struct pg_store *st, int sid, const struct pg_params *p,
    int epoch, struct anvil_error *err, const char *what)
{
    struct pg_merge            *m  = &st->merge;
    const struct pg_merge_spec *sp = spec_of(sid);
    if (sp == NULL || m->rows == NULL || !fits(sp, p))
        return send_one(st, sid, p, epoch, err, what);
    // A tag whose command has ended reads as no command's (read_one), so
    // the writes of a SubmitJobs' first item, queued under its savepoint,
    // merge with the items after it, which are released without one.
    if (m->n > 0 && (!st->cmd_open || m->epoch != st->epoch))
        m->epoch = 0;
    int rc = ANVIL_OK;
    if (m->n > 0 && (m->sid != sid || m->epoch != epoch || names_kept(m, p)))
        rc = pg_merge_send(st, err);
    // BEGIN goes first, as it would before the write itself.
    if (rc == ANVIL_OK)
        rc = pg_pipe_begin(st, err);
    if (rc != ANVIL_OK)
        return rc;
    // What the write may change is forgotten now, as if sent.
    pg_brief_written(st, sid, p);
    if (pg_held_set(&m->rows[m->n], sid, p, what) != 0)
        return av_error_set(
            err, ANVIL_RESOURCE_EXHAUSTED, "%s: out of memory", what);
    if (m->n == 0) {
        m->sid   = sid;
        m->epoch = epoch;
        m->what  = what;
    }
    m->n++;
    return m->n == PG_MERGE_MAX ? pg_merge_send(st, err) : ANVIL_OK;
}

static unsigned
oid_of(char kind)
{
    switch (kind) {
    case 'i':
        return OID_INT8;
    case 'f':
        return OID_FLOAT8;
    case 'b':
        return OID_BYTEA;
    default:
        return OID_TEXT;
    }
}

// Appends parameter i of p to a, as kind (fits() checked its form).
static int
element(struct pg_arr *a, char kind, const struct pg_params *p, int i)
{
    const char *v    = p->values[i];
    bool        null = v == NULL;
    switch (kind) {
    case 'i':
        return pg_arr_i64(a, null ? 0 : strtoll(v, NULL, 10), null);
    case 'f':
        return pg_arr_f64(a, null ? 0 : strtod(v, NULL), null);
    default:
        if (null)
            return pg_arr_bytes(a, v, 0, true);
        return pg_arr_bytes(a, v,
            p->formats[i] == 1 ? (size_t) p->lengths[i] : strlen(v), false);
    }
}

// Sends the n writes kept (n >= 2) as their merged statement.
static int
send_merged(struct pg_store *st, int n, struct anvil_error *err)
{
    struct pg_merge            *m   = &st->merge;
    const struct pg_merge_spec *sp  = spec_of(m->sid);
    int                         bad = 0;
    struct pg_params            p;
    pg_p_init(&p);
    for (int c = 0; sp->kinds[c] != '\0'; c++) {
        struct pg_arr *a = &m->col[c];
        pg_arr_start(a);
        for (int r = 0; r < n; r++)
            bad |= element(a, sp->kinds[c], &m->rows[r].p, c);
        pg_arr_end(a, oid_of(sp->kinds[c]), n);
        pg_p_blob(&p, a->buf, a->len);
    }
    if (bad != 0)
        return av_error_set(
            err, ANVIL_RESOURCE_EXHAUSTED, "%s: out of memory", m->what);
    if (!sp->by_id)
        return send_one(st, sp->many, &p, m->epoch, err, m->what);
    // The UPDATE's plan is made with sequential scans off (see the top).
    int rc = pg_pipe_sql(st, "SET LOCAL enable_seqscan = off", false, err,
        "configuring the transaction");
    if (rc == ANVIL_OK)
        rc = send_one(st, sp->many, &p, m->epoch, err, m->what);
    if (rc == ANVIL_OK)
        rc = pg_pipe_sql(st, "SET LOCAL enable_seqscan TO DEFAULT", false, err,
            "configuring the transaction");
    return rc;
}

int
pg_merge_send(struct pg_store *st, struct anvil_error *err)
{
    struct pg_merge *m = &st->merge;
    int              n = m->n;
    if (n == 0)
        return ANVIL_OK;
    // Sent or not, they are gone (and what sends them sends nothing
    // merged again).
    m->n   = 0;
    int rc = n == 1 ? send_one(st, m->rows[0].sid, &m->rows[0].p, m->epoch, err,
                 m->rows[0].what)
                    : send_merged(st, n, err);
    for (int i = 0; i < n; i++)
        pg_held_free(&m->rows[i]);
    m->sid = -1;
    if (rc != ANVIL_OK && st->in_tx && !st->poisoned) {
        st->poisoned = true;
        av_error_set(&st->poison, err->code, "%s", err->msg);
    }
    return rc;
}
