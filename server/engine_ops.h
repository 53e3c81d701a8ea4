// engine_ops.h - one apply function per command kind, and what frees its
// outputs, named in the command table of engine.c (one row each: apply,
// read-only, fini). Each runs on
// the engine thread inside the batch's transaction (in a savepoint unless
// its row says read-only) and returns the command's code, or ENGINE_PARKED
// for a long-poll that waits. jobs.c, flow.c, tokens.c, views.c and events.c
// define them.
#ifndef SERVER_ENGINE_OPS_H
#define SERVER_ENGINE_OPS_H

struct engine;
struct batch;
struct cmd;

#define ENGINE_OP(name) \
    int name(struct engine *e, struct batch *b, struct cmd *c)

// jobs.c
ENGINE_OP(jobs_submit);
ENGINE_OP(jobs_get);
ENGINE_OP(jobs_list);
ENGINE_OP(jobs_wait);
ENGINE_OP(jobs_cancel);
ENGINE_OP(jobs_poll);
ENGINE_OP(jobs_heartbeat);
ENGINE_OP(jobs_complete);
ENGINE_OP(jobs_fail);
ENGINE_OP(jobs_retry);

// views.c
ENGINE_OP(views_health);
ENGINE_OP(views_workers);
ENGINE_OP(views_metrics);

// events.c
ENGINE_OP(events_watch);

// flow.c
ENGINE_OP(flow_submit);
ENGINE_OP(flow_get);
ENGINE_OP(flow_list);
ENGINE_OP(flow_wait);
ENGINE_OP(flow_cancel);
ENGINE_OP(flow_retry);

// tokens.c
ENGINE_OP(tokens_create);
ENGINE_OP(tokens_list);
ENGINE_OP(tokens_revoke);

#undef ENGINE_OP

// engine_cmd.c: what frees each kind's outputs (engine_cmd_fini).
void engine_fini_job(struct cmd *c); // GET, CANCEL
void engine_fini_wait(struct cmd *c);
void engine_fini_list(struct cmd *c);
void engine_fini_poll(struct cmd *c);
void engine_fini_heartbeat(struct cmd *c);
void engine_fini_health(struct cmd *c);
void engine_fini_token(struct cmd *c); // TOKEN_*
void engine_fini_workers(struct cmd *c);
void engine_fini_workflow(struct cmd *c); // WF_GET, WF_WAIT, WF_CANCEL
void engine_fini_wf_list(struct cmd *c);
void engine_fini_batch(struct cmd *c);
void engine_fini_metrics(struct cmd *c);
void engine_fini_retry(struct cmd *c);
void engine_fini_events(struct cmd *c);

#endif
