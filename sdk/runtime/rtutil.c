// rtutil.c - helpers of the worker runtime (see rtutil.h).
#include "runtime/rtutil.h"

#include <anvil/anvil.h>

#include <time.h>

int64_t
rtutil_next_backoff(int64_t prev)
{
    if (prev <= 0)
        return RTUTIL_BACKOFF_MIN_MS;
    return prev * 2 > RTUTIL_BACKOFF_MAX_MS ? RTUTIL_BACKOFF_MAX_MS : prev * 2;
}

bool
rtutil_transient(int code)
{
    return code == ANVIL_UNAVAILABLE || code == ANVIL_DEADLINE_EXCEEDED;
}

// Quotes become ', control characters spaces.
const char *
rtutil_log_safe(char *out, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s != NULL && s[i] != '\0' && i + 1 < cap; i++) {
        char c = s[i];
        out[i] = c == '"' ? '\'' : (unsigned char) c < 0x20 ? ' ' : c;
    }
    out[i] = '\0';
    return out;
}

void
rtutil_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec ts;
    ts.tv_sec  = (time_t) (deadline_ms / 1000);
    ts.tv_nsec = (long) (deadline_ms % 1000) * 1000000L;
    pthread_cond_timedwait(cv, mu, &ts);
}

int
rtutil_cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}
