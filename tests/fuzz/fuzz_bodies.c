// fuzz_bodies.c - libFuzzer target: every rpc's request decoder. The first
// byte picks the rpc of `service Anvil`; the rest is its request body.
#include "../../server/handlers.h"
#include "anvil/v1/anvil.pb-c.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const ProtobufCServiceDescriptor *svc = &anvil__v1__anvil__descriptor;
    if (size == 0)
        return 0;
    const char           *method = svc->methods[data[0] % svc->n_methods].name;
    struct handler_limits lim    = { .max_payload = 4096 };
    struct call           call   = { 0 };
    struct anvil_error    err    = { 0 };
    handlers_decode(&lim, method, data + 1, size - 1, &call, &err);
    handlers_call_fini(&call);
    return 0;
}
