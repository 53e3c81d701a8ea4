// test_handlers.c - per-rpc decoding and validation into engine commands,
// and encoding of the engine's results. Request bodies are built with the
// protobuf-c generated code, exactly as a client would send them.
#include "../../server/dag.h"
#include "../../server/flowspec.h"
#include "../../server/handlers.h"

#include "anvil/v1/anvil.pb-c.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

// ---- fixture ----

struct fx {
    struct handler_limits lim;
    struct call           call;
    struct anvil_error    err;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    f->lim.max_payload = 1024;
    *state             = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    handlers_call_fini(&f->call);
    free(f);
    return 0;
}

// Packs m and decodes it as `method` into f->call (releasing what an
// earlier decode left). Returns the code; f->err holds the message.
static int
decode(struct fx *f, const char *method, const ProtobufCMessage *m)
{
    handlers_call_fini(&f->call);
    memset(&f->err, 0, sizeof(f->err));
    size_t   len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    assert_non_null(buf);
    protobuf_c_message_pack(m, buf);
    int rc = handlers_decode(&f->lim, method, buf, len, &f->call, &f->err);
    free(buf);
    assert_int_equal(f->err.code, rc);
    return rc;
}

static int
decode_raw(struct fx *f, const char *method, const void *body, size_t len)
{
    handlers_call_fini(&f->call);
    memset(&f->err, 0, sizeof(f->err));
    return handlers_decode(
        &f->lim, method, (const uint8_t *) body, len, &f->call, &f->err);
}

// Asserts rc is INVALID_ARGUMENT and the message names `field`.
static void
assert_names(struct fx *f, int rc, int code, const char *field)
{
    if (rc != code || strstr(f->err.msg, field) == NULL)
        fprintf(stderr, "want %d naming '%s'; got %d: %s\n", code, field, rc,
            f->err.msg);
    assert_int_equal(rc, code);
    assert_non_null(strstr(f->err.msg, field));
}

static char *
repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

// Encodes f->call's reply; caller frees *out.
static uint8_t *
encode(struct fx *f, size_t *len)
{
    uint8_t           *out = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(handlers_encode(&f->call, &out, len, &err), ANVIL_OK);
    assert_non_null(out);
    return out;
}

// A heap job as the store returns it (owned by the call after this).
static struct job
heap_job(int64_t id, const char *type)
{
    struct job j = {
        .id             = id,
        .type           = strdup(type),
        .queue          = strdup("default"),
        .payload        = malloc(3),
        .payload_len    = 3,
        .priority       = -4,
        .state          = ANVIL_JOB_RUNNING,
        .attempt        = 2,
        .retry          = { .max_attempts = 5 },
        .result         = calloc(1, 1),
        .error          = strdup("earlier failure"),
        .created_at     = 111,
        .started_at     = 222,
        .run_at         = 150,
        .timeout_ms     = 9000,
        .lease_deadline = 33222,
        .worker_id      = strdup("w-1"),
        .idem_key       = strdup("key"),
    };
    assert_non_null(j.payload);
    memcpy(j.payload, "a\0b", 3);
    return j;
}

// ---- the table ----

static void
test_handlers_table_matches_the_service_descriptor(void **state)
{
    (void) state;
    assert_int_equal(handlers_check(), 0);
}

// ---- names ----

static void
test_handlers_valid_name_accepts_the_allowed_characters(void **state)
{
    (void) state;
    const char *ok[] = { "a.b-c_D9", "a", "Z", "0", "-", ".", "_", "email.send",
        "queue-2", "ABCxyz_019.-" };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_true(handlers_valid_name(ok[i]));
    char *longest = repeat('x', 128);
    assert_true(handlers_valid_name(longest));
    free(longest);
}

static void
test_handlers_valid_name_rejects_empty_long_and_other_characters(void **state)
{
    (void) state;
    const char *bad[]
        = { "", "a b", "\xc3\xbc", "caf\xc3\xa9", "a/b", "a:b", "a\tb", "a\nb",
              "a\x1f"
              "b",
              "semi;colon", "quote'", "star*", "a\x7f", " lead", "trail " };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (handlers_valid_name(bad[i]))
            fprintf(stderr, "accepted bad name #%zu\n", i);
        assert_false(handlers_valid_name(bad[i]));
    }
    char *too_long = repeat('x', 129);
    assert_false(handlers_valid_name(too_long));
    free(too_long);
}

// ---- method and body ----

static void
test_handlers_decode_refuses_unknown_methods(void **state)
{
    struct fx               *f   = *state;
    Anvil__V1__GetJobRequest req = ANVIL__V1__GET_JOB_REQUEST__INIT;
    req.id                       = "j1";
    const char *methods[]        = { "NoSuchMethod", "getjob", "GetJob ", "",
               "anvil.v1.Anvil.GetJob", "Zzz", "AAA" };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        int rc = decode(f, methods[i], &req.base);
        assert_int_equal(rc, ANVIL_UNIMPLEMENTED);
        assert_non_null(strstr(f->err.msg, methods[i]));
    }
    assert_names(f, decode(f, "NoSuchMethod", &req.base), ANVIL_UNIMPLEMENTED,
        "NoSuchMethod");
}

static void
test_handlers_decode_refuses_a_garbage_body(void **state)
{
    struct fx *f = *state;
    // Length-delimited field claiming 255 bytes; a 10-byte varint; a
    // string field holding invalid UTF-8 is accepted by protobuf-c, so it
    // is not used here.
    const uint8_t truncated[] = { 0x0a, 0xff, 0x01, 'x' };
    const uint8_t varint[]   = { 0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff, 0xff, 0xff, 0xff };
    const uint8_t wiretype[] = { 0x0f };
    const struct {
        const void *b;
        size_t      n;
    } bodies[] = { { truncated, sizeof(truncated) }, { varint, sizeof(varint) },
        { wiretype, sizeof(wiretype) } };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        int rc = decode_raw(f, "SubmitJob", bodies[i].b, bodies[i].n);
        assert_names(f, rc, ANVIL_INVALID_ARGUMENT, "body");
        assert_non_null(strstr(f->err.msg, "SubmitJobRequest"));
    }
    int rc = decode_raw(f, "Poll", truncated, sizeof(truncated));
    assert_names(f, rc, ANVIL_INVALID_ARGUMENT, "PollRequest");
}

static void
test_handlers_decode_maps_each_job_method_to_its_command(void **state)
{
    struct fx *f = *state;

    Anvil__V1__SubmitJobRequest sub = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    sub.type                        = "t";
    Anvil__V1__GetJobRequest get    = ANVIL__V1__GET_JOB_REQUEST__INIT;
    get.id                          = "j5";
    Anvil__V1__ListJobsRequest list = ANVIL__V1__LIST_JOBS_REQUEST__INIT;
    Anvil__V1__WaitJobRequest  wait = ANVIL__V1__WAIT_JOB_REQUEST__INIT;
    wait.id                         = "j5";
    Anvil__V1__CancelJobRequest can = ANVIL__V1__CANCEL_JOB_REQUEST__INIT;
    can.id                          = "j5";
    Anvil__V1__PollRequest poll     = ANVIL__V1__POLL_REQUEST__INIT;
    char                  *types[]  = { "t" };
    poll.worker_id                  = "w";
    poll.n_types                    = 1;
    poll.types                      = types;
    Anvil__V1__HeartbeatRequest hb  = ANVIL__V1__HEARTBEAT_REQUEST__INIT;
    hb.worker_id                    = "w";
    Anvil__V1__CompleteRequest com  = ANVIL__V1__COMPLETE_REQUEST__INIT;
    com.job_id                      = "j5";
    Anvil__V1__FailRequest fail     = ANVIL__V1__FAIL_REQUEST__INIT;
    fail.job_id                     = "j5";
    Anvil__V1__HealthRequest health = ANVIL__V1__HEALTH_REQUEST__INIT;

    const struct {
        const char             *method;
        const ProtobufCMessage *m;
        enum cmd_kind           kind;
    } cases[] = {
        { "SubmitJob", &sub.base, CMD_SUBMIT },
        { "GetJob", &get.base, CMD_GET },
        { "ListJobs", &list.base, CMD_LIST },
        { "WaitJob", &wait.base, CMD_WAIT },
        { "CancelJob", &can.base, CMD_CANCEL },
        { "Poll", &poll.base, CMD_POLL },
        { "Heartbeat", &hb.base, CMD_HEARTBEAT },
        { "Complete", &com.base, CMD_COMPLETE },
        { "Fail", &fail.base, CMD_FAIL },
        { "Health", &health.base, CMD_HEALTH },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = decode(f, cases[i].method, cases[i].m);
        if (rc != ANVIL_OK)
            fprintf(stderr, "%s: %s\n", cases[i].method, f->err.msg);
        assert_int_equal(rc, ANVIL_OK);
        assert_int_equal(f->call.cmd.kind, cases[i].kind);
        assert_non_null(f->call.req);
    }
    // An empty body is a valid message with every field at its default.
    assert_int_equal(decode_raw(f, "Health", "", 0), ANVIL_OK);
    assert_int_equal(f->call.cmd.kind, CMD_HEALTH);
    assert_names(
        f, decode_raw(f, "SubmitJob", "", 0), ANVIL_INVALID_ARGUMENT, "type");
}

static void
test_handlers_every_service_method_answers_bad_bodies_cleanly(void **state)
{
    struct fx                        *f         = *state;
    const ProtobufCServiceDescriptor *svc       = &anvil__v1__anvil__descriptor;
    const uint8_t                     garbage[] = { 0x0a, 0xff, 0x01, 'x' };
    assert_true(svc->n_methods >= 10);
    for (unsigned i = 0; i < svc->n_methods; i++) {
        const char *name = svc->methods[i].name;
        // An empty body: valid protobuf; the handler judges its fields.
        int rc = decode_raw(f, name, "", 0);
        if (rc != ANVIL_OK)
            assert_true(strlen(f->err.msg) > 0);
        assert_true(rc == ANVIL_OK || rc == ANVIL_INVALID_ARGUMENT
            || rc == ANVIL_NOT_FOUND || rc == ANVIL_UNIMPLEMENTED);
        // A truncated body never decodes.
        rc = decode_raw(f, name, garbage, sizeof(garbage));
        assert_true(rc == ANVIL_INVALID_ARGUMENT || rc == ANVIL_UNIMPLEMENTED);
        assert_true(strlen(f->err.msg) > 0);
    }
}

// ---- SubmitJob ----

static void
test_handlers_submit_fills_the_command_with_defaults(void **state)
{
    struct fx                  *f         = *state;
    Anvil__V1__SubmitJobRequest req       = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    uint8_t                     payload[] = { '{', 0, '}' };
    req.type                              = "email.send";
    req.payload      = (ProtobufCBinaryData) { 3, payload };
    req.priority     = -3;
    req.delay_ms     = 1500;
    req.run_at_ms    = 1700000000000;
    req.timeout_ms   = 20000;
    req.max_attempts = 7;
    assert_int_equal(decode(f, "SubmitJob", &req.base), ANVIL_OK);
    struct cmd_submit *s = &f->call.cmd.u.submit;
    assert_string_equal(s->type, "email.send");
    assert_string_equal(s->queue, "default");
    assert_null(s->key);
    assert_int_equal(s->len, 3);
    assert_memory_equal(s->payload, payload, 3);
    assert_int_equal(s->priority, -3);
    assert_int_equal(s->delay_ms, 1500);
    assert_int_equal(s->run_at_ms, 1700000000000);
    assert_int_equal(s->timeout_ms, 20000);
    assert_int_equal(s->retry.max_attempts, 7);

    req.queue           = "mail";
    req.idempotency_key = "order-9";
    assert_int_equal(decode(f, "SubmitJob", &req.base), ANVIL_OK);
    assert_string_equal(f->call.cmd.u.submit.queue, "mail");
    assert_string_equal(f->call.cmd.u.submit.key, "order-9");
}

static void
test_handlers_submit_takes_a_concurrency_key_and_limit(void **state)
{
    struct fx                  *f   = *state;
    Anvil__V1__SubmitJobRequest req = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    req.type                        = "t";
    assert_int_equal(decode(f, "SubmitJob", &req.base), ANVIL_OK);
    assert_null(f->call.cmd.u.submit.ckey);
    req.concurrency_key   = "tenant-7";
    req.concurrency_limit = 2;
    assert_int_equal(decode(f, "SubmitJob", &req.base), ANVIL_OK);
    assert_string_equal(f->call.cmd.u.submit.ckey, "tenant-7");
    assert_int_equal(f->call.cmd.u.submit.climit, 2);
    req.concurrency_limit = 1000000;
    assert_int_equal(decode(f, "SubmitJob", &req.base), ANVIL_OK);
}

static void
test_handlers_submit_rejects_bad_concurrency_settings(void **state)
{
    struct fx                  *f   = *state;
    Anvil__V1__SubmitJobRequest req = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    char                       *big = repeat('k', 129);
    req.type                        = "t";
    // A limit without a key, a key without a limit, limits out of range.
    req.concurrency_limit = 3;
    assert_names(f, decode(f, "SubmitJob", &req.base), ANVIL_INVALID_ARGUMENT,
        "concurrency_key");
    req.concurrency_key   = "k";
    req.concurrency_limit = 0;
    assert_names(f, decode(f, "SubmitJob", &req.base), ANVIL_INVALID_ARGUMENT,
        "concurrency_limit");
    req.concurrency_limit = 1000001;
    assert_names(f, decode(f, "SubmitJob", &req.base), ANVIL_INVALID_ARGUMENT,
        "concurrency_limit");
    const char *bad[]     = { "a b", "x/y", "\xc3\xbc", big };
    req.concurrency_limit = 2;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        req.concurrency_key = (char *) bad[i];
        assert_names(f, decode(f, "SubmitJob", &req.base),
            ANVIL_INVALID_ARGUMENT, "concurrency_key");
    }
    free(big);
}

static void
test_handlers_submit_rejects_bad_type_and_queue_names(void **state)
{
    struct fx                  *f     = *state;
    Anvil__V1__SubmitJobRequest req   = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    char                       *big   = repeat('t', 129);
    const char                 *bad[] = { "", "a b", "\xc3\xbc", "x/y", big };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        req.type  = (char *) bad[i];
        req.queue = "default";
        assert_names(f, decode(f, "SubmitJob", &req.base),
            ANVIL_INVALID_ARGUMENT, "type");
        req.type  = "ok";
        req.queue = (char *) bad[i];
        if (bad[i][0] == '\0')
            continue; // an empty queue means "default"
        assert_names(f, decode(f, "SubmitJob", &req.base),
            ANVIL_INVALID_ARGUMENT, "queue");
    }
    // The echo of a long name is cut short.
    req.type  = big;
    req.queue = "";
    assert_names(
        f, decode(f, "SubmitJob", &req.base), ANVIL_INVALID_ARGUMENT, "...");
    assert_true(strlen(f->err.msg) < 200);
    free(big);
}

static void
test_handlers_submit_rejects_a_payload_over_the_limit(void **state)
{
    struct fx                  *f   = *state;
    Anvil__V1__SubmitJobRequest req = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    uint8_t                    *buf = calloc(1, 1025);
    assert_non_null(buf);
    req.type    = "t";
    req.payload = (ProtobufCBinaryData) { 1024, buf };
    assert_int_equal(decode(f, "SubmitJob", &req.base), ANVIL_OK);
    assert_int_equal(f->call.cmd.u.submit.len, 1024);
    req.payload = (ProtobufCBinaryData) { 1025, buf };
    int rc      = decode(f, "SubmitJob", &req.base);
    assert_names(f, rc, ANVIL_INVALID_ARGUMENT, "payload");
    assert_non_null(strstr(f->err.msg, "1025"));
    assert_non_null(strstr(f->err.msg, "1024"));
    free(buf);
}

static void
test_handlers_submit_rejects_bad_numbers_and_long_keys(void **state)
{
    struct fx                  *f   = *state;
    Anvil__V1__SubmitJobRequest req = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    req.type                        = "t";
    req.delay_ms                    = -1;
    assert_names(f, decode(f, "SubmitJob", &req.base), ANVIL_INVALID_ARGUMENT,
        "delay_ms");
    req.delay_ms  = 0;
    req.run_at_ms = -5;
    assert_names(f, decode(f, "SubmitJob", &req.base), ANVIL_INVALID_ARGUMENT,
        "run_at_ms");
    req.run_at_ms  = 0;
    req.timeout_ms = INT64_MIN;
    assert_names(f, decode(f, "SubmitJob", &req.base), ANVIL_INVALID_ARGUMENT,
        "timeout_ms");
    req.timeout_ms   = 0;
    req.max_attempts = 1001;
    assert_names(f, decode(f, "SubmitJob", &req.base), ANVIL_INVALID_ARGUMENT,
        "max_attempts");
    req.max_attempts = 1000;
    assert_int_equal(decode(f, "SubmitJob", &req.base), ANVIL_OK);

    char *key           = repeat('k', 257);
    req.idempotency_key = key;
    assert_names(f, decode(f, "SubmitJob", &req.base), ANVIL_INVALID_ARGUMENT,
        "idempotency_key");
    key[256] = '\0';
    assert_int_equal(decode(f, "SubmitJob", &req.base), ANVIL_OK);
    free(key);
}

// ---- job ids ----

static void
test_handlers_job_ids_parse_and_malformed_ones_are_not_found(void **state)
{
    struct fx               *f   = *state;
    Anvil__V1__GetJobRequest req = ANVIL__V1__GET_JOB_REQUEST__INIT;
    req.id                       = "j42";
    assert_int_equal(decode(f, "GetJob", &req.base), ANVIL_OK);
    assert_int_equal(f->call.cmd.u.get.id, 42);

    const char *bad[] = { "x42", "42", "j", "j0", "j-1", "j01", "j42x", "J42",
        "j 42", "j99999999999999999999999" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        req.id = (char *) bad[i];
        assert_names(
            f, decode(f, "GetJob", &req.base), ANVIL_NOT_FOUND, bad[i]);
    }
    req.id = "";
    assert_names(
        f, decode(f, "GetJob", &req.base), ANVIL_INVALID_ARGUMENT, "job id");

    Anvil__V1__CancelJobRequest can = ANVIL__V1__CANCEL_JOB_REQUEST__INIT;
    can.id                          = "nope";
    assert_names(f, decode(f, "CancelJob", &can.base), ANVIL_NOT_FOUND, "nope");
    can.id = "j7";
    assert_int_equal(decode(f, "CancelJob", &can.base), ANVIL_OK);
    assert_int_equal(f->call.cmd.u.cancel.id, 7);

    Anvil__V1__CompleteRequest com = ANVIL__V1__COMPLETE_REQUEST__INIT;
    com.job_id                     = "w7";
    assert_names(f, decode(f, "Complete", &com.base), ANVIL_NOT_FOUND, "w7");
    Anvil__V1__FailRequest fail = ANVIL__V1__FAIL_REQUEST__INIT;
    fail.job_id                 = "7";
    assert_names(f, decode(f, "Fail", &fail.base), ANVIL_NOT_FOUND, "7");
}

// ---- ListJobs ----

static void
test_handlers_list_applies_limits_cursor_and_filters(void **state)
{
    struct fx                 *f   = *state;
    Anvil__V1__ListJobsRequest req = ANVIL__V1__LIST_JOBS_REQUEST__INIT;
    assert_int_equal(decode(f, "ListJobs", &req.base), ANVIL_OK);
    struct store_list_filter *flt = &f->call.cmd.u.list.f;
    assert_int_equal(flt->limit, 50);
    assert_int_equal(flt->before_id, 0);
    assert_int_equal(flt->state, 0);
    assert_null(flt->type);
    assert_null(flt->queue);

    req.limit  = 1000;
    req.cursor = "j42";
    req.state  = ANVIL__V1__JOB_STATE__JOB_STATE_RUNNING;
    req.type   = "email";
    req.queue  = "mail";
    assert_int_equal(decode(f, "ListJobs", &req.base), ANVIL_OK);
    flt = &f->call.cmd.u.list.f;
    assert_int_equal(flt->limit, 1000);
    assert_int_equal(flt->before_id, 42);
    assert_int_equal(flt->state, ANVIL_JOB_RUNNING);
    assert_string_equal(flt->type, "email");
    assert_string_equal(flt->queue, "mail");
}

static void
test_handlers_list_rejects_bad_limit_cursor_state_and_names(void **state)
{
    struct fx                 *f   = *state;
    Anvil__V1__ListJobsRequest req = ANVIL__V1__LIST_JOBS_REQUEST__INIT;
    req.limit                      = 1001;
    assert_names(
        f, decode(f, "ListJobs", &req.base), ANVIL_INVALID_ARGUMENT, "limit");
    req.limit = UINT32_MAX;
    assert_names(
        f, decode(f, "ListJobs", &req.base), ANVIL_INVALID_ARGUMENT, "limit");
    req.limit                 = 10;
    const char *bad_cursors[] = { "abc", "j0", "j-3", "42", "j12z" };
    for (size_t i = 0; i < 5; i++) {
        req.cursor = (char *) bad_cursors[i];
        assert_names(f, decode(f, "ListJobs", &req.base),
            ANVIL_INVALID_ARGUMENT, "cursor");
    }
    req.cursor = "";
    req.state  = (Anvil__V1__JobState) 99;
    assert_names(
        f, decode(f, "ListJobs", &req.base), ANVIL_INVALID_ARGUMENT, "state");
    req.state = (Anvil__V1__JobState) -1;
    assert_names(
        f, decode(f, "ListJobs", &req.base), ANVIL_INVALID_ARGUMENT, "state");
    req.state = 0;
    req.type  = "bad type";
    assert_names(
        f, decode(f, "ListJobs", &req.base), ANVIL_INVALID_ARGUMENT, "type");
    req.type  = "";
    req.queue = "bad/queue";
    assert_names(
        f, decode(f, "ListJobs", &req.base), ANVIL_INVALID_ARGUMENT, "queue");
}

// ---- RetryJobs and CancelJobs ----

static void
test_handlers_bulk_takes_list_filters_with_a_limit_of_100(void **state)
{
    struct fx                  *f   = *state;
    Anvil__V1__RetryJobsRequest req = ANVIL__V1__RETRY_JOBS_REQUEST__INIT;
    req.state                       = ANVIL__V1__JOB_STATE__JOB_STATE_FAILED;
    req.type                        = "email";
    req.queue                       = "mail";
    req.cursor                      = "j9";
    req.since_ms                    = 1000;
    req.until_ms                    = 2000;
    req.max_attempts                = 4;
    assert_int_equal(decode(f, "RetryJobs", &req.base), ANVIL_OK);
    assert_int_equal(f->call.cmd.kind, CMD_RETRY_MANY);
    struct cmd_bulk *k = &f->call.cmd.u.bulk;
    assert_int_equal(k->f.state, ANVIL_JOB_FAILED);
    assert_string_equal(k->f.type, "email");
    assert_string_equal(k->f.queue, "mail");
    assert_int_equal(k->f.before_id, 9);
    assert_int_equal(k->f.limit, 100);
    assert_int_equal(k->f.since, 1000);
    assert_int_equal(k->f.until, 2000);
    assert_int_equal(k->max_attempts, 4);

    Anvil__V1__CancelJobsRequest can = ANVIL__V1__CANCEL_JOBS_REQUEST__INIT;
    can.state                        = ANVIL__V1__JOB_STATE__JOB_STATE_QUEUED;
    can.limit                        = 1000;
    assert_int_equal(decode(f, "CancelJobs", &can.base), ANVIL_OK);
    assert_int_equal(f->call.cmd.kind, CMD_CANCEL_MANY);
    assert_int_equal(f->call.cmd.u.bulk.f.limit, 1000);
    assert_null(f->call.cmd.u.bulk.f.type);

    // The answer: how many, their ids and a cursor when more match.
    int64_t ids[]          = { 7, 5 };
    f->call.cmd.u.bulk.ids = malloc(sizeof(ids));
    assert_non_null(f->call.cmd.u.bulk.ids);
    memcpy(f->call.cmd.u.bulk.ids, ids, sizeof(ids));
    f->call.cmd.u.bulk.n           = 2;
    f->call.cmd.u.bulk.next_before = 5;
    size_t                         len;
    uint8_t                       *out = encode(f, &len);
    Anvil__V1__CancelJobsResponse *r
        = anvil__v1__cancel_jobs_response__unpack(NULL, len, out);
    assert_non_null(r);
    assert_int_equal(r->count, 2);
    assert_int_equal(r->n_ids, 2);
    assert_string_equal(r->ids[0], "j7");
    assert_string_equal(r->ids[1], "j5");
    assert_string_equal(r->next_cursor, "j5");
    anvil__v1__cancel_jobs_response__free_unpacked(r, NULL);
    free(out);
}

static void
test_handlers_bulk_refuses_bad_filters_naming_the_field(void **state)
{
    struct fx                  *f   = *state;
    Anvil__V1__RetryJobsRequest req = ANVIL__V1__RETRY_JOBS_REQUEST__INIT;
    // No state, or one a retry cannot act on.
    assert_names(
        f, decode(f, "RetryJobs", &req.base), ANVIL_INVALID_ARGUMENT, "state");
    req.state = ANVIL__V1__JOB_STATE__JOB_STATE_RUNNING;
    assert_names(f, decode(f, "RetryJobs", &req.base), ANVIL_INVALID_ARGUMENT,
        "FAILED or CANCELED");
    req.state = (Anvil__V1__JobState) 42;
    assert_names(
        f, decode(f, "RetryJobs", &req.base), ANVIL_INVALID_ARGUMENT, "state");
    req.state = ANVIL__V1__JOB_STATE__JOB_STATE_FAILED;
    req.limit = 1001;
    assert_names(
        f, decode(f, "RetryJobs", &req.base), ANVIL_INVALID_ARGUMENT, "1000");
    req.limit    = 10;
    req.since_ms = 2000;
    req.until_ms = 1000;
    assert_names(f, decode(f, "RetryJobs", &req.base), ANVIL_INVALID_ARGUMENT,
        "since_ms");
    req.since_ms = -1;
    req.until_ms = 0;
    assert_names(f, decode(f, "RetryJobs", &req.base), ANVIL_INVALID_ARGUMENT,
        "since_ms");
    req.since_ms     = 0;
    req.max_attempts = 1001;
    assert_names(f, decode(f, "RetryJobs", &req.base), ANVIL_INVALID_ARGUMENT,
        "max_attempts");
    req.max_attempts = 0;
    req.cursor       = "nope";
    assert_names(
        f, decode(f, "RetryJobs", &req.base), ANVIL_INVALID_ARGUMENT, "cursor");

    // A cancel takes only unfinished states.
    Anvil__V1__CancelJobsRequest can = ANVIL__V1__CANCEL_JOBS_REQUEST__INIT;
    assert_names(
        f, decode(f, "CancelJobs", &can.base), ANVIL_INVALID_ARGUMENT, "state");
    can.state = ANVIL__V1__JOB_STATE__JOB_STATE_SUCCEEDED;
    assert_names(f, decode(f, "CancelJobs", &can.base), ANVIL_INVALID_ARGUMENT,
        "SUCCEEDED");
    can.state = ANVIL__V1__JOB_STATE__JOB_STATE_RUNNING;
    can.queue = "bad queue";
    assert_names(
        f, decode(f, "CancelJobs", &can.base), ANVIL_INVALID_ARGUMENT, "queue");
}

// ---- Poll, Heartbeat, WaitJob, Complete, Fail ----

static void
test_handlers_poll_fills_defaults(void **state)
{
    struct fx             *f       = *state;
    Anvil__V1__PollRequest req     = ANVIL__V1__POLL_REQUEST__INIT;
    char                  *types[] = { "a", "b" };
    req.worker_id                  = "host-1.worker";
    req.n_types                    = 2;
    req.types                      = types;
    assert_int_equal(decode(f, "Poll", &req.base), ANVIL_OK);
    struct cmd_poll *p = &f->call.cmd.u.poll;
    assert_string_equal(p->worker, "host-1.worker");
    assert_int_equal(p->nq, 1);
    assert_string_equal(p->queues[0], "default");
    assert_int_equal(p->nt, 2);
    assert_string_equal(p->types[1], "b");
    assert_int_equal(p->max, 1);
    assert_int_equal(p->wait_ms, 0);

    char *queues[] = { "q1", "q2", "q3" };
    req.n_queues   = 3;
    req.queues     = queues;
    req.max_jobs   = 1000;
    req.wait_ms    = 60000;
    assert_int_equal(decode(f, "Poll", &req.base), ANVIL_OK);
    p = &f->call.cmd.u.poll;
    assert_int_equal(p->nq, 3);
    assert_string_equal(p->queues[2], "q3");
    assert_int_equal(p->max, 1000);
    assert_int_equal(p->wait_ms, 60000);
}

static void
test_handlers_poll_rejects_empty_types_and_bad_fields(void **state)
{
    struct fx             *f   = *state;
    Anvil__V1__PollRequest req = ANVIL__V1__POLL_REQUEST__INIT;
    req.worker_id              = "w";
    assert_names(
        f, decode(f, "Poll", &req.base), ANVIL_INVALID_ARGUMENT, "types");

    char *types[] = { "t" };
    req.n_types   = 1;
    req.types     = types;
    req.worker_id = "";
    assert_names(
        f, decode(f, "Poll", &req.base), ANVIL_INVALID_ARGUMENT, "worker_id");
    req.worker_id = "has space";
    assert_names(
        f, decode(f, "Poll", &req.base), ANVIL_INVALID_ARGUMENT, "worker_id");
    req.worker_id = "w";
    char *bad_q[] = { "ok", "not ok" };
    req.n_queues  = 2;
    req.queues    = bad_q;
    assert_names(
        f, decode(f, "Poll", &req.base), ANVIL_INVALID_ARGUMENT, "queues");
    req.n_queues  = 0;
    char *bad_t[] = { "t", "" };
    req.n_types   = 2;
    req.types     = bad_t;
    assert_names(
        f, decode(f, "Poll", &req.base), ANVIL_INVALID_ARGUMENT, "types");

    char *many[65];
    for (size_t i = 0; i < 65; i++)
        many[i] = "t";
    req.n_types = 65;
    req.types   = many;
    assert_names(
        f, decode(f, "Poll", &req.base), ANVIL_INVALID_ARGUMENT, "types");
    req.n_types = 64;
    assert_int_equal(decode(f, "Poll", &req.base), ANVIL_OK);
    req.max_jobs = 1001;
    assert_names(
        f, decode(f, "Poll", &req.base), ANVIL_INVALID_ARGUMENT, "max_jobs");
    req.max_jobs = 1;
    req.wait_ms  = 60001;
    assert_names(
        f, decode(f, "Poll", &req.base), ANVIL_INVALID_ARGUMENT, "wait_ms");
}

static void
test_handlers_heartbeat_maps_leases_and_rejects_bad_ids(void **state)
{
    struct fx                  *f      = *state;
    Anvil__V1__HeartbeatRequest req    = ANVIL__V1__HEARTBEAT_REQUEST__INIT;
    Anvil__V1__LeaseRef         a      = ANVIL__V1__LEASE_REF__INIT;
    Anvil__V1__LeaseRef         b      = ANVIL__V1__LEASE_REF__INIT;
    Anvil__V1__LeaseRef        *refs[] = { &a, &b };
    a.job_id                           = "j3";
    a.token                            = 1;
    b.job_id                           = "j9";
    b.token                            = 4;
    req.worker_id                      = "w";
    req.n_leases                       = 2;
    req.leases                         = refs;
    assert_int_equal(decode(f, "Heartbeat", &req.base), ANVIL_OK);
    struct cmd_heartbeat *h = &f->call.cmd.u.heartbeat;
    assert_string_equal(h->worker, "w");
    assert_int_equal(h->n, 2);
    assert_int_equal(h->refs[0].id, 3);
    assert_int_equal(h->refs[0].token, 1);
    assert_int_equal(h->refs[1].id, 9);
    assert_int_equal(h->refs[1].token, 4);

    b.job_id = "bogus";
    assert_names(
        f, decode(f, "Heartbeat", &req.base), ANVIL_NOT_FOUND, "bogus");
    b.job_id      = "j9";
    req.worker_id = "";
    assert_names(f, decode(f, "Heartbeat", &req.base), ANVIL_INVALID_ARGUMENT,
        "worker_id");
}

static void
test_handlers_heartbeat_checks_progress_naming_the_field(void **state)
{
    struct fx                  *f      = *state;
    Anvil__V1__HeartbeatRequest req    = ANVIL__V1__HEARTBEAT_REQUEST__INIT;
    Anvil__V1__LeaseRef         a      = ANVIL__V1__LEASE_REF__INIT;
    Anvil__V1__LeaseRef         b      = ANVIL__V1__LEASE_REF__INIT;
    Anvil__V1__LeaseRef        *refs[] = { &a, &b };
    Anvil__V1__Progress         p      = ANVIL__V1__PROGRESS__INIT;
    a.job_id                           = "j3";
    b.job_id                           = "j9";
    b.progress                         = &p;
    p.percent                          = 40;
    p.message                          = "copying \xc3\xa9";
    req.worker_id                      = "w";
    req.n_leases                       = 2;
    req.leases                         = refs;
    assert_int_equal(decode(f, "Heartbeat", &req.base), ANVIL_OK);
    struct cmd_heartbeat *h = &f->call.cmd.u.heartbeat;
    assert_false(h->refs[0].has_progress); // absent = no report
    assert_true(h->refs[1].has_progress);
    assert_int_equal(h->refs[1].progress_percent, 40);
    assert_string_equal(h->refs[1].progress_message, "copying \xc3\xa9");
    p.percent = 0;
    p.message = "";
    assert_int_equal(decode(f, "Heartbeat", &req.base), ANVIL_OK);
    assert_true(f->call.cmd.u.heartbeat.refs[1].has_progress);

    p.percent = 101;
    assert_names(f, decode(f, "Heartbeat", &req.base), ANVIL_INVALID_ARGUMENT,
        "leases[1].progress.percent");
    p.percent = -1;
    assert_names(f, decode(f, "Heartbeat", &req.base), ANVIL_INVALID_ARGUMENT,
        "leases[1].progress.percent");
    p.percent = 100;
    p.message = repeat('m', ANVIL_PROGRESS_MESSAGE_MAX + 1);
    assert_names(f, decode(f, "Heartbeat", &req.base), ANVIL_INVALID_ARGUMENT,
        "leases[1].progress.message");
    p.message[ANVIL_PROGRESS_MESSAGE_MAX] = '\0'; // exactly at the limit
    assert_int_equal(decode(f, "Heartbeat", &req.base), ANVIL_OK);
    free(p.message);
    p.message = "bad \xff byte";
    assert_names(f, decode(f, "Heartbeat", &req.base), ANVIL_INVALID_ARGUMENT,
        "leases[1].progress.message");
    p.message = "cut \xe2\x82";
    assert_names(
        f, decode(f, "Heartbeat", &req.base), ANVIL_INVALID_ARGUMENT, "UTF-8");
}

static void
test_handlers_wait_rejects_a_timeout_over_the_limit(void **state)
{
    struct fx                *f   = *state;
    Anvil__V1__WaitJobRequest req = ANVIL__V1__WAIT_JOB_REQUEST__INIT;
    req.id                        = "j1";
    req.timeout_ms                = 300000;
    assert_int_equal(decode(f, "WaitJob", &req.base), ANVIL_OK);
    assert_int_equal(f->call.cmd.u.wait.id, 1);
    assert_int_equal(f->call.cmd.u.wait.timeout_ms, 300000);
    req.timeout_ms = 300001;
    assert_names(f, decode(f, "WaitJob", &req.base), ANVIL_INVALID_ARGUMENT,
        "timeout_ms");
}

static void
test_handlers_complete_rejects_a_result_over_the_limit(void **state)
{
    struct fx                 *f   = *state;
    Anvil__V1__CompleteRequest req = ANVIL__V1__COMPLETE_REQUEST__INIT;
    uint8_t                   *buf = calloc(1, 2048);
    assert_non_null(buf);
    req.job_id = "j8";
    req.token  = 3;
    req.result = (ProtobufCBinaryData) { 1024, buf };
    assert_int_equal(decode(f, "Complete", &req.base), ANVIL_OK);
    assert_int_equal(f->call.cmd.u.complete.id, 8);
    assert_int_equal(f->call.cmd.u.complete.token, 3);
    assert_int_equal(f->call.cmd.u.complete.len, 1024);
    req.result = (ProtobufCBinaryData) { 2048, buf };
    assert_names(
        f, decode(f, "Complete", &req.base), ANVIL_INVALID_ARGUMENT, "result");
    free(buf);
}

static void
test_handlers_fail_defaults_its_text_and_rejects_huge_text(void **state)
{
    struct fx             *f   = *state;
    Anvil__V1__FailRequest req = ANVIL__V1__FAIL_REQUEST__INIT;
    req.job_id                 = "j8";
    req.token                  = 2;
    req.no_retry               = true;
    assert_int_equal(decode(f, "Fail", &req.base), ANVIL_OK);
    assert_string_equal(f->call.cmd.u.fail.error, "failed");
    assert_true(f->call.cmd.u.fail.no_retry);
    assert_int_equal(f->call.cmd.u.fail.token, 2);

    char *text = repeat('e', 65537);
    req.error  = text;
    assert_names(
        f, decode(f, "Fail", &req.base), ANVIL_INVALID_ARGUMENT, "error");
    text[65536] = '\0';
    assert_int_equal(decode(f, "Fail", &req.base), ANVIL_OK);
    assert_int_equal(strlen(f->call.cmd.u.fail.error), 65536);
    free(text);
}

// ---- encode ----

static void
test_handlers_encode_submit_answers_the_id_text(void **state)
{
    struct fx                  *f   = *state;
    Anvil__V1__SubmitJobRequest req = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    req.type                        = "t";
    assert_int_equal(decode(f, "SubmitJob", &req.base), ANVIL_OK);
    f->call.cmd.u.submit.id      = 42;
    f->call.cmd.u.submit.existed = true;
    size_t                        len;
    uint8_t                      *out = encode(f, &len);
    Anvil__V1__SubmitJobResponse *r
        = anvil__v1__submit_job_response__unpack(NULL, len, out);
    assert_non_null(r);
    assert_string_equal(r->id, "j42");
    assert_true(r->existed);
    anvil__v1__submit_job_response__free_unpacked(r, NULL);
    free(out);
}

static void
test_handlers_encode_get_carries_every_job_field(void **state)
{
    struct fx               *f   = *state;
    Anvil__V1__GetJobRequest req = ANVIL__V1__GET_JOB_REQUEST__INIT;
    req.id                       = "j7";
    assert_int_equal(decode(f, "GetJob", &req.base), ANVIL_OK);
    f->call.cmd.u.get.job = heap_job(7, "email");
    size_t                     len;
    uint8_t                   *out = encode(f, &len);
    Anvil__V1__GetJobResponse *r
        = anvil__v1__get_job_response__unpack(NULL, len, out);
    assert_non_null(r);
    assert_non_null(r->job);
    Anvil__V1__Job *j = r->job;
    assert_string_equal(j->id, "j7");
    assert_string_equal(j->type, "email");
    assert_string_equal(j->queue, "default");
    assert_int_equal(j->payload.len, 3);
    assert_memory_equal(j->payload.data, "a\0b", 3);
    assert_int_equal(j->priority, -4);
    assert_int_equal(j->state, ANVIL__V1__JOB_STATE__JOB_STATE_RUNNING);
    assert_int_equal(j->attempt, 2);
    assert_int_equal(j->max_attempts, 5);
    assert_string_equal(j->error, "earlier failure");
    assert_int_equal(j->created_at_ms, 111);
    assert_int_equal(j->started_at_ms, 222);
    assert_int_equal(j->run_at_ms, 150);
    assert_int_equal(j->timeout_ms, 9000);
    assert_string_equal(j->worker_id, "w-1");
    assert_string_equal(j->idempotency_key, "key");
    anvil__v1__get_job_response__free_unpacked(r, NULL);
    free(out);
}

static void
test_handlers_encode_poll_gives_each_lease_its_token(void **state)
{
    struct fx             *f       = *state;
    Anvil__V1__PollRequest req     = ANVIL__V1__POLL_REQUEST__INIT;
    char                  *types[] = { "t" };
    req.worker_id                  = "w";
    req.n_types                    = 1;
    req.types                      = types;
    assert_int_equal(decode(f, "Poll", &req.base), ANVIL_OK);
    struct cmd_poll *p = &f->call.cmd.u.poll;
    p->jobs            = calloc(2, sizeof(*p->jobs));
    assert_non_null(p->jobs);
    p->jobs[0]                = heap_job(3, "t");
    p->jobs[1]                = heap_job(4, "t");
    p->jobs[1].attempt        = 3;
    p->jobs[1].lease_deadline = 99999;
    p->n                      = 2;
    size_t                   len;
    uint8_t                 *out = encode(f, &len);
    Anvil__V1__PollResponse *r
        = anvil__v1__poll_response__unpack(NULL, len, out);
    assert_non_null(r);
    assert_int_equal(r->n_leases, 2);
    assert_string_equal(r->leases[0]->job->id, "j3");
    assert_int_equal(r->leases[0]->token, 2);
    assert_int_equal(r->leases[0]->deadline_ms, 33222);
    assert_string_equal(r->leases[1]->job->id, "j4");
    assert_int_equal(r->leases[1]->token, 3);
    assert_int_equal(r->leases[1]->deadline_ms, 99999);
    anvil__v1__poll_response__free_unpacked(r, NULL);
    free(out);

    // An empty poll answers no leases.
    engine_cmd_fini(&f->call.cmd);
    out = encode(f, &len);
    r   = anvil__v1__poll_response__unpack(NULL, len, out);
    assert_non_null(r);
    assert_int_equal(r->n_leases, 0);
    anvil__v1__poll_response__free_unpacked(r, NULL);
    free(out);
}

static void
test_handlers_encode_list_gives_a_cursor_only_when_more_follow(void **state)
{
    struct fx                 *f   = *state;
    Anvil__V1__ListJobsRequest req = ANVIL__V1__LIST_JOBS_REQUEST__INIT;
    assert_int_equal(decode(f, "ListJobs", &req.base), ANVIL_OK);
    struct cmd_list *l = &f->call.cmd.u.list;
    l->jobs            = calloc(1, sizeof(*l->jobs));
    assert_non_null(l->jobs);
    l->jobs[0]     = heap_job(12, "t");
    l->n           = 1;
    l->next_before = 12;
    size_t                       len;
    uint8_t                     *out = encode(f, &len);
    Anvil__V1__ListJobsResponse *r
        = anvil__v1__list_jobs_response__unpack(NULL, len, out);
    assert_non_null(r);
    assert_int_equal(r->n_jobs, 1);
    assert_string_equal(r->jobs[0]->id, "j12");
    assert_string_equal(r->next_cursor, "j12");
    anvil__v1__list_jobs_response__free_unpacked(r, NULL);
    free(out);

    // The cursor it hands out is one decode accepts.
    req.cursor = "j12";
    assert_int_equal(decode(f, "ListJobs", &req.base), ANVIL_OK);
    assert_int_equal(f->call.cmd.u.list.f.before_id, 12);
    // Last page: no cursor.
    out = encode(f, &len);
    r   = anvil__v1__list_jobs_response__unpack(NULL, len, out);
    assert_non_null(r);
    assert_int_equal(r->n_jobs, 0);
    assert_string_equal(r->next_cursor, "");
    anvil__v1__list_jobs_response__free_unpacked(r, NULL);
    free(out);
}

static void
test_handlers_encode_heartbeat_and_fail_results(void **state)
{
    struct fx                  *f   = *state;
    Anvil__V1__HeartbeatRequest req = ANVIL__V1__HEARTBEAT_REQUEST__INIT;
    req.worker_id                   = "w";
    assert_int_equal(decode(f, "Heartbeat", &req.base), ANVIL_OK);
    struct cmd_heartbeat *h = &f->call.cmd.u.heartbeat;
    h->canceled             = calloc(1, sizeof(int64_t));
    h->lost                 = calloc(2, sizeof(int64_t));
    assert_non_null(h->canceled);
    assert_non_null(h->lost);
    h->canceled[0] = 5;
    h->ncanceled   = 1;
    h->lost[0]     = 6;
    h->lost[1]     = 70;
    h->nlost       = 2;
    h->deadline    = 123456;
    size_t                        len;
    uint8_t                      *out = encode(f, &len);
    Anvil__V1__HeartbeatResponse *r
        = anvil__v1__heartbeat_response__unpack(NULL, len, out);
    assert_non_null(r);
    assert_int_equal(r->n_canceled, 1);
    assert_string_equal(r->canceled[0], "j5");
    assert_int_equal(r->n_lost, 2);
    assert_string_equal(r->lost[0], "j6");
    assert_string_equal(r->lost[1], "j70");
    assert_int_equal(r->deadline_ms, 123456);
    anvil__v1__heartbeat_response__free_unpacked(r, NULL);
    free(out);

    Anvil__V1__FailRequest fr = ANVIL__V1__FAIL_REQUEST__INIT;
    fr.job_id                 = "j5";
    assert_int_equal(decode(f, "Fail", &fr.base), ANVIL_OK);
    f->call.cmd.u.fail.state    = ANVIL_JOB_SCHEDULED;
    f->call.cmd.u.fail.retry_at = 777;
    out                         = encode(f, &len);
    Anvil__V1__FailResponse *fres
        = anvil__v1__fail_response__unpack(NULL, len, out);
    assert_non_null(fres);
    assert_int_equal(fres->state, ANVIL__V1__JOB_STATE__JOB_STATE_SCHEDULED);
    assert_int_equal(fres->retry_at_ms, 777);
    anvil__v1__fail_response__free_unpacked(fres, NULL);
    free(out);
}

static void
test_handlers_encode_health_lists_depths(void **state)
{
    struct fx               *f   = *state;
    Anvil__V1__HealthRequest req = ANVIL__V1__HEALTH_REQUEST__INIT;
    assert_int_equal(decode(f, "Health", &req.base), ANVIL_OK);
    struct cmd_health *h = &f->call.cmd.u.health;
    h->depths            = calloc(1, sizeof(*h->depths));
    assert_non_null(h->depths);
    h->depths[0] = (struct store_depth) { .queue = strdup("default"),
        .type                                    = strdup("t"),
        .queued                                  = 4,
        .running                                 = 2 };
    h->n         = 1;
    h->total     = 9;
    h->uptime_ms = 1234;
    size_t                     len;
    uint8_t                   *out = encode(f, &len);
    Anvil__V1__HealthResponse *r
        = anvil__v1__health_response__unpack(NULL, len, out);
    assert_non_null(r);
    assert_string_equal(r->version, ANVIL_VERSION);
    assert_int_equal(r->uptime_ms, 1234);
    assert_int_equal(r->jobs_total, 9);
    assert_int_equal(r->n_depths, 1);
    assert_string_equal(r->depths[0]->queue, "default");
    assert_string_equal(r->depths[0]->type, "t");
    assert_int_equal(r->depths[0]->queued, 4);
    assert_int_equal(r->depths[0]->running, 2);
    anvil__v1__health_response__free_unpacked(r, NULL);
    free(out);
}

// ---- WatchEvents, RetryJob, GetJob by key ----

static void
test_handlers_watch_fills_the_filter_and_defaults(void **state)
{
    struct fx                    *f   = *state;
    Anvil__V1__WatchEventsRequest req = ANVIL__V1__WATCH_EVENTS_REQUEST__INIT;
    Anvil__V1__EventKind          kinds[]
        = { ANVIL__V1__EVENT_KIND__EVENT_KIND_JOB_FAILED,
              ANVIL__V1__EVENT_KIND__EVENT_KIND_WORKER_LOST };
    req.after_seq   = 41;
    req.job_id      = "j7";
    req.workflow_id = "w3";
    req.type        = "resize";
    req.kinds       = kinds;
    req.n_kinds     = 2;
    req.timeout_ms  = 5000;
    assert_int_equal(decode(f, "WatchEvents", &req.base), ANVIL_OK);
    const struct cmd_events *w = &f->call.cmd.u.events;
    assert_int_equal(f->call.cmd.kind, CMD_EVENTS);
    assert_int_equal(w->f.after_seq, 41);
    assert_int_equal(w->f.job_id, 7);
    assert_int_equal(w->f.workflow_id, 3);
    assert_string_equal(w->f.type, "resize");
    assert_null(w->f.queue);
    assert_int_equal(
        w->f.kinds, (1u << EV_JOB_FAILED) | (1u << EV_WORKER_LOST));
    assert_int_equal(w->f.limit, 100);
    assert_true(f->call.long_poll);
}

static void
test_handlers_watch_names_each_bad_field(void **state)
{
    struct fx                    *f   = *state;
    Anvil__V1__WatchEventsRequest req = ANVIL__V1__WATCH_EVENTS_REQUEST__INIT;
    Anvil__V1__EventKind          kinds[] = { (Anvil__V1__EventKind) 99 };
    req.limit                             = 1001;
    assert_names(f, decode(f, "WatchEvents", &req.base), ANVIL_INVALID_ARGUMENT,
        "limit");
    req.limit      = 0;
    req.timeout_ms = 300001;
    assert_names(f, decode(f, "WatchEvents", &req.base), ANVIL_INVALID_ARGUMENT,
        "timeout_ms");
    req.timeout_ms = 0;
    req.tail       = 100001;
    assert_names(
        f, decode(f, "WatchEvents", &req.base), ANVIL_INVALID_ARGUMENT, "tail");
    req.tail   = 0;
    req.job_id = "job-7";
    assert_names(f, decode(f, "WatchEvents", &req.base), ANVIL_INVALID_ARGUMENT,
        "job_id");
    req.job_id      = "";
    req.workflow_id = "j7";
    assert_names(f, decode(f, "WatchEvents", &req.base), ANVIL_INVALID_ARGUMENT,
        "workflow_id");
    req.workflow_id = "";
    req.queue       = "a b";
    assert_names(f, decode(f, "WatchEvents", &req.base), ANVIL_INVALID_ARGUMENT,
        "queue");
    req.queue   = "";
    req.kinds   = kinds;
    req.n_kinds = 1;
    assert_names(f, decode(f, "WatchEvents", &req.base), ANVIL_INVALID_ARGUMENT,
        "kinds[0]");
}

static void
test_handlers_retry_and_get_by_key_check_their_fields(void **state)
{
    struct fx                 *f  = *state;
    Anvil__V1__RetryJobRequest rj = ANVIL__V1__RETRY_JOB_REQUEST__INIT;
    rj.id                         = "j5";
    rj.max_attempts               = 4;
    assert_int_equal(decode(f, "RetryJob", &rj.base), ANVIL_OK);
    assert_int_equal(f->call.cmd.kind, CMD_RETRY);
    assert_int_equal(f->call.cmd.u.retry.id, 5);
    assert_int_equal(f->call.cmd.u.retry.max_attempts, 4);
    rj.max_attempts = 1001;
    assert_names(f, decode(f, "RetryJob", &rj.base), ANVIL_INVALID_ARGUMENT,
        "max_attempts");
    rj.max_attempts = 0;
    rj.id           = "";
    assert_names(
        f, decode(f, "RetryJob", &rj.base), ANVIL_INVALID_ARGUMENT, "job id");

    Anvil__V1__RetryWorkflowRequest rw
        = ANVIL__V1__RETRY_WORKFLOW_REQUEST__INIT;
    rw.id = "w2";
    assert_int_equal(decode(f, "RetryWorkflow", &rw.base), ANVIL_OK);
    assert_int_equal(f->call.cmd.kind, CMD_WF_RETRY);
    assert_int_equal(f->call.cmd.u.wf.id, 2);

    Anvil__V1__GetJobRequest g = ANVIL__V1__GET_JOB_REQUEST__INIT;
    g.idempotency_key          = "order-1";
    assert_int_equal(decode(f, "GetJob", &g.base), ANVIL_OK);
    assert_string_equal(f->call.cmd.u.get.key, "order-1");
    g.id = "j1";
    assert_names(
        f, decode(f, "GetJob", &g.base), ANVIL_INVALID_ARGUMENT, "not both");
    char *big         = repeat('k', 257);
    g.id              = "";
    g.idempotency_key = big;
    assert_names(f, decode(f, "GetJob", &g.base), ANVIL_INVALID_ARGUMENT,
        "idempotency_key");
    free(big);
}

// ---- PauseQueue, ResumeQueue ----

static void
test_handlers_pause_and_resume_take_a_valid_queue_name(void **state)
{
    struct fx                   *f   = *state;
    Anvil__V1__PauseQueueRequest req = ANVIL__V1__PAUSE_QUEUE_REQUEST__INIT;
    req.queue                        = "billing.v2";
    assert_int_equal(decode(f, "PauseQueue", &req.base), ANVIL_OK);
    assert_int_equal(f->call.cmd.kind, CMD_QUEUE_PAUSE);
    assert_string_equal(f->call.cmd.u.queue.queue, "billing.v2");
    f->call.cmd.u.queue.changed = true;
    size_t                         len;
    uint8_t                       *out = encode(f, &len);
    Anvil__V1__PauseQueueResponse *r
        = anvil__v1__pause_queue_response__unpack(NULL, len, out);
    assert_non_null(r);
    assert_string_equal(r->queue, "billing.v2");
    assert_true(r->paused);
    assert_true(r->changed);
    anvil__v1__pause_queue_response__free_unpacked(r, NULL);
    free(out);

    Anvil__V1__ResumeQueueRequest rq = ANVIL__V1__RESUME_QUEUE_REQUEST__INIT;
    rq.queue                         = "default";
    assert_int_equal(decode(f, "ResumeQueue", &rq.base), ANVIL_OK);
    assert_int_equal(f->call.cmd.kind, CMD_QUEUE_RESUME);
    out = encode(f, &len);
    Anvil__V1__ResumeQueueResponse *rr
        = anvil__v1__resume_queue_response__unpack(NULL, len, out);
    assert_non_null(rr);
    assert_string_equal(rr->queue, "default");
    assert_false(rr->paused);
    assert_false(rr->changed);
    anvil__v1__resume_queue_response__free_unpacked(rr, NULL);
    free(out);
}

static void
test_handlers_pause_and_resume_refuse_bad_queue_names(void **state)
{
    struct fx *f = *state;
    char       long_name[130];
    memset(long_name, 'q', 129);
    long_name[129] = '\0';
    const char *const bad[]
        = { "", "has space", "a/b", "caf\xc3\xa9", long_name };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        Anvil__V1__PauseQueueRequest req = ANVIL__V1__PAUSE_QUEUE_REQUEST__INIT;
        req.queue                        = (char *) bad[i];
        assert_names(f, decode(f, "PauseQueue", &req.base),
            ANVIL_INVALID_ARGUMENT, "queue");
        Anvil__V1__ResumeQueueRequest rq
            = ANVIL__V1__RESUME_QUEUE_REQUEST__INIT;
        rq.queue = (char *) bad[i];
        assert_names(f, decode(f, "ResumeQueue", &rq.base),
            ANVIL_INVALID_ARGUMENT, "queue");
    }
    Anvil__V1__PauseQueueRequest req = ANVIL__V1__PAUSE_QUEUE_REQUEST__INIT;
    decode(f, "PauseQueue", &req.base);
    assert_string_equal(f->err.msg, "queue is empty: name the queue to pause");
    memset(long_name, 'q', 128);
    long_name[128] = '\0'; // the longest name is fine
    req.queue      = long_name;
    assert_int_equal(decode(f, "PauseQueue", &req.base), ANVIL_OK);
}

static void
test_handlers_encode_health_marks_paused_queues(void **state)
{
    struct fx               *f   = *state;
    Anvil__V1__HealthRequest req = ANVIL__V1__HEALTH_REQUEST__INIT;
    assert_int_equal(decode(f, "Health", &req.base), ANVIL_OK);
    struct cmd_health *h = &f->call.cmd.u.health;
    h->depths            = calloc(1, sizeof(*h->depths));
    h->paused            = calloc(2, sizeof(*h->paused));
    assert_non_null(h->depths);
    assert_non_null(h->paused);
    h->depths[0] = (struct store_depth) {
        .queue = strdup("slow"), .type = strdup("t"), .paused = true
    };
    h->n         = 1;
    h->paused[0] = strdup("empty");
    h->paused[1] = strdup("slow");
    h->n_paused  = 2;
    size_t                     len;
    uint8_t                   *out = encode(f, &len);
    Anvil__V1__HealthResponse *r
        = anvil__v1__health_response__unpack(NULL, len, out);
    assert_non_null(r);
    assert_true(r->depths[0]->paused);
    assert_int_equal(r->n_paused_queues, 2);
    assert_string_equal(r->paused_queues[0], "empty");
    assert_string_equal(r->paused_queues[1], "slow");
    anvil__v1__health_response__free_unpacked(r, NULL);
    free(out);
}

// ---- schedules: the workflow template ----

struct wf_fixture {
    Anvil__V1__StepSpec              a, b;
    Anvil__V1__StepSpec             *steps[2];
    char                            *after_a[1], *after_b[1];
    Anvil__V1__WorkflowSpec          wf;
    Anvil__V1__SubmitJobRequest      job;
    Anvil__V1__ScheduleSpec          spec;
    Anvil__V1__CreateScheduleRequest req;
};

// A schedule every second of the chain a -> b.
static void
wf_fixture_init(struct wf_fixture *w)
{
    anvil__v1__step_spec__init(&w->a);
    anvil__v1__step_spec__init(&w->b);
    w->a.name     = "a";
    w->a.type     = "extract";
    w->b.name     = "b";
    w->b.type     = "load";
    w->after_a[0] = "a";
    w->b.after    = w->after_a;
    w->b.n_after  = 1;
    w->steps[0]   = &w->a;
    w->steps[1]   = &w->b;
    anvil__v1__workflow_spec__init(&w->wf);
    w->wf.name    = "etl";
    w->wf.steps   = w->steps;
    w->wf.n_steps = 2;
    anvil__v1__submit_job_request__init(&w->job);
    w->job.type = "t";
    anvil__v1__schedule_spec__init(&w->spec);
    w->spec.name     = "nightly";
    w->spec.cron     = "@every 1s";
    w->spec.workflow = &w->wf;
    anvil__v1__create_schedule_request__init(&w->req);
    w->req.spec = &w->spec;
}

static void
test_handlers_create_schedule_packs_a_workflow_template(void **state)
{
    struct fx        *f = *state;
    struct wf_fixture w;
    wf_fixture_init(&w);
    assert_int_equal(decode(f, "CreateSchedule", &w.req.base), ANVIL_OK);
    const struct store_schedule *s = &f->call.cmd.u.schedule.spec;
    assert_non_null(s->workflow);
    assert_true(s->workflow_len > 0);
    assert_string_equal(s->type, "");
    assert_string_equal(s->queue, "");
    assert_int_equal(s->payload_len, 0);

    // What a tick builds from the stored bytes: the same spec.
    struct flowspec      fs  = { 0 };
    struct cmd_wf_submit ws  = { 0 };
    struct anvil_error   err = { 0 };
    assert_int_equal(
        flowspec_unpack(s->workflow, s->workflow_len, &fs, &ws, &err),
        ANVIL_OK);
    assert_string_equal(ws.name, "etl");
    assert_int_equal(ws.n, 2);
    assert_null(ws.key);
    assert_string_equal(ws.steps[0].type, "extract");
    assert_string_equal(ws.steps[1].name, "b");
    assert_string_equal(ws.steps[1].queue, "default");
    assert_int_equal(ws.dag->n_parents[0], 0);
    assert_int_equal(ws.dag->n_parents[1], 1);
    assert_int_equal(ws.dag->parents[1][0], 0);
    flowspec_fini(&fs);
    assert_null(fs.dag);
    static const uint8_t junk[] = { 0xff, 0xff, 0xff };
    assert_int_equal(
        flowspec_unpack(junk, sizeof(junk), &fs, &ws, &err), ANVIL_INTERNAL);
    flowspec_fini(&fs);
}

static void
test_handlers_create_schedule_takes_exactly_one_template_checked_as_submit_workflow(
    void **state)
{
    struct fx        *f = *state;
    struct wf_fixture w;
    wf_fixture_init(&w);
    w.spec.job = &w.job;
    assert_names(f, decode(f, "CreateSchedule", &w.req.base),
        ANVIL_INVALID_ARGUMENT, "spec.job and spec.workflow are both set");
    w.spec.job      = NULL;
    w.spec.workflow = NULL;
    assert_names(f, decode(f, "CreateSchedule", &w.req.base),
        ANVIL_INVALID_ARGUMENT, "spec.job and spec.workflow are both missing");
    w.spec.workflow = &w.wf;

    // Each bad spec: the same message as SubmitWorkflow's, after
    // "spec.workflow: ".
    Anvil__V1__SubmitWorkflowRequest sub
        = ANVIL__V1__SUBMIT_WORKFLOW_REQUEST__INIT;
    sub.spec = &w.wf;
    char want[sizeof(f->err.msg) + 20];
    for (int i = 0; i < 6; i++) {
        wf_fixture_init(&w);
        switch (i) {
        case 0: // a cycle
            w.after_b[0] = "b";
            w.a.after    = w.after_b;
            w.a.n_after  = 1;
            break;
        case 1: // an unknown step in after
            w.after_a[0] = "nope";
            break;
        case 2: // no step
            w.wf.n_steps = 0;
            break;
        case 3: // a bad step type
            w.b.type = "bad type";
            break;
        case 4: // a payload over the limit
            w.a.payload.len  = f->lim.max_payload + 1;
            w.a.payload.data = calloc(1, w.a.payload.len);
            break;
        default: // a bad workflow name
            w.wf.name = "";
            break;
        }
        sub.spec = &w.wf;
        assert_int_equal(
            decode(f, "SubmitWorkflow", &sub.base), ANVIL_INVALID_ARGUMENT);
        snprintf(want, sizeof(want), "spec.workflow: %s", f->err.msg);
        assert_names(f, decode(f, "CreateSchedule", &w.req.base),
            ANVIL_INVALID_ARGUMENT, want);
        free(w.a.payload.data);
    }
    wf_fixture_init(&w);
    w.wf.idempotency_key = "mine";
    assert_names(f, decode(f, "CreateSchedule", &w.req.base),
        ANVIL_INVALID_ARGUMENT, "idempotency_key is set by each tick");
}

// A step's concurrency key and limit are checked as SubmitJob's, with the
// same message after "step 'NAME': ".
static void
test_handlers_submit_workflow_checks_step_concurrency_as_submit_job(
    void **state)
{
    struct fx                       *f = *state;
    struct wf_fixture                w;
    Anvil__V1__SubmitWorkflowRequest sub
        = ANVIL__V1__SUBMIT_WORKFLOW_REQUEST__INIT;
    Anvil__V1__SubmitJobRequest job = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    char                       *big = repeat('k', 129);
    const char *keys[]   = { "", "k", "k", "a b", "x/y", "\xc3\xbc", big };
    uint32_t    limits[] = { 3, 0, 1000001, 2, 2, 2, 2 };
    char        want[sizeof(f->err.msg) + 20];
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        wf_fixture_init(&w);
        w.b.concurrency_key   = (char *) keys[i];
        w.b.concurrency_limit = limits[i];
        sub.spec              = &w.wf;
        job.type              = "t";
        job.concurrency_key   = (char *) keys[i];
        job.concurrency_limit = limits[i];
        assert_int_equal(
            decode(f, "SubmitJob", &job.base), ANVIL_INVALID_ARGUMENT);
        snprintf(want, sizeof(want), "step 'b': %s", f->err.msg);
        assert_names(f, decode(f, "SubmitWorkflow", &sub.base),
            ANVIL_INVALID_ARGUMENT, want);
        assert_names(f, decode(f, "SubmitWorkflow", &sub.base),
            ANVIL_INVALID_ARGUMENT, i < 1 ? "concurrency_key" : "concurrency");
    }
    free(big);

    // Good ones reach the engine's command; none stays none.
    wf_fixture_init(&w);
    w.b.concurrency_key   = "tenant-7";
    w.b.concurrency_limit = 1000000;
    sub.spec              = &w.wf;
    assert_int_equal(decode(f, "SubmitWorkflow", &sub.base), ANVIL_OK);
    const struct cmd_wf_submit *ws = &f->call.cmd.u.wf_submit;
    assert_null(ws->steps[0].ckey);
    assert_int_equal(ws->steps[0].climit, 0);
    assert_string_equal(ws->steps[1].ckey, "tenant-7");
    assert_int_equal(ws->steps[1].climit, 1000000);
}

// A schedule's workflow template keeps its steps' keys: each tick builds
// them from the stored bytes; a bad one is refused at CreateSchedule.
static void
test_handlers_schedule_workflow_template_keeps_step_concurrency(void **state)
{
    struct fx        *f = *state;
    struct wf_fixture w;
    wf_fixture_init(&w);
    w.a.concurrency_key   = "db";
    w.a.concurrency_limit = 1;
    assert_int_equal(decode(f, "CreateSchedule", &w.req.base), ANVIL_OK);
    const struct store_schedule *s   = &f->call.cmd.u.schedule.spec;
    struct flowspec              fs  = { 0 };
    struct cmd_wf_submit         ws  = { 0 };
    struct anvil_error           err = { 0 };
    assert_int_equal(
        flowspec_unpack(s->workflow, s->workflow_len, &fs, &ws, &err),
        ANVIL_OK);
    assert_string_equal(ws.steps[0].ckey, "db");
    assert_int_equal(ws.steps[0].climit, 1);
    assert_null(ws.steps[1].ckey);
    flowspec_fini(&fs);
    w.a.concurrency_limit = 0;
    assert_names(f, decode(f, "CreateSchedule", &w.req.base),
        ANVIL_INVALID_ARGUMENT,
        "spec.workflow: step 'a': concurrency_limit 0 is outside 1..1000000");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_handlers_table_matches_the_service_descriptor),
        T(test_handlers_submit_workflow_checks_step_concurrency_as_submit_job),
        T(test_handlers_schedule_workflow_template_keeps_step_concurrency),
        T(test_handlers_valid_name_accepts_the_allowed_characters),
        T(test_handlers_valid_name_rejects_empty_long_and_other_characters),
        T(test_handlers_decode_refuses_unknown_methods),
        T(test_handlers_decode_refuses_a_garbage_body),
        T(test_handlers_decode_maps_each_job_method_to_its_command),
        T(test_handlers_every_service_method_answers_bad_bodies_cleanly),
        T(test_handlers_submit_fills_the_command_with_defaults),
        T(test_handlers_submit_takes_a_concurrency_key_and_limit),
        T(test_handlers_create_schedule_packs_a_workflow_template),
        T(test_handlers_create_schedule_takes_exactly_one_template_checked_as_submit_workflow),
        T(test_handlers_submit_rejects_bad_concurrency_settings),
        T(test_handlers_submit_rejects_bad_type_and_queue_names),
        T(test_handlers_submit_rejects_a_payload_over_the_limit),
        T(test_handlers_submit_rejects_bad_numbers_and_long_keys),
        T(test_handlers_job_ids_parse_and_malformed_ones_are_not_found),
        T(test_handlers_list_applies_limits_cursor_and_filters),
        T(test_handlers_list_rejects_bad_limit_cursor_state_and_names),
        T(test_handlers_bulk_takes_list_filters_with_a_limit_of_100),
        T(test_handlers_bulk_refuses_bad_filters_naming_the_field),
        T(test_handlers_poll_fills_defaults),
        T(test_handlers_poll_rejects_empty_types_and_bad_fields),
        T(test_handlers_heartbeat_maps_leases_and_rejects_bad_ids),
        T(test_handlers_heartbeat_checks_progress_naming_the_field),
        T(test_handlers_wait_rejects_a_timeout_over_the_limit),
        T(test_handlers_complete_rejects_a_result_over_the_limit),
        T(test_handlers_fail_defaults_its_text_and_rejects_huge_text),
        T(test_handlers_encode_submit_answers_the_id_text),
        T(test_handlers_encode_get_carries_every_job_field),
        T(test_handlers_encode_poll_gives_each_lease_its_token),
        T(test_handlers_encode_list_gives_a_cursor_only_when_more_follow),
        T(test_handlers_encode_heartbeat_and_fail_results),
        T(test_handlers_encode_health_lists_depths),
        T(test_handlers_pause_and_resume_take_a_valid_queue_name),
        T(test_handlers_pause_and_resume_refuse_bad_queue_names),
        T(test_handlers_encode_health_marks_paused_queues),
        T(test_handlers_watch_fills_the_filter_and_defaults),
        T(test_handlers_watch_names_each_bad_field),
        T(test_handlers_retry_and_get_by_key_check_their_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
