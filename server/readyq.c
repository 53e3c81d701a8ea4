// readyq.c - a hash table from "queue\x1ftype" (names cannot hold 0x1f) to
// an index into an array of heaps. Heaps are never removed, so an index
// stays valid for the life of the readyq.
//
// Concurrency keys live in a second table and array; an entry names its
// key by index + 1 in bytes that were padding, so a job without a key
// costs what it did. Freed key slots are chained for reuse: a slot is
// freed only when no entry, set-aside job or running job refers to it.
//
// A set-aside job that its key lets go again goes to its queue's small
// `woken` heap, not back into the main one (which may hold every queued
// job): a take compares both tops with the same order, so which heap an
// entry sits in never changes what comes out, only what it costs.
#include "readyq_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct readyq *
readyq_new(void)
{
    struct readyq *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    if (av_hash_init(&q->index, 16) != 0
        || av_hash_init(&q->key_index, 16) != 0) {
        av_hash_fini(&q->index);
        free(q);
        return NULL;
    }
    q->free_key = SIZE_MAX;
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
        av_heap_fini(&q->queues[i].woken);
    }
    free(q->queues);
    for (size_t i = 0; i < q->n_paused; i++)
        free(q->paused[i]);
    free(q->paused);
    for (size_t i = 0; i < q->n_keys; i++) {
        free(q->keys[i].name);
        av_heap_fini(&q->keys[i].waiting);
    }
    free(q->keys);
    for (size_t i = 0; i < q->n_rates; i++)
        free(q->rates[i].queue);
    free(q->rates);
    av_hash_fini(&q->key_index);
    av_hash_fini(&q->index);
    free(q);
}

// "queue\x1ftype" in buf, cut to len - 1 bytes.
static void
make_key(char *buf, size_t len, const char *queue, const char *type)
{
    size_t nq = strlen(queue), nt = strlen(type);
    if (nq > len - 1)
        nq = len - 1;
    memcpy(buf, queue, nq);
    size_t at = nq;
    if (at < len - 1)
        buf[at++] = '\x1f';
    if (nt > len - 1 - at)
        nt = len - 1 - at;
    memcpy(buf + at, type, nt);
    buf[at + nt] = '\0';
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
    av_heap_init(&e->woken, sizeof(struct entry), before);
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

static struct ckey *
key_at(struct readyq *q, uint32_t ckey)
{
    return &q->keys[ckey - 1];
}

// A new key with no members; 0 if out of memory, else 1 + its index.
static uint32_t
add_key(struct readyq *q, const char *name)
{
    if (q->free_key == SIZE_MAX && q->n_keys == q->cap_keys) {
        size_t       cap = q->cap_keys ? q->cap_keys * 2 : 16;
        struct ckey *v   = realloc(q->keys, cap * sizeof(*v));
        if (v == NULL)
            return 0;
        q->keys     = v;
        q->cap_keys = cap;
    }
    size_t at = q->free_key != SIZE_MAX ? q->free_key : q->n_keys;
    char  *s  = strdup(name);
    if (s == NULL || av_hash_put(&q->key_index, s, at) != 0) {
        free(s);
        return 0;
    }
    if (at == q->n_keys)
        q->n_keys++;
    else
        q->free_key = q->keys[at].next;
    q->keys[at] = (struct ckey) { .name = s, .limit_id = -1 };
    av_heap_init(&q->keys[at].waiting, sizeof(struct waiter), before);
    q->n_held++;
    return (uint32_t) at + 1;
}

// The key named name: 1 + its index, or 0 if absent (create false) or out
// of memory.
static uint32_t
get_key(struct readyq *q, const char *name, bool create)
{
    size_t at;
    if (av_hash_get(&q->key_index, name, &at))
        return (uint32_t) at + 1;
    return create ? add_key(q, name) : 0;
}

// Frees a key no job holds any more.
static void
drop_key(struct readyq *q, uint32_t ckey)
{
    struct ckey *k = key_at(q, ckey);
    av_hash_del(&q->key_index, k->name);
    free(k->name);
    av_heap_fini(&k->waiting);
    *k          = (struct ckey) { .next = q->free_key };
    q->free_key = ckey - 1;
    q->n_held--;
}

// Moves set-aside jobs back to their queues (the woken heaps) while the
// key is under its limit; how many moved.
static size_t
wake(struct readyq *q, struct ckey *k)
{
    size_t        moved = 0;
    struct waiter w;
    while (k->running + moved < k->limit && av_heap_pop(&k->waiting, &w)) {
        if (av_heap_push(&q->queues[w.queue].woken, &w.e) != 0) {
            (void) av_heap_push(&k->waiting, &w); // room it just had
            break;
        }
        moved++;
    }
    return moved;
}

// The newest job (highest id) with a key sets its limit; a raised limit
// may let set-aside jobs go.
static void
note_limit(struct readyq *q, struct ckey *k, uint32_t limit, int64_t id)
{
    if (id < k->limit_id)
        return;
    bool raised = limit > k->limit;
    k->limit    = limit;
    k->limit_id = id;
    if (raised)
        (void) wake(q, k);
}

int
readyq_push_key(struct readyq *q, const char *queue, const char *type,
    int64_t id, int32_t priority, const char *ckey, uint32_t limit)
{
    struct queue *e = get_queue(q, queue, type, true);
    if (e == NULL)
        return -1;
    struct entry x = { .id = id, .priority = priority, .seq = q->seq };
    if (ckey != NULL) {
        x.ckey = get_key(q, ckey, true);
        if (x.ckey == 0)
            return -1;
    }
    if (av_heap_push(&e->heap, &x) != 0) {
        if (x.ckey != 0 && key_at(q, x.ckey)->members == 0)
            drop_key(q, x.ckey);
        return -1;
    }
    if (x.ckey != 0) {
        key_at(q, x.ckey)->members++;
        note_limit(q, key_at(q, x.ckey), limit, id);
    }
    q->seq++;
    q->size++;
    return 0;
}

int
readyq_push(struct readyq *q, const char *queue, const char *type, int64_t id,
    int32_t priority)
{
    return readyq_push_key(q, queue, type, id, priority, NULL, 0);
}

int
readyq_running(struct readyq *q, const char *ckey, uint32_t limit, int64_t id)
{
    uint32_t at = get_key(q, ckey, true);
    if (at == 0)
        return -1;
    struct ckey *k = key_at(q, at);
    k->running++;
    k->members++;
    note_limit(q, k, limit, id);
    return 0;
}

uint32_t
readyq_key_id(struct readyq *q, const char *ckey)
{
    return get_key(q, ckey, false);
}

size_t
readyq_release(struct readyq *q, const char *ckey)
{
    return readyq_release_id(q, get_key(q, ckey, false));
}

size_t
readyq_release_id(struct readyq *q, uint32_t at)
{
    if (at == 0 || at > q->n_keys || q->keys[at - 1].name == NULL)
        return 0;
    struct ckey *k = key_at(q, at);
    if (k->running > 0)
        k->running--;
    if (k->members > 0)
        k->members--;
    size_t moved = wake(q, k);
    if (k->members == 0)
        drop_key(q, at);
    return moved;
}

bool
readyq_key_state(const struct readyq *q, const char *ckey, uint32_t *running,
    size_t *waiting, uint32_t *limit)
{
    size_t at;
    if (!av_hash_get(&q->key_index, ckey, &at))
        return false;
    *running = q->keys[at].running;
    *waiting = av_heap_len(&q->keys[at].waiting);
    *limit   = q->keys[at].limit;
    return true;
}

size_t
readyq_key_count(const struct readyq *q)
{
    return q->n_held;
}

void
readyq_key_totals(
    const struct readyq *q, size_t *keys, uint64_t *running, uint64_t *waiting)
{
    *keys    = q->n_held;
    *running = 0;
    *waiting = 0;
    for (size_t i = 0; i < q->n_keys; i++) {
        if (q->keys[i].name == NULL)
            continue;
        *running += q->keys[i].running;
        *waiting += av_heap_len(&q->keys[i].waiting);
    }
}

// True if a comes before b in readyq_busiest()'s order.
static bool
busier(const struct readyq_key_counts *a, const struct readyq_key_counts *b)
{
    if (a->waiting != b->waiting)
        return a->waiting > b->waiting;
    return strcmp(a->key, b->key) < 0;
}

size_t
readyq_busiest(
    const struct readyq *q, struct readyq_key_counts *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < q->n_keys && max > 0; i++) {
        const struct ckey *k = &q->keys[i];
        if (k->name == NULL)
            continue;
        struct readyq_key_counts c;
        c.key     = k->name;
        c.running = k->running;
        c.waiting = av_heap_len(&k->waiting);
        c.limit   = k->limit;
        if (n == max && !busier(&c, &out[n - 1]))
            continue;
        size_t at = n < max ? n++ : max - 1; // the last one drops out
        for (; at > 0 && busier(&c, &out[at - 1]); at--)
            out[at] = out[at - 1];
        out[at] = c;
    }
    return n;
}

// The heap of e (main or woken) whose top comes first; NULL if both are
// empty.
static struct av_heap *
first_heap(struct queue *e)
{
    const void *m = av_heap_top(&e->heap);
    const void *w = av_heap_top(&e->woken);
    if (w == NULL)
        return m != NULL ? &e->heap : NULL;
    return m == NULL || before(w, m) ? &e->woken : &e->heap;
}

// Where the next job of a take comes from: a queue, one of its heaps and
// its queue's rate limit (NULL: none).
struct pick {
    struct queue   *e; // NULL: nothing yet
    struct av_heap *h;
    struct rate    *r;
};

// Keeps in *best whichever of it and e (rate limit r) comes first.
static void
consider(struct queue *e, struct rate *r, struct pick *best)
{
    struct av_heap *h = first_heap(e);
    if (h != NULL
        && (best->e == NULL || before(av_heap_top(h), av_heap_top(best->h))))
        *best = (struct pick) { e, h, r };
}

// The rate limit of queue (NULL: none) in *r; false when its bucket is
// empty, so that takes skip the queue.
static bool
has_token(struct readyq *q, const char *queue, struct rate **r)
{
    *r = q->n_rates > 0 ? readyq_rate_find(q, queue) : NULL;
    return *r == NULL || (*r)->r.tokens >= 1.0;
}

// Over the non-empty queues of the pairs queues x types, where the job
// that comes first is (best.e NULL if none).
static struct pick
best_pick(struct readyq *q, const char *const *queues, size_t nq,
    const char *const *types, size_t nt)
{
    struct pick best = { 0 };
    for (size_t i = 0; i < nq; i++) {
        if (q->n_paused > 0 && readyq_paused(q, queues[i]))
            continue;
        struct rate *r;
        if (!has_token(q, queues[i], &r))
            continue;
        for (size_t j = 0; j < nt; j++) {
            struct queue *e = get_queue(q, queues[i], types[j], false);
            if (e != NULL)
                consider(e, r, &best);
        }
    }
    return best;
}

// Pairs a take looks up once, not once per set-aside job (more fall back
// to best_pick's lookups).
#define TAKE_PAIRS 16

// The take's existing, unpaused (queue, type) pairs whose rate limit has
// a token as indexes into q->queues, with those limits in rates: how
// many, or SIZE_MAX if more than TAKE_PAIRS.
static size_t
resolve(struct readyq *q, const char *const *queues, size_t nq,
    const char *const *types, size_t nt, size_t *at, struct rate **rates)
{
    size_t n = 0;
    for (size_t i = 0; i < nq; i++) {
        struct rate *r;
        if ((q->n_paused > 0 && readyq_paused(q, queues[i]))
            || !has_token(q, queues[i], &r))
            continue;
        for (size_t j = 0; j < nt; j++) {
            struct queue *e = get_queue(q, queues[i], types[j], false);
            if (e == NULL)
                continue;
            if (n == TAKE_PAIRS)
                return SIZE_MAX;
            rates[n] = r;
            at[n++]  = (size_t) (e - q->queues);
        }
    }
    return n;
}

bool
readyq_pop(struct readyq *q, const char *const *queues, size_t nq,
    const char *const *types, size_t nt, int64_t *id)
{
    const char *key, *ckey;
    return readyq_take(q, queues, nq, types, nt, id, &key, &ckey);
}

// x, just popped from h (a heap of e), is a job whose key is at its
// limit: into the key's waiting heap. False if out of memory (x is then
// back in h, which had room for it).
static bool
set_aside(
    struct readyq *q, struct queue *e, struct av_heap *h, const struct entry *x)
{
    struct waiter w = { .e = *x, .queue = (size_t) (e - q->queues) };
    if (av_heap_push(&key_at(q, x->ckey)->waiting, &w) == 0)
        return true;
    (void) av_heap_push(h, x);
    return false;
}

bool
readyq_take(struct readyq *q, const char *const *queues, size_t nq,
    const char *const *types, size_t nt, int64_t *id, const char **key,
    const char **ckey)
{
    size_t       at[TAKE_PAIRS];
    struct rate *rates[TAKE_PAIRS];
    size_t       n = resolve(q, queues, nq, types, nt, at, rates);
    for (;;) {
        struct pick p = { 0 };
        if (n == SIZE_MAX)
            p = best_pick(q, queues, nq, types, nt);
        else
            for (size_t i = 0; i < n; i++)
                consider(&q->queues[at[i]], rates[i], &p);
        struct entry x;
        if (p.e == NULL || !av_heap_pop(p.h, &x))
            return false;
        struct queue *e = p.e;
        struct ckey  *k = x.ckey != 0 ? key_at(q, x.ckey) : NULL;
        if (k != NULL && k->running >= k->limit) {
            if (set_aside(q, e, p.h, &x))
                continue;
            return false;
        }
        if (k != NULL)
            k->running++;
        if (p.r != NULL) { // only one take: the bucket had a token
            p.r->r.tokens -= 1.0;
            p.r->dirty = true;
        }
        *ckey = k != NULL ? k->name : NULL;
        *key  = e->key;
        *id   = x.id;
        q->size--;
        return true;
    }
}

bool
readyq_any(struct readyq *q, const char *const *queues, size_t nq,
    const char *const *types, size_t nt)
{
    return best_pick(q, queues, nq, types, nt).e != NULL;
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
