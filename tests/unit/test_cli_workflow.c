// test_cli_workflow.c - `anvil workflow ...`: argument parsing of every
// sub-verb (good and bad input), the exit status of workflow wait, the
// dependency order and text table of workflow status, the JSON shapes, and
// then the whole command against a real in-process server (harness.h).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/cli.h"
#include "../../cli/output.h"
#include "../harness.h"

// 2025-11-28T05:44:27.123Z
#define T0 1764308667123LL

// ---- Helpers

static int
parse_v(const char **args, struct cli_opts *o, struct anvil_error *e)
{
    int argc = 0;
    while (args[argc] != NULL)
        argc++;
    return cli_parse(argc, (char **) args, o, e);
}

#define PARSE(o, e, ...) \
    parse_v((const char *[]) { "anvil", __VA_ARGS__, NULL }, (o), (e))

// Asserts that the line fails with exit 2 and a message containing want.
#define ASSERT_USAGE_ERROR(want, ...)                                   \
    do {                                                                \
        struct cli_opts    o_;                                          \
        struct anvil_error e_;                                          \
        assert_int_equal(PARSE(&o_, &e_, __VA_ARGS__), CLI_EXIT_USAGE); \
        if (strstr(e_.msg, (want)) == NULL)                             \
            fail_msg("got \"%s\", want \"%s\"", e_.msg, (want));        \
        assert_null(strchr(e_.msg, '\n'));                              \
    } while (0)

struct capture {
    char  *buf;
    size_t len;
    FILE  *f;
};

static void
capture_open(struct capture *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f   = open_memstream(&c->buf, &c->len);
    assert_non_null(c->f);
}

static char *
capture_close(struct capture *c)
{
    fclose(c->f);
    return c->buf;
}

// ---- Parsing

static void
test_parse_accepts_workflow_submit_with_every_flag(void **state)
{
    (void) state;
    struct cli_opts    o;
    struct anvil_error e;
    assert_int_equal(PARSE(&o, &e, "workflow", "submit", "wf.json", "--wait",
                         "--timeout-ms", "5000", "--json"),
        CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_workflow_submit);
    assert_string_equal(o.file, "wf.json");
    assert_true(o.wait);
    assert_true(o.has_timeout);
    assert_int_equal(o.timeout_ms, 5000);
    assert_true(o.json);
    // "-" is stdin, not a flag.
    assert_int_equal(PARSE(&o, &e, "workflow", "submit", "-"), CLI_EXIT_OK);
    assert_string_equal(o.file, "-");
    assert_false(o.wait);
}

static void
test_parse_rejects_bad_workflow_submit_lines(void **state)
{
    (void) state;
    ASSERT_USAGE_ERROR("workflow submit: missing FILE", "workflow", "submit");
    ASSERT_USAGE_ERROR("FILE must not be empty", "workflow", "submit", "");
    ASSERT_USAGE_ERROR("workflow submit: --timeout-ms needs --wait", "workflow",
        "submit", "f", "--timeout-ms", "5");
    ASSERT_USAGE_ERROR("--timeout-ms: 'x' is not an integer", "workflow",
        "submit", "f", "--wait", "--timeout-ms", "x");
    ASSERT_USAGE_ERROR(
        "unexpected argument 'g'", "workflow", "submit", "f", "g");
    ASSERT_USAGE_ERROR("unknown flag '--data' for workflow submit", "workflow",
        "submit", "f", "--data", "{}");
}

static void
test_parse_accepts_workflow_id_verbs(void **state)
{
    (void) state;
    struct cli_opts    o;
    struct anvil_error e;
    assert_int_equal(PARSE(&o, &e, "workflow", "status", "w7"), CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_workflow_status);
    assert_string_equal(o.id, "w7");
    assert_int_equal(
        PARSE(&o, &e, "workflow", "wait", "w7", "--timeout-ms=0"), CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_workflow_wait);
    assert_true(o.has_timeout);
    assert_int_equal(o.timeout_ms, 0);
    assert_int_equal(
        PARSE(&o, &e, "--server", "ipc:///x", "workflow", "cancel", "w9"),
        CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_workflow_cancel);
    assert_string_equal(o.id, "w9");
    assert_string_equal(o.server, "ipc:///x");
}

static void
test_parse_rejects_missing_extra_or_bad_workflow_ids(void **state)
{
    (void) state;
    ASSERT_USAGE_ERROR("workflow status: missing ID", "workflow", "status");
    ASSERT_USAGE_ERROR("workflow wait: missing ID", "workflow", "wait");
    ASSERT_USAGE_ERROR("workflow cancel: missing ID", "workflow", "cancel");
    ASSERT_USAGE_ERROR(
        "unexpected argument 'w2'", "workflow", "status", "w1", "w2");
    ASSERT_USAGE_ERROR("ID must not be empty", "workflow", "wait", "");
    ASSERT_USAGE_ERROR("--timeout-ms: -1 is out of range", "workflow", "wait",
        "w1", "--timeout-ms", "-1");
    ASSERT_USAGE_ERROR("unknown flag '--wait' for workflow status", "workflow",
        "status", "w1", "--wait");
}

static void
test_parse_accepts_workflow_list_filters(void **state)
{
    (void) state;
    struct cli_opts    o;
    struct anvil_error e;
    assert_int_equal(
        PARSE(&o, &e, "workflow", "list", "--state", "failed", "--name",
            "nightly", "--limit", "20", "--cursor", "w40"),
        CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_workflow_list);
    assert_int_equal(o.wf_state, ANVIL_WORKFLOW_FAILED);
    assert_string_equal(o.name, "nightly");
    assert_int_equal(o.limit, 20);
    assert_string_equal(o.cursor, "w40");
    assert_int_equal(PARSE(&o, &e, "workflow", "list"), CLI_EXIT_OK);
    assert_int_equal(o.wf_state, 0);
    assert_null(o.name);
}

static void
test_parse_rejects_bad_workflow_list_filters(void **state)
{
    (void) state;
    // A job state is not a workflow state.
    ASSERT_USAGE_ERROR("--state: unknown workflow state 'QUEUED' (RUNNING, "
                       "SUCCEEDED, FAILED or CANCELED)",
        "workflow", "list", "--state", "QUEUED");
    ASSERT_USAGE_ERROR("--state: unknown workflow state 'unspecified'",
        "workflow", "list", "--state", "unspecified");
    ASSERT_USAGE_ERROR(
        "--name must not be empty", "workflow", "list", "--name", "");
    ASSERT_USAGE_ERROR(
        "--limit: 1001 is out of range", "workflow", "list", "--limit", "1001");
    ASSERT_USAGE_ERROR(
        "--cursor needs a value", "workflow", "list", "--cursor");
    ASSERT_USAGE_ERROR("unknown flag '--type' for workflow list", "workflow",
        "list", "--type", "t");
    ASSERT_USAGE_ERROR(
        "workflow list: unexpected argument 'x'", "workflow", "list", "x");
}

static void
test_parse_rejects_missing_and_unknown_subcommands(void **state)
{
    (void) state;
    ASSERT_USAGE_ERROR("workflow: missing subcommand (submit, status, wait, "
                       "cancel, retry or list)",
        "workflow");
    ASSERT_USAGE_ERROR("workflow: unknown subcommand 'show' (submit, status, "
                       "wait, cancel, retry or list)",
        "workflow", "show", "w1");
    ASSERT_USAGE_ERROR("unknown flag '--state' for workflow", "workflow",
        "--state", "x", "list");
}

static void
test_parse_recognises_workflow_help_forms(void **state)
{
    (void) state;
    struct cli_opts    o;
    struct anvil_error e;
    assert_int_equal(PARSE(&o, &e, "workflow", "--help"), CLI_EXIT_OK);
    assert_true(o.help);
    assert_ptr_equal(o.verb, &cli_verb_workflow);
    assert_int_equal(PARSE(&o, &e, "help", "workflow"), CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_workflow);
    assert_int_equal(PARSE(&o, &e, "help", "workflow", "wait"), CLI_EXIT_OK);
    assert_true(o.help);
    assert_ptr_equal(o.verb, &cli_verb_workflow_wait);
    assert_int_equal(
        PARSE(&o, &e, "workflow", "submit", "--help", "--bogus"), CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_workflow_submit);
    assert_ptr_equal(
        cli_subverb_find(&cli_verb_workflow, "list"), &cli_verb_workflow_list);
    assert_null(cli_subverb_find(&cli_verb_workflow, "workflow"));
    assert_null(cli_subverb_find(&cli_verb_workflow, ""));
}

static void
test_main_prints_workflow_help_on_stdout(void **state)
{
    (void) state;
    struct capture out, err;
    capture_open(&out);
    capture_open(&err);
    const char *top[] = { "anvil", "--help", NULL };
    assert_int_equal(cli_main(2, (char **) top, out.f, err.f), CLI_EXIT_OK);
    const char *grp[] = { "anvil", "workflow", "--help", NULL };
    assert_int_equal(cli_main(3, (char **) grp, out.f, err.f), CLI_EXIT_OK);
    const char *sub[] = { "anvil", "workflow", "submit", "-h", NULL };
    assert_int_equal(cli_main(4, (char **) sub, out.f, err.f), CLI_EXIT_OK);
    char *o = capture_close(&out);
    char *e = capture_close(&err);
    assert_string_equal(e, "");
    assert_non_null(strstr(o, "  workflow CMD   submit, show, wait for"));
    assert_non_null(strstr(o,
        "Usage: anvil [--server URL] [--json] workflow "
        "SUBCOMMAND [ARGS]"));
    assert_non_null(strstr(o, "  submit FILE    submit the workflow"));
    assert_non_null(strstr(o,
        "Usage: anvil [--server URL] [--json] workflow "
        "submit FILE [--wait] [--timeout-ms N]"));
    free(o);
    free(e);
}

// ---- Fixtures: a workflow with steps, built by hand

struct fixture {
    struct anvil_workflow wf;
    struct anvil_job      steps[6];
    char                 *after[6][3];
};

static void
step_init(struct fixture *fx, size_t i, const char *name, int state,
    const char *result, const char *error, size_t n_after, ...)
{
    struct anvil_job *s = &fx->steps[i];
    va_list           ap;
    memset(s, 0, sizeof(*s));
    s->id                 = "j";
    s->type               = "echo";
    s->queue              = "default";
    s->payload            = (uint8_t *) "";
    s->step               = (char *) name;
    s->state              = state;
    s->attempt            = state >= ANVIL_JOB_RUNNING ? 1 : 0;
    s->retry.max_attempts = 3;
    s->result             = (uint8_t *) result;
    s->result_len         = strlen(result);
    s->error              = (char *) error;
    s->workflow_id        = "w3";
    s->idempotency_key    = "";
    s->worker_id          = "";
    s->started_at_ms      = s->attempt ? T0 + 1000 : 0;
    s->finished_at_ms     = state >= ANVIL_JOB_SUCCEEDED ? T0 + 1250 : 0;
    va_start(ap, n_after);
    for (size_t k = 0; k < n_after; k++)
        fx->after[i][k] = va_arg(ap, char *);
    va_end(ap);
    s->after   = fx->after[i];
    s->n_after = n_after;
}

// Submitted out of order on purpose: "publish" (after resize and thumb)
// comes first, the root "fetch" second, the loner "audit" last.
static void
fixture_init(struct fixture *fx)
{
    memset(fx, 0, sizeof(*fx));
    step_init(
        fx, 0, "publish", ANVIL_JOB_PENDING, "", "", 2, "resize", "thumb");
    step_init(fx, 1, "fetch", ANVIL_JOB_SUCCEEDED, "{\"bytes\":1234}", "", 0);
    step_init(fx, 2, "resize", ANVIL_JOB_RUNNING, "", "", 1, "fetch");
    step_init(fx, 3, "thumb", ANVIL_JOB_FAILED, "",
        "convert: no such file\nexit status 1", 1, "fetch");
    step_init(fx, 4, "audit", ANVIL_JOB_QUEUED, "", "", 0);
    step_init(fx, 5, "notify", ANVIL_JOB_PENDING, "", "", 1, "publish");
    struct anvil_workflow *w = &fx->wf;
    w->id                    = "w3";
    w->name                  = "thumbnails";
    w->state                 = ANVIL_WORKFLOW_FAILED;
    w->on_failure            = ANVIL_POLICY_CONTINUE;
    w->created_at_ms         = T0;
    w->finished_at_ms        = T0 + 2500;
    w->error                 = "step thumb failed";
    w->steps_total           = 6;
    w->steps_succeeded       = 1;
    w->steps_failed          = 1;
    w->steps                 = fx->steps;
    w->n_steps               = 6;
}

// ---- Dependency order

static void
test_order_puts_parents_first_with_ties_in_submission_order(void **state)
{
    (void) state;
    struct fixture fx;
    size_t         order[6], depth[6];
    fixture_init(&fx);
    assert_int_equal(output_workflow_order(&fx.wf, order, depth), 0);
    // fetch first (the smallest ready index), its children resize and
    // thumb, then publish (index 0, ready once thumb is done), then audit
    // (ready from the start: its turn comes when it is the smallest ready
    // index), then notify.
    static const size_t want[] = { 1, 2, 3, 0, 4, 5 };
    static const size_t wdep[] = { 2, 0, 1, 1, 0, 3 };
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(order[i], want[i]);
        assert_int_equal(depth[i], wdep[i]);
    }
}

static void
test_order_survives_cycles_and_unknown_parents(void **state)
{
    (void) state;
    struct fixture fx;
    size_t         order[3], depth[3];
    fixture_init(&fx);
    // a -> b -> a, and c after a step that does not exist.
    step_init(&fx, 0, "a", ANVIL_JOB_PENDING, "", "", 1, "b");
    step_init(&fx, 1, "b", ANVIL_JOB_PENDING, "", "", 1, "a");
    step_init(&fx, 2, "c", ANVIL_JOB_QUEUED, "", "", 1, "ghost");
    fx.wf.n_steps = 3;
    assert_int_equal(output_workflow_order(&fx.wf, order, depth), 0);
    assert_int_equal(order[0], 2);
    assert_int_equal(order[1], 0);
    assert_int_equal(order[2], 1);
    assert_int_equal(depth[0], 0);
    assert_int_equal(depth[1], 0);
}

static void
test_order_of_a_long_chain_and_a_wide_fan_is_fast_and_right(void **state)
{
    (void) state;
    enum { N = 5000 };
    struct anvil_workflow wf    = { 0 };
    struct anvil_job     *steps = calloc(N, sizeof(*steps));
    char(*names)[16]            = calloc(N, sizeof(*names));
    char  **parents             = calloc(N, sizeof(*parents));
    size_t *order               = calloc(N, sizeof(*order));
    size_t *depth               = calloc(N, sizeof(*depth));
    assert_non_null(steps);
    assert_non_null(names);
    assert_non_null(parents);
    assert_non_null(order);
    assert_non_null(depth);
    // Submitted in reverse: s4999 runs after s4998 ... after s0.
    for (int i = 0; i < N; i++) {
        int k = N - 1 - i;
        snprintf(names[i], sizeof(names[i]), "s%d", k);
        steps[i].step = names[i];
    }
    for (int i = 0; i < N - 1; i++) {
        parents[i]       = names[i + 1];
        steps[i].after   = &parents[i];
        steps[i].n_after = 1;
    }
    wf.steps   = steps;
    wf.n_steps = N;
    assert_int_equal(output_workflow_order(&wf, order, depth), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(order[i], (size_t) (N - 1 - i));
        assert_int_equal(depth[N - 1 - i], (size_t) i);
    }
    free(steps);
    free(names);
    free(parents);
    free(order);
    free(depth);
}

// ---- Text

static void
test_status_human_draws_header_and_indented_step_table(void **state)
{
    (void) state;
    struct fixture fx;
    struct capture out;
    fixture_init(&fx);
    capture_open(&out);
    output_workflow_human(out.f, &fx.wf, T0 + 9999);
    char       *o = capture_close(&out);
    const char *want
        = "ID:       w3\n"
          "Name:     thumbnails\n"
          "State:    FAILED\n"
          "Policy:   continue\n"
          "Steps:    1 of 6 succeeded, 1 failed\n"
          "Created:  2025-11-28T05:44:27.123Z\n"
          "Finished: 2025-11-28T05:44:29.623Z\n"
          "Duration: 2.500s\n"
          "Error:    step thumb failed\n"
          "\n"
          "STEP          STATE      ATTEMPT  DURATION       AFTER         "
          "RESULT/ERROR\n"
          "fetch         SUCCEEDED  1/3      250ms          -             "
          "{\"bytes\":1234}\n"
          "  resize      RUNNING    1/3      8.999s so far  fetch         -\n"
          "  thumb       FAILED     1/3      250ms          fetch         "
          "convert: no such file exit status 1\n"
          "    publish   PENDING    0/3      -              resize,thumb  -\n"
          "audit         QUEUED     0/3      -              -             -\n"
          "      notify  PENDING    0/3      -              publish       -\n";
    // Parents before children, ties in submission order, two spaces of
    // indentation per level of depth, one line per cell.
    if (strcmp(o, want) != 0)
        fail_msg("got:\n%s", o);
    free(o);
}

static void
test_status_human_cuts_long_results_and_cleans_control_characters(void **state)
{
    (void) state;
    struct fixture fx;
    struct capture out;
    char           longer[200];
    fixture_init(&fx);
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    fx.steps[1].result         = (uint8_t *) longer;
    fx.steps[1].result_len     = strlen(longer);
    fx.steps[3].error          = "bad\x1b[2Jthing";
    capture_open(&out);
    output_workflow_human(out.f, &fx.wf, T0);
    char *o = capture_close(&out);
    char  cut[OUTPUT_CELL_MAX + 1];
    memset(cut, 'x', OUTPUT_CELL_MAX - 3);
    memcpy(cut + OUTPUT_CELL_MAX - 3, "...", 4);
    assert_non_null(strstr(o, cut));
    assert_null(
        strstr(o, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
    assert_null(strchr(o, '\x1b'));
    assert_non_null(strstr(o, "bad?[2Jthing"));
    free(o);
}

static void
test_workflow_list_human_prints_table_and_cursor(void **state)
{
    (void) state;
    struct fixture             fx;
    struct capture             out;
    struct anvil_workflow_list l = { &fx.wf, 1, "w3" };
    fixture_init(&fx);
    fx.wf.n_steps = 0;
    capture_open(&out);
    output_workflow_list_human(out.f, &l);
    l.n           = 0;
    l.next_cursor = "";
    output_workflow_list_human(out.f, &l);
    char *o = capture_close(&out);
    assert_string_equal(o,
        "ID  NAME        STATE   STEPS  CREATED\n"
        "w3  thumbnails  FAILED  1/6    2025-11-28T05:44:27.123Z\n"
        "More workflows: add --cursor w3 to see the next page.\n"
        "No workflows.\n");
    free(o);
}

// ---- JSON

static void
test_workflow_json_has_exactly_the_documented_keys(void **state)
{
    (void) state;
    static const char *const keys[] = { "id", "name", "state", "on_failure",
        "error", "created_at", "finished_at", "steps" };
    static const char *const step_keys[] = { "name", "id", "state", "attempt",
        "result", "error", "started_at", "finished_at", "after" };
    struct fixture           fx;
    fixture_init(&fx);
    json_t *o = output_workflow_json(&fx.wf);
    assert_non_null(o);
    assert_int_equal(json_object_size(o), sizeof(keys) / sizeof(keys[0]));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_non_null(json_object_get(o, keys[i]));
    assert_string_equal(
        json_string_value(json_object_get(o, "state")), "FAILED");
    assert_string_equal(
        json_string_value(json_object_get(o, "on_failure")), "continue");
    json_t *steps = json_object_get(o, "steps");
    assert_int_equal(json_array_size(steps), 6);
    json_t *publish = json_array_get(steps, 0); // submission order
    assert_int_equal(json_object_size(publish), 9);
    for (size_t i = 0; i < sizeof(step_keys) / sizeof(step_keys[0]); i++)
        assert_non_null(json_object_get(publish, step_keys[i]));
    assert_string_equal(
        json_string_value(json_object_get(publish, "name")), "publish");
    json_t *after = json_object_get(publish, "after");
    assert_int_equal(json_array_size(after), 2);
    assert_string_equal(json_string_value(json_array_get(after, 1)), "thumb");
    assert_true(json_is_null(json_object_get(publish, "result")));
    assert_true(json_is_null(json_object_get(publish, "started_at")));
    json_t *fetch = json_array_get(steps, 1);
    assert_string_equal(json_string_value(json_object_get(fetch, "result")),
        "{\"bytes\":1234}");
    assert_true(json_is_null(json_object_get(fetch, "error")));
    assert_int_equal(json_array_size(json_object_get(fetch, "after")), 0);
    json_t *thumb = json_array_get(steps, 3);
    assert_string_equal(json_string_value(json_object_get(thumb, "error")),
        "convert: no such file\nexit status 1");
    json_decref(o);
}

static void
test_workflow_json_keeps_a_binary_result_in_base64(void **state)
{
    (void) state;
    struct fixture fx;
    fixture_init(&fx);
    fx.steps[1].result     = (uint8_t *) "\xff\x00\x01";
    fx.steps[1].result_len = 3;
    json_t *o              = output_workflow_json(&fx.wf);
    json_t *fetch          = json_array_get(json_object_get(o, "steps"), 1);
    assert_true(json_is_null(json_object_get(fetch, "result")));
    assert_string_equal(
        json_string_value(json_object_get(fetch, "result_base64")), "/wAB");
    json_decref(o);
}

static void
test_workflow_list_json_has_summaries_and_a_cursor_only_when_more(void **state)
{
    (void) state;
    struct fixture             fx;
    struct anvil_workflow_list l = { &fx.wf, 1, "" };
    fixture_init(&fx);
    json_t *o = output_workflow_list_json(&l);
    assert_non_null(o);
    assert_true(json_is_null(json_object_get(o, "next_cursor")));
    json_t *w = json_array_get(json_object_get(o, "workflows"), 0);
    assert_int_equal(json_object_size(w), 10);
    assert_null(json_object_get(w, "steps"));
    assert_int_equal(json_integer_value(json_object_get(w, "steps_total")), 6);
    assert_int_equal(
        json_integer_value(json_object_get(w, "steps_succeeded")), 1);
    assert_int_equal(json_integer_value(json_object_get(w, "steps_failed")), 1);
    json_decref(o);
    l.next_cursor = "w2";
    o             = output_workflow_list_json(&l);
    assert_string_equal(
        json_string_value(json_object_get(o, "next_cursor")), "w2");
    json_decref(o);
}

static void
test_workflow_wait_exit_status_follows_the_workflow(void **state)
{
    (void) state;
    struct fixture fx;
    fixture_init(&fx);
    fx.wf.state = ANVIL_WORKFLOW_SUCCEEDED;
    assert_int_equal(cli_workflow_wait_exit(ANVIL_OK, &fx.wf), CLI_EXIT_OK);
    fx.wf.state = ANVIL_WORKFLOW_FAILED;
    assert_int_equal(cli_workflow_wait_exit(ANVIL_OK, &fx.wf), CLI_EXIT_FAILED);
    fx.wf.state = ANVIL_WORKFLOW_CANCELED;
    assert_int_equal(cli_workflow_wait_exit(ANVIL_OK, &fx.wf), CLI_EXIT_FAILED);
    fx.wf.state = ANVIL_WORKFLOW_RUNNING;
    assert_int_equal(cli_workflow_wait_exit(ANVIL_DEADLINE_EXCEEDED, &fx.wf),
        CLI_EXIT_TIMEOUT);
    assert_int_equal(
        cli_workflow_wait_exit(ANVIL_UNAVAILABLE, &fx.wf), CLI_EXIT_FAILED);
    assert_int_equal(
        cli_workflow_wait_exit(ANVIL_NOT_FOUND, NULL), CLI_EXIT_FAILED);
}

// ---- The command against a real server

struct run {
    int   rc;
    char *out;
    char *err;
};

static struct harness *H; // the test's server, set by setup

static int
setup_server(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));
    if (h == NULL || harness_start(h) != 0) {
        free(h);
        return -1;
    }
    H      = h;
    *state = h;
    return 0;
}

static int
teardown_server(void **state)
{
    struct harness *h  = *state;
    int             rc = harness_stop(h);
    free(h);
    H = NULL;
    return rc;
}

// Runs `anvil --server URL args...` in process.
static struct run
run_cli(const char *const *args)
{
    const char *argv[24] = { "anvil", "--server", H->url };
    int         argc     = 3;
    while (*args != NULL && argc < 23)
        argv[argc++] = *args++;
    argv[argc] = NULL;
    struct capture out, err;
    capture_open(&out);
    capture_open(&err);
    struct run r = { cli_main(argc, (char **) argv, out.f, err.f), NULL, NULL };
    r.out        = capture_close(&out);
    r.err        = capture_close(&err);
    return r;
}

#define RUN(...) run_cli((const char *const[]) { __VA_ARGS__, NULL })

static void
run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

static char *
write_file(const char *name, const char *text)
{
    char  path[256];
    FILE *f;
    harness_path(H, name, path, sizeof(path));
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return strdup(path);
}

static const char chain_json[]
    = "{\"name\": \"chain\", \"steps\": ["
      "{\"name\": \"a\", \"type\": \"echo\", \"data\": {\"n\": 1}},"
      "{\"name\": \"b\", \"type\": \"echo\", \"data\": \"two\", \"after\": "
      "[\"a\"]},"
      "{\"name\": \"c\", \"type\": \"echo\", \"after\": [\"b\"]}]}";

static int
echo(void *arg, const struct anvil_lease *l, struct anvil_job_ctx *ctx)
{
    (void) arg;
    return anvil_job_ctx_set_result(ctx, l->job.payload, l->job.payload_len);
}

static void
test_cli_submits_waits_and_shows_a_workflow(void **state)
{
    struct harness *h = *state;
    assert_non_null(harness_start_worker(h, 2, "echo", echo, NULL, NULL));
    char      *path = write_file("chain.json", chain_json);
    struct run r    = RUN("workflow", "submit", path, "--wait");
    if (r.rc != CLI_EXIT_OK)
        fail_msg("rc %d\n%s%s", r.rc, r.out, r.err);
    assert_non_null(strstr(r.out, "State:    SUCCEEDED\n"));
    assert_non_null(strstr(r.out, "\nSTEP "));
    assert_non_null(strstr(r.out, "\n  b "));
    assert_non_null(strstr(r.out, "\"two\""));
    assert_string_equal(r.err, "");
    run_free(&r);
    // status --json of the same workflow: w1.
    r = RUN("--json", "workflow", "status", "w1");
    assert_int_equal(r.rc, CLI_EXIT_OK);
    json_error_t je;
    json_t      *j = json_loads(r.out, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "chain");
    json_t *a = json_array_get(json_object_get(j, "steps"), 0);
    assert_string_equal(
        json_string_value(json_object_get(a, "result")), "{\"n\":1}");
    json_decref(j);
    run_free(&r);
    r = RUN("workflow", "wait", "w1");
    assert_int_equal(r.rc, CLI_EXIT_OK);
    run_free(&r);
    r = RUN("workflow", "list", "--state", "succeeded");
    assert_int_equal(r.rc, CLI_EXIT_OK);
    assert_non_null(strstr(r.out, "\nw1  chain  SUCCEEDED  3/3  "));
    run_free(&r);
    free(path);
}

static void
test_cli_submit_prints_the_id_and_wait_times_out_with_exit_4(void **state)
{
    (void) state; // no worker: the steps stay queued
    char      *path = write_file("chain.json", chain_json);
    struct run r    = RUN("workflow", "submit", path);
    assert_int_equal(r.rc, CLI_EXIT_OK);
    assert_string_equal(r.out, "w1\n");
    run_free(&r);
    r = RUN("--json", "workflow", "submit", path);
    assert_int_equal(r.rc, CLI_EXIT_OK);
    assert_string_equal(r.out, "{\"id\": \"w2\", \"existed\": false}\n");
    run_free(&r);
    r = RUN("workflow", "wait", "w1", "--timeout-ms", "100");
    assert_int_equal(r.rc, CLI_EXIT_TIMEOUT);
    assert_non_null(strstr(r.out, "State:    RUNNING"));
    assert_string_equal(
        r.err, "anvil: workflow w1 is still RUNNING after 100 ms\n");
    run_free(&r);
    r = RUN("workflow", "cancel", "w1");
    assert_int_equal(r.rc, CLI_EXIT_OK);
    assert_string_equal(r.out, "w1 CANCELED\n");
    run_free(&r);
    r = RUN("workflow", "wait", "w1");
    assert_int_equal(r.rc, CLI_EXIT_FAILED); // CANCELED
    assert_non_null(strstr(r.out, "State:    CANCELED"));
    run_free(&r);
    r = RUN("workflow", "cancel", "w1"); // again: cancel is idempotent
    assert_int_equal(r.rc, CLI_EXIT_OK);
    assert_string_equal(r.out, "w1 CANCELED\n");
    run_free(&r);
    r = RUN("workflow", "cancel", "w77");
    assert_int_equal(r.rc, CLI_EXIT_FAILED);
    assert_non_null(strstr(r.err, "anvil: NOT_FOUND: "));
    run_free(&r);
    free(path);
}

static void
test_cli_rejects_a_bad_file_with_exit_2_and_sends_nothing(void **state)
{
    (void) state;
    char *bad = write_file(
        "bad.json", "{\"name\": \"x\", \"steps\": [{\"name\": \"a\"}]}");
    struct run r = RUN("workflow", "submit", bad);
    assert_int_equal(r.rc, CLI_EXIT_USAGE);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err,
        "bad.json: steps[0] (\"a\"): \"type\" is "
        "missing\n"));
    run_free(&r);
    r = RUN("workflow", "submit", "/nonexistent/wf.json");
    assert_int_equal(r.rc, CLI_EXIT_USAGE);
    assert_string_equal(r.err,
        "anvil: cannot read /nonexistent/wf.json: No such file or directory\n");
    run_free(&r);
    r = RUN("workflow", "list");
    assert_int_equal(r.rc, CLI_EXIT_OK);
    assert_string_equal(r.out, "No workflows.\n");
    run_free(&r);
    r = RUN("workflow", "status", "w404");
    assert_int_equal(r.rc, CLI_EXIT_FAILED);
    assert_non_null(strstr(r.err, "anvil: NOT_FOUND: "));
    run_free(&r);
    free(bad);
}

static void
test_cli_reports_a_cycle_from_the_server_with_exit_1(void **state)
{
    (void) state;
    char      *loop = write_file("loop.json",
             "{\"name\": \"loop\", \"steps\": ["
                  "{\"name\": \"a\", \"type\": \"echo\", \"after\": [\"b\"]},"
                  "{\"name\": \"b\", \"type\": \"echo\", \"after\": [\"a\"]}]}");
    struct run r    = RUN("workflow", "submit", loop);
    assert_int_equal(r.rc, CLI_EXIT_FAILED);
    assert_non_null(strstr(r.err, "anvil: INVALID_ARGUMENT: "));
    assert_non_null(strstr(r.err, "cycle"));
    run_free(&r);
    free(loop);
}

#define SERVER_TEST(fn) \
    cmocka_unit_test_setup_teardown(fn, setup_server, teardown_server)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_workflow_submit_with_every_flag),
        cmocka_unit_test(test_parse_rejects_bad_workflow_submit_lines),
        cmocka_unit_test(test_parse_accepts_workflow_id_verbs),
        cmocka_unit_test(test_parse_rejects_missing_extra_or_bad_workflow_ids),
        cmocka_unit_test(test_parse_accepts_workflow_list_filters),
        cmocka_unit_test(test_parse_rejects_bad_workflow_list_filters),
        cmocka_unit_test(test_parse_rejects_missing_and_unknown_subcommands),
        cmocka_unit_test(test_parse_recognises_workflow_help_forms),
        cmocka_unit_test(test_main_prints_workflow_help_on_stdout),
        cmocka_unit_test(
            test_order_puts_parents_first_with_ties_in_submission_order),
        cmocka_unit_test(test_order_survives_cycles_and_unknown_parents),
        cmocka_unit_test(
            test_order_of_a_long_chain_and_a_wide_fan_is_fast_and_right),
        cmocka_unit_test(
            test_status_human_draws_header_and_indented_step_table),
        cmocka_unit_test(
            test_status_human_cuts_long_results_and_cleans_control_characters),
        cmocka_unit_test(test_workflow_list_human_prints_table_and_cursor),
        cmocka_unit_test(test_workflow_json_has_exactly_the_documented_keys),
        cmocka_unit_test(test_workflow_json_keeps_a_binary_result_in_base64),
        cmocka_unit_test(
            test_workflow_list_json_has_summaries_and_a_cursor_only_when_more),
        cmocka_unit_test(test_workflow_wait_exit_status_follows_the_workflow),
        SERVER_TEST(test_cli_submits_waits_and_shows_a_workflow),
        SERVER_TEST(
            test_cli_submit_prints_the_id_and_wait_times_out_with_exit_4),
        SERVER_TEST(test_cli_rejects_a_bad_file_with_exit_2_and_sends_nothing),
        SERVER_TEST(test_cli_reports_a_cycle_from_the_server_with_exit_1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
