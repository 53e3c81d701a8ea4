// config.h - the anvil-worker config file: JSON into a struct worker_config.
//
// config_parse() checks everything a worker needs before it starts: known
// keys only, the right types, names the server accepts, known builtins, and
// for exec handlers a program that exists and is executable (an absolute
// path, or a name found on $PATH). A refusal names the key, e.g.
// "handlers.thumbnail.exec: /usr/local/bin/thumb is not an executable file".
// Apart from that access(2)/$PATH lookup it does no I/O. Any thread; no
// shared state. See docs/workers.md for the format.
#ifndef WORKER_CONFIG_H
#define WORKER_CONFIG_H

#include <anvil/anvil.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// The largest config file anvil-worker reads.
#define CONFIG_MAX_BYTES (1024 * 1024)

enum handler_kind {
    HANDLER_BUILTIN = 1,
    HANDLER_EXEC    = 2,
};

struct handler_config {
    char   *type;       // the job type this handler serves
    int     kind;       // enum handler_kind
    char   *builtin;    // HANDLER_BUILTIN: "sleep" or "echo"
    char  **argv;       // HANDLER_EXEC: argc strings, then NULL
    size_t  argc;       // at least 1
    int64_t timeout_ms; // 0 = none (the job's own timeout still applies)
    int     slots;      // processes of this handler at once; 0 = no limit
    char  **env;        // n_env "KEY=value" strings
    size_t  n_env;
};

struct worker_config {
    char                  *server;       // NULL = not set
    char                  *name;         // NULL = not set
    int                    slots;        // 0 = not set
    int                    prefetch;     // as anvil_worker_opts.prefetch
    bool                   prefetch_set; // "prefetch" was given
    char                 **queues;       // n_queues names; 0 = not set
    size_t                 n_queues;
    char                  *token; // NULL = not set
    char                  *tls_ca;
    char                  *tls_cert;
    char                  *tls_key;
    int                    grace_ms;  // -1 = not set
    int                    log_level; // -1 = not set
    int                    log_json;  // -1 = not set, 0 text, 1 json
    struct handler_config *handlers;
    size_t                 n_handlers; // at least 1 after a parse
};

// Sets every field to "not set" and no handlers. Call before anything else.
void config_init(struct worker_config *c);

// Frees what c owns and leaves it as config_init() does; NULL is ignored.
void config_fini(struct worker_config *c);

// Parses len bytes of JSON into *out (config_init'ed here first). On
// success *out is the caller's (config_fini). Otherwise returns
// ANVIL_INVALID_ARGUMENT with err naming the key and what is wrong, and
// *out is left empty.
int config_parse(const char *json, size_t len, struct worker_config *out,
    struct anvil_error *err);

// Reads the file at path and parses it (config_parse). The error names the
// file when it cannot be read.
int config_load(
    const char *path, struct worker_config *out, struct anvil_error *err);

// Adds a builtin handler (type, "sleep"/"echo") to c: how anvil-worker
// serves Sleep and echo without a config file. RESOURCE_EXHAUSTED on OOM.
int config_add_builtin(
    struct worker_config *c, const char *type, const char *builtin);

// True if name can be run: an absolute or relative path (with a '/') to an
// executable regular file, or a name found in one of $PATH's directories.
bool config_is_executable(const char *name);

#endif
