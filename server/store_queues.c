// store_queues.c - the SQLite backend's paused queues (PauseQueue,
// ResumeQueue): a row per paused queue in table paused_queues; and the
// queues' rate limits (SetQueueLimit): a row per limited queue, with its
// token bucket, in table queue_limits.
#include "store_sqlite.h"

#include "util/error.h"

#include <stdlib.h>

static int
sq_queue_set_paused(struct store *base, const char *queue, bool paused,
    int64_t now, bool *changed, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    int                  id = paused ? STMT_QUEUE_PAUSE : STMT_QUEUE_RESUME;
    sqlite3_stmt        *s  = sq_stmt(st, id);
    sq_bind_text(st, s, 1, queue);
    if (paused)
        sq_bind_i64(st, s, 2, now);
    int rc
        = sq_exec(st, id, err, paused ? "pausing a queue" : "resuming a queue");
    if (rc == ANVIL_OK)
        *changed = sq_changes(st) > 0;
    return rc;
}

static int
sq_queues_paused(
    struct store *base, char ***names, size_t *n, struct anvil_error *err)
{
    struct sqlite_store *st  = sq(base);
    char               **v   = NULL;
    size_t               cnt = 0;
    int                  rc, code = ANVIL_OK;
    (void) sq_stmt(st, STMT_QUEUES_PAUSED);
    while ((rc = sq_step(st, STMT_QUEUES_PAUSED)) == SQLITE_ROW) {
        char **p = realloc(v, (cnt + 1) * sizeof(*v));
        if (p != NULL)
            v = p;
        char *name
            = p != NULL ? sq_col_str(st->stmt[STMT_QUEUES_PAUSED], 0) : NULL;
        if (name == NULL) {
            code = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
            break;
        }
        v[cnt++] = name;
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = sq_error(st, err, "listing the paused queues");
    sq_reset(st, STMT_QUEUES_PAUSED);
    if (code != ANVIL_OK) {
        store_names_free(v, cnt);
        return code;
    }
    *names = v;
    *n     = cnt;
    return ANVIL_OK;
}

static int
sq_queue_limit_set(struct store *base, const struct store_queue_limit *l,
    struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    if (l->rate <= 0) {
        sqlite3_stmt *s = sq_stmt(st, STMT_LIMIT_DELETE);
        sq_bind_text(st, s, 1, l->queue);
        return sq_exec(st, STMT_LIMIT_DELETE, err, "removing a rate limit");
    }
    sqlite3_stmt *s = sq_stmt(st, STMT_LIMIT_SET);
    sq_bind_text(st, s, 1, l->queue);
    sq_bind_double(st, s, 2, l->rate);
    sq_bind_i64(st, s, 3, l->burst);
    sq_bind_double(st, s, 4, l->tokens);
    sq_bind_i64(st, s, 5, l->at);
    return sq_exec(st, STMT_LIMIT_SET, err, "setting a rate limit");
}

static int
sq_queue_limit_save(struct store *base, const char *queue, double tokens,
    int64_t at, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_LIMIT_SAVE);
    sq_bind_text(st, s, 1, queue);
    sq_bind_double(st, s, 2, tokens);
    sq_bind_i64(st, s, 3, at);
    return sq_exec(st, STMT_LIMIT_SAVE, err, "storing a rate limit's tokens");
}

// A row's burst; 1 for one that does not fit (never written so).
static uint32_t
col_burst(sqlite3_stmt *s, int i)
{
    int64_t burst = sqlite3_column_int64(s, i);
    return burst > 0 && burst <= UINT32_MAX ? (uint32_t) burst : 1;
}

static int
sq_queue_limit_get(struct store *base, const char *queue,
    struct store_queue_limit *out, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_LIMIT_GET);
    sq_bind_text(st, s, 1, queue);
    int rc   = sq_step(st, STMT_LIMIT_GET);
    int code = ANVIL_OK;
    if (rc == SQLITE_ROW)
        *out = (struct store_queue_limit) {
            .rate   = sqlite3_column_double(s, 0),
            .burst  = col_burst(s, 1),
            .tokens = sqlite3_column_double(s, 2),
            .at     = sqlite3_column_int64(s, 3),
        };
    else if (rc == SQLITE_DONE)
        code = av_error_set(
            err, ANVIL_NOT_FOUND, "queue %s has no rate limit", queue);
    else
        code = sq_error(st, err, "reading a rate limit");
    sq_reset(st, STMT_LIMIT_GET);
    return code;
}

static int
sq_queue_limits(struct store *base, struct store_queue_limit **out, size_t *n,
    struct anvil_error *err)
{
    struct sqlite_store      *st  = sq(base);
    struct store_queue_limit *v   = NULL;
    size_t                    cnt = 0;
    int                       rc, code = ANVIL_OK;
    sqlite3_stmt             *s = sq_stmt(st, STMT_LIMITS);
    while ((rc = sq_step(st, STMT_LIMITS)) == SQLITE_ROW) {
        struct store_queue_limit *p = realloc(v, (cnt + 1) * sizeof(*v));
        if (p != NULL)
            v = p;
        char *queue = p != NULL ? sq_col_str(s, 0) : NULL;
        if (queue == NULL) {
            code = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
            break;
        }
        v[cnt++] = (struct store_queue_limit) {
            .queue  = queue,
            .rate   = sqlite3_column_double(s, 1),
            .burst  = col_burst(s, 2),
            .tokens = sqlite3_column_double(s, 3),
            .at     = sqlite3_column_int64(s, 4),
        };
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = sq_error(st, err, "listing the rate limits");
    sq_reset(st, STMT_LIMITS);
    if (code != ANVIL_OK) {
        store_queue_limits_free(v, cnt);
        return code;
    }
    *out = v;
    *n   = cnt;
    return ANVIL_OK;
}

void
sq_queues_ops(struct store_ops *o)
{
    o->queue_set_paused = sq_queue_set_paused;
    o->queues_paused    = sq_queues_paused;
    o->queue_limit_set  = sq_queue_limit_set;
    o->queue_limit_save = sq_queue_limit_save;
    o->queue_limit_get  = sq_queue_limit_get;
    o->queue_limits     = sq_queue_limits;
}
