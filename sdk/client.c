// client.c - anvil_client: opening, settings (timeout, token, TLS,
// worker info), shutdown and close. The one path every rpc takes is
// client_call() in client_call.c; the job and health calls are in
// client_job.c, the worker calls in client_worker.c, the workflow calls in
// workflow.c; reply copying is in convert.c.
//
// Each public call validates its arguments, fills a protobuf-c request,
// hands it to client_call() and copies the reply into the plain structs of
// anvil.h, so callers never see protobuf-c types or nng.
//
// One nng REQ socket per client, shared by all threads: every call opens
// its own nng context and aio. anvil_client_open() creates the dialer,
// which checks the URL, and the first call starts it with
// NNG_FLAG_NONBLOCK: it connects in the background and redials after a
// loss, so calls made while the server is down wait for it up to their
// timeout. Starting on first use rather than at open is a workaround: nng
// 1.5.2 leaks the dialer's half-negotiated pipe (and the listener's) when a
// socket is closed while its connection is being set up, which a client
// opened and closed without a call would otherwise hit whenever a server
// listens (LeakSanitizer reports it; probe: dial, close, nng_fini).
//
// Several servers ("tcp://a:7700,tcp://b:7700"): the list is parsed here
// (server_list.c) and every URL checked by creating a dialer for it; only
// the first one's is kept. The socket still has one dialer at a time, to
// the current server; client_follow.c moves it to another one.
#include "anvil/v1/anvil.pb-c.h"
#include "client_impl.h"
#include "convert.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/file.h"
#include "util/nng_code.h"
#include "wire.h"

#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TLS_FILE_MAX (1 << 20) // a PEM certificate or key file

// ---- the client ----

// The URL to use: url, else $ANVIL_SERVER, else the default.
static const char *
pick_url(const char *url)
{
    if (url != NULL)
        return url;
    const char *env = getenv("ANVIL_SERVER");
    if (env != NULL && env[0] != '\0')
        return env;
    return ANVIL_DEFAULT_URL;
}

// Sets a dialer's options (and TLS configuration, when one is set).
int
client_dialer_options(anvil_client *c, nng_dialer d, size_t server)
{
    nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ, WIRE_MAX_MSG);
    nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, CLIENT_RECONNECT_MIN_MS);
    nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, CLIENT_RECONNECT_MAX_MS);
    nng_tls_config *cfg = c->tls_cfgs[server];
    if (cfg != NULL)
        return nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
    return 0;
}

// Notes the first connection (nng calls this on its own threads).
static void
pipe_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void) ev;
    anvil_client *c = arg;
    atomic_store(&c->connected, true);
    if (c->servers.n > 1)
        client_follow_added(c, p);
}

// INVALID_ARGUMENT for URL i of the list that nng refused with rv.
static int
bad_url(anvil_client *c, size_t i, int rv, struct anvil_error *err)
{
    const char *url  = c->servers.urls[i];
    int         code = av_code_from_nng(rv);
    if (code != ANVIL_INVALID_ARGUMENT)
        return wire_nng_error(rv, "dialling", url, 0, err);
    if (c->servers.n > 1)
        return av_error_set(err, code,
            "bad server URL \"%s\" (server %zu of %zu in the list): %s (want "
            "e.g. tcp://127.0.0.1:7700 or ipc:///path/to/socket)",
            url, i + 1, c->servers.n, nng_strerror(rv));
    return av_error_set(err, code,
        "bad server URL \"%s\": %s (want e.g. tcp://127.0.0.1:7700 or "
        "ipc:///path/to/socket)",
        url, nng_strerror(rv));
}

// Checks every URL of the list by creating a dialer for it; keeps the
// first one's as c->dialer (the first call starts it).
static int
check_urls(anvil_client *c, struct anvil_error *err)
{
    const struct server_list *l   = &c->servers;
    bool                      tls = client_url_is_tls(l->urls[0]);
    for (size_t i = 0; i < l->n; i++) {
        if (client_url_is_tls(l->urls[i]) != tls)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "server list: \"%s\" and \"%s\" differ in TLS (use "
                "tls+tcp:// for all the servers or for none)",
                l->urls[0], l->urls[i]);
        nng_dialer d;
        int        rv = nng_dialer_create(&d, c->sock, l->urls[i]);
        if (rv != 0)
            return bad_url(c, i, rv, err);
        if (i == 0) {
            c->dialer       = d;
            c->watch_dialer = (uint32_t) nng_dialer_id(d);
            client_dialer_options(c, d, 0);
        } else {
            nng_dialer_close(d); // never started
        }
    }
    return ANVIL_OK;
}

static int
make_dialer(anvil_client *c, struct anvil_error *err)
{
    nng_socket s;
    int        rv = nng_req0_open(&s);
    if (rv != 0)
        return wire_nng_error(rv, "opening a socket", client_url(c), 0, err);
    c->sock = s;
    // Our own messages are bounded; a peer's are not: cap what we buffer.
    nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, WIRE_MAX_MSG);
    nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, WIRE_RESEND_MS);
    nng_socket_set_ms(s, NNG_OPT_RECONNMINT, CLIENT_RECONNECT_MIN_MS);
    nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, CLIENT_RECONNECT_MAX_MS);
    nng_pipe_notify(s, NNG_PIPE_EV_ADD_POST, pipe_added, c);
    if (c->servers.n > 1) {
        rv = client_follow_init(c);
        if (rv != 0) {
            nng_close(s);
            return wire_nng_error(
                rv, "opening a socket", client_url(c), 0, err);
        }
    }
    // Checks the URLs; the first call starts the dialer (see the top).
    int rc = check_urls(c, err);
    if (rc != ANVIL_OK)
        nng_close(s);
    return rc;
}

static void
info_free(Anvil__V1__WorkerInfo *info)
{
    if (info == NULL)
        return;
    free(info->host);
    free(info->version);
    convert_strv_free(info->types, info->n_types);
    convert_strv_free(info->queues, info->n_queues);
    free(info);
}

static void
client_free(anvil_client *c)
{
    for (size_t i = 0; i < SERVER_LIST_MAX; i++)
        if (c->tls_cfgs[i] != NULL)
            nng_tls_config_free(c->tls_cfgs[i]);
    pthread_cond_destroy(&c->idle);
    pthread_mutex_destroy(&c->pmu);
    pthread_mutex_destroy(&c->mu);
    info_free(c->info);
    server_list_fini(&c->servers);
    free(c->token);
    free(c);
}

// ---- TLS ----

bool
client_url_is_tls(const char *url)
{
    return strncmp(url, "tls+", 4) == 0 || strncmp(url, "wss://", 6) == 0;
}

// The host of url ("tls+tcp://host:port"; "[::1]" gives "::1") into buf.
static void
url_host(const char *url, char *buf, size_t len)
{
    const char *p = strstr(url, "://");
    p             = p != NULL ? p + 3 : url;
    size_t n;
    if (p[0] == '[') {
        p++;
        n = strcspn(p, "]");
    } else {
        n = strcspn(p, ":/");
    }
    snprintf(buf, len, "%.*s", (int) n, p);
}

// Applies t to cfg, the configuration for url: server name, CA, own
// certificate.
static int
tls_configure(const char *url, nng_tls_config *cfg, const struct anvil_tls *t,
    struct anvil_error *err)
{
    char host[256];
    url_host(url, host, sizeof(host));
    const char *name = t->server_name != NULL && t->server_name[0] != '\0'
        ? t->server_name
        : host;
    int         rv   = nng_tls_config_server_name(cfg, name);
    if (rv != 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "TLS server name \"%s\": %s", name, nng_strerror(rv));
    if (t->ca_file != NULL) {
        rv = nng_tls_config_ca_file(cfg, t->ca_file);
        if (rv == 0)
            rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
        if (rv != 0)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "TLS CA file %s: %s", t->ca_file, nng_strerror(rv));
    }
    if (t->cert_file == NULL)
        return ANVIL_OK;
    char              *crt = NULL, *key = NULL;
    size_t             len;
    struct anvil_error fe = { 0, "" };
    int rc = av_read_file(t->cert_file, TLS_FILE_MAX, &crt, &len, &fe);
    if (rc == ANVIL_OK)
        rc = av_read_file(t->key_file, TLS_FILE_MAX, &key, &len, &fe);
    if (rc != ANVIL_OK)
        rc = av_error_set(err, rc, "TLS: %s", fe.msg);
    if (rc == ANVIL_OK) {
        rv = nng_tls_config_own_cert(cfg, crt, key, NULL);
        if (rv != 0)
            rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "TLS certificate %s with key %s: %s", t->cert_file, t->key_file,
                nng_strerror(rv));
    }
    free(crt);
    if (key != NULL)
        memset(key, 0, strlen(key));
    free(key);
    return rc;
}

// A new TLS configuration for url from t: *out, the caller's.
static int
tls_config_new(const char *url, const struct anvil_tls *t, nng_tls_config **out,
    struct anvil_error *err)
{
    int rv = nng_tls_config_alloc(out, NNG_TLS_MODE_CLIENT);
    if (rv != 0) {
        *out = NULL;
        return av_error_set(err, av_code_from_nng(rv),
            "cannot make a TLS configuration: %s", nng_strerror(rv));
    }
    return tls_configure(url, *out, t, err);
}

int
anvil_client_set_tls(
    anvil_client *c, const struct anvil_tls *tls, struct anvil_error *err)
{
    static const char fn[] = "anvil_client_set_tls";
    int               rc   = client_check(c, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    if (tls == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT, "%s: tls is NULL", fn);
    if (!client_url_is_tls(client_url(c)))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "TLS settings need a tls+tcp:// server URL, not %s", client_url(c));
    if ((tls->cert_file == NULL) != (tls->key_file == NULL))
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "TLS: a client certificate needs its key and a key its "
            "certificate (got only the %s)",
            tls->cert_file != NULL ? "certificate" : "key");
    pthread_mutex_lock(&c->mu);
    bool started = c->dialing || c->closing;
    pthread_mutex_unlock(&c->mu);
    if (started)
        return av_error_set(err, ANVIL_FAILED_PRECONDITION,
            "%s: the connection has started; set TLS before the first call",
            fn);
    nng_tls_config *cfgs[SERVER_LIST_MAX] = { NULL };
    for (size_t i = 0; rc == ANVIL_OK && i < c->servers.n; i++)
        rc = tls_config_new(c->servers.urls[i], tls, &cfgs[i], err);
    if (rc == ANVIL_OK) {
        // The dialer made at open, for the first server.
        int rv = nng_dialer_set_ptr(c->dialer, NNG_OPT_TLS_CONFIG, cfgs[0]);
        if (rv != 0)
            rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "cannot use TLS on %s: %s", c->servers.urls[0],
                nng_strerror(rv));
    }
    for (size_t i = 0; i < c->servers.n; i++) {
        if (rc == ANVIL_OK) {
            if (c->tls_cfgs[i] != NULL) // set before
                nng_tls_config_free(c->tls_cfgs[i]);
            c->tls_cfgs[i] = cfgs[i]; // kept for redial() and switches
        } else if (cfgs[i] != NULL) {
            nng_tls_config_free(cfgs[i]);
        }
    }
    if (rc == ANVIL_OK)
        c->tls = true;
    return rc;
}

static const char *
env_or_null(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

// $ANVIL_TLS_CA, $ANVIL_TLS_CERT, $ANVIL_TLS_KEY for a tls+tcp:// URL.
static int
tls_from_env(anvil_client *c, struct anvil_error *err)
{
    struct anvil_tls t = {
        .ca_file   = env_or_null("ANVIL_TLS_CA"),
        .cert_file = env_or_null("ANVIL_TLS_CERT"),
        .key_file  = env_or_null("ANVIL_TLS_KEY"),
    };
    if (!client_url_is_tls(client_url(c))
        || (t.ca_file == NULL && t.cert_file == NULL && t.key_file == NULL))
        return ANVIL_OK;
    return anvil_client_set_tls(c, &t, err);
}

// ---- worker info ----

int
anvil_client_set_worker_info(anvil_client *c,
    const struct anvil_worker_info *in, struct anvil_error *err)
{
    static const char fn[] = "anvil_client_set_worker_info";
    int               rc   = client_check(c, fn, err);
    if (rc != ANVIL_OK)
        return rc;
    if (in == NULL) {
        info_free(c->info);
        c->info = NULL;
        return ANVIL_OK;
    }
    for (size_t i = 0; i < in->n_types + in->n_queues; i++) {
        bool               type = i < in->n_types;
        const char *const *v    = type ? in->types : in->queues;
        size_t             k    = type ? i : i - in->n_types;
        if (v == NULL || v[k] == NULL)
            return av_error_set(err, ANVIL_INVALID_ARGUMENT,
                "%s: %s[%zu] is NULL", fn, type ? "types" : "queues", k);
    }
    Anvil__V1__WorkerInfo *info = calloc(1, sizeof(*info));
    if (info == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    anvil__v1__worker_info__init(info);
    info->host    = convert_str(in->host);
    info->version = convert_str(in->version);
    info->pid     = in->pid;
    info->slots   = in->slots;
    int r1 = convert_strv((char **) in->types, in->n_types, &info->types);
    if (r1 == 0)
        info->n_types = in->n_types;
    int r2 = convert_strv((char **) in->queues, in->n_queues, &info->queues);
    if (r2 == 0)
        info->n_queues = in->n_queues;
    if (info->host == NULL || info->version == NULL || r1 != 0 || r2 != 0) {
        info_free(info);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    info_free(c->info);
    c->info = info;
    return ANVIL_OK;
}

const Anvil__V1__WorkerInfo *
client_worker_info(const anvil_client *c)
{
    return c->info;
}

int
anvil_client_open(anvil_client **out, const char *url, struct anvil_error *err)
{
    if (out == NULL)
        return av_error_set(
            err, ANVIL_INVALID_ARGUMENT, "anvil_client_open: out is NULL");
    *out = NULL;
    url  = pick_url(url);
    if (url[0] == '\0')
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "the server URL is empty (want e.g. %s)", ANVIL_DEFAULT_URL);
    anvil_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->pmu, NULL);
    pthread_cond_init(&c->idle, NULL);
    c->token = convert_str(getenv("ANVIL_TOKEN"));
    atomic_init(&c->timeout_ms, CLIENT_DEFAULT_TIMEOUT_MS);
    atomic_init(&c->connect_ms, 0);
    atomic_init(&c->connected, false);
    int rc = server_list_parse(url, &c->servers, err);
    if (rc != ANVIL_OK) {
        client_free(c);
        return rc;
    }
    atomic_init(&c->url, c->servers.urls[0]);
    c->gen       = 1;
    c->watch_gen = 1;
    if (c->token == NULL) {
        client_free(c);
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    rc = make_dialer(c, err);
    if (rc != ANVIL_OK) {
        client_free(c);
        return rc;
    }
    rc = tls_from_env(c, err);
    if (rc != ANVIL_OK) {
        nng_close(c->sock); // the dialer never started
        client_free(c);
        return rc;
    }
    *out = c;
    return ANVIL_OK;
}

int
anvil_client_set_timeout(
    anvil_client *c, int timeout_ms, struct anvil_error *err)
{
    int rc = client_check(c, "anvil_client_set_timeout", err);
    if (rc != ANVIL_OK)
        return rc;
    atomic_store(&c->timeout_ms,
        timeout_ms > 0 ? timeout_ms : CLIENT_DEFAULT_TIMEOUT_MS);
    return ANVIL_OK;
}

int
anvil_client_set_connect_timeout(
    anvil_client *c, int connect_ms, struct anvil_error *err)
{
    static const char fn[] = "anvil_client_set_connect_timeout";
    int               rc   = client_check(c, fn, err);
    if (rc == ANVIL_OK && connect_ms < 0)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s: connect_ms is negative (%d)", fn, connect_ms);
    if (rc == ANVIL_OK)
        atomic_store(&c->connect_ms, connect_ms);
    return rc;
}

int
anvil_client_set_token(
    anvil_client *c, const char *token, struct anvil_error *err)
{
    if (c == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "anvil_client_set_token: client is NULL");
    char *t = convert_str(token);
    if (t == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    free(c->token);
    c->token = t;
    return ANVIL_OK;
}

void
anvil_client_shutdown(anvil_client *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->closing = true;
    for (struct inflight *in = c->inflight; in != NULL; in = in->next)
        nng_aio_cancel(in->aio);
    while (c->calls > 0)
        pthread_cond_wait(&c->idle, &c->mu);
    // No call is inside nng now, and none can start: closing is safe.
    if (!c->sock_closed) {
        c->sock_closed = true;
        nng_close(c->sock);
    }
    pthread_mutex_unlock(&c->mu);
}

void
anvil_client_close(anvil_client *c)
{
    if (c == NULL)
        return;
    anvil_client_shutdown(c);
    client_free(c);
}

void
anvil_free(void *p)
{
    free(p);
}
