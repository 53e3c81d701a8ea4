// test_engine.c - the engine thread and the job state machine, driven the
// way rpc.c drives it: post a struct cmd with engine_submit() and wait for
// its done() callback. done() runs on the engine thread and only records
// (under a mutex) that it ran; every assert runs on the test thread.
#include "../../server/auth.h"
#include "../../server/dag.h"
#include "../../server/engine.h"

#include "../harness.h"
#include "util/clock.h"

#include <anvil/schedule.h>

#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define REPLY_TIMEOUT_MS 5000 // how long any answer may take

// ---- fixture: a fresh directory, database and engine per test ----

struct fx {
    char                 dir[64];
    char                 path[256]; // SQLite file or PostgreSQL conninfo
    struct store        *st;
    struct engine       *e;
    struct engine_config cfg;
};

// Opens the store and starts the engine with f->cfg.
static int
open_engine(struct fx *f)
{
    struct anvil_error err = { 0 };
    if (harness_store_open_at(f->path, 1, &f->st, &err) != ANVIL_OK
        || engine_start(f->st, &f->cfg, &f->e, &err) != ANVIL_OK) {
        fprintf(stderr, "open_engine: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void
close_engine(struct fx *f)
{
    engine_stop(f->e);
    store_close(f->st);
    f->e  = NULL;
    f->st = NULL;
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/anvil-engine-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    f->cfg = (struct engine_config) { .lease_ms = 30000, .max_attempts = 3 };
    if (harness_store_new_path(f->dir, "anvil.db", f->path, sizeof(f->path))
            != 0
        || open_engine(f) != 0) {
        close_engine(f);
        harness_remove_tree(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    close_engine(f);
    store_hook_step      = NULL;
    store_hook_fdatasync = NULL;
    harness_remove_tree(f->dir);
    free(f);
    return 0;
}

// Restarts on the same database with another lease length.
static void
restart(struct fx *f, int64_t lease_ms)
{
    close_engine(f);
    f->cfg.lease_ms = lease_ms;
    assert_int_equal(open_engine(f), 0);
}

// ---- posting commands and waiting for their answers ----

static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  done_cv = PTHREAD_COND_INITIALIZER;

struct req {
    struct cmd c;
    bool       done;      // guarded by done_mu
    int        calls;     // done() calls; guarded by done_mu
    int64_t    done_mono; // av_mono_ms() when done() ran
};

static void
on_done(struct cmd *c, void *arg)
{
    (void) c;
    struct req *r = arg;
    pthread_mutex_lock(&done_mu);
    r->done = true;
    r->calls++;
    r->done_mono = av_mono_ms();
    pthread_cond_broadcast(&done_cv);
    pthread_mutex_unlock(&done_mu);
}

static void
req_init(struct req *r, enum cmd_kind kind)
{
    memset(r, 0, sizeof(*r));
    r->c.kind     = kind;
    r->c.done     = on_done;
    r->c.done_arg = r;
}

static void
post(struct fx *f, struct req *r)
{
    engine_submit(f->e, &r->c);
}

// Waits up to timeout_ms for r's answer; true if it came.
static bool
wait_done(struct req *r, int64_t timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = ts.tv_nsec + (timeout_ms % 1000) * 1000000;
    ts.tv_sec += timeout_ms / 1000 + ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    pthread_mutex_lock(&done_mu);
    while (!r->done) {
        if (pthread_cond_timedwait(&done_cv, &done_mu, &ts) != 0)
            break;
    }
    bool done = r->done;
    pthread_mutex_unlock(&done_mu);
    return done;
}

static bool
is_done(struct req *r)
{
    pthread_mutex_lock(&done_mu);
    bool done = r->done;
    pthread_mutex_unlock(&done_mu);
    return done;
}

// Posts r and waits for its answer; returns its code.
static int
call(struct fx *f, struct req *r)
{
    post(f, r);
    assert_true(wait_done(r, REPLY_TIMEOUT_MS));
    return r->c.err.code;
}

// A round trip through the engine: every command posted before it has
// been applied (parked or answered) once this returns.
static void
flush(struct fx *f)
{
    struct req r;
    req_init(&r, CMD_GET);
    r.c.u.get.id = INT64_MAX;
    assert_int_equal(call(f, &r), ANVIL_NOT_FOUND);
}

// ---- job commands ----

static struct cmd_submit
job_spec(const char *type)
{
    return (struct cmd_submit) {
        .type    = type,
        .queue   = "default",
        .payload = (const uint8_t *) "{\"n\":1}",
        .len     = 7,
    };
}

// Submits; asserts OK; returns the id.
static int64_t
submit_spec(struct fx *f, const struct cmd_submit *s, uint64_t rid)
{
    struct req r;
    req_init(&r, CMD_SUBMIT);
    r.c.u.submit   = *s;
    r.c.request_id = rid;
    int rc         = call(f, &r);
    if (rc != ANVIL_OK)
        fprintf(stderr, "submit: %s\n", r.c.err.msg);
    assert_int_equal(rc, ANVIL_OK);
    assert_true(r.c.u.submit.id > 0);
    return r.c.u.submit.id;
}

static int64_t
submit(struct fx *f, const char *type)
{
    struct cmd_submit s = job_spec(type);
    return submit_spec(f, &s, 0);
}

// Reads a job into *out (caller job_fini's); returns the code.
static int
get_job(struct fx *f, int64_t id, struct job *out)
{
    struct req r;
    req_init(&r, CMD_GET);
    r.c.u.get.id = id;
    int rc       = call(f, &r);
    *out         = r.c.u.get.job;
    return rc;
}

static int
state_of(struct fx *f, int64_t id)
{
    struct job j;
    assert_int_equal(get_job(f, id, &j), ANVIL_OK);
    int s = j.state;
    job_fini(&j);
    return s;
}

// Polls until job id is in state `want` or timeout_ms passes; true if it
// got there. *out (may be NULL) gets the job as last read.
static bool
wait_state(
    struct fx *f, int64_t id, int want, int64_t timeout_ms, struct job *out)
{
    int64_t    deadline = av_mono_ms() + timeout_ms;
    struct job j        = { 0 };
    for (;;) {
        job_fini(&j);
        assert_int_equal(get_job(f, id, &j), ANVIL_OK);
        if (j.state == want || av_mono_ms() >= deadline)
            break;
        struct timespec ts = { 0, 5 * 1000000 };
        nanosleep(&ts, NULL);
    }
    bool ok = j.state == want;
    if (out != NULL)
        *out = j;
    else
        job_fini(&j);
    return ok;
}

static const char *const Q_DEFAULT[] = { "default" };

// Fills r as a Poll of queue "default" for one type.
static void
poll_init(struct req *r, const char *const *types, size_t nt, uint32_t max,
    uint32_t wait_ms)
{
    req_init(r, CMD_POLL);
    r->c.u.poll = (struct cmd_poll) {
        .worker  = "worker-1",
        .queues  = Q_DEFAULT,
        .nq      = 1,
        .types   = types,
        .nt      = nt,
        .max     = max,
        .wait_ms = wait_ms,
    };
}

// Leases one job of this type now; asserts there was one. Caller
// job_fini's.
static struct job
lease_one(struct fx *f, const char *type)
{
    const char *types[] = { type };
    struct req  r;
    poll_init(&r, types, 1, 1, 0);
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.poll.n, 1);
    struct job j = r.c.u.poll.jobs[0];
    memset(&r.c.u.poll.jobs[0], 0, sizeof(j));
    engine_cmd_fini(&r.c);
    return j;
}

// Number of jobs a Poll of this type gets now (they stay leased).
static size_t
poll_count(struct fx *f, const char *type)
{
    const char *types[] = { type };
    struct req  r;
    poll_init(&r, types, 1, 100, 0);
    assert_int_equal(call(f, &r), ANVIL_OK);
    size_t n = r.c.u.poll.n;
    engine_cmd_fini(&r.c);
    return n;
}

static int
complete(struct fx *f, int64_t id, uint32_t token, const char *result)
{
    struct req r;
    req_init(&r, CMD_COMPLETE);
    r.c.u.complete = (struct cmd_complete) {
        .id     = id,
        .token  = token,
        .result = (const uint8_t *) result,
        .len    = result ? strlen(result) : 0,
    };
    return call(f, &r);
}

static int
fail_job(struct fx *f, int64_t id, uint32_t token, const char *error,
    bool no_retry, int *state, int64_t *retry_at)
{
    struct req r;
    req_init(&r, CMD_FAIL);
    r.c.u.fail = (struct cmd_fail) {
        .id = id, .token = token, .error = error, .no_retry = no_retry
    };
    int rc    = call(f, &r);
    *state    = r.c.u.fail.state;
    *retry_at = r.c.u.fail.retry_at;
    return rc;
}

static int
cancel(struct fx *f, int64_t id, struct job *out)
{
    struct req r;
    req_init(&r, CMD_CANCEL);
    r.c.u.cancel.id = id;
    int rc          = call(f, &r);
    *out            = r.c.u.cancel.job;
    return rc;
}

static bool
contains(const int64_t *v, size_t n, int64_t x)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i] == x)
            return true;
    }
    return false;
}

// ---- the failure seam ----
//
// store.h does not export its statement indexes, so a test learns one by
// running a single-step store call on a scratch database with a recording
// hook, then arms a failure for that index. The engine thread runs the
// hook, so its state is atomic.

static atomic_int hook_last      = -1;
static atomic_int hook_fail_id   = -1;
static atomic_int hook_fail_cnt  = 0;
static atomic_int hook_fail_skip = 0; // steps of hook_fail_id let run first

static int
hook(int stmt)
{
    atomic_store(&hook_last, stmt);
    if (stmt != atomic_load(&hook_fail_id))
        return 0;
    if (atomic_fetch_sub(&hook_fail_skip, 1) > 0)
        return 0;
    return atomic_fetch_sub(&hook_fail_cnt, 1) > 0;
}

enum probe {
    PROBE_INSERT,
    PROBE_LEASE,
    PROBE_MAKE_READY,
    PROBE_COMMIT,
    PROBE_EDGE,
    PROBE_PAUSE,
    PROBE_RETRY
};

// The statement index one store call steps.
static int
learn_stmt(struct fx *f, enum probe what)
{
    char path[256];
    assert_int_equal(
        harness_store_new_path(f->dir, "probe.db", path, sizeof(path)), 0);
    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(harness_store_open_at(path, 1, &st, &err), ANVIL_OK);
    struct store_new_job nj = { .type = "t", .queue = "q", .state = 3 };
    struct job           j  = { 0 };
    int64_t              id = 0;
    atomic_store(&hook_fail_id, -1);
    atomic_store(&hook_last, -1);
    store_hook_step = hook;
    switch (what) {
    case PROBE_INSERT:
        assert_int_equal(store_job_insert(st, &nj, &id, &err), ANVIL_OK);
        break;
    case PROBE_LEASE: // an unknown id: one step, no row
        assert_int_equal(
            store_job_lease(st, 99, "w", 0, 1, 1, &j, &err), ANVIL_NOT_FOUND);
        break;
    case PROBE_MAKE_READY:
        assert_int_equal(store_job_make_ready(st, 99, &err), ANVIL_NOT_FOUND);
        break;
    case PROBE_EDGE:
        assert_int_equal(store_edge_insert(st, 1, 2, &err), ANVIL_OK);
        break;
    case PROBE_PAUSE: {
        bool changed = false;
        assert_int_equal(
            store_queue_set_paused(st, "q", true, 1, &changed, &err), ANVIL_OK);
        break;
    }
    case PROBE_RETRY:
        assert_int_equal(
            store_job_retry(st, 99, 3, 0, 3, &err), ANVIL_NOT_FOUND);
        break;
    case PROBE_COMMIT:
        store_hook_step = NULL;
        assert_int_equal(store_begin(st, &err), ANVIL_OK);
        store_hook_step = hook;
        assert_int_equal(store_commit(st, &err), ANVIL_OK);
        break;
    }
    store_close(st);
    int stmt = atomic_load(&hook_last);
    assert_true(stmt >= 0);
    return stmt;
}

static void
hook_arm(int stmt, int times)
{
    atomic_store(&hook_fail_skip, 0);
    atomic_store(&hook_fail_cnt, times);
    atomic_store(&hook_fail_id, stmt);
}

// ---- submit, get, poll ----

static void
test_engine_submit_makes_a_queued_job(void **state)
{
    struct fx *f      = *state;
    int64_t    before = av_now_ms();
    int64_t    id     = submit(f, "email");
    struct job j;
    assert_int_equal(get_job(f, id, &j), ANVIL_OK);
    assert_int_equal(j.id, id);
    assert_int_equal(j.state, ANVIL_JOB_QUEUED);
    assert_string_equal(j.type, "email");
    assert_string_equal(j.queue, "default");
    assert_int_equal(j.payload_len, 7);
    assert_memory_equal(j.payload, "{\"n\":1}", 7);
    assert_int_equal(j.attempt, 0);
    assert_int_equal(j.retry.max_attempts, 3); // the engine's default
    assert_true(j.created_at >= before && j.created_at <= av_now_ms());
    assert_true(j.run_at <= av_now_ms());
    job_fini(&j);
}

static void
test_engine_get_of_an_unknown_job_is_not_found(void **state)
{
    struct fx *f = *state;
    struct job j;
    assert_int_equal(get_job(f, 4242, &j), ANVIL_NOT_FOUND);
    job_fini(&j);
    struct req r;
    req_init(&r, CMD_GET);
    r.c.u.get.id = 4242;
    assert_int_equal(call(f, &r), ANVIL_NOT_FOUND);
    assert_non_null(strstr(r.c.err.msg, "j4242"));
}

static void
test_engine_poll_leases_a_queued_job_once(void **state)
{
    struct fx *f      = *state;
    int64_t    id     = submit(f, "email");
    int64_t    before = av_now_ms();
    struct job j      = lease_one(f, "email");
    assert_int_equal(j.id, id);
    assert_int_equal(j.state, ANVIL_JOB_RUNNING);
    assert_int_equal(j.attempt, 1);
    assert_string_equal(j.worker_id, "worker-1");
    assert_true(j.lease_deadline >= before + 30000);
    assert_true(j.lease_deadline <= av_now_ms() + 30000);
    assert_true(j.started_at >= before);
    job_fini(&j);

    assert_int_equal(state_of(f, id), ANVIL_JOB_RUNNING);
    // Leased once: nobody else gets it.
    assert_int_equal(poll_count(f, "email"), 0);
}

static void
test_engine_poll_for_other_types_gets_nothing(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "email");
    assert_int_equal(poll_count(f, "sms"), 0);
    assert_int_equal(poll_count(f, "Email"), 0);
    const char *const other_q[] = { "other" };
    const char *const types[]   = { "email" };
    struct req        r;
    poll_init(&r, types, 1, 5, 0);
    r.c.u.poll.queues = other_q;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.poll.n, 0);
    engine_cmd_fini(&r.c);
    assert_int_equal(state_of(f, id), ANVIL_JOB_QUEUED);
}

static void
test_engine_poll_honours_priority_across_polled_queues(void **state)
{
    struct fx        *f = *state;
    struct cmd_submit s = job_spec("t");
    s.queue             = "a";
    s.priority          = 1;
    int64_t a1          = submit_spec(f, &s, 0);
    s.queue             = "b";
    s.priority          = 5;
    int64_t b5          = submit_spec(f, &s, 0);
    s.queue             = "c"; // not polled, highest priority
    s.priority          = 9;
    int64_t c9          = submit_spec(f, &s, 0);
    s.queue             = "a";
    s.priority          = 5;
    int64_t a5          = submit_spec(f, &s, 0);
    s.queue             = "b";
    s.priority          = -3;
    int64_t bm3         = submit_spec(f, &s, 0);

    const char *const queues[] = { "a", "b" };
    const char *const types[]  = { "t" };
    struct req        r;
    poll_init(&r, types, 1, 10, 0);
    r.c.u.poll.queues = queues;
    r.c.u.poll.nq     = 2;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.poll.n, 4);
    int64_t want[] = { b5, a5, a1, bm3 }; // priority, then FIFO
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(r.c.u.poll.jobs[i].id, want[i]);
    engine_cmd_fini(&r.c);
    assert_int_equal(state_of(f, c9), ANVIL_JOB_QUEUED);
}

static void
test_engine_poll_leases_at_most_max_jobs(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 5; i++)
        submit(f, "t");
    const char *const types[] = { "t" };
    struct req        r;
    poll_init(&r, types, 1, 3, 0);
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.poll.n, 3);
    engine_cmd_fini(&r.c);
    assert_int_equal(poll_count(f, "t"), 2);
    assert_int_equal(poll_count(f, "t"), 0);
}

static void
test_engine_resent_poll_gets_the_same_leases_back(void **state)
{
    struct fx        *f       = *state;
    int64_t           first   = submit(f, "t");
    const char *const types[] = { "t" };
    struct req        r;
    poll_init(&r, types, 1, 1, 0);
    r.c.request_id = 555;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.poll.n, 1);
    assert_int_equal(r.c.u.poll.jobs[0].id, first);
    engine_cmd_fini(&r.c);

    int64_t second = submit(f, "t");
    poll_init(&r, types, 1, 1, 0);
    r.c.request_id = 555; // the resend
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.poll.n, 1);
    assert_int_equal(r.c.u.poll.jobs[0].id, first);
    assert_int_equal(r.c.u.poll.jobs[0].attempt, 1);
    engine_cmd_fini(&r.c);
    // A new request id gets the second job.
    poll_init(&r, types, 1, 1, 0);
    r.c.request_id = 556;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.poll.n, 1);
    assert_int_equal(r.c.u.poll.jobs[0].id, second);
    engine_cmd_fini(&r.c);
}

// ---- complete ----

static void
test_engine_complete_makes_the_job_succeed_with_its_result(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    struct job j  = lease_one(f, "t");
    assert_int_equal(complete(f, id, j.attempt, "{\"ok\":true}"), ANVIL_OK);
    job_fini(&j);
    assert_int_equal(get_job(f, id, &j), ANVIL_OK);
    assert_int_equal(j.state, ANVIL_JOB_SUCCEEDED);
    assert_int_equal(j.result_len, 11);
    assert_memory_equal(j.result, "{\"ok\":true}", 11);
    assert_true(j.finished_at > 0);
    assert_int_equal(j.attempt, 1);
    assert_string_equal(j.error, "");
    job_fini(&j);
}

static void
test_engine_duplicate_complete_is_ok_and_changes_nothing(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    struct job j  = lease_one(f, "t");
    job_fini(&j);
    assert_int_equal(complete(f, id, 1, "first"), ANVIL_OK);
    struct job before;
    assert_int_equal(get_job(f, id, &before), ANVIL_OK);

    assert_int_equal(complete(f, id, 1, "second"), ANVIL_OK);
    struct job after;
    assert_int_equal(get_job(f, id, &after), ANVIL_OK);
    assert_int_equal(after.state, ANVIL_JOB_SUCCEEDED);
    assert_int_equal(after.result_len, 5);
    assert_memory_equal(after.result, "first", 5);
    assert_int_equal(after.finished_at, before.finished_at);
    job_fini(&before);
    job_fini(&after);
}

static void
test_engine_complete_with_a_stale_token_changes_nothing(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    struct job j  = lease_one(f, "t");
    job_fini(&j);
    struct req r;
    req_init(&r, CMD_COMPLETE);
    r.c.u.complete = (struct cmd_complete) {
        .id = id, .token = 2, .result = (const uint8_t *) "x", .len = 1
    };
    assert_int_equal(call(f, &r), ANVIL_FAILED_PRECONDITION);
    assert_non_null(strstr(r.c.err.msg, "no longer held"));
    assert_int_equal(complete(f, id, 0, "x"), ANVIL_FAILED_PRECONDITION);

    assert_int_equal(get_job(f, id, &j), ANVIL_OK);
    assert_int_equal(j.state, ANVIL_JOB_RUNNING);
    assert_int_equal(j.attempt, 1);
    assert_int_equal(j.result_len, 0);
    assert_int_equal(j.finished_at, 0);
    job_fini(&j);
    // The rightful holder can still complete it.
    assert_int_equal(complete(f, id, 1, "y"), ANVIL_OK);
    assert_int_equal(state_of(f, id), ANVIL_JOB_SUCCEEDED);
}

static void
test_engine_complete_of_a_queued_or_unknown_job_is_refused(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    assert_int_equal(complete(f, id, 0, "x"), ANVIL_FAILED_PRECONDITION);
    assert_int_equal(complete(f, id, 1, "x"), ANVIL_FAILED_PRECONDITION);
    assert_int_equal(state_of(f, id), ANVIL_JOB_QUEUED);
    assert_int_equal(complete(f, 999, 1, "x"), ANVIL_NOT_FOUND);
}

// ---- fail ----

static void
test_engine_retryable_failure_schedules_a_retry_keeping_the_error(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    struct job j  = lease_one(f, "t");
    job_fini(&j);
    int     st       = 0;
    int64_t retry_at = 0;
    int64_t before   = av_now_ms();
    assert_int_equal(
        fail_job(f, id, 1, "connection refused", false, &st, &retry_at),
        ANVIL_OK);
    int64_t after = av_now_ms();
    assert_int_equal(st, ANVIL_JOB_SCHEDULED);
    // First retry: 1000 ms scaled by jitter in [0.8, 1.2).
    assert_true(retry_at >= before + 800);
    assert_true(retry_at < after + 1200);

    assert_int_equal(get_job(f, id, &j), ANVIL_OK);
    assert_int_equal(j.state, ANVIL_JOB_SCHEDULED);
    assert_string_equal(j.error, "connection refused");
    assert_int_equal(j.run_at, retry_at);
    assert_int_equal(j.attempt, 1);
    assert_int_equal(j.finished_at, 0);
    job_fini(&j);
    // Not handed out before its time.
    assert_int_equal(poll_count(f, "t"), 0);

    // A resend of the same Fail is answered as the first (state and
    // retry time) and changes nothing.
    int     st2 = 0;
    int64_t at2 = 0;
    assert_int_equal(
        fail_job(f, id, 1, "connection refused", false, &st2, &at2), ANVIL_OK);
    assert_int_equal(st2, ANVIL_JOB_SCHEDULED);
    assert_int_equal(at2, retry_at);
    assert_int_equal(get_job(f, id, &j), ANVIL_OK);
    assert_int_equal(j.run_at, retry_at);
    job_fini(&j);
    // A Fail for an attempt that never started is stale.
    assert_int_equal(
        fail_job(f, id, 2, "x", false, &st2, &at2), ANVIL_FAILED_PRECONDITION);
    assert_int_equal(
        fail_job(f, 999, 1, "x", false, &st2, &at2), ANVIL_NOT_FOUND);
}

static void
test_engine_no_retry_failure_fails_the_job_at_once(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    struct job j  = lease_one(f, "t");
    job_fini(&j);
    int     st       = 0;
    int64_t retry_at = -1;
    assert_int_equal(
        fail_job(f, id, 1, "bad payload", true, &st, &retry_at), ANVIL_OK);
    assert_int_equal(st, ANVIL_JOB_FAILED);
    assert_int_equal(retry_at, 0);
    assert_int_equal(get_job(f, id, &j), ANVIL_OK);
    assert_int_equal(j.state, ANVIL_JOB_FAILED);
    assert_string_equal(j.error, "bad payload");
    assert_true(j.finished_at > 0);
    job_fini(&j);
    // Final: a Complete for the same attempt is refused.
    assert_int_equal(complete(f, id, 1, "late"), ANVIL_FAILED_PRECONDITION);
    assert_int_equal(state_of(f, id), ANVIL_JOB_FAILED);
}

static void
test_engine_failure_of_the_last_attempt_fails_the_job(void **state)
{
    struct fx        *f  = *state;
    struct cmd_submit s  = job_spec("t");
    s.retry.max_attempts = 1;
    int64_t    id        = submit_spec(f, &s, 0);
    struct job j         = lease_one(f, "t");
    assert_int_equal(j.retry.max_attempts, 1);
    job_fini(&j);
    int     st       = 0;
    int64_t retry_at = -1;
    assert_int_equal(
        fail_job(f, id, 1, "flaky", false, &st, &retry_at), ANVIL_OK);
    assert_int_equal(st, ANVIL_JOB_FAILED);
    assert_int_equal(retry_at, 0);
    assert_int_equal(get_job(f, id, &j), ANVIL_OK);
    assert_int_equal(j.state, ANVIL_JOB_FAILED);
    assert_string_equal(j.error, "flaky");
    job_fini(&j);
}

// ---- cancel ----

static void
test_engine_cancel_of_a_queued_job_cancels_it_for_good(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    struct job j;
    assert_int_equal(cancel(f, id, &j), ANVIL_OK);
    assert_int_equal(j.id, id);
    assert_int_equal(j.state, ANVIL_JOB_CANCELED);
    assert_true(j.finished_at > 0);
    job_fini(&j);
    assert_int_equal(state_of(f, id), ANVIL_JOB_CANCELED);
    assert_int_equal(poll_count(f, "t"), 0);
    assert_int_equal(state_of(f, id), ANVIL_JOB_CANCELED);
}

static void
test_engine_cancel_twice_is_no_error(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    struct job j;
    assert_int_equal(cancel(f, id, &j), ANVIL_OK);
    int64_t finished = j.finished_at;
    job_fini(&j);
    assert_int_equal(cancel(f, id, &j), ANVIL_OK);
    assert_int_equal(j.id, id);
    assert_int_equal(j.state, ANVIL_JOB_CANCELED);
    assert_int_equal(j.finished_at, finished);
    job_fini(&j);
}

static void
test_engine_cancel_of_a_finished_or_unknown_job_is_refused(void **state)
{
    struct fx *f    = *state;
    int64_t    done = submit(f, "u");
    struct job j    = lease_one(f, "u");
    job_fini(&j);
    assert_int_equal(complete(f, done, 1, "r"), ANVIL_OK);
    struct req r;
    req_init(&r, CMD_CANCEL);
    r.c.u.cancel.id = done;
    assert_int_equal(call(f, &r), ANVIL_FAILED_PRECONDITION);
    assert_non_null(strstr(r.c.err.msg, "SUCCEEDED"));
    engine_cmd_fini(&r.c);
    assert_int_equal(state_of(f, done), ANVIL_JOB_SUCCEEDED);

    int64_t failed = submit(f, "v");
    j              = lease_one(f, "v");
    job_fini(&j);
    int     st = 0;
    int64_t at = 0;
    assert_int_equal(fail_job(f, failed, 1, "no", true, &st, &at), ANVIL_OK);
    assert_int_equal(cancel(f, failed, &j), ANVIL_FAILED_PRECONDITION);
    job_fini(&j);
    assert_int_equal(state_of(f, failed), ANVIL_JOB_FAILED);

    assert_int_equal(cancel(f, 31337, &j), ANVIL_NOT_FOUND);
    job_fini(&j);
}

static void
test_engine_cancel_of_a_running_job_waits_for_its_worker(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    struct job j  = lease_one(f, "t");
    job_fini(&j);
    assert_int_equal(cancel(f, id, &j), ANVIL_OK);
    assert_int_equal(j.state, ANVIL_JOB_RUNNING);
    assert_true(j.cancel_requested);
    job_fini(&j);

    struct lease_ref ref = { .id = id, .token = 1 };
    struct req       hb;
    req_init(&hb, CMD_HEARTBEAT);
    hb.c.u.heartbeat
        = (struct cmd_heartbeat) { .worker = "worker-1", .refs = &ref, .n = 1 };
    assert_int_equal(call(f, &hb), ANVIL_OK);
    assert_int_equal(hb.c.u.heartbeat.ncanceled, 1);
    assert_int_equal(hb.c.u.heartbeat.canceled[0], id);
    assert_int_equal(hb.c.u.heartbeat.nlost, 0);
    engine_cmd_fini(&hb.c);

    // The worker stops and completes: the job ends CANCELED.
    assert_int_equal(complete(f, id, 1, "partial"), ANVIL_OK);
    assert_int_equal(get_job(f, id, &j), ANVIL_OK);
    assert_int_equal(j.state, ANVIL_JOB_CANCELED);
    assert_int_equal(j.result_len, 0);
    job_fini(&j);
    // A resend of that Complete is OK, and so is a second Cancel.
    assert_int_equal(complete(f, id, 1, "partial"), ANVIL_OK);
    assert_int_equal(cancel(f, id, &j), ANVIL_OK);
    assert_int_equal(j.state, ANVIL_JOB_CANCELED);
    job_fini(&j);
}

static void
test_engine_failure_of_a_cancel_requested_job_ends_canceled(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    struct job j  = lease_one(f, "t");
    job_fini(&j);
    assert_int_equal(cancel(f, id, &j), ANVIL_OK);
    job_fini(&j);
    int     st = 0;
    int64_t at = 0;
    assert_int_equal(
        fail_job(f, id, 1, "interrupted", false, &st, &at), ANVIL_OK);
    assert_int_equal(st, ANVIL_JOB_CANCELED);
    assert_int_equal(state_of(f, id), ANVIL_JOB_CANCELED);
}

// ---- heartbeat ----

static void
test_engine_heartbeat_extends_held_leases_and_reports_lost_ones(void **state)
{
    struct fx *f    = *state;
    int64_t    held = submit(f, "t");
    struct job j    = lease_one(f, "t");
    int64_t    old  = j.lease_deadline;
    job_fini(&j);
    int64_t queued = submit(f, "other");

    struct lease_ref refs[] = {
        { .id = held, .token = 1 },   // held
        { .id = held, .token = 7 },   // stale token
        { .id = queued, .token = 1 }, // not running
        { .id = 999, .token = 1 },    // unknown
    };
    struct req hb;
    req_init(&hb, CMD_HEARTBEAT);
    hb.c.u.heartbeat
        = (struct cmd_heartbeat) { .worker = "worker-1", .refs = refs, .n = 4 };
    int64_t before = av_now_ms();
    assert_int_equal(call(f, &hb), ANVIL_OK);
    struct cmd_heartbeat *h = &hb.c.u.heartbeat;
    assert_int_equal(h->ncanceled, 0);
    assert_int_equal(h->nlost, 3);
    assert_true(contains(h->lost, h->nlost, held));
    assert_true(contains(h->lost, h->nlost, queued));
    assert_true(contains(h->lost, h->nlost, 999));
    assert_true(h->deadline >= before + 30000);
    assert_true(h->deadline >= old);
    int64_t deadline = h->deadline;
    engine_cmd_fini(&hb.c);

    assert_int_equal(get_job(f, held, &j), ANVIL_OK);
    assert_int_equal(j.state, ANVIL_JOB_RUNNING);
    assert_int_equal(j.lease_deadline, deadline);
    job_fini(&j);
    assert_int_equal(state_of(f, queued), ANVIL_JOB_QUEUED);
}

static void
test_engine_heartbeat_with_a_stale_token_reports_the_job_lost(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    struct job j  = lease_one(f, "t");
    int64_t    dl = j.lease_deadline;
    job_fini(&j);
    struct lease_ref ref = { .id = id, .token = 2 };
    struct req       hb;
    req_init(&hb, CMD_HEARTBEAT);
    hb.c.u.heartbeat
        = (struct cmd_heartbeat) { .worker = "worker-2", .refs = &ref, .n = 1 };
    assert_int_equal(call(f, &hb), ANVIL_OK);
    assert_int_equal(hb.c.u.heartbeat.nlost, 1);
    assert_int_equal(hb.c.u.heartbeat.lost[0], id);
    assert_int_equal(hb.c.u.heartbeat.ncanceled, 0);
    assert_int_equal(hb.c.u.heartbeat.deadline, 0); // nothing extended
    engine_cmd_fini(&hb.c);
    // The real holder's lease is untouched.
    assert_int_equal(get_job(f, id, &j), ANVIL_OK);
    assert_int_equal(j.lease_deadline, dl);
    assert_string_equal(j.worker_id, "worker-1");
    job_fini(&j);
}

// ---- idempotency and resends ----

static void
test_engine_idempotency_key_returns_the_first_job(void **state)
{
    struct fx        *f = *state;
    struct cmd_submit s = job_spec("t");
    s.key               = "order-1";
    struct req r;
    req_init(&r, CMD_SUBMIT);
    r.c.u.submit = s;
    assert_int_equal(call(f, &r), ANVIL_OK);
    int64_t id = r.c.u.submit.id;
    assert_false(r.c.u.submit.existed);

    struct cmd_submit s2 = job_spec("other-type");
    s2.key               = "order-1";
    req_init(&r, CMD_SUBMIT);
    r.c.u.submit = s2;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.submit.id, id);
    assert_true(r.c.u.submit.existed);

    // Another key, or no key, is a new job.
    s.key = "order-2";
    assert_true(submit_spec(f, &s, 0) != id);
    s.key = NULL;
    assert_true(submit_spec(f, &s, 0) != id);
    // Only one job came of the key.
    assert_int_equal(poll_count(f, "other-type"), 0);
    assert_int_equal(poll_count(f, "t"), 3);
}

static void
test_engine_same_request_id_twice_makes_one_job(void **state)
{
    struct fx        *f  = *state;
    struct cmd_submit s  = job_spec("t");
    int64_t           id = submit_spec(f, &s, 0xabcdef);
    assert_int_equal(submit_spec(f, &s, 0xabcdef), id);
    assert_true(submit_spec(f, &s, 0xabcdf0) != id);

    struct req r;
    req_init(&r, CMD_HEALTH);
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.health.total, 2);
    engine_cmd_fini(&r.c);
    assert_int_equal(poll_count(f, "t"), 2);
}

// ---- delays and long-polls ----

static void
test_engine_delayed_job_is_handed_out_only_at_its_time(void **state)
{
    struct fx        *f = *state;
    struct cmd_submit s = job_spec("t");
    s.delay_ms          = 300;
    int64_t    t0       = av_mono_ms();
    int64_t    id       = submit_spec(f, &s, 0);
    struct job j;
    assert_int_equal(get_job(f, id, &j), ANVIL_OK);
    assert_int_equal(j.state, ANVIL_JOB_SCHEDULED);
    assert_true(j.run_at >= j.created_at + 300);
    job_fini(&j);
    assert_int_equal(poll_count(f, "t"), 0);

    const char *const types[] = { "t" };
    struct req        r;
    poll_init(&r, types, 1, 1, 2000);
    assert_int_equal(call(f, &r), ANVIL_OK);
    int64_t elapsed = r.done_mono - t0;
    assert_int_equal(r.c.u.poll.n, 1);
    assert_int_equal(r.c.u.poll.jobs[0].id, id);
    engine_cmd_fini(&r.c);
    assert_true(elapsed >= 290);
    assert_true(elapsed < 1500);
}

static void
test_engine_parked_poll_is_answered_when_a_job_arrives(void **state)
{
    struct fx        *f       = *state;
    const char *const types[] = { "t" };
    struct req        r;
    poll_init(&r, types, 1, 1, 2000);
    post(f, &r);
    flush(f);
    assert_false(is_done(&r)); // parked
    submit(f, "other");        // not its type: stays parked
    flush(f);
    assert_false(is_done(&r));

    int64_t t0 = av_mono_ms();
    int64_t id = submit(f, "t");
    assert_true(wait_done(&r, REPLY_TIMEOUT_MS));
    assert_int_equal(r.c.err.code, ANVIL_OK);
    assert_int_equal(r.c.u.poll.n, 1);
    assert_int_equal(r.c.u.poll.jobs[0].id, id);
    assert_int_equal(r.c.u.poll.jobs[0].state, ANVIL_JOB_RUNNING);
    assert_true(r.done_mono - t0 < 1000); // well before the 2 s wait
    assert_int_equal(r.calls, 1);
    engine_cmd_fini(&r.c);
}

static void
test_engine_parked_poll_times_out_empty(void **state)
{
    struct fx        *f       = *state;
    const char *const types[] = { "t" };
    struct req        r;
    poll_init(&r, types, 1, 1, 150);
    int64_t t0 = av_mono_ms();
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.poll.n, 0);
    assert_true(r.done_mono - t0 >= 140);
    engine_cmd_fini(&r.c);
    // A job submitted afterwards is not lost to the expired poll.
    int64_t id = submit(f, "t");
    assert_int_equal(state_of(f, id), ANVIL_JOB_QUEUED);
    assert_int_equal(poll_count(f, "t"), 1);
}

static void
test_engine_parked_wait_is_answered_when_the_job_completes(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    struct job j  = lease_one(f, "t");
    job_fini(&j);

    struct req w;
    req_init(&w, CMD_WAIT);
    w.c.u.wait.id         = id;
    w.c.u.wait.timeout_ms = 5000;
    post(f, &w);
    flush(f);
    assert_false(is_done(&w));

    int64_t t0 = av_mono_ms();
    assert_int_equal(complete(f, id, 1, "done!"), ANVIL_OK);
    assert_true(wait_done(&w, REPLY_TIMEOUT_MS));
    assert_int_equal(w.c.err.code, ANVIL_OK);
    assert_true(w.c.u.wait.done);
    assert_int_equal(w.c.u.wait.job.state, ANVIL_JOB_SUCCEEDED);
    assert_int_equal(w.c.u.wait.job.result_len, 5);
    assert_memory_equal(w.c.u.wait.job.result, "done!", 5);
    assert_true(w.done_mono - t0 < 1000);
    engine_cmd_fini(&w.c);
}

static void
test_engine_wait_times_out_with_done_false(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    struct req w;
    req_init(&w, CMD_WAIT);
    w.c.u.wait.id         = id;
    w.c.u.wait.timeout_ms = 200;
    int64_t t0            = av_mono_ms();
    assert_int_equal(call(f, &w), ANVIL_OK);
    assert_false(w.c.u.wait.done);
    assert_int_equal(w.c.u.wait.job.id, id);
    assert_int_equal(w.c.u.wait.job.state, ANVIL_JOB_QUEUED);
    assert_true(w.done_mono - t0 >= 190);
    engine_cmd_fini(&w.c);

    // timeout 0 answers at once; an unknown job is NOT_FOUND.
    req_init(&w, CMD_WAIT);
    w.c.u.wait.id = id;
    assert_int_equal(call(f, &w), ANVIL_OK);
    assert_false(w.c.u.wait.done);
    assert_int_equal(w.c.u.wait.job.state, ANVIL_JOB_QUEUED);
    engine_cmd_fini(&w.c);
    req_init(&w, CMD_WAIT);
    w.c.u.wait.id         = 777;
    w.c.u.wait.timeout_ms = 1000;
    assert_int_equal(call(f, &w), ANVIL_NOT_FOUND);
    engine_cmd_fini(&w.c);
}

// ---- engine_call: the caller's thread runs the batch when idle ----

struct thread_req {
    struct req r;
    pthread_t  thread; // where done() ran; set by on_done_thread
};

static void
on_done_thread(struct cmd *c, void *arg)
{
    struct thread_req *t = arg;
    t->thread            = pthread_self();
    on_done(c, &t->r);
}

static void
test_engine_call_on_an_idle_engine_answers_on_the_callers_thread(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    flush(f);
    // The engine thread may still be finishing flush()'s batch: then the
    // call is posted (and answered there); try again once it is idle.
    bool here = false;
    for (int tries = 0; tries < 200 && !here; tries++) {
        struct thread_req t;
        req_init(&t.r, CMD_GET);
        t.r.c.u.get.id = id;
        t.r.c.done     = on_done_thread;
        t.r.c.done_arg = &t;
        engine_call(f->e, &t.r.c);
        here = is_done(&t.r) && pthread_equal(t.thread, pthread_self());
        assert_true(wait_done(&t.r, REPLY_TIMEOUT_MS));
        assert_int_equal(t.r.c.err.code, ANVIL_OK);
        assert_int_equal(t.r.c.u.get.job.state, ANVIL_JOB_QUEUED);
        engine_cmd_fini(&t.r.c);
        if (!here)
            usleep(2000);
    }
    // Answered before engine_call returned, on this thread.
    assert_true(here);
}

// A long-poll parked by a caller's batch still ends at its own timeout,
// before the engine thread's next timer: the caller wakes the engine
// thread when it added an earlier one.
static void
test_engine_call_parked_wait_ends_at_its_timeout(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    flush(f);
    struct req w;
    req_init(&w, CMD_WAIT);
    w.c.u.wait.id         = id;
    w.c.u.wait.timeout_ms = 100;
    int64_t t0            = av_mono_ms();
    engine_call(f->e, &w.c);
    assert_false(is_done(&w));
    assert_true(wait_done(&w, REPLY_TIMEOUT_MS));
    assert_int_equal(w.c.err.code, ANVIL_OK);
    assert_false(w.c.u.wait.done);
    assert_true(w.done_mono - t0 >= 90);
    assert_true(w.done_mono - t0 < 600);
    engine_cmd_fini(&w.c);
    // Commands posted while nothing runs are still applied.
    assert_int_equal(complete(f, id, 1, "x"), ANVIL_FAILED_PRECONDITION);
}

static void
test_engine_wait_on_a_finished_job_answers_at_once(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    struct job j;
    assert_int_equal(cancel(f, id, &j), ANVIL_OK);
    job_fini(&j);
    struct req w;
    req_init(&w, CMD_WAIT);
    w.c.u.wait.id         = id;
    w.c.u.wait.timeout_ms = 60000;
    int64_t t0            = av_mono_ms();
    assert_int_equal(call(f, &w), ANVIL_OK);
    assert_true(w.c.u.wait.done);
    assert_int_equal(w.c.u.wait.job.state, ANVIL_JOB_CANCELED);
    assert_true(w.done_mono - t0 < 1000);
    engine_cmd_fini(&w.c);
}

static void
test_engine_stop_answers_parked_long_polls_unavailable(void **state)
{
    struct fx        *f       = *state;
    int64_t           id      = submit(f, "t");
    const char *const types[] = { "nothing" };
    struct req        p, w;
    poll_init(&p, types, 1, 1, 60000);
    req_init(&w, CMD_WAIT);
    w.c.u.wait.id         = id;
    w.c.u.wait.timeout_ms = 60000;
    post(f, &p);
    post(f, &w);
    flush(f);
    assert_false(is_done(&p));
    assert_false(is_done(&w));
    close_engine(f);
    assert_true(is_done(&p));
    assert_true(is_done(&w));
    assert_int_equal(p.c.err.code, ANVIL_UNAVAILABLE);
    assert_int_equal(w.c.err.code, ANVIL_UNAVAILABLE);
    assert_int_equal(p.calls, 1);
    assert_int_equal(w.calls, 1);
    engine_cmd_fini(&p.c);
    engine_cmd_fini(&w.c);
}

// ---- leases, timeouts, restarts ----

static void
test_engine_lease_expiry_fails_the_attempt_and_schedules_a_retry(void **state)
{
    struct fx *f = *state;
    restart(f, 200);
    int64_t    id = submit(f, "t");
    struct job j  = lease_one(f, "t");
    assert_int_equal(j.attempt, 1);
    job_fini(&j);

    assert_true(wait_state(f, id, ANVIL_JOB_SCHEDULED, 3000, &j));
    assert_string_equal(j.error, "lease expired");
    assert_int_equal(j.attempt, 1);
    assert_true(j.run_at > av_now_ms()); // backoff still ahead
    job_fini(&j);
    // The worker that lost the lease cannot complete it any more.
    assert_int_equal(complete(f, id, 1, "late"), ANVIL_FAILED_PRECONDITION);

    // After the backoff it is handed out again as attempt 2.
    const char *const types[] = { "t" };
    struct req        r;
    poll_init(&r, types, 1, 1, 3000);
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.poll.n, 1);
    assert_int_equal(r.c.u.poll.jobs[0].id, id);
    assert_int_equal(r.c.u.poll.jobs[0].attempt, 2);
    engine_cmd_fini(&r.c);
}

static void
test_engine_heartbeat_keeps_a_short_lease_alive(void **state)
{
    struct fx *f = *state;
    restart(f, 300);
    int64_t    id  = submit(f, "t");
    struct job j   = lease_one(f, "t");
    int64_t    end = j.lease_deadline + 300; // past the first lease
    job_fini(&j);
    struct lease_ref ref = { .id = id, .token = 1 };
    while (av_now_ms() < end) {
        struct req hb;
        req_init(&hb, CMD_HEARTBEAT);
        hb.c.u.heartbeat = (struct cmd_heartbeat) {
            .worker = "worker-1", .refs = &ref, .n = 1
        };
        assert_int_equal(call(f, &hb), ANVIL_OK);
        assert_int_equal(hb.c.u.heartbeat.nlost, 0);
        engine_cmd_fini(&hb.c);
        struct timespec ts = { 0, 50 * 1000000 }; // the worker's beat
        nanosleep(&ts, NULL);
    }
    assert_int_equal(state_of(f, id), ANVIL_JOB_RUNNING);
    assert_int_equal(complete(f, id, 1, "ok"), ANVIL_OK);
    assert_int_equal(state_of(f, id), ANVIL_JOB_SUCCEEDED);
}

static void
test_engine_attempt_timeout_fails_the_attempt(void **state)
{
    struct fx        *f = *state;
    struct cmd_submit s = job_spec("t");
    s.timeout_ms        = 100;
    int64_t    id       = submit_spec(f, &s, 0);
    struct job j        = lease_one(f, "t");
    job_fini(&j);
    assert_true(wait_state(f, id, ANVIL_JOB_SCHEDULED, 3000, &j));
    assert_string_equal(j.error, "timed out after 100 ms");
    assert_int_equal(j.attempt, 1);
    job_fini(&j);
    assert_int_equal(complete(f, id, 1, "late"), ANVIL_FAILED_PRECONDITION);
}

static void
test_engine_state_survives_a_restart(void **state)
{
    struct fx *f = *state;
    restart(f, 200);
    struct cmd_submit s = job_spec("t");
    s.priority          = 1;
    int64_t low         = submit_spec(f, &s, 0);
    s.priority          = 5;
    int64_t high        = submit_spec(f, &s, 0);
    s.priority          = 0;
    s.delay_ms          = 60000;
    int64_t    later    = submit_spec(f, &s, 0);
    int64_t    leased   = submit(f, "u");
    struct job j        = lease_one(f, "u");
    assert_int_equal(j.id, leased);
    job_fini(&j);
    int64_t done = submit(f, "v");
    assert_int_equal(cancel(f, done, &j), ANVIL_OK);
    job_fini(&j);

    restart(f, 200);
    // Queued jobs are pollable, in priority order.
    const char *const types[] = { "t" };
    struct req        r;
    poll_init(&r, types, 1, 10, 0);
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.poll.n, 2);
    assert_int_equal(r.c.u.poll.jobs[0].id, high);
    assert_int_equal(r.c.u.poll.jobs[1].id, low);
    engine_cmd_fini(&r.c);
    assert_int_equal(state_of(f, later), ANVIL_JOB_SCHEDULED);
    assert_int_equal(state_of(f, done), ANVIL_JOB_CANCELED);
    // The lease taken before the restart still expires.
    assert_true(wait_state(f, leased, ANVIL_JOB_SCHEDULED, 3000, &j));
    assert_string_equal(j.error, "lease expired");
    assert_int_equal(j.attempt, 1);
    job_fini(&j);
    // New ids do not reuse old ones.
    assert_true(submit(f, "w") > done);
}

static void
test_engine_lease_held_across_a_restart_can_still_complete(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    struct job j  = lease_one(f, "t");
    job_fini(&j);
    restart(f, 30000);
    assert_int_equal(state_of(f, id), ANVIL_JOB_RUNNING);
    assert_int_equal(poll_count(f, "t"), 0);
    assert_int_equal(complete(f, id, 2, "x"), ANVIL_FAILED_PRECONDITION);
    assert_int_equal(complete(f, id, 1, "x"), ANVIL_OK);
    assert_int_equal(state_of(f, id), ANVIL_JOB_SUCCEEDED);
}

static void
test_engine_job_lease_overrides_the_default_lease(void **state)
{
    struct fx        *f = *state;
    struct cmd_submit s = job_spec("t");
    s.lease_ms          = 150;
    int64_t    id       = submit_spec(f, &s, 0);
    int64_t    before   = av_now_ms();
    struct job j        = lease_one(f, "t");
    assert_true(j.lease_deadline >= before + 150);
    assert_true(j.lease_deadline <= av_now_ms() + 150);
    job_fini(&j);
    assert_true(wait_state(f, id, ANVIL_JOB_SCHEDULED, 3000, &j));
    assert_string_equal(j.error, "lease expired");
    job_fini(&j);
    // Jobs without their own lease keep the server's (30 s here).
    submit(f, "u");
    j = lease_one(f, "u");
    assert_true(j.lease_deadline >= av_now_ms() + 29000);
    job_fini(&j);
}

static void
test_engine_job_backoff_policy_sets_the_retry_delay(void **state)
{
    struct fx        *f        = *state;
    struct cmd_submit s        = job_spec("t");
    s.retry.initial_backoff_ms = 40;
    s.retry.max_backoff_ms     = 50;
    s.retry.backoff_multiplier = 3;
    int64_t    id              = submit_spec(f, &s, 0);
    struct job j               = lease_one(f, "t");
    job_fini(&j);
    int     st = 0;
    int64_t at = 0;
    int64_t t0 = av_now_ms();
    assert_int_equal(fail_job(f, id, 1, "again", false, &st, &at), ANVIL_OK);
    assert_int_equal(st, ANVIL_JOB_SCHEDULED);
    assert_true(at >= t0 + 32 && at < av_now_ms() + 48);

    // Retried soon after: attempt 2, whose failure waits min(120, 50).
    const char *const types[] = { "t" };
    struct req        r;
    poll_init(&r, types, 1, 1, 2000);
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.poll.n, 1);
    assert_int_equal(r.c.u.poll.jobs[0].attempt, 2);
    engine_cmd_fini(&r.c);
    t0 = av_now_ms();
    assert_int_equal(fail_job(f, id, 2, "again", false, &st, &at), ANVIL_OK);
    assert_int_equal(st, ANVIL_JOB_SCHEDULED);
    assert_true(at >= t0 + 40 && at < av_now_ms() + 60);
}

static void
test_engine_only_the_lease_holders_token_may_report(void **state)
{
    struct fx        *f       = *state;
    int64_t           id      = submit(f, "t");
    const char *const types[] = { "t" };
    struct req        r;
    poll_init(&r, types, 1, 1, 0);
    r.c.token_id = 5;
    r.c.role     = ANVIL_ROLE_WORKER;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.poll.n, 1);
    engine_cmd_fini(&r.c);

    // Another worker token: refused, and nothing changes.
    req_init(&r, CMD_COMPLETE);
    r.c.u.complete = (struct cmd_complete) { .id = id, .token = 1 };
    r.c.token_id   = 6;
    r.c.role       = ANVIL_ROLE_WORKER;
    assert_int_equal(call(f, &r), ANVIL_PERMISSION_DENIED);
    req_init(&r, CMD_FAIL);
    r.c.u.fail   = (struct cmd_fail) { .id = id, .token = 1, .error = "x" };
    r.c.token_id = 6;
    r.c.role     = ANVIL_ROLE_WORKER;
    assert_int_equal(call(f, &r), ANVIL_PERMISSION_DENIED);
    struct lease_ref ref = { .id = id, .token = 1 };
    req_init(&r, CMD_HEARTBEAT);
    r.c.u.heartbeat
        = (struct cmd_heartbeat) { .worker = "worker-2", .refs = &ref, .n = 1 };
    r.c.token_id = 6;
    r.c.role     = ANVIL_ROLE_WORKER;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.heartbeat.nlost, 1);
    engine_cmd_fini(&r.c);
    assert_int_equal(state_of(f, id), ANVIL_JOB_RUNNING);

    // The holder may.
    req_init(&r, CMD_COMPLETE);
    r.c.u.complete = (struct cmd_complete) { .id = id, .token = 1 };
    r.c.token_id   = 5;
    r.c.role       = ANVIL_ROLE_WORKER;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(state_of(f, id), ANVIL_JOB_SUCCEEDED);
}

// ---- list and health ----

static void
test_engine_list_pages_with_next_before(void **state)
{
    struct fx *f = *state;
    int64_t    ids[6];
    for (int i = 0; i < 6; i++)
        ids[i] = submit(f, "t");
    int64_t before = 0;
    size_t  seen   = 0;
    int     pages  = 0;
    for (int page = 0; page < 5; page++) {
        pages++;
        struct req r;
        req_init(&r, CMD_LIST);
        r.c.u.list.f
            = (struct store_list_filter) { .limit = 3, .before_id = before };
        assert_int_equal(call(f, &r), ANVIL_OK);
        for (size_t i = 0; i < r.c.u.list.n; i++)
            assert_int_equal(r.c.u.list.jobs[i].id, ids[5 - seen++]);
        before = r.c.u.list.next_before;
        engine_cmd_fini(&r.c);
        if (before == 0)
            break;
    }
    assert_int_equal(seen, 6);
    // A full last page says there is no next one: no empty third page.
    assert_int_equal(pages, 2);
}

static void
test_engine_health_reports_depths_and_totals(void **state)
{
    struct fx *f = *state;
    submit(f, "a");
    submit(f, "a");
    submit(f, "b");
    struct job j = lease_one(f, "b");
    job_fini(&j);
    struct req r;
    req_init(&r, CMD_HEALTH);
    assert_int_equal(call(f, &r), ANVIL_OK);
    struct cmd_health *h = &r.c.u.health;
    assert_int_equal(h->total, 3);
    assert_int_equal(h->n, 2);
    assert_string_equal(h->depths[0].type, "a");
    assert_int_equal(h->depths[0].queued, 2);
    assert_int_equal(h->depths[0].running, 0);
    assert_string_equal(h->depths[1].type, "b");
    assert_int_equal(h->depths[1].queued, 0);
    assert_int_equal(h->depths[1].running, 1);
    assert_true(h->uptime_ms >= 0);
    engine_cmd_fini(&r.c);
}

// ---- backoff ----

static void
test_engine_backoff_doubles_from_one_second_up_to_the_cap(void **state)
{
    (void) state;
    int64_t want[] = { 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000 };
    for (uint32_t a = 1; a <= 8; a++)
        assert_int_equal(
            engine_backoff_ms(a, 1000, 60000, 2.0, 0.5), want[a - 1]);
    assert_int_equal(engine_backoff_ms(100, 1000, 60000, 2.0, 0.5), 60000);
    assert_int_equal(
        engine_backoff_ms(UINT32_MAX, 1000, 60000, 2.0, 0.5), 60000);
    // Odd inputs: attempt 0 is the first delay; a cap below the initial
    // delay wins.
    assert_int_equal(engine_backoff_ms(0, 1000, 60000, 2.0, 0.5), 1000);
    assert_int_equal(engine_backoff_ms(1, 1000, 500, 2.0, 0.5), 500);
}

static void
test_engine_backoff_jitter_stays_within_twenty_percent(void **state)
{
    (void) state;
    assert_int_equal(engine_backoff_ms(1, 1000, 60000, 2.0, 0.0), 800);
    assert_int_equal(engine_backoff_ms(3, 1000, 60000, 2.0, 0.0), 3200);
    int64_t top = engine_backoff_ms(1, 1000, 60000, 2.0, 0.999999);
    assert_true(top >= 1199 && top < 1200);
    top = engine_backoff_ms(20, 1000, 60000, 2.0, 0.999999);
    assert_true(top >= 71999 && top < 72000);
    for (int i = 0; i < 1000; i++) {
        double  jit = (double) i / 1000.0;
        int64_t d   = engine_backoff_ms(2, 1000, 60000, 2.0, jit);
        assert_true(d >= 1600 && d < 2400);
    }
}

// ---- failures inside the engine ----

static void
test_engine_failed_submit_stores_nothing_and_the_next_works(void **state)
{
    struct fx *f        = *state;
    int        ins_stmt = learn_stmt(f, PROBE_INSERT);
    store_hook_step     = hook;
    hook_arm(ins_stmt, 1);

    struct cmd_submit s = job_spec("t");
    s.key               = "k";
    struct req r;
    req_init(&r, CMD_SUBMIT);
    r.c.u.submit = s;
    assert_int_equal(call(f, &r), ANVIL_INTERNAL);
    assert_true(strlen(r.c.err.msg) > 0);
    assert_int_equal(poll_count(f, "t"), 0);
    struct req h;
    req_init(&h, CMD_HEALTH);
    assert_int_equal(call(f, &h), ANVIL_OK);
    assert_int_equal(h.c.u.health.n, 0);
    engine_cmd_fini(&h.c);

    // The retry with the same key makes the job (existed = false).
    req_init(&r, CMD_SUBMIT);
    r.c.u.submit = s;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_false(r.c.u.submit.existed);
    assert_int_equal(poll_count(f, "t"), 1);
}

static void
test_engine_failed_poll_leaves_the_job_ready_for_the_next_poll(void **state)
{
    struct fx *f          = *state;
    int        lease_stmt = learn_stmt(f, PROBE_LEASE);
    store_hook_step       = hook;
    int64_t id            = submit(f, "t");

    hook_arm(lease_stmt, 1);
    const char *const types[] = { "t" };
    struct req        r;
    poll_init(&r, types, 1, 1, 0);
    assert_int_equal(call(f, &r), ANVIL_INTERNAL);
    engine_cmd_fini(&r.c);
    assert_int_equal(state_of(f, id), ANVIL_JOB_QUEUED);

    // The database error was transient; the job must not be lost.
    poll_init(&r, types, 1, 1, 0);
    assert_int_equal(call(f, &r), ANVIL_OK);
    size_t n = r.c.u.poll.n;
    engine_cmd_fini(&r.c);
    assert_int_equal(n, 1);
}

static void
test_engine_failed_timer_write_does_not_strand_a_delayed_job(void **state)
{
    struct fx *f          = *state;
    int        ready_stmt = learn_stmt(f, PROBE_MAKE_READY);
    store_hook_step       = hook;
    hook_arm(ready_stmt, 1);
    struct cmd_submit s = job_spec("t");
    s.delay_ms          = 50;
    int64_t id          = submit_spec(f, &s, 0);

    // The first attempt to make it ready fails; it must be retried.
    const char *const types[] = { "t" };
    struct req        r;
    poll_init(&r, types, 1, 1, 2000);
    assert_int_equal(call(f, &r), ANVIL_OK);
    size_t  n   = r.c.u.poll.n;
    int64_t got = n > 0 ? r.c.u.poll.jobs[0].id : 0;
    engine_cmd_fini(&r.c);
    assert_true(atomic_load(&hook_fail_cnt) <= 0); // the failure happened
    assert_int_equal(n, 1);
    assert_int_equal(got, id);
}

static void
test_engine_failed_commit_applies_nothing_and_loses_nothing(void **state)
{
    struct fx *f           = *state;
    int        commit_stmt = learn_stmt(f, PROBE_COMMIT);
    store_hook_step        = hook;
    int64_t id             = submit(f, "t");

    // The batch holding this Poll cannot commit: its lease is undone.
    hook_arm(commit_stmt, 1);
    const char *const types[] = { "t" };
    struct req        r;
    poll_init(&r, types, 1, 1, 0);
    assert_int_equal(call(f, &r), ANVIL_INTERNAL);
    assert_true(strlen(r.c.err.msg) > 0);
    assert_int_equal(r.c.u.poll.n, 0);
    engine_cmd_fini(&r.c);
    assert_true(atomic_load(&hook_fail_cnt) <= 0);
    struct job j;
    assert_int_equal(get_job(f, id, &j), ANVIL_OK);
    assert_int_equal(j.state, ANVIL_JOB_QUEUED);
    assert_int_equal(j.attempt, 0);
    job_fini(&j);

    // The same for a submit: nothing stored.
    hook_arm(commit_stmt, 1);
    struct req sr;
    req_init(&sr, CMD_SUBMIT);
    sr.c.u.submit = job_spec("lost");
    assert_int_equal(call(f, &sr), ANVIL_INTERNAL);
    assert_int_equal(poll_count(f, "lost"), 0);

    // The engine rebuilt its memory: the first job is still handed out.
    j = lease_one(f, "t");
    assert_int_equal(j.id, id);
    assert_int_equal(j.attempt, 1);
    job_fini(&j);
}

// ---- the event stream, retries ----

// One WatchEvents; r is the caller's (engine_cmd_fini it).
static void
watch_init(struct req *r, uint64_t after, uint32_t timeout_ms)
{
    req_init(r, CMD_EVENTS);
    r->c.u.events.f.after_seq = after;
    r->c.u.events.f.limit     = 100;
    r->c.u.events.timeout_ms  = timeout_ms;
}

static void
watch(struct fx *f, struct req *r, uint64_t after)
{
    watch_init(r, after, 0);
    assert_int_equal(call(f, r), ANVIL_OK);
}

// A heartbeat of one lease with a progress report; its lost count.
static size_t
heartbeat_progress(
    struct fx *f, int64_t id, uint32_t token, int percent, const char *msg)
{
    struct lease_ref ref = { .id = id,
        .token                   = token,
        .has_progress            = true,
        .progress_percent        = percent,
        .progress_message        = msg };
    struct req       hb;
    req_init(&hb, CMD_HEARTBEAT);
    hb.c.u.heartbeat
        = (struct cmd_heartbeat) { .worker = "worker-1", .refs = &ref, .n = 1 };
    assert_int_equal(call(f, &hb), ANVIL_OK);
    size_t lost = hb.c.u.heartbeat.nlost;
    engine_cmd_fini(&hb.c);
    return lost;
}

// The JOB_PROGRESS events of job id, as "percent message" lines.
static size_t
progress_events(struct fx *f, int64_t id, char *out, size_t cap)
{
    struct req r;
    watch_init(&r, 0, 0);
    r.c.u.events.f.job_id = id;
    r.c.u.events.f.kinds  = 1u << EV_JOB_PROGRESS;
    assert_int_equal(call(f, &r), ANVIL_OK);
    size_t n = r.c.u.events.n, at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && at < cap; i++) {
        const struct store_event *e = &r.c.u.events.events[i];
        assert_true(e->has_progress);
        assert_string_equal(e->worker, "worker-1");
        at += (size_t) snprintf(out + at, cap - at, "%d %s;",
            (int) e->progress_percent, e->message ? e->message : "");
    }
    engine_cmd_fini(&r.c);
    return n;
}

static void
test_engine_heartbeat_progress_is_stored_with_one_event_per_change(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    struct job j  = lease_one(f, "t");
    char       evs[256];
    assert_int_equal(heartbeat_progress(f, id, j.attempt, 10, "a"), 0);
    assert_int_equal(heartbeat_progress(f, id, j.attempt, 10, "a"), 0);
    assert_int_equal(heartbeat_progress(f, id, j.attempt, 55, "b"), 0);
    assert_int_equal(progress_events(f, id, evs, sizeof(evs)), 2);
    assert_string_equal(evs, "10 a;55 b;");
    // A stale token is lost, and its progress ignored.
    assert_int_equal(heartbeat_progress(f, id, j.attempt + 1, 99, "x"), 1);
    assert_int_equal(progress_events(f, id, evs, sizeof(evs)), 2);
    struct job got;
    assert_int_equal(get_job(f, id, &got), ANVIL_OK);
    assert_true(got.has_progress);
    assert_int_equal(got.progress_percent, 55);
    assert_string_equal(got.progress_message, "b");
    job_fini(&got);
    // Kept once the job finished; no report is taken after that.
    assert_int_equal(complete(f, id, j.attempt, "ok"), ANVIL_OK);
    assert_int_equal(heartbeat_progress(f, id, j.attempt, 70, "late"), 1);
    assert_int_equal(get_job(f, id, &got), ANVIL_OK);
    assert_int_equal(got.progress_percent, 55);
    job_fini(&got);
    job_fini(&j);
}

static void
test_engine_events_tell_a_job_s_life_in_order(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    struct job j  = lease_one(f, "t");
    assert_int_equal(complete(f, id, j.attempt, "42"), ANVIL_OK);
    job_fini(&j);

    // The worker's first poll is an event too (WORKER_JOINED): filter.
    struct req r;
    watch_init(&r, 0, 0);
    r.c.u.events.f.job_id = id;
    assert_int_equal(call(f, &r), ANVIL_OK);
    struct cmd_events *w = &r.c.u.events;
    assert_int_equal(w->n, 3);
    const int kinds[] = { EV_JOB_SUBMITTED, EV_JOB_STARTED, EV_JOB_SUCCEEDED };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(w->events[i].kind, kinds[i]);
        assert_int_equal(w->events[i].job_id, id);
        assert_string_equal(w->events[i].type, "t");
        assert_string_equal(w->events[i].queue, "default");
        if (i > 0)
            assert_true(w->events[i].seq > w->events[i - 1].seq);
    }
    assert_string_equal(w->events[1].worker, "worker-1");
    assert_int_equal(w->events[1].attempt, 1);
    assert_int_equal(w->next_seq, w->events[2].seq);
    assert_int_equal(w->last_seq, 4);
    assert_false(w->missed);
    uint64_t next = w->next_seq;
    engine_cmd_fini(&r.c);

    // Nothing after the last one: answered at once, empty.
    watch(f, &r, next);
    assert_int_equal(r.c.u.events.n, 0);
    assert_int_equal(r.c.u.events.next_seq, next);
    engine_cmd_fini(&r.c);
}

static void
test_engine_watch_waits_for_the_next_event(void **state)
{
    struct fx *f = *state;
    submit(f, "t");
    struct req first;
    watch(f, &first, 0);
    uint64_t next = first.c.u.events.next_seq;
    engine_cmd_fini(&first.c);

    struct req r;
    watch_init(&r, next, 5000);
    post(f, &r);
    flush(f);
    assert_false(is_done(&r)); // parked: nothing new yet
    int64_t id = submit(f, "u");
    assert_true(wait_done(&r, REPLY_TIMEOUT_MS));
    assert_int_equal(r.c.err.code, ANVIL_OK);
    assert_int_equal(r.c.u.events.n, 1);
    assert_int_equal(r.c.u.events.events[0].kind, EV_JOB_SUBMITTED);
    assert_int_equal(r.c.u.events.events[0].job_id, id);
    engine_cmd_fini(&r.c);
}

static void
test_engine_watch_of_one_job_waits_for_that_job(void **state)
{
    struct fx *f = *state;
    int64_t    a = submit(f, "t");
    submit(f, "u");
    // Everything of job a up to now: the read goes to the newest event.
    struct req r;
    watch_init(&r, 0, 0);
    r.c.u.events.f.job_id = a;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.events.n, 1);
    assert_int_equal(r.c.u.events.next_seq, 2);
    engine_cmd_fini(&r.c);

    // It parks: another job's event does not wake it, a's does.
    watch_init(&r, 2, 5000);
    r.c.u.events.f.job_id = a;
    post(f, &r);
    submit(f, "v");
    flush(f);
    assert_false(is_done(&r));
    struct job j = lease_one(f, "t");
    assert_int_equal(j.id, a);
    job_fini(&j);
    assert_true(wait_done(&r, REPLY_TIMEOUT_MS));
    assert_int_equal(r.c.err.code, ANVIL_OK);
    assert_int_equal(r.c.u.events.n, 1);
    assert_int_equal(r.c.u.events.events[0].kind, EV_JOB_STARTED);
    engine_cmd_fini(&r.c);
}

static void
test_engine_watch_filters_and_moves_past_what_it_skipped(void **state)
{
    struct fx *f = *state;
    int64_t    a = submit(f, "t");
    int64_t    b = submit(f, "t");
    submit(f, "t");
    struct job j = lease_one(f, "t"); // a
    assert_int_equal(j.id, a);
    assert_int_equal(complete(f, a, j.attempt, NULL), ANVIL_OK);
    job_fini(&j);

    struct req r;
    watch_init(&r, 0, 0);
    r.c.u.events.f.job_id = b;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.events.n, 1);
    assert_int_equal(r.c.u.events.events[0].job_id, b);
    engine_cmd_fini(&r.c);

    watch_init(&r, 0, 0);
    r.c.u.events.f.kinds = 1u << EV_JOB_SUCCEEDED;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.events.n, 1);
    assert_int_equal(r.c.u.events.events[0].job_id, a);
    engine_cmd_fini(&r.c);

    // A filter that matches nothing still moves next_seq to the newest
    // event, and its wait ends answered, empty.
    watch_init(&r, 0, 100);
    r.c.u.events.f.type = "none";
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.events.n, 0);
    assert_int_equal(r.c.u.events.next_seq, r.c.u.events.last_seq);
    assert_int_equal(r.c.u.events.last_seq, 6); // 3 jobs, a worker, 2
    engine_cmd_fini(&r.c);

    // tail: the newest two.
    watch_init(&r, 0, 0);
    r.c.u.events.tail = 2;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.events.n, 2);
    assert_int_equal(r.c.u.events.events[0].kind, EV_JOB_STARTED);
    assert_int_equal(r.c.u.events.events[1].seq, 6);
    engine_cmd_fini(&r.c);
}

static void
test_engine_retention_of_events_tells_a_late_consumer(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 1005; i++)
        submit(f, "t");
    // Keep the newest 1000: the sweep at start deletes the 5 oldest.
    close_engine(f);
    f->cfg.event_max = 1000;
    assert_int_equal(open_engine(f), 0);
    struct req r;
    int64_t    deadline = av_mono_ms() + REPLY_TIMEOUT_MS;
    for (;;) {
        watch(f, &r, 0);
        if (r.c.u.events.first_seq == 6 || av_mono_ms() > deadline)
            break;
        engine_cmd_fini(&r.c);
    }
    assert_int_equal(r.c.u.events.first_seq, 6);
    assert_true(r.c.u.events.missed);
    assert_int_equal(r.c.u.events.events[0].seq, 6);
    engine_cmd_fini(&r.c);
    // From just before the oldest kept: nothing was missed.
    watch(f, &r, 5);
    assert_false(r.c.u.events.missed);
    engine_cmd_fini(&r.c);
    // Past the newest (another database's consumer): missed, from the end.
    watch(f, &r, 99999);
    assert_true(r.c.u.events.missed);
    assert_int_equal(r.c.u.events.next_seq, 1005);
    engine_cmd_fini(&r.c);
}

static int
retry(struct fx *f, int64_t id, uint32_t more, struct job *out)
{
    struct req r;
    req_init(&r, CMD_RETRY);
    r.c.u.retry.id           = id;
    r.c.u.retry.max_attempts = more;
    int rc                   = call(f, &r);
    *out                     = r.c.u.retry.job;
    return rc;
}

static void
test_engine_retry_runs_a_failed_job_again_keeping_its_attempts(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    struct job j  = lease_one(f, "t");
    int        st;
    int64_t    at;
    assert_int_equal(fail_job(f, id, j.attempt, "boom", true, &st, &at), 0);
    assert_int_equal(st, ANVIL_JOB_FAILED);
    job_fini(&j);

    struct job out;
    assert_int_equal(retry(f, id, 0, &out), ANVIL_OK);
    assert_int_equal(out.state, ANVIL_JOB_QUEUED);
    assert_int_equal(out.attempt, 1);
    assert_int_equal(out.retry.max_attempts, 3); // it had 2 left
    assert_string_equal(out.error, "boom");
    job_fini(&out);
    j = lease_one(f, "t");
    assert_int_equal(j.id, id);
    assert_int_equal(j.attempt, 2);
    assert_int_equal(complete(f, id, j.attempt, "ok"), ANVIL_OK);
    job_fini(&j);

    // The history: submitted, started, failed, retried, started, succeeded.
    struct req r;
    watch_init(&r, 0, 0);
    r.c.u.events.f.job_id = id;
    assert_int_equal(call(f, &r), ANVIL_OK);
    const int kinds[] = { EV_JOB_SUBMITTED, EV_JOB_STARTED, EV_JOB_FAILED,
        EV_JOB_RETRIED, EV_JOB_STARTED, EV_JOB_SUCCEEDED };
    assert_int_equal(r.c.u.events.n, 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(r.c.u.events.events[i].kind, kinds[i]);
    assert_string_equal(r.c.u.events.events[2].message, "boom");
    assert_int_equal(r.c.u.events.events[4].attempt, 2);
    engine_cmd_fini(&r.c);

    // Only FAILED or CANCELED jobs; unknown ones are not found.
    assert_int_equal(retry(f, id, 0, &out), ANVIL_FAILED_PRECONDITION);
    job_fini(&out);
    assert_int_equal(retry(f, 9999, 0, &out), ANVIL_NOT_FOUND);
    job_fini(&out);
}

static void
test_engine_retry_gives_at_least_the_attempts_asked_for(void **state)
{
    struct fx *f  = *state;
    int64_t    id = submit(f, "t");
    for (uint32_t a = 1; a <= 3; a++) {
        struct job j = lease_one(f, "t");
        int        st;
        int64_t    at;
        assert_int_equal(fail_job(f, id, a, "no", false, &st, &at), 0);
        job_fini(&j);
        if (a < 3) { // make the retry due now
            struct req r;
            req_init(&r, CMD_CANCEL);
            r.c.u.cancel.id = id;
            assert_int_equal(call(f, &r), ANVIL_OK);
            engine_cmd_fini(&r.c);
            struct job out;
            assert_int_equal(retry(f, id, 0, &out), ANVIL_OK);
            job_fini(&out);
        }
    }
    assert_int_equal(state_of(f, id), ANVIL_JOB_FAILED);
    struct job out;
    assert_int_equal(retry(f, id, 5, &out), ANVIL_OK);
    assert_int_equal(out.attempt, 3);
    assert_int_equal(out.retry.max_attempts, 8);
    job_fini(&out);
}

static void
test_engine_worker_joins_and_is_lost_as_events(void **state)
{
    struct fx *f = *state;
    close_engine(f);
    f->cfg.worker_lost_ms = 200;
    assert_int_equal(open_engine(f), 0);
    assert_int_equal(poll_count(f, "t"), 0); // worker-1 joins

    struct req r;
    watch_init(&r, 0, 5000);
    r.c.u.events.f.kinds = 1u << EV_WORKER_LOST;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.events.n, 1);
    assert_string_equal(r.c.u.events.events[0].worker, "worker-1");
    engine_cmd_fini(&r.c);

    watch(f, &r, 0);
    assert_int_equal(r.c.u.events.n, 2);
    assert_int_equal(r.c.u.events.events[0].kind, EV_WORKER_JOINED);
    assert_int_equal(r.c.u.events.events[1].kind, EV_WORKER_LOST);
    engine_cmd_fini(&r.c);
    // Back again: it joins again.
    assert_int_equal(poll_count(f, "t"), 0);
    watch(f, &r, 2);
    assert_int_equal(r.c.u.events.n, 1);
    assert_int_equal(r.c.u.events.events[0].kind, EV_WORKER_JOINED);
    engine_cmd_fini(&r.c);
}

// A command that fails after it wrote events leaves none: the workflow's
// STARTED and its steps' SUBMITTED go with the rolled-back savepoint,
// while the job submitted before it in the batch keeps its event.
static void
test_engine_a_rolled_back_command_leaves_no_events(void **state)
{
    struct fx *f    = *state;
    int        edge = learn_stmt(f, PROBE_EDGE);

    const char *const     after_a[] = { "a" };
    const struct dag_step ds[]      = { { "a", NULL, 0 }, { "b", after_a, 1 } };
    struct dag           *dag       = NULL;
    struct anvil_error    err       = { 0 };
    assert_int_equal(dag_build(ds, 2, &dag, &err), ANVIL_OK);
    const struct cmd_wf_step steps[] = {
        { .name = "a", .type = "t", .queue = "default" },
        { .name = "b", .type = "t", .queue = "default" },
    };
    struct req job;
    req_init(&job, CMD_SUBMIT);
    job.c.u.submit = job_spec("t");
    struct req wf;
    req_init(&wf, CMD_WF_SUBMIT);
    wf.c.u.wf_submit = (struct cmd_wf_submit) {
        .name = "w", .steps = steps, .n = 2, .dag = dag
    };
    hook_arm(edge, 1);
    post(f, &job); // one batch, most likely; either way the same events
    post(f, &wf);
    assert_true(wait_done(&wf, REPLY_TIMEOUT_MS));
    assert_true(wait_done(&job, REPLY_TIMEOUT_MS));
    assert_int_not_equal(wf.c.err.code, ANVIL_OK);
    assert_int_equal(job.c.err.code, ANVIL_OK);
    dag_free(dag);

    struct req r;
    watch(f, &r, 0);
    assert_int_equal(r.c.u.events.n, 1);
    assert_int_equal(r.c.u.events.events[0].kind, EV_JOB_SUBMITTED);
    assert_int_equal(r.c.u.events.events[0].job_id, job.c.u.submit.id);
    engine_cmd_fini(&r.c);
}

static void
test_engine_health_counts_ended_jobs_per_minute(void **state)
{
    struct fx *f = *state;
    int64_t    a = submit(f, "t");
    int64_t    b = submit(f, "t");
    struct job j = lease_one(f, "t");
    assert_int_equal(complete(f, a, j.attempt, NULL), ANVIL_OK);
    job_fini(&j);
    j = lease_one(f, "t");
    int     st;
    int64_t at;
    assert_int_equal(fail_job(f, b, j.attempt, "x", true, &st, &at), 0);
    job_fini(&j);

    struct req r;
    req_init(&r, CMD_HEALTH);
    assert_int_equal(call(f, &r), ANVIL_OK);
    uint64_t ok = 0, failed = 0;
    for (size_t i = 0; i < r.c.u.health.n_recent; i++) {
        assert_string_equal(r.c.u.health.recent[i].type, "t");
        ok += r.c.u.health.recent[i].succeeded;
        failed += r.c.u.health.recent[i].failed;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(failed, 1);
    assert_int_equal(r.c.u.health.last_event_seq, 7); // and WORKER_JOINED
    engine_cmd_fini(&r.c);
}

// ---- paused queues ----

// Pauses (or resumes) queue; returns the code, *changed (may be NULL) what
// the engine said.
static int
set_paused(struct fx *f, const char *queue, bool pause, bool *changed)
{
    struct req r;
    req_init(&r, pause ? CMD_QUEUE_PAUSE : CMD_QUEUE_RESUME);
    r.c.u.queue.queue = queue;
    int rc            = call(f, &r);
    if (changed != NULL)
        *changed = r.c.u.queue.changed;
    return rc;
}

static int64_t
submit_to(struct fx *f, const char *queue)
{
    struct cmd_submit s = job_spec("t");
    s.queue             = queue;
    return submit_spec(f, &s, 0);
}

// Fills r as a Poll of type "t" over the nq queues given.
static void
poll_queues(
    struct req *r, const char *const *queues, size_t nq, uint32_t wait_ms)
{
    static const char *const types[] = { "t" };
    poll_init(r, types, 1, 10, wait_ms);
    r->c.u.poll.queues = queues;
    r->c.u.poll.nq     = nq;
}

// How many jobs a Poll of type "t" over queues gets now (they stay
// leased); *id (may be NULL) the first one's.
static size_t
poll_now(struct fx *f, const char *const *queues, size_t nq, int64_t *id)
{
    struct req r;
    poll_queues(&r, queues, nq, 0);
    assert_int_equal(call(f, &r), ANVIL_OK);
    size_t n = r.c.u.poll.n;
    if (id != NULL && n > 0)
        *id = r.c.u.poll.jobs[0].id;
    engine_cmd_fini(&r.c);
    return n;
}

// Health's paused queues, joined with ',' into buf.
static void
health_paused(struct fx *f, char *buf, size_t len)
{
    struct req r;
    req_init(&r, CMD_HEALTH);
    assert_int_equal(call(f, &r), ANVIL_OK);
    buf[0] = '\0';
    for (size_t i = 0; i < r.c.u.health.n_paused; i++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? "," : "",
            r.c.u.health.paused[i]);
    engine_cmd_fini(&r.c);
}

static void
test_engine_poll_skips_a_paused_queue_and_serves_another(void **state)
{
    struct fx *f       = *state;
    bool       changed = false;
    // A queue no job has used yet can be paused; twice is OK.
    assert_int_equal(set_paused(f, "slow", true, &changed), ANVIL_OK);
    assert_true(changed);
    assert_int_equal(set_paused(f, "slow", true, &changed), ANVIL_OK);
    assert_false(changed);

    int64_t slow = submit_to(f, "slow"); // submits are still taken
    int64_t fast = submit_to(f, "default");
    assert_int_equal(state_of(f, slow), ANVIL_JOB_QUEUED);

    static const char *const both[] = { "slow", "default" };
    int64_t                  got    = 0;
    assert_int_equal(poll_now(f, both, 2, &got), 1);
    assert_int_equal(got, fast);
    assert_int_equal(poll_now(f, both, 1, NULL), 0);
    assert_int_equal(state_of(f, slow), ANVIL_JOB_QUEUED);

    // Health lists it and marks its depth row.
    struct req r;
    req_init(&r, CMD_HEALTH);
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.health.n_paused, 1);
    assert_string_equal(r.c.u.health.paused[0], "slow");
    size_t rows = 0;
    for (size_t i = 0; i < r.c.u.health.n; i++) {
        const struct store_depth *d = &r.c.u.health.depths[i];
        assert_int_equal(d->paused, strcmp(d->queue, "slow") == 0);
        rows += strcmp(d->queue, "slow") == 0;
    }
    assert_int_equal(rows, 1);
    engine_cmd_fini(&r.c);

    // Only changes are events, each naming its queue.
    assert_int_equal(set_paused(f, "slow", false, &changed), ANVIL_OK);
    assert_true(changed);
    assert_int_equal(set_paused(f, "slow", false, &changed), ANVIL_OK);
    assert_false(changed);
    watch_init(&r, 0, 0);
    r.c.u.events.f.kinds = (1u << EV_QUEUE_PAUSED) | (1u << EV_QUEUE_RESUMED);
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.events.n, 2);
    assert_int_equal(r.c.u.events.events[0].kind, EV_QUEUE_PAUSED);
    assert_int_equal(r.c.u.events.events[1].kind, EV_QUEUE_RESUMED);
    assert_string_equal(r.c.u.events.events[0].queue, "slow");
    assert_string_equal(r.c.u.events.events[1].queue, "slow");
    engine_cmd_fini(&r.c);
    assert_int_equal(poll_now(f, both, 1, &got), 1);
    assert_int_equal(got, slow);
}

static void
test_engine_resume_wakes_a_poll_parked_on_a_paused_queue(void **state)
{
    struct fx               *f        = *state;
    static const char *const queues[] = { "slow" };
    assert_int_equal(set_paused(f, "slow", true, NULL), ANVIL_OK);
    int64_t id = submit_to(f, "slow");

    struct req r;
    poll_queues(&r, queues, 1, 10000);
    post(f, &r);
    flush(f);
    assert_false(is_done(&r)); // parked, though the queue holds a job
    submit_to(f, "slow");      // more work in the paused queue: still parked
    flush(f);
    assert_false(is_done(&r));

    int64_t t0 = av_mono_ms();
    assert_int_equal(set_paused(f, "slow", false, NULL), ANVIL_OK);
    assert_true(wait_done(&r, REPLY_TIMEOUT_MS));
    assert_int_equal(r.c.err.code, ANVIL_OK);
    assert_int_equal(r.c.u.poll.n, 2);
    assert_int_equal(r.c.u.poll.jobs[0].id, id);
    assert_true(r.done_mono - t0 < 1000); // not at the 10 s wait's end
    engine_cmd_fini(&r.c);
}

static void
test_engine_paused_queue_stays_paused_after_a_restart(void **state)
{
    struct fx               *f        = *state;
    static const char *const queues[] = { "slow" };
    char                     paused[64];
    assert_int_equal(set_paused(f, "slow", true, NULL), ANVIL_OK);
    assert_int_equal(set_paused(f, "archive", true, NULL), ANVIL_OK);
    int64_t id = submit_to(f, "slow");
    restart(f, 30000);

    health_paused(f, paused, sizeof(paused));
    assert_string_equal(paused, "archive,slow");
    assert_int_equal(poll_now(f, queues, 1, NULL), 0);
    assert_int_equal(set_paused(f, "slow", false, NULL), ANVIL_OK);
    int64_t got = 0;
    assert_int_equal(poll_now(f, queues, 1, &got), 1);
    assert_int_equal(got, id);

    restart(f, 30000); // the resume is stored too
    health_paused(f, paused, sizeof(paused));
    assert_string_equal(paused, "archive");
}

static void
test_engine_failed_pause_stores_nothing_and_the_queue_keeps_leasing(
    void **state)
{
    struct fx               *f        = *state;
    static const char *const queues[] = { "slow" };
    char                     paused[64];
    int                      stmt = learn_stmt(f, PROBE_PAUSE);
    hook_arm(stmt, 1);
    assert_int_equal(set_paused(f, "slow", true, NULL), ANVIL_INTERNAL);
    int64_t id  = submit_to(f, "slow");
    int64_t got = 0;
    assert_int_equal(poll_now(f, queues, 1, &got), 1);
    assert_int_equal(got, id);
    health_paused(f, paused, sizeof(paused));
    assert_string_equal(paused, "");
    restart(f, 30000);
    health_paused(f, paused, sizeof(paused));
    assert_string_equal(paused, "");
}

// ---- rate limits ----

static int
set_limit(struct fx *f, const char *queue, double rate, uint32_t burst)
{
    struct req r;
    req_init(&r, CMD_QUEUE_LIMIT);
    r.c.u.queue.queue = queue;
    r.c.u.queue.rate  = rate;
    r.c.u.queue.burst = burst;
    return call(f, &r);
}

// Health's one rate limit's tokens (-1: none).
static double
health_tokens(struct fx *f)
{
    struct req r;
    req_init(&r, CMD_HEALTH);
    assert_int_equal(call(f, &r), ANVIL_OK);
    double tokens
        = r.c.u.health.n_limits == 1 ? r.c.u.health.limits[0].tokens : -1;
    engine_cmd_fini(&r.c);
    return tokens;
}

static void
test_engine_rate_limit_leases_the_burst_then_wakes_a_parked_poll(void **state)
{
    struct fx               *f        = *state;
    static const char *const queues[] = { "mail" };
    for (int i = 0; i < 4; i++)
        submit_to(f, "mail");
    int64_t other = submit_to(f, "other");
    assert_int_equal(set_limit(f, "mail", 20, 2), ANVIL_OK);
    assert_int_equal(poll_now(f, queues, 1, NULL), 2); // the burst
    assert_int_equal(poll_now(f, queues, 1, NULL), 0);
    static const char *const both[] = { "mail", "other" };
    int64_t                  got    = 0;
    assert_int_equal(poll_now(f, both, 2, &got), 1); // others go on
    assert_int_equal(got, other);

    // A Poll parked on the empty bucket gets the next token's job, about
    // 50 ms later (20/s), not at its wait's end.
    struct req r;
    poll_queues(&r, queues, 1, 10000);
    int64_t t0 = av_mono_ms();
    post(f, &r);
    assert_true(wait_done(&r, REPLY_TIMEOUT_MS));
    assert_int_equal(r.c.err.code, ANVIL_OK);
    assert_int_equal(r.c.u.poll.n, 1);
    assert_true(r.done_mono - t0 < 1000);
    engine_cmd_fini(&r.c);
}

static void
test_engine_rate_limit_bucket_outlasts_a_restart_and_a_failed_commit(
    void **state)
{
    struct fx               *f        = *state;
    static const char *const queues[] = { "mail" };
    for (int i = 0; i < 6; i++)
        submit_to(f, "mail");
    // 0.001/s: no token comes back within the test.
    assert_int_equal(set_limit(f, "mail", 0.001, 3), ANVIL_OK);
    struct req r;
    poll_queues(&r, queues, 1, 0);
    r.c.u.poll.max = 1;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.poll.n, 1);
    engine_cmd_fini(&r.c);
    assert_true(health_tokens(f) < 2.01);

    // A Poll whose batch cannot commit spends nothing.
    int commit_stmt = learn_stmt(f, PROBE_COMMIT);
    store_hook_step = hook;
    hook_arm(commit_stmt, 1);
    poll_queues(&r, queues, 1, 0);
    assert_int_equal(call(f, &r), ANVIL_INTERNAL);
    engine_cmd_fini(&r.c);
    assert_true(health_tokens(f) > 1.99);

    // A restart refills only by the time that passed: two tokens left.
    restart(f, 30000);
    assert_true(health_tokens(f) > 1.99 && health_tokens(f) < 2.01);
    assert_int_equal(poll_now(f, queues, 1, NULL), 2);
    assert_int_equal(poll_now(f, queues, 1, NULL), 0);
    restart(f, 30000);
    assert_int_equal(poll_now(f, queues, 1, NULL), 0);

    // Removing the limit serves the rest at once, also after a restart.
    assert_int_equal(set_limit(f, "mail", 0, 0), ANVIL_OK);
    assert_true(health_tokens(f) < 0);
    restart(f, 30000);
    assert_int_equal(poll_now(f, queues, 1, NULL), 3);
}

static void
test_engine_rate_limit_change_keeps_tokens_and_writes_events(void **state)
{
    struct fx *f = *state;
    assert_int_equal(set_limit(f, "mail", 0.001, 5), ANVIL_OK);
    for (int i = 0; i < 4; i++)
        submit_to(f, "mail");
    static const char *const queues[] = { "mail" };
    assert_int_equal(poll_now(f, queues, 1, NULL), 4);
    // A higher burst does not refill; a lower one caps.
    assert_int_equal(set_limit(f, "mail", 0.001, 10), ANVIL_OK);
    assert_true(health_tokens(f) < 1.01);
    struct req r;
    req_init(&r, CMD_QUEUE_LIMIT);
    r.c.u.queue.queue = "mail";
    r.c.u.queue.rate  = 0.001;
    r.c.u.queue.burst = 10;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_false(r.c.u.queue.changed); // the same limit again
    watch_init(&r, 0, 0);
    r.c.u.events.f.kinds = 1u << EV_QUEUE_LIMITED;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.events.n, 2);
    assert_string_equal(r.c.u.events.events[0].queue, "mail");
    assert_string_equal(r.c.u.events.events[0].message, "rate=0.001/s burst=5");
    assert_string_equal(
        r.c.u.events.events[1].message, "rate=0.001/s burst=10");
    engine_cmd_fini(&r.c);
}

// Posts limits on queue "mail" back to back (they may share a batch);
// each must change something.
static void
post_limits(struct fx *f, const double *rates, const uint32_t *bursts, int n)
{
    struct req r[4];
    for (int i = 0; i < n; i++) {
        req_init(&r[i], CMD_QUEUE_LIMIT);
        r[i].c.u.queue.queue = "mail";
        r[i].c.u.queue.rate  = rates[i];
        r[i].c.u.queue.burst = bursts[i];
        post(f, &r[i]);
    }
    for (int i = 0; i < n; i++) {
        assert_true(wait_done(&r[i], REPLY_TIMEOUT_MS));
        assert_int_equal(r[i].c.err.code, ANVIL_OK);
        assert_true(r[i].c.u.queue.changed);
    }
}

// Health's one limit's rate and burst as "R/B" ("" for none).
static void
health_limit(struct fx *f, char *buf, size_t len)
{
    struct req r;
    req_init(&r, CMD_HEALTH);
    assert_int_equal(call(f, &r), ANVIL_OK);
    buf[0] = '\0';
    if (r.c.u.health.n_limits == 1)
        snprintf(buf, len, "%g/%u", r.c.u.health.limits[0].rate,
            r.c.u.health.limits[0].burst);
    engine_cmd_fini(&r.c);
}

static void
test_engine_rate_limits_in_one_batch_apply_in_order(void **state)
{
    struct fx *f = *state;
    char       lim[32];
    // Set, remove, set again; then remove and set the same again.
    post_limits(f, (double[]) { 10, 0, 20 }, (uint32_t[]) { 5, 0, 2 }, 3);
    health_limit(f, lim, sizeof(lim));
    assert_string_equal(lim, "20/2");
    post_limits(f, (double[]) { 0, 20 }, (uint32_t[]) { 0, 2 }, 2);
    health_limit(f, lim, sizeof(lim));
    assert_string_equal(lim, "20/2");
    restart(f, 30000);
    health_limit(f, lim, sizeof(lim));
    assert_string_equal(lim, "20/2");
    post_limits(f, (double[]) { 5, 0 }, (uint32_t[]) { 1, 0 }, 2);
    health_limit(f, lim, sizeof(lim));
    assert_string_equal(lim, "");
    restart(f, 30000);
    health_limit(f, lim, sizeof(lim));
    assert_string_equal(lim, "");
}

// ---- RetryJobs and CancelJobs ----

// Posts RetryJobs (retry) or CancelJobs with filter flt and request id
// rid; returns the code. The caller engine_cmd_fini's r->c.
static int
bulk(struct fx *f, struct req *r, bool retry, struct store_list_filter flt,
    uint64_t rid)
{
    req_init(r, retry ? CMD_RETRY_MANY : CMD_CANCEL_MANY);
    r->c.u.bulk.f   = flt;
    r->c.request_id = rid;
    int rc          = call(f, r);
    if (rc != ANVIL_OK)
        fprintf(stderr, "bulk: %s\n", r->c.err.msg);
    return rc;
}

// A job of this type in queue "default" whose only attempt failed.
static int64_t
failed_job(struct fx *f, const char *type)
{
    int64_t    id = submit(f, type);
    struct job j  = lease_one(f, type);
    int        st;
    int64_t    at;
    assert_int_equal(j.id, id);
    assert_int_equal(fail_job(f, id, j.attempt, "dead", true, &st, &at), 0);
    assert_int_equal(st, ANVIL_JOB_FAILED);
    job_fini(&j);
    return id;
}

static void
test_engine_retry_many_retries_only_the_matching_failed_jobs(void **state)
{
    struct fx *f = *state;
    int64_t    a = failed_job(f, "t");
    int64_t    b = failed_job(f, "t");
    int64_t    c = failed_job(f, "t");
    int64_t    u = failed_job(f, "u");  // another type
    int64_t    q = submit(f, "t");      // QUEUED
    int64_t    x = submit_to(f, "dlq"); // CANCELED, in another queue
    struct job j;
    assert_int_equal(cancel(f, x, &j), ANVIL_OK);
    job_fini(&j);

    // At most 2: the newest two, and a cursor because one more matches.
    struct req               r;
    struct store_list_filter flt
        = { .state = ANVIL_JOB_FAILED, .type = "t", .limit = 2 };
    assert_int_equal(bulk(f, &r, true, flt, 0), ANVIL_OK);
    assert_int_equal(r.c.u.bulk.n, 2);
    assert_int_equal(r.c.u.bulk.ids[0], c);
    assert_int_equal(r.c.u.bulk.ids[1], b);
    assert_int_equal(r.c.u.bulk.next_before, b);
    engine_cmd_fini(&r.c);
    assert_int_equal(state_of(f, c), ANVIL_JOB_QUEUED);
    assert_int_equal(state_of(f, b), ANVIL_JOB_QUEUED);
    assert_int_equal(state_of(f, a), ANVIL_JOB_FAILED);

    // Past the cursor: the last one, and no cursor.
    flt.before_id = b;
    assert_int_equal(bulk(f, &r, true, flt, 0), ANVIL_OK);
    assert_int_equal(r.c.u.bulk.n, 1);
    assert_int_equal(r.c.u.bulk.ids[0], a);
    assert_int_equal(r.c.u.bulk.next_before, 0);
    engine_cmd_fini(&r.c);

    // Done: nothing FAILED of type t is left.
    flt.before_id = 0;
    assert_int_equal(bulk(f, &r, true, flt, 0), ANVIL_OK);
    assert_int_equal(r.c.u.bulk.n, 0);
    assert_int_equal(r.c.u.bulk.next_before, 0);
    engine_cmd_fini(&r.c);
    assert_int_equal(state_of(f, u), ANVIL_JOB_FAILED);
    assert_int_equal(state_of(f, q), ANVIL_JOB_QUEUED);
    assert_int_equal(state_of(f, x), ANVIL_JOB_CANCELED);

    // CANCELED in queue dlq; since/until bound the creation time.
    flt = (struct store_list_filter) {
        .state = ANVIL_JOB_CANCELED, .queue = "dlq", .limit = 100
    };
    flt.until = 1; // created before 1970-01-01T00:00:00.001Z: none
    assert_int_equal(bulk(f, &r, true, flt, 0), ANVIL_OK);
    assert_int_equal(r.c.u.bulk.n, 0);
    engine_cmd_fini(&r.c);
    flt.until = 0;
    flt.since = 1;
    assert_int_equal(bulk(f, &r, true, flt, 0), ANVIL_OK);
    assert_int_equal(r.c.u.bulk.n, 1);
    assert_int_equal(r.c.u.bulk.ids[0], x);
    engine_cmd_fini(&r.c);

    // Each retried job runs again as RetryJob would: attempt kept, a
    // RETRIED event, and a worker gets it.
    assert_int_equal(get_job(f, a, &j), ANVIL_OK);
    assert_int_equal(j.state, ANVIL_JOB_QUEUED);
    assert_int_equal(j.attempt, 1);
    assert_string_equal(j.error, "dead");
    job_fini(&j);
    watch_init(&r, 0, 0);
    r.c.u.events.f.job_id = a;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.events.n, 4);
    assert_int_equal(r.c.u.events.events[3].kind, EV_JOB_RETRIED);
    engine_cmd_fini(&r.c);
    assert_int_equal(poll_count(f, "t"), 4); // a, b, c and q
}

// A chain a -> b of steps of this type; returns the workflow's id.
static int64_t
chain(struct fx *f, const char *type)
{
    static const char *const after[] = { "a" };
    const struct dag_step    g[]     = { { "a", NULL, 0 }, { "b", after, 1 } };
    const struct cmd_wf_step s[]
        = { { .name = "a", .type = type, .queue = "default" },
              { .name = "b", .type = type, .queue = "default" } };
    struct dag        *dag = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(dag_build(g, 2, &dag, &err), ANVIL_OK);
    struct req r;
    req_init(&r, CMD_WF_SUBMIT);
    r.c.u.wf_submit = (struct cmd_wf_submit) {
        .name = "c", .steps = s, .n = 2, .dag = dag
    };
    assert_int_equal(call(f, &r), ANVIL_OK);
    dag_free(dag);
    return r.c.u.wf_submit.id;
}

// Reads workflow id with its steps into r (engine_cmd_fini).
static void
get_flow(struct fx *f, int64_t id, struct req *r)
{
    req_init(r, CMD_WF_GET);
    r->c.u.wf.id = id;
    assert_int_equal(call(f, r), ANVIL_OK);
    assert_int_equal(r->c.u.wf.wf.n, 2);
}

static void
test_engine_retry_many_leaves_workflow_steps_to_retry_workflow(void **state)
{
    struct fx *f = *state;
    struct req w;
    get_flow(f, chain(f, "wt"), &w);
    int64_t a = w.c.u.wf.wf.steps[0].id;
    int64_t b = w.c.u.wf.wf.steps[1].id;
    engine_cmd_fini(&w.c);
    struct job j = lease_one(f, "wt");
    int        st;
    int64_t    at;
    assert_int_equal(j.id, a);
    assert_int_equal(fail_job(f, a, j.attempt, "x", true, &st, &at), 0);
    job_fini(&j);
    int64_t plain = failed_job(f, "wt");
    assert_int_equal(state_of(f, a), ANVIL_JOB_FAILED);
    assert_int_equal(state_of(f, b), ANVIL_JOB_CANCELED);

    struct req               r;
    struct store_list_filter flt = { .state = ANVIL_JOB_FAILED, .limit = 10 };
    assert_int_equal(bulk(f, &r, true, flt, 0), ANVIL_OK);
    assert_int_equal(r.c.u.bulk.n, 1);
    assert_int_equal(r.c.u.bulk.ids[0], plain);
    engine_cmd_fini(&r.c);
    flt.state = ANVIL_JOB_CANCELED;
    assert_int_equal(bulk(f, &r, true, flt, 0), ANVIL_OK);
    assert_int_equal(r.c.u.bulk.n, 0);
    engine_cmd_fini(&r.c);
    assert_int_equal(state_of(f, a), ANVIL_JOB_FAILED);
    assert_int_equal(state_of(f, b), ANVIL_JOB_CANCELED);
}

static void
test_engine_cancel_many_cancels_as_cancel_job_does(void **state)
{
    struct fx *f   = *state;
    int64_t    q1  = submit(f, "t");
    int64_t    q2  = submit(f, "t");
    int64_t    run = submit(f, "r");
    struct job j   = lease_one(f, "r");
    job_fini(&j);
    int64_t other = submit(f, "u");

    // QUEUED jobs of type t end CANCELED at once, with their event.
    struct req               r;
    struct store_list_filter flt
        = { .state = ANVIL_JOB_QUEUED, .type = "t", .limit = 100 };
    assert_int_equal(bulk(f, &r, false, flt, 0), ANVIL_OK);
    assert_int_equal(r.c.u.bulk.n, 2);
    assert_int_equal(r.c.u.bulk.ids[0], q2);
    assert_int_equal(r.c.u.bulk.ids[1], q1);
    engine_cmd_fini(&r.c);
    assert_int_equal(state_of(f, q1), ANVIL_JOB_CANCELED);
    assert_int_equal(state_of(f, q2), ANVIL_JOB_CANCELED);
    assert_int_equal(state_of(f, other), ANVIL_JOB_QUEUED);
    watch_init(&r, 0, 0);
    r.c.u.events.f.job_id = q1;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.events.n, 2);
    assert_int_equal(r.c.u.events.events[1].kind, EV_JOB_CANCELED);
    engine_cmd_fini(&r.c);

    // A RUNNING job is asked to stop and its worker hears it; asking again
    // changes nothing.
    flt = (struct store_list_filter) { .state = ANVIL_JOB_RUNNING, .limit = 5 };
    assert_int_equal(bulk(f, &r, false, flt, 0), ANVIL_OK);
    assert_int_equal(r.c.u.bulk.n, 1);
    assert_int_equal(r.c.u.bulk.ids[0], run);
    engine_cmd_fini(&r.c);
    assert_int_equal(get_job(f, run, &j), ANVIL_OK);
    assert_int_equal(j.state, ANVIL_JOB_RUNNING);
    assert_true(j.cancel_requested);
    job_fini(&j);
    assert_int_equal(bulk(f, &r, false, flt, 0), ANVIL_OK);
    assert_int_equal(r.c.u.bulk.n, 0);
    engine_cmd_fini(&r.c);
    struct lease_ref ref = { .id = run, .token = 1 };
    req_init(&r, CMD_HEARTBEAT);
    r.c.u.heartbeat
        = (struct cmd_heartbeat) { .worker = "worker-1", .refs = &ref, .n = 1 };
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.heartbeat.ncanceled, 1);
    engine_cmd_fini(&r.c);
    assert_int_equal(complete(f, run, 1, NULL), ANVIL_OK);
    assert_int_equal(state_of(f, run), ANVIL_JOB_CANCELED);
}

// A PENDING step canceled in bulk ends its workflow as CancelJob does.
static void
test_engine_cancel_many_of_a_step_ends_its_workflow_as_cancel_job(void **state)
{
    struct fx *f = *state;
    struct req one, many;
    get_flow(f, chain(f, "x"), &one);
    get_flow(f, chain(f, "y"), &many);
    struct job j;
    assert_int_equal(cancel(f, one.c.u.wf.wf.steps[1].id, &j), ANVIL_OK);
    job_fini(&j);
    struct req               r;
    struct store_list_filter flt
        = { .state = ANVIL_JOB_PENDING, .type = "y", .limit = 100 };
    assert_int_equal(bulk(f, &r, false, flt, 0), ANVIL_OK);
    assert_int_equal(r.c.u.bulk.n, 1);
    assert_int_equal(r.c.u.bulk.ids[0], many.c.u.wf.wf.steps[1].id);
    engine_cmd_fini(&r.c);

    struct req after_one, after_many;
    get_flow(f, one.c.u.wf.wf.id, &after_one);
    get_flow(f, many.c.u.wf.wf.id, &after_many);
    assert_int_equal(after_many.c.u.wf.wf.state, after_one.c.u.wf.wf.state);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(after_many.c.u.wf.wf.steps[i].state,
            after_one.c.u.wf.wf.steps[i].state);
    engine_cmd_fini(&one.c);
    engine_cmd_fini(&many.c);
    engine_cmd_fini(&after_one.c);
    engine_cmd_fini(&after_many.c);
}

// A resend (same request id, same caller) gets the first answer and
// changes no second batch; a new request goes on.
static void
test_engine_resent_retry_many_changes_no_second_batch(void **state)
{
    struct fx *f = *state;
    int64_t    ids[4];
    for (int i = 0; i < 4; i++)
        ids[i] = failed_job(f, "t");
    struct req               r;
    struct store_list_filter flt = { .state = ANVIL_JOB_FAILED, .limit = 2 };
    for (int i = 0; i < 2; i++) { // the request, then its resend
        assert_int_equal(bulk(f, &r, true, flt, 77), ANVIL_OK);
        assert_int_equal(r.c.u.bulk.n, 2);
        assert_int_equal(r.c.u.bulk.ids[0], ids[3]);
        assert_int_equal(r.c.u.bulk.ids[1], ids[2]);
        assert_int_equal(r.c.u.bulk.next_before, ids[2]);
        engine_cmd_fini(&r.c);
        assert_int_equal(state_of(f, ids[1]), ANVIL_JOB_FAILED);
        assert_int_equal(state_of(f, ids[0]), ANVIL_JOB_FAILED);
    }
    // The same id from another caller, or as a CancelJobs, is not a resend.
    assert_int_equal(bulk(f, &r, false,
                         (struct store_list_filter) {
                             .state = ANVIL_JOB_QUEUED, .limit = 1 },
                         77),
        ANVIL_OK);
    assert_int_equal(r.c.u.bulk.n, 1);
    assert_int_equal(r.c.u.bulk.ids[0], ids[3]);
    engine_cmd_fini(&r.c);
    assert_int_equal(state_of(f, ids[3]), ANVIL_JOB_CANCELED);
    // A new request retries the rest; doing it again finds nothing left.
    assert_int_equal(bulk(f, &r, true, flt, 78), ANVIL_OK);
    assert_int_equal(r.c.u.bulk.n, 2);
    assert_int_equal(r.c.u.bulk.ids[0], ids[1]);
    engine_cmd_fini(&r.c);
    assert_int_equal(bulk(f, &r, true, flt, 79), ANVIL_OK);
    assert_int_equal(r.c.u.bulk.n, 0);
    engine_cmd_fini(&r.c);
}

// A store failure in the middle rolls the whole command back.
static void
test_engine_failed_retry_many_changes_none_of_its_jobs(void **state)
{
    struct fx *f    = *state;
    int64_t    a    = failed_job(f, "t");
    int64_t    b    = failed_job(f, "t");
    int        stmt = learn_stmt(f, PROBE_RETRY);
    // Fail the second job's retry: the first one's must be undone too.
    struct req               r;
    struct store_list_filter flt = { .state = ANVIL_JOB_FAILED, .limit = 10 };
    hook_arm(stmt, 1);
    atomic_store(&hook_fail_skip, 1);
    int rc = bulk(f, &r, true, flt, 5);
    engine_cmd_fini(&r.c);
    assert_int_not_equal(rc, ANVIL_OK);
    assert_int_equal(state_of(f, a), ANVIL_JOB_FAILED);
    assert_int_equal(state_of(f, b), ANVIL_JOB_FAILED);
    hook_arm(-1, 0);
    // Not remembered: the resend is applied.
    assert_int_equal(bulk(f, &r, true, flt, 5), ANVIL_OK);
    assert_int_equal(r.c.u.bulk.n, 2);
    engine_cmd_fini(&r.c);
}

// ---- cron schedules ----

// Creates a schedule of job type "tick"; returns the code.
static int
sched_create(struct fx *f, const char *name, const char *expr, int overlap,
    int catch_up, uint32_t limit)
{
    struct req r;
    req_init(&r, CMD_SCHED_CREATE);
    r.c.u.schedule.name = name;
    r.c.u.schedule.spec = (struct store_schedule) {
        .name           = (char *) name,
        .expr           = (char *) expr,
        .tz             = "UTC",
        .type           = "tick",
        .queue          = "default",
        .payload        = (uint8_t *) "{}",
        .payload_len    = 2,
        .overlap        = overlap,
        .catch_up       = catch_up,
        .catch_up_limit = limit,
    };
    int rc = call(f, &r);
    engine_cmd_fini(&r.c);
    return rc;
}

// Reads schedule name into *out (store_schedule_fini).
static void
sched_get(struct fx *f, const char *name, struct store_schedule *out)
{
    struct req r;
    req_init(&r, CMD_SCHED_GET);
    r.c.u.schedule.name = name;
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.schedule.n, 1);
    *out = r.c.u.schedule.out[0];
    memset(&r.c.u.schedule.out[0], 0, sizeof(*out));
    engine_cmd_fini(&r.c);
}

// The server was down: its next tick is set to `next` while it is
// stopped, and it starts again; one round trip fires what is due.
static void
downtime(struct fx *f, const char *name, int64_t next)
{
    char sql[160];
    close_engine(f);
    snprintf(sql, sizeof(sql),
        "UPDATE schedules SET next_fire_at = %lld WHERE name = '%s'",
        (long long) next, name);
    assert_int_equal(harness_sql_exec(f->path, sql), 0);
    assert_int_equal(open_engine(f), 0);
    flush(f);
}

static int64_t
jobs_keyed(struct fx *f, const char *name)
{
    char sql[160];
    snprintf(sql, sizeof(sql),
        "SELECT COUNT(*) FROM jobs WHERE idem_key LIKE 'schedule/%s/%%'", name);
    return harness_sql_int(f->path, sql);
}

static void
test_engine_schedule_due_tick_submits_one_job_and_advances(void **state)
{
    struct fx *f = *state;
    assert_int_equal(sched_create(f, "yearly", "@yearly", 0, 0, 0), ANVIL_OK);
    struct store_schedule s;
    sched_get(f, "yearly", &s);
    assert_true(s.next_fire_at > av_now_ms());
    assert_int_equal(s.fired, 0);
    store_schedule_fini(&s);

    int64_t tick = av_now_ms() - 500;
    downtime(f, "yearly", tick);
    sched_get(f, "yearly", &s);
    assert_int_equal(s.fired, 1);
    assert_int_equal(s.last_fire_at, tick);
    assert_true(s.last_job_id > 0);
    assert_true(s.next_fire_at > av_now_ms());
    assert_int_equal(state_of(f, s.last_job_id), ANVIL_JOB_QUEUED);
    struct job j;
    assert_int_equal(get_job(f, s.last_job_id, &j), ANVIL_OK);
    char key[64];
    snprintf(key, sizeof(key), "schedule/yearly/%lld", (long long) tick);
    assert_string_equal(j.idem_key, key);
    assert_string_equal(j.type, "tick");
    job_fini(&j);
    int64_t job = s.last_job_id, next = s.next_fire_at;
    store_schedule_fini(&s);

    // The same tick again (as after a crash that lost the advance): its
    // job is found by its key, not made twice.
    downtime(f, "yearly", tick);
    sched_get(f, "yearly", &s);
    assert_int_equal(jobs_keyed(f, "yearly"), 1);
    assert_int_equal(s.last_job_id, job);
    assert_int_equal(s.fired, 1);
    assert_int_equal(s.next_fire_at, next);
    store_schedule_fini(&s);
}

static void
test_engine_schedule_catch_up_once_each_and_skip(void **state)
{
    struct fx *f = *state;
    // Six hourly ticks fell while the server was down, the newest two
    // minutes ago (late: missed).
    int64_t now  = av_now_ms();
    int64_t from = now - 5 * 3600000LL - 120000;
    assert_int_equal(sched_create(f, "once", "@every 1h", ANVIL_OVERLAP_ALLOW,
                         ANVIL_CATCH_UP_ONCE, 0),
        ANVIL_OK);
    assert_int_equal(sched_create(f, "each", "@every 1h", ANVIL_OVERLAP_ALLOW,
                         ANVIL_CATCH_UP_EACH, 0),
        ANVIL_OK);
    assert_int_equal(sched_create(f, "each3", "@every 1h", ANVIL_OVERLAP_ALLOW,
                         ANVIL_CATCH_UP_EACH, 3),
        ANVIL_OK);
    assert_int_equal(sched_create(f, "skip", "@every 1h", ANVIL_OVERLAP_ALLOW,
                         ANVIL_CATCH_UP_SKIP, 0),
        ANVIL_OK);
    assert_int_equal(sched_create(f, "serial", "@every 1h", ANVIL_OVERLAP_SKIP,
                         ANVIL_CATCH_UP_EACH, 0),
        ANVIL_OK);
    const char *names[] = { "once", "each", "each3", "skip", "serial" };
    int64_t     want[]  = { 1, 6, 3, 0, 1 };
    for (int i = 0; i < 5; i++)
        downtime(f, names[i], from);
    for (int i = 0; i < 5; i++) {
        struct store_schedule s;
        sched_get(f, names[i], &s);
        if (jobs_keyed(f, names[i]) != want[i])
            fail_msg("%s: %lld jobs, want %lld", names[i],
                (long long) jobs_keyed(f, names[i]), (long long) want[i]);
        assert_int_equal(s.fired, want[i]);
        assert_int_equal(s.fired + s.skipped, 6);
        // Each goes on from its next tick after now, on the hour grid.
        if (s.next_fire_at != from + 6 * 3600000LL)
            fail_msg("%s: next is from + %lld ms", names[i],
                (long long) (s.next_fire_at - from));
        // The newest tick fired, but "serial" fired its first and skipped
        // the rest while that job was still queued (overlap SKIP).
        if (want[i] > 0)
            assert_int_equal(
                s.last_fire_at, i == 4 ? from : from + 5 * 3600000LL);
        store_schedule_fini(&s);
    }
    // EACH's jobs are the consecutive ticks, one each.
    char sql[320];
    snprintf(sql, sizeof(sql),
        "SELECT COUNT(DISTINCT idem_key) FROM jobs WHERE idem_key IN "
        "('schedule/each3/%lld', 'schedule/each3/%lld', "
        "'schedule/each3/%lld')",
        (long long) (from + 3 * 3600000LL), (long long) (from + 4 * 3600000LL),
        (long long) (from + 5 * 3600000LL));
    assert_int_equal(harness_sql_int(f->path, sql), 3);
}

static void
test_engine_schedule_pause_resume_delete_and_bad_names(void **state)
{
    struct fx *f = *state;
    assert_int_equal(sched_create(f, "s", "*/5 * * * *", 0, 0, 0), ANVIL_OK);
    assert_int_equal(
        sched_create(f, "s", "@daily", 0, 0, 0), ANVIL_ALREADY_EXISTS);
    // A resend of the create that made it answers as the first time.
    struct req r;
    req_init(&r, CMD_SCHED_PAUSE);
    r.c.u.schedule.name = "s";
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_true(r.c.u.schedule.out[0].paused);
    engine_cmd_fini(&r.c);
    // Paused: a due tick fires nothing.
    downtime(f, "s", av_now_ms() - 1000);
    assert_int_equal(jobs_keyed(f, "s"), 0);
    req_init(&r, CMD_SCHED_RESUME);
    r.c.u.schedule.name = "s";
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_false(r.c.u.schedule.out[0].paused);
    assert_true(r.c.u.schedule.out[0].next_fire_at > av_now_ms());
    engine_cmd_fini(&r.c);
    assert_int_equal(jobs_keyed(f, "s"), 0);

    req_init(&r, CMD_SCHED_LIST);
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_int_equal(r.c.u.schedule.n, 1);
    engine_cmd_fini(&r.c);
    req_init(&r, CMD_SCHED_DELETE);
    r.c.u.schedule.name = "s";
    assert_int_equal(call(f, &r), ANVIL_OK);
    engine_cmd_fini(&r.c);
    req_init(&r, CMD_SCHED_DELETE);
    r.c.u.schedule.name = "s";
    assert_int_equal(call(f, &r), ANVIL_NOT_FOUND);
    assert_non_null(strstr(r.c.err.msg, "no schedule named 's'"));
    engine_cmd_fini(&r.c);
    req_init(&r, CMD_SCHED_GET);
    r.c.u.schedule.name = "s";
    assert_int_equal(call(f, &r), ANVIL_NOT_FOUND);
    engine_cmd_fini(&r.c);
}

static void
test_engine_schedule_create_resent_answers_as_the_first_time(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 2; i++) {
        struct req r;
        req_init(&r, CMD_SCHED_CREATE);
        r.c.request_id      = 4242;
        r.c.u.schedule.name = "once";
        r.c.u.schedule.spec = (struct store_schedule) { .name = "once",
            .expr                                             = "@hourly",
            .tz                                               = "UTC",
            .type                                             = "t",
            .queue                                            = "q",
            .payload                                          = (uint8_t *) "",
            .payload_len                                      = 0 };
        assert_int_equal(call(f, &r), ANVIL_OK);
        assert_string_equal(r.c.u.schedule.out[0].name, "once");
        engine_cmd_fini(&r.c);
    }
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

// ---- concurrency limits ----

// Submits a job of type "t" with concurrency key ckey and limit; lease_ms
// 0 = the default.
static int64_t
submit_keyed(struct fx *f, const char *ckey, uint32_t limit, int64_t lease_ms)
{
    struct cmd_submit s = job_spec("t");
    s.ckey              = ckey;
    s.climit            = limit;
    s.lease_ms          = lease_ms;
    s.retry             = (struct retry_policy) { 2, 60000, 60000, 2.0 };
    return submit_spec(f, &s, 0);
}

static void
test_engine_concurrency_limit_2_never_leases_a_third(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 5; i++)
        submit_keyed(f, "k", 2, 0);
    int64_t other = submit_keyed(f, "other", 2, 0);
    int64_t plain = submit(f, "t");
    // Two of "k", and the jobs queued behind them.
    struct job a = lease_one(f, "t");
    struct job b = lease_one(f, "t");
    assert_string_equal(a.concurrency_key, "k");
    assert_string_equal(b.concurrency_key, "k");
    assert_int_equal(poll_count(f, "t"), 2);
    assert_int_equal(state_of(f, other), ANVIL_JOB_RUNNING);
    assert_int_equal(state_of(f, plain), ANVIL_JOB_RUNNING);
    assert_int_equal(poll_count(f, "t"), 0);
    // Each finished job lets exactly one more run.
    assert_int_equal(complete(f, a.id, a.attempt, "ok"), ANVIL_OK);
    assert_int_equal(poll_count(f, "t"), 1);
    assert_int_equal(poll_count(f, "t"), 0);
    job_fini(&a);
    job_fini(&b);
}

static void
test_engine_fail_cancel_and_lease_loss_free_a_slot(void **state)
{
    struct fx *f = *state;
    int64_t    id[4];
    for (int i = 0; i < 4; i++)
        id[i] = submit_keyed(f, "k", 1, i == 2 ? 300 : 0);
    // A failed attempt (retried after a minute) frees the slot.
    struct job j = lease_one(f, "t");
    assert_int_equal(j.id, id[0]);
    assert_int_equal(poll_count(f, "t"), 0);
    int     st;
    int64_t at;
    assert_int_equal(
        fail_job(f, j.id, j.attempt, "boom", false, &st, &at), ANVIL_OK);
    assert_int_equal(st, ANVIL_JOB_SCHEDULED);
    job_fini(&j);
    // A cancel frees it once the worker reports, not before.
    j = lease_one(f, "t");
    assert_int_equal(j.id, id[1]);
    struct job c;
    assert_int_equal(cancel(f, j.id, &c), ANVIL_OK);
    job_fini(&c);
    assert_int_equal(poll_count(f, "t"), 0);
    assert_int_equal(complete(f, j.id, j.attempt, NULL), ANVIL_OK);
    assert_int_equal(state_of(f, j.id), ANVIL_JOB_CANCELED);
    job_fini(&j);
    // A lost lease (300 ms, no heartbeat) frees it.
    j = lease_one(f, "t");
    assert_int_equal(j.id, id[2]);
    assert_int_equal(poll_count(f, "t"), 0);
    assert_true(wait_state(f, j.id, ANVIL_JOB_SCHEDULED, 5000, NULL));
    job_fini(&j);
    j = lease_one(f, "t");
    assert_int_equal(j.id, id[3]);
    // A final failure frees it too: nothing is left to run.
    assert_int_equal(
        fail_job(f, j.id, j.attempt, "no", true, &st, &at), ANVIL_OK);
    assert_int_equal(st, ANVIL_JOB_FAILED);
    job_fini(&j);
    assert_int_equal(poll_count(f, "t"), 0);
}

static void
test_engine_restart_rebuilds_concurrency_counts(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 4; i++)
        submit_keyed(f, "k", 2, 0);
    struct job a = lease_one(f, "t");
    struct job b = lease_one(f, "t");
    assert_int_equal(poll_count(f, "t"), 0);
    restart(f, 30000);
    // The two leases still hold their slots.
    assert_int_equal(poll_count(f, "t"), 0);
    assert_int_equal(complete(f, a.id, a.attempt, "ok"), ANVIL_OK);
    assert_int_equal(poll_count(f, "t"), 1);
    assert_int_equal(poll_count(f, "t"), 0);
    job_fini(&a);
    job_fini(&b);
}

static void
test_engine_parked_poll_gets_the_slot_a_complete_frees(void **state)
{
    struct fx *f = *state;
    submit_keyed(f, "k", 1, 0);
    int64_t     second  = submit_keyed(f, "k", 1, 0);
    struct job  a       = lease_one(f, "t");
    const char *types[] = { "t" };
    struct req  r;
    poll_init(&r, types, 1, 1, 5000);
    post(f, &r);
    flush(f);
    assert_false(is_done(&r));
    assert_int_equal(complete(f, a.id, a.attempt, "ok"), ANVIL_OK);
    assert_true(wait_done(&r, REPLY_TIMEOUT_MS));
    assert_int_equal(r.c.u.poll.n, 1);
    assert_int_equal(r.c.u.poll.jobs[0].id, second);
    engine_cmd_fini(&r.c);
    job_fini(&a);
}

// ---- concurrency keys on workflow steps ----

// Leases what one Poll of type "t" gets now (at most max) into out.
static size_t
lease_some(struct fx *f, struct job *out, size_t max)
{
    const char *types[] = { "t" };
    struct req  r;
    poll_init(&r, types, 1, (uint32_t) max, 0);
    assert_int_equal(call(f, &r), ANVIL_OK);
    size_t n = r.c.u.poll.n;
    for (size_t i = 0; i < n; i++) {
        out[i] = r.c.u.poll.jobs[i];
        memset(&r.c.u.poll.jobs[i], 0, sizeof(out[i]));
    }
    engine_cmd_fini(&r.c);
    return n;
}

// Submits a workflow of six steps c0..c5 of type "t" keyed "k" limit 2;
// with_root: they all run after a step r (no key), else in parallel at once.
static int64_t
keyed_flow(struct fx *f, bool with_root)
{
    static const char *const names[]
        = { "c0", "c1", "c2", "c3", "c4", "c5", "r" };
    static const char *const after[] = { "r" };
    struct dag_step          g[7];
    struct cmd_wf_step       s[7];
    size_t                   n = with_root ? 7 : 6;
    for (size_t i = 0; i < n; i++) {
        bool root  = i == 6;
        bool kid   = with_root && !root;
        g[i]       = (struct dag_step) { .name = names[i] };
        s[i]       = (struct cmd_wf_step) { .name = names[i], .type = "t" };
        s[i].queue = "default";
        if (kid) {
            g[i].after   = after;
            g[i].n_after = 1;
        }
        if (!root) {
            s[i].ckey   = "k";
            s[i].climit = 2;
        }
    }
    struct dag        *dag = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(dag_build(g, n, &dag, &err), ANVIL_OK);
    struct req r;
    req_init(&r, CMD_WF_SUBMIT);
    r.c.u.wf_submit = (struct cmd_wf_submit) {
        .name = "keyed", .steps = s, .n = n, .dag = dag
    };
    assert_int_equal(call(f, &r), ANVIL_OK);
    dag_free(dag);
    return r.c.u.wf_submit.id;
}

// Completes running[0..1] one at a time until *left steps remain: each
// Complete lets exactly one more step of key "k" run, never a third.
static void
drain_keyed(struct fx *f, struct job *running, size_t left)
{
    struct job more[4];
    while (left > 0) {
        assert_int_equal(
            complete(f, running[0].id, running[0].attempt, "ok"), ANVIL_OK);
        job_fini(&running[0]);
        running[0] = running[1];
        memset(&running[1], 0, sizeof(running[1]));
        left--;
        size_t n = lease_some(f, more, 4);
        assert_int_equal(n, left >= 2 ? 1 : 0);
        if (n == 1) {
            assert_string_equal(more[0].concurrency_key, "k");
            assert_int_equal(more[0].concurrency_limit, 2);
            running[1] = more[0];
        }
    }
}

static int
flow_state(struct fx *f, int64_t wf)
{
    struct req r;
    req_init(&r, CMD_WF_GET);
    r.c.u.wf.id = wf;
    assert_int_equal(call(f, &r), ANVIL_OK);
    int state = r.c.u.wf.wf.state;
    engine_cmd_fini(&r.c);
    return state;
}

// Steps queued by their parent's Complete carry their key: 2 run, the
// other 4 wait, also across a restart.
static void
test_engine_workflow_steps_queued_by_a_parent_keep_their_key(void **state)
{
    struct fx *f  = *state;
    int64_t    wf = keyed_flow(f, true);
    struct job r  = lease_one(f, "t");
    assert_string_equal(r.step, "r");
    assert_string_equal(r.concurrency_key, "");
    assert_int_equal(poll_count(f, "t"), 0);
    assert_int_equal(complete(f, r.id, r.attempt, "ok"), ANVIL_OK);
    job_fini(&r);
    struct job running[8];
    struct job extra[8];
    assert_int_equal(lease_some(f, running, 8), 2);
    assert_int_equal(lease_some(f, extra, 8), 0);
    restart(f, 30000); // the two leases keep their slots
    assert_int_equal(lease_some(f, extra, 8), 0);
    drain_keyed(f, running, 6);
    assert_int_equal(flow_state(f, wf), WF_SUCCEEDED);
}

// Six parallel steps keyed "k" limit 2 never have 3 running: at submit,
// and again after RetryWorkflow.
static void
test_engine_workflow_steps_keyed_2_never_run_3(void **state)
{
    struct fx *f  = *state;
    int64_t    wf = keyed_flow(f, false);
    struct job running[8];
    struct job extra[8];
    assert_int_equal(lease_some(f, running, 8), 2);
    assert_int_equal(lease_some(f, extra, 8), 0);
    assert_string_equal(running[0].concurrency_key, "k");
    // One step fails for good: FAIL_FAST cancels the rest, the running one
    // when its worker reports.
    int     st;
    int64_t at;
    assert_int_equal(
        fail_job(f, running[0].id, running[0].attempt, "no", true, &st, &at),
        ANVIL_OK);
    assert_int_equal(
        complete(f, running[1].id, running[1].attempt, "ok"), ANVIL_OK);
    job_fini(&running[0]);
    job_fini(&running[1]);
    assert_int_equal(flow_state(f, wf), WF_FAILED);
    assert_int_equal(lease_some(f, extra, 8), 0);

    struct req r;
    req_init(&r, CMD_WF_RETRY);
    r.c.u.wf.id = wf;
    assert_int_equal(call(f, &r), ANVIL_OK);
    engine_cmd_fini(&r.c);
    assert_int_equal(lease_some(f, running, 8), 2);
    assert_int_equal(lease_some(f, extra, 8), 0);
    drain_keyed(f, running, 6);
    assert_int_equal(flow_state(f, wf), WF_SUCCEEDED);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_engine_concurrency_limit_2_never_leases_a_third, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_engine_fail_cancel_and_lease_loss_free_a_slot, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_engine_restart_rebuilds_concurrency_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_engine_parked_poll_gets_the_slot_a_complete_frees, setup,
            teardown),
        T(test_engine_workflow_steps_queued_by_a_parent_keep_their_key),
        T(test_engine_workflow_steps_keyed_2_never_run_3),
        T(test_engine_submit_makes_a_queued_job),
        T(test_engine_get_of_an_unknown_job_is_not_found),
        T(test_engine_poll_leases_a_queued_job_once),
        T(test_engine_poll_for_other_types_gets_nothing),
        T(test_engine_poll_honours_priority_across_polled_queues),
        T(test_engine_poll_leases_at_most_max_jobs),
        T(test_engine_resent_poll_gets_the_same_leases_back),
        T(test_engine_complete_makes_the_job_succeed_with_its_result),
        T(test_engine_duplicate_complete_is_ok_and_changes_nothing),
        T(test_engine_complete_with_a_stale_token_changes_nothing),
        T(test_engine_complete_of_a_queued_or_unknown_job_is_refused),
        T(test_engine_retryable_failure_schedules_a_retry_keeping_the_error),
        T(test_engine_no_retry_failure_fails_the_job_at_once),
        T(test_engine_failure_of_the_last_attempt_fails_the_job),
        T(test_engine_cancel_of_a_queued_job_cancels_it_for_good),
        T(test_engine_cancel_twice_is_no_error),
        T(test_engine_cancel_of_a_finished_or_unknown_job_is_refused),
        T(test_engine_cancel_of_a_running_job_waits_for_its_worker),
        T(test_engine_failure_of_a_cancel_requested_job_ends_canceled),
        T(test_engine_heartbeat_extends_held_leases_and_reports_lost_ones),
        T(test_engine_heartbeat_with_a_stale_token_reports_the_job_lost),
        T(test_engine_heartbeat_progress_is_stored_with_one_event_per_change),
        T(test_engine_idempotency_key_returns_the_first_job),
        T(test_engine_same_request_id_twice_makes_one_job),
        T(test_engine_delayed_job_is_handed_out_only_at_its_time),
        T(test_engine_parked_poll_is_answered_when_a_job_arrives),
        T(test_engine_parked_poll_times_out_empty),
        T(test_engine_parked_wait_is_answered_when_the_job_completes),
        T(test_engine_wait_times_out_with_done_false),
        T(test_engine_call_on_an_idle_engine_answers_on_the_callers_thread),
        T(test_engine_call_parked_wait_ends_at_its_timeout),
        T(test_engine_wait_on_a_finished_job_answers_at_once),
        T(test_engine_stop_answers_parked_long_polls_unavailable),
        T(test_engine_lease_expiry_fails_the_attempt_and_schedules_a_retry),
        T(test_engine_heartbeat_keeps_a_short_lease_alive),
        T(test_engine_attempt_timeout_fails_the_attempt),
        T(test_engine_state_survives_a_restart),
        T(test_engine_lease_held_across_a_restart_can_still_complete),
        T(test_engine_job_lease_overrides_the_default_lease),
        T(test_engine_job_backoff_policy_sets_the_retry_delay),
        T(test_engine_only_the_lease_holders_token_may_report),
        T(test_engine_list_pages_with_next_before),
        T(test_engine_health_reports_depths_and_totals),
        T(test_engine_backoff_doubles_from_one_second_up_to_the_cap),
        T(test_engine_backoff_jitter_stays_within_twenty_percent),
        T(test_engine_failed_submit_stores_nothing_and_the_next_works),
        T(test_engine_failed_commit_applies_nothing_and_loses_nothing),
        T(test_engine_failed_poll_leaves_the_job_ready_for_the_next_poll),
        T(test_engine_failed_timer_write_does_not_strand_a_delayed_job),
        T(test_engine_events_tell_a_job_s_life_in_order),
        T(test_engine_watch_waits_for_the_next_event),
        T(test_engine_watch_of_one_job_waits_for_that_job),
        T(test_engine_watch_filters_and_moves_past_what_it_skipped),
        T(test_engine_retention_of_events_tells_a_late_consumer),
        T(test_engine_retry_runs_a_failed_job_again_keeping_its_attempts),
        T(test_engine_retry_gives_at_least_the_attempts_asked_for),
        T(test_engine_worker_joins_and_is_lost_as_events),
        T(test_engine_health_counts_ended_jobs_per_minute),
        T(test_engine_a_rolled_back_command_leaves_no_events),
        T(test_engine_poll_skips_a_paused_queue_and_serves_another),
        T(test_engine_resume_wakes_a_poll_parked_on_a_paused_queue),
        T(test_engine_paused_queue_stays_paused_after_a_restart),
        T(test_engine_failed_pause_stores_nothing_and_the_queue_keeps_leasing),
        T(test_engine_rate_limit_leases_the_burst_then_wakes_a_parked_poll),
        T(test_engine_rate_limit_bucket_outlasts_a_restart_and_a_failed_commit),
        T(test_engine_rate_limit_change_keeps_tokens_and_writes_events),
        T(test_engine_rate_limits_in_one_batch_apply_in_order),
        T(test_engine_retry_many_retries_only_the_matching_failed_jobs),
        T(test_engine_retry_many_leaves_workflow_steps_to_retry_workflow),
        T(test_engine_cancel_many_cancels_as_cancel_job_does),
        T(test_engine_cancel_many_of_a_step_ends_its_workflow_as_cancel_job),
        T(test_engine_resent_retry_many_changes_no_second_batch),
        T(test_engine_failed_retry_many_changes_none_of_its_jobs),
        T(test_engine_schedule_due_tick_submits_one_job_and_advances),
        T(test_engine_schedule_catch_up_once_each_and_skip),
        T(test_engine_schedule_pause_resume_delete_and_bad_names),
        T(test_engine_schedule_create_resent_answers_as_the_first_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
