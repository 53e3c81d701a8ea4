// handler_echo.c - the echo job: its result is its payload.
#include "handlers.h"

int
handler_echo(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) arg;
    return anvil_job_ctx_set_result(
        ctx, lease->job.payload, lease->job.payload_len);
}
