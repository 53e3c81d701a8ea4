// nng_code.c - nng error numbers to anvil codes (see nng_code.h).
#include "util/nng_code.h"

#include <anvil/anvil.h>
#include <nng/nng.h>

int
av_code_from_nng(int rv)
{
    switch (rv) {
    case 0:
        return ANVIL_OK;
    case NNG_ETIMEDOUT:
        return ANVIL_DEADLINE_EXCEEDED;
    case NNG_ECONNREFUSED:
    case NNG_ECLOSED:
    case NNG_ECONNRESET:
    case NNG_ECONNABORTED:
    case NNG_ECONNSHUT:
    case NNG_EUNREACHABLE:
    case NNG_EADDRINUSE:
    case NNG_ENOENT:
    case NNG_EAGAIN:
    case NNG_ECRYPTO:
        return ANVIL_UNAVAILABLE;
    case NNG_ECANCELED:
    case NNG_EINTR:
        return ANVIL_CANCELLED;
    case NNG_EINVAL:
    case NNG_EADDRINVAL:
    case NNG_ENOTSUP:
    case NNG_EBADTYPE:
        return ANVIL_INVALID_ARGUMENT;
    case NNG_ENOMEM:
    case NNG_EMSGSIZE:
    case NNG_ENOFILES:
    case NNG_ENOSPC:
        return ANVIL_RESOURCE_EXHAUSTED;
    case NNG_EPEERAUTH:
        return ANVIL_UNAUTHENTICATED;
    case NNG_EPERM:
        return ANVIL_PERMISSION_DENIED;
    case NNG_ESTATE:
    case NNG_EPROTO:
    case NNG_EINTERNAL:
        return ANVIL_INTERNAL;
    default:
        return ANVIL_UNKNOWN;
    }
}
