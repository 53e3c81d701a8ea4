// cmd_event.c - `anvil events`: the server's event stream, printed one
// event per line, once, or followed (--follow) until SIGINT or SIGTERM.
//
// Exactly once across restarts: every line is written whole and flushed
// before the next request, and each request starts after the last event
// looked at (the reply's next_seq), so a consumer that restarts with
// `--since <the last seq it printed>` sees every later event once.
//
// Stopping a follower: the signal handler only writes a byte to a pipe; a
// thread waiting on that pipe calls anvil_client_shutdown(), which makes
// the parked WatchEvents return at once, and the verb then exits 0. (The
// handler cannot shut the client down itself: that takes locks.)
#include "cli.h"
#include "output.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// How long one request of a follower waits for an event (the SDK cuts it
// into polls the server takes).
#define FOLLOW_POLL_MS 60000

// ---- Flag setters

static int
set_follow(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    (void) value;
    (void) err;
    o->follow = true;
    return CLI_EXIT_OK;
}

static int
set_since(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    int64_t v;
    int     rc = cli_parse_int("--since", value, 0, INT64_MAX, &v, err);
    if (rc == CLI_EXIT_OK) {
        o->since     = (uint64_t) v;
        o->has_since = true;
    }
    return rc;
}

static int
set_job(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("--job", value, &o->job_id, err);
}

static int
set_workflow(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("--workflow", value, &o->workflow_id, err);
}

// --kind K, repeated or with commas: "job.failed,job.retried".
static int
set_kind(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    const char *p = value;
    for (;;) {
        size_t len = strcspn(p, ",");
        char   name[48];
        if (len == 0 || len >= sizeof(name))
            return cli_usage_error(err, "--kind: '%s' is not a kind", value);
        memcpy(name, p, len);
        name[len] = '\0';
        enum anvil_event_kind k;
        if (anvil_event_kind_parse(name, &k) != ANVIL_OK)
            return cli_usage_error(err,
                "--kind: unknown kind '%s' (e.g. job.succeeded, "
                "workflow.failed, worker.lost)",
                name);
        if (o->n_kinds >= CLI_MAX_KINDS)
            return cli_usage_error(
                err, "--kind: at most %d kinds", CLI_MAX_KINDS);
        o->kinds[o->n_kinds++] = k;
        if (p[len] == '\0')
            return CLI_EXIT_OK;
        p += len + 1;
    }
}

// ---- Stopping on a signal

static int                   stop_fd = -1; // the pipe's write end
static volatile sig_atomic_t stop_signal;

static void
on_stop_signal(int sig)
{
    int saved   = errno;
    stop_signal = sig;
    if (stop_fd >= 0) {
        char    b = 1;
        ssize_t n = write(stop_fd, &b, 1);
        (void) n; // a full pipe already holds a wake-up
    }
    errno = saved;
}

struct stopper {
    int              fds[2];
    anvil_client    *client;
    pthread_t        thread;
    struct sigaction old_int, old_term;
};

static void *
stopper_main(void *arg)
{
    struct stopper *s = arg;
    char            b;
    while (read(s->fds[0], &b, 1) < 0 && errno == EINTR)
        ;
    anvil_client_shutdown(s->client);
    return NULL;
}

// Installs the handlers and starts the thread. 0, or -1 (nothing is left
// installed).
static int
stopper_start(struct stopper *s, anvil_client *c)
{
    s->client = c;
    if (pipe(s->fds) != 0)
        return -1;
    if (pthread_create(&s->thread, NULL, stopper_main, s) != 0) {
        close(s->fds[0]);
        close(s->fds[1]);
        return -1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    stop_fd     = s->fds[1];
    stop_signal = 0;
    sigaction(SIGINT, &sa, &s->old_int);
    sigaction(SIGTERM, &sa, &s->old_term);
    return 0;
}

// Restores the handlers, wakes the thread (which shuts the client down:
// the verb is over) and joins it.
static void
stopper_stop(struct stopper *s)
{
    sigaction(SIGINT, &s->old_int, NULL);
    sigaction(SIGTERM, &s->old_term, NULL);
    stop_fd   = -1;
    char    b = 0;
    ssize_t n = write(s->fds[1], &b, 1);
    (void) n;
    pthread_join(s->thread, NULL);
    close(s->fds[0]);
    close(s->fds[1]);
}

// ---- Watching

static void
filter_from_opts(const struct cli_opts *o, struct anvil_event_filter *f)
{
    memset(f, 0, sizeof(*f));
    // A job's or a workflow's events are few: all of them by default.
    bool one       = o->job_id != NULL || o->workflow_id != NULL;
    f->after_seq   = o->has_since ? o->since : 0;
    f->tail        = o->has_since || one ? 0 : CLI_EVENTS_TAIL;
    f->job_id      = o->job_id;
    f->workflow_id = o->workflow_id;
    f->type        = o->type;
    f->queue       = o->queue;
    f->kinds       = o->kinds;
    f->n_kinds     = o->n_kinds;
    f->limit       = o->limit;
}

// Prints the list's events, each line flushed, and moves f past them.
static int
print_events(struct cli_ctx *x, const struct anvil_event_list *l,
    struct anvil_event_filter *f)
{
    if (l->missed)
        output_events_missed(x->err, f->after_seq, l->first_seq);
    for (size_t i = 0; i < l->n; i++) {
        int rc = CLI_EXIT_OK;
        if (x->opts->json)
            rc = cli_print_json(x, output_event_json(&l->events[i]));
        else
            output_event_human(x->out, &l->events[i]);
        if (fflush(x->out) != 0 || rc != CLI_EXIT_OK) {
            fprintf(x->err, "anvil: cannot write the events out\n");
            return CLI_EXIT_FAILED;
        }
    }
    if (l->next_seq > f->after_seq)
        f->after_seq = l->next_seq;
    return CLI_EXIT_OK;
}

// One watch: *more says whether a page may follow at once (the reply
// moved on and has not reached target, the newest seq when it started).
static int
watch_once(struct cli_ctx *x, struct anvil_event_filter *f, uint64_t *target,
    bool *more, struct anvil_error *err)
{
    struct anvil_event_list *l    = NULL;
    uint64_t                 from = f->after_seq;
    int                      rc   = anvil_event_watch(x->client, f, &l, err);
    *more                         = false;
    if (rc != ANVIL_OK)
        return rc;
    if (*target == 0)
        *target = l->last_seq;
    rc = print_events(x, l, f) == CLI_EXIT_OK ? ANVIL_OK : -1;
    // After the first page, tail no longer applies: after_seq leads.
    f->tail = 0;
    *more   = f->after_seq > from && f->after_seq < *target;
    anvil_event_list_free(l);
    return rc;
}

// Without --follow: what is there now, page after page, then exit.
static int
print_now(struct cli_ctx *x, struct anvil_event_filter *f)
{
    struct anvil_error err    = { 0, "" };
    uint64_t           target = 0;
    bool               more   = true;
    while (more) {
        int rc = watch_once(x, f, &target, &more, &err);
        if (rc < 0)
            return CLI_EXIT_FAILED;
        if (rc != ANVIL_OK)
            return cli_report(x, rc, &err);
    }
    return CLI_EXIT_OK;
}

// True for the codes a follower rides out: the server is restarting or
// out of reach; the SDK has waited a whole call timeout already.
static bool
transient(int rc)
{
    return rc == ANVIL_UNAVAILABLE || rc == ANVIL_DEADLINE_EXCEEDED;
}

static int
follow_loop(struct cli_ctx *x, struct anvil_event_filter *f)
{
    uint64_t target = 0;
    bool     more;
    bool     down = false; // a warning was printed for this outage
    for (;;) {
        struct anvil_error err = { 0, "" };
        f->timeout_ms          = FOLLOW_POLL_MS;
        int rc                 = watch_once(x, f, &target, &more, &err);
        if (stop_signal != 0)
            return CLI_EXIT_OK;
        if (rc < 0)
            return CLI_EXIT_FAILED;
        if (rc != ANVIL_OK && !transient(rc))
            return cli_report(x, rc, &err);
        if (rc != ANVIL_OK && !down)
            fprintf(x->err, "anvil: warning: %s; still trying\n", err.msg);
        down = rc != ANVIL_OK;
    }
}

static int
run_events(struct cli_ctx *x)
{
    struct anvil_event_filter f;
    filter_from_opts(x->opts, &f);
    if (!x->opts->follow)
        return print_now(x, &f);
    struct stopper s;
    if (stopper_start(&s, x->client) != 0) {
        fprintf(x->err, "anvil: cannot set up signal handling: %s\n",
            strerror(errno));
        return CLI_EXIT_FAILED;
    }
    int rc = follow_loop(x, &f);
    stopper_stop(&s);
    return rc;
}

// ---- Verb table entry

static const struct cli_flag events_flags[] = {
    { "--follow", NULL, set_follow },
    { "-f", NULL, set_follow },
    { "--since", "SEQ", set_since },
    { "--job", "ID", set_job },
    { "--workflow", "ID", set_workflow },
    { "--type", "T", cli_set_type },
    { "--queue", "Q", cli_set_queue },
    { "--kind", "K", set_kind },
    { "--limit", "N", cli_set_limit },
    { NULL, NULL, NULL },
};

const struct cli_verb cli_verb_events = {
    .name     = "events",
    .synopsis = "[--follow] [--since SEQ] [--job ID] [--workflow ID] "
                "[--type T] [--queue Q] [--kind K ...] [--limit N]",
    .summary  = "show the server's events (state changes), or follow them",
    .help
    = "Flags:\n"
      "  -f, --follow     keep waiting for new events until SIGINT or "
      "SIGTERM (exit 0)\n"
      "  --since SEQ      the events after SEQ (SEQ itself excluded; 0: "
      "from the\n"
      "                   oldest kept); default: the last 20 events\n"
      "  --job ID         only the events of job ID\n"
      "  --workflow ID    only the events of workflow ID and its steps\n"
      "  --type T, --queue Q  only the events of jobs of type T, in queue "
      "Q\n"
      "  --kind K         only events of kind K (repeat it, or K1,K2): "
      "job.submitted,\n"
      "                   job.started, job.retried, job.succeeded, "
      "job.failed,\n"
      "                   job.canceled, workflow.started, "
      "workflow.succeeded,\n"
      "                   workflow.failed, workflow.canceled, "
      "workflow.retried,\n"
      "                   worker.joined, worker.lost\n"
      "  --limit N        events asked for per request, 1..1000 (default "
      "100)\n"
      "\nOne line per event: TIME SEQ KIND, then its job (or workflow, or "
      "worker) and\nits fields as key=value, then \": message\". With "
      "--json, one object per line\n(not one in all): {\"seq\", \"kind\", "
      "\"at_ms\", \"job_id\", \"workflow_id\", \"step\",\n\"type\", "
      "\"queue\", \"worker\", \"attempt\", \"message\"}, empty strings as "
      "null.\nEach line is flushed at once. A consumer that restarts with "
      "--since <the\nlast seq it printed> sees every later event exactly "
      "once. When events were\ndeleted by retention before they were read, "
      "a warning on stderr says which.\n",
    .flags = events_flags,
    .run   = run_events,
};
