// log.c - the log sink. Lines are formatted into a stack buffer and handed
// to the sink in one call, so lines from several threads never interleave.
#include "log.h"

#include "clock.h"

#include <anvil/anvil.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static anvil_log_fn sink_fn;
static void        *sink_arg;
static int          log_level = AV_LOG_INFO;
static bool         log_json;
static const char  *log_component = "anvil";

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int
av_log_parse_level(const char *name, int *level)
{
    for (int i = 0; i <= AV_LOG_DEBUG; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *level = i;
            return 0;
        }
    }
    return -1;
}

void
av_log_set_level(int level)
{
    log_level = level;
}

void
av_log_set_json(bool json)
{
    log_json = json;
}

void
av_log_set_component(const char *name)
{
    log_component = name;
}

void
anvil_logger_set(anvil_log_fn fn, void *arg)
{
    sink_fn  = fn;
    sink_arg = arg;
}

static void
stderr_sink(void *arg, int level, const char *line)
{
    (void) arg;
    (void) level;
    fputs(line, stderr);
    fputc('\n', stderr);
}

void
av_log_to_stderr(void)
{
    anvil_logger_set(stderr_sink, NULL);
}

bool
av_log_enabled(int level)
{
    return sink_fn != NULL && level <= log_level;
}

// Appends s to out as a JSON string body (no quotes), escaping as needed.
static size_t
json_escape(char *out, size_t cap, size_t at, const char *s, size_t n)
{
    for (size_t i = 0; i < n && at + 7 < cap; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c == '"' || c == '\\') {
            out[at++] = '\\';
            out[at++] = (char) c;
        } else if (c < 0x20) {
            at += (size_t) snprintf(out + at, cap - at, "\\u%04x", c);
        } else {
            out[at++] = (char) c;
        }
    }
    return at;
}

// Turns "a=1 b=\"x y\"" into ,"a":"1","b":"x y".
static size_t
fields_to_json(char *out, size_t cap, size_t at, const char *f)
{
    while (*f != '\0' && at + 16 < cap) {
        while (*f == ' ')
            f++;
        const char *eq = strchr(f, '=');
        if (*f == '\0' || eq == NULL)
            break;
        at += (size_t) snprintf(out + at, cap - at, ",\"");
        at = json_escape(out, cap, at, f, (size_t) (eq - f));
        at += (size_t) snprintf(out + at, cap - at, "\":\"");
        const char *v = eq + 1, *end;
        if (*v == '"') {
            v++;
            end = strchr(v, '"');
            if (end == NULL)
                end = v + strlen(v);
            f = *end ? end + 1 : end;
        } else {
            end = strchr(v, ' ');
            if (end == NULL)
                end = v + strlen(v);
            f = end;
        }
        at = json_escape(out, cap, at, v, (size_t) (end - v));
        if (at + 2 < cap)
            out[at++] = '"';
    }
    return at;
}

void
av_log_write(int level, const char *event, const char *file, int line,
    const char *fmt, ...)
{
    char    fields[1536];
    char    out[2048];
    char    ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fields, sizeof(fields), fmt, ap);
    va_end(ap);
    av_format_time(av_now_ms(), ts, sizeof(ts));
    const char *lv = level_names[level < 0 ? 0 : level > 3 ? 3 : level];
    size_t      at;
    if (log_json) {
        at = (size_t) snprintf(out, sizeof(out),
            "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"%s\","
            "\"event\":\"%s\"",
            ts, lv, log_component, event);
        at = fields_to_json(out, sizeof(out), at, fields);
        if (log_level >= AV_LOG_DEBUG && at + 64 < sizeof(out))
            at += (size_t) snprintf(
                out + at, sizeof(out) - at, ",\"src\":\"%s:%d\"", file, line);
        snprintf(out + at, sizeof(out) - at, "}");
    } else {
        at = (size_t) snprintf(out, sizeof(out), "%s %-5s %s %s %s", ts, lv,
            log_component, event, fields);
        if (log_level >= AV_LOG_DEBUG && at < sizeof(out))
            snprintf(out + at, sizeof(out) - at, " src=%s:%d", file, line);
    }
    anvil_log_fn fn = sink_fn;
    if (fn != NULL)
        fn(sink_arg, level, out);
}
