// test_cli_events.c - the anvil command's event and retry verbs without a
// server: parsing `events`, `retry`, `workflow retry` and `status --key`
// (good and bad input), and how an event prints for people and as JSON.
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

// 2025-11-28T05:44:27.123Z
#define T0 1764308667123LL

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

#define ASSERT_USAGE_ERROR(want, ...)                                   \
    do {                                                                \
        struct cli_opts    o_;                                          \
        struct anvil_error e_;                                          \
        assert_int_equal(PARSE(&o_, &e_, __VA_ARGS__), CLI_EXIT_USAGE); \
        if (strstr(e_.msg, (want)) == NULL)                             \
            print_error("got \"%s\"\n", e_.msg);                        \
        assert_non_null(strstr(e_.msg, (want)));                        \
    } while (0)

// Prints through fn into a string the caller frees.
static char *
capture(void (*fn)(FILE *, const void *), const void *arg)
{
    char  *buf = NULL;
    size_t len = 0;
    FILE  *f   = open_memstream(&buf, &len);
    assert_non_null(f);
    fn(f, arg);
    fclose(f);
    return buf;
}

static void
print_event(FILE *f, const void *e)
{
    output_event_human(f, e);
}

static struct anvil_event
event_fixture(void)
{
    struct anvil_event e = { 0 };
    e.seq                = 42;
    e.kind               = ANVIL_EVENT_JOB_FAILED;
    e.at_ms              = T0;
    e.job_id             = "j7";
    e.workflow_id        = "w3";
    e.step               = "fetch";
    e.type               = "Fetch";
    e.queue              = "io";
    e.worker             = "host-1";
    e.attempt            = 2;
    e.message            = "disk on fire";
    return e;
}

// ---- Parsing

static void
test_events_parses_every_flag(void **state)
{
    (void) state;
    struct cli_opts    o;
    struct anvil_error e;
    assert_int_equal(PARSE(&o, &e, "events", "--follow", "--since", "17",
                         "--job", "j1", "--workflow", "w2", "--type", "T",
                         "--queue", "q", "--kind", "job.failed", "--kind",
                         "JOB_RETRIED,worker.lost", "--limit", "500", "--json"),
        CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_events);
    assert_true(o.follow);
    assert_true(o.has_since);
    assert_int_equal(o.since, 17);
    assert_string_equal(o.job_id, "j1");
    assert_string_equal(o.workflow_id, "w2");
    assert_string_equal(o.type, "T");
    assert_string_equal(o.queue, "q");
    assert_int_equal(o.n_kinds, 3);
    assert_int_equal(o.kinds[0], ANVIL_EVENT_JOB_FAILED);
    assert_int_equal(o.kinds[1], ANVIL_EVENT_JOB_RETRIED);
    assert_int_equal(o.kinds[2], ANVIL_EVENT_WORKER_LOST);
    assert_int_equal(o.limit, 500);
    assert_true(o.json);

    assert_int_equal(PARSE(&o, &e, "events"), CLI_EXIT_OK);
    assert_false(o.follow);
    assert_false(o.has_since);
    assert_int_equal(o.n_kinds, 0);

    // --since 0 is a real start (the oldest kept), not "unset".
    assert_int_equal(PARSE(&o, &e, "events", "-f", "--since=0"), CLI_EXIT_OK);
    assert_true(o.follow);
    assert_true(o.has_since);
    assert_int_equal(o.since, 0);
}

static void
test_events_rejects_bad_flags(void **state)
{
    (void) state;
    ASSERT_USAGE_ERROR(
        "--since: -1 is out of range", "events", "--since", "-1");
    ASSERT_USAGE_ERROR(
        "--since: 'x' is not an integer", "events", "--since", "x");
    ASSERT_USAGE_ERROR("--kind: unknown kind 'job.exploded'", "events",
        "--kind", "job.exploded");
    ASSERT_USAGE_ERROR("--kind: unknown kind 'unspecified'", "events", "--kind",
        "unspecified");
    ASSERT_USAGE_ERROR("--kind: 'job.failed,' is not a kind", "events",
        "--kind", "job.failed,");
    ASSERT_USAGE_ERROR("--job must not be empty", "events", "--job", "");
    ASSERT_USAGE_ERROR(
        "--workflow must not be empty", "events", "--workflow", "");
    ASSERT_USAGE_ERROR("--limit: 0 is out of range", "events", "--limit", "0");
    ASSERT_USAGE_ERROR("events: unexpected argument 'j1'", "events", "j1");
    ASSERT_USAGE_ERROR("--follow takes no value", "events", "--follow=yes");

    struct cli_opts    o;
    struct anvil_error e;
    // CLI_MAX_KINDS kinds are fine; one more is refused.
    const char *args[2 * CLI_MAX_KINDS + 4] = { "anvil", "events" };
    int         n                           = 2;
    for (int i = 0; i < CLI_MAX_KINDS; i++) {
        args[n++] = "--kind";
        args[n++] = "job.started";
    }
    args[n] = NULL;
    assert_int_equal(parse_v(args, &o, &e), CLI_EXIT_OK);
    assert_int_equal(o.n_kinds, CLI_MAX_KINDS);
    args[n++] = "--kind=job.failed";
    args[n]   = NULL;
    assert_int_equal(parse_v(args, &o, &e), CLI_EXIT_USAGE);
    assert_non_null(strstr(e.msg, "--kind: at most 32 kinds"));
}

static void
test_retry_verbs_and_status_key_parse(void **state)
{
    (void) state;
    struct cli_opts    o;
    struct anvil_error e;
    assert_int_equal(
        PARSE(&o, &e, "retry", "j9", "--max-attempts", "5"), CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_retry);
    assert_string_equal(o.id, "j9");
    assert_int_equal(o.max_attempts, 5);
    assert_int_equal(PARSE(&o, &e, "retry", "j9"), CLI_EXIT_OK);
    assert_int_equal(o.max_attempts, 0);
    ASSERT_USAGE_ERROR("retry: missing ID", "retry");
    ASSERT_USAGE_ERROR("--max-attempts: 0 is out of range", "retry", "j9",
        "--max-attempts", "0");

    assert_int_equal(PARSE(&o, &e, "workflow", "retry", "w4"), CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_workflow_retry);
    assert_string_equal(o.id, "w4");
    ASSERT_USAGE_ERROR("workflow retry: missing ID", "workflow", "retry");

    assert_int_equal(PARSE(&o, &e, "status", "--key", "order-7"), CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_status);
    assert_null(o.id);
    assert_string_equal(o.key, "order-7");
    ASSERT_USAGE_ERROR("status: missing ID (or --key K)", "status");
    ASSERT_USAGE_ERROR(
        "status: give ID or --key, not both", "status", "j1", "--key", "k");
    ASSERT_USAGE_ERROR("--key must not be empty", "status", "--key", "");
}

// ---- Printing

static void
test_event_kind_short_names(void **state)
{
    (void) state;
    char buf[32];
    assert_string_equal(
        output_event_kind(ANVIL_EVENT_JOB_SUCCEEDED, buf, sizeof(buf)),
        "job.succeeded");
    assert_string_equal(
        output_event_kind(ANVIL_EVENT_WORKFLOW_RETRIED, buf, sizeof(buf)),
        "workflow.retried");
    assert_string_equal(
        output_event_kind(ANVIL_EVENT_WORKER_LOST, buf, sizeof(buf)),
        "worker.lost");
    assert_string_equal(
        output_event_kind((enum anvil_event_kind) 99, buf, sizeof(buf)),
        "unspecified");
    // Cut to the buffer, always terminated.
    assert_string_equal(
        output_event_kind(ANVIL_EVENT_JOB_SUCCEEDED, buf, 5), "job.");
    // Every short name parses back to its kind.
    for (int k = ANVIL_EVENT_JOB_SUBMITTED; k <= ANVIL_EVENT_WORKER_LOST; k++) {
        enum anvil_event_kind back = ANVIL_EVENT_UNSPECIFIED;
        output_event_kind((enum anvil_event_kind) k, buf, sizeof(buf));
        assert_int_equal(anvil_event_kind_parse(buf, &back), ANVIL_OK);
        assert_int_equal(back, k);
    }
}

static void
test_event_json_has_the_protos_field_names(void **state)
{
    (void) state;
    struct anvil_event e   = event_fixture();
    json_t            *obj = output_event_json(&e);
    assert_non_null(obj);
    assert_int_equal(json_object_size(obj), 11);
    assert_int_equal(json_integer_value(json_object_get(obj, "seq")), 42);
    assert_string_equal(
        json_string_value(json_object_get(obj, "kind")), "job.failed");
    assert_int_equal(json_integer_value(json_object_get(obj, "at_ms")), T0);
    assert_string_equal(
        json_string_value(json_object_get(obj, "job_id")), "j7");
    assert_string_equal(
        json_string_value(json_object_get(obj, "workflow_id")), "w3");
    assert_string_equal(
        json_string_value(json_object_get(obj, "step")), "fetch");
    assert_string_equal(
        json_string_value(json_object_get(obj, "type")), "Fetch");
    assert_string_equal(json_string_value(json_object_get(obj, "queue")), "io");
    assert_string_equal(
        json_string_value(json_object_get(obj, "worker")), "host-1");
    assert_int_equal(json_integer_value(json_object_get(obj, "attempt")), 2);
    assert_string_equal(
        json_string_value(json_object_get(obj, "message")), "disk on fire");
    json_decref(obj);

    // Empty strings are null, so `jq 'select(.workflow_id)'` works.
    e.workflow_id = "";
    e.step        = "";
    e.message     = "";
    obj           = output_event_json(&e);
    assert_true(json_is_null(json_object_get(obj, "workflow_id")));
    assert_true(json_is_null(json_object_get(obj, "step")));
    assert_true(json_is_null(json_object_get(obj, "message")));
    json_decref(obj);
}

static void
test_event_human_is_one_line_with_what_it_concerns(void **state)
{
    (void) state;
    struct anvil_event e    = event_fixture();
    char              *text = capture(print_event, &e);
    assert_string_equal(text,
        "2025-11-28T05:44:27.123Z 42 job.failed j7 workflow=w3 step=fetch "
        "type=Fetch queue=io worker=host-1 attempt=2: disk on fire\n");
    free(text);

    // A worker event is about its worker; nothing empty is printed.
    struct anvil_event w = { 0 };
    w.seq                = 43;
    w.kind               = ANVIL_EVENT_WORKER_LOST;
    w.at_ms              = T0;
    w.job_id = w.workflow_id = w.step = w.type = w.queue = "";
    w.worker                                             = "host-1";
    w.message                                            = "";
    text = capture(print_event, &w);
    assert_string_equal(
        text, "2025-11-28T05:44:27.123Z 43 worker.lost host-1\n");
    free(text);

    // A workflow event is about its workflow.
    w.kind        = ANVIL_EVENT_WORKFLOW_SUCCEEDED;
    w.workflow_id = "w3";
    w.worker      = "";
    text          = capture(print_event, &w);
    assert_string_equal(
        text, "2025-11-28T05:44:27.123Z 43 workflow.succeeded w3\n");
    free(text);
}

static void
test_event_human_cleans_the_servers_text(void **state)
{
    (void) state;
    struct anvil_event e = event_fixture();
    e.message            = "line one\nline two\x1b[2J";
    e.step               = "a b";
    char *text           = capture(print_event, &e);
    assert_non_null(strstr(text, " step=a_b "));
    assert_non_null(strstr(text, ": line one line two?[2J\n"));
    assert_null(strchr(text, '\x1b'));
    assert_int_equal(strchr(text, '\n') - text, (long) strlen(text) - 1);
    free(text);
}

static void
print_missed(FILE *f, const void *arg)
{
    const uint64_t *v = arg;
    output_events_missed(f, v[0], v[1]);
}

static void
test_missed_events_warning_names_the_gap(void **state)
{
    (void) state;
    uint64_t gap[2] = { 10, 25 };
    char    *text   = capture(print_missed, gap);
    assert_string_equal(text,
        "anvil: warning: events 11 to 24 were deleted by retention before "
        "they were read\n");
    free(text);
    uint64_t unknown[2] = { 10, 0 };
    text                = capture(print_missed, unknown);
    assert_string_equal(text,
        "anvil: warning: events after 10 were deleted by retention before "
        "they were read\n");
    free(text);
}

static void
test_events_and_retry_appear_in_the_usage(void **state)
{
    (void) state;
    char  *buf = NULL;
    size_t len = 0;
    FILE  *f   = open_memstream(&buf, &len);
    cli_usage(f, NULL);
    cli_usage(f, &cli_verb_events);
    cli_usage(f, &cli_verb_workflow);
    fclose(f);
    assert_non_null(strstr(buf, "  events "));
    assert_non_null(strstr(buf, "  retry ID "));
    assert_non_null(strstr(buf, "--since SEQ"));
    assert_non_null(strstr(buf, "  retry ID    "));
    free(buf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_parses_every_flag),
        cmocka_unit_test(test_events_rejects_bad_flags),
        cmocka_unit_test(test_retry_verbs_and_status_key_parse),
        cmocka_unit_test(test_event_kind_short_names),
        cmocka_unit_test(test_event_json_has_the_protos_field_names),
        cmocka_unit_test(test_event_human_is_one_line_with_what_it_concerns),
        cmocka_unit_test(test_event_human_cleans_the_servers_text),
        cmocka_unit_test(test_missed_events_warning_names_the_gap),
        cmocka_unit_test(test_events_and_retry_appear_in_the_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
