// readyq.h - in-memory ready queues: the QUEUED jobs, keyed by (queue,
// type), each a heap ordered by priority (higher first) then by the order
// they became ready (FIFO). A queue may be paused: its jobs stay held but
// nothing is taken from it until it is resumed.
//
// Concurrency limits: a job pushed with a key counts against that key once
// taken, until readyq_release(). A job taken while its key has `limit`
// running is set aside in the key's own waiting heap, so later takes never
// look at it again and the jobs behind it are served (no head-of-line
// blocking); each release moves set-aside jobs back to their queues, in
// priority then FIFO order, while the key is under its limit. A key's
// limit is that of the newest job (highest id) pushed with it. A key is
// forgotten once no job holds it (queued, set aside or running).
//
// Owned by the engine thread; not thread-safe. Entries are deleted lazily:
// a job cancelled while queued stays here until popped, and the engine
// skips it then (the store says it is no longer QUEUED).
#ifndef SERVER_READYQ_H
#define SERVER_READYQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct readyq;

// NULL if out of memory.
struct readyq *readyq_new(void);
void           readyq_free(struct readyq *q);

// Adds a job; 0, or -1 if out of memory.
int readyq_push(struct readyq *q, const char *queue, const char *type,
    int64_t id, int32_t priority);

// Adds a job with concurrency key ckey (NULL: as readyq_push) and limit
// (>= 1); 0, or -1 if out of memory.
int readyq_push_key(struct readyq *q, const char *queue, const char *type,
    int64_t id, int32_t priority, const char *ckey, uint32_t limit);

// Removes and returns the best job over every (queue, type) pair of
// queues x types: highest priority, then first ready. False if none.
bool readyq_pop(struct readyq *q, const char *const *queues, size_t nq,
    const char *const *types, size_t nt, int64_t *id);

// The same, also giving the key "queue\x1ftype" of the queue the job came
// from (*key is valid until readyq_free()) and its concurrency key in
// *ckey (NULL if none; valid until the key is released): the job now
// counts as running under it, and the caller must readyq_release() it
// when the job stops running, or at once if it could not be leased.
bool readyq_take(struct readyq *q, const char *const *queues, size_t nq,
    const char *const *types, size_t nt, int64_t *id, const char **key,
    const char **ckey);

// A job with concurrency key ckey stopped running (or was never leased):
// one fewer runs, and set-aside jobs go back to their queues while the key
// is under its limit. Returns how many went back; 0 for an unknown key.
size_t readyq_release(struct readyq *q, const char *ckey);

// The id of key ckey (0 if no job holds it), for readyq_release_id(). An
// id names its key while any job holds the key: one that is running
// (taken, or counted by readyq_running) keeps it until it is released.
uint32_t readyq_key_id(struct readyq *q, const char *ckey);

// readyq_release() of the key with this id, without looking up its name;
// 0 (nothing done) for id 0 or an id no key has.
size_t readyq_release_id(struct readyq *q, uint32_t id);

// Counts a running job (leased before a rebuild) under ckey, whose job id
// and limit take part in the newest-job rule. 0, or -1 if out of memory.
int readyq_running(
    struct readyq *q, const char *ckey, uint32_t limit, int64_t id);

// A key's state: false if no job holds it.
bool readyq_key_state(const struct readyq *q, const char *ckey,
    uint32_t *running, size_t *waiting, uint32_t *limit);

// Keys held (for tests: a released key is forgotten).
size_t readyq_key_count(const struct readyq *q);

// One key's counts, as readyq_busiest() lists them.
struct readyq_key_counts {
    const char *key; // valid until the key is released
    uint32_t    running;
    size_t      waiting; // set aside: queued, waiting for a free slot
    uint32_t    limit;
};

// Keys held, and the jobs running and set aside under them, summed over
// every key: a walk of the key table (for a metrics scrape, not a lease).
void readyq_key_totals(
    const struct readyq *q, size_t *keys, uint64_t *running, uint64_t *waiting);

// The at most max keys with the most set-aside jobs, waiting descending
// then key (strcmp), into out; how many. A walk of every key held, in
// O(keys x max) at worst: for Health, never on the lease path.
size_t readyq_busiest(
    const struct readyq *q, struct readyq_key_counts *out, size_t max);

// True if a pop with these queues and types would find a job.
bool readyq_any(struct readyq *q, const char *const *queues, size_t nq,
    const char *const *types, size_t nt);

// Entries held, stale and set-aside ones included.
size_t readyq_size(const struct readyq *q);

// Pauses (paused true) or resumes a queue: pop, take and any skip every
// pair of a paused queue, whose entries stay held. Any name may be
// paused, one with no entries included. 0, or -1 if out of memory (the
// queue's state is then unchanged).
int readyq_pause(struct readyq *q, const char *queue, bool paused);

// True if queue is paused.
bool readyq_paused(const struct readyq *q, const char *queue);

// The paused queues, sorted (bytewise): how many, and the i-th name
// (valid until it is resumed or the readyq freed).
size_t      readyq_paused_count(const struct readyq *q);
const char *readyq_paused_name(const struct readyq *q, size_t i);

// ---- rate limits ----
//
// A queue may have a rate limit: a token bucket of at most burst tokens
// that gains rate tokens a second; a take from any of the queue's (queue,
// type) pairs spends one, and pop, take and any skip the queue's pairs
// while it holds less than one. Buckets refill on readyq_clock(), which
// the engine calls with the batch's time before it takes.

struct readyq_rate {
    double   rate;   // tokens a second, > 0
    uint32_t burst;  // the most it holds, >= 1
    double   tokens; // now (as of at)
    int64_t  at;     // ms
};

// Refills every bucket to now_ms.
void readyq_clock(struct readyq *q, int64_t now_ms);

// Adds the tokens r gained from r->at to now (ms), up to its burst.
void readyq_rate_refill(struct readyq_rate *r, int64_t now);

// Sets queue's limit to *r (NULL, or r->rate <= 0: removes it). 0, or -1
// if out of memory (nothing changed).
int readyq_rate_set(
    struct readyq *q, const char *queue, const struct readyq_rate *r);

// Queue's bucket in *out: false if it has no limit.
bool readyq_rate_get(
    struct readyq *q, const char *queue, struct readyq_rate *out);

// The limited queues, sorted: how many, and the i-th one's name (NULL past
// the end), its bucket and whether a take or refund changed it since
// readyq_rate_clean().
size_t      readyq_rate_count(const struct readyq *q);
const char *readyq_rate_name(
    const struct readyq *q, size_t i, struct readyq_rate *out, bool *dirty);
void readyq_rate_clean(struct readyq *q);

// Gives back the token of a take whose job was not leased after all; key
// is the take's "queue\x1ftype" (readyq_take).
void readyq_rate_refund(struct readyq *q, const char *key);

// When the first empty bucket (less than one token) next holds one, in ms;
// INT64_MAX when none is empty.
int64_t readyq_rate_next(const struct readyq *q);

#endif
