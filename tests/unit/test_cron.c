// test_cron.c - cron expressions (server/cron.c) and time zones
// (server/tz.c): every field form (values, lists, ranges, steps, names,
// `*`), the macros, @every, the errors naming field and value, expressions
// that never fire, and the next fire time in UTC and across both daylight
// saving transitions of America/New_York and Europe/Berlin.
#include "../../server/cron.h"
#include "../../server/tz.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

// ---- helpers ----

static struct cron
parse_ok(const char *expr)
{
    struct cron        c;
    struct anvil_error err = { 0 };
    int                rc  = cron_parse(expr, &c, &err);
    if (rc != ANVIL_OK)
        fail_msg("'%s': %s", expr, err.msg);
    return c;
}

static void
parse_bad(const char *expr, const char *want)
{
    struct cron        c;
    struct anvil_error err = { 0 };
    assert_int_equal(cron_parse(expr, &c, &err), ANVIL_INVALID_ARGUMENT);
    if (strstr(err.msg, want) == NULL)
        fail_msg("'%s': message '%s' lacks '%s'", expr, err.msg, want);
}

// "YYYY-MM-DDTHH:MM:SSZ" -> epoch ms.
static int64_t
at(const char *s)
{
    int y, mo, d, h, mi, sec;
    assert_int_equal(
        sscanf(s, "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &sec), 6);
    return (tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec)
        * 1000;
}

static char *
fmt(int64_t ms, char *buf)
{
    int64_t s    = ms / 1000;
    int64_t days = s / 86400, y;
    int     m, d;
    tz_civil_from_days(days, &y, &m, &d);
    sprintf(buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int) y, m, d,
        (int) (s % 86400 / 3600), (int) (s % 3600 / 60), (int) (s % 60));
    return buf;
}

// Checks the fire times after `from` in zone (NULL = UTC) one by one.
static void
expect_next(const char *expr, const char *zone, const char *from,
    const char *const *want, size_t n)
{
    struct cron        c   = parse_ok(expr);
    struct tz         *z   = NULL;
    struct anvil_error err = { 0 };
    if (zone != NULL)
        assert_int_equal(tz_load(zone, &z, &err), ANVIL_OK);
    int64_t t = at(from);
    for (size_t i = 0; i < n; i++) {
        char got[32];
        assert_int_equal(cron_next(&c, z, t, &t), 0);
        if (strcmp(fmt(t, got), want[i]) != 0)
            fail_msg("'%s' in %s, fire %zu: got %s, want %s", expr,
                zone ? zone : "UTC", i, got, want[i]);
    }
    tz_free(z);
}

#define EXPECT(expr, zone, from, ...)                                  \
    do {                                                               \
        static const char *const w_[] = { __VA_ARGS__ };               \
        expect_next(expr, zone, from, w_, sizeof(w_) / sizeof(w_[0])); \
    } while (0)

// ---- parsing ----

static void
test_cron_parses_every_field_form(void **state)
{
    (void) state;
    struct cron c = parse_ok("*/15 0-6/2 1,15,31 * *");
    assert_true(c.minutes == (1ULL | 1ULL << 15 | 1ULL << 30 | 1ULL << 45));
    assert_int_equal(c.hours, 1u | 1u << 2 | 1u << 4 | 1u << 6);
    assert_int_equal(c.days, 1u << 1 | 1u << 15 | 1u << 31);
    assert_int_equal(c.months, 0x1ffe);
    assert_int_equal(c.wdays, 0x7f);
    assert_true(c.wdays_star);
    assert_false(c.days_star);
    c = parse_ok("5/20 23 * 1-3,12 1-5");
    assert_true(c.minutes == (1ULL << 5 | 1ULL << 25 | 1ULL << 45));
    assert_int_equal(c.hours, 1u << 23);
    assert_int_equal(c.months, 1u << 1 | 1u << 2 | 1u << 3 | 1u << 12);
    assert_int_equal(c.wdays, 0x3e);
    assert_int_equal(c.every_ms, 0);
}

static void
test_cron_parses_month_and_day_names_in_any_case(void **state)
{
    (void) state;
    struct cron c = parse_ok("0 9 * jan,MAR-May Mon-FRI");
    assert_int_equal(c.months, 1u << 1 | 1u << 3 | 1u << 4 | 1u << 5);
    assert_int_equal(c.wdays, 0x3e);
    c = parse_ok("0 0 * DEC sun");
    assert_int_equal(c.months, 1u << 12);
    assert_int_equal(c.wdays, 1u);
    c = parse_ok("0 0 * * 7"); // 7 is Sunday too
    assert_int_equal(c.wdays, 1u);
    c = parse_ok("0 0 * * 5-7");
    assert_int_equal(c.wdays, 1u | 1u << 5 | 1u << 6);
}

static void
test_cron_parses_the_macros(void **state)
{
    (void) state;
    static const char *const pairs[][2] = {
        { "@yearly", "0 0 1 1 *" },
        { "@annually", "0 0 1 1 *" },
        { "@monthly", "0 0 1 * *" },
        { "@weekly", "0 0 * * 0" },
        { "@daily", "0 0 * * *" },
        { "@midnight", "0 0 * * *" },
        { "@hourly", "0 * * * *" },
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        struct cron a = parse_ok(pairs[i][0]), b = parse_ok(pairs[i][1]);
        assert_memory_equal(&a, &b, sizeof(a));
    }
}

static void
test_cron_parses_every_durations(void **state)
{
    (void) state;
    assert_int_equal(parse_ok("@every 30s").every_ms, 30000);
    assert_int_equal(parse_ok("@every 1s").every_ms, 1000);
    assert_int_equal(parse_ok("@every 1500ms").every_ms, 1500);
    assert_int_equal(parse_ok("@every 1h30m").every_ms, 5400000);
    assert_int_equal(parse_ok("@every 2d").every_ms, 172800000);
    assert_int_equal(parse_ok("  @every 15m").every_ms, 900000);
}

static void
test_cron_rejects_bad_fields_naming_field_and_value(void **state)
{
    (void) state;
    parse_bad("60 * * * *", "minute: value 60 is out of range 0-59");
    parse_bad("* 24 * * *", "hour: value 24 is out of range 0-23");
    parse_bad("* * 0 * *", "day-of-month: value 0 is out of range 1-31");
    parse_bad("* * 32 * *", "day-of-month: value 32");
    parse_bad("* * * 13 *", "month: value 13 is out of range 1-12");
    parse_bad("* * * * 8", "day-of-week: value 8 is out of range 0-7");
    parse_bad("* * * FOO *", "month: unknown name 'FOO'");
    parse_bad("* * * * MONDAY", "day-of-week: unknown name 'MONDAY'");
    parse_bad("* JAN * * *", "hour: unknown name 'JAN'");
    parse_bad("5-1 * * * *", "minute: range 5-1 runs backwards");
    parse_bad("*/0 * * * *", "minute: step in '*/0' must be 1-59");
    parse_bad("*/x * * * *", "minute: step in '*/x'");
    parse_bad("1,,2 * * * *", "minute: empty item");
    parse_bad("1- * * * *", "minute: expected a number at '(end)'");
    parse_bad("** * * * *", "minute: cannot read '**'");
    parse_bad("* * * *", "has 5 fields");
    parse_bad("0 * * * * *", "seconds are not supported");
    parse_bad("", "empty");
    parse_bad("@fortnightly", "unknown cron macro '@fortnightly'");
    parse_bad("@daily 5", "unknown cron macro");
    parse_bad("@every", "cannot read duration");
    parse_bad("@every 500ms", "shorter than the minimum of 1s");
    parse_bad("@every 0s", "shorter than the minimum of 1s");
    parse_bad("@every 10x", "cannot read duration '10x'");
    parse_bad("@every 400d", "longer than 366 days");
    parse_bad("@every -5s", "cannot read duration");
}

static void
test_cron_rejects_expressions_that_never_fire(void **state)
{
    (void) state;
    parse_bad("0 0 31 2 *", "never fires");
    parse_bad("0 0 30 2 *", "never fires");
    parse_bad("0 0 31 4,6,9,11 *", "never fires");
    // A day-of-week makes either day field enough; the 29th of February
    // comes every four years.
    parse_ok("0 0 31 2 MON");
    parse_ok("0 0 29 2 *");
    parse_ok("0 0 30,31 2,3 *");
}

// ---- next fire time, UTC ----

static void
test_cron_next_steps_through_minutes_hours_and_days(void **state)
{
    (void) state;
    EXPECT("*/15 * * * *", NULL, "2025-01-01T10:07:30Z", "2025-01-01T10:15:00Z",
        "2025-01-01T10:30:00Z", "2025-01-01T10:45:00Z", "2025-01-01T11:00:00Z");
    EXPECT("0 9 * * MON-FRI", NULL, "2025-01-03T09:00:00Z", // a Friday
        "2025-01-06T09:00:00Z", "2025-01-07T09:00:00Z");
    EXPECT("30 23 31 * *", NULL, "2025-01-31T23:30:00Z", "2025-03-31T23:30:00Z",
        "2025-05-31T23:30:00Z");
    EXPECT("@yearly", NULL, "2025-06-01T00:00:00Z", "2026-01-01T00:00:00Z",
        "2027-01-01T00:00:00Z");
    EXPECT("0 0 29 2 *", NULL, "2025-01-01T00:00:00Z", "2028-02-29T00:00:00Z",
        "2032-02-29T00:00:00Z");
    // Both day fields restricted: either matches (the 13th or a Friday).
    EXPECT("0 12 13 * FRI", NULL, "2025-06-05T00:00:00Z",
        "2025-06-06T12:00:00Z", "2025-06-13T12:00:00Z", "2025-06-20T12:00:00Z");
    EXPECT("@hourly", NULL, "2025-12-31T23:00:00Z", "2026-01-01T00:00:00Z");
}

static void
test_cron_next_of_every_adds_the_interval(void **state)
{
    (void) state;
    struct cron c = parse_ok("@every 30s");
    int64_t     n = 0;
    assert_int_equal(cron_next(&c, NULL, 1234, &n), 0);
    assert_int_equal(n, 31234);
}

// ---- next fire time across daylight saving time ----

static void
test_cron_next_in_new_york_skips_the_spring_gap_once(void **state)
{
    (void) state;
    // 2025-03-09 02:00 EST -> 03:00 EDT (07:00Z). 02:30 does not exist:
    // it fires at 03:00 EDT, once.
    EXPECT("30 2 * * *", "America/New_York", "2025-03-08T00:00:00Z",
        "2025-03-08T07:30:00Z", "2025-03-09T07:00:00Z", "2025-03-10T06:30:00Z");
    // Every minute: 01:59 EST, then the gap's minutes collapse into 03:00
    // EDT, then 03:01.
    EXPECT("* * * * *", "America/New_York", "2025-03-09T06:58:30Z",
        "2025-03-09T06:59:00Z", "2025-03-09T07:00:00Z", "2025-03-09T07:01:00Z");
    EXPECT("0,30 * * * *", "America/New_York", "2025-03-09T06:15:00Z",
        "2025-03-09T06:30:00Z", "2025-03-09T07:00:00Z", "2025-03-09T07:30:00Z");
}

static void
test_cron_next_in_new_york_fires_a_repeated_time_once(void **state)
{
    (void) state;
    // 2025-11-02 02:00 EDT -> 01:00 EST (06:00Z): 01:30 happens at 05:30Z
    // and again at 06:30Z; it fires at the first only.
    EXPECT("30 1 * * *", "America/New_York", "2025-11-01T12:00:00Z",
        "2025-11-02T05:30:00Z", "2025-11-03T06:30:00Z");
    EXPECT("30 * * * *", "America/New_York", "2025-11-02T04:00:00Z",
        "2025-11-02T04:30:00Z", "2025-11-02T05:30:00Z", "2025-11-02T07:30:00Z");
}

static void
test_cron_next_in_berlin_across_both_transitions(void **state)
{
    (void) state;
    // 2025-03-30 02:00 CET -> 03:00 CEST (01:00Z).
    EXPECT("15 2 * * *", "Europe/Berlin", "2025-03-29T00:00:00Z",
        "2025-03-29T01:15:00Z", "2025-03-30T01:00:00Z", "2025-03-31T00:15:00Z");
    // 2025-10-26 03:00 CEST -> 02:00 CET (01:00Z): 02:15 at 00:15Z only.
    EXPECT("15 2 * * *", "Europe/Berlin", "2025-10-25T12:00:00Z",
        "2025-10-26T00:15:00Z", "2025-10-27T01:15:00Z");
    EXPECT("@daily", "Europe/Berlin", "2025-10-25T12:00:00Z",
        "2025-10-25T22:00:00Z", "2025-10-26T23:00:00Z");
}

static void
test_cron_next_uses_the_zone_rule_after_the_last_transition(void **state)
{
    (void) state;
    // Past 2037, Debian's files stop listing transitions: the footer rule
    // (M3.2.0, M11.1.0) takes over.
    EXPECT("30 2 * * *", "America/New_York", "2040-03-10T12:00:00Z",
        "2040-03-11T07:00:00Z", "2040-03-12T06:30:00Z");
    EXPECT("0 12 1 7 *", "Europe/Berlin", "2050-01-01T00:00:00Z",
        "2050-07-01T10:00:00Z");
}

static void
test_tz_rejects_unknown_and_malformed_zones(void **state)
{
    (void) state;
    struct tz         *z   = NULL;
    struct anvil_error err = { 0 };
    assert_int_equal(tz_load("Mars/Olympus", &z, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "unknown time zone 'Mars/Olympus'"));
    assert_int_equal(
        tz_load("../../etc/passwd", &z, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "not an IANA zone name"));
    assert_int_equal(tz_load("/etc/passwd", &z, &err), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(tz_load("America", &z, &err), ANVIL_INVALID_ARGUMENT);
    assert_null(z);
    assert_int_equal(tz_load("UTC", &z, &err), ANVIL_OK);
    assert_int_equal(tz_offset(z, 0), 0);
    tz_free(z);
    assert_int_equal(tz_load("Asia/Kolkata", &z, &err), ANVIL_OK);
    assert_int_equal(tz_offset(z, at("2025-01-01T00:00:00Z") / 1000), 19800);
    tz_free(z);
    tz_free(NULL);
}

// A minimal version-1 TZif file: one zone type of offset `off` seconds,
// no transitions.
static size_t
tzif_v1(uint8_t *buf, int32_t off)
{
    memset(buf, 0, 60);
    memcpy(buf, "TZif", 4);
    buf[20 + 4 * 4 + 3] = 1; // typecnt
    buf[20 + 5 * 4 + 3] = 4; // charcnt
    uint32_t u          = (uint32_t) off;
    for (int i = 0; i < 4; i++)
        buf[44 + i] = (uint8_t) (u >> (24 - 8 * i));
    memcpy(buf + 50, "ABC", 4); // the designation
    return 54;
}

static void
test_tz_parse_reads_a_tzif_file_and_refuses_bad_bytes_and_offsets(void **state)
{
    (void) state;
    uint8_t    buf[64];
    struct tz *z = NULL;
    assert_int_equal(tz_parse(buf, tzif_v1(buf, 3600), &z), 0);
    assert_int_equal(tz_offset(z, 0), 3600);
    tz_free(z);
    // RFC 8536's range is -24:59:59..+25:59:59.
    assert_int_equal(tz_parse(buf, tzif_v1(buf, 93599), &z), 0);
    tz_free(z);
    assert_int_equal(tz_parse(buf, tzif_v1(buf, 93600), &z), -1);
    assert_int_equal(tz_parse(buf, tzif_v1(buf, -90000), &z), -1);
    assert_null(z);
    size_t n = tzif_v1(buf, 0);
    assert_int_equal(tz_parse(buf, n - 1, &z), -1); // truncated
    buf[0] = 'X';
    assert_int_equal(tz_parse(buf, n, &z), -1); // not TZif
    assert_int_equal(tz_parse(buf, 0, &z), -1);
    assert_null(z);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cron_parses_every_field_form),
        cmocka_unit_test(test_cron_parses_month_and_day_names_in_any_case),
        cmocka_unit_test(test_cron_parses_the_macros),
        cmocka_unit_test(test_cron_parses_every_durations),
        cmocka_unit_test(test_cron_rejects_bad_fields_naming_field_and_value),
        cmocka_unit_test(test_cron_rejects_expressions_that_never_fire),
        cmocka_unit_test(test_cron_next_steps_through_minutes_hours_and_days),
        cmocka_unit_test(test_cron_next_of_every_adds_the_interval),
        cmocka_unit_test(test_cron_next_in_new_york_skips_the_spring_gap_once),
        cmocka_unit_test(test_cron_next_in_new_york_fires_a_repeated_time_once),
        cmocka_unit_test(test_cron_next_in_berlin_across_both_transitions),
        cmocka_unit_test(
            test_cron_next_uses_the_zone_rule_after_the_last_transition),
        cmocka_unit_test(test_tz_rejects_unknown_and_malformed_zones),
        cmocka_unit_test(
            test_tz_parse_reads_a_tzif_file_and_refuses_bad_bytes_and_offsets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
