// test_http.c - anvild's HTTP/JSON endpoint (anvild --http) through a real
// HTTP client, libcurl: every route of server/http_routes.c, the seed's
// POST /job run by a real anvil-worker, the worker calls driving jobs to
// SUCCEEDED and FAILED over HTTP alone, workflows, tokens and roles,
// idempotent resends, the OpenAPI document against the route table, each
// error status the API gives, and https:// with and without client
// certificates.
//
// Each test starts an in-process anvild (harness.h) on its ipc:// URL with
// one HTTP listener on http://127.0.0.1:0 (server_http_port() gives the
// port). Certificates for the https:// tests are made once, at test time,
// with the openssl command line (as test_tls.c does).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../server/http_routes.h"
#include "../../server/server.h"
#include "../../server/store.h"
#include "../harness.h"
#include "anvil/v1/anvil.pb-c.h"
#include "util/clock.h"

#define CURL_TIMEOUT_MS 20000
#define WAIT_MS 30000

// The seed's exact request body.
#define SEED_BODY                                                      \
    "{\"Type\":\"Sleep\", \"Data\":\"{\\\"SleepTimeInSeconds\\\": 1, " \
    "\\\"Message\\\": \\\"Hello World\\\"}\"}"

// examples/chain.json, as docs/workflows.md defines the format.
#define CHAIN_JSON                                                            \
    "{\"name\": \"chain\", \"timeout_ms\": 60000, \"steps\": ["               \
    "{\"name\": \"fetch\", \"type\": \"echo\", \"data\": {\"url\": "          \
    "\"https://example.com/cat.png\"}},"                                      \
    "{\"name\": \"resize\", \"type\": \"echo\", \"data\": {\"width\": 128}, " \
    "\"after\": [\"fetch\"]},"                                                \
    "{\"name\": \"publish\", \"type\": \"echo\", \"data\": \"published\", "   \
    "\"after\": [\"resize\"]}]}"

// The certificates of the https:// tests, made once for the binary.
static char certs[64]; // "/tmp/anvil-httpcerts-XXXXXX"
static char cert_paths[8][128];

enum { CA_CRT, SERVER_CRT, SERVER_KEY, CLIENT_CRT, CLIENT_KEY, OTHER_CA_CRT };

static const char *const cert_names[] = { "ca.crt", "server.crt", "server.key",
    "client.crt", "client.key", "other-ca.crt" };

struct fixture {
    struct harness       h;
    struct server_config cfg;
    char                 base[96]; // "http://127.0.0.1:PORT"
    int                  port;
    CURL                *curl;
    char                 token[160]; // sent as a Bearer token when set
    char                 token_file[128];
    // https:// clients
    const char *cainfo;
    const char *cert;
    const char *key;
};

// One answer, as the client saw it.
struct resp {
    CURLcode cc;
    long     status;
    char    *body;
    size_t   len;
    json_t  *j; // the body parsed, when it is JSON
    char     ctype[96];
    char     location[96];
    char     allow[64];
    char     www_auth[96];
    char     what[160]; // "GET /v1/jobs", for messages
};

// ---- certificates ----

static int
make_certs(void)
{
    snprintf(certs, sizeof(certs), "/tmp/anvil-httpcerts-XXXXXX");
    if (mkdtemp(certs) == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(cert_names) / sizeof(cert_names[0]); i++)
        snprintf(cert_paths[i], sizeof(cert_paths[i]), "%s/%s", certs,
            cert_names[i]);
    if (harness_make_cert(certs, "ca", "/CN=anvil test CA", NULL, NULL) != 0
        || harness_make_cert(certs, "other-ca", "/CN=some other CA", NULL, NULL)
            != 0
        || harness_make_cert(certs, "server", "/CN=localhost", "ca",
               "subjectAltName=DNS:localhost,IP:127.0.0.1")
            != 0
        || harness_make_cert(certs, "client", "/CN=worker-1", "ca", NULL)
            != 0) {
        fprintf(stderr,
            "test_http: openssl could not make the test certificates (see "
            "%s/openssl.log)\n",
            certs);
        return -1;
    }
    return 0;
}

static int
group_setup(void **state)
{
    (void) state;
    if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
        return -1;
    return make_certs();
}

static int
group_teardown(void **state)
{
    (void) state;
    if (certs[0] != '\0')
        harness_remove_tree(certs);
    curl_global_cleanup();
    return 0;
}

// ---- server ----

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    *state = f;
    server_config_init(&f->cfg);
    f->cfg.synchronous = 1;
    f->curl            = curl_easy_init();
    return f->curl != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    if (f == NULL)
        return 0;
    store_hook_fdatasync = NULL;
    int rc               = harness_stop(&f->h);
    curl_easy_cleanup(f->curl);
    free(f);
    return rc;
}

// Starts the server of f->cfg (one http://127.0.0.1:0 listener unless the
// test set others) in a fresh harness directory.
static void
start(struct fixture *f)
{
    struct anvil_error err = { 0 };
    assert_int_equal(harness_open(&f->h), 0);
    if (f->cfg.n_http == 0) {
        f->cfg.http_urls[0] = "http://127.0.0.1:0";
        f->cfg.n_http       = 1;
    }
    if (f->cfg.bootstrap_token_file != NULL)
        f->cfg.bootstrap_token_file = harness_path(
            &f->h, "admin.token", f->token_file, sizeof(f->token_file));
    f->h.cfg            = f->cfg;
    f->h.cfg.listen_url = f->h.url;
    f->h.cfg.db_path    = f->h.db;
    int rc              = server_start(&f->h.cfg, &f->h.server, &err);
    if (rc != ANVIL_OK)
        print_error("server_start: %s: %s\n", anvil_code_name(rc), err.msg);
    assert_int_equal(rc, ANVIL_OK);
    f->port = server_http_port(f->h.server, 0);
    assert_true(f->port > 0);
    bool tls = strncmp(f->cfg.http_urls[0], "https:", 6) == 0;
    snprintf(f->base, sizeof(f->base), "%s://%s:%d", tls ? "https" : "http",
        tls ? "localhost" : "127.0.0.1", f->port);
}

// ---- the client ----

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r   = arg;
    size_t       len = size * n;
    char        *b   = realloc(r->body, r->len + len + 1);
    if (b == NULL)
        return 0;
    memcpy(b + r->len, p, len);
    r->body = b;
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

// Copies the value of header line `line` into out when it is `name`.
static void
take_header(
    const char *line, size_t len, const char *name, char *out, size_t out_len)
{
    size_t n = strlen(name);
    if (len <= n + 1 || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return;
    const char *v = line + n + 1;
    size_t      m = len - n - 1;
    while (m > 0 && *v == ' ')
        v++, m--;
    while (m > 0 && (v[m - 1] == '\r' || v[m - 1] == '\n'))
        m--;
    snprintf(out, out_len, "%.*s", (int) m, v);
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r   = arg;
    size_t       len = size * n;
    take_header(p, len, "Content-Type", r->ctype, sizeof(r->ctype));
    take_header(p, len, "Location", r->location, sizeof(r->location));
    take_header(p, len, "Allow", r->allow, sizeof(r->allow));
    take_header(p, len, "WWW-Authenticate", r->www_auth, sizeof(r->www_auth));
    return len;
}

static void
resp_free(struct resp *r)
{
    free(r->body);
    json_decref(r->j);
    memset(r, 0, sizeof(*r));
}

// What a request carries besides its method and path.
struct req_opts {
    const char *ctype;    // NULL: application/json when there is a body
    const char *body;     // NULL: none
    size_t      body_len; // 0: strlen(body)
    const char *token;    // NULL: f->token; "": none
    const char *header;   // one extra header line, or NULL
};

static void
set_tls(struct fixture *f, CURL *c)
{
    if (f->cainfo != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, f->cainfo);
    if (f->cert != NULL) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, f->cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, f->key);
    }
}

// One request on handle c (its connection is kept for the next one).
static struct resp
request_on(struct fixture *f, CURL *c, const char *method, const char *path,
    const struct req_opts *o)
{
    struct resp        r  = { 0 };
    struct curl_slist *hs = NULL;
    char               url[512], line[512];
    snprintf(url, sizeof(url), "%s%s", f->base, path);
    snprintf(r.what, sizeof(r.what), "%s %s", method, path);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) CURL_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    set_tls(f, c);
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (o->body != NULL) {
        size_t n = o->body_len != 0 ? o->body_len : strlen(o->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, o->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) n);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) 0);
    }
    const char *ct = o->ctype;
    if (ct == NULL && o->body != NULL)
        ct = "application/json";
    snprintf(
        line, sizeof(line), "Content-Type:%s%s", ct ? " " : "", ct ? ct : "");
    hs              = curl_slist_append(hs, line);
    hs              = curl_slist_append(hs, "Expect:");
    const char *tok = o->token != NULL ? o->token : f->token;
    if (tok[0] != '\0') {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", tok);
        hs = curl_slist_append(hs, line);
    }
    if (o->header != NULL)
        hs = curl_slist_append(hs, o->header);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    r.cc = curl_easy_perform(c);
    curl_slist_free_all(hs);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    if (r.body != NULL)
        r.j = json_loadb(r.body, r.len, 0, NULL);
    return r;
}

static struct resp
request(struct fixture *f, const char *method, const char *path,
    const struct req_opts *o)
{
    return request_on(f, f->curl, method, path, o);
}

static struct resp
get(struct fixture *f, const char *path)
{
    struct req_opts o = { 0 };
    return request(f, "GET", path, &o);
}

// A POST with a JSON body (NULL: none).
static struct resp
post(struct fixture *f, const char *path, const char *json)
{
    struct req_opts o = { .body = json };
    return request(f, "POST", path, &o);
}

static void
expect_status(const struct resp *r, long status)
{
    if (r->cc != CURLE_OK || r->status != status)
        print_error("%s: curl %s, status %ld (expected %ld), body: %.*s\n",
            r->what, curl_easy_strerror(r->cc), r->status, status,
            (int) (r->len < 600 ? r->len : 600), r->body ? r->body : "");
    assert_int_equal(r->cc, CURLE_OK);
    assert_int_equal(r->status, status);
}

// The JSON value at a path such as "job.state" or "results.1.code".
static json_t *
jpath(json_t *j, const char *path)
{
    char buf[160];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *seg = strtok(buf, "."); seg != NULL && j != NULL;
         seg       = strtok(NULL, ".")) {
        if (json_is_array(j))
            j = json_array_get(j, strtoul(seg, NULL, 10));
        else
            j = json_object_get(j, seg);
    }
    return j;
}

static const char *
jstr(const struct resp *r, const char *path)
{
    const char *s = json_string_value(jpath(r->j, path));
    if (s == NULL)
        print_error("%s: no string at '%s' in %.*s\n", r->what, path,
            (int) (r->len < 600 ? r->len : 600), r->body ? r->body : "");
    assert_non_null(s);
    return s;
}

static void
expect_str(const struct resp *r, const char *path, const char *want)
{
    assert_string_equal(jstr(r, path), want);
}

// An error answer: status, {"code": code, "message": ... naming `part`}.
static void
expect_error(struct resp *r, long status, const char *code, const char *part)
{
    expect_status(r, status);
    assert_non_null(strstr(r->ctype, "application/json"));
    expect_str(r, "code", code);
    if (part != NULL && strstr(jstr(r, "message"), part) == NULL)
        print_error("%s: message '%s' does not name '%s'\n", r->what,
            jstr(r, "message"), part);
    if (part != NULL)
        assert_non_null(strstr(jstr(r, "message"), part));
    resp_free(r);
}

// Submits body to POST /v1/jobs; the new id into id.
static void
submit(struct fixture *f, const char *body, char *id, size_t len)
{
    struct resp r = post(f, "/v1/jobs", body);
    expect_status(&r, 201);
    snprintf(id, len, "%s", jstr(&r, "id"));
    char loc[96];
    snprintf(loc, sizeof(loc), "/v1/jobs/%s", id);
    assert_string_equal(r.location, loc);
    resp_free(&r);
}

// GET /v1/jobs/{id}[?wait=...]: the answer (the caller frees it).
static struct resp
get_job(struct fixture *f, const char *id, const char *query)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s%s", id, query ? query : "");
    struct resp r = get(f, path);
    expect_status(&r, 200);
    return r;
}

static void
expect_job_state(struct fixture *f, const char *id, const char *state)
{
    struct resp r = get_job(f, id, NULL);
    expect_str(&r, "job.state", state);
    resp_free(&r);
}

// ---- the seed's POST /job ----

// The seed's exact request: 201 and a Location; a real anvil-worker runs
// the Sleep job (it prints the message) and ?wait=30s sees it SUCCEEDED
// with the message as its result.
static void
test_seed_post_job_runs_on_a_real_worker(void **state)
{
    struct fixture *f = *state;
    start(f);
    struct req_opts o = { .body = SEED_BODY, .ctype = "" };
    struct resp     r = request(f, "POST", "/job", &o);
    expect_status(&r, 201);
    char id[32];
    snprintf(id, sizeof(id), "%s", jstr(&r, "id"));
    assert_true(id[0] == 'j');
    char loc[64];
    snprintf(loc, sizeof(loc), "/v1/jobs/%s", id);
    assert_string_equal(r.location, loc);
    assert_false(json_is_true(jpath(r.j, "existed")));
    resp_free(&r);

    pid_t w = harness_spawn_worker(&f->h, 1);
    assert_true(w > 0);
    r = get_job(f, id, "?wait=30s");
    expect_str(&r, "job.state", "JOB_STATE_SUCCEEDED");
    assert_true(json_is_true(jpath(r.j, "done")));
    expect_str(&r, "job.type", "Sleep");
    // The result is the message as a JSON string; the payload, JSON text,
    // stays JSON.
    expect_str(&r, "job.result", "Hello World");
    expect_str(&r, "job.payload.Message", "Hello World");
    assert_int_equal(
        json_integer_value(jpath(r.j, "job.payload.SleepTimeInSeconds")), 1);
    assert_null(jpath(r.j, "job.payload_base64"));
    resp_free(&r);
    assert_true(harness_wait_for_line(
        harness_proc_out(&f->h, w), "Hello World", WAIT_MS));
}

// Keys in any case; Data as any JSON value; an unknown key is refused by
// name; Type is required.
static void
test_seed_post_job_keys_are_case_insensitive_and_checked(void **state)
{
    struct fixture *f = *state;
    start(f);
    struct resp r = post(f, "/job", "{\"TYPE\":\"echo\",\"data\":{\"n\":1}}");
    expect_status(&r, 201);
    char id[32];
    snprintf(id, sizeof(id), "%s", jstr(&r, "id"));
    resp_free(&r);
    r = get_job(f, id, NULL);
    expect_str(&r, "job.type", "echo");
    assert_int_equal(json_integer_value(jpath(r.j, "job.payload.n")), 1);
    resp_free(&r);

    r = post(f, "/job", "{\"Type\":\"echo\",\"Priority\":5}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "Priority");
    r = post(f, "/job", "{\"Data\":\"{}\"}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "Type");
    r = post(f, "/job", "{\"Type\":7}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "Type");
    r = post(f, "/job", "{\"Type\":\"bad type!\"}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "type");
}

// ---- jobs ----

static void
test_submit_takes_snake_and_camel_case_and_both_payload_forms(void **state)
{
    struct fixture *f = *state;
    start(f);
    char id[32];
    submit(f,
        "{\"type\":\"echo\",\"payload\":{\"a\":[1,2]},\"max_attempts\":5,"
        "\"timeout_ms\":\"30000\",\"queue\":\"q1\",\"priority\":3}",
        id, sizeof(id));
    struct resp r = get_job(f, id, NULL);
    expect_str(&r, "job.state", "JOB_STATE_QUEUED");
    expect_str(&r, "job.queue", "q1");
    assert_int_equal(json_integer_value(jpath(r.j, "job.max_attempts")), 5);
    assert_int_equal(json_integer_value(jpath(r.j, "job.priority")), 3);
    expect_str(&r, "job.timeout_ms", "30000"); // 64-bit: a string
    assert_int_equal(json_integer_value(jpath(r.j, "job.payload.a.1")), 2);
    assert_null(jpath(r.j, "job.payload_base64"));
    resp_free(&r);

    submit(f,
        "{\"type\":\"echo\",\"maxAttempts\":4,\"timeoutMs\":1000,"
        "\"idempotencyKey\":\"camel-1\",\"delayMs\":\"60000\"}",
        id, sizeof(id));
    r = get_job(f, id, NULL);
    assert_int_equal(json_integer_value(jpath(r.j, "job.max_attempts")), 4);
    expect_str(&r, "job.timeout_ms", "1000");
    expect_str(&r, "job.idempotency_key", "camel-1");
    expect_str(&r, "job.state", "JOB_STATE_SCHEDULED");
    resp_free(&r);

    // Bytes that are not JSON: base64 both ways.
    submit(f, "{\"type\":\"echo\",\"payload_base64\":\"AAEC/w==\"}", id,
        sizeof(id));
    r = get_job(f, id, NULL);
    expect_str(&r, "job.payload_base64", "AAEC/w==");
    assert_null(jpath(r.j, "job.payload"));
    resp_free(&r);

    r = post(f, "/v1/jobs",
        "{\"type\":\"echo\",\"payload\":1,\"payload_base64\":\"AAEC\"}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "payload");
    r = post(f, "/v1/jobs", "{\"type\":\"echo\",\"payload_base64\":\"%%%\"}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "payload_base64");
}

static void
test_batch_applies_each_job_on_its_own(void **state)
{
    struct fixture *f = *state;
    start(f);
    struct resp r = post(f, "/v1/jobs:batch",
        "{\"jobs\":[{\"type\":\"echo\"},{\"type\":\"bad type!\"},"
        "{\"type\":\"echo\",\"payload\":{\"n\":3}}]}");
    expect_status(&r, 200);
    assert_int_equal(json_array_size(jpath(r.j, "results")), 3);
    expect_str(&r, "results.0.code", "OK");
    expect_str(&r, "results.1.code", "INVALID_ARGUMENT");
    assert_non_null(strstr(jstr(&r, "results.1.message"), "jobs[1]"));
    expect_str(&r, "results.2.code", "OK");
    char id[32];
    snprintf(id, sizeof(id), "%s", jstr(&r, "results.2.id"));
    assert_string_not_equal(id, jstr(&r, "results.0.id"));
    assert_string_equal(r.location, ""); // 200: nothing to point at
    resp_free(&r);
    r = get_job(f, id, NULL);
    assert_int_equal(json_integer_value(jpath(r.j, "job.payload.n")), 3);
    resp_free(&r);

    r = post(f, "/v1/jobs:batch", "{\"jobs\":[{\"type\":\"echo\",\"x\":1}]}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "x");
}

// Counts the jobs of every page of path (which has a limit), following
// next_cursor; checks no id comes twice.
static size_t
count_pages(struct fixture *f, const char *path)
{
    char   cursor[64] = "";
    char   seen[64][16];
    size_t n     = 0;
    int    pages = 0;
    do {
        char p[256];
        snprintf(
            p, sizeof(p), "%s%s%s", path, cursor[0] ? "&cursor=" : "", cursor);
        struct resp r = get(f, p);
        expect_status(&r, 200);
        json_t *jobs = jpath(r.j, "jobs");
        for (size_t i = 0; i < json_array_size(jobs); i++) {
            const char *id = json_string_value(
                json_object_get(json_array_get(jobs, i), "id"));
            assert_non_null(id);
            for (size_t k = 0; k < n; k++)
                assert_string_not_equal(seen[k], id);
            assert_true(n < 64);
            snprintf(seen[n++], sizeof(seen[0]), "%s", id);
        }
        snprintf(cursor, sizeof(cursor), "%s", jstr(&r, "next_cursor"));
        resp_free(&r);
        assert_true(++pages < 20);
    } while (cursor[0] != '\0');
    return n;
}

static size_t
count_jobs(struct fixture *f, const char *path)
{
    struct resp r = get(f, path);
    expect_status(&r, 200);
    size_t n = json_array_size(jpath(r.j, "jobs"));
    resp_free(&r);
    return n;
}

static void
test_list_jobs_filters_by_state_type_queue_and_pages(void **state)
{
    struct fixture *f = *state;
    start(f);
    char id[32], canceled[32];
    for (int i = 0; i < 5; i++)
        submit(f, "{\"type\":\"echo\"}", id, sizeof(id));
    submit(f, "{\"type\":\"other\",\"queue\":\"q2\"}", id, sizeof(id));
    submit(
        f, "{\"type\":\"other\",\"queue\":\"q2\"}", canceled, sizeof(canceled));
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s:cancel", canceled);
    struct resp r = post(f, path, NULL);
    expect_status(&r, 200);
    resp_free(&r);

    assert_int_equal(count_jobs(f, "/v1/jobs"), 7);
    assert_int_equal(count_jobs(f, "/v1/jobs?type=other"), 2);
    assert_int_equal(count_jobs(f, "/v1/jobs?queue=q2"), 2);
    assert_int_equal(count_jobs(f, "/v1/jobs?queue=default&type=other"), 0);
    assert_int_equal(count_jobs(f, "/v1/jobs?state=CANCELED"), 1);
    assert_int_equal(count_jobs(f, "/v1/jobs?state=JOB_STATE_QUEUED"), 6);
    assert_int_equal(count_jobs(f, "/v1/jobs?state=queued&type=echo"), 5);
    assert_int_equal(count_jobs(f, "/v1/jobs?limit=3"), 3);
    assert_int_equal(count_pages(f, "/v1/jobs?limit=2"), 7);
    assert_int_equal(count_pages(f, "/v1/jobs?limit=1&type=other"), 2);
    // Newest first.
    r = get(f, "/v1/jobs?limit=1");
    expect_status(&r, 200);
    expect_str(&r, "jobs.0.id", canceled);
    resp_free(&r);

    r = get(f, "/v1/jobs?state=NOPE");
    expect_error(&r, 400, "INVALID_ARGUMENT", "state");
    r = get(f, "/v1/jobs?limit=lots");
    expect_error(&r, 400, "INVALID_ARGUMENT", "limit");
    r = get(f, "/v1/jobs?colour=red");
    expect_error(&r, 400, "INVALID_ARGUMENT", "colour");
}

static void
test_get_wait_and_cancel_a_job(void **state)
{
    struct fixture *f = *state;
    start(f);
    char id[32];
    submit(f, "{\"type\":\"nobody-runs-this\"}", id, sizeof(id));
    struct resp r = get_job(f, id, NULL);
    expect_str(&r, "job.id", id);
    expect_str(&r, "job.state", "JOB_STATE_QUEUED");
    assert_null(jpath(r.j, "done")); // GetJob, not WaitJob
    resp_free(&r);

    // A wait that ends before the job does: done false, after the wait.
    int64_t t0 = av_mono_ms();
    r          = get_job(f, id, "?wait=300ms");
    assert_true(av_mono_ms() - t0 >= 250);
    assert_false(json_is_true(jpath(r.j, "done")));
    expect_str(&r, "job.state", "JOB_STATE_QUEUED");
    resp_free(&r);

    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s:cancel", id);
    r = post(f, path, NULL);
    expect_status(&r, 200);
    expect_str(&r, "job.state", "JOB_STATE_CANCELED");
    resp_free(&r);
    r = post(f, path, NULL); // again: no error
    expect_status(&r, 200);
    expect_str(&r, "job.state", "JOB_STATE_CANCELED");
    resp_free(&r);

    t0 = av_mono_ms();
    r  = get_job(f, id, "?wait=30s");
    assert_true(av_mono_ms() - t0 < 5000);
    assert_true(json_is_true(jpath(r.j, "done")));
    expect_str(&r, "job.state", "JOB_STATE_CANCELED");
    resp_free(&r);

    r = get(f, "/v1/jobs/j1?wait=soon");
    expect_error(&r, 400, "INVALID_ARGUMENT", "wait");
    r = post(f, "/v1/jobs/j99999:cancel", NULL);
    expect_error(&r, 404, "NOT_FOUND", "j99999");
    r = post(f, path, "{\"id\":\"j1\"}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "query");
}

// POST /v1/jobs:cancel and /v1/jobs:retry: JSON filter in, how many and
// which out; a bad filter is a 400 naming the field and changes nothing.
static void
test_cancel_and_retry_many_jobs_by_filter(void **state)
{
    struct fixture *f = *state;
    start(f);
    char a[32], b[32];
    submit(
        f, "{\"type\":\"nobody-runs-this\",\"queue\":\"idle\"}", a, sizeof(a));
    submit(
        f, "{\"type\":\"nobody-runs-this\",\"queue\":\"idle\"}", b, sizeof(b));
    static const char *const bad[][3] = {
        { "/v1/jobs:cancel", "{\"state\":\"SUCCEEDED\"}", "state" },
        { "/v1/jobs:cancel", "{}", "state is required" },
        { "/v1/jobs:cancel", "{\"state\":\"QUEUED\",\"limit\":1001}", "limit" },
        { "/v1/jobs:retry", "{\"state\":\"RUNNING\"}", "state" },
        { "/v1/jobs:retry",
            "{\"state\":\"FAILED\",\"since_ms\":\"9\",\"until_ms\":\"3\"}",
            "since_ms" },
        { "/v1/jobs:retry", "{\"state\":\"NOPE\"}", "state" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct resp r = post(f, bad[i][0], bad[i][1]);
        expect_error(&r, 400, "INVALID_ARGUMENT", bad[i][2]);
    }
    struct resp r = get_job(f, a, NULL);
    expect_str(&r, "job.state", "JOB_STATE_QUEUED");
    resp_free(&r);

    r = post(f, "/v1/jobs:cancel", "{\"state\":\"QUEUED\",\"queue\":\"idle\"}");
    expect_status(&r, 200);
    assert_int_equal(json_integer_value(jpath(r.j, "count")), 2);
    expect_str(&r, "ids.0", b);
    expect_str(&r, "ids.1", a);
    expect_str(&r, "next_cursor", "");
    resp_free(&r);
    r = post(f, "/v1/jobs:retry",
        "{\"state\":\"JOB_STATE_CANCELED\",\"queue\":\"idle\",\"limit\":1}");
    expect_status(&r, 200);
    assert_int_equal(json_integer_value(jpath(r.j, "count")), 1);
    expect_str(&r, "ids.0", b);
    expect_str(&r, "next_cursor", b);
    resp_free(&r);
    r = get_job(f, b, NULL);
    expect_str(&r, "job.state", "JOB_STATE_QUEUED");
    resp_free(&r);
}

// ---- the worker calls, over HTTP alone ----

struct lease {
    char     id[32];
    unsigned token;
};

// POST /v1/jobs:poll as worker hw-1 for up to n jobs of type hw; returns
// how many leases came, into ls.
static size_t
poll_leases(struct fixture *f, size_t n, struct lease *ls)
{
    char body[512];
    snprintf(body, sizeof(body),
        "{\"worker_id\":\"hw-1\",\"types\":[\"hw\"],\"max_jobs\":%zu,"
        "\"wait_ms\":2000,\"info\":{\"host\":\"box-7\",\"pid\":\"42\","
        "\"version\":\"t\",\"types\":[\"hw\"],\"queues\":[\"default\"],"
        "\"slots\":%zu}}",
        n, n);
    struct resp r = post(f, "/v1/jobs:poll", body);
    expect_status(&r, 200);
    json_t *leases = jpath(r.j, "leases");
    size_t  got    = json_array_size(leases);
    assert_true(got <= n);
    for (size_t i = 0; i < got; i++) {
        json_t *l = json_array_get(leases, i);
        snprintf(ls[i].id, sizeof(ls[i].id), "%s",
            json_string_value(jpath(l, "job.id")));
        ls[i].token = (unsigned) json_integer_value(jpath(l, "token"));
        assert_true(ls[i].token >= 1);
        assert_string_equal(
            json_string_value(jpath(l, "job.state")), "JOB_STATE_RUNNING");
        assert_non_null(json_string_value(jpath(l, "deadline_ms")));
    }
    resp_free(&r);
    return got;
}

// Polls until n leases are held (a job may become ready a moment later).
static void
poll_exactly(struct fixture *f, size_t n, struct lease *ls)
{
    size_t  have     = 0;
    int64_t deadline = av_mono_ms() + WAIT_MS;
    while (have < n && av_mono_ms() < deadline)
        have += poll_leases(f, n - have, ls + have);
    assert_int_equal(have, n);
}

static struct lease *
lease_of(struct lease *ls, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ls[i].id, id) == 0)
            return &ls[i];
    }
    fail_msg("no lease of %s", id);
    return NULL;
}

static struct resp
outcome(struct fixture *f, const struct lease *l, const char *verb,
    const char *fields)
{
    char path[96], body[256];
    snprintf(path, sizeof(path), "/v1/jobs/%s:%s", l->id, verb);
    snprintf(body, sizeof(body), "{\"token\":%u%s%s}", l->token,
        fields[0] ? "," : "", fields);
    return post(f, path, body);
}

static void
test_worker_calls_drive_jobs_to_succeeded_and_failed(void **state)
{
    struct fixture *f = *state;
    start(f);
    char a[32], b[32];
    submit(f, "{\"type\":\"hw\",\"payload\":{\"n\":1}}", a, sizeof(a));
    submit(f, "{\"type\":\"hw\",\"payload\":{\"n\":2}}", b, sizeof(b));
    struct lease ls[2];
    poll_exactly(f, 2, ls);

    char hb[256];
    snprintf(hb, sizeof(hb),
        "{\"worker_id\":\"hw-1\",\"leases\":[{\"job_id\":\"%s\",\"token\":%u},"
        "{\"jobId\":\"%s\",\"token\":%u}]}",
        ls[0].id, ls[0].token, ls[1].id, ls[1].token);
    struct resp r = post(f, "/v1/jobs:heartbeat", hb);
    expect_status(&r, 200);
    assert_int_equal(json_array_size(jpath(r.j, "lost")), 0);
    assert_int_equal(json_array_size(jpath(r.j, "canceled")), 0);
    assert_true(strtoll(jstr(&r, "deadline_ms"), NULL, 10) > 0);
    resp_free(&r);

    r = outcome(f, lease_of(ls, 2, a), "complete", "\"result\":{\"ok\":true}");
    expect_status(&r, 200);
    assert_int_equal(json_object_size(r.j), 0);
    resp_free(&r);
    r = outcome(
        f, lease_of(ls, 2, b), "fail", "\"error\":\"boom\",\"no_retry\":true");
    expect_status(&r, 200);
    expect_str(&r, "state", "JOB_STATE_FAILED");
    resp_free(&r);

    r = get_job(f, a, NULL);
    expect_str(&r, "job.state", "JOB_STATE_SUCCEEDED");
    assert_true(json_is_true(jpath(r.j, "job.result.ok")));
    expect_str(&r, "job.worker_id", "hw-1");
    resp_free(&r);
    r = get_job(f, b, NULL);
    expect_str(&r, "job.state", "JOB_STATE_FAILED");
    expect_str(&r, "job.error", "boom");
    resp_free(&r);

    // A resend of the same outcome is harmless (anvil.proto, Report); the
    // job is as it was.
    r = outcome(f, lease_of(ls, 2, a), "complete", "\"result\":{\"ok\":true}");
    expect_status(&r, 200);
    resp_free(&r);
    r = get_job(f, a, NULL);
    expect_str(&r, "job.state", "JOB_STATE_SUCCEEDED");
    assert_true(json_is_true(jpath(r.j, "job.result.ok")));
    resp_free(&r);
    // Failing the job that succeeded is refused: that lease is over.
    r = outcome(f, lease_of(ls, 2, a), "fail", "\"error\":\"late\"");
    expect_error(&r, 412, "FAILED_PRECONDITION", a);

    r = get(f, "/v1/workers");
    expect_status(&r, 200);
    expect_str(&r, "workers.0.name", "hw-1");
    expect_str(&r, "workers.0.info.host", "box-7");
    assert_false(json_is_true(jpath(r.j, "workers.0.lost")));
    resp_free(&r);
}

static void
test_report_and_stale_tokens(void **state)
{
    struct fixture *f = *state;
    start(f);
    char c[32], d[32], e[32];
    submit(f, "{\"type\":\"hw\"}", c, sizeof(c));
    submit(f, "{\"type\":\"hw\"}", d, sizeof(d));
    submit(f, "{\"type\":\"hw\",\"max_attempts\":2}", e, sizeof(e));
    struct lease ls[3];
    poll_exactly(f, 3, ls);
    struct lease *lc = lease_of(ls, 3, c), *ld = lease_of(ls, 3, d);
    struct lease *le = lease_of(ls, 3, e);

    // A wrong token on a running job: refused, the job untouched.
    struct lease wrong = *lc;
    wrong.token++;
    struct resp r = outcome(f, &wrong, "complete", "");
    expect_error(&r, 412, "FAILED_PRECONDITION", c);
    expect_job_state(f, c, "JOB_STATE_RUNNING");

    char body[512];
    snprintf(body, sizeof(body),
        "{\"outcomes\":[{\"job_id\":\"%s\",\"token\":%u,\"result\":{\"r\":1}},"
        "{\"job_id\":\"%s\",\"token\":%u,\"failed\":true,\"error\":\"nope\","
        "\"no_retry\":true},{\"job_id\":\"%s\",\"token\":%u,\"failed\":true,"
        "\"error\":\"again\"},{\"job_id\":\"j99999\",\"token\":1}]}",
        lc->id, lc->token, ld->id, ld->token, le->id, le->token);
    r = post(f, "/v1/report", body);
    expect_status(&r, 200);
    assert_int_equal(json_array_size(jpath(r.j, "results")), 4);
    expect_str(&r, "results.0.code", "OK");
    expect_str(&r, "results.1.code", "OK");
    expect_str(&r, "results.1.state", "JOB_STATE_FAILED");
    expect_str(&r, "results.2.code", "OK");
    expect_str(&r, "results.2.state", "JOB_STATE_SCHEDULED"); // will retry
    assert_true(strtoll(jstr(&r, "results.2.retry_at_ms"), NULL, 10) > 0);
    assert_string_not_equal(jstr(&r, "results.3.code"), "OK");
    assert_non_null(strstr(jstr(&r, "results.3.message"), "outcomes[3]"));
    resp_free(&r);

    r = get_job(f, c, NULL);
    expect_str(&r, "job.state", "JOB_STATE_SUCCEEDED");
    assert_int_equal(json_integer_value(jpath(r.j, "job.result.r")), 1);
    resp_free(&r);
    r = get_job(f, d, NULL);
    expect_str(&r, "job.state", "JOB_STATE_FAILED");
    expect_str(&r, "job.error", "nope");
    resp_free(&r);
    r = get_job(f, e, NULL);
    expect_str(&r, "job.state", "JOB_STATE_SCHEDULED");
    expect_str(&r, "job.error", "again");
    resp_free(&r);

    // Cancelling a finished job: refused.
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s:cancel", c);
    r = post(f, path, NULL);
    expect_error(&r, 412, "FAILED_PRECONDITION", "SUCCEEDED");
}

// ---- workflows ----

static void
submit_workflow(struct fixture *f, const char *def, char *id, size_t len)
{
    struct resp r = post(f, "/v1/workflows", def);
    expect_status(&r, 201);
    snprintf(id, len, "%s", jstr(&r, "id"));
    assert_true(id[0] == 'w');
    char loc[96];
    snprintf(loc, sizeof(loc), "/v1/workflows/%s", id);
    assert_string_equal(r.location, loc);
    resp_free(&r);
}

static size_t
count_workflows(struct fixture *f, const char *path)
{
    struct resp r = get(f, path);
    expect_status(&r, 200);
    size_t n = json_array_size(jpath(r.j, "workflows"));
    resp_free(&r);
    return n;
}

static void
test_workflows_submit_get_list_wait_and_cancel(void **state)
{
    struct fixture *f = *state;
    start(f);
    char chain[32], stuck[32], path[128];
    submit_workflow(f, CHAIN_JSON, chain, sizeof(chain));
    assert_true(harness_spawn_worker(&f->h, 2) > 0);
    snprintf(path, sizeof(path), "/v1/workflows/%s?wait=30s", chain);
    struct resp r = get(f, path);
    expect_status(&r, 200);
    assert_true(json_is_true(jpath(r.j, "done")));
    expect_str(&r, "workflow.state", "WORKFLOW_STATE_SUCCEEDED");
    expect_str(&r, "workflow.name", "chain");
    assert_int_equal(json_integer_value(jpath(r.j, "workflow.steps_total")), 3);
    assert_int_equal(
        json_integer_value(jpath(r.j, "workflow.steps_succeeded")), 3);
    expect_str(&r, "workflow.steps.1.step", "resize");
    expect_str(&r, "workflow.steps.1.after.0", "fetch");
    // echo returns its payload.
    assert_int_equal(
        json_integer_value(jpath(r.j, "workflow.steps.1.result.width")), 128);
    resp_free(&r);

    submit_workflow(f,
        "{\"name\":\"stuck\",\"steps\":[{\"name\":\"a\",\"type\":\"nobody\"},"
        "{\"name\":\"b\",\"type\":\"echo\",\"after\":[\"a\"]}]}",
        stuck, sizeof(stuck));
    snprintf(path, sizeof(path), "/v1/workflows/%s", stuck);
    r = get(f, path);
    expect_status(&r, 200);
    expect_str(&r, "workflow.state", "WORKFLOW_STATE_RUNNING");
    expect_str(&r, "workflow.steps.1.state", "JOB_STATE_PENDING");
    resp_free(&r);
    assert_int_equal(count_workflows(f, "/v1/workflows"), 2);
    assert_int_equal(count_workflows(f, "/v1/workflows?state=SUCCEEDED"), 1);
    assert_int_equal(count_workflows(f, "/v1/workflows?name=stuck"), 1);
    assert_int_equal(count_workflows(f, "/v1/workflows?limit=1"), 1);

    snprintf(path, sizeof(path), "/v1/workflows/%s:cancel", stuck);
    r = post(f, path, NULL);
    expect_status(&r, 200);
    expect_str(&r, "workflow.state", "WORKFLOW_STATE_CANCELED");
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/workflows/%s?wait=5s", stuck);
    r = get(f, path);
    expect_status(&r, 200);
    assert_true(json_is_true(jpath(r.j, "done")));
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/workflows/%s:cancel", chain);
    r = post(f, path, NULL);
    expect_error(&r, 412, "FAILED_PRECONDITION", NULL);

    r = post(f, "/v1/workflows",
        "{\"name\":\"loop\",\"steps\":[{\"name\":\"a\",\"type\":\"echo\","
        "\"after\":[\"b\"]},{\"name\":\"b\",\"type\":\"echo\",\"after\":"
        "[\"a\"]}]}");
    expect_error(&r, 400, "INVALID_ARGUMENT", NULL);
    r = post(f, "/v1/workflows", "{\"name\":\"x\",\"stepz\":[]}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "stepz");
    r = get(f, "/v1/workflows/w99999");
    expect_error(&r, 404, "NOT_FOUND", "w99999");
}

// A step's concurrency key and limit: taken from the definition, shown
// on its job, and refused with the step named when bad.
static void
test_workflow_steps_take_a_concurrency_key(void **state)
{
    struct fixture *f = *state;
    start(f);
    char id[32], path[96];
    submit_workflow(f,
        "{\"name\":\"keyed\",\"steps\":[{\"name\":\"a\",\"type\":\"nobody\","
        "\"concurrency_key\":\"tenant-7\",\"concurrency_limit\":2},"
        "{\"name\":\"b\",\"type\":\"nobody\",\"after\":[\"a\"]}]}",
        id, sizeof(id));
    snprintf(path, sizeof(path), "/v1/workflows/%s", id);
    struct resp r = get(f, path);
    expect_status(&r, 200);
    expect_str(&r, "workflow.steps.0.concurrency_key", "tenant-7");
    assert_int_equal(
        json_integer_value(jpath(r.j, "workflow.steps.0.concurrency_limit")),
        2);
    expect_str(&r, "workflow.steps.1.concurrency_key", "");
    resp_free(&r);

    r = post(f, "/v1/workflows",
        "{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"type\":\"t\","
        "\"concurrency_key\":\"k\"}]}");
    expect_error(&r, 400, "INVALID_ARGUMENT",
        "step 'a': concurrency_limit 0 is outside 1..1000000");
    r = post(f, "/v1/workflows",
        "{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"type\":\"t\","
        "\"concurrency_limit\":2}]}");
    expect_error(&r, 400, "INVALID_ARGUMENT",
        "step 'a': concurrency_limit 2 needs a concurrency_key");
    r = post(f, "/v1/workflows",
        "{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"type\":\"t\","
        "\"concurrency_key\":\"a b\",\"concurrency_limit\":2}]}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "step 'a': concurrency_key");
    r = post(f, "/v1/workflows",
        "{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"type\":\"t\","
        "\"concurrency_key\":\"k\",\"concurrency_limit\":\"2\"}]}");
    expect_error(&r, 400, "INVALID_ARGUMENT",
        "steps[0] (\"a\"): \"concurrency_limit\" must be an integer");
}

// ---- health, readiness, workers ----

static void
test_health_healthz_readyz_and_workers(void **state)
{
    struct fixture *f = *state;
    start(f);
    struct resp r = get(f, "/v1/health");
    expect_status(&r, 200);
    expect_str(&r, "version", ANVIL_VERSION);
    assert_true(strtoll(jstr(&r, "uptime_ms"), NULL, 10) >= 0);
    expect_str(&r, "jobs_total", "0");
    resp_free(&r);

    r = get(f, "/healthz");
    expect_status(&r, 200);
    assert_non_null(strstr(r.ctype, "text/plain"));
    assert_string_equal(r.body, "ok\n");
    resp_free(&r);
    r = get(f, "/readyz");
    expect_status(&r, 200);
    assert_string_equal(r.body, "ready\n");
    resp_free(&r);

    r = get(f, "/v1/workers");
    expect_status(&r, 200);
    assert_int_equal(json_array_size(jpath(r.j, "workers")), 0);
    resp_free(&r);
}

// GET /metrics: Prometheus text, counting this endpoint's own rpcs.
static void
test_metrics_count_http_requests(void **state)
{
    struct fixture *f = *state;
    start(f);
    char id[32];
    submit(f, "{\"type\":\"echo\"}", id, sizeof(id));
    struct resp r = get(f, "/metrics");
    expect_status(&r, 200);
    assert_non_null(strstr(r.ctype, "text/plain"));
    assert_non_null(strstr(r.body, "anvil_jobs_submitted_total"));
    assert_non_null(strstr(r.body, "anvil_rpc_requests_total{"));
    assert_non_null(strstr(r.body, "transport=\"http\""));
    assert_non_null(strstr(r.body, "method=\"SubmitJob\""));
    resp_free(&r);
    r = post(f, "/metrics", NULL);
    assert_string_equal(r.allow, "GET");
    expect_error(&r, 405, "UNIMPLEMENTED", NULL);
}

// A producer submitting over its own connection until told to stop.
struct producer {
    struct fixture *f;
    pthread_t       t;
    atomic_bool     stop;
    atomic_int      ok;
};

static void *
producer_run(void *arg)
{
    struct producer *p = arg;
    CURL            *c = curl_easy_init();
    struct req_opts o = { .body = "{\"type\":\"echo\",\"payload\":{\"n\":1}}" };
    while (c != NULL && !atomic_load(&p->stop)) {
        struct resp r = request_on(p->f, c, "POST", "/v1/jobs", &o);
        if (r.status == 201)
            atomic_fetch_add(&p->ok, 1);
        resp_free(&r);
    }
    curl_easy_cleanup(c);
    return NULL;
}

// True when `promtool check metrics` accepts text.
static bool
promtool_accepts(struct fixture *f, const char *text)
{
    char path[256], cmd[400];
    harness_path(&f->h, "scrape.txt", path, sizeof(path));
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    fputs(text, out);
    fclose(out);
    snprintf(cmd, sizeof(cmd), "promtool check metrics <%s >&2", path);
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

// Scrapes taken while four clients submit and a worker runs the jobs pass
// promtool, and count what the load did.
static void
test_metrics_under_load_pass_promtool(void **state)
{
    struct fixture *f = *state;
    start(f);
    pid_t w = harness_spawn_worker(&f->h, 4);
    assert_true(w > 0);
    struct producer ps[4];
    for (int i = 0; i < 4; i++) {
        ps[i].f = f;
        atomic_store(&ps[i].stop, false);
        atomic_store(&ps[i].ok, 0);
        assert_int_equal(
            pthread_create(&ps[i].t, NULL, producer_run, &ps[i]), 0);
    }
    for (int k = 0; k < 3; k++) {
        struct resp r = get(f, "/metrics");
        expect_status(&r, 200);
        if (!promtool_accepts(f, r.body))
            fail_msg("promtool refused scrape %d under load", k);
        resp_free(&r);
    }
    int submitted = 0;
    for (int i = 0; i < 4; i++) {
        atomic_store(&ps[i].stop, true);
        pthread_join(ps[i].t, NULL);
        submitted += atomic_load(&ps[i].ok);
    }
    assert_true(submitted > 0);
    struct resp r = get(f, "/metrics");
    expect_status(&r, 200);
    assert_true(promtool_accepts(f, r.body));
    char want[128];
    snprintf(want, sizeof(want),
        "anvil_jobs_submitted_total{queue=\"default\",type=\"echo\"} %d",
        submitted);
    if (strstr(r.body, want) == NULL)
        fail_msg("no '%s' in the scrape", want);
    assert_non_null(strstr(r.body, "anvil_commit_batch_size_bucket"));
    resp_free(&r);
}

// ---- the OpenAPI document against the route table ----

static void
lower(const char *in, char *out, size_t len)
{
    size_t i = 0;
    for (; in[i] != '\0' && i + 1 < len; i++)
        out[i] = (char) (in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]);
    out[i] = '\0';
}

static bool
route_exists(const struct route *rs, size_t n, const char *pattern,
    const char *verb_lower)
{
    char v[8];
    for (size_t i = 0; i < n; i++) {
        lower(rs[i].verb, v, sizeof(v));
        if (strcmp(rs[i].pattern, pattern) == 0 && strcmp(v, verb_lower) == 0)
            return true;
    }
    return false;
}

static void
test_openapi_paths_match_the_route_table(void **state)
{
    struct fixture *f = *state;
    start(f);
    struct resp r = get(f, "/v1/openapi.json");
    expect_status(&r, 200);
    expect_str(&r, "openapi", "3.0.3");
    expect_str(&r, "info.version", ANVIL_VERSION);
    json_t             *paths = jpath(r.j, "paths");
    size_t              n;
    const struct route *rs = routes_all(&n);
    assert_true(n > 0);
    // Every route is documented ...
    for (size_t i = 0; i < n; i++) {
        char v[8];
        lower(rs[i].verb, v, sizeof(v));
        json_t *op = json_object_get(json_object_get(paths, rs[i].pattern), v);
        if (op == NULL)
            print_error("route %s %s is not in the document\n", rs[i].verb,
                rs[i].pattern);
        assert_non_null(op);
        assert_non_null(json_object_get(op, "responses"));
    }
    // ... and every documented operation is a route.
    const char *pattern;
    json_t     *item;
    json_object_foreach(paths, pattern, item)
    {
        const char *verb;
        json_t     *op;
        json_object_foreach(item, verb, op)
        {
            if (!route_exists(rs, n, pattern, verb))
                print_error(
                    "%s %s is documented but not routed\n", verb, pattern);
            assert_true(route_exists(rs, n, pattern, verb));
        }
    }
    resp_free(&r);
    // Every rpc of the service is reachable, and every routed rpc exists.
    const ProtobufCServiceDescriptor *sd = &anvil__v1__anvil__descriptor;
    for (unsigned m = 0; m < sd->n_methods; m++) {
        bool found = false;
        for (size_t i = 0; i < n; i++) {
            found = found
                || (rs[i].rpc && strcmp(rs[i].rpc, sd->methods[m].name) == 0)
                || (rs[i].wait_rpc
                    && strcmp(rs[i].wait_rpc, sd->methods[m].name) == 0);
        }
        if (!found)
            print_error("rpc %s has no route\n", sd->methods[m].name);
        assert_true(found);
    }
    for (size_t i = 0; i < n; i++) {
        if (rs[i].kind != ROUTE_RPC)
            continue;
        assert_non_null(
            protobuf_c_service_descriptor_get_method_by_name(sd, rs[i].rpc));
        if (rs[i].wait_rpc != NULL)
            assert_non_null(protobuf_c_service_descriptor_get_method_by_name(
                sd, rs[i].wait_rpc));
    }
}

// ---- tokens and roles ----

static void
read_admin(struct fixture *f)
{
    char *text = harness_read_file(f->token_file, NULL);
    assert_non_null(text);
    text[strcspn(text, "\r\n")] = '\0';
    snprintf(f->token, sizeof(f->token), "%s", text);
    free(text);
}

// As the admin, a new token of role; its secret into secret, its id into
// id.
static void
create_token(struct fixture *f, const char *role, const char *name,
    char *secret, size_t slen, char *id, size_t idlen)
{
    char body[160];
    snprintf(
        body, sizeof(body), "{\"role\":\"%s\",\"name\":\"%s\"}", role, name);
    struct resp r = post(f, "/v1/tokens", body);
    expect_status(&r, 200);
    snprintf(secret, slen, "%s", jstr(&r, "secret"));
    snprintf(id, idlen, "%s", jstr(&r, "token.id"));
    expect_str(&r, "token.name", name);
    resp_free(&r);
}

static void
test_tokens_roles_and_401_403(void **state)
{
    struct fixture *f           = *state;
    f->cfg.auth                 = SERVER_AUTH_ON;
    f->cfg.bootstrap_token_file = "set by start()";
    start(f);
    read_admin(f);
    struct req_opts none = { .token = "" };
    struct resp     r    = request(f, "GET", "/v1/jobs", &none);
    expect_status(&r, 401);
    assert_non_null(strstr(r.www_auth, "Bearer"));
    expect_error(&r, 401, "UNAUTHENTICATED", NULL);
    struct req_opts bad = { .token = "not-a-token" };
    r                   = request(f, "GET", "/v1/health", &bad);
    expect_error(&r, 401, "UNAUTHENTICATED", NULL);
    // What a load balancer probes needs no token.
    r = request(f, "GET", "/healthz", &none);
    expect_status(&r, 200);
    resp_free(&r);
    r = request(f, "GET", "/readyz", &none);
    expect_status(&r, 200);
    resp_free(&r);
    r = request(f, "GET", "/metrics", &none); // not public_metrics
    expect_error(&r, 401, "UNAUTHENTICATED", NULL);
    r = get(f, "/metrics");
    expect_status(&r, 200);
    resp_free(&r);

    char reader[160], rid[32], client[160], cid[32];
    create_token(
        f, "ROLE_READER", "r1", reader, sizeof(reader), rid, sizeof(rid));
    create_token(f, "client", "c1", client, sizeof(client), cid, sizeof(cid));
    r = post(f, "/v1/tokens", "{\"role\":\"ROLE_NOPE\"}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "role");

    struct req_opts as_reader = { .token = reader };
    r                         = request(f, "GET", "/v1/jobs", &as_reader);
    expect_status(&r, 200);
    resp_free(&r);
    as_reader.body = "{\"type\":\"echo\"}";
    r              = request(f, "POST", "/v1/jobs", &as_reader);
    expect_error(&r, 403, "PERMISSION_DENIED", NULL);
    struct req_opts as_client = { .token = client, .body = "{\"type\":\"e\"}" };
    r                         = request(f, "POST", "/v1/jobs", &as_client);
    expect_status(&r, 201);
    resp_free(&r);
    as_client.body = NULL;
    r              = request(f, "GET", "/v1/tokens", &as_client);
    expect_error(&r, 403, "PERMISSION_DENIED", NULL);

    r = get(f, "/v1/tokens");
    expect_status(&r, 200);
    assert_true(json_array_size(jpath(r.j, "tokens")) >= 3);
    resp_free(&r);
    char path[96];
    snprintf(path, sizeof(path), "/v1/tokens/%s:revoke", rid);
    r = post(f, path, NULL);
    expect_status(&r, 200);
    expect_str(&r, "token.id", rid);
    assert_string_not_equal(jstr(&r, "token.revoked_at_ms"), "0");
    resp_free(&r);
    as_reader.body = NULL;
    r              = request(f, "GET", "/v1/jobs", &as_reader);
    expect_error(&r, 401, "UNAUTHENTICATED", NULL);
    r = post(f, "/v1/tokens/t99999:revoke", NULL);
    expect_error(&r, 404, "NOT_FOUND", NULL);
}

static void
test_public_metrics_need_no_token(void **state)
{
    struct fixture *f           = *state;
    f->cfg.auth                 = SERVER_AUTH_ON;
    f->cfg.bootstrap_token_file = "set by start()";
    f->cfg.public_metrics       = true;
    start(f);
    struct resp r = get(f, "/metrics");
    expect_status(&r, 200);
    assert_non_null(strstr(r.body, "anvil_"));
    resp_free(&r);
    r = get(f, "/v1/health"); // the rest still wants one
    expect_error(&r, 401, "UNAUTHENTICATED", NULL);
}

// ---- idempotent resends ----

static void
test_idempotency_key_and_request_id_make_a_resend_return_the_same_id(
    void **state)
{
    struct fixture *f = *state;
    start(f);
    struct req_opts o = { .body = "{\"type\":\"echo\"}",
        .header                 = "Idempotency-Key: order-42" };
    struct resp     r = request(f, "POST", "/v1/jobs", &o);
    expect_status(&r, 201);
    char first[32];
    snprintf(first, sizeof(first), "%s", jstr(&r, "id"));
    resp_free(&r);
    r = request(f, "POST", "/v1/jobs", &o);
    expect_status(&r, 201);
    expect_str(&r, "id", first);
    resp_free(&r);
    o.header = "Idempotency-Key: order-43";
    r        = request(f, "POST", "/v1/jobs", &o);
    expect_status(&r, 201);
    assert_string_not_equal(jstr(&r, "id"), first);
    resp_free(&r);

    // request_id in the body, as a number or a string.
    r = post(f, "/v1/jobs", "{\"type\":\"echo\",\"request_id\":777}");
    expect_status(&r, 201);
    snprintf(first, sizeof(first), "%s", jstr(&r, "id"));
    resp_free(&r);
    r = post(f, "/v1/jobs", "{\"type\":\"echo\",\"request_id\":\"777\"}");
    expect_status(&r, 201);
    expect_str(&r, "id", first);
    resp_free(&r);
    r = post(f, "/v1/jobs", "{\"type\":\"echo\",\"request_id\":-1}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "request_id");

    // A workflow resend too.
    o.body   = CHAIN_JSON;
    o.header = "Idempotency-Key: wf-1";
    r        = request(f, "POST", "/v1/workflows", &o);
    expect_status(&r, 201);
    snprintf(first, sizeof(first), "%s", jstr(&r, "id"));
    resp_free(&r);
    r = request(f, "POST", "/v1/workflows", &o);
    expect_status(&r, 201);
    expect_str(&r, "id", first);
    resp_free(&r);
    // The idempotency_key field: the second submit says it existed (200).
    const char *keyed = "{\"type\":\"echo\",\"idempotency_key\":\"k-9\"}";
    r                 = post(f, "/v1/jobs", keyed);
    expect_status(&r, 201);
    snprintf(first, sizeof(first), "%s", jstr(&r, "id"));
    resp_free(&r);
    r = post(f, "/v1/jobs", keyed);
    expect_status(&r, 200);
    expect_str(&r, "id", first);
    assert_true(json_is_true(jpath(r.j, "existed")));
    resp_free(&r);
}

// ---- error statuses ----

static void
test_400_404_405_415_answers(void **state)
{
    struct fixture *f = *state;
    start(f);
    struct resp r = post(f, "/v1/jobs", "{\"type\":");
    expect_error(&r, 400, "INVALID_ARGUMENT", "not valid JSON");
    r = post(f, "/v1/jobs", "[1,2]");
    expect_error(&r, 400, "INVALID_ARGUMENT", "object");
    r = post(f, "/v1/jobs", "{\"type\":\"echo\",\"colour\":\"red\"}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "colour");
    r = post(f, "/v1/jobs", "{\"type\":\"echo\",\"priority\":\"high\"}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "priority");
    r = post(f, "/v1/jobs", "{\"type\":\"echo\",\"max_attempts\":-1}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "max_attempts");
    r = get(f, "/v1/jobs?state=JOB_STATE_BORED");
    expect_error(&r, 400, "INVALID_ARGUMENT", "state");
    r = post(f, "/v1/tokens", "{\"role\":\"ROLE_KING\"}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "role");
    r = post(f, "/v1/jobs/j1:complete", "{\"token\":\"one\"}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "token");
    r = get(f, "/v1/jobs?cursor=not-a-cursor");
    expect_error(&r, 400, "INVALID_ARGUMENT", "cursor");
    r = post(f, "/v1/jobs?type=echo", "{\"type\":\"echo\"}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "query");

    // An id that is no job's: not found, whatever its form.
    r = get(f, "/v1/jobs/j424242");
    expect_error(&r, 404, "NOT_FOUND", "j424242");
    r = get(f, "/v1/jobs/zzz");
    expect_error(&r, 404, "NOT_FOUND", "zzz");
    r = get(f, "/v1/nope");
    expect_error(&r, 404, "NOT_FOUND", "route");
    // Outside the API, GET and HEAD are the dashboard's; other verbs 405.
    struct req_opts po = { .body = "{}" };
    r                  = request(f, "POST", "/nope", &po);
    assert_string_equal(r.allow, "GET, HEAD");
    expect_error(&r, 405, "UNIMPLEMENTED", "GET or HEAD");
    r = get(f, "/v1/jobs/j1/extra");
    expect_error(&r, 404, "NOT_FOUND", "route");
    r = post(f, "/v1/jobs:frobnicate", NULL);
    expect_error(&r, 404, "NOT_FOUND", "route");

    struct req_opts o = { 0 };
    r                 = request(f, "DELETE", "/v1/jobs/j1", &o);
    assert_string_equal(r.allow, "GET");
    expect_error(&r, 405, "UNIMPLEMENTED", "GET");
    r = get(f, "/v1/jobs/j1:cancel");
    assert_string_equal(r.allow, "POST");
    expect_error(&r, 405, "UNIMPLEMENTED", "POST");
    // Both verbs of /v1/jobs are allowed ones.
    r = request(f, "PUT", "/v1/jobs", &o);
    assert_non_null(strstr(r.allow, "GET"));
    assert_non_null(strstr(r.allow, "POST"));
    expect_error(&r, 405, "UNIMPLEMENTED", NULL);

    o.body  = "{\"type\":\"echo\"}";
    o.ctype = "text/plain";
    r       = request(f, "POST", "/v1/jobs", &o);
    expect_error(&r, 415, "INVALID_ARGUMENT", "application/json");
    o.body = CHAIN_JSON;
    r      = request(f, "POST", "/v1/workflows", &o);
    expect_error(&r, 415, "INVALID_ARGUMENT", "application/json");
    o.ctype = "application/json; charset=utf-8";
    r       = request(f, "POST", "/v1/workflows", &o);
    expect_status(&r, 201);
    resp_free(&r);
}

static void
test_413_for_a_body_over_the_limit(void **state)
{
    struct fixture *f  = *state;
    f->cfg.max_payload = 1024; // bodies up to 2 x 1024 + 64 KiB
    start(f);
    size_t n    = 200 * 1024;
    char  *body = malloc(n + 64);
    assert_non_null(body);
    int k = snprintf(body, 64, "{\"type\":\"echo\",\"payload\":\"");
    memset(body + k, 'x', n);
    strcpy(body + k + n, "\"}");
    struct resp r = post(f, "/v1/jobs", body);
    expect_error(&r, 413, "RESOURCE_EXHAUSTED", "limit");
    // A body within the limit whose payload is over max_payload.
    strcpy(body + k + 2000, "\"}");
    r = post(f, "/v1/jobs", body);
    expect_error(&r, 400, "INVALID_ARGUMENT", "payload");
    free(body);
    // The server is fine.
    char id[32];
    submit(f, "{\"type\":\"echo\"}", id, sizeof(id));
}

// A long-poll on its own connection, on a thread.
struct waiter {
    struct fixture *f;
    char            path[96];
    pthread_t       t;
    struct resp     r;
    atomic_bool     done;
};

static void *
waiter_run(void *arg)
{
    struct waiter  *w = arg;
    CURL           *c = curl_easy_init();
    struct req_opts o = { 0 };
    if (c != NULL)
        w->r = request_on(w->f, c, "GET", w->path, &o);
    curl_easy_cleanup(c);
    atomic_store(&w->done, true);
    return NULL;
}

static void
waiter_start(struct waiter *w)
{
    memset(&w->r, 0, sizeof(w->r));
    atomic_store(&w->done, false);
    assert_int_equal(pthread_create(&w->t, NULL, waiter_run, w), 0);
}

// The number of WaitJob long-polls parked in the engine (GET /metrics).
static bool
one_wait_parked(void *arg)
{
    struct fixture *f = arg;
    CURL           *c = curl_easy_init(); // not f->curl: any thread
    struct req_opts o = { 0 };
    struct resp     r = request_on(f, c, "GET", "/metrics", &o);
    curl_easy_cleanup(c);
    bool parked = r.status == 200
        && strstr(r.body, "anvil_long_polls_parked{kind=\"wait_job\"} 1\n")
            != NULL;
    resp_free(&r);
    return parked;
}

// Parks GET /v1/jobs/{id}?wait=30s on its own connection, on a thread.
static void
park_a_wait(struct fixture *f, struct waiter *w, const char *id)
{
    w->f = f;
    snprintf(w->path, sizeof(w->path), "/v1/jobs/%s?wait=30s", id);
    waiter_start(w);
    assert_true(harness_wait_for(one_wait_parked, f, WAIT_MS));
}

// max_waits 1: while one long-poll is parked, another is refused 429.
static void
test_429_when_the_long_polls_are_all_taken(void **state)
{
    struct fixture *f = *state;
    f->cfg.max_waits  = 1;
    start(f);
    char id[32];
    submit(f, "{\"type\":\"nobody-runs-this\"}", id, sizeof(id));
    struct waiter w;
    park_a_wait(f, &w, id);
    char probe[96];
    snprintf(probe, sizeof(probe), "/v1/jobs/%s?wait=1s", id);
    struct resp r = get(f, probe);
    expect_error(&r, 429, "RESOURCE_EXHAUSTED", NULL);
    r = post(f, "/v1/jobs:poll",
        "{\"worker_id\":\"w\",\"types\":[\"x\"],\"wait_ms\":1000}");
    expect_error(&r, 429, "RESOURCE_EXHAUSTED", NULL);
    r = get_job(f, id, NULL); // no wait: served
    resp_free(&r);
    // Cancelling the job ends the parked wait; the slot is free again.
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s:cancel", id);
    r = post(f, path, NULL);
    expect_status(&r, 200);
    resp_free(&r);
    pthread_join(w.t, NULL);
    expect_status(&w.r, 200);
    expect_str(&w.r, "job.state", "JOB_STATE_CANCELED");
    resp_free(&w.r);
    r = get_job(f, id, "?wait=1s");
    expect_str(&r, "job.state", "JOB_STATE_CANCELED");
    resp_free(&r);
}

// A long-poll parked when the server stops ends at once: a 503 or, when
// the listener closes first, the connection; never the whole wait.
static void
test_a_parked_wait_ends_when_the_server_stops(void **state)
{
    struct fixture *f = *state;
    start(f);
    char id[32];
    submit(f, "{\"type\":\"nobody-runs-this\"}", id, sizeof(id));
    struct waiter w;
    park_a_wait(f, &w, id);
    int64_t t0 = av_mono_ms();
    harness_stop_server(&f->h);
    pthread_join(w.t, NULL);
    int64_t took = av_mono_ms() - t0;
    print_message("parked wait at stop: curl %d, status %ld, body %s\n",
        (int) w.r.cc, w.r.status, w.r.body ? w.r.body : "");
    assert_true(took < 5000);
    if (w.r.cc == CURLE_OK)
        expect_error(&w.r, 503, "UNAVAILABLE", "stopping");
    else
        resp_free(&w.r);
}

static atomic_int sync_fail; // fdatasync calls still to fail

static int
fdatasync_hook(int fd)
{
    (void) fd;
    return atomic_fetch_sub(&sync_fail, 1) > 0 ? -1 : 0;
}

// A server whose storage failed for good answers 503, and so does /readyz.
static void
test_503_once_the_storage_failed(void **state)
{
    struct fixture *f  = *state;
    f->cfg.synchronous = 2; // FULL: the sync is deferred, and hookable
    atomic_store(&sync_fail, 0);
    store_hook_fdatasync = fdatasync_hook;
    start(f);
    char id[32];
    submit(f, "{\"type\":\"echo\"}", id, sizeof(id));
    atomic_store(&sync_fail, 1);
    struct resp r = post(f, "/v1/jobs", "{\"type\":\"echo\"}");
    if (r.status == 201 && atomic_load(&sync_fail) > 0) {
        resp_free(&r);
        skip(); // this file system cannot defer the sync
    }
    expect_error(&r, 503, "UNAVAILABLE", NULL);
    r = get(f, "/readyz");
    expect_error(&r, 503, "UNAVAILABLE", NULL);
    r = post(f, "/v1/jobs", "{\"type\":\"echo\"}");
    expect_error(&r, 503, "UNAVAILABLE", NULL);
    r = get(f, "/healthz"); // the process is up
    expect_status(&r, 200);
    resp_free(&r);
}

// ---- https:// ----

static void
tls_config(struct fixture *f, bool client_ca)
{
    f->cfg.http_urls[0]  = "https://127.0.0.1:0";
    f->cfg.n_http        = 1;
    f->cfg.tls_cert      = cert_paths[SERVER_CRT];
    f->cfg.tls_key       = cert_paths[SERVER_KEY];
    f->cfg.tls_client_ca = client_ca ? cert_paths[CA_CRT] : NULL;
}

static void
test_https_serves_clients_that_trust_its_ca(void **state)
{
    struct fixture *f = *state;
    tls_config(f, false);
    start(f);
    f->cainfo     = cert_paths[CA_CRT];
    struct resp r = get(f, "/healthz");
    expect_status(&r, 200);
    resp_free(&r);
    char id[32];
    submit(f, "{\"type\":\"echo\",\"payload\":{\"tls\":true}}", id, sizeof(id));
    r = get_job(f, id, NULL);
    assert_true(json_is_true(jpath(r.j, "job.payload.tls")));
    resp_free(&r);

    // A client trusting another CA does not get in; the server goes on.
    CURL *other = curl_easy_init();
    assert_non_null(other);
    f->cainfo         = cert_paths[OTHER_CA_CRT];
    struct req_opts o = { 0 };
    r                 = request_on(f, other, "GET", "/healthz", &o);
    assert_int_not_equal(r.cc, CURLE_OK);
    resp_free(&r);
    curl_easy_cleanup(other);
    f->cainfo = cert_paths[CA_CRT];
    r         = get(f, "/v1/health");
    expect_status(&r, 200);
    resp_free(&r);
}

static void
test_https_with_a_client_ca_wants_a_client_certificate(void **state)
{
    struct fixture *f = *state;
    tls_config(f, true);
    start(f);
    f->cainfo     = cert_paths[CA_CRT];
    struct resp r = get(f, "/v1/health");
    expect_error(&r, 401, "UNAUTHENTICATED", "client certificate");

    CURL *c = curl_easy_init();
    assert_non_null(c);
    f->cert           = cert_paths[CLIENT_CRT];
    f->key            = cert_paths[CLIENT_KEY];
    struct req_opts o = { 0 };
    r                 = request_on(f, c, "GET", "/v1/health", &o);
    expect_status(&r, 200);
    expect_str(&r, "version", ANVIL_VERSION);
    resp_free(&r);
    curl_easy_cleanup(c);
}

// Pausing a queue over HTTP: the routes, the Health fields, a Poll that
// gets nothing from the paused queue, and bad names refused with 400.
static void
test_pause_and_resume_a_queue(void **state)
{
    struct fixture *f = *state;
    start(f);
    struct resp r = post(f, "/v1/queues/billing:pause", NULL);
    expect_status(&r, 200);
    expect_str(&r, "queue", "billing");
    assert_true(json_is_true(jpath(r.j, "paused")));
    assert_true(json_is_true(jpath(r.j, "changed")));
    resp_free(&r);
    r = post(f, "/v1/queues/billing:pause", NULL); // twice is fine
    expect_status(&r, 200);
    assert_false(json_is_true(jpath(r.j, "changed")));
    resp_free(&r);

    char id[32];
    submit(f, "{\"type\": \"echo\", \"queue\": \"billing\"}", id, sizeof(id));
    r = get(f, "/v1/health");
    expect_status(&r, 200);
    expect_str(&r, "paused_queues.0", "billing");
    assert_null(jpath(r.j, "paused_queues.1"));
    expect_str(&r, "depths.0.queue", "billing");
    assert_true(json_is_true(jpath(r.j, "depths.0.paused")));
    resp_free(&r);
    const char *poll = "{\"worker_id\": \"w1\", \"queues\": "
                       "[\"billing\"], \"types\": [\"echo\"]}";
    r                = post(f, "/v1/jobs:poll", poll);
    expect_status(&r, 200);
    assert_null(jpath(r.j, "leases.0"));
    resp_free(&r);

    r = post(f, "/v1/queues/billing:resume", NULL);
    expect_status(&r, 200);
    assert_false(json_is_true(jpath(r.j, "paused")));
    assert_true(json_is_true(jpath(r.j, "changed")));
    resp_free(&r);
    r = post(f, "/v1/jobs:poll", poll);
    expect_status(&r, 200);
    expect_str(&r, "leases.0.job.id", id);
    resp_free(&r);

    char long_path[200];
    snprintf(long_path, sizeof(long_path), "/v1/queues/%0129d:pause", 0);
    r = post(f, long_path, NULL);
    expect_error(&r, 400, "INVALID_ARGUMENT", "is not a valid name");
    r = post(f, "/v1/queues/bad!name:pause", NULL);
    expect_error(&r, 400, "INVALID_ARGUMENT", "queue 'bad!name'");
    r = post(f, "/v1/queues/a%2Fb:resume", NULL);
    expect_error(&r, 400, "INVALID_ARGUMENT", "queue");
    r = get(f, "/v1/health");
    expect_status(&r, 200);
    assert_null(jpath(r.j, "paused_queues.0")); // nothing was stored
    resp_free(&r);
}

// A queue's rate limit over HTTP: set with the body, shown by Health with
// its bucket, a Poll that gets only the burst, bad limits refused with 400
// (nothing stored), and removed.
static void
test_rate_limit_a_queue(void **state)
{
    struct fixture *f = *state;
    start(f);
    struct resp r = post(
        f, "/v1/queues/mail:limit", "{\"rate_per_second\": 0.5, \"burst\": 2}");
    expect_status(&r, 200);
    expect_str(&r, "limit.queue", "mail");
    assert_true(json_number_value(jpath(r.j, "limit.rate_per_second")) == 0.5);
    assert_int_equal(json_integer_value(jpath(r.j, "limit.burst")), 2);
    assert_true(json_is_true(jpath(r.j, "changed")));
    resp_free(&r);

    char id[32];
    for (int i = 0; i < 3; i++)
        submit(f, "{\"type\": \"echo\", \"queue\": \"mail\"}", id, sizeof(id));
    const char *poll = "{\"worker_id\": \"w1\", \"queues\": [\"mail\"], "
                       "\"types\": [\"echo\"], \"max_jobs\": 3}";
    r                = post(f, "/v1/jobs:poll", poll);
    expect_status(&r, 200);
    assert_non_null(jpath(r.j, "leases.1"));
    assert_null(jpath(r.j, "leases.2")); // the burst, not the three
    resp_free(&r);
    r = get(f, "/v1/health");
    expect_status(&r, 200);
    expect_str(&r, "queue_limits.0.queue", "mail");
    assert_int_equal(json_integer_value(jpath(r.j, "queue_limits.0.burst")), 2);
    assert_true(json_number_value(jpath(r.j, "queue_limits.0.tokens")) < 1);
    resp_free(&r);

    r = post(f, "/v1/queues/mail:limit", "{\"rate_per_second\": -1}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "rate_per_second");
    r = post(f, "/v1/queues/mail:limit", "{\"rate_per_second\": \"fast\"}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "rate_per_second");
    r = post(f, "/v1/queues/other:limit", "{\"burst\": 3}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "burst");
    r = post(f, "/v1/queues/bad!name:limit", "{\"rate_per_second\": 1}");
    expect_error(&r, 400, "INVALID_ARGUMENT", "queue 'bad!name'");
    r = get(f, "/v1/health");
    expect_status(&r, 200);
    assert_null(jpath(r.j, "queue_limits.1")); // nothing else was stored
    assert_true(
        json_number_value(jpath(r.j, "queue_limits.0.rate_per_second")) == 0.5);
    resp_free(&r);

    r = post(f, "/v1/queues/mail:limit", "{}");
    expect_status(&r, 200);
    assert_true(json_is_true(jpath(r.j, "changed")));
    resp_free(&r);
    r = get(f, "/v1/health");
    expect_status(&r, 200);
    assert_null(jpath(r.j, "queue_limits.0"));
    resp_free(&r);
}

// Cron schedules over HTTP: create, get, list, pause, resume, DELETE, and
// bad input refused with 400 naming the problem, nothing stored.
static void
test_schedules_over_http(void **state)
{
    struct fixture *f = *state;
    start(f);
    struct resp r = post(f, "/v1/schedules",
        "{\"spec\": {\"name\": \"nightly\", \"cron\": \"30 2 * * *\", "
        "\"time_zone\": \"America/New_York\", \"job\": {\"type\": \"echo\", "
        "\"queue\": \"reports\"}, \"overlap\": \"OVERLAP_POLICY_ALLOW\"}}");
    expect_status(&r, 200);
    expect_str(&r, "schedule.spec.name", "nightly");
    expect_str(&r, "schedule.spec.job.queue", "reports");
    expect_str(&r, "schedule.spec.overlap", "OVERLAP_POLICY_ALLOW");
    assert_non_null(jpath(r.j, "schedule.next_fire_ms"));
    resp_free(&r);
    r = get(f, "/v1/schedules/nightly");
    expect_status(&r, 200);
    expect_str(&r, "schedule.spec.time_zone", "America/New_York");
    resp_free(&r);
    r = post(f, "/v1/schedules/nightly:pause", NULL);
    expect_status(&r, 200);
    assert_true(json_is_true(jpath(r.j, "schedule.paused")));
    resp_free(&r);
    r = post(f, "/v1/schedules/nightly:resume", NULL);
    expect_status(&r, 200);
    assert_false(json_is_true(jpath(r.j, "schedule.paused")));
    resp_free(&r);
    r = get(f, "/v1/schedules");
    expect_status(&r, 200);
    expect_str(&r, "schedules.0.spec.name", "nightly");
    assert_null(jpath(r.j, "schedules.1"));
    resp_free(&r);

    // A workflow template: a chain of two steps, answered as it went in.
    r = post(f, "/v1/schedules",
        "{\"spec\": {\"name\": \"etl\", \"cron\": \"@hourly\", "
        "\"workflow\": {\"name\": \"etl\", \"steps\": [{\"name\": "
        "\"extract\", \"type\": \"echo\"}, {\"name\": \"load\", \"type\": "
        "\"echo\", \"after\": [\"extract\"]}]}}}");
    expect_status(&r, 200);
    assert_null(jpath(r.j, "schedule.spec.job"));
    expect_str(&r, "schedule.spec.workflow.name", "etl");
    expect_str(&r, "schedule.spec.workflow.steps.1.after.0", "extract");
    resp_free(&r);
    r = get(f, "/v1/schedules/etl");
    expect_status(&r, 200);
    expect_str(&r, "schedule.spec.workflow.steps.0.name", "extract");
    expect_str(&r, "schedule.spec.workflow.steps.1.name", "load");
    resp_free(&r);
    struct req_opts no = { 0 };
    r                  = request(f, "DELETE", "/v1/schedules/etl", &no);
    expect_status(&r, 200);
    resp_free(&r);

    static const char *const bad[][2] = {
        { "{\"spec\": {\"name\": \"b\", \"cron\": \"0 0 31 2 *\", \"job\": "
          "{\"type\": \"t\"}}}",
            "never fires" },
        { "{\"spec\": {\"name\": \"b\", \"cron\": \"* 25 * * *\", \"job\": "
          "{\"type\": \"t\"}}}",
            "hour: value 25 is out of range 0-23" },
        { "{\"spec\": {\"name\": \"b\", \"cron\": \"@daily\", \"time_zone\": "
          "\"Mars/Base\", \"job\": {\"type\": \"t\"}}}",
            "unknown time zone 'Mars/Base'" },
        { "{\"spec\": {\"name\": \"b\", \"cron\": \"@every 100ms\", \"job\": "
          "{\"type\": \"t\"}}}",
            "shorter than the minimum of 1s" },
        { "{\"spec\": {\"name\": \"b\", \"cron\": \"@daily\"}}",
            "spec.job and spec.workflow are both missing" },
        { "{\"spec\": {\"name\": \"b\", \"cron\": \"@daily\", \"job\": "
          "{\"type\": \"t\"}, \"workflow\": {\"name\": \"w\", \"steps\": "
          "[{\"name\": \"a\", \"type\": \"t\"}]}}}",
            "spec.job and spec.workflow are both set" },
        { "{\"spec\": {\"name\": \"b\", \"cron\": \"@daily\", "
          "\"workflow\": {\"name\": \"w\", \"steps\": [{\"name\": \"a\", "
          "\"type\": \"t\", \"after\": [\"b\"]}, {\"name\": \"b\", "
          "\"type\": \"t\", \"after\": [\"a\"]}]}}}",
            "spec.workflow: " },
        { "{\"spec\": {\"name\": \"b\", \"cron\": \"@daily\", "
          "\"workflow\": {\"name\": \"w\", \"steps\": [{\"name\": \"a\", "
          "\"type\": \"t\", \"after\": [\"nope\"]}]}}}",
            "nope" },
        { "{\"spec\": {\"name\": \"b\", \"cron\": \"@daily\", "
          "\"workflow\": {\"name\": \"w\", \"idempotency_key\": \"k\", "
          "\"steps\": [{\"name\": \"a\", \"type\": \"t\"}]}}}",
            "idempotency_key is set by each tick" },
        { "{\"spec\": {\"name\": \"b\", \"cron\": \"@daily\", \"job\": "
          "{\"type\": \"t\", \"delay_ms\": 5}}}",
            "leave them unset" },
        { "{\"spec\": {\"name\": \"bad name\", \"cron\": \"@daily\", "
          "\"job\": {\"type\": \"t\"}}}",
            "name" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = post(f, "/v1/schedules", bad[i][0]);
        expect_error(&r, 400, "INVALID_ARGUMENT", bad[i][1]);
    }
    r = post(f, "/v1/schedules",
        "{\"spec\": {\"name\": \"nightly\", \"cron\": \"@daily\", \"job\": "
        "{\"type\": \"t\"}}}");
    expect_error(&r, 409, "ALREADY_EXISTS", "nightly");

    struct req_opts none = { 0 };
    r                    = request(f, "DELETE", "/v1/schedules/nightly", &none);
    expect_status(&r, 200);
    expect_str(&r, "schedule.spec.name", "nightly");
    resp_free(&r);
    r = get(f, "/v1/schedules/nightly");
    expect_error(&r, 404, "NOT_FOUND", "no schedule named 'nightly'");
    r = request(f, "DELETE", "/v1/schedules/nightly", &none);
    expect_error(&r, 404, "NOT_FOUND", "nightly");
    r = get(f, "/v1/schedules");
    expect_status(&r, 200);
    assert_null(jpath(r.j, "schedules.0")); // nothing bad was stored
    resp_free(&r);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_seed_post_job_runs_on_a_real_worker),
        T(test_pause_and_resume_a_queue),
        T(test_rate_limit_a_queue),
        T(test_schedules_over_http),
        T(test_seed_post_job_keys_are_case_insensitive_and_checked),
        T(test_submit_takes_snake_and_camel_case_and_both_payload_forms),
        T(test_batch_applies_each_job_on_its_own),
        T(test_list_jobs_filters_by_state_type_queue_and_pages),
        T(test_get_wait_and_cancel_a_job),
        T(test_cancel_and_retry_many_jobs_by_filter),
        T(test_worker_calls_drive_jobs_to_succeeded_and_failed),
        T(test_report_and_stale_tokens),
        T(test_workflows_submit_get_list_wait_and_cancel),
        T(test_workflow_steps_take_a_concurrency_key),
        T(test_health_healthz_readyz_and_workers),
        T(test_metrics_count_http_requests),
        T(test_metrics_under_load_pass_promtool),
        T(test_public_metrics_need_no_token),
        T(test_openapi_paths_match_the_route_table),
        T(test_tokens_roles_and_401_403),
        T(test_idempotency_key_and_request_id_make_a_resend_return_the_same_id),
        T(test_400_404_405_415_answers),
        T(test_413_for_a_body_over_the_limit),
        T(test_429_when_the_long_polls_are_all_taken),
        T(test_a_parked_wait_ends_when_the_server_stops),
        T(test_503_once_the_storage_failed),
        T(test_https_serves_clients_that_trust_its_ca),
        T(test_https_with_a_client_ca_wants_a_client_certificate),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
