/* test_hmap.c - the open-addressing map against a simple reference. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "common/hmap.h"
#include "common/util.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Reference: a pool of NKEYS keys, each present or not with a value. */
#define NKEYS 100000
typedef struct {
    uint64_t k1, k2, val;
    int present;
} ref_t;

static void check_all(const afmt_hmap *m, const ref_t *ref, uint64_t n) {
    uint64_t count = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t *v = afmt__hmap_get(m, ref[i].k1, ref[i].k2);
        if (ref[i].present) {
            assert_non_null(v);
            assert_int_equal(*v, ref[i].val);
            count++;
        } else {
            assert_null(v);
        }
    }
    assert_int_equal(m->count, count);
    /* Load factor, tombstones included, at most 0.7. */
    assert_true((m->count + m->tombs) * 10 <= m->cap * 7);
    assert_int_equal(m->cap & (m->cap - 1), 0);
    uint64_t used = 0, tombs = 0;
    for (uint64_t i = 0; i < m->cap; i++) {
        used += m->slots[i].used == 1;
        tombs += m->slots[i].used == 2;
    }
    assert_int_equal(used, m->count);
    assert_int_equal(tombs, m->tombs);
}

static void test_random_ops(void **state) {
    (void)state;
    ref_t *ref = calloc(NKEYS, sizeof *ref);
    assert_non_null(ref);
    for (uint64_t i = 0; i < NKEYS; i++) {
        /* Mix of random keys and structured ones (small ids, chunk indices). */
        if (i % 2) {
            ref[i].k1 = rnd();
            ref[i].k2 = rnd();
        } else {
            ref[i].k1 = i % 37 + 1;
            ref[i].k2 = i / 37;
        }
    }
    afmt_hmap m;
    afmt__hmap_init(&m);
    assert_null(afmt__hmap_get(&m, 1, 2));
    assert_int_equal(afmt__hmap_del(&m, 1, 2), 0);
    for (int round = 0; round < 4; round++) {
        for (uint64_t step = 0; step < 3 * NKEYS / 2; step++) {
            uint64_t i = rnd() % NKEYS;
            uint64_t op = rnd() % 10;
            if (op < (round % 2 ? 3u : 7u)) {
                uint64_t val = rnd();
                assert_int_equal(afmt__hmap_put(&m, ref[i].k1, ref[i].k2, val), AFMT_OK);
                ref[i].val = val;
                ref[i].present = 1;
            } else {
                assert_int_equal(afmt__hmap_del(&m, ref[i].k1, ref[i].k2), ref[i].present);
                ref[i].present = 0;
            }
        }
        check_all(&m, ref, NKEYS);
    }
    /* Iteration as hmap.h describes visits each present key once. */
    uint64_t visited = 0;
    for (uint64_t i = 0; i < m.cap; i++)
        if (m.slots[i].used == 1) visited++;
    assert_int_equal(visited, m.count);
    /* Delete everything, then the map is empty but usable. */
    for (uint64_t i = 0; i < NKEYS; i++) {
        assert_int_equal(afmt__hmap_del(&m, ref[i].k1, ref[i].k2), ref[i].present);
        ref[i].present = 0;
    }
    check_all(&m, ref, NKEYS);
    assert_int_equal(m.count, 0);
    assert_int_equal(afmt__hmap_put(&m, 5, 6, 7), AFMT_OK);
    assert_int_equal(*afmt__hmap_get(&m, 5, 6), 7);
    afmt__hmap_clear(&m);
    assert_null(afmt__hmap_get(&m, 5, 6));
    assert_int_equal(m.count, 0);
    assert_true(m.cap > 0);
    afmt__hmap_free(&m);
    free(ref);
}

static void test_replace_and_reserve(void **state) {
    (void)state;
    afmt_hmap m;
    afmt__hmap_init(&m);
    assert_int_equal(afmt__hmap_put(&m, 1, 1, 10), AFMT_OK);
    assert_int_equal(afmt__hmap_put(&m, 1, 1, 11), AFMT_OK);
    assert_int_equal(m.count, 1);
    assert_int_equal(*afmt__hmap_get(&m, 1, 1), 11);
    /* (a, b) and (b, a) are different keys. */
    assert_int_equal(afmt__hmap_put(&m, 2, 3, 23), AFMT_OK);
    assert_int_equal(afmt__hmap_put(&m, 3, 2, 32), AFMT_OK);
    assert_int_equal(*afmt__hmap_get(&m, 2, 3), 23);
    assert_int_equal(*afmt__hmap_get(&m, 3, 2), 32);
    /* After reserve(n), n new keys go in without moving the slot array. */
    assert_int_equal(afmt__hmap_reserve(&m, 1000), AFMT_OK);
    afmt_hmap_slot *slots = m.slots;
    for (uint64_t i = 0; i < 1000; i++) assert_int_equal(afmt__hmap_put(&m, 100, i, i), AFMT_OK);
    assert_ptr_equal(m.slots, slots);
    assert_int_equal(m.count, 1003);
    /* A pointer from get stays valid across a replace of the same key. */
    uint64_t *v = afmt__hmap_get(&m, 100, 5);
    assert_int_equal(afmt__hmap_put(&m, 100, 5, 55), AFMT_OK);
    assert_int_equal(*v, 55);
    afmt__hmap_free(&m);
    afmt__hmap_free(&m); /* free twice is harmless: free zeroes */
}

static void test_tombstone_churn(void **state) {
    (void)state;
    /* Insert/delete many distinct keys while the live count stays small: tombstones
     * must be recycled or rehashed away instead of growing the table without bound. */
    afmt_hmap m;
    afmt__hmap_init(&m);
    for (uint64_t i = 0; i < 200000; i++) {
        assert_int_equal(afmt__hmap_put(&m, i, 0, i), AFMT_OK);
        if (i >= 8) assert_int_equal(afmt__hmap_del(&m, i - 8, 0), 1);
    }
    assert_int_equal(m.count, 8);
    assert_true(m.cap <= 64);
    for (uint64_t i = 200000 - 8; i < 200000; i++) assert_int_equal(*afmt__hmap_get(&m, i, 0), i);
    afmt__hmap_free(&m);
}

/* The map's hash before it was keyed by a per-process secret: a fixed function, so keys
 * could be searched that all land in one slot (hash flooding from crafted files). */
#define old_mix afmt__mix64 /* its unkeyed mixer: splitmix64's finalizer */

static void test_crafted_collisions(void **state) {
    (void)state;
    /* 3000 keys (1, k) that all share their home slot under the old hash in any table of
     * up to 2^13 slots: inserting them took 1 + 2 + ... + 3000 probes. */
    enum { N = 3000 };
    afmt_hmap m;
    afmt__hmap_init(&m);
    uint64_t *keys = malloc(sizeof *keys * N), n = 0;
    assert_non_null(keys);
    for (uint64_t k = 0; n < N; k++)
        if ((old_mix(1 ^ old_mix(k + 0x9E3779B97F4A7C15ull)) & 0x1fff) == 0) keys[n++] = k;
    for (uint64_t i = 0; i < N; i++) assert_int_equal(afmt__hmap_put(&m, 1, keys[i], i), AFMT_OK);
    uint64_t total = 0, worst = 0;
    for (uint64_t i = 0; i < N; i++) {
        uint64_t p = afmt__hmap_probe_len(&m, 1, keys[i]);
        total += p;
        worst = p > worst ? p : worst;
        assert_int_equal(*afmt__hmap_get(&m, 1, keys[i]), i);
    }
    /* Keyed: about 1.5 probes per key at this load; the old hash gave N / 2 on average. */
    if (total > 4 * N || worst > 64)
        fail_msg("probes: %llu in all, worst %llu, for %d keys", (unsigned long long)total,
                 (unsigned long long)worst, N);
    free(keys);
    afmt__hmap_free(&m);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_random_ops),
    cmocka_unit_test(test_replace_and_reserve),
    cmocka_unit_test(test_tombstone_churn),
    cmocka_unit_test(test_crafted_collisions),
};

TU_MAIN("hmap", tests)
