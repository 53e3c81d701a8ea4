// client_impl.h - what the SDK's call modules (client.c, client_worker.c,
// workflow.c) share: running one rpc on an anvil_client, and the argument
// checks every public call makes before it sends anything.
//
// Threads: any; client_call() is as thread-safe as the client (see the
// top of client.c for how calls, anvil_client_shutdown() and
// anvil_client_close() meet).
#ifndef SDK_CLIENT_IMPL_H
#define SDK_CLIENT_IMPL_H

#include "anvil/v1/anvil.pb-c.h"

#include <anvil/anvil.h>
#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

// Runs rpc `method` on c with request req (of the rpc's input type) and
// waits for the reply: up to the client's timeout, plus wait_ms for a
// long-poll the server may park. On ANVIL_OK *reply is the rpc's output
// message, freed with client_free_reply(). Errors: the server's code and
// message; UNAVAILABLE when no server took the request in time or the
// client is shut down (calls in flight fail at once); DEADLINE_EXCEEDED
// when a server took it but no reply came; UNIMPLEMENTED for an unknown
// method; INTERNAL for a reply that does not decode.
int client_call(anvil_client *c, const char *method,
    const ProtobufCMessage *req, int64_t wait_ms, ProtobufCMessage **reply,
    struct anvil_error *err);

// As client_call() for a batch request of n_ids items: the envelope takes
// the first of n_ids consecutive request ids (see SubmitJobs).
int client_call_ids(anvil_client *c, const char *method,
    const ProtobufCMessage *req, uint32_t n_ids, ProtobufCMessage **reply,
    struct anvil_error *err);

// Fills req's options from o (NULL: leaves the defaults).
void client_submit_opts_to_pb(
    const struct anvil_submit_opts *o, Anvil__V1__SubmitJobRequest *req);

// The worker info set with anvil_client_set_worker_info(), or NULL.
const Anvil__V1__WorkerInfo *client_worker_info(const anvil_client *c);

// Frees a reply of client_call(); NULL is ignored.
void client_free_reply(ProtobufCMessage *reply);

// INVALID_ARGUMENT "<fn>: client is NULL" when c is NULL, else ANVIL_OK.
int client_check(anvil_client *c, const char *fn, struct anvil_error *err);

// INVALID_ARGUMENT "<fn>: <what> is NULL|empty" when id is, else ANVIL_OK.
int client_check_id(
    const char *id, const char *what, const char *fn, struct anvil_error *err);

// INVALID_ARGUMENT when p is NULL but len is not 0, else ANVIL_OK.
int client_check_bytes(const void *p, size_t len, const char *what,
    const char *fn, struct anvil_error *err);

#endif
