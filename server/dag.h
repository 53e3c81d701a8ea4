// dag.h - workflow graphs: validation, parents by index, topological order.
// Pure code: no I/O, no locks; any thread.
#ifndef SERVER_DAG_H
#define SERVER_DAG_H

#include <anvil/anvil.h>
#include <stddef.h>

#define DAG_MAX_STEPS 10000
#define DAG_MAX_EDGES 100000

// One step as submitted: its name and the names of the steps it runs after.
// Borrowed for the call.
struct dag_step {
    const char        *name;
    const char *const *after;
    size_t             n_after;
};

struct dag {
    size_t   n;
    size_t  *n_parents; // per step
    size_t **parents;   // per step: indices of the steps it runs after
    size_t  *order;     // a topological order: parents before children
    size_t   n_edges;
};

// Validates a workflow's steps and builds its graph. Checks: 1 to
// DAG_MAX_STEPS steps, valid and unique names, every `after` names another
// step once, at most DAG_MAX_EDGES edges, no cycle. Errors are
// INVALID_ARGUMENT with a message naming the offending step (and, for a
// cycle, one cycle: "a -> b -> a"). *out is the caller's (dag_free).
int dag_build(const struct dag_step *steps, size_t n, struct dag **out,
    struct anvil_error *err);

void dag_free(struct dag *d);

#endif
