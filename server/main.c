// main.c - anvild: parse flags, block signals, start the server, wait for
// SIGINT/SIGTERM, stop cleanly.
#include "server.h"
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <libpq-fe.h>
#include <nng/nng.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[]
    = "usage: anvild [options]\n"
      "\n"
      "  --listen URL            nng URL to serve (default "
      "tcp://127.0.0.1:7700;\n"
      "                          also ipc:///path, ws://host:port/path,\n"
      "                          tls+tcp://host:port)\n"
      "  --http URL              also serve HTTP/JSON on http://host:port or\n"
      "                          https://host:port (repeatable; off by\n"
      "                          default; docs/http.md)\n"
      "  --http-idle-timeout DUR close keep-alive HTTP connections idle this\n"
      "                          long (default 60s)\n"
      "  --http-read-timeout DUR close HTTP connections whose request takes\n"
      "                          longer than this to arrive (default 10s)\n"
      "  --sse-keepalive DUR     an idle event stream (GET /v1/events) writes\n"
      "                          a keep-alive this often (default 15s)\n"
      "  --public-metrics        serve GET /metrics without a token\n"
      "  --no-metrics            count nothing for GET /metrics\n"
      "  --db PATH               SQLite database (default ./anvil.db)\n"
      "  --store URL             PostgreSQL instead: a libpq connection\n"
      "                          string or postgresql://user@host/db URI\n"
      "  --advertise URL         with --store: the URL standbys send clients\n"
      "                          to while this node leads (default: --listen)\n"
      "  --leader-ttl DUR        with --store: the leader lease's time to\n"
      "                          live (default 2s; 300ms to 10m)\n"
      "  --log-level LEVEL       error, warn, info (default) or debug\n"
      "  --log-format FMT        text (default) or json lines\n"
      "  --max-payload BYTES     payload and result limit (default 1048576,\n"
      "                          at most 4194304)\n"
      "  --durability MODE       full (default: fsync every commit) or normal\n"
      "  --lease-ms MS           default job lease (default 30000)\n"
      "  --retention DUR         keep finished jobs and workflows this long:\n"
      "                          7d (default), 12h, 30m, ...; 0 = forever\n"
      "  --event-retention DUR   keep events this long (default 24h)\n"
      "  --event-max N           and at most the newest N (default 10000000)\n"
      "  --no-events             write no events (no stream, no live page)\n"
      "  --worker-timeout DUR    a worker unheard of this long is shown lost\n"
      "                          (default 15s)\n"
      "  --auth                  require API tokens (the default for any URL\n"
      "                          but ipc:// and loopback addresses)\n"
      "  --insecure              serve without tokens even off loopback\n"
      "  --bootstrap-token-file F  make sure an admin token exists: read it\n"
      "                          from F, or create one and write it to F\n"
      "  --tls-cert FILE         PEM certificate for tls+tcp:// and https://\n"
      "  --tls-key FILE          PEM private key for tls+tcp:// and https://\n"
      "  --tls-client-ca FILE    require client certificates signed by this "
      "CA\n"
      "  --max-waits N           long-polls in flight, total (default 10000)\n"
      "  --max-waits-per-conn N  long-polls in flight per connection (256)\n"
      "  --max-queue N           requests waiting for the engine (100000)\n"
      "  --max-conns N           connections open at once (1024)\n"
      "  --version               print the version and exit\n"
      "  --help                  show this help\n";

static int
parse_int(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno       = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

// Each option sets cfg from its value, or returns what a valid value is.
typedef const char *(*setter)(struct server_config *cfg, const char *v);

static const char *
set_http(struct server_config *cfg, const char *v)
{
    if (cfg->n_http == SERVER_MAX_HTTP)
        return "at most 8 --http listeners";
    if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
        return "http://host:port or https://host:port";
    cfg->http_urls[cfg->n_http++] = v;
    return NULL;
}

static const char *
set_level(struct server_config *cfg, const char *v)
{
    int level;
    (void) cfg;
    if (av_log_parse_level(v, &level) != 0)
        return "use error, warn, info or debug";
    av_log_set_level(level);
    return NULL;
}

static const char *
set_format(struct server_config *cfg, const char *v)
{
    (void) cfg;
    if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0)
        return "use text or json";
    av_log_set_json(strcmp(v, "json") == 0);
    return NULL;
}

static const char *
set_payload(struct server_config *cfg, const char *v)
{
    long long n;
    if (parse_int(v, 1, SERVER_MAX_PAYLOAD, &n) != 0)
        return "a byte count from 1 to 4194304";
    cfg->max_payload = (size_t) n;
    return NULL;
}

static const char *
set_durability(struct server_config *cfg, const char *v)
{
    if (strcmp(v, "full") != 0 && strcmp(v, "normal") != 0)
        return "use full or normal";
    cfg->synchronous = strcmp(v, "full") == 0 ? 2 : 1;
    return NULL;
}

// Any libpq connection string or URI libpq itself can parse; whether the
// server answers is for store_open_pg to say.
static const char *
set_store(struct server_config *cfg, const char *v)
{
    char             *msg = NULL;
    PQconninfoOption *o   = PQconninfoParse(v, &msg);
    PQfreemem(msg);
    if (o == NULL)
        return "a libpq connection string such as \"host=/run/postgresql "
               "dbname=anvil\" or a URI such as "
               "postgresql://anvil@db.example/anvil";
    PQconninfoFree(o);
    cfg->store_url = v;
    return NULL;
}

static const char *
set_lease(struct server_config *cfg, const char *v)
{
    long long n;
    if (parse_int(v, 100, 24LL * 3600 * 1000, &n) != 0)
        return "milliseconds from 100 to 86400000";
    cfg->lease_ms = n;
    return NULL;
}

static const char *
set_event_max(struct server_config *cfg, const char *v)
{
    long long n;
    if (parse_int(v, 1000, 1000000000LL, &n) != 0)
        return "a count from 1000 to 1000000000";
    cfg->event_max = (uint64_t) n;
    return NULL;
}

static const char *
set_auth(struct server_config *cfg, const char *v)
{
    (void) v;
    cfg->auth = SERVER_AUTH_ON;
    return NULL;
}

static const char *
set_insecure(struct server_config *cfg, const char *v)
{
    (void) v;
    cfg->auth = SERVER_AUTH_OFF;
    return NULL;
}

// How an option's value is read: most options set one field of
// server_config, found by its offset, and need no function of their own.
enum opt_kind {
    OPT_FN,       // set calls fn with the value
    OPT_SWITCH,   // set calls fn; the option takes no value
    OPT_STRING,   // a const char * field takes the value as given
    OPT_TRUE,     // a bool field becomes true; the option takes no value
    OPT_FALSE,    // a bool field becomes false; no value
    OPT_DURATION, // an int64_t field of milliseconds, at least min
    OPT_COUNT,    // an int field, from 1 to 10,000,000
};

struct option {
    const char   *flag;
    enum opt_kind kind;
    size_t        off;  // of the field in server_config
    int64_t       min;  // OPT_DURATION: the least value, ms
    const char   *hint; // OPT_DURATION: what a valid value is
    setter        fn;   // OPT_FN, OPT_SWITCH
};

#define FIELD(kind, f) \
    OPT_##kind, offsetof(struct server_config, f), 0, NULL, NULL
#define DURATION(f, min, hint) \
    OPT_DURATION, offsetof(struct server_config, f), min, hint, NULL
#define FN(fn) OPT_FN, 0, 0, NULL, fn
#define SWITCH(fn) OPT_SWITCH, 0, 0, NULL, fn

static const struct option options[] = {
    { "--listen", FIELD(STRING, listen_url) },
    { "--http", FN(set_http) },
    { "--http-idle-timeout",
        DURATION(http_idle_timeout_ms, 1000,
            "a duration of at least 1s, e.g. 60s") },
    { "--http-read-timeout",
        DURATION(http_read_timeout_ms, 100,
            "a duration of at least 100ms, e.g. 10s") },
    { "--sse-keepalive",
        DURATION(http_sse_keepalive_ms, 100,
            "a duration of at least 100ms, e.g. 15s") },
    { "--public-metrics", FIELD(TRUE, public_metrics) },
    { "--no-metrics", FIELD(FALSE, metrics) },
    { "--db", FIELD(STRING, db_path) },
    { "--store", FN(set_store) },
    { "--advertise", FIELD(STRING, advertise_url) },
    { "--leader-ttl",
        DURATION(leader_ttl_ms, 300, "a duration from 300ms to 10m, e.g. 2s") },
    { "--log-level", FN(set_level) },
    { "--log-format", FN(set_format) },
    { "--max-payload", FN(set_payload) },
    { "--durability", FN(set_durability) },
    { "--lease-ms", FN(set_lease) },
    { "--retention",
        DURATION(retention_ms, 0, "a duration such as 7d, 12h, 30m or 0") },
    { "--event-retention",
        DURATION(event_retention_ms, 1000,
            "a duration of at least 1s, such as 24h, 7d or 30m") },
    { "--event-max", FN(set_event_max) },
    { "--no-events", FIELD(FALSE, events) },
    { "--worker-timeout",
        DURATION(
            worker_lost_ms, 100, "a duration of at least 100ms, e.g. 15s") },
    { "--auth", SWITCH(set_auth) },
    { "--insecure", SWITCH(set_insecure) },
    { "--bootstrap-token-file", FIELD(STRING, bootstrap_token_file) },
    { "--tls-cert", FIELD(STRING, tls_cert) },
    { "--tls-key", FIELD(STRING, tls_key) },
    { "--tls-client-ca", FIELD(STRING, tls_client_ca) },
    { "--max-waits", FIELD(COUNT, max_waits) },
    { "--max-waits-per-conn", FIELD(COUNT, max_waits_per_conn) },
    { "--max-queue", FIELD(COUNT, max_queue) },
    { "--max-conns", FIELD(COUNT, max_conns) },
};
#undef FIELD
#undef DURATION
#undef FN
#undef SWITCH

static bool
takes_value(const struct option *o)
{
    return o->kind != OPT_TRUE && o->kind != OPT_FALSE && o->kind != OPT_SWITCH;
}

static const char *
set_option(const struct option *o, struct server_config *cfg, const char *v)
{
    char     *field = (char *) cfg + o->off;
    long long n;
    switch (o->kind) {
    case OPT_FN:
    case OPT_SWITCH:
        return o->fn(cfg, v);
    case OPT_STRING:
        memcpy(field, &v, sizeof(v));
        return NULL;
    case OPT_TRUE:
    case OPT_FALSE:
        *(bool *) field = o->kind == OPT_TRUE;
        return NULL;
    case OPT_DURATION:
        if (av_parse_duration(v, (int64_t *) field) != 0
            || *(int64_t *) field < o->min)
            return o->hint;
        return NULL;
    case OPT_COUNT:
        if (parse_int(v, 1, 10000000, &n) != 0)
            return "a count from 1 to 10000000";
        *(int *) field = (int) n;
        return NULL;
    }
    return "an option this build does not know"; // unreachable
}

// The signals main blocks in every thread: SIGINT and SIGTERM stop the
// server; SIGUSR1 only ends wait_signal (main sends it when the server
// stopped by itself, so the thread never outlives the server).
static void
stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGUSR1);
}

// Waits for SIGINT or SIGTERM and asks the server to stop.
static void *
wait_signal(void *arg)
{
    sigset_t set;
    stop_signals(&set);
    int sig = 0;
    sigwait(&set, &sig);
    if (sig == SIGUSR1)
        return NULL;
    AV_INFO("server.signal", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server_shutdown(arg);
    return NULL;
}

// 0 to run, 1 after --help or --version, 2 for a usage error (printed).
static int
parse_args(int argc, char **argv, struct server_config *cfg)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return 1;
        }
        if (strcmp(a, "--version") == 0) {
            printf("anvild %s\n", ANVIL_VERSION);
            return 1;
        }
        size_t k = 0, n = sizeof(options) / sizeof(options[0]);
        while (k < n && strcmp(options[k].flag, a) != 0)
            k++;
        if (k == n || (takes_value(&options[k]) && i + 1 >= argc)) {
            fprintf(stderr, "anvild: %s option '%s'\n%s",
                k == n ? "unknown" : "missing the value of", a, usage_text);
            return 2;
        }
        const char *v    = takes_value(&options[k]) ? argv[++i] : NULL;
        const char *want = set_option(&options[k], cfg, v);
        if (want != NULL) {
            fprintf(stderr, "anvild: %s '%s' is invalid: %s\n", a, v, want);
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
        return rc == 1 ? 0 : rc;

    // Block the stop signals in every thread; wait_signal waits for them.
    sigset_t set;
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct server     *srv;
    struct anvil_error err = { 0 };
    if (server_start(&cfg, &srv, &err) != ANVIL_OK) {
        fprintf(stderr, "anvild: %s\n", err.msg);
        return 1;
    }
    pthread_t sig_thread;
    if (pthread_create(&sig_thread, NULL, wait_signal, srv) != 0) {
        fprintf(stderr, "anvild: cannot start the signal thread\n");
        server_stop(srv);
        return 1;
    }
    int code = server_wait(srv);
    pthread_kill(sig_thread, SIGUSR1); // a no-op once it has taken a signal
    pthread_join(sig_thread, NULL);
    server_stop(srv);
    nng_fini();
    if (code != ANVIL_OK) {
        fprintf(stderr,
            "anvild: stopped after a fatal error (%s); see the log\n",
            anvil_code_name(code));
        return 1;
    }
    return 0;
}
