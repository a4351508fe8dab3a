/* test_shuffle.c - the byte-shuffle pre-filter: exact layout and round trips. */
#include <stdlib.h>
#include <string.h>

#include "codec/shuffle.h"
#include "testutil.h"

/* The definition from shuffle.h, byte by byte. */
static void ref_shuffle(uint8_t *dst, const uint8_t *src, size_t n, size_t esize) {
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < esize; k++) dst[k * n + i] = src[i * esize + k];
}

static void test_layout(void **state) {
    (void)state;
    /* 3 elements of 4 bytes: the k-th bytes of all elements lie together. */
    const uint8_t src[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    const uint8_t want[12] = {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11};
    uint8_t dst[12], back[12];
    afmt__shuffle(dst, src, 3, 4);
    assert_memory_equal(dst, want, 12);
    afmt__unshuffle(back, dst, 3, 4);
    assert_memory_equal(back, src, 12);

    /* 9 uint16: one full group of 8 plus a tail element. */
    uint16_t v[9];
    for (int i = 0; i < 9; i++) v[i] = (uint16_t)(0x0100 * (i + 0x10) + i);
    uint8_t in[18], out[18];
    memcpy(in, v, sizeof in);
    afmt__shuffle(out, in, 9, 2);
    uint8_t exp[18];
    ref_shuffle(exp, in, 9, 2);
    assert_memory_equal(out, exp, 18);
}

static void test_round_trips(void **state) {
    (void)state;
    const size_t esizes[] = {1, 2, 3, 4, 8, 16};
    const size_t ns[] = {0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 4096, 1000003};
    uint64_t x = 12345;
    for (size_t e = 0; e < sizeof esizes / sizeof esizes[0]; e++) {
        for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
            size_t es = esizes[e], n = ns[t], bytes = n * es;
            /* Exact-size allocations, so ASan flags any access past the end. */
            uint8_t *src = malloc(bytes + 1), *sh = malloc(bytes + 1), *ref = malloc(bytes + 1),
                    *back = malloc(bytes + 1);
            assert_non_null(src);
            assert_non_null(sh);
            assert_non_null(ref);
            assert_non_null(back);
            for (size_t i = 0; i < bytes; i++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                src[i] = (uint8_t)(x >> 56);
            }
            afmt__shuffle(sh, src, n, es);
            ref_shuffle(ref, src, n, es);
            if (bytes && memcmp(sh, ref, bytes) != 0)
                fail_msg("shuffle esize %zu n %zu differs from the definition", es, n);
            memset(back, 0xEE, bytes);
            afmt__unshuffle(back, sh, n, es);
            if (bytes && memcmp(back, src, bytes) != 0)
                fail_msg("unshuffle esize %zu n %zu is not the inverse", es, n);
            free(src);
            free(sh);
            free(ref);
            free(back);
        }
    }
}

/* Rows of any length, in any order, give the same bytes as the whole buffer: the read
 * and write paths (un)shuffle a chunk row by row straight from and into user arrays. */
static void test_parts(void **state) {
    (void)state;
    const size_t esizes[] = {1, 2, 3, 4, 8, 16};
    const size_t ns[] = {1, 17, 64, 100, 4096, 70001};
    uint64_t x = 99;
    for (size_t e = 0; e < sizeof esizes / sizeof esizes[0]; e++) {
        for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
            size_t es = esizes[e], n = ns[t], bytes = n * es;
            uint8_t *src = malloc(bytes), *whole = malloc(bytes), *part = malloc(bytes),
                    *back = malloc(bytes);
            assert_true(src && whole && part && back);
            for (size_t i = 0; i < bytes; i++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                src[i] = (uint8_t)(x >> 56);
            }
            afmt__shuffle(whole, src, n, es);
            memset(part, 0xEE, bytes);
            memset(back, 0xEE, bytes);
            /* Pseudo-random part lengths 1..97, so that every kernel's group size and tail
             * are crossed at every phase. */
            for (size_t e0 = 0; e0 < n;) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                size_t m = 1 + (size_t)(x >> 58) + (size_t)((x >> 40) & 31);
                if (m > n - e0) m = n - e0;
                afmt__shuffle_part(part, src + e0 * es, m, n, e0, es);
                afmt__unshuffle_part(back + e0 * es, whole, m, n, e0, es);
                e0 += m;
            }
            if (memcmp(part, whole, bytes) != 0)
                fail_msg("shuffle_part esize %zu n %zu differs from afmt__shuffle", es, n);
            if (memcmp(back, src, bytes) != 0)
                fail_msg("unshuffle_part esize %zu n %zu differs from the source", es, n);
            free(src);
            free(whole);
            free(part);
            free(back);
        }
    }
}

static void test_empty_null(void **state) {
    (void)state;
    /* Zero elements touch nothing, so NULL buffers are fine. */
    afmt__shuffle(NULL, NULL, 0, 8);
    afmt__unshuffle(NULL, NULL, 0, 4);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_layout),
    cmocka_unit_test(test_round_trips),
    cmocka_unit_test(test_parts),
    cmocka_unit_test(test_empty_null),
};

TU_MAIN("shuffle", tests)
