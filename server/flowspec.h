// flowspec.h - a WorkflowSpec checked whole (fields, steps and graph) and
// turned into the engine's submit command, struct cmd_wf_submit.
// SubmitWorkflow's decode and a schedule's workflow template share it, so
// a schedule takes exactly the specs SubmitWorkflow takes: CreateSchedule
// checks the template and stores it packed (its .proto wire form), and
// each tick unpacks and builds it again on the engine thread, which sees
// only bytes here (protobuf types stay in this module and the handlers).
// Any thread; no shared state.
#ifndef SERVER_FLOWSPEC_H
#define SERVER_FLOWSPEC_H

#include "engine.h"

#include <stddef.h>
#include <stdint.h>

struct handler_limits;
struct Anvil__V1__WorkflowSpec;

// What a built cmd_wf_submit points into, besides the spec itself.
struct flowspec {
    struct Anvil__V1__WorkflowSpec *msg; // flowspec_unpack's; else NULL
    struct cmd_wf_step             *steps;
    struct dag_step                *dsteps;
    struct dag                     *dag;
};

// Checks spec as SubmitWorkflow does and fills *s, pointing into spec and
// *fs (flowspec_fini after s is done with). Errors: INVALID_ARGUMENT
// naming the field or step (a missing spec, a bad name, policy or limit,
// an unknown parent, a cycle), RESOURCE_EXHAUSTED.
int flowspec_build(const struct handler_limits *lim,
    const struct Anvil__V1__WorkflowSpec *spec, struct flowspec *fs,
    struct cmd_wf_submit *s, struct anvil_error *err);

// spec's wire form in a new buffer *out of *len bytes (free()).
int flowspec_pack(const struct Anvil__V1__WorkflowSpec *spec, uint8_t **out,
    size_t *len, struct anvil_error *err);

// Unpacks a flowspec_pack'd spec and builds it as flowspec_build does
// (without the payload limit: it was checked when it was packed).
// INTERNAL when the bytes are no WorkflowSpec.
int flowspec_unpack(const uint8_t *packed, size_t len, struct flowspec *fs,
    struct cmd_wf_submit *s, struct anvil_error *err);

void flowspec_fini(struct flowspec *fs);

#endif
