// test_metrics.c - the counters and histograms behind GET /metrics: what
// metrics_render() writes for them, label escaping, the cap on queue and
// type pairs, a NULL struct metrics, and the whole path through the engine
// (CMD_METRICS) and the nng endpoint. Every rendering is also checked by
// promtool (Debian package prometheus, installed by scripts/deps.sh).
#include "../../server/auth.h"
#include "../../server/engine.h"
#include "../../server/handlers.h"
#include "../../server/metrics.h"
#include "../../server/rpc.h"

#include "../harness.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define REPLY_TIMEOUT_MS 5000

// ---- helpers ----

static char *
render(struct metrics *m, const struct metrics_state *s)
{
    struct metrics_state empty = { 0 };
    char                *text  = NULL;
    size_t               len   = 0;
    assert_int_equal(metrics_render(m, s ? s : &empty, &text, &len), ANVIL_OK);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

// Asserts text holds line (a whole line).
static void
has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return;
    }
    fail_msg("no line \"%s\" in:\n%s", line, text);
}

static void
lacks(const char *text, const char *s)
{
    if (strstr(text, s) != NULL)
        fail_msg("\"%s\" should not be in:\n%s", s, text);
}

// Pipes text to `promtool check metrics` and asserts it passes, lint
// included.
static void
promtool_ok(const char *text)
{
    char out[] = "/tmp/anvil-promtool-XXXXXX";
    int  fd    = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "promtool check metrics >%s 2>&1", out);
    FILE *p = popen(cmd, "w");
    assert_non_null(p);
    fputs(text, p);
    int   st  = pclose(p);
    char *msg = harness_read_file(out, NULL);
    remove(out);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("promtool check metrics failed (exit %d; promtool comes "
                 "with Debian's prometheus package, see scripts/deps.sh): "
                 "%s\n--- text:\n%s",
            WIFEXITED(st) ? WEXITSTATUS(st) : -1, msg ? msg : "", text);
    free(msg);
}

// ---- metrics alone ----

static void
test_metrics_null_metrics_are_a_no_op(void **state)
{
    (void) state;
    metrics_rpc(NULL, METRICS_NNG, 0, ANVIL_OK, 10);
    metrics_sync(NULL, 10);
    metrics_job_submitted(NULL, "q", "t");
    metrics_job_started(NULL, "q", "t", 5);
    metrics_job_finished(NULL, "q", "t", ANVIL_JOB_SUCCEEDED, 5);
    metrics_commit(NULL, 3, 10);
    metrics_free(NULL);
}

static void
test_metrics_fresh_metrics_render_every_family(void **state)
{
    (void) state;
    struct metrics *m = metrics_new();
    assert_non_null(m);
    char *t = render(m, NULL);
    has_line(t, "# TYPE anvil_jobs_submitted_total counter");
    has_line(t, "# TYPE anvil_job_wait_seconds histogram");
    has_line(t, "anvil_job_wait_seconds_bucket{le=\"+Inf\"} 0");
    has_line(t, "anvil_job_wait_seconds_count 0");
    has_line(t, "anvil_workers{state=\"live\"} 0");
    has_line(t, "anvil_long_polls_parked{kind=\"poll\"} 0");
    has_line(t, "anvil_concurrency_keys 0");
    has_line(t, "anvil_concurrency_key_jobs{state=\"waiting\"} 0");
    has_line(t, "anvil_build_info{version=\"" ANVIL_VERSION "\"} 1");
    assert_non_null(strstr(t, "\nprocess_resident_memory_bytes "));
    assert_non_null(strstr(t, "\nprocess_open_fds "));
    assert_non_null(strstr(t, "\nprocess_start_time_seconds "));
    lacks(t, "anvil_rpc_requests_total{");
    promtool_ok(t);
    free(t);
    metrics_free(m);
}

static void
test_metrics_jobs_are_counted_by_queue_and_type(void **state)
{
    (void) state;
    struct metrics *m = metrics_new();
    assert_non_null(m);
    metrics_job_submitted(m, "default", "A");
    metrics_job_submitted(m, "default", "A");
    metrics_job_submitted(m, "bulk", "B");
    metrics_job_finished(m, "default", "A", ANVIL_JOB_SUCCEEDED, 20);
    metrics_job_finished(m, "default", "A", ANVIL_JOB_FAILED, 3000);
    metrics_job_finished(m, "bulk", "B", ANVIL_JOB_CANCELED, -1);
    metrics_job_started(m, "default", "A", 2);
    char *t = render(m, NULL);
    has_line(t, "anvil_jobs_submitted_total{queue=\"default\",type=\"A\"} 2");
    has_line(t, "anvil_jobs_submitted_total{queue=\"bulk\",type=\"B\"} 1");
    has_line(t,
        "anvil_jobs_finished_total{queue=\"default\",type=\"A\","
        "state=\"succeeded\"} 1");
    has_line(t,
        "anvil_jobs_finished_total{queue=\"default\",type=\"A\","
        "state=\"failed\"} 1");
    has_line(t,
        "anvil_jobs_finished_total{queue=\"bulk\",type=\"B\","
        "state=\"canceled\"} 1");
    has_line(t,
        "anvil_jobs_finished_total{queue=\"bulk\",type=\"B\","
        "state=\"succeeded\"} 0");
    // Run time of the two that ran (20 ms, 3 s); the cancelled one never
    // ran. Wait: 2 ms.
    has_line(t, "anvil_job_run_seconds_bucket{le=\"0.01\"} 0");
    has_line(t, "anvil_job_run_seconds_bucket{le=\"0.05\"} 1");
    has_line(t, "anvil_job_run_seconds_bucket{le=\"5\"} 2");
    has_line(t, "anvil_job_run_seconds_sum 3.020000");
    has_line(t, "anvil_job_run_seconds_count 2");
    has_line(t, "anvil_job_wait_seconds_bucket{le=\"0.001\"} 0");
    has_line(t, "anvil_job_wait_seconds_bucket{le=\"0.005\"} 1");
    has_line(t, "anvil_job_wait_seconds_count 1");
    // Pairs the table knows and the store has no row for read 0.
    has_line(t,
        "anvil_queue_depth{queue=\"bulk\",type=\"B\","
        "state=\"queued\"} 0");
    promtool_ok(t);
    free(t);
    metrics_free(m);
}

static void
test_metrics_histograms_are_cumulative_with_sum_and_count(void **state)
{
    (void) state;
    struct metrics *m = metrics_new();
    assert_non_null(m);
    metrics_commit(m, 3, 700);     // 3 commands, 0.7 ms
    metrics_commit(m, 5000, 2000); // past the last bound: +Inf only
    metrics_sync(m, 30);
    metrics_sync(m, -5); // a clock step back counts as 0
    char *t = render(m, NULL);
    has_line(t, "anvil_commit_batch_size_bucket{le=\"2\"} 0");
    has_line(t, "anvil_commit_batch_size_bucket{le=\"4\"} 1");
    has_line(t, "anvil_commit_batch_size_bucket{le=\"4096\"} 1");
    has_line(t, "anvil_commit_batch_size_bucket{le=\"+Inf\"} 2");
    has_line(t, "anvil_commit_batch_size_sum 5003");
    has_line(t, "anvil_commit_batch_size_count 2");
    has_line(t, "anvil_commit_seconds_bucket{le=\"0.0005\"} 0");
    has_line(t, "anvil_commit_seconds_bucket{le=\"0.001\"} 1");
    has_line(t, "anvil_commit_seconds_bucket{le=\"0.0025\"} 2");
    has_line(t, "anvil_commit_seconds_sum 0.002700");
    has_line(t, "anvil_sync_seconds_bucket{le=\"0.00005\"} 2");
    has_line(t, "anvil_sync_seconds_sum 0.000030");
    has_line(t, "anvil_sync_seconds_count 2");
    promtool_ok(t);
    free(t);
    metrics_free(m);
}

static void
test_metrics_rpcs_are_counted_by_transport_method_and_code(void **state)
{
    (void) state;
    struct metrics *m = metrics_new();
    assert_non_null(m);
    int health = handlers_method_index("Health");
    int submit = handlers_method_index("SubmitJob");
    assert_true(health >= 0);
    assert_true(submit >= 0);
    assert_string_equal(handlers_method_name(health), "Health");
    assert_int_equal(handlers_method_index("NoSuchRpc"), -1);
    assert_null(handlers_method_name(-1));
    assert_null(handlers_method_name((int) handlers_method_count()));
    metrics_rpc(m, METRICS_NNG, health, ANVIL_OK, 150);
    metrics_rpc(m, METRICS_NNG, health, ANVIL_OK, 20000000); // +Inf
    metrics_rpc(m, METRICS_HTTP, submit, ANVIL_INVALID_ARGUMENT, 90);
    metrics_rpc(m, METRICS_NNG, -1, ANVIL_UNIMPLEMENTED, 50);
    metrics_rpc(m, METRICS_NNG, 9999, 99, 50); // out of range: unknown
    char *t = render(m, NULL);
    has_line(t,
        "anvil_rpc_requests_total{transport=\"nng\",method=\"Health\","
        "code=\"OK\"} 2");
    has_line(t,
        "anvil_rpc_requests_total{transport=\"http\","
        "method=\"SubmitJob\",code=\"INVALID_ARGUMENT\"} 1");
    has_line(t,
        "anvil_rpc_requests_total{transport=\"nng\","
        "method=\"unknown\",code=\"UNIMPLEMENTED\"} 1");
    has_line(t,
        "anvil_rpc_requests_total{transport=\"nng\","
        "method=\"unknown\",code=\"UNKNOWN\"} 1");
    has_line(t,
        "anvil_rpc_duration_seconds_bucket{transport=\"nng\","
        "method=\"Health\",le=\"0.0001\"} 0");
    has_line(t,
        "anvil_rpc_duration_seconds_bucket{transport=\"nng\","
        "method=\"Health\",le=\"0.00025\"} 1");
    has_line(t,
        "anvil_rpc_duration_seconds_bucket{transport=\"nng\","
        "method=\"Health\",le=\"10\"} 1");
    has_line(t,
        "anvil_rpc_duration_seconds_bucket{transport=\"nng\","
        "method=\"Health\",le=\"+Inf\"} 2");
    has_line(t,
        "anvil_rpc_duration_seconds_sum{transport=\"nng\","
        "method=\"Health\"} 20.000150");
    has_line(t,
        "anvil_rpc_duration_seconds_count{transport=\"http\","
        "method=\"SubmitJob\"} 1");
    lacks(t, "method=\"Poll\"");
    promtool_ok(t);
    free(t);
    metrics_free(m);
}

static void
test_metrics_label_values_are_escaped(void **state)
{
    (void) state;
    struct metrics *m = metrics_new();
    assert_non_null(m);
    metrics_job_submitted(m, "q\"uote", "back\\slash\nnew");
    char *t = render(m, NULL);
    has_line(t,
        "anvil_jobs_submitted_total{queue=\"q\\\"uote\","
        "type=\"back\\\\slash\\nnew\"} 1");
    promtool_ok(t);
    free(t);
    metrics_free(m);
}

static void
test_metrics_pairs_past_the_cap_share_one_series(void **state)
{
    (void) state;
    struct metrics *m = metrics_new();
    assert_non_null(m);
    char type[32];
    for (int i = 0; i < METRICS_MAX_LABEL_SETS + 5; i++) {
        snprintf(type, sizeof(type), "t%d", i);
        metrics_job_submitted(m, "q", type);
    }
    metrics_job_submitted(m, "q", "t0"); // a known pair keeps its series
    char *t = render(m, NULL);
    has_line(t, "anvil_jobs_submitted_total{queue=\"q\",type=\"t0\"} 2");
    has_line(t, "anvil_jobs_submitted_total{queue=\"*\",type=\"*\"} 5");
    snprintf(type, sizeof(type), "type=\"t%d\"", METRICS_MAX_LABEL_SETS);
    lacks(t, type);
    free(t);
    metrics_free(m);
}

static void
test_metrics_depths_workers_and_parked_polls_come_from_the_state(void **state)
{
    (void) state;
    struct metrics *m = metrics_new();
    assert_non_null(m);
    struct store_depth d[]
        = { { .queue = "default", .type = "A", .queued = 7, .running = 2 } };
    struct metrics_state s = { .depths = d,
        .n_depths                      = 1,
        .workers_live                  = 3,
        .workers_lost                  = 1,
        .parked_polls                  = 4,
        .parked_waits                  = 5,
        .parked_flows                  = 6,
        .concurrency_keys              = 10000,
        .concurrency_running           = 20000,
        .concurrency_waiting           = 123456 };
    char                *t = render(m, &s);
    has_line(t,
        "anvil_queue_depth{queue=\"default\",type=\"A\","
        "state=\"queued\"} 7");
    has_line(t,
        "anvil_queue_depth{queue=\"default\",type=\"A\","
        "state=\"running\"} 2");
    has_line(t, "anvil_workers{state=\"live\"} 3");
    has_line(t, "anvil_workers{state=\"lost\"} 1");
    has_line(t, "anvil_long_polls_parked{kind=\"poll\"} 4");
    has_line(t, "anvil_long_polls_parked{kind=\"wait_job\"} 5");
    has_line(t, "anvil_long_polls_parked{kind=\"wait_workflow\"} 6");
    // Concurrency keys: totals, never a series per key.
    has_line(t, "# TYPE anvil_concurrency_keys gauge");
    has_line(t, "anvil_concurrency_keys 10000");
    has_line(t, "anvil_concurrency_key_jobs{state=\"running\"} 20000");
    has_line(t, "anvil_concurrency_key_jobs{state=\"waiting\"} 123456");
    lacks(t, "key=\"");
    promtool_ok(t);
    free(t);
    metrics_free(m);
}

// ---- through the engine (and the nng endpoint) ----

struct fx {
    struct harness_store *hs;
    struct metrics       *m;
    struct auth          *auth;
    struct engine        *e;
    struct rpc           *rpc;
    char                  url[128];
};

// A store at synchronous FULL with deferred sync (as anvild runs), and an
// engine counting into f->m (NULL: metrics off).
static int
start(void **state, bool metrics)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL || harness_store_setup((void **) &f->hs, 2) != 0) {
        free(f);
        return -1;
    }
    *state                   = f;
    struct anvil_error   err = { 0 };
    struct engine_config cfg = { .lease_ms = 30000, .max_attempts = 3 };
    f->m                     = metrics ? metrics_new() : NULL;
    cfg.metrics              = f->m;
    if ((metrics && f->m == NULL)
        || store_set_deferred_sync(f->hs->st, true, &err) != ANVIL_OK
        || engine_start(f->hs->st, &cfg, &f->e, &err) != ANVIL_OK) {
        fprintf(stderr, "start: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int
setup_on(void **state)
{
    return start(state, true);
}

static int
setup_off(void **state)
{
    return start(state, false);
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    if (f == NULL)
        return 0;
    rpc_quiesce(f->rpc);
    engine_stop(f->e);
    rpc_close(f->rpc);
    rpc_free(f->rpc);
    auth_free(f->auth);
    metrics_free(f->m);
    if (f->hs != NULL)
        harness_store_teardown((void **) &f->hs);
    free(f);
    return 0;
}

static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  done_cv = PTHREAD_COND_INITIALIZER;

struct req {
    struct cmd c;
    bool       done; // guarded by done_mu
};

static void
on_done(struct cmd *c, void *arg)
{
    (void) c;
    struct req *r = arg;
    pthread_mutex_lock(&done_mu);
    r->done = true;
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

// Waits for r's answer; asserts it came in time.
static void
wait_done(struct req *r)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += REPLY_TIMEOUT_MS / 1000;
    pthread_mutex_lock(&done_mu);
    while (!r->done && pthread_cond_timedwait(&done_cv, &done_mu, &ts) == 0)
        ;
    bool done = r->done;
    pthread_mutex_unlock(&done_mu);
    assert_true(done);
}

// Posts r, waits for its answer and returns its code.
static int
call(struct fx *f, struct req *r)
{
    engine_submit(f->e, &r->c);
    wait_done(r);
    return r->c.err.code;
}

static int64_t
submit(struct fx *f, const char *type)
{
    struct req r;
    req_init(&r, CMD_SUBMIT);
    r.c.u.submit = (struct cmd_submit) { .type = type,
        .queue                                 = "default",
        .payload                               = (const uint8_t *) "{}",
        .len                                   = 2 };
    assert_int_equal(call(f, &r), ANVIL_OK);
    return r.c.u.submit.id;
}

// The rendered text through CMD_METRICS (caller frees).
static char *
scrape(struct fx *f)
{
    struct req r;
    req_init(&r, CMD_METRICS);
    assert_int_equal(call(f, &r), ANVIL_OK);
    assert_non_null(r.c.u.metrics.text);
    assert_int_equal(strlen(r.c.u.metrics.text), r.c.u.metrics.len);
    char *t            = r.c.u.metrics.text;
    r.c.u.metrics.text = NULL; // taken: fini then frees nothing
    engine_cmd_fini(&r.c);
    return t;
}

static void
test_metrics_engine_counts_a_job_from_submit_to_complete(void **state)
{
    struct fx *f     = *state;
    int64_t    id    = submit(f, "A");
    int64_t    other = submit(f, "A");
    submit(f, "B");

    const char *queues[] = { "default" }, *types[] = { "A" };
    struct req  p;
    req_init(&p, CMD_POLL);
    p.c.u.poll = (struct cmd_poll) { .worker = "w1",
        .queues                              = queues,
        .nq                                  = 1,
        .types                               = types,
        .nt                                  = 1,
        .max                                 = 1 };
    assert_int_equal(call(f, &p), ANVIL_OK);
    assert_int_equal(p.c.u.poll.n, 1);
    assert_int_equal(p.c.u.poll.jobs[0].id, id);
    uint32_t token = p.c.u.poll.jobs[0].attempt;
    engine_cmd_fini(&p.c);

    struct req k;
    req_init(&k, CMD_COMPLETE);
    k.c.u.complete = (struct cmd_complete) { .id = id, .token = token };
    assert_int_equal(call(f, &k), ANVIL_OK);
    struct req c;
    req_init(&c, CMD_CANCEL);
    c.c.u.cancel.id = other;
    assert_int_equal(call(f, &c), ANVIL_OK);
    engine_cmd_fini(&c.c);

    char *t = scrape(f);
    has_line(t, "anvil_jobs_submitted_total{queue=\"default\",type=\"A\"} 2");
    has_line(t, "anvil_jobs_submitted_total{queue=\"default\",type=\"B\"} 1");
    has_line(t,
        "anvil_jobs_finished_total{queue=\"default\",type=\"A\","
        "state=\"succeeded\"} 1");
    has_line(t,
        "anvil_jobs_finished_total{queue=\"default\",type=\"A\","
        "state=\"canceled\"} 1");
    has_line(t,
        "anvil_jobs_finished_total{queue=\"default\",type=\"A\","
        "state=\"failed\"} 0");
    has_line(t, "anvil_job_wait_seconds_count 1");
    has_line(t, "anvil_job_run_seconds_count 1"); // the cancelled never ran
    has_line(t,
        "anvil_queue_depth{queue=\"default\",type=\"B\","
        "state=\"queued\"} 1");
    has_line(t,
        "anvil_queue_depth{queue=\"default\",type=\"A\","
        "state=\"queued\"} 0");
    has_line(t,
        "anvil_queue_depth{queue=\"default\",type=\"A\","
        "state=\"running\"} 0");
    has_line(t, "anvil_workers{state=\"live\"} 1");
    has_line(t, "anvil_long_polls_parked{kind=\"poll\"} 0");
    // Every command so far was committed and, at FULL, synced.
    lacks(t, "anvil_commit_seconds_count 0\n");
    lacks(t, "anvil_sync_seconds_count 0\n");
    promtool_ok(t);
    free(t);
}

static void
test_metrics_engine_counts_parked_long_polls(void **state)
{
    struct fx  *f        = *state;
    const char *queues[] = { "default" }, *types[] = { "A" };
    struct req  p;
    req_init(&p, CMD_POLL);
    p.c.u.poll = (struct cmd_poll) { .worker = "w1",
        .queues                              = queues,
        .nq                                  = 1,
        .types                               = types,
        .nt                                  = 1,
        .max                                 = 1,
        .wait_ms                             = 60000 };
    engine_submit(f->e, &p.c);
    char *t = scrape(f); // applied after the poll: it is parked by now
    has_line(t, "anvil_long_polls_parked{kind=\"poll\"} 1");
    free(t);
    submit(f, "A"); // answers the poll
    wait_done(&p);
    assert_int_equal(p.c.err.code, ANVIL_OK);
    assert_int_equal(p.c.u.poll.n, 1);
    engine_cmd_fini(&p.c);
    t = scrape(f);
    has_line(t, "anvil_long_polls_parked{kind=\"poll\"} 0");
    has_line(t, "anvil_job_wait_seconds_count 1");
    free(t);
}

static void
test_metrics_command_with_metrics_off_is_unavailable(void **state)
{
    struct fx *f = *state;
    struct req r;
    req_init(&r, CMD_METRICS);
    assert_int_equal(call(f, &r), ANVIL_UNAVAILABLE);
    assert_string_equal(r.c.err.msg, "metrics are off (anvild --no-metrics)");
    assert_null(r.c.u.metrics.text);
    engine_cmd_fini(&r.c);
    submit(f, "A"); // counting into NULL metrics is harmless
}

static void
test_metrics_nng_requests_are_counted_by_method_and_code(void **state)
{
    struct fx *f = *state;
    snprintf(f->url, sizeof(f->url), "ipc://%s/s", f->hs->dir);
    f->auth               = auth_new(false);
    struct rpc_config rcf = {
        .url                = f->url,
        .recv_max           = 1 << 20,
        .contexts           = 4,
        .limits             = { .max_payload = 1 << 16 },
        .engine             = f->e,
        .auth               = f->auth,
        .max_waits          = 100,
        .max_waits_per_conn = 100,
        .max_conns          = 100,
        .metrics            = f->m,
    };
    struct anvil_error err = { 0 };
    assert_non_null(f->auth);
    assert_int_equal(rpc_start(&rcf, &f->rpc, &err), ANVIL_OK);

    anvil_client *c;
    assert_int_equal(anvil_client_open(&c, f->url, &err), ANVIL_OK);
    struct anvil_health *h = NULL;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(anvil_health_get(c, &h, &err), ANVIL_OK);
        anvil_health_free(h);
    }
    struct anvil_job *j = NULL;
    assert_int_equal(anvil_job_get(c, "j999", &j, &err), ANVIL_NOT_FOUND);
    anvil_client_close(c);

    char *t = scrape(f);
    has_line(t,
        "anvil_rpc_requests_total{transport=\"nng\",method=\"Health\","
        "code=\"OK\"} 2");
    has_line(t,
        "anvil_rpc_requests_total{transport=\"nng\",method=\"GetJob\","
        "code=\"NOT_FOUND\"} 1");
    has_line(t,
        "anvil_rpc_duration_seconds_count{transport=\"nng\","
        "method=\"Health\"} 2");
    promtool_ok(t);
    free(t);
}

#define T(fn) cmocka_unit_test(fn)
#define ON(fn) cmocka_unit_test_setup_teardown(fn, setup_on, teardown)
#define OFF(fn) cmocka_unit_test_setup_teardown(fn, setup_off, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_metrics_null_metrics_are_a_no_op),
        T(test_metrics_fresh_metrics_render_every_family),
        T(test_metrics_jobs_are_counted_by_queue_and_type),
        T(test_metrics_histograms_are_cumulative_with_sum_and_count),
        T(test_metrics_rpcs_are_counted_by_transport_method_and_code),
        T(test_metrics_label_values_are_escaped),
        T(test_metrics_pairs_past_the_cap_share_one_series),
        T(test_metrics_depths_workers_and_parked_polls_come_from_the_state),
        ON(test_metrics_engine_counts_a_job_from_submit_to_complete),
        ON(test_metrics_engine_counts_parked_long_polls),
        OFF(test_metrics_command_with_metrics_off_is_unavailable),
        ON(test_metrics_nng_requests_are_counted_by_method_and_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
