// store_flows.c - workflows, their edges and a step's parents in the
// SQLite backend.
#include "store_sqlite.h"

#include "util/error.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

static int
sq_workflow_insert(struct store *base, const struct store_new_workflow *nw,
    int64_t *id, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_WF_INSERT);
    sq_bind_text(st, s, 1, nw->name);
    sq_bind_i64(st, s, 2, nw->on_failure);
    sq_bind_i64(st, s, 3, nw->created_at);
    sq_bind_i64(st, s, 4, nw->timeout_ms);
    sq_bind_text_or_null(st, s, 5, nw->idem_key);
    if (nw->request_id != 0)
        sq_bind_i64(st, s, 6, (sqlite3_int64) nw->request_id);
    sq_bind_i64(st, s, 7, nw->n_steps);
    sq_bind_i64(st, s, 8, st->next_wf_id);
    int rc = sq_exec(st, STMT_WF_INSERT, err, "inserting a workflow");
    if (rc == ANVIL_OK)
        *id = st->next_wf_id++;
    return rc;
}

static int
sq_edge_insert(
    struct store *base, int64_t parent, int64_t child, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sq_stmt_pair(st, STMT_EDGE_INSERT, parent, child);
    return sq_exec(st, STMT_EDGE_INSERT, err, "inserting an edge");
}

static int
read_workflow(sqlite3_stmt *s, struct workflow *w)
{
    memset(w, 0, sizeof(*w));
    w->id          = sqlite3_column_int64(s, 0);
    w->name        = sq_col_str(s, 1);
    w->state       = sqlite3_column_int(s, 2);
    w->on_failure  = sqlite3_column_int(s, 3);
    w->created_at  = sqlite3_column_int64(s, 4);
    w->finished_at = sqlite3_column_int64(s, 5);
    w->timeout_ms  = sqlite3_column_int64(s, 6);
    w->error       = sq_col_str(s, 7);
    w->idem_key    = sq_col_str(s, 8);
    w->n_steps     = (uint32_t) sqlite3_column_int64(s, 9);
    w->n_settled   = (uint32_t) sqlite3_column_int64(s, 10);
    w->n_succeeded = (uint32_t) sqlite3_column_int64(s, 11);
    w->n_failed    = (uint32_t) sqlite3_column_int64(s, 12);
    w->retried_at  = sqlite3_column_int64(s, 13);
    if (!w->name || !w->error || !w->idem_key) {
        workflow_fini(w);
        return ANVIL_RESOURCE_EXHAUSTED;
    }
    return ANVIL_OK;
}

// Finds the step with id in steps (sorted by id).
static struct job *
step_by_id(struct workflow *w, int64_t id)
{
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (w->steps[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < w->n && w->steps[lo].id == id ? &w->steps[lo] : NULL;
}

static int
add_after(struct job *j, const char *name)
{
    char **p = realloc(j->after, (j->n_after + 1) * sizeof(*p));
    if (p == NULL)
        return -1;
    j->after      = p;
    p[j->n_after] = strdup(name);
    return p[j->n_after++] ? 0 : -1;
}

// Fills each step's `after` with its parents' names.
static int
read_edges(struct sqlite_store *st, struct workflow *w, struct anvil_error *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_WF_EDGES);
    sq_bind_i64(st, s, 1, w->id);
    int rc, code = ANVIL_OK;
    while ((rc = sq_step(st, STMT_WF_EDGES)) == SQLITE_ROW) {
        struct job *child = step_by_id(w, sqlite3_column_int64(s, 0));
        const char *name  = (const char *) sqlite3_column_text(s, 1);
        if (child != NULL && add_after(child, name ? name : "") != 0) {
            code = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
            break;
        }
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = sq_error(st, err, "reading workflow edges");
    sq_reset(st, STMT_WF_EDGES);
    return code;
}

static int
sq_workflow_by_key(
    struct store *base, const char *key, int64_t *id, struct anvil_error *err)
{
    return sq_find_by_text(sq(base), STMT_WF_BY_KEY, key, id, err,
        "looking up a workflow by idempotency key");
}

static int
sq_workflow_get(struct store *base, int64_t id, bool with_steps,
    struct workflow *out, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_WF_GET);
    sq_bind_i64(st, s, 1, id);
    int rc   = sq_step(st, STMT_WF_GET);
    int code = ANVIL_OK;
    if (rc == SQLITE_ROW)
        code = read_workflow(s, out);
    else if (rc == SQLITE_DONE)
        code = ANVIL_NOT_FOUND;
    else
        code = sq_error(st, err, "reading a workflow");
    sq_reset(st, STMT_WF_GET);
    if (code != ANVIL_OK || !with_steps)
        return code;
    sq_bind_i64(st, sq_stmt(st, STMT_WF_STEPS), 1, id);
    code = sq_read_jobs(
        st, STMT_WF_STEPS, &out->steps, &out->n, err, "reading workflow steps");
    if (code == ANVIL_OK)
        code = read_edges(st, out, err);
    if (code != ANVIL_OK)
        workflow_fini(out);
    return code;
}

static int
sq_workflow_list(struct store *base, const struct store_list_filter *f,
    struct workflow **out, size_t *n, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_WF_LIST);
    sq_bind_i64(st, s, 1, f->state);
    sq_bind_text_or_null(st, s, 2, f->type);
    sq_bind_i64(st, s, 3, f->before_id > 0 ? f->before_id : INT64_MAX);
    sq_bind_i64(st, s, 4, f->limit);
    struct workflow *w   = NULL;
    size_t           cnt = 0;
    int              rc, code = ANVIL_OK;
    while ((rc = sq_step(st, STMT_WF_LIST)) == SQLITE_ROW) {
        struct workflow *p = realloc(w, (cnt + 1) * sizeof(*w));
        if (p == NULL || read_workflow(s, &p[cnt]) != ANVIL_OK) {
            if (p != NULL)
                w = p;
            code = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
            break;
        }
        w = p;
        cnt++;
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = sq_error(st, err, "listing workflows");
    sq_reset(st, STMT_WF_LIST);
    if (code != ANVIL_OK) {
        workflow_array_free(w, cnt);
        return code;
    }
    *out = w;
    *n   = cnt;
    return ANVIL_OK;
}

// Reads the counts by rowid, then writes the new ones (no RETURNING).
static int
sq_workflow_settle(struct store *base, int64_t id, bool succeeded, bool failed,
    struct store_wf_counts *c, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_WF_COUNTS);
    sq_bind_i64(st, s, 1, id);
    int rc = sq_step(st, STMT_WF_COUNTS);
    if (rc == SQLITE_ROW) {
        c->state       = sqlite3_column_int(s, 0);
        c->on_failure  = sqlite3_column_int(s, 1);
        c->n_steps     = (uint32_t) sqlite3_column_int64(s, 2);
        c->n_settled   = (uint32_t) sqlite3_column_int64(s, 3) + 1;
        c->n_succeeded = (uint32_t) sqlite3_column_int64(s, 4) + succeeded;
        c->n_failed    = (uint32_t) sqlite3_column_int64(s, 5) + failed;
    }
    sq_reset(st, STMT_WF_COUNTS);
    if (rc == SQLITE_DONE)
        return ANVIL_NOT_FOUND;
    if (rc != SQLITE_ROW)
        return sq_error(st, err, "counting a workflow's steps");
    s = sq_stmt_pair(st, STMT_WF_SETTLE, id, c->n_settled);
    sq_bind_i64(st, s, 3, c->n_succeeded);
    sq_bind_i64(st, s, 4, c->n_failed);
    return sq_exec(st, STMT_WF_SETTLE, err, "counting a workflow's steps");
}

static int
sq_workflow_finish(struct store *base, int64_t id, int state, const char *error,
    int64_t now, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt_pair(st, STMT_WF_FINISH, id, state);
    sq_bind_text_or_null(st, s, 3, error);
    sq_bind_i64(st, s, 4, now);
    return sq_update_one(st, STMT_WF_FINISH, err, "finishing a workflow");
}

// The workflow's timeout then counts from now: scan_active's deadline is
// max(created_at, retried_at) + timeout_ms.
static int
sq_workflow_reopen(
    struct store *base, int64_t id, int64_t now, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sq_stmt_pair(st, STMT_WF_REOPEN, id, now);
    return sq_update_one(st, STMT_WF_REOPEN, err, "reopening a workflow");
}

// Collects column 0 of a statement's rows as ids.
static int
sq_workflow_unfinished(struct store *base, int64_t id, int64_t **ids, size_t *n,
    struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sq_bind_i64(st, sq_stmt(st, STMT_WF_UNFINISHED), 1, id);
    return sq_read_ids(st, STMT_WF_UNFINISHED, ids, n, err, "reading ids");
}

static int
sq_job_children(struct store *base, int64_t parent, int64_t **ids, size_t *n,
    struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sq_bind_i64(st, sq_stmt(st, STMT_CHILDREN), 1, parent);
    return sq_read_ids(st, STMT_CHILDREN, ids, n, err, "reading ids");
}

static int
sq_workflow_scan_active(struct store *base,
    int (*fn)(void *arg, int64_t id, int64_t deadline), void *arg,
    struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_WF_SCAN_ACTIVE);
    int                  rc, code = ANVIL_OK;
    while ((rc = sq_step(st, STMT_WF_SCAN_ACTIVE)) == SQLITE_ROW) {
        code = fn(arg, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1));
        if (code != ANVIL_OK)
            break;
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = sq_error(st, err, "scanning workflows");
    sq_reset(st, STMT_WF_SCAN_ACTIVE);
    return code;
}

static int
sq_job_parent_results(struct store *base, int64_t child,
    struct parent_result **out, size_t *n, struct anvil_error *err)
{
    struct sqlite_store  *st  = sq(base);
    sqlite3_stmt         *s   = sq_stmt(st, STMT_PARENT_RESULTS);
    struct parent_result *r   = NULL;
    size_t                cnt = 0, cap = 0;
    int                   rc, code     = ANVIL_OK;
    sq_bind_i64(st, s, 1, child);
    while ((rc = sq_step(st, STMT_PARENT_RESULTS)) == SQLITE_ROW) {
        struct parent_result *p = r;
        if (cnt == cap) { // a join may have thousands of parents
            cap = cap ? cap * 2 : 4;
            p   = realloc(r, cap * sizeof(*r));
        }
        if (p != NULL) {
            r             = p;
            r[cnt].step   = sq_col_str(s, 0);
            r[cnt].result = sq_col_blob(s, 1, &r[cnt].len);
        }
        if (p == NULL || !r[cnt].step || !r[cnt].result) {
            if (p != NULL)
                cnt++;
            code = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
            break;
        }
        cnt++;
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = sq_error(st, err, "reading parents' results");
    sq_reset(st, STMT_PARENT_RESULTS);
    if (code != ANVIL_OK) {
        for (size_t i = 0; i < cnt; i++) {
            free(r[i].step);
            free(r[i].result);
        }
        free(r);
        return code;
    }
    *out = r;
    *n   = cnt;
    return ANVIL_OK;
}

// Reads the count by rowid, then writes the new one (no RETURNING).
static int
sq_job_parent_done(struct store *base, int64_t child, uint32_t *pending,
    struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_PARENT_PENDING);
    sq_bind_i64(st, s, 1, child);
    int     rc    = sq_step(st, STMT_PARENT_PENDING);
    int     state = 0;
    int64_t left  = 0;
    if (rc == SQLITE_ROW) {
        state = sqlite3_column_int(s, 0);
        left  = sqlite3_column_int64(s, 1) - 1;
    }
    sq_reset(st, STMT_PARENT_PENDING);
    if (rc == SQLITE_DONE || (rc == SQLITE_ROW && state != ANVIL_JOB_PENDING))
        return ANVIL_NOT_FOUND;
    if (rc != SQLITE_ROW)
        return sq_error(st, err, "unblocking a step");
    sq_stmt_pair(st, STMT_PARENT_DONE, child, left);
    rc = sq_exec(st, STMT_PARENT_DONE, err, "unblocking a step");
    if (rc == ANVIL_OK)
        *pending = (uint32_t) left;
    return rc;
}

static int
sq_workflow_by_request(
    struct store *base, uint64_t rid, int64_t *id, struct anvil_error *err)
{
    return sq_find_by_i64(sq(base), STMT_WF_BY_RID, (int64_t) rid, id, err,
        "looking up a workflow by request id");
}

void
sq_flows_ops(struct store_ops *o)
{
    o->workflow_by_request  = sq_workflow_by_request;
    o->workflow_by_key      = sq_workflow_by_key;
    o->workflow_get         = sq_workflow_get;
    o->workflow_list        = sq_workflow_list;
    o->workflow_unfinished  = sq_workflow_unfinished;
    o->job_children         = sq_job_children;
    o->workflow_scan_active = sq_workflow_scan_active;
    o->job_parent_results   = sq_job_parent_results;
    o->workflow_insert      = sq_workflow_insert;
    o->edge_insert          = sq_edge_insert;
    o->workflow_settle      = sq_workflow_settle;
    o->workflow_finish      = sq_workflow_finish;
    o->job_parent_done      = sq_job_parent_done;
    o->workflow_reopen      = sq_workflow_reopen;
}
