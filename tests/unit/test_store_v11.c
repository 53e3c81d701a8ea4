// test_store_v11.c - schema version 11 of the store: queue rate limits
// (store_queue_limit_set, _save, store_queue_limits), kept across a
// reopen, the migration from a version-10 database, and a failed
// migration that leaves one as it was.
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

static void
set(struct store *st, const char *queue, double rate, uint32_t burst,
    double tokens, int64_t at)
{
    struct store_queue_limit l   = { (char *) queue, rate, burst, tokens, at };
    struct anvil_error       err = { 0 };
    assert_int_equal(store_queue_limit_set(st, &l, &err), ANVIL_OK);
}

static void
expect(const struct store_queue_limit *l, const char *queue, double rate,
    uint32_t burst, double tokens, int64_t at)
{
    assert_string_equal(l->queue, queue);
    assert_true(l->rate == rate);
    assert_int_equal(l->burst, burst);
    assert_true(l->tokens == tokens);
    assert_int_equal(l->at, at);
}

static void
test_store_queue_limits_are_set_saved_removed_and_kept_across_a_reopen(
    void **state)
{
    struct harness_store     *f   = *state;
    struct anvil_error        err = { 0 };
    struct store_queue_limit *v   = NULL;
    size_t                    n   = 9;
    assert_int_equal(store_queue_limits(f->st, &v, &n, &err), ANVIL_OK);
    assert_int_equal(n, 0);
    assert_null(v);

    set(f->st, "mail", 50, 5, 5, 1000);
    set(f->st, "alpha", 0.5, 1, 1, 2000);
    set(f->st, "mail", 20, 2, 2, 3000); // replaces
    // Leases took from mail; a queue with no limit writes nothing.
    assert_int_equal(
        store_queue_limit_save(f->st, "mail", 0.25, 4000, &err), ANVIL_OK);
    assert_int_equal(
        store_queue_limit_save(f->st, "none", 3, 4000, &err), ANVIL_OK);
    assert_int_equal(harness_store_reopen(f), 0);

    assert_int_equal(store_queue_limits(f->st, &v, &n, &err), ANVIL_OK);
    assert_int_equal(n, 2);
    expect(&v[0], "alpha", 0.5, 1, 1, 2000);
    expect(&v[1], "mail", 20, 2, 0.25, 4000);
    store_queue_limits_free(v, n);

    struct store_queue_limit off = { .queue = "alpha" };
    assert_int_equal(store_queue_limit_set(f->st, &off, &err), ANVIL_OK);
    assert_int_equal(store_queue_limits(f->st, &v, &n, &err), ANVIL_OK);
    assert_int_equal(n, 1);
    expect(&v[0], "mail", 20, 2, 0.25, 4000);
    store_queue_limits_free(v, n);
}

// A version-10 database at path, as anvild wrote it before version 11,
// holding one QUEUED job.
static void
make_v10_database(const char *path)
{
    assert_int_equal(harness_store_old(path, "q",
                         HARNESS_SQL_BACK_TO_V10 "PRAGMA user_version = 10"),
        0);
}

static void
test_store_migrates_a_version_10_database_and_a_failed_step_changes_nothing(
    void **state)
{
    struct harness_store *f = *state;
    char                  path[160], conflict[170];
    snprintf(path, sizeof(path), "%s/v10.db", f->dir);
    snprintf(conflict, sizeof(conflict), "%s/v10-conflict.db", f->dir);
    make_v10_database(path);
    make_v10_database(conflict);
    assert_int_equal(harness_failed_migration(conflict,
                         "CREATE VIEW queue_limits AS SELECT 1", 10, 1),
        0);

    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(store_open(path, 1, &st, &err), ANVIL_OK);
    assert_int_equal(
        harness_sql_int(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(harness_sql_int(path, "SELECT COUNT(*) FROM jobs"), 1);
    set(st, "q", 1, 1, 1, 1);
    store_close(st);

    // The same table a new database has.
    char sql[] = "SELECT sql FROM sqlite_master WHERE name = 'queue_limits'";
    char fresh[1024], migrated[1024];
    assert_int_equal(harness_sql_text(f->path, sql, fresh, sizeof(fresh)), 0);
    assert_int_equal(
        harness_sql_text(path, sql, migrated, sizeof(migrated)), 0);
    assert_string_equal(fresh, migrated);
    assert_int_equal(
        harness_sql_int(path, "SELECT COUNT(*) FROM queue_limits"), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_store_queue_limits_are_set_saved_removed_and_kept_across_a_reopen,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_migrates_a_version_10_database_and_a_failed_step_changes_nothing,
            setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
