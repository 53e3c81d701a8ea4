// test_standby.c - a standby's answers (server/standby.c) without a
// database: every request is answered UNAVAILABLE naming the leader, the
// self-check finds its own URL answering and a mute one silent, and the
// URL a node dials to check itself (server_node_self_url).
#include "../../server/server_impl.h"
#include "../../server/standby.h"
#include "anvil/v1/anvil.pb-c.h"
#include "util/clock.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// cmocka.h needs these three before it: keep it in a block of its own.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

struct fx {
    char            dir[64];
    char            url[128], mute[128];
    struct standby *sb;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/anvil-standby-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->url, sizeof(f->url), "ipc://%s/s", f->dir);
    snprintf(f->mute, sizeof(f->mute), "ipc://%s/mute", f->dir);
    struct standby_config cfg = { .url = f->url, .recv_max = 1 << 20 };
    struct anvil_error    err = { 0 };
    if (standby_start(&cfg, &f->sb, &err) != ANVIL_OK) {
        fprintf(stderr, "standby_start: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    char       path[160];
    standby_stop(f->sb);
    snprintf(path, sizeof(path), "%s/s", f->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/mute", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void
test_a_standby_answers_unavailable_naming_the_leader(void **state)
{
    struct fx *f = *state;
    standby_set_leader(f->sb, "tcp://leader:7700");
    nng_socket s;
    assert_int_equal(nng_req0_open(&s), 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 2000);
    assert_int_equal(nng_dial(s, f->url, NULL, 0), 0);
    Anvil__V1__Request req = ANVIL__V1__REQUEST__INIT;
    req.method             = "SubmitJob";
    req.request_id         = 77;
    uint8_t buf[64];
    size_t  len = anvil__v1__request__pack(&req, buf);
    assert_int_equal(nng_send(s, buf, len, 0), 0);
    void *in = NULL;
    assert_int_equal(nng_recv(s, &in, &len, NNG_FLAG_ALLOC), 0);
    Anvil__V1__Reply *rep = anvil__v1__reply__unpack(NULL, len, in);
    nng_free(in, len);
    nng_close(s);
    assert_non_null(rep);
    assert_int_equal((int) rep->code, ANVIL_UNAVAILABLE);
    assert_int_equal(rep->request_id, 77);
    assert_string_equal(rep->leader, "tcp://leader:7700");
    assert_non_null(strstr(rep->message, "standby"));
    anvil__v1__reply__free_unpacked(rep, NULL);
}

// The self-check: its own URL answers; a server that takes requests and
// never answers does not, within the time given.
static void
test_the_self_check_tells_an_answer_from_silence(void **state)
{
    struct fx *f = *state;
    assert_true(standby_answers(f->sb, f->url, 2000));
    assert_true(standby_answers(f->sb, f->url, 2000)); // the same socket

    // Another standby, whose self-check socket has dialed nothing yet.
    nng_socket mute;
    assert_int_equal(nng_rep0_open(&mute), 0);
    assert_int_equal(nng_listen(mute, f->mute, NULL, 0), 0);
    char other[160];
    snprintf(other, sizeof(other), "ipc://%s/s2", f->dir);
    struct standby_config cfg = { .url = other, .recv_max = 1 << 20 };
    struct anvil_error    err = { 0 };
    struct standby       *sb2 = NULL;
    assert_int_equal(standby_start(&cfg, &sb2, &err), ANVIL_OK);
    int64_t t0 = av_mono_ms();
    assert_false(standby_answers(sb2, f->mute, 300));
    int64_t ms = av_mono_ms() - t0;
    assert_true(ms >= 250 && ms < 2000);
    standby_stop(sb2);
    nng_close(mute);
    snprintf(other, sizeof(other), "%s/s2", f->dir);
    unlink(other);
}

static void
test_the_url_a_node_checks_itself_on(void **state)
{
    (void) state;
    char out[128];
    assert_true(server_node_self_url("ipc:///run/anvil/s", out, sizeof(out)));
    assert_string_equal(out, "ipc:///run/anvil/s");
    assert_true(server_node_self_url("tcp://0.0.0.0:7700", out, sizeof(out)));
    assert_string_equal(out, "tcp://127.0.0.1:7700");
    assert_true(server_node_self_url("tcp://*:7700", out, sizeof(out)));
    assert_string_equal(out, "tcp://127.0.0.1:7700");
    assert_true(server_node_self_url("tcp://[::]:7700", out, sizeof(out)));
    assert_string_equal(out, "tcp://[::1]:7700");
    assert_true(server_node_self_url("tcp://a.example:7700", out, sizeof(out)));
    assert_string_equal(out, "tcp://a.example:7700");
    assert_false(
        server_node_self_url("tls+tcp://0.0.0.0:7700", out, sizeof(out)));
    assert_false(server_node_self_url("tcp://0.0.0.0:7700", out, 10));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_a_standby_answers_unavailable_naming_the_leader),
        T(test_the_self_check_tells_an_answer_from_silence),
        cmocka_unit_test(test_the_url_a_node_checks_itself_on),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nng_fini();
    return rc;
}
