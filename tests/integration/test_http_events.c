// test_http_events.c - the event routes of the HTTP endpoint against a real
// anvild (a child process, anvild --http on a free port) and a real
// anvil-worker: GET /v1/events as server-sent events (a job's events in
// order with id = seq, Last-Event-ID resuming with no gap and no
// duplicate, the job_id and kind filters, keep-alives when idle, clients
// that hang up, ?access_token=, bad query values), GET /v1/events:watch,
// the retry and lookup routes, and the memory of 1,000 idle streams
// (VmRSS of anvild before and after, printed per client).
//
// The streams are read over raw sockets as HTTP/1.0, so the body is the
// event stream itself (no chunked framing); the JSON calls too.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../harness.h"
#include "util/clock.h"

#define IO_MS 10000
#define KEEPALIVE "300ms"
#define IDLE_CLIENTS 1000
#define MAX_EVENTS 256

struct fixture {
    struct harness h;
    int            port;
    pid_t          pid;
    char           token[160]; // "" = none
};

// ---- plain HTTP over a socket ----

static int
dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a
        = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *) &a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

// Reads what arrives within ms into *buf (grown; NUL-terminated) until
// the peer closes or stop(buf) holds. Returns the bytes read in all.
static size_t
read_until(int fd, char **buf, size_t *len, int ms,
    bool (*stop)(const char *buf, void *arg), void *arg)
{
    int64_t end = av_mono_ms() + ms;
    for (;;) {
        if (stop != NULL && *buf != NULL && stop(*buf, arg))
            break;
        int64_t left = end - av_mono_ms();
        if (left <= 0)
            break;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, (int) left) <= 0)
            break;
        char    chunk[4096];
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n <= 0)
            break;
        char *b = realloc(*buf, *len + (size_t) n + 1);
        assert_non_null(b);
        memcpy(b + *len, chunk, (size_t) n);
        *len += (size_t) n;
        b[*len] = '\0';
        *buf    = b;
    }
    return *len;
}

struct reply {
    int     status;
    char   *raw;
    json_t *j;
};

// One request with Connection: close; the reply's status and JSON body.
static struct reply
call(struct fixture *f, const char *verb, const char *path, const char *body)
{
    struct reply r  = { 0 };
    int          fd = dial(f->port);
    assert_true(fd >= 0);
    char head[1024];
    int  n = snprintf(head, sizeof(head),
         "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
          "%s%s%s"
          "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
         verb, path, f->token[0] ? "Authorization: Bearer " : "", f->token,
        f->token[0] ? "\r\n" : "", body != NULL ? strlen(body) : 0);
    assert_int_equal(harness_write_all(fd, head, (size_t) n), 0);
    if (body != NULL)
        assert_int_equal(harness_write_all(fd, body, strlen(body)), 0);
    size_t len = 0;
    read_until(fd, &r.raw, &len, IO_MS, NULL, NULL);
    close(fd);
    assert_non_null(r.raw);
    assert_int_equal(sscanf(r.raw, "HTTP/1.1 %d", &r.status), 1);
    const char *b = strstr(r.raw, "\r\n\r\n");
    if (b != NULL)
        r.j = json_loads(b + 4, JSON_DECODE_ANY, NULL);
    return r;
}

static void
reply_free(struct reply *r)
{
    free(r->raw);
    json_decref(r->j);
}

static const char *
jstr(json_t *j, const char *path1, const char *path2)
{
    json_t *v = json_object_get(j, path1);
    if (path2 != NULL)
        v = json_object_get(v, path2);
    return json_string_value(v);
}

// ---- the event stream ----

struct event {
    uint64_t id;
    char     kind[40];
    json_t  *data;
};

struct sse {
    int          fd;
    int          status;
    char        *buf;
    size_t       len;
    size_t       parsed; // bytes of buf already turned into events
    struct event ev[MAX_EVENTS];
    size_t       n;
    int          keepalives;
    int          missed;
};

static void
sse_open_with(
    struct fixture *f, struct sse *s, const char *query, const char *extra)
{
    memset(s, 0, sizeof(*s));
    s->fd = dial(f->port);
    assert_true(s->fd >= 0);
    char req[1024];
    int  n = snprintf(req, sizeof(req),
         "GET /v1/events%s HTTP/1.0\r\nAccept: "
          "text/event-stream\r\n%s%s%s%s\r\n",
         query, f->token[0] ? "Authorization: Bearer " : "", f->token,
        f->token[0] ? "\r\n" : "", extra != NULL ? extra : "");
    assert_int_equal(harness_write_all(s->fd, req, (size_t) n), 0);
}

static bool
has_body_start(const char *buf, void *arg)
{
    (void) arg;
    const char *b = strstr(buf, "\r\n\r\n");
    return b != NULL
        && (strncmp(buf + 8, " 200", 4) != 0
            || strstr(b, "retry: 2000\n\n") != NULL);
}

// Opens a stream and reads its head: the status (200 with "retry").
static int
sse_open(struct fixture *f, struct sse *s, const char *query, const char *extra)
{
    sse_open_with(f, s, query, extra);
    read_until(s->fd, &s->buf, &s->len, IO_MS, has_body_start, NULL);
    if (s->buf == NULL || sscanf(s->buf, "HTTP/1.%*d %d", &s->status) != 1)
        return -1;
    const char *b = strstr(s->buf, "\r\n\r\n");
    s->parsed     = b != NULL ? (size_t) (b + 4 - s->buf) : s->len;
    return s->status;
}

// Turns the complete blocks of the buffer into events.
static void
sse_parse(struct sse *s)
{
    for (;;) {
        char *start = s->buf + s->parsed;
        char *end   = strstr(start, "\n\n");
        if (end == NULL)
            return;
        *end                  = '\0';
        struct event e        = { 0 };
        bool         is_event = false;
        for (char *line = start; line != NULL && *line != '\0';) {
            char *nl = strchr(line, '\n');
            if (nl != NULL)
                *nl = '\0';
            if (strcmp(line, ": keep-alive") == 0)
                s->keepalives++;
            else if (strncmp(line, "id: ", 4) == 0)
                e.id = strtoull(line + 4, NULL, 10), is_event = true;
            else if (strncmp(line, "event: ", 7) == 0)
                snprintf(e.kind, sizeof(e.kind), "%s", line + 7);
            else if (strncmp(line, "data: ", 6) == 0)
                e.data = json_loads(line + 6, 0, NULL);
            line = nl != NULL ? nl + 1 : NULL;
        }
        if (strcmp(e.kind, "missed") == 0)
            s->missed++;
        if (is_event && s->n < MAX_EVENTS)
            s->ev[s->n++] = e;
        else
            json_decref(e.data);
        s->parsed = (size_t) (end + 2 - s->buf);
    }
}

struct want {
    struct sse *s;
    const char *job_id; // an event of this job ...
    const char *kind;   // ... of this kind; or
    size_t      n;      // this many events; or
    int         keepalives;
};

static bool
sse_has(const char *buf, void *arg)
{
    struct want *w = arg;
    (void) buf;
    sse_parse(w->s);
    if (w->keepalives > 0)
        return w->s->keepalives >= w->keepalives;
    if (w->n > 0)
        return w->s->n >= w->n;
    for (size_t i = 0; i < w->s->n; i++) {
        const char *j = jstr(w->s->ev[i].data, "job_id", NULL);
        if (j != NULL && strcmp(j, w->job_id) == 0
            && strcmp(w->s->ev[i].kind, w->kind) == 0)
            return true;
    }
    return false;
}

static bool
sse_wait(struct sse *s, struct want w, int ms)
{
    w.s = s;
    read_until(s->fd, &s->buf, &s->len, ms, sse_has, &w);
    return sse_has(s->buf, &w);
}

static void
sse_close(struct sse *s)
{
    for (size_t i = 0; i < s->n; i++)
        json_decref(s->ev[i].data);
    free(s->buf);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

// ---- anvild ----

static bool
healthz(struct fixture *f)
{
    int fd = dial(f->port);
    if (fd < 0)
        return false;
    const char req[] = "GET /healthz HTTP/1.0\r\n\r\n";
    char      *buf   = NULL;
    size_t     len   = 0;
    bool       ok    = harness_write_all(fd, req, sizeof(req) - 1) == 0
        && read_until(fd, &buf, &len, IO_MS, NULL, NULL) > 0
        && strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 8, " 200", 4) == 0;
    free(buf);
    close(fd);
    return ok;
}

static bool
healthz_cond(void *arg)
{
    return healthz(arg);
}

// anvild --http on a free port, with the extra arguments (NULL-ended).
static void
spawn(struct fixture *f, ...)
{
    char url[64], *argv[24];
    int  n  = 0;
    f->port = harness_free_tcp_port();
    assert_true(f->port > 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", f->port);
    argv[n++] = "anvild";
    argv[n++] = "--listen";
    argv[n++] = f->h.url;
    argv[n++] = "--db";
    argv[n++] = f->h.db;
    argv[n++] = "--http";
    argv[n++] = url;
    va_list ap;
    va_start(ap, f);
    for (char *a = va_arg(ap, char *); a != NULL && n < 22;
         a       = va_arg(ap, char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    f->pid  = harness_spawn(&f->h, "anvild", argv);
    assert_true(f->pid > 0);
    assert_true(harness_wait_for(healthz_cond, f, 20000));
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL || harness_open(&f->h) != 0)
        return -1;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f  = *state;
    int             rc = harness_stop(&f->h);
    free(f);
    return rc;
}

static bool
worker_seen(void *arg)
{
    struct reply r  = call(arg, "GET", "/v1/workers", NULL);
    bool         ok = json_array_size(json_object_get(r.j, "workers")) > 0;
    reply_free(&r);
    return ok;
}

// anvild (keep-alive KEEPALIVE) and one anvil-worker, once it polls.
static void
start(struct fixture *f)
{
    spawn(f, "--sse-keepalive", KEEPALIVE, NULL);
    assert_true(harness_spawn_worker(&f->h, 2) > 0);
    assert_true(harness_wait_for(worker_seen, f, 20000));
}

// Submits an echo job; its id into id.
static void
submit(struct fixture *f, const char *type, char *id, size_t len)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"type\": \"%s\"}", type);
    struct reply r = call(f, "POST", "/v1/jobs", body);
    assert_int_equal(r.status, 201);
    snprintf(id, len, "%s", jstr(r.j, "id", NULL));
    reply_free(&r);
}

static void
wait_final(struct fixture *f, const char *id)
{
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s?wait=20s", id);
    struct reply r = call(f, "GET", path, NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.j, "done")));
    reply_free(&r);
}

// ---- tests ----

static void
test_stream_delivers_a_jobs_events_in_order(void **state)
{
    struct fixture *f = *state;
    start(f);
    struct sse s;
    assert_int_equal(sse_open(f, &s, "", NULL), 200);
    assert_non_null(strstr(s.buf, "Content-Type: text/event-stream"));
    char id[32];
    submit(f, "echo", id, sizeof(id));
    assert_true(sse_wait(
        &s, (struct want) { .job_id = id, .kind = "job.succeeded" }, IO_MS));
    const char *order[] = { "job.submitted", "job.started", "job.succeeded" };
    size_t      k       = 0;
    uint64_t    last    = 0;
    for (size_t i = 0; i < s.n; i++) {
        // id: is the event's seq, and ids only grow.
        assert_int_equal(
            strtoull(jstr(s.ev[i].data, "seq", NULL), NULL, 10), s.ev[i].id);
        assert_true(s.ev[i].id > last);
        last          = s.ev[i].id;
        const char *j = jstr(s.ev[i].data, "job_id", NULL);
        if (j == NULL || strcmp(j, id) != 0)
            continue;
        assert_true(k < 3);
        assert_string_equal(s.ev[i].kind, order[k]);
        k++;
    }
    assert_int_equal(k, 3);
    sse_close(&s);
}

static void
test_last_event_id_resumes_without_gap_or_duplicate(void **state)
{
    struct fixture *f = *state;
    start(f);
    char a[32], b[32];
    submit(f, "echo", a, sizeof(a));
    submit(f, "echo", b, sizeof(b));
    wait_final(f, a);
    wait_final(f, b);
    struct sse all;
    assert_int_equal(sse_open(f, &all, "?after_seq=0", NULL), 200);
    assert_true(sse_wait(
        &all, (struct want) { .job_id = b, .kind = "job.succeeded" }, IO_MS));
    assert_true(all.n >= 6);
    size_t cut = all.n / 2;
    char   hdr[64];
    snprintf(hdr, sizeof(hdr), "Last-Event-ID: %llu\r\n",
        (unsigned long long) all.ev[cut - 1].id);
    struct sse rest;
    // Last-Event-ID wins over the query's after_seq.
    assert_int_equal(sse_open(f, &rest, "?after_seq=0", hdr), 200);
    assert_true(sse_wait(&rest, (struct want) { .n = all.n - cut }, IO_MS));
    for (size_t i = cut; i < all.n; i++) {
        assert_int_equal(rest.ev[i - cut].id, all.ev[i].id);
        assert_string_equal(rest.ev[i - cut].kind, all.ev[i].kind);
    }
    sse_close(&all);
    sse_close(&rest);
}

static void
test_filters_job_id_and_kind(void **state)
{
    struct fixture *f = *state;
    start(f);
    char a[32], b[32];
    submit(f, "echo", a, sizeof(a));
    submit(f, "echo", b, sizeof(b));
    wait_final(f, a);
    wait_final(f, b);
    char q[128];
    snprintf(q, sizeof(q), "?after_seq=0&job_id=%s&kind=job.succeeded", b);
    struct sse s;
    assert_int_equal(sse_open(f, &s, q, NULL), 200);
    assert_true(sse_wait(&s, (struct want) { .n = 1 }, IO_MS));
    // Nothing else comes: two keep-alives, no second event.
    assert_true(sse_wait(&s, (struct want) { .keepalives = 2 }, IO_MS));
    assert_int_equal(s.n, 1);
    assert_string_equal(s.ev[0].kind, "job.succeeded");
    assert_string_equal(jstr(s.ev[0].data, "job_id", NULL), b);
    assert_string_equal(
        jstr(s.ev[0].data, "kind", NULL), "EVENT_KIND_JOB_SUCCEEDED");
    sse_close(&s);
    // Two kinds, repeated; the other job's events only.
    snprintf(q, sizeof(q),
        "?after_seq=0&job_id=%s&kind=job.submitted&kind=JOB_SUCCEEDED", a);
    assert_int_equal(sse_open(f, &s, q, NULL), 200);
    assert_true(sse_wait(&s, (struct want) { .n = 2 }, IO_MS));
    assert_string_equal(s.ev[0].kind, "job.submitted");
    assert_string_equal(s.ev[1].kind, "job.succeeded");
    sse_close(&s);
}

static void
test_keepalive_when_idle(void **state)
{
    struct fixture *f = *state;
    start(f);
    struct sse s;
    assert_int_equal(sse_open(f, &s, "?kind=worker.lost", NULL), 200);
    int64_t t0 = av_mono_ms();
    assert_true(sse_wait(&s, (struct want) { .keepalives = 3 }, IO_MS));
    // Three at 300 ms each: neither a busy loop nor 15 s.
    assert_true(av_mono_ms() - t0 >= 600);
    assert_int_equal(s.n, 0);
    sse_close(&s);
}

static int
open_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

struct fds {
    pid_t pid;
    int   max;
};

static bool
fds_back(void *arg)
{
    struct fds *x = arg;
    return open_fds(x->pid) <= x->max;
}

static void
test_client_that_hangs_up_is_cleaned_up(void **state)
{
    struct fixture *f = *state;
    // A long keep-alive: only the hang-up can end these streams quickly.
    spawn(f, "--sse-keepalive", "20s", NULL);
    // Warm up (the store's files, a first stream), then let it settle.
    struct sse warm;
    assert_int_equal(sse_open(f, &warm, "", NULL), 200);
    sse_close(&warm);
    struct fds settle = { f->pid, 0 };
    int        base   = open_fds(f->pid);
    for (int i = 0; i < 20; i++) { // no fd closing any more
        usleep(50 * 1000);
        settle.max = open_fds(f->pid);
        if (settle.max == base)
            break;
        base = settle.max;
    }
    struct sse s[20];
    for (int i = 0; i < 20; i++)
        assert_int_equal(sse_open(f, &s[i], "", NULL), 200);
    assert_true(open_fds(f->pid) >= base + 20);
    for (int i = 0; i < 20; i++)
        sse_close(&s[i]);
    struct fds x = { f->pid, base + 2 };
    assert_true(harness_wait_for(fds_back, &x, 3000));
    // Still serving, streams included.
    assert_true(healthz(f));
    struct sse again;
    assert_int_equal(sse_open(f, &again, "", NULL), 200);
    sse_close(&again);
    struct reply r = call(f, "GET", "/metrics", NULL);
    assert_int_equal(r.status, 200);
    reply_free(&r);
}

static void
test_access_token(void **state)
{
    struct fixture *f = *state;
    char            file[128], arg[160];
    harness_path(&f->h, "admin.token", file, sizeof(file));
    spawn(f, "--auth", "--bootstrap-token-file", file, NULL);
    char *secret = harness_read_file(file, NULL);
    assert_non_null(secret);
    secret[strcspn(secret, "\r\n")] = '\0';
    struct sse s;
    assert_int_equal(sse_open(f, &s, "", NULL), 401);
    sse_close(&s);
    assert_int_equal(sse_open(f, &s, "?access_token=anv_nope", NULL), 401);
    sse_close(&s);
    snprintf(arg, sizeof(arg), "?access_token=%s", secret);
    assert_int_equal(sse_open(f, &s, arg, NULL), 200);
    sse_close(&s);
    // Only the stream takes it: elsewhere it is an unknown parameter.
    snprintf(arg, sizeof(arg), "/v1/health?access_token=%s", secret);
    struct reply r = call(f, "GET", arg, NULL);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(jstr(r.j, "message", NULL), "access_token"));
    reply_free(&r);
    // The token never reaches the log.
    char  log[160];
    char *text = harness_read_file(
        harness_path(&f->h, "anvild-0.log", log, sizeof(log)), NULL);
    assert_true(text == NULL || strstr(text, secret) == NULL);
    free(text);
    free(secret);
}

static void
expect_400(
    struct fixture *f, const char *query, const char *extra, const char *names)
{
    struct sse s;
    assert_int_equal(sse_open(f, &s, query, extra), 400);
    if (strstr(s.buf, names) == NULL)
        fail_msg("%s: the message does not name %s: %s", query, names, s.buf);
    sse_close(&s);
}

static void
test_bad_query_values(void **state)
{
    struct fixture *f = *state;
    spawn(f, "--sse-keepalive", KEEPALIVE, NULL);
    expect_400(f, "?after_seq=abc", NULL, "'after_seq'");
    expect_400(f, "?limit=99999", NULL, "'limit'");
    expect_400(f, "?kind=NOPE", NULL, "'kind'");
    expect_400(f, "?after_seq=-1", NULL, "'after_seq'");
    expect_400(f, "?wat=1", NULL, "'wat'");
    expect_400(f, "", "Last-Event-ID: twelve\r\n", "Last-Event-ID");
    struct reply r = call(f, "GET", "/v1/events:watch?limit=1001", NULL);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(jstr(r.j, "message", NULL), "'limit'"));
    reply_free(&r);
}

static void
test_watch_long_poll(void **state)
{
    struct fixture *f = *state;
    start(f);
    char id[32], path[128];
    submit(f, "echo", id, sizeof(id));
    wait_final(f, id);
    snprintf(path, sizeof(path),
        "/v1/events:watch?after_seq=0&job_id=%s&kind=job.succeeded&timeout_ms="
        "1000",
        id);
    struct reply r = call(f, "GET", path, NULL);
    assert_int_equal(r.status, 200);
    json_t *evs = json_object_get(r.j, "events");
    assert_int_equal(json_array_size(evs), 1);
    assert_string_equal(
        jstr(json_array_get(evs, 0), "kind", NULL), "EVENT_KIND_JOB_SUCCEEDED");
    reply_free(&r);
}

static void
test_retry_and_lookup_routes(void **state)
{
    struct fixture *f = *state;
    start(f);
    struct reply r = call(f, "POST", "/v1/jobs",
        "{\"type\": \"nobody-runs-this\", \"idempotency_key\": \"k-77\"}");
    assert_int_equal(r.status, 201);
    char id[32], path[96];
    snprintf(id, sizeof(id), "%s", jstr(r.j, "id", NULL));
    reply_free(&r);
    r = call(f, "GET", "/v1/jobs:lookup?idempotency_key=k-77", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.j, "job", "id"), id);
    reply_free(&r);
    snprintf(path, sizeof(path), "/v1/jobs/%s:cancel", id);
    r = call(f, "POST", path, NULL);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    snprintf(path, sizeof(path), "/v1/jobs/%s:retry", id);
    r = call(f, "POST", path, "{\"max_attempts\": 2}");
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.j, "job", "id"), id);
    assert_string_equal(jstr(r.j, "job", "state"), "JOB_STATE_QUEUED");
    reply_free(&r);
    r = call(f, "POST", path, NULL); // no body: the default budget
    assert_int_equal(r.status, 412); // QUEUED: nothing to retry
    reply_free(&r);
    r = call(f, "POST", "/v1/workflows",
        "{\"name\": \"w\", \"steps\": [{\"name\": \"a\", \"type\": "
        "\"nobody-runs-this\"}]}");
    assert_int_equal(r.status, 201);
    snprintf(id, sizeof(id), "%s", jstr(r.j, "id", NULL));
    reply_free(&r);
    snprintf(path, sizeof(path), "/v1/workflows/%s:cancel", id);
    r = call(f, "POST", path, NULL);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    snprintf(path, sizeof(path), "/v1/workflows/%s:retry", id);
    r = call(f, "POST", path, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.j, "workflow", "id"), id);
    assert_string_not_equal(
        jstr(r.j, "workflow", "state"), "WORKFLOW_STATE_CANCELED");
    reply_free(&r);
}

static long
vm_rss_kib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
    char *text = harness_read_file(path, NULL);
    assert_non_null(text);
    const char *p  = strstr(text, "VmRSS:");
    long        kb = p != NULL ? strtol(p + 6, NULL, 10) : -1;
    free(text);
    return kb;
}

static void
test_thousand_idle_streams(void **state)
{
    struct fixture *f = *state;
    struct rlimit   rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * IDLE_CLIENTS + 64 && rl.rlim_max > rl.rlim_cur) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl); // anvild inherits it
    }
    if (rl.rlim_cur < 2 * IDLE_CLIENTS + 64)
        skip();
    spawn(f, "--max-conns", "1100", NULL); // the default 15 s keep-alive
    // Warm up: one stream opened and closed.
    struct sse one;
    assert_int_equal(sse_open(f, &one, "", NULL), 200);
    sse_close(&one);
    long before = vm_rss_kib(f->pid);
    int *fd     = calloc(IDLE_CLIENTS, sizeof(*fd));
    assert_non_null(fd);
    const char req[] = "GET /v1/events HTTP/1.0\r\n\r\n";
    for (int i = 0; i < IDLE_CLIENTS; i++) {
        fd[i] = dial(f->port);
        assert_true(fd[i] >= 0);
        assert_int_equal(harness_write_all(fd[i], req, sizeof(req) - 1), 0);
    }
    // Each has its head and "retry": the stream is open in anvild.
    for (int i = 0; i < IDLE_CLIENTS; i++) {
        char  *buf = NULL;
        size_t len = 0;
        read_until(fd[i], &buf, &len, IO_MS, has_body_start, NULL);
        assert_non_null(buf);
        assert_true(strncmp(buf + 8, " 200", 4) == 0);
        free(buf);
    }
    long after = vm_rss_kib(f->pid);
    long per   = (after - before) * 1024 / IDLE_CLIENTS;
    printf("anvild VmRSS %ld KiB -> %ld KiB with %d idle SSE clients: %ld "
           "bytes per client\n",
        before, after, IDLE_CLIENTS, per);
    assert_true(per < 64 * 1024);
    for (int i = 0; i < IDLE_CLIENTS; i++)
        close(fd[i]);
    free(fd);
    assert_true(harness_wait_for(healthz_cond, f, 5000));
    struct reply r = call(f, "GET", "/v1/health", NULL);
    assert_int_equal(r.status, 200);
    reply_free(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_stream_delivers_a_jobs_events_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_last_event_id_resumes_without_gap_or_duplicate, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_filters_job_id_and_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_keepalive_when_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_client_that_hangs_up_is_cleaned_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_query_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_long_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_retry_and_lookup_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_thousand_idle_streams, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
