// fuzz_envelope.c - libFuzzer target: bytes as they arrive on anvild's
// socket, through envelope decode, the token check, the rpc decoders, the
// engine (a real one, on an in-memory database) and reply encoding.
#include "../../server/auth.h"
#include "../../server/engine.h"
#include "../../server/handlers.h"
#include "../../server/store.h"
#include "anvil/v1/anvil.pb-c.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct store  *st;
static struct engine *eng;
static struct auth   *auth;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  cond = PTHREAD_COND_INITIALIZER;
static bool            done;

static void
on_done(struct cmd *c, void *arg)
{
    (void) c;
    (void) arg;
    pthread_mutex_lock(&lock);
    done = true;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
}

static void
setup(void)
{
    struct anvil_error   err = { 0 };
    struct engine_config cfg = { .lease_ms = 30000, .max_attempts = 3 };
    if (store_open(":memory:", 2, &st, &err) != ANVIL_OK
        || engine_start(st, &cfg, &eng, &err) != ANVIL_OK)
        abort();
    auth = auth_new(false);
}

// Long-polls would park for up to a minute: answer them at once instead.
static void
no_waiting(struct cmd *c)
{
    if (c->kind == CMD_POLL)
        c->u.poll.wait_ms = 0;
    if (c->kind == CMD_WAIT)
        c->u.wait.timeout_ms = 0;
    if (c->kind == CMD_WF_WAIT)
        c->u.wf.timeout_ms = 0;
}

static void
run(struct call *call)
{
    no_waiting(&call->cmd);
    call->cmd.done = on_done;
    done           = false;
    engine_submit(eng, &call->cmd);
    pthread_mutex_lock(&lock);
    while (!done)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    if (call->cmd.err.code == ANVIL_OK) {
        uint8_t           *body = NULL;
        size_t             len  = 0;
        struct anvil_error err  = { 0 };
        handlers_encode(call, &body, &len, &err);
        free(body);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (eng == NULL)
        setup();
    Anvil__V1__Request *req = anvil__v1__request__unpack(NULL, size, data);
    if (req == NULL)
        return 0;
    struct handler_limits lim  = { .max_payload = 1 << 20 };
    struct call           call = { 0 };
    struct anvil_error    err  = { 0 };
    int64_t               token_id;
    int                   role;
    if (auth_check(auth, req->token, req->method, 0, &token_id, &role, &err)
            == ANVIL_OK
        && handlers_decode(
               &lim, req->method, req->body.data, req->body.len, &call, &err)
            == ANVIL_OK)
        run(&call);
    handlers_call_fini(&call);
    anvil__v1__request__free_unpacked(req, NULL);
    return 0;
}
