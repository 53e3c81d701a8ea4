// http_events.c - the event routes' query (GET /v1/events:watch and
// GET /v1/events) into a WatchEventsRequest, and GET /v1/events itself: a
// stream of server-sent events that loops WatchEvents long-polls through
// the same handler as every route (docs/http.md).
//
// One stream's life: http_events_open() checks the filter (one decode
// through the handler), counts the stream as one long-poll of
// --max-waits for its whole life and queues a response whose body comes
// from stream_read(). stream_read() hands libmicrohttpd what is buffered;
// once all of it is handed over (never before: a slow reader holds at
// most one batch here), it posts the next WatchEvents and suspends the
// connection; done() (engine thread) only resumes it, and stream_read()
// renders the reply. A poll waits at most until the next keep-alive is
// due, so an idle stream writes ": keep-alive" every keepalive_ms. The
// sweeper (http_conn.c) tells the engine when the client hangs up, which
// answers the parked poll at once; the stream then ends and
// libmicrohttpd frees it (stream_free).
#include "http_impl.h"

#include "anvil/v1/anvil.pb-c.h"
#include "metrics.h"
#include "pbjson.h"
#include "util/clock.h"
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_LIMIT 100     // events per batch on the stream
#define WATCH_LIMIT 1000     // events per answer of :watch (the rpc's limit)
#define WATCH_TIMEOUT 300000 // ms, as ?wait
#define MAX_KINDS 32
#define RETRY_MS 2000 // the client's reconnect delay
#define BLOCK 2048    // what libmicrohttpd asks for at most

// ---- the query ----

// A decimal number of at most max, all of text: 0, or -1.
static int
parse_u64(const char *text, uint64_t max, uint64_t *out)
{
    size_t n = strlen(text);
    if (n == 0 || n > 20 || strspn(text, "0123456789") != n)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t d = (uint64_t) (text[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

static const ProtobufCEnumDescriptor *const kinds_enum
    = &anvil__v1__event_kind__descriptor;

const char *
http_events_kind_name(int kind, char *buf, size_t len)
{
    snprintf(buf, len, "%s",
        kind > 0 && kind <= EV_KIND_MAX
            ? anvil_event_kind_label((enum anvil_event_kind) kind)
            : "unknown");
    return buf;
}

// "job.succeeded", "JOB_SUCCEEDED", "EVENT_KIND_JOB_SUCCEEDED" (any case)
// or the number: the kind, or 0.
static int
parse_kind(const char *text)
{
    uint64_t              n;
    enum anvil_event_kind k;
    if (parse_u64(text, 1000, &n) == 0)
        return n >= 1 && n <= EV_KIND_MAX ? (int) n : 0;
    return anvil_event_kind_parse(text, &k) == ANVIL_OK ? (int) k : 0;
}

static int
bad_kind(const char *text, struct anvil_error *err)
{
    char   list[400] = "";
    size_t n         = 0;
    for (unsigned i = 0; i < kinds_enum->n_values && n < sizeof(list); i++) {
        char name[40];
        if (kinds_enum->values[i].value == 0)
            continue;
        http_events_kind_name(kinds_enum->values[i].value, name, sizeof(name));
        n += (size_t) snprintf(
            list + n, sizeof(list) - n, "%s%s", n ? ", " : "", name);
    }
    return av_error_set(err, ANVIL_INVALID_ARGUMENT,
        "query parameter 'kind': \"%.40s\" is not an event kind (%s)", text,
        list);
}

static int
bad_number(
    const char *key, const char *text, uint64_t max, struct anvil_error *err)
{
    return av_error_set(err, ANVIL_INVALID_ARGUMENT,
        "query parameter '%s' must be a whole number from 0 to %llu, got "
        "\"%.32s\"",
        key, (unsigned long long) max, text);
}

int
http_events_param(struct events_query *x, const char *key, const char *value,
    struct anvil_error *err)
{
    Anvil__V1__WatchEventsRequest *r = (Anvil__V1__WatchEventsRequest *) x->m;
    uint64_t                       v;
    if (value == NULL)
        value = "";
    if (strcmp(key, "after_seq") == 0 || strcmp(key, "after") == 0) {
        if (parse_u64(value, UINT64_MAX, &v) != 0)
            return bad_number(key, value, UINT64_MAX, err);
        r->after_seq = v;
        x->has_after = true;
        return ANVIL_OK;
    }
    if (strcmp(key, "limit") == 0) {
        uint64_t max = x->stream ? STREAM_LIMIT : WATCH_LIMIT;
        if (parse_u64(value, max, &v) != 0)
            return bad_number(key, value, max, err);
        r->limit = (uint32_t) v;
        return ANVIL_OK;
    }
    if (strcmp(key, "tail") == 0) {
        if (parse_u64(value, UINT32_MAX, &v) != 0)
            return bad_number(key, value, UINT32_MAX, err);
        r->tail = (uint32_t) v;
        return ANVIL_OK;
    }
    if (strcmp(key, "timeout_ms") == 0 && !x->stream) {
        if (parse_u64(value, WATCH_TIMEOUT, &v) != 0)
            return bad_number(key, value, WATCH_TIMEOUT, err);
        r->timeout_ms = (uint32_t) v;
        return ANVIL_OK;
    }
    if (strcmp(key, "kind") == 0 || strcmp(key, "kinds") == 0) {
        int k = parse_kind(value);
        if (k <= 0)
            return bad_kind(value, err);
        if (r->n_kinds >= MAX_KINDS)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "query parameter 'kind' is given more than %d times",
                MAX_KINDS);
        Anvil__V1__EventKind *p
            = realloc(r->kinds, (r->n_kinds + 1) * sizeof(*p));
        if (p == NULL)
            return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
        p[r->n_kinds++] = (Anvil__V1__EventKind) k;
        r->kinds        = p;
        return ANVIL_OK;
    }
    if (strcmp(key, "access_token") == 0 && x->stream)
        return ANVIL_OK; // the token (http.c)
    if (strcmp(key, "job_id") == 0 || strcmp(key, "workflow_id") == 0
        || strcmp(key, "type") == 0 || strcmp(key, "queue") == 0)
        return pbjson_set_text(x->m, key, value, err);
    return av_error_set(err, ANVIL_INVALID_ARGUMENT,
        "unknown query parameter '%.32s': the event routes take after_seq, "
        "job_id, workflow_id, type, queue, kind, limit, tail%s",
        key, x->stream ? " and access_token" : " and timeout_ms");
}

int
http_events_last_id(const char *text, uint64_t *seq, struct anvil_error *err)
{
    // EventSource sends back the id it was given: our seq, in decimal.
    if (parse_u64(text, UINT64_MAX, seq) != 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "header Last-Event-ID must be the id of an event (a whole "
            "number), got \"%.32s\"",
            text);
    return ANVIL_OK;
}

// ---- the stream ----

struct stream {
    struct http           *h;
    struct MHD_Connection *mc;
    struct hconn          *conn; // valid while libmicrohttpd calls us
    uint32_t               conn_id;
    int64_t                token_id;
    int                    role;
    int64_t                keepalive_ms;
    uint8_t               *filter; // the WatchEventsRequest, packed
    size_t                 filter_len;
    uint64_t               after;   // the next poll's after_seq
    uint32_t               tail;    // the first poll's, when asked
    bool                   probe;   // the first poll only learns the newest seq
    bool                   posted;  // the call is in the engine (suspended)
    bool                   ending;  // end once the buffer is handed over
    bool                   waiting; // counted in h->waits
    int64_t                last_write; // monotonic ms
    struct call            call;
    char                  *out; // what libmicrohttpd has not taken yet
    size_t                 len, off;
};

static void appendf(struct stream *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

// Appends to s->out; out of memory ends the stream.
static void
appendf(struct stream *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = n >= 0 ? realloc(s->out, s->len + (size_t) n + 1) : NULL;
    if (p == NULL) {
        s->ending = true;
        return;
    }
    s->out = p;
    va_start(ap, fmt);
    vsnprintf(s->out + s->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    s->len += (size_t) n;
}

// The next poll as a request message: the filter, after_seq, and a wait
// of timeout_ms. NULL when out of memory.
static ProtobufCMessage *
next_request(struct stream *s, uint32_t timeout_ms)
{
    Anvil__V1__WatchEventsRequest *r = anvil__v1__watch_events_request__unpack(
        NULL, s->filter_len, s->filter);
    if (r == NULL)
        return NULL;
    r->after_seq  = s->after;
    r->timeout_ms = timeout_ms;
    r->tail       = 0;
    if (s->probe) { // the newest seq, from an answer at once
        r->after_seq  = 0;
        r->tail       = 1;
        r->limit      = 1;
        r->timeout_ms = 0;
    } else if (s->tail > 0) {
        r->tail = s->tail;
    }
    return &r->base;
}

static void
stream_done(struct cmd *c, void *arg)
{
    struct stream *s = arg;
    (void) c;
    MHD_resume_connection(s->mc);
}

// Decodes and posts the next poll, suspending the connection. False when
// it could not be posted (the stream then ends).
static bool
post_poll(struct stream *s, int64_t timeout_ms)
{
    struct http       *h   = s->h;
    struct anvil_error err = { 0 };
    ProtobufCMessage  *m   = next_request(s, (uint32_t) timeout_ms);
    memset(&s->call, 0, sizeof(s->call));
    if (m == NULL
        || handlers_decode_msg(&h->cfg.limits, "WatchEvents", m, &s->call, &err)
            != ANVIL_OK) {
        handlers_call_fini(&s->call);
        memset(&s->call, 0, sizeof(s->call));
        return false;
    }
    if (!gate_enter(&h->gate)) {
        handlers_call_fini(&s->call);
        memset(&s->call, 0, sizeof(s->call));
        return false;
    }
    s->call.cmd.done     = stream_done;
    s->call.cmd.done_arg = s;
    s->call.cmd.token_id = s->token_id;
    s->call.cmd.role     = s->role;
    s->call.cmd.pipe     = s->conn_id;
    s->posted            = true;
    MHD_suspend_connection(s->mc);
    engine_submit(h->cfg.engine, &s->call.cmd);
    gate_leave(&h->gate);
    return true;
}

// One event as its SSE lines.
static void
append_event(struct stream *s, const Anvil__V1__Event *ev)
{
    json_t *j    = pbjson_from_msg(&ev->base);
    char   *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    char kind[40];
    if (text == NULL) {
        s->ending = true;
        return;
    }
    appendf(s, "id: %llu\nevent: %s\ndata: %s\n\n",
        (unsigned long long) ev->seq,
        http_events_kind_name((int) ev->kind, kind, sizeof(kind)), text);
    free(text);
}

static void
render(struct stream *s, const Anvil__V1__WatchEventsResponse *r)
{
    if (s->probe) {
        s->probe = false;
        s->after = r->last_seq;
        return;
    }
    s->tail = 0; // asked once
    if (r->missed)
        appendf(s,
            "event: missed\ndata: {\"first_seq\":\"%llu\",\"after_seq\":"
            "\"%llu\"}\n\n",
            (unsigned long long) r->first_seq, (unsigned long long) s->after);
    for (size_t i = 0; i < r->n_events && !s->ending; i++) {
        append_event(s, r->events[i]);
        if (r->events[i]->seq > s->after)
            s->after = r->events[i]->seq;
    }
    if (r->next_seq > s->after)
        s->after = r->next_seq;
}

// The engine's answer to the poll: its events into s->out; an error ends
// the stream (UNAVAILABLE, the server stopping or the client gone,
// silently; anything else as an "error" event).
static void
take_answer(struct stream *s)
{
    s->posted              = false;
    struct anvil_error err = s->call.cmd.err;
    if (err.code == ANVIL_OK) {
        ProtobufCMessage *msg;
        void             *scratch = NULL;
        if (handlers_reply(&s->call, &msg, &scratch, &err) == ANVIL_OK) {
            render(s, (const Anvil__V1__WatchEventsResponse *) msg);
            handlers_reply_free(&s->call, scratch);
        }
    }
    handlers_call_fini(&s->call);
    memset(&s->call, 0, sizeof(s->call));
    if (err.code == ANVIL_OK)
        return;
    if (err.code != ANVIL_UNAVAILABLE) {
        json_t *j = json_pack(
            "{s:s,s:s}", "code", anvil_code_name(err.code), "message", err.msg);
        char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (text != NULL)
            appendf(s, "event: error\ndata: %s\n\n", text);
        free(text);
    }
    s->ending = true;
}

static bool
client_gone(struct stream *s)
{
    pthread_mutex_lock(&s->h->lock);
    bool gone = s->conn != NULL && s->conn->gone;
    pthread_mutex_unlock(&s->h->lock);
    return gone;
}

// libmicrohttpd's content reader: what is buffered, else the next poll.
static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    (void) pos;
    if (s->posted)
        take_answer(s); // resumed by done()
    for (;;) {
        int64_t now = av_mono_ms();
        if (s->off < s->len) {
            size_t n = s->len - s->off < max ? s->len - s->off : max;
            memcpy(buf, s->out + s->off, n);
            s->off += n;
            if (s->off == s->len) { // handed over: hold nothing while idle
                free(s->out);
                s->out = NULL;
                s->len = s->off = 0;
            }
            s->last_write = now;
            return (ssize_t) n;
        }
        if (client_gone(s))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (s->ending)
            return MHD_CONTENT_READER_END_OF_STREAM;
        int64_t left = s->keepalive_ms - (now - s->last_write);
        if (left <= 0 && !s->probe) {
            appendf(s, ": keep-alive\n\n");
            continue;
        }
        if (post_poll(s, left > 0 ? left : 1))
            return 0; // suspended until done()
        s->ending = true;
    }
}

// libmicrohttpd frees the response: the stream's end.
static void
stream_free(void *cls)
{
    struct stream *s = cls;
    struct http   *h = s->h;
    if (s->waiting) {
        pthread_mutex_lock(&h->lock);
        waits_leave(&h->waits, s->conn_id);
        pthread_mutex_unlock(&h->lock);
    }
    handlers_call_fini(&s->call);
    free(s->filter);
    free(s->out);
    free(s);
}

// Where the stream starts: Last-Event-ID, else after_seq, else tail,
// else the newest event.
static int
start_at(struct stream *s, struct hreq *q, Anvil__V1__WatchEventsRequest *r,
    struct anvil_error *err)
{
    const char *last = http_header(q, "Last-Event-ID");
    if (last != NULL && last[0] != '\0') {
        if (http_events_last_id(last, &r->after_seq, err) != ANVIL_OK)
            return err->code;
        q->events_after = true;
    }
    s->after = r->after_seq;
    s->tail  = q->events_after ? 0 : r->tail;
    s->probe = !q->events_after && r->tail == 0;
    if (r->limit == 0)
        r->limit = STREAM_LIMIT;
    r->after_seq  = 0;
    r->tail       = 0;
    r->timeout_ms = 0;
    size_t n      = anvil__v1__watch_events_request__get_packed_size(r);
    s->filter     = malloc(n ? n : 1);
    if (s->filter == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    s->filter_len = anvil__v1__watch_events_request__pack(r, s->filter);
    return ANVIL_OK;
}

// Checks the filter through the handler, as the first poll will be.
static int
check_filter(struct stream *s, struct anvil_error *err)
{
    ProtobufCMessage *m = next_request(s, 0);
    if (m == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    int rc = handlers_decode_msg(
        &s->h->cfg.limits, "WatchEvents", m, &s->call, err);
    handlers_call_fini(&s->call);
    memset(&s->call, 0, sizeof(s->call));
    return rc;
}

static int
open_stream(struct stream *s, struct hreq *q, ProtobufCMessage *m,
    struct anvil_error *err)
{
    struct http *h  = s->h;
    int          rc = start_at(s, q, (Anvil__V1__WatchEventsRequest *) m, err);
    if (rc == ANVIL_OK)
        rc = check_filter(s, err);
    if (rc != ANVIL_OK)
        return rc;
    pthread_mutex_lock(&h->lock);
    rc         = waits_enter(&h->waits, s->conn_id, err);
    s->waiting = rc == ANVIL_OK;
    if (rc == ANVIL_OK && s->conn != NULL) {
        s->conn->stream = true;
        s->conn->gone   = false;
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

enum MHD_Result
http_events_open(
    struct hreq *q, ProtobufCMessage *m, int64_t token_id, int role)
{
    struct http       *h   = q->h;
    struct anvil_error err = { 0 };
    struct stream     *s   = calloc(1, sizeof(*s));
    int                rc  = ANVIL_RESOURCE_EXHAUSTED;
    if (s == NULL) {
        av_error_set(&err, rc, "out of memory");
    } else {
        s->h            = h;
        s->mc           = q->mc;
        s->conn         = q->conn;
        s->conn_id      = q->conn != NULL ? q->conn->id : CONN_ID_BIT;
        s->token_id     = token_id;
        s->role         = role;
        s->keepalive_ms = h->cfg.sse_keepalive_ms;
        rc              = open_stream(s, q, m, &err);
    }
    protobuf_c_message_free_unpacked(m, NULL);
    struct MHD_Response *r = NULL;
    if (rc == ANVIL_OK) {
        appendf(s, "retry: %d\n\n", RETRY_MS);
        s->last_write = av_mono_ms();
        r             = MHD_create_response_from_callback(
                        MHD_SIZE_UNKNOWN, BLOCK, stream_read, s, stream_free);
    }
    if (r == NULL) {
        if (s != NULL)
            stream_free(s);
        if (rc == ANVIL_OK)
            av_error_set(&err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
        http_answer_err(q, &err);
        return http_send_answer(q);
    }
    MHD_add_response_header(
        r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no"); // nginx: no buffer
    enum MHD_Result rv = MHD_queue_response(q->mc, MHD_HTTP_OK, r);
    MHD_destroy_response(r); // the connection holds it; it frees s
    metrics_rpc(h->cfg.metrics, METRICS_HTTP, q->method, ANVIL_OK,
        av_mono_us() - q->t0_us);
    return rv;
}
