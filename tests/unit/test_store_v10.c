// test_store_v10.c - schema version 10 of the store: cron schedules
// (store_schedule_insert, _get, _list, _update, _delete), kept across a
// reopen, ids never reused, the migration from a version-9 database, and
// a failed migration that leaves one as it was.
#include "../../server/store.h"
#include "../harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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

static int64_t
insert(struct store *st, const char *name, int64_t next)
{
    struct store_schedule s = {
        .name           = (char *) name,
        .expr           = "*/5 * * * *",
        .tz             = "Europe/Berlin",
        .type           = "report",
        .queue          = "cron",
        .payload        = (uint8_t *) "{\"a\":1}",
        .payload_len    = 7,
        .priority       = 4,
        .retry          = { 5, 2000, 90000, 3.5 },
        .timeout_ms     = 60000,
        .lease_ms       = 10000,
        .overlap        = 2,
        .catch_up       = 1,
        .catch_up_limit = 50,
        .next_fire_at   = next,
        .created_at     = 1000,
        .request_id     = 77,
    };
    struct anvil_error err = { 0 };
    int64_t            id  = 0;
    assert_int_equal(store_schedule_insert(st, &s, &id, &err), ANVIL_OK);
    assert_true(id > 0);
    return id;
}

static void
reopen(struct harness_store *f)
{
    assert_int_equal(harness_store_reopen(f), 0);
}

// A version-9 database at path, as anvild wrote it before version 10,
// holding one QUEUED job.
static void
make_v9_database(const char *path)
{
    assert_int_equal(harness_store_old(path, "q",
                         HARNESS_SQL_BACK_TO_V9 "PRAGMA user_version = 9"),
        0);
}

// ---- schedules ----

static void
test_store_schedule_round_trips_every_field_across_a_reopen(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    int64_t               id  = insert(f->st, "nightly", 5000);
    reopen(f);
    struct store_schedule s = { 0 };
    assert_int_equal(
        store_schedule_get(f->st, 0, "nightly", &s, &err), ANVIL_OK);
    assert_int_equal(s.id, id);
    assert_string_equal(s.expr, "*/5 * * * *");
    assert_string_equal(s.tz, "Europe/Berlin");
    assert_string_equal(s.type, "report");
    assert_string_equal(s.queue, "cron");
    assert_int_equal(s.payload_len, 7);
    assert_memory_equal(s.payload, "{\"a\":1}", 7);
    assert_int_equal(s.priority, 4);
    assert_int_equal(s.retry.max_attempts, 5);
    assert_int_equal(s.retry.initial_backoff_ms, 2000);
    assert_int_equal(s.retry.max_backoff_ms, 90000);
    assert_true(s.retry.backoff_multiplier == 3.5);
    assert_int_equal(s.timeout_ms, 60000);
    assert_int_equal(s.lease_ms, 10000);
    assert_int_equal(s.overlap, 2);
    assert_int_equal(s.catch_up, 1);
    assert_int_equal(s.catch_up_limit, 50);
    assert_false(s.paused);
    assert_int_equal(s.next_fire_at, 5000);
    assert_int_equal(s.last_fire_at, 0);
    assert_int_equal(s.created_at, 1000);
    assert_int_equal(s.request_id, 77);

    // The state a fire writes, kept across a reopen.
    s.paused       = true;
    s.next_fire_at = 9000;
    s.last_fire_at = 5000;
    s.last_job_id  = 42;
    s.fired        = 3;
    s.skipped      = 1;
    assert_int_equal(store_schedule_update(f->st, &s, &err), ANVIL_OK);
    store_schedule_fini(&s);
    reopen(f);
    assert_int_equal(store_schedule_get(f->st, id, NULL, &s, &err), ANVIL_OK);
    assert_string_equal(s.name, "nightly");
    assert_true(s.paused);
    assert_int_equal(s.next_fire_at, 9000);
    assert_int_equal(s.last_fire_at, 5000);
    assert_int_equal(s.last_job_id, 42);
    assert_int_equal(s.fired, 3);
    assert_int_equal(s.skipped, 1);
    store_schedule_fini(&s);
    store_schedule_fini(NULL);
}

static void
test_store_schedule_list_is_by_name_and_delete_never_reuses_an_id(void **state)
{
    struct harness_store  *f   = *state;
    struct anvil_error     err = { 0 };
    struct store_schedule *v   = NULL;
    size_t                 n   = 99;
    assert_int_equal(store_schedule_list(f->st, &v, &n, &err), ANVIL_OK);
    assert_int_equal(n, 0);
    assert_null(v);
    int64_t ids[10];
    char    name[32];
    for (int i = 9; i >= 0; i--) {
        snprintf(name, sizeof(name), "s%d", i);
        ids[i] = insert(f->st, name, 100 + i);
    }
    assert_int_equal(store_schedule_list(f->st, &v, &n, &err), ANVIL_OK);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "s%zu", i);
        assert_string_equal(v[i].name, name);
        assert_int_equal(v[i].id, ids[i]);
    }
    store_schedules_free(v, n);

    assert_int_equal(store_schedule_delete(f->st, ids[0], &err), ANVIL_OK);
    assert_int_equal(
        store_schedule_delete(f->st, ids[0], &err), ANVIL_NOT_FOUND);
    struct store_schedule s = { .id = ids[0] };
    assert_int_equal(store_schedule_update(f->st, &s, &err), ANVIL_NOT_FOUND);
    assert_int_equal(
        store_schedule_get(f->st, ids[0], NULL, &s, &err), ANVIL_NOT_FOUND);
    assert_int_equal(
        store_schedule_get(f->st, 0, "s0", &s, &err), ANVIL_NOT_FOUND);
    // The newest deleted: its id is still never handed out again.
    assert_int_equal(store_schedule_delete(f->st, ids[9], &err), ANVIL_OK);
    reopen(f);
    int64_t again = insert(f->st, "s0", 1);
    for (int i = 0; i < 10; i++)
        assert_true(again > ids[i]);
}

static void
test_store_schedule_rolled_back_is_not_kept(void **state)
{
    struct harness_store  *f   = *state;
    struct anvil_error     err = { 0 };
    struct store_schedule *v   = NULL;
    size_t                 n   = 0;
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    insert(f->st, "gone", 1);
    assert_int_equal(store_rollback(f->st, &err), ANVIL_OK);
    assert_int_equal(store_schedule_list(f->st, &v, &n, &err), ANVIL_OK);
    assert_int_equal(n, 0);
}

// ---- migration ----

static void
test_store_migrates_a_version_9_database_and_a_failed_step_changes_nothing(
    void **state)
{
    struct harness_store *f = *state;
    char                  path[160];
    snprintf(path, sizeof(path), "%s/v9.db", f->dir);
    make_v9_database(path);
    // First a copy with a view where the step creates its table: the
    // failed migration leaves it as it was.
    char conflict[170];
    snprintf(conflict, sizeof(conflict), "%s/v9-conflict.db", f->dir);
    make_v9_database(conflict);
    assert_int_equal(harness_failed_migration(
                         conflict, "CREATE VIEW schedules AS SELECT 1", 9, 1),
        0);
    assert_int_equal(harness_sql_int(path,
                         "SELECT COUNT(*) FROM sqlite_master "
                         "WHERE name = 'schedules'"),
        0);

    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(store_open(path, 1, &st, &err), ANVIL_OK);
    assert_int_equal(
        harness_sql_int(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(harness_sql_int(path, "SELECT COUNT(*) FROM jobs"), 1);
    int64_t id = insert(st, "after", 10);
    store_close(st);

    // The same table a new database has.
    char sql[] = "SELECT sql FROM sqlite_master WHERE name = 'schedules'";
    char fresh[2048], migrated[2048];
    assert_int_equal(harness_sql_text(f->path, sql, fresh, sizeof(fresh)), 0);
    assert_int_equal(
        harness_sql_text(path, sql, migrated, sizeof(migrated)), 0);
    assert_string_equal(fresh, migrated);

    // A second open does not migrate again, and keeps the schedule.
    assert_int_equal(store_open(path, 1, &st, &err), ANVIL_OK);
    struct store_schedule s = { 0 };
    assert_int_equal(store_schedule_get(st, 0, "after", &s, &err), ANVIL_OK);
    assert_int_equal(s.id, id);
    store_schedule_fini(&s);
    store_close(st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_store_schedule_round_trips_every_field_across_a_reopen, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_store_schedule_list_is_by_name_and_delete_never_reuses_an_id,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_schedule_rolled_back_is_not_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_migrates_a_version_9_database_and_a_failed_step_changes_nothing,
            setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
