/* test_threads_identical.c - MPI integration: afmt_opts_set_threads changes the speed and
 * nothing else. The same writes with 1, 2, 3 and 4 threads give files equal byte for byte
 * (uuid and commit time fixed by a test hook), with edge chunks, chunks shared between
 * ranks (merged at commit), a scalar, incompressible blocks, spill, several codecs and
 * shuffle on and off; read-your-writes sees blocks still being compressed; reads with n
 * threads return what reads with 1 return, and what was written. A compression failing
 * inside a worker thread is the same error, with the same message, on every rank, as
 * with one thread. n < 0 is AFMT_EINVAL with a message. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/file.h" /* afmt__set_fixed_identity */
#include "index/alloc.h"

#define R0   24 /* rows of a per rank; the last rank has 5 more */
#define COLS 37
#define DEP  29
#define NB   1003 /* elements of b */

typedef struct {
    afmt_codec codec;
    int shuffle;
    uint64_t budget, block;
} variant;

static const variant variants[] = {
    {AFMT_CODEC_LZ4, 1, 512u << 20, 16384},
    {AFMT_CODEC_ZSTD, 0, 512u << 20, 20000},
    {AFMT_CODEC_NONE, 1, 512u << 20, 8192},
    {AFMT_CODEC_LZ4, 0, 48u << 10, 16384}, /* spill: a budget of 3 blocks */
};
#define NVAR ((int)(sizeof variants / sizeof variants[0]))

static uint64_t rows_total(void) {
    return (uint64_t)tu_size() * R0 + 5;
}

/* The rows of a rank r writes: [*r0, *r0 + *nr). */
static void my_rows(int r, uint64_t *r0, uint64_t *nr) {
    *r0 = (uint64_t)r * R0;
    *nr = R0 + (r == tu_size() - 1 ? 5 : 0);
}

/* Expected content of a after both layers (every rank computes all of it). */
static double *expect_a(void) {
    uint64_t n = rows_total() * COLS * DEP;
    double *e = malloc(n * sizeof *e);
    for (uint64_t i = 0; i < n; i++) val(AFMT_FLOAT64, &e[i], i, 1 | SMOOTH);
    for (int r = 0; r < tu_size(); r++) {
        uint64_t r0, nr;
        my_rows(r, &r0, &nr);
        for (uint64_t i = r0 + 2; i < r0 + 11; i++)
            for (uint64_t j = 3; j < 30; j++)
                for (uint64_t k = 0; k < DEP; k++) {
                    uint64_t lin = (i * COLS + j) * DEP + k;
                    val(AFMT_FLOAT64, &e[lin], lin, 2);
                }
    }
    return e;
}

static afmt_opts *make_opts(const variant *v, int threads) {
    afmt_opts *o = NULL;
    if (afmt_opts_create(&o) != AFMT_OK) return NULL;
    if (afmt_opts_set_codec(o, v->codec, 0) != AFMT_OK ||
        afmt_opts_set_shuffle(o, v->shuffle) != AFMT_OK ||
        afmt_opts_set_mem_budget(o, v->budget) != AFMT_OK ||
        afmt_opts_set_block_size(o, v->block) != AFMT_OK ||
        afmt_opts_set_threads(o, threads) != AFMT_OK || afmt__opts_set_backend(o, "posix")) {
        afmt_opts_free(o);
        return NULL;
    }
    return o;
}

/* Writes the test file at path with the given threads: two layers. */
static void write_file(const char *path, const variant *v, int threads, int line) {
    int me = tu_rank();
    afmt_opts *o = make_opts(v, threads);
    if (!o) rec(line, "options for %d threads", threads);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, line);
    afmt_opts_free(o);
    if (!f) return;
    EXPECT(f->threads == threads);
    const uint64_t shape[3] = {rows_total(), COLS, DEP}, chunk[3] = {7, 10, 8};
    const uint64_t bshape[1] = {NB}, bchunk[1] = {100};
    EXPECT_OK_AT(line, f, afmt_define(f, "a", AFMT_FLOAT64, 3, shape, chunk, NULL, NULL));
    EXPECT_OK_AT(line, f, afmt_define(f, "b", AFMT_UINT16, 1, bshape, bchunk, NULL, NULL));
    EXPECT_OK_AT(line, f, afmt_define(f, "s", AFMT_INT32, 0, NULL, NULL, NULL, NULL));
    /* Layer 1: a (smooth: compressible) by row slabs whose edges share chunks with the
     * neighbours; b (hashed: incompressible, stored raw) in pieces of every rank. */
    uint64_t r0, nr;
    my_rows(me, &r0, &nr);
    uint64_t n = nr * COLS * DEP;
    double *buf = malloc(n * sizeof *buf);
    for (uint64_t i = 0; i < n; i++) val(AFMT_FLOAT64, &buf[i], r0 * COLS * DEP + i, 1 | SMOOTH);
    uint64_t st[3] = {r0, 0, 0}, ct[3] = {nr, COLS, DEP};
    EXPECT_OK_AT(line, f, afmt_write(f, "a", st, ct, buf));
    for (uint64_t pos = (uint64_t)me * 37, len = 37; pos < NB; pos += (uint64_t)tu_size() * 37) {
        uint16_t piece[37];
        uint64_t l = len < NB - pos ? len : NB - pos;
        for (uint64_t i = 0; i < l; i++) val(AFMT_UINT16, &piece[i], pos + i, 3);
        EXPECT_OK_AT(line, f, afmt_write(f, "b", &pos, &l, piece));
    }
    if (me == 0) {
        int32_t s = -77;
        EXPECT_OK_AT(line, f, afmt_write(f, "s", NULL, NULL, &s));
    }
    EXPECT_OK_AT(line, f, afmt_commit(f));
    /* Layer 2: a box of each rank's slab, read back before the commit (its blocks may
     * still be in the pool). */
    uint64_t st2[3] = {r0 + 2, 3, 0}, ct2[3] = {9, 27, DEP};
    uint64_t n2 = 9 * 27 * DEP;
    for (uint64_t i = 0; i < 9; i++)
        for (uint64_t j = 0; j < 27; j++)
            for (uint64_t k = 0; k < DEP; k++) {
                uint64_t lin = ((r0 + 2 + i) * COLS + 3 + j) * DEP + k;
                val(AFMT_FLOAT64, &buf[(i * 27 + j) * DEP + k], lin, 2);
            }
    EXPECT_OK_AT(line, f, afmt_write(f, "a", st2, ct2, buf));
    double *back = calloc(n2, sizeof *back);
    EXPECT_OK_AT(line, f, afmt_read(f, "a", st2, ct2, back));
    if (memcmp(back, buf, n2 * sizeof *buf) != 0)
        rec(line, "read-your-writes with %d threads differs", threads);
    free(back);
    free(buf);
    EXPECT_OK_AT(line, f, afmt_close(f));
}

/* Reads all of a, b, s with the given threads into fresh buffers (*out: a, then b, then
 * s; malloc'd). */
static unsigned char *read_all(const char *path, int threads, int line) {
    uint64_t na = rows_total() * COLS * DEP;
    size_t bytes = na * 8 + NB * 2 + 4;
    unsigned char *out = calloc(1, bytes);
    afmt_opts *o = NULL;
    if (afmt_opts_create(&o) == AFMT_OK) afmt_opts_set_threads(o, threads);
    afmt_opts_set_cache_size(o, threads == 2 ? 0 : 1u << 20); /* the decode buffer, the cache */
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, o, line);
    afmt_opts_free(o);
    if (!f) return out;
    const uint64_t st[3] = {0, 0, 0}, ct[3] = {rows_total(), COLS, DEP};
    const uint64_t b0 = 0, bn = NB;
    EXPECT_OK_AT(line, f, afmt_read(f, "a", st, ct, out));
    /* An odd box too, over many partly used blocks: each rank its own. */
    uint64_t bs[3] = {(uint64_t)tu_rank() * 3 + 1, 4, 5}, bc[3] = {13, 31, 17};
    double *box = malloc(13 * 31 * 17 * sizeof *box);
    EXPECT_OK_AT(line, f, afmt_read(f, "a", bs, bc, box));
    const double *all = (const double *)out;
    for (uint64_t i = 0; i < 13; i++)
        for (uint64_t j = 0; j < 31; j++)
            for (uint64_t k = 0; k < 17; k++)
                if (memcmp(&box[(i * 31 + j) * 17 + k],
                           &all[((bs[0] + i) * COLS + bs[1] + j) * DEP + bs[2] + k], 8) != 0) {
                    rec(line, "box read with %d threads differs at %llu,%llu,%llu", threads,
                        (unsigned long long)i, (unsigned long long)j, (unsigned long long)k);
                    i = j = k = 1000;
                }
    free(box);
    EXPECT_OK_AT(line, f, afmt_read(f, "b", &b0, &bn, out + na * 8));
    EXPECT_OK_AT(line, f, afmt_read(f, "s", NULL, NULL, out + na * 8 + NB * 2));
    EXPECT_OK_AT(line, f, afmt_close(f));
    return out;
}

static void check_content(const unsigned char *got, int line) {
    uint64_t na = rows_total() * COLS * DEP;
    double *e = expect_a();
    if (memcmp(got, e, na * 8) != 0) rec(line, "a differs from what was written");
    free(e);
    for (uint64_t i = 0; i < NB; i++) {
        uint16_t w;
        val(AFMT_UINT16, &w, i, 3);
        if (memcmp(got + na * 8 + i * 2, &w, 2) != 0) {
            rec(line, "b[%llu] differs from what was written", (unsigned long long)i);
            break;
        }
    }
    int32_t s;
    memcpy(&s, got + na * 8 + NB * 2, 4);
    EXPECT(s == -77);
}

static void test_identical(void **state) {
    (void)state;
    afmt__set_fixed_identity(1);
    for (int v = 0; v < NVAR; v++) {
        const char *p1 = tu_path(NULL, "thr-1");
        write_file(p1, &variants[v], 1, __LINE__);
        for (int t = 2; t <= 4; t++) {
            const char *pt = tu_path(NULL, "thr-n");
            write_file(pt, &variants[v], t, __LINE__);
            if (!same_bytes(p1, pt))
                rec(__LINE__, "variant %d: the file written with %d threads differs from 1", v, t);
            rm_path(pt);
        }
        /* Reads with n threads return what reads with 1 return, and what was written. */
        unsigned char *one = read_all(p1, 1, __LINE__);
        check_content(one, __LINE__);
        size_t bytes = rows_total() * COLS * DEP * 8 + NB * 2 + 4;
        for (int t = 2; t <= 4; t++) {
            unsigned char *got = read_all(p1, t, __LINE__);
            if (memcmp(got, one, bytes) != 0)
                rec(__LINE__, "variant %d: reading with %d threads differs from 1", v, t);
            free(got);
        }
        free(one);
        rm_path(p1);
    }
    afmt__set_fixed_identity(0);
    done();
}

/* A compression failing with AFMT_ENOMEM on the last rank, in the commit's seal: the
 * same code and message on every rank, with 1 thread and with 3 (the block is compressed
 * by a worker then). The file keeps its first layer. */
static void test_worker_failure(void **state) {
    (void)state;
    char msg[2][AFMT_ERRMSG_MAX];
    int codes[2];
    for (int pass = 0; pass < 2; pass++) {
        int threads = pass ? 3 : 1;
        const char *path = tu_path(NULL, "thr-fail");
        afmt_opts *o = make_opts(&variants[0], threads);
        afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
        afmt_opts_free(o);
        codes[pass] = -1;
        msg[pass][0] = 0;
        if (f) {
            const uint64_t shape[1] = {(uint64_t)tu_size() * 40000}, chunk[1] = {1000};
            EXPECT_OK(f, afmt_define(f, "x", AFMT_FLOAT64, 1, shape, chunk, NULL, NULL));
            EXPECT_OK(f, afmt_commit(f));
            double *buf = malloc(40000 * sizeof *buf);
            for (uint64_t i = 0; i < 40000; i++) val(AFMT_FLOAT64, &buf[i], i, 5 | SMOOTH);
            uint64_t st = (uint64_t)tu_rank() * 40000, ct = 40000;
            EXPECT_OK(f, afmt_write(f, "x", &st, &ct, buf));
            free(buf);
            /* The next block compressed is the one the commit seals. */
            if (tu_rank() == tu_size() - 1) afmt__alloc_fail_compress(1, AFMT_ENOMEM);
            codes[pass] = afmt_commit(f);
            afmt__alloc_fail_compress(0, 0);
            snprintf(msg[pass], sizeof msg[pass], "%s", afmt_errmsg(f));
            EXPECT(codes[pass] == AFMT_ENOMEM);
            if (!strstr(msg[pass], "compressing a block of"))
                rec(__LINE__, "message: %s", msg[pass]);
            /* The same on every rank: compare with rank 0's. */
            char r0[AFMT_ERRMSG_MAX];
            memcpy(r0, msg[pass], sizeof r0);
            MPI_Bcast(r0, (int)sizeof r0, MPI_CHAR, 0, MPI_COMM_WORLD);
            if (strcmp(r0, msg[pass]) != 0)
                rec(__LINE__, "rank 0 says \"%s\", this rank \"%s\"", r0, msg[pass]);
            EXPECT_LAYERS(f, 1);
            afmt_close(f);
        }
        rm_path(path);
    }
    EXPECT(codes[0] == codes[1]);
    /* The same message but for the path (a fresh file per pass). */
    const char *m0 = strstr(msg[0], "): "), *m1 = strstr(msg[1], "): ");
    if (!m0 || !m1 || strcmp(m0, m1) != 0)
        rec(__LINE__, "1 thread: \"%s\"; 3 threads: \"%s\"", msg[0], msg[1]);
    done();
}

static void test_bad_threads(void **state) {
    (void)state;
    afmt_opts *o = NULL;
    assert_int_equal(afmt_opts_create(&o), AFMT_OK);
    assert_int_equal(afmt_opts_set_threads(o, -1), AFMT_EINVAL);
    assert_non_null(strstr(afmt_errmsg(NULL), "afmt_opts_set_threads"));
    assert_int_equal(afmt_opts_set_threads(o, 100000), AFMT_EINVAL);
    assert_int_equal(afmt_opts_set_threads(NULL, 2), AFMT_EINVAL);
    assert_int_equal(afmt_opts_set_threads(o, 0), AFMT_OK);
    /* 0: this rank's share of its node's cores, at least 1. */
    const char *path = tu_path(NULL, "thr-default");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    if (f) {
        EXPECT(f->threads >= 1);
        afmt_close(f);
    }
    afmt_opts_free(o);
    rm_path(path);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_threads),
        cmocka_unit_test(test_identical),
        cmocka_unit_test(test_worker_failure),
    };
    return tu_main(argc, argv, "mpi_threads_identical", tests, sizeof tests / sizeof tests[0]);
}
