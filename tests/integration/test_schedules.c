// test_schedules.c - cron schedules on a real anvild child process and a
// real worker: an `@every 1s` schedule (overlap ALLOW, catch-up EACH)
// fires about once a second while anvild is killed with SIGKILL and
// started again twice; no tick fires twice and none is lost (the ticks'
// jobs are consecutive seconds from the first to the last), and the
// worker runs every one. Bad input over the SDK is refused naming the
// problem.
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
#include <time.h>

#include "../harness.h"
#include "util/clock.h"

#include <anvil/schedule.h>

#define WAIT_MS 20000
#define DOWN_MS 1500 // how long anvild stays dead: ticks fall meanwhile

static int
tick_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) arg;
    (void) lease;
    return anvil_job_ctx_set_result(ctx, "ok", 2);
}

struct fired_at_least {
    struct harness *h;
    uint64_t        n;
};

// True once schedule "tick" has fired at least n jobs.
static bool
fired_at_least(void *arg)
{
    struct fired_at_least *w   = arg;
    struct anvil_schedule *s   = NULL;
    struct anvil_error     err = { 0 };
    if (anvil_schedule_get(w->h->client, "tick", &s, &err) != ANVIL_OK)
        return false;
    bool ok = s->fired >= w->n;
    anvil_schedule_free(s);
    return ok;
}

static void
wait_fired(struct harness *h, uint64_t n)
{
    struct fired_at_least w = { h, n };
    if (!harness_wait_for(fired_at_least, &w, WAIT_MS))
        fail_msg(
            "schedule 'tick' did not reach %llu jobs", (unsigned long long) n);
}

static void
stay_down(void)
{
    // The downtime itself is what is tested: ticks must fall while no
    // anvild runs, so this one wait is on the clock.
    struct timespec ts = { DOWN_MS / 1000, (DOWN_MS % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static bool
all_succeeded(void *arg)
{
    struct harness *h = arg;
    return harness_sql_int(h->db, "SELECT COUNT(*) FROM jobs WHERE state != 5")
        == 0;
}

static void
test_every_second_fires_each_tick_once_across_two_kill_9(void **state)
{
    struct harness *h   = *state;
    pid_t           pid = harness_spawn_anvild(h, (char *) NULL);
    assert_true(pid > 0);
    assert_non_null(
        harness_start_worker(h, 4, "tick", tick_handler, NULL, (char *) NULL));
    struct anvil_schedule_spec spec = {
        .name     = "tick",
        .cron     = "@every 1s",
        .type     = "tick",
        .payload  = "{}",
        .len      = 2,
        .overlap  = ANVIL_OVERLAP_ALLOW,
        .catch_up = ANVIL_CATCH_UP_EACH,
    };
    struct anvil_error err = { 0 };
    assert_int_equal(
        anvil_schedule_create(h->client, &spec, NULL, &err), ANVIL_OK);

    uint64_t want = 0;
    for (int round = 0; round < 2; round++) {
        want += 6;
        wait_fired(h, want);
        assert_true(WIFSIGNALED(harness_kill(pid, SIGKILL)));
        stay_down();
        pid = harness_spawn_anvild(h, (char *) NULL);
        assert_true(pid > 0);
    }
    want += 6;
    wait_fired(h, want);
    struct anvil_schedule *s = NULL;
    assert_int_equal(
        anvil_schedule_pause(h->client, "tick", &s, &err), ANVIL_OK);
    assert_true(s->paused);
    anvil_schedule_free(s);
    assert_true(harness_wait_for(all_succeeded, h, WAIT_MS));

    // One job per tick: keys distinct, ticks one second apart from the
    // first to the last (none lost), as many as the ticks between them.
    int64_t n     = harness_sql_int(h->db, "SELECT COUNT(*) FROM jobs");
    int64_t keys  = harness_sql_int(h->db,
         "SELECT COUNT(DISTINCT idem_key) FROM jobs "
          "WHERE idem_key LIKE 'schedule/tick/%'");
    int64_t first = harness_sql_int(
        h->db, "SELECT MIN(CAST(substr(idem_key, 15) AS INTEGER)) FROM jobs");
    int64_t last = harness_sql_int(
        h->db, "SELECT MAX(CAST(substr(idem_key, 15) AS INTEGER)) FROM jobs");
    int64_t gaps = harness_sql_int(h->db,
        "SELECT COUNT(*) FROM (SELECT CAST(substr(idem_key, 15) AS INTEGER) "
        "AS t, LAG(CAST(substr(idem_key, 15) AS INTEGER)) OVER (ORDER BY "
        "CAST(substr(idem_key, 15) AS INTEGER)) AS p FROM jobs) "
        "WHERE p IS NOT NULL AND t - p != 1000");
    fprintf(stderr, "schedule: %lld jobs over %lld ms\n", (long long) n,
        (long long) (last - first));
    assert_true(n >= (int64_t) want);
    assert_int_equal(keys, n);
    assert_int_equal(gaps, 0);
    assert_int_equal((last - first) / 1000 + 1, n);
    int64_t fired = harness_sql_int(
        h->db, "SELECT fired FROM schedules WHERE name = 'tick'");
    assert_int_equal(fired, n);
}

static void
expect_refused(
    struct harness *h, const struct anvil_schedule_spec *spec, const char *part)
{
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_schedule_create(h->client, spec, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    if (strstr(err.msg, part) == NULL)
        fail_msg("'%s' does not name '%s'", err.msg, part);
}

static void
test_bad_schedules_are_refused_naming_the_problem(void **state)
{
    struct harness *h = *state;
    assert_true(harness_spawn_anvild(h, (char *) NULL) > 0);
    struct anvil_schedule_spec s = { .name = "b", .type = "t" };
    s.cron                       = "0 0 31 2 *";
    expect_refused(h, &s, "never fires");
    s.cron = "*/0 * * * *";
    expect_refused(h, &s, "minute: step");
    s.cron = "0 0 * JANUARY *";
    expect_refused(h, &s, "month: unknown name 'JANUARY'");
    s.cron      = "@daily";
    s.time_zone = "Nowhere/City";
    expect_refused(h, &s, "unknown time zone 'Nowhere/City'");
    s.time_zone                 = NULL;
    struct anvil_job_opts delay = { .delay_ms = 10 };
    s.opts                      = &delay;
    expect_refused(h, &s, "leave them unset");
    struct anvil_job_opts keyed
        = { .concurrency_key = "k", .concurrency_limit = 1 };
    s.opts = &keyed;
    expect_refused(h, &s, "concurrency_key");
    s.opts = NULL;
    s.name = "no spaces";
    expect_refused(h, &s, "name");
    s.name = "ok";
    s.type = "bad type";
    expect_refused(h, &s, "type");

    struct anvil_schedule_list *l   = NULL;
    struct anvil_error          err = { 0 };
    assert_int_equal(anvil_schedule_list(h->client, &l, &err), ANVIL_OK);
    assert_int_equal(l->n, 0); // nothing was stored
    anvil_schedule_list_free(l);
    struct anvil_schedule *got = NULL;
    assert_int_equal(
        anvil_schedule_get(h->client, "ok", &got, &err), ANVIL_NOT_FOUND);
    assert_null(got);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_every_second_fires_each_tick_once_across_two_kill_9,
            harness_open_setup, harness_open_teardown),
        cmocka_unit_test_setup_teardown(
            test_bad_schedules_are_refused_naming_the_problem,
            harness_open_setup, harness_open_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
