// advance.c - step advance as the protocol sees it, part of the workflow
// workload. Two-step workflows (parent -> child) of types no library
// worker serves; this file is the worker, with the SDK's raw calls: a
// thread keeps a Poll parked for the child's type while the main thread
// leases the parent and completes it. Per workflow:
//   Complete call -> child's Poll reply: the parent's Complete request,
//     the commit that readies the child (with its fsync at FULL), and the
//     child's Poll reply;
//   Complete reply -> child's Poll reply: the definition. Both
//     replies leave after the same commit, so this is the difference of
//     two replies' delivery (it may be negative).
#include "bench.h"

#include <anvil/workflow.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADVANCE_RUNS 50

struct adv {
    anvil_client   *child_client; // the child poller's own connection
    char            child_type[64];
    _Atomic int64_t child_ns; // when the child's Poll reply came; 0 = not yet
    _Atomic bool    stop;
    _Atomic bool    failed;
};

// Polls for child steps and completes each, recording when it came.
static void *
child_poller(void *arg)
{
    struct adv           *a     = arg;
    const char           *types = a->child_type;
    struct anvil_poll_req req   = { .worker_id = "bench-advance-child",
          .types                               = &types,
          .n_types                             = 1,
          .max_jobs                            = 1,
          .wait_ms                             = 1000 };
    while (!atomic_load(&a->stop)) {
        struct anvil_lease_list *l = NULL;
        struct anvil_error       e = { 0 };
        int     rc = anvil_lease_poll(a->child_client, &req, &l, &e);
        int64_t t  = bench_now_ns();
        if (rc != ANVIL_OK && atomic_load(&a->stop))
            break; // cut short by anvil_client_shutdown()
        if (rc != ANVIL_OK) {
            fprintf(stderr, "anvil-bench: advance: child Poll: %s\n", e.msg);
            atomic_store(&a->failed, true);
            break;
        }
        if (l->n == 1) {
            // Published once the child is complete, so that the main
            // thread's next workflow never overlaps this one.
            rc = anvil_job_complete(a->child_client, l->leases[0].job.id,
                l->leases[0].token, NULL, 0, &e);
            if (rc != ANVIL_OK) {
                fprintf(stderr, "anvil-bench: advance: child Complete: %s\n",
                    e.msg);
                atomic_store(&a->failed, true);
            }
            atomic_store(&a->child_ns, t);
        }
        anvil_lease_list_free(l);
    }
    return NULL;
}

static int
submit_pair(
    anvil_client *c, const char *parent_type, const char *child_type, char **id)
{
    anvil_workflow_spec *wf = NULL;
    struct anvil_error   e  = { 0 };
    int                  rc = anvil_workflow_spec_new(&wf, "bench-advance", &e);
    if (rc == ANVIL_OK)
        rc = anvil_workflow_spec_add_step(
            wf, "parent", parent_type, NULL, 0, NULL, &e);
    if (rc == ANVIL_OK)
        rc = anvil_workflow_spec_add_step(
            wf, "child", child_type, NULL, 0, NULL, &e);
    if (rc == ANVIL_OK)
        rc = anvil_workflow_spec_add_edge(wf, "child", "parent", &e);
    if (rc == ANVIL_OK)
        rc = anvil_workflow_submit(c, wf, id, NULL, &e);
    anvil_workflow_spec_free(wf);
    if (rc != ANVIL_OK)
        fprintf(stderr, "anvil-bench: advance: SubmitWorkflow: %s\n", e.msg);
    return rc;
}

// Leases the parent step of the workflow just submitted.
static int
lease_parent(
    anvil_client *c, const char *parent_type, struct anvil_lease_list **l)
{
    const char           *types = parent_type;
    struct anvil_poll_req req   = { .worker_id = "bench-advance-parent",
          .types                               = &types,
          .n_types                             = 1,
          .max_jobs                            = 1,
          .wait_ms                             = 5000 };
    struct anvil_error    e     = { 0 };
    int                   rc    = anvil_lease_poll(c, &req, l, &e);
    if (rc == ANVIL_OK && (*l)->n != 1) {
        anvil_lease_list_free(*l);
        *l = NULL;
        snprintf(e.msg, sizeof(e.msg), "no parent step within 5 s");
        rc = ANVIL_DEADLINE_EXCEEDED;
    }
    if (rc != ANVIL_OK)
        fprintf(stderr, "anvil-bench: advance: parent Poll: %s\n", e.msg);
    return rc;
}

static bool
child_arrived(void *arg)
{
    struct adv *a = arg;
    return atomic_load(&a->child_ns) != 0 || atomic_load(&a->failed);
}

// One workflow: the two intervals in microseconds.
static int
advance_once(anvil_client *c, struct adv *a, const char *parent_type,
    double *call_us, double *reply_us)
{
    char                    *id = NULL;
    struct anvil_lease_list *l  = NULL;
    struct anvil_error       e  = { 0 };
    if (submit_pair(c, parent_type, a->child_type, &id) != ANVIL_OK)
        return -1;
    anvil_free(id);
    if (lease_parent(c, parent_type, &l) != ANVIL_OK)
        return -1;
    atomic_store(&a->child_ns, 0);
    int64_t t0 = bench_now_ns();
    int     rc = anvil_job_complete(
            c, l->leases[0].job.id, l->leases[0].token, NULL, 0, &e);
    int64_t t1 = bench_now_ns();
    anvil_lease_list_free(l);
    if (rc != ANVIL_OK) {
        fprintf(stderr, "anvil-bench: advance: parent Complete: %s\n", e.msg);
        return -1;
    }
    if (!bench_wait_until(child_arrived, a, bench_now_ns() + 5000000000LL)
        || atomic_load(&a->failed)) {
        fprintf(stderr, "anvil-bench: advance: the child step never came\n");
        return -1;
    }
    int64_t t2 = atomic_load(&a->child_ns);
    *call_us   = (double) (t2 - t0) / 1e3;
    *reply_us  = (double) (t2 - t1) / 1e3;
    return 0;
}

int
bench_advance(struct bench_server *s, anvil_client *c, struct result *r)
{
    static struct adv a; // one run at a time
    char              parent_type[64];
    double            call[ADVANCE_RUNS], reply[ADVANCE_RUNS];
    pthread_t         thr;
    memset(&a, 0, sizeof(a));
    bench_type_name(parent_type, sizeof(parent_type), "adv-parent");
    bench_type_name(a.child_type, sizeof(a.child_type), "adv-child");
    if (bench_client_open(s, &a.child_client) != 0)
        return -1;
    if (pthread_create(&thr, NULL, child_poller, &a) != 0) {
        anvil_client_close(a.child_client);
        return -1;
    }
    int rc = 0;
    // Two warm-up workflows, then the measured ones.
    for (int i = -2; i < ADVANCE_RUNS && rc == 0; i++) {
        double cu, ru;
        rc = advance_once(c, &a, parent_type, &cu, &ru);
        if (rc == 0 && i >= 0) {
            call[i]  = cu;
            reply[i] = ru;
        }
    }
    atomic_store(&a.stop, true);
    anvil_client_shutdown(a.child_client);
    pthread_join(thr, NULL);
    anvil_client_close(a.child_client);
    if (rc != 0)
        return -1;
    result_add_pcts(r, "advance_rpc",
        "step advance (parent Complete call -> child Poll reply), raw rpcs",
        call, ADVANCE_RUNS, false);
    result_add_pcts(r, "advance_reply",
        "step advance (parent Complete reply -> child Poll reply), raw rpcs",
        reply, ADVANCE_RUNS, false);
    return 0;
}
