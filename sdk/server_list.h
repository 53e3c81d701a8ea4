// server_list.h - the servers a client may talk to: parsing the
// comma-separated list given to anvil_client_open() ("tcp://a:7700,
// tcp://b:7700") and choosing the server to try next when the current one
// is unreachable or answers that it is not the leader.
//
// Pure string logic with no I/O, so that it can be unit-tested alone;
// checking that each URL names a transport nng knows is client.c's job.
// Threads: a list is immutable once parsed; any thread may read it.
#ifndef SDK_SERVER_LIST_H
#define SDK_SERVER_LIST_H

#include <anvil/anvil.h>
#include <stddef.h>

// The most servers a list may name.
#define SERVER_LIST_MAX 16

struct server_list {
    char  *urls[SERVER_LIST_MAX]; // each the caller's, freed by _fini
    size_t n;                     // 1 .. SERVER_LIST_MAX once parsed
};

// Splits spec at its commas into l (spaces and tabs around each element
// are dropped). INVALID_ARGUMENT, naming the list and the element, for an
// empty spec or element or more than SERVER_LIST_MAX elements;
// RESOURCE_EXHAUSTED when out of memory. l is empty on failure.
int server_list_parse(
    const char *spec, struct server_list *l, struct anvil_error *err);

// Frees the URLs of l and empties it; l may be empty.
void server_list_fini(struct server_list *l);

// The index of url in l, or -1 (an exact, case-sensitive match).
int server_list_find(const struct server_list *l, const char *url);

// The server to try after cur: the leader named by a standby when it is in
// the list and is not cur, else the one after cur (wrapping around).
// leader may be NULL or "" (none known).
size_t server_list_next(
    const struct server_list *l, size_t cur, const char *leader);

#endif
