// error.h - filling a struct anvil_error with a code and a sentence.
// Any thread; no shared state.
#ifndef AV_ERROR_H
#define AV_ERROR_H

#include <anvil/anvil.h>

// Sets err (which may be NULL) to code and a formatted message; returns
// code, so callers can write `return av_error_set(err, ...);`.
int av_error_set(struct anvil_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Clears err to ANVIL_OK and an empty message; NULL is ignored.
void av_error_clear(struct anvil_error *err);

// Aborts with file:line for programmer errors, never for input.
#define AV_ASSERT(x)                                \
    do {                                            \
        if (!(x))                                   \
            av_assert_fail(#x, __FILE__, __LINE__); \
    } while (0)

void av_assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn));

#endif
