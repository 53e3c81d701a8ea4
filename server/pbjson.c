// pbjson.c - JSON to protobuf-c messages through the message descriptors
// (the mapping is in pbjson.h; printing is in pbjson_print.c). One walk
// over the fields serves every rpc, so a field added to anvil.proto needs
// no code here.
//
// Memory: a message built here is laid out as protobuf_c_message_unpack
// would lay it out, with the system allocator, so that
// protobuf_c_message_free_unpacked(m, NULL) frees it whole, also half
// built after an error: every pointer is stored in the message as soon as
// it is allocated, and an unset string keeps the descriptor's default
// pointer, which free_unpacked leaves alone.
#include "pbjson.h"
#include "pbjson_impl.h"

#include "util/error.h"
#include "util/json.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <mbedtls/base64.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SUFFIX_CAMEL "Base64"

enum num { NUM_OK, NUM_TYPE, NUM_RANGE };

// ---- paths and errors ----

static void
path_grow(struct path *p, int n)
{
    if (n > 0)
        p->len += (size_t) n;
    if (p->len >= sizeof(p->s))
        p->len = sizeof(p->s) - 1;
}

// Appends ".key" (or "key" at the top) and returns the length to pop to.
size_t
pbjson_path_key(struct path *p, const char *key)
{
    size_t saved = p->len;
    path_grow(p,
        snprintf(p->s + p->len, sizeof(p->s) - p->len, "%s%s",
            p->len > 0 ? "." : "", key));
    return saved;
}

static size_t
path_index(struct path *p, size_t i)
{
    size_t saved = p->len;
    path_grow(p, snprintf(p->s + p->len, sizeof(p->s) - p->len, "[%zu]", i));
    return saved;
}

static void
path_pop(struct path *p, size_t saved)
{
    p->len       = saved;
    p->s[p->len] = '\0';
}

static int
oom(struct anvil_error *err)
{
    return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
}

// "'priority' must be an integer (int32), got "abc"".
static int
type_error(struct anvil_error *err, const struct path *p, const char *want,
    const json_t *v)
{
    if (json_is_string(v))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "'%s' must be %s, got \"%.40s%s\"", p->s, want,
            json_string_value(v), json_string_length(v) > 40 ? "..." : "");
    if (json_is_integer(v))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "'%s' must be %s, got %" JSON_INTEGER_FORMAT, p->s, want,
            json_integer_value(v));
    if (json_is_real(v))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "'%s' must be %s, got %g", p->s, want, json_real_value(v));
    return av_error_set(err, ANVIL_INVALID_ARGUMENT, "'%s' must be %s, got %s",
        p->s, want, av_json_kind(v));
}

// ---- names ----

// True when s[0..n) is the lowerCamelCase json_name protoc derives from
// the proto name: each '_' dropped and the character after it upper-cased.
static bool
camel_equal(const char *proto, const char *s, size_t n)
{
    size_t j  = 0;
    bool   up = false;
    for (const char *c = proto; *c != '\0'; c++) {
        if (*c == '_') {
            up = true;
            continue;
        }
        char want = up ? (char) toupper((unsigned char) *c) : *c;
        up        = false;
        if (j >= n || s[j] != want)
            return false;
        j++;
    }
    return j == n;
}

// The field named s[0..n), by proto name or json_name, or NULL.
const ProtobufCFieldDescriptor *
pbjson_field_by_name(
    const ProtobufCMessageDescriptor *d, const char *s, size_t n)
{
    for (unsigned i = 0; i < d->n_fields; i++) {
        const char *name = d->fields[i].name;
        if ((strlen(name) == n && memcmp(name, s, n) == 0)
            || camel_equal(name, s, n))
            return &d->fields[i];
    }
    return NULL;
}

// The field a JSON key names: a field, or a bytes field with the suffix
// "_base64" ("Base64" after a json_name), which sets *base64.
static const ProtobufCFieldDescriptor *
field_by_key(const ProtobufCMessageDescriptor *d, const char *key, size_t n,
    bool *base64)
{
    *base64                           = false;
    const ProtobufCFieldDescriptor *f = pbjson_field_by_name(d, key, n);
    if (f != NULL)
        return f;
    size_t cut = 0;
    if (n > strlen(PBJSON_BASE64_SUFFIX)
        && strcmp(key + n - strlen(PBJSON_BASE64_SUFFIX), PBJSON_BASE64_SUFFIX)
            == 0)
        cut = strlen(PBJSON_BASE64_SUFFIX);
    else if (n > strlen(SUFFIX_CAMEL)
        && strcmp(key + n - strlen(SUFFIX_CAMEL), SUFFIX_CAMEL) == 0)
        cut = strlen(SUFFIX_CAMEL);
    if (cut == 0)
        return NULL;
    f = pbjson_field_by_name(d, key, n - cut);
    if (f == NULL || f->type != PROTOBUF_C_TYPE_BYTES)
        return NULL;
    *base64 = true;
    return f;
}

// The prefix of enum value names by the style guide: "JOB_STATE_" for
// JobState. Its length, or 0 when it does not fit.
static size_t
enum_prefix(const char *type, char *buf, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; type[i] != '\0'; i++) {
        unsigned char c = (unsigned char) type[i];
        if (n + 3 >= cap)
            return 0;
        if (i > 0 && isupper(c)
            && (islower((unsigned char) type[i - 1])
                || isdigit((unsigned char) type[i - 1])))
            buf[n++] = '_';
        buf[n++] = (char) toupper(c);
    }
    buf[n++] = '_';
    buf[n]   = '\0';
    return n;
}

const ProtobufCEnumValue *
pbjson_enum_by_number(const ProtobufCEnumDescriptor *ed, int64_t n)
{
    for (unsigned i = 0; i < ed->n_values; i++)
        if (ed->values[i].value == n)
            return &ed->values[i];
    return NULL;
}

// ---- numbers from text: strict, the whole string ----

static enum num
text_i64(const char *s, int64_t *out)
{
    const char *digits = s[0] == '-' ? s + 1 : s;
    if (!isdigit((unsigned char) digits[0]))
        return NUM_TYPE;
    char *end;
    errno       = 0;
    long long x = strtoll(s, &end, 10);
    if (*end != '\0')
        return NUM_TYPE;
    if (errno == ERANGE)
        return NUM_RANGE;
    *out = x;
    return NUM_OK;
}

static enum num
text_u64(const char *s, uint64_t *out)
{
    if (s[0] == '-' && isdigit((unsigned char) s[1]))
        return NUM_RANGE;
    if (!isdigit((unsigned char) s[0]))
        return NUM_TYPE;
    char *end;
    errno                = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end != '\0')
        return NUM_TYPE;
    if (errno == ERANGE)
        return NUM_RANGE;
    *out = x;
    return NUM_OK;
}

// A number, "NaN", "Infinity" or "-Infinity" (proto3 JSON), strtod's way.
static enum num
text_double(const char *s, double *out)
{
    if (s[0] == '\0' || isspace((unsigned char) s[0]))
        return NUM_TYPE;
    char *end;
    errno    = 0;
    double x = strtod(s, &end);
    if (*end != '\0')
        return NUM_TYPE;
    if (errno == ERANGE && isinf(x))
        return NUM_RANGE;
    *out = x;
    return NUM_OK;
}

// The value of enum ed that s names: its full name or the name without
// the type's prefix, in any case, or its number.
static const ProtobufCEnumValue *
enum_by_text(const ProtobufCEnumDescriptor *ed, const char *s)
{
    char   prefix[128];
    size_t plen = enum_prefix(ed->short_name, prefix, sizeof(prefix));
    for (unsigned i = 0; i < ed->n_values; i++) {
        const char *name = ed->values[i].name;
        if (strcasecmp(name, s) == 0)
            return &ed->values[i];
        if (plen > 0 && strncmp(name, prefix, plen) == 0
            && strcasecmp(name + plen, s) == 0)
            return &ed->values[i];
    }
    int64_t n;
    if (text_i64(s, &n) == NUM_OK)
        return pbjson_enum_by_number(ed, n);
    return NULL;
}

// ---- numbers from JSON ----

// A JSON string without NUL characters, or NULL.
static const char *
json_text(const json_t *v)
{
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return NULL;
    return s;
}

static enum num
json_i64(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return NUM_OK;
    }
    if (json_is_real(v)) {
        double x = json_real_value(v);
        if (x != floor(x))
            return NUM_TYPE;
        if (x >= 0x1p63 || x < -0x1p63)
            return NUM_RANGE;
        *out = (int64_t) x;
        return NUM_OK;
    }
    const char *s = json_text(v);
    return s != NULL ? text_i64(s, out) : NUM_TYPE;
}

static enum num
json_u64(const json_t *v, uint64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < 0)
            return NUM_RANGE;
        *out = (uint64_t) x;
        return NUM_OK;
    }
    if (json_is_real(v)) {
        double x = json_real_value(v);
        if (x != floor(x))
            return NUM_TYPE;
        if (x < 0 || x >= 0x1p64)
            return NUM_RANGE;
        *out = (uint64_t) x;
        return NUM_OK;
    }
    const char *s = json_text(v);
    return s != NULL ? text_u64(s, out) : NUM_TYPE;
}

static int
num_error(enum num r, const struct path *p, const char *type, const char *range,
    const json_t *v, struct anvil_error *err)
{
    char want[96];
    if (r == NUM_RANGE)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "'%s' is out of range for %s (%s)", p->s, type, range);
    snprintf(want, sizeof(want), "an integer (%s)", type);
    return type_error(err, p, want, v);
}

static int
set_signed(const ProtobufCFieldDescriptor *f, void *slot, const json_t *v,
    const struct path *p, struct anvil_error *err)
{
    bool wide = f->type == PROTOBUF_C_TYPE_INT64
        || f->type == PROTOBUF_C_TYPE_SINT64
        || f->type == PROTOBUF_C_TYPE_SFIXED64;
    int64_t  x = 0;
    enum num r = json_i64(v, &x);
    if (r == NUM_OK && !wide && (x < INT32_MIN || x > INT32_MAX))
        r = NUM_RANGE;
    if (r != NUM_OK)
        return num_error(r, p, wide ? "int64" : "int32",
            wide ? "a decimal string or number" : "-2147483648 to 2147483647",
            v, err);
    if (wide)
        *(int64_t *) slot = x;
    else
        *(int32_t *) slot = (int32_t) x;
    return ANVIL_OK;
}

static int
set_unsigned(const ProtobufCFieldDescriptor *f, void *slot, const json_t *v,
    const struct path *p, struct anvil_error *err)
{
    bool wide = f->type == PROTOBUF_C_TYPE_UINT64
        || f->type == PROTOBUF_C_TYPE_FIXED64;
    uint64_t x = 0;
    enum num r = json_u64(v, &x);
    if (r == NUM_OK && !wide && x > UINT32_MAX)
        r = NUM_RANGE;
    if (r != NUM_OK)
        return num_error(r, p, wide ? "uint64" : "uint32",
            wide ? "0 to 18446744073709551615" : "0 to 4294967295", v, err);
    if (wide)
        *(uint64_t *) slot = x;
    else
        *(uint32_t *) slot = (uint32_t) x;
    return ANVIL_OK;
}

static int
set_real(const ProtobufCFieldDescriptor *f, void *slot, const json_t *v,
    const struct path *p, struct anvil_error *err)
{
    double      x = 0;
    enum num    r = NUM_TYPE;
    const char *s = json_text(v);
    if (json_is_number(v)) {
        x = json_number_value(v);
        r = NUM_OK;
    } else if (s != NULL) {
        r = text_double(s, &x);
    }
    if (r == NUM_OK && f->type == PROTOBUF_C_TYPE_FLOAT && isfinite(x)
        && fabs(x) > FLT_MAX)
        r = NUM_RANGE;
    if (r == NUM_RANGE)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "'%s' is out of range for a %s", p->s,
            f->type == PROTOBUF_C_TYPE_FLOAT ? "float" : "double");
    if (r != NUM_OK)
        return type_error(err, p, "a number", v);
    if (f->type == PROTOBUF_C_TYPE_FLOAT)
        *(float *) slot = (float) x;
    else
        *(double *) slot = x;
    return ANVIL_OK;
}

static int
set_enum(const ProtobufCFieldDescriptor *f, void *slot, const json_t *v,
    const struct path *p, struct anvil_error *err)
{
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    const ProtobufCEnumValue      *ev = NULL;
    const char                    *s  = json_text(v);
    if (json_is_integer(v))
        ev = pbjson_enum_by_number(ed, json_integer_value(v));
    else if (s != NULL)
        ev = enum_by_text(ed, s);
    else
        return type_error(err, p, "an enum name or number", v);
    if (ev == NULL) {
        char want[192];
        snprintf(want, sizeof(want), "a value of %s, such as %s", ed->name,
            ed->values[ed->n_values > 1 ? 1 : 0].name);
        return type_error(err, p, want, v);
    }
    *(int32_t *) slot = ev->value;
    return ANVIL_OK;
}

// ---- strings, bytes and messages from JSON ----

static int
set_string(
    void *slot, const json_t *v, const struct path *p, struct anvil_error *err)
{
    if (!json_is_string(v))
        return type_error(err, p, "a string", v);
    if (json_text(v) == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "'%s' must not contain NUL characters (\\u0000)", p->s);
    size_t n = json_string_length(v);
    char  *s = malloc(n + 1);
    if (s == NULL)
        return oom(err);
    memcpy(s, json_string_value(v), n + 1);
    *(char **) slot = s;
    return ANVIL_OK;
}

// Standard base64, padded, on one line: mbedTLS alone also takes line
// breaks, and reads a cut-off last group as nothing.
static bool
base64_valid(const char *s, size_t n)
{
    size_t pad = 0;
    while (pad < n && s[n - 1 - pad] == '=')
        pad++;
    if (n % 4 != 0 || pad > 2)
        return false;
    for (size_t i = 0; i < n - pad; i++)
        if (!isalnum((unsigned char) s[i]) && s[i] != '+' && s[i] != '/')
            return false;
    return true;
}

static int
set_base64(ProtobufCBinaryData *bd, const json_t *v, const struct path *p,
    struct anvil_error *err)
{
    const char *s = json_text(v);
    if (s == NULL || !base64_valid(s, strlen(s)))
        return type_error(err, p, "a base64 string", v);
    size_t n = strlen(s);
    if (n == 0)
        return ANVIL_OK;
    size_t   olen = 0;
    uint8_t *buf  = malloc(n / 4 * 3 + 3);
    if (buf == NULL)
        return oom(err);
    if (mbedtls_base64_decode(
            buf, n / 4 * 3 + 3, &olen, (const unsigned char *) s, n)
        != 0) {
        free(buf);
        return type_error(err, p, "a base64 string", v);
    }
    if (olen == 0) {
        free(buf);
        buf = NULL;
    }
    bd->data = buf;
    bd->len  = olen;
    return ANVIL_OK;
}

// Any JSON value: its compact text becomes the bytes.
static int
set_json_bytes(
    ProtobufCBinaryData *bd, const json_t *v, struct anvil_error *err)
{
    // json_dumps returns a malloc'd string (anvil sets no jansson
    // allocator), which free_unpacked may free.
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL)
        return oom(err);
    bd->data = (uint8_t *) s;
    bd->len  = strlen(s);
    return ANVIL_OK;
}

static ProtobufCMessage *
msg_new(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = malloc(d->sizeof_message);
    if (m != NULL)
        protobuf_c_message_init(d, m);
    return m;
}

static int fill_msg(ProtobufCMessage *m, const json_t *obj, struct path *p,
    struct anvil_error *err);

static int
set_msg(const ProtobufCFieldDescriptor *f, void *slot, const json_t *v,
    struct path *p, struct anvil_error *err)
{
    const ProtobufCMessageDescriptor *d = f->descriptor;
    if (!json_is_object(v)) {
        char want[160];
        snprintf(want, sizeof(want), "an object (%s)", d->name);
        return type_error(err, p, want, v);
    }
    ProtobufCMessage *m = msg_new(d);
    if (m == NULL)
        return oom(err);
    *(ProtobufCMessage **) slot = m; // owned by the parent from here on
    return fill_msg(m, v, p, err);
}

// Sets one value of field f at slot (an element, for a repeated field).
int
pbjson_set_value(const ProtobufCFieldDescriptor *f, void *slot, const json_t *v,
    bool base64, struct path *p, struct anvil_error *err)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return set_signed(f, slot, v, p, err);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return set_unsigned(f, slot, v, p, err);
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        return set_real(f, slot, v, p, err);
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return type_error(err, p, "true or false", v);
        *(protobuf_c_boolean *) slot = json_is_true(v);
        return ANVIL_OK;
    case PROTOBUF_C_TYPE_ENUM:
        return set_enum(f, slot, v, p, err);
    case PROTOBUF_C_TYPE_STRING:
        return set_string(slot, v, p, err);
    case PROTOBUF_C_TYPE_BYTES:
        return base64 ? set_base64(slot, v, p, err)
                      : set_json_bytes(slot, v, err);
    case PROTOBUF_C_TYPE_MESSAGE:
        return set_msg(f, slot, v, p, err);
    }
    return av_error_set(err, ANVIL_INTERNAL, "'%s' has an unknown type", p->s);
}

size_t
pbjson_elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 4; // 32-bit numbers, float and enums
    }
}

// Records that a singular field is set: its oneof case or has_ flag.
int
pbjson_mark_present(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
    const struct path *p, struct anvil_error *err)
{
    char *q = (char *) m + f->quantifier_offset;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (*(uint32_t *) q != 0 && *(uint32_t *) q != f->id)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "'%s' cannot be set with another field of its oneof", p->s);
        *(uint32_t *) q = f->id;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL
        && f->type != PROTOBUF_C_TYPE_STRING
        && f->type != PROTOBUF_C_TYPE_MESSAGE) {
        *(protobuf_c_boolean *) q = 1;
    }
    return ANVIL_OK;
}

// A repeated field from a JSON array. The array and its count are stored
// first (zeroed elements are safe to free), so an error halfway leaves
// nothing unowned.
static int
set_repeated(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
    const json_t *v, bool base64, struct path *p, struct anvil_error *err)
{
    if (!json_is_array(v))
        return type_error(err, p, "an array", v);
    size_t n = json_array_size(v);
    if (n == 0)
        return ANVIL_OK;
    size_t sz  = pbjson_elem_size(f->type);
    char  *arr = calloc(n, sz);
    if (arr == NULL)
        return oom(err);
    *(void **) ((char *) m + f->offset)             = arr;
    *(size_t *) ((char *) m + f->quantifier_offset) = n;
    for (size_t i = 0; i < n; i++) {
        const json_t *e     = json_array_get(v, i);
        size_t        saved = path_index(p, i);
        int           rc    = json_is_null(e)
                         ? av_error_set(
                             err, ANVIL_INVALID_ARGUMENT, "'%s' must not be null", p->s)
                         : pbjson_set_value(f, arr + i * sz, e, base64, p, err);
        path_pop(p, saved);
        if (rc != ANVIL_OK)
            return rc;
    }
    return ANVIL_OK;
}

// One key of a JSON object. seen[i] is 1 once field i was given, 2 once
// given as <name>_base64: a field given twice (proto name and json_name,
// or a bytes field both ways) is an error rather than a silent choice.
static int
fill_key(ProtobufCMessage *m, const char *key, size_t n, const json_t *v,
    uint8_t *seen, struct path *p, struct anvil_error *err)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    bool                              base64;
    const ProtobufCFieldDescriptor   *f     = field_by_key(d, key, n, &base64);
    size_t                            saved = pbjson_path_key(p, key);
    int                               rc    = ANVIL_OK;
    if (f == NULL) {
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "unknown field '%s' in %s", p->s, d->name);
    } else if (json_is_null(v)) {
        rc = ANVIL_OK; // null: the default
    } else if (seen[f - d->fields] != 0) {
        rc = seen[f - d->fields] != (base64 ? 2 : 1)
            ? av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "'%s': give %s or %s" PBJSON_BASE64_SUFFIX ", not both", p->s,
                f->name, f->name)
            : av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "'%s': field %s is given twice", p->s, f->name);
    } else {
        seen[f - d->fields] = base64 ? 2 : 1;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            rc = set_repeated(m, f, v, base64, p, err);
        } else {
            rc = pbjson_mark_present(m, f, p, err);
            if (rc == ANVIL_OK)
                rc = pbjson_set_value(
                    f, (char *) m + f->offset, v, base64, p, err);
        }
    }
    path_pop(p, saved);
    return rc;
}

static int
fill_msg(ProtobufCMessage *m, const json_t *obj, struct path *p,
    struct anvil_error *err)
{
    size_t   nf   = m->descriptor->n_fields;
    uint8_t *seen = calloc(nf > 0 ? nf : 1, 1);
    if (seen == NULL)
        return oom(err);
    int   rc = ANVIL_OK;
    void *it = json_object_iter((json_t *) obj);
    for (; it != NULL && rc == ANVIL_OK;
         it = json_object_iter_next((json_t *) obj, it))
        rc = fill_key(m, json_object_iter_key(it), json_object_iter_key_len(it),
            json_object_iter_value(it), seen, p, err);
    free(seen);
    return rc;
}

int
pbjson_to_msg(const ProtobufCMessageDescriptor *d, const json_t *obj,
    ProtobufCMessage **out, struct anvil_error *err)
{
    *out = NULL;
    if (obj != NULL && !json_is_object(obj))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "the JSON must be an object (%s), got %s", d->name,
            av_json_kind(obj));
    ProtobufCMessage *m = msg_new(d);
    if (m == NULL)
        return oom(err);
    struct path p  = { .len = 0 };
    int         rc = obj != NULL ? fill_msg(m, obj, &p, err) : ANVIL_OK;
    if (rc != ANVIL_OK) {
        protobuf_c_message_free_unpacked(m, NULL);
        return rc;
    }
    *out = m;
    return ANVIL_OK;
}
