// test_util_sha256.c - av_sha256 against the FIPS 180-4 / NIST example
// vectors, and the constant-time comparison.
#include "util/sha256.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void
assert_digest(const void *data, size_t len, const char *hex)
{
    uint8_t out[AV_SHA256_LEN];
    char    got[2 * AV_SHA256_LEN + 1];
    av_sha256(data, len, out);
    for (size_t i = 0; i < AV_SHA256_LEN; i++)
        snprintf(got + 2 * i, 3, "%02x", out[i]);
    assert_string_equal(got, hex);
}

static void
test_sha256_matches_the_short_vectors(void **state)
{
    (void) state;
    assert_digest("", 0,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_digest("abc", 3,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two
        = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_digest(two, strlen(two),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void
test_sha256_matches_the_million_a_vector(void **state)
{
    (void) state;
    char *a = malloc(1000000);
    assert_non_null(a);
    memset(a, 'a', 1000000);
    assert_digest(a, 1000000,
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

// Lengths around the 55/56/64-byte padding edges give distinct digests.
static void
test_sha256_lengths_at_the_padding_edges_differ(void **state)
{
    (void) state;
    char    buf[130];
    uint8_t prev[AV_SHA256_LEN] = { 0 };
    memset(buf, 'x', sizeof(buf));
    for (size_t len = 50; len <= 130; len++) {
        uint8_t out[AV_SHA256_LEN];
        av_sha256(buf, len, out);
        assert_int_not_equal(av_ct_compare(out, prev, AV_SHA256_LEN), 0);
        memcpy(prev, out, AV_SHA256_LEN);
    }
}

static void
test_ct_compare_finds_a_difference_in_any_byte(void **state)
{
    (void) state;
    uint8_t a[AV_SHA256_LEN], b[AV_SHA256_LEN];
    memset(a, 7, sizeof(a));
    memcpy(b, a, sizeof(b));
    assert_int_equal(av_ct_compare(a, b, sizeof(a)), 0);
    for (size_t i = 0; i < sizeof(a); i++) {
        b[i] ^= 0x80;
        assert_int_not_equal(av_ct_compare(a, b, sizeof(a)), 0);
        b[i] ^= 0x80;
    }
    assert_int_equal(av_ct_compare(a, b, 0), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_matches_the_short_vectors),
        cmocka_unit_test(test_sha256_matches_the_million_a_vector),
        cmocka_unit_test(test_sha256_lengths_at_the_padding_edges_differ),
        cmocka_unit_test(test_ct_compare_finds_a_difference_in_any_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
