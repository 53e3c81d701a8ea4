// flowspec.c - a WorkflowSpec checked whole and built into a
// cmd_wf_submit (see flowspec.h). The graph is dag.c's.
#include "flowspec.h"

#include "dag.h"
#include "handlers_impl.h"
#include "util/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Checks one step's own fields; the graph was checked by dag_build.
static int
check_step(const struct handler_limits *lim, const Anvil__V1__StepSpec *st,
    struct cmd_wf_step *out, struct anvil_error *err)
{
    struct anvil_error e     = { 0 };
    const char        *queue = st->queue[0] ? st->queue : "default";
    if (handlers_check_name("type", st->type, &e)
        || handlers_check_name("queue", queue, &e))
        return av_error_set(err, e.code, "step '%s': %s", st->name, e.msg);
    if (st->payload.len > lim->max_payload)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "step '%s': payload is %zu bytes, over the server's limit of %zu "
            "bytes",
            st->name, st->payload.len, lim->max_payload);
    struct handler_policy pol = {
        .retry = { st->max_attempts, st->initial_backoff_ms, st->max_backoff_ms,
            st->backoff_multiplier },
        .timeout_ms = st->timeout_ms,
        .lease_ms   = st->lease_ms,
    };
    if (handlers_check_policy(&pol, &e) != ANVIL_OK
        || handlers_check_concurrency(
            st->concurrency_key, st->concurrency_limit, &e))
        return av_error_set(err, e.code, "step '%s': %s", st->name, e.msg);
    *out = (struct cmd_wf_step) {
        .name       = st->name,
        .type       = st->type,
        .queue      = queue,
        .payload    = st->payload.data,
        .len        = st->payload.len,
        .priority   = st->priority,
        .timeout_ms = st->timeout_ms,
        .lease_ms   = st->lease_ms,
        .retry      = pol.retry,
        .ckey       = st->concurrency_key[0] ? st->concurrency_key : NULL,
        .climit     = st->concurrency_limit,
    };
    return ANVIL_OK;
}

static int
check_spec(const Anvil__V1__WorkflowSpec *spec, struct anvil_error *err)
{
    if (spec == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "spec is missing: a workflow needs a name and steps");
    if (handlers_check_name("workflow name", spec->name, err))
        return err->code;
    if ((int) spec->on_failure != ANVIL__V1__FAILURE_POLICY__FAIL_FAST
        && (int) spec->on_failure != ANVIL__V1__FAILURE_POLICY__CONTINUE)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "on_failure %d is not a failure policy (0 FAIL_FAST, 1 CONTINUE)",
            (int) spec->on_failure);
    if (spec->timeout_ms < 0 || spec->timeout_ms > MAX_DURATION_MS)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "timeout_ms must be between 0 and %lld (ten years)",
            (long long) MAX_DURATION_MS);
    if (strlen(spec->idempotency_key) > MAX_KEY)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "idempotency_key is longer than %d bytes", MAX_KEY);
    if (spec->n_steps > DAG_MAX_STEPS)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "workflow has %zu steps, over the limit of %d", spec->n_steps,
            DAG_MAX_STEPS);
    return ANVIL_OK;
}

int
flowspec_build(const struct handler_limits *lim,
    const Anvil__V1__WorkflowSpec *spec, struct flowspec *fs,
    struct cmd_wf_submit *s, struct anvil_error *err)
{
    if (check_spec(spec, err) != ANVIL_OK)
        return err->code;
    size_t n   = spec->n_steps;
    fs->steps  = calloc(n + 1, sizeof(*fs->steps));
    fs->dsteps = calloc(n + 1, sizeof(*fs->dsteps));
    if (fs->steps == NULL || fs->dsteps == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < n; i++)
        fs->dsteps[i] = (struct dag_step) {
            .name    = spec->steps[i]->name,
            .after   = (const char *const *) spec->steps[i]->after,
            .n_after = spec->steps[i]->n_after,
        };
    if (dag_build(fs->dsteps, n, &fs->dag, err) != ANVIL_OK)
        return err->code;
    for (size_t i = 0; i < n; i++) {
        if (check_step(lim, spec->steps[i], &fs->steps[i], err))
            return err->code;
    }
    s->name       = spec->name;
    s->on_failure = (int) spec->on_failure;
    s->timeout_ms = spec->timeout_ms;
    s->key        = spec->idempotency_key[0] ? spec->idempotency_key : NULL;
    s->steps      = fs->steps;
    s->n          = n;
    s->dag        = fs->dag;
    return ANVIL_OK;
}

int
flowspec_pack(const Anvil__V1__WorkflowSpec *spec, uint8_t **out, size_t *len,
    struct anvil_error *err)
{
    *len = anvil__v1__workflow_spec__get_packed_size(spec);
    *out = malloc(*len + 1);
    if (*out == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    anvil__v1__workflow_spec__pack(spec, *out);
    return ANVIL_OK;
}

int
flowspec_unpack(const uint8_t *packed, size_t len, struct flowspec *fs,
    struct cmd_wf_submit *s, struct anvil_error *err)
{
    fs->msg = anvil__v1__workflow_spec__unpack(NULL, len, packed);
    if (fs->msg == NULL)
        return av_error_set(err, ANVIL_INTERNAL,
            "a stored workflow template does not decode (%zu bytes)", len);
    struct handler_limits lim = { .max_payload = SIZE_MAX };
    return flowspec_build(&lim, fs->msg, fs, s, err);
}

void
flowspec_fini(struct flowspec *fs)
{
    if (fs->msg != NULL)
        anvil__v1__workflow_spec__free_unpacked(fs->msg, NULL);
    dag_free(fs->dag);
    free(fs->steps);
    free(fs->dsteps);
    memset(fs, 0, sizeof(*fs));
}
