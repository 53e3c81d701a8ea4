// test_store_events.c - the store's event stream (schema version 6):
// appending and reading back in seq order, every filter, limit, scan_max
// and where a read resumes (scanned_to), the message cut at a UTF-8
// boundary, seqs that are never handed out twice (rollback, deletion of
// the newest, reopen), the stream's bounds, retention's sweep, the indexes
// the reads use, and the failure seam on every event statement.
#include "../../server/store.h"
#include "../../server/store_sqlite.h"
#include "../harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

static int
setup(void **state)
{
    return harness_store_setup(state, 1);
}

static int
teardown(void **state)
{
    return harness_store_teardown(state);
}

// ---- helpers ----

static uint64_t
add(struct store *st, const struct store_new_event *ev)
{
    struct anvil_error err = { 0 };
    uint64_t           seq = 0;
    int                rc  = store_event_insert(st, ev, &seq, &err);
    if (rc != ANVIL_OK)
        fprintf(stderr, "event insert: %s\n", err.msg);
    assert_int_equal(rc, ANVIL_OK);
    return seq;
}

static uint64_t
add_at(struct store *st, int64_t at)
{
    struct store_new_event ev = { .kind = EV_JOB_SUBMITTED, .at = at };
    return add(st, &ev);
}

// Eight events of three jobs, a workflow and a worker, seqs 1-8:
//   1 SUBMITTED job 1 a/q1    5 SUBMITTED job 3 wf 7 step s a/q2
//   2 SUBMITTED job 2 b/q2    6 SUCCEEDED job 1 a/q1
//   3 WORKFLOW_STARTED wf 7   7 WORKER_JOINED w2
//   4 STARTED job 1 a/q1 w1   8 FAILED job 3 wf 7 a/q2 "boom"
static void
add_fixture(struct store *st)
{
    const struct store_new_event ev[] = {
        { EV_JOB_SUBMITTED, 100, 1, 0, NULL, "a", "q1", NULL, 0, NULL, false,
            0 },
        { EV_JOB_SUBMITTED, 101, 2, 0, NULL, "b", "q2", NULL, 0, NULL, false,
            0 },
        { EV_WORKFLOW_STARTED, 102, 0, 7, NULL, NULL, NULL, NULL, 0, NULL,
            false, 0 },
        { EV_JOB_STARTED, 103, 1, 0, NULL, "a", "q1", "w1", 1, NULL, false, 0 },
        { EV_JOB_SUBMITTED, 104, 3, 7, "s", "a", "q2", NULL, 0, NULL, false,
            0 },
        { EV_JOB_SUCCEEDED, 105, 1, 0, NULL, "a", "q1", "w1", 1, NULL, false,
            0 },
        { EV_WORKER_JOINED, 106, 0, 0, NULL, NULL, NULL, "w2", 0, NULL, false,
            0 },
        { EV_JOB_FAILED, 107, 3, 7, "s", "a", "q2", "w1", 1, "boom", false, 0 },
    };
    for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++)
        assert_int_equal(add(st, &ev[i]), i + 1);
}

// Reads with f and checks the seqs returned and scanned_to.
static void
expect(struct store *st, struct store_event_filter f, const uint64_t *want,
    size_t n_want, uint64_t want_to)
{
    struct anvil_error  err = { 0 };
    struct store_event *ev  = NULL;
    size_t              n   = 99;
    uint64_t            to  = 99;
    if (f.limit == 0)
        f.limit = 100;
    assert_int_equal(store_events_read(st, &f, &ev, &n, &to, &err), ANVIL_OK);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ev[i].seq, want[i]);
    assert_int_equal(to, want_to);
    store_events_free(ev, n);
}

#define SEQS(...)      \
    (const uint64_t[]) \
    {                  \
        __VA_ARGS__    \
    }
#define NSEQS(...) \
    (sizeof((const uint64_t[]) { __VA_ARGS__ }) / sizeof(uint64_t))
#define EXPECT(st, f, to, ...) \
    expect(st, f, SEQS(__VA_ARGS__), NSEQS(__VA_ARGS__), to)
#define EXPECT_NONE(st, f, to) expect(st, f, NULL, 0, to)
#define F(...) ((struct store_event_filter) { __VA_ARGS__ })

// Runs sql on a second connection to the store's database.
static void
sql_exec(const char *path, const char *sql)
{
    assert_int_equal(harness_sql_exec(path, sql), 0);
}

static void
reopen(struct harness_store *f)
{
    assert_int_equal(harness_store_reopen(f), 0);
}

static void
bounds(struct store *st, uint64_t want_first, uint64_t want_last)
{
    struct anvil_error err   = { 0 };
    uint64_t           first = 99, last = 99;
    assert_int_equal(store_events_bounds(st, &first, &last, &err), ANVIL_OK);
    assert_int_equal(first, want_first);
    assert_int_equal(last, want_last);
}

// ---- insert and read ----

static void
test_store_events_read_back_in_seq_order_with_every_field(void **state)
{
    struct harness_store *f = *state;
    add_fixture(f->st);
    struct store_event_filter flt = { .limit = 100 };
    struct store_event       *ev  = NULL;
    size_t                    n   = 0;
    uint64_t                  to  = 0;
    struct anvil_error        err = { 0 };
    assert_int_equal(
        store_events_read(f->st, &flt, &ev, &n, &to, &err), ANVIL_OK);
    assert_int_equal(n, 8);
    assert_int_equal(to, 8);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ev[i].seq, i + 1);
    const struct store_event *e = &ev[7];
    assert_int_equal(e->kind, EV_JOB_FAILED);
    assert_int_equal(e->at, 107);
    assert_int_equal(e->job_id, 3);
    assert_int_equal(e->workflow_id, 7);
    assert_string_equal(e->step, "s");
    assert_string_equal(e->type, "a");
    assert_string_equal(e->queue, "q2");
    assert_string_equal(e->worker, "w1");
    assert_int_equal(e->attempt, 1);
    assert_string_equal(e->message, "boom");
    // Absent fields come back 0 and NULL.
    e = &ev[6];
    assert_int_equal(e->kind, EV_WORKER_JOINED);
    assert_int_equal(e->job_id, 0);
    assert_int_equal(e->workflow_id, 0);
    assert_null(e->step);
    assert_null(e->type);
    assert_null(e->queue);
    assert_string_equal(e->worker, "w2");
    assert_int_equal(e->attempt, 0);
    assert_null(e->message);
    store_events_free(ev, n);
    store_events_free(NULL, 0);
}

static void
test_store_events_read_refuses_a_zero_limit(void **state)
{
    struct harness_store *f = *state;
    add_fixture(f->st);
    struct store_event_filter flt = { .limit = 0 };
    struct store_event       *ev  = NULL;
    size_t                    n   = 0;
    uint64_t                  to  = 0;
    struct anvil_error        err = { 0 };
    assert_int_equal(store_events_read(f->st, &flt, &ev, &n, &to, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_int_equal(err.code, ANVIL_INVALID_ARGUMENT);
    assert_null(ev);
}

static void
test_store_events_filter_by_job_workflow_type_queue_and_kind(void **state)
{
    struct store *st = ((struct harness_store *) *state)->st;
    add_fixture(st);
    EXPECT(st, F(.job_id = 1), 6, 1, 4, 6);
    EXPECT(st, F(.workflow_id = 7), 8, 3, 5, 8);
    EXPECT(st, F(.job_id = 3, .workflow_id = 7), 8, 5, 8);
    EXPECT(st, F(.type = "a"), 8, 1, 4, 5, 6, 8);
    EXPECT(st, F(.queue = "q2"), 8, 2, 5, 8);
    EXPECT(st, F(.type = "a", .queue = "q2"), 8, 5, 8);
    EXPECT(st, F(.kinds = 1u << EV_JOB_SUBMITTED), 8, 1, 2, 5);
    EXPECT(st, F(.kinds = 1u << EV_JOB_SUBMITTED | 1u << EV_JOB_FAILED), 8, 1,
        2, 5, 8);
    EXPECT(st, F(.kinds = 1u << EV_WORKER_JOINED), 8, 7);
    EXPECT(st, F(.after_seq = 4, .type = "a"), 8, 5, 6, 8);
    EXPECT(st, F(.after_seq = 4, .job_id = 1), 6, 6);
    EXPECT(st, F(.job_id = 3, .kinds = 1u << EV_JOB_FAILED), 8, 8);
    // No event of job 1 is in workflow 7: job 1's rows were looked at.
    EXPECT_NONE(st, F(.job_id = 1, .workflow_id = 7), 6);
    EXPECT_NONE(st, F(.job_id = 99), 0);
}

static void
test_store_events_limit_ends_the_read_at_the_last_match(void **state)
{
    struct store *st = ((struct harness_store *) *state)->st;
    add_fixture(st);
    // Paging through type "a" two at a time resumes after the last match.
    EXPECT(st, F(.type = "a", .limit = 2), 4, 1, 4);
    EXPECT(st, F(.after_seq = 4, .type = "a", .limit = 2), 6, 5, 6);
    EXPECT(st, F(.after_seq = 6, .type = "a", .limit = 2), 8, 8);
    EXPECT_NONE(st, F(.after_seq = 8, .type = "a", .limit = 2), 8);
    EXPECT(st, F(.limit = 1), 1, 1);
    EXPECT(st, F(.workflow_id = 7, .limit = 1), 3, 3);
}

static void
test_store_events_a_filter_matching_nothing_still_advances(void **state)
{
    struct store *st = ((struct harness_store *) *state)->st;
    // An empty stream: nothing looked at, the read stays where it was.
    EXPECT_NONE(st, F(0), 0);
    EXPECT_NONE(st, F(.after_seq = 50), 50);
    add_fixture(st);
    // Every row was looked at, none matched: resume after the highest.
    EXPECT_NONE(st, F(.type = "zzz"), 8);
    EXPECT_NONE(st, F(.queue = "q3", .after_seq = 2), 8);
    EXPECT_NONE(st, F(.kinds = 1u << EV_WORKER_LOST), 8);
    EXPECT_NONE(st, F(.after_seq = 8, .type = "zzz"), 8);
    // A read past the end is not pulled back.
    EXPECT_NONE(st, F(.after_seq = 20), 20);
}

static void
test_store_events_scan_max_bounds_the_rows_looked_at(void **state)
{
    struct store *st = ((struct harness_store *) *state)->st;
    add_fixture(st);
    EXPECT(st, F(.type = "b", .scan_max = 3), 3, 2);
    EXPECT_NONE(st, F(.after_seq = 3, .type = "b", .scan_max = 3), 6);
    EXPECT_NONE(st, F(.after_seq = 6, .type = "b", .scan_max = 3), 8);
    EXPECT(st, F(.scan_max = 3), 3, 1, 2, 3);
    // Along a job's index, scan_max counts that job's rows.
    EXPECT(st, F(.job_id = 1, .scan_max = 2), 4, 1, 4);
    // The limit still ends a read before scan_max does.
    EXPECT(st, F(.type = "a", .scan_max = 5, .limit = 1), 1, 1);
}

// ---- the message ----

// Inserts an event whose message is prefix repeated n times then tail,
// and returns the length stored.
static size_t
stored_message_len(struct store *st, char fill, size_t n, const char *tail)
{
    size_t tl  = strlen(tail);
    char  *msg = malloc(n + tl + 1);
    assert_non_null(msg);
    memset(msg, fill, n);
    memcpy(msg + n, tail, tl + 1);
    struct store_new_event ev  = { .kind = EV_JOB_FAILED, .message = msg };
    uint64_t               seq = add(st, &ev);
    free(msg);
    struct store_event_filter flt = { .after_seq = seq - 1, .limit = 1 };
    struct store_event       *out = NULL;
    size_t                    cnt = 0;
    uint64_t                  to  = 0;
    struct anvil_error        err = { 0 };
    assert_int_equal(
        store_events_read(st, &flt, &out, &cnt, &to, &err), ANVIL_OK);
    assert_int_equal(cnt, 1);
    size_t len = out[0].message != NULL ? strlen(out[0].message) : 0;
    // What was kept is the message's beginning.
    for (size_t i = 0; i < len && i < n; i++)
        assert_int_equal(out[0].message[i], fill);
    store_events_free(out, cnt);
    return len;
}

static void
test_store_event_message_is_cut_at_1024_bytes_on_a_utf8_boundary(void **state)
{
    struct store *st = ((struct harness_store *) *state)->st;
    assert_int_equal(EVENT_MESSAGE_MAX, 1024);
    assert_int_equal(stored_message_len(st, 'x', 1024, ""), 1024);
    assert_int_equal(stored_message_len(st, 'x', 2000, ""), 1024);
    assert_int_equal(stored_message_len(st, 'x', 1023, "y"), 1024);
    // A sequence that would straddle byte 1024 is dropped whole.
    assert_int_equal(stored_message_len(st, 'x', 1023, "\xc3\xa9"), 1023);
    assert_int_equal(stored_message_len(st, 'x', 1022, "\xe2\x82\xac"), 1022);
    assert_int_equal(
        stored_message_len(st, 'x', 1021, "\xf0\x9f\x98\x80"), 1021);
    assert_int_equal(
        stored_message_len(st, 'x', 1022, "\xf0\x9f\x98\x80"), 1022);
    // One that ends at byte 1024 is kept.
    assert_int_equal(
        stored_message_len(st, 'x', 1020, "\xf0\x9f\x98\x80zz"), 1024);
    assert_int_equal(stored_message_len(st, 'x', 1024, "\xc3\xa9"), 1024);
    // Bytes that are not UTF-8 end the walk back after three.
    assert_int_equal(stored_message_len(st, '\x80', 2000, ""), 1021);
    // An empty message is none.
    assert_int_equal(stored_message_len(st, 'x', 0, ""), 0);
}

// ---- seqs ----

static void
test_store_event_seq_is_never_reused_after_the_newest_are_deleted(void **state)
{
    struct harness_store *f = *state;
    assert_int_equal(add_at(f->st, 1), 1);
    assert_int_equal(add_at(f->st, 2), 2);
    assert_int_equal(add_at(f->st, 3), 3);
    // The newest two go behind the store's back, then it restarts.
    sql_exec(f->path, "DELETE FROM events WHERE seq >= 2");
    reopen(f);
    bounds(f->st, 1, 3);
    assert_int_equal(add_at(f->st, 4), 4);
    // Retention deletes every event; a restart still goes on from 4.
    struct anvil_error err     = { 0 };
    int                deleted = 0;
    assert_int_equal(
        store_sweep_events(f->st, 0, UINT64_MAX, 100, &deleted, &err),
        ANVIL_OK);
    assert_int_equal(deleted, 2);
    reopen(f);
    bounds(f->st, 0, 4);
    assert_int_equal(add_at(f->st, 5), 5);
    bounds(f->st, 5, 5);
}

static void
test_store_event_rolled_back_with_its_savepoint_leaves_a_gap(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    assert_int_equal(add_at(f->st, 1), 1);
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    assert_int_equal(add_at(f->st, 2), 2);
    assert_int_equal(store_rollback_savepoint(f->st, &err), ANVIL_OK);
    assert_int_equal(store_savepoint(f->st, &err), ANVIL_OK);
    assert_int_equal(add_at(f->st, 3), 3);
    assert_int_equal(store_release(f->st, &err), ANVIL_OK);
    assert_int_equal(store_commit(f->st, &err), ANVIL_OK);
    EXPECT(f->st, F(0), 3, 1, 3);
    // A whole transaction rolled back skips its seqs too.
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_int_equal(add_at(f->st, 4), 4);
    assert_int_equal(store_rollback(f->st, &err), ANVIL_OK);
    EXPECT(f->st, F(0), 3, 1, 3);
    // The highest seq handed out: SQLite's AUTOINCREMENT counter rolls back
    // with the insert, PostgreSQL's sequence keeps the 4 it handed out.
    bounds(f->st, 1, f->pg ? 4 : 3);
    assert_int_equal(add_at(f->st, 5), 5);
}

static void
test_store_events_bounds_are_the_oldest_kept_and_the_highest_ever(void **state)
{
    struct harness_store *f = *state;
    bounds(f->st, 0, 0);
    add_fixture(f->st);
    bounds(f->st, 1, 8);
    struct anvil_error err     = { 0 };
    int                deleted = 0;
    assert_int_equal(
        store_sweep_events(f->st, 0, 4, 100, &deleted, &err), ANVIL_OK);
    assert_int_equal(deleted, 3);
    bounds(f->st, 4, 8);
}

// ---- retention ----

static void
test_store_sweep_events_by_time_stops_at_the_first_recent_one(void **state)
{
    struct harness_store *f = *state;
    // Times in seq order but for one event stamped early (a clock step).
    const int64_t at[] = { 10, 20, 30, 90, 40, 50 };
    for (size_t i = 0; i < 6; i++)
        add_at(f->st, at[i]);
    struct anvil_error err     = { 0 };
    int                deleted = -1;
    assert_int_equal(
        store_sweep_events(f->st, 10, 0, 100, &deleted, &err), ANVIL_OK);
    assert_int_equal(deleted, 0); // nothing older than 10
    assert_int_equal(
        store_sweep_events(f->st, 25, 0, 100, &deleted, &err), ANVIL_OK);
    assert_int_equal(deleted, 2);
    bounds(f->st, 3, 6);
    // Seq 5 (at 40) waits behind seq 4 (at 90).
    assert_int_equal(
        store_sweep_events(f->st, 60, 0, 100, &deleted, &err), ANVIL_OK);
    assert_int_equal(deleted, 1);
    bounds(f->st, 4, 6);
    assert_int_equal(
        store_sweep_events(f->st, 100, 0, 100, &deleted, &err), ANVIL_OK);
    assert_int_equal(deleted, 3);
    bounds(f->st, 0, 6);
}

static void
test_store_sweep_events_by_count_bound_and_limit(void **state)
{
    struct harness_store *f = *state;
    add_fixture(f->st); // at 100-107
    struct anvil_error err     = { 0 };
    int                deleted = -1;
    // Below seq 6, at most 2 per call.
    assert_int_equal(
        store_sweep_events(f->st, 0, 6, 2, &deleted, &err), ANVIL_OK);
    assert_int_equal(deleted, 2);
    bounds(f->st, 3, 8);
    assert_int_equal(
        store_sweep_events(f->st, 0, 6, 2, &deleted, &err), ANVIL_OK);
    assert_int_equal(deleted, 2);
    assert_int_equal(
        store_sweep_events(f->st, 0, 6, 2, &deleted, &err), ANVIL_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(
        store_sweep_events(f->st, 0, 6, 2, &deleted, &err), ANVIL_OK);
    assert_int_equal(deleted, 0);
    bounds(f->st, 6, 8);
    // Either bound is enough: seq 6 is old enough by time.
    assert_int_equal(
        store_sweep_events(f->st, 106, 6, 10, &deleted, &err), ANVIL_OK);
    assert_int_equal(deleted, 1);
    bounds(f->st, 7, 8);
    // A limit of 0 deletes nothing.
    assert_int_equal(
        store_sweep_events(f->st, 1000, 100, 0, &deleted, &err), ANVIL_OK);
    assert_int_equal(deleted, 0);
    bounds(f->st, 7, 8);
}

// ---- plans ----

// Rows of EXPLAIN QUERY PLAN sql whose detail contains what.
static int
plan_count(sqlite3 *db, const char *sql, const char *what)
{
    char *q = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sql);
    assert_non_null(q);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &s, NULL), SQLITE_OK);
    int n = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *v = (const char *) sqlite3_column_text(s, 3);
        n += v != NULL && strstr(v, what) != NULL;
    }
    sqlite3_finalize(s);
    sqlite3_free(q);
    return n;
}

static void
test_store_event_reads_walk_an_index_in_seq_order_without_sorting(void **state)
{
    if (((struct harness_store *) *state)->pg)
        skip(); // SQLite's plans, statements and file limits
    struct harness_store *f      = *state;
    sqlite3              *db     = store_sqlite_db(f->st);
    const char           *scan   = store_stmt_sql(STMT_EVENTS_SCAN);
    const char           *by_job = store_stmt_sql(STMT_EVENTS_BY_JOB);
    const char           *by_wf  = store_stmt_sql(STMT_EVENTS_BY_FLOW);
    const char           *sweep  = store_stmt_sql(STMT_SWEEP_EVENTS_SCAN);
    assert_int_equal(plan_count(db, by_job, "events_job"), 1);
    assert_int_equal(plan_count(db, by_wf, "events_workflow"), 1);
    assert_int_equal(plan_count(db, scan, "INTEGER PRIMARY KEY"), 1);
    const char *all[]
        = { scan, by_job, by_wf, sweep, store_stmt_sql(STMT_SWEEP_EVENTS) };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        assert_int_equal(plan_count(db, all[i], "TEMP B-TREE"), 0);
    // The table has just the two partial indexes.
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                         "SELECT group_concat(name) FROM (SELECT name FROM "
                         "sqlite_master WHERE type = 'index' AND tbl_name = "
                         "'events' ORDER BY name)",
                         -1, &s, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal(
        sqlite3_column_text(s, 0), "events_job,events_workflow");
    sqlite3_finalize(s);
}

// ---- failures ----

// The seam fails every statement whose SQL contains hook_match.
static const char *hook_match;
static int         hook_code;
static int         hook_hits;

static int
hook(int stmt)
{
    const char *sql = store_stmt_sql(stmt);
    if (hook_match == NULL || strstr(sql, hook_match) == NULL)
        return 0;
    hook_hits++;
    return hook_code;
}

static void
hook_fail(const char *match, int code)
{
    hook_match      = match;
    hook_code       = code;
    hook_hits       = 0;
    store_hook_step = hook;
}

static void
assert_failed(int rc, const struct anvil_error *err, int code, const char *in)
{
    assert_int_equal(rc, code);
    assert_int_equal(err->code, code);
    assert_non_null(strstr(err->msg, in));
    assert_true(hook_hits > 0);
}

static void
test_store_event_insert_on_a_full_disk_answers_resource_exhausted(void **state)
{
    if (((struct harness_store *) *state)->pg)
        skip(); // SQLite's plans, statements and file limits
    struct harness_store  *f   = *state;
    struct anvil_error     err = { 0 };
    struct store_new_event ev  = { .kind = EV_JOB_SUBMITTED, .at = 1 };
    uint64_t               seq = 0;
    hook_fail("INSERT INTO events", ANVIL_RESOURCE_EXHAUSTED);
    assert_failed(store_event_insert(f->st, &ev, &seq, &err), &err,
        ANVIL_RESOURCE_EXHAUSTED, "disk full");
    store_hook_step = NULL;
    assert_int_equal(add_at(f->st, 1), 1);

    // And a real one: the file may grow by a few pages, then no more.
    sqlite3      *db = store_sqlite_db(f->st);
    sqlite3_stmt *s  = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
        (long long) sqlite3_column_int64(s, 0) + 2);
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    static char msg[EVENT_MESSAGE_MAX + 1];
    memset(msg, 'm', EVENT_MESSAGE_MAX);
    ev.message = msg;
    int rc     = ANVIL_OK;
    for (int i = 0; rc == ANVIL_OK && i < 200; i++)
        rc = store_event_insert(f->st, &ev, &seq, &err);
    assert_int_equal(rc, ANVIL_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(err.msg, "disk full"));
}

static void
test_store_event_statements_fail_through_the_seam(void **state)
{
    if (((struct harness_store *) *state)->pg)
        skip(); // SQLite's plans, statements and file limits
    struct harness_store  *f   = *state;
    struct anvil_error     err = { 0 };
    struct store_new_event ev  = { .kind = EV_JOB_SUBMITTED, .at = 1 };
    uint64_t               seq = 0, a = 0, b = 0;
    struct store_event    *out     = NULL;
    size_t                 n       = 0;
    int                    deleted = 0;
    add_fixture(f->st);

    hook_fail("INSERT INTO events", 1);
    assert_failed(store_event_insert(f->st, &ev, &seq, &err), &err,
        ANVIL_INTERNAL, "recording an event");
    const char *reads[]
        = { "WHERE seq > ?1", "WHERE job_id = ?3", "WHERE workflow_id = ?3" };
    const struct store_event_filter flt[] = { { .limit = 10 },
        { .job_id = 1, .limit = 10 }, { .workflow_id = 7, .limit = 10 } };
    for (size_t i = 0; i < 3; i++) {
        hook_fail(reads[i], 1);
        assert_failed(store_events_read(f->st, &flt[i], &out, &n, &a, &err),
            &err, ANVIL_INTERNAL, "reading events");
    }
    hook_fail("sqlite_sequence", ANVIL_RESOURCE_EXHAUSTED);
    assert_failed(store_events_bounds(f->st, &a, &b, &err), &err,
        ANVIL_RESOURCE_EXHAUSTED, "bounds");
    hook_fail("SELECT seq, at FROM events", 1);
    assert_failed(store_sweep_events(f->st, 1000, 0, 10, &deleted, &err), &err,
        ANVIL_INTERNAL, "finding old events");
    hook_fail("DELETE FROM events", ANVIL_RESOURCE_EXHAUSTED);
    assert_failed(store_sweep_events(f->st, 1000, 0, 10, &deleted, &err), &err,
        ANVIL_RESOURCE_EXHAUSTED, "disk full");
    assert_int_equal(deleted, 0);

    // Every statement works again once the seam lets it run; the failed
    // insert took no seq.
    store_hook_step = NULL;
    EXPECT(f->st, F(.after_seq = 6), 8, 7, 8);
    assert_int_equal(add_at(f->st, 1), 9);
    bounds(f->st, 1, 9);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_store_events_read_back_in_seq_order_with_every_field),
        T(test_store_events_read_refuses_a_zero_limit),
        T(test_store_events_filter_by_job_workflow_type_queue_and_kind),
        T(test_store_events_limit_ends_the_read_at_the_last_match),
        T(test_store_events_a_filter_matching_nothing_still_advances),
        T(test_store_events_scan_max_bounds_the_rows_looked_at),
        T(test_store_event_message_is_cut_at_1024_bytes_on_a_utf8_boundary),
        T(test_store_event_seq_is_never_reused_after_the_newest_are_deleted),
        T(test_store_event_rolled_back_with_its_savepoint_leaves_a_gap),
        T(test_store_events_bounds_are_the_oldest_kept_and_the_highest_ever),
        T(test_store_sweep_events_by_time_stops_at_the_first_recent_one),
        T(test_store_sweep_events_by_count_bound_and_limit),
        T(test_store_event_reads_walk_an_index_in_seq_order_without_sorting),
        T(test_store_event_insert_on_a_full_disk_answers_resource_exhausted),
        T(test_store_event_statements_fail_through_the_seam),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
