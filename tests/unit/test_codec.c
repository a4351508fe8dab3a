/* test_codec.c - the codec table: built-in round trips, damage detection, levels, and
 * the user codec registry. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <zstd.h>

#include "codec/codec.h"
#include "common/error.h"
#include "testutil.h"

static const uint32_t builtin_ids[] = {AFMT_CODEC_NONE, AFMT_CODEC_LZ4, AFMT_CODEC_ZSTD};
#define NBUILTIN (sizeof builtin_ids / sizeof builtin_ids[0])

static uint64_t rng_next(uint64_t *s) {
    /* splitmix64: deterministic, so a failure reproduces. */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Text-like data from a small vocabulary: compresses well, but is not periodic, so a
 * damaged match offset shows up as different bytes. */
static void fill_text(uint8_t *p, size_t n, uint64_t seed) {
    static const char *words[] = {"alpha ", "beta ",  "gamma ",     "delta ",   "rank ",
                                  "chunk ", "block ", "layer ",     "footer ",  "commit ",
                                  "mpi ",   "zstd\n", "lz4 ",       "shuffle ", "x",
                                  "0123 ",  "yy ",    "compaction "};
    uint64_t s = seed;
    size_t i = 0;
    while (i < n) {
        const char *w = words[rng_next(&s) % (sizeof words / sizeof words[0])];
        for (; *w && i < n; w++) p[i++] = (uint8_t)*w;
    }
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed) {
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(rng_next(&s) >> 56);
}

/* Compresses src with (id, level), checks the result decodes to exactly src, and returns
 * the stored size. */
static size_t round_trip(uint32_t id, int level, const uint8_t *src, size_t n) {
    size_t cap = afmt__codec_bound(id, n);
    uint8_t *c = malloc(cap ? cap : 1);
    uint8_t *r = malloc(n ? n : 1);
    assert_non_null(c);
    assert_non_null(r);
    size_t clen = 0;
    int rc = afmt__codec_compress(id, level, src, n, c, cap, &clen);
    if (rc != AFMT_OK) fail_msg("compress id %u level %d n %zu -> %d", (unsigned)id, level, n, rc);
    assert_true(clen <= cap);
    memset(r, 0xAB, n);
    rc = afmt__codec_decompress(id, c, clen, r, n);
    if (rc != AFMT_OK)
        fail_msg("decompress id %u level %d n %zu -> %d", (unsigned)id, level, n, rc);
    assert_memory_equal(r, src, n);
    free(c);
    free(r);
    return clen;
}

static const size_t sizes[] = {0, 1, 2, 7, 13, 255, 1000, 4099, 65537, (1u << 20) + 3};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void test_round_trip_default(void **state) {
    (void)state;
    size_t max = sizes[NSIZES - 1];
    uint8_t *text = malloc(max), *rnd = malloc(max);
    assert_non_null(text);
    assert_non_null(rnd);
    fill_text(text, max, 1);
    fill_random(rnd, max, 2);
    for (size_t c = 0; c < NBUILTIN; c++) {
        for (size_t s = 0; s < NSIZES; s++) {
            size_t stored = round_trip(builtin_ids[c], 0, text, sizes[s]);
            if (builtin_ids[c] != AFMT_CODEC_NONE && sizes[s] >= 4099)
                assert_true(stored < sizes[s] / 2); /* text must really compress */
            round_trip(builtin_ids[c], 0, rnd, sizes[s]);
        }
    }
    free(text);
    free(rnd);
}

static void test_round_trip_levels(void **state) {
    (void)state;
    const size_t n = 300007;
    uint8_t *text = malloc(n), *rnd = malloc(n);
    assert_non_null(text);
    assert_non_null(rnd);
    fill_text(text, n, 3);
    fill_random(rnd, n, 4);
    const int lz4_levels[] = {-1000, -17, -1, 1, 2, 9, 12};
    for (size_t i = 0; i < sizeof lz4_levels / sizeof lz4_levels[0]; i++) {
        assert_int_equal(afmt__codec_check_level(AFMT_CODEC_LZ4, lz4_levels[i]), AFMT_OK);
        round_trip(AFMT_CODEC_LZ4, lz4_levels[i], text, n);
        round_trip(AFMT_CODEC_LZ4, lz4_levels[i], rnd, n);
        round_trip(AFMT_CODEC_LZ4, lz4_levels[i], text, 1);
    }
    /* HC must beat the fastest acceleration on text. */
    size_t cap = afmt__codec_bound(AFMT_CODEC_LZ4, n), fast = 0, hc = 0;
    uint8_t *c = malloc(cap);
    assert_non_null(c);
    assert_int_equal(afmt__codec_compress(AFMT_CODEC_LZ4, -1000, text, n, c, cap, &fast), AFMT_OK);
    assert_int_equal(afmt__codec_compress(AFMT_CODEC_LZ4, 12, text, n, c, cap, &hc), AFMT_OK);
    assert_true(hc < fast);
    free(c);

    const int zstd_levels[] = {ZSTD_minCLevel(), -5, 1, 3, 9, 19};
    for (size_t i = 0; i < sizeof zstd_levels / sizeof zstd_levels[0]; i++) {
        assert_int_equal(afmt__codec_check_level(AFMT_CODEC_ZSTD, zstd_levels[i]), AFMT_OK);
        round_trip(AFMT_CODEC_ZSTD, zstd_levels[i], text, n);
        round_trip(AFMT_CODEC_ZSTD, zstd_levels[i], rnd, 5000);
        round_trip(AFMT_CODEC_ZSTD, zstd_levels[i], text, 0);
    }
    free(text);
    free(rnd);
}

static void test_null_empty(void **state) {
    (void)state;
    /* Zero bytes with NULL buffers: no codec library may see the NULLs. */
    for (size_t c = 0; c < NBUILTIN; c++) {
        uint32_t id = builtin_ids[c];
        uint8_t buf[64];
        size_t clen = 99;
        assert_int_equal(afmt__codec_compress(id, 0, NULL, 0, buf, sizeof buf, &clen), AFMT_OK);
        assert_true(clen <= afmt__codec_bound(id, 0));
        assert_int_equal(afmt__codec_decompress(id, buf, clen, NULL, 0), AFMT_OK);
    }
    size_t clen = 5;
    assert_int_equal(afmt__codec_compress(AFMT_CODEC_NONE, 0, NULL, 0, NULL, 0, &clen), AFMT_OK);
    assert_int_equal(clen, 0);
    assert_int_equal(afmt__codec_decompress(AFMT_CODEC_NONE, NULL, 0, NULL, 0), AFMT_OK);
    /* An empty stored block cannot be an LZ4 or zstd block. */
    assert_int_equal(afmt__codec_decompress(AFMT_CODEC_LZ4, NULL, 0, NULL, 0), AFMT_ECORRUPT);
    assert_int_equal(afmt__codec_decompress(AFMT_CODEC_ZSTD, NULL, 0, NULL, 0), AFMT_ECORRUPT);
}

/* Compresses n text bytes with id; returns the stored bytes (malloc'd) and their size. */
static uint8_t *make_stored(uint32_t id, const uint8_t *src, size_t n, size_t *clen) {
    size_t cap = afmt__codec_bound(id, n);
    uint8_t *c = malloc(cap);
    assert_non_null(c);
    assert_int_equal(afmt__codec_compress(id, 0, src, n, c, cap, clen), AFMT_OK);
    return c;
}

static void test_truncated(void **state) {
    (void)state;
    const size_t n = 70001;
    uint8_t *text = malloc(n), *r = malloc(n + 16);
    assert_non_null(text);
    assert_non_null(r);
    fill_text(text, n, 5);
    for (size_t c = 0; c < NBUILTIN; c++) {
        uint32_t id = builtin_ids[c];
        size_t clen = 0;
        uint8_t *stored = make_stored(id, text, n, &clen);
        const size_t cuts[] = {1, 2, 3, 7, 100, clen / 2, clen - 1};
        for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
            if (cuts[k] > clen) continue;
            size_t len = clen - cuts[k];
            /* Copy into an exact-size buffer so ASan sees any read past the end. */
            uint8_t *t = malloc(len ? len : 1);
            assert_non_null(t);
            memcpy(t, stored, len);
            int rc = afmt__codec_decompress(id, t, len, r, n);
            if (rc != AFMT_ECORRUPT)
                fail_msg("id %u truncated by %zu of %zu -> %d", (unsigned)id, cuts[k], clen, rc);
            free(t);
        }
        free(stored);
    }
    free(text);
    free(r);
}

static void test_flipped(void **state) {
    (void)state;
    const size_t n = 50003;
    uint8_t *text = malloc(n), *r = malloc(n);
    assert_non_null(text);
    assert_non_null(r);
    fill_text(text, n, 6);
    const uint32_t ids[] = {AFMT_CODEC_LZ4, AFMT_CODEC_ZSTD};
    for (size_t c = 0; c < 2; c++) {
        size_t clen = 0;
        uint8_t *stored = make_stored(ids[c], text, n, &clen);
        uint8_t *t = malloc(clen);
        assert_non_null(t);
        size_t noticed = 0, tries = 0;
        /* Every byte of the first 64 (headers, first tokens), then a stride through the rest,
         * each with a few bit patterns. Neither format carries a checksum here (the block
         * checksum one level up does), so a flip may decode to other bytes of the right
         * length, or even to the same bytes (a match offset moved to another copy of the
         * same text). What must never happen: a crash, an overrun (ASan), another code. */
        for (size_t pos = 0; pos < clen; pos += pos < 64 ? 1 : 97) {
            const uint8_t masks[] = {0x01, 0x80, 0xFF};
            for (size_t m = 0; m < 3; m++) {
                memcpy(t, stored, clen);
                t[pos] ^= masks[m];
                memset(r, 0, n);
                int rc = afmt__codec_decompress(ids[c], t, clen, r, n);
                assert_true(rc == AFMT_OK || rc == AFMT_ECORRUPT);
                noticed += rc != AFMT_OK || memcmp(r, text, n) != 0;
                tries++;
            }
        }
        /* Nearly all damage must show, as an error or as different bytes. */
        assert_true(noticed * 10 >= tries * 9);
        print_message("codec %s: %zu of %zu flips detected or changed the output\n",
                      afmt__codec_name(ids[c]), noticed, tries);
        free(t);
        free(stored);
    }
    free(text);
    free(r);
}

static void test_wrong_raw_len(void **state) {
    (void)state;
    const size_t n = 10007;
    uint8_t *text = malloc(n), *r = malloc(n + 100);
    assert_non_null(text);
    assert_non_null(r);
    fill_text(text, n, 7);
    for (size_t c = 0; c < NBUILTIN; c++) {
        size_t clen = 0;
        uint8_t *stored = make_stored(builtin_ids[c], text, n, &clen);
        const size_t lens[] = {0, 1, n - 1, n + 1, n + 100};
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++)
            assert_int_equal(afmt__codec_decompress(builtin_ids[c], stored, clen, r, lens[k]),
                             AFMT_ECORRUPT);
        assert_int_equal(afmt__codec_decompress(builtin_ids[c], stored, clen, r, n), AFMT_OK);
        free(stored);
    }
    free(text);
    free(r);
}

static void test_small_dst(void **state) {
    (void)state;
    const size_t n = 4096;
    uint8_t src[4096], dst[4096];
    fill_random(src, n, 8);
    size_t clen = 0;
    for (size_t c = 0; c < NBUILTIN; c++)
        assert_int_equal(afmt__codec_compress(builtin_ids[c], 0, src, n, dst, 100, &clen),
                         AFMT_ECODEC);
}

static void test_lz4_limits(void **state) {
    (void)state;
    uint8_t buf[16] = {0};
    size_t clen = 0;
    size_t huge = (size_t)LZ4_MAX_INPUT_SIZE + 1;
    /* Too large for LZ4: refused before the buffers are touched, so the caller stores raw. */
    assert_int_equal(afmt__codec_bound(AFMT_CODEC_LZ4, huge), huge);
    assert_int_equal(afmt__codec_compress(AFMT_CODEC_LZ4, 0, buf, huge, buf, sizeof buf, &clen),
                     AFMT_ECODEC);
    assert_int_equal(
        afmt__codec_decompress(AFMT_CODEC_LZ4, buf, sizeof buf, buf, (size_t)INT_MAX + 1),
        AFMT_ECODEC);
}

static void test_levels(void **state) {
    (void)state;
    assert_int_equal(afmt__codec_check_level(AFMT_CODEC_NONE, 0), AFMT_OK);
    assert_int_equal(afmt__codec_check_level(AFMT_CODEC_NONE, 1), AFMT_EINVAL);
    assert_int_equal(afmt__codec_check_level(AFMT_CODEC_NONE, -1), AFMT_EINVAL);
    assert_int_equal(afmt__codec_check_level(AFMT_CODEC_LZ4, 0), AFMT_OK);
    assert_int_equal(afmt__codec_check_level(AFMT_CODEC_LZ4, 1), AFMT_OK);
    assert_int_equal(afmt__codec_check_level(AFMT_CODEC_LZ4, 12), AFMT_OK);
    assert_int_equal(afmt__codec_check_level(AFMT_CODEC_LZ4, 13), AFMT_EINVAL);
    assert_int_equal(afmt__codec_check_level(AFMT_CODEC_LZ4, -1000), AFMT_OK);
    assert_int_equal(afmt__codec_check_level(AFMT_CODEC_LZ4, -1001), AFMT_EINVAL);
    assert_int_equal(afmt__codec_check_level(AFMT_CODEC_LZ4, INT_MIN), AFMT_EINVAL);
    assert_int_equal(afmt__codec_check_level(AFMT_CODEC_ZSTD, 0), AFMT_OK);
    assert_int_equal(afmt__codec_check_level(AFMT_CODEC_ZSTD, ZSTD_maxCLevel()), AFMT_OK);
    assert_int_equal(afmt__codec_check_level(AFMT_CODEC_ZSTD, ZSTD_maxCLevel() + 1), AFMT_EINVAL);
    assert_int_equal(afmt__codec_check_level(AFMT_CODEC_ZSTD, ZSTD_minCLevel()), AFMT_OK);
    assert_int_equal(afmt__codec_check_level(AFMT_CODEC_ZSTD, ZSTD_minCLevel() - 1), AFMT_EINVAL);
    assert_int_equal(afmt__codec_check_level(999, 0), AFMT_ECODEC);
}

static void test_names(void **state) {
    (void)state;
    assert_string_equal(afmt__codec_name(AFMT_CODEC_NONE), "none");
    assert_string_equal(afmt__codec_name(AFMT_CODEC_LZ4), "lz4");
    assert_string_equal(afmt__codec_name(AFMT_CODEC_ZSTD), "zstd");
    assert_string_equal(afmt__codec_name(AFMT_CODEC_ZFP), "zfp");
    assert_string_equal(afmt__codec_name(4), "unknown");
    assert_string_equal(afmt__codec_name(999), "unknown");
    for (size_t c = 0; c < NBUILTIN; c++) assert_true(afmt__codec_known(builtin_ids[c]));
    assert_false(afmt__codec_known(4)); /* reserved for built-in codecs to come */
    assert_false(afmt__codec_known(255));
    assert_false(afmt__codec_known(999));
    assert_int_equal(afmt__codec_bound(AFMT_CODEC_NONE, 1234), 1234);
    assert_true(afmt__codec_bound(AFMT_CODEC_LZ4, 1234) >= 1234);
    assert_true(afmt__codec_bound(AFMT_CODEC_ZSTD, 1234) >= 1234);
    assert_int_equal(afmt__codec_bound(999, 1234), 0);
}

/* ---- a toy user codec: XOR with a key derived from the level ----------------------- */
static size_t xor_bound(size_t n) {
    return n + 1;
}
static int xor_compress(const void *src, size_t n, void *dst, size_t cap, size_t *dst_len,
                        int level) {
    if (cap < n + 1) return 1;
    uint8_t key = (uint8_t)(0x5A ^ level);
    uint8_t *d = dst;
    const uint8_t *s = src;
    d[0] = key;
    for (size_t i = 0; i < n; i++) d[i + 1] = s[i] ^ key;
    *dst_len = n + 1;
    return 0;
}
static int xor_decompress(const void *src, size_t n, void *dst, size_t dst_len) {
    if (n != dst_len + 1) return 1;
    const uint8_t *s = src;
    uint8_t *d = dst;
    for (size_t i = 0; i < dst_len; i++) d[i] = s[i + 1] ^ s[0];
    return 0;
}

static void test_user_codec(void **state) {
    (void)state;
    char name[16];
    snprintf(name, sizeof name, "xor");
    afmt_codec_desc d = {AFMT_CODEC_DESC_VERSION, 300, name, xor_bound, xor_compress,
                         xor_decompress};
    assert_false(afmt__codec_known(300));
    assert_int_equal(afmt__codec_check_level(300, 0), AFMT_ECODEC);
    assert_int_equal(afmt_codec_register(&d), AFMT_OK);
    name[0] = 'Q'; /* the registry keeps its own copy of the name */
    assert_string_equal(afmt__codec_name(300), "xor");
    assert_true(afmt__codec_known(300));
    assert_int_equal(afmt__codec_check_level(300, -123456), AFMT_OK);
    assert_int_equal(afmt__codec_check_level(300, 77), AFMT_OK);
    assert_int_equal(afmt__codec_bound(300, 10), 11);

    uint8_t text[5000];
    fill_text(text, sizeof text, 9);
    round_trip(300, 0, text, sizeof text);
    round_trip(300, 7, text, 1);
    round_trip(300, 0, text, 0);

    /* The codec's own failures map to ECODEC, both ways. */
    uint8_t c[5001], r[5000];
    size_t clen = 0;
    assert_int_equal(afmt__codec_compress(300, 0, text, sizeof text, c, 10, &clen), AFMT_ECODEC);
    assert_int_equal(afmt__codec_compress(300, 0, text, sizeof text, c, sizeof c, &clen), AFMT_OK);
    assert_int_equal(afmt__codec_decompress(300, c, clen - 1, r, sizeof r), AFMT_ECODEC);

    /* Duplicate id: EEXIST with a message naming the id. */
    d.name = "other";
    assert_int_equal(afmt_codec_register(&d), AFMT_EEXIST);
    assert_non_null(strstr(afmt__thread_errbuf(), "300"));
    assert_string_equal(afmt__codec_name(300), "xor");

    /* Reserved ids and missing members: EINVAL. */
    d.id = 5;
    assert_int_equal(afmt_codec_register(&d), AFMT_EINVAL);
    assert_non_null(strstr(afmt__thread_errbuf(), "5"));
    d.id = 255;
    assert_int_equal(afmt_codec_register(&d), AFMT_EINVAL);
    assert_int_equal(afmt_codec_register(NULL), AFMT_EINVAL);
    afmt_codec_desc bad = {AFMT_CODEC_DESC_VERSION, 301, "bad", xor_bound, NULL, xor_decompress};
    assert_int_equal(afmt_codec_register(&bad), AFMT_EINVAL);
    bad.compress = xor_compress;
    bad.name = NULL;
    assert_int_equal(afmt_codec_register(&bad), AFMT_EINVAL);
    bad.name = "";
    assert_int_equal(afmt_codec_register(&bad), AFMT_EINVAL);
    bad.name = "bad";
    bad.bound = NULL;
    assert_int_equal(afmt_codec_register(&bad), AFMT_EINVAL);
    bad.bound = xor_bound;
    bad.decompress = NULL;
    assert_int_equal(afmt_codec_register(&bad), AFMT_EINVAL);
    assert_false(afmt__codec_known(301));

    /* Unknown ids. */
    assert_int_equal(afmt__codec_compress(999, 0, text, 10, c, sizeof c, &clen), AFMT_ECODEC);
    assert_int_equal(afmt__codec_decompress(999, c, 10, r, 10), AFMT_ECODEC);
    assert_int_equal(afmt__codec_bound(999, 10), 0);
}

/* zstd contexts are per thread: concurrent compress/decompress must not interfere. */
static void *zstd_worker(void *arg) {
    int level = (int)(intptr_t)arg;
    const size_t n = 200003;
    uint8_t *text = malloc(n), *r = malloc(n);
    size_t cap = afmt__codec_bound(AFMT_CODEC_ZSTD, n);
    uint8_t *c = malloc(cap);
    intptr_t bad = !text || !r || !c;
    for (int it = 0; !bad && it < 8; it++) {
        fill_text(text, n, (uint64_t)(level * 100 + it));
        size_t clen = 0;
        uint32_t id = it % 2 ? AFMT_CODEC_ZSTD : AFMT_CODEC_LZ4;
        bad |= afmt__codec_compress(id, level, text, n, c, cap, &clen) != AFMT_OK;
        bad |= !bad && afmt__codec_decompress(id, c, clen, r, n) != AFMT_OK;
        bad |= !bad && memcmp(r, text, n) != 0;
    }
    free(text);
    free(r);
    free(c);
    return (void *)bad;
}

static void test_threads(void **state) {
    (void)state;
    pthread_t th[6];
    for (int i = 0; i < 6; i++)
        assert_int_equal(pthread_create(&th[i], NULL, zstd_worker, (void *)(intptr_t)(i + 1)), 0);
    for (int i = 0; i < 6; i++) {
        void *res = NULL;
        assert_int_equal(pthread_join(th[i], &res), 0);
        assert_null(res);
    }
}

/* Must run last: it fills the process-wide registry. */
static void test_registry_full(void **state) {
    (void)state;
    afmt_codec_desc d = {AFMT_CODEC_DESC_VERSION, 0, "filler", xor_bound, xor_compress,
                         xor_decompress};
    int rc = AFMT_OK;
    uint32_t id = 1000;
    for (int i = 0; i < 1000 && rc == AFMT_OK; i++) {
        d.id = id++;
        rc = afmt_codec_register(&d);
    }
    assert_int_equal(rc, AFMT_ENOMEM);
    assert_non_null(strstr(afmt__thread_errbuf(), "full"));
    /* Earlier registrations stay usable. */
    assert_true(afmt__codec_known(1000));
    assert_true(afmt__codec_known(300));
    assert_false(afmt__codec_known(id - 1));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_round_trip_default),
    cmocka_unit_test(test_round_trip_levels),
    cmocka_unit_test(test_null_empty),
    cmocka_unit_test(test_truncated),
    cmocka_unit_test(test_flipped),
    cmocka_unit_test(test_wrong_raw_len),
    cmocka_unit_test(test_small_dst),
    cmocka_unit_test(test_lz4_limits),
    cmocka_unit_test(test_levels),
    cmocka_unit_test(test_names),
    cmocka_unit_test(test_user_codec),
    cmocka_unit_test(test_threads),
    cmocka_unit_test(test_registry_full),
};

TU_MAIN("codec", tests)
