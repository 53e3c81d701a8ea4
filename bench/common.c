// common.c - what every workload does around its measurement: names,
// clients, workers, the drained check and the resource figures.
#include "bench.h"

#include <anvil/worker.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void
bench_type_name(char *buf, size_t len, const char *what)
{
    static int n;
    snprintf(buf, len, "bench.%s.%d.%d", what, (int) getpid(), ++n);
}

int
bench_client_open(const struct bench_server *s, anvil_client **out)
{
    struct anvil_error e = { 0 };
    if (anvil_client_open(out, s->url, &e) != ANVIL_OK) {
        fprintf(stderr, "anvil-bench: client for %s: %s\n", s->url, e.msg);
        return -1;
    }
    anvil_client_set_timeout(*out, 30000, NULL);
    return 0;
}

int
bench_worker_start(const struct bench_server *s, int slots, const char *type,
    anvil_handler_fn fn, void *arg, anvil_worker **out)
{
    struct anvil_worker_opts wo = { 0 };
    struct anvil_error       e  = { 0 };
    char                     name[64];
    snprintf(name, sizeof(name), "anvil-bench-%d", (int) getpid());
    wo.url   = s->url;
    wo.name  = name;
    wo.slots = slots;
    // anvil_worker_stop() waits for a parked Poll to end: keep it short so
    // a run ends promptly. A Poll with work waiting returns at once.
    wo.poll_wait_ms = 1000;
    *out            = NULL;
    int rc          = anvil_worker_new(out, &wo, &e);
    if (rc == ANVIL_OK)
        rc = anvil_worker_add_handler(*out, type, fn, arg, &e);
    if (rc == ANVIL_OK)
        rc = anvil_worker_start(*out, &e);
    if (rc == ANVIL_OK)
        return 0;
    fprintf(stderr, "anvil-bench: worker: %s\n", e.msg);
    anvil_worker_free(*out);
    *out = NULL;
    return -1;
}

struct succeeded_arg {
    anvil_worker *w;
    uint64_t      target;
};

static bool
succeeded_reached(void *arg)
{
    struct succeeded_arg     *a  = arg;
    struct anvil_worker_stats st = { 0 };
    anvil_worker_get_stats(a->w, &st);
    return st.succeeded >= a->target;
}

bool
bench_wait_succeeded(anvil_worker *w, uint64_t target, int64_t deadline_ns)
{
    struct succeeded_arg a = { w, target };
    return bench_wait_until(succeeded_reached, &a, deadline_ns);
}

struct handled_arg {
    _Atomic uint64_t *handled;
    uint64_t          target;
};

static bool
handled_reached(void *arg)
{
    struct handled_arg *a = arg;
    return atomic_load(a->handled) >= a->target;
}

bool
bench_wait_handled(anvil_worker *w, _Atomic uint64_t *handled, uint64_t target,
    int64_t deadline_ns)
{
    struct handled_arg a = { handled, target };
    return bench_wait_until(handled_reached, &a, deadline_ns)
        && bench_wait_succeeded(w, target, deadline_ns);
}

int
bench_depth(
    anvil_client *c, const char *type, uint64_t *queued, uint64_t *running)
{
    struct anvil_health *h = NULL;
    struct anvil_error   e = { 0 };
    *queued                = 0;
    *running               = 0;
    if (anvil_health_get(c, &h, &e) != ANVIL_OK) {
        fprintf(stderr, "anvil-bench: Health: %s\n", e.msg);
        return -1;
    }
    for (size_t i = 0; i < h->n_depths; i++) {
        if (strcmp(h->depths[i].type, type) == 0) {
            *queued += h->depths[i].queued;
            *running += h->depths[i].running;
        }
    }
    anvil_health_free(h);
    return 0;
}

int
bench_check_drained(anvil_client *c, const char *type)
{
    uint64_t queued;
    uint64_t running;
    if (bench_depth(c, type, &queued, &running) != 0)
        return -1;
    if (queued + running == 0)
        return 0;
    fprintf(stderr,
        "anvil-bench: %llu jobs of %s are still queued or running after "
        "the last completion\n",
        (unsigned long long) (queued + running), type);
    return -1;
}

void
bench_add_server_figs(struct result *r, const struct bench_server *s,
    double cpu0, double self_cpu0, double units)
{
    double cpu  = bench_server_cpu_s(s) - cpu0;
    double self = bench_self_cpu_s() - self_cpu0;
    double rss  = bench_server_peak_rss_kb(s);
    result_add(r, "server_cpu_s", "server CPU", "s", cpu);
    result_add(r, "server_cpu_us_per_unit", "server CPU per job/step", "us",
        units > 0 ? cpu / units * 1e6 : NAN);
    result_add(
        r, "bench_cpu_s", "bench process CPU (clients+worker)", "s", self);
    result_add(
        r, "server_peak_rss_mib", "server peak RSS (VmHWM)", "MiB", rss / 1024);
}

int
bench_noop_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) lease;
    (void) ctx;
    _Atomic uint64_t *handled = arg;
    atomic_fetch_add(handled, 1);
    return ANVIL_OK;
}

int
bench_warm_up(anvil_client *c, const char *type)
{
    struct anvil_error e  = { 0 };
    char              *id = NULL;
    int rc = anvil_job_submit(c, type, "{}", 2, NULL, &id, NULL, &e);
    struct anvil_job *job = NULL;
    if (rc == ANVIL_OK)
        rc = anvil_job_wait(c, id, 30000, &job, &e);
    if (rc == ANVIL_OK && job->state != ANVIL_JOB_SUCCEEDED)
        rc = ANVIL_INTERNAL;
    anvil_job_free(job);
    anvil_free(id);
    if (rc == ANVIL_OK)
        return 0;
    fprintf(stderr, "anvil-bench: warm-up job did not succeed: %s\n",
        e.msg[0] != '\0' ? e.msg : anvil_code_name(rc));
    return -1;
}

// ---- producer threads ----

struct crew {
    void (*fn)(void *arg, int k);
    void           *arg;
    pthread_mutex_t mu; // guards go and abort
    pthread_cond_t  cv;
    bool            go;
    bool            abort; // not every thread started: run nothing
    int64_t         first[BENCH_MAX_PRODUCERS];
    int64_t         last[BENCH_MAX_PRODUCERS];
};

struct member {
    struct crew *crew;
    int          k;
};

static void *
member_main(void *p)
{
    struct member *m = p;
    struct crew   *c = m->crew;
    pthread_mutex_lock(&c->mu);
    while (!c->go)
        pthread_cond_wait(&c->cv, &c->mu);
    bool abort = c->abort;
    pthread_mutex_unlock(&c->mu);
    c->first[m->k] = bench_now_ns();
    if (!abort)
        c->fn(c->arg, m->k);
    c->last[m->k] = bench_now_ns();
    return NULL;
}

int
bench_produce(
    int n, void (*fn)(void *arg, int k), void *arg, int64_t *t0, int64_t *t1)
{
    static struct crew c; // one crew at a time, from the main thread
    pthread_t          th[BENCH_MAX_PRODUCERS];
    struct member      m[BENCH_MAX_PRODUCERS];
    int                started = 0;
    if (n < 1 || n > BENCH_MAX_PRODUCERS) {
        fprintf(stderr, "anvil-bench: %d producers; 1 to %d work\n", n,
            BENCH_MAX_PRODUCERS);
        return -1;
    }
    memset(&c, 0, sizeof(c));
    c.fn  = fn;
    c.arg = arg;
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    for (int k = 0; k < n; k++) {
        m[k] = (struct member) { &c, k };
        if (pthread_create(&th[k], NULL, member_main, &m[k]) != 0)
            break;
        started++;
    }
    pthread_mutex_lock(&c.mu);
    c.go    = true; // all start at once
    c.abort = started < n;
    pthread_cond_broadcast(&c.cv);
    pthread_mutex_unlock(&c.mu);
    for (int k = 0; k < started; k++)
        pthread_join(th[k], NULL);
    pthread_cond_destroy(&c.cv);
    pthread_mutex_destroy(&c.mu);
    if (c.abort) {
        fprintf(
            stderr, "anvil-bench: could not start %d producer threads\n", n);
        return -1;
    }
    *t0 = c.first[0];
    *t1 = c.last[0];
    for (int k = 1; k < n; k++) {
        *t0 = c.first[k] < *t0 ? c.first[k] : *t0;
        *t1 = c.last[k] > *t1 ? c.last[k] : *t1;
    }
    return 0;
}
