// launch_exec.h - exec handlers: one program run per job, without a shell.
//
// The program (handler_config argv) runs in a process group of its own,
// reads the payload on stdin, finds the job in its environment
// (ANVIL_JOB_ID, ANVIL_JOB_TYPE, ANVIL_ATTEMPT; ANVIL_WORKFLOW_ID,
// ANVIL_STEP and ANVIL_PARENT_RESULTS_FILE for workflow steps) and writes
// the result on stdout. Exit 0 succeeds; exit 75 (EX_TEMPFAIL) is a
// retryable failure; any other exit status is a final failure; death by a
// signal is a retryable failure. Failures carry the last lines of stderr.
// On a timeout or a cancel the whole group gets SIGTERM, then SIGKILL after
// EXEC_KILL_GRACE_MS; when the program exits, whatever it left running in
// its group is killed. See docs/workers.md.
//
// Threads: exec_handler_run() is an anvil_handler_fn, run on slot threads,
// several at once; an exec_handler's slot count is guarded by its mutex.
#ifndef WORKER_LAUNCH_EXEC_H
#define WORKER_LAUNCH_EXEC_H

#include "config.h"

#include <anvil/worker.h>
#include <stdbool.h>

#define EXEC_RESULT_MAX (1024 * 1024) // stdout beyond this fails the job
#define EXEC_STDERR_TAIL 2048         // bytes of stderr kept for the error
#define EXEC_KILL_GRACE_MS 2000       // SIGTERM to SIGKILL
#define EXEC_TEMPFAIL 75              // sysexits.h EX_TEMPFAIL
#define EXEC_TICK_MS 50               // how often cancels are checked

struct exec_handler;

// What a finished program's wait status means for its job.
struct exec_outcome {
    bool ok;                          // exit 0
    bool retryable;                   // exit 75 or a signal
    char msg[EXEC_STDERR_TAIL + 128]; // "exit status 1: <stderr tail>"
};

// Maps a waitpid() status and the stderr tail (may be NULL) to an outcome.
// Pure; any thread.
void exec_status_to_outcome(
    int wait_status, const char *stderr_tail, struct exec_outcome *out);

// When a run must stop early: canceled(arg) (may be NULL) is asked every
// EXEC_TICK_MS; then the group gets SIGTERM, and SIGKILL kill_grace_ms
// later (<= 0: EXEC_KILL_GRACE_MS). progress(arg, ...) (may be NULL) gets
// each progress line the program prints on stderr (progress_line.h).
struct exec_stop {
    int kill_grace_ms;
    bool (*canceled)(void *arg);
    void *arg;
    void (*progress)(void *arg, int percent, const char *message);
};

// What one run gave.
struct exec_result {
    int    rc;        // ANVIL_OK, or why it failed
    bool   retryable; // when rc != ANVIL_OK
    char  *out;       // ANVIL_OK: stdout (NUL after it); exec_result_fini
    size_t out_len;
    char   msg[EXEC_STDERR_TAIL + 128]; // when rc != ANVIL_OK
};

// Runs the program of hc (kind HANDLER_EXEC) for one lease, on the calling
// thread, until it exits (or is killed: the handler's timeout_ms, the
// job's timeout_ms, or stop->canceled). Returns res->rc: ANVIL_OK with
// the result, DEADLINE_EXCEEDED ("timed out after N ms"), CANCELLED
// ("canceled"), RESOURCE_EXHAUSTED ("result over 1 MiB"), ABORTED (the
// program failed: see exec_status_to_outcome), UNAVAILABLE (it could not
// be started). Any thread; several at once.
int exec_run(const struct handler_config *hc, const struct exec_stop *stop,
    const struct anvil_lease *lease, struct exec_result *res);

// Frees res->out; NULL is ignored.
void exec_result_fini(struct exec_result *res);

// Creates the exec handler of hc (kind HANDLER_EXEC), which is borrowed and
// must outlive it. *out is the caller's (exec_handler_free). Returns
// ANVIL_OK, or RESOURCE_EXHAUSTED / INTERNAL.
int exec_handler_new(
    const struct handler_config *hc, struct exec_handler **out);

// Frees it; no job may be running it. NULL is ignored.
void exec_handler_free(struct exec_handler *eh);

// Sets the SIGTERM-to-SIGKILL grace (tests); ms <= 0 restores the default.
void exec_handler_set_kill_grace(struct exec_handler *eh, int ms);

// The anvil_handler_fn of exec handlers; arg is the struct exec_handler.
int exec_handler_run(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx);

#endif
