// metrics.c - the counters and histograms behind GET /metrics, and their
// rendering in the Prometheus text format (0.0.4).
//
// Any-thread series (rpcs, syncs) are relaxed atomics: a scrape may see
// one rpc counted and not yet its duration, never a torn value. The queue
// and type series live in a table only the engine thread touches (it
// counts and it renders). Histograms keep one count per bucket; the
// cumulative counts, _count and the +Inf bucket are summed at render.
#include "metrics.h"

#include "handlers.h"
#include "store.h"
#include "util/hash.h"

#include <anvil/anvil.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_BUCKETS 16
#define N_CODES 17         // anvil codes, the gRPC numbers 0..16
#define N_TRANSPORTS 2     // nng, http
#define N_END_STATES 3     // succeeded, failed, canceled
#define OTHER_KEY "*\x1f*" // the series past METRICS_MAX_LABEL_SETS

// A histogram: counts[i] holds the values in (bound[i-1], bound[i]];
// counts[nb] those above the last bound.
struct hist {
    atomic_uint_least64_t counts[MAX_BUCKETS + 1];
    atomic_uint_least64_t sum; // in the family's unit (us, or a count)
};

// A histogram family's bounds: in microseconds (rendered as seconds) or
// plain counts.
struct bounds {
    const int64_t *v;
    size_t         n;
    bool           us;
};

#define BOUNDS(a, us)                   \
    {                                   \
        a, sizeof(a) / sizeof(a[0]), us \
    }

static const int64_t rpc_b[] = { 100, 250, 500, 1000, 2500, 5000, 10000, 25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000 };
static const int64_t io_b[]  = { 50, 100, 250, 500, 1000, 2500, 5000, 10000,
     25000, 50000, 100000, 250000, 500000, 1000000 };
static const int64_t wait_b[]
    = { 1000, 5000, 10000, 50000, 100000, 500000, 1000000, 5000000, 10000000,
          30000000, 60000000, 300000000, 600000000, 1800000000, 3600000000 };
static const int64_t run_b[] = { 10000, 50000, 100000, 500000, 1000000, 5000000,
    10000000, 30000000, 60000000, 300000000, 600000000, 1800000000, 3600000000,
    7200000000, 21600000000 };
static const int64_t batch_b[]
    = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096 };

static const struct bounds rpc_bounds   = BOUNDS(rpc_b, true);
static const struct bounds io_bounds    = BOUNDS(io_b, true);
static const struct bounds wait_bounds  = BOUNDS(wait_b, true);
static const struct bounds run_bounds   = BOUNDS(run_b, true);
static const struct bounds batch_bounds = BOUNDS(batch_b, false);

// One (queue, type) pair. Engine thread only.
struct series {
    char    *key; // "queue\x1ftype", the index's key
    char    *queue;
    char    *type;
    uint64_t submitted;
    uint64_t finished[N_END_STATES];
    bool     seen; // scratch for one render: it has a depth row
};

struct metrics {
    // Any thread.
    size_t                 n_methods;
    atomic_uint_least64_t *rpc_count; // [transport][method + 1][code]
    struct hist           *rpc_time;  // [transport][method + 1]
    struct hist            sync;
    double                 start_time; // process start, epoch s; 0 = unknown

    // Engine thread only.
    struct hist    wait, run, batch, commit;
    struct av_hash index; // key -> position in series
    struct series *series;
    size_t         n, cap;
};

static void
hist_add(struct hist *h, const struct bounds *b, int64_t v)
{
    if (v < 0)
        v = 0;
    size_t i = 0;
    while (i < b->n && v > b->v[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, (uint64_t) v, memory_order_relaxed);
}

// The start of this process in epoch seconds, from the kernel's boot time
// and the process's start in clock ticks after it; 0 if unknown.
static double
process_start(void)
{
    char               line[1024];
    unsigned long long btime = 0, ticks = 0;
    FILE              *f = fopen("/proc/stat", "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    }
    if (f != NULL)
        fclose(f);
    f             = fopen("/proc/self/stat", "r");
    const char *p = NULL;
    if (f != NULL && fgets(line, sizeof(line), f) != NULL)
        p = strrchr(line, ')'); // the command name may hold anything
    // Fields 3.. after ") ": starttime is field 22.
    if (p == NULL
        || sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d "
               "%*d %*d %*d %*d %*d %llu",
               &ticks)
            != 1)
        ticks = 0;
    if (f != NULL)
        fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (btime == 0 || ticks == 0 || hz <= 0)
        return 0;
    return (double) btime + (double) ticks / (double) hz;
}

struct metrics *
metrics_new(void)
{
    struct metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->n_methods = handlers_method_count();
    size_t nm    = N_TRANSPORTS * (m->n_methods + 1);
    m->rpc_count = calloc(nm * N_CODES, sizeof(*m->rpc_count));
    m->rpc_time  = calloc(nm, sizeof(*m->rpc_time));
    if (m->rpc_count == NULL || m->rpc_time == NULL
        || av_hash_init(&m->index, 16) != 0) {
        metrics_free(m);
        return NULL;
    }
    m->start_time = process_start();
    return m;
}

void
metrics_free(struct metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->series[i].key);
        free(m->series[i].queue);
        free(m->series[i].type);
    }
    free(m->series);
    av_hash_fini(&m->index);
    free(m->rpc_count);
    free(m->rpc_time);
    free(m);
}

void
metrics_rpc(struct metrics *m, enum metrics_transport t, int method, int code,
    int64_t us)
{
    if (m == NULL)
        return;
    size_t mi = method >= 0 && (size_t) method < m->n_methods
        ? (size_t) method + 1
        : 0; // unknown
    size_t ci = code >= 0 && code < N_CODES ? (size_t) code : ANVIL_UNKNOWN;
    size_t at = (t == METRICS_HTTP ? 1 : 0) * (m->n_methods + 1) + mi;
    atomic_fetch_add_explicit(
        &m->rpc_count[at * N_CODES + ci], 1, memory_order_relaxed);
    hist_add(&m->rpc_time[at], &rpc_bounds, us);
}

void
metrics_sync(struct metrics *m, int64_t us)
{
    if (m != NULL)
        hist_add(&m->sync, &io_bounds, us);
}

void
metrics_commit(struct metrics *m, size_t n, int64_t us)
{
    if (m == NULL)
        return;
    if (n > 0) // a batch of timers alone is timed, not sized
        hist_add(&m->batch, &batch_bounds, (int64_t) n);
    hist_add(&m->commit, &io_bounds, us);
}

static char *
dup_str(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

// Adds the series for key (queue \x1f type); NULL if out of memory.
static struct series *
series_add(struct metrics *m, const char *key, size_t qlen, size_t klen)
{
    if (m->n == m->cap) {
        size_t         cap = m->cap ? m->cap * 2 : 16;
        struct series *p   = realloc(m->series, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        m->series = p;
        m->cap    = cap;
    }
    struct series *s = &m->series[m->n];
    *s               = (struct series) { .key = dup_str(key, klen),
                      .queue                  = dup_str(key, qlen),
                      .type                   = dup_str(key + qlen + 1, klen - qlen - 1) };
    if (s->key == NULL || s->queue == NULL || s->type == NULL
        || av_hash_put(&m->index, s->key, m->n) != 0) {
        free(s->key);
        free(s->queue);
        free(s->type);
        return NULL;
    }
    return &m->series[m->n++];
}

// The series of (queue, type), added on first use; past the cap, the
// shared "*" series. NULL if out of memory (the count is then lost).
static struct series *
series_get(struct metrics *m, const char *queue, const char *type)
{
    char   small[2 * STORE_LABEL_LEN + 2];
    size_t ql = strlen(queue), tl = strlen(type), kl = ql + 1 + tl;
    char  *key = kl < sizeof(small) ? small : malloc(kl + 1);
    if (key == NULL)
        return NULL;
    memcpy(key, queue, ql);
    key[ql] = '\x1f';
    memcpy(key + ql + 1, type, tl + 1);
    size_t         at;
    struct series *s = NULL;
    if (av_hash_get(&m->index, key, &at))
        s = &m->series[at];
    else if (m->n < METRICS_MAX_LABEL_SETS)
        s = series_add(m, key, ql, kl);
    else if (av_hash_get(&m->index, OTHER_KEY, &at))
        s = &m->series[at];
    else
        s = series_add(m, OTHER_KEY, 1, 3);
    if (key != small)
        free(key);
    return s;
}

void
metrics_job_submitted(struct metrics *m, const char *queue, const char *type)
{
    struct series *s = m != NULL ? series_get(m, queue, type) : NULL;
    if (s != NULL)
        s->submitted++;
}

void
metrics_job_started(
    struct metrics *m, const char *queue, const char *type, int64_t wait_ms)
{
    (void) queue; // the wait histogram has no labels: keep series few
    (void) type;
    if (m != NULL)
        hist_add(&m->wait, &wait_bounds, wait_ms * 1000);
}

void
metrics_job_finished(struct metrics *m, const char *queue, const char *type,
    int state, int64_t run_ms)
{
    if (m == NULL)
        return;
    int            i = state == ANVIL_JOB_SUCCEEDED ? 0
                   : state == ANVIL_JOB_FAILED      ? 1
                   : state == ANVIL_JOB_CANCELED    ? 2
                                                    : -1;
    struct series *s = i >= 0 ? series_get(m, queue, type) : NULL;
    if (s != NULL)
        s->finished[i]++;
    if (run_ms >= 0)
        hist_add(&m->run, &run_bounds, run_ms * 1000);
}

// ---- rendering ----

// A growing text buffer; after a failed allocation it only records oom.
struct mbuf {
    char  *p;
    size_t len, cap;
    bool   oom;
};

static bool
reserve(struct mbuf *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p   = p;
    b->cap = cap;
    return true;
}

__attribute__((format(printf, 2, 3))) static void
put(struct mbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t) n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t) n;
}

// key="value", the value escaped as the text format asks (backslash,
// double quote, newline), after a comma unless first.
static void
label(struct mbuf *b, const char *key, const char *val, bool first)
{
    put(b, "%s%s=\"", first ? "" : ",", key);
    for (const char *c = val; *c != '\0'; c++) {
        if (!reserve(b, 2))
            return;
        if (*c == '\\' || *c == '"' || *c == '\n') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = *c == '\n' ? 'n' : *c;
        } else {
            b->p[b->len++] = *c;
        }
    }
    put(b, "\"");
}

static void
head(struct mbuf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

// A bound or sum in microseconds as seconds, exactly ("0.0025", "10").
static void
put_us(struct mbuf *b, uint64_t us, bool trim)
{
    char s[48];
    snprintf(s, sizeof(s), "%llu.%06llu", (unsigned long long) (us / 1000000),
        (unsigned long long) (us % 1000000));
    size_t n = strlen(s);
    while (trim && s[n - 1] == '0')
        n--;
    if (trim && s[n - 1] == '.')
        n--;
    put(b, "%.*s", (int) n, s);
}

// The _bucket, _sum and _count lines of one histogram; labels is "" or
// pre-rendered pairs.
static void
put_hist(struct mbuf *b, const char *name, const char *labels,
    const struct hist *h, const struct bounds *bd)
{
    const char *sep = labels[0] != '\0' ? "," : "";
    uint64_t    cum = 0;
    for (size_t i = 0; i <= bd->n; i++) {
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        put(b, "%s_bucket{%s%sle=\"", name, labels, sep);
        if (i == bd->n)
            put(b, "+Inf");
        else if (bd->us)
            put_us(b, (uint64_t) bd->v[i], true);
        else
            put(b, "%lld", (long long) bd->v[i]);
        put(b, "\"} %llu\n", (unsigned long long) cum);
    }
    uint64_t sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
    put(b, "%s_sum%s%s%s ", name, labels[0] ? "{" : "", labels,
        labels[0] ? "}" : "");
    if (bd->us)
        put_us(b, sum, false);
    else
        put(b, "%llu", (unsigned long long) sum);
    put(b, "\n%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
        labels[0] ? "}" : "", (unsigned long long) cum);
}

// Build info, whether this node serves, and the process_* series.
static void
put_process(struct mbuf *b, double start_time, bool leader)
{
    put(b,
        "# HELP anvil_build_info The running anvild's version.\n"
        "# TYPE anvil_build_info gauge\nanvil_build_info{");
    label(b, "version", ANVIL_VERSION, true);
    put(b, "} 1\n");
    head(b, "anvil_leader", "gauge",
        "1 on the anvild that serves (the leader, or the only node), 0 on a "
        "standby.");
    put(b, "anvil_leader %d\n", leader ? 1 : 0);
    if (start_time > 0) {
        head(b, "process_start_time_seconds", "gauge",
            "Start time of the process since unix epoch in seconds.");
        put(b, "process_start_time_seconds %.2f\n", start_time);
    }
    unsigned long long size, rss;
    FILE              *f = fopen("/proc/self/statm", "r");
    if (f != NULL && fscanf(f, "%llu %llu", &size, &rss) == 2) {
        head(b, "process_resident_memory_bytes", "gauge",
            "Resident memory size in bytes.");
        put(b, "process_resident_memory_bytes %llu\n",
            rss * (unsigned long long) sysconf(_SC_PAGESIZE));
    }
    if (f != NULL)
        fclose(f);
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return;
    long           n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    head(b, "process_open_fds", "gauge", "Number of open file descriptors.");
    put(b, "process_open_fds %ld\n", n - 1); // less the one reading the dir
}

static const char *const end_names[N_END_STATES]
    = { "succeeded", "failed", "canceled" };

static void
put_jobs(struct mbuf *b, const struct metrics *m)
{
    head(b, "anvil_jobs_submitted_total", "counter",
        "Jobs created (workflow steps included), by queue and type.");
    for (size_t i = 0; i < m->n; i++) {
        const struct series *s = &m->series[i];
        put(b, "anvil_jobs_submitted_total{");
        label(b, "queue", s->queue, true);
        label(b, "type", s->type, false);
        put(b, "} %llu\n", (unsigned long long) s->submitted);
    }
    head(b, "anvil_jobs_finished_total", "counter",
        "Jobs that reached a final state, by queue, type and state.");
    for (size_t i = 0; i < m->n; i++) {
        for (int k = 0; k < N_END_STATES; k++) {
            const struct series *s = &m->series[i];
            put(b, "anvil_jobs_finished_total{");
            label(b, "queue", s->queue, true);
            label(b, "type", s->type, false);
            label(b, "state", end_names[k], false);
            put(b, "} %llu\n", (unsigned long long) s->finished[k]);
        }
    }
}

static void
put_depth(struct mbuf *b, const char *queue, const char *type,
    const char *state, uint64_t v)
{
    put(b, "anvil_queue_depth{");
    label(b, "queue", queue, true);
    label(b, "type", type, false);
    label(b, "state", state, false);
    put(b, "} %llu\n", (unsigned long long) v);
}

// Depths from the store, and 0 for every pair the table knows without a
// row, so a drained queue reads 0 rather than vanishing.
static void
put_depths(struct mbuf *b, struct metrics *m, const struct metrics_state *st)
{
    head(b, "anvil_queue_depth", "gauge",
        "Jobs queued (ready) and running, by queue and type.");
    for (size_t i = 0; i < m->n; i++)
        m->series[i].seen = false;
    char key[2 * STORE_LABEL_LEN + 2];
    for (size_t i = 0; i < st->n_depths; i++) {
        const struct store_depth *d = &st->depths[i];
        size_t                    at;
        snprintf(key, sizeof(key), "%s\x1f%s", d->queue, d->type);
        if (av_hash_get(&m->index, key, &at))
            m->series[at].seen = true;
        put_depth(b, d->queue, d->type, "queued", d->queued);
        put_depth(b, d->queue, d->type, "running", d->running);
    }
    for (size_t i = 0; i < m->n; i++) {
        const struct series *s = &m->series[i];
        if (s->seen || strcmp(s->key, OTHER_KEY) == 0)
            continue;
        put_depth(b, s->queue, s->type, "queued", 0);
        put_depth(b, s->queue, s->type, "running", 0);
    }
}

static uint64_t
rpc_total(const struct metrics *m, size_t at)
{
    uint64_t n = 0;
    for (size_t k = 0; k <= rpc_bounds.n; k++)
        n += atomic_load_explicit(
            &m->rpc_time[at].counts[k], memory_order_relaxed);
    return n;
}

static const char *
method_name(int i)
{
    const char *s = handlers_method_name(i);
    return s != NULL ? s : "unknown";
}

static void
put_rpc(struct mbuf *b, const struct metrics *m)
{
    static const char *const tname[N_TRANSPORTS] = { "nng", "http" };
    size_t                   per                 = m->n_methods + 1;
    head(b, "anvil_rpc_requests_total", "counter",
        "Rpcs answered, by transport, method and code.");
    for (size_t at = 0; at < N_TRANSPORTS * per; at++) {
        for (int c = 0; c < N_CODES; c++) {
            uint64_t v = atomic_load_explicit(
                &m->rpc_count[at * N_CODES + (size_t) c], memory_order_relaxed);
            if (v == 0)
                continue;
            put(b, "anvil_rpc_requests_total{");
            label(b, "transport", tname[at / per], true);
            label(b, "method", method_name((int) (at % per) - 1), false);
            label(b, "code", anvil_code_name(c), false);
            put(b, "} %llu\n", (unsigned long long) v);
        }
    }
    head(b, "anvil_rpc_duration_seconds", "histogram",
        "Time from request received to reply handed to the transport "
        "(long-polls included), by transport and method.");
    for (size_t at = 0; at < N_TRANSPORTS * per; at++) {
        if (rpc_total(m, at) == 0)
            continue;
        struct mbuf l = { 0 };
        label(&l, "transport", tname[at / per], true);
        label(&l, "method", method_name((int) (at % per) - 1), false);
        if (l.oom) {
            b->oom = true;
            return;
        }
        put_hist(b, "anvil_rpc_duration_seconds", l.p, &m->rpc_time[at],
            &rpc_bounds);
        free(l.p);
    }
}

static void
put_histograms(struct mbuf *b, const struct metrics *m)
{
    head(b, "anvil_job_wait_seconds", "histogram",
        "Time a job waited from ready (its run_at) to its lease.");
    put_hist(b, "anvil_job_wait_seconds", "", &m->wait, &wait_bounds);
    head(b, "anvil_job_run_seconds", "histogram",
        "Time from lease to final state of a job's last attempt.");
    put_hist(b, "anvil_job_run_seconds", "", &m->run, &run_bounds);
    head(b, "anvil_commit_batch_size", "histogram",
        "Commands (requests) per committed batch.");
    put_hist(b, "anvil_commit_batch_size", "", &m->batch, &batch_bounds);
    head(b, "anvil_commit_seconds", "histogram", "Time of one batch's COMMIT.");
    put_hist(b, "anvil_commit_seconds", "", &m->commit, &io_bounds);
    head(b, "anvil_sync_seconds", "histogram",
        "Time of one durable sync (fdatasync of the WAL) of committed "
        "batches.");
    put_hist(b, "anvil_sync_seconds", "", &m->sync, &io_bounds);
}

static void
put_engine(struct mbuf *b, const struct metrics_state *st)
{
    head(b, "anvil_workers", "gauge", "Workers known, by state.");
    put(b, "anvil_workers{state=\"live\"} %u\n", st->workers_live);
    put(b, "anvil_workers{state=\"lost\"} %u\n", st->workers_lost);
    head(b, "anvil_long_polls_parked", "gauge",
        "Long-polls waiting in the engine, by kind.");
    put(b, "anvil_long_polls_parked{kind=\"poll\"} %u\n", st->parked_polls);
    put(b, "anvil_long_polls_parked{kind=\"wait_job\"} %u\n", st->parked_waits);
    put(b, "anvil_long_polls_parked{kind=\"wait_workflow\"} %u\n",
        st->parked_flows);
    // Totals only: there may be tens of thousands of keys (Health lists
    // the busiest).
    head(b, "anvil_concurrency_keys", "gauge",
        "Concurrency keys held by queued or running jobs.");
    put(b, "anvil_concurrency_keys %" PRIu64 "\n", st->concurrency_keys);
    head(b, "anvil_concurrency_key_jobs", "gauge",
        "Jobs under a concurrency key: running, or waiting for the key's "
        "limit.");
    put(b, "anvil_concurrency_key_jobs{state=\"running\"} %" PRIu64 "\n",
        st->concurrency_running);
    put(b, "anvil_concurrency_key_jobs{state=\"waiting\"} %" PRIu64 "\n",
        st->concurrency_waiting);
}

int
metrics_render(
    struct metrics *m, const struct metrics_state *s, char **text, size_t *len)
{
    struct mbuf b = { 0 };
    put_process(&b, m->start_time, true);
    put_jobs(&b, m);
    put_depths(&b, m, s);
    put_histograms(&b, m);
    put_rpc(&b, m);
    put_engine(&b, s);
    if (b.oom || !reserve(&b, 0)) {
        free(b.p);
        return ANVIL_RESOURCE_EXHAUSTED;
    }
    b.p[b.len] = '\0';
    *text      = b.p;
    *len       = b.len;
    return ANVIL_OK;
}

int
metrics_render_standby(char **text, size_t *len)
{
    struct mbuf b = { 0 };
    put_process(&b, process_start(), false);
    if (b.oom || !reserve(&b, 0)) {
        free(b.p);
        return ANVIL_RESOURCE_EXHAUSTED;
    }
    b.p[b.len] = '\0';
    *text      = b.p;
    *len       = b.len;
    return ANVIL_OK;
}
