// test_client_follow.c - a client given several servers follows a
// standby's UNAVAILABLE to the leader it names (Reply.leader). No anvild
// answers as a standby yet, so canned REP servers on ipc:// stand in: a
// "standby" that answers every request UNAVAILABLE naming a leader (or
// none), and a "leader" that answers Health. Each records the request ids
// it saw, so the tests check that the resend carries the same id.
#include "anvil/v1/anvil.pb-c.h"
#include "util/clock.h"

#include <anvil/anvil.h>
#include <anvil/health.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// cmocka.h needs these three before it: keep it in a block of its own.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define MAX_SEEN 64

// One canned server on its own thread. The thread writes seen/n_seen;
// the test reads them after stopping it (pthread_join orders the two).
struct canned {
    char         url[128];
    const char  *leader; // NULL: answers OK (a leader); else UNAVAILABLE
    bool         mute;   // takes requests and never answers (frozen)
    nng_socket   sock;
    pthread_t    thread;
    _Atomic bool stop;
    uint64_t     seen[MAX_SEEN]; // request ids received
    int          n_seen;
};

struct fixture {
    char          dir[64];
    struct canned standby;
    struct canned leader;
    char          dead[128]; // a URL where nothing listens
};

// The Reply to request req: OK with an empty HealthResponse from the
// leader, UNAVAILABLE naming c->leader from a standby.
static nng_msg *
answer(struct canned *c, const Anvil__V1__Request *req)
{
    Anvil__V1__Reply          rep  = ANVIL__V1__REPLY__INIT;
    Anvil__V1__HealthResponse body = ANVIL__V1__HEALTH_RESPONSE__INIT;
    uint8_t                   buf[256];
    rep.request_id = req->request_id;
    if (c->leader != NULL) {
        rep.code    = ANVIL__V1__CODE__UNAVAILABLE;
        rep.message = "this anvild is a standby";
        rep.leader  = (char *) c->leader;
    } else {
        rep.body.len  = anvil__v1__health_response__pack(&body, buf);
        rep.body.data = buf;
    }
    nng_msg *m = NULL;
    if (nng_msg_alloc(&m, anvil__v1__reply__get_packed_size(&rep)) == 0)
        anvil__v1__reply__pack(&rep, nng_msg_body(m));
    return m;
}

static void *
canned_run(void *arg)
{
    struct canned *c = arg;
    while (!atomic_load(&c->stop)) {
        nng_msg *m;
        if (nng_recvmsg(c->sock, &m, 0) != 0)
            continue; // the receive timeout: check stop
        Anvil__V1__Request *req
            = anvil__v1__request__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
        nng_msg_free(m);
        if (req == NULL)
            continue;
        if (c->n_seen < MAX_SEEN)
            c->seen[c->n_seen++] = req->request_id;
        nng_msg *out = c->mute ? NULL : answer(c, req);
        anvil__v1__request__free_unpacked(req, NULL);
        if (out != NULL && nng_sendmsg(c->sock, out, 0) != 0)
            nng_msg_free(out);
    }
    return NULL;
}

static void
canned_start(
    struct canned *c, const char *dir, const char *name, const char *leader)
{
    snprintf(c->url, sizeof(c->url), "ipc://%s/%s", dir, name);
    c->leader = leader;
    atomic_init(&c->stop, false);
    assert_int_equal(nng_rep0_open(&c->sock), 0);
    nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, 50);
    assert_int_equal(nng_listen(c->sock, c->url, NULL, 0), 0);
    assert_int_equal(pthread_create(&c->thread, NULL, canned_run, c), 0);
}

static void
canned_stop(struct canned *c)
{
    atomic_store(&c->stop, true);
    pthread_join(c->thread, NULL);
    nng_close(c->sock);
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/anvil-follow-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->dead, sizeof(f->dead), "ipc://%s/dead", f->dir);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    char            path[160];
    snprintf(path, sizeof(path), "%s/standby", f->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/leader", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

// Health through a client for list: its code, and its time in *ms.
static int
health(const char *list, int64_t *ms, struct anvil_error *err)
{
    anvil_client *c = NULL;
    assert_int_equal(anvil_client_open(&c, list, err), ANVIL_OK);
    anvil_client_set_timeout(c, 4000, NULL);
    struct anvil_health *h  = NULL;
    int64_t              t0 = av_mono_ms();
    int                  rc = anvil_health_get(c, &h, err);
    *ms                     = av_mono_ms() - t0;
    anvil_health_free(h);
    anvil_client_close(c);
    return rc;
}

// standby,dead,leader: the standby names the leader, so the client goes
// straight there, not through the dead address (which would cost a
// send's 1 s try), and resends the same request id.
static void
test_a_standby_sends_the_client_to_the_leader_it_names(void **state)
{
    struct fixture *f = *state;
    char            leader_url[128];
    snprintf(leader_url, sizeof(leader_url), "ipc://%s/leader", f->dir);
    canned_start(&f->standby, f->dir, "standby", leader_url);
    canned_start(&f->leader, f->dir, "leader", NULL);
    char list[400];
    snprintf(
        list, sizeof(list), "%s,%s,%s", f->standby.url, f->dead, f->leader.url);
    int64_t            ms;
    struct anvil_error err = { 0, "" };
    assert_int_equal(health(list, &ms, &err), ANVIL_OK);
    canned_stop(&f->standby);
    canned_stop(&f->leader);
    fprintf(stderr, "standby -> leader: %lld ms\n", (long long) ms);
    assert_true(ms < 800);
    assert_int_equal(f->standby.n_seen, 1);
    assert_int_equal(f->leader.n_seen, 1);
    assert_true(f->standby.seen[0] == f->leader.seen[0]);
}

// A server that takes the request and never answers (a frozen leader):
// that call ends at its timeout, and the next goes to the next server.
static void
test_a_server_that_never_answers_is_left_after_a_timeout(void **state)
{
    struct fixture *f = *state;
    f->standby.mute   = true; // the first of the list, frozen
    canned_start(&f->standby, f->dir, "standby", NULL);
    canned_start(&f->leader, f->dir, "leader", NULL);
    char list[300];
    snprintf(list, sizeof(list), "%s,%s", f->standby.url, f->leader.url);
    anvil_client      *c   = NULL;
    struct anvil_error err = { 0, "" };
    assert_int_equal(anvil_client_open(&c, list, &err), ANVIL_OK);
    anvil_client_set_timeout(c, 300, NULL);
    struct anvil_health *h  = NULL;
    int64_t              t0 = av_mono_ms();
    assert_int_equal(anvil_health_get(c, &h, &err), ANVIL_DEADLINE_EXCEEDED);
    int64_t first = av_mono_ms() - t0;
    t0            = av_mono_ms();
    assert_int_equal(anvil_health_get(c, &h, &err), ANVIL_OK);
    int64_t second = av_mono_ms() - t0;
    anvil_health_free(h);
    anvil_client_close(c);
    canned_stop(&f->standby);
    canned_stop(&f->leader);
    fprintf(stderr, "frozen: %lld ms, then the next server: %lld ms\n",
        (long long) first, (long long) second);
    assert_true(first >= 300 && first < 2000);
    assert_true(second < 1000);
    assert_int_equal(f->standby.n_seen, 1);
    assert_int_equal(f->leader.n_seen, 1);
}

// A standby that knows no leader (an election): the client pauses, tries
// the next server, and that one's answer counts.
static void
test_a_standby_without_a_leader_sends_the_client_to_the_next(void **state)
{
    struct fixture *f = *state;
    canned_start(&f->standby, f->dir, "standby", "");
    canned_start(&f->leader, f->dir, "leader", NULL);
    char list[400];
    snprintf(list, sizeof(list), "%s,%s", f->standby.url, f->leader.url);
    int64_t            ms;
    struct anvil_error err = { 0, "" };
    assert_int_equal(health(list, &ms, &err), ANVIL_OK);
    canned_stop(&f->standby);
    canned_stop(&f->leader);
    assert_true(ms >= 100); // the backoff
    assert_int_equal(f->leader.n_seen, 1);
    assert_true(f->standby.seen[0] == f->leader.seen[0]);
}

// Only standbys: the call keeps trying (with growing pauses) until its
// timeout, then fails with the standby's UNAVAILABLE.
static void
test_only_standbys_end_in_unavailable_after_the_timeout(void **state)
{
    struct fixture *f = *state;
    canned_start(&f->standby, f->dir, "standby", "tcp://elsewhere:7700");
    char list[400];
    snprintf(list, sizeof(list), "%s,%s", f->standby.url, f->dead);
    int64_t            ms;
    struct anvil_error err = { 0, "" };
    assert_int_equal(health(list, &ms, &err), ANVIL_UNAVAILABLE);
    canned_stop(&f->standby);
    fprintf(stderr, "gave up after %lld ms: %s\n", (long long) ms, err.msg);
    assert_true(ms >= 4000 && ms < 7000);
    assert_non_null(strstr(err.msg, "this anvild is a standby"));
    assert_true(f->standby.n_seen >= 2);
    for (int i = 1; i < f->standby.n_seen; i++)
        assert_true(f->standby.seen[i] == f->standby.seen[0]);
}

// Two standbys naming each other (views that disagree while an election
// settles): the client follows the first hint at once, then pauses before
// each hop, so the call does not bounce at full speed until its timeout.
static void
test_standbys_naming_each_other_are_not_hammered(void **state)
{
    struct fixture *f = *state;
    char            a_url[128], b_url[128];
    snprintf(a_url, sizeof(a_url), "ipc://%s/standby", f->dir);
    snprintf(b_url, sizeof(b_url), "ipc://%s/leader", f->dir);
    canned_start(&f->standby, f->dir, "standby", b_url);
    canned_start(&f->leader, f->dir, "leader", a_url);
    char list[400];
    snprintf(list, sizeof(list), "%s,%s", a_url, b_url);
    int64_t            ms;
    struct anvil_error err = { 0, "" };
    assert_int_equal(health(list, &ms, &err), ANVIL_UNAVAILABLE);
    canned_stop(&f->standby);
    canned_stop(&f->leader);
    int hops = f->standby.n_seen + f->leader.n_seen;
    fprintf(stderr, "%d answers in %lld ms\n", hops, (long long) ms);
    assert_true(hops >= 4 && hops <= 16); // 4 s of pauses up to 500 ms
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_server_that_never_answers_is_left_after_a_timeout, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_standby_sends_the_client_to_the_leader_it_names, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_standby_without_a_leader_sends_the_client_to_the_next, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_standbys_naming_each_other_are_not_hammered, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_only_standbys_end_in_unavailable_after_the_timeout, setup,
            teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nng_fini();
    return rc;
}
