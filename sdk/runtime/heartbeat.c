// heartbeat.c - the heartbeat thread (see heartbeat.h).
#include "runtime/heartbeat.h"

#include "runtime/rtutil.h"
#include "util/log.h"

#include <stdlib.h>

// Tells the handlers of the jobs named in ids (canceled or lost) to stop.
// A job whose handler already returned only waits for its report: a lost
// one is dropped by the reporter (which logs it), a canceled one changes
// nothing (the server applies its outcome as a cancel).
static void
flag_jobs(struct heartbeat *hb, char **ids, size_t n, bool lost)
{
    bool *running = calloc(n + 1, sizeof(*running));
    tasks_flag(hb->ts, ids, n, lost, running);
    for (size_t i = 0; i < n; i++) {
        if (running == NULL || running[i])
            AV_INFO("worker.job.cancel", "id=%s reason=%s", ids[i],
                lost ? "lost" : "canceled");
    }
    free(running);
}

static void
heartbeat_once(struct heartbeat *hb, bool *failing)
{
    size_t                         n;
    struct anvil_heartbeat_result *res  = NULL;
    struct anvil_error             e    = { 0 };
    struct anvil_lease_ref        *refs = tasks_refs(hb->ts, &n);
    int rc = anvil_lease_heartbeat(hb->client, hb->name, refs, n, &res, &e);
    if (rc != ANVIL_OK)
        tasks_progress_unsent(hb->ts, refs, n);
    tasks_refs_free(refs, n);
    if (rc != ANVIL_OK) {
        char msg[300];
        AV_LOG(*failing ? AV_LOG_DEBUG : AV_LOG_WARN, "worker.heartbeat.error",
            "code=%s leases=%zu msg=\"%s\"", anvil_code_name(rc), n,
            rtutil_log_safe(msg, sizeof(msg), e.msg));
        *failing = true;
        return;
    }
    *failing = false;
    flag_jobs(hb, res->canceled, res->n_canceled, false);
    flag_jobs(hb, res->lost, res->n_lost, true);
    anvil_heartbeat_result_free(res);
}

static void *
heartbeat_main(void *arg)
{
    struct heartbeat *hb      = arg;
    bool              failing = false;
    while (tasks_wait_heartbeat(hb->ts, hb->period_ms))
        heartbeat_once(hb, &failing);
    return NULL;
}

int
heartbeat_start(struct heartbeat *hb)
{
    if (pthread_create(&hb->thr, NULL, heartbeat_main, hb) != 0)
        return ANVIL_INTERNAL;
    hb->started = true;
    return ANVIL_OK;
}

void
heartbeat_join(struct heartbeat *hb)
{
    if (hb->started)
        pthread_join(hb->thr, NULL);
    hb->started = false;
}
