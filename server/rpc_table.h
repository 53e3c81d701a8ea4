// rpc_table.h - every command the engine applies, one row each. An rpc's
// row is the one place the server declares it: the engine's side (kind,
// apply, fini, access) and the rpc side (decode, encode, roles) together.
// Each includer defines RPC and CMD to take the columns it needs, includes
// this file and undefines them; from it come enum cmd_kind (engine.h), the
// prototypes of every function named here (engine_ops.h, handlers_impl.h),
// the engine's kind table (engine.c) and the handler table (handlers.c).
// docs/architecture.md, "Adding an rpc", says how to add one.
//
// RPC(Method, KIND, apply, fini, access, decode, encode, free_reply, roles)
//   Method     its name in service anvil.v1.Anvil (handlers_check verifies
//              it at start)
//   KIND       its command kind: CMD_KIND in enum cmd_kind
//   apply      applies it on the engine thread (ENGINE_OP, engine_ops.h),
//              in the state machine that owns what it changes
//   fini       frees what apply left in the command's outputs
//              (engine_cmd.c; engine_fini_none when nothing)
//   access     READS: applied without a savepoint, changes nothing;
//              WRITES: applied in its own savepoint;
//              ITEMS: a batch (struct cmd_batch), each item applied as the
//              command of its own kind, in its own savepoint
//   decode     request message -> command (decode_fn, handlers_impl.h);
//              sets call->long_poll when the request may wait
//   encode     command -> response message (encode_fn)
//   free_reply frees what encode allocated: free (a reply of one calloc),
//              handlers_free (a reply in reply memory, handlers_alloc) or
//              the rpc's own
//   roles      who besides admin may call it: ADMIN (nobody else), CLIENT,
//              WORKER, READ (client or reader), READ_WORKER (client,
//              reader or worker)
//
// CMD(KIND, apply, fini, access): a command no rpc names.
//
// No include guard: included once per expansion.

// clang-format off
//  Method          KIND          apply            fini                   access  decode                 encode                  free_reply                  roles
RPC(SubmitJob,      SUBMIT,       jobs_submit,     engine_fini_none,      WRITES, hjobs_decode_submit,   handlers_encode_submit, free,                       CLIENT)
RPC(SubmitJobs,     SUBMIT_BATCH, engine_items,    engine_fini_batch,     ITEMS,  hbatch_decode_submit,  hbatch_encode,          hbatch_free,                CLIENT)
RPC(GetJob,         GET,          jobs_get,        engine_fini_job,       READS,  hjobs_decode_get,      hjobs_encode_job,       free,                       READ)
RPC(ListJobs,       LIST,         jobs_list,       engine_fini_list,      READS,  hjobs_decode_list,     hjobs_encode_list,      handlers_free,              READ)
RPC(WaitJob,        WAIT,         jobs_wait,       engine_fini_wait,      READS,  hjobs_decode_wait,     hjobs_encode_job,       free,                       READ)
RPC(CancelJob,      CANCEL,       jobs_cancel,     engine_fini_job,       WRITES, hjobs_decode_cancel,   hjobs_encode_job,       free,                       CLIENT)
RPC(RetryJob,       RETRY,        jobs_retry,      engine_fini_retry,     WRITES, hjobs_decode_retry,    hjobs_encode_job,       free,                       CLIENT)
RPC(Poll,           POLL,         jobs_poll,       engine_fini_poll,      WRITES, hwork_decode_poll,     hwork_encode_poll,      hwork_free_poll_reply,      WORKER)
RPC(Heartbeat,      HEARTBEAT,    jobs_heartbeat,  engine_fini_heartbeat, WRITES, hwork_decode_heartbeat, hwork_encode_heartbeat, handlers_free,              WORKER)
RPC(Complete,       COMPLETE,     jobs_complete,   engine_fini_none,      WRITES, hwork_decode_complete, hwork_encode_complete,  free,                       WORKER)
RPC(Fail,           FAIL,         jobs_fail,       engine_fini_none,      WRITES, hwork_decode_fail,     hwork_encode_fail,      free,                       WORKER)
RPC(Report,         REPORT,       engine_items,    engine_fini_batch,     ITEMS,  hbatch_decode_report,  hbatch_encode,          hbatch_free,                WORKER)
RPC(Health,         HEALTH,       views_health,    engine_fini_health,    READS,  handlers_decode_none,  hwork_encode_health,    handlers_free,              READ_WORKER)
RPC(ListWorkers,    WORKERS,      views_workers,   engine_fini_workers,   READS,  handlers_decode_none,  hwork_encode_workers,   handlers_free,              READ)
RPC(SubmitWorkflow, WF_SUBMIT,    flow_submit,     engine_fini_none,      WRITES, hflow_decode_submit,   handlers_encode_submit, free,                       CLIENT)
RPC(GetWorkflow,    WF_GET,       flow_get,        engine_fini_workflow,  READS,  hflow_decode_id,       hflow_encode_workflow,  handlers_free,              READ)
RPC(ListWorkflows,  WF_LIST,      flow_list,       engine_fini_wf_list,   READS,  hflow_decode_list,     hflow_encode_list,      handlers_free,              READ)
RPC(WaitWorkflow,   WF_WAIT,      flow_wait,       engine_fini_workflow,  READS,  hflow_decode_wait,     hflow_encode_workflow,  handlers_free,              READ)
RPC(CancelWorkflow, WF_CANCEL,    flow_cancel,     engine_fini_workflow,  WRITES, hflow_decode_id,       hflow_encode_workflow,  handlers_free,              CLIENT)
RPC(RetryWorkflow,  WF_RETRY,     flow_retry,      engine_fini_workflow,  WRITES, hflow_decode_id,       hflow_encode_workflow,  handlers_free,              CLIENT)
RPC(WatchEvents,    EVENTS,       events_watch,    engine_fini_events,    READS,  hevents_decode_watch,  hevents_encode_watch,   handlers_free,              READ)
RPC(CreateToken,    TOKEN_CREATE, tokens_create,   engine_fini_token,     WRITES, hadmin_decode_create,  hadmin_encode,          handlers_free,              ADMIN)
RPC(ListTokens,     TOKEN_LIST,   tokens_list,     engine_fini_token,     READS,  handlers_decode_none,  hadmin_encode,          handlers_free,              ADMIN)
RPC(RevokeToken,    TOKEN_REVOKE, tokens_revoke,   engine_fini_token,     WRITES, hadmin_decode_revoke,  hadmin_encode,          handlers_free,              ADMIN)
RPC(PauseQueue,     QUEUE_PAUSE,  queues_pause,    engine_fini_none,      WRITES, hqueue_decode,         hqueue_encode,          free,                       CLIENT)
RPC(ResumeQueue,    QUEUE_RESUME, queues_resume,   engine_fini_none,      WRITES, hqueue_decode,         hqueue_encode,          free,                       CLIENT)
RPC(SetQueueLimit,  QUEUE_LIMIT,  rates_set,       engine_fini_none,      WRITES, hqueue_decode_limit,   hqueue_encode_limit,    handlers_free,              CLIENT)
RPC(RetryJobs,      RETRY_MANY,   jobs_retry_many, engine_fini_bulk,      WRITES, hbulk_decode,          hbulk_encode,           handlers_free,              CLIENT)
RPC(CancelJobs,     CANCEL_MANY,  jobs_cancel_many, engine_fini_bulk,     WRITES, hbulk_decode,          hbulk_encode,           handlers_free,              CLIENT)
RPC(CreateSchedule, SCHED_CREATE, schedules_create, engine_fini_schedule, WRITES, hsched_decode_create, hsched_encode,         handlers_free,              CLIENT)
RPC(GetSchedule,    SCHED_GET,    schedules_get,   engine_fini_schedule,  READS,  hsched_decode_name,    hsched_encode,          handlers_free,              READ)
RPC(ListSchedules,  SCHED_LIST,   schedules_list,  engine_fini_schedule,  READS,  handlers_decode_none,  hsched_encode,          handlers_free,              READ)
RPC(PauseSchedule,  SCHED_PAUSE,  schedules_pause, engine_fini_schedule,  WRITES, hsched_decode_name,    hsched_encode,          handlers_free,              CLIENT)
RPC(ResumeSchedule, SCHED_RESUME, schedules_resume, engine_fini_schedule, WRITES, hsched_decode_name,    hsched_encode,          handlers_free,              CLIENT)
RPC(DeleteSchedule, SCHED_DELETE, schedules_delete, engine_fini_schedule, WRITES, hsched_decode_name,    hsched_encode,          handlers_free,              CLIENT)
//  KIND          apply               fini                 access
CMD(PIPE_CLOSED,  engine_pipe_closed, engine_fini_none,    READS)  // a connection closed: drop its parked long-polls
CMD(METRICS,      views_metrics,      engine_fini_metrics, READS)  // GET /metrics: render every series (metrics.h)
// clang-format on
