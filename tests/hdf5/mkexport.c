/* mkexport.c PATH [again] - writes the afmt file the afmt export/import tests check
 * (run_hdf5_tests.sh and check_export.py know its content): odd shapes with edge chunks, a scalar,
 * every dtype, named and default dimension names (dim0 with two lengths), a coordinate variable,
 * array and file attributes (numbers and text). With "again": opens PATH and commits a second layer
 * in which the scalar nsteps is 7. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "afmt.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if ((x) != AFMT_OK) {                                                                      \
            fprintf(stderr, "mkexport: %s: %s\n", #x, afmt_errmsg(f));                             \
            exit(2);                                                                               \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    if (argc != 2 && argc != 3) return 2;
    afmt_file *f = NULL;
    if (argc == 3) {
        if (afmt_open(MPI_COMM_WORLD, argv[1], AFMT_RDWR, NULL, &f) != AFMT_OK) {
            fprintf(stderr, "mkexport: %s\n", afmt_errmsg(NULL));
            return 2;
        }
        int32_t seven = 7;
        CHECK(afmt_write(f, "nsteps", NULL, NULL, &seven));
        CHECK(afmt_commit(f));
        CHECK(afmt_close(f));
        MPI_Finalize();
        return 0;
    }
    if (afmt_create(MPI_COMM_WORLD, argv[1], AFMT_TRUNC, NULL, &f) != AFMT_OK) {
        fprintf(stderr, "mkexport: %s\n", afmt_errmsg(NULL));
        return 2;
    }
    /* x: coordinate variable of dim x (7), float64 */
    uint64_t sx = 7, cx = 3;
    const char *dx[] = {"x"};
    CHECK(afmt_define(f, "x", AFMT_FLOAT64, 1, &sx, &cx, dx, NULL));
    double xv[7];
    for (int i = 0; i < 7; i++) xv[i] = 0.5 * i - 1.25;
    uint64_t z = 0;
    CHECK(afmt_write(f, "x", &z, &sx, xv));
    CHECK(afmt_set_attr(f, "x", "units", AFMT_UINT8, 1, "m"));
    /* temp: float32 [5, 7] over (y, x), chunks 2x3 (edge chunks), fill -1 */
    uint64_t st[2] = {5, 7}, ct[2] = {2, 3}, o2[2] = {0, 0};
    const char *dt[] = {"y", "x"};
    float fillt = -1.0f;
    CHECK(afmt_define(f, "temp", AFMT_FLOAT32, 2, st, ct, dt, &fillt));
    float tv[35];
    for (int i = 0; i < 35; i++) tv[i] = (float)i * 0.1f - 2.0f;
    tv[3] = 1e-40f;          /* a subnormal, bit for bit */
    uint64_t cw[2] = {4, 7}; /* the last row stays the fill value */
    CHECK(afmt_write(f, "temp", o2, cw, tv));
    CHECK(afmt_set_attr(f, "temp", "long_name", AFMT_UINT8, 11, "temperature"));
    double range[2] = {-2.0, 1.5};
    CHECK(afmt_set_attr(f, "temp", "valid_range", AFMT_FLOAT64, 2, range));
    /* count: int64 [3, 4, 5], default dim names (dim0 of length 3) */
    uint64_t sc[3] = {3, 4, 5}, cc[3] = {2, 3, 2}, o3[3] = {0, 0, 0};
    CHECK(afmt_define(f, "count", AFMT_INT64, 3, sc, cc, NULL, NULL));
    int64_t cv[60];
    for (int i = 0; i < 60; i++) cv[i] = (int64_t)i * 1000000007LL - INT64_C(9000000000000000000);
    CHECK(afmt_write(f, "count", o3, sc, cv));
    int32_t step = 42;
    CHECK(afmt_set_attr(f, "count", "step", AFMT_INT32, 1, &step));
    /* small ints over dim0 of length 9 (another length: dim0_9) */
    uint64_t s9 = 9, c9 = 4;
    CHECK(afmt_define(f, "i8", AFMT_INT8, 1, &s9, &c9, NULL, NULL));
    CHECK(afmt_define(f, "u16", AFMT_UINT16, 1, &s9, &c9, NULL, NULL));
    CHECK(afmt_define(f, "u32", AFMT_UINT32, 1, &s9, &c9, NULL, NULL));
    CHECK(afmt_define(f, "u64", AFMT_UINT64, 1, &s9, &c9, NULL, NULL));
    CHECK(afmt_define(f, "i16", AFMT_INT16, 1, &s9, &c9, NULL, NULL));
    CHECK(afmt_define(f, "u8", AFMT_UINT8, 1, &s9, &c9, NULL, NULL));
    int8_t a8[9];
    uint16_t a16[9];
    uint32_t a32[9];
    uint64_t a64[9];
    int16_t b16[9];
    uint8_t b8[9];
    for (int i = 0; i < 9; i++) {
        a8[i] = (int8_t)(i * 31 - 128);
        a16[i] = (uint16_t)(65535 - i * 7000);
        a32[i] = 4294967295u - (uint32_t)i * 123456789u;
        a64[i] = UINT64_MAX - (uint64_t)i * UINT64_C(1234567890123);
        b16[i] = (int16_t)(i * 8000 - 32768);
        b8[i] = (uint8_t)(255 - i);
    }
    CHECK(afmt_write(f, "i8", &z, &s9, a8));
    CHECK(afmt_write(f, "u16", &z, &s9, a16));
    CHECK(afmt_write(f, "u32", &z, &s9, a32));
    CHECK(afmt_write(f, "u64", &z, &s9, a64));
    CHECK(afmt_write(f, "i16", &z, &s9, b16));
    CHECK(afmt_write(f, "u8", &z, &s9, b8));
    /* a scalar int32 */
    CHECK(afmt_define(f, "nsteps", AFMT_INT32, 0, NULL, NULL, NULL, NULL));
    int32_t ns = -123456;
    CHECK(afmt_write(f, "nsteps", NULL, NULL, &ns));
    /* file attributes */
    CHECK(afmt_set_attr(f, NULL, "title", AFMT_UINT8, 8, "test run"));
    float ver[3] = {1.0f, 2.5f, -0.0f};
    CHECK(afmt_set_attr(f, NULL, "version", AFMT_FLOAT32, 3, ver));
    CHECK(afmt_commit(f));
    CHECK(afmt_close(f));
    MPI_Finalize();
    return 0;
}
