// test_handler_sleep.c - the Sleep payload parser and its printing.
//
// The handlers themselves run under the worker runtime in
// test_worker_runtime.c (echo and Sleep against a fake server): a job ctx
// exists only inside a running worker.

// cmocka.h needs these first.
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include "../../worker/handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char seconds_msg[]
    = "Sleep: \"SleepTimeInSeconds\" must be a number of seconds between 0 "
      "and 86400";

// Parses s; on success checks *ms and the message.
static void
expect_ok(const char *s, int64_t want_ms, const char *want_msg)
{
    int64_t            ms  = -1;
    char              *msg = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(handler_sleep_parse(s, strlen(s), &ms, &msg, &err), 0);
    assert_int_equal(ms, want_ms);
    assert_non_null(msg);
    assert_string_equal(msg, want_msg);
    free(msg);
}

// Parses s; checks it fails with exactly want (or containing it if !exact).
static void
expect_bad(const char *s, size_t len, const char *want, bool exact)
{
    int64_t            ms  = -1;
    char              *msg = (char *) "untouched";
    struct anvil_error err = { 0 };
    assert_int_equal(
        handler_sleep_parse(s, len, &ms, &msg, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(err.code, ANVIL_INVALID_ARGUMENT);
    assert_null(msg);
    if (exact)
        assert_string_equal(err.msg, want);
    else
        assert_non_null(strstr(err.msg, want));
}

static void
test_sleep_parse_accepts_the_seed_payload(void **state)
{
    (void) state;
    expect_ok("{\"SleepTimeInSeconds\": 10, \"Message\": \"Hello World\"}",
        10000, "Hello World");
}

static void
test_sleep_parse_accepts_fractions_zero_and_the_maximum(void **state)
{
    (void) state;
    expect_ok("{\"SleepTimeInSeconds\": 0.25, \"Message\": \"q\"}", 250, "q");
    expect_ok("{\"SleepTimeInSeconds\": 0, \"Message\": \"\"}", 0, "");
    expect_ok("{\"SleepTimeInSeconds\": 86400, \"Message\": \"day\"}", 86400000,
        "day");
    expect_ok("{\"SleepTimeInSeconds\": 1e-3, \"Message\": \"ms\"}", 1, "ms");
}

static void
test_sleep_parse_defaults_a_missing_message_to_empty(void **state)
{
    (void) state;
    expect_ok("{\"SleepTimeInSeconds\": 1}", 1000, "");
    expect_ok("{\"Message\": \"x\", \"SleepTimeInSeconds\": 2, \"Extra\": 1}",
        2000, "x");
}

static void
test_sleep_parse_keeps_unicode_and_escapes_in_the_message(void **state)
{
    (void) state;
    expect_ok(
        "{\"SleepTimeInSeconds\": 0, \"Message\": \"caf\\u00e9 \\\"q\\\"\"}", 0,
        "caf\xc3\xa9 \"q\"");
}

static void
test_sleep_parse_rejects_missing_or_mistyped_seconds(void **state)
{
    (void) state;
    const char *bad[] = {
        "{\"Message\": \"no seconds\"}",
        "{\"SleepTimeInSeconds\": \"10\", \"Message\": \"x\"}",
        "{\"SleepTimeInSeconds\": true}",
        "{\"SleepTimeInSeconds\": null}",
        "{\"SleepTimeInSeconds\": [1]}",
        "{\"sleeptimeinseconds\": 1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_bad(bad[i], strlen(bad[i]), seconds_msg, true);
}

static void
test_sleep_parse_rejects_seconds_out_of_range(void **state)
{
    (void) state;
    const char *bad[] = {
        "{\"SleepTimeInSeconds\": -1}",
        "{\"SleepTimeInSeconds\": -0.001}",
        "{\"SleepTimeInSeconds\": 86400.5}",
        "{\"SleepTimeInSeconds\": 1e300}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_bad(bad[i], strlen(bad[i]), seconds_msg, true);
}

static void
test_sleep_parse_rejects_a_message_that_is_not_a_string(void **state)
{
    (void) state;
    const char *bad[] = {
        "{\"SleepTimeInSeconds\": 1, \"Message\": 5}",
        "{\"SleepTimeInSeconds\": 1, \"Message\": null}",
        "{\"SleepTimeInSeconds\": 1, \"Message\": {\"a\": 1}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_bad(bad[i], strlen(bad[i]),
            "Sleep: \"Message\" must be a string", true);
}

static void
test_sleep_parse_rejects_payloads_that_are_not_a_json_object(void **state)
{
    (void) state;
    expect_bad("", 0, "Sleep: payload is not JSON", false);
    expect_bad(NULL, 0, "Sleep: payload is not JSON", false);
    expect_bad(
        "{\"SleepTimeInSeconds\": 1", 24, "Sleep: payload is not JSON", false);
    expect_bad("Hello World", 11, "Sleep: payload is not JSON", false);
    expect_bad("[10, \"x\"]", 9, "Sleep: payload must be a JSON object", false);
    expect_bad("10", 2, "Sleep: payload", false);
    // Duplicate keys are ambiguous: which sleep did the sender mean?
    const char *dup = "{\"SleepTimeInSeconds\": 1, \"SleepTimeInSeconds\": 2}";
    expect_bad(dup, strlen(dup), "Sleep: payload is not JSON", false);
}

static void
test_sleep_parse_reads_only_len_bytes(void **state)
{
    (void) state;
    const char *s = "{\"SleepTimeInSeconds\": 3}trailing garbage";
    int64_t     ms;
    char       *msg = NULL;
    assert_int_equal(handler_sleep_parse(s, 25, &ms, &msg, NULL), 0);
    assert_int_equal(ms, 3000);
    free(msg);
    expect_bad(s, strlen(s), "Sleep: payload is not JSON", false);
}

static void
test_sleep_print_writes_one_line_per_message(void **state)
{
    (void) state;
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(handler_sleep_print(f, "Hello World"), 0);
    assert_int_equal(handler_sleep_print(f, ""), 0);
    assert_int_equal(handler_sleep_print(f, "two"), 0);
    char buf[64] = "";
    rewind(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    assert_int_equal(n, strlen("Hello World\n\ntwo\n"));
    assert_string_equal(buf, "Hello World\n\ntwo\n");
}

static void
test_sleep_print_reports_a_failed_write(void **state)
{
    (void) state;
    FILE *f = fopen("/dev/full", "w");
    if (f == NULL)
        skip();
    assert_int_equal(handler_sleep_print(f, "lost"), -1);
    fclose(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sleep_parse_accepts_the_seed_payload),
        cmocka_unit_test(
            test_sleep_parse_accepts_fractions_zero_and_the_maximum),
        cmocka_unit_test(test_sleep_parse_defaults_a_missing_message_to_empty),
        cmocka_unit_test(
            test_sleep_parse_keeps_unicode_and_escapes_in_the_message),
        cmocka_unit_test(test_sleep_parse_rejects_missing_or_mistyped_seconds),
        cmocka_unit_test(test_sleep_parse_rejects_seconds_out_of_range),
        cmocka_unit_test(
            test_sleep_parse_rejects_a_message_that_is_not_a_string),
        cmocka_unit_test(
            test_sleep_parse_rejects_payloads_that_are_not_a_json_object),
        cmocka_unit_test(test_sleep_parse_reads_only_len_bytes),
        cmocka_unit_test(test_sleep_print_writes_one_line_per_message),
        cmocka_unit_test(test_sleep_print_reports_a_failed_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
