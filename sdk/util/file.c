// file.c - whole-file reads for certificates, tokens and definitions.
#include "file.h"

#include "error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
av_read_file(const char *path, size_t max, char **out, size_t *len,
    struct anvil_error *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "cannot read %s: %s",
            path, strerror(errno));
    size_t cap = 4096, n = 0;
    char  *buf = malloc(cap);
    int    rc  = ANVIL_OK;
    if (buf == NULL)
        rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    while (rc == ANVIL_OK) {
        if (n + 1 >= cap) {
            char *p = cap > max ? NULL : realloc(buf, cap * 2);
            if (p == NULL) {
                rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
                    "%s is larger than %zu bytes", path, max);
                break;
            }
            buf = p;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (rc == ANVIL_OK && ferror(f))
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT, "cannot read %s: %s",
            path, strerror(errno));
    if (rc == ANVIL_OK && n > max)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s is larger than %zu bytes", path, max);
    if (f != stdin)
        fclose(f);
    if (rc != ANVIL_OK) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out   = buf;
    *len   = n;
    return ANVIL_OK;
}
