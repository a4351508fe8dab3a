/* stencil2d.c - a 2-D heat-equation stencil code that checkpoints and restarts with afmt,
 * as ported from parallel HDF5 in docs/porting-from-hdf5.md. Each rank owns a band of rows
 * of the NX x NY field and keeps it with one ghost cell on every side; the checkpoint is
 * the interior of that ghosted array (afmt_write_box: no packing copy) plus the step. The
 * file is opened with AFMT_CREATE: a missing file is a fresh start, an existing one a
 * restart from its newest layer, on any number of ranks (afmt_read_box into the ghosted
 * array).
 *
 *   mpiexec -n P stencil2d FILE NX NY STEPS EVERY [STOP]
 *
 * Runs to step STEPS, checkpointing every EVERY steps (and at STEPS); STOP: stop after the
 * checkpoint of step STOP, as a job killed by its time limit would. The Jacobi update of
 * each point does not depend on the decomposition, so a run restarted on another rank
 * count ends with the same bits as an uninterrupted one. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "afmt.h"

#define CHECK(f, call)                                                                             \
    do {                                                                                           \
        if ((call) != AFMT_OK) {                                                                   \
            fprintf(stderr, "stencil2d: %s: %s\n", #call, afmt_errmsg(f));                         \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                          \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, np;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &np);
    if (argc < 6) {
        if (rank == 0) fprintf(stderr, "usage: stencil2d FILE NX NY STEPS EVERY [STOP]\n");
        MPI_Finalize();
        return 2;
    }
    const char *path = argv[1];
    uint64_t nx = strtoull(argv[2], NULL, 10), ny = strtoull(argv[3], NULL, 10);
    int64_t steps = atoll(argv[4]), every = atoll(argv[5]), stop = argc > 6 ? atoll(argv[6]) : -1;

    /* This rank's band of rows [x0, x0 + lx), kept as (lx + 2) x (ny + 2) with ghosts. */
    uint64_t x0 = nx * (uint64_t)rank / (uint64_t)np;
    uint64_t lx = nx * (uint64_t)(rank + 1) / (uint64_t)np - x0, w = ny + 2;
    double *u = calloc((size_t)((lx + 2) * w), sizeof(double));
    double *v = calloc((size_t)((lx + 2) * w), sizeof(double));
    uint64_t start[2] = {x0, 0}, count[2] = {lx, ny};
    uint64_t mshape[2] = {lx + 2, w}, mstart[2] = {1, 1}; /* the interior */

    afmt_file *f;
    CHECK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDWR | AFMT_CREATE, NULL, &f));
    uint64_t layers = 0;
    CHECK(f, afmt_layers(f, &layers));
    int64_t step = 0;
    if (layers == 0) { /* a fresh start: a hot square in a cold plate */
        const uint64_t shape[2] = {nx, ny}, chunk[2] = {nx < 64 ? nx : 64, ny};
        const char *dims[2] = {"x", "y"};
        CHECK(f, afmt_define(f, "u", AFMT_FLOAT64, 2, shape, chunk, dims, NULL));
        CHECK(f, afmt_define(f, "step", AFMT_INT64, 0, NULL, NULL, NULL, NULL));
        for (uint64_t i = 0; i < lx; i++)
            for (uint64_t j = 0; j < ny; j++) {
                uint64_t gx = x0 + i;
                int hot = gx > nx / 4 && gx < 3 * nx / 4 && j > ny / 4 && j < 3 * ny / 4;
                u[(i + 1) * w + j + 1] = hot ? 100.0 : 0.0;
            }
    } else { /* a restart, on any rank count: straight into the ghosted array */
        CHECK(f, afmt_read(f, "step", NULL, NULL, &step));
        if (lx > 0) CHECK(f, afmt_read_box(f, "u", start, count, mshape, mstart, u));
        if (rank == 0) printf("restart at step %lld on %d ranks\n", (long long)step, np);
    }

    int up = rank > 0 ? rank - 1 : MPI_PROC_NULL, down = rank < np - 1 ? rank + 1 : MPI_PROC_NULL;
    while (step < steps) {
        /* Halo rows from the neighbours; the plate's edges stay 0. */
        MPI_Sendrecv(u + w, (int)w, MPI_DOUBLE, up, 0, u + (lx + 1) * w, (int)w, MPI_DOUBLE, down,
                     0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Sendrecv(u + lx * w, (int)w, MPI_DOUBLE, down, 1, u, (int)w, MPI_DOUBLE, up, 1,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        for (uint64_t i = 1; i <= lx; i++)
            for (uint64_t j = 1; j <= ny; j++) {
                const double *c = u + i * w + j;
                v[i * w + j] = c[0] + 0.2 * (c[-(int64_t)w] + c[w] + c[-1] + c[1] - 4.0 * c[0]);
            }
        double *t = u;
        u = v;
        v = t;
        step++;
        if (step % every == 0 || step == steps) {
            if (lx > 0) CHECK(f, afmt_write_box(f, "u", start, count, mshape, mstart, u));
            if (rank == 0) CHECK(f, afmt_write(f, "step", NULL, NULL, &step));
            CHECK(f, afmt_commit(f)); /* one layer: the field and its step, atomically */
            if (step == stop) break;
        }
    }
    CHECK(f, afmt_close(f));
    if (rank == 0) printf("stopped at step %lld\n", (long long)step);
    free(u);
    free(v);
    MPI_Finalize();
    return 0;
}
