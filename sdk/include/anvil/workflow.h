// workflow.h - workflows: DAGs of steps that anvil runs in dependency
// order, passing each step its parents' results.
//
// Build a workflow in memory (anvil_workflow_spec_new,
// anvil_workflow_spec_add_step, anvil_workflow_spec_add_edge, or the
// chain/group helpers), then submit it; the server validates it whole (unique
// names, known parents, no cycle) and stores all of it or none. A step becomes
// QUEUED the moment its last parent SUCCEEDED; its worker sees the parents'
// results in anvil_lease.parents. Or parse the JSON definition format of
// docs/workflows.md with anvil_workflow_spec_parse_json().
//
// Thread safety: a builder (anvil_workflow_spec) belongs to one thread at a
// time. The calls that take an anvil_client are as thread-safe as the
// client. Returned objects are the caller's.
#ifndef ANVIL_WORKFLOW_H
#define ANVIL_WORKFLOW_H

#include <anvil/anvil.h>

#ifdef __cplusplus
extern "C" {
#endif

// Workflow states, numbered as WorkflowState in the .proto.
enum anvil_workflow_state {
    ANVIL_WORKFLOW_UNSPECIFIED = 0,
    ANVIL_WORKFLOW_RUNNING     = 1,
    ANVIL_WORKFLOW_SUCCEEDED   = 2,
    ANVIL_WORKFLOW_FAILED      = 3,
    ANVIL_WORKFLOW_CANCELED    = 4,
};

// What a step's final failure does to the rest.
enum anvil_failure_policy {
    ANVIL_POLICY_FAIL_FAST = 0, // cancel every unfinished step; workflow FAILED
    ANVIL_POLICY_CONTINUE  = 1, // cancel only the failed step's dependents
};

// "RUNNING" for ANVIL_WORKFLOW_RUNNING; "UNSPECIFIED" if unknown.
ANVIL_API const char *anvil_workflow_state_name(
    enum anvil_workflow_state state);

// Parses "running", "SUCCEEDED", ... Returns ANVIL_OK or INVALID_ARGUMENT.
ANVIL_API int anvil_workflow_state_parse(
    const char *name, enum anvil_workflow_state *state);

// True for SUCCEEDED, FAILED and CANCELED.
ANVIL_API bool anvil_workflow_state_final(enum anvil_workflow_state state);

// "fail_fast" or "continue" (the JSON format's names); "unknown" otherwise.
ANVIL_API const char *anvil_failure_policy_name(
    enum anvil_failure_policy policy);

// Parses "fail_fast" or "continue", case-insensitive. Returns ANVIL_OK and
// sets *policy, or INVALID_ARGUMENT.
ANVIL_API int anvil_failure_policy_parse(
    const char *name, enum anvil_failure_policy *policy);

// ---- building ----

typedef struct anvil_workflow_spec anvil_workflow_spec;

// A new, empty workflow called name, FAIL_FAST, no timeout. *out is the
// caller's (anvil_workflow_spec_free). INVALID_ARGUMENT for a NULL name.
ANVIL_API int anvil_workflow_spec_new(
    anvil_workflow_spec **out, const char *name, struct anvil_error *err);

// Frees a spec; NULL is ignored.
ANVIL_API void anvil_workflow_spec_free(anvil_workflow_spec *wf);

// Sets the failure policy. INVALID_ARGUMENT if wf is NULL or policy is
// not an enum anvil_failure_policy value.
ANVIL_API int anvil_workflow_spec_set_policy(anvil_workflow_spec *wf,
    enum anvil_failure_policy policy, struct anvil_error *err);

// Sets the time the whole workflow may take (0 = none): when it passes, the
// server cancels what has not finished and the workflow ends FAILED.
// INVALID_ARGUMENT if wf is NULL or timeout_ms is negative.
ANVIL_API int anvil_workflow_spec_set_timeout(
    anvil_workflow_spec *wf, int64_t timeout_ms, struct anvil_error *err);

// Sets the idempotency key (copied; NULL or "" = none): a second submit
// with the same key returns the first workflow's id, with *existed true.
// INVALID_ARGUMENT if wf is NULL.
ANVIL_API int anvil_workflow_spec_set_key(anvil_workflow_spec *wf,
    const char *idempotency_key, struct anvil_error *err);

// Options of one step; zero-initialise. queue NULL = "default".
struct anvil_step_opts {
    const char               *queue;
    int32_t                   priority;
    int64_t                   timeout_ms; // per attempt; 0 = none
    int64_t                   lease_ms;   // as in struct anvil_job_opts
    struct anvil_retry_policy retry;      // 0 fields = the server's defaults
    // As in struct anvil_job_opts: at most concurrency_limit (1..1,000,000)
    // jobs and steps with concurrency_key ([A-Za-z0-9_.-]{1,128}) run at
    // once, counted from when the step is QUEUED. Both or neither (NULL and
    // 0); the server refuses anything else, naming the step.
    const char *concurrency_key;
    uint32_t    concurrency_limit;
};

// Adds a step (name, type, payload, opts->queue and opts->concurrency_key
// copied; opts may be NULL). ALREADY_EXISTS if the name is taken in this
// workflow; INVALID_ARGUMENT for NULL arguments (payload may be NULL when len
// is 0). Names and types are checked by the server ([A-Za-z0-9_.-]{1,128}).
ANVIL_API int anvil_workflow_spec_add_step(anvil_workflow_spec *wf,
    const char *name, const char *type, const void *payload, size_t len,
    const struct anvil_step_opts *opts, struct anvil_error *err);

// Makes step `name` run after step `parent` (both added already); adding
// the same edge twice is a no-op. NOT_FOUND for an unknown name;
// INVALID_ARGUMENT for a step after itself or a NULL argument. Cycles are
// found when the workflow is submitted.
ANVIL_API int anvil_workflow_spec_add_edge(anvil_workflow_spec *wf,
    const char *name, const char *parent, struct anvil_error *err);

// Chain: each of steps[1..n-1] runs after the one before it (all added
// already). Errors as anvil_workflow_spec_add_edge(); every link is checked
// before any is added, so a bad one leaves the spec unchanged.
ANVIL_API int anvil_workflow_spec_add_chain(anvil_workflow_spec *wf,
    const char *const *steps, size_t n, struct anvil_error *err);

// Group: steps[0..n-1] (n >= 1, all added already) run in parallel after
// `after` (NULL: as soon as their other parents allow), and `join` (NULL:
// none) runs after all of them (a chord). Errors as
// anvil_workflow_spec_add_edge(), checked before any edge is added.
ANVIL_API int anvil_workflow_spec_add_group(anvil_workflow_spec *wf,
    const char *after, const char *const *steps, size_t n, const char *join,
    struct anvil_error *err);

// Parses the JSON definition format (docs/workflows.md) into a new spec:
// len bytes of json (no NUL needed). *out is the caller's
// (anvil_workflow_spec_free). INVALID_ARGUMENT with a message naming the
// key and the step at fault, e.g. `steps[2] ("fetch"): "after" must be an
// array of step names`. A pure function of its input: no I/O, no globals.
ANVIL_API int anvil_workflow_spec_parse_json(const char *json, size_t len,
    anvil_workflow_spec **out, struct anvil_error *err);

// ---- running ----

// Submits the workflow (wf is only read; submit it again or free it).
// *id_out (may be NULL) is its id ("w7"), freed with anvil_free(); *existed
// (may be NULL) says its idempotency key was seen. INVALID_ARGUMENT for a
// workflow without steps, and from the server naming the step at fault
// (duplicate name, unknown parent, cycle such as "a -> b -> a", bad type,
// payload too large).
ANVIL_API int anvil_workflow_submit(anvil_client *c,
    const anvil_workflow_spec *wf, char **id_out, bool *existed,
    struct anvil_error *err);

// A workflow as the server reports it. steps (each an anvil_job whose step,
// after, workflow_id are set) in submission order; n_steps == 0 in lists.
struct anvil_workflow {
    char                     *id;
    char                     *name;
    enum anvil_workflow_state state;
    enum anvil_failure_policy on_failure;
    int64_t                   created_at_ms;
    int64_t                   finished_at_ms;
    int64_t                   timeout_ms;
    char                     *error;
    uint32_t                  steps_total;
    uint32_t                  steps_succeeded;
    uint32_t                  steps_failed;
    uint32_t                  steps_settled;
    struct anvil_job         *steps;
    size_t                    n_steps;
};

// Frees a workflow returned by the library; NULL is ignored.
ANVIL_API void anvil_workflow_free(struct anvil_workflow *wf);

// The step called name in wf->steps (borrowed from wf), or NULL.
ANVIL_API const struct anvil_job *anvil_workflow_find_step(
    const struct anvil_workflow *wf, const char *name);

// Fetches a workflow with every step. *out is the caller's
// (anvil_workflow_free). NOT_FOUND for an unknown id.
ANVIL_API int anvil_workflow_get(anvil_client *c, const char *id,
    struct anvil_workflow **out, struct anvil_error *err);

// Waits up to timeout_ms (0: no limit) for the workflow to end: ANVIL_OK
// with the ended workflow (whatever its state), or DEADLINE_EXCEEDED with
// it as it is now; *out is set in both cases and is the caller's. Long
// waits are made of long-polls of at most a minute each, so any timeout_ms
// works. INVALID_ARGUMENT for a negative timeout; NOT_FOUND for an unknown
// id.
ANVIL_API int anvil_workflow_wait(anvil_client *c, const char *id,
    int timeout_ms, struct anvil_workflow **out, struct anvil_error *err);

// Cancels what has not finished: waiting steps at once, running steps at
// their worker's next heartbeat. The workflow ends CANCELED. *out (may be
// NULL) receives the workflow after the call. FAILED_PRECONDITION if it had
// already SUCCEEDED or FAILED; cancelling a CANCELED workflow again is OK
// and changes nothing.
ANVIL_API int anvil_workflow_cancel(anvil_client *c, const char *id,
    struct anvil_workflow **out, struct anvil_error *err);

// Runs a FAILED or CANCELED workflow again from the steps that did not
// succeed: each goes back to QUEUED (or PENDING, under a parent that must
// run again) with its attempt counter kept and a fresh budget of attempts;
// succeeded steps keep their results and do not run again. *out (may be
// NULL) receives the workflow after the call. FAILED_PRECONDITION if it is
// RUNNING or SUCCEEDED, or a canceled step has not stopped yet; NOT_FOUND
// for an unknown id.
ANVIL_API int anvil_workflow_retry(anvil_client *c, const char *id,
    struct anvil_workflow **out, struct anvil_error *err);

struct anvil_workflow_filter {
    enum anvil_workflow_state state; // ANVIL_WORKFLOW_UNSPECIFIED = any
    const char               *name;  // NULL = any
    uint32_t                  limit; // 0 = 50; at most 1000
    const char               *cursor;
};

struct anvil_workflow_list {
    struct anvil_workflow *workflows; // newest first, without steps
    size_t                 n;
    char                  *next_cursor; // "" on the last page
};

// Lists workflows, newest first (filter may be NULL). *out is the
// caller's (anvil_workflow_list_free).
ANVIL_API int anvil_workflow_list(anvil_client *c,
    const struct anvil_workflow_filter         *filter,
    struct anvil_workflow_list **out, struct anvil_error *err);

// Frees a list; NULL is ignored.
ANVIL_API void anvil_workflow_list_free(struct anvil_workflow_list *list);

#ifdef __cplusplus
}
#endif

#endif // ANVIL_WORKFLOW_H
