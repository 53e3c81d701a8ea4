// job.h - the plain job record shared by the engine, the store and the rpc
// handlers (no protobuf past handlers.c). A struct job owns its strings and
// bytes; job_fini() frees them.
#ifndef SERVER_JOB_H
#define SERVER_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct job {
    int64_t  id;
    char    *type;
    char    *queue;
    uint8_t *payload;
    size_t   payload_len;
    int32_t  priority;
    int      state; // enum anvil_job_state
    uint32_t attempt;
    uint32_t max_attempts;
    uint8_t *result;
    size_t   result_len;
    char    *error;
    int64_t  created_at; // epoch ms; 0 = unset
    int64_t  started_at;
    int64_t  finished_at;
    int64_t  run_at;
    int64_t  timeout_ms;
    int64_t  lease_deadline;
    char    *worker_id;
    char    *idem_key;
    bool     cancel_requested;
};

// Frees what j owns and zeroes it; NULL is ignored.
void job_fini(struct job *j);

// Frees an array of n jobs (each job_fini'd) and the array.
void job_array_free(struct job *jobs, size_t n);

// Job ids travel as "j<decimal>". Writes the text form into buf (>= 24).
void job_id_format(int64_t id, char *buf, size_t len);

// Parses "j<decimal>"; returns 0 and sets *id, or -1.
int job_id_parse(const char *s, int64_t *id);

#endif
