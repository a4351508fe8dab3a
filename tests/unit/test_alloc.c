/* test_alloc.c - the rank-local delta allocator: packing, codecs, read-your-writes,
 * spilling, commit pieces, add_stored, reset and spill errors; every test three times,
 * sealing on the caller's thread, with a pool of 3 threads (pool.h), and with a pool and
 * the payloads written by deferred fills on it. */
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/codec.h"
#include "common/util.h"
#include "index/alloc.h"

#ifndef AFMT_TEST_SCRATCH
#define AFMT_TEST_SCRATCH "/tmp"
#endif

/* ---- helpers ---- */

static uint64_t mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Payload bytes of seed: random (incompressible) or a low-entropy pattern. */
static void fill(uint8_t *p, size_t n, uint64_t seed, int compressible) {
    if (compressible) {
        for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((i / 64 + seed) % 7 + 'a');
        return;
    }
    uint64_t x = mix(seed);
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0) x = mix(x);
        p[i] = (uint8_t)(x >> (8 * (i % 8)));
    }
}

typedef struct {
    uint64_t block, offset, n, seed;
    int compressible;
} rec;

typedef struct {
    afmt_alloc *a;
    rec *recs;
    size_t nrecs, cap;
} fixture;

/* The pool of the allocators made (NULL: sealing on the caller's thread); g_defer:
 * payloads are written by deferred fills (afmt__alloc_defer_fill), run on the pool. */
static afmt_pool *g_pool;
static int g_defer;

typedef struct {
    uint64_t n, seed;
    int compressible;
} fill_arg;

static void fill_later(const void *arg, void *dst) {
    const fill_arg *fa = arg;
    fill(dst, (size_t)fa->n, fa->seed, fa->compressible);
}

static afmt_alloc *make(uint64_t block_size, uint64_t budget, const char *dir, uint32_t codec) {
    afmt_alloc_config cfg = {block_size, budget, dir, codec, 0, g_pool};
    afmt_alloc *a = NULL;
    assert_int_equal(afmt__alloc_create(&a, &cfg), AFMT_OK);
    assert_non_null(a);
    return a;
}

static void put(fixture *f, uint64_t n, uint64_t seed, int compressible) {
    void *dst = NULL;
    uint64_t block = 0, offset = 0;
    int rc = afmt__alloc_reserve(f->a, n, &dst, &block, &offset);
    if (rc)
        fail_msg("reserve(%llu) -> %d: %s", (unsigned long long)n, rc, afmt__alloc_errmsg(f->a));
    fill_arg fa = {n, seed, compressible};
    /* Deferred fills are left pending: blocks reach the pool, reads and seals with them. */
    if (!g_defer || !afmt__alloc_defer_fill(f->a, fill_later, &fa, sizeof fa))
        fill(dst, (size_t)n, seed, compressible);
    if (f->nrecs == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 256;
        f->recs = realloc(f->recs, f->cap * sizeof *f->recs);
        assert_non_null(f->recs);
    }
    f->recs[f->nrecs++] = (rec){block, offset, n, seed, compressible};
}

/* Reads back every payload (open or sealed, arena or spilled) and compares. */
static void check_reads(fixture *f) {
    uint8_t *want = NULL, *got = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < f->nrecs; i++) {
        const rec *r = &f->recs[i];
        if (r->n + 1 > cap) {
            cap = (size_t)r->n + 1;
            want = realloc(want, cap);
            got = realloc(got, cap);
            assert_non_null(want);
            assert_non_null(got);
        }
        fill(want, (size_t)r->n, r->seed, r->compressible);
        int rc = afmt__alloc_read(f->a, r->block, r->offset, got, r->n);
        if (rc) fail_msg("read rec %zu -> %d: %s", i, rc, afmt__alloc_errmsg(f->a));
        if (r->n) assert_memory_equal(want, got, (size_t)r->n);
    }
    free(want);
    free(got);
}

/* Reassembles the stored bytes with next_piece(max) and checks that they are exactly the
 * blocks in order: offsets contiguous, checksums, and each block decompresses to its
 * payloads. Returns the number of pieces. */
static size_t check_stream(fixture *f, uint64_t max) {
    afmt_alloc *a = f->a;
    uint64_t total = afmt__alloc_stored_bytes(a);
    uint8_t *all = malloc((size_t)total + 1);
    assert_non_null(all);
    uint64_t pos = 0, got = 0;
    size_t pieces = 0;
    for (;;) {
        const void *p = NULL;
        uint64_t n = 0;
        int rc = afmt__alloc_next_piece(a, &pos, max, &p, &n);
        if (rc) fail_msg("next_piece -> %d: %s", rc, afmt__alloc_errmsg(a));
        if (n == 0) break;
        assert_true(n <= max);
        assert_true(got + n <= total);
        memcpy(all + got, p, (size_t)n);
        got += n;
        pieces++;
        assert_int_equal(pos, got);
    }
    assert_int_equal(got, total);

    uint64_t nb = afmt__alloc_nblocks(a), off = 0;
    uint8_t **raws = calloc((size_t)nb + 1, sizeof *raws);
    assert_non_null(raws);
    for (uint64_t i = 0; i < nb; i++) {
        const afmt_alloc_block *b = afmt__alloc_block_at(a, i);
        assert_non_null(b);
        assert_int_equal(b->rel_offset, off);
        off += b->stored_size;
        assert_true(off <= total);
        assert_int_equal(afmt__checksum(all + b->rel_offset, (size_t)b->stored_size), b->checksum);
        if (b->codec == 0)
            assert_int_equal(b->stored_size, b->raw_size);
        else
            assert_true(b->stored_size < b->raw_size);
        raws[i] = malloc((size_t)b->raw_size + 1);
        assert_non_null(raws[i]);
        assert_int_equal(afmt__codec_decompress(b->codec, all + b->rel_offset,
                                                (size_t)b->stored_size, raws[i],
                                                (size_t)b->raw_size),
                         AFMT_OK);
    }
    assert_int_equal(off, total);
    assert_null(afmt__alloc_block_at(a, nb));

    uint8_t *want = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < f->nrecs; i++) {
        const rec *r = &f->recs[i];
        if (r->block >= nb) continue; /* still in the open block */
        if (r->n + 1 > cap) {
            cap = (size_t)r->n + 1;
            want = realloc(want, cap);
            assert_non_null(want);
        }
        fill(want, (size_t)r->n, r->seed, r->compressible);
        assert_true(r->offset + r->n <= afmt__alloc_block_at(a, r->block)->raw_size);
        if (r->n) assert_memory_equal(raws[r->block] + r->offset, want, (size_t)r->n);
    }
    free(want);
    for (uint64_t i = 0; i < nb; i++) free(raws[i]);
    free(raws);
    free(all);
    return pieces;
}

static void fixture_free(fixture *f) {
    afmt__alloc_free(f->a);
    free(f->recs);
    memset(f, 0, sizeof *f);
}

/* A fresh empty directory for spill files. */
static char *make_dir(void) {
    char *d = malloc(512);
    assert_non_null(d);
    snprintf(d, 512, "%s/afmt-alloc-test-XXXXXX", AFMT_TEST_SCRATCH);
    assert_non_null(mkdtemp(d));
    return d;
}

static int dir_entries(const char *d) {
    DIR *dp = opendir(d);
    assert_non_null(dp);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(dp);
    return n;
}

static void remove_dir(char *d) {
    assert_int_equal(dir_entries(d), 0);
    assert_int_equal(rmdir(d), 0);
    free(d);
}

/* ---- tests ---- */

static void test_packing(void **state) {
    (void)state;
    const uint64_t bs = 64 * 1024, maxp = 3000;
    fixture f = {make(bs, UINT64_MAX, NULL, 0), NULL, 0, 0};
    uint64_t cur_block = 0, cur_len = 0;
    for (uint64_t i = 0; i < 2000; i++) {
        uint64_t n = 100 + mix(i) % (maxp - 100);
        put(&f, n, i, (int)(i % 2));
        const rec *r = &f.recs[f.nrecs - 1];
        if (i > 0 && cur_len + n > bs) {
            assert_int_equal(r->block, cur_block + 1); /* the old block was sealed */
            assert_int_equal(afmt__alloc_nblocks(f.a), cur_block + 1);
            assert_int_equal(afmt__alloc_block_at(f.a, cur_block)->raw_size, cur_len);
            cur_block++;
            cur_len = 0;
        }
        assert_int_equal(r->block, cur_block);
        assert_int_equal(r->offset, cur_len);
        cur_len += n;
    }
    check_reads(&f); /* sealed blocks plus the open one */
    uint64_t nb = afmt__alloc_nblocks(f.a);
    assert_true(nb > 10);
    for (uint64_t i = 0; i < nb; i++) {
        const afmt_alloc_block *b = afmt__alloc_block_at(f.a, i);
        assert_true(b->raw_size <= bs);
        assert_true(b->raw_size > bs - maxp); /* full: the next payload did not fit */
        assert_int_equal(b->codec, 0);
    }
    assert_int_equal(afmt__alloc_seal(f.a), AFMT_OK);
    assert_int_equal(afmt__alloc_nblocks(f.a), nb + 1);
    assert_int_equal(afmt__alloc_seal(f.a), AFMT_OK); /* nothing open: no-op */
    assert_int_equal(afmt__alloc_nblocks(f.a), nb + 1);
    assert_int_equal(afmt__alloc_spilled_bytes(f.a), 0);
    assert_int_equal(afmt__alloc_mem_bytes(f.a), afmt__alloc_stored_bytes(f.a));
    check_reads(&f);
    /* No spill: all stored bytes are one piece, one write. */
    assert_int_equal(check_stream(&f, UINT64_MAX), 1);
    fixture_free(&f);
}

static void test_large_payload(void **state) {
    (void)state;
    fixture f = {make(4096, UINT64_MAX, NULL, AFMT_CODEC_LZ4), NULL, 0, 0};
    put(&f, 100000, 1, 0); /* larger than the block, into an empty block */
    assert_int_equal(f.recs[0].block, 0);
    assert_int_equal(f.recs[0].offset, 0);
    put(&f, 100, 2, 1);
    assert_int_equal(f.recs[1].block, 1);
    assert_int_equal(f.recs[1].offset, 0);
    put(&f, 10000, 3, 1); /* larger than the block after a small one */
    assert_int_equal(f.recs[2].block, 2);
    assert_int_equal(f.recs[2].offset, 0);
    put(&f, 50, 4, 0);
    assert_int_equal(f.recs[3].block, 3);
    assert_int_equal(afmt__alloc_nblocks(f.a), 3);
    assert_int_equal(afmt__alloc_block_at(f.a, 0)->raw_size, 100000);
    assert_int_equal(afmt__alloc_block_at(f.a, 0)->codec, 0); /* random */
    assert_int_equal(afmt__alloc_block_at(f.a, 1)->raw_size, 100);
    assert_int_equal(afmt__alloc_block_at(f.a, 2)->raw_size, 10000);
    assert_int_equal(afmt__alloc_block_at(f.a, 2)->codec, AFMT_CODEC_LZ4);
    check_reads(&f);
    check_stream(&f, UINT64_MAX);
    fixture_free(&f);
}

static void test_incompressible(void **state) {
    (void)state;
    uint32_t codecs[] = {AFMT_CODEC_LZ4, AFMT_CODEC_ZSTD};
    for (int c = 0; c < 2; c++) {
        fixture f = {make(32768, UINT64_MAX, NULL, codecs[c]), NULL, 0, 0};
        for (uint64_t i = 0; i < 40; i++) put(&f, 4000, i + 100, 0);
        assert_int_equal(afmt__alloc_seal(f.a), AFMT_OK);
        for (uint64_t i = 0; i < afmt__alloc_nblocks(f.a); i++) {
            const afmt_alloc_block *b = afmt__alloc_block_at(f.a, i);
            assert_int_equal(b->codec, 0);
            assert_int_equal(b->stored_size, b->raw_size);
        }
        check_reads(&f);
        check_stream(&f, UINT64_MAX);
        fixture_free(&f);
    }
}

static void test_compressible(void **state) {
    (void)state;
    uint32_t codecs[] = {AFMT_CODEC_LZ4, AFMT_CODEC_ZSTD};
    for (int c = 0; c < 2; c++) {
        fixture f = {make(32768, UINT64_MAX, NULL, codecs[c]), NULL, 0, 0};
        for (uint64_t i = 0; i < 40; i++) put(&f, 4000, i, 1);
        check_reads(&f); /* interleaves the open block with decompressed ones */
        assert_int_equal(afmt__alloc_seal(f.a), AFMT_OK);
        uint64_t raw = 0;
        for (uint64_t i = 0; i < afmt__alloc_nblocks(f.a); i++) {
            const afmt_alloc_block *b = afmt__alloc_block_at(f.a, i);
            assert_int_equal(b->codec, codecs[c]);
            assert_true(b->stored_size * 4 < b->raw_size);
            raw += b->raw_size;
        }
        assert_int_equal(raw, 40 * 4000);
        assert_true(afmt__alloc_stored_bytes(f.a) * 4 < raw);
        check_reads(&f);
        check_stream(&f, UINT64_MAX);
        fixture_free(&f);
    }
}

/* Mixed payloads under a small budget: stored bytes spread over spill file and arena. */
static void spill_case(uint64_t budget, uint32_t codec) {
    char *dir = make_dir();
    fixture f = {make(16384, budget, dir, codec), NULL, 0, 0};
    for (uint64_t i = 0; i < 300; i++) {
        put(&f, 1 + mix(i + 7) % 5000, i, (int)(mix(i) % 3 != 0));
        assert_true(afmt__alloc_mem_bytes(f.a) <= budget); /* invariant after each step */
        if (i == 150) check_reads(&f);
    }
    assert_true(afmt__alloc_spilled_bytes(f.a) > 0);
    assert_int_equal(dir_entries(dir), 0); /* unlinked at once */
    assert_int_equal(afmt__alloc_spilled_bytes(f.a) + afmt__alloc_mem_bytes(f.a),
                     afmt__alloc_stored_bytes(f.a));
    check_reads(&f);
    check_stream(&f, UINT64_MAX);
    assert_true(check_stream(&f, 777) > afmt__alloc_stored_bytes(f.a) / 777);
    check_stream(&f, 1);
    assert_int_equal(afmt__alloc_seal(f.a), AFMT_OK);
    if (budget == 0) assert_int_equal(afmt__alloc_mem_bytes(f.a), 0);
    check_reads(&f);
    check_stream(&f, UINT64_MAX);
    check_stream(&f, 4096);
    fixture_free(&f);
    remove_dir(dir);
}

static void test_spill_budget0(void **state) {
    (void)state;
    spill_case(0, AFMT_CODEC_ZSTD);
    spill_case(0, AFMT_CODEC_LZ4);
}

static void test_spill_budget10k(void **state) {
    (void)state;
    spill_case(10 * 1024, AFMT_CODEC_ZSTD);
    spill_case(10 * 1024, AFMT_CODEC_NONE);
}

static void test_next_piece_small(void **state) {
    (void)state;
    fixture f = {make(8192, UINT64_MAX, NULL, AFMT_CODEC_ZSTD), NULL, 0, 0};
    for (uint64_t i = 0; i < 50; i++) put(&f, 1000 + i, i, (int)(i % 2));
    assert_int_equal(afmt__alloc_seal(f.a), AFMT_OK);
    uint64_t total = afmt__alloc_stored_bytes(f.a);
    assert_int_equal(check_stream(&f, 100), (size_t)((total + 99) / 100));
    assert_int_equal(check_stream(&f, total), 1);
    /* Errors: max 0, cursor past the end. */
    uint64_t pos = 0, n = 1;
    const void *p = NULL;
    assert_int_equal(afmt__alloc_next_piece(f.a, &pos, 0, &p, &n), AFMT_EINVAL);
    pos = total + 1;
    assert_int_equal(afmt__alloc_next_piece(f.a, &pos, 10, &p, &n), AFMT_EINVAL);
    pos = total;
    assert_int_equal(afmt__alloc_next_piece(f.a, &pos, 10, &p, &n), AFMT_OK);
    assert_int_equal(n, 0);
    fixture_free(&f);
}

static void test_add_stored(void **state) {
    (void)state;
    uint64_t budgets[] = {UINT64_MAX, 0};
    for (int k = 0; k < 2; k++) {
        char *dir = make_dir();
        fixture f = {make(8192, budgets[k], dir, AFMT_CODEC_LZ4), NULL, 0, 0};
        put(&f, 3000, 1, 1);
        put(&f, 3000, 2, 0);
        assert_int_equal(afmt__alloc_nblocks(f.a), 0);

        /* A zstd block made elsewhere, as compaction copies it. */
        uint8_t raw[20000];
        fill(raw, sizeof raw, 99, 1);
        size_t bound = afmt__codec_bound(AFMT_CODEC_ZSTD, sizeof raw), slen = 0;
        uint8_t *stored = malloc(bound);
        assert_non_null(stored);
        assert_int_equal(
            afmt__codec_compress(AFMT_CODEC_ZSTD, 3, raw, sizeof raw, stored, bound, &slen),
            AFMT_OK);
        uint64_t blk = 99;
        assert_int_equal(afmt__alloc_add_stored(f.a, stored, slen, sizeof raw, AFMT_CODEC_ZSTD,
                                                afmt__checksum(stored, slen), &blk),
                         AFMT_OK);
        assert_int_equal(blk, 1); /* the open block was sealed first as block 0 */
        assert_int_equal(afmt__alloc_nblocks(f.a), 2);
        const afmt_alloc_block *b = afmt__alloc_block_at(f.a, 1);
        assert_int_equal(b->codec, AFMT_CODEC_ZSTD);
        assert_int_equal(b->stored_size, slen);
        assert_int_equal(b->raw_size, sizeof raw);
        f.recs = realloc(f.recs, (f.nrecs + 1) * sizeof *f.recs);
        assert_non_null(f.recs);
        f.cap = f.nrecs + 1;
        f.recs[f.nrecs++] = (rec){1, 0, sizeof raw, 99, 1};

        /* A raw block, then more payloads after it. */
        assert_int_equal(
            afmt__alloc_add_stored(f.a, raw, 5000, 5000, 0, afmt__checksum(raw, 5000), &blk),
            AFMT_OK);
        assert_int_equal(blk, 2);
        put(&f, 500, 3, 1);
        assert_int_equal(f.recs[f.nrecs - 1].block, 3);
        assert_int_equal(afmt__alloc_add_stored(f.a, raw, 10, 11, 0, 0, &blk), AFMT_EINVAL);
        check_reads(&f);
        uint8_t got[5000];
        assert_int_equal(afmt__alloc_read(f.a, 2, 0, got, 5000), AFMT_OK);
        assert_memory_equal(got, raw, 5000);
        assert_int_equal(afmt__alloc_seal(f.a), AFMT_OK);
        if (budgets[k] == 0) assert_int_equal(afmt__alloc_mem_bytes(f.a), 0);
        check_stream(&f, UINT64_MAX);
        check_stream(&f, 333);
        free(stored);
        fixture_free(&f);
        remove_dir(dir);
    }
}

static void test_reset_reuse(void **state) {
    (void)state;
    char *dir = make_dir();
    fixture f = {make(16384, 10 * 1024, dir, AFMT_CODEC_ZSTD), NULL, 0, 0};
    for (int round = 0; round < 3; round++) {
        for (uint64_t i = 0; i < 100; i++)
            put(&f, 1 + mix(i + (uint64_t)round) % 4000, i * 3 + (uint64_t)round, (int)(i % 2));
        assert_true(afmt__alloc_spilled_bytes(f.a) > 0);
        check_reads(&f);
        assert_int_equal(afmt__alloc_seal(f.a), AFMT_OK);
        check_stream(&f, UINT64_MAX);
        check_stream(&f, 1000);
        afmt__alloc_reset(f.a);
        f.nrecs = 0;
        assert_int_equal(afmt__alloc_nblocks(f.a), 0);
        assert_int_equal(afmt__alloc_stored_bytes(f.a), 0);
        assert_int_equal(afmt__alloc_spilled_bytes(f.a), 0);
        assert_int_equal(afmt__alloc_mem_bytes(f.a), 0);
        uint64_t pos = 0, n = 1;
        const void *p = NULL;
        assert_int_equal(afmt__alloc_next_piece(f.a, &pos, 100, &p, &n), AFMT_OK);
        assert_int_equal(n, 0);
        uint8_t x;
        assert_int_equal(afmt__alloc_read(f.a, 0, 0, &x, 1), AFMT_EINVAL);
    }
    assert_int_equal(dir_entries(dir), 0);
    fixture_free(&f);
    remove_dir(dir);
}

static void test_spill_dir_missing(void **state) {
    (void)state;
    const char *dir = "/nonexistent-afmt-spill-dir/sub";
    fixture f = {make(4096, 0, dir, AFMT_CODEC_LZ4), NULL, 0, 0};
    put(&f, 3000, 1, 1);
    void *dst = NULL;
    uint64_t block = 0, offset = 0;
    assert_int_equal(afmt__alloc_reserve(f.a, 3000, &dst, &block, &offset), AFMT_EIO);
    const char *msg = afmt__alloc_errmsg(f.a);
    if (!strstr(msg, dir)) fail_msg("message lacks the spill path: %s", msg);
    assert_non_null(strstr(msg, "No such file"));
    /* The sealed block stays in memory, readable and consistent. */
    assert_int_equal(afmt__alloc_nblocks(f.a), 1);
    assert_int_equal(afmt__alloc_spilled_bytes(f.a), 0);
    check_reads(&f);
    check_stream(&f, UINT64_MAX);
    /* Nothing open, but the budget is still exceeded: sealing (what a commit does first)
     * retries the spill and fails the same way, until the directory exists. */
    assert_int_equal(afmt__alloc_seal(f.a), AFMT_EIO);
    assert_non_null(strstr(afmt__alloc_errmsg(f.a), dir));
    fixture_free(&f);
}

static void test_no_file_left(void **state) {
    (void)state;
    char *dir = make_dir();
    fixture f = {make(1024, 0, dir, AFMT_CODEC_NONE), NULL, 0, 0};
    for (uint64_t i = 0; i < 64; i++) put(&f, 700, i, 0);
    put(&f, 1 << 20, 1000, 0); /* a huge block grows the arena, which shrinks after spill */
    put(&f, 700, 1001, 0);
    put(&f, 700, 1002, 0);
    assert_int_equal(afmt__alloc_mem_bytes(f.a), 0);
    assert_true(afmt__alloc_spilled_bytes(f.a) > 0);
    assert_int_equal(dir_entries(dir), 0);
    check_reads(&f);
    check_stream(&f, 100000);
    fixture_free(&f);
    remove_dir(dir); /* asserts the directory is empty */
}

static void test_bounds_and_zero(void **state) {
    (void)state;
    fixture f = {make(1024, UINT64_MAX, NULL, AFMT_CODEC_LZ4), NULL, 0, 0};
    uint8_t buf[2048];
    assert_int_equal(afmt__alloc_read(f.a, 0, 0, buf, 1), AFMT_EINVAL); /* nothing yet */
    put(&f, 0, 1, 0); /* zero-byte payloads still form a block */
    put(&f, 0, 2, 0);
    assert_int_equal(f.recs[1].block, 0);
    assert_int_equal(afmt__alloc_read(f.a, 0, 0, buf, 0), AFMT_OK);
    assert_int_equal(afmt__alloc_read(f.a, 0, 0, buf, 1), AFMT_EINVAL);
    put(&f, 1000, 3, 1);
    assert_int_equal(f.recs[2].block, 0);
    put(&f, 1000, 4, 1);
    assert_int_equal(f.recs[3].block, 1);
    assert_int_equal(afmt__alloc_read(f.a, 0, 0, buf, 1000), AFMT_OK);
    assert_int_equal(afmt__alloc_read(f.a, 0, 1, buf, 1000), AFMT_EINVAL);
    assert_int_equal(afmt__alloc_read(f.a, 0, UINT64_MAX, buf, 2), AFMT_EINVAL);
    assert_int_equal(afmt__alloc_read(f.a, 1, 0, buf, 1001), AFMT_EINVAL);
    assert_int_equal(afmt__alloc_read(f.a, 2, 0, buf, 1), AFMT_EINVAL);
    assert_non_null(strstr(afmt__alloc_errmsg(f.a), "out of range"));
    assert_int_equal(afmt__alloc_seal(f.a), AFMT_OK);
    assert_int_equal(afmt__alloc_nblocks(f.a), 2);
    assert_int_equal(afmt__alloc_read(f.a, 1, 999, buf, 2), AFMT_EINVAL);
    check_reads(&f);
    check_stream(&f, UINT64_MAX);
    fixture_free(&f);
}

/* The descriptor of this process's (unlinked) spill file, or -1. */
static int spill_fd(void) {
    DIR *dp = opendir("/proc/self/fd");
    if (!dp) return -1;
    int fd = -1;
    struct dirent *e;
    while (fd < 0 && (e = readdir(dp))) {
        char link[300], target[1024]; /* "/proc/self/fd/" and a d_name */
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = 0;
        if (strstr(target, "afmt-spill-") && strstr(target, "(deleted)")) fd = atoi(e->d_name);
    }
    closedir(dp);
    return fd;
}

/* Spilled bytes go into the file at commit: each spilled block's checksum is checked as it
 * is read back (in one piece or split over several), and a damaged one is AFMT_ECORRUPT
 * naming the spill file, as read-your-writes reports it (it used to be written as is). */
static void test_spill_damage(void **state) {
    (void)state;
    const uint64_t maxes[] = {UINT64_MAX, 777, 1};
    for (size_t m = 0; m < sizeof maxes / sizeof maxes[0]; m++) {
        char *dir = make_dir();
        fixture f = {make(4096, 0, dir, AFMT_CODEC_NONE), NULL, 0, 0};
        for (uint64_t i = 0; i < 20; i++) put(&f, 3000, i, 0);
        assert_int_equal(afmt__alloc_seal(f.a), AFMT_OK);
        uint64_t spilled = afmt__alloc_spilled_bytes(f.a);
        assert_true(spilled > 10000);
        check_stream(&f, maxes[m]); /* intact: passes, whatever the piece size */
        int fd = spill_fd();
        assert_true(fd >= 0);
        /* One byte in the middle of a block that a piece of 777 bytes splits. */
        uint64_t at = spilled / 2 + 5;
        uint8_t b;
        assert_int_equal(pread(fd, &b, 1, (off_t)at), 1);
        b ^= 0x40;
        assert_int_equal(pwrite(fd, &b, 1, (off_t)at), 1);
        uint64_t pos = 0;
        int rc = AFMT_OK;
        while (rc == AFMT_OK) {
            const void *p = NULL;
            uint64_t n = 0;
            rc = afmt__alloc_next_piece(f.a, &pos, maxes[m], &p, &n);
            if (rc == AFMT_OK && n == 0) break;
        }
        assert_int_equal(rc, AFMT_ECORRUPT);
        const char *msg = afmt__alloc_errmsg(f.a);
        if (!strstr(msg, "fails its checksum") || !strstr(msg, dir)) fail_msg("message: %s", msg);
        /* (Split pieces of the damaged block before its end may have been handed out: the
         * commit fails before its superblock, so they stay unreferenced past the end.) */
        fixture_free(&f);
        remove_dir(dir);
    }
}

/* With a pool a block is spilled when it leaves the pool: the missing spill directory
 * shows at a later reserve or at the seal, the same error; sealing keeps failing the same
 * way and the blocks stay readable. */
static void test_pool_spill_dir_missing(void **state) {
    (void)state;
    const char *dir = "/nonexistent-afmt-spill-dir/sub";
    fixture f = {make(4096, 0, dir, AFMT_CODEC_LZ4), NULL, 0, 0};
    int rc = AFMT_OK;
    for (uint64_t i = 0; i < 8 && rc == AFMT_OK; i++) {
        void *dst = NULL;
        uint64_t block = 0, offset = 0;
        rc = afmt__alloc_reserve(f.a, 3000, &dst, &block, &offset);
        if (rc == AFMT_OK) {
            fill(dst, 3000, i, 1);
            f.recs = realloc(f.recs, (f.nrecs + 1) * sizeof *f.recs);
            assert_non_null(f.recs);
            f.recs[f.nrecs++] = (rec){block, offset, 3000, i, 1};
        }
    }
    if (rc == AFMT_OK) rc = afmt__alloc_seal(f.a);
    assert_int_equal(rc, AFMT_EIO);
    assert_non_null(strstr(afmt__alloc_errmsg(f.a), dir));
    assert_int_equal(afmt__alloc_seal(f.a), AFMT_EIO);
    assert_non_null(strstr(afmt__alloc_errmsg(f.a), dir));
    assert_int_equal(afmt__alloc_spilled_bytes(f.a), 0);
    check_reads(&f);
    fixture_free(&f);
}

static int with_pool(void **state) {
    (void)state;
    return afmt__pool_create(&g_pool, 3) == AFMT_OK ? 0 : -1;
}

static int with_pool_defer(void **state) {
    g_defer = 1;
    return with_pool(state);
}

static int without_pool(void **state) {
    (void)state;
    afmt__pool_free(g_pool);
    g_pool = NULL;
    g_defer = 0;
    return 0;
}

/* Deferred fills: refused without a pool or without a reservation just made; with a pool,
 * afmt__alloc_fill_wait leaves every payload written, the open block's included (seen
 * through the reservation's own pointer), and a second fill for one reservation is
 * refused. */
static void test_defer_fill(void **state) {
    (void)state;
    fixture f = {make(4096, 1 << 20, NULL, AFMT_CODEC_LZ4), NULL, 0, 0};
    void *dst;
    uint64_t block, offset;
    fill_arg fa = {100, 1, 1};
    assert_int_equal(afmt__alloc_defer_fill(f.a, fill_later, &fa, sizeof fa), 0);
    assert_int_equal(afmt__alloc_reserve(f.a, 100, &dst, &block, &offset), AFMT_OK);
    int deferred = afmt__alloc_defer_fill(f.a, fill_later, &fa, sizeof fa);
    assert_int_equal(deferred, g_pool != NULL);
    if (!deferred) fill(dst, 100, 1, 1);
    assert_int_equal(afmt__alloc_defer_fill(f.a, fill_later, &fa, sizeof fa), 0);
    f.recs = calloc(1024, sizeof *f.recs);
    assert_non_null(f.recs);
    f.cap = 1024;
    f.recs[f.nrecs++] = (rec){block, offset, 100, 1, 1};
    for (uint64_t i = 0; i < 300; i++) put(&f, 1 + (i * 37) % 3000, i + 7, (int)(i % 3 != 0));
    /* The last payload is in the open block: written once fill_wait returns. */
    assert_int_equal(afmt__alloc_reserve(f.a, 500, &dst, &block, &offset), AFMT_OK);
    fa = (fill_arg){500, 999, 0};
    if (!(g_pool && afmt__alloc_defer_fill(f.a, fill_later, &fa, sizeof fa)))
        fill(dst, 500, 999, 0);
    afmt__alloc_fill_wait(f.a);
    uint8_t want[500];
    fill(want, 500, 999, 0);
    assert_memory_equal(dst, want, 500);
    f.recs[f.nrecs++] = (rec){block, offset, 500, 999, 0};
    check_reads(&f);
    assert_int_equal(afmt__alloc_seal(f.a), AFMT_OK);
    check_reads(&f);
    check_stream(&f, UINT64_MAX);
    fixture_free(&f);
}

#define BOTH(t)                                                                                    \
    cmocka_unit_test(t), cmocka_unit_test_setup_teardown(t, with_pool, without_pool),              \
        cmocka_unit_test_setup_teardown(t, with_pool_defer, without_pool)

/* test_packing, test_large_payload and test_spill_dir_missing look at blocks right after
 * they were sealed: on the caller's thread only (with a pool they may still be in it). */
#define POOL(t) cmocka_unit_test_setup_teardown(t, with_pool, without_pool)
static const struct CMUnitTest tests[] = {
    BOTH(test_spill_damage),
    cmocka_unit_test(test_packing),
    cmocka_unit_test(test_large_payload),
    BOTH(test_incompressible),
    BOTH(test_compressible),
    BOTH(test_spill_budget0),
    BOTH(test_spill_budget10k),
    BOTH(test_next_piece_small),
    BOTH(test_add_stored),
    BOTH(test_reset_reuse),
    cmocka_unit_test(test_spill_dir_missing),
    POOL(test_pool_spill_dir_missing),
    BOTH(test_no_file_left),
    BOTH(test_bounds_and_zero),
    BOTH(test_defer_fill),
};

TU_MAIN("alloc", tests)
