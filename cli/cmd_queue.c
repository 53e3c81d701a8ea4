// cmd_queue.c - `anvil queue pause NAME` and `anvil queue resume NAME`:
// stop and restart the leasing of a queue's jobs.
#include "cli.h"
#include "output.h"

static int
set_queue_arg(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    if (value[0] == '\0')
        return cli_usage_error(err, "NAME must not be empty");
    o->queue = value;
    return CLI_EXIT_OK;
}

static int
run_pause_resume(struct cli_ctx *x, bool pause)
{
    const char        *queue   = x->opts->queue;
    bool               changed = false;
    struct anvil_error err     = { 0, "" };
    int rc = pause ? anvil_queue_pause(x->client, queue, &changed, &err)
                   : anvil_queue_resume(x->client, queue, &changed, &err);
    if (rc != ANVIL_OK)
        return cli_report(x, rc, &err);
    if (!x->opts->json) {
        fprintf(x->out, "queue %s %s%s\n", queue,
            changed ? "" : (pause ? "was already " : "was not "),
            changed ? (pause ? "paused" : "resumed") : "paused");
        return CLI_EXIT_OK;
    }
    json_t *o = json_object();
    if (o != NULL
        && (json_object_set_new(o, "queue", output_json_text(queue))
            || json_object_set_new(o, "paused", json_boolean(pause))
            || json_object_set_new(o, "changed", json_boolean(changed)))) {
        json_decref(o);
        o = NULL;
    }
    return cli_print_json(x, o);
}

static int
run_queue_pause(struct cli_ctx *x)
{
    return run_pause_resume(x, true);
}

static int
run_queue_resume(struct cli_ctx *x)
{
    return run_pause_resume(x, false);
}

const struct cli_verb cli_verb_queue_pause = {
    .name           = "queue pause",
    .positional     = "NAME",
    .synopsis       = "",
    .summary        = "stop leasing a queue's jobs (submits still queue)",
    .help           = "Workers get no job of queue NAME until it is resumed; "
                      "submits are still taken\n(the jobs wait QUEUED) and "
                      "running jobs finish. The pause outlasts a server\n"
                      "restart. Pausing a paused queue, or one with no jobs "
                      "yet, is fine.\nWith --json: {\"queue\", \"paused\": "
                      "true, \"changed\"}.\n",
    .flags          = cli_no_flags,
    .set_positional = set_queue_arg,
    .run            = run_queue_pause,
};

const struct cli_verb cli_verb_queue_resume = {
    .name           = "queue resume",
    .positional     = "NAME",
    .synopsis       = "",
    .summary        = "lease a paused queue's jobs again",
    .help           = "Waiting workers get the queue's jobs at once. "
                      "Resuming a queue that is not\npaused is fine.\n"
                      "With --json: {\"queue\", \"paused\": false, "
                      "\"changed\"}.\n",
    .flags          = cli_no_flags,
    .set_positional = set_queue_arg,
    .run            = run_queue_resume,
};

static const struct cli_verb *const queue_verbs[] = {
    &cli_verb_queue_pause,
    &cli_verb_queue_resume,
    NULL,
};

const struct cli_verb cli_verb_queue = {
    .name     = "queue",
    .synopsis = "",
    .summary  = "pause and resume queues (`anvil health` lists the paused)",
    .help     = "Pausing a queue is described in docs/operations.md.\n",
    .flags    = cli_no_flags,
    .subverbs = queue_verbs,
};
