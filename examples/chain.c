// chain.c - a chain of three steps, run by a worker inside this program.
//
// Registers three job types with an in-process worker (upper, reverse,
// exclaim), builds the workflow upper -> reverse -> exclaim, submits it,
// waits for it and prints what each step returned. Each handler works on
// the result of the step before it (lease->parents), or on the payload
// for the first step.
//
// Usage: chain [URL]    (default: $ANVIL_SERVER, else tcp://127.0.0.1:7700)
// Needs a running anvild. Exits 0 if the workflow SUCCEEDED.
#include <anvil/anvil.h>
#include <anvil/worker.h>
#include <anvil/workflow.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// A step's input: its parent's result, or its own payload if it has none.
static void
step_input(const struct anvil_lease *lease, const char **text, size_t *len)
{
    if (lease->n_parents > 0) {
        *text = (const char *) lease->parents[0].result;
        *len  = lease->parents[0].result_len;
    } else {
        *text = (const char *) lease->job.payload;
        *len  = lease->job.payload_len;
    }
}

static int
upper(void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) arg;
    const char *in;
    size_t      len;
    step_input(lease, &in, &len);
    char *out = malloc(len + 1);
    if (out == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    for (size_t i = 0; i < len; i++)
        out[i] = (char) toupper((unsigned char) in[i]);
    int rc = anvil_job_ctx_set_result(ctx, out, len);
    free(out);
    return rc;
}

static int
reverse(void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) arg;
    const char *in;
    size_t      len;
    step_input(lease, &in, &len);
    char *out = malloc(len + 1);
    if (out == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    for (size_t i = 0; i < len; i++)
        out[i] = in[len - 1 - i];
    int rc = anvil_job_ctx_set_result(ctx, out, len);
    free(out);
    return rc;
}

static int
exclaim(void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) arg;
    const char *in;
    size_t      len;
    step_input(lease, &in, &len);
    char *out = malloc(len + 1);
    if (out == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    memcpy(out, in, len);
    out[len] = '!';
    int rc   = anvil_job_ctx_set_result(ctx, out, len + 1);
    free(out);
    return rc;
}

static int
start_worker(const char *url, anvil_worker **w, struct anvil_error *err)
{
    struct anvil_worker_opts opts = { .url = url, .slots = 2 };
    int                      rc   = anvil_worker_new(w, &opts, err);
    if (rc == ANVIL_OK)
        rc = anvil_worker_add_handler(*w, "upper", upper, NULL, err);
    if (rc == ANVIL_OK)
        rc = anvil_worker_add_handler(*w, "reverse", reverse, NULL, err);
    if (rc == ANVIL_OK)
        rc = anvil_worker_add_handler(*w, "exclaim", exclaim, NULL, err);
    if (rc == ANVIL_OK)
        rc = anvil_worker_start(*w, err);
    return rc;
}

// upper -> reverse -> exclaim, starting from text.
static int
build(const char *text, anvil_workflow_spec **wf, struct anvil_error *err)
{
    static const char *const steps[] = { "upper", "reverse", "exclaim" };
    int rc = anvil_workflow_spec_new(wf, "chain-example", err);
    if (rc == ANVIL_OK)
        rc = anvil_workflow_spec_add_step(
            *wf, "upper", "upper", text, strlen(text), NULL, err);
    if (rc == ANVIL_OK)
        rc = anvil_workflow_spec_add_step(
            *wf, "reverse", "reverse", NULL, 0, NULL, err);
    if (rc == ANVIL_OK)
        rc = anvil_workflow_spec_add_step(
            *wf, "exclaim", "exclaim", NULL, 0, NULL, err);
    if (rc == ANVIL_OK)
        rc = anvil_workflow_spec_add_chain(*wf, steps, 3, err);
    return rc;
}

int
main(int argc, char **argv)
{
    const char            *url    = argc > 1 ? argv[1] : NULL;
    struct anvil_error     err    = { 0 };
    anvil_worker          *worker = NULL;
    anvil_client          *client = NULL;
    anvil_workflow_spec   *spec   = NULL;
    struct anvil_workflow *run    = NULL;
    char                  *id     = NULL;

    int rc = start_worker(url, &worker, &err);
    if (rc == ANVIL_OK)
        rc = anvil_client_open(&client, url, &err);
    if (rc == ANVIL_OK)
        rc = build("hello, anvil", &spec, &err);
    if (rc == ANVIL_OK)
        rc = anvil_workflow_submit(client, spec, &id, NULL, &err);
    if (rc == ANVIL_OK) {
        printf("workflow %s submitted\n", id);
        rc = anvil_workflow_wait(client, id, 30000, &run, &err);
    }
    if (rc == ANVIL_OK) {
        for (size_t i = 0; i < run->n_steps; i++) {
            const struct anvil_job *step = &run->steps[i];
            printf("%-8s %-9s %s\n", step->step,
                anvil_job_state_name(step->state),
                step->error[0] ? step->error : (const char *) step->result);
        }
        printf("workflow %s %s\n", id, anvil_workflow_state_name(run->state));
    } else {
        fprintf(stderr, "chain: %s: %s\n", anvil_code_name(rc), err.msg);
    }
    int ok = rc == ANVIL_OK && run->state == ANVIL_WORKFLOW_SUCCEEDED;

    anvil_workflow_free(run);
    anvil_free(id);
    anvil_workflow_spec_free(spec);
    anvil_client_close(client);
    anvil_worker_free(worker); // stops it: lets running jobs finish first
    return ok ? 0 : 1;
}
