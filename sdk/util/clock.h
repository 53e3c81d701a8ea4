// clock.h - time in milliseconds and microseconds. Any thread.
#ifndef AV_CLOCK_H
#define AV_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

// Wall-clock time, Unix epoch milliseconds (what the wire carries).
int64_t av_now_ms(void);

// Monotonic time for deadlines and measurements.
int64_t av_mono_ms(void);
int64_t av_mono_us(void);

// The absolute time ms milliseconds from now on clock clk, for
// pthread_cond_timedwait (whose condition variable must use clk).
struct timespec av_deadline_in(clockid_t clk, int64_t ms);

// Formats epoch ms as "2026-11-28T05:44:27.123Z" (UTC) into buf (>= 32
// bytes); "-" for 0. Returns buf.
char *av_format_time(int64_t ms, char *buf, size_t len);

// Parses RFC 3339 ("2026-11-28T05:44:27Z", optional fraction, Z or
// +hh:mm) into epoch ms. Returns 0 on success, -1 if malformed.
int av_parse_time(const char *s, int64_t *ms);

// Parses a duration: a whole number with a unit, "500ms", "30s", "15m",
// "12h", "7d", or "0". Returns 0 on success, -1 if malformed or negative.
int av_parse_duration(const char *s, int64_t *ms);

#endif
