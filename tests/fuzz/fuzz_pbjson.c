// fuzz_pbjson.c - libFuzzer target: the JSON converter of the HTTP endpoint
// (server/pbjson.c). The first byte picks a message type (the request or
// the response of an rpc of `service Anvil`), the rest is JSON. What
// converts is printed, parsed back and printed again: the second message
// must pack to the same bytes as the first and print the same JSON.
#include "../../server/pbjson.h"
#include "anvil/v1/anvil.pb-c.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *
pack(const ProtobufCMessage *m, size_t *len)
{
    *len         = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len + 1);
    if (buf == NULL)
        abort();
    protobuf_c_message_pack(m, buf);
    return buf;
}

// m printed and parsed back: the same JSON. Bytes that are JSON text come
// back compact (pbjson.h), so the message is compared from the first
// round trip on: parsing what it prints gives the very same message.
static void
check_round_trip(const ProtobufCMessage *m)
{
    struct anvil_error err   = { 0 };
    ProtobufCMessage  *back  = NULL;
    ProtobufCMessage  *back2 = NULL;
    json_t            *j1    = pbjson_from_msg(m);
    if (j1 == NULL)
        abort();
    if (pbjson_to_msg(m->descriptor, j1, &back, &err) != ANVIL_OK)
        abort(); // what pbjson prints, pbjson must parse
    json_t *j2 = pbjson_from_msg(back);
    if (j2 == NULL || !json_equal(j1, j2))
        abort();
    if (pbjson_to_msg(m->descriptor, j2, &back2, &err) != ANVIL_OK)
        abort();
    size_t   n1, n2;
    uint8_t *p1 = pack(back, &n1);
    uint8_t *p2 = pack(back2, &n2);
    if (n1 != n2 || memcmp(p1, p2, n1) != 0)
        abort();
    free(p1);
    free(p2);
    json_decref(j1);
    json_decref(j2);
    protobuf_c_message_free_unpacked(back, NULL);
    protobuf_c_message_free_unpacked(back2, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const ProtobufCServiceDescriptor *svc = &anvil__v1__anvil__descriptor;
    if (size == 0)
        return 0;
    const ProtobufCMethodDescriptor *md
        = &svc->methods[(data[0] >> 1) % svc->n_methods];
    const ProtobufCMessageDescriptor *d = data[0] & 1 ? md->output : md->input;
    json_t *j = json_loadb((const char *) data + 1, size - 1,
        JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (j == NULL)
        return 0;
    struct anvil_error err = { 0 };
    ProtobufCMessage  *m   = NULL;
    if (pbjson_to_msg(d, j, &m, &err) == ANVIL_OK) {
        check_round_trip(m);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    json_decref(j);
    return 0;
}
