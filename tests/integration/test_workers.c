// test_workers.c - serving job types with programs: exec handlers next to
// a C handler in one in-process worker, and the anvil-worker binary with a
// config file (connect before the server is up, two queues, the worker
// registry, SIGHUP reload), all against a real server.

// cmocka.h needs these first.
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include "../../worker/config.h"
#include "../../worker/handlers.h"
#include "../../worker/launch_exec.h"
#include "../harness.h"

#include <errno.h>
#include <nng/nng.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 20000

struct fixture {
    struct harness       h;
    struct worker_config cfg; // exec handlers of the in-process worker
    struct exec_handler *execs[8];
    size_t               n_execs;
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    config_init(&f->cfg);
    *state = f;
    struct server_config cfg;
    server_config_init(&cfg);
    cfg.worker_lost_ms = 500;
    return harness_start_with(&f->h, &cfg);
}

static int
setup_no_server(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    config_init(&f->cfg);
    *state = f;
    return harness_open(&f->h);
}

static int
teardown(void **state)
{
    struct fixture *f  = *state;
    int             rc = harness_stop(&f->h); // workers stop before execs go
    for (size_t i = 0; i < f->n_execs; i++)
        exec_handler_free(f->execs[i]);
    config_fini(&f->cfg);
    free(f);
    return rc;
}

// Parses one handler `"type": {...}` into f->cfg and makes its exec handler.
static struct exec_handler *
exec_of(struct fixture *f, const char *json)
{
    struct worker_config c;
    struct anvil_error   err = { 0 };
    if (config_parse(json, strlen(json), &c, &err) != ANVIL_OK)
        fail_msg("config: %s", err.msg);
    // Move the one handler into f->cfg, which outlives the worker; its
    // array never moves, since the exec handlers borrow its entries.
    if (f->cfg.handlers == NULL)
        f->cfg.handlers = calloc(8, sizeof(*f->cfg.handlers));
    assert_non_null(f->cfg.handlers);
    assert_true(f->cfg.n_handlers < 8);
    f->cfg.handlers[f->cfg.n_handlers] = c.handlers[0];
    c.n_handlers                       = 0;
    config_fini(&c);
    struct exec_handler *eh = NULL;
    assert_int_equal(
        exec_handler_new(&f->cfg.handlers[f->cfg.n_handlers], &eh), ANVIL_OK);
    f->cfg.n_handlers++;
    exec_handler_set_kill_grace(eh, 500);
    f->execs[f->n_execs++] = eh;
    return eh;
}

// A handler config of type running /bin/sh -c script.
static struct exec_handler *
sh_handler(
    struct fixture *f, const char *type, const char *script, int timeout_ms)
{
    // The script is put in a JSON string: escape '"' and '\\'.
    size_t cap  = strlen(script) * 2 + 256;
    char  *json = malloc(cap);
    assert_non_null(json);
    int at = snprintf(json, cap,
        "{\"handlers\": {\"%s\": {\"timeout_ms\": %d, "
        "\"exec\": [\"/bin/sh\", \"-c\", \"",
        type, timeout_ms);
    for (const char *s = script; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            json[at++] = '\\';
        json[at++] = *s;
    }
    snprintf(json + at, cap - (size_t) at, "\"]}}}");
    struct exec_handler *eh = exec_of(f, json);
    free(json);
    return eh;
}

static char *
submit(struct harness *h, const char *type, const char *payload,
    const char *queue, int64_t timeout_ms, uint32_t max_attempts)
{
    struct anvil_job_opts o   = { 0 };
    char                 *id  = NULL;
    struct anvil_error    err = { 0 };
    o.queue                   = queue;
    o.timeout_ms              = timeout_ms;
    o.retry.max_attempts      = max_attempts;
    int rc                    = anvil_job_submit(h->client, type, payload,
        payload != NULL ? strlen(payload) : 0, &o, &id, NULL, &err);
    if (rc != ANVIL_OK)
        fail_msg("submit %s: %s", type, err.msg);
    return id;
}

static struct anvil_job *
wait_job(struct harness *h, const char *id)
{
    struct anvil_job  *job = NULL;
    struct anvil_error err = { 0 };
    int                rc  = anvil_job_wait(h->client, id, WAIT_MS, &job, &err);
    if (rc != ANVIL_OK)
        fail_msg("wait %s: %s", id, err.msg);
    return job;
}

// True once pid is gone (kill(pid, 0) fails with ESRCH).
static bool
pid_gone(void *arg)
{
    return kill(*(pid_t *) arg, 0) == -1 && errno == ESRCH;
}

static bool
file_nonempty(void *arg)
{
    size_t len = 0;
    char  *s   = harness_read_file(arg, &len);
    free(s);
    return s != NULL && len > 0;
}

static pid_t
read_pid(const char *path)
{
    assert_true(harness_wait_for(file_nonempty, (void *) path, WAIT_MS));
    char *s = harness_read_file(path, NULL);
    assert_non_null(s);
    pid_t pid = (pid_t) atol(s);
    free(s);
    assert_true(pid > 1);
    return pid;
}

// ---- one worker, a C handler and exec handlers ----

static void
test_a_c_handler_and_exec_handlers_share_a_worker(void **state)
{
    struct fixture      *f = *state;
    struct exec_handler *ok
        = sh_handler(f, "upper", "printf 'got:'; tr a-z A-Z", 0);
    struct exec_handler *flaky  = sh_handler(f, "flaky",
         "[ \"$ANVIL_ATTEMPT\" -ge 2 ] || { echo busy >&2; exit 75; }; "
          "echo attempt $ANVIL_ATTEMPT",
         0);
    struct exec_handler *broken = sh_handler(
        f, "broken", "echo partial; echo 'bad image' >&2; exit 1", 0);
    assert_non_null(harness_start_worker(&f->h, 4, "echo", handler_echo, NULL,
        "upper", exec_handler_run, ok, "flaky", exec_handler_run, flaky,
        "broken", exec_handler_run, broken, NULL));

    char             *e  = submit(&f->h, "echo", "same", NULL, 0, 0);
    char             *u  = submit(&f->h, "upper", "hello", NULL, 0, 0);
    char             *r  = submit(&f->h, "flaky", "", NULL, 0, 3);
    char             *b  = submit(&f->h, "broken", "", NULL, 0, 3);
    struct anvil_job *je = wait_job(&f->h, e);
    struct anvil_job *ju = wait_job(&f->h, u);
    struct anvil_job *jr = wait_job(&f->h, r);
    struct anvil_job *jb = wait_job(&f->h, b);
    assert_int_equal(je->state, ANVIL_JOB_SUCCEEDED);
    assert_string_equal((char *) je->result, "same");
    assert_int_equal(ju->state, ANVIL_JOB_SUCCEEDED);
    assert_string_equal((char *) ju->result, "got:HELLO");
    assert_int_equal(jr->state, ANVIL_JOB_SUCCEEDED); // exit 75, then ok
    assert_int_equal(jr->attempt, 2);
    assert_string_equal((char *) jr->result, "attempt 2\n");
    assert_int_equal(jb->state, ANVIL_JOB_FAILED); // final at once
    assert_int_equal(jb->attempt, 1);
    assert_string_equal(jb->error, "exit status 1: bad image");
    anvil_job_free(je);
    anvil_job_free(ju);
    anvil_job_free(jr);
    anvil_job_free(jb);
    anvil_free(e);
    anvil_free(u);
    anvil_free(r);
    anvil_free(b);
}

static void
test_a_timeout_kills_the_process_group(void **state)
{
    struct fixture *f = *state;
    char            pidfile[128], script[256];
    harness_path(&f->h, "timeout.pid", pidfile, sizeof(pidfile));
    snprintf(script, sizeof(script), "sleep 30 & echo $! > %s; wait", pidfile);
    struct exec_handler *hang = sh_handler(f, "hang", script, 0);
    assert_non_null(
        harness_start_worker(&f->h, 1, "hang", exec_handler_run, hang, NULL));
    char             *id  = submit(&f->h, "hang", "", NULL, 700, 1);
    struct anvil_job *job = wait_job(&f->h, id);
    assert_int_equal(job->state, ANVIL_JOB_FAILED);
    assert_string_equal(job->error, "timed out after 700 ms");
    pid_t child = read_pid(pidfile);
    assert_true(harness_wait_for(pid_gone, &child, WAIT_MS));
    anvil_job_free(job);
    anvil_free(id);
}

static void
test_a_cancel_kills_the_process_group(void **state)
{
    struct fixture *f = *state;
    char            pidfile[128], script[256];
    harness_path(&f->h, "cancel.pid", pidfile, sizeof(pidfile));
    snprintf(script, sizeof(script), "sleep 30 & echo $! > %s; wait", pidfile);
    struct exec_handler *hang = sh_handler(f, "hang", script, 0);
    assert_non_null(
        harness_start_worker(&f->h, 1, "hang", exec_handler_run, hang, NULL));
    char *id    = submit(&f->h, "hang", "", NULL, 0, 1);
    pid_t child = read_pid(pidfile); // it runs
    assert_int_equal(anvil_job_cancel(f->h.client, id, NULL, NULL), ANVIL_OK);
    assert_true(harness_wait_for(pid_gone, &child, WAIT_MS));
    struct anvil_job *job = wait_job(&f->h, id);
    assert_int_equal(job->state, ANVIL_JOB_CANCELED);
    anvil_job_free(job);
    anvil_free(id);
}

// ---- the anvil-worker binary with a config file ----

static void
write_config(struct harness *h, const char *name, const char *body)
{
    char path[128];
    harness_path(h, name, path, sizeof(path));
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "{\"server\": \"%s\", \"grace_ms\": 2000, %s}", h->url, body);
    assert_int_equal(fclose(fp), 0);
}

static pid_t
spawn_worker(struct harness *h, const char *name)
{
    char path[128];
    harness_path(h, name, path, sizeof(path));
    char *argv[] = { "anvil-worker", "--config", path, NULL };
    pid_t pid    = harness_spawn(h, "anvil-worker", argv);
    assert_true(pid > 0);
    return pid;
}

static void
expect_result(struct harness *h, const char *type, const char *queue,
    const char *payload, const char *want)
{
    char             *id  = submit(h, type, payload, queue, 0, 1);
    struct anvil_job *job = wait_job(h, id);
    if (job->state != ANVIL_JOB_SUCCEEDED)
        fail_msg("%s on %s: %s %s", type, queue ? queue : "default",
            anvil_job_state_name(job->state), job->error);
    assert_string_equal((char *) job->result, want);
    anvil_job_free(job);
    anvil_free(id);
}

static void
test_a_worker_started_first_connects_when_anvild_comes_up(void **state)
{
    struct fixture *f = *state;
    write_config(&f->h, "w.json",
        "\"handlers\": {\"echo\": {\"builtin\": \"echo\"}, \"rev\": "
        "{\"exec\": [\"rev\"]}}");
    spawn_worker(&f->h, "w.json");
    assert_true(harness_spawn_anvild(&f->h, NULL) > 0);
    expect_result(&f->h, "echo", NULL, "late", "late");
    expect_result(&f->h, "rev", NULL, "abc\n", "cba\n");
}

static void
test_a_worker_polling_two_queues_runs_jobs_from_both(void **state)
{
    struct fixture *f = *state;
    write_config(&f->h, "w.json",
        "\"queues\": [\"q1\", \"q2\"], \"slots\": 2, "
        "\"handlers\": {\"echo\": {\"builtin\": \"echo\"}}");
    spawn_worker(&f->h, "w.json");
    expect_result(&f->h, "echo", "q1", "one", "one");
    expect_result(&f->h, "echo", "q2", "two", "two");
}

struct seen {
    anvil_client *c;
    const char   *type; // a type the worker must list
    bool          want_lost;
};

static bool
worker_listed(void *arg)
{
    struct seen                     *s     = arg;
    struct anvil_worker_status_list *l     = NULL;
    bool                             found = false;
    if (anvil_worker_status_list(s->c, &l, NULL) != ANVIL_OK)
        return false;
    struct anvil_worker_status *w = l->workers;
    size_t                      n = l->n;
    for (size_t i = 0; i < n && !found; i++) {
        for (size_t k = 0; k < w[i].n_types; k++) {
            if (strcmp(w[i].types[k], s->type) == 0 && w[i].lost == s->want_lost
                && strcmp(w[i].version, ANVIL_VERSION) == 0 && w[i].pid > 0)
                found = true;
        }
    }
    anvil_worker_status_list_free(l);
    return found;
}

static void
test_the_registry_lists_the_worker_then_marks_it_lost(void **state)
{
    struct fixture *f = *state;
    write_config(&f->h, "w.json",
        "\"handlers\": {\"echo\": {\"builtin\": \"echo\"}, \"thumb\": "
        "{\"exec\": [\"cat\"]}}");
    pid_t       pid = spawn_worker(&f->h, "w.json");
    struct seen s   = { f->h.client, "thumb", false };
    assert_true(harness_wait_for(worker_listed, &s, WAIT_MS));
    assert_true(harness_kill(pid, SIGKILL) >= 0);
    s.want_lost = true;
    assert_true(harness_wait_for(worker_listed, &s, WAIT_MS));
}

// The stderr file of a child of the harness.
static const char *
proc_log(const struct harness *h, pid_t pid)
{
    for (int i = 0; i < h->n_procs; i++) {
        if (h->procs[i].pid == pid)
            return h->procs[i].log;
    }
    return NULL;
}

struct log_wait {
    const char *path;
    const char *needle;
};

static bool
log_has(void *arg)
{
    struct log_wait *l    = arg;
    char            *text = harness_read_file(l->path, NULL);
    bool             has  = text != NULL && strstr(text, l->needle) != NULL;
    free(text);
    return has;
}

static void
test_sighup_reloads_a_good_config_and_keeps_the_old_on_a_bad_one(void **state)
{
    struct fixture *f = *state;
    write_config(&f->h, "w.json",
        "\"handlers\": {\"echo\": {\"builtin\": "
        "\"echo\"}}");
    pid_t pid = spawn_worker(&f->h, "w.json");
    expect_result(&f->h, "echo", NULL, "v1", "v1");
    // A new type becomes served.
    write_config(&f->h, "w.json",
        "\"handlers\": {\"echo\": {\"builtin\": \"echo\"}, \"rev\": "
        "{\"exec\": [\"rev\"]}}");
    assert_int_equal(kill(pid, SIGHUP), 0);
    expect_result(&f->h, "rev", NULL, "ab\n", "ba\n");
    // A bad file is refused; the running config keeps serving.
    write_config(&f->h, "w.json",
        "\"handlers\": {\"rev\": {\"exec\": [\"/nonexistent/rev\"]}}");
    assert_int_equal(kill(pid, SIGHUP), 0);
    struct log_wait l = { proc_log(&f->h, pid),
        "handlers.rev.exec: /nonexistent/rev is not an executable file" };
    assert_non_null(l.path);
    assert_true(harness_wait_for(log_has, &l, WAIT_MS));
    l.needle = "worker.reload.error";
    assert_true(log_has(&l));
    expect_result(&f->h, "rev", NULL, "xy\n", "yx\n");
    expect_result(&f->h, "echo", NULL, "v2", "v2");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_c_handler_and_exec_handlers_share_a_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_timeout_kills_the_process_group, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_cancel_kills_the_process_group, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_worker_started_first_connects_when_anvild_comes_up,
            setup_no_server, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_worker_polling_two_queues_runs_jobs_from_both, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_the_registry_lists_the_worker_then_marks_it_lost, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_sighup_reloads_a_good_config_and_keeps_the_old_on_a_bad_one,
            setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nng_fini();
    return rc;
}
