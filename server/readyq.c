// readyq.c - a hash table from "queue\x1ftype" (names cannot hold 0x1f) to
// an index into an array of heaps. Heaps are never removed, so an index
// stays valid for the life of the readyq.
#include "readyq.h"

#include "util/hash.h"
#include "util/heap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    int64_t  id;
    int32_t  priority;
    uint64_t seq;
};

struct queue {
    char          *key;
    struct av_heap heap;
};

struct readyq {
    struct av_hash index;  // key -> position in queues
    struct queue  *queues; // grows; no pointers into it are kept
    size_t         n, cap;
    size_t         size;
    uint64_t       seq;
    char         **paused; // sorted names of the paused queues
    size_t         n_paused, cap_paused;
};

struct readyq *
readyq_new(void)
{
    struct readyq *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    if (av_hash_init(&q->index, 16) != 0) {
        free(q);
        return NULL;
    }
    return q;
}

void
readyq_free(struct readyq *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; i < q->n; i++) {
        free(q->queues[i].key);
        av_heap_fini(&q->queues[i].heap);
    }
    free(q->queues);
    for (size_t i = 0; i < q->n_paused; i++)
        free(q->paused[i]);
    free(q->paused);
    av_hash_fini(&q->index);
    free(q);
}

static void
make_key(char *buf, size_t len, const char *queue, const char *type)
{
    snprintf(buf, len, "%s\x1f%s", queue, type);
}

// a before b: higher priority, then lower sequence (FIFO).
static bool
before(const void *a, const void *b)
{
    const struct entry *x = a;
    const struct entry *y = b;
    if (x->priority != y->priority)
        return x->priority > y->priority;
    return x->seq < y->seq;
}

// A new empty queue for key; NULL if out of memory.
static struct queue *
add_queue(struct readyq *q, const char *key)
{
    if (q->n == q->cap) {
        size_t        cap = q->cap ? q->cap * 2 : 16;
        struct queue *v   = realloc(q->queues, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        q->queues = v;
        q->cap    = cap;
    }
    struct queue *e = &q->queues[q->n];
    e->key          = strdup(key);
    if (e->key == NULL)
        return NULL;
    if (av_hash_put(&q->index, e->key, q->n) != 0) {
        free(e->key);
        return NULL;
    }
    av_heap_init(&e->heap, sizeof(struct entry), before);
    q->n++;
    return e;
}

static struct queue *
get_queue(struct readyq *q, const char *queue, const char *type, bool create)
{
    char   key[300];
    size_t at;
    make_key(key, sizeof(key), queue, type);
    if (av_hash_get(&q->index, key, &at))
        return &q->queues[at];
    return create ? add_queue(q, key) : NULL;
}

int
readyq_push(struct readyq *q, const char *queue, const char *type, int64_t id,
    int32_t priority)
{
    struct queue *e = get_queue(q, queue, type, true);
    if (e == NULL)
        return -1;
    struct entry x = { .id = id, .priority = priority, .seq = q->seq };
    if (av_heap_push(&e->heap, &x) != 0)
        return -1;
    q->seq++;
    q->size++;
    return 0;
}

// The non-empty queue whose top comes first, or NULL.
static struct queue *
best_queue(struct readyq *q, const char *const *queues, size_t nq,
    const char *const *types, size_t nt)
{
    struct queue *best = NULL;
    for (size_t i = 0; i < nq; i++) {
        if (q->n_paused > 0 && readyq_paused(q, queues[i]))
            continue;
        for (size_t j = 0; j < nt; j++) {
            struct queue *e = get_queue(q, queues[i], types[j], false);
            if (e != NULL && av_heap_len(&e->heap) > 0
                && (best == NULL
                    || before(av_heap_top(&e->heap), av_heap_top(&best->heap))))
                best = e;
        }
    }
    return best;
}

bool
readyq_pop(struct readyq *q, const char *const *queues, size_t nq,
    const char *const *types, size_t nt, int64_t *id)
{
    const char *key;
    return readyq_take(q, queues, nq, types, nt, id, &key);
}

bool
readyq_take(struct readyq *q, const char *const *queues, size_t nq,
    const char *const *types, size_t nt, int64_t *id, const char **key)
{
    struct queue *e = best_queue(q, queues, nq, types, nt);
    struct entry  x;
    if (e == NULL || !av_heap_pop(&e->heap, &x))
        return false;
    *key = e->key;
    *id  = x.id;
    q->size--;
    return true;
}

bool
readyq_any(struct readyq *q, const char *const *queues, size_t nq,
    const char *const *types, size_t nt)
{
    return best_queue(q, queues, nq, types, nt) != NULL;
}

size_t
readyq_size(const struct readyq *q)
{
    return q->size;
}

// Where queue is in the sorted paused list, or where it would go: *found
// says which.
static size_t
paused_find(const struct readyq *q, const char *queue, bool *found)
{
    size_t lo = 0, hi = q->n_paused;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int    c   = strcmp(q->paused[mid], queue);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

bool
readyq_paused(const struct readyq *q, const char *queue)
{
    bool found;
    (void) paused_find(q, queue, &found);
    return found;
}

int
readyq_pause(struct readyq *q, const char *queue, bool paused)
{
    bool   found;
    size_t at = paused_find(q, queue, &found);
    if (found == paused)
        return 0;
    if (!paused) {
        free(q->paused[at]);
        memmove(&q->paused[at], &q->paused[at + 1],
            (q->n_paused - at - 1) * sizeof(*q->paused));
        q->n_paused--;
        return 0;
    }
    if (q->n_paused == q->cap_paused) {
        size_t cap = q->cap_paused ? q->cap_paused * 2 : 8;
        char **v   = realloc(q->paused, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        q->paused     = v;
        q->cap_paused = cap;
    }
    char *name = strdup(queue);
    if (name == NULL)
        return -1;
    memmove(&q->paused[at + 1], &q->paused[at],
        (q->n_paused - at) * sizeof(*q->paused));
    q->paused[at] = name;
    q->n_paused++;
    return 0;
}

size_t
readyq_paused_count(const struct readyq *q)
{
    return q->n_paused;
}

const char *
readyq_paused_name(const struct readyq *q, size_t i)
{
    return i < q->n_paused ? q->paused[i] : NULL;
}
