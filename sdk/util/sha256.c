// sha256.c - SHA-256 from mbedTLS's crypto library, which nng's TLS already
// brings; a constant-time comparison to go with it.
#include "sha256.h"

#include "error.h"

#include <mbedtls/sha256.h>

void
av_sha256(const void *data, size_t len, uint8_t out[AV_SHA256_LEN])
{
    // Only an alternative (hardware) implementation can fail; the software
    // one always returns 0.
    int rc = mbedtls_sha256_ret(data, len, out, 0);
    AV_ASSERT(rc == 0);
}

int
av_ct_compare(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a;
    const volatile uint8_t *y = b;
    uint8_t                 d = 0;
    for (size_t i = 0; i < n; i++)
        d |= x[i] ^ y[i];
    return d != 0;
}
