// handlers_impl.h - what the handlers_*.c files share: limits, name checks,
// the wire job, and the decode/encode functions of the handler table.
#ifndef SERVER_HANDLERS_IMPL_H
#define SERVER_HANDLERS_IMPL_H

#include "anvil/v1/anvil.pb-c.h"
#include "handlers.h"

#define MAX_NAME 128
#define MAX_KEY 256
#define MAX_LIST_LIMIT 1000
#define DEFAULT_LIST_LIMIT 50
#define MAX_WAIT_MS 300000u
#define MAX_ATTEMPTS_LIMIT 1000u

#define MAX_HOST 255
// Durations and times are bounded so that adding them to now can never
// overflow: ten years, and run_at before the year 2200.
#define MAX_DURATION_MS (10LL * 366 * 24 * 3600 * 1000)
#define MAX_TIME_MS 7258118400000LL
#define MIN_LEASE_MS 100
#define MAX_LEASE_MS (24 * 3600 * 1000)

// A job's or step's retry, timeout and lease settings (0 = default).
struct handler_policy {
    struct retry_policy retry;
    int64_t             timeout_ms;
    int64_t             lease_ms;
};

// INVALID_ARGUMENT naming the setting unless every one is in range.
int handlers_check_policy(
    const struct handler_policy *p, struct anvil_error *err);

// INVALID_ARGUMENT naming the field unless key and limit are both absent
// ("" and 0) or a valid name and 1..JOB_MAX_CONCURRENCY.
int handlers_check_concurrency(
    const char *key, uint32_t limit, struct anvil_error *err);

typedef int (*decode_fn)(
    const struct handler_limits *, struct call *, struct anvil_error *);
typedef int (*encode_fn)(struct call *, ProtobufCMessage **, void **);

// INVALID_ARGUMENT naming field unless s is a valid name.
int handlers_check_name(
    const char *field, const char *s, struct anvil_error *err);

// INVALID_ARGUMENT unless names holds at most 64 valid names.
int handlers_check_names(
    const char *field, char **names, size_t n, struct anvil_error *err);

// A wire job and the text of its ids.
struct pb_job {
    Anvil__V1__Job      m;
    Anvil__V1__Progress progress;
    char                id[24];
    char                wf[24];
};

// Points p's message at j's fields (borrowed: j must outlive the pack).
void handlers_job_to_pb(const struct job *j, struct pb_job *p);

// Reply memory: a zeroed block of n items of `size` bytes that lives as
// long as the reply. Every block is chained to *scratch, and
// handlers_free (the free_reply of the rpcs that use it) frees the chain.
// NULL when out of memory; the chain stays whole either way.
void *handlers_alloc(void **scratch, size_t n, size_t size);
void  handlers_free(void *scratch);

// Fills the wire item `to` from the engine's item `from`.
typedef void (*pb_fill_fn)(const void *from, void *to);

// A repeated message field in reply memory: n items of `size` bytes (each
// with its message first), item i filled from from + i * from_size, and
// the n pointers to them that the field holds. NULL when out of memory.
void **handlers_list(void **scratch, const void *from, size_t n,
    size_t from_size, size_t size, pb_fill_fn fill);

// The wire forms of n jobs in reply memory, as handlers_list.
Anvil__V1__Job **handlers_jobs_to_pb(
    void **scratch, const struct job *jobs, size_t n);

// The job filter of ListJobs, RetryJobs and CancelJobs (their fields 1-7),
// borrowed from the request.
struct handler_filter {
    int         state;
    const char *type;
    const char *queue;
    uint32_t    limit;
    const char *cursor;
    int64_t     since_ms;
    int64_t     until_ms;
};

// Checks in and fills f (limit 0 = def_limit); INVALID_ARGUMENT naming the
// field otherwise.
int handlers_decode_filter(const struct handler_filter *in, uint32_t def_limit,
    struct store_list_filter *f, struct anvil_error *err);

// The text of n job ids in reply memory (see handlers_alloc); NULL when out
// of memory.
char **handlers_job_ids(void **scratch, const int64_t *ids, size_t n);

// One job of SubmitJob or SubmitJobs into c (CMD_SUBMIT).
int handlers_decode_submit_item(const struct handler_limits *lim,
    const Anvil__V1__SubmitJobRequest *r, struct cmd *c,
    struct anvil_error *err);
// One Complete (CMD_COMPLETE) or Fail (CMD_FAIL) of a request or a Report.
int handlers_decode_complete_item(const struct handler_limits *lim,
    const char *job_id, uint32_t token, const ProtobufCBinaryData *result,
    struct cmd *c, struct anvil_error *err);
int handlers_decode_fail_item(const char *job_id, uint32_t token,
    const char *error, bool no_retry, struct cmd *c, struct anvil_error *err);

// INVALID_ARGUMENT (empty) or NOT_FOUND (malformed) unless s is a job id.
int handlers_parse_job_id(const char *s, int64_t *id, struct anvil_error *err);

// The decode, encode and free_reply of every rpc row of rpc_table.h: the
// job rpcs in handlers.c, workers and health in handlers_worker.c,
// workflows in handlers_flow.c, batches in handlers_batch.c, tokens in
// handlers_admin.c, events in handlers_events.c, paused queues in
// handlers_queue.c, RetryJobs and CancelJobs in handlers_bulk.c. A row may name
// free() (a reply of one calloc) or handlers_free (a reply in reply memory).
#define RPC(                                                              \
    method, kind, apply, fini, access, decode, encode, free_reply, roles) \
    int  decode(const struct handler_limits *lim, struct call *call,      \
         struct anvil_error *err);                                        \
    int  encode(struct call *call, ProtobufCMessage **out, void **s);     \
    void free_reply(void *s);
#define CMD(...)
#include "rpc_table.h"
#undef RPC
#undef CMD

#endif
