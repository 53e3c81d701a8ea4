// fuzz_progress_line.c - libFuzzer target: the ANVIL_PROGRESS line parser
// and the stderr scan around it. The first byte picks a chunk size, the
// rest is a program's stderr. Every byte must come out either passed
// through or inside a reported line, reports must be within bounds, and
// the direct parse of any line must agree with those bounds.
#include "../../worker/progress_line.h"

#include "util/utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct count {
    size_t passed;
};

static void
on_pass(void *arg, const char *buf, size_t n)
{
    struct count *c = arg;
    if (buf == NULL || n == 0)
        abort();
    c->passed += n;
}

static void
on_report(void *arg, int percent, const char *message)
{
    (void) arg;
    if (!av_progress_valid(percent, message))
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t      chunk = (size_t) data[0] + 1;
    const char *text  = (const char *) data + 1;
    size_t      n     = size - 1;

    char m[ANVIL_PROGRESS_MESSAGE_MAX + 1];
    int  p = -1;
    if (progress_line_parse(text, n, &p, m, sizeof(m)) == PROGRESS_LINE_OK
        && !av_progress_valid(p, m))
        abort();

    struct count               c    = { 0 };
    struct progress_scan       s    = { 0 };
    const struct progress_sink sink = { on_pass, on_report, NULL, &c };
    for (size_t i = 0; i < n; i += chunk)
        progress_scan_feed(&s, text + i, n - i < chunk ? n - i : chunk, &sink);
    progress_scan_end(&s, &sink);
    if (c.passed > n)
        abort();
    return 0;
}
