// schedule.h - cron schedules: a job (or a workflow) the server submits
// on a cron expression (in an IANA time zone) or every fixed interval,
// exactly once per tick, also across a server crash (docs/schedules.md).
//
// Thread safety: the calls are as thread-safe as the client. Returned
// objects are the caller's.
#ifndef ANVIL_SCHEDULE_H
#define ANVIL_SCHEDULE_H

#include <anvil/anvil.h>
#include <anvil/workflow.h>

#ifdef __cplusplus
extern "C" {
#endif

// What a tick does while the schedule's previous job has not finished
// (OverlapPolicy in the .proto).
enum anvil_schedule_overlap {
    ANVIL_OVERLAP_SKIP            = 0, // submit nothing (the default)
    ANVIL_OVERLAP_ALLOW           = 1, // submit anyway
    ANVIL_OVERLAP_CANCEL_PREVIOUS = 2, // cancel the previous job, submit
};

// What happens to ticks missed while the server was down (CatchUpPolicy).
enum anvil_schedule_catch_up {
    ANVIL_CATCH_UP_ONCE = 0, // one job for all the missed ticks (default)
    ANVIL_CATCH_UP_EACH = 1, // a job per missed tick, at most catch_up_limit
    ANVIL_CATCH_UP_SKIP = 2, // none: go on from the next tick to come
};

// A schedule to create; zero-initialise, then set name, cron and either
// type (a job template) or workflow (a workflow template).
struct anvil_schedule_spec {
    const char *name; // [A-Za-z0-9_.-]{1,128}, unique
    // "*/5 * * * *", "0 9 * * MON-FRI", "@daily", "@every 30s", ...
    const char *cron;
    const char *time_zone; // IANA zone ("Europe/Berlin"); NULL = UTC
    const char *type;      // the job each tick submits
    const void *payload;   // len bytes; may be NULL if 0
    size_t      len;
    // queue, priority, timeout_ms, lease_ms and retry as for a submit;
    // delay_ms, run_at_ms and idempotency_key must be 0 / NULL (each tick
    // sets its own key, "schedule/<name>/<tick ms>").
    const struct anvil_job_opts *opts; // NULL = defaults
    enum anvil_schedule_overlap  overlap;
    enum anvil_schedule_catch_up catch_up;
    uint32_t catch_up_limit; // EACH: at most this many runs; 0 = 100
    // Instead of type (which must then be NULL, with payload and opts):
    // the workflow each tick submits, with the key
    // "schedule/<name>/<tick ms>" (so its own key must be unset). The
    // server checks it as anvil_workflow_submit's. Borrowed for the call.
    // Overlap then looks at the previous tick's workflow (RUNNING = still
    // going; cancel cancels it).
    const anvil_workflow_spec *workflow;
};

// A schedule as the server reports it. Strings are never NULL.
struct anvil_schedule {
    char                        *name;
    char                        *cron;
    char                        *time_zone;
    char                        *type;
    char                        *queue;
    uint8_t                     *payload; // with a NUL after it
    size_t                       payload_len;
    int32_t                      priority;
    struct anvil_retry_policy    retry;
    int64_t                      timeout_ms;
    int64_t                      lease_ms;
    enum anvil_schedule_overlap  overlap;
    enum anvil_schedule_catch_up catch_up;
    uint32_t                     catch_up_limit;
    bool                         paused;
    int64_t                      next_fire_ms; // Unix epoch ms
    int64_t                      last_fire_ms; // 0 = never fired
    char                        *last_job_id;  // "" = none
    uint64_t                     fired;        // jobs submitted
    uint64_t                     skipped;      // ticks that submitted none
    int64_t                      created_at_ms;
    // A workflow template: its name and number of steps (type and queue
    // are then ""), and the last workflow fired. "" / 0 for a job template.
    char  *workflow_name;
    size_t workflow_steps;
    char  *last_workflow_id; // "" = none
};

struct anvil_schedule_list {
    struct anvil_schedule *schedules; // n schedules, by name
    size_t                 n;
};

// Creates a schedule; *out (may be NULL; anvil_schedule_free) is it as
// stored, with its first tick. Errors: INVALID_ARGUMENT naming the field
// (a bad cron field and value, an expression that never fires, an unknown
// time zone, a bad job or workflow template, both templates or neither),
// ALREADY_EXISTS for a taken name,
// PERMISSION_DENIED for a worker's or reader's token.
ANVIL_API int anvil_schedule_create(anvil_client *c,
    const struct anvil_schedule_spec *spec, struct anvil_schedule **out,
    struct anvil_error *err);

// Fetches schedule `name` into *out (anvil_schedule_free). NOT_FOUND when
// there is none.
ANVIL_API int anvil_schedule_get(anvil_client *c, const char *name,
    struct anvil_schedule **out, struct anvil_error *err);

// Lists every schedule, by name. *out is the caller's
// (anvil_schedule_list_free).
ANVIL_API int anvil_schedule_list(
    anvil_client *c, struct anvil_schedule_list **out, struct anvil_error *err);

// Pauses schedule `name` (no tick fires until it is resumed); resuming
// goes on from the next tick after now. Both are OK when it already is
// so. *out (may be NULL; anvil_schedule_free) is the schedule after it.
// NOT_FOUND when there is none.
ANVIL_API int anvil_schedule_pause(anvil_client *c, const char *name,
    struct anvil_schedule **out, struct anvil_error *err);
ANVIL_API int anvil_schedule_resume(anvil_client *c, const char *name,
    struct anvil_schedule **out, struct anvil_error *err);

// Deletes schedule `name` (the jobs it made stay). *out (may be NULL) is
// the schedule as it was. NOT_FOUND when there is none.
ANVIL_API int anvil_schedule_delete(anvil_client *c, const char *name,
    struct anvil_schedule **out, struct anvil_error *err);

// Free what the calls above return; NULL is ignored.
ANVIL_API void anvil_schedule_free(struct anvil_schedule *s);
ANVIL_API void anvil_schedule_list_free(struct anvil_schedule_list *list);

// "skip", "allow", "cancel"; "once", "each", "skip" (NULL when out of
// range), and the same parsed, case-insensitive (INVALID_ARGUMENT when
// unknown).
ANVIL_API const char *anvil_schedule_overlap_name(
    enum anvil_schedule_overlap o);
ANVIL_API const char *anvil_schedule_catch_up_name(
    enum anvil_schedule_catch_up p);
ANVIL_API int anvil_schedule_overlap_parse(
    const char *name, enum anvil_schedule_overlap *out);
ANVIL_API int anvil_schedule_catch_up_parse(
    const char *name, enum anvil_schedule_catch_up *out);

#ifdef __cplusplus
}
#endif

#endif
