// test_store_pg.c - what only the PostgreSQL backend has: its
// schema_version table, the errors of a server that cannot be reached or
// goes away (and the reconnect), real failed statements inside a
// transaction and a savepoint, bytes that are not UTF-8 in free text, and
// streaming the active scan. Runs on the private cluster of pg_harness.h
// whatever ANVIL_TEST_STORE says (the rest of the store tests run on
// PostgreSQL with ANVIL_TEST_STORE=postgresql).
#include "../../server/store.h"
#include "../harness.h"
#include "../pg_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct fx {
    char          conninfo[256];
    struct store *st;
};

static int
setup(void **state)
{
    struct fx         *f   = calloc(1, sizeof(*f));
    struct anvil_error err = { 0 };
    if (f == NULL || pg_harness_new_db(f->conninfo, sizeof(f->conninfo)) != 0
        || store_open_pg(f->conninfo, &f->st, &err) != ANVIL_OK) {
        if (err.msg[0] != '\0')
            fprintf(stderr, "setup: %s\n", err.msg);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f    = *state;
    store_hook_step = NULL;
    store_close(f->st);
    free(f);
    return 0;
}

static struct store_new_job
new_job(const char *type, const char *key)
{
    return (struct store_new_job) {
        .type        = type,
        .queue       = "default",
        .payload     = (const uint8_t *) "{\"a\":\0\x01}",
        .payload_len = 9,
        .state       = ANVIL_JOB_QUEUED,
        .retry       = { .max_attempts = 3 },
        .created_at  = 1000,
        .run_at      = 1000,
        .idem_key    = key,
    };
}

static int64_t
insert(struct store *st, const char *type, const char *key)
{
    struct store_new_job nj  = new_job(type, key);
    struct anvil_error   err = { 0 };
    int64_t              id  = 0;
    assert_int_equal(store_job_insert(st, &nj, &id, &err), ANVIL_OK);
    return id;
}

static int64_t
count_jobs(const struct fx *f)
{
    return harness_sql_int(f->conninfo, "SELECT COUNT(*) FROM jobs");
}

static void
test_store_pg_records_the_schema_version_once(void **state)
{
    struct fx *f = *state;
    assert_int_equal(
        harness_sql_int(f->conninfo, "SELECT max(version) FROM schema_version"),
        STORE_SCHEMA_VERSION);
    struct anvil_error err = { 0 };
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(store_open_pg(f->conninfo, &f->st, &err), ANVIL_OK);
    assert_int_equal(
        harness_sql_int(f->conninfo, "SELECT COUNT(*) FROM schema_version"), 1);
}

static void
test_store_pg_unreachable_server_is_unavailable_naming_it(void **state)
{
    (void) state;
    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    int                rc  = store_open_pg(
                        "host=/nonexistent-anvil-dir dbname=jobs user=anvil password=sekret",
                        &st, &err);
    assert_int_equal(rc, ANVIL_UNAVAILABLE);
    assert_int_equal(err.code, ANVIL_UNAVAILABLE);
    assert_null(st);
    assert_non_null(strstr(err.msg, "cannot connect to PostgreSQL"));
    assert_non_null(strstr(err.msg, "host=/nonexistent-anvil-dir"));
    assert_non_null(strstr(err.msg, "dbname=jobs"));
    assert_null(strstr(err.msg, "sekret"));
}

static void
test_store_pg_lost_connection_is_unavailable_then_reconnects(void **state)
{
    struct fx         *f   = *state;
    struct anvil_error err = { 0 };
    int64_t            id  = insert(f->st, "t", NULL);
    // Every other connection to database anvil is the store's.
    assert_int_equal(
        harness_sql_int(f->conninfo,
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = 'anvil' AND pid <> pg_backend_pid()"),
        1);
    struct job j = { 0 };
    assert_int_equal(store_job_get(f->st, id, &j, &err), ANVIL_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "lost the connection to PostgreSQL"));
    assert_non_null(strstr(err.msg, "reading a job"));
    // The engine rolls back; the next batch reconnects.
    assert_int_equal(store_rollback(f->st, &err), ANVIL_OK);
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_job_get(f->st, id, &j, &err), ANVIL_OK);
    assert_string_equal(j.type, "t");
    job_fini(&j);
    insert(f->st, "after", NULL);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    assert_int_equal(count_jobs(f), 2);
}

// Sessions on database anvil other than the asking one (the store's)
// that are idle inside a transaction.
static int64_t
idle_in_transaction(const struct fx *f)
{
    return harness_sql_int(f->conninfo,
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = 'anvil' "
        "AND pid <> pg_backend_pid() AND state = 'idle in transaction'");
}

static bool
none_idle_in_transaction(void *arg)
{
    return idle_in_transaction(arg) == 0;
}

// A session PostgreSQL ends for idling in a transaction (how a leader
// stopped mid-batch is cut off) is a lost connection: UNAVAILABLE, which
// a client retries elsewhere, not INTERNAL.
static void
test_store_pg_a_session_ended_for_idling_is_unavailable(void **state)
{
    struct fx         *f   = *state;
    struct anvil_error err = { 0 };
    int64_t            id  = insert(f->st, "t", NULL);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    // New sessions of the store take the setting: end the current ones.
    assert_int_equal(pg_harness_sql_exec(f->conninfo,
                         "ALTER DATABASE anvil SET "
                         "idle_in_transaction_session_timeout = '300ms'"),
        0);
    assert_true(harness_sql_int(f->conninfo,
                    "SELECT COUNT(pg_terminate_backend(pid)) FROM "
                    "pg_stat_activity WHERE datname = 'anvil' AND pid <> "
                    "pg_backend_pid() AND backend_type = 'client backend'")
        >= 1);
    struct job j  = { 0 };
    int        rc = ANVIL_UNAVAILABLE;
    for (int i = 0; i < 3 && rc == ANVIL_UNAVAILABLE; i++) {
        (void) store_rollback(f->st, &err);
        rc = store_begin(f->st, &err);
        if (rc == ANVIL_OK)
            rc = store_job_get(f->st, id, &j, &err);
    }
    assert_int_equal(rc, ANVIL_OK);
    job_fini(&j);
    assert_int_equal(idle_in_transaction(f), 1);
    assert_true(harness_wait_for(none_idle_in_transaction, f, 5000));
    rc = store_job_get(f->st, id, &j, &err);
    assert_int_equal(pg_harness_sql_exec(f->conninfo,
                         "ALTER DATABASE anvil RESET "
                         "idle_in_transaction_session_timeout"),
        0);
    assert_int_equal(rc, ANVIL_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "lost the connection to PostgreSQL"));
    assert_int_equal(store_rollback(f->st, &err), ANVIL_OK);
}

static void
test_store_pg_unique_violation_is_internal_with_the_servers_message(
    void **state)
{
    struct fx *f = *state;
    insert(f->st, "a", "same");
    struct store_new_job nj  = new_job("b", "same");
    struct anvil_error   err = { 0 };
    int64_t              id  = -1;
    assert_int_equal(store_job_insert(f->st, &nj, &id, &err), ANVIL_INTERNAL);
    assert_int_equal(id, -1);
    assert_non_null(strstr(err.msg, "database error while inserting a job"));
    assert_non_null(strstr(err.msg, "jobs_idem_key"));
    assert_int_equal(count_jobs(f), 1);
}

// A statement PostgreSQL refuses aborts its transaction; rolling back to
// the command's savepoint makes it usable again, as the engine does. In a
// transaction a write is queued (store_pg_pipe.c): its failure is
// reported by the command's next read.
static void
test_store_pg_a_failed_command_is_undone_by_its_savepoint(void **state)
{
    struct fx         *f   = *state;
    struct anvil_error err = { 0 };
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    insert(f->st, "kept", "k1");
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    insert(f->st, "half", "k2");
    struct store_new_job dup = new_job("dup", "k1");
    int64_t              id  = 0;
    assert_int_equal(store_job_insert(f->st, &dup, &id, &err), ANVIL_OK);
    int64_t found = 0;
    assert_int_equal(
        store_job_by_key(f->st, "k2", &found, &err), ANVIL_INTERNAL);
    assert_non_null(strstr(err.msg, "database error while inserting a job"));
    assert_non_null(strstr(err.msg, "jobs_idem_key"));
    assert_int_equal(store_rollback_savepoint(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    insert(f->st, "after", "k2");
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    assert_int_equal(count_jobs(f), 2);
    assert_int_equal(harness_sql_int(f->conninfo,
                         "SELECT COUNT(*) FROM jobs WHERE type = 'half'"),
        0);
}

// A queued write of a command already released fails later: that
// command was answered OK, so the transaction cannot commit any more;
// every later call fails, a rollback to a savepoint too (the engine then
// refuses the batch), and nothing of it is kept.
static void
test_store_pg_a_failed_write_of_an_earlier_command_fails_the_transaction(
    void **state)
{
    struct fx         *f   = *state;
    struct anvil_error err = { 0 };
    insert(f->st, "a", "same");
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    insert(f->st, "lost", NULL);
    struct store_new_job dup = new_job("dup", "same");
    int64_t              id  = 0;
    assert_int_equal(store_job_insert(f->st, &dup, &id, &err), ANVIL_OK);
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    int64_t found = 0;
    assert_int_equal(
        store_job_by_key(f->st, "same", &found, &err), ANVIL_INTERNAL);
    assert_non_null(strstr(err.msg, "jobs_idem_key"));
    err = (struct anvil_error) { 0 };
    assert_int_equal(store_rollback_savepoint(f->st, &err), ANVIL_INTERNAL);
    assert_non_null(strstr(err.msg, "jobs_idem_key"));
    assert_int_equal(store_job_insert(f->st, &dup, &id, &err), ANVIL_INTERNAL);
    assert_int_equal(store_commit(f->st, &err), ANVIL_INTERNAL);
    assert_int_equal(store_rollback(f->st, &err), ANVIL_OK);
    assert_int_equal(count_jobs(f), 1);
    // The store still works.
    insert(f->st, "b", NULL);
    assert_int_equal(count_jobs(f), 2);
}

// The batch's events and last writes go with COMMIT: a failure there
// fails the commit.
static void
test_store_pg_commit_of_a_failed_transaction_is_reported(void **state)
{
    struct fx         *f   = *state;
    struct anvil_error err = { 0 };
    insert(f->st, "a", "same");
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    insert(f->st, "lost", NULL);
    struct store_new_job dup = new_job("dup", "same");
    int64_t              id  = 0;
    assert_int_equal(store_job_insert(f->st, &dup, &id, &err), ANVIL_OK);
    assert_int_equal(store_commit(f->st, &err), ANVIL_INTERNAL);
    assert_non_null(strstr(err.msg, "jobs_idem_key"));
    assert_int_equal(store_rollback(f->st, &err), ANVIL_OK);
    assert_int_equal(count_jobs(f), 1);
    // The store still works, in and out of transactions.
    insert(f->st, "b", NULL);
    assert_int_equal(count_jobs(f), 2);
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    insert(f->st, "c", NULL);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    assert_int_equal(count_jobs(f), 3);
}

// A job inserted QUEUED here is leased without a round trip, the leased
// row computed from the inserted one (store_pg_lease.c): it must read as
// the row PostgreSQL holds after the lease, and its brief, kept for the
// report, as the brief read from the row.
static void
test_store_pg_a_lease_computed_here_reads_as_the_row(void **state)
{
    struct fx           *f   = *state;
    struct anvil_error   err = { 0 };
    struct store_new_job nj  = new_job("mail.send", "k-1");
    nj.priority              = 7;
    nj.timeout_ms            = 9000;
    nj.request_id            = 4242;
    nj.concurrency_key       = "tenant-1";
    nj.concurrency_limit     = 2;
    nj.retry                 = (struct retry_policy) { .max_attempts = 4,
                        .initial_backoff_ms                          = 10,
                        .max_backoff_ms                              = 900,
                        .backoff_multiplier                          = 1.5 };
    int64_t id               = 0;
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_job_insert(f->st, &nj, &id, &err), ANVIL_OK);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);

    struct job got = { 0 };
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    assert_int_equal(store_job_lease_key(f->st, id, "default\x1fmail.send",
                         "worker-9", 17, 5000, 30000, &got, &err),
        ANVIL_OK);
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);

    struct job row = { 0 };
    assert_int_equal(store_job_get(f->st, id, &row, &err), ANVIL_OK);
    assert_int_equal(got.id, row.id);
    assert_string_equal(got.type, row.type);
    assert_string_equal(got.queue, row.queue);
    assert_int_equal(got.payload_len, row.payload_len);
    assert_memory_equal(got.payload, row.payload, row.payload_len);
    assert_int_equal(got.priority, row.priority);
    assert_int_equal(got.state, row.state);
    assert_int_equal(got.state, ANVIL_JOB_RUNNING);
    assert_int_equal(got.attempt, row.attempt);
    assert_int_equal(got.retry.max_attempts, row.retry.max_attempts);
    assert_int_equal(
        got.retry.initial_backoff_ms, row.retry.initial_backoff_ms);
    assert_int_equal(got.retry.max_backoff_ms, row.retry.max_backoff_ms);
    assert_true(got.retry.backoff_multiplier == row.retry.backoff_multiplier);
    assert_int_equal(got.result_len, row.result_len);
    assert_string_equal(got.error, row.error);
    assert_int_equal(got.created_at, row.created_at);
    assert_int_equal(got.started_at, row.started_at);
    assert_int_equal(got.finished_at, row.finished_at);
    assert_int_equal(got.run_at, row.run_at);
    assert_int_equal(got.timeout_ms, row.timeout_ms);
    assert_int_equal(got.lease_deadline, row.lease_deadline);
    assert_int_equal(got.lease_deadline, 35000);
    assert_string_equal(got.worker_id, row.worker_id);
    assert_string_equal(got.idem_key, row.idem_key);
    assert_int_equal(got.cancel_requested, row.cancel_requested);
    assert_int_equal(got.workflow_id, row.workflow_id);
    assert_string_equal(got.step, row.step);
    assert_int_equal(got.lease_ms, row.lease_ms);
    assert_int_equal(got.has_progress, row.has_progress);
    assert_string_equal(got.progress_message, row.progress_message);
    assert_string_equal(got.concurrency_key, row.concurrency_key);
    assert_int_equal(got.concurrency_limit, row.concurrency_limit);
    job_fini(&got);
    job_fini(&row);

    // The brief kept for the report, read in a transaction, is the row's
    // (read outside one).
    struct store_job_brief kept = { 0 }, read = { 0 };
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_job_brief(f->st, id, &kept, &err), ANVIL_OK);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    assert_int_equal(store_job_brief(f->st, id, &read, &err), ANVIL_OK);
    assert_memory_equal(&kept, &read, sizeof(kept));
}

// What is kept is checked where it is used: a row changed by something
// else (here SQL behind the store's back) fails the transaction instead
// of a lease or a report being committed on a stale row.
static void
test_store_pg_a_row_changed_elsewhere_fails_the_transaction(void **state)
{
    struct fx           *f   = *state;
    struct anvil_error   err = { 0 };
    int64_t              a = 0, b = 0;
    struct store_new_job nj = new_job("t", NULL);
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_job_insert(f->st, &nj, &a, &err), ANVIL_OK);
    assert_int_equal(store_job_insert(f->st, &nj, &b, &err), ANVIL_OK);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);

    // a's lease: its attempt changed elsewhere.
    assert_int_equal(
        harness_sql_exec(f->conninfo, "UPDATE jobs SET attempt = 5"), 0);
    struct job j = { 0 };
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    assert_int_equal(
        store_job_lease(f->st, a, "w", 0, 100, 1000, &j, &err), ANVIL_OK);
    job_fini(&j);
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    assert_int_not_equal(store_commit(f->st, &err), ANVIL_OK);
    assert_non_null(strstr(err.msg, "changed outside this server"));
    assert_int_equal(store_rollback(f->st, &err), ANVIL_OK);
    assert_int_equal(harness_sql_int(f->conninfo,
                         "SELECT COUNT(*) FROM jobs WHERE state = 3"),
        2);

    // b's report: leased here (its brief kept), then cancelled elsewhere.
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(
        store_job_lease(f->st, b, "w", 0, 100, 1000, &j, &err), ANVIL_OK);
    job_fini(&j);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    assert_int_equal(
        harness_sql_exec(f->conninfo, "UPDATE jobs SET cancel_requested = 1"),
        0);
    // The batch's other write (another command's insert) is not
    // committed either: the check fails in PostgreSQL, not after it.
    struct store_job_brief br = { 0 };
    int64_t                c  = 0;
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    assert_int_equal(store_job_insert(f->st, &nj, &c, &err), ANVIL_OK);
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    assert_int_equal(store_job_brief(f->st, b, &br, &err), ANVIL_OK);
    assert_int_equal(store_job_finish(f->st, b, ANVIL_JOB_SUCCEEDED, NULL, 0,
                         NULL, 200, &err),
        ANVIL_OK);
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    assert_int_not_equal(store_commit(f->st, &err), ANVIL_OK);
    assert_non_null(strstr(err.msg, "changed outside this server"));
    assert_int_equal(store_rollback(f->st, &err), ANVIL_OK);
    assert_int_equal(count_jobs(f), 2);
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT state FROM jobs WHERE id = %lld",
        (long long) b);
    assert_int_equal(harness_sql_int(f->conninfo, sql), ANVIL_JOB_RUNNING);
    // Read afresh, the brief is the row's.
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_job_brief(f->st, b, &br, &err), ANVIL_OK);
    assert_true(br.cancel_requested);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
}

// A command's writes wait for its first read (store_pg_pipe.c): rolled
// back before one, they are dropped unsent; a command with a read is
// rolled back to the savepoint sent before it.
static void
test_store_pg_a_command_rolled_back_leaves_nothing_with_or_without_a_read(
    void **state)
{
    struct fx         *f     = *state;
    struct anvil_error err   = { 0 };
    int64_t            found = 0;
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    insert(f->st, "kept", "k1");
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    insert(f->st, "dropped", "k2"); // held, never sent
    assert_int_equal(store_rollback_savepoint(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    insert(f->st, "undone", "k3");
    assert_int_equal(store_job_by_key(f->st, "k1", &found, &err), ANVIL_OK);
    assert_int_equal(store_rollback_savepoint(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    assert_int_equal(
        store_job_by_key(f->st, "k3", &found, &err), ANVIL_NOT_FOUND);
    insert(f->st, "after", "k4");
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    assert_int_equal(count_jobs(f), 2);
    assert_int_equal(harness_sql_int(f->conninfo,
                         "SELECT COUNT(*) FROM jobs WHERE type IN "
                         "('kept', 'after')"),
        2);
}

// Errors, idempotency keys and event messages take any bytes, as in
// SQLite; PostgreSQL's TEXT would refuse these.
static void
test_store_pg_free_text_keeps_bytes_that_are_not_utf8(void **state)
{
    struct fx         *f   = *state;
    struct anvil_error err = { 0 };
    int64_t            id  = insert(f->st, "t", "key-\xfe\xff");
    int64_t            got = 0;
    assert_int_equal(
        store_job_by_key(f->st, "key-\xfe\xff", &got, &err), ANVIL_OK);
    assert_int_equal(got, id);
    assert_int_equal(store_job_finish(f->st, id, ANVIL_JOB_FAILED, NULL, 0,
                         "bad \x80 bytes", 5, &err),
        ANVIL_OK);
    struct job j = { 0 };
    assert_int_equal(store_job_get(f->st, id, &j, &err), ANVIL_OK);
    assert_string_equal(j.error, "bad \x80 bytes");
    assert_string_equal(j.idem_key, "key-\xfe\xff");
    assert_int_equal(j.payload_len, 9);
    assert_memory_equal(j.payload, "{\"a\":\0\x01}", 9);
    job_fini(&j);
    struct store_new_event ev
        = { .kind = EV_JOB_FAILED, .at = 1, .message = "\xc3 half" };
    uint64_t seq = 0;
    assert_int_equal(store_event_insert(f->st, &ev, &seq, &err), ANVIL_OK);
    struct store_event_filter ef  = { .limit = 10 };
    struct store_event       *out = NULL;
    size_t                    n   = 0;
    uint64_t                  to  = 0;
    assert_int_equal(store_events_read(f->st, &ef, &out, &n, &to, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].message, "\xc3 half");
    store_events_free(out, n);
}

static int
hook_full(int stmt)
{
    (void) stmt;
    return ANVIL_RESOURCE_EXHAUSTED;
}

static void
test_store_pg_disk_full_is_resource_exhausted(void **state)
{
    struct fx         *f   = *state;
    struct anvil_error err = { 0 };
    store_hook_step        = hook_full;
    assert_int_equal(store_begin(f->st, &err), ANVIL_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(err.msg, "disk full"));
    store_hook_step = NULL;
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
}

static int
count_cb(void *arg, const struct job *j)
{
    int *n = arg;
    assert_string_equal(j->queue, "default");
    assert_string_equal(j->concurrency_key, "");
    return ++*n == 1500 ? ANVIL_RESOURCE_EXHAUSTED : ANVIL_OK;
}

// The scan streams rows (single-row mode); a failing callback stops the
// calls and is reported, and the connection is usable after it.
static void
test_store_pg_scan_active_streams_and_stops_on_a_failure(void **state)
{
    struct fx         *f   = *state;
    struct anvil_error err = { 0 };
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    for (int i = 0; i < 2000; i++)
        insert(f->st, "t", NULL);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    int n = 0;
    assert_int_equal(
        store_scan_active(f->st, count_cb, &n, &err), ANVIL_RESOURCE_EXHAUSTED);
    assert_int_equal(n, 1500);
    assert_non_null(strstr(err.msg, "out of memory"));
    n = -1000000;
    assert_int_equal(store_scan_active(f->st, count_cb, &n, &err), ANVIL_OK);
    assert_int_equal(n, -1000000 + 2000);
}

static int64_t
state_of(const struct fx *f, int64_t id)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT state FROM jobs WHERE id = %lld",
        (long long) id);
    return harness_sql_int(f->conninfo, sql);
}

// Begins a transaction and reports jobs id[from..to) SUCCEEDED, each in a
// command of its own that reads its brief first (the kept one).
static void
report_ok(struct fx *f, const int64_t *id, int from, int to)
{
    struct anvil_error err = { 0 };
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    for (int i = from; i < to; i++) {
        struct store_job_brief b = { 0 };
        assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
        assert_int_equal(store_job_brief(f->st, id[i], &b, &err), ANVIL_OK);
        assert_int_equal(store_job_finish(f->st, id[i], ANVIL_JOB_SUCCEEDED,
                             (const uint8_t *) "ok", 2, NULL, 6000, &err),
            ANVIL_OK);
        assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    }
}

// Writes of one statement in a row go as one statement over arrays
// (store_pg_merge.c): each row ends as its own write would have left it,
// a job named twice keeps the later write, and a row changed elsewhere
// still fails them all.
static void
test_store_pg_writes_merged_mean_what_they_meant_one_by_one(void **state)
{
    struct fx         *f   = *state;
    struct anvil_error err = { 0 };
    enum { N = 6 };
    int64_t id[N] = { 0 };
    // Inserts, in one command and then in commands of their own.
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    for (int i = 0; i < N; i++) {
        if (i == 3) {
            assert_int_equal(store_release(f->st, &err), ANVIL_OK);
            assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
        }
        struct store_new_job nj     = new_job(i % 2 ? "odd" : "even", NULL);
        nj.priority                 = i;
        nj.request_id               = i == 2 ? 0 : 700 + (uint64_t) i;
        nj.concurrency_key          = i == 4 ? "tenant-4" : NULL;
        nj.concurrency_limit        = i == 4 ? 3 : 0;
        nj.retry.backoff_multiplier = 1.25 + i;
        assert_int_equal(store_job_insert(f->st, &nj, &id[i], &err), ANVIL_OK);
    }
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    for (int i = 0; i < N; i++) {
        struct job row = { 0 };
        assert_int_equal(store_job_get(f->st, id[i], &row, &err), ANVIL_OK);
        assert_string_equal(row.type, i % 2 ? "odd" : "even");
        assert_int_equal(row.payload_len, 9);
        assert_memory_equal(row.payload, "{\"a\":\0\x01}", 9);
        assert_int_equal(row.priority, i);
        assert_int_equal(row.state, ANVIL_JOB_QUEUED);
        assert_true(row.retry.backoff_multiplier == 1.25 + i);
        assert_string_equal(row.concurrency_key, i == 4 ? "tenant-4" : "");
        assert_int_equal(row.concurrency_limit, i == 4 ? 3 : 0);
        job_fini(&row);
    }
    assert_int_equal(harness_sql_int(f->conninfo,
                         "SELECT COUNT(*) FROM jobs WHERE request_id IS NULL"),
        1);

    // Leases, a command each, all kept rows.
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    for (int i = 0; i < N; i++) {
        struct job got = { 0 };
        assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
        assert_int_equal(store_job_lease_key(f->st, id[i], NULL, "w-1", 100 + i,
                             5000, 30000, &got, &err),
            ANVIL_OK);
        job_fini(&got);
        assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    }
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    for (int i = 0; i < N; i++) {
        struct job row = { 0 };
        assert_int_equal(store_job_get(f->st, id[i], &row, &err), ANVIL_OK);
        assert_int_equal(row.state, ANVIL_JOB_RUNNING);
        assert_int_equal(row.attempt, 1);
        assert_int_equal(row.lease_deadline, 35000);
        assert_string_equal(row.worker_id, "w-1");
        job_fini(&row);
    }

    // Reports (brief, then finish): a row changed elsewhere fails the
    // statement in PostgreSQL, so none of the reports is committed.
    assert_int_equal(harness_sql_exec(f->conninfo,
                         "UPDATE jobs SET lease_token = 99 WHERE priority = 4"),
        0);
    report_ok(f, id, 3, N);
    assert_int_not_equal(store_commit(f->st, &err), ANVIL_OK);
    assert_non_null(strstr(err.msg, "changed outside this server"));
    assert_int_equal(store_rollback(f->st, &err), ANVIL_OK);
    for (int i = 3; i < N; i++)
        assert_int_equal(state_of(f, id[i]), ANVIL_JOB_RUNNING);
    assert_int_equal(harness_sql_int(f->conninfo,
                         "SELECT lease_token FROM jobs WHERE priority = 4"),
        99);

    // The others' reports commit; then a job finished twice in a row of
    // finishes keeps the later one.
    report_ok(f, id, 0, 3);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_job_finish(f->st, id[3], ANVIL_JOB_FAILED, NULL, 0,
                         "first", 7000, &err),
        ANVIL_OK);
    assert_int_equal(store_job_finish(f->st, id[4], ANVIL_JOB_FAILED, NULL, 0,
                         "only", 7000, &err),
        ANVIL_OK);
    assert_int_equal(store_job_finish(f->st, id[3], ANVIL_JOB_SUCCEEDED,
                         (const uint8_t *) "later", 5, NULL, 7001, &err),
        ANVIL_OK);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    for (int i = 0; i < N; i++) {
        struct job row = { 0 };
        assert_int_equal(store_job_get(f->st, id[i], &row, &err), ANVIL_OK);
        assert_int_equal(row.state,
            i == 4       ? ANVIL_JOB_FAILED
                : i == 5 ? ANVIL_JOB_RUNNING
                         : ANVIL_JOB_SUCCEEDED);
        if (i < 3) {
            assert_int_equal(row.result_len, 2);
            assert_int_equal(row.finished_at, 6000);
        }
        job_fini(&row);
    }
    struct job row = { 0 };
    assert_int_equal(store_job_get(f->st, id[3], &row, &err), ANVIL_OK);
    assert_int_equal(row.result_len, 5);
    assert_memory_equal(row.result, "later", 5);
    assert_string_equal(row.error, "");
    assert_int_equal(row.finished_at, 7001);
    job_fini(&row);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_store_pg_records_the_schema_version_once),
        T(test_store_pg_unreachable_server_is_unavailable_naming_it),
        T(test_store_pg_lost_connection_is_unavailable_then_reconnects),
        T(test_store_pg_a_session_ended_for_idling_is_unavailable),
        T(test_store_pg_unique_violation_is_internal_with_the_servers_message),
        T(test_store_pg_a_failed_command_is_undone_by_its_savepoint),
        T(test_store_pg_a_failed_write_of_an_earlier_command_fails_the_transaction),
        T(test_store_pg_commit_of_a_failed_transaction_is_reported),
        T(test_store_pg_a_lease_computed_here_reads_as_the_row),
        T(test_store_pg_a_row_changed_elsewhere_fails_the_transaction),
        T(test_store_pg_a_command_rolled_back_leaves_nothing_with_or_without_a_read),
        T(test_store_pg_free_text_keeps_bytes_that_are_not_utf8),
        T(test_store_pg_disk_full_is_resource_exhausted),
        T(test_store_pg_scan_active_streams_and_stops_on_a_failure),
        T(test_store_pg_writes_merged_mean_what_they_meant_one_by_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
