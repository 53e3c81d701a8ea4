// fuzz_tzif.c - libFuzzer target: the TZif reader behind time zones
// (server/tz.c). Any bytes either load as a zone or are refused; a loaded
// zone answers offsets and local-to-UTC conversions for any instant
// without reading outside what it holds.
#include "../../server/tz.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tz *z = NULL;
    if (tz_parse(data, size, &z) != 0)
        return 0;
    if (z == NULL)
        abort();
    static const int64_t probe[] = { INT32_MIN, -1, 0, 1, 1700000000,
        2147483647, 4102444800, 253402300799 };
    for (size_t i = 0; i < sizeof(probe) / sizeof(probe[0]); i++) {
        int32_t off = tz_offset(z, probe[i]);
        if (off < -604799 || off > 604799)
            abort(); // a file's are within 26 h, a rule's within 167 h
        int64_t out;
        (void) tz_to_utc(z, probe[i], probe[i] - 86400, &out);
    }
    tz_free(z);
    return 0;
}
