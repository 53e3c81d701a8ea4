// cmd_schedule.c - `anvil schedule create|list|show|pause|resume|delete`:
// cron schedules that submit a job (or a workflow) on each tick.
#include "cli.h"
#include "output.h"
#include "util/clock.h"

#include <anvil/schedule.h>
#include <stdlib.h>
#include <string.h>

static int
set_name_arg(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("NAME", value, &o->name, err);
}

static int
set_cron(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("--cron", value, &o->cron, err);
}

static int
set_overlap(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    enum anvil_schedule_overlap v;
    if (anvil_schedule_overlap_parse(value, &v) != ANVIL_OK)
        return cli_usage_error(
            err, "--overlap takes skip, allow or cancel, not '%s'", value);
    o->overlap = (int) v;
    return CLI_EXIT_OK;
}

static int
set_every(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("--every", value, &o->every, err);
}

static int
set_catch_up(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    enum anvil_schedule_catch_up v;
    if (anvil_schedule_catch_up_parse(value, &v) != ANVIL_OK)
        return cli_usage_error(
            err, "--catch-up takes once, each or skip, not '%s'", value);
    o->catch_up = (int) v;
    return CLI_EXIT_OK;
}

static int
set_workflow(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("--workflow", value, &o->file, err);
}

static int
set_tz(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("--tz", value, &o->tz, err);
}

static int
check_create(struct cli_opts *o, struct anvil_error *err)
{
    if ((o->cron == NULL) == (o->every == NULL))
        return cli_usage_error(err, "give either --cron 'EXPR' or --every D");
    if (o->every != NULL && o->tz != NULL)
        return cli_usage_error(err, "--tz goes with --cron, not --every");
    if ((o->type == NULL) == (o->file == NULL))
        return cli_usage_error(err,
            "give either --type T (a job) or --workflow FILE (a workflow) "
            "for each tick to submit");
    if (o->file != NULL && (o->data != NULL || o->queue != NULL))
        return cli_usage_error(err,
            "--data and --queue go with --type; a workflow's steps carry "
            "their own");
    return CLI_EXIT_OK;
}

// ---- output ----

static json_t *
sched_json(const struct anvil_schedule *s)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_t *payload = json_loadb(
        (const char *) s->payload, s->payload_len, JSON_DECODE_ANY, NULL);
    if (json_object_set_new(o, "name", output_json_text(s->name))
        || json_object_set_new(o, "cron", output_json_text(s->cron))
        || json_object_set_new(o, "time_zone", output_json_text(s->time_zone))
        || json_object_set_new(o, "type", output_json_text(s->type))
        || json_object_set_new(
            o, "workflow", output_json_text_or_null(s->workflow_name))
        || json_object_set_new(o, "last_workflow_id",
            output_json_text_or_null(s->last_workflow_id))
        || json_object_set_new(o, "queue", output_json_text(s->queue))
        || json_object_set_new(
            o, "data", payload != NULL ? payload : json_null())
        || json_object_set_new(
            o, "overlap", json_string(anvil_schedule_overlap_name(s->overlap)))
        || json_object_set_new(o, "catch_up",
            json_string(anvil_schedule_catch_up_name(s->catch_up)))
        || json_object_set_new(o, "paused", json_boolean(s->paused))
        || json_object_set_new(
            o, "next_fire", output_json_time(s->next_fire_ms))
        || json_object_set_new(
            o, "last_fire", output_json_time(s->last_fire_ms))
        || json_object_set_new(
            o, "last_job_id", output_json_text_or_null(s->last_job_id))
        || json_object_set_new(o, "fired", json_integer((json_int_t) s->fired))
        || json_object_set_new(
            o, "skipped", json_integer((json_int_t) s->skipped))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

// What each tick submits: "job T on queue Q" or "workflow W (N steps)".
static const char *
template_of(const struct anvil_schedule *s, char *buf, size_t cap)
{
    if (s->workflow_name[0])
        snprintf(buf, cap, "workflow %s (%zu step%s)", s->workflow_name,
            s->workflow_steps, s->workflow_steps == 1 ? "" : "s");
    else
        snprintf(buf, cap, "job %s on queue %s", s->type, s->queue);
    return buf;
}

static void
sched_human(FILE *f, const struct anvil_schedule *s)
{
    char next[40], last[40], fired[64], tmpl[300];
    snprintf(fired, sizeof(fired), "%llu (skipped %llu)",
        (unsigned long long) s->fired, (unsigned long long) s->skipped);
    bool        wf       = s->workflow_name[0] != '\0';
    const char *labels[] = { "Name", "Cron", "Time zone", "Template", "Overlap",
        "Catch-up", "Paused", "Next fire", "Last fire",
        wf ? "Last workflow" : "Last job", "Fired" };
    const char *values[] = { s->name, s->cron, s->time_zone,
        template_of(s, tmpl, sizeof(tmpl)),
        anvil_schedule_overlap_name(s->overlap),
        anvil_schedule_catch_up_name(s->catch_up), s->paused ? "yes" : "no",
        s->paused ? "-" : av_format_time(s->next_fire_ms, next, sizeof(next)),
        av_format_time(s->last_fire_ms, last, sizeof(last)),
        wf ? s->last_workflow_id : s->last_job_id, fired };
    output_fields(f, labels, values, sizeof(labels) / sizeof(labels[0]));
}

static int
print_one(struct cli_ctx *x, const struct anvil_schedule *s)
{
    if (x->opts->json)
        return cli_print_json(x, sched_json(s));
    sched_human(x->out, s);
    return CLI_EXIT_OK;
}

// ---- verbs ----

static int
run_create(struct cli_ctx *x)
{
    const struct cli_opts *o = x->opts;
    char                   every[96];
    if (o->every != NULL)
        snprintf(every, sizeof(every), "@every %.80s", o->every);
    anvil_workflow_spec *wf = NULL;
    if (o->file != NULL) {
        int lrc = cli_workflow_load(x, &wf);
        if (lrc != CLI_EXIT_OK)
            return lrc;
    }
    struct anvil_job_opts      jo   = { .queue = o->queue };
    struct anvil_schedule_spec spec = {
        .name      = o->name,
        .cron      = o->every != NULL ? every : o->cron,
        .time_zone = o->tz,
        .type      = o->type,
        .payload   = o->data,
        .len       = o->data != NULL ? strlen(o->data) : 0,
        .opts      = wf == NULL ? &jo : NULL,
        .overlap   = (enum anvil_schedule_overlap) o->overlap,
        .catch_up  = (enum anvil_schedule_catch_up) o->catch_up,
        .workflow  = wf,
    };
    struct anvil_schedule *s   = NULL;
    struct anvil_error     err = { 0, "" };
    int rc = anvil_schedule_create(x->client, &spec, &s, &err);
    anvil_workflow_spec_free(wf);
    if (rc != ANVIL_OK)
        return cli_report(x, rc, &err);
    rc = print_one(x, s);
    anvil_schedule_free(s);
    return rc;
}

// show, pause, resume, delete: one name in, one schedule out.
static int
run_named(struct cli_ctx *x,
    int (*call)(anvil_client *, const char *, struct anvil_schedule **,
        struct anvil_error *))
{
    struct anvil_schedule *s   = NULL;
    struct anvil_error     err = { 0, "" };
    int                    rc  = call(x->client, x->opts->name, &s, &err);
    if (rc != ANVIL_OK)
        return cli_report(x, rc, &err);
    rc = print_one(x, s);
    anvil_schedule_free(s);
    return rc;
}

static int
run_show(struct cli_ctx *x)
{
    return run_named(x, anvil_schedule_get);
}

static int
run_pause(struct cli_ctx *x)
{
    return run_named(x, anvil_schedule_pause);
}

static int
run_resume(struct cli_ctx *x)
{
    return run_named(x, anvil_schedule_resume);
}

static int
run_delete(struct cli_ctx *x)
{
    return run_named(x, anvil_schedule_delete);
}

static int
list_human(FILE *f, const struct anvil_schedule_list *l)
{
    static const char *const h[] = { "NAME", "CRON", "TZ", "TYPE", "NEXT",
        "LAST RUN", "FIRED", "PAUSED" };
    struct output_table     *t   = output_table_new(8, h);
    if (t == NULL)
        return CLI_EXIT_FAILED;
    output_table_align_right(t, 6);
    for (size_t i = 0; i < l->n; i++) {
        const struct anvil_schedule *s = &l->schedules[i];
        char                         next[40], fired[24], type[160];
        snprintf(fired, sizeof(fired), "%llu", (unsigned long long) s->fired);
        bool wf = s->workflow_name[0] != '\0';
        snprintf(type, sizeof(type), "%s%s", wf ? "workflow:" : "",
            wf ? s->workflow_name : s->type);
        const char *row[] = { s->name, s->cron, s->time_zone, type,
            s->paused ? "-" : av_format_time(s->next_fire_ms, next, 40),
            wf ? s->last_workflow_id : s->last_job_id, fired,
            s->paused ? "yes" : "no" };
        if (output_table_add(t, row) != 0) {
            output_table_free(t);
            return CLI_EXIT_FAILED;
        }
    }
    output_table_print(t, f);
    output_table_free(t);
    return CLI_EXIT_OK;
}

static int
run_list(struct cli_ctx *x)
{
    struct anvil_schedule_list *l   = NULL;
    struct anvil_error          err = { 0, "" };
    int                         rc  = anvil_schedule_list(x->client, &l, &err);
    if (rc != ANVIL_OK)
        return cli_report(x, rc, &err);
    if (!x->opts->json) {
        rc = list_human(x->out, l);
        anvil_schedule_list_free(l);
        return rc;
    }
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < l->n; i++) {
        if (json_array_append_new(a, sched_json(&l->schedules[i])) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    anvil_schedule_list_free(l);
    return cli_print_json(x, a);
}

static const struct cli_flag create_flags[] = {
    { "--cron", "EXPR", set_cron },
    { "--every", "DURATION", set_every },
    { "--tz", "ZONE", set_tz },
    { "--type", "T", cli_set_type },
    { "--workflow", "FILE", set_workflow },
    { "--data", "JSON", cli_set_data },
    { "--queue", "Q", cli_set_queue },
    { "--overlap", "POLICY", set_overlap },
    { "--catch-up", "POLICY", set_catch_up },
    { NULL, NULL, NULL },
};

const struct cli_verb cli_verb_schedule_create = {
    .name       = "schedule create",
    .positional = "NAME",
    .synopsis   = "(--cron 'EXPR' [--tz ZONE] | --every DURATION) (--type T "
                  "[--data JSON] [--queue Q] | --workflow FILE) "
                  "[--overlap skip|allow|cancel] [--catch-up once|each|skip]",
    .summary    = "submit a job of type T, or a workflow, on a cron schedule",
    .help
    = "Flags:\n"
      "  --cron EXPR        minute hour day-of-month month day-of-week\n"
      "                     ('*/15 * * * *', '0 9 * * MON-FRI'), or @yearly,\n"
      "                     @monthly, @weekly, @daily, @hourly\n"
      "  --tz ZONE          the IANA zone of --cron (default UTC)\n"
      "  --every DURATION   a fixed interval instead: 30s, 15m, 1h30m (>= "
      "1s)\n"
      "  --type T           the type of the job each tick submits\n"
      "  --data JSON        its payload (valid JSON)\n"
      "  --queue Q          its queue (default: default)\n"
      "  --workflow FILE    instead of --type: the workflow each tick "
      "submits,\n"
      "                     a JSON definition as for `anvil workflow submit`\n"
      "                     (- reads stdin)\n"
      "  --overlap POLICY   while the previous job (or workflow) runs: skip\n"
      "                     (default), allow, or cancel it\n"
      "  --catch-up POLICY  ticks missed while the server was down: once\n"
      "                     (default: one run), each (up to 100), or skip\n"
      "Each tick's job or workflow has idempotency key schedule/NAME/TICK_MS:\n"
      "a tick fires once.\n",
    .flags          = create_flags,
    .set_positional = set_name_arg,
    .check          = check_create,
    .run            = run_create,
};

#define NAMED_VERB(ident, verb, summ, helptext, fn) \
    const struct cli_verb ident = {                 \
        .name           = "schedule " verb,         \
        .positional     = "NAME",                   \
        .synopsis       = "",                       \
        .summary        = summ,                     \
        .help           = helptext,                 \
        .flags          = cli_no_flags,             \
        .set_positional = set_name_arg,             \
        .run            = fn,                       \
    }

NAMED_VERB(cli_verb_schedule_show, "show",
    "show a schedule: its next and last fire times",
    "With --json: the schedule as an object.\n", run_show);
NAMED_VERB(cli_verb_schedule_pause, "pause", "stop a schedule's ticks",
    "No tick fires until it is resumed. Pausing a paused schedule is "
    "fine.\n",
    run_pause);
NAMED_VERB(cli_verb_schedule_resume, "resume",
    "resume a schedule from its next tick after now",
    "Ticks that fell while it was paused never fire.\n", run_resume);
NAMED_VERB(cli_verb_schedule_delete, "delete", "delete a schedule",
    "The jobs it submitted stay.\n", run_delete);

const struct cli_verb cli_verb_schedule_list = {
    .name     = "schedule list",
    .synopsis = "",
    .summary  = "list the schedules",
    .help     = "With --json: an array of schedules.\n",
    .flags    = cli_no_flags,
    .run      = run_list,
};

const struct cli_verb cli_verb_schedule = {
    .name     = "schedule",
    .synopsis = "",
    .summary  = "submit jobs on cron schedules",
    .help     = "Schedules are described in docs/schedules.md.\n",
    .flags    = cli_no_flags,
    .subverbs = (const struct cli_verb *const[]) { &cli_verb_schedule_create,
        &cli_verb_schedule_list, &cli_verb_schedule_show,
        &cli_verb_schedule_pause, &cli_verb_schedule_resume,
        &cli_verb_schedule_delete, NULL },
};
