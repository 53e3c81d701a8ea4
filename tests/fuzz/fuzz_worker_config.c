// fuzz_worker_config.c - libFuzzer target: the anvil-worker config parser.
// Any input is parsed; a good one is freed, a bad one must leave an error.
#include "../../worker/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct worker_config c;
    struct anvil_error   err = { 0 };
    if (config_parse((const char *) data, size, &c, &err) == ANVIL_OK) {
        if (c.n_handlers == 0)
            abort(); // a good config always has a handler
        config_fini(&c);
    } else if (err.msg[0] == '\0' || c.n_handlers != 0) {
        abort();
    }
    return 0;
}
