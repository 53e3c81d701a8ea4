// readyq_impl.h - the ready queues' insides, shared by readyq.c (queues,
// concurrency keys, paused queues) and readyq_rate.c (rate limits). Not
// for other modules: they use readyq.h.
#ifndef SERVER_READYQ_IMPL_H
#define SERVER_READYQ_IMPL_H

#include "readyq.h"
#include "util/hash.h"
#include "util/heap.h"

struct entry {
    int64_t  id;
    int32_t  priority;
    uint32_t ckey; // 0 = none, else 1 + its index in keys
    uint64_t seq;
};

// A job set aside while its key was at its limit, and its heap.
struct waiter {
    struct entry e; // first: before() reads a waiter as its entry
    size_t       queue;
};

struct ckey {
    char          *name;     // NULL: a free slot
    size_t         next;     // a free slot: the next free one
    uint32_t       limit;    // the newest job's (highest id)
    int64_t        limit_id; // that job
    uint32_t       running;
    size_t         members; // entries in heaps + waiting + running
    struct av_heap waiting; // of struct waiter
};

struct queue {
    char          *key;
    struct av_heap heap;
    struct av_heap woken; // entries let go by their key since set aside
};

// A queue's rate limit: a token bucket (readyq.h).
struct rate {
    char              *queue;
    struct readyq_rate r;
    bool               dirty; // taken from since readyq_rate_clean()
};

struct readyq {
    struct av_hash index;  // key -> position in queues
    struct queue  *queues; // grows; no pointers into it are kept
    size_t         n, cap;
    size_t         size;
    uint64_t       seq;
    char         **paused; // sorted names of the paused queues
    size_t         n_paused, cap_paused;
    struct av_hash key_index; // concurrency key -> position in keys
    struct ckey   *keys;      // grows; no pointers into it are kept
    size_t         n_keys, cap_keys, n_held;
    size_t         free_key; // first free slot; SIZE_MAX = none
    struct rate   *rates;    // sorted by queue
    size_t         n_rates, cap_rates;
    int64_t        now; // readyq_clock()
};

// Queue's rate limit, or NULL when it has none.
struct rate *readyq_rate_find(struct readyq *q, const char *queue);

#endif
