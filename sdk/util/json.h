// json.h - small helpers over jansson shared by the JSON parsers (the
// workflow definition, the server's JSON <-> protobuf). Any thread.
#ifndef AV_JSON_H
#define AV_JSON_H

#include <jansson.h>

// What kind of JSON value v is, for a message: "an object", "an array",
// "a string", "a number", "a boolean" or "null".
const char *av_json_kind(const json_t *v);

#endif
