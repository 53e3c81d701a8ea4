// bench.h - anvil-bench: the benchmark harness of make bench.
//
// anvil-bench starts its own anvild (server.c) on a temporary database, or
// uses a running one (--server URL), runs real workers through the worker
// library over the real transport, and measures workloads end to end:
// throughput and latency (jobs.c), workflows (flows.c), and a server with
// a million queued jobs (scale.c). Jobs are submitted in batches
// (submit.c), through the SDK (nng) or anvild's HTTP/JSON endpoint with a
// raw-socket HTTP/1.1 client (http.c); the http workload (compare.c) sets
// the two transports, and metrics on and off, side by side. Each run of a
// workload fills a struct result with named figures; main.c repeats runs, takes
// the median of each figure and prints a table or JSON (report.c).
//
// Only the public API (anvil/anvil.h, anvil/worker.h, anvil/workflow.h) is
// used, as any client program would; scale.c also asks the SQLite library
// anvild links for its default page cache size. Threads: the main thread
// runs the workloads; producers and worker slots are threads of a workload
// run.
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <anvil/anvil.h>
#include <anvil/worker.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_PRODUCERS 32     // workflow submitters: one call per thread
#define BENCH_MAX_PRODUCERS 64 // most threads bench_produce() runs
#define BENCH_PAYLOAD 32       // bytes of a throughput job's payload
#define BENCH_MAX_FIGS 80
#define BENCH_HTTP_CONNS 32 // the http workload's producers / connections

// Command-line options; main.c fills them.
struct bench_opts {
    const char *workload;   // throughput, latency, workflow, scale or all
    long        jobs;       // -1: the workload's default
    long        warmup;     // latency warm-up jobs
    int         workers;    // worker slots
    int         batch;      // jobs per submit call (1: anvil_job_submit)
    int         producers;  // submitting threads, each one call at a time
    long        queued;     // scale: jobs queued in the full server
    long        keys;       // limits: concurrency keys
    int         fill_batch; // scale: jobs per submit call of the fill
    int         chains;     // workflow chains
    int         steps;      // steps per chain
    int         fan;        // fan-out width (1 -> fan -> 1)
    const char *durability; // full or normal
    const char *transport;  // how jobs are submitted: nng or http
    const char *http_url;   // --http: the HTTP endpoint of --server
    bool        serve_http; // start anvild with --http (own anvild)
    bool        no_metrics; // start anvild with --no-metrics
    bool        no_events;  // start anvild with --no-events
    bool        json;
    int         runs;
    const char *server_url; // NULL: start our own anvild
    const char *anvild;     // path of the anvild binary
    const char *store;      // PostgreSQL conninfo for anvild --store; NULL
                            // = an SQLite file in the run's directory
};

// One figure of a result: key (JSON), label and unit (table), value. NAN
// means not measured (printed as null / "-").
struct fig {
    const char *key;
    const char *label;
    const char *unit;
    double      v;
};

// What one run of a workload measured. Every run of a workload adds the
// same figures in the same order, so medians are taken index by index.
struct result {
    const char *workload;
    char        sizes[200];  // "jobs=100000 workers=4 producers=32"
    char        notes[1200]; // what was measured, in words
    struct fig  figs[BENCH_MAX_FIGS];
    int         n;
};

// A started anvild (or a server someone else runs: pid 0).
struct bench_server {
    pid_t pid;
    int   port;    // loopback port of our anvild; 0 with --server
    char  dir[64]; // mkdtemp directory holding the database and log
    char  url[128];
    char  log[96];
    int   http_port;     // our anvild's HTTP port; 0: none
    char  http_url[128]; // "" when the server serves no HTTP we know of
};

// ---- server.c ----

// Starts anvild on a free loopback port and a fresh database in a new
// temporary directory, and waits until it answers Health. With
// o->server_url set, just checks that server answers. Returns 0, or -1
// after printing why.
int bench_server_start(const struct bench_opts *o, struct bench_server *s);

// Sends SIGTERM, waits for anvild to exit and removes its directory.
// Returns 0, or -1 if it did not stop cleanly (printed).
int bench_server_stop(struct bench_server *s);

// CPU seconds (user + system) anvild has used so far; NAN if not ours.
double bench_server_cpu_s(const struct bench_server *s);

// Peak resident set (VmHWM) of anvild in KiB; NAN if not ours.
double bench_server_peak_rss_kb(const struct bench_server *s);

// A field of anvild's /proc/<pid>/status in KiB now, e.g. "VmRSS" or
// "RssAnon"; NAN if not ours or not there.
double bench_server_status_kb(const struct bench_server *s, const char *field);

// Stops our anvild with SIGTERM (*stop_ms: SIGTERM -> exit), then starts
// it again on the same database and a free port (s->url changes) and
// waits until it answers Health (*start_ms: fork/exec -> the first Health
// reply). Only for a server we started. Returns 0, or -1 (printed).
int bench_server_restart(const struct bench_opts *o, struct bench_server *s,
    double *stop_ms, double *start_ms);

// ---- stats.c ----

// Monotonic time in nanoseconds.
int64_t bench_now_ns(void);

// CPU seconds this process has used (all threads).
double bench_self_cpu_s(void);

// Sorts v[0..n-1] and returns its p-th percentile (0..100, nearest rank);
// NAN when n is 0.
double bench_percentile(double *v, size_t n, double p);

// The median of v[0..n-1] ignoring NANs (v is reordered); NAN if none.
double bench_median(double *v, size_t n);

// Appends a figure to r (ignored past BENCH_MAX_FIGS).
void result_add(struct result *r, const char *key, const char *label,
    const char *unit, double v);

// Adds p50, p90 (if with_p90), p99 and max of v[0..n-1] (microseconds) as
// figures "<key>_p50_us"...; key and label must be string literals' life.
// The figure named key of r (NAN when r has none), and a / b (NAN when b
// is not positive): what the workloads that compare two runs divide.
double result_fig(const struct result *r, const char *key);
double result_ratio(double a, double b);

void result_add_pcts(struct result *r, const char *key, const char *label,
    double *v, size_t n, bool with_p90);

// Waits until cond(arg) is true or deadline_ns passes, checking every
// 0.2 ms. Returns true if the condition held.
bool bench_wait_until(bool (*cond)(void *), void *arg, int64_t deadline_ns);

// hops.c: the latency workload's per-hop breakdown. start sets the SDK's
// trace hook (every rpc of the process then asks anvild for its stamps)
// and makes room for `jobs` samples; sample reads the traces of the round
// trip that just ended (handler start and end in ns); report adds each
// segment's p50; stop clears the hook and frees h (NULL is fine).
struct bench_hops;
int  bench_hops_start(struct bench_hops **out, long jobs);
void bench_hops_sample(
    struct bench_hops *h, long i, int64_t start_ns, int64_t end_ns);
void bench_hops_report(struct bench_hops *h, struct result *r);
void bench_hops_stop(struct bench_hops *h);
// n raw nng REQ/REP round trips over tcp loopback: adds raw_nng p50, p99.
int bench_raw_nng(long n, struct result *r);

// advance.c: step advance with raw rpcs (part of the workflow workload):
// 50 two-step workflows, the parent completed with anvil_job_complete() and the
// child taken by a parked anvil_lease_poll(). Adds advance_rpc and
// advance_reply.
int bench_advance(struct bench_server *s, anvil_client *c, struct result *r);

// ---- submit.c: jobs submitted as fast as the SDK allows ----

// What bench_submit() is to do, and what it did. Fill the first block; the
// rest is bench_submit()'s.
struct submitter {
    anvil_client *c;
    const char   *type;
    long          jobs;      // submits jobs 0 .. jobs - 1
    int           batch;     // per call: 1 = anvil_job_submit, else _many
    int           producers; // threads, each with one call in flight
    const char   *http_url;  // NULL: the SDK (nng); else POST /v1/jobs
    // Results:
    int64_t          t0;      // first call made
    int64_t          t1;      // last reply received
    _Atomic uint64_t refused; // jobs the server answered with an error
    _Atomic bool     failed;  // a call failed or a job was refused
    pthread_mutex_t  mu;      // guards err
    char             err[300];
    // One keep-alive connection per producer, opened before the clock.
    struct bench_http *conns[BENCH_MAX_PRODUCERS];
};

// Submits s->jobs jobs of s->type with a BENCH_PAYLOAD-byte payload, each
// result checked, and fills the results of *s. Over HTTP, it first opens
// the producers' connections that are not open yet (outside the clock). Returns
// 0, or -1 (printed, with the number of refused jobs) on any failure.
int bench_submit(struct submitter *s);

// Closes the HTTP connections bench_submit() opened (none over nng).
void bench_submit_close(struct submitter *s);

// Jobs per second of a bench_submit() run.
double bench_submit_rate(const struct submitter *s);

// How o->batch and o->producers submit, in words, for a result's notes.
void bench_describe_submit(const struct bench_opts *o, char *buf, size_t len);

// ---- http.c: a raw-socket HTTP/1.1 client, one request at a time ----

struct bench_http;

// Connects to url ("http://IPv4:port"). Returns 0, or -1 with err filled.
// Caller owns *out; free with bench_http_close().
int bench_http_open(
    const char *url, struct bench_http **out, char *err, size_t errlen);

// Closes the connection and frees c. NULL is ignored.
void bench_http_close(struct bench_http *c);

// Sends `verb path` with body (NULL: none; else JSON of len bytes) and
// reads the whole answer on c's connection (redialled if the server closed
// it). *status is the HTTP status; the body is copied into resp (cut to
// cap - 1 bytes, NUL-terminated). Returns 0, or -1 with err filled.
int bench_http_request(struct bench_http *c, const char *verb, const char *path,
    const char *body, size_t len, int *status, char *resp, size_t cap,
    char *err, size_t errlen);

// The string value of the first "key":"..." in a JSON text (no escapes),
// copied into out. Returns 0, or -1 if absent or too long.
int bench_http_json_string(
    const char *body, const char *key, char *out, size_t len);

// How many times needle occurs in body.
size_t bench_http_count(const char *body, const char *needle);

// ---- jobs.c / flows.c / scale.c: one run each; 0 or -1 (printed) ----

int bench_throughput(const struct bench_opts *o, struct bench_server *s,
    long jobs, struct result *r);
int bench_latency(const struct bench_opts *o, struct bench_server *s, long jobs,
    struct result *r);
int bench_workflow(const struct bench_opts *o, struct bench_server *s,
    int chains, int steps, int fan, struct result *r);
int bench_scale(const struct bench_opts *o, struct bench_server *s, long jobs,
    struct result *r);

// compare.c: the http workload. Starts its own anvilds: one with metrics
// and --http, measuring single-submit throughput over nng and over HTTP
// (BENCH_HTTP_CONNS producers, one submit each in flight) and the submit
// latency of both; then one with --no-metrics, measuring the same nng
// throughput. Adds every figure and their ratios to r.
// The events workload (events_cost.c): throughput with events on and off.
int bench_events(const struct bench_opts *o, long jobs, struct result *r);

// limits.c: `jobs` plain jobs and `jobs` jobs over `keys` concurrency keys
// drained in turn from the same server; both rates and their ratio.
int bench_limits(const struct bench_opts *o, struct bench_server *s, long jobs,
    long keys, struct result *r);

int bench_compare(
    const struct bench_opts *o, long tp_jobs, long lat_jobs, struct result *r);

// ---- common.c: what every workload does around its measurement ----

// A job type unique to this process and run ("bench.noop.<pid>.<n>"), so
// jobs of another run on a shared server are never ours.
void bench_type_name(char *buf, size_t len, const char *what);

// A handler that counts its calls in *(_Atomic uint64_t *) arg.
int bench_noop_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx);

// Submits one job of `type` and waits until it SUCCEEDED: connects the
// client and the worker before a clock starts. 0, or -1 (printed).
int bench_warm_up(anvil_client *c, const char *type);

// Opens a client on s; prints and returns -1 on failure.
int bench_client_open(const struct bench_server *s, anvil_client **out);

// Starts a worker on s with `slots` slots and one handler for `type`.
// Prints and returns -1 on failure.
int bench_worker_start(const struct bench_server *s, int slots,
    const char *type, anvil_handler_fn fn, void *arg, anvil_worker **out);

// Waits until the worker has had `target` Complete replies (its stats), or
// deadline_ns passes. Returns true if reached.
bool bench_wait_succeeded(
    anvil_worker *w, uint64_t target, int64_t deadline_ns);

// Runs fn(arg, k) for k = 0 .. n - 1 (n <= BENCH_MAX_PRODUCERS), each on
// its own thread, all released at once. *t0 is the earliest start, *t1
// the latest return. Returns 0, or -1 (printed) if the threads could not
// be started.
int bench_produce(
    int n, void (*fn)(void *arg, int k), void *arg, int64_t *t0, int64_t *t1);

// Waits until the worker's handler calls, counted in *handled, reach
// `target`, and then its stats count `target` successes, or deadline_ns
// passes. Returns true if both were reached.
bool bench_wait_handled(anvil_worker *w, _Atomic uint64_t *handled,
    uint64_t target, int64_t deadline_ns);

// The queued and running jobs of `type` Health reports (summed over
// queues). Returns 0, or -1 (printed) if Health failed.
int bench_depth(
    anvil_client *c, const char *type, uint64_t *queued, uint64_t *running);

// Checks with Health that no job of `type` is queued or running. Returns 0,
// or -1 (printed) if some are left.
int bench_check_drained(anvil_client *c, const char *type);

// Server CPU and peak memory figures of a run: cpu0 is
// bench_server_cpu_s() at the start of the measurement, units the number of
// jobs or steps it covered.
void bench_add_server_figs(struct result *r, const struct bench_server *s,
    double cpu0, double self_cpu0, double units);

// ---- report.c ----

// Prints the machine (nproc, CPU model) once, before the tables.
void report_machine(const struct bench_opts *o);

// Prints the median result of `runs` runs: a table, or one JSON line.
void report_result(
    const struct bench_opts *o, const struct result *med, int runs);

// Fills med with the figure-by-figure median of runs[0..n-1].
void report_median(const struct result *runs, int n, struct result *med);

#endif
