// wire.h - the anvil.v1 envelope on the client side.
//
// This module owns everything between a protobuf-c request message and a
// protobuf-c reply message: request ids, packing the Request envelope,
// unpacking the Reply envelope and mapping nng errors to anvil codes. The
// one path that sends a request and waits for its reply is client_call()
// (client_call.c), which every rpc of the SDK goes through. The rpc is
// found by name in the service descriptor generated from
// proto/anvil/v1/anvil.proto, so adding an rpc needs no change here.
//
// Threads: any. The request id counter is atomic; nothing else is shared.
#ifndef SDK_WIRE_H
#define SDK_WIRE_H

#include <anvil/anvil.h>
#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

// The largest message a client accepts (NNG_OPT_RECVMAXSZ). The server must
// keep every reply below it (ListJobs and Poll pages included).
#define WIRE_MAX_MSG ((size_t) 16 * 1024 * 1024)

// NNG_OPT_REQ_RESENDTIME of client sockets: above the longest long-poll, so
// a parked WaitJob or Poll is not sent twice. See the top of wire.c.
#define WIRE_RESEND_MS (5 * 60 * 1000)

// A new request id: never 0, unique within the process (atomic counter)
// and, with overwhelming probability, across processes (random 64-bit
// start from getrandom, drawn again in a forked child).
uint64_t wire_request_id(void);

// The first of n consecutive request ids (n >= 1), none of them 0: a batch
// request numbers its items R .. R + n - 1.
uint64_t wire_request_ids(uint32_t n);

// The rpc `name` of service anvil.v1.Anvil, or NULL if there is none.
const ProtobufCMethodDescriptor *wire_method(const char *name);

// Sets err to av_code_from_nng(rv) (util/nng_code.h) and a sentence naming what
// failed
// (`what`, e.g. "GetJob"), the server url and nng's reason; a timeout
// names timeout_ms and asks whether anvild runs. Returns the code.
int wire_nng_error(int rv, const char *what, const char *url,
    int64_t timeout_ms, struct anvil_error *err);

// Packs Request{method, body = packed `body`, token, request_id} into a new
// nng message. On success *out is the caller's (it is consumed by a
// successful send, else free it with nng_msg_free). body may be NULL (an
// empty body). Errors: INVALID_ARGUMENT (no method, or a message over
// WIRE_MAX_MSG), RESOURCE_EXHAUSTED (out of memory).
int wire_request_encode(const char *method, const ProtobufCMessage *body,
    const char *token, uint64_t request_id, nng_msg **out,
    struct anvil_error *err);

// Decodes the len bytes of a Reply envelope answering `method` (for
// messages) with request_id. If the reply's code is OK and desc is not
// NULL, unpacks its body as desc into *body, the caller's to free with
// protobuf_c_message_free_unpacked(*body, NULL); *body is NULL otherwise.
// Returns the reply's code, with its message in err unchanged (the code's
// text if the server sent none); ANVIL_UNKNOWN for a code outside the
// gRPC range; ANVIL_INTERNAL if the envelope or the body does not decode or
// the reply echoes another request id. When leader is not NULL it gets
// Reply.leader of an UNAVAILABLE reply (a standby's answer: the leader's
// URL), a copy the caller frees; NULL for any other code or an empty one.
int wire_reply_decode(const void *buf, size_t len, const char *method,
    uint64_t request_id, const ProtobufCMessageDescriptor *desc,
    ProtobufCMessage **body, char **leader, struct anvil_error *err);

#endif
