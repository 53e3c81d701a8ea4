// test_hostile.c - anvild under hostile input on tcp://: frame headers
// claiming gigabytes, hundreds of stalled half-sent messages, a body nested
// 10,000 deep, garbage bytes, too many long-polls per connection and in
// all, a flooded engine queue, and every request limit. After each, the
// server is up, a legitimate client's Health is answered, and the
// process's resident size (the server runs in this process) grew by less
// than RSS_BOUND.
//
// Raw TCP sockets speak the SP framing by hand (docs/protocol.md: an
// 8-byte greeting, then frames of an 8-byte big-endian length and a
// 4-byte REQ id with its top bit set); legitimate requests go over nng
// req0 sockets as protobuf-c envelopes.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../../server/server.h"
#include "../harness.h"
#include "anvil/v1/anvil.pb-c.h"
#include "util/clock.h"

#define TIMEOUT_MS 5000
#define SMALL_PAYLOAD (64 * 1024)
#define RECV_MARGIN (64 * 1024) // the server's receive limit is payload + this
#define RSS_BOUND_KB (64 * 1024)
#define STALLED_CONNS 200
#define NEST_DEPTH 10000

#define OK ANVIL__V1__CODE__OK
#define INVALID_ARGUMENT ANVIL__V1__CODE__INVALID_ARGUMENT
#define RESOURCE_EXHAUSTED ANVIL__V1__CODE__RESOURCE_EXHAUSTED

struct fixture {
    char                 dir[64];
    char                 db[128];
    char                 url[64]; // tcp://127.0.0.1:<port>
    int                  port;
    struct server_config cfg;
    struct server       *server;
    nng_socket           sock; // a legitimate client
    uint64_t             next_rid;
    long                 rss_before_kb;
};

// ---- process and server ----

// This process's resident set size in KiB (the server runs in it).
static long
rss_kb(void)
{
    FILE *fp = fopen("/proc/self/status", "r");
    char  line[256];
    long  kb = -1;

    while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    }
    if (fp != NULL)
        fclose(fp);
    return kb;
}

static int
sock_open(const char *url, nng_socket *s, int recv_ms)
{
    return harness_req_open(s, url, recv_ms, 16 << 20);
}

static int
group_setup(void **state)
{
    (void) state;
    atexit(nng_fini);
    return 0;
}

// A fixture with a directory, a free port and a config with a small
// payload limit; the test starts the server (start()) once configured.
static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    *state = f;
    snprintf(f->dir, sizeof(f->dir), "/tmp/anvil-hostile-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        f->dir[0] = '\0';
        return -1;
    }
    snprintf(f->db, sizeof(f->db), "%s/anvil.db", f->dir);
    f->port = harness_free_tcp_port();
    if (f->port <= 0)
        return -1;
    snprintf(f->url, sizeof(f->url), "tcp://127.0.0.1:%d", f->port);
    server_config_init(&f->cfg);
    f->cfg.listen_url  = f->url;
    f->cfg.db_path     = f->db;
    f->cfg.synchronous = 1;
    f->cfg.max_payload = SMALL_PAYLOAD;
    f->next_rid        = ((uint64_t) getpid() << 32) ^ (uint64_t) av_now_ms();
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    if (f == NULL)
        return 0;
    if (nng_socket_id(f->sock) > 0)
        nng_close(f->sock);
    server_stop(f->server);
    if (f->dir[0] != '\0')
        harness_remove_tree(f->dir);
    free(f);
    return 0;
}

static void
start(struct fixture *f)
{
    struct anvil_error err = { 0 };
    int                rc  = server_start(&f->cfg, &f->server, &err);

    if (rc != ANVIL_OK)
        print_error(
            "server_start %s: %s: %s\n", f->url, anvil_code_name(rc), err.msg);
    assert_int_equal(rc, ANVIL_OK);
    assert_int_equal(sock_open(f->url, &f->sock, TIMEOUT_MS), 0);
    f->rss_before_kb = rss_kb();
    assert_true(f->rss_before_kb > 0);
}

// ---- legitimate requests ----

// Packs a Request envelope for method around body bytes into a new
// message.
static nng_msg *
envelope(struct fixture *f, const char *method, const void *body, size_t len,
    uint64_t *rid)
{
    Anvil__V1__Request req = ANVIL__V1__REQUEST__INIT;
    nng_msg           *msg;

    req.method     = (char *) method;
    req.body.data  = (uint8_t *) body;
    req.body.len   = len;
    req.request_id = f->next_rid++;
    *rid           = req.request_id;
    assert_int_equal(
        nng_msg_alloc(&msg, anvil__v1__request__get_packed_size(&req)), 0);
    anvil__v1__request__pack(&req, nng_msg_body(msg));
    return msg;
}

static Anvil__V1__Reply *
call_bytes_on(struct fixture *f, nng_socket s, const char *method,
    const void *body, size_t len)
{
    uint64_t rid;
    nng_msg *msg = envelope(f, method, body, len, &rid);
    nng_msg *in  = NULL;
    int      rv  = nng_sendmsg(s, msg, 0);

    if (rv != 0)
        nng_msg_free(msg);
    if (rv == 0)
        rv = nng_recvmsg(s, &in, 0);
    if (rv != 0)
        print_error("%s: %s\n", method, nng_strerror(rv));
    assert_int_equal(rv, 0);
    Anvil__V1__Reply *rep
        = anvil__v1__reply__unpack(NULL, nng_msg_len(in), nng_msg_body(in));
    nng_msg_free(in);
    assert_non_null(rep);
    assert_int_equal(rep->request_id, rid);
    return rep;
}

static Anvil__V1__Reply *
call_on(struct fixture *f, nng_socket s, const char *method,
    const ProtobufCMessage *body)
{
    size_t   n = protobuf_c_message_get_packed_size(body);
    uint8_t *b = malloc(n + 1);

    assert_non_null(b);
    protobuf_c_message_pack(body, b);
    Anvil__V1__Reply *rep = call_bytes_on(f, s, method, b, n);
    free(b);
    return rep;
}

static Anvil__V1__Reply *
call(struct fixture *f, const char *method, const ProtobufCMessage *body)
{
    return call_on(f, f->sock, method, body);
}

// Asserts rep has code and a message holding every needle (NULL-ended);
// frees rep.
static void
expect(Anvil__V1__Reply *rep, int code, ...)
{
    va_list     ap;
    const char *needle;
    bool        ok = (int) rep->code == code;

    va_start(ap, code);
    while ((needle = va_arg(ap, const char *)) != NULL)
        ok &= strstr(rep->message, needle) != NULL;
    va_end(ap);
    if (!ok)
        print_error("reply %s \"%s\"; expected %s\n",
            anvil_code_name((int) rep->code), rep->message,
            anvil_code_name(code));
    assert_true(ok);
    if (code != OK)
        assert_int_equal(rep->body.len, 0);
    anvil__v1__reply__free_unpacked(rep, NULL);
}

// Health is answered on the legitimate client's connection and on a new
// one.
static void
assert_serving(struct fixture *f)
{
    Anvil__V1__HealthRequest req = ANVIL__V1__HEALTH_REQUEST__INIT;
    nng_socket               s;

    expect(call(f, "Health", &req.base), OK, NULL);
    assert_int_equal(sock_open(f->url, &s, TIMEOUT_MS), 0);
    expect(call_on(f, s, "Health", &req.base), OK, NULL);
    nng_close(s);
}

// assert_serving(), and the process grew by less than RSS_BOUND_KB since
// start(): what hostile input made the server hold stays bounded.
static void
assert_serving_bounded(struct fixture *f)
{
    assert_serving(f);
    long grown = rss_kb() - f->rss_before_kb;
    if (grown >= RSS_BOUND_KB)
        print_error("resident size grew by %ld KiB\n", grown);
    assert_true(grown < RSS_BOUND_KB);
}

static Anvil__V1__Reply *
submit(struct fixture *f, const char *type, const char *queue, size_t len)
{
    Anvil__V1__SubmitJobRequest req = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    uint8_t                    *p   = malloc(len + 1);

    assert_non_null(p);
    memset(p, 'p', len);
    req.type              = (char *) type;
    req.queue             = (char *) (queue ? queue : "");
    req.payload.data      = p;
    req.payload.len       = len;
    Anvil__V1__Reply *rep = call(f, "SubmitJob", &req.base);
    free(p);
    return rep;
}

// Submits a job nobody runs; its id into id (32 bytes).
static void
submit_ok(struct fixture *f, const char *type, char *id)
{
    Anvil__V1__Reply *rep = submit(f, type, NULL, 2);

    assert_int_equal(rep->code, OK);
    Anvil__V1__SubmitJobResponse *r = anvil__v1__submit_job_response__unpack(
        NULL, rep->body.len, rep->body.data);
    assert_non_null(r);
    snprintf(id, 32, "%s", r->id);
    anvil__v1__submit_job_response__free_unpacked(r, NULL);
    anvil__v1__reply__free_unpacked(rep, NULL);
}

static void
cancel_ok(struct fixture *f, const char *id)
{
    Anvil__V1__CancelJobRequest req = ANVIL__V1__CANCEL_JOB_REQUEST__INIT;

    req.id = (char *) id;
    expect(call(f, "CancelJob", &req.base), OK, NULL);
}

// ---- raw SP over TCP ----

// A TCP connection to the server with recv_ms/5 s timeouts, or -1.
static int
tcp_connect(const struct fixture *f, int recv_ms)
{
    struct sockaddr_in sa  = { .sin_family = AF_INET };
    struct timeval     rt  = { recv_ms / 1000, (recv_ms % 1000) * 1000 };
    struct timeval     st  = { TIMEOUT_MS / 1000, 0 };
    int                one = 1;
    int                fd  = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port        = htons((uint16_t) f->port);
    if (fd < 0)
        return -1;
    // Header and body go in two writes: no Nagle delay between them.
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0
        || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof(rt)) != 0
        || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &st, sizeof(st)) != 0
        || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

// Connects and exchanges SP greetings as a REQ peer; the fd, or -1.
static int
sp_open(const struct fixture *f, int recv_ms)
{
    static const uint8_t hello[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 };
    static const uint8_t want[8]  = { 0, 'S', 'P', 0, 0, 0x31, 0, 0 };
    uint8_t              got[8];
    int                  fd = tcp_connect(f, recv_ms);

    if (fd < 0)
        return -1;
    if (harness_write_all(fd, hello, sizeof(hello)) != 0
        || harness_read_all(fd, got, sizeof(got)) != 1
        || memcmp(got, want, sizeof(want)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

// Writes a frame header claiming len bytes, then the REQ id 0x80000000|n.
static int
sp_head(int fd, uint64_t len, uint32_t n)
{
    uint8_t h[12];

    harness_put_be64(h, len);
    h[8]  = (uint8_t) (0x80 | ((n >> 24) & 0x7f));
    h[9]  = (uint8_t) (n >> 16);
    h[10] = (uint8_t) (n >> 8);
    h[11] = (uint8_t) n;
    return harness_write_all(fd, h, sizeof(h));
}

// Waits up to ms for the server to close fd: true on end of stream or
// reset, with nothing received before it but (if greeting) the server's
// own SP greeting, which nng sends as soon as it accepts.
static bool
closed_by_server(int fd, int ms, bool greeting)
{
    static const uint8_t rep[8] = { 0, 'S', 'P', 0, 0, 0x31, 0, 0 };
    int64_t              until  = av_mono_ms() + ms;
    size_t               got    = 0;
    uint8_t              b;

    while (av_mono_ms() < until) {
        ssize_t n = recv(fd, &b, 1, 0);

        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n > 0 && (!greeting || got >= sizeof(rep) || b != rep[got])) {
            print_error("the server sent byte %zu instead of closing\n", got);
            return false;
        }
        if (n > 0) {
            got++;
            continue;
        }
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            print_error("recv: %s\n", strerror(errno));
            return false;
        }
    }
    print_error("the server did not close within %d ms\n", ms);
    return false;
}

// Reads one reply frame for REQ id n from fd: the Reply, or NULL.
static Anvil__V1__Reply *
sp_read_reply(int fd, uint32_t n)
{
    uint8_t head[8];

    if (harness_read_all(fd, head, 8) != 1)
        return NULL;
    uint64_t len = harness_get_be64(head);
    if (len < 4 || len > (1 << 20))
        return NULL;
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    Anvil__V1__Reply *rep = NULL;
    uint32_t          id  = 0;
    int               rv  = harness_read_all(fd, buf, len);
    for (int i = 0; rv == 1 && i < 4; i++)
        id = (id << 8) | buf[i];
    if (rv == 1 && id == (0x80000000u | n))
        rep = anvil__v1__reply__unpack(NULL, len - 4, buf + 4);
    free(buf);
    return rep;
}

// ---- frames claiming too much ----

static void
test_a_frame_header_claiming_8_gib_drops_only_that_connection(void **state)
{
    struct fixture *f        = *state;
    const uint64_t  claims[] = { 8ULL << 30, UINT64_MAX, 1ULL << 63,
         SMALL_PAYLOAD + RECV_MARGIN + 1 };

    start(f);
    for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
        int fd = sp_open(f, 200);
        assert_true(fd >= 0);
        assert_int_equal(sp_head(fd, claims[i], 1), 0);
        // Whatever follows is never read.
        uint8_t some[4096];
        memset(some, 'x', sizeof(some));
        (void) harness_write_all(fd, some, sizeof(some));
        assert_true(closed_by_server(fd, TIMEOUT_MS, false));
        close(fd);
        assert_serving_bounded(f);
    }
}

// Each connection claims a message of just under the receive limit, sends
// half of it and stalls; the server holds them all and keeps serving.
static void
test_200_stalled_half_messages_leave_the_server_serving(void **state)
{
    struct fixture *f     = *state;
    const size_t    claim = SMALL_PAYLOAD + RECV_MARGIN / 2;
    int             fds[STALLED_CONNS];
    uint8_t        *half = calloc(1, claim / 2);

    assert_non_null(half);
    start(f);
    for (int i = 0; i < STALLED_CONNS; i++) {
        fds[i] = sp_open(f, 200);
        if (fds[i] < 0)
            print_error("connection %d: %s\n", i, strerror(errno));
        assert_true(fds[i] >= 0);
        assert_int_equal(sp_head(fds[i], claim, (uint32_t) i + 1), 0);
        assert_int_equal(harness_write_all(fds[i], half, claim / 2 - 4), 0);
    }
    free(half);
    // All 200 stall mid-message while the server answers others.
    for (int i = 0; i < 3; i++)
        assert_serving_bounded(f);
    // None of the stalled connections got anything.
    for (int i = 0; i < STALLED_CONNS; i += 37) {
        uint8_t b;
        assert_int_equal(recv(fds[i], &b, 1, 0), -1);
        assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    }
    for (int i = 0; i < STALLED_CONNS; i++)
        close(fds[i]);
    assert_serving_bounded(f);
}

// ---- nesting ----

// Appends varint v before *pos (writing backwards).
static void
put_varint_back(uint8_t *buf, size_t *pos, uint64_t v)
{
    uint8_t tmp[10];
    size_t  n = 0;

    do {
        tmp[n++] = (uint8_t) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    *pos -= n;
    memcpy(buf + *pos, tmp, n);
}

// depth length-delimited fields numbered `field`, each holding the next,
// around an empty core. Caller frees; *len gets the size.
static uint8_t *
nested(int depth, uint32_t field, size_t *len)
{
    size_t   cap = (size_t) depth * 16;
    uint8_t *buf = malloc(cap);
    size_t   pos = cap;

    assert_non_null(buf);
    for (int i = 0; i < depth; i++) {
        size_t inner = cap - pos;
        put_varint_back(buf, &pos, inner);
        put_varint_back(buf, &pos, ((uint64_t) field << 3) | 2);
    }
    *len = cap - pos;
    memmove(buf, buf + pos, *len);
    return buf;
}

static void
test_a_body_nested_10000_deep_is_answered_without_harm(void **state)
{
    struct fixture *f = *state;
    const struct {
        const char *method;
        uint32_t    field; // the field that nests
        int         code;
    } cases[] = {
        { "SubmitJob", 1, INVALID_ARGUMENT },        // type
        { "SubmitWorkflow", 1, INVALID_ARGUMENT },   // spec, then its name
        { "SubmitWorkflow", 2, INVALID_ARGUMENT },   // unknown: no spec
        { "Poll", 6, INVALID_ARGUMENT },             // info, then slots
        { "Heartbeat", 2, INVALID_ARGUMENT },        // leases, then token
        { "GetJob", 1, ANVIL__V1__CODE__NOT_FOUND }, // id
        { "Health", 99, OK },                        // unknown: skipped
    };

    start(f);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t   len;
        uint8_t *body = nested(NEST_DEPTH, cases[i].field, &len);
        assert_true(len < SMALL_PAYLOAD + RECV_MARGIN);
        Anvil__V1__Reply *rep
            = call_bytes_on(f, f->sock, cases[i].method, body, len);
        free(body);
        if ((int) rep->code != cases[i].code)
            print_error("%s nested in field %u: %s \"%s\"\n", cases[i].method,
                cases[i].field, anvil_code_name((int) rep->code), rep->message);
        assert_int_equal(rep->code, cases[i].code);
        anvil__v1__reply__free_unpacked(rep, NULL);
        assert_serving_bounded(f);
    }
    // The envelope itself nested: no method, so no rpc.
    size_t   len;
    uint8_t *frame = nested(NEST_DEPTH, 2, &len);
    nng_msg *msg;
    assert_int_equal(nng_msg_alloc(&msg, len), 0);
    memcpy(nng_msg_body(msg), frame, len);
    free(frame);
    assert_int_equal(nng_sendmsg(f->sock, msg, 0), 0);
    nng_msg *in;
    assert_int_equal(nng_recvmsg(f->sock, &in, 0), 0);
    Anvil__V1__Reply *rep
        = anvil__v1__reply__unpack(NULL, nng_msg_len(in), nng_msg_body(in));
    nng_msg_free(in);
    assert_non_null(rep);
    assert_true(rep->code == ANVIL__V1__CODE__UNIMPLEMENTED
        || rep->code == INVALID_ARGUMENT);
    anvil__v1__reply__free_unpacked(rep, NULL);
    assert_serving_bounded(f);
}

// ---- garbage ----

static uint32_t
next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void
fill_rand(uint8_t *p, size_t n, uint32_t *seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t) next_rand(seed);
}

static void
test_garbage_instead_of_the_sp_greeting_is_disconnected(void **state)
{
    struct fixture *f    = *state;
    uint32_t        seed = 0x5eed1234;
    uint8_t         junk[4096];

    start(f);
    for (int i = 0; i < 20; i++) {
        int fd = tcp_connect(f, 200);
        assert_true(fd >= 0);
        fill_rand(junk, sizeof(junk), &seed);
        junk[0] = 'G'; // never a valid greeting
        (void) harness_write_all(fd, junk, 8 + (size_t) i * 100);
        assert_true(closed_by_server(fd, TIMEOUT_MS, true));
        close(fd);
    }
    // An HTTP request and the start of a TLS ClientHello.
    static const struct {
        const char *bytes;
        size_t      len;
    } others[] = {
        { "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27 },
        { "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11 },
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        int fd = tcp_connect(f, 200);
        assert_true(fd >= 0);
        assert_int_equal(
            harness_write_all(fd, others[i].bytes, others[i].len), 0);
        assert_true(closed_by_server(fd, TIMEOUT_MS, true));
        close(fd);
    }
    assert_serving_bounded(f);
}

static void
test_garbage_frames_after_the_greeting_never_harm_the_server(void **state)
{
    struct fixture *f    = *state;
    uint32_t        seed = 0xbadc0de;
    uint8_t         junk[4096];

    start(f);
    // Random bytes where the frame header belongs.
    for (int i = 0; i < 20; i++) {
        int fd = sp_open(f, 200);
        assert_true(fd >= 0);
        fill_rand(junk, sizeof(junk), &seed);
        junk[0] |= 0x80; // claims far over the limit
        (void) harness_write_all(fd, junk, sizeof(junk));
        assert_true(closed_by_server(fd, TIMEOUT_MS, false));
        close(fd);
    }
    assert_serving_bounded(f);

    // Well-framed REQ messages with random envelopes: each is answered
    // with a Reply the client can read (never OK), on one connection.
    int fd = sp_open(f, TIMEOUT_MS);
    assert_true(fd >= 0);
    for (uint32_t i = 1; i <= 200; i++) {
        size_t n = next_rand(&seed) % sizeof(junk);
        fill_rand(junk, n, &seed);
        assert_int_equal(sp_head(fd, n + 4, i), 0);
        assert_int_equal(harness_write_all(fd, junk, n), 0);
        Anvil__V1__Reply *rep = sp_read_reply(fd, i);
        assert_non_null(rep);
        assert_int_not_equal(rep->code, OK);
        assert_true(rep->message[0] != '\0');
        anvil__v1__reply__free_unpacked(rep, NULL);
    }
    close(fd);
    assert_serving_bounded(f);
}

// A REQ frame whose id lacks its top bit is not a request: the server
// answers nothing on it.
static void
test_a_frame_without_a_request_id_gets_no_reply(void **state)
{
    struct fixture *f = *state;
    uint8_t         frame[8 + 4 + 2];

    start(f);
    int fd = sp_open(f, 500);
    assert_true(fd >= 0);
    harness_put_be64(frame, 6);
    memset(frame + 8, 0, 4); // no top bit anywhere
    frame[12] = 0x0a;
    frame[13] = 0x00;
    assert_int_equal(harness_write_all(fd, frame, sizeof(frame)), 0);
    uint8_t b;
    ssize_t n = recv(fd, &b, 1, 0);
    assert_true(n <= 0); // closed, reset or timed out; never a reply
    close(fd);
    assert_serving_bounded(f);
}

// ---- long-polls and the engine queue ----

static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;

// One request on its own context of a shared socket, sent and received
// by aio callbacks (which only record; asserts stay on the test thread).
struct pending {
    nng_ctx  ctx;
    nng_aio *aio;
    bool     sending;
    bool     done; // under pending_lock
    int      rv;
    nng_msg *reply;
    int64_t  done_at;
};

static void
pending_cb(void *arg)
{
    struct pending *p  = arg;
    int             rv = nng_aio_result(p->aio);

    if (p->sending && rv == 0) {
        p->sending = false;
        nng_ctx_recv(p->ctx, p->aio);
        return;
    }
    if (p->sending)
        nng_msg_free(nng_aio_get_msg(p->aio));
    pthread_mutex_lock(&pending_lock);
    p->rv      = rv;
    p->reply   = rv == 0 && !p->sending ? nng_aio_get_msg(p->aio) : NULL;
    p->done_at = av_mono_ms();
    p->done    = true;
    pthread_mutex_unlock(&pending_lock);
}

static void
pending_start(struct fixture *f, nng_socket s, struct pending *p,
    const char *method, const ProtobufCMessage *body)
{
    size_t   n = protobuf_c_message_get_packed_size(body);
    uint8_t *b = malloc(n + 1);
    uint64_t rid;

    memset(p, 0, sizeof(*p));
    assert_non_null(b);
    protobuf_c_message_pack(body, b);
    nng_msg *msg = envelope(f, method, b, n, &rid);
    free(b);
    assert_int_equal(nng_aio_alloc(&p->aio, pending_cb, p), 0);
    assert_int_equal(nng_ctx_open(&p->ctx, s), 0);
    nng_aio_set_timeout(p->aio, 60000);
    nng_aio_set_msg(p->aio, msg);
    p->sending = true;
    nng_ctx_send(p->ctx, p->aio);
}

static bool
pending_done(struct pending *p)
{
    pthread_mutex_lock(&pending_lock);
    bool d = p->done;
    pthread_mutex_unlock(&pending_lock);
    return d;
}

// Waits up to ms for p; its Reply (caller frees), or NULL if none came.
static Anvil__V1__Reply *
pending_wait(struct pending *p, int ms)
{
    int64_t until = av_mono_ms() + ms;

    while (!pending_done(p) && av_mono_ms() < until) {
        struct timespec ts = { 0, 2 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    if (!pending_done(p) || p->reply == NULL)
        return NULL;
    Anvil__V1__Reply *rep = anvil__v1__reply__unpack(
        NULL, nng_msg_len(p->reply), nng_msg_body(p->reply));
    assert_non_null(rep);
    return rep;
}

static void
pending_fini(struct pending *p)
{
    nng_aio_stop(p->aio);
    nng_aio_free(p->aio);
    nng_ctx_close(p->ctx);
    if (p->reply != NULL)
        nng_msg_free(p->reply);
}

// Counts the pendings answered so far.
static int
count_done(struct pending *p, int n)
{
    int d = 0;

    for (int i = 0; i < n; i++)
        d += pending_done(&p[i]);
    return d;
}

// Starts a WaitJob of 20 s on job id.
static void
park_wait(struct fixture *f, nng_socket s, struct pending *p, const char *id)
{
    Anvil__V1__WaitJobRequest req = ANVIL__V1__WAIT_JOB_REQUEST__INIT;

    req.id         = (char *) id;
    req.timeout_ms = 20000;
    pending_start(f, s, p, "WaitJob", &req.base);
}

// Of n pendings, exactly one is answered at once with RESOURCE_EXHAUSTED
// naming needle; the others stay parked. Returns the rejected index.
static int
expect_one_rejected(struct pending *p, int n, const char *needle)
{
    int64_t until    = av_mono_ms() + TIMEOUT_MS;
    int     rejected = -1;

    while (count_done(p, n) < 1 && av_mono_ms() < until) {
        struct timespec ts = { 0, 2 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < n; i++) {
        if (!pending_done(&p[i]))
            continue;
        Anvil__V1__Reply *rep = pending_wait(&p[i], 0);
        assert_non_null(rep);
        if (rep->code != RESOURCE_EXHAUSTED
            || strstr(rep->message, needle) == NULL)
            print_error("reply %s \"%s\"; expected RESOURCE_EXHAUSTED "
                        "naming %s\n",
                anvil_code_name((int) rep->code), rep->message, needle);
        assert_int_equal(rep->code, RESOURCE_EXHAUSTED);
        assert_non_null(strstr(rep->message, needle));
        anvil__v1__reply__free_unpacked(rep, NULL);
        rejected = i;
    }
    assert_int_equal(count_done(p, n), 1);
    return rejected;
}

// Cancels job id and checks each parked WaitJob (all but skip) is then
// answered, done, with the job CANCELED.
static void
release_waits(
    struct fixture *f, struct pending *p, int n, int skip, const char *id)
{
    cancel_ok(f, id);
    for (int i = 0; i < n; i++) {
        if (i == skip)
            continue;
        Anvil__V1__Reply *rep = pending_wait(&p[i], TIMEOUT_MS);
        assert_non_null(rep);
        assert_int_equal(rep->code, OK);
        Anvil__V1__WaitJobResponse *w = anvil__v1__wait_job_response__unpack(
            NULL, rep->body.len, rep->body.data);
        assert_non_null(w);
        assert_true(w->done);
        assert_int_equal(
            w->job->state, ANVIL__V1__JOB_STATE__JOB_STATE_CANCELED);
        anvil__v1__wait_job_response__free_unpacked(w, NULL);
        anvil__v1__reply__free_unpacked(rep, NULL);
    }
}

static void
test_long_polls_over_max_waits_per_conn_are_resource_exhausted(void **state)
{
    struct fixture *f = *state;
    struct pending  p[5];
    nng_socket      s;
    char            id[32];

    f->cfg.max_waits_per_conn = 4;
    start(f);
    submit_ok(f, "nobody-runs-this", id);
    assert_int_equal(sock_open(f->url, &s, TIMEOUT_MS), 0);
    for (int i = 0; i < 5; i++)
        park_wait(f, s, &p[i], id);
    int rejected = expect_one_rejected(p, 5, "max-waits-per-conn");

    // Another connection may still long-poll (the server counts per
    // connection in 4096 slots by pipe id, so one in 4096 connections
    // shares the full one's slot: three tries make that moot), and
    // anything that does not park is answered on the full one.
    Anvil__V1__WaitJobRequest wait = ANVIL__V1__WAIT_JOB_REQUEST__INIT;
    wait.id                        = id;
    wait.timeout_ms                = 50;
    bool served                    = false;
    for (int i = 0; i < 3 && !served; i++) {
        nng_socket        other;
        Anvil__V1__Reply *rep;
        assert_int_equal(sock_open(f->url, &other, TIMEOUT_MS), 0);
        rep    = call_on(f, other, "WaitJob", &wait.base);
        served = rep->code == OK;
        anvil__v1__reply__free_unpacked(rep, NULL);
        nng_close(other);
    }
    assert_true(served);
    Anvil__V1__HealthRequest health = ANVIL__V1__HEALTH_REQUEST__INIT;
    expect(call_on(f, s, "Health", &health.base), OK, NULL);
    assert_int_equal(count_done(p, 5), 1);

    release_waits(f, p, 5, rejected, id);
    for (int i = 0; i < 5; i++)
        pending_fini(&p[i]);
    // The slots are free again.
    expect(call_on(f, s, "WaitJob", &wait.base), OK, NULL);
    nng_close(s);
    assert_serving_bounded(f);
}

static void
test_long_polls_over_max_waits_are_resource_exhausted(void **state)
{
    struct fixture *f = *state;
    struct pending  p[4];
    nng_socket      s[4];
    char            id[32];

    f->cfg.max_waits = 3;
    start(f);
    submit_ok(f, "nobody-runs-this", id);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sock_open(f->url, &s[i], TIMEOUT_MS), 0);
        park_wait(f, s[i], &p[i], id);
    }
    int rejected = expect_one_rejected(p, 4, "--max-waits");

    // Requests that do not park are still served.
    Anvil__V1__WaitJobRequest wait = ANVIL__V1__WAIT_JOB_REQUEST__INIT;
    wait.id                        = id;
    expect(call(f, "WaitJob", &wait.base), OK, NULL);
    Anvil__V1__HealthRequest health = ANVIL__V1__HEALTH_REQUEST__INIT;
    expect(call(f, "Health", &health.base), OK, NULL);
    // A Poll that would park is refused too.
    Anvil__V1__PollRequest poll    = ANVIL__V1__POLL_REQUEST__INIT;
    char                  *types[] = { (char *) "other" };
    poll.worker_id                 = (char *) "w1";
    poll.types                     = types;
    poll.n_types                   = 1;
    poll.wait_ms                   = 10000;
    expect(
        call(f, "Poll", &poll.base), RESOURCE_EXHAUSTED, "--max-waits", NULL);

    release_waits(f, p, 4, rejected, id);
    for (int i = 0; i < 4; i++) {
        pending_fini(&p[i]);
        nng_close(s[i]);
    }
    poll.wait_ms = 50;
    expect(call(f, "Poll", &poll.base), OK, NULL);
    assert_serving_bounded(f);
}

#define BURST 48

// With max_queue 1, bursts of concurrent requests until one finds the
// engine's queue full (the engine drains it between batches, so a burst
// almost always overflows it; this repeats against a deadline).
static void
test_requests_over_max_queue_are_resource_exhausted(void **state)
{
    struct fixture *f = *state;
    struct pending  p[BURST];
    int             exhausted = 0, ok = 0;
    int64_t         until    = av_mono_ms() + 10000;
    char            msg[256] = "";

    f->cfg.max_queue = 1;
    start(f);
    while (exhausted == 0 && av_mono_ms() < until) {
        Anvil__V1__SubmitJobRequest req = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
        req.type                        = (char *) "flood";
        for (int i = 0; i < BURST; i++)
            pending_start(f, f->sock, &p[i], "SubmitJob", &req.base);
        for (int i = 0; i < BURST; i++) {
            Anvil__V1__Reply *rep = pending_wait(&p[i], TIMEOUT_MS);
            assert_non_null(rep);
            if (rep->code == RESOURCE_EXHAUSTED) {
                exhausted++;
                snprintf(msg, sizeof(msg), "%s", rep->message);
            } else {
                assert_int_equal(rep->code, OK);
                ok++;
            }
            anvil__v1__reply__free_unpacked(rep, NULL);
            pending_fini(&p[i]);
        }
    }
    if (exhausted == 0)
        print_error("no burst overflowed a queue of 1 within 10 s\n");
    assert_true(exhausted > 0);
    assert_true(ok > 0);
    if (strstr(msg, "max-queue") == NULL)
        print_error(
            "RESOURCE_EXHAUSTED \"%s\" does not name --max-queue\n", msg);
    assert_non_null(strstr(msg, "max-queue"));
    assert_serving_bounded(f);
}

// ---- huge times ----
//
// Times are int64 milliseconds; the server adds them to "now". A client
// may send INT64_MAX: the server must refuse it (INVALID_ARGUMENT) or
// honour it as "very late", never wrap around into the past (and under
// UBSan a signed overflow aborts the server).

// GetJob: the job's state.
static int
job_state(struct fixture *f, const char *id)
{
    Anvil__V1__GetJobRequest req = ANVIL__V1__GET_JOB_REQUEST__INIT;

    req.id                = (char *) id;
    Anvil__V1__Reply *rep = call(f, "GetJob", &req.base);
    assert_int_equal(rep->code, OK);
    Anvil__V1__GetJobResponse *g = anvil__v1__get_job_response__unpack(
        NULL, rep->body.len, rep->body.data);
    assert_non_null(g);
    int state = (int) g->job->state;
    anvil__v1__get_job_response__free_unpacked(g, NULL);
    anvil__v1__reply__free_unpacked(rep, NULL);
    return state;
}

// Submits req; true with the id if accepted, false if refused with
// INVALID_ARGUMENT naming field.
static bool
submit_huge(struct fixture *f, Anvil__V1__SubmitJobRequest *req,
    const char *field, char *id)
{
    Anvil__V1__Reply *rep = call(f, "SubmitJob", &req->base);

    if (rep->code != OK) {
        expect(rep, INVALID_ARGUMENT, field, NULL);
        return false;
    }
    Anvil__V1__SubmitJobResponse *r = anvil__v1__submit_job_response__unpack(
        NULL, rep->body.len, rep->body.data);
    assert_non_null(r);
    snprintf(id, 32, "%s", r->id);
    anvil__v1__submit_job_response__free_unpacked(r, NULL);
    anvil__v1__reply__free_unpacked(rep, NULL);
    return true;
}

// Polls one job of type "huge"; its lease token.
static uint32_t
lease_huge(struct fixture *f, const char *id)
{
    Anvil__V1__PollRequest req     = ANVIL__V1__POLL_REQUEST__INIT;
    char                  *types[] = { (char *) "huge" };

    req.worker_id         = (char *) "w-huge";
    req.types             = types;
    req.n_types           = 1;
    req.wait_ms           = 1000;
    Anvil__V1__Reply *rep = call(f, "Poll", &req.base);
    assert_int_equal(rep->code, OK);
    Anvil__V1__PollResponse *r
        = anvil__v1__poll_response__unpack(NULL, rep->body.len, rep->body.data);
    assert_non_null(r);
    assert_int_equal(r->n_leases, 1);
    assert_string_equal(r->leases[0]->job->id, id);
    uint32_t token = r->leases[0]->token;
    anvil__v1__poll_response__free_unpacked(r, NULL);
    anvil__v1__reply__free_unpacked(rep, NULL);
    return token;
}

static void
test_a_delay_of_int64_max_never_runs_the_job_now(void **state)
{
    struct fixture             *f   = *state;
    Anvil__V1__SubmitJobRequest req = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    char                        id[32];

    start(f);
    req.type     = (char *) "huge";
    req.delay_ms = INT64_MAX;
    if (submit_huge(f, &req, "delay_ms", id))
        assert_int_equal(
            job_state(f, id), ANVIL__V1__JOB_STATE__JOB_STATE_SCHEDULED);
    req.delay_ms  = 0;
    req.run_at_ms = INT64_MAX;
    if (submit_huge(f, &req, "run_at_ms", id))
        assert_int_equal(
            job_state(f, id), ANVIL__V1__JOB_STATE__JOB_STATE_SCHEDULED);
    assert_serving(f);
}

static void
test_a_timeout_of_int64_max_does_not_end_the_attempt_at_once(void **state)
{
    struct fixture             *f   = *state;
    Anvil__V1__SubmitJobRequest req = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    char                        id[32];

    start(f);
    req.type       = (char *) "huge";
    req.timeout_ms = INT64_MAX;
    if (submit_huge(f, &req, "timeout_ms", id)) {
        uint32_t token = lease_huge(f, id);
        // Health goes through the engine: any timer already due has
        // fired by the time it is answered.
        assert_serving(f);
        assert_int_equal(
            job_state(f, id), ANVIL__V1__JOB_STATE__JOB_STATE_RUNNING);
        Anvil__V1__CompleteRequest done = ANVIL__V1__COMPLETE_REQUEST__INIT;
        done.job_id                     = id;
        done.token                      = token;
        expect(call(f, "Complete", &done.base), OK, NULL);
    }
    assert_serving(f);
}

static void
test_a_backoff_of_int64_max_retries_later_not_at_once(void **state)
{
    struct fixture             *f   = *state;
    Anvil__V1__SubmitJobRequest req = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    char                        id[32];

    start(f);
    req.type               = (char *) "huge";
    req.initial_backoff_ms = INT64_MAX;
    req.max_backoff_ms     = INT64_MAX;
    if (submit_huge(f, &req, "backoff_ms", id)) {
        Anvil__V1__FailRequest fail = ANVIL__V1__FAIL_REQUEST__INIT;
        fail.job_id                 = id;
        fail.token                  = lease_huge(f, id);
        fail.error                  = (char *) "try again";
        Anvil__V1__Reply *rep       = call(f, "Fail", &fail.base);
        assert_int_equal(rep->code, OK);
        Anvil__V1__FailResponse *r = anvil__v1__fail_response__unpack(
            NULL, rep->body.len, rep->body.data);
        assert_non_null(r);
        if (r->retry_at_ms < av_now_ms())
            print_error("retry_at_ms %lld is in the past\n",
                (long long) r->retry_at_ms);
        assert_int_equal(r->state, ANVIL__V1__JOB_STATE__JOB_STATE_SCHEDULED);
        assert_true(r->retry_at_ms > av_now_ms());
        anvil__v1__fail_response__free_unpacked(r, NULL);
        anvil__v1__reply__free_unpacked(rep, NULL);
        assert_serving(f);
        assert_int_equal(
            job_state(f, id), ANVIL__V1__JOB_STATE__JOB_STATE_SCHEDULED);
    }
    assert_serving(f);
}

static void
test_a_workflow_timeout_of_int64_max_does_not_fail_it_at_once(void **state)
{
    struct fixture                  *f = *state;
    Anvil__V1__SubmitWorkflowRequest req
        = ANVIL__V1__SUBMIT_WORKFLOW_REQUEST__INIT;
    Anvil__V1__WorkflowSpec spec    = ANVIL__V1__WORKFLOW_SPEC__INIT;
    Anvil__V1__StepSpec     step    = ANVIL__V1__STEP_SPEC__INIT;
    Anvil__V1__StepSpec    *steps[] = { &step };

    start(f);
    step.name             = (char *) "a";
    step.type             = (char *) "huge";
    spec.name             = (char *) "forever";
    spec.steps            = steps;
    spec.n_steps          = 1;
    spec.timeout_ms       = INT64_MAX;
    req.spec              = &spec;
    Anvil__V1__Reply *rep = call(f, "SubmitWorkflow", &req.base);
    if (rep->code != OK) {
        expect(rep, INVALID_ARGUMENT, "timeout_ms", NULL);
        assert_serving(f);
        return;
    }
    Anvil__V1__SubmitWorkflowResponse *r
        = anvil__v1__submit_workflow_response__unpack(
            NULL, rep->body.len, rep->body.data);
    assert_non_null(r);
    Anvil__V1__GetWorkflowRequest get = ANVIL__V1__GET_WORKFLOW_REQUEST__INIT;
    get.id                            = r->id;
    assert_serving(f); // due timers have fired
    Anvil__V1__Reply *grep = call(f, "GetWorkflow", &get.base);
    anvil__v1__submit_workflow_response__free_unpacked(r, NULL);
    anvil__v1__reply__free_unpacked(rep, NULL);
    assert_int_equal(grep->code, OK);
    Anvil__V1__GetWorkflowResponse *g
        = anvil__v1__get_workflow_response__unpack(
            NULL, grep->body.len, grep->body.data);
    assert_non_null(g);
    if (g->workflow->state != ANVIL__V1__WORKFLOW_STATE__WORKFLOW_STATE_RUNNING)
        print_error(
            "workflow %s: \"%s\"\n", g->workflow->id, g->workflow->error);
    assert_int_equal(
        g->workflow->state, ANVIL__V1__WORKFLOW_STATE__WORKFLOW_STATE_RUNNING);
    anvil__v1__get_workflow_response__free_unpacked(g, NULL);
    anvil__v1__reply__free_unpacked(grep, NULL);
    assert_serving(f);
}

// ---- request limits ----

static void
test_a_payload_over_max_payload_is_invalid_argument(void **state)
{
    struct fixture *f = *state;
    char            limit[32];

    start(f);
    snprintf(limit, sizeof(limit), "%d", SMALL_PAYLOAD);
    expect(submit(f, "echo", NULL, SMALL_PAYLOAD + 1), INVALID_ARGUMENT,
        "payload", limit, "--max-payload", NULL);
    expect(submit(f, "echo", NULL, SMALL_PAYLOAD), OK, NULL);

    // A result over it too.
    Anvil__V1__CompleteRequest req = ANVIL__V1__COMPLETE_REQUEST__INIT;
    uint8_t                   *big = calloc(1, SMALL_PAYLOAD + 1);
    assert_non_null(big);
    req.job_id      = (char *) "j1";
    req.token       = 1;
    req.result.data = big;
    req.result.len  = SMALL_PAYLOAD + 1;
    expect(call(f, "Complete", &req.base), INVALID_ARGUMENT, "result", limit,
        NULL);
    free(big);
    assert_serving(f);
}

static void
test_a_list_limit_over_1000_is_invalid_argument(void **state)
{
    struct fixture                 *f    = *state;
    Anvil__V1__ListJobsRequest      jobs = ANVIL__V1__LIST_JOBS_REQUEST__INIT;
    Anvil__V1__ListWorkflowsRequest wfs
        = ANVIL__V1__LIST_WORKFLOWS_REQUEST__INIT;

    start(f);
    jobs.limit = 1001;
    expect(call(f, "ListJobs", &jobs.base), INVALID_ARGUMENT, "limit", "1000",
        NULL);
    jobs.limit = UINT32_MAX;
    expect(call(f, "ListJobs", &jobs.base), INVALID_ARGUMENT, "1000", NULL);
    wfs.limit = 1001;
    expect(call(f, "ListWorkflows", &wfs.base), INVALID_ARGUMENT, "limit",
        "1000", NULL);
    jobs.limit = 1000;
    expect(call(f, "ListJobs", &jobs.base), OK, NULL);
    wfs.limit = 1000;
    expect(call(f, "ListWorkflows", &wfs.base), OK, NULL);
    assert_serving(f);
}

// A workflow of n one-job steps named s0, s1, ...
static Anvil__V1__Reply *
submit_workflow(struct fixture *f, size_t n)
{
    Anvil__V1__SubmitWorkflowRequest req
        = ANVIL__V1__SUBMIT_WORKFLOW_REQUEST__INIT;
    Anvil__V1__WorkflowSpec spec  = ANVIL__V1__WORKFLOW_SPEC__INIT;
    Anvil__V1__StepSpec    *steps = calloc(n, sizeof(*steps));
    Anvil__V1__StepSpec   **ptrs  = calloc(n, sizeof(*ptrs));
    char(*names)[24]              = calloc(n, sizeof(*names));

    assert_non_null(steps);
    assert_non_null(ptrs);
    assert_non_null(names);
    for (size_t i = 0; i < n; i++) {
        anvil__v1__step_spec__init(&steps[i]);
        snprintf(names[i], sizeof(names[i]), "s%zu", i);
        steps[i].name = names[i];
        steps[i].type = (char *) "t";
        ptrs[i]       = &steps[i];
    }
    spec.name             = (char *) "big";
    spec.steps            = ptrs;
    spec.n_steps          = n;
    req.spec              = &spec;
    Anvil__V1__Reply *rep = call(f, "SubmitWorkflow", &req.base);
    free(steps);
    free(ptrs);
    free(names);
    return rep;
}

static void
test_a_workflow_over_10000_steps_is_invalid_argument(void **state)
{
    struct fixture *f = *state;

    f->cfg.max_payload = 1024 * 1024; // 10,001 steps are ~130 KB
    start(f);
    expect(submit_workflow(f, 10001), INVALID_ARGUMENT, "10001", "10000", NULL);
    expect(submit_workflow(f, 20000), INVALID_ARGUMENT, "10000", NULL);
    expect(submit_workflow(f, 10000), OK, NULL);
    assert_serving(f);
}

static void
test_a_name_over_128_bytes_is_invalid_argument(void **state)
{
    struct fixture *f = *state;
    char            long_name[130];

    start(f);
    memset(long_name, 'n', 129);
    long_name[129] = '\0';
    expect(
        submit(f, long_name, NULL, 1), INVALID_ARGUMENT, "type", "128", NULL);
    expect(submit(f, "echo", long_name, 1), INVALID_ARGUMENT, "queue", "128",
        NULL);

    Anvil__V1__PollRequest poll    = ANVIL__V1__POLL_REQUEST__INIT;
    char                  *types[] = { (char *) "echo" };
    poll.worker_id                 = long_name;
    poll.types                     = types;
    poll.n_types                   = 1;
    expect(call(f, "Poll", &poll.base), INVALID_ARGUMENT, "worker_id", "128",
        NULL);

    Anvil__V1__SubmitWorkflowRequest wf
        = ANVIL__V1__SUBMIT_WORKFLOW_REQUEST__INIT;
    Anvil__V1__WorkflowSpec spec    = ANVIL__V1__WORKFLOW_SPEC__INIT;
    Anvil__V1__StepSpec     step    = ANVIL__V1__STEP_SPEC__INIT;
    Anvil__V1__StepSpec    *steps[] = { &step };
    step.name                       = (char *) "a";
    step.type                       = (char *) "t";
    spec.name                       = long_name;
    spec.steps                      = steps;
    spec.n_steps                    = 1;
    wf.spec                         = &spec;
    expect(call(f, "SubmitWorkflow", &wf.base), INVALID_ARGUMENT, "name", "128",
        NULL);
    spec.name = (char *) "ok";
    step.name = long_name;
    expect(call(f, "SubmitWorkflow", &wf.base), INVALID_ARGUMENT, "128", NULL);

    Anvil__V1__CreateTokenRequest tok = ANVIL__V1__CREATE_TOKEN_REQUEST__INIT;
    tok.role                          = ANVIL__V1__ROLE__ROLE_READER;
    tok.name                          = long_name;
    expect(call(f, "CreateToken", &tok.base), INVALID_ARGUMENT, "name", "128",
        NULL);

    long_name[128] = '\0'; // 128 bytes are allowed
    expect(submit(f, long_name, long_name, 1), OK, NULL);
    assert_serving(f);
}

static void
test_a_wait_over_300000_ms_is_invalid_argument(void **state)
{
    struct fixture                *f    = *state;
    Anvil__V1__WaitJobRequest      wait = ANVIL__V1__WAIT_JOB_REQUEST__INIT;
    Anvil__V1__WaitWorkflowRequest wfw = ANVIL__V1__WAIT_WORKFLOW_REQUEST__INIT;
    char                           id[32];

    start(f);
    submit_ok(f, "echo", id);
    wait.id         = id;
    wait.timeout_ms = 300001;
    expect(call(f, "WaitJob", &wait.base), INVALID_ARGUMENT, "timeout_ms",
        "300000", NULL);
    wait.timeout_ms = UINT32_MAX;
    expect(call(f, "WaitJob", &wait.base), INVALID_ARGUMENT, "300000", NULL);
    wfw.id         = (char *) "w1";
    wfw.timeout_ms = 300001;
    expect(call(f, "WaitWorkflow", &wfw.base), INVALID_ARGUMENT, "timeout_ms",
        "300000", NULL);
    // At the limit: accepted (answered at once, the job being final).
    cancel_ok(f, id);
    wait.timeout_ms = 300000;
    expect(call(f, "WaitJob", &wait.base), OK, NULL);
    assert_serving(f);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_a_frame_header_claiming_8_gib_drops_only_that_connection),
        T(test_200_stalled_half_messages_leave_the_server_serving),
        T(test_a_body_nested_10000_deep_is_answered_without_harm),
        T(test_garbage_instead_of_the_sp_greeting_is_disconnected),
        T(test_garbage_frames_after_the_greeting_never_harm_the_server),
        T(test_a_frame_without_a_request_id_gets_no_reply),
        T(test_long_polls_over_max_waits_per_conn_are_resource_exhausted),
        T(test_long_polls_over_max_waits_are_resource_exhausted),
        T(test_a_payload_over_max_payload_is_invalid_argument),
        T(test_a_list_limit_over_1000_is_invalid_argument),
        T(test_a_workflow_over_10000_steps_is_invalid_argument),
        T(test_a_name_over_128_bytes_is_invalid_argument),
        T(test_a_wait_over_300000_ms_is_invalid_argument),
        T(test_requests_over_max_queue_are_resource_exhausted),
        T(test_a_delay_of_int64_max_never_runs_the_job_now),
        T(test_a_timeout_of_int64_max_does_not_end_the_attempt_at_once),
        T(test_a_backoff_of_int64_max_retries_later_not_at_once),
        T(test_a_workflow_timeout_of_int64_max_does_not_fail_it_at_once),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
