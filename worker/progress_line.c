// progress_line.c - the progress lines of exec handlers (see
// progress_line.h).
//
// The scan keeps at most PROGRESS_LINE_MAX bytes of a line, and only while
// the line can still be a progress line (it starts with the keyword): any
// other line is passed through as it comes, so a long or binary stderr
// costs no buffering and no copies beyond the tail the launcher keeps.
#include "progress_line.h"

#include "util/utf8.h"

#include <string.h>

#define KEYWORD_LEN (sizeof(PROGRESS_KEYWORD) - 1)

static bool
blank(char c)
{
    return c == ' ' || c == '\t';
}

// Reads the percent at line[*i]: 1 to 3 digits, at most 100.
static bool
read_percent(const char *line, size_t len, size_t *i, int *percent)
{
    int    v = 0;
    size_t n = 0;
    while (*i < len && line[*i] >= '0' && line[*i] <= '9' && n < 4) {
        v = v * 10 + (line[*i] - '0');
        (*i)++;
        n++;
    }
    if (n == 0 || n > 3 || v > 100)
        return false;
    *percent = v;
    return true;
}

enum progress_line_kind
progress_line_parse(
    const char *line, size_t len, int *percent, char *msg, size_t cap)
{
    if (len < KEYWORD_LEN || memcmp(line, PROGRESS_KEYWORD, KEYWORD_LEN) != 0
        || (len > KEYWORD_LEN && !blank(line[KEYWORD_LEN])
            && line[KEYWORD_LEN] != '\r'))
        return PROGRESS_LINE_NONE;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    size_t i = KEYWORD_LEN;
    while (i < len && blank(line[i]))
        i++;
    int p;
    if (!read_percent(line, len, &i, &p) || (i < len && !blank(line[i])))
        return PROGRESS_LINE_MALFORMED;
    while (i < len && blank(line[i]))
        i++;
    size_t mlen = len - i;
    if (mlen > ANVIL_PROGRESS_MESSAGE_MAX || mlen >= cap
        || !av_utf8_valid(line + i, mlen))
        return PROGRESS_LINE_MALFORMED;
    memcpy(msg, line + i, mlen);
    msg[mlen] = '\0';
    *percent  = p;
    return PROGRESS_LINE_OK;
}

static void
pass(const struct progress_sink *k, const char *buf, size_t n)
{
    if (n > 0)
        k->pass(k->arg, buf, n);
}

// Judges the line held in s (its "\n" excluded; newline says whether one
// followed) and starts the next one.
static void
end_line(struct progress_scan *s, bool newline, const struct progress_sink *k)
{
    char                    msg[ANVIL_PROGRESS_MESSAGE_MAX + 1];
    int                     percent = 0;
    enum progress_line_kind kind    = s->passing
           ? PROGRESS_LINE_NONE
           : progress_line_parse(s->line, s->len, &percent, msg, sizeof(msg));
    if (kind == PROGRESS_LINE_OK) {
        k->report(k->arg, percent, msg);
    } else {
        if (kind == PROGRESS_LINE_MALFORMED && !s->warned
            && k->malformed != NULL) {
            s->warned = true;
            k->malformed(k->arg, s->line, s->len);
        }
        if (!s->passing)
            pass(k, s->line, s->len);
        if (newline)
            pass(k, "\n", 1);
    }
    s->len     = 0;
    s->passing = false;
}

// Whether the held bytes can still begin a progress line.
static bool
may_be_progress(const struct progress_scan *s)
{
    size_t n = s->len < KEYWORD_LEN ? s->len : KEYWORD_LEN;
    return s->len <= PROGRESS_LINE_MAX
        && memcmp(s->line, PROGRESS_KEYWORD, n) == 0;
}

void
progress_scan_feed(struct progress_scan *s, const char *buf, size_t n,
    const struct progress_sink *k)
{
    size_t i = 0;
    while (i < n) {
        const char *nl   = memchr(buf + i, '\n', n - i);
        size_t      take = (nl != NULL ? (size_t) (nl - buf) : n) - i;
        if (s->passing) {
            pass(k, buf + i, take);
        } else {
            size_t room = PROGRESS_LINE_MAX - s->len;
            size_t keep = take < room ? take : room;
            memcpy(s->line + s->len, buf + i, keep);
            s->len += keep;
            if (keep < take || !may_be_progress(s)) {
                // Not one: what is held and the rest of the line pass.
                pass(k, s->line, s->len);
                pass(k, buf + i + keep, take - keep);
                s->len     = 0;
                s->passing = true;
            }
        }
        i += take;
        if (nl != NULL) {
            end_line(s, true, k);
            i++;
        }
    }
}

void
progress_scan_end(struct progress_scan *s, const struct progress_sink *k)
{
    if (s->len > 0)
        end_line(s, false, k);
    s->passing = false;
}
