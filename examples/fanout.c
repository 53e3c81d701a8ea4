// fanout.c - map, then reduce: N steps in parallel, then one join step.
//
// Registers two job types with an in-process worker: "square" returns the
// square of the number in its payload, "sum" adds up the results of all
// the steps it runs after (lease->parents). Submits square-1 .. square-N
// as a group joined by "sum", waits, prints the sum and checks it.
//
// Usage: fanout [URL]   (default: $ANVIL_SERVER, else tcp://127.0.0.1:7700)
// Needs a running anvild. Exits 0 if the workflow SUCCEEDED with the
// right sum.
#include <anvil/anvil.h>
#include <anvil/worker.h>
#include <anvil/workflow.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 10

// Parses the decimal number in text (NUL-terminated, as the library hands
// payloads and results to handlers).
static int
parse_number(const void *text, long long *out)
{
    char *end;
    *out = strtoll(text, &end, 10);
    return end != text && *end == '\0' ? 0 : -1;
}

static int
square(void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) arg;
    long long k;
    char      out[32];
    if (parse_number(lease->job.payload, &k) != 0) {
        anvil_job_ctx_set_error(ctx, false, "payload '%s' is not a number",
            (const char *) lease->job.payload);
        return ANVIL_INVALID_ARGUMENT;
    }
    snprintf(out, sizeof(out), "%lld", k * k);
    return anvil_job_ctx_set_result(ctx, out, strlen(out));
}

static int
sum(void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    (void) arg;
    long long total = 0;
    char      out[32];
    for (size_t i = 0; i < lease->n_parents; i++) {
        long long v;
        if (parse_number(lease->parents[i].result, &v) != 0) {
            anvil_job_ctx_set_error(ctx, false, "step %s returned no number",
                lease->parents[i].step);
            return ANVIL_INVALID_ARGUMENT;
        }
        total += v;
    }
    snprintf(out, sizeof(out), "%lld", total);
    return anvil_job_ctx_set_result(ctx, out, strlen(out));
}

static int
start_worker(const char *url, anvil_worker **w, struct anvil_error *err)
{
    struct anvil_worker_opts opts = { .url = url, .slots = 4 };
    int                      rc   = anvil_worker_new(w, &opts, err);
    if (rc == ANVIL_OK)
        rc = anvil_worker_add_handler(*w, "square", square, NULL, err);
    if (rc == ANVIL_OK)
        rc = anvil_worker_add_handler(*w, "sum", sum, NULL, err);
    if (rc == ANVIL_OK)
        rc = anvil_worker_start(*w, err);
    return rc;
}

// square-1 .. square-N in parallel, then sum after all of them.
static int
build(anvil_workflow_spec **wf, struct anvil_error *err)
{
    char        names[N][24];
    const char *group[N];
    int         rc = anvil_workflow_spec_new(wf, "fanout-example", err);
    for (int k = 1; rc == ANVIL_OK && k <= N; k++) {
        char payload[16];
        snprintf(names[k - 1], sizeof(names[k - 1]), "square-%d", k);
        snprintf(payload, sizeof(payload), "%d", k);
        group[k - 1] = names[k - 1];
        rc           = anvil_workflow_spec_add_step(
                      *wf, names[k - 1], "square", payload, strlen(payload), NULL, err);
    }
    if (rc == ANVIL_OK)
        rc = anvil_workflow_spec_add_step(
            *wf, "sum", "sum", NULL, 0, NULL, err);
    if (rc == ANVIL_OK)
        rc = anvil_workflow_spec_add_group(*wf, NULL, group, N, "sum", err);
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
    bool                   ok     = false;

    int rc = start_worker(url, &worker, &err);
    if (rc == ANVIL_OK)
        rc = anvil_client_open(&client, url, &err);
    if (rc == ANVIL_OK)
        rc = build(&spec, &err);
    if (rc == ANVIL_OK)
        rc = anvil_workflow_submit(client, spec, &id, NULL, &err);
    if (rc == ANVIL_OK) {
        printf("workflow %s submitted: %d squares, then their sum\n", id, N);
        rc = anvil_workflow_wait(client, id, 30000, &run, &err);
    }
    if (rc != ANVIL_OK) {
        fprintf(stderr, "fanout: %s: %s\n", anvil_code_name(rc), err.msg);
    } else {
        const struct anvil_job *total = anvil_workflow_find_step(run, "sum");
        long long want = (long long) N * (N + 1) * (2 * N + 1) / 6;
        long long got  = 0;
        ok             = run->state == ANVIL_WORKFLOW_SUCCEEDED && total != NULL
            && parse_number(total->result, &got) == 0 && got == want;
        printf("workflow %s %s: sum of squares 1..%d = %lld (expected %lld)\n",
            id, anvil_workflow_state_name(run->state), N, got, want);
    }

    anvil_workflow_free(run);
    anvil_free(id);
    anvil_workflow_spec_free(spec);
    anvil_client_close(client);
    anvil_worker_free(worker);
    return ok ? 0 : 1;
}
