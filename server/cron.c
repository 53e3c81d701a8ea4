// cron.c - the cron expression parser and next-fire search.
//
// Why our own: Debian ships no maintained C library for cron
// expressions (only Perl, Go and Ruby ones), and what we need is small:
// five bit sets, a few macros, and a search over the zone's wall clock
// that skips whole months, days and hours that cannot match.
#include "cron.h"

#include "tz.h"
#include "util/error.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SEARCH_DAYS (10 * 366 + 2)

struct field {
    const char        *name;
    int                min, max;
    const char *const *names; // indexed from min; NULL when none
};

static const char *const month_names[] = { "JAN", "FEB", "MAR", "APR", "MAY",
    "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL };
static const char *const day_names[]
    = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL };

static const struct field fields[5] = {
    { "minute", 0, 59, NULL },
    { "hour", 0, 23, NULL },
    { "day-of-month", 1, 31, NULL },
    { "month", 1, 12, month_names },
    { "day-of-week", 0, 7, day_names },
};

static const struct {
    const char *name;
    const char *expr;
} macros[] = {
    { "@yearly", "0 0 1 1 *" },
    { "@annually", "0 0 1 1 *" },
    { "@monthly", "0 0 1 * *" },
    { "@weekly", "0 0 * * 0" },
    { "@daily", "0 0 * * *" },
    { "@midnight", "0 0 * * *" },
    { "@hourly", "0 * * * *" },
};

// One value: a number or (month, day-of-week) a name. *p advances.
static int
value(const struct field *f, const char **p, int *v, struct anvil_error *err)
{
    const char *s = *p;
    if (isdigit((unsigned char) *s)) {
        long n = 0;
        while (isdigit((unsigned char) *s) && n < 1000)
            n = n * 10 + (*s++ - '0');
        if (isdigit((unsigned char) *s) || n < f->min || n > f->max)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s: value %.*s is out of range %d-%d", f->name,
                (int) strspn(*p, "0123456789"), *p, f->min, f->max);
        *v = (int) n;
        *p = s;
        return ANVIL_OK;
    }
    size_t len = 0;
    while (isalpha((unsigned char) s[len]))
        len++;
    for (int i = 0; f->names != NULL && len == 3 && f->names[i]; i++) {
        if (strncasecmp(s, f->names[i], 3) == 0) {
            *v = f->min + i;
            *p = s + 3;
            return ANVIL_OK;
        }
    }
    if (len > 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: unknown name '%.*s'%s", f->name, (int) (len > 16 ? 16 : len),
            s,
            f->names == day_names ? " (use SUN..SAT or 0-7)"
                : f->names        ? " (use JAN..DEC or 1-12)"
                                  : "");
    return av_error_set(err, ANVIL_INVALID_ARGUMENT,
        "%s: expected a number%s at '%.16s'", f->name,
        f->names ? " or a name" : "", *s ? s : "(end)");
}

// One list item: *, */s, a, a-b, a-b/s, a/s. Sets its bits in *bits.
static int
item(const struct field *f, const char *s, const char *end, uint64_t *bits,
    struct anvil_error *err)
{
    int         lo = f->min, hi = f->max, step = 1, rc;
    const char *p = s;
    if (*p == '*') {
        p++;
    } else {
        if ((rc = value(f, &p, &lo, err)) != ANVIL_OK)
            return rc;
        hi = lo;
        if (*p == '-') {
            p++;
            if ((rc = value(f, &p, &hi, err)) != ANVIL_OK)
                return rc;
            if (hi < lo)
                return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                    "%s: range %.*s runs backwards", f->name, (int) (end - s),
                    s);
        } else if (*p == '/') {
            hi = f->max;
        }
    }
    if (*p == '/') {
        p++;
        long n = 0;
        while (isdigit((unsigned char) *p) && n < 1000)
            n = n * 10 + (*p++ - '0');
        if (n < 1 || n > f->max)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s: step in '%.*s' must be 1-%d", f->name, (int) (end - s), s,
                f->max);
        step = (int) n;
    }
    if (p != end)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: cannot read '%.*s'", f->name, (int) (end - s), s);
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ULL << v;
    return ANVIL_OK;
}

static int
parse_field(const struct field *f, const char *s, uint64_t *bits,
    struct anvil_error *err)
{
    *bits = 0;
    for (;;) {
        const char *comma = strchr(s, ',');
        const char *end   = comma != NULL ? comma : s + strlen(s);
        if (end == s)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s: empty item in the list", f->name);
        int rc = item(f, s, end, bits, err);
        if (rc != ANVIL_OK || comma == NULL)
            return rc;
        s = comma + 1;
    }
}

static int
days_in_month(int64_t y, int m)
{
    static const int n[]  = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool             leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return n[m - 1] + (m == 2 && leap);
}

// "0 0 31 2 *": a day of the month that no chosen month has.
static int
check_fires(const struct cron *c, struct anvil_error *err)
{
    if (!c->days_star && !c->wdays_star)
        return ANVIL_OK; // either day field may match
    for (int m = 1; m <= 12; m++) {
        uint32_t fit = (uint32_t) ((1ULL << (days_in_month(2000, m) + 1)) - 2);
        if ((c->months & (1u << m)) && (c->days & fit))
            return ANVIL_OK;
    }
    return av_error_set(err, ANVIL_INVALID_ARGUMENT,
        "the expression never fires: no chosen month has the chosen "
        "day-of-month");
}

static int
parse_fields(const char *expr, struct cron *c, struct anvil_error *err)
{
    char buf[CRON_EXPR_MAX + 1];
    snprintf(buf, sizeof(buf), "%s", expr);
    char *f[6] = { 0 }, *save = NULL;
    int   n = 0;
    for (char *t = strtok_r(buf, " \t", &save); t != NULL;
         t       = strtok_r(NULL, " \t", &save))
        f[n < 6 ? n++ : 5] = t;
    if (n != 5)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "a cron expression has 5 fields (minute hour day-of-month month "
            "day-of-week), '%.64s' has %d%s",
            expr, n, n == 6 ? " or more (seconds are not supported)" : "");
    uint64_t bits[5];
    for (int i = 0; i < 5; i++) {
        int rc = parse_field(&fields[i], f[i], &bits[i], err);
        if (rc != ANVIL_OK)
            return rc;
    }
    c->minutes    = bits[0];
    c->hours      = (uint32_t) bits[1];
    c->days       = (uint32_t) bits[2];
    c->months     = (uint16_t) bits[3];
    c->wdays      = (uint8_t) ((bits[4] | bits[4] >> 7) & 0x7f); // 7 = 0
    c->days_star  = f[2][0] == '*';
    c->wdays_star = f[4][0] == '*';
    return check_fires(c, err);
}

// "1h30m", "90s", "500ms"... into ms.
static int
parse_every(const char *s, int64_t *ms, struct anvil_error *err)
{
    int64_t total = 0;
    while (*s == ' ' || *s == '\t')
        s++;
    const char *p = s;
    if (*p == '\0')
        goto bad;
    while (*p != '\0') {
        if (!isdigit((unsigned char) *p))
            goto bad;
        int64_t n = 0;
        while (isdigit((unsigned char) *p) && n < 100000000)
            n = n * 10 + (*p++ - '0');
        int64_t unit = strncmp(p, "ms", 2) == 0 ? 1
            : *p == 's'                         ? 1000
            : *p == 'm'                         ? 60000
            : *p == 'h'                         ? 3600000
            : *p == 'd'                         ? 86400000
                                                : 0;
        if (unit == 0 || isdigit((unsigned char) *p))
            goto bad;
        p += unit == 1 ? 2 : 1;
        total += n * unit;
        if (total > CRON_EVERY_MAX_MS)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "@every: '%.32s' is longer than 366 days", s);
    }
    if (total < 1000)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "@every: '%.32s' is shorter than the minimum of 1s", s);
    *ms = total;
    return ANVIL_OK;
bad:
    return av_error_set(err, ANVIL_INVALID_ARGUMENT,
        "@every: cannot read duration '%.32s' (write e.g. 30s, 15m, 1h30m, "
        "1d)",
        s);
}

int
cron_parse(const char *expr, struct cron *c, struct anvil_error *err)
{
    memset(c, 0, sizeof(*c));
    while (*expr == ' ' || *expr == '\t')
        expr++;
    if (strlen(expr) > CRON_EXPR_MAX)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "the cron expression is longer than %d bytes", CRON_EXPR_MAX);
    if (*expr == '\0')
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "the cron expression is empty");
    if (*expr != '@')
        return parse_fields(expr, c, err);
    if (strncmp(expr, "@every", 6) == 0 && (expr[6] == ' ' || !expr[6]))
        return parse_every(expr + 6, &c->every_ms, err);
    size_t len = strcspn(expr, " \t");
    for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
        if (strlen(macros[i].name) == len
            && strncmp(expr, macros[i].name, len) == 0) {
            if (expr[strspn(expr + len, " \t") + len] != '\0')
                break;
            return parse_fields(macros[i].expr, c, err);
        }
    return av_error_set(err, ANVIL_INVALID_ARGUMENT,
        "unknown cron macro '%.32s' (use @yearly, @annually, @monthly, "
        "@weekly, @daily, @midnight, @hourly or @every DURATION)",
        expr);
}

static bool
day_matches(const struct cron *c, int64_t days, int d)
{
    bool dom = (c->days >> d) & 1;
    bool dow = (c->wdays >> (int) ((days % 7 + 11) % 7)) & 1;
    if (c->days_star || c->wdays_star)
        return dom && dow;
    return dom || dow;
}

int
cron_next(
    const struct cron *c, const struct tz *z, int64_t after, int64_t *next)
{
    if (c->every_ms > 0) {
        *next = after + c->every_ms;
        return 0;
    }
    int64_t after_s = after >= 0 ? after / 1000 : -((-after + 999) / 1000);
    int64_t local   = after_s + tz_offset(z, after_s);
    local           = (local >= 0 ? local / 60 : (local - 59) / 60) * 60 + 60;
    int64_t limit   = local + (int64_t) SEARCH_DAYS * 86400;
    while (local < limit) {
        int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
        int64_t secs = local - days * 86400;
        int64_t y;
        int     m, d, h = (int) (secs / 3600), mi = (int) (secs % 3600 / 60);
        tz_civil_from_days(days, &y, &m, &d);
        if (!((c->months >> m) & 1)) {
            local = tz_days_from_civil(y + (m == 12), m % 12 + 1, 1) * 86400;
        } else if (!day_matches(c, days, d)) {
            local = (days + 1) * 86400;
        } else if (!((c->hours >> h) & 1)) {
            local = days * 86400 + (h + 1) * 3600;
        } else if (!((c->minutes >> mi) & 1)) {
            local += 60;
        } else {
            int64_t u;
            // after_ms may lie within the minute after_s starts.
            if (tz_to_utc(z, local, after_s, &u) == 0 && u * 1000 > after) {
                *next = u * 1000;
                return 0;
            }
            local += 60;
        }
    }
    return -1;
}
