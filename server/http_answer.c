// http_answer.c - what a request is answered: the JSON of the rpc's reply
// (pbjson), an error as {"code", "message"} with its HTTP status, the
// metrics text; and the answer queued on the connection.
#include "http.h"
#include "http_impl.h"

#include "metrics.h"
#include "pbjson.h"
#include "util/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
http_status_of(int code)
{
    switch (code) {
    case ANVIL_OK:
        return 200;
    case ANVIL_INVALID_ARGUMENT:
    case ANVIL_OUT_OF_RANGE:
        return 400;
    case ANVIL_UNAUTHENTICATED:
        return 401;
    case ANVIL_PERMISSION_DENIED:
        return 403;
    case ANVIL_NOT_FOUND:
        return 404;
    case ANVIL_ALREADY_EXISTS:
    case ANVIL_ABORTED:
        return 409;
    case ANVIL_FAILED_PRECONDITION:
        return 412;
    case ANVIL_RESOURCE_EXHAUSTED:
        return 429;
    case ANVIL_CANCELLED:
        return 499;
    case ANVIL_UNIMPLEMENTED:
        return 501;
    case ANVIL_UNAVAILABLE:
        return 503;
    case ANVIL_DEADLINE_EXCEEDED:
        return 504;
    default:
        return 500;
    }
}

// Sets the answer (text is the request's now).
void
http_answer(
    struct hreq *q, int status, const char *ctype, char *text, size_t len)
{
    free(q->text);
    q->status   = status;
    q->ctype    = ctype;
    q->text     = text;
    q->text_len = len;
    q->replied  = true;
}

void
http_answer_json(struct hreq *q, int status, json_t *j)
{
    char *text
        = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (text == NULL) {
        q->code = ANVIL_RESOURCE_EXHAUSTED;
        http_answer(q, 500, "text/plain", NULL, 0);
        return;
    }
    size_t n = strlen(text);
    text[n]  = '\n'; // json_dumps leaves room: replace NUL, keep length+1
    http_answer(q, status, HTTP_JSON_TYPE, text, n + 1);
}

void
http_answer_error(struct hreq *q, int status, int code, const char *msg)
{
    q->code = code;
    http_answer_json(q, status,
        json_pack("{s:s,s:s}", "code", anvil_code_name(code), "message", msg));
}

void
http_answer_err(struct hreq *q, const struct anvil_error *e)
{
    http_answer_error(q, http_status_of(e->code), e->code, e->msg);
}

// Queues q's answer on its connection.
enum MHD_Result
http_send_answer(struct hreq *q)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        q->text_len, q->text, MHD_RESPMEM_MUST_FREE);
    if (r == NULL)
        return MHD_NO;
    q->text = NULL; // the response's now
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, q->ctype);
    if (q->location[0] != '\0')
        MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, q->location);
    if (q->status == 401)
        MHD_add_response_header(
            r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"anvil\"");
    if (q->allow != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, q->allow);
    enum MHD_Result rv = MHD_queue_response(q->mc, (unsigned) q->status, r);
    MHD_destroy_response(r);
    if (q->m.route != NULL && q->m.route->rpc != NULL)
        metrics_rpc(q->metrics, METRICS_HTTP, q->method, q->code,
            av_mono_us() - q->t0_us);
    return rv;
}

// The rpc's reply as the route's answer.
void
http_answer_reply(struct hreq *q)
{
    struct anvil_error err = q->call.cmd.err;
    if (q->m.route->kind == ROUTE_METRICS) {
        struct cmd_metrics *mt = &q->call.cmd.u.metrics;
        if (err.code != ANVIL_OK) {
            http_answer_err(q, &err);
            return;
        }
        q->code = ANVIL_OK;
        http_answer(q, 200, METRICS_CONTENT_TYPE, mt->text, mt->len);
        mt->text = NULL; // the answer's now
        return;
    }
    if (q->m.route->kind == ROUTE_READYZ) {
        if (err.code == ANVIL_OK) {
            q->code = ANVIL_OK;
            http_answer(q, 200, "text/plain", strdup("ready\n"), 6);
        } else {
            http_answer_err(q, &err);
        }
        return;
    }
    ProtobufCMessage *msg;
    void             *scratch = NULL;
    if (err.code == ANVIL_OK
        && handlers_reply(&q->call, &msg, &scratch, &err) == ANVIL_OK) {
        json_t *j = pbjson_from_msg(msg);
        handlers_reply_free(&q->call, scratch);
        const char *id
            = j != NULL ? json_string_value(json_object_get(j, "id")) : NULL;
        int status = 200;
        if (q->m.route->created && id != NULL
            && !json_is_true(json_object_get(j, "existed"))) {
            status = 201;
            snprintf(q->location, sizeof(q->location), "/v1/%s/%s",
                q->call.cmd.kind == CMD_WF_SUBMIT ? "workflows" : "jobs", id);
        }
        q->code = ANVIL_OK;
        http_answer_json(q, status, j);
        return;
    }
    http_answer_err(q, &err);
}
