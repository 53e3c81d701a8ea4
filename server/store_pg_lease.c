// store_pg_lease.c - the rows of jobs this server inserted QUEUED, kept
// until their lease, so that leasing one (the common case: submitted,
// then taken by a worker within moments) needs no round trip: the leased
// row is computed here from the inserted one, and the lease's UPDATE is
// queued with the transaction's other writes.
//
// A row is kept from its insert until any write names its job or may
// touch it (pg_brief_written, the same rules as the briefs of
// store_pg_brief.c), and forgotten wholesale by a rollback, a rollback to
// a savepoint and a new connection, so what is kept is the row as this
// server last wrote it. The queued UPDATE leases only a row still QUEUED
// with the attempt kept (and in the ready queue the lease names) and
// fails in PostgreSQL when it changes none (PG_CHECKED, store_pg_sql.c):
// a row changed by anything else fails the command or, read after its
// command ended, the whole transaction. Payloads over
// PG_LEASE_PAYLOAD_MAX are not kept: their jobs are leased the plain way.
#include "store_pg.h"

#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_LEASE_PAYLOAD_MAX 2048

struct pg_kept_job {
    struct job j; // j.id 0: free
};

int
pg_kept_open(struct pg_store *st)
{
    st->kept = calloc(PG_KEPT, sizeof(*st->kept));
    return st->kept != NULL ? 0 : -1;
}

static void
drop(struct pg_store *st, struct pg_kept_job *k)
{
    if (k->j.id == 0)
        return;
    job_fini(&k->j);
    st->n_kept--;
}

void
pg_kept_close(struct pg_store *st)
{
    pg_kept_forget_all(st);
    free(st->kept);
    st->kept = NULL;
}

void
pg_kept_forget_all(struct pg_store *st)
{
    for (int i = 0; st->kept != NULL && st->n_kept > 0 && i < PG_KEPT; i++)
        drop(st, &st->kept[i]);
    st->n_kept = 0;
}

static struct pg_kept_job *
slot_of(struct pg_store *st, int64_t id)
{
    return &st->kept[(uint64_t) id % PG_KEPT];
}

void
pg_kept_forget(struct pg_store *st, int64_t id)
{
    if (st->kept == NULL || st->n_kept == 0)
        return;
    struct pg_kept_job *k = slot_of(st, id);
    if (k->j.id == id)
        drop(st, k);
}

static char *
dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

static uint8_t *
dup_bytes(const void *p, size_t n)
{
    uint8_t *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    if (n > 0)
        memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

// The row as read_job (store_pg_jobs.c) would read it back: "" for NULL
// text, empty result and error.
void
pg_kept_inserted(
    struct pg_store *st, const struct store_new_job *nj, int64_t id)
{
    if (st->kept == NULL || !st->in_tx || nj->state != ANVIL_JOB_QUEUED
        || nj->payload_len > PG_LEASE_PAYLOAD_MAX)
        return;
    struct pg_kept_job *k = slot_of(st, id);
    drop(st, k);
    struct job *j        = &k->j;
    j->type              = dup_or_empty(nj->type);
    j->queue             = dup_or_empty(nj->queue);
    j->payload           = dup_bytes(nj->payload, nj->payload_len);
    j->payload_len       = nj->payload_len;
    j->priority          = nj->priority;
    j->state             = nj->state;
    j->retry             = nj->retry;
    j->result            = dup_bytes("", 0);
    j->error             = dup_or_empty(NULL);
    j->created_at        = nj->created_at;
    j->run_at            = nj->run_at;
    j->timeout_ms        = nj->timeout_ms;
    j->worker_id         = dup_or_empty(NULL);
    j->idem_key          = dup_or_empty(nj->idem_key);
    j->workflow_id       = nj->workflow_id;
    j->step              = dup_or_empty(nj->workflow_id != 0 ? nj->step : NULL);
    j->lease_ms          = nj->lease_ms;
    j->progress_message  = dup_or_empty(NULL);
    j->concurrency_key   = dup_or_empty(nj->concurrency_key);
    j->concurrency_limit = (uint32_t) nj->concurrency_limit;
    if (!j->type || !j->queue || !j->payload || !j->result || !j->error
        || !j->worker_id || !j->idem_key || !j->step || !j->progress_message
        || !j->concurrency_key) {
        job_fini(j); // not kept: leased the plain way
        return;
    }
    j->id = id;
    st->n_kept++;
}

// A deep copy of kept job k, leased as PG_JOB_LEASE would.
static int
leased_copy(const struct job *k, const char *worker, int64_t now,
    int64_t default_lease, struct job *out)
{
    memset(out, 0, sizeof(*out));
    *out                  = *k;
    out->type             = strdup(k->type);
    out->queue            = strdup(k->queue);
    out->payload          = dup_bytes(k->payload, k->payload_len);
    out->result           = dup_bytes("", 0);
    out->error            = strdup("");
    out->worker_id        = strdup(worker != NULL ? worker : "");
    out->idem_key         = strdup(k->idem_key);
    out->step             = strdup(k->step);
    out->progress_message = strdup("");
    out->concurrency_key  = strdup(k->concurrency_key);
    out->parents          = NULL;
    out->n_parents        = 0;
    out->after            = NULL;
    out->n_after          = 0;
    if (!out->type || !out->queue || !out->payload || !out->result
        || !out->error || !out->worker_id || !out->idem_key || !out->step
        || !out->progress_message || !out->concurrency_key) {
        job_fini(out);
        return ANVIL_RESOURCE_EXHAUSTED;
    }
    out->state          = ANVIL_JOB_RUNNING;
    out->attempt        = k->attempt + 1;
    out->started_at     = now;
    out->lease_deadline = now + (k->lease_ms > 0 ? k->lease_ms : default_lease);
    out->finished_at    = 0;
    out->has_progress   = false;
    out->progress_percent = 0;
    return ANVIL_OK;
}

static bool
key_matches(const struct job *j, const char *key)
{
    if (key == NULL)
        return true;
    size_t q = strlen(j->queue);
    return strncmp(key, j->queue, q) == 0 && key[q] == '\x1f'
        && strcmp(key + q + 1, j->type) == 0;
}

int
pg_kept_lease(struct pg_store *st, int64_t id, const char *key,
    const char *worker, int64_t token_id, int64_t now, int64_t default_lease,
    struct job *out, struct anvil_error *err, bool *hit)
{
    *hit = false;
    if (st->kept == NULL || !st->in_tx || st->n_kept == 0)
        return ANVIL_OK;
    struct pg_kept_job *k = slot_of(st, id);
    if (k->j.id != id || k->j.state != ANVIL_JOB_QUEUED
        || !key_matches(&k->j, key))
        return ANVIL_OK; // leased the plain way
    if (leased_copy(&k->j, worker, now, default_lease, out) != ANVIL_OK)
        return av_error_set(
            err, ANVIL_RESOURCE_EXHAUSTED, "out of memory reading job");
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    pg_p_i64(&p, now);
    pg_p_i64(&p, default_lease);
    pg_p_text(&p, worker != NULL ? worker : "");
    pg_p_i64(&p, token_id);
    pg_p_text(&p, key);
    pg_p_i64(&p, k->j.attempt);
    drop(st, k); // the row changes
    int rc = pg_defer_as(
        st, PG_JOB_LEASE_QUEUED, PG_JOB_LEASE, &p, err, "leasing a job");
    if (rc != ANVIL_OK) {
        job_fini(out);
        return rc;
    }
    *hit = true;
    return ANVIL_OK;
}
