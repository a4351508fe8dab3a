/* test_spill.c - MPI integration: the write path under a tiny memory budget. Blocks spill
 * to a file in the spill directory (unlinked at once, so the directory stays empty),
 * read-your-writes works from the spill file before commit, the commit writes the spilled
 * bytes, and a second commit on the same handle reuses the spill file. A spill directory
 * that does not exist makes the write or the commit fail with AFMT_EIO, the commit with the
 * same code on every rank, and leaves the file as the previous commit. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/file.h" /* f->alloc: how many bytes spilled */
#include "index/alloc.h"

/* The array: uint64 [ROWS * nranks][COLS], chunks [CR][CC]; rank r owns rows
 * [r * ROWS, (r+1) * ROWS) = 8 MiB. CR does not divide ROWS, so chunks on the rank
 * boundaries are shared (merged at commit); CC does not divide COLS (edge chunks). */
#define ROWS 512
#define COLS 2048
#define CR   24
#define CC   100
#define KIB  ((uint64_t)1024)

/* Compressible but position-unique values (shuffle + LZ4 shrink them). */
static uint64_t sval(uint64_t i, uint64_t seed) {
    return i * 3 + ((i * 0x9E3779B97F4A7C15ull + seed * 0x632BE59BD9B4E019ull) >> 58) +
           (seed << 48);
}

static void fill_rows(uint64_t *buf, uint64_t r0, uint64_t nrows, uint64_t seed) {
    for (uint64_t r = 0; r < nrows; r++)
        for (uint64_t c = 0; c < COLS; c++) buf[r * COLS + c] = sval((r0 + r) * COLS + c, seed);
}

/* A fresh empty directory of this rank under AFMT_TEST_SCRATCH (/dev/shm). */
static void make_dir(char *out, size_t cap, const char *tag) {
    snprintf(out, cap, "%s/afmt-spill-%s-%d-XXXXXX", AFMT_TEST_SCRATCH, tag, tu_rank());
    if (!mkdtemp(out)) {
        rec(__LINE__, "mkdtemp(%s) failed", out);
        out[0] = 0;
    }
}

/* Entries of dir other than . and .. (-1 if it cannot be read). */
static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* Reads rows [r0, +nrows) and compares with the values of seed (row ranges listed in
 * `other` have seed2 instead). */
static void check_rows(afmt_file *f, uint64_t r0, uint64_t nrows, uint64_t seed, uint64_t o0,
                       uint64_t on, uint64_t seed2, const char *what, int line) {
    uint64_t *got = malloc(sizeof(uint64_t) * nrows * COLS);
    uint64_t st[2] = {r0, 0}, ct[2] = {nrows, COLS};
    int rc = afmt_read(f, "a", st, ct, got);
    if (rc != AFMT_OK) {
        rec(line, "%s: afmt_read rows [%llu, +%llu) -> %d (%s): %s", what, (unsigned long long)r0,
            (unsigned long long)nrows, rc, NSTR(afmt_strerror(rc)), NSTR(afmt_errmsg(f)));
        free(got);
        return;
    }
    uint64_t bad = 0, first = 0;
    for (uint64_t r = 0; r < nrows; r++) {
        uint64_t row = r0 + r, s = (row >= o0 && row < o0 + on) ? seed2 : seed;
        for (uint64_t c = 0; c < COLS; c++)
            if (got[r * COLS + c] != sval(row * COLS + c, s) && bad++ == 0) first = row * COLS + c;
    }
    if (bad)
        rec(line, "%s: %llu of %llu elements differ, first at (%llu, %llu)", what,
            (unsigned long long)bad, (unsigned long long)(nrows * COLS),
            (unsigned long long)(first / COLS), (unsigned long long)(first % COLS));
    free(got);
}

/* One round trip under (budget, codec): each rank writes its 8 MiB in many calls (full
 * chunk bands, the partial bands at the rank boundaries, then one band rewritten), reads
 * its writes back before commit, commits, writes and commits again on the same handle,
 * and every rank reads the whole array back after reopening. */
static void spill_case(uint64_t budget, afmt_codec codec, int line) {
    int rank = tu_rank(), size = tu_size();
    char dir[512];
    make_dir(dir, sizeof dir, "rt");
    afmt_opts *o = NULL;
    afmt_opts_create(&o);
    EXPECT_OK(NULL, afmt_opts_set_block_size(o, 16 * KIB));
    EXPECT_OK(NULL, afmt_opts_set_mem_budget(o, budget));
    EXPECT_OK(NULL, afmt_opts_set_spill_dir(o, dir));
    EXPECT_OK(NULL, afmt_opts_set_codec(o, codec, 0));
    const char *path = tu_path(NULL, "spill");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, line);
    uint64_t rows_total = (uint64_t)ROWS * (uint64_t)size;
    uint64_t shape[2] = {rows_total, COLS}, chunk[2] = {CR, CC};
    if (f) EXPECT_OK(f, afmt_define(f, "a", AFMT_UINT64, 2, shape, chunk, NULL, NULL));

    uint64_t r0 = (uint64_t)rank * ROWS, r1 = r0 + ROWS;
    uint64_t *buf = malloc(sizeof(uint64_t) * CR * COLS);
    /* Bands of whole chunk rows inside [r0, r1), the partial bands at both ends. */
    uint64_t b0 = (r0 + CR - 1) / CR * CR, b1 = r1 / CR * CR, calls = 0;
    for (uint64_t r = r0; f && r < r1;) {
        uint64_t n = r < b0 ? b0 - r : (r < b1 ? CR : r1 - r);
        if (n > r1 - r) n = r1 - r;
        fill_rows(buf, r, n, 1);
        uint64_t st[2] = {r, 0}, ct[2] = {n, COLS};
        EXPECT_OK(f, afmt_write(f, "a", st, ct, buf));
        calls++;
        r += n;
    }
    /* Rewrite one whole band of chunks with seed 2: its old payloads become garbage in the
     * allocator (spilled too), the new ones must win. */
    uint64_t o0 = b0 + CR < b1 ? b0 + CR : b0, on = b0 + CR < b1 ? CR : 0;
    if (f && on) {
        fill_rows(buf, o0, on, 2);
        uint64_t st[2] = {o0, 0}, ct[2] = {on, COLS};
        EXPECT_OK(f, afmt_write(f, "a", st, ct, buf));
    }
    EXPECT(calls > 20);
    if (f) {
        /* Spilled, and yet nothing is visible in the directory (unlinked at once). */
        EXPECT(f->alloc && afmt__alloc_spilled_bytes(f->alloc) > 0);
        if (budget > 0 && f->alloc) EXPECT(afmt__alloc_mem_bytes(f->alloc) <= budget + 64 * KIB);
        EXPECT(dir_entries(dir) == 0);
        check_rows(f, r0, ROWS, 1, o0, on, 2, "read-your-writes before commit", line);
        EXPECT_OK(f, afmt_commit(f));
        EXPECT(dir_entries(dir) == 0);
        check_rows(f, r0, ROWS, 1, o0, on, 2, "after commit", line);
        /* A second commit on the same handle: the spill file was reset and is reused. */
        fill_rows(buf, o0, on ? on : 1, 3);
        uint64_t st[2] = {o0, 0}, ct[2] = {on ? on : 1, COLS};
        EXPECT_OK(f, afmt_write(f, "a", st, ct, buf));
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_OK(f, afmt_close(f));
    }
    free(buf);
    EXPECT(dir_entries(dir) == 0);
    if (dir[0]) rmdir(dir);

    /* Reopen: every rank reads every rank's rows. */
    f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, line);
    if (f) {
        uint64_t layers = 0;
        EXPECT_OK(f, afmt_layers(f, &layers));
        EXPECT(layers == 2);
        for (int q = 0; q < size; q++) {
            uint64_t q0 = (uint64_t)q * ROWS, qb0 = (q0 + CR - 1) / CR * CR;
            uint64_t qb1 = (q0 + ROWS) / CR * CR;
            uint64_t qo0 = qb0 + CR < qb1 ? qb0 + CR : qb0, qon = qb0 + CR < qb1 ? CR : 1;
            check_rows(f, q0, ROWS, 1, qo0, qon, 3, "after reopen", line);
        }
        EXPECT_OK(f, afmt_close(f));
    }
    afmt_opts_free(o);
    rm_path(path);
}

static void test_spill_budget0(void **state) {
    (void)state;
    spill_case(0, AFMT_CODEC_LZ4, __LINE__);
    done();
}

static void test_spill_budget64k(void **state) {
    (void)state;
    spill_case(64 * KIB, AFMT_CODEC_LZ4, __LINE__);
    done();
}

/* Raw blocks (codec none) are read back from the spill file without decompression. */
static void test_spill_budget0_raw(void **state) {
    (void)state;
    spill_case(0, AFMT_CODEC_NONE, __LINE__);
    done();
}

/* Checks that path reads as `layers` layers where [0, nv) of "v" holds v[i] = i + 7 and
 * the rest the fill (0); chunks in [nv, maybe) may hold either, but each all or nothing. */
static void check_v(const char *path, uint64_t want_layers, uint64_t nv, uint64_t maybe,
                    const char *what, int line) {
    afmt_file *g = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, line);
    if (!g) return;
    uint64_t layers = 0, got[4096], st[1] = {0}, ct[1] = {4096};
    EXPECT_OK(g, afmt_layers(g, &layers));
    if (layers != want_layers)
        rec(line, "%s: %llu layers, want %llu", what, (unsigned long long)layers,
            (unsigned long long)want_layers);
    memset(got, 0xff, sizeof got);
    EXPECT_OK(g, afmt_read(g, "v", st, ct, got));
    uint64_t bad = 0;
    for (uint64_t c = 0; c < 2; c++) {
        int all_v = 1, all_fill = 1;
        for (uint64_t i = c * 2048; i < (c + 1) * 2048; i++) {
            all_v &= got[i] == (i < nv || i < maybe ? i + 7 : 0);
            all_fill &= got[i] == (i < nv ? i + 7 : 0);
        }
        if (!all_fill && !(all_v && c * 2048 < maybe)) bad++;
    }
    if (bad)
        rec(line, "%s: \"v\" reads wrong (got[0]=%llu got[9]=%llu got[10]=%llu got[2048]=%llu)",
            what, (unsigned long long)got[0], (unsigned long long)got[9],
            (unsigned long long)got[10], (unsigned long long)got[2048]);
    EXPECT_OK(g, afmt_close(g));
}

/* The last rank's spill directory does not exist (all ranks' with one rank).
 * mode 0: that rank writes two whole chunks, so sealing the first one spills it and the
 * afmt_write fails with EIO; mode 1: it writes one small partial chunk, the write succeeds
 * and the commit fails. Either way the commit returns EIO on every rank and the file is
 * still the first commit (checked through a second, read-only handle).
 * The close commits again: the library then writes the blocks that stayed in memory (the
 * spill, not the block, failed), so the close may succeed; every rank must return the same
 * code, and the file must be either the first commit or the new one, each written chunk
 * whole (mode 0: the chunk whose write failed may read as written or as the fill). */
static void missing_dir_case(int mode) {
    int rank = tu_rank(), size = tu_size(), victim = size - 1;
    char good[512], bad[600];
    make_dir(good, sizeof good, "ok");
    snprintf(bad, sizeof bad, "%s/afmt-spill-missing-%ld-%d/sub", AFMT_TEST_SCRATCH, (long)getpid(),
             rank);
    afmt_opts *o = NULL;
    afmt_opts_create(&o);
    EXPECT_OK(NULL, afmt_opts_set_block_size(o, 16 * KIB));
    EXPECT_OK(NULL, afmt_opts_set_mem_budget(o, 0));
    EXPECT_OK(NULL, afmt_opts_set_spill_dir(o, rank == victim ? bad : good));
    const char *path = tu_path(NULL, "spillbad");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    uint64_t n = 4096 * (uint64_t)size, shape[1] = {n}, chunk[1] = {2048}; /* 16 KiB chunks */
    uint64_t v[4096];
    for (uint64_t i = 0; i < 4096; i++) v[i] = i + 7;
    if (f) {
        EXPECT_OK(f, afmt_define(f, "v", AFMT_UINT64, 1, shape, chunk, NULL, NULL));
        /* The first commit, without spilling anywhere (only metadata). */
        EXPECT_OK(f, afmt_commit(f));
    }
    if (f && rank == victim) {
        uint64_t st[1] = {0}, ct[1] = {mode == 0 ? 4096 : 10};
        if (mode == 0) {
            /* The first chunk fits the open block, the second seals the first: spill. */
            int rc = afmt_write(f, "v", st, ct, v);
            if (rc != AFMT_EIO)
                rec(__LINE__, "afmt_write -> %d (%s), want AFMT_EIO: %s", rc,
                    NSTR(afmt_strerror(rc)), NSTR(afmt_errmsg(f)));
            EXPECT(strstr(afmt_errmsg(f), bad) != NULL);
        } else {
            EXPECT_OK(f, afmt_write(f, "v", st, ct, v));
        }
    }
    if (f) {
        int rc = afmt_commit(f), lo = 0, hi = 0;
        MPI_Allreduce(&rc, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        MPI_Allreduce(&rc, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        if (rc != AFMT_EIO)
            rec(__LINE__, "mode %d: afmt_commit -> %d (%s), want AFMT_EIO: %s", mode, rc,
                NSTR(afmt_strerror(rc)), NSTR(afmt_errmsg(f)));
        EXPECT(lo == hi);
        EXPECT(strstr(afmt_errmsg(f), "spill") != NULL);
        uint64_t layers = 0;
        EXPECT_OK(f, afmt_layers(f, &layers));
        EXPECT(layers == 1);
    }
    /* On disk: still the first commit. */
    check_v(path, 1, 0, 0, "after the failed commit", __LINE__);
    if (f) {
        int rc = afmt_close(f), lo = 0, hi = 0;
        MPI_Allreduce(&rc, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        MPI_Allreduce(&rc, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        EXPECT(lo == hi);
        if (rc != AFMT_OK && rc != AFMT_EIO)
            rec(__LINE__, "mode %d: afmt_close -> %d (%s): %s", mode, rc, NSTR(afmt_strerror(rc)),
                NSTR(afmt_errmsg(NULL)));
        if (rc == AFMT_OK)
            check_v(path, 2, mode == 0 ? 2048 : 10, mode == 0 ? 4096 : 0, "after the close",
                    __LINE__);
        else
            check_v(path, 1, 0, 0, "after the failed close", __LINE__);
    }
    EXPECT(good[0] && dir_entries(good) == 0);
    if (good[0]) rmdir(good);
    afmt_opts_free(o);
    rm_path(path);
}

static void test_spill_dir_missing_write(void **state) {
    (void)state;
    missing_dir_case(0);
    done();
}

static void test_spill_dir_missing_commit(void **state) {
    (void)state;
    missing_dir_case(1);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spill_budget0),
        cmocka_unit_test(test_spill_budget64k),
        cmocka_unit_test(test_spill_budget0_raw),
        cmocka_unit_test(test_spill_dir_missing_write),
        cmocka_unit_test(test_spill_dir_missing_commit),
    };
    return tu_main(argc, argv, "mpi_spill", tests, sizeof tests / sizeof tests[0]);
}
