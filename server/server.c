// server.c - the lifecycle of struct server: store, engine, rpc endpoint.
#include "server.h"

#include "engine.h"
#include "handlers.h"
#include "rpc.h"
#include "store.h"
#include "util/error.h"
#include "util/log.h"

#include <stdlib.h>

#define RECV_MARGIN (64 * 1024)

struct server {
    struct server_config cfg;
    struct store        *store;
    struct engine       *engine;
    struct rpc          *rpc;
};

void
server_config_init(struct server_config *cfg)
{
    cfg->listen_url  = "tcp://127.0.0.1:7700";
    cfg->db_path     = "./anvil.db";
    cfg->max_payload = 1024 * 1024;
    cfg->synchronous = 2;
    cfg->contexts    = 64;
    cfg->lease_ms    = 30000;
    cfg->retention_ms = 7LL * 24 * 3600 * 1000;
    cfg->worker_lost_ms = 15000;
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
    if (handlers_check() != 0)
        return av_error_set(err, ANVIL_INTERNAL,
            "rpc handler table does not match the service descriptor");
    return ANVIL_OK;
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
    s->cfg                   = *cfg;
    struct engine_config ecf = {
        .lease_ms     = cfg->lease_ms,
        .max_attempts = 3,
        .retention_ms = cfg->retention_ms,
        .worker_lost_ms = cfg->worker_lost_ms,
    };
    int rc = store_open(cfg->db_path, cfg->synchronous, &s->store, err);
    if (rc == ANVIL_OK)
        rc = engine_start(s->store, &ecf, &s->engine, err);
    if (rc == ANVIL_OK) {
        struct rpc_config rcf = {
            .url      = cfg->listen_url,
            .recv_max = cfg->max_payload + RECV_MARGIN,
            .contexts = cfg->contexts,
            .limits   = { .max_payload = cfg->max_payload },
            .engine   = s->engine,
        };
        rc = rpc_start(&rcf, &s->rpc, err);
    }
    if (rc != ANVIL_OK) {
        server_stop(s);
        return rc;
    }
    AV_INFO("server.listening", "url=%s db=%s", cfg->listen_url, cfg->db_path);
    *out = s;
    return ANVIL_OK;
}

void
server_stop(struct server *s)
{
    if (s == NULL)
        return;
    rpc_close(s->rpc);
    engine_stop(s->engine);
    rpc_free(s->rpc);
    store_close(s->store);
    if (s->rpc != NULL)
        AV_INFO("server.stopped", "url=%s", s->cfg.listen_url);
    free(s);
}
