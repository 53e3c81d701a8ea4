// pbjson_print.c - protobuf-c messages to JSON through the message
// descriptors (the mapping is in pbjson.h; parsing is in pbjson.c).
#include "pbjson.h"
#include "pbjson_impl.h"
#include "util/utf8.h"

#include <inttypes.h>
#include <math.h>
#include <mbedtls/base64.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// A JSON string of s. protobuf-c does not check UTF-8 when it unpacks, and
// JSON must be UTF-8: a bad byte becomes U+FFFD.
static json_t *
string_json(const char *s)
{
    if (s == NULL)
        return json_string("");
    json_t *v = json_string(s);
    if (v != NULL)
        return v;
    size_t n   = strlen(s);
    char  *fix = malloc(n * 3 + 1);
    if (fix == NULL)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n;) {
        size_t k = av_utf8_seq((const unsigned char *) s + i);
        if (k == 0) {
            memcpy(fix + j, "\xEF\xBF\xBD", 3);
            j += 3;
            i++;
        } else {
            memcpy(fix + j, s + i, k);
            j += k;
            i += k;
        }
    }
    fix[j] = '\0';
    v      = json_string(fix);
    free(fix);
    return v;
}

static json_t *
real_json(double x)
{
    if (isnan(x))
        return json_string("NaN");
    if (isinf(x))
        return json_string(x > 0 ? "Infinity" : "-Infinity");
    return json_real(x);
}

static json_t *
base64_json(const ProtobufCBinaryData *bd)
{
    size_t olen = 0;
    mbedtls_base64_encode(NULL, 0, &olen, bd->data, bd->len);
    unsigned char *buf = malloc(olen + 1);
    if (buf == NULL)
        return NULL;
    json_t *v = NULL;
    if (mbedtls_base64_encode(buf, olen + 1, &olen, bd->data, bd->len) == 0)
        v = json_stringn((const char *) buf, olen);
    free(buf);
    return v;
}

// The JSON value the bytes are the text of, into *out (NULL when they are
// not JSON text: they go base64). The value is printed compactly, so its
// whitespace may differ from the bytes'; what it means does not. -1 when
// out of memory.
static int
bytes_json(const ProtobufCBinaryData *bd, json_t **out)
{
    *out = json_loadb((const char *) bd->data, bd->len, JSON_DECODE_ANY, NULL);
    return 0;
}

static json_t *
enum_json(const ProtobufCEnumDescriptor *ed, int32_t x)
{
    const ProtobufCEnumValue *ev = pbjson_enum_by_number(ed, x);
    return ev != NULL ? json_string(ev->name) : json_integer(x);
}

static json_t *
int_string(bool is_signed, const void *slot)
{
    char buf[24];
    if (is_signed)
        snprintf(buf, sizeof(buf), "%" PRId64, *(const int64_t *) slot);
    else
        snprintf(buf, sizeof(buf), "%" PRIu64, *(const uint64_t *) slot);
    return json_string(buf);
}

// One value of field f at slot (bytes: base64; see print_bytes).
static json_t *
value_json(const ProtobufCFieldDescriptor *f, const void *slot)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *) slot);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *) slot);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return int_string(true, slot);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return int_string(false, slot);
    case PROTOBUF_C_TYPE_FLOAT:
        return real_json(*(const float *) slot);
    case PROTOBUF_C_TYPE_DOUBLE:
        return real_json(*(const double *) slot);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *) slot);
    case PROTOBUF_C_TYPE_ENUM:
        return enum_json(f->descriptor, *(const int32_t *) slot);
    case PROTOBUF_C_TYPE_STRING:
        return string_json(*(char *const *) slot);
    case PROTOBUF_C_TYPE_BYTES:
        return base64_json(slot);
    case PROTOBUF_C_TYPE_MESSAGE:
        if (*(ProtobufCMessage *const *) slot == NULL)
            return json_null();
        return pbjson_from_msg(*(ProtobufCMessage *const *) slot);
    }
    return NULL;
}

// Sets obj["<name>_base64"] to v (consumed). 0, or -1 when out of memory.
static int
set_base64_key(json_t *obj, const char *name, json_t *v)
{
    char *key = malloc(strlen(name) + sizeof(PBJSON_BASE64_SUFFIX));
    if (key == NULL) {
        json_decref(v);
        return -1;
    }
    strcpy(key, name);
    strcat(key, PBJSON_BASE64_SUFFIX);
    int rc = json_object_set_new(obj, key, v);
    free(key);
    return rc;
}

static int
print_bytes(json_t *obj, const char *name, const ProtobufCBinaryData *bd)
{
    json_t *v = NULL;
    if (bd->len == 0)
        return 0;
    if (bytes_json(bd, &v) != 0)
        return -1;
    if (v != NULL)
        return json_object_set_new(obj, name, v);
    return set_base64_key(obj, name, base64_json(bd));
}

// A repeated bytes field is always printed as <name>_base64: an array of
// base64 strings.
static int
print_repeated(json_t *obj, const ProtobufCFieldDescriptor *f, const char *base)
{
    size_t      n   = *(const size_t *) (base + f->quantifier_offset);
    const char *arr = *(char *const *) (base + f->offset);
    size_t      sz  = pbjson_elem_size(f->type);
    json_t     *a   = json_array();
    if (a == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(a, value_json(f, arr + i * sz)) != 0) {
            json_decref(a);
            return -1;
        }
    if (f->type == PROTOBUF_C_TYPE_BYTES)
        return set_base64_key(obj, f->name, a);
    return json_object_set_new(obj, f->name, a);
}

// False for a field left out: an unset sub-message, an unset optional,
// a oneof member that is not the chosen one.
static bool
field_present(const char *base, const ProtobufCFieldDescriptor *f)
{
    const char *q = base + f->quantifier_offset;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *) q == f->id;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return true;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE
        || (f->type == PROTOBUF_C_TYPE_STRING
            && f->label == PROTOBUF_C_LABEL_OPTIONAL))
        return *(void *const *) (base + f->offset) != NULL;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
        return *(const protobuf_c_boolean *) q;
    return true;
}

json_t *
pbjson_from_msg(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d    = m->descriptor;
    const char                       *base = (const char *) m;
    json_t                           *obj  = json_object();
    for (unsigned i = 0; obj != NULL && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f  = &d->fields[i];
        int                             rc = 0;
        if (!field_present(base, f))
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            rc = print_repeated(obj, f, base);
        else if (f->type == PROTOBUF_C_TYPE_BYTES)
            rc = print_bytes(
                obj, f->name, (const ProtobufCBinaryData *) (base + f->offset));
        else
            rc = json_object_set_new(
                obj, f->name, value_json(f, base + f->offset));
        if (rc != 0) {
            json_decref(obj);
            obj = NULL;
        }
    }
    return obj;
}
