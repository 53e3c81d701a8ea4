// test_durability.c - anvild as a real child process: it starts and answers
// Health, refuses what it cannot serve, and loses nothing it acknowledged
// when killed with SIGKILL, queued or running.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "../harness.h"
#include "util/clock.h"

#define WAIT_MS 30000

// The "hold" handler runs until the test releases it. Written by slot
// threads, read by the test thread; mu guards every field.
static struct {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             started;
    bool            released;
} hold;

static int
hold_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    int64_t deadline = av_mono_ms() + 60000;

    (void) arg;
    (void) lease;
    pthread_mutex_lock(&hold.mu);
    hold.started++;
    pthread_cond_broadcast(&hold.cv);
    while (!hold.released && av_mono_ms() < deadline) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&hold.cv, &hold.mu, &ts);
    }
    pthread_mutex_unlock(&hold.mu);
    return anvil_job_ctx_set_result(ctx, "held", 4);
}

static bool
hold_started(void *arg)
{
    bool started;

    (void) arg;
    pthread_mutex_lock(&hold.mu);
    started = hold.started > 0;
    pthread_mutex_unlock(&hold.mu);
    return started;
}

static void
hold_release(void)
{
    pthread_mutex_lock(&hold.mu);
    hold.released = true;
    pthread_cond_broadcast(&hold.cv);
    pthread_mutex_unlock(&hold.mu);
}

static int
setup(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));

    pthread_mutex_init(&hold.mu, NULL);
    pthread_cond_init(&hold.cv, NULL);
    hold.started  = 0;
    hold.released = false;
    if (h == NULL || harness_open(h) != 0) {
        if (h != NULL)
            harness_stop(h);
        free(h);
        return -1;
    }
    *state = h;
    return 0;
}

static int
teardown(void **state)
{
    struct harness *h = *state;

    int rv;

    hold_release(); // a failed test must not leave a handler blocked
    rv = harness_stop(h);
    free(h);
    pthread_cond_destroy(&hold.cv);
    pthread_mutex_destroy(&hold.mu);
    return rv;
}

static pid_t
start_anvild(struct harness *h)
{
    pid_t pid = harness_spawn_anvild(h, (char *) NULL);

    assert_true(pid > 0);
    return pid;
}

// SIGKILL, and check it was the signal that ended the process.
static void
kill_9(pid_t pid)
{
    int status = harness_kill(pid, SIGKILL);

    assert_true(status != -1);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
}

static int
job_state(struct harness *h, const char *id)
{
    struct anvil_error err = { 0 };
    struct anvil_job  *job = NULL;
    int                rv  = anvil_job_get(h->client, id, &job, &err);
    int                state;

    if (rv != ANVIL_OK)
        print_error("get %s: %s: %s\n", id, anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
    state = job->state;
    anvil_job_free(job);
    return state;
}

// Smoke test: fork/exec anvild, wait for Health, stop it with SIGTERM.
static void
test_anvild_starts_answers_health_and_stops_on_sigterm(void **state)
{
    struct harness      *h   = *state;
    struct anvil_health *hl  = NULL;
    pid_t                pid = start_anvild(h);
    int                  status;

    assert_int_equal(anvil_health_get(h->client, &hl, NULL), ANVIL_OK);
    assert_true(hl->version[0] != '\0');
    assert_true(hl->uptime_ms >= 0);
    assert_int_equal(hl->jobs_total, 0);
    anvil_health_free(hl);
    status = harness_kill(pid, SIGTERM);
    assert_true(status != -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

// A second anvild on an address in use, or on a URL nng cannot parse, must
// exit with an error rather than serve nothing.
static void
test_anvild_exits_with_an_error_when_it_cannot_listen(void **state)
{
    struct harness *h = *state;
    char *in_use[]    = { "anvild", "--listen", h->url, "--db", h->db, NULL };
    char  other_db[160];
    char *bad_url[]
        = { "anvild", "--listen", "nonsense:/x", "--db", other_db, NULL };
    struct anvil_health *hl = NULL;
    pid_t                pid;
    int                  status;

    // The second anvild's nng, finding the path in use, connects to see
    // whether anyone listens and leaves at once: that stops the first
    // one's listener (nng 1.5.2; its guard listens again, see below), and
    // nng never frees the stopped one (harness.h).
    assert_int_equal(harness_expect_nng_listener_leak(h), 0);
    start_anvild(h);
    harness_path(h, "other.db", other_db, sizeof(other_db));
    in_use[4] = other_db;
    pid       = harness_spawn(h, "anvild", in_use);
    assert_true(pid > 0);
    status = harness_wait_exit(pid, 10000);
    assert_true(status != -1);
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 0);

    pid = harness_spawn(h, "anvild", bad_url);
    assert_true(pid > 0);
    status = harness_wait_exit(pid, 10000);
    assert_true(status != -1);
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 0);

    // The first server is unharmed, and a new client is served (within
    // the guard's 1.5 to 2 s if the listener was stopped).
    assert_int_equal(anvil_health_get(h->client, &hl, NULL), ANVIL_OK);
    anvil_health_free(hl);
    anvil_client      *fresh = NULL;
    struct anvil_error err   = { 0 };
    assert_int_equal(anvil_client_open(&fresh, h->url, &err), ANVIL_OK);
    assert_int_equal(anvil_health_get(fresh, &hl, &err), ANVIL_OK);
    anvil_health_free(hl);
    anvil_client_close(fresh);
}

static void
test_acknowledged_jobs_survive_sigkill_and_run_after_restart(void **state)
{
    struct harness         *h    = *state;
    struct anvil_job_list  *list = NULL;
    struct anvil_job_filter f    = { 0 };
    char                   *ids[20];
    char                    payload[32];
    pid_t                   pid = start_anvild(h);

    for (int i = 0; i < 20; i++) {
        struct anvil_error err = { 0 };
        int                rv;

        snprintf(payload, sizeof(payload), "kept %d", i);
        ids[i] = NULL;
        rv = anvil_job_submit(h->client, "echo", payload, strlen(payload), NULL,
            &ids[i], NULL, &err);
        if (rv != ANVIL_OK)
            print_error("submit: %s: %s\n", anvil_code_name(rv), err.msg);
        assert_int_equal(rv, ANVIL_OK);
    }
    kill_9(pid); // straight after the last acknowledgement
    start_anvild(h);

    f.state = ANVIL_JOB_QUEUED;
    f.limit = 100;
    assert_int_equal(anvil_job_list(h->client, &f, &list, NULL), ANVIL_OK);
    assert_int_equal(list->n, 20);
    anvil_job_list_free(list);

    assert_true(harness_spawn_worker(h, 4) > 0);
    for (int i = 0; i < 20; i++) {
        struct anvil_job *job = NULL;
        int rv = anvil_job_wait(h->client, ids[i], WAIT_MS, &job, NULL);

        assert_int_equal(rv, ANVIL_OK);
        assert_int_equal(job->state, ANVIL_JOB_SUCCEEDED);
        snprintf(payload, sizeof(payload), "kept %d", i);
        assert_int_equal(job->result_len, strlen(payload));
        assert_memory_equal(job->result, payload, strlen(payload));
        anvil_job_free(job);
        anvil_free(ids[i]);
    }
}

static void
test_a_job_running_when_anvild_is_killed_still_succeeds(void **state)
{
    struct harness   *h   = *state;
    struct anvil_job *job = NULL;
    char             *id  = NULL;
    pid_t             pid = start_anvild(h);
    int               rv;

    assert_non_null(harness_start_worker(
        h, 1, "hold", hold_handler, (void *) NULL, (const char *) NULL));
    rv = anvil_job_submit(h->client, "hold", "{}", 2, NULL, &id, NULL, NULL);
    assert_int_equal(rv, ANVIL_OK);
    assert_true(harness_wait_for(hold_started, NULL, WAIT_MS));
    assert_int_equal(job_state(h, id), ANVIL_JOB_RUNNING);

    kill_9(pid);
    start_anvild(h);
    // The lease was committed before the worker got the job, and is
    // honoured by the new process until its deadline.
    assert_int_equal(job_state(h, id), ANVIL_JOB_RUNNING);
    hold_release();

    rv = anvil_job_wait(h->client, id, WAIT_MS, &job, NULL);
    assert_int_equal(rv, ANVIL_OK);
    if (job->state != ANVIL_JOB_SUCCEEDED)
        print_error("job %s ended %s: \"%s\" after %u attempts\n", id,
            anvil_job_state_name(job->state), job->error, job->attempt);
    assert_int_equal(job->state, ANVIL_JOB_SUCCEEDED);
    assert_int_equal(job->result_len, 4);
    assert_memory_equal(job->result, "held", 4);
    assert_int_equal(job->attempt, 1);
    anvil_job_free(job);
    pthread_mutex_lock(&hold.mu);
    rv = hold.started;
    pthread_mutex_unlock(&hold.mu);
    assert_int_equal(rv, 1); // ran once: the restart did not re-lease it
    anvil_free(id);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_anvild_starts_answers_health_and_stops_on_sigterm, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_anvild_exits_with_an_error_when_it_cannot_listen, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_acknowledged_jobs_survive_sigkill_and_run_after_restart, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_job_running_when_anvild_is_killed_still_succeeds, setup,
            teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
