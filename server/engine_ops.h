// engine_ops.h - the engine's side of every row of rpc_table.h: the
// function that applies a command kind and the one that frees its outputs.
// Each apply runs on the engine thread inside the batch's transaction (in a
// savepoint unless its row says READS) and returns the command's code, or
// ENGINE_PARKED for a long-poll that waits. jobs.c, flow.c, tokens.c,
// views.c and events.c define them; the fini functions are in
// engine_cmd.c.
#ifndef SERVER_ENGINE_OPS_H
#define SERVER_ENGINE_OPS_H

struct engine;
struct batch;
struct cmd;

#define ENGINE_OPS(apply, fini)                                   \
    int  apply(struct engine *e, struct batch *b, struct cmd *c); \
    void fini(struct cmd *c);
#define RPC(method, kind, apply, fini, ...) ENGINE_OPS(apply, fini)
#define CMD(kind, apply, fini, access) ENGINE_OPS(apply, fini)
#include "rpc_table.h"
#undef RPC
#undef CMD
#undef ENGINE_OPS

#endif
