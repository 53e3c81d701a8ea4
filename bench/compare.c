// compare.c - the http workload: what anvild's HTTP/JSON endpoint costs
// against nng, and what counting for GET /metrics costs, each pair measured
// in the same run so that the ratios compare like with like.
//
// Anvild A (metrics on, the default; --http): the throughput workload with
// single submits over nng (--batch 1, BENCH_HTTP_CONNS producers sharing
// one SDK client), then the same over HTTP (one keep-alive connection per
// producer), then the latency workload over nng and over HTTP. Anvild B
// (--no-metrics; --http too, idle, so that metrics are the only
// difference): the nng throughput again, as the first measurement on a
// fresh database, as it is on A. The worker is the worker library over nng
// in every case: only the submits change transport.
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { TP_NNG, TP_HTTP, LAT_NNG, LAT_HTTP, TP_NNG_OFF, N_PARTS };

static const char *const part_names[N_PARTS]
    = { "nng throughput", "http throughput", "nng latency", "http latency",
          "nng throughput, --no-metrics" };

static void
progress(const struct bench_opts *o, int part)
{
    if (!o->json)
        fprintf(stderr, "anvil-bench: http: %s ...\n", part_names[part]);
}

static int
part(const struct bench_opts *o, struct bench_server *s, int which, long jobs,
    struct result *res)
{
    struct bench_opts p = *o;
    p.transport = which == TP_HTTP || which == LAT_HTTP ? "http" : "nng";
    progress(o, which);
    if (which == LAT_NNG || which == LAT_HTTP)
        return bench_latency(&p, s, jobs, &res[which]);
    return bench_throughput(&p, s, jobs, &res[which]);
}

// Anvild A: metrics on; both transports' throughput and latency.
static int
on_metrics_server(
    const struct bench_opts *o, long tp_jobs, long lat_jobs, struct result *res)
{
    struct bench_server s;
    if (bench_server_start(o, &s) != 0)
        return -1;
    int rc = part(o, &s, TP_NNG, tp_jobs, res);
    if (rc == 0)
        rc = part(o, &s, TP_HTTP, tp_jobs, res);
    if (rc == 0)
        rc = part(o, &s, LAT_NNG, lat_jobs, res);
    if (rc == 0)
        rc = part(o, &s, LAT_HTTP, lat_jobs, res);
    if (bench_server_stop(&s) != 0)
        rc = -1;
    return rc;
}

// Anvild B: --no-metrics; the nng throughput only.
static int
on_quiet_server(const struct bench_opts *o, long tp_jobs, struct result *res)
{
    struct bench_opts   q = *o;
    struct bench_server s;
    q.no_metrics = true;
    if (bench_server_start(&q, &s) != 0)
        return -1;
    int rc = part(&q, &s, TP_NNG_OFF, tp_jobs, res);
    if (bench_server_stop(&s) != 0)
        rc = -1;
    return rc;
}

static void
add_throughput(struct result *r, const struct result *res)
{
    const struct result *n = &res[TP_NNG];
    const struct result *h = &res[TP_HTTP];
    result_add(r, "nng_jobs_per_s", "nng: single submits, end to end", "jobs/s",
        result_fig(n, "jobs_per_s"));
    result_add(r, "http_jobs_per_s", "HTTP: single submits, end to end",
        "jobs/s", result_fig(h, "jobs_per_s"));
    result_add(r, "ratio_http_nng_jobs", "HTTP / nng, end to end", "x",
        result_ratio(result_fig(h, "jobs_per_s"), result_fig(n, "jobs_per_s")));
    result_add(r, "nng_submit_only_per_s", "nng: submit rate, no worker",
        "jobs/s", result_fig(n, "submit_only_per_s"));
    result_add(r, "http_submit_only_per_s", "HTTP: submit rate, no worker",
        "jobs/s", result_fig(h, "submit_only_per_s"));
    result_add(r, "ratio_http_nng_submit_only", "HTTP / nng, submit rate", "x",
        result_ratio(result_fig(h, "submit_only_per_s"),
            result_fig(n, "submit_only_per_s")));
    result_add(r, "nng_server_cpu_us", "nng: server CPU per job (end to end)",
        "us", result_fig(n, "server_cpu_us_per_unit"));
    result_add(r, "http_server_cpu_us", "HTTP: server CPU per job (end to end)",
        "us", result_fig(h, "server_cpu_us_per_unit"));
}

static void
add_latency(struct result *r, const struct result *res)
{
    static const char *const keys[]      = { "submit_p50_us", "submit_p90_us",
             "submit_p99_us", "latency_p50_us" };
    static const char *const nng_keys[]  = { "nng_submit_p50_us",
         "nng_submit_p90_us", "nng_submit_p99_us", "nng_round_trip_p50_us" };
    static const char *const http_keys[] = { "http_submit_p50_us",
        "http_submit_p90_us", "http_submit_p99_us", "http_round_trip_p50_us" };
    static const char *const nng_labels[]
        = { "nng: submit call p50", "nng: submit call p90",
              "nng: submit call p99", "nng: submit + WaitJob round trip p50" };
    static const char *const http_labels[]
        = { "HTTP: submit call p50", "HTTP: submit call p90",
              "HTTP: submit call p99", "HTTP: submit + wait round trip p50" };
    for (int i = 0; i < 4; i++)
        result_add(r, nng_keys[i], nng_labels[i], "us",
            result_fig(&res[LAT_NNG], keys[i]));
    for (int i = 0; i < 4; i++)
        result_add(r, http_keys[i], http_labels[i], "us",
            result_fig(&res[LAT_HTTP], keys[i]));
    result_add(r, "ratio_http_nng_p50", "HTTP / nng, submit call p50", "x",
        result_ratio(result_fig(&res[LAT_HTTP], keys[0]),
            result_fig(&res[LAT_NNG], keys[0])));
}

static void
add_metrics_cost(struct result *r, const struct result *res)
{
    const struct result *on  = &res[TP_NNG];
    const struct result *off = &res[TP_NNG_OFF];
    result_add(r, "nometrics_jobs_per_s",
        "nng --no-metrics: single submits, end to end", "jobs/s",
        result_fig(off, "jobs_per_s"));
    result_add(r, "ratio_metrics_jobs", "metrics on / off, end to end", "x",
        result_ratio(
            result_fig(on, "jobs_per_s"), result_fig(off, "jobs_per_s")));
    result_add(r, "nometrics_submit_only_per_s",
        "nng --no-metrics: submit rate, no worker", "jobs/s",
        result_fig(off, "submit_only_per_s"));
    result_add(r, "ratio_metrics_submit_only", "metrics on / off, submit rate",
        "x",
        result_ratio(result_fig(on, "submit_only_per_s"),
            result_fig(off, "submit_only_per_s")));
    result_add(r, "nometrics_server_cpu_us",
        "nng --no-metrics: server CPU per job", "us",
        result_fig(off, "server_cpu_us_per_unit"));
}

int
bench_compare(
    const struct bench_opts *o, long tp_jobs, long lat_jobs, struct result *r)
{
    static struct result res[N_PARTS]; // large; one run at a time
    struct bench_opts    a = *o;
    if (o->server_url != NULL) {
        fprintf(stderr,
            "anvil-bench: the http workload starts its own anvilds (metrics "
            "on and off); it cannot use --server\n");
        return -1;
    }
    memset(res, 0, sizeof(res));
    a.batch      = 1;
    a.producers  = BENCH_HTTP_CONNS;
    a.serve_http = true;
    a.no_metrics = false;
    r->workload  = "http";
    snprintf(r->sizes, sizeof(r->sizes),
        "jobs=%ld latency_jobs=%ld workers=%d producers=%d payload=%dB",
        tp_jobs, lat_jobs, o->workers, BENCH_HTTP_CONNS, BENCH_PAYLOAD);
    snprintf(r->notes, sizeof(r->notes),
        "one anvild with metrics (the default) and --http: the throughput "
        "workload with single submits, %d producers with one submit each in "
        "flight, over nng (one SDK client) and then over HTTP (one "
        "keep-alive connection each, POST /v1/jobs); then the latency "
        "workload over nng and over HTTP (POST /v1/jobs, GET "
        "/v1/jobs/{id}?wait=30s). A second anvild with --no-metrics: the nng "
        "throughput again. The worker is the worker library over nng "
        "throughout. Targets: HTTP >= 10,000 jobs/s and >= 0.6x nng; HTTP "
        "submit p50 <= 1.5x nng",
        BENCH_HTTP_CONNS);
    int rc = on_metrics_server(&a, tp_jobs, lat_jobs, res);
    if (rc == 0)
        rc = on_quiet_server(&a, tp_jobs, res);
    if (rc != 0)
        return -1;
    add_throughput(r, res);
    add_latency(r, res);
    add_metrics_cost(r, res);
    return 0;
}
