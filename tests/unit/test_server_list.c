// test_server_list.c - the server list of a client (sdk/server_list.c):
// parsing "url1,url2,..." and choosing the server to try next.
#include "server_list.h"

#include <anvil/anvil.h>
#include <stdio.h>
#include <string.h>

// cmocka.h needs these three before it: keep it in a block of its own.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

static void
test_server_list_parses_one_url(void **state)
{
    (void) state;
    struct server_list l;
    struct anvil_error err = { 0, "" };
    assert_int_equal(server_list_parse("tcp://127.0.0.1:7700", &l, &err), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.urls[0], "tcp://127.0.0.1:7700");
    server_list_fini(&l);
    assert_int_equal(l.n, 0);
}

static void
test_server_list_splits_at_commas_and_drops_spaces(void **state)
{
    (void) state;
    struct server_list l;
    struct anvil_error err = { 0, "" };
    assert_int_equal(
        server_list_parse(
            "tcp://a:7700, tcp://b:7700 ,\ttcp://c:7700 ", &l, &err),
        0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.urls[0], "tcp://a:7700");
    assert_string_equal(l.urls[1], "tcp://b:7700");
    assert_string_equal(l.urls[2], "tcp://c:7700");
    server_list_fini(&l);
}

static void
test_server_list_refuses_an_empty_element(void **state)
{
    (void) state;
    static const char  *bad[] = { "tcp://a:1,,tcp://b:2", "tcp://a:1,",
         ",tcp://a:1", "tcp://a:1, ,tcp://b:2" };
    static const size_t at[]  = { 2, 2, 1, 2 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct server_list l;
        struct anvil_error err = { 0, "" };
        char               want[64];
        assert_int_equal(
            server_list_parse(bad[i], &l, &err), ANVIL_INVALID_ARGUMENT);
        assert_int_equal(err.code, ANVIL_INVALID_ARGUMENT);
        snprintf(want, sizeof(want), "element %zu is empty", at[i]);
        assert_non_null(strstr(err.msg, want));
        assert_non_null(strstr(err.msg, bad[i]));
        assert_int_equal(l.n, 0);
    }
}

static void
test_server_list_refuses_an_empty_list(void **state)
{
    (void) state;
    struct server_list l;
    struct anvil_error err = { 0, "" };
    assert_int_equal(server_list_parse("", &l, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "the server URL is empty"));
    assert_int_equal(server_list_parse(" ", &l, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "element 1 is empty"));
}

static void
test_server_list_takes_16_servers_and_refuses_17(void **state)
{
    (void) state;
    char spec[512] = "";
    for (int i = 0; i < SERVER_LIST_MAX; i++)
        snprintf(spec + strlen(spec), sizeof(spec) - strlen(spec),
            "%stcp://h%d:1", i > 0 ? "," : "", i);
    struct server_list l;
    struct anvil_error err = { 0, "" };
    assert_int_equal(server_list_parse(spec, &l, &err), 0);
    assert_int_equal(l.n, SERVER_LIST_MAX);
    assert_string_equal(l.urls[15], "tcp://h15:1");
    server_list_fini(&l);
    strcat(spec, ",tcp://h16:1");
    assert_int_equal(server_list_parse(spec, &l, &err), ANVIL_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "more than 16 servers"));
    assert_int_equal(l.n, 0);
}

static struct server_list
three(void)
{
    struct server_list l;
    assert_int_equal(
        server_list_parse("ipc:///a,ipc:///b,ipc:///c", &l, NULL), 0);
    return l;
}

static void
test_server_list_next_moves_to_the_leader_in_the_list(void **state)
{
    (void) state;
    struct server_list l = three();
    assert_int_equal(server_list_next(&l, 0, "ipc:///c"), 2);
    assert_int_equal(server_list_next(&l, 2, "ipc:///a"), 0);
    assert_int_equal(server_list_find(&l, "ipc:///b"), 1);
    server_list_fini(&l);
}

static void
test_server_list_next_takes_the_next_for_an_unknown_or_no_leader(void **state)
{
    (void) state;
    struct server_list l = three();
    // Not in the list (spelt otherwise, or another host).
    assert_int_equal(server_list_next(&l, 0, "ipc:///d"), 1);
    assert_int_equal(server_list_next(&l, 0, "IPC:///c"), 1);
    // None known yet (an election), or the server itself.
    assert_int_equal(server_list_next(&l, 1, ""), 2);
    assert_int_equal(server_list_next(&l, 2, NULL), 0);
    assert_int_equal(server_list_next(&l, 1, "ipc:///b"), 2);
    assert_int_equal(server_list_find(&l, NULL), -1);
    server_list_fini(&l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_list_parses_one_url),
        cmocka_unit_test(test_server_list_splits_at_commas_and_drops_spaces),
        cmocka_unit_test(test_server_list_refuses_an_empty_element),
        cmocka_unit_test(test_server_list_refuses_an_empty_list),
        cmocka_unit_test(test_server_list_takes_16_servers_and_refuses_17),
        cmocka_unit_test(test_server_list_next_moves_to_the_leader_in_the_list),
        cmocka_unit_test(
            test_server_list_next_takes_the_next_for_an_unknown_or_no_leader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
