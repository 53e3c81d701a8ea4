// test_cli_output.c - the anvil command without a server: argument parsing
// of every verb (good and bad input), JSON of jobs, lists and health, and
// the aligned text people read.
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
        assert_non_null(strstr(e_.msg, (want)));                        \
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

// Closes the stream; the caller frees the returned text.
static char *
capture_close(struct capture *c)
{
    fclose(c->f);
    return c->buf;
}

static struct anvil_job
job_fixture(void)
{
    struct anvil_job j   = { 0 };
    j.id                 = "j42";
    j.type               = "Sleep";
    j.queue              = "default";
    j.payload            = (uint8_t *) "{\"SleepTimeInSeconds\":1}";
    j.payload_len        = strlen((char *) j.payload);
    j.priority           = 5;
    j.state              = ANVIL_JOB_SUCCEEDED;
    j.attempt            = 1;
    j.retry.max_attempts = 3;
    j.result             = (uint8_t *) "done";
    j.result_len         = 4;
    j.error              = "";
    j.created_at_ms      = T0;
    j.started_at_ms      = T0 + 1000;
    j.finished_at_ms     = T0 + 2500;
    j.workflow_id        = "";
    j.step               = "";
    j.idempotency_key    = "";
    j.worker_id          = "";
    return j;
}

// ---- Argument parsing: submit

static void
test_parse_accepts_submit_with_every_flag(void **state)
{
    (void) state;
    struct cli_opts    o;
    struct anvil_error e;
    assert_int_equal(
        PARSE(&o, &e, "--server", "ipc:///tmp/x", "submit", "Sleep", "--data",
            "{\"a\": 1}", "--queue", "q1", "--priority", "-7", "--wait",
            "--wait-timeout-ms", "500", "--timeout-ms", "90000", "--delay-ms",
            "1500", "--max-attempts", "5", "--lease-ms", "2000", "--key",
            "order-7"),
        CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_submit);
    assert_string_equal(o.server, "ipc:///tmp/x");
    assert_string_equal(o.type, "Sleep");
    assert_string_equal(o.data, "{\"a\": 1}");
    assert_string_equal(o.queue, "q1");
    assert_int_equal(o.priority, -7);
    assert_true(o.wait);
    assert_true(o.has_timeout);
    assert_int_equal(o.timeout_ms, 500);
    assert_int_equal(o.job_timeout_ms, 90000);
    assert_int_equal(o.delay_ms, 1500);
    assert_int_equal(o.max_attempts, 5);
    assert_int_equal(o.lease_ms, 2000);
    assert_string_equal(o.key, "order-7");
    assert_int_equal(o.run_at_ms, 0);
    assert_false(o.json);
}

static void
test_parse_submit_timeout_is_per_attempt_and_needs_no_wait(void **state)
{
    (void) state;
    struct cli_opts    o;
    struct anvil_error e;
    assert_int_equal(
        PARSE(&o, &e, "submit", "T", "--timeout-ms", "10"), CLI_EXIT_OK);
    assert_int_equal(o.job_timeout_ms, 10);
    assert_false(o.has_timeout);
    assert_int_equal(PARSE(&o, &e, "submit", "T", "--run-at",
                         "2026-11-28T05:44:27.123Z", "--timeout-ms=0"),
        CLI_EXIT_OK);
    assert_int_equal(o.run_at_ms, T0 + 31536000000LL);
    assert_int_equal(o.job_timeout_ms, 0);
    ASSERT_USAGE_ERROR("--timeout-ms: -1 is out of range", "submit", "T",
        "--timeout-ms", "-1");
    ASSERT_USAGE_ERROR("--timeout-ms: '5s' is not an integer", "submit", "T",
        "--timeout-ms", "5s");
}

static void
test_parse_rejects_bad_submit_scheduling_and_retry_flags(void **state)
{
    (void) state;
    ASSERT_USAGE_ERROR(
        "--delay-ms: -5 is out of range", "submit", "T", "--delay-ms", "-5");
    ASSERT_USAGE_ERROR("--delay-ms: 'soon' is not an integer", "submit", "T",
        "--delay-ms", "soon");
    ASSERT_USAGE_ERROR("--run-at: 'tomorrow' is not an RFC 3339 time", "submit",
        "T", "--run-at", "tomorrow");
    ASSERT_USAGE_ERROR("submit: --delay-ms and --run-at cannot be used",
        "submit", "T", "--delay-ms", "5", "--run-at", "2026-11-28T05:44:27Z");
    ASSERT_USAGE_ERROR("--max-attempts: 0 is out of range (1..1000)", "submit",
        "T", "--max-attempts", "0");
    ASSERT_USAGE_ERROR("--max-attempts: 1001 is out of range", "submit", "T",
        "--max-attempts", "1001");
    ASSERT_USAGE_ERROR("--lease-ms: 99 is out of range (100..86400000)",
        "submit", "T", "--lease-ms", "99");
    ASSERT_USAGE_ERROR(
        "--lease-ms: 'x' is not an integer", "submit", "T", "--lease-ms", "x");
    ASSERT_USAGE_ERROR("--key must not be empty", "submit", "T", "--key", "");
    ASSERT_USAGE_ERROR("--key needs a value (K)", "submit", "T", "--key");
}

static void
test_parse_accepts_token_and_tls_flags_anywhere(void **state)
{
    (void) state;
    struct cli_opts    o;
    struct anvil_error e;
    assert_int_equal(PARSE(&o, &e, "--token", "s3cret", "--tls-ca", "ca.crt",
                         "health", "--tls-cert=c.crt", "--tls-key", "c.key"),
        CLI_EXIT_OK);
    assert_string_equal(o.token, "s3cret");
    assert_string_equal(o.tls_ca, "ca.crt");
    assert_string_equal(o.tls_cert, "c.crt");
    assert_string_equal(o.tls_key, "c.key");
    assert_int_equal(PARSE(&o, &e, "health"), CLI_EXIT_OK);
    assert_null(o.token);
    assert_null(o.tls_ca);
    ASSERT_USAGE_ERROR("--token must not be empty", "--token", "", "health");
    ASSERT_USAGE_ERROR("--token needs a value (T)", "health", "--token");
    ASSERT_USAGE_ERROR(
        "--tls-ca: FILE must not be empty", "--tls-ca=", "health");
    ASSERT_USAGE_ERROR(
        "--tls-cert needs --tls-key too", "--tls-cert", "c.crt", "health");
    ASSERT_USAGE_ERROR(
        "--tls-key needs --tls-cert too", "health", "--tls-key", "c.key");
}

static void
test_parse_accepts_workers_and_token_verbs(void **state)
{
    (void) state;
    struct cli_opts    o;
    struct anvil_error e;
    assert_int_equal(PARSE(&o, &e, "workers", "--json"), CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_workers);
    assert_true(o.json);
    assert_int_equal(PARSE(&o, &e, "token", "create", "--role", "WORKER",
                         "--name", "eu-1", "--expires-in", "90d"),
        CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_token_create);
    assert_int_equal(o.role, ANVIL_ROLE_WORKER);
    assert_string_equal(o.name, "eu-1");
    assert_int_equal(o.expires_in_ms, 90LL * 24 * 3600 * 1000);
    assert_int_equal(
        PARSE(&o, &e, "token", "create", "--role=reader", "--expires-in=30m"),
        CLI_EXIT_OK);
    assert_int_equal(o.role, ANVIL_ROLE_READER);
    assert_int_equal(o.expires_in_ms, 30LL * 60 * 1000);
    assert_null(o.name);
    assert_int_equal(PARSE(&o, &e, "token", "list"), CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_token_list);
    assert_int_equal(PARSE(&o, &e, "token", "revoke", "t4"), CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_token_revoke);
    assert_string_equal(o.id, "t4");
}

static void
test_parse_rejects_bad_workers_and_token_arguments(void **state)
{
    (void) state;
    ASSERT_USAGE_ERROR("workers: unexpected argument 'all'", "workers", "all");
    ASSERT_USAGE_ERROR(
        "token: missing subcommand (create, list or revoke)", "token");
    ASSERT_USAGE_ERROR("token: unknown subcommand 'delete'", "token", "delete");
    ASSERT_USAGE_ERROR(
        "token create: --role is required", "token", "create", "--name", "x");
    ASSERT_USAGE_ERROR("--role: unknown role 'root' (admin, client, worker or "
                       "reader)",
        "token", "create", "--role", "root");
    ASSERT_USAGE_ERROR("--expires-in: '90 days' is not a duration", "token",
        "create", "--role", "client", "--expires-in", "90 days");
    ASSERT_USAGE_ERROR("--expires-in: '-1h' is not a duration", "token",
        "create", "--role", "client", "--expires-in", "-1h");
    ASSERT_USAGE_ERROR("--expires-in: '0' is not a duration", "token", "create",
        "--role", "client", "--expires-in", "0");
    ASSERT_USAGE_ERROR("--name must not be empty", "token", "create", "--role",
        "client", "--name", "");
    ASSERT_USAGE_ERROR("token revoke: missing ID", "token", "revoke");
    ASSERT_USAGE_ERROR(
        "token list: unexpected argument 't1'", "token", "list", "t1");
}

static void
test_parse_accepts_global_flags_after_the_verb_and_equals_form(void **state)
{
    (void) state;
    struct cli_opts    o;
    struct anvil_error e;
    assert_int_equal(PARSE(&o, &e, "submit", "--json", "Sleep",
                         "--server=tcp://h:1", "--priority=2147483647"),
        CLI_EXIT_OK);
    assert_true(o.json);
    assert_string_equal(o.server, "tcp://h:1");
    assert_string_equal(o.type, "Sleep");
    assert_int_equal(o.priority, INT32_MAX);
    assert_null(o.data);
    assert_false(o.wait);
}

static void
test_parse_rejects_submit_without_type(void **state)
{
    (void) state;
    ASSERT_USAGE_ERROR("submit: missing TYPE", "submit");
    ASSERT_USAGE_ERROR("submit: missing TYPE", "submit", "--queue", "q");
    ASSERT_USAGE_ERROR("TYPE must not be empty", "submit", "");
}

static void
test_parse_rejects_invalid_json_data_with_jansson_position(void **state)
{
    (void) state;
    struct cli_opts    o;
    struct anvil_error e;
    assert_int_equal(
        PARSE(&o, &e, "submit", "T", "--data", "{\"a\": }"), CLI_EXIT_USAGE);
    assert_non_null(strstr(e.msg, "--data is not valid JSON: "));
    assert_non_null(strstr(e.msg, " at line 1 column 7"));
    ASSERT_USAGE_ERROR("--data is not valid JSON", "submit", "T", "--data", "");
    ASSERT_USAGE_ERROR(
        "--data is not valid JSON", "submit", "T", "--data", "{} trailing");
}

static void
test_parse_accepts_any_json_value_as_data(void **state)
{
    (void) state;
    struct cli_opts    o;
    struct anvil_error e;
    assert_int_equal(
        PARSE(&o, &e, "submit", "T", "--data", " [1, \"x\"] "), CLI_EXIT_OK);
    assert_string_equal(o.data, " [1, \"x\"] ");
    assert_int_equal(PARSE(&o, &e, "submit", "T", "--data", "42"), CLI_EXIT_OK);
}

static void
test_parse_rejects_bad_priority(void **state)
{
    (void) state;
    ASSERT_USAGE_ERROR("--priority: 'high' is not an integer", "submit", "T",
        "--priority", "high");
    ASSERT_USAGE_ERROR("--priority: '1.5' is not an integer", "submit", "T",
        "--priority", "1.5");
    ASSERT_USAGE_ERROR(
        "--priority: '' is not an integer", "submit", "T", "--priority", "");
    ASSERT_USAGE_ERROR("--priority: ' 3' is not an integer", "submit", "T",
        "--priority", " 3");
    ASSERT_USAGE_ERROR("--priority: 2147483648 is out of range", "submit", "T",
        "--priority", "2147483648");
    ASSERT_USAGE_ERROR("--priority: 99999999999999999999 is out of range",
        "submit", "T", "--priority", "99999999999999999999");
    ASSERT_USAGE_ERROR("--priority needs a value", "submit", "T", "--priority");
}

static void
test_parse_rejects_timeout_without_wait_or_out_of_range(void **state)
{
    (void) state;
    ASSERT_USAGE_ERROR("--wait-timeout-ms needs --wait", "submit", "T",
        "--wait-timeout-ms", "10");
    ASSERT_USAGE_ERROR("--wait-timeout-ms: -1 is out of range", "submit", "T",
        "--wait", "--wait-timeout-ms", "-1");
    ASSERT_USAGE_ERROR("--timeout-ms: '10s' is not an integer", "wait", "j1",
        "--timeout-ms", "10s");
    ASSERT_USAGE_ERROR("--timeout-ms: 2147483648 is out of range", "wait", "j1",
        "--timeout-ms", "2147483648");
}

// ---- Argument parsing: status, wait, cancel, health

static void
test_parse_accepts_id_verbs(void **state)
{
    (void) state;
    struct cli_opts    o;
    struct anvil_error e;
    assert_int_equal(PARSE(&o, &e, "status", "j7"), CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_status);
    assert_string_equal(o.id, "j7");
    assert_int_equal(PARSE(&o, &e, "--json", "cancel", "j8"), CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_cancel);
    assert_string_equal(o.id, "j8");
    assert_true(o.json);
    assert_int_equal(PARSE(&o, &e, "wait", "j9"), CLI_EXIT_OK);
    assert_false(o.has_timeout);
    assert_int_equal(
        PARSE(&o, &e, "wait", "j9", "--timeout-ms", "0"), CLI_EXIT_OK);
    assert_true(o.has_timeout);
    assert_int_equal(o.timeout_ms, 0);
    assert_int_equal(PARSE(&o, &e, "status", "--", "-odd"), CLI_EXIT_OK);
    assert_string_equal(o.id, "-odd");
    assert_int_equal(PARSE(&o, &e, "health"), CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_health);
}

static void
test_parse_rejects_missing_or_extra_ids(void **state)
{
    (void) state;
    ASSERT_USAGE_ERROR("status: missing ID", "status");
    ASSERT_USAGE_ERROR("wait: missing ID", "wait", "--timeout-ms", "5");
    ASSERT_USAGE_ERROR("cancel: missing ID", "cancel");
    ASSERT_USAGE_ERROR("ID must not be empty", "cancel", "");
    ASSERT_USAGE_ERROR(
        "status: unexpected argument 'j2'", "status", "j1", "j2");
    ASSERT_USAGE_ERROR("health: unexpected argument 'now'", "health", "now");
    ASSERT_USAGE_ERROR(
        "unknown flag '--queue' for status", "status", "j1", "--queue", "q");
    ASSERT_USAGE_ERROR("unknown flag '-x' for status", "status", "-x");
}

// ---- Argument parsing: list

static void
test_parse_accepts_list_filters(void **state)
{
    (void) state;
    struct cli_opts    o;
    struct anvil_error e;
    assert_int_equal(
        PARSE(&o, &e, "list", "--state", "running", "--type", "Sleep",
            "--queue", "q", "--limit", "1000", "--cursor", "c9"),
        CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_list);
    assert_int_equal(o.state, ANVIL_JOB_RUNNING);
    assert_string_equal(o.type, "Sleep");
    assert_string_equal(o.queue, "q");
    assert_int_equal(o.limit, 1000);
    assert_string_equal(o.cursor, "c9");
    assert_int_equal(PARSE(&o, &e, "list"), CLI_EXIT_OK);
    assert_int_equal(o.state, 0);
    assert_int_equal(o.limit, 0);
    assert_int_equal(
        PARSE(&o, &e, "list", "--state=CANCELED", "--limit=1"), CLI_EXIT_OK);
    assert_int_equal(o.state, ANVIL_JOB_CANCELED);
    assert_int_equal(o.limit, 1);
}

static void
test_parse_rejects_bad_list_filters(void **state)
{
    (void) state;
    ASSERT_USAGE_ERROR(
        "--limit: 0 is out of range (1..1000)", "list", "--limit", "0");
    ASSERT_USAGE_ERROR(
        "--limit: 1001 is out of range (1..1000)", "list", "--limit", "1001");
    ASSERT_USAGE_ERROR(
        "--limit: 'ten' is not an integer", "list", "--limit", "ten");
    ASSERT_USAGE_ERROR(
        "--state: unknown state 'DONE'", "list", "--state", "DONE");
    ASSERT_USAGE_ERROR("--state: unknown state 'UNSPECIFIED'", "list",
        "--state", "UNSPECIFIED");
    ASSERT_USAGE_ERROR("--type must not be empty", "list", "--type", "");
    ASSERT_USAGE_ERROR("list: unexpected argument 'all'", "list", "all");
}

// ---- Argument parsing: the command line as a whole

static void
test_parse_rejects_unknown_verbs_and_flags(void **state)
{
    (void) state;
    ASSERT_USAGE_ERROR("unknown verb 'submitt'", "submitt", "T");
    ASSERT_USAGE_ERROR("missing verb", "--json");
    ASSERT_USAGE_ERROR("unknown flag '--queue'", "--queue", "q", "submit", "T");
    ASSERT_USAGE_ERROR("unknown flag '--bogus' for list", "list", "--bogus");
    ASSERT_USAGE_ERROR("--json takes no value", "--json=yes", "health");
    ASSERT_USAGE_ERROR("--server needs a value (URL)", "health", "--server");
    ASSERT_USAGE_ERROR(
        "--server: URL must not be empty", "--server", "", "health");
    ASSERT_USAGE_ERROR("unknown verb 'nope'", "help", "nope");
    ASSERT_USAGE_ERROR("unexpected argument 'more'", "help", "list", "more");
}

static void
test_parse_recognises_every_help_form(void **state)
{
    (void) state;
    struct cli_opts    o;
    struct anvil_error e;
    assert_int_equal(PARSE(&o, &e, "--help"), CLI_EXIT_OK);
    assert_true(o.help);
    assert_null(o.verb);
    assert_int_equal(PARSE(&o, &e, "help"), CLI_EXIT_OK);
    assert_true(o.help);
    assert_null(o.verb);
    assert_int_equal(PARSE(&o, &e, "help", "wait"), CLI_EXIT_OK);
    assert_true(o.help);
    assert_ptr_equal(o.verb, &cli_verb_wait);
    // VERB --help wins over errors elsewhere on the line.
    assert_int_equal(
        PARSE(&o, &e, "submit", "--help", "--priority", "x"), CLI_EXIT_OK);
    assert_true(o.help);
    assert_ptr_equal(o.verb, &cli_verb_submit);
    assert_int_equal(
        PARSE(&o, &e, "submit", "--priority", "x", "--help"), CLI_EXIT_OK);
    assert_true(o.help);
    assert_ptr_equal(o.verb, &cli_verb_submit);
    // After "--", --help is an argument, not a flag.
    ASSERT_USAGE_ERROR(
        "--limit: 0 is out of range", "list", "--limit", "0", "--", "--help");
    assert_int_equal(PARSE(&o, &e, "list", "-h"), CLI_EXIT_OK);
    assert_ptr_equal(o.verb, &cli_verb_list);
    assert_int_equal(PARSE(&o, &e, "--version"), CLI_EXIT_OK);
    assert_true(o.version);
}

static void
test_server_url_comes_from_flag_then_environment_then_default(void **state)
{
    (void) state;
    struct cli_opts    o;
    struct anvil_error e;
    assert_int_equal(PARSE(&o, &e, "health"), CLI_EXIT_OK);
    unsetenv("ANVIL_SERVER");
    assert_string_equal(cli_server_url(&o), ANVIL_DEFAULT_URL);
    setenv("ANVIL_SERVER", "", 1);
    assert_string_equal(cli_server_url(&o), ANVIL_DEFAULT_URL);
    setenv("ANVIL_SERVER", "ipc:///tmp/env", 1);
    assert_string_equal(cli_server_url(&o), "ipc:///tmp/env");
    assert_int_equal(
        PARSE(&o, &e, "health", "--server", "ipc:///tmp/flag"), CLI_EXIT_OK);
    assert_string_equal(cli_server_url(&o), "ipc:///tmp/flag");
    unsetenv("ANVIL_SERVER");
}

static void
test_main_reports_usage_errors_on_one_line_with_exit_2(void **state)
{
    (void) state;
    struct capture out, err;
    capture_open(&out);
    capture_open(&err);
    const char *argv[] = { "anvil", "list", "--limit", "0", NULL };
    assert_int_equal(cli_main(4, (char **) argv, out.f, err.f), CLI_EXIT_USAGE);
    char *o = capture_close(&out);
    char *e = capture_close(&err);
    assert_string_equal(o, "");
    assert_string_equal(e, "anvil: --limit: 0 is out of range (1..1000)\n");
    free(o);
    free(e);
}

static void
test_main_prints_help_and_version_on_stdout(void **state)
{
    (void) state;
    struct capture out, err;
    capture_open(&out);
    capture_open(&err);
    const char *help[] = { "anvil", "--help", NULL };
    assert_int_equal(cli_main(2, (char **) help, out.f, err.f), CLI_EXIT_OK);
    const char *vhelp[] = { "anvil", "submit", "--help", NULL };
    assert_int_equal(cli_main(3, (char **) vhelp, out.f, err.f), CLI_EXIT_OK);
    const char *ver[] = { "anvil", "--version", NULL };
    assert_int_equal(cli_main(2, (char **) ver, out.f, err.f), CLI_EXIT_OK);
    char *o = capture_close(&out);
    char *e = capture_close(&err);
    assert_string_equal(e, "");
    // The documented rules: every verb, exit 4, the base64 rule.
    assert_non_null(strstr(o, "Usage: anvil [--server URL] [--json] VERB"));
    assert_non_null(strstr(o, "  submit TYPE"));
    assert_non_null(strstr(o, "  health"));
    assert_non_null(strstr(o,
        "  4  wait: --timeout-ms (submit --wait: "
        "--wait-timeout-ms)"));
    assert_non_null(strstr(o, "  workers"));
    assert_non_null(strstr(o, "  token CMD"));
    assert_non_null(strstr(o, "  --token T"));
    assert_non_null(strstr(o, "  --tls-ca FILE"));
    assert_non_null(strstr(o, "\"result_base64\""));
    assert_non_null(strstr(o,
        "Usage: anvil [--server URL] [--json] submit "
        "TYPE [--data JSON]"));
    assert_non_null(strstr(o, "anvil " ANVIL_VERSION "\n"));
    free(o);
    free(e);
}

static void
test_wait_exit_status_follows_the_job(void **state)
{
    (void) state;
    struct anvil_job j = job_fixture();
    assert_int_equal(cli_wait_exit(ANVIL_OK, &j), CLI_EXIT_OK);
    j.state = ANVIL_JOB_FAILED;
    assert_int_equal(cli_wait_exit(ANVIL_OK, &j), CLI_EXIT_FAILED);
    j.state = ANVIL_JOB_CANCELED;
    assert_int_equal(cli_wait_exit(ANVIL_OK, &j), CLI_EXIT_FAILED);
    j.state = ANVIL_JOB_RUNNING;
    assert_int_equal(
        cli_wait_exit(ANVIL_DEADLINE_EXCEEDED, &j), CLI_EXIT_TIMEOUT);
    assert_int_equal(cli_wait_exit(ANVIL_NOT_FOUND, &j), CLI_EXIT_FAILED);
    assert_int_equal(
        cli_wait_exit(ANVIL_DEADLINE_EXCEEDED, NULL), CLI_EXIT_FAILED);
    assert_int_equal(cli_wait_exit(ANVIL_UNAVAILABLE, NULL), CLI_EXIT_FAILED);
}

// ---- JSON

static void
test_job_json_has_exactly_the_documented_keys(void **state)
{
    (void) state;
    static const char *const keys[] = { "id", "type", "queue", "state",
        "attempt", "max_attempts", "priority", "payload", "result", "error",
        "created_at", "started_at", "finished_at", "progress",
        "concurrency_key", "concurrency_limit" };
    struct anvil_job         j      = job_fixture();
    json_t                  *obj    = output_job_json(&j);
    assert_non_null(obj);
    assert_int_equal(json_object_size(obj), sizeof(keys) / sizeof(keys[0]));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_non_null(json_object_get(obj, keys[i]));
    assert_string_equal(json_string_value(json_object_get(obj, "id")), "j42");
    assert_string_equal(
        json_string_value(json_object_get(obj, "state")), "SUCCEEDED");
    assert_int_equal(json_integer_value(json_object_get(obj, "attempt")), 1);
    assert_int_equal(
        json_integer_value(json_object_get(obj, "max_attempts")), 3);
    assert_int_equal(json_integer_value(json_object_get(obj, "priority")), 5);
    assert_string_equal(json_string_value(json_object_get(obj, "payload")),
        "{\"SleepTimeInSeconds\":1}");
    assert_string_equal(
        json_string_value(json_object_get(obj, "result")), "done");
    assert_true(json_is_null(json_object_get(obj, "error")));
    assert_string_equal(json_string_value(json_object_get(obj, "created_at")),
        "2025-11-28T05:44:27.123Z");
    assert_string_equal(json_string_value(json_object_get(obj, "finished_at")),
        "2025-11-28T05:44:29.623Z");
    json_decref(obj);
}

static void
test_job_json_names_every_state_in_upper_case(void **state)
{
    (void) state;
    static const struct {
        int         state;
        const char *name;
    } cases[] = {
        { ANVIL_JOB_PENDING, "PENDING" },
        { ANVIL_JOB_SCHEDULED, "SCHEDULED" },
        { ANVIL_JOB_QUEUED, "QUEUED" },
        { ANVIL_JOB_RUNNING, "RUNNING" },
        { ANVIL_JOB_SUCCEEDED, "SUCCEEDED" },
        { ANVIL_JOB_FAILED, "FAILED" },
        { ANVIL_JOB_CANCELED, "CANCELED" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct anvil_job j = job_fixture();
        j.state            = cases[i].state;
        json_t *obj        = output_job_json(&j);
        assert_non_null(obj);
        assert_string_equal(
            json_string_value(json_object_get(obj, "state")), cases[i].name);
        json_decref(obj);
    }
}

static void
test_job_json_gives_null_for_unset_times_result_and_error(void **state)
{
    (void) state;
    struct anvil_job j = job_fixture();
    j.state            = ANVIL_JOB_QUEUED;
    j.started_at_ms    = 0;
    j.finished_at_ms   = 0;
    j.result_len       = 0;
    j.payload_len      = 0;
    json_t *obj        = output_job_json(&j);
    assert_non_null(obj);
    assert_true(json_is_null(json_object_get(obj, "started_at")));
    assert_true(json_is_null(json_object_get(obj, "finished_at")));
    assert_true(json_is_null(json_object_get(obj, "result")));
    assert_true(json_is_null(json_object_get(obj, "payload")));
    assert_true(json_is_string(json_object_get(obj, "created_at")));
    json_decref(obj);
}

static void
test_job_json_gives_binary_result_in_base64_without_loss(void **state)
{
    (void) state;
    struct anvil_job j = job_fixture();
    j.result           = (uint8_t *) "\xff\x00\x01";
    j.result_len       = 3;
    j.error            = "bad byte \xfe here";
    json_t *obj        = output_job_json(&j);
    assert_non_null(obj);
    assert_int_equal(json_object_size(obj), 17);
    assert_true(json_is_null(json_object_get(obj, "result")));
    assert_string_equal(
        json_string_value(json_object_get(obj, "result_base64")), "/wAB");
    assert_null(json_object_get(obj, "payload_base64"));
    assert_string_equal(json_string_value(json_object_get(obj, "error")),
        "bad byte \xef\xbf\xbd here");
    json_decref(obj);
}

static void
test_job_json_keeps_nul_bytes_of_a_utf8_result(void **state)
{
    (void) state;
    struct anvil_job j = job_fixture();
    j.result           = (uint8_t *) "a\0b\n\xc3\xa9";
    j.result_len       = 6;
    json_t *obj        = output_job_json(&j);
    assert_non_null(obj);
    json_t *r = json_object_get(obj, "result");
    assert_int_equal(json_string_length(r), 6);
    assert_memory_equal(json_string_value(r), "a\0b\n\xc3\xa9", 6);
    json_decref(obj);
}

static void
test_list_json_has_jobs_and_a_cursor_only_when_there_is_more(void **state)
{
    (void) state;
    struct anvil_job      jobs[2] = { job_fixture(), job_fixture() };
    struct anvil_job_list list    = { jobs, 2, "c17" };
    jobs[1].id                    = "j43";
    json_t *obj                   = output_list_json(&list);
    assert_non_null(obj);
    assert_int_equal(json_object_size(obj), 2);
    assert_int_equal(json_array_size(json_object_get(obj, "jobs")), 2);
    json_t *second = json_array_get(json_object_get(obj, "jobs"), 1);
    assert_string_equal(
        json_string_value(json_object_get(second, "id")), "j43");
    assert_string_equal(
        json_string_value(json_object_get(obj, "next_cursor")), "c17");
    json_decref(obj);

    struct anvil_job_list last = { NULL, 0, "" };
    obj                        = output_list_json(&last);
    assert_non_null(obj);
    assert_int_equal(json_array_size(json_object_get(obj, "jobs")), 0);
    assert_true(json_is_null(json_object_get(obj, "next_cursor")));
    json_decref(obj);
}

static void
test_health_and_submit_json_have_the_documented_keys(void **state)
{
    (void) state;
    struct anvil_queue_depth d[]
        = { { "default", "Sleep", 3, 1, true, 2, true } };
    char                    *paused[] = { "default" };
    struct anvil_queue_limit lim[]    = { { "default", 2.5, 10, 3.25 } };
    struct anvil_key_state   keys[]   = { { "tenant-7", 2, 40, 2 } };
    struct anvil_health      h
        = { "0.1.0", 5000, 9, d, 1, NULL, 0, 77, paused, 1, lim, 1, keys, 1 };
    json_t *obj = output_health_json(&h);
    assert_non_null(obj);
    assert_int_equal(json_object_size(obj), 8);
    json_t *l = json_array_get(json_object_get(obj, "queue_limits"), 0);
    assert_string_equal(
        json_string_value(json_object_get(l, "queue")), "default");
    assert_true(json_real_value(json_object_get(l, "rate_per_second")) == 2.5);
    assert_int_equal(json_integer_value(json_object_get(l, "burst")), 10);
    assert_true(json_real_value(json_object_get(l, "tokens")) == 3.25);
    json_t *k = json_array_get(json_object_get(obj, "busiest_keys"), 0);
    assert_int_equal(json_object_size(k), 4);
    assert_string_equal(
        json_string_value(json_object_get(k, "key")), "tenant-7");
    assert_int_equal(json_integer_value(json_object_get(k, "running")), 2);
    assert_int_equal(json_integer_value(json_object_get(k, "waiting")), 40);
    assert_int_equal(json_integer_value(json_object_get(k, "limit")), 2);
    json_t *ps = json_object_get(obj, "paused_queues");
    assert_int_equal(json_array_size(ps), 1);
    assert_string_equal(json_string_value(json_array_get(ps, 0)), "default");
    assert_true(json_is_true(json_object_get(
        json_array_get(json_object_get(obj, "queues"), 0), "paused")));
    assert_int_equal(
        json_integer_value(json_object_get(obj, "last_event_seq")), 77);
    assert_string_equal(
        json_string_value(json_object_get(obj, "version")), "0.1.0");
    assert_int_equal(
        json_integer_value(json_object_get(obj, "uptime_ms")), 5000);
    assert_int_equal(json_integer_value(json_object_get(obj, "jobs_total")), 9);
    json_t *q = json_array_get(json_object_get(obj, "queues"), 0);
    assert_int_equal(json_object_size(q), 7);
    assert_int_equal(json_integer_value(json_object_get(q, "scheduled")), 2);
    assert_true(json_is_true(json_object_get(q, "no_worker")));
    assert_string_equal(
        json_string_value(json_object_get(q, "queue")), "default");
    assert_string_equal(json_string_value(json_object_get(q, "type")), "Sleep");
    assert_int_equal(json_integer_value(json_object_get(q, "queued")), 3);
    assert_int_equal(json_integer_value(json_object_get(q, "running")), 1);
    json_decref(obj);

    struct capture out;
    capture_open(&out);
    obj = output_submit_json("j1", false);
    assert_int_equal(output_json_print(out.f, obj), 0);
    json_decref(obj);
    char *text = capture_close(&out);
    assert_string_equal(text, "{\"id\": \"j1\", \"existed\": false}\n");
    free(text);
}

static void
test_json_print_rejects_a_missing_object(void **state)
{
    (void) state;
    struct capture out;
    capture_open(&out);
    assert_int_equal(output_json_print(out.f, NULL), -1);
    char *text = capture_close(&out);
    assert_string_equal(text, "");
    free(text);
}

// ---- Text for people

static void
test_job_human_prints_aligned_fields(void **state)
{
    (void) state;
    struct anvil_job j = job_fixture();
    struct capture   out;
    capture_open(&out);
    output_job_human(out.f, &j, T0 + 9999);
    char *text = capture_close(&out);
    assert_string_equal(text,
        "ID:       j42\n"
        "Type:     Sleep\n"
        "Queue:    default\n"
        "State:    SUCCEEDED\n"
        "Attempt:  1/3\n"
        "Priority: 5\n"
        "Created:  2025-11-28T05:44:27.123Z\n"
        "Started:  2025-11-28T05:44:28.123Z\n"
        "Finished: 2025-11-28T05:44:29.623Z\n"
        "Duration: 1.500s\n"
        "Result:   done\n"
        "Error:    -\n");
    free(text);
}

static void
test_job_human_shows_running_time_and_unset_fields(void **state)
{
    (void) state;
    struct anvil_job j = job_fixture();
    j.state            = ANVIL_JOB_RUNNING;
    j.finished_at_ms   = 0;
    j.result_len       = 0;
    j.error            = "line one\nline two";
    struct capture out;
    capture_open(&out);
    output_job_human(out.f, &j, j.started_at_ms + 61500);
    char *text = capture_close(&out);
    assert_non_null(strstr(text, "Finished: -\n"));
    assert_non_null(strstr(text, "Duration: 1m1.500s so far\n"));
    assert_non_null(strstr(text, "Result:   -\n"));
    assert_non_null(strstr(text, "Error:    line one\n          line two\n"));
    free(text);
}

static void
test_job_human_neutralises_control_characters_and_binary(void **state)
{
    (void) state;
    struct anvil_job j = job_fixture();
    j.error            = "boom\x1b[2J\r";
    j.result           = (uint8_t *) "\xff\xfe";
    j.result_len       = 2;
    struct capture out;
    capture_open(&out);
    output_job_human(out.f, &j, T0);
    char *text = capture_close(&out);
    assert_null(strchr(text, '\x1b'));
    assert_null(strchr(text, '\r'));
    assert_non_null(strstr(text, "Error:    boom?[2J?\n"));
    assert_non_null(strstr(text, "Result:   <2 bytes, not UTF-8; see --json>"));
    free(text);
}

static void
test_table_pads_columns_to_the_widest_cell(void **state)
{
    (void) state;
    const char          *hdr[] = { "ID", "NAME", "N" };
    const char          *r1[]  = { "j1", "a-much-longer-name", "7" };
    const char          *r2[]  = { "j1000", "", "12345" };
    struct output_table *t     = output_table_new(3, hdr);
    assert_non_null(t);
    output_table_align_right(t, 2);
    output_table_align_right(t, 9); // out of range: ignored
    assert_int_equal(output_table_add(t, r1), 0);
    assert_int_equal(output_table_add(t, r2), 0);
    struct capture out;
    capture_open(&out);
    output_table_print(t, out.f);
    output_table_free(t);
    char *text = capture_close(&out);
    assert_string_equal(text,
        "ID     NAME                    N\n"
        "j1     a-much-longer-name      7\n"
        "j1000  -                   12345\n");
    free(text);
}

static void
test_table_counts_utf8_characters_and_flattens_lines(void **state)
{
    (void) state;
    const char          *hdr[] = { "A", "B" };
    const char          *r1[]  = { "\xc3\xa9t\xc3\xa9", "x" };
    const char          *r2[]  = { "two\nlines", "y" };
    struct output_table *t     = output_table_new(2, hdr);
    assert_non_null(t);
    assert_int_equal(output_table_add(t, r1), 0);
    assert_int_equal(output_table_add(t, r2), 0);
    struct capture out;
    capture_open(&out);
    output_table_print(t, out.f);
    output_table_free(t);
    char *text = capture_close(&out);
    assert_string_equal(text,
        "A          B\n"
        "\xc3\xa9t\xc3\xa9        x\n"
        "two lines  y\n");
    free(text);
}

static void
test_list_human_prints_table_and_next_cursor(void **state)
{
    (void) state;
    struct anvil_job      jobs[2] = { job_fixture(), job_fixture() };
    struct anvil_job_list list    = { jobs, 2, "c17" };
    jobs[1].id                    = "j1000";
    jobs[1].type                  = "Resize";
    jobs[1].state                 = ANVIL_JOB_QUEUED;
    jobs[1].attempt               = 0;
    struct capture out;
    capture_open(&out);
    output_list_human(out.f, &list);
    char *text = capture_close(&out);
    assert_string_equal(text,
        "ID     TYPE    QUEUE    STATE      ATTEMPT  CREATED\n"
        "j42    Sleep   default  SUCCEEDED  1/3      2025-11-28T05:44:27.123Z\n"
        "j1000  Resize  default  QUEUED     0/3      2025-11-28T05:44:27.123Z\n"
        "More jobs: add --cursor c17 to see the next page.\n");
    free(text);

    struct anvil_job_list empty = { NULL, 0, "" };
    capture_open(&out);
    output_list_human(out.f, &empty);
    text = capture_close(&out);
    assert_string_equal(text, "No jobs.\n");
    free(text);
}

static void
test_health_human_prints_fields_and_queue_table(void **state)
{
    (void) state;
    struct anvil_queue_depth d[]
        = { { "default", "Sleep", 3, 1, false, 0, false },
              { "io", "Fetch", 120, 0, false, 4, false } };
    struct anvil_health h
        = { "0.1.0", 3723000, 9, d, 2, NULL, 0, 0, NULL, 0, NULL, 0, NULL, 0 };
    struct capture out;
    capture_open(&out);
    output_health_human(out.f, &h);
    char *text = capture_close(&out);
    assert_string_equal(text,
        "Version: 0.1.0\n"
        "Uptime:  1h2m3s\n"
        "Jobs:    9\n"
        "\n"
        "QUEUE    TYPE   QUEUED  SCHEDULED  RUNNING\n"
        "default  Sleep       3          0        1\n"
        "io       Fetch     120          4        0\n");
    free(text);

    d[1].no_worker = true;
    capture_open(&out);
    output_health_human(out.f, &h);
    text = capture_close(&out);
    assert_string_equal(strstr(text, "QUEUE"),
        "QUEUE    TYPE   QUEUED  SCHEDULED  RUNNING  NO WORKER\n"
        "default  Sleep       3          0        1  no\n"
        "io       Fetch     120          4        0  yes\n");
    free(text);

    // A server with an event stream: its last seq is a field line.
    h.last_event_seq = 1234;
    capture_open(&out);
    output_health_human(out.f, &h);
    text = capture_close(&out);
    assert_non_null(strstr(text, "Jobs:       9\nLast event: 1234\n\n"));
    free(text);

    // Paused queues: a field line, and their rows marked.
    char *paused[]    = { "io", "later" };
    d[1].paused       = true;
    h.paused_queues   = paused;
    h.n_paused_queues = 2;
    capture_open(&out);
    output_health_human(out.f, &h);
    text = capture_close(&out);
    assert_non_null(
        strstr(text, "Last event: 1234\nPaused:     io, later\n\n"));
    assert_non_null(strstr(text, "\nio (paused)  Fetch     120"));
    free(text);

    // Rate limits: a field line with each bucket.
    struct anvil_queue_limit lim[]
        = { { "io", 50, 1, 0.25 }, { "mail", 0.5, 10, 10 } };
    h.queue_limits   = lim;
    h.n_queue_limits = 2;
    capture_open(&out);
    output_health_human(out.f, &h);
    text = capture_close(&out);
    assert_non_null(strstr(text,
        "Rate limits: io 50/s burst 1 (0.2 tokens), mail 0.5/s burst 10 "
        "(10.0 tokens)\n"));
    free(text);
    h.queue_limits   = NULL;
    h.n_queue_limits = 0;

    // The busiest concurrency keys: a table after the queues'.
    struct anvil_key_state keys[]
        = { { "tenant-7", 2, 1500, 2 }, { "b", 1, 0, 10 } };
    h.busiest_keys   = keys;
    h.n_busiest_keys = 2;
    capture_open(&out);
    output_health_human(out.f, &h);
    text = capture_close(&out);
    assert_non_null(strstr(text,
        "        0  yes\n"
        "\n"
        "CONCURRENCY KEY  RUNNING  LIMIT  WAITING\n"
        "tenant-7               2      2     1500\n"
        "b                      1     10        0\n"));
    free(text);

    struct anvil_health idle
        = { "0.1.0", 10, 0, NULL, 0, NULL, 0, 0, NULL, 0, NULL, 0, NULL, 0 };
    capture_open(&out);
    output_health_human(out.f, &idle);
    text = capture_close(&out);
    assert_non_null(strstr(text, "\nNo queued or running jobs.\n"));
    free(text);
}

// ---- Small pieces

static void
test_duration_uses_the_largest_sensible_unit(void **state)
{
    (void) state;
    char buf[32];
    assert_string_equal(output_duration(0, buf, sizeof(buf)), "0ms");
    assert_string_equal(output_duration(950, buf, sizeof(buf)), "950ms");
    assert_string_equal(output_duration(1234, buf, sizeof(buf)), "1.234s");
    assert_string_equal(output_duration(123456, buf, sizeof(buf)), "2m3.456s");
    assert_string_equal(output_duration(18367000, buf, sizeof(buf)), "5h6m7s");
    assert_string_equal(output_duration(-1, buf, sizeof(buf)), "-");
}

static void
test_base64_matches_rfc4648_vectors(void **state)
{
    (void) state;
    static const char *const in[]
        = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const out[]
        = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        char *b = output_base64(in[i], strlen(in[i]));
        assert_non_null(b);
        assert_string_equal(b, out[i]);
        free(b);
    }
}

static void
test_utf8_check_rejects_overlong_surrogate_and_truncated(void **state)
{
    (void) state;
    assert_true(output_utf8_valid("plain", 5));
    assert_true(output_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
    assert_true(output_utf8_valid("a\0b", 3));
    assert_false(output_utf8_valid("\xc0\xaf", 2));         // overlong '/'
    assert_false(output_utf8_valid("\xed\xa0\x80", 3));     // surrogate
    assert_false(output_utf8_valid("\xe2\x82", 2));         // truncated
    assert_false(output_utf8_valid("\xf4\x90\x80\x80", 4)); // > U+10FFFF
    assert_false(output_utf8_valid("\x80", 1));
}

// ---- Workers and tokens

static void
test_workers_output_shows_state_age_and_documented_json(void **state)
{
    (void) state;
    char *types[] = { "Sleep", "echo" }, *queues[] = { "default" };
    struct anvil_worker_status w[] = {
        { "w-a", "box1", 4242, "0.1.0", types, 2, queues, 1, 4, T0 - 60000,
            T0 - 1500, 2, false },
        { "w-b", "", 0, "", NULL, 0, NULL, 0, 1, T0 - 90000, T0 - 80000, 0,
            true },
    };
    struct capture out;
    capture_open(&out);
    output_workers_human(out.f, w, 2, T0);
    char *text = capture_close(&out);
    assert_string_equal(text,
        "NAME  HOST   PID  TYPES       QUEUES   SLOTS  RUNNING  LAST-SEEN      "
        "STATE\n"
        "w-a   box1  4242  Sleep,echo  default      4        2  1.500s ago     "
        "alive\n"
        "w-b   -        -  -           -            1        0  1m20.000s ago  "
        "lost\n");
    free(text);
    capture_open(&out);
    output_workers_human(out.f, NULL, 0, T0);
    text = capture_close(&out);
    assert_string_equal(text, "No workers.\n");
    free(text);

    json_t *obj = output_workers_json(w, 2);
    assert_non_null(obj);
    json_t *a = json_array_get(json_object_get(obj, "workers"), 0);
    assert_int_equal(json_object_size(a), 11);
    assert_string_equal(json_string_value(json_object_get(a, "name")), "w-a");
    assert_int_equal(json_integer_value(json_object_get(a, "pid")), 4242);
    assert_int_equal(json_array_size(json_object_get(a, "types")), 2);
    assert_string_equal(json_string_value(json_object_get(a, "last_seen")),
        "2025-11-28T05:44:25.623Z");
    assert_string_equal(
        json_string_value(json_object_get(a, "state")), "alive");
    json_t *b = json_array_get(json_object_get(obj, "workers"), 1);
    assert_string_equal(json_string_value(json_object_get(b, "state")), "lost");
    json_decref(obj);
    obj = output_workers_json(NULL, 0);
    assert_int_equal(json_array_size(json_object_get(obj, "workers")), 0);
    json_decref(obj);
}

static void
test_token_output_never_needs_a_secret_except_on_create(void **state)
{
    (void) state;
    struct anvil_token t[] = {
        { "t1", "ops", ANVIL_ROLE_ADMIN, T0, 0, 0 },
        { "t2", "", ANVIL_ROLE_WORKER, T0, T0 + 1000, 0 },
        { "t3", "old", ANVIL_ROLE_READER, T0, T0 - 1, 0 },
        { "t4", "gone", ANVIL_ROLE_CLIENT, T0, 0, T0 + 5 },
    };
    assert_string_equal(output_token_state(&t[0], T0), "active");
    assert_string_equal(output_token_state(&t[1], T0), "active");
    assert_string_equal(output_token_state(&t[1], T0 + 1000), "expired");
    assert_string_equal(output_token_state(&t[2], T0), "expired");
    assert_string_equal(output_token_state(&t[3], T0), "revoked");

    struct capture out;
    capture_open(&out);
    output_tokens_human(out.f, t, 4, T0);
    char *text = capture_close(&out);
    assert_string_equal(text,
        "ID  NAME  ROLE    CREATED                   EXPIRES                   "
        "STATE\n"
        "t1  ops   admin   2025-11-28T05:44:27.123Z  never                     "
        "active\n"
        "t2  -     worker  2025-11-28T05:44:27.123Z  2025-11-28T05:44:28.123Z  "
        "active\n"
        "t3  old   reader  2025-11-28T05:44:27.123Z  2025-11-28T05:44:27.122Z  "
        "expired\n"
        "t4  gone  client  2025-11-28T05:44:27.123Z  never                     "
        "revoked\n");
    free(text);

    json_t *obj = output_tokens_json(t, 4, T0);
    json_t *j   = json_array_get(json_object_get(obj, "tokens"), 3);
    assert_int_equal(json_object_size(j), 7);
    assert_null(json_object_get(j, "secret"));
    assert_string_equal(
        json_string_value(json_object_get(j, "role")), "client");
    assert_true(json_is_null(json_object_get(j, "expires_at")));
    assert_string_equal(
        json_string_value(json_object_get(j, "state")), "revoked");
    json_decref(obj);

    obj = output_token_created_json(&t[1], "sekrit");
    assert_int_equal(json_object_size(obj), 5);
    assert_string_equal(json_string_value(json_object_get(obj, "id")), "t2");
    assert_string_equal(
        json_string_value(json_object_get(obj, "secret")), "sekrit");
    assert_string_equal(
        json_string_value(json_object_get(obj, "role")), "worker");
    assert_string_equal(json_string_value(json_object_get(obj, "expires_at")),
        "2025-11-28T05:44:28.123Z");
    json_decref(obj);
}

static void
test_role_names_parse_both_ways_and_reject_unknown(void **state)
{
    (void) state;
    enum anvil_role role = ANVIL_ROLE_ADMIN;
    for (int r = ANVIL_ROLE_ADMIN; r <= ANVIL_ROLE_READER; r++) {
        assert_int_equal(anvil_role_parse(anvil_role_name(r), &role), ANVIL_OK);
        assert_int_equal(role, r);
    }
    assert_int_equal(anvil_role_parse("Client", &role), ANVIL_OK);
    assert_int_equal(role, ANVIL_ROLE_CLIENT);
    assert_int_equal(anvil_role_parse("root", &role), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(anvil_role_parse("", &role), ANVIL_INVALID_ARGUMENT);
    assert_int_equal(anvil_role_parse(NULL, &role), ANVIL_INVALID_ARGUMENT);
    assert_string_equal(anvil_role_name(0), "unspecified");
    assert_string_equal(anvil_role_name(99), "unspecified");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_submit_with_every_flag),
        cmocka_unit_test(
            test_parse_submit_timeout_is_per_attempt_and_needs_no_wait),
        cmocka_unit_test(
            test_parse_rejects_bad_submit_scheduling_and_retry_flags),
        cmocka_unit_test(test_parse_accepts_token_and_tls_flags_anywhere),
        cmocka_unit_test(test_parse_accepts_workers_and_token_verbs),
        cmocka_unit_test(test_parse_rejects_bad_workers_and_token_arguments),
        cmocka_unit_test(
            test_workers_output_shows_state_age_and_documented_json),
        cmocka_unit_test(
            test_token_output_never_needs_a_secret_except_on_create),
        cmocka_unit_test(test_role_names_parse_both_ways_and_reject_unknown),
        cmocka_unit_test(
            test_parse_accepts_global_flags_after_the_verb_and_equals_form),
        cmocka_unit_test(test_parse_rejects_submit_without_type),
        cmocka_unit_test(
            test_parse_rejects_invalid_json_data_with_jansson_position),
        cmocka_unit_test(test_parse_accepts_any_json_value_as_data),
        cmocka_unit_test(test_parse_rejects_bad_priority),
        cmocka_unit_test(
            test_parse_rejects_timeout_without_wait_or_out_of_range),
        cmocka_unit_test(test_parse_accepts_id_verbs),
        cmocka_unit_test(test_parse_rejects_missing_or_extra_ids),
        cmocka_unit_test(test_parse_accepts_list_filters),
        cmocka_unit_test(test_parse_rejects_bad_list_filters),
        cmocka_unit_test(test_parse_rejects_unknown_verbs_and_flags),
        cmocka_unit_test(test_parse_recognises_every_help_form),
        cmocka_unit_test(
            test_server_url_comes_from_flag_then_environment_then_default),
        cmocka_unit_test(
            test_main_reports_usage_errors_on_one_line_with_exit_2),
        cmocka_unit_test(test_main_prints_help_and_version_on_stdout),
        cmocka_unit_test(test_wait_exit_status_follows_the_job),
        cmocka_unit_test(test_job_json_has_exactly_the_documented_keys),
        cmocka_unit_test(test_job_json_names_every_state_in_upper_case),
        cmocka_unit_test(
            test_job_json_gives_null_for_unset_times_result_and_error),
        cmocka_unit_test(
            test_job_json_gives_binary_result_in_base64_without_loss),
        cmocka_unit_test(test_job_json_keeps_nul_bytes_of_a_utf8_result),
        cmocka_unit_test(
            test_list_json_has_jobs_and_a_cursor_only_when_there_is_more),
        cmocka_unit_test(test_health_and_submit_json_have_the_documented_keys),
        cmocka_unit_test(test_json_print_rejects_a_missing_object),
        cmocka_unit_test(test_job_human_prints_aligned_fields),
        cmocka_unit_test(test_job_human_shows_running_time_and_unset_fields),
        cmocka_unit_test(
            test_job_human_neutralises_control_characters_and_binary),
        cmocka_unit_test(test_table_pads_columns_to_the_widest_cell),
        cmocka_unit_test(test_table_counts_utf8_characters_and_flattens_lines),
        cmocka_unit_test(test_list_human_prints_table_and_next_cursor),
        cmocka_unit_test(test_health_human_prints_fields_and_queue_table),
        cmocka_unit_test(test_duration_uses_the_largest_sensible_unit),
        cmocka_unit_test(test_base64_matches_rfc4648_vectors),
        cmocka_unit_test(
            test_utf8_check_rejects_overlong_surrogate_and_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
