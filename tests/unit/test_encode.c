/* test_encode.c - chunk payload encoding (chunk_encode.c): the big-endian hosts' path,
 * forced on this host through afmt__chunk_encode_swapped, must give exactly "swap every
 * element, then shuffle" (the file form), and needs no memory: it used to fall back to
 * unshuffled bytes (still flagged shuffled) when its scratch allocation failed. */
#include <stdlib.h>
#include <string.h>

#include "codec/shuffle.h"
#include "common/util.h"
#include "index/chunk_encode.h"
#include "testutil.h"

/* The definition: each element byte-swapped, then (flag) shuffled. */
static void ref_encode(uint8_t *dst, const uint8_t *src, size_t n, size_t es, int shuffle) {
    uint8_t *tmp = malloc(n * es + 1);
    assert_non_null(tmp);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < es; k++) tmp[i * es + k] = src[i * es + es - 1 - k];
    if (shuffle)
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < es; k++) dst[k * n + i] = tmp[i * es + k];
    else
        memcpy(dst, tmp, n * es);
    free(tmp);
}

static void test_swapped_matches_definition(void **state) {
    (void)state;
    const afmt_dtype types[] = {AFMT_UINT8, AFMT_INT16, AFMT_FLOAT32, AFMT_UINT64};
    const size_t ns[] = {0, 1, 2, 7, 8, 9, 33, 1000};
    uint64_t x = 99;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        for (int sh = 0; sh < 2; sh++) {
            for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++) {
                afmt_array arr;
                memset(&arr, 0, sizeof arr);
                arr.d.dtype = types[t];
                arr.d.flags = sh ? AFMT_ARRAY_SHUFFLE : 0;
                arr.esize = afmt__dtype_size(types[t]);
                size_t n = ns[j], bytes = n * arr.esize;
                uint8_t *src = malloc(bytes + 1), *got = malloc(bytes + 1),
                        *want = malloc(bytes + 1), *back = malloc(bytes + 1);
                assert_true(src && got && want && back);
                for (size_t i = 0; i < bytes; i++) {
                    x = x * 6364136223846793005ull + 1442695040888963407ull;
                    src[i] = (uint8_t)(x >> 56);
                }
                afmt__chunk_encode_swapped(&arr, got, src, n);
                ref_encode(want, src, n, arr.esize, sh);
                assert_memory_equal(got, want, bytes);
                /* And back, as a big-endian host decodes: unshuffle, then swap. */
                if (sh)
                    afmt__unshuffle(back, got, n, arr.esize);
                else
                    memcpy(back, got, bytes);
                afmt__bswap_elems(back, n, arr.esize);
                assert_memory_equal(back, src, bytes);
                free(src);
                free(got);
                free(want);
                free(back);
            }
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_swapped_matches_definition)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
