// store_schedules.c - the SQLite backend's cron schedules: one row per
// schedule in table schedules, columns in SCHED_COLS order.
#include "store_sqlite.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>

static int
sq_schedule_insert(struct store *base, const struct store_schedule *r,
    int64_t *id, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_SCHED_INSERT);
    const char *text[]      = { r->name, r->expr, r->tz, r->type, r->queue };
    for (int i = 0; i < 5; i++)
        sq_bind_text(st, s, 2 + i, text[i]);
    sq_bind_blob(st, s, 7, r->payload != NULL ? r->payload : (uint8_t *) "",
        r->payload_len);
    int64_t ints[] = { r->priority, r->retry.max_attempts,
        r->retry.initial_backoff_ms, r->retry.max_backoff_ms };
    for (int i = 0; i < 4; i++)
        sq_bind_i64(st, s, 8 + i, ints[i]);
    sq_bind_double(st, s, 12, r->retry.backoff_multiplier);
    int64_t more[] = { r->timeout_ms, r->lease_ms, r->overlap, r->catch_up,
        r->catch_up_limit, r->paused, r->next_fire_at, r->last_fire_at,
        r->last_job_id, (int64_t) r->fired, (int64_t) r->skipped,
        r->created_at };
    for (int i = 0; i < 12; i++)
        sq_bind_i64(st, s, 13 + i, more[i]);
    if (r->request_id != 0)
        sq_bind_i64(st, s, 25, (int64_t) r->request_id);
    if (r->workflow != NULL)
        sq_bind_blob(st, s, 26, r->workflow, r->workflow_len);
    int rc = sq_exec(st, STMT_SCHED_INSERT, err, "inserting a schedule");
    if (rc == ANVIL_OK)
        *id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

// One SCHED_COLS row into r; RESOURCE_EXHAUSTED when out of memory.
static int
read_schedule(sqlite3_stmt *s, struct store_schedule *r)
{
    memset(r, 0, sizeof(*r));
    r->id         = sqlite3_column_int64(s, 0);
    char **text[] = { &r->name, &r->expr, &r->tz, &r->type, &r->queue };
    bool   ok     = true;
    for (int i = 0; i < 5; i++) {
        *text[i] = sq_col_str(s, 1 + i);
        ok       = ok && *text[i] != NULL;
    }
    r->payload                  = sq_col_blob(s, 6, &r->payload_len);
    r->priority                 = sqlite3_column_int(s, 7);
    r->retry.max_attempts       = (uint32_t) sqlite3_column_int64(s, 8);
    r->retry.initial_backoff_ms = sqlite3_column_int64(s, 9);
    r->retry.max_backoff_ms     = sqlite3_column_int64(s, 10);
    r->retry.backoff_multiplier = sqlite3_column_double(s, 11);
    r->timeout_ms               = sqlite3_column_int64(s, 12);
    r->lease_ms                 = sqlite3_column_int64(s, 13);
    r->overlap                  = sqlite3_column_int(s, 14);
    r->catch_up                 = sqlite3_column_int(s, 15);
    r->catch_up_limit           = (uint32_t) sqlite3_column_int64(s, 16);
    r->paused                   = sqlite3_column_int(s, 17) != 0;
    r->next_fire_at             = sqlite3_column_int64(s, 18);
    r->last_fire_at             = sqlite3_column_int64(s, 19);
    r->last_job_id              = sqlite3_column_int64(s, 20);
    r->fired                    = (uint64_t) sqlite3_column_int64(s, 21);
    r->skipped                  = (uint64_t) sqlite3_column_int64(s, 22);
    r->created_at               = sqlite3_column_int64(s, 23);
    r->request_id               = (uint64_t) sqlite3_column_int64(s, 24);
    if (sqlite3_column_type(s, 25) != SQLITE_NULL) {
        r->workflow = sq_col_blob(s, 25, &r->workflow_len);
        ok          = ok && r->workflow != NULL;
    }
    if (ok && r->payload != NULL)
        return ANVIL_OK;
    store_schedule_fini(r);
    return ANVIL_RESOURCE_EXHAUSTED;
}

static int
sq_schedule_get(struct store *base, int64_t id, const char *name,
    struct store_schedule *out, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    int           sid = name != NULL ? STMT_SCHED_GET_NAME : STMT_SCHED_GET;
    sqlite3_stmt *s   = sq_stmt(st, sid);
    if (name != NULL)
        sq_bind_text(st, s, 1, name);
    else
        sq_bind_i64(st, s, 1, id);
    int rc   = sq_step(st, sid);
    int code = ANVIL_NOT_FOUND;
    if (rc == SQLITE_ROW && read_schedule(s, out) != ANVIL_OK)
        code = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    else if (rc == SQLITE_ROW)
        code = ANVIL_OK;
    else if (rc != SQLITE_DONE)
        code = sq_error(st, err, "reading a schedule");
    sq_reset(st, sid);
    return code;
}

static int
sq_schedule_list(struct store *base, struct store_schedule **out, size_t *n,
    struct anvil_error *err)
{
    struct sqlite_store   *st  = sq(base);
    sqlite3_stmt          *s   = sq_stmt(st, STMT_SCHED_LIST);
    struct store_schedule *v   = NULL;
    size_t                 cnt = 0, cap = 0;
    int                    code = ANVIL_OK;
    int                    rc   = sq_step(st, STMT_SCHED_LIST);
    for (; rc == SQLITE_ROW && code == ANVIL_OK;
         rc = sq_step(st, STMT_SCHED_LIST)) {
        if (cnt == cap) {
            cap                      = cap ? cap * 2 : 8;
            struct store_schedule *p = realloc(v, cap * sizeof(*v));
            if (p == NULL) {
                code = ANVIL_RESOURCE_EXHAUSTED;
                break;
            }
            v = p;
        }
        code = read_schedule(s, &v[cnt]);
        cnt += code == ANVIL_OK;
    }
    if (code != ANVIL_OK)
        av_error_set(err, code, "out of memory");
    else if (rc != SQLITE_DONE)
        code = sq_error(st, err, "listing the schedules");
    sq_reset(st, STMT_SCHED_LIST);
    if (code != ANVIL_OK) {
        store_schedules_free(v, cnt);
        return code;
    }
    *out = v;
    *n   = cnt;
    return ANVIL_OK;
}

static int
sq_schedule_update(
    struct store *base, const struct store_schedule *r, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt *s = sq_stmt_pair(st, STMT_SCHED_UPDATE, r->id, r->paused);
    sq_bind_i64(st, s, 3, r->next_fire_at);
    sq_bind_i64(st, s, 4, r->last_fire_at);
    sq_bind_i64(st, s, 5, r->last_job_id);
    sq_bind_i64(st, s, 6, (int64_t) r->fired);
    sq_bind_i64(st, s, 7, (int64_t) r->skipped);
    return sq_update_one(st, STMT_SCHED_UPDATE, err, "updating a schedule");
}

static int
sq_schedule_delete(struct store *base, int64_t id, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sq_bind_i64(st, sq_stmt(st, STMT_SCHED_DELETE), 1, id);
    return sq_update_one(st, STMT_SCHED_DELETE, err, "deleting a schedule");
}

void
sq_schedules_ops(struct store_ops *o)
{
    o->schedule_insert = sq_schedule_insert;
    o->schedule_get    = sq_schedule_get;
    o->schedule_list   = sq_schedule_list;
    o->schedule_update = sq_schedule_update;
    o->schedule_delete = sq_schedule_delete;
}
