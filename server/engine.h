// engine.h - the engine: one thread that owns the store and every piece of
// job state, and applies commands in batches (group commit).
//
// Any thread posts a struct cmd with engine_submit(). The engine thread
// takes every command waiting, applies them all in ONE transaction (a
// savepoint each, so one failing command does not undo the others),
// commits, and only then calls each command's done() callback: on the
// engine thread, or, when the store defers its sync (store_needs_sync), on
// the engine's sync thread once the commit is on disk, while the engine
// thread already applies the next batch. A long-poll (Poll, WaitJob) may be
// parked: its done() runs later, when work arrives or its wait ends. The
// command's memory belongs to the caller throughout; borrowed input pointers
// must stay valid until done() runs. After done() the caller frees outputs with
// engine_cmd_fini().
//
// engine_call() is engine_submit() for a caller that may wait for its own
// reply: when the engine is idle (no batch running, nothing posted) the
// calling thread runs the batch itself, commit and sync included, and the
// reply leaves from it, without waking the engine thread; under load it
// posts like engine_submit(), and group commit works as before.
//
// Lock: engine.lock guards the incoming command list, the stop flag and
// `busy`; everything else is touched only by the thread that set `busy`
// (the engine thread, or an engine_call() caller running a batch).
#ifndef SERVER_ENGINE_H
#define SERVER_ENGINE_H

#include "job.h"
#include "registry.h"
#include "store.h"
#include "util/sha256.h"

#include <anvil/anvil.h>
#include <stdbool.h>
#include <stdint.h>

// One kind per row of rpc_table.h.
enum cmd_kind {
#define RPC(method, kind, ...) CMD_##kind,
#define CMD(kind, ...) CMD_##kind,
#include "rpc_table.h"
#undef RPC
#undef CMD
    CMD_NKINDS
};

struct lease_ref {
    int64_t     id;
    uint32_t    token;
    bool        has_progress;     // the worker reported progress:
    int32_t     progress_percent; // 0..100 (checked at decode)
    const char *progress_message; // UTF-8, <= ANVIL_PROGRESS_MESSAGE_MAX B
};

struct cmd_submit {
    const char         *type;
    const char         *queue;
    const char         *key; // idempotency key; NULL = none
    const uint8_t      *payload;
    size_t              len;
    int32_t             priority;
    int64_t             delay_ms;
    int64_t             run_at_ms;
    int64_t             timeout_ms;
    int64_t             lease_ms; // 0 = default
    struct retry_policy retry;    // 0 fields = default
    const char         *ckey;     // concurrency key; NULL = none
    uint32_t            climit;   // with ckey: 1..JOB_MAX_CONCURRENCY
    int64_t             id;       // out
    bool                existed;  // out
};

struct cmd_job { // GET, CANCEL
    int64_t     id;
    const char *key; // GET: find by idempotency key instead (id 0)
    struct job  job; // out
};

struct cmd_retry {
    int64_t    id;
    uint32_t   max_attempts; // at least this many more attempts; 0 = 1
    struct job job;          // out: the job after the retry
};

// WatchEvents. Parks until an event matching the filter is written (or
// timeout_ms ends); answers at most f.limit events.
struct cmd_events {
    struct store_event_filter f;          // f.after_seq: from the request
    uint32_t                  tail;       // with after_seq 0 (see .proto)
    uint32_t                  timeout_ms; // 0 = answer at once
    struct store_event       *events;     // out (store_events_free)
    size_t                    n;          // out
    uint64_t                  next_seq;   // out
    bool                      missed;     // out
    uint64_t                  first_seq;  // out
    uint64_t                  last_seq;   // out
};

struct cmd_wait {
    int64_t    id;
    uint32_t   timeout_ms;
    struct job job;  // out
    bool       done; // out: the job is final
};

struct cmd_list {
    struct store_list_filter f;
    struct job              *jobs;        // out
    size_t                   n;           // out
    int64_t                  next_before; // out; 0 = last page
};

struct cmd_poll {
    const char               *worker;
    const char *const        *queues;
    size_t                    nq;
    const char *const        *types;
    size_t                    nt;
    uint32_t                  max;
    uint32_t                  wait_ms;
    const struct worker_info *info; // NULL = not sent
    struct job               *jobs; // out: leased jobs; token = attempt,
    size_t                    n;    // deadline = lease_deadline
};

struct cmd_heartbeat {
    const char               *worker;
    const struct lease_ref   *refs;
    size_t                    n;
    const struct worker_info *info;     // NULL = not sent
    int64_t                  *canceled; // out
    size_t                    ncanceled;
    int64_t                  *lost; // out
    size_t                    nlost;
    int64_t                   deadline; // out
};

struct cmd_complete {
    int64_t        id;
    uint32_t       token;
    const uint8_t *result;
    size_t         len;
};

struct cmd_fail {
    int64_t     id;
    uint32_t    token;
    const char *error;
    bool        no_retry;
    int         state;    // out
    int64_t     retry_at; // out
};

struct cmd_workers {
    struct registry_entry *w; // out
    size_t                 n;
};

struct cmd_token {
    int                 role;       // CREATE
    const char         *name;       // CREATE
    int64_t             expires_in; // CREATE; 0 = never
    int64_t             id;         // REVOKE
    struct store_token *tokens;     // out: the one created or revoked; LIST
    size_t              n;
    char                secret[96];          // out, CREATE: shown once
    uint8_t             hash[AV_SHA256_LEN]; // out, CREATE: the secret's
    int64_t             expires_at;          // out, CREATE
    int64_t             at;                  // out, REVOKE: when
};

// RETRY_MANY, CANCEL_MANY (RetryJobs, CancelJobs): the jobs ListJobs lists
// for f (f.state set; RETRY_MANY leaves workflow steps out), at most
// f.limit, each retried or canceled as RetryJob or CancelJob would.
struct cmd_bulk {
    struct store_list_filter f;
    uint32_t                 max_attempts; // RETRY_MANY: as cmd_retry
    int64_t                 *ids;          // out: the jobs changed (free())
    size_t                   n;            // out
    int64_t                  next_before;  // out: 0 = no more match
};

struct cmd_queue { // QUEUE_PAUSE, QUEUE_RESUME, QUEUE_LIMIT
    const char *queue;
    bool        changed; // out: false when it already was in that state
    double      rate;    // QUEUE_LIMIT: tokens a second (0: no limit)
    uint32_t    burst;   // QUEUE_LIMIT: >= 1 (with rate 0: 0)
    double      tokens;  // QUEUE_LIMIT, out: the bucket's after the call
    bool        had;     // QUEUE_LIMIT, out: the queue had a limit
    int64_t     at;      // QUEUE_LIMIT, out: the time of tokens (ms)
};

// CreateSchedule, GetSchedule, ListSchedules, PauseSchedule,
// ResumeSchedule, DeleteSchedule (schedules.c).
struct cmd_schedule {
    const char            *name; // all but LIST
    struct store_schedule  spec; // CREATE: the new schedule (borrowed)
    struct store_schedule *out;  // out: the schedule, or LIST's
    size_t                 n;    // (store_schedules_free)
};

// Jobs that ended in one minute, per queue and type (HealthResponse.recent).
struct minute_count {
    int64_t  minute_ms;
    char     queue[STORE_LABEL_LEN];
    char     type[STORE_LABEL_LEN];
    uint64_t succeeded;
    uint64_t failed;
    uint64_t retried;
};

// Health lists at most this many concurrency keys, the busiest first.
#define HEALTH_BUSIEST_KEYS 20

// One concurrency key in a Health reply (key is owned: free()).
struct cmd_key_state {
    char    *key;
    uint32_t running;
    uint64_t waiting;
    uint32_t limit;
};

struct cmd_health {
    struct store_depth       *depths; // out
    size_t                    n;
    uint64_t                  total;
    int64_t                   uptime_ms;
    struct minute_count      *recent; // out, oldest minute first (free())
    size_t                    n_recent;
    uint64_t                  last_event_seq; // out
    char                    **paused;         // out: paused queues, sorted
    size_t                    n_paused;       // (store_names_free)
    struct store_queue_limit *limits;         // out: rate limits, sorted
    size_t                    n_limits;       // (store_queue_limits_free)
    struct cmd_key_state     *keys; // out: the busiest concurrency keys
    size_t                    n_keys;
};

struct cmd_wf_step {
    const char         *name;
    const char         *type;
    const char         *queue;
    const uint8_t      *payload;
    size_t              len;
    int32_t             priority;
    int64_t             timeout_ms;
    int64_t             lease_ms;
    struct retry_policy retry;  // 0 fields = default
    const char         *ckey;   // concurrency key; NULL = none
    uint32_t            climit; // with ckey
};

struct dag;

struct cmd_wf_submit {
    const char               *name;
    int                       on_failure; // enum wf_policy
    int64_t                   timeout_ms;
    const char               *key; // idempotency key; NULL = none
    const struct cmd_wf_step *steps;
    size_t                    n;
    const struct dag         *dag;     // validated graph of steps
    int64_t                   id;      // out
    bool                      existed; // out
};

struct cmd_wf { // WF_GET, WF_WAIT, WF_CANCEL
    int64_t         id;
    uint32_t        timeout_ms; // WF_WAIT
    struct workflow wf;         // out, with steps
    bool            done;       // out (WF_WAIT): the workflow is final
};

struct cmd_wf_list {
    struct store_list_filter f;   // f.type filters by workflow name
    struct workflow         *wfs; // out, without steps
    size_t                   n;
    int64_t                  next_before;
};

// Several commands in one request (SubmitJobs, Report: the rows of access
// ITEMS in rpc_table.h). Each item is
// applied in its own savepoint, as if posted alone, and answered in its
// own err; an item whose err is already set (refused at decode) is
// skipped. Items inherit the batch's caller; item i's request_id is the
// batch's + i (0 stays 0). Items never park.
struct cmd_batch {
    struct cmd *items;
    size_t      n;
};

// GET /metrics. Set kind = CMD_METRICS (and done, done_arg); nothing else
// is read. Read-only, never parks; done() runs as for any command (engine
// or sync thread, or the posting thread when refused). On ANVIL_OK, text
// holds the whole exposition (metrics.h METRICS_CONTENT_TYPE), malloc'd and
// NUL-terminated, len bytes without the NUL; engine_cmd_fini() frees it (or
// take it and set text to NULL). Errors: UNAVAILABLE "metrics are off
// (anvild --no-metrics)" when engine_config.metrics is NULL, UNAVAILABLE
// when the server is stopping or failed, RESOURCE_EXHAUSTED, or the
// store's code.
struct cmd_metrics {
    char  *text; // out
    size_t len;  // out
};

// Where a traced command was when (struct cmd.trace, Reply.trace_us).
enum cmd_trace_hop {
    CMD_TRACE_RECEIVED, // the transport decoded it
    CMD_TRACE_TAKEN,    // a batch took it
    CMD_TRACE_APPLIED,  // its apply function returned (or it parked)
    CMD_TRACE_COMMITTED,
    CMD_TRACE_SYNCED, // durable (= COMMITTED without a deferred sync)
    CMD_TRACE_REPLIED,
    CMD_TRACE_HOPS
};

struct cmd {
    enum cmd_kind kind;
    uint64_t      request_id; // envelope request id; 0 = none
    int64_t       token_id;   // caller's API token; 0 = auth off
    int           role;       // caller's role (enum anvil_role)
    uint32_t      pipe;       // the connection it came on (nng pipe id)
    union {
        struct cmd_submit    submit;
        struct cmd_job       get;
        struct cmd_job       cancel;
        struct cmd_wait      wait;
        struct cmd_list      list;
        struct cmd_poll      poll;
        struct cmd_heartbeat heartbeat;
        struct cmd_complete  complete;
        struct cmd_fail      fail;
        struct cmd_health    health;
        struct cmd_workers   workers;
        struct cmd_token     token;
        struct cmd_wf_submit wf_submit;
        struct cmd_wf        wf;
        struct cmd_wf_list   wf_list;
        struct cmd_batch     batch;
        struct cmd_metrics   metrics;
        struct cmd_retry     retry;
        struct cmd_events    events;
        struct cmd_queue     queue;
        struct cmd_bulk      bulk;
        struct cmd_schedule  schedule;
    } u;
    struct anvil_error err; // result: code and message
    void (*done)(struct cmd *c, void *arg);
    void *done_arg;
    // Per-hop timestamps (Request.trace): NULL unless the caller asked;
    // then CMD_TRACE_HOPS av_mono_us() stamps, filled as the command
    // passes each point (enum cmd_trace_hop).
    int64_t *trace;
    // Engine-private.
    struct cmd *next;
    uint64_t    waiter_seq;
};

#define ENGINE_EVENT_RETENTION_MS (24LL * 3600 * 1000)
#define ENGINE_EVENT_MAX 10000000ULL

struct auth;
struct engine;
struct metrics;

struct engine_config {
    struct auth    *auth;           // token table to update; may be NULL
    int64_t         lease_ms;       // default lease; 30000
    uint32_t        max_attempts;   // default max attempts; 3
    int64_t         retention_ms;   // finished work kept this long; 0 = forever
    int64_t         worker_lost_ms; // a worker unheard of this long is lost
    int64_t         event_retention_ms; // events kept this long; 0 = 24 h
    uint64_t        event_max; // and at most this many newest; 0 = 10,000,000
    bool            no_events; // write no events (anvild --no-events)
    int             max_queue; // commands waiting for the engine; 0 = 100000
    struct metrics *metrics;   // counted into, rendered by CMD_METRICS;
                               // NULL = metrics off; outlives the engine
    // Called once, from the engine or its sync thread, when the engine can
    // no longer go on (a sync or a rebuild from the store failed): it then
    // refuses every command; the owner should stop the server. May be NULL.
    void (*on_fatal)(void *arg, const struct anvil_error *err);
    void *fatal_arg;
};

// Rebuilds the ready queues and timers from the store and starts the
// engine thread. The store stays the caller's but only the engine may use
// it until engine_stop() returns. *out is the caller's.
int engine_start(struct store *st, const struct engine_config *cfg,
    struct engine **out, struct anvil_error *err);

// Posts a command. Any thread. c->done(c, c->done_arg) is called exactly
// once, on the thread that runs the batch answering it: the engine thread,
// the sync thread, or an engine_call() caller leading a batch (a parked
// long-poll may be answered by anyone's batch); or on this thread, with
// UNAVAILABLE, when the engine is stopping.
void engine_submit(struct engine *e, struct cmd *c);

// Applies c at once on the calling thread when the engine is idle (then
// c->done() runs on this thread before engine_call() returns, unless c
// parks or its sync goes to the sync thread), else posts it as
// engine_submit() does. For callers that may block for a commit and a
// sync (nng's callbacks; not the HTTP server's single polling thread).
void engine_call(struct engine *e, struct cmd *c);

// Applies what was posted, answers parked long-polls with UNAVAILABLE,
// joins the thread and frees the engine. NULL is ignored.
void engine_stop(struct engine *e);

// Frees a command's outputs (after its done() ran).
void engine_cmd_fini(struct cmd *c);

// Retry delay before attempt+1 after `attempt` failed: initial *
// multiplier^(attempt-1), capped at max, scaled by jitter in [0.8, 1.2).
int64_t engine_backoff_ms(uint32_t attempt, int64_t initial, int64_t max,
    double multiplier, double jitter);

#endif
