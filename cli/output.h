// output.h - how the anvil command prints jobs, workflows, lists and
// health: aligned "Field: value" lines and tables for people, one JSON
// object for scripts.
//
// Shared by every verb (cli/cmd_*.c). Pure functions of their arguments,
// writing only to the FILE they are given, so tests capture the output with
// open_memstream(). Single-threaded, like the command itself.
//
// JSON conventions (documented in `anvil --help`):
// - a job is an object with exactly the keys id, type, queue, state,
//   attempt, max_attempts, priority, payload, result, error, created_at,
//   started_at, finished_at; state is the upper-case name ("SUCCEEDED");
// - times are RFC 3339 UTC strings ("2026-11-28T05:44:27.123Z"), null when
//   unset; error is null when empty;
// - payload and result are JSON strings holding the bytes when they are
//   valid UTF-8 (null when empty). Otherwise the string key is null and the
//   object gains "payload_base64" / "result_base64" with the bytes in
//   standard base64, so no byte is ever lost or altered.
#ifndef CLI_OUTPUT_H
#define CLI_OUTPUT_H

#include <anvil/anvil.h>
#include <anvil/workflow.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// ---- JSON. Each returns a new reference, NULL only when out of memory.

json_t *output_job_json(const struct anvil_job *job);

// {"jobs": [job...], "next_cursor": "..." or null on the last page}.
json_t *output_list_json(const struct anvil_job_list *list);

// {"version", "uptime_ms", "jobs_total", "last_event_seq",
//  "queues": [{"queue", "type", "queued", "scheduled", "running",
//  "no_worker"}]} (no_worker: no live worker serves the queue and type).
json_t *output_health_json(const struct anvil_health *h);

// {"id": id, "existed": existed}.
json_t *output_submit_json(const char *id, bool existed);

// Writes obj (borrowed) on one line followed by a newline. 0 or -1.
int output_json_print(FILE *f, const json_t *obj);

// ---- Text for people.

// Aligned "Field: value" lines: ID, Type, Queue, State, Attempt (n/max),
// Priority, Created, Started, Finished, Duration, Result, Error. now_ms
// (epoch ms) gives the running time of a job that has not finished.
void output_job_human(FILE *f, const struct anvil_job *job, int64_t now_ms);

// A table ID TYPE QUEUE STATE ATTEMPT CREATED, then, when there is a next
// page, a line naming the cursor that fetches it. "No jobs." when empty.
void output_list_human(FILE *f, const struct anvil_job_list *list);

// Version, uptime, jobs total and the last event's seq (when the server
// sends one) as "Field: value" lines, then a table QUEUE TYPE QUEUED
// SCHEDULED RUNNING, plus a column NO WORKER (yes/no) when some queue has
// no live worker.
void output_health_human(FILE *f, const struct anvil_health *h);

// Prints n "label: value" lines with the values aligned in one column.
// A value spanning several lines continues under the value column.
void output_fields(
    FILE *f, const char *const *labels, const char *const *values, size_t n);

// "950ms", "1.234s", "2m3.456s", "5h6m7s"; "-" for a negative duration.
// Returns buf (>= 32 bytes).
char *output_duration(int64_t ms, char *buf, size_t len);

// ---- Tables: columns padded to their widest cell, two spaces apart.

struct output_table;

// A table with ncols columns titled by headers (copied). NULL on OOM.
struct output_table *output_table_new(size_t ncols, const char *const *headers);

// Right-aligns column col (numbers).
void output_table_align_right(struct output_table *t, size_t col);

// Appends a row of ncols cells (copied; NULL prints as "-"). 0 or -1 (OOM).
int output_table_add(struct output_table *t, const char *const *cells);

void output_table_print(const struct output_table *t, FILE *f);

// NULL is ignored.
void output_table_free(struct output_table *t);

// ---- Workflows (output_workflow.c).
//
// A workflow in JSON (workflow status, wait, cancel) is
//   {"id", "name", "state", "on_failure", "error", "created_at",
//    "finished_at", "steps": [step...]}
// with steps in submission order, each
//   {"name", "id", "state", "attempt", "result", "error", "started_at",
//    "finished_at", "after": [names]}
// on_failure is "fail_fast" or "continue"; result follows the job rule
// above (a string, or null plus "result_base64"); error is null when empty.

json_t *output_workflow_json(const struct anvil_workflow *wf);

// {"workflows": [{"id", "name", "state", "on_failure", "error",
// "created_at", "finished_at", "steps_total", "steps_succeeded",
// "steps_failed"}...], "next_cursor": "..." or null on the last page}.
json_t *output_workflow_list_json(const struct anvil_workflow_list *list);

// The steps of wf in dependency order: order[0..n_steps) gets step indexes,
// each after all of its parents, ties in submission order; depth[i] (of
// step i) is the length of the longest chain of parents above it (0 for a
// step after nothing). Steps whose parents cannot be ordered (a cycle or
// an unknown name, which a server never sends) come last, at depth 0.
// 0, or -1 out of memory.
int output_workflow_order(
    const struct anvil_workflow *wf, size_t *order, size_t *depth);

// "Field: value" lines (ID, Name, State, Policy, Steps, Created, Finished,
// Duration, Error), a blank line, then the steps in dependency order as a
// table STEP STATE ATTEMPT DURATION AFTER RESULT/ERROR, each step's name
// indented two spaces per level of depth (at most OUTPUT_MAX_INDENT
// levels), results and errors cut to OUTPUT_CELL_MAX characters.
#define OUTPUT_MAX_INDENT 8
#define OUTPUT_CELL_MAX 48
void output_workflow_human(
    FILE *f, const struct anvil_workflow *wf, int64_t now_ms);

// A table ID NAME STATE STEPS CREATED ("3/4" steps succeeded), then the
// next page's cursor when there is one. "No workflows." when empty.
void output_workflow_list_human(
    FILE *f, const struct anvil_workflow_list *list);

// ---- Workers and tokens (output_admin.c).

// {"workers": [{"name", "host", "pid", "version", "types": [...],
// "queues": [...], "slots", "running", "first_seen", "last_seen",
// "state": "alive"|"lost"}...]}.
json_t *output_workers_json(const struct anvil_worker_status *w, size_t n);

// A table NAME HOST PID TYPES QUEUES SLOTS RUNNING LAST-SEEN STATE, with
// LAST-SEEN as an age ("1.500s ago") at now_ms. "No workers." when empty.
void output_workers_human(
    FILE *f, const struct anvil_worker_status *w, size_t n, int64_t now_ms);

// {"id", "name", "role", "created_at", "expires_at", "revoked_at",
// "state"}; times null when unset; state "active", "expired" or "revoked"
// at now_ms.
json_t *output_token_json(const struct anvil_token *t, int64_t now_ms);

// {"tokens": [token...]}.
json_t *output_tokens_json(
    const struct anvil_token *t, size_t n, int64_t now_ms);

// {"id", "name", "role", "secret", "expires_at"}: what token create prints.
json_t *output_token_created_json(
    const struct anvil_token *t, const char *secret);

// A table ID NAME ROLE CREATED EXPIRES STATE. "No tokens." when empty.
void output_tokens_human(
    FILE *f, const struct anvil_token *t, size_t n, int64_t now_ms);

// "active", "expired" or "revoked" at now_ms.
const char *output_token_state(const struct anvil_token *t, int64_t now_ms);

// ---- Events (output_event.c), for `anvil events`.

// The kind for people and scripts: "job.succeeded" for
// ANVIL_EVENT_JOB_SUCCEEDED (the name in lower case, its first '_' a '.').
// Returns buf (>= 32 bytes).
char *output_event_kind(enum anvil_event_kind kind, char *buf, size_t len);

// {"seq", "kind", "at_ms", "job_id", "workflow_id", "step", "type",
// "queue", "worker", "attempt", "message"}: the proto's field names; kind
// as output_event_kind(); strings null when empty.
json_t *output_event_json(const struct anvil_event *e);

// One line: TIME SEQ KIND, then what the event concerns (its job,
// workflow or worker), then the fields it has as key=value (workflow=,
// step=, type=, queue=, worker=, attempt=), then ": message" if any.
// Text from the server is cleaned (no control characters).
void output_event_human(FILE *f, const struct anvil_event *e);

// The warning for a reply that says events were missed: "anvil: warning:
// events X to Y were deleted by retention before they were read" (X is
// after_seq + 1, Y is first_seq - 1; "events after X" when Y is unknown).
void output_events_missed(FILE *f, uint64_t after_seq, uint64_t first_seq);

// ---- Helpers shared by the output*.c files.

// Copy of p[0..len) fit for a terminal: valid UTF-8 minus control
// characters (newline and tab kept), '?' for anything else; trailing
// newlines dropped. Caller frees; NULL on OOM.
char *output_text_clean(const void *p, size_t len);

// Display width of s in code points.
size_t output_text_width(const char *s);

// A JSON string of s; invalid UTF-8 becomes U+FFFD. NULL on OOM.
json_t *output_json_text(const char *s);

// output_json_text(s), or null when s is NULL or "".
json_t *output_json_text_or_null(const char *s);

// obj[key] = the bytes as a string, or null plus obj[key "_base64"] when
// they are not UTF-8; null when empty. 0 or -1 (OOM).
int output_json_set_bytes(
    json_t *obj, const char *key, const uint8_t *p, size_t len);

// An RFC 3339 string of epoch ms, or null for ms <= 0.
json_t *output_json_time(int64_t ms);

// Ends a JSON builder whose calls or-ed their results into rc: o when rc
// is 0, else NULL after freeing o (which may be NULL).
json_t *output_json_done(json_t *o, int rc);

// {key: value}. Consumes value (NULL: out of memory); NULL on OOM.
json_t *output_json_wrap(const char *key, json_t *value);

// A page of a list: {key: items, "next_cursor": cursor, or null when it
// is NULL or "" (the last page)}. Consumes items (NULL: out of memory);
// NULL on OOM.
json_t *output_json_page(const char *key, json_t *items, const char *cursor);

// A job's result for people: its text, or a note for binary data. Caller
// frees; NULL on OOM.
char *output_result_text(const struct anvil_job *job);

// The time from start_ms to end_ms ("1.234s"), or to now_ms while end_ms
// is unset ("2s so far"); "" while start_ms is unset.
void output_span(
    int64_t start_ms, int64_t end_ms, int64_t now_ms, char *buf, size_t len);

// ---- Bytes.

// True when p[0..len) is valid UTF-8 (NUL bytes included).
bool output_utf8_valid(const void *p, size_t len);

// Standard base64 with padding, NUL-terminated; caller frees. NULL on OOM.
char *output_base64(const void *p, size_t len);

#endif
