// store_pg_brief.c - the briefs of the jobs this server leased, kept so
// that the report of a job (store_job_brief, then its finish) needs no
// round trip of its own.
//
// A lease's UPDATE ... RETURNING gives the whole row; its brief is kept
// (a small direct-mapped table by id) until a write names the job. Every
// statement that writes jobs goes through pg_pipe_send, which forgets the
// job it names ($1 of an "UPDATE jobs ... WHERE id = $1") or everything
// (any other UPDATE or DELETE of jobs); so do a rollback, a rollback to a
// savepoint and a new connection, since a lease they undo is in the table.
//
// A brief read from the table is checked where it counts: a check is
// queued with it (PG_JOB_BRIEF_CHECK, or, when the job's finish follows at
// once, the finish itself, PG_JOB_FINISH_CHECKED) that must find (change)
// the row with the state, attempt, lease and cancel flag read, else it
// fails in PostgreSQL ("the row changed outside this server",
// PG_CHECKED in store_pg_sql.c). So a row changed by anything else
// (another process, an operator's SQL) fails the command (its savepoint
// undoes it) or, read after its command ended, the whole transaction:
// never is a decision made on a stale brief committed, nor anything else
// of its batch.
#include "store_pg.h"

#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pg_brief {
    int64_t                id; // 0: free
    struct store_job_brief b;
};

int
pg_briefs_open(struct pg_store *st)
{
    st->briefs = calloc(PG_BRIEFS, sizeof(*st->briefs));
    if (st->briefs == NULL || pg_kept_open(st) != 0)
        return -1;
    // What each statement does to the table (pg_brief_written).
    for (int i = 0; i < PG_STMT_COUNT; i++) {
        const char *sql = pg_stmt_sql[i];
        if (strncmp(sql, PG_CHECKED_HEAD, strlen(PG_CHECKED_HEAD)) == 0)
            sql += strlen(PG_CHECKED_HEAD); // the UPDATE it checks
        bool jobs = strncmp(sql, "UPDATE jobs ", 12) == 0
            || strncmp(sql, "DELETE FROM jobs ", 17) == 0;
        st->brief_effect[i] = !jobs                                  ? 0
            : strstr(sql, " WHERE id = $1") != NULL && sql[0] == 'U' ? 1
                                                                     : 2;
    }
    // The queued lease keeps what it knows itself (store_pg_lease.c): the
    // brief it sets must outlive the statement's sending, later.
    st->brief_effect[PG_JOB_LEASE_QUEUED] = 0;
    // A merged write's rows did theirs when kept (store_pg_merge.c).
    for (int i = 0; i < pg_merge_nspecs; i++)
        st->brief_effect[pg_merge_specs[i].many] = 0;
    return 0;
}

void
pg_briefs_close(struct pg_store *st)
{
    free(st->briefs);
    st->briefs = NULL;
    pg_kept_close(st);
}

void
pg_briefs_forget(struct pg_store *st)
{
    if (st->briefs != NULL && st->n_briefs > 0)
        memset(st->briefs, 0, PG_BRIEFS * sizeof(*st->briefs));
    st->n_briefs = 0;
    pg_kept_forget_all(st);
}

static struct pg_brief *
slot_of(struct pg_store *st, int64_t id)
{
    return &st->briefs[(uint64_t) id % PG_BRIEFS];
}

void
pg_brief_written(struct pg_store *st, int sid, const struct pg_params *p)
{
    if (st->briefs == NULL || sid >= PG_STMT_COUNT
        || (st->n_briefs == 0 && st->n_kept == 0))
        return;
    if (st->brief_effect[sid] == 2) {
        pg_briefs_forget(st);
    } else if (st->brief_effect[sid] == 1 && p != NULL && p->n > 0
        && p->values[0] != NULL) {
        int64_t          id = strtoll(p->values[0], NULL, 10);
        struct pg_brief *s  = slot_of(st, id);
        if (s->id == id)
            s->id = 0;
        pg_kept_forget(st, id);
    }
}

static void
label(char *buf, const char *v)
{
    snprintf(buf, STORE_LABEL_LEN, "%s", v != NULL ? v : "");
}

void
pg_brief_leased(struct pg_store *st, const struct job *j, int64_t token_id)
{
    if (st->briefs == NULL)
        return;
    struct pg_brief *s = slot_of(st, j->id);
    s->id              = j->id;
    s->b               = (struct store_job_brief) {
                      .state             = j->state,
                      .attempt           = j->attempt,
                      .retry             = j->retry,
                      .lease_deadline    = j->lease_deadline,
                      .started_at        = j->started_at,
                      .timeout_ms        = j->timeout_ms,
                      .lease_ms          = j->lease_ms,
                      .run_at            = j->run_at,
                      .priority          = j->priority,
                      .cancel_requested  = j->cancel_requested,
                      .workflow_id       = j->workflow_id,
                      .lease_token       = token_id,
                      .concurrency_limit = j->concurrency_limit,
    };
    label(s->b.queue, j->queue);
    label(s->b.type, j->type);
    label(s->b.step, j->step);
    label(s->b.concurrency_key, j->concurrency_key);
    st->n_briefs++;
}

int
pg_brief_cached(struct pg_store *st, int64_t id, struct store_job_brief *b,
    struct anvil_error *err, bool *hit)
{
    *hit = false;
    if (st->briefs == NULL || !st->in_tx || id <= 0)
        return ANVIL_OK;
    struct pg_brief *s = slot_of(st, id);
    if (s->id != id)
        return ANVIL_OK;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    pg_p_i64(&p, s->b.state);
    pg_p_i64(&p, s->b.attempt);
    pg_p_i64(&p, s->b.retry.max_attempts);
    pg_p_i64(&p, s->b.lease_deadline);
    pg_p_i64(&p, s->b.started_at);
    pg_p_i64(&p, s->b.run_at);
    pg_p_i64(&p, s->b.cancel_requested ? 1 : 0);
    pg_p_i64(&p, s->b.lease_token);
    int rc = pg_defer_as(st, PG_JOB_BRIEF_CHECK, PG_JOB_BRIEF, &p, err,
        "checking a job's state");
    if (rc != ANVIL_OK)
        return rc;
    *b   = s->b;
    *hit = true;
    return ANVIL_OK;
}
