// cmd_health.c - `anvil health`: the server's version, uptime and queues.
#include "cli.h"
#include "output.h"

static int
run_health(struct cli_ctx *x)
{
    struct anvil_health *h   = NULL;
    struct anvil_error   err = { 0, "" };
    int                  rc  = anvil_health_get(x->client, &h, &err);
    if (rc != ANVIL_OK) {
        anvil_health_free(h);
        return cli_report(x, rc, &err);
    }
    rc = CLI_EXIT_OK;
    if (x->opts->json) {
        rc = cli_print_json(x, output_health_json(h));
    } else {
        output_health_human(x->out, h);
    }
    anvil_health_free(h);
    return rc;
}

static const struct cli_flag health_flags[] = { { NULL, NULL, NULL } };

const struct cli_verb cli_verb_health = {
    .name     = "health",
    .synopsis = "",
    .summary  = "show the server's version, uptime and queue depths",
    .help     = "With --json: {\"version\", \"uptime_ms\", \"jobs_total\", "
                "\"queues\": [{\"queue\", \"type\",\n\"queued\", "
                "\"running\", \"no_worker\", \"paused\"}], "
                "\"paused_queues\", \"queue_limits\": [{\"queue\", "
                "\"rate_per_second\",\n\"burst\", \"tokens\"}], "
                "\"busiest_keys\": [{\"key\", \"running\", \"waiting\", "
                "\"limit\"}]}.\nNO WORKER (no_worker) marks a queue and type "
                "no live worker serves; Paused lists\nthe paused queues "
                "(anvil queue pause), whose rows say (paused); Rate limits "
                "lists\nthe limits (anvil queue limit) with the tokens in "
                "each bucket. The CONCURRENCY KEY\ntable lists the keys with "
                "the most jobs waiting for a free slot (at most 20).\n",
    .flags    = health_flags,
    .run      = run_health,
};
