// test_bad_input.c - hostile and malformed requests on a raw nng req0
// socket, the way any SP client could send them: every one gets a clear
// error code, the server keeps serving, and nothing is stored.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "../harness.h"
#include "anvil/v1/anvil.pb-c.h"
#include "util/clock.h"

#define MAX_PAYLOAD 1024
#define TIMEOUT_MS 5000

struct fixture {
    struct harness h;
    nng_socket     sock;
    uint64_t       next_rid;
};

// A req0 socket dialled to the harness's server, with timeouts and a
// receive limit of its own.
static int
raw_open(struct fixture *f, nng_socket *s, int recv_timeout_ms)
{
    return harness_req_open(s, f->h.url, recv_timeout_ms, 1 << 20);
}

static int
setup(void **state)
{
    struct fixture      *f = calloc(1, sizeof(*f));
    struct server_config cfg;

    if (f == NULL)
        return -1;
    server_config_init(&cfg);
    cfg.max_payload = MAX_PAYLOAD;
    f->next_rid     = ((uint64_t) getpid() << 32) ^ (uint64_t) av_now_ms();
    if (harness_start_with(&f->h, &cfg) != 0
        || raw_open(f, &f->sock, TIMEOUT_MS) != 0) {
        harness_stop(&f->h);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    int rv;

    nng_close(f->sock);
    rv = harness_stop(&f->h);
    free(f);
    return rv;
}

// Sends raw bytes and receives the reply: 0 and *out (caller frees with
// anvil__v1__reply__free_unpacked), or an nng error. An undecodable reply
// fails the test.
static int
send_raw(nng_socket s, const void *bytes, size_t len, Anvil__V1__Reply **out)
{
    void  *buf = NULL;
    size_t sz  = 0;
    int    rv  = nng_send(s, (void *) bytes, len, 0);

    *out = NULL;
    if (rv != 0)
        return rv;
    rv = nng_recv(s, &buf, &sz, NNG_FLAG_ALLOC);
    if (rv != 0)
        return rv;
    *out = anvil__v1__reply__unpack(NULL, sz, buf);
    nng_free(buf, sz);
    assert_non_null(*out);
    return 0;
}

// Wraps body (bytes) in a Request for method and sends it; returns the
// reply (asserted), whose request_id must echo ours.
static Anvil__V1__Reply *
call_bytes(struct fixture *f, const char *method, const void *body, size_t len)
{
    Anvil__V1__Request req = ANVIL__V1__REQUEST__INIT;
    Anvil__V1__Reply  *rep = NULL;
    uint8_t           *buf;
    size_t             n;
    int                rv;

    req.method     = (char *) method;
    req.body.data  = (uint8_t *) body;
    req.body.len   = len;
    req.request_id = f->next_rid++;
    n              = anvil__v1__request__get_packed_size(&req);
    buf            = malloc(n ? n : 1);
    assert_non_null(buf);
    anvil__v1__request__pack(&req, buf);
    rv = send_raw(f->sock, buf, n, &rep);
    free(buf);
    if (rv != 0)
        print_error("%s: %s\n", method, nng_strerror(rv));
    assert_int_equal(rv, 0);
    assert_int_equal(rep->request_id, req.request_id);
    return rep;
}

// As call_bytes(), packing a protobuf-c message as the body.
static Anvil__V1__Reply *
call(struct fixture *f, const char *method, const ProtobufCMessage *body)
{
    size_t            n   = protobuf_c_message_get_packed_size(body);
    uint8_t          *buf = malloc(n ? n : 1);
    Anvil__V1__Reply *rep;

    assert_non_null(buf);
    protobuf_c_message_pack(body, buf);
    rep = call_bytes(f, method, buf, n);
    free(buf);
    return rep;
}

// Asserts the reply has `code` and a message containing `needle` (any
// non-empty message if needle is NULL); frees it.
static void
expect(Anvil__V1__Reply *rep, int code, const char *needle)
{
    if ((int) rep->code != code
        || (needle != NULL && strstr(rep->message, needle) == NULL))
        print_error("reply %s \"%s\"; expected %s naming \"%s\"\n",
            anvil_code_name((int) rep->code), rep->message,
            anvil_code_name(code), needle ? needle : "");
    assert_int_equal(rep->code, code);
    assert_true(rep->message[0] != '\0');
    if (needle != NULL)
        assert_non_null(strstr(rep->message, needle));
    anvil__v1__reply__free_unpacked(rep, NULL);
}

// Health answers and ListJobs holds exactly n_jobs jobs.
static void
assert_serving_with(struct fixture *f, size_t n_jobs)
{
    Anvil__V1__HealthRequest     hreq = ANVIL__V1__HEALTH_REQUEST__INIT;
    Anvil__V1__ListJobsRequest   lreq = ANVIL__V1__LIST_JOBS_REQUEST__INIT;
    Anvil__V1__ListJobsResponse *list;
    Anvil__V1__HealthResponse   *hr;
    Anvil__V1__Reply            *rep;
    struct anvil_health         *hl = NULL;

    rep = call(f, "Health", &hreq.base);
    assert_int_equal(rep->code, ANVIL__V1__CODE__OK);
    hr = anvil__v1__health_response__unpack(
        NULL, rep->body.len, rep->body.data);
    assert_non_null(hr);
    assert_true(hr->version[0] != '\0');
    anvil__v1__health_response__free_unpacked(hr, NULL);
    anvil__v1__reply__free_unpacked(rep, NULL);

    lreq.limit = 1000;
    rep        = call(f, "ListJobs", &lreq.base);
    assert_int_equal(rep->code, ANVIL__V1__CODE__OK);
    list = anvil__v1__list_jobs_response__unpack(
        NULL, rep->body.len, rep->body.data);
    assert_non_null(list);
    assert_int_equal(list->n_jobs, n_jobs);
    anvil__v1__list_jobs_response__free_unpacked(list, NULL);
    anvil__v1__reply__free_unpacked(rep, NULL);

    // The SDK client, on its own connection, is served too.
    assert_int_equal(anvil_health_get(f->h.client, &hl, NULL), ANVIL_OK);
    anvil_health_free(hl);
}

static Anvil__V1__Reply *
submit_raw(
    struct fixture *f, const char *type, const char *queue, size_t payload_len)
{
    Anvil__V1__SubmitJobRequest req = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    Anvil__V1__Reply           *rep;
    uint8_t                    *payload = malloc(payload_len + 1);

    assert_non_null(payload);
    memset(payload, 'p', payload_len);
    req.type         = (char *) type;
    req.queue        = (char *) (queue ? queue : "");
    req.payload.data = payload;
    req.payload.len  = payload_len;
    rep              = call(f, "SubmitJob", &req.base);
    free(payload);
    return rep;
}

// A submit that must succeed; checks the reply carries an id.
static void
submit_ok(
    struct fixture *f, const char *type, const char *queue, size_t payload_len)
{
    Anvil__V1__Reply             *rep = submit_raw(f, type, queue, payload_len);
    Anvil__V1__SubmitJobResponse *sr;

    if (rep->code != ANVIL__V1__CODE__OK)
        print_error("submit: %s \"%s\"\n", anvil_code_name((int) rep->code),
            rep->message);
    assert_int_equal(rep->code, ANVIL__V1__CODE__OK);
    sr = anvil__v1__submit_job_response__unpack(
        NULL, rep->body.len, rep->body.data);
    assert_non_null(sr);
    assert_true(sr->id[0] != '\0');
    anvil__v1__submit_job_response__free_unpacked(sr, NULL);
    anvil__v1__reply__free_unpacked(rep, NULL);
}

static void
test_a_well_formed_envelope_is_answered(void **state)
{
    struct fixture *f = *state;

    assert_serving_with(f, 0);
    submit_ok(f, "echo", NULL, 10);
    assert_serving_with(f, 1);
}

static void
test_garbage_instead_of_an_envelope_is_invalid_argument(void **state)
{
    struct fixture      *f           = *state;
    static const uint8_t badwire[]   = { 0x0f, 0x0f, 0x0f, 0x0f };
    static const uint8_t truncated[] = { 0x0a, 0x7f, 'a', 'b', 'c' };
    uint8_t              ff[64];
    const struct {
        const uint8_t *p;
        size_t         n;
    } cases[] = {
        { badwire, sizeof(badwire) },
        { truncated, sizeof(truncated) },
        { ff, sizeof(ff) },
    };

    memset(ff, 0xff, sizeof(ff));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Anvil__V1__Reply *rep = NULL;

        assert_int_equal(send_raw(f->sock, cases[i].p, cases[i].n, &rep), 0);
        expect(rep, ANVIL__V1__CODE__INVALID_ARGUMENT, NULL);
        assert_serving_with(f, 0);
    }
}

static void
test_an_empty_frame_is_refused(void **state)
{
    struct fixture   *f   = *state;
    Anvil__V1__Reply *rep = NULL;

    // Zero bytes decode as an envelope with no method.
    assert_int_equal(send_raw(f->sock, "", 0, &rep), 0);
    assert_true(rep->code == ANVIL__V1__CODE__INVALID_ARGUMENT
        || rep->code == ANVIL__V1__CODE__UNIMPLEMENTED);
    assert_true(rep->message[0] != '\0');
    anvil__v1__reply__free_unpacked(rep, NULL);
    assert_serving_with(f, 0);
}

static void
test_an_unknown_method_is_unimplemented_naming_it(void **state)
{
    struct fixture *f = *state;

    expect(call_bytes(f, "LaunchMissiles", NULL, 0),
        ANVIL__V1__CODE__UNIMPLEMENTED, "LaunchMissiles");
    assert_serving_with(f, 0);
    expect(call_bytes(f, "anvil.v1.Anvil/Nope", NULL, 0),
        ANVIL__V1__CODE__UNIMPLEMENTED, "Nope");
    assert_serving_with(f, 0);
}

static void
test_a_body_that_is_not_the_methods_message_is_invalid_argument(void **state)
{
    struct fixture      *f           = *state;
    static const uint8_t badwire[]   = { 0x0f, 0x0f, 0x0f };
    static const uint8_t truncated[] = { 0x0a, 0x40, 'e', 'c', 'h', 'o' };
    static const char   *methods[]   = { "SubmitJob", "GetJob", "ListJobs",
            "WaitJob", "CancelJob", "Poll", "Complete", "Fail" };

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        expect(call_bytes(f, methods[i], badwire, sizeof(badwire)),
            ANVIL__V1__CODE__INVALID_ARGUMENT, NULL);
        expect(call_bytes(f, methods[i], truncated, sizeof(truncated)),
            ANVIL__V1__CODE__INVALID_ARGUMENT, NULL);
        assert_serving_with(f, 0);
    }
}

static void
test_bad_type_names_are_invalid_argument_naming_type(void **state)
{
    struct fixture *f = *state;
    char            long_name[130];
    const char *bad[] = { "", "bad name!", long_name, "tab\there", "slash/y",
        "\xc3\xbcnicode" };

    memset(long_name, 'a', 129);
    long_name[129] = '\0';
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect(submit_raw(f, bad[i], NULL, 1),
            ANVIL__V1__CODE__INVALID_ARGUMENT, "type");
        assert_serving_with(f, 0);
    }
    long_name[128] = '\0'; // 128 characters are allowed
    submit_ok(f, long_name, NULL, 1);
    submit_ok(f, "A-z_0.9", NULL, 1);
    assert_serving_with(f, 2);
}

static void
test_bad_queue_names_are_invalid_argument_naming_queue(void **state)
{
    struct fixture *f = *state;
    char            long_name[130];
    const char     *bad[] = { "bad queue!", long_name, "q/1", "new\nline" };

    memset(long_name, 'q', 129);
    long_name[129] = '\0';
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect(submit_raw(f, "echo", bad[i], 1),
            ANVIL__V1__CODE__INVALID_ARGUMENT, "queue");
        assert_serving_with(f, 0);
    }
    long_name[128] = '\0';
    submit_ok(f, "echo", long_name, 1);
    submit_ok(f, "echo", "", 1); // "" means "default"
    assert_serving_with(f, 2);
}

// The paused queues Health lists, joined with ','.
static void
paused_queues(struct fixture *f, char *buf, size_t len)
{
    Anvil__V1__HealthRequest   hreq = ANVIL__V1__HEALTH_REQUEST__INIT;
    Anvil__V1__Reply          *rep  = call(f, "Health", &hreq.base);
    Anvil__V1__HealthResponse *hr;

    assert_int_equal(rep->code, ANVIL__V1__CODE__OK);
    hr = anvil__v1__health_response__unpack(
        NULL, rep->body.len, rep->body.data);
    assert_non_null(hr);
    buf[0] = '\0';
    for (size_t i = 0; i < hr->n_paused_queues; i++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? "," : "",
            hr->paused_queues[i]);
    anvil__v1__health_response__free_unpacked(hr, NULL);
    anvil__v1__reply__free_unpacked(rep, NULL);
}

static void
test_bad_queue_names_to_pause_or_resume_are_invalid_argument(void **state)
{
    struct fixture *f = *state;
    char            long_name[130], paused[256];
    const char     *bad[] = { "", "bad queue!", long_name, "q/1", "new\nline" };

    memset(long_name, 'q', 129);
    long_name[129] = '\0';
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        Anvil__V1__PauseQueueRequest  p = ANVIL__V1__PAUSE_QUEUE_REQUEST__INIT;
        Anvil__V1__ResumeQueueRequest r = ANVIL__V1__RESUME_QUEUE_REQUEST__INIT;

        p.queue = (char *) bad[i];
        r.queue = (char *) bad[i];
        expect(call(f, "PauseQueue", &p.base),
            ANVIL__V1__CODE__INVALID_ARGUMENT,
            i == 0 ? "queue is empty" : "is not a valid name");
        expect(call(f, "ResumeQueue", &r.base),
            ANVIL__V1__CODE__INVALID_ARGUMENT, "queue");
        paused_queues(f, paused, sizeof(paused)); // nothing was stored
        assert_string_equal(paused, "");
    }
    long_name[128]                   = '\0'; // the longest name is fine
    Anvil__V1__PauseQueueRequest p   = ANVIL__V1__PAUSE_QUEUE_REQUEST__INIT;
    Anvil__V1__Reply            *rep = NULL;
    p.queue                          = long_name;
    rep                              = call(f, "PauseQueue", &p.base);
    assert_int_equal(rep->code, ANVIL__V1__CODE__OK);
    anvil__v1__reply__free_unpacked(rep, NULL);
    paused_queues(f, paused, sizeof(paused));
    assert_string_equal(paused, long_name);
    assert_serving_with(f, 0);
}

static void
test_a_payload_over_the_limit_is_invalid_argument_naming_it(void **state)
{
    struct fixture *f = *state;
    char            limit[32];

    snprintf(limit, sizeof(limit), "%d", MAX_PAYLOAD);
    expect(submit_raw(f, "echo", NULL, MAX_PAYLOAD + 1),
        ANVIL__V1__CODE__INVALID_ARGUMENT, limit);
    assert_serving_with(f, 0);
    expect(submit_raw(f, "echo", NULL, 64 * MAX_PAYLOAD),
        ANVIL__V1__CODE__INVALID_ARGUMENT, limit);
    assert_serving_with(f, 0);
    submit_ok(f, "echo", NULL, MAX_PAYLOAD); // at the limit is fine
    assert_serving_with(f, 1);
}

static void
test_unknown_job_ids_are_not_found(void **state)
{
    struct fixture             *f     = *state;
    Anvil__V1__GetJobRequest    get   = ANVIL__V1__GET_JOB_REQUEST__INIT;
    Anvil__V1__WaitJobRequest   wait  = ANVIL__V1__WAIT_JOB_REQUEST__INIT;
    Anvil__V1__CancelJobRequest cxl   = ANVIL__V1__CANCEL_JOB_REQUEST__INIT;
    static const char          *ids[] = { "j999999", "nonsense", "j-1" };

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        get.id = (char *) ids[i];
        expect(call(f, "GetJob", &get.base), ANVIL__V1__CODE__NOT_FOUND, NULL);
        wait.id         = (char *) ids[i];
        wait.timeout_ms = 100;
        expect(
            call(f, "WaitJob", &wait.base), ANVIL__V1__CODE__NOT_FOUND, NULL);
        cxl.id = (char *) ids[i];
        expect(
            call(f, "CancelJob", &cxl.base), ANVIL__V1__CODE__NOT_FOUND, NULL);
        assert_serving_with(f, 0);
    }
}

// ---- The SP wire itself, on a plain AF_UNIX stream
//
// Over ipc:// an SP peer sends an 8-byte greeting ("\0SP\0", its protocol
// number, two zero bytes), then frames of a 1-byte type (1) and a 64-bit
// big-endian length. A REQ frame starts with a 4-byte request id whose top
// bit is set. A plain stream shows what the server does with a frame over
// its receive limit without any client-side nng in the way.

#define SP_PROTO_REQ0 0x30
#define SP_PROTO_REP0 0x31

// Connects to the harness's ipc:// URL and exchanges SP greetings as a
// REQ peer. Returns the descriptor (5 s send/receive timeouts) or -1.
static int
sp_open(const struct fixture *f)
{
    static const uint8_t hello[8] = { 0, 'S', 'P', 0, 0, SP_PROTO_REQ0 };
    static const uint8_t want[8]  = { 0, 'S', 'P', 0, 0, SP_PROTO_REP0 };
    struct sockaddr_un   sa       = { .sun_family = AF_UNIX };
    struct timeval       tv       = { TIMEOUT_MS / 1000, 0 };
    uint8_t              got[8];
    int                  fd;

    snprintf(
        sa.sun_path, sizeof(sa.sun_path), "%s", f->h.url + strlen("ipc://"));
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0
        || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0
        || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0
        || harness_write_all(fd, hello, sizeof(hello)) != 0
        || harness_read_all(fd, got, sizeof(got)) != 1
        || memcmp(got, want, sizeof(want)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

// Sends the header of a REQ frame carrying body_len bytes after the
// request id, and the id, in one write; the caller sends the body.
static int
sp_send_head(int fd, uint64_t body_len)
{
    uint8_t head[13];

    head[0] = 1;
    harness_put_be64(head + 1, body_len + 4);
    head[9]  = 0x80; // request id 0x80000001
    head[10] = 0;
    head[11] = 0;
    head[12] = 1;
    return harness_write_all(fd, head, sizeof(head));
}

// True once the server has closed the stream: end of stream or a reset,
// with no reply frame before it.
static bool
sp_closed_by_peer(int fd)
{
    uint8_t b;
    int     rv = harness_read_all(fd, &b, 1);

    if (rv == 1)
        print_error("the server sent a reply instead of closing\n");
    else if (rv < 0 && errno != ECONNRESET)
        print_error("no close from the server: %s\n", strerror(errno));
    return rv == 0 || (rv < 0 && errno == ECONNRESET);
}

// The framing above is right: a Health request on a plain stream is
// answered, so the drops below are the size limit's doing.
static void
test_a_plain_stream_speaking_sp_is_answered(void **state)
{
    struct fixture    *f   = *state;
    Anvil__V1__Request req = ANVIL__V1__REQUEST__INIT;
    Anvil__V1__Reply  *rep;
    uint8_t            buf[256];
    uint8_t            head[9];
    uint64_t           len;
    size_t             n;
    int                fd = sp_open(f);

    assert_true(fd >= 0);
    req.method     = "Health";
    req.request_id = f->next_rid++;
    n              = anvil__v1__request__get_packed_size(&req);
    assert_true(n <= sizeof(buf));
    anvil__v1__request__pack(&req, buf);
    assert_int_equal(sp_send_head(fd, n), 0);
    assert_int_equal(harness_write_all(fd, buf, n), 0);

    assert_int_equal(harness_read_all(fd, head, sizeof(head)), 1);
    assert_int_equal(head[0], 1);
    len = harness_get_be64(head + 1);
    assert_true(len > 4 && len <= sizeof(buf));
    assert_int_equal(harness_read_all(fd, buf, (size_t) len), 1);
    assert_int_equal(buf[0], 0x80); // our request id comes back first
    assert_int_equal(buf[3], 1);
    rep = anvil__v1__reply__unpack(NULL, (size_t) len - 4, buf + 4);
    assert_non_null(rep);
    assert_int_equal(rep->code, ANVIL__V1__CODE__OK);
    assert_int_equal(rep->request_id, req.request_id);
    anvil__v1__reply__free_unpacked(rep, NULL);
    close(fd);
}

// A frame header claiming 8 GiB: the server must close the connection at
// once, neither allocating nor waiting for the bytes.
static void
test_a_frame_header_claiming_8_gib_is_dropped(void **state)
{
    struct fixture *f  = *state;
    int             fd = sp_open(f);

    assert_true(fd >= 0);
    (void) sp_send_head(fd, (uint64_t) 8 << 30); // may see the close
    assert_true(sp_closed_by_peer(fd));
    close(fd);
    assert_serving_with(f, 0);
}

// A whole 4 MiB frame against a server whose payload limit is 1 KiB: it is
// dropped with its connection, not answered, and nothing is stored.
static void
test_a_frame_over_the_receive_limit_is_dropped(void **state)
{
    struct fixture *f    = *state;
    size_t          big  = (size_t) 4 << 20;
    uint8_t        *body = calloc(1, big);
    int             fd   = sp_open(f);

    assert_non_null(body);
    assert_true(fd >= 0);
    // The server may close while we write: a failed write is fine.
    if (sp_send_head(fd, big) == 0)
        (void) harness_write_all(fd, body, big);
    assert_true(sp_closed_by_peer(fd));
    close(fd);
    free(body);
    assert_serving_with(f, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_well_formed_envelope_is_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_garbage_instead_of_an_envelope_is_invalid_argument, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_an_empty_frame_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_an_unknown_method_is_unimplemented_naming_it, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_body_that_is_not_the_methods_message_is_invalid_argument,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_bad_type_names_are_invalid_argument_naming_type, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_bad_queue_names_are_invalid_argument_naming_queue, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_bad_queue_names_to_pause_or_resume_are_invalid_argument, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_payload_over_the_limit_is_invalid_argument_naming_it, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_unknown_job_ids_are_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_plain_stream_speaking_sp_is_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_frame_header_claiming_8_gib_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_frame_over_the_receive_limit_is_dropped, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
