// test_exec.c - exec handlers (worker/launch_exec.c): the wait-status
// mapping, and real /bin/sh scripts run per job: stdout result, stdin
// payload, environment, exit codes, signals, timeouts, cancels, limits.

// cmocka.h needs these first.
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include "../../worker/launch_exec.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

// A wait status from a real child that exits with code (or dies by sig).
static int
status_of(int code, int sig)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (sig != 0) {
            signal(sig, SIG_DFL);
            raise(sig);
        }
        _exit(code);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

static void
test_exit_zero_is_success(void **state)
{
    (void) state;
    struct exec_outcome o;
    exec_status_to_outcome(status_of(0, 0), "noise\n", &o);
    assert_true(o.ok);
    assert_string_equal(o.msg, "");
}

static void
test_exit_75_is_a_retryable_failure(void **state)
{
    (void) state;
    struct exec_outcome o;
    exec_status_to_outcome(status_of(75, 0), "busy, try later\n", &o);
    assert_false(o.ok);
    assert_true(o.retryable);
    assert_string_equal(
        o.msg, "exit status 75 (temporary failure): busy, try later");
}

static void
test_other_exit_is_a_final_failure_with_stderr(void **state)
{
    (void) state;
    struct exec_outcome o;
    exec_status_to_outcome(status_of(1, 0), "line one\nbad input\n", &o);
    assert_false(o.ok);
    assert_false(o.retryable);
    assert_string_equal(o.msg, "exit status 1: line one\nbad input");
}

static void
test_a_signal_is_a_retryable_failure(void **state)
{
    (void) state;
    struct exec_outcome o;
    exec_status_to_outcome(status_of(0, SIGKILL), NULL, &o);
    assert_false(o.ok);
    assert_true(o.retryable);
    assert_non_null(strstr(o.msg, "killed by signal 9"));
}

static void
test_a_long_stderr_keeps_only_its_last_lines(void **state)
{
    (void) state;
    size_t n    = 3 * EXEC_STDERR_TAIL;
    char  *tail = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        tail[i] = i % 50 == 49 ? '\n' : (i < n / 2 ? 'q' : 'z');
    tail[n - 1] = '\n';
    tail[n]     = '\0';
    struct exec_outcome o;
    exec_status_to_outcome(status_of(2, 0), tail, &o);
    free(tail);
    assert_true(strlen(o.msg) <= EXEC_STDERR_TAIL + 20);
    assert_null(strchr(o.msg, 'q'));
    assert_non_null(strstr(o.msg, "exit status 2: zzz"));
}

static void
test_control_characters_of_stderr_are_masked(void **state)
{
    (void) state;
    struct exec_outcome o;
    exec_status_to_outcome(status_of(3, 0), "a\x1b[31mb\tc", &o);
    assert_string_equal(o.msg, "exit status 3: a?[31mb\tc");
}

// ---- running scripts ----

struct script {
    char                 *argv[4];
    struct handler_config hc;
    struct anvil_lease    lease;
};

static void
script_init(struct script *s, const char *text, const char *payload)
{
    memset(s, 0, sizeof(*s));
    s->argv[0]               = "/bin/sh";
    s->argv[1]               = "-c";
    s->argv[2]               = (char *) text;
    s->hc.kind               = HANDLER_EXEC;
    s->hc.type               = "t";
    s->hc.argv               = s->argv;
    s->hc.argc               = 3;
    s->lease.job.id          = "j1";
    s->lease.job.type        = "t";
    s->lease.job.workflow_id = "";
    s->lease.job.step        = "";
    s->lease.job.attempt     = 2;
    s->lease.job.payload     = (uint8_t *) payload;
    s->lease.job.payload_len = payload != NULL ? strlen(payload) : 0;
}

static int
run(struct script *s, const struct exec_stop *stop, struct exec_result *res)
{
    struct exec_stop none = { 200, NULL, NULL, NULL };
    return exec_run(&s->hc, stop != NULL ? stop : &none, &s->lease, res);
}

static void
test_stdout_is_the_result_and_stdin_the_payload(void **state)
{
    (void) state;
    struct script      s;
    struct exec_result res;
    script_init(&s, "printf 'got:'; cat", "hello payload");
    assert_int_equal(run(&s, NULL, &res), ANVIL_OK);
    assert_int_equal(res.out_len, strlen("got:hello payload"));
    assert_string_equal(res.out, "got:hello payload");
    exec_result_fini(&res);
}

static void
test_the_job_is_in_the_environment(void **state)
{
    (void) state;
    struct script      s;
    struct exec_result res;
    char              *env[] = { "THUMB_QUALITY=80", "ANVIL_JOB_ID=spoofed" };
    script_init(&s,
        "echo \"$ANVIL_JOB_ID $ANVIL_JOB_TYPE $ANVIL_ATTEMPT $THUMB_QUALITY "
        "${ANVIL_STEP-none}\"",
        NULL);
    s.hc.env   = env;
    s.hc.n_env = 2;
    assert_int_equal(run(&s, NULL, &res), ANVIL_OK);
    assert_string_equal(res.out, "j1 t 2 80 none\n");
    exec_result_fini(&res);
}

static void
test_a_step_gets_its_parents_results_in_a_file(void **state)
{
    (void) state;
    struct script              s;
    struct exec_result         res;
    struct anvil_parent_result p[2] = {
        { "fetch", (uint8_t *) "data \"1\"", 8 },
        { "size", (uint8_t *) "42", 2 },
    };
    script_init(&s,
        "echo \"$ANVIL_WORKFLOW_ID/$ANVIL_STEP\"; cat "
        "\"$ANVIL_PARENT_RESULTS_FILE\"; echo; echo "
        "\"$ANVIL_PARENT_RESULTS_FILE\"",
        NULL);
    s.lease.job.workflow_id = "w7";
    s.lease.job.step        = "thumb";
    s.lease.parents         = p;
    s.lease.n_parents       = 2;
    assert_int_equal(run(&s, NULL, &res), ANVIL_OK);
    char *nl = strchr(res.out, '\n');
    assert_non_null(nl);
    assert_memory_equal(res.out, "w7/thumb\n", 9);
    assert_non_null(
        strstr(res.out, "{\"fetch\":\"data \\\"1\\\"\",\"size\":\"42\"}"));
    char *path = strrchr(res.out, '/');
    while (path > res.out && path[-1] != '\n')
        path--;
    path[strcspn(path, "\n")] = '\0';
    assert_int_equal(access(path, F_OK), -1); // removed after the run
    exec_result_fini(&res);
}

static void
test_exit_75_is_retryable_and_exit_1_final(void **state)
{
    (void) state;
    struct script      s;
    struct exec_result res;
    script_init(&s, "echo 'try later' >&2; exit 75", NULL);
    assert_int_equal(run(&s, NULL, &res), ANVIL_ABORTED);
    assert_true(res.retryable);
    assert_string_equal(
        res.msg, "exit status 75 (temporary failure): try later");
    exec_result_fini(&res);
    script_init(&s, "echo partial; echo 'no such image' >&2; exit 1", NULL);
    assert_int_equal(run(&s, NULL, &res), ANVIL_ABORTED);
    assert_false(res.retryable);
    assert_string_equal(res.msg, "exit status 1: no such image");
    assert_null(res.out);
    exec_result_fini(&res);
}

static void
test_death_by_signal_is_retryable(void **state)
{
    (void) state;
    struct script      s;
    struct exec_result res;
    script_init(&s, "kill -KILL $$", NULL);
    assert_int_equal(run(&s, NULL, &res), ANVIL_ABORTED);
    assert_true(res.retryable);
    assert_non_null(strstr(res.msg, "killed by signal 9"));
    exec_result_fini(&res);
}

static void
test_the_handler_timeout_kills_the_process_group(void **state)
{
    (void) state;
    struct script      s;
    struct exec_result res;
    char               dir[] = "/tmp/anvil-exec-XXXXXX";
    char               cmd[256], pidfile[128];
    assert_non_null(mkdtemp(dir));
    snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
    snprintf(cmd, sizeof(cmd),
        "sleep 30 & echo $! > %s; trap '' TERM; while :; do sleep 1; done",
        pidfile);
    script_init(&s, cmd, NULL);
    s.hc.timeout_ms = 300;
    assert_int_equal(run(&s, NULL, &res), ANVIL_DEADLINE_EXCEEDED);
    assert_string_equal(res.msg, "timed out after 300 ms");
    FILE *f   = fopen(pidfile, "r");
    long  pid = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    // The group got SIGKILL when the shell ignored SIGTERM; the orphaned
    // sleep is reaped by init, so poll briefly for it to be gone.
    int alive = 1;
    for (int i = 0; i < 200 && alive; i++) {
        alive = kill((pid_t) pid, 0) == 0;
        if (alive)
            usleep(10000);
    }
    assert_false(alive);
    unlink(pidfile);
    rmdir(dir);
    exec_result_fini(&res);
}

static bool
always(void *arg)
{
    (void) arg;
    return true;
}

static void
test_a_cancel_stops_the_program(void **state)
{
    (void) state;
    struct script      s;
    struct exec_result res;
    struct exec_stop   stop = { 200, always, NULL, NULL };
    script_init(&s, "sleep 30", NULL);
    assert_int_equal(run(&s, &stop, &res), ANVIL_CANCELLED);
    assert_string_equal(res.msg, "canceled");
    assert_true(res.retryable);
    exec_result_fini(&res);
}

static void
test_the_job_timeout_applies_too(void **state)
{
    (void) state;
    struct script      s;
    struct exec_result res;
    script_init(&s, "sleep 30", NULL);
    s.lease.job.timeout_ms = 200;
    assert_int_equal(run(&s, NULL, &res), ANVIL_DEADLINE_EXCEEDED);
    assert_string_equal(res.msg, "timed out after 200 ms");
    exec_result_fini(&res);
}

static void
test_a_result_over_1_mib_fails(void **state)
{
    (void) state;
    struct script      s;
    struct exec_result res;
    script_init(&s, "head -c 1100000 /dev/zero", NULL);
    assert_int_equal(run(&s, NULL, &res), ANVIL_RESOURCE_EXHAUSTED);
    assert_string_equal(res.msg, "result over 1 MiB");
    assert_false(res.retryable);
    exec_result_fini(&res);
    script_init(&s, "head -c 1048576 /dev/zero", NULL);
    assert_int_equal(run(&s, NULL, &res), ANVIL_OK);
    assert_int_equal(res.out_len, 1048576);
    exec_result_fini(&res);
}

static void
test_a_program_that_ignores_stdin_still_succeeds(void **state)
{
    (void) state;
    struct script      s;
    struct exec_result res;
    size_t             n       = 512 * 1024;
    char              *payload = malloc(n + 1);
    memset(payload, 'x', n);
    payload[n] = '\0';
    script_init(&s, "exec 0<&-; echo done", payload);
    assert_int_equal(run(&s, NULL, &res), ANVIL_OK);
    assert_string_equal(res.out, "done\n");
    exec_result_fini(&res);
    free(payload);
}

static void
test_a_missing_program_is_refused(void **state)
{
    (void) state;
    struct script      s;
    struct exec_result res;
    script_init(&s, "", NULL);
    s.argv[0] = "/nonexistent/anvil-prog";
    assert_int_not_equal(run(&s, NULL, &res), ANVIL_OK);
    assert_non_null(strstr(res.msg, "/nonexistent/anvil-prog"));
    exec_result_fini(&res);
}

struct progress_seen {
    int  n;
    int  last_percent;
    char last_msg[ANVIL_PROGRESS_MESSAGE_MAX + 1];
};

static void
record_progress(void *arg, int percent, const char *message)
{
    struct progress_seen *p = arg;
    p->n++;
    p->last_percent = percent;
    snprintf(p->last_msg, sizeof(p->last_msg), "%s", message);
}

static void
test_progress_lines_are_reported_and_kept_out_of_the_error(void **state)
{
    (void) state;
    struct script        s;
    struct exec_result   res;
    struct progress_seen seen = { 0 };
    struct exec_stop     stop = { 200, NULL, &seen, record_progress };
    script_init(&s,
        "echo 'ANVIL_PROGRESS 10 starting' >&2;"
        "echo 'ANVIL_PROGRESS 250 bad' >&2;"
        "printf 'ANVIL_PROGRESS 60 half' >&2; printf ' way\\n' >&2;"
        "echo 'real trouble' >&2; exit 1",
        NULL);
    assert_int_equal(run(&s, &stop, &res), ANVIL_ABORTED);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.last_percent, 60);
    assert_string_equal(seen.last_msg, "half way");
    // The malformed line stays as ordinary stderr; the good ones are gone.
    assert_string_equal(
        res.msg, "exit status 1: ANVIL_PROGRESS 250 bad\nreal trouble");
    exec_result_fini(&res);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_zero_is_success),
        cmocka_unit_test(test_exit_75_is_a_retryable_failure),
        cmocka_unit_test(test_other_exit_is_a_final_failure_with_stderr),
        cmocka_unit_test(test_a_signal_is_a_retryable_failure),
        cmocka_unit_test(test_a_long_stderr_keeps_only_its_last_lines),
        cmocka_unit_test(test_control_characters_of_stderr_are_masked),
        cmocka_unit_test(test_stdout_is_the_result_and_stdin_the_payload),
        cmocka_unit_test(test_the_job_is_in_the_environment),
        cmocka_unit_test(test_a_step_gets_its_parents_results_in_a_file),
        cmocka_unit_test(test_exit_75_is_retryable_and_exit_1_final),
        cmocka_unit_test(test_death_by_signal_is_retryable),
        cmocka_unit_test(test_the_handler_timeout_kills_the_process_group),
        cmocka_unit_test(test_a_cancel_stops_the_program),
        cmocka_unit_test(test_the_job_timeout_applies_too),
        cmocka_unit_test(test_a_result_over_1_mib_fails),
        cmocka_unit_test(test_a_program_that_ignores_stdin_still_succeeds),
        cmocka_unit_test(test_a_missing_program_is_refused),
        cmocka_unit_test(
            test_progress_lines_are_reported_and_kept_out_of_the_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
