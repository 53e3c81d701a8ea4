// output_workflow.c - printing workflows for people and for scripts (see
// output.h for the JSON shapes), and the dependency order the status table
// draws steps in.
//
// The order is av_topo_sort() over the steps' `after` names, so ties keep
// submission order and a chain reads top to bottom; a step's depth (its
// indentation) is the longest chain of parents above it.
#include "output.h"

#include <stdlib.h>
#include <string.h>
#include <util/clock.h>
#include <util/hash.h>
#include <util/topo.h>

#define TIME_LEN 40

// ---- JSON ----

// The keys every workflow object has, steps aside.
static int
set_header(json_t *o, const struct anvil_workflow *wf)
{
    int rc = 0;
    rc |= json_object_set_new(o, "id", output_json_text(wf->id));
    rc |= json_object_set_new(o, "name", output_json_text(wf->name));
    rc |= json_object_set_new(
        o, "state", json_string(anvil_workflow_state_name(wf->state)));
    rc |= json_object_set_new(o, "on_failure",
        json_string(anvil_failure_policy_name(wf->on_failure)));
    rc |= json_object_set_new(o, "error", output_json_text_or_null(wf->error));
    rc |= json_object_set_new(
        o, "created_at", output_json_time(wf->created_at_ms));
    rc |= json_object_set_new(
        o, "finished_at", output_json_time(wf->finished_at_ms));
    return rc;
}

static json_t *
summary_json(const struct anvil_workflow *wf)
{
    json_t *o  = json_object();
    int     rc = o == NULL ? -1 : set_header(o, wf);
    rc |= json_object_set_new(o, "steps_total", json_integer(wf->steps_total));
    rc |= json_object_set_new(
        o, "steps_succeeded", json_integer(wf->steps_succeeded));
    rc |= json_object_set_new(
        o, "steps_failed", json_integer(wf->steps_failed));
    return output_json_done(o, rc);
}

static json_t *
step_json(const struct anvil_job *s)
{
    json_t *o     = json_object();
    json_t *after = json_array();
    int     rc    = o == NULL || after == NULL ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < s->n_after; i++)
        rc = json_array_append_new(after, output_json_text(s->after[i]));
    rc |= json_object_set_new(o, "name", output_json_text(s->step));
    rc |= json_object_set_new(o, "id", output_json_text(s->id));
    rc |= json_object_set_new(
        o, "state", json_string(anvil_job_state_name(s->state)));
    rc |= json_object_set_new(o, "attempt", json_integer(s->attempt));
    rc |= output_json_set_bytes(o, "result", s->result, s->result_len);
    rc |= json_object_set_new(o, "error", output_json_text_or_null(s->error));
    rc |= json_object_set_new(
        o, "started_at", output_json_time(s->started_at_ms));
    rc |= json_object_set_new(
        o, "finished_at", output_json_time(s->finished_at_ms));
    rc |= json_object_set(o, "after", after);
    json_decref(after);
    return output_json_done(o, rc);
}

json_t *
output_workflow_json(const struct anvil_workflow *wf)
{
    json_t *o     = json_object();
    json_t *steps = json_array();
    int     rc    = o == NULL || steps == NULL ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < wf->n_steps; i++)
        rc = json_array_append_new(steps, step_json(&wf->steps[i]));
    if (rc == 0)
        rc = set_header(o, wf);
    rc |= json_object_set(o, "steps", steps);
    json_decref(steps);
    return output_json_done(o, rc);
}

json_t *
output_workflow_list_json(const struct anvil_workflow_list *list)
{
    json_t *wfs = json_array();
    int     rc  = wfs == NULL ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < list->n; i++)
        rc = json_array_append_new(wfs, summary_json(&list->workflows[i]));
    return output_json_page(
        "workflows", output_json_done(wfs, rc), list->next_cursor);
}

// ---- dependency order ----

// The parent edges as (parent, child) pairs, with unknown names and
// self-references dropped. Returns the number of edges.
static size_t
resolve_edges(const struct anvil_workflow *wf, const struct av_hash *byname,
    size_t *from, size_t *to)
{
    size_t ne = 0;
    for (size_t i = 0; i < wf->n_steps; i++) {
        for (size_t k = 0; k < wf->steps[i].n_after; k++) {
            size_t p;
            if (!av_hash_get(byname, wf->steps[i].after[k], &p) || p == i)
                continue;
            from[ne] = p;
            to[ne]   = i;
            ne++;
        }
    }
    return ne;
}

static size_t
count_edges(const struct anvil_workflow *wf)
{
    size_t ne = 0;
    for (size_t i = 0; i < wf->n_steps; i++)
        ne += wf->steps[i].n_after;
    return ne;
}

// What a cycle left unordered goes last, in submission order.
static int
append_unordered(size_t n, size_t *order, size_t done)
{
    if (done == n)
        return 0;
    bool *placed = calloc(n, sizeof(*placed));
    if (placed == NULL)
        return -1;
    for (size_t k = 0; k < done; k++)
        placed[order[k]] = true;
    for (size_t i = 0; i < n; i++)
        if (!placed[i])
            order[done++] = i;
    free(placed);
    return 0;
}

int
output_workflow_order(
    const struct anvil_workflow *wf, size_t *order, size_t *depth)
{
    size_t         n      = wf->n_steps;
    size_t         ne     = count_edges(wf);
    size_t        *from   = calloc(ne + 1, sizeof(*from));
    size_t        *to     = calloc(ne + 1, sizeof(*to));
    struct av_hash byname = { 0 };
    size_t         done   = 0;
    int            rc     = -1;
    if (from == NULL || to == NULL || av_hash_init(&byname, n) != 0)
        goto out;
    // A repeated name keeps its first step, as the server would refuse it.
    for (size_t i = 0; i < n; i++) {
        size_t first;
        if (av_hash_add(&byname, wf->steps[i].step, i, &first) < 0)
            goto out;
    }
    ne = resolve_edges(wf, &byname, from, to);
    if (av_topo_sort(n, from, to, ne, order, depth, &done) != 0)
        goto out;
    rc = append_unordered(n, order, done);
out:
    av_hash_fini(&byname);
    free(from);
    free(to);
    return rc;
}

// ---- text ----

// s cut to max code points, "..." marking the cut. Caller frees.
static char *
cut(char *s, size_t max)
{
    if (s == NULL || output_text_width(s) <= max)
        return s;
    size_t w = 0, i = 0;
    for (; s[i] != '\0'; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80 && ++w > max - 3)
            break;
    }
    memcpy(s + i, "...", 4);
    return s;
}

static char *
outcome_text(const struct anvil_job *s)
{
    char *t = s->error[0] != '\0'
        ? output_text_clean(s->error, strlen(s->error))
        : output_result_text(s);
    if (t != NULL) {
        // One cell, one line.
        for (char *p = t; *p != '\0'; p++)
            if (*p == '\n' || *p == '\t')
                *p = ' ';
    }
    return cut(t, OUTPUT_CELL_MAX);
}

static char *
after_text(const struct anvil_job *s)
{
    size_t len = 1;
    for (size_t i = 0; i < s->n_after; i++)
        len += strlen(s->after[i]) + 1;
    char *t = malloc(len);
    if (t == NULL)
        return NULL;
    t[0] = '\0';
    for (size_t i = 0; i < s->n_after; i++) {
        if (i > 0)
            strcat(t, ",");
        strcat(t, s->after[i]);
    }
    return cut(t, OUTPUT_CELL_MAX);
}

static int
add_step_row(struct output_table *t, const struct anvil_job *s, size_t depth,
    int64_t now_ms)
{
    char   attempt[32], dur[48];
    size_t indent = depth < OUTPUT_MAX_INDENT ? depth : OUTPUT_MAX_INDENT;
    size_t nlen   = strlen(s->step);
    char  *name   = malloc(2 * indent + nlen + 1);
    char  *after  = after_text(s);
    char  *what   = outcome_text(s);
    int    rc     = -1;
    if (name != NULL && after != NULL && what != NULL) {
        memset(name, ' ', 2 * indent);
        memcpy(name + 2 * indent, s->step, nlen + 1);
        snprintf(attempt, sizeof(attempt), "%u/%u", (unsigned) s->attempt,
            (unsigned) s->retry.max_attempts);
        output_span(
            s->started_at_ms, s->finished_at_ms, now_ms, dur, sizeof(dur));
        const char *row[] = { name, anvil_job_state_name(s->state), attempt,
            dur, after, what };
        rc                = output_table_add(t, row);
    }
    free(name);
    free(after);
    free(what);
    return rc;
}

static void
print_steps(FILE *f, const struct anvil_workflow *wf, int64_t now_ms)
{
    static const char *const hdr[]
        = { "STEP", "STATE", "ATTEMPT", "DURATION", "AFTER", "RESULT/ERROR" };
    size_t              *order = calloc(wf->n_steps + 1, sizeof(size_t));
    size_t              *depth = calloc(wf->n_steps + 1, sizeof(size_t));
    struct output_table *t     = output_table_new(6, hdr);
    if (order != NULL && depth != NULL && t != NULL
        && output_workflow_order(wf, order, depth) == 0) {
        for (size_t i = 0; i < wf->n_steps; i++)
            add_step_row(t, &wf->steps[order[i]], depth[order[i]], now_ms);
        output_table_print(t, f);
    }
    output_table_free(t);
    free(order);
    free(depth);
}

void
output_workflow_human(FILE *f, const struct anvil_workflow *wf, int64_t now_ms)
{
    enum { N = 9 };
    static const char *const labels[N] = { "ID", "Name", "State", "Policy",
        "Steps", "Created", "Finished", "Duration", "Error" };
    char  steps[96], created[TIME_LEN], finished[TIME_LEN], dur[48];
    char *id    = output_text_clean(wf->id, strlen(wf->id));
    char *name  = output_text_clean(wf->name, strlen(wf->name));
    char *error = output_text_clean(wf->error, strlen(wf->error));
    int   n     = snprintf(steps, sizeof(steps), "%u of %u succeeded",
              (unsigned) wf->steps_succeeded, (unsigned) wf->steps_total);
    if (wf->steps_failed > 0)
        snprintf(steps + n, sizeof(steps) - (size_t) n, ", %u failed",
            (unsigned) wf->steps_failed);
    output_span(
        wf->created_at_ms, wf->finished_at_ms, now_ms, dur, sizeof(dur));
    const char *values[N] = { id, name, anvil_workflow_state_name(wf->state),
        anvil_failure_policy_name(wf->on_failure), steps,
        av_format_time(wf->created_at_ms, created, sizeof(created)),
        av_format_time(wf->finished_at_ms, finished, sizeof(finished)), dur,
        error };
    output_fields(f, labels, values, N);
    free(id);
    free(name);
    free(error);
    if (wf->n_steps > 0) {
        fputc('\n', f);
        print_steps(f, wf, now_ms);
    }
}

void
output_workflow_list_human(FILE *f, const struct anvil_workflow_list *list)
{
    static const char *const hdr[]
        = { "ID", "NAME", "STATE", "STEPS", "CREATED" };
    if (list->n == 0) {
        fputs("No workflows.\n", f);
    } else {
        struct output_table *t = output_table_new(5, hdr);
        for (size_t i = 0; t != NULL && i < list->n; i++) {
            const struct anvil_workflow *w = &list->workflows[i];
            char                         steps[32], created[TIME_LEN];
            snprintf(steps, sizeof(steps), "%u/%u",
                (unsigned) w->steps_succeeded, (unsigned) w->steps_total);
            const char *row[] = { w->id, w->name,
                anvil_workflow_state_name(w->state), steps,
                av_format_time(w->created_at_ms, created, sizeof(created)) };
            output_table_add(t, row);
        }
        if (t != NULL)
            output_table_print(t, f);
        output_table_free(t);
    }
    if (list->next_cursor != NULL && list->next_cursor[0] != '\0') {
        char *cur
            = output_text_clean(list->next_cursor, strlen(list->next_cursor));
        fprintf(f, "More workflows: add --cursor %s to see the next page.\n",
            cur ? cur : "?");
        free(cur);
    }
}
