// job.h - the plain job and workflow records shared by the engine, the
// store and the rpc handlers (no protobuf past handlers.c). A struct job or
// struct workflow owns its strings and bytes; job_fini() / workflow_fini()
// free them.
#ifndef SERVER_JOB_H
#define SERVER_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Workflow states and failure policies, numbered as in the .proto.
enum wf_state {
    WF_RUNNING   = 1,
    WF_SUCCEEDED = 2,
    WF_FAILED    = 3,
    WF_CANCELED  = 4,
};

enum wf_policy {
    WF_FAIL_FAST = 0,
    WF_CONTINUE  = 1,
};

// Event kinds, numbered as the .proto's EventKind.
enum event_kind {
    EV_JOB_SUBMITTED      = 1,
    EV_JOB_STARTED        = 2,
    EV_JOB_RETRIED        = 3,
    EV_JOB_SUCCEEDED      = 4,
    EV_JOB_FAILED         = 5,
    EV_JOB_CANCELED       = 6,
    EV_WORKFLOW_STARTED   = 7,
    EV_WORKFLOW_SUCCEEDED = 8,
    EV_WORKFLOW_FAILED    = 9,
    EV_WORKFLOW_CANCELED  = 10,
    EV_WORKFLOW_RETRIED   = 11,
    EV_WORKER_JOINED      = 12,
    EV_WORKER_LOST        = 13,
    EV_QUEUE_PAUSED       = 14,
    EV_QUEUE_RESUMED      = 15,
    EV_JOB_PROGRESS       = 16,
    EV_SCHEDULE_FIRED     = 17,
    EV_QUEUE_LIMITED      = 18,
    EV_KIND_MAX           = 18,
};

// The highest concurrency limit a job may carry.
#define JOB_MAX_CONCURRENCY 1000000

// An event's message is cut to this many bytes (at a UTF-8 boundary).
#define EVENT_MESSAGE_MAX 1024

// A parent step's result, handed to a child step with its lease.
struct parent_result {
    char    *step;
    uint8_t *result;
    size_t   len;
};

// A job's or a step's retry policy. As submitted, 0 in a field means the
// server's default; retry_policy_resolve() fills those in, and what is
// stored never holds a 0.
struct retry_policy {
    uint32_t max_attempts;
    int64_t  initial_backoff_ms; // delay after the first failed attempt
    int64_t  max_backoff_ms;     // the longest delay
    double   backoff_multiplier; // growth per failed attempt
};

#define RETRY_BACKOFF_INITIAL_MS 1000
#define RETRY_BACKOFF_MAX_MS 60000
#define RETRY_BACKOFF_MULTIPLIER 2.0

// p with each 0 field replaced by its default (max_attempts by
// default_attempts, the server's --max-attempts).
struct retry_policy retry_policy_resolve(
    struct retry_policy p, uint32_t default_attempts);

struct job {
    int64_t               id;
    char                 *type;
    char                 *queue;
    uint8_t              *payload;
    size_t                payload_len;
    int32_t               priority;
    int                   state; // enum anvil_job_state
    uint32_t              attempt;
    struct retry_policy   retry; // as stored: every field resolved
    uint8_t              *result;
    size_t                result_len;
    char                 *error;
    int64_t               created_at; // epoch ms; 0 = unset
    int64_t               started_at;
    int64_t               finished_at;
    int64_t               run_at;
    int64_t               timeout_ms;
    int64_t               lease_deadline;
    char                 *worker_id;
    char                 *idem_key;
    bool                  cancel_requested;
    int64_t               workflow_id; // 0 = a plain job
    char                 *step;        // "" for a plain job
    struct parent_result *parents;     // with a lease: the parents' results
    size_t                n_parents;
    char                **after; // in a workflow's status: parents' names
    size_t                n_after;
    int64_t               lease_ms; // 0 = the server's default
    // The last progress reported for this attempt (or the last one, once
    // final); has_progress is false when none was.
    bool    has_progress;
    int32_t progress_percent; // 0..100
    char   *progress_message; // NULL or "" when none
    // Concurrency limit: "" (and 0) when the job has none.
    char    *concurrency_key;
    uint32_t concurrency_limit;
};

struct workflow {
    int64_t     id;
    char       *name;
    int         state;      // enum wf_state
    int         on_failure; // enum wf_policy
    int64_t     created_at;
    int64_t     finished_at;
    int64_t     timeout_ms;
    int64_t     retried_at; // the last RetryWorkflow; 0 = never
    char       *error;
    char       *idem_key;
    uint32_t    n_steps;
    uint32_t    n_settled;
    uint32_t    n_succeeded;
    uint32_t    n_failed;
    struct job *steps; // GetWorkflow: every step in submission order
    size_t      n;
};

void workflow_fini(struct workflow *w);
void workflow_array_free(struct workflow *w, size_t n);

// Workflow ids travel as "w<decimal>".
void workflow_id_format(int64_t id, char *buf, size_t len);
int  workflow_id_parse(const char *s, int64_t *id);

// Frees what j owns and zeroes it; NULL is ignored.
void job_fini(struct job *j);

// Frees an array of n jobs (each job_fini'd) and the array.
void job_array_free(struct job *jobs, size_t n);

// Job ids travel as "j<decimal>". Writes the text form into buf (>= 24).
void job_id_format(int64_t id, char *buf, size_t len);

// Parses "j<decimal>"; returns 0 and sets *id, or -1.
int job_id_parse(const char *s, int64_t *id);

#endif
