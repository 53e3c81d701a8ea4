// sha256.h - SHA-256 (FIPS 180-4, computed by mbedTLS), for storing API
// tokens as hashes.
// Pure code; any thread.
#ifndef AV_SHA256_H
#define AV_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define AV_SHA256_LEN 32

void av_sha256(const void *data, size_t len, uint8_t out[AV_SHA256_LEN]);

// Compares n bytes in time independent of where they differ: 0 if equal.
int av_ct_compare(const void *a, const void *b, size_t n);

#endif
