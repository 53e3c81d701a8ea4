// store_pg_jobs.c - the job rows of the PostgreSQL backend.
#include "store_pg.h"

#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
pgs_job_insert(struct store *base, const struct store_new_job *nj, int64_t *id,
    struct anvil_error *err)
{
    struct pg_store *st = pg(base);
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, nj->type);
    pg_p_text(&p, nj->queue);
    pg_p_blob(&p, nj->payload, nj->payload_len);
    pg_p_i64(&p, nj->priority);
    pg_p_i64(&p, nj->state);
    pg_p_i64(&p, nj->retry.max_attempts);
    pg_p_i64(&p, nj->created_at);
    pg_p_i64(&p, nj->run_at);
    pg_p_i64(&p, nj->timeout_ms);
    pg_p_i64(&p, nj->lease_ms);
    pg_p_bytes_or_null(&p, nj->idem_key);
    if (nj->request_id != 0)
        pg_p_i64(&p, (int64_t) nj->request_id);
    else
        pg_p_null(&p);
    if (nj->workflow_id != 0) {
        pg_p_i64(&p, nj->workflow_id);
        pg_p_text(&p, nj->step);
    } else {
        pg_p_null(&p);
        pg_p_null(&p);
    }
    pg_p_i64(&p, nj->pending_parents);
    pg_p_i64(&p, nj->retry.initial_backoff_ms);
    pg_p_i64(&p, nj->retry.max_backoff_ms);
    pg_p_double(&p, nj->retry.backoff_multiplier);
    pg_p_i64(&p, st->next_job_id);
    pg_p_text_or_null(&p, nj->concurrency_key);
    pg_p_i64(&p, nj->concurrency_limit);
    int     rc  = pg_defer(st, PG_JOB_INSERT, &p, err, "inserting a job");
    int64_t rid = (int64_t) nj->request_id;
    if (rc == ANVIL_OK && nj->request_id != 0 && st->rid_valid
        && rid >= st->rid_lo && rid - st->rid_lo < PG_RID_SPAN)
        st->rid_job[rid - st->rid_lo] = st->next_job_id;
    if (rc == ANVIL_OK)
        pg_kept_inserted(st, nj, st->next_job_id);
    if (rc == ANVIL_OK)
        *id = st->next_job_id++;
    return rc;
}

// Reads the jobs of request ids [rid, rid + PG_RID_SPAN) into the
// transaction's cache: a SubmitJobs of n items then costs one round trip
// for its lookups instead of n.
static int
read_rids(struct pg_store *st, int64_t rid, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, rid);
    pg_p_i64(&p, rid + PG_RID_SPAN);
    PGresult *r  = NULL;
    int       rc = pg_query(
              st, PG_JOB_BY_RIDS, &p, &r, err, "looking up jobs by request id");
    if (rc != ANVIL_OK)
        return rc;
    memset(st->rid_job, 0, sizeof(st->rid_job));
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t at = pg_i64(r, i, 0) - rid;
        if (at >= 0 && at < PG_RID_SPAN)
            st->rid_job[at] = pg_i64(r, i, 1);
    }
    PQclear(r);
    st->rid_lo    = rid;
    st->rid_valid = true;
    return ANVIL_OK;
}

static int
by_i64(struct store *base, int sid, int64_t v, int64_t *id,
    struct anvil_error *err, const char *what)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, v);
    return pg_find_id(pg(base), sid, &p, id, err, what);
}

static int
pgs_job_by_request(
    struct store *base, uint64_t rid, int64_t *id, struct anvil_error *err)
{
    struct pg_store *st = pg(base);
    int64_t          r  = (int64_t) rid;
    if (!st->in_tx || r > INT64_MAX - PG_RID_SPAN)
        return by_i64(
            base, PG_JOB_BY_RID, r, id, err, "looking up a job by request id");
    if (!st->rid_valid || r < st->rid_lo || r - st->rid_lo >= PG_RID_SPAN) {
        int rc = read_rids(st, r, err);
        if (rc != ANVIL_OK)
            return rc;
    }
    int64_t job = st->rid_job[r - st->rid_lo];
    if (job == 0)
        return ANVIL_NOT_FOUND;
    *id = job;
    return ANVIL_OK;
}

static int
pgs_job_by_key(
    struct store *base, const char *key, int64_t *id, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_bytes_or_null(&p, key);
    return pg_find_id(pg(base), PG_JOB_BY_KEY, &p, id, err,
        "looking up a job by idempotency key");
}

static int
read_job(const PGresult *r, int row, struct job *j)
{
    memset(j, 0, sizeof(*j));
    j->id                       = pg_i64(r, row, 0);
    j->type                     = pg_str(r, row, 1);
    j->queue                    = pg_str(r, row, 2);
    j->payload                  = pg_blob(r, row, 3, &j->payload_len);
    j->priority                 = (int32_t) pg_i64(r, row, 4);
    j->state                    = (int) pg_i64(r, row, 5);
    j->attempt                  = (uint32_t) pg_i64(r, row, 6);
    j->retry.max_attempts       = (uint32_t) pg_i64(r, row, 7);
    j->result                   = pg_blob(r, row, 8, &j->result_len);
    j->error                    = pg_str(r, row, 9);
    j->created_at               = pg_i64(r, row, 10);
    j->started_at               = pg_i64(r, row, 11);
    j->finished_at              = pg_i64(r, row, 12);
    j->run_at                   = pg_i64(r, row, 13);
    j->timeout_ms               = pg_i64(r, row, 14);
    j->lease_deadline           = pg_i64(r, row, 15);
    j->worker_id                = pg_str(r, row, 16);
    j->idem_key                 = pg_str(r, row, 17);
    j->cancel_requested         = pg_i64(r, row, 18) != 0;
    j->workflow_id              = pg_i64(r, row, 19);
    j->step                     = pg_str(r, row, 20);
    j->lease_ms                 = pg_i64(r, row, 21);
    j->retry.initial_backoff_ms = pg_i64(r, row, 22);
    j->retry.max_backoff_ms     = pg_i64(r, row, 23);
    j->retry.backoff_multiplier = pg_f64(r, row, 24);
    j->has_progress             = !pg_null(r, row, 25);
    j->progress_percent         = (int32_t) pg_i64(r, row, 25);
    j->progress_message         = pg_str(r, row, 26);
    j->concurrency_key          = pg_str(r, row, 27);
    j->concurrency_limit        = (uint32_t) pg_i64(r, row, 28);
    if (!j->concurrency_key || !j->progress_message || !j->type || !j->queue
        || !j->payload || !j->result || !j->error || !j->worker_id
        || !j->idem_key || !j->step) {
        job_fini(j);
        return ANVIL_RESOURCE_EXHAUSTED;
    }
    return ANVIL_OK;
}

// Runs a statement expected to yield at most one job row.
static int
one_job(struct pg_store *st, int sid, const struct pg_params *p,
    struct job *out, struct anvil_error *err, const char *what)
{
    PGresult *r  = NULL;
    int       rc = pg_query(st, sid, p, &r, err, what);
    if (rc != ANVIL_OK)
        return rc;
    if (PQntuples(r) == 0)
        rc = ANVIL_NOT_FOUND;
    else if (read_job(r, 0, out) != ANVIL_OK)
        rc = av_error_set(
            err, ANVIL_RESOURCE_EXHAUSTED, "out of memory reading job");
    PQclear(r);
    return rc;
}

static int
pgs_job_get(
    struct store *base, int64_t id, struct job *out, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    return one_job(pg(base), PG_JOB_GET, &p, out, err, "reading a job");
}

// One UPDATE ... RETURNING: the row changes only if it is QUEUED (and in
// the ready queue `key` names), and comes back as leased.
static int
pgs_job_lease_key(struct store *base, int64_t id, const char *key,
    const char *worker, int64_t token_id, int64_t now, int64_t default_lease,
    struct job *out, struct anvil_error *err)
{
    bool hit = false;
    int  rc  = pg_kept_lease(pg(base), id, key, worker, token_id, now,
          default_lease, out, err, &hit);
    if (rc == ANVIL_OK && hit)
        pg_brief_leased(pg(base), out, token_id);
    if (rc != ANVIL_OK || hit)
        return rc;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    pg_p_i64(&p, now);
    pg_p_i64(&p, default_lease);
    pg_p_text(&p, worker != NULL ? worker : "");
    pg_p_i64(&p, token_id);
    pg_p_text(&p, key);
    rc = one_job(pg(base), PG_JOB_LEASE, &p, out, err, "leasing a job");
    if (rc == ANVIL_OK)
        pg_brief_leased(pg(base), out, token_id);
    return rc;
}

static int
pgs_job_finish(struct store *base, int64_t id, int state, const uint8_t *result,
    size_t result_len, const char *error, int64_t now, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    pg_p_i64(&p, state);
    if (result != NULL)
        pg_p_blob(&p, result, result_len);
    else
        pg_p_null(&p);
    pg_p_bytes_or_null(&p, error);
    pg_p_i64(&p, now);
    // Right after its brief was read from what is kept, the check of the
    // brief and the finish are one statement (store_pg_brief.c).
    struct pg_store *st = pg(base);
    if (!pg_hold_last_is(st, PG_JOB_BRIEF_CHECK, id))
        return pg_defer(st, PG_JOB_FINISH, &p, err, "finishing a job");
    int rc = pg_pipe_check(st, err);
    if (rc == ANVIL_OK)
        rc = pg_injected(PG_JOB_FINISH, err, "finishing a job");
    if (rc == ANVIL_OK)
        rc = pg_hold_fold(
            st, PG_JOB_FINISH_CHECKED, &p, err, "finishing a job");
    return rc;
}

static int
pgs_job_requeue(struct store *base, int64_t id, int state, int64_t run_at,
    const char *error, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    pg_p_i64(&p, state);
    pg_p_i64(&p, run_at);
    pg_p_bytes_or_null(&p, error);
    return pg_defer(pg(base), PG_JOB_REQUEUE, &p, err, "requeueing a job");
}

static int
pgs_job_make_ready(struct store *base, int64_t id, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    return pg_update_one(
        pg(base), PG_JOB_MAKE_READY, &p, err, "queueing a job");
}

static int
pgs_job_retry(struct store *base, int64_t id, int state,
    uint32_t pending_parents, uint32_t max_attempts, struct anvil_error *err)
{
    if (state != ANVIL_JOB_QUEUED && state != ANVIL_JOB_PENDING)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "retrying a job: state %d is neither QUEUED nor PENDING", state);
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    pg_p_i64(&p, state);
    pg_p_i64(&p, pending_parents);
    pg_p_i64(&p, max_attempts);
    return pg_update_one(pg(base), PG_JOB_RETRY, &p, err, "retrying a job");
}

static int
pgs_job_extend(
    struct store *base, int64_t id, int64_t deadline, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    pg_p_i64(&p, deadline);
    return pg_defer(pg(base), PG_JOB_EXTEND, &p, err, "extending a lease");
}

static int
pgs_job_request_cancel(struct store *base, int64_t id, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    return pg_defer(
        pg(base), PG_JOB_CANCEL_REQ, &p, err, "requesting a cancel");
}

static int
pgs_job_progress(struct store *base, int64_t id, int32_t percent,
    const char *message, bool *changed, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    pg_p_i64(&p, percent);
    pg_p_text(&p, message != NULL ? message : "");
    int rc = pg_update_one(
        pg(base), PG_JOB_PROGRESS, &p, err, "recording progress");
    *changed = rc == ANVIL_OK;
    return rc == ANVIL_NOT_FOUND ? ANVIL_OK : rc;
}

static void
copy_col(const PGresult *r, int col, char *buf, size_t len)
{
    snprintf(buf, len, "%.*s", PQgetlength(r, 0, col), PQgetvalue(r, 0, col));
}

static int
pgs_job_brief(struct store *base, int64_t id, struct store_job_brief *b,
    struct anvil_error *err)
{
    bool hit = false;
    int  rc  = pg_brief_cached(pg(base), id, b, err, &hit);
    if (rc != ANVIL_OK || hit)
        return rc;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    PGresult *r = NULL;
    rc = pg_query(pg(base), PG_JOB_BRIEF, &p, &r, err, "reading a job's state");
    if (rc != ANVIL_OK)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return ANVIL_NOT_FOUND;
    }
    b->state                    = (int) pg_i64(r, 0, 0);
    b->attempt                  = (uint32_t) pg_i64(r, 0, 1);
    b->retry.max_attempts       = (uint32_t) pg_i64(r, 0, 2);
    b->lease_deadline           = pg_i64(r, 0, 3);
    b->started_at               = pg_i64(r, 0, 4);
    b->timeout_ms               = pg_i64(r, 0, 5);
    b->lease_ms                 = pg_i64(r, 0, 6);
    b->run_at                   = pg_i64(r, 0, 7);
    b->priority                 = (int32_t) pg_i64(r, 0, 8);
    b->cancel_requested         = pg_i64(r, 0, 9) != 0;
    b->workflow_id              = pg_i64(r, 0, 10);
    b->retry.initial_backoff_ms = pg_i64(r, 0, 11);
    b->retry.max_backoff_ms     = pg_i64(r, 0, 12);
    b->retry.backoff_multiplier = pg_f64(r, 0, 13);
    b->lease_token              = pg_i64(r, 0, 14);
    copy_col(r, 15, b->queue, sizeof(b->queue));
    copy_col(r, 16, b->type, sizeof(b->type));
    copy_col(r, 17, b->step, sizeof(b->step));
    copy_col(r, 18, b->concurrency_key, sizeof(b->concurrency_key));
    b->concurrency_limit = (uint32_t) pg_i64(r, 0, 19);
    PQclear(r);
    return ANVIL_OK;
}

int
pg_read_jobs(struct pg_store *st, int sid, const struct pg_params *p,
    struct job **jobs, size_t *n, struct anvil_error *err, const char *what)
{
    PGresult *r  = NULL;
    int       rc = pg_query(st, sid, p, &r, err, what);
    if (rc != ANVIL_OK)
        return rc;
    size_t      want = (size_t) PQntuples(r), cnt = 0;
    struct job *out = want ? calloc(want, sizeof(*out)) : NULL;
    if (want > 0 && out == NULL)
        rc = ANVIL_RESOURCE_EXHAUSTED;
    for (; rc == ANVIL_OK && cnt < want; cnt++)
        rc = read_job(r, (int) cnt, &out[cnt]);
    PQclear(r);
    if (rc != ANVIL_OK) {
        job_array_free(out, cnt > 0 ? cnt - 1 : 0);
        return av_error_set(err, rc, "out of memory %s", what);
    }
    *jobs = out;
    *n    = cnt;
    return ANVIL_OK;
}

// Binds f as PG_JOB_FILTER's $1-$7.
static void
bind_filter(struct pg_params *p, const struct store_list_filter *f)
{
    pg_p_init(p);
    pg_p_i64(p, f->state);
    pg_p_text_or_null(p, f->type);
    pg_p_text_or_null(p, f->queue);
    pg_p_i64(p, f->before_id > 0 ? f->before_id : INT64_MAX);
    pg_p_i64(p, f->limit);
    pg_p_i64(p, f->since);
    pg_p_i64(p, f->until > 0 ? f->until : INT64_MAX);
}

static int
pgs_job_list(struct store *base, const struct store_list_filter *f,
    struct job **jobs, size_t *n, struct anvil_error *err)
{
    struct pg_params p;
    bind_filter(&p, f);
    return pg_read_jobs(
        pg(base), PG_JOB_LIST, &p, jobs, n, err, "listing jobs");
}

static int
pgs_job_ids(struct store *base, const struct store_list_filter *f,
    bool plain_only, int64_t **ids, size_t *n, struct anvil_error *err)
{
    struct pg_params p;
    bind_filter(&p, f);
    pg_p_i64(&p, plain_only);
    return pg_read_ids(pg(base), PG_JOB_IDS, &p, ids, n, err, "selecting jobs");
}

struct scan {
    int (*fn)(void *, const struct job *);
    void *arg;
};

static int
scan_row(void *arg, const PGresult *r)
{
    struct scan *s = arg;
    char        *t = PQgetvalue(r, 0, 1), *q = PQgetvalue(r, 0, 2);
    struct job   j = {
          .id                = pg_i64(r, 0, 0),
          .type              = t,
          .queue             = q,
          .priority          = (int32_t) pg_i64(r, 0, 3),
          .state             = (int) pg_i64(r, 0, 4),
          .attempt           = (uint32_t) pg_i64(r, 0, 5),
          .run_at            = pg_i64(r, 0, 6),
          .lease_deadline    = pg_i64(r, 0, 7),
          .started_at        = pg_i64(r, 0, 8),
          .timeout_ms        = pg_i64(r, 0, 9),
          .concurrency_key   = PQgetvalue(r, 0, 10), // "" for NULL
          .concurrency_limit = (uint32_t) pg_i64(r, 0, 11),
    };
    return s->fn(s->arg, &j);
}

static int
pgs_scan_active(struct store *base, int (*fn)(void *, const struct job *),
    void *arg, struct anvil_error *err)
{
    struct scan s = { fn, arg };
    return pg_each_row(
        pg(base), PG_SCAN_ACTIVE, NULL, scan_row, &s, err, "rebuilding state");
}

static int
depth_cmp(const void *a, const void *b)
{
    const struct store_depth *x = a, *y = b;
    int                       c = strcmp(x->queue, y->queue);
    return c != 0 ? c : strcmp(x->type, y->type);
}

// Adds row i's count to its (queue, type) in d; -1 when out of memory.
static int
add_depth(struct store_depth **d, size_t *cnt, const PGresult *r, int row)
{
    const char *queue = PQgetvalue(r, row, 1), *type = PQgetvalue(r, row, 2);
    size_t      i = 0;
    while (i < *cnt
        && (strcmp((*d)[i].queue, queue) != 0
            || strcmp((*d)[i].type, type) != 0))
        i++;
    if (i == *cnt) {
        struct store_depth *p = realloc(*d, (*cnt + 1) * sizeof(**d));
        if (p == NULL)
            return -1;
        *d   = p;
        p[i] = (struct store_depth) { .queue = strdup(queue),
            .type                            = strdup(type) };
        (*cnt)++;
        if (p[i].queue == NULL || p[i].type == NULL)
            return -1;
    }
    uint64_t k     = (uint64_t) pg_i64(r, row, 3);
    int      state = (int) pg_i64(r, row, 0);
    if (state == ANVIL_JOB_SCHEDULED)
        (*d)[i].scheduled = k;
    else if (state == ANVIL_JOB_QUEUED)
        (*d)[i].queued = k;
    else
        (*d)[i].running = k;
    return 0;
}

static int
pgs_depths(struct store *base, struct store_depth **out, size_t *n,
    uint64_t *total, struct anvil_error *err)
{
    struct pg_store *st = pg(base);
    PGresult        *r  = NULL;
    int rc = pg_query(st, PG_DEPTHS, NULL, &r, err, "reading queue depths");
    if (rc != ANVIL_OK)
        return rc;
    struct store_depth *d   = NULL;
    size_t              cnt = 0;
    for (int i = 0; rc == ANVIL_OK && i < PQntuples(r); i++) {
        if (add_depth(&d, &cnt, r, i) != 0)
            rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    PQclear(r);
    if (rc != ANVIL_OK) {
        store_depths_free(d, cnt);
        return rc;
    }
    if (cnt > 1)
        qsort(d, cnt, sizeof(*d), depth_cmp);
    *out   = d;
    *n     = cnt;
    *total = (uint64_t) (st->next_job_id - 1);
    return ANVIL_OK;
}

static int
pgs_running_by_worker(struct store *base,
    void (*fn)(void *arg, const char *worker, uint32_t running), void *arg,
    struct anvil_error *err)
{
    PGresult *r  = NULL;
    int       rc = pg_query(
              pg(base), PG_RUNNING_BY_WORKER, NULL, &r, err, "counting running jobs");
    if (rc != ANVIL_OK)
        return rc;
    for (int i = 0; i < PQntuples(r); i++)
        fn(arg, PQgetvalue(r, i, 0), (uint32_t) pg_i64(r, i, 1));
    PQclear(r);
    return ANVIL_OK;
}

void
pg_jobs_ops(struct store_ops *o)
{
    o->job_insert         = pgs_job_insert;
    o->job_lease_key      = pgs_job_lease_key;
    o->job_finish         = pgs_job_finish;
    o->job_requeue        = pgs_job_requeue;
    o->job_make_ready     = pgs_job_make_ready;
    o->job_extend         = pgs_job_extend;
    o->job_request_cancel = pgs_job_request_cancel;
    o->job_progress       = pgs_job_progress;
    o->job_retry          = pgs_job_retry;
    o->job_by_request     = pgs_job_by_request;
    o->job_by_key         = pgs_job_by_key;
    o->job_get            = pgs_job_get;
    o->job_brief          = pgs_job_brief;
    o->job_list           = pgs_job_list;
    o->job_ids            = pgs_job_ids;
    o->scan_active        = pgs_scan_active;
    o->depths             = pgs_depths;
    o->running_by_worker  = pgs_running_by_worker;
}
