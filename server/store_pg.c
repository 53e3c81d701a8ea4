// store_pg.c - the PostgreSQL backend's connection: parameters, prepared
// statements, results, error mapping, ids, transactions and the ops table.
//
// Durability: COMMIT returns once PostgreSQL has made the transaction as
// durable as the server's synchronous_commit (set by the operator, on by
// default: flushed to the server's WAL, and to synchronous standbys when
// there are some) says; with deferred sync on, store_sync waits for that
// instead (store_pg_sync.c).
//
// Round trips: statements run in libpq's pipeline mode; the writes nobody
// reads an answer of, transaction control and the batch's events are
// queued and go with the next read or COMMIT (store_pg_pipe.c, which also
// says how their failures are reported).
//
// A lost connection fails the call in progress with UNAVAILABLE; the next
// store_begin() reconnects once (PQreset) and prepares the statements
// again, so anvild recovers from a PostgreSQL restart without a restart of
// its own.
#include "store_pg.h"

#include "leader.h"

#include "util/error.h"
#include "util/log.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- results ----

bool
pg_null(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) != 0;
}

int64_t
pg_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    const char *v = PQgetvalue(r, row, col);
    switch (PQgetlength(r, row, col)) {
    case 8: {
        uint64_t x;
        memcpy(&x, v, 8);
        return (int64_t) be64toh(x);
    }
    case 4: {
        uint32_t x;
        memcpy(&x, v, 4);
        return (int32_t) be32toh(x);
    }
    case 2: {
        uint16_t x;
        memcpy(&x, v, 2);
        return (int16_t) be16toh(x);
    }
    default:
        return 0;
    }
}

double
pg_f64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8)
        return 0;
    uint64_t x;
    memcpy(&x, PQgetvalue(r, row, col), 8);
    x = be64toh(x);
    double d;
    memcpy(&d, &x, sizeof(d));
    return d;
}

char *
pg_str(const PGresult *r, int row, int col)
{
    size_t n = (size_t) PQgetlength(r, row, col);
    char  *p = malloc(n + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, PQgetvalue(r, row, col), n); // "" for NULL
    p[n] = '\0';
    return p;
}

uint8_t *
pg_blob(const PGresult *r, int row, int col, size_t *len)
{
    *len = (size_t) PQgetlength(r, row, col);
    return (uint8_t *) pg_str(r, row, col);
}

// ---- errors ----

// Where the connection goes, for messages: the host, port, database and
// user the string gives (libpq's defaults for the rest), never the
// password.
static void
describe(struct pg_store *st, const char *conninfo)
{
    static const char *const keys[]
        = { "host", "hostaddr", "port", "dbname", "user" };
    char             *msg = NULL;
    PQconninfoOption *o   = PQconninfoParse(conninfo, &msg);
    size_t n = (size_t) snprintf(st->where, sizeof(st->where), "PostgreSQL at");
    bool   any = false;
    for (PQconninfoOption *i = o; i != NULL && i->keyword != NULL; i++) {
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            if (strcmp(i->keyword, keys[k]) != 0 || i->val == NULL
                || n >= sizeof(st->where))
                continue;
            n += (size_t) snprintf(st->where + n, sizeof(st->where) - n,
                " %s=%s", keys[k], i->val);
            any = true;
        }
    }
    if (!any)
        snprintf(st->where, sizeof(st->where), "PostgreSQL (libpq defaults)");
    PQfreemem(msg);
    PQconninfoFree(o);
}

// The server's or libpq's message on one line: newlines (libpq writes
// hints on lines of their own) become spaces, the trailing one goes.
static void
trim(char *buf, size_t len, const char *msg)
{
    snprintf(buf, len, "%s", msg != NULL ? msg : "");
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\n' || buf[i] == '\t')
            buf[i] = ' ';
}

int
pg_error(struct pg_store *st, const PGresult *res, struct anvil_error *err,
    const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    char        msg[300];
    trim(msg, sizeof(msg),
        res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res)
                                            : PQerrorMessage(st->conn));
    // A checked write or check found its row changed (PG_CHECKED,
    // store_pg_sql.c): no statement divides otherwise.
    bool changed = state != NULL && strcmp(state, "22012") == 0;
    if (changed)
        snprintf(msg, sizeof(msg), "the row changed outside this server");
    AV_ERR("store.error", "op=\"%s\" sqlstate=%s err=\"%s\"", what,
        state ? state : "-", msg);
    // Class 08 but a protocol violation (08P01), the server shutting down
    // or starting (57P), and a session it ended for idling in a
    // transaction (25P03: a leader stopped mid-batch, leader.h): the
    // connection is gone or going.
    bool lost = PQstatus(st->conn) == CONNECTION_BAD
        || (state != NULL
            && ((strncmp(state, "08", 2) == 0 && strcmp(state, "08P01") != 0)
                || strncmp(state, "57P", 3) == 0
                || strcmp(state, "25P03") == 0));
    // The fence failed (leader.h), or a statement after it in the same
    // aborted transaction (25P02): not applied; the leader has it.
    if (state != NULL && strcmp(state, LEADER_FENCED_STATE) == 0)
        st->fenced = true;
    if (st->fenced && state != NULL
        && (strcmp(state, LEADER_FENCED_STATE) == 0
            || strcmp(state, "25P02") == 0))
        return av_error_set(err, ANVIL_UNAVAILABLE,
            "this anvild is no longer the leader (retry on the leader): %s",
            msg);
    if (lost)
        return av_error_set(err, ANVIL_UNAVAILABLE,
            "lost the connection to %s while %s (anvild reconnects at its "
            "next batch): %s",
            st->where, what, msg);
    if (state != NULL && strcmp(state, "53100") == 0)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED,
            "disk full while %s: free space on the data directory of %s", what,
            st->where);
    if (state != NULL && strncmp(state, "53", 2) == 0)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED,
            "%s is out of resources while %s: %s", st->where, what, msg);
    if (changed)
        return av_error_set(err, ANVIL_INTERNAL,
            "database error while %s: the row changed outside this server",
            what);
    return av_error_set(
        err, ANVIL_INTERNAL, "database error while %s: %s", what, msg);
}

// ---- running statements ----

static int pg_simple_raw(struct pg_store *st, const char *sql,
    struct anvil_error *err, const char *what);

// Sends a BEGIN not sent yet.
static int
flush(struct pg_store *st, struct anvil_error *err)
{
    if (!st->begin_pending)
        return ANVIL_OK;
    st->begin_pending = false;
    char sql[96];
    snprintf(sql, sizeof(sql), "BEGIN; %s", st->fence);
    return pg_simple_raw(st, sql, err, "starting a transaction");
}

// The failure seam (store_hook_step, store.h): ANVIL_OK, or the failure
// it injects before statement sid runs (which then does not run).
int
pg_injected(int sid, struct anvil_error *err, const char *what)
{
    int h = store_hook_step != NULL ? store_hook_step(sid) : 0;
    if (h == 0)
        return ANVIL_OK;
    if (h == ANVIL_RESOURCE_EXHAUSTED)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED,
            "disk full while %s: free space on the database server", what);
    return av_error_set(
        err, ANVIL_INTERNAL, "database error while %s: injected failure", what);
}

static bool
ok(const PGresult *r)
{
    ExecStatusType s = PQresultStatus(r);
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

static char *
stmt_name(char *buf, size_t len, int sid)
{
    snprintf(buf, len, "a%d", sid);
    return buf;
}

// Sent after whatever is queued, in the same round trip.
int
pg_query(struct pg_store *st, int sid, const struct pg_params *p,
    PGresult **out, struct anvil_error *err, const char *what)
{
    int rc = pg_pipe_check(st, err);
    if (rc == ANVIL_OK)
        rc = pg_injected(sid, err, what);
    if (rc == ANVIL_OK)
        rc = pg_cmd_protect(st, err);
    if (rc == ANVIL_OK)
        rc = pg_pipe_send(st, sid, p, err, what);
    return rc != ANVIL_OK ? rc : pg_pipe_sync(st, out, err, what);
}

int
pg_exec(struct pg_store *st, int sid, const struct pg_params *p,
    struct anvil_error *err, const char *what)
{
    PGresult *r  = NULL;
    int       rc = pg_query(st, sid, p, &r, err, what);
    if (rc != ANVIL_OK)
        return rc;
    st->changes = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return ANVIL_OK;
}

int
pg_update_one(struct pg_store *st, int sid, const struct pg_params *p,
    struct anvil_error *err, const char *what)
{
    int rc = pg_exec(st, sid, p, err, what);
    if (rc == ANVIL_OK && st->changes == 0)
        return ANVIL_NOT_FOUND;
    return rc;
}

int
pg_find_id(struct pg_store *st, int sid, const struct pg_params *p,
    int64_t *out, struct anvil_error *err, const char *what)
{
    PGresult *r  = NULL;
    int       rc = pg_query(st, sid, p, &r, err, what);
    if (rc != ANVIL_OK)
        return rc;
    rc = PQntuples(r) > 0 ? ANVIL_OK : ANVIL_NOT_FOUND;
    if (rc == ANVIL_OK)
        *out = pg_i64(r, 0, 0);
    PQclear(r);
    return rc;
}

int
pg_read_ids(struct pg_store *st, int sid, const struct pg_params *p,
    int64_t **ids, size_t *n, struct anvil_error *err, const char *what)
{
    PGresult *r  = NULL;
    int       rc = pg_query(st, sid, p, &r, err, what);
    if (rc != ANVIL_OK)
        return rc;
    size_t   cnt = (size_t) PQntuples(r);
    int64_t *out = NULL;
    if (cnt > 0 && (out = malloc(cnt * sizeof(*out))) == NULL) {
        PQclear(r);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (size_t i = 0; i < cnt; i++)
        out[i] = pg_i64(r, (int) i, 0);
    PQclear(r);
    *ids = out;
    *n   = cnt;
    return ANVIL_OK;
}

int
pg_each_row(struct pg_store *st, int sid, const struct pg_params *p,
    int (*fn)(void *arg, const PGresult *r), void *arg, struct anvil_error *err,
    const char *what)
{
    int rc = pg_pipe_check(st, err);
    if (rc == ANVIL_OK)
        rc = pg_injected(sid, err, what);
    if (rc == ANVIL_OK)
        rc = pg_cmd_protect(st, err);
    if (rc == ANVIL_OK)
        rc = pg_pipe_end(st, false, err, what);
    if (rc == ANVIL_OK)
        rc = flush(st, err);
    if (rc != ANVIL_OK)
        return rc;
    char name[16];
    if (!PQsendQueryPrepared(st->conn, stmt_name(name, sizeof(name), sid),
            p ? p->n : 0, p ? p->values : NULL, p ? p->lengths : NULL,
            p ? p->formats : NULL, 1))
        return pg_error(st, NULL, err, what);
    (void) PQsetSingleRowMode(st->conn); // else one result of every row
    int       code = ANVIL_OK, stop = 0;
    PGresult *r;
    while ((r = PQgetResult(st->conn)) != NULL) {
        ExecStatusType s = PQresultStatus(r);
        if (s == PGRES_SINGLE_TUPLE) {
            for (int i = 0; stop == 0 && i < PQntuples(r); i++)
                stop = fn(arg, r);
        } else if (s != PGRES_TUPLES_OK && code == ANVIL_OK) {
            code = pg_error(st, r, err, what);
        }
        PQclear(r);
    }
    if (code == ANVIL_OK && stop != 0)
        code = av_error_set(err, stop, "%s: out of memory", what);
    return code;
}

int
pg_simple(struct pg_store *st, const char *sql, struct anvil_error *err,
    const char *what)
{
    int rc = pg_cmd_protect(st, err);
    if (rc == ANVIL_OK)
        rc = flush(st, err);
    pg_briefs_forget(st); // SQL text may write anything
    return rc != ANVIL_OK ? rc : pg_simple_raw(st, sql, err, what);
}

static int
pg_simple_raw(struct pg_store *st, const char *sql, struct anvil_error *err,
    const char *what)
{
    int rc = pg_pipe_end(st, false, err, what);
    if (rc != ANVIL_OK)
        return rc;
    PGresult *r = PQexec(st->conn, sql);
    if (r == NULL || !ok(r))
        rc = pg_error(st, r, err, what);
    PQclear(r);
    return rc;
}

int
pg_control(struct pg_store *st, int id, const char *sql,
    struct anvil_error *err, const char *what)
{
    int rc = pg_injected(id, err, what);
    return rc != ANVIL_OK ? rc : pg_simple(st, sql, err, what);
}

int
pg_raise_hwm(
    struct pg_store *st, const char *key, int64_t next, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, key);
    pg_p_i64(&p, next - 1);
    return pg_exec(st, PG_META_HWM, &p, err, "recording the highest id");
}

// ---- connection ----

static int
prepare_all(struct pg_store *st, struct anvil_error *err)
{
    for (int i = 0; i < PG_STMT_COUNT; i++) {
        char      name[16];
        PGresult *r  = PQprepare(st->conn, stmt_name(name, sizeof(name), i),
             pg_stmt_sql[i], 0, NULL);
        int       rc = r != NULL && ok(r)
                  ? ANVIL_OK
                  : pg_error(st, r, err, "preparing statements");
        PQclear(r);
        if (rc != ANVIL_OK)
            return rc;
    }
    return ANVIL_OK;
}

// Ids, as the SQLite backend hands them out (store_sqlite.c, next_ids):
// the engine thread counts job and workflow ids in memory and inserts them
// explicitly, so a rolled-back insert leaves a gap and never a reuse, and
// each sweep first raises the table's high-water mark in meta. The
// counters restart at max(max(id), mark) + 1. Event seqs come from a
// sequence instead (store_pg_events.c).
static int
next_ids(struct pg_store *st, struct anvil_error *err)
{
    static const char sql[]
        = "SELECT GREATEST(coalesce((SELECT max(id) FROM jobs), 0), "
          "(SELECT value FROM meta WHERE key = '" PG_HWM_JOBS "')), "
          "GREATEST(coalesce((SELECT max(id) FROM workflows), 0), "
          "(SELECT value FROM meta WHERE key = '" PG_HWM_FLOWS "'))";
    PGresult *r  = PQexecParams(st->conn, sql, 0, NULL, NULL, NULL, NULL, 1);
    int       rc = ANVIL_OK;
    if (r != NULL && ok(r) && PQntuples(r) == 1) {
        st->next_job_id = pg_i64(r, 0, 0) + 1;
        st->next_wf_id  = pg_i64(r, 0, 1) + 1;
    } else {
        rc = pg_error(st, r, err, "reading the highest ids");
    }
    PQclear(r);
    return rc;
}

static int
connect_db(struct pg_store *st, const char *conninfo, struct anvil_error *err)
{
    st->conn = PQconnectdb(conninfo);
    if (st->conn == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    if (PQstatus(st->conn) != CONNECTION_OK) {
        char msg[300];
        trim(msg, sizeof(msg), PQerrorMessage(st->conn));
        return av_error_set(err, ANVIL_UNAVAILABLE,
            "cannot connect to %s (is it running? is --store right?): %s",
            st->where, msg);
    }
    // Messages in one form whatever the server's locale.
    return pg_simple(st,
        "SET client_min_messages = warning; SET lc_messages = 'C'; "
        "SET TIME ZONE 'UTC'",
        err, "configuring the session");
}

static void fill_ops(struct store_ops *o);
static void pg_close(struct store *base);

static void
ignore_notice(void *arg, const char *msg)
{
    (void) arg;
    (void) msg;
}

int
store_open_pg(const char *conninfo, struct store **out, struct anvil_error *err)
{
    struct pg_store *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    fill_ops(&st->ops);
    st->base.ops = &st->ops;
    describe(st, conninfo);
    pthread_mutex_init(&st->sync_lock, NULL);
    st->conninfo = strdup(conninfo);
    if (st->conninfo == NULL || pg_hold_open(st) != 0 || pg_merge_open(st) != 0
        || pg_briefs_open(st) != 0) {
        free(st->conninfo);
        free(st->held);
        pg_merge_close(st);
        free(st);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    int rc = connect_db(st, conninfo, err);
    if (rc == ANVIL_OK)
        PQsetNoticeProcessor(st->conn, ignore_notice, NULL);
    if (rc == ANVIL_OK)
        rc = pg_migrate(st, err);
    if (rc == ANVIL_OK)
        rc = next_ids(st, err);
    if (rc == ANVIL_OK)
        rc = prepare_all(st, err);
    if (rc != ANVIL_OK) {
        pg_close(&st->base);
        return rc;
    }
    AV_INFO("store.open", "backend=postgresql server=\"%s\" version=%d",
        st->where, PQserverVersion(st->conn));
    *out = &st->base;
    return ANVIL_OK;
}

static void
pg_close(struct store *base)
{
    struct pg_store *st = pg(base);
    PQfinish(st->conn);
    pg_sync_close(st);
    pg_briefs_close(st);
    pg_evbuf_free(st);
    pg_merge_close(st);
    pg_hold_drop(st);
    free(st->held);
    st->held = NULL;
    free(st);
}

// ---- transactions ----

// A connection lost since the last call is opened again (same conninfo),
// with its statements prepared again; only between transactions.
static int
reconnect(struct pg_store *st, struct anvil_error *err)
{
    PQreset(st->conn);
    if (PQstatus(st->conn) != CONNECTION_OK)
        return pg_error(st, NULL, err, "reconnecting");
    pg_pipe_reset(st);
    pg_briefs_forget(st);
    PQsetNoticeProcessor(st->conn, ignore_notice, NULL);
    int rc = pg_simple(st,
        "SET client_min_messages = warning; SET lc_messages = 'C'; "
        "SET TIME ZONE 'UTC'",
        err, "configuring the session");
    if (rc == ANVIL_OK && atomic_load(&st->deferred))
        rc = pg_simple(
            st, "SET synchronous_commit = off", err, "configuring the session");
    if (rc == ANVIL_OK)
        rc = prepare_all(st, err);
    if (rc == ANVIL_OK)
        AV_INFO("store.reconnected", "server=\"%s\"", st->where);
    return rc;
}

static int
pgs_begin(struct store *base, struct anvil_error *err)
{
    struct pg_store *st = pg(base);
    if (st->fenced) // deposed: nothing more is written (leader.h)
        return av_error_set(err, ANVIL_UNAVAILABLE,
            "this anvild is no longer the leader; retry on the leader");
    if (PQstatus(st->conn) == CONNECTION_BAD) {
        int rc = reconnect(st, err);
        if (rc != ANVIL_OK)
            return rc;
    }
    if (st->piped) { // a pipeline a failure left: its answers go
        struct anvil_error ignored = { 0 };
        (void) pg_pipe_end(st, true, &ignored, "starting a transaction");
    }
    pg_pipe_reset(st);
    int rc = pg_injected(PG_BEGIN, err, "starting a transaction");
    // A transaction left open by a rollback that failed goes first.
    if (rc == ANVIL_OK && PQtransactionStatus(st->conn) != PQTRANS_IDLE) {
        AV_WARN("store.stale_transaction", "server=\"%s\"", st->where);
        pg_briefs_forget(st);
        rc = pg_simple_raw(st, "ROLLBACK", err, "starting a transaction");
    }
    st->begin_pending   = rc == ANVIL_OK;
    st->in_tx           = rc == ANVIL_OK;
    st->release_pending = false;
    return rc;
}

static int
pgs_commit(struct store *base, struct anvil_error *err)
{
    struct pg_store *st = pg(base);
    int              rc = pg_injected(PG_COMMIT, err, "committing");
    if (rc != ANVIL_OK)
        return rc;
    st->release_pending = false; // COMMIT releases it
    st->cmd_open        = false;
    st->in_tx           = false;
    st->rid_valid       = false;
    // Nothing sent, queued or held: nothing to commit.
    if (st->begin_pending && st->evbuf.n == 0 && st->n_held == 0) {
        st->begin_pending = false;
        return ANVIL_OK;
    }
    // COMMIT goes with the answers still queued (the batch's events).
    // COMMIT of a transaction that failed answers ROLLBACK, not an error.
    PGresult *r = NULL;
    rc          = pg_pipe_check(st, err);
    if (rc == ANVIL_OK && st->sp_pending) // a command never released
        rc = pg_cmd_release(st, err);
    if (rc == ANVIL_OK)
        rc = pg_pipe_sql_send(st, "COMMIT", err, "committing");
    if (rc == ANVIL_OK)
        rc = pg_pipe_sync(st, &r, err, "committing");
    if (rc == ANVIL_OK)
        rc = pg_pipe_end(st, false, err, "committing");
    if (rc == ANVIL_OK && strcmp(PQcmdStatus(r), "ROLLBACK") == 0 && st->fenced)
        rc = av_error_set(err, ANVIL_UNAVAILABLE,
            "this anvild is no longer the leader; retry on the leader");
    else if (rc == ANVIL_OK && strcmp(PQcmdStatus(r), "ROLLBACK") == 0)
        rc = av_error_set(err, ANVIL_INTERNAL,
            "committing: the transaction had failed and was rolled back");
    PQclear(r);
    if (rc != ANVIL_OK)
        pg_briefs_forget(st);
    else
        pg_sync_committed(st);
    return rc;
}

static int
pgs_rollback(struct store *base, struct anvil_error *err)
{
    struct pg_store *st = pg(base);
    st->release_pending = false;
    st->in_tx           = false;
    // The queued answers go unread: all of it is rolled back.
    pg_evbuf_drop(st);
    pg_merge_drop(st);
    pg_hold_drop(st);
    if (st->begin_pending) { // nothing was sent
        st->begin_pending = false;
        st->sp_pending    = false;
        return ANVIL_OK;
    }
    st->sp_pending             = false;
    struct anvil_error ignored = { 0 };
    (void) pg_pipe_end(st, true, &ignored, "rolling back");
    pg_pipe_reset(st);
    pg_briefs_forget(st); // leases rolled back
    PGTransactionStatusType t = PQtransactionStatus(st->conn);
    if (t == PQTRANS_IDLE || t == PQTRANS_UNKNOWN)
        return ANVIL_OK; // none open, or the connection (and it) is gone
    return pg_control(st, PG_ROLLBACK, "ROLLBACK", err, "rolling back");
}

static int
pgs_savepoint(struct store *base, struct anvil_error *err)
{
    struct pg_store *st = pg(base);
    int              rc = pg_injected(PG_SAVEPOINT, err, "opening a savepoint");
    if (rc != ANVIL_OK)
        return rc;
    if (pg_pipe_check(st, err) != ANVIL_OK)
        return err->code; // Sent with the command's first read, if it has one,
                          // else never
    // (store_pg_pipe.c, pg_cmd_protect).
    pg_hold_drop(st);
    st->sp_pending = true;
    st->sp_sent    = false;
    st->epoch++;
    st->cmd_open = true;
    return ANVIL_OK;
}

static int
pgs_release(struct store *base, struct anvil_error *err)
{
    struct pg_store *st = pg(base);
    int              rc = pg_injected(PG_RELEASE, err, "releasing a savepoint");
    if (rc != ANVIL_OK) { // as before: the command stays open, undone next
        st->release_pending = st->sp_sent;
        st->cmd_open        = false;
        return rc;
    }
    return pg_cmd_release(st, err);
}

static int
pgs_rollback_savepoint(struct store *base, struct anvil_error *err)
{
    // The command's own queued statements are rolled back unread; one of
    // an earlier command that failed poisons the transaction (an error
    // here: the engine refuses the batch).
    struct pg_store *st = pg(base);
    if (st->sp_pending) { // nothing of the command was sent: drop it
        pg_hold_drop(st);
        st->sp_pending = false;
        st->cmd_open   = false;
        st->rid_valid  = false;
        pg_briefs_forget(st);
        return pg_pipe_check(st, err);
    }
    int rc = pg_pipe_check(st, err);
    if (rc == ANVIL_OK)
        rc = pg_pipe_end(st, true, err, "rolling back a savepoint");
    st->cmd_open  = false;
    st->rid_valid = false;
    pg_briefs_forget(st); // its leases are undone
    return rc != ANVIL_OK
        ? rc
        : pg_control(st, PG_ROLLBACK_TO, "ROLLBACK TO cmd; RELEASE cmd", err,
            "rolling back a savepoint");
}

// ---- sync: COMMIT, or with deferred sync store_sync (store_pg_sync.c) ----

static int
pgs_set_deferred_sync(struct store *base, bool on, struct anvil_error *err)
{
    return pg_sync_set(pg(base), on, err);
}

static bool
pgs_needs_sync(const struct store *base)
{
    return pg_sync_needed((const struct pg_store *) base);
}

static int
pgs_sync(struct store *base, struct anvil_error *err)
{
    return pg_sync(pg(base), err);
}

static void
fill_ops(struct store_ops *o)
{
    o->name               = "postgresql";
    o->close              = pg_close;
    o->set_deferred_sync  = pgs_set_deferred_sync;
    o->needs_sync         = pgs_needs_sync;
    o->sync               = pgs_sync;
    o->begin              = pgs_begin;
    o->commit             = pgs_commit;
    o->rollback           = pgs_rollback;
    o->savepoint          = pgs_savepoint;
    o->release            = pgs_release;
    o->rollback_savepoint = pgs_rollback_savepoint;
    pg_jobs_ops(o);
    pg_flows_ops(o);
    pg_events_ops(o);
    pg_misc_ops(o);
}
