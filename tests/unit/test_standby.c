// test_standby.c - a standby's answers (server/standby.c) without a
// database: every request is answered UNAVAILABLE naming the leader.
#include "../../server/standby.h"
#include "anvil/v1/anvil.pb-c.h"

#include <nng/nng.h>
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
    char            url[128];
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

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_a_standby_answers_unavailable_naming_the_leader),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nng_fini();
    return rc;
}
