// test_schedules.c - cron schedules on a real anvild child process and a
// real worker: an `@every 1s` schedule (overlap ALLOW, catch-up EACH)
// fires once a second for a minute while anvild is killed with SIGKILL
// and started again twice (at about 20 s and 40 s); no tick fires twice
// and none is lost (the ticks' jobs are consecutive seconds from the
// first to the last), and the worker runs every one. A schedule with a
// workflow template (a two-step chain) fires a workflow per tick that the
// worker runs to SUCCEEDED; overlap SKIP and CANCEL_PREVIOUS look at the
// previous tick's workflow. Bad input over the SDK is refused naming the
// problem.
//
// ANVIL_TEST_SCHEDULE_SECONDS (default 60, at least 3) sets the span of
// ticks of the kill -9 test; the kills fall at a third and two thirds.
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

#define WAIT_MS 60000
#define DOWN_MS 1500 // how long anvild stays dead: ticks fall meanwhile
#define SPAN_S 60    // ticks in the kill -9 test's span, by default

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
    const char     *name;
    uint64_t        n;
    uint64_t        skipped; // and at least this many skipped
};

// True once schedule w->name has fired at least n runs.
static bool
fired_at_least(void *arg)
{
    struct fired_at_least *w   = arg;
    struct anvil_schedule *s   = NULL;
    struct anvil_error     err = { 0 };
    if (anvil_schedule_get(w->h->client, w->name, &s, &err) != ANVIL_OK)
        return false;
    bool ok = s->fired >= w->n && s->skipped >= w->skipped;
    anvil_schedule_free(s);
    return ok;
}

// Waits for schedule name's n-th run: about a second a tick from now on a
// schedule that fired `from` already, with a generous margin for a slow
// machine.
static void
wait_runs(struct harness *h, const char *name, uint64_t from, uint64_t n)
{
    struct fired_at_least w  = { h, name, n, 0 };
    int                   ms = (int) (n > from ? n - from : 0) * 1000 + WAIT_MS;
    if (!harness_wait_for(fired_at_least, &w, ms))
        fail_msg("schedule '%s' did not reach %llu runs in %d ms", name,
            (unsigned long long) n, ms);
}

static void
wait_fired(struct harness *h, uint64_t from, uint64_t n)
{
    wait_runs(h, "tick", from, n);
}

static uint64_t
span_seconds(void)
{
    const char *v = getenv("ANVIL_TEST_SCHEDULE_SECONDS");
    long        n = v != NULL ? strtol(v, NULL, 10) : SPAN_S;
    return n >= 3 ? (uint64_t) n : SPAN_S;
}

static void
stay_down(void)
{
    // The downtime itself is what is tested: ticks must fall while no
    // anvild runs, so this one wait is on the clock.
    struct timespec ts = { DOWN_MS / 1000, (DOWN_MS % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

// The store's database: the SQLite file, or the PostgreSQL conninfo when
// the tests run there (pg_harness.h).
static const char *
db(const struct harness *h)
{
    return h->store[0] != '\0' ? h->store : h->db;
}

// A tick's time in ms from its job's key "schedule/tick/<ms>" (keys are
// BYTEA on PostgreSQL).
static const char *
tick_ms(const struct harness *h)
{
    return h->store[0] != '\0'
        ? "CAST(convert_from(substr(idem_key, 15), 'UTF8') AS BIGINT)"
        : "CAST(substr(idem_key, 15) AS INTEGER)";
}

static bool
all_succeeded(void *arg)
{
    struct harness *h = arg;
    return harness_sql_int(db(h), "SELECT COUNT(*) FROM jobs WHERE state != 5")
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

    // A span of `span` ticks; anvild is killed at a third and two thirds
    // of it (about 20 s and 40 s into a minute).
    uint64_t span = span_seconds();
    uint64_t want = 0;
    for (int round = 1; round <= 2; round++) {
        uint64_t from = want;
        want          = span * (uint64_t) round / 3;
        wait_fired(h, from, want);
        assert_true(WIFSIGNALED(harness_kill(pid, SIGKILL)));
        stay_down();
        pid = harness_spawn_anvild(h, (char *) NULL);
        assert_true(pid > 0);
    }
    wait_fired(h, want, span);
    want                     = span;
    struct anvil_schedule *s = NULL;
    assert_int_equal(
        anvil_schedule_pause(h->client, "tick", &s, &err), ANVIL_OK);
    assert_true(s->paused);
    anvil_schedule_free(s);
    assert_true(harness_wait_for(all_succeeded, h, WAIT_MS));

    // One job per tick: keys distinct, ticks one second apart from the
    // first to the last (none lost), as many as the ticks between them.
    int64_t n    = harness_sql_int(db(h), "SELECT COUNT(*) FROM jobs");
    int64_t keys = harness_sql_int(db(h),
        "SELECT COUNT(DISTINCT idem_key) FROM jobs "
        "WHERE idem_key LIKE 'schedule/tick/%'");
    char    sql[512];
    snprintf(sql, sizeof(sql), "SELECT MIN(%s) FROM jobs", tick_ms(h));
    int64_t first = harness_sql_int(db(h), sql);
    snprintf(sql, sizeof(sql), "SELECT MAX(%s) FROM jobs", tick_ms(h));
    int64_t last = harness_sql_int(db(h), sql);
    snprintf(sql, sizeof(sql),
        "SELECT COUNT(*) FROM (SELECT %s AS t, LAG(%s) OVER (ORDER BY %s) "
        "AS p FROM jobs) AS g WHERE p IS NOT NULL AND t - p != 1000",
        tick_ms(h), tick_ms(h), tick_ms(h));
    int64_t gaps = harness_sql_int(db(h), sql);
    fprintf(stderr, "schedule: %lld jobs for %lld ticks over %lld ms\n",
        (long long) n, (long long) ((last - first) / 1000 + 1),
        (long long) (last - first));
    assert_true(n >= (int64_t) want);
    assert_int_equal(keys, n);
    assert_int_equal(gaps, 0);
    assert_int_equal((last - first) / 1000 + 1, n);
    int64_t fired = harness_sql_int(
        db(h), "SELECT fired FROM schedules WHERE name = 'tick'");
    assert_int_equal(fired, n);
}

// ---- workflow templates ----

// A chain extract -> load of the given step types; the caller frees it.
static anvil_workflow_spec *
chain(const char *name, const char *first, const char *second)
{
    anvil_workflow_spec *wf  = NULL;
    struct anvil_error   err = { 0 };
    assert_int_equal(anvil_workflow_spec_new(&wf, name, &err), ANVIL_OK);
    assert_int_equal(
        anvil_workflow_spec_add_step(wf, "extract", first, "{}", 2, NULL, &err),
        ANVIL_OK);
    assert_int_equal(
        anvil_workflow_spec_add_step(wf, "load", second, "{}", 2, NULL, &err),
        ANVIL_OK);
    assert_int_equal(
        anvil_workflow_spec_add_edge(wf, "load", "extract", &err), ANVIL_OK);
    return wf;
}

static bool
two_workflows_succeeded(void *arg)
{
    struct harness *h = arg;
    return harness_sql_int(db(h),
               "SELECT COUNT(*) FROM workflows WHERE state = 2 "
               "AND idem_key LIKE 'schedule/etl/%'")
        >= 2;
}

static void
test_workflow_template_fires_a_workflow_per_tick(void **state)
{
    struct harness *h = *state;
    assert_true(harness_spawn_anvild(h, (char *) NULL) > 0);
    assert_non_null(harness_start_worker(h, 2, "extract", tick_handler, NULL,
        "load", tick_handler, NULL, (char *) NULL));
    anvil_workflow_spec       *wf   = chain("etl", "extract", "load");
    struct anvil_schedule_spec spec = {
        .name     = "etl",
        .cron     = "@every 1s",
        .workflow = wf, // overlap SKIP: no tick while one runs
    };
    struct anvil_schedule *s   = NULL;
    struct anvil_error     err = { 0 };
    assert_int_equal(
        anvil_schedule_create(h->client, &spec, &s, &err), ANVIL_OK);
    anvil_workflow_spec_free(wf);
    assert_string_equal(s->workflow_name, "etl");
    assert_int_equal(s->workflow_steps, 2);
    assert_string_equal(s->type, "");
    assert_string_equal(s->last_workflow_id, "");
    anvil_schedule_free(s);

    if (!harness_wait_for(two_workflows_succeeded, h, WAIT_MS))
        fail_msg("schedule 'etl' did not make two SUCCEEDED workflows");
    assert_int_equal(
        anvil_schedule_pause(h->client, "etl", &s, &err), ANVIL_OK);
    // Every workflow it fired has its own tick's key and both steps; the
    // last one is the schedule's last_workflow_id.
    int64_t n     = harness_sql_int(db(h), "SELECT COUNT(*) FROM workflows");
    int64_t keys  = harness_sql_int(db(h),
         "SELECT COUNT(DISTINCT idem_key) FROM workflows "
          "WHERE idem_key LIKE 'schedule/etl/%' AND name = 'etl'");
    int64_t steps = harness_sql_int(
        db(h), "SELECT COUNT(*) FROM jobs WHERE workflow_id IS NOT NULL");
    int64_t last = harness_sql_int(db(h), "SELECT MAX(id) FROM workflows");
    fprintf(stderr, "schedule etl: %lld workflows, %lld steps\n", (long long) n,
        (long long) steps);
    assert_true(n >= 2);
    assert_int_equal(keys, n);
    assert_int_equal(steps, 2 * n);
    assert_int_equal(s->fired, (uint64_t) n);
    char want[32];
    snprintf(want, sizeof(want), "w%lld", (long long) last);
    assert_string_equal(s->last_workflow_id, want);
    assert_string_equal(s->last_job_id, "");
    anvil_schedule_free(s);
    // The succeeded ones ran extract before load.
    assert_int_equal(harness_sql_int(db(h),
                         "SELECT COUNT(*) FROM jobs l JOIN jobs x ON "
                         "l.workflow_id = x.workflow_id WHERE l.step = 'load' "
                         "AND x.step = 'extract' AND l.state = 5 "
                         "AND l.started_at < x.finished_at"),
        0);
}

// True once schedule 'cancel' has cancelled a workflow of its.
static bool
one_stuck2_canceled(void *arg)
{
    struct harness *h = arg;
    return harness_sql_int(db(h),
               "SELECT COUNT(*) FROM workflows WHERE name = 'stuck2' "
               "AND state = 4")
        >= 1;
}

// Steps of type "nobody" wait QUEUED (no worker serves them), so each
// tick's workflow is still RUNNING at the next tick.
static void
test_workflow_template_overlap_skip_and_cancel_previous(void **state)
{
    struct harness *h = *state;
    assert_true(harness_spawn_anvild(h, (char *) NULL) > 0);
    struct anvil_error         err  = { 0 };
    anvil_workflow_spec       *wf   = chain("stuck", "nobody", "nobody");
    struct anvil_schedule_spec spec = {
        .name     = "skip",
        .cron     = "@every 1s",
        .workflow = wf,
    };
    assert_int_equal(
        anvil_schedule_create(h->client, &spec, NULL, &err), ANVIL_OK);
    anvil_workflow_spec_free(wf);
    wf            = chain("stuck2", "nobody", "nobody");
    spec.name     = "cancel";
    spec.workflow = wf;
    spec.overlap  = ANVIL_OVERLAP_CANCEL_PREVIOUS;
    assert_int_equal(
        anvil_schedule_create(h->client, &spec, NULL, &err), ANVIL_OK);
    anvil_workflow_spec_free(wf);

    // SKIP: one workflow, then ticks that submit none while it runs.
    struct fired_at_least w = { h, "skip", 1, 2 };
    assert_true(harness_wait_for(fired_at_least, &w, WAIT_MS));
    // CANCEL_PREVIOUS: the previous workflow ends CANCELED, steps and all.
    assert_true(harness_wait_for(one_stuck2_canceled, h, WAIT_MS));
    struct anvil_schedule *s = NULL;
    assert_int_equal(
        anvil_schedule_pause(h->client, "skip", &s, &err), ANVIL_OK);
    assert_int_equal(s->fired, 1);
    anvil_schedule_free(s);
    assert_int_equal(
        anvil_schedule_pause(h->client, "cancel", &s, &err), ANVIL_OK);
    assert_true(s->fired >= 2);
    anvil_schedule_free(s);
    assert_int_equal(harness_sql_int(db(h),
                         "SELECT COUNT(*) FROM workflows WHERE name = 'stuck' "
                         "AND state = 1"),
        1);
    assert_int_equal(harness_sql_int(db(h),
                         "SELECT COUNT(*) FROM workflows WHERE name = 'stuck2' "
                         "AND state = 1"),
        1);
    assert_int_equal(harness_sql_int(db(h),
                         "SELECT COUNT(*) FROM workflows w WHERE name = "
                         "'stuck2' AND state = 4 AND error LIKE '%CANCEL_PREV%'"
                         " AND (SELECT COUNT(*) FROM jobs j WHERE "
                         "j.workflow_id = w.id AND j.state != 7) = 0"),
        harness_sql_int(db(h),
            "SELECT COUNT(*) FROM workflows WHERE name = 'stuck2' "
            "AND state = 4"));
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

    // Workflow templates: both templates, neither, a cycle, no step, a
    // bad step, a key of its own.
    struct anvil_error   e  = { 0 };
    anvil_workflow_spec *wf = chain("w", "a", "b");
    s.type                  = "t";
    s.workflow              = wf;
    expect_refused(h, &s, "spec.job and spec.workflow are both set");
    s.type     = NULL;
    s.workflow = NULL;
    expect_refused(h, &s, "spec->type and spec->workflow are both NULL");
    assert_int_equal(
        anvil_workflow_spec_add_edge(wf, "extract", "load", &e), ANVIL_OK);
    s.workflow = wf;
    expect_refused(h, &s, "spec.workflow: steps form a cycle");
    anvil_workflow_spec_free(wf);
    assert_int_equal(anvil_workflow_spec_new(&wf, "empty", &e), ANVIL_OK);
    s.workflow = wf;
    expect_refused(h, &s, "spec.workflow: a workflow needs at least one step");
    assert_int_equal(
        anvil_workflow_spec_add_step(wf, "a", "bad type", NULL, 0, NULL, &e),
        ANVIL_OK);
    expect_refused(h, &s, "spec.workflow: step 'a': type");
    anvil_workflow_spec_free(wf);
    wf = chain("w", "a", "b");
    assert_int_equal(anvil_workflow_spec_set_key(wf, "mine", &e), ANVIL_OK);
    s.workflow = wf;
    expect_refused(h, &s, "idempotency_key is set by each tick");
    anvil_workflow_spec_free(wf);

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
            test_workflow_template_fires_a_workflow_per_tick,
            harness_open_setup, harness_open_teardown),
        cmocka_unit_test_setup_teardown(
            test_workflow_template_overlap_skip_and_cancel_previous,
            harness_open_setup, harness_open_teardown),
        cmocka_unit_test_setup_teardown(
            test_bad_schedules_are_refused_naming_the_problem,
            harness_open_setup, harness_open_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
