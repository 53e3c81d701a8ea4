// store_pg_fence.c - the leader's fence on the PostgreSQL store's
// transactions (store.h store_pg_fence, leader.h).
#include "store_pg.h"

#include <stdio.h>
#include <string.h>

void
store_pg_fence(struct store *st, int64_t epoch, int64_t ttl_ms)
{
    if (st == NULL || strcmp(st->ops->name, "postgresql") != 0)
        return;
    pg(st)->fenced = false; // a new epoch: the old one's failure is over
    snprintf(pg(st)->fence, sizeof(pg(st)->fence),
        "SELECT anvil_fence(%lld, %lld); ", (long long) epoch,
        (long long) ttl_ms);
}
