// client_impl.h - what the SDK's call modules (client.c, client_call.c,
// client_job.c, client_worker.c, client_admin.c, workflow.c) share: the
// anvil_client itself, running one rpc on it, and the argument checks every
// public call makes before it sends anything.
//
// Threads: any; client_call() is as thread-safe as the client (see the
// top of client_call.c for how calls, anvil_client_shutdown() and
// anvil_client_close() meet).
#ifndef SDK_CLIENT_IMPL_H
#define SDK_CLIENT_IMPL_H

#include "anvil/v1/anvil.pb-c.h"
#include "server_list.h"

#include <anvil/anvil.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define DEFAULT_TIMEOUT_MS 10000
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 2000
#define TLS_FILE_MAX (1 << 20) // a PEM certificate or key file

// One call in flight: its own context and aio, listed in c->inflight so
// that shutdown can cancel the aio. With several servers, a call watches
// the connection its request went out on (client_follow.c): the pipe
// callback marks it lost and cancels its aio when that connection closes.
struct inflight {
    nng_ctx          ctx;
    nng_aio         *aio;
    struct inflight *next;      // guarded by c->mu and c->pmu (both to change)
    bool             watch;     // guarded by c->pmu: a pipe loss ends the op
    bool             lost;      // guarded by c->pmu: ended by a pipe loss
    uint32_t         dialer_id; // guarded by c->pmu: the dialer it went on
    uint64_t         lost_gen;  // guarded by c->pmu: switch from this gen
};

#define CLIENT_DEFAULT_TIMEOUT_MS 10000
#define CLIENT_RECONNECT_MIN_MS 100
#define CLIENT_RECONNECT_MAX_MS 2000

// A client (see client.c and client_call.c for how its fields are used).
struct anvil_client {
    nng_socket             sock;
    struct server_list     servers; // immutable after open
    _Atomic(const char *)  url;     // servers.urls[cur], for messages
    char                  *token;   // set before calls (anvil_client_set_token)
    bool                   tls;     // a TLS config was set (error messages)
    Anvil__V1__WorkerInfo *info;    // sent with Poll/Heartbeat; NULL = none
    _Atomic int            timeout_ms; // per call, long-polls excluded
    _Atomic int            connect_ms; // first-dial limit; 0 = none
    _Atomic bool           connected;  // a connection was ever made
    nng_dialer             dialer; // guarded by mu; created at open, started
                                   // by a call, replaced by a server switch
    pthread_mutex_t  mu;           // guards everything below but pmu's
    size_t           cur;          // the server dialled (servers.urls index)
    uint64_t         gen;          // bumped by every server switch, from 1
    bool             dialing;      // the dialer was started
    pthread_cond_t   idle;         // signalled when calls drops to 0
    int              calls;        // calls between call_enter and call_leave
    struct inflight *inflight;     // their aios
    bool             closing;      // shutdown (or close) has begun
    bool             sock_closed;
    nng_tls_config  *tls_cfgs[SERVER_LIST_MAX]; // per server; NULL = none
    int64_t          redialed; // av_mono_ms() of the last redial
    // Taken after mu when both are (never the other way round): the pipe
    // callback takes only pmu, as it may run while mu is held by a call
    // that waits for nng (nng_close in shutdown).
    pthread_mutex_t pmu;
    uint32_t        watch_dialer; // guarded by pmu: id of c->dialer
    uint64_t        watch_gen;    // guarded by pmu: c->gen
    bool            cur_lost;     // guarded by pmu: c->dialer's connection
                                  // closed and none has come back
};

// The URL of the server the client talks to now (any thread).
static inline const char *
client_url(anvil_client *c)
{
    return atomic_load(&c->url);
}

// Sets a dialer's options (and the TLS configuration of server `server`,
// an index into c->servers, when one is set).
int client_dialer_options(anvil_client *c, nng_dialer d, size_t server);

// With several servers: notes that pipes of c->sock close (registers the
// pipe callback). Called once at open. 0 or an nng error.
int client_follow_init(anvil_client *c);

// With several servers: notes that pipe p (just added) is up (called by
// the client's ADD_POST pipe callback).
void client_follow_added(anvil_client *c, nng_pipe p);

// With several servers, the exchange of call_with_id(): sends the encoded
// request *msg (consumed) to the current server and waits for its reply,
// moving to another server and resending the same bytes (the same request
// id) when no connection comes within a server's share of the time, when
// the connection is lost while waiting, or when the server answers
// UNAVAILABLE (a standby: to the leader it names). Decodes the reply as
// wire_reply_decode() into *reply (desc); *msg is then the reply message
// (the caller's, for the trace hook), else NULL. Returns the reply's code
// or the transport's, with err set.
int client_follow_exchange(anvil_client *c, struct inflight *in,
    const char *method, uint64_t id, const ProtobufCMessageDescriptor *desc,
    nng_msg **msg, int timeout_ms, int64_t wait_ms, ProtobufCMessage **reply,
    struct anvil_error *err);

// True for a URL whose transport is TLS (tls+tcp://, wss://).
bool client_url_is_tls(const char *url);

// Runs rpc `method` on c with request req (of the rpc's input type) and
// waits for the reply: up to the client's timeout, plus wait_ms for a
// long-poll the server may park. On ANVIL_OK *reply is the rpc's output
// message, freed with client_free_reply(). Errors: the server's code and
// message; UNAVAILABLE when no server took the request in time or the
// client is shut down (calls in flight fail at once); DEADLINE_EXCEEDED
// when a server took it but no reply came; UNIMPLEMENTED for an unknown
// method; INTERNAL for a reply that does not decode.
int client_call(anvil_client *c, const char *method,
    const ProtobufCMessage *req, int64_t wait_ms, ProtobufCMessage **reply,
    struct anvil_error *err);

// As client_call() for a batch request of n_ids items: the envelope takes
// the first of n_ids consecutive request ids (see SubmitJobs).
int client_call_ids(anvil_client *c, const char *method,
    const ProtobufCMessage *req, uint32_t n_ids, ProtobufCMessage **reply,
    struct anvil_error *err);

// How long one WaitJob or WaitWorkflow of a longer wait lasts (the server
// takes up to 300 s).
#define CLIENT_WAIT_CHUNK_MS 60000

// The storage of field `name` of message m (cast it to the field's C
// type), or NULL if m has no such field.
void *client_field(const ProtobufCMessage *m, const char *name);

// The array of repeated field `name` of message m (its elements are
// pointers for a message field), with its length in *n; NULL and 0 if m
// has no such repeated field.
void *client_repeated(const ProtobufCMessage *m, const char *name, size_t *n);

// Copies what the caller wants out of reply rep (to method) into out,
// replacing (and freeing) what out held.
typedef int (*client_take_fn)(const ProtobufCMessage *rep, const char *method,
    void *out, struct anvil_error *err);

// Runs rpc method with req (as client_call) and, when it succeeds and out
// is not NULL, hands the reply to take(rep, method, out, err).
int client_call_take(anvil_client *c, const char *method,
    const ProtobufCMessage *req, int64_t wait_ms, client_take_fn take,
    void *out, struct anvil_error *err);

// A wait: anvil_job_wait or anvil_workflow_wait.
struct client_waiter {
    const char    *fn;      // the public call, for messages
    const char    *what;    // "job", "workflow"
    const char    *id_name; // "job id", "workflow id"
    const char    *method;  // its rpc: {id, timeout_ms} -> {..., done}
    client_take_fn take;    // copies the reply's object into out
    const char *(*state)(const void *out); // the state name of *out
};

// Checks c, id and timeout_ms (INVALID_ARGUMENT), then runs w->method
// with req (its id set here) in long-polls of at most
// CLIENT_WAIT_CHUNK_MS until the reply says done (ANVIL_OK), the call
// fails, or timeout_ms (0: no limit) has passed (DEADLINE_EXCEEDED,
// "<what> <id> is still <state> after <n> ms"). out (a pointer to the
// caller's pointer) holds the latest object either way.
int client_wait(anvil_client *c, const struct client_waiter *w, const char *id,
    ProtobufCMessage *req, int timeout_ms, void *out, struct anvil_error *err);

// A list call (ListTokens, ListWorkers, ListSchedules): the reply's
// repeated field becomes a new public list of `size`-byte items.
struct client_list_kind {
    const char *fn;     // the public call, for messages
    const char *method; // its rpc
    const char *field;  // the reply's repeated field: "tokens"
    const char *what;   // one item, for messages: "token"
    size_t      size;   // of one item
    int (*from)(void *item, const void *pb); // 0, or -1 (out of memory)
    void (*fini)(void *item);
    void *(*new_list)(void *items, size_t n); // NULL when out of memory
};

// Runs list call k with req and puts the new list at out (a pointer to
// the caller's list pointer). client_admin.c.
int client_list_call(anvil_client *c, const struct client_list_kind *k,
    const ProtobufCMessage *req, void *out, struct anvil_error *err);

// Fills req's options from o (NULL: leaves the defaults).
void client_submit_opts_to_pb(
    const struct anvil_job_opts *o, Anvil__V1__SubmitJobRequest *req);

// The worker info set with anvil_client_set_worker_info(), or NULL.
const Anvil__V1__WorkerInfo *client_worker_info(const anvil_client *c);

// Frees a reply of client_call(); NULL is ignored.
void client_free_reply(ProtobufCMessage *reply);

// INVALID_ARGUMENT "<fn>: client is NULL" when c is NULL, else ANVIL_OK.
int client_check(anvil_client *c, const char *fn, struct anvil_error *err);

// INVALID_ARGUMENT "<fn>: out is NULL" when out (a pointer to the
// caller's result pointer) is NULL; else sets *out to NULL and checks c
// as client_check().
int client_check_out(
    anvil_client *c, void *out, const char *fn, struct anvil_error *err);

// INVALID_ARGUMENT "<fn>: <what> is NULL|empty" when id is, else ANVIL_OK.
int client_check_id(
    const char *id, const char *what, const char *fn, struct anvil_error *err);

// INVALID_ARGUMENT when p is NULL but len is not 0, else ANVIL_OK.
int client_check_bytes(const void *p, size_t len, const char *what,
    const char *fn, struct anvil_error *err);

#endif
