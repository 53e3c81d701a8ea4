// http_impl.h - what http.c (the endpoint) and http_request.c (building
// an rpc's request from an HTTP request) share: one request in flight.
#ifndef SERVER_HTTP_IMPL_H
#define SERVER_HTTP_IMPL_H

#include "handlers.h"
#include "http_routes.h"

#include <anvil/anvil.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#define HTTP_MAX_PATH 512
#define HTTP_JSON_TYPE "application/json"

struct http;
struct hconn;
struct metrics;

// One request, from its URI to its answer. Touched by libmicrohttpd's
// thread, and by the engine's done() between suspend and resume.
struct hreq {
    struct http           *h;
    struct MHD_Connection *mc;
    struct hconn          *conn;
    int64_t                t0_us;
    bool                   started;
    bool                   waiting; // counted as a long-poll
    bool                   replied; // status and text are the answer
    char                   path[HTTP_MAX_PATH];
    struct route_match     m;
    const char            *rpc;    // the rpc run
    const char            *allow;  // 405: the verb the route takes
    int                    method; // index in the service, or -1
    char                  *body;
    size_t                 len, cap;
    uint64_t               request_id;
    struct call            call;
    // The answer.
    int             status;
    const char     *ctype;
    char           *text;
    size_t          text_len;
    char            location[48];
    int             code;    // anvil code, for the metrics
    struct metrics *metrics; // where the rpc is counted (may be NULL)
};

// The answer: status, content type and text (the request's now).
void http_answer(
    struct hreq *q, int status, const char *ctype, char *text, size_t len);
// JSON value j (its reference taken) as the answer.
void http_answer_json(struct hreq *q, int status, json_t *j);
// {"code": NAME, "message": msg} with an HTTP status.
void http_answer_error(struct hreq *q, int status, int code, const char *msg);
// An anvil error with the status of its code.
void http_answer_err(struct hreq *q, const struct anvil_error *e);
// The engine's result of q's command: the reply's JSON (201 and Location
// when the route made something), the metrics text, or the error.
void http_answer_reply(struct hreq *q);
// Queues q's answer on its connection and counts the rpc.
enum MHD_Result http_send_answer(struct hreq *q);

// A request header, or NULL.
const char *http_header(struct hreq *q, const char *name);

// The bearer token of the Authorization header, or "".
const char *http_bearer(struct hreq *q);

// The Idempotency-Key header as a request id: the first 8 bytes of its
// SHA-256, never 0.
uint64_t http_request_id_of_key(const char *key);

// The request message of q's route (its rpc, or the wait rpc with
// ?wait=DUR; q->rpc says which) from the body, the path's fields and the
// query; q->request_id from the body's "request_id". INVALID_ARGUMENT
// naming what is wrong.
int http_build_request(
    struct hreq *q, ProtobufCMessage **out, struct anvil_error *err);

#endif
