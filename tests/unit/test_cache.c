/* test_cache.c - the LRU block cache: eviction order, byte bound, oversize puts,
 * replacement. Run under ASan to catch leaks and use-after-free. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "index/cache.h"

static uint8_t *block(uint64_t len, uint8_t fill) {
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    memset(p, fill, len);
    return p;
}

static int has(afmt_cache *c, uint64_t key) {
    uint64_t len;
    return afmt__cache_get(c, key, &len) != NULL;
}

static void test_lru_order(void **state) {
    (void)state;
    afmt_cache *c;
    assert_int_equal(afmt__cache_create(&c, 300), AFMT_OK);
    assert_null(afmt__cache_get(c, 1, NULL));
    const uint8_t *p1 = afmt__cache_put(c, 1, block(100, 1), 100);
    assert_int_equal(p1[0], 1);
    afmt__cache_put(c, 2, block(100, 2), 100);
    afmt__cache_put(c, 3, block(100, 3), 100);
    assert_int_equal(afmt__cache_bytes(c), 300);
    /* Touch 1: now 2 is the least recent and goes first. */
    uint64_t len = 0;
    const uint8_t *g = afmt__cache_get(c, 1, &len);
    assert_non_null(g);
    assert_int_equal(len, 100);
    assert_int_equal(g[99], 1);
    afmt__cache_put(c, 4, block(100, 4), 100);
    assert_false(has(c, 2));
    assert_true(has(c, 1));
    assert_true(has(c, 3));
    assert_true(has(c, 4));
    assert_int_equal(afmt__cache_bytes(c), 300);
    /* Order now (most recent first): 4 3 1 (has() touched 1, 3, 4 in that order). A
     * 150-byte put evicts the least recent, 1, then (still 50 bytes over) the next least
     * recent, 3, and keeps 4: two evictions, both in LRU order. */
    afmt__cache_put(c, 5, block(150, 5), 150);
    assert_int_equal(afmt__cache_bytes(c), 250);
    assert_true(has(c, 4));
    assert_true(has(c, 5));
    assert_false(has(c, 1));
    assert_false(has(c, 3));
    /* Order: 5 4 (has() touched 4, then 5). A 100-byte put evicts 4, the least recent. */
    afmt__cache_put(c, 6, block(100, 6), 100);
    assert_false(has(c, 4));
    assert_true(has(c, 5));
    assert_true(has(c, 6));
    assert_int_equal(afmt__cache_bytes(c), 250);
    afmt__cache_clear(c);
    assert_int_equal(afmt__cache_bytes(c), 0);
    assert_false(has(c, 5));
    afmt__cache_free(c);
}

static void test_byte_bound_random(void **state) {
    (void)state;
    afmt_cache *c;
    const uint64_t cap = 10000;
    assert_int_equal(afmt__cache_create(&c, cap), AFMT_OK);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t key = x % 64, len = (x >> 20) % 3000;
        uint8_t fill = (uint8_t)(key * 7 + 1);
        if ((x >> 40) % 2) {
            const uint8_t *p = afmt__cache_put(c, key, block(len, fill), len);
            assert_non_null(p);
            for (uint64_t k = 0; k < len; k += 97) assert_int_equal(p[k], fill);
        } else {
            uint64_t l2;
            const uint8_t *p = afmt__cache_get(c, key, &l2);
            if (p && l2) assert_int_equal(p[0], fill);
        }
        assert_true(afmt__cache_bytes(c) <= cap);
    }
    afmt__cache_free(c);
}

/* Evicted and set-aside buffers come back through afmt__cache_spare, only of the exact
 * length asked for, at most AFMT_CACHE_SPARES of them, each once. */
static void test_spares(void **state) {
    (void)state;
    afmt_cache *c;
    assert_int_equal(afmt__cache_create(&c, 300), AFMT_OK);
    assert_null(afmt__cache_spare(c, 100));
    const uint8_t *p1 = afmt__cache_put(c, 1, block(100, 1), 100);
    afmt__cache_put(c, 2, block(100, 2), 100);
    afmt__cache_put(c, 3, block(100, 3), 100);
    assert_null(afmt__cache_spare(c, 100));    /* nothing evicted yet */
    afmt__cache_put(c, 4, block(100, 4), 100); /* evicts 1 */
    assert_null(afmt__cache_spare(c, 50));
    uint8_t *s1 = afmt__cache_spare(c, 100);
    assert_ptr_equal(s1, p1);
    assert_null(afmt__cache_spare(c, 100));
    /* A spare is the caller's: filled and put, it is an entry like any other. */
    memset(s1, 5, 100);
    afmt__cache_put(c, 5, s1, 100); /* evicts 2 */
    uint64_t len = 0;
    const uint8_t *g = afmt__cache_get(c, 5, &len);
    assert_ptr_equal(g, s1);
    assert_int_equal(len, 100);
    assert_int_equal(g[99], 5);
    assert_null(afmt__cache_get(c, 2, NULL));
    /* Three evictions at once keep two spares and free the third. */
    afmt__cache_put(c, 6, block(300, 6), 300); /* evicts 3, 4, 5 */
    assert_null(afmt__cache_get(c, 3, NULL));
    assert_null(afmt__cache_get(c, 4, NULL));
    assert_null(afmt__cache_get(c, 5, NULL));
    assert_int_equal(afmt__cache_bytes(c), 300);
    uint8_t *a = afmt__cache_spare(c, 100), *b = afmt__cache_spare(c, 100);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(afmt__cache_spare(c, 100));
    free(a);
    free(b);
    /* A block larger than the capacity is set aside, then becomes a spare at the next put. */
    const uint8_t *big = afmt__cache_put(c, 7, block(400, 7), 400);
    afmt__cache_put(c, 8, block(10, 8), 10);
    assert_ptr_equal(afmt__cache_spare(c, 400), big);
    free((void *)big);
    /* Spares left at clear/free are freed (the ASan build checks for leaks). */
    afmt__cache_put(c, 9, block(300, 9), 300);
    afmt__cache_free(c);
}

static void test_oversize(void **state) {
    (void)state;
    afmt_cache *c;
    assert_int_equal(afmt__cache_create(&c, 100), AFMT_OK);
    afmt__cache_put(c, 1, block(60, 1), 60);
    /* Too large: not kept, but readable until the next put, and nothing is evicted. */
    const uint8_t *p = afmt__cache_put(c, 2, block(101, 2), 101);
    assert_non_null(p);
    assert_int_equal(p[100], 2);
    assert_false(has(c, 2));
    assert_true(has(c, 1));
    assert_int_equal(afmt__cache_bytes(c), 60);
    /* Two oversize puts in a row: the first aside buffer is freed (ASan: no leak). */
    p = afmt__cache_put(c, 3, block(500, 3), 500);
    assert_int_equal(p[499], 3);
    /* The next put frees the aside buffer; a normal one is kept. */
    p = afmt__cache_put(c, 4, block(30, 4), 30);
    assert_int_equal(p[29], 4);
    assert_true(has(c, 4));
    assert_int_equal(afmt__cache_bytes(c), 90);
    /* An oversize put of an existing key drops the old cached version. */
    afmt__cache_put(c, 4, block(200, 5), 200);
    assert_false(has(c, 4));
    assert_int_equal(afmt__cache_bytes(c), 60);
    afmt__cache_free(c); /* frees the aside buffer too */

    /* Capacity 0: nothing is kept, every put is still readable until the next. */
    assert_int_equal(afmt__cache_create(&c, 0), AFMT_OK);
    p = afmt__cache_put(c, 1, block(10, 9), 10);
    assert_int_equal(p[9], 9);
    assert_false(has(c, 1));
    assert_int_equal(afmt__cache_bytes(c), 0);
    afmt__cache_clear(c);
    afmt__cache_put(c, 2, block(10, 9), 10);
    afmt__cache_free(c);
}

static void test_replace(void **state) {
    (void)state;
    afmt_cache *c;
    assert_int_equal(afmt__cache_create(&c, 1000), AFMT_OK);
    afmt__cache_put(c, 7, block(100, 1), 100);
    afmt__cache_put(c, 8, block(100, 2), 100);
    /* Replacing frees the old data (ASan) and updates length and bytes. */
    const uint8_t *p = afmt__cache_put(c, 7, block(300, 3), 300);
    assert_int_equal(p[0], 3);
    assert_int_equal(afmt__cache_bytes(c), 400);
    uint64_t len;
    p = afmt__cache_get(c, 7, &len);
    assert_int_equal(len, 300);
    assert_int_equal(p[299], 3);
    /* The replaced entry is the most recent: a put that needs room evicts 8 first. */
    afmt__cache_put(c, 9, block(650, 4), 650);
    assert_false(has(c, 8));
    assert_true(has(c, 7));
    assert_true(has(c, 9));
    assert_int_equal(afmt__cache_bytes(c), 950);
    /* An exact fit keeps the entry; it evicts both others (the second eviction, 9, too). */
    afmt__cache_put(c, 10, block(1000, 5), 1000);
    assert_true(has(c, 10));
    assert_false(has(c, 7));
    assert_false(has(c, 9));
    assert_int_equal(afmt__cache_bytes(c), 1000);
    afmt__cache_free(c);
    afmt__cache_free(NULL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_lru_order), cmocka_unit_test(test_byte_bound_random),
    cmocka_unit_test(test_oversize),  cmocka_unit_test(test_spares),
    cmocka_unit_test(test_replace),
};

TU_MAIN("cache", tests)
