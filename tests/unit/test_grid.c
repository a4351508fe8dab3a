/* test_grid.c - chunk-grid arithmetic, the hyperslab iterator and box copies. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "format/grid.h"

static uint64_t rng_state = 0x1234567887654321ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static uint64_t rnd_in(uint64_t lo, uint64_t hi) { /* inclusive */
    return lo + rnd() % (hi - lo + 1);
}

static void test_nchunks_and_edges(void **state) {
    (void)state;
    afmt_grid g;
    uint64_t shape[] = {10}, chunk[] = {4};
    assert_int_equal(afmt__grid_init(&g, 1, shape, chunk), AFMT_OK);
    assert_int_equal(afmt__grid_nchunks(&g), 3);
    uint64_t want[] = {4, 4, 2};
    for (uint64_t c = 0; c < 3; c++) {
        uint64_t o, e;
        assert_int_equal(afmt__grid_chunk_box(&g, &c, &o, &e), want[c]);
        assert_int_equal(o, c * 4);
        assert_int_equal(e, want[c]);
    }
    uint64_t s2[] = {7, 9, 5}, c2[] = {3, 9, 2};
    assert_int_equal(afmt__grid_init(&g, 3, s2, c2), AFMT_OK);
    assert_int_equal(g.nchunk[0], 3);
    assert_int_equal(g.nchunk[1], 1);
    assert_int_equal(g.nchunk[2], 3);
    assert_int_equal(afmt__grid_nchunks(&g), 9);
    uint64_t cc[] = {2, 0, 2}, o[3], e[3];
    assert_int_equal(afmt__grid_chunk_box(&g, cc, o, e), 1 * 9 * 1);
    assert_int_equal(e[0], 1);
    assert_int_equal(e[2], 1);
    assert_int_equal(o[0], 6);
    assert_int_equal(o[2], 4);
    /* Chunk equal to the shape: one chunk. */
    uint64_t s3[] = {5, 5};
    assert_int_equal(afmt__grid_init(&g, 2, s3, s3), AFMT_OK);
    assert_int_equal(afmt__grid_nchunks(&g), 1);
}

static void test_roundtrip(void **state) {
    (void)state;
    afmt_grid g;
    uint64_t shape[] = {13, 1, 8, 30}, chunk[] = {4, 1, 8, 7};
    assert_int_equal(afmt__grid_init(&g, 4, shape, chunk), AFMT_OK);
    uint64_t n = afmt__grid_nchunks(&g);
    assert_int_equal(n, 4 * 1 * 1 * 5);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t cc[4];
        afmt__grid_chunk_coord(&g, i, cc);
        for (int d = 0; d < 4; d++) assert_true(cc[d] < g.nchunk[d]);
        assert_int_equal(afmt__grid_chunk_index(&g, cc), i);
    }
    /* C order: the last coordinate varies fastest. */
    uint64_t cc[4] = {1, 0, 0, 2};
    assert_int_equal(afmt__grid_chunk_index(&g, cc), 1 * 5 + 2);
}

static void test_invalid(void **state) {
    (void)state;
    afmt_grid g;
    uint64_t s[] = {10, 10}, c0[] = {0, 1}, cbig[] = {11, 1}, s0[] = {0, 10}, c1[] = {1, 1};
    assert_int_equal(afmt__grid_init(&g, 2, s, c0), AFMT_EINVAL);
    assert_int_equal(afmt__grid_init(&g, 2, s, cbig), AFMT_EINVAL);
    assert_int_equal(afmt__grid_init(&g, 2, s0, c1), AFMT_EINVAL);
    assert_int_equal(afmt__grid_init(&g, -1, s, c1), AFMT_EINVAL);
    assert_int_equal(afmt__grid_init(&g, AFMT_MAX_NDIM + 1, s, c1), AFMT_EINVAL);
    /* Element count overflow: 2^32 * 2^32 = 2^64 elements. */
    uint64_t big[] = {1ull << 32, 1ull << 32}, bigc[] = {1ull << 32, 1ull << 32};
    assert_int_equal(afmt__grid_init(&g, 2, big, bigc), AFMT_EINVAL);
    uint64_t ok[] = {1ull << 32, (1ull << 32) - 1};
    assert_int_equal(afmt__grid_init(&g, 2, ok, ok), AFMT_OK);
    /* Chunk count overflow too (elements overflow first or together). */
    uint64_t b3[] = {UINT64_MAX, 2}, c3[] = {1, 1};
    assert_int_equal(afmt__grid_init(&g, 2, b3, c3), AFMT_EINVAL);
    /* Huge single dim with chunk 1: UINT64_MAX elements and chunks fit. */
    uint64_t b4[] = {UINT64_MAX};
    assert_int_equal(afmt__grid_init(&g, 1, b4, c3), AFMT_OK);
    assert_int_equal(afmt__grid_nchunks(&g), UINT64_MAX);
    /* A non-dividing chunk near the limit must not overflow the ceil division. */
    uint64_t c5[] = {UINT64_MAX - 1};
    assert_int_equal(afmt__grid_init(&g, 1, b4, c5), AFMT_OK);
    assert_int_equal(afmt__grid_nchunks(&g), 2);
}

static void test_scalar(void **state) {
    (void)state;
    afmt_grid g;
    assert_int_equal(afmt__grid_init(&g, 0, NULL, NULL), AFMT_OK);
    assert_int_equal(afmt__grid_nchunks(&g), 1);
    assert_int_equal(afmt__grid_chunk_index(&g, NULL), 0);
    assert_int_equal(afmt__grid_chunk_box(&g, NULL, NULL, NULL), 1);
    afmt_grid_iter it;
    afmt__grid_iter_init(&it, &g, NULL, NULL);
    assert_true(afmt__grid_iter_next(&it));
    assert_int_equal(it.index, 0);
    assert_int_equal(it.nelems, 1);
    assert_true(it.full);
    assert_false(afmt__grid_iter_next(&it));
    double a = 3.5, b = 0;
    afmt__box_copy(0, sizeof a, NULL, &b, NULL, NULL, &a, NULL, NULL);
    assert_true(b == 3.5);
    assert_true(afmt__box_overlap(0, NULL, NULL, NULL, NULL));
}

/* Brute force: visit every chunk of the grid, keep those the hyperslab touches. */
static void check_iter(const afmt_grid *g, const uint64_t *start, const uint64_t *count) {
    int nd = g->ndim;
    afmt_grid_iter it;
    afmt__grid_iter_init(&it, g, start, count);
    uint64_t n = afmt__grid_nchunks(g), seen = 0, prev = 0;
    uint64_t covered = 0, total = 1;
    for (int d = 0; d < nd; d++) total *= count[d];
    for (uint64_t i = 0; i < n; i++) {
        uint64_t cc[AFMT_MAX_NDIM], o[AFMT_MAX_NDIM], e[AFMT_MAX_NDIM];
        afmt__grid_chunk_coord(g, i, cc);
        uint64_t ne = afmt__grid_chunk_box(g, cc, o, e);
        int touch = 1, full = 1;
        uint64_t ss[AFMT_MAX_NDIM], sc[AFMT_MAX_NDIM];
        for (int d = 0; d < nd; d++) {
            uint64_t lo = start[d] > o[d] ? start[d] : o[d];
            uint64_t hi = start[d] + count[d] < o[d] + e[d] ? start[d] + count[d] : o[d] + e[d];
            if (lo >= hi) {
                touch = 0;
                break;
            }
            ss[d] = lo - o[d];
            sc[d] = hi - lo;
            if (sc[d] != e[d]) full = 0;
        }
        if (!touch) continue;
        assert_true(afmt__grid_iter_next(&it));
        if (seen) assert_true(it.index > prev); /* C order of coordinates = index order */
        prev = it.index;
        seen++;
        assert_int_equal(it.index, i);
        assert_int_equal(it.nelems, ne);
        assert_int_equal(it.full, full);
        uint64_t sel = 1;
        for (int d = 0; d < nd; d++) {
            assert_int_equal(it.ccoord[d], cc[d]);
            assert_int_equal(it.origin[d], o[d]);
            assert_int_equal(it.extent[d], e[d]);
            assert_int_equal(it.sel_start[d], ss[d]);
            assert_int_equal(it.sel_count[d], sc[d]);
            sel *= sc[d];
        }
        covered += sel;
    }
    assert_false(afmt__grid_iter_next(&it));
    assert_false(afmt__grid_iter_next(&it));
    assert_int_equal(covered, total);
}

static void test_iter_random(void **state) {
    (void)state;
    for (int nd = 1; nd <= 4; nd++) {
        for (int trial = 0; trial < 300; trial++) {
            uint64_t shape[4], chunk[4], start[4], count[4];
            for (int d = 0; d < nd; d++) {
                shape[d] = rnd_in(1, nd <= 2 ? 40 : 12);
                chunk[d] = rnd_in(1, shape[d]);
                start[d] = rnd_in(0, shape[d] - 1);
                count[d] = rnd_in(1, shape[d] - start[d]);
            }
            afmt_grid g;
            assert_int_equal(afmt__grid_init(&g, nd, shape, chunk), AFMT_OK);
            check_iter(&g, start, count);
        }
    }
}

static void test_iter_full_and_empty(void **state) {
    (void)state;
    afmt_grid g;
    uint64_t shape[] = {10, 6}, chunk[] = {4, 3};
    assert_int_equal(afmt__grid_init(&g, 2, shape, chunk), AFMT_OK);
    /* The whole array: every chunk full, edge chunks included. */
    uint64_t s0[] = {0, 0};
    afmt_grid_iter it;
    afmt__grid_iter_init(&it, &g, s0, shape);
    int n = 0;
    while (afmt__grid_iter_next(&it)) {
        assert_true(it.full);
        n++;
    }
    assert_int_equal(n, 6);
    /* Aligned to chunk 1 exactly, and a partial one. */
    uint64_t s1[] = {4, 3}, c1[] = {4, 3};
    afmt__grid_iter_init(&it, &g, s1, c1);
    assert_true(afmt__grid_iter_next(&it));
    assert_true(it.full);
    assert_int_equal(it.index, 1 * 2 + 1);
    assert_false(afmt__grid_iter_next(&it));
    uint64_t c2[] = {4, 2};
    afmt__grid_iter_init(&it, &g, s1, c2);
    assert_true(afmt__grid_iter_next(&it));
    assert_false(it.full);
    /* An empty count touches nothing. */
    uint64_t c3[] = {0, 2};
    afmt__grid_iter_init(&it, &g, s1, c3);
    assert_false(afmt__grid_iter_next(&it));
}

static void naive_copy(int nd, size_t es, const uint64_t *count, uint8_t *dst,
                       const uint64_t *dshape, const uint64_t *dstart, const uint8_t *src,
                       const uint64_t *sshape, const uint64_t *sstart) {
    uint64_t total = 1;
    for (int d = 0; d < nd; d++) total *= count[d];
    for (uint64_t i = 0; i < total; i++) {
        uint64_t rest = i, so = 0, doff = 0, sm = 1, dm = 1;
        for (int d = nd - 1; d >= 0; d--) {
            uint64_t c = rest % count[d];
            rest /= count[d];
            so += (sstart[d] + c) * sm;
            doff += (dstart[d] + c) * dm;
            sm *= sshape[d];
            dm *= dshape[d];
        }
        memcpy(dst + doff * es, src + so * es, es);
    }
}

/* A random box in random source and destination arrays, with random content: the
 * cases of the box copy and box runs tests. */
typedef struct {
    size_t es;
    uint64_t count[5], ss[5], sst[5], ds[5], dst[5];
    uint64_t sn, dn, boxn;
    uint8_t *src, *d1, *d2; /* source; destination for the tested and the naive copy */
} rand_box;

static void rand_box_make(int nd, rand_box *b) {
    b->es = (size_t)1 << rnd_in(0, 3);
    b->sn = b->dn = b->boxn = 1;
    for (int d = 0; d < nd; d++) {
        b->count[d] = rnd_in(1, nd <= 2 ? 12 : 5);
        /* Often make the box span whole rows, to exercise the merging. */
        int whole = rnd() % 3 == 0;
        b->ss[d] = whole ? b->count[d] : b->count[d] + rnd_in(0, 3);
        b->ds[d] = whole ? b->count[d] : b->count[d] + rnd_in(0, 3);
        b->sst[d] = rnd_in(0, b->ss[d] - b->count[d]);
        b->dst[d] = rnd_in(0, b->ds[d] - b->count[d]);
        if (rnd() % 5 == 0) b->count[d] = 1; /* count-1 dims inside bigger shapes */
        b->sn *= b->ss[d];
        b->dn *= b->ds[d];
        b->boxn *= b->count[d];
    }
    b->src = malloc(b->sn * b->es);
    b->d1 = malloc(b->dn * b->es);
    b->d2 = malloc(b->dn * b->es);
    assert_non_null(b->src);
    assert_non_null(b->d1);
    assert_non_null(b->d2);
    for (uint64_t i = 0; i < b->sn * b->es; i++) b->src[i] = (uint8_t)rnd();
    for (uint64_t i = 0; i < b->dn * b->es; i++) b->d1[i] = b->d2[i] = (uint8_t)rnd();
}

static void rand_box_free(rand_box *b) {
    free(b->src);
    free(b->d1);
    free(b->d2);
}

static void test_box_copy_random(void **state) {
    (void)state;
    for (int nd = 1; nd <= 5; nd++) {
        for (int trial = 0; trial < 400; trial++) {
            rand_box b;
            rand_box_make(nd, &b);
            afmt__box_copy(nd, b.es, b.count, b.d1, b.ds, b.dst, b.src, b.ss, b.sst);
            naive_copy(nd, b.es, b.count, b.d2, b.ds, b.dst, b.src, b.ss, b.sst);
            assert_memory_equal(b.d1, b.d2, b.dn * b.es);
            rand_box_free(&b);
        }
    }
}

/* afmt__box_runs: copying each visited run with memcpy equals the element-wise copy, the
 * runs come in C order (increasing offsets in both arrays) and cover the box once. */
typedef struct {
    uint8_t *dst;
    const uint8_t *src;
    size_t es;
    uint64_t total, last_a, last_b;
    int n;
} runs_ctx;

static void copy_run(void *ctx, uint64_t a_off, uint64_t b_off, uint64_t len) {
    runs_ctx *c = ctx;
    if (c->n > 0) {
        assert_true(a_off > c->last_a);
        assert_true(b_off > c->last_b);
    }
    c->last_a = a_off;
    c->last_b = b_off;
    c->n++;
    c->total += len;
    memcpy(c->dst + b_off * c->es, c->src + a_off * c->es, (size_t)len * c->es);
}

static void test_box_runs_random(void **state) {
    (void)state;
    for (int nd = 1; nd <= 5; nd++) {
        for (int trial = 0; trial < 400; trial++) {
            rand_box b;
            rand_box_make(nd, &b);
            runs_ctx c = {b.d1, b.src, b.es, 0, 0, 0, 0};
            afmt__box_runs(nd, b.count, b.ss, b.sst, b.ds, b.dst, copy_run, &c);
            naive_copy(nd, b.es, b.count, b.d2, b.ds, b.dst, b.src, b.ss, b.sst);
            assert_memory_equal(b.d1, b.d2, b.dn * b.es);
            assert_int_equal(c.total, b.boxn);
            rand_box_free(&b);
        }
    }
    /* Whole arrays of the same shape are one run; ndim 0 is one run of one element. */
    uint8_t a[24], b[24] = {0};
    for (int i = 0; i < 24; i++) a[i] = (uint8_t)i;
    uint64_t shape[] = {2, 3, 4}, zero[] = {0, 0, 0};
    runs_ctx c = {b, a, 1, 0, 0, 0, 0};
    afmt__box_runs(3, shape, shape, zero, shape, zero, copy_run, &c);
    assert_int_equal(c.n, 1);
    assert_memory_equal(a, b, 24);
    runs_ctx c0 = {b, a, 1, 0, 0, 0, 0};
    afmt__box_runs(0, NULL, NULL, NULL, NULL, NULL, copy_run, &c0);
    assert_int_equal(c0.n, 1);
    assert_int_equal(c0.total, 1);
    /* An empty box visits nothing. */
    uint64_t empty[] = {2, 0, 4};
    runs_ctx ce = {b, a, 1, 0, 0, 0, 0};
    afmt__box_runs(3, empty, shape, zero, shape, zero, copy_run, &ce);
    assert_int_equal(ce.n, 0);
}

static void test_box_copy_zero_count(void **state) {
    (void)state;
    uint8_t src[4] = {1, 2, 3, 4}, dst[4] = {0};
    uint64_t shape[] = {4}, st[] = {0}, c[] = {0};
    afmt__box_copy(1, 1, c, dst, shape, st, src, shape, st);
    for (int i = 0; i < 4; i++) assert_int_equal(dst[i], 0);
}

static void test_overlap(void **state) {
    (void)state;
    uint64_t a0[] = {0, 0}, ac[] = {4, 4}, b0[] = {3, 3}, bc[] = {2, 2}, c0[] = {4, 0};
    assert_true(afmt__box_overlap(2, a0, ac, b0, bc));
    assert_true(afmt__box_overlap(2, b0, bc, a0, ac));
    assert_false(afmt__box_overlap(2, a0, ac, c0, bc)); /* touching is not overlapping */
    uint64_t z[] = {0, 2};
    assert_false(afmt__box_overlap(2, a0, z, a0, ac)); /* empty box */
    uint64_t h0[] = {UINT64_MAX - 1, 0}, hc[] = {1, 1};
    assert_false(afmt__box_overlap(2, a0, ac, h0, hc));
    /* Random against a per-dimension brute force. */
    for (int t = 0; t < 2000; t++) {
        uint64_t p0[3], pc[3], q0[3], qc[3];
        int want = 1;
        for (int d = 0; d < 3; d++) {
            p0[d] = rnd_in(0, 10);
            pc[d] = rnd_in(1, 5);
            q0[d] = rnd_in(0, 10);
            qc[d] = rnd_in(1, 5);
            int any = 0;
            for (uint64_t x = p0[d]; x < p0[d] + pc[d]; x++)
                if (x >= q0[d] && x < q0[d] + qc[d]) any = 1;
            want &= any;
        }
        assert_int_equal(afmt__box_overlap(3, p0, pc, q0, qc), want);
    }
}

/* The chunk shape of afmt_define with chunk NULL (grid.h afmt__grid_auto_chunk). */
static void expect_auto(int ndim, const uint64_t *shape, size_t es, const uint64_t *want) {
    uint64_t got[AFMT_MAX_NDIM];
    afmt__grid_auto_chunk(ndim, shape, es, got);
    for (int d = 0; d < ndim; d++)
        if (got[d] != want[d])
            fail_msg("auto chunk of dim %d (of %d, %zu-byte elements): %llu, want %llu", d, ndim,
                     es, (unsigned long long)got[d], (unsigned long long)want[d]);
}

static void test_auto_chunk_shapes(void **state) {
    (void)state;
    const uint64_t MIB = 1 << 20;
    afmt__grid_auto_chunk(0, NULL, 8, NULL); /* a scalar: nothing to choose */
    /* Small arrays (up to 4 MiB) stay one chunk. */
    uint64_t tiny[] = {10, 20};
    expect_auto(2, tiny, 8, tiny);
    uint64_t four[] = {4 * MIB}, four_plus[] = {4 * MIB + 1}, half[] = {2 * MIB};
    expect_auto(1, four, 1, four);
    expect_auto(1, four_plus, 1, half);
    uint64_t four_f64[] = {512, 1024}; /* exactly 4 MiB of float64 */
    expect_auto(2, four_f64, 8, four_f64);
    /* 1-D huge: 2 MiB pieces, the last one truncated. */
    uint64_t huge[] = {1000000000000ull}, huge_c[] = {512 * 1024};
    expect_auto(1, huge, 4, huge_c);
    /* 3-D 512^3 float64: one plane is exactly 2 MiB. */
    uint64_t cube[] = {512, 512, 512}, cube_c[] = {1, 512, 512};
    expect_auto(3, cube, 8, cube_c);
    /* 2-D 4000x4000 float64: whole rows of 32000 bytes, floor(262144 / 4000) = 65 of them. */
    uint64_t sq[] = {4000, 4000}, sq_c[] = {65, 4000};
    expect_auto(2, sq, 8, sq_c);
    /* The fastest row alone is over 4 MiB (8 MB of float64): it is cut into 2 MiB. */
    uint64_t wide[] = {3, 1 << 20}, wide_c[] = {1, 262144};
    expect_auto(2, wide, 8, wide_c);
    uint64_t wide3[] = {10, 10, 600000}, wide3_c[] = {1, 1, 262144};
    expect_auto(3, wide3, 8, wide3_c);
    /* Two whole dimensions, then a slice of the third: 3 * 700 int16, 1048576 / 2100. */
    uint64_t mixed[] = {1000, 700, 3}, mixed_c[] = {499, 700, 3};
    expect_auto(3, mixed, 2, mixed_c);
    /* Extents whose product overflows 64 bits. */
    uint64_t big[] = {1ull << 40, 1ull << 40}, big_c[] = {1, 2 * MIB};
    expect_auto(2, big, 1, big_c);
    uint64_t maxed[] = {UINT64_MAX, UINT64_MAX, 3}, maxed_c[] = {1, 87381, 3};
    expect_auto(3, maxed, 8, maxed_c);
    /* A zero extent: left to afmt_define to refuse (chunk = shape). */
    uint64_t zero[] = {1 << 30, 0}, zero_c[] = {1 << 30, 0};
    expect_auto(2, zero, 8, zero_c);
}

/* Random shapes: the chunk is within the shape, whole trailing extents, one slice, leading
 * ones; one chunk iff the array is at most 4 MiB, else more than 1 and at most 2 MiB. */
static void test_auto_chunk_random(void **state) {
    (void)state;
    static const size_t sizes[] = {1, 2, 4, 8};
    for (int it = 0; it < 20000; it++) {
        int ndim = (int)rnd_in(1, 6);
        size_t es = sizes[rnd_in(0, 3)];
        uint64_t shape[6], chunk[6];
        for (int d = 0; d < ndim; d++) {
            int kind = (int)rnd_in(0, 3);
            shape[d] = kind == 0 ? rnd_in(1, 8) : kind == 1 ? rnd_in(1, 300) : rnd_in(1, 100000);
        }
        afmt__grid_auto_chunk(ndim, shape, es, chunk);
        uint64_t t = (2u << 20) / es, max = (4u << 20) / es, n = 1, c = 1;
        int over = 0, d = ndim - 1;
        for (int e = 0; e < ndim; e++) {
            assert_true(chunk[e] >= 1 && chunk[e] <= shape[e]);
            if (!over && shape[e] > max / n) over = 1;
            if (!over) n *= shape[e];
            c *= chunk[e];
        }
        if (!over) {
            for (int e = 0; e < ndim; e++) assert_int_equal(chunk[e], shape[e]);
            continue;
        }
        assert_true(c <= t && c > t / 2);
        while (d >= 0 && chunk[d] == shape[d]) d--;
        assert_true(d >= 0);
        for (int e = d - 1; e >= 0; e--) assert_int_equal(chunk[e], 1);
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_nchunks_and_edges),
    cmocka_unit_test(test_roundtrip),
    cmocka_unit_test(test_invalid),
    cmocka_unit_test(test_scalar),
    cmocka_unit_test(test_iter_random),
    cmocka_unit_test(test_iter_full_and_empty),
    cmocka_unit_test(test_box_copy_random),
    cmocka_unit_test(test_box_runs_random),
    cmocka_unit_test(test_box_copy_zero_count),
    cmocka_unit_test(test_overlap),
    cmocka_unit_test(test_auto_chunk_shapes),
    cmocka_unit_test(test_auto_chunk_random),
};

TU_MAIN("grid", tests)
