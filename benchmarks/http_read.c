/* http_read.c - reads over HTTP against the local file (benchmarks/http_read.sh):
 *   http_read make PATH MIB [none]  writes one float64 array "temperature" of MIB MiB,
 *                                shape [MIB*16, 128, 64], chunks [16, 128, 64] (1 MiB raw),
 *                                LZ4 + shuffle (none: uncompressed, the file is MIB MiB),
 *                                a smooth field; each rank writes its slab
 *   http_read chunk FILE|URL R   R times: open, read the chunk at the array's middle,
 *                                close; prints each time (s) on a line
 *   http_read full FILE|URL R    R times: open, every rank reads its slab of the whole
 *                                array (afmt_read_all), close; prints each time (s, the
 *                                slowest rank) and the GB/s of raw data
 * Times include the open: a remote reader pays for it. */
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "afmt.h"

static int rank, nranks;

static void die(const char *what, afmt_file *f) {
    fprintf(stderr, "http_read: %s: %s\n", what, afmt_errmsg(f));
    MPI_Abort(MPI_COMM_WORLD, 2);
}

static int cmd_make(const char *path, uint64_t mib, int raw) {
    uint64_t shape[3] = {mib * 16, 128, 64}, chunk[3] = {16, 128, 64};
    afmt_opts *o;
    afmt_opts_create(&o);
    afmt_opts_set_codec(o, raw ? AFMT_CODEC_NONE : AFMT_CODEC_LZ4, 0);
    afmt_opts_set_shuffle(o, !raw);
    afmt_file *f;
    if (afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, o, &f) != AFMT_OK) die("create", NULL);
    afmt_opts_free(o);
    const char *dims[3] = {"z", "y", "x"};
    if (afmt_define(f, "temperature", AFMT_FLOAT64, 3, shape, chunk, dims, NULL) != AFMT_OK)
        die("define", f);
    /* Slabs of whole chunks, a few chunks per rank and round (bounded memory); every rank
     * joins every round's commit. */
    uint64_t nchunks = shape[0] / chunk[0], per = 16, plane = shape[1] * shape[2];
    uint64_t step = (uint64_t)nranks * per, rounds = (nchunks + step - 1) / step;
    double *buf = malloc(sizeof(double) * (size_t)(per * chunk[0] * plane));
    for (uint64_t round = 0; round < rounds; round++) {
        uint64_t c = round * step + (uint64_t)rank * per;
        uint64_t n = c >= nchunks ? 0 : nchunks - c < per ? nchunks - c : per;
        uint64_t start[3] = {c * chunk[0], 0, 0}, count[3] = {n * chunk[0], shape[1], shape[2]};
        for (uint64_t z = 0; z < count[0]; z++)
            for (uint64_t i = 0; i < plane; i++)
                buf[z * plane + i] =
                    300.0 +
                    20.0 * sin(0.01 * (double)(start[0] + z)) * cos(0.05 * (double)(i / shape[2])) +
                    1e-3 * (double)(i % shape[2]);
        if (n > 0 && afmt_write(f, "temperature", start, count, buf) != AFMT_OK) die("write", f);
        if (afmt_commit(f) != AFMT_OK) die("commit", f);
    }
    free(buf);
    if (afmt_compact(f) != AFMT_OK) die("compact", f); /* one layer, as a finished run */
    if (afmt_close(f) != AFMT_OK) die("close", NULL);
    return 0;
}

/* One timed read of the open file f, "temperature" described by in: reads, frees its
 * buffer and prints (rank 0) the time since t0 (before the open) and what else it reports. */
typedef void (*read_fn)(afmt_file *f, const afmt_info *in, double t0);

/* reps times: every rank starts together, opens path (the time includes the open),
 * inquires "temperature", reads with rd, closes. */
static int timed_reads(const char *path, int reps, read_fn rd) {
    for (int r = 0; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        afmt_file *f;
        if (afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f) != AFMT_OK) die("open", NULL);
        afmt_info in;
        afmt_inquire(f, "temperature", &in);
        rd(f, &in, t0);
        afmt_close(f);
    }
    return 0;
}

/* The chunk at the array's middle; prints the seconds. */
static void read_chunk(afmt_file *f, const afmt_info *in, double t0) {
    uint64_t start[3] = {in->shape[0] / 2 / in->chunk[0] * in->chunk[0], 0, 0};
    size_t n = (size_t)(in->chunk[0] * in->chunk[1] * in->chunk[2]);
    double *buf = malloc(n * sizeof(double));
    if (afmt_read(f, "temperature", start, in->chunk, buf) != AFMT_OK) die("read", f);
    double t = MPI_Wtime() - t0;
    free(buf);
    if (rank == 0) printf("%.6f\n", t);
}

/* Every rank its slab of whole chunks (afmt_read_all); prints the slowest rank's seconds
 * and the GB/s of raw data. */
static void read_full(afmt_file *f, const afmt_info *in, double t0) {
    uint64_t nch = in->shape[0] / in->chunk[0];
    uint64_t lo = nch * (uint64_t)rank / (uint64_t)nranks * in->chunk[0];
    uint64_t hi = nch * (uint64_t)(rank + 1) / (uint64_t)nranks * in->chunk[0];
    uint64_t start[3] = {lo, 0, 0}, count[3] = {hi - lo, in->shape[1], in->shape[2]};
    size_t n = (size_t)(count[0] * count[1] * count[2]);
    double *buf = malloc(n * sizeof(double) + 8);
    if (afmt_read_all(f, "temperature", start, count, buf) != AFMT_OK) die("read", f);
    double t = MPI_Wtime() - t0, tmax = t;
    MPI_Reduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    free(buf);
    double gb = (double)(in->shape[0] * in->shape[1] * in->shape[2]) * 8.0 / 1e9;
    if (rank == 0) printf("%.6f %.3f\n", tmax, gb / tmax);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    int rc = 2;
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "make") == 0)
        rc = cmd_make(argv[2], strtoull(argv[3], NULL, 10), argc == 5 && !strcmp(argv[4], "none"));
    else if (argc == 4 && strcmp(argv[1], "chunk") == 0)
        rc = timed_reads(argv[2], atoi(argv[3]), read_chunk);
    else if (argc == 4 && strcmp(argv[1], "full") == 0)
        rc = timed_reads(argv[2], atoi(argv[3]), read_full);
    else if (rank == 0)
        fprintf(stderr, "usage: http_read make PATH MIB [none] | chunk FILE R | full FILE R\n");
    MPI_Finalize();
    return rc;
}
