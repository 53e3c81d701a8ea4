// timers.c - the deadlines in an av_heap ordered by struct timer.at.
#include "timers.h"

#include "util/heap.h"

#include <stdlib.h>

struct timers {
    struct av_heap heap;
};

static bool
earlier(const void *a, const void *b)
{
    return ((const struct timer *) a)->at < ((const struct timer *) b)->at;
}

struct timers *
timers_new(void)
{
    struct timers *t = calloc(1, sizeof(*t));
    if (t != NULL)
        av_heap_init(&t->heap, sizeof(struct timer), earlier);
    return t;
}

void
timers_free(struct timers *t)
{
    if (t == NULL)
        return;
    av_heap_fini(&t->heap);
    free(t);
}

int
timers_add(struct timers *t, struct timer tm)
{
    return av_heap_push(&t->heap, &tm);
}

int64_t
timers_next(const struct timers *t)
{
    const struct timer *top = av_heap_top(&t->heap);
    return top != NULL ? top->at : INT64_MAX;
}

bool
timers_pop_due(struct timers *t, int64_t now, struct timer *out)
{
    const struct timer *top = av_heap_top(&t->heap);
    if (top == NULL || top->at > now)
        return false;
    return av_heap_pop(&t->heap, out);
}

size_t
timers_size(const struct timers *t)
{
    return av_heap_len(&t->heap);
}
