// test_store_v12.c - schema version 12 of the store: a schedule's workflow
// template (store_schedule.workflow) kept across a reopen next to job
// templates, the migration from a version-11 database (its schedules keep
// their job templates), and a failed migration that leaves one as it was.
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

// Any bytes do: the store keeps the template opaque (flowspec.c packs it).
static const uint8_t TEMPLATE[] = { 0x0a, 0x03, 'e', 't', 'l', 0x00, 0xff };

static int64_t
insert(struct store *st, const char *name, bool workflow)
{
    struct store_schedule s = {
        .name         = (char *) name,
        .expr         = "@every 1s",
        .tz           = "UTC",
        .type         = workflow ? "" : "report",
        .queue        = workflow ? "" : "default",
        .payload      = (uint8_t *) "",
        .overlap      = 1,
        .next_fire_at = 5000,
        .created_at   = 1000,
        .workflow     = workflow ? (uint8_t *) TEMPLATE : NULL,
        .workflow_len = workflow ? sizeof(TEMPLATE) : 0,
    };
    struct anvil_error err = { 0 };
    int64_t            id  = 0;
    assert_int_equal(store_schedule_insert(st, &s, &id, &err), ANVIL_OK);
    return id;
}

static void
check(struct store *st, const char *name, bool workflow)
{
    struct anvil_error    err = { 0 };
    struct store_schedule s   = { 0 };
    assert_int_equal(store_schedule_get(st, 0, name, &s, &err), ANVIL_OK);
    if (workflow) {
        assert_non_null(s.workflow);
        assert_int_equal(s.workflow_len, sizeof(TEMPLATE));
        assert_memory_equal(s.workflow, TEMPLATE, sizeof(TEMPLATE));
        assert_string_equal(s.type, "");
    } else {
        assert_null(s.workflow);
        assert_int_equal(s.workflow_len, 0);
        assert_string_equal(s.type, "report");
    }
    store_schedule_fini(&s);
}

static void
test_store_schedule_workflow_template_round_trips_across_a_reopen(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    int64_t               id  = insert(f->st, "etl", true);
    insert(f->st, "job", false);
    assert_int_equal(harness_store_reopen(f), 0);
    check(f->st, "etl", true);
    check(f->st, "job", false);

    // A fire's update (its last workflow in last_job_id) keeps the template.
    struct store_schedule s = { 0 };
    assert_int_equal(store_schedule_get(f->st, id, NULL, &s, &err), ANVIL_OK);
    s.last_job_id  = 9;
    s.last_fire_at = 5000;
    s.fired        = 1;
    assert_int_equal(store_schedule_update(f->st, &s, &err), ANVIL_OK);
    store_schedule_fini(&s);
    assert_int_equal(harness_store_reopen(f), 0);
    check(f->st, "etl", true);

    struct store_schedule *v = NULL;
    size_t                 n = 0;
    assert_int_equal(store_schedule_list(f->st, &v, &n, &err), ANVIL_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].name, "etl");
    assert_int_equal(v[0].last_job_id, 9);
    assert_int_equal(v[0].workflow_len, sizeof(TEMPLATE));
    assert_null(v[1].workflow);
    store_schedules_free(v, n);
}

// ---- migration ----

static void
make_v11_database(const char *path)
{
    assert_int_equal(harness_store_old(path, "q",
                         HARNESS_SQL_BACK_TO_V11 "PRAGMA user_version = 11"),
        0);
}

static void
test_store_migrates_a_version_11_database_and_a_failed_step_changes_nothing(
    void **state)
{
    struct harness_store *f = *state;
    char                  path[160];
    snprintf(path, sizeof(path), "%s/v11.db", f->dir);
    make_v11_database(path);
    assert_int_equal(harness_sql_int(path,
                         "SELECT COUNT(*) FROM pragma_table_info('schedules') "
                         "WHERE name = 'workflow'"),
        0);
    // A schedule from before: the job template it had.
    assert_int_equal(harness_sql_exec(path,
                         "INSERT INTO schedules(name, expr, tz, type, queue, "
                         "payload, priority, max_attempts, backoff_initial_ms, "
                         "backoff_max_ms, backoff_multiplier, timeout_ms, "
                         "lease_ms, overlap, catch_up, catch_up_limit, "
                         "next_fire_at, created_at) VALUES('old', '@daily', "
                         "'UTC', 'report', 'default', x'', 0, 3, 1000, 60000, "
                         "2.0, 0, 0, 0, 0, 0, 86400000, 1)"),
        0);

    // A copy where the column is there already: the step fails and leaves
    // the database as it was.
    char conflict[170];
    snprintf(conflict, sizeof(conflict), "%s/v11-conflict.db", f->dir);
    make_v11_database(conflict);
    assert_int_equal(
        harness_failed_migration(
            conflict, "ALTER TABLE schedules ADD COLUMN workflow TEXT", 11, 1),
        0);

    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(store_open(path, 1, &st, &err), ANVIL_OK);
    assert_int_equal(
        harness_sql_int(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(harness_sql_int(path, "SELECT COUNT(*) FROM jobs"), 1);
    check(st, "old", false);
    insert(st, "new", true);
    store_close(st);

    // The same table a new database has.
    char sql[] = "SELECT sql FROM sqlite_master WHERE name = 'schedules'";
    char fresh[2048], migrated[2048];
    assert_int_equal(harness_sql_text(f->path, sql, fresh, sizeof(fresh)), 0);
    assert_int_equal(
        harness_sql_text(path, sql, migrated, sizeof(migrated)), 0);
    assert_string_equal(fresh, migrated);

    assert_int_equal(store_open(path, 1, &st, &err), ANVIL_OK);
    check(st, "old", false);
    check(st, "new", true);
    store_close(st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_store_schedule_workflow_template_round_trips_across_a_reopen,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_migrates_a_version_11_database_and_a_failed_step_changes_nothing,
            setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
