// workflow_impl.h - the inside of an anvil_workflow_spec, shared by the
// builder and the calls (workflow.c), the JSON parser (workflow_json.c) and
// the tests, which check what a definition turned into.
//
// A spec belongs to one thread at a time (see workflow.h); nothing here
// locks.
#ifndef SDK_WORKFLOW_IMPL_H
#define SDK_WORKFLOW_IMPL_H

#include "anvil/v1/anvil.pb-c.h"
#include "util/hash.h"

#include <anvil/workflow.h>

struct wf_step {
    char                     *name;
    char                     *type;
    char                     *queue; // NULL = the server's default
    uint8_t                  *payload;
    size_t                    len;
    int32_t                   priority;
    int64_t                   timeout_ms;
    int64_t                   lease_ms;
    struct anvil_retry_policy retry;
    char                     *ckey; // concurrency key; NULL = none
    uint32_t                  climit;
    char **after; // names of the parents, each once, in the order added
    size_t n_after;
    size_t cap_after;
};

struct anvil_workflow_spec {
    char                     *name;
    enum anvil_failure_policy policy;
    int64_t                   timeout_ms;
    char                     *key; // idempotency key; NULL = none
    struct wf_step           *steps;
    size_t                    n;
    size_t                    cap;
    struct av_hash            index; // step name -> its index in steps
};

// The index of the step called name, or -1.
long workflow_find(const anvil_workflow_spec *wf, const char *name);

// The SubmitWorkflowRequest's spec for wf, pointing into wf (which must
// outlive it). Free with workflow_pb_fini(). 0, or -1 out of memory.
struct workflow_pb {
    Anvil__V1__WorkflowSpec spec;
    Anvil__V1__StepSpec    *steps;
    Anvil__V1__StepSpec   **ptrs;
};
int  workflow_pb_init(struct workflow_pb *pb, const anvil_workflow_spec *wf);
void workflow_pb_fini(struct workflow_pb *pb);

#endif
