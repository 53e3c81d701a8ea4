// progress_line.h - the progress lines an exec handler prints on stderr.
//
// A program reports progress by printing a line
//
//     ANVIL_PROGRESS <percent> <message>
//
// on stderr: percent an integer 0..100, the message (optional) the rest
// of the line, at most ANVIL_PROGRESS_MESSAGE_MAX bytes of UTF-8 (a
// trailing "\r" is dropped). Such a line is taken out of the stderr the
// job's error quotes; a line that starts with the keyword but is
// malformed stays in it as ordinary stderr, and the first of a run is
// handed to `malformed` (anvil-worker logs it at debug level). Any other
// line, however long or binary, passes through untouched.
//
// Threads: a struct progress_scan belongs to one run (one slot thread).
// No allocation, no locks.
#ifndef WORKER_PROGRESS_LINE_H
#define WORKER_PROGRESS_LINE_H

#include <anvil/anvil.h>

#include <stdbool.h>
#include <stddef.h>

#define PROGRESS_KEYWORD "ANVIL_PROGRESS"
// The longest line that can be a progress line: keyword, blanks, "100",
// a blank, the message, "\r"; longer lines pass through.
#define PROGRESS_LINE_MAX 256

// What progress_line_parse() finds.
enum progress_line_kind {
    PROGRESS_LINE_MALFORMED = -1, // the keyword, then not a valid report
    PROGRESS_LINE_NONE      = 0,  // not a progress line
    PROGRESS_LINE_OK        = 1,  // a report: *percent and msg are set
};

// Parses one line (len bytes, without its "\n"; NUL bytes allowed). On
// PROGRESS_LINE_OK, *percent is 0..100 and msg (cap bytes, at least
// ANVIL_PROGRESS_MESSAGE_MAX + 1) holds the NUL-terminated message.
enum progress_line_kind progress_line_parse(
    const char *line, size_t len, int *percent, char *msg, size_t cap);

// Where a scan sends what it reads. pass gets every byte that is not part
// of a valid progress line, in order (newlines included); report gets
// each valid report; malformed (may be NULL) the first malformed line.
struct progress_sink {
    void (*pass)(void *arg, const char *buf, size_t n);
    void (*report)(void *arg, int percent, const char *message);
    void (*malformed)(void *arg, const char *line, size_t len);
    void *arg;
};

// The state of one stream's scan: zero-initialise.
struct progress_scan {
    char   line[PROGRESS_LINE_MAX]; // the current line, while it may be one
    size_t len;
    bool   passing; // the current line is not one: its bytes pass at once
    bool   warned;  // malformed was called
};

// Scans the next n bytes of the stream.
void progress_scan_feed(struct progress_scan *s, const char *buf, size_t n,
    const struct progress_sink *sink);

// The stream ended: a last line without "\n" is judged as a line.
void progress_scan_end(
    struct progress_scan *s, const struct progress_sink *sink);

#endif
