// registry.h - the live list of workers: who polls, from where, for which
// types and queues, and when each was last heard from. It lives in memory
// only: after a restart, workers reappear with their next Poll or Heartbeat.
//
// Owned by the engine thread; not thread-safe.
#ifndef SERVER_REGISTRY_H
#define SERVER_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// What a worker says of itself; strings borrowed for the call.
struct worker_info {
    const char        *host;
    int64_t            pid;
    const char        *version;
    const char *const *types;
    size_t             n_types;
    const char *const *queues;
    size_t             n_queues;
    uint32_t           slots;
};

struct registry_entry {
    char    *name;
    char    *host;
    int64_t  pid;
    char    *version;
    char   **types;
    size_t   n_types;
    char   **queues;
    size_t   n_queues;
    uint32_t slots;
    int64_t  first_seen;
    int64_t  last_seen;
    bool     lost;
    bool     told_lost; // a WORKER_LOST event was written
    uint32_t running;   // filled by the caller
};

struct registry;

// lost_after_ms: a worker unheard of for this long is lost. NULL if out of
// memory.
struct registry *registry_new(int64_t lost_after_ms);
void             registry_free(struct registry *r);

// Worker `name` was heard from at now; info (may be NULL) replaces what it
// said before. 1 when it joined (it was unknown, or lost), 0 when it was
// live, -1 if out of memory.
int registry_seen(struct registry *r, const char *name,
    const struct worker_info *info, int64_t now);

// Calls fn for each worker lost at now that fn was not called for yet
// (until it is heard from again). live(arg, name) may say a worker is
// still there though silent (it waits in a long-poll). Returns how many
// live workers remain.
size_t registry_take_lost(struct registry *r, int64_t now,
    bool (*live)(void *arg, const char *name),
    void (*fn)(void *arg, const char *name), void *arg);

// A copy of every worker known (lost ones included; those lost for over an
// hour are forgotten first). Free with registry_entries_free().
int registry_list(
    struct registry *r, int64_t now, struct registry_entry **out, size_t *n);
void registry_entries_free(struct registry_entry *e, size_t n);

// True if a live worker polls queue for type.
bool registry_serves(
    const struct registry *r, const char *queue, const char *type, int64_t now);

#endif
