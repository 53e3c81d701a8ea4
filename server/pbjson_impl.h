// pbjson_impl.h - what pbjson.c (parsing), pbjson_text.c (fields from
// URL text) and pbjson_print.c (printing) share. Private to them; any
// thread, no shared state.
#ifndef SERVER_PBJSON_IMPL_H
#define SERVER_PBJSON_IMPL_H

#include <anvil/anvil.h>
#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// The sibling key of a bytes field that carries it base64: payload_base64.
#define PBJSON_BASE64_SUFFIX "_base64"

// The size of one element of a repeated field of type t.
size_t pbjson_elem_size(ProtobufCType t);

// The value of enum ed numbered n, or NULL.
const ProtobufCEnumValue *pbjson_enum_by_number(
    const ProtobufCEnumDescriptor *ed, int64_t n);

// Where a value is, for error messages: "spec.steps[2].name".
struct path {
    char   s[160];
    size_t len;
};

// Any scalar a field holds; pbjson_set_text parses into one first.
union slot {
    int32_t            i32;
    uint32_t           u32;
    int64_t            i64;
    uint64_t           u64;
    float              f;
    double             d;
    protobuf_c_boolean b;
    char              *s;
};

// Appends ".key" (or "key" at the top) to p; returns the length to pop to.
size_t pbjson_path_key(struct path *p, const char *key);

// The field named s[0..n), by proto name or json_name, or NULL.
const ProtobufCFieldDescriptor *pbjson_field_by_name(
    const ProtobufCMessageDescriptor *d, const char *s, size_t n);

// Sets one value of field f at slot (an element, for a repeated field)
// from v; base64: v is the field's <name>_base64 form.
int pbjson_set_value(const ProtobufCFieldDescriptor *f, void *slot,
    const json_t *v, bool base64, struct path *p, struct anvil_error *err);

// Records that singular field f of m is set: its oneof case or has_ flag.
int pbjson_mark_present(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
    const struct path *p, struct anvil_error *err);

#endif
