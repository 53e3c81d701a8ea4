// clock.c - time helpers over clock_gettime.
#include "clock.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t
av_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
av_mono_ms(void)
{
    return av_mono_us() / 1000;
}

int64_t
av_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

char *
av_format_time(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    time_t    secs = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char day[24];
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", day, (int) (ms % 1000));
    return buf;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
// civil-from-days inverse), so parsing needs neither timegm nor TZ.
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t  era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned) (y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t) doe - 719468;
}

static int
digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char) (*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int
expect(const char **p, char c)
{
    if (**p != c && !(c == 'T' && (**p == 't' || **p == ' ')))
        return -1;
    (*p)++;
    return 0;
}

int
av_parse_time(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, se;
    if (digits(&s, 4, &y) || expect(&s, '-') || digits(&s, 2, &mo)
        || expect(&s, '-') || digits(&s, 2, &d) || expect(&s, 'T')
        || digits(&s, 2, &h) || expect(&s, ':') || digits(&s, 2, &mi)
        || expect(&s, ':') || digits(&s, 2, &se))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    int frac = 0;
    if (*s == '.') {
        s++;
        int scale = 100, n = 0;
        while (isdigit((unsigned char) *s)) {
            frac += scale * (*s - '0');
            scale /= 10;
            s++;
            n++;
        }
        if (n == 0)
            return -1;
    }
    int64_t off = 0;
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s == '-' ? -1 : 1;
        int oh, om;
        s++;
        if (digits(&s, 2, &oh) || expect(&s, ':') || digits(&s, 2, &om))
            return -1;
        off = sign * (oh * 3600 + om * 60);
    } else {
        return -1;
    }
    if (*s != '\0')
        return -1;
    int64_t days = days_from_civil(y, (unsigned) mo, (unsigned) d);
    *ms = ((days * 86400 + h * 3600 + mi * 60 + se) - off) * 1000 + frac;
    return 0;
}

int
av_parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t     ms;
    } units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
        { "d", 86400000 } };
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    int64_t v = 0;
    size_t  i = 0;
    for (; isdigit((unsigned char) s[i]); i++) {
        if (v > INT64_MAX / 10 / 86400000)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (i == 0)
        return -1;
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        if (strcmp(s + i, units[u].unit) == 0) {
            *ms = v * units[u].ms;
            return 0;
        }
    }
    return -1;
}

struct timespec
av_deadline_in(clockid_t clk, int64_t ms)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    ts.tv_sec += (time_t) (ms / 1000);
    ts.tv_nsec += (long) (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}
