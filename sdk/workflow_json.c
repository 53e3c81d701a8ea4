// workflow_json.c - anvil_workflow_spec_parse_json(): the JSON definition
// format of docs/workflows.md into an anvil_workflow_spec, with jansson.
//
// The parser is strict, so a typo never passes silently: unknown keys,
// duplicate keys, wrong types and missing required keys are errors that
// name the key and the step (by index and name). It is a pure function of
// its input (no I/O, no globals), meant to be fuzzed: jansson bounds the
// nesting depth, and every step goes through the public builder, so the
// spec it returns obeys the builder's rules. Graph checks beyond the local
// ones (unknown or repeated parents) are the server's, as for the builder.
#include "workflow_impl.h"

#include "util/error.h"
#include "util/json.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SHOWN 64 // bytes of a name or key quoted in a message

// A name or key as quoted in a message: at most MAX_SHOWN bytes, control
// characters as '?', so that a message stays on one line.
struct shown {
    char s[MAX_SHOWN + 1];
};

static const char *
show(struct shown *b, const char *text)
{
    size_t i = 0;
    for (; text[i] != '\0' && i < MAX_SHOWN; i++) {
        unsigned char c = (unsigned char) text[i];
        b->s[i]         = c < 0x20 || c == 0x7f ? '?' : (char) c;
    }
    b->s[i] = '\0';
    return b->s;
}

static const char *const top_keys[] = {
    "name",
    "on_failure",
    "timeout_ms",
    "idempotency_key",
    "steps",
    NULL,
};

static const char *const step_keys[] = {
    "name",
    "type",
    "data",
    "after",
    "queue",
    "priority",
    "max_attempts",
    "timeout_ms",
    "lease_ms",
    "initial_backoff_ms",
    "max_backoff_ms",
    "backoff_multiplier",
    "concurrency_key",
    "concurrency_limit",
    NULL,
};

// "steps[2] (\"fetch\")", or "steps[2]" while the step has no usable name.
struct where {
    char text[MAX_SHOWN + 32];
};

static void
where_init(struct where *w, size_t i, const json_t *step)
{
    const json_t *name
        = json_is_object(step) ? json_object_get(step, "name") : NULL;
    struct shown b;
    if (json_is_string(name))
        snprintf(w->text, sizeof(w->text), "steps[%zu] (\"%s\")", i,
            show(&b, json_string_value(name)));
    else
        snprintf(w->text, sizeof(w->text), "steps[%zu]", i);
}

// INVALID_ARGUMENT naming the first key of obj not in known; at is "" for
// the top level or a step's where-text.
static int
check_keys(const json_t *obj, const char *const *known, const char *at,
    struct anvil_error *err)
{
    const char *key;
    json_t     *v;
    json_object_foreach((json_t *) obj, key, v)
    {
        size_t k = 0;
        while (known[k] != NULL && strcmp(known[k], key) != 0)
            k++;
        if (known[k] != NULL)
            continue;
        char   list[256];
        size_t used = 0;
        list[0]     = '\0';
        for (k = 0; known[k] != NULL && used < sizeof(list); k++)
            used += (size_t) snprintf(list + used, sizeof(list) - used, "%s%s",
                k ? ", " : "", known[k]);
        struct shown b;
        if (at[0] == '\0')
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "unknown key \"%s\" at the top level (known: %s)",
                show(&b, key), list);
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: unknown key \"%s\" (known: %s)", at, show(&b, key), list);
    }
    return ANVIL_OK;
}

// The message prefix for a key: "steps[2] (\"x\"): " or "" at the top.
static const char *
sep(const char *at)
{
    return at[0] != '\0' ? ": " : "";
}

// *out = the string at obj[key]; NULL when absent and not required.
static int
get_string(const json_t *obj, const char *key, bool required, const char *at,
    const char **out, struct anvil_error *err)
{
    const json_t *v = json_object_get(obj, key);
    *out            = NULL;
    if (v == NULL && required)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s%s\"%s\" is missing", at, sep(at), key);
    if (v != NULL && !json_is_string(v))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s%s\"%s\" must be a string, not %s", at, sep(at), key,
            av_json_kind(v));
    if (v != NULL)
        *out = json_string_value(v);
    return ANVIL_OK;
}

// *out = the integer at obj[key] (unchanged when absent), in [min, max].
static int
get_int(const json_t *obj, const char *key, json_int_t min, json_int_t max,
    const char *at, int64_t *out, struct anvil_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return ANVIL_OK;
    if (!json_is_integer(v) || json_integer_value(v) < min
        || json_integer_value(v) > max)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s%s\"%s\" must be an integer from %lld to %lld", at, sep(at), key,
            (long long) min, (long long) max);
    *out = json_integer_value(v);
    return ANVIL_OK;
}

// *out = the number at obj[key] (unchanged when absent), in [min, max].
static int
get_number(const json_t *obj, const char *key, double min, double max,
    const char *at, double *out, struct anvil_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return ANVIL_OK;
    if (!json_is_number(v) || !(json_number_value(v) >= min)
        || !(json_number_value(v) <= max))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s%s\"%s\" must be a number from %g to %g", at, sep(at), key, min,
            max);
    *out = json_number_value(v);
    return ANVIL_OK;
}

// ---- steps ----

struct step_fields {
    const char            *name;
    const char            *type;
    struct anvil_step_opts opts;
    char                  *payload; // compact JSON of "data"; NULL = none
};

static int
step_opts(const json_t *js, const char *at, struct step_fields *f,
    struct anvil_error *err)
{
    int64_t prio = 0, attempts = 0, timeout = 0, climit = 0;
    int     rc = get_string(js, "queue", false, at, &f->opts.queue, err);
    if (rc == ANVIL_OK)
        rc = get_int(js, "priority", INT32_MIN, INT32_MAX, at, &prio, err);
    if (rc == ANVIL_OK)
        rc = get_int(js, "max_attempts", 0, UINT32_MAX, at, &attempts, err);
    if (rc == ANVIL_OK)
        rc = get_int(js, "timeout_ms", 0, INT64_MAX, at, &timeout, err);
    if (rc == ANVIL_OK)
        rc = get_int(js, "lease_ms", 0, INT64_MAX, at, &f->opts.lease_ms, err);
    if (rc == ANVIL_OK)
        rc = get_int(js, "initial_backoff_ms", 0, INT64_MAX, at,
            &f->opts.retry.initial_backoff_ms, err);
    if (rc == ANVIL_OK)
        rc = get_int(js, "max_backoff_ms", 0, INT64_MAX, at,
            &f->opts.retry.max_backoff_ms, err);
    if (rc == ANVIL_OK)
        rc = get_number(js, "backoff_multiplier", 0, 1e9, at,
            &f->opts.retry.backoff_multiplier, err);
    // Both or neither, and their ranges, are the server's to judge.
    if (rc == ANVIL_OK)
        rc = get_string(
            js, "concurrency_key", false, at, &f->opts.concurrency_key, err);
    if (rc == ANVIL_OK)
        rc = get_int(js, "concurrency_limit", 0, UINT32_MAX, at, &climit, err);
    f->opts.concurrency_limit  = (uint32_t) climit;
    f->opts.priority           = (int32_t) prio;
    f->opts.retry.max_attempts = (uint32_t) attempts;
    f->opts.timeout_ms         = timeout;
    return rc;
}

// Reads a step's own fields (not its edges) into f.
static int
step_fields(const json_t *js, const char *at, struct step_fields *f,
    struct anvil_error *err)
{
    int rc = check_keys(js, step_keys, at, err);
    if (rc == ANVIL_OK)
        rc = get_string(js, "name", true, at, &f->name, err);
    if (rc == ANVIL_OK)
        rc = get_string(js, "type", true, at, &f->type, err);
    if (rc == ANVIL_OK)
        rc = step_opts(js, at, f, err);
    const json_t *after = json_object_get(js, "after");
    if (rc == ANVIL_OK && after != NULL && !json_is_array(after))
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: \"after\" must be an array of step names, not %s", at,
            av_json_kind(after));
    const json_t *data = json_object_get(js, "data");
    if (rc == ANVIL_OK && data != NULL) {
        f->payload = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
        if (f->payload == NULL)
            rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED,
                "%s: out of memory encoding \"data\"", at);
    }
    return rc;
}

static int
add_step(anvil_workflow_spec *wf, size_t i, const json_t *js,
    struct anvil_error *err)
{
    struct where w;
    where_init(&w, i, js);
    if (!json_is_object(js))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s must be an object, not %s", w.text, av_json_kind(js));
    struct step_fields f = { 0 };
    struct shown       b;
    int                rc = step_fields(js, w.text, &f, err);
    if (rc == ANVIL_OK && workflow_find(wf, f.name) >= 0)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: the name \"%s\" is already used by steps[%ld]", w.text,
            show(&b, f.name), workflow_find(wf, f.name));
    if (rc == ANVIL_OK) {
        size_t len = f.payload != NULL ? strlen(f.payload) : 0;
        rc         = anvil_workflow_spec_add_step(
                    wf, f.name, f.type, f.payload, len, &f.opts, err);
    }
    free(f.payload);
    return rc;
}

// Adds the edges of steps[i], whose fields add_step() accepted.
static int
add_edges(anvil_workflow_spec *wf, size_t i, const json_t *js,
    struct anvil_error *err)
{
    const json_t *after = json_object_get(js, "after");
    const char   *name  = json_string_value(json_object_get(js, "name"));
    struct where  w;
    struct shown  b;
    where_init(&w, i, js);
    for (size_t k = 0; k < json_array_size(after); k++) {
        const json_t *p      = json_array_get(after, k);
        const char   *parent = json_string_value(p);
        if (!json_is_string(p))
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s: \"after\" must be an array of step names, but "
                "after[%zu] is %s",
                w.text, k, av_json_kind(p));
        if (workflow_find(wf, parent) < 0)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s: \"after\" names \"%s\", which is not a step of this "
                "workflow",
                w.text, show(&b, parent));
        if (strcmp(parent, name) == 0)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s: \"after\" names the step itself", w.text);
        for (size_t m = 0; m < k; m++) {
            if (strcmp(json_string_value(json_array_get(after, m)), parent)
                == 0)
                return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                    "%s: \"after\" names \"%s\" twice", w.text,
                    show(&b, parent));
        }
        int rc = anvil_workflow_spec_add_edge(wf, name, parent, err);
        if (rc != ANVIL_OK)
            return rc;
    }
    return ANVIL_OK;
}

// ---- the workflow ----

static int
top_fields(const json_t *root, anvil_workflow_spec *wf, struct anvil_error *err)
{
    const char  *policy = NULL, *key = NULL;
    int64_t      timeout = 0;
    struct shown b;
    int          rc = get_string(root, "on_failure", false, "", &policy, err);
    if (rc == ANVIL_OK && policy != NULL
        && anvil_failure_policy_parse(policy, &wf->policy) != ANVIL_OK)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "\"on_failure\" must be \"fail_fast\" or \"continue\", not "
            "\"%s\"",
            show(&b, policy));
    if (rc == ANVIL_OK)
        rc = get_int(root, "timeout_ms", 0, INT64_MAX, "", &timeout, err);
    wf->timeout_ms = timeout;
    if (rc == ANVIL_OK)
        rc = get_string(root, "idempotency_key", false, "", &key, err);
    if (rc == ANVIL_OK && key != NULL)
        rc = anvil_workflow_spec_set_key(wf, key, err);
    return rc;
}

static int
get_steps(const json_t *root, const json_t **steps, struct anvil_error *err)
{
    *steps = json_object_get(root, "steps");
    if (*steps == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "\"steps\" is missing: a workflow needs at least one step");
    if (!json_is_array(*steps))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "\"steps\" must be an array of steps, not %s",
            av_json_kind(*steps));
    if (json_array_size(*steps) == 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "\"steps\" is empty: a workflow needs at least one step");
    return ANVIL_OK;
}

static int
parse_root(
    const json_t *root, anvil_workflow_spec **out, struct anvil_error *err)
{
    const char          *name = NULL;
    const json_t        *steps;
    anvil_workflow_spec *wf = NULL;
    if (!json_is_object(root))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "a workflow definition must be a JSON object, not %s",
            av_json_kind(root));
    int rc = check_keys(root, top_keys, "", err);
    if (rc == ANVIL_OK)
        rc = get_string(root, "name", true, "", &name, err);
    if (rc == ANVIL_OK)
        rc = get_steps(root, &steps, err);
    if (rc == ANVIL_OK)
        rc = anvil_workflow_spec_new(&wf, name, err);
    if (rc == ANVIL_OK)
        rc = top_fields(root, wf, err);
    // Steps first, edges second: "after" may name a later step.
    for (size_t i = 0; rc == ANVIL_OK && i < json_array_size(steps); i++)
        rc = add_step(wf, i, json_array_get(steps, i), err);
    for (size_t i = 0; rc == ANVIL_OK && i < json_array_size(steps); i++)
        rc = add_edges(wf, i, json_array_get(steps, i), err);
    if (rc != ANVIL_OK) {
        anvil_workflow_spec_free(wf);
        return rc;
    }
    *out = wf;
    return ANVIL_OK;
}

int
anvil_workflow_spec_parse_json(const char *json, size_t len,
    anvil_workflow_spec **out, struct anvil_error *err)
{
    if (out == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "anvil_workflow_spec_parse_json: out is NULL");
    *out = NULL;
    if (json == NULL && len > 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "anvil_workflow_spec_parse_json: json is NULL but len is %zu", len);
    json_error_t jerr;
    json_t      *root = json_loadb(
             json != NULL ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
            jerr.text);
    int rc = parse_root(root, out, err);
    json_decref(root);
    return rc;
}
