// store_tokens.c - the SQLite backend's API tokens (only their hashes are
// stored).
#include "store_sqlite.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>

static int
sq_token_insert(struct store *base, const char *name, int role,
    const uint8_t *hash, size_t hash_len, int64_t created_at,
    int64_t expires_at, int64_t *id, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sqlite3_stmt        *s  = sq_stmt(st, STMT_TOKEN_INSERT);
    sq_bind_text(st, s, 1, name);
    sq_bind_i64(st, s, 2, role);
    sq_bind_blob(st, s, 3, hash, hash_len);
    sq_bind_i64(st, s, 4, created_at);
    sq_bind_i64(st, s, 5, expires_at);
    int rc = sq_exec(st, STMT_TOKEN_INSERT, err, "inserting a token");
    if (rc == ANVIL_OK)
        *id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

// Reads one row into r; RESOURCE_EXHAUSTED when out of memory.
static int
read_token(sqlite3_stmt *s, struct store_token *r)
{
    memset(r, 0, sizeof(*r));
    r->id   = sqlite3_column_int64(s, 0);
    r->name = sq_col_str(s, 1);
    r->role = sqlite3_column_int(s, 2);
    if (sqlite3_column_bytes(s, 3) == (int) sizeof(r->hash))
        memcpy(r->hash, sqlite3_column_blob(s, 3), sizeof(r->hash));
    r->created_at = sqlite3_column_int64(s, 4);
    r->expires_at = sqlite3_column_int64(s, 5);
    r->revoked_at = sqlite3_column_int64(s, 6);
    return r->name != NULL ? ANVIL_OK : ANVIL_RESOURCE_EXHAUSTED;
}

static int
sq_token_list(struct store *base, struct store_token **out, size_t *n,
    struct anvil_error *err)
{
    struct sqlite_store *st  = sq(base);
    sqlite3_stmt        *s   = sq_stmt(st, STMT_TOKEN_LIST);
    struct store_token  *t   = NULL;
    size_t               cnt = 0;
    int                  rc, code = ANVIL_OK;
    while ((rc = sq_step(st, STMT_TOKEN_LIST)) == SQLITE_ROW) {
        struct store_token *p = realloc(t, (cnt + 1) * sizeof(*t));
        if (p != NULL)
            t = p;
        if (p == NULL || read_token(s, &t[cnt++]) != ANVIL_OK) {
            code = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
            break;
        }
    }
    if (code == ANVIL_OK && rc != SQLITE_DONE)
        code = sq_error(st, err, "listing tokens");
    sq_reset(st, STMT_TOKEN_LIST);
    if (code != ANVIL_OK) {
        store_tokens_free(t, cnt);
        return code;
    }
    *out = t;
    *n   = cnt;
    return ANVIL_OK;
}

static int
sq_token_revoke(
    struct store *base, int64_t id, int64_t now, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    sq_stmt_pair(st, STMT_TOKEN_REVOKE, id, now);
    return sq_update_one(st, STMT_TOKEN_REVOKE, err, "revoking a token");
}

void
sq_tokens_ops(struct store_ops *o)
{
    o->token_insert = sq_token_insert;
    o->token_list   = sq_token_list;
    o->token_revoke = sq_token_revoke;
}
