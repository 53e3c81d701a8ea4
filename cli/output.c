// output.c - printing jobs, lists and health for people and for scripts.
//
// Everything a server sends is untrusted text: human output replaces
// control characters and invalid UTF-8 with '?', so a job's error message
// cannot move the cursor or clear a terminal; JSON output never loses a
// byte (see output.h for the base64 rule).
#include "output.h"

#include <stdlib.h>
#include <string.h>
#include <util/clock.h>

#define TIME_LEN 40

// ---- UTF-8

// Length of the valid UTF-8 sequence at p (1..4), or 0 when the bytes there
// are not one (overlong forms, surrogates, > U+10FFFF, truncated).
static size_t
utf8_seq(const uint8_t *p, size_t len, uint32_t *cp)
{
    size_t   n;
    uint32_t c;
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    } else if ((p[0] & 0xe0) == 0xc0) {
        n = 2;
        c = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3;
        c = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4;
        c = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3f);
    }
    static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (c < min[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

bool
output_utf8_valid(const void *p, size_t len)
{
    const uint8_t *s = p;
    size_t         i = 0;
    while (i < len) {
        uint32_t cp;
        size_t   n = utf8_seq(s + i, len - i, &cp);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

// Copy of p[0..len) fit for a terminal: valid UTF-8 minus control
// characters (newline and tab kept), '?' for anything else; trailing
// newlines dropped. Caller frees; NULL on OOM.
char *
output_text_clean(const void *p, size_t len)
{
    const uint8_t *s   = p;
    char          *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    size_t i = 0, o = 0;
    while (i < len) {
        uint32_t cp;
        size_t   n    = utf8_seq(s + i, len - i, &cp);
        bool     ctrl = cp < 0x20 || (cp >= 0x7f && cp < 0xa0);
        if (n == 0 || (ctrl && cp != '\n' && cp != '\t')) {
            out[o++] = '?';
            i += n == 0 ? 1 : n;
            continue;
        }
        memcpy(out + o, s + i, n);
        o += n;
        i += n;
    }
    while (o > 0 && out[o - 1] == '\n')
        o--;
    out[o] = '\0';
    return out;
}

// Display width of s, counted in code points (good enough for the names
// and numbers in our tables).
size_t
output_text_width(const char *s)
{
    size_t w = 0;
    for (; *s != '\0'; s++)
        w += ((unsigned char) *s & 0xc0) != 0x80;
    return w;
}

// ---- Bytes to JSON

char *
output_base64(const void *p, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "abcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t    *s     = p;
    char             *out   = malloc((len + 2) / 3 * 4 + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t) s[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t) s[i + 1] << 8;
        if (i + 2 < len)
            v |= s[i + 2];
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = i + 1 < len ? abc[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? abc[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

// A JSON string of text that should be UTF-8 (names, messages): invalid
// bytes become U+FFFD rather than failing the whole object.
json_t *
output_json_text(const char *s)
{
    size_t len = strlen(s);
    if (output_utf8_valid(s, len))
        return json_stringn(s, len);
    char *fixed = malloc(len * 3 + 1);
    if (fixed == NULL)
        return NULL;
    size_t i = 0, o = 0;
    while (i < len) {
        uint32_t cp;
        size_t   n = utf8_seq((const uint8_t *) s + i, len - i, &cp);
        if (n == 0) {
            memcpy(fixed + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
            continue;
        }
        memcpy(fixed + o, s + i, n);
        o += n;
        i += n;
    }
    json_t *j = json_stringn(fixed, o);
    free(fixed);
    return j;
}

json_t *
output_json_text_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? output_json_text(s) : json_null();
}

// Sets obj[key] to the bytes as a string, or to null plus
// obj[key "_base64"] when they are not UTF-8. 0 or -1 (OOM).
int
output_json_set_bytes(
    json_t *obj, const char *key, const uint8_t *p, size_t len)
{
    if (len == 0)
        return json_object_set_new(obj, key, json_null());
    if (output_utf8_valid(p, len))
        return json_object_set_new(
            obj, key, json_stringn((const char *) p, len));
    char  b64key[64];
    char *b64 = output_base64(p, len);
    snprintf(b64key, sizeof(b64key), "%s_base64", key);
    int rc = json_object_set_new(obj, key, json_null());
    if (rc == 0)
        rc = json_object_set_new(obj, b64key, b64 ? json_string(b64) : NULL);
    free(b64);
    return rc;
}

json_t *
output_json_time(int64_t ms)
{
    char buf[TIME_LEN];
    if (ms <= 0)
        return json_null();
    return json_string(av_format_time(ms, buf, sizeof(buf)));
}

// {"percent": 40, "message": "..."}, or null when none was reported.
static json_t *
output_progress_json(const struct anvil_job *job)
{
    if (!job->has_progress)
        return json_null();
    return json_pack("{s:i,s:o}", "percent", (int) job->progress_percent,
        "message",
        output_json_text(job->progress_message ? job->progress_message : ""));
}

json_t *
output_json_done(json_t *o, int rc)
{
    if (rc == 0)
        return o;
    json_decref(o);
    return NULL;
}

// json_object_set_new() consumes the value even when it fails, so neither
// helper leaks what it was given.
json_t *
output_json_wrap(const char *key, json_t *value)
{
    json_t *o = json_object();
    return output_json_done(o, json_object_set_new(o, key, value));
}

json_t *
output_json_page(const char *key, json_t *items, const char *cursor)
{
    json_t *o = output_json_wrap(key, items);
    json_t *c = output_json_text_or_null(cursor);
    return output_json_done(o, json_object_set_new(o, "next_cursor", c));
}

json_t *
output_job_json(const struct anvil_job *job)
{
    json_t *o  = json_object();
    int     rc = o == NULL ? -1 : 0;
    rc |= json_object_set_new(o, "id", output_json_text(job->id));
    rc |= json_object_set_new(o, "type", output_json_text(job->type));
    rc |= json_object_set_new(o, "queue", output_json_text(job->queue));
    rc |= json_object_set_new(
        o, "state", json_string(anvil_job_state_name(job->state)));
    rc |= json_object_set_new(o, "attempt", json_integer(job->attempt));
    rc |= json_object_set_new(
        o, "max_attempts", json_integer(job->retry.max_attempts));
    rc |= json_object_set_new(o, "priority", json_integer(job->priority));
    rc |= output_json_set_bytes(o, "payload", job->payload, job->payload_len);
    rc |= output_json_set_bytes(o, "result", job->result, job->result_len);
    rc |= json_object_set_new(o, "error", output_json_text_or_null(job->error));
    rc |= json_object_set_new(
        o, "created_at", output_json_time(job->created_at_ms));
    rc |= json_object_set_new(
        o, "started_at", output_json_time(job->started_at_ms));
    rc |= json_object_set_new(
        o, "finished_at", output_json_time(job->finished_at_ms));
    rc |= json_object_set_new(o, "progress", output_progress_json(job));
    rc |= json_object_set_new(
        o, "concurrency_key", output_json_text_or_null(job->concurrency_key));
    rc |= json_object_set_new(
        o, "concurrency_limit", json_integer(job->concurrency_limit));
    return output_json_done(o, rc);
}

json_t *
output_list_json(const struct anvil_job_list *list)
{
    json_t *jobs = json_array();
    int     rc   = jobs == NULL ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < list->n; i++)
        rc = json_array_append_new(jobs, output_job_json(&list->jobs[i]));
    return output_json_page(
        "jobs", output_json_done(jobs, rc), list->next_cursor);
}

// Integers beyond what JSON consumers read exactly do not occur in
// practice; clamp rather than wrap.
static json_t *
json_u64(uint64_t v)
{
    return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t) v);
}

static json_t *
depth_json(const struct anvil_queue_depth *d)
{
    json_t *o  = json_object();
    int     rc = o == NULL ? -1 : 0;
    rc |= json_object_set_new(o, "queue", output_json_text(d->queue));
    rc |= json_object_set_new(o, "type", output_json_text(d->type));
    rc |= json_object_set_new(o, "queued", json_u64(d->queued));
    rc |= json_object_set_new(o, "scheduled", json_u64(d->scheduled));
    rc |= json_object_set_new(o, "running", json_u64(d->running));
    rc |= json_object_set_new(o, "no_worker", json_boolean(d->no_worker));
    rc |= json_object_set_new(o, "paused", json_boolean(d->paused));
    return output_json_done(o, rc);
}

static json_t *
limit_json(const struct anvil_queue_limit *l)
{
    json_t *o  = json_object();
    int     rc = o == NULL ? -1 : 0;
    rc |= json_object_set_new(o, "queue", output_json_text(l->queue));
    rc |= json_object_set_new(
        o, "rate_per_second", json_real(l->rate_per_second));
    rc |= json_object_set_new(o, "burst", json_integer(l->burst));
    rc |= json_object_set_new(o, "tokens", json_real(l->tokens));
    return output_json_done(o, rc);
}

static json_t *
key_json(const struct anvil_key_state *k)
{
    json_t *o  = json_object();
    int     rc = o == NULL ? -1 : 0;
    rc |= json_object_set_new(o, "key", output_json_text(k->key));
    rc |= json_object_set_new(o, "running", json_u64(k->running));
    rc |= json_object_set_new(o, "waiting", json_u64(k->waiting));
    rc |= json_object_set_new(o, "limit", json_u64(k->limit));
    return output_json_done(o, rc);
}

json_t *
output_health_json(const struct anvil_health *h)
{
    json_t *o  = json_object();
    json_t *qs = json_array();
    json_t *ps = json_array();
    json_t *ls = json_array();
    json_t *ks = json_array();
    int rc = o == NULL || qs == NULL || ps == NULL || ls == NULL || ks == NULL
        ? -1
        : 0;
    for (size_t i = 0; rc == 0 && i < h->n_queue_limits; i++)
        rc = json_array_append_new(ls, limit_json(&h->queue_limits[i]));
    for (size_t i = 0; rc == 0 && i < h->n_depths; i++)
        rc = json_array_append_new(qs, depth_json(&h->depths[i]));
    for (size_t i = 0; rc == 0 && i < h->n_paused_queues; i++)
        rc = json_array_append_new(ps, output_json_text(h->paused_queues[i]));
    for (size_t i = 0; rc == 0 && i < h->n_busiest_keys; i++)
        rc = json_array_append_new(ks, key_json(&h->busiest_keys[i]));
    rc |= json_object_set_new(o, "version", output_json_text(h->version));
    rc |= json_object_set_new(o, "uptime_ms", json_integer(h->uptime_ms));
    rc |= json_object_set_new(o, "jobs_total", json_u64(h->jobs_total));
    rc |= json_object_set_new(o, "last_event_seq", json_u64(h->last_event_seq));
    rc |= json_object_set(o, "queues", qs);
    rc |= json_object_set(o, "paused_queues", ps);
    rc |= json_object_set(o, "queue_limits", ls);
    rc |= json_object_set(o, "busiest_keys", ks);
    json_decref(qs);
    json_decref(ps);
    json_decref(ls);
    json_decref(ks);
    return output_json_done(o, rc);
}

json_t *
output_submit_json(const char *id, bool existed)
{
    json_t *o  = json_object();
    int     rc = o == NULL ? -1 : 0;
    rc |= json_object_set_new(o, "id", output_json_text(id));
    rc |= json_object_set_new(o, "existed", json_boolean(existed));
    return output_json_done(o, rc);
}

int
output_json_print(FILE *f, const json_t *obj)
{
    if (obj == NULL || json_dumpf(obj, f, 0) != 0)
        return -1;
    return fputc('\n', f) == EOF ? -1 : 0;
}

// ---- Text

char *
output_duration(int64_t ms, char *buf, size_t len)
{
    long long h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60;
    long long frac = ms % 1000;
    if (ms < 0)
        snprintf(buf, len, "-");
    else if (ms < 1000)
        snprintf(buf, len, "%lldms", frac);
    else if (ms < 60000)
        snprintf(buf, len, "%lld.%03llds", s, frac);
    else if (ms < 3600000)
        snprintf(buf, len, "%lldm%lld.%03llds", m, s, frac);
    else
        snprintf(buf, len, "%lldh%lldm%llds", h, m, s);
    return buf;
}

void
output_fields(
    FILE *f, const char *const *labels, const char *const *values, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        size_t lw = output_text_width(labels[i]) + 1;
        w         = lw > w ? lw : w;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v = values[i] != NULL && values[i][0] ? values[i] : "-";
        fprintf(f, "%s:%*s ", labels[i],
            (int) (w - output_text_width(labels[i]) - 1), "");
        for (; *v != '\0'; v++) {
            fputc(*v, f);
            if (*v == '\n')
                fprintf(f, "%*s", (int) w + 1, "");
        }
        fputc('\n', f);
    }
}

// Text of a result for people: the text itself, or a note for binary data.
char *
output_result_text(const struct anvil_job *job)
{
    if (job->result_len > 0
        && !output_utf8_valid(job->result, job->result_len)) {
        char note[96];
        snprintf(note, sizeof(note), "<%zu bytes, not UTF-8; see --json>",
            job->result_len);
        return strdup(note);
    }
    return output_text_clean(job->result, job->result_len);
}

void
output_span(
    int64_t start_ms, int64_t end_ms, int64_t now_ms, char *buf, size_t len)
{
    buf[0] = '\0';
    if (start_ms <= 0)
        return;
    if (end_ms > 0) {
        output_duration(end_ms - start_ms, buf, len);
        return;
    }
    char d[32];
    output_duration(now_ms - start_ms, d, sizeof(d));
    snprintf(buf, len, "%s so far", d);
}

void
output_job_human(FILE *f, const struct anvil_job *job, int64_t now_ms)
{
    // The last two only when the job has a concurrency key and when
    // progress was reported.
    enum { N = 14 };
    const char *labels[N]
        = { "ID", "Type", "Queue", "State", "Attempt", "Priority", "Created",
              "Started", "Finished", "Duration", "Result", "Error" };
    char        conc[160];
    char        attempt[32], prio[16], created[TIME_LEN], started[TIME_LEN];
    char        finished[TIME_LEN], dur[48];
    char        progress[ANVIL_PROGRESS_MESSAGE_MAX + 16];
    const char *pm = job->progress_message ? job->progress_message : "";
    snprintf(progress, sizeof(progress), "%d%%%s%s",
        (int) job->progress_percent, pm[0] ? " " : "", pm);
    char *prog   = output_text_clean(progress, strlen(progress));
    char *id     = output_text_clean(job->id, strlen(job->id));
    char *type   = output_text_clean(job->type, strlen(job->type));
    char *queue  = output_text_clean(job->queue, strlen(job->queue));
    char *result = output_result_text(job);
    char *error  = output_text_clean(job->error, strlen(job->error));
    snprintf(attempt, sizeof(attempt), "%u/%u", (unsigned) job->attempt,
        (unsigned) job->retry.max_attempts);
    snprintf(prio, sizeof(prio), "%d", (int) job->priority);
    output_span(
        job->started_at_ms, job->finished_at_ms, now_ms, dur, sizeof(dur));
    const char *values[N]
        = { id, type, queue, anvil_job_state_name(job->state), attempt, prio,
              av_format_time(job->created_at_ms, created, sizeof(created)),
              av_format_time(job->started_at_ms, started, sizeof(started)),
              av_format_time(job->finished_at_ms, finished, sizeof(finished)),
              dur, result, error };
    size_t n = N - 2;
    if (job->concurrency_key != NULL && job->concurrency_key[0] != '\0') {
        // A key is [A-Za-z0-9_.-]: nothing to clean.
        snprintf(conc, sizeof(conc), "%s (limit %u)", job->concurrency_key,
            (unsigned) job->concurrency_limit);
        labels[n]   = "Concurrency";
        values[n++] = conc;
    }
    if (job->has_progress) {
        labels[n]   = "Progress";
        values[n++] = prog;
    }
    output_fields(f, labels, values, n);
    free(prog);
    free(id);
    free(type);
    free(queue);
    free(result);
    free(error);
}

// ---- Tables

struct output_table {
    size_t ncols;
    size_t nrows; // rows of cells, the header included
    size_t cap;   // rows allocated
    char **cells; // nrows * ncols, row-major
    bool  *right; // ncols flags
};

struct output_table *
output_table_new(size_t ncols, const char *const *headers)
{
    struct output_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->ncols = ncols;
    t->right = calloc(ncols, sizeof(bool));
    if (t->right == NULL || output_table_add(t, headers) != 0) {
        output_table_free(t);
        return NULL;
    }
    return t;
}

void
output_table_align_right(struct output_table *t, size_t col)
{
    if (col < t->ncols)
        t->right[col] = true;
}

int
output_table_add(struct output_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        char **c   = realloc(t->cells, cap * t->ncols * sizeof(char *));
        if (c == NULL)
            return -1;
        t->cells = c;
        t->cap   = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        const char *s = cells[i] != NULL && cells[i][0] ? cells[i] : "-";
        row[i]        = output_text_clean(s, strlen(s));
        if (row[i] == NULL) {
            for (size_t j = 0; j < i; j++)
                free(row[j]);
            return -1;
        }
        // One cell, one line.
        for (char *p = strchr(row[i], '\n'); p != NULL; p = strchr(p, '\n'))
            *p = ' ';
    }
    t->nrows++;
    return 0;
}

void
output_table_print(const struct output_table *t, FILE *f)
{
    size_t *w = calloc(t->ncols, sizeof(size_t));
    if (w == NULL)
        return;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t cw = output_text_width(t->cells[r * t->ncols + c]);
            w[c]      = cw > w[c] ? cw : w[c];
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s    = t->cells[r * t->ncols + c];
            int         pad  = (int) (w[c] - output_text_width(s));
            bool        last = c + 1 == t->ncols;
            if (t->right[c])
                fprintf(f, "%*s%s", pad, "", s);
            else
                fprintf(f, "%s%*s", s, last ? 0 : pad, "");
            fputs(last ? "\n" : "  ", f);
        }
    }
    free(w);
}

void
output_table_free(struct output_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->right);
    free(t);
}

void
output_list_human(FILE *f, const struct anvil_job_list *list)
{
    static const char *const hdr[]
        = { "ID", "TYPE", "QUEUE", "STATE", "ATTEMPT", "CREATED" };
    if (list->n == 0) {
        fputs("No jobs.\n", f);
    } else {
        struct output_table *t = output_table_new(6, hdr);
        for (size_t i = 0; t != NULL && i < list->n; i++) {
            const struct anvil_job *j = &list->jobs[i];
            char                    attempt[32], created[TIME_LEN];
            snprintf(attempt, sizeof(attempt), "%u/%u", (unsigned) j->attempt,
                (unsigned) j->retry.max_attempts);
            const char *row[] = { j->id, j->type, j->queue,
                anvil_job_state_name(j->state), attempt,
                av_format_time(j->created_at_ms, created, sizeof(created)) };
            output_table_add(t, row);
        }
        if (t != NULL)
            output_table_print(t, f);
        output_table_free(t);
    }
    if (list->next_cursor != NULL && list->next_cursor[0] != '\0') {
        char *cur
            = output_text_clean(list->next_cursor, strlen(list->next_cursor));
        fprintf(f, "More jobs: add --cursor %s to see the next page.\n",
            cur ? cur : "?");
        free(cur);
    }
}

// The paused queues as "a, b" (cleaned for a terminal), or NULL when
// there are none (or out of memory).
static char *
paused_list(const struct anvil_health *h)
{
    size_t len = 1;
    for (size_t i = 0; i < h->n_paused_queues; i++)
        len += strlen(h->paused_queues[i]) + 2;
    char *buf = h->n_paused_queues > 0 ? malloc(len) : NULL;
    if (buf == NULL)
        return NULL;
    buf[0] = '\0';
    for (size_t i = 0; i < h->n_paused_queues; i++) {
        if (i > 0)
            strcat(buf, ", ");
        strcat(buf, h->paused_queues[i]);
    }
    char *clean = output_text_clean(buf, strlen(buf));
    free(buf);
    return clean;
}

// The rate limits as "a 50/s burst 1 (0.4 tokens), b ..." (cleaned for a
// terminal), or NULL when there are none (or out of memory).
static char *
limits_list(const struct anvil_health *h)
{
    size_t len = 1;
    for (size_t i = 0; i < h->n_queue_limits; i++)
        len += strlen(h->queue_limits[i].queue) + 80;
    char *buf = h->n_queue_limits > 0 ? malloc(len) : NULL;
    if (buf == NULL)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < h->n_queue_limits; i++) {
        const struct anvil_queue_limit *l = &h->queue_limits[i];
        at += (size_t) snprintf(buf + at, len - at,
            "%s%s %g/s burst %u (%.1f tokens)", i > 0 ? ", " : "", l->queue,
            l->rate_per_second, l->burst, l->tokens);
    }
    char *clean = output_text_clean(buf, strlen(buf));
    free(buf);
    return clean;
}

// The busiest concurrency keys, after the queues.
static void
keys_human(FILE *f, const struct anvil_health *h)
{
    static const char *const hdr[]
        = { "CONCURRENCY KEY", "RUNNING", "LIMIT", "WAITING" };
    if (h->n_busiest_keys == 0)
        return;
    struct output_table *t = output_table_new(4, hdr);
    if (t == NULL)
        return;
    for (size_t col = 1; col <= 3; col++)
        output_table_align_right(t, col);
    for (size_t i = 0; i < h->n_busiest_keys; i++) {
        const struct anvil_key_state *k = &h->busiest_keys[i];
        char                          r[24], l[24], w[24];
        snprintf(r, sizeof(r), "%lu", (unsigned long) k->running);
        snprintf(l, sizeof(l), "%lu", (unsigned long) k->limit);
        snprintf(w, sizeof(w), "%llu", (unsigned long long) k->waiting);
        const char *row[] = { k->key, r, l, w };
        output_table_add(t, row);
    }
    fputc('\n', f);
    output_table_print(t, f);
    output_table_free(t);
}

void
output_health_human(FILE *f, const struct anvil_health *h)
{
    static const char *const hdr[]
        = { "QUEUE", "TYPE", "QUEUED", "SCHEDULED", "RUNNING", "NO WORKER" };
    const char *labels[6] = { "Version", "Uptime", "Jobs" };
    char        up[32], total[24], seq[24];
    char       *version = output_text_clean(h->version, strlen(h->version));
    char       *paused  = paused_list(h);
    char       *limits  = limits_list(h);
    snprintf(total, sizeof(total), "%llu", (unsigned long long) h->jobs_total);
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long) h->last_event_seq);
    const char *values[6]
        = { version, output_duration(h->uptime_ms, up, 32), total };
    size_t n = 3;
    // An older server sends no event sequence: no line for it then.
    if (h->last_event_seq > 0) {
        labels[n]   = "Last event";
        values[n++] = seq;
    }
    if (paused != NULL) {
        labels[n]   = "Paused";
        values[n++] = paused;
    }
    if (limits != NULL) {
        labels[n]   = "Rate limits";
        values[n++] = limits;
    }
    output_fields(f, labels, values, n);
    free(version);
    free(paused);
    free(limits);
    fputc('\n', f);
    if (h->n_depths == 0) {
        fputs("No queued or running jobs.\n", f);
        keys_human(f, h);
        return;
    }
    // The NO WORKER column shows only when a queue has no worker.
    bool orphans = false;
    for (size_t i = 0; i < h->n_depths; i++)
        orphans = orphans || h->depths[i].no_worker;
    struct output_table *t = output_table_new(orphans ? 6 : 5, hdr);
    if (t == NULL)
        return;
    for (size_t col = 2; col <= 4; col++)
        output_table_align_right(t, col);
    for (size_t i = 0; i < h->n_depths; i++) {
        const struct anvil_queue_depth *d = &h->depths[i];
        char                            q[24], sc[24], r[24];
        snprintf(q, sizeof(q), "%llu", (unsigned long long) d->queued);
        snprintf(sc, sizeof(sc), "%llu", (unsigned long long) d->scheduled);
        snprintf(r, sizeof(r), "%llu", (unsigned long long) d->running);
        char name[160];
        snprintf(
            name, sizeof(name), "%s%s", d->queue, d->paused ? " (paused)" : "");
        const char *row[]
            = { name, d->type, q, sc, r, d->no_worker ? "yes" : "no" };
        output_table_add(t, row);
    }
    output_table_print(t, f);
    output_table_free(t);
    keys_human(f, h);
}
