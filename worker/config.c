// config.c - parsing the anvil-worker config file (see config.h).
//
// Each key is handled by a small function that takes the JSON value and
// the key's path ("handlers.thumbnail.timeout_ms") for messages. Unknown
// keys are refused: a typo ("queue" for "queues") would otherwise be
// silently ignored and the worker would serve something else.
#include "config.h"

#include "util/error.h"
#include "util/file.h"
#include "util/log.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SLOTS 1024
#define MAX_NAME 128
#define MAX_PREFETCH 1000
#define MAX_TIMEOUT_MS (7LL * 24 * 3600 * 1000)

static const char *const top_keys[]
    = { "server", "name", "slots", "prefetch", "queues", "token", "tls",
          "grace_ms", "log_level", "log_format", "handlers", NULL };
static const char *const tls_keys[] = { "ca", "cert", "key", NULL };
static const char *const handler_keys[]
    = { "builtin", "exec", "timeout_ms", "slots", "env", NULL };

static int
bad(struct anvil_error *err, const char *path, const char *what)
{
    return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: %s", path, what);
}

static bool
valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

// Refuses any key of obj not in allowed.
static int
check_keys(json_t *obj, const char *const *allowed, const char *path,
    struct anvil_error *err)
{
    const char *key;
    json_t     *v;
    json_object_foreach(obj, key, v)
    {
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(allowed[i], key) == 0;
        if (!known)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s%s%s: unknown key", path, path[0] ? "." : "", key);
    }
    return ANVIL_OK;
}

// Copies a string value (not empty) into *out.
static int
get_string(json_t *v, const char *path, char **out, struct anvil_error *err)
{
    if (!json_is_string(v) || json_string_length(v) == 0
        || strlen(json_string_value(v)) != json_string_length(v))
        return bad(err, path, "must be a non-empty string");
    *out = strdup(json_string_value(v));
    if (*out == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    return ANVIL_OK;
}

static int
get_int(json_t *v, const char *path, int64_t min, int64_t max, int64_t *out,
    struct anvil_error *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < min
        || json_integer_value(v) > max)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: must be a whole number from %lld to %lld", path,
            (long long) min, (long long) max);
    *out = json_integer_value(v);
    return ANVIL_OK;
}

// Copies an array of non-empty strings into a NULL-terminated *out.
static int
get_strv(json_t *v, const char *path, char ***out, size_t *n,
    struct anvil_error *err)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return bad(err, path, "must be a non-empty array of strings");
    size_t count = json_array_size(v);
    char **strs  = calloc(count + 1, sizeof(char *));
    if (strs == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    *out = strs;
    for (size_t i = 0; i < count; i++) {
        char at[200];
        snprintf(at, sizeof(at), "%s[%zu]", path, i);
        int rc = get_string(json_array_get(v, i), at, &strs[i], err);
        if (rc != ANVIL_OK)
            return rc;
        (*n)++;
    }
    return ANVIL_OK;
}

bool
config_is_executable(const char *name)
{
    struct stat st;
    if (strchr(name, '/') != NULL)
        return stat(name, &st) == 0 && S_ISREG(st.st_mode)
            && access(name, X_OK) == 0;
    const char *path = getenv("PATH");
    if (path == NULL || name[0] == '\0')
        return false;
    for (const char *p = path;;) {
        const char *end = strchr(p, ':');
        size_t      len = end != NULL ? (size_t) (end - p) : strlen(p);
        char        full[4096];
        if (len > 0 && len + strlen(name) + 2 < sizeof(full)) {
            snprintf(full, sizeof(full), "%.*s/%s", (int) len, p, name);
            if (stat(full, &st) == 0 && S_ISREG(st.st_mode)
                && access(full, X_OK) == 0)
                return true;
        }
        if (end == NULL)
            return false;
        p = end + 1;
    }
}

static int
parse_exec(json_t *v, const char *path, struct handler_config *h,
    struct anvil_error *err)
{
    int rc = get_strv(v, path, &h->argv, &h->argc, err);
    if (rc != ANVIL_OK)
        return rc;
    h->kind = HANDLER_EXEC;
    if (!config_is_executable(h->argv[0]))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: %.150s is not an executable file", path, h->argv[0]);
    return ANVIL_OK;
}

static int
parse_builtin(json_t *v, const char *path, struct handler_config *h,
    struct anvil_error *err)
{
    int rc = get_string(v, path, &h->builtin, err);
    if (rc != ANVIL_OK)
        return rc;
    h->kind = HANDLER_BUILTIN;
    if (strcmp(h->builtin, "sleep") != 0 && strcmp(h->builtin, "echo") != 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: unknown builtin \"%.64s\" (known: sleep, echo)", path,
            h->builtin);
    return ANVIL_OK;
}

// "env": {"KEY": "value"} into "KEY=value" strings.
static int
parse_env(json_t *v, const char *path, struct handler_config *h,
    struct anvil_error *err)
{
    if (!json_is_object(v))
        return bad(err, path, "must be an object of strings");
    h->env = calloc(json_object_size(v) + 1, sizeof(char *));
    if (h->env == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    const char *key;
    json_t     *val;
    json_object_foreach(v, key, val)
    {
        if (key[0] == '\0' || strchr(key, '=') != NULL)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s.%.64s: a variable name must be non-empty, without '='",
                path, key);
        if (!json_is_string(val)
            || strlen(json_string_value(val)) != json_string_length(val))
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s.%.64s: must be a string", path, key);
        size_t n  = strlen(key) + json_string_length(val) + 2;
        char  *kv = malloc(n);
        if (kv == NULL)
            return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
        snprintf(kv, n, "%s=%s", key, json_string_value(val));
        h->env[h->n_env++] = kv;
    }
    return ANVIL_OK;
}

// One handler's key k with value v.
static int
parse_handler_key(const char *k, json_t *v, const char *path,
    struct handler_config *h, struct anvil_error *err)
{
    char    at[256];
    int64_t n = 0;
    int     rc;
    snprintf(at, sizeof(at), "%s.%s", path, k);
    if (strcmp(k, "builtin") == 0)
        return parse_builtin(v, at, h, err);
    if (strcmp(k, "exec") == 0)
        return parse_exec(v, at, h, err);
    if (strcmp(k, "env") == 0)
        return parse_env(v, at, h, err);
    if (strcmp(k, "timeout_ms") == 0) {
        rc            = get_int(v, at, 0, MAX_TIMEOUT_MS, &n, err);
        h->timeout_ms = n;
        return rc;
    }
    rc       = get_int(v, at, 0, MAX_SLOTS, &n, err); // "slots"
    h->slots = (int) n;
    return rc;
}

static int
parse_handler(const char *type, json_t *v, struct handler_config *h,
    struct anvil_error *err)
{
    char path[200];
    snprintf(path, sizeof(path), "handlers.%.128s", type);
    if (!valid_name(type))
        return bad(err, path, "a job type must be 1 to 128 of [A-Za-z0-9_.-]");
    h->type = strdup(type);
    if (h->type == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    if (!json_is_object(v))
        return bad(err, path, "must be an object with \"builtin\" or \"exec\"");
    int rc = check_keys(v, handler_keys, path, err);
    if (rc == ANVIL_OK && json_object_get(v, "builtin") != NULL
        && json_object_get(v, "exec") != NULL)
        rc = bad(err, path, "has both \"builtin\" and \"exec\": pick one");
    if (rc == ANVIL_OK && json_object_get(v, "builtin") == NULL
        && json_object_get(v, "exec") == NULL)
        rc = bad(err, path, "needs \"builtin\" or \"exec\"");
    const char *key;
    json_t     *val;
    json_object_foreach(v, key, val)
    {
        if (rc == ANVIL_OK)
            rc = parse_handler_key(key, val, path, h, err);
    }
    if (rc == ANVIL_OK && h->kind == HANDLER_BUILTIN
        && (h->n_env > 0 || h->timeout_ms > 0 || h->slots > 0))
        rc = bad(err, path,
            "\"env\", \"timeout_ms\" and \"slots\" apply to exec handlers");
    return rc;
}

static int
parse_handlers(json_t *v, struct worker_config *c, struct anvil_error *err)
{
    if (!json_is_object(v) || json_object_size(v) == 0)
        return bad(
            err, "handlers", "must be an object with at least one job type");
    c->handlers = calloc(json_object_size(v), sizeof(*c->handlers));
    if (c->handlers == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    const char *type;
    json_t     *h;
    json_object_foreach(v, type, h)
    {
        int rc = parse_handler(type, h, &c->handlers[c->n_handlers++], err);
        if (rc != ANVIL_OK)
            return rc;
    }
    return ANVIL_OK;
}

// Copies obj's optional string key into *out.
static int
opt_string(json_t *obj, const char *key, const char *path, char **out,
    struct anvil_error *err)
{
    json_t *v = json_object_get(obj, key);
    return v != NULL ? get_string(v, path, out, err) : ANVIL_OK;
}

static int
parse_tls(json_t *v, struct worker_config *c, struct anvil_error *err)
{
    if (!json_is_object(v))
        return bad(err, "tls", "must be an object with ca, cert and key");
    int rc = check_keys(v, tls_keys, "tls", err);
    if (rc == ANVIL_OK)
        rc = opt_string(v, "ca", "tls.ca", &c->tls_ca, err);
    if (rc == ANVIL_OK)
        rc = opt_string(v, "cert", "tls.cert", &c->tls_cert, err);
    if (rc == ANVIL_OK)
        rc = opt_string(v, "key", "tls.key", &c->tls_key, err);
    if (rc == ANVIL_OK && (c->tls_cert == NULL) != (c->tls_key == NULL))
        rc = bad(err, "tls", "\"cert\" and \"key\" go together");
    return rc;
}

static int
parse_queues(json_t *v, struct worker_config *c, struct anvil_error *err)
{
    int rc = get_strv(v, "queues", &c->queues, &c->n_queues, err);
    for (size_t i = 0; rc == ANVIL_OK && i < c->n_queues; i++) {
        if (!valid_name(c->queues[i]))
            rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "queues[%zu]: \"%.128s\" must be 1 to 128 of "
                "[A-Za-z0-9_.-]",
                i, c->queues[i]);
    }
    return rc;
}

static int
parse_log(
    const char *k, json_t *v, struct worker_config *c, struct anvil_error *err)
{
    const char *s = json_string_value(v);
    if (strcmp(k, "log_level") == 0) {
        if (s == NULL || av_log_parse_level(s, &c->log_level) != 0)
            return bad(err, k,
                "must be \"error\", \"warn\", \"info\" or "
                "\"debug\"");
        return ANVIL_OK;
    }
    if (s != NULL && strcmp(s, "text") == 0)
        c->log_json = 0;
    else if (s != NULL && strcmp(s, "json") == 0)
        c->log_json = 1;
    else
        return bad(err, k, "must be \"text\" or \"json\"");
    return ANVIL_OK;
}

// One top-level key k with value v.
static int
parse_top_key(
    const char *k, json_t *v, struct worker_config *c, struct anvil_error *err)
{
    int64_t n  = 0;
    int     rc = ANVIL_OK;
    if (strcmp(k, "server") == 0)
        return get_string(v, k, &c->server, err);
    if (strcmp(k, "token") == 0)
        return get_string(v, k, &c->token, err);
    if (strcmp(k, "name") == 0) {
        rc = get_string(v, k, &c->name, err);
        if (rc == ANVIL_OK && !valid_name(c->name))
            rc = bad(err, k, "must be 1 to 128 of [A-Za-z0-9_.-]");
        return rc;
    }
    if (strcmp(k, "slots") == 0) {
        rc       = get_int(v, k, 1, MAX_SLOTS, &n, err);
        c->slots = (int) n;
        return rc;
    }
    if (strcmp(k, "prefetch") == 0) {
        rc              = get_int(v, k, -1, MAX_PREFETCH, &n, err);
        c->prefetch     = (int) n;
        c->prefetch_set = rc == ANVIL_OK;
        return rc;
    }
    if (strcmp(k, "grace_ms") == 0) {
        rc          = get_int(v, k, 0, MAX_TIMEOUT_MS, &n, err);
        c->grace_ms = (int) (n > INT32_MAX ? INT32_MAX : n);
        return rc;
    }
    if (strcmp(k, "queues") == 0)
        return parse_queues(v, c, err);
    if (strcmp(k, "tls") == 0)
        return parse_tls(v, c, err);
    if (strcmp(k, "handlers") == 0)
        return parse_handlers(v, c, err);
    return parse_log(k, v, c, err);
}

void
config_init(struct worker_config *c)
{
    *c = (struct worker_config) {
        .grace_ms = -1, .log_level = -1, .log_json = -1
    };
}

static void
strv_free(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i]);
    free(v);
}

void
config_fini(struct worker_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_handlers; i++) {
        struct handler_config *h = &c->handlers[i];
        free(h->type);
        free(h->builtin);
        strv_free(h->argv, h->argc);
        strv_free(h->env, h->n_env);
    }
    free(c->handlers);
    strv_free(c->queues, c->n_queues);
    free(c->server);
    free(c->name);
    free(c->token);
    free(c->tls_ca);
    free(c->tls_cert);
    free(c->tls_key);
    config_init(c);
}

static int
parse_root(json_t *root, struct worker_config *c, struct anvil_error *err)
{
    if (!json_is_object(root))
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "the config must be a JSON object");
    int rc = check_keys(root, top_keys, "", err);
    if (rc != ANVIL_OK)
        return rc;
    const char *key;
    json_t     *v;
    json_object_foreach(root, key, v)
    {
        rc = parse_top_key(key, v, c, err);
        if (rc != ANVIL_OK)
            return rc;
    }
    if (c->n_handlers == 0)
        return bad(err, "handlers", "missing: name at least one job type");
    return ANVIL_OK;
}

int
config_parse(const char *json, size_t len, struct worker_config *out,
    struct anvil_error *err)
{
    json_error_t jerr;
    config_init(out);
    json_t *root = json_loadb(
        json != NULL ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "not valid JSON: %.120s (line %d, column %d)", jerr.text, jerr.line,
            jerr.column);
    int rc = parse_root(root, out, err);
    json_decref(root);
    if (rc != ANVIL_OK)
        config_fini(out);
    return rc;
}

int
config_load(
    const char *path, struct worker_config *out, struct anvil_error *err)
{
    char  *text = NULL;
    size_t len  = 0;
    config_init(out);
    int rc = av_read_file(path, CONFIG_MAX_BYTES, &text, &len, err);
    if (rc != ANVIL_OK)
        return rc;
    struct anvil_error e = { 0 };
    rc                   = config_parse(text, len, out, &e);
    free(text);
    if (rc != ANVIL_OK)
        av_error_set(err, rc, "%.60s: %s", path, e.msg);
    return rc;
}

int
config_add_builtin(
    struct worker_config *c, const char *type, const char *builtin)
{
    struct handler_config *hs
        = realloc(c->handlers, (c->n_handlers + 1) * sizeof(*hs));
    if (hs == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    c->handlers              = hs;
    struct handler_config *h = &hs[c->n_handlers];
    *h                       = (struct handler_config) { 0 };
    h->kind                  = HANDLER_BUILTIN;
    h->type                  = strdup(type);
    h->builtin               = strdup(builtin);
    c->n_handlers++;
    return h->type != NULL && h->builtin != NULL ? ANVIL_OK
                                                 : ANVIL_RESOURCE_EXHAUSTED;
}
