// test_dead_letters.c - dead letters and replay on a real anvild child
// process with a real (in-process) worker: jobs that fail for good are
// listed as FAILED, replayed in bulk once their cause is fixed, run again
// and succeed; a second replay finds nothing. Queued jobs on a queue no
// worker serves are cancelled in bulk, a page at a time. Bad filters are
// refused over RPC, naming the field, and change nothing.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"

#define WAIT_MS 20000
#define N_JOBS 3

// Fails for good while *broken, else succeeds.
static int
flaky_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) lease;
    atomic_bool *broken = arg;
    if (atomic_load(broken)) {
        anvil_job_ctx_set_error(ctx, false, "downstream is down");
        return ANVIL_UNAVAILABLE;
    }
    return anvil_job_ctx_set_result(ctx, "ok", 2);
}

static char *
submit(struct harness *h, const char *type, const char *queue)
{
    struct anvil_job_opts o   = { .queue = queue };
    struct anvil_error    err = { 0 };
    char                 *id  = NULL;
    assert_int_equal(
        anvil_job_submit(h->client, type, "{}", 2, &o, &id, NULL, &err),
        ANVIL_OK);
    return id;
}

// Waits until job id is final (WaitJob, no sleeps) and checks its state.
static void
expect_final(struct harness *h, const char *id, enum anvil_job_state want)
{
    struct anvil_job  *j   = NULL;
    struct anvil_error err = { 0 };
    int                rc  = anvil_job_wait(h->client, id, WAIT_MS, &j, &err);
    if (rc != ANVIL_OK)
        fprintf(stderr, "job %s: %s\n", id, err.msg);
    assert_int_equal(rc, ANVIL_OK);
    assert_int_equal(j->state, want);
    anvil_job_free(j);
}

static size_t
count_in_state(struct harness *h, enum anvil_job_state state, const char *q)
{
    struct anvil_job_filter f   = { .state = state, .queue = q };
    struct anvil_job_list  *l   = NULL;
    struct anvil_error      err = { 0 };
    assert_int_equal(anvil_job_list(h->client, &f, &l, &err), ANVIL_OK);
    size_t n = l->n;
    anvil_job_list_free(l);
    return n;
}

static void
test_failed_jobs_are_replayed_in_bulk_and_then_succeed(void **state)
{
    struct harness *h      = *state;
    atomic_bool     broken = true;
    assert_true(harness_spawn_anvild(h, (char *) NULL) > 0);
    assert_non_null(harness_start_worker(
        h, 2, "flaky", flaky_handler, &broken, (char *) NULL));

    char *ids[N_JOBS];
    for (int i = 0; i < N_JOBS; i++)
        ids[i] = submit(h, "flaky", NULL);
    for (int i = 0; i < N_JOBS; i++)
        expect_final(h, ids[i], ANVIL_JOB_FAILED);
    assert_int_equal(count_in_state(h, ANVIL_JOB_FAILED, NULL), N_JOBS);

    // The cause is fixed: replay the dead letters, a page of 2 at a time.
    atomic_store(&broken, false);
    struct anvil_job_filter f
        = { .state = ANVIL_JOB_FAILED, .type = "flaky", .limit = 2 };
    struct anvil_job_id_list *l    = NULL;
    struct anvil_error        err  = { 0 };
    size_t                    seen = 0;
    char                      cursor[32];
    do {
        assert_int_equal(
            anvil_job_retry_many(h->client, &f, 0, &l, &err), ANVIL_OK);
        seen += l->n;
        snprintf(cursor, sizeof(cursor), "%s", l->next_cursor);
        f.cursor = cursor;
        anvil_job_id_list_free(l);
    } while (cursor[0] != '\0');
    assert_int_equal(seen, N_JOBS);
    for (int i = 0; i < N_JOBS; i++)
        expect_final(h, ids[i], ANVIL_JOB_SUCCEEDED);

    // Nothing is left to replay.
    f.cursor = NULL;
    assert_int_equal(anvil_job_retry_many(h->client, &f, 0, &l, &err), 0);
    assert_int_equal(l->n, 0);
    assert_string_equal(l->next_cursor, "");
    anvil_job_id_list_free(l);
    for (int i = 0; i < N_JOBS; i++)
        anvil_free(ids[i]);
}

static void
test_queued_jobs_of_an_unserved_queue_are_canceled_in_bulk(void **state)
{
    struct harness *h = *state;
    assert_true(harness_spawn_anvild(h, (char *) NULL) > 0);
    char *ids[N_JOBS];
    for (int i = 0; i < N_JOBS; i++)
        ids[i] = submit(h, "t", "nobody");
    char *keep = submit(h, "t", "elsewhere");

    struct anvil_job_filter f
        = { .state = ANVIL_JOB_QUEUED, .queue = "nobody", .limit = 2 };
    struct anvil_job_id_list *l   = NULL;
    struct anvil_error        err = { 0 };
    assert_int_equal(anvil_job_cancel_many(h->client, &f, &l, &err), 0);
    assert_int_equal(l->n, 2);
    assert_string_equal(l->ids[0], ids[2]);
    assert_string_equal(l->ids[1], ids[1]);
    assert_string_equal(l->next_cursor, ids[1]);
    char cursor[32];
    snprintf(cursor, sizeof(cursor), "%s", l->next_cursor);
    anvil_job_id_list_free(l);
    f.cursor = cursor;
    assert_int_equal(anvil_job_cancel_many(h->client, &f, &l, &err), 0);
    assert_int_equal(l->n, 1);
    assert_string_equal(l->ids[0], ids[0]);
    assert_string_equal(l->next_cursor, "");
    anvil_job_id_list_free(l);
    for (int i = 0; i < N_JOBS; i++)
        expect_final(h, ids[i], ANVIL_JOB_CANCELED);
    assert_int_equal(count_in_state(h, ANVIL_JOB_QUEUED, "elsewhere"), 1);
    for (int i = 0; i < N_JOBS; i++)
        anvil_free(ids[i]);
    anvil_free(keep);
}

static void
test_bad_filters_are_refused_over_rpc_and_change_nothing(void **state)
{
    struct harness *h = *state;
    assert_true(harness_spawn_anvild(h, (char *) NULL) > 0);
    char *id = submit(h, "t", "nobody");
    const struct {
        bool                    retry;
        struct anvil_job_filter f;
        const char             *names;
    } bad[] = {
        { true, { .state = ANVIL_JOB_QUEUED }, "state" },
        { true, { .state = ANVIL_JOB_UNSPECIFIED }, "state is required" },
        { false, { .state = ANVIL_JOB_FAILED }, "state" },
        { false, { .state = ANVIL_JOB_QUEUED, .limit = 1001 }, "1000" },
        { false, { .state = ANVIL_JOB_QUEUED, .since_ms = 9, .until_ms = 3 },
            "since_ms" },
        { false, { .state = ANVIL_JOB_QUEUED, .since_ms = -1 }, "since_ms" },
        { false, { .state = ANVIL_JOB_QUEUED, .type = "a b" }, "type" },
        { false, { .state = ANVIL_JOB_QUEUED, .cursor = "x" }, "cursor" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct anvil_job_id_list *l   = NULL;
        struct anvil_error        err = { 0 };
        int                       rc  = bad[i].retry
                                   ? anvil_job_retry_many(h->client, &bad[i].f, 0, &l, &err)
                                   : anvil_job_cancel_many(h->client, &bad[i].f, &l, &err);
        if (rc != ANVIL_INVALID_ARGUMENT || !strstr(err.msg, bad[i].names))
            fprintf(stderr, "case %zu: %d %s\n", i, rc, err.msg);
        assert_int_equal(rc, ANVIL_INVALID_ARGUMENT);
        assert_non_null(strstr(err.msg, bad[i].names));
        assert_null(l);
    }
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_job_cancel_many(h->client, NULL, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_int_equal(count_in_state(h, ANVIL_JOB_QUEUED, "nobody"), 1);
    anvil_free(id);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_failed_jobs_are_replayed_in_bulk_and_then_succeed,
            harness_open_setup, harness_open_teardown),
        cmocka_unit_test_setup_teardown(
            test_queued_jobs_of_an_unserved_queue_are_canceled_in_bulk,
            harness_open_setup, harness_open_teardown),
        cmocka_unit_test_setup_teardown(
            test_bad_filters_are_refused_over_rpc_and_change_nothing,
            harness_open_setup, harness_open_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
