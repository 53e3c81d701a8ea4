// test_listener.c - a real anvild on ipc:// against clients that connect,
// send the SP greeting and leave before the server's own greeting: with
// nng 1.5.2 one such connection caught at the wrong moment stops the
// listener for good (listen_guard.h). anvild's guard listens again: a new
// client's Health is answered within seconds, the log says
// listener.replaced, and the clients connected before were never cut off.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness.h"
#include "util/clock.h"

// Health from a new client within ms.
static bool
new_client_answered(const struct harness *h, int ms)
{
    anvil_client      *c   = NULL;
    struct anvil_error err = { 0 };
    if (anvil_client_open(&c, h->url, &err) != ANVIL_OK)
        return false;
    anvil_client_set_timeout(c, ms, NULL);
    struct anvil_health *hl = NULL;
    bool                 ok = anvil_health_get(c, &hl, &err) == ANVIL_OK;
    anvil_health_free(hl);
    anvil_client_close(c);
    return ok;
}

static void
test_peers_leaving_mid_greeting_do_not_stop_the_listener(void **state)
{
    struct harness *h = *state;
    // Its listener is stopped on purpose (harness.h).
    assert_int_equal(harness_expect_nng_listener_leak(h), 0);
    assert_true(harness_spawn_anvild(h, (char *) NULL) > 0);
    char path[160];
    snprintf(path, sizeof(path), "%s/s", h->dir);
    // A client connected before, kept throughout.
    anvil_client      *kept = NULL;
    struct anvil_error err  = { 0 };
    assert_int_equal(anvil_client_open(&kept, h->url, &err), ANVIL_OK);
    struct anvil_health *hl = NULL;
    assert_int_equal(anvil_health_get(kept, &hl, &err), ANVIL_OK);
    anvil_health_free(hl);

    // Rounds of a hundred until a new client goes unanswered (nng's
    // listener stopped) or twenty rounds went by.
    int round = 0;
    for (; round < 20; round++) {
        assert_int_equal(harness_greet_and_leave(path, 100), 0);
        if (!new_client_answered(h, 300))
            break;
    }
    int64_t t0 = av_mono_ms();
    bool    ok = false;
    while (!ok && av_mono_ms() - t0 < 10000)
        ok = new_client_answered(h, 1000);
    print_message("rounds %d; a new client answered %lld ms later\n", round,
        (long long) (av_mono_ms() - t0));
    assert_true(ok);
    if (round < 20) { // it stopped: the guard must have said so
        char *text = harness_read_file(h->procs[0].log, NULL);
        assert_non_null(text);
        assert_non_null(strstr(text, "listener.replaced"));
        free(text);
    }
    assert_int_equal(anvil_health_get(kept, &hl, &err), ANVIL_OK);
    anvil_health_free(hl);
    anvil_client_close(kept);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_peers_leaving_mid_greeting_do_not_stop_the_listener,
            harness_open_setup, harness_open_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nng_fini();
    return rc;
}
