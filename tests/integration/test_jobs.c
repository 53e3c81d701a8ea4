// test_jobs.c - the single-job spine against a real server: submit, run on
// in-process and real workers, get, list, wait, cancel, health, failure.
// Every test gets its own server, database and directory (harness.h).
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

#include "../harness.h"
#include "util/clock.h"

#define WAIT_MS 30000

// Counts handler calls per job id; filled on slot threads, read by the test
// thread after the jobs are final. mu guards everything.
struct counter {
    pthread_mutex_t mu;
    struct {
        char id[64];
        int  n;
    } seen[128];
    int n_seen;
    int total;
    int overflow;
};

// Shared by the handlers of one test; reset by setup, after teardown has
// stopped every worker (a failed assert leaves the test's frame early).
static struct counter counter;

static void
counter_init(struct counter *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
}

static void
counter_fini(struct counter *c)
{
    pthread_mutex_destroy(&c->mu);
}

static void
counter_add(struct counter *c, const char *id)
{
    int i;

    pthread_mutex_lock(&c->mu);
    c->total++;
    for (i = 0; i < c->n_seen; i++) {
        if (strcmp(c->seen[i].id, id) == 0)
            break;
    }
    if (i == c->n_seen) {
        if (i == (int) (sizeof(c->seen) / sizeof(c->seen[0]))) {
            c->overflow++;
            pthread_mutex_unlock(&c->mu);
            return;
        }
        snprintf(c->seen[i].id, sizeof(c->seen[i].id), "%s", id);
        c->n_seen++;
    }
    c->seen[i].n++;
    pthread_mutex_unlock(&c->mu);
}

static int
counter_get(struct counter *c, const char *id)
{
    int n = 0;

    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->n_seen; i++) {
        if (strcmp(c->seen[i].id, id) == 0)
            n = c->seen[i].n;
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

// Returns the payload as the result; counts the call if arg is a counter.
static int
echo_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    if (arg != NULL)
        counter_add(arg, lease->job.id);
    return anvil_job_ctx_set_result(
        ctx, lease->job.payload, lease->job.payload_len);
}

// Fails for good, with an error naming the job's payload.
static int
broken_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) arg;
    anvil_job_ctx_set_error(ctx, false, "disk on fire: %.*s",
        (int) lease->job.payload_len, (const char *) lease->job.payload);
    return ANVIL_INTERNAL;
}

static int
setup(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));

    counter_init(&counter);
    if (h == NULL || harness_start(h) != 0) {
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
    struct harness *h  = *state;
    int             rv = harness_stop(h);

    free(h);
    counter_fini(&counter);
    return rv;
}

// Submits a job and returns its id (caller frees with anvil_free).
static char *
submit_on(
    struct harness *h, const char *type, const char *queue, const char *payload)
{
    struct anvil_job_opts opts = { 0 };
    struct anvil_error    err  = { 0 };
    char                 *id   = NULL;
    bool                  existed;
    int                   rv;

    opts.queue = queue;
    rv         = anvil_job_submit(
                h->client, type, payload, strlen(payload), &opts, &id, &existed, &err);
    if (rv != ANVIL_OK)
        print_error("submit %s: %s: %s\n", type, anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
    assert_non_null(id);
    assert_true(id[0] != '\0');
    assert_false(existed);
    return id;
}

static char *
submit(struct harness *h, const char *type, const char *payload)
{
    return submit_on(h, type, NULL, payload);
}

// Waits for a job to end; asserts it ended in `state` and returns it.
static struct anvil_job *
wait_final(struct harness *h, const char *id, enum anvil_job_state state)
{
    struct anvil_error err = { 0 };
    struct anvil_job  *job = NULL;
    int                rv  = anvil_job_wait(h->client, id, WAIT_MS, &job, &err);

    if (rv != ANVIL_OK)
        print_error("wait %s: %s: %s\n", id, anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
    assert_non_null(job);
    if (job->state != state)
        print_error("job %s is %s (error \"%s\"), expected %s\n", id,
            anvil_job_state_name(job->state), job->error,
            anvil_job_state_name(state));
    assert_int_equal(job->state, state);
    return job;
}

static int
get_state(struct harness *h, const char *id)
{
    struct anvil_job *job = NULL;
    int               rv  = anvil_job_get(h->client, id, &job, NULL);
    int               state;

    assert_int_equal(rv, ANVIL_OK);
    assert_non_null(job);
    assert_string_equal(job->id, id);
    state = job->state;
    anvil_job_free(job);
    return state;
}

static void
test_echo_job_succeeds_with_its_payload_as_result(void **state)
{
    struct harness   *h       = *state;
    const char       *payload = "{\"x\": 1, \"y\": [true, null]}";
    struct anvil_job *job;
    char             *id;

    assert_non_null(harness_start_worker(
        h, 1, "echo", echo_handler, (void *) NULL, (const char *) NULL));
    id  = submit(h, "echo", payload);
    job = wait_final(h, id, ANVIL_JOB_SUCCEEDED);
    assert_string_equal(job->id, id);
    assert_string_equal(job->type, "echo");
    assert_string_equal(job->queue, "default");
    assert_int_equal(job->result_len, strlen(payload));
    assert_memory_equal(job->result, payload, strlen(payload));
    assert_int_equal(job->attempt, 1);
    assert_true(job->created_at_ms > 0);
    assert_true(job->started_at_ms >= job->created_at_ms);
    assert_true(job->finished_at_ms >= job->started_at_ms);
    anvil_job_free(job);
    anvil_free(id);
}

static void
test_submit_rejects_bad_type_and_queue_names(void **state)
{
    struct harness        *h    = *state;
    struct anvil_job_opts  opts = { 0 };
    struct anvil_error     err  = { 0 };
    struct anvil_job_list *list = NULL;
    char                  *id   = NULL;
    int                    rv;

    rv = anvil_job_submit(
        h->client, "bad name!", "x", 1, NULL, &id, NULL, &err);
    assert_int_equal(rv, ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "type"));
    assert_null(id);
    opts.queue = "no spaces allowed";
    rv = anvil_job_submit(h->client, "echo", "x", 1, &opts, &id, NULL, &err);
    assert_int_equal(rv, ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "queue"));
    assert_null(id);
    assert_int_equal(anvil_job_list(h->client, NULL, &list, NULL), ANVIL_OK);
    assert_int_equal(list->n, 0);
    anvil_job_list_free(list);
}

// The seed's job, run by the real anvil-worker binary.
static void
test_sleep_job_runs_in_the_anvil_worker_process(void **state)
{
    struct harness *h = *state;
    const char     *payload
        = "{\"SleepTimeInSeconds\": 1, \"Message\": \"Hello World\"}";
    struct anvil_job *job;
    const char       *out;
    int64_t           t0 = av_mono_ms();
    char             *id;
    pid_t             pid;
    int               status;

    pid = harness_spawn_worker(h, 1);
    assert_true(pid > 0);
    out = harness_proc_out(h, pid);
    assert_non_null(out);
    id  = submit(h, "Sleep", payload);
    job = wait_final(h, id, ANVIL_JOB_SUCCEEDED);
    assert_true(av_mono_ms() - t0 >= 1000);
    assert_true(job->finished_at_ms - job->started_at_ms >= 1000);
    // The result is the message as a JSON string.
    assert_int_equal(job->result_len, strlen("\"Hello World\""));
    assert_memory_equal(
        job->result, "\"Hello World\"", strlen("\"Hello World\""));
    // The worker's stdout is a file: the line must be flushed, not held in
    // a buffer until exit.
    if (!harness_wait_for_line(out, "Hello World", 5000)) {
        char *text = harness_read_file(out, NULL);

        print_error("worker stdout: \"%s\"\n", text ? text : "(none)");
        free(text);
        fail_msg("the worker did not print \"Hello World\"");
    }
    status = harness_kill(pid, SIGTERM);
    assert_true(status != -1 && WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    anvil_job_free(job);
    anvil_free(id);
}

// The predecessor lost jobs published while no worker listened.
static void
test_job_submitted_without_workers_waits_for_one(void **state)
{
    struct harness    *h   = *state;
    struct anvil_error err = { 0 };
    struct anvil_job  *job = NULL;
    char              *id  = submit(h, "echo", "kept");
    int                rv;

    rv = anvil_job_wait(h->client, id, 300, &job, &err);
    assert_int_equal(rv, ANVIL_DEADLINE_EXCEEDED);
    assert_non_null(job);
    assert_int_equal(job->state, ANVIL_JOB_QUEUED);
    anvil_job_free(job);
    assert_non_null(harness_start_worker(
        h, 1, "echo", echo_handler, (void *) NULL, (const char *) NULL));
    job = wait_final(h, id, ANVIL_JOB_SUCCEEDED);
    assert_memory_equal(job->result, "kept", 4);
    anvil_job_free(job);
    anvil_free(id);
}

static void
test_fifty_jobs_on_two_workers_each_run_exactly_once(void **state)
{
    struct harness *h = *state;
    anvil_worker   *w[2];
    char           *ids[50];
    char            payload[32];

    for (int i = 0; i < 2; i++) {
        w[i] = harness_start_worker(
            h, 2, "echo", echo_handler, &counter, (const char *) NULL);
        assert_non_null(w[i]);
    }
    for (int i = 0; i < 50; i++) {
        snprintf(payload, sizeof(payload), "job %d", i);
        ids[i] = submit(h, "echo", payload);
    }
    for (int i = 0; i < 50; i++) {
        struct anvil_job *job = wait_final(h, ids[i], ANVIL_JOB_SUCCEEDED);

        snprintf(payload, sizeof(payload), "job %d", i);
        assert_int_equal(job->result_len, strlen(payload));
        assert_memory_equal(job->result, payload, strlen(payload));
        anvil_job_free(job);
    }
    for (int i = 0; i < 2; i++)
        harness_stop_worker(h, w[i]); // no job may run after this
    for (int i = 0; i < 50; i++) {
        assert_int_equal(counter_get(&counter, ids[i]), 1);
        anvil_free(ids[i]);
    }
    assert_int_equal(counter.total, 50);
    assert_int_equal(counter.overflow, 0);
}

static void
test_get_job_returns_what_was_submitted(void **state)
{
    struct harness       *h    = *state;
    struct anvil_job_opts opts = { 0 };
    struct anvil_error    err  = { 0 };
    struct anvil_job     *job  = NULL;
    char                 *id   = NULL;
    int                   rv;

    opts.queue    = "reports";
    opts.priority = 7;
    rv            = anvil_job_submit(
                   h->client, "report.build", "\x00\x01\x02", 3, &opts, &id, NULL, &err);
    assert_int_equal(rv, ANVIL_OK);
    rv = anvil_job_get(h->client, id, &job, &err);
    assert_int_equal(rv, ANVIL_OK);
    assert_string_equal(job->id, id);
    assert_string_equal(job->type, "report.build");
    assert_string_equal(job->queue, "reports");
    assert_int_equal(job->payload_len, 3);
    assert_memory_equal(job->payload, "\x00\x01\x02", 3);
    assert_int_equal(job->priority, 7);
    assert_int_equal(job->state, ANVIL_JOB_QUEUED);
    assert_int_equal(job->attempt, 0);
    assert_int_equal(job->retry.max_attempts, 3);
    assert_int_equal(job->result_len, 0);
    assert_true(job->created_at_ms > 0);
    assert_int_equal(job->finished_at_ms, 0);
    anvil_job_free(job);
    anvil_free(id);
}

static void
test_get_job_of_unknown_id_is_not_found(void **state)
{
    struct harness    *h   = *state;
    struct anvil_error err = { 0 };
    struct anvil_job  *job = NULL;
    int                rv;

    rv = anvil_job_get(h->client, "j999999", &job, &err);
    assert_int_equal(rv, ANVIL_NOT_FOUND);
    assert_null(job);
    assert_true(err.msg[0] != '\0');
    rv = anvil_job_get(h->client, "", &job, &err);
    assert_true(rv == ANVIL_NOT_FOUND || rv == ANVIL_INVALID_ARGUMENT);
    assert_null(job);
}

static size_t
list_count(struct harness *h, enum anvil_job_state state, const char *type,
    const char *queue)
{
    struct anvil_job_filter f    = { 0 };
    struct anvil_job_list  *list = NULL;
    size_t                  n;
    int                     rv;

    f.state = state;
    f.type  = type;
    f.queue = queue;
    rv      = anvil_job_list(h->client, &f, &list, NULL);
    assert_int_equal(rv, ANVIL_OK);
    for (size_t i = 0; i < list->n; i++) {
        if (state != 0)
            assert_int_equal(list->jobs[i].state, state);
        if (type != NULL)
            assert_string_equal(list->jobs[i].type, type);
        if (queue != NULL)
            assert_string_equal(list->jobs[i].queue, queue);
    }
    n = list->n;
    anvil_job_list_free(list);
    return n;
}

static void
test_list_jobs_filters_by_state_type_and_queue(void **state)
{
    struct harness         *h = *state;
    char                   *a[3];
    char                   *b[2];
    struct anvil_job       *job  = NULL;
    struct anvil_job_list  *list = NULL;
    struct anvil_job_filter f    = { 0 };

    for (int i = 0; i < 3; i++)
        a[i] = submit_on(h, "alpha", NULL, "a");
    for (int i = 0; i < 2; i++)
        b[i] = submit_on(h, "beta", "other", "b");
    assert_int_equal(anvil_job_cancel(h->client, a[1], &job, NULL), ANVIL_OK);
    anvil_job_free(job);

    assert_int_equal(list_count(h, 0, NULL, NULL), 5);
    assert_int_equal(list_count(h, ANVIL_JOB_QUEUED, NULL, NULL), 4);
    assert_int_equal(list_count(h, ANVIL_JOB_CANCELED, NULL, NULL), 1);
    assert_int_equal(list_count(h, ANVIL_JOB_SUCCEEDED, NULL, NULL), 0);
    assert_int_equal(list_count(h, 0, "alpha", NULL), 3);
    assert_int_equal(list_count(h, 0, NULL, "other"), 2);
    assert_int_equal(list_count(h, 0, NULL, "default"), 3);
    assert_int_equal(list_count(h, 0, "beta", "default"), 0);
    assert_int_equal(list_count(h, ANVIL_JOB_QUEUED, "alpha", "default"), 2);
    assert_int_equal(list_count(h, 0, "gamma", NULL), 0);

    f.state = ANVIL_JOB_CANCELED;
    assert_int_equal(anvil_job_list(h->client, &f, &list, NULL), ANVIL_OK);
    assert_int_equal(list->n, 1);
    assert_string_equal(list->jobs[0].id, a[1]);
    assert_string_equal(list->next_cursor, "");
    anvil_job_list_free(list);
    for (int i = 0; i < 3; i++)
        anvil_free(a[i]);
    for (int i = 0; i < 2; i++)
        anvil_free(b[i]);
}

static void
test_list_jobs_pages_cover_every_job_once_newest_first(void **state)
{
    struct harness         *h = *state;
    struct anvil_job_filter f = { 0 };
    char                   *ids[7];
    char                   *cursor = NULL;
    size_t                  seen   = 0;
    int                     pages  = 0;

    for (int i = 0; i < 7; i++)
        ids[i] = submit(h, "paged", "p");
    f.limit = 3;
    do {
        struct anvil_job_list *list = NULL;

        f.cursor = cursor;
        assert_int_equal(anvil_job_list(h->client, &f, &list, NULL), ANVIL_OK);
        assert_true(list->n <= 3);
        for (size_t i = 0; i < list->n; i++) {
            assert_true(seen < 7);
            // newest first: the last submitted comes first
            assert_string_equal(list->jobs[i].id, ids[6 - seen]);
            seen++;
        }
        free(cursor);
        cursor = list->next_cursor[0] ? strdup(list->next_cursor) : NULL;
        anvil_job_list_free(list);
        pages++;
        assert_true(pages <= 4);
    } while (cursor != NULL);
    assert_int_equal(seen, 7);
    assert_int_equal(pages, 3);
    for (int i = 0; i < 7; i++)
        anvil_free(ids[i]);
}

static void
test_wait_job_times_out_on_an_unfinished_job(void **state)
{
    struct harness    *h   = *state;
    struct anvil_error err = { 0 };
    struct anvil_job  *job = NULL;
    char              *id  = submit(h, "nobody.runs.this", "{}");
    int64_t            t0  = av_mono_ms();
    int                rv;

    rv = anvil_job_wait(h->client, id, 500, &job, &err);
    assert_int_equal(rv, ANVIL_DEADLINE_EXCEEDED);
    assert_true(av_mono_ms() - t0 >= 400);
    assert_non_null(job);
    assert_string_equal(job->id, id);
    assert_int_equal(job->state, ANVIL_JOB_QUEUED);
    anvil_job_free(job);
    job = NULL;
    rv  = anvil_job_wait(h->client, id, 1, &job, &err);
    assert_int_equal(rv, ANVIL_DEADLINE_EXCEEDED);
    assert_non_null(job);
    assert_int_equal(job->state, ANVIL_JOB_QUEUED);
    anvil_job_free(job);
    job = NULL;
    rv  = anvil_job_wait(h->client, "j424242", 100, &job, &err);
    assert_int_equal(rv, ANVIL_NOT_FOUND);
    assert_null(job);
    anvil_free(id);
}

static void
test_cancel_queued_job_never_reaches_a_worker(void **state)
{
    struct harness    *h   = *state;
    struct anvil_error err = { 0 };
    struct anvil_job  *job = NULL;
    char              *doomed;
    char              *after;

    doomed = submit(h, "cancelme", "doomed");
    assert_int_equal(anvil_job_cancel(h->client, doomed, &job, &err), ANVIL_OK);
    assert_non_null(job);
    assert_int_equal(job->state, ANVIL_JOB_CANCELED);
    anvil_job_free(job);
    assert_int_equal(get_state(h, doomed), ANVIL_JOB_CANCELED);

    assert_non_null(harness_start_worker(h, 1, "cancelme", echo_handler,
        (void *) &counter, (const char *) NULL));
    // FIFO: had the cancelled job stayed queued, it would run before this.
    after = submit(h, "cancelme", "after");
    anvil_job_free(wait_final(h, after, ANVIL_JOB_SUCCEEDED));
    job = wait_final(h, doomed, ANVIL_JOB_CANCELED);
    anvil_job_free(job);
    assert_int_equal(counter_get(&counter, doomed), 0);
    assert_int_equal(counter_get(&counter, after), 1);
    assert_int_equal(counter.total, 1);
    anvil_free(doomed);
    anvil_free(after);
}

static void
test_cancel_finished_or_unknown_job_is_refused(void **state)
{
    struct harness    *h   = *state;
    struct anvil_error err = { 0 };
    struct anvil_job  *job = NULL;
    char              *id;
    int                rv;

    assert_non_null(harness_start_worker(
        h, 1, "echo", echo_handler, (void *) NULL, (const char *) NULL));
    id = submit(h, "echo", "done soon");
    anvil_job_free(wait_final(h, id, ANVIL_JOB_SUCCEEDED));
    rv = anvil_job_cancel(h->client, id, &job, &err);
    assert_int_equal(rv, ANVIL_FAILED_PRECONDITION);
    assert_true(err.msg[0] != '\0');
    anvil_job_free(job);
    assert_int_equal(get_state(h, id), ANVIL_JOB_SUCCEEDED);
    job = NULL;
    rv  = anvil_job_cancel(h->client, "j31337", &job, &err);
    assert_int_equal(rv, ANVIL_NOT_FOUND);
    assert_null(job);
    anvil_free(id);
}

static const struct anvil_queue_depth *
find_depth(const struct anvil_health *hl, const char *queue, const char *type)
{
    for (size_t i = 0; i < hl->n_depths; i++) {
        if (strcmp(hl->depths[i].queue, queue) == 0
            && strcmp(hl->depths[i].type, type) == 0)
            return &hl->depths[i];
    }
    return NULL;
}

static void
test_health_lists_queue_depths(void **state)
{
    struct harness                 *h  = *state;
    struct anvil_health            *hl = NULL;
    const struct anvil_queue_depth *d;
    char                           *ids[4];

    for (int i = 0; i < 3; i++)
        ids[i] = submit_on(h, "depth", "q1", "d");
    ids[3] = submit_on(h, "depth", "q2", "d");
    assert_int_equal(anvil_health_get(h->client, &hl, NULL), ANVIL_OK);
    assert_non_null(hl->version);
    assert_true(hl->version[0] != '\0');
    assert_true(hl->uptime_ms >= 0);
    assert_true(hl->jobs_total >= 4);
    d = find_depth(hl, "q1", "depth");
    assert_non_null(d);
    assert_int_equal(d->queued, 3);
    assert_int_equal(d->running, 0);
    d = find_depth(hl, "q2", "depth");
    assert_non_null(d);
    assert_int_equal(d->queued, 1);
    assert_null(find_depth(hl, "q3", "depth"));
    anvil_health_free(hl);
    for (int i = 0; i < 4; i++)
        anvil_free(ids[i]);
}

static void
test_handler_failing_for_good_ends_failed_with_its_error(void **state)
{
    struct harness   *h = *state;
    struct anvil_job *job;
    char             *id;

    assert_non_null(harness_start_worker(
        h, 1, "broken", broken_handler, (void *) NULL, (const char *) NULL));
    id  = submit(h, "broken", "sector 7");
    job = wait_final(h, id, ANVIL_JOB_FAILED);
    assert_non_null(strstr(job->error, "disk on fire: sector 7"));
    assert_int_equal(job->attempt, 1); // no_retry: no second attempt
    assert_int_equal(job->result_len, 0);
    assert_true(job->finished_at_ms > 0);
    anvil_job_free(job);
    anvil_free(id);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_echo_job_succeeds_with_its_payload_as_result, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_submit_rejects_bad_type_and_queue_names, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_sleep_job_runs_in_the_anvil_worker_process, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_job_submitted_without_workers_waits_for_one, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_fifty_jobs_on_two_workers_each_run_exactly_once, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_get_job_returns_what_was_submitted, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_get_job_of_unknown_id_is_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_list_jobs_filters_by_state_type_and_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_list_jobs_pages_cover_every_job_once_newest_first, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_wait_job_times_out_on_an_unfinished_job, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cancel_queued_job_never_reaches_a_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cancel_finished_or_unknown_job_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_health_lists_queue_depths, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_handler_failing_for_good_ends_failed_with_its_error, setup,
            teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
