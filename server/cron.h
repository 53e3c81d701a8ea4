// cron.h - cron expressions: parsing and the next fire time. Pure
// functions over caller-owned structs; any thread; no engine dependency.
//
// An expression is five fields, "minute hour day-of-month month
// day-of-week", each `*` or a comma list of values, ranges `a-b` and
// steps (`*/s`, `a-b/s`, `a/s` = a to the field's end), with month names
// JAN..DEC and day names SUN..SAT (day 0 and 7 are Sunday); or a macro
// @yearly @annually @monthly @weekly @daily @midnight @hourly; or
// `@every DURATION` (e.g. 30s, 15m, 1h30m; at least 1s). As in Vixie
// cron, when both day fields are restricted (neither starts with `*`) a
// day matches either; otherwise it must match both.
#ifndef SERVER_CRON_H
#define SERVER_CRON_H

#include <anvil/anvil.h>
#include <stdbool.h>
#include <stdint.h>

#define CRON_EXPR_MAX 256
#define CRON_EVERY_MAX_MS (366LL * 24 * 3600 * 1000)

struct tz;

struct cron {
    uint64_t minutes; // bit i: minute i
    uint32_t hours;
    uint32_t days;   // bit i: day of month i (1..31)
    uint16_t months; // bit i: month i (1..12)
    uint8_t  wdays;  // bit i: weekday i (0 = Sunday)
    bool     days_star, wdays_star;
    int64_t  every_ms; // @every: the interval; 0 for a calendar expression
};

// Parses expr into *c. INVALID_ARGUMENT with a message naming the field
// and the value at fault, or saying why the expression never fires
// ("0 0 31 2 *").
int cron_parse(const char *expr, struct cron *c, struct anvil_error *err);

// The first fire time strictly after `after` (epoch ms), in zone z (NULL
// = UTC), into *next. Calendar expressions fire on whole minutes of the
// zone's wall clock; a wall-clock time skipped by a clock change fires at
// the first instant after the gap (once), and a repeated one fires at its
// first occurrence only. @every fires `after` + the interval. Returns 0,
// or -1 when nothing fires in the next ten years.
int cron_next(
    const struct cron *c, const struct tz *z, int64_t after, int64_t *next);

#endif
