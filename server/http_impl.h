// http_impl.h - what the files of the HTTP endpoint share: the endpoint
// (struct http), its connections (http_conn.c: the read deadline and the
// sweeper), one request in flight (http.c, http_request.c,
// http_answer.c) and the event stream (http_events.c).
#ifndef SERVER_HTTP_IMPL_H
#define SERVER_HTTP_IMPL_H

#include "gate.h"
#include "handlers.h"
#include "http.h"
#include "http_routes.h"
#include "waits.h"

#include <anvil/anvil.h>
#include <jansson.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define HTTP_MAX_PATH 512
#define HTTP_JSON_TYPE "application/json"
#define HTTP_SWEEP_MS 100
// Connection ids have the top bit set: never an nng pipe id.
#define CONN_ID_BIT 0x80000000u

struct metrics;

// One TCP connection: its read deadline, for the sweeper. Guarded by
// http.lock.
struct hconn {
    uint32_t      id;
    int           fd;
    int64_t       deadline; // monotonic ms; 0 = none
    int64_t       armed_at; // when the deadline was set
    bool          stream;   // an event stream is being written on it
    bool          gone;     // a stream's client hung up (engine told)
    struct hconn *prev, *next;
};

struct http {
    struct http_config cfg;
    struct MHD_Daemon *d;
    int                port;
    char              *cert, *key, *ca; // PEM text for libmicrohttpd
    pthread_t          sweeper;
    bool               sweeper_on;

    pthread_mutex_t lock; // guards all below
    pthread_cond_t  cv;   // the sweeper's tick
    bool            stopping;
    struct gate     gate; // callbacks inside engine_submit()
    uint32_t        next_conn;
    struct hconn   *conns;
    struct pollfd  *pfd; // the sweeper's, for the armed connections
    size_t          pfd_cap;
    uint32_t       *gone; // the sweeper's: streams whose client hung up
    struct waits    waits;
    char            last_error[160]; // libmicrohttpd's last complaint
};

// ---- connections (http_conn.c) ----

// Sets c's deadline ms from now (0 = none).
void http_arm(struct http *h, struct hconn *c, int64_t ms);

// c no longer carries an event stream (its request is over).
void http_conn_stream_end(struct http *h, struct hconn *c);

// libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION: keeps h's list of
// connections (cls is h).
void http_on_connection(void *cls, struct MHD_Connection *mc,
    void **socket_context, enum MHD_ConnectionNotificationCode toe);

// The sweeper thread (arg is h): cuts connections whose request did not
// arrive in time or whose client has gone, and tells the engine when the
// client of an event stream has gone. Runs until h->stopping.
void *http_sweep(void *arg);

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
    bool                   events_after; // the event query gave after_seq
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

// ---- the event routes (http_events.c) ----

// An event route's query as it is read, one parameter at a time.
struct events_query {
    ProtobufCMessage *m;         // an anvil.v1.WatchEventsRequest
    bool              stream;    // GET /v1/events (limit at most 100)
    bool              has_after; // after_seq (or after) was given
};

// Sets what query parameter key=value says in x->m: after_seq (or
// after), job_id, workflow_id, type, queue, kind (repeatable: job.succeeded,
// JOB_SUCCEEDED, EVENT_KIND_JOB_SUCCEEDED in any case, or the number;
// also as kinds), limit, tail, and timeout_ms (:watch) or access_token
// (the stream; skipped here). INVALID_ARGUMENT naming the parameter for
// anything else or a value out of range.
int http_events_param(struct events_query *x, const char *key,
    const char *value, struct anvil_error *err);

// A Last-Event-ID header (the decimal seq of the last event received)
// into *seq. INVALID_ARGUMENT naming the header.
int http_events_last_id(
    const char *text, uint64_t *seq, struct anvil_error *err);

// The short name of event kind `kind` ("job.succeeded"), in buf; "unknown"
// for a value the .proto does not name. Returns buf.
const char *http_events_kind_name(int kind, char *buf, size_t len);

// GET /v1/events, once the request m (a WatchEventsRequest; consumed) is
// built and the token checked: queues the stream of server-sent events,
// or q's error answer (400, 429, ...). Returns what queuing did.
enum MHD_Result http_events_open(
    struct hreq *q, ProtobufCMessage *m, int64_t token_id, int role);

// "http://host:port" or "https://host:port" into an address (http.c;
// the standby's listener uses it too).
int http_parse_url(const char *url, bool *tls, struct sockaddr_storage *sa,
    socklen_t *salen, struct anvil_error *err);

#endif
