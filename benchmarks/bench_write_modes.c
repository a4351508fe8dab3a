/* bench_write_modes: commit time with independent (MPI_File_write_at, the default)
 * versus collective (hint afmt_collective_write=true) data writes, or with
 * --data-aggregation every rank writing its own blocks (afmt_data_aggregation=rank, the
 * default) versus the node leader writing its node's (=node), alternating the two modes
 * in one run and reporting medians of write+commit and of the commit alone (the slowest
 * rank's).
 *   mpiexec -np 2 bench_write_modes DIR [MiB per rank] [repetitions] [--data-aggregation] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "afmt.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int g_aggregation; /* --data-aggregation: mode 1 is afmt_data_aggregation=node */

/* One create, write, commit, close in mode m (0 or 1); *commit: afmt_commit's time on the
 * slowest rank. Returns write+commit between barriers. */
static double run(const char *path, int m, uint64_t n, const double *data, double *commit) {
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    afmt_opts *o;
    afmt_opts_create(&o);
    MPI_Info info;
    MPI_Info_create(&info);
    if (g_aggregation)
        MPI_Info_set(info, "afmt_data_aggregation", m ? "node" : "rank");
    else
        MPI_Info_set(info, "afmt_collective_write", m ? "true" : "false");
    afmt_opts_set_mpi_info(o, info);
    MPI_Info_free(&info);
    afmt_file *f;
    if (afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, o, &f) != AFMT_OK) {
        fprintf(stderr, "create: %s\n", afmt_errmsg(NULL));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    uint64_t shape = n * (uint64_t)size, chunk = 131072, start = n * (uint64_t)rank;
    afmt_define(f, "field", AFMT_FLOAT64, 1, &shape, &chunk, NULL, NULL);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    afmt_write(f, "field", &start, &n, data);
    double c0 = MPI_Wtime();
    int rc = afmt_commit(f);
    double c = MPI_Wtime() - c0;
    MPI_Barrier(MPI_COMM_WORLD);
    double t = MPI_Wtime() - t0;
    MPI_Allreduce(&c, commit, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (rc != AFMT_OK) fprintf(stderr, "commit: %s\n", afmt_errmsg(f));
    afmt_close(f);
    afmt_opts_free(o);
    return t;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc > 1 && !strcmp(argv[argc - 1], "--data-aggregation")) {
        g_aggregation = 1;
        argc--;
    }
    const char *dir = argc > 1 ? argv[1] : "/dev/shm";
    uint64_t mib = argc > 2 ? strtoull(argv[2], NULL, 10) : 64;
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    uint64_t n = mib * 1024 * 1024 / 8;
    double *data = malloc(sizeof(double) * n);
    /* A smooth field with noise in the low bits: compresses about 2x with shuffle+LZ4. */
    for (uint64_t i = 0; i < n; i++)
        data[i] = sin((double)(i + n * (uint64_t)rank) * 1e-4) + (double)(i % 7) * 1e-9;
    char path[512];
    snprintf(path, sizeof path, "%s/bench-write-modes.afmt", dir);
    double *t[2] = {malloc(sizeof(double) * (size_t)reps), malloc(sizeof(double) * (size_t)reps)};
    double *c[2] = {malloc(sizeof(double) * (size_t)reps), malloc(sizeof(double) * (size_t)reps)};
    for (int r = 0; r < reps; r++)
        for (int m = 0; m < 2; m++) t[m][r] = run(path, m, n, data, &c[m][r]);
    if (rank == 0) {
        static const char *names[2][2] = {{"independent", "collective"}, {"agg=rank", "agg=node"}};
        for (int m = 0; m < 2; m++) {
            qsort(t[m], (size_t)reps, sizeof(double), cmp);
            qsort(c[m], (size_t)reps, sizeof(double), cmp);
            printf("%-12s ranks=%d MiB/rank=%llu reps=%d median=%.3fs min=%.3fs max=%.3fs "
                   "%.2f GB/s raw | commit median=%.3fs min=%.3fs max=%.3fs\n",
                   names[g_aggregation][m], size, (unsigned long long)mib, reps, t[m][reps / 2],
                   t[m][0], t[m][reps - 1], (double)mib * size * 1048576.0 / t[m][reps / 2] / 1e9,
                   c[m][reps / 2], c[m][0], c[m][reps - 1]);
        }
        remove(path);
    }
    for (int m = 0; m < 2; m++) {
        free(t[m]);
        free(c[m]);
    }
    free(data);
    MPI_Finalize();
    return 0;
}
