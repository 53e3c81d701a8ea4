// store_jobs.c - the job rows of the SQLite backend.
#include "store_sqlite.h"

#include "util/error.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
sq_job_insert(struct store *base, const struct store_new_job *nj, int64_t *id,
    struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_JOB_INSERT);
    sq_bind_text(st, s, 1, nj->type);
    sq_bind_text(st, s, 2, nj->queue);
    sq_bind_blob(st, s, 3, nj->payload ? (const void *) nj->payload : "",
        nj->payload_len);
    sq_bind_i64(st, s, 4, nj->priority);
    sq_bind_i64(st, s, 5, nj->state);
    sq_bind_i64(st, s, 6, nj->retry.max_attempts);
    sq_bind_i64(st, s, 7, nj->created_at);
    sq_bind_i64(st, s, 8, nj->run_at);
    sq_bind_i64(st, s, 9, nj->timeout_ms);
    sq_bind_i64(st, s, 10, nj->lease_ms);
    sq_bind_text_or_null(st, s, 11, nj->idem_key);
    if (nj->request_id != 0)
        sq_bind_i64(st, s, 12, (sqlite3_int64) nj->request_id);
    if (nj->workflow_id != 0) {
        sq_bind_i64(st, s, 13, nj->workflow_id);
        sq_bind_text(st, s, 14, nj->step);
    }
    sq_bind_i64(st, s, 15, (sqlite3_int64) nj->pending_parents);
    sq_bind_i64(st, s, 16, nj->retry.initial_backoff_ms);
    sq_bind_i64(st, s, 17, nj->retry.max_backoff_ms);
    sq_bind_double(st, s, 18, nj->retry.backoff_multiplier);
    sq_bind_i64(st, s, 19, st->next_job_id);
    sq_bind_text_or_null(st, s, 20, nj->concurrency_key);
    sq_bind_i64(st, s, 21, nj->concurrency_limit);
    int rc = sq_exec(st, STMT_JOB_INSERT, err, "inserting a job");
    if (rc == ANVIL_OK)
        *id = st->next_job_id++;
    return rc;
}

static int
sq_job_by_request(
    struct store *base, uint64_t rid, int64_t *id, struct anvil_error *err)
{
    return sq_find_by_i64(sq(base), STMT_JOB_BY_RID, (int64_t) rid, id, err,
        "looking up a job by request id");
}

static int
sq_job_by_key(
    struct store *base, const char *key, int64_t *id, struct anvil_error *err)
{
    return sq_find_by_text(sq(base), STMT_JOB_BY_KEY, key, id, err,
        "looking up a job by idempotency key");
}

static int
read_job(sqlite3_stmt *s, struct job *j)
{
    memset(j, 0, sizeof(*j));
    j->id                       = sqlite3_column_int64(s, 0);
    j->type                     = sq_col_str(s, 1);
    j->queue                    = sq_col_str(s, 2);
    j->payload                  = sq_col_blob(s, 3, &j->payload_len);
    j->priority                 = sqlite3_column_int(s, 4);
    j->state                    = sqlite3_column_int(s, 5);
    j->attempt                  = (uint32_t) sqlite3_column_int64(s, 6);
    j->retry.max_attempts       = (uint32_t) sqlite3_column_int64(s, 7);
    j->result                   = sq_col_blob(s, 8, &j->result_len);
    j->error                    = sq_col_str(s, 9);
    j->created_at               = sqlite3_column_int64(s, 10);
    j->started_at               = sqlite3_column_int64(s, 11);
    j->finished_at              = sqlite3_column_int64(s, 12);
    j->run_at                   = sqlite3_column_int64(s, 13);
    j->timeout_ms               = sqlite3_column_int64(s, 14);
    j->lease_deadline           = sqlite3_column_int64(s, 15);
    j->worker_id                = sq_col_str(s, 16);
    j->idem_key                 = sq_col_str(s, 17);
    j->cancel_requested         = sqlite3_column_int(s, 18) != 0;
    j->workflow_id              = sqlite3_column_int64(s, 19);
    j->step                     = sq_col_str(s, 20);
    j->lease_ms                 = sqlite3_column_int64(s, 21);
    j->retry.initial_backoff_ms = sqlite3_column_int64(s, 22);
    j->retry.max_backoff_ms     = sqlite3_column_int64(s, 23);
    j->retry.backoff_multiplier = sqlite3_column_double(s, 24);
    j->has_progress             = sqlite3_column_type(s, 25) != SQLITE_NULL;
    j->progress_percent         = sqlite3_column_int(s, 25);
    j->progress_message         = sq_col_str(s, 26);
    j->concurrency_key          = sq_col_str(s, 27);
    j->concurrency_limit        = (uint32_t) sqlite3_column_int64(s, 28);
    if (!j->concurrency_key || !j->progress_message || !j->type || !j->queue
        || !j->payload || !j->result || !j->error || !j->worker_id
        || !j->idem_key || !j->step) {
        job_fini(j);
        return ANVIL_RESOURCE_EXHAUSTED;
    }
    return ANVIL_OK;
}

// Steps a statement expected to yield one job row.
static int
one_job(struct sqlite_store *st, int sid, struct job *out,
    struct anvil_error *err, const char *what)
{
    int rc   = sq_step(st, sid);
    int code = ANVIL_OK;
    if (rc == SQLITE_ROW)
        code = read_job(st->stmt[sid], out);
    else if (rc == SQLITE_DONE)
        code = ANVIL_NOT_FOUND;
    else
        code = sq_error(st, err, what);
    sq_reset(st, sid);
    if (code == ANVIL_RESOURCE_EXHAUSTED)
        av_error_set(err, code, "out of memory reading job");
    return code;
}

static int
sq_job_get(
    struct store *base, int64_t id, struct job *out, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_JOB_GET);
    sq_bind_i64(st, s, 1, id);
    return one_job(st, STMT_JOB_GET, out, err, "reading a job");
}

// Whether key is "queue\x1ftype" of j.
static bool
key_matches(const struct job *j, const char *key)
{
    size_t ql = strlen(j->queue);
    return strncmp(key, j->queue, ql) == 0 && key[ql] == '\x1f'
        && strcmp(key + ql + 1, j->type) == 0;
}

// Reads the job, checks it in C, then updates it by rowid: no
// UPDATE ... RETURNING (see the top of this file).
static int
sq_job_lease_key(struct store *base, int64_t id, const char *key,
    const char *worker, int64_t token_id, int64_t now, int64_t default_lease,
    struct job *out, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sq_bind_i64(st, sq_stmt(st, STMT_JOB_GET), 1, id);
    int rc = one_job(st, STMT_JOB_GET, out, err, "leasing a job");
    if (rc != ANVIL_OK)
        return rc;
    if (out->state != ANVIL_JOB_QUEUED
        || (key != NULL && !key_matches(out, key))) {
        job_fini(out);
        return ANVIL_NOT_FOUND;
    }
    int64_t deadline
        = now + (out->lease_ms > 0 ? out->lease_ms : default_lease);
    char *w = strdup(worker != NULL ? worker : "");
    if (w == NULL) {
        job_fini(out);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    sqlite3_stmt *s = sq_stmt_pair(
        st, STMT_JOB_LEASE, id, (sqlite3_int64) out->attempt + 1);
    sq_bind_i64(st, s, 3, now);
    sq_bind_i64(st, s, 4, deadline);
    sq_bind_text(st, s, 5, worker);
    sq_bind_i64(st, s, 6, token_id);
    rc = sq_exec(st, STMT_JOB_LEASE, err, "leasing a job");
    if (rc != ANVIL_OK) {
        free(w);
        job_fini(out);
        return rc;
    }
    free(out->worker_id);
    out->worker_id      = w;
    out->state          = ANVIL_JOB_RUNNING;
    out->attempt        = out->attempt + 1;
    out->started_at     = now;
    out->lease_deadline = deadline;
    out->finished_at    = 0;
    return ANVIL_OK;
}

static int
sq_job_finish(struct store *base, int64_t id, int state, const uint8_t *result,
    size_t result_len, const char *error, int64_t now, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt_pair(st, STMT_JOB_FINISH, id, state);
    if (result != NULL)
        sq_bind_blob(st, s, 3, result, result_len);
    sq_bind_text_or_null(st, s, 4, error);
    sq_bind_i64(st, s, 5, now);
    return sq_exec(st, STMT_JOB_FINISH, err, "finishing a job");
}

static int
sq_job_requeue(struct store *base, int64_t id, int state, int64_t run_at,
    const char *error, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt_pair(st, STMT_JOB_REQUEUE, id, state);
    sq_bind_i64(st, s, 3, run_at);
    sq_bind_text_or_null(st, s, 4, error);
    return sq_exec(st, STMT_JOB_REQUEUE, err, "requeueing a job");
}

static int
sq_job_make_ready(struct store *base, int64_t id, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_JOB_MAKE_READY);
    sq_bind_i64(st, s, 1, id);
    return sq_update_one(st, STMT_JOB_MAKE_READY, err, "queueing a job");
}

static int
sq_job_retry(struct store *base, int64_t id, int state,
    uint32_t pending_parents, uint32_t max_attempts, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    if (state != ANVIL_JOB_QUEUED && state != ANVIL_JOB_PENDING)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "retrying a job: state %d is neither QUEUED nor PENDING", state);
    sqlite3_stmt *s = sq_stmt_pair(st, STMT_JOB_RETRY, id, state);
    sq_bind_i64(st, s, 3, pending_parents);
    sq_bind_i64(st, s, 4, max_attempts);
    return sq_update_one(st, STMT_JOB_RETRY, err, "retrying a job");
}

static int
sq_job_extend(
    struct store *base, int64_t id, int64_t deadline, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sq_stmt_pair(st, STMT_JOB_EXTEND, id, deadline);
    return sq_exec(st, STMT_JOB_EXTEND, err, "extending a lease");
}

static int
sq_job_request_cancel(struct store *base, int64_t id, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_JOB_CANCEL_REQ);
    sq_bind_i64(st, s, 1, id);
    return sq_exec(st, STMT_JOB_CANCEL_REQ, err, "requesting a cancel");
}

static int
sq_job_progress(struct store *base, int64_t id, int32_t percent,
    const char *message, bool *changed, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt_pair(st, STMT_JOB_PROGRESS, id, percent);
    sq_bind_text(st, s, 3, message != NULL ? message : "");
    int rc   = sq_update_one(st, STMT_JOB_PROGRESS, err, "recording progress");
    *changed = rc == ANVIL_OK;
    return rc == ANVIL_NOT_FOUND ? ANVIL_OK : rc;
}

// Column i as text into buf, cut to len - 1 bytes as snprintf "%s" would
// cut it, at a fraction of its cost (each job's brief, read on every
// Complete, Fail and lease timer, copies four columns).
static void
copy_col(sqlite3_stmt *s, int i, char *buf, size_t len)
{
    const char *t = (const char *) sqlite3_column_text(s, i);
    size_t      n = t != NULL ? strnlen(t, len - 1) : 0;
    memcpy(buf, t != NULL ? t : "", n);
    buf[n] = '\0';
}

static int
sq_job_brief(struct store *base, int64_t id, struct store_job_brief *b,
    struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_JOB_BRIEF);
    sq_bind_i64(st, s, 1, id);
    int rc = sq_step(st, STMT_JOB_BRIEF);
    if (rc == SQLITE_ROW) {
        b->state                    = sqlite3_column_int(s, 0);
        b->attempt                  = (uint32_t) sqlite3_column_int64(s, 1);
        b->retry.max_attempts       = (uint32_t) sqlite3_column_int64(s, 2);
        b->lease_deadline           = sqlite3_column_int64(s, 3);
        b->started_at               = sqlite3_column_int64(s, 4);
        b->timeout_ms               = sqlite3_column_int64(s, 5);
        b->lease_ms                 = sqlite3_column_int64(s, 6);
        b->run_at                   = sqlite3_column_int64(s, 7);
        b->priority                 = sqlite3_column_int(s, 8);
        b->cancel_requested         = sqlite3_column_int(s, 9) != 0;
        b->workflow_id              = sqlite3_column_int64(s, 10);
        b->retry.initial_backoff_ms = sqlite3_column_int64(s, 11);
        b->retry.max_backoff_ms     = sqlite3_column_int64(s, 12);
        b->retry.backoff_multiplier = sqlite3_column_double(s, 13);
        b->lease_token              = sqlite3_column_int64(s, 14);
        copy_col(s, 15, b->queue, sizeof(b->queue));
        copy_col(s, 16, b->type, sizeof(b->type));
        copy_col(s, 17, b->step, sizeof(b->step));
        copy_col(s, 18, b->concurrency_key, sizeof(b->concurrency_key));
        b->concurrency_limit = (uint32_t) sqlite3_column_int64(s, 19);
    }
    sq_reset(st, STMT_JOB_BRIEF);
    if (rc == SQLITE_ROW)
        return ANVIL_OK;
    if (rc == SQLITE_DONE)
        return ANVIL_NOT_FOUND;
    return sq_error(st, err, "reading a job's state");
}

// Grows *jobs to hold at least want entries.
static int
grow(struct job **jobs, size_t *cap, size_t want)
{
    if (want <= *cap)
        return 0;
    size_t      ncap = *cap ? *cap * 2 : 16;
    struct job *p    = realloc(*jobs, ncap * sizeof(**jobs));
    if (p == NULL)
        return -1;
    *jobs = p;
    *cap  = ncap;
    return 0;
}

// Reads a statement's job rows into a new array.
int
sq_read_jobs(struct sqlite_store *st, int sid, struct job **jobs, size_t *n,
    struct anvil_error *err, const char *what)
{
    struct job *out = NULL;
    size_t      cnt = 0, cap = 0;
    int         rc, code     = ANVIL_OK;
    while ((rc = sq_step(st, sid)) == SQLITE_ROW) {
        if (grow(&out, &cap, cnt + 1) || read_job(st->stmt[sid], &out[cnt])) {
            code = av_error_set(
                err, ANVIL_RESOURCE_EXHAUSTED, "out of memory %s", what);
            break;
        }
        cnt++;
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = sq_error(st, err, what);
    sq_reset(st, sid);
    if (code != ANVIL_OK) {
        job_array_free(out, cnt);
        return code;
    }
    *jobs = out;
    *n    = cnt;
    return ANVIL_OK;
}

// Binds f to statement sid's JOB_FILTER (?1-?7); returns the statement.
static sqlite3_stmt *
bind_filter(struct sqlite_store *st, int sid, const struct store_list_filter *f)
{
    sqlite3_stmt *s = sq_stmt(st, sid);
    sq_bind_i64(st, s, 1, f->state);
    sq_bind_text_or_null(st, s, 2, f->type);
    sq_bind_text_or_null(st, s, 3, f->queue);
    sq_bind_i64(st, s, 4, f->before_id > 0 ? f->before_id : INT64_MAX);
    sq_bind_i64(st, s, 5, f->limit);
    sq_bind_i64(st, s, 6, f->since);
    sq_bind_i64(st, s, 7, f->until > 0 ? f->until : INT64_MAX);
    return s;
}

static int
sq_job_list(struct store *base, const struct store_list_filter *f,
    struct job **jobs, size_t *n, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    bind_filter(st, STMT_JOB_LIST, f);
    return sq_read_jobs(st, STMT_JOB_LIST, jobs, n, err, "listing jobs");
}

static int
sq_job_ids(struct store *base, const struct store_list_filter *f,
    bool plain_only, int64_t **ids, size_t *n, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = bind_filter(st, STMT_JOB_IDS, f);
    sq_bind_i64(st, s, 8, plain_only);
    return sq_read_ids(st, STMT_JOB_IDS, ids, n, err, "selecting jobs");
}

static int
sq_scan_active(struct store *base, int (*fn)(void *, const struct job *),
    void *arg, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_SCAN_ACTIVE);
    int                  rc, code = ANVIL_OK;
    while ((rc = sq_step(st, STMT_SCAN_ACTIVE)) == SQLITE_ROW) {
        struct job j = {
            .id                = sqlite3_column_int64(s, 0),
            .type              = (char *) sqlite3_column_text(s, 1),
            .queue             = (char *) sqlite3_column_text(s, 2),
            .priority          = sqlite3_column_int(s, 3),
            .state             = sqlite3_column_int(s, 4),
            .attempt           = (uint32_t) sqlite3_column_int64(s, 5),
            .run_at            = sqlite3_column_int64(s, 6),
            .lease_deadline    = sqlite3_column_int64(s, 7),
            .started_at        = sqlite3_column_int64(s, 8),
            .timeout_ms        = sqlite3_column_int64(s, 9),
            .concurrency_key   = (char *) sqlite3_column_text(s, 10),
            .concurrency_limit = (uint32_t) sqlite3_column_int64(s, 11),
        };
        if (j.concurrency_key == NULL)
            j.concurrency_key = (char *) "";
        code = fn(arg, &j);
        if (code != ANVIL_OK) {
            av_error_set(err, code, "rebuilding state: out of memory");
            break;
        }
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = sq_error(st, err, "scanning active jobs");
    sq_reset(st, STMT_SCAN_ACTIVE);
    return code;
}

static int
depth_cmp(const void *a, const void *b)
{
    const struct store_depth *x = a, *y = b;
    int                       c = strcmp(x->queue, y->queue);
    return c != 0 ? c : strcmp(x->type, y->type);
}

static int
sq_depths(struct store *base, struct store_depth **out, size_t *n,
    uint64_t *total, struct anvil_error *err)
{
    struct sqlite_store *st  = sq(base);
    sqlite3_stmt        *s   = sq_stmt(st, STMT_DEPTHS);
    struct store_depth  *d   = NULL;
    size_t               cnt = 0;
    int                  rc, code = ANVIL_OK;
    // Rows come by state (SCHEDULED, QUEUED, RUNNING), then queue and type.
    while ((rc = sq_step(st, STMT_DEPTHS)) == SQLITE_ROW) {
        const char *queue = (const char *) sqlite3_column_text(s, 1);
        const char *type  = (const char *) sqlite3_column_text(s, 2);
        size_t      i     = 0;
        while (i < cnt
            && (strcmp(d[i].queue, queue) != 0 || strcmp(d[i].type, type) != 0))
            i++;
        if (i == cnt) {
            struct store_depth *p = realloc(d, (cnt + 1) * sizeof(*d));
            if (p == NULL) {
                code = av_error_set(
                    err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
                break;
            }
            d      = p;
            d[cnt] = (struct store_depth) { .queue = sq_col_str(s, 1),
                .type                              = sq_col_str(s, 2) };
            cnt++;
        }
        uint64_t k     = (uint64_t) sqlite3_column_int64(s, 3);
        int      state = sqlite3_column_int(s, 0);
        if (state == ANVIL_JOB_SCHEDULED)
            d[i].scheduled = k;
        else if (state == ANVIL_JOB_QUEUED)
            d[i].queued = k;
        else
            d[i].running = k;
    }
    if (code == ANVIL_OK && cnt > 1)
        qsort(d, cnt, sizeof(*d), depth_cmp);
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = sq_error(st, err, "reading queue depths");
    sq_reset(st, STMT_DEPTHS);
    if (code != ANVIL_OK) {
        store_depths_free(d, cnt);
        return code;
    }
    *out   = d;
    *n     = cnt;
    *total = (uint64_t) (st->next_job_id - 1);
    return ANVIL_OK;
}

static int
sq_running_by_worker(struct store *base,
    void (*fn)(void *arg, const char *worker, uint32_t running), void *arg,
    struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_RUNNING_BY_WORKER);
    int                  rc;
    while ((rc = sq_step(st, STMT_RUNNING_BY_WORKER)) == SQLITE_ROW) {
        const char *w = (const char *) sqlite3_column_text(s, 0);
        fn(arg, w ? w : "", (uint32_t) sqlite3_column_int64(s, 1));
    }
    sq_reset(st, STMT_RUNNING_BY_WORKER);
    if (rc != SQLITE_DONE)
        return sq_error(st, err, "counting running jobs");
    return ANVIL_OK;
}

// Reads.
static void
read_ops(struct store_ops *o)
{
    o->job_by_request    = sq_job_by_request;
    o->job_by_key        = sq_job_by_key;
    o->job_get           = sq_job_get;
    o->job_brief         = sq_job_brief;
    o->job_list          = sq_job_list;
    o->job_ids           = sq_job_ids;
    o->scan_active       = sq_scan_active;
    o->depths            = sq_depths;
    o->running_by_worker = sq_running_by_worker;
}

void
sq_jobs_ops(struct store_ops *o)
{
    o->job_insert         = sq_job_insert;
    o->job_lease_key      = sq_job_lease_key;
    o->job_finish         = sq_job_finish;
    o->job_requeue        = sq_job_requeue;
    o->job_make_ready     = sq_job_make_ready;
    o->job_extend         = sq_job_extend;
    o->job_request_cancel = sq_job_request_cancel;
    o->job_progress       = sq_job_progress;
    o->job_retry          = sq_job_retry;
    read_ops(o);
}
