// store_retention.c - the SQLite backend's sweeps: deleting finished plain
// jobs and settled workflows (with their steps and edges) once they are
// older than the retention, and the oldest events. Each sweep of jobs or
// workflows first raises the ids' high-water marks (store_sqlite.c), so
// that no id is handed out again after the newest rows are gone; events
// need no such step (their AUTOINCREMENT counter is the mark).
#include "store_sqlite.h"

#include <stdlib.h>

static int
sq_sweep_jobs(struct store *base, int64_t before, int limit, int *deleted,
    struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    *deleted                = 0;
    int rc                  = sq_raise_hwm(st, HWM_JOBS, st->next_job_id, err);
    if (rc != ANVIL_OK)
        return rc;
    sq_stmt_pair(st, STMT_SWEEP_JOBS, before, limit);
    rc = sq_exec(st, STMT_SWEEP_JOBS, err, "deleting old jobs");
    if (rc == ANVIL_OK)
        *deleted = (int) sq_changes(st);
    return rc;
}

static int
delete_flow(struct sqlite_store *st, int64_t id, struct anvil_error *err)
{
    const int sids[]
        = { STMT_SWEEP_FLOW_EDGES, STMT_SWEEP_FLOW_STEPS, STMT_SWEEP_FLOW };
    for (size_t i = 0; i < 3; i++) {
        sq_bind_i64(st, sq_stmt(st, sids[i]), 1, id);
        int rc = sq_exec(st, sids[i], err, "deleting an old workflow");
        if (rc != ANVIL_OK)
            return rc;
    }
    return ANVIL_OK;
}

static int
sq_sweep_workflows(struct store *base, int64_t before, int limit, int *deleted,
    struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sq_stmt_pair(st, STMT_SWEEP_FLOWS, before, limit);
    int64_t *ids = NULL;
    size_t   n   = 0;
    int      rc  = sq_read_ids(
              st, STMT_SWEEP_FLOWS, &ids, &n, err, "finding old workflows");
    if (rc == ANVIL_OK && n > 0)
        rc = sq_raise_hwm(st, HWM_JOBS, st->next_job_id, err);
    if (rc == ANVIL_OK && n > 0)
        rc = sq_raise_hwm(st, HWM_FLOWS, st->next_wf_id, err);
    for (size_t i = 0; rc == ANVIL_OK && i < n; i++)
        rc = delete_flow(st, ids[i], err);
    free(ids);
    *deleted = rc == ANVIL_OK ? (int) n : 0;
    return rc;
}

// The oldest events go first: from the lowest seq, each row older than
// `before` or below below_seq, up to limit, stopping at the first row that
// is neither. `at` has no index (one more per event written); seq order
// is time order but for a clock stepped back, which only delays a sweep.
// What the walk passed is one range of seqs, deleted by rowid.
static int
sq_sweep_events(struct store *base, int64_t before, uint64_t below_seq,
    int limit, int *deleted, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    *deleted                = 0;
    if (limit <= 0)
        return ANVIL_OK;
    sqlite3_stmt *s = sq_stmt(st, STMT_SWEEP_EVENTS_SCAN);
    sq_bind_i64(st, s, 1, limit);
    int64_t cut = 0;
    int     n   = 0;
    int     rc;
    while ((rc = sq_step(st, STMT_SWEEP_EVENTS_SCAN)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(s, 0);
        if (sqlite3_column_int64(s, 1) >= before && (uint64_t) seq >= below_seq)
            break;
        cut = seq;
        n++;
    }
    sq_reset(st, STMT_SWEEP_EVENTS_SCAN);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_error(st, err, "finding old events");
    if (n == 0)
        return ANVIL_OK;
    sq_bind_i64(st, sq_stmt(st, STMT_SWEEP_EVENTS), 1, cut);
    rc = sq_exec(st, STMT_SWEEP_EVENTS, err, "deleting old events");
    if (rc == ANVIL_OK)
        *deleted = (int) sq_changes(st);
    return rc;
}

void
sq_retention_ops(struct store_ops *o)
{
    o->sweep_jobs      = sq_sweep_jobs;
    o->sweep_workflows = sq_sweep_workflows;
    o->sweep_events    = sq_sweep_events;
}
