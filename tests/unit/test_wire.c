// test_wire.c - the client side of the envelope: request ids, packing a
// Request, unpacking a Reply, nng error mapping, and client_call's checks
// (the one call path, client_call.c).
#include "../wire_test.h"
#include "anvil/v1/anvil.pb-c.h"
#include "client_impl.h"
#include "util/nng_code.h"
#include "wire.h"

#include <nng/nng.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

// cmocka.h needs these three before it: keep it in a block of its own.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

// ---- helpers ----

// Packs an arbitrary Reply envelope (even one wire_test_reply_encode would not
// write) into a malloc'd buffer.
static uint8_t *
raw_reply(int code, const char *msg, const void *body, size_t body_len,
    uint64_t request_id, size_t *len)
{
    Anvil__V1__Reply env = ANVIL__V1__REPLY__INIT;
    env.code             = (Anvil__V1__Code) code;
    env.message          = (char *) msg;
    env.body.data        = (uint8_t *) body;
    env.body.len         = body_len;
    env.request_id       = request_id;
    *len                 = anvil__v1__reply__get_packed_size(&env);
    uint8_t *buf         = malloc(*len + 1);
    assert_non_null(buf);
    anvil__v1__reply__pack(&env, buf);
    return buf;
}

// A Reply{code, message, leader} envelope in a malloc'd buffer.
static uint8_t *
leader_reply(int code, const char *leader, uint64_t request_id, size_t *len)
{
    Anvil__V1__Reply env = ANVIL__V1__REPLY__INIT;
    env.code             = (Anvil__V1__Code) code;
    env.message          = "not the leader";
    env.leader           = (char *) leader;
    env.request_id       = request_id;
    *len                 = anvil__v1__reply__get_packed_size(&env);
    uint8_t *buf         = malloc(*len + 1);
    assert_non_null(buf);
    anvil__v1__reply__pack(&env, buf);
    return buf;
}

static void
test_wire_reply_hands_out_the_leader_of_an_unavailable_reply(void **state)
{
    (void) state;
    size_t   len;
    uint8_t *buf    = leader_reply(ANVIL_UNAVAILABLE, "tcp://b:7700", 7, &len);
    char    *leader = (char *) "unset";
    struct anvil_error err = { 0 };
    assert_int_equal(
        wire_reply_decode(buf, len, "Poll", 7, NULL, NULL, &leader, &err),
        ANVIL_UNAVAILABLE);
    assert_non_null(leader);
    assert_string_equal(leader, "tcp://b:7700");
    assert_string_equal(err.msg, "not the leader");
    free(leader);
    // Not wanted: NULL is fine.
    assert_int_equal(
        wire_reply_decode(buf, len, "Poll", 7, NULL, NULL, NULL, &err),
        ANVIL_UNAVAILABLE);
    free(buf);
}

static void
test_wire_reply_has_no_leader_when_empty_or_not_unavailable(void **state)
{
    (void) state;
    size_t             len;
    char              *leader = (char *) "unset";
    struct anvil_error err    = { 0 };
    uint8_t           *buf    = leader_reply(ANVIL_UNAVAILABLE, "", 8, &len);
    assert_int_equal(
        wire_reply_decode(buf, len, "Poll", 8, NULL, NULL, &leader, &err),
        ANVIL_UNAVAILABLE);
    assert_null(leader);
    free(buf);
    // A leader on any other code is not a standby's answer.
    leader = (char *) "unset";
    buf    = leader_reply(ANVIL_NOT_FOUND, "tcp://b:7700", 8, &len);
    assert_int_equal(
        wire_reply_decode(buf, len, "Poll", 8, NULL, NULL, &leader, &err),
        ANVIL_NOT_FOUND);
    assert_null(leader);
    free(buf);
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

// Number of values in v (sorted here) equal to their predecessor.
static size_t
count_duplicates(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    size_t dups = 0;
    for (size_t i = 1; i < n; i++)
        dups += v[i] == v[i - 1];
    return dups;
}

// ---- request envelope ----

static void
test_wire_request_round_trips_method_token_id_and_body(void **state)
{
    (void) state;
    Anvil__V1__GetJobRequest req = ANVIL__V1__GET_JOB_REQUEST__INIT;
    req.id                       = "j42";
    nng_msg           *msg;
    struct anvil_error err = { 0 };
    assert_int_equal(
        wire_request_encode("GetJob", &req.base, "tok", 77, &msg, &err),
        ANVIL_OK);

    Anvil__V1__Request *env
        = anvil__v1__request__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
    assert_non_null(env);
    assert_string_equal(env->method, "GetJob");
    assert_string_equal(env->token, "tok");
    assert_int_equal(env->request_id, 77);
    Anvil__V1__GetJobRequest *body = anvil__v1__get_job_request__unpack(
        NULL, env->body.len, env->body.data);
    assert_non_null(body);
    assert_string_equal(body->id, "j42");
    anvil__v1__get_job_request__free_unpacked(body, NULL);
    anvil__v1__request__free_unpacked(env, NULL);
    nng_msg_free(msg);
}

static void
test_wire_request_without_body_or_token_packs_empty_fields(void **state)
{
    (void) state;
    nng_msg *msg;
    assert_int_equal(
        wire_request_encode("Health", NULL, NULL, 1, &msg, NULL), ANVIL_OK);
    Anvil__V1__Request *env
        = anvil__v1__request__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
    assert_non_null(env);
    assert_string_equal(env->token, "");
    assert_int_equal(env->body.len, 0);
    anvil__v1__request__free_unpacked(env, NULL);
    nng_msg_free(msg);
}

static void
test_wire_request_without_method_is_invalid(void **state)
{
    (void) state;
    nng_msg           *msg = (nng_msg *) &msg;
    struct anvil_error err = { 0 };
    assert_int_equal(wire_request_encode("", NULL, NULL, 1, &msg, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_null(msg);
    assert_int_equal(err.code, ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "method"));
    assert_int_equal(wire_request_encode(NULL, NULL, NULL, 1, &msg, NULL),
        ANVIL_INVALID_ARGUMENT);
}

static void
test_wire_request_larger_than_the_message_limit_is_invalid(void **state)
{
    (void) state;
    size_t   n       = WIRE_MAX_MSG + 1;
    uint8_t *payload = calloc(1, n);
    assert_non_null(payload);
    Anvil__V1__SubmitJobRequest req = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    req.type                        = "Big";
    req.payload.data                = payload;
    req.payload.len                 = n;
    nng_msg           *msg;
    struct anvil_error err = { 0 };
    assert_int_equal(
        wire_request_encode("SubmitJob", &req.base, NULL, 1, &msg, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_null(msg);
    assert_non_null(strstr(err.msg, "SubmitJob"));
    free(payload);
}

// ---- reply envelope ----

static void
test_wire_reply_ok_round_trips_its_body(void **state)
{
    (void) state;
    Anvil__V1__Job job           = ANVIL__V1__JOB__INIT;
    job.id                       = "j7";
    job.state                    = ANVIL__V1__JOB_STATE__JOB_STATE_RUNNING;
    Anvil__V1__GetJobResponse rp = ANVIL__V1__GET_JOB_RESPONSE__INIT;
    rp.job                       = &job;
    nng_msg *msg;
    assert_int_equal(wire_test_reply_encode(0, "", &rp.base, 9, &msg, NULL), 0);

    ProtobufCMessage  *body;
    struct anvil_error err = { 0 };
    assert_int_equal(
        wire_reply_decode(nng_msg_body(msg), nng_msg_len(msg), "GetJob", 9,
            &anvil__v1__get_job_response__descriptor, &body, NULL, &err),
        ANVIL_OK);
    assert_non_null(body);
    Anvil__V1__GetJobResponse *got = (Anvil__V1__GetJobResponse *) body;
    assert_non_null(got->job);
    assert_string_equal(got->job->id, "j7");
    assert_int_equal(got->job->state, ANVIL_JOB_RUNNING);
    protobuf_c_message_free_unpacked(body, NULL);
    nng_msg_free(msg);
}

static void
test_wire_reply_error_reaches_caller_with_code_and_message_unchanged(
    void **state)
{
    (void) state;
    nng_msg *msg;
    assert_int_equal(wire_test_reply_encode(ANVIL_NOT_FOUND,
                         "no job with id \"j9\"", NULL, 3, &msg, NULL),
        0);
    ProtobufCMessage  *body = (ProtobufCMessage *) &body;
    struct anvil_error err  = { 0 };
    assert_int_equal(
        wire_reply_decode(nng_msg_body(msg), nng_msg_len(msg), "GetJob", 3,
            &anvil__v1__get_job_response__descriptor, &body, NULL, &err),
        ANVIL_NOT_FOUND);
    assert_null(body);
    assert_int_equal(err.code, ANVIL_NOT_FOUND);
    assert_string_equal(err.msg, "no job with id \"j9\"");
    nng_msg_free(msg);
}

static void
test_wire_reply_error_without_message_gets_the_code_text(void **state)
{
    (void) state;
    size_t   len;
    uint8_t *buf = raw_reply(ANVIL_FAILED_PRECONDITION, "", NULL, 0, 0, &len);
    struct anvil_error err = { 0 };
    assert_int_equal(
        wire_reply_decode(buf, len, "Complete", 5, NULL, NULL, NULL, &err),
        ANVIL_FAILED_PRECONDITION);
    assert_non_null(strstr(err.msg, "Complete"));
    assert_non_null(strstr(err.msg, "failed precondition"));
    free(buf);
}

static void
test_wire_reply_with_unknown_code_is_unknown(void **state)
{
    (void) state;
    size_t             len;
    uint8_t           *buf = raw_reply(99, "odd", NULL, 0, 5, &len);
    struct anvil_error err = { 0 };
    assert_int_equal(
        wire_reply_decode(buf, len, "GetJob", 5, NULL, NULL, NULL, &err),
        ANVIL_UNKNOWN);
    assert_non_null(strstr(err.msg, "99"));
    assert_non_null(strstr(err.msg, "odd"));
    free(buf);
}

static void
test_wire_reply_that_is_not_an_envelope_is_internal(void **state)
{
    (void) state;
    static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0x01 };
    struct anvil_error   err    = { 0 };
    ProtobufCMessage    *body;
    assert_int_equal(
        wire_reply_decode(junk, sizeof(junk), "Health", 1,
            &anvil__v1__health_response__descriptor, &body, NULL, &err),
        ANVIL_INTERNAL);
    assert_null(body);
    assert_non_null(strstr(err.msg, "not an anvil.v1.Reply"));
}

static void
test_wire_reply_body_that_does_not_decode_is_internal(void **state)
{
    (void) state;
    // Field 1, length-delimited, claiming 127 bytes that are not there.
    static const uint8_t bad[] = { 0x0a, 0x7f, 0x01 };
    size_t               len;
    uint8_t             *buf = raw_reply(0, "", bad, sizeof(bad), 4, &len);
    struct anvil_error   err = { 0 };
    ProtobufCMessage    *body;
    assert_int_equal(
        wire_reply_decode(buf, len, "GetJob", 4,
            &anvil__v1__get_job_response__descriptor, &body, NULL, &err),
        ANVIL_INTERNAL);
    assert_null(body);
    assert_non_null(strstr(err.msg, "GetJobResponse"));
    assert_non_null(strstr(err.msg, "could not decode"));
    free(buf);
}

static void
test_wire_reply_for_another_request_is_internal(void **state)
{
    (void) state;
    size_t             len;
    uint8_t           *buf = raw_reply(0, "", NULL, 0, 1000, &len);
    struct anvil_error err = { 0 };
    assert_int_equal(
        wire_reply_decode(buf, len, "Health", 1001, NULL, NULL, NULL, &err),
        ANVIL_INTERNAL);
    assert_non_null(strstr(err.msg, "1000"));
    free(buf);
    // A server that could not read our id answers with 0: accepted.
    buf = raw_reply(0, "", NULL, 0, 0, &len);
    assert_int_equal(
        wire_reply_decode(buf, len, "Health", 1001, NULL, NULL, NULL, &err),
        ANVIL_OK);
    free(buf);
}

static void
test_wire_reply_decode_rejects_a_missing_buffer(void **state)
{
    (void) state;
    struct anvil_error err = { 0 };
    assert_int_equal(
        wire_reply_decode(NULL, 12, "Health", 1, NULL, NULL, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_int_equal(err.code, ANVIL_INVALID_ARGUMENT);
}

// ---- request ids ----

static void
test_wire_request_ids_are_nonzero_and_unique(void **state)
{
    (void) state;
    enum { N = 100000 };
    uint64_t *ids = malloc(N * sizeof(*ids));
    assert_non_null(ids);
    size_t zeros = 0;
    for (size_t i = 0; i < N; i++) {
        ids[i] = wire_request_id();
        zeros += ids[i] == 0;
    }
    assert_int_equal(zeros, 0);
    assert_int_equal(count_duplicates(ids, N), 0);
    free(ids);
}

enum { ID_THREADS = 8, IDS_PER_THREAD = 20000 };

static void *
draw_ids(void *arg)
{
    uint64_t *out = arg;
    for (size_t i = 0; i < IDS_PER_THREAD; i++)
        out[i] = wire_request_id();
    return NULL;
}

static void
test_wire_request_ids_are_unique_across_threads(void **state)
{
    (void) state;
    size_t    n   = (size_t) ID_THREADS * IDS_PER_THREAD;
    uint64_t *ids = malloc(n * sizeof(*ids));
    assert_non_null(ids);
    pthread_t t[ID_THREADS];
    for (size_t i = 0; i < ID_THREADS; i++)
        assert_int_equal(
            pthread_create(&t[i], NULL, draw_ids, ids + i * IDS_PER_THREAD), 0);
    for (size_t i = 0; i < ID_THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(count_duplicates(ids, n), 0);
    free(ids);
}

static void
test_wire_request_ids_differ_between_parent_and_forked_child(void **state)
{
    (void) state;
    enum { N = 1000 };
    uint64_t ids[2 * N];
    int      fds[2];
    (void) wire_request_id(); // the parent is seeded before it forks
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        uint64_t mine[N];
        for (size_t i = 0; i < N; i++)
            mine[i] = wire_request_id();
        ssize_t w = write(fds[1], mine, sizeof(mine));
        _exit(w == (ssize_t) sizeof(mine) ? 0 : 1);
    }
    close(fds[1]);
    for (size_t i = 0; i < N; i++)
        ids[i] = wire_request_id();
    size_t got = 0;
    while (got < sizeof(uint64_t) * N) {
        ssize_t r = read(
            fds[0], (uint8_t *) (ids + N) + got, sizeof(uint64_t) * N - got);
        if (r <= 0)
            break;
        got += (size_t) r;
    }
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(got, sizeof(uint64_t) * N);
    assert_int_equal(count_duplicates(ids, 2 * N), 0);
}

// ---- errors ----

static void
test_wire_maps_nng_errors_to_anvil_codes(void **state)
{
    (void) state;
    static const struct {
        int nng, code;
    } table[] = {
        { 0, ANVIL_OK },
        { NNG_ETIMEDOUT, ANVIL_DEADLINE_EXCEEDED },
        { NNG_ECONNREFUSED, ANVIL_UNAVAILABLE },
        { NNG_ECLOSED, ANVIL_UNAVAILABLE },
        { NNG_ECONNRESET, ANVIL_UNAVAILABLE },
        { NNG_ECONNSHUT, ANVIL_UNAVAILABLE },
        { NNG_EUNREACHABLE, ANVIL_UNAVAILABLE },
        { NNG_EADDRINUSE, ANVIL_UNAVAILABLE },
        { NNG_ECANCELED, ANVIL_CANCELLED },
        { NNG_EINVAL, ANVIL_INVALID_ARGUMENT },
        { NNG_EADDRINVAL, ANVIL_INVALID_ARGUMENT },
        { NNG_ENOTSUP, ANVIL_INVALID_ARGUMENT },
        { NNG_ENOMEM, ANVIL_RESOURCE_EXHAUSTED },
        { NNG_EMSGSIZE, ANVIL_RESOURCE_EXHAUSTED },
        { NNG_EPEERAUTH, ANVIL_UNAUTHENTICATED },
        { NNG_EPERM, ANVIL_PERMISSION_DENIED },
        { NNG_EPROTO, ANVIL_INTERNAL },
        { 12345, ANVIL_UNKNOWN },
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        int got = av_code_from_nng(table[i].nng);
        if (got != table[i].code)
            fail_msg("nng error %d maps to %s, want %s", table[i].nng,
                anvil_code_name(got), anvil_code_name(table[i].code));
    }
}

static void
test_wire_timeout_message_names_rpc_url_time_and_asks_for_anvild(void **state)
{
    (void) state;
    struct anvil_error err = { 0 };
    assert_int_equal(wire_nng_error(NNG_ETIMEDOUT, "GetJob",
                         "tcp://127.0.0.1:7700", 10000, &err),
        ANVIL_DEADLINE_EXCEEDED);
    assert_string_equal(err.msg,
        "no reply to GetJob from tcp://127.0.0.1:7700 within 10000 ms (is "
        "anvild running?)");
    assert_int_equal(wire_nng_error(NNG_ECONNREFUSED, "Poll",
                         "tcp://127.0.0.1:7700", 0, &err),
        ANVIL_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "refused"));
    // A NULL err is allowed: only the code comes back.
    assert_int_equal(
        wire_nng_error(NNG_ECLOSED, "Poll", NULL, 0, NULL), ANVIL_UNAVAILABLE);
}

// ---- methods and client_call's checks ----

static void
test_wire_method_finds_rpcs_by_name(void **state)
{
    (void) state;
    const ProtobufCMethodDescriptor *m = wire_method("SubmitJob");
    assert_non_null(m);
    assert_ptr_equal(m->input, &anvil__v1__submit_job_request__descriptor);
    assert_ptr_equal(m->output, &anvil__v1__submit_job_response__descriptor);
    assert_non_null(wire_method("Health"));
    assert_null(wire_method("DropDatabase"));
    assert_null(wire_method("submitjob"));
    assert_null(wire_method(NULL));
}

static void
test_client_call_rejects_an_unknown_method(void **state)
{
    (void) state;
    anvil_client            *c;
    Anvil__V1__HealthRequest req = ANVIL__V1__HEALTH_REQUEST__INIT;
    ProtobufCMessage        *rep = (ProtobufCMessage *) &rep;
    struct anvil_error       err = { 0 };
    assert_int_equal(anvil_client_open(&c, "ipc:///nonexistent/s", &err), 0);
    assert_int_equal(client_call(c, "DropDatabase", &req.base, 0, &rep, &err),
        ANVIL_UNIMPLEMENTED);
    assert_null(rep);
    assert_non_null(strstr(err.msg, "DropDatabase"));
    anvil_client_close(c);
}

static void
test_client_call_rejects_a_request_of_the_wrong_type(void **state)
{
    (void) state;
    anvil_client            *c;
    Anvil__V1__HealthRequest req = ANVIL__V1__HEALTH_REQUEST__INIT;
    ProtobufCMessage        *rep;
    struct anvil_error       err = { 0 };
    assert_int_equal(anvil_client_open(&c, "ipc:///nonexistent/s", &err), 0);
    assert_int_equal(client_call(c, "GetJob", &req.base, 0, &rep, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "GetJobRequest"));
    assert_int_equal(
        client_call(c, "GetJob", NULL, 0, &rep, &err), ANVIL_INVALID_ARGUMENT);
    anvil_client_close(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_wire_request_round_trips_method_token_id_and_body),
        cmocka_unit_test(
            test_wire_request_without_body_or_token_packs_empty_fields),
        cmocka_unit_test(test_wire_request_without_method_is_invalid),
        cmocka_unit_test(
            test_wire_request_larger_than_the_message_limit_is_invalid),
        cmocka_unit_test(test_wire_reply_ok_round_trips_its_body),
        cmocka_unit_test(
            test_wire_reply_error_reaches_caller_with_code_and_message_unchanged),
        cmocka_unit_test(
            test_wire_reply_error_without_message_gets_the_code_text),
        cmocka_unit_test(test_wire_reply_with_unknown_code_is_unknown),
        cmocka_unit_test(test_wire_reply_that_is_not_an_envelope_is_internal),
        cmocka_unit_test(test_wire_reply_body_that_does_not_decode_is_internal),
        cmocka_unit_test(test_wire_reply_for_another_request_is_internal),
        cmocka_unit_test(test_wire_reply_decode_rejects_a_missing_buffer),
        cmocka_unit_test(test_wire_request_ids_are_nonzero_and_unique),
        cmocka_unit_test(test_wire_request_ids_are_unique_across_threads),
        cmocka_unit_test(
            test_wire_request_ids_differ_between_parent_and_forked_child),
        cmocka_unit_test(test_wire_maps_nng_errors_to_anvil_codes),
        cmocka_unit_test(
            test_wire_timeout_message_names_rpc_url_time_and_asks_for_anvild),
        cmocka_unit_test(
            test_wire_reply_hands_out_the_leader_of_an_unavailable_reply),
        cmocka_unit_test(
            test_wire_reply_has_no_leader_when_empty_or_not_unavailable),
        cmocka_unit_test(test_wire_method_finds_rpcs_by_name),
        cmocka_unit_test(test_client_call_rejects_an_unknown_method),
        cmocka_unit_test(test_client_call_rejects_a_request_of_the_wrong_type),
    };
    const char *only = getenv("TEST_FILTER"); // e.g. "*restart*"
    if (only != NULL)
        cmocka_set_test_filter(only);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nng_fini();
    return rc;
}
