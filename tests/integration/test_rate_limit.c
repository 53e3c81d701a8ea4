// test_rate_limit.c - queue rate limits on a real anvild child process
// with a real in-process worker: the handler itself stamps when each job
// starts. 50/s holds within 10% over 10 s; a bucket drained before a
// kill -9 is not full again after the restart (no second burst); Health
// shows the limit; bad limits are refused.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../harness.h"

#define MAX_STARTS 2000

static int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// When each job started, as the worker saw it.
struct starts {
    atomic_int n;
    int64_t    at[MAX_STARTS];
};

static int
stamp_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) lease;
    struct starts *s = arg;
    int            i = atomic_fetch_add(&s->n, 1);
    if (i < MAX_STARTS)
        s->at[i] = mono_ms();
    return anvil_job_ctx_set_result(ctx, "ok", 2);
}

struct enough {
    struct starts *s;
    int            n;
};

static bool
has_enough(void *arg)
{
    struct enough *e = arg;
    return atomic_load(&e->s->n) >= e->n;
}

static void
wait_starts(struct starts *s, int n, int timeout_ms)
{
    struct enough e = { s, n };
    if (!harness_wait_for(has_enough, &e, timeout_ms))
        fail_msg("%d starts after %d ms, waiting for %d", atomic_load(&s->n),
            timeout_ms, n);
}

// Jobs started in [from, to).
static int
count_between(const struct starts *s, int64_t from, int64_t to)
{
    int n   = atomic_load(&s->n);
    int cnt = 0;
    for (int i = 0; i < n && i < MAX_STARTS; i++)
        cnt += s->at[i] >= from && s->at[i] < to;
    return cnt;
}

static void
submit_jobs(struct harness *h, const char *queue, size_t n)
{
    struct anvil_job_opts      o = { .queue = queue };
    struct anvil_job_spec      specs[500];
    struct anvil_submit_result res[500];
    for (size_t i = 0; i < 500; i++)
        specs[i] = (struct anvil_job_spec) { "t", "{}", 2, &o };
    while (n > 0) {
        size_t             k      = n < 500 ? n : 500;
        size_t             failed = 0;
        struct anvil_error err    = { 0 };
        assert_int_equal(
            anvil_job_submit_many(h->client, specs, k, res, &failed, &err),
            ANVIL_OK);
        assert_int_equal(failed, 0);
        n -= k;
    }
}

static void
set_limit(struct harness *h, const char *queue, double rate, uint32_t burst)
{
    struct anvil_error err     = { 0 };
    bool               changed = false;
    assert_int_equal(
        anvil_queue_limit(h->client, queue, rate, burst, NULL, &changed, &err),
        ANVIL_OK);
    assert_true(changed);
}

static void
test_fifty_a_second_holds_within_ten_percent_over_ten_seconds(void **state)
{
    struct harness *h = *state;
    struct starts  *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    assert_true(harness_spawn_anvild(h, (char *) NULL) > 0);
    set_limit(h, "rl", 50, 0); // the default burst: 5
    submit_jobs(h, "rl", 800);
    const char   *queues[] = { "rl" };
    anvil_worker *w
        = harness_start_worker_on(h, 8, queues, 1, "t", stamp_handler, s, NULL);
    assert_non_null(w);
    // 11.5 s of starts at 50/s: the window below plus a margin.
    wait_starts(s, 575, 30000);
    int64_t t0  = s->at[0] + 1000;
    int     got = count_between(s, t0, t0 + 10000);
    print_message("starts in 10 s at 50/s: %d\n", got);
    assert_in_range(got, 450, 550);
    harness_stop_worker(h, w);
    free(s);
}

static void
test_a_restart_grants_no_second_burst(void **state)
{
    struct harness *h   = *state;
    struct starts  *s   = calloc(1, sizeof(*s));
    pid_t           pid = harness_spawn_anvild(h, (char *) NULL);
    assert_non_null(s);
    assert_true(pid > 0);
    set_limit(h, "rl", 2, 20);
    submit_jobs(h, "rl", 200);
    const char   *queues[] = { "rl" };
    anvil_worker *w
        = harness_start_worker_on(h, 8, queues, 1, "t", stamp_handler, s, NULL);
    assert_non_null(w);
    // The full bucket's 20 at once, then 2 a second: slow enough that
    // seconds of downtime (a restart that waits for its listener to be
    // opened again: listen_guard.h) cannot refill the bucket either.
    wait_starts(s, 20, 10000);
    if (s->at[19] - s->at[0] >= 1000)
        fail_msg("the bucket's 20 took %lld ms to start",
            (long long) (s->at[19] - s->at[0]));
    wait_starts(s, 24, 10000);
    int64_t killed = mono_ms();
    assert_int_not_equal(harness_kill(pid, SIGKILL), -1);
    assert_true(harness_spawn_anvild(h, (char *) NULL) > 0);
    int64_t up     = mono_ms();
    int     before = count_between(s, 0, killed);
    // Two seconds later: 2/s plus what the downtime earned, not a burst.
    wait_starts(s, before + 8, 15000);
    struct timespec ts = { 2, 0 };
    nanosleep(&ts, NULL); // the span measured, not a wait for a condition
    int after = count_between(s, killed, up + 2000);
    int allow = (int) ((up + 2000 - killed) * 2 / 1000) + 3;
    print_message("starts in the %lld ms after the kill: %d (allowed %d)\n",
        (long long) (up + 2000 - killed), after, allow);
    assert_true(after <= allow);
    assert_true(after < 20);
    // Health shows the stored limit.
    struct anvil_health *hl  = NULL;
    struct anvil_error   err = { 0 };
    assert_int_equal(anvil_health_get(h->client, &hl, &err), ANVIL_OK);
    assert_int_equal(hl->n_queue_limits, 1);
    assert_string_equal(hl->queue_limits[0].queue, "rl");
    assert_true(hl->queue_limits[0].rate_per_second == 2);
    assert_int_equal(hl->queue_limits[0].burst, 20);
    assert_true(hl->queue_limits[0].tokens < 20);
    anvil_health_free(hl);
    harness_stop_worker(h, w);
    free(s);
}

static void
test_bad_limits_are_refused_and_none_removes(void **state)
{
    struct harness *h = *state;
    assert_true(harness_spawn_anvild(h, (char *) NULL) > 0);
    struct anvil_error err     = { 0 };
    bool               changed = true;
    assert_int_equal(anvil_queue_limit(h->client, "q", -1, 0, NULL, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "rate_per_second"));
    assert_int_equal(
        anvil_queue_limit(h->client, "q", 2e6, 1, NULL, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_int_equal(anvil_queue_limit(h->client, "q", 0, 5, NULL, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "burst"));
    assert_int_equal(
        anvil_queue_limit(h->client, "q", 1, 2000000, NULL, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_int_equal(
        anvil_queue_limit(h->client, "bad name", 1, 1, NULL, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    // Nothing was stored by the refusals.
    struct anvil_health *hl = NULL;
    assert_int_equal(anvil_health_get(h->client, &hl, &err), ANVIL_OK);
    assert_int_equal(hl->n_queue_limits, 0);
    anvil_health_free(hl);
    // Removing a limit that is not there is fine; then set, remove.
    assert_int_equal(
        anvil_queue_limit(h->client, "q", 0, 0, NULL, &changed, &err),
        ANVIL_OK);
    assert_false(changed);
    set_limit(h, "q", 10, 0);
    assert_int_equal(
        anvil_queue_limit(h->client, "q", 0, 0, NULL, &changed, &err),
        ANVIL_OK);
    assert_true(changed);
    assert_int_equal(anvil_health_get(h->client, &hl, &err), ANVIL_OK);
    assert_int_equal(hl->n_queue_limits, 0);
    anvil_health_free(hl);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_fifty_a_second_holds_within_ten_percent_over_ten_seconds,
            harness_open_setup, harness_open_teardown),
        cmocka_unit_test_setup_teardown(test_a_restart_grants_no_second_burst,
            harness_open_setup, harness_open_teardown),
        cmocka_unit_test_setup_teardown(
            test_bad_limits_are_refused_and_none_removes, harness_open_setup,
            harness_open_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nng_fini();
    return rc;
}
