// store_pg_misc.c - the PostgreSQL backend's small tables: API tokens
// (only their hashes), paused queues, queue rate limits and cron
// schedules. Token and schedule ids come from identity columns, which
// never hand out a value twice (a rolled-back insert's id is skipped).
#include "store_pg.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>

// ---- tokens ----

static int
pgs_token_insert(struct store *base, const char *name, int role,
    const uint8_t *hash, size_t hash_len, int64_t created_at,
    int64_t expires_at, int64_t *id, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, name);
    pg_p_i64(&p, role);
    pg_p_blob(&p, hash, hash_len);
    pg_p_i64(&p, created_at);
    pg_p_i64(&p, expires_at);
    int rc = pg_find_id(
        pg(base), PG_TOKEN_INSERT, &p, id, err, "inserting a token");
    return rc == ANVIL_NOT_FOUND
        ? av_error_set(err, ANVIL_INTERNAL, "inserting a token: no id returned")
        : rc;
}

static int
pgs_token_list(struct store *base, struct store_token **out, size_t *n,
    struct anvil_error *err)
{
    PGresult *r = NULL;
    int rc = pg_query(pg(base), PG_TOKEN_LIST, NULL, &r, err, "listing tokens");
    if (rc != ANVIL_OK)
        return rc;
    size_t              cnt = (size_t) PQntuples(r), i = 0;
    struct store_token *t = cnt ? calloc(cnt, sizeof(*t)) : NULL;
    if (cnt > 0 && t == NULL)
        rc = ANVIL_RESOURCE_EXHAUSTED;
    for (; rc == ANVIL_OK && i < cnt; i++) {
        int row   = (int) i;
        t[i].id   = pg_i64(r, row, 0);
        t[i].name = pg_str(r, row, 1);
        t[i].role = (int) pg_i64(r, row, 2);
        if (PQgetlength(r, row, 3) == (int) sizeof(t[i].hash))
            memcpy(t[i].hash, PQgetvalue(r, row, 3), sizeof(t[i].hash));
        t[i].created_at = pg_i64(r, row, 4);
        t[i].expires_at = pg_i64(r, row, 5);
        t[i].revoked_at = pg_i64(r, row, 6);
        if (t[i].name == NULL)
            rc = ANVIL_RESOURCE_EXHAUSTED;
    }
    PQclear(r);
    if (rc != ANVIL_OK) {
        store_tokens_free(t, i);
        return av_error_set(err, rc, "out of memory");
    }
    *out = t;
    *n   = cnt;
    return ANVIL_OK;
}

static int
pgs_token_revoke(
    struct store *base, int64_t id, int64_t now, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    pg_p_i64(&p, now);
    return pg_update_one(
        pg(base), PG_TOKEN_REVOKE, &p, err, "revoking a token");
}

// ---- paused queues and rate limits ----

static int
pgs_queue_set_paused(struct store *base, const char *queue, bool paused,
    int64_t now, bool *changed, struct anvil_error *err)
{
    struct pg_store *st = pg(base);
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, queue);
    if (paused)
        pg_p_i64(&p, now);
    int rc = pg_exec(st, paused ? PG_QUEUE_PAUSE : PG_QUEUE_RESUME, &p, err,
        paused ? "pausing a queue" : "resuming a queue");
    if (rc == ANVIL_OK)
        *changed = st->changes > 0;
    return rc;
}

static int
pgs_queues_paused(
    struct store *base, char ***names, size_t *n, struct anvil_error *err)
{
    PGresult *r  = NULL;
    int       rc = pg_query(
              pg(base), PG_QUEUES_PAUSED, NULL, &r, err, "listing the paused queues");
    if (rc != ANVIL_OK)
        return rc;
    size_t cnt = (size_t) PQntuples(r), i = 0;
    char **v = cnt ? calloc(cnt, sizeof(*v)) : NULL;
    if (cnt > 0 && v == NULL)
        rc = ANVIL_RESOURCE_EXHAUSTED;
    for (; rc == ANVIL_OK && i < cnt; i++) {
        if ((v[i] = pg_str(r, (int) i, 0)) == NULL)
            rc = ANVIL_RESOURCE_EXHAUSTED;
    }
    PQclear(r);
    if (rc != ANVIL_OK) {
        store_names_free(v, i);
        return av_error_set(err, rc, "out of memory");
    }
    *names = v;
    *n     = cnt;
    return ANVIL_OK;
}

static int
pgs_queue_limit_set(struct store *base, const struct store_queue_limit *l,
    struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, l->queue);
    if (l->rate <= 0)
        return pg_exec(
            pg(base), PG_LIMIT_DELETE, &p, err, "removing a rate limit");
    pg_p_double(&p, l->rate);
    pg_p_i64(&p, l->burst);
    pg_p_double(&p, l->tokens);
    pg_p_i64(&p, l->at);
    return pg_exec(pg(base), PG_LIMIT_SET, &p, err, "setting a rate limit");
}

static int
pgs_queue_limit_save(struct store *base, const char *queue, double tokens,
    int64_t at, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, queue);
    pg_p_double(&p, tokens);
    pg_p_i64(&p, at);
    return pg_exec(
        pg(base), PG_LIMIT_SAVE, &p, err, "storing a rate limit's tokens");
}

// Row i of a queue_limits result (queue, rate, burst, tokens, at_ms),
// without its queue.
static struct store_queue_limit
limit_row(PGresult *r, int row)
{
    int64_t burst = pg_i64(r, row, 2);
    return (struct store_queue_limit) {
        .rate   = pg_f64(r, row, 1),
        .burst  = burst > 0 && burst <= UINT32_MAX ? (uint32_t) burst : 1,
        .tokens = pg_f64(r, row, 3),
        .at     = pg_i64(r, row, 4),
    };
}

static int
pgs_queue_limit_get(struct store *base, const char *queue,
    struct store_queue_limit *out, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, queue);
    PGresult *r = NULL;
    int       rc
        = pg_query(pg(base), PG_LIMIT_GET, &p, &r, err, "reading a rate limit");
    if (rc != ANVIL_OK)
        return rc;
    if (PQntuples(r) == 0)
        rc = av_error_set(
            err, ANVIL_NOT_FOUND, "queue %s has no rate limit", queue);
    else
        *out = limit_row(r, 0);
    PQclear(r);
    return rc;
}

static int
pgs_queue_limits(struct store *base, struct store_queue_limit **out, size_t *n,
    struct anvil_error *err)
{
    PGresult *r  = NULL;
    int       rc = pg_query(
              pg(base), PG_LIMITS, NULL, &r, err, "listing the rate limits");
    if (rc != ANVIL_OK)
        return rc;
    size_t                    cnt = (size_t) PQntuples(r), i = 0;
    struct store_queue_limit *v = cnt ? calloc(cnt, sizeof(*v)) : NULL;
    if (cnt > 0 && v == NULL)
        rc = ANVIL_RESOURCE_EXHAUSTED;
    for (; rc == ANVIL_OK && i < cnt; i++) {
        v[i]       = limit_row(r, (int) i);
        v[i].queue = pg_str(r, (int) i, 0);
        if (v[i].queue == NULL)
            rc = ANVIL_RESOURCE_EXHAUSTED;
    }
    PQclear(r);
    if (rc != ANVIL_OK) {
        store_queue_limits_free(v, i);
        return av_error_set(err, rc, "out of memory");
    }
    *out = v;
    *n   = cnt;
    return ANVIL_OK;
}

// ---- schedules ----

static int
pgs_schedule_insert(struct store *base, const struct store_schedule *s,
    int64_t *id, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    const char *text[] = { s->name, s->expr, s->tz, s->type, s->queue };
    for (int i = 0; i < 5; i++)
        pg_p_text(&p, text[i]);
    pg_p_blob(&p, s->payload, s->payload_len);
    int64_t ints[] = { s->priority, s->retry.max_attempts,
        s->retry.initial_backoff_ms, s->retry.max_backoff_ms };
    for (int i = 0; i < 4; i++)
        pg_p_i64(&p, ints[i]);
    pg_p_double(&p, s->retry.backoff_multiplier);
    int64_t more[] = { s->timeout_ms, s->lease_ms, s->overlap, s->catch_up,
        s->catch_up_limit, s->paused, s->next_fire_at, s->last_fire_at,
        s->last_job_id, (int64_t) s->fired, (int64_t) s->skipped,
        s->created_at };
    for (int i = 0; i < 12; i++)
        pg_p_i64(&p, more[i]);
    if (s->request_id != 0)
        pg_p_i64(&p, (int64_t) s->request_id);
    else
        pg_p_null(&p);
    if (s->workflow != NULL)
        pg_p_blob(&p, s->workflow, s->workflow_len);
    else
        pg_p_null(&p);
    int rc = pg_find_id(
        pg(base), PG_SCHED_INSERT, &p, id, err, "inserting a schedule");
    return rc == ANVIL_NOT_FOUND ? av_error_set(
               err, ANVIL_INTERNAL, "inserting a schedule: no id returned")
                                 : rc;
}

// One PG_SCHED_COLS row into s; RESOURCE_EXHAUSTED when out of memory.
static int
read_schedule(const PGresult *r, int row, struct store_schedule *s)
{
    memset(s, 0, sizeof(*s));
    s->id         = pg_i64(r, row, 0);
    char **text[] = { &s->name, &s->expr, &s->tz, &s->type, &s->queue };
    bool   ok     = true;
    for (int i = 0; i < 5; i++) {
        *text[i] = pg_str(r, row, 1 + i);
        ok       = ok && *text[i] != NULL;
    }
    s->payload                  = pg_blob(r, row, 6, &s->payload_len);
    s->priority                 = (int32_t) pg_i64(r, row, 7);
    s->retry.max_attempts       = (uint32_t) pg_i64(r, row, 8);
    s->retry.initial_backoff_ms = pg_i64(r, row, 9);
    s->retry.max_backoff_ms     = pg_i64(r, row, 10);
    s->retry.backoff_multiplier = pg_f64(r, row, 11);
    s->timeout_ms               = pg_i64(r, row, 12);
    s->lease_ms                 = pg_i64(r, row, 13);
    s->overlap                  = (int) pg_i64(r, row, 14);
    s->catch_up                 = (int) pg_i64(r, row, 15);
    s->catch_up_limit           = (uint32_t) pg_i64(r, row, 16);
    s->paused                   = pg_i64(r, row, 17) != 0;
    s->next_fire_at             = pg_i64(r, row, 18);
    s->last_fire_at             = pg_i64(r, row, 19);
    s->last_job_id              = pg_i64(r, row, 20);
    s->fired                    = (uint64_t) pg_i64(r, row, 21);
    s->skipped                  = (uint64_t) pg_i64(r, row, 22);
    s->created_at               = pg_i64(r, row, 23);
    s->request_id               = (uint64_t) pg_i64(r, row, 24);
    if (!pg_null(r, row, 25)) {
        s->workflow = pg_blob(r, row, 25, &s->workflow_len);
        ok          = ok && s->workflow != NULL;
    }
    if (ok && s->payload != NULL)
        return ANVIL_OK;
    store_schedule_fini(s);
    return ANVIL_RESOURCE_EXHAUSTED;
}

static int
pgs_schedule_get(struct store *base, int64_t id, const char *name,
    struct store_schedule *out, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    if (name != NULL)
        pg_p_text(&p, name);
    else
        pg_p_i64(&p, id);
    PGresult *r = NULL;
    int rc = pg_query(pg(base), name != NULL ? PG_SCHED_GET_NAME : PG_SCHED_GET,
        &p, &r, err, "reading a schedule");
    if (rc != ANVIL_OK)
        return rc;
    if (PQntuples(r) == 0)
        rc = ANVIL_NOT_FOUND;
    else if (read_schedule(r, 0, out) != ANVIL_OK)
        rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    PQclear(r);
    return rc;
}

static int
pgs_schedule_list(struct store *base, struct store_schedule **out, size_t *n,
    struct anvil_error *err)
{
    PGresult *r  = NULL;
    int       rc = pg_query(
              pg(base), PG_SCHED_LIST, NULL, &r, err, "listing the schedules");
    if (rc != ANVIL_OK)
        return rc;
    size_t                 cnt = (size_t) PQntuples(r), i = 0;
    struct store_schedule *v = cnt ? calloc(cnt, sizeof(*v)) : NULL;
    if (cnt > 0 && v == NULL)
        rc = ANVIL_RESOURCE_EXHAUSTED;
    for (; rc == ANVIL_OK && i < cnt; i++) {
        rc = read_schedule(r, (int) i, &v[i]);
        if (rc != ANVIL_OK)
            break; // v[i] is already freed
    }
    PQclear(r);
    if (rc != ANVIL_OK) {
        store_schedules_free(v, i);
        return av_error_set(err, rc, "out of memory");
    }
    *out = v;
    *n   = cnt;
    return ANVIL_OK;
}

static int
pgs_schedule_update(
    struct store *base, const struct store_schedule *s, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, s->id);
    pg_p_i64(&p, s->paused);
    pg_p_i64(&p, s->next_fire_at);
    pg_p_i64(&p, s->last_fire_at);
    pg_p_i64(&p, s->last_job_id);
    pg_p_i64(&p, (int64_t) s->fired);
    pg_p_i64(&p, (int64_t) s->skipped);
    return pg_update_one(
        pg(base), PG_SCHED_UPDATE, &p, err, "updating a schedule");
}

static int
pgs_schedule_delete(struct store *base, int64_t id, struct anvil_error *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, id);
    return pg_update_one(
        pg(base), PG_SCHED_DELETE, &p, err, "deleting a schedule");
}

void
pg_misc_ops(struct store_ops *o)
{
    o->token_insert     = pgs_token_insert;
    o->token_list       = pgs_token_list;
    o->token_revoke     = pgs_token_revoke;
    o->queue_set_paused = pgs_queue_set_paused;
    o->queues_paused    = pgs_queues_paused;
    o->queue_limit_set  = pgs_queue_limit_set;
    o->queue_limit_save = pgs_queue_limit_save;
    o->queue_limits     = pgs_queue_limits;
    o->queue_limit_get  = pgs_queue_limit_get;
    o->schedule_insert  = pgs_schedule_insert;
    o->schedule_get     = pgs_schedule_get;
    o->schedule_list    = pgs_schedule_list;
    o->schedule_update  = pgs_schedule_update;
    o->schedule_delete  = pgs_schedule_delete;
}
