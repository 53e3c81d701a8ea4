// job.c - struct job helpers and the id format.
#include "job.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    memset(j, 0, sizeof(*j));
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

int
job_id_parse(const char *s, int64_t *id)
{
    if (s == NULL || s[0] != 'j' || s[1] < '1' || s[1] > '9')
        return -1;
    char *end;
    errno       = 0;
    long long v = strtoll(s + 1, &end, 10);
    if (errno != 0 || *end != '\0' || v <= 0)
        return -1;
    *id = v;
    return 0;
}
