// test_auth.c - API tokens against a real in-process anvild: the bootstrap
// admin token file, requests without or with wrong, expired or revoked
// tokens, what each role may call, lease holder checks between worker
// tokens, token management (secrets shown once, never listed or stored),
// and when tokens are required (--auth, --insecure, auto by URL).
//
// Requests go over raw nng req0 sockets as protobuf-c envelopes, so the
// token travels exactly as any SP client would send it.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../server/server.h"
#include "../harness.h"
#include "anvil/v1/anvil.pb-c.h"
#include "util/clock.h"
#include "util/sha256.h"

#define TIMEOUT_MS 5000
#define SECRET_MAX 128

#define OK ANVIL__V1__CODE__OK
#define UNAUTHENTICATED ANVIL__V1__CODE__UNAUTHENTICATED
#define PERMISSION_DENIED ANVIL__V1__CODE__PERMISSION_DENIED
#define NOT_FOUND ANVIL__V1__CODE__NOT_FOUND
#define INVALID_ARGUMENT ANVIL__V1__CODE__INVALID_ARGUMENT

struct fixture {
    char                 dir[64];         // mkdtemp
    char                 url[128];        // ipc://<dir>/s unless a test says
    char                 db[128];         // <dir>/anvil.db
    char                 token_file[128]; // <dir>/admin.token
    struct server_config cfg;
    struct server       *server;
    nng_socket           sock;              // dialled to url; id 0 when closed
    char                 admin[SECRET_MAX]; // the bootstrap admin token
    uint64_t             next_rid;
    uint64_t             force_rid; // non-zero: every request carries it
};

// ---- server and sockets ----

static int
sock_open(const char *url, nng_socket *s)
{
    return harness_req_open(s, url, TIMEOUT_MS, 16 << 20);
}

static void
sock_close(nng_socket *s)
{
    if (nng_socket_id(*s) > 0)
        nng_close(*s);
    *s = (nng_socket) NNG_SOCKET_INITIALIZER;
}

// Starts f->cfg and dials f->url. Returns the server_start code.
static int
start(struct fixture *f)
{
    struct anvil_error err = { 0 };
    int                rc  = server_start(&f->cfg, &f->server, &err);

    if (rc != ANVIL_OK) {
        print_error("server_start %s: %s: %s\n", f->cfg.listen_url,
            anvil_code_name(rc), err.msg);
        f->server = NULL;
        return rc;
    }
    if (sock_open(f->url, &f->sock) != 0) {
        print_error("cannot dial %s\n", f->url);
        return ANVIL_UNAVAILABLE;
    }
    return ANVIL_OK;
}

static void
stop(struct fixture *f)
{
    sock_close(&f->sock);
    server_stop(f->server);
    f->server = NULL;
}

// Reads the bootstrap token file into f->admin (first line).
static int
read_admin(struct fixture *f)
{
    char *text = harness_read_file(f->token_file, NULL);

    if (text == NULL)
        return -1;
    text[strcspn(text, "\r\n")] = '\0';
    snprintf(f->admin, sizeof(f->admin), "%s", text);
    free(text);
    return 0;
}

// A fixture with its directory and config, tokens required, bootstrap
// file set, not started.
static struct fixture *
fixture_new(void)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return NULL;
    snprintf(f->dir, sizeof(f->dir), "/tmp/anvil-auth-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return NULL;
    }
    snprintf(f->url, sizeof(f->url), "ipc://%s/s", f->dir);
    snprintf(f->db, sizeof(f->db), "%s/anvil.db", f->dir);
    snprintf(f->token_file, sizeof(f->token_file), "%s/admin.token", f->dir);
    server_config_init(&f->cfg);
    f->cfg.listen_url           = f->url;
    f->cfg.db_path              = f->db;
    f->cfg.synchronous          = 1;
    f->cfg.auth                 = SERVER_AUTH_ON;
    f->cfg.bootstrap_token_file = f->token_file;
    f->sock                     = (nng_socket) NNG_SOCKET_INITIALIZER;
    f->next_rid = ((uint64_t) getpid() << 32) ^ (uint64_t) av_now_ms();
    return f;
}

static int
group_setup(void **state)
{
    (void) state;
    atexit(nng_fini);
    return 0;
}

static int
setup(void **state)
{
    struct fixture *f = fixture_new();

    if (f == NULL)
        return -1;
    *state = f;
    if (start(f) != ANVIL_OK || read_admin(f) != 0)
        return -1;
    return 0;
}

// For tests that configure and start servers themselves.
static int
setup_unstarted(void **state)
{
    struct fixture *f = fixture_new();

    if (f == NULL)
        return -1;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    if (f == NULL)
        return 0;
    stop(f);
    harness_remove_tree(f->dir);
    free(f);
    return 0;
}

// ---- requests ----

// Sends method(body) with token (NULL = none) on s; returns the reply
// (asserted to arrive and to echo the request id). Free it with
// anvil__v1__reply__free_unpacked.
static Anvil__V1__Reply *
call_on(struct fixture *f, nng_socket s, const char *token, const char *method,
    const ProtobufCMessage *body)
{
    Anvil__V1__Request req   = ANVIL__V1__REQUEST__INIT;
    size_t             blen  = protobuf_c_message_get_packed_size(body);
    uint8_t           *b     = malloc(blen + 1);
    void              *in    = NULL;
    size_t             inlen = 0;

    assert_non_null(b);
    protobuf_c_message_pack(body, b);
    req.method     = (char *) method;
    req.token      = (char *) (token ? token : "");
    req.body.data  = b;
    req.body.len   = blen;
    req.request_id = f->force_rid ? f->force_rid : f->next_rid++;
    size_t   n     = anvil__v1__request__get_packed_size(&req);
    nng_msg *msg;
    assert_int_equal(nng_msg_alloc(&msg, n), 0);
    anvil__v1__request__pack(&req, nng_msg_body(msg));
    free(b);
    int rv = nng_sendmsg(s, msg, 0);
    if (rv != 0)
        nng_msg_free(msg);
    if (rv == 0)
        rv = nng_recv(s, &in, &inlen, NNG_FLAG_ALLOC);
    if (rv != 0)
        print_error("%s: %s\n", method, nng_strerror(rv));
    assert_int_equal(rv, 0);
    Anvil__V1__Reply *rep = anvil__v1__reply__unpack(NULL, inlen, in);
    nng_free(in, inlen);
    assert_non_null(rep);
    assert_int_equal(rep->request_id, req.request_id);
    return rep;
}

static Anvil__V1__Reply *
call(struct fixture *f, const char *token, const char *method,
    const ProtobufCMessage *body)
{
    return call_on(f, f->sock, token, method, body);
}

// Asserts rep has code and (if needle) a message containing it; frees rep.
static void
expect(Anvil__V1__Reply *rep, int code, const char *needle)
{
    if ((int) rep->code != code
        || (needle != NULL && strstr(rep->message, needle) == NULL))
        print_error("reply %s \"%s\"; expected %s with \"%s\"\n",
            anvil_code_name((int) rep->code), rep->message,
            anvil_code_name(code), needle ? needle : "");
    assert_int_equal(rep->code, code);
    if (code != OK) {
        assert_true(rep->message[0] != '\0');
        assert_int_equal(rep->body.len, 0);
    }
    if (needle != NULL)
        assert_non_null(strstr(rep->message, needle));
    anvil__v1__reply__free_unpacked(rep, NULL);
}

// Asserts rep is OK and returns its body unpacked with desc (caller frees
// with protobuf_c_message_free_unpacked); frees rep.
static ProtobufCMessage *
ok_body(Anvil__V1__Reply *rep, const ProtobufCMessageDescriptor *desc)
{
    if (rep->code != OK)
        print_error("reply %s \"%s\"; expected OK\n",
            anvil_code_name((int) rep->code), rep->message);
    assert_int_equal(rep->code, OK);
    ProtobufCMessage *m
        = protobuf_c_message_unpack(desc, NULL, rep->body.len, rep->body.data);
    anvil__v1__reply__free_unpacked(rep, NULL);
    assert_non_null(m);
    return m;
}

static void
health_is(struct fixture *f, nng_socket s, const char *token, int code)
{
    Anvil__V1__HealthRequest req = ANVIL__V1__HEALTH_REQUEST__INIT;

    expect(call_on(f, s, token, "Health", &req.base), code, NULL);
}

// CreateToken as admin: the secret into secret, the token's id into id.
// Returns the token's expires_at_ms.
static int64_t
create_token(struct fixture *f, int role, const char *name, int64_t expires_in,
    char *secret, char *id)
{
    Anvil__V1__CreateTokenRequest req = ANVIL__V1__CREATE_TOKEN_REQUEST__INIT;

    req.role          = (Anvil__V1__Role) role;
    req.name          = (char *) name;
    req.expires_in_ms = expires_in;
    Anvil__V1__CreateTokenResponse *r
        = (Anvil__V1__CreateTokenResponse *) ok_body(
            call(f, f->admin, "CreateToken", &req.base),
            &anvil__v1__create_token_response__descriptor);
    assert_non_null(r->token);
    assert_int_equal(strlen(r->secret), 68);
    assert_memory_equal(r->secret, "anv_", 4);
    assert_int_equal(r->token->role, role);
    assert_string_equal(r->token->name, name);
    assert_true(r->token->id[0] == 't');
    snprintf(secret, SECRET_MAX, "%s", r->secret);
    if (id != NULL)
        snprintf(id, 32, "%s", r->token->id);
    int64_t expires = r->token->expires_at_ms;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return expires;
}

static Anvil__V1__Reply *
submit(struct fixture *f, const char *token, const char *type)
{
    Anvil__V1__SubmitJobRequest req = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;

    req.type         = (char *) type;
    req.payload.data = (uint8_t *) "{}";
    req.payload.len  = 2;
    return call(f, token, "SubmitJob", &req.base);
}

// A submit that must succeed; the job id into id (32 bytes).
static void
submit_ok(struct fixture *f, const char *token, const char *type, char *id)
{
    Anvil__V1__SubmitJobResponse *r = (Anvil__V1__SubmitJobResponse *) ok_body(
        submit(f, token, type), &anvil__v1__submit_job_response__descriptor);

    assert_true(r->id[0] != '\0');
    snprintf(id, 32, "%s", r->id);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

// GetJob as token (must succeed); caller frees.
static Anvil__V1__GetJobResponse *
get_job(struct fixture *f, const char *token, const char *id)
{
    Anvil__V1__GetJobRequest req = ANVIL__V1__GET_JOB_REQUEST__INIT;

    req.id                       = (char *) id;
    Anvil__V1__GetJobResponse *r = (Anvil__V1__GetJobResponse *) ok_body(
        call(f, token, "GetJob", &req.base),
        &anvil__v1__get_job_response__descriptor);
    assert_non_null(r->job);
    return r;
}

static size_t
count_jobs(struct fixture *f)
{
    Anvil__V1__ListJobsRequest req = ANVIL__V1__LIST_JOBS_REQUEST__INIT;

    req.limit                      = 1000;
    Anvil__V1__ListJobsResponse *r = (Anvil__V1__ListJobsResponse *) ok_body(
        call(f, f->admin, "ListJobs", &req.base),
        &anvil__v1__list_jobs_response__descriptor);
    size_t n = r->n_jobs;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return n;
}

static Anvil__V1__ListTokensResponse *
list_tokens(struct fixture *f)
{
    Anvil__V1__ListTokensRequest req = ANVIL__V1__LIST_TOKENS_REQUEST__INIT;

    return (Anvil__V1__ListTokensResponse *) ok_body(
        call(f, f->admin, "ListTokens", &req.base),
        &anvil__v1__list_tokens_response__descriptor);
}

static size_t
count_tokens(struct fixture *f)
{
    Anvil__V1__ListTokensResponse *r = list_tokens(f);
    size_t                         n = r->n_tokens;

    protobuf_c_message_free_unpacked(&r->base, NULL);
    return n;
}

// Poll as token for one job of type on "default"; the job id into id and
// the lease token into *lease.
static void
poll_one(struct fixture *f, const char *token, const char *worker,
    const char *type, char *id, uint32_t *lease)
{
    Anvil__V1__PollRequest req     = ANVIL__V1__POLL_REQUEST__INIT;
    char                  *types[] = { (char *) type };

    req.worker_id = (char *) worker;
    req.types     = types;
    req.n_types   = 1;
    req.max_jobs  = 1;
    req.wait_ms   = 1000;
    Anvil__V1__PollResponse *r
        = (Anvil__V1__PollResponse *) ok_body(call(f, token, "Poll", &req.base),
            &anvil__v1__poll_response__descriptor);
    assert_int_equal(r->n_leases, 1);
    snprintf(id, 32, "%s", r->leases[0]->job->id);
    *lease = r->leases[0]->token;
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static Anvil__V1__Reply *
complete(struct fixture *f, const char *token, const char *id, uint32_t lease,
    const char *result)
{
    Anvil__V1__CompleteRequest req = ANVIL__V1__COMPLETE_REQUEST__INIT;

    req.job_id      = (char *) id;
    req.token       = lease;
    req.result.data = (uint8_t *) result;
    req.result.len  = strlen(result);
    return call(f, token, "Complete", &req.base);
}

static Anvil__V1__Reply *
fail_job(struct fixture *f, const char *token, const char *id, uint32_t lease)
{
    Anvil__V1__FailRequest req = ANVIL__V1__FAIL_REQUEST__INIT;

    req.job_id   = (char *) id;
    req.token    = lease;
    req.error    = (char *) "forged failure";
    req.no_retry = true;
    return call(f, token, "Fail", &req.base);
}

static Anvil__V1__Reply *
heartbeat(struct fixture *f, const char *token, const char *worker,
    const char *id, uint32_t lease)
{
    Anvil__V1__HeartbeatRequest req    = ANVIL__V1__HEARTBEAT_REQUEST__INIT;
    Anvil__V1__LeaseRef         ref    = ANVIL__V1__LEASE_REF__INIT;
    Anvil__V1__LeaseRef        *refs[] = { &ref };

    ref.job_id    = (char *) id;
    ref.token     = lease;
    req.worker_id = (char *) worker;
    req.leases    = refs;
    req.n_leases  = 1;
    return call(f, token, "Heartbeat", &req.base);
}

static void
pause_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

// ---- bootstrap ----

static void
test_the_bootstrap_file_holds_an_admin_token_only_its_owner_reads(void **state)
{
    struct fixture *f = *state;
    struct stat     st;

    assert_int_equal(stat(f->token_file, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(strlen(f->admin), 68);
    assert_memory_equal(f->admin, "anv_", 4);

    // It is an admin token: it may manage tokens.
    Anvil__V1__ListTokensResponse *r = list_tokens(f);
    assert_int_equal(r->n_tokens, 1);
    assert_int_equal(r->tokens[0]->role, ANVIL__V1__ROLE__ROLE_ADMIN);
    assert_int_equal(r->tokens[0]->revoked_at_ms, 0);
    assert_int_equal(r->tokens[0]->expires_at_ms, 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    health_is(f, f->sock, f->admin, OK);
}

static void
test_a_second_start_reuses_the_bootstrap_token(void **state)
{
    struct fixture *f = *state;
    char            before[SECRET_MAX];

    snprintf(before, sizeof(before), "%s", f->admin);
    stop(f);
    assert_int_equal(start(f), ANVIL_OK);
    assert_int_equal(read_admin(f), 0);
    assert_string_equal(f->admin, before);
    health_is(f, f->sock, f->admin, OK);
    // Registered once, not once per start.
    assert_int_equal(count_tokens(f), 1);

    stop(f);
    assert_int_equal(start(f), ANVIL_OK);
    assert_int_equal(count_tokens(f), 1);
    struct stat st;
    assert_int_equal(stat(f->token_file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void
test_a_bootstrap_file_written_by_the_operator_becomes_an_admin_token(
    void **state)
{
    struct fixture *f      = *state;
    const char     *secret = "operator-chosen-admin-secret-42";
    FILE           *fp     = fopen(f->token_file, "w");

    assert_non_null(fp);
    fprintf(fp, "%s\n", secret);
    fclose(fp);
    assert_int_equal(start(f), ANVIL_OK);
    health_is(f, f->sock, secret, OK);
    snprintf(f->admin, sizeof(f->admin), "%s", secret);
    Anvil__V1__ListTokensResponse *r = list_tokens(f);
    assert_int_equal(r->n_tokens, 1);
    assert_int_equal(r->tokens[0]->role, ANVIL__V1__ROLE__ROLE_ADMIN);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    // The file is the operator's: left as it was.
    char *text = harness_read_file(f->token_file, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, secret));
    free(text);
    health_is(f, f->sock, "operator-chosen-admin-secret-43", UNAUTHENTICATED);
}

static void
test_a_bootstrap_file_without_a_token_stops_the_start(void **state)
{
    struct fixture    *f   = *state;
    struct anvil_error err = { 0 };
    char               bad[128];
    FILE              *fp = fopen(f->token_file, "w");

    assert_non_null(fp);
    fprintf(fp, "short\n");
    fclose(fp);
    assert_int_equal(
        server_start(&f->cfg, &f->server, &err), ANVIL_INVALID_ARGUMENT);
    assert_null(f->server);
    assert_non_null(strstr(err.msg, f->token_file));

    // A file that cannot be created: the start fails, naming it.
    snprintf(bad, sizeof(bad), "%s/no/such/dir/admin.token", f->dir);
    f->cfg.bootstrap_token_file = bad;
    memset(&err, 0, sizeof(err));
    assert_int_not_equal(server_start(&f->cfg, &f->server, &err), ANVIL_OK);
    assert_null(f->server);
    assert_non_null(strstr(err.msg, bad));
}

// ---- who is refused ----

static void
test_a_request_without_a_token_is_unauthenticated_and_changes_nothing(
    void **state)
{
    struct fixture *f = *state;

    expect(submit(f, NULL, "echo"), UNAUTHENTICATED, "token");
    expect(submit(f, "", "echo"), UNAUTHENTICATED, "token");
    health_is(f, f->sock, NULL, UNAUTHENTICATED);
    assert_int_equal(count_jobs(f), 0);
    // The same request with the token is served.
    char id[32];
    submit_ok(f, f->admin, "echo", id);
    assert_int_equal(count_jobs(f), 1);
}

static void
test_a_wrong_token_is_unauthenticated(void **state)
{
    struct fixture *f = *state;
    char            wrong[SECRET_MAX];

    snprintf(wrong, sizeof(wrong), "%s", f->admin);
    wrong[67]         = wrong[67] == 'a' ? 'b' : 'a';
    const char *bad[] = { wrong,
        "anv_0000000000000000000000000000000000000000000000000000000000000000",
        "Bearer x", "\x01\x02" };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect(submit(f, bad[i], "echo"), UNAUTHENTICATED, NULL);
        health_is(f, f->sock, bad[i], UNAUTHENTICATED);
    }
    assert_int_equal(count_jobs(f), 0);
}

static void
test_an_expired_token_is_unauthenticated(void **state)
{
    struct fixture *f = *state;
    char            secret[SECRET_MAX];
    int64_t         expires = create_token(
                f, ANVIL__V1__ROLE__ROLE_CLIENT, "short", 1500, secret, NULL);
    int64_t deadline   = expires + 10000;
    int64_t refused_at = 0;

    assert_true(expires > 0);
    health_is(f, f->sock, secret, OK); // valid until then
    while (av_now_ms() < deadline) {
        Anvil__V1__HealthRequest req  = ANVIL__V1__HEALTH_REQUEST__INIT;
        Anvil__V1__Reply        *rep  = call(f, secret, "Health", &req.base);
        int                      code = (int) rep->code;

        if (code == UNAUTHENTICATED)
            assert_non_null(strstr(rep->message, "expired"));
        anvil__v1__reply__free_unpacked(rep, NULL);
        if (code == UNAUTHENTICATED) {
            refused_at = av_now_ms();
            break;
        }
        assert_int_equal(code, OK);
        pause_ms(20);
    }
    assert_true(refused_at != 0);
    assert_true(refused_at >= expires); // not before its time
    expect(submit(f, secret, "echo"), UNAUTHENTICATED, "expired");
    // A token with no expiry made at the same time still works.
    char forever[SECRET_MAX];
    assert_int_equal(create_token(f, ANVIL__V1__ROLE__ROLE_CLIENT, "forever", 0,
                         forever, NULL),
        0);
    health_is(f, f->sock, forever, OK);
}

// expires_in_ms is added to "now": INT64_MAX must not wrap into the past
// (a token expired before it was made) or overflow (UB).
static void
test_an_expiry_of_int64_max_is_refused_or_far_away(void **state)
{
    struct fixture               *f   = *state;
    Anvil__V1__CreateTokenRequest req = ANVIL__V1__CREATE_TOKEN_REQUEST__INIT;

    req.role              = ANVIL__V1__ROLE__ROLE_READER;
    req.name              = (char *) "forever";
    req.expires_in_ms     = INT64_MAX;
    Anvil__V1__Reply *rep = call(f, f->admin, "CreateToken", &req.base);
    if (rep->code != OK) {
        expect(rep, INVALID_ARGUMENT, "expires_in_ms");
        return;
    }
    Anvil__V1__CreateTokenResponse *r
        = (Anvil__V1__CreateTokenResponse *) ok_body(
            rep, &anvil__v1__create_token_response__descriptor);
    if (r->token->expires_at_ms < av_now_ms())
        print_error("expires_at_ms %lld is in the past\n",
            (long long) r->token->expires_at_ms);
    assert_true(r->token->expires_at_ms > av_now_ms());
    health_is(f, f->sock, r->secret, OK);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void
test_a_revoked_token_is_unauthenticated(void **state)
{
    struct fixture               *f   = *state;
    Anvil__V1__RevokeTokenRequest req = ANVIL__V1__REVOKE_TOKEN_REQUEST__INIT;
    char                          secret[SECRET_MAX], id[32];
    char                          job[32];

    create_token(f, ANVIL__V1__ROLE__ROLE_CLIENT, "leaked", 0, secret, id);
    submit_ok(f, secret, "echo", job);
    req.id = id;
    Anvil__V1__RevokeTokenResponse *r
        = (Anvil__V1__RevokeTokenResponse *) ok_body(
            call(f, f->admin, "RevokeToken", &req.base),
            &anvil__v1__revoke_token_response__descriptor);
    assert_non_null(r->token);
    assert_string_equal(r->token->id, id);
    assert_true(r->token->revoked_at_ms > 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    expect(submit(f, secret, "echo"), UNAUTHENTICATED, "revoked");
    health_is(f, f->sock, secret, UNAUTHENTICATED);
    assert_int_equal(count_jobs(f), 1);

    // It stays revoked across a restart.
    stop(f);
    assert_int_equal(start(f), ANVIL_OK);
    health_is(f, f->sock, secret, UNAUTHENTICATED);
    health_is(f, f->sock, f->admin, OK);
}

// A restart must not bring a revoked bootstrap token back: the file still
// holds it, but the store knows it was revoked.
static void
test_a_revoked_bootstrap_token_stays_revoked_after_a_restart(void **state)
{
    struct fixture               *f   = *state;
    Anvil__V1__RevokeTokenRequest req = ANVIL__V1__REVOKE_TOKEN_REQUEST__INIT;
    char                          second[SECRET_MAX], boot[SECRET_MAX];

    create_token(f, ANVIL__V1__ROLE__ROLE_ADMIN, "second", 0, second, NULL);
    Anvil__V1__ListTokensResponse *r      = list_tokens(f);
    char                           id[32] = "";
    assert_int_equal(r->n_tokens, 2);
    for (size_t i = 0; i < r->n_tokens; i++) {
        if (strcmp(r->tokens[i]->name, "bootstrap") == 0)
            snprintf(id, sizeof(id), "%s", r->tokens[i]->id);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    assert_true(id[0] == 't');
    req.id = id;
    expect(call(f, second, "RevokeToken", &req.base), OK, NULL);
    health_is(f, f->sock, f->admin, UNAUTHENTICATED);

    snprintf(boot, sizeof(boot), "%s", f->admin);
    stop(f);
    assert_int_equal(start(f), ANVIL_OK);
    assert_int_equal(read_admin(f), 0);
    assert_string_equal(f->admin, boot);
    health_is(f, f->sock, boot, UNAUTHENTICATED);
    health_is(f, f->sock, second, OK);
}

static void
test_revoking_an_unknown_token_id_is_not_found(void **state)
{
    struct fixture               *f   = *state;
    Anvil__V1__RevokeTokenRequest req = ANVIL__V1__REVOKE_TOKEN_REQUEST__INIT;
    const char *ids[] = { "t999999", "t0", "t-1", "x1", "", "t1x", "j1" };

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        req.id = (char *) ids[i];
        expect(call(f, f->admin, "RevokeToken", &req.base), NOT_FOUND, NULL);
    }
    // Nothing was revoked on the way.
    assert_int_equal(count_tokens(f), 1);
    Anvil__V1__ListTokensResponse *r = list_tokens(f);
    assert_int_equal(r->tokens[0]->revoked_at_ms, 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    health_is(f, f->sock, f->admin, OK);
}

// ---- roles ----

static void
test_a_worker_token_may_not_submit(void **state)
{
    struct fixture *f = *state;
    char            worker[SECRET_MAX];

    create_token(f, ANVIL__V1__ROLE__ROLE_WORKER, "w", 0, worker, NULL);
    expect(submit(f, worker, "echo"), PERMISSION_DENIED, "SubmitJob");
    assert_int_equal(count_jobs(f), 0);
    // What a worker may do, it does.
    health_is(f, f->sock, worker, OK);
    Anvil__V1__PollRequest req     = ANVIL__V1__POLL_REQUEST__INIT;
    char                  *types[] = { (char *) "echo" };
    req.worker_id                  = (char *) "w1";
    req.types                      = types;
    req.n_types                    = 1;
    Anvil__V1__PollResponse *r     = (Anvil__V1__PollResponse *) ok_body(
            call(f, worker, "Poll", &req.base),
            &anvil__v1__poll_response__descriptor);
    assert_int_equal(r->n_leases, 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void
test_a_reader_may_get_but_not_cancel(void **state)
{
    struct fixture             *f   = *state;
    Anvil__V1__CancelJobRequest req = ANVIL__V1__CANCEL_JOB_REQUEST__INIT;
    char                        reader[SECRET_MAX], client[SECRET_MAX];
    char                        job[32];

    create_token(f, ANVIL__V1__ROLE__ROLE_READER, "dash", 0, reader, NULL);
    create_token(f, ANVIL__V1__ROLE__ROLE_CLIENT, "prod", 0, client, NULL);
    submit_ok(f, client, "echo", job);

    Anvil__V1__GetJobResponse *g = get_job(f, reader, job);
    assert_string_equal(g->job->id, job);
    assert_int_equal(g->job->state, ANVIL__V1__JOB_STATE__JOB_STATE_QUEUED);
    protobuf_c_message_free_unpacked(&g->base, NULL);

    req.id = job;
    expect(call(f, reader, "CancelJob", &req.base), PERMISSION_DENIED,
        "CancelJob");
    expect(submit(f, reader, "echo"), PERMISSION_DENIED, "reader");
    g = get_job(f, reader, job);
    assert_int_equal(g->job->state, ANVIL__V1__JOB_STATE__JOB_STATE_QUEUED);
    protobuf_c_message_free_unpacked(&g->base, NULL);
    assert_int_equal(count_jobs(f), 1);

    // The client may cancel it.
    expect(call(f, client, "CancelJob", &req.base), OK, NULL);
    g = get_job(f, reader, job);
    assert_int_equal(g->job->state, ANVIL__V1__JOB_STATE__JOB_STATE_CANCELED);
    protobuf_c_message_free_unpacked(&g->base, NULL);
}

static void
test_only_admin_tokens_may_manage_tokens(void **state)
{
    struct fixture *f = *state;
    char            client[SECRET_MAX], worker[SECRET_MAX], id[32];
    Anvil__V1__CreateTokenRequest create
        = ANVIL__V1__CREATE_TOKEN_REQUEST__INIT;
    Anvil__V1__ListTokensRequest  list = ANVIL__V1__LIST_TOKENS_REQUEST__INIT;
    Anvil__V1__RevokeTokenRequest revoke
        = ANVIL__V1__REVOKE_TOKEN_REQUEST__INIT;

    create_token(f, ANVIL__V1__ROLE__ROLE_CLIENT, "c", 0, client, NULL);
    create_token(f, ANVIL__V1__ROLE__ROLE_WORKER, "w", 0, worker, id);
    create.role          = ANVIL__V1__ROLE__ROLE_ADMIN;
    create.name          = (char *) "escalate";
    revoke.id            = id;
    const char *tokens[] = { client, worker };
    for (size_t i = 0; i < 2; i++) {
        expect(call(f, tokens[i], "CreateToken", &create.base),
            PERMISSION_DENIED, "CreateToken");
        expect(call(f, tokens[i], "ListTokens", &list.base), PERMISSION_DENIED,
            "ListTokens");
        expect(call(f, tokens[i], "RevokeToken", &revoke.base),
            PERMISSION_DENIED, "RevokeToken");
    }
    // Nothing was created or revoked.
    Anvil__V1__ListTokensResponse *r = list_tokens(f);
    assert_int_equal(r->n_tokens, 3);
    for (size_t i = 0; i < r->n_tokens; i++) {
        assert_string_not_equal(r->tokens[i]->name, "escalate");
        assert_int_equal(r->tokens[i]->revoked_at_ms, 0);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    health_is(f, f->sock, worker, OK);
}

static void
test_bad_token_requests_are_invalid_argument(void **state)
{
    struct fixture               *f   = *state;
    Anvil__V1__CreateTokenRequest req = ANVIL__V1__CREATE_TOKEN_REQUEST__INIT;

    req.role = ANVIL__V1__ROLE__ROLE_UNSPECIFIED;
    expect(
        call(f, f->admin, "CreateToken", &req.base), INVALID_ARGUMENT, "role");
    req.role = (Anvil__V1__Role) 9;
    expect(
        call(f, f->admin, "CreateToken", &req.base), INVALID_ARGUMENT, "role");
    req.role = ANVIL__V1__ROLE__ROLE_READER;
    req.name = (char *) "no spaces allowed";
    expect(
        call(f, f->admin, "CreateToken", &req.base), INVALID_ARGUMENT, "name");
    req.name          = (char *) "ok";
    req.expires_in_ms = -1;
    expect(call(f, f->admin, "CreateToken", &req.base), INVALID_ARGUMENT,
        "expires_in_ms");
    assert_int_equal(count_tokens(f), 1);
}

// ---- lease holders ----

struct lease_fx {
    char     a[SECRET_MAX], b[SECRET_MAX], client[SECRET_MAX];
    char     job[32];
    uint32_t lease;
};

// Worker token A holds the lease of a job the client submitted.
static void
lease_setup(struct fixture *f, struct lease_fx *l)
{
    char submitted[32];

    create_token(f, ANVIL__V1__ROLE__ROLE_WORKER, "worker-a", 0, l->a, NULL);
    create_token(f, ANVIL__V1__ROLE__ROLE_WORKER, "worker-b", 0, l->b, NULL);
    create_token(f, ANVIL__V1__ROLE__ROLE_CLIENT, "client", 0, l->client, NULL);
    submit_ok(f, l->client, "echo", submitted);
    poll_one(f, l->a, "wa", "echo", l->job, &l->lease);
    assert_string_equal(l->job, submitted);
}

// The job is RUNNING on A's lease, with no result or error.
static void
assert_untouched(struct fixture *f, struct lease_fx *l)
{
    Anvil__V1__GetJobResponse *g = get_job(f, l->client, l->job);

    assert_int_equal(g->job->state, ANVIL__V1__JOB_STATE__JOB_STATE_RUNNING);
    assert_int_equal(g->job->result.len, 0);
    assert_string_equal(g->job->error, "");
    assert_int_equal(g->job->attempt, l->lease);
    assert_string_equal(g->job->worker_id, "wa");
    protobuf_c_message_free_unpacked(&g->base, NULL);
}

static void
test_another_worker_token_may_not_report_on_a_lease(void **state)
{
    struct fixture *f = *state;
    struct lease_fx l;

    lease_setup(f, &l);
    expect(
        complete(f, l.b, l.job, l.lease, "forged"), PERMISSION_DENIED, l.job);
    assert_untouched(f, &l);
    expect(fail_job(f, l.b, l.job, l.lease), PERMISSION_DENIED, l.job);
    assert_untouched(f, &l);

    // Heartbeat: refused, or the job is reported lost to B; either way
    // the lease is not extended for B. B even claims A's worker id.
    const char *ids[] = { "wb", "wa" };
    for (size_t i = 0; i < 2; i++) {
        Anvil__V1__Reply *rep = heartbeat(f, l.b, ids[i], l.job, l.lease);
        if (rep->code == PERMISSION_DENIED) {
            anvil__v1__reply__free_unpacked(rep, NULL);
            continue;
        }
        Anvil__V1__HeartbeatResponse *h
            = (Anvil__V1__HeartbeatResponse *) ok_body(
                rep, &anvil__v1__heartbeat_response__descriptor);
        assert_int_equal(h->n_lost, 1);
        assert_string_equal(h->lost[0], l.job);
        assert_int_equal(h->n_canceled, 0);
        protobuf_c_message_free_unpacked(&h->base, NULL);
    }
    assert_untouched(f, &l);

    // A still holds it: its heartbeat keeps it and its Complete counts.
    Anvil__V1__HeartbeatResponse *h = (Anvil__V1__HeartbeatResponse *) ok_body(
        heartbeat(f, l.a, "wa", l.job, l.lease),
        &anvil__v1__heartbeat_response__descriptor);
    assert_int_equal(h->n_lost, 0);
    assert_true(h->deadline_ms > 0);
    protobuf_c_message_free_unpacked(&h->base, NULL);
    expect(complete(f, l.a, l.job, l.lease, "real"), OK, NULL);
    Anvil__V1__GetJobResponse *g = get_job(f, l.client, l.job);
    assert_int_equal(g->job->state, ANVIL__V1__JOB_STATE__JOB_STATE_SUCCEEDED);
    assert_int_equal(g->job->result.len, 4);
    assert_memory_equal(g->job->result.data, "real", 4);
    protobuf_c_message_free_unpacked(&g->base, NULL);
    // And B still cannot touch the finished job.
    expect(fail_job(f, l.b, l.job, l.lease), PERMISSION_DENIED, NULL);
}

// Polls as token with f's request id; the leases' job ids, comma-joined,
// into ids.
static void
poll_ids(struct fixture *f, const char *token, const char *worker, char *ids,
    size_t len)
{
    Anvil__V1__PollRequest req     = ANVIL__V1__POLL_REQUEST__INIT;
    char                  *types[] = { (char *) "echo" };

    req.worker_id = (char *) worker;
    req.types     = types;
    req.n_types   = 1;
    req.max_jobs  = 10;
    Anvil__V1__PollResponse *r
        = (Anvil__V1__PollResponse *) ok_body(call(f, token, "Poll", &req.base),
            &anvil__v1__poll_response__descriptor);
    ids[0] = '\0';
    for (size_t i = 0; i < r->n_leases; i++)
        snprintf(ids + strlen(ids), len - strlen(ids), "%s%s", i ? "," : "",
            r->leases[i]->job->id);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

// Request ids make resends safe; they must not let one token replay
// another's request: worker B sending a Poll with worker A's request id
// must not be handed A's leases (their payloads are A's to read).
static void
test_a_worker_token_cannot_replay_another_tokens_poll(void **state)
{
    struct fixture *f = *state;
    char            a[SECRET_MAX], b[SECRET_MAX], client[SECRET_MAX];
    char            job[32], ids[128];

    create_token(f, ANVIL__V1__ROLE__ROLE_WORKER, "worker-a", 0, a, NULL);
    create_token(f, ANVIL__V1__ROLE__ROLE_WORKER, "worker-b", 0, b, NULL);
    create_token(f, ANVIL__V1__ROLE__ROLE_CLIENT, "client", 0, client, NULL);
    submit_ok(f, client, "echo", job);

    f->force_rid = f->next_rid++ | 1;
    poll_ids(f, a, "wa", ids, sizeof(ids));
    assert_string_equal(ids, job);
    // A's own resend gets its lease back (what request ids are for) ...
    poll_ids(f, a, "wa", ids, sizeof(ids));
    assert_string_equal(ids, job);
    // ... B's replay of the same id does not.
    poll_ids(f, b, "wb", ids, sizeof(ids));
    f->force_rid = 0;
    if (ids[0] != '\0')
        print_error("worker B was handed %s, leased to worker A\n", ids);
    assert_string_equal(ids, "");
}

static void
test_a_client_token_may_not_report_on_a_lease(void **state)
{
    struct fixture *f = *state;
    struct lease_fx l;

    lease_setup(f, &l);
    expect(complete(f, l.client, l.job, l.lease, "x"), PERMISSION_DENIED,
        "Complete");
    expect(fail_job(f, l.client, l.job, l.lease), PERMISSION_DENIED, "Fail");
    expect(heartbeat(f, l.client, "wa", l.job, l.lease), PERMISSION_DENIED,
        "Heartbeat");
    assert_untouched(f, &l);
}

// ---- admin ----

static void
admin_call_ok(
    struct fixture *f, const char *method, const ProtobufCMessage *body)
{
    Anvil__V1__Reply *rep = call(f, f->admin, method, body);

    if (rep->code != OK)
        print_error("admin %s: %s \"%s\"\n", method,
            anvil_code_name((int) rep->code), rep->message);
    expect(rep, OK, NULL);
}

// Submits a one-step workflow as admin; its id into id.
static void
admin_workflow(struct fixture *f, char *id)
{
    Anvil__V1__SubmitWorkflowRequest req
        = ANVIL__V1__SUBMIT_WORKFLOW_REQUEST__INIT;
    Anvil__V1__WorkflowSpec spec    = ANVIL__V1__WORKFLOW_SPEC__INIT;
    Anvil__V1__StepSpec     step    = ANVIL__V1__STEP_SPEC__INIT;
    Anvil__V1__StepSpec    *steps[] = { &step };

    step.name    = (char *) "only";
    step.type    = (char *) "wfstep";
    spec.name    = (char *) "admin-flow";
    spec.steps   = steps;
    spec.n_steps = 1;
    req.spec     = &spec;
    Anvil__V1__SubmitWorkflowResponse *r
        = (Anvil__V1__SubmitWorkflowResponse *) ok_body(
            call(f, f->admin, "SubmitWorkflow", &req.base),
            &anvil__v1__submit_workflow_response__descriptor);
    snprintf(id, 32, "%s", r->id);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void
admin_workflow_rpcs(struct fixture *f)
{
    char                            wf[32];
    Anvil__V1__GetWorkflowRequest   get = ANVIL__V1__GET_WORKFLOW_REQUEST__INIT;
    Anvil__V1__ListWorkflowsRequest list
        = ANVIL__V1__LIST_WORKFLOWS_REQUEST__INIT;
    Anvil__V1__WaitWorkflowRequest wait
        = ANVIL__V1__WAIT_WORKFLOW_REQUEST__INIT;
    Anvil__V1__CancelWorkflowRequest cxl
        = ANVIL__V1__CANCEL_WORKFLOW_REQUEST__INIT;

    admin_workflow(f, wf);
    get.id  = wf;
    wait.id = wf;
    cxl.id  = wf;
    admin_call_ok(f, "GetWorkflow", &get.base);
    admin_call_ok(f, "ListWorkflows", &list.base);
    admin_call_ok(f, "WaitWorkflow", &wait.base);
    admin_call_ok(f, "CancelWorkflow", &cxl.base);
}

static void
admin_token_rpcs(struct fixture *f)
{
    char                          secret[SECRET_MAX], id[32];
    Anvil__V1__ListTokensRequest  list = ANVIL__V1__LIST_TOKENS_REQUEST__INIT;
    Anvil__V1__RevokeTokenRequest revoke
        = ANVIL__V1__REVOKE_TOKEN_REQUEST__INIT;

    create_token(f, ANVIL__V1__ROLE__ROLE_ADMIN, "second-admin", 0, secret, id);
    health_is(f, f->sock, secret, OK);
    admin_call_ok(f, "ListTokens", &list.base);
    revoke.id = id;
    admin_call_ok(f, "RevokeToken", &revoke.base);
    health_is(f, f->sock, secret, UNAUTHENTICATED);
}

static void
test_an_admin_token_may_call_every_rpc(void **state)
{
    struct fixture               *f    = *state;
    Anvil__V1__GetJobRequest      get  = ANVIL__V1__GET_JOB_REQUEST__INIT;
    Anvil__V1__ListJobsRequest    list = ANVIL__V1__LIST_JOBS_REQUEST__INIT;
    Anvil__V1__WaitJobRequest     wait = ANVIL__V1__WAIT_JOB_REQUEST__INIT;
    Anvil__V1__CancelJobRequest   cxl  = ANVIL__V1__CANCEL_JOB_REQUEST__INIT;
    Anvil__V1__ListWorkersRequest workers
        = ANVIL__V1__LIST_WORKERS_REQUEST__INIT;
    char     j1[32], j2[32], j3[32], leased[32];
    uint32_t lease;

    health_is(f, f->sock, f->admin, OK);
    submit_ok(f, f->admin, "echo", j1);
    submit_ok(f, f->admin, "echo", j2);
    submit_ok(f, f->admin, "other", j3);
    get.id  = j1;
    wait.id = j1;
    cxl.id  = j3;
    admin_call_ok(f, "GetJob", &get.base);
    admin_call_ok(f, "ListJobs", &list.base);
    admin_call_ok(f, "WaitJob", &wait.base);
    admin_call_ok(f, "CancelJob", &cxl.base);
    poll_one(f, f->admin, "admin-worker", "echo", leased, &lease);
    expect(heartbeat(f, f->admin, "admin-worker", leased, lease), OK, NULL);
    expect(complete(f, f->admin, leased, lease, "ok"), OK, NULL);
    poll_one(f, f->admin, "admin-worker", "echo", leased, &lease);
    expect(fail_job(f, f->admin, leased, lease), OK, NULL);
    admin_call_ok(f, "ListWorkers", &workers.base);
    admin_workflow_rpcs(f);
    admin_token_rpcs(f);
}

static void
test_an_admin_token_may_report_on_a_workers_lease(void **state)
{
    struct fixture *f = *state;
    struct lease_fx l;

    lease_setup(f, &l);
    expect(complete(f, f->admin, l.job, l.lease, "by-admin"), OK, NULL);
    Anvil__V1__GetJobResponse *g = get_job(f, l.client, l.job);
    assert_int_equal(g->job->state, ANVIL__V1__JOB_STATE__JOB_STATE_SUCCEEDED);
    protobuf_c_message_free_unpacked(&g->base, NULL);
}

// ---- secrets ----

static bool
contains(const void *hay, size_t n, const void *needle, size_t m)
{
    const uint8_t *h = hay;

    for (size_t i = 0; m <= n && i <= n - m; i++) {
        if (memcmp(h + i, needle, m) == 0)
            return true;
    }
    return false;
}

// True if the database (or its WAL) holds the bytes.
static bool
db_holds(struct fixture *f, const void *bytes, size_t n)
{
    const char *suffix[] = { "", "-wal" };
    bool        found    = false;

    for (size_t i = 0; i < 2; i++) {
        char   path[160];
        size_t len = 0;
        snprintf(path, sizeof(path), "%s%s", f->db, suffix[i]);
        char *text = harness_read_file(path, &len);
        if (text != NULL)
            found |= contains(text, len, bytes, n);
        free(text);
    }
    return found;
}

static void
test_created_secrets_work_and_are_never_listed_or_stored(void **state)
{
    struct fixture *f = *state;
    char            secrets[3][SECRET_MAX];
    const int       roles[] = { ANVIL__V1__ROLE__ROLE_CLIENT,
              ANVIL__V1__ROLE__ROLE_WORKER, ANVIL__V1__ROLE__ROLE_READER };

    for (size_t i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "svc-%zu", i);
        create_token(f, roles[i], name, 0, secrets[i], NULL);
        health_is(f, f->sock, secrets[i], OK);
    }
    assert_string_not_equal(secrets[0], secrets[1]);

    Anvil__V1__ListTokensRequest req = ANVIL__V1__LIST_TOKENS_REQUEST__INIT;
    Anvil__V1__Reply *rep = call(f, f->admin, "ListTokens", &req.base);
    assert_int_equal(rep->code, OK);
    assert_false(contains(rep->body.data, rep->body.len, "anv_", 4));
    assert_false(contains(rep->body.data, rep->body.len, f->admin, 68));
    for (size_t i = 0; i < 3; i++)
        assert_false(contains(rep->body.data, rep->body.len, secrets[i], 68));
    Anvil__V1__ListTokensResponse *list
        = (Anvil__V1__ListTokensResponse *) ok_body(
            rep, &anvil__v1__list_tokens_response__descriptor);
    assert_int_equal(list->n_tokens, 4);
    protobuf_c_message_free_unpacked(&list->base, NULL);

    // The database keeps hashes, never the secrets.
    for (size_t i = 0; i < 3; i++) {
        uint8_t hash[AV_SHA256_LEN];
        av_sha256(secrets[i], strlen(secrets[i]), hash);
        assert_true(db_holds(f, hash, sizeof(hash)));
        assert_false(db_holds(f, secrets[i], strlen(secrets[i])));
    }
    assert_false(db_holds(f, f->admin, strlen(f->admin)));
}

// ---- when tokens are required ----

// Starts a server on listen (dialled at dial) with auth mode and no
// bootstrap file; asserts what a request without a token gets.
static void
tokenless_health_is(
    struct fixture *f, const char *listen, const char *dial, int auth, int code)
{
    snprintf(f->url, sizeof(f->url), "%s", dial);
    f->cfg.listen_url           = listen;
    f->cfg.auth                 = auth;
    f->cfg.bootstrap_token_file = NULL;
    assert_int_equal(start(f), ANVIL_OK);
    health_is(f, f->sock, NULL, code);
    if (code == OK) {
        char id[32];
        submit_ok(f, NULL, "echo", id);
    } else
        expect(submit(f, NULL, "echo"), code, "token");
    stop(f);
}

static void
test_auto_mode_needs_no_token_on_local_urls(void **state)
{
    struct fixture *f = *state;
    char            ipc[128], tcp[64];
    int             port = harness_free_tcp_port();

    assert_true(port > 0);
    snprintf(ipc, sizeof(ipc), "ipc://%s/s", f->dir);
    snprintf(tcp, sizeof(tcp), "tcp://127.0.0.1:%d", port);
    tokenless_health_is(f, ipc, ipc, SERVER_AUTH_AUTO, OK);
    tokenless_health_is(f, tcp, tcp, SERVER_AUTH_AUTO, OK);
}

static void
test_auth_on_requires_a_token_even_on_local_urls(void **state)
{
    struct fixture *f = *state;
    char            ipc[128], tcp[64];
    int             port = harness_free_tcp_port();

    assert_true(port > 0);
    snprintf(ipc, sizeof(ipc), "ipc://%s/s", f->dir);
    snprintf(tcp, sizeof(tcp), "tcp://127.0.0.1:%d", port);
    tokenless_health_is(f, ipc, ipc, SERVER_AUTH_ON, UNAUTHENTICATED);
    tokenless_health_is(f, tcp, tcp, SERVER_AUTH_ON, UNAUTHENTICATED);
}

static void
test_auto_mode_requires_a_token_on_other_addresses(void **state)
{
    struct fixture *f = *state;
    char            any[64], dial[64];
    int             port = harness_free_tcp_port();

    assert_true(port > 0);
    snprintf(any, sizeof(any), "tcp://0.0.0.0:%d", port);
    snprintf(dial, sizeof(dial), "tcp://127.0.0.1:%d", port);
    tokenless_health_is(f, any, dial, SERVER_AUTH_AUTO, UNAUTHENTICATED);
    // --insecure turns tokens off there too.
    tokenless_health_is(f, any, dial, SERVER_AUTH_OFF, OK);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define U(fn) cmocka_unit_test_setup_teardown(fn, setup_unstarted, teardown)
    const struct CMUnitTest tests[] = {
        T(test_the_bootstrap_file_holds_an_admin_token_only_its_owner_reads),
        T(test_a_second_start_reuses_the_bootstrap_token),
        U(test_a_bootstrap_file_written_by_the_operator_becomes_an_admin_token),
        U(test_a_bootstrap_file_without_a_token_stops_the_start),
        T(test_a_request_without_a_token_is_unauthenticated_and_changes_nothing),
        T(test_a_wrong_token_is_unauthenticated),
        T(test_an_expired_token_is_unauthenticated),
        T(test_a_revoked_token_is_unauthenticated),
        T(test_a_revoked_bootstrap_token_stays_revoked_after_a_restart),
        T(test_revoking_an_unknown_token_id_is_not_found),
        T(test_a_worker_token_may_not_submit),
        T(test_a_reader_may_get_but_not_cancel),
        T(test_only_admin_tokens_may_manage_tokens),
        T(test_bad_token_requests_are_invalid_argument),
        T(test_another_worker_token_may_not_report_on_a_lease),
        T(test_a_client_token_may_not_report_on_a_lease),
        T(test_an_admin_token_may_call_every_rpc),
        T(test_an_admin_token_may_report_on_a_workers_lease),
        T(test_created_secrets_work_and_are_never_listed_or_stored),
        U(test_auto_mode_needs_no_token_on_local_urls),
        U(test_auth_on_requires_a_token_even_on_local_urls),
        U(test_auto_mode_requires_a_token_on_other_addresses),
        T(test_a_worker_token_cannot_replay_another_tokens_poll),
        T(test_an_expiry_of_int64_max_is_refused_or_far_away),
    };
#undef T
#undef U
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
