// tz.h - IANA time zones read from the system's TZif files
// (/usr/share/zoneinfo), for cron schedules: a zone's UTC offset at any
// instant, without the C library's process-wide TZ (setenv("TZ") and
// tzset() are not thread safe, and anvild has many threads).
//
// A loaded zone is immutable: any thread may read it; tz_load and tz_free
// touch no shared state. Times are Unix epoch seconds.
#ifndef SERVER_TZ_H
#define SERVER_TZ_H

#include <anvil/anvil.h>
#include <stddef.h>
#include <stdint.h>

#define TZ_NAME_MAX 64

struct tz;

// Loads zone `name` ("Europe/Berlin"; "" and "UTC" need no file) into *out
// (tz_free). INVALID_ARGUMENT naming the zone when the name is malformed,
// no such zone exists, or its file is not a TZif file.
int  tz_load(const char *name, struct tz **out, struct anvil_error *err);
void tz_free(struct tz *z);

// A zone from the bytes of a TZif file (what tz_load reads): 0 and *out
// (tz_free), or -1 when they are not a TZif file this code reads or
// memory ran out.
int tz_parse(const uint8_t *data, size_t len, struct tz **out);

// The zone's offset from UTC (seconds east) at instant t. z NULL = UTC.
int32_t tz_offset(const struct tz *z, int64_t t);

// The instant of the wall-clock time `local` (seconds, as if it were UTC)
// in zone z, choosing the earliest instant > after: a repeated local time
// (clocks set back) is its first occurrence, or its second when the first
// is not after `after`; a local time that does not exist (clocks set
// forward) is the first instant after the gap. Returns 0 and *out, or -1
// when no such instant is after `after`.
int tz_to_utc(const struct tz *z, int64_t local, int64_t after, int64_t *out);

// Civil date arithmetic (proleptic Gregorian), shared with cron.c.
int64_t tz_days_from_civil(int64_t y, int m, int d);
void    tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

#endif
