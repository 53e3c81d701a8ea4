// server_list.c - see server_list.h.
#include "server_list.h"

#include "util/error.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool
is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

// Adds the element [p, p + len) of spec, trimmed, as l's next URL.
static int
add_element(const char *spec, const char *p, size_t len, struct server_list *l,
    struct anvil_error *err)
{
    while (len > 0 && is_blank(p[0])) {
        p++;
        len--;
    }
    while (len > 0 && is_blank(p[len - 1]))
        len--;
    if (len == 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "server list \"%s\": element %zu is empty (want URLs separated "
            "by commas, e.g. tcp://a:7700,tcp://b:7700)",
            spec, l->n + 1);
    if (l->n == SERVER_LIST_MAX)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "server list \"%.160s\" names more than %d servers", spec,
            SERVER_LIST_MAX);
    char *url = malloc(len + 1);
    if (url == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    memcpy(url, p, len);
    url[len]        = '\0';
    l->urls[l->n++] = url;
    return ANVIL_OK;
}

int
server_list_parse(
    const char *spec, struct server_list *l, struct anvil_error *err)
{
    memset(l, 0, sizeof(*l));
    if (spec == NULL || spec[0] == '\0')
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "the server URL is empty (want e.g. %s)", ANVIL_DEFAULT_URL);
    const char *p = spec;
    for (;;) {
        size_t len = strcspn(p, ",");
        int    rc  = add_element(spec, p, len, l, err);
        if (rc != ANVIL_OK) {
            server_list_fini(l);
            return rc;
        }
        if (p[len] == '\0')
            return ANVIL_OK;
        p += len + 1;
    }
}

void
server_list_fini(struct server_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->urls[i]);
    memset(l, 0, sizeof(*l));
}

int
server_list_find(const struct server_list *l, const char *url)
{
    for (size_t i = 0; url != NULL && i < l->n; i++)
        if (strcmp(l->urls[i], url) == 0)
            return (int) i;
    return -1;
}

size_t
server_list_next(const struct server_list *l, size_t cur, const char *leader)
{
    int at = server_list_find(l, leader);
    if (at >= 0 && (size_t) at != cur)
        return (size_t) at;
    return l->n > 0 ? (cur + 1) % l->n : 0;
}
