// test_batch.c - the batch rpcs against a real in-process anvild:
// SubmitJobs (anvil_job_submit_many) and Report (anvil_job_report). Each item
// is applied on its own: a bad one is refused with a message naming it
// ("jobs[i]: ...", "outcomes[i]: ...") while the others are stored; a
// resent SubmitJobs envelope is applied once per job (request id R + i);
// idempotency keys, stale leases, roles and WaitJob behave as for the
// single rpcs.
//
// The SDK does the ordinary calls; a raw nng req0 socket sends envelopes
// the SDK would never send (0 or 1,001 items, a chosen request id, a
// resend) and reads each item's message.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness.h"
#include "anvil/v1/anvil.pb-c.h"
#include "util/clock.h"

#define MAX_PAYLOAD 1024
#define TIMEOUT_MS 5000
#define SECRET_MAX 128

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct fixture {
    struct harness h;
    nng_socket     sock; // raw req0 socket; id 0 when not open
    uint64_t       next_rid;
    char           token_file[128]; // auth tests: the bootstrap admin token
    anvil_client  *extra[3];        // auth tests: clients with role tokens
};

// ---- fixtures ----

static int
raw_open(struct fixture *f)
{
    return harness_req_open(&f->sock, f->h.url, TIMEOUT_MS, 16 << 20);
}

static struct fixture *
fixture_new(void)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return NULL;
    f->sock     = (nng_socket) NNG_SOCKET_INITIALIZER;
    f->next_rid = ((uint64_t) getpid() << 32) ^ (uint64_t) av_now_ms();
    return f;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    int             rv;

    if (f == NULL)
        return 0;
    for (size_t i = 0; i < N_ELEMS(f->extra); i++)
        anvil_client_close(f->extra[i]);
    if (nng_socket_id(f->sock) > 0)
        nng_close(f->sock);
    rv = harness_stop(&f->h);
    free(f);
    return rv;
}

// A server with cfg (payload limit MAX_PAYLOAD) and a raw socket to it.
static int
start_with(void **state, struct server_config *cfg)
{
    struct fixture *f = fixture_new();

    *state = f;
    if (f == NULL)
        return -1;
    cfg->max_payload = MAX_PAYLOAD;
    if (harness_start_with(&f->h, cfg) != 0 || raw_open(f) != 0)
        return -1;
    return 0;
}

static int
setup(void **state)
{
    struct server_config cfg;

    server_config_init(&cfg);
    return start_with(state, &cfg);
}

// One long-poll at a time in the whole server: a second WaitJob is refused
// while the first is in, which tells the test that the first is parked.
static int
setup_one_wait(void **state)
{
    struct server_config cfg;

    server_config_init(&cfg);
    cfg.max_waits = 1;
    return start_with(state, &cfg);
}

// Tokens required; h->client carries the bootstrap admin token.
static int
setup_auth(void **state)
{
    struct fixture    *f   = fixture_new();
    struct anvil_error err = { 0 };
    char              *admin;

    *state = f;
    if (f == NULL || harness_open(&f->h) != 0)
        return -1;
    harness_path(&f->h, "admin.token", f->token_file, sizeof(f->token_file));
    f->h.cfg.listen_url           = f->h.url;
    f->h.cfg.db_path              = f->h.db;
    f->h.cfg.auth                 = SERVER_AUTH_ON;
    f->h.cfg.bootstrap_token_file = f->token_file;
    if (server_start(&f->h.cfg, &f->h.server, &err) != ANVIL_OK) {
        print_error("server_start: %s\n", err.msg);
        f->h.server = NULL;
        return -1;
    }
    admin = harness_read_file(f->token_file, NULL);
    if (admin == NULL)
        return -1;
    admin[strcspn(admin, "\r\n")] = '\0';
    int rc = anvil_client_set_token(f->h.client, admin, &err);
    free(admin);
    return rc == ANVIL_OK ? 0 : -1;
}

// ---- raw envelopes ----

// Sends body as method with request id rid; returns the reply (caller frees
// with anvil__v1__reply__free_unpacked), whose request id must echo rid.
static Anvil__V1__Reply *
raw_call_rid(struct fixture *f, const char *method,
    const ProtobufCMessage *body, uint64_t rid)
{
    Anvil__V1__Request req = ANVIL__V1__REQUEST__INIT;
    size_t             blen;
    size_t             n;
    uint8_t           *bbuf;
    uint8_t           *buf;
    void              *in = NULL;
    size_t             sz = 0;
    int                rv;

    blen = protobuf_c_message_get_packed_size(body);
    bbuf = malloc(blen ? blen : 1);
    assert_non_null(bbuf);
    protobuf_c_message_pack(body, bbuf);
    req.method     = (char *) method;
    req.body.data  = bbuf;
    req.body.len   = blen;
    req.request_id = rid;
    n              = anvil__v1__request__get_packed_size(&req);
    buf            = malloc(n);
    assert_non_null(buf);
    anvil__v1__request__pack(&req, buf);
    rv = nng_send(f->sock, buf, n, 0);
    free(buf);
    free(bbuf);
    if (rv == 0)
        rv = nng_recv(f->sock, &in, &sz, NNG_FLAG_ALLOC);
    if (rv != 0)
        print_error("%s: %s\n", method, nng_strerror(rv));
    assert_int_equal(rv, 0);
    Anvil__V1__Reply *rep = anvil__v1__reply__unpack(NULL, sz, in);
    nng_free(in, sz);
    assert_non_null(rep);
    assert_int_equal(rep->request_id, rid);
    return rep;
}

static Anvil__V1__Reply *
raw_call(struct fixture *f, const char *method, const ProtobufCMessage *body)
{
    return raw_call_rid(f, method, body, f->next_rid++);
}

// Asserts a whole-request refusal with `code` and a message holding
// needle; frees the reply.
static void
expect_refused(Anvil__V1__Reply *rep, int code, const char *needle)
{
    if ((int) rep->code != code || strstr(rep->message, needle) == NULL)
        print_error("reply %s \"%s\"; expected %s naming \"%s\"\n",
            anvil_code_name((int) rep->code), rep->message,
            anvil_code_name(code), needle);
    assert_int_equal(rep->code, code);
    assert_non_null(strstr(rep->message, needle));
    assert_int_equal(rep->body.len, 0);
    anvil__v1__reply__free_unpacked(rep, NULL);
}

// A SubmitJobsRequest of n jobs of `type`, payload "p<i>"; set fields of
// items[i] before sending.
struct raw_jobs {
    Anvil__V1__SubmitJobsRequest  req;
    Anvil__V1__SubmitJobRequest  *items;
    Anvil__V1__SubmitJobRequest **ptrs;
    char (*payloads)[24];
};

static void
raw_jobs_init(struct raw_jobs *r, size_t n, const char *type)
{
    anvil__v1__submit_jobs_request__init(&r->req);
    r->items    = calloc(n ? n : 1, sizeof(*r->items));
    r->ptrs     = calloc(n ? n : 1, sizeof(*r->ptrs));
    r->payloads = calloc(n ? n : 1, sizeof(*r->payloads));
    assert_non_null(r->items);
    assert_non_null(r->ptrs);
    assert_non_null(r->payloads);
    for (size_t i = 0; i < n; i++) {
        anvil__v1__submit_job_request__init(&r->items[i]);
        snprintf(r->payloads[i], sizeof(r->payloads[i]), "p%zu", i);
        r->items[i].type         = (char *) type;
        r->items[i].payload.data = (uint8_t *) r->payloads[i];
        r->items[i].payload.len  = strlen(r->payloads[i]);
        r->ptrs[i]               = &r->items[i];
    }
    r->req.n_jobs = n;
    r->req.jobs   = r->ptrs;
}

static void
raw_jobs_fini(struct raw_jobs *r)
{
    free(r->items);
    free(r->ptrs);
    free(r->payloads);
}

// Sends r with request id rid; the reply must be OK with n results.
// Caller frees with anvil__v1__submit_jobs_response__free_unpacked.
static Anvil__V1__SubmitJobsResponse *
raw_submit_jobs(struct fixture *f, const struct raw_jobs *r, uint64_t rid)
{
    Anvil__V1__Reply *rep = raw_call_rid(f, "SubmitJobs", &r->req.base, rid);

    if (rep->code != ANVIL__V1__CODE__OK)
        print_error("SubmitJobs: %s \"%s\"\n", anvil_code_name((int) rep->code),
            rep->message);
    assert_int_equal(rep->code, ANVIL__V1__CODE__OK);
    Anvil__V1__SubmitJobsResponse *sr = anvil__v1__submit_jobs_response__unpack(
        NULL, rep->body.len, rep->body.data);
    anvil__v1__reply__free_unpacked(rep, NULL);
    assert_non_null(sr);
    assert_int_equal(sr->n_results, r->req.n_jobs);
    return sr;
}

// A ReportRequest of n outcomes; the test fills items[i].
struct raw_report {
    Anvil__V1__ReportRequest req;
    Anvil__V1__Outcome       items[8];
    Anvil__V1__Outcome      *ptrs[8];
};

static void
raw_report_init(struct raw_report *r, size_t n)
{
    assert_true(n <= N_ELEMS(r->items));
    anvil__v1__report_request__init(&r->req);
    for (size_t i = 0; i < n; i++) {
        anvil__v1__outcome__init(&r->items[i]);
        r->ptrs[i] = &r->items[i];
    }
    r->req.n_outcomes = n;
    r->req.outcomes   = r->ptrs;
}

// ---- SDK helpers ----

// How many jobs the server ever stored (ids handed out), and how many
// ListJobs shows now: both must be `n`.
static void
assert_jobs_stored(struct fixture *f, size_t n)
{
    struct anvil_health    *hl     = NULL;
    struct anvil_job_list  *list   = NULL;
    struct anvil_job_filter filter = { .limit = 1000 };

    assert_int_equal(anvil_health_get(f->h.client, &hl, NULL), ANVIL_OK);
    assert_int_equal(hl->jobs_total, n);
    anvil_health_free(hl);
    if (n > 1000)
        return;
    assert_int_equal(anvil_job_list(f->h.client, &filter, &list, NULL), 0);
    assert_int_equal(list->n, n);
    anvil_job_list_free(list);
}

static struct anvil_job *
get_job(struct fixture *f, const char *id)
{
    struct anvil_job  *job = NULL;
    struct anvil_error err = { 0 };
    int                rc  = anvil_job_get(f->h.client, id, &job, &err);

    if (rc != ANVIL_OK)
        print_error("get %s: %s\n", id, err.msg);
    assert_int_equal(rc, ANVIL_OK);
    return job;
}

static int
job_state(struct fixture *f, const char *id)
{
    struct anvil_job *job   = get_job(f, id);
    int               state = job->state;

    anvil_job_free(job);
    return state;
}

// Submits n jobs of `type` (payload "<type>-<i>") with opts; asserts all
// are stored and copies their ids into ids[n].
static void
submit_n(anvil_client *c, const char *type, size_t n,
    const struct anvil_job_opts *opts, char (*ids)[24])
{
    struct anvil_job_spec      specs[8];
    struct anvil_submit_result res[8];
    char                       payloads[8][32];
    struct anvil_error         err      = { 0 };
    size_t                     n_failed = 99;

    assert_true(n <= N_ELEMS(specs));
    for (size_t i = 0; i < n; i++) {
        snprintf(payloads[i], sizeof(payloads[i]), "%s-%zu", type, i);
        specs[i] = (struct anvil_job_spec) { type, payloads[i],
            strlen(payloads[i]), opts };
    }
    int rc = anvil_job_submit_many(c, specs, n, res, &n_failed, &err);
    if (rc != ANVIL_OK || n_failed != 0)
        print_error("submit_many: %s: %s\n", anvil_code_name(rc), err.msg);
    assert_int_equal(rc, ANVIL_OK);
    assert_int_equal(n_failed, 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(res[i].code, ANVIL_OK);
        memcpy(ids[i], res[i].id, sizeof(res[i].id));
    }
}

// Leases exactly n jobs of `type` for worker "w1" on client c; the list
// is the caller's (anvil_lease_list_free).
static struct anvil_lease_list *
lease_n(anvil_client *c, const char *type, size_t n)
{
    struct anvil_lease_list *leases = NULL;
    struct anvil_error       err    = { 0 };
    struct anvil_poll_req    req    = {
              .worker_id = "w1",
              .types     = &type,
              .n_types   = 1,
              .max_jobs  = (uint32_t) n,
              .wait_ms   = 2000,
    };
    int rc = anvil_lease_poll(c, &req, &leases, &err);

    if (rc != ANVIL_OK)
        print_error("poll: %s\n", err.msg);
    assert_int_equal(rc, ANVIL_OK);
    assert_int_equal(leases->n, n);
    return leases;
}

// The lease of job id in list.
static const struct anvil_lease *
lease_of(const struct anvil_lease_list *list, const char *id)
{
    for (size_t i = 0; i < list->n; i++) {
        if (strcmp(list->leases[i].job.id, id) == 0)
            return &list->leases[i];
    }
    fail_msg("no lease for %s", id);
    return NULL;
}

// ---- SubmitJobs ----

static void
spec_opts(size_t i, struct anvil_job_opts *o, char *key, size_t key_len)
{
    static const char *const queues[] = { "default", "q-one", "q.two" };

    memset(o, 0, sizeof(*o));
    snprintf(key, key_len, "key-%zu", i);
    o->queue                    = queues[i % N_ELEMS(queues)];
    o->priority                 = (int32_t) i - 16;
    o->retry.max_attempts       = (uint32_t) (1 + i % 5);
    o->timeout_ms               = (int64_t) (1000 + i);
    o->lease_ms                 = (int64_t) (5000 + i);
    o->retry.initial_backoff_ms = (int64_t) (200 + i);
    o->retry.max_backoff_ms     = (int64_t) (9000 + i);
    o->retry.backoff_multiplier = 1.5;
    o->idempotency_key          = i % 4 == 0 ? key : NULL;
    o->delay_ms                 = i % 8 == 7 ? 600000 : 0;
}

static void
assert_job_matches(struct fixture *f, const char *id, const char *type,
    const char *payload, const struct anvil_job_opts *o)
{
    struct anvil_job *job = get_job(f, id);

    assert_string_equal(job->id, id);
    assert_string_equal(job->type, type);
    assert_string_equal(job->queue, o->queue);
    assert_int_equal(job->payload_len, strlen(payload));
    assert_memory_equal(job->payload, payload, job->payload_len);
    assert_int_equal(job->priority, o->priority);
    assert_int_equal(job->retry.max_attempts, o->retry.max_attempts);
    assert_int_equal(job->timeout_ms, o->timeout_ms);
    assert_int_equal(job->lease_ms, o->lease_ms);
    assert_int_equal(
        job->retry.initial_backoff_ms, o->retry.initial_backoff_ms);
    assert_int_equal(job->retry.max_backoff_ms, o->retry.max_backoff_ms);
    assert_true(job->retry.backoff_multiplier == o->retry.backoff_multiplier);
    assert_string_equal(job->idempotency_key,
        o->idempotency_key != NULL ? o->idempotency_key : "");
    assert_int_equal(
        job->state, o->delay_ms > 0 ? ANVIL_JOB_SCHEDULED : ANVIL_JOB_QUEUED);
    assert_int_equal(job->attempt, 0);
    assert_true(job->created_at_ms > 0);
    anvil_job_free(job);
}

static void
test_submit_many_stores_32_jobs_in_order_with_their_options(void **state)
{
    struct fixture            *f = *state;
    struct anvil_job_spec      specs[32];
    struct anvil_job_opts      opts[32];
    struct anvil_submit_result res[32];
    char                       types[32][16], payloads[32][32], keys[32][16];
    struct anvil_error         err      = { 0 };
    size_t                     n_failed = 99;

    for (size_t i = 0; i < 32; i++) {
        snprintf(types[i], sizeof(types[i]), "type.%zu", i % 5);
        snprintf(payloads[i], sizeof(payloads[i]), "payload of job %zu", i);
        spec_opts(i, &opts[i], keys[i], sizeof(keys[i]));
        specs[i] = (struct anvil_job_spec) { types[i], payloads[i],
            strlen(payloads[i]), &opts[i] };
    }
    memset(res, 0xff, sizeof(res));
    assert_int_equal(
        anvil_job_submit_many(f->h.client, specs, 32, res, &n_failed, &err),
        ANVIL_OK);
    assert_int_equal(n_failed, 0);
    for (size_t i = 0; i < 32; i++) {
        assert_int_equal(res[i].code, ANVIL_OK);
        assert_false(res[i].existed);
        assert_true(res[i].id[0] == 'j');
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(res[i].id, res[k].id);
        assert_job_matches(f, res[i].id, types[i], payloads[i], &opts[i]);
    }
    assert_jobs_stored(f, 32);
}

static void
test_submit_many_takes_1000_jobs_in_one_call(void **state)
{
    struct fixture             *f        = *state;
    struct anvil_job_spec      *specs    = calloc(1000, sizeof(*specs));
    struct anvil_submit_result *res      = calloc(1000, sizeof(*res));
    size_t                      n_failed = 99;

    assert_non_null(specs);
    assert_non_null(res);
    for (size_t i = 0; i < 1000; i++)
        specs[i] = (struct anvil_job_spec) { "bulk", "x", 1, NULL };
    assert_int_equal(
        anvil_job_submit_many(f->h.client, specs, 1000, res, &n_failed, NULL),
        ANVIL_OK);
    assert_int_equal(n_failed, 0);
    assert_int_equal(res[0].code, ANVIL_OK);
    assert_int_equal(res[999].code, ANVIL_OK);
    assert_string_not_equal(res[0].id, res[999].id);
    assert_jobs_stored(f, 1000);
    free(specs);
    free(res);
}

// Every job is within the payload limit, but the whole request (100 KB)
// is more than one payload's worth. It must be answered: stored, or
// refused with a clear error before it is sent; never dropped with its
// connection, leaving the caller a timeout that a resend cannot cure.
static void
test_a_batch_larger_than_one_payload_is_answered_not_dropped(void **state)
{
    struct fixture            *f = *state;
    static const uint8_t       pay[MAX_PAYLOAD - 24];
    struct anvil_job_spec      specs[100];
    struct anvil_submit_result res[100];
    struct anvil_error         err      = { 0 };
    size_t                     n_failed = 99;

    for (size_t i = 0; i < 100; i++)
        specs[i] = (struct anvil_job_spec) { "big", pay, sizeof(pay), NULL };
    anvil_client_set_timeout(f->h.client, 2000, NULL);
    int rc
        = anvil_job_submit_many(f->h.client, specs, 100, res, &n_failed, &err);
    anvil_client_set_timeout(f->h.client, HARNESS_CLIENT_TIMEOUT_MS, NULL);
    if (rc != ANVIL_OK && rc != ANVIL_INVALID_ARGUMENT)
        print_error("submit_many: %s: %s\n", anvil_code_name(rc), err.msg);
    assert_true(rc == ANVIL_OK || rc == ANVIL_INVALID_ARGUMENT);
    if (rc == ANVIL_INVALID_ARGUMENT) {
        assert_true(err.msg[0] != '\0');
        assert_jobs_stored(f, 0);
        return;
    }
    assert_int_equal(n_failed, 0);
    assert_jobs_stored(f, 100);
}

// Specs 2, 4 and 6 are bad: a type name, a payload over the server's
// limit, a lease_ms out of range. The SDK cannot know either, so all
// three reach the server.
struct mixed {
    struct anvil_job_spec specs[8];
    struct anvil_job_opts short_lease;
    char                  payloads[8][16];
    uint8_t               big[MAX_PAYLOAD + 1];
};

static void
mixed_init(struct mixed *m)
{
    memset(m, 0, sizeof(*m));
    memset(m->big, 'b', sizeof(m->big));
    m->short_lease.lease_ms = 5; // the floor is 100 ms
    for (size_t i = 0; i < 8; i++) {
        snprintf(m->payloads[i], sizeof(m->payloads[i]), "good %zu", i);
        m->specs[i] = (struct anvil_job_spec) { "mixed", m->payloads[i],
            strlen(m->payloads[i]), NULL };
    }
    m->specs[2].type    = "bad name!";
    m->specs[4].payload = m->big;
    m->specs[4].len     = sizeof(m->big);
    m->specs[6].opts    = &m->short_lease;
}

static void
test_bad_jobs_in_a_batch_are_refused_alone_and_the_rest_stored(void **state)
{
    struct fixture            *f = *state;
    struct mixed               m;
    struct anvil_submit_result res[8];
    struct anvil_error         err      = { 0 };
    size_t                     n_failed = 0;

    mixed_init(&m);
    assert_int_equal(
        anvil_job_submit_many(f->h.client, m.specs, 8, res, &n_failed, &err),
        ANVIL_OK);
    assert_int_equal(n_failed, 3);
    assert_int_equal(err.code, ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "jobs[2]: "));
    assert_non_null(strstr(err.msg, "type"));
    for (size_t i = 0; i < 8; i++) {
        bool bad = i == 2 || i == 4 || i == 6;

        assert_int_equal(res[i].code, bad ? ANVIL_INVALID_ARGUMENT : ANVIL_OK);
        if (bad) {
            assert_string_equal(res[i].id, "");
            continue;
        }
        struct anvil_job *job = get_job(f, res[i].id);
        assert_memory_equal(job->payload, m.payloads[i], job->payload_len);
        anvil_job_free(job);
    }
    // Nothing half-written: five jobs, and no id spent on the others.
    assert_jobs_stored(f, 5);
}

static void
test_each_refused_job_is_named_in_its_own_result(void **state)
{
    struct fixture                *f = *state;
    struct raw_jobs                r;
    Anvil__V1__SubmitJobsResponse *sr;
    char                           limit[16];

    snprintf(limit, sizeof(limit), "%d", MAX_PAYLOAD);
    raw_jobs_init(&r, 5, "named");
    uint8_t big[MAX_PAYLOAD + 1] = { 0 };
    r.items[1].type              = "";
    r.items[2].payload.data      = big;
    r.items[2].payload.len       = sizeof(big);
    r.items[3].queue             = "no/such queue";
    r.items[4].lease_ms          = 99;
    sr                           = raw_submit_jobs(f, &r, f->next_rid);
    f->next_rid += 5;
    assert_int_equal(sr->results[0]->code, ANVIL__V1__CODE__OK);
    assert_string_equal(sr->results[0]->message, "");
    assert_true(sr->results[0]->id[0] == 'j');
    const char *want[][2]
        = { { "", "" }, { "jobs[1]: ", "type" }, { "jobs[2]: ", limit },
              { "jobs[3]: ", "queue" }, { "jobs[4]: ", "lease_ms" } };
    for (size_t i = 1; i < 5; i++) {
        const Anvil__V1__SubmitJobsResult *it = sr->results[i];

        assert_int_equal(it->code, ANVIL__V1__CODE__INVALID_ARGUMENT);
        if (strncmp(it->message, want[i][0], strlen(want[i][0])) != 0
            || strstr(it->message, want[i][1]) == NULL)
            print_error("jobs[%zu]: \"%s\"\n", i, it->message);
        assert_int_equal(
            strncmp(it->message, want[i][0], strlen(want[i][0])), 0);
        assert_non_null(strstr(it->message, want[i][1]));
        assert_string_equal(it->id, "");
    }
    anvil__v1__submit_jobs_response__free_unpacked(sr, NULL);
    raw_jobs_fini(&r);
    assert_jobs_stored(f, 1);
}

static void
test_the_sdk_refuses_0_or_1001_items_without_a_call(void **state)
{
    struct fixture             *f = *state;
    anvil_client               *dead;
    char                        url[160];
    struct anvil_job_spec       spec  = { "echo", NULL, 0, NULL };
    struct anvil_job_spec      *specs = calloc(1001, sizeof(*specs));
    struct anvil_submit_result *res   = calloc(1001, sizeof(*res));
    struct anvil_outcome       *outs  = calloc(1001, sizeof(*outs));
    struct anvil_outcome_result ores[1];
    struct anvil_error          err = { 0 };

    assert_non_null(specs);
    assert_non_null(res);
    assert_non_null(outs);
    for (size_t i = 0; i < 1001; i++) {
        specs[i] = spec;
        outs[i]  = (struct anvil_outcome) { .job_id = "j1", .token = 1 };
    }
    // No server listens here: a call would end UNAVAILABLE, not INVALID.
    snprintf(url, sizeof(url), "ipc://%s/nobody", f->h.dir);
    assert_int_equal(anvil_client_open(&dead, url, NULL), ANVIL_OK);
    anvil_client_set_timeout(dead, 200, NULL);
    assert_int_equal(anvil_job_submit_many(dead, specs, 0, res, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "0 jobs"));
    assert_int_equal(anvil_job_submit_many(dead, specs, 1001, res, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "1001 jobs"));
    assert_int_equal(
        anvil_job_report(dead, outs, 0, ores, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "0 outcomes"));
    assert_int_equal(
        anvil_job_report(dead, outs, 1001, ores, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "1001 outcomes"));
    specs[1].type = NULL;
    assert_int_equal(anvil_job_submit_many(dead, specs, 2, res, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "specs[1].type"));
    outs[0].job_id = NULL;
    assert_int_equal(
        anvil_job_report(dead, outs, 1, ores, &err), ANVIL_INVALID_ARGUMENT);
    // The same calls in range do try the (absent) server.
    specs[1].type = "echo";
    assert_int_equal(anvil_job_submit_many(dead, specs, 1, res, NULL, &err),
        ANVIL_UNAVAILABLE);
    anvil_client_close(dead);
    free(specs);
    free(res);
    free(outs);
}

static void
test_the_server_refuses_0_or_1001_items_and_keeps_serving(void **state)
{
    struct fixture          *f = *state;
    struct raw_jobs          r;
    struct raw_report        rr;
    Anvil__V1__ReportRequest big_report = ANVIL__V1__REPORT_REQUEST__INIT;
    Anvil__V1__Outcome      *outs       = calloc(1001, sizeof(*outs));
    Anvil__V1__Outcome     **ptrs       = calloc(1001, sizeof(*ptrs));

    assert_non_null(outs);
    assert_non_null(ptrs);
    raw_jobs_init(&r, 0, "echo");
    expect_refused(raw_call(f, "SubmitJobs", &r.req.base),
        ANVIL__V1__CODE__INVALID_ARGUMENT, "0 jobs");
    raw_jobs_fini(&r);
    raw_jobs_init(&r, 1001, "echo");
    expect_refused(raw_call(f, "SubmitJobs", &r.req.base),
        ANVIL__V1__CODE__INVALID_ARGUMENT, "1001 jobs");
    assert_jobs_stored(f, 0);

    raw_report_init(&rr, 0);
    expect_refused(raw_call(f, "Report", &rr.req.base),
        ANVIL__V1__CODE__INVALID_ARGUMENT, "0 outcomes");
    for (size_t i = 0; i < 1001; i++) {
        anvil__v1__outcome__init(&outs[i]);
        outs[i].job_id = "j1";
        ptrs[i]        = &outs[i];
    }
    big_report.n_outcomes = 1001;
    big_report.outcomes   = ptrs;
    expect_refused(raw_call(f, "Report", &big_report.base),
        ANVIL__V1__CODE__INVALID_ARGUMENT, "1001 outcomes");

    // Still serving: 1,000 jobs in one envelope are taken.
    r.req.n_jobs                      = 1000;
    Anvil__V1__SubmitJobsResponse *sr = raw_submit_jobs(f, &r, f->next_rid);
    f->next_rid += 1000;
    assert_int_equal(sr->results[999]->code, ANVIL__V1__CODE__OK);
    anvil__v1__submit_jobs_response__free_unpacked(sr, NULL);
    raw_jobs_fini(&r);
    assert_jobs_stored(f, 1000);
    free(outs);
    free(ptrs);
}

static void
test_a_resent_batch_is_stored_once_with_the_same_ids(void **state)
{
    struct fixture                *f   = *state;
    uint64_t                       rid = f->next_rid;
    struct raw_jobs                r;
    Anvil__V1__SubmitJobsResponse *first, *again;

    f->next_rid += 100;
    raw_jobs_init(&r, 4, "resent");
    r.items[2].type = "bad type"; // refused both times, stores nothing
    first           = raw_submit_jobs(f, &r, rid);
    again           = raw_submit_jobs(f, &r, rid);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(first->results[i]->code, again->results[i]->code);
        assert_string_equal(first->results[i]->id, again->results[i]->id);
        assert_false(again->results[i]->existed);
    }
    assert_int_equal(
        first->results[2]->code, ANVIL__V1__CODE__INVALID_ARGUMENT);
    assert_int_equal(first->results[3]->code, ANVIL__V1__CODE__OK);
    assert_string_not_equal(first->results[0]->id, first->results[3]->id);
    anvil__v1__submit_jobs_response__free_unpacked(first, NULL);
    anvil__v1__submit_jobs_response__free_unpacked(again, NULL);
    raw_jobs_fini(&r);
    assert_jobs_stored(f, 3);
}

// Item ids R + i must not wrap past 2^64 (0 means "no id", so a resend
// could not be recognised): such a batch stores nothing, each job says why,
// and the last R that fits is taken.
static void
test_a_batch_whose_request_ids_would_wrap_is_refused(void **state)
{
    struct fixture                *f = *state;
    struct raw_jobs                r;
    Anvil__V1__SubmitJobsResponse *sr;

    raw_jobs_init(&r, 3, "wrap");
    sr = raw_submit_jobs(f, &r, UINT64_MAX - 1);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(
            sr->results[i]->code, ANVIL__V1__CODE__INVALID_ARGUMENT);
        assert_non_null(strstr(sr->results[i]->message, "request_id"));
    }
    anvil__v1__submit_jobs_response__free_unpacked(sr, NULL);
    assert_jobs_stored(f, 0);
    sr = raw_submit_jobs(f, &r, UINT64_MAX - 2); // R + 2 = 2^64 - 1
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(sr->results[i]->code, ANVIL__V1__CODE__OK);
    anvil__v1__submit_jobs_response__free_unpacked(sr, NULL);
    raw_jobs_fini(&r);
    assert_jobs_stored(f, 3);
}

// Documented in the .proto: job i of a batch is de-duplicated by request
// id R + i, so a SubmitJob carrying R + 1 is taken for a resend of job 1.
static void
test_a_submit_reusing_request_id_r_plus_1_returns_the_batchs_job_1(void **state)
{
    struct fixture                *f   = *state;
    uint64_t                       rid = f->next_rid;
    struct raw_jobs                r;
    Anvil__V1__SubmitJobsResponse *sr;
    Anvil__V1__SubmitJobRequest    one = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    Anvil__V1__Reply              *rep;

    f->next_rid += 100;
    raw_jobs_init(&r, 3, "batch");
    sr       = raw_submit_jobs(f, &r, rid);
    one.type = "single";
    rep      = raw_call_rid(f, "SubmitJob", &one.base, rid + 1);
    assert_int_equal(rep->code, ANVIL__V1__CODE__OK);
    Anvil__V1__SubmitJobResponse *one_rep
        = anvil__v1__submit_job_response__unpack(
            NULL, rep->body.len, rep->body.data);
    assert_non_null(one_rep);
    assert_string_equal(one_rep->id, sr->results[1]->id);
    assert_false(one_rep->existed);
    anvil__v1__submit_job_response__free_unpacked(one_rep, NULL);
    anvil__v1__reply__free_unpacked(rep, NULL);

    // R + 3 is past the batch: a new job.
    rep = raw_call_rid(f, "SubmitJob", &one.base, rid + 3);
    assert_int_equal(rep->code, ANVIL__V1__CODE__OK);
    anvil__v1__reply__free_unpacked(rep, NULL);
    anvil__v1__submit_jobs_response__free_unpacked(sr, NULL);
    raw_jobs_fini(&r);
    assert_jobs_stored(f, 4);
}

// The SDK steps its request ids past a batch: calls after it are new.
static void
test_calls_after_a_batch_are_not_taken_for_resends(void **state)
{
    struct fixture *f = *state;
    char            ids[3][24];
    char           *one = NULL;

    submit_n(f->h.client, "before", 3, NULL, ids);
    assert_int_equal(
        anvil_job_submit(f->h.client, "after", "a", 1, NULL, &one, NULL, NULL),
        ANVIL_OK);
    for (size_t i = 0; i < 3; i++)
        assert_string_not_equal(one, ids[i]);
    anvil_free(one);
    submit_n(f->h.client, "again", 3, NULL, ids);
    assert_jobs_stored(f, 7);
}

static void
test_a_key_repeated_in_a_batch_returns_the_first_job(void **state)
{
    struct fixture       *f  = *state;
    struct anvil_job_opts k1 = { .idempotency_key = "order-1" };
    struct anvil_job_opts k2 = { .idempotency_key = "order-2" };
    struct anvil_job_spec specs[4]
        = { { "pay", "a", 1, &k1 }, { "pay", "b", 1, &k2 },
              { "pay", "c", 1, &k1 }, { "pay", "d", 1, NULL } };
    struct anvil_submit_result res[4];
    size_t                     n_failed = 99;

    assert_int_equal(
        anvil_job_submit_many(f->h.client, specs, 4, res, &n_failed, NULL),
        ANVIL_OK);
    assert_int_equal(n_failed, 0);
    assert_false(res[0].existed);
    assert_false(res[1].existed);
    assert_true(res[2].existed);
    assert_string_equal(res[2].id, res[0].id);
    assert_false(res[3].existed);
    assert_string_not_equal(res[1].id, res[0].id);
    // The first job keeps its own payload.
    struct anvil_job *job = get_job(f, res[0].id);
    assert_memory_equal(job->payload, "a", 1);
    anvil_job_free(job);
    assert_jobs_stored(f, 3);
}

static void
test_a_key_used_before_returns_that_job_in_a_later_batch(void **state)
{
    struct fixture            *f        = *state;
    struct anvil_job_opts      k1       = { .idempotency_key = "once" };
    struct anvil_job_opts      k2       = { .idempotency_key = "twice" };
    struct anvil_job_spec      first[1] = { { "mail", "x", 1, &k1 } };
    struct anvil_job_spec      later[3] = { { "mail", "y", 1, &k2 },
             { "mail", "z", 1, &k1 }, { "mail", "w", 1, NULL } };
    struct anvil_submit_result r1[1], r2[3];
    char                      *single  = NULL;
    bool                       existed = false;

    assert_int_equal(
        anvil_job_submit_many(f->h.client, first, 1, r1, NULL, NULL), 0);
    assert_false(r1[0].existed);
    assert_int_equal(
        anvil_job_submit_many(f->h.client, later, 3, r2, NULL, NULL), 0);
    assert_false(r2[0].existed);
    assert_true(r2[1].existed);
    assert_string_equal(r2[1].id, r1[0].id);
    assert_false(r2[2].existed);
    // And a single submit sees a key a batch used.
    assert_int_equal(anvil_job_submit(f->h.client, "mail", "v", 1, &k2, &single,
                         &existed, NULL),
        ANVIL_OK);
    assert_true(existed);
    assert_string_equal(single, r2[0].id);
    anvil_free(single);
    assert_jobs_stored(f, 3);
}

// ---- Report ----

static const struct anvil_job_opts slow_retry = {
    .retry.initial_backoff_ms = 600000,
    .retry.max_backoff_ms     = 600000,
};

static void
assert_job(struct fixture *f, const char *id, enum anvil_job_state state,
    const char *result, const char *error)
{
    struct anvil_job *job = get_job(f, id);

    if (job->state != state)
        print_error("%s is %s, expected %s\n", id,
            anvil_job_state_name(job->state), anvil_job_state_name(state));
    assert_int_equal(job->state, state);
    assert_int_equal(job->result_len, strlen(result));
    assert_memory_equal(job->result, result, job->result_len);
    assert_string_equal(job->error, error);
    assert_int_equal(job->attempt, 1);
    anvil_job_free(job);
}

// A Complete of job id with result (a string).
static struct anvil_outcome
completed(const char *id, uint32_t token, const char *result)
{
    struct anvil_outcome o = { .job_id = id, .token = token };

    o.result = result;
    o.len    = strlen(result);
    return o;
}

// A Fail of job id.
static struct anvil_outcome
failed(const char *id, uint32_t token, const char *error, bool retryable)
{
    struct anvil_outcome o = { .job_id = id, .token = token };

    o.failed    = true;
    o.error     = error;
    o.retryable = retryable;
    return o;
}

// Leases three jobs and reports: done, a retryable failure, a final one.
static void
report_three(struct fixture *f, char (*ids)[24], struct anvil_outcome *outs,
    uint32_t *tokens)
{
    struct anvil_lease_list *leases;

    submit_n(f->h.client, "work", 3, &slow_retry, ids);
    leases = lease_n(f->h.client, "work", 3);
    for (size_t i = 0; i < 3; i++)
        tokens[i] = lease_of(leases, ids[i])->token;
    anvil_lease_list_free(leases);
    outs[0] = completed(ids[0], tokens[0], "done");
    outs[1] = failed(ids[1], tokens[1], "flaky", true);
    outs[2] = failed(ids[2], tokens[2], "broken", false);
}

static void
test_report_completes_retries_and_fails_jobs_in_one_call(void **state)
{
    struct fixture             *f = *state;
    char                        ids[3][24];
    uint32_t                    tokens[3];
    struct anvil_outcome        outs[3];
    struct anvil_outcome_result res[3];
    struct anvil_error          err = { 0 };

    report_three(f, ids, outs, tokens);
    int64_t before = av_now_ms();
    assert_int_equal(
        anvil_job_report(f->h.client, outs, 3, res, &err), ANVIL_OK);
    int64_t after = av_now_ms();
    assert_int_equal(err.code, ANVIL_OK);
    assert_int_equal(res[0].code, ANVIL_OK);
    assert_int_equal(res[1].code, ANVIL_OK);
    assert_int_equal(res[1].state, ANVIL_JOB_SCHEDULED);
    // 600 s of backoff, jittered by +-20 %.
    assert_true(res[1].retry_at_ms >= before + 480000);
    assert_true(res[1].retry_at_ms <= after + 720000);
    assert_int_equal(res[2].code, ANVIL_OK);
    assert_int_equal(res[2].state, ANVIL_JOB_FAILED);
    assert_int_equal(res[2].retry_at_ms, 0);

    assert_job(f, ids[0], ANVIL_JOB_SUCCEEDED, "done", "");
    assert_job(f, ids[1], ANVIL_JOB_SCHEDULED, "", "flaky");
    assert_job(f, ids[2], ANVIL_JOB_FAILED, "", "broken");
    struct anvil_job *job = get_job(f, ids[0]);
    assert_true(job->finished_at_ms >= job->started_at_ms);
    assert_true(job->finished_at_ms > 0);
    anvil_job_free(job);
}

static void
test_a_resent_report_changes_nothing(void **state)
{
    struct fixture             *f = *state;
    char                        ids[3][24];
    uint32_t                    tokens[3];
    struct anvil_outcome        outs[3];
    struct anvil_outcome_result res[3];

    report_three(f, ids, outs, tokens);
    assert_int_equal(
        anvil_job_report(f->h.client, outs, 3, res, NULL), ANVIL_OK);
    // A different result on the resend must not replace the first.
    outs[0].result = "later";
    outs[0].len    = 5;
    for (int round = 0; round < 2; round++) {
        struct anvil_error err = { 0 };

        memset(res, 0xff, sizeof(res));
        assert_int_equal(
            anvil_job_report(f->h.client, outs, 3, res, &err), ANVIL_OK);
        assert_int_equal(err.code, ANVIL_OK);
        for (size_t i = 0; i < 3; i++)
            assert_int_equal(res[i].code, ANVIL_OK);
        assert_int_equal(res[1].state, ANVIL_JOB_SCHEDULED);
        assert_int_equal(res[2].state, ANVIL_JOB_FAILED);
        assert_job(f, ids[0], ANVIL_JOB_SUCCEEDED, "done", "");
        assert_job(f, ids[1], ANVIL_JOB_SCHEDULED, "", "flaky");
        assert_job(f, ids[2], ANVIL_JOB_FAILED, "", "broken");
    }
    assert_jobs_stored(f, 3);
}

// Once a retryable Fail has rescheduled the job, its attempt's token is
// stale: a Complete with it is refused, and the job stays as it is.
static void
test_report_refuses_a_stale_token_through_the_sdk(void **state)
{
    struct fixture             *f = *state;
    char                        ids[3][24];
    uint32_t                    tokens[3];
    struct anvil_outcome        outs[3];
    struct anvil_outcome_result res[3];
    struct anvil_error          err = { 0 };
    char                        other[1][24];

    report_three(f, ids, outs, tokens);
    assert_int_equal(
        anvil_job_report(f->h.client, outs, 3, res, NULL), ANVIL_OK);
    submit_n(f->h.client, "fresh", 1, NULL, other);
    struct anvil_lease_list *lease  = lease_n(f->h.client, "fresh", 1);
    struct anvil_outcome     two[2] = { completed(ids[1], tokens[1], "late"),
            completed(other[0], lease->leases[0].token, "ok") };
    anvil_lease_list_free(lease);
    assert_int_equal(
        anvil_job_report(f->h.client, two, 2, res, &err), ANVIL_OK);
    assert_int_equal(res[0].code, ANVIL_FAILED_PRECONDITION);
    assert_int_equal(err.code, ANVIL_FAILED_PRECONDITION);
    assert_non_null(strstr(err.msg, "outcomes[0]: "));
    assert_non_null(strstr(err.msg, ids[1]));
    assert_int_equal(res[1].code, ANVIL_OK);
    assert_job(f, ids[1], ANVIL_JOB_SCHEDULED, "", "flaky");
    assert_job(f, other[0], ANVIL_JOB_SUCCEEDED, "ok", "");
}

static void
expect_item(
    const Anvil__V1__OutcomeResult *it, size_t i, int code, const char *needle)
{
    char prefix[32];

    snprintf(prefix, sizeof(prefix), "outcomes[%zu]: ", i);
    if ((int) it->code != code
        || (code != ANVIL_OK
            && (strncmp(it->message, prefix, strlen(prefix)) != 0
                || strstr(it->message, needle) == NULL)))
        print_error("outcomes[%zu]: %s \"%s\"; expected %s naming \"%s\"\n", i,
            anvil_code_name((int) it->code), it->message, anvil_code_name(code),
            needle);
    assert_int_equal(it->code, code);
    if (code == ANVIL_OK) {
        assert_string_equal(it->message, "");
        return;
    }
    assert_int_equal(strncmp(it->message, prefix, strlen(prefix)), 0);
    assert_non_null(strstr(it->message, needle));
}

static void
test_report_refuses_bad_outcomes_alone_naming_each(void **state)
{
    struct fixture            *f = *state;
    char                       ids[3][24];
    struct anvil_lease_list   *leases;
    struct raw_report          r;
    uint8_t                    big[MAX_PAYLOAD + 1] = { 0 };
    Anvil__V1__Reply          *rep;
    Anvil__V1__ReportResponse *rr;
    char                       limit[16];

    snprintf(limit, sizeof(limit), "%d", MAX_PAYLOAD);
    submit_n(f->h.client, "mixed", 3, NULL, ids);
    leases = lease_n(f->h.client, "mixed", 3);
    raw_report_init(&r, 7);
    r.items[0].job_id      = ids[0];
    r.items[0].token       = lease_of(leases, ids[0])->token;
    r.items[0].result.data = (uint8_t *) "zero";
    r.items[0].result.len  = 4;
    r.items[1].job_id      = ids[1];
    r.items[1].token       = lease_of(leases, ids[1])->token + 1; // stale
    r.items[2].job_id      = "j999999";
    r.items[3].job_id      = "zzz";
    r.items[3].failed      = true;
    r.items[4].job_id      = ids[2];
    r.items[4].token       = lease_of(leases, ids[2])->token;
    r.items[4].result.data = big; // over the limit
    r.items[4].result.len  = sizeof(big);
    r.items[5].job_id      = ids[1];
    r.items[5].token       = lease_of(leases, ids[1])->token;
    r.items[5].failed      = true;
    r.items[5].error       = "gave up";
    r.items[5].no_retry    = true;
    r.items[6].job_id      = ids[2];
    r.items[6].token       = lease_of(leases, ids[2])->token;
    r.items[6].result.data = (uint8_t *) "two";
    r.items[6].result.len  = 3;
    anvil_lease_list_free(leases);

    rep = raw_call(f, "Report", &r.req.base);
    assert_int_equal(rep->code, ANVIL__V1__CODE__OK);
    rr = anvil__v1__report_response__unpack(
        NULL, rep->body.len, rep->body.data);
    anvil__v1__reply__free_unpacked(rep, NULL);
    assert_non_null(rr);
    assert_int_equal(rr->n_results, 7);
    expect_item(rr->results[0], 0, ANVIL_OK, "");
    expect_item(rr->results[1], 1, ANVIL_FAILED_PRECONDITION, ids[1]);
    expect_item(rr->results[2], 2, ANVIL_NOT_FOUND, "j999999");
    expect_item(rr->results[3], 3, ANVIL_NOT_FOUND, "zzz");
    expect_item(rr->results[4], 4, ANVIL_INVALID_ARGUMENT, limit);
    expect_item(rr->results[5], 5, ANVIL_OK, "");
    assert_int_equal(
        rr->results[5]->state, ANVIL__V1__JOB_STATE__JOB_STATE_FAILED);
    expect_item(rr->results[6], 6, ANVIL_OK, "");
    anvil__v1__report_response__free_unpacked(rr, NULL);

    assert_job(f, ids[0], ANVIL_JOB_SUCCEEDED, "zero", "");
    assert_job(f, ids[1], ANVIL_JOB_FAILED, "", "gave up");
    assert_job(f, ids[2], ANVIL_JOB_SUCCEEDED, "two", "");
    assert_jobs_stored(f, 3);
}

// ---- WaitJob woken by a Report ----

struct waiter {
    anvil_client *c;
    const char   *id;
    int           rc;
    int           state;
    char          result[16];
    int64_t       ms; // how long the wait took
};

static void *
waiter_main(void *arg)
{
    struct waiter    *w   = arg;
    struct anvil_job *job = NULL;
    int64_t           t0  = av_mono_ms();

    // Refused while the test's probe holds the one long-poll slot: retry.
    do {
        anvil_job_free(job);
        job   = NULL;
        w->rc = anvil_job_wait(w->c, w->id, 20000, &job, NULL);
    } while (w->rc == ANVIL_RESOURCE_EXHAUSTED && av_mono_ms() - t0 < 10000);
    w->ms = av_mono_ms() - t0;
    if (job != NULL) {
        w->state = job->state;
        snprintf(w->result, sizeof(w->result), "%.*s", (int) job->result_len,
            (const char *) job->result);
    }
    anvil_job_free(job);
    return NULL;
}

struct probe {
    struct fixture *f;
    const char     *id;
};

// True once a WaitJob of our own is refused: the server's only long-poll
// slot is taken, by the waiter.
static bool
waiter_parked(void *arg)
{
    struct probe     *p   = arg;
    struct anvil_job *job = NULL;
    int               rc = anvil_job_wait(p->f->h.client, p->id, 1, &job, NULL);

    anvil_job_free(job);
    return rc == ANVIL_RESOURCE_EXHAUSTED;
}

static void
test_a_report_wakes_a_job_wait_parked_on_its_job(void **state)
{
    struct fixture             *f = *state;
    char                        ids[1][24];
    struct anvil_lease_list    *lease;
    struct anvil_outcome_result res[1];
    pthread_t                   th;
    struct waiter               w = { 0 };
    struct probe                p = { f, NULL };

    submit_n(f->h.client, "slow", 1, NULL, ids);
    lease = lease_n(f->h.client, "slow", 1);
    w.c   = f->h.client;
    w.id  = ids[0];
    p.id  = ids[0];
    assert_int_equal(pthread_create(&th, NULL, waiter_main, &w), 0);
    bool                 parked = harness_wait_for(waiter_parked, &p, 10000);
    struct anvil_outcome out
        = completed(ids[0], lease->leases[0].token, "woke");
    anvil_lease_list_free(lease);
    int64_t t0 = av_mono_ms();
    int     rc = anvil_job_report(f->h.client, &out, 1, res, NULL);
    pthread_join(th, NULL);
    assert_true(parked);
    assert_int_equal(rc, ANVIL_OK);
    assert_int_equal(res[0].code, ANVIL_OK);
    assert_int_equal(w.rc, ANVIL_OK);
    assert_int_equal(w.state, ANVIL_JOB_SUCCEEDED);
    assert_string_equal(w.result, "woke");
    // Woken by the report, not by its 20 s timeout.
    assert_true(av_mono_ms() - t0 < 10000);
    assert_true(w.ms < 15000);
}

// ---- roles ----

// Opens f->extra[slot] with a new token of role.
static anvil_client *
client_with_role(struct fixture *f, size_t slot, int role)
{
    char              *secret = NULL;
    struct anvil_error err    = { 0 };
    anvil_client      *c      = NULL;
    int                rc
        = anvil_token_create(f->h.client, role, NULL, 0, NULL, &secret, &err);

    if (rc != ANVIL_OK)
        print_error("token_create: %s\n", err.msg);
    assert_int_equal(rc, ANVIL_OK);
    assert_int_equal(anvil_client_open(&c, f->h.url, NULL), ANVIL_OK);
    anvil_client_set_timeout(c, HARNESS_CLIENT_TIMEOUT_MS, NULL);
    assert_int_equal(anvil_client_set_token(c, secret, NULL), ANVIL_OK);
    anvil_free(secret);
    f->extra[slot] = c;
    return c;
}

static void
test_a_worker_token_may_report_but_not_submit_many(void **state)
{
    struct fixture       *f      = *state;
    anvil_client         *client = client_with_role(f, 0, ANVIL_ROLE_CLIENT);
    anvil_client         *worker = client_with_role(f, 1, ANVIL_ROLE_WORKER);
    anvil_client         *other  = client_with_role(f, 2, ANVIL_ROLE_WORKER);
    struct anvil_job_spec spec   = { "job", "x", 1, NULL };
    struct anvil_submit_result  sres[1];
    struct anvil_outcome_result ores[1];
    struct anvil_error          err = { 0 };
    char                        ids[2][24];
    struct anvil_lease_list    *leases;

    assert_int_equal(anvil_job_submit_many(worker, &spec, 1, sres, NULL, &err),
        ANVIL_PERMISSION_DENIED);
    assert_jobs_stored(f, 0);
    submit_n(client, "job", 2, NULL, ids);
    leases                        = lease_n(worker, "job", 2);
    const struct anvil_lease *l   = &leases->leases[0];
    struct anvil_outcome      out = completed(l->job.id, l->token, "r");
    // Another worker's token may not report on this lease.
    assert_int_equal(anvil_job_report(other, &out, 1, ores, &err), ANVIL_OK);
    assert_int_equal(ores[0].code, ANVIL_PERMISSION_DENIED);
    assert_non_null(strstr(err.msg, "outcomes[0]: "));
    assert_int_equal(anvil_job_report(worker, &out, 1, ores, NULL), ANVIL_OK);
    assert_int_equal(ores[0].code, ANVIL_OK);
    assert_int_equal(job_state(f, l->job.id), ANVIL_JOB_SUCCEEDED);
    assert_int_equal(job_state(f, leases->leases[1].job.id), ANVIL_JOB_RUNNING);
    anvil_lease_list_free(leases);
}

static void
test_a_client_token_may_submit_many_but_not_report(void **state)
{
    struct fixture *f      = *state;
    anvil_client   *client = client_with_role(f, 0, ANVIL_ROLE_CLIENT);
    anvil_client   *worker = client_with_role(f, 1, ANVIL_ROLE_WORKER);
    struct anvil_outcome_result ores[1];
    struct anvil_error          err = { 0 };
    char                        ids[1][24];
    struct anvil_lease_list    *lease;

    submit_n(client, "job", 1, NULL, ids);
    lease = lease_n(worker, "job", 1);
    struct anvil_outcome out
        = failed(ids[0], lease->leases[0].token, "no", true);
    anvil_lease_list_free(lease);
    assert_int_equal(
        anvil_job_report(client, &out, 1, ores, &err), ANVIL_PERMISSION_DENIED);
    assert_non_null(strstr(err.msg, "Report"));
    assert_int_equal(job_state(f, ids[0]), ANVIL_JOB_RUNNING);
    // Without any token, neither call is served.
    anvil_client *none = NULL;
    assert_int_equal(anvil_client_open(&none, f->h.url, NULL), ANVIL_OK);
    anvil_client_set_timeout(none, HARNESS_CLIENT_TIMEOUT_MS, NULL);
    f->extra[2] = none;
    assert_int_equal(
        anvil_job_report(none, &out, 1, ores, NULL), ANVIL_UNAUTHENTICATED);
    struct anvil_job_spec      spec = { "job", "x", 1, NULL };
    struct anvil_submit_result sres[1];
    assert_int_equal(anvil_job_submit_many(none, &spec, 1, sres, NULL, NULL),
        ANVIL_UNAUTHENTICATED);
    assert_jobs_stored(f, 1);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
#define T_AUTH(name) cmocka_unit_test_setup_teardown(name, setup_auth, teardown)
    const struct CMUnitTest tests[] = {
        T(test_submit_many_stores_32_jobs_in_order_with_their_options),
        T(test_submit_many_takes_1000_jobs_in_one_call),
        T(test_bad_jobs_in_a_batch_are_refused_alone_and_the_rest_stored),
        T(test_each_refused_job_is_named_in_its_own_result),
        T(test_the_sdk_refuses_0_or_1001_items_without_a_call),
        T(test_the_server_refuses_0_or_1001_items_and_keeps_serving),
        T(test_a_resent_batch_is_stored_once_with_the_same_ids),
        T(test_a_batch_whose_request_ids_would_wrap_is_refused),
        T(test_a_submit_reusing_request_id_r_plus_1_returns_the_batchs_job_1),
        T(test_calls_after_a_batch_are_not_taken_for_resends),
        T(test_a_key_repeated_in_a_batch_returns_the_first_job),
        T(test_a_key_used_before_returns_that_job_in_a_later_batch),
        T(test_report_completes_retries_and_fails_jobs_in_one_call),
        T(test_a_resent_report_changes_nothing),
        T(test_report_refuses_a_stale_token_through_the_sdk),
        T(test_report_refuses_bad_outcomes_alone_naming_each),
        cmocka_unit_test_setup_teardown(
            test_a_report_wakes_a_job_wait_parked_on_its_job, setup_one_wait,
            teardown),
        T_AUTH(test_a_worker_token_may_report_but_not_submit_many),
        T_AUTH(test_a_client_token_may_submit_many_but_not_report),
        // Fails today (a server bug, see the test): last, so that under
        // CMOCKA_TEST_ABORT=1 every other test has run.
        T(test_a_batch_larger_than_one_payload_is_answered_not_dropped),
    };
#undef T
#undef T_AUTH

    return cmocka_run_group_tests(tests, NULL, NULL);
}
