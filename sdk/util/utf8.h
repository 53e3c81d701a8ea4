// utf8.h - UTF-8 checks: the JSON printer (replacing bad bytes), and the
// progress reports a worker sends and the server accepts. Any thread; no
// state.
#ifndef AV_UTF8_H
#define AV_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Length of the valid UTF-8 sequence at s (1 to 4), or 0 (a bad or cut
// sequence; the terminating NUL of a string also stops it).
size_t av_utf8_seq(const unsigned char *s);

// True when the n bytes at s are valid UTF-8 without a NUL byte. s need
// not be NUL-terminated.
bool av_utf8_valid(const char *s, size_t n);

// True when a progress report is within the wire's bounds: percent 0..100
// and message (NULL = "") at most ANVIL_PROGRESS_MESSAGE_MAX bytes of
// UTF-8. The SDK and the exec launcher check with it before they send, so
// that the server never refuses a heartbeat for it.
bool av_progress_valid(int32_t percent, const char *message);

#endif
