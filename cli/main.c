// main.c - the `anvil` command: runs cli_main() on the real streams and
// turns a failed write of the output (a full disk, a closed pipe) into a
// failure instead of a silent truncation.
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
    int rc = cli_main(argc, argv, stdout, stderr);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "anvil: cannot write output: %s\n", strerror(errno));
        if (rc == CLI_EXIT_OK)
            rc = CLI_EXIT_FAILED;
    }
    return rc;
}
