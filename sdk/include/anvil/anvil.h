// anvil.h - the public C API of libanvil, the anvil client SDK.
//
// A client talks to one anvild over nng request/reply (tcp://, ipc://,
// ws://, and tls+tcp:// with anvil_client_set_tls() or $ANVIL_TLS_*).
// Every call is synchronous, returns an int that is 0 (ANVIL_OK) or an enum
// anvil_code, and on failure fills the caller's struct anvil_error (which
// may be NULL) with a sentence a user can act on.
//
// Names follow anvil_<object>_<verb>. Each object the library makes is
// freed by the _free (or _close) of the same object: anvil_job_free,
// anvil_job_list_free, anvil_client_close, ... Lists come back as one
// struct anvil_<object>_list { items, n[, next_cursor] }. Setters are
// anvil_<object>_set_<field>(obj, value, err) and return a code.
//
// Thread safety: one anvil_client may be used from any number of threads at
// once; each call uses its own nng context. Objects returned to the caller
// are the caller's, to free with the matching *_free function.
#ifndef ANVIL_ANVIL_H
#define ANVIL_ANVIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef ANVIL_API
#define ANVIL_API __attribute__((visibility("default")))
#endif

// The release (the VERSION file; the build passes it as -DANVIL_VERSION).
#ifndef ANVIL_VERSION
#define ANVIL_VERSION "0.1.0"
#endif
#define ANVIL_DEFAULT_URL "tcp://127.0.0.1:7700"

// Status codes: the gRPC status numbers, as carried in Reply.code.
enum anvil_code {
    ANVIL_OK                  = 0,
    ANVIL_CANCELLED           = 1,
    ANVIL_UNKNOWN             = 2,
    ANVIL_INVALID_ARGUMENT    = 3,
    ANVIL_DEADLINE_EXCEEDED   = 4,
    ANVIL_NOT_FOUND           = 5,
    ANVIL_ALREADY_EXISTS      = 6,
    ANVIL_PERMISSION_DENIED   = 7,
    ANVIL_RESOURCE_EXHAUSTED  = 8,
    ANVIL_FAILED_PRECONDITION = 9,
    ANVIL_ABORTED             = 10,
    ANVIL_OUT_OF_RANGE        = 11,
    ANVIL_UNIMPLEMENTED       = 12,
    ANVIL_INTERNAL            = 13,
    ANVIL_UNAVAILABLE         = 14,
    ANVIL_DATA_LOSS           = 15,
    ANVIL_UNAUTHENTICATED     = 16,
};

// Job states, numbered as JobState in the .proto.
enum anvil_job_state {
    ANVIL_JOB_UNSPECIFIED = 0,
    ANVIL_JOB_PENDING     = 1, // workflow step waiting on its parents
    ANVIL_JOB_SCHEDULED   = 2, // waiting for its run time (delay, backoff)
    ANVIL_JOB_QUEUED      = 3, // ready for the next worker that polls
    ANVIL_JOB_RUNNING     = 4, // leased to a worker
    ANVIL_JOB_SUCCEEDED   = 5, // final
    ANVIL_JOB_FAILED      = 6, // final
    ANVIL_JOB_CANCELED    = 7, // final
};

// What went wrong: a status code and a sentence naming the problem.
struct anvil_error {
    int  code;
    char msg[256];
};

typedef struct anvil_client anvil_client;

// "INVALID_ARGUMENT" for ANVIL_INVALID_ARGUMENT; "UNKNOWN_CODE" if unknown.
ANVIL_API const char *anvil_code_name(int code);

// A short lower-case description of a code, e.g. "invalid argument".
ANVIL_API const char *anvil_strerror(int code);

// "QUEUED" for ANVIL_JOB_QUEUED; "UNSPECIFIED" if unknown.
ANVIL_API const char *anvil_job_state_name(enum anvil_job_state state);

// Parses a state name, case-insensitive ("queued", "SUCCEEDED").
// Returns ANVIL_OK and sets *state, or ANVIL_INVALID_ARGUMENT.
ANVIL_API int anvil_job_state_parse(
    const char *name, enum anvil_job_state *state);

// True for SUCCEEDED, FAILED and CANCELED.
ANVIL_API bool anvil_job_state_final(enum anvil_job_state state);

// Log callback for library events; the library itself never prints.
// level: 0 error, 1 warn, 2 info, 3 debug. Set once, before any client or
// worker exists; NULL (the default) discards every line. It cannot fail,
// so unlike the object setters it returns nothing.
typedef void (*anvil_log_fn)(void *arg, int level, const char *line);
ANVIL_API void anvil_logger_set(anvil_log_fn fn, void *arg);

// Opens a client for url (NULL: $ANVIL_SERVER, else ANVIL_DEFAULT_URL).
// The connection is made in the background (from the first call on) and
// remade after a loss, so this succeeds while the server is still down;
// calls then wait for it up to their timeout. On success *out is the caller's;
// close with anvil_client_close(). Returns ANVIL_INVALID_ARGUMENT for a bad
// url.
//
// url may also be a comma-separated list of up to 16 URLs (spaces around
// the commas are ignored), the anvild nodes sharing one database, of which
// one, the leader, serves: "tcp://a:7700,tcp://b:7700,tcp://c:7700". The
// client talks to one at a time, starting with the first, and moves when
// a send finds no connection to it within min(timeout, 1 s), when it
// answers UNAVAILABLE (a standby: to the leader it names, if that URL is
// in the list as spelt there, else to the next one, after a short pause),
// or when its connection is lost while a call waits (a long-poll too: the
// call moves at once). Each move resends the same request with the same
// request id, so the server applies it once. A call still fails with
// UNAVAILABLE when no server took it within its timeout. All the URLs
// must use TLS (tls+tcp://) or none; anvil_client_set_tls() applies to
// each, verifying each server's own host name. INVALID_ARGUMENT names
// the bad element: an empty one, a bad URL, too many.
ANVIL_API int anvil_client_open(
    anvil_client **out, const char *url, struct anvil_error *err);

// Sets how long a call waits for its reply, long-polls excluded
// (default 10000 ms; timeout_ms <= 0 restores it). INVALID_ARGUMENT if c
// is NULL. A call fails with
// ANVIL_UNAVAILABLE if no server took its request within this time (it was
// not delivered: safe to retry), and with ANVIL_DEADLINE_EXCEEDED if a
// server took it but no reply came (it may have been applied: retrying a
// submit is safe with an idempotency key). Long-polls (anvil_job_wait,
// anvil_workflow_wait, anvil_lease_poll) wait their own time on top. Safe to
// call at any time.
ANVIL_API int anvil_client_set_timeout(
    anvil_client *c, int timeout_ms, struct anvil_error *err);

// Sets how long the first call waits for a first connection before it
// fails with UNAVAILABLE "nothing listens at URL" (default 0: no such
// limit, the call waits its whole timeout while the connection is
// retried). For one-shot programs (the anvil command), where a refused
// connection is not worth a 10 s wait. Once a connection has been made
// the client redials after a loss as always, and calls wait their usual
// time. INVALID_ARGUMENT if c is NULL or connect_ms is negative.
ANVIL_API int anvil_client_set_connect_timeout(
    anvil_client *c, int connect_ms, struct anvil_error *err);

// TLS settings of a client (paths of PEM files). NULL fields are unset.
struct anvil_tls {
    const char *ca_file;     // CA that signed the server's certificate;
                             // the server is then always verified
    const char *cert_file;   // own certificate, for mutual TLS (with key)
    const char *key_file;    // its private key
    const char *server_name; // name to verify; NULL = the URL's host (of
                             // each URL of a list; a name set applies
                             // to them all)
};

// Sets the TLS settings of the connection: call it after
// anvil_client_open() and before the first call (which starts the
// connection); FAILED_PRECONDITION afterwards. The URL must be tls+tcp://
// (INVALID_ARGUMENT otherwise). cert_file and key_file go together.
// Errors name the file and nng's reason (INVALID_ARGUMENT). A server whose
// certificate the CA does not vouch for is never reached: calls then fail
// with UNAVAILABLE. anvil_client_open() applies $ANVIL_TLS_CA,
// $ANVIL_TLS_CERT and $ANVIL_TLS_KEY by itself for tls+tcp:// URLs; calling
// this function replaces them. Not to be called while other threads use
// the client.
ANVIL_API int anvil_client_set_tls(
    anvil_client *c, const struct anvil_tls *tls, struct anvil_error *err);

// Sets the bearer token sent in every request's envelope (NULL or "":
// none). anvil_client_open() starts with $ANVIL_TOKEN, if set. Not to be
// called while other threads use the client. INVALID_ARGUMENT if c is NULL.
ANVIL_API int anvil_client_set_token(
    anvil_client *c, const char *token, struct anvil_error *err);

// Shuts the client down without freeing it; NULL is ignored. Calls in
// flight on other threads (a parked long-poll included) fail at once with
// ANVIL_UNAVAILABLE, and so does every later call; shutdown returns once
// they have all left the library and the connection is closed. Safe to call
// from any thread while other threads use the client, and more than once;
// not concurrently with anvil_client_close(). Use it to stop threads that
// may be blocked in a call, then join them, then close the client.
ANVIL_API void anvil_client_shutdown(anvil_client *c);

// Closes the client; NULL is ignored. Shuts it down first if needed (calls
// still running on other threads fail at once with ANVIL_UNAVAILABLE and
// close waits for them to return), then frees it. No call may start once
// close has begun.
ANVIL_API void anvil_client_close(anvil_client *c);

// Frees memory the library returned (ids, strings). NULL is ignored.
ANVIL_API void anvil_free(void *p);

// A job's or a workflow step's retry policy: after a failed attempt the job
// waits initial_backoff_ms, then each further wait is backoff_multiplier
// times the one before, at most max_backoff_ms (with jitter), until
// max_attempts attempts have run; then it is FAILED. Zero-initialise: a
// field left 0 takes the server's default. In struct anvil_job it is the
// policy the server stored, defaults filled in.
struct anvil_retry_policy {
    uint32_t max_attempts;       // 0 = the server's default (3); at most 1000
    int64_t  initial_backoff_ms; // wait after the first failure; 0 = 1000
    int64_t  max_backoff_ms;     // the longest wait; 0 = 60000
    double   backoff_multiplier; // growth per failure; 0 = 2; at most 100
};

// A job, as the server reports it. Strings are NUL-terminated and never
// NULL ("" when unset). payload and result are bytes with a NUL after them.
struct anvil_job {
    char                     *id;
    char                     *type;
    char                     *queue;
    uint8_t                  *payload;
    size_t                    payload_len;
    int32_t                   priority;
    enum anvil_job_state      state;
    uint32_t                  attempt;
    struct anvil_retry_policy retry;
    uint8_t                  *result;
    size_t                    result_len;
    char                     *error;
    int64_t                   created_at_ms; // Unix epoch ms; 0 = not yet
    int64_t                   started_at_ms;
    int64_t                   finished_at_ms;
    int64_t                   run_at_ms;
    int64_t                   timeout_ms;
    char                     *workflow_id;
    char                     *step;
    char                     *idempotency_key;
    char                     *worker_id;
    char  **after; // workflow steps: names of the steps this one runs after
    size_t  n_after;
    int64_t lease_ms; // as in struct anvil_job_opts (0 = default)
    // The last progress its worker reported for the current attempt (the
    // last attempt once final); has_progress is false when none was.
    bool    has_progress;
    int32_t progress_percent; // 0..100
    char   *progress_message; // never NULL ("" when none)
    // Its concurrency limit (struct anvil_job_opts): "" and 0 when none.
    char    *concurrency_key; // never NULL
    uint32_t concurrency_limit;
};

// Frees a job returned by the library; NULL is ignored.
ANVIL_API void anvil_job_free(struct anvil_job *job);

// Options of a submit; zero-initialise, then set what you need.
struct anvil_job_opts {
    const char *queue;               // NULL = "default"
    int32_t     priority;            // higher first
    int64_t     delay_ms;            // run no earlier than now + delay_ms
    int64_t     run_at_ms;           // or no earlier than this epoch time
    int64_t     timeout_ms;          // per attempt; 0 = none
    const char *idempotency_key;     // NULL = none
    int64_t     lease_ms;            // lease per Poll/Heartbeat; 0 = server
                                     // default (30 s)
    struct anvil_retry_policy retry; // 0 fields = the server's defaults
    // At most concurrency_limit (1..1,000,000) jobs with concurrency_key
    // ([A-Za-z0-9_.-]{1,128}) run at once; the others wait QUEUED without
    // holding up jobs of other keys. Both or neither (NULL and 0): one
    // without the other is INVALID_ARGUMENT. When jobs of one key carry
    // different limits, the newest job's applies.
    const char *concurrency_key;
    uint32_t    concurrency_limit;
};

// Submits a job of `type` with an opaque payload (len bytes; may be 0).
// opts may be NULL. On success *id_out (may be NULL) is the new job's id,
// freed with anvil_free(), and *existed (may be NULL) says the idempotency
// key had been used before, in which case the id is the first job's.
// Errors: INVALID_ARGUMENT (bad type/queue name, payload too large),
// UNAVAILABLE/DEADLINE_EXCEEDED (no server reply).
ANVIL_API int anvil_job_submit(anvil_client *c, const char *type,
    const void *payload, size_t len, const struct anvil_job_opts *opts,
    char **id_out, bool *existed, struct anvil_error *err);

// One job of a batch submit: what anvil_job_submit() takes, as a struct.
struct anvil_job_spec {
    const char                  *type;
    const void                  *payload; // len bytes; may be NULL if 0
    size_t                       len;
    const struct anvil_job_opts *opts; // NULL = defaults
};

// What the server did with one job of a batch submit.
struct anvil_submit_result {
    int  code;    // ANVIL_OK, or why this job was not stored
    char id[24];  // the job's id when code is ANVIL_OK
    bool existed; // as in anvil_job_submit()
};

// The most jobs one anvil_job_submit_many() call takes.
#define ANVIL_SUBMIT_MANY_MAX 1000

// Submits n jobs (1 to ANVIL_SUBMIT_MANY_MAX) in as few requests as fit
// the server's limits (one request per ~60 KiB of jobs): the server
// stores each request's jobs in one commit, each on its own, as n
// anvil_job_submit() calls would, and results[i] (an array of n the
// caller provides) answers specs[i]. Returns ANVIL_OK when the server
// answered every job: a job it refused has a non-OK results[i].code, err
// names the first one ("jobs[3]: ..."), and *n_failed (may be NULL)
// counts them. Any other return means a request got no answer: results
// before it are set, and it and every later job have that code in
// results[i].code (those may or may not be stored: a resubmit is safe for
// jobs with an idempotency key; the library's own resends of a request
// are applied once). Errors: INVALID_ARGUMENT (n out of range, a NULL
// type or payload), UNAVAILABLE/DEADLINE_EXCEEDED (no server reply).
ANVIL_API int anvil_job_submit_many(anvil_client *c,
    const struct anvil_job_spec *specs, size_t n,
    struct anvil_submit_result *results, size_t *n_failed,
    struct anvil_error *err);

// Fetches one job. *out is the caller's (anvil_job_free). NOT_FOUND if no
// job has that id.
ANVIL_API int anvil_job_get(anvil_client *c, const char *id,
    struct anvil_job **out, struct anvil_error *err);

// Waits up to timeout_ms (0: no limit) for the job to reach a final state.
// Returns ANVIL_OK with the finished job (whatever its final state) or
// ANVIL_DEADLINE_EXCEEDED with the job as it is now; *out is set in both
// cases and is the caller's. Long waits are made of long-polls of at most
// a minute each, so any timeout works. INVALID_ARGUMENT for a negative
// timeout; NOT_FOUND for an unknown id.
ANVIL_API int anvil_job_wait(anvil_client *c, const char *id, int timeout_ms,
    struct anvil_job **out, struct anvil_error *err);

// Fetches the job submitted with idempotency key `key`. *out is the
// caller's (anvil_job_free). INVALID_ARGUMENT for a NULL or empty key;
// NOT_FOUND if no job has that key (or it was deleted by retention).
ANVIL_API int anvil_job_get_by_key(anvil_client *c, const char *key,
    struct anvil_job **out, struct anvil_error *err);

// Runs a FAILED or CANCELED job again under the same id: it goes back to
// QUEUED with its attempt counter and history kept and a budget of
// max_attempts more attempts (0 = the server's default). *out (may be
// NULL) receives the job after the call. FAILED_PRECONDITION if the job
// has not ended or SUCCEEDED, or is a workflow step (anvil_workflow_retry
// retries those); NOT_FOUND for an unknown id.
ANVIL_API int anvil_job_retry(anvil_client *c, const char *id,
    uint32_t max_attempts, struct anvil_job **out, struct anvil_error *err);

// Cancels a job: at once if it has not started, at its worker's next
// heartbeat if it runs. *out (may be NULL) receives the job after the call.
// FAILED_PRECONDITION if the job had already finished.
ANVIL_API int anvil_job_cancel(anvil_client *c, const char *id,
    struct anvil_job **out, struct anvil_error *err);

// Filters of a list (and of anvil_job_retry_many, anvil_job_cancel_many);
// zero-initialise. Unset fields match anything.
struct anvil_job_filter {
    enum anvil_job_state state; // ANVIL_JOB_UNSPECIFIED = any
    const char          *type;
    const char          *queue;
    uint32_t             limit;    // 0 = 50 (retry/cancel_many: 100); <= 1000
    const char          *cursor;   // next_cursor of the previous page
    int64_t              since_ms; // created at or after (epoch ms); 0 = any
    int64_t              until_ms; // created before (epoch ms); 0 = any
};

struct anvil_job_list {
    struct anvil_job *jobs; // n jobs, newest first
    size_t            n;
    char             *next_cursor; // "" on the last page
};

// Lists jobs. *out is the caller's (anvil_job_list_free).
ANVIL_API int anvil_job_list(anvil_client *c,
    const struct anvil_job_filter *filter, struct anvil_job_list **out,
    struct anvil_error *err);

ANVIL_API void anvil_job_list_free(struct anvil_job_list *list);

// The jobs a retry_many or cancel_many changed.
struct anvil_job_id_list {
    char **ids; // n job ids, newest first
    size_t n;
    char  *next_cursor; // "" when no more jobs match; else pass it as
                        // filter->cursor to go on
};

// Dead-letter replay: runs again, as anvil_job_retry() would one by one,
// the FAILED or CANCELED jobs that match filter (filter->state is one of
// the two; workflow steps are left out: anvil_workflow_retry retries
// those), newest first, at most filter->limit of them, in one transaction.
// max_attempts as anvil_job_retry(). *out is the caller's
// (anvil_job_id_list_free): the jobs retried and a cursor when more
// match. Loop while next_cursor is not "" to retry them all; a second pass
// finds none of the first one's jobs, which are no longer FAILED. A resend
// of the same request (after a lost reply) retries nothing more.
// INVALID_ARGUMENT naming the field for a bad filter (no state or another
// state, limit over 1000, since_ms not before until_ms, a bad cursor).
ANVIL_API int anvil_job_retry_many(anvil_client *c,
    const struct anvil_job_filter *filter, uint32_t max_attempts,
    struct anvil_job_id_list **out, struct anvil_error *err);

// Cancels, as anvil_job_cancel() would one by one (a running job at its
// worker's next heartbeat; a workflow step's workflow follows its failure
// policy), the jobs that match filter (filter->state PENDING, SCHEDULED,
// QUEUED or RUNNING), newest first, at most filter->limit of them, in one
// transaction. *out and errors as anvil_job_retry_many(); a job already
// asked to stop is not counted again.
ANVIL_API int anvil_job_cancel_many(anvil_client *c,
    const struct anvil_job_filter *filter, struct anvil_job_id_list **out,
    struct anvil_error *err);

// Frees an id list; NULL is ignored.
ANVIL_API void anvil_job_id_list_free(struct anvil_job_id_list *list);

// Health (anvil_health_get): in anvil/health.h, included below.

// ---- Queues ----

// Pauses queue (a queue name, [A-Za-z0-9_.-]{1,128}): the server keeps
// taking its submits (the jobs wait QUEUED) and lets its running jobs
// finish, but leases none of its jobs to a worker until
// anvil_queue_resume(); a worker's Poll that names only paused queues
// waits as if they were empty. The pause is stored: it outlasts a server
// restart. Pausing a paused queue is OK, and so is pausing a queue no job
// has used yet. *changed (may be NULL) is false when the queue was paused
// already. INVALID_ARGUMENT for a NULL, empty or invalid name;
// PERMISSION_DENIED for a worker's or reader's token. Thread-safe as any
// call on the client.
ANVIL_API int anvil_queue_pause(
    anvil_client *c, const char *queue, bool *changed, struct anvil_error *err);

// Resumes a paused queue: its jobs are leased again at once (workers
// waiting in a Poll get them). Resuming a queue that is not paused is OK
// (*changed false). Errors as anvil_queue_pause().
ANVIL_API int anvil_queue_resume(
    anvil_client *c, const char *queue, bool *changed, struct anvil_error *err);

// Limits queue to rate_per_second leases a second, with up to burst at
// once after an idle spell (0: a tenth of a second's worth, at least 1;
// *burst_set, may be NULL, gets the burst set): a token bucket, stored by the
// server with every lease that takes from it, so a server restart grants
// no second burst. A new limit starts with a full bucket; a changed one
// keeps its tokens (at most the new burst). rate_per_second 0 (with burst
// 0) removes the limit. *changed (may be NULL) is false when the queue
// had that limit already. INVALID_ARGUMENT for a bad name, a rate outside
// 0.001 to 1,000,000 (or 0), a burst over 1,000,000 or a burst without a
// rate; PERMISSION_DENIED for a worker's or reader's token.
ANVIL_API int anvil_queue_limit(anvil_client *c, const char *queue,
    double rate_per_second, uint32_t burst, uint32_t *burst_set, bool *changed,
    struct anvil_error *err);

// ---- Events: every state change, in order (docs/protocol.md) ----

// Event kinds, numbered as EventKind in the .proto.
enum anvil_event_kind {
    ANVIL_EVENT_UNSPECIFIED        = 0,
    ANVIL_EVENT_JOB_SUBMITTED      = 1,
    ANVIL_EVENT_JOB_STARTED        = 2, // an attempt was leased to a worker
    ANVIL_EVENT_JOB_RETRIED        = 3, // another attempt will run
    ANVIL_EVENT_JOB_SUCCEEDED      = 4,
    ANVIL_EVENT_JOB_FAILED         = 5,
    ANVIL_EVENT_JOB_CANCELED       = 6,
    ANVIL_EVENT_WORKFLOW_STARTED   = 7,
    ANVIL_EVENT_WORKFLOW_SUCCEEDED = 8,
    ANVIL_EVENT_WORKFLOW_FAILED    = 9,
    ANVIL_EVENT_WORKFLOW_CANCELED  = 10,
    ANVIL_EVENT_WORKFLOW_RETRIED   = 11,
    ANVIL_EVENT_WORKER_JOINED      = 12,
    ANVIL_EVENT_WORKER_LOST        = 13,
    ANVIL_EVENT_QUEUE_PAUSED       = 14, // anvil_queue_pause (event queue)
    ANVIL_EVENT_QUEUE_RESUMED      = 15,
    ANVIL_EVENT_JOB_PROGRESS       = 16, // a running attempt's progress changed
    ANVIL_EVENT_SCHEDULE_FIRED     = 17, // a schedule's tick submitted a job
    ANVIL_EVENT_QUEUE_LIMITED      = 18, // anvil_queue_limit (event queue)
};

// "JOB_SUCCEEDED" for ANVIL_EVENT_JOB_SUCCEEDED; "UNSPECIFIED" if unknown.
ANVIL_API const char *anvil_event_kind_name(enum anvil_event_kind kind);

// "job.succeeded" for ANVIL_EVENT_JOB_SUCCEEDED (the short form `anvil
// events` prints and GET /v1/events names its events by); "unspecified" if
// unknown.
ANVIL_API const char *anvil_event_kind_label(enum anvil_event_kind kind);

// Parses a kind name, case-insensitive, with '.' or '_' between its words
// and with or without the .proto's "EVENT_KIND_" prefix ("job.succeeded",
// "JOB_SUCCEEDED"). Returns ANVIL_OK and sets *kind, or INVALID_ARGUMENT.
ANVIL_API int anvil_event_kind_parse(
    const char *name, enum anvil_event_kind *kind);

// One event. Strings are never NULL ("" when the event has no such field).
struct anvil_event {
    uint64_t              seq; // grows with every event (gaps possible)
    enum anvil_event_kind kind;
    int64_t               at_ms; // Unix epoch ms
    char                 *job_id;
    char                 *workflow_id; // workflow events and their steps'
    char                 *step;
    char                 *type;
    char                 *queue;
    char                 *worker;  // JOB_STARTED: the lease holder
    uint32_t              attempt; // job events: the attempt concerned
    char                 *message; // the error of a failure, a cancel's
                                   // why, JOB_PROGRESS's message
    int32_t progress_percent;      // JOB_PROGRESS: the percent reported
};

// What anvil_event_watch() looks for; zero-initialise. Unset filters match
// anything.
struct anvil_event_filter {
    uint64_t                     after_seq; // events with seq > after_seq
    const char                  *job_id;
    const char                  *workflow_id;
    const char                  *type;
    const char                  *queue;
    const enum anvil_event_kind *kinds; // n_kinds kinds; 0 = every kind
    size_t                       n_kinds;
    uint32_t                     limit; // 0 = 100; at most 1000
    // Waits up to timeout_ms for a first matching event (0: answer at
    // once). Made of long-polls of at most a minute each, so any value
    // works.
    int      timeout_ms;
    uint32_t tail; // with after_seq 0: start this many events before the
                   // newest (0 = from the oldest kept)
};

struct anvil_event_list {
    struct anvil_event *events; // n events, in seq order
    size_t              n;
    uint64_t next_seq;  // the after_seq of the next watch: past every event
                        // looked at, matching or not
    bool missed;        // events after after_seq were deleted by retention
                        // before they could be read: the reader has a gap
    uint64_t first_seq; // the oldest event the server keeps (0 = none)
    uint64_t last_seq;  // the newest event written
};

// Reads the events after filter->after_seq that match filter (NULL: every
// event from the oldest kept, no wait), waiting up to filter->timeout_ms
// for a first one. Returns ANVIL_OK with *out set (anvil_event_list_free)
// as soon as some events match or `missed` is set, or with an empty list
// once the timeout has passed; either way, continue from (*out)->next_seq.
// INVALID_ARGUMENT for a negative timeout or kinds NULL with n_kinds > 0;
// UNIMPLEMENTED from a server without the event stream.
ANVIL_API int anvil_event_watch(anvil_client *c,
    const struct anvil_event_filter *filter, struct anvil_event_list **out,
    struct anvil_error *err);

// Frees an event list; NULL is ignored.
ANVIL_API void anvil_event_list_free(struct anvil_event_list *list);

// ---- Tokens (an admin token is needed; see docs/security.md) ----

// Roles, numbered as Role in the .proto.
enum anvil_role {
    ANVIL_ROLE_ADMIN = 1, // everything, token management included
    ANVIL_ROLE_CLIENT,    // submit, read, wait, cancel
    ANVIL_ROLE_WORKER,    // Poll, Heartbeat, Complete, Fail
    ANVIL_ROLE_READER,    // read and wait
};

// "admin" for ANVIL_ROLE_ADMIN, ...; "unspecified" if unknown.
ANVIL_API const char *anvil_role_name(enum anvil_role role);

// Parses a role name, case-insensitive ("worker", "ADMIN"). Returns
// ANVIL_OK and sets *role, or ANVIL_INVALID_ARGUMENT.
ANVIL_API int anvil_role_parse(const char *name, enum anvil_role *role);

// A token as the server keeps it: never its secret.
struct anvil_token {
    char           *id;   // e.g. "t3"
    char           *name; // "" when unnamed
    enum anvil_role role;
    int64_t         created_at_ms;
    int64_t         expires_at_ms; // 0 = never
    int64_t         revoked_at_ms; // 0 = not revoked
};

// Creates a token with role and name (NULL or "": unnamed; else
// [A-Za-z0-9_.-]{1,128}) that expires after expires_in_ms (0 = never).
// *out (may be NULL; anvil_token_free) is the token and *secret
// (anvil_free) the bearer secret, shown only now. INVALID_ARGUMENT for a
// bad role, name or duration; PERMISSION_DENIED without an admin token.
ANVIL_API int anvil_token_create(anvil_client *c, enum anvil_role role,
    const char *name, int64_t expires_in_ms, struct anvil_token **out,
    char **secret, struct anvil_error *err);

struct anvil_token_list {
    struct anvil_token *tokens; // n tokens, oldest first
    size_t              n;
};

// Lists every token, revoked and expired ones included. *out is the
// caller's (anvil_token_list_free).
ANVIL_API int anvil_token_list(
    anvil_client *c, struct anvil_token_list **out, struct anvil_error *err);

// Frees a token list; NULL is ignored.
ANVIL_API void anvil_token_list_free(struct anvil_token_list *list);

// Revokes token id at once. *out (may be NULL; anvil_token_free)
// is the token after it. NOT_FOUND for an unknown id.
ANVIL_API int anvil_token_revoke(anvil_client *c, const char *id,
    struct anvil_token **out, struct anvil_error *err);

// Frees a token returned by the library; NULL is ignored.
ANVIL_API void anvil_token_free(struct anvil_token *t);

// ---- Workers ----

// Who a worker is, as it tells the server (WorkerInfo in the .proto).
struct anvil_worker_info {
    const char        *host;
    int64_t            pid;
    const char        *version;
    const char *const *types; // n_types job types it runs
    size_t             n_types;
    const char *const *queues; // n_queues queues it polls
    size_t             n_queues;
    uint32_t           slots;
};

// Copies info into the client: every later anvil_lease_poll() and
// anvil_lease_heartbeat() of this client carries it, so the server lists the
// worker (anvil_worker_status_list). NULL clears it. INVALID_ARGUMENT for a
// NULL client or a NULL name in types/queues. Not to be called while other
// threads use the client.
ANVIL_API int anvil_client_set_worker_info(anvil_client *c,
    const struct anvil_worker_info *info, struct anvil_error *err);

// A worker the server has heard from.
struct anvil_worker_status {
    char    *name; // the worker_id it polls with
    char    *host;
    int64_t  pid;
    char    *version;
    char   **types;
    size_t   n_types;
    char   **queues;
    size_t   n_queues;
    uint32_t slots;
    int64_t  first_seen_ms, last_seen_ms; // Unix epoch ms
    uint32_t running;                     // jobs it holds now
    bool     lost; // missed its heartbeats (anvild --worker-timeout)
};

struct anvil_worker_status_list {
    struct anvil_worker_status *workers; // n workers
    size_t                      n;
};

// Lists the workers the server knows. *out is the caller's
// (anvil_worker_status_list_free).
ANVIL_API int anvil_worker_status_list(anvil_client *c,
    struct anvil_worker_status_list **out, struct anvil_error *err);

// Frees a worker list; NULL is ignored.
ANVIL_API void anvil_worker_status_list_free(
    struct anvil_worker_status_list *list);

// ---- Worker calls. Most programs use anvil/worker.h instead. ----

struct anvil_parent_result {
    char    *step;
    uint8_t *result;
    size_t   result_len;
};

// A job leased to this worker until deadline_ms unless extended.
struct anvil_lease {
    struct anvil_job            job;
    uint32_t                    token; // fencing token; pass to complete/fail
    int64_t                     deadline_ms;
    struct anvil_parent_result *parents; // workflow steps: parents' results
    size_t                      n_parents;
};

struct anvil_poll_req {
    const char        *worker_id;
    const char *const *queues; // n_queues names; 0 = {"default"}
    size_t             n_queues;
    const char *const *types; // job types this worker runs
    size_t             n_types;
    uint32_t           max_jobs; // free slots
    uint32_t           wait_ms;  // long-poll for up to this long
};

struct anvil_lease_list {
    struct anvil_lease *leases; // n leases, in the order the server gave
    size_t              n;
};

// Leases up to max_jobs jobs; waits up to wait_ms when none is ready.
// On success *out is the caller's (anvil_lease_list_free), with n leases
// (0 when the wait ended with none ready); on failure *out is NULL.
// INVALID_ARGUMENT for a NULL req or out, no worker_id, max_jobs 0 or a
// NULL name in queues/types.
ANVIL_API int anvil_lease_poll(anvil_client *c,
    const struct anvil_poll_req *req, struct anvil_lease_list **out,
    struct anvil_error *err);

// Frees a lease list; NULL is ignored.
ANVIL_API void anvil_lease_list_free(struct anvil_lease_list *list);

// Reports success. FAILED_PRECONDITION if the lease is no longer held
// (expired, cancelled, or replaced by a newer attempt): nothing changes.
ANVIL_API int anvil_job_complete(anvil_client *c, const char *job_id,
    uint32_t token, const void *result, size_t len, struct anvil_error *err);

// Reports a failed attempt. retryable=false makes it final. *state (may be
// NULL) receives the job's state after it: SCHEDULED, FAILED or CANCELED.
ANVIL_API int anvil_job_fail(anvil_client *c, const char *job_id,
    uint32_t token, const char *error, bool retryable,
    enum anvil_job_state *state, struct anvil_error *err);

// One attempt's outcome, for anvil_job_report(): a Complete (failed = false,
// with result) or a Fail (failed = true, with error and retryable).
struct anvil_outcome {
    const char *job_id;
    uint32_t    token;
    bool        failed;
    const void *result; // len bytes when !failed
    size_t      len;
    const char *error; // when failed; NULL = ""
    bool        retryable;
};

// What the server did with one outcome.
struct anvil_outcome_result {
    int code; // ANVIL_OK, or as anvil_job_complete()/anvil_job_fail()
    enum anvil_job_state state; // after a Fail: SCHEDULED, FAILED or CANCELED
    int64_t              retry_at_ms; // when SCHEDULED
};

// The most outcomes one anvil_job_report() call takes.
#define ANVIL_REPORT_MAX 1000

// Reports n outcomes (1 to ANVIL_REPORT_MAX) in as few requests as fit
// the server's limits, each applied as its own anvil_job_complete() or
// anvil_job_fail() would be; results[i] (an array of n the caller provides)
// answers outcomes[i]. Returns ANVIL_OK when the server answered every
// outcome (FAILED_PRECONDITION in results[i].code means that lease is no
// longer held; err names the first refused outcome, if any). Any other
// return means a request got no answer: its outcomes and the later ones
// have that code in results[i].code, and reporting them again is safe
// (the lease token fences each outcome).
ANVIL_API int anvil_job_report(anvil_client *c,
    const struct anvil_outcome *outcomes, size_t n,
    struct anvil_outcome_result *results, struct anvil_error *err);

// A progress report's bounds: percent 0..100 and a message of at most
// ANVIL_PROGRESS_MESSAGE_MAX bytes of UTF-8.
#define ANVIL_PROGRESS_MESSAGE_MAX 200

struct anvil_lease_ref {
    const char *job_id;
    uint32_t    token;
    // Optional progress report of the attempt (zero-initialise: none).
    bool        has_progress;
    int32_t     progress_percent; // 0..100
    const char *progress_message; // NULL = ""
};

// What a heartbeat answers: the ids of the jobs to stop.
struct anvil_heartbeat_result {
    char **canceled; // n_canceled job ids cancelled by a user
    size_t n_canceled;
    char **lost; // n_lost job ids no longer this worker's
    size_t n_lost;
};

// Extends the leases this worker holds (n refs; n may be 0), and records
// the progress of those with has_progress. On success
// *out (may be NULL: the ids are then not wanted) is the caller's
// (anvil_heartbeat_result_free); on failure it is NULL. INVALID_ARGUMENT
// for no worker_id, refs NULL with n > 0, a ref without a job_id, or a
// progress out of bounds (percent not 0..100, a message over
// ANVIL_PROGRESS_MESSAGE_MAX bytes or not UTF-8): nothing is sent then.
ANVIL_API int anvil_lease_heartbeat(anvil_client *c, const char *worker_id,
    const struct anvil_lease_ref *refs, size_t n,
    struct anvil_heartbeat_result **out, struct anvil_error *err);

// Frees a heartbeat result; NULL is ignored.
ANVIL_API void anvil_heartbeat_result_free(struct anvil_heartbeat_result *r);

#ifdef __cplusplus
}
#endif

// Declarations kept in headers of their own, part of this one.
#include <anvil/health.h>

#endif // ANVIL_ANVIL_H
