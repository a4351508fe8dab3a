/* test_autochunk.c - MPI integration: afmt_define with chunk NULL chooses the chunk shape
 * (docs/api.md afmt_define; grid.h afmt__grid_auto_chunk).
 *  - The shapes chosen, as afmt_inquire reports them on every rank, before and after the
 *    commit and reopened: float64 [6, 300, 1000] (14.4 MB) gets [1, 262, 1000] (whole rows,
 *    a slice of 262 of the 300 rows: the last chunk of each plane is truncated), int32
 *    [3000000] gets [524288] (2 MiB), uint8 [64, 64] (4 KiB) stays one chunk, a scalar has
 *    none; afmt_define_with with NULL options the same.
 *  - Data written by every rank in slabs that cut through chunks reads back equal, after the
 *    commit and reopened on every rank, on fewer ranks and on one. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned long long ull;

static void expect_chunk(afmt_file *f, const char *name, int ndim, const uint64_t *want, int line) {
    afmt_info info;
    memset(&info, 0, sizeof info);
    int rc = afmt_inquire(f, name, &info);
    if (rc != AFMT_OK) {
        rec(line, "afmt_inquire(%s) -> %d: %s", name, rc, afmt_errmsg(f));
        return;
    }
    if (info.ndim != ndim) rec(line, "%s: ndim %d, want %d", name, info.ndim, ndim);
    for (int d = 0; d < ndim && d < info.ndim; d++)
        if (info.chunk[d] != want[d])
            rec(line, "%s: chunk[%d] = %llu, want %llu", name, d, (ull)info.chunk[d], (ull)want[d]);
}

static void expect_chunks(afmt_file *f, int line) {
    static const uint64_t c3[] = {1, 262, 1000}, c1[] = {524288}, cs[] = {64, 64};
    expect_chunk(f, "field", 3, c3, line);
    expect_chunk(f, "ids", 1, c1, line);
    expect_chunk(f, "small", 2, cs, line);
    expect_chunk(f, "with", 3, c3, line);
    expect_chunk(f, "scalar", 0, NULL, line);
}

static void test_auto_roundtrip(void **state) {
    (void)state;
    int size = tu_size();
    const char *path = tu_path(NULL, "autochunk");
    uint64_t s3[] = {6, 300, 1000}, s1[] = {3000000}, ss[] = {64, 64};
    model m[5];
    m_init(&m[0], "field", AFMT_FLOAT64, 3, s3, NULL, NULL);
    m_init(&m[1], "ids", AFMT_INT32, 1, s1, NULL, NULL);
    m_init(&m[2], "small", AFMT_UINT8, 2, ss, NULL, NULL);
    m_init(&m[3], "with", AFMT_FLOAT64, 3, s3, NULL, NULL);
    m_init(&m[4], "scalar", AFMT_INT64, 0, NULL, NULL, NULL);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, AFMT_TRUNC, NULL, __LINE__);
    if (!f) {
        m_free_each(m, 5);
        done();
        return;
    }
    for (int i = 0; i < 5; i++)
        if (i == 3)
            EXPECT_OK(f, afmt_define_with(f, "with", AFMT_FLOAT64, 3, s3, NULL, NULL, NULL, NULL));
        else
            EXPECT_OK(f, m_define(f, &m[i]));
    expect_chunks(f, __LINE__);
    /* Each rank a slab of rows of every plane, cutting through the chunks of 262 rows. */
    for (int r = 0; r < size; r++) {
        uint64_t lo = 300 * (uint64_t)r / (uint64_t)size,
                 hi = 300 * (uint64_t)(r + 1) / (uint64_t)size;
        uint64_t st[] = {0, lo, 0}, ct[] = {6, hi - lo, 1000};
        if (hi > lo) {
            m_write(f, &m[0], r, st, ct, 11, __LINE__);
            m_write(f, &m[3], r, st, ct, 12 | SMOOTH, __LINE__);
        }
        uint64_t a = 3000000 * (uint64_t)r / (uint64_t)size,
                 b = 3000000 * (uint64_t)(r + 1) / (uint64_t)size;
        uint64_t s1s[] = {a}, s1c[] = {b - a};
        if (b > a) m_write(f, &m[1], r, s1s, s1c, 13, __LINE__);
    }
    uint64_t z[] = {0, 0}, q[] = {32, 64};
    m_write(f, &m[2], size - 1, z, q, 14, __LINE__);
    m_write(f, &m[4], 0, NULL, NULL, 15, __LINE__);
    commit_check(f, m, 5, __LINE__);
    expect_chunks(f, __LINE__);
    close_reopen_check(f, path, m, 5, __LINE__);
    afmt_file *g = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
    if (g) {
        expect_chunks(g, __LINE__);
        EXPECT_OK(g, afmt_close(g));
    }
    m_free_each(m, 5);
    rm_path(path);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_roundtrip),
    };
    return tu_main(argc, argv, "mpi_autochunk", tests, sizeof tests / sizeof tests[0]);
}
