// engine_cmd.c - what each command kind's outputs hold, and freeing them.
#include "engine.h"

#include <stdlib.h>
#include <string.h>

void
engine_cmd_fini(struct cmd *c)
{
    switch (c->kind) {
    case CMD_GET:
    case CMD_CANCEL:
        job_fini(&c->u.get.job);
        break;
    case CMD_WAIT:
        job_fini(&c->u.wait.job);
        break;
    case CMD_LIST:
        job_array_free(c->u.list.jobs, c->u.list.n);
        c->u.list.jobs = NULL;
        c->u.list.n    = 0;
        break;
    case CMD_POLL:
        job_array_free(c->u.poll.jobs, c->u.poll.n);
        c->u.poll.jobs = NULL;
        c->u.poll.n    = 0;
        break;
    case CMD_HEARTBEAT:
        free(c->u.heartbeat.canceled);
        free(c->u.heartbeat.lost);
        c->u.heartbeat.canceled = c->u.heartbeat.lost = NULL;
        c->u.heartbeat.ncanceled = c->u.heartbeat.nlost = 0;
        break;
    case CMD_HEALTH:
        store_depths_free(c->u.health.depths, c->u.health.n);
        c->u.health.depths = NULL;
        c->u.health.n      = 0;
        break;
    case CMD_TOKEN_CREATE:
    case CMD_TOKEN_LIST:
    case CMD_TOKEN_REVOKE:
        store_tokens_free(c->u.token.tokens, c->u.token.n);
        c->u.token.tokens = NULL;
        c->u.token.n      = 0;
        memset(c->u.token.secret, 0, sizeof(c->u.token.secret));
        memset(c->u.token.hash, 0, sizeof(c->u.token.hash));
        break;
    case CMD_WORKERS:
        registry_entries_free(c->u.workers.w, c->u.workers.n);
        c->u.workers.w = NULL;
        c->u.workers.n = 0;
        break;
    case CMD_WF_GET:
    case CMD_WF_WAIT:
    case CMD_WF_CANCEL:
        workflow_fini(&c->u.wf.wf);
        break;
    case CMD_WF_LIST:
        workflow_array_free(c->u.wf_list.wfs, c->u.wf_list.n);
        c->u.wf_list.wfs = NULL;
        c->u.wf_list.n   = 0;
        break;
    case CMD_BATCH:
        for (size_t i = 0; i < c->u.batch.n; i++)
            engine_cmd_fini(&c->u.batch.items[i]);
        break;
    default:
        break;
    }
}
