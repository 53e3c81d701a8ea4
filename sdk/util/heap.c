// heap.c - the heap of heap.h. Sifting moves a hole rather than swapping,
// so each level costs one element copy.
#include "heap.h"

#include <stdlib.h>
#include <string.h>

void
av_heap_init(struct av_heap *h, size_t size,
    bool (*before)(const void *a, const void *b))
{
    *h = (struct av_heap) { .size = size, .before = before };
}

void
av_heap_fini(struct av_heap *h)
{
    free(h->v);
    h->v   = NULL;
    h->n   = 0;
    h->cap = 0;
}

static unsigned char *
at(const struct av_heap *h, size_t i)
{
    return h->v + i * h->size;
}

int
av_heap_push(struct av_heap *h, const void *elem)
{
    if (h->n == h->cap) {
        size_t         cap = h->cap ? h->cap * 2 : 64;
        unsigned char *v   = realloc(h->v, cap * h->size);
        if (v == NULL)
            return -1;
        h->v   = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!h->before(elem, at(h, p)))
            break;
        memcpy(at(h, i), at(h, p), h->size);
        i = p;
    }
    memcpy(at(h, i), elem, h->size);
    return 0;
}

const void *
av_heap_top(const struct av_heap *h)
{
    return h->n > 0 ? h->v : NULL;
}

bool
av_heap_pop(struct av_heap *h, void *out)
{
    if (h->n == 0)
        return false;
    memcpy(out, h->v, h->size);
    size_t               n    = --h->n;
    const unsigned char *last = at(h, n); // refilled last, never overwritten
    size_t               i    = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && h->before(at(h, c + 1), at(h, c)))
            c++;
        if (!h->before(at(h, c), last))
            break;
        memcpy(at(h, i), at(h, c), h->size);
        i = c;
    }
    if (i != n)
        memcpy(at(h, i), last, h->size);
    return true;
}
