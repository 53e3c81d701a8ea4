// stats.c - clocks, percentiles and medians for anvil-bench.
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

int64_t
bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double
bench_self_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return NAN;
    return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6
        + (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a;
    double y = *(const double *) b;
    return (x > y) - (x < y);
}

double
bench_percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof(*v), cmp_double);
    // Nearest rank: the smallest value with at least p% of them <= it.
    double rank = ceil(p / 100.0 * (double) n);
    size_t i    = rank < 1 ? 0 : (size_t) rank - 1;
    return v[i < n ? i : n - 1];
}

double
bench_median(double *v, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isnan(v[i]))
            v[m++] = v[i];
    }
    if (m == 0)
        return NAN;
    qsort(v, m, sizeof(*v), cmp_double);
    return m % 2 == 1 ? v[m / 2] : (v[m / 2 - 1] + v[m / 2]) / 2;
}

double
result_fig(const struct result *r, const char *key)
{
    for (int i = 0; i < r->n; i++) {
        if (strcmp(r->figs[i].key, key) == 0)
            return r->figs[i].v;
    }
    return NAN;
}

double
result_ratio(double a, double b)
{
    return b > 0 ? a / b : NAN;
}

void
result_add(struct result *r, const char *key, const char *label,
    const char *unit, double v)
{
    if (r->n >= BENCH_MAX_FIGS)
        return;
    r->figs[r->n++] = (struct fig) { key, label, unit, v };
}

// Figure keys and labels built at run time must outlive every result, so
// each distinct one is kept once in a small table (a handful per process).
static const char *
intern(const char *s)
{
    static char tab[64][96];
    static int  n;
    for (int i = 0; i < n; i++) {
        if (strcmp(tab[i], s) == 0)
            return tab[i];
    }
    if (n >= 64)
        return "?";
    snprintf(tab[n], sizeof(tab[n]), "%s", s);
    return tab[n++];
}

void
result_add_pcts(struct result *r, const char *key, const char *label, double *v,
    size_t n, bool with_p90)
{
    static const double ps[]    = { 50, 90, 99, 100 };
    static const char  *names[] = { "p50", "p90", "p99", "max" };
    for (int i = 0; i < 4; i++) {
        if (i == 1 && !with_p90)
            continue;
        char k[96];
        char l[96];
        snprintf(k, sizeof(k), "%s_%s_us", key, names[i]);
        snprintf(l, sizeof(l), "%s %s", label, names[i]);
        result_add(
            r, intern(k), intern(l), "us", bench_percentile(v, n, ps[i]));
    }
}

bool
bench_wait_until(bool (*cond)(void *), void *arg, int64_t deadline_ns)
{
    struct timespec nap = { 0, 200000 }; // 0.2 ms: well below a run's error
    for (;;) {
        if (cond(arg))
            return true;
        if (bench_now_ns() >= deadline_ns)
            return false;
        nanosleep(&nap, NULL);
    }
}
