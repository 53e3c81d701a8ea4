// readyq.c - a hash table of binary heaps. The key is "queue\x1ftype"
// (names cannot hold 0x1f); tables grow at 50% load.
#include "readyq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    int64_t  id;
    int32_t  priority;
    uint64_t seq;
};

struct heap {
    char         *key; // NULL = empty slot
    struct entry *e;
    size_t        n, cap;
};

struct readyq {
    struct heap *slots;
    size_t       nslots; // power of two
    size_t       used;
    size_t       size;
    uint64_t     seq;
};

struct readyq *
readyq_new(void)
{
    struct readyq *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->nslots = 16;
    q->slots  = calloc(q->nslots, sizeof(*q->slots));
    if (q->slots == NULL) {
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
    for (size_t i = 0; i < q->nslots; i++) {
        free(q->slots[i].key);
        free(q->slots[i].e);
    }
    free(q->slots);
    free(q);
}

static uint64_t
hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char) *s) * 1099511628211ull;
    return h;
}

static struct heap *
find_slot(struct heap *slots, size_t nslots, const char *key)
{
    size_t i = (size_t) hash(key) & (nslots - 1);
    while (slots[i].key != NULL && strcmp(slots[i].key, key) != 0)
        i = (i + 1) & (nslots - 1);
    return &slots[i];
}

static int
rehash(struct readyq *q)
{
    size_t       n     = q->nslots * 2;
    struct heap *slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < q->nslots; i++) {
        if (q->slots[i].key != NULL)
            *find_slot(slots, n, q->slots[i].key) = q->slots[i];
    }
    free(q->slots);
    q->slots  = slots;
    q->nslots = n;
    return 0;
}

static void
make_key(char *buf, size_t len, const char *queue, const char *type)
{
    snprintf(buf, len, "%s\x1f%s", queue, type);
}

// a before b: higher priority, then lower sequence.
static bool
before(const struct entry *a, const struct entry *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->seq < b->seq;
}

static void
sift_up(struct entry *e, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&e[i], &e[p]))
            break;
        struct entry t = e[i];
        e[i]           = e[p];
        e[p]           = t;
        i              = p;
    }
}

static void
sift_down(struct entry *e, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && before(&e[l], &e[m]))
            m = l;
        if (r < n && before(&e[r], &e[m]))
            m = r;
        if (m == i)
            return;
        struct entry t = e[i];
        e[i]           = e[m];
        e[m]           = t;
        i              = m;
    }
}

static struct heap *
get_heap(struct readyq *q, const char *queue, const char *type, bool create)
{
    char key[300];
    make_key(key, sizeof(key), queue, type);
    struct heap *h = find_slot(q->slots, q->nslots, key);
    if (h->key != NULL || !create)
        return h->key != NULL ? h : NULL;
    if ((q->used + 1) * 2 > q->nslots) {
        if (rehash(q) != 0)
            return NULL;
        h = find_slot(q->slots, q->nslots, key);
    }
    h->key = strdup(key);
    if (h->key == NULL)
        return NULL;
    q->used++;
    return h;
}

int
readyq_push(struct readyq *q, const char *queue, const char *type, int64_t id,
    int32_t priority)
{
    struct heap *h = get_heap(q, queue, type, true);
    if (h == NULL)
        return -1;
    if (h->n == h->cap) {
        size_t        cap = h->cap ? h->cap * 2 : 64;
        struct entry *e   = realloc(h->e, cap * sizeof(*e));
        if (e == NULL)
            return -1;
        h->e   = e;
        h->cap = cap;
    }
    h->e[h->n]
        = (struct entry) { .id = id, .priority = priority, .seq = q->seq++ };
    sift_up(h->e, h->n);
    h->n++;
    q->size++;
    return 0;
}

// The non-empty heap whose top comes first, or NULL.
static struct heap *
best_heap(struct readyq *q, const char *const *queues, size_t nq,
    const char *const *types, size_t nt)
{
    struct heap *best = NULL;
    for (size_t i = 0; i < nq; i++) {
        for (size_t j = 0; j < nt; j++) {
            struct heap *h = get_heap(q, queues[i], types[j], false);
            if (h != NULL && h->n > 0
                && (best == NULL || before(&h->e[0], &best->e[0])))
                best = h;
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
    struct heap *h = best_heap(q, queues, nq, types, nt);
    if (h == NULL)
        return false;
    *key    = h->key;
    *id     = h->e[0].id;
    h->e[0] = h->e[--h->n];
    sift_down(h->e, h->n, 0);
    q->size--;
    return true;
}

bool
readyq_any(struct readyq *q, const char *const *queues, size_t nq,
    const char *const *types, size_t nt)
{
    return best_heap(q, queues, nq, types, nt) != NULL;
}

size_t
readyq_size(const struct readyq *q)
{
    return q->size;
}
