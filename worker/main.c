// main.c - anvil-worker: runs the built-in job handlers for an anvild.
//
// Parses flags, registers the handlers, starts the worker and waits for
// SIGINT or SIGTERM; then stops polling, lets running jobs finish within the
// grace period and exits 0.
#include "handlers.h"

#include "util/log.h"

#include <anvil/worker.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_GRACE_MS 30000

struct options {
    const char  *server; // NULL: $ANVIL_SERVER or the default
    const char  *name;
    const char **queues;
    size_t       n_queues;
    int          slots;
    int          log_level;
    int          grace_ms;
    bool         help;
};

static const char usage_line[]
    = "usage: anvil-worker [--server URL] [--slots N] [--queue Q]...\n"
      "                    [--name NAME] [--log-level LEVEL] [--grace-ms N] "
      "[--help]\n";

static void
usage(FILE *out, bool full)
{
    fputs(usage_line, out);
    if (!full) {
        fputs("Run anvil-worker --help for details.\n", out);
        return;
    }
    fprintf(out,
        "\n"
        "Runs the built-in job types Sleep and echo for an anvild.\n"
        "\n"
        "  --server URL   server to poll (default $ANVIL_SERVER, else\n"
        "                 %s)\n"
        "  --slots N      jobs run at once, 1 to 1024 (default 1)\n"
        "  --queue Q      queue to serve; repeat for several (default "
        "\"default\")\n"
        "  --name NAME    worker name (default <hostname>-<pid>)\n"
        "  --log-level L  error, warn, info or debug (default info)\n"
        "  --grace-ms N   on SIGINT/SIGTERM, let running jobs finish for up "
        "to N ms,\n"
        "                 then cancel them (default %d)\n"
        "  --help         show this help\n",
        ANVIL_DEFAULT_URL, DEFAULT_GRACE_MS);
}

// Parses a whole decimal int in [min, max]; -1 if s is not one.
static int
parse_int(const char *s, int min, int max, int *out)
{
    char *end = NULL;
    errno     = 0;
    long v    = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int) v;
    return 0;
}

static const struct option long_opts[] = {
    { "server", required_argument, NULL, 's' },
    { "slots", required_argument, NULL, 'n' },
    { "queue", required_argument, NULL, 'q' },
    { "name", required_argument, NULL, 'N' },
    { "log-level", required_argument, NULL, 'l' },
    { "grace-ms", required_argument, NULL, 'g' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

// Applies one flag; -1 with a message on stderr if its value is bad.
static int
apply_flag(struct options *o, int c, const char *v)
{
    switch (c) {
    case 's':
        o->server = v;
        return 0;
    case 'q':
        o->queues[o->n_queues++] = v;
        return 0;
    case 'N':
        o->name = v;
        return 0;
    case 'h':
        o->help = true;
        return 0;
    case 'n':
        if (parse_int(v, 1, 1024, &o->slots) == 0)
            return 0;
        fprintf(stderr, "anvil-worker: --slots must be 1 to 1024\n");
        return -1;
    case 'g':
        if (parse_int(v, 0, INT_MAX, &o->grace_ms) == 0)
            return 0;
        fprintf(stderr, "anvil-worker: --grace-ms must be a number of ms\n");
        return -1;
    case 'l':
        if (av_log_parse_level(v, &o->log_level) == 0)
            return 0;
        fprintf(stderr,
            "anvil-worker: --log-level must be error, warn, info or debug\n");
        return -1;
    default:
        return -1; // getopt_long has said what was wrong
    }
}

static int
parse_args(int argc, char **argv, struct options *o)
{
    *o = (struct options) {
        .slots = 1, .log_level = AV_LOG_INFO, .grace_ms = DEFAULT_GRACE_MS
    };
    o->queues = calloc((size_t) argc, sizeof(char *));
    if (o->queues == NULL)
        return -1;
    for (;;) {
        int c = getopt_long(argc, argv, "h", long_opts, NULL);
        if (c == -1)
            break;
        if (apply_flag(o, c, optarg) != 0)
            return -1;
    }
    if (optind < argc) {
        fprintf(
            stderr, "anvil-worker: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    return 0;
}

// While the worker drains on the first signal, a second one ends the
// process at once; the jobs it held run again elsewhere after their leases.
static void *
second_signal(void *arg)
{
    int sig = 0;
    sigwait(arg, &sig);
    AV_WARN("worker.exit", "msg=\"second signal: exiting without waiting "
                           "for running jobs\"");
    _exit(130);
    return NULL;
}

static int
run(const struct options *o, sigset_t *sigs)
{
    struct anvil_worker_opts wo = { 0 };
    wo.url                      = o->server;
    wo.name                     = o->name;
    wo.queues                   = o->queues;
    wo.n_queues                 = o->n_queues;
    wo.slots                    = o->slots;

    struct anvil_error err = { 0 };
    anvil_worker      *w   = NULL;
    int                rc  = anvil_worker_new(&w, &wo, &err);
    if (rc == ANVIL_OK)
        rc = anvil_worker_handle(w, "Sleep", handler_sleep, NULL, &err);
    if (rc == ANVIL_OK)
        rc = anvil_worker_handle(w, "echo", handler_echo, NULL, &err);
    if (rc == ANVIL_OK)
        rc = anvil_worker_start(w, &err);
    if (rc != ANVIL_OK) {
        fprintf(stderr, "anvil-worker: %s\n", err.msg);
        anvil_worker_free(w);
        return rc == ANVIL_INVALID_ARGUMENT ? 2 : 1;
    }
    int sig = 0;
    sigwait(sigs, &sig);
    AV_INFO("worker.signal", "signal=%s grace_ms=%d",
        sig == SIGINT ? "SIGINT" : "SIGTERM", o->grace_ms);
    pthread_t watcher;
    if (pthread_create(&watcher, NULL, second_signal, sigs) == 0)
        pthread_detach(watcher);
    anvil_worker_stop(w, o->grace_ms);
    anvil_worker_free(w);
    return 0;
}

int
main(int argc, char **argv)
{
    struct options o;
    if (parse_args(argc, argv, &o) != 0) {
        usage(stderr, false);
        free(o.queues);
        return 2;
    }
    if (o.help) {
        usage(stdout, true);
        free(o.queues);
        return 0;
    }
    av_log_set_component("worker");
    av_log_set_level(o.log_level);
    av_log_to_stderr();
    // Blocked before any thread starts, so every thread inherits the mask
    // and only sigwait() below sees these signals.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN); // a closed stdout must not kill running jobs
    int rc = run(&o, &sigs);
    free(o.queues);
    return rc;
}
