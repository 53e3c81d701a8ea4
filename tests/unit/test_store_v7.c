// test_store_v7.c - schema version 7 of the store: the paused queues
// (store_queue_set_paused, store_queues_paused), the migration from a
// version-6 database, and a failed migration that leaves it as it was.
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

static bool
set_paused(struct store *st, const char *queue, bool paused)
{
    struct anvil_error err     = { 0 };
    bool               changed = !paused; // overwritten on success
    assert_int_equal(
        store_queue_set_paused(st, queue, paused, 1000, &changed, &err),
        ANVIL_OK);
    return changed;
}

// The paused queues joined with ',' into buf.
static void
paused(struct store *st, char *buf, size_t len)
{
    struct anvil_error err   = { 0 };
    char             **names = NULL;
    size_t             n     = 99;
    assert_int_equal(store_queues_paused(st, &names, &n, &err), ANVIL_OK);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? "," : "",
            names[i]);
    store_names_free(names, n);
}

static void
reopen(struct harness_store *f)
{
    assert_int_equal(harness_store_reopen(f), 0);
}

// A version-6 database at path, as anvild wrote it before version 7
// (today's schema less the steps from 7 on), holding one QUEUED job.
static void
make_v6_database(const char *path)
{
    assert_int_equal(harness_store_old(path, "slow",
                         HARNESS_SQL_BACK_TO_V6 "PRAGMA user_version = 6"),
        0);
}

// ---- paused queues ----

static void
test_store_pause_is_kept_across_a_reopen_until_resumed(void **state)
{
    struct harness_store *f = *state;
    char                  buf[128];
    paused(f->st, buf, sizeof(buf));
    assert_string_equal(buf, "");
    // Any name, one no job has used included; sorted; once each.
    assert_true(set_paused(f->st, "zeta", true));
    assert_true(set_paused(f->st, "alpha", true));
    assert_false(set_paused(f->st, "zeta", true));
    reopen(f);
    paused(f->st, buf, sizeof(buf));
    assert_string_equal(buf, "alpha,zeta");
    assert_int_equal(harness_sql_int(f->path,
                         "SELECT paused_at FROM paused_queues "
                         "WHERE queue = 'zeta'"),
        1000);

    assert_true(set_paused(f->st, "zeta", false));
    assert_false(set_paused(f->st, "zeta", false)); // not paused: no change
    assert_false(set_paused(f->st, "never", false));
    reopen(f);
    paused(f->st, buf, sizeof(buf));
    assert_string_equal(buf, "alpha");
}

static void
test_store_pause_rolled_back_is_not_kept(void **state)
{
    struct harness_store *f   = *state;
    struct anvil_error    err = { 0 };
    char                  buf[64];
    assert_int_equal(store_begin(f->st, &err), ANVIL_OK);
    assert_true(set_paused(f->st, "slow", true));
    assert_int_equal(store_rollback(f->st, &err), ANVIL_OK);
    paused(f->st, buf, sizeof(buf));
    assert_string_equal(buf, "");
}

// ---- migration ----

static void
test_store_migrates_a_version_6_database_keeping_its_data(void **state)
{
    struct harness_store *f = *state;
    char                  path[160], buf[64];
    snprintf(path, sizeof(path), "%s/v6.db", f->dir);
    make_v6_database(path);
    assert_int_equal(harness_sql_int(path,
                         "SELECT COUNT(*) FROM sqlite_master "
                         "WHERE name = 'paused_queues'"),
        0);

    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(store_open(path, 1, &st, &err), ANVIL_OK);
    assert_int_equal(
        harness_sql_int(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(harness_sql_int(path,
                         "SELECT COUNT(*) FROM jobs WHERE queue = 'slow' "
                         "AND state = 3"),
        1);
    paused(st, buf, sizeof(buf));
    assert_string_equal(buf, "");
    assert_true(set_paused(st, "slow", true));
    store_close(st);

    // The same table a new database has.
    char sql[] = "SELECT sql FROM sqlite_master WHERE name = 'paused_queues'";
    char fresh[256], migrated[256];
    assert_int_equal(harness_sql_text(f->path, sql, fresh, sizeof(fresh)), 0);
    assert_int_equal(
        harness_sql_text(path, sql, migrated, sizeof(migrated)), 0);
    assert_string_equal(fresh, migrated);

    // A second open does not migrate again, and keeps the pause.
    assert_int_equal(store_open(path, 1, &st, &err), ANVIL_OK);
    paused(st, buf, sizeof(buf));
    assert_string_equal(buf, "slow");
    store_close(st);
}

static void
test_store_a_failed_migration_leaves_the_version_6_database_as_it_was(
    void **state)
{
    struct harness_store *f = *state;
    char                  path[160];
    snprintf(path, sizeof(path), "%s/v6-conflict.db", f->dir);
    make_v6_database(path);
    // Something in the way of the step's CREATE TABLE.
    assert_int_equal(harness_failed_migration(
                         path, "CREATE VIEW paused_queues AS SELECT 1", 6, 1),
        0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_store_pause_is_kept_across_a_reopen_until_resumed, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_store_pause_rolled_back_is_not_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_migrates_a_version_6_database_keeping_its_data, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_store_a_failed_migration_leaves_the_version_6_database_as_it_was,
            setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
