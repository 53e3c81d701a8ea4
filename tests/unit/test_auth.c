// test_auth.c - the token table and role rules of server/auth.c: which
// role may call which rpc (every rpc of the service), unknown, expired and
// revoked tokens, auth switched off, the token format and its hash, the
// role names, and the constant-time lookup.
#include "../../server/auth.h"
#include "../../server/security.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "anvil/v1/anvil.pb-c.h"
#include "util/sha256.h"

#define NOW 1700000000000LL

// Every rpc of service Anvil, with the roles (besides admin) that may call
// it, as docs/security.md states them.
#define C (1u << ANVIL_ROLE_CLIENT)
#define W (1u << ANVIL_ROLE_WORKER)
#define RD (1u << ANVIL_ROLE_READER)
static const struct {
    const char *method;
    unsigned    roles;
} expected[] = {
    { "SubmitJob", C },
    { "SubmitJobs", C },
    { "GetJob", C | RD },
    { "ListJobs", C | RD },
    { "WaitJob", C | RD },
    { "CancelJob", C },
    { "Poll", W },
    { "Heartbeat", W },
    { "Complete", W },
    { "Fail", W },
    { "Report", W },
    { "ListWorkers", C | RD },
    { "Health", C | RD | W },
    { "SubmitWorkflow", C },
    { "GetWorkflow", C | RD },
    { "ListWorkflows", C | RD },
    { "WaitWorkflow", C | RD },
    { "CancelWorkflow", C },
    { "RetryJob", C },
    { "RetryJobs", C },
    { "CancelJobs", C },
    { "RetryWorkflow", C },
    { "WatchEvents", C | RD },
    { "PauseQueue", C },
    { "ResumeQueue", C },
    { "SetQueueLimit", C },
    { "CreateSchedule", C },
    { "GetSchedule", C | RD },
    { "ListSchedules", C | RD },
    { "PauseSchedule", C },
    { "ResumeSchedule", C },
    { "DeleteSchedule", C },
    { "CreateToken", 0 },
    { "ListTokens", 0 },
    { "RevokeToken", 0 },
};
#undef C
#undef W
#undef RD

#define N_EXPECTED (sizeof(expected) / sizeof(expected[0]))

struct fx {
    struct auth *a;
    char         secret[5][AUTH_TOKEN_LEN + 1]; // index = role; 0 unused
};

// An enabled table with one token per role: token id = role.
static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    f->a = auth_new(true);
    if (f->a == NULL)
        return -1;
    for (int r = ANVIL_ROLE_ADMIN; r <= ANVIL_ROLE_READER; r++) {
        uint8_t hash[AV_SHA256_LEN];

        if (auth_token_new(f->secret[r], sizeof(f->secret[r]), hash) != 0
            || auth_put(f->a, hash, r, r, 0, 0) != 0)
            return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    auth_free(f->a);
    free(f);
    return 0;
}

// Checks secret for method at NOW: the code, and fills id/role/err.
static int
check(struct fx *f, const char *secret, const char *method, int64_t *id,
    int *role, struct anvil_error *err)
{
    memset(err, 0, sizeof(*err));
    return auth_check(f->a, secret, method, NOW, id, role, err);
}

static void
test_the_role_rules_cover_every_rpc_of_the_service(void **state)
{
    struct fx *f = *state;

    for (size_t i = 0; i < N_EXPECTED; i++) {
        for (int r = ANVIL_ROLE_ADMIN; r <= ANVIL_ROLE_READER; r++) {
            struct anvil_error err;
            int64_t            id   = -1;
            int                role = -1;
            bool may = r == ANVIL_ROLE_ADMIN || (expected[i].roles & (1u << r));
            int  rc
                = check(f, f->secret[r], expected[i].method, &id, &role, &err);

            if (rc != (may ? ANVIL_OK : ANVIL_PERMISSION_DENIED))
                print_error("%s token calling %s: %s \"%s\"\n",
                    auth_role_name(r), expected[i].method, anvil_code_name(rc),
                    err.msg);
            if (may) {
                assert_int_equal(rc, ANVIL_OK);
                assert_int_equal(id, r);
                assert_int_equal(role, r);
                continue;
            }
            assert_int_equal(rc, ANVIL_PERMISSION_DENIED);
            assert_int_equal(err.code, ANVIL_PERMISSION_DENIED);
            // The message names the role and the rpc.
            assert_non_null(strstr(err.msg, auth_role_name(r)));
            assert_non_null(strstr(err.msg, expected[i].method));
        }
    }
}

// The table above is the service's: every rpc in anvil.proto is in it.
static void
test_the_rule_table_here_lists_every_rpc_of_the_proto(void **state)
{
    const ProtobufCServiceDescriptor *d = &anvil__v1__anvil__descriptor;

    (void) state;
    assert_int_equal(d->n_methods, N_EXPECTED);
    for (unsigned i = 0; i < d->n_methods; i++) {
        bool found = false;

        for (size_t j = 0; j < N_EXPECTED; j++)
            found |= strcmp(expected[j].method, d->methods[i].name) == 0;
        if (!found)
            print_error(
                "rpc %s has no expected roles here\n", d->methods[i].name);
        assert_true(found);
    }
}

static void
test_unknown_methods_are_admin_only(void **state)
{
    struct fx         *f = *state;
    struct anvil_error err;
    int64_t            id;
    int                role;
    char               long_method[300];

    memset(long_method, 'M', sizeof(long_method) - 1);
    long_method[sizeof(long_method) - 1] = '\0';
    const char *methods[]
        = { "LaunchMissiles", "", "health", "submitjob", long_method };

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        assert_int_equal(
            check(f, f->secret[ANVIL_ROLE_ADMIN], methods[i], &id, &role, &err),
            ANVIL_OK);
        for (int r = ANVIL_ROLE_CLIENT; r <= ANVIL_ROLE_READER; r++) {
            assert_int_equal(
                check(f, f->secret[r], methods[i], &id, &role, &err),
                ANVIL_PERMISSION_DENIED);
            assert_true(strlen(err.msg) < sizeof(err.msg));
        }
    }
}

static void
test_a_missing_token_is_unauthenticated(void **state)
{
    struct fx         *f = *state;
    struct anvil_error err;
    int64_t            id   = -1;
    int                role = -1;

    assert_int_equal(
        check(f, NULL, "Health", &id, &role, &err), ANVIL_UNAUTHENTICATED);
    assert_non_null(strstr(err.msg, "token"));
    assert_int_equal(
        check(f, "", "Health", &id, &role, &err), ANVIL_UNAUTHENTICATED);
    assert_non_null(strstr(err.msg, "token"));
    assert_int_equal(err.code, ANVIL_UNAUTHENTICATED);
}

static void
test_unknown_tokens_are_unauthenticated(void **state)
{
    struct fx         *f = *state;
    struct anvil_error err;
    int64_t            id;
    int                role;
    char               almost[AUTH_TOKEN_LEN + 1];
    char               longer[AUTH_TOKEN_LEN + 2];

    // The admin secret with its last digit changed, one digit short, one
    // digit more, and other strings.
    strcpy(almost, f->secret[ANVIL_ROLE_ADMIN]);
    almost[AUTH_TOKEN_LEN - 1] = almost[AUTH_TOKEN_LEN - 1] == '0' ? '1' : '0';
    snprintf(longer, sizeof(longer), "%s0", f->secret[ANVIL_ROLE_ADMIN]);
    char shorter[AUTH_TOKEN_LEN + 1];
    strcpy(shorter, f->secret[ANVIL_ROLE_ADMIN]);
    shorter[AUTH_TOKEN_LEN - 1] = '\0';
    const char *bad[]           = {
                  almost, shorter, longer, "anv_", "x",
                  "anv_0000000000000000000000000000000000000000000000000000000000000000"
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(check(f, bad[i], "Health", &id, &role, &err),
            ANVIL_UNAUTHENTICATED);
        assert_true(err.msg[0] != '\0');
        // The message never echoes what was presented.
        assert_null(strstr(err.msg, "anv_"));
    }
    assert_int_equal(
        check(f, f->secret[ANVIL_ROLE_ADMIN], "Health", &id, &role, &err),
        ANVIL_OK);
}

static void
test_a_token_is_valid_until_its_expiry_and_not_at_it(void **state)
{
    struct fx         *f = *state;
    struct anvil_error err;
    char               secret[AUTH_TOKEN_LEN + 1];
    uint8_t            hash[AV_SHA256_LEN];
    int64_t            id;
    int                role;

    assert_int_equal(auth_token_new(secret, sizeof(secret), hash), 0);
    assert_int_equal(
        auth_put(f->a, hash, 42, ANVIL_ROLE_CLIENT, NOW + 1, 0), 0);
    assert_int_equal(check(f, secret, "SubmitJob", &id, &role, &err), ANVIL_OK);
    assert_int_equal(id, 42);

    memset(&err, 0, sizeof(err));
    assert_int_equal(
        auth_check(f->a, secret, "SubmitJob", NOW + 1, &id, &role, &err),
        ANVIL_UNAUTHENTICATED);
    assert_non_null(strstr(err.msg, "expired"));
    assert_non_null(strstr(err.msg, "t42"));
    assert_int_equal(
        auth_check(f->a, secret, "Health", NOW + 100000, &id, &role, &err),
        ANVIL_UNAUTHENTICATED);
    // expires_at 0 means never.
    assert_int_equal(auth_check(f->a, f->secret[ANVIL_ROLE_CLIENT], "Health",
                         INT64_MAX, &id, &role, &err),
        ANVIL_OK);
}

static void
test_a_revoked_token_is_unauthenticated_and_others_still_work(void **state)
{
    struct fx         *f = *state;
    struct anvil_error err;
    int64_t            id;
    int                role;

    assert_int_equal(
        check(f, f->secret[ANVIL_ROLE_WORKER], "Poll", &id, &role, &err),
        ANVIL_OK);
    auth_revoke(f->a, ANVIL_ROLE_WORKER, NOW - 1);
    auth_revoke(f->a, 9999, NOW - 1); // unknown ids change nothing
    assert_int_equal(
        check(f, f->secret[ANVIL_ROLE_WORKER], "Poll", &id, &role, &err),
        ANVIL_UNAUTHENTICATED);
    assert_non_null(strstr(err.msg, "revoked"));
    // A revoked token stays refused even for what its role may call, and
    // even before an expiry it may have.
    assert_int_equal(
        check(f, f->secret[ANVIL_ROLE_WORKER], "Health", &id, &role, &err),
        ANVIL_UNAUTHENTICATED);
    for (int r = ANVIL_ROLE_ADMIN; r <= ANVIL_ROLE_READER; r++) {
        if (r != ANVIL_ROLE_WORKER)
            assert_int_equal(
                check(f, f->secret[r], "Health", &id, &role, &err), ANVIL_OK);
    }
}

static void
test_a_revoked_admin_token_may_call_nothing(void **state)
{
    struct fx         *f = *state;
    struct anvil_error err;
    int64_t            id;
    int                role;

    auth_revoke(f->a, ANVIL_ROLE_ADMIN, NOW);
    for (size_t i = 0; i < N_EXPECTED; i++)
        assert_int_equal(check(f, f->secret[ANVIL_ROLE_ADMIN],
                             expected[i].method, &id, &role, &err),
            ANVIL_UNAUTHENTICATED);
}

static void
test_putting_a_token_id_again_replaces_it(void **state)
{
    struct fx         *f = *state;
    struct anvil_error err;
    char               secret[AUTH_TOKEN_LEN + 1];
    uint8_t            hash[AV_SHA256_LEN];
    int64_t            id;
    int                role;

    // Token 3 (the worker's) gets a new secret and the reader role.
    assert_int_equal(auth_token_new(secret, sizeof(secret), hash), 0);
    assert_int_equal(
        auth_put(f->a, hash, ANVIL_ROLE_WORKER, ANVIL_ROLE_READER, 0, 0), 0);
    assert_int_equal(
        check(f, f->secret[ANVIL_ROLE_WORKER], "Health", &id, &role, &err),
        ANVIL_UNAUTHENTICATED);
    assert_int_equal(check(f, secret, "GetJob", &id, &role, &err), ANVIL_OK);
    assert_int_equal(role, ANVIL_ROLE_READER);
    assert_int_equal(
        check(f, secret, "Poll", &id, &role, &err), ANVIL_PERMISSION_DENIED);
}

static void
test_many_tokens_are_all_found(void **state)
{
    struct fx         *f = *state;
    struct anvil_error err;
    static char        secrets[100][AUTH_TOKEN_LEN + 1];
    int64_t            id;
    int                role;

    for (int i = 0; i < 100; i++) {
        uint8_t hash[AV_SHA256_LEN];

        assert_int_equal(
            auth_token_new(secrets[i], sizeof(secrets[i]), hash), 0);
        assert_int_equal(
            auth_put(f->a, hash, 100 + i, ANVIL_ROLE_READER, 0, 0), 0);
    }
    for (int i = 0; i < 100; i++) {
        assert_int_equal(
            check(f, secrets[i], "GetJob", &id, &role, &err), ANVIL_OK);
        assert_int_equal(id, 100 + i);
    }
}

static void
test_with_auth_off_every_request_passes_as_admin(void **state)
{
    struct auth       *a    = auth_new(false);
    struct anvil_error err  = { 0 };
    int64_t            id   = -1;
    int                role = -1;

    (void) state;
    assert_non_null(a);
    assert_false(auth_enabled(a));
    for (size_t i = 0; i < N_EXPECTED; i++) {
        assert_int_equal(
            auth_check(a, NULL, expected[i].method, NOW, &id, &role, &err),
            ANVIL_OK);
        assert_int_equal(id, 0);
        assert_int_equal(role, ANVIL_ROLE_ADMIN);
        assert_int_equal(
            auth_check(a, "garbage", expected[i].method, NOW, &id, &role, &err),
            ANVIL_OK);
    }
    auth_free(a);
    auth_free(NULL);

    // Switched on with no token at all: nothing passes.
    a = auth_new(true);
    assert_non_null(a);
    assert_true(auth_enabled(a));
    assert_int_equal(auth_check(a, "anv_x", "Health", NOW, &id, &role, &err),
        ANVIL_UNAUTHENTICATED);
    auth_free(a);
}

static bool
is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

static void
test_new_tokens_are_anv_and_64_hex_digits_with_their_hash(void **state)
{
    char    a[AUTH_TOKEN_LEN + 1], b[AUTH_TOKEN_LEN + 1];
    uint8_t ha[AV_SHA256_LEN], hb[AV_SHA256_LEN], h[AV_SHA256_LEN];

    (void) state;
    assert_int_equal(auth_token_new(a, sizeof(a), ha), 0);
    assert_int_equal(auth_token_new(b, sizeof(b), hb), 0);
    assert_int_equal(strlen(a), AUTH_TOKEN_LEN);
    assert_int_equal(strlen(a), 4 + 64);
    assert_memory_equal(a, "anv_", 4);
    assert_true(is_lower_hex(a + 4, 64));
    assert_true(is_lower_hex(b + 4, 64));
    assert_string_not_equal(a, b);
    assert_memory_not_equal(ha, hb, AV_SHA256_LEN);
    // The hash given out is the SHA-256 of the whole secret.
    av_sha256(a, strlen(a), h);
    assert_memory_equal(h, ha, AV_SHA256_LEN);
    auth_hash(a, h);
    assert_memory_equal(h, ha, AV_SHA256_LEN);
}

static void
test_a_token_buffer_too_small_is_refused(void **state)
{
    char    buf[AUTH_TOKEN_LEN + 1];
    uint8_t h[AV_SHA256_LEN];

    (void) state;
    memset(buf, 'z', sizeof(buf));
    assert_int_equal(auth_token_new(buf, AUTH_TOKEN_LEN, h), -1);
    assert_int_equal(buf[0], 'z'); // untouched
    assert_int_equal(auth_token_new(buf, 0, h), -1);
    assert_int_equal(auth_token_new(buf, sizeof(buf), h), 0);
}

static void
test_auth_hash_is_sha256(void **state)
{
    // FIPS 180-4 test vectors.
    static const uint8_t abc[AV_SHA256_LEN]
        = { 0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
              0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
              0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad };
    static const uint8_t empty[AV_SHA256_LEN]
        = { 0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
              0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
              0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55 };
    uint8_t h[AV_SHA256_LEN];

    (void) state;
    auth_hash("abc", h);
    assert_memory_equal(h, abc, AV_SHA256_LEN);
    auth_hash("", h);
    assert_memory_equal(h, empty, AV_SHA256_LEN);
    auth_hash("abd", h);
    assert_memory_not_equal(h, abc, AV_SHA256_LEN);
}

static void
test_role_names_parse_both_ways(void **state)
{
    static const char *names[]
        = { NULL, "admin", "client", "worker", "reader" };
    int role;

    (void) state;
    for (int r = ANVIL_ROLE_ADMIN; r <= ANVIL_ROLE_READER; r++) {
        assert_string_equal(auth_role_name(r), names[r]);
        role = 0;
        assert_int_equal(auth_role_parse(names[r], &role), 0);
        assert_int_equal(role, r);
    }
    assert_int_equal(auth_role_parse("WORKER", &role), 0);
    assert_int_equal(role, ANVIL_ROLE_WORKER);
    assert_null(auth_role_name(0));
    assert_null(auth_role_name(5));
    assert_null(auth_role_name(-1));
    role = 77;
    assert_int_equal(auth_role_parse("root", &role), -1);
    assert_int_equal(auth_role_parse("", &role), -1);
    assert_int_equal(auth_role_parse("admin ", &role), -1);
    assert_int_equal(role, 77);
}

static void
test_ct_compare_finds_a_difference_at_any_position(void **state)
{
    uint8_t a[AV_SHA256_LEN], b[AV_SHA256_LEN];

    (void) state;
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = (uint8_t) (i * 7 + 1);
    memcpy(b, a, sizeof(a));
    assert_int_equal(av_ct_compare(a, b, sizeof(a)), 0);
    assert_int_equal(av_ct_compare(a, b, 0), 0);
    for (size_t i = 0; i < sizeof(a); i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t) (1u << bit);
            assert_int_not_equal(av_ct_compare(a, b, sizeof(a)), 0);
            b[i] ^= (uint8_t) (1u << bit);
        }
    }
    assert_int_equal(av_ct_compare(a, b, sizeof(a)), 0);
}

// The lookup must not stop at the first match (an early exit would tell
// by its timing where the match is): with two entries of one hash, the
// later one is the one found.
static void
test_the_lookup_touches_every_entry(void **state)
{
    struct fx         *f = *state;
    struct anvil_error err;
    uint8_t            hash[AV_SHA256_LEN];
    int64_t            id;
    int                role;

    auth_hash("anv_shared", hash);
    assert_int_equal(auth_put(f->a, hash, 50, ANVIL_ROLE_READER, 0, 0), 0);
    assert_int_equal(auth_put(f->a, hash, 51, ANVIL_ROLE_CLIENT, 0, 0), 0);
    assert_int_equal(
        check(f, "anv_shared", "SubmitJob", &id, &role, &err), ANVIL_OK);
    assert_int_equal(id, 51);
    assert_int_equal(role, ANVIL_ROLE_CLIENT);
}

// Reads server/auth.c: the source root is where this file's path (as the
// Makefile compiles it, relative to the repository root) leads.
static char *
read_auth_source(void)
{
    static const char self[] = "tests/unit/test_auth.c";
    const char       *file   = __FILE__;
    size_t            n      = strlen(file);
    char              path[512];

    assert_true(n >= strlen(self));
    snprintf(path, sizeof(path), "%.*sserver/auth.c", (int) (n - strlen(self)),
        file);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        fail_msg("cannot open %s: run the test from the repository root", path);
    static char text[64 * 1024];
    size_t      len = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[len] = '\0';
    return text;
}

// Hash comparisons in auth.c go through av_ct_compare, never memcmp or
// strcmp on secrets or hashes.
static void
test_auth_compares_hashes_in_constant_time(void **state)
{
    char *src = read_auth_source();

    (void) state;
    const char *find = strstr(src, "\nfind(");
    assert_non_null(find);
    const char *end = strstr(find, "\n}\n");
    assert_non_null(end);
    char body[2048];
    snprintf(body, sizeof(body), "%.*s", (int) (end - find), find);
    assert_non_null(strstr(body, "av_ct_compare("));
    assert_null(strstr(body, "break"));
    assert_null(strstr(body, "return true"));
    assert_null(strstr(src, "memcmp("));
    assert_null(strstr(src, "bcmp("));
}

// Whether tokens are required follows the listen URL (security.c).
static void
test_only_local_urls_count_as_local(void **state)
{
    static const char *local[]
        = { "ipc:///tmp/a/s", "inproc://x", "tcp://127.0.0.1:7700",
              "tcp://127.1.2.3:1", "tcp://localhost:7700", "tcp://[::1]:7700",
              "ws://127.0.0.1:80/anvil", "tls+tcp://localhost:7700" };
    static const char *remote[] = { "tcp://0.0.0.0:7700", "tcp://:7700",
        "tcp://10.0.0.1:7700", "tcp://anvil.example.com:7700",
        "tls+tcp://anvil.example.com:7700", "tcp://[::]:7700",
        "tcp://localhost.example.com:7700", "tcp://1127.0.0.1:7700",
        "nonsense" };

    (void) state;
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
        if (!security_is_local(local[i]))
            print_error("%s is not counted local\n", local[i]);
        assert_true(security_is_local(local[i]));
    }
    for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
        if (security_is_local(remote[i]))
            print_error("%s is counted local\n", remote[i]);
        assert_false(security_is_local(remote[i]));
    }
}

// A DNS name that merely starts with "127." may resolve to any address: it
// is not loopback, so tokens must stay required on it.
static void
test_a_host_name_starting_with_127_is_not_local(void **state)
{
    static const char *remote[] = { "tcp://127.example.com:7700",
        "tcp://127.0.0.1.example.com:7700", "tls+tcp://127.evil.example:7700",
        "ws://127.example.com:80/anvil" };

    (void) state;
    for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
        if (security_is_local(remote[i]))
            print_error("%s is counted local\n", remote[i]);
        assert_false(security_is_local(remote[i]));
    }
}

static void
test_auth_mode_follows_the_flag_then_the_url(void **state)
{
    struct server_config cfg;

    (void) state;
    server_config_init(&cfg);
    assert_int_equal(cfg.auth, SERVER_AUTH_AUTO);
    cfg.listen_url = "ipc:///tmp/x/s";
    assert_false(security_auth_on(&cfg));
    cfg.listen_url = "tcp://0.0.0.0:7700";
    assert_true(security_auth_on(&cfg));
    cfg.auth = SERVER_AUTH_OFF;
    assert_false(security_auth_on(&cfg));
    cfg.auth       = SERVER_AUTH_ON;
    cfg.listen_url = "ipc:///tmp/x/s";
    assert_true(security_auth_on(&cfg));
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_the_role_rules_cover_every_rpc_of_the_service),
        T(test_the_rule_table_here_lists_every_rpc_of_the_proto),
        T(test_unknown_methods_are_admin_only),
        T(test_a_missing_token_is_unauthenticated),
        T(test_unknown_tokens_are_unauthenticated),
        T(test_a_token_is_valid_until_its_expiry_and_not_at_it),
        T(test_a_revoked_token_is_unauthenticated_and_others_still_work),
        T(test_a_revoked_admin_token_may_call_nothing),
        T(test_putting_a_token_id_again_replaces_it),
        T(test_many_tokens_are_all_found),
        T(test_with_auth_off_every_request_passes_as_admin),
        T(test_new_tokens_are_anv_and_64_hex_digits_with_their_hash),
        T(test_a_token_buffer_too_small_is_refused),
        T(test_auth_hash_is_sha256),
        T(test_role_names_parse_both_ways),
        T(test_ct_compare_finds_a_difference_at_any_position),
        T(test_the_lookup_touches_every_entry),
        T(test_auth_compares_hashes_in_constant_time),
        T(test_only_local_urls_count_as_local),
        T(test_auth_mode_follows_the_flag_then_the_url),
        T(test_a_host_name_starting_with_127_is_not_local),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
