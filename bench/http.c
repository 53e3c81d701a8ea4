// http.c - the smallest HTTP/1.1 client that measures anvild's HTTP
// endpoint fairly: one persistent (keep-alive) connection per caller, one
// request at a time (no pipelining), the request written with one send(),
// the answer read until its status line, headers and Content-Length bytes
// of body are in. No chunked transfer (anvild answers with a
// Content-Length), no TLS, no redirects: what a client library would add
// on top is not what we are measuring.
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_IN_MIN 16384     // the read buffer, grown for large bodies
#define HTTP_IN_MAX (8 << 20) // an answer larger than this is an error
#define HTTP_HEAD_MAX 8192    // request line and headers we write
#define HTTP_TIMEOUT_S 60     // SO_RCVTIMEO / SO_SNDTIMEO

struct bench_http {
    int    fd; // -1: reconnect before the next request
    char   host[64];
    int    port;
    char  *in; // bytes read and not yet consumed: in[0 .. have - 1]
    size_t have;
    size_t cap;
    char  *out; // the request being written
    size_t out_cap;
};

__attribute__((format(printf, 3, 4))) static int
set_err(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err != NULL && len > 0)
        vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

// "http://127.0.0.1:8080" (a trailing "/" allowed) into host and port.
static int
parse_url(const char *url, char *host, size_t hlen, int *port)
{
    if (strncmp(url, "http://", 7) != 0)
        return -1;
    const char *p     = url + 7;
    const char *colon = strrchr(p, ':');
    if (colon == NULL || (size_t) (colon - p) >= hlen)
        return -1;
    char *end;
    long  v = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || (*end != '\0' && strcmp(end, "/") != 0) || v < 1
        || v > 65535)
        return -1;
    snprintf(host, hlen, "%.*s", (int) (colon - p), p);
    *port = (int) v;
    return 0;
}

static int
dial(struct bench_http *c, char *err, size_t errlen)
{
    struct sockaddr_in a = { 0 };
    a.sin_family         = AF_INET;
    a.sin_port           = htons((uint16_t) c->port);
    if (inet_pton(AF_INET, c->host, &a.sin_addr) != 1)
        return set_err(err, errlen, "%s: not an IPv4 address", c->host);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return set_err(err, errlen, "socket: %s", strerror(errno));
    int            one = 1;
    struct timeval tv  = { HTTP_TIMEOUT_S, 0 };
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *) &a, sizeof(a)) != 0) {
        set_err(err, errlen, "connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    c->fd   = fd;
    c->have = 0;
    return 0;
}

int
bench_http_open(
    const char *url, struct bench_http **out, char *err, size_t errlen)
{
    struct bench_http *c = calloc(1, sizeof(*c));
    *out                 = NULL;
    if (c == NULL)
        return set_err(err, errlen, "%s", "out of memory");
    c->fd  = -1;
    c->cap = HTTP_IN_MIN;
    c->in  = malloc(c->cap);
    if (c->in == NULL
        || parse_url(url, c->host, sizeof(c->host), &c->port) != 0) {
        set_err(err, errlen, "%s: want http://IPv4:port", url);
        bench_http_close(c);
        return -1;
    }
    if (dial(c, err, errlen) != 0) {
        bench_http_close(c);
        return -1;
    }
    *out = c;
    return 0;
}

void
bench_http_close(struct bench_http *c)
{
    if (c == NULL)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

static int
send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t) w;
    }
    return 0;
}

// Writes the whole request with one send (headers and body in one buffer).
static int
write_request(struct bench_http *c, const char *verb, const char *path,
    const char *body, size_t len)
{
    size_t need = HTTP_HEAD_MAX + len;
    if (need > c->out_cap) {
        char *p = realloc(c->out, need);
        if (p == NULL)
            return -1;
        c->out     = p;
        c->out_cap = need;
    }
    int n = snprintf(c->out, HTTP_HEAD_MAX,
        "%s %s HTTP/1.1\r\nHost: %s:%d\r\n%s%zu\r\n\r\n", verb, path, c->host,
        c->port,
        body != NULL ? "Content-Type: application/json\r\nContent-Length: "
                     : "Content-Length: ",
        body != NULL ? len : 0);
    if (n < 0 || n >= HTTP_HEAD_MAX)
        return -1;
    if (body != NULL && len > 0)
        memcpy(c->out + n, body, len);
    return send_all(c->fd, c->out, (size_t) n + (body != NULL ? len : 0));
}

// Reads more bytes into c->in; 0, or -1 on error or end of stream.
static int
fill(struct bench_http *c, size_t want)
{
    if (want > HTTP_IN_MAX)
        return -1;
    if (want > c->cap) {
        size_t cap = c->cap;
        while (cap < want)
            cap *= 2;
        char *p = realloc(c->in, cap);
        if (p == NULL)
            return -1;
        c->in  = p;
        c->cap = cap;
    }
    for (;;) {
        ssize_t r = recv(c->fd, c->in + c->have, c->cap - c->have, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c->have += (size_t) r;
        return 0;
    }
}

// The value of header `name` in the header block h[0 .. n - 1], or NULL.
static const char *
header_value(const char *h, size_t n, const char *name, size_t *vlen)
{
    size_t      nlen = strlen(name);
    const char *end  = h + n;
    for (const char *p = h; p < end;) {
        const char *eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t) (eol - p) > nlen && p[nlen] == ':'
            && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *vlen = (size_t) (ve - v);
            return v;
        }
        p = eol + 1;
    }
    return NULL;
}

// Parses the head of the answer in c->in[0 .. head - 1]: status and body
// length; *close when the server will close the connection after it.
static int
parse_head(struct bench_http *c, size_t head, int *status, size_t *blen,
    bool *close_after)
{
    if (head < 12 || strncmp(c->in, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(c->in + 9);
    size_t      vlen;
    const char *cl = header_value(c->in, head, "Content-Length", &vlen);
    if (cl == NULL || vlen == 0 || vlen > 12)
        return -1; // anvild always sends one (no chunked answers)
    *blen           = (size_t) strtoull(cl, NULL, 10);
    const char *con = header_value(c->in, head, "Connection", &vlen);
    *close_after
        = (con != NULL && vlen == 5 && strncasecmp(con, "close", 5) == 0)
        || strncmp(c->in, "HTTP/1.0", 8) == 0;
    return 0;
}

// The end of the header block in c->in (just past its blank line), or 0.
static size_t
head_end(const struct bench_http *c)
{
    for (size_t i = 3; i < c->have; i++) {
        if (c->in[i] == '\n' && c->in[i - 1] == '\r' && c->in[i - 2] == '\n'
            && c->in[i - 3] == '\r')
            return i + 1;
    }
    return 0;
}

// Reads one whole answer; its body is copied (NUL-terminated, cut to fit)
// into resp.
static int
read_answer(
    struct bench_http *c, int *status, char *resp, size_t cap, size_t *rlen)
{
    size_t head = head_end(c);
    while (head == 0) {
        if (fill(c, c->have + 1024) != 0)
            return -1;
        head = head_end(c);
    }
    size_t blen;
    bool   close_after;
    if (parse_head(c, head, status, &blen, &close_after) != 0)
        return -1;
    while (c->have < head + blen) {
        if (fill(c, head + blen) != 0)
            return -1;
    }
    if (resp != NULL && cap > 0) {
        size_t n = blen < cap - 1 ? blen : cap - 1;
        memcpy(resp, c->in + head, n);
        resp[n] = '\0';
    }
    if (rlen != NULL)
        *rlen = blen;
    // No pipelining: nothing should follow, but keep what does.
    c->have -= head + blen;
    memmove(c->in, c->in + head + blen, c->have);
    if (close_after) {
        close(c->fd);
        c->fd = -1;
    }
    return 0;
}

int
bench_http_request(struct bench_http *c, const char *verb, const char *path,
    const char *body, size_t len, int *status, char *resp, size_t cap,
    char *err, size_t errlen)
{
    if (c->fd < 0 && dial(c, err, errlen) != 0)
        return -1;
    if (write_request(c, verb, path, body, len) != 0
        || read_answer(c, status, resp, cap, NULL) != 0) {
        set_err(err, errlen, "%s: request failed or connection lost", path);
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

int
bench_http_json_string(const char *body, const char *key, char *out, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = strstr(body, pat);
    if (p == NULL)
        return -1;
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    if (p[n] != '"' || n == 0 || n >= len)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

size_t
bench_http_count(const char *body, const char *needle)
{
    size_t n    = 0;
    size_t nlen = strlen(needle);
    for (const char *p = strstr(body, needle); p != NULL;
         p             = strstr(p + nlen, needle))
        n++;
    return n;
}
