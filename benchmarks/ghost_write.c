/* ghost_write.c - writing the interior of a ghosted field (benchmarks/ghost_write.sh): each
 * rank holds N x N float64 plus G ghost cells on every side and writes its interior as
 * rows [rank*N, rank*N + N) of a global [P*N, N] array with chunks [8, N], LZ4 + shuffle:
 *   packed   afmt_write of a contiguous copy of the interior (made before the clock starts)
 *   box      afmt_write_box straight from the ghosted array
 *   rows     one afmt_write per row, from the ghosted array (8 rows fill a chunk)
 *   pack+w   the copy into a contiguous buffer, then afmt_write (what a port without
 *            memory selections does)
 * Each case: the writes and the commit, timed on the slowest rank; cases interleaved over
 * R repetitions; prints each time and the medians.
 *   mpiexec -n P ghost_write DIR [N] [R] */
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "afmt.h"

#define G      2
#define NCASES 4
static const char *names[NCASES] = {"packed", "box", "rows", "pack+w"};

static void die(const char *what, afmt_file *f) {
    fprintf(stderr, "ghost_write: %s: %s\n", what, afmt_errmsg(f));
    MPI_Abort(MPI_COMM_WORLD, 2);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, np;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &np);
    if (argc < 2) {
        if (rank == 0) fprintf(stderr, "usage: ghost_write DIR [N] [R]\n");
        MPI_Finalize();
        return 2;
    }
    uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 4000;
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    uint64_t m = n + 2 * G;
    double *ghosted = malloc(sizeof(double) * (size_t)(m * m));
    double *packed = malloc(sizeof(double) * (size_t)(n * n));
    double *scratch = malloc(sizeof(double) * (size_t)(n * n));
    for (uint64_t i = 0; i < m; i++)
        for (uint64_t j = 0; j < m; j++)
            ghosted[i * m + j] = 300.0 + 10.0 * sin(0.003 * (double)(i + (uint64_t)rank * n)) *
                                             cos(0.002 * (double)j);
    for (uint64_t i = 0; i < n; i++) memcpy(packed + i * n, ghosted + (i + G) * m + G, 8 * n);
    uint64_t shape[2] = {(uint64_t)np * n, n}, chunk[2] = {8, n};
    uint64_t start[2] = {(uint64_t)rank * n, 0}, count[2] = {n, n};
    uint64_t mshape[2] = {m, m}, mstart[2] = {G, G};
    afmt_opts *o;
    afmt_opts_create(&o);
    afmt_opts_set_codec(o, AFMT_CODEC_LZ4, 0);
    afmt_opts_set_shuffle(o, 1);
    double t[NCASES][64];
    char path[4096];
    for (int r = 0; r < reps && r < 64; r++)
        for (int c = 0; c < NCASES; c++) {
            snprintf(path, sizeof path, "%s/ghost-%d.afmt", argv[1], c);
            afmt_file *f;
            if (afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, o, &f) != AFMT_OK)
                die("create", NULL);
            if (afmt_define(f, "u", AFMT_FLOAT64, 2, shape, chunk, NULL, NULL) != AFMT_OK)
                die("define", f);
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            int rc = AFMT_OK;
            if (c == 0) rc = afmt_write(f, "u", start, count, packed);
            if (c == 1) rc = afmt_write_box(f, "u", start, count, mshape, mstart, ghosted);
            for (uint64_t i = 0; c == 2 && i < n && rc == AFMT_OK; i++) {
                uint64_t st[2] = {start[0] + i, 0}, ct[2] = {1, n};
                rc = afmt_write(f, "u", st, ct, ghosted + (i + G) * m + G);
            }
            if (c == 3) {
                for (uint64_t i = 0; i < n; i++)
                    memcpy(scratch + i * n, ghosted + (i + G) * m + G, 8 * n);
                rc = afmt_write(f, "u", start, count, scratch);
            }
            if (rc != AFMT_OK) die("write", f);
            if (afmt_commit(f) != AFMT_OK) die("commit", f);
            double dt = MPI_Wtime() - t0, mx = dt;
            MPI_Allreduce(&dt, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            t[c][r] = mx;
            if (afmt_close(f) != AFMT_OK) die("close", NULL);
        }
    if (reps > 64) reps = 64;
    if (rank == 0) {
        double med[NCASES];
        for (int c = 0; c < NCASES; c++) {
            printf("%-7s", names[c]);
            for (int r = 0; r < reps; r++) printf(" %.4f", t[c][r]);
            qsort(t[c], (size_t)reps, sizeof(double), cmp);
            med[c] = reps % 2 ? t[c][reps / 2] : (t[c][reps / 2 - 1] + t[c][reps / 2]) / 2;
            printf("  median %.4f s, %.2f GB/s\n", med[c], (double)(n * n * 8) * np / med[c] / 1e9);
        }
        printf("box speed / packed speed: %.2f (target >= 0.9)\n", med[0] / med[1]);
        printf("rows time / packed (chunk-aligned) time: %.2f (target <= 1.3)\n", med[2] / med[0]);
        printf("pack+write time / packed time: %.2f\n", med[3] / med[0]);
    }
    for (int c = 0; c < NCASES && rank == 0; c++) {
        snprintf(path, sizeof path, "%s/ghost-%d.afmt", argv[1], c);
        remove(path);
        strcat(path, ".lock");
        remove(path);
    }
    afmt_opts_free(o);
    free(ghosted);
    free(packed);
    free(scratch);
    MPI_Finalize();
    return 0;
}
