// cmd_job.c - the job verbs: submit, status, wait, cancel, retry, list.
//
// Each verb is a struct cli_verb: flag setters that check their value
// without a server (cli_parse), then a run function over the public SDK.
#include "cli.h"
#include "output.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <util/clock.h>

// ---- Flag setters

static int
set_type_arg(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("TYPE", value, &o->type, err);
}

int
cli_set_id_arg(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("ID", value, &o->id, err);
}

int
cli_set_type(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("--type", value, &o->type, err);
}

int
cli_set_queue(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("--queue", value, &o->queue, err);
}

int
cli_set_cursor(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("--cursor", value, &o->cursor, err);
}

int
cli_set_name(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("--name", value, &o->name, err);
}

// The payload is sent exactly as given; jansson only checks it.
int
cli_set_data(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    json_error_t jerr;
    json_t      *j = json_loads(value, JSON_DECODE_ANY, &jerr);
    if (j == NULL)
        return cli_usage_error(err,
            "--data is not valid JSON: %s at line %d column %d", jerr.text,
            jerr.line, jerr.column);
    json_decref(j);
    o->data = value;
    return CLI_EXIT_OK;
}

static int
set_priority(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    int64_t v;
    int rc = cli_parse_int("--priority", value, INT32_MIN, INT32_MAX, &v, err);
    if (rc == CLI_EXIT_OK)
        o->priority = (int32_t) v;
    return rc;
}

int
cli_set_wait(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    (void) value;
    (void) err;
    o->wait = true;
    return CLI_EXIT_OK;
}

int
cli_set_timeout(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    int rc = cli_parse_int(
        "--timeout-ms", value, 0, CLI_TIMEOUT_MAX_MS, &o->timeout_ms, err);
    o->has_timeout = rc == CLI_EXIT_OK;
    return rc;
}

int
cli_set_state(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    enum anvil_job_state state = ANVIL_JOB_UNSPECIFIED;
    if (anvil_job_state_parse(value, &state) != ANVIL_OK
        || state == ANVIL_JOB_UNSPECIFIED)
        return cli_usage_error(err,
            "--state: unknown state '%s' (PENDING, SCHEDULED, QUEUED, "
            "RUNNING, SUCCEEDED, FAILED or CANCELED)",
            value);
    o->state = state;
    return CLI_EXIT_OK;
}

int
cli_set_limit(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    int64_t v;
    int     rc = cli_parse_int("--limit", value, 1, 1000, &v, err);
    if (rc == CLI_EXIT_OK)
        o->limit = (uint32_t) v;
    return rc;
}

static int
set_wait_timeout(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    int rc = cli_parse_int(
        "--wait-timeout-ms", value, 0, CLI_TIMEOUT_MAX_MS, &o->timeout_ms, err);
    o->has_timeout = rc == CLI_EXIT_OK;
    return rc;
}

static int
set_job_timeout(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_parse_int(
        "--timeout-ms", value, 0, CLI_DURATION_MAX_MS, &o->job_timeout_ms, err);
}

static int
set_delay(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_parse_int(
        "--delay-ms", value, 0, CLI_DURATION_MAX_MS, &o->delay_ms, err);
}

static int
set_run_at(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    int64_t ms;
    if (av_parse_time(value, &ms) != 0 || ms <= 0)
        return cli_usage_error(err,
            "--run-at: '%s' is not an RFC 3339 time (e.g. "
            "2026-11-28T05:44:27Z)",
            value);
    o->run_at_ms = ms;
    return CLI_EXIT_OK;
}

int
cli_set_max_attempts(
    struct cli_opts *o, const char *value, struct anvil_error *err)
{
    int64_t v;
    int     rc
        = cli_parse_int("--max-attempts", value, 1, CLI_MAX_ATTEMPTS, &v, err);
    if (rc == CLI_EXIT_OK)
        o->max_attempts = (uint32_t) v;
    return rc;
}

static int
set_lease(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_parse_int("--lease-ms", value, CLI_LEASE_MIN_MS,
        CLI_LEASE_MAX_MS, &o->lease_ms, err);
}

static int
set_concurrency_key(
    struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty(
        "--concurrency-key", value, &o->concurrency_key, err);
}

static int
set_concurrency(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    int64_t v;
    int     rc = cli_parse_int("--concurrency", value, 1, 1000000, &v, err);
    if (rc == CLI_EXIT_OK)
        o->concurrency = (uint32_t) v;
    return rc;
}

static int
set_key(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("--key", value, &o->key, err);
}

static int
check_submit(struct cli_opts *o, struct anvil_error *err)
{
    if (o->has_timeout && !o->wait)
        return cli_usage_error(err, "submit: --wait-timeout-ms needs --wait");
    if (o->delay_ms > 0 && o->run_at_ms > 0)
        return cli_usage_error(
            err, "submit: --delay-ms and --run-at cannot be used together");
    if ((o->concurrency_key != NULL) != (o->concurrency > 0))
        return cli_usage_error(
            err, "submit: --concurrency-key and --concurrency go together");
    return CLI_EXIT_OK;
}

// ---- Printing and waiting

static int
print_job(struct cli_ctx *x, const struct anvil_job *job)
{
    if (x->opts->json)
        return cli_print_json(x, output_job_json(job));
    output_job_human(x->out, job, av_now_ms());
    return CLI_EXIT_OK;
}

int
cli_wait_status(int rc, bool final, bool succeeded)
{
    if (rc == ANVIL_DEADLINE_EXCEEDED && !final)
        return CLI_EXIT_TIMEOUT;
    if (rc != ANVIL_OK && rc != ANVIL_DEADLINE_EXCEEDED)
        return CLI_EXIT_FAILED;
    return succeeded ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

int
cli_wait_exit(int rc, const struct anvil_job *job)
{
    if (job == NULL)
        return CLI_EXIT_FAILED;
    return cli_wait_status(rc, anvil_job_state_final(job->state),
        job->state == ANVIL_JOB_SUCCEEDED);
}

int
cli_wait_ms(const struct cli_opts *o)
{
    if (!o->has_timeout)
        return 0; // no limit
    if (o->timeout_ms <= 0)
        return 1; // look once: the shortest wait
    return o->timeout_ms < INT_MAX ? (int) o->timeout_ms : INT_MAX;
}

int
cli_wait_end(struct cli_ctx *x, const char *what, const char *id,
    bool submitted, int rc, const struct anvil_error *err,
    const struct cli_waited *w)
{
    if (!w->have) {
        cli_report(x, rc != ANVIL_OK ? rc : ANVIL_INTERNAL, err);
        if (submitted)
            fprintf(x->err, "anvil: %s %s was submitted\n", what, id);
        return CLI_EXIT_FAILED;
    }
    if (w->exit == CLI_EXIT_TIMEOUT)
        fprintf(x->err, "anvil: %s%s%s is still %s after %lld ms\n",
            strcmp(what, "job") == 0 ? "" : what,
            strcmp(what, "job") == 0 ? "" : " ", id, w->state,
            (long long) x->opts->timeout_ms);
    else if (rc != ANVIL_OK && rc != ANVIL_DEADLINE_EXCEEDED)
        cli_report(x, rc, err);
    return w->print != CLI_EXIT_OK ? w->print : w->exit;
}

// Waits for id, prints the job and returns the exit status of `wait`.
// submitted: the job was just submitted, so say its id if the wait fails.
static int
wait_and_print(struct cli_ctx *x, const char *id, bool submitted)
{
    struct anvil_job  *job = NULL;
    struct anvil_error err = { 0, "" };
    int rc = anvil_job_wait(x->client, id, cli_wait_ms(x->opts), &job, &err);
    struct cli_waited w = { .have = job != NULL };
    if (job != NULL) {
        w.exit  = cli_wait_exit(rc, job);
        w.print = print_job(x, job);
        w.state = anvil_job_state_name(job->state);
    }
    int ec = cli_wait_end(x, "job", id, submitted, rc, &err, &w);
    anvil_job_free(job);
    return ec;
}

// ---- Verbs

static int
run_submit(struct cli_ctx *x)
{
    const struct cli_opts *o       = x->opts;
    struct anvil_job_opts  so      = { 0 };
    struct anvil_error     err     = { 0, "" };
    char                  *id      = NULL;
    bool                   existed = false;
    size_t                 len     = o->data ? strlen(o->data) : 0;

    so.queue              = o->queue;
    so.priority           = o->priority;
    so.delay_ms           = o->delay_ms;
    so.run_at_ms          = o->run_at_ms;
    so.timeout_ms         = o->job_timeout_ms;
    so.idempotency_key    = o->key;
    so.lease_ms           = o->lease_ms;
    so.retry.max_attempts = o->max_attempts;
    so.concurrency_key    = o->concurrency_key;
    so.concurrency_limit  = o->concurrency;

    int rc = anvil_job_submit(
        x->client, o->type, o->data, len, &so, &id, &existed, &err);
    if (rc != ANVIL_OK)
        return cli_report(x, rc, &err);
    if (existed && !o->json)
        fprintf(x->err,
            "anvil: key '%s' was used before: %s is the first job's id "
            "(nothing new was submitted)\n",
            o->key, id);
    if (o->wait) {
        rc = wait_and_print(x, id, true);
    } else if (o->json) {
        rc = cli_print_json(x, output_submit_json(id, existed));
    } else {
        fprintf(x->out, "%s\n", id);
        rc = CLI_EXIT_OK;
    }
    anvil_free(id);
    return rc;
}

static int
check_status(struct cli_opts *o, struct anvil_error *err)
{
    if (o->id == NULL && o->key == NULL)
        return cli_usage_error(err, "status: missing ID (or --key K)");
    if (o->id != NULL && o->key != NULL)
        return cli_usage_error(err, "status: give ID or --key, not both");
    return CLI_EXIT_OK;
}

static int
run_status(struct cli_ctx *x)
{
    const struct cli_opts *o   = x->opts;
    struct anvil_job      *job = NULL;
    struct anvil_error     err = { 0, "" };
    int                    rc;
    if (o->key != NULL)
        rc = anvil_job_get_by_key(x->client, o->key, &job, &err);
    else
        rc = anvil_job_get(x->client, o->id, &job, &err);
    if (rc != ANVIL_OK) {
        anvil_job_free(job);
        return cli_report(x, rc, &err);
    }
    rc = print_job(x, job);
    anvil_job_free(job);
    return rc;
}

static int
run_wait(struct cli_ctx *x)
{
    return wait_and_print(x, x->opts->id, false);
}

static int
run_cancel(struct cli_ctx *x)
{
    if (x->opts->id == NULL)
        return cli_run_cancel_many(x);
    struct anvil_job  *job = NULL;
    struct anvil_error err = { 0, "" };
    int rc = anvil_job_cancel(x->client, x->opts->id, &job, &err);
    if (rc != ANVIL_OK || job == NULL) {
        anvil_job_free(job);
        return cli_report(x, rc != ANVIL_OK ? rc : ANVIL_INTERNAL, &err);
    }
    if (x->opts->json)
        rc = cli_print_json(x, output_job_json(job));
    else if (job->state == ANVIL_JOB_CANCELED)
        fprintf(x->out, "%s CANCELED\n", job->id);
    else
        fprintf(x->out, "%s is %s; it stops at its worker's next heartbeat\n",
            job->id, anvil_job_state_name(job->state));
    anvil_job_free(job);
    return rc;
}

static int
run_retry(struct cli_ctx *x)
{
    if (x->opts->id == NULL)
        return cli_run_retry_many(x);
    const struct cli_opts *o   = x->opts;
    struct anvil_job      *job = NULL;
    struct anvil_error     err = { 0, "" };
    int rc = anvil_job_retry(x->client, o->id, o->max_attempts, &job, &err);
    if (rc != ANVIL_OK || job == NULL) {
        anvil_job_free(job);
        return cli_report(x, rc != ANVIL_OK ? rc : ANVIL_INTERNAL, &err);
    }
    if (x->opts->json)
        rc = cli_print_json(x, output_job_json(job));
    else
        fprintf(x->out, "%s %s (retried after %u attempt%s)\n", job->id,
            anvil_job_state_name(job->state), job->attempt,
            job->attempt == 1 ? "" : "s");
    anvil_job_free(job);
    return rc;
}

static int
run_list(struct cli_ctx *x)
{
    const struct cli_opts  *o    = x->opts;
    struct anvil_job_filter f    = { 0 };
    struct anvil_job_list  *list = NULL;
    struct anvil_error      err  = { 0, "" };
    f.state                      = o->state;
    f.type                       = o->type;
    f.queue                      = o->queue;
    f.limit                      = o->limit;
    f.cursor                     = o->cursor;
    f.since_ms                   = o->created_since_ms;
    f.until_ms                   = o->created_until_ms;
    int rc                       = anvil_job_list(x->client, &f, &list, &err);
    if (rc != ANVIL_OK) {
        anvil_job_list_free(list);
        return cli_report(x, rc, &err);
    }
    if (o->json)
        rc = cli_print_json(x, output_list_json(list));
    else
        output_list_human(x->out, list);
    anvil_job_list_free(list);
    return rc;
}

// ---- Verb table entries

static const struct cli_flag submit_flags[] = {
    { "--data", "JSON", cli_set_data },
    { "--queue", "Q", cli_set_queue },
    { "--priority", "N", set_priority },
    { "--delay-ms", "N", set_delay },
    { "--run-at", "TIME", set_run_at },
    { "--max-attempts", "N", cli_set_max_attempts },
    { "--timeout-ms", "N", set_job_timeout },
    { "--lease-ms", "N", set_lease },
    { "--key", "K", set_key },
    { "--concurrency-key", "K", set_concurrency_key },
    { "--concurrency", "N", set_concurrency },
    { "--wait", NULL, cli_set_wait },
    { "--wait-timeout-ms", "N", set_wait_timeout },
    { NULL, NULL, NULL },
};

const struct cli_verb cli_verb_submit = {
    .name       = "submit",
    .positional = "TYPE",
    .synopsis   = "[--data JSON] [--queue Q] [--priority N] [--delay-ms N] "
                  "[--run-at RFC3339] [--max-attempts N] [--timeout-ms N] "
                  "[--lease-ms N] [--key K] [--concurrency-key K "
                  "--concurrency N] [--wait] [--wait-timeout-ms N]",
    .summary    = "submit a job of type TYPE and print its id",
    .help
    = "Flags:\n"
      "  --data JSON     the payload, sent byte for byte; must be valid "
      "JSON\n"
      "  --queue Q       queue to put the job in (default: default)\n"
      "  --priority N    higher runs first (default 0; 32-bit integer)\n"
      "  --delay-ms N    run no earlier than N ms from now\n"
      "  --run-at TIME   run no earlier than TIME (RFC 3339, e.g.\n"
      "                  2026-11-28T05:44:27Z); not with --delay-ms\n"
      "  --max-attempts N  attempts before the job FAILS, 1..1000 (default "
      "3)\n"
      "  --timeout-ms N  run time allowed to one attempt (default: no "
      "limit)\n"
      "  --lease-ms N    lease of a worker on the job, renewed by its\n"
      "                  heartbeats, 100..86400000 (default: the server's, "
      "30 s)\n"
      "  --key K         idempotency key: a second submit with K returns the "
      "first\n"
      "                  job's id (and says so on stderr)\n"
      "  --concurrency-key K  with --concurrency N: at most N (1..1000000)\n"
      "                  jobs with key K run at once; the rest wait QUEUED\n"
      "  --wait          wait until the job finishes, then print and exit "
      "as\n"
      "                  'anvil wait' does\n"
      "  --wait-timeout-ms N  with --wait: stop waiting after N ms (exit "
      "4)\n"
      "\nPrints the id alone on a line; with --json {\"id\": ID, "
      "\"existed\": BOOL}.\n",
    .flags          = submit_flags,
    .set_positional = set_type_arg,
    .check          = check_submit,
    .run            = run_submit,
};

const struct cli_flag cli_no_flags[] = { { NULL, NULL, NULL } };

const struct cli_flag cli_wait_flags[] = {
    { "--timeout-ms", "N", cli_set_timeout },
    { NULL, NULL, NULL },
};

static const struct cli_flag status_flags[] = {
    { "--key", "K", set_key },
    { NULL, NULL, NULL },
};

const struct cli_verb cli_verb_status = {
    .name                = "status",
    .positional          = "ID",
    .positional_optional = true,
    .synopsis            = "| status --key K",
    .summary             = "show a job",
    .help                = "Flags:\n"
                           "  --key K  the job submitted with idempotency key K "
                           "(instead of ID)\n",
    .flags               = status_flags,
    .set_positional      = cli_set_id_arg,
    .check               = check_status,
    .run                 = run_status,
};

static const struct cli_flag retry_flags[] = {
    { "--max-attempts", "N", cli_set_max_attempts },
    { "--state", "S", cli_set_state },
    { "--type", "T", cli_set_type },
    { "--queue", "Q", cli_set_queue },
    { "--since", "TIME", cli_set_since },
    { "--until", "TIME", cli_set_until },
    { "--limit", "N", cli_set_limit },
    { "--cursor", "C", cli_set_cursor },
    { NULL, NULL, NULL },
};

const struct cli_verb cli_verb_retry = {
    .name                = "retry",
    .positional          = "ID",
    .positional_optional = true,
    .synopsis            = "[--max-attempts N] | retry --state FAILED|CANCELED "
                           "[--type T] [--queue Q] [--since TIME] [--until TIME] "
                           "[--limit N] [--cursor C] [--max-attempts N]",
    .summary = "run a FAILED or CANCELED job again under the same id, or "
               "many (dead letters)",
    .help
    = "The job goes back to QUEUED with its attempt counter and history "
      "kept.\n\nFlags:\n"
      "  --max-attempts N  attempts the retry may take, 1..1000 (default: "
      "the\n"
      "                    server's, 3)\n"
      "\nFails with FAILED_PRECONDITION when the job has not ended, "
      "SUCCEEDED, or is a\nworkflow step (use 'anvil workflow retry'). "
      "With --json: the job, as status\nprints it.\n"
      "\nWithout ID, retries the jobs 'anvil list' shows for the same "
      "filters, newest\nfirst, in one transaction (workflow steps are left "
      "out):\n"
      "  --state S     FAILED (the dead letters) or CANCELED; required\n"
      "  --type T      only jobs of type T\n"
      "  --queue Q     only jobs in queue Q\n"
      "  --since TIME  only jobs created at or after TIME (RFC 3339)\n"
      "  --until TIME  only jobs created before TIME (RFC 3339)\n"
      "  --limit N     at most N jobs, 1..1000 (default 100)\n"
      "  --cursor C    go on after the jobs of the previous call\n"
      "Prints how many and their ids; when more match, the --cursor that "
      "goes on.\nWith --json: {\"count\": N, \"ids\": [...], "
      "\"next_cursor\": C or null}.\n",
    .flags          = retry_flags,
    .set_positional = cli_set_id_arg,
    .check          = cli_check_retry,
    .run            = run_retry,
};

const struct cli_verb cli_verb_wait = {
    .name       = "wait",
    .positional = "ID",
    .synopsis   = "[--timeout-ms N]",
    .summary    = "wait until a job finishes, then show it",
    .help
    = "Flags:\n"
      "  --timeout-ms N  stop waiting after N ms (0: look once); default: "
      "no limit\n"
      "\nExit status: 0 if the job SUCCEEDED, 1 if it FAILED or was "
      "CANCELED,\n"
      "4 if it had not finished when the timeout passed.\n",
    .flags          = cli_wait_flags,
    .set_positional = cli_set_id_arg,
    .run            = run_wait,
};

// ListJobs' filter: list, and cancel of many.
static const struct cli_flag list_flags[] = {
    { "--state", "S", cli_set_state },
    { "--type", "T", cli_set_type },
    { "--queue", "Q", cli_set_queue },
    { "--since", "TIME", cli_set_since },
    { "--until", "TIME", cli_set_until },
    { "--limit", "N", cli_set_limit },
    { "--cursor", "C", cli_set_cursor },
    { NULL, NULL, NULL },
};

const struct cli_verb cli_verb_cancel = {
    .name                = "cancel",
    .positional          = "ID",
    .positional_optional = true,
    .synopsis = "| cancel --state S [--type T] [--queue Q] [--since TIME] "
                "[--until TIME] [--limit N] [--cursor C]",
    .summary  = "cancel a job (a running one at its next heartbeat), or many",
    .help     = "Fails with FAILED_PRECONDITION when the job had already "
                "finished.\n"
                "\nWithout ID, cancels the jobs 'anvil list' shows for the "
                "same filters, newest\nfirst, in one transaction:\n"
                "  --state S     PENDING, SCHEDULED, QUEUED or RUNNING; "
                "required\n"
                "  --type T      only jobs of type T\n"
                "  --queue Q     only jobs in queue Q\n"
                "  --since TIME  only jobs created at or after TIME (RFC "
                "3339)\n"
                "  --until TIME  only jobs created before TIME (RFC 3339)\n"
                "  --limit N     at most N jobs, 1..1000 (default 100)\n"
                "  --cursor C    go on after the jobs of the previous call\n"
                "Output as for 'anvil retry' without ID.\n",
    .flags    = list_flags,
    .set_positional = cli_set_id_arg,
    .check          = cli_check_cancel,
    .run            = run_cancel,
};

const struct cli_verb cli_verb_list = {
    .name     = "list",
    .synopsis = "[--state S] [--type T] [--queue Q] [--since TIME] "
                "[--until TIME] [--limit N] [--cursor C]",
    .summary  = "list jobs, newest first",
    .help     = "Flags:\n"
                "  --state S   only jobs in state S: PENDING, SCHEDULED, QUEUED, "
                "RUNNING,\n"
                "              SUCCEEDED, FAILED or CANCELED (any case)\n"
                "  --type T    only jobs of type T\n"
                "  --queue Q   only jobs in queue Q\n"
                "  --since TIME  only jobs created at or after TIME (RFC "
                "3339)\n"
                "  --until TIME  only jobs created before TIME (RFC 3339)\n"
                "  --limit N   at most N jobs, 1..1000 (default 50)\n"
                "  --cursor C  the next page, as printed after the previous one\n",
    .flags    = list_flags,
    .run      = run_list,
};
