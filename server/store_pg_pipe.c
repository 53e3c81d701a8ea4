// store_pg_pipe.c - the PostgreSQL backend's pipeline: statements whose
// only answer is success are queued (libpq pipeline mode) and their
// answers read with the next statement whose answer is needed, so a
// transaction costs one round trip per read and one for COMMIT instead of
// one per statement.
//
// What is queued: BEGIN, SAVEPOINT and RELEASE, the writes whose row count
// nobody reads (pg_defer: inserts, finishing a job, events) and COMMIT.
// What waits for its answer: reads, writes whose row count matters, and
// the rare control statements (ROLLBACK, ROLLBACK TO), which first read
// every queued answer (pg_pipe_end).
//
// Errors: an injected failure (store_hook_step) fails the call itself, as
// before, and the statement is not sent. A queued statement that the
// server refuses is reported by the call that reads its answer:
// - queued inside the command's savepoint that is still open (the command
//   that is running), the error is that command's, as if its own statement
//   had failed: the engine rolls back to its savepoint;
// - queued by an earlier command, or outside any savepoint (BEGIN, a
//   RELEASE, the batch's events), the command it belonged to has already
//   been answered OK in the engine's eyes: the transaction is then
//   poisoned, every later call of this transaction fails with that error
//   (a rollback to a savepoint too, so the engine refuses the whole batch)
//   and COMMIT fails, so nothing of the batch is kept. A statement queued
//   after the failed one never runs (the pipeline is aborted up to the
//   next sync).
// The statements queued are ones the engine has already checked (ids it
// handed out, rows it read in this transaction), so only the server's own
// failures (disk full, a lost connection, a timeout) land there, and
// those refuse the batch either way.
#include "store_pg.h"

#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool
poisoned(struct pg_store *st, struct anvil_error *err)
{
    if (!st->poisoned)
        return false;
    av_error_set(err, st->poison.code, "%s", st->poison.msg);
    return true;
}

int
pg_pipe_check(struct pg_store *st, struct anvil_error *err)
{
    return poisoned(st, err) ? err->code : ANVIL_OK;
}

static int
enter(struct pg_store *st, struct anvil_error *err, const char *what)
{
    if (st->piped)
        return ANVIL_OK;
    if (!PQenterPipelineMode(st->conn))
        return pg_error(st, NULL, err, what);
    st->piped = true;
    return ANVIL_OK;
}

int
pg_pipe_epoch(const struct pg_store *st, bool own)
{
    return own && st->cmd_open ? st->epoch : 0;
}

int
pg_pipe_note(
    struct pg_store *st, const char *what, int epoch, struct anvil_error *err)
{
    struct pg_queued *q = &st->queued[st->n_queued++];
    q->what             = what;
    q->epoch            = epoch;
    if (st->n_queued == PG_QUEUE_MAX)
        return pg_pipe_sync(st, NULL, err, what);
    return ANVIL_OK;
}

static int
note(struct pg_store *st, const char *what, bool own, struct anvil_error *err)
{
    return pg_pipe_note(st, what, pg_pipe_epoch(st, own), err);
}

// What is kept to be sent later goes first: the writes merged, then the
// events.
static int
send_kept(struct pg_store *st, bool events, struct anvil_error *err)
{
    int rc = pg_merge_send(st, err);
    return rc == ANVIL_OK && events ? pg_evbuf_send(st, err) : rc;
}

int
pg_pipe_sql(struct pg_store *st, const char *sql, bool own,
    struct anvil_error *err, const char *what)
{
    int rc = pg_pipe_sql_send(st, sql, err, what);
    return rc != ANVIL_OK ? rc : note(st, what, own, err);
}

int
pg_pipe_begin(struct pg_store *st, struct anvil_error *err)
{
    if (!st->begin_pending)
        return ANVIL_OK;
    st->begin_pending = false;
    int rc = pg_pipe_sql(st, "BEGIN", false, err, "starting a transaction");
    if (rc != ANVIL_OK || st->fence[0] == '\0')
        return rc;
    // The leader's fence (store_pg_fence.c), one statement: its "; " goes.
    char   sql[sizeof(st->fence)];
    size_t n = strlen(st->fence);
    while (n > 0 && (st->fence[n - 1] == ' ' || st->fence[n - 1] == ';'))
        n--;
    snprintf(sql, sizeof(sql), "%.*s", (int) n, st->fence);
    return pg_pipe_sql(st, sql, false, err, "checking the leader's fence");
}

int
pg_pipe_sql_send(struct pg_store *st, const char *sql, struct anvil_error *err,
    const char *what)
{
    int rc = send_kept(st, true, err);
    if (rc == ANVIL_OK)
        rc = enter(st, err, what);
    if (rc == ANVIL_OK
        && !PQsendQueryParams(st->conn, sql, 0, NULL, NULL, NULL, NULL, 1))
        rc = pg_error(st, NULL, err, what);
    return rc;
}

int
pg_pipe_send(struct pg_store *st, int sid, const struct pg_params *p,
    struct anvil_error *err, const char *what)
{
    int rc = pg_pipe_begin(st, err);
    if (rc == ANVIL_OK)
        rc = send_kept(st, sid != PG_EVENT_INSERT_MANY, err);
    if (rc == ANVIL_OK)
        rc = enter(st, err, what);
    if (rc != ANVIL_OK)
        return rc;
    if (pg_stmt_sql[sid][0] == 'D') // a DELETE may take a known job
        st->rid_valid = false;
    pg_brief_written(st, sid, p);
    char name[16];
    snprintf(name, sizeof(name), "a%d", sid);
    if (!PQsendQueryPrepared(st->conn, name, p ? p->n : 0, p ? p->values : NULL,
            p ? p->lengths : NULL, p ? p->formats : NULL, 1))
        return pg_error(st, NULL, err, what);
    return ANVIL_OK;
}

int
pg_pipe_queue(struct pg_store *st, int sid, const struct pg_params *p,
    struct anvil_error *err, const char *what)
{
    int rc = pg_pipe_send(st, sid, p, err, what);
    return rc == ANVIL_OK ? note(st, what, true, err) : rc;
}

int
pg_defer(struct pg_store *st, int sid, const struct pg_params *p,
    struct anvil_error *err, const char *what)
{
    return pg_defer_as(st, sid, sid, p, err, what);
}

int
pg_defer_as(struct pg_store *st, int sid, int seam, const struct pg_params *p,
    struct anvil_error *err, const char *what)
{
    if (!st->in_tx) // autocommit: the answer is the statement's
        return pg_exec(st, sid, p, err, what);
    if (poisoned(st, err))
        return err->code;
    int rc = pg_injected(seam, err, what);
    return rc == ANVIL_OK ? pg_hold_or_queue(st, sid, p, err, what) : rc;
}

static bool
good(ExecStatusType s)
{
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

// Reads one statement's answers; the first failure goes to *rc (with
// *own_err telling whether it is the open command's) unless one is
// there. *keep, when given, receives the good result.
static void
read_one(struct pg_store *st, const char *what, int epoch, PGresult **keep,
    int *rc, bool *own_err, struct anvil_error *err)
{
    PGresult *r;
    while ((r = PQgetResult(st->conn)) != NULL) {
        ExecStatusType s = PQresultStatus(r);
        if (good(s) && keep != NULL && *keep == NULL) {
            *keep = r;
            continue;
        }
        if (!good(s) && s != PGRES_PIPELINE_ABORTED && *rc == ANVIL_OK) {
            *rc      = pg_error(st, r, err, what);
            *own_err = epoch != 0 && epoch == st->epoch && st->cmd_open;
        }
        PQclear(r);
    }
}

int
pg_pipe_sync(struct pg_store *st, PGresult **out, struct anvil_error *err,
    const char *what)
{
    int rc = ANVIL_OK;
    // What is kept goes too (with a read, pg_pipe_send sent it).
    if (out == NULL && (rc = send_kept(st, true, err)) != ANVIL_OK)
        return rc;
    bool own     = true;
    int  n       = st->n_queued;
    st->n_queued = 0;
    if (!PQpipelineSync(st->conn))
        return pg_error(st, NULL, err, what);
    for (int i = 0; i < n && PQstatus(st->conn) == CONNECTION_OK; i++)
        read_one(
            st, st->queued[i].what, st->queued[i].epoch, NULL, &rc, &own, err);
    PGresult *got = NULL;
    if (out != NULL && PQstatus(st->conn) == CONNECTION_OK) {
        read_one(st, what, st->epoch, &got, &rc, &own, err);
        if (got == NULL && rc == ANVIL_OK)
            rc = pg_error(st, NULL, err, what); // aborted with no cause
    }
    PGresult *sync
        = PQstatus(st->conn) == CONNECTION_OK ? PQgetResult(st->conn) : NULL;
    if (sync == NULL || PQresultStatus(sync) != PGRES_PIPELINE_SYNC) {
        if (rc == ANVIL_OK)
            rc = pg_error(st, sync, err, what);
        own = false;
    }
    PQclear(sync);
    if (rc != ANVIL_OK) {
        PQclear(got);
        if (!own && st->in_tx) { // outside, each sync is a transaction
            st->poisoned = true;
            av_error_set(&st->poison, err->code, "%s", err->msg);
        }
        return rc;
    }
    if (out != NULL)
        *out = got;
    return ANVIL_OK;
}

int
pg_pipe_end(struct pg_store *st, bool discard_own, struct anvil_error *err,
    const char *what)
{
    int rc = send_kept(st, true, err);
    if (rc != ANVIL_OK || !st->piped)
        return rc;
    if (st->n_queued > 0) {
        struct anvil_error e = { 0 };
        rc                   = pg_pipe_sync(st, NULL, &e, what);
        if (rc != ANVIL_OK && (!discard_own || st->poisoned))
            av_error_set(err, e.code, "%s", e.msg);
        else
            rc = ANVIL_OK;
    }
    if (PQstatus(st->conn) != CONNECTION_OK || !PQexitPipelineMode(st->conn)) {
        st->piped = PQpipelineStatus(st->conn) != PQ_PIPELINE_OFF;
        return rc != ANVIL_OK ? rc : pg_error(st, NULL, err, what);
    }
    st->piped = false;
    return rc;
}

void
pg_pipe_reset(struct pg_store *st)
{
    st->n_queued = 0;
    pg_evbuf_drop(st);
    pg_merge_drop(st);
    pg_hold_drop(st);
    st->sp_pending = false;
    st->sp_sent    = false;
    st->poisoned   = false;
    st->cmd_open   = false;
    st->in_tx      = false;
    st->rid_valid  = false;
    st->piped      = PQpipelineStatus(st->conn) != PQ_PIPELINE_OFF;
    av_error_clear(&st->poison);
}

// ---- a command's writes held until it shows it needs its savepoint ----
//
// SAVEPOINT and RELEASE cost the server two statements and a
// subtransaction per command; most commands only queue writes (a
// SubmitJobs item's insert, a report's finish) whose failure is read after
// the command ended anyway, when a savepoint could no longer help. So
// store_savepoint sends nothing: the command's writes are held here (with
// copies of their parameters) and
// - at its first read (or statement run the plain way) the SAVEPOINT is
//   queued, then the writes held, then the read: the command is protected
//   as if SAVEPOINT had been sent at once;
// - at its release the writes are queued without a savepoint;
// - at a rollback to its savepoint they are dropped unsent: the command
//   leaves nothing, exactly as ROLLBACK TO would have made it.

int
pg_hold_open(struct pg_store *st)
{
    st->held = calloc(PG_HELD_MAX, sizeof(*st->held));
    return st->held != NULL ? 0 : -1;
}

void
pg_hold_drop(struct pg_store *st)
{
    for (int i = 0; i < st->n_held; i++)
        pg_held_free(&st->held[i]);
    st->n_held = 0;
}

static int
hold(struct pg_store *st, int sid, const struct pg_params *p,
    struct anvil_error *err, const char *what)
{
    if (pg_held_set(&st->held[st->n_held], sid, p, what) != 0)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    st->n_held++;
    if (st->n_held == PG_HELD_MAX)
        return pg_cmd_protect(st, err);
    return ANVIL_OK;
}

// Queues the writes held; own: under the command's savepoint.
static int
unhold(struct pg_store *st, bool own, struct anvil_error *err)
{
    int rc    = ANVIL_OK;
    int epoch = pg_pipe_epoch(st, own);
    for (int i = 0; i < st->n_held; i++) {
        struct pg_held *h = &st->held[i];
        if (rc == ANVIL_OK)
            rc = pg_merge_queue(st, h->sid, &h->p, epoch, err, h->what);
        pg_held_free(h);
    }
    st->n_held = 0;
    return rc;
}

int
pg_cmd_protect(struct pg_store *st, struct anvil_error *err)
{
    if (!st->sp_pending)
        return ANVIL_OK;
    st->sp_pending = false;
    int rc         = pg_pipe_begin(st, err);
    if (rc == ANVIL_OK && st->release_pending)
        rc = pg_pipe_sql(
            st, "RELEASE cmd", false, err, "releasing a savepoint");
    st->release_pending = false;
    if (rc == ANVIL_OK)
        rc = pg_pipe_sql(
            st, "SAVEPOINT cmd", false, err, "opening a savepoint");
    st->sp_sent = rc == ANVIL_OK;
    if (rc == ANVIL_OK)
        return unhold(st, true, err);
    pg_hold_drop(st);
    return rc;
}

int
pg_cmd_release(struct pg_store *st, struct anvil_error *err)
{
    st->cmd_open = false;
    if (st->sp_pending) { // no savepoint was sent: none to release
        st->sp_pending = false;
        return unhold(st, false, err);
    }
    st->release_pending = st->sp_sent;
    st->sp_sent         = false;
    return ANVIL_OK;
}

int
pg_hold_or_queue(struct pg_store *st, int sid, const struct pg_params *p,
    struct anvil_error *err, const char *what)
{
    if (st->sp_pending) {
        // What the statement may change is forgotten now, as if sent.
        if (pg_stmt_sql[sid][0] == 'D')
            st->rid_valid = false;
        pg_brief_written(st, sid, p);
        return hold(st, sid, p, err, what);
    }
    return pg_merge_queue(st, sid, p, pg_pipe_epoch(st, true), err, what);
}

bool
pg_hold_last_is(struct pg_store *st, int sid, int64_t id)
{
    const struct pg_held *last
        = st->n_held > 0 ? &st->held[st->n_held - 1] : NULL;
    return st->sp_pending && last != NULL && last->sid == sid && last->p.n >= 1
        && strtoll(last->p.values[0], NULL, 10) == id;
}

int
pg_hold_fold(struct pg_store *st, int sid, const struct pg_params *front,
    struct anvil_error *err, const char *what)
{
    struct pg_held  *last = &st->held[st->n_held - 1];
    struct pg_params p    = *front;
    for (int i = 0; i < front->n; i++)
        if (front->values[i] == front->num[i])
            p.values[i] = p.num[i];
    for (int i = 1; i < last->p.n; i++)
        pg_p_i64(&p, strtoll(last->p.values[i], NULL, 10));
    pg_held_free(last);
    st->n_held--;
    pg_brief_written(st, sid, &p); // as pg_hold_or_queue does
    return hold(st, sid, &p, err, what);
}
