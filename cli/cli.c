// cli.c - global flags, the verb table, usage and dispatch of `anvil`.
//
// Global flags may come before or after the verb; a verb's own flags only
// after it. "--name value" and "--name=value" are both accepted, and "--"
// ends the flags (for an ID that starts with '-').
#include "cli.h"
#include "output.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_verb *const verbs[] = {
    &cli_verb_submit,
    &cli_verb_status,
    &cli_verb_wait,
    &cli_verb_cancel,
    &cli_verb_retry,
    &cli_verb_list,
    &cli_verb_events,
    &cli_verb_health,
    &cli_verb_workers,
    &cli_verb_workflow,
    &cli_verb_queue,
    &cli_verb_schedule,
    &cli_verb_token,
};
#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

// ---- Helpers for the verbs' flag setters

int
cli_usage_error(struct anvil_error *err, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->code = ANVIL_INVALID_ARGUMENT;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return CLI_EXIT_USAGE;
}

int
cli_parse_int(const char *flag, const char *s, int64_t min, int64_t max,
    int64_t *out, struct anvil_error *err)
{
    char     *end = NULL;
    long long v;
    // strtoll skips leading spaces; a flag value with them is a typo.
    if (s[0] == '\0' || s[0] == ' ' || (s[0] >= '\t' && s[0] <= '\r'))
        return cli_usage_error(err, "%s: '%s' is not an integer", flag, s);
    errno = 0;
    v     = strtoll(s, &end, 10);
    if (*end != '\0')
        return cli_usage_error(err, "%s: '%s' is not an integer", flag, s);
    if (errno == ERANGE || v < min || v > max)
        return cli_usage_error(err, "%s: %s is out of range (%lld..%lld)", flag,
            s, (long long) min, (long long) max);
    *out = v;
    return CLI_EXIT_OK;
}

int
cli_set_nonempty(const char *what, const char *value, const char **dst,
    struct anvil_error *err)
{
    if (value[0] == '\0')
        return cli_usage_error(err, "%s must not be empty", what);
    *dst = value;
    return CLI_EXIT_OK;
}

// ---- Global flags

static int
set_server(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("--server: URL", value, &o->server, err);
}

static int
set_token(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("--token", value, &o->token, err);
}

static int
set_tls_ca(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("--tls-ca: FILE", value, &o->tls_ca, err);
}

static int
set_tls_cert(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("--tls-cert: FILE", value, &o->tls_cert, err);
}

static int
set_tls_key(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    return cli_set_nonempty("--tls-key: FILE", value, &o->tls_key, err);
}

static int
set_json(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    (void) value;
    (void) err;
    o->json = true;
    return CLI_EXIT_OK;
}

static int
set_help(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    (void) value;
    (void) err;
    o->help = true;
    return CLI_EXIT_OK;
}

static int
set_version(struct cli_opts *o, const char *value, struct anvil_error *err)
{
    (void) value;
    (void) err;
    o->version = true;
    return CLI_EXIT_OK;
}

static const struct cli_flag global_flags[] = {
    { "--server", "URL", set_server },
    { "--token", "T", set_token },
    { "--tls-ca", "FILE", set_tls_ca },
    { "--tls-cert", "FILE", set_tls_cert },
    { "--tls-key", "FILE", set_tls_key },
    { "--json", NULL, set_json },
    { "--help", NULL, set_help },
    { "-h", NULL, set_help },
    { "--version", NULL, set_version },
    { NULL, NULL, NULL },
};

// ---- Parsing

const struct cli_verb *
cli_verb_find(const char *name)
{
    for (size_t i = 0; i < N_VERBS; i++)
        if (strcmp(verbs[i]->name, name) == 0)
            return verbs[i];
    return NULL;
}

const struct cli_verb *
cli_subverb_find(const struct cli_verb *group, const char *word)
{
    size_t skip = strlen(group->name) + 1; // "workflow submit" -> "submit"
    for (size_t i = 0; group->subverbs && group->subverbs[i] != NULL; i++) {
        const char *name = group->subverbs[i]->name;
        if (strlen(name) > skip && strcmp(name + skip, word) == 0)
            return group->subverbs[i];
    }
    return NULL;
}

// "submit, status, wait, cancel or list": the group's sub-verbs.
static void
subverb_names(const struct cli_verb *group, char *buf, size_t len)
{
    size_t skip = strlen(group->name) + 1, at = 0, n = 0;
    while (group->subverbs[n] != NULL)
        n++;
    buf[0] = '\0';
    for (size_t i = 0; i < n && at < len; i++)
        at += (size_t) snprintf(buf + at, len - at, "%s%s",
            i == 0          ? ""
                : i + 1 < n ? ", "
                            : " or ",
            group->subverbs[i]->name + skip);
}

static const struct cli_flag *
flag_find(const struct cli_flag *flags, const char *name, size_t len)
{
    for (; flags != NULL && flags->name != NULL; flags++)
        if (strlen(flags->name) == len && strncmp(flags->name, name, len) == 0)
            return flags;
    return NULL;
}

// Parses the flag at argv[*i], taking its value from the same word
// ("--queue=q") or the next one ("--queue q", advancing *i).
static int
parse_flag(
    int argc, char **argv, int *i, struct cli_opts *o, struct anvil_error *err)
{
    const char            *a   = argv[*i];
    const char            *eq  = strchr(a, '=');
    size_t                 len = eq != NULL ? (size_t) (eq - a) : strlen(a);
    const struct cli_flag *f   = flag_find(global_flags, a, len);
    if (f == NULL && o->verb != NULL)
        f = flag_find(o->verb->flags, a, len);
    if (f == NULL && o->verb != NULL)
        return cli_usage_error(
            err, "unknown flag '%.*s' for %s", (int) len, a, o->verb->name);
    if (f == NULL)
        return cli_usage_error(err, "unknown flag '%.*s'", (int) len, a);
    if (f->arg == NULL && eq != NULL)
        return cli_usage_error(err, "%s takes no value", f->name);
    const char *value = eq != NULL ? eq + 1 : NULL;
    if (f->arg != NULL && value == NULL) {
        if (*i + 1 >= argc)
            return cli_usage_error(
                err, "%s needs a value (%s)", f->name, f->arg);
        value = argv[++*i];
    }
    return f->set(o, value, err);
}

// A word that is not a flag: the verb, the verb's argument, or the verb
// named by `help`.
static int
parse_word(const char *a, struct cli_opts *o, struct anvil_error *err)
{
    if (o->verb == NULL && !o->help && strcmp(a, "help") == 0) {
        o->help = true;
        return CLI_EXIT_OK;
    }
    if (o->verb == NULL) {
        o->verb = cli_verb_find(a);
        if (o->verb == NULL)
            return cli_usage_error(
                err, "unknown verb '%s' (try 'anvil --help')", a);
        return CLI_EXIT_OK;
    }
    if (o->verb->subverbs != NULL) {
        const struct cli_verb *sub = cli_subverb_find(o->verb, a);
        if (sub == NULL) {
            char names[128];
            subverb_names(o->verb, names, sizeof(names));
            return cli_usage_error(err, "%s: unknown subcommand '%s' (%s)",
                o->verb->name, a, names);
        }
        o->verb = sub;
        return CLI_EXIT_OK;
    }
    if (o->help || o->verb->positional == NULL || o->positional_set)
        return cli_usage_error(
            err, "%s: unexpected argument '%s'", o->verb->name, a);
    o->positional_set = true;
    return o->verb->set_positional(o, a, err);
}

// True, with o->help set, when argv[from..] asks for help before any "--".
static bool
help_later(int argc, char **argv, int from, struct cli_opts *o)
{
    for (int i = from; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            o->help = true;
            return true;
        }
    }
    return false;
}

int
cli_parse(int argc, char **argv, struct cli_opts *o, struct anvil_error *err)
{
    memset(o, 0, sizeof(*o));
    if (err != NULL)
        memset(err, 0, sizeof(*err));
    bool flags_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a  = argv[i];
        int         rc = CLI_EXIT_OK;
        if (!flags_done && strcmp(a, "--") == 0)
            flags_done = true;
        else if (!flags_done && a[0] == '-' && a[1] != '\0')
            rc = parse_flag(argc, argv, &i, o, err);
        else
            rc = parse_word(a, o, err);
        // `anvil VERB ... --help` shows help whatever else the line holds.
        if (rc != CLI_EXIT_OK)
            return help_later(argc, argv, i + 1, o) ? CLI_EXIT_OK : rc;
        if (o->version || (o->help && o->verb != NULL && a[0] == '-'))
            return CLI_EXIT_OK;
    }
    if (o->help)
        return CLI_EXIT_OK;
    if (o->verb == NULL)
        return cli_usage_error(err, "missing verb (try 'anvil --help')");
    if (o->verb->subverbs != NULL) {
        char names[128];
        subverb_names(o->verb, names, sizeof(names));
        return cli_usage_error(
            err, "%s: missing subcommand (%s)", o->verb->name, names);
    }
    if (o->verb->positional != NULL && !o->positional_set
        && !o->verb->positional_optional)
        return cli_usage_error(
            err, "%s: missing %s", o->verb->name, o->verb->positional);
    if ((o->tls_cert == NULL) != (o->tls_key == NULL))
        return cli_usage_error(err, "%s needs %s too",
            o->tls_cert != NULL ? "--tls-cert" : "--tls-key",
            o->tls_cert != NULL ? "--tls-key" : "--tls-cert");
    if (o->verb->check != NULL)
        return o->verb->check(o, err);
    return CLI_EXIT_OK;
}

// ---- Usage

static const char global_help[]
    = "Global flags (before or after the verb):\n"
      "  --server URL   server to talk to (default: $ANVIL_SERVER, "
      "else " ANVIL_DEFAULT_URL ");\n"
      "                 URL1,URL2,... for anvild nodes sharing one "
      "database\n"
      "                 (sends to the leader, moves when it goes)\n"
      "  --token T      bearer token (default: $ANVIL_TOKEN)\n"
      "  --tls-ca FILE  CA that signed a tls+tcp:// server's certificate\n"
      "                 (default: $ANVIL_TLS_CA)\n"
      "  --tls-cert FILE, --tls-key FILE\n"
      "                 client certificate and key for mutual TLS\n"
      "                 (default: $ANVIL_TLS_CERT, $ANVIL_TLS_KEY)\n"
      "  --json         print exactly one JSON object on stdout\n"
      "  -h, --help     show help (also: anvil help [VERB])\n"
      "  --version      print the version\n";

static const char exit_help[]
    = "Exit status:\n"
      "  0  success; for wait and submit --wait: the job (workflow) "
      "SUCCEEDED\n"
      "  1  the server returned an error (\"anvil: CODE: message\" on "
      "stderr),\n"
      "     or the waited-for job ended FAILED or CANCELED (it is still "
      "printed)\n"
      "  2  bad usage or an invalid workflow file; nothing was sent to the "
      "server\n"
      "  4  wait: --timeout-ms (submit --wait: --wait-timeout-ms) passed "
      "before\n"
      "     the job finished (the same for workflow wait and workflow submit "
      "--wait\n"
      "     with --timeout-ms)\n";

static const char json_help[]
    = "JSON output (--json):\n"
      "  A job is {\"id\", \"type\", \"queue\", \"state\", \"attempt\", "
      "\"max_attempts\",\n"
      "  \"priority\", \"payload\", \"result\", \"error\", \"created_at\", "
      "\"started_at\",\n"
      "  \"finished_at\"}; state is upper-case (QUEUED, RUNNING, SUCCEEDED, "
      "...),\n"
      "  times are RFC 3339 UTC strings or null, error is null when empty.\n"
      "  payload and result are strings holding the bytes, null when empty. "
      "Bytes\n"
      "  that are not valid UTF-8 are not altered: the string key is then null "
      "and\n"
      "  \"payload_base64\" / \"result_base64\" hold them in base64.\n";

// Usage of a verb group: its summary and its sub-verbs.
static void
group_usage(FILE *f, const struct cli_verb *group)
{
    size_t skip = strlen(group->name) + 1;
    fprintf(f,
        "Usage: anvil [--server URL] [--json] %s SUBCOMMAND [ARGS]\n\n"
        "%c%s.\n\nSubcommands:\n",
        group->name, toupper((unsigned char) group->summary[0]),
        group->summary + 1);
    for (size_t i = 0; group->subverbs[i] != NULL; i++) {
        const struct cli_verb *v = group->subverbs[i];
        char                   head[32];
        snprintf(head, sizeof(head), "%s%s%s", v->name + skip,
            v->positional ? " " : "", v->positional ? v->positional : "");
        fprintf(f, "  %-13s  %s\n", head, v->summary);
    }
    if (group->help[0] != '\0')
        fprintf(f, "\n%s", group->help);
    fprintf(f, "\nRun 'anvil %s SUBCOMMAND --help' for its flags.\n\n%s",
        group->name, global_help);
}

void
cli_usage(FILE *f, const struct cli_verb *verb)
{
    if (verb != NULL && verb->subverbs != NULL) {
        group_usage(f, verb);
        return;
    }
    if (verb != NULL) {
        fprintf(f, "Usage: anvil [--server URL] [--json] %s%s%s%s%s\n\n",
            verb->name, verb->positional ? " " : "",
            verb->positional ? verb->positional : "",
            verb->synopsis[0] ? " " : "", verb->synopsis);
        // The summary as a sentence.
        fprintf(f, "%c%s.\n", toupper((unsigned char) verb->summary[0]),
            verb->summary + 1);
        if (verb->help[0] != '\0')
            fprintf(f, "\n%s", verb->help);
        fprintf(f, "\n%s", global_help);
        return;
    }
    fputs("Usage: anvil [--server URL] [--json] VERB [ARGS]\n\n"
          "Submit, follow and cancel jobs and workflows on an anvil "
          "server.\n\n"
          "Verbs:\n",
        f);
    for (size_t i = 0; i < N_VERBS; i++) {
        char        head[32];
        const char *arg = verbs[i]->subverbs ? "CMD" : verbs[i]->positional;
        snprintf(head, sizeof(head), "%s%s%s", verbs[i]->name, arg ? " " : "",
            arg ? arg : "");
        fprintf(f, "  %-13s  %s\n", head, verbs[i]->summary);
    }
    fprintf(f, "  %-13s  %s\n\n", "help [VERB]", "show this help, or a verb's");
    fprintf(f, "%s\n%s\n%s\nRun 'anvil VERB --help' for a verb's flags.\n",
        global_help, exit_help, json_help);
}

// ---- Running

const char *
cli_server_url(const struct cli_opts *o)
{
    if (o->server != NULL)
        return o->server;
    const char *env = getenv("ANVIL_SERVER");
    if (env != NULL && env[0] != '\0')
        return env;
    return ANVIL_DEFAULT_URL;
}

int
cli_report(struct cli_ctx *ctx, int code, const struct anvil_error *err)
{
    const char *msg
        = err != NULL && err->msg[0] ? err->msg : anvil_strerror(code);
    fprintf(ctx->err, "anvil: %s: %s\n", anvil_code_name(code), msg);
    return CLI_EXIT_FAILED;
}

int
cli_print_json(struct cli_ctx *ctx, json_t *obj)
{
    int rc = output_json_print(ctx->out, obj);
    json_decref(obj);
    if (rc != 0) {
        fprintf(ctx->err, "anvil: cannot write JSON output\n");
        return CLI_EXIT_FAILED;
    }
    return CLI_EXIT_OK;
}

static const char *
flag_or_env(const char *flag, const char *env)
{
    if (flag != NULL)
        return flag;
    const char *v = getenv(env);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

// True for the verbs that wait for a job or workflow (and events --follow):
// like workers, they keep redialling a server that is not there yet for
// their whole timeout.
static bool
waits(const struct cli_opts *o)
{
    return o->wait || o->follow || o->verb == &cli_verb_wait
        || o->verb == &cli_verb_workflow_wait;
}

// Applies --token and the --tls-* flags (falling back to the environment
// for the TLS files a flag does not name) to c, and the short first-dial
// limit of one-shot commands.
static int
client_setup(const struct cli_opts *o, anvil_client *c, struct anvil_error *e)
{
    if (!waits(o)) {
        int rc = anvil_client_set_connect_timeout(c, CLI_CONNECT_MS, e);
        if (rc != ANVIL_OK)
            return rc;
    }
    if (o->token != NULL) {
        int rc = anvil_client_set_token(c, o->token, e);
        if (rc != ANVIL_OK)
            return rc;
    }
    if (o->tls_ca == NULL && o->tls_cert == NULL && o->tls_key == NULL)
        return ANVIL_OK;
    struct anvil_tls t = {
        .ca_file   = flag_or_env(o->tls_ca, "ANVIL_TLS_CA"),
        .cert_file = flag_or_env(o->tls_cert, "ANVIL_TLS_CERT"),
        .key_file  = flag_or_env(o->tls_key, "ANVIL_TLS_KEY"),
    };
    return anvil_client_set_tls(c, &t, e);
}

int
cli_main(int argc, char **argv, FILE *out, FILE *err)
{
    struct cli_opts    o;
    struct anvil_error e;
    if (cli_parse(argc, argv, &o, &e) != CLI_EXIT_OK) {
        fprintf(err, "anvil: %s\n", e.msg);
        return CLI_EXIT_USAGE;
    }
    if (o.version) {
        fprintf(out, "anvil %s\n", ANVIL_VERSION);
        return CLI_EXIT_OK;
    }
    if (o.help) {
        cli_usage(out, o.verb);
        return CLI_EXIT_OK;
    }
    const char    *url = cli_server_url(&o);
    anvil_client  *c   = NULL;
    struct cli_ctx ctx = { &o, NULL, out, err };
    int            rc  = anvil_client_open(&c, url, &e);
    if (rc == ANVIL_INVALID_ARGUMENT) {
        if (strncmp(e.msg, "TLS", 3) == 0 // from $ANVIL_TLS_*
            || strchr(url, ',') != NULL)  // the message names the element
            fprintf(err, "anvil: %s\n", e.msg);
        else
            fprintf(err, "anvil: bad server URL '%s': %s\n", url, e.msg);
        return CLI_EXIT_USAGE;
    }
    if (rc == ANVIL_OK) {
        rc = client_setup(&o, c, &e);
        if (rc == ANVIL_INVALID_ARGUMENT) {
            fprintf(err, "anvil: %s\n", e.msg);
            anvil_client_close(c);
            return CLI_EXIT_USAGE;
        }
        if (rc != ANVIL_OK)
            anvil_client_close(c);
    }
    if (rc != ANVIL_OK)
        return cli_report(&ctx, rc, &e);
    ctx.client = c;
    rc         = o.verb->run(&ctx);
    anvil_client_close(c);
    return rc;
}
