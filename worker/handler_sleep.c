// handler_sleep.c - the seed's Sleep job: sleep, print a message, return it
// (as a JSON string).
#include "handlers.h"

#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define SECONDS_FIELD "SleepTimeInSeconds"
#define MESSAGE_FIELD "Message"

static int
bad_seconds(struct anvil_error *err)
{
    return av_error_set(err, ANVIL_INVALID_ARGUMENT,
        "Sleep: \"" SECONDS_FIELD "\" must be a number of seconds between 0 "
        "and %d",
        HANDLER_SLEEP_MAX_S);
}

// Reads the sleep from root into *ms.
static int
parse_seconds(json_t *root, int64_t *ms, struct anvil_error *err)
{
    json_t *v = json_object_get(root, SECONDS_FIELD);
    if (!json_is_number(v))
        return bad_seconds(err);
    double s = json_number_value(v);
    // Written so that NaN fails too.
    if (!(s >= 0.0 && s <= HANDLER_SLEEP_MAX_S))
        return bad_seconds(err);
    *ms = (int64_t) (s * 1000.0 + 0.5);
    return ANVIL_OK;
}

// Copies the optional message of root into *msg ("" when absent).
static int
parse_message(json_t *root, char **msg, struct anvil_error *err)
{
    json_t *v = json_object_get(root, MESSAGE_FIELD);
    if (v != NULL && !json_is_string(v))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "Sleep: \"" MESSAGE_FIELD "\" must be a string");
    *msg = strdup(v != NULL ? json_string_value(v) : "");
    if (*msg == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    return ANVIL_OK;
}

int
handler_sleep_parse(const void *payload, size_t len, int64_t *ms, char **msg,
    struct anvil_error *err)
{
    json_error_t jerr;
    *msg         = NULL;
    json_t *root = json_loadb(
        payload != NULL ? payload : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "Sleep: payload is not JSON (%s, at column %d); expected "
            "{\"" SECONDS_FIELD "\": 10, \"" MESSAGE_FIELD "\": \"...\"}",
            jerr.text, jerr.column);
    int rc = ANVIL_OK;
    if (!json_is_object(root))
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "Sleep: payload must be a JSON object such as "
            "{\"" SECONDS_FIELD "\": 10, \"" MESSAGE_FIELD "\": \"...\"}");
    if (rc == ANVIL_OK)
        rc = parse_seconds(root, ms, err);
    if (rc == ANVIL_OK)
        rc = parse_message(root, msg, err);
    json_decref(root);
    return rc;
}

int
handler_sleep_print(FILE *out, const char *msg)
{
    size_t n    = strlen(msg);
    char  *line = malloc(n + 1);
    if (line == NULL)
        return -1;
    memcpy(line, msg, n);
    line[n] = '\n';
    flockfile(out);
    size_t put = fwrite(line, 1, n + 1, out);
    int    rc  = fflush(out);
    funlockfile(out);
    free(line);
    return put == n + 1 && rc == 0 ? 0 : -1;
}

int
handler_sleep(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    FILE              *out = arg != NULL ? arg : stdout;
    int64_t            ms  = 0;
    char              *msg = NULL;
    struct anvil_error err = { 0 };
    int                rc  = handler_sleep_parse(
                        lease->job.payload, lease->job.payload_len, &ms, &msg, &err);
    if (rc != ANVIL_OK) {
        anvil_job_ctx_set_error(ctx, false, "%s", err.msg);
        return rc;
    }
    if (!anvil_job_ctx_sleep(ctx, ms)) {
        free(msg);
        anvil_job_ctx_set_error(ctx, true, "canceled");
        return ANVIL_CANCELLED;
    }
    // The message is the result, as a JSON string (so that JSON clients
    // see it as text): a closed stdout loses only the printed copy.
    if (handler_sleep_print(out, msg) != 0)
        AV_WARN("worker.sleep.print_failed", "id=%s errno=%d", lease->job.id,
            errno);
    json_t *j    = json_string(msg);
    char   *text = j != NULL ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    free(msg);
    if (text == NULL) {
        anvil_job_ctx_set_error(ctx, false, "out of memory");
        return ANVIL_RESOURCE_EXHAUSTED;
    }
    rc = anvil_job_ctx_set_result(ctx, text, strlen(text));
    free(text);
    return rc;
}
