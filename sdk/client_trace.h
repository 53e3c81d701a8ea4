// client_trace.h - per-hop timestamps of the SDK's rpcs, for anvil-bench
// (internal: not part of the public API, not in libanvil.so's exports).
//
// With a hook set, every rpc of every client in the process asks the
// server for Reply.trace_us (Request.trace) and, once its reply is
// decoded, calls the hook on the calling thread with the server's stamps
// and its own. All times are CLOCK_MONOTONIC microseconds (av_mono_us),
// the server's clock too when it runs on the same machine. Without a hook
// (the default) an rpc costs one atomic load more.
//
// Threads: set the hook before any call starts and clear it after the last
// returned; the hook itself runs on the callers' threads concurrently.
#ifndef SDK_CLIENT_TRACE_H
#define SDK_CLIENT_TRACE_H

#include <stddef.h>
#include <stdint.h>

// The server's hops (Reply.trace_us), in order.
enum client_trace_hop {
    CLIENT_TRACE_RECEIVED,  // anvild decoded the request
    CLIENT_TRACE_TAKEN,     // a batch of the engine took it
    CLIENT_TRACE_APPLIED,   // applied (a long-poll: parked)
    CLIENT_TRACE_COMMITTED, // its batch committed
    CLIENT_TRACE_SYNCED,    // ... and was on disk
    CLIENT_TRACE_REPLIED,   // the reply was handed to nng
    CLIENT_TRACE_HOPS
};

struct client_trace {
    const char *method;
    uint64_t    request_id;
    int         code;     // the rpc's result
    int64_t     sent_us;  // before the request was handed to nng
    int64_t     reply_us; // when the reply came back
    // The server's stamps; 0 where it sent none (an older server).
    int64_t server_us[CLIENT_TRACE_HOPS];
};

struct client_trace_hook {
    void (*fn)(void *arg, const struct client_trace *t);
    void *arg;
};

// Sets (h != NULL) or clears the process's hook. *h is borrowed for the
// life of the process: a call that began before the clear may still use
// it.
void client_trace_set(const struct client_trace_hook *h);

#endif
