// test_engine_tx.c - the engine at its transaction boundary: what it does
// when a savepoint cannot be undone, a commit fails, the rebuild after it
// fails, or a sync fails. Failures are injected through the store's seams
// (store_hook_step, store_hook_fdatasync); statements are found by their
// SQL (store_stmt_sql). done() runs on the engine (or sync) thread and only
// records; every assert runs on the test thread.
#include "../../server/auth.h"
#include "../../server/engine.h"

#include "../harness.h"
#include "util/clock.h"

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

#include <cmocka.h>

#define REPLY_TIMEOUT_MS 5000

// ---- the failure seam: up to two armed statements, by SQL prefix ----

struct rule {
    const char *sql;  // prefix of the statement's SQL
    atomic_int  left; // failures still to inject
    int         code; // what the hook returns
};

static struct rule rules[2];

static int
hook(int stmt)
{
    const char *sql = store_stmt_sql(stmt);
    for (size_t i = 0; sql != NULL && i < 2; i++) {
        struct rule *r = &rules[i];
        if (r->sql == NULL || strncmp(sql, r->sql, strlen(r->sql)) != 0)
            continue;
        if (atomic_fetch_sub(&r->left, 1) > 0)
            return r->code;
    }
    return 0;
}

// Fails the next `times` steps of the statement whose SQL starts with sql.
static void
arm(size_t i, const char *sql, int times, int code)
{
    atomic_store(&rules[i].left, 0);
    rules[i].sql  = sql;
    rules[i].code = code;
    atomic_store(&rules[i].left, times);
}

static atomic_int sync_fail; // fdatasync calls still to fail

static int
fdatasync_hook(int fd)
{
    (void) fd;
    return atomic_fetch_sub(&sync_fail, 1) > 0 ? -1 : 0;
}

// ---- fixture ----

struct fx {
    char                 dir[64];
    char                 path[128];
    struct store        *st;
    struct engine       *e;
    struct auth         *auth;
    struct engine_config cfg;
    atomic_int           fatal_calls;
    atomic_int           fatal_code;
};

static void
on_fatal(void *arg, const struct anvil_error *err)
{
    struct fx *f = arg;
    atomic_store(&f->fatal_code, err->code);
    atomic_fetch_add(&f->fatal_calls, 1);
}

static int
start(struct fx *f, bool deferred)
{
    struct anvil_error err = { 0 };
    int                rc  = store_open(f->path, 2, &f->st, &err);
    if (rc == ANVIL_OK && deferred)
        rc = store_set_deferred_sync(f->st, true, &err);
    if (rc == ANVIL_OK)
        rc = engine_start(f->st, &f->cfg, &f->e, &err);
    if (rc != ANVIL_OK)
        fprintf(stderr, "start: %s\n", err.msg);
    return rc;
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/anvil-enginetx-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/anvil.db", f->dir);
    f->auth = auth_new(true);
    f->cfg  = (struct engine_config) {
         .auth         = f->auth,
         .lease_ms     = 30000,
         .max_attempts = 3,
         .on_fatal     = on_fatal,
         .fatal_arg    = f,
    };
    arm(0, NULL, 0, 0);
    arm(1, NULL, 0, 0);
    atomic_store(&sync_fail, 0);
    store_hook_step      = hook;
    store_hook_fdatasync = fdatasync_hook;
    *state               = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    engine_stop(f->e);
    store_close(f->st);
    store_hook_step      = NULL;
    store_hook_fdatasync = NULL;
    auth_free(f->auth);
    harness_remove_tree(f->dir);
    free(f);
    return 0;
}

// ---- posting commands ----

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

// Posts r, waits for its answer and returns its code.
static int
call(struct fx *f, struct req *r)
{
    engine_submit(f->e, &r->c);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += REPLY_TIMEOUT_MS / 1000;
    pthread_mutex_lock(&done_mu);
    while (!r->done) {
        if (pthread_cond_timedwait(&done_cv, &done_mu, &ts) != 0)
            break;
    }
    bool done = r->done;
    pthread_mutex_unlock(&done_mu);
    assert_true(done);
    return r->c.err.code;
}

static struct cmd_submit
job_spec(const char *type)
{
    return (struct cmd_submit) {
        .type    = type,
        .queue   = "default",
        .payload = (const uint8_t *) "{}",
        .len     = 2,
    };
}

static int
submit(struct fx *f, const char *type)
{
    struct req r;
    req_init(&r, CMD_SUBMIT);
    r.c.u.submit = job_spec(type);
    return call(f, &r);
}

// Jobs of this type a Poll with request id rid gets now (they stay
// leased); *code gets its code.
static size_t
poll_rid(struct fx *f, const char *type, uint64_t rid, int *code)
{
    static const char *const queues[] = { "default" };
    const char              *types[]  = { type };
    struct req               r;
    req_init(&r, CMD_POLL);
    r.c.request_id = rid;
    r.c.u.poll     = (struct cmd_poll) { .worker = "w",
            .queues                              = queues,
            .nq                                  = 1,
            .types                               = types,
            .nt                                  = 1,
            .max                                 = 100 };
    *code          = call(f, &r);
    size_t n       = r.c.u.poll.n;
    engine_cmd_fini(&r.c);
    return n;
}

static size_t
poll_count(struct fx *f, const char *type)
{
    int    code;
    size_t n = poll_rid(f, type, 0, &code);
    assert_int_equal(code, ANVIL_OK);
    return n;
}

// ---- tests ----

static void
test_engine_failed_savepoint_rollback_refuses_the_whole_batch(void **state)
{
    struct fx *f = *state;
    assert_int_equal(start(f, false), ANVIL_OK);
    // Item 0 stores a job; item 1 is refused (no such lease), and undoing
    // its savepoint fails: item 0's write must not be committed either.
    struct cmd items[2] = { 0 };
    items[0].kind       = CMD_SUBMIT;
    items[0].u.submit   = job_spec("a");
    items[1].kind       = CMD_COMPLETE;
    items[1].u.complete = (struct cmd_complete) { .id = 999, .token = 1 };
    struct req r;
    req_init(&r, CMD_REPORT);
    r.c.u.batch = (struct cmd_batch) { .items = items, .n = 2 };
    arm(0, "ROLLBACK TO", 1, 1);
    call(f, &r);
    assert_int_equal(atomic_load(&rules[0].left), 0); // it was injected
    assert_int_not_equal(items[0].err.code, ANVIL_OK);
    assert_int_not_equal(items[1].err.code, ANVIL_OK);
    engine_cmd_fini(&r.c);

    assert_int_equal(poll_count(f, "a"), 0); // nothing committed
    assert_int_equal(atomic_load(&f->fatal_calls), 0);
    assert_int_equal(submit(f, "a"), ANVIL_OK); // and the engine goes on
    assert_int_equal(poll_count(f, "a"), 1);
}

static void
test_engine_resent_poll_after_a_failed_commit_gets_a_fresh_lease(void **state)
{
    struct fx *f = *state;
    assert_int_equal(start(f, false), ANVIL_OK);
    assert_int_equal(submit(f, "t"), ANVIL_OK);
    // The Poll's lease is rolled back with its batch; the engine must not
    // remember it for a resend.
    arm(0, "COMMIT", 1, 1);
    int code;
    assert_int_equal(poll_rid(f, "t", 77, &code), 0);
    assert_int_not_equal(code, ANVIL_OK);
    // Injected (a timer batch after the rebuild may step COMMIT again).
    assert_true(atomic_load(&rules[0].left) <= 0);
    assert_int_equal(poll_rid(f, "t", 77, &code), 1);
    assert_int_equal(code, ANVIL_OK);
}

static int
token_create(struct fx *f, char *secret, size_t len, int64_t *id)
{
    struct req r;
    req_init(&r, CMD_TOKEN_CREATE);
    r.c.u.token.role = ANVIL_ROLE_CLIENT;
    r.c.u.token.name = "t";
    int rc           = call(f, &r);
    if (rc == ANVIL_OK) {
        snprintf(secret, len, "%s", r.c.u.token.secret);
        *id = r.c.u.token.tokens[0].id;
    }
    engine_cmd_fini(&r.c);
    return rc;
}

static int
token_revoke(struct fx *f, int64_t id)
{
    struct req r;
    req_init(&r, CMD_TOKEN_REVOKE);
    r.c.u.token.id = id;
    int rc         = call(f, &r);
    engine_cmd_fini(&r.c);
    return rc;
}

static int
check(struct fx *f, const char *secret)
{
    struct anvil_error err = { 0 };
    int64_t            id;
    int                role;
    return auth_check(
        f->auth, secret, "SubmitJob", av_now_ms(), &id, &role, &err);
}

static void
test_engine_token_table_changes_only_after_the_commit(void **state)
{
    struct fx *f = *state;
    assert_int_equal(start(f, false), ANVIL_OK);
    char    secret[128];
    int64_t id = 0;
    assert_int_equal(token_create(f, secret, sizeof(secret), &id), ANVIL_OK);
    assert_int_equal(check(f, secret), ANVIL_OK);

    // The revoke does not commit: the token still works.
    arm(0, "COMMIT", 1, 1);
    assert_int_not_equal(token_revoke(f, id), ANVIL_OK);
    // Injected (a timer batch after the rebuild may step COMMIT again).
    assert_true(atomic_load(&rules[0].left) <= 0);
    assert_int_equal(check(f, secret), ANVIL_OK);

    // A revoke that commits ends it.
    assert_int_equal(token_revoke(f, id), ANVIL_OK);
    assert_int_equal(check(f, secret), ANVIL_UNAUTHENTICATED);
}

static void
test_engine_failed_rebuild_after_a_failed_commit_stops_the_engine(void **state)
{
    struct fx *f = *state;
    assert_int_equal(start(f, false), ANVIL_OK);
    arm(0, "COMMIT", 1, 1);
    arm(1, "SELECT id, type, queue, priority, state", 1, 1); // the rebuild
    assert_int_not_equal(submit(f, "a"), ANVIL_OK);
    assert_int_equal(atomic_load(&rules[1].left), 0);
    assert_int_equal(atomic_load(&f->fatal_calls), 1);
    assert_int_not_equal(atomic_load(&f->fatal_code), ANVIL_OK);
    // From now on every command is refused, and the engine still stops.
    assert_int_equal(submit(f, "b"), ANVIL_UNAVAILABLE);
}

static void
test_engine_failed_sync_refuses_and_reports_instead_of_aborting(void **state)
{
    struct fx *f = *state;
    assert_int_equal(start(f, true), ANVIL_OK);
    if (!store_needs_sync(f->st))
        skip(); // this file system cannot defer the sync
    assert_int_equal(submit(f, "a"), ANVIL_OK);
    atomic_store(&sync_fail, 1);
    struct req r;
    req_init(&r, CMD_SUBMIT);
    r.c.u.submit = job_spec("b");
    // Its commit may or may not be on disk: not acknowledged.
    assert_int_equal(call(f, &r), ANVIL_UNAVAILABLE);
    assert_true(strlen(r.c.err.msg) > 0);
    assert_int_equal(atomic_load(&f->fatal_calls), 1);
    assert_int_not_equal(atomic_load(&f->fatal_code), ANVIL_OK);
    // Later commands are refused too, even once the disk works again.
    assert_int_equal(submit(f, "c"), ANVIL_UNAVAILABLE);
    assert_int_equal(atomic_load(&f->fatal_calls), 1);
}

static void
test_engine_disk_full_commit_answers_resource_exhausted(void **state)
{
    struct fx *f = *state;
    assert_int_equal(start(f, false), ANVIL_OK);
    // The store fails a step that returns ANVIL_RESOURCE_EXHAUSTED as
    // SQLITE_FULL, and reports it as RESOURCE_EXHAUSTED.
    arm(0, "COMMIT", 1, ANVIL_RESOURCE_EXHAUSTED);
    struct req r;
    req_init(&r, CMD_SUBMIT);
    r.c.u.submit = job_spec("a");
    assert_int_equal(call(f, &r), ANVIL_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(r.c.err.msg, "disk"));
    assert_int_equal(poll_count(f, "a"), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_engine_failed_savepoint_rollback_refuses_the_whole_batch),
        T(test_engine_resent_poll_after_a_failed_commit_gets_a_fresh_lease),
        T(test_engine_token_table_changes_only_after_the_commit),
        T(test_engine_failed_rebuild_after_a_failed_commit_stops_the_engine),
        T(test_engine_failed_sync_refuses_and_reports_instead_of_aborting),
        T(test_engine_disk_full_commit_answers_resource_exhausted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
