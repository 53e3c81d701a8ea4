// test_http_hostile.c - anvild's HTTP endpoint under hostile clients, over
// raw TCP sockets: headers of 100 KB, bodies over the limit, a client
// trickling a byte every 100 ms past the read timeout, malformed JSON, JSON
// nested 100,000 deep, invalid UTF-8, wrong content types, HTTP/1.0,
// pipelined requests, more connections than max_conns, and 2,000 hostile
// requests in a row. After each, the server still answers GET /healthz and
// a submit, and the process's resident size (the server runs in this
// process) grew by less than RSS_BOUND_KB.
//
// Requests are written by hand; answers are read by a small HTTP/1.1
// response reader (status line, Content-Length body) that keeps what it
// read past one answer for the next, so pipelined answers can be read in
// order.
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
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../../server/server.h"
#include "../harness.h"
#include "util/clock.h"

#define IO_TIMEOUT_MS 5000
#define READ_TIMEOUT_MS 1000     // the server's http_read_timeout_ms
#define MAX_PAYLOAD (128 * 1024) // bodies up to 2 x this + 64 KiB
#define RSS_BOUND_KB (32 * 1024) // measured: ~7 MiB, 13 MiB under ASan
#define HOSTILE_ROUNDS 2000
#define DEEP 100000
#define MAX_CONNS 8

struct fixture {
    struct harness       h;
    struct server_config cfg;
    int                  port;
};

// One connection and what was read on it past the last answer.
struct conn {
    int    fd;
    char  *buf;
    size_t len, cap;
};

// One answer: the status (-1 when the connection closed or failed first)
// and its body.
struct answer {
    int    status;
    char   version[16];
    char  *body;
    size_t len;
    char   location[64];
    bool   close; // "Connection: close"
};

// ---- process and server ----

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer keeps freed memory in a quarantine (256 MB by default)
// to catch use after free, and the RSS bound would measure that instead of
// the server. A small quarantine keeps the bound meaningful under
// make check-asan (LeakSanitizer checks for leaks at exit); ASAN_OPTIONS
// still overrides it.
__attribute__((visibility("default"))) const char *__asan_default_options(void);

__attribute__((visibility("default"))) const char *
__asan_default_options(void)
{
    return "quarantine_size_mb=16";
}
#endif

// This process's resident set size in KiB, from /proc/self/statm.
static long
rss_kb(void)
{
    FILE *fp    = fopen("/proc/self/statm", "r");
    long  pages = -1, size;
    if (fp != NULL && fscanf(fp, "%ld %ld", &size, &pages) != 2)
        pages = -1;
    if (fp != NULL)
        fclose(fp);
    return pages < 0 ? -1 : pages * (sysconf(_SC_PAGESIZE) / 1024);
}

// The sockets this process holds (the server's and the test's).
static int
sockets_open(void)
{
    DIR *d = opendir("/proc/self/fd");
    int  n = 0;
    for (struct dirent *e = d ? readdir(d) : NULL; e != NULL; e = readdir(d)) {
        char path[300], target[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof(target) - 1);
        if (len > 0 && strncmp(target, "socket:", 7) == 0)
            n++;
    }
    if (d != NULL)
        closedir(d);
    return n;
}

static int sockets_before;

static bool
sockets_back(void *arg)
{
    (void) arg;
    return sockets_open() <= sockets_before + 2;
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    *state = f;
    server_config_init(&f->cfg);
    f->cfg.synchronous          = 1;
    f->cfg.max_payload          = MAX_PAYLOAD;
    f->cfg.http_read_timeout_ms = READ_TIMEOUT_MS;
    f->cfg.http_urls[0]         = "http://127.0.0.1:0";
    f->cfg.n_http               = 1;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    if (f == NULL)
        return 0;
    int rc = harness_stop(&f->h);
    free(f);
    return rc;
}

static void
start(struct fixture *f)
{
    assert_int_equal(harness_start_with(&f->h, &f->cfg), 0);
    f->port = server_http_port(f->h.server, 0);
    assert_true(f->port > 0);
}

// ---- connections ----

static void
conn_open(struct fixture *f, struct conn *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    struct timeval tv = { IO_TIMEOUT_MS / 1000, 0 };
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa
        = { .sin_family = AF_INET, .sin_port = htons((uint16_t) f->port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
}

static void
conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

// Writes all of s; false when the server closed the connection first.
static bool
conn_send(struct conn *c, const char *s, size_t len)
{
    return harness_write_all(c->fd, s, len) == 0;
}

static bool
conn_send_str(struct conn *c, const char *s)
{
    return conn_send(c, s, strlen(s));
}

// Reads more into c->buf: bytes read, 0 at the end, -1 on error/timeout.
static ssize_t
conn_fill(struct conn *c)
{
    if (c->cap - c->len < 4096) {
        size_t cap = c->cap ? c->cap * 2 : 16384;
        char  *b   = realloc(c->buf, cap + 1);
        assert_non_null(b);
        c->buf = b;
        c->cap = cap;
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n > 0) {
        c->len += (size_t) n;
        c->buf[c->len] = '\0';
    }
    return n;
}

// The value of header name within the header block hdr (NUL-terminated),
// into out; false when absent.
static bool
header_value(const char *hdr, const char *name, char *out, size_t len)
{
    size_t n = strlen(name);
    for (const char *p = strstr(hdr, "\r\n"); p != NULL;
         p             = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            v += strspn(v, " ");
            snprintf(out, len, "%.*s", (int) strcspn(v, "\r\n"), v);
            return true;
        }
    }
    return false;
}

static void
answer_free(struct answer *a)
{
    free(a->body);
    memset(a, 0, sizeof(*a));
}

// Reads one answer off c; a->status -1 when the connection ended (or
// failed, or timed out) before a whole answer came.
static void
read_answer(struct conn *c, struct answer *a)
{
    memset(a, 0, sizeof(*a));
    a->status = -1;
    char *end;
    while (c->buf == NULL || (end = strstr(c->buf, "\r\n\r\n")) == NULL) {
        if (conn_fill(c) <= 0)
            return;
    }
    size_t hlen = (size_t) (end - c->buf) + 4;
    end[2]      = '\0'; // the header block, for header_value
    if (sscanf(c->buf, "%15s %d", a->version, &a->status) != 2)
        a->status = -1;
    char v[64];
    long clen = header_value(c->buf, "Content-Length", v, sizeof(v))
        ? strtol(v, NULL, 10)
        : 0;
    a->close  = header_value(c->buf, "Connection", v, sizeof(v))
        && strcasecmp(v, "close") == 0;
    header_value(c->buf, "Location", a->location, sizeof(a->location));
    while (c->len < hlen + (size_t) clen) {
        if (conn_fill(c) <= 0) {
            a->status = -1;
            return;
        }
    }
    a->body = malloc((size_t) clen + 1);
    assert_non_null(a->body);
    memcpy(a->body, c->buf + hlen, (size_t) clen);
    a->body[clen] = '\0';
    a->len        = (size_t) clen;
    memmove(c->buf, c->buf + hlen + clen, c->len - hlen - (size_t) clen);
    c->len -= hlen + (size_t) clen;
    c->buf[c->len] = '\0';
}

// True when the server ends the connection (EOF or reset) within ms.
static bool
closed_within(struct conn *c, int ms)
{
    int64_t deadline = av_mono_ms() + ms;
    for (;;) {
        int64_t       left = deadline - av_mono_ms();
        struct pollfd p    = { .fd = c->fd, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, (int) left) <= 0)
            return false;
        char    b[4096];
        ssize_t n = recv(c->fd, b, sizeof(b), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
    }
}

// Sends one whole request on a new connection; its answer's status (-1:
// the connection ended without one). The body, if wanted, into *body.
static int
one_request(struct fixture *f, const char *req, size_t len, char **body)
{
    struct conn   c;
    struct answer a;
    conn_open(f, &c);
    conn_send(&c, req, len); // a refusal may close it before all is sent
    read_answer(&c, &a);
    int status = a.status;
    if (body != NULL) {
        *body  = a.body;
        a.body = NULL;
    }
    answer_free(&a);
    conn_close(&c);
    return status;
}

// A request with a JSON body of len bytes (ctype NULL: application/json).
static char *
build_post(const char *path, const char *ctype, const char *body, size_t len,
    size_t *out_len)
{
    char  head[256];
    int   h   = snprintf(head, sizeof(head),
            "POST %s HTTP/1.1\r\nHost: anvil\r\nContent-Type: %s\r\n"
                "Content-Length: %zu\r\n\r\n",
            path, ctype ? ctype : "application/json", len);
    char *req = malloc((size_t) h + len + 1);
    assert_non_null(req);
    memcpy(req, head, (size_t) h);
    memcpy(req + h, body, len);
    req[h + len] = '\0';
    *out_len     = (size_t) h + len;
    return req;
}

static int
post_status(struct fixture *f, const char *path, const char *ctype,
    const char *body, size_t len, char **answer_body)
{
    size_t n;
    char  *req    = build_post(path, ctype, body, len, &n);
    int    status = one_request(f, req, n, answer_body);
    free(req);
    return status;
}

static bool
healthz_answers(void *arg)
{
    struct fixture *f    = arg;
    const char     *hz   = "GET /healthz HTTP/1.1\r\nHost: anvil\r\n\r\n";
    char           *body = NULL;
    bool ok = one_request(f, hz, strlen(hz), &body) == 200 && body != NULL
        && strcmp(body, "ok\n") == 0;
    free(body);
    return ok;
}

// The server still answers GET /healthz (once the connections a test
// closed are gone from its count) and a submit.
static void
assert_serving(struct fixture *f)
{
    assert_true(harness_wait_for(healthz_answers, f, IO_TIMEOUT_MS));
    char       *body = NULL;
    const char *job  = "{\"type\":\"echo\",\"payload\":{\"still\":\"here\"}}";
    int status = post_status(f, "/v1/jobs", NULL, job, strlen(job), &body);
    if (status != 201)
        print_error("submit: %d %s\n", status, body ? body : "");
    assert_int_equal(status, 201);
    assert_non_null(strstr(body, "\"id\":\"j"));
    free(body);
}

// A 4xx answer, or the connection cut: anything but being served.
static void
assert_refused(int status)
{
    if (status != -1 && (status < 400 || status > 499))
        print_error("expected a 4xx or a closed connection, got %d\n", status);
    assert_true(status == -1 || (status >= 400 && status <= 499));
}

// An error answer: status and a JSON {"code": ...}.
static void
assert_json_error(int status, char *body, int want, const char *code)
{
    if (status != want)
        print_error(
            "expected %d, got %d: %s\n", want, status, body ? body : "");
    assert_int_equal(status, want);
    char pat[64];
    snprintf(pat, sizeof(pat), "\"code\":\"%s\"", code);
    assert_non_null(body);
    assert_non_null(strstr(body, pat));
    free(body);
}

// ---- tests ----

static void
test_oversized_headers_are_refused(void **state)
{
    struct fixture *f = *state;
    start(f);
    size_t big = 100 * 1024;
    char  *req = malloc(big + 256);
    assert_non_null(req);
    int n = snprintf(req, 256, "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(req + n, 'a', big);
    strcpy(req + n + big, "\r\n\r\n");
    assert_refused(one_request(f, req, strlen(req), NULL));
    // As many small headers.
    size_t len = (size_t) snprintf(req, 256, "GET /healthz HTTP/1.1\r\n");
    for (int i = 0; len + 64 < big; i++)
        len += (size_t) sprintf(req + len, "X-H%d: %040d\r\n", i, i);
    strcpy(req + len, "\r\n");
    assert_refused(one_request(f, req, len + 2, NULL));
    // A request line of 100 KB.
    n = sprintf(req, "GET /");
    memset(req + n, 'p', big);
    strcpy(req + n + big, " HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_refused(one_request(f, req, strlen(req), NULL));
    free(req);
    assert_serving(f);
}

static void
test_oversized_bodies_are_refused(void **state)
{
    struct fixture *f = *state;
    start(f);
    // Announced: refused as soon as the headers are in.
    const char *head = "POST /v1/jobs HTTP/1.1\r\nHost: a\r\n"
                       "Content-Type: application/json\r\n"
                       "Content-Length: 100000000\r\n\r\n{\"type\":";
    char       *body = NULL;
    int         st   = one_request(f, head, strlen(head), &body);
    assert_json_error(st, body, 413, "RESOURCE_EXHAUSTED");

    // Chunked, so the size shows only as it arrives: cut past the limit.
    struct conn c;
    conn_open(f, &c);
    bool sent = conn_send_str(&c,
        "POST /v1/jobs HTTP/1.1\r\nHost: a\r\nContent-Type: "
        "application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[8192 + 16];
    int  k = sprintf(chunk, "2000\r\n");
    memset(chunk + k, ' ', 8192);
    strcpy(chunk + k + 8192, "\r\n");
    size_t total = 0;
    while (sent && total < 4 * (2 * MAX_PAYLOAD + 65536)) {
        sent = conn_send(&c, chunk, strlen(chunk));
        total += 8192;
    }
    if (sent) {
        struct answer a;
        read_answer(&c, &a);
        assert_refused(a.status);
        answer_free(&a);
    }
    conn_close(&c);
    assert_serving(f);
}

// A client sending one byte per 100 ms is cut after the read timeout
// (1 s), well before it would finish, while other clients are served.
static void
test_a_slow_client_is_cut_while_others_are_served(void **state)
{
    struct fixture *f = *state;
    start(f);
    const char *req = "POST /v1/jobs HTTP/1.1\r\nHost: anvil\r\n"
                      "Content-Type: application/json\r\n"
                      "Content-Length: 15\r\n\r\n{\"type\":\"echo\"}";
    size_t      len = strlen(req); // ~10 s at one byte per 100 ms
    struct conn slow;
    conn_open(f, &slow);
    int64_t t0     = av_mono_ms();
    bool    closed = false;
    int     served = 0;
    size_t  i      = 0;
    while (!closed && i < len) {
        if (!conn_send(&slow, req + i++, 1)) {
            closed = true;
            break;
        }
        closed = closed_within(&slow, 100); // the trickle's pace
        if (i % 3 == 0) {
            const char *hz = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
            assert_int_equal(one_request(f, hz, strlen(hz), NULL), 200);
            served++;
        }
    }
    int64_t took = av_mono_ms() - t0;
    conn_close(&slow);
    if (!closed || took > 3 * READ_TIMEOUT_MS)
        print_error("slow client: closed %d after %lld ms, %zu of %zu bytes\n",
            closed, (long long) took, i, len);
    assert_true(closed);
    assert_true(took >= READ_TIMEOUT_MS - 100);
    assert_true(took <= 3 * READ_TIMEOUT_MS);
    assert_true(i < len);
    assert_true(served >= 2);
    assert_serving(f);
}

// "[[[...]]]" nested depth deep, as the value of a JSON body's field.
static char *
nested(const char *prefix, size_t depth, const char *suffix, size_t *len)
{
    size_t p = strlen(prefix), s = strlen(suffix);
    char  *b = malloc(p + 2 * depth + s + 1);
    assert_non_null(b);
    memcpy(b, prefix, p);
    memset(b + p, '[', depth);
    memset(b + p + depth, ']', depth);
    memcpy(b + p + 2 * depth, suffix, s + 1);
    *len = p + 2 * depth + s;
    return b;
}

static void
test_malformed_and_deeply_nested_json_is_refused(void **state)
{
    struct fixture *f = *state;
    start(f);
#define B(s)             \
    {                    \
        s, sizeof(s) - 1 \
    }
    const struct {
        const char *s;
        size_t      len;
    } bad[] = { B("{\"type\":"), B("{\"type\":\"echo\",}"), B("nul"),
        B("{\"type\":\"echo\"}}"), B("{\"type\":\"echo\",\"type\":\"echo\"}"),
        B("\xef\xbb\xbf{}"), B("{\"type\":\"echo\"\x00}") };
#undef B
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *body = NULL;
        int st = post_status(f, "/v1/jobs", NULL, bad[i].s, bad[i].len, &body);
        assert_json_error(st, body, 400, "INVALID_ARGUMENT");
    }
    const struct {
        const char *path, *prefix, *suffix;
    } deep[] = {
        { "/v1/jobs", "{\"type\":\"echo\",\"payload\":", "}" },
        { "/job", "{\"Type\":\"echo\",\"Data\":", "}" },
        { "/v1/workflows",
            "{\"name\":\"n\",\"steps\":[{\"name\":\"a\",\"type\":\"t\","
            "\"data\":",
            "}]}" },
        { "/v1/jobs:batch", "{\"jobs\":", "}" },
    };
    for (size_t i = 0; i < sizeof(deep) / sizeof(deep[0]); i++) {
        size_t  len;
        char   *b    = nested(deep[i].prefix, DEEP, deep[i].suffix, &len);
        char   *body = NULL;
        int64_t t0   = av_mono_ms();
        int     st   = post_status(f, deep[i].path, NULL, b, len, &body);
        free(b);
        assert_json_error(st, body, 400, "INVALID_ARGUMENT");
        assert_true(av_mono_ms() - t0 < 5000);
    }
    assert_serving(f);
}

static void
test_invalid_utf8_is_refused(void **state)
{
    struct fixture *f = *state;
    start(f);
    const struct {
        const char *path, *body;
    } cases[] = {
        { "/v1/jobs", "{\"type\":\"echo\",\"queue\":\"\xff\xfe\"}" },
        { "/v1/jobs", "{\"type\":\"echo\",\"payload\":\"\xc3\x28\"}" },
        { "/v1/jobs", "{\"type\":\"echo\",\"payload\":{\"\xed\xa0\x80\":1}}" },
        { "/job", "{\"Type\":\"echo\",\"Data\":\"\xe2\x82\"}" },
        { "/v1/workflows", "{\"name\":\"\xc0\xaf\",\"steps\":[]}" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *body = NULL;
        int   st   = post_status(f, cases[i].path, NULL, cases[i].body,
                strlen(cases[i].body), &body);
        assert_json_error(st, body, 400, "INVALID_ARGUMENT");
    }
    // In the query and the path: refused or not found, never a crash.
    const char *q = "GET /v1/jobs?type=%ff%fe HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_refused(one_request(f, q, strlen(q), NULL));
    q = "GET /v1/jobs/\xff\xfe HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_refused(one_request(f, q, strlen(q), NULL));
    assert_serving(f);
}

static void
test_wrong_content_types_are_refused(void **state)
{
    struct fixture *f     = *state;
    const char     *job   = "{\"type\":\"echo\"}";
    const char     *bad[] = { "text/plain", "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x", "application/xml",
            "application/jsonx", "application/json-seq", "" };
    start(f);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *body = NULL;
        int   st = post_status(f, "/v1/jobs", bad[i], job, strlen(job), &body);
        assert_json_error(st, body, 415, "INVALID_ARGUMENT");
        body = NULL;
        st   = post_status(f, "/v1/workflows", bad[i], job, strlen(job), &body);
        assert_json_error(st, body, 415, "INVALID_ARGUMENT");
    }
    char *body = NULL;
    int st = post_status(f, "/v1/jobs", "application/json; charset=utf-8", job,
        strlen(job), &body);
    free(body);
    assert_int_equal(st, 201);
    assert_serving(f);
}

static void
test_an_http10_request_is_answered_and_closed(void **state)
{
    struct fixture *f = *state;
    start(f);
    struct conn c;
    conn_open(f, &c);
    assert_true(conn_send_str(&c, "GET /healthz HTTP/1.0\r\n\r\n"));
    struct answer a;
    read_answer(&c, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "ok\n");
    answer_free(&a);
    assert_true(closed_within(&c, IO_TIMEOUT_MS));
    conn_close(&c);
    // A submit over HTTP/1.0, too.
    conn_open(f, &c);
    assert_true(conn_send_str(&c,
        "POST /v1/jobs HTTP/1.0\r\nContent-Type: application/json\r\n"
        "Content-Length: 15\r\n\r\n{\"type\":\"echo\"}"));
    read_answer(&c, &a);
    assert_int_equal(a.status, 201);
    answer_free(&a);
    assert_true(closed_within(&c, IO_TIMEOUT_MS));
    conn_close(&c);
    assert_serving(f);
}

static void
test_pipelined_requests_are_answered_in_order(void **state)
{
    struct fixture *f = *state;
    start(f);
    const char *job = "POST /v1/jobs HTTP/1.1\r\nHost: a\r\n"
                      "Content-Type: application/json\r\n"
                      "Content-Length: 15\r\n\r\n{\"type\":\"echo\"}";
    char        all[1024];
    snprintf(all, sizeof(all),
        "%s%sGET /v1/jobs/j424242 HTTP/1.1\r\nHost: a\r\n\r\n"
        "GET /v1/jobs/j1 HTTP/1.1\r\nHost: a\r\n\r\n"
        "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
        job, job);
    struct conn c;
    conn_open(f, &c);
    assert_true(conn_send_str(&c, all)); // one write
    struct answer a;
    read_answer(&c, &a);
    assert_int_equal(a.status, 201);
    assert_string_equal(a.location, "/v1/jobs/j1");
    answer_free(&a);
    read_answer(&c, &a);
    assert_int_equal(a.status, 201);
    assert_string_equal(a.location, "/v1/jobs/j2");
    answer_free(&a);
    read_answer(&c, &a);
    assert_int_equal(a.status, 404);
    assert_non_null(strstr(a.body, "j424242"));
    answer_free(&a);
    read_answer(&c, &a);
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(a.body, "\"id\":\"j1\""));
    answer_free(&a);
    read_answer(&c, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "ok\n");
    answer_free(&a);
    conn_close(&c);
    assert_serving(f);
}

// True when c has something to read (an answer, or its end) within ms.
static bool
readable_within(struct conn *c, int ms)
{
    struct pollfd p = { .fd = c->fd, .events = POLLIN };
    return poll(&p, 1, ms) > 0;
}

// Connections past max_conns are not served: libmicrohttpd stops
// accepting at the limit, so they wait in the listen backlog. Those in are
// still served, and a waiting one is served once a slot frees.
static void
test_connections_past_max_conns_wait_until_a_slot_frees(void **state)
{
    struct fixture *f = *state;
    f->cfg.max_conns  = MAX_CONNS;
    start(f);
    const char   *hz = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
    struct conn   in[MAX_CONNS], extra[4];
    struct answer a;
    for (int i = 0; i < MAX_CONNS; i++) {
        conn_open(f, &in[i]);
        assert_true(conn_send_str(&in[i], hz));
        read_answer(&in[i], &a);
        assert_int_equal(a.status, 200);
        answer_free(&a);
    }
    for (int i = 0; i < 4; i++) {
        conn_open(f, &extra[i]); // the kernel completes the handshake
        assert_true(conn_send_str(&extra[i], hz));
    }
    for (int i = 0; i < 4; i++)
        assert_false(readable_within(&extra[i], i == 0 ? 500 : 0));
    for (int i = 0; i < MAX_CONNS; i++) {
        assert_true(conn_send_str(&in[i], hz));
        read_answer(&in[i], &a);
        assert_int_equal(a.status, 200);
        answer_free(&a);
    }
    // Four leave: the four waiting are served.
    for (int i = 0; i < 4; i++)
        conn_close(&in[i]);
    for (int i = 0; i < 4; i++) {
        read_answer(&extra[i], &a);
        assert_int_equal(a.status, 200);
        answer_free(&a);
        conn_close(&extra[i]);
    }
    for (int i = 4; i < MAX_CONNS; i++)
        conn_close(&in[i]);
    assert_serving(f);
}

// One hostile request of kind k % 10 on a new connection.
static void
hostile_request(struct fixture *f, int k, const char *big, size_t big_len)
{
    static const char *const simple[] = {
        "POST /v1/jobs HTTP/1.1\r\nHost: a\r\nContent-Type: application/json"
        "\r\nContent-Length: 8\r\n\r\n{\"type\":",
        "POST /v1/jobs HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n"
        "Content-Length: 2\r\n\r\n{}",
        "POST /v1/jobs HTTP/1.1\r\nHost: a\r\nContent-Type: application/json"
        "\r\nContent-Length: 999999999\r\n\r\n{",
        "DELETE /v1/jobs HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /v1/no/such/route/at/all HTTP/1.1\r\nHost: a\r\n\r\n",
        "GARBAGE\r\n\r\n",
        "POST /v1/jobs HTTP/1.1\r\nHost: a\r\nContent-Type: application/json"
        "\r\nContent-Length: 40\r\n\r\n{\"type\":\"ec", // then hangs up
        "POST /job HTTP/1.1\r\nHost: a\r\nContent-Length: 27\r\n\r\n"
        "{\"Type\":\"echo\",\"Data\":\"\xff\xfe\"}",
    };
    int kind = k % 10;
    if (kind < 8) {
        struct conn c;
        conn_open(f, &c);
        conn_send_str(&c, simple[kind]);
        if (kind != 6) {
            struct answer a;
            read_answer(&c, &a);
            assert_true(a.status == -1 || a.status >= 400);
            answer_free(&a);
        }
        conn_close(&c);
    } else if (kind == 8) {
        assert_refused(one_request(f, big, big_len, NULL)); // big headers
    } else {
        size_t len;
        char  *b    = nested("{\"type\":\"e\",\"payload\":", 5000, "}", &len);
        char  *body = NULL;
        int    st   = post_status(f, "/v1/jobs", NULL, b, len, &body);
        free(b);
        assert_json_error(st, body, 400, "INVALID_ARGUMENT");
    }
}

// 2,000 hostile requests: the resident size stays bounded.
static void
test_rss_stays_bounded_across_hostile_requests(void **state)
{
    struct fixture *f = *state;
    start(f);
    size_t big_len = 100 * 1024;
    char  *big     = malloc(big_len + 128);
    assert_non_null(big);
    int n = sprintf(big, "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(big + n, 'b', big_len);
    strcpy(big + n + big_len, "\r\n\r\n");
    big_len        = strlen(big);
    sockets_before = sockets_open();
    for (int k = 0; k < 200; k++) // warm up: pools and caches settle
        hostile_request(f, k, big, big_len);
    long before = rss_kb();
    assert_true(before > 0);
    for (int k = 0; k < HOSTILE_ROUNDS; k++)
        hostile_request(f, k, big, big_len);
    long after = rss_kb();
    free(big);
    print_message("rss: %ld KiB before, %ld KiB after %d hostile requests "
                  "(+%ld KiB)\n",
        before, after, HOSTILE_ROUNDS, after - before);
    assert_true(after - before < RSS_BOUND_KB);
    // Every connection is gone soon after: those of requests abandoned
    // midway are cut by the sweeper, the others close themselves.
    print_message(
        "sockets: %d before, %d after\n", sockets_before, sockets_open());
    assert_true(
        harness_wait_for(sockets_back, NULL, 3 * READ_TIMEOUT_MS + 1000));
    assert_serving(f);
}

// Clients that hang up halfway through a request (mid-body, mid-headers)
// free their connections at once, not at the read timeout (30 s here).
static void
test_clients_gone_mid_request_free_their_connections(void **state)
{
    struct fixture *f           = *state;
    f->cfg.http_read_timeout_ms = 30000;
    start(f);
    sockets_before = sockets_open();
    const char *half[]
        = { "POST /v1/jobs HTTP/1.1\r\nHost: a\r\nContent-Type: "
            "application/json\r\nContent-Length: 40\r\n\r\n{\"type\":\"x",
              "GET /v1/jobs HTTP/1.1\r\nHost: a\r\n", "GET /v1/jo" };
    for (int k = 0; k < 60; k++) {
        struct conn c;
        conn_open(f, &c);
        assert_true(conn_send_str(&c, half[k % 3]));
        conn_close(&c);
    }
    int64_t t0 = av_mono_ms();
    assert_true(harness_wait_for(sockets_back, NULL, 2000));
    print_message(
        "60 half requests gone in %lld ms\n", (long long) (av_mono_ms() - t0));
    assert_serving(f);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_oversized_headers_are_refused),
        T(test_oversized_bodies_are_refused),
        T(test_a_slow_client_is_cut_while_others_are_served),
        T(test_malformed_and_deeply_nested_json_is_refused),
        T(test_invalid_utf8_is_refused),
        T(test_wrong_content_types_are_refused),
        T(test_an_http10_request_is_answered_and_closed),
        T(test_pipelined_requests_are_answered_in_order),
        T(test_connections_past_max_conns_wait_until_a_slot_frees),
        T(test_rss_stays_bounded_across_hostile_requests),
        T(test_clients_gone_mid_request_free_their_connections),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
