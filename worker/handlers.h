// handlers.h - the built-in job handlers of anvil-worker.
//
// `Sleep` is the seed's job: payload {"SleepTimeInSeconds": 10,
// "Message": "Hello World"}; it sleeps (woken early by a cancel), prints the
// message on its own line of stdout, and returns it as the result. `echo`
// returns its payload. Handlers run on the worker's slot threads, several at
// once; they keep no state between calls.
#ifndef WORKER_HANDLERS_H
#define WORKER_HANDLERS_H

#include <anvil/worker.h>
#include <stdint.h>
#include <stdio.h>

// The longest sleep a Sleep job may ask for, in seconds.
#define HANDLER_SLEEP_MAX_S 86400

// Parses a Sleep payload (len bytes of JSON). On success *ms is the sleep in
// milliseconds and *msg the message ("" when absent), the caller's to
// free(). Otherwise returns ANVIL_INVALID_ARGUMENT with err naming the
// field; *msg is then NULL. Pure: no I/O, any thread.
int handler_sleep_parse(const void *payload, size_t len, int64_t *ms,
    char **msg, struct anvil_error *err);

// Writes msg and a newline to out in one write, then flushes, so lines of
// several slots never interleave. Returns 0, or -1 if the write failed.
int handler_sleep_print(FILE *out, const char *msg);

// The Sleep handler. arg: the FILE * to print to, NULL for stdout.
int handler_sleep(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx);

// The echo handler: the result is the payload. arg is unused.
int handler_echo(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx);

#endif
