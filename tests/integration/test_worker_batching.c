// test_worker_batching.c - the worker library's default path against a
// real anvild: outcomes reported asynchronously in batches (Report), and
// prefetch (leases beyond the slots). Every job must still end as its
// handler said, retries and failures as before, a stop must leave every
// outcome on the server, and a worker never holds more leases than its
// slots plus its prefetch. Adaptive prefetch (the default) must give fast
// handlers a deep queue and shrink for slow ones, so they are not hoarded.

// cmocka.h needs these first.
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include "../../worker/handlers.h"
#include "../harness.h"
#include "runtime/worker_peek.h"

#include <nng/nng.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 20000
#define MAX_IDS 512

// Set once the worker library logs that it fell back from Report.
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static bool            fell_back;

static void
test_logger(void *arg, int level, const char *line)
{
    (void) arg;
    (void) level;
    pthread_mutex_lock(&log_mu);
    fell_back = fell_back || strstr(line, "worker.report.fallback") != NULL;
    pthread_mutex_unlock(&log_mu);
    if (getenv("ANVIL_TEST_LOG") != NULL)
        fprintf(stderr, "%s\n", line);
}

// What the test handlers share with the test thread; guarded by mu.
struct probe {
    pthread_mutex_t mu;
    bool            open;             // gate handlers may return
    int             running;          // gate and turnstile handlers running
    int             permits;          // turnstile handlers that may return
    char            ids[MAX_IDS][24]; // jobs whose handler returned OK
    size_t          n_ids;
};

struct fixture {
    struct harness h;
    struct probe   p;
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    pthread_mutex_init(&f->p.mu, NULL);
    *state = f;
    return harness_start(&f->h);
}

static int
teardown(void **state)
{
    struct fixture *f  = *state;
    int             rc = harness_stop(&f->h);
    pthread_mutex_destroy(&f->p.mu);
    free(f);
    return rc;
}

// ---- handlers ----

// Fails its first attempt (retryable), then returns "ok@<attempt>".
static int
flaky(void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) arg;
    char out[32];
    if (lease->job.attempt < 2) {
        anvil_job_ctx_set_error(ctx, true, "flaky at %u", lease->job.attempt);
        return ANVIL_UNAVAILABLE;
    }
    int n = snprintf(out, sizeof(out), "ok@%u", lease->job.attempt);
    return anvil_job_ctx_set_result(ctx, out, (size_t) n);
}

// Always fails, retryable.
static int
doomed(void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) arg;
    anvil_job_ctx_set_error(ctx, true, "doomed at %u", lease->job.attempt);
    return ANVIL_INTERNAL;
}

// Fails for good at once.
static int
final(void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) arg;
    (void) lease;
    anvil_job_ctx_set_error(ctx, false, "no way");
    return ANVIL_INTERNAL;
}

// Runs until the test opens the gate (or the job is canceled).
static int
gate(void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    struct probe *p = arg;
    pthread_mutex_lock(&p->mu);
    p->running++;
    pthread_mutex_unlock(&p->mu);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        bool open = p->open;
        pthread_mutex_unlock(&p->mu);
        if (open || !anvil_job_ctx_sleep(ctx, 5))
            break;
    }
    pthread_mutex_lock(&p->mu);
    p->running--;
    pthread_mutex_unlock(&p->mu);
    if (anvil_job_ctx_is_canceled(ctx)) {
        anvil_job_ctx_set_error(ctx, true, "canceled");
        return ANVIL_CANCELLED;
    }
    return anvil_job_ctx_set_result(ctx, lease->job.id, strlen(lease->job.id));
}

// Runs until the test lets it through (one per permit, or all once the
// gate opens) or the job is canceled. Taking a permit and leaving the
// running count happen under one lock, so permits == 0 with running ==
// slots means the handler let through is done and its slot took a job.
static int
turnstile(void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    struct probe *p       = arg;
    bool          through = false;
    pthread_mutex_lock(&p->mu);
    p->running++;
    pthread_mutex_unlock(&p->mu);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        through = p->open || p->permits > 0;
        if (through && !p->open)
            p->permits--;
        if (through)
            p->running--;
        pthread_mutex_unlock(&p->mu);
        if (through || !anvil_job_ctx_sleep(ctx, 2))
            break;
    }
    if (!through) {
        pthread_mutex_lock(&p->mu);
        p->running--;
        pthread_mutex_unlock(&p->mu);
        anvil_job_ctx_set_error(ctx, true, "canceled");
        return ANVIL_CANCELLED;
    }
    return anvil_job_ctx_set_result(ctx, lease->job.id, strlen(lease->job.id));
}

// Succeeds at once with an empty result.
static int
noop(void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) arg;
    (void) lease;
    (void) ctx;
    return ANVIL_OK;
}

// Returns its payload and records the job as done.
static int
record(void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    struct probe *p  = arg;
    int           rc = anvil_job_ctx_set_result(
                  ctx, lease->job.payload, lease->job.payload_len);
    pthread_mutex_lock(&p->mu);
    if (rc == ANVIL_OK && p->n_ids < MAX_IDS)
        snprintf(p->ids[p->n_ids++], sizeof(p->ids[0]), "%s", lease->job.id);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

// ---- helpers ----

// Starts a worker with slots and prefetch, 200 ms polls and 100 ms
// heartbeats, handling (type, fn, arg) triples ended by a NULL type. The
// harness stops and frees it.
static anvil_worker *
start(struct harness *h, int slots, int prefetch, ...)
{
    struct anvil_worker_opts o   = { 0 };
    struct anvil_error       err = { 0 };
    anvil_worker            *w   = NULL;
    o.url                        = h->url;
    o.slots                      = slots;
    o.prefetch                   = prefetch;
    o.poll_wait_ms               = 200;
    o.heartbeat_ms               = 100;
    assert_int_equal(anvil_worker_new(&w, &o, &err), ANVIL_OK);
    va_list ap;
    va_start(ap, prefetch);
    for (const char *t = va_arg(ap, const char *); t != NULL;
         t             = va_arg(ap, const char *)) {
        anvil_handler_fn fn  = va_arg(ap, anvil_handler_fn);
        void            *arg = va_arg(ap, void *);
        assert_int_equal(
            anvil_worker_add_handler(w, t, fn, arg, &err), ANVIL_OK);
    }
    va_end(ap);
    assert_int_equal(anvil_worker_start(w, &err), ANVIL_OK);
    assert_true(h->n_workers < HARNESS_MAX_WORKERS);
    h->workers[h->n_workers++] = w;
    return w;
}

static char *
submit(struct harness *h, const char *type, const char *payload,
    const struct anvil_job_opts *opts)
{
    char              *id  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_job_submit(h->client, type, payload, strlen(payload),
                         opts, &id, NULL, &err),
        ANVIL_OK);
    return id;
}

static struct anvil_job *
get(struct harness *h, const char *id)
{
    struct anvil_job  *job = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(anvil_job_get(h->client, id, &job, &err), ANVIL_OK);
    return job;
}

static struct anvil_job *
wait_final(struct harness *h, const char *id)
{
    struct anvil_job  *job = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(
        anvil_job_wait(h->client, id, WAIT_MS, &job, &err), ANVIL_OK);
    return job;
}

struct succeeded_wait {
    anvil_worker *w;
    uint64_t      n;
};

static bool
succeeded_reached(void *arg)
{
    struct succeeded_wait    *s = arg;
    struct anvil_worker_stats st;
    anvil_worker_get_stats(s->w, &st);
    return st.succeeded >= s->n;
}

// The server's queued and running counts of one job type; false (and 0s)
// when Health did not answer.
static bool
depth(struct harness *h, const char *type, uint64_t *queued, uint64_t *running)
{
    struct anvil_health *hl  = NULL;
    struct anvil_error   err = { 0 };
    *queued = *running = 0;
    if (anvil_health_get(h->client, &hl, &err) != ANVIL_OK)
        return false;
    for (size_t i = 0; i < hl->n_depths; i++) {
        if (strcmp(hl->depths[i].type, type) != 0)
            continue;
        *queued += hl->depths[i].queued;
        *running += hl->depths[i].running;
    }
    anvil_health_free(hl);
    return true;
}

struct depth_wait {
    struct harness *h;
    const char     *type;
    uint64_t        running; // wait until running is at least this
};

static bool
running_reached(void *arg)
{
    struct depth_wait *d = arg;
    uint64_t           queued, running;
    depth(d->h, d->type, &queued, &running);
    return running >= d->running;
}

static bool
gates_running(void *arg)
{
    struct fixture *f = arg;
    pthread_mutex_lock(&f->p.mu);
    bool two = f->p.running == 2;
    pthread_mutex_unlock(&f->p.mu);
    return two;
}

static void
open_gates(struct probe *p)
{
    pthread_mutex_lock(&p->mu);
    p->open = true;
    pthread_mutex_unlock(&p->mu);
}

// ---- tests ----

static void
test_a_four_slot_worker_ends_every_job_succeeded_with_its_result(void **state)
{
    struct fixture *f = *state;
    enum { N = 300 };
    char *ids[N];
    char  payload[N][24];
    for (int i = 0; i < N; i++) {
        snprintf(payload[i], sizeof(payload[i]), "{\"n\":%d}", i);
        ids[i] = submit(&f->h, "echo", payload[i], NULL);
    }
    anvil_worker *w = start(&f->h, 4, 0, "echo", handler_echo, NULL, NULL);
    struct succeeded_wait sw = { w, N };
    assert_true(harness_wait_for(succeeded_reached, &sw, WAIT_MS));

    for (int i = 0; i < N; i++) {
        struct anvil_job *job = get(&f->h, ids[i]);
        assert_int_equal(job->state, ANVIL_JOB_SUCCEEDED);
        assert_int_equal(job->attempt, 1);
        assert_int_equal(job->result_len, strlen(payload[i]));
        assert_memory_equal(job->result, payload[i], job->result_len);
        anvil_job_free(job);
        anvil_free(ids[i]);
    }
    struct anvil_worker_stats st;
    anvil_worker_get_stats(w, &st);
    assert_int_equal(st.succeeded, N);
    assert_int_equal(st.failed, 0);
    pthread_mutex_lock(&log_mu);
    assert_false(fell_back); // anvild knows Report: outcomes went batched
    pthread_mutex_unlock(&log_mu);
}

static void
test_worker_new_refuses_a_prefetch_below_minus_one_or_too_large(void **state)
{
    struct fixture          *f   = *state;
    struct anvil_error       err = { 0 };
    anvil_worker            *w   = NULL;
    struct anvil_worker_opts o   = { .url = f->h.url, .prefetch = -2 };
    assert_int_equal(anvil_worker_new(&w, &o, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "prefetch"));
    assert_null(w);
    o.prefetch = 1 << 20;
    assert_int_equal(anvil_worker_new(&w, &o, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "prefetch"));
    assert_null(w);
}

static void
test_failed_attempts_still_retry_and_final_failures_still_fail(void **state)
{
    struct fixture       *f    = *state;
    struct anvil_job_opts opts = {
        .retry.max_attempts       = 2,
        .retry.initial_backoff_ms = 10,
    };
    char *a = submit(&f->h, "flaky", "", &opts);
    char *b = submit(&f->h, "doomed", "", &opts);
    char *c = submit(&f->h, "final", "", &opts);
    start(&f->h, 4, 0, "flaky", flaky, NULL, "doomed", doomed, NULL, "final",
        final, NULL, NULL);
    struct anvil_job *ja = wait_final(&f->h, a);
    struct anvil_job *jb = wait_final(&f->h, b);
    struct anvil_job *jc = wait_final(&f->h, c);

    assert_int_equal(ja->state, ANVIL_JOB_SUCCEEDED);
    assert_int_equal(ja->attempt, 2);
    assert_memory_equal(ja->result, "ok@2", 4);
    assert_int_equal(jb->state, ANVIL_JOB_FAILED);
    assert_int_equal(jb->attempt, 2);
    assert_string_equal(jb->error, "doomed at 2");
    assert_int_equal(jc->state, ANVIL_JOB_FAILED);
    assert_int_equal(jc->attempt, 1);
    assert_string_equal(jc->error, "no way");
    anvil_job_free(ja);
    anvil_job_free(jb);
    anvil_job_free(jc);
    anvil_free(a);
    anvil_free(b);
    anvil_free(c);
}

// Runs 10 gate jobs on a 2-slot worker with the given prefetch and checks
// that the server leased exactly `leased` of them while the handlers block.
static void
check_leases_while_blocked(struct fixture *f, int prefetch, uint64_t leased)
{
    char *ids[10];
    for (int i = 0; i < 10; i++)
        ids[i] = submit(&f->h, "gate", "", NULL);
    start(&f->h, 2, prefetch, "gate", gate, &f->p, NULL);
    assert_true(harness_wait_for(gates_running, f, WAIT_MS));
    struct depth_wait dw = { &f->h, "gate", leased };
    assert_true(harness_wait_for(running_reached, &dw, WAIT_MS));
    // Give the poll thread time to ask for more than it may.
    dw.running    = leased + 1;
    bool     over = harness_wait_for(running_reached, &dw, 500);
    uint64_t queued, running;
    depth(&f->h, "gate", &queued, &running);
    open_gates(&f->p);
    for (int i = 0; i < 10; i++) {
        struct anvil_job *job = wait_final(&f->h, ids[i]);
        assert_int_equal(job->state, ANVIL_JOB_SUCCEEDED);
        anvil_job_free(job);
        anvil_free(ids[i]);
    }

    assert_false(over);
    assert_int_equal(running, leased);
    assert_int_equal(queued, 10 - leased);
}

static void
test_a_worker_leases_at_most_slots_plus_prefetch_jobs(void **state)
{
    check_leases_while_blocked(*state, 3, 5);
}

static void
test_a_worker_without_prefetch_leases_only_as_many_jobs_as_slots(void **state)
{
    check_leases_while_blocked(*state, -1, 2);
}

static bool
some_recorded(void *arg)
{
    struct probe *p = arg;
    pthread_mutex_lock(&p->mu);
    bool some = p->n_ids >= 50;
    pthread_mutex_unlock(&p->mu);
    return some;
}

static void
test_stop_leaves_every_job_whose_handler_returned_final_on_the_server(
    void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 400; i++)
        anvil_free(submit(&f->h, "record", "r", NULL));
    anvil_worker *w = start(&f->h, 4, 0, "record", record, &f->p, NULL);
    assert_true(harness_wait_for(some_recorded, &f->p, WAIT_MS));
    anvil_worker_stop(w, 2000);
    struct anvil_worker_stats st;
    anvil_worker_get_stats(w, &st);

    pthread_mutex_lock(&f->p.mu);
    size_t n = f->p.n_ids;
    pthread_mutex_unlock(&f->p.mu);
    assert_int_equal(st.succeeded, n);
    for (size_t i = 0; i < n; i++) {
        struct anvil_job *job = get(&f->h, f->p.ids[i]);
        assert_int_equal(job->state, ANVIL_JOB_SUCCEEDED);
        assert_memory_equal(job->result, "r", 1);
        anvil_job_free(job);
    }
}

static void
test_a_job_canceled_while_it_runs_ends_canceled_and_the_worker_goes_on(
    void **state)
{
    struct fixture    *f   = *state;
    struct anvil_error err = { 0 };
    char              *a   = submit(&f->h, "gate", "", NULL);
    start(&f->h, 2, 0, "gate", gate, &f->p, "echo", handler_echo, NULL, NULL);
    struct depth_wait dw = { &f->h, "gate", 1 };
    assert_true(harness_wait_for(running_reached, &dw, WAIT_MS));
    assert_int_equal(anvil_job_cancel(f->h.client, a, NULL, &err), ANVIL_OK);
    struct anvil_job *ja = wait_final(&f->h, a);
    char             *b  = submit(&f->h, "echo", "after", NULL);
    struct anvil_job *jb = wait_final(&f->h, b);

    assert_int_equal(ja->state, ANVIL_JOB_CANCELED);
    assert_int_equal(jb->state, ANVIL_JOB_SUCCEEDED);
    assert_memory_equal(jb->result, "after", 5);
    anvil_job_free(ja);
    anvil_job_free(jb);
    anvil_free(a);
    anvil_free(b);
}

// ---- adaptive prefetch ----

// Submits n jobs of type with empty payloads, ANVIL_SUBMIT_MANY_MAX a call.
static void
submit_many(struct harness *h, const char *type, size_t n)
{
    struct anvil_error     err = { 0 };
    struct anvil_job_spec *specs
        = calloc(ANVIL_SUBMIT_MANY_MAX, sizeof(*specs));
    struct anvil_submit_result *res
        = calloc(ANVIL_SUBMIT_MANY_MAX, sizeof(*res));
    assert_non_null(specs);
    assert_non_null(res);
    for (size_t i = 0; i < ANVIL_SUBMIT_MANY_MAX; i++)
        specs[i].type = type;
    for (size_t done = 0; done < n;) {
        size_t k = n - done;
        if (k > ANVIL_SUBMIT_MANY_MAX)
            k = ANVIL_SUBMIT_MANY_MAX;
        size_t failed = 0;
        assert_int_equal(
            anvil_job_submit_many(h->client, specs, k, res, &failed, &err),
            ANVIL_OK);
        assert_int_equal(failed, 0);
        done += k;
    }
    free(specs);
    free(res);
}

// How many jobs of type the server lists in state.
static size_t
count_jobs(struct harness *h, const char *type, enum anvil_job_state state)
{
    struct anvil_error      err    = { 0 };
    struct anvil_job_filter filter = {
        .state = state,
        .type  = type,
        .limit = 1000,
    };
    char  *cursor = NULL;
    size_t n      = 0;
    for (;;) {
        struct anvil_job_list *list = NULL;
        assert_int_equal(
            anvil_job_list(h->client, &filter, &list, &err), ANVIL_OK);
        n += list->n;
        free(cursor);
        cursor = NULL;
        if (list->next_cursor != NULL && list->next_cursor[0] != '\0')
            cursor = strdup(list->next_cursor);
        anvil_job_list_free(list);
        if (cursor == NULL)
            break;
        filter.cursor = cursor;
    }
    return n;
}

// What a worker holds now, read from its private state (worker_peek.h).
struct held {
    bool   quiet;    // no Poll in flight or due; every outcome acknowledged
    size_t n;        // leases held
    int    prefetch; // its prefetch now
};

static struct held
held(anvil_worker *w)
{
    struct worker_peek pk;
    worker_peek(w, &pk);
    return (struct held) { pk.quiet, pk.n_held, pk.prefetch };
}

// A worker's leases of one type, watched while its handlers run.
//
// The server counts a job RUNNING from its lease until its outcome is
// committed, so a job the test let through stays RUNNING until its Report
// lands, which may be after the Poll that leased its successor. While
// handlers only return when let through (and succeed), `left - queued` is
// what the worker took and has not been let finish: its slots and its
// prefetch queue (and a Poll reply on its way), free of that race.
struct lease_watch {
    struct fixture *f;
    anvil_worker   *w;
    const char     *type;
    int             slots;
    uint64_t        left;         // jobs of type not let through yet
    uint64_t        leased;       // RUNNING in the last sample
    uint64_t        max_leased;   // the most RUNNING in any sample
    uint64_t        max_taken;    // the most `left - queued` in any sample
    int             max_prefetch; // the worker's largest prefetch seen
    bool            exact; // last sample: the worker was quiet throughout
                           // and RUNNING is the leases it holds
};

// One sample: the server's queued and RUNNING jobs of the type, and what
// the worker holds just before and after. False if Health did not answer.
static bool
sample(struct lease_watch *lw, uint64_t *queued)
{
    struct held before = held(lw->w);
    bool        ok     = depth(&lw->f->h, lw->type, queued, &lw->leased);
    struct held after  = held(lw->w);
    lw->exact = ok && before.quiet && after.quiet && before.n == after.n
        && lw->leased == after.n;
    if (!ok)
        return false;
    if (lw->leased > lw->max_leased)
        lw->max_leased = lw->leased;
    if (lw->left >= *queued && lw->left - *queued > lw->max_taken)
        lw->max_taken = lw->left - *queued;
    if (after.prefetch > lw->max_prefetch)
        lw->max_prefetch = after.prefetch;
    return true;
}

// True once the worker has done all it will until a handler returns: the
// released handler's outcome is on the server, every slot runs a handler,
// the worker has no Poll in flight and none due, and the server's RUNNING
// count is the leases the worker holds. Only the worker's private state
// can tell that no Poll is about to lease more (a fixed sleep could only
// guess), so this reads it; what the tests check is the server's count.
static bool
leases_settled(void *arg)
{
    struct lease_watch *lw = arg;
    uint64_t            queued;
    bool                ok = sample(lw, &queued);
    pthread_mutex_lock(&lw->f->p.mu);
    bool busy = lw->f->p.permits == 0 && lw->f->p.running == lw->slots;
    pthread_mutex_unlock(&lw->f->p.mu);
    return ok && lw->exact && busy && queued + lw->leased == lw->left;
}

// True once no job of the type is queued or running and the worker
// counted at least `left` successes.
static bool
all_final(void *arg)
{
    struct lease_watch       *lw = arg;
    struct anvil_worker_stats st;
    uint64_t                  queued;
    bool                      ok = sample(lw, &queued);
    anvil_worker_get_stats(lw->w, &st);
    return ok && st.succeeded >= lw->left && queued + lw->leased == 0;
}

// Queues 30 turnstile jobs, starts a 2-slot worker with prefetch and lets
// its handlers return one at a time, waiting each time until the worker
// settled. leased[k] gets the server's RUNNING count once settled after k
// returned (k = 0 to releases). Returns the most jobs taken and not let
// through in any sample until then (see struct lease_watch); then opens
// the gate and checks that every job succeeded.
static uint64_t
release_one_by_one(
    struct fixture *f, int prefetch, uint64_t *leased, int releases)
{
    enum { SLOTS = 2, JOBS = 30 };
    submit_many(&f->h, "turnstile", JOBS);
    anvil_worker *w
        = start(&f->h, SLOTS, prefetch, "turnstile", turnstile, &f->p, NULL);
    struct lease_watch lw
        = { .f = f, .w = w, .type = "turnstile", .slots = SLOTS, .left = JOBS };
    for (int k = 0; k <= releases; k++) {
        if (k > 0) {
            pthread_mutex_lock(&f->p.mu);
            f->p.permits++;
            pthread_mutex_unlock(&f->p.mu);
            lw.left--;
        }
        assert_true(harness_wait_for(leases_settled, &lw, WAIT_MS));
        leased[k] = lw.leased;
    }
    // Once the gate opens the handlers are fast: the queue may grow again.
    uint64_t max = lw.max_taken;
    open_gates(&f->p);
    lw.left = JOBS;
    assert_true(harness_wait_for(all_final, &lw, WAIT_MS));
    assert_int_equal(count_jobs(&f->h, "turnstile", ANVIL_JOB_SUCCEEDED), JOBS);
    return max;
}

static void
test_adaptive_prefetch_does_not_hoard_jobs_whose_handlers_are_slow(void **state)
{
    uint64_t leased[11];
    uint64_t max = release_one_by_one(*state, 0, leased, 10);
    // It starts at the slots (2 running, 2 queued), and a Poll at start,
    // when no handler could have returned yet, is no sign of a queue too
    // short: it must not grow then ...
    assert_in_range(leased[0], 2, 4);
    assert_in_range(max, 2, 4);
    // ... and it shrinks while jobs wait: one queued job at most.
    assert_in_range(leased[10], 2, 3);
}

static void
test_a_fixed_prefetch_keeps_its_queue_while_handlers_are_slow(void **state)
{
    uint64_t leased[11];
    uint64_t max = release_one_by_one(*state, 3, leased, 10);
    // Slots + prefetch from the start, and no less while jobs wait
    // (adaptive prefetch shrinks to 3 there).
    for (int k = 0; k <= 10; k++)
        assert_int_equal(leased[k], 2 + 3);
    assert_int_equal(max, 2 + 3);
}

// Drains n no-op jobs with a fresh 1-slot worker with adaptive prefetch,
// watched into *lw; lw->w is that worker, left running (a stop would wait
// for its parked Poll).
static void
drain_noops(struct fixture *f, size_t n, struct lease_watch *lw)
{
    submit_many(&f->h, "noop", n);
    anvil_worker      *w = start(&f->h, 1, 0, "noop", noop, NULL, NULL);
    struct lease_watch watch
        = { .f = f, .w = w, .type = "noop", .slots = 1, .left = n };
    assert_true(harness_wait_for(all_final, &watch, WAIT_MS));
    *lw = watch;
    if (getenv("ANVIL_TEST_LOG") != NULL)
        fprintf(stderr, "noop max_leased=%llu max_prefetch=%d\n",
            (unsigned long long) lw->max_leased, lw->max_prefetch);
}

static void
test_adaptive_prefetch_deepens_the_queue_of_fast_handlers(void **state)
{
    struct fixture *f = *state;
    enum { JOBS = 2000, ATTEMPTS = 3 };
    struct lease_watch lw;
    int                attempts = 0;
    // Prefetch starts at the slots (1) and must grow, up to 16 per slot.
    // The server's RUNNING count alone cannot show it: it also counts the
    // jobs whose outcome waits for the Report in flight, so with a fixed
    // prefetch of 1 the most RUNNING seen was 4 on an idle box (up to 6
    // under load; 2 with -1), against 17 to 51 with the adaptive queue.
    // Hence the exact check on the worker's own prefetch, next to a
    // server-side one that a prefetch stuck at 1 fails on an idle box.
    // Under load a drain may end before the queue grew (the poll thread
    // may wake only after the slot ran all it held, which does not count
    // as starving when judged by the handlers that returned during the
    // round trip; seen in 4 of 30 loaded runs): hence up to 3 drains by
    // fresh workers. A prefetch that never grows fails all 3.
    do {
        if (attempts > 0)
            harness_stop_worker(&f->h, lw.w); // its queue may not grow
        drain_noops(f, JOBS, &lw);
        attempts++;
    } while (attempts < ATTEMPTS
        && (lw.max_prefetch < 2 || lw.max_leased <= 2 * (1 + 1)));
    assert_int_equal(count_jobs(&f->h, "noop", ANVIL_JOB_SUCCEEDED),
        (size_t) JOBS * (size_t) attempts);
    assert_in_range(lw.max_prefetch, 2, 16);
    assert_in_range(lw.max_leased, 2 * (1 + 1) + 1, JOBS);
}

int
main(void)
{
    anvil_logger_set(test_logger, NULL);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_a_four_slot_worker_ends_every_job_succeeded_with_its_result),
        T(test_worker_new_refuses_a_prefetch_below_minus_one_or_too_large),
        T(test_failed_attempts_still_retry_and_final_failures_still_fail),
        T(test_a_worker_leases_at_most_slots_plus_prefetch_jobs),
        T(test_a_worker_without_prefetch_leases_only_as_many_jobs_as_slots),
        T(test_stop_leaves_every_job_whose_handler_returned_final_on_the_server),
        T(test_a_job_canceled_while_it_runs_ends_canceled_and_the_worker_goes_on),
        T(test_adaptive_prefetch_does_not_hoard_jobs_whose_handlers_are_slow),
        T(test_a_fixed_prefetch_keeps_its_queue_while_handlers_are_slow),
        T(test_adaptive_prefetch_deepens_the_queue_of_fast_handlers),
    };
#undef T
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nng_fini();
    return rc;
}
