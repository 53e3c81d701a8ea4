// http_request.c - an HTTP request into its rpc's request message: the
// JSON body (pbjson), the path's fields, the query, the seed's POST /job
// and a workflow definition; the token and the request id.
#include "http_impl.h"

#include "anvil/v1/anvil.pb-c.h"
#include "handlers.h"
#include "pbjson.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/sha256.h"
#include "workflow_impl.h"

#include <anvil/workflow.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *
http_header(struct hreq *q, const char *name)
{
    return MHD_lookup_connection_value(q->mc, MHD_HEADER_KIND, name);
}

// The bearer token of the Authorization header, or "".
const char *
http_bearer(struct hreq *q)
{
    const char *a = http_header(q, MHD_HTTP_HEADER_AUTHORIZATION);
    if (a == NULL || strncasecmp(a, "Bearer ", 7) != 0)
        return "";
    a += 7;
    while (*a == ' ')
        a++;
    return a;
}

// The Idempotency-Key header as a request id: the first 8 bytes of its
// SHA-256, never 0.
uint64_t
http_request_id_of_key(const char *key)
{
    uint8_t d[AV_SHA256_LEN];
    av_sha256(key, strlen(key), d);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | d[i];
    return v != 0 ? v : 1;
}

// Takes "request_id" (a number or a decimal string) out of the body.
static int
take_request_id(struct hreq *q, json_t *obj, struct anvil_error *err)
{
    json_t *v = json_object_get(obj, "request_id");
    if (v == NULL)
        return ANVIL_OK;
    unsigned long long id = 0;
    const char        *s  = json_string_value(v); // NULL unless a string
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        id = (unsigned long long) json_integer_value(v);
    } else if (s != NULL && s[0] >= '1' && s[0] <= '9') {
        char *end;
        errno = 0;
        id    = strtoull(s, &end, 10);
        if (*end != '\0' || errno != 0)
            id = 0;
    }
    if (id == 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "request_id must be a positive integer (a number or a decimal "
            "string)");
    q->request_id = id;
    json_object_del(obj, "request_id");
    return ANVIL_OK;
}

// The body as a JSON object (an empty body is {}).
static int
body_object(struct hreq *q, json_t **out, struct anvil_error *err)
{
    *out = NULL;
    if (q->len == 0) {
        *out = json_object();
        return *out != NULL
            ? ANVIL_OK
            : av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    json_error_t je;
    json_t      *j = json_loadb(q->body, q->len, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "body is not valid JSON: %s (line %d, column %d)", je.text, je.line,
            je.column);
    if (!json_is_object(j)) {
        json_decref(j);
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "body must be a JSON object");
    }
    *out = j;
    return ANVIL_OK;
}

// The seed's {"Type": T, "Data": D}, keys in any case; D a string (the
// payload as is) or any JSON value (its text).
static int
seed_request(struct hreq *q, ProtobufCMessage **out, struct anvil_error *err)
{
    json_t *obj;
    if (body_object(q, &obj, err) != ANVIL_OK)
        return err->code;
    const char *type = NULL;
    json_t     *data = NULL;
    const char *k;
    json_t     *v;
    int         rc = ANVIL_OK;
    json_object_foreach(obj, k, v)
    {
        if (strcasecmp(k, "type") == 0 && json_is_string(v))
            type = json_string_value(v);
        else if (strcasecmp(k, "type") == 0)
            rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "field '%.64s' must be a string (the job type)", k);
        else if (strcasecmp(k, "data") == 0)
            data = v;
        else
            rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "unknown field '%.64s': POST /job takes \"Type\" and "
                "\"Data\"",
                k);
        if (rc != ANVIL_OK)
            break;
    }
    if (rc == ANVIL_OK && type == NULL)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "field \"Type\" is required: the job type, e.g. \"Sleep\"");
    json_t *req = NULL;
    if (rc == ANVIL_OK) {
        req = json_pack("{s:s}", "type", type);
    }
    ProtobufCMessage *m = NULL;
    if (rc == ANVIL_OK)
        rc = pbjson_to_msg(
            &anvil__v1__submit_job_request__descriptor, req, &m, err);
    if (rc == ANVIL_OK && data != NULL && !json_is_null(data)) {
        Anvil__V1__SubmitJobRequest *r = (Anvil__V1__SubmitJobRequest *) m;
        char                        *bytes;
        size_t                       n;
        if (json_is_string(data)) {
            n     = json_string_length(data);
            bytes = malloc(n + 1);
            if (bytes != NULL)
                memcpy(bytes, json_string_value(data), n);
        } else {
            bytes = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
            n     = bytes != NULL ? strlen(bytes) : 0;
        }
        if (bytes == NULL) {
            rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
        } else if (n > 0) {
            r->payload.data = (uint8_t *) bytes;
            r->payload.len  = n;
        } else {
            free(bytes);
        }
    }
    json_decref(req);
    json_decref(obj);
    if (rc != ANVIL_OK && m != NULL) {
        protobuf_c_message_free_unpacked(m, NULL);
        m = NULL;
    }
    *out = m;
    return rc;
}

// A workflow definition (docs/workflows.md) as a SubmitWorkflowRequest.
static int
workflow_request(
    struct hreq *q, ProtobufCMessage **out, struct anvil_error *err)
{
    *out                     = NULL;
    anvil_workflow_spec *wf  = NULL;
    json_t              *obj = NULL;
    // A request_id, if any, is taken out first.
    int rc = body_object(q, &obj, err);
    if (rc == ANVIL_OK)
        rc = take_request_id(q, obj, err);
    char *text = NULL;
    if (rc == ANVIL_OK && (text = json_dumps(obj, JSON_COMPACT)) == NULL)
        rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    json_decref(obj);
    if (rc == ANVIL_OK)
        rc = anvil_workflow_spec_parse_json(text, strlen(text), &wf, err);
    free(text);
    struct workflow_pb pb;
    if (rc == ANVIL_OK && workflow_pb_init(&pb, wf) != 0)
        rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    if (rc == ANVIL_OK) {
        Anvil__V1__SubmitWorkflowRequest r
            = ANVIL__V1__SUBMIT_WORKFLOW_REQUEST__INIT;
        r.spec       = &pb.spec;
        size_t   n   = anvil__v1__submit_workflow_request__get_packed_size(&r);
        uint8_t *buf = malloc(n + 1);
        if (buf != NULL) {
            anvil__v1__submit_workflow_request__pack(&r, buf);
            *out = (ProtobufCMessage *)
                anvil__v1__submit_workflow_request__unpack(NULL, n, buf);
        }
        free(buf);
        workflow_pb_fini(&pb);
        if (*out == NULL)
            rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    anvil_workflow_spec_free(wf);
    return rc;
}

struct query_ctx {
    struct hreq        *q;
    ProtobufCMessage   *m;
    struct anvil_error *err;
    int                 rc;
    int64_t             wait_ms; // -1 = no ?wait
};

static enum MHD_Result
query_param(
    void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct query_ctx *x = cls;
    (void) kind;
    if (x->rc != ANVIL_OK)
        return MHD_NO;
    if (value == NULL)
        value = "";
    if (strcmp(key, "wait") == 0 && x->q->m.route->wait_rpc != NULL) {
        if (av_parse_duration(value, &x->wait_ms) != 0 || x->wait_ms < 0)
            x->rc = av_error_set(x->err, ANVIL_INVALID_ARGUMENT,
                "wait '%.32s' is not a duration: 30s, 500ms, 2m", value);
        return x->rc == ANVIL_OK ? MHD_YES : MHD_NO;
    }
    if (x->m == NULL)
        return MHD_YES; // the route takes a body: checked against it
    x->rc = pbjson_set_text(x->m, key, value, x->err);
    return x->rc == ANVIL_OK ? MHD_YES : MHD_NO;
}

static enum MHD_Result
events_param(
    void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct query_ctx   *x = cls;
    struct events_query eq
        = { x->m, x->q->m.route->kind == ROUTE_EVENTS, false };
    (void) kind;
    x->rc = http_events_param(&eq, key, value, x->err);
    if (eq.has_after)
        x->q->events_after = true;
    return x->rc == ANVIL_OK ? MHD_YES : MHD_NO;
}

// An event route's WatchEventsRequest, from the query alone.
static int
events_request(struct hreq *q, ProtobufCMessage **out, struct anvil_error *err)
{
    ProtobufCMessage *m  = NULL;
    int               rc = pbjson_to_msg(
                      &anvil__v1__watch_events_request__descriptor, NULL, &m, err);
    if (rc == ANVIL_OK && q->len > 0)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "GET %s takes no body: pass the filter as query parameters",
            q->m.route->pattern);
    struct query_ctx x = { q, m, err, rc, -1 };
    if (rc == ANVIL_OK) {
        MHD_get_connection_values(
            q->mc, MHD_GET_ARGUMENT_KIND, events_param, &x);
        rc = x.rc;
    }
    if (rc != ANVIL_OK && m != NULL) {
        protobuf_c_message_free_unpacked(m, NULL);
        m = NULL;
    }
    *out = m;
    return rc;
}

// Sets path field i of m; a body that names the field too must agree.
static int
path_field(
    struct hreq *q, ProtobufCMessage *m, size_t i, struct anvil_error *err)
{
    const char                     *name = q->m.field[i];
    const ProtobufCFieldDescriptor *f
        = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING
        && f->label != PROTOBUF_C_LABEL_REPEATED) {
        const char *have = *(char *const *) ((const char *) m + f->offset);
        if (have != NULL && have[0] != '\0' && strcmp(have, q->m.value[i]) != 0)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s '%.64s' in the body differs from '%.64s' in the path: "
                "leave it out of the body",
                name, have, q->m.value[i]);
    }
    return pbjson_set_text(m, name, q->m.value[i], err);
}

// The rpc's request message from the body, path and query.
int
http_build_request(
    struct hreq *q, ProtobufCMessage **out, struct anvil_error *err)
{
    const struct route *r = q->m.route;
    ProtobufCMessage   *m = NULL;
    int                 rc;
    if (r->body == ROUTE_BODY_SEED) {
        rc = seed_request(q, &m, err);
    } else if (r->body == ROUTE_BODY_WORKFLOW) {
        rc = workflow_request(q, &m, err);
    } else if (r->body == ROUTE_BODY_MESSAGE) {
        json_t *obj;
        rc = body_object(q, &obj, err);
        if (rc == ANVIL_OK)
            rc = take_request_id(q, obj, err);
        if (rc == ANVIL_OK)
            rc = pbjson_to_msg(handlers_input(r->rpc), obj, &m, err);
        json_decref(obj);
    } else if (r->body == ROUTE_BODY_EVENTS) {
        rc = events_request(q, &m, err);
    } else {
        json_t *obj;
        rc = body_object(q, &obj, err);
        if (rc == ANVIL_OK && json_object_size(obj) > 0)
            rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s %s takes no fields in its body: pass them as query "
                "parameters",
                r->verb, r->pattern);
        json_decref(obj);
        if (rc == ANVIL_OK)
            rc = pbjson_to_msg(handlers_input(r->rpc), NULL, &m, err);
    }
    struct query_ctx x
        = { q, r->body == ROUTE_BODY_NONE ? m : NULL, err, rc, -1 };
    if (rc == ANVIL_OK && r->body != ROUTE_BODY_EVENTS) {
        MHD_get_connection_values(
            q->mc, MHD_GET_ARGUMENT_KIND, query_param, &x);
        rc = x.rc;
        if (rc == ANVIL_OK && x.m == NULL && r->body != ROUTE_BODY_NONE
            && MHD_get_connection_values(
                   q->mc, MHD_GET_ARGUMENT_KIND, NULL, NULL)
                > 0)
            rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s %s takes its fields in the JSON body, not the query",
                r->verb, r->pattern);
    }
    for (size_t i = 0; rc == ANVIL_OK && i < q->m.n; i++)
        rc = path_field(q, m, i, err);
    q->rpc = r->rpc;
    if (rc == ANVIL_OK && x.wait_ms >= 0) {
        // GetJob -> WaitJob: the same id, and the wait as timeout_ms.
        ProtobufCMessage *w = NULL;
        rc = pbjson_to_msg(handlers_input(r->wait_rpc), NULL, &w, err);
        char ms[24];
        snprintf(ms, sizeof(ms), "%lld", (long long) x.wait_ms);
        if (rc == ANVIL_OK)
            rc = pbjson_set_text(w, "id", q->m.value[0], err);
        if (rc == ANVIL_OK)
            rc = pbjson_set_text(w, "timeout_ms", ms, err);
        protobuf_c_message_free_unpacked(m, NULL);
        m      = w;
        q->rpc = r->wait_rpc;
    }
    if (rc != ANVIL_OK && m != NULL) {
        protobuf_c_message_free_unpacked(m, NULL);
        m = NULL;
    }
    *out = m;
    return rc;
}
