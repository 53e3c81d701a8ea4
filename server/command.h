// command.h - the command table: one row per rpc of `service Anvil`, and
// every fact about that rpc in its row: the wire types, how its body is
// decoded into an engine command, how the engine applies it, how the
// result is encoded, whether it writes, whether it may wait, which roles
// may call it and how its outputs are freed. Nothing routes rpcs any other
// way: rpc.c finds the row by name, auth.c is given the row's roles, the
// engine calls the row's apply, and each command carries its row.
//
// Adding an rpc: add it to the .proto, add one row to the table in
// command.c, and write the functions the row names (decode and encode in a
// handlers_*.c file, apply and fini in the engine file that owns the state
// it changes).
//
// The table is constant: any thread may read it.
#ifndef SERVER_COMMAND_H
#define SERVER_COMMAND_H

#include <anvil/anvil.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ProtobufCMessage;
struct ProtobufCMessageDescriptor;
struct batch;
struct call;
struct cmd;
struct engine;
struct handler_limits;

// Role bits of command.roles: admin tokens may call every rpc.
#define COMMAND_ROLE(r) (1u << (r))

struct command {
    const char *name; // the rpc in anvil.v1.Anvil
    const struct ProtobufCMessageDescriptor *request;
    const struct ProtobufCMessageDescriptor *response;
    // rpc thread: the request body (call->req) into call->cmd.
    int (*decode)(const struct handler_limits *lim, struct call *call,
        struct anvil_error *err);
    // Engine thread, inside the batch's transaction: returns the command's
    // code, or ENGINE_PARKED (engine_impl.h) when it waits for an answer.
    int (*apply)(struct engine *e, struct batch *b, struct cmd *c);
    // Engine thread, once the batch committed, for a command answered OK:
    // the in-memory changes that must not run ahead of the commit. NULL =
    // none.
    void (*committed)(struct engine *e, struct cmd *c);
    // Any thread: the response message into *out, built in *scratch.
    int (*encode)(struct call *call, struct ProtobufCMessage **out,
        void **scratch);
    void (*free_reply)(void *scratch); // what encode allocated
    void (*fini)(struct cmd *c);       // the engine's outputs; NULL = none
    // How long the command may wait for its answer (a long-poll); NULL or
    // 0 = it does not wait.
    uint32_t (*wait_ms)(const struct cmd *c);
    // No savepoint of its own: it only reads (or, for a batch, each item
    // takes its own).
    bool     read_only;
    unsigned roles; // COMMAND_ROLE bits besides admin
};

// The row of rpc `name`, or NULL.
const struct command *command_find(const char *name);

// Row i of the table, or NULL past the last one.
const struct command *command_at(size_t i);

#endif
