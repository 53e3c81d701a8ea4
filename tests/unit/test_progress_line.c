// test_progress_line.c - the ANVIL_PROGRESS lines of exec handlers: the
// line parser and the stderr scan that takes them out of the stream.
#include "../../worker/progress_line.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

// ---- the parser ----

static enum progress_line_kind
parse(const char *line, int *percent, char *msg)
{
    return progress_line_parse(
        line, strlen(line), percent, msg, ANVIL_PROGRESS_MESSAGE_MAX + 1);
}

static void
test_parse_reads_percent_and_message(void **state)
{
    (void) state;
    int  p = -1;
    char m[ANVIL_PROGRESS_MESSAGE_MAX + 1];
    assert_int_equal(
        parse("ANVIL_PROGRESS 40 copying files", &p, m), PROGRESS_LINE_OK);
    assert_int_equal(p, 40);
    assert_string_equal(m, "copying files");
    assert_int_equal(parse("ANVIL_PROGRESS 0", &p, m), PROGRESS_LINE_OK);
    assert_int_equal(p, 0);
    assert_string_equal(m, "");
    assert_int_equal(
        parse("ANVIL_PROGRESS\t100  done \xc3\xa9t\xc3\xa9\r", &p, m),
        PROGRESS_LINE_OK);
    assert_int_equal(p, 100);
    assert_string_equal(m, "done \xc3\xa9t\xc3\xa9");
}

static void
test_parse_ignores_lines_without_the_keyword(void **state)
{
    (void) state;
    int  p = 7;
    char m[ANVIL_PROGRESS_MESSAGE_MAX + 1];
    assert_int_equal(parse("", &p, m), PROGRESS_LINE_NONE);
    assert_int_equal(parse("progress 40", &p, m), PROGRESS_LINE_NONE);
    assert_int_equal(parse("ANVIL_PROGRES 40", &p, m), PROGRESS_LINE_NONE);
    assert_int_equal(parse("ANVIL_PROGRESSED 40", &p, m), PROGRESS_LINE_NONE);
    assert_int_equal(parse(" ANVIL_PROGRESS 40", &p, m), PROGRESS_LINE_NONE);
    assert_int_equal(p, 7);
}

static void
test_parse_calls_bad_reports_malformed(void **state)
{
    (void) state;
    static const char *const bad[] = {
        "ANVIL_PROGRESS",
        "ANVIL_PROGRESS ",
        "ANVIL_PROGRESS 101",
        "ANVIL_PROGRESS -1",
        "ANVIL_PROGRESS +5",
        "ANVIL_PROGRESS 0100",
        "ANVIL_PROGRESS 4.5 half",
        "ANVIL_PROGRESS 40% copying",
        "ANVIL_PROGRESS forty",
        "ANVIL_PROGRESS 99999999999999999999",
        "ANVIL_PROGRESS 40 bad \xff byte",
        "ANVIL_PROGRESS 40 cut \xe2\x82",
    };
    int  p = 7;
    char m[ANVIL_PROGRESS_MESSAGE_MAX + 1];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &p, m) != PROGRESS_LINE_MALFORMED)
            fail_msg("not malformed: \"%s\"", bad[i]);
    }
    assert_int_equal(p, 7);
    // A NUL byte inside the message.
    assert_int_equal(
        progress_line_parse("ANVIL_PROGRESS 1 a\0b", 20, &p, m, sizeof(m)),
        PROGRESS_LINE_MALFORMED);
}

static void
test_parse_bounds_the_message(void **state)
{
    (void) state;
    char line[400];
    char m[ANVIL_PROGRESS_MESSAGE_MAX + 1];
    int  p;
    int  n = snprintf(line, sizeof(line), "ANVIL_PROGRESS 50 ");
    memset(line + n, 'x', ANVIL_PROGRESS_MESSAGE_MAX);
    line[n + ANVIL_PROGRESS_MESSAGE_MAX] = '\0';
    assert_int_equal(parse(line, &p, m), PROGRESS_LINE_OK);
    assert_int_equal(strlen(m), ANVIL_PROGRESS_MESSAGE_MAX);
    strcat(line, "x");
    assert_int_equal(parse(line, &p, m), PROGRESS_LINE_MALFORMED);
    // A small buffer is never overrun.
    char small[8];
    assert_int_equal(progress_line_parse("ANVIL_PROGRESS 5 too long", 25, &p,
                         small, sizeof(small)),
        PROGRESS_LINE_MALFORMED);
}

// ---- the scan ----

struct seen {
    char   passed[4096];
    size_t len;
    int    reports;
    int    percent[8];
    char   msg[8][ANVIL_PROGRESS_MESSAGE_MAX + 1];
    int    malformed;
};

static void
on_pass(void *arg, const char *buf, size_t n)
{
    struct seen *s = arg;
    assert_true(s->len + n < sizeof(s->passed));
    memcpy(s->passed + s->len, buf, n);
    s->len += n;
    s->passed[s->len] = '\0';
}

static void
on_report(void *arg, int percent, const char *message)
{
    struct seen *s = arg;
    if (s->reports < 8) {
        s->percent[s->reports] = percent;
        snprintf(s->msg[s->reports], sizeof(s->msg[0]), "%s", message);
    }
    s->reports++;
}

static void
on_malformed(void *arg, const char *line, size_t len)
{
    struct seen *s = arg;
    (void) line;
    (void) len;
    s->malformed++;
}

// Feeds text in chunks of `chunk` bytes, then ends the stream.
static void
scan(struct seen *s, const char *text, size_t chunk)
{
    struct progress_scan       sc   = { 0 };
    const struct progress_sink sink = { on_pass, on_report, on_malformed, s };
    size_t                     n    = strlen(text);
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < n; i += chunk)
        progress_scan_feed(&sc, text + i, n - i < chunk ? n - i : chunk, &sink);
    progress_scan_end(&sc, &sink);
}

static void
test_scan_takes_progress_lines_out_of_stderr_in_any_chunks(void **state)
{
    (void) state;
    const char  *text     = "starting\n"
                            "ANVIL_PROGRESS 10 one\n"
                            "ANVIL_PROGRESS 110 too much\n"
                            "an ANVIL_PROGRESS 20 in the middle\n"
                            "ANVIL_PROGRESS 30 two\r\n"
                            "ANVIL_PROGRESS x again bad\n"
                            "ANVIL_PROGRESS 90 last, no newline";
    const char  *rest     = "starting\n"
                            "ANVIL_PROGRESS 110 too much\n"
                            "an ANVIL_PROGRESS 20 in the middle\n"
                            "ANVIL_PROGRESS x again bad\n";
    const size_t chunks[] = { 1, 2, 3, 7, 16, 4096 };
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct seen s;
        scan(&s, text, chunks[c]);
        assert_string_equal(s.passed, rest);
        assert_int_equal(s.reports, 3);
        assert_int_equal(s.percent[0], 10);
        assert_string_equal(s.msg[0], "one");
        assert_int_equal(s.percent[1], 30);
        assert_string_equal(s.msg[1], "two");
        assert_int_equal(s.percent[2], 90);
        assert_string_equal(s.msg[2], "last, no newline");
        assert_int_equal(s.malformed, 1); // logged once per stream
    }
}

static void
test_scan_passes_long_and_binary_lines_untouched(void **state)
{
    (void) state;
    char text[3000];
    memset(text, 'A', 1000); // not the keyword: passes at once
    memcpy(text + 1000, "\nANVIL_PROGRESS 5 ", 18);
    memset(text + 1018, 'y', 600); // too long to be a report
    memcpy(text + 1618, "\n\x01\x02\xff\xfe\n", 6);
    text[1624]            = '\0';
    const size_t chunks[] = { 1, 5, 64, 3000 };
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct seen s;
        scan(&s, text, chunks[c]);
        assert_int_equal(s.len, strlen(text));
        assert_memory_equal(s.passed, text, s.len);
        assert_int_equal(s.reports, 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_reads_percent_and_message),
        cmocka_unit_test(test_parse_ignores_lines_without_the_keyword),
        cmocka_unit_test(test_parse_calls_bad_reports_malformed),
        cmocka_unit_test(test_parse_bounds_the_message),
        cmocka_unit_test(
            test_scan_takes_progress_lines_out_of_stderr_in_any_chunks),
        cmocka_unit_test(test_scan_passes_long_and_binary_lines_untouched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
