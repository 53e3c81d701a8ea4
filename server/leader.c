// leader.c - the leader lease row (leader.h), on a connection of its own.
//
// All times are the database's (clock_timestamp()), so the nodes' clocks
// need not agree. The connection runs with lock_timeout and
// statement_timeout below the ttl: a try or a renewal never waits longer
// than that on a row lock or a slow server.
#include "leader.h"

#include "util/error.h"
#include "util/log.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct leader {
    PGconn *conn;
    char   *conninfo;
    char    holder[128];
    char    advertise[512];
    int64_t ttl_ms;
};

// The table, its one row, and the fence every leader transaction starts
// with. The advisory lock serialises nodes creating them at once.
static const char setup_sql[]
    = "BEGIN; SELECT pg_advisory_xact_lock(7366979); "
      "CREATE TABLE IF NOT EXISTS anvil_leader ("
      " id integer PRIMARY KEY CHECK (id = 1),"
      " epoch bigint NOT NULL,"
      " holder text NOT NULL,"
      " advertise text NOT NULL,"
      " expires_at timestamptz NOT NULL,"
      " pid integer NOT NULL DEFAULT 0); "
      "INSERT INTO anvil_leader VALUES (1, 0, '', '', '-infinity', 0)"
      " ON CONFLICT (id) DO NOTHING; "
      "CREATE OR REPLACE FUNCTION anvil_fence(e bigint, ttl_ms bigint)"
      " RETURNS void LANGUAGE plpgsql AS $f$ BEGIN"
      " UPDATE anvil_leader SET expires_at = clock_timestamp()"
      "  + ttl_ms * interval '1 millisecond', pid = pg_backend_pid()"
      "  WHERE id = 1 AND epoch = e;"
      " IF NOT FOUND THEN RAISE EXCEPTION"
      "  'another anvild took the leader lease (epoch % is over)', e"
      "  USING ERRCODE = '" LEADER_FENCED_STATE "'; END IF;"
      " PERFORM set_config('idle_in_transaction_session_timeout',"
      "  ttl_ms::text, true);"
      " END $f$; COMMIT";

static const char take_sql[]
    = "UPDATE anvil_leader SET epoch = epoch + 1, holder = $1,"
      " advertise = $2, pid = 0, expires_at = clock_timestamp()"
      " + $3::bigint * interval '1 millisecond'"
      " WHERE id = 1 AND (expires_at < clock_timestamp() OR holder = $1)"
      " RETURNING epoch";

static const char renew_sql[]
    = "UPDATE anvil_leader SET expires_at = clock_timestamp()"
      " + $2::bigint * interval '1 millisecond'"
      " WHERE id = 1 AND epoch = $1::bigint";

static const char release_sql[]
    = "UPDATE anvil_leader SET expires_at = '-infinity', pid = 0"
      " WHERE id = 1 AND epoch = $1::bigint";

static const char who_sql[] = "SELECT advertise FROM anvil_leader WHERE id = 1"
                              " AND expires_at >= clock_timestamp()";

// A lease past its expiry by a ttl whose row is still locked: the holder
// is stuck inside a statement (stopped while PostgreSQL was sending it a
// result, which idle_in_transaction_session_timeout does not cover). Its
// backend is ended so the takeover can go ahead.
static const char unstick_sql[]
    = "SELECT pg_terminate_backend(pid) FROM anvil_leader WHERE id = 1"
      " AND pid <> 0 AND expires_at < clock_timestamp()"
      " - $1::bigint * interval '1 millisecond'";

static bool
ok(const PGresult *r)
{
    ExecStatusType s = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

static const char *
sqlstate(const PGresult *r)
{
    const char *s = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return s != NULL ? s : "";
}

// The error of a failed statement: UNAVAILABLE when the connection is gone
// (the next call reconnects), else INTERNAL.
static int
fail(struct leader *l, const PGresult *r, struct anvil_error *err,
    const char *what)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "%s",
        r != NULL && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r)
                                                : PQerrorMessage(l->conn));
    msg[strcspn(msg, "\n")] = '\0';
    if (PQstatus(l->conn) == CONNECTION_BAD
        || strncmp(sqlstate(r), "08", 2) == 0
        || strncmp(sqlstate(r), "57", 2) == 0)
        return av_error_set(err, ANVIL_UNAVAILABLE,
            "cannot reach PostgreSQL while %s: %s", what, msg);
    return av_error_set(
        err, ANVIL_INTERNAL, "database error while %s: %s", what, msg);
}

static int
connect_db(struct leader *l, struct anvil_error *err)
{
    if (l->conn != NULL && PQstatus(l->conn) == CONNECTION_OK)
        return ANVIL_OK;
    PQfinish(l->conn);
    l->conn = PQconnectdb(l->conninfo);
    if (l->conn == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    if (PQstatus(l->conn) != CONNECTION_OK)
        return fail(l, NULL, err, "connecting for the leader lease");
    char sql[200];
    snprintf(sql, sizeof(sql),
        "SET client_min_messages = warning; SET lc_messages = 'C'; "
        "SET lock_timeout = %lld; SET statement_timeout = %lld",
        (long long) (l->ttl_ms / 4), (long long) l->ttl_ms);
    PGresult *r  = PQexec(l->conn, sql);
    int       rc = ok(r) ? ANVIL_OK : fail(l, r, err, "configuring a session");
    PQclear(r);
    return rc;
}

// Runs sql with up to three text parameters; *out the result (PQclear).
static int
run(struct leader *l, const char *sql, int n, const char *const *params,
    PGresult **out, struct anvil_error *err, const char *what)
{
    int rc = connect_db(l, err);
    if (rc != ANVIL_OK)
        return rc;
    PGresult *r = PQexecParams(l->conn, sql, n, NULL, params, NULL, NULL, 0);
    if (ok(r)) {
        *out = r;
        return ANVIL_OK;
    }
    // 55P03: lock_timeout (another transaction holds the row).
    rc = strcmp(sqlstate(r), "55P03") == 0 ? ANVIL_ABORTED
                                           : fail(l, r, err, what);
    PQclear(r);
    return rc;
}

int
leader_open(const char *conninfo, const char *holder, const char *advertise,
    int64_t ttl_ms, struct leader **out, struct anvil_error *err)
{
    struct leader *l = calloc(1, sizeof(*l));
    if (l == NULL || (l->conninfo = strdup(conninfo)) == NULL) {
        free(l);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    snprintf(l->holder, sizeof(l->holder), "%s", holder);
    snprintf(l->advertise, sizeof(l->advertise), "%s", advertise);
    l->ttl_ms = ttl_ms;
    int rc    = connect_db(l, err);
    if (rc == ANVIL_OK) {
        PGresult *r = PQexec(l->conn, setup_sql);
        if (!ok(r))
            rc = fail(l, r, err, "creating the leader lease table");
        PQclear(r);
        if (rc != ANVIL_OK)
            PQclear(PQexec(l->conn, "ROLLBACK"));
    }
    if (rc != ANVIL_OK) {
        leader_close(l);
        return rc;
    }
    *out = l;
    return ANVIL_OK;
}

void
leader_close(struct leader *l)
{
    if (l == NULL)
        return;
    PQfinish(l->conn);
    free(l->conninfo);
    free(l);
}

// The advertised URL of the live holder into url ("" when none).
static void
who(struct leader *l, char *url, size_t len)
{
    PGresult          *r = NULL;
    struct anvil_error e = { 0 };
    url[0]               = '\0';
    if (run(l, who_sql, 0, NULL, &r, &e, "reading the leader") != ANVIL_OK)
        return;
    if (PQntuples(r) == 1)
        snprintf(url, len, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

static void
unstick(struct leader *l)
{
    char        ttl[32];
    const char *p[1] = { ttl };
    snprintf(ttl, sizeof(ttl), "%lld", (long long) l->ttl_ms);
    PGresult          *r = NULL;
    struct anvil_error e = { 0 };
    if (run(l, unstick_sql, 1, p, &r, &e, "ending a stuck leader") != ANVIL_OK)
        return;
    if (PQntuples(r) > 0)
        AV_WARN("leader.unstick",
            "msg=\"ended the session of a leader stuck past its lease\"");
    PQclear(r);
}

int
leader_try(struct leader *l, int64_t *epoch, char *url, size_t len,
    struct anvil_error *err)
{
    char        ttl[32];
    const char *p[3] = { l->holder, l->advertise, ttl };
    snprintf(ttl, sizeof(ttl), "%lld", (long long) l->ttl_ms);
    PGresult *r  = NULL;
    int       rc = run(l, take_sql, 3, p, &r, err, "taking the leader lease");
    if (rc == ANVIL_ABORTED) {
        unstick(l);
        rc = ANVIL_NOT_FOUND;
    } else if (rc == ANVIL_OK && PQntuples(r) == 1) {
        *epoch = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    } else if (rc == ANVIL_OK) {
        rc = ANVIL_NOT_FOUND;
    }
    PQclear(r);
    if (rc == ANVIL_NOT_FOUND)
        who(l, url, len);
    return rc;
}

int
leader_renew(struct leader *l, int64_t epoch, struct anvil_error *err)
{
    char        e[32], ttl[32];
    const char *p[2] = { e, ttl };
    snprintf(e, sizeof(e), "%lld", (long long) epoch);
    snprintf(ttl, sizeof(ttl), "%lld", (long long) l->ttl_ms);
    PGresult *r = NULL;
    int rc      = run(l, renew_sql, 2, p, &r, err, "renewing the leader lease");
    if (rc == ANVIL_ABORTED) // our own engine's fence holds the row
        return ANVIL_OK;
    if (rc == ANVIL_OK && strtoll(PQcmdTuples(r), NULL, 10) != 1)
        rc = av_error_set(err, ANVIL_FAILED_PRECONDITION,
            "another anvild took the leader lease (epoch %lld is over)",
            (long long) epoch);
    PQclear(r);
    return rc;
}

void
leader_release(struct leader *l, int64_t epoch)
{
    char        e[32];
    const char *p[1] = { e };
    snprintf(e, sizeof(e), "%lld", (long long) epoch);
    PGresult          *r   = NULL;
    struct anvil_error err = { 0 };
    if (run(l, release_sql, 1, p, &r, &err, "releasing the leader lease")
        == ANVIL_OK)
        PQclear(r);
}
