// utf8.c - UTF-8 checks (see utf8.h).
#include "util/utf8.h"

#include <anvil/anvil.h>
#include <stdint.h>
#include <string.h>

size_t
av_utf8_seq(const unsigned char *s)
{
    size_t   n;
    uint32_t cp;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n  = 2;
        cp = s[0] & 0x1Fu;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n  = 3;
        cp = s[0] & 0x0Fu;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n  = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) // also stops at the terminating NUL
            return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
        || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

bool
av_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *) s;
    size_t               i = 0;
    while (i < n) {
        if (u[i] == 0)
            return false;
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        // A sequence is at most 4 bytes: check it does not run past n.
        size_t need = u[i] >= 0xF0 ? 4 : u[i] >= 0xE0 ? 3 : 2;
        if (n - i < need)
            return false;
        size_t k = av_utf8_seq(u + i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

bool
av_progress_valid(int32_t percent, const char *message)
{
    if (percent < 0 || percent > 100)
        return false;
    if (message == NULL)
        return true;
    size_t n = strnlen(message, ANVIL_PROGRESS_MESSAGE_MAX + 1);
    return n <= ANVIL_PROGRESS_MESSAGE_MAX && av_utf8_valid(message, n);
}
