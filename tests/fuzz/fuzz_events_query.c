// fuzz_events_query.c - libFuzzer target: the event routes' query and
// Last-Event-ID (server/http_events.c). The first byte picks the route
// (odd: the stream), the first line is a Last-Event-ID, each further line
// a query parameter key=value (any bytes); whatever is accepted must make
// a WatchEventsRequest within the routes' limits that packs and unpacks.
#include "../../server/http_impl.h"

#include "../../server/pbjson.h"
#include "anvil/v1/anvil.pb-c.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const Anvil__V1__WatchEventsRequest *r, bool stream)
{
    if (r->limit > (stream ? 100u : 1000u) || r->timeout_ms > 300000
        || (stream && r->timeout_ms != 0) || r->n_kinds > 32)
        abort();
    for (size_t i = 0; i < r->n_kinds; i++) {
        char name[40];
        if (r->kinds[i] <= 0
            || strcmp(http_events_kind_name(r->kinds[i], name, sizeof(name)),
                   "unknown")
                == 0)
            abort();
    }
    size_t   n   = anvil__v1__watch_events_request__get_packed_size(r);
    uint8_t *buf = malloc(n + 1);
    if (buf == NULL)
        return;
    anvil__v1__watch_events_request__pack(r, buf);
    Anvil__V1__WatchEventsRequest *back
        = anvil__v1__watch_events_request__unpack(NULL, n, buf);
    if (back == NULL)
        abort();
    anvil__v1__watch_events_request__free_unpacked(back, NULL);
    free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    bool  stream = data[0] & 1;
    char *text   = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1]         = '\0';
    ProtobufCMessage  *m   = NULL;
    struct anvil_error err = { 0 };
    if (pbjson_to_msg(
            &anvil__v1__watch_events_request__descriptor, NULL, &m, &err)
        != ANVIL_OK) {
        free(text);
        return 0;
    }
    struct events_query x    = { m, stream, false };
    char               *line = text;
    char               *nl   = strchr(line, '\n');
    if (nl != NULL)
        *nl = '\0';
    uint64_t seq;
    if (http_events_last_id(line, &seq, &err) == ANVIL_OK && line[0] == '\0')
        abort(); // an empty header is not an id
    int rc = ANVIL_OK;
    while (nl != NULL && rc == ANVIL_OK) {
        line = nl + 1;
        nl   = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        char *eq    = strchr(line, '=');
        char *value = NULL;
        if (eq != NULL) {
            *eq   = '\0';
            value = eq + 1;
        }
        rc = http_events_param(&x, line, value, &err);
        if (rc != ANVIL_OK && err.msg[0] == '\0')
            abort(); // every refusal says why
    }
    check((const Anvil__V1__WatchEventsRequest *) m, stream);
    protobuf_c_message_free_unpacked(m, NULL);
    free(text);
    return 0;
}
