// test_worker_config.c - the anvil-worker config file (worker/config.c):
// a full good config, and each kind of bad one refused with a message that
// names the key.

// cmocka.h needs these first.
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include "../../worker/config.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char good[]
    = "{\"server\": \"tcp://127.0.0.1:7700\", \"slots\": 4, \"prefetch\": -1,"
      " \"queues\": [\"default\", \"media\"], \"token\": \"secret\","
      " \"name\": \"w-1\","
      " \"tls\": {\"ca\": \"ca.pem\", \"cert\": \"c.pem\", \"key\": \"k.pem\"},"
      " \"grace_ms\": 30000, \"log_level\": \"debug\", \"log_format\": "
      "\"json\","
      " \"handlers\": {\"Sleep\": {\"builtin\": \"sleep\"},"
      "  \"echo\": {\"builtin\": \"echo\"},"
      "  \"thumbnail\": {\"exec\": [\"/bin/sh\", \"--fast\"], \"timeout_ms\":"
      " 60000, \"slots\": 2, \"env\": {\"THUMB_QUALITY\": \"80\"}}}}";

static const struct handler_config *
find(const struct worker_config *c, const char *type)
{
    for (size_t i = 0; i < c->n_handlers; i++) {
        if (strcmp(c->handlers[i].type, type) == 0)
            return &c->handlers[i];
    }
    return NULL;
}

static void
test_a_full_config_is_parsed(void **state)
{
    (void) state;
    struct worker_config c;
    struct anvil_error   err = { 0 };
    assert_int_equal(config_parse(good, strlen(good), &c, &err), ANVIL_OK);
    assert_string_equal(c.server, "tcp://127.0.0.1:7700");
    assert_string_equal(c.name, "w-1");
    assert_int_equal(c.slots, 4);
    assert_true(c.prefetch_set);
    assert_int_equal(c.prefetch, -1);
    assert_int_equal(c.n_queues, 2);
    assert_string_equal(c.queues[1], "media");
    assert_string_equal(c.token, "secret");
    assert_string_equal(c.tls_ca, "ca.pem");
    assert_string_equal(c.tls_cert, "c.pem");
    assert_string_equal(c.tls_key, "k.pem");
    assert_int_equal(c.grace_ms, 30000);
    assert_int_equal(c.log_level, AV_LOG_DEBUG);
    assert_int_equal(c.log_json, 1);
    assert_int_equal(c.n_handlers, 3);
    const struct handler_config *t = find(&c, "thumbnail");
    assert_non_null(t);
    assert_int_equal(t->kind, HANDLER_EXEC);
    assert_int_equal(t->argc, 2);
    assert_string_equal(t->argv[0], "/bin/sh");
    assert_string_equal(t->argv[1], "--fast");
    assert_null(t->argv[2]);
    assert_int_equal(t->timeout_ms, 60000);
    assert_int_equal(t->slots, 2);
    assert_int_equal(t->n_env, 1);
    assert_string_equal(t->env[0], "THUMB_QUALITY=80");
    assert_int_equal(find(&c, "Sleep")->kind, HANDLER_BUILTIN);
    assert_string_equal(find(&c, "echo")->builtin, "echo");
    config_fini(&c);
}

static void
test_a_minimal_config_leaves_the_rest_unset(void **state)
{
    (void) state;
    const char          *json = "{\"handlers\": {\"x\": {\"exec\": [\"sh\"]}}}";
    struct worker_config c;
    assert_int_equal(config_parse(json, strlen(json), &c, NULL), ANVIL_OK);
    assert_null(c.server);
    assert_int_equal(c.slots, 0);
    assert_false(c.prefetch_set);
    assert_int_equal(c.n_queues, 0);
    assert_int_equal(c.grace_ms, -1);
    assert_int_equal(c.log_level, -1);
    assert_int_equal(c.log_json, -1);
    assert_string_equal(c.handlers[0].argv[0], "sh"); // found on $PATH
    config_fini(&c);
}

struct bad_case {
    const char *json;
    const char *msg;
};

static const struct bad_case bad_cases[] = {
    { "{\"handlers\": {\"thumbnail\": {\"exec\": "
      "[\"/usr/local/bin/anvil-no-thumb\", \"--fast\"]}}}",
        "handlers.thumbnail.exec: /usr/local/bin/anvil-no-thumb is not an "
        "executable file" },
    { "{\"handlers\": {\"t\": {\"exec\": [\"anvil-no-such-prog\"]}}}",
        "handlers.t.exec: anvil-no-such-prog is not an executable file" },
    { "{\"handlers\": {\"t\": {\"exec\": [\"/etc/passwd\"]}}}",
        "handlers.t.exec: /etc/passwd is not an executable file" },
    { "{\"handlers\": {\"t\": {\"exec\": [\"/tmp\"]}}}",
        "handlers.t.exec: /tmp is not an executable file" },
    { "{\"handlers\": {\"t\": {\"exec\": []}}}",
        "handlers.t.exec: must be a non-empty array of strings" },
    { "{\"handlers\": {\"t\": {\"exec\": \"/bin/sh\"}}}",
        "handlers.t.exec: must be a non-empty array of strings" },
    { "{\"handlers\": {\"t\": {\"exec\": [\"/bin/sh\", 3]}}}",
        "handlers.t.exec[1]: must be a non-empty string" },
    { "{\"handlers\": {\"t\": {\"builtin\": \"resize\"}}}",
        "handlers.t.builtin: unknown builtin \"resize\" (known: sleep, "
        "echo)" },
    { "{\"handlers\": {}}",
        "handlers: must be an object with at least one job type" },
    { "{\"slots\": 2}", "handlers: missing: name at least one job type" },
    { "{\"handler\": {}}", "handler: unknown key" },
    { "{\"handlers\": {\"t\": {\"builtin\": \"echo\", \"timeout\": 1}}}",
        "handlers.t.timeout: unknown key" },
    { "{\"tls\": {\"ca\": \"a\", \"crt\": \"b\"}, \"handlers\": {}}",
        "tls.crt: unknown key" },
    { "{\"slots\": \"4\", \"handlers\": {\"e\": {\"builtin\": \"echo\"}}}",
        "slots: must be a whole number from 1 to 1024" },
    { "{\"slots\": 0, \"handlers\": {\"e\": {\"builtin\": \"echo\"}}}",
        "slots: must be a whole number from 1 to 1024" },
    { "{\"prefetch\": 1001, \"handlers\": {\"e\": {\"builtin\": \"echo\"}}}",
        "prefetch: must be a whole number from -1 to 1000" },
    { "{\"prefetch\": -2, \"handlers\": {\"e\": {\"builtin\": \"echo\"}}}",
        "prefetch: must be a whole number from -1 to 1000" },
    { "{\"grace_ms\": -1, \"handlers\": {\"e\": {\"builtin\": \"echo\"}}}",
        "grace_ms: must be a whole number from 0 to 604800000" },
    { "{\"queues\": [\"a b\"], \"handlers\": {\"e\": {\"builtin\": "
      "\"echo\"}}}",
        "queues[0]: \"a b\" must be 1 to 128 of [A-Za-z0-9_.-]" },
    { "{\"queues\": \"default\", \"handlers\": {\"e\": {\"builtin\": "
      "\"echo\"}}}",
        "queues: must be a non-empty array of strings" },
    { "{\"server\": 7700, \"handlers\": {\"e\": {\"builtin\": \"echo\"}}}",
        "server: must be a non-empty string" },
    { "{\"log_level\": \"loud\", \"handlers\": {\"e\": {\"builtin\": "
      "\"echo\"}}}",
        "log_level: must be \"error\", \"warn\", \"info\" or \"debug\"" },
    { "{\"log_format\": \"xml\", \"handlers\": {\"e\": {\"builtin\": "
      "\"echo\"}}}",
        "log_format: must be \"text\" or \"json\"" },
    { "{\"handlers\": {\"bad type\": {\"builtin\": \"echo\"}}}",
        "handlers.bad type: a job type must be 1 to 128 of [A-Za-z0-9_.-]" },
    { "{\"handlers\": {\"t\": {}}}",
        "handlers.t: needs \"builtin\" or \"exec\"" },
    { "{\"handlers\": {\"t\": {\"builtin\": \"echo\", \"exec\": "
      "[\"/bin/sh\"]}}}",
        "handlers.t: has both \"builtin\" and \"exec\": pick one" },
    { "{\"handlers\": {\"t\": {\"builtin\": \"echo\", \"slots\": 2}}}",
        "handlers.t: \"env\", \"timeout_ms\" and \"slots\" apply to exec "
        "handlers" },
    { "{\"handlers\": {\"t\": {\"exec\": [\"/bin/sh\"], \"env\": {\"A\": "
      "1}}}}",
        "handlers.t.env.A: must be a string" },
    { "{\"handlers\": {\"t\": {\"exec\": [\"/bin/sh\"], \"timeout_ms\": "
      "1.5}}}",
        "handlers.t.timeout_ms: must be a whole number from 0 to "
        "604800000" },
    { "{\"tls\": {\"cert\": \"c.pem\"}, \"handlers\": {\"e\": {\"builtin\": "
      "\"echo\"}}}",
        "tls: \"cert\" and \"key\" go together" },
    { "[1]", "the config must be a JSON object" },
    { "{\"slots\": 1, \"slots\": 2}", NULL }, // duplicate: not JSON here
    { "{", NULL },
};

static void
test_each_bad_config_is_refused_naming_its_key(void **state)
{
    (void) state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *b = &bad_cases[i];
        struct worker_config   c;
        struct anvil_error     err = { 0 };
        int rc = config_parse(b->json, strlen(b->json), &c, &err);
        if (rc == ANVIL_OK)
            fail_msg("accepted: %s", b->json);
        assert_int_equal(rc, ANVIL_INVALID_ARGUMENT);
        assert_int_equal(c.n_handlers, 0); // left empty
        if (b->msg == NULL) {
            assert_non_null(strstr(err.msg, "not valid JSON"));
            continue;
        }
        if (strcmp(err.msg, b->msg) != 0)
            fail_msg("for %s\n got: %s\nwant: %s", b->json, err.msg, b->msg);
    }
}

static void
test_load_names_the_file_it_cannot_read(void **state)
{
    (void) state;
    struct worker_config c;
    struct anvil_error   err = { 0 };
    assert_int_equal(config_load("/nonexistent/anvil.json", &c, &err),
        ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "/nonexistent/anvil.json"));
}

static void
test_load_prefixes_parse_errors_with_the_file(void **state)
{
    (void) state;
    char path[] = "/tmp/anvil-config-XXXXXX";
    int  fd     = mkstemp(path);
    assert_true(fd >= 0);
    const char *json = "{\"handlers\": {\"t\": {\"builtin\": \"nope\"}}}";
    assert_int_equal(write(fd, json, strlen(json)), (ssize_t) strlen(json));
    close(fd);
    struct worker_config c;
    struct anvil_error   err = { 0 };
    assert_int_equal(config_load(path, &c, &err), ANVIL_INVALID_ARGUMENT);
    unlink(path);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "handlers.t.builtin: unknown builtin"));
}

static void
test_builtins_are_added_without_a_file(void **state)
{
    (void) state;
    struct worker_config c;
    config_init(&c);
    assert_int_equal(config_add_builtin(&c, "Sleep", "sleep"), ANVIL_OK);
    assert_int_equal(config_add_builtin(&c, "echo", "echo"), ANVIL_OK);
    assert_int_equal(c.n_handlers, 2);
    assert_string_equal(c.handlers[1].type, "echo");
    assert_int_equal(c.handlers[0].kind, HANDLER_BUILTIN);
    config_fini(&c);
    assert_int_equal(c.n_handlers, 0);
    config_fini(NULL);
}

static void
test_executables_are_found_by_path_or_on_the_path(void **state)
{
    (void) state;
    assert_true(config_is_executable("/bin/sh"));
    assert_true(config_is_executable("sh"));
    assert_false(config_is_executable("/etc/passwd"));
    assert_false(config_is_executable(""));
    assert_false(config_is_executable("anvil-no-such-program"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_full_config_is_parsed),
        cmocka_unit_test(test_a_minimal_config_leaves_the_rest_unset),
        cmocka_unit_test(test_each_bad_config_is_refused_naming_its_key),
        cmocka_unit_test(test_load_names_the_file_it_cannot_read),
        cmocka_unit_test(test_load_prefixes_parse_errors_with_the_file),
        cmocka_unit_test(test_builtins_are_added_without_a_file),
        cmocka_unit_test(test_executables_are_found_by_path_or_on_the_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
