// test_store_v9.c - schema version 9 of the store: a job's concurrency key
// and limit, stored with it, read back by store_job_get, store_job_brief
// and store_scan_active; and the migration from a version-8 database.
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

// A QUEUED job of type "t" with concurrency key ckey (NULL = none).
static int64_t
insert(struct store *st, const char *ckey, uint32_t limit)
{
    struct store_new_job nj = { .type = "t", .queue = "q" };
    nj.payload              = (const uint8_t *) "";
    nj.state                = ANVIL_JOB_QUEUED;
    nj.retry                = (struct retry_policy) { 3, 1000, 60000, 2.0 };
    nj.created_at = nj.run_at = 10;
    nj.concurrency_key        = ckey;
    nj.concurrency_limit      = limit;
    struct anvil_error err    = { 0 };
    int64_t            id     = 0;
    assert_int_equal(store_job_insert(st, &nj, &id, &err), ANVIL_OK);
    return id;
}

static void
expect_key(struct store *st, int64_t id, const char *ckey, uint32_t limit)
{
    struct job             j   = { 0 };
    struct store_job_brief br  = { 0 };
    struct anvil_error     err = { 0 };
    assert_int_equal(store_job_get(st, id, &j, &err), ANVIL_OK);
    assert_string_equal(j.concurrency_key, ckey);
    assert_int_equal(j.concurrency_limit, limit);
    job_fini(&j);
    assert_int_equal(store_job_brief(st, id, &br, &err), ANVIL_OK);
    assert_string_equal(br.concurrency_key, ckey);
    assert_int_equal(br.concurrency_limit, limit);
}

struct seen {
    int64_t  id;
    char     key[64];
    uint32_t limit;
    int      n;
};

static int
scan_one(void *arg, const struct job *j)
{
    struct seen *s = arg;
    if (j->id == s->id) {
        snprintf(s->key, sizeof(s->key), "%s", j->concurrency_key);
        s->limit = j->concurrency_limit;
    }
    s->n++;
    return ANVIL_OK;
}

static void
test_store_keeps_a_jobs_concurrency_key_and_limit(void **state)
{
    struct harness_store *f     = *state;
    int64_t               keyed = insert(f->st, "tenant-7", 2);
    int64_t               plain = insert(f->st, NULL, 0);
    expect_key(f->st, keyed, "tenant-7", 2);
    expect_key(f->st, plain, "", 0);
    struct seen        s   = { .id = keyed };
    struct anvil_error err = { 0 };
    assert_int_equal(store_scan_active(f->st, scan_one, &s, &err), ANVIL_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.key, "tenant-7");
    assert_int_equal(s.limit, 2);
}

static void
test_store_migrates_a_version_8_database_adding_concurrency(void **state)
{
    struct harness_store *f  = *state;
    int64_t               id = insert(f->st, NULL, 0);
    store_close(f->st);
    f->st = NULL;
    // Version 8: today's schema without version 9's columns.
    assert_int_equal(harness_sql_exec(f->path,
                         HARNESS_SQL_BACK_TO_V8 "PRAGMA user_version = 8;"),
        0);
    assert_int_equal(harness_sql_int(f->path,
                         "SELECT COUNT(*) FROM pragma_table_info('jobs') "
                         "WHERE name LIKE 'concurrency%'"),
        0);
    struct anvil_error err = { 0 };
    assert_int_equal(store_open(f->path, 1, &f->st, &err), ANVIL_OK);
    assert_int_equal(
        harness_sql_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    // The old row has no key; new rows take one.
    expect_key(f->st, id, "", 0);
    int64_t keyed = insert(f->st, "k", 5);
    expect_key(f->st, keyed, "k", 5);
    // Reopening a migrated database migrates nothing more.
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(store_open(f->path, 1, &f->st, &err), ANVIL_OK);
    expect_key(f->st, keyed, "k", 5);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_store_keeps_a_jobs_concurrency_key_and_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_migrates_a_version_8_database_adding_concurrency, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
