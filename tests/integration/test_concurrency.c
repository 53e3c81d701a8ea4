// test_concurrency.c - concurrency limits on a real anvild child process
// with real workers (two in-process workers of 4 slots each): the handler
// itself counts how many jobs of key "k" (limit 2) run at once and never
// sees 3, while jobs of key "other", queued behind all of them, run
// alongside; anvil status shows the key; Health lists a key held at its
// limit with jobs waiting, and forgets it once its jobs end. Workflow
// steps: a fan-out of 8 steps keyed "k" limit 2 on one worker of 8 slots
// never runs 3 at once; a step with a bad key is refused, naming it.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../harness.h"

#include <anvil/workflow.h>

#define WAIT_MS 30000
#define N_K 20
#define N_OTHER 20

// What the handler saw, across all slots of both workers.
struct seen {
    atomic_int running_k;  // jobs of key "k" running now
    atomic_int max_k;      // the most at once
    atomic_int overlapped; // "other" jobs started while "k" ran 2
};

static int
count_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    struct seen *s  = arg;
    bool         k  = strcmp(lease->job.concurrency_key, "k") == 0;
    int          at = 0;
    if (k) {
        at      = atomic_fetch_add(&s->running_k, 1) + 1;
        int max = atomic_load(&s->max_k);
        while (at > max && !atomic_compare_exchange_weak(&s->max_k, &max, at))
            ;
    } else if (atomic_load(&s->running_k) == 2) {
        atomic_fetch_add(&s->overlapped, 1);
    }
    // The job's work: long enough that jobs overlap.
    struct timespec ts = { 0, 20 * 1000000 };
    nanosleep(&ts, NULL);
    if (k)
        atomic_fetch_sub(&s->running_k, 1);
    return anvil_job_ctx_set_result(ctx, "ok", 2);
}

static char *
submit_keyed(struct harness *h, const char *ckey, uint32_t limit)
{
    struct anvil_job_opts o
        = { .concurrency_key = ckey, .concurrency_limit = limit };
    struct anvil_error err = { 0 };
    char              *id  = NULL;
    assert_int_equal(
        anvil_job_submit(h->client, "t", "{}", 2, &o, &id, NULL, &err),
        ANVIL_OK);
    return id;
}

static void
expect_succeeded(struct harness *h, char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct anvil_job  *j   = NULL;
        struct anvil_error err = { 0 };
        assert_int_equal(
            anvil_job_wait(h->client, ids[i], WAIT_MS, &j, &err), ANVIL_OK);
        assert_int_equal(j->state, ANVIL_JOB_SUCCEEDED);
        anvil_job_free(j);
        anvil_free(ids[i]);
    }
}

static void
test_a_key_never_runs_more_than_its_limit_and_others_go_on(void **state)
{
    struct harness *h = *state;
    struct seen     s = { 0 };
    assert_true(harness_spawn_anvild(h, (char *) NULL) > 0);
    char *k[N_K], *other[N_OTHER];
    // All of "k" first: FIFO puts "other" behind them.
    for (int i = 0; i < N_K; i++)
        k[i] = submit_keyed(h, "k", 2);
    for (int i = 0; i < N_OTHER; i++)
        other[i] = submit_keyed(h, "other", 8);
    for (int w = 0; w < 2; w++)
        assert_non_null(
            harness_start_worker(h, 4, "t", count_handler, &s, (char *) NULL));
    expect_succeeded(h, k, N_K);
    expect_succeeded(h, other, N_OTHER);
    assert_int_equal(atomic_load(&s.max_k), 2);
    assert_true(atomic_load(&s.overlapped) > 0);
}

static void
test_status_shows_the_key_and_bad_settings_are_refused(void **state)
{
    struct harness *h = *state;
    assert_true(harness_spawn_anvild(h, (char *) NULL) > 0);
    char              *id  = submit_keyed(h, "tenant-7", 3);
    struct anvil_job  *j   = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_job_get(h->client, id, &j, &err), ANVIL_OK);
    assert_string_equal(j->concurrency_key, "tenant-7");
    assert_int_equal(j->concurrency_limit, 3);
    anvil_job_free(j);
    anvil_free(id);
    struct anvil_job_opts o = { .concurrency_key = "k" };
    assert_int_equal(
        anvil_job_submit(h->client, "t", "{}", 2, &o, NULL, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "concurrency_limit"));
}

// Jobs of key "held" run until the test lets them go.
struct gate {
    atomic_bool open;
};

static int
held_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) lease;
    struct gate    *g  = arg;
    struct timespec ts = { 0, 5 * 1000000 };
    while (!atomic_load(&g->open))
        nanosleep(&ts, NULL);
    return anvil_job_ctx_set_result(ctx, "ok", 2);
}

// Health's entry for key "held", as the condition of harness_wait_for:
// true once it shows 2 running (its limit) and 4 waiting.
struct held_check {
    struct harness        *h;
    struct anvil_key_state seen;
    size_t                 n_keys;
};

static bool
held_shown(void *arg)
{
    struct held_check   *c  = arg;
    struct anvil_health *hl = NULL;
    if (anvil_health_get(c->h->client, &hl, NULL) != ANVIL_OK) {
        anvil_health_free(hl);
        return false;
    }
    bool ok   = false;
    c->n_keys = hl->n_busiest_keys;
    for (size_t i = 0; i < hl->n_busiest_keys; i++) {
        const struct anvil_key_state *k = &hl->busiest_keys[i];
        if (strcmp(k->key, "held") != 0)
            continue;
        c->seen = (struct anvil_key_state) { NULL, k->running, k->waiting,
            k->limit };
        ok      = i == 0 && k->running == 2 && k->waiting == 4;
    }
    anvil_health_free(hl);
    return ok;
}

static void
test_health_lists_a_key_at_its_limit_with_jobs_waiting(void **state)
{
    struct harness *h = *state;
    struct gate     g = { 0 };
    assert_true(harness_spawn_anvild(h, (char *) NULL) > 0);
    // No key held: Health lists none.
    struct held_check c = { .h = h };
    assert_false(held_shown(&c));
    assert_int_equal(c.n_keys, 0);
    char *held[6], *idle;
    for (int i = 0; i < 6; i++)
        held[i] = submit_keyed(h, "held", 2);
    idle = submit_keyed(h, "idle", 5); // runs (held too): none waits
    assert_non_null(
        harness_start_worker(h, 4, "t", held_handler, &g, (char *) NULL));
    if (!harness_wait_for(held_shown, &c, WAIT_MS))
        fail_msg("Health never showed key held with 2 running and 4 "
                 "waiting (last seen: running %u, waiting %llu, limit %u)",
            c.seen.running, (unsigned long long) c.seen.waiting, c.seen.limit);
    assert_int_equal(c.seen.limit, 2);
    atomic_store(&g.open, true);
    expect_succeeded(h, held, 6);
    expect_succeeded(h, &idle, 1);
    // Every key released: none listed any more.
    assert_false(held_shown(&c));
    assert_int_equal(c.n_keys, 0);
}

// ---- workflow steps ----

#define N_STEPS 8

// A fan-out: step "start" (no key), then N_STEPS steps of type "t" after
// it, each with key "k" and limit 2; bad: one step carries a key without
// a limit.
static anvil_workflow_spec *
fanout(bool bad)
{
    anvil_workflow_spec *wf  = NULL;
    struct anvil_error   err = { 0 };
    assert_int_equal(anvil_workflow_spec_new(&wf, "fanout", &err), ANVIL_OK);
    assert_int_equal(
        anvil_workflow_spec_add_step(wf, "start", "t", "{}", 2, NULL, &err),
        ANVIL_OK);
    const char *names[N_STEPS];
    char        buf[N_STEPS][16];
    for (int i = 0; i < N_STEPS; i++) {
        struct anvil_step_opts o = { .concurrency_key = "k",
            .concurrency_limit                        = bad && i == 3 ? 0 : 2 };
        snprintf(buf[i], sizeof(buf[i]), "s%d", i);
        names[i] = buf[i];
        assert_int_equal(
            anvil_workflow_spec_add_step(wf, buf[i], "t", "{}", 2, &o, &err),
            ANVIL_OK);
    }
    assert_int_equal(
        anvil_workflow_spec_add_group(wf, "start", names, N_STEPS, NULL, &err),
        ANVIL_OK);
    return wf;
}

static void
test_workflow_steps_keyed_never_run_more_than_the_limit(void **state)
{
    struct harness *h = *state;
    struct seen     s = { 0 };
    assert_true(harness_spawn_anvild(h, (char *) NULL) > 0);
    anvil_workflow_spec *wf  = fanout(false);
    struct anvil_error   err = { 0 };
    char                *id  = NULL;
    assert_int_equal(
        anvil_workflow_submit(h->client, wf, &id, NULL, &err), ANVIL_OK);
    anvil_workflow_spec_free(wf);
    // One worker of 8 slots: without the key, all 8 steps would run at once.
    assert_non_null(
        harness_start_worker(h, 8, "t", count_handler, &s, (char *) NULL));
    struct anvil_workflow *got = NULL;
    assert_int_equal(
        anvil_workflow_wait(h->client, id, WAIT_MS, &got, &err), ANVIL_OK);
    assert_int_equal(got->state, ANVIL_WORKFLOW_SUCCEEDED);
    assert_int_equal(got->steps_succeeded, N_STEPS + 1);
    const struct anvil_job *s0 = anvil_workflow_find_step(got, "s0");
    assert_non_null(s0);
    assert_string_equal(s0->concurrency_key, "k");
    assert_int_equal(s0->concurrency_limit, 2);
    assert_string_equal(
        anvil_workflow_find_step(got, "start")->concurrency_key, "");
    anvil_workflow_free(got);
    anvil_free(id);
    assert_int_equal(atomic_load(&s.max_k), 2);
}

static void
test_workflow_step_with_a_bad_key_is_refused_naming_it(void **state)
{
    struct harness *h = *state;
    assert_true(harness_spawn_anvild(h, (char *) NULL) > 0);
    anvil_workflow_spec *wf  = fanout(true);
    struct anvil_error   err = { 0 };
    char                *id  = NULL;
    assert_int_equal(anvil_workflow_submit(h->client, wf, &id, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_null(id);
    assert_non_null(strstr(err.msg,
        "step 's3': concurrency_limit 0 is outside 1..1000000 "
        "(concurrency_key 'k' needs one)"));
    anvil_workflow_spec_free(wf);
    // Nothing of it was stored.
    struct anvil_workflow_list *l = NULL;
    assert_int_equal(anvil_workflow_list(h->client, NULL, &l, &err), ANVIL_OK);
    assert_int_equal(l->n, 0);
    anvil_workflow_list_free(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_key_never_runs_more_than_its_limit_and_others_go_on,
            harness_open_setup, harness_open_teardown),
        cmocka_unit_test_setup_teardown(
            test_status_shows_the_key_and_bad_settings_are_refused,
            harness_open_setup, harness_open_teardown),
        cmocka_unit_test_setup_teardown(
            test_health_lists_a_key_at_its_limit_with_jobs_waiting,
            harness_open_setup, harness_open_teardown),
        cmocka_unit_test_setup_teardown(
            test_workflow_steps_keyed_never_run_more_than_the_limit,
            harness_open_setup, harness_open_teardown),
        cmocka_unit_test_setup_teardown(
            test_workflow_step_with_a_bad_key_is_refused_naming_it,
            harness_open_setup, harness_open_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nng_fini();
    return rc;
}
