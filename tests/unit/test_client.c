// test_client.c - libanvil's public client API against a canned server.
//
// A tiny nng REP server runs on its own thread at ipc://<mkdtemp>/s and
// answers each rpc with canned Reply envelopes chosen by the request's
// fields (a GetJob for id "missing" gets NOT_FOUND, for "garbage" a body
// that does not decode, and so on), so these tests check what the SDK
// sends and how it decodes every kind of reply without a real anvild.
#include "../wire_test.h"
#include "anvil/v1/anvil.pb-c.h"
#include "client_impl.h"
#include "util/clock.h"
#include "wire.h"

#include <anvil/anvil.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>
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

// ---- the canned server ----

struct mock {
    char            url[128];
    pthread_t       thread;
    pthread_mutex_t mu;             // guards everything below
    nng_socket      sock;           // replaced by a restart
    bool            stop;           // set by mock_stop()
    int             requests;       // envelopes received
    int             hangs;          // requests left unanswered on purpose
    char            token[64];      // token of the last request
    uint64_t        restart_ids[2]; // request ids of "restart" receipts
    int             restart_seen;   // receipts of GetJob "restart"
    int             slow_waits;     // WaitJob requests for "slow3"
    uint32_t        wait_max_ms;    // the longest WaitJob timeout asked
};

static nng_msg *
reply_with(int code, const char *msg, const ProtobufCMessage *body,
    uint64_t request_id)
{
    nng_msg *out = NULL;
    if (wire_test_reply_encode(code, msg, body, request_id, &out, NULL) != 0)
        return NULL;
    return out;
}

// A Reply{OK} whose body is not a valid message.
static nng_msg *
reply_garbage_body(uint64_t request_id)
{
    static uint8_t   bad[] = { 0x0a, 0x7f, 0x01 };
    Anvil__V1__Reply env   = ANVIL__V1__REPLY__INIT;
    env.body.data          = bad;
    env.body.len           = sizeof(bad);
    env.request_id         = request_id;
    nng_msg *out;
    if (nng_msg_alloc(&out, anvil__v1__reply__get_packed_size(&env)) != 0)
        return NULL;
    anvil__v1__reply__pack(&env, nng_msg_body(out));
    return out;
}

// Bytes that are no Reply envelope at all.
static nng_msg *
reply_not_an_envelope(void)
{
    static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0x01 };
    nng_msg             *out;
    if (nng_msg_alloc(&out, 0) != 0)
        return NULL;
    nng_msg_append(out, junk, sizeof(junk));
    return out;
}

// The canned job for id: payload "p:<id>", RUNNING, held by w1.
static void
canned_job(Anvil__V1__Job *j, const char *id, char *payload, size_t cap)
{
    Anvil__V1__Job init = ANVIL__V1__JOB__INIT;
    *j                  = init;
    snprintf(payload, cap, "p:%s", id);
    j->id            = (char *) id;
    j->type          = "echo";
    j->queue         = "default";
    j->payload.data  = (uint8_t *) payload;
    j->payload.len   = strlen(payload);
    j->state         = ANVIL__V1__JOB_STATE__JOB_STATE_RUNNING;
    j->attempt       = 1;
    j->max_attempts  = 3;
    j->created_at_ms = 1000;
    j->worker_id     = "w1";
    if (strncmp(id, "step", 4) == 0) { // a workflow step after two others
        static char *after[] = { "fetch", "resize" };
        j->workflow_id       = "w3";
        j->step              = (char *) id;
        j->after             = after;
        j->n_after           = 2;
    }
}

static nng_msg *
reply_job(const char *id, uint64_t rid)
{
    Anvil__V1__Job job;
    char           payload[160];
    canned_job(&job, id, payload, sizeof(payload));
    Anvil__V1__GetJobResponse rp = ANVIL__V1__GET_JOB_RESPONSE__INIT;
    rp.job                       = &job;
    return reply_with(0, "", &rp.base, rid);
}

static int
mock_listen(struct mock *m)
{
    if (nng_rep0_open(&m->sock) != 0)
        return -1;
    if (nng_listen(m->sock, m->url, NULL, 0) != 0) {
        nng_close(m->sock);
        return -1;
    }
    return 0;
}

// GetJob "restart": the first receipt drops the connection by closing the
// socket and listening anew (a server restart); the resend is answered.
static nng_msg *
mock_restart(struct mock *m, uint64_t rid)
{
    pthread_mutex_lock(&m->mu);
    int seen = m->restart_seen++;
    if (seen < 2)
        m->restart_ids[seen] = rid;
    if (seen == 0 && !m->stop) {
        nng_close(m->sock);
        if (mock_listen(m) != 0)
            m->stop = true;
    }
    pthread_mutex_unlock(&m->mu);
    return seen == 0 ? NULL : reply_job("restart", rid);
}

static nng_msg *
mock_get_job(struct mock *m, const Anvil__V1__Request *env)
{
    uint64_t                  rid = env->request_id;
    Anvil__V1__GetJobRequest *r   = anvil__v1__get_job_request__unpack(
          NULL, env->body.len, env->body.data);
    if (r == NULL)
        return reply_with(ANVIL_INVALID_ARGUMENT, "bad body", NULL, rid);
    nng_msg    *out = NULL;
    const char *id  = r->id;
    if (strcmp(id, "missing") == 0) {
        out = reply_with(
            ANVIL_NOT_FOUND, "no job with id \"missing\"", NULL, rid);
    } else if (strcmp(id, "garbage") == 0) {
        out = reply_garbage_body(rid);
    } else if (strcmp(id, "notenvelope") == 0) {
        out = reply_not_an_envelope();
    } else if (strcmp(id, "badcode") == 0) {
        out = reply_with(99, "from the future", NULL, rid);
    } else if (strcmp(id, "nojob") == 0) {
        Anvil__V1__GetJobResponse rp = ANVIL__V1__GET_JOB_RESPONSE__INIT;
        out                          = reply_with(0, "", &rp.base, rid);
    } else if (strcmp(id, "hang") == 0) {
        pthread_mutex_lock(&m->mu);
        m->hangs++;
        pthread_mutex_unlock(&m->mu);
    } else if (strcmp(id, "restart") == 0) {
        out = mock_restart(m, rid);
    } else {
        out = reply_job(id, rid);
    }
    anvil__v1__get_job_request__free_unpacked(r, NULL);
    return out;
}

// SubmitJob: the id spells out what arrived: j-<type>-<len>-<queue>-<prio>.
static nng_msg *
mock_submit(struct mock *m, const Anvil__V1__Request *env)
{
    (void) m;
    uint64_t                     rid = env->request_id;
    Anvil__V1__SubmitJobRequest *r   = anvil__v1__submit_job_request__unpack(
          NULL, env->body.len, env->body.data);
    if (r == NULL)
        return reply_with(ANVIL_INVALID_ARGUMENT, "bad body", NULL, rid);
    nng_msg *out;
    if (r->type[0] == '\0') {
        out = reply_with(ANVIL_INVALID_ARGUMENT,
            "type: must match [A-Za-z0-9_.-]{1,128}", NULL, rid);
    } else {
        char id[256];
        snprintf(id, sizeof(id), "j-%s-%zu-%s-%d", r->type, r->payload.len,
            r->queue, (int) r->priority);
        Anvil__V1__SubmitJobResponse rp = ANVIL__V1__SUBMIT_JOB_RESPONSE__INIT;
        rp.id                           = id;
        rp.existed                      = r->idempotency_key[0] != '\0';
        out                             = reply_with(0, "", &rp.base, rid);
    }
    anvil__v1__submit_job_request__free_unpacked(r, NULL);
    return out;
}

// WaitJob: "done" has SUCCEEDED with result "42", and so has "slow3" at
// its third WaitJob; others still run.
static nng_msg *
mock_wait(struct mock *m, const Anvil__V1__Request *env)
{
    uint64_t                   rid = env->request_id;
    Anvil__V1__WaitJobRequest *r   = anvil__v1__wait_job_request__unpack(
          NULL, env->body.len, env->body.data);
    if (r == NULL)
        return reply_with(ANVIL_INVALID_ARGUMENT, "bad body", NULL, rid);
    Anvil__V1__Job job;
    char           payload[160];
    canned_job(&job, r->id, payload, sizeof(payload));
    Anvil__V1__WaitJobResponse rp = ANVIL__V1__WAIT_JOB_RESPONSE__INIT;
    rp.job                        = &job;
    pthread_mutex_lock(&m->mu);
    if (r->timeout_ms > m->wait_max_ms)
        m->wait_max_ms = r->timeout_ms;
    bool slow_done = strcmp(r->id, "slow3") == 0 && ++m->slow_waits == 3;
    pthread_mutex_unlock(&m->mu);
    if (strcmp(r->id, "done") == 0 || slow_done) {
        job.state       = ANVIL__V1__JOB_STATE__JOB_STATE_SUCCEEDED;
        job.result.data = (uint8_t *) "42";
        job.result.len  = 2;
        rp.done         = true;
    }
    nng_msg *out = reply_with(0, "", &rp.base, rid);
    anvil__v1__wait_job_request__free_unpacked(r, NULL);
    return out;
}

static nng_msg *
mock_cancel(struct mock *m, const Anvil__V1__Request *env)
{
    (void) m;
    uint64_t                     rid = env->request_id;
    Anvil__V1__CancelJobRequest *r   = anvil__v1__cancel_job_request__unpack(
          NULL, env->body.len, env->body.data);
    if (r == NULL)
        return reply_with(ANVIL_INVALID_ARGUMENT, "bad body", NULL, rid);
    nng_msg *out;
    if (strcmp(r->id, "finished") == 0) {
        out = reply_with(ANVIL_FAILED_PRECONDITION,
            "job finished has already SUCCEEDED", NULL, rid);
    } else {
        Anvil__V1__Job job;
        char           payload[160];
        canned_job(&job, r->id, payload, sizeof(payload));
        job.state = ANVIL__V1__JOB_STATE__JOB_STATE_CANCELED;
        Anvil__V1__CancelJobResponse rp = ANVIL__V1__CANCEL_JOB_RESPONSE__INIT;
        rp.job                          = &job;
        out                             = reply_with(0, "", &rp.base, rid);
    }
    anvil__v1__cancel_job_request__free_unpacked(r, NULL);
    return out;
}

// ListJobs: `limit` jobs (3 if 0) named <type>-<i> in the filter's state;
// the first page has next_cursor "page2", the one after it none.
static nng_msg *
mock_list(struct mock *m, const Anvil__V1__Request *env)
{
    (void) m;
    uint64_t                    rid = env->request_id;
    Anvil__V1__ListJobsRequest *r   = anvil__v1__list_jobs_request__unpack(
          NULL, env->body.len, env->body.data);
    if (r == NULL)
        return reply_with(ANVIL_INVALID_ARGUMENT, "bad body", NULL, rid);
    enum { MAXJ = 8 };
    Anvil__V1__Job  jobs[MAXJ];
    Anvil__V1__Job *ptrs[MAXJ];
    char            ids[MAXJ][64], payloads[MAXJ][160];
    size_t          n = r->limit == 0 ? 3 : r->limit > MAXJ ? MAXJ : r->limit;
    for (size_t i = 0; i < n; i++) {
        snprintf(
            ids[i], sizeof(ids[i]), "%s-%zu", r->type[0] ? r->type : "any", i);
        canned_job(&jobs[i], ids[i], payloads[i], sizeof(payloads[i]));
        if (r->state != 0)
            jobs[i].state = r->state;
        ptrs[i] = &jobs[i];
    }
    Anvil__V1__ListJobsResponse rp = ANVIL__V1__LIST_JOBS_RESPONSE__INIT;
    rp.jobs                        = ptrs;
    rp.n_jobs                      = n;
    rp.next_cursor                 = r->cursor[0] ? "" : "page2";
    nng_msg *out                   = reply_with(0, "", &rp.base, rid);
    anvil__v1__list_jobs_request__free_unpacked(r, NULL);
    return out;
}

// Poll: worker "parker" is parked for wait_ms and gets nothing; others get
// min(max_jobs, 2) leases L<i> with token i+1 and one parent result.
static nng_msg *
mock_poll(struct mock *m, const Anvil__V1__Request *env)
{
    (void) m;
    uint64_t                rid = env->request_id;
    Anvil__V1__PollRequest *r
        = anvil__v1__poll_request__unpack(NULL, env->body.len, env->body.data);
    if (r == NULL)
        return reply_with(ANVIL_INVALID_ARGUMENT, "bad body", NULL, rid);
    Anvil__V1__Job          jobs[2];
    Anvil__V1__Lease        leases[2], *lptrs[2];
    Anvil__V1__ParentResult parents[2], *pptrs[2];
    char                    ids[2][24], payloads[2][160], results[2][24];
    size_t                  n = r->max_jobs < 2 ? r->max_jobs : 2;
    if (strcmp(r->worker_id, "parker") == 0) {
        nng_msleep((nng_duration) r->wait_ms); // a parked long-poll
        n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof(ids[i]), "L%zu", i);
        canned_job(&jobs[i], ids[i], payloads[i], sizeof(payloads[i]));
        jobs[i].type      = r->n_types > 0 ? r->types[0] : "";
        jobs[i].queue     = r->n_queues > 0 ? r->queues[0] : "default";
        jobs[i].worker_id = r->worker_id;
        Anvil__V1__ParentResult pinit = ANVIL__V1__PARENT_RESULT__INIT;
        parents[i]                    = pinit;
        snprintf(results[i], sizeof(results[i]), "r%zu", i);
        parents[i].step        = "prev";
        parents[i].result.data = (uint8_t *) results[i];
        parents[i].result.len  = strlen(results[i]);
        pptrs[i]               = &parents[i];
        Anvil__V1__Lease linit = ANVIL__V1__LEASE__INIT;
        leases[i]              = linit;
        leases[i].job          = &jobs[i];
        leases[i].token        = (uint32_t) i + 1;
        leases[i].deadline_ms  = 5000 + (int64_t) i;
        leases[i].parents      = &pptrs[i];
        leases[i].n_parents    = 1;
        lptrs[i]               = &leases[i];
    }
    Anvil__V1__PollResponse rp = ANVIL__V1__POLL_RESPONSE__INIT;
    rp.leases                  = lptrs;
    rp.n_leases                = n;
    nng_msg *out               = reply_with(0, "", &rp.base, rid);
    anvil__v1__poll_request__free_unpacked(r, NULL);
    return out;
}

// Heartbeat: token 0 is lost; a job id starting with 'c' was cancelled.
static nng_msg *
mock_heartbeat(struct mock *m, const Anvil__V1__Request *env)
{
    (void) m;
    uint64_t                     rid = env->request_id;
    Anvil__V1__HeartbeatRequest *r   = anvil__v1__heartbeat_request__unpack(
          NULL, env->body.len, env->body.data);
    if (r == NULL)
        return reply_with(ANVIL_INVALID_ARGUMENT, "bad body", NULL, rid);
    char  *canceled[8], *lost[8];
    size_t nc = 0, nl = 0;
    for (size_t i = 0; i < r->n_leases && i < 8; i++) {
        if (r->leases[i]->token == 0)
            lost[nl++] = r->leases[i]->job_id;
        else if (r->leases[i]->job_id[0] == 'c')
            canceled[nc++] = r->leases[i]->job_id;
    }
    Anvil__V1__HeartbeatResponse rp = ANVIL__V1__HEARTBEAT_RESPONSE__INIT;
    rp.canceled                     = canceled;
    rp.n_canceled                   = nc;
    rp.lost                         = lost;
    rp.n_lost                       = nl;
    rp.deadline_ms                  = 9999;
    nng_msg *out                    = reply_with(0, "", &rp.base, rid);
    anvil__v1__heartbeat_request__free_unpacked(r, NULL);
    return out;
}

// Complete: token 0 is stale; the result must be "done".
static nng_msg *
mock_complete(struct mock *m, const Anvil__V1__Request *env)
{
    (void) m;
    uint64_t                    rid = env->request_id;
    Anvil__V1__CompleteRequest *r   = anvil__v1__complete_request__unpack(
          NULL, env->body.len, env->body.data);
    if (r == NULL)
        return reply_with(ANVIL_INVALID_ARGUMENT, "bad body", NULL, rid);
    nng_msg *out;
    if (r->token == 0) {
        out = reply_with(ANVIL_FAILED_PRECONDITION,
            "the lease of this job is no longer held", NULL, rid);
    } else if (r->result.len != 4 || memcmp(r->result.data, "done", 4) != 0) {
        out = reply_with(
            ANVIL_INVALID_ARGUMENT, "unexpected result", NULL, rid);
    } else {
        Anvil__V1__CompleteResponse rp = ANVIL__V1__COMPLETE_RESPONSE__INIT;
        out                            = reply_with(0, "", &rp.base, rid);
    }
    anvil__v1__complete_request__free_unpacked(r, NULL);
    return out;
}

// Fail: a final failure is FAILED, another is SCHEDULED; error is "boom".
static nng_msg *
mock_fail(struct mock *m, const Anvil__V1__Request *env)
{
    (void) m;
    uint64_t                rid = env->request_id;
    Anvil__V1__FailRequest *r
        = anvil__v1__fail_request__unpack(NULL, env->body.len, env->body.data);
    if (r == NULL)
        return reply_with(ANVIL_INVALID_ARGUMENT, "bad body", NULL, rid);
    nng_msg *out;
    if (strcmp(r->error, "boom") != 0) {
        out = reply_with(ANVIL_INVALID_ARGUMENT, "unexpected error", NULL, rid);
    } else {
        Anvil__V1__FailResponse rp = ANVIL__V1__FAIL_RESPONSE__INIT;
        rp.state = r->no_retry ? ANVIL__V1__JOB_STATE__JOB_STATE_FAILED
                               : ANVIL__V1__JOB_STATE__JOB_STATE_SCHEDULED;
        out      = reply_with(0, "", &rp.base, rid);
    }
    anvil__v1__fail_request__free_unpacked(r, NULL);
    return out;
}

static nng_msg *
mock_health(struct mock *m, const Anvil__V1__Request *env)
{
    (void) m;
    Anvil__V1__QueueDepth d[2]
        = { ANVIL__V1__QUEUE_DEPTH__INIT, ANVIL__V1__QUEUE_DEPTH__INIT };
    Anvil__V1__QueueDepth *dp[2] = { &d[0], &d[1] };
    d[0].queue                   = "default";
    d[0].type                    = "Sleep";
    d[0].queued                  = 2;
    d[0].running                 = 1;
    d[1].queue                   = "q2";
    d[1].type                    = "Echo";
    d[1].running                 = 3;
    Anvil__V1__HealthResponse rp = ANVIL__V1__HEALTH_RESPONSE__INIT;
    rp.version                   = "mock-1";
    rp.uptime_ms                 = 1234;
    rp.jobs_total                = 7;
    rp.depths                    = dp;
    rp.n_depths                  = 2;
    return reply_with(0, "", &rp.base, env->request_id);
}

typedef nng_msg *(*mock_fn)(struct mock *, const Anvil__V1__Request *);

static const struct {
    const char *method;
    mock_fn     fn;
} mock_rpcs[] = {
    { "GetJob", mock_get_job },
    { "SubmitJob", mock_submit },
    { "WaitJob", mock_wait },
    { "CancelJob", mock_cancel },
    { "ListJobs", mock_list },
    { "Poll", mock_poll },
    { "Heartbeat", mock_heartbeat },
    { "Complete", mock_complete },
    { "Fail", mock_fail },
    { "Health", mock_health },
};

// The reply to one request envelope, or NULL to leave it unanswered.
static nng_msg *
mock_handle(struct mock *m, nng_msg *msg)
{
    Anvil__V1__Request *env
        = anvil__v1__request__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
    if (env == NULL)
        return reply_with(ANVIL_INVALID_ARGUMENT, "bad envelope", NULL, 0);
    pthread_mutex_lock(&m->mu);
    m->requests++;
    snprintf(m->token, sizeof(m->token), "%s", env->token);
    pthread_mutex_unlock(&m->mu);
    nng_msg *out = NULL;
    size_t   i   = 0;
    for (; i < sizeof(mock_rpcs) / sizeof(mock_rpcs[0]); i++) {
        if (strcmp(env->method, mock_rpcs[i].method) == 0) {
            out = mock_rpcs[i].fn(m, env);
            break;
        }
    }
    if (i == sizeof(mock_rpcs) / sizeof(mock_rpcs[0]))
        out = reply_with(
            ANVIL_UNIMPLEMENTED, "no such rpc", NULL, env->request_id);
    anvil__v1__request__free_unpacked(env, NULL);
    return out;
}

static void *
mock_main(void *arg)
{
    struct mock *m = arg;
    for (;;) {
        pthread_mutex_lock(&m->mu);
        nng_socket s    = m->sock;
        bool       stop = m->stop;
        pthread_mutex_unlock(&m->mu);
        if (stop)
            break;
        nng_msg *msg;
        if (nng_recvmsg(s, &msg, 0) != 0)
            continue; // closed by a restart or by mock_stop()
        nng_msg *out = mock_handle(m, msg);
        nng_msg_free(msg);
        if (out != NULL && nng_sendmsg(s, out, 0) != 0)
            nng_msg_free(out);
    }
    return NULL;
}

static struct mock *
mock_start(const char *url)
{
    struct mock *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    snprintf(m->url, sizeof(m->url), "%s", url);
    pthread_mutex_init(&m->mu, NULL);
    if (mock_listen(m) != 0
        || pthread_create(&m->thread, NULL, mock_main, m) != 0) {
        pthread_mutex_destroy(&m->mu);
        free(m);
        return NULL;
    }
    return m;
}

static void
mock_stop(struct mock *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    nng_close(m->sock);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static int
mock_count(struct mock *m, const int *field)
{
    pthread_mutex_lock(&m->mu);
    int v = *field;
    pthread_mutex_unlock(&m->mu);
    return v;
}

// ---- fixtures ----

struct fx {
    char          dir[64];
    char          url[128];
    struct mock  *m; // NULL when the test runs without a server
    anvil_client *c;
};

static int
setup_dir(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/anvil-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->url, sizeof(f->url), "ipc://%s/s", f->dir);
    *state = f;
    return 0;
}

static int
setup_server(void **state)
{
    if (setup_dir(state) != 0)
        return -1;
    struct fx *f = *state;
    f->m         = mock_start(f->url);
    if (f->m == NULL)
        return -1;
    if (anvil_client_open(&f->c, f->url, NULL) != ANVIL_OK)
        return -1;
    anvil_client_set_timeout(f->c, 5000, NULL);
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    anvil_client_close(f->c);
    mock_stop(f->m);
    char path[160];
    snprintf(path, sizeof(path), "%s/s", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

#define FX(state) ((struct fx *) *(state))

// ---- job states ----

static void
test_job_state_names_round_trip_through_parse(void **state)
{
    (void) state;
    for (int s = ANVIL_JOB_UNSPECIFIED; s <= ANVIL_JOB_CANCELED; s++) {
        enum anvil_job_state got = ANVIL_JOB_UNSPECIFIED;
        assert_int_equal(
            anvil_job_state_parse(anvil_job_state_name(s), &got), ANVIL_OK);
        assert_int_equal(got, s);
    }
    enum anvil_job_state got = ANVIL_JOB_UNSPECIFIED;
    assert_int_equal(anvil_job_state_parse("queued", &got), ANVIL_OK);
    assert_int_equal(got, ANVIL_JOB_QUEUED);
    assert_int_equal(anvil_job_state_parse("Cancelled", &got), ANVIL_OK);
    assert_int_equal(got, ANVIL_JOB_CANCELED);
    assert_string_equal(anvil_job_state_name(ANVIL_JOB_SUCCEEDED), "SUCCEEDED");
}

static void
test_job_state_parse_rejects_unknown_names(void **state)
{
    (void) state;
    enum anvil_job_state got = ANVIL_JOB_RUNNING;
    assert_int_equal(
        anvil_job_state_parse("DONE", &got), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(anvil_job_state_parse("", &got), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_job_state_parse("queued ", &got), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(anvil_job_state_parse(NULL, &got), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_job_state_parse("QUEUED", NULL), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(got, ANVIL_JOB_RUNNING);
    assert_string_equal(anvil_job_state_name(99), "UNSPECIFIED");
    assert_string_equal(anvil_job_state_name(-1), "UNSPECIFIED");
}

static void
test_job_state_final_is_true_only_for_final_states(void **state)
{
    (void) state;
    assert_true(anvil_job_state_final(ANVIL_JOB_SUCCEEDED));
    assert_true(anvil_job_state_final(ANVIL_JOB_FAILED));
    assert_true(anvil_job_state_final(ANVIL_JOB_CANCELED));
    assert_false(anvil_job_state_final(ANVIL_JOB_UNSPECIFIED));
    assert_false(anvil_job_state_final(ANVIL_JOB_PENDING));
    assert_false(anvil_job_state_final(ANVIL_JOB_SCHEDULED));
    assert_false(anvil_job_state_final(ANVIL_JOB_QUEUED));
    assert_false(anvil_job_state_final(ANVIL_JOB_RUNNING));
    assert_false(anvil_job_state_final(99));
}

// ---- opening ----

static void
test_client_open_rejects_bad_urls(void **state)
{
    (void) state;
    static const char *const bad[] = { "", "nope", "foo://bar",
        "tcp://127.0.0.1", "tcp://", "ipc://", "http://127.0.0.1:7700" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        anvil_client      *c   = (anvil_client *) &c;
        struct anvil_error err = { 0 };
        int                rc  = anvil_client_open(&c, bad[i], &err);
        if (rc != ANVIL_INVALID_ARGUMENT || c != NULL)
            fail_msg("url \"%s\": %s", bad[i], anvil_code_name(rc));
        assert_int_equal(err.code, ANVIL_INVALID_ARGUMENT);
        if (bad[i][0] != '\0')
            assert_non_null(strstr(err.msg, bad[i]));
    }
    assert_int_equal(anvil_client_open(NULL, "tcp://127.0.0.1:7700", NULL),
        ANVIL_INVALID_ARGUMENT);
}

static void
test_client_open_uses_anvil_server_when_url_is_null(void **state)
{
    struct fx         *f = FX(state);
    anvil_client      *c;
    struct anvil_error err = { 0 };
    setenv("ANVIL_SERVER", "bogus-url", 1);
    int rc = anvil_client_open(&c, NULL, &err);
    unsetenv("ANVIL_SERVER");
    assert_int_equal(rc, ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "bogus-url"));

    setenv("ANVIL_SERVER", f->url, 1);
    rc = anvil_client_open(&c, NULL, &err);
    unsetenv("ANVIL_SERVER");
    assert_int_equal(rc, ANVIL_OK);
    struct anvil_health *h;
    assert_int_equal(anvil_health_get(c, &h, &err), ANVIL_OK);
    assert_string_equal(h->version, "mock-1");
    anvil_health_free(h);
    anvil_client_close(c);
}

static void
test_client_calls_without_server_fail_within_their_timeout(void **state)
{
    struct fx         *f = FX(state);
    anvil_client      *c;
    struct anvil_error err = { 0 };
    char               nobody[160];
    snprintf(nobody, sizeof(nobody), "ipc://%s/nobody", f->dir);
    assert_int_equal(anvil_client_open(&c, nobody, &err), ANVIL_OK);
    anvil_client_set_timeout(c, 300, NULL);

    int64_t              t0 = av_mono_ms();
    struct anvil_health *h  = (struct anvil_health *) &h;
    int                  rc = anvil_health_get(c, &h, &err);
    int64_t              ms = av_mono_ms() - t0;
    assert_true(rc == ANVIL_UNAVAILABLE || rc == ANVIL_DEADLINE_EXCEEDED);
    assert_int_equal(err.code, rc);
    assert_null(h);
    assert_non_null(strstr(err.msg, nobody));
    assert_non_null(strstr(err.msg, "running?"));
    assert_true(ms >= 250 && ms < 2000);

    char *id = (char *) &id;
    rc       = anvil_job_submit(c, "Sleep", "{}", 2, NULL, &id, NULL, &err);
    assert_true(rc == ANVIL_UNAVAILABLE || rc == ANVIL_DEADLINE_EXCEEDED);
    assert_null(id);
    anvil_client_close(c);
}

static void
test_client_connect_timeout_says_nothing_listens_within_it(void **state)
{
    struct fx         *f = FX(state);
    anvil_client      *c;
    struct anvil_error err = { 0 };
    char               nobody[160];
    snprintf(nobody, sizeof(nobody), "ipc://%s/nobody", f->dir);
    assert_int_equal(anvil_client_open(&c, nobody, &err), ANVIL_OK);
    assert_int_equal(anvil_client_set_timeout(c, 10000, &err), ANVIL_OK);
    assert_int_equal(anvil_client_set_connect_timeout(c, 200, &err), ANVIL_OK);

    int64_t              t0 = av_mono_ms();
    struct anvil_health *h  = NULL;
    int                  rc = anvil_health_get(c, &h, &err);
    int64_t              ms = av_mono_ms() - t0;
    assert_int_equal(rc, ANVIL_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "nothing listens at "));
    assert_non_null(strstr(err.msg, nobody));
    assert_true(ms >= 150 && ms < 2000); // not the 10 s of the call timeout
    anvil_client_close(c);
}

static void
test_client_connect_timeout_ends_with_the_first_connection(void **state)
{
    struct fx         *f   = FX(state);
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_client_open(&f->c, f->url, &err), ANVIL_OK);
    assert_int_equal(anvil_client_set_timeout(f->c, 900, &err), ANVIL_OK);
    assert_int_equal(
        anvil_client_set_connect_timeout(f->c, 100, &err), ANVIL_OK);
    f->m = mock_start(f->url);
    assert_non_null(f->m);
    struct anvil_health *h = NULL;
    assert_int_equal(anvil_health_get(f->c, &h, &err), ANVIL_OK);
    anvil_health_free(h);
    // Connected once, the client waits out a lost server like any other.
    mock_stop(f->m);
    f->m       = NULL;
    int64_t t0 = av_mono_ms();
    int     rc = anvil_health_get(f->c, &h, &err);
    int64_t ms = av_mono_ms() - t0;
    assert_true(rc == ANVIL_UNAVAILABLE || rc == ANVIL_DEADLINE_EXCEEDED);
    assert_null(strstr(err.msg, "nothing listens"));
    assert_true(ms >= 800);
}

static void
test_client_reaches_a_server_that_starts_after_open(void **state)
{
    struct fx         *f   = FX(state);
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_client_open(&f->c, f->url, &err), ANVIL_OK);
    f->m = mock_start(f->url);
    assert_non_null(f->m);
    struct anvil_health *h;
    assert_int_equal(anvil_health_get(f->c, &h, &err), ANVIL_OK);
    assert_int_equal(h->jobs_total, 7);
    anvil_health_free(h);
}

// ---- jobs ----

static void
test_client_submit_sends_its_fields_and_returns_the_id(void **state)
{
    struct fx            *f    = FX(state);
    struct anvil_job_opts opts = { 0 };
    opts.queue                 = "q1";
    opts.priority              = 7;
    char              *id;
    bool               existed = true;
    struct anvil_error err     = { 0 };
    assert_int_equal(
        anvil_job_submit(f->c, "Sleep", "hello", 5, &opts, &id, &existed, &err),
        ANVIL_OK);
    assert_string_equal(id, "j-Sleep-5-q1-7");
    assert_false(existed);
    anvil_free(id);

    // No opts, no payload, no outputs wanted.
    assert_int_equal(
        anvil_job_submit(f->c, "Sleep", NULL, 0, NULL, NULL, NULL, &err),
        ANVIL_OK);
}

static void
test_client_submit_reports_a_seen_idempotency_key(void **state)
{
    struct fx            *f       = FX(state);
    struct anvil_job_opts opts    = { .idempotency_key = "order-1" };
    bool                  existed = false;
    char                 *id;
    assert_int_equal(
        anvil_job_submit(f->c, "Sleep", "x", 1, &opts, &id, &existed, NULL),
        ANVIL_OK);
    assert_true(existed);
    assert_string_equal(id, "j-Sleep-1--0");
    anvil_free(id);
}

static void
test_client_submit_passes_the_servers_invalid_argument_unchanged(void **state)
{
    struct fx         *f   = FX(state);
    char              *id  = (char *) &id;
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_job_submit(f->c, "", "x", 1, NULL, &id, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_null(id);
    assert_string_equal(err.msg, "type: must match [A-Za-z0-9_.-]{1,128}");
}

static void
test_client_submit_rejects_missing_type_and_payload_bytes(void **state)
{
    struct fx         *f   = FX(state);
    struct anvil_error err = { 0 };
    assert_int_equal(
        anvil_job_submit(f->c, NULL, "x", 1, NULL, NULL, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "type"));
    assert_int_equal(
        anvil_job_submit(f->c, "Sleep", NULL, 5, NULL, NULL, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "payload"));
    assert_int_equal(mock_count(f->m, &f->m->requests), 0);
}

static void
test_client_get_returns_the_job_with_nul_terminated_bytes(void **state)
{
    struct fx         *f = FX(state);
    struct anvil_job  *j;
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_job_get(f->c, "j42", &j, &err), ANVIL_OK);
    assert_string_equal(j->id, "j42");
    assert_string_equal(j->type, "echo");
    assert_int_equal(j->payload_len, 5);
    assert_memory_equal(j->payload, "p:j42", 6); // with the NUL after it
    assert_int_equal(j->state, ANVIL_JOB_RUNNING);
    assert_int_equal(j->attempt, 1);
    assert_int_equal(j->retry.max_attempts, 3);
    assert_int_equal(j->created_at_ms, 1000);
    assert_string_equal(j->worker_id, "w1");
    // Unset strings and bytes are "" and never NULL.
    assert_non_null(j->result);
    assert_int_equal(j->result_len, 0);
    assert_int_equal(j->result[0], '\0');
    assert_string_equal(j->error, "");
    assert_string_equal(j->workflow_id, "");
    assert_string_equal(j->step, "");
    assert_string_equal(j->idempotency_key, "");
    anvil_job_free(j);
}

static void
test_client_get_returns_a_steps_workflow_and_parents(void **state)
{
    struct fx        *f = FX(state);
    struct anvil_job *j;
    assert_int_equal(anvil_job_get(f->c, "step-7", &j, NULL), ANVIL_OK);
    assert_string_equal(j->workflow_id, "w3");
    assert_string_equal(j->step, "step-7");
    assert_int_equal(j->n_after, 2);
    assert_string_equal(j->after[0], "fetch");
    assert_string_equal(j->after[1], "resize");
    anvil_job_free(j);
    assert_int_equal(anvil_job_get(f->c, "j1", &j, NULL), ANVIL_OK);
    assert_int_equal(j->n_after, 0);
    assert_null(j->after);
    anvil_job_free(j);
}

static void
test_client_get_passes_not_found_unchanged(void **state)
{
    struct fx         *f   = FX(state);
    struct anvil_job  *j   = (struct anvil_job *) &j;
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_job_get(f->c, "missing", &j, &err), ANVIL_NOT_FOUND);
    assert_null(j);
    assert_int_equal(err.code, ANVIL_NOT_FOUND);
    assert_string_equal(err.msg, "no job with id \"missing\"");
}

static void
test_client_get_with_a_body_that_does_not_decode_is_internal(void **state)
{
    struct fx         *f = FX(state);
    struct anvil_job  *j;
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_job_get(f->c, "garbage", &j, &err), ANVIL_INTERNAL);
    assert_null(j);
    assert_non_null(strstr(err.msg, "could not decode"));
    assert_non_null(strstr(err.msg, "GetJob"));
}

static void
test_client_get_with_a_reply_that_is_no_envelope_is_internal(void **state)
{
    struct fx         *f = FX(state);
    struct anvil_job  *j;
    struct anvil_error err = { 0 };
    assert_int_equal(
        anvil_job_get(f->c, "notenvelope", &j, &err), ANVIL_INTERNAL);
    assert_null(j);
    assert_non_null(strstr(err.msg, "anvil.v1.Reply"));
}

static void
test_client_get_with_an_unknown_code_is_unknown(void **state)
{
    struct fx         *f = FX(state);
    struct anvil_job  *j;
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_job_get(f->c, "badcode", &j, &err), ANVIL_UNKNOWN);
    assert_non_null(strstr(err.msg, "from the future"));
}

static void
test_client_get_with_a_reply_without_job_is_internal(void **state)
{
    struct fx         *f = FX(state);
    struct anvil_job  *j;
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_job_get(f->c, "nojob", &j, &err), ANVIL_INTERNAL);
    assert_null(j);
    assert_non_null(strstr(err.msg, "no job"));
}

static void
test_client_get_rejects_missing_ids_without_calling(void **state)
{
    struct fx         *f = FX(state);
    struct anvil_job  *j;
    struct anvil_error err = { 0 };
    assert_int_equal(
        anvil_job_get(f->c, NULL, &j, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "NULL"));
    assert_int_equal(anvil_job_get(f->c, "", &j, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "empty"));
    assert_int_equal(
        anvil_job_get(f->c, "j1", NULL, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(mock_count(f->m, &f->m->requests), 0);
}

static void
test_client_wait_returns_the_finished_job(void **state)
{
    struct fx         *f = FX(state);
    struct anvil_job  *j;
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_job_wait(f->c, "done", 1000, &j, &err), ANVIL_OK);
    assert_int_equal(j->state, ANVIL_JOB_SUCCEEDED);
    assert_int_equal(j->result_len, 2);
    assert_string_equal((char *) j->result, "42");
    anvil_job_free(j);
}

static void
test_client_wait_that_times_out_returns_the_job_as_it_is(void **state)
{
    struct fx         *f = FX(state);
    struct anvil_job  *j;
    struct anvil_error err = { 0 };
    assert_int_equal(
        anvil_job_wait(f->c, "j5", 10, &j, &err), ANVIL_DEADLINE_EXCEEDED);
    assert_non_null(j);
    assert_int_equal(j->state, ANVIL_JOB_RUNNING);
    assert_non_null(strstr(err.msg, "j5"));
    assert_non_null(strstr(err.msg, "RUNNING"));
    anvil_job_free(j);
}

static void
test_client_wait_without_a_limit_polls_until_the_job_ends(void **state)
{
    struct fx         *f = FX(state);
    struct anvil_job  *j;
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_job_wait(f->c, "slow3", 0, &j, &err), ANVIL_OK);
    assert_int_equal(j->state, ANVIL_JOB_SUCCEEDED);
    anvil_job_free(j);
    pthread_mutex_lock(&f->m->mu);
    int      waits = f->m->slow_waits;
    uint32_t max   = f->m->wait_max_ms;
    pthread_mutex_unlock(&f->m->mu);
    assert_int_equal(waits, 3);
    assert_int_equal(max, CLIENT_WAIT_CHUNK_MS);
}

static void
test_client_wait_longer_than_a_server_poll_is_made_of_chunks(void **state)
{
    struct fx         *f = FX(state);
    struct anvil_job  *j;
    struct anvil_error err = { 0 };
    // The server refuses a WaitJob above 300 s; the SDK never asks one.
    assert_int_equal(
        anvil_job_wait(f->c, "slow3", 3600 * 1000, &j, &err), ANVIL_OK);
    assert_int_equal(j->state, ANVIL_JOB_SUCCEEDED);
    anvil_job_free(j);
    pthread_mutex_lock(&f->m->mu);
    uint32_t max = f->m->wait_max_ms;
    pthread_mutex_unlock(&f->m->mu);
    assert_true(max > 0 && max <= CLIENT_WAIT_CHUNK_MS);
}

static void
test_client_wait_rejects_a_negative_timeout(void **state)
{
    struct fx         *f = FX(state);
    struct anvil_job  *j;
    struct anvil_error err = { 0 };
    assert_int_equal(
        anvil_job_wait(f->c, "j5", -1, &j, &err), ANVIL_INVALID_ARGUMENT);
    assert_null(j);
    assert_non_null(strstr(err.msg, "timeout"));
}

static void
test_client_cancel_returns_the_canceled_job(void **state)
{
    struct fx         *f = FX(state);
    struct anvil_job  *j;
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_job_cancel(f->c, "j6", &j, &err), ANVIL_OK);
    assert_int_equal(j->state, ANVIL_JOB_CANCELED);
    anvil_job_free(j);
    assert_int_equal(anvil_job_cancel(f->c, "j6", NULL, &err), ANVIL_OK);
}

static void
test_client_cancel_of_a_finished_job_is_failed_precondition(void **state)
{
    struct fx         *f   = FX(state);
    struct anvil_job  *j   = (struct anvil_job *) &j;
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_job_cancel(f->c, "finished", &j, &err),
        ANVIL_FAILED_PRECONDITION);
    assert_null(j);
    assert_string_equal(err.msg, "job finished has already SUCCEEDED");
    assert_int_equal(
        anvil_job_cancel(f->c, NULL, NULL, &err), ANVIL_INVALID_ARGUMENT);
}

static void
test_client_list_returns_jobs_and_the_next_cursor(void **state)
{
    struct fx             *f = FX(state);
    struct anvil_job_list *l;
    struct anvil_error     err = { 0 };
    assert_int_equal(anvil_job_list(f->c, NULL, &l, &err), ANVIL_OK);
    assert_int_equal(l->n, 3);
    assert_string_equal(l->jobs[2].id, "any-2");
    assert_string_equal(l->next_cursor, "page2");
    anvil_job_list_free(l);

    struct anvil_job_filter filt = { 0 };
    filt.state                   = ANVIL_JOB_QUEUED;
    filt.type                    = "Sleep";
    filt.limit                   = 5;
    filt.cursor                  = "page2";
    assert_int_equal(anvil_job_list(f->c, &filt, &l, &err), ANVIL_OK);
    assert_int_equal(l->n, 5);
    assert_string_equal(l->jobs[4].id, "Sleep-4");
    assert_int_equal(l->jobs[4].state, ANVIL_JOB_QUEUED);
    assert_string_equal(l->next_cursor, "");
    anvil_job_list_free(l);
}

static void
test_client_list_rejects_a_missing_out(void **state)
{
    struct fx         *f   = FX(state);
    struct anvil_error err = { 0 };
    assert_int_equal(
        anvil_job_list(f->c, NULL, NULL, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "out"));
}

static void
test_client_health_returns_version_and_depths(void **state)
{
    struct fx           *f = FX(state);
    struct anvil_health *h;
    assert_int_equal(anvil_health_get(f->c, &h, NULL), ANVIL_OK);
    assert_string_equal(h->version, "mock-1");
    assert_int_equal(h->uptime_ms, 1234);
    assert_int_equal(h->n_depths, 2);
    assert_string_equal(h->depths[0].type, "Sleep");
    assert_int_equal(h->depths[0].queued, 2);
    assert_string_equal(h->depths[1].queue, "q2");
    assert_int_equal(h->depths[1].running, 3);
    anvil_health_free(h);
    assert_int_equal(
        anvil_health_get(f->c, NULL, NULL), ANVIL_INVALID_ARGUMENT);
}

// ---- worker calls ----

static void
test_client_poll_returns_leases_with_parent_results(void **state)
{
    struct fx               *f        = FX(state);
    const char *const        queues[] = { "q1" };
    const char *const        types[]  = { "Sleep", "Echo" };
    struct anvil_poll_req    req      = { .worker_id = "w7",
                .queues                              = queues,
                .n_queues                            = 1,
                .types                               = types,
                .n_types                             = 2,
                .max_jobs                            = 4 };
    struct anvil_lease_list *ls;
    struct anvil_error       err = { 0 };
    assert_int_equal(anvil_lease_poll(f->c, &req, &ls, &err), ANVIL_OK);
    assert_int_equal(ls->n, 2);
    const struct anvil_lease *l = &ls->leases[1];
    assert_string_equal(l->job.id, "L1");
    assert_string_equal(l->job.type, "Sleep");
    assert_string_equal(l->job.queue, "q1");
    assert_string_equal(l->job.worker_id, "w7");
    assert_int_equal(l->token, 2);
    assert_int_equal(l->deadline_ms, 5001);
    assert_int_equal(l->n_parents, 1);
    assert_string_equal(l->parents[0].step, "prev");
    assert_int_equal(l->parents[0].result_len, 2);
    assert_string_equal((char *) l->parents[0].result, "r1");
    anvil_lease_list_free(ls);
}

static void
test_client_poll_rejects_bad_requests_without_calling(void **state)
{
    struct fx               *f      = FX(state);
    const char *const        none[] = { NULL };
    struct anvil_poll_req    ok     = { .worker_id = "w", .max_jobs = 1 };
    struct anvil_lease_list *ls;
    struct anvil_error       err = { 0 };
    struct anvil_poll_req    r   = ok;
    r.worker_id                  = NULL;
    assert_int_equal(
        anvil_lease_poll(f->c, &r, &ls, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "worker_id"));
    assert_null(ls);
    r          = ok;
    r.max_jobs = 0;
    assert_int_equal(
        anvil_lease_poll(f->c, &r, &ls, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "max_jobs"));
    r         = ok;
    r.n_types = 1;
    assert_int_equal(
        anvil_lease_poll(f->c, &r, &ls, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "types"));
    r          = ok;
    r.queues   = none;
    r.n_queues = 1;
    assert_int_equal(
        anvil_lease_poll(f->c, &r, &ls, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "queues[0]"));
    assert_int_equal(
        anvil_lease_poll(f->c, NULL, &ls, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_lease_poll(f->c, &ok, NULL, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "out is NULL"));
    assert_int_equal(mock_count(f->m, &f->m->requests), 0);
}

static void
test_client_poll_waits_past_the_call_timeout_for_its_long_poll(void **state)
{
    struct fx *f = FX(state);
    anvil_client_set_timeout(f->c, 200, NULL);
    struct anvil_poll_req req
        = { .worker_id = "parker", .max_jobs = 1, .wait_ms = 600 };
    struct anvil_lease_list *ls;
    struct anvil_error       err = { 0 };
    int64_t                  t0  = av_mono_ms();
    assert_int_equal(anvil_lease_poll(f->c, &req, &ls, &err), ANVIL_OK);
    assert_true(av_mono_ms() - t0 >= 550);
    assert_non_null(ls); // an empty list, not NULL
    assert_int_equal(ls->n, 0);
    anvil_lease_list_free(ls);
}

static void
test_client_complete_succeeds_and_a_stale_token_is_refused(void **state)
{
    struct fx         *f   = FX(state);
    struct anvil_error err = { 0 };
    assert_int_equal(
        anvil_job_complete(f->c, "L0", 1, "done", 4, &err), ANVIL_OK);
    assert_int_equal(anvil_job_complete(f->c, "L0", 0, "done", 4, &err),
        ANVIL_FAILED_PRECONDITION);
    assert_string_equal(err.msg, "the lease of this job is no longer held");
    assert_int_equal(anvil_job_complete(f->c, "L0", 1, NULL, 4, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "result"));
    assert_int_equal(anvil_job_complete(f->c, NULL, 1, NULL, 0, &err),
        ANVIL_INVALID_ARGUMENT);
}

static void
test_client_fail_reports_the_jobs_next_state(void **state)
{
    struct fx           *f   = FX(state);
    enum anvil_job_state st  = ANVIL_JOB_UNSPECIFIED;
    struct anvil_error   err = { 0 };
    assert_int_equal(
        anvil_job_fail(f->c, "L0", 1, "boom", true, &st, &err), ANVIL_OK);
    assert_int_equal(st, ANVIL_JOB_SCHEDULED);
    assert_int_equal(
        anvil_job_fail(f->c, "L0", 1, "boom", false, &st, &err), ANVIL_OK);
    assert_int_equal(st, ANVIL_JOB_FAILED);
    assert_int_equal(anvil_job_fail(f->c, "L0", 1, NULL, false, &st, &err),
        ANVIL_INVALID_ARGUMENT); // the mock wants "boom"; NULL sends ""
    assert_int_equal(st, ANVIL_JOB_UNSPECIFIED);
    assert_int_equal(anvil_job_fail(f->c, "", 1, "boom", false, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
}

static void
test_client_heartbeat_returns_canceled_and_lost_ids(void **state)
{
    struct fx                     *f      = FX(state);
    const struct anvil_lease_ref   refs[] = { { .job_id = "a1", .token = 1 },
          { .job_id = "c2", .token = 1 }, { .job_id = "b3", .token = 0 } };
    struct anvil_heartbeat_result *r;
    struct anvil_error             err = { 0 };
    assert_int_equal(
        anvil_lease_heartbeat(f->c, "w1", refs, 3, &r, &err), ANVIL_OK);
    assert_int_equal(r->n_canceled, 1);
    assert_string_equal(r->canceled[0], "c2");
    assert_int_equal(r->n_lost, 1);
    assert_string_equal(r->lost[0], "b3");
    anvil_heartbeat_result_free(r);
    // The result is optional; no leases is fine.
    assert_int_equal(
        anvil_lease_heartbeat(f->c, "w1", refs, 3, NULL, &err), ANVIL_OK);
    assert_int_equal(
        anvil_lease_heartbeat(f->c, "w1", NULL, 0, &r, &err), ANVIL_OK);
    assert_int_equal(r->n_canceled, 0);
    assert_null(r->canceled);
    assert_int_equal(r->n_lost, 0);
    assert_null(r->lost);
    anvil_heartbeat_result_free(r);
}

static void
test_client_heartbeat_rejects_bad_arguments_without_calling(void **state)
{
    struct fx                     *f     = FX(state);
    const struct anvil_lease_ref   bad[] = { { .job_id = NULL, .token = 1 } };
    struct anvil_heartbeat_result *r     = NULL;
    struct anvil_error             err   = { 0 };
    assert_int_equal(anvil_lease_heartbeat(f->c, NULL, NULL, 0, &r, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "worker_id"));
    assert_null(r);
    assert_int_equal(anvil_lease_heartbeat(f->c, "w1", bad, 1, &r, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "refs[0]"));
    assert_int_equal(anvil_lease_heartbeat(f->c, "w1", NULL, 1, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_int_equal(mock_count(f->m, &f->m->requests), 0);
}

// ---- the client as a whole ----

static void
test_client_sends_its_token_in_every_envelope(void **state)
{
    struct fx    *f = FX(state);
    anvil_client *c;
    setenv("ANVIL_TOKEN", "from-env", 1);
    int rc = anvil_client_open(&c, f->url, NULL);
    unsetenv("ANVIL_TOKEN");
    assert_int_equal(rc, ANVIL_OK);
    struct anvil_health *h;
    assert_int_equal(anvil_health_get(c, &h, NULL), ANVIL_OK);
    anvil_health_free(h);
    pthread_mutex_lock(&f->m->mu);
    assert_string_equal(f->m->token, "from-env");
    pthread_mutex_unlock(&f->m->mu);

    assert_int_equal(anvil_client_set_token(c, "s3cret", NULL), ANVIL_OK);
    assert_int_equal(anvil_health_get(c, &h, NULL), ANVIL_OK);
    anvil_health_free(h);
    pthread_mutex_lock(&f->m->mu);
    assert_string_equal(f->m->token, "s3cret");
    pthread_mutex_unlock(&f->m->mu);
    anvil_client_close(c);
    assert_int_equal(
        anvil_client_set_token(NULL, "x", NULL), ANVIL_INVALID_ARGUMENT);
}

static void
test_client_call_without_reply_is_deadline_exceeded(void **state)
{
    struct fx *f = FX(state);
    anvil_client_set_timeout(f->c, 300, NULL);
    struct anvil_job  *j;
    struct anvil_error err = { 0 };
    int64_t            t0  = av_mono_ms();
    assert_int_equal(
        anvil_job_get(f->c, "hang", &j, &err), ANVIL_DEADLINE_EXCEEDED);
    int64_t ms = av_mono_ms() - t0;
    assert_true(ms >= 250 && ms < 2000);
    assert_null(j);
    assert_non_null(strstr(err.msg, "no reply to GetJob"));
    assert_non_null(strstr(err.msg, "300 ms"));
}

static void
test_client_resends_with_the_same_id_to_a_restarted_server(void **state)
{
    struct fx         *f = FX(state);
    struct anvil_job  *j;
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_job_get(f->c, "restart", &j, &err), ANVIL_OK);
    assert_string_equal(j->id, "restart");
    anvil_job_free(j);
    pthread_mutex_lock(&f->m->mu);
    int      seen = f->m->restart_seen;
    uint64_t id0 = f->m->restart_ids[0], id1 = f->m->restart_ids[1];
    pthread_mutex_unlock(&f->m->mu);
    assert_int_equal(seen, 2);
    assert_true(id0 != 0);
    assert_true(id0 == id1);
}

enum { THREADS = 8, CALLS = 200 };

struct hammer {
    anvil_client *c;
    int           t;
    int           ok;     // calls whose reply matched their own request
    int           failed; // calls that failed or got another's reply
    char          why[400];
};

static void *
hammer_main(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < CALLS; i++) {
        char id[32], want[40];
        snprintf(id, sizeof(id), "t%d-%d", h->t, i);
        snprintf(want, sizeof(want), "p:%s", id);
        struct anvil_job  *j;
        struct anvil_error err = { 0 };
        int                rc  = anvil_job_get(h->c, id, &j, &err);
        if (rc == ANVIL_OK && strcmp(j->id, id) == 0
            && strcmp((char *) j->payload, want) == 0) {
            h->ok++;
        } else {
            h->failed++;
            snprintf(h->why, sizeof(h->why), "%s: %s %s", id,
                anvil_code_name(rc), err.msg);
        }
        if (rc == ANVIL_OK)
            anvil_job_free(j);
    }
    return NULL;
}

static void
test_client_is_safe_to_share_between_threads(void **state)
{
    struct fx    *f = FX(state);
    struct hammer h[THREADS];
    pthread_t     t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        h[i] = (struct hammer) { .c = f->c, .t = i };
        assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        if (h[i].failed > 0)
            fail_msg("thread %d: %d calls failed, last %s", i, h[i].failed,
                h[i].why);
        ok += h[i].ok;
    }
    assert_int_equal(ok, THREADS * CALLS);
    assert_int_equal(mock_count(f->m, &f->m->requests), THREADS * CALLS);
}

struct parked_call {
    anvil_client      *c;
    int                rc;
    struct anvil_error err;
};

static void *
inflight_main(void *arg)
{
    struct parked_call *in = arg;
    struct anvil_job   *j  = NULL;
    in->rc                 = anvil_job_get(in->c, "hang", &j, &in->err);
    anvil_job_free(j);
    return NULL;
}

static void
test_client_close_fails_calls_in_flight_with_unavailable(void **state)
{
    struct fx *f = FX(state);
    anvil_client_set_timeout(f->c, 30000, NULL);
    struct parked_call in = { .c = f->c, .rc = -1 };
    pthread_t          t;
    assert_int_equal(pthread_create(&t, NULL, inflight_main, &in), 0);
    int64_t deadline = av_mono_ms() + 5000;
    while (mock_count(f->m, &f->m->hangs) < 1 && av_mono_ms() < deadline)
        nng_msleep(2);
    assert_int_equal(mock_count(f->m, &f->m->hangs), 1);
    int64_t t0 = av_mono_ms();
    anvil_client_close(f->c);
    f->c = NULL;
    pthread_join(t, NULL);
    assert_true(av_mono_ms() - t0 < 5000);
    assert_int_equal(in.rc, ANVIL_UNAVAILABLE);
    assert_non_null(strstr(in.err.msg, "closed"));
}

static void
test_client_null_client_is_invalid_argument_everywhere(void **state)
{
    (void) state;
    struct anvil_error       err = { 0 };
    struct anvil_job        *j;
    struct anvil_job_list   *l;
    struct anvil_health     *h;
    struct anvil_lease_list *ls;
    enum anvil_job_state     st;
    struct anvil_poll_req    req = { .worker_id = "w", .max_jobs = 1 };
    assert_int_equal(
        anvil_job_submit(NULL, "T", NULL, 0, NULL, NULL, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "anvil_job_submit"));
    assert_int_equal(
        anvil_job_get(NULL, "j", &j, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "client is NULL"));
    assert_int_equal(
        anvil_job_wait(NULL, "j", 0, &j, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_job_cancel(NULL, "j", &j, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_job_list(NULL, NULL, &l, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(anvil_health_get(NULL, &h, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_lease_poll(NULL, &req, &ls, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(anvil_job_complete(NULL, "j", 1, NULL, 0, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_int_equal(anvil_job_fail(NULL, "j", 1, "e", true, &st, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_int_equal(anvil_lease_heartbeat(NULL, "w", NULL, 0, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    struct anvil_tls                 tls = { .ca_file = "ca.crt" };
    struct anvil_worker_info         wi  = { 0 };
    struct anvil_token              *tk;
    struct anvil_worker_status_list *ws;
    struct anvil_token_list         *tl;
    char                            *secret;
    assert_int_equal(
        anvil_client_set_tls(NULL, &tls, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_client_set_worker_info(NULL, &wi, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_token_create(NULL, ANVIL_ROLE_ADMIN, "n", 0, &tk, &secret, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "anvil_token_create"));
    assert_int_equal(anvil_token_list(NULL, &tl, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_token_revoke(NULL, "t1", &tk, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_worker_status_list(NULL, &ws, &err), ANVIL_INVALID_ARGUMENT);
    // Every free function takes NULL; close ignores it and every setter
    // refuses it.
    anvil_token_free(NULL);
    anvil_token_list_free(NULL);
    anvil_worker_status_list_free(NULL);
    anvil_free(NULL);
    anvil_job_free(NULL);
    anvil_job_list_free(NULL);
    anvil_health_free(NULL);
    anvil_lease_list_free(NULL);
    anvil_heartbeat_result_free(NULL);
    assert_int_equal(
        anvil_client_set_timeout(NULL, 5, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(anvil_client_set_connect_timeout(NULL, 5, &err),
        ANVIL_INVALID_ARGUMENT);
    anvil_client_close(NULL);
}

static void
test_client_new_calls_reject_bad_arguments_without_calling(void **state)
{
    (void) state;
    anvil_client      *c   = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(
        anvil_client_open(&c, "tcp://127.0.0.1:1", &err), ANVIL_OK);
    struct anvil_token *tk     = (struct anvil_token *) 1;
    char               *secret = (char *) 1;
    assert_int_equal(anvil_token_create(c, 0, "n", 0, &tk, &secret, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "role 0"));
    assert_null(tk);
    assert_null(secret);
    assert_int_equal(anvil_token_create(
                         c, ANVIL_ROLE_READER + 1, NULL, 0, &tk, &secret, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_token_create(c, ANVIL_ROLE_CLIENT, NULL, -1, &tk, &secret, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "expires_in_ms"));
    assert_int_equal(
        anvil_token_revoke(c, "", &tk, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "token id is empty"));
    assert_int_equal(anvil_token_list(c, NULL, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_worker_status_list(c, NULL, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_client_set_connect_timeout(c, -1, &err), ANVIL_INVALID_ARGUMENT);

    // Worker info: copied (the caller's arrays may go), NULL names refused.
    const char              *types[] = { "Echo", NULL };
    struct anvil_worker_info wi      = { "h", 1, "v", types, 2, NULL, 0, 1 };
    assert_int_equal(
        anvil_client_set_worker_info(c, &wi, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "types[1] is NULL"));
    wi.n_types  = 1;
    wi.n_queues = 1; // but queues is NULL
    assert_int_equal(
        anvil_client_set_worker_info(c, &wi, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "queues[0] is NULL"));
    wi.n_queues = 0;
    assert_int_equal(anvil_client_set_worker_info(c, &wi, &err), ANVIL_OK);
    assert_int_equal(anvil_client_set_worker_info(c, NULL, &err), ANVIL_OK);

    // TLS settings need a tls+tcp:// URL and are checked up front.
    struct anvil_tls tls = { .ca_file = "ca.crt" };
    assert_int_equal(
        anvil_client_set_tls(c, &tls, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "tls+tcp://"));
    assert_int_equal(
        anvil_client_set_tls(c, NULL, &err), ANVIL_INVALID_ARGUMENT);
    anvil_client_close(c);

    // $ANVIL_TLS_CA naming a missing file: open fails, naming it.
    setenv("ANVIL_TLS_CA", "/nonexistent/anvil-ca.crt", 1);
    int rc = anvil_client_open(&c, "tls+tcp://localhost:1", &err);
    unsetenv("ANVIL_TLS_CA");
    assert_int_equal(rc, ANVIL_INVALID_ARGUMENT);
    assert_null(c);
    assert_non_null(strstr(err.msg, "/nonexistent/anvil-ca.crt"));
    // ... but is ignored for a plain URL.
    setenv("ANVIL_TLS_CA", "/nonexistent/anvil-ca.crt", 1);
    rc = anvil_client_open(&c, "tcp://127.0.0.1:1", &err);
    unsetenv("ANVIL_TLS_CA");
    assert_int_equal(rc, ANVIL_OK);
    anvil_client_close(c);
}

#define SERVER_TEST(fn) \
    cmocka_unit_test_setup_teardown(fn, setup_server, teardown)
#define DIR_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup_dir, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_state_names_round_trip_through_parse),
        cmocka_unit_test(test_job_state_parse_rejects_unknown_names),
        cmocka_unit_test(test_job_state_final_is_true_only_for_final_states),
        cmocka_unit_test(test_client_open_rejects_bad_urls),
        SERVER_TEST(test_client_open_uses_anvil_server_when_url_is_null),
        DIR_TEST(test_client_calls_without_server_fail_within_their_timeout),
        DIR_TEST(test_client_reaches_a_server_that_starts_after_open),
        DIR_TEST(test_client_connect_timeout_says_nothing_listens_within_it),
        DIR_TEST(test_client_connect_timeout_ends_with_the_first_connection),
        SERVER_TEST(test_client_submit_sends_its_fields_and_returns_the_id),
        SERVER_TEST(test_client_submit_reports_a_seen_idempotency_key),
        SERVER_TEST(
            test_client_submit_passes_the_servers_invalid_argument_unchanged),
        SERVER_TEST(test_client_submit_rejects_missing_type_and_payload_bytes),
        SERVER_TEST(test_client_get_returns_the_job_with_nul_terminated_bytes),
        SERVER_TEST(test_client_get_returns_a_steps_workflow_and_parents),
        SERVER_TEST(test_client_get_passes_not_found_unchanged),
        SERVER_TEST(
            test_client_get_with_a_body_that_does_not_decode_is_internal),
        SERVER_TEST(
            test_client_get_with_a_reply_that_is_no_envelope_is_internal),
        SERVER_TEST(test_client_get_with_an_unknown_code_is_unknown),
        SERVER_TEST(test_client_get_with_a_reply_without_job_is_internal),
        SERVER_TEST(test_client_get_rejects_missing_ids_without_calling),
        SERVER_TEST(test_client_wait_returns_the_finished_job),
        SERVER_TEST(test_client_wait_that_times_out_returns_the_job_as_it_is),
        SERVER_TEST(test_client_wait_rejects_a_negative_timeout),
        SERVER_TEST(test_client_wait_without_a_limit_polls_until_the_job_ends),
        SERVER_TEST(
            test_client_wait_longer_than_a_server_poll_is_made_of_chunks),
        SERVER_TEST(test_client_cancel_returns_the_canceled_job),
        SERVER_TEST(
            test_client_cancel_of_a_finished_job_is_failed_precondition),
        SERVER_TEST(test_client_list_returns_jobs_and_the_next_cursor),
        SERVER_TEST(test_client_list_rejects_a_missing_out),
        SERVER_TEST(test_client_health_returns_version_and_depths),
        SERVER_TEST(test_client_poll_returns_leases_with_parent_results),
        SERVER_TEST(test_client_poll_rejects_bad_requests_without_calling),
        SERVER_TEST(
            test_client_poll_waits_past_the_call_timeout_for_its_long_poll),
        SERVER_TEST(test_client_complete_succeeds_and_a_stale_token_is_refused),
        SERVER_TEST(test_client_fail_reports_the_jobs_next_state),
        SERVER_TEST(test_client_heartbeat_returns_canceled_and_lost_ids),
        SERVER_TEST(
            test_client_heartbeat_rejects_bad_arguments_without_calling),
        SERVER_TEST(test_client_sends_its_token_in_every_envelope),
        SERVER_TEST(test_client_call_without_reply_is_deadline_exceeded),
        SERVER_TEST(test_client_resends_with_the_same_id_to_a_restarted_server),
        SERVER_TEST(test_client_is_safe_to_share_between_threads),
        SERVER_TEST(test_client_close_fails_calls_in_flight_with_unavailable),
        cmocka_unit_test(
            test_client_null_client_is_invalid_argument_everywhere),
        cmocka_unit_test(
            test_client_new_calls_reject_bad_arguments_without_calling),
    };
    const char *only = getenv("TEST_FILTER"); // e.g. "*restart*"
    if (only != NULL)
        cmocka_set_test_filter(only);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nng_fini();
    return rc;
}
