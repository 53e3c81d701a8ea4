// cli.h - the anvil command: argument parsing, the verb table, dispatch.
//
// cli_parse() turns argv into a struct cli_opts without touching the
// network, so every usage error is found (and tested) before a server is
// contacted. cli_main() parses, opens a client and runs the verb. Each verb
// lives in cli/cmd_<group>.c and is described by a struct cli_verb: its
// flags, its one positional argument and its run function. Adding a verb is
// one struct and one line in the table in cli.c. A verb group ("workflow")
// is a verb with sub-verbs instead of a run function: the word after it
// picks the sub-verb ("anvil workflow submit FILE"), whose name is the whole
// phrase ("workflow submit"). Single-threaded.
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include <anvil/anvil.h>
#include <anvil/workflow.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

// Exit statuses of the anvil command.
enum cli_exit {
    CLI_EXIT_OK      = 0, // success; for wait: the job/workflow SUCCEEDED
    CLI_EXIT_FAILED  = 1, // server error, or it FAILED / was CANCELED
    CLI_EXIT_USAGE   = 2, // bad arguments or workflow file; nothing was sent
    CLI_EXIT_TIMEOUT = 4, // wait: --timeout-ms passed, not finished
                          // (submit --wait: --wait-timeout-ms)
};

// Largest --timeout-ms accepted.
#define CLI_TIMEOUT_MAX_MS INT32_MAX

// Largest job duration (submit --delay-ms, --timeout-ms): the server's
// limit, ten years.
#define CLI_DURATION_MAX_MS (10LL * 366 * 24 * 3600 * 1000)

// Bounds of submit --lease-ms and --max-attempts (the server's).
#define CLI_LEASE_MIN_MS 100
#define CLI_LEASE_MAX_MS (24 * 3600 * 1000)
#define CLI_MAX_ATTEMPTS 1000

// The most --kind values `anvil events` takes (there are 18 kinds).
#define CLI_MAX_KINDS 32

// How many events `anvil events` shows without --since.
#define CLI_EVENTS_TAIL 20

// Everything argv says. Strings are borrowed from argv.
struct cli_opts {
    const char            *server;   // --server; NULL = $ANVIL_SERVER/default
    const char            *token;    // --token; NULL = $ANVIL_TOKEN
    const char            *tls_ca;   // --tls-ca; NULL = $ANVIL_TLS_CA
    const char            *tls_cert; // --tls-cert; NULL = $ANVIL_TLS_CERT
    const char            *tls_key;  // --tls-key; NULL = $ANVIL_TLS_KEY
    bool                   json;     // --json
    bool                   help;     // --help, -h, `help [VERB]`
    bool                   version;  // --version
    const struct cli_verb *verb;     // NULL only with help or version
    const char            *id;       // status, wait, cancel (jobs, workflows)
    const char            *file;     // workflow submit FILE ("-": stdin)
    const char            *name;     // workflow list, token create --name
    const char            *type;     // submit TYPE, list --type
    const char            *data;     // submit --data (valid JSON)
    const char            *queue;    // submit, list --queue; queue NAME
    const char            *cursor;   // list --cursor
    int32_t                priority; // submit --priority
    bool                   wait;     // submit --wait
    bool                   has_timeout;   // wait limit: --timeout-ms of
                                          // wait, --wait-timeout-ms of submit
    int64_t              timeout_ms;      // 0..CLI_TIMEOUT_MAX_MS
    int64_t              delay_ms;        // submit --delay-ms
    int64_t              run_at_ms;       // submit --run-at (epoch ms)
    uint32_t             max_attempts;    // submit --max-attempts; 0 = default
    int64_t              job_timeout_ms;  // submit --timeout-ms (per attempt)
    int64_t              lease_ms;        // submit --lease-ms; 0 = default
    const char          *key;             // submit --key (idempotency key)
    const char          *concurrency_key; // submit --concurrency-key
    uint32_t             concurrency;     // submit --concurrency; 0 = none
    enum anvil_role      role;            // token create --role
    int64_t              expires_in_ms;   // token create --expires-in
    enum anvil_job_state state;           // list --state; 0 = any
    enum anvil_workflow_state wf_state;   // workflow list --state; 0 = any
    uint32_t                  limit;      // list --limit; 0 = server default
    int64_t created_since_ms; // list, retry, cancel --since (epoch ms)
    int64_t created_until_ms; // list, retry, cancel --until (epoch ms)
    bool    positional_set;   // the verb's argument was given
    // events (cmd_event.c)
    bool                  follow;               // --follow
    bool                  has_since;            // --since was given
    uint64_t              since;                // --since SEQ: events after SEQ
    const char           *job_id;               // --job
    const char           *workflow_id;          // --workflow
    enum anvil_event_kind kinds[CLI_MAX_KINDS]; // --kind, repeated
    size_t                n_kinds;
    // schedule create (cmd_schedule.c)
    const char *cron;     // --cron EXPR
    const char *every;    // --every DURATION
    const char *tz;       // --tz ZONE
    int         overlap;  // --overlap: enum anvil_schedule_overlap
    int         catch_up; // --catch-up: enum anvil_schedule_catch_up
    // queue limit (cmd_queue.c)
    double   rate;     // --rate, starts a second
    bool     has_rate; // --rate was given
    uint32_t burst;    // --burst; 0 = 1
    bool     no_limit; // --none
};

// What a running verb gets: parsed options, an open client, its streams.
struct cli_ctx {
    const struct cli_opts *opts;
    anvil_client          *client;
    FILE                  *out;
    FILE                  *err;
};

// A flag of a verb. set() checks and stores the value (NULL for a switch)
// and returns 0, or CLI_EXIT_USAGE with err->msg naming the flag.
struct cli_flag {
    const char *name; // "--priority"
    const char *arg;  // "N"; NULL for a switch
    int (*set)(struct cli_opts *o, const char *value, struct anvil_error *err);
};

struct cli_verb {
    const char            *name;       // "submit"
    const char            *positional; // "TYPE", "ID", or NULL
    const char            *synopsis;   // flags after the positional
    const char            *summary;    // one line, for `anvil --help`
    const char            *help;       // flag descriptions for VERB --help
    const struct cli_flag *flags;      // ends with a { NULL } entry
    // The positional may be left out (check() then says what is missing).
    bool positional_optional;
    // Stores the positional argument (may be NULL when there is none).
    int (*set_positional)(
        struct cli_opts *o, const char *value, struct anvil_error *err);
    // Checks flags against each other after parsing (may be NULL).
    int (*check)(struct cli_opts *o, struct anvil_error *err);
    // Runs the verb; returns an enum cli_exit. NULL for a group.
    int (*run)(struct cli_ctx *ctx);
    // A group's sub-verbs, NULL-terminated; NULL for a plain verb.
    const struct cli_verb *const *subverbs;
};

extern const struct cli_verb cli_verb_submit;
extern const struct cli_verb cli_verb_status;
extern const struct cli_verb cli_verb_wait;
extern const struct cli_verb cli_verb_cancel;
extern const struct cli_verb cli_verb_retry;
extern const struct cli_verb cli_verb_events;
extern const struct cli_verb cli_verb_list;
extern const struct cli_verb cli_verb_health;
extern const struct cli_verb cli_verb_workflow; // the group
extern const struct cli_verb cli_verb_workflow_submit;
extern const struct cli_verb cli_verb_workflow_status;
extern const struct cli_verb cli_verb_workflow_wait;
extern const struct cli_verb cli_verb_workflow_cancel;
extern const struct cli_verb cli_verb_workflow_retry;
extern const struct cli_verb cli_verb_workflow_list;
extern const struct cli_verb cli_verb_workers;
extern const struct cli_verb cli_verb_schedule; // the group
extern const struct cli_verb cli_verb_queue;    // the group
extern const struct cli_verb cli_verb_queue_pause;
extern const struct cli_verb cli_verb_queue_resume;
extern const struct cli_verb cli_verb_queue_limit;
extern const struct cli_verb cli_verb_token; // the group
extern const struct cli_verb cli_verb_token_create;
extern const struct cli_verb cli_verb_token_list;
extern const struct cli_verb cli_verb_token_revoke;

// Parses argv (argv[0] is the program). Returns CLI_EXIT_OK with *o filled,
// or CLI_EXIT_USAGE with a one-line message in err->msg (no "anvil: "
// prefix) naming the bad flag or argument. Never contacts a server.
int cli_parse(
    int argc, char **argv, struct cli_opts *o, struct anvil_error *err);

// The verb called name, or NULL.
const struct cli_verb *cli_verb_find(const char *name);

// The sub-verb of group called word ("submit" in group "workflow"), or NULL.
const struct cli_verb *cli_subverb_find(
    const struct cli_verb *group, const char *word);

// Prints the usage of verb, or of the whole command when verb is NULL.
void cli_usage(FILE *f, const struct cli_verb *verb);

// The server URL to use: --server, else $ANVIL_SERVER when set and not
// empty, else ANVIL_DEFAULT_URL. Borrowed.
const char *cli_server_url(const struct cli_opts *o);

// Parses the whole command line, runs it, writes to out and err; returns
// the exit status (enum cli_exit).
int cli_main(int argc, char **argv, FILE *out, FILE *err);

// Reports a failed call on ctx->err as "anvil: CODE_NAME: message" and
// returns CLI_EXIT_FAILED.
int cli_report(struct cli_ctx *ctx, int code, const struct anvil_error *err);

// Fills err with code INVALID_ARGUMENT and a message; returns
// CLI_EXIT_USAGE, so setters can `return cli_usage_error(err, ...)`.
int cli_usage_error(struct anvil_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

// Parses s as a decimal integer in [min, max] for flag. Returns 0, or
// CLI_EXIT_USAGE with err naming the flag.
int cli_parse_int(const char *flag, const char *s, int64_t min, int64_t max,
    int64_t *out, struct anvil_error *err);

// Parses a rate for flag: a decimal number of starts, optionally per
// unit: "50", "50/s", "300/m", "3600/h" (also "/sec", "/min", "/hour").
// *per_second gets it a second, in [0.001, 1000000]. Returns 0, or
// CLI_EXIT_USAGE with err naming the flag.
int cli_parse_rate(const char *flag, const char *s, double *per_second,
    struct anvil_error *err);

// Stores value at *dst, or returns CLI_EXIT_USAGE with "<what> must not
// be empty" in err when value is "".
int cli_set_nonempty(const char *what, const char *value, const char **dst,
    struct anvil_error *err);

// How long a one-shot command waits for a first connection before it says
// that nothing listens at the server's URL (waits are not one-shot).
#define CLI_CONNECT_MS 1000

// The timeout_ms to give anvil_job_wait/anvil_workflow_wait for the wait
// limit in o: 0 (none) without one, 1 for --timeout-ms 0 (look once).
int cli_wait_ms(const struct cli_opts *o);

// What a wait got, for cli_wait_end(): whether it got the job (workflow)
// at all, the exit status its state gives, the status of printing it, and
// its state's name.
struct cli_waited {
    bool        have;
    int         exit;
    int         print;
    const char *state;
};

// Ends a wait of `what` ("job" or "workflow") id given the wait's code and
// error: reports a failure (and, when submitted, that id was submitted) or
// a timeout on x->err, and returns the command's exit status.
int cli_wait_end(struct cli_ctx *x, const char *what, const char *id,
    bool submitted, int rc, const struct anvil_error *err,
    const struct cli_waited *w);

// The exit status of a wait given its code, whether what it waited for
// is final and whether it succeeded: TIMEOUT when it is not final yet.
int cli_wait_status(int rc, bool final, bool succeeded);

// The exit status of wait (and submit --wait) given anvil_job_wait's
// return code and job: OK when the job SUCCEEDED, FAILED when it ended
// FAILED or CANCELED or the call failed, TIMEOUT when it is unfinished.
int cli_wait_exit(int rc, const struct anvil_job *job);

// The same for `workflow wait` given anvil_workflow_wait's code and
// workflow: OK only when it SUCCEEDED.
int cli_workflow_wait_exit(int rc, const struct anvil_workflow *wf);
// Reads and parses the JSON workflow definition (docs/workflows.md) at
// x->opts->file ("-" is stdin): `workflow submit FILE`, `schedule create
// --workflow FILE`. CLI_EXIT_OK with *wf (anvil_workflow_spec_free), or
// CLI_EXIT_USAGE after a line on x->err.
int cli_workflow_load(struct cli_ctx *x, anvil_workflow_spec **wf);

// Flag setters shared by the job, workflow and token verbs (cmd_job.c).
int cli_set_id_arg(
    struct cli_opts *o, const char *value, struct anvil_error *err);
int cli_set_wait(
    struct cli_opts *o, const char *value, struct anvil_error *err);
int cli_set_timeout(
    struct cli_opts *o, const char *value, struct anvil_error *err);
int cli_set_limit(
    struct cli_opts *o, const char *value, struct anvil_error *err);
int cli_set_cursor(
    struct cli_opts *o, const char *value, struct anvil_error *err);
int cli_set_type(
    struct cli_opts *o, const char *value, struct anvil_error *err);
int cli_set_queue(
    struct cli_opts *o, const char *value, struct anvil_error *err);
int cli_set_max_attempts(
    struct cli_opts *o, const char *value, struct anvil_error *err);
int cli_set_name(
    struct cli_opts *o, const char *value, struct anvil_error *err);
int cli_set_state(
    struct cli_opts *o, const char *value, struct anvil_error *err);
int cli_set_since(
    struct cli_opts *o, const char *value, struct anvil_error *err);
int cli_set_until(
    struct cli_opts *o, const char *value, struct anvil_error *err);

// retry and cancel of many jobs (cmd_bulk.c): `anvil retry ID` or `anvil
// retry --state S [filters]`, the same for cancel. The check refuses an ID
// with filters, filters without --state, and a state the verb cannot act
// on; the run calls the single-job run when an ID was given.
int cli_check_retry(struct cli_opts *o, struct anvil_error *err);
int cli_check_cancel(struct cli_opts *o, struct anvil_error *err);
int cli_run_retry_many(struct cli_ctx *x);
int cli_run_cancel_many(struct cli_ctx *x);
int cli_set_data(
    struct cli_opts *o, const char *value, struct anvil_error *err);

// Writes obj (a new reference, consumed) as one line of JSON on ctx->out.
// CLI_EXIT_OK, or CLI_EXIT_FAILED when it cannot.
int cli_print_json(struct cli_ctx *ctx, json_t *obj);

// A flag table with no flags.
extern const struct cli_flag cli_no_flags[];

// The flags of `wait` and `workflow wait`: --timeout-ms N.
extern const struct cli_flag cli_wait_flags[];

#endif
