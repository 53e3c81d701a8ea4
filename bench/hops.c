// hops.c - the latency workload's per-hop breakdown: where each
// microsecond of one job's round trip goes, from the SDK's trace hook
// (sdk/client_trace.h: the server's stamps in Reply.trace_us plus the
// client's own, one CLOCK_MONOTONIC on this machine), and one raw nng
// REQ/REP round trip for scale.
//
// A job's critical path: the producer's SubmitJob goes to anvild, is
// taken, applied, committed and synced; the same batch answers the
// worker's parked Poll; the worker's poll thread hands the job to a slot,
// the handler runs, the outcome goes out in a Report, which is taken,
// applied, committed and synced; its batch answers the producer's parked
// WaitJob. Each segment is a difference of two stamps of one job.
#include "bench.h"
#include "client_trace.h"

#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING 8

// The last traces of each rpc of interest, filled by the hook.
struct hop_log {
    pthread_mutex_t     mu;
    struct client_trace submit; // the producer's last SubmitJob
    struct client_trace wait;   // the producer's last WaitJob
    struct client_trace polls[RING];
    struct client_trace reports[RING];
    unsigned            n_polls, n_reports;
};

static struct hop_log hlog = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void
on_trace(void *arg, const struct client_trace *t)
{
    struct hop_log *l = arg;
    if (t->code != 0)
        return;
    pthread_mutex_lock(&l->mu);
    if (strcmp(t->method, "SubmitJob") == 0)
        l->submit = *t;
    else if (strcmp(t->method, "WaitJob") == 0)
        l->wait = *t;
    else if (strcmp(t->method, "Poll") == 0)
        l->polls[l->n_polls++ % RING] = *t;
    else if (strcmp(t->method, "Report") == 0)
        l->reports[l->n_reports++ % RING] = *t;
    pthread_mutex_unlock(&l->mu);
}

// The segments, in the order of the critical path.
enum seg {
    SEG_SUBMIT_IN,   // producer sends SubmitJob -> anvild decoded it
    SEG_SUBMIT_TAKE, // decoded -> taken by a batch
    SEG_SUBMIT_APPLY,
    SEG_SUBMIT_COMMIT,
    SEG_SUBMIT_SYNC,
    SEG_SUBMIT_REPLY, // synced -> SubmitJob reply handed to nng
    SEG_SUBMIT_OUT,   // -> the producer has it
    SEG_POLL_REPLY,   // synced -> the parked Poll's reply handed to nng
    SEG_POLL_OUT,     // -> the worker has it
    SEG_TO_HANDLER,   // worker has it -> handler start
    SEG_TO_REPORT,    // handler end -> Report sent
    SEG_REPORT_IN,
    SEG_REPORT_TAKE,
    SEG_REPORT_APPLY,
    SEG_REPORT_COMMIT,
    SEG_REPORT_SYNC,
    SEG_WAIT_REPLY, // synced -> the parked WaitJob's reply handed to nng
    SEG_WAIT_OUT,   // -> the producer has it
    SEG_N
};

static const char *const seg_key[SEG_N] = { "hop_submit_in", "hop_submit_take",
    "hop_submit_apply", "hop_submit_commit", "hop_submit_sync",
    "hop_submit_reply", "hop_submit_out", "hop_poll_reply", "hop_poll_out",
    "hop_to_handler", "hop_to_report", "hop_report_in", "hop_report_take",
    "hop_report_apply", "hop_report_commit", "hop_report_sync",
    "hop_wait_reply", "hop_wait_out" };

static const char *const seg_label[SEG_N] = {
    "hop: SubmitJob sent -> anvild decoded it p50",
    "hop:   SubmitJob decoded -> taken by a batch p50",
    "hop:   SubmitJob taken -> applied p50",
    "hop:   SubmitJob applied -> committed p50",
    "hop:   SubmitJob committed -> synced (fsync) p50",
    "hop:   SubmitJob synced -> reply to nng p50",
    "hop:   SubmitJob reply to nng -> producer has it p50",
    "hop: same batch synced -> Poll reply to nng p50",
    "hop:   Poll reply to nng -> worker has it p50",
    "hop:   worker has it -> handler start p50",
    "hop: handler end -> Report sent p50",
    "hop:   Report sent -> anvild decoded it p50",
    "hop:   Report decoded -> taken by a batch p50",
    "hop:   Report taken -> applied p50",
    "hop:   Report applied -> committed p50",
    "hop:   Report committed -> synced (fsync) p50",
    "hop:   same batch synced -> WaitJob reply to nng p50",
    "hop:   WaitJob reply to nng -> producer has it p50",
};

struct bench_hops {
    double *seg[SEG_N];
    long    n;
};

int
bench_hops_start(struct bench_hops **out, long jobs)
{
    struct bench_hops *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -1;
    for (int i = 0; i < SEG_N; i++) {
        h->seg[i] = calloc((size_t) jobs, sizeof(double));
        if (h->seg[i] == NULL) {
            bench_hops_stop(h);
            return -1;
        }
    }
    h->n                                       = jobs;
    static const struct client_trace_hook hook = { on_trace, &hlog };
    client_trace_set(&hook);
    *out = h;
    return 0;
}

void
bench_hops_stop(struct bench_hops *h)
{
    client_trace_set(NULL);
    if (h == NULL)
        return;
    for (int i = 0; i < SEG_N; i++)
        free(h->seg[i]);
    free(h);
}

// The Report that carried the job that ended at end_us: the first sent
// after it (its reply may reach the worker after the WaitJob's reply
// reached the producer: wait a little for it).
static bool
find_report(int64_t end_us, struct client_trace *out)
{
    int64_t deadline = bench_now_ns() + 200 * 1000000LL;
    for (;;) {
        bool found = false;
        pthread_mutex_lock(&hlog.mu);
        for (unsigned i = 0; i < RING && i < hlog.n_reports; i++) {
            const struct client_trace *t = &hlog.reports[i];
            if (t->sent_us >= end_us && (!found || t->sent_us < out->sent_us)) {
                *out  = *t;
                found = true;
            }
        }
        pthread_mutex_unlock(&hlog.mu);
        if (found || bench_now_ns() > deadline)
            return found;
        struct timespec nap = { 0, 50000 };
        nanosleep(&nap, NULL);
    }
}

// The Poll that delivered the job whose handler started at start_us: the
// last one whose reply came before.
static bool
find_poll(int64_t start_us, struct client_trace *out)
{
    bool found = false;
    pthread_mutex_lock(&hlog.mu);
    for (unsigned i = 0; i < RING && i < hlog.n_polls; i++) {
        const struct client_trace *t = &hlog.polls[i];
        if (t->reply_us <= start_us
            && (!found || t->reply_us > out->reply_us)) {
            *out  = *t;
            found = true;
        }
    }
    pthread_mutex_unlock(&hlog.mu);
    return found;
}

static double
d(int64_t a, int64_t b)
{
    return a > 0 && b > 0 ? (double) (b - a) : NAN;
}

// Fills sample i from the traces of the round trip that just ended.
void
bench_hops_sample(
    struct bench_hops *h, long i, int64_t start_ns, int64_t end_ns)
{
    struct client_trace s, w, p = { 0 }, r = { 0 };
    int64_t             start = start_ns / 1000, end = end_ns / 1000;
    pthread_mutex_lock(&hlog.mu);
    s = hlog.submit;
    w = hlog.wait;
    pthread_mutex_unlock(&hlog.mu);
    bool           have_p = find_poll(start, &p);
    bool           have_r = find_report(end, &r);
    const int64_t *ss = s.server_us, *ps = p.server_us, *rs = r.server_us;
    const int64_t *ws = w.server_us;
    double         v[SEG_N];
    v[SEG_SUBMIT_IN]    = d(s.sent_us, ss[CLIENT_TRACE_RECEIVED]);
    v[SEG_SUBMIT_TAKE]  = d(ss[CLIENT_TRACE_RECEIVED], ss[CLIENT_TRACE_TAKEN]);
    v[SEG_SUBMIT_APPLY] = d(ss[CLIENT_TRACE_TAKEN], ss[CLIENT_TRACE_APPLIED]);
    v[SEG_SUBMIT_COMMIT]
        = d(ss[CLIENT_TRACE_APPLIED], ss[CLIENT_TRACE_COMMITTED]);
    v[SEG_SUBMIT_SYNC] = d(ss[CLIENT_TRACE_COMMITTED], ss[CLIENT_TRACE_SYNCED]);
    v[SEG_SUBMIT_REPLY] = d(ss[CLIENT_TRACE_SYNCED], ss[CLIENT_TRACE_REPLIED]);
    v[SEG_SUBMIT_OUT]   = d(ss[CLIENT_TRACE_REPLIED], s.reply_us);
    v[SEG_POLL_REPLY]
        = have_p ? d(ps[CLIENT_TRACE_SYNCED], ps[CLIENT_TRACE_REPLIED]) : NAN;
    v[SEG_POLL_OUT]   = have_p ? d(ps[CLIENT_TRACE_REPLIED], p.reply_us) : NAN;
    v[SEG_TO_HANDLER] = have_p ? d(p.reply_us, start) : NAN;
    v[SEG_TO_REPORT]  = have_r ? d(end, r.sent_us) : NAN;
    v[SEG_REPORT_IN]  = have_r ? d(r.sent_us, rs[CLIENT_TRACE_RECEIVED]) : NAN;
    v[SEG_REPORT_TAKE]
        = have_r ? d(rs[CLIENT_TRACE_RECEIVED], rs[CLIENT_TRACE_TAKEN]) : NAN;
    v[SEG_REPORT_APPLY]
        = have_r ? d(rs[CLIENT_TRACE_TAKEN], rs[CLIENT_TRACE_APPLIED]) : NAN;
    v[SEG_REPORT_COMMIT] = have_r
        ? d(rs[CLIENT_TRACE_APPLIED], rs[CLIENT_TRACE_COMMITTED])
        : NAN;
    v[SEG_REPORT_SYNC]
        = have_r ? d(rs[CLIENT_TRACE_COMMITTED], rs[CLIENT_TRACE_SYNCED]) : NAN;
    v[SEG_WAIT_REPLY] = d(ws[CLIENT_TRACE_SYNCED], ws[CLIENT_TRACE_REPLIED]);
    v[SEG_WAIT_OUT]   = d(ws[CLIENT_TRACE_REPLIED], w.reply_us);
    for (int k = 0; k < SEG_N && i < h->n; k++)
        h->seg[k][i] = v[k];
}

// The p50 of each segment (NANs left out).
void
bench_hops_report(struct bench_hops *h, struct result *r)
{
    for (int k = 0; k < SEG_N; k++)
        result_add(r, seg_key[k], seg_label[k], "us",
            bench_median(h->seg[k], (size_t) h->n));
}

// ---- one raw nng REQ/REP round trip, for scale ----

struct echo {
    nng_socket sock;
};

static void *
echo_main(void *arg)
{
    struct echo *e = arg;
    for (;;) {
        nng_msg *m;
        if (nng_recvmsg(e->sock, &m, 0) != 0)
            return NULL;
        if (nng_sendmsg(e->sock, m, 0) != 0)
            nng_msg_free(m);
    }
}

// n round trips of a 64-byte message over tcp loopback between a REQ
// socket and a REP socket that echoes it from its own thread (both in this
// process; nng's own threads do the I/O as in anvild). Adds raw_nng p50
// and p99.
int
bench_raw_nng(long n, struct result *r)
{
    struct echo  e;
    nng_socket   req;
    nng_listener l;
    pthread_t    th;
    int          port = 0;
    char         url[64];
    double      *v  = calloc((size_t) n, sizeof(double));
    int          rv = v == NULL ? NNG_ENOMEM : nng_rep0_open(&e.sock);
    if (rv == 0 && (rv = nng_listen(e.sock, "tcp://127.0.0.1:0", &l, 0)) == 0)
        rv = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
    if (rv == 0 && pthread_create(&th, NULL, echo_main, &e) != 0)
        rv = NNG_ENOMEM;
    if (rv != 0) {
        fprintf(stderr, "anvil-bench: raw nng: %s\n", nng_strerror(rv));
        free(v);
        return -1;
    }
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
    rv = nng_req0_open(&req);
    if (rv == 0)
        rv = nng_dial(req, url, NULL, 0);
    uint8_t body[64] = { 0 };
    for (long i = -200; rv == 0 && i < n; i++) {
        nng_msg *m;
        int64_t  t0 = bench_now_ns();
        rv          = nng_msg_alloc(&m, 0);
        if (rv == 0 && (rv = nng_msg_append(m, body, sizeof(body))) == 0
            && (rv = nng_sendmsg(req, m, 0)) != 0)
            nng_msg_free(m);
        if (rv == 0 && (rv = nng_recvmsg(req, &m, 0)) == 0)
            nng_msg_free(m);
        if (i >= 0)
            v[i] = (double) (bench_now_ns() - t0) / 1e3;
    }
    nng_close(req);
    nng_close(e.sock);
    pthread_join(th, NULL);
    if (rv != 0)
        fprintf(stderr, "anvil-bench: raw nng: %s\n", nng_strerror(rv));
    else {
        result_add(r, "raw_nng_p50_us", "one raw nng REQ/REP round trip p50",
            "us", bench_percentile(v, (size_t) n, 50));
        result_add(r, "raw_nng_p99_us", "one raw nng REQ/REP round trip p99",
            "us", bench_percentile(v, (size_t) n, 99));
    }
    free(v);
    return rv == 0 ? 0 : -1;
}
