// tz.c - reading TZif files (RFC 8536) and their POSIX TZ footer rule.
//
// Why not the C library: localtime_r and mktime only know the process's
// one zone, chosen by the TZ variable; changing it (setenv + tzset) races
// with every other thread that reads the time. A TZif file is a small,
// documented format, so each schedule loads its own zone instead.
//
// A zone is its transitions (instant -> offset) up to the file's last
// one, then the footer's rule ("CET-1CEST,M3.5.0,M10.5.0/3") for later
// years. Debian's files are "fat" (transitions written up to 2037); the
// rule matters after that and for "slim" files.
#include "tz.h"

#include "util/error.h"
#include "util/file.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TZ_DIR "/usr/share/zoneinfo"
// The UTC offsets a TZif file may hold (RFC 8536, section 3.2: -24:59:59
// to +25:59:59); a file with others is refused.
#define TZ_OFF_MIN (-89999)
#define TZ_OFF_MAX 93599
#define TZ_FILE_MAX (512 * 1024)

// One transition date of a POSIX rule: Mm.w.d, Jn or n, at `time`
// seconds of local time (may be negative or past 24 h, RFC 8536).
struct rule_date {
    char    form; // 'M', 'J' or 'n'
    int     m, w, d, n;
    int32_t time;
};

struct rule {
    bool             set;
    int32_t          std_off, dst_off; // seconds east
    bool             has_dst;
    struct rule_date start, end;
};

struct tz {
    size_t      n;     // transitions
    int64_t    *at;    // n instants, ascending
    int32_t    *off;   // n offsets in effect from at[i]
    int32_t     first; // offset before at[0] (or always, when n == 0)
    struct rule rule;
};

int64_t
tz_days_from_civil(int64_t y, int m, int d)
{
    // Howard Hinnant's days_from_civil.
    y -= m <= 2;
    int64_t  era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned) (y - era * 400);
    unsigned doy = (unsigned) ((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t) doe - 719468;
}

void
tz_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t  era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned) (z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp  = (5 * doy + 2) / 153;
    *d           = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m           = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y           = (int64_t) yoe + era * 400 + (*m <= 2);
}

static int64_t
floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static bool
leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

// ---- the POSIX TZ rule ----

static const char *
rule_name(const char *p)
{
    if (*p == '<') {
        const char *q = strchr(p, '>');
        return q != NULL ? q + 1 : NULL;
    }
    const char *q = p;
    while (isalpha((unsigned char) *q))
        q++;
    return q - p >= 3 ? q : NULL;
}

// [+-]hh[:mm[:ss]] into *secs; NULL when malformed.
static const char *
rule_time(const char *p, int32_t *secs)
{
    int sign = 1;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char) *p))
        return NULL;
    int32_t v = 0, part = 0, mul = 3600;
    for (int i = 0; i < 3 && mul >= 1; i++, mul /= 60) {
        part = 0;
        while (isdigit((unsigned char) *p) && part < 1000)
            part = part * 10 + (*p++ - '0');
        v += part * mul;
        if (*p != ':' || i == 2)
            break;
        p++;
    }
    if (v > 167 * 3600 + 59 * 60 + 59) // RFC 8536's widest, 167 hours
        return NULL;
    *secs = sign * v;
    return p;
}

static const char *
rule_date(const char *p, struct rule_date *rd)
{
    rd->time = 7200;
    char *end;
    if (*p == 'M') {
        rd->form = 'M';
        rd->m    = (int) strtol(p + 1, &end, 10);
        if (*end != '.')
            return NULL;
        rd->w = (int) strtol(end + 1, &end, 10);
        if (*end != '.')
            return NULL;
        rd->d = (int) strtol(end + 1, &end, 10);
        if (rd->m < 1 || rd->m > 12 || rd->w < 1 || rd->w > 5 || rd->d < 0
            || rd->d > 6)
            return NULL;
    } else {
        rd->form = *p == 'J' ? 'J' : 'n';
        if (*p == 'J')
            p++;
        if (!isdigit((unsigned char) *p))
            return NULL;
        rd->n = (int) strtol(p, &end, 10);
        if (rd->n > 365)
            return NULL;
    }
    p = end;
    if (*p == '/')
        p = rule_time(p + 1, &rd->time);
    return p;
}

static void
parse_rule(const char *s, struct rule *r)
{
    int32_t     v;
    const char *p = rule_name(s);
    if (p == NULL || (p = rule_time(p, &v)) == NULL)
        return;
    r->std_off = -v;
    r->dst_off = r->std_off + 3600;
    if (*p == '\0') {
        r->set = true;
        return;
    }
    if ((p = rule_name(p)) == NULL)
        return;
    if (*p != ',' && *p != '\0') {
        if ((p = rule_time(p, &v)) == NULL)
            return;
        r->dst_off = -v;
    }
    if (*p != ',' || (p = rule_date(p + 1, &r->start)) == NULL || *p != ','
        || (p = rule_date(p + 1, &r->end)) == NULL || *p != '\0')
        return;
    r->has_dst = true;
    r->set     = true;
}

// The day (days since the epoch) a rule date falls on in year y.
static int64_t
rule_day(const struct rule_date *rd, int64_t y)
{
    if (rd->form == 'J') // 1..365, February 29 never counted
        return tz_days_from_civil(y, 1, 1) + rd->n - 1
            + (leap(y) && rd->n >= 60);
    if (rd->form == 'n')
        return tz_days_from_civil(y, 1, 1) + rd->n;
    int64_t first = tz_days_from_civil(y, rd->m, 1);
    int     wday  = (int) ((first % 7 + 11) % 7); // 1970-01-01 was Thursday
    int64_t day   = first + (rd->d - wday + 7) % 7 + 7 * (rd->w - 1);
    static const int mdays[]
        = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int len = mdays[rd->m - 1] + (rd->m == 2 && leap(y));
    while (day >= first + len)
        day -= 7;
    return day;
}

static int32_t
rule_offset(const struct rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int64_t y;
    int     m, d;
    tz_civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
    int64_t start = rule_day(&r->start, y) * 86400 + r->start.time - r->std_off;
    int64_t end   = rule_day(&r->end, y) * 86400 + r->end.time - r->dst_off;
    bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? r->dst_off : r->std_off;
}

// ---- the TZif file ----

static int64_t
be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    if (n == 4)
        return (int32_t) (uint32_t) v;
    return (int64_t) v;
}

struct header {
    uint32_t isut, isstd, leap, time, type, chr;
};

static bool
read_header(const uint8_t *p, size_t len, struct header *h)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return false;
    uint32_t *f[]
        = { &h->isut, &h->isstd, &h->leap, &h->time, &h->type, &h->chr };
    for (int i = 0; i < 6; i++)
        *f[i] = (uint32_t) be(p + 20 + 4 * i, 4);
    return h->type > 0 && h->type < 256 && h->time < 100000 && h->chr < 100000
        && h->leap < 100000 && h->isut <= h->type && h->isstd <= h->type;
}

static size_t
block_len(const struct header *h, int tsize)
{
    return (size_t) h->time * (tsize + 1) + (size_t) h->type * 6 + h->chr
        + (size_t) h->leap * (tsize + 4) + h->isstd + h->isut;
}

// Reads one data block (times of tsize bytes) into z.
static int
read_block(struct tz *z, const uint8_t *p, const struct header *h, int tsize)
{
    const uint8_t *idx   = p + (size_t) h->time * tsize;
    const uint8_t *types = idx + h->time;
    z->n                 = h->time;
    z->at                = calloc(z->n + 1, sizeof(*z->at));
    z->off               = calloc(z->n + 1, sizeof(*z->off));
    if (z->at == NULL || z->off == NULL)
        return -1;
    for (uint32_t i = 0; i < h->type; i++) {
        int32_t off = (int32_t) be(types + 6 * i, 4);
        if (off < TZ_OFF_MIN || off > TZ_OFF_MAX)
            return -1;
    }
    for (size_t i = 0; i < z->n; i++) {
        if (idx[i] >= h->type)
            return -1;
        z->at[i]  = be(p + i * tsize, tsize);
        z->off[i] = (int32_t) be(types + 6 * idx[i], 4);
        if (i > 0 && z->at[i] <= z->at[i - 1])
            return -1;
    }
    z->first = (int32_t) be(types, 4);
    return 0;
}

static int
parse_tzif(struct tz *z, const uint8_t *p, size_t len)
{
    struct header h;
    if (!read_header(p, len, &h))
        return -1;
    size_t v1 = 44 + block_len(&h, 4);
    if (v1 > len)
        return -1;
    if (p[4] == '\0') // version 1: 32-bit times only
        return read_block(z, p + 44, &h, 4);
    const uint8_t *q    = p + v1;
    size_t         left = len - v1;
    if (!read_header(q, left, &h) || 44 + block_len(&h, 8) > left)
        return -1;
    if (read_block(z, q + 44, &h, 8) != 0)
        return -1;
    const char *foot = (const char *) q + 44 + block_len(&h, 8);
    size_t      flen = left - 44 - block_len(&h, 8);
    if (flen > 2 && foot[0] == '\n' && flen < 256) {
        char buf[256];
        memcpy(buf, foot + 1, flen - 1);
        buf[flen - 1] = '\0';
        char *nl      = strchr(buf, '\n');
        if (nl != NULL) {
            *nl = '\0';
            parse_rule(buf, &z->rule);
        }
    }
    return 0;
}

static bool
valid_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > TZ_NAME_MAX || name[0] == '/' || name[0] == '.'
        || strstr(name, "..") != NULL)
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char) *p) && strchr("_+-/", *p) == NULL)
            return false;
    return true;
}

int
tz_parse(const uint8_t *data, size_t len, struct tz **out)
{
    *out         = NULL;
    struct tz *z = calloc(1, sizeof(*z));
    if (z == NULL)
        return -1;
    if (parse_tzif(z, data, len) != 0) {
        tz_free(z);
        return -1;
    }
    *out = z;
    return 0;
}

int
tz_load(const char *name, struct tz **out, struct anvil_error *err)
{
    *out         = NULL;
    struct tz *z = calloc(1, sizeof(*z));
    if (z == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    if (name[0] == '\0' || strcmp(name, "UTC") == 0) {
        *out = z;
        return ANVIL_OK;
    }
    if (!valid_name(name)) {
        free(z);
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "time zone '%.64s' is not an IANA zone name such as "
            "Europe/Berlin",
            name);
    }
    char path[sizeof(TZ_DIR) + TZ_NAME_MAX + 2];
    snprintf(path, sizeof(path), "%s/%s", TZ_DIR, name);
    uint8_t           *data = NULL;
    size_t             len  = 0;
    struct anvil_error ferr = { 0 };
    int rc = av_read_file(path, TZ_FILE_MAX, (char **) &data, &len, &ferr);
    if (rc != ANVIL_OK || parse_tzif(z, data, len) != 0) {
        free(data);
        tz_free(z);
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "unknown time zone '%s' (not found in " TZ_DIR ")", name);
    }
    free(data);
    *out = z;
    return ANVIL_OK;
}

void
tz_free(struct tz *z)
{
    if (z == NULL)
        return;
    free(z->at);
    free(z->off);
    free(z);
}

int32_t
tz_offset(const struct tz *z, int64_t t)
{
    if (z == NULL)
        return 0;
    if (z->n == 0 || t < z->at[0])
        return z->n == 0 && z->rule.set ? rule_offset(&z->rule, t) : z->first;
    if (t >= z->at[z->n - 1] && z->rule.set)
        return rule_offset(&z->rule, t);
    size_t lo = 0, hi = z->n; // at[lo] <= t < at[hi]
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->off[lo];
}

int
tz_to_utc(const struct tz *z, int64_t local, int64_t after, int64_t *out)
{
    // The offsets that may apply: before, at and after a possible
    // transition (offsets are within +-26 h; transitions are days apart).
    int32_t cand[3] = { tz_offset(z, local - 108000), tz_offset(z, local),
        tz_offset(z, local + 108000) };
    bool    found   = false;
    int64_t best    = 0;
    for (int i = 0; i < 3; i++) {
        int64_t u = local - cand[i];
        if (tz_offset(z, u) == cand[i] && u > after && (!found || u < best)) {
            best  = u;
            found = true;
        }
    }
    if (found) {
        *out = best;
        return 0;
    }
    if (cand[0] >= cand[2]) // not in a gap: every occurrence is past
        return -1;
    // A gap: the first instant whose wall clock is at or past local.
    int64_t lo = local - cand[2], hi = local - cand[0];
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (mid + tz_offset(z, mid) >= local)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (lo <= after)
        return -1;
    *out = lo;
    return 0;
}
