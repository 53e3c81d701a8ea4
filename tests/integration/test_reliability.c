// test_reliability.c - what keeps a job running through failures, against
// a real server: leases of killed workers, retries with backoff, attempt
// timeouts, cancellation, fencing tokens, idempotency keys, delayed jobs,
// priorities, anvil-worker's SIGTERM drain and the retention sweep.
//
// The binary doubles as a worker process: run as
// `test_reliability --helper-worker URL NAME` it serves the job type "slow"
// with a 200 ms heartbeat until SIGTERM, so a test can SIGKILL a worker
// holding a short lease (anvil-worker heartbeats every 5 s, too seldom for
// a 1 s lease).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../harness.h"
#include "anvil/v1/anvil.pb-c.h"
#include "client_impl.h"
#include "util/clock.h"

#define WAIT_MS 30000
#define HELPER_FLAG "--helper-worker"
#define MAX_CALLS 64

// One handler call, as the handler saw it.
struct call {
    char     id[32];
    char     payload[32];
    uint32_t attempt;
    int64_t  mono_ms;  // when the handler started
    int64_t  wall_ms;  // the same, in Unix epoch ms
    bool     returned; // the handler has returned
    bool     canceled; // anvil_job_ctx_is_canceled() when it returned
    bool     slept;    // anvil_job_ctx_sleep() slept its full time
};

// Handler calls of the current test, written on slot threads and read by
// the test thread; mu guards every field. `open` releases the handlers
// that block until the test lets them go.
static struct {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    struct call     calls[MAX_CALLS];
    int             n;
    bool            open;
} rec;

// Child processes this file starts itself (the helper workers).
static pid_t helpers[4];
static int   n_helpers;

static int
rec_add(const struct anvil_lease *l)
{
    int i;

    pthread_mutex_lock(&rec.mu);
    i = rec.n < MAX_CALLS ? rec.n++ : MAX_CALLS - 1;
    memset(&rec.calls[i], 0, sizeof(rec.calls[i]));
    snprintf(rec.calls[i].id, sizeof(rec.calls[i].id), "%s", l->job.id);
    snprintf(rec.calls[i].payload, sizeof(rec.calls[i].payload), "%.*s",
        (int) l->job.payload_len, (const char *) l->job.payload);
    rec.calls[i].attempt = l->job.attempt;
    rec.calls[i].mono_ms = av_mono_ms();
    rec.calls[i].wall_ms = av_now_ms();
    pthread_cond_broadcast(&rec.cv);
    pthread_mutex_unlock(&rec.mu);
    return i;
}

static void
rec_return(int i, bool canceled, bool slept)
{
    pthread_mutex_lock(&rec.mu);
    rec.calls[i].returned = true;
    rec.calls[i].canceled = canceled;
    rec.calls[i].slept    = slept;
    pthread_cond_broadcast(&rec.cv);
    pthread_mutex_unlock(&rec.mu);
}

static struct call
rec_get(int i)
{
    struct call c;

    pthread_mutex_lock(&rec.mu);
    c = rec.calls[i];
    pthread_mutex_unlock(&rec.mu);
    return c;
}

static int
rec_count(void)
{
    int n;

    pthread_mutex_lock(&rec.mu);
    n = rec.n;
    pthread_mutex_unlock(&rec.mu);
    return n;
}

static bool
rec_started(void *arg)
{
    return rec_count() >= *(int *) arg;
}

static bool
rec_first_returned(void *arg)
{
    (void) arg;
    return rec_count() > 0 && rec_get(0).returned;
}

static void
rec_release(void)
{
    pthread_mutex_lock(&rec.mu);
    rec.open = true;
    pthread_cond_broadcast(&rec.cv);
    pthread_mutex_unlock(&rec.mu);
}

// ---- handlers ----

// Returns the payload as the result.
static int
echo_handler(void *arg, const struct anvil_lease *l, struct anvil_job_ctx *ctx)
{
    int i = rec_add(l);

    (void) arg;
    rec_return(i, false, false);
    return anvil_job_ctx_set_result(ctx, l->job.payload, l->job.payload_len);
}

// Fails (retryably) every attempt but the job's last one.
static int
flaky_handler(void *arg, const struct anvil_lease *l, struct anvil_job_ctx *ctx)
{
    int i = rec_add(l);

    (void) arg;
    rec_return(i, false, false);
    if (l->job.attempt < l->job.retry.max_attempts) {
        anvil_job_ctx_set_error(ctx, true, "flaky attempt %u", l->job.attempt);
        return ANVIL_UNAVAILABLE;
    }
    return anvil_job_ctx_set_result(ctx, "ok", 2);
}

static int
always_fail_handler(
    void *arg, const struct anvil_lease *l, struct anvil_job_ctx *ctx)
{
    int i = rec_add(l);

    (void) arg;
    rec_return(i, false, false);
    anvil_job_ctx_set_error(
        ctx, true, "still broken at attempt %u", l->job.attempt);
    return ANVIL_INTERNAL;
}

static int
fatal_handler(void *arg, const struct anvil_lease *l, struct anvil_job_ctx *ctx)
{
    int i = rec_add(l);

    (void) arg;
    rec_return(i, false, false);
    anvil_job_ctx_set_error(ctx, false, "payload is unusable");
    return ANVIL_INVALID_ARGUMENT;
}

// Ignores its deadline and cancellation: blocks until the test releases it
// (at most 10 s), then succeeds.
static int
stubborn_handler(
    void *arg, const struct anvil_lease *l, struct anvil_job_ctx *ctx)
{
    int     i        = rec_add(l);
    int64_t deadline = av_mono_ms() + 10000;

    (void) arg;
    pthread_mutex_lock(&rec.mu);
    while (!rec.open && av_mono_ms() < deadline) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&rec.cv, &rec.mu, &ts);
    }
    pthread_mutex_unlock(&rec.mu);
    rec_return(i, anvil_job_ctx_is_canceled(ctx), false);
    return anvil_job_ctx_set_result(ctx, "late", 4);
}

// Sleeps 20 s the cooperative way, waking when cancelled or timed out.
static int
sleepy_handler(
    void *arg, const struct anvil_lease *l, struct anvil_job_ctx *ctx)
{
    int  i     = rec_add(l);
    bool slept = anvil_job_ctx_sleep(ctx, 20000);

    (void) arg;
    rec_return(i, anvil_job_ctx_is_canceled(ctx), slept);
    if (!slept) {
        anvil_job_ctx_set_error(ctx, true, "stopped early");
        return ANVIL_CANCELLED;
    }
    return anvil_job_ctx_set_result(ctx, "slept", 5);
}

// ---- setup, helpers ----

static int
setup_state(void)
{
    memset(&rec, 0, sizeof(rec));
    pthread_mutex_init(&rec.mu, NULL);
    pthread_cond_init(&rec.cv, NULL);
    n_helpers = 0;
    return 0;
}

static int
start_with(void **state, const struct server_config *cfg)
{
    struct harness *h = calloc(1, sizeof(*h));

    setup_state();
    if (h == NULL || harness_start_with(h, cfg) != 0) {
        if (h != NULL)
            harness_stop(h);
        free(h);
        return -1;
    }
    *state = h;
    return 0;
}

static int
setup(void **state)
{
    return start_with(state, NULL);
}

// A server whose leases last 1 s.
static int
setup_short_lease(void **state)
{
    struct server_config cfg;

    server_config_init(&cfg);
    cfg.lease_ms = 1000;
    return start_with(state, &cfg);
}

// A server whose leases outlast anvil-worker's 5 s heartbeat, but not by
// much, so a job of a vanished anvil-worker runs again soon.
static int
setup_worker_lease(void **state)
{
    struct server_config cfg;

    server_config_init(&cfg);
    cfg.lease_ms = 7000;
    return start_with(state, &cfg);
}

static int
setup_retention(void **state)
{
    struct server_config cfg;

    server_config_init(&cfg);
    cfg.retention_ms = 200;
    return start_with(state, &cfg);
}

static int
setup_long_retention(void **state)
{
    struct server_config cfg;

    server_config_init(&cfg);
    cfg.retention_ms = 3600 * 1000;
    return start_with(state, &cfg);
}

static int
teardown(void **state)
{
    struct harness *h = *state;
    int             rv;

    rec_release(); // a failed test must not leave a handler blocked
    for (int i = 0; i < n_helpers; i++) {
        if (helpers[i] > 0)
            harness_kill(helpers[i], SIGKILL);
    }
    n_helpers = 0;
    rv        = harness_stop(h);
    free(h);
    pthread_cond_destroy(&rec.cv);
    pthread_mutex_destroy(&rec.mu);
    return rv;
}

// Starts an in-process worker with a 200 ms heartbeat (the harness's
// workers beat every second) on h->url for one job type.
static anvil_worker *
start_fast_worker(struct harness *h, const char *type, anvil_handler_fn fn)
{
    struct anvil_worker_opts opts = { 0 };
    struct anvil_error       err  = { 0 };
    anvil_worker            *w    = NULL;
    int                      rv;

    opts.url          = h->url;
    opts.name         = "fast";
    opts.poll_wait_ms = 500;
    opts.heartbeat_ms = 100;
    rv                = anvil_worker_new(&w, &opts, &err);
    if (rv == ANVIL_OK)
        rv = anvil_worker_add_handler(w, type, fn, NULL, &err);
    if (rv == ANVIL_OK)
        rv = anvil_worker_start(w, &err);
    if (rv != ANVIL_OK)
        print_error("worker: %s: %s\n", anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
    assert_true(h->n_workers < HARNESS_MAX_WORKERS);
    h->workers[h->n_workers++] = w; // harness_stop() stops and frees it
    return w;
}

static char *
submit_opts(struct harness *h, const char *type, const char *payload,
    const struct anvil_job_opts *opts)
{
    struct anvil_error err = { 0 };
    char              *id  = NULL;
    int                rv  = anvil_job_submit(
                        h->client, type, payload, strlen(payload), opts, &id, NULL, &err);

    if (rv != ANVIL_OK)
        print_error("submit %s: %s: %s\n", type, anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
    assert_non_null(id);
    return id;
}

static char *
submit(struct harness *h, const char *type, const char *payload)
{
    return submit_opts(h, type, payload, NULL);
}

// Waits for the job to end; asserts it ended in `state` and returns it.
static struct anvil_job *
wait_final(struct harness *h, const char *id, enum anvil_job_state state)
{
    struct anvil_error err = { 0 };
    struct anvil_job  *job = NULL;
    int                rv  = anvil_job_wait(h->client, id, WAIT_MS, &job, &err);

    if (rv != ANVIL_OK)
        print_error("wait %s: %s: %s\n", id, anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
    if (job->state != state)
        print_error("job %s is %s at attempt %u (error \"%s\"), expected %s\n",
            id, anvil_job_state_name(job->state), job->attempt, job->error,
            anvil_job_state_name(state));
    assert_int_equal(job->state, state);
    return job;
}

static struct anvil_job *
get_job(struct harness *h, const char *id)
{
    struct anvil_job *job = NULL;

    assert_int_equal(anvil_job_get(h->client, id, &job, NULL), ANVIL_OK);
    return job;
}

// What harness_wait_for() polls: the job `id` until pred holds for it.
struct probe {
    struct harness      *h;
    const char          *id;
    enum anvil_job_state state;
    const char          *worker; // NULL = any
    struct anvil_job    *job;    // the last one fetched; probe_fini frees it
    bool (*pred)(const struct probe *p);
};

static bool
in_state(const struct probe *p)
{
    return p->job->state == p->state
        && (p->worker == NULL || strcmp(p->job->worker_id, p->worker) == 0);
}

static bool
left_state(const struct probe *p)
{
    return p->job->state != p->state;
}

static bool
probe_job(void *arg)
{
    struct probe *p = arg;

    anvil_job_free(p->job);
    p->job = NULL;
    if (anvil_job_get(p->h->client, p->id, &p->job, NULL) != ANVIL_OK)
        return false;
    return p->pred(p);
}

// Waits until the job is in `state` (on `worker`, if not NULL).
static void
wait_state(struct harness *h, const char *id, enum anvil_job_state state,
    const char *worker)
{
    struct probe p  = { h, id, state, worker, NULL, in_state };
    bool         ok = harness_wait_for(probe_job, &p, WAIT_MS);

    if (!ok)
        print_error(
            "job %s never became %s\n", id, anvil_job_state_name(state));
    anvil_job_free(p.job);
    assert_true(ok);
}

// Waits until the job leaves `state`; returns the job as it is then.
static struct anvil_job *
wait_leaves(struct harness *h, const char *id, enum anvil_job_state state)
{
    struct probe p = { h, id, state, NULL, NULL, left_state };

    assert_true(harness_wait_for(probe_job, &p, WAIT_MS));
    return p.job;
}

// Forks and execs this binary as a helper worker named `name`.
static pid_t
spawn_helper(struct harness *h, const char *name)
{
    char  out[160];
    char  url[160];
    char *argv[]
        = { "test_reliability", HELPER_FLAG, url, (char *) name, NULL };
    pid_t pid;

    snprintf(url, sizeof(url), "%s", h->url);
    harness_path(h, "helper.log", out, sizeof(out));
    assert_true(n_helpers < 4);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0600);

        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    helpers[n_helpers++] = pid;
    return pid;
}

// SIGKILLs and reaps a helper; forgets its pid, which may be reused.
static int
kill_helper(pid_t pid)
{
    for (int i = 0; i < n_helpers; i++) {
        if (helpers[i] == pid)
            helpers[i] = 0;
    }
    return harness_kill(pid, SIGKILL);
}

// ---- a worker killed with SIGKILL ----

static void
test_a_job_of_a_worker_killed_with_sigkill_runs_again_after_its_lease(
    void **state)
{
    struct harness                *h   = *state;
    pid_t                          pid = spawn_helper(h, "helper-a");
    char                          *id  = submit(h, "slow", "payload-1");
    struct anvil_job              *job;
    struct anvil_lease_ref         ref = { .job_id = id, .token = 1 };
    struct anvil_heartbeat_result *hb  = NULL;
    int                            status;

    wait_state(h, id, ANVIL_JOB_RUNNING, "helper-a");
    status = kill_helper(pid);
    assert_true(status != -1 && WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    // Nobody heartbeats: the lease expires and attempt 1 fails with it.
    job = wait_leaves(h, id, ANVIL_JOB_RUNNING);
    assert_true(
        job->state == ANVIL_JOB_SCHEDULED || job->state == ANVIL_JOB_QUEUED);
    assert_int_equal(job->attempt, 1);
    assert_string_equal(job->error, "lease expired");
    anvil_job_free(job);

    // The dead worker's token no longer holds the job.
    assert_int_equal(
        anvil_lease_heartbeat(h->client, "helper-a", &ref, 1, &hb, NULL),
        ANVIL_OK);
    assert_int_equal(hb->n_lost, 1);
    assert_string_equal(hb->lost[0], id);
    assert_int_equal(hb->n_canceled, 0);
    anvil_heartbeat_result_free(hb);

    start_fast_worker(h, "slow", echo_handler);
    job = wait_final(h, id, ANVIL_JOB_SUCCEEDED);
    assert_int_equal(job->attempt, 2);
    assert_string_equal(job->worker_id, "fast");
    assert_int_equal(job->result_len, 9);
    assert_memory_equal(job->result, "payload-1", 9);
    anvil_job_free(job);
    assert_int_equal(rec_count(), 1);
    assert_int_equal(rec_get(0).attempt, 2);
    anvil_free(id);
}

// ---- retries and backoff ----

// Asserts the gap between handler calls i-1 and i lies in [lo, hi] ms.
static void
assert_gap(int i, int64_t lo, int64_t hi)
{
    int64_t gap = rec_get(i).mono_ms - rec_get(i - 1).mono_ms;

    if (gap < lo || gap > hi)
        print_error("attempt %d came %lld ms after attempt %d; expected "
                    "%lld..%lld\n",
            i + 1, (long long) gap, i, (long long) lo, (long long) hi);
    assert_true(gap >= lo && gap <= hi);
}

static void
test_a_job_failing_twice_succeeds_on_attempt_3_after_default_backoff(
    void **state)
{
    struct harness   *h = *state;
    char             *id;
    struct anvil_job *job;

    assert_non_null(harness_start_worker(
        h, 1, "flaky", flaky_handler, (void *) NULL, (const char *) NULL));
    id  = submit(h, "flaky", "{}"); // default: 3 attempts
    job = wait_final(h, id, ANVIL_JOB_SUCCEEDED);
    assert_int_equal(job->attempt, 3);
    assert_int_equal(job->retry.max_attempts, 3);
    assert_int_equal(job->result_len, 2);
    assert_memory_equal(job->result, "ok", 2);
    anvil_job_free(job);

    assert_int_equal(rec_count(), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rec_get(i).attempt, (uint32_t) i + 1);
    // 1000 ms then 2000 ms, each with jitter 0.8..1.2; the upper bounds
    // leave room for a slow machine.
    assert_gap(1, 800, 1200 + 1000);
    assert_gap(2, 1600, 2400 + 1000);
    anvil_free(id);
}

static void
test_a_job_that_always_fails_ends_failed_after_max_attempts(void **state)
{
    struct harness       *h    = *state;
    struct anvil_job_opts opts = { .retry.max_attempts = 2 };
    char                 *id;
    struct anvil_job     *job;

    assert_non_null(harness_start_worker(h, 1, "broken", always_fail_handler,
        (void *) NULL, (const char *) NULL));
    id  = submit_opts(h, "broken", "{}", &opts);
    job = wait_final(h, id, ANVIL_JOB_FAILED);
    assert_int_equal(job->attempt, 2);
    assert_string_equal(job->error, "still broken at attempt 2");
    assert_int_equal(job->result_len, 0);
    anvil_job_free(job);
    assert_int_equal(rec_count(), 2);
    anvil_free(id);
}

static void
test_a_non_retryable_failure_ends_failed_at_attempt_1(void **state)
{
    struct harness   *h = *state;
    char             *id;
    struct anvil_job *job;

    assert_non_null(harness_start_worker(
        h, 1, "fatal", fatal_handler, (void *) NULL, (const char *) NULL));
    id  = submit(h, "fatal", "{}");
    job = wait_final(h, id, ANVIL_JOB_FAILED);
    assert_int_equal(job->attempt, 1);
    assert_int_equal(job->retry.max_attempts, 3);
    assert_string_equal(job->error, "payload is unusable");
    anvil_job_free(job);
    assert_int_equal(rec_count(), 1);
    anvil_free(id);
}

// Submits through client_call(), to set the backoff fields anvil.h does not
// carry yet. Returns the reply's code; *id_out is the caller's (free()).
static int
submit_raw(
    struct harness *h, const Anvil__V1__SubmitJobRequest *req, char **id_out)
{
    Anvil__V1__SubmitJobResponse *rep = NULL;
    struct anvil_error            err = { 0 };
    int                           rc;

    *id_out = NULL;
    rc      = client_call(h->client, "SubmitJob", &req->base, 0,
             (ProtobufCMessage **) &rep, &err);
    if (rc == ANVIL_OK) {
        *id_out = strdup(rep->id);
        client_free_reply(&rep->base);
    }
    return rc;
}

static void
test_a_job_retries_after_its_own_backoff_policy(void **state)
{
    struct harness             *h   = *state;
    Anvil__V1__SubmitJobRequest req = ANVIL__V1__SUBMIT_JOB_REQUEST__INIT;
    char                       *id  = NULL;
    struct anvil_job           *job;

    req.type               = "flaky";
    req.max_attempts       = 4;
    req.initial_backoff_ms = 100;
    req.backoff_multiplier = 3;
    req.max_backoff_ms     = 250;
    // Bad policies are refused, naming the field.
    req.backoff_multiplier = 101;
    assert_int_equal(submit_raw(h, &req, &id), ANVIL_INVALID_ARGUMENT);
    req.backoff_multiplier = 3;
    req.initial_backoff_ms = -1;
    assert_int_equal(submit_raw(h, &req, &id), ANVIL_INVALID_ARGUMENT);
    req.initial_backoff_ms = 100;

    assert_non_null(harness_start_worker(
        h, 1, "flaky", flaky_handler, (void *) NULL, (const char *) NULL));
    assert_int_equal(submit_raw(h, &req, &id), ANVIL_OK);
    job = wait_final(h, id, ANVIL_JOB_SUCCEEDED);
    assert_int_equal(job->attempt, 4);
    anvil_job_free(job);
    assert_int_equal(rec_count(), 4);
    // 100 ms, then 300 and 900 capped at 250, each with jitter 0.8..1.2.
    assert_gap(1, 80, 120 + 800);
    assert_gap(2, 200, 300 + 800);
    assert_gap(3, 200, 300 + 800);
    free(id);
}

// ---- timeouts and cancellation ----

static void
test_a_job_over_its_timeout_fails_though_its_handler_ignores_it(void **state)
{
    struct harness       *h    = *state;
    struct anvil_job_opts opts = { .retry.max_attempts = 1, .timeout_ms = 300 };
    int64_t               t0   = av_mono_ms();
    char                 *id;
    struct anvil_job     *job;
    anvil_worker         *w;

    w = harness_start_worker(
        h, 1, "stubborn", stubborn_handler, (void *) NULL, (const char *) NULL);
    assert_non_null(w);
    id  = submit_opts(h, "stubborn", "{}", &opts);
    job = wait_final(h, id, ANVIL_JOB_FAILED);
    // Well before the handler's own end (10 s, or when released).
    assert_true(av_mono_ms() - t0 < 3000);
    assert_int_equal(job->attempt, 1);
    assert_non_null(strstr(job->error, "timed out"));
    assert_non_null(strstr(job->error, "300 ms"));
    anvil_job_free(job);

    // The handler's late success, reported before the worker stops,
    // changes nothing.
    rec_release();
    harness_stop_worker(h, w);
    assert_true(rec_first_returned(NULL));
    job = get_job(h, id);
    assert_int_equal(job->state, ANVIL_JOB_FAILED);
    assert_int_equal(job->result_len, 0);
    anvil_job_free(job);
    assert_int_equal(rec_count(), 1); // one attempt only
    anvil_free(id);
}

static void
test_a_handler_sleeping_on_its_ctx_wakes_at_the_job_timeout(void **state)
{
    struct harness       *h    = *state;
    struct anvil_job_opts opts = { .retry.max_attempts = 1, .timeout_ms = 300 };
    char                 *id;
    struct anvil_job     *job;
    struct call           c;

    assert_non_null(harness_start_worker(
        h, 1, "sleepy", sleepy_handler, (void *) NULL, (const char *) NULL));
    id  = submit_opts(h, "sleepy", "{}", &opts);
    job = wait_final(h, id, ANVIL_JOB_FAILED);
    assert_int_equal(job->attempt, 1);
    anvil_job_free(job);
    assert_true(harness_wait_for(rec_first_returned, NULL, WAIT_MS));
    c = rec_get(0);
    assert_false(c.slept);
    assert_true(c.canceled);
    anvil_free(id);
}

static void
test_cancelling_a_running_job_stops_its_handler(void **state)
{
    struct harness    *h   = *state;
    int                one = 1;
    char              *id;
    struct anvil_job  *job = NULL;
    struct anvil_error err = { 0 };
    int64_t            t0;

    start_fast_worker(h, "sleepy", sleepy_handler);
    id = submit(h, "sleepy", "{}");
    assert_true(harness_wait_for(rec_started, &one, WAIT_MS));
    wait_state(h, id, ANVIL_JOB_RUNNING, NULL);

    t0 = av_mono_ms();
    assert_int_equal(anvil_job_cancel(h->client, id, &job, &err), ANVIL_OK);
    assert_true(
        job->state == ANVIL_JOB_RUNNING || job->state == ANVIL_JOB_CANCELED);
    anvil_job_free(job);
    job = wait_final(h, id, ANVIL_JOB_CANCELED);
    assert_true(av_mono_ms() - t0 < 5000); // not the handler's 20 s
    assert_int_equal(job->attempt, 1);
    anvil_job_free(job);
    assert_true(harness_wait_for(rec_first_returned, NULL, WAIT_MS));
    assert_true(rec_get(0).canceled);
    assert_false(rec_get(0).slept);

    // Cancelling again is no error; an unknown id is.
    assert_int_equal(anvil_job_cancel(h->client, id, NULL, NULL), ANVIL_OK);
    assert_int_equal(
        anvil_job_cancel(h->client, "j999999", NULL, &err), ANVIL_NOT_FOUND);
    anvil_free(id);
}

// ---- fencing tokens ----

// Polls for the "manual" job as worker "tester"; returns its lease token.
static uint32_t
lease_manual(struct harness *h, const char *id)
{
    const char              *types[] = { "manual" };
    struct anvil_poll_req    req     = { .worker_id = "tester",
               .types                               = types,
               .n_types                             = 1,
               .max_jobs                            = 1,
               .wait_ms                             = 5000 };
    struct anvil_lease_list *leases  = NULL;
    uint32_t                 token;

    assert_int_equal(
        anvil_lease_poll(h->client, &req, &leases, NULL), ANVIL_OK);
    assert_int_equal(leases->n, 1);
    const struct anvil_lease *l = &leases->leases[0];
    assert_string_equal(l->job.id, id);
    assert_int_equal(l->token, l->job.attempt);
    token = l->token;
    anvil_lease_list_free(leases);
    return token;
}

static void
test_a_stale_token_is_refused_and_a_repeated_complete_changes_nothing(
    void **state)
{
    struct harness      *h   = *state;
    char                *id  = submit(h, "manual", "{}");
    struct anvil_error   err = { 0 };
    struct anvil_job    *job;
    enum anvil_job_state st = ANVIL_JOB_UNSPECIFIED;

    assert_int_equal(lease_manual(h, id), 1);
    assert_int_equal(
        anvil_job_fail(h->client, id, 1, "first try", true, &st, NULL),
        ANVIL_OK);
    assert_int_equal(st, ANVIL_JOB_SCHEDULED);
    assert_int_equal(lease_manual(h, id), 2); // after the 1 s backoff

    // Attempt 1's token no longer holds the job.
    assert_int_equal(anvil_job_complete(h->client, id, 1, "stale", 5, &err),
        ANVIL_FAILED_PRECONDITION);
    job = get_job(h, id);
    assert_int_equal(job->state, ANVIL_JOB_RUNNING);
    assert_int_equal(job->attempt, 2);
    assert_int_equal(job->result_len, 0);
    anvil_job_free(job);

    assert_int_equal(
        anvil_job_complete(h->client, id, 2, "fresh", 5, NULL), ANVIL_OK);
    // The same lease completing again: OK, and the first result stays.
    assert_int_equal(
        anvil_job_complete(h->client, id, 2, "again", 5, NULL), ANVIL_OK);
    assert_int_equal(anvil_job_fail(h->client, id, 1, "late", true, NULL, NULL),
        ANVIL_FAILED_PRECONDITION);
    assert_int_equal(anvil_job_complete(h->client, id, 3, "future", 6, NULL),
        ANVIL_FAILED_PRECONDITION);
    job = get_job(h, id);
    assert_int_equal(job->state, ANVIL_JOB_SUCCEEDED);
    assert_int_equal(job->attempt, 2);
    assert_int_equal(job->result_len, 5);
    assert_memory_equal(job->result, "fresh", 5);
    anvil_job_free(job);
    assert_int_equal(anvil_job_complete(h->client, "j999999", 1, "x", 1, NULL),
        ANVIL_NOT_FOUND);
    anvil_free(id);
}

// ---- idempotency ----

static size_t
count_jobs(struct harness *h)
{
    struct anvil_job_filter f    = { .limit = 100 };
    struct anvil_job_list  *list = NULL;
    size_t                  n;

    assert_int_equal(anvil_job_list(h->client, &f, &list, NULL), ANVIL_OK);
    n = list->n;
    anvil_job_list_free(list);
    return n;
}

static void
test_a_second_submit_with_the_same_key_returns_the_first_job(void **state)
{
    struct harness       *h    = *state;
    struct anvil_job_opts opts = { .idempotency_key = "order-42" };
    char                 *id1 = NULL, *id2 = NULL, *id3 = NULL;
    bool                  existed = true;
    struct anvil_job     *job;

    assert_int_equal(anvil_job_submit(h->client, "idem", "one", 3, &opts, &id1,
                         &existed, NULL),
        ANVIL_OK);
    assert_false(existed);
    assert_int_equal(anvil_job_submit(h->client, "idem", "two", 3, &opts, &id2,
                         &existed, NULL),
        ANVIL_OK);
    assert_true(existed);
    assert_string_equal(id1, id2);
    assert_int_equal(count_jobs(h), 1);
    job = get_job(h, id1);
    assert_int_equal(job->payload_len, 3);
    assert_memory_equal(job->payload, "one", 3); // the first submit's
    assert_string_equal(job->idempotency_key, "order-42");
    anvil_job_free(job);

    // Another key is another job.
    opts.idempotency_key = "order-43";
    assert_int_equal(anvil_job_submit(h->client, "idem", "one", 3, &opts, &id3,
                         &existed, NULL),
        ANVIL_OK);
    assert_false(existed);
    assert_string_not_equal(id1, id3);
    assert_int_equal(count_jobs(h), 2);
    anvil_free(id1);
    anvil_free(id2);
    anvil_free(id3);
}

// ---- delayed jobs and priorities ----

static void
test_a_delayed_job_is_not_handed_out_before_its_time(void **state)
{
    struct harness       *h    = *state;
    struct anvil_job_opts opts = { .delay_ms = 500 };
    struct anvil_job_opts bad  = { .delay_ms = -1 };
    char                 *id;
    struct anvil_job     *job;
    int64_t               created;

    assert_int_equal(
        anvil_job_submit(h->client, "later", "x", 1, &bad, NULL, NULL, NULL),
        ANVIL_INVALID_ARGUMENT);
    // The worker polls from the start.
    assert_non_null(harness_start_worker(
        h, 1, "later", echo_handler, (void *) NULL, (const char *) NULL));
    id      = submit_opts(h, "later", "x", &opts);
    job     = get_job(h, id);
    created = job->created_at_ms;
    assert_true(job->state == ANVIL_JOB_SCHEDULED);
    assert_true(job->run_at_ms >= created + 500);
    anvil_job_free(job);

    job = wait_final(h, id, ANVIL_JOB_SUCCEEDED);
    assert_true(job->started_at_ms >= created + 500);
    anvil_job_free(job);
    assert_int_equal(rec_count(), 1);
    assert_true(rec_get(0).wall_ms >= created + 500);
    anvil_free(id);
}

static void
test_one_slot_runs_queued_jobs_by_priority_then_fifo(void **state)
{
    struct harness *h        = *state;
    const char     *queues[] = { "qa", "qb" };
    static const struct {
        const char *queue;
        int32_t     priority;
        const char *name;
    } jobs[] = {
        { "qa", 1, "a-low" },
        { "qb", 10, "b-high" },
        { "qa", 5, "a-med" },
        { "qb", 1, "b-low" },
        { "qa", 10, "a-high" },
        { "qb", 5, "b-med" },
    };
    static const char *const order[]
        = { "b-high", "a-high", "a-med", "b-med", "a-low", "b-low" };
    char *ids[6];

    for (int i = 0; i < 6; i++) {
        struct anvil_job_opts o
            = { .queue = jobs[i].queue, .priority = jobs[i].priority };

        ids[i] = submit_opts(h, "prio", jobs[i].name, &o);
    }
    assert_non_null(harness_start_worker_on(h, 1, queues, 2, "prio",
        echo_handler, (void *) NULL, (const char *) NULL));
    for (int i = 0; i < 6; i++) {
        anvil_job_free(wait_final(h, ids[i], ANVIL_JOB_SUCCEEDED));
        anvil_free(ids[i]);
    }
    assert_int_equal(rec_count(), 6);
    for (int i = 0; i < 6; i++)
        assert_string_equal(rec_get(i).payload, order[i]);
}

// ---- anvil-worker and SIGTERM ----

static const char *
proc_log(const struct harness *h, pid_t pid)
{
    for (int i = 0; i < h->n_procs; i++) {
        if (h->procs[i].pid == pid)
            return h->procs[i].log;
    }
    return NULL;
}

struct text_wait {
    const char *path;
    const char *text;
};

static bool
file_has_text(void *arg)
{
    struct text_wait *tw   = arg;
    char             *all  = harness_read_file(tw->path, NULL);
    bool              have = all != NULL && strstr(all, tw->text) != NULL;

    free(all);
    return have;
}

static void
test_anvil_worker_finishes_its_job_on_sigterm_and_exits_0(void **state)
{
    struct harness *h   = *state;
    pid_t           pid = harness_spawn_worker(h, 1);
    const char *pay = "{\"SleepTimeInSeconds\": 1, \"Message\": \"drained\"}";
    char       *id;
    struct anvil_job *job;
    int               status;

    assert_true(pid > 0);
    id = submit(h, "Sleep", pay);
    wait_state(h, id, ANVIL_JOB_RUNNING, NULL);
    assert_int_equal(kill(pid, SIGTERM), 0);
    status = harness_wait_exit(pid, WAIT_MS);
    assert_true(status != -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    // It reported before exiting.
    job = get_job(h, id);
    assert_int_equal(job->state, ANVIL_JOB_SUCCEEDED);
    assert_int_equal(job->attempt, 1);
    assert_int_equal(job->result_len, 9); // a JSON string
    assert_memory_equal(job->result, "\"drained\"", 9);
    anvil_job_free(job);
    assert_true(harness_file_has_line(harness_proc_out(h, pid), "drained"));
    anvil_free(id);
}

static void
test_a_second_sigterm_stops_anvil_worker_at_once_and_the_job_runs_again(
    void **state)
{
    struct harness   *h   = *state;
    pid_t             pid = harness_spawn_worker(h, 1);
    struct text_wait  tw  = { NULL, "worker.signal" };
    char             *id;
    int64_t           t0;
    int               status;
    struct anvil_job *job;

    assert_true(pid > 0);
    tw.path = proc_log(h, pid);
    id      = submit(h, "Sleep", "{\"SleepTimeInSeconds\": 30}");
    wait_state(h, id, ANVIL_JOB_RUNNING, NULL);
    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_true(harness_wait_for(file_has_text, &tw, WAIT_MS)); // draining
    assert_int_equal(harness_wait_exit(pid, 0), -1);

    t0 = av_mono_ms();
    assert_int_equal(kill(pid, SIGTERM), 0);
    status = harness_wait_exit(pid, 5000);
    assert_true(status != -1);
    assert_true(av_mono_ms() - t0 < 2000);
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 0);
    job = get_job(h, id);
    assert_int_equal(job->state, ANVIL_JOB_RUNNING); // until its lease ends
    anvil_job_free(job);

    // After the lease, the job runs again, elsewhere.
    assert_non_null(harness_start_worker(
        h, 1, "Sleep", echo_handler, (void *) NULL, (const char *) NULL));
    job = wait_final(h, id, ANVIL_JOB_SUCCEEDED);
    assert_int_equal(job->attempt, 2);
    anvil_job_free(job);
    assert_int_equal(rec_count(), 1);
    assert_int_equal(rec_get(0).attempt, 2);
    anvil_free(id);
}

// ---- retention ----

struct past {
    int64_t at; // Unix epoch ms
};

static bool
time_passed(void *arg)
{
    return av_now_ms() > ((struct past *) arg)->at;
}

// Stops the in-process server and starts it again on the same database.
static void
restart_server(struct harness *h)
{
    struct anvil_error err = { 0 };
    int                rv;

    harness_stop_server(h);
    rv = server_start(&h->cfg, &h->server, &err);
    if (rv != ANVIL_OK)
        print_error("restart: %s: %s\n", anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
}

static bool
job_gone(void *arg)
{
    struct probe     *p   = arg;
    struct anvil_job *job = NULL;
    int               rv  = anvil_job_get(p->h->client, p->id, &job, NULL);

    anvil_job_free(job);
    return rv == ANVIL_NOT_FOUND;
}

// Runs one job to its end and submits one that stays QUEUED and one that
// stays SCHEDULED; returns once all three are older than `age` ms.
static void
make_old_jobs(struct harness *h, int64_t age, char *ids[3])
{
    struct anvil_job_opts later = { .delay_ms = 3600 * 1000 };
    struct anvil_job     *job;
    struct past           p;

    assert_non_null(harness_start_worker(
        h, 1, "kept", echo_handler, (void *) NULL, (const char *) NULL));
    ids[0] = submit(h, "kept", "done");
    ids[1] = submit(h, "nobody", "queued");
    ids[2] = submit_opts(h, "nobody", "scheduled", &later);
    job    = wait_final(h, ids[0], ANVIL_JOB_SUCCEEDED);
    p.at   = job->finished_at_ms + age;
    anvil_job_free(job);
    assert_true(harness_wait_for(time_passed, &p, WAIT_MS));
}

static void
assert_job_state(struct harness *h, const char *id, enum anvil_job_state state)
{
    struct anvil_job *job = get_job(h, id);

    assert_int_equal(job->state, state);
    anvil_job_free(job);
}

static void
test_retention_deletes_old_finished_jobs_and_never_unfinished_ones(void **state)
{
    struct harness *h = *state;
    char           *ids[3];
    struct probe    p = { .h = h };

    make_old_jobs(h, 300, ids);
    // The sweep runs at start, then every minute: restart to run it now.
    restart_server(h);
    p.id = ids[0];
    assert_true(harness_wait_for(job_gone, &p, WAIT_MS));
    assert_job_state(h, ids[1], ANVIL_JOB_QUEUED);
    assert_job_state(h, ids[2], ANVIL_JOB_SCHEDULED);
    for (int i = 0; i < 3; i++)
        anvil_free(ids[i]);
}

static void
test_retention_keeps_finished_jobs_younger_than_it(void **state)
{
    struct harness *h = *state;
    char           *ids[3];

    make_old_jobs(h, 300, ids);
    restart_server(h); // retention is one hour here
    assert_job_state(h, ids[0], ANVIL_JOB_SUCCEEDED);
    assert_job_state(h, ids[1], ANVIL_JOB_QUEUED);
    assert_job_state(h, ids[2], ANVIL_JOB_SCHEDULED);
    for (int i = 0; i < 3; i++)
        anvil_free(ids[i]);
}

// ---- the helper worker process ----

static int
slow_handler(void *arg, const struct anvil_lease *l, struct anvil_job_ctx *ctx)
{
    (void) arg;
    (void) l;
    if (!anvil_job_ctx_sleep(ctx, 30000)) {
        anvil_job_ctx_set_error(ctx, true, "stopped");
        return ANVIL_CANCELLED;
    }
    return anvil_job_ctx_set_result(ctx, "slow", 4);
}

// Serves "slow" on url as `name` until SIGTERM or SIGINT.
static int
helper_main(const char *url, const char *name)
{
    struct anvil_worker_opts opts = { 0 };
    struct anvil_error       err  = { 0 };
    anvil_worker            *w    = NULL;
    sigset_t                 sigs;
    int                      sig = 0;
    int                      rv;

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    opts.url          = url;
    opts.name         = name;
    opts.poll_wait_ms = 500;
    opts.heartbeat_ms = 200;
    rv                = anvil_worker_new(&w, &opts, &err);
    if (rv == ANVIL_OK)
        rv = anvil_worker_add_handler(w, "slow", slow_handler, NULL, &err);
    if (rv == ANVIL_OK)
        rv = anvil_worker_start(w, &err);
    if (rv != ANVIL_OK) {
        fprintf(stderr, "helper: %s\n", err.msg);
        anvil_worker_free(w);
        return 1;
    }
    sigwait(&sigs, &sig);
    anvil_worker_stop(w, 0);
    anvil_worker_free(w);
    nng_fini();
    return 0;
}

#define TEST(fn, set) cmocka_unit_test_setup_teardown(fn, set, teardown)

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        TEST(
            test_a_job_of_a_worker_killed_with_sigkill_runs_again_after_its_lease,
            setup_short_lease),
        TEST(
            test_a_job_failing_twice_succeeds_on_attempt_3_after_default_backoff,
            setup),
        TEST(
            test_a_job_that_always_fails_ends_failed_after_max_attempts, setup),
        TEST(test_a_non_retryable_failure_ends_failed_at_attempt_1, setup),
        TEST(test_a_job_retries_after_its_own_backoff_policy, setup),
        TEST(test_a_job_over_its_timeout_fails_though_its_handler_ignores_it,
            setup),
        TEST(
            test_a_handler_sleeping_on_its_ctx_wakes_at_the_job_timeout, setup),
        TEST(test_cancelling_a_running_job_stops_its_handler, setup),
        TEST(
            test_a_stale_token_is_refused_and_a_repeated_complete_changes_nothing,
            setup),
        TEST(test_a_second_submit_with_the_same_key_returns_the_first_job,
            setup),
        TEST(test_a_delayed_job_is_not_handed_out_before_its_time, setup),
        TEST(test_one_slot_runs_queued_jobs_by_priority_then_fifo, setup),
        TEST(test_anvil_worker_finishes_its_job_on_sigterm_and_exits_0, setup),
        TEST(
            test_a_second_sigterm_stops_anvil_worker_at_once_and_the_job_runs_again,
            setup_worker_lease),
        TEST(test_retention_deletes_old_finished_jobs_and_never_unfinished_ones,
            setup_retention),
        TEST(test_retention_keeps_finished_jobs_younger_than_it,
            setup_long_retention),
    };

    if (argc == 4 && strcmp(argv[1], HELPER_FLAG) == 0)
        return helper_main(argv[2], argv[3]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
