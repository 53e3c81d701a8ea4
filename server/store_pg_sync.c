// store_pg_sync.c - the PostgreSQL backend's deferred sync
// (store_set_deferred_sync): COMMIT returns without waiting for the WAL
// flush, and store_sync() waits for it, on the engine's sync thread, while
// the engine thread runs the next batch (engine_sync.c).
//
// With it on, the engine's connection runs `SET synchronous_commit = off`:
// its COMMIT returns once the commit record is in the server's WAL
// buffers. store_sync() then runs, on a second connection of its own (the
// same conninfo, the server's synchronous_commit), a transaction that
// takes a transaction id: its COMMIT waits until the WAL is flushed (and
// confirmed by synchronous standbys, if any) up to its own commit record,
// which lies after every commit record written before the call. So a
// batch is answered only once it is as durable as the server's
// synchronous_commit says, as with it off, and one sync covers every
// batch committed before it. A failed sync fails every later one
// (store.h): a commit it covered may be lost, and only a restart can tell.
#include "store_pg.h"

#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
pg_sync_set(struct pg_store *st, bool on, struct anvil_error *err)
{
    if (on == atomic_load(&st->deferred))
        return ANVIL_OK;
    if (st->in_tx)
        return av_error_set(err, ANVIL_FAILED_PRECONDITION,
            "changing the sync mode inside a transaction");
    if (!on) {
        int rc = pg_sync(st, err);
        if (rc == ANVIL_OK)
            rc = pg_simple(st, "SET synchronous_commit TO DEFAULT", err,
                "configuring the session");
        if (rc != ANVIL_OK)
            return rc;
        atomic_store(&st->deferred, false);
        PQfinish(st->sync_conn);
        st->sync_conn = NULL;
        return ANVIL_OK;
    }
    st->sync_conn = PQconnectdb(st->conninfo);
    if (st->sync_conn == NULL || PQstatus(st->sync_conn) != CONNECTION_OK) {
        int rc = av_error_set(err, ANVIL_UNAVAILABLE,
            "cannot open the sync connection to %s: %s", st->where,
            st->sync_conn != NULL ? PQerrorMessage(st->sync_conn)
                                  : "out of memory");
        PQfinish(st->sync_conn);
        st->sync_conn = NULL;
        return rc;
    }
    int rc = pg_simple(
        st, "SET synchronous_commit = off", err, "configuring the session");
    if (rc != ANVIL_OK) {
        PQfinish(st->sync_conn);
        st->sync_conn = NULL;
        return rc;
    }
    atomic_store(&st->deferred, true);
    return ANVIL_OK;
}

bool
pg_sync_needed(const struct pg_store *st)
{
    return atomic_load(&st->deferred);
}

void
pg_sync_committed(struct pg_store *st)
{
    if (atomic_load(&st->deferred))
        atomic_fetch_add(&st->commits, 1);
}

int
pg_sync(struct pg_store *st, struct anvil_error *err)
{
    if (!atomic_load(&st->deferred))
        return ANVIL_OK;
    pthread_mutex_lock(&st->sync_lock);
    int rc = ANVIL_OK;
    if (st->sync_failed) {
        rc = av_error_set(err, ANVIL_INTERNAL, "%s", st->sync_err.msg);
        pthread_mutex_unlock(&st->sync_lock);
        return rc;
    }
    uint64_t upto = atomic_load(&st->commits);
    if (upto == st->synced) {
        pthread_mutex_unlock(&st->sync_lock);
        return ANVIL_OK;
    }
    if (store_hook_fdatasync != NULL && store_hook_fdatasync(-1) != 0) {
        rc = av_error_set(&st->sync_err, ANVIL_INTERNAL,
            "syncing: the WAL flush of %s failed (injected)", st->where);
    } else {
        PGresult *r = PQexec(st->sync_conn, "SELECT pg_current_xact_id()");
        if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
            char msg[200];
            snprintf(msg, sizeof(msg), "%s",
                r != NULL ? PQresultErrorMessage(r)
                          : PQerrorMessage(st->sync_conn));
            for (char *c = msg; *c != '\0'; c++)
                if (*c == '\n')
                    *c = ' ';
            rc = av_error_set(&st->sync_err, ANVIL_INTERNAL,
                "syncing: waiting for the WAL flush of %s failed: %s",
                st->where, msg);
        }
        PQclear(r);
    }
    if (rc != ANVIL_OK) {
        st->sync_failed = true;
        av_error_set(err, rc, "%s", st->sync_err.msg);
    } else {
        st->synced = upto;
    }
    pthread_mutex_unlock(&st->sync_lock);
    return rc;
}

void
pg_sync_close(struct pg_store *st)
{
    PQfinish(st->sync_conn);
    st->sync_conn = NULL;
    free(st->conninfo);
    st->conninfo = NULL;
    pthread_mutex_destroy(&st->sync_lock);
}
