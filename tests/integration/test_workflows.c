// test_workflows.c - workflows against a real in-process server and
// in-process workers: chains run in order and hand each step its parent's
// result, groups run in parallel and a join sees every result, diamonds,
// the FAIL_FAST and CONTINUE failure policies, cancel, workflow timeouts,
// idempotency keys, validation errors (through the SDK and on the wire),
// and GetWorkflow/ListWorkflows with filters and paging.
//
// Every step runs the one handler, step_handler, whose payload says what to
// do. It records each run (step, attempt, start/end times, the parents'
// results it was given) under a mutex; the test thread asserts on those
// records only after the server says the steps have settled.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../harness.h"
#include "anvil/v1/anvil.pb-c.h"
#include "anvil/workflow.h"
#include "client_impl.h"
#include "util/clock.h"
#include "workflow_impl.h"

#define WAIT_MS 20000      // the longest a test waits for anything
#define GATE_MS 5000       // the longest a handler waits for a condition
#define SLEEP_MS 15000     // a "sleep" step: until cancelled, at most this
#define FAST_HEARTBEAT 100 // ms: cancels reach handlers quickly
#define SMALL_PAYLOAD 1024 // the payload limit of the validation fixture
#define MAX_RUNS 256
#define MAX_PARENTS 24
#define NAME_LEN 48
#define RESULT_LEN 64

struct parent_copy {
    char   step[NAME_LEN];
    char   result[RESULT_LEN];
    size_t len;
};

// One handler call, as the handler saw it.
struct run {
    char               step[NAME_LEN];
    char               wf_id[NAME_LEN];
    uint32_t           attempt;
    int64_t            start_us;      // av_mono_us()
    int64_t            end_us;        // 0 while running
    uint64_t           start_seq;     // rec.seq at start and at end: an exact
    uint64_t           end_seq;       // order of events, finer than the clock
    bool               interrupted;   // a "sleep" cut short by a cancel
    int                wf_state_seen; // "seefail": the workflow's state
    uint32_t           failed_seen;   // "seefail": its steps_failed
    bool               saw_state;     // "failwhen": the state was seen
    size_t             n_parents;
    struct parent_copy parents[MAX_PARENTS];
};

// What the handlers of one test record. mu guards every field.
struct rec {
    pthread_mutex_t mu;
    struct run      runs[MAX_RUNS];
    size_t          n;
    int             overflow;
    int             running;
    int             max_running;
    uint64_t        seq;     // counts starts and ends
    bool            release; // teardown: stop waiting at once
    anvil_client   *client;  // for handlers that look at the server
};

static struct rec rec;

// ---- small helpers ----

static void
pause_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static void
copy_str(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

// ---- recording (slot threads) ----

static size_t
rec_start(struct rec *r, const struct anvil_lease *l)
{
    size_t i;

    pthread_mutex_lock(&r->mu);
    r->running++;
    if (r->running > r->max_running)
        r->max_running = r->running;
    if (r->n == MAX_RUNS) {
        r->overflow++;
        pthread_mutex_unlock(&r->mu);
        return SIZE_MAX;
    }
    i               = r->n++;
    struct run *run = &r->runs[i];
    memset(run, 0, sizeof(*run));
    copy_str(run->step, sizeof(run->step), l->job.step, strlen(l->job.step));
    copy_str(run->wf_id, sizeof(run->wf_id), l->job.workflow_id,
        strlen(l->job.workflow_id));
    run->attempt   = l->job.attempt;
    run->start_us  = av_mono_us();
    run->start_seq = ++r->seq;
    for (size_t k = 0; k < l->n_parents; k++) {
        struct parent_copy *p = &run->parents[run->n_parents];

        if (run->n_parents == MAX_PARENTS) {
            r->overflow++;
            break;
        }
        copy_str(p->step, sizeof(p->step), l->parents[k].step,
            strlen(l->parents[k].step));
        copy_str(p->result, sizeof(p->result),
            (const char *) l->parents[k].result, l->parents[k].result_len);
        p->len = l->parents[k].result_len;
        run->n_parents++;
    }
    pthread_mutex_unlock(&r->mu);
    return i;
}

static void
rec_end(struct rec *r, size_t i, bool interrupted)
{
    pthread_mutex_lock(&r->mu);
    r->running--;
    if (i != SIZE_MAX) {
        r->runs[i].end_us      = av_mono_us();
        r->runs[i].end_seq     = ++r->seq;
        r->runs[i].interrupted = interrupted;
    }
    pthread_mutex_unlock(&r->mu);
}

static bool
rec_released(struct rec *r)
{
    pthread_mutex_lock(&r->mu);
    bool rel = r->release;
    pthread_mutex_unlock(&r->mu);
    return rel;
}

static bool
rec_has_started(struct rec *r, const char *step)
{
    bool found = false;

    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n && !found; i++)
        found = strcmp(r->runs[i].step, step) == 0;
    pthread_mutex_unlock(&r->mu);
    return found;
}

static bool
rec_saw_concurrency(struct rec *r)
{
    pthread_mutex_lock(&r->mu);
    bool seen = r->max_running >= 2;
    pthread_mutex_unlock(&r->mu);
    return seen;
}

// Handler-side wait: polls cond until it holds, the deadline passes or the
// test releases everything. Returns the last value of cond.
static bool
handler_wait(bool (*cond)(struct rec *, const char *), const char *arg)
{
    int64_t deadline = av_mono_ms() + GATE_MS;

    while (!cond(&rec, arg)) {
        if (av_mono_ms() >= deadline || rec_released(&rec))
            return cond(&rec, arg);
        pause_ms(1);
    }
    return true;
}

static bool
cond_started(struct rec *r, const char *step)
{
    return rec_has_started(r, step);
}

static bool
cond_concurrent(struct rec *r, const char *unused)
{
    (void) unused;
    return rec_saw_concurrency(r);
}

// Waits until the server shows a failed step in workflow wf_id; records the
// workflow's state and failure count as seen then.
static void
see_failure(const char *wf_id, size_t i)
{
    int64_t  deadline = av_mono_ms() + GATE_MS;
    int      state    = 0;
    uint32_t failed   = 0;

    while (av_mono_ms() < deadline && !rec_released(&rec)) {
        struct anvil_workflow *wf = NULL;

        if (anvil_workflow_get(rec.client, wf_id, &wf, NULL) == ANVIL_OK) {
            state  = wf->state;
            failed = wf->steps_failed;
        }
        anvil_workflow_free(wf);
        if (failed > 0)
            break;
        pause_ms(2);
    }
    pthread_mutex_lock(&rec.mu);
    if (i != SIZE_MAX) {
        rec.runs[i].wf_state_seen = state;
        rec.runs[i].failed_seen   = failed;
    }
    pthread_mutex_unlock(&rec.mu);
}

// Waits until the server shows step `step` of workflow wf_id in `state`.
static bool
see_step_state(const char *wf_id, const char *step, enum anvil_job_state state)
{
    int64_t deadline = av_mono_ms() + GATE_MS;
    bool    seen     = false;

    while (!seen && av_mono_ms() < deadline && !rec_released(&rec)) {
        struct anvil_workflow *wf = NULL;

        if (anvil_workflow_get(rec.client, wf_id, &wf, NULL) == ANVIL_OK) {
            for (size_t k = 0; k < wf->n_steps; k++)
                seen = seen
                    || (strcmp(wf->steps[k].step, step) == 0
                        && wf->steps[k].state == state);
        }
        anvil_workflow_free(wf);
        if (!seen)
            pause_ms(2);
    }
    return seen;
}

// The payload says what to do: "ok", "fail", "fail:<step>" (after <step>
// has started), "failwhen:<step>" (once the server shows <step> waiting to
// retry), "flaky" (fail retryably on attempt 1, then succeed), "sleep"
// (until cancelled), "gate" (until two handlers have run at once),
// "seefail" (until the server shows a failed step; ignores cancels).
// Success returns "<step>-result" (or the payload, for a job outside a
// workflow).
static int
step_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    const struct anvil_job *job = &lease->job;
    char                    action[64];
    char                    result[RESULT_LEN];
    char                   *target;
    bool                    interrupted = false;
    int                     rc          = ANVIL_OK;
    size_t                  i;

    (void) arg;
    copy_str(
        action, sizeof(action), (const char *) job->payload, job->payload_len);
    target = strchr(action, ':');
    if (target != NULL)
        *target++ = '\0';
    i = rec_start(&rec, lease);
    if (strcmp(action, "fail") == 0) {
        if (target != NULL)
            handler_wait(cond_started, target);
        anvil_job_ctx_set_error(ctx, false, "boom in %s", job->step);
        rc = ANVIL_INTERNAL;
    } else if (strcmp(action, "failwhen") == 0 && target != NULL) {
        bool seen
            = see_step_state(job->workflow_id, target, ANVIL_JOB_SCHEDULED);

        pthread_mutex_lock(&rec.mu);
        if (i != SIZE_MAX)
            rec.runs[i].saw_state = seen;
        pthread_mutex_unlock(&rec.mu);
        anvil_job_ctx_set_error(ctx, false, "boom in %s", job->step);
        rc = ANVIL_INTERNAL;
    } else if (strcmp(action, "flaky") == 0 && job->attempt == 1) {
        anvil_job_ctx_set_error(ctx, true, "flaky: attempt %u", job->attempt);
        rc = ANVIL_UNAVAILABLE;
    } else if (strcmp(action, "sleep") == 0) {
        interrupted = !anvil_job_ctx_sleep(ctx, SLEEP_MS);
        if (interrupted) {
            anvil_job_ctx_set_error(
                ctx, false, "stopped: %s was canceled", job->id);
            rc = ANVIL_CANCELLED;
        }
    } else if (strcmp(action, "gate") == 0) {
        handler_wait(cond_concurrent, NULL);
    } else if (strcmp(action, "seefail") == 0) {
        see_failure(job->workflow_id, i);
    }
    rec_end(&rec, i, interrupted);
    if (rc != ANVIL_OK)
        return rc;
    if (job->step[0] == '\0')
        return anvil_job_ctx_set_result(ctx, job->payload, job->payload_len);
    snprintf(result, sizeof(result), "%s-result", job->step);
    return anvil_job_ctx_set_result(ctx, result, strlen(result));
}

// ---- reading the records (test thread, after the steps settled) ----

static int
runs_of(const char *step, struct run *out)
{
    int n = 0;

    pthread_mutex_lock(&rec.mu);
    for (size_t i = 0; i < rec.n; i++) {
        if (strcmp(rec.runs[i].step, step) != 0)
            continue;
        if (n == 0 && out != NULL)
            *out = rec.runs[i];
        n++;
    }
    pthread_mutex_unlock(&rec.mu);
    return n;
}

// The one run of step; fails the test unless it ran exactly once.
static struct run *
the_run(const char *step)
{
    static struct run run;
    int               n = runs_of(step, &run);

    if (n != 1)
        print_error("step %s ran %d times\n", step, n);
    assert_int_equal(n, 1);
    assert_true(run.end_us >= run.start_us);
    return &run;
}

static const struct parent_copy *
parent_named(const struct run *run, const char *step)
{
    for (size_t k = 0; k < run->n_parents; k++) {
        if (strcmp(run->parents[k].step, step) == 0)
            return &run->parents[k];
    }
    return NULL;
}

// Asserts run was handed parent's result ("<parent>-result").
static void
assert_got_result_of(const struct run *run, const char *parent)
{
    const struct parent_copy *p = parent_named(run, parent);
    char                      want[RESULT_LEN];

    if (p == NULL)
        print_error(
            "step %s did not get the result of %s\n", run->step, parent);
    assert_non_null(p);
    snprintf(want, sizeof(want), "%s-result", parent);
    assert_int_equal(p->len, strlen(want));
    assert_string_equal(p->result, want);
}

// ---- fixture ----

static int
start_fixture(void **state, const struct server_config *cfg)
{
    struct harness *h = calloc(1, sizeof(*h));

    memset(&rec, 0, sizeof(rec));
    pthread_mutex_init(&rec.mu, NULL);
    if (h == NULL || harness_start_with(h, cfg) != 0) {
        if (h != NULL)
            harness_stop(h);
        free(h);
        return -1;
    }
    rec.client = h->client;
    *state     = h;
    return 0;
}

static int
setup(void **state)
{
    return start_fixture(state, NULL);
}

static int
setup_small_payload(void **state)
{
    struct server_config cfg;

    server_config_init(&cfg);
    cfg.max_payload = SMALL_PAYLOAD;
    return start_fixture(state, &cfg);
}

static int
teardown(void **state)
{
    struct harness *h = *state;
    int             rv;

    pthread_mutex_lock(&rec.mu);
    rec.release = true; // a failed test must not leave a handler waiting
    pthread_mutex_unlock(&rec.mu);
    rv = harness_stop(h);
    free(h);
    pthread_mutex_destroy(&rec.mu);
    return rv;
}

// An in-process worker serving "step" on "default" with a heartbeat of
// heartbeat_ms. The harness stops and frees it.
static anvil_worker *
start_worker(struct harness *h, int slots, int heartbeat_ms)
{
    struct anvil_worker_opts opts = { 0 };
    struct anvil_error       err  = { 0 };
    anvil_worker            *w    = NULL;
    int                      rv;

    assert_true(h->n_workers < HARNESS_MAX_WORKERS);
    opts.url          = h->url;
    opts.slots        = slots;
    opts.poll_wait_ms = 1000;
    opts.heartbeat_ms = heartbeat_ms;
    rv                = anvil_worker_new(&w, &opts, &err);
    if (rv == ANVIL_OK)
        rv = anvil_worker_add_handler(w, "step", step_handler, NULL, &err);
    if (rv == ANVIL_OK)
        rv = anvil_worker_start(w, &err);
    if (rv != ANVIL_OK) {
        print_error("worker: %s: %s\n", anvil_code_name(rv), err.msg);
        anvil_worker_free(w);
    }
    assert_int_equal(rv, ANVIL_OK);
    h->workers[h->n_workers++] = w;
    return w;
}

// ---- building and submitting ----

// One step of a test workflow: its name, payload (the action) and parents.
struct step_def {
    const char *name;
    const char *payload;
    const char *after[4];
};

static anvil_workflow_spec *
new_spec(const char *name)
{
    anvil_workflow_spec *wf  = NULL;
    struct anvil_error   err = { 0 };
    int                  rv  = anvil_workflow_spec_new(&wf, name, &err);

    if (rv != ANVIL_OK)
        print_error("workflow_new: %s: %s\n", anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
    assert_non_null(wf);
    return wf;
}

static void
add_step(anvil_workflow_spec *wf, const char *name, const char *payload)
{
    struct anvil_error err = { 0 };
    int                rv  = anvil_workflow_spec_add_step(
                        wf, name, "step", payload, strlen(payload), NULL, &err);

    if (rv != ANVIL_OK)
        print_error("step %s: %s: %s\n", name, anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
}

static void
add_after(anvil_workflow_spec *wf, const char *name, const char *parent)
{
    struct anvil_error err = { 0 };
    int rv = anvil_workflow_spec_add_edge(wf, name, parent, &err);

    if (rv != ANVIL_OK)
        print_error("after %s %s: %s: %s\n", name, parent, anvil_code_name(rv),
            err.msg);
    assert_int_equal(rv, ANVIL_OK);
}

static anvil_workflow_spec *
spec_from(const char *name, const struct step_def *defs, size_t n)
{
    anvil_workflow_spec *wf = new_spec(name);

    for (size_t i = 0; i < n; i++)
        add_step(wf, defs[i].name, defs[i].payload);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < 4 && defs[i].after[k] != NULL; k++)
            add_after(wf, defs[i].name, defs[i].after[k]);
    }
    return wf;
}

// Submits wf (and frees it); returns the new workflow's id.
static char *
submit(struct harness *h, anvil_workflow_spec *wf)
{
    struct anvil_error err     = { 0 };
    char              *id      = NULL;
    bool               existed = true;
    int rv = anvil_workflow_submit(h->client, wf, &id, &existed, &err);

    anvil_workflow_spec_free(wf);
    if (rv != ANVIL_OK)
        print_error("submit: %s: %s\n", anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
    assert_non_null(id);
    assert_true(id[0] != '\0');
    assert_false(existed);
    return id;
}

// ---- reading workflows ----

static struct anvil_workflow *
get_wf(struct harness *h, const char *id)
{
    struct anvil_error     err = { 0 };
    struct anvil_workflow *wf  = NULL;
    int                    rv  = anvil_workflow_get(h->client, id, &wf, &err);

    if (rv != ANVIL_OK)
        print_error("get %s: %s: %s\n", id, anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
    assert_non_null(wf);
    assert_string_equal(wf->id, id);
    return wf;
}

// Waits for the workflow to end; asserts it ended in `state`.
static struct anvil_workflow *
wait_wf(struct harness *h, const char *id, enum anvil_workflow_state state)
{
    struct anvil_error     err = { 0 };
    struct anvil_workflow *wf  = NULL;
    int rv = anvil_workflow_wait(h->client, id, WAIT_MS, &wf, &err);

    if (rv != ANVIL_OK)
        print_error("wait %s: %s: %s\n", id, anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
    assert_non_null(wf);
    if (wf->state != state)
        print_error("workflow %s is %s (\"%s\"), expected %s\n", id,
            anvil_workflow_state_name(wf->state), wf->error,
            anvil_workflow_state_name(state));
    assert_int_equal(wf->state, state);
    assert_true(wf->finished_at_ms >= wf->created_at_ms);
    return wf;
}

struct settle_arg {
    struct harness *h;
    const char     *id;
};

static bool
all_settled(void *p)
{
    struct settle_arg     *a  = p;
    struct anvil_workflow *wf = NULL;
    bool                   done;

    if (anvil_workflow_get(a->h->client, a->id, &wf, NULL) != ANVIL_OK)
        return false;
    done = wf->steps_settled == wf->steps_total;
    for (size_t i = 0; i < wf->n_steps; i++)
        done = done && anvil_job_state_final(wf->steps[i].state);
    anvil_workflow_free(wf);
    return done;
}

// Waits until every step is final (running ones end at their worker's next
// heartbeat); returns the workflow then.
static struct anvil_workflow *
settled_wf(struct harness *h, const char *id)
{
    struct settle_arg a = { h, id };

    if (!harness_wait_for(all_settled, &a, WAIT_MS))
        print_error("workflow %s: steps did not settle\n", id);
    struct anvil_workflow *wf = get_wf(h, id);
    assert_int_equal(wf->steps_settled, wf->steps_total);
    return wf;
}

static const struct anvil_job *
step_of(const struct anvil_workflow *wf, const char *name)
{
    for (size_t i = 0; i < wf->n_steps; i++) {
        if (strcmp(wf->steps[i].step, name) == 0)
            return &wf->steps[i];
    }
    print_error("workflow %s has no step %s\n", wf->id, name);
    fail();
    return NULL;
}

static void
assert_step_state(const struct anvil_workflow *wf, const char *name,
    enum anvil_job_state state)
{
    const struct anvil_job *s = step_of(wf, name);

    if (s->state != state)
        print_error("step %s is %s (\"%s\"), expected %s\n", name,
            anvil_job_state_name(s->state), s->error,
            anvil_job_state_name(state));
    assert_int_equal(s->state, state);
    assert_string_equal(s->workflow_id, wf->id);
}

// ---- chains, groups, diamonds ----

static void
test_chain_of_ten_runs_in_order_passing_each_result_on(void **state)
{
    struct harness        *h = *state;
    const char            *names[10];
    char                   buf[10][16];
    struct anvil_error     err = { 0 };
    anvil_workflow_spec   *spec;
    struct anvil_workflow *wf;
    char                  *id;

    start_worker(h, 4, 1000);
    spec = new_spec("chain10");
    for (int i = 0; i < 10; i++) {
        snprintf(buf[i], sizeof(buf[i]), "c%d", i);
        names[i] = buf[i];
        add_step(spec, names[i], "ok");
    }
    assert_int_equal(
        anvil_workflow_spec_add_chain(spec, names, 10, &err), ANVIL_OK);
    id = submit(h, spec);
    wf = wait_wf(h, id, ANVIL_WORKFLOW_SUCCEEDED);
    anvil_workflow_free(wf);
    wf = get_wf(h, id);
    assert_int_equal(wf->state, ANVIL_WORKFLOW_SUCCEEDED);
    assert_int_equal(wf->steps_total, 10);
    assert_int_equal(wf->steps_succeeded, 10);
    assert_int_equal(wf->steps_failed, 0);
    assert_int_equal(wf->n_steps, 10);
    assert_true(wf->error == NULL || wf->error[0] == '\0');
    for (int i = 0; i < 10; i++) {
        const struct anvil_job *s = &wf->steps[i];
        char                    want[RESULT_LEN];

        assert_string_equal(s->step, names[i]); // submission order
        assert_int_equal(s->state, ANVIL_JOB_SUCCEEDED);
        snprintf(want, sizeof(want), "%s-result", names[i]);
        assert_int_equal(s->result_len, strlen(want));
        assert_memory_equal(s->result, want, strlen(want));
        assert_int_equal(s->n_after, i == 0 ? 0 : 1);
        if (i == 0)
            continue;
        assert_string_equal(s->after[0], names[i - 1]);
        // The server's clock: started only once the parent finished.
        assert_true(s->started_at_ms >= wf->steps[i - 1].finished_at_ms);
    }
    struct run prev = *the_run(names[0]);
    assert_int_equal(prev.n_parents, 0);
    assert_string_equal(prev.wf_id, id);
    for (int i = 1; i < 10; i++) {
        struct run cur = *the_run(names[i]);

        assert_string_equal(cur.wf_id, id);
        assert_int_equal(cur.attempt, 1);
        // The worker's clock: started after the parent's handler returned.
        assert_true(cur.start_us >= prev.end_us);
        assert_int_equal(cur.n_parents, 1);
        assert_got_result_of(&cur, names[i - 1]);
        prev = cur;
    }
    pthread_mutex_lock(&rec.mu);
    int overflow = rec.overflow;
    pthread_mutex_unlock(&rec.mu);
    assert_int_equal(overflow, 0);
    anvil_workflow_free(wf);
    anvil_free(id);
}

// Prints every recorded run, to explain a failed assertion.
static void
dump_runs(void)
{
    pthread_mutex_lock(&rec.mu);
    for (size_t i = 0; i < rec.n; i++)
        print_error("run %zu: step %s attempt %u events %llu-%llu start "
                    "%lld us end %lld us (%lld us)\n",
            i, rec.runs[i].step, rec.runs[i].attempt,
            (unsigned long long) rec.runs[i].start_seq,
            (unsigned long long) rec.runs[i].end_seq,
            (long long) rec.runs[i].start_us, (long long) rec.runs[i].end_us,
            (long long) (rec.runs[i].end_us - rec.runs[i].start_us));
    pthread_mutex_unlock(&rec.mu);
}

// Most handlers running at once, from the recorded start and end events
// (sequence numbers: two runs a microsecond apart still order right).
static int
max_overlap(void)
{
    int best = 0;

    pthread_mutex_lock(&rec.mu);
    for (size_t i = 0; i < rec.n; i++) {
        uint64_t t = rec.runs[i].start_seq;
        int      n = 0;

        for (size_t k = 0; k < rec.n; k++)
            n += rec.runs[k].start_seq <= t && t < rec.runs[k].end_seq;
        if (n > best)
            best = n;
    }
    pthread_mutex_unlock(&rec.mu);
    return best;
}

static void
test_group_of_twenty_runs_in_parallel_and_join_gets_every_result(void **state)
{
    struct harness        *h = *state;
    const char            *names[20];
    char                   buf[20][16];
    struct anvil_error     err = { 0 };
    anvil_workflow_spec   *spec;
    struct anvil_workflow *wf;
    struct run             join;
    int64_t                last_end = 0;
    char                  *id;
    int                    rv;

    start_worker(h, 4, 1000);
    spec = new_spec("fanout");
    for (int i = 0; i < 20; i++) {
        snprintf(buf[i], sizeof(buf[i]), "g%d", i);
        names[i] = buf[i];
        add_step(spec, names[i], "gate");
    }
    add_step(spec, "join", "ok");
    rv = anvil_workflow_spec_add_group(spec, NULL, names, 20, "join", &err);
    if (rv != ANVIL_OK)
        print_error("group: %s: %s\n", anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
    id = submit(h, spec);
    wf = wait_wf(h, id, ANVIL_WORKFLOW_SUCCEEDED);
    assert_int_equal(wf->steps_succeeded, 21);
    assert_int_equal(step_of(wf, "join")->n_after, 20);

    int overlap = max_overlap();
    print_message(
        "group: at most %d of 20 steps ran at once on 4 slots\n", overlap);
    if (overlap < 2)
        dump_runs();

    assert_true(overlap >= 2);
    assert_true(overlap <= 4);
    pthread_mutex_lock(&rec.mu);
    int counted = rec.max_running;
    pthread_mutex_unlock(&rec.mu);
    assert_true(counted >= 2 && counted <= 4);

    for (int i = 0; i < 20; i++) {
        struct run g = *the_run(names[i]);

        assert_int_equal(g.n_parents, 0);
        if (g.end_us > last_end)
            last_end = g.end_us;
    }
    join = *the_run("join");
    assert_int_equal(join.n_parents, 20);
    for (int i = 0; i < 20; i++)
        assert_got_result_of(&join, names[i]);
    assert_true(join.start_us >= last_end);
    anvil_workflow_free(wf);
    anvil_free(id);
}

static void
test_diamond_join_gets_both_branches_and_not_the_root(void **state)
{
    struct harness *h      = *state;
    struct step_def defs[] = {
        { "A", "ok", { NULL } },
        { "B", "ok", { "A" } },
        { "C", "ok", { "A" } },
        { "D", "ok", { "B", "C" } },
    };
    struct anvil_error     err = { 0 };
    struct anvil_workflow *wf;
    struct run             d;
    char                  *id;

    start_worker(h, 2, 1000);
    id = submit(h, spec_from("diamond", defs, 4));
    wf = wait_wf(h, id, ANVIL_WORKFLOW_SUCCEEDED);
    assert_int_equal(wf->steps_succeeded, 4);
    assert_int_equal(the_run("A")->n_parents, 0);
    assert_got_result_of(the_run("B"), "A");
    assert_int_equal(the_run("B")->n_parents, 1);
    assert_got_result_of(the_run("C"), "A");
    assert_int_equal(the_run("C")->n_parents, 1);
    d = *the_run("D");
    assert_int_equal(d.n_parents, 2);
    assert_got_result_of(&d, "B");
    assert_got_result_of(&d, "C");
    assert_null(parent_named(&d, "A"));
    assert_true(d.start_us >= the_run("B")->end_us);
    assert_true(d.start_us >= the_run("C")->end_us);
    anvil_workflow_free(wf);

    // A finished workflow cannot be cancelled, and stays SUCCEEDED.
    wf = NULL;
    assert_int_equal(anvil_workflow_cancel(h->client, id, &wf, &err),
        ANVIL_FAILED_PRECONDITION);
    assert_non_null(strstr(err.msg, "SUCCEEDED"));
    anvil_workflow_free(wf);
    wf = get_wf(h, id);
    assert_int_equal(wf->state, ANVIL_WORKFLOW_SUCCEEDED);
    anvil_workflow_free(wf);
    anvil_free(id);
}

// ---- failure policies ----

static void
test_fail_fast_fails_the_workflow_and_cancels_every_other_step(void **state)
{
    struct harness *h      = *state;
    struct step_def defs[] = {
        { "bad", "fail:slow", { NULL } }, // fails once slow is running
        { "slow", "sleep", { NULL } },
        { "bad_child", "ok", { "bad" } },
        { "slow_child", "ok", { "slow" } },
    };
    struct anvil_workflow *wf;
    char                  *id;

    start_worker(h, 2, FAST_HEARTBEAT);
    id = submit(h, spec_from("failfast", defs, 4));
    wf = wait_wf(h, id, ANVIL_WORKFLOW_FAILED);
    assert_non_null(strstr(wf->error, "'bad'"));
    assert_non_null(strstr(wf->error, "boom in bad"));
    // Ended at once: the waiting steps were cancelled with it; the
    // running one is at most asked to stop.
    assert_step_state(wf, "bad", ANVIL_JOB_FAILED);
    assert_step_state(wf, "bad_child", ANVIL_JOB_CANCELED);
    assert_step_state(wf, "slow_child", ANVIL_JOB_CANCELED);
    assert_true(step_of(wf, "slow")->state == ANVIL_JOB_RUNNING
        || step_of(wf, "slow")->state == ANVIL_JOB_CANCELED);
    anvil_workflow_free(wf);

    wf = settled_wf(h, id);
    assert_int_equal(wf->state, ANVIL_WORKFLOW_FAILED);
    assert_step_state(wf, "bad", ANVIL_JOB_FAILED);
    assert_non_null(strstr(step_of(wf, "bad")->error, "boom in bad"));
    assert_int_equal(step_of(wf, "bad")->attempt, 1); // not retried
    assert_step_state(wf, "slow", ANVIL_JOB_CANCELED);
    assert_step_state(wf, "bad_child", ANVIL_JOB_CANCELED);
    assert_step_state(wf, "slow_child", ANVIL_JOB_CANCELED);
    assert_int_equal(wf->steps_failed, 1);
    assert_int_equal(wf->steps_succeeded, 0);
    assert_true(the_run("slow")->interrupted); // it saw the cancel
    assert_int_equal(runs_of("bad_child", NULL), 0);
    assert_int_equal(runs_of("slow_child", NULL), 0);
    anvil_workflow_free(wf);
    anvil_free(id);
}

static void
test_continue_cancels_only_the_failed_steps_descendants(void **state)
{
    struct harness *h      = *state;
    struct step_def defs[] = {
        { "bad", "fail", { NULL } },
        { "bad_child", "ok", { "bad" } },
        { "bad_grandchild", "ok", { "bad_child" } },
        { "good", "seefail", { NULL } },
        { "good_child", "seefail", { "good" } },
        // Its second parent succeeds after the first failed: still never
        // queued.
        { "mixed", "ok", { "bad", "good" } },
    };
    anvil_workflow_spec   *spec = spec_from("continue", defs, 6);
    struct anvil_workflow *wf;
    struct run             gc;
    char                  *id;

    anvil_workflow_spec_set_policy(spec, ANVIL_POLICY_CONTINUE, NULL);
    start_worker(h, 2, 1000);
    id = submit(h, spec);
    wf = wait_wf(h, id, ANVIL_WORKFLOW_FAILED);
    assert_int_equal(wf->on_failure, ANVIL_POLICY_CONTINUE);
    // It ended only once everything had settled.
    assert_int_equal(wf->steps_settled, 6);
    assert_int_equal(wf->steps_failed, 1);
    assert_int_equal(wf->steps_succeeded, 2);
    assert_step_state(wf, "bad", ANVIL_JOB_FAILED);
    assert_step_state(wf, "bad_child", ANVIL_JOB_CANCELED);
    assert_step_state(wf, "bad_grandchild", ANVIL_JOB_CANCELED);
    assert_step_state(wf, "good", ANVIL_JOB_SUCCEEDED);
    assert_step_state(wf, "good_child", ANVIL_JOB_SUCCEEDED);
    assert_step_state(wf, "mixed", ANVIL_JOB_CANCELED);
    assert_true(
        wf->finished_at_ms >= step_of(wf, "good_child")->finished_at_ms);
    assert_non_null(strstr(wf->error, "1 of 6"));
    assert_int_equal(runs_of("mixed", NULL), 0);
    assert_int_equal(runs_of("bad_child", NULL), 0);
    assert_int_equal(runs_of("bad_grandchild", NULL), 0);
    // good_child started after the failure, while the workflow ran on.
    gc = *the_run("good_child");
    assert_int_equal(gc.failed_seen, 1);
    assert_int_equal(gc.wf_state_seen, ANVIL_WORKFLOW_RUNNING);
    assert_got_result_of(&gc, "good");
    anvil_workflow_free(wf);
    anvil_free(id);
}

// A running step that ignores the cancel and reports success after
// FAIL_FAST ended the workflow: it ends CANCELED and its child never runs.
static void
test_a_step_completing_after_fail_fast_ends_canceled_and_runs_no_child(
    void **state)
{
    struct harness *h      = *state;
    struct step_def defs[] = {
        { "bad", "fail:stubborn", { NULL } },
        { "stubborn", "seefail", { NULL } },
        { "stubborn_child", "ok", { "stubborn" } },
    };
    struct anvil_workflow *wf;
    struct run             st;
    char                  *id;

    start_worker(h, 2, FAST_HEARTBEAT);
    id = submit(h, spec_from("stubborn", defs, 3));
    wf = wait_wf(h, id, ANVIL_WORKFLOW_FAILED);
    assert_step_state(wf, "stubborn_child", ANVIL_JOB_CANCELED);
    anvil_workflow_free(wf);
    wf = settled_wf(h, id);
    assert_int_equal(wf->state, ANVIL_WORKFLOW_FAILED);
    assert_non_null(strstr(wf->error, "'bad'"));
    assert_step_state(wf, "bad", ANVIL_JOB_FAILED);
    assert_step_state(wf, "stubborn", ANVIL_JOB_CANCELED);
    assert_step_state(wf, "stubborn_child", ANVIL_JOB_CANCELED);
    assert_int_equal(wf->steps_succeeded, 0);
    st = *the_run("stubborn");
    assert_int_equal(st.wf_state_seen, ANVIL_WORKFLOW_FAILED);
    assert_int_equal(runs_of("stubborn_child", NULL), 0);
    anvil_workflow_free(wf);
    anvil_free(id);
}

// A step waiting out its retry backoff when FAIL_FAST ends the workflow is
// cancelled at once, and its retry timer does not run it again.
static void
test_fail_fast_cancels_a_step_waiting_to_retry_for_good(void **state)
{
    struct harness *h      = *state;
    struct step_def defs[] = {
        { "flaky", "flaky", { NULL } },
        { "bad", "failwhen:flaky", { NULL } },
    };
    struct anvil_job_opts  opts = { 0 };
    struct anvil_error     err  = { 0 };
    struct anvil_workflow *wf;
    struct anvil_job      *job      = NULL;
    char                  *sentinel = NULL;
    char                  *id;

    start_worker(h, 2, FAST_HEARTBEAT);
    id = submit(h, spec_from("retrying", defs, 2));
    wf = wait_wf(h, id, ANVIL_WORKFLOW_FAILED);
    assert_true(the_run("bad")->saw_state); // flaky was SCHEDULED then
    assert_step_state(wf, "bad", ANVIL_JOB_FAILED);
    assert_step_state(wf, "flaky", ANVIL_JOB_CANCELED);
    assert_int_equal(step_of(wf, "flaky")->attempt, 1);
    anvil_workflow_free(wf);
    // A job due after the retry would have been (backoff 0.8-1.2 s) runs
    // on the same worker: by then the timer has fired, to no effect.
    opts.delay_ms = 1500;
    assert_int_equal(anvil_job_submit(h->client, "step", "ok", 2, &opts,
                         &sentinel, NULL, &err),
        ANVIL_OK);
    assert_int_equal(
        anvil_job_wait(h->client, sentinel, WAIT_MS, &job, &err), ANVIL_OK);
    assert_int_equal(job->state, ANVIL_JOB_SUCCEEDED);
    anvil_job_free(job);
    assert_int_equal(runs_of("flaky", NULL), 1);
    wf = get_wf(h, id);
    assert_step_state(wf, "flaky", ANVIL_JOB_CANCELED);
    assert_int_equal(wf->steps_settled, 2);
    anvil_workflow_free(wf);
    anvil_free(sentinel);
    anvil_free(id);
}

static void
test_a_retried_step_passes_on_the_result_of_its_good_attempt(void **state)
{
    struct harness *h      = *state;
    struct step_def defs[] = {
        { "flaky", "flaky", { NULL } },
        { "after_flaky", "ok", { "flaky" } },
    };
    struct anvil_workflow *wf;
    char                  *id;

    start_worker(h, 1, 1000);
    id = submit(h, spec_from("retried", defs, 2));
    wf = wait_wf(h, id, ANVIL_WORKFLOW_SUCCEEDED);
    assert_int_equal(step_of(wf, "flaky")->attempt, 2);
    assert_int_equal(runs_of("flaky", NULL), 2);
    assert_got_result_of(the_run("after_flaky"), "flaky");
    assert_int_equal(the_run("after_flaky")->n_parents, 1);
    anvil_workflow_free(wf);
    anvil_free(id);
}

// ---- cancel and timeout ----

static bool
mid_and_side_running(void *unused)
{
    (void) unused;
    return rec_has_started(&rec, "mid") && rec_has_started(&rec, "side");
}

static void
test_cancel_stops_a_running_workflow_and_nothing_starts_after(void **state)
{
    struct harness *h      = *state;
    struct step_def defs[] = {
        { "first", "ok", { NULL } },
        { "mid", "sleep", { "first" } },
        { "last", "ok", { "mid" } },
        { "side", "sleep", { NULL } },
    };
    struct anvil_error     err = { 0 };
    struct anvil_workflow *wf  = NULL;
    struct anvil_job      *job = NULL;
    char                  *id, *sentinel = NULL;
    int64_t                cancel_us;
    int                    rv;

    start_worker(h, 2, FAST_HEARTBEAT);
    id = submit(h, spec_from("tocancel", defs, 4));
    assert_true(harness_wait_for(mid_and_side_running, NULL, WAIT_MS));

    cancel_us = av_mono_us();
    rv        = anvil_workflow_cancel(h->client, id, &wf, &err);
    if (rv != ANVIL_OK)
        print_error("cancel: %s: %s\n", anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
    assert_non_null(wf);
    assert_int_equal(wf->state, ANVIL_WORKFLOW_CANCELED);
    assert_step_state(wf, "first", ANVIL_JOB_SUCCEEDED);
    assert_step_state(wf, "last", ANVIL_JOB_CANCELED); // waiting: at once
    anvil_workflow_free(wf);

    wf = settled_wf(h, id);
    assert_int_equal(wf->state, ANVIL_WORKFLOW_CANCELED);
    assert_step_state(wf, "first", ANVIL_JOB_SUCCEEDED);
    assert_step_state(wf, "mid", ANVIL_JOB_CANCELED);
    assert_step_state(wf, "side", ANVIL_JOB_CANCELED);
    assert_step_state(wf, "last", ANVIL_JOB_CANCELED);
    anvil_workflow_free(wf);

    // The worker keeps polling: a job submitted now runs, and "last" never
    // did.
    rv = anvil_job_submit(
        h->client, "step", "ok", 2, NULL, &sentinel, NULL, &err);
    assert_int_equal(rv, ANVIL_OK);
    assert_int_equal(
        anvil_job_wait(h->client, sentinel, WAIT_MS, &job, &err), ANVIL_OK);
    assert_int_equal(job->state, ANVIL_JOB_SUCCEEDED);
    anvil_job_free(job);
    assert_int_equal(runs_of("last", NULL), 0);
    assert_true(the_run("mid")->interrupted);
    assert_true(the_run("side")->interrupted);
    pthread_mutex_lock(&rec.mu);
    size_t n_runs = rec.n, late = 0;
    for (size_t i = 0; i < rec.n; i++) {
        if (rec.runs[i].step[0] != '\0') // a workflow step
            late += rec.runs[i].start_us >= cancel_us;
    }
    pthread_mutex_unlock(&rec.mu);
    assert_int_equal(late, 0);   // no step started after the cancel
    assert_int_equal(n_runs, 4); // first, mid, side, and the sentinel

    // Cancelling again is no error, and changes nothing.
    wf = NULL;
    rv = anvil_workflow_cancel(h->client, id, &wf, &err);
    assert_int_equal(rv, ANVIL_OK);
    assert_non_null(wf);
    assert_int_equal(wf->state, ANVIL_WORKFLOW_CANCELED);
    assert_step_state(wf, "first", ANVIL_JOB_SUCCEEDED);
    anvil_workflow_free(wf);
    // An unknown workflow cannot be cancelled.
    assert_int_equal(anvil_workflow_cancel(h->client, "w999999", NULL, &err),
        ANVIL_NOT_FOUND);
    anvil_free(sentinel);
    anvil_free(id);
}

static void
test_workflow_timeout_fails_it_and_cancels_its_steps(void **state)
{
    struct harness *h      = *state;
    struct step_def defs[] = {
        { "long", "sleep", { NULL } },
        { "after_long", "ok", { "long" } },
    };
    anvil_workflow_spec   *spec = spec_from("timeboxed", defs, 2);
    struct anvil_workflow *wf;
    char                  *id;

    anvil_workflow_spec_set_timeout(spec, 300, NULL);
    start_worker(h, 1, FAST_HEARTBEAT);
    id = submit(h, spec);
    wf = wait_wf(h, id, ANVIL_WORKFLOW_FAILED);
    assert_string_equal(wf->error, "workflow timed out");
    assert_int_equal(wf->timeout_ms, 300);
    assert_true(wf->finished_at_ms - wf->created_at_ms >= 300);
    assert_step_state(wf, "after_long", ANVIL_JOB_CANCELED);
    anvil_workflow_free(wf);

    wf = settled_wf(h, id);
    assert_int_equal(wf->state, ANVIL_WORKFLOW_FAILED);
    assert_string_equal(wf->error, "workflow timed out");
    assert_step_state(wf, "long", ANVIL_JOB_CANCELED);
    assert_step_state(wf, "after_long", ANVIL_JOB_CANCELED);
    assert_true(the_run("long")->interrupted);
    assert_int_equal(runs_of("after_long", NULL), 0);
    anvil_workflow_free(wf);
    anvil_free(id);
}

static void
test_negative_workflow_timeout_is_invalid_argument(void **state)
{
    struct harness             *h    = *state;
    anvil_workflow_spec        *spec = new_spec("negative");
    struct anvil_error          err  = { 0 };
    struct anvil_workflow_list *list = NULL;
    char                       *id   = NULL;

    add_step(spec, "s", "ok");
    assert_int_equal(anvil_workflow_spec_set_timeout(spec, -5, &err),
        ANVIL_INVALID_ARGUMENT);
    spec->timeout_ms = -5; // past the SDK's check: the server refuses it too
    assert_int_equal(anvil_workflow_submit(h->client, spec, &id, NULL, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_null(id);
    assert_non_null(strstr(err.msg, "timeout"));
    anvil_workflow_spec_free(spec);
    assert_int_equal(
        anvil_workflow_list(h->client, NULL, &list, NULL), ANVIL_OK);
    assert_int_equal(list->n, 0);
    anvil_workflow_list_free(list);
}

// ---- idempotency ----

static void
test_same_idempotency_key_returns_the_same_workflow(void **state)
{
    struct harness             *h      = *state;
    struct anvil_error          err    = { 0 };
    struct anvil_workflow_list *list   = NULL;
    struct anvil_job_list      *jobs   = NULL;
    struct anvil_job_filter     jf     = { 0 };
    struct step_def             defs[] = {
                    { "x", "ok", { NULL } },
                    { "y", "ok", { "x" } },
    };
    char       *ids[3] = { NULL, NULL, NULL };
    bool        existed[3];
    const char *keys[3] = { "order-42", "order-42", "order-43" };

    for (int i = 0; i < 3; i++) {
        anvil_workflow_spec *spec = spec_from("keyed", defs, 2);
        int                  rv;

        assert_int_equal(
            anvil_workflow_spec_set_key(spec, keys[i], &err), ANVIL_OK);
        existed[i] = !(i == 1);
        rv = anvil_workflow_submit(h->client, spec, &ids[i], &existed[i], &err);
        anvil_workflow_spec_free(spec);
        if (rv != ANVIL_OK)
            print_error("submit %d: %s: %s\n", i, anvil_code_name(rv), err.msg);
        assert_int_equal(rv, ANVIL_OK);
    }
    assert_false(existed[0]);
    assert_true(existed[1]);
    assert_string_equal(ids[0], ids[1]);
    assert_false(existed[2]);
    assert_string_not_equal(ids[0], ids[2]);
    // Two workflows of two steps each were stored, not three.
    assert_int_equal(
        anvil_workflow_list(h->client, NULL, &list, NULL), ANVIL_OK);
    assert_int_equal(list->n, 2);
    anvil_workflow_list_free(list);
    jf.limit = 100;
    assert_int_equal(anvil_job_list(h->client, &jf, &jobs, NULL), ANVIL_OK);
    assert_int_equal(jobs->n, 4);
    anvil_job_list_free(jobs);
    for (int i = 0; i < 3; i++)
        anvil_free(ids[i]);
}

// ---- validation ----

// Nothing was stored: no workflow and no job.
static void
assert_nothing_stored(struct harness *h)
{
    struct anvil_workflow_list *list = NULL;
    struct anvil_job_list      *jobs = NULL;

    assert_int_equal(
        anvil_workflow_list(h->client, NULL, &list, NULL), ANVIL_OK);
    assert_int_equal(list->n, 0);
    anvil_workflow_list_free(list);
    assert_int_equal(anvil_job_list(h->client, NULL, &jobs, NULL), ANVIL_OK);
    assert_int_equal(jobs->n, 0);
    anvil_job_list_free(jobs);
}

// Submits spec (and frees it); asserts INVALID_ARGUMENT whose message holds
// each of the NULL-terminated needles.
static void
submit_rejected(struct harness *h, anvil_workflow_spec *spec, ...)
{
    struct anvil_error err     = { 0 };
    char              *id      = NULL;
    bool               existed = false;
    int     rv = anvil_workflow_submit(h->client, spec, &id, &existed, &err);
    va_list ap;

    anvil_workflow_spec_free(spec);
    if (rv != ANVIL_INVALID_ARGUMENT)
        print_error("submit: %s: %s\n", anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_INVALID_ARGUMENT);
    assert_int_equal(err.code, ANVIL_INVALID_ARGUMENT);
    assert_null(id);
    va_start(ap, spec);
    for (const char *n = va_arg(ap, const char *); n != NULL;
         n             = va_arg(ap, const char *)) {
        if (strstr(err.msg, n) == NULL)
            print_error("\"%s\" does not name \"%s\"\n", err.msg, n);
        assert_non_null(strstr(err.msg, n));
    }
    va_end(ap);
}

// A SubmitWorkflow sent on the wire as any client could, bypassing the
// builder's own checks. Steps are "name" or "name<parent1<parent2...".
static int
raw_submit(struct harness *h, const char *const *steps, size_t n,
    struct anvil_error *err)
{
    Anvil__V1__SubmitWorkflowRequest req
        = ANVIL__V1__SUBMIT_WORKFLOW_REQUEST__INIT;
    Anvil__V1__WorkflowSpec spec = ANVIL__V1__WORKFLOW_SPEC__INIT;
    Anvil__V1__StepSpec     st[8];
    Anvil__V1__StepSpec    *ptrs[8];
    char                    text[8][64];
    char                   *after[8][4];
    ProtobufCMessage       *reply = NULL;
    int                     rv;

    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        char *save = NULL;

        anvil__v1__step_spec__init(&st[i]);
        snprintf(text[i], sizeof(text[i]), "%s", steps[i]);
        st[i].name  = strtok_r(text[i], "<", &save);
        st[i].type  = "step";
        st[i].after = after[i];
        for (char *p                           = strtok_r(NULL, "<", &save);
             p != NULL && st[i].n_after < 4; p = strtok_r(NULL, "<", &save))
            after[i][st[i].n_after++] = p;
        ptrs[i] = &st[i];
    }
    spec.name    = "raw";
    spec.steps   = ptrs;
    spec.n_steps = n;
    req.spec     = &spec;
    rv = client_call(h->client, "SubmitWorkflow", &req.base, 0, &reply, err);
    client_free_reply(reply);
    return rv;
}

static void
assert_raw_rejected(struct harness *h, const char *const *steps, size_t n,
    const char *needle1, const char *needle2)
{
    struct anvil_error err = { 0 };
    int                rv  = raw_submit(h, steps, n, &err);

    if (rv != ANVIL_INVALID_ARGUMENT || strstr(err.msg, needle1) == NULL
        || strstr(err.msg, needle2) == NULL)
        print_error("raw submit: %s: \"%s\"; expected INVALID_ARGUMENT "
                    "naming \"%s\" and \"%s\"\n",
            anvil_code_name(rv), err.msg, needle1, needle2);
    assert_int_equal(rv, ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, needle1));
    assert_non_null(strstr(err.msg, needle2));
}

static void
test_duplicate_and_unknown_step_names_are_invalid_argument(void **state)
{
    struct harness      *h         = *state;
    const char *const    dup[]     = { "a", "b<a", "b" };
    const char *const    unknown[] = { "a", "b<a<ghost" };
    const char *const    fine[]    = { "a", "b<a" };
    anvil_workflow_spec *spec      = new_spec("local");
    struct anvil_error   err       = { 0 };

    // The builder refuses both itself, with its documented codes...
    add_step(spec, "a", "ok");
    assert_int_equal(
        anvil_workflow_spec_add_step(spec, "a", "step", "ok", 2, NULL, &err),
        ANVIL_ALREADY_EXISTS);
    assert_int_equal(anvil_workflow_spec_add_edge(spec, "a", "ghost", &err),
        ANVIL_NOT_FOUND);
    assert_int_equal(anvil_workflow_spec_add_edge(spec, "a", "a", &err),
        ANVIL_INVALID_ARGUMENT);
    anvil_workflow_spec_free(spec);
    // ...and the server, for any client that skips it.
    assert_raw_rejected(h, dup, 3, "'b'", "twice");
    assert_raw_rejected(h, unknown, 2, "'b'", "'ghost'");
    assert_nothing_stored(h);
    // The same request, well formed, is accepted.
    assert_int_equal(raw_submit(h, fine, 2, &err), ANVIL_OK);
}

static void
test_cycle_is_invalid_argument_naming_the_cycle(void **state)
{
    struct harness      *h    = *state;
    anvil_workflow_spec *spec = new_spec("loop");

    add_step(spec, "start", "ok");
    add_step(spec, "a", "ok");
    add_step(spec, "b", "ok");
    add_step(spec, "c", "ok");
    add_after(spec, "a", "start");
    add_after(spec, "a", "c");
    add_after(spec, "b", "a");
    add_after(spec, "c", "b");
    submit_rejected(
        h, spec, "cycle", "a -> b", "b -> c", "c -> a", (const char *) NULL);
    assert_nothing_stored(h);
}

static void
test_workflow_without_steps_is_invalid_argument(void **state)
{
    struct harness *h = *state;

    // The SDK refuses it before sending; the server refuses it too.
    submit_rejected(h, new_spec("empty"), "step", (const char *) NULL);
    assert_raw_rejected(h, NULL, 0, "workflow", "at least one step");
    assert_nothing_stored(h);
}

static void
test_bad_type_and_oversized_payload_are_invalid_argument(void **state)
{
    struct harness      *h    = *state;
    anvil_workflow_spec *spec = new_spec("badtype");
    struct anvil_error   err  = { 0 };
    char                *big  = malloc(SMALL_PAYLOAD + 1);
    int                  rv;

    assert_non_null(big);
    memset(big, 'p', SMALL_PAYLOAD + 1);
    add_step(spec, "fine", "ok");
    // The builder leaves name syntax to the server.
    rv = anvil_workflow_spec_add_step(
        spec, "odd", "bad type!", "ok", 2, NULL, &err);
    assert_int_equal(rv, ANVIL_OK);
    add_after(spec, "odd", "fine");
    submit_rejected(h, spec, "'odd'", "type", "bad type!", (const char *) NULL);

    spec = new_spec("bigpayload");
    add_step(spec, "fine", "ok");
    rv = anvil_workflow_spec_add_step(
        spec, "huge", "step", big, SMALL_PAYLOAD + 1, NULL, &err);
    assert_int_equal(rv, ANVIL_OK);
    submit_rejected(h, spec, "'huge'", "payload", "1025", (const char *) NULL);
    assert_nothing_stored(h);

    // At the limit it is accepted.
    spec = new_spec("atlimit");
    rv   = anvil_workflow_spec_add_step(
          spec, "full", "step", big, SMALL_PAYLOAD, NULL, &err);
    assert_int_equal(rv, ANVIL_OK);
    anvil_free(submit(h, spec));
    free(big);
}

// ---- get and list ----

static void
test_get_workflow_returns_what_was_submitted(void **state)
{
    struct harness        *h    = *state;
    anvil_workflow_spec   *spec = new_spec("report");
    struct anvil_step_opts opts = { 0 };
    struct anvil_error     err  = { 0 };
    struct anvil_workflow *wf   = NULL;
    char                  *id;

    opts.queue              = "reports";
    opts.priority           = 5;
    opts.retry.max_attempts = 7;
    opts.timeout_ms         = 1234;
    assert_int_equal(anvil_workflow_spec_add_step(
                         spec, "extract", "step", "\x00\x01", 2, &opts, &err),
        ANVIL_OK);
    add_step(spec, "load", "ok");
    add_after(spec, "load", "extract");
    anvil_workflow_spec_set_policy(spec, ANVIL_POLICY_CONTINUE, NULL);
    anvil_workflow_spec_set_timeout(spec, 60000, NULL);
    id = submit(h, spec);

    wf = get_wf(h, id);
    assert_string_equal(wf->name, "report");
    assert_int_equal(wf->state, ANVIL_WORKFLOW_RUNNING);
    assert_int_equal(wf->on_failure, ANVIL_POLICY_CONTINUE);
    assert_int_equal(wf->timeout_ms, 60000);
    assert_true(wf->created_at_ms > 0);
    assert_int_equal(wf->finished_at_ms, 0);
    assert_int_equal(wf->steps_total, 2);
    assert_int_equal(wf->steps_settled, 0);
    assert_int_equal(wf->n_steps, 2);
    assert_string_equal(wf->steps[0].step, "extract");
    assert_string_equal(wf->steps[0].type, "step");
    assert_string_equal(wf->steps[0].queue, "reports");
    assert_int_equal(wf->steps[0].priority, 5);
    assert_int_equal(wf->steps[0].retry.max_attempts, 7);
    assert_int_equal(wf->steps[0].timeout_ms, 1234);
    assert_int_equal(wf->steps[0].payload_len, 2);
    assert_memory_equal(wf->steps[0].payload, "\x00\x01", 2);
    assert_int_equal(wf->steps[0].state, ANVIL_JOB_QUEUED);
    assert_int_equal(wf->steps[0].n_after, 0);
    assert_string_equal(wf->steps[0].workflow_id, id);
    assert_string_equal(wf->steps[1].step, "load");
    assert_string_equal(wf->steps[1].queue, "default");
    assert_int_equal(wf->steps[1].retry.max_attempts, 3);
    assert_int_equal(wf->steps[1].state, ANVIL_JOB_PENDING);
    assert_int_equal(wf->steps[1].n_after, 1);
    assert_string_equal(wf->steps[1].after[0], "extract");
    anvil_workflow_free(wf);

    // Unknown ids.
    wf = NULL;
    assert_int_equal(
        anvil_workflow_get(h->client, "w999999", &wf, &err), ANVIL_NOT_FOUND);
    assert_null(wf);
    assert_true(err.msg[0] != '\0');
    assert_int_equal(
        anvil_workflow_get(h->client, "j1", &wf, &err), ANVIL_NOT_FOUND);
    assert_null(wf);
    assert_int_equal(anvil_workflow_wait(h->client, "w999999", 10, &wf, &err),
        ANVIL_NOT_FOUND);
    anvil_workflow_free(wf);
    wf = NULL;
    assert_int_equal(
        anvil_workflow_get(h->client, "", &wf, &err), ANVIL_INVALID_ARGUMENT);
    assert_null(wf);
    // A wait that times out returns the workflow as it is.
    assert_int_equal(anvil_workflow_wait(h->client, id, 50, &wf, &err),
        ANVIL_DEADLINE_EXCEEDED);
    assert_non_null(wf);
    assert_int_equal(wf->state, ANVIL_WORKFLOW_RUNNING);
    anvil_workflow_free(wf);
    anvil_free(id);
}

// Lists with filter f; returns the ids in order, count in *n.
static struct anvil_workflow_list *
list_wf(struct harness *h, const struct anvil_workflow_filter *f)
{
    struct anvil_error          err  = { 0 };
    struct anvil_workflow_list *list = NULL;
    int rv = anvil_workflow_list(h->client, f, &list, &err);

    if (rv != ANVIL_OK)
        print_error("list: %s: %s\n", anvil_code_name(rv), err.msg);
    assert_int_equal(rv, ANVIL_OK);
    assert_non_null(list);
    assert_non_null(list->next_cursor);
    return list;
}

static void
test_list_workflows_filters_by_state_and_name_and_pages(void **state)
{
    struct harness *h        = *state;
    const char     *names[5] = { "alpha", "beta", "alpha", "beta", "alpha" };
    char           *ids[5];
    struct anvil_workflow_filter f = { 0 };
    struct anvil_workflow_list  *list;
    struct anvil_error           err        = { 0 };
    char                         cursor[64] = "";
    int                          seen       = 0;

    for (int i = 0; i < 5; i++) {
        anvil_workflow_spec *spec = new_spec(names[i]);

        add_step(spec, "only", "ok");
        ids[i] = submit(h, spec);
    }
    assert_int_equal(
        anvil_workflow_cancel(h->client, ids[1], NULL, &err), ANVIL_OK);

    // All, newest first, without steps.
    list = list_wf(h, &f);
    assert_int_equal(list->n, 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(list->workflows[i].id, ids[4 - i]);
        assert_string_equal(list->workflows[i].name, names[4 - i]);
        assert_int_equal(list->workflows[i].n_steps, 0);
        assert_int_equal(list->workflows[i].steps_total, 1);
    }
    assert_string_equal(list->next_cursor, "");
    anvil_workflow_list_free(list);

    f.state = ANVIL_WORKFLOW_CANCELED;
    list    = list_wf(h, &f);
    assert_int_equal(list->n, 1);
    assert_string_equal(list->workflows[0].id, ids[1]);
    assert_int_equal(list->workflows[0].state, ANVIL_WORKFLOW_CANCELED);
    anvil_workflow_list_free(list);

    f.state = ANVIL_WORKFLOW_RUNNING;
    f.name  = "beta";
    list    = list_wf(h, &f);
    assert_int_equal(list->n, 1);
    assert_string_equal(list->workflows[0].id, ids[3]);
    anvil_workflow_list_free(list);

    f.state = 0;
    f.name  = "alpha";
    list    = list_wf(h, &f);
    assert_int_equal(list->n, 3);
    assert_string_equal(list->workflows[0].id, ids[4]);
    assert_string_equal(list->workflows[2].id, ids[0]);
    anvil_workflow_list_free(list);

    f.state = ANVIL_WORKFLOW_SUCCEEDED;
    f.name  = NULL;
    list    = list_wf(h, &f);
    assert_int_equal(list->n, 0);
    anvil_workflow_list_free(list);

    // Pages of two: 2, 2, 1, newest first, then an empty cursor.
    f.state = 0;
    f.limit = 2;
    for (int page = 0; page < 3; page++) {
        f.cursor = cursor[0] ? cursor : NULL;
        list     = list_wf(h, &f);
        assert_int_equal(list->n, page < 2 ? 2 : 1);
        for (size_t i = 0; i < list->n; i++)
            assert_string_equal(list->workflows[i].id, ids[4 - seen++]);
        assert_int_equal(list->next_cursor[0] == '\0', page == 2);
        snprintf(cursor, sizeof(cursor), "%s", list->next_cursor);
        anvil_workflow_list_free(list);
    }
    assert_int_equal(seen, 5);

    // Bad filters.
    f.limit  = 0;
    f.cursor = "not-a-cursor";
    list     = NULL;
    assert_int_equal(anvil_workflow_list(h->client, &f, &list, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_null(list);
    f.cursor = NULL;
    f.name   = "no spaces";
    assert_int_equal(anvil_workflow_list(h->client, &f, &list, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_null(list);
    f.name  = NULL;
    f.limit = 1001;
    assert_int_equal(anvil_workflow_list(h->client, &f, &list, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_null(list);
    for (int i = 0; i < 5; i++)
        anvil_free(ids[i]);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
#define T_SMALL(name) \
    cmocka_unit_test_setup_teardown(name, setup_small_payload, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_chain_of_ten_runs_in_order_passing_each_result_on),
        T(test_group_of_twenty_runs_in_parallel_and_join_gets_every_result),
        T(test_diamond_join_gets_both_branches_and_not_the_root),
        T(test_fail_fast_fails_the_workflow_and_cancels_every_other_step),
        T(test_continue_cancels_only_the_failed_steps_descendants),
        T(test_a_step_completing_after_fail_fast_ends_canceled_and_runs_no_child),
        T(test_fail_fast_cancels_a_step_waiting_to_retry_for_good),
        T(test_a_retried_step_passes_on_the_result_of_its_good_attempt),
        T(test_cancel_stops_a_running_workflow_and_nothing_starts_after),
        T(test_workflow_timeout_fails_it_and_cancels_its_steps),
        T(test_negative_workflow_timeout_is_invalid_argument),
        T(test_same_idempotency_key_returns_the_same_workflow),
        T_SMALL(test_duplicate_and_unknown_step_names_are_invalid_argument),
        T_SMALL(test_cycle_is_invalid_argument_naming_the_cycle),
        T_SMALL(test_workflow_without_steps_is_invalid_argument),
        T_SMALL(test_bad_type_and_oversized_payload_are_invalid_argument),
        T(test_get_workflow_returns_what_was_submitted),
        T(test_list_workflows_filters_by_state_and_name_and_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
