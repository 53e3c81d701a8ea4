// server.c - the lifecycle of struct server: store, engine, rpc endpoint.
#include "server.h"
#include "server_impl.h"

#include "engine.h"
#include "handlers.h"
#include "http.h"
#include "leader.h"
#include "listen_guard.h"
#include "metrics.h"
#include "rpc.h"
#include "security.h"
#include "store.h"
#include "util/error.h"
#include "util/log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

void
server_end(struct server *s, int code)
{
    pthread_mutex_lock(&s->lock);
    if (!s->ended)
        s->code = code;
    s->ended = true;
    pthread_cond_broadcast(&s->ended_cv);
    pthread_mutex_unlock(&s->lock);
}

// The engine cannot go on: wakes server_wait() with the error.
static void
on_fatal(void *arg, const struct anvil_error *err)
{
    server_end(arg, err->code != ANVIL_OK ? err->code : ANVIL_INTERNAL);
}

void
server_shutdown(struct server *s)
{
    server_end(s, ANVIL_OK);
}

int
server_wait(struct server *s)
{
    pthread_mutex_lock(&s->lock);
    while (!s->ended)
        pthread_cond_wait(&s->ended_cv, &s->lock);
    int code = s->code;
    pthread_mutex_unlock(&s->lock);
    return code;
}

void
server_config_init(struct server_config *cfg)
{
    *cfg                       = (struct server_config) { 0 };
    cfg->listen_url            = "tcp://127.0.0.1:7700";
    cfg->db_path               = "./anvil.db";
    cfg->max_payload           = 1024 * 1024;
    cfg->synchronous           = 2;
    cfg->contexts              = 64;
    cfg->lease_ms              = 30000;
    cfg->retention_ms          = 7LL * 24 * 3600 * 1000;
    cfg->worker_lost_ms        = 15000;
    cfg->event_retention_ms    = ENGINE_EVENT_RETENTION_MS;
    cfg->event_max             = ENGINE_EVENT_MAX;
    cfg->events                = true;
    cfg->auth                  = SERVER_AUTH_AUTO;
    cfg->bootstrap_token_file  = NULL;
    cfg->tls_cert              = NULL;
    cfg->tls_key               = NULL;
    cfg->tls_client_ca         = NULL;
    cfg->max_waits             = 10000;
    cfg->max_waits_per_conn    = 256;
    cfg->max_queue             = 100000;
    cfg->max_conns             = 1024;
    cfg->n_http                = 0;
    cfg->http_idle_timeout_ms  = 60000;
    cfg->http_read_timeout_ms  = 10000;
    cfg->http_sse_keepalive_ms = 15000;
    cfg->public_metrics        = false;
    cfg->metrics               = true;
    cfg->advertise_url         = NULL;
    cfg->leader_ttl_ms         = LEADER_TTL_MS;
}

static int
check_config(const struct server_config *cfg, struct anvil_error *err)
{
    if (cfg->max_payload == 0 || cfg->max_payload > SERVER_MAX_PAYLOAD)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "max payload must be between 1 byte and 4 MiB");
    if (cfg->synchronous < 0 || cfg->synchronous > 3)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "synchronous must be 0 (OFF), 1 (NORMAL), 2 (FULL) or 3 (EXTRA)");
    if (cfg->contexts < 1 || cfg->lease_ms < 100 || cfg->retention_ms < 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "contexts must be at least 1, lease_ms at least 100 and "
            "retention_ms not negative");
    if (cfg->max_waits < 1 || cfg->max_waits_per_conn < 1 || cfg->max_queue < 1
        || cfg->max_conns < 1)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "max_waits, max_waits_per_conn, max_queue and max_conns must be "
            "at least 1");
    if (cfg->n_http < 0 || cfg->n_http > SERVER_MAX_HTTP
        || cfg->http_idle_timeout_ms < 1000 || cfg->http_read_timeout_ms < 100)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "at most %d HTTP listeners; the HTTP idle timeout must be at "
            "least 1s and the read timeout at least 100ms",
            SERVER_MAX_HTTP);
    if (cfg->leader_ttl_ms < LEADER_TTL_MIN_MS
        || cfg->leader_ttl_ms > LEADER_TTL_MAX_MS)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "the leader ttl must be between 300ms and 10m");
    if (handlers_check() != 0)
        return av_error_set(err, ANVIL_INTERNAL,
            "rpc handler table does not match the service descriptor");
    return ANVIL_OK;
}

// Store, tokens and TLS: what must be ready before any request.
static int
prepare(struct server *s, struct anvil_error *err)
{
    const struct server_config *cfg = &s->cfg;
    bool                        on  = security_auth_on(cfg);
    int                         rc  = cfg->store_url != NULL
                                 ? store_open_pg(cfg->store_url, &s->store, err)
                                 : store_open(cfg->db_path, cfg->synchronous, &s->store, err);
    // FULL: the engine's sync thread makes each batch durable while the
    // engine applies the next one (engine.c).
    // A leader's every transaction is fenced with its epoch (leader.h).
    if (rc == ANVIL_OK && s->leader != NULL)
        store_pg_fence(s->store, s->epoch, cfg->leader_ttl_ms);
    if (rc == ANVIL_OK && cfg->synchronous == 2)
        rc = store_set_deferred_sync(s->store, true, err);
    if (rc == ANVIL_OK && (s->auth = auth_new(on)) == NULL)
        rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    if (rc == ANVIL_OK && cfg->metrics && (s->metrics = metrics_new()) == NULL)
        rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    if (rc == ANVIL_OK)
        rc = security_load_tokens(s->store, s->auth, err);
    if (rc == ANVIL_OK && cfg->bootstrap_token_file != NULL)
        rc = security_bootstrap(
            s->store, s->auth, cfg->bootstrap_token_file, err);
    if (rc == ANVIL_OK && s->tls == NULL) // a standby may have made it
        rc = security_tls(cfg, &s->tls, err);
    if (rc == ANVIL_OK && !on && !security_is_local(cfg->listen_url))
        AV_WARN("server.insecure",
            "url=%s msg=\"--insecure: anyone who can "
            "reach this address can use the server\"",
            cfg->listen_url);
    for (int i = 0; rc == ANVIL_OK && !on && i < cfg->n_http; i++) {
        if (!security_is_local(cfg->http_urls[i]))
            AV_WARN("server.insecure",
                "url=%s msg=\"--insecure: anyone who can reach this address "
                "can use the server\"",
                cfg->http_urls[i]);
    }
    return rc;
}

static int
start_http(struct server *s, const char *url, struct http **out,
    struct anvil_error *err)
{
    const struct server_config *cfg = &s->cfg;
    struct http_config          hcf = {
                 .url       = url,
                 .engine    = s->engine,
                 .auth      = s->auth,
                 .metrics   = s->metrics,
                 .limits    = { .max_payload = cfg->max_payload },
                 .max_body  = cfg->max_payload * 2 + SERVER_RECV_MARGIN,
                 .max_conns = cfg->max_conns,
                 .max_waits = cfg->max_waits,
                 .max_waits_per_conn = cfg->max_waits_per_conn,
                 .idle_timeout_ms    = cfg->http_idle_timeout_ms,
                 .read_timeout_ms    = cfg->http_read_timeout_ms,
                 .sse_keepalive_ms   = cfg->http_sse_keepalive_ms,
                 .tls_cert           = cfg->tls_cert,
                 .tls_key            = cfg->tls_key,
                 .tls_client_ca      = cfg->tls_client_ca,
                 .public_metrics     = cfg->public_metrics,
    };
    int rc = http_start(&hcf, out, err);
    if (rc == ANVIL_OK)
        AV_INFO("server.listening", "url=%s port=%d", url, http_port(*out));
    return rc;
}

int
server_http_port(const struct server *s, int i)
{
    return i >= 0 && i < s->cfg.n_http && s->http[i] != NULL
        ? http_port(s->http[i])
        : -1;
}

int
server_serve(struct server *s, struct anvil_error *err)
{
    const struct server_config *cfg = &s->cfg;
    struct engine_config        ecf = {
               .on_fatal           = on_fatal,
               .fatal_arg          = s,
               .auth               = NULL,
               .lease_ms           = cfg->lease_ms,
               .max_attempts       = 3,
               .retention_ms       = cfg->retention_ms,
               .worker_lost_ms     = cfg->worker_lost_ms,
               .event_retention_ms = cfg->event_retention_ms,
               .event_max          = cfg->event_max,
               .no_events          = !cfg->events,
               .max_queue          = cfg->max_queue,
    };
    int rc      = prepare(s, err);
    ecf.auth    = s->auth;
    ecf.metrics = s->metrics;
    if (rc == ANVIL_OK)
        rc = engine_start(s->store, &ecf, &s->engine, err);
    if (rc == ANVIL_OK) {
        struct rpc_config rcf = {
            .url                = cfg->listen_url,
            .recv_max           = cfg->max_payload + SERVER_RECV_MARGIN,
            .contexts           = cfg->contexts,
            .limits             = { .max_payload = cfg->max_payload },
            .engine             = s->engine,
            .auth               = s->auth,
            .max_waits          = cfg->max_waits,
            .max_waits_per_conn = cfg->max_waits_per_conn,
            .max_conns          = cfg->max_conns,
            .tls                = s->tls,
            .metrics            = s->metrics,
            .has_sock           = s->has_sock,
            .sock               = s->sock,
            .guard              = s->guard,
        };
        rc          = rpc_start(&rcf, &s->rpc, err);
        s->has_sock = false; // the rpc endpoint owns (or closed) it
        s->guard    = NULL;  // and its guard
    }
    for (int i = 0; rc == ANVIL_OK && i < cfg->n_http; i++)
        rc = start_http(s, cfg->http_urls[i], &s->http[i], err);
    if (rc == ANVIL_OK)
        AV_INFO("server.listening", "url=%s db=%s auth=%s", cfg->listen_url,
            cfg->store_url != NULL ? "postgresql" : cfg->db_path,
            auth_enabled(s->auth) ? "tokens" : "off");
    return rc;
}

int
server_start(const struct server_config *cfg, struct server **out,
    struct anvil_error *err)
{
    if (check_config(cfg, err) != ANVIL_OK)
        return err ? err->code : ANVIL_INVALID_ARGUMENT;
    struct server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    s->cfg = *cfg;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->ended_cv, NULL);
    // On PostgreSQL the node first takes the leader lease or stands by
    // (server_node.c); on SQLite it serves at once.
    int rc = cfg->store_url != NULL ? server_node_start(s, err)
                                    : server_serve(s, err);
    if (rc != ANVIL_OK) {
        server_stop(s);
        return err ? err->code : rc;
    }
    *out = s;
    return ANVIL_OK;
}

void
server_stop(struct server *s)
{
    if (s == NULL)
        return;
    // The engine answers what it holds while the socket is still open;
    // only then is the socket closed (nng 1.5.2 must not send on a closed
    // socket's contexts).
    server_node_stop(s); // the node thread ends before what it started
    rpc_quiesce(s->rpc);
    for (int i = 0; i < SERVER_MAX_HTTP; i++)
        http_quiesce(s->http[i]);
    engine_stop(s->engine);
    rpc_close(s->rpc);
    rpc_free(s->rpc);
    for (int i = 0; i < SERVER_MAX_HTTP; i++)
        http_free(s->http[i]);
    if (s->has_sock && s->rpc == NULL) { // handed over, never taken
        listen_guard_stop(s->guard);
        nng_close(s->sock);
    }
    listen_guard_free(s->guard);
    server_node_release(s); // after the engine's last commit
    store_close(s->store);
    auth_free(s->auth);
    if (s->tls != NULL)
        nng_tls_config_free(s->tls);
    if (s->rpc != NULL)
        AV_INFO("server.stopped", "url=%s", s->cfg.listen_url);
    metrics_free(s->metrics); // last: every thread that counts has ended
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->ended_cv);
    free(s);
}
