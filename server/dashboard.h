// dashboard.h - the web dashboard's files (HTML, CSS, JavaScript), embedded
// in the binary at build time from web/ and served by the HTTP endpoint at
// "/" (http.c). No build step, nothing fetched from elsewhere.
#ifndef SERVER_DASHBOARD_H
#define SERVER_DASHBOARD_H

#include <microhttpd.h>
#include <stddef.h>

struct dashboard_file {
    const char          *path;         // "/index.html", "/app.js", ...
    const char          *content_type; // with charset for text
    const unsigned char *data;
    size_t               len;
    const char          *etag; // quoted, from the content's hash
};

// The file served at path ("/" serves "/index.html"; the query is not part
// of path), or NULL when there is none.
const struct dashboard_file *dashboard_find(const char *path);

// Answers a GET or HEAD of path (a path outside the API's: "/",
// "/app.js", "/jobs/j42" for the page's own routes, ...) on conn with the
// dashboard's file and its headers (DASHBOARD_CSP, nosniff, no-referrer,
// ETag; 304 on a matching If-None-Match); a path that names no file and
// looks like one (it has an extension) gets 404. Called from http.c's
// request handler on the MHD thread; returns what MHD_queue_response did.
enum MHD_Result dashboard_answer(
    struct MHD_Connection *conn, const char *method, const char *path);

// The Content-Security-Policy (and the headers beside it) that every
// dashboard response carries: scripts, styles and connections from this
// origin only, no inline script, no framing.
#define DASHBOARD_CSP                                             \
    "default-src 'none'; script-src 'self'; style-src 'self'; "   \
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; " \
    "manifest-src 'self'; base-uri 'none'; form-action 'none'; "  \
    "frame-ancestors 'none'"

#endif
