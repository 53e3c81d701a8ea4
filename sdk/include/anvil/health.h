// health.h - how the server is (Health): queue depths, the last minutes'
// counts, paused queues and the busiest concurrency keys. Part of
// anvil/anvil.h, which includes it at its end: include that one.
//
// Thread safety: the calls are as thread-safe as the client. Returned
// objects are the caller's.
#ifndef ANVIL_HEALTH_H
#define ANVIL_HEALTH_H

#include <anvil/anvil.h>

#ifdef __cplusplus
extern "C" {
#endif

struct anvil_queue_depth {
    char    *queue;
    char    *type;
    uint64_t queued;
    uint64_t running;
    bool     no_worker; // no live worker serves this queue and type
    uint64_t scheduled; // waiting for their run time (delay, retry backoff)
    bool     paused;    // the queue is paused (anvil_queue_pause)
};

// A concurrency key as the server holds it now (ConcurrencyKeyState).
struct anvil_key_state {
    char    *key;
    uint32_t running; // jobs leased under it
    uint64_t waiting; // jobs queued that wait for a free slot
    uint32_t limit;   // the newest job's concurrency_limit
};

// Jobs of one queue and type that ended in one minute (MinuteCount).
struct anvil_minute_count {
    int64_t  minute_ms; // the minute's start, Unix epoch ms
    char    *queue;
    char    *type;
    uint64_t succeeded;
    uint64_t failed;  // final failures only
    uint64_t retried; // attempts that failed and will run again
};

// A queue's rate limit (anvil_queue_limit): a token bucket of at most
// burst tokens that gains rate_per_second of them a second; each lease of
// one of the queue's jobs takes one.
struct anvil_queue_limit {
    char    *queue;
    double   rate_per_second;
    uint32_t burst;
    double   tokens; // in the bucket now (anvil_health_get)
};

struct anvil_health {
    char                     *version;
    int64_t                   uptime_ms;
    uint64_t                  jobs_total;
    struct anvil_queue_depth *depths;
    size_t                    n_depths;
    // The last 15 minutes (since the server started), oldest first; none
    // from a server older than the event stream.
    struct anvil_minute_count *recent;
    size_t                     n_recent;
    uint64_t last_event_seq; // the newest event's seq (anvil_event_watch)
    // The paused queues (anvil_queue_pause), sorted; none from a server
    // older than pausing.
    char **paused_queues;
    size_t n_paused_queues;
    // The rate-limited queues (anvil_queue_limit), sorted, with their
    // buckets now; none from a server older than rate limits.
    struct anvil_queue_limit *queue_limits;
    size_t                    n_queue_limits;
    // The concurrency keys with the most jobs waiting, at most 20: waiting
    // descending, then key; none when no job holds a key (or from a
    // server older than this list).
    struct anvil_key_state *busiest_keys;
    size_t                  n_busiest_keys;
};

// Asks the server how it is. *out is the caller's (anvil_health_free).
ANVIL_API int anvil_health_get(
    anvil_client *c, struct anvil_health **out, struct anvil_error *err);

ANVIL_API void anvil_health_free(struct anvil_health *h);

#ifdef __cplusplus
}
#endif

#endif // ANVIL_HEALTH_H
