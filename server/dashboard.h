// dashboard.h - the web dashboard's files (HTML, CSS, JavaScript), embedded
// in the binary at build time from web/ and served by the HTTP endpoint at
// "/" (http.c). No build step, nothing fetched from elsewhere.
#ifndef SERVER_DASHBOARD_H
#define SERVER_DASHBOARD_H

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

// The Content-Security-Policy (and the headers beside it) that every
// dashboard response carries: scripts, styles and connections from this
// origin only, no inline script, no framing.
#define DASHBOARD_CSP                                                    \
    "default-src 'none'; script-src 'self'; style-src 'self'; "          \
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; "        \
    "manifest-src 'self'; base-uri 'none'; form-action 'none'; "         \
    "frame-ancestors 'none'"

#endif
