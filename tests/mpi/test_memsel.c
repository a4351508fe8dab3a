/* test_memsel.c - afmt_write_box / afmt_read_box: the interior of a ghosted array per rank
 * (chunk-unaligned slabs, edge chunks, every element size, bools), written and read
 * without packing; the bytes equal those of packed writes, the halo is never written, and
 * bad boxes are AFMT_EINVAL naming the array. Row-by-row writes that complete a chunk seal
 * it at once. On 1-4 ranks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/file.h" /* the staging table: which chunks are sealed (test_row_by_row) */
#include "testutil.h"

#define G 2 /* ghost width */

static size_t esize_of(afmt_dtype t) {
    static const size_t s[] = {1, 1, 2, 4, 8, 1, 2, 4, 8, 4, 8};
    return s[t];
}

/* This rank's slab of dimension 0 of shape, cut without regard to the chunks. */
static void slab(const uint64_t *shape, uint64_t *start, uint64_t *count) {
    uint64_t n = shape[0], r = (uint64_t)tu_rank(), p = (uint64_t)tu_size();
    start[0] = n * r / p;
    count[0] = n * (r + 1) / p - start[0];
}

/* The value of global element (i, j[, k]) as bytes; bools 0/1. */
static void value(afmt_dtype t, uint64_t lin, void *dst) {
    tu_value(dst, esize_of(t), lin, 77);
    if (t == AFMT_BOOL) *(uint8_t *)dst = (uint8_t)(lin % 3 == 0);
}

/* A ghosted 3-D field: the slab with G ghost layers on every side; ghosts hold 0xEE. */
static void check_array(afmt_dtype t, const uint64_t *shape, const uint64_t *chunk) {
    const char *path = tu_path(NULL, "memsel");
    size_t es = esize_of(t);
    uint64_t start[3] = {0, 0, 0}, count[3] = {0, shape[1], shape[2]};
    slab(shape, start, count);
    uint64_t mshape[3] = {count[0] + 2 * G, shape[1] + 2 * G, shape[2] + 2 * G};
    uint64_t mstart[3] = {G, G, G};
    size_t mn = (size_t)(mshape[0] * mshape[1] * mshape[2]);
    uint8_t *ghosted = malloc(mn * es), *back = malloc(mn * es);
    uint8_t *packed = malloc((size_t)(count[0] * count[1] * count[2]) * es + 1);
    memset(ghosted, 0xEE, mn * es);
    for (uint64_t i = 0; i < count[0]; i++)
        for (uint64_t j = 0; j < count[1]; j++)
            for (uint64_t k = 0; k < count[2]; k++) {
                uint64_t lin = ((start[0] + i) * shape[1] + j) * shape[2] + k;
                uint64_t m = ((i + G) * mshape[1] + j + G) * mshape[2] + k + G;
                value(t, lin, ghosted + m * es);
                memcpy(packed + ((i * count[1] + j) * count[2] + k) * es, ghosted + m * es, es);
            }
    afmt_file *f = NULL;
    TU_OK(NULL, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, NULL, &f));
    TU_OK(f, afmt_define(f, "box", t, 3, shape, chunk, NULL, NULL));
    TU_OK(f, afmt_define(f, "packed", t, 3, shape, chunk, NULL, NULL));
    if (count[0] > 0) {
        TU_OK(f, afmt_write_box(f, "box", start, count, mshape, mstart, ghosted));
        TU_OK(f, afmt_write(f, "packed", start, count, packed));
        /* Read-your-writes before the commit, into a ghosted buffer: the halo untouched. */
        memset(back, 0xEE, mn * es);
        TU_OK(f, afmt_read_box(f, "box", start, count, mshape, mstart, back));
        assert_memory_equal(back, ghosted, mn * es);
    }
    TU_OK(f, afmt_commit(f));
    TU_OK(f, afmt_close(f));

    /* Reopened: the whole array, both ways, equal and as written. */
    TU_OK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f));
    size_t all = (size_t)(shape[0] * shape[1] * shape[2]) * es;
    uint8_t *a = malloc(all), *b = malloc(all);
    uint64_t zero[3] = {0, 0, 0};
    TU_OK(f, afmt_read(f, "box", zero, shape, a));
    TU_OK(f, afmt_read(f, "packed", zero, shape, b));
    assert_memory_equal(a, b, all);
    for (uint64_t lin = 0; lin < shape[0] * shape[1] * shape[2]; lin += 7) {
        uint8_t v[8];
        value(t, lin, v);
        assert_memory_equal(a + lin * es, v, es);
    }
    if (count[0] > 0) {
        memset(back, 0xEE, mn * es);
        TU_OK(f, afmt_read_box(f, "box", start, count, mshape, mstart, back));
        assert_memory_equal(back, ghosted, mn * es);
        /* An inner box of the slab, placed at another spot of a bigger buffer. */
        uint64_t s2[3] = {start[0], 1, 2}, c2[3] = {count[0], shape[1] - 2, shape[2] - 3};
        uint64_t ms2[3] = {count[0] + 3, shape[1] + 1, shape[2] + 5}, mo2[3] = {3, 0, 4};
        size_t n2 = (size_t)(ms2[0] * ms2[1] * ms2[2]) * es;
        uint8_t *buf2 = malloc(n2);
        memset(buf2, 0x5A, n2);
        TU_OK(f, afmt_read_box(f, "packed", s2, c2, ms2, mo2, buf2));
        for (uint64_t i = 0; i < ms2[0]; i++)
            for (uint64_t j = 0; j < ms2[1]; j++)
                for (uint64_t k = 0; k < ms2[2]; k++) {
                    const uint8_t *got = buf2 + ((i * ms2[1] + j) * ms2[2] + k) * es;
                    int in = i >= mo2[0] && i < mo2[0] + c2[0] && j >= mo2[1] &&
                             j < mo2[1] + c2[1] && k >= mo2[2] && k < mo2[2] + c2[2];
                    if (in) {
                        uint64_t gi = s2[0] + i - mo2[0], gj = s2[1] + j - mo2[1];
                        uint64_t gk = s2[2] + k - mo2[2];
                        uint8_t v[8];
                        value(t, (gi * shape[1] + gj) * shape[2] + gk, v);
                        assert_memory_equal(got, v, es);
                    } else {
                        for (size_t e = 0; e < es; e++) assert_int_equal(got[e], 0x5A);
                    }
                }
        free(buf2);
    }
    TU_OK(f, afmt_close(f));
    free(a);
    free(b);
    free(ghosted);
    free(back);
    free(packed);
    tu_remove(path);
}

static void test_float64(void **state) {
    (void)state;
    const uint64_t shape[3] = {23, 17, 11}, chunk[3] = {4, 8, 11};
    check_array(AFMT_FLOAT64, shape, chunk);
}

static void test_small_types(void **state) {
    (void)state;
    const uint64_t shape[3] = {13, 9, 7}, chunk[3] = {5, 4, 3};
    check_array(AFMT_INT16, shape, chunk);
    check_array(AFMT_UINT8, shape, chunk);
    check_array(AFMT_BOOL, shape, chunk);
    check_array(AFMT_FLOAT32, shape, chunk);
}

/* Whole chunks only (the slab of each rank a multiple of the chunk where it can be). */
static void test_chunk_aligned(void **state) {
    (void)state;
    const uint64_t shape[3] = {48, 16, 16}, chunk[3] = {4, 16, 16};
    check_array(AFMT_INT32, shape, chunk);
}

/* Scalars ignore the memory arguments; bad boxes are EINVAL naming the array. */
static void test_errors(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "memsel-err");
    afmt_file *f = NULL;
    TU_OK(NULL, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, NULL, &f));
    const uint64_t shape[2] = {8, 8};
    TU_OK(f, afmt_define(f, "a", AFMT_INT32, 2, shape, NULL, NULL, NULL));
    TU_OK(f, afmt_define(f, "s", AFMT_FLOAT64, 0, NULL, NULL, NULL, NULL));
    int32_t buf[100] = {0};
    uint64_t st[2] = {0, 0}, ct[2] = {4, 4}, ms[2] = {6, 6}, mo[2] = {1, 1};
    assert_int_equal(afmt_write_box(f, "a", st, ct, NULL, mo, buf), AFMT_EINVAL);
    assert_non_null(strstr(afmt_errmsg(f), "mem_shape is NULL"));
    assert_int_equal(afmt_read_box(f, "a", st, ct, ms, NULL, buf), AFMT_EINVAL);
    assert_non_null(strstr(afmt_errmsg(f), "mem_start is NULL"));
    uint64_t mo_bad[2] = {1, 3};
    assert_int_equal(afmt_write_box(f, "a", st, ct, ms, mo_bad, buf), AFMT_EINVAL);
    assert_non_null(strstr(afmt_errmsg(f), "afmt_write_box(\"a\"): mem_start[1]=3 + count[1]=4 "
                                           "exceeds mem_shape[1]=6"));
    assert_int_equal(afmt_read_box(f, "nope", st, ct, ms, mo, buf), AFMT_ENOTFOUND);
    double x = 2.5, y = 0;
    if (tu_rank() == 0) TU_OK(f, afmt_write_box(f, "s", NULL, NULL, NULL, NULL, &x));
    TU_OK(f, afmt_commit(f));
    TU_OK(f, afmt_read_box(f, "s", NULL, NULL, NULL, NULL, &y));
    assert_true(y == 2.5);
    TU_OK(f, afmt_close(f));
    tu_remove(path);
}

/* 1 if this rank's staged entry of chunk idx of array name is a sealed (whole) chunk. */
static int sealed(afmt_file *f, const char *name, uint64_t idx) {
    afmt_array *arr;
    if (afmt__lookup(f, "test", name, &arr) != AFMT_OK) return -1;
    const afmt_staged *s = afmt__staging_find(&f->staging, arr->d.id, idx);
    return s ? s->full : -1;
}

/* Rows written one by one into 8-row chunks: each chunk is sealed by the write that
 * completes it (not at the commit); an overlapping rewrite leaves a chunk to the merge;
 * the values read back are the last written. Each rank writes its own chunk rows. */
static void test_row_by_row(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "memsel-rows");
    const uint64_t rows = 8 * (uint64_t)tu_size() * 2, cols = 37;
    const uint64_t shape[2] = {rows, cols}, chunk[2] = {8, cols};
    afmt_file *f = NULL;
    TU_OK(NULL, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, NULL, &f));
    TU_OK(f, afmt_define(f, "u", AFMT_FLOAT64, 2, shape, chunk, NULL, NULL));
    double row[37];
    uint64_t c0 = 2 * (uint64_t)tu_rank(); /* this rank's two chunks */
    for (uint64_t c = c0; c < c0 + 2; c++)
        for (uint64_t r = 0; r < 8; r++) {
            uint64_t i = c * 8 + r, st[2] = {i, 0}, ct[2] = {1, cols};
            for (uint64_t j = 0; j < cols; j++) row[j] = (double)(i * 1000 + j);
            if (c == c0 + 1 && r == 3) { /* rewritten: overlaps row 3, the chunk stays partial */
                TU_OK(f, afmt_write(f, "u", st, ct, row));
                for (uint64_t j = 0; j < cols; j++) row[j] = -1.0;
            }
            TU_OK(f, afmt_write(f, "u", st, ct, row));
            assert_int_equal(sealed(f, "u", c), r == 7 && c == c0 ? 1 : 0);
        }
    TU_OK(f, afmt_commit(f));
    double *all = malloc(sizeof(double) * (size_t)(rows * cols));
    uint64_t zero[2] = {0, 0};
    TU_OK(f, afmt_read(f, "u", zero, shape, all));
    for (uint64_t i = 0; i < rows; i++)
        for (uint64_t j = 0; j < cols; j++) {
            int rewritten = i % 16 == 8 + 3;
            assert_true(all[i * cols + j] == (rewritten ? -1.0 : (double)(i * 1000 + j)));
        }
    free(all);
    TU_OK(f, afmt_close(f));
    tu_remove(path);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float64),       cmocka_unit_test(test_small_types),
        cmocka_unit_test(test_chunk_aligned), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_row_by_row),
    };
    return tu_main(argc, argv, "memsel", tests, sizeof tests / sizeof tests[0]);
}
