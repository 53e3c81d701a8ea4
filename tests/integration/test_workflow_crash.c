// test_workflow_crash.c - workflows across a SIGKILL of a real anvild
// child: steps that completed before the kill never run again, a step
// queued by its parent's completion is still queued after the restart, and
// the workflow finishes once the worker (which stays up and reconnects)
// carries on. Also measures step-advance latency over a 1,000-step chain
// on an in-process server and prints its median and p99.
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
#include "anvil/workflow.h"
#include "util/clock.h"

#define WAIT_MS 20000
#define HOLD_MS 15000
#define CHAIN_STEPS 6
#define LATENCY_STEPS 1000

// Every execution a handler saw, by step index ("s<i>"): mu guards all.
struct execs {
    pthread_mutex_t mu;
    int             count[LATENCY_STEPS + 1];
    uint32_t        max_attempt[LATENCY_STEPS + 1];
    int64_t         start_us[LATENCY_STEPS + 1]; // first execution
    int64_t         end_us[LATENCY_STEPS + 1];
    bool            hold_started;
    bool            released;
    int             bad_names;
};

static struct execs ex;

static void
pause_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

// "s<i>" -> i, or -1.
static int
step_index(const char *step)
{
    char *end;
    long  i;

    if (step[0] != 's')
        return -1;
    i = strtol(step + 1, &end, 10);
    if (*end != '\0' || i < 0 || i > LATENCY_STEPS)
        return -1;
    return (int) i;
}

static int
record_start(const struct anvil_lease *l)
{
    int64_t now = av_mono_us();
    int     i   = step_index(l->job.step);

    pthread_mutex_lock(&ex.mu);
    if (i < 0) {
        ex.bad_names++;
    } else {
        if (ex.count[i]++ == 0)
            ex.start_us[i] = now;
        if (l->job.attempt > ex.max_attempt[i])
            ex.max_attempt[i] = l->job.attempt;
    }
    pthread_mutex_unlock(&ex.mu);
    return i;
}

static void
record_end(int i)
{
    int64_t now = av_mono_us();

    pthread_mutex_lock(&ex.mu);
    if (i >= 0 && ex.end_us[i] == 0)
        ex.end_us[i] = now;
    pthread_mutex_unlock(&ex.mu);
}

static bool
hold_started(void *unused)
{
    (void) unused;
    pthread_mutex_lock(&ex.mu);
    bool s = ex.hold_started;
    pthread_mutex_unlock(&ex.mu);
    return s;
}

static void
hold_release(void)
{
    pthread_mutex_lock(&ex.mu);
    ex.released = true;
    pthread_mutex_unlock(&ex.mu);
}

// Blocks until the test releases it (or HOLD_MS passes).
static void
hold(void)
{
    int64_t deadline = av_mono_ms() + HOLD_MS;
    bool    released = false;

    pthread_mutex_lock(&ex.mu);
    ex.hold_started = true;
    pthread_mutex_unlock(&ex.mu);
    while (!released && av_mono_ms() < deadline) {
        pause_ms(2);
        pthread_mutex_lock(&ex.mu);
        released = ex.released;
        pthread_mutex_unlock(&ex.mu);
    }
}

// Records the execution; payload "hold" blocks first. The result is
// "<step>-result", so each step's parent result can be checked.
static int
crash_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    const struct anvil_job *job = &lease->job;
    char                    result[64];
    int                     i;

    (void) arg;
    i = record_start(lease);
    if (job->payload_len == 4 && memcmp(job->payload, "hold", 4) == 0)
        hold();
    // A step must see its parent's result: else it fails for good.
    if (i > 0) {
        char parent[16], want[64];

        snprintf(parent, sizeof(parent), "s%d", i - 1);
        snprintf(want, sizeof(want), "%s-result", parent);
        if (lease->n_parents != 1 || strcmp(lease->parents[0].step, parent) != 0
            || lease->parents[0].result_len != strlen(want)
            || memcmp(lease->parents[0].result, want, strlen(want)) != 0) {
            record_end(i);
            anvil_job_ctx_set_error(
                ctx, false, "%s: wrong parent result", job->step);
            return ANVIL_INTERNAL;
        }
    }
    record_end(i);
    snprintf(result, sizeof(result), "%s-result", job->step);
    return anvil_job_ctx_set_result(ctx, result, strlen(result));
}

// ---- fixtures ----

static int
open_fixture(void **state, bool in_process)
{
    struct harness *h = calloc(1, sizeof(*h));

    memset(&ex, 0, sizeof(ex));
    pthread_mutex_init(&ex.mu, NULL);
    if (h == NULL || (in_process ? harness_start(h) : harness_open(h)) != 0) {
        if (h != NULL)
            harness_stop(h);
        free(h);
        return -1;
    }
    *state = h;
    return 0;
}

static int
setup_child(void **state)
{
    return open_fixture(state, false);
}

static int
setup_in_process(void **state)
{
    return open_fixture(state, true);
}

static int
teardown(void **state)
{
    struct harness *h = *state;
    int             rv;

    hold_release(); // a failed test must not leave a handler blocked
    rv = harness_stop(h);
    free(h);
    pthread_mutex_destroy(&ex.mu);
    return rv;
}

// ---- helpers ----

static pid_t
start_anvild(struct harness *h)
{
    pid_t pid = harness_spawn_anvild(h, (char *) NULL);

    assert_true(pid > 0);
    return pid;
}

static void
kill_9(pid_t pid)
{
    int status = harness_kill(pid, SIGKILL);

    assert_true(status != -1);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
}

// A chain s0 -> s1 -> ... of n steps, step i of type types[i] with payload
// payloads[i] (NULL: "ok"); returns the submitted workflow's id.
static char *
submit_chain(struct harness *h, size_t n, const char *const *types,
    const char *const *payloads)
{
    anvil_workflow_spec *spec  = NULL;
    struct anvil_error   err   = { 0 };
    const char         **names = calloc(n, sizeof(*names));
    char(*buf)[24]             = calloc(n, sizeof(*buf));
    char *id                   = NULL;
    int   rv;

    assert_non_null(names);
    assert_non_null(buf);
    assert_int_equal(anvil_workflow_spec_new(&spec, "chain", &err), ANVIL_OK);
    for (size_t i = 0; i < n; i++) {
        const char *p
            = payloads != NULL && payloads[i] != NULL ? payloads[i] : "ok";

        snprintf(buf[i], sizeof(buf[i]), "s%zu", i);
        names[i] = buf[i];
        rv       = anvil_workflow_spec_add_step(spec, names[i],
            types != NULL ? types[i] : "step", p, strlen(p), NULL, &err);
        assert_int_equal(rv, ANVIL_OK);
    }
    assert_int_equal(
        anvil_workflow_spec_add_chain(spec, names, n, &err), ANVIL_OK);
    rv = anvil_workflow_submit(h->client, spec, &id, NULL, &err);
    if (rv != ANVIL_OK)
        print_error("submit: %s: %s\n", anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
    assert_non_null(id);
    anvil_workflow_spec_free(spec);
    free(names);
    free(buf);
    return id;
}

static struct anvil_workflow *
get_wf(struct harness *h, const char *id)
{
    struct anvil_error     err = { 0 };
    struct anvil_workflow *wf  = NULL;
    int                    rv  = anvil_workflow_get(h->client, id, &wf, &err);

    if (rv != ANVIL_OK)
        print_error("get %s: %s: %s\n", id, anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
    return wf;
}

struct progress {
    struct harness *h;
    const char     *id;
    uint32_t        succeeded;
};

static bool
reached(void *p)
{
    struct progress       *a  = p;
    struct anvil_workflow *wf = NULL;
    bool                   ok = false;

    if (anvil_workflow_get(a->h->client, a->id, &wf, NULL) == ANVIL_OK)
        ok = wf->steps_succeeded >= a->succeeded;
    anvil_workflow_free(wf);
    return ok;
}

static struct anvil_workflow *
wait_wf(struct harness *h, const char *id, int timeout_ms)
{
    struct anvil_error     err = { 0 };
    struct anvil_workflow *wf  = NULL;
    int rv = anvil_workflow_wait(h->client, id, timeout_ms, &wf, &err);

    if (rv != ANVIL_OK)
        print_error("wait %s: %s: %s\n", id, anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
    if (wf->state != ANVIL_WORKFLOW_SUCCEEDED)
        print_error("workflow %s ended %s: \"%s\"\n", id,
            anvil_workflow_state_name(wf->state), wf->error);
    assert_int_equal(wf->state, ANVIL_WORKFLOW_SUCCEEDED);
    return wf;
}

static int
count_of(int i)
{
    pthread_mutex_lock(&ex.mu);
    int n = ex.count[i];
    pthread_mutex_unlock(&ex.mu);
    return n;
}

static uint32_t
max_attempt_of(int i)
{
    pthread_mutex_lock(&ex.mu);
    uint32_t n = ex.max_attempt[i];
    pthread_mutex_unlock(&ex.mu);
    return n;
}

static int
bad_names(void)
{
    pthread_mutex_lock(&ex.mu);
    int n = ex.bad_names;
    pthread_mutex_unlock(&ex.mu);
    return n;
}

// ---- crash tests ----

static void
test_steps_done_before_sigkill_never_run_again(void **state)
{
    struct harness        *h                     = *state;
    const char *const      payloads[CHAIN_STEPS] = { NULL, NULL, NULL, "hold" };
    struct progress        p;
    struct anvil_workflow *wf;
    pid_t                  pid = start_anvild(h);
    char                  *id;

    assert_non_null(harness_start_worker(
        h, 2, "step", crash_handler, (void *) NULL, (const char *) NULL));
    id = submit_chain(h, CHAIN_STEPS, NULL, payloads);
    p  = (struct progress) { h, id, 3 };
    assert_true(harness_wait_for(reached, &p, WAIT_MS));
    // s3 holds, so exactly s0..s2 have completed when the server dies.
    assert_true(harness_wait_for(hold_started, NULL, WAIT_MS));
    wf = get_wf(h, id);
    assert_int_equal(wf->steps_succeeded, 3);
    assert_int_equal(wf->steps[3].state, ANVIL_JOB_RUNNING);
    anvil_workflow_free(wf);

    kill_9(pid);
    start_anvild(h);
    wf = get_wf(h, id);
    assert_int_equal(wf->state, ANVIL_WORKFLOW_RUNNING);
    assert_int_equal(wf->steps_succeeded, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(wf->steps[i].state, ANVIL_JOB_SUCCEEDED);
    assert_int_equal(wf->steps[4].state, ANVIL_JOB_PENDING);
    assert_int_equal(wf->steps[5].state, ANVIL_JOB_PENDING);
    anvil_workflow_free(wf);
    hold_release();

    wf = wait_wf(h, id, WAIT_MS);
    assert_int_equal(wf->steps_succeeded, CHAIN_STEPS);
    for (int i = 0; i < CHAIN_STEPS; i++) {
        char want[32];

        snprintf(want, sizeof(want), "s%d-result", i);
        assert_int_equal(wf->steps[i].result_len, strlen(want));
        assert_memory_equal(wf->steps[i].result, want, strlen(want));
    }
    anvil_workflow_free(wf);
    print_message("executions:");
    for (int i = 0; i < CHAIN_STEPS; i++)
        print_message(" s%d=%d", i, count_of(i));
    print_message("\n");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(count_of(i), 1);
        assert_int_equal(max_attempt_of(i), 1);
    }
    for (int i = 3; i < CHAIN_STEPS; i++)
        assert_true(count_of(i) >= 1);
    assert_int_equal(bad_names(), 0);
    anvil_free(id);
}

struct step_state {
    struct harness      *h;
    const char          *id;
    int                  index;
    enum anvil_job_state state;
};

static bool
step_in_state(void *p)
{
    struct step_state     *a  = p;
    struct anvil_workflow *wf = NULL;
    bool                   ok = false;

    if (anvil_workflow_get(a->h->client, a->id, &wf, NULL) == ANVIL_OK)
        ok = wf->steps[a->index].state == a->state;
    anvil_workflow_free(wf);
    return ok;
}

static void
test_a_step_queued_by_its_parent_is_still_queued_after_sigkill(void **state)
{
    struct harness        *h        = *state;
    const char *const      types[4] = { "step", "step", "later", "later" };
    struct step_state      s2       = { h, NULL, 2, ANVIL_JOB_QUEUED };
    struct anvil_workflow *wf;
    pid_t                  pid = start_anvild(h);
    char                  *id;

    assert_non_null(harness_start_worker(
        h, 1, "step", crash_handler, (void *) NULL, (const char *) NULL));
    id    = submit_chain(h, 4, types, NULL);
    s2.id = id;
    assert_true(harness_wait_for(step_in_state, &s2, WAIT_MS));

    kill_9(pid); // s1's Complete queued s2 in the same transaction
    start_anvild(h);
    wf = get_wf(h, id);
    assert_int_equal(wf->state, ANVIL_WORKFLOW_RUNNING);
    assert_int_equal(wf->steps_succeeded, 2);
    assert_int_equal(wf->steps[2].state, ANVIL_JOB_QUEUED);
    assert_int_equal(wf->steps[3].state, ANVIL_JOB_PENDING);
    anvil_workflow_free(wf);

    assert_non_null(harness_start_worker(
        h, 1, "later", crash_handler, (void *) NULL, (const char *) NULL));
    wf = wait_wf(h, id, WAIT_MS);
    anvil_workflow_free(wf);
    for (int i = 0; i < 4; i++)
        assert_int_equal(count_of(i), 1);
    anvil_free(id);
}

// ---- latency ----

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;

    return (x > y) - (x < y);
}

// Sorts v and returns its q-quantile (0..1), nearest rank.
static int64_t
quantile(int64_t *v, size_t n, double q)
{
    size_t k = (size_t) (q * (double) n);

    qsort(v, n, sizeof(*v), cmp_i64);
    return v[k >= n ? n - 1 : k];
}

static void
test_step_advance_latency_over_a_thousand_step_chain(void **state)
{
    struct harness        *h      = *state;
    int64_t               *worker = calloc(LATENCY_STEPS, sizeof(int64_t));
    int64_t               *server = calloc(LATENCY_STEPS, sizeof(int64_t));
    struct anvil_workflow *wf;
    int64_t                t0 = av_mono_ms(), total;
    char                  *id;
    size_t                 n = LATENCY_STEPS - 1;

    assert_non_null(worker);
    assert_non_null(server);
    assert_non_null(harness_start_worker(
        h, 1, "step", crash_handler, (void *) NULL, (const char *) NULL));
    id    = submit_chain(h, LATENCY_STEPS, NULL, NULL);
    wf    = wait_wf(h, id, 60000);
    total = av_mono_ms() - t0;
    assert_int_equal(wf->n_steps, LATENCY_STEPS);
    pthread_mutex_lock(&ex.mu);
    for (size_t i = 1; i < LATENCY_STEPS; i++) {
        worker[i - 1] = ex.start_us[i] - ex.end_us[i - 1];
        server[i - 1]
            = wf->steps[i].started_at_ms - wf->steps[i - 1].finished_at_ms;
    }
    int runs_ok = 1;
    for (size_t i = 0; i < LATENCY_STEPS; i++)
        runs_ok &= ex.count[i] == 1;
    pthread_mutex_unlock(&ex.mu);
    anvil_workflow_free(wf);

    int64_t w_min = quantile(worker, n, 0.0);
    int64_t w50   = quantile(worker, n, 0.5);
    int64_t w99   = quantile(worker, n, 0.99);
    int64_t w_max = quantile(worker, n, 1.0);
    int64_t s50   = quantile(server, n, 0.5);
    int64_t s99   = quantile(server, n, 0.99);
    int64_t s_min = quantile(server, n, 0.0);
    size_t  slow  = 0; // advances over 5 ms: stalls, not noise
    for (size_t i = 0; i < n; i++)
        slow += worker[i] > 5000;
    print_message("step advance over %d steps in %lld ms: worker (parent "
                  "handler end -> child handler start) p50 %.2f ms, p99 "
                  "%.2f ms, max %.2f ms; server (finished_at -> "
                  "started_at) p50 %lld ms, p99 %lld ms; %zu advances "
                  "over 5 ms\n",
        LATENCY_STEPS, (long long) total, (double) w50 / 1000.0,
        (double) w99 / 1000.0, (double) w_max / 1000.0, (long long) s50,
        (long long) s99, slow);
    assert_true(runs_ok);
    assert_true(w_min >= 0); // each child started after its parent ended
    assert_true(s_min >= 0);
    assert_true(w50 < 50 * 1000);
    assert_true(s50 < 50);
    free(worker);
    free(server);
    anvil_free(id);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_steps_done_before_sigkill_never_run_again, setup_child,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_step_queued_by_its_parent_is_still_queued_after_sigkill,
            setup_child, teardown),
        cmocka_unit_test_setup_teardown(
            test_step_advance_latency_over_a_thousand_step_chain,
            setup_in_process, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
