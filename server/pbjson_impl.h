// pbjson_impl.h - what pbjson.c (parsing) and pbjson_print.c (printing)
// share. Private to the two; any thread, no shared state.
#ifndef SERVER_PBJSON_IMPL_H
#define SERVER_PBJSON_IMPL_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

// The sibling key of a bytes field that carries it base64: payload_base64.
#define PBJSON_BASE64_SUFFIX "_base64"

// The size of one element of a repeated field of type t.
size_t pbjson_elem_size(ProtobufCType t);

// The value of enum ed numbered n, or NULL.
const ProtobufCEnumValue *pbjson_enum_by_number(
    const ProtobufCEnumDescriptor *ed, int64_t n);

#endif
