// store_pg_flows.c - workflows, their edges and a step's parents in the
// PostgreSQL backend.
#include "store_pg.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>

static int
pgs_workflow_insert(struct store *base, const struct store_new_workflow *nw,
    int64_t *id, struct anvil_error *err)
{
    struct pg_store *st = pg(base);
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, nw->name);
    pg_p_i64(&p, nw->on_failure);
    pg_p_i64(&p, nw->created_at);
    pg_p_i64(&p, nw->timeout_ms);
    pg_p_bytes_or_null(&p, nw->idem_key);
    if (nw->request_id != 0)
        pg_p_i64(&p, (int64_t) nw->request_id);
    else
        pg_p_null(&p);
    pg_p_i64(&p, nw->n_steps);
    pg_p_i64(&p, st->next_wf_id);
    int rc = pg_defer(st, PG_WF_INSERT, &p, err, "inserting a workflow");
    if (rc == ANVIL_OK)
        *id = st->next_wf_id++;
    return rc;
}

static int
pgs_edge_insert(
    struct store *base, int64_t parent, int64_t child, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, parent);
    pg_p_i64(&p, child);
    return pg_defer(pg(base), PG_EDGE_INSERT, &p, err, "inserting an edge");
}

static int
read_workflow(const PGresult *r, int row, struct workflow *w)
{
    memset(w, 0, sizeof(*w));
    w->id          = pg_i64(r, row, 0);
    w->name        = pg_str(r, row, 1);
    w->state       = (int) pg_i64(r, row, 2);
    w->on_failure  = (int) pg_i64(r, row, 3);
    w->created_at  = pg_i64(r, row, 4);
    w->finished_at = pg_i64(r, row, 5);
    w->timeout_ms  = pg_i64(r, row, 6);
    w->error       = pg_str(r, row, 7);
    w->idem_key    = pg_str(r, row, 8);
    w->n_steps     = (uint32_t) pg_i64(r, row, 9);
    w->n_settled   = (uint32_t) pg_i64(r, row, 10);
    w->n_succeeded = (uint32_t) pg_i64(r, row, 11);
    w->n_failed    = (uint32_t) pg_i64(r, row, 12);
    w->retried_at  = pg_i64(r, row, 13);
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
read_edges(struct pg_store *st, struct workflow *w, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, w->id);
    PGresult *r  = NULL;
    int       rc = pg_query(st, PG_WF_EDGES, &p, &r, err, "reading edges");
    for (int i = 0; rc == ANVIL_OK && i < PQntuples(r); i++) {
        struct job *child = step_by_id(w, pg_i64(r, i, 0));
        if (child != NULL && add_after(child, PQgetvalue(r, i, 1)) != 0)
            rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    PQclear(r);
    return rc;
}

static int
pgs_workflow_by_key(
    struct store *base, const char *key, int64_t *id, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_bytes_or_null(&p, key);
    return pg_find_id(pg(base), PG_WF_BY_KEY, &p, id, err,
        "looking up a workflow by idempotency key");
}

static int
pgs_workflow_by_request(
    struct store *base, uint64_t rid, int64_t *id, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, (int64_t) rid);
    return pg_find_id(pg(base), PG_WF_BY_RID, &p, id, err,
        "looking up a workflow by request id");
}

static int
pgs_workflow_get(struct store *base, int64_t id, bool with_steps,
    struct workflow *out, struct anvil_error *err)
{
    struct pg_store *st = pg(base);
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    PGresult *r  = NULL;
    int       rc = pg_query(st, PG_WF_GET, &p, &r, err, "reading a workflow");
    if (rc != ANVIL_OK)
        return rc;
    if (PQntuples(r) == 0)
        rc = ANVIL_NOT_FOUND;
    else if (read_workflow(r, 0, out) != ANVIL_OK)
        rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    PQclear(r);
    if (rc != ANVIL_OK || !with_steps)
        return rc;
    rc = pg_read_jobs(st, PG_WF_STEPS, &p, &out->steps, &out->n, err,
        "reading workflow steps");
    if (rc == ANVIL_OK)
        rc = read_edges(st, out, err);
    if (rc != ANVIL_OK)
        workflow_fini(out);
    return rc;
}

static int
pgs_workflow_list(struct store *base, const struct store_list_filter *f,
    struct workflow **out, size_t *n, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, f->state);
    pg_p_text_or_null(&p, f->type);
    pg_p_i64(&p, f->before_id > 0 ? f->before_id : INT64_MAX);
    pg_p_i64(&p, f->limit);
    PGresult *r = NULL;
    int rc = pg_query(pg(base), PG_WF_LIST, &p, &r, err, "listing workflows");
    if (rc != ANVIL_OK)
        return rc;
    size_t           want = (size_t) PQntuples(r), cnt = 0;
    struct workflow *w = want ? calloc(want, sizeof(*w)) : NULL;
    if (want > 0 && w == NULL)
        rc = ANVIL_RESOURCE_EXHAUSTED;
    for (; rc == ANVIL_OK && cnt < want; cnt++)
        rc = read_workflow(r, (int) cnt, &w[cnt]);
    PQclear(r);
    if (rc != ANVIL_OK) {
        workflow_array_free(w, cnt > 0 ? cnt - 1 : 0);
        return av_error_set(err, rc, "out of memory");
    }
    *out = w;
    *n   = cnt;
    return ANVIL_OK;
}

// One UPDATE ... RETURNING the counts after.
static int
pgs_workflow_settle(struct store *base, int64_t id, bool succeeded, bool failed,
    struct store_wf_counts *c, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    pg_p_i64(&p, succeeded);
    pg_p_i64(&p, failed);
    PGresult *r  = NULL;
    int       rc = pg_query(
              pg(base), PG_WF_SETTLE, &p, &r, err, "counting a workflow's steps");
    if (rc != ANVIL_OK)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return ANVIL_NOT_FOUND;
    }
    c->state       = (int) pg_i64(r, 0, 0);
    c->on_failure  = (int) pg_i64(r, 0, 1);
    c->n_steps     = (uint32_t) pg_i64(r, 0, 2);
    c->n_settled   = (uint32_t) pg_i64(r, 0, 3);
    c->n_succeeded = (uint32_t) pg_i64(r, 0, 4);
    c->n_failed    = (uint32_t) pg_i64(r, 0, 5);
    PQclear(r);
    return ANVIL_OK;
}

static int
pgs_workflow_finish(struct store *base, int64_t id, int state,
    const char *error, int64_t now, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    pg_p_i64(&p, state);
    pg_p_bytes_or_null(&p, error);
    pg_p_i64(&p, now);
    return pg_update_one(
        pg(base), PG_WF_FINISH, &p, err, "finishing a workflow");
}

static int
pgs_workflow_reopen(
    struct store *base, int64_t id, int64_t now, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    pg_p_i64(&p, now);
    return pg_update_one(
        pg(base), PG_WF_REOPEN, &p, err, "reopening a workflow");
}

static int
ids_of(struct store *base, int sid, int64_t v, int64_t **ids, size_t *n,
    struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, v);
    return pg_read_ids(pg(base), sid, &p, ids, n, err, "reading ids");
}

static int
pgs_workflow_unfinished(struct store *base, int64_t id, int64_t **ids,
    size_t *n, struct anvil_error *err)
{
    return ids_of(base, PG_WF_UNFINISHED, id, ids, n, err);
}

static int
pgs_job_children(struct store *base, int64_t parent, int64_t **ids, size_t *n,
    struct anvil_error *err)
{
    return ids_of(base, PG_CHILDREN, parent, ids, n, err);
}

static int
pgs_workflow_scan_active(struct store *base,
    int (*fn)(void *arg, int64_t id, int64_t deadline), void *arg,
    struct anvil_error *err)
{
    PGresult *r  = NULL;
    int       rc = pg_query(
              pg(base), PG_WF_SCAN_ACTIVE, NULL, &r, err, "scanning workflows");
    for (int i = 0; rc == ANVIL_OK && i < PQntuples(r); i++)
        rc = fn(arg, pg_i64(r, i, 0), pg_i64(r, i, 1));
    PQclear(r);
    return rc;
}

static int
pgs_job_parent_results(struct store *base, int64_t child,
    struct parent_result **out, size_t *n, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, child);
    PGresult *r  = NULL;
    int       rc = pg_query(
              pg(base), PG_PARENT_RESULTS, &p, &r, err, "reading parents' results");
    if (rc != ANVIL_OK)
        return rc;
    size_t                want = (size_t) PQntuples(r), cnt = 0;
    struct parent_result *v = want ? calloc(want, sizeof(*v)) : NULL;
    if (want > 0 && v == NULL)
        rc = ANVIL_RESOURCE_EXHAUSTED;
    for (; rc == ANVIL_OK && cnt < want; cnt++) {
        v[cnt].step   = pg_str(r, (int) cnt, 0);
        v[cnt].result = pg_blob(r, (int) cnt, 1, &v[cnt].len);
        if (v[cnt].step == NULL || v[cnt].result == NULL)
            rc = ANVIL_RESOURCE_EXHAUSTED;
    }
    PQclear(r);
    if (rc != ANVIL_OK) {
        for (size_t i = 0; i < cnt; i++) {
            free(v[i].step);
            free(v[i].result);
        }
        free(v);
        return av_error_set(err, rc, "out of memory");
    }
    *out = v;
    *n   = cnt;
    return ANVIL_OK;
}

// One UPDATE ... RETURNING the count left, only of a PENDING step.
static int
pgs_job_parent_done(struct store *base, int64_t child, uint32_t *pending,
    struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, child);
    int64_t left = 0;
    int     rc   = pg_find_id(
              pg(base), PG_PARENT_DONE, &p, &left, err, "unblocking a step");
    if (rc == ANVIL_OK)
        *pending = (uint32_t) left;
    return rc;
}

void
pg_flows_ops(struct store_ops *o)
{
    o->workflow_by_request  = pgs_workflow_by_request;
    o->workflow_by_key      = pgs_workflow_by_key;
    o->workflow_get         = pgs_workflow_get;
    o->workflow_list        = pgs_workflow_list;
    o->workflow_unfinished  = pgs_workflow_unfinished;
    o->job_children         = pgs_job_children;
    o->workflow_scan_active = pgs_workflow_scan_active;
    o->job_parent_results   = pgs_job_parent_results;
    o->workflow_insert      = pgs_workflow_insert;
    o->edge_insert          = pgs_edge_insert;
    o->workflow_settle      = pgs_workflow_settle;
    o->workflow_finish      = pgs_workflow_finish;
    o->job_parent_done      = pgs_job_parent_done;
    o->workflow_reopen      = pgs_workflow_reopen;
}
