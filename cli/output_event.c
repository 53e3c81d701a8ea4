// output_event.c - how `anvil events` prints an event: one line for people,
// one JSON object per line for scripts (see output.h).
//
// Each event is printed whole, on one line, so that a reader of the
// stream (a pipe into jq, a log file, a follower killed at any moment) can
// take its last complete line as the last event it saw.
#include "output.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <util/clock.h>

char *
output_event_kind(enum anvil_event_kind kind, char *buf, size_t len)
{
    snprintf(buf, len, "%s", anvil_event_kind_label(kind));
    return buf;
}

// A JSON string of s, or null when s is empty.
static json_t *
text_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? output_json_text(s) : json_null();
}

json_t *
output_event_json(const struct anvil_event *e)
{
    char       kind[32];
    json_t    *o   = json_object();
    int        rc  = o == NULL ? -1 : 0;
    json_int_t seq = e->seq > INT64_MAX ? INT64_MAX : (json_int_t) e->seq;
    rc |= json_object_set_new(o, "seq", json_integer(seq));
    rc |= json_object_set_new(
        o, "kind", json_string(output_event_kind(e->kind, kind, sizeof(kind))));
    rc |= json_object_set_new(o, "at_ms", json_integer(e->at_ms));
    rc |= json_object_set_new(o, "job_id", text_or_null(e->job_id));
    rc |= json_object_set_new(o, "workflow_id", text_or_null(e->workflow_id));
    rc |= json_object_set_new(o, "step", text_or_null(e->step));
    rc |= json_object_set_new(o, "type", text_or_null(e->type));
    rc |= json_object_set_new(o, "queue", text_or_null(e->queue));
    rc |= json_object_set_new(o, "worker", text_or_null(e->worker));
    rc |= json_object_set_new(o, "attempt", json_integer(e->attempt));
    rc |= json_object_set_new(o, "message", text_or_null(e->message));
    if (e->kind == ANVIL_EVENT_JOB_PROGRESS)
        rc |= json_object_set_new(
            o, "progress_percent", json_integer(e->progress_percent));
    return output_json_done(o, rc);
}

// Writes " key=value" (value cleaned) when value is not empty.
static void
put_field(FILE *f, const char *key, const char *value)
{
    if (value == NULL || value[0] == '\0')
        return;
    char *clean = output_text_clean(value, strlen(value));
    for (char *p = clean; p != NULL && *p != '\0'; p++)
        if (*p == '\n' || *p == '\t' || *p == ' ')
            *p = '_'; // keep key=value one word
    if (key != NULL)
        fprintf(f, " %s=%s", key, clean != NULL ? clean : "?");
    else
        fprintf(f, " %s", clean != NULL ? clean : "?");
    free(clean);
}

// What the event is about: its job, else its workflow, else its worker.
static const char *
subject(const struct anvil_event *e)
{
    if (e->job_id[0] != '\0')
        return e->job_id;
    if (e->workflow_id[0] != '\0')
        return e->workflow_id;
    return e->worker;
}

void
output_event_human(FILE *f, const struct anvil_event *e)
{
    char        at[40], kind[32];
    const char *subj = subject(e);
    fprintf(f, "%s %" PRIu64 " %s", av_format_time(e->at_ms, at, sizeof(at)),
        e->seq, output_event_kind(e->kind, kind, sizeof(kind)));
    put_field(f, NULL, subj);
    if (subj != e->workflow_id)
        put_field(f, "workflow", e->workflow_id);
    put_field(f, "step", e->step);
    put_field(f, "type", e->type);
    put_field(f, "queue", e->queue);
    if (subj != e->worker)
        put_field(f, "worker", e->worker);
    if (e->attempt > 0)
        fprintf(f, " attempt=%" PRIu32, e->attempt);
    if (e->kind == ANVIL_EVENT_JOB_PROGRESS)
        fprintf(f, " percent=%d", (int) e->progress_percent);
    if (e->message[0] != '\0') {
        char *msg = output_text_clean(e->message, strlen(e->message));
        for (char *p = msg; p != NULL && *p != '\0'; p++)
            if (*p == '\n' || *p == '\t')
                *p = ' ';
        fprintf(f, ": %s", msg != NULL ? msg : "?");
        free(msg);
    }
    fputc('\n', f);
}

void
output_events_missed(FILE *f, uint64_t after_seq, uint64_t first_seq)
{
    if (first_seq > after_seq + 1)
        fprintf(f,
            "anvil: warning: events %" PRIu64 " to %" PRIu64
            " were deleted by retention before they were read\n",
            after_seq + 1, first_seq - 1);
    else
        fprintf(f,
            "anvil: warning: events after %" PRIu64
            " were deleted by retention before they were read\n",
            after_seq);
}
