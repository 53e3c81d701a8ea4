// test_tls.c - anvild's tls+tcp:// listener: a client that trusts the
// server's CA is served; one trusting another CA, and a plain-TCP client on
// the TLS port, get nothing and the server keeps serving; with a client CA
// set, only clients with a certificate signed by it get in; bad TLS
// options stop the start.
//
// The certificates are made at test time with the openssl command line
// (docs/security.md), into a temporary directory. Clients are nng req0
// sockets with nng's own client TLS configuration, dialling "localhost".
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../server/server.h"
#include "../harness.h"
#include "anvil/v1/anvil.pb-c.h"
#include "util/clock.h"

#define TIMEOUT_MS 5000
#define REFUSED_WAIT_MS 1500 // how long a refused client waits for a reply

// The certificates, made once for the whole binary.
static char certs[64]; // "/tmp/anvil-tls-XXXXXX"

struct fixture {
    char                 db_dir[64];
    char                 db[128];
    char                 listen[64]; // tls+tcp://127.0.0.1:<port>
    char                 url[64];    // tls+tcp://localhost:<port>
    struct server_config cfg;
    struct server       *server;
    uint64_t             next_rid;
};

// ---- files ----

// The path of a file in the certificate directory. The pointer stays
// valid for the whole run (server configs keep it).
static const char *
cert_path(const char *name)
{
    static struct {
        char name[32];
        char path[160];
    } table[16];

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (table[i].name[0] == '\0') {
            snprintf(table[i].name, sizeof(table[i].name), "%s", name);
            snprintf(
                table[i].path, sizeof(table[i].path), "%s/%s", certs, name);
        }
        if (strcmp(table[i].name, name) == 0)
            return table[i].path;
    }
    fail_msg("cert_path: table full");
    return NULL;
}

// Prints openssl's output, then removes the certificate directory.
static void
certs_failed(const char *why)
{
    char  path[160];
    char  line[256];
    FILE *fp;

    fprintf(stderr, "test_tls: %s\n", why);
    snprintf(path, sizeof(path), "%s/openssl.log", certs);
    fp = fopen(path, "r");
    while (fp != NULL && fgets(line, sizeof(line), fp) != NULL)
        fprintf(stderr, "  openssl: %s", line);
    if (fp != NULL)
        fclose(fp);
    harness_remove_tree(certs);
}

static int
group_setup(void **state)
{
    (void) state;
    atexit(nng_fini);
    snprintf(certs, sizeof(certs), "/tmp/anvil-tls-XXXXXX");
    if (mkdtemp(certs) == NULL)
        return -1;
    if (harness_run_in(certs, "openssl version") != 0) {
        certs_failed("the openssl command line tool is needed to make the "
                     "test certificates (apt-get install openssl)");
        return -1;
    }
    if (harness_make_cert(certs, "ca", "/CN=anvil test CA", NULL, NULL) != 0
        || harness_make_cert(certs, "other-ca", "/CN=some other CA", NULL, NULL)
            != 0
        || harness_make_cert(certs, "server", "/CN=localhost", "ca",
               "subjectAltName=DNS:localhost")
            != 0
        || harness_make_cert(certs, "client", "/CN=worker-1", "ca", NULL) != 0
        || harness_make_cert(
               certs, "stranger", "/CN=worker-2", "other-ca", NULL)
            != 0) {
        certs_failed("openssl could not make the test certificates");
        return -1;
    }
    return 0;
}

static int
group_teardown(void **state)
{
    (void) state;
    harness_remove_tree(certs);
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
    snprintf(f->db_dir, sizeof(f->db_dir), "/tmp/anvil-tlsdb-XXXXXX");
    if (mkdtemp(f->db_dir) == NULL)
        return -1;
    snprintf(f->db, sizeof(f->db), "%s/anvil.db", f->db_dir);
    int port = harness_free_tcp_port();
    if (port <= 0)
        return -1;
    snprintf(f->listen, sizeof(f->listen), "tls+tcp://127.0.0.1:%d", port);
    snprintf(f->url, sizeof(f->url), "tls+tcp://localhost:%d", port);
    server_config_init(&f->cfg);
    f->cfg.listen_url  = f->listen;
    f->cfg.db_path     = f->db;
    f->cfg.synchronous = 1;
    f->cfg.tls_cert    = cert_path("server.crt");
    f->cfg.tls_key     = cert_path("server.key");
    f->next_rid        = ((uint64_t) getpid() << 32) ^ (uint64_t) av_now_ms();
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    if (f == NULL)
        return 0;
    server_stop(f->server);
    if (f->db_dir[0] != '\0')
        harness_remove_tree(f->db_dir);
    free(f);
    return 0;
}

static void
start(struct fixture *f)
{
    struct anvil_error err = { 0 };
    int                rc  = server_start(&f->cfg, &f->server, &err);

    if (rc != ANVIL_OK)
        print_error("server_start %s: %s: %s\n", f->cfg.listen_url,
            anvil_code_name(rc), err.msg);
    assert_int_equal(rc, ANVIL_OK);
}

// ---- clients ----

struct client_tls {
    const char *ca;   // trusted CA file; NULL = none
    const char *cert; // own certificate and key; NULL = none
    const char *key;
};

// Opens a req0 socket and dials url over TLS with t, synchronously (the
// handshake is part of the dial). Returns 0 with *s open, or the nng
// error of the dial (the socket is then closed).
static int
tls_dial(
    const char *url, const struct client_tls *t, int recv_ms, nng_socket *s)
{
    nng_tls_config *tls = NULL;
    nng_dialer      d;
    int             rv = nng_req0_open(s);

    assert_int_equal(rv, 0);
    assert_int_equal(nng_socket_set_ms(*s, NNG_OPT_RECVTIMEO, recv_ms), 0);
    assert_int_equal(nng_socket_set_ms(*s, NNG_OPT_SENDTIMEO, TIMEOUT_MS), 0);
    assert_int_equal(nng_socket_set_size(*s, NNG_OPT_RECVMAXSZ, 1 << 20), 0);
    assert_int_equal(nng_tls_config_alloc(&tls, NNG_TLS_MODE_CLIENT), 0);
    assert_int_equal(nng_tls_config_server_name(tls, "localhost"), 0);
    assert_int_equal(
        nng_tls_config_auth_mode(tls, NNG_TLS_AUTH_MODE_REQUIRED), 0);
    if (t->ca != NULL)
        assert_int_equal(nng_tls_config_ca_file(tls, t->ca), 0);
    if (t->cert != NULL) {
        char *crt = NULL, *key = NULL;
        FILE *fc = fopen(t->cert, "r"), *fk = fopen(t->key, "r");
        assert_non_null(fc);
        assert_non_null(fk);
        crt = calloc(1, 8192);
        key = calloc(1, 8192);
        assert_non_null(crt);
        assert_non_null(key);
        assert_true(fread(crt, 1, 8191, fc) > 0);
        assert_true(fread(key, 1, 8191, fk) > 0);
        fclose(fc);
        fclose(fk);
        assert_int_equal(nng_tls_config_own_cert(tls, crt, key, NULL), 0);
        free(crt);
        free(key);
    }
    assert_int_equal(nng_dialer_create(&d, *s, url), 0);
    assert_int_equal(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls), 0);
    nng_tls_config_free(tls); // the dialer holds its own reference
    rv = nng_dialer_start(d, 0);
    if (rv != 0)
        nng_close(*s);
    return rv;
}

// Sends Health on s: 0 with the server's version checked, or the nng
// error of the send or receive.
static int
health(struct fixture *f, nng_socket s)
{
    Anvil__V1__HealthRequest hreq = ANVIL__V1__HEALTH_REQUEST__INIT;
    Anvil__V1__Request       req  = ANVIL__V1__REQUEST__INIT;
    uint8_t                  body[16];
    uint8_t                  buf[256];
    void                    *in    = NULL;
    size_t                   inlen = 0;

    req.method     = (char *) "Health";
    req.body.len   = anvil__v1__health_request__pack(&hreq, body);
    req.body.data  = body;
    req.request_id = f->next_rid++;
    assert_true(anvil__v1__request__get_packed_size(&req) <= sizeof(buf));
    size_t n  = anvil__v1__request__pack(&req, buf);
    int    rv = nng_send(s, buf, n, 0);
    if (rv == 0)
        rv = nng_recv(s, &in, &inlen, NNG_FLAG_ALLOC);
    if (rv != 0)
        return rv;
    Anvil__V1__Reply *rep = anvil__v1__reply__unpack(NULL, inlen, in);
    nng_free(in, inlen);
    assert_non_null(rep);
    assert_int_equal(rep->code, ANVIL__V1__CODE__OK);
    assert_int_equal(rep->request_id, req.request_id);
    Anvil__V1__HealthResponse *h = anvil__v1__health_response__unpack(
        NULL, rep->body.len, rep->body.data);
    assert_non_null(h);
    assert_true(h->version[0] != '\0');
    anvil__v1__health_response__free_unpacked(h, NULL);
    anvil__v1__reply__free_unpacked(rep, NULL);
    return 0;
}

// A client with t dials and gets its Health answered.
static void
assert_served(struct fixture *f, const struct client_tls *t)
{
    nng_socket s;
    int        rv = tls_dial(f->url, t, TIMEOUT_MS, &s);

    if (rv != 0)
        print_error("dial %s: %s\n", f->url, nng_strerror(rv));
    assert_int_equal(rv, 0);
    rv = health(f, s);
    if (rv != 0)
        print_error("Health over %s: %s\n", f->url, nng_strerror(rv));
    assert_int_equal(rv, 0);
    nng_close(s);
}

// A client with t gets no reply: its dial (the handshake) fails, or, if
// the handshake passed on its side, no Health reply comes in time.
static void
assert_refused(struct fixture *f, const struct client_tls *t)
{
    nng_socket s;
    int        rv = tls_dial(f->url, t, REFUSED_WAIT_MS, &s);

    if (rv != 0) {
        // Refused at the handshake, not for want of a listener.
        if (rv != NNG_ECRYPTO && rv != NNG_EPEERAUTH && rv != NNG_ECONNSHUT
            && rv != NNG_ECONNRESET && rv != NNG_ECLOSED)
            print_error("dial %s: %s\n", f->url, nng_strerror(rv));
        assert_true(rv == NNG_ECRYPTO || rv == NNG_EPEERAUTH
            || rv == NNG_ECONNSHUT || rv == NNG_ECONNRESET
            || rv == NNG_ECLOSED);
        return;
    }
    rv = health(f, s);
    nng_close(s);
    if (rv == 0)
        print_error("a client that should be refused was answered\n");
    assert_int_not_equal(rv, 0);
}

static const struct client_tls trusting = { .ca = NULL };

static struct client_tls
trust(const char *ca)
{
    return (struct client_tls) { .ca = cert_path(ca) };
}

// ---- tests ----

static void
test_a_client_trusting_the_servers_ca_is_served(void **state)
{
    struct fixture   *f = *state;
    struct client_tls t = trust("ca.crt");

    start(f);
    assert_served(f, &t);
    // Several requests on one connection, and a second connection.
    nng_socket s;
    assert_int_equal(tls_dial(f->url, &t, TIMEOUT_MS, &s), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(health(f, s), 0);
    nng_close(s);
    assert_served(f, &t);
}

static void
test_a_client_trusting_another_ca_is_refused(void **state)
{
    struct fixture   *f     = *state;
    struct client_tls wrong = trust("other-ca.crt");
    struct client_tls right = trust("ca.crt");

    start(f);
    assert_refused(f, &wrong);
    // A client that trusts nothing at all is refused too.
    assert_refused(f, &trusting);
    assert_served(f, &right);
    assert_refused(f, &wrong);
    assert_served(f, &right);
}

static void
test_a_plain_tcp_req_client_on_the_tls_port_gets_no_reply(void **state)
{
    struct fixture   *f     = *state;
    struct client_tls right = trust("ca.crt");
    char              tcp[64];
    nng_socket        s;
    nng_dialer        d;

    start(f);
    snprintf(tcp, sizeof(tcp), "tcp://localhost:%s", strrchr(f->url, ':') + 1);
    assert_int_equal(nng_req0_open(&s), 0);
    assert_int_equal(
        nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, REFUSED_WAIT_MS), 0);
    assert_int_equal(
        nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, REFUSED_WAIT_MS), 0);
    assert_int_equal(nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 1 << 20), 0);
    // Non-blocking: the dialer keeps retrying in the background while the
    // request waits for an answer that never comes.
    assert_int_equal(nng_dialer_create(&d, s, tcp), 0);
    assert_int_equal(nng_dialer_start(d, NNG_FLAG_NONBLOCK), 0);
    int64_t t0 = av_mono_ms();
    int     rv = health(f, s);
    nng_close(s);
    assert_int_not_equal(rv, 0);
    assert_true(rv == NNG_ETIMEDOUT || rv == NNG_ECLOSED || rv == NNG_ECONNSHUT
        || rv == NNG_ECONNRESET);
    assert_true(av_mono_ms() - t0 < REFUSED_WAIT_MS + TIMEOUT_MS);
    assert_served(f, &right);
}

// Reads from fd until the peer closes, up to ms: true if it closed, and
// *sp is set if what came before started with an SP greeting.
static bool
closed_by_peer(int fd, int ms, bool *sp)
{
    uint8_t buf[512];
    size_t  got   = 0;
    int64_t until = av_mono_ms() + ms;

    *sp = false;
    while (av_mono_ms() < until) {
        ssize_t n = recv(fd, buf + (got < 8 ? got : 0),
            got < 8 ? sizeof(buf) - got : sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return true;
        if (n > 0) {
            if (got < 8 && got + (size_t) n >= 4)
                *sp |= memcmp(buf, "\0SP\0", 4) == 0;
            got += (size_t) n;
        }
    }
    return false;
}

static void
test_a_raw_sp_greeting_on_the_tls_port_is_disconnected(void **state)
{
    struct fixture      *f        = *state;
    struct client_tls    right    = trust("ca.crt");
    static const uint8_t hello[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 };
    struct sockaddr_in   sa       = { .sin_family = AF_INET };
    struct timeval       tv       = { 0, 200 * 1000 };

    start(f);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port        = htons((uint16_t) atoi(strrchr(f->url, ':') + 1));
    for (int i = 0; i < 3; i++) {
        int  fd = socket(AF_INET, SOCK_STREAM, 0);
        bool sp;
        assert_true(fd >= 0);
        assert_int_equal(
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
        assert_int_equal(
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
        assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(send(fd, hello, sizeof(hello), MSG_NOSIGNAL),
            (ssize_t) sizeof(hello));
        assert_true(closed_by_peer(fd, TIMEOUT_MS, &sp));
        assert_false(sp); // never spoke SP in clear text
        close(fd);
        assert_served(f, &right);
    }
}

static void
test_with_a_client_ca_a_client_without_a_certificate_is_refused(void **state)
{
    struct fixture   *f    = *state;
    struct client_tls none = trust("ca.crt");

    f->cfg.tls_client_ca = cert_path("ca.crt");
    start(f);
    assert_refused(f, &none);
    assert_refused(f, &none);
}

static void
test_with_a_client_ca_a_client_certificate_it_signed_is_served(void **state)
{
    struct fixture   *f            = *state;
    struct client_tls signed_by_ca = { .ca = cert_path("ca.crt"),
        .cert                              = cert_path("client.crt"),
        .key                               = cert_path("client.key") };
    struct client_tls stranger     = { .ca = cert_path("ca.crt"),
            .cert                          = cert_path("stranger.crt"),
            .key                           = cert_path("stranger.key") };

    f->cfg.tls_client_ca = cert_path("ca.crt");
    start(f);
    assert_served(f, &signed_by_ca);
    // A certificate from another CA is no better than none.
    assert_refused(f, &stranger);
    assert_served(f, &signed_by_ca);
}

static void
test_without_a_client_ca_a_client_certificate_is_not_needed(void **state)
{
    struct fixture   *f       = *state;
    struct client_tls with    = { .ca = cert_path("ca.crt"),
           .cert                      = cert_path("stranger.crt"),
           .key                       = cert_path("stranger.key") };
    struct client_tls without = trust("ca.crt");

    start(f);
    assert_served(f, &without);
    assert_served(f, &with);
}

// server_start refuses bad TLS options with INVALID_ARGUMENT naming them.
static void
assert_start_refused(struct fixture *f, const char *needle)
{
    struct anvil_error err = { 0 };
    int                rc  = server_start(&f->cfg, &f->server, &err);

    if (rc != ANVIL_INVALID_ARGUMENT || strstr(err.msg, needle) == NULL)
        print_error("server_start: %s \"%s\"; expected INVALID_ARGUMENT "
                    "naming \"%s\"\n",
            anvil_code_name(rc), err.msg, needle);
    assert_int_equal(rc, ANVIL_INVALID_ARGUMENT);
    assert_null(f->server);
    assert_non_null(strstr(err.msg, needle));
}

static void
test_bad_tls_options_stop_the_start(void **state)
{
    struct fixture *f = *state;

    f->cfg.tls_cert = NULL;
    assert_start_refused(f, "--tls-cert");
    f->cfg.tls_cert = cert_path("server.crt");
    f->cfg.tls_key  = NULL;
    assert_start_refused(f, "--tls-key");
    f->cfg.tls_key  = cert_path("server.key");
    f->cfg.tls_cert = cert_path("no-such.crt");
    assert_start_refused(f, "no-such.crt");
    // A key where the certificate should be.
    f->cfg.tls_cert = cert_path("server.key");
    assert_start_refused(f, "--tls-cert");
    f->cfg.tls_cert      = cert_path("server.crt");
    f->cfg.tls_client_ca = cert_path("no-such-ca.crt");
    assert_start_refused(f, "--tls-client-ca");
    // With everything right it starts.
    f->cfg.tls_client_ca = NULL;
    start(f);
    struct client_tls t = trust("ca.crt");
    assert_served(f, &t);
}

// A libanvil client given a list of TLS servers checks each against its
// own host: the first (127.0.0.1, where nothing listens) would not match
// the server's certificate (DNS:localhost only), the second does, so the
// call is served only if the second dialer got its own server name.
static void
test_a_server_list_verifies_each_server_by_its_own_host(void **state)
{
    struct fixture *f = *state;
    start(f);
    int dead = harness_free_tcp_port();
    assert_true(dead > 0);
    char list[160];
    snprintf(list, sizeof(list), "tls+tcp://127.0.0.1:%d, %s", dead, f->url);
    anvil_client      *c   = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_client_open(&c, list, &err), ANVIL_OK);
    struct anvil_tls t = { .ca_file = cert_path("ca.crt") };
    assert_int_equal(anvil_client_set_tls(c, &t, &err), ANVIL_OK);
    anvil_client_set_timeout(c, TIMEOUT_MS, NULL);
    struct anvil_health *h  = NULL;
    int                  rc = anvil_health_get(c, &h, &err);
    if (rc != ANVIL_OK)
        print_error("Health over %s: %s\n", list, err.msg);
    assert_int_equal(rc, ANVIL_OK);
    anvil_health_free(h);
    anvil_client_close(c);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_a_client_trusting_the_servers_ca_is_served),
        T(test_a_client_trusting_another_ca_is_refused),
        T(test_a_plain_tcp_req_client_on_the_tls_port_gets_no_reply),
        T(test_a_raw_sp_greeting_on_the_tls_port_is_disconnected),
        T(test_with_a_client_ca_a_client_without_a_certificate_is_refused),
        T(test_with_a_client_ca_a_client_certificate_it_signed_is_served),
        T(test_without_a_client_ca_a_client_certificate_is_not_needed),
        T(test_bad_tls_options_stop_the_start),
        T(test_a_server_list_verifies_each_server_by_its_own_host),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
