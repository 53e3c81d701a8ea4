// error.c - struct anvil_error helpers and the code names of anvil.h.
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int
av_error_set(struct anvil_error *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void
av_error_clear(struct anvil_error *err)
{
    if (err == NULL)
        return;
    err->code   = ANVIL_OK;
    err->msg[0] = '\0';
}

void
av_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    abort();
}

static const char *const code_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

static const char *const code_texts[] = {
    "ok",
    "cancelled",
    "unknown error",
    "invalid argument",
    "deadline exceeded",
    "not found",
    "already exists",
    "permission denied",
    "resource exhausted",
    "failed precondition",
    "aborted",
    "out of range",
    "unimplemented",
    "internal error",
    "unavailable",
    "data loss",
    "unauthenticated",
};

#define NCODES (sizeof(code_names) / sizeof(code_names[0]))

const char *
anvil_code_name(int code)
{
    if (code < 0 || (size_t) code >= NCODES)
        return "UNKNOWN_CODE";
    return code_names[code];
}

const char *
anvil_strerror(int code)
{
    if (code < 0 || (size_t) code >= NCODES)
        return "unknown status code";
    return code_texts[code];
}
