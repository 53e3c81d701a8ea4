// pbjson.h - protobuf-c messages to and from JSON (jansson), driven by the
// message descriptors: one converter for every rpc of the HTTP endpoint.
//
// The mapping is proto3's JSON mapping, with these choices (docs/http.md):
// - field names: printed as the proto field name (`created_at_ms`, as
//   grpc-gateway with UseProtoNames); parsed as the proto name or its
//   lowerCamelCase json_name.
// - 64-bit integers: printed as JSON strings (proto3 JSON); parsed from a
//   number or a decimal string. 32-bit integers: numbers (strings taken).
// - enums: printed as their full value name ("JOB_STATE_SUCCEEDED");
//   parsed from that name, the name without its type prefix ("SUCCEEDED",
//   any case) or the number.
// - bytes: a field `payload` whose bytes are JSON text is printed as that
//   JSON value; other bytes go, base64, in the sibling `payload_base64`.
//   Parsed: `payload` takes any JSON value (its compact text becomes the
//   bytes), `payload_base64` a base64 string; both at once is an error.
//   Bytes that are JSON text (RFC 8259, any whitespace) print as the
//   value, compactly: the meaning comes back, the spacing may not (send
//   `payload_base64` when exact bytes matter). Base64 is the
//   standard alphabet, padded, on one line. A repeated bytes field is
//   always <name>_base64, an array of base64 strings.
// - doubles: JSON numbers; NaN and the infinities as the strings "NaN",
//   "Infinity", "-Infinity", which are parsed back, as are numeric strings.
// - strings are UTF-8 (a bad byte in a message prints as U+FFFD); a JSON
//   string with a NUL (\u0000) is refused.
// - every scalar and repeated field is printed, defaults included (bytes
//   only when not empty); an unset sub-message is left out.
// - unknown fields, wrong JSON types and out-of-range numbers are
//   INVALID_ARGUMENT naming the field's path ("jobs[3].priority"); so is
//   a field given twice (by proto name and json_name, or a bytes field
//   both ways). A null value leaves the field at its default.
// Any thread; no shared state.
#ifndef SERVER_PBJSON_H
#define SERVER_PBJSON_H

#include <anvil/anvil.h>
#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

// Builds a new message of type d from the JSON object `obj` (NULL = an
// empty message). The message is allocated as protobuf-c's unpack does:
// free it with protobuf_c_message_free_unpacked(msg, NULL). On error *out
// is NULL and err says which field is wrong and why.
int pbjson_to_msg(const ProtobufCMessageDescriptor *d, const json_t *obj,
    ProtobufCMessage **out, struct anvil_error *err);

// Sets one field of m, named by its proto name or json_name, from the text
// of a URL path segment or query parameter (scalars, enums, and repeated
// scalars: each call appends one value; a singular field is replaced).
// Numbers are the whole text, decimal and in range; bools are true, false,
// 1 or 0; enums as in JSON. Message and bytes fields are refused (a
// path or query never carries one). INVALID_ARGUMENT when the field is
// unknown or the text is not a value of its type; m is then unchanged.
int pbjson_set_text(ProtobufCMessage *m, const char *name, const char *text,
    struct anvil_error *err);

// The JSON object of message m, or NULL when out of memory.
json_t *pbjson_from_msg(const ProtobufCMessage *m);

#endif
