// slots.c - the slot threads (see slots.h).
#include "runtime/slots.h"

#include "runtime/rtutil.h"
#include "util/clock.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

static const struct handler *
find_handler(const struct slots *s, const char *type)
{
    for (size_t i = 0; i < s->n_handlers; i++) {
        if (strcmp(s->handlers[i].type, type) == 0)
            return &s->handlers[i];
    }
    return NULL;
}

static int
call_handler(const struct slots *s, struct task *t)
{
    const struct anvil_job *job = &t->lease->job;
    const struct handler   *h   = find_handler(s, job->type);
    if (h == NULL) {
        anvil_job_ctx_set_error(&t->ctx, true,
            "worker %s has no handler for %s", s->name, job->type);
        return ANVIL_UNIMPLEMENTED;
    }
    int rc = h->fn(h->arg, t->lease, &t->ctx);
    if (rc != ANVIL_OK && t->ctx.error == NULL)
        anvil_job_ctx_set_error(&t->ctx, true, "%s handler failed: %s",
            job->type, anvil_code_name(rc));
    return rc;
}

static void
log_outcome(const struct task *t, int rc, int64_t ms)
{
    const struct anvil_job *job = &t->lease->job;
    char                    msg[512];
    if (rc == ANVIL_OK) {
        AV_INFO("worker.job.done", "id=%s type=%s attempt=%u ms=%lld", job->id,
            job->type, job->attempt, (long long) ms);
        return;
    }
    AV_INFO("worker.job.fail",
        "id=%s type=%s attempt=%u ms=%lld code=%s retryable=%s error=\"%s\"",
        job->id, job->type, job->attempt, (long long) ms, anvil_code_name(rc),
        t->ctx.retryable ? "true" : "false",
        rtutil_log_safe(msg, sizeof(msg), t->ctx.error));
}

// Runs the handler of t, unless it was canceled before it started.
static int
run_task(const struct slots *s, struct task *t)
{
    const struct anvil_job *job = &t->lease->job;
    if (t->skip) {
        anvil_job_ctx_set_error(&t->ctx, true, "canceled before it started");
        log_outcome(t, ANVIL_CANCELLED, 0);
        return ANVIL_CANCELLED;
    }
    AV_INFO("worker.job.start", "id=%s type=%s attempt=%u", job->id, job->type,
        job->attempt);
    int64_t start = av_mono_ms();
    int     rc    = call_handler(s, t);
    log_outcome(t, rc, av_mono_ms() - start);
    return rc;
}

static void *
slot_main(void *arg)
{
    struct slots *s = arg;
    for (;;) {
        struct task *t = tasks_next(s->ts);
        if (t == NULL)
            break;
        t->ok = run_task(s, t) == ANVIL_OK;
        reporter_hand(s->rep, t); // and take the next job at once
    }
    return NULL;
}

int
slots_start(struct slots *s, int n)
{
    s->thr = calloc((size_t) n, sizeof(pthread_t));
    if (s->thr == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    for (; s->n_thr < n; s->n_thr++) {
        if (pthread_create(&s->thr[s->n_thr], NULL, slot_main, s) != 0)
            return ANVIL_INTERNAL;
    }
    return ANVIL_OK;
}

void
slots_join(struct slots *s)
{
    for (int i = 0; i < s->n_thr; i++)
        pthread_join(s->thr[i], NULL);
    s->n_thr = 0;
    free(s->thr);
    s->thr = NULL;
}
