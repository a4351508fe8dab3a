/*
 * c_interop.c - the C half of the Fortran interoperability tests (fortran.interop.*).
 *
 *   mpiexec -n P c_interop write FILE   writes the reference file with the C API
 *   mpiexec -n P c_interop read FILE    checks a file written by f_interop.f90
 *
 * Both programs write the same arrays with the same values (spec below); each reads what
 * the other wrote and compares element by element. The values are given as functions of
 * the Fortran subscripts i1..in (1-based, i1 fastest), which are the C subscripts
 * reversed plus one: that is exactly what the Fortran module must map, so a wrong
 * reversal or offset shows as a wrong value, not only as a wrong shape.
 *
 *   name  dtype    Fortran shape   Fortran chunk   value(i1, i2, ...)
 *   d2    float64  37 x 11         8 x 4           i1 + 100 i2 + 0.5, dims x, y
 *   f2    float32  37 x 11         8 x 4           i1 + 100 i2 + 0.25
 *   i3    int32    5 x 7 x 3       2 x 3 x 2       i1 + 10 i2 + 100 i3 - 500
 *   l1    int64    100             16              i1 * 3000000007 - 5
 *   l4    int64    3 x 4 x 2 x 5   2 x 2 x 2 x 2   i1 + 10 i2 + 100 i3 + 1000 i4 + 2^40
 *   s     float64  scalar          -               3.25
 *   fill  int32    6 x 4           3 x 2           -7 (the fill) except fill(2, 3) = 42
 * Attributes: file "step" int64 17, file "coeffs" float64 {0.5, 1.5, 2.5}, file "title"
 * string "interop test", d2 "units" string "kelvin".
 *
 * Exit status 0 if everything matches on every rank, 1 otherwise (with the first
 * mismatches printed).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "afmt.h"

static int g_rank, g_size, g_errors;

#define CHECK(f, call)                                                                             \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != AFMT_OK) {                                                                      \
            fprintf(stderr, "c_interop[%d]: %s failed: %s: %s\n", g_rank, #call,                   \
                    afmt_strerror(rc_), afmt_errmsg(f));                                           \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                          \
        }                                                                                          \
    } while (0)

static void fail(const char *what) {
    if (g_errors++ < 20) fprintf(stderr, "c_interop[%d]: MISMATCH: %s\n", g_rank, what);
}

typedef struct {
    const char *name;
    afmt_dtype dtype;
    int ndim;
    uint64_t fshape[4], fchunk[4]; /* Fortran order */
} spec;

static const spec SPECS[] = {
    {"d2", AFMT_FLOAT64, 2, {37, 11}, {8, 4}},         {"f2", AFMT_FLOAT32, 2, {37, 11}, {8, 4}},
    {"i3", AFMT_INT32, 3, {5, 7, 3}, {2, 3, 2}},       {"l1", AFMT_INT64, 1, {100}, {16}},
    {"l4", AFMT_INT64, 4, {3, 4, 2, 5}, {2, 2, 2, 2}}, {"s", AFMT_FLOAT64, 0, {0}, {0}},
    {"fill", AFMT_INT32, 2, {6, 4}, {3, 2}},
};
#define NSPECS (sizeof SPECS / sizeof SPECS[0])

/* The value at Fortran subscripts fi[0..ndim-1] (1-based), as a double (exact: every
 * value is an integer or a multiple of 1/4 below 2^53). */
static double value(const spec *s, const int64_t *fi) {
    if (!strcmp(s->name, "d2")) return (double)(fi[0] + 100 * fi[1]) + 0.5;
    if (!strcmp(s->name, "f2")) return (double)(fi[0] + 100 * fi[1]) + 0.25;
    if (!strcmp(s->name, "i3")) return (double)(fi[0] + 10 * fi[1] + 100 * fi[2] - 500);
    if (!strcmp(s->name, "s")) return 3.25;
    if (!strcmp(s->name, "fill")) return (fi[0] == 2 && fi[1] == 3) ? 42.0 : -7.0;
    return 0.0; /* int64 arrays: see ivalue */
}

static int64_t ivalue(const spec *s, const int64_t *fi) {
    if (!strcmp(s->name, "l1")) return fi[0] * INT64_C(3000000007) - 5;
    if (!strcmp(s->name, "l4"))
        return fi[0] + 10 * fi[1] + 100 * fi[2] + 1000 * fi[3] + (INT64_C(1) << 40);
    return 0;
}

static size_t dsize(afmt_dtype t) {
    return t == AFMT_FLOAT64 || t == AFMT_INT64 ? 8 : 4;
}

/* Fortran subscripts of C-order element number lin of the box [cstart, cstart+ccount). */
static void subscripts(const spec *s, const uint64_t *cstart, const uint64_t *ccount, uint64_t lin,
                       int64_t *fi) {
    for (int d = s->ndim - 1; d >= 0; d--) {
        uint64_t c = cstart[d] + lin % ccount[d];
        lin /= ccount[d];
        fi[s->ndim - 1 - d] = (int64_t)c + 1;
    }
}

/* Fills buf (C order) with the spec's values over the box. */
static void fill_box(const spec *s, const uint64_t *cstart, const uint64_t *ccount, uint64_t n,
                     void *buf) {
    int64_t fi[4];
    for (uint64_t k = 0; k < n; k++) {
        subscripts(s, cstart, ccount, k, fi);
        switch (s->dtype) {
        case AFMT_FLOAT64:
            ((double *)buf)[k] = value(s, fi);
            break;
        case AFMT_FLOAT32:
            ((float *)buf)[k] = (float)value(s, fi);
            break;
        case AFMT_INT32:
            ((int32_t *)buf)[k] = (int32_t)value(s, fi);
            break;
        default:
            ((int64_t *)buf)[k] = ivalue(s, fi);
            break;
        }
    }
}

static void c_shape(const spec *s, uint64_t *shape, uint64_t *chunk) {
    for (int d = 0; d < s->ndim; d++) {
        shape[d] = s->fshape[s->ndim - 1 - d];
        chunk[d] = s->fchunk[s->ndim - 1 - d];
    }
}

static int do_write(const char *path) {
    afmt_file *f;
    CHECK(NULL, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, NULL, &f));
    for (size_t a = 0; a < NSPECS; a++) {
        const spec *s = &SPECS[a];
        uint64_t shape[4], chunk[4];
        c_shape(s, shape, chunk);
        const char *dims[2] = {"y", "x"};
        int32_t fillv = -7;
        CHECK(f, afmt_define(f, s->name, s->dtype, s->ndim, s->ndim ? shape : NULL,
                             s->ndim ? chunk : NULL, !strcmp(s->name, "d2") ? dims : NULL,
                             !strcmp(s->name, "fill") ? &fillv : NULL));
        /* Rank r writes the rows (first C dimension) [lo, hi) of a split over the ranks;
         * the scalar and "fill" (one element) come from the last rank. */
        uint64_t start[4] = {0}, count[4];
        memcpy(count, shape, sizeof count);
        if (!strcmp(s->name, "fill")) {
            if (g_rank != g_size - 1) continue;
            start[0] = 2; /* fill(2, 3) -> C [2][1] */
            start[1] = 1;
            count[0] = count[1] = 1;
        } else if (s->ndim == 0) {
            if (g_rank != g_size - 1) continue;
        } else {
            uint64_t lo = shape[0] * (uint64_t)g_rank / (uint64_t)g_size;
            uint64_t hi = shape[0] * (uint64_t)(g_rank + 1) / (uint64_t)g_size;
            if (hi == lo) continue;
            start[0] = lo;
            count[0] = hi - lo;
        }
        uint64_t n = 1;
        for (int d = 0; d < s->ndim; d++) n *= count[d];
        void *buf = malloc((size_t)n * dsize(s->dtype));
        if (!buf) MPI_Abort(MPI_COMM_WORLD, 1);
        fill_box(s, start, count, n, buf);
        CHECK(f, afmt_write(f, s->name, start, count, buf));
        free(buf);
    }
    int64_t step = 17;
    double coeffs[3] = {0.5, 1.5, 2.5};
    CHECK(f, afmt_set_attr(f, NULL, "step", AFMT_INT64, 1, &step));
    CHECK(f, afmt_set_attr(f, NULL, "coeffs", AFMT_FLOAT64, 3, coeffs));
    CHECK(f, afmt_set_attr(f, NULL, "title", AFMT_UINT8, 12, "interop test"));
    CHECK(f, afmt_set_attr(f, "d2", "units", AFMT_UINT8, 6, "kelvin"));
    CHECK(f, afmt_commit(f));
    CHECK(NULL, afmt_close(f));
    return 0;
}

/* Compares the box [start, start+count) of array s in f with the spec. */
static void check_box(afmt_file *f, const spec *s, const uint64_t *start, const uint64_t *count) {
    uint64_t n = 1;
    for (int d = 0; d < s->ndim; d++) n *= count[d];
    size_t es = dsize(s->dtype);
    char *got = malloc((size_t)n * es), *want = malloc((size_t)n * es);
    if (!got || !want) MPI_Abort(MPI_COMM_WORLD, 1);
    CHECK(f, afmt_read(f, s->name, start, count, got));
    fill_box(s, start, count, n, want);
    for (uint64_t k = 0; k < n; k++) {
        if (memcmp(got + k * es, want + k * es, es) != 0) {
            int64_t fi[4] = {0};
            char msg[200];
            subscripts(s, start, count, k, fi);
            snprintf(msg, sizeof msg,
                     "%s(%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ") differs (%g / %" PRId64
                     " expected)",
                     s->name, fi[0], fi[1], fi[2], fi[3], value(s, fi), ivalue(s, fi));
            fail(msg);
        }
    }
    free(got);
    free(want);
}

static void check_attr_str(afmt_file *f, const char *array, const char *key, const char *want) {
    char buf[64] = {0};
    uint64_t n = sizeof buf - 1;
    CHECK(f, afmt_get_attr(f, array, key, AFMT_UINT8, &n, buf));
    if (n != strlen(want) || memcmp(buf, want, n) != 0) fail(key);
}

static int do_read(const char *path) {
    afmt_file *f;
    CHECK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f));
    int count;
    CHECK(f, afmt_count(f, &count));
    if (count != (int)NSPECS) fail("number of arrays");
    for (size_t a = 0; a < NSPECS; a++) {
        const spec *s = &SPECS[a];
        afmt_info info;
        CHECK(f, afmt_inquire(f, s->name, &info));
        uint64_t shape[4], chunk[4];
        c_shape(s, shape, chunk);
        if (info.dtype != s->dtype || info.ndim != s->ndim) {
            fail(s->name);
            continue;
        }
        for (int d = 0; d < s->ndim; d++)
            if (info.shape[d] != shape[d] || info.chunk[d] != chunk[d]) fail(s->name);
        if (!strcmp(s->name, "d2") && (strcmp(info.dims[0], "y") || strcmp(info.dims[1], "x")))
            fail("d2 dimension names");
        /* The whole array, then a box that depends on the rank (not chunk-aligned). */
        uint64_t start[4] = {0};
        check_box(f, s, start, shape);
        if (s->ndim > 0) {
            uint64_t cnt[4];
            for (int d = 0; d < s->ndim; d++) {
                start[d] = (uint64_t)g_rank % shape[d];
                cnt[d] = shape[d] - start[d] > 3 ? shape[d] - start[d] - 1 : shape[d] - start[d];
            }
            check_box(f, s, start, cnt);
        }
    }
    int64_t step = 0;
    double coeffs[4] = {0};
    uint64_t n = 1;
    CHECK(f, afmt_get_attr(f, NULL, "step", AFMT_INT64, &n, &step));
    if (n != 1 || step != 17) fail("attribute step");
    n = 4;
    CHECK(f, afmt_get_attr(f, NULL, "coeffs", AFMT_FLOAT64, &n, coeffs));
    if (n != 3 || coeffs[0] != 0.5 || coeffs[1] != 1.5 || coeffs[2] != 2.5)
        fail("attribute coeffs");
    check_attr_str(f, NULL, "title", "interop test");
    check_attr_str(f, "d2", "units", "kelvin");
    CHECK(NULL, afmt_close(f));
    return 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    if (argc != 3 || (strcmp(argv[1], "write") && strcmp(argv[1], "read"))) {
        if (g_rank == 0) fprintf(stderr, "usage: c_interop write|read FILE\n");
        MPI_Finalize();
        return 2;
    }
    if (!strcmp(argv[1], "write"))
        do_write(argv[2]);
    else
        do_read(argv[2]);
    int errors = g_errors, total = 0;
    MPI_Allreduce(&errors, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (g_rank == 0)
        printf("c_interop %s %s: %s (%d mismatches)\n", argv[1], argv[2], total ? "FAILED" : "ok",
               total);
    MPI_Finalize();
    return total ? 1 : 0;
}
