// main.c - anvild: parse flags, block signals, start the server, wait for
// SIGINT/SIGTERM, stop cleanly.
#include "server.h"
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <nng/nng.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
usage(FILE *f)
{
    fprintf(f,
        "usage: anvild [--listen URL] [--db PATH] [--log-level LEVEL]\n"
        "              [--log-format text|json] [--max-payload BYTES]\n"
        "              [--durability full|normal] [--lease-ms MS]\n"
        "              [--retention DURATION] [--worker-timeout DURATION]\n"
        "\n"
        "  --listen URL        nng URL to serve (default tcp://127.0.0.1:7700;\n"
        "                      also ipc:///path, ws://host:port)\n"
        "  --db PATH           SQLite database (default ./anvil.db)\n"
        "  --log-level LEVEL   error, warn, info (default) or debug\n"
        "  --log-format FMT    text (default) or json lines\n"
        "  --max-payload BYTES payload and result limit (default 1048576,\n"
        "                      at most 4194304)\n"
        "  --durability MODE   full (default: fsync every commit) or normal\n"
        "  --lease-ms MS       default job lease (default 30000)\n"
        "  --retention DUR     keep finished jobs and workflows this long,\n"
        "                      e.g. 7d (default), 12h, 30m; 0 = forever\n"
        "  --worker-timeout DUR a worker unheard of this long is shown lost\n"
        "                      (default 15s)\n");
}

static int
parse_size(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno       = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int
bad(const char *flag, const char *value, const char *want)
{
    fprintf(stderr, "anvild: %s '%s' is invalid: %s\n", flag, value, want);
    return 2;
}

static int
parse_args(int argc, char **argv, struct server_config *cfg)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "anvild: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        long long   n;
        int         level;
        if (strcmp(a, "--listen") == 0) {
            cfg->listen_url = v;
        } else if (strcmp(a, "--db") == 0) {
            cfg->db_path = v;
        } else if (strcmp(a, "--log-level") == 0) {
            if (av_log_parse_level(v, &level) != 0)
                return bad(a, v, "use error, warn, info or debug");
            av_log_set_level(level);
        } else if (strcmp(a, "--log-format") == 0) {
            if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0)
                return bad(a, v, "use text or json");
            av_log_set_json(strcmp(v, "json") == 0);
        } else if (strcmp(a, "--max-payload") == 0) {
            if (parse_size(v, 1, SERVER_MAX_PAYLOAD, &n) != 0)
                return bad(a, v, "a byte count from 1 to 4194304");
            cfg->max_payload = (size_t) n;
        } else if (strcmp(a, "--durability") == 0) {
            if (strcmp(v, "full") != 0 && strcmp(v, "normal") != 0)
                return bad(a, v, "use full or normal");
            cfg->synchronous = strcmp(v, "full") == 0 ? 2 : 1;
        } else if (strcmp(a, "--lease-ms") == 0) {
            if (parse_size(v, 100, 24LL * 3600 * 1000, &n) != 0)
                return bad(a, v, "milliseconds from 100 to 86400000");
            cfg->lease_ms = n;
        } else if (strcmp(a, "--retention") == 0) {
            if (av_parse_duration(v, &cfg->retention_ms) != 0)
                return bad(a, v, "a duration such as 7d, 12h, 30m or 0");
        } else if (strcmp(a, "--worker-timeout") == 0) {
            if (av_parse_duration(v, &cfg->worker_lost_ms) != 0 ||
                cfg->worker_lost_ms < 100)
                return bad(a, v, "a duration of at least 100ms, e.g. 15s");
        } else {
            fprintf(stderr, "anvild: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct server_config cfg;
    server_config_init(&cfg);
    av_log_to_stderr();
    av_log_set_component("anvild");
    int rc = parse_args(argc, argv, &cfg);
    if (rc != 0)
        return rc;

    // Block the stop signals in every thread; main waits for them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct server     *srv;
    struct anvil_error err = { 0 };
    if (server_start(&cfg, &srv, &err) != ANVIL_OK) {
        fprintf(stderr, "anvild: %s\n", err.msg);
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    AV_INFO("server.signal", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server_stop(srv);
    nng_fini();
    return 0;
}
