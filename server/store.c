// store.c - the store_* calls the engine makes, each handed to the ops of
// the opened store (store.h says what a backend guarantees), and the
// helpers that need no backend. store_open() is the SQLite backend's
// (store_sqlite.c).
#include "store.h"

#include <stdlib.h>
#include <string.h>

void
store_close(struct store *st)
{
    if (st != NULL)
        st->ops->close(st);
}

int
store_set_deferred_sync(struct store *st, bool on, struct anvil_error *err)
{
    return st->ops->set_deferred_sync(st, on, err);
}

bool
store_needs_sync(const struct store *st)
{
    return st->ops->needs_sync(st);
}

int
store_sync(struct store *st, struct anvil_error *err)
{
    return st->ops->sync(st, err);
}

// ---- transactions ----

int
store_begin(struct store *st, struct anvil_error *err)
{
    return st->ops->begin(st, err);
}

int
store_commit(struct store *st, struct anvil_error *err)
{
    return st->ops->commit(st, err);
}

int
store_rollback(struct store *st, struct anvil_error *err)
{
    return st->ops->rollback(st, err);
}

int
store_savepoint(struct store *st, struct anvil_error *err)
{
    return st->ops->savepoint(st, err);
}

int
store_release(struct store *st, struct anvil_error *err)
{
    return st->ops->release(st, err);
}

int
store_rollback_savepoint(struct store *st, struct anvil_error *err)
{
    return st->ops->rollback_savepoint(st, err);
}

// ---- jobs ----

int
store_job_insert(struct store *st, const struct store_new_job *nj, int64_t *id,
    struct anvil_error *err)
{
    return st->ops->job_insert(st, nj, id, err);
}

int
store_job_by_request(
    struct store *st, uint64_t rid, int64_t *id, struct anvil_error *err)
{
    return st->ops->job_by_request(st, rid, id, err);
}

int
store_job_by_key(
    struct store *st, const char *key, int64_t *id, struct anvil_error *err)
{
    return st->ops->job_by_key(st, key, id, err);
}

int
store_job_get(
    struct store *st, int64_t id, struct job *out, struct anvil_error *err)
{
    return st->ops->job_get(st, id, out, err);
}

int
store_job_lease(struct store *st, int64_t id, const char *worker,
    int64_t token_id, int64_t now, int64_t default_lease, struct job *out,
    struct anvil_error *err)
{
    return st->ops->job_lease_key(
        st, id, NULL, worker, token_id, now, default_lease, out, err);
}

int
store_job_lease_key(struct store *st, int64_t id, const char *key,
    const char *worker, int64_t token_id, int64_t now, int64_t default_lease,
    struct job *out, struct anvil_error *err)
{
    return st->ops->job_lease_key(
        st, id, key, worker, token_id, now, default_lease, out, err);
}

int
store_job_finish(struct store *st, int64_t id, int state, const uint8_t *result,
    size_t result_len, const char *error, int64_t now, struct anvil_error *err)
{
    return st->ops->job_finish(
        st, id, state, result, result_len, error, now, err);
}

int
store_job_requeue(struct store *st, int64_t id, int state, int64_t run_at,
    const char *error, struct anvil_error *err)
{
    return st->ops->job_requeue(st, id, state, run_at, error, err);
}

int
store_job_make_ready(struct store *st, int64_t id, struct anvil_error *err)
{
    return st->ops->job_make_ready(st, id, err);
}

int
store_job_extend(
    struct store *st, int64_t id, int64_t deadline, struct anvil_error *err)
{
    return st->ops->job_extend(st, id, deadline, err);
}

int
store_job_request_cancel(struct store *st, int64_t id, struct anvil_error *err)
{
    return st->ops->job_request_cancel(st, id, err);
}

int
store_job_progress(struct store *st, int64_t id, int32_t percent,
    const char *message, bool *changed, struct anvil_error *err)
{
    return st->ops->job_progress(st, id, percent, message, changed, err);
}

int
store_job_brief(struct store *st, int64_t id, struct store_job_brief *b,
    struct anvil_error *err)
{
    return st->ops->job_brief(st, id, b, err);
}

int
store_job_list(struct store *st, const struct store_list_filter *f,
    struct job **jobs, size_t *n, struct anvil_error *err)
{
    return st->ops->job_list(st, f, jobs, n, err);
}

int
store_job_ids(struct store *st, const struct store_list_filter *f,
    bool plain_only, int64_t **ids, size_t *n, struct anvil_error *err)
{
    return st->ops->job_ids(st, f, plain_only, ids, n, err);
}

int
store_scan_active(struct store *st, int (*fn)(void *arg, const struct job *j),
    void *arg, struct anvil_error *err)
{
    return st->ops->scan_active(st, fn, arg, err);
}

int
store_depths(struct store *st, struct store_depth **out, size_t *n,
    uint64_t *total, struct anvil_error *err)
{
    return st->ops->depths(st, out, n, total, err);
}

void
store_depths_free(struct store_depth *d, size_t n)
{
    for (size_t i = 0; d != NULL && i < n; i++) {
        free(d[i].queue);
        free(d[i].type);
    }
    free(d);
}

int
store_running_by_worker(struct store *st,
    void (*fn)(void *arg, const char *worker, uint32_t running), void *arg,
    struct anvil_error *err)
{
    return st->ops->running_by_worker(st, fn, arg, err);
}

// ---- workflows ----

int
store_workflow_insert(struct store *st, const struct store_new_workflow *nw,
    int64_t *id, struct anvil_error *err)
{
    return st->ops->workflow_insert(st, nw, id, err);
}

int
store_workflow_by_request(
    struct store *st, uint64_t rid, int64_t *id, struct anvil_error *err)
{
    return st->ops->workflow_by_request(st, rid, id, err);
}

int
store_workflow_by_key(
    struct store *st, const char *key, int64_t *id, struct anvil_error *err)
{
    return st->ops->workflow_by_key(st, key, id, err);
}

int
store_edge_insert(
    struct store *st, int64_t parent, int64_t child, struct anvil_error *err)
{
    return st->ops->edge_insert(st, parent, child, err);
}

int
store_workflow_get(struct store *st, int64_t id, bool with_steps,
    struct workflow *out, struct anvil_error *err)
{
    return st->ops->workflow_get(st, id, with_steps, out, err);
}

int
store_workflow_list(struct store *st, const struct store_list_filter *f,
    struct workflow **out, size_t *n, struct anvil_error *err)
{
    return st->ops->workflow_list(st, f, out, n, err);
}

int
store_workflow_settle(struct store *st, int64_t id, bool succeeded, bool failed,
    struct store_wf_counts *c, struct anvil_error *err)
{
    return st->ops->workflow_settle(st, id, succeeded, failed, c, err);
}

int
store_workflow_finish(struct store *st, int64_t id, int state,
    const char *error, int64_t now, struct anvil_error *err)
{
    return st->ops->workflow_finish(st, id, state, error, now, err);
}

int
store_workflow_unfinished(struct store *st, int64_t id, int64_t **ids,
    size_t *n, struct anvil_error *err)
{
    return st->ops->workflow_unfinished(st, id, ids, n, err);
}

int
store_workflow_scan_active(struct store *st,
    int (*fn)(void *arg, int64_t id, int64_t deadline), void *arg,
    struct anvil_error *err)
{
    return st->ops->workflow_scan_active(st, fn, arg, err);
}

int
store_job_children(struct store *st, int64_t parent, int64_t **ids, size_t *n,
    struct anvil_error *err)
{
    return st->ops->job_children(st, parent, ids, n, err);
}

int
store_job_parent_results(struct store *st, int64_t child,
    struct parent_result **out, size_t *n, struct anvil_error *err)
{
    return st->ops->job_parent_results(st, child, out, n, err);
}

int
store_job_parent_done(
    struct store *st, int64_t child, uint32_t *pending, struct anvil_error *err)
{
    return st->ops->job_parent_done(st, child, pending, err);
}

// ---- retention ----

int
store_sweep_jobs(struct store *st, int64_t before, int limit, int *deleted,
    struct anvil_error *err)
{
    return st->ops->sweep_jobs(st, before, limit, deleted, err);
}

int
store_sweep_workflows(struct store *st, int64_t before, int limit, int *deleted,
    struct anvil_error *err)
{
    return st->ops->sweep_workflows(st, before, limit, deleted, err);
}

// ---- tokens ----

int
store_token_insert(struct store *st, const char *name, int role,
    const uint8_t *hash, size_t hash_len, int64_t created_at,
    int64_t expires_at, int64_t *id, struct anvil_error *err)
{
    return st->ops->token_insert(
        st, name, role, hash, hash_len, created_at, expires_at, id, err);
}

int
store_token_list(struct store *st, struct store_token **out, size_t *n,
    struct anvil_error *err)
{
    return st->ops->token_list(st, out, n, err);
}

void
store_tokens_free(struct store_token *t, size_t n)
{
    for (size_t i = 0; t != NULL && i < n; i++)
        free(t[i].name);
    free(t);
}

int
store_token_revoke(
    struct store *st, int64_t id, int64_t now, struct anvil_error *err)
{
    return st->ops->token_revoke(st, id, now, err);
}

// ---- retrying ----

int
store_job_retry(struct store *st, int64_t id, int state,
    uint32_t pending_parents, uint32_t max_attempts, struct anvil_error *err)
{
    return st->ops->job_retry(
        st, id, state, pending_parents, max_attempts, err);
}

int
store_workflow_reopen(
    struct store *st, int64_t id, int64_t now, struct anvil_error *err)
{
    return st->ops->workflow_reopen(st, id, now, err);
}

// ---- events ----

int
store_event_insert(struct store *st, const struct store_new_event *ev,
    uint64_t *seq, struct anvil_error *err)
{
    return st->ops->event_insert(st, ev, seq, err);
}

int
store_event_append(
    struct store *st, const struct store_new_event *ev, struct anvil_error *err)
{
    uint64_t seq;
    if (st->ops->event_append != NULL)
        return st->ops->event_append(st, ev, err);
    return st->ops->event_insert(st, ev, &seq, err);
}

int
store_events_read(struct store *st, const struct store_event_filter *f,
    struct store_event **out, size_t *n, uint64_t *scanned_to,
    struct anvil_error *err)
{
    return st->ops->events_read(st, f, out, n, scanned_to, err);
}

void
store_events_free(struct store_event *ev, size_t n)
{
    for (size_t i = 0; ev != NULL && i < n; i++) {
        free(ev[i].step);
        free(ev[i].type);
        free(ev[i].queue);
        free(ev[i].worker);
        free(ev[i].message);
    }
    free(ev);
}

int
store_events_bounds(
    struct store *st, uint64_t *first, uint64_t *last, struct anvil_error *err)
{
    return st->ops->events_bounds(st, first, last, err);
}

int
store_sweep_events(struct store *st, int64_t before, uint64_t below_seq,
    int limit, int *deleted, struct anvil_error *err)
{
    return st->ops->sweep_events(st, before, below_seq, limit, deleted, err);
}

// ---- paused queues ----

int
store_queue_set_paused(struct store *st, const char *queue, bool paused,
    int64_t now, bool *changed, struct anvil_error *err)
{
    return st->ops->queue_set_paused(st, queue, paused, now, changed, err);
}

int
store_queues_paused(
    struct store *st, char ***names, size_t *n, struct anvil_error *err)
{
    return st->ops->queues_paused(st, names, n, err);
}

int
store_queue_limit_set(struct store *st, const struct store_queue_limit *l,
    struct anvil_error *err)
{
    return st->ops->queue_limit_set(st, l, err);
}

int
store_queue_limit_save(struct store *st, const char *queue, double tokens,
    int64_t at, struct anvil_error *err)
{
    return st->ops->queue_limit_save(st, queue, tokens, at, err);
}

int
store_queue_limit_get(struct store *st, const char *queue,
    struct store_queue_limit *out, struct anvil_error *err)
{
    return st->ops->queue_limit_get(st, queue, out, err);
}

int
store_queue_limits(struct store *st, struct store_queue_limit **out, size_t *n,
    struct anvil_error *err)
{
    return st->ops->queue_limits(st, out, n, err);
}

void
store_queue_limits_free(struct store_queue_limit *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i].queue);
    free(v);
}

void
store_names_free(char **names, size_t n)
{
    for (size_t i = 0; names != NULL && i < n; i++)
        free(names[i]);
    free(names);
}

// ---- schedules ----

int
store_schedule_insert(struct store *st, const struct store_schedule *s,
    int64_t *id, struct anvil_error *err)
{
    return st->ops->schedule_insert(st, s, id, err);
}

int
store_schedule_get(struct store *st, int64_t id, const char *name,
    struct store_schedule *out, struct anvil_error *err)
{
    return st->ops->schedule_get(st, id, name, out, err);
}

int
store_schedule_list(struct store *st, struct store_schedule **out, size_t *n,
    struct anvil_error *err)
{
    return st->ops->schedule_list(st, out, n, err);
}

int
store_schedule_update(
    struct store *st, const struct store_schedule *s, struct anvil_error *err)
{
    return st->ops->schedule_update(st, s, err);
}

int
store_schedule_delete(struct store *st, int64_t id, struct anvil_error *err)
{
    return st->ops->schedule_delete(st, id, err);
}

void
store_schedule_fini(struct store_schedule *s)
{
    if (s == NULL)
        return;
    free(s->name);
    free(s->expr);
    free(s->tz);
    free(s->type);
    free(s->queue);
    free(s->payload);
    free(s->workflow);
    memset(s, 0, sizeof(*s));
}

void
store_schedules_free(struct store_schedule *s, size_t n)
{
    for (size_t i = 0; s != NULL && i < n; i++)
        store_schedule_fini(&s[i]);
    free(s);
}
