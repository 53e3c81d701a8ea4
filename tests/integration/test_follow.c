// test_follow.c - a client given several servers ("url1,url2") against
// real anvild processes: it finds the live one when the first is down,
// moves a call in flight when its server is killed with SIGKILL (resending
// it, same request id, to the next server), and the anvil command takes
// the list from --server and $ANVIL_SERVER. Each anvild has its own SQLite
// database here, so the server that answered shows in what it knows.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../harness.h"
#include "util/clock.h"

#define WAIT_MS 20000
#define BODY_MAX (256 * 1024) // a /metrics page

// Two harnesses, A and B: two directories, URLs and databases; each test
// starts the anvild processes it needs.
struct fixture {
    struct harness a;
    struct harness b;
    char           list[300];   // "A,B"
    char           http[64];    // A's --http URL, when a test gives it one
    const char    *parked_kind; // "wait_job", "poll": see parked_on_a()
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    *state = f;
    if (harness_open(&f->a) != 0 || harness_open(&f->b) != 0)
        return -1;
    snprintf(f->list, sizeof(f->list), "%s,%s", f->a.url, f->b.url);
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f  = *state;
    int             rv = harness_stop(&f->a);
    if (harness_stop(&f->b) != 0)
        rv = -1;
    free(f);
    return rv;
}

static anvil_client *
open_list(const char *list, int timeout_ms)
{
    anvil_client      *c   = NULL;
    struct anvil_error err = { 0, "" };
    int                rc  = anvil_client_open(&c, list, &err);
    if (rc != ANVIL_OK)
        fprintf(stderr, "open %s: %s\n", list, err.msg);
    assert_int_equal(rc, ANVIL_OK);
    assert_int_equal(anvil_client_set_timeout(c, timeout_ms, NULL), ANVIL_OK);
    return c;
}

static void
submit(anvil_client *c, char **id)
{
    struct anvil_error err = { 0, "" };
    int                rc
        = anvil_job_submit(c, "nobody-runs-this", "x", 1, NULL, id, NULL, &err);
    if (rc != ANVIL_OK)
        fprintf(stderr, "submit: %s\n", err.msg);
    assert_int_equal(rc, ANVIL_OK);
}

// True if the server of harness h has a job with that id.
static bool
has_job(struct harness *h, const char *id)
{
    struct anvil_job *job = NULL;
    int               rc  = anvil_job_get(h->client, id, &job, NULL);
    anvil_job_free(job);
    return rc == ANVIL_OK;
}

// (1) The first address has nothing listening: calls go to the second,
// within about one server's share of the time (1 s), and stay there.
static void
test_a_list_skips_a_server_that_is_down(void **state)
{
    struct fixture *f = *state;
    assert_true(harness_spawn_anvild(&f->b, (char *) NULL) > 0);
    anvil_client        *c   = open_list(f->list, 5000);
    struct anvil_health *hl  = NULL;
    struct anvil_error   err = { 0, "" };
    int64_t              t0  = av_mono_ms();
    assert_int_equal(anvil_health_get(c, &hl, &err), ANVIL_OK);
    int64_t first = av_mono_ms() - t0;
    anvil_health_free(hl);
    char *id = NULL;
    t0       = av_mono_ms();
    submit(c, &id);
    int64_t second = av_mono_ms() - t0;
    assert_true(has_job(&f->b, id));
    fprintf(stderr, "first call %lld ms, next %lld ms\n", (long long) first,
        (long long) second);
    assert_true(first < 2000);
    assert_true(second < 500); // no new detour via the dead server
    anvil_free(id);
    anvil_client_close(c);
}

// A WaitJob on its own thread: the result and how long it took.
struct waiter {
    anvil_client      *c;
    const char        *id;
    pthread_t          t;
    int                rc;
    int64_t            ms;
    struct anvil_error err;
};

static void *
waiter_run(void *arg)
{
    struct waiter    *w   = arg;
    struct anvil_job *job = NULL;
    int64_t           t0  = av_mono_ms();
    w->rc                 = anvil_job_wait(w->c, w->id, 30000, &job, &w->err);
    w->ms                 = av_mono_ms() - t0;
    anvil_job_free(job);
    return NULL;
}

static size_t
keep_body(char *p, size_t size, size_t n, void *arg)
{
    char  *buf = arg;
    size_t len = strlen(buf);
    size_t add = size * n;
    if (len + add >= BODY_MAX)
        add = BODY_MAX - len - 1;
    memcpy(buf + len, p, add);
    buf[len + add] = '\0';
    return size * n;
}

// True once A has a long-poll of f->parked_kind parked (GET /metrics on
// A's --http).
static bool
parked_on_a(void *arg)
{
    struct fixture *f = arg;
    char            want[96];
    char            url[96];
    char           *body = calloc(1, BODY_MAX);
    CURL           *curl = curl_easy_init();
    snprintf(url, sizeof(url), "%s/metrics", f->http);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
    snprintf(want, sizeof(want), "anvil_long_polls_parked{kind=\"%s\"} 1\n",
        f->parked_kind);
    bool ok = curl_easy_perform(curl) == CURLE_OK && strstr(body, want) != NULL;
    curl_easy_cleanup(curl);
    free(body);
    return ok;
}

// (2) A WaitJob parked on A when A is killed: the call moves to B at once
// (B, with its own database, answers NOT_FOUND for A's job: the request
// was resent there), well before the wait's 30 s, and later calls go to B.
// Starts A with --http (for /metrics) and B: A's pid.
static pid_t
start_a_and_b(struct fixture *f)
{
    int port = harness_free_tcp_port();
    assert_true(port > 0);
    snprintf(f->http, sizeof(f->http), "http://127.0.0.1:%d", port);
    pid_t a = harness_spawn_anvild(&f->a, "--http", f->http, (char *) NULL);
    assert_true(a > 0);
    assert_true(harness_spawn_anvild(&f->b, (char *) NULL) > 0);
    return a;
}

static void
test_a_call_in_flight_moves_when_its_server_is_killed(void **state)
{
    struct fixture *f  = *state;
    pid_t           a  = start_a_and_b(f);
    char           *id = NULL;
    submit(f->a.client, &id); // queued on A for good: no worker
    anvil_client *c = open_list(f->list, 5000);
    struct waiter w = { .c = c, .id = id };
    assert_int_equal(pthread_create(&w.t, NULL, waiter_run, &w), 0);
    f->parked_kind = "wait_job";
    assert_true(harness_wait_for(parked_on_a, f, WAIT_MS));
    int64_t t0     = av_mono_ms();
    int     status = harness_kill(a, SIGKILL);
    assert_true(WIFSIGNALED(status));
    pthread_join(w.t, NULL);
    int64_t moved = av_mono_ms() - t0;
    fprintf(stderr, "the wait moved to B %lld ms after the kill: %s\n",
        (long long) moved, w.err.msg);
    assert_int_equal(w.rc, ANVIL_NOT_FOUND);
    assert_true(moved < 3000);
    // Later calls go to B, at once.
    char   *id2 = NULL;
    int64_t t1  = av_mono_ms();
    submit(c, &id2);
    assert_true(av_mono_ms() - t1 < 500);
    assert_true(has_job(&f->b, id2));
    anvil_free(id2);
    anvil_free(id);
    anvil_client_close(c);
}

// (2b) anvil-worker --server A,B: its Poll parked on A moves to B when A
// is killed, and the worker runs B's next job.
static void
test_a_worker_moves_to_the_next_server_when_its_server_is_killed(void **state)
{
    struct fixture *f      = *state;
    pid_t           a      = start_a_and_b(f);
    char           *argv[] = { "anvil-worker", "--server", f->list, NULL };
    assert_true(harness_spawn(&f->b, "anvil-worker", argv) > 0);
    f->parked_kind = "poll";
    assert_true(harness_wait_for(parked_on_a, f, WAIT_MS));
    int status = harness_kill(a, SIGKILL);
    assert_true(WIFSIGNALED(status));
    int64_t t0 = av_mono_ms();
    char   *id = NULL;
    assert_int_equal(
        anvil_job_submit(f->b.client, "echo", "hi", 2, NULL, &id, NULL, NULL),
        ANVIL_OK);
    struct anvil_job  *job = NULL;
    struct anvil_error err = { 0, "" };
    assert_int_equal(
        anvil_job_wait(f->b.client, id, WAIT_MS, &job, &err), ANVIL_OK);
    fprintf(stderr, "B's job ran %lld ms after A was killed\n",
        (long long) (av_mono_ms() - t0));
    assert_int_equal(job->state, ANVIL_JOB_SUCCEEDED);
    assert_true(av_mono_ms() - t0 < 5000);
    anvil_job_free(job);
    anvil_free(id);
}

// Runs `anvil [--server list] health --json`: its exit status; *took its
// time in ms.
static int
run_cli(struct harness *h, const char *list, int64_t *took)
{
    char *argv[]
        = { "anvil", "--server", (char *) list, "--json", "health", NULL };
    char   *no_flag[] = { "anvil", "--json", "health", NULL };
    int64_t t0        = av_mono_ms();
    pid_t   pid = harness_spawn(h, "anvil", list != NULL ? argv : no_flag);
    assert_true(pid > 0);
    int status = harness_wait_exit(pid, WAIT_MS);
    *took      = av_mono_ms() - t0;
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char *err = harness_read_file(h->procs[h->n_procs - 1].log, NULL);
        fprintf(stderr, "anvil: status 0x%x: %s\n", (unsigned) status,
            err != NULL ? err : "");
        free(err);
        return -1;
    }
    return 0;
}

// (3) The anvil command: --server dead,live and ANVIL_SERVER=dead,live.
static void
test_the_cli_takes_a_list_from_the_flag_and_the_environment(void **state)
{
    struct fixture *f = *state;
    assert_true(harness_spawn_anvild(&f->b, (char *) NULL) > 0);
    int64_t took;
    assert_int_equal(run_cli(&f->b, f->list, &took), 0);
    fprintf(stderr, "anvil --server dead,live: %lld ms\n", (long long) took);
    assert_true(took < 3000);
    setenv("ANVIL_SERVER", f->list, 1);
    int rc = run_cli(&f->b, NULL, &took);
    unsetenv("ANVIL_SERVER");
    assert_int_equal(rc, 0);
    fprintf(stderr, "ANVIL_SERVER=dead,live: %lld ms\n", (long long) took);
    assert_true(took < 3000);
}

// Opens a client for list and expects INVALID_ARGUMENT naming `want`.
static void
open_refused(const char *list, const char *want)
{
    anvil_client      *c   = (anvil_client *) &c;
    struct anvil_error err = { 0, "" };
    assert_int_equal(anvil_client_open(&c, list, &err), ANVIL_INVALID_ARGUMENT);
    assert_null(c);
    if (strstr(err.msg, want) == NULL)
        fprintf(stderr, "want \"%s\" in: %s\n", want, err.msg);
    assert_non_null(strstr(err.msg, want));
}

// (4) Bad lists are refused at open, naming what is wrong.
static void
test_bad_server_lists_are_refused_with_clear_messages(void **state)
{
    struct fixture *f = *state;
    char            list[400];
    snprintf(list, sizeof(list), "%s,,%s", f->a.url, f->b.url);
    open_refused(list, "element 2 is empty");
    snprintf(list, sizeof(list), "%s,", f->a.url);
    open_refused(list, "element 2 is empty");
    snprintf(list, sizeof(list), "%s,nope://x:1", f->a.url);
    open_refused(list, "bad server URL \"nope://x:1\" (server 2 of 2");
    open_refused("tcp://a:1,tls+tcp://b:1", "differ in TLS");
    char many[600] = "";
    for (int i = 0; i < 17; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many),
            "%stcp://h%d:1", i > 0 ? "," : "", i);
    open_refused(many, "more than 16 servers");
    // The anvil command says the same and exits 2 (usage).
    snprintf(list, sizeof(list), "%s,,%s", f->a.url, f->b.url);
    char *argv[] = { "anvil", "--server", list, "health", NULL };
    pid_t pid    = harness_spawn(&f->a, "anvil", argv);
    assert_true(pid > 0);
    int status = harness_wait_exit(pid, WAIT_MS);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 2);
    char *err = harness_read_file(f->a.procs[f->a.n_procs - 1].log, NULL);
    assert_non_null(err);
    assert_non_null(strstr(err, "element 2 is empty"));
    free(err);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_list_skips_a_server_that_is_down, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_call_in_flight_moves_when_its_server_is_killed, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_worker_moves_to_the_next_server_when_its_server_is_killed,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_the_cli_takes_a_list_from_the_flag_and_the_environment, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_bad_server_lists_are_refused_with_clear_messages, setup,
            teardown),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    nng_fini();
    return rc;
}
