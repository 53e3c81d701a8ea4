// test_leader.c - two in-process anvild on one PostgreSQL database (the
// private cluster of pg_harness.h, whatever ANVIL_TEST_STORE says): the
// second stands by and answers every nng request UNAVAILABLE with the
// leader's URL (and HTTP 503 with it), a client given both follows, the
// standby takes over when the leader stops and serves what the leader
// stored, a leader whose lease another node took stops, and bad
// --leader-ttl values are refused.
#include "../../server/server.h"
#include "../harness.h"
#include "../pg_harness.h"
#include "anvil/v1/anvil.pb-c.h"
#include "util/clock.h"

#include <anvil/anvil.h>
#include <anvil/health.h>
#include <curl/curl.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

struct fx {
    struct harness       h; // the directory and its client (unused server)
    char                 conninfo[256];
    char                 url_a[160], url_b[160], http_b[64];
    struct server_config cfg_a, cfg_b;
    struct server       *a, *b;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL || harness_open(&f->h) != 0
        || pg_harness_new_db(f->conninfo, sizeof(f->conninfo)) != 0)
        return -1;
    snprintf(f->url_a, sizeof(f->url_a), "ipc://%s/a", f->h.dir);
    snprintf(f->url_b, sizeof(f->url_b), "ipc://%s/b", f->h.dir);
    snprintf(f->http_b, sizeof(f->http_b), "http://127.0.0.1:%d",
        harness_free_tcp_port());
    struct server_config *c[2] = { &f->cfg_a, &f->cfg_b };
    for (int i = 0; i < 2; i++) {
        server_config_init(c[i]);
        c[i]->store_url     = f->conninfo;
        c[i]->leader_ttl_ms = 600;
    }
    f->cfg_a.listen_url   = f->url_a;
    f->cfg_b.listen_url   = f->url_b;
    f->cfg_b.http_urls[0] = f->http_b;
    f->cfg_b.n_http       = 1;
    *state                = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    server_stop(f->b);
    server_stop(f->a);
    int rc = harness_stop(&f->h);
    free(f);
    return rc;
}

static void
start(struct server_config *cfg, struct server **out)
{
    struct anvil_error err = { 0 };
    int                rc  = server_start(cfg, out, &err);
    if (rc != ANVIL_OK)
        fail_msg("server_start: %s", err.msg);
}

// A raw Health request to url: the reply (anvil__v1__reply__free_unpacked)
// or NULL.
static Anvil__V1__Reply *
raw_health(const char *url, uint64_t id)
{
    nng_socket s;
    assert_int_equal(nng_req0_open(&s), 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 2000);
    Anvil__V1__Reply *rep = NULL;
    if (nng_dial(s, url, NULL, 0) == 0) {
        Anvil__V1__Request req = ANVIL__V1__REQUEST__INIT;
        req.method             = "Health";
        req.request_id         = id;
        uint8_t buf[64];
        size_t  len = anvil__v1__request__get_packed_size(&req);
        anvil__v1__request__pack(&req, buf);
        void *in = NULL;
        if (nng_send(s, buf, len, 0) == 0
            && nng_recv(s, &in, &len, NNG_FLAG_ALLOC) == 0) {
            rep = anvil__v1__reply__unpack(NULL, len, in);
            nng_free(in, len);
        }
    }
    nng_close(s);
    return rep;
}

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
    char  *buf  = arg;
    size_t have = strlen(buf), add = size * n, keep = add;
    if (have + keep > 1023)
        keep = 1023 - have; // the first 1023 bytes are kept
    memcpy(buf + have, p, keep);
    buf[have + keep] = '\0';
    return add;
}

// GET base+path: the status, the body and the headers (each < 1024
// bytes kept).
static long
http_get(const char *base, const char *path, char *body, char *hdr)
{
    CURL *c = curl_easy_init();
    char  url[160];
    body[0] = hdr[0] = '\0';
    snprintf(url, sizeof(url), "%s%s", base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, hdr);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

static void
test_standby_names_the_leader(void **state)
{
    struct fx *f = *state;
    start(&f->cfg_a, &f->a);
    start(&f->cfg_b, &f->b);

    Anvil__V1__Reply *rep = raw_health(f->url_b, 4242);
    assert_non_null(rep);
    assert_int_equal((int) rep->code, ANVIL_UNAVAILABLE);
    assert_int_equal(rep->request_id, 4242);
    assert_string_equal(rep->leader, f->url_a);
    assert_non_null(strstr(rep->message, "standby"));
    assert_non_null(strstr(rep->message, f->url_a));
    anvil__v1__reply__free_unpacked(rep, NULL);
    rep = raw_health(f->url_a, 1);
    assert_non_null(rep);
    assert_int_equal((int) rep->code, ANVIL_OK);
    anvil__v1__reply__free_unpacked(rep, NULL);

    // HTTP: 503, the leader in the body and a header; /readyz too. But
    // the process is alive (/healthz), and a scrape says it stands by.
    char body[1024], hdr[1024];
    assert_int_equal(http_get(f->http_b, "/v1/health", body, hdr), 503);
    assert_non_null(strstr(body, "\"code\":\"UNAVAILABLE\""));
    assert_non_null(strstr(body, "\"leader\":\"ipc://"));
    assert_non_null(strstr(hdr, "Anvil-Leader: ipc://"));
    assert_int_equal(http_get(f->http_b, "/readyz", body, hdr), 503);
    assert_int_equal(http_get(f->http_b, "/healthz", body, hdr), 200);
    assert_string_equal(body, "ok\n");
    assert_int_equal(http_get(f->http_b, "/metrics", body, hdr), 200);
    assert_non_null(strstr(body, "\nanvil_leader 0\n"));
    assert_non_null(strstr(body, "anvil_build_info{version="));
    assert_non_null(strstr(hdr, "text/plain; version=0.0.4"));

    // A client given the standby first follows it to the leader.
    char list[400];
    snprintf(list, sizeof(list), "%s,%s", f->url_b, f->url_a);
    anvil_client      *cl  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_client_open(&cl, list, &err), ANVIL_OK);
    char *id = NULL;
    assert_int_equal(
        anvil_job_submit(cl, "t", "x", 1, NULL, &id, NULL, &err), ANVIL_OK);
    anvil_free(id);
    anvil_client_close(cl);
}

static bool
b_leads(void *arg)
{
    struct fx        *f   = arg;
    Anvil__V1__Reply *rep = raw_health(f->url_b, 7);
    bool              ok  = rep != NULL && (int) rep->code == ANVIL_OK;
    if (rep != NULL)
        anvil__v1__reply__free_unpacked(rep, NULL);
    return ok;
}

// The leader stops cleanly (releasing the lease): the standby takes over
// at its next try, with what the leader stored and ids above its own.
static void
test_takeover_serves_the_stored_state(void **state)
{
    struct fx *f = *state;
    start(&f->cfg_a, &f->a);
    start(&f->cfg_b, &f->b);
    anvil_client      *ca = NULL, *cb = NULL;
    struct anvil_error err   = { 0 };
    char              *first = NULL, *second = NULL;
    assert_int_equal(anvil_client_open(&ca, f->url_a, &err), ANVIL_OK);
    struct anvil_job_opts o = { .idempotency_key = "k1" };
    assert_int_equal(
        anvil_job_submit(ca, "t", "x", 1, &o, &first, NULL, &err), ANVIL_OK);
    anvil_client_close(ca);
    int64_t t0 = av_mono_ms();
    server_stop(f->a);
    f->a = NULL;
    assert_true(harness_wait_for(b_leads, f, 5000));
    assert_true(av_mono_ms() - t0 < 2000); // released: no wait for expiry
    char body[1024], hdr[1024];
    assert_int_equal(http_get(f->http_b, "/readyz", body, hdr), 200);
    assert_int_equal(http_get(f->http_b, "/metrics", body, hdr), 200);
    assert_non_null(strstr(body, "\nanvil_leader 1\n")); // near the top

    assert_int_equal(anvil_client_open(&cb, f->url_b, &err), ANVIL_OK);
    bool existed = false;
    assert_int_equal(
        anvil_job_submit(cb, "t", "x", 1, &o, &second, &existed, &err),
        ANVIL_OK);
    assert_true(existed);
    assert_string_equal(first, second);
    anvil_free(second);
    second = NULL;
    assert_int_equal(
        anvil_job_submit(cb, "t", "y", 1, NULL, &second, NULL, &err), ANVIL_OK);
    assert_true(atoll(second + 1) > atoll(first + 1));
    anvil_free(first);
    anvil_free(second);
    anvil_client_close(cb);
}

// Another node takes the lease from under a leader: its writes fail
// UNAVAILABLE and server_wait() ends with UNAVAILABLE.
static void
test_deposed_leader_stops(void **state)
{
    struct fx *f = *state;
    start(&f->cfg_a, &f->a);
    assert_int_equal(pg_harness_sql_exec(f->conninfo,
                         "UPDATE anvil_leader SET epoch = epoch + 1, "
                         "holder = 'elsewhere', advertise = 'tcp://x:1', "
                         "expires_at = clock_timestamp() + interval '1 h'"),
        0);
    anvil_client      *ca  = NULL;
    struct anvil_error err = { 0 };
    char              *id  = NULL;
    assert_int_equal(anvil_client_open(&ca, f->url_a, &err), ANVIL_OK);
    anvil_client_set_timeout(ca, 2000, NULL);
    assert_int_equal(anvil_job_submit(ca, "t", "x", 1, NULL, &id, NULL, &err),
        ANVIL_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "no longer the leader"));
    anvil_client_close(ca);
    assert_int_equal(server_wait(f->a), ANVIL_UNAVAILABLE);
    char n[32];
    assert_int_equal(pg_harness_sql_text(f->conninfo,
                         "SELECT count(*) FROM jobs", n, sizeof(n)),
        0);
    assert_string_equal(n, "0");
}

static void
test_bad_leader_ttl(void **state)
{
    struct fx         *f   = *state;
    struct anvil_error err = { 0 };
    f->cfg_a.leader_ttl_ms = 100;
    assert_int_equal(
        server_start(&f->cfg_a, &f->a, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "leader ttl"));
    char cmd[512], out[512] = "";
    snprintf(
        cmd, sizeof(cmd), "%s/anvild --leader-ttl 100ms 2>&1", ANVIL_BIN_DIR);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n]   = '\0';
    assert_int_equal(WEXITSTATUS(pclose(p)), 2);
    assert_non_null(strstr(out,
        "--leader-ttl '100ms' is invalid: a duration "
        "from 300ms to 10m"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_standby_names_the_leader),
        T(test_takeover_serves_the_stored_state),
        T(test_deposed_leader_stops),
        T(test_bad_leader_ttl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
