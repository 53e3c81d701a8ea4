// cmd_bulk.c - `anvil retry` and `anvil cancel` without an ID: the jobs
// `anvil list` shows for the same filters, changed in one call
// (anvil_job_retry_many, anvil_job_cancel_many). The verbs themselves are
// in cmd_job.c; this file holds their filter flags, checks and the runs
// of the many-jobs form.
#include "cli.h"
#include "output.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <util/clock.h>

// ---- Flag setters

static int
set_time(
    const char *flag, const char *value, int64_t *out, struct anvil_error *err)
{
    int64_t ms;
    if (av_parse_time(value, &ms) != 0 || ms <= 0)
        return cli_usage_error(err,
            "%s: '%s' is not an RFC 3339 time (e.g. 2026-11-28T05:44:27Z)",
            flag, value);
    *out = ms;
    return CLI_EXIT_OK;
}

int
cli_set_since(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return set_time("--since", value, &o->created_since_ms, err);
}

int
cli_set_until(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return set_time("--until", value, &o->created_until_ms, err);
}

// ---- Checks

static bool
has_filters(const struct cli_opts *o)
{
    return o->state != ANVIL_JOB_UNSPECIFIED || o->type != NULL
        || o->queue != NULL || o->limit != 0 || o->cursor != NULL
        || o->created_since_ms != 0 || o->created_until_ms != 0;
}

// ID or --state with filters; the state one the verb acts on.
static int
check(struct cli_opts *o, bool retry, struct anvil_error *err)
{
    const char *verb = retry ? "retry" : "cancel";
    const char *want = retry ? "FAILED or CANCELED"
                             : "PENDING, SCHEDULED, QUEUED or RUNNING";
    if (o->id != NULL) {
        if (has_filters(o))
            return cli_usage_error(err,
                "%s: give a job ID or --state with filters, not both", verb);
        return CLI_EXIT_OK;
    }
    if (o->state == ANVIL_JOB_UNSPECIFIED)
        return cli_usage_error(err,
            "%s: missing ID (or --state %s to %s many jobs)", verb,
            retry ? "FAILED" : "QUEUED", verb);
    bool ok = retry
        ? o->state == ANVIL_JOB_FAILED || o->state == ANVIL_JOB_CANCELED
        : !anvil_job_state_final(o->state);
    if (!ok)
        return cli_usage_error(err, "%s --state %s: only %s jobs can be %s",
            verb, anvil_job_state_name(o->state), want,
            retry ? "retried" : "canceled");
    if (o->created_until_ms != 0 && o->created_since_ms >= o->created_until_ms)
        return cli_usage_error(err, "%s: --since must be before --until", verb);
    return CLI_EXIT_OK;
}

int
cli_check_retry(struct cli_opts *o, struct anvil_error *err)
{
    return check(o, true, err);
}

int
cli_check_cancel(struct cli_opts *o, struct anvil_error *err)
{
    return check(o, false, err);
}

// ---- Runs

static json_t *
ids_json(const struct anvil_job_id_list *l)
{
    json_t *ids = json_array();
    int     rc  = ids == NULL ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < l->n; i++)
        rc = json_array_append_new(ids, output_json_text(l->ids[i]));
    json_t *o
        = output_json_page("ids", output_json_done(ids, rc), l->next_cursor);
    if (o != NULL
        && json_object_set_new(o, "count", json_integer((json_int_t) l->n))
            != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

// "retried 3 jobs: j9 j8 j7", then the cursor when more match.
static void
ids_human(FILE *f, const struct anvil_job_id_list *l, const char *done)
{
    fprintf(f, "%s %zu job%s%s", done, l->n, l->n == 1 ? "" : "s",
        l->n > 0 ? ":" : "");
    for (size_t i = 0; i < l->n; i++) {
        char *id = output_text_clean(l->ids[i], strlen(l->ids[i]));
        fprintf(f, " %s", id != NULL ? id : "?");
        free(id);
    }
    fputc('\n', f);
    if (l->next_cursor != NULL && l->next_cursor[0] != '\0') {
        char *cur = output_text_clean(l->next_cursor, strlen(l->next_cursor));
        fprintf(f, "More jobs match: add --cursor %s to go on.\n",
            cur != NULL ? cur : "?");
        free(cur);
    }
}

static int
run_many(struct cli_ctx *x, bool retry)
{
    const struct cli_opts    *o    = x->opts;
    struct anvil_job_id_list *list = NULL;
    struct anvil_error        err  = { 0, "" };
    struct anvil_job_filter   f    = {
             .state    = o->state,
             .type     = o->type,
             .queue    = o->queue,
             .limit    = o->limit,
             .cursor   = o->cursor,
             .since_ms = o->created_since_ms,
             .until_ms = o->created_until_ms,
    };
    int rc = retry
        ? anvil_job_retry_many(x->client, &f, o->max_attempts, &list, &err)
        : anvil_job_cancel_many(x->client, &f, &list, &err);
    if (rc != ANVIL_OK)
        return cli_report(x, rc, &err);
    if (o->json)
        rc = cli_print_json(x, ids_json(list));
    else
        ids_human(x->out, list, retry ? "retried" : "canceled");
    anvil_job_id_list_free(list);
    return rc;
}

int
cli_run_retry_many(struct cli_ctx *x)
{
    return run_many(x, true);
}

int
cli_run_cancel_many(struct cli_ctx *x)
{
    return run_many(x, false);
}
