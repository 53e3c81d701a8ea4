// worker.c - the worker library of anvil/worker.h: options, handlers,
// start, and the order in which a stop ends the runtime's threads. The top
// of the runtime: it wires tasks, the poller, the heartbeat, the reporter
// and the slots together (their order is drawn in rtutil.h).
//
// Threads: one poll thread (poller.c) long-polls for as many jobs as the
// slots and the prefetch queue can take and adds the leases it gets to
// tasks; N slot threads (slots.c) take them, run the handler and hand the
// outcome to the reporter thread (reporter.c), which sends the outcomes in
// batches; one heartbeat thread (heartbeat.c) extends the leases held and
// flags the jobs the server says to stop. The poll thread has a client of
// its own, so reports and heartbeats (sharing w->client; a client is
// thread-safe) never queue behind a parked long-poll.
//
// anvil_worker_stop() cuts a parked long-poll short (poller_cut());
// anvil_worker_drain() lets it run to its end (at most poll_wait_ms), so
// a lease the server hands that poll is never lost. Leases that poll
// returns, like the prefetched ones, are held and run within the grace
// period. Stopping then flushes the reports, and the heartbeat stops
// last: a lease is kept until its outcome is acknowledged.
//
// struct anvil_worker has no lock: its fields are set by anvil_worker_new()
// and _add_handler() and read-only once started; each module guards its
// own state.
#include "runtime/heartbeat.h"
#include "runtime/poller.h"
#include "runtime/reporter.h"
#include "runtime/slots.h"
#include "runtime/tasks.h"
#include "runtime/worker_peek.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_WAIT_MS 5000
#define DEFAULT_HEARTBEAT_MS 5000
#define MAX_SLOTS 1024
#define MAX_PREFETCH ANVIL_PREFETCH_MAX
#define PREFETCH_AUTO_PER_SLOT 16
// Once stopping, a report still retries this long past the grace period.
#define STOP_REPORT_MS 10000

struct anvil_worker {
    char           *url;
    char           *name;
    char          **queues;
    size_t          n_queues;
    int             slots;
    int             prefetch;      // the first prefetch; then the poller's
    int             prefetch_max;  // what adaptive prefetch may reach
    bool            prefetch_auto; // opts.prefetch was 0: adapts
    int             poll_wait_ms;
    int             heartbeat_ms;
    struct handler *handlers;
    const char    **types; // handlers[i].type, for Poll
    size_t          n_handlers;
    anvil_client   *client;      // reports and heartbeats
    anvil_client   *poll_client; // the poll thread's
    bool            started;
    bool            poller_ready; // poller_init() succeeded

    struct tasks     tasks;
    struct poller    poller;
    struct heartbeat hb;
    struct reporter  rep;
    struct slots     run;
};

static bool
valid_name(const char *s)
{
    size_t n = s == NULL ? 0 : strlen(s);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c  = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

// "<host>-<pid>", with characters a name may not hold replaced by '-'.
static char *
default_name(void)
{
    char host[100] = "worker";
    char buf[128];
    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "worker");
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, sizeof(buf), "%s-%ld", host, (long) getpid());
    for (char *c = buf; *c != '\0'; c++) {
        char one[2] = { *c, '\0' };
        if (!valid_name(one))
            *c = '-';
    }
    return strdup(buf);
}

static int
check_opts(const struct anvil_worker_opts *o, struct anvil_error *err)
{
    if (o->slots < 0 || o->slots > MAX_SLOTS)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "worker slots must be between 1 and %d, not %d", MAX_SLOTS,
            o->slots);
    if (o->prefetch < ANVIL_PREFETCH_NONE || o->prefetch > MAX_PREFETCH)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "worker prefetch must be -1 (none), 0 (adaptive) or up to %d, "
            "not %d",
            MAX_PREFETCH, o->prefetch);
    if (o->poll_wait_ms < 0 || o->heartbeat_ms < 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "worker poll_wait_ms and heartbeat_ms must not be negative");
    if (o->name != NULL && !valid_name(o->name))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "worker name \"%s\" must be 1 to 128 of [A-Za-z0-9_.-]", o->name);
    if (o->n_queues > 0 && o->queues == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "worker n_queues is %zu but queues is NULL", o->n_queues);
    for (size_t i = 0; i < o->n_queues; i++) {
        if (!valid_name(o->queues[i]))
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "worker queue name \"%s\" must be 1 to 128 of "
                "[A-Za-z0-9_.-]",
                o->queues[i] ? o->queues[i] : "(null)");
    }
    return ANVIL_OK;
}

// Adaptive prefetch starts at one job per slot and may reach
// PREFETCH_AUTO_PER_SLOT per slot; a fixed one stays where it is.
static void
set_prefetch(struct anvil_worker *w, int opt)
{
    w->prefetch_auto = opt == ANVIL_PREFETCH_ADAPTIVE;
    if (!w->prefetch_auto) {
        w->prefetch     = opt == ANVIL_PREFETCH_NONE ? 0 : opt;
        w->prefetch_max = w->prefetch;
        return;
    }
    int max         = w->slots * PREFETCH_AUTO_PER_SLOT;
    w->prefetch     = w->slots;
    w->prefetch_max = max < MAX_PREFETCH ? max : MAX_PREFETCH;
}

static int
copy_opts(struct anvil_worker *w, const struct anvil_worker_opts *o)
{
    w->slots = o->slots > 0 ? o->slots : 1;
    set_prefetch(w, o->prefetch);
    w->poll_wait_ms = o->poll_wait_ms > 0 ? o->poll_wait_ms : DEFAULT_WAIT_MS;
    w->heartbeat_ms
        = o->heartbeat_ms > 0 ? o->heartbeat_ms : DEFAULT_HEARTBEAT_MS;
    w->name = o->name != NULL ? strdup(o->name) : default_name();
    if (o->url != NULL)
        w->url = strdup(o->url);
    else if (getenv("ANVIL_SERVER") != NULL)
        w->url = strdup(getenv("ANVIL_SERVER"));
    else
        w->url = strdup(ANVIL_DEFAULT_URL);
    w->queues = calloc(o->n_queues + 1, sizeof(char *));
    if (w->name == NULL || w->url == NULL || w->queues == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    for (size_t i = 0; i < o->n_queues; i++) {
        w->queues[i] = strdup(o->queues[i]);
        if (w->queues[i] == NULL)
            return ANVIL_RESOURCE_EXHAUSTED;
        w->n_queues++;
    }
    return ANVIL_OK;
}

// Applies the token and TLS settings of o to a new client.
static int
secure_client(
    anvil_client *c, const struct anvil_worker_opts *o, struct anvil_error *err)
{
    int rc = ANVIL_OK;
    if (o->token != NULL)
        rc = anvil_client_set_token(c, o->token, err);
    if (rc == ANVIL_OK && o->tls != NULL)
        rc = anvil_client_set_tls(c, o->tls, err);
    return rc;
}

// Tells both clients who this worker is: every Poll and Heartbeat carries
// it, and the server lists the worker from it.
static int
register_info(struct anvil_worker *w, struct anvil_error *err)
{
    static const char *const default_queue[] = { "default" };
    char                     host[256]       = "";
    if (gethostname(host, sizeof(host)) != 0)
        host[0] = '\0';
    host[sizeof(host) - 1]        = '\0';
    struct anvil_worker_info info = {
        .host    = host,
        .pid     = (int64_t) getpid(),
        .version = ANVIL_VERSION,
        .types   = w->types,
        .n_types = w->n_handlers,
        .queues
        = w->n_queues > 0 ? (const char *const *) w->queues : default_queue,
        .n_queues = w->n_queues > 0 ? w->n_queues : 1,
        .slots    = (uint32_t) w->slots,
    };
    int rc = anvil_client_set_worker_info(w->client, &info, err);
    if (rc == ANVIL_OK)
        rc = anvil_client_set_worker_info(w->poll_client, &info, err);
    return rc;
}

int
anvil_worker_add_handler(anvil_worker *w, const char *type, anvil_handler_fn fn,
    void *arg, struct anvil_error *err)
{
    if (w->started)
        return av_error_set(err, ANVIL_FAILED_PRECONDITION,
            "handlers must be registered before the worker starts");
    if (!valid_name(type) || fn == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "job type \"%s\" must be 1 to 128 of [A-Za-z0-9_.-], with a "
            "handler",
            type != NULL ? type : "(null)");
    for (size_t i = 0; i < w->n_handlers; i++) {
        if (strcmp(w->handlers[i].type, type) == 0)
            return av_error_set(err, ANVIL_ALREADY_EXISTS,
                "job type \"%s\" already has a handler", type);
    }
    size_t          n  = w->n_handlers + 1;
    struct handler *hs = realloc(w->handlers, n * sizeof(*hs));
    if (hs != NULL)
        w->handlers = hs;
    const char **ts = realloc(w->types, n * sizeof(*ts));
    if (ts != NULL)
        w->types = ts;
    char *copy = strdup(type);
    if (hs == NULL || ts == NULL || copy == NULL) {
        free(copy);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    hs[n - 1]     = (struct handler) { copy, fn, arg };
    ts[n - 1]     = copy;
    w->n_handlers = n;
    return ANVIL_OK;
}

static void
log_start(const struct anvil_worker *w)
{
    char types[512] = "", queues[512] = "default";
    for (size_t i = 0, at = 0; i < w->n_handlers && at < sizeof(types); i++)
        at += (size_t) snprintf(
            types + at, sizeof(types) - at, "%s%s", i ? "," : "", w->types[i]);
    for (size_t i = 0, at = 0; i < w->n_queues && at < sizeof(queues); i++)
        at += (size_t) snprintf(queues + at, sizeof(queues) - at, "%s%s",
            i ? "," : "", w->queues[i]);
    AV_INFO("worker.start",
        "name=%s url=%s slots=%d prefetch=%d types=%s queues=%s", w->name,
        w->url, w->slots, w->prefetch, types, queues);
}

// Frees everything a worker owns; threads must be gone.
static void
worker_release(struct anvil_worker *w)
{
    anvil_client_close(w->client);
    anvil_client_close(w->poll_client);
    for (size_t i = 0; i < w->n_handlers; i++)
        free(w->handlers[i].type);
    free(w->handlers);
    free(w->types);
    for (size_t i = 0; i < w->n_queues; i++)
        free(w->queues[i]);
    free(w->queues);
    if (w->poller_ready)
        poller_fini(&w->poller);
    reporter_fini(&w->rep);
    tasks_fini(&w->tasks);
    free(w->name);
    free(w->url);
    free(w);
}

// Opens the two clients with the url, token and TLS settings of o.
static int
open_clients(struct anvil_worker *w, const struct anvil_worker_opts *o,
    struct anvil_error *err)
{
    int rc = anvil_client_open(&w->client, w->url, err);
    if (rc == ANVIL_OK)
        rc = anvil_client_open(&w->poll_client, w->url, err);
    if (rc == ANVIL_OK)
        rc = secure_client(w->client, o, err);
    if (rc == ANVIL_OK)
        rc = secure_client(w->poll_client, o, err);
    return rc;
}

int
anvil_worker_new(anvil_worker **out, const struct anvil_worker_opts *opts,
    struct anvil_error *err)
{
    struct anvil_worker_opts        none = { 0 };
    const struct anvil_worker_opts *o    = opts != NULL ? opts : &none;
    *out                                 = NULL;
    int rc                               = check_opts(o, err);
    if (rc != ANVIL_OK)
        return rc;
    struct anvil_worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    if (tasks_init(&w->tasks) != ANVIL_OK) {
        free(w);
        return av_error_set(err, ANVIL_INTERNAL, "cannot create a condvar");
    }
    rc = copy_opts(w, o);
    if (rc == ANVIL_OK)
        rc = reporter_init(&w->rep, &w->tasks, NULL, w->name);
    if (rc != ANVIL_OK) {
        av_error_set(err, rc, "out of memory");
        goto fail;
    }
    rc = open_clients(w, o, err);
    if (rc != ANVIL_OK)
        goto fail;
    w->rep.client = w->client;
    *out          = w;
    return ANVIL_OK;
fail:
    worker_release(w);
    return rc;
}

// Sets up the poller, the heartbeat and the slots from the options.
static int
wire_modules(struct anvil_worker *w)
{
    struct anvil_poll_req req = {
        .worker_id = w->name,
        .queues    = (const char *const *) w->queues,
        .n_queues  = w->n_queues,
        .types     = w->types,
        .n_types   = w->n_handlers,
        .wait_ms   = (uint32_t) w->poll_wait_ms,
    };
    int rc = poller_init(&w->poller, &w->tasks, w->poll_client, &req, w->slots,
        w->prefetch, w->prefetch_max, w->prefetch_auto);
    if (rc != ANVIL_OK)
        return rc;
    w->poller_ready = true;
    w->hb           = (struct heartbeat) { .ts = &w->tasks,
                  .client                      = w->client,
                  .name                        = w->name,
                  .period_ms                   = w->heartbeat_ms };
    w->run          = (struct slots) { .ts = &w->tasks,
                 .rep                      = &w->rep,
                 .handlers                 = w->handlers,
                 .n_handlers               = w->n_handlers,
                 .name                     = w->name };
    return ANVIL_OK;
}

static int
start_threads(struct anvil_worker *w)
{
    // The reporter and the heartbeat first: they outlive the slots.
    int rc = wire_modules(w);
    if (rc == ANVIL_OK)
        rc = reporter_start(&w->rep);
    if (rc == ANVIL_OK)
        rc = heartbeat_start(&w->hb);
    if (rc == ANVIL_OK)
        rc = slots_start(&w->run, w->slots);
    if (rc == ANVIL_OK)
        rc = poller_start(&w->poller);
    return rc;
}

int
anvil_worker_start(anvil_worker *w, struct anvil_error *err)
{
    if (w->started)
        return av_error_set(
            err, ANVIL_FAILED_PRECONDITION, "the worker was started before");
    if (w->n_handlers == 0)
        return av_error_set(err, ANVIL_FAILED_PRECONDITION,
            "the worker has no handlers: register one with "
            "anvil_worker_add_handler()");
    int rc = register_info(w, err);
    if (rc != ANVIL_OK)
        return rc;
    w->started = true;
    log_start(w);
    rc = start_threads(w);
    if (rc != ANVIL_OK) {
        anvil_worker_stop(w, 0);
        return av_error_set(err, rc, "cannot start the worker threads");
    }
    return ANVIL_OK;
}

// Stops the worker; cut_poll ends a parked long-poll soon (a lease the
// server gives that cut-off Poll runs again only after the lease), else
// the poll runs to its end and what it leases is run in the grace. Each
// step ends one module's threads, in the reverse of the modules' order.
static void
stop_worker(anvil_worker *w, int grace_ms, bool cut_poll)
{
    grace_ms = grace_ms > 0 ? grace_ms : 0;
    if (w == NULL || !w->started || !tasks_set_phase(&w->tasks, TASKS_STOPPING))
        return;
    reporter_give_up_at(&w->rep, av_mono_ms() + grace_ms + STOP_REPORT_MS);
    AV_INFO("worker.stop", "name=%s grace_ms=%d cut_poll=%s", w->name, grace_ms,
        cut_poll ? "true" : "false");
    if (cut_poll && w->poller_ready)
        poller_cut(&w->poller);
    poller_join(&w->poller);
    tasks_set_phase(&w->tasks, TASKS_POLL_DONE);
    size_t left = tasks_drain(&w->tasks, av_mono_ms() + grace_ms);
    if (left > 0)
        AV_INFO("worker.stop.cancel", "jobs=%zu", left);
    slots_join(&w->run);
    reporter_finish(&w->rep); // every outcome sent, or given up
    tasks_set_phase(&w->tasks, TASKS_CLOSED);
    heartbeat_join(&w->hb);
    uint64_t ok, failed;
    reporter_counts(&w->rep, &ok, &failed);
    AV_INFO("worker.stopped", "name=%s succeeded=%llu failed=%llu", w->name,
        (unsigned long long) ok, (unsigned long long) failed);
}

void
anvil_worker_stop(anvil_worker *w, int grace_ms)
{
    stop_worker(w, grace_ms, true);
}

void
anvil_worker_drain(anvil_worker *w, int grace_ms)
{
    stop_worker(w, grace_ms, false);
}

void
anvil_worker_free(anvil_worker *w)
{
    if (w == NULL)
        return;
    anvil_worker_stop(w, 0);
    worker_release(w);
}

void
anvil_worker_get_stats(anvil_worker *w, struct anvil_worker_stats *st)
{
    struct tasks_load ld;
    tasks_load(&w->tasks, &ld);
    reporter_counts(&w->rep, &st->succeeded, &st->failed);
    st->running = ld.running;
}

void
worker_peek(anvil_worker *w, struct worker_peek *out)
{
    int  prefetch = w->prefetch;
    bool in_call  = false;
    if (w->poller_ready)
        poller_peek(&w->poller, &prefetch, &in_call);
    struct tasks_load ld;
    tasks_load(&w->tasks, &ld);
    size_t cap = (size_t) w->slots + (size_t) prefetch;
    out->quiet
        = !in_call && ld.n_unfinished >= cap && ld.n_held == ld.n_unfinished;
    out->n_held   = ld.n_held;
    out->prefetch = prefetch;
}
