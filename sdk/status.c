// status.c - job state names (enum anvil_job_state <-> "QUEUED").
#include <anvil/anvil.h>
#include <stddef.h>
#include <strings.h>

static const char *const state_names[] = {
    "UNSPECIFIED",
    "PENDING",
    "SCHEDULED",
    "QUEUED",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "CANCELED",
};

#define NSTATES (sizeof(state_names) / sizeof(state_names[0]))

const char *
anvil_job_state_name(int state)
{
    if (state < 0 || (size_t) state >= NSTATES)
        return state_names[ANVIL_JOB_UNSPECIFIED];
    return state_names[state];
}

int
anvil_job_state_parse(const char *name, int *state)
{
    if (name == NULL || state == NULL)
        return ANVIL_INVALID_ARGUMENT;
    for (size_t i = 0; i < NSTATES; i++) {
        if (strcasecmp(name, state_names[i]) == 0) {
            *state = (int) i;
            return ANVIL_OK;
        }
    }
    // The British spelling, as in the status code CANCELLED.
    if (strcasecmp(name, "CANCELLED") == 0) {
        *state = ANVIL_JOB_CANCELED;
        return ANVIL_OK;
    }
    return ANVIL_INVALID_ARGUMENT;
}

bool
anvil_job_state_final(int state)
{
    return state == ANVIL_JOB_SUCCEEDED || state == ANVIL_JOB_FAILED
        || state == ANVIL_JOB_CANCELED;
}
