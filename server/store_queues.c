// store_queues.c - the SQLite backend's paused queues (PauseQueue,
// ResumeQueue): a row per paused queue in table paused_queues.
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

void
sq_queues_ops(struct store_ops *o)
{
    o->queue_set_paused = sq_queue_set_paused;
    o->queues_paused    = sq_queues_paused;
}
