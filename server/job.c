// job.c - struct job helpers and the id format.
#include "job.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct retry_policy
retry_policy_resolve(struct retry_policy p, uint32_t default_attempts)
{
    if (p.max_attempts == 0)
        p.max_attempts = default_attempts;
    if (p.initial_backoff_ms == 0)
        p.initial_backoff_ms = RETRY_BACKOFF_INITIAL_MS;
    if (p.max_backoff_ms == 0)
        p.max_backoff_ms = RETRY_BACKOFF_MAX_MS;
    if (!(p.backoff_multiplier > 0))
        p.backoff_multiplier = RETRY_BACKOFF_MULTIPLIER;
    return p;
}

void
job_fini(struct job *j)
{
    if (j == NULL)
        return;
    free(j->type);
    free(j->queue);
    free(j->payload);
    free(j->result);
    free(j->error);
    free(j->worker_id);
    free(j->idem_key);
    free(j->step);
    free(j->progress_message);
    free(j->concurrency_key);
    for (size_t i = 0; j->parents != NULL && i < j->n_parents; i++) {
        free(j->parents[i].step);
        free(j->parents[i].result);
    }
    free(j->parents);
    for (size_t i = 0; j->after != NULL && i < j->n_after; i++)
        free(j->after[i]);
    free(j->after);
    memset(j, 0, sizeof(*j));
}

void
workflow_fini(struct workflow *w)
{
    if (w == NULL)
        return;
    free(w->name);
    free(w->error);
    free(w->idem_key);
    job_array_free(w->steps, w->n);
    memset(w, 0, sizeof(*w));
}

void
workflow_array_free(struct workflow *w, size_t n)
{
    for (size_t i = 0; w != NULL && i < n; i++)
        workflow_fini(&w[i]);
    free(w);
}

void
job_array_free(struct job *jobs, size_t n)
{
    for (size_t i = 0; jobs != NULL && i < n; i++)
        job_fini(&jobs[i]);
    free(jobs);
}

void
job_id_format(int64_t id, char *buf, size_t len)
{
    snprintf(buf, len, "j%lld", (long long) id);
}

static int
id_parse(const char *s, char prefix, int64_t *id)
{
    if (s == NULL || s[0] != prefix || s[1] < '1' || s[1] > '9')
        return -1;
    char *end;
    errno       = 0;
    long long v = strtoll(s + 1, &end, 10);
    if (errno != 0 || *end != '\0' || v <= 0)
        return -1;
    *id = v;
    return 0;
}

int
job_id_parse(const char *s, int64_t *id)
{
    return id_parse(s, 'j', id);
}

void
workflow_id_format(int64_t id, char *buf, size_t len)
{
    snprintf(buf, len, "w%lld", (long long) id);
}

int
workflow_id_parse(const char *s, int64_t *id)
{
    return id_parse(s, 'w', id);
}
