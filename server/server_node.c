// server_node.c - one anvild among several on a PostgreSQL database: the
// leader lease (leader.h), the standby's answers (standby.h) and the node
// thread that moves from one to the other.
//
// server_node_start() listens as a standby first (so a node that could
// bind its URL knows the last holder of that URL on this host is gone),
// then tries the lease once: taken, it hands the standby's socket to the
// rpc endpoint and serves at once (server_serve: open the store, rebuild from
// it, listen; what a restart does). The node thread then renews the lease every
// ttl/3 while leading, or tries to take it every ttl/10 while standing by,
// telling the standby the leader's URL each time. A leader that finds the lease
// taken (a new epoch) logs leader.deposed and ends server_wait() with
// UNAVAILABLE: anvild exits and its supervisor starts it again, as a
// standby. A leader that cannot reach the database keeps trying: as long
// as no other node took the lease (the epoch is unchanged) it leads, and
// its fenced transactions are what keeps it from committing after a
// takeover, whatever it believes.
#include "leader.h"
#include "security.h"
#include "server_impl.h"
#include "standby.h"
#include "store.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *
advertise(const struct server *s)
{
    return s->cfg.advertise_url != NULL ? s->cfg.advertise_url
                                        : s->cfg.listen_url;
}

// Takes over: stops the standby and serves.
static int
lead(struct server *s, int64_t epoch, struct anvil_error *err)
{
    int64_t t0 = av_mono_us();
    // Its connections stay open, its listener guarded.
    standby_hand_over(s->standby, &s->sock, &s->guard, advertise(s));
    s->standby  = NULL;
    s->has_sock = true;
    s->epoch    = epoch;
    s->leading  = true;
    AV_INFO("leader.elected", "epoch=%lld advertise=%s", (long long) epoch,
        advertise(s));
    int rc = server_serve(s, err);
    if (rc == ANVIL_OK)
        AV_INFO("leader.serving", "epoch=%lld rebuild_ms=%lld",
            (long long) epoch, (long long) ((av_mono_us() - t0) / 1000));
    return rc;
}

// Sleeps ms or until server_stop(); true when stopping.
static bool
pause_ms(struct server *s, int64_t ms)
{
    struct timespec ts = av_deadline_in(CLOCK_REALTIME, ms);
    pthread_mutex_lock(&s->lock);
    while (!s->stopping
        && pthread_cond_timedwait(&s->ended_cv, &s->lock, &ts) != ETIMEDOUT)
        ;
    bool stop = s->stopping;
    pthread_mutex_unlock(&s->lock);
    return stop;
}

// One renewal; false when deposed (the server is ended).
static bool
renew(struct server *s)
{
    struct anvil_error err = { 0 };
    int                rc  = leader_renew(s->leader, s->epoch, &err);
    if (rc == ANVIL_FAILED_PRECONDITION) {
        AV_ERR("leader.deposed",
            "epoch=%lld msg=\"%s; this anvild stops serving and exits (its "
            "supervisor starts it again as a standby)\"",
            (long long) s->epoch, err.msg);
        server_end(s, ANVIL_UNAVAILABLE);
        return false;
    }
    if (rc != ANVIL_OK)
        AV_WARN("leader.renew", "epoch=%lld err=\"%s\"", (long long) s->epoch,
            err.msg);
    return true;
}

// One try to take over; false when that failed for good (server ended).
static bool
try_take(struct server *s)
{
    struct anvil_error err = { 0 };
    int64_t            epoch;
    char               url[512] = "";
    int rc = leader_try(s->leader, &epoch, url, sizeof(url), &err);
    if (rc == ANVIL_NOT_FOUND) {
        standby_set_leader(s->standby, url);
        return true;
    }
    if (rc != ANVIL_OK) {
        AV_DEBUG("leader.try", "err=\"%s\"", err.msg);
        return true;
    }
    if ((rc = lead(s, epoch, &err)) != ANVIL_OK) {
        AV_ERR("leader.takeover", "epoch=%lld err=\"%s\"", (long long) epoch,
            err.msg);
        server_end(s, rc);
        return false;
    }
    return true;
}

static void *
node_main(void *arg)
{
    struct server *s   = arg;
    int64_t        ttl = s->cfg.leader_ttl_ms;
    for (;;) {
        if (pause_ms(s, s->leading ? ttl / 3 : ttl / 10))
            return NULL;
        if (!(s->leading ? renew(s) : try_take(s)))
            return NULL;
    }
}

int
server_node_start(struct server *s, struct anvil_error *err)
{
    const struct server_config *cfg       = &s->cfg;
    char                        host[128] = "localhost", holder[700];
    (void) gethostname(host, sizeof(host) - 1);
    snprintf(holder, sizeof(holder), "%s %s", host, cfg->listen_url);
    int rc = security_tls(cfg, &s->tls, err);
    if (rc == ANVIL_OK)
        rc = leader_open(cfg->store_url, holder, advertise(s),
            cfg->leader_ttl_ms, &s->leader, err);
    struct standby_config scf = {
        .url       = cfg->listen_url,
        .recv_max  = cfg->max_payload + SERVER_RECV_MARGIN,
        .tls       = s->tls,
        .http_urls = cfg->http_urls,
        .n_http    = cfg->n_http,
    };
    if (rc == ANVIL_OK)
        rc = standby_start(&scf, &s->standby, err);
    int64_t epoch    = 0;
    char    url[512] = "";
    if (rc == ANVIL_OK)
        rc = leader_try(s->leader, &epoch, url, sizeof(url), err);
    if (rc == ANVIL_OK) {
        rc = lead(s, epoch, err);
    } else if (rc == ANVIL_NOT_FOUND || rc == ANVIL_UNAVAILABLE) {
        standby_set_leader(s->standby, url);
        AV_INFO("leader.standby", "leader=%s advertise=%s", url[0] ? url : "-",
            advertise(s));
        rc = ANVIL_OK;
    }
    if (rc == ANVIL_OK) {
        if (pthread_create(&s->node, NULL, node_main, s) != 0)
            return av_error_set(
                err, ANVIL_RESOURCE_EXHAUSTED, "cannot start a thread");
        s->node_on = true;
    }
    return rc;
}

void
server_node_stop(struct server *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->ended_cv);
    pthread_mutex_unlock(&s->lock);
    if (s->node_on)
        pthread_join(s->node, NULL);
    s->node_on = false;
    standby_stop(s->standby);
    s->standby = NULL;
}

void
server_node_release(struct server *s)
{
    if (s->leader != NULL && s->leading)
        leader_release(s->leader, s->epoch);
    leader_close(s->leader);
    s->leader = NULL;
}
