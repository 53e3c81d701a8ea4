// dashboard.c - serves the dashboard's embedded files (dashboard_table.h,
// generated from web/ by tools/embed.c). The page is a single-page app
// with history routing, so a path that looks like one of its routes
// (/jobs/j42: no extension) is answered with index.html and the script
// draws the route; a path that looks like a file and is none is a 404.
// Every answer carries the same security headers: the page runs no inline
// script, loads nothing from elsewhere and may not be framed.
#include "dashboard.h"

#include "dashboard_table.h"

#include <stdbool.h>
#include <string.h>

const struct dashboard_file *
dashboard_find(const char *path)
{
    if (path == NULL)
        return NULL;
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (size_t i = 0; i < dashboard_files_n; i++) {
        if (strcmp(dashboard_files[i].path, path) == 0)
            return &dashboard_files[i];
    }
    return NULL;
}

// A last segment with a dot ("/app.js", "/favicon.ico") names a file; one
// without ("/jobs/j42", "/workers") is a route of the page, and so is
// every path under /schedules/ (a schedule's name may hold a dot).
static bool
looks_like_file(const char *path)
{
    if (strncmp(path, "/schedules/", 11) == 0)
        return false;
    const char *slash = strrchr(path, '/');
    const char *last  = slash != NULL ? slash + 1 : path;
    return strchr(last, '.') != NULL;
}

// True when the If-None-Match header lists etag (or is "*"). The header is
// a comma-separated list of entity tags, each possibly weak ("W/"); a weak
// comparison is what RFC 9110 asks of If-None-Match.
static bool
etag_matches(const char *header, const char *etag)
{
    if (header == NULL)
        return false;
    size_t      n = strlen(etag);
    const char *p = header;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (strncmp(p, etag, n) == 0
            && (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
            return true;
        while (*p != '\0' && *p != ',')
            p++;
    }
    return false;
}

static void
add_common_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "Content-Security-Policy", DASHBOARD_CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
}

static enum MHD_Result
answer_text(struct MHD_Connection *conn, unsigned status, const char *json,
    const char *allow)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(json), (void *) json, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(
        r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (allow != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    add_common_headers(r);
    enum MHD_Result rv = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rv;
}

static enum MHD_Result
answer_file(struct MHD_Connection *conn, const struct dashboard_file *f)
{
    const char *inm = MHD_lookup_connection_value(
        conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    bool   fresh = etag_matches(inm, f->etag);
    size_t len   = fresh ? 0 : f->len;
    // The bytes are the binary's own: MHD may point at them as they are.
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *) f->data, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    if (!fresh)
        MHD_add_response_header(
            r, MHD_HTTP_HEADER_CONTENT_TYPE, f->content_type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, f->etag);
    add_common_headers(r);
    enum MHD_Result rv = MHD_queue_response(
        conn, fresh ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rv;
}

enum MHD_Result
dashboard_answer(
    struct MHD_Connection *conn, const char *method, const char *path)
{
    if (method == NULL || path == NULL || path[0] != '/')
        return answer_text(conn, MHD_HTTP_NOT_FOUND,
            "{\"code\":\"NOT_FOUND\",\"message\":\"no such page\"}", NULL);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return answer_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
            "{\"code\":\"UNIMPLEMENTED\",\"message\":\"the dashboard's "
            "pages take GET or HEAD\"}",
            "GET, HEAD");
    // The API's paths are never the page's, whoever forwards them: an
    // EventSource or fetch of a route this server lacks must get an error,
    // not index.html.
    if (strncmp(path, "/v1/", 4) == 0 || strcmp(path, "/v1") == 0)
        return answer_text(conn, MHD_HTTP_NOT_FOUND,
            "{\"code\":\"NOT_FOUND\",\"message\":\"no such route: see GET "
            "/v1/openapi.json for the routes\"}",
            NULL);
    const struct dashboard_file *f = dashboard_find(path);
    if (f == NULL && !looks_like_file(path))
        f = dashboard_find("/index.html");
    if (f == NULL)
        return answer_text(conn, MHD_HTTP_NOT_FOUND,
            "{\"code\":\"NOT_FOUND\",\"message\":\"no such file in the "
            "dashboard\"}",
            NULL);
    return answer_file(conn, f);
}
