// output.h - how the anvil command prints jobs, lists and health: aligned
// "Field: value" lines and tables for people, one JSON object for scripts.
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
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// ---- JSON. Each returns a new reference, NULL only when out of memory.

json_t *output_job_json(const struct anvil_job *job);

// {"jobs": [job...], "next_cursor": "..." or null on the last page}.
json_t *output_list_json(const struct anvil_job_list *list);

// {"version", "uptime_ms", "jobs_total",
//  "queues": [{"queue", "type", "queued", "running"}]}.
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

// Version, uptime and jobs total as "Field: value" lines, then a table
// QUEUE TYPE QUEUED RUNNING.
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

// ---- Bytes.

// True when p[0..len) is valid UTF-8 (NUL bytes included).
bool output_utf8_valid(const void *p, size_t len);

// Standard base64 with padding, NUL-terminated; caller frees. NULL on OOM.
char *output_base64(const void *p, size_t len);

#endif
