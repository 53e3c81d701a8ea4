// test_events.c - the event stream and the retries against a real anvild
// (in-process, harness.h) with in-process workers, through the SDK and
// through the `anvil` binary: a job's and a workflow's events in order,
// filters, a WatchEvents long-poll that returns as soon as an event is
// written, `anvil events --follow --since N --json` exactly once across a
// restart of the consumer, RetryJob and RetryWorkflow, and the reader
// role's refusal.
//
// Handlers record into atomics; every assert runs on the test thread.
// Nothing sleeps a fixed time: waits are WaitJob/WaitWorkflow, WatchEvents
// long-polls or harness_wait_for() against a deadline.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <anvil/anvil.h>
#include <anvil/worker.h>
#include <anvil/workflow.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../harness.h"
#include "util/clock.h"

#define WAIT_MS 20000

// "Flaky" fails (for good) until flaky_ok is set; "Echo" always succeeds.
static atomic_bool flaky_ok;
static atomic_int  echo_runs;

static int
echo_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) arg;
    atomic_fetch_add(&echo_runs, 1);
    return anvil_job_ctx_set_result(
        ctx, lease->job.payload, lease->job.payload_len);
}

static int
flaky_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) arg;
    (void) lease;
    if (atomic_load(&flaky_ok))
        return ANVIL_OK;
    anvil_job_ctx_set_error(ctx, false, "not yet");
    return ANVIL_INTERNAL;
}

// ---- fixtures ----

struct fx {
    struct harness       h;
    char                 token_file[128];
    char                 admin[256];
    struct server_config cfg;
};

static int
group_setup(void **state)
{
    (void) state;
    atexit(nng_fini);
    return 0;
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    *state = f;
    atomic_store(&flaky_ok, false);
    atomic_store(&echo_runs, 0);
    if (harness_start(&f->h) != 0)
        return -1;
    if (harness_start_worker(&f->h, 4, "Echo", echo_handler, NULL, "Flaky",
            flaky_handler, NULL, (const char *) NULL)
        == NULL)
        return -1;
    return 0;
}

// A server that requires tokens; h.client holds the admin token.
static int
setup_auth(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    *state     = f;
    char dir[] = "/tmp/anvil-tok-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(f->token_file, sizeof(f->token_file), "%s/admin.token", dir);
    server_config_init(&f->cfg);
    f->cfg.auth                 = SERVER_AUTH_ON;
    f->cfg.bootstrap_token_file = f->token_file;
    if (harness_start_with(&f->h, &f->cfg) != 0)
        return -1;
    char *text = harness_read_file(f->token_file, NULL);
    harness_remove_tree(dir);
    if (text == NULL)
        return -1;
    text[strcspn(text, "\r\n")] = '\0';
    snprintf(f->admin, sizeof(f->admin), "%s", text);
    free(text);
    return anvil_client_set_token(f->h.client, f->admin, NULL);
}

static int
teardown(void **state)
{
    struct fx *f  = *state;
    int        rc = f != NULL ? harness_stop(&f->h) : 0;
    free(f);
    return rc;
}

// ---- helpers ----

static char *
submit(struct fx *f, const char *type, const struct anvil_job_opts *o)
{
    char              *id  = NULL;
    struct anvil_error err = { 0, "" };
    int rc = anvil_job_submit(f->h.client, type, "{}", 2, o, &id, NULL, &err);
    if (rc != ANVIL_OK)
        print_error("submit %s: %s\n", type, err.msg);
    assert_int_equal(rc, ANVIL_OK);
    return id;
}

static struct anvil_job *
wait_job(struct fx *f, const char *id)
{
    struct anvil_job *job = NULL;
    assert_int_equal(
        anvil_job_wait(f->h.client, id, WAIT_MS, &job, NULL), ANVIL_OK);
    return job;
}

// Every event of the filter from the oldest kept (no wait).
static struct anvil_event_list *
events_of(struct fx *f, const char *job_id, const char *workflow_id)
{
    struct anvil_event_filter flt
        = { .job_id = job_id, .workflow_id = workflow_id, .limit = 1000 };
    struct anvil_event_list *l   = NULL;
    struct anvil_error       err = { 0, "" };
    int rc = anvil_event_watch(f->h.client, &flt, &l, &err);
    if (rc != ANVIL_OK)
        print_error("WatchEvents: %s: %s\n", anvil_code_name(rc), err.msg);
    assert_int_equal(rc, ANVIL_OK);
    return l;
}

static void
assert_increasing(const struct anvil_event_list *l)
{
    for (size_t i = 1; i < l->n; i++)
        assert_true(l->events[i].seq > l->events[i - 1].seq);
}

// The index of the first event of kind at or after from, or -1.
static int
find_kind(const struct anvil_event_list *l, size_t from,
    enum anvil_event_kind kind, const char *job_id)
{
    for (size_t i = from; i < l->n; i++)
        if (l->events[i].kind == kind
            && (job_id == NULL || strcmp(l->events[i].job_id, job_id) == 0))
            return (int) i;
    return -1;
}

// ---- events through the SDK ----

static void
test_a_jobs_events_come_in_order_with_increasing_seq(void **state)
{
    struct fx        *f   = *state;
    char             *id  = submit(f, "Echo", NULL);
    struct anvil_job *job = wait_job(f, id);
    assert_int_equal(job->state, ANVIL_JOB_SUCCEEDED);
    anvil_job_free(job);

    struct anvil_event_list *l = events_of(f, id, NULL);
    assert_int_equal(l->n, 3);
    assert_increasing(l);
    assert_int_equal(l->events[0].kind, ANVIL_EVENT_JOB_SUBMITTED);
    assert_int_equal(l->events[1].kind, ANVIL_EVENT_JOB_STARTED);
    assert_int_equal(l->events[2].kind, ANVIL_EVENT_JOB_SUCCEEDED);
    for (size_t i = 0; i < l->n; i++) {
        assert_string_equal(l->events[i].job_id, id);
        assert_string_equal(l->events[i].type, "Echo");
        assert_string_equal(l->events[i].queue, "default");
        assert_true(l->events[i].at_ms > 0);
    }
    assert_string_not_equal(l->events[1].worker, "");
    assert_int_equal(l->events[1].attempt, 1);
    assert_true(l->next_seq >= l->events[2].seq);
    assert_true(l->last_seq >= l->events[2].seq);
    anvil_event_list_free(l);
    free(id);
}

static void
test_a_workflows_events_include_its_steps(void **state)
{
    struct fx           *f  = *state;
    anvil_workflow_spec *wf = NULL;
    assert_int_equal(anvil_workflow_spec_new(&wf, "pair", NULL), ANVIL_OK);
    assert_int_equal(
        anvil_workflow_spec_add_step(wf, "a", "Echo", "1", 1, NULL, NULL),
        ANVIL_OK);
    assert_int_equal(
        anvil_workflow_spec_add_step(wf, "b", "Echo", "2", 1, NULL, NULL),
        ANVIL_OK);
    assert_int_equal(anvil_workflow_spec_add_edge(wf, "b", "a", NULL), 0);
    char *id = NULL;
    assert_int_equal(
        anvil_workflow_submit(f->h.client, wf, &id, NULL, NULL), ANVIL_OK);
    anvil_workflow_spec_free(wf);
    struct anvil_workflow *w = NULL;
    assert_int_equal(
        anvil_workflow_wait(f->h.client, id, WAIT_MS, &w, NULL), ANVIL_OK);
    assert_int_equal(w->state, ANVIL_WORKFLOW_SUCCEEDED);
    anvil_workflow_free(w);

    struct anvil_event_list *l = events_of(f, NULL, id);
    assert_true(l->n >= 2 + 2 * 3);
    assert_increasing(l);
    assert_int_equal(l->events[0].kind, ANVIL_EVENT_WORKFLOW_STARTED);
    assert_int_equal(l->events[l->n - 1].kind, ANVIL_EVENT_WORKFLOW_SUCCEEDED);
    size_t steps_succeeded = 0;
    for (size_t i = 0; i < l->n; i++) {
        assert_string_equal(l->events[i].workflow_id, id);
        if (l->events[i].kind == ANVIL_EVENT_JOB_SUCCEEDED) {
            steps_succeeded++;
            assert_string_not_equal(l->events[i].step, "");
        }
    }
    assert_int_equal(steps_succeeded, 2);
    anvil_event_list_free(l);
    free(id);
}

static void
test_a_job_filter_answers_only_that_jobs_events(void **state)
{
    struct fx *f     = *state;
    char      *one   = submit(f, "Echo", NULL);
    char      *other = submit(f, "Echo", NULL);
    anvil_job_free(wait_job(f, one));
    anvil_job_free(wait_job(f, other));
    struct anvil_event_list *l = events_of(f, one, NULL);
    assert_int_equal(l->n, 3);
    for (size_t i = 0; i < l->n; i++)
        assert_string_equal(l->events[i].job_id, one);
    anvil_event_list_free(l);

    // And by kind: only the submits of both.
    enum anvil_event_kind     k   = ANVIL_EVENT_JOB_SUBMITTED;
    struct anvil_event_filter flt = { .kinds = &k, .n_kinds = 1 };
    assert_int_equal(anvil_event_watch(f->h.client, &flt, &l, NULL), 0);
    assert_true(find_kind(l, 0, k, one) >= 0);
    assert_true(find_kind(l, 0, k, other) >= 0);
    for (size_t i = 0; i < l->n; i++)
        assert_int_equal(l->events[i].kind, k);
    anvil_event_list_free(l);
    free(one);
    free(other);
}

struct watcher {
    anvil_client            *c;
    uint64_t                 after;
    int                      rc;
    int64_t                  ms; // how long the watch took
    struct anvil_event_list *l;
};

static void *
watcher_main(void *arg)
{
    struct watcher *w = arg;
    // Only the job's queue: the worker's joining is an event too.
    struct anvil_event_filter flt
        = { .after_seq = w->after, .queue = "nobody", .timeout_ms = WAIT_MS };
    int64_t t0 = av_mono_ms();
    w->rc      = anvil_event_watch(w->c, &flt, &w->l, NULL);
    w->ms      = av_mono_ms() - t0;
    return NULL;
}

static void
test_a_watch_returns_as_soon_as_an_event_is_written(void **state)
{
    struct fx           *f = *state;
    struct anvil_health *h = NULL;
    assert_int_equal(anvil_health_get(f->h.client, &h, NULL), ANVIL_OK);
    struct watcher w = { .c = f->h.client, .after = h->last_event_seq };
    anvil_health_free(h);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, watcher_main, &w), 0);
    // A queue no worker serves: exactly one event (submitted) follows.
    struct anvil_job_opts o  = { .queue = "nobody" };
    char                 *id = submit(f, "Echo", &o);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, ANVIL_OK);
    assert_true(w.ms < WAIT_MS / 2);
    assert_true(w.l->n >= 1);
    assert_int_equal(w.l->events[0].kind, ANVIL_EVENT_JOB_SUBMITTED);
    assert_string_equal(w.l->events[0].job_id, id);
    assert_true(w.l->events[0].seq > w.after);
    anvil_event_list_free(w.l);
    free(id);
}

// ---- retries through the SDK ----

static void
test_retry_of_a_failed_job_runs_it_again_keeping_its_attempts(void **state)
{
    struct fx            *f   = *state;
    struct anvil_job_opts o   = { .retry.max_attempts = 1 };
    char                 *id  = submit(f, "Flaky", &o);
    struct anvil_job     *job = wait_job(f, id);
    assert_int_equal(job->state, ANVIL_JOB_FAILED);
    assert_int_equal(job->attempt, 1);
    anvil_job_free(job);

    atomic_store(&flaky_ok, true);
    struct anvil_error err = { 0, "" };
    job                    = NULL;
    assert_int_equal(anvil_job_retry(f->h.client, id, 2, &job, &err), 0);
    assert_string_equal(job->id, id);
    assert_false(anvil_job_state_final(job->state));
    anvil_job_free(job);
    job = wait_job(f, id);
    assert_int_equal(job->state, ANVIL_JOB_SUCCEEDED);
    assert_int_equal(job->attempt, 2);
    anvil_job_free(job);

    struct anvil_event_list *l = events_of(f, id, NULL);
    int failed                 = find_kind(l, 0, ANVIL_EVENT_JOB_FAILED, id);
    int again                  = find_kind(l, 0, ANVIL_EVENT_JOB_RETRIED, id);
    int done                   = find_kind(l, 0, ANVIL_EVENT_JOB_SUCCEEDED, id);
    assert_true(failed >= 0 && again > failed && done > again);
    anvil_event_list_free(l);
    free(id);
}

static void
test_retry_refuses_a_succeeded_job_and_an_unknown_id(void **state)
{
    struct fx *f  = *state;
    char      *id = submit(f, "Echo", NULL);
    anvil_job_free(wait_job(f, id));
    struct anvil_job  *job = NULL;
    struct anvil_error err = { 0, "" };
    assert_int_equal(anvil_job_retry(f->h.client, id, 0, &job, &err),
        ANVIL_FAILED_PRECONDITION);
    assert_null(job);
    assert_int_equal(anvil_job_retry(f->h.client, "j999999", 0, &job, &err),
        ANVIL_NOT_FOUND);
    assert_int_equal(anvil_workflow_retry(f->h.client, "w999999", NULL, &err),
        ANVIL_NOT_FOUND);
    free(id);
}

static void
test_retry_of_a_failed_workflow_runs_only_the_failed_steps(void **state)
{
    struct fx             *f    = *state;
    anvil_workflow_spec   *wf   = NULL;
    struct anvil_step_opts once = { .retry.max_attempts = 1 };
    assert_int_equal(anvil_workflow_spec_new(&wf, "retry", NULL), ANVIL_OK);
    assert_int_equal(
        anvil_workflow_spec_add_step(wf, "a", "Echo", "1", 1, NULL, NULL), 0);
    assert_int_equal(
        anvil_workflow_spec_add_step(wf, "b", "Flaky", "2", 1, &once, NULL), 0);
    assert_int_equal(
        anvil_workflow_spec_add_step(wf, "c", "Echo", "3", 1, NULL, NULL), 0);
    const char *chain[] = { "a", "b", "c" };
    assert_int_equal(anvil_workflow_spec_add_chain(wf, chain, 3, NULL), 0);
    char *id = NULL;
    assert_int_equal(
        anvil_workflow_submit(f->h.client, wf, &id, NULL, NULL), ANVIL_OK);
    anvil_workflow_spec_free(wf);
    struct anvil_workflow *w = NULL;
    assert_int_equal(
        anvil_workflow_wait(f->h.client, id, WAIT_MS, &w, NULL), ANVIL_OK);
    assert_int_equal(w->state, ANVIL_WORKFLOW_FAILED);
    anvil_workflow_free(w);
    assert_int_equal(atomic_load(&echo_runs), 1); // a only

    atomic_store(&flaky_ok, true);
    w = NULL;
    assert_int_equal(anvil_workflow_retry(f->h.client, id, &w, NULL), 0);
    assert_int_equal(w->state, ANVIL_WORKFLOW_RUNNING);
    anvil_workflow_free(w);
    assert_int_equal(
        anvil_workflow_wait(f->h.client, id, WAIT_MS, &w, NULL), ANVIL_OK);
    assert_int_equal(w->state, ANVIL_WORKFLOW_SUCCEEDED);
    assert_int_equal(anvil_workflow_find_step(w, "a")->attempt, 1);
    assert_int_equal(anvil_workflow_find_step(w, "b")->attempt, 2);
    anvil_workflow_free(w);
    assert_int_equal(atomic_load(&echo_runs), 2); // a did not run again

    struct anvil_event_list *l = events_of(f, NULL, id);
    assert_true(find_kind(l, 0, ANVIL_EVENT_WORKFLOW_RETRIED, NULL) > 0);
    anvil_event_list_free(l);
    free(id);
}

static void
test_get_by_key_finds_the_keyed_job(void **state)
{
    struct fx            *f   = *state;
    struct anvil_job_opts o   = { .idempotency_key = "order-7" };
    char                 *id  = submit(f, "Echo", &o);
    struct anvil_job     *job = NULL;
    assert_int_equal(
        anvil_job_get_by_key(f->h.client, "order-7", &job, NULL), ANVIL_OK);
    assert_string_equal(job->id, id);
    anvil_job_free(job);
    assert_int_equal(
        anvil_job_get_by_key(f->h.client, "nope", &job, NULL), ANVIL_NOT_FOUND);
    free(id);
}

static void
test_a_reader_token_cannot_retry(void **state)
{
    struct fx *f      = *state;
    char      *secret = NULL;
    assert_int_equal(anvil_token_create(f->h.client, ANVIL_ROLE_READER, "r", 0,
                         NULL, &secret, NULL),
        ANVIL_OK);
    anvil_client *reader = NULL;
    assert_int_equal(anvil_client_open(&reader, f->h.url, NULL), ANVIL_OK);
    assert_int_equal(anvil_client_set_token(reader, secret, NULL), ANVIL_OK);
    anvil_free(secret);
    struct anvil_error err = { 0, "" };
    assert_int_equal(
        anvil_job_retry(reader, "j1", 0, NULL, &err), ANVIL_PERMISSION_DENIED);
    assert_int_equal(anvil_workflow_retry(reader, "w1", NULL, &err),
        ANVIL_PERMISSION_DENIED);
    anvil_client_close(reader);
}

// ---- the anvil binary ----

struct run {
    int   status;
    char *out;
    char *err;
};

// Runs anvil --server URL args... to completion.
static void
run_cli(struct fx *f, struct run *r, const char *const *args)
{
    const char *argv[32] = { ANVIL_BIN_DIR "/anvil", "--server", f->h.url };
    int         n        = 3;
    for (; args[n - 3] != NULL && n < 31; n++)
        argv[n] = args[n - 3];
    argv[n]   = NULL;
    pid_t pid = harness_spawn(&f->h, "anvil", (char *const *) argv);
    assert_true(pid > 0);
    int st    = harness_wait_exit(pid, WAIT_MS);
    r->status = st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r->out    = harness_read_file(harness_proc_out(&f->h, pid), NULL);
    assert_non_null(r->out);
}

static void
test_cli_events_prints_a_jobs_events_and_retry_reports(void **state)
{
    struct fx            *f  = *state;
    struct anvil_job_opts o  = { .retry.max_attempts = 1 };
    char                 *id = submit(f, "Flaky", &o);
    anvil_job_free(wait_job(f, id));

    struct run r;
    run_cli(f, &r,
        (const char *[]) { "events", "--since", "0", "--job", id, NULL });
    assert_int_equal(r.status, 0);
    char want[64];
    snprintf(want, sizeof(want), " job.failed %s ", id);
    assert_non_null(strstr(r.out, want));
    assert_non_null(strstr(r.out, ": not yet\n"));
    free(r.out);

    atomic_store(&flaky_ok, true);
    run_cli(f, &r, (const char *[]) { "retry", id, "--json", NULL });
    assert_int_equal(r.status, 0);
    json_t *j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "id")), id);
    json_decref(j);
    free(r.out);
    anvil_job_free(wait_job(f, id));

    // A SUCCEEDED job: exit 1, FAILED_PRECONDITION on stderr.
    run_cli(f, &r, (const char *[]) { "retry", id, NULL });
    assert_int_equal(r.status, 1);
    free(r.out);
    free(id);
}

// The job ids of the job.submitted lines of a --json events file, and
// every seq it printed, in order; the seq of its last whole line.
struct printed {
    uint64_t seqs[256];
    size_t   n;
    char     jobs[64][24];
    size_t   n_jobs;
};

static void
read_printed(const char *path, struct printed *p)
{
    char *text = harness_read_file(path, NULL);
    assert_non_null(text);
    char *line = text;
    char *nl;
    while ((nl = strchr(line, '\n')) != NULL) { // whole lines only
        *nl       = '\0';
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        assert_true(p->n < 256);
        p->seqs[p->n++]
            = (uint64_t) json_integer_value(json_object_get(j, "seq"));
        const char *kind = json_string_value(json_object_get(j, "kind"));
        if (strcmp(kind, "job.submitted") == 0 && p->n_jobs < 64)
            snprintf(p->jobs[p->n_jobs++], 24, "%s",
                json_string_value(json_object_get(j, "job_id")));
        json_decref(j);
        line = nl + 1;
    }
    free(text);
}

struct saw {
    const char *path;
    char       *ids[3];
};

static bool
saw_all(void *arg)
{
    struct saw *s    = arg;
    char       *text = harness_read_file(s->path, NULL);
    bool        all  = text != NULL;
    for (int i = 0; all && i < 3; i++) {
        char want[48];
        snprintf(want, sizeof(want), "\"job_id\": \"%s\"", s->ids[i]);
        char want2[48];
        snprintf(want2, sizeof(want2), "\"job_id\":\"%s\"", s->ids[i]);
        all = strstr(text, want) != NULL || strstr(text, want2) != NULL;
    }
    free(text);
    return all;
}

// Starts a follower after seq since, submits three jobs to a queue nobody
// serves, and returns once it printed their events; ids get the jobs.
static pid_t
follow_three(struct fx *f, uint64_t since, char **ids)
{
    char s[24];
    snprintf(s, sizeof(s), "%llu", (unsigned long long) since);
    const char *argv[] = { ANVIL_BIN_DIR "/anvil", "--server", f->h.url,
        "events", "--follow", "--since", s, "--json", NULL };
    pid_t       pid    = harness_spawn(&f->h, "anvil", (char *const *) argv);
    assert_true(pid > 0);
    struct anvil_job_opts o = { .queue = "nobody" };
    for (int i = 0; i < 3; i++)
        ids[i] = submit(f, "Echo", &o);
    struct saw sw
        = { harness_proc_out(&f->h, pid), { ids[0], ids[1], ids[2] } };
    assert_true(harness_wait_for(saw_all, &sw, WAIT_MS));
    return pid;
}

static void
test_cli_follow_since_sees_every_event_once_across_a_restart(void **state)
{
    struct fx           *f = *state;
    struct anvil_health *h = NULL;
    assert_int_equal(anvil_health_get(f->h.client, &h, NULL), ANVIL_OK);
    uint64_t start = h->last_event_seq;
    anvil_health_free(h);

    char          *ids[6];
    struct printed p1 = { .n = 0 }, p2 = { .n = 0 };
    pid_t          one = follow_three(f, start, ids);
    // Killed hard: whatever it printed whole is what it saw.
    assert_true(harness_kill(one, SIGKILL) != -1);
    read_printed(harness_proc_out(&f->h, one), &p1);
    assert_true(p1.n >= 3);
    // Jobs submitted while no consumer runs are not lost either.
    struct anvil_job_opts o   = { .queue = "nobody" };
    char                 *gap = submit(f, "Echo", &o);

    pid_t two = follow_three(f, p1.seqs[p1.n - 1], ids + 3);
    int   st  = harness_kill(two, SIGTERM);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0); // a clean stop
    read_printed(harness_proc_out(&f->h, two), &p2);

    // No duplicate: seqs only grow, across both runs.
    uint64_t last = start;
    for (size_t i = 0; i < p1.n; i++) {
        assert_true(p1.seqs[i] > last);
        last = p1.seqs[i];
    }
    for (size_t i = 0; i < p2.n; i++) {
        assert_true(p2.seqs[i] > last);
        last = p2.seqs[i];
    }
    // No gap: each job's submit was printed exactly once.
    const char *all[7]
        = { ids[0], ids[1], ids[2], gap, ids[3], ids[4], ids[5] };
    for (int k = 0; k < 7; k++) {
        int times = 0;
        for (size_t i = 0; i < p1.n_jobs; i++)
            times += strcmp(p1.jobs[i], all[k]) == 0;
        for (size_t i = 0; i < p2.n_jobs; i++)
            times += strcmp(p2.jobs[i], all[k]) == 0;
        assert_int_equal(times, 1);
    }
    for (int k = 0; k < 6; k++)
        free(ids[k]);
    free(gap);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_a_jobs_events_come_in_order_with_increasing_seq),
        T(test_a_workflows_events_include_its_steps),
        T(test_a_job_filter_answers_only_that_jobs_events),
        T(test_a_watch_returns_as_soon_as_an_event_is_written),
        T(test_retry_of_a_failed_job_runs_it_again_keeping_its_attempts),
        T(test_retry_refuses_a_succeeded_job_and_an_unknown_id),
        T(test_retry_of_a_failed_workflow_runs_only_the_failed_steps),
        T(test_get_by_key_finds_the_keyed_job),
        T(test_cli_events_prints_a_jobs_events_and_retry_reports),
        T(test_cli_follow_since_sees_every_event_once_across_a_restart),
        cmocka_unit_test_setup_teardown(
            test_a_reader_token_cannot_retry, setup_auth, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
