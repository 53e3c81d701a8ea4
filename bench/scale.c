// scale.c - the scale workload: one fresh anvild, first empty, then
// holding --queued Q jobs of a type no worker serves.
//   empty:   --jobs N jobs of the worker's type submitted with no worker
//            running (submit rate), then a worker started and timed while
//            it drains them (dispatch rate);
//   fill:    Q jobs of a type nobody serves, in batches of --fill-batch
//            (fill rate); anvild's VmRSS and RssAnon before and after give
//            the memory per queued job;
//   full:    the empty phase again, with the Q jobs queued; full / empty;
//   restart: SIGTERM, anvild started again on the same database, timed
//            from fork/exec to the first Health reply, which must still
//            count Q queued.
// Memory per queued job includes whatever SQLite's page cache grew by;
// the workload reports the most that cache may hold, for comparison.
#include "bench.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct scale {
    const struct bench_opts *o;
    struct bench_server     *s;
    anvil_client            *c;
    long                     jobs;     // per rate measured
    char                     type[64]; // the worker's
    char                     fill[64]; // nobody's
    _Atomic uint64_t         handled;
};

// What a run measured; added to the result at the end, in one order.
struct scale_figs {
    double submit[2]; // empty, full
    double dispatch[2];
    double fill_per_s, fill_s;
    double rss_kb[2], anon_kb[2]; // before, after the fill
    double cache_kb;
    double db_mib;
    double peak_kb;
    double stop_ms, start_ms, restart_rss_kb, restart_peak_kb;
    double restart_queued;
};

// The page cache anvild's one SQLite connection may use: anvild sets no
// cache_size (server/store.c), so it is the default of the SQLite library
// both programs link, read from a connection of our own. In KiB.
static double
sqlite_cache_kb(void)
{
    sqlite3      *db   = NULL;
    sqlite3_stmt *st   = NULL;
    double        v[2] = { NAN, NAN };
    const char   *q[2] = { "PRAGMA cache_size", "PRAGMA page_size" };
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) {
        sqlite3_close(db);
        return NAN;
    }
    for (int i = 0; i < 2; i++) {
        if (sqlite3_prepare_v2(db, q[i], -1, &st, NULL) == SQLITE_OK
            && sqlite3_step(st) == SQLITE_ROW)
            v[i] = (double) sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        st = NULL;
    }
    sqlite3_close(db);
    // cache_size < 0 is -KiB; > 0 is a number of pages.
    return v[0] < 0 ? -v[0] : v[0] * v[1] / 1024;
}

// Size of the database and its WAL, in MiB.
static double
db_mib(const struct bench_server *s)
{
    const char *names[] = { "anvil.db", "anvil.db-wal" };
    double      total   = 0;
    for (int i = 0; i < 2; i++) {
        char        path[128];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", s->dir, names[i]);
        if (stat(path, &st) == 0)
            total += (double) st.st_size;
    }
    return total / (1024.0 * 1024.0);
}

static void
submitter_init(struct submitter *sub, const struct scale *sc, const char *type,
    long jobs, int batch)
{
    memset(sub, 0, sizeof(*sub));
    sub->c         = sc->c;
    sub->type      = type;
    sub->jobs      = jobs;
    sub->batch     = batch;
    sub->producers = sc->o->producers;
}

// Submits sc->jobs jobs of the worker's type while no worker runs, then
// starts one and times it from its start to its last Complete reply.
static int
submit_and_drain(struct scale *sc, double *submit_rate, double *drain_rate)
{
    static struct submitter sub; // large (err); one at a time
    anvil_worker           *w = NULL;
    submitter_init(&sub, sc, sc->type, sc->jobs, sc->o->batch);
    if (bench_submit(&sub) != 0)
        return -1;
    *submit_rate = bench_submit_rate(&sub);
    atomic_store(&sc->handled, 0);
    int64_t t0 = bench_now_ns();
    if (bench_worker_start(sc->s, sc->o->workers, sc->type, bench_noop_handler,
            &sc->handled, &w)
        != 0)
        return -1;
    int64_t deadline = t0 + (60 + sc->jobs / 1000) * 1000000000LL;
    bool    ok
        = bench_wait_handled(w, &sc->handled, (uint64_t) sc->jobs, deadline);
    int64_t t1 = bench_now_ns();
    anvil_worker_free(w);
    if (!ok) {
        fprintf(stderr, "anvil-bench: only %llu of %ld jobs drained in time\n",
            (unsigned long long) atomic_load(&sc->handled), sc->jobs);
        return -1;
    }
    *drain_rate = (double) sc->jobs / ((double) (t1 - t0) / 1e9);
    return bench_check_drained(sc->c, sc->type);
}

// Queues o->queued jobs nobody serves; reads anvild's memory around it.
static int
fill(struct scale *sc, struct scale_figs *f)
{
    static struct submitter sub;
    f->rss_kb[0]  = bench_server_status_kb(sc->s, "VmRSS");
    f->anon_kb[0] = bench_server_status_kb(sc->s, "RssAnon");
    submitter_init(&sub, sc, sc->fill, sc->o->queued, sc->o->fill_batch);
    if (bench_submit(&sub) != 0)
        return -1;
    f->rss_kb[1]  = bench_server_status_kb(sc->s, "VmRSS");
    f->anon_kb[1] = bench_server_status_kb(sc->s, "RssAnon");
    f->fill_per_s = bench_submit_rate(&sub);
    f->fill_s     = (double) (sub.t1 - sub.t0) / 1e9;
    f->db_mib     = db_mib(sc->s);
    uint64_t queued;
    uint64_t running;
    if (bench_depth(sc->c, sc->fill, &queued, &running) != 0)
        return -1;
    if (queued == (uint64_t) sc->o->queued)
        return 0;
    fprintf(stderr, "anvil-bench: Health counts %llu queued of %s, not %ld\n",
        (unsigned long long) queued, sc->fill, sc->o->queued);
    return -1;
}

// Restarts anvild on the same database; Health must count the queue.
static int
restart(struct scale *sc, struct scale_figs *f)
{
    anvil_client_close(sc->c); // it dials the old port
    sc->c      = NULL;
    f->peak_kb = bench_server_peak_rss_kb(sc->s);
    if (bench_server_restart(sc->o, sc->s, &f->stop_ms, &f->start_ms) != 0)
        return -1;
    f->restart_rss_kb  = bench_server_status_kb(sc->s, "VmRSS");
    f->restart_peak_kb = bench_server_peak_rss_kb(sc->s);
    uint64_t queued;
    uint64_t running;
    if (bench_client_open(sc->s, &sc->c) != 0
        || bench_depth(sc->c, sc->fill, &queued, &running) != 0)
        return -1;
    f->restart_queued = (double) queued;
    if (queued == (uint64_t) sc->o->queued && running == 0)
        return 0;
    fprintf(stderr,
        "anvil-bench: after the restart Health counts %llu queued and %llu "
        "running of %s, not %ld queued\n",
        (unsigned long long) queued, (unsigned long long) running, sc->fill,
        sc->o->queued);
    return -1;
}

// (after - before) KiB over q jobs, in bytes per job.
static double
per_job(double before_kb, double after_kb, double minus_kb, double q)
{
    double d = (after_kb - before_kb - minus_kb) * 1024 / q;
    return d > 0 ? d : 0;
}

static void
add_figures(struct result *r, const struct scale *sc, struct scale_figs *f)
{
    double q = (double) sc->o->queued;
    result_add(r, "submit_empty_per_s", "empty server: submit rate", "jobs/s",
        f->submit[0]);
    result_add(r, "dispatch_empty_per_s", "empty server: dispatch rate",
        "jobs/s", f->dispatch[0]);
    result_add(r, "fill_per_s", "fill: submit rate of the queued jobs",
        "jobs/s", f->fill_per_s);
    result_add(r, "fill_s", "fill: elapsed", "s", f->fill_s);
    result_add(r, "submit_full_per_s", "full server: submit rate", "jobs/s",
        f->submit[1]);
    result_add(r, "dispatch_full_per_s", "full server: dispatch rate", "jobs/s",
        f->dispatch[1]);
    result_add(r, "submit_ratio", "submit rate, full / empty", "x",
        f->submit[1] / f->submit[0]);
    result_add(r, "dispatch_ratio", "dispatch rate, full / empty", "x",
        f->dispatch[1] / f->dispatch[0]);
    result_add(r, "rss_empty_mib", "anvild VmRSS before the fill", "MiB",
        f->rss_kb[0] / 1024);
    result_add(r, "rss_full_mib", "anvild VmRSS with the queue full", "MiB",
        f->rss_kb[1] / 1024);
    result_add(r, "bytes_per_queued_job",
        "memory per queued job: VmRSS (full - empty) / queued", "B",
        per_job(f->rss_kb[0], f->rss_kb[1], 0, q));
    result_add(r, "anon_bytes_per_queued_job",
        "memory per queued job: RssAnon (full - empty) / queued", "B",
        per_job(f->anon_kb[0], f->anon_kb[1], 0, q));
    result_add(r, "page_cache_kib", "SQLite page cache anvild may use", "KiB",
        f->cache_kb);
    result_add(r, "bytes_per_queued_job_beyond_cache",
        "memory per queued job: (VmRSS delta - page cache) / queued", "B",
        per_job(f->rss_kb[0], f->rss_kb[1], f->cache_kb, q));
    result_add(
        r, "db_mib", "database + WAL with the queue full", "MiB", f->db_mib);
    result_add(r, "server_peak_rss_mib",
        "anvild peak RSS (VmHWM) before the restart", "MiB", f->peak_kb / 1024);
    result_add(
        r, "stop_ms", "restart: SIGTERM -> anvild exited", "ms", f->stop_ms);
    result_add(r, "restart_ms", "restart: exec -> first Health reply", "ms",
        f->start_ms);
    result_add(r, "restart_queued", "restart: queued jobs Health reports",
        "jobs", f->restart_queued);
    result_add(r, "rss_restarted_mib", "restart: anvild VmRSS when serving",
        "MiB", f->restart_rss_kb / 1024);
    result_add(r, "restart_peak_rss_mib",
        "restart: anvild peak RSS (VmHWM) when serving", "MiB",
        f->restart_peak_kb / 1024);
    result_add(r, "restart_bytes_per_queued_job",
        "restart: (VmRSS serving - VmRSS empty before the fill) / queued", "B",
        per_job(f->rss_kb[0], f->restart_rss_kb, 0, q));
}

static void
describe(const struct bench_opts *o, long jobs, struct result *r)
{
    char how[300];
    bench_describe_submit(o, how, sizeof(how));
    r->workload = "scale";
    snprintf(r->sizes, sizeof(r->sizes),
        "jobs=%ld queued=%ld batch=%d producers=%d fill_batch=%d workers=%d "
        "payload=%dB",
        jobs, o->queued, o->batch, o->producers, o->fill_batch, o->workers,
        BENCH_PAYLOAD);
    snprintf(r->notes, sizeof(r->notes),
        "on a fresh anvild: %ld jobs submitted with no worker running (%s) "
        "give the submit rate; then a worker with %d slots, started on the "
        "clock, drains them: the dispatch rate (worker start -> last "
        "Complete reply); then %ld jobs of a type no worker serves are "
        "queued in batches of %d (fill rate), and the submit and dispatch "
        "rates are measured again with them queued; memory per queued job "
        "is anvild's VmRSS (and RssAnon) after the fill minus before, over "
        "%ld; it includes SQLite's page cache growth, at most the page "
        "cache size shown (anvild sets no cache_size, so SQLite's default "
        "applies to its one connection); restart: SIGTERM, then anvild on "
        "the same database, from fork/exec to the first Health reply, "
        "which must count all %ld jobs queued",
        jobs, how, o->workers, o->queued, o->fill_batch, o->queued, o->queued);
}

// One job through a worker of our type, so that the first measured phase
// pays no first-time costs (connections, the server's first sight of the
// worker and the type) that the second would not.
static int
warm_up(struct scale *sc)
{
    anvil_worker *w  = NULL;
    int           rc = bench_worker_start(
                  sc->s, sc->o->workers, sc->type, bench_noop_handler, &sc->handled, &w);
    if (rc == 0)
        rc = bench_warm_up(sc->c, sc->type);
    anvil_worker_free(w);
    return rc;
}

static int
scale_measure(struct scale *sc, struct result *r)
{
    struct scale_figs f;
    memset(&f, 0, sizeof(f));
    f.cache_kb = sqlite_cache_kb();
    int rc     = warm_up(sc);
    if (rc == 0)
        rc = submit_and_drain(sc, &f.submit[0], &f.dispatch[0]);
    if (rc == 0)
        rc = fill(sc, &f);
    if (rc == 0)
        rc = submit_and_drain(sc, &f.submit[1], &f.dispatch[1]);
    if (rc == 0)
        rc = restart(sc, &f);
    if (rc == 0)
        add_figures(r, sc, &f);
    return rc;
}

int
bench_scale(const struct bench_opts *o, struct bench_server *s, long jobs,
    struct result *r)
{
    static struct scale sc; // one run at a time
    memset(&sc, 0, sizeof(sc));
    sc.o    = o;
    sc.s    = s;
    sc.jobs = jobs;
    bench_type_name(sc.type, sizeof(sc.type), "drain");
    bench_type_name(sc.fill, sizeof(sc.fill), "queued");
    describe(o, jobs, r);
    if (s->pid <= 0) {
        fprintf(stderr,
            "anvil-bench: --workload scale reads anvild's memory "
            "and restarts it: it needs its own anvild, not "
            "--server\n");
        return -1;
    }
    int rc = bench_client_open(s, &sc.c);
    if (rc == 0)
        rc = scale_measure(&sc, r);
    anvil_client_close(sc.c);
    return rc;
}
