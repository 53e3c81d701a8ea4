// hash.h - a map from borrowed strings to size_t values: open addressing
// with linear probing, at most half full, deletion by backward shift.
//
// The table never copies keys: a key must stay valid, unchanged, while it
// is in the table. Values are indexes or counts chosen by the caller.
// Not thread-safe; the owner of the struct guards it.
#ifndef AV_HASH_H
#define AV_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct av_hash_slot {
    const char *key; // NULL = empty
    uint64_t    h;   // av_hash_str(key)
    size_t      val;
};

struct av_hash {
    struct av_hash_slot *slots;
    size_t               cap; // power of two, 0 before the first put
    size_t               n;   // keys held
};

// FNV-1a of a NUL-terminated string.
uint64_t av_hash_str(const char *s);

// An empty table with room for `hint` keys before it grows. 0, or -1 if out
// of memory (the table is then empty and still valid).
int av_hash_init(struct av_hash *t, size_t hint);

// Frees the slots (not the keys). Safe on a zeroed or finished table.
void av_hash_fini(struct av_hash *t);

// The value of key in *val: true, or false if absent.
bool av_hash_get(const struct av_hash *t, const char *key, size_t *val);

// Sets key to val, replacing any value it had. 0, or -1 if out of memory
// (the table is then unchanged).
int av_hash_put(struct av_hash *t, const char *key, size_t val);

// Adds key with val unless it is there: 0 and *old untouched when added,
// 1 with its value in *old when present, -1 if out of memory.
int av_hash_add(struct av_hash *t, const char *key, size_t val, size_t *old);

// Removes key: true, or false if absent.
bool av_hash_del(struct av_hash *t, const char *key);

#endif
