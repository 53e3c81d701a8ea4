// test_client_events.c - libanvil's event stream and retry calls against a
// canned server: what anvil_event_watch, anvil_job_retry,
// anvil_workflow_retry and anvil_job_get_by_key send, how their replies are
// copied (convert.c), how a long watch is cut into polls, and the new
// Health fields.
//
// The canned server (a REP socket on its own thread at ipc://<mkdtemp>/s)
// picks its reply by the request's fields and records what it received
// under its lock; the tests assert on the test thread only.
#include "../wire_test.h"
#include "anvil/v1/anvil.pb-c.h"
#include "convert.h"
#include "wire.h"

#include <anvil/anvil.h>
#include <anvil/workflow.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// cmocka.h needs these three before it: keep it in a block of its own.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define MAX_SEEN 256

// What the canned server received (guarded by mu).
struct seen {
    int      watches;         // WatchEvents requests
    uint64_t after[MAX_SEEN]; // their after_seq, in order
    uint32_t timeout_max;     // the longest timeout_ms asked
    uint32_t tail, limit;     // of the last one
    char     job_id[32], workflow_id[32], type[32], queue[32];
    int      kinds[8];
    size_t   n_kinds;
    uint32_t max_attempts;            // of the last RetryJob
    char     get_id[32], get_key[32]; // of the last GetJob
};

struct mock {
    char            url[128];
    pthread_t       thread;
    nng_socket      sock;
    pthread_mutex_t mu;
    struct seen     seen;
};

static void
copy(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s != NULL ? s : "");
}

// ---- canned replies ----

static void
fill_event(Anvil__V1__Event *e, uint64_t seq)
{
    Anvil__V1__Event init = ANVIL__V1__EVENT__INIT;
    *e                    = init;
    e->seq                = seq;
    e->kind               = ANVIL__V1__EVENT_KIND__EVENT_KIND_JOB_FAILED;
    e->at_ms              = 1000 + (int64_t) seq;
    e->job_id             = "j7";
    e->workflow_id        = "w3";
    e->step               = "fetch";
    e->type               = "Fetch";
    e->queue              = "io";
    e->worker             = "host-1";
    e->attempt            = 2;
    e->message            = "disk on fire";
}

static void
record_watch(struct mock *m, const Anvil__V1__WatchEventsRequest *r)
{
    struct seen *s = &m->seen;
    pthread_mutex_lock(&m->mu);
    if (s->watches < MAX_SEEN)
        s->after[s->watches] = r->after_seq;
    s->watches++;
    if (r->timeout_ms > s->timeout_max)
        s->timeout_max = r->timeout_ms;
    s->tail  = r->tail;
    s->limit = r->limit;
    copy(s->job_id, sizeof(s->job_id), r->job_id);
    copy(s->workflow_id, sizeof(s->workflow_id), r->workflow_id);
    copy(s->type, sizeof(s->type), r->type);
    copy(s->queue, sizeof(s->queue), r->queue);
    s->n_kinds = r->n_kinds < 8 ? r->n_kinds : 8;
    for (size_t i = 0; i < s->n_kinds; i++)
        s->kinds[i] = (int) r->kinds[i];
    pthread_mutex_unlock(&m->mu);
}

// job_id "none": nothing matches (next_seq moves on by 5); "gone": the
// events after after_seq were deleted, the oldest kept is 50; otherwise
// two events after after_seq.
static nng_msg *
reply_watch(struct mock *m, const ProtobufCBinaryData *body, uint64_t rid)
{
    Anvil__V1__WatchEventsRequest *r
        = anvil__v1__watch_events_request__unpack(NULL, body->len, body->data);
    if (r == NULL)
        return NULL;
    record_watch(m, r);
    Anvil__V1__WatchEventsResponse rep = ANVIL__V1__WATCH_EVENTS_RESPONSE__INIT;
    Anvil__V1__Event               ev[2];
    Anvil__V1__Event              *evp[2] = { &ev[0], &ev[1] };
    rep.events                            = evp;
    rep.first_seq                         = 1;
    if (strcmp(r->job_id, "none") == 0) {
        rep.next_seq = r->after_seq + 5;
    } else if (strcmp(r->job_id, "gone") == 0) {
        fill_event(&ev[0], 50);
        rep.n_events  = 1;
        rep.missed    = true;
        rep.first_seq = 50;
        rep.next_seq  = 50;
    } else {
        fill_event(&ev[0], r->after_seq + 1);
        fill_event(&ev[1], r->after_seq + 2);
        ev[1].kind    = ANVIL__V1__EVENT_KIND__EVENT_KIND_WORKER_LOST;
        ev[1].job_id  = "";
        ev[1].message = "";
        rep.n_events  = 2;
        rep.next_seq  = r->after_seq + 2;
    }
    rep.last_seq = rep.next_seq;
    anvil__v1__watch_events_request__free_unpacked(r, NULL);
    nng_msg *out = NULL;
    wire_test_reply_encode(0, "", &rep.base, rid, &out, NULL);
    return out;
}

static nng_msg *
reply_job(const char *id, const char *key, uint32_t budget, uint64_t rid)
{
    Anvil__V1__Job job              = ANVIL__V1__JOB__INIT;
    job.id                          = (char *) id;
    job.type                        = "Fetch";
    job.queue                       = "default";
    job.state                       = ANVIL__V1__JOB_STATE__JOB_STATE_QUEUED;
    job.attempt                     = 3;
    job.max_attempts                = 3 + budget;
    job.error                       = "disk on fire";
    job.idempotency_key             = (char *) key;
    Anvil__V1__RetryJobResponse rep = ANVIL__V1__RETRY_JOB_RESPONSE__INIT;
    rep.job                         = &job; // GetJobResponse has the same shape
    nng_msg *out                    = NULL;
    wire_test_reply_encode(0, "", &rep.base, rid, &out, NULL);
    return out;
}

static nng_msg *
reply_retry_job(struct mock *m, const ProtobufCBinaryData *body, uint64_t rid)
{
    Anvil__V1__RetryJobRequest *r
        = anvil__v1__retry_job_request__unpack(NULL, body->len, body->data);
    if (r == NULL)
        return NULL;
    pthread_mutex_lock(&m->mu);
    m->seen.max_attempts = r->max_attempts;
    pthread_mutex_unlock(&m->mu);
    nng_msg *out = NULL;
    if (strcmp(r->id, "done") == 0)
        wire_test_reply_encode(ANVIL_FAILED_PRECONDITION,
            "job done has SUCCEEDED", NULL, rid, &out, NULL);
    else
        out = reply_job(r->id, "", r->max_attempts, rid);
    anvil__v1__retry_job_request__free_unpacked(r, NULL);
    return out;
}

static nng_msg *
reply_get_job(struct mock *m, const ProtobufCBinaryData *body, uint64_t rid)
{
    Anvil__V1__GetJobRequest *r
        = anvil__v1__get_job_request__unpack(NULL, body->len, body->data);
    if (r == NULL)
        return NULL;
    pthread_mutex_lock(&m->mu);
    copy(m->seen.get_id, sizeof(m->seen.get_id), r->id);
    copy(m->seen.get_key, sizeof(m->seen.get_key), r->idempotency_key);
    pthread_mutex_unlock(&m->mu);
    nng_msg *out = reply_job("j5", r->idempotency_key, 0, rid);
    anvil__v1__get_job_request__free_unpacked(r, NULL);
    return out;
}

static nng_msg *
reply_retry_workflow(const ProtobufCBinaryData *body, uint64_t rid)
{
    Anvil__V1__RetryWorkflowRequest *r
        = anvil__v1__retry_workflow_request__unpack(
            NULL, body->len, body->data);
    if (r == NULL)
        return NULL;
    Anvil__V1__Workflow wf = ANVIL__V1__WORKFLOW__INIT;
    wf.id                  = r->id;
    wf.name                = "nightly";
    wf.state               = ANVIL__V1__WORKFLOW_STATE__WORKFLOW_STATE_RUNNING;
    Anvil__V1__RetryWorkflowResponse rep
        = ANVIL__V1__RETRY_WORKFLOW_RESPONSE__INIT;
    rep.workflow = &wf;
    nng_msg *out = NULL;
    wire_test_reply_encode(0, "", &rep.base, rid, &out, NULL);
    anvil__v1__retry_workflow_request__free_unpacked(r, NULL);
    return out;
}

static nng_msg *
reply_health(uint64_t rid)
{
    Anvil__V1__QueueDepth   d     = ANVIL__V1__QUEUE_DEPTH__INIT;
    Anvil__V1__QueueDepth  *dp    = &d;
    Anvil__V1__MinuteCount  mc    = ANVIL__V1__MINUTE_COUNT__INIT;
    Anvil__V1__MinuteCount *mp    = &mc;
    d.queue                       = "io";
    d.type                        = "Fetch";
    d.queued                      = 4;
    d.scheduled                   = 7;
    mc.minute_ms                  = 60000;
    mc.queue                      = "io";
    mc.type                       = "Fetch";
    mc.succeeded                  = 10;
    mc.failed                     = 1;
    mc.retried                    = 2;
    Anvil__V1__HealthResponse rep = ANVIL__V1__HEALTH_RESPONSE__INIT;
    rep.version                   = "0.1.0";
    rep.depths                    = &dp;
    rep.n_depths                  = 1;
    rep.recent                    = &mp;
    rep.n_recent                  = 1;
    rep.last_event_seq            = 99;
    nng_msg *out                  = NULL;
    wire_test_reply_encode(0, "", &rep.base, rid, &out, NULL);
    return out;
}

static nng_msg *
mock_handle(struct mock *m, nng_msg *msg)
{
    Anvil__V1__Request *env
        = anvil__v1__request__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
    if (env == NULL)
        return NULL;
    const ProtobufCBinaryData *b   = &env->body;
    uint64_t                   rid = env->request_id;
    nng_msg                   *out = NULL;
    if (strcmp(env->method, "WatchEvents") == 0)
        out = reply_watch(m, b, rid);
    else if (strcmp(env->method, "RetryJob") == 0)
        out = reply_retry_job(m, b, rid);
    else if (strcmp(env->method, "GetJob") == 0)
        out = reply_get_job(m, b, rid);
    else if (strcmp(env->method, "RetryWorkflow") == 0)
        out = reply_retry_workflow(b, rid);
    else if (strcmp(env->method, "Health") == 0)
        out = reply_health(rid);
    else
        wire_test_reply_encode(
            ANVIL_UNIMPLEMENTED, "no such rpc", NULL, rid, &out, NULL);
    anvil__v1__request__free_unpacked(env, NULL);
    return out;
}

static void *
mock_main(void *arg)
{
    struct mock *m = arg;
    for (;;) {
        nng_msg *msg;
        if (nng_recvmsg(m->sock, &msg, 0) != 0)
            break; // closed by teardown
        nng_msg *out = mock_handle(m, msg);
        nng_msg_free(msg);
        if (out != NULL && nng_sendmsg(m->sock, out, 0) != 0)
            nng_msg_free(out);
    }
    return NULL;
}

// ---- fixtures ----

struct fx {
    char          dir[64];
    struct mock   m;
    anvil_client *c;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    *state = f;
    snprintf(f->dir, sizeof(f->dir), "/tmp/anvil-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->m.url, sizeof(f->m.url), "ipc://%s/s", f->dir);
    pthread_mutex_init(&f->m.mu, NULL);
    if (nng_rep0_open(&f->m.sock) != 0
        || nng_listen(f->m.sock, f->m.url, NULL, 0) != 0
        || pthread_create(&f->m.thread, NULL, mock_main, &f->m) != 0)
        return -1;
    if (anvil_client_open(&f->c, f->m.url, NULL) != ANVIL_OK)
        return -1;
    return anvil_client_set_timeout(f->c, 5000, NULL);
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    anvil_client_close(f->c);
    nng_close(f->m.sock);
    pthread_join(f->m.thread, NULL);
    pthread_mutex_destroy(&f->m.mu);
    char path[160];
    snprintf(path, sizeof(path), "%s/s", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

// A copy of what the server saw so far.
static struct seen
seen(struct fx *f)
{
    pthread_mutex_lock(&f->m.mu);
    struct seen s = f->m.seen;
    pthread_mutex_unlock(&f->m.mu);
    return s;
}

// ---- events ----

static void
test_event_watch_sends_the_filter_and_copies_every_field(void **state)
{
    struct fx                  *f = *state;
    const enum anvil_event_kind kinds[]
        = { ANVIL_EVENT_JOB_FAILED, ANVIL_EVENT_WORKER_LOST };
    struct anvil_event_filter flt = { .after_seq = 10,
        .job_id                                  = "j7",
        .workflow_id                             = "w3",
        .type                                    = "Fetch",
        .queue                                   = "io",
        .kinds                                   = kinds,
        .n_kinds                                 = 2,
        .limit                                   = 500,
        .tail                                    = 20 };
    struct anvil_event_list  *l   = NULL;
    struct anvil_error        err = { 0, "" };
    assert_int_equal(anvil_event_watch(f->c, &flt, &l, &err), ANVIL_OK);
    struct seen s = seen(f);
    assert_int_equal(s.watches, 1);
    assert_int_equal(s.after[0], 10);
    assert_int_equal(s.timeout_max, 0);
    assert_int_equal(s.limit, 500);
    assert_int_equal(s.tail, 20);
    assert_string_equal(s.job_id, "j7");
    assert_string_equal(s.workflow_id, "w3");
    assert_string_equal(s.type, "Fetch");
    assert_string_equal(s.queue, "io");
    assert_int_equal(s.n_kinds, 2);
    assert_int_equal(s.kinds[0], ANVIL_EVENT_JOB_FAILED);
    assert_int_equal(s.kinds[1], ANVIL_EVENT_WORKER_LOST);

    assert_non_null(l);
    assert_int_equal(l->n, 2);
    assert_int_equal(l->next_seq, 12);
    assert_int_equal(l->last_seq, 12);
    assert_int_equal(l->first_seq, 1);
    assert_false(l->missed);
    const struct anvil_event *e = &l->events[0];
    assert_int_equal(e->seq, 11);
    assert_int_equal(e->kind, ANVIL_EVENT_JOB_FAILED);
    assert_int_equal(e->at_ms, 1011);
    assert_string_equal(e->job_id, "j7");
    assert_string_equal(e->workflow_id, "w3");
    assert_string_equal(e->step, "fetch");
    assert_string_equal(e->type, "Fetch");
    assert_string_equal(e->queue, "io");
    assert_string_equal(e->worker, "host-1");
    assert_int_equal(e->attempt, 2);
    assert_string_equal(e->message, "disk on fire");
    // Unset strings are "", never NULL.
    assert_int_equal(l->events[1].kind, ANVIL_EVENT_WORKER_LOST);
    assert_string_equal(l->events[1].job_id, "");
    assert_string_equal(l->events[1].message, "");
    anvil_event_list_free(l);
}

static void
test_event_watch_without_a_filter_asks_for_everything(void **state)
{
    struct fx               *f = *state;
    struct anvil_event_list *l = NULL;
    assert_int_equal(anvil_event_watch(f->c, NULL, &l, NULL), ANVIL_OK);
    struct seen s = seen(f);
    assert_int_equal(s.after[0], 0);
    assert_int_equal(s.tail, 0);
    assert_int_equal(s.n_kinds, 0);
    assert_string_equal(s.job_id, "");
    assert_int_equal(l->n, 2);
    anvil_event_list_free(l);
}

// Nothing matches: the watch polls again from each reply's next_seq until
// its time is up, then returns an empty list to continue from.
static void
test_event_watch_continues_from_next_seq_until_its_timeout(void **state)
{
    struct fx                *f = *state;
    struct anvil_event_filter flt
        = { .after_seq = 100, .job_id = "none", .timeout_ms = 200 };
    struct anvil_event_list *l = NULL;
    assert_int_equal(anvil_event_watch(f->c, &flt, &l, NULL), ANVIL_OK);
    assert_int_equal(l->n, 0);
    struct seen s = seen(f);
    assert_true(s.watches >= 2);
    assert_true(s.timeout_max <= 200);
    for (int i = 1; i < s.watches && i < MAX_SEEN; i++)
        assert_int_equal(s.after[i], s.after[i - 1] + 5);
    assert_int_equal(l->next_seq, 100 + 5 * (uint64_t) s.watches);
    anvil_event_list_free(l);
}

static void
test_event_watch_returns_at_once_when_events_were_missed(void **state)
{
    struct fx                *f = *state;
    struct anvil_event_filter flt
        = { .after_seq = 3, .job_id = "gone", .timeout_ms = 60000 };
    struct anvil_event_list *l = NULL;
    assert_int_equal(anvil_event_watch(f->c, &flt, &l, NULL), ANVIL_OK);
    assert_true(l->missed);
    assert_int_equal(l->first_seq, 50);
    assert_int_equal(l->n, 1);
    assert_int_equal(seen(f).watches, 1);
    anvil_event_list_free(l);
}

static void
test_event_watch_rejects_bad_arguments_without_calling(void **state)
{
    struct fx                *f   = *state;
    struct anvil_event_list  *l   = (void *) 1;
    struct anvil_error        err = { 0, "" };
    struct anvil_event_filter neg = { .timeout_ms = -1 };
    assert_int_equal(
        anvil_event_watch(f->c, &neg, &l, &err), ANVIL_INVALID_ARGUMENT);
    assert_null(l);
    assert_non_null(strstr(err.msg, "timeout_ms is negative"));
    struct anvil_event_filter nokinds = { .n_kinds = 2 };
    assert_int_equal(
        anvil_event_watch(f->c, &nokinds, &l, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "kinds is NULL"));
    assert_int_equal(
        anvil_event_watch(NULL, NULL, &l, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_event_watch(f->c, NULL, NULL, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(seen(f).watches, 0);
    anvil_event_list_free(NULL);
}

static void
test_event_kind_names_round_trip_through_parse(void **state)
{
    (void) state;
    for (int k = ANVIL_EVENT_JOB_SUBMITTED; k <= ANVIL_EVENT_WORKER_LOST; k++) {
        enum anvil_event_kind back = ANVIL_EVENT_UNSPECIFIED;
        const char           *name = anvil_event_kind_name(k);
        assert_int_equal(anvil_event_kind_parse(name, &back), ANVIL_OK);
        assert_int_equal(back, k);
    }
    enum anvil_event_kind k = ANVIL_EVENT_UNSPECIFIED;
    assert_string_equal(
        anvil_event_kind_name(ANVIL_EVENT_JOB_SUCCEEDED), "JOB_SUCCEEDED");
    assert_string_equal(anvil_event_kind_name(99), "UNSPECIFIED");
    assert_int_equal(anvil_event_kind_parse("job.retried", &k), ANVIL_OK);
    assert_int_equal(k, ANVIL_EVENT_JOB_RETRIED);
    assert_int_equal(
        anvil_event_kind_parse("EVENT_KIND_WORKER_JOINED", &k), ANVIL_OK);
    assert_int_equal(k, ANVIL_EVENT_WORKER_JOINED);
    assert_int_equal(anvil_event_kind_parse("Workflow_Failed", &k), ANVIL_OK);
    assert_int_equal(k, ANVIL_EVENT_WORKFLOW_FAILED);
    assert_int_equal(
        anvil_event_kind_parse("unspecified", &k), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_event_kind_parse("job.exploded", &k), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(anvil_event_kind_parse("", &k), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(anvil_event_kind_parse(NULL, &k), ANVIL_INVALID_ARGUMENT);
    char long_name[100];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(
        anvil_event_kind_parse(long_name, &k), ANVIL_INVALID_ARGUMENT);
}

static void
test_convert_event_list_refuses_a_reply_with_a_null_event(void **state)
{
    (void) state;
    Anvil__V1__Event  ev;
    Anvil__V1__Event *evp[2] = { &ev, NULL };
    fill_event(&ev, 7);
    Anvil__V1__WatchEventsResponse rep = ANVIL__V1__WATCH_EVENTS_RESPONSE__INIT;
    rep.events                         = evp;
    rep.n_events                       = 2;
    struct anvil_event_list *l         = (void *) 1;
    assert_int_equal(convert_event_list(&rep, &l), -1);
    assert_null(l);
    rep.n_events = 1;
    rep.next_seq = 7;
    assert_int_equal(convert_event_list(&rep, &l), 0);
    assert_int_equal(l->n, 1);
    assert_int_equal(l->events[0].seq, 7);
    anvil_event_list_free(l);
}

// ---- retries and get by key ----

static void
test_job_retry_sends_its_budget_and_returns_the_job(void **state)
{
    struct fx         *f   = *state;
    struct anvil_job  *job = NULL;
    struct anvil_error err = { 0, "" };
    assert_int_equal(anvil_job_retry(f->c, "j9", 4, &job, &err), ANVIL_OK);
    assert_int_equal(seen(f).max_attempts, 4);
    assert_string_equal(job->id, "j9");
    assert_int_equal(job->state, ANVIL_JOB_QUEUED);
    assert_int_equal(job->attempt, 3);
    assert_int_equal(job->retry.max_attempts, 7);
    anvil_job_free(job);
    // out may be NULL; 0 asks for the server's default.
    assert_int_equal(anvil_job_retry(f->c, "j9", 0, NULL, &err), ANVIL_OK);
    assert_int_equal(seen(f).max_attempts, 0);
}

static void
test_job_retry_passes_failed_precondition_and_checks_its_id(void **state)
{
    struct fx         *f   = *state;
    struct anvil_job  *job = (void *) 1;
    struct anvil_error err = { 0, "" };
    assert_int_equal(anvil_job_retry(f->c, "done", 0, &job, &err),
        ANVIL_FAILED_PRECONDITION);
    assert_null(job);
    assert_string_equal(err.msg, "job done has SUCCEEDED");
    assert_int_equal(
        anvil_job_retry(f->c, "", 0, &job, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_job_retry(f->c, NULL, 0, &job, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_job_retry(NULL, "j1", 0, &job, &err), ANVIL_INVALID_ARGUMENT);
}

static void
test_workflow_retry_returns_the_workflow(void **state)
{
    struct fx             *f  = *state;
    struct anvil_workflow *wf = NULL;
    assert_int_equal(anvil_workflow_retry(f->c, "w4", &wf, NULL), ANVIL_OK);
    assert_string_equal(wf->id, "w4");
    assert_int_equal(wf->state, ANVIL_WORKFLOW_RUNNING);
    anvil_workflow_free(wf);
    assert_int_equal(
        anvil_workflow_retry(f->c, "", &wf, NULL), ANVIL_INVALID_ARGUMENT);
    assert_null(wf);
}

static void
test_job_get_by_key_sends_the_key_and_no_id(void **state)
{
    struct fx         *f   = *state;
    struct anvil_job  *job = NULL;
    struct anvil_error err = { 0, "" };
    assert_int_equal(
        anvil_job_get_by_key(f->c, "order-7", &job, &err), ANVIL_OK);
    struct seen s = seen(f);
    assert_string_equal(s.get_key, "order-7");
    assert_string_equal(s.get_id, "");
    assert_string_equal(job->idempotency_key, "order-7");
    anvil_job_free(job);
    assert_int_equal(
        anvil_job_get_by_key(f->c, "", &job, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "key is empty"));
    assert_int_equal(
        anvil_job_get_by_key(f->c, "k", NULL, &err), ANVIL_INVALID_ARGUMENT);
}

static void
test_health_copies_scheduled_recent_and_last_event_seq(void **state)
{
    struct fx           *f = *state;
    struct anvil_health *h = NULL;
    assert_int_equal(anvil_health_get(f->c, &h, NULL), ANVIL_OK);
    assert_int_equal(h->n_depths, 1);
    assert_int_equal(h->depths[0].queued, 4);
    assert_int_equal(h->depths[0].scheduled, 7);
    assert_int_equal(h->last_event_seq, 99);
    assert_int_equal(h->n_recent, 1);
    assert_int_equal(h->recent[0].minute_ms, 60000);
    assert_string_equal(h->recent[0].queue, "io");
    assert_string_equal(h->recent[0].type, "Fetch");
    assert_int_equal(h->recent[0].succeeded, 10);
    assert_int_equal(h->recent[0].failed, 1);
    assert_int_equal(h->recent[0].retried, 2);
    anvil_health_free(h);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_event_watch_sends_the_filter_and_copies_every_field),
        T(test_event_watch_without_a_filter_asks_for_everything),
        T(test_event_watch_continues_from_next_seq_until_its_timeout),
        T(test_event_watch_returns_at_once_when_events_were_missed),
        T(test_event_watch_rejects_bad_arguments_without_calling),
        cmocka_unit_test(test_event_kind_names_round_trip_through_parse),
        cmocka_unit_test(
            test_convert_event_list_refuses_a_reply_with_a_null_event),
        T(test_job_retry_sends_its_budget_and_returns_the_job),
        T(test_job_retry_passes_failed_precondition_and_checks_its_id),
        T(test_workflow_retry_returns_the_workflow),
        T(test_job_get_by_key_sends_the_key_and_no_id),
        T(test_health_copies_scheduled_recent_and_last_event_seq),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nng_fini();
    return rc;
}
