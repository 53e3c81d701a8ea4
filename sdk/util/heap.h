// heap.h - a binary heap of fixed-size elements ordered by the caller's
// `before` function: the top is an element no other comes before. Equal
// elements come out in no set order; a caller that needs FIFO among equals
// puts a sequence number in its elements and compares it last.
//
// Elements are copied in and out. Not thread-safe; the owner of the struct
// guards it.
#ifndef AV_HEAP_H
#define AV_HEAP_H

#include <stdbool.h>
#include <stddef.h>

struct av_heap {
    unsigned char *v;
    size_t         n, cap; // elements held, room
    size_t         size;   // bytes per element
    // True if a must come out before b.
    bool (*before)(const void *a, const void *b);
};

// An empty heap of elements of `size` bytes. Allocates nothing.
void av_heap_init(struct av_heap *h, size_t size,
    bool (*before)(const void *a, const void *b));

// Frees the elements. Safe on a zeroed or finished heap.
void av_heap_fini(struct av_heap *h);

// Copies *elem in (elem must not point into the heap). 0, or -1 if out of
// memory (the heap is then unchanged).
int av_heap_push(struct av_heap *h, const void *elem);

// The top element, borrowed until the next push or pop; NULL if empty.
const void *av_heap_top(const struct av_heap *h);

// Copies the top element to *out and removes it: true, or false if empty.
bool av_heap_pop(struct av_heap *h, void *out);

static inline size_t
av_heap_len(const struct av_heap *h)
{
    return h->n;
}

#endif
