// test_progress.c - job progress end to end: a real anvild and a real
// anvil-worker whose exec handler prints ANVIL_PROGRESS lines on stderr,
// then waits for a file before it finishes. GetJob shows the progress
// while the job runs and after it succeeded, `anvil status` prints it, and
// the event stream has a JOB_PROGRESS event.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../harness.h"

#define WAIT_MS 20000

static int
setup(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));
    *state            = h;
    if (h == NULL || harness_open(h) != 0)
        return -1;
    return harness_spawn_anvild(h, NULL) > 0 ? 0 : -1;
}

static int
teardown(void **state)
{
    struct harness *h  = *state;
    int             rc = harness_stop(h);
    free(h);
    return rc;
}

// Writes the worker's config: one exec handler, "report", that prints two
// progress lines (and a malformed one), then waits for `go` to exist.
static void
write_config(struct harness *h, const char *cfg, const char *go)
{
    FILE *fp = fopen(cfg, "w");
    assert_non_null(fp);
    fprintf(fp,
        "{\"server\": \"%s\", \"grace_ms\": 2000, \"handlers\": {\"report\": "
        "{\"exec\": [\"/bin/sh\", \"-c\", \"echo 'ANVIL_PROGRESS 25 warming "
        "up' >&2; echo 'ANVIL_PROGRESS 250 nonsense' >&2; echo "
        "'ANVIL_PROGRESS 60 half way' >&2; while [ ! -e %s ]; do sleep "
        "0.02; done; echo finished\"]}}}",
        h->url, go);
    assert_int_equal(fclose(fp), 0);
}

struct want {
    anvil_client *c;
    const char   *id;
    int           state;
    int           percent;
};

// True once the job is in w->state with progress w->percent.
static bool
job_shows(void *arg)
{
    struct want      *w   = arg;
    struct anvil_job *job = NULL;
    if (anvil_job_get(w->c, w->id, &job, NULL) != ANVIL_OK)
        return false;
    bool ok = (int) job->state == w->state && job->has_progress
        && job->progress_percent == w->percent;
    anvil_job_free(job);
    return ok;
}

// Runs `anvil --server URL status id [--json]`; its stdout (free()).
static char *
cli_status(struct harness *h, const char *id, bool json)
{
    char *argv[] = { "anvil", "--server", h->url, "status", (char *) id,
        json ? "--json" : NULL, NULL };
    pid_t pid    = harness_spawn(h, "anvil", argv);
    assert_true(pid > 0);
    int st = harness_wait_exit(pid, WAIT_MS);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *out = harness_read_file(harness_proc_out(h, pid), NULL);
    assert_non_null(out);
    return out;
}

// The JOB_PROGRESS events of job id; asserts there is one, and that the
// last carries 60 "half way".
static void
expect_progress_events(struct harness *h, const char *id)
{
    enum anvil_event_kind     kind = ANVIL_EVENT_JOB_PROGRESS;
    struct anvil_event_filter f
        = { .job_id = id, .kinds = &kind, .n_kinds = 1, .limit = 100 };
    struct anvil_event_list *l   = NULL;
    struct anvil_error       err = { 0 };
    assert_int_equal(anvil_event_watch(h->client, &f, &l, &err), ANVIL_OK);
    assert_true(l->n >= 1 && l->n <= 2); // 25 may be sent alone first
    const struct anvil_event *last = &l->events[l->n - 1];
    assert_int_equal(last->kind, ANVIL_EVENT_JOB_PROGRESS);
    assert_int_equal(last->progress_percent, 60);
    assert_string_equal(last->message, "half way");
    assert_int_equal(last->attempt, 1);
    assert_true(last->worker[0] != '\0');
    anvil_event_list_free(l);
}

static void
test_progress_shows_while_running_and_after_success(void **state)
{
    struct harness *h = *state;
    char            cfg[160], go[160];
    harness_path(h, "w.json", cfg, sizeof(cfg));
    harness_path(h, "go", go, sizeof(go));
    write_config(h, cfg, go);
    char *argv[] = { "anvil-worker", "--config", cfg, NULL };
    assert_true(harness_spawn(h, "anvil-worker", argv) > 0);

    char                 *id   = NULL;
    struct anvil_error    err  = { 0 };
    struct anvil_job_opts opts = { .retry = { .max_attempts = 1 } };
    assert_int_equal(
        anvil_job_submit(h->client, "report", "{}", 2, &opts, &id, NULL, &err),
        ANVIL_OK);
    struct want w = { h->client, id, ANVIL_JOB_RUNNING, 60 };
    assert_true(harness_wait_for(job_shows, &w, WAIT_MS));

    char *text = cli_status(h, id, false);
    assert_non_null(strstr(text, "Progress: 60% half way\n"));
    free(text);

    FILE *fp = fopen(go, "w"); // let the handler finish
    assert_non_null(fp);
    fclose(fp);
    struct anvil_job *job = NULL;
    assert_int_equal(
        anvil_job_wait(h->client, id, WAIT_MS, &job, &err), ANVIL_OK);
    assert_int_equal(job->state, ANVIL_JOB_SUCCEEDED);
    assert_string_equal((const char *) job->result, "finished\n");
    // The last value stays once the job is final.
    assert_true(job->has_progress);
    assert_int_equal(job->progress_percent, 60);
    assert_string_equal(job->progress_message, "half way");
    anvil_job_free(job);

    text = cli_status(h, id, true);
    assert_non_null(strstr(
        text, "\"progress\": {\"percent\": 60, \"message\": \"half way\"}"));
    free(text);
    expect_progress_events(h, id);
    anvil_free(id);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_progress_shows_while_running_and_after_success, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
