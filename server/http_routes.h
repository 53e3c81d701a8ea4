// http_routes.h - the HTTP endpoint's routes: one row per route, mapping a
// method and a path pattern to an rpc the way grpc-gateway maps gRPC to
// HTTP (docs/http.md). The same table serves requests and generates the
// OpenAPI document (GET /v1/openapi.json), so the two cannot drift.
//
// A pattern is a path of literal segments and `{field}` segments, which
// bind a field of the request message; the last segment may end in a
// custom verb (`/v1/jobs/{id}:cancel`). No shared state; any thread.
#ifndef SERVER_HTTP_ROUTES_H
#define SERVER_HTTP_ROUTES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum route_body {
    ROUTE_BODY_NONE,     // no body; query parameters set fields
    ROUTE_BODY_MESSAGE,  // the body is the request message as JSON
    ROUTE_BODY_WORKFLOW, // the body is a workflow definition (workflows.md)
    ROUTE_BODY_SEED,     // {"Type": T, "Data": D}: the seed's POST /job
    ROUTE_BODY_EVENTS,   // no body; the query is an event filter
                         // (WatchEventsRequest, http_events_param)
};

enum route_kind {
    ROUTE_RPC,     // an rpc of anvil.v1.Anvil
    ROUTE_HEALTHZ, // the process is up
    ROUTE_READYZ,  // the server takes work
    ROUTE_METRICS, // Prometheus text
    ROUTE_OPENAPI, // this table as OpenAPI 3
    ROUTE_EVENTS,  // rpc WatchEvents as server-sent events (http_events.c)
};

struct route {
    const char     *verb;    // "GET" or "POST"
    const char     *pattern; // "/v1/jobs/{id}:cancel"
    enum route_kind kind;
    const char     *rpc;      // ROUTE_RPC: the rpc's name
    const char     *wait_rpc; // with ?wait=DUR: this rpc instead (WaitJob)
    enum route_body body;
    bool            created; // answers 201 and Location when it made one
    const char     *summary; // one line for the OpenAPI document
};

#define ROUTE_MAX_PARAMS 2

// What a path matched: its route and the `{field}` values, pointing into
// the caller's path buffer.
struct route_match {
    const struct route *route;
    size_t              n;
    char                field[ROUTE_MAX_PARAMS][32];
    const char         *value[ROUTE_MAX_PARAMS];
};

// Finds the route of verb and path. path is modified (split in place).
// Returns 0 when matched; 404 when no pattern matches the path; 405 when
// one does but not for this verb (*allow then names the verbs that do).
int routes_match(
    const char *verb, char *path, struct route_match *m, const char **allow);

// Every route, for tests: *n rows.
const struct route *routes_all(size_t *n);

// The OpenAPI 3.0 document of the routes (a new reference), or NULL when
// out of memory. version is the server's.
json_t *routes_openapi(const char *version);

#endif
