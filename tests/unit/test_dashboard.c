// test_dashboard.c - the dashboard's embedded files (server/dashboard.c)
// served by a bare libmicrohttpd daemon that hands every request to
// dashboard_answer(), as http.c does for the paths outside the API; a
// plain socket client reads the raw answers.
#include "../../server/dashboard.h"
#include "../../server/dashboard_table.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
    (void) cls;
    (void) version;
    (void) upload;
    (void) upload_size;
    (void) con_cls;
    return dashboard_answer(conn, method, url);
}

struct fixture {
    struct MHD_Daemon *d;
    uint16_t           port;
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, NULL,
        MHD_OPTION_END);
    assert_non_null(f->d);
    const union MHD_DaemonInfo *i
        = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(i);
    f->port = i->port;
    *state  = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    MHD_stop_daemon(f->d);
    free(f);
    return 0;
}

// Sends the request text as it is; returns the whole answer (headers and
// body; the daemon closes after an HTTP/1.0 answer). Caller frees.
static char *
fetch(struct fixture *f, const char *request, size_t *len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a
        = { .sin_family = AF_INET, .sin_port = htons(f->port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *) &a, sizeof(a)), 0);
    size_t n = strlen(request);
    assert_int_equal(write(fd, request, n), (ssize_t) n);
    size_t cap = 1 << 16;
    size_t got = 0;
    char  *buf = malloc(cap + 1);
    assert_non_null(buf);
    for (;;) {
        if (got == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        ssize_t r = read(fd, buf + got, cap - got);
        if (r <= 0)
            break;
        got += (size_t) r;
    }
    close(fd);
    buf[got] = '\0';
    if (len != NULL)
        *len = got;
    return buf;
}

static char *
get(struct fixture *f, const char *method, const char *path, const char *extra)
{
    char req[1024];
    snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: x\r\n%s\r\n", method,
        path, extra != NULL ? extra : "");
    return fetch(f, req, NULL);
}

static int
status_of(const char *answer)
{
    int st = 0;
    assert_int_equal(sscanf(answer, "HTTP/1.%*d %d", &st), 1);
    return st;
}

// The value of header name in an answer, copied into out ("" if absent).
static const char *
header(const char *answer, const char *name, char *out, size_t cap)
{
    out[0]          = '\0';
    const char *end = strstr(answer, "\r\n\r\n");
    size_t      n   = strlen(name);
    for (const char *p = strstr(answer, "\r\n"); p != NULL && p < end;
         p             = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            while (*v == ' ')
                v++;
            size_t l = strcspn(v, "\r");
            snprintf(out, cap, "%.*s", (int) (l < cap ? l : cap - 1), v);
            break;
        }
    }
    return out;
}

static const char *
body(const char *answer)
{
    const char *b = strstr(answer, "\r\n\r\n");
    assert_non_null(b);
    return b + 4;
}

static void
test_every_file_has_a_path_type_and_etag(void **state)
{
    (void) state;
    assert_true(dashboard_files_n > 0);
    for (size_t i = 0; i < dashboard_files_n; i++) {
        const struct dashboard_file *f = &dashboard_files[i];
        assert_true(f->path[0] == '/');
        assert_non_null(strchr(f->path, '.'));
        assert_true(f->content_type[0] != '\0');
        assert_true(f->etag[0] == '"' && f->etag[strlen(f->etag) - 1] == '"');
        assert_ptr_equal(dashboard_find(f->path), f);
    }
    assert_ptr_equal(dashboard_find("/"), dashboard_find("/index.html"));
    assert_null(dashboard_find("/nope.js"));
    assert_null(dashboard_find(NULL));
}

static void
test_the_page_is_served_with_its_headers(void **state)
{
    struct fixture *f = *state;
    char           *a = get(f, "GET", "/", NULL);
    char            v[512];
    assert_int_equal(status_of(a), 200);
    assert_string_equal(
        header(a, "Content-Type", v, sizeof(v)), "text/html; charset=utf-8");
    assert_string_equal(
        header(a, "Content-Security-Policy", v, sizeof(v)), DASHBOARD_CSP);
    assert_string_equal(
        header(a, "X-Content-Type-Options", v, sizeof(v)), "nosniff");
    assert_string_equal(
        header(a, "Referrer-Policy", v, sizeof(v)), "no-referrer");
    assert_string_equal(header(a, "X-Frame-Options", v, sizeof(v)), "DENY");
    assert_string_equal(header(a, "Cache-Control", v, sizeof(v)), "no-cache");
    assert_string_equal(
        header(a, "ETag", v, sizeof(v)), dashboard_find("/index.html")->etag);
    assert_non_null(strstr(body(a), "<!doctype html>"));
    assert_null(strstr(body(a), "style=\""));
    free(a);
}

static void
test_scripts_and_styles_have_their_types(void **state)
{
    struct fixture *f = *state;
    char            v[256];
    char           *a = get(f, "GET", "/app.js", NULL);
    assert_int_equal(status_of(a), 200);
    assert_non_null(
        strstr(header(a, "Content-Type", v, sizeof(v)), "text/javascript"));
    assert_int_equal(strlen(body(a)), dashboard_find("/app.js")->len);
    free(a);
    a = get(f, "GET", "/style.css?v=2", NULL);
    assert_int_equal(status_of(a), 200);
    assert_non_null(
        strstr(header(a, "Content-Type", v, sizeof(v)), "text/css"));
    free(a);
}

static void
test_routes_of_the_page_get_index_html(void **state)
{
    struct fixture *f    = *state;
    const char     *etag = dashboard_find("/index.html")->etag;
    const char *paths[]  = { "/jobs", "/jobs/j42", "/workflows/w3", "/workers",
         "/events", "/jobs/", "/schedules", "/schedules/nightly",
         "/schedules/nightly.report" };
    char        v[256];
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char *a = get(f, "GET", paths[i], NULL);
        assert_int_equal(status_of(a), 200);
        assert_string_equal(header(a, "ETag", v, sizeof(v)), etag);
        assert_non_null(strstr(body(a), "/app.js"));
        free(a);
    }
}

static void
test_a_missing_file_is_404(void **state)
{
    struct fixture *f = *state;
    char            v[512];
    const char     *paths[]
        = { "/nope.js", "/favicon.ico", "/jobs/x.png", "/v1/events", "/v1" };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char *a = get(f, "GET", paths[i], NULL);
        assert_int_equal(status_of(a), 404);
        assert_non_null(strstr(body(a), "\"code\":\"NOT_FOUND\""));
        assert_string_equal(
            header(a, "X-Content-Type-Options", v, sizeof(v)), "nosniff");
        free(a);
    }
}

static void
test_a_matching_etag_answers_304(void **state)
{
    struct fixture *f    = *state;
    const char     *etag = dashboard_find("/app.js")->etag;
    char            extra[256];
    // The tag alone, weak, in a list, and "*".
    const char *before[] = { "", "W/", "\"other\", ", "" };
    for (size_t i = 0; i < sizeof(before) / sizeof(before[0]); i++) {
        snprintf(extra, sizeof(extra), "If-None-Match: %s%s\r\n", before[i],
            i == 3 ? "*" : etag);
        char *a = get(f, "GET", "/app.js", extra);
        char  v[128];
        assert_int_equal(status_of(a), 304);
        assert_string_equal(header(a, "ETag", v, sizeof(v)), etag);
        assert_string_equal(body(a), "");
        free(a);
    }
    char *a = get(f, "GET", "/app.js", "If-None-Match: \"stale\"\r\n");
    assert_int_equal(status_of(a), 200);
    free(a);
}

static void
test_head_has_the_headers_and_no_body(void **state)
{
    struct fixture *f = *state;
    char           *a = get(f, "HEAD", "/index.html", NULL);
    char            v[64];
    char            want[64];
    assert_int_equal(status_of(a), 200);
    snprintf(want, sizeof(want), "%zu", dashboard_find("/index.html")->len);
    assert_string_equal(header(a, "Content-Length", v, sizeof(v)), want);
    assert_string_equal(body(a), "");
    free(a);
}

static void
test_other_methods_are_refused(void **state)
{
    struct fixture *f = *state;
    char           *a = get(f, "POST", "/", "Content-Length: 0\r\n");
    char            v[64];
    assert_int_equal(status_of(a), 405);
    assert_string_equal(header(a, "Allow", v, sizeof(v)), "GET, HEAD");
    free(a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_file_has_a_path_type_and_etag),
        cmocka_unit_test_setup_teardown(
            test_the_page_is_served_with_its_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_scripts_and_styles_have_their_types, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_routes_of_the_page_get_index_html, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_missing_file_is_404, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_matching_etag_answers_304, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_head_has_the_headers_and_no_body, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_other_methods_are_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
