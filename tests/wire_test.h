// wire_test.h - what tests that stand in for anvild need on top of
// sdk/wire.h: packing a Reply envelope, as a server sends it. The library
// never sends replies, so this lives with the tests, not in libanvil.
//
// Header-only (static inline) so that any test binary can use it without
// a build rule of its own. Any thread; no shared state.
#ifndef TESTS_WIRE_TEST_H
#define TESTS_WIRE_TEST_H

#include "anvil/v1/anvil.pb-c.h"

#include <anvil/anvil.h>
#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

// Packs Reply{code, message, body, request_id} into a new nng message
// (*out, the caller's). body may be NULL (an empty body). ANVIL_OK, or
// RESOURCE_EXHAUSTED when out of memory (err may be NULL).
static inline int
wire_test_reply_encode(int code, const char *message,
    const ProtobufCMessage *body, uint64_t request_id, nng_msg **out,
    struct anvil_error *err)
{
    Anvil__V1__Reply env = ANVIL__V1__REPLY__INIT;
    size_t   len  = body != NULL ? protobuf_c_message_get_packed_size(body) : 0;
    uint8_t *data = malloc(len > 0 ? len : 1);
    *out          = NULL;
    if (data != NULL && body != NULL)
        len = protobuf_c_message_pack(body, data);
    env.code       = (Anvil__V1__Code) code;
    env.message    = (char *) (message != NULL ? message : "");
    env.body.data  = data;
    env.body.len   = len;
    env.request_id = request_id;
    if (data == NULL
        || nng_msg_alloc(out, protobuf_c_message_get_packed_size(&env.base))
            != 0) {
        free(data);
        *out = NULL;
        if (err != NULL) {
            err->code = ANVIL_RESOURCE_EXHAUSTED;
            snprintf(
                err->msg, sizeof(err->msg), "out of memory packing a reply");
        }
        return ANVIL_RESOURCE_EXHAUSTED;
    }
    protobuf_c_message_pack(&env.base, nng_msg_body(*out));
    free(data);
    return ANVIL_OK;
}

#endif
