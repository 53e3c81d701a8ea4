// timers.c - binary min-heap on struct timer.at.
#include "timers.h"

#include <stdlib.h>

struct timers {
    struct timer *h;
    size_t        n, cap;
};

struct timers *
timers_new(void)
{
    return calloc(1, sizeof(struct timers));
}

void
timers_free(struct timers *t)
{
    if (t == NULL)
        return;
    free(t->h);
    free(t);
}

int
timers_add(struct timers *t, struct timer tm)
{
    if (t->n == t->cap) {
        size_t        cap = t->cap ? t->cap * 2 : 64;
        struct timer *h   = realloc(t->h, cap * sizeof(*h));
        if (h == NULL)
            return -1;
        t->h   = h;
        t->cap = cap;
    }
    size_t i = t->n++;
    t->h[i]  = tm;
    while (i > 0 && t->h[(i - 1) / 2].at > t->h[i].at) {
        size_t       p = (i - 1) / 2;
        struct timer x = t->h[p];
        t->h[p]        = t->h[i];
        t->h[i]        = x;
        i              = p;
    }
    return 0;
}

int64_t
timers_next(const struct timers *t)
{
    return t->n > 0 ? t->h[0].at : INT64_MAX;
}

bool
timers_pop_due(struct timers *t, int64_t now, struct timer *out)
{
    if (t->n == 0 || t->h[0].at > now)
        return false;
    *out    = t->h[0];
    t->h[0] = t->h[--t->n];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < t->n && t->h[l].at < t->h[m].at)
            m = l;
        if (r < t->n && t->h[r].at < t->h[m].at)
            m = r;
        if (m == i)
            break;
        struct timer x = t->h[i];
        t->h[i]        = t->h[m];
        t->h[m]        = x;
        i              = m;
    }
    return true;
}

size_t
timers_size(const struct timers *t)
{
    return t->n;
}
