// pbjson_text.c - pbjson_set_text(): one field of a message from the text
// of a URL path segment or query parameter, with the JSON rules of
// pbjson.c (the mapping is in pbjson.h).
#include "pbjson.h"
#include "pbjson_impl.h"

#include "util/error.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

// Parses text as one value of f into *u (a string is malloc'd).
static int
text_value(const ProtobufCFieldDescriptor *f, const char *text, union slot *u,
    struct path *p, struct anvil_error *err)
{
    if (f->type == PROTOBUF_C_TYPE_BOOL) {
        bool t = strcmp(text, "true") == 0 || strcmp(text, "1") == 0;
        if (!t && strcmp(text, "false") != 0 && strcmp(text, "0") != 0)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "'%s' must be true, false, 1 or 0, got \"%.40s\"", p->s, text);
        u->b = t;
        return ANVIL_OK;
    }
    // Every other scalar takes a JSON string with the same rules.
    json_t *v = json_string(text);
    if (v == NULL)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "'%s' is not valid UTF-8", p->s);
    int rc = pbjson_set_value(f, u, v, false, p, err);
    json_decref(v);
    return rc;
}

static int
append_value(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
    const union slot *u, struct anvil_error *err)
{
    size_t *n     = (size_t *) ((char *) m + f->quantifier_offset);
    void  **arr   = (void **) ((char *) m + f->offset);
    size_t  sz    = pbjson_elem_size(f->type);
    char   *grown = realloc(*arr, (*n + 1) * sz);
    if (grown == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    memcpy(grown + *n * sz, u, sz);
    *arr = grown;
    (*n)++;
    return ANVIL_OK;
}

int
pbjson_set_text(ProtobufCMessage *m, const char *name, const char *text,
    struct anvil_error *err)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const ProtobufCFieldDescriptor   *f
        = pbjson_field_by_name(d, name, strlen(name));
    struct path p = { .len = 0 };
    union slot  u = { .u64 = 0 };
    pbjson_path_key(&p, name);
    if (f == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "unknown field '%s' in %s", p.s, d->name);
    if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_BYTES)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "'%s' cannot be given as text (it is a %s field)", p.s,
            f->type == PROTOBUF_C_TYPE_BYTES ? "bytes" : "message");
    int rc = text_value(f, text, &u, &p, err);
    if (rc != ANVIL_OK)
        return rc;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        rc = append_value(m, f, &u, err);
    } else {
        char *slot = (char *) m + f->offset;
        bool  mine = !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            || *(uint32_t *) ((char *) m + f->quantifier_offset) == f->id;
        rc = pbjson_mark_present(m, f, &p, err);
        if (rc == ANVIL_OK && f->type == PROTOBUF_C_TYPE_STRING && mine
            && *(char **) slot != f->default_value)
            free(*(char **) slot);
        if (rc == ANVIL_OK)
            memcpy(slot, &u, pbjson_elem_size(f->type));
    }
    if (rc != ANVIL_OK && f->type == PROTOBUF_C_TYPE_STRING)
        free(u.s);
    return rc;
}
