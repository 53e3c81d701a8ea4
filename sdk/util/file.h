// file.h - reading a whole (small) file. Any thread.
#ifndef AV_FILE_H
#define AV_FILE_H

#include <anvil/anvil.h>
#include <stddef.h>

// Reads path into a new NUL-terminated buffer (*out, free()), *len bytes
// without the NUL; at most max bytes. INVALID_ARGUMENT naming the path
// and the reason when it cannot be read or is too large.
int av_read_file(const char *path, size_t max, char **out, size_t *len,
    struct anvil_error *err);

#endif
