// http_routes.c - the route table, its matcher and its OpenAPI document.
#include "http_routes.h"

#include "anvil/v1/anvil.pb-c.h"

#include <stdio.h>
#include <string.h>

#define MAX_SEGMENTS 8

// One row per route. Worker calls sit under /v1/jobs like the job they
// act on; Poll and Heartbeat name no job, so they are collection verbs.
static const struct route routes[] = {
    { "POST", "/job", ROUTE_RPC, "SubmitJob", NULL, ROUTE_BODY_SEED, true,
        "Submit a job the way the earlier service took it: "
        "{\"Type\": T, \"Data\": D}" },
    { "POST", "/v1/jobs", ROUTE_RPC, "SubmitJob", NULL, ROUTE_BODY_MESSAGE,
        true, "Submit a job" },
    { "POST", "/v1/jobs:batch", ROUTE_RPC, "SubmitJobs", NULL,
        ROUTE_BODY_MESSAGE, false, "Submit up to 1,000 jobs at once" },
    { "GET", "/v1/jobs", ROUTE_RPC, "ListJobs", NULL, ROUTE_BODY_NONE, false,
        "List jobs, newest first" },
    { "GET", "/v1/jobs/{id}", ROUTE_RPC, "GetJob", "WaitJob", ROUTE_BODY_NONE,
        false, "Get a job; with ?wait=30s, wait until it is final" },
    { "GET", "/v1/jobs:lookup", ROUTE_RPC, "GetJob", NULL, ROUTE_BODY_NONE,
        false, "Find a job by the idempotency key it was submitted with" },
    { "POST", "/v1/jobs:retry", ROUTE_RPC, "RetryJobs", NULL,
        ROUTE_BODY_MESSAGE, false,
        "Run again up to 1,000 FAILED or CANCELED jobs that match a filter "
        "(dead-letter replay)" },
    { "POST", "/v1/jobs:cancel", ROUTE_RPC, "CancelJobs", NULL,
        ROUTE_BODY_MESSAGE, false,
        "Cancel up to 1,000 unfinished jobs that match a filter" },
    { "POST", "/v1/jobs/{id}:cancel", ROUTE_RPC, "CancelJob", NULL,
        ROUTE_BODY_NONE, false, "Cancel a job" },
    { "POST", "/v1/jobs/{id}:retry", ROUTE_RPC, "RetryJob", NULL,
        ROUTE_BODY_MESSAGE, false,
        "Run a FAILED or CANCELED job again (body optional: "
        "{\"max_attempts\": N})" },
    { "POST", "/v1/jobs:poll", ROUTE_RPC, "Poll", NULL, ROUTE_BODY_MESSAGE,
        false, "Worker: lease jobs, waiting up to wait_ms for one" },
    { "POST", "/v1/jobs:heartbeat", ROUTE_RPC, "Heartbeat", NULL,
        ROUTE_BODY_MESSAGE, false, "Worker: extend leases" },
    { "POST", "/v1/jobs/{job_id}:complete", ROUTE_RPC, "Complete", NULL,
        ROUTE_BODY_MESSAGE, false, "Worker: an attempt succeeded" },
    { "POST", "/v1/jobs/{job_id}:fail", ROUTE_RPC, "Fail", NULL,
        ROUTE_BODY_MESSAGE, false, "Worker: an attempt failed" },
    { "POST", "/v1/report", ROUTE_RPC, "Report", NULL, ROUTE_BODY_MESSAGE,
        false, "Worker: several outcomes at once" },
    { "POST", "/v1/workflows", ROUTE_RPC, "SubmitWorkflow", NULL,
        ROUTE_BODY_WORKFLOW, true,
        "Submit a workflow definition (docs/workflows.md)" },
    { "GET", "/v1/workflows", ROUTE_RPC, "ListWorkflows", NULL, ROUTE_BODY_NONE,
        false, "List workflows, newest first" },
    { "GET", "/v1/workflows/{id}", ROUTE_RPC, "GetWorkflow", "WaitWorkflow",
        ROUTE_BODY_NONE, false,
        "Get a workflow and its steps; with ?wait=30s, wait until it is "
        "final" },
    { "POST", "/v1/workflows/{id}:cancel", ROUTE_RPC, "CancelWorkflow", NULL,
        ROUTE_BODY_NONE, false, "Cancel a workflow" },
    { "POST", "/v1/workflows/{id}:retry", ROUTE_RPC, "RetryWorkflow", NULL,
        ROUTE_BODY_NONE, false,
        "Run a FAILED or CANCELED workflow again from its unfinished steps" },
    { "GET", "/v1/events:watch", ROUTE_RPC, "WatchEvents", NULL,
        ROUTE_BODY_EVENTS, false,
        "Events after after_seq, waiting up to timeout_ms for one" },
    { "GET", "/v1/events", ROUTE_EVENTS, "WatchEvents", NULL, ROUTE_BODY_EVENTS,
        false,
        "The events as a stream of server-sent events (text/event-stream)" },
    { "POST", "/v1/queues/{queue}:pause", ROUTE_RPC, "PauseQueue", NULL,
        ROUTE_BODY_NONE, false,
        "Stop leasing a queue's jobs (submits are still taken)" },
    { "POST", "/v1/queues/{queue}:resume", ROUTE_RPC, "ResumeQueue", NULL,
        ROUTE_BODY_NONE, false, "Lease a paused queue's jobs again" },
    { "POST", "/v1/queues/{queue}:limit", ROUTE_RPC, "SetQueueLimit", NULL,
        ROUTE_BODY_MESSAGE, false,
        "Set a queue's rate limit: {\"rate_per_second\": R, \"burst\": B} "
        "(rate 0 removes it)" },
    { "POST", "/v1/schedules", ROUTE_RPC, "CreateSchedule", NULL,
        ROUTE_BODY_MESSAGE, false,
        "Create a cron schedule: {\"spec\": {\"name\", \"cron\", "
        "\"time_zone\", \"job\": {...}, \"overlap\", \"catch_up\"}}" },
    { "GET", "/v1/schedules", ROUTE_RPC, "ListSchedules", NULL, ROUTE_BODY_NONE,
        false, "List the schedules, by name" },
    { "GET", "/v1/schedules/{name}", ROUTE_RPC, "GetSchedule", NULL,
        ROUTE_BODY_NONE, false, "Get a schedule: next and last fire times" },
    { "POST", "/v1/schedules/{name}:pause", ROUTE_RPC, "PauseSchedule", NULL,
        ROUTE_BODY_NONE, false, "Stop a schedule's ticks" },
    { "POST", "/v1/schedules/{name}:resume", ROUTE_RPC, "ResumeSchedule", NULL,
        ROUTE_BODY_NONE, false,
        "Resume a schedule from its next tick after now" },
    { "DELETE", "/v1/schedules/{name}", ROUTE_RPC, "DeleteSchedule", NULL,
        ROUTE_BODY_NONE, false, "Delete a schedule (its jobs stay)" },
    { "GET", "/v1/workers", ROUTE_RPC, "ListWorkers", NULL, ROUTE_BODY_NONE,
        false, "List the workers seen lately" },
    { "GET", "/v1/health", ROUTE_RPC, "Health", NULL, ROUTE_BODY_NONE, false,
        "Version, uptime and queue depths" },
    { "POST", "/v1/tokens", ROUTE_RPC, "CreateToken", NULL, ROUTE_BODY_MESSAGE,
        false, "Admin: create an API token" },
    { "GET", "/v1/tokens", ROUTE_RPC, "ListTokens", NULL, ROUTE_BODY_NONE,
        false, "Admin: list API tokens" },
    { "POST", "/v1/tokens/{id}:revoke", ROUTE_RPC, "RevokeToken", NULL,
        ROUTE_BODY_NONE, false, "Admin: revoke an API token" },
    { "GET", "/v1/openapi.json", ROUTE_OPENAPI, NULL, NULL, ROUTE_BODY_NONE,
        false, "This document" },
    { "GET", "/metrics", ROUTE_METRICS, NULL, NULL, ROUTE_BODY_NONE, false,
        "Prometheus metrics (text format 0.0.4)" },
    { "GET", "/healthz", ROUTE_HEALTHZ, NULL, NULL, ROUTE_BODY_NONE, false,
        "200 while the process is up" },
    { "GET", "/readyz", ROUTE_READYZ, NULL, NULL, ROUTE_BODY_NONE, false,
        "200 while the server takes work; 503 when stopping or failed" },
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

const struct route *
routes_all(size_t *n)
{
    *n = NROUTES;
    return routes;
}

// Splits a path ("/a/b") into its segments in place: "/" becomes NUL.
// -1 when it does not start with "/" or has too many segments.
static int
split(char *path, char *seg[MAX_SEGMENTS], size_t *n)
{
    *n = 0;
    if (path[0] != '/')
        return -1;
    for (char *p = path; *p == '/';) {
        *p++ = '\0';
        if (*n == MAX_SEGMENTS)
            return -1;
        seg[(*n)++] = p;
        p += strcspn(p, "/");
    }
    return 0;
}

// Compares the segments of a pattern with those of a path; binds fields.
static bool
matches(const char *pattern, char *seg[], size_t n, const char *verb,
    struct route_match *m)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", pattern);
    char  *pseg[MAX_SEGMENTS];
    size_t pn;
    // Patterns are ours and well formed.
    if (split(buf, pseg, &pn) != 0 || pn != n)
        return false;
    char *colon = strrchr(pseg[pn - 1], ':');
    if (colon != NULL)
        *colon++ = '\0';
    if ((colon == NULL) != (verb == NULL)
        || (colon != NULL && strcmp(colon, verb) != 0))
        return false;
    m->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (pseg[i][0] == '{') {
            if (seg[i][0] == '\0' || m->n == ROUTE_MAX_PARAMS)
                return false;
            snprintf(m->field[m->n], sizeof(m->field[m->n]), "%.*s",
                (int) strcspn(pseg[i] + 1, "}"), pseg[i] + 1);
            m->value[m->n] = seg[i];
            m->n++;
        } else if (strcmp(pseg[i], seg[i]) != 0) {
            return false;
        }
    }
    return true;
}

int
routes_match(
    const char *verb, char *path, struct route_match *m, const char **allow)
{
    *allow = NULL;
    memset(m, 0, sizeof(*m));
    char  *seg[MAX_SEGMENTS];
    size_t n;
    char  *cverb = NULL;
    if (split(path, seg, &n) != 0 || n == 0)
        return 404;
    // The custom verb: after the last ':' of the last segment.
    char *colon = strrchr(seg[n - 1], ':');
    if (colon != NULL) {
        *colon = '\0';
        cverb  = colon + 1;
    }
    // Allow names every verb the path takes (the table has GET, POST and
    // DELETE): bit 0 GET, 1 POST, 2 DELETE.
    static const char *const allows[8] = { NULL, "GET", "POST", "GET, POST",
        "DELETE", "GET, DELETE", "POST, DELETE", "GET, POST, DELETE" };
    unsigned                 verbs     = 0;
    for (size_t i = 0; i < NROUTES; i++) {
        struct route_match t = { 0 };
        if (!matches(routes[i].pattern, seg, n, cverb, &t))
            continue;
        if (strcmp(routes[i].verb, verb) != 0) {
            verbs |= routes[i].verb[0] == 'G' ? 1u
                : routes[i].verb[0] == 'P'    ? 2u
                                              : 4u;
            continue;
        }
        *m       = t;
        m->route = &routes[i];
        return 0;
    }
    if (verbs == 0)
        return 404;
    *allow = allows[verbs];
    return 405;
}

// ---- OpenAPI ----

static const ProtobufCServiceDescriptor *const service
    = &anvil__v1__anvil__descriptor;

static const ProtobufCMethodDescriptor *
method_of(const char *rpc)
{
    return rpc == NULL
        ? NULL
        : protobuf_c_service_descriptor_get_method_by_name(service, rpc);
}

// The short name of a message or enum ("Job" of "anvil.v1.Job").
static const char *
short_name(const char *full)
{
    const char *dot = strrchr(full, '.');
    return dot != NULL ? dot + 1 : full;
}

static json_t *
ref(const char *full)
{
    char buf[160];
    snprintf(buf, sizeof(buf), "#/components/schemas/%s", short_name(full));
    return json_pack("{s:s}", "$ref", buf);
}

static void add_message(json_t *schemas, const ProtobufCMessageDescriptor *d);

static json_t *
enum_schema(const ProtobufCEnumDescriptor *e)
{
    json_t *names = json_array();
    for (unsigned i = 0; i < e->n_values; i++)
        json_array_append_new(names, json_string(e->values[i].name));
    return json_pack("{s:s,s:o}", "type", "string", "enum", names);
}

// The schema of one value of field f (its element, when repeated).
static json_t *
value_schema(json_t *schemas, const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        return json_pack("{s:s}", "type", "string");
    case PROTOBUF_C_TYPE_BOOL:
        return json_pack("{s:s}", "type", "boolean");
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_pack("{s:s,s:s}", "type", "integer", "format", "int32");
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_pack("{s:s,s:s,s:i}", "type", "integer", "format", "int64",
            "minimum", 0);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        // proto3 JSON: 64-bit integers are strings (numbers are taken).
        return json_pack("{s:s,s:s}", "type", "string", "format",
            f->type == PROTOBUF_C_TYPE_UINT64 ? "uint64" : "int64");
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_pack("{s:s}", "type", "number");
    case PROTOBUF_C_TYPE_ENUM:
        return enum_schema(f->descriptor);
    case PROTOBUF_C_TYPE_MESSAGE:
        add_message(schemas, f->descriptor);
        return ref(((const ProtobufCMessageDescriptor *) f->descriptor)->name);
    case PROTOBUF_C_TYPE_BYTES:
        break;
    }
    return json_pack(
        "{s:s}", "description", "any JSON value: these bytes are its text");
}

// Adds message d (and those it holds) to components.schemas, once.
static void
add_message(json_t *schemas, const ProtobufCMessageDescriptor *d)
{
    const char *name = short_name(d->name);
    if (json_object_get(schemas, name) != NULL)
        return;
    json_t *props = json_object();
    json_object_set_new(schemas, name,
        json_pack("{s:s,s:o,s:b}", "type", "object", "properties", props,
            "additionalProperties", 0));
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        json_t                         *v = value_schema(schemas, f);
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            v = json_pack("{s:s,s:o}", "type", "array", "items", v);
        json_object_set_new(props, f->name, v);
        if (f->type == PROTOBUF_C_TYPE_BYTES) {
            char b64[96];
            snprintf(b64, sizeof(b64), "%s_base64", f->name);
            json_object_set_new(props, b64,
                json_pack("{s:s,s:s,s:s}", "type", "string", "format", "byte",
                    "description",
                    "the bytes in base64, when they are not JSON text"));
        }
    }
}

static json_t *
param(const char *name, const char *in, bool required, json_t *schema)
{
    return json_pack("{s:s,s:s,s:b,s:o}", "name", name, "in", in, "required",
        required, "schema", schema);
}

static json_t *
described(const char *type, const char *what)
{
    return json_pack("{s:s,s:s}", "type", type, "description", what);
}

// The query of the event routes (http_events.c reads it, not pbjson).
static void
event_parameters(json_t *ps, const struct route *r)
{
    bool stream = r->kind == ROUTE_EVENTS;
    json_array_append_new(ps,
        param("after_seq", "query", false,
            described("string",
                stream ? "events after this sequence; default: the newest "
                         "(only new events); 0 = from the oldest kept"
                       : "events after this sequence (0 = from the oldest "
                         "kept, or tail)")));
    const char *filters[] = { "job_id", "workflow_id", "type", "queue" };
    for (size_t i = 0; i < 4; i++)
        json_array_append_new(ps,
            param(filters[i], "query", false,
                described("string", "only events with this value")));
    json_t *kinds = enum_schema(&anvil__v1__event_kind__descriptor);
    json_array_append_new(ps,
        json_pack("{s:s,s:s,s:b,s:b,s:{s:s,s:o},s:s}", "name", "kind", "in",
            "query", "required", 0, "explode", 1, "schema", "type", "array",
            "items", kinds, "description",
            "repeatable; also as job.succeeded or JOB_SUCCEEDED"));
    json_array_append_new(ps,
        param("limit", "query", false,
            described("integer",
                stream ? "events per batch, at most 100 (default 100)"
                       : "at most 1000 (default 100)")));
    json_array_append_new(ps,
        param("tail", "query", false,
            described("integer",
                "without after_seq: start this many events before the "
                "newest")));
    if (!stream) {
        json_array_append_new(ps,
            param("timeout_ms", "query", false,
                described("integer",
                    "wait this long for a first event (at most 300000)")));
        return;
    }
    json_array_append_new(ps,
        param("access_token", "query", false,
            described("string",
                "the bearer token, for EventSource (which sends no "
                "headers)")));
    json_array_append_new(ps,
        param("Last-Event-ID", "header", false,
            described("string",
                "the id of the last event received: resume after it")));
}

// Path parameters, then, for a route without a body, every scalar field
// of the request as a query parameter.
static json_t *
parameters(json_t *schemas, const struct route *r,
    const ProtobufCMessageDescriptor *in)
{
    json_t     *ps = json_array();
    const char *p  = r->pattern;
    while ((p = strchr(p, '{')) != NULL) {
        size_t len = strcspn(p + 1, "}");
        char   name[32];
        snprintf(name, sizeof(name), "%.*s", (int) len, p + 1);
        json_array_append_new(ps,
            param(name, "path", true, json_pack("{s:s}", "type", "string")));
        p += len + 1;
    }
    if (in != NULL && r->body == ROUTE_BODY_NONE) {
        for (unsigned i = 0; i < in->n_fields; i++) {
            const ProtobufCFieldDescriptor *f = &in->fields[i];
            if (strstr(r->pattern, "{id}") != NULL
                && strcmp(f->name, "id") == 0)
                continue;
            json_array_append_new(
                ps, param(f->name, "query", false, value_schema(schemas, f)));
        }
    }
    if (r->body == ROUTE_BODY_EVENTS)
        event_parameters(ps, r);
    if (r->wait_rpc != NULL)
        json_array_append_new(ps,
            param("wait", "query", false,
                json_pack("{s:s,s:s}", "type", "string", "description",
                    "wait until final, at most this long: 30s, 500ms, 2m")));
    if (r->kind == ROUTE_RPC)
        json_array_append_new(ps,
            param("Idempotency-Key", "header", false,
                json_pack("{s:s,s:s}", "type", "string", "description",
                    "a resend with the same key is applied once")));
    return ps;
}

static json_t *
request_body(const struct route *r, const ProtobufCMessageDescriptor *in)
{
    json_t *schema;
    switch (r->body) {
    case ROUTE_BODY_MESSAGE:
        schema = ref(in->name);
        break;
    case ROUTE_BODY_WORKFLOW:
        schema = json_pack("{s:s,s:s}", "type", "object", "description",
            "a workflow definition: docs/workflows.md");
        break;
    case ROUTE_BODY_SEED:
        schema = json_pack("{s:s,s:[s],s:{s:{s:s},s:{s:s}}}", "type", "object",
            "required", "Type", "properties", "Type", "type", "string", "Data",
            "type", "string");
        break;
    default:
        return NULL;
    }
    return json_pack("{s:b,s:{s:{s:o}}}", "required", 1, "content",
        "application/json", "schema", schema);
}

static json_t *
json_response(const char *what, json_t *schema)
{
    return json_pack("{s:s,s:{s:{s:o}}}", "description", what, "content",
        "application/json", "schema", schema);
}

// What tells apart the operationIds of two routes of one rpc: "Seed" for
// POST /job, "Stream" for the event stream, else the custom verb of a
// route after the first of its rpc ("GetJobLookup").
static const char *
op_suffix(const struct route *r)
{
    static char verb[32];
    if (r->body == ROUTE_BODY_SEED)
        return "Seed";
    if (r->kind == ROUTE_EVENTS)
        return "Stream";
    const char *colon = strrchr(r->pattern, ':');
    if (r->rpc == NULL || colon == NULL)
        return "";
    for (const struct route *p = routes; p < r; p++) {
        if (p->rpc != NULL && p->body != ROUTE_BODY_SEED
            && strcmp(p->rpc, r->rpc) == 0) {
            snprintf(verb, sizeof(verb), "%s", colon + 1);
            verb[0] = (char) (verb[0] - 'a' + 'A');
            return verb;
        }
    }
    return "";
}

static json_t *
operation(json_t *schemas, const struct route *r)
{
    const ProtobufCMethodDescriptor *md = method_of(r->rpc);
    json_t                          *op = json_object();
    char                             id[64];
    snprintf(
        id, sizeof(id), "%s%s", r->rpc ? r->rpc : r->pattern + 1, op_suffix(r));
    for (char *c = id; *c; c++) {
        if (*c == '.' || *c == '/')
            *c = '_';
    }
    json_object_set_new(op, "operationId", json_string(id));
    json_object_set_new(op, "summary", json_string(r->summary));
    json_object_set_new(op, "parameters",
        parameters(schemas, r, md != NULL ? md->input : NULL));
    json_t *body = request_body(r, md != NULL ? md->input : NULL);
    if (body != NULL)
        json_object_set_new(op, "requestBody", body);
    json_t *resp = json_object();
    if (r->kind == ROUTE_EVENTS) {
        add_message(schemas, &anvil__v1__event__descriptor);
        json_object_set_new(resp, "200",
            json_pack("{s:s,s:{s:{s:{s:s,s:s}}}}", "description",
                "server-sent events: id (the seq), event (job.succeeded, "
                "...), data (an Event as JSON); docs/http.md",
                "content", "text/event-stream", "schema", "type", "string",
                "format", "event-stream"));
        json_object_set_new(
            resp, "default", json_response("an error", ref("Error")));
    } else if (md != NULL) {
        add_message(schemas, md->input);
        add_message(schemas, md->output);
        json_object_set_new(resp, r->created ? "201" : "200",
            json_response("OK", ref(md->output->name)));
        json_object_set_new(
            resp, "default", json_response("an error", ref("Error")));
    } else if (r->kind == ROUTE_OPENAPI) {
        json_object_set_new(resp, "200",
            json_response("OK", json_pack("{s:s}", "type", "object")));
    } else {
        json_object_set_new(resp, "200",
            json_pack("{s:s,s:{s:{s:{s:s}}}}", "description", "OK", "content",
                "text/plain", "schema", "type", "string"));
        if (r->kind != ROUTE_HEALTHZ)
            json_object_set_new(
                resp, "default", json_response("an error", ref("Error")));
    }
    json_object_set_new(op, "responses", resp);
    if (r->kind == ROUTE_HEALTHZ || r->kind == ROUTE_OPENAPI
        || r->kind == ROUTE_READYZ)
        json_object_set_new(op, "security", json_array());
    return op;
}

json_t *
routes_openapi(const char *version)
{
    json_t *schemas = json_object();
    json_t *paths   = json_object();
    json_t *doc = json_pack("{s:s,s:{s:s,s:s,s:s},s:o,s:{s:o,s:{s:{s:s,s:s}}},"
                            "s:[{s:[]}]}",
        "openapi", "3.0.3", "info", "title", "anvil", "version", version,
        "description",
        "anvil's HTTP/JSON API: every rpc of anvil.v1.Anvil (docs/http.md)",
        "paths", paths, "components", "schemas", schemas, "securitySchemes",
        "bearer", "type", "http", "scheme", "bearer", "security", "bearer");
    if (doc == NULL)
        return NULL;
    json_object_set_new(schemas, "Error",
        json_pack("{s:s,s:[s,s],s:{s:{s:s},s:{s:s}}}", "type", "object",
            "required", "code", "message", "properties", "code", "type",
            "string", "message", "type", "string"));
    for (size_t i = 0; i < NROUTES; i++) {
        json_t *item = json_object_get(paths, routes[i].pattern);
        if (item == NULL) {
            item = json_object();
            json_object_set_new(paths, routes[i].pattern, item);
        }
        char verb[8];
        snprintf(verb, sizeof(verb), "%s", routes[i].verb);
        for (char *c = verb; *c; c++)
            *c = (char) (*c - 'A' + 'a');
        json_object_set_new(item, verb, operation(schemas, &routes[i]));
    }
    return doc;
}
