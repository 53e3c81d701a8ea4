// cmd_workflow.c - the workflow verbs: anvil workflow submit, status, wait,
// cancel, retry and list, over the workflow calls of anvil/workflow.h.
//
// `workflow submit` reads a JSON definition (docs/workflows.md) from a file
// or stdin and checks it with anvil_workflow_spec_parse_json() before anything
// is sent, so a bad file is a usage error (exit 2) naming the key and the
// step at fault.
#include "cli.h"
#include "output.h"
#include "util/file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <util/clock.h>

// Largest definition file read: above the largest request a server takes.
#define MAX_FILE ((size_t) 32 * 1024 * 1024)

// ---- Flag setters

static int
set_file_arg(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    if (value[0] == '\0')
        return cli_usage_error(err, "FILE must not be empty (use - for stdin)");
    o->file = value;
    return CLI_EXIT_OK;
}

static int
set_wf_state(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    enum anvil_workflow_state state = ANVIL_WORKFLOW_UNSPECIFIED;
    if (anvil_workflow_state_parse(value, &state) != ANVIL_OK
        || state == ANVIL_WORKFLOW_UNSPECIFIED)
        return cli_usage_error(err,
            "--state: unknown workflow state '%s' (RUNNING, SUCCEEDED, "
            "FAILED or CANCELED)",
            value);
    o->wf_state = state;
    return CLI_EXIT_OK;
}

static int
check_submit(struct cli_opts *o, struct anvil_error *err)
{
    if (o->has_timeout && !o->wait)
        return cli_usage_error(
            err, "workflow submit: --timeout-ms needs --wait");
    return CLI_EXIT_OK;
}

// ---- Printing and waiting

static int
print_workflow(struct cli_ctx *x, const struct anvil_workflow *wf)
{
    if (x->opts->json)
        return cli_print_json(x, output_workflow_json(wf));
    output_workflow_human(x->out, wf, av_now_ms());
    return CLI_EXIT_OK;
}

int
cli_workflow_wait_exit(int rc, const struct anvil_workflow *wf)
{
    if (wf == NULL)
        return CLI_EXIT_FAILED;
    return cli_wait_status(rc, anvil_workflow_state_final(wf->state),
        wf->state == ANVIL_WORKFLOW_SUCCEEDED);
}

// Waits for id, prints it and returns the exit status of `workflow wait`.
static int
wait_and_print(struct cli_ctx *x, const char *id, bool submitted)
{
    struct anvil_workflow *wf  = NULL;
    struct anvil_error     err = { 0, "" };
    int                    rc
        = anvil_workflow_wait(x->client, id, cli_wait_ms(x->opts), &wf, &err);
    struct cli_waited w = { .have = wf != NULL };
    if (wf != NULL) {
        w.exit  = cli_workflow_wait_exit(rc, wf);
        w.print = print_workflow(x, wf);
        w.state = anvil_workflow_state_name(wf->state);
    }
    int ec = cli_wait_end(x, "workflow", id, submitted, rc, &err, &w);
    anvil_workflow_free(wf);
    return ec;
}

// ---- Reading the definition

int
cli_workflow_load(struct cli_ctx *x, anvil_workflow_spec **wf)
{
    const char        *path = x->opts->file;
    const char        *name = strcmp(path, "-") == 0 ? "stdin" : path;
    char              *text = NULL;
    size_t             len  = 0;
    struct anvil_error err  = { 0, "" };
    if (av_read_file(path, MAX_FILE, &text, &len, &err) != ANVIL_OK) {
        fprintf(x->err, "anvil: %s\n", err.msg);
        return CLI_EXIT_USAGE;
    }
    int rc = anvil_workflow_spec_parse_json(text, len, wf, &err);
    free(text);
    if (rc != ANVIL_OK) {
        fprintf(x->err, "anvil: %s: %s\n", name, err.msg);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

// ---- Verbs

static int
run_submit(struct cli_ctx *x)
{
    anvil_workflow_spec *wf      = NULL;
    struct anvil_error   err     = { 0, "" };
    char                *id      = NULL;
    bool                 existed = false;
    int                  rc      = cli_workflow_load(x, &wf);
    if (rc != CLI_EXIT_OK)
        return rc;
    rc = anvil_workflow_submit(x->client, wf, &id, &existed, &err);
    anvil_workflow_spec_free(wf);
    if (rc != ANVIL_OK)
        return cli_report(x, rc, &err);
    if (x->opts->wait) {
        rc = wait_and_print(x, id, true);
    } else if (x->opts->json) {
        rc = cli_print_json(x, output_submit_json(id, existed));
    } else {
        fprintf(x->out, "%s\n", id);
        rc = CLI_EXIT_OK;
    }
    anvil_free(id);
    return rc;
}

static int
run_status(struct cli_ctx *x)
{
    struct anvil_workflow *wf  = NULL;
    struct anvil_error     err = { 0, "" };
    int rc = anvil_workflow_get(x->client, x->opts->id, &wf, &err);
    if (rc != ANVIL_OK)
        return cli_report(x, rc, &err);
    rc = print_workflow(x, wf);
    anvil_workflow_free(wf);
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
    struct anvil_workflow *wf  = NULL;
    struct anvil_error     err = { 0, "" };
    int rc = anvil_workflow_cancel(x->client, x->opts->id, &wf, &err);
    if (rc != ANVIL_OK)
        return cli_report(x, rc, &err);
    if (x->opts->json) {
        rc = cli_print_json(x, output_workflow_json(wf));
    } else {
        size_t running = 0;
        for (size_t i = 0; i < wf->n_steps; i++)
            running += wf->steps[i].state == ANVIL_JOB_RUNNING;
        fprintf(
            x->out, "%s %s\n", wf->id, anvil_workflow_state_name(wf->state));
        if (running > 0)
            fprintf(x->out,
                "%zu running step%s stop%s at their worker's next "
                "heartbeat\n",
                running, running == 1 ? "" : "s", running == 1 ? "s" : "");
    }
    anvil_workflow_free(wf);
    return rc;
}

static int
run_list(struct cli_ctx *x)
{
    const struct cli_opts       *o    = x->opts;
    struct anvil_workflow_filter f    = { 0 };
    struct anvil_workflow_list  *list = NULL;
    struct anvil_error           err  = { 0, "" };
    f.state                           = o->wf_state;
    f.name                            = o->name;
    f.limit                           = o->limit;
    f.cursor                          = o->cursor;
    int rc = anvil_workflow_list(x->client, &f, &list, &err);
    if (rc != ANVIL_OK)
        return cli_report(x, rc, &err);
    if (o->json)
        rc = cli_print_json(x, output_workflow_list_json(list));
    else
        output_workflow_list_human(x->out, list);
    anvil_workflow_list_free(list);
    return rc;
}

// ---- Verb table entries

static const struct cli_flag submit_flags[] = {
    { "--wait", NULL, cli_set_wait },
    { "--timeout-ms", "N", cli_set_timeout },
    { NULL, NULL, NULL },
};

const struct cli_verb cli_verb_workflow_submit = {
    .name       = "workflow submit",
    .positional = "FILE",
    .synopsis   = "[--wait] [--timeout-ms N]",
    .summary    = "submit the workflow defined in FILE (- for stdin), print "
                  "its id",
    .help       = "FILE holds a JSON definition (see docs/workflows.md), e.g.\n"
                  "  {\"name\": \"greet\", \"steps\": [\n"
                  "    {\"name\": \"a\", \"type\": \"echo\", \"data\": \"hi\"},\n"
                  "    {\"name\": \"b\", \"type\": \"echo\", \"after\": [\"a\"]}]}\n"
                  "It is checked before anything is sent: a bad one exits 2 with the "
                  "key\nand step at fault.\n\n"
                  "Flags:\n"
                  "  --wait          wait until the workflow ends, then print it and "
                  "exit\n"
                  "                  as 'anvil workflow wait' does\n"
                  "  --timeout-ms N  with --wait: stop waiting after N ms (exit 4)\n"
                  "\nPrints the id alone on a line; with --json {\"id\": ID, "
                  "\"existed\": BOOL}.\n",
    .flags      = submit_flags,
    .set_positional = set_file_arg,
    .check          = check_submit,
    .run            = run_submit,
};

// The JSON of one workflow, for the verbs that print one.
#define WORKFLOW_JSON_HELP                                                   \
    "With --json: {\"id\", \"name\", \"state\", \"on_failure\", \"error\", " \
    "\"created_at\",\n\"finished_at\", \"steps\": [{\"name\", \"id\", "      \
    "\"state\", \"attempt\", \"result\",\n\"error\", \"started_at\", "       \
    "\"finished_at\", \"after\": [...]}]}, steps in submission\norder; "     \
    "result as for jobs (see anvil --help).\n"

const struct cli_verb cli_verb_workflow_status = {
    .name       = "workflow status",
    .positional = "ID",
    .synopsis   = "",
    .summary    = "show a workflow and its steps in dependency order",
    .help
    = "Prints the workflow, then a table of its steps, each after the steps "
      "it runs\nafter and indented by its depth: STEP, STATE, ATTEMPT, "
      "DURATION, AFTER and\nRESULT/ERROR (cut to 48 characters; --json has "
      "them whole).\n\n" WORKFLOW_JSON_HELP,
    .flags          = cli_no_flags,
    .set_positional = cli_set_id_arg,
    .run            = run_status,
};

const struct cli_verb cli_verb_workflow_wait = {
    .name       = "workflow wait",
    .positional = "ID",
    .synopsis   = "[--timeout-ms N]",
    .summary    = "wait until a workflow ends, then show it",
    .help
    = "Flags:\n"
      "  --timeout-ms N  stop waiting after N ms (0: look once); default: "
      "no limit\n"
      "\nExit status: 0 if the workflow SUCCEEDED, 1 if it FAILED or was "
      "CANCELED,\n4 if it had not ended when the timeout "
      "passed.\n\n" WORKFLOW_JSON_HELP,
    .flags          = cli_wait_flags,
    .set_positional = cli_set_id_arg,
    .run            = run_wait,
};

const struct cli_verb cli_verb_workflow_cancel = {
    .name       = "workflow cancel",
    .positional = "ID",
    .synopsis   = "",
    .summary    = "cancel the unfinished steps of a workflow",
    .help       = "Waiting steps are cancelled at once, running ones at their "
                  "worker's next\nheartbeat; the workflow ends CANCELED. "
                  "Fails with FAILED_PRECONDITION when\nit had already "
                  "ended.\n\n" WORKFLOW_JSON_HELP,
    .flags      = cli_no_flags,
    .set_positional = cli_set_id_arg,
    .run            = run_cancel,
};

static int
run_retry(struct cli_ctx *x)
{
    struct anvil_workflow *wf  = NULL;
    struct anvil_error     err = { 0, "" };
    int rc = anvil_workflow_retry(x->client, x->opts->id, &wf, &err);
    if (rc != ANVIL_OK)
        return cli_report(x, rc, &err);
    if (x->opts->json) {
        rc = cli_print_json(x, output_workflow_json(wf));
    } else {
        size_t again = 0;
        for (size_t i = 0; i < wf->n_steps; i++)
            again += wf->steps[i].state != ANVIL_JOB_SUCCEEDED;
        fprintf(
            x->out, "%s %s\n", wf->id, anvil_workflow_state_name(wf->state));
        if (wf->n_steps > 0)
            fprintf(x->out, "%zu of %zu steps run again\n", again, wf->n_steps);
    }
    anvil_workflow_free(wf);
    return rc;
}

const struct cli_verb cli_verb_workflow_retry = {
    .name       = "workflow retry",
    .positional = "ID",
    .synopsis   = "",
    .summary    = "run a FAILED or CANCELED workflow again from the steps "
                  "that did not succeed",
    .help       = "Steps that did not succeed go back to QUEUED (or PENDING) "
                  "with their attempt\ncounters kept and a fresh budget of "
                  "attempts; succeeded steps keep their\nresults and do not "
                  "run again. Fails with FAILED_PRECONDITION while the\n"
                  "workflow runs or once it SUCCEEDED.\n\n" WORKFLOW_JSON_HELP,
    .flags      = cli_no_flags,
    .set_positional = cli_set_id_arg,
    .run            = run_retry,
};

static const struct cli_flag list_flags[] = {
    { "--state", "S", set_wf_state },
    { "--name", "N", cli_set_name },
    { "--limit", "N", cli_set_limit },
    { "--cursor", "C", cli_set_cursor },
    { NULL, NULL, NULL },
};

const struct cli_verb cli_verb_workflow_list = {
    .name     = "workflow list",
    .synopsis = "[--state S] [--name N] [--limit N] [--cursor C]",
    .summary  = "list workflows, newest first",
    .help
    = "Flags:\n"
      "  --state S   only workflows in state S: RUNNING, SUCCEEDED, FAILED "
      "or\n"
      "              CANCELED (any case)\n"
      "  --name N    only workflows called N\n"
      "  --limit N   at most N workflows, 1..1000 (default 50)\n"
      "  --cursor C  the next page, as printed after the previous one\n"
      "\nWith --json: {\"workflows\": [{\"id\", \"name\", \"state\", "
      "\"on_failure\", \"error\",\n\"created_at\", \"finished_at\", "
      "\"steps_total\", \"steps_succeeded\", \"steps_failed\"}],\n"
      "\"next_cursor\"}.\n",
    .flags = list_flags,
    .run   = run_list,
};

static const struct cli_verb *const workflow_verbs[] = {
    &cli_verb_workflow_submit,
    &cli_verb_workflow_status,
    &cli_verb_workflow_wait,
    &cli_verb_workflow_cancel,
    &cli_verb_workflow_retry,
    &cli_verb_workflow_list,
    NULL,
};

const struct cli_verb cli_verb_workflow = {
    .name     = "workflow",
    .synopsis = "",
    .summary  = "submit, show, wait for, cancel, retry and list workflows",
    .help     = "A workflow is a set of steps (jobs) that run in dependency "
                "order; see\ndocs/workflows.md for the JSON definition "
                "format.\n",
    .flags    = cli_no_flags,
    .subverbs = workflow_verbs,
};
