// flows.c - the workflow workload, in three phases on one server:
//   load:   C chains of S steps submitted at once by 32 producer threads;
//           steps/s, and step advance while ~C chains compete for slots;
//   serial: up to 50 of those chains run one at a time: step advance on an
//           otherwise idle server (what the latency target is about);
//   fan:    one workflow root -> F parallel steps -> join.
// Step advance is measured in the worker: (child handler start) - (parent
// handler end), both on this process's monotonic clock, pairing steps by
// the chain and step numbers each step's payload carries. The issue asks
// for "parent's Complete reply -> child's Poll reply", but the worker
// library reports outcomes asynchronously, in batches, so no handler sees
// the parent's reply. Handler end -> handler start is stricter: it covers
// the whole report (the wait in the report batch, the request, the commit,
// the reply), then the child's Poll reply (or prefetch) and its hand-off to
// a slot.
#include "bench.h"

#include <anvil/worker.h>
#include <anvil/workflow.h>

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERIAL_MAX 50

enum phase { PH_LOAD, PH_SERIAL, PH_FAN, PH_N };

// Handler timestamps of one phase: start/end of step (a, b) at a * cols + b.
struct marks {
    int64_t *start;
    int64_t *end;
    int      rows;
    int      cols;
};

struct wfb {
    anvil_client    *c;
    const char      *type;
    int              chains; // load phase
    int              steps;
    int              serial; // serial phase chains
    int              fan;
    struct marks     m[PH_N];
    _Atomic uint64_t handled;
    _Atomic bool     failed; // a load-phase producer failed
    char           **ids;    // workflow id of each load chain
};

// Payload "<phase> <a> <b>": which phase, chain (or 0), step.
static int
step_handler(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    int64_t     t0 = bench_now_ns();
    struct wfb *b  = arg;
    int         ph, a, s;
    (void) ctx;
    if (sscanf((const char *) lease->job.payload, "%d %d %d", &ph, &a, &s) != 3
        || ph < 0 || ph >= PH_N || a < 0 || a >= b->m[ph].rows || s < 0
        || s >= b->m[ph].cols) {
        anvil_job_ctx_set_error(ctx, false, "bad bench payload");
        return ANVIL_INVALID_ARGUMENT;
    }
    struct marks *m           = &b->m[ph];
    m->start[a * m->cols + s] = t0;
    m->end[a * m->cols + s]   = bench_now_ns();
    atomic_fetch_add(&b->handled, 1);
    return ANVIL_OK;
}

static int
marks_init(struct marks *m, int rows, int cols)
{
    m->rows  = rows;
    m->cols  = cols;
    m->start = calloc((size_t) rows * (size_t) cols, sizeof(int64_t));
    m->end   = calloc((size_t) rows * (size_t) cols, sizeof(int64_t));
    return m->start != NULL && m->end != NULL ? 0 : -1;
}

static void
marks_fini(struct marks *m)
{
    free(m->start);
    free(m->end);
}

// Builds chain `a` of phase ph: steps s0 -> s1 -> ... -> s<n-1>.
static int
build_chain(const struct wfb *b, int ph, int a, anvil_workflow_spec **out,
    struct anvil_error *e)
{
    char **names = calloc((size_t) b->steps, sizeof(char *));
    char   buf[64];
    int    rc = names == NULL ? ANVIL_RESOURCE_EXHAUSTED : ANVIL_OK;
    if (rc == ANVIL_OK)
        rc = anvil_workflow_spec_new(out, "bench-chain", e);
    for (int s = 0; rc == ANVIL_OK && s < b->steps; s++) {
        names[s] = malloc(16);
        if (names[s] == NULL) {
            rc = ANVIL_RESOURCE_EXHAUSTED;
            break;
        }
        snprintf(names[s], 16, "s%d", s);
        snprintf(buf, sizeof(buf), "%d %d %d", ph, a, s);
        rc = anvil_workflow_spec_add_step(
            *out, names[s], b->type, buf, strlen(buf), NULL, e);
    }
    if (rc == ANVIL_OK)
        rc = anvil_workflow_spec_add_chain(
            *out, (const char *const *) names, (size_t) b->steps, e);
    for (int s = 0; names != NULL && s < b->steps; s++)
        free(names[s]);
    free(names);
    if (rc == ANVIL_RESOURCE_EXHAUSTED)
        snprintf(e->msg, sizeof(e->msg), "out of memory");
    return rc;
}

static int
submit_chain(struct wfb *b, int ph, int a, char **id)
{
    anvil_workflow_spec *wf = NULL;
    struct anvil_error   e  = { 0 };
    int                  rc = build_chain(b, ph, a, &wf, &e);
    if (rc == ANVIL_OK)
        rc = anvil_workflow_submit(b->c, wf, id, NULL, &e);
    anvil_workflow_spec_free(wf);
    if (rc != ANVIL_OK)
        fprintf(stderr, "anvil-bench: SubmitWorkflow: %s\n", e.msg);
    return rc;
}

// ---- load phase ----

// Producer k submits load chains k, k + 32, ...
static void
produce(void *arg, int k)
{
    struct wfb *b = arg;
    for (int a = k; a < b->chains && !b->failed; a += BENCH_PRODUCERS) {
        if (submit_chain(b, PH_LOAD, a, &b->ids[a]) != ANVIL_OK)
            b->failed = true;
    }
}

// Waits for a workflow to end and checks that it SUCCEEDED.
static int
wait_workflow(anvil_client *c, const char *id)
{
    struct anvil_workflow *wf = NULL;
    struct anvil_error     e  = { 0 };
    int                    rc = anvil_workflow_wait(c, id, 60000, &wf, &e);
    if (rc == ANVIL_OK && wf->state != ANVIL_WORKFLOW_SUCCEEDED) {
        snprintf(e.msg, sizeof(e.msg), "workflow %s ended %s: %s", id,
            anvil_workflow_state_name(wf->state), wf->error);
        rc = ANVIL_INTERNAL;
    }
    anvil_workflow_free(wf);
    if (rc != ANVIL_OK)
        fprintf(stderr, "anvil-bench: WaitWorkflow %s: %s\n", id, e.msg);
    return rc == ANVIL_OK ? 0 : -1;
}

// Step advances of phase ph, rows chains of b->steps: child start - parent
// end, in microseconds. Returns the count; *out is the caller's.
static size_t
chain_advances(const struct wfb *b, int ph, int rows, double **out)
{
    const struct marks *m = &b->m[ph];
    size_t              n = 0;
    *out = calloc((size_t) rows * (size_t) b->steps + 1, sizeof(double));
    if (*out == NULL)
        return 0;
    for (int a = 0; a < rows; a++) {
        for (int s = 1; s < b->steps; s++) {
            int64_t d = m->start[a * m->cols + s] - m->end[a * m->cols + s - 1];
            (*out)[n++] = (double) d / 1e3;
        }
    }
    return n;
}

struct count_arg {
    struct wfb *b;
    uint64_t    target;
};

static bool
count_reached(void *arg)
{
    struct count_arg *a = arg;
    return atomic_load(&a->b->handled) >= a->target;
}

// Waits until `target` handler calls and `target` Complete replies.
static int
wait_steps(struct wfb *b, anvil_worker *w, uint64_t target)
{
    struct count_arg a = { b, target };
    int64_t          deadline
        = bench_now_ns() + (60 + (int64_t) target / 500) * 1000000000LL;
    if (bench_wait_until(count_reached, &a, deadline)
        && bench_wait_succeeded(w, target, deadline))
        return 0;
    fprintf(stderr,
        "anvil-bench: only %llu of %llu workflow steps ran in "
        "time\n",
        (unsigned long long) atomic_load(&b->handled),
        (unsigned long long) target);
    return -1;
}

static int
load_phase(struct wfb *b, anvil_worker *w, struct result *r)
{
    int64_t t0, ts;
    if (bench_produce(BENCH_PRODUCERS, produce, b, &t0, &ts) != 0 || b->failed)
        return -1;
    uint64_t total = (uint64_t) b->chains * (uint64_t) b->steps;
    if (wait_steps(b, w, total) != 0)
        return -1;
    int64_t end = bench_now_ns();
    for (int a = 0; a < b->chains; a++) {
        if (wait_workflow(b->c, b->ids[a]) != 0)
            return -1;
    }
    double secs = (double) (end - t0) / 1e9;
    result_add(r, "steps_per_s",
        "chains: steps (first submit -> last "
        "complete)",
        "steps/s", (double) total / secs);
    result_add(r, "workflows_submit_per_s", "chains: submit rate", "wf/s",
        (double) b->chains / ((double) (ts - t0) / 1e9));
    result_add(r, "chains_elapsed_s", "chains: elapsed", "s", secs);
    double *adv = NULL;
    size_t  n   = chain_advances(b, PH_LOAD, b->chains, &adv);
    result_add_pcts(r, "advance_loaded",
        "chains: step advance (parent end -> child start), under load", adv, n,
        false);
    free(adv);
    return 0;
}

// ---- serial phase ----

static int
serial_phase(struct wfb *b, anvil_worker *w, struct result *r)
{
    uint64_t done = atomic_load(&b->handled);
    for (int a = 0; a < b->serial; a++) {
        char *id = NULL;
        int   rc = submit_chain(b, PH_SERIAL, a, &id) == ANVIL_OK
              ? wait_workflow(b->c, id)
              : -1;
        anvil_free(id);
        if (rc != 0)
            return -1;
    }
    if (wait_steps(b, w, done + (uint64_t) b->serial * (uint64_t) b->steps))
        return -1;
    double *adv = NULL;
    size_t  n   = chain_advances(b, PH_SERIAL, b->serial, &adv);
    result_add_pcts(r, "advance",
        "step advance (parent end -> child start), one chain at a time", adv, n,
        true);
    free(adv);
    return 0;
}

// ---- fan phase ----

static int
build_fan(const struct wfb *b, anvil_workflow_spec **out, struct anvil_error *e)
{
    char **names = calloc((size_t) b->fan, sizeof(char *));
    char   buf[64];
    int    rc = names == NULL ? ANVIL_RESOURCE_EXHAUSTED : ANVIL_OK;
    if (rc == ANVIL_OK)
        rc = anvil_workflow_spec_new(out, "bench-fan", e);
    // Row 0 of the marks: root at 0, children at 1..fan, join at fan + 1.
    snprintf(buf, sizeof(buf), "%d 0 0", PH_FAN);
    if (rc == ANVIL_OK)
        rc = anvil_workflow_spec_add_step(
            *out, "root", b->type, buf, strlen(buf), NULL, e);
    for (int i = 0; rc == ANVIL_OK && i < b->fan; i++) {
        names[i] = malloc(16);
        if (names[i] == NULL) {
            rc = ANVIL_RESOURCE_EXHAUSTED;
            break;
        }
        snprintf(names[i], 16, "f%d", i);
        snprintf(buf, sizeof(buf), "%d 0 %d", PH_FAN, i + 1);
        rc = anvil_workflow_spec_add_step(
            *out, names[i], b->type, buf, strlen(buf), NULL, e);
    }
    snprintf(buf, sizeof(buf), "%d 0 %d", PH_FAN, b->fan + 1);
    if (rc == ANVIL_OK)
        rc = anvil_workflow_spec_add_step(
            *out, "join", b->type, buf, strlen(buf), NULL, e);
    if (rc == ANVIL_OK)
        rc = anvil_workflow_spec_add_group(*out, "root",
            (const char *const *) names, (size_t) b->fan, "join", e);
    for (int i = 0; names != NULL && i < b->fan; i++)
        free(names[i]);
    free(names);
    if (rc == ANVIL_RESOURCE_EXHAUSTED)
        snprintf(e->msg, sizeof(e->msg), "out of memory");
    return rc;
}

static void
fan_figures(const struct wfb *b, int64_t secs_ns, struct result *r)
{
    const struct marks *m        = &b->m[PH_FAN];
    int64_t             root_end = m->end[0];
    int64_t             first    = m->start[1];
    int64_t             last     = m->start[1];
    int64_t             last_end = m->end[1];
    for (int i = 2; i <= b->fan; i++) {
        first    = m->start[i] < first ? m->start[i] : first;
        last     = m->start[i] > last ? m->start[i] : last;
        last_end = m->end[i] > last_end ? m->end[i] : last_end;
    }
    result_add(r, "fan_steps_per_s", "fan: steps (submit -> WaitWorkflow)",
        "steps/s", (double) (b->fan + 2) / ((double) secs_ns / 1e9));
    result_add(
        r, "fan_elapsed_ms", "fan: elapsed", "ms", (double) secs_ns / 1e6);
    result_add(r, "fanout_first_us", "fan: root end -> first child start", "us",
        (double) (first - root_end) / 1e3);
    result_add(r, "fanout_last_us", "fan: root end -> last child start", "us",
        (double) (last - root_end) / 1e3);
    result_add(r, "fanin_us", "fan: last child end -> join start", "us",
        (double) (m->start[b->fan + 1] - last_end) / 1e3);
}

static int
fan_phase(struct wfb *b, anvil_worker *w, struct result *r)
{
    uint64_t             done = atomic_load(&b->handled);
    anvil_workflow_spec *wf   = NULL;
    struct anvil_error   e    = { 0 };
    char                *id   = NULL;
    int                  rc   = build_fan(b, &wf, &e);
    int64_t              t0   = bench_now_ns();
    if (rc == ANVIL_OK)
        rc = anvil_workflow_submit(b->c, wf, &id, NULL, &e);
    anvil_workflow_spec_free(wf);
    if (rc != ANVIL_OK) {
        fprintf(stderr, "anvil-bench: fan workflow: %s\n", e.msg);
        return -1;
    }
    rc          = wait_workflow(b->c, id);
    int64_t end = bench_now_ns();
    anvil_free(id);
    if (rc != 0 || wait_steps(b, w, done + (uint64_t) b->fan + 2) != 0)
        return -1;
    fan_figures(b, end - t0, r);
    return 0;
}

// ---- the workload ----

static int
workflow_measure(
    struct wfb *b, anvil_worker *w, struct bench_server *s, struct result *r)
{
    double cpu0  = bench_server_cpu_s(s);
    double self0 = bench_self_cpu_s();
    if (load_phase(b, w, r) != 0 || serial_phase(b, w, r) != 0
        || bench_advance(s, b->c, r) != 0 || fan_phase(b, w, r) != 0)
        return -1;
    double steps = (double) b->chains * b->steps + (double) b->serial * b->steps
        + b->fan + 2 + 2 * (50 + 2);
    bench_add_server_figs(r, s, cpu0, self0, steps);
    return bench_check_drained(b->c, b->type);
}

static void
describe(const struct bench_opts *o, const struct wfb *b, struct result *r)
{
    r->workload = "workflow";
    snprintf(r->sizes, sizeof(r->sizes),
        "chains=%d steps=%d serial_chains=%d fan=1->%d->1 workers=%d "
        "producers=%d",
        b->chains, b->steps, b->serial, b->fan, o->workers, BENCH_PRODUCERS);
    snprintf(r->notes, sizeof(r->notes),
        "chains are submitted by %d producer threads (synchronous "
        "anvil_workflow_submit), one worker with %d slots runs no-op steps; "
        "step advance (parent end -> child start) = child handler start - "
        "parent handler end, on one monotonic clock in the worker: it "
        "includes the parent's whole report (batch wait, Report request, "
        "commit, reply) and the child's Poll reply, so it is stricter than "
        "the issue's 'parent Complete reply -> child Poll reply', which the "
        "worker library's async reports hide; 'under load' has all chains "
        "competing for the slots, 'one chain at a time' runs %d chains "
        "serially; raw rpcs: 50 parent -> child workflows run with "
        "anvil_job_complete() and a parked anvil_lease_poll(), giving the "
        "issue's "
        "'parent Complete reply -> child Poll reply' (both replies leave "
        "after the same commit) and 'Complete call -> child Poll reply' "
        "(one commit-bound hop); fan: one workflow root -> %d -> join",
        BENCH_PRODUCERS, o->workers, b->serial, b->fan);
}

int
bench_workflow(const struct bench_opts *o, struct bench_server *s, int chains,
    int steps, int fan, struct result *r)
{
    static struct wfb b; // one run at a time
    char              type[64];
    anvil_worker     *w = NULL;
    memset(&b, 0, sizeof(b));
    bench_type_name(type, sizeof(type), "step");
    b.type   = type;
    b.chains = chains;
    b.steps  = steps;
    b.serial = chains < SERIAL_MAX ? chains : SERIAL_MAX;
    b.fan    = fan;
    describe(o, &b, r);
    int rc = -1;
    b.ids  = calloc((size_t) chains, sizeof(char *));
    if (b.ids == NULL || marks_init(&b.m[PH_LOAD], chains, steps) != 0
        || marks_init(&b.m[PH_SERIAL], b.serial, steps) != 0
        || marks_init(&b.m[PH_FAN], 1, fan + 2) != 0) {
        fprintf(stderr, "anvil-bench: out of memory\n");
        goto out;
    }
    rc = bench_client_open(s, &b.c);
    if (rc == 0)
        rc = bench_worker_start(s, o->workers, type, step_handler, &b, &w);
    if (rc == 0)
        rc = workflow_measure(&b, w, s, r);
out:
    anvil_worker_free(w);
    anvil_client_close(b.c);
    for (int a = 0; b.ids != NULL && a < chains; a++)
        anvil_free(b.ids[a]);
    free(b.ids);
    for (int ph = 0; ph < PH_N; ph++)
        marks_fini(&b.m[ph]);
    return rc;
}
