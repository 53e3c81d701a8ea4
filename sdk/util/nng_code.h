// nng_code.h - the one map from nng error numbers to anvil codes, for the
// SDK's calls and the server's listener alike. Any thread; no state.
#ifndef AV_NNG_CODE_H
#define AV_NNG_CODE_H

// The anvil code for nng error rv: NNG_ETIMEDOUT -> DEADLINE_EXCEEDED;
// refused, closed, reset, unreachable and address-in-use -> UNAVAILABLE;
// bad addresses and options -> INVALID_ARGUMENT; out of memory or files
// -> RESOURCE_EXHAUSTED; ... 0 maps to ANVIL_OK and anything else to
// ANVIL_UNKNOWN.
int av_code_from_nng(int rv);

#endif
