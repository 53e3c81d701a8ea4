// security.c - auth mode, tokens at start, and TLS for anvild.
#include "security.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/file.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool
security_is_local(const char *url)
{
    if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0)
        return true;
    const char *h = strstr(url, "://");
    if (h == NULL)
        return false;
    h += 3;
    // The host: "[v6]" or up to the port's colon (or the path).
    char   host[256];
    size_t n = h[0] == '[' ? strcspn(h + 1, "]") : strcspn(h, ":/");
    if (n >= sizeof(host))
        return false;
    memcpy(host, h[0] == '[' ? h + 1 : h, n);
    host[n] = '\0';
    struct in_addr  v4;
    struct in6_addr v6;
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

bool
security_auth_on(const struct server_config *cfg)
{
    if (cfg->auth == SERVER_AUTH_ON)
        return true;
    if (cfg->auth == SERVER_AUTH_OFF)
        return false;
    if (!security_is_local(cfg->listen_url))
        return true;
    for (int i = 0; i < cfg->n_http; i++) {
        if (!security_is_local(cfg->http_urls[i]))
            return true;
    }
    return false;
}

int
security_load_tokens(struct store *st, struct auth *a, struct anvil_error *err)
{
    struct store_token *t;
    size_t              n;
    int                 rc = store_token_list(st, &t, &n, err);
    for (size_t i = 0; rc == ANVIL_OK && i < n; i++) {
        if (auth_put(a, t[i].hash, t[i].id, t[i].role, t[i].expires_at,
                t[i].revoked_at)
            != 0)
            rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    }
    if (rc == ANVIL_OK)
        store_tokens_free(t, n);
    return rc;
}

static int
register_admin(struct store *st, struct auth *a, const char *secret,
    struct anvil_error *err)
{
    uint8_t hash[AV_SHA256_LEN];
    int64_t id;
    auth_hash(secret, hash);
    int rc = store_token_insert(st, "bootstrap", ANVIL_ROLE_ADMIN, hash,
        sizeof(hash), av_now_ms(), 0, &id, err);
    if (rc == ANVIL_OK && auth_put(a, hash, id, ANVIL_ROLE_ADMIN, 0, 0) != 0)
        rc = av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    if (rc == ANVIL_OK)
        AV_INFO("token.bootstrap", "token=t%lld", (long long) id);
    return rc;
}

// True if the store already holds a token with this hash.
static int
known_hash(struct store *st, const uint8_t hash[AV_SHA256_LEN], bool *known,
    struct anvil_error *err)
{
    struct store_token *t;
    size_t              n;
    int                 rc = store_token_list(st, &t, &n, err);
    if (rc != ANVIL_OK)
        return rc;
    *known = false;
    for (size_t i = 0; i < n; i++)
        *known |= av_ct_compare(t[i].hash, hash, AV_SHA256_LEN) == 0;
    store_tokens_free(t, n);
    return ANVIL_OK;
}

// The file's token becomes an admin token, unless the store knows it.
static int
use_existing(
    struct store *st, struct auth *a, const char *path, struct anvil_error *err)
{
    char  *text;
    size_t len;
    int    rc = av_read_file(path, 4096, &text, &len, err);
    if (rc != ANVIL_OK)
        return rc;
    text[strcspn(text, "\r\n")] = '\0';
    uint8_t hash[AV_SHA256_LEN];
    bool    known = false;
    auth_hash(text, hash);
    if (strlen(text) < 16)
        rc = av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s holds no token (at least 16 characters)", path);
    if (rc == ANVIL_OK)
        rc = known_hash(st, hash, &known, err);
    if (rc == ANVIL_OK && !known)
        rc = register_admin(st, a, text, err);
    free(text);
    return rc;
}

int
security_bootstrap(
    struct store *st, struct auth *a, const char *path, struct anvil_error *err)
{
    if (access(path, F_OK) == 0)
        return use_existing(st, a, path, err);
    char    secret[AUTH_TOKEN_LEN + 1];
    uint8_t hash[AV_SHA256_LEN];
    if (auth_token_new(secret, sizeof(secret), hash) != 0)
        return av_error_set(err, ANVIL_INTERNAL, "cannot read random bytes");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "cannot create bootstrap token file %s: %s", path, strerror(errno));
    char line[AUTH_TOKEN_LEN + 2];
    int  n  = snprintf(line, sizeof(line), "%s\n", secret);
    bool ok = write(fd, line, (size_t) n) == n && fsync(fd) == 0;
    close(fd);
    if (!ok)
        return av_error_set(
            err, ANVIL_INTERNAL, "cannot write %s: %s", path, strerror(errno));
    return register_admin(st, a, secret, err);
}

static int
tls_error(int rv, const char *what, struct anvil_error *err)
{
    return av_error_set(
        err, ANVIL_INVALID_ARGUMENT, "TLS: %s: %s", what, nng_strerror(rv));
}

int
security_tls(const struct server_config *cfg, nng_tls_config **out,
    struct anvil_error *err)
{
    *out = NULL;
    if (strncmp(cfg->listen_url, "tls+", 4) != 0)
        return ANVIL_OK;
    if (cfg->tls_cert == NULL || cfg->tls_key == NULL)
        return av_error_set(err, ANVIL_INVALID_ARGUMENT,
            "%s needs --tls-cert and --tls-key", cfg->listen_url);
    char           *cert = NULL, *key = NULL;
    size_t          len;
    nng_tls_config *tls = NULL;
    int             rc = av_read_file(cfg->tls_cert, 1 << 20, &cert, &len, err);
    if (rc == ANVIL_OK)
        rc = av_read_file(cfg->tls_key, 1 << 20, &key, &len, err);
    int rv = 0;
    if (rc == ANVIL_OK
        && (rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_SERVER)) != 0)
        rc = tls_error(rv, "allocating", err);
    if (rc == ANVIL_OK
        && (rv = nng_tls_config_own_cert(tls, cert, key, NULL)) != 0)
        rc = tls_error(rv, "loading --tls-cert/--tls-key", err);
    if (rc == ANVIL_OK && cfg->tls_client_ca != NULL
        && ((rv = nng_tls_config_ca_file(tls, cfg->tls_client_ca)) != 0
            || (rv = nng_tls_config_auth_mode(tls, NNG_TLS_AUTH_MODE_REQUIRED))
                != 0))
        rc = tls_error(rv, "loading --tls-client-ca", err);
    if (rc == ANVIL_OK && cfg->tls_client_ca == NULL
        && (rv = nng_tls_config_auth_mode(tls, NNG_TLS_AUTH_MODE_NONE)) != 0)
        rc = tls_error(rv, "setting the auth mode", err);
    free(cert);
    free(key);
    if (rc != ANVIL_OK) {
        if (tls != NULL)
            nng_tls_config_free(tls);
        return rc;
    }
    *out = tls;
    return ANVIL_OK;
}
