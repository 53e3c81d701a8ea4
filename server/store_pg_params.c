// store_pg_params.c - the PostgreSQL backend's statement parameters
// (struct pg_params, store_pg.h): appended in order, $1 first.
#include "store_pg.h"

#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- parameters ----

void
pg_p_init(struct pg_params *p)
{
    p->n = 0;
}

static int
slot(struct pg_params *p)
{
    AV_ASSERT(p->n < PG_MAX_PARAMS);
    int i         = p->n++;
    p->values[i]  = NULL;
    p->lengths[i] = 0;
    p->formats[i] = 0;
    return i;
}

void
pg_p_i64(struct pg_params *p, int64_t v)
{
    int i = slot(p);
    snprintf(p->num[i], sizeof(p->num[i]), "%lld", (long long) v);
    p->values[i] = p->num[i];
}

void
pg_p_double(struct pg_params *p, double v)
{
    int i = slot(p);
    snprintf(p->num[i], sizeof(p->num[i]), "%.17g", v);
    p->values[i] = p->num[i];
}

void
pg_p_null(struct pg_params *p)
{
    (void) slot(p);
}

void
pg_p_text(struct pg_params *p, const char *v)
{
    p->values[slot(p)] = v;
}

void
pg_p_text_or_null(struct pg_params *p, const char *v)
{
    p->values[slot(p)] = v != NULL && v[0] != '\0' ? v : NULL;
}

// Text in binary format is its bytes: the length is honoured.
void
pg_p_text_len(struct pg_params *p, const char *v, size_t len)
{
    int i         = slot(p);
    p->values[i]  = v;
    p->lengths[i] = (int) len;
    p->formats[i] = 1;
}

void
pg_p_bytes_or_null(struct pg_params *p, const char *v)
{
    if (v == NULL || v[0] == '\0')
        pg_p_null(p);
    else
        pg_p_blob(p, v, strlen(v));
}

void
pg_p_blob(struct pg_params *p, const void *v, size_t n)
{
    int i         = slot(p);
    p->values[i]  = v != NULL ? (const char *) v : "";
    p->lengths[i] = (int) n;
    p->formats[i] = 1;
}

// ---- a write kept to be sent later ----

int
pg_held_set(
    struct pg_held *h, int sid, const struct pg_params *p, const char *what)
{
    size_t n = 0;
    h->sid   = sid;
    h->what  = what;
    h->bytes = NULL;
    if (p != NULL)
        h->p = *p;
    else
        pg_p_init(&h->p);
    for (int i = 0; i < h->p.n; i++)
        if (h->p.values[i] != NULL && h->p.values[i] != p->num[i])
            n += h->p.formats[i] == 1 ? (size_t) h->p.lengths[i]
                                      : strlen(h->p.values[i]) + 1;
    if (n > 0 && (h->bytes = malloc(n)) == NULL)
        return -1;
    size_t at = 0;
    for (int i = 0; i < h->p.n; i++) {
        if (h->p.values[i] == NULL)
            continue;
        if (h->p.values[i] == p->num[i]) {
            h->p.values[i] = h->p.num[i];
            continue;
        }
        size_t len = h->p.formats[i] == 1 ? (size_t) h->p.lengths[i]
                                          : strlen(h->p.values[i]) + 1;
        memcpy(h->bytes + at, h->p.values[i], len);
        h->p.values[i] = h->bytes + at;
        at += len;
    }
    return 0;
}

void
pg_held_free(struct pg_held *h)
{
    free(h->bytes);
    h->bytes = NULL;
}
