// convert.h - copying protobuf-c reply messages into the plain structs of
// anvil.h and workflow.h, so callers never see protobuf-c types.
//
// Every copy is deep: the result owns its strings and bytes and outlives
// the unpacked reply. Strings are never NULL ("" when unset) and bytes carry
// a NUL after them. On out of memory a function returns -1 and leaves its
// target empty (safe to free). Any thread; no shared state.
#ifndef SDK_CONVERT_H
#define SDK_CONVERT_H

#include "anvil/v1/anvil.pb-c.h"

#include <anvil/anvil.h>
#include <anvil/workflow.h>

// A copy of s; "" for NULL. NULL only when out of memory.
char *convert_str(const char *s);

// A copy of b with a NUL byte after it; *len = b.len. NULL only when out of
// memory.
uint8_t *convert_bytes(ProtobufCBinaryData b, size_t *len);

// *out = a copy of the n strings of v (NULL when n is 0). 0 or -1.
int convert_strv(char **v, size_t n, char ***out);

// Frees the n strings of v and v; NULL is ignored.
void convert_strv_free(char **v, size_t n);

// Fills j from pb. 0, or -1 (out of memory; j is then zeroed).
int convert_job(struct anvil_job *j, const Anvil__V1__Job *pb);

// Frees what j owns and zeroes it (j itself is the caller's).
void convert_job_fini(struct anvil_job *j);

// *out = a new job copied from pb. INTERNAL if pb is NULL (the reply to
// method has no job), RESOURCE_EXHAUSTED when out of memory.
int convert_job_new(const Anvil__V1__Job *pb, const char *method,
    struct anvil_job **out, struct anvil_error *err);

// Fills w from pb, steps included. 0, or -1 (out of memory or a NULL step;
// w is then zeroed).
int convert_workflow(struct anvil_workflow *w, const Anvil__V1__Workflow *pb);

// Frees what w owns and zeroes it.
void convert_workflow_fini(struct anvil_workflow *w);

// Fills e from pb. 0, or -1 (out of memory; e is then zeroed).
int convert_event(struct anvil_event *e, const Anvil__V1__Event *pb);

// Frees what e owns and zeroes it.
void convert_event_fini(struct anvil_event *e);

// *out = a new list copied from a WatchEvents reply (every event and the
// sequence numbers). 0, or -1 (out of memory or a NULL event; *out NULL).
int convert_event_list(
    const Anvil__V1__WatchEventsResponse *rep, struct anvil_event_list **out);

// Sets err to RESOURCE_EXHAUSTED "out of memory copying the reply to
// <method>" and returns that code.
int convert_oom(struct anvil_error *err, const char *method);

#endif
