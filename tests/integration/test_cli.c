// test_cli.c - the `anvil` binary against a real server: each test runs
// ANVIL_BIN_DIR/anvil as a child process with --server pointing at an
// in-process anvild (harness.h), then checks its exit status, stdout and
// stderr. Workers, where needed, run in-process.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../harness.h"
#include "util/clock.h"

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
    anvil_job_ctx_set_error(ctx, false, "disk on fire");
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
        "--wait-timeout-ms", "30000", NULL);
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
    assert_string_equal(r.err, "anvil: status: missing ID (or --key K)\n");
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

// Bulk cancel and bulk retry: how many and which, a cursor while more
// match, JSON for scripts; bad filters refused before a server is asked.
static void
test_cli_cancel_and_retry_many_jobs_by_filter(void **state)
{
    struct harness *h = *state;
    char           *ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = submit_id(h, "Nobody", "{}");
    char      *other = submit_id(h, "Somebody", "{}");
    struct run r;
    run(h, &r, "cancel", "--state", "QUEUED", "--type", "Nobody", "--limit",
        "2", NULL);
    assert_int_equal(r.status, 0);
    char want[160];
    snprintf(want, sizeof(want),
        "canceled 2 jobs: %s %s\nMore jobs match: add --cursor %s to go on.\n",
        ids[2], ids[1], ids[1]);
    assert_string_equal(r.out, want);
    run_free(&r);
    run(h, &r, "--json", "cancel", "--state", "queued", "--type", "Nobody",
        "--cursor", ids[1], NULL);
    assert_int_equal(r.status, 0);
    json_t *j = out_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 1);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(j, "ids"), 0)),
        ids[0]);
    assert_true(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);
    run_free(&r);

    // The dead-letter view, then its replay; the other type stayed QUEUED.
    run(h, &r, "--json", "retry", "--state", "CANCELED", "--since",
        "2020-01-01T00:00:00Z", NULL);
    assert_int_equal(r.status, 0);
    j = out_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 3);
    json_decref(j);
    run_free(&r);
    run(h, &r, "retry", "--state", "CANCELED", NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "retried 0 jobs\n");
    run_free(&r);
    run(h, &r, "--json", "list", "--state", "QUEUED", NULL);
    j = out_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "jobs")), 4);
    json_decref(j);
    run_free(&r);

    // `cancel ID` still works.
    run(h, &r, "cancel", other, NULL);
    assert_int_equal(r.status, 0);
    run_free(&r);

    static const char *const bad[][8] = {
        { "retry", "--state", "RUNNING", NULL },
        { "retry", NULL },
        { "retry", "--type", "Nobody", NULL },
        { "cancel", "--state", "SUCCEEDED", NULL },
        { "cancel", "j1", "--state", "QUEUED", NULL },
        { "cancel", "--state", "QUEUED", "--limit", "0", NULL },
        { "cancel", "--state", "QUEUED", "--limit", "1001", NULL },
        { "retry", "--state", "FAILED", "--since", "yesterday", NULL },
        { "retry", "--state", "FAILED", "--since", "2026-01-02T00:00:00Z",
            "--until", "2026-01-01T00:00:00Z", NULL },
        { "retry", "--state", "DEAD", NULL },
    };
    static const char *const says[] = { "FAILED or CANCELED", "missing ID",
        "missing ID", "PENDING, SCHEDULED, QUEUED or RUNNING", "not both",
        "--limit", "--limit", "--since", "--since", "unknown state" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run_no_server(h, &r, bad[i][0], bad[i][1], bad[i][2], bad[i][3],
            bad[i][4], bad[i][5], bad[i][6], bad[i][7], NULL);
        if (r.status != 2 || strstr(r.err, says[i]) == NULL)
            print_error("case %zu: %d %s\n", i, r.status, r.err);
        assert_int_equal(r.status, 2);
        assert_non_null(strstr(r.err, says[i]));
        run_free(&r);
    }
    for (int i = 0; i < 3; i++)
        free(ids[i]);
    free(other);
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
    assert_int_equal(json_object_size(j), 8);
    assert_true(json_is_integer(json_object_get(j, "last_event_seq")));
    assert_int_equal(json_array_size(json_object_get(j, "paused_queues")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "queue_limits")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "busiest_keys")), 0);
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
    assert_null(strstr(r.out, "CONCURRENCY KEY"));
    run_free(&r);
    free(id);

    // A job with a concurrency key: the key is listed (queued, so none
    // runs and none waits yet).
    run(h, &r, "submit", "Nobody", "--concurrency-key", "tenant-cli",
        "--concurrency", "2", NULL);
    assert_int_equal(r.status, 0);
    run_free(&r);
    run(h, &r, "health", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out,
        "CONCURRENCY KEY  RUNNING  LIMIT  WAITING\n"
        "tenant-cli             0      2        0\n"));
    run_free(&r);
    run(h, &r, "health", "--json", NULL);
    j         = out_json(&r);
    json_t *k = json_array_get(json_object_get(j, "busiest_keys"), 0);
    assert_string_equal(
        json_string_value(json_object_get(k, "key")), "tenant-cli");
    assert_int_equal(json_integer_value(json_object_get(k, "limit")), 2);
    json_decref(j);
    run_free(&r);
}

static void
test_cli_queue_pause_and_resume(void **state)
{
    struct harness *h = *state;
    struct run      r;
    run(h, &r, "queue", "pause", "billing", NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "queue billing paused\n");
    run_free(&r);
    run(h, &r, "queue", "pause", "billing", NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "queue billing was already paused\n");
    run_free(&r);
    run(h, &r, "health", NULL);
    assert_non_null(strstr(r.out, "Paused:     billing\n"));
    run_free(&r);
    run(h, &r, "--json", "queue", "resume", "billing", NULL);
    assert_int_equal(r.status, 0);
    json_t *j = out_json(&r);
    assert_string_equal(
        json_string_value(json_object_get(j, "queue")), "billing");
    assert_true(json_is_false(json_object_get(j, "paused")));
    assert_true(json_is_true(json_object_get(j, "changed")));
    json_decref(j);
    run_free(&r);

    run(h, &r, "queue", "pause", "bad name", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "anvil: INVALID_ARGUMENT: queue 'bad name'"));
    run_free(&r);
    run(h, &r, "queue", "pause", NULL);
    assert_int_equal(r.status, 2);
    run_free(&r);
    run(h, &r, "queue", "pause", "", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "NAME must not be empty"));
    run_free(&r);
}

static void
test_cli_queue_limit_sets_shows_and_removes_a_rate_limit(void **state)
{
    struct harness *h = *state;
    struct run      r;
    run(h, &r, "queue", "limit", "mail", "--rate", "300/m", NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "queue mail limited to 5/s, burst 1\n");
    run_free(&r);
    run(h, &r, "queue", "limit", "mail", "--rate", "50/s", "--burst", "10",
        NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "queue mail limited to 50/s, burst 10\n");
    run_free(&r);
    run(h, &r, "queue", "limit", "mail", "--rate", "50", "--burst", "10", NULL);
    assert_string_equal(
        r.out, "queue mail was already limited to 50/s, burst 10\n");
    run_free(&r);
    run(h, &r, "health", NULL);
    assert_non_null(strstr(r.out, "Rate limits: mail 50/s burst 10 ("));
    run_free(&r);
    run(h, &r, "--json", "queue", "limit", "mail", "--none", NULL);
    assert_int_equal(r.status, 0);
    json_t *j = out_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "queue")), "mail");
    assert_true(json_is_true(json_object_get(j, "changed")));
    json_decref(j);
    run_free(&r);
    run(h, &r, "health", NULL);
    assert_null(strstr(r.out, "Rate limits"));
    run_free(&r);

    // Usage errors send nothing (exit 2); the server's refusals exit 1.
    const char *bad[][4] = {
        { "--rate", "fast", NULL, NULL },
        { "--rate", "0.0001/s", NULL, NULL },
        { "--rate", "5/d", NULL, NULL },
        { "--rate", "-5", NULL, NULL },
        { "--rate", "5", "--burst", "0" },
        { "--none", "--rate", "5", NULL },
        { NULL, NULL, NULL, NULL },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run(h, &r, "queue", "limit", "mail", bad[i][0], bad[i][1], bad[i][2],
            bad[i][3], NULL);
        assert_int_equal(r.status, 2);
        run_free(&r);
    }
    run(h, &r, "queue", "limit", "bad name", "--rate", "5", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "INVALID_ARGUMENT: queue 'bad name'"));
    run_free(&r);
}

// A file of the harness directory holding text; its path into path.
static void
write_file(struct harness *h, const char *name, const char *text, char *path,
    size_t cap)
{
    harness_path(h, name, path, cap);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void
test_cli_schedule_create_with_a_workflow_file_and_show(void **state)
{
    struct harness *h = *state;
    char            wf[160], bad[160], cyc[160];
    write_file(h, "etl.json",
        "{\"name\": \"etl\", \"steps\": [{\"name\": \"extract\", "
        "\"type\": \"x\"}, {\"name\": \"load\", \"type\": \"y\", "
        "\"after\": [\"extract\"]}]}",
        wf, sizeof(wf));
    struct run r;
    run(h, &r, "schedule", "create", "nightly", "--cron", "0 3 * * *",
        "--workflow", wf, NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Template:"));
    assert_non_null(strstr(r.out, "workflow etl (2 steps)"));
    run_free(&r);
    run(h, &r, "--json", "schedule", "show", "nightly", NULL);
    assert_int_equal(r.status, 0);
    json_t *j = out_json(&r);
    assert_string_equal(jstr(j, "workflow"), "etl");
    assert_string_equal(jstr(j, "type"), "");
    assert_true(json_is_null(json_object_get(j, "last_workflow_id")));
    json_decref(j);
    run_free(&r);
    run(h, &r, "schedule", "list", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "workflow:etl"));
    run_free(&r);

    // Both templates, neither, --data with a workflow: usage errors; a
    // bad file names itself; a cycle is the server's INVALID_ARGUMENT.
    run(h, &r, "schedule", "create", "b", "--every", "1m", "--workflow", wf,
        "--type", "t", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "either --type T (a job) or --workflow"));
    run_free(&r);
    run(h, &r, "schedule", "create", "b", "--every", "1m", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "either --type T (a job) or --workflow"));
    run_free(&r);
    run(h, &r, "schedule", "create", "b", "--every", "1m", "--workflow", wf,
        "--data", "{}", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--data and --queue go with --type"));
    run_free(&r);
    write_file(
        h, "bad.json", "{\"name\": \"b\", \"steps\": 7}", bad, sizeof(bad));
    run(h, &r, "schedule", "create", "b", "--every", "1m", "--workflow", bad,
        NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "bad.json"));
    run_free(&r);
    write_file(h, "cycle.json",
        "{\"name\": \"c\", \"steps\": [{\"name\": \"a\", \"type\": "
        "\"x\", \"after\": [\"b\"]}, {\"name\": \"b\", \"type\": \"x\", "
        "\"after\": [\"a\"]}]}",
        cyc, sizeof(cyc));
    run(h, &r, "schedule", "create", "b", "--every", "1m", "--workflow", cyc,
        NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err,
        "INVALID_ARGUMENT: spec.workflow: steps "
        "form a cycle"));
    run_free(&r);
    run(h, &r, "schedule", "show", "b", NULL);
    assert_int_equal(r.status, 1); // nothing was stored
    run_free(&r);
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

static void
test_cli_says_nothing_listens_within_about_a_second(void **state)
{
    struct harness *h = *state;
    struct run      r;
    char            url[200];
    snprintf(url, sizeof(url), "ipc://%s/nobody", h->dir);
    int64_t t0 = av_mono_ms();
    run_no_server(h, &r, "--server", url, "status", "j1", NULL);
    int64_t ms = av_mono_ms() - t0;
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "anvil: UNAVAILABLE: nothing listens at "));
    assert_non_null(strstr(r.err, url));
    assert_true(ms < 3000); // the call timeout alone would take 10 s
    run_free(&r);
}

// ---- submit flags, workers, tokens, TLS

static void
test_cli_submit_sends_timeout_attempts_lease_delay_and_key(void **state)
{
    struct harness *h = *state;
    struct run      r;
    run(h, &r, "submit", "Nobody", "--timeout-ms", "1234", "--max-attempts",
        "2", "--lease-ms", "5000", "--key", "order-7", NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    char *id = strndup(r.out, strcspn(r.out, "\n"));
    run_free(&r);
    struct anvil_job  *job = NULL;
    struct anvil_error err = { 0, "" };
    assert_int_equal(anvil_job_get(h->client, id, &job, &err), ANVIL_OK);
    assert_int_equal(job->timeout_ms, 1234);
    assert_int_equal(job->retry.max_attempts, 2);
    assert_int_equal(job->lease_ms, 5000);
    assert_string_equal(job->idempotency_key, "order-7");
    assert_int_equal(job->state, ANVIL_JOB_QUEUED);
    anvil_job_free(job);

    // The same key again: the first id, said on stderr; existed in JSON.
    run(h, &r, "submit", "Nobody", "--key", "order-7", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, id));
    assert_non_null(strstr(r.err, "key 'order-7' was used before"));
    run_free(&r);
    run(h, &r, "--json", "submit", "Nobody", "--key", "order-7", NULL);
    assert_int_equal(r.status, 0);
    json_t *j = out_json(&r);
    assert_string_equal(jstr(j, "id"), id);
    assert_true(json_is_true(json_object_get(j, "existed")));
    json_decref(j);
    run_free(&r);
    free(id);

    // --delay-ms and --run-at schedule the job.
    int64_t before = av_now_ms();
    run(h, &r, "submit", "Nobody", "--delay-ms", "600000", NULL);
    assert_int_equal(r.status, 0);
    id = strndup(r.out, strcspn(r.out, "\n"));
    run_free(&r);
    assert_int_equal(anvil_job_get(h->client, id, &job, &err), ANVIL_OK);
    assert_int_equal(job->state, ANVIL_JOB_SCHEDULED);
    assert_true(job->run_at_ms >= before + 600000);
    anvil_job_free(job);
    free(id);
    run(h, &r, "submit", "Nobody", "--run-at", "2099-01-02T03:04:05Z", NULL);
    assert_int_equal(r.status, 0);
    id = strndup(r.out, strcspn(r.out, "\n"));
    run_free(&r);
    assert_int_equal(anvil_job_get(h->client, id, &job, &err), ANVIL_OK);
    assert_int_equal(job->state, ANVIL_JOB_SCHEDULED);
    assert_int_equal(job->run_at_ms, 4071006245000LL);
    anvil_job_free(job);
    free(id);

    // Bad values never reach the server.
    run(h, &r, "submit", "Nobody", "--timeout-ms", "-1", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--timeout-ms"));
    run_free(&r);
    run(h, &r, "submit", "Nobody", "--wait-timeout-ms", "5", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--wait-timeout-ms needs --wait"));
    run_free(&r);
}

static void
test_cli_workers_lists_a_polling_worker_and_health_flags_no_worker(void **state)
{
    struct harness *h  = *state;
    char           *id = submit_id(h, "Echo", "{}");
    struct run      r;
    run(h, &r, "health", "--json", NULL);
    assert_int_equal(r.status, 0);
    json_t *j = out_json(&r);
    json_t *q = json_array_get(json_object_get(j, "queues"), 0);
    assert_string_equal(jstr(q, "type"), "Echo");
    assert_true(json_is_true(json_object_get(q, "no_worker")));
    json_decref(j);
    run_free(&r);
    run(h, &r, "health", NULL);
    assert_non_null(strstr(r.out, "NO WORKER"));
    run_free(&r);

    run(h, &r, "workers", NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "No workers.\n");
    run_free(&r);

    // A worker that says who it is, then polls (and leases the job).
    const char *const        types[] = { "Echo" }, *queues[] = { "default" };
    struct anvil_worker_info info
        = { "box-1", 4242, "9.9.9", types, 1, queues, 1, 3 };
    struct anvil_error err = { 0, "" };
    assert_int_equal(
        anvil_client_set_worker_info(h->client, &info, &err), ANVIL_OK);
    struct anvil_poll_req    pr = { "wk-1", queues, 1, types, 1, 1, 0 };
    struct anvil_lease_list *ls = NULL;
    assert_int_equal(anvil_lease_poll(h->client, &pr, &ls, &err), ANVIL_OK);
    assert_int_equal(ls->n, 1);
    assert_string_equal(ls->leases[0].job.id, id);
    anvil_lease_list_free(ls);

    run(h, &r, "--json", "workers", NULL);
    assert_int_equal(r.status, 0);
    j          = out_json(&r);
    json_t *ws = json_object_get(j, "workers");
    assert_int_equal(json_array_size(ws), 1);
    json_t *w = json_array_get(ws, 0);
    assert_string_equal(jstr(w, "name"), "wk-1");
    assert_string_equal(jstr(w, "host"), "box-1");
    assert_string_equal(jstr(w, "version"), "9.9.9");
    assert_int_equal(json_integer_value(json_object_get(w, "pid")), 4242);
    assert_int_equal(json_integer_value(json_object_get(w, "slots")), 3);
    assert_int_equal(json_integer_value(json_object_get(w, "running")), 1);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(w, "types"), 0)),
        "Echo");
    assert_string_equal(jstr(w, "state"), "alive");
    json_decref(j);
    run_free(&r);

    run(h, &r, "workers", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "NAME"));
    assert_non_null(strstr(r.out, "wk-1"));
    assert_non_null(strstr(r.out, "alive"));
    run_free(&r);
    run(h, &r, "health", "--json", NULL);
    j = out_json(&r);
    q = json_array_get(json_object_get(j, "queues"), 0);
    assert_true(json_is_false(json_object_get(q, "no_worker")));
    json_decref(j);
    run_free(&r);

    run(h, &r, "workers", "all", NULL);
    assert_int_equal(r.status, 2);
    run_free(&r);
    free(id);
}

static char token_dir[64];

static int
setup_auth(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));
    snprintf(token_dir, sizeof(token_dir), "/tmp/anvil-clitok-XXXXXX");
    if (h == NULL || mkdtemp(token_dir) == NULL)
        return -1;
    static char file[128];
    snprintf(file, sizeof(file), "%s/admin.token", token_dir);
    struct server_config cfg;
    server_config_init(&cfg);
    cfg.auth                 = SERVER_AUTH_ON;
    cfg.bootstrap_token_file = file;
    if (harness_start_with(h, &cfg) != 0) {
        harness_stop(h);
        free(h);
        return -1;
    }
    *state = h;
    return 0;
}

static int
teardown_auth(void **state)
{
    char file[128];
    snprintf(file, sizeof(file), "%s/admin.token", token_dir);
    unlink(file);
    rmdir(token_dir);
    return teardown(state);
}

static void
test_cli_token_create_list_revoke_with_auth_on(void **state)
{
    struct harness *h = *state;
    char            file[128];
    snprintf(file, sizeof(file), "%s/admin.token", token_dir);
    char *admin = harness_read_file(file, NULL);
    assert_non_null(admin);
    admin[strcspn(admin, "\r\n")] = '\0';
    struct run r;

    // No token: refused.
    run(h, &r, "token", "list", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "anvil: UNAUTHENTICATED: "));
    run_free(&r);

    run(h, &r, "--token", admin, "--json", "token", "create", "--role",
        "worker", "--name", "eu-1", "--expires-in", "90d", NULL);
    assert_int_equal(r.status, 0);
    json_t *j = out_json(&r);
    assert_int_equal(json_object_size(j), 5);
    char *tid    = strdup(jstr(j, "id"));
    char *secret = strdup(jstr(j, "secret"));
    assert_string_equal(jstr(j, "role"), "worker");
    assert_string_equal(jstr(j, "name"), "eu-1");
    int64_t exp;
    assert_int_equal(av_parse_time(jstr(j, "expires_at"), &exp), 0);
    assert_true(exp > av_now_ms() + 89LL * 24 * 3600 * 1000);
    json_decref(j);
    run_free(&r);

    // Human form: the id and the secret, and a warning on stderr.
    run(h, &r, "--token", admin, "token", "create", "--role", "reader", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Secret:"));
    assert_non_null(strstr(r.out, "Expires: never"));
    assert_non_null(strstr(r.err, "not shown again"));
    run_free(&r);

    // The worker token may ask Health but not submit.
    run(h, &r, "--token", secret, "health", NULL);
    assert_int_equal(r.status, 0);
    run_free(&r);
    run(h, &r, "--token", secret, "submit", "Echo", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "anvil: PERMISSION_DENIED: "));
    run_free(&r);

    // The admin token from the environment.
    setenv("ANVIL_TOKEN", admin, 1);
    run(h, &r, "--json", "token", "list", NULL);
    unsetenv("ANVIL_TOKEN");
    assert_int_equal(r.status, 0);
    j          = out_json(&r);
    json_t *ts = json_object_get(j, "tokens");
    assert_true(json_array_size(ts) >= 3);
    bool found = false;
    for (size_t i = 0; i < json_array_size(ts); i++) {
        json_t *t = json_array_get(ts, i);
        assert_null(json_object_get(t, "secret"));
        if (strcmp(jstr(t, "id"), tid) == 0) {
            found = true;
            assert_string_equal(jstr(t, "state"), "active");
        }
    }
    assert_true(found);
    json_decref(j);
    run_free(&r);

    run(h, &r, "--token", admin, "token", "revoke", tid, NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "revoked"));
    run_free(&r);
    run(h, &r, "--token", admin, "token", "list", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "revoked"));
    assert_non_null(strstr(r.out, "eu-1"));
    run_free(&r);
    run(h, &r, "--token", secret, "health", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "anvil: UNAUTHENTICATED: "));
    run_free(&r);

    // Bad input: an unknown id, a role the server has not, a worker token.
    run(h, &r, "--token", admin, "token", "revoke", "t999", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "anvil: NOT_FOUND: "));
    run_free(&r);
    run(h, &r, "--token", admin, "token", "create", "--role", "god", NULL);
    assert_int_equal(r.status, 2);
    run_free(&r);
    free(tid);
    free(secret);
    free(admin);
}

// ---- TLS: certificates made with openssl (as in docs/security.md)

static char certs[64];

static int
sh_in_certs(const char *cmd)
{
    char line[1024];
    snprintf(
        line, sizeof(line), "cd '%s' && %s >>openssl.log 2>&1", certs, cmd);
    int st = system(line);
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

static int
make_ca(const char *name, const char *cn)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
        "openssl ecparam -name prime256v1 -genkey -noout -out %s.key && "
        "openssl req -x509 -new -key %s.key -sha256 -days 30 -subj '/CN=%s' "
        "-out %s.crt",
        name, name, cn, name);
    return sh_in_certs(cmd);
}

static void
test_cli_and_sdk_connect_over_tls_only_with_the_right_ca(void **state)
{
    struct harness *h = *state; // for its directory and child output files
    snprintf(certs, sizeof(certs), "%s", h->dir);
    if (make_ca("ca", "anvil test CA") != 0 || make_ca("other", "other CA") != 0
        || sh_in_certs(
               "openssl ecparam -name prime256v1 -genkey -noout -out "
               "server.key && openssl req -new -key server.key -subj "
               "'/CN=localhost' -out server.csr && printf '%s\\n' "
               "'subjectAltName=DNS:localhost' > server.ext && openssl x509 "
               "-req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
               "-days 30 -sha256 -extfile server.ext -out server.crt")
            != 0)
        fail_msg("openssl could not make the test certificates (see %s/"
                 "openssl.log)",
            certs);
    char ca[160], other[160], crt[160], key[160], db[160];
    snprintf(ca, sizeof(ca), "%s/ca.crt", certs);
    snprintf(other, sizeof(other), "%s/other.crt", certs);
    snprintf(crt, sizeof(crt), "%s/server.crt", certs);
    snprintf(key, sizeof(key), "%s/server.key", certs);
    snprintf(db, sizeof(db), "%s/tls.db", certs);
    int port = harness_free_tcp_port();
    assert_true(port > 0);
    char listen[64], url[64];
    snprintf(listen, sizeof(listen), "tls+tcp://127.0.0.1:%d", port);
    snprintf(url, sizeof(url), "tls+tcp://localhost:%d", port);
    struct server_config cfg;
    server_config_init(&cfg);
    cfg.listen_url         = listen;
    cfg.db_path            = db;
    cfg.tls_cert           = crt;
    cfg.tls_key            = key;
    struct server     *srv = NULL;
    struct anvil_error err = { 0, "" };
    assert_int_equal(server_start(&cfg, &srv, &err), ANVIL_OK);

    // The CLI with --tls-ca.
    struct run r;
    run_no_server(h, &r, "--server", url, "--tls-ca", ca, "health", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Version: "));
    run_free(&r);
    // A missing CA file: a usage error naming it.
    run_no_server(
        h, &r, "--server", url, "--tls-ca", "/nonexistent.crt", "health", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "/nonexistent.crt"));
    run_free(&r);

    // The SDK from $ANVIL_TLS_CA.
    anvil_client *c = NULL;
    setenv("ANVIL_TLS_CA", ca, 1);
    int rc = anvil_client_open(&c, url, &err);
    unsetenv("ANVIL_TLS_CA");
    assert_int_equal(rc, ANVIL_OK);
    struct anvil_health *hl = NULL;
    assert_int_equal(anvil_health_get(c, &hl, &err), ANVIL_OK);
    anvil_health_free(hl);
    // Too late to change TLS once connected.
    struct anvil_tls t = { .ca_file = other };
    assert_int_equal(
        anvil_client_set_tls(c, &t, &err), ANVIL_FAILED_PRECONDITION);
    anvil_client_close(c);

    // The wrong CA: never reached, UNAVAILABLE with a hint.
    assert_int_equal(anvil_client_open(&c, url, &err), ANVIL_OK);
    assert_int_equal(anvil_client_set_tls(c, &t, &err), ANVIL_OK);
    anvil_client_set_timeout(c, 1000, NULL);
    hl = NULL;
    assert_int_equal(anvil_health_get(c, &hl, &err), ANVIL_UNAVAILABLE);
    assert_null(hl);
    assert_non_null(strstr(err.msg, "TLS CA"));
    anvil_client_close(c);

    // Bad settings are refused up front, naming the file.
    assert_int_equal(anvil_client_open(&c, url, &err), ANVIL_OK);
    struct anvil_tls missing = { .ca_file = "/nonexistent-ca.crt" };
    assert_int_equal(
        anvil_client_set_tls(c, &missing, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "/nonexistent-ca.crt"));
    struct anvil_tls half = { .ca_file = ca, .cert_file = crt };
    assert_int_equal(
        anvil_client_set_tls(c, &half, &err), ANVIL_INVALID_ARGUMENT);
    struct anvil_tls mine = { .ca_file = ca, .cert_file = crt, .key_file = ca };
    assert_int_equal(
        anvil_client_set_tls(c, &mine, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, crt));
    anvil_client_close(c);
    assert_int_equal(anvil_client_open(&c, h->url, &err), ANVIL_OK);
    assert_int_equal(anvil_client_set_tls(c, &t, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "tls+tcp://"));
    anvil_client_close(c);
    server_stop(srv);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_cli_says_nothing_listens_within_about_a_second, setup,
            teardown),
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
            test_cli_cancel_twice_succeeds_and_wait_reports_canceled, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_list_pages_with_cursor_and_prints_a_table, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_cancel_and_retry_many_jobs_by_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_health_reports_queue_depths, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_queue_pause_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_queue_limit_sets_shows_and_removes_a_rate_limit, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_schedule_create_with_a_workflow_file_and_show, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_takes_server_from_environment_and_rejects_bad_urls, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_submit_sends_timeout_attempts_lease_delay_and_key, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_workers_lists_a_polling_worker_and_health_flags_no_worker,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_token_create_list_revoke_with_auth_on, setup_auth,
            teardown_auth),
        cmocka_unit_test_setup_teardown(
            test_cli_and_sdk_connect_over_tls_only_with_the_right_ca, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
