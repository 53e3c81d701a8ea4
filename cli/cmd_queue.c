// cmd_queue.c - `anvil queue pause NAME` and `anvil queue resume NAME`
// (stop and restart the leasing of a queue's jobs) and `anvil queue limit
// NAME --rate R/s [--burst B]` (its rate limit).
#include "cli.h"
#include "output.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

// ---- queue limit ----

// The units a rate may be given per, in seconds.
static const struct {
    const char *name;
    double      seconds;
} rate_units[] = {
    { "s", 1 },
    { "sec", 1 },
    { "m", 60 },
    { "min", 60 },
    { "h", 3600 },
    { "hour", 3600 },
};

int
cli_parse_rate(const char *flag, const char *s, double *per_second,
    struct anvil_error *err)
{
    // Digits with at most one '.', then an optional "/unit": no sign, no
    // exponent, no "inf" or "nan" (strtod alone would take them).
    size_t digits = 0, dots = 0, i = 0;
    for (; (s[i] >= '0' && s[i] <= '9') || s[i] == '.'; i++) {
        if (s[i] == '.')
            dots++;
        else
            digits++;
    }
    double unit = 1;
    bool   ok   = digits > 0 && digits + dots <= 24 && dots <= 1;
    if (ok && s[i] != '\0') {
        ok = false;
        for (size_t u = 0;
             s[i] == '/' && u < sizeof(rate_units) / sizeof(rate_units[0]);
             u++) {
            if (strcmp(s + i + 1, rate_units[u].name) == 0) {
                unit = rate_units[u].seconds;
                ok   = true;
            }
        }
    }
    if (!ok)
        return cli_usage_error(err,
            "%s: '%.64s' is not a rate: give starts per second, minute or "
            "hour, as 50/s, 300/m or 3600/h",
            flag, s);
    double v = strtod(s, NULL) / unit;
    if (!isfinite(v) || v < 0.001 || v > 1000000)
        return cli_usage_error(err,
            "%s: '%.64s' is out of range: from 0.001/s (3.6/h) to "
            "1000000/s",
            flag, s);
    *per_second = v;
    return CLI_EXIT_OK;
}

static int
set_rate(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    o->has_rate = true;
    return cli_parse_rate("--rate", value, &o->rate, err);
}

static int
set_burst(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    int64_t v;
    int     rc = cli_parse_int("--burst", value, 1, 1000000, &v, err);
    if (rc == CLI_EXIT_OK)
        o->burst = (uint32_t) v;
    return rc;
}

static int
set_none(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    (void) value;
    (void) err;
    o->no_limit = true;
    return CLI_EXIT_OK;
}

static int
check_limit(struct cli_opts *o, struct anvil_error *err)
{
    if (o->no_limit && (o->has_rate || o->burst > 0))
        return cli_usage_error(
            err, "queue limit: --none takes no --rate or --burst");
    if (!o->no_limit && !o->has_rate)
        return cli_usage_error(err,
            "queue limit: give --rate R/s (and --burst B), or --none to "
            "remove the limit");
    return CLI_EXIT_OK;
}

static int
run_queue_limit(struct cli_ctx *x)
{
    const struct cli_opts *o       = x->opts;
    double                 rate    = o->no_limit ? 0 : o->rate;
    uint32_t               burst   = 0;
    bool                   changed = false;
    struct anvil_error     err     = { 0, "" };
    int                    rc = anvil_queue_limit(x->client, o->queue, rate,
        o->no_limit ? 0 : o->burst, &burst, &changed, &err);
    if (rc != ANVIL_OK)
        return cli_report(x, rc, &err);
    if (!o->json) {
        if (o->no_limit)
            fprintf(x->out, "queue %s %s\n", o->queue,
                changed ? "has no rate limit now" : "had no rate limit");
        else
            fprintf(x->out, "queue %s %s %g/s, burst %u\n", o->queue,
                changed ? "limited to" : "was already limited to", rate, burst);
        return CLI_EXIT_OK;
    }
    json_t *j = json_object();
    if (j != NULL
        && (json_object_set_new(j, "queue", output_json_text(o->queue))
            || json_object_set_new(j, "rate_per_second", json_real(rate))
            || json_object_set_new(j, "burst", json_integer(burst))
            || json_object_set_new(j, "changed", json_boolean(changed)))) {
        json_decref(j);
        j = NULL;
    }
    return cli_print_json(x, j);
}

static const struct cli_flag limit_flags[] = {
    { "--rate", "R/s", set_rate },
    { "--burst", "B", set_burst },
    { "--none", NULL, set_none },
    { NULL, NULL, NULL },
};

const struct cli_verb cli_verb_queue_limit = {
    .name           = "queue limit",
    .positional     = "NAME",
    .synopsis       = "(--rate R/s [--burst B] | --none)",
    .summary        = "limit how many of a queue's jobs start a second",
    .help           = "  --rate R/s   at most R starts a second (also R/m, "
                      "R/h; 0.001/s to 1000000/s)\n"
                      "  --burst B    up to B at once after an idle spell "
                      "(default: a\n"
                      "               tenth of a second's worth, at least 1)\n"
                      "  --none       remove the limit\n"
                      "A token bucket, stored with every lease: a server "
                      "restart grants no second\nburst. `anvil health` shows "
                      "each limit and its tokens.\nWith --json: {\"queue\", "
                      "\"rate_per_second\", \"burst\", \"changed\"}.\n",
    .flags          = limit_flags,
    .set_positional = set_queue_arg,
    .check          = check_limit,
    .run            = run_queue_limit,
};

static const struct cli_verb *const queue_verbs[] = {
    &cli_verb_queue_pause,
    &cli_verb_queue_resume,
    &cli_verb_queue_limit,
    NULL,
};

const struct cli_verb cli_verb_queue = {
    .name     = "queue",
    .synopsis = "",
    .summary  = "pause, resume and rate-limit queues (see `anvil health`)",
    .help     = "Pausing a queue and rate limits are described in "
                "docs/operations.md.\n",
    .flags    = cli_no_flags,
    .subverbs = queue_verbs,
};
