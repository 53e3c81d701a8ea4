// fuzz_routes.c - libFuzzer target: the HTTP route matcher. The first
// input line is the verb, the rest the path (any bytes); a match must
// point its bound values into the path and name a route of the table.
#include "../../server/http_routes.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size]       = '\0';
    char       *nl   = strchr(text, '\n');
    const char *verb = "GET";
    char       *path = text;
    if (nl != NULL) {
        *nl  = '\0';
        verb = text;
        path = nl + 1;
    }
    size_t             len = strlen(path);
    struct route_match m;
    const char        *allow;
    int                rc = routes_match(verb, path, &m, &allow);
    if (rc == 0) {
        size_t              n;
        const struct route *all = routes_all(&n);
        if (m.route < all || m.route >= all + n || m.n > ROUTE_MAX_PARAMS)
            abort();
        for (size_t i = 0; i < m.n; i++) {
            if (m.value[i] < path || m.value[i] > path + len)
                abort();
        }
    } else if (rc == 405 && allow == NULL) {
        abort();
    } else if (rc != 404 && rc != 405) {
        abort();
    }
    free(text);
    return 0;
}
