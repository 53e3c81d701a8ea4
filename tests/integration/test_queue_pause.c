// test_queue_pause.c - pausing a queue on a real anvild child process: a
// paused queue takes submits but leases nothing while another queue is
// served, stays paused after anvild is killed with SIGKILL and started
// again on the same database, and its jobs run once it is resumed (the
// worker's parked Poll is woken). Bad names are refused and nothing is
// stored.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../harness.h"
#include "util/clock.h"

#define WAIT_MS 20000

static int
echo_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) arg;
    (void) lease;
    return anvil_job_ctx_set_result(ctx, "done", 4);
}

// Submits a job of type "t" to queue; the id is the caller's (anvil_free).
static char *
submit_to(struct harness *h, const char *queue)
{
    struct anvil_job_opts o   = { .queue = queue };
    struct anvil_error    err = { 0 };
    char                 *id  = NULL;
    assert_int_equal(
        anvil_job_submit(h->client, "t", "{}", 2, &o, &id, NULL, &err),
        ANVIL_OK);
    return id;
}

// Polls queues for jobs of type "t" (waiting up to wait_ms); the leases
// are the caller's.
static struct anvil_lease_list *
poll_queues(
    struct harness *h, const char *const *queues, size_t nq, uint32_t wait_ms)
{
    static const char *const types[] = { "t" };
    struct anvil_poll_req    req     = {
               .worker_id = "probe",
               .queues    = queues,
               .n_queues  = nq,
               .types     = types,
               .n_types   = 1,
               .max_jobs  = 10,
               .wait_ms   = wait_ms,
    };
    struct anvil_lease_list *l   = NULL;
    struct anvil_error       err = { 0 };
    assert_int_equal(anvil_lease_poll(h->client, &req, &l, &err), ANVIL_OK);
    return l;
}

// Health's paused queues joined with ','; *queued (may be NULL) the QUEUED
// count of queue `slow`'s row, which must be marked paused.
static void
health_paused(struct harness *h, char *buf, size_t len, uint64_t *queued)
{
    struct anvil_health *hl  = NULL;
    struct anvil_error   err = { 0 };
    assert_int_equal(anvil_health_get(h->client, &hl, &err), ANVIL_OK);
    buf[0] = '\0';
    for (size_t i = 0; i < hl->n_paused_queues; i++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? "," : "",
            hl->paused_queues[i]);
    for (size_t i = 0; queued != NULL && i < hl->n_depths; i++) {
        if (strcmp(hl->depths[i].queue, "slow") != 0)
            continue;
        assert_true(hl->depths[i].paused);
        *queued = hl->depths[i].queued;
    }
    anvil_health_free(hl);
}

static void
expect_state(struct harness *h, const char *id, enum anvil_job_state want,
    int timeout_ms)
{
    struct anvil_job  *j   = NULL;
    struct anvil_error err = { 0 };
    int                rc  = timeout_ms > 0
                        ? anvil_job_wait(h->client, id, timeout_ms, &j, &err)
                        : anvil_job_get(h->client, id, &j, &err);
    if (rc != ANVIL_OK)
        fprintf(stderr, "job %s: %s\n", id, err.msg);
    assert_int_equal(rc, ANVIL_OK);
    assert_int_equal(j->state, want);
    anvil_job_free(j);
}

static void
test_paused_queue_leases_nothing_until_resumed_even_across_kill_9(void **state)
{
    struct harness          *h      = *state;
    static const char *const both[] = { "slow", "fast" };
    static const char *const slow[] = { "slow" };
    struct anvil_error       err    = { 0 };
    bool                     changed;
    char                     paused[256];
    uint64_t                 queued = 0;

    pid_t pid = harness_spawn_anvild(h, (char *) NULL);
    assert_true(pid > 0);
    // Paused before its first job; a second pause changes nothing.
    assert_int_equal(anvil_queue_pause(h->client, "slow", &changed, &err), 0);
    assert_true(changed);
    assert_int_equal(anvil_queue_pause(h->client, "slow", &changed, &err), 0);
    assert_false(changed);

    char *s1 = submit_to(h, "slow");
    char *s2 = submit_to(h, "slow");
    char *f1 = submit_to(h, "fast");
    // A Poll over both queues gets the fast job only, and a long-poll of
    // the paused queue alone ends empty.
    struct anvil_lease_list *l = poll_queues(h, both, 2, 0);
    assert_int_equal(l->n, 1);
    assert_string_equal(l->leases[0].job.id, f1);
    assert_int_equal(
        anvil_job_complete(h->client, f1, l->leases[0].token, "ok", 2, &err),
        ANVIL_OK);
    anvil_lease_list_free(l);
    l = poll_queues(h, slow, 1, 300);
    assert_int_equal(l->n, 0);
    anvil_lease_list_free(l);
    expect_state(h, s1, ANVIL_JOB_QUEUED, 0);

    // Killed and started again on the same database: still paused.
    int status = harness_kill(pid, SIGKILL);
    assert_true(WIFSIGNALED(status));
    pid = harness_spawn_anvild(h, (char *) NULL);
    assert_true(pid > 0);
    health_paused(h, paused, sizeof(paused), &queued);
    assert_string_equal(paused, "slow");
    assert_int_equal(queued, 2);
    l = poll_queues(h, slow, 1, 0);
    assert_int_equal(l->n, 0);
    anvil_lease_list_free(l);

    // A worker on the paused queue waits; the resume lets its jobs run.
    assert_non_null(harness_start_worker_on(
        h, 2, slow, 1, "t", echo_handler, NULL, (char *) NULL));
    expect_state(h, s2, ANVIL_JOB_QUEUED, 0);
    int64_t t0 = av_mono_ms();
    assert_int_equal(anvil_queue_resume(h->client, "slow", &changed, &err), 0);
    assert_true(changed);
    expect_state(h, s1, ANVIL_JOB_SUCCEEDED, WAIT_MS);
    expect_state(h, s2, ANVIL_JOB_SUCCEEDED, WAIT_MS);
    assert_true(av_mono_ms() - t0 < 5000);
    health_paused(h, paused, sizeof(paused), NULL);
    assert_string_equal(paused, "");
    anvil_free(s1);
    anvil_free(s2);
    anvil_free(f1);
}

static void
test_bad_queue_names_are_refused_and_nothing_is_paused(void **state)
{
    struct harness *h = *state;
    char            long_name[130], paused[64];
    memset(long_name, 'x', 129);
    long_name[129]          = '\0';
    const char *const bad[] = { "two words", "a/b", long_name, "tab\there" };

    assert_true(harness_spawn_anvild(h, (char *) NULL) > 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct anvil_error err = { 0 };
        assert_int_equal(anvil_queue_pause(h->client, bad[i], NULL, &err),
            ANVIL_INVALID_ARGUMENT);
        assert_non_null(strstr(err.msg, "is not a valid name"));
        assert_int_equal(anvil_queue_resume(h->client, bad[i], NULL, &err),
            ANVIL_INVALID_ARGUMENT);
    }
    struct anvil_error err = { 0 };
    assert_int_equal(
        anvil_queue_pause(h->client, "", NULL, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "queue is empty"));
    assert_int_equal(
        anvil_queue_pause(h->client, NULL, NULL, &err), ANVIL_INVALID_ARGUMENT);
    health_paused(h, paused, sizeof(paused), NULL);
    assert_string_equal(paused, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_paused_queue_leases_nothing_until_resumed_even_across_kill_9,
            harness_open_setup, harness_open_teardown),
        cmocka_unit_test_setup_teardown(
            test_bad_queue_names_are_refused_and_nothing_is_paused,
            harness_open_setup, harness_open_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
