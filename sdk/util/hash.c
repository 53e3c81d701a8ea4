// hash.c - the string map of hash.h. Slots keep each key's hash, so growth
// never rehashes a string and a probe compares strings only when the
// hashes match.
#include "hash.h"

#include <stdlib.h>
#include <string.h>

uint64_t
av_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char) *s) * 1099511628211ull;
    return h;
}

// The slot holding key, or the empty slot where it would go.
static struct av_hash_slot *
probe(struct av_hash_slot *slots, size_t cap, const char *key, uint64_t h)
{
    size_t i = (size_t) h & (cap - 1);
    while (slots[i].key != NULL
        && (slots[i].h != h || strcmp(slots[i].key, key) != 0))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static int
resize(struct av_hash *t, size_t cap)
{
    struct av_hash_slot *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        const struct av_hash_slot *s = &t->slots[i];
        if (s->key != NULL)
            *probe(slots, cap, s->key, s->h) = *s;
    }
    free(t->slots);
    t->slots = slots;
    t->cap   = cap;
    return 0;
}

int
av_hash_init(struct av_hash *t, size_t hint)
{
    size_t cap = 16;
    while (cap < 2 * hint + 1)
        cap *= 2;
    *t = (struct av_hash) { 0 };
    return resize(t, cap);
}

void
av_hash_fini(struct av_hash *t)
{
    free(t->slots);
    *t = (struct av_hash) { 0 };
}

bool
av_hash_get(const struct av_hash *t, const char *key, size_t *val)
{
    if (t->n == 0)
        return false;
    const struct av_hash_slot *s
        = probe(t->slots, t->cap, key, av_hash_str(key));
    if (s->key == NULL)
        return false;
    *val = s->val;
    return true;
}

// The slot of key, added (with a NULL key still) if absent; NULL if out of
// memory.
static struct av_hash_slot *
slot_for(struct av_hash *t, const char *key, uint64_t h)
{
    if ((t->n + 1) * 2 > t->cap && resize(t, t->cap ? t->cap * 2 : 16) != 0)
        return NULL;
    return probe(t->slots, t->cap, key, h);
}

int
av_hash_add(struct av_hash *t, const char *key, size_t val, size_t *old)
{
    uint64_t             h = av_hash_str(key);
    struct av_hash_slot *s = slot_for(t, key, h);
    if (s == NULL)
        return -1;
    if (s->key != NULL) {
        *old = s->val;
        return 1;
    }
    *s = (struct av_hash_slot) { .key = key, .h = h, .val = val };
    t->n++;
    return 0;
}

int
av_hash_put(struct av_hash *t, const char *key, size_t val)
{
    size_t old;
    int    rc = av_hash_add(t, key, val, &old);
    if (rc == 1)
        probe(t->slots, t->cap, key, av_hash_str(key))->val = val;
    return rc < 0 ? -1 : 0;
}

// Whether the entry at `at`, whose home slot is `home`, may move back to
// the hole at `hole`: its home is not cyclically inside (hole, at].
static bool
may_fill(size_t hole, size_t at, size_t home, size_t mask)
{
    return ((at - home) & mask) >= ((at - hole) & mask);
}

bool
av_hash_del(struct av_hash *t, const char *key)
{
    if (t->n == 0)
        return false;
    struct av_hash_slot *s = probe(t->slots, t->cap, key, av_hash_str(key));
    if (s->key == NULL)
        return false;
    size_t mask = t->cap - 1;
    size_t hole = (size_t) (s - t->slots);
    // Backward shift: pull later entries of the run into the hole so no
    // probe meets a gap before its key.
    for (size_t at = (hole + 1) & mask; t->slots[at].key != NULL;
         at        = (at + 1) & mask) {
        size_t home = (size_t) t->slots[at].h & mask;
        if (may_fill(hole, at, home, mask)) {
            t->slots[hole] = t->slots[at];
            hole           = at;
        }
    }
    t->slots[hole] = (struct av_hash_slot) { 0 };
    t->n--;
    return true;
}
