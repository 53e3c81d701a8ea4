// test_cli.c - the `anvil` binary against a real server: each test runs
// ANVIL_BIN_DIR/anvil as a child process with --server pointing at an
// in-process anvild (harness.h), then checks its exit status, stdout and
// stderr. Workers, where needed, run in-process.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../harness.h"

#define MAX_ARGS 32

// What one run of the command gave.
struct run {
    int   status; // exit status; -1 if it did not exit normally
    char *out;
    char *err;
};

static void
run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

// Runs anvil with args (NULL-terminated), stdout and stderr into files of
// the harness directory. Preceded by --server h->url when with_server.
static void
run_v(struct harness *h, struct run *r, bool with_server, va_list ap)
{
    const char *argv[MAX_ARGS];
    int         n = 0;
    argv[n++]     = ANVIL_BIN_DIR "/anvil";
    if (with_server) {
        argv[n++] = "--server";
        argv[n++] = h->url;
    }
    for (const char *a = va_arg(ap, const char *); a != NULL;
         a             = va_arg(ap, const char *)) {
        assert_true(n < MAX_ARGS - 1);
        argv[n++] = a;
    }
    argv[n] = NULL;

    char out[160], err[160];
    harness_path(h, "cli.out", out, sizeof(out));
    harness_path(h, "cli.err", err, sizeof(err));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        // Only async-signal-safe calls: the parent has threads.
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(126);
        execv(argv[0], (char **) argv);
        _exit(127);
    }
    int   st;
    pid_t w;
    do {
        w = waitpid(pid, &st, 0);
    } while (w < 0 && errno == EINTR);
    assert_int_equal(w, pid);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r->out    = harness_read_file(out, NULL);
    r->err    = harness_read_file(err, NULL);
    assert_non_null(r->out);
    assert_non_null(r->err);
    if (r->status == 126 || r->status == 127 || r->status < 0)
        print_error(
            "%s did not run (status %d): %s\n", argv[0], r->status, r->err);
}

static void
run(struct harness *h, struct run *r, ...)
{
    va_list ap;
    va_start(ap, r);
    run_v(h, r, true, ap);
    va_end(ap);
}

static void
run_no_server(struct harness *h, struct run *r, ...)
{
    va_list ap;
    va_start(ap, r);
    run_v(h, r, false, ap);
    va_end(ap);
}

// Parses r->out as exactly one JSON object (caller decrefs).
static json_t *
out_json(const struct run *r)
{
    json_error_t jerr;
    json_t      *j = json_loads(r->out, 0, &jerr);
    if (j == NULL)
        print_error("not one JSON object (%s): %s\n", jerr.text, r->out);
    assert_non_null(j);
    assert_true(json_is_object(j));
    return j;
}

static const char *
jstr(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static int
echo_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) arg;
    return anvil_job_ctx_set_result(
        ctx, lease->job.payload, lease->job.payload_len);
}

static int
broken_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) arg;
    (void) lease;
    anvil_job_ctx_fail(ctx, false, "disk on fire");
    return ANVIL_INTERNAL;
}

static int
setup(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));
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
    struct harness *h = *state;
    harness_stop(h);
    free(h);
    return 0;
}

// Submits with the command; returns the printed id (caller frees).
static char *
submit_id(struct harness *h, const char *type, const char *data)
{
    struct run r;
    run(h, &r, "submit", type, "--data", data, NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    size_t len = strlen(r.out);
    assert_true(len > 1 && r.out[len - 1] == '\n');
    assert_null(strchr(r.out, ' '));
    char *id = strndup(r.out, len - 1);
    assert_non_null(id);
    run_free(&r);
    return id;
}

// ---- Tests

static void
test_cli_submit_prints_id_and_status_shows_payload_as_given(void **state)
{
    struct harness *h    = *state;
    const char     *data = "{ \"SleepTimeInSeconds\": 1,\n \"x\": [1, 2] }";
    char           *id   = submit_id(h, "Echo", data);
    struct run      r;
    run(h, &r, "status", id, "--json", NULL);
    assert_int_equal(r.status, 0);
    json_t *j = out_json(&r);
    assert_string_equal(jstr(j, "id"), id);
    assert_string_equal(jstr(j, "type"), "Echo");
    assert_string_equal(jstr(j, "queue"), "default");
    assert_string_equal(jstr(j, "state"), "QUEUED");
    assert_string_equal(jstr(j, "payload"), data);
    assert_true(json_is_null(json_object_get(j, "started_at")));
    json_decref(j);
    run_free(&r);

    run(h, &r, "status", id, NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "State:    QUEUED\n"));
    assert_non_null(strstr(r.out, "Queue:    default\n"));
    run_free(&r);
    free(id);
}

static void
test_cli_submit_json_reports_id_and_existed(void **state)
{
    struct harness *h = *state;
    struct run      r;
    run(h, &r, "--json", "submit", "Echo", "--queue", "q2", "--priority", "9",
        NULL);
    assert_int_equal(r.status, 0);
    json_t *j = out_json(&r);
    assert_int_equal(json_object_size(j), 2);
    assert_true(json_is_false(json_object_get(j, "existed")));
    char *id = strdup(jstr(j, "id"));
    json_decref(j);
    run_free(&r);

    run(h, &r, "--json", "status", id, NULL);
    j = out_json(&r);
    assert_string_equal(jstr(j, "queue"), "q2");
    assert_int_equal(json_integer_value(json_object_get(j, "priority")), 9);
    json_decref(j);
    run_free(&r);
    free(id);
}

static void
test_cli_submit_rejects_bad_input_before_contacting_server(void **state)
{
    struct harness *h = *state;
    struct run      r;
    // No server listens here: a usage error must not even try.
    run_no_server(h, &r, "--server", "ipc:///nonexistent/anvil", "submit",
        "Echo", "--data", "{oops", NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "anvil: --data is not valid JSON: "));
    run_free(&r);

    run(h, &r, "submit", "bad type!", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "anvil: INVALID_ARGUMENT: "));
    run_free(&r);
}

static void
test_cli_submit_wait_prints_the_finished_job(void **state)
{
    struct harness *h = *state;
    assert_non_null(harness_start_worker(h, 2, "Echo", echo_handler, NULL,
        "Broken", broken_handler, NULL, NULL));
    struct run r;
    run(h, &r, "--json", "submit", "Echo", "--data", "{\"a\":1}", "--wait",
        "--timeout-ms", "30000", NULL);
    assert_int_equal(r.status, 0);
    json_t *j = out_json(&r);
    assert_string_equal(jstr(j, "state"), "SUCCEEDED");
    assert_string_equal(jstr(j, "result"), "{\"a\":1}");
    assert_true(json_is_string(json_object_get(j, "finished_at")));
    json_decref(j);
    run_free(&r);

    // No limit given: waits in long-polls until the job is done.
    run(h, &r, "submit", "Broken", "--wait", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "State:    FAILED\n"));
    assert_non_null(strstr(r.out, "Error:    disk on fire\n"));
    run_free(&r);
}

static void
test_cli_wait_exits_4_when_the_job_is_unfinished(void **state)
{
    struct harness *h  = *state;
    char           *id = submit_id(h, "Nobody", "{}");
    struct run      r;
    run(h, &r, "--json", "wait", id, "--timeout-ms", "200", NULL);
    assert_int_equal(r.status, 4);
    json_t *j = out_json(&r);
    assert_string_equal(jstr(j, "state"), "QUEUED");
    json_decref(j);
    assert_non_null(strstr(r.err, "is still QUEUED after 200 ms"));
    run_free(&r);

    run(h, &r, "wait", id, "--timeout-ms", "-5", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--timeout-ms"));
    run_free(&r);
    free(id);
}

static void
test_cli_status_of_unknown_job_exits_1_with_code_name(void **state)
{
    struct harness *h = *state;
    struct run      r;
    run(h, &r, "status", "j999999", NULL);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "anvil: NOT_FOUND: "));
    assert_null(strchr(strchr(r.err, '\n') + 1, '\n'));
    run_free(&r);

    run(h, &r, "status", NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err, "anvil: status: missing ID\n");
    run_free(&r);
}

static void
test_cli_cancel_twice_succeeds_and_wait_reports_canceled(void **state)
{
    struct harness *h  = *state;
    char           *id = submit_id(h, "Nobody", "{}");
    struct run      r;
    run(h, &r, "cancel", id, NULL);
    assert_int_equal(r.status, 0);
    char want[96];
    snprintf(want, sizeof(want), "%s CANCELED\n", id);
    assert_string_equal(r.out, want);
    run_free(&r);

    // Cancelling again is no error (a resent CancelJob must not fail).
    run(h, &r, "cancel", id, NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, want);
    run_free(&r);

    // wait on a canceled job: printed, exit 1.
    run(h, &r, "--json", "wait", id, NULL);
    assert_int_equal(r.status, 1);
    json_t *j = out_json(&r);
    assert_string_equal(jstr(j, "state"), "CANCELED");
    json_decref(j);
    run_free(&r);
    free(id);
}

static void
test_cli_list_pages_with_cursor_and_prints_a_table(void **state)
{
    struct harness *h = *state;
    char           *ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = submit_id(h, "Nobody", "{}");
    struct run r;
    run(h, &r, "--json", "list", "--limit", "2", "--type", "Nobody", NULL);
    assert_int_equal(r.status, 0);
    json_t *j = out_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "jobs")), 2);
    json_t *first = json_array_get(json_object_get(j, "jobs"), 0);
    assert_string_equal(jstr(first, "id"), ids[2]); // newest first
    char *cursor = strdup(jstr(j, "next_cursor"));
    json_decref(j);
    run_free(&r);

    run(h, &r, "--json", "list", "--limit", "2", "--type", "Nobody", "--cursor",
        cursor, NULL);
    assert_int_equal(r.status, 0);
    j = out_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "jobs")), 1);
    assert_true(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);
    run_free(&r);

    run(h, &r, "list", "--state", "queued", "--limit", "2", NULL);
    assert_int_equal(r.status, 0);
    assert_true(strncmp(r.out, "ID ", 3) == 0);
    assert_non_null(strstr(r.out, "  STATE "));
    assert_non_null(strstr(r.out, "More jobs: add --cursor "));
    run_free(&r);

    run(h, &r, "list", "--state", "LOST", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--state: unknown state 'LOST'"));
    run_free(&r);
    free(cursor);
    for (int i = 0; i < 3; i++)
        free(ids[i]);
}

static void
test_cli_health_reports_queue_depths(void **state)
{
    struct harness *h  = *state;
    char           *id = submit_id(h, "Nobody", "{}");
    struct run      r;
    run(h, &r, "health", "--json", NULL);
    assert_int_equal(r.status, 0);
    json_t *j = out_json(&r);
    assert_int_equal(json_object_size(j), 4);
    assert_true(json_is_string(json_object_get(j, "version")));
    assert_true(json_is_integer(json_object_get(j, "uptime_ms")));
    json_t *qs = json_object_get(j, "queues");
    assert_true(json_array_size(qs) >= 1);
    json_decref(j);
    run_free(&r);

    run(h, &r, "health", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Version: "));
    assert_non_null(strstr(r.out, "QUEUE"));
    assert_non_null(strstr(r.out, "Nobody"));
    run_free(&r);
    free(id);
}

static void
test_cli_takes_server_from_environment_and_rejects_bad_urls(void **state)
{
    struct harness *h = *state;
    struct run      r;
    setenv("ANVIL_SERVER", h->url, 1);
    run_no_server(h, &r, "health", NULL);
    unsetenv("ANVIL_SERVER");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Version: "));
    run_free(&r);

    run_no_server(h, &r, "--server", "nope://x", "health", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "anvil: bad server URL 'nope://x'"));
    run_free(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_cli_submit_prints_id_and_status_shows_payload_as_given, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_submit_json_reports_id_and_existed, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_submit_rejects_bad_input_before_contacting_server, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_submit_wait_prints_the_finished_job, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_wait_exits_4_when_the_job_is_unfinished, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_status_of_unknown_job_exits_1_with_code_name, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_cancel_twice_succeeds_and_wait_reports_canceled, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_list_pages_with_cursor_and_prints_a_table, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_health_reports_queue_depths, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_takes_server_from_environment_and_rejects_bad_urls, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
