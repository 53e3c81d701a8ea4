// main.c - anvil-worker: runs job handlers for an anvild.
//
// Without --config it serves the built-in Sleep and echo; with one, the
// handlers of the file (builtins and exec programs, see docs/workers.md).
// Flags override the file. It waits for SIGINT/SIGTERM (stop polling, let
// running jobs finish within the grace period, exit 0; a second signal
// exits at once, and so does a stop still running 10 s past the grace
// period, with status 1) and SIGHUP (reload the file: a bad one is refused and
// the running worker keeps going; a good one starts a new worker at once while
// the old one stops polling and finishes its running jobs on a thread of
// its own, within its grace period).
#include "config.h"
#include "handlers.h"
#include "launch_exec.h"

#include "util/error.h"
#include "util/log.h"

#include <anvil/worker.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_GRACE_MS 30000
#define MAX_RETIRING 16

struct options {
    const char  *config; // NULL: serve Sleep and echo
    const char  *server; // NULL: the file's, $ANVIL_SERVER or the default
    const char  *name;
    const char **queues;
    size_t       n_queues;
    int          slots;    // 0 = not set
    int          prefetch; // when prefetch_set
    bool         prefetch_set;
    int          log_level; // -1 = not set
    int          log_json;  // -1 = not set
    int          grace_ms;  // -1 = not set
    const char  *token;
    const char  *tls_ca;
    const char  *tls_cert;
    const char  *tls_key;
    bool         help;
    bool         version;
};

// A running worker and the config it was built from (which its exec
// handlers borrow).
struct served {
    struct worker_config  cfg;
    anvil_worker         *w;
    struct exec_handler **execs; // one per handler; NULL for builtins
    int                   grace_ms;
};

static const char usage_line[]
    = "usage: anvil-worker [--config FILE] [--server URL] [--slots N] "
      "[--queue Q]...\n"
      "                    [--prefetch N] [--name NAME] [--grace-ms N]\n"
      "                    [--token T] [--tls-ca F] [--tls-cert F] "
      "[--tls-key F]\n"
      "                    [--log-level L] [--log-format F] [--version] "
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
        "Runs job handlers for an anvild: those of --config FILE, else the\n"
        "built-in job types Sleep and echo. Flags override the file.\n"
        "SIGHUP reloads the file; SIGINT/SIGTERM stop gracefully.\n"
        "\n"
        "  --config FILE   JSON config (see docs/workers.md)\n"
        "  --server URL    server to poll (default $ANVIL_SERVER, else\n"
        "                  %s); URL1,URL2,... for anvild nodes\n"
        "                  sharing one database (follows the leader)\n"
        "  --slots N       jobs run at once, 1 to 1024 (default 1)\n"
        "  --prefetch N    jobs leased ahead for the next free slot: 0 =\n"
        "                  adaptive (default), -1 = none, up to 1000\n"
        "  --queue Q       queue to serve; repeat for several (default "
        "\"default\")\n"
        "  --name NAME     worker name (default <hostname>-<pid>)\n"
        "  --grace-ms N    on SIGINT/SIGTERM, let running jobs finish for "
        "up to N ms,\n"
        "                  then cancel them (default %d)\n"
        "  --token T       bearer token (default $ANVIL_TOKEN)\n"
        "  --tls-ca F      CA file for tls+tcp:// (default $ANVIL_TLS_CA)\n"
        "  --tls-cert F    client certificate (default $ANVIL_TLS_CERT)\n"
        "  --tls-key F     its key (default $ANVIL_TLS_KEY)\n"
        "  --log-level L   error, warn, info or debug (default info)\n"
        "  --log-format F  text or json (default text)\n"
        "  --version       print the version and exit\n"
        "  --help          show this help\n",
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
    { "config", required_argument, NULL, 'c' },
    { "server", required_argument, NULL, 's' },
    { "slots", required_argument, NULL, 'n' },
    { "prefetch", required_argument, NULL, 'p' },
    { "queue", required_argument, NULL, 'q' },
    { "name", required_argument, NULL, 'N' },
    { "log-level", required_argument, NULL, 'l' },
    { "log-format", required_argument, NULL, 'f' },
    { "grace-ms", required_argument, NULL, 'g' },
    { "token", required_argument, NULL, 't' },
    { "tls-ca", required_argument, NULL, 'A' },
    { "tls-cert", required_argument, NULL, 'C' },
    { "tls-key", required_argument, NULL, 'K' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
};

// Applies a flag with a string value; false if c is not one.
static bool
apply_string(struct options *o, int c, const char *v)
{
    const char **slot = NULL;
    switch (c) {
    case 'c':
        slot = &o->config;
        break;
    case 's':
        slot = &o->server;
        break;
    case 'N':
        slot = &o->name;
        break;
    case 't':
        slot = &o->token;
        break;
    case 'A':
        slot = &o->tls_ca;
        break;
    case 'C':
        slot = &o->tls_cert;
        break;
    case 'K':
        slot = &o->tls_key;
        break;
    case 'q':
        slot = &o->queues[o->n_queues++];
        break;
    default:
        return false;
    }
    *slot = v;
    return true;
}

// Applies one flag; -1 with a message on stderr if its value is bad.
static int
apply_flag(struct options *o, int c, const char *v)
{
    if (apply_string(o, c, v))
        return 0;
    switch (c) {
    case 'h':
        o->help = true;
        return 0;
    case 'V':
        o->version = true;
        return 0;
    case 'n':
        if (parse_int(v, 1, 1024, &o->slots) == 0)
            return 0;
        fprintf(stderr, "anvil-worker: --slots must be 1 to 1024\n");
        return -1;
    case 'p':
        if (parse_int(v, -1, 1000, &o->prefetch) == 0) {
            o->prefetch_set = true;
            return 0;
        }
        fprintf(stderr,
            "anvil-worker: --prefetch must be -1 (none), 0 (adaptive) or up "
            "to 1000\n");
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
    case 'f':
        o->log_json = strcmp(v, "json") == 0 ? 1 : 0;
        if (strcmp(v, "json") == 0 || strcmp(v, "text") == 0)
            return 0;
        fprintf(stderr, "anvil-worker: --log-format must be text or json\n");
        return -1;
    default:
        return -1; // getopt_long has said what was wrong
    }
}

static int
parse_args(int argc, char **argv, struct options *o)
{
    *o = (struct options) { .log_level = -1, .log_json = -1, .grace_ms = -1 };
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

// The config to run: the file's, or Sleep and echo without one.
static int
load_config(
    const struct options *o, struct worker_config *cfg, struct anvil_error *err)
{
    if (o->config != NULL)
        return config_load(o->config, cfg, err);
    config_init(cfg);
    if (config_add_builtin(cfg, "Sleep", "sleep") != ANVIL_OK
        || config_add_builtin(cfg, "echo", "echo") != ANVIL_OK) {
        config_fini(cfg);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    return ANVIL_OK;
}

static const char *
pick(const char *flag, const char *file, const char *env)
{
    if (flag != NULL)
        return flag;
    if (file != NULL)
        return file;
    return env != NULL ? getenv(env) : NULL;
}

// The worker options of flags over the file; *tls is filled and used only
// when a TLS file is named by a flag or the file (else the library reads
// $ANVIL_TLS_* itself).
static void
worker_opts(const struct options *o, const struct worker_config *cfg,
    struct anvil_tls *tls, struct anvil_worker_opts *wo)
{
    *wo          = (struct anvil_worker_opts) { 0 };
    wo->url      = pick(o->server, cfg->server, NULL);
    wo->name     = pick(o->name, cfg->name, NULL);
    wo->slots    = o->slots > 0 ? o->slots : cfg->slots > 0 ? cfg->slots : 1;
    wo->prefetch = o->prefetch_set ? o->prefetch
        : cfg->prefetch_set        ? cfg->prefetch
                                   : 0;
    wo->token    = pick(o->token, cfg->token, NULL);
    wo->queues   = o->n_queues > 0 ? o->queues : (const char **) cfg->queues;
    wo->n_queues = o->n_queues > 0 ? o->n_queues : cfg->n_queues;
    bool any     = o->tls_ca || o->tls_cert || o->tls_key || cfg->tls_ca
        || cfg->tls_cert || cfg->tls_key;
    *tls = (struct anvil_tls) {
        .ca_file   = pick(o->tls_ca, cfg->tls_ca, "ANVIL_TLS_CA"),
        .cert_file = pick(o->tls_cert, cfg->tls_cert, "ANVIL_TLS_CERT"),
        .key_file  = pick(o->tls_key, cfg->tls_key, "ANVIL_TLS_KEY"),
    };
    wo->tls = any ? tls : NULL;
}

static void
served_free(struct served *s)
{
    if (s == NULL)
        return;
    anvil_worker_free(s->w); // stops it first if needed
    for (size_t i = 0; s->execs != NULL && i < s->cfg.n_handlers; i++)
        exec_handler_free(s->execs[i]);
    free(s->execs);
    config_fini(&s->cfg);
    free(s);
}

static int
add_handler(struct served *s, size_t i, struct anvil_error *err)
{
    const struct handler_config *h = &s->cfg.handlers[i];
    if (h->kind == HANDLER_EXEC) {
        if (exec_handler_new(h, &s->execs[i]) != ANVIL_OK)
            return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
        return anvil_worker_add_handler(
            s->w, h->type, exec_handler_run, s->execs[i], err);
    }
    anvil_handler_fn fn
        = strcmp(h->builtin, "sleep") == 0 ? handler_sleep : handler_echo;
    return anvil_worker_add_handler(s->w, h->type, fn, NULL, err);
}

// Builds and starts a worker from cfg (consumed, success or not).
static int
served_start(const struct options *o, struct worker_config *cfg,
    struct served **out, struct anvil_error *err)
{
    *out             = NULL;
    struct served *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        config_fini(cfg);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    s->cfg = *cfg;
    config_init(cfg);
    s->grace_ms = o->grace_ms >= 0 ? o->grace_ms
        : s->cfg.grace_ms >= 0     ? s->cfg.grace_ms
                                   : DEFAULT_GRACE_MS;
    s->execs    = calloc(s->cfg.n_handlers + 1, sizeof(*s->execs));
    struct anvil_tls         tls;
    struct anvil_worker_opts wo;
    worker_opts(o, &s->cfg, &tls, &wo);
    int rc = s->execs != NULL
        ? anvil_worker_new(&s->w, &wo, err)
        : av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; rc == ANVIL_OK && i < s->cfg.n_handlers; i++)
        rc = add_handler(s, i, err);
    if (rc == ANVIL_OK)
        rc = anvil_worker_start(s->w, err);
    if (rc != ANVIL_OK) {
        served_free(s);
        return rc;
    }
    *out = s;
    return ANVIL_OK;
}

// How long past its grace period a stop may take before the process ends
// without it.
#define STOP_SLACK_MS 10000

// While the worker drains on the first signal, a second one ends the
// process at once; the jobs it held run again elsewhere after their leases.
// So does a stop that has not ended STOP_SLACK_MS after the grace period:
// nng 1.5.2 can hang for good closing a socket that a message reaches as
// it closes (see sdk/client_call.c), which a stop meets when the server
// goes away at the same moment.
static void *
second_signal(void *arg)
{
    int      grace_ms = (int) (intptr_t) arg;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    int64_t         ms = (int64_t) grace_ms + STOP_SLACK_MS;
    struct timespec ts
        = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000 };
    int sig;
    while ((sig = sigtimedwait(&stop, NULL, &ts)) < 0 && errno == EINTR)
        ;
    if (sig < 0) {
        AV_ERR("worker.exit",
            "msg=\"the stop did not end within the grace period and %d ms "
            "more: exiting without it; held jobs run again after their "
            "leases\"",
            STOP_SLACK_MS);
        _exit(1);
    }
    AV_WARN("worker.exit",
        "msg=\"second signal: exiting without waiting "
        "for running jobs\"");
    _exit(130);
    return NULL;
}

// Stops a replaced worker on its own thread: its running jobs finish
// within its grace period while the new worker already polls.
static void *
retire_main(void *arg)
{
    struct served *s = arg;
    anvil_worker_drain(s->w, s->grace_ms); // loses no lease of its last poll
    served_free(s);
    return NULL;
}

struct retiring {
    pthread_t thr[MAX_RETIRING];
    int       n;
};

static void
join_retiring(struct retiring *r)
{
    for (int i = 0; i < r->n; i++)
        pthread_join(r->thr[i], NULL);
    r->n = 0;
}

static void
log_reload_error(const char *msg)
{
    char   safe[300];
    size_t i = 0;
    for (; msg[i] != '\0' && i + 1 < sizeof(safe); i++)
        safe[i] = msg[i] == '"' ? '\'' : msg[i];
    safe[i] = '\0';
    AV_ERR(
        "worker.reload.error", "msg=\"%s; keeping the running config\"", safe);
}

// SIGHUP: replaces *cur with a worker of the reloaded file, if it is good.
static void
reload(const struct options *o, struct served **cur, struct retiring *r)
{
    struct worker_config cfg;
    struct anvil_error   err  = { 0 };
    struct served       *next = NULL;
    if (o->config == NULL) {
        log_reload_error("no --config file to reload");
        return;
    }
    int rc = config_load(o->config, &cfg, &err);
    if (rc == ANVIL_OK)
        rc = served_start(o, &cfg, &next, &err);
    if (rc != ANVIL_OK) {
        log_reload_error(err.msg);
        return;
    }
    if (r->n == MAX_RETIRING)
        join_retiring(r); // rare: many reloads while jobs still drain
    if (pthread_create(&r->thr[r->n], NULL, retire_main, *cur) == 0) {
        r->n++;
    } else {
        anvil_worker_stop((*cur)->w, (*cur)->grace_ms);
        served_free(*cur);
    }
    *cur = next;
    AV_INFO("worker.reload", "file=%s handlers=%zu", o->config,
        next->cfg.n_handlers);
}

static int
run(const struct options *o, sigset_t *sigs)
{
    struct worker_config cfg;
    struct anvil_error   err = { 0 };
    struct served       *s   = NULL;
    int                  rc  = load_config(o, &cfg, &err);
    if (rc == ANVIL_OK) {
        av_log_set_level(o->log_level >= 0 ? o->log_level
                : cfg.log_level >= 0       ? cfg.log_level
                                           : AV_LOG_INFO);
        av_log_set_json(
            o->log_json >= 0 ? o->log_json == 1 : cfg.log_json == 1);
        rc = served_start(o, &cfg, &s, &err);
    }
    if (rc != ANVIL_OK) {
        fprintf(stderr, "anvil-worker: %s\n", err.msg);
        return rc == ANVIL_INVALID_ARGUMENT ? 2 : 1;
    }
    struct retiring r   = { .n = 0 };
    int             sig = 0;
    for (;;) {
        sigwait(sigs, &sig);
        if (sig != SIGHUP)
            break;
        AV_INFO("worker.signal", "signal=SIGHUP file=%s",
            o->config != NULL ? o->config : "-");
        reload(o, &s, &r);
    }
    AV_INFO("worker.signal", "signal=%s grace_ms=%d",
        sig == SIGINT ? "SIGINT" : "SIGTERM", s->grace_ms);
    pthread_t watcher;
    if (pthread_create(
            &watcher, NULL, second_signal, (void *) (intptr_t) s->grace_ms)
        == 0)
        pthread_detach(watcher);
    anvil_worker_stop(s->w, s->grace_ms);
    served_free(s);
    join_retiring(&r);
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
    if (o.version) {
        printf("anvil-worker %s\n", ANVIL_VERSION);
        free(o.queues);
        return 0;
    }
    av_log_set_component("worker");
    av_log_set_level(o.log_level >= 0 ? o.log_level : AV_LOG_INFO);
    av_log_set_json(o.log_json == 1);
    av_log_to_stderr();
    // Blocked before any thread starts, so every thread inherits the mask
    // and only sigwait() sees these signals (exec'ed programs get an empty
    // mask back: see launch_exec.c).
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN); // a closed stdout must not kill running jobs
    int rc = run(&o, &sigs);
    free(o.queues);
    return rc;
}
