// fuzz_cron.c - libFuzzer target: the cron expression parser and the next
// fire search (in UTC and in America/New_York, whose transitions exercise
// the gap and repeat paths).
#include "../../server/cron.h"
#include "../../server/tz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tz *zone;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > CRON_EXPR_MAX + 8)
        return 0;
    struct anvil_error err = { 0 };
    if (zone == NULL && tz_load("America/New_York", &zone, &err) != ANVIL_OK)
        return 0;
    char expr[CRON_EXPR_MAX + 9];
    memcpy(expr, data, size);
    expr[size] = '\0';
    struct cron c;
    if (cron_parse(expr, &c, &err) != ANVIL_OK)
        return 0;
    // A parsed expression fires (the parser refuses those that never do).
    int64_t t = 1741400000000; // March 2025, days before a transition
    for (int i = 0; i < 4; i++) {
        int64_t next = 0;
        if (cron_next(&c, i % 2 ? zone : NULL, t, &next) != 0)
            break;
        if (next <= t)
            abort();
        t = next;
    }
    return 0;
}
