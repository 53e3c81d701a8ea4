// client_follow.c - a client given several servers follows the leader.
//
// Several anvild nodes may share one database: the leader serves, and a
// standby answers every rpc UNAVAILABLE with the leader's URL in
// Reply.leader ("" while none is known). A client opened with a list
// (server_list.c) keeps one dialer, to the current server c->cur, and
// moves it (follow_switch: a new dialer for the next server, the old one
// closed) when
//  (a) a send finds no connection within the server's share of the call's
//      time (FOLLOW_TRY_MS): the server is down or unreachable;
//  (b) the server answers UNAVAILABLE: to the leader it names when that is
//      in the list, else to the next server after a short backoff (an
//      election is in progress, or the server is stopping); only the first
//      leader named is followed without a pause, so standbys that disagree
//      while an election settles do not bounce a call at full speed;
//  (c) the connection the request went out on closes while the call waits
//      for its reply (the leader was killed): the pipe callback below marks
//      the call lost and cancels its aio, so even a parked long-poll moves
//      at once rather than at its timeout;
//  (d) a request sent gets no reply within the call's time (a leader
//      frozen, SIGSTOP or a paused machine, whose kernel still takes the
//      bytes): that call ends DEADLINE_EXCEEDED, and the next goes to the
//      next server, whose answer (a standby names the leader) brings it
//      back here if this one still leads.
// Each time the call sends the same encoded request again, with the same
// request id: the server applies a request id once (stored for submits,
// memoised otherwise), so a request that reached the old leader before it
// died is not applied twice.
//
// Locks. The pipe callback runs on nng's reaper thread, which nng_close
// waits for; shutdown calls nng_close under c->mu, so the callback never
// takes c->mu: it takes c->pmu, which guards the calls' watch fields and is
// only ever held for short non-blocking work (taken after c->mu, never
// before). A switch closes the old dialer after dropping c->mu for the same
// reason. Switches happen inside calls, so shutdown (which waits for the
// calls to leave) never meets one.
//
// A client with one server never comes here: client_call.c's exchange()
// is unchanged for it, and no pipe callback is registered.
#include "client_impl.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "wire.h"

#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// How long a send waits for a connection to one server before the next
// server is tried (less when the call's timeout is shorter).
#define FOLLOW_TRY_MS 1000
// After an UNAVAILABLE that names no leader of the list: the first pause
// before the next server, doubled each time up to the last.
#define FOLLOW_BACKOFF_MIN_MS 100
#define FOLLOW_BACKOFF_MAX_MS 500
// An operation ended by the loss of its connection (not an nng error).
#define FOLLOW_LOST (-1)

// Marks the calls that waited on pipe p lost and cancels their aios. A pipe
// of the current dialer ends every watching call, with the current
// generation to switch from; a pipe of an older dialer (closed by a switch)
// ends only the calls sent on it, which then resend without switching.
static void
pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void) ev;
    anvil_client *c  = arg;
    uint32_t      id = (uint32_t) nng_dialer_id(nng_pipe_dialer(p));
    pthread_mutex_lock(&c->pmu);
    bool current = id == c->watch_dialer;
    if (current)
        c->cur_lost = true; // the next call moves at once
    for (struct inflight *in = c->inflight; in != NULL; in = in->next) {
        if (!in->watch || in->lost || (!current && in->dialer_id != id))
            continue;
        in->lost     = true;
        in->lost_gen = current ? c->watch_gen : 0;
        nng_aio_cancel(in->aio);
    }
    pthread_mutex_unlock(&c->pmu);
}

void
client_follow_added(anvil_client *c, nng_pipe p)
{
    uint32_t id = (uint32_t) nng_dialer_id(nng_pipe_dialer(p));
    pthread_mutex_lock(&c->pmu);
    if (id == c->watch_dialer)
        c->cur_lost = false; // the current server is back
    pthread_mutex_unlock(&c->pmu);
}

int
client_follow_init(anvil_client *c)
{
    return nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, pipe_removed, c);
}

// Moves c to the server after the current one (the leader's, when leader
// names one of the list), unless a switch happened since generation gen
// (another call moved it already) or shutdown has begun.
static void
follow_switch(anvil_client *c, uint64_t gen, const char *leader)
{
    nng_dialer old    = NNG_DIALER_INITIALIZER;
    bool       retire = false;
    size_t     from   = 0;
    size_t     to     = 0;
    pthread_mutex_lock(&c->mu);
    if (!c->closing && c->dialing && c->gen == gen) {
        nng_dialer d;
        from = c->cur;
        to   = server_list_next(&c->servers, c->cur, leader);
        if (nng_dialer_create(&d, c->sock, c->servers.urls[to]) == 0) {
            if (client_dialer_options(c, d, to) == 0
                && nng_dialer_start(d, NNG_FLAG_NONBLOCK) == 0) {
                old       = c->dialer;
                retire    = true;
                c->dialer = d;
                c->cur    = to;
                c->gen++;
                atomic_store(&c->url, c->servers.urls[to]);
                pthread_mutex_lock(&c->pmu);
                c->watch_dialer = (uint32_t) nng_dialer_id(d);
                c->watch_gen    = c->gen;
                c->cur_lost     = false;
                pthread_mutex_unlock(&c->pmu);
            } else {
                nng_dialer_close(d);
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (!retire)
        return;
    nng_dialer_close(old); // outside c->mu: see the top of the file
    AV_INFO("client.server.switch", "from=%s to=%s leader=%s",
        c->servers.urls[from], c->servers.urls[to],
        leader != NULL ? leader : "");
}

// Starts watching for the loss of the current connection: returns the
// generation the next send goes out under. *gone: the current server's
// connection was lost since the last call (none came back).
static uint64_t
watch_start(anvil_client *c, struct inflight *in, bool *gone)
{
    pthread_mutex_lock(&c->pmu);
    *gone         = c->cur_lost;
    in->watch     = true;
    in->lost      = false;
    in->lost_gen  = 0;
    in->dialer_id = c->watch_dialer;
    uint64_t gen  = c->watch_gen;
    pthread_mutex_unlock(&c->pmu);
    return gen;
}

// The generation to switch from after a loss (0: none, just resend).
static uint64_t
lost_gen(anvil_client *c, struct inflight *in)
{
    pthread_mutex_lock(&c->pmu);
    uint64_t gen = in->lost_gen;
    in->watch    = false;
    pthread_mutex_unlock(&c->pmu);
    return gen;
}

// As run_op() in client_call.c, but an operation of a call marked lost
// does not start, and one ended by that loss returns FOLLOW_LOST.
static int
follow_op(anvil_client *c, struct inflight *in, bool send)
{
    pthread_mutex_lock(&c->mu);
    bool closing = c->closing;
    pthread_mutex_lock(&c->pmu);
    bool lost = in->lost;
    if (!closing && !lost && send)
        nng_ctx_send(in->ctx, in->aio);
    else if (!closing && !lost)
        nng_ctx_recv(in->ctx, in->aio);
    pthread_mutex_unlock(&c->pmu);
    pthread_mutex_unlock(&c->mu);
    if (closing)
        return NNG_ECLOSED;
    if (lost)
        return FOLLOW_LOST;
    nng_aio_wait(in->aio);
    int rv = nng_aio_result(in->aio);
    if (rv == NNG_ECANCELED) {
        // The pipe callback, or shutdown (then the call ends).
        pthread_mutex_lock(&c->pmu);
        rv = in->lost ? FOLLOW_LOST : NNG_ECLOSED;
        pthread_mutex_unlock(&c->pmu);
    }
    return rv;
}

// One call's state across the servers it tries.
struct follow {
    anvil_client    *c;
    struct inflight *in;
    const char      *method;
    nng_msg         *req;        // the encoded request, resent as it is
    int              timeout_ms; // the call's timeout
    int64_t          wait_ms;    // a long-poll's time on top
    bool             first_dial; // no connection yet, with a connect limit
    int              try_ms;     // a send's time on one server
    int64_t          send_end;   // no connection by then: give up
    int64_t          reply_end;  // with wait_ms on top: no reply, give up
    int              backoff_ms; // the next pause after a leaderless answer
    int              losses;     // connections lost while waiting
    bool             followed;   // went to a leader a standby named
    char             said[200];  // the last UNAVAILABLE answer: "url: msg"
};

static int
min_int(int64_t a, int64_t b)
{
    int64_t m = a < b ? a : b;
    return m < 0 ? 0 : m > INT32_MAX ? INT32_MAX : (int) m;
}

// Sends a copy of f->req within the current server's share of the time:
// 0, FOLLOW_LOST or an nng error. *gen: the generation it went out under.
static int
follow_send(struct follow *f, uint64_t *gen)
{
    nng_msg *m;
    if (nng_msg_dup(&m, f->req) != 0)
        return NNG_ENOMEM;
    bool gone;
    *gen = watch_start(f->c, f->in, &gone);
    if (gone) {
        // Lost while no call waited: move now, not after a send's try.
        follow_switch(f->c, *gen, NULL);
        *gen = watch_start(f->c, f->in, &gone);
    }
    nng_aio_set_msg(f->in->aio, m);
    nng_aio_set_timeout(
        f->in->aio, min_int(f->try_ms, f->send_end - av_mono_ms()));
    int rv = follow_op(f->c, f->in, true);
    if (rv != 0) {
        nng_msg_free(nng_aio_get_msg(f->in->aio)); // an unsent message is ours
        nng_aio_set_msg(f->in->aio, NULL);
    }
    return rv;
}

// The servers of c as "a, b, c" into buf.
static void
list_text(anvil_client *c, char *buf, size_t len)
{
    size_t at = 0;
    buf[0]    = '\0';
    for (size_t i = 0; i < c->servers.n && at < len; i++) {
        int n = snprintf(
            buf + at, len - at, "%s%s", i > 0 ? ", " : "", c->servers.urls[i]);
        at += n > 0 ? (size_t) n : 0;
    }
}

// Sets err for a call that reached no server in time.
static int
follow_gave_up(struct follow *f, int waited_ms, struct anvil_error *err)
{
    char list[160];
    list_text(f->c, list, sizeof(list));
    if (f->said[0] != '\0')
        return av_error_set(err, ANVIL_UNAVAILABLE,
            "no anvild leader took %s within %d ms (the last answer, from "
            "%s)",
            f->method, waited_ms, f->said);
    if (f->first_dial)
        return av_error_set(err, ANVIL_UNAVAILABLE,
            "nothing listens at any of %s (no connection within %d ms to "
            "send %s; is anvild running?)",
            list, waited_ms, f->method);
    return av_error_set(err, ANVIL_UNAVAILABLE,
        "could not reach the anvild leader at any of %s within %d ms to "
        "send %s (are they running?%s)",
        list, waited_ms, f->method,
        client_url_is_tls(f->c->servers.urls[0])
            ? " does the TLS CA trust their certificates?"
            : "");
}

// Pauses before the next server after an UNAVAILABLE that named no
// leader of the list, within the time left to send.
static void
follow_backoff(struct follow *f)
{
    int ms = min_int(f->backoff_ms, f->send_end - av_mono_ms());
    f->backoff_ms *= 2;
    if (f->backoff_ms > FOLLOW_BACKOFF_MAX_MS)
        f->backoff_ms = FOLLOW_BACKOFF_MAX_MS;
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

// A connection lost while waiting for the reply: the call gets its whole
// timeout again on the next server, a few times over at most.
static bool
follow_lost(struct follow *f)
{
    if (++f->losses > 2 * (int) f->c->servers.n)
        return false;
    follow_switch(f->c, lost_gen(f->c, f->in), NULL);
    int64_t now  = av_mono_ms();
    f->send_end  = now + f->timeout_ms;
    f->reply_end = now + f->timeout_ms;
    return true;
}

// Waits for the reply to a sent request: 0 with *r the reply, FOLLOW_LOST
// or an nng error.
static int
follow_recv(struct follow *f, nng_msg **r)
{
    int64_t left = f->reply_end - av_mono_ms();
    nng_aio_set_timeout(
        f->in->aio, min_int((left > 0 ? left : 0) + f->wait_ms, INT32_MAX));
    int rv = follow_op(f->c, f->in, false);
    *r     = rv == 0 ? nng_aio_get_msg(f->in->aio) : NULL;
    return rv;
}

// Decodes reply r: true when it is the answer (*msg = r), false when it is
// a standby's or a stopping server's UNAVAILABLE worth another server (r
// freed, c switched).
static bool
follow_answer(struct follow *f, uint64_t id,
    const ProtobufCMessageDescriptor *desc, uint64_t gen, nng_msg *r,
    nng_msg **msg, ProtobufCMessage **reply, int *rc, struct anvil_error *err)
{
    char              *leader = NULL;
    struct anvil_error e      = { 0, "" };
    *rc = wire_reply_decode(nng_msg_body(r), nng_msg_len(r), f->method, id,
        desc, reply, &leader, &e);
    if (*rc != ANVIL_OK && err != NULL)
        *err = e;
    if (*rc != ANVIL_UNAVAILABLE) {
        free(leader);
        *msg = r;
        return true;
    }
    snprintf(
        f->said, sizeof(f->said), "%.90s: %.100s", client_url(f->c), e.msg);
    // The first leader named goes at once; after that (standbys that
    // disagree while an election settles) every hop pauses.
    if (server_list_find(&f->c->servers, leader) < 0 || f->followed)
        follow_backoff(f);
    else
        f->followed = true;
    if (av_mono_ms() >= f->send_end) {
        // No time left for another server: this answer is the call's (and
        // no dialer is started that the close could meet mid-handshake,
        // which nng 1.5.2 leaks: see client.c).
        free(leader);
        *msg = r;
        return true;
    }
    nng_msg_free(r);
    follow_switch(f->c, gen, leader);
    free(leader);
    return false;
}

int
client_follow_exchange(anvil_client *c, struct inflight *in, const char *method,
    uint64_t id, const ProtobufCMessageDescriptor *desc, nng_msg **msg,
    int timeout_ms, int64_t wait_ms, ProtobufCMessage **reply,
    struct anvil_error *err)
{
    int64_t       t0         = av_mono_ms();
    int           connect_ms = atomic_load(&c->connect_ms);
    struct follow f          = { .c = c,
                 .in                = in,
                 .method            = method,
                 .req               = *msg,
                 .timeout_ms        = timeout_ms,
                 .wait_ms           = wait_ms,
                 .backoff_ms        = FOLLOW_BACKOFF_MIN_MS };
    *msg                     = NULL;
    // A first dial with a connect limit gets one round of the list.
    f.first_dial = connect_ms > 0 && connect_ms < timeout_ms
        && !atomic_load(&c->connected);
    f.try_ms = min_int(FOLLOW_TRY_MS, f.first_dial ? connect_ms : timeout_ms);
    int send_ms = f.first_dial
        ? min_int((int64_t) f.try_ms * (int64_t) c->servers.n, timeout_ms)
        : timeout_ms;
    f.send_end  = t0 + send_ms;
    f.reply_end = t0 + timeout_ms;
    int rc      = ANVIL_UNAVAILABLE;
    for (;;) {
        if (av_mono_ms() >= f.send_end) {
            rc = follow_gave_up(&f, (int) (av_mono_ms() - t0), err);
            break;
        }
        uint64_t gen;
        nng_msg *r  = NULL;
        int      rv = follow_send(&f, &gen);
        if (rv == NNG_ETIMEDOUT) {
            if (av_mono_ms() < f.send_end) // else the call gives up
                follow_switch(c, gen, NULL);
            continue;
        }
        if (rv == 0)
            rv = follow_recv(&f, &r);
        if (rv == FOLLOW_LOST && follow_lost(&f))
            continue;
        if (rv == NNG_ETIMEDOUT) // sent, and no reply: (d) above
            follow_switch(c, gen, NULL);
        if (rv != 0) {
            rc = rv == FOLLOW_LOST ? av_error_set(err, ANVIL_UNAVAILABLE,
                     "%s: lost the connection to the server %d times", method,
                     f.losses)
                                   : wire_nng_error(rv, method, client_url(c),
                                       timeout_ms + wait_ms, err);
            break;
        }
        if (follow_answer(&f, id, desc, gen, r, msg, reply, &rc, err))
            break;
    }
    nng_msg_free(f.req);
    return rc;
}
