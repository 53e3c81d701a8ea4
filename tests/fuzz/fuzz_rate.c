// fuzz_rate.c - libFuzzer target: the CLI's rate parser (`anvil queue
// limit --rate R/s`). Any input is either refused with a usage error that
// names the flag, or gives a rate in range; and a rate it takes is
// taken again, to the same value, when printed back per second.
#include "../../cli/cli.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64)
        return 0;
    char s[65];
    memcpy(s, data, size);
    s[size]                = '\0';
    double             v   = -1;
    struct anvil_error err = { 0 };
    int                rc  = cli_parse_rate("--rate", s, &v, &err);
    if (rc != CLI_EXIT_OK) {
        if (rc != CLI_EXIT_USAGE || strstr(err.msg, "--rate") == NULL)
            abort();
        return 0;
    }
    if (!isfinite(v) || v < 0.001 || v > 1000000)
        abort();
    char   again[64];
    double w = -1;
    snprintf(again, sizeof(again), "%.6f/s", v);
    if (cli_parse_rate("--rate", again, &w, &err) != CLI_EXIT_OK
        || fabs(w - v) > 1e-6 * v + 1e-6)
        abort();
    return 0;
}
