// handlers.h - one function pair per rpc: decode and validate the request
// body into an engine command, and encode the engine's result as the
// response body. The table is checked against protobuf-c's service
// descriptor, so adding an rpc is: add it to the .proto, write its pair.
//
// Protobuf types stop here and in rpc.c. Any thread; no shared state.
#ifndef SERVER_HANDLERS_H
#define SERVER_HANDLERS_H

#include "engine.h"

#include <anvil/anvil.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct handler_limits {
    size_t max_payload; // payload and result bytes
};

// One request in flight: its decoded body and its engine command.
struct call {
    int               method;     // row of the handler table
    ProtobufCMessage *req;        // unpacked body; freed by call_fini
    void             *scratch;    // inputs converted for the engine
    void (*scratch_free)(void *); // NULL = free()
    bool long_poll; // set by decode: the engine may park it (rpc.c counts)
    struct cmd cmd;
};

// The roles besides admin that may call rpc `method` (bit 1 << role), from
// its row of the handler table; 0 for an unknown method (admin only).
unsigned handlers_roles(const char *method);

// The index of rpc `method` in anvil.v1.Anvil's service descriptor (what
// metrics_rpc() takes), or -1 for an unknown method.
int handlers_method_index(const char *method);
// The number of rpcs in the service descriptor, and the name of rpc i
// (NULL when i is out of range).
size_t      handlers_method_count(void);
const char *handlers_method_name(int i);

// Checks that the handler table matches the service descriptor. Returns
// 0, or -1 (a build mistake) after logging what differs.
int handlers_check(void);

// Decodes body as the request of rpc `method`, validates it and fills
// call->cmd. Errors: UNIMPLEMENTED (unknown method), INVALID_ARGUMENT
// (undecodable body, bad field), NOT_FOUND (malformed job id).
int handlers_decode(const struct handler_limits *lim, const char *method,
    const uint8_t *body, size_t len, struct call *call,
    struct anvil_error *err);

// As handlers_decode, for a request already built as a message of the
// method's input type (the HTTP endpoint's JSON): call takes req (NULL =
// undecodable) and frees it in handlers_call_fini.
int handlers_decode_msg(const struct handler_limits *lim, const char *method,
    ProtobufCMessage *req, struct call *call, struct anvil_error *err);

// The request message type of rpc `method`, or NULL for an unknown one.
const ProtobufCMessageDescriptor *handlers_input(const char *method);

// The response message of a call whose command succeeded, pointing into
// *scratch and the call: free with handlers_reply_free before
// handlers_call_fini.
int  handlers_reply(struct call *call, ProtobufCMessage **out, void **scratch,
     struct anvil_error *err);
void handlers_reply_free(struct call *call, void *scratch);

// Encodes the response body of a call whose command succeeded into a new
// buffer (*out, *len; free with free()).
int handlers_encode(
    struct call *call, uint8_t **out, size_t *len, struct anvil_error *err);

// Frees what decode and the engine left in call; call may be reused.
void handlers_call_fini(struct call *call);

// True if s matches [A-Za-z0-9_.-]{1,128}.
bool handlers_valid_name(const char *s);

#endif
