/* bench_lossy.c - lossy and lossless codecs per array (docs/performance.md, "Lossy
 * compression"): for a smooth, a noisy and heat3d's field (3-D float64, each rank a slab,
 * chunks of 16^3), every setting writes one array (afmt_define_with + afmt_write +
 * afmt_commit + afmt_close) and reads it back (afmt_open + afmt_read), REPS times, the
 * settings interleaved. Reported: the ratio (raw bytes / the file's growth), the max and
 * RMS error over every value (all ranks) and whether the bound holds on every value
 * (checked, not sampled), and write and read throughput (medians, raw MB/s over all
 * ranks). The codec alone in the same run: each rank compresses its own chunks with the
 * ZFP C API (zfp_compress per chunk, the same fields afmt makes) and decompresses them.
 *
 *   mpiexec -n 2 bench_lossy [-m MiB per rank] [-r REPS] [-d DIR] [-s SETTING] [-f FIELD]
 * (-s and -f: only the setting or field whose name starts with the text, e.g. -s "zfp acc";
 * -D DIR: rank 0 also writes its slab of each field to DIR/FIELD.f64, raw doubles, for
 * the zfp command-line tool: benchmarks/lossy.sh).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>
#include <zfp.h>

#include "afmt.h"

#define C 16 /* chunk edge */

typedef struct {
    const char *name;
    int zfp_mode; /* 0: not ZFP */
    double rel;   /* ZFP accuracy: the bound as a fraction of the field's range */
    int keepbits; /* bit rounding */
    int codec;    /* lossless codec (-1: handle default LZ4) */
    int shuffle;
} setting;

static const setting settings[] = {
    {"lz4+shuffle", 0, 0, 0, AFMT_CODEC_LZ4, 1},
    {"zstd+shuffle", 0, 0, 0, AFMT_CODEC_ZSTD, 1},
    {"zfp acc 1e-2", AFMT_ZFP_ACCURACY, 1e-2, 0, -1, 0},
    {"zfp acc 1e-4", AFMT_ZFP_ACCURACY, 1e-4, 0, -1, 0},
    {"zfp acc 1e-6", AFMT_ZFP_ACCURACY, 1e-6, 0, -1, 0},
    {"zfp reversible", AFMT_ZFP_REVERSIBLE, 0, 0, -1, 0},
    {"bitround 10+zstd", 0, 0, 10, AFMT_CODEC_ZSTD, 1},
    {"bitround 16+zstd", 0, 0, 16, AFMT_CODEC_ZSTD, 1},
    {"bitround 23+zstd", 0, 0, 23, AFMT_CODEC_ZSTD, 1},
};
#define NSET ((int)(sizeof settings / sizeof settings[0]))

static int rank, nranks;
static uint64_t n0, n1, n2, r0, nr; /* global shape, my rows */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what, int rc) {
    fprintf(stderr, "bench_lossy: rank %d: %s -> %d: %s\n", rank, what, rc, afmt_errmsg(NULL));
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static unsigned long long rng = 88172645463325252ull;
static double urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* Field f at global (i, j, k). */
static double value(int f, uint64_t i, uint64_t j, uint64_t k) {
    double x = (double)i / (double)n0, y = (double)j / (double)n1, z = (double)k / (double)n2;
    if (f == 2) { /* heat3d's initial condition: a wall at 300 K and three hot spots */
        static const double s[3][5] = {{0.30, 0.35, 0.40, 200.0, 0.10},
                                       {0.70, 0.60, 0.55, 150.0, 0.08},
                                       {0.45, 0.75, 0.25, 100.0, 0.12}};
        double v = 300.0;
        for (int h = 0; h < 3; h++) {
            double d = (x - s[h][0]) * (x - s[h][0]) + (y - s[h][1]) * (y - s[h][1]) +
                       (z - s[h][2]) * (z - s[h][2]);
            v += s[h][3] * exp(-d / (2 * s[h][4] * s[h][4]));
        }
        return v;
    }
    double v = sin(6.28 * x) * cos(9.42 * y) + 0.5 * sin(12.56 * z);
    return f == 1 ? v + 0.01 * (urand() - 0.5) : v;
}

static double median(double *v, int n) {
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (v[j] < v[i]) {
                double t = v[i];
                v[i] = v[j];
                v[j] = t;
            }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long long fsize(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/* One write and read of setting s on field data: times, bytes, errors. */
static void run_one(const char *path, const setting *s, double range, const double *data,
                    double *back, double *tw, double *tr, long long *bytes, double *maxe,
                    double *rms, int *holds) {
    afmt_file *f = NULL;
    afmt_array_opts *ao = NULL;
    int rc;
    const uint64_t shape[3] = {n0, n1, n2}, chunk[3] = {C, C, C};
    const uint64_t st[3] = {r0, 0, 0}, ct[3] = {nr, n1, n2};
    if ((rc = afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, NULL, &f))) die("afmt_create", rc);
    afmt_array_opts_create(&ao);
    if (s->zfp_mode) afmt_array_opts_set_zfp(ao, (afmt_zfp_mode)s->zfp_mode, s->rel * range);
    if (s->keepbits) afmt_array_opts_set_bitround(ao, s->keepbits);
    if (s->codec >= 0) afmt_array_opts_set_codec(ao, (afmt_codec)s->codec, 0);
    if (!s->zfp_mode) afmt_array_opts_set_shuffle(ao, s->shuffle);
    if ((rc = afmt_define_with(f, "t", AFMT_FLOAT64, 3, shape, chunk, NULL, NULL, ao)))
        die("afmt_define_with", rc);
    afmt_array_opts_free(ao);
    if ((rc = afmt_commit(f))) die("afmt_commit", rc);
    MPI_Barrier(MPI_COMM_WORLD);
    long long base = fsize(path);
    double t0 = now();
    if ((rc = afmt_write(f, "t", st, ct, data))) die("afmt_write", rc);
    if ((rc = afmt_close(f))) die("afmt_close", rc);
    double t1 = now();
    MPI_Barrier(MPI_COMM_WORLD);
    *bytes = fsize(path) - base;
    double t2 = now();
    if ((rc = afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f))) die("afmt_open", rc);
    if ((rc = afmt_read(f, "t", st, ct, back))) die("afmt_read", rc);
    if ((rc = afmt_close(f))) die("afmt_close", rc);
    double t3 = now(), w = t1 - t0, r = t3 - t2;
    MPI_Allreduce(&w, tw, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(&r, tr, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    double m = 0, sq = 0, bound = s->zfp_mode == AFMT_ZFP_ACCURACY ? s->rel * range : 0;
    int ok = 1;
    uint64_t n = nr * n1 * n2;
    for (uint64_t i = 0; i < n; i++) {
        double e = fabs(back[i] - data[i]);
        if (e > m) m = e;
        sq += e * e;
        if (s->zfp_mode == AFMT_ZFP_ACCURACY && !(e <= bound)) ok = 0;
        if (s->keepbits && !(e <= ldexp(fabs(data[i]), -s->keepbits - 1))) ok = 0;
        if (!s->zfp_mode && !s->keepbits && back[i] != data[i]) ok = 0;
        if (s->zfp_mode == AFMT_ZFP_REVERSIBLE && back[i] != data[i]) ok = 0;
    }
    MPI_Allreduce(&m, maxe, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &sq, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&ok, holds, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    *rms = sqrt(sq / (double)(n0 * n1 * n2));
}

/* The codec alone: this rank's chunks, each gathered and compressed with ZFP's C API
 * (accuracy tol, or reversible when tol is 0), then decompressed. Times: max over ranks. */
static void codec_alone(const double *data, double tol, double *tc, double *td) {
    double *chunk = malloc(C * C * C * 8);
    size_t cap = C * C * C * 8 * 2 + 1024;
    unsigned char *buf = malloc(cap);
    double tcomp = 0, tdec = 0;
    for (uint64_t i0 = 0; i0 < nr; i0 += C)
        for (uint64_t j0 = 0; j0 < n1; j0 += C)
            for (uint64_t k0 = 0; k0 < n2; k0 += C) {
                uint64_t ei = nr - i0 < C ? nr - i0 : C, ej = n1 - j0 < C ? n1 - j0 : C,
                         ek = n2 - k0 < C ? n2 - k0 : C;
                double t0 = now();
                for (uint64_t i = 0; i < ei; i++)
                    for (uint64_t j = 0; j < ej; j++)
                        memcpy(chunk + (i * ej + j) * ek, data + ((i0 + i) * n1 + j0 + j) * n2 + k0,
                               ek * 8);
                zfp_field *fl = zfp_field_3d(chunk, zfp_type_double, ek, ej, ei);
                bitstream *bs = stream_open(buf, cap);
                zfp_stream *zs = zfp_stream_open(bs);
                if (tol > 0)
                    zfp_stream_set_accuracy(zs, tol);
                else
                    zfp_stream_set_reversible(zs);
                zfp_write_header(zs, fl, ZFP_HEADER_FULL);
                size_t n = zfp_compress(zs, fl);
                double t1 = now();
                zfp_stream_rewind(zs);
                zfp_field *f2 = zfp_field_alloc();
                zfp_read_header(zs, f2, ZFP_HEADER_FULL);
                zfp_field_set_pointer(f2, chunk);
                if (!n || !zfp_decompress(zs, f2)) die("zfp alone", -1);
                double t2 = now();
                tcomp += t1 - t0;
                tdec += t2 - t1;
                zfp_field_free(f2);
                zfp_field_free(fl);
                zfp_stream_close(zs);
                stream_close(bs);
            }
    MPI_Allreduce(&tcomp, tc, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(&tdec, td, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    free(chunk);
    free(buf);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    int mib = 16, reps = 5, opt;
    const char *dir = "/dev/shm", *only_set = "", *only_field = "", *dump = NULL;
    while ((opt = getopt(argc, argv, "m:r:d:s:f:D:")) != -1) {
        if (opt == 'D') dump = optarg;
        if (opt == 's') only_set = optarg;
        if (opt == 'f') only_field = optarg;
        if (opt == 'm') mib = atoi(optarg);
        if (opt == 'r') reps = atoi(optarg);
        if (opt == 'd') dir = optarg;
    }
    /* n1 = n2 = 128; rows per rank from the size. */
    n1 = n2 = 128;
    nr = (uint64_t)mib * 1024 * 1024 / (8 * n1 * n2);
    n0 = nr * (uint64_t)nranks;
    r0 = nr * (uint64_t)rank;
    uint64_t n = nr * n1 * n2;
    double *data = malloc(n * 8), *back = malloc(n * 8);
    char path[4096];
    snprintf(path, sizeof path, "%s/bench-lossy-%d.afmt", dir, (int)getpid());
    MPI_Bcast(path, sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);
    double raw_mb = (double)(n0 * n1 * n2 * 8) / 1e6;
    if (rank == 0)
        printf("# bench_lossy: %d ranks, %d MiB per rank (%llux%llux%llu float64, chunks %d^3), "
               "%d reps, %s\n",
               nranks, mib, (unsigned long long)n0, (unsigned long long)n1, (unsigned long long)n2,
               C, reps, dir);
    static const char *fields[] = {"smooth", "noisy", "heat3d"};
    for (int fi = 0; fi < 3; fi++) {
        if (strncmp(fields[fi], only_field, strlen(only_field)) != 0) continue;
        rng = 88172645463325252ull + (unsigned long long)rank;
        double lo = 1e300, hi = -1e300;
        for (uint64_t i = 0; i < nr; i++)
            for (uint64_t j = 0; j < n1; j++)
                for (uint64_t k = 0; k < n2; k++) {
                    double v = value(fi, r0 + i, j, k);
                    data[(i * n1 + j) * n2 + k] = v;
                    if (v < lo) lo = v;
                    if (v > hi) hi = v;
                }
        MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        double range = hi - lo;
        if (dump && rank == 0) {
            char dp[4200];
            snprintf(dp, sizeof dp, "%s/%s.f64", dump, fields[fi]);
            FILE *fp = fopen(dp, "wb");
            if (!fp || fwrite(data, 8, n, fp) != n) die("writing the dump", -1);
            fclose(fp);
            printf("# dumped %s: %llux%llux%llu doubles, range %.17g\n", dp, (unsigned long long)nr,
                   (unsigned long long)n1, (unsigned long long)n2, range);
        }
        double tw[NSET][64], tr[NSET][64], maxe[NSET], rms[NSET];
        long long bytes[NSET];
        int holds[NSET];
        for (int r = 0; r < reps && r < 64; r++)
            for (int s = 0; s < NSET; s++)
                if (!strncmp(settings[s].name, only_set, strlen(only_set)))
                    run_one(path, &settings[s], range, data, back, &tw[s][r], &tr[s][r], &bytes[s],
                            &maxe[s], &rms[s], &holds[s]);
        if (rank == 0) {
            printf("\n## field %s (range %.4g)\n", fields[fi], range);
            printf("%-18s %8s %11s %11s %6s %10s %10s\n", "setting", "ratio", "max err", "rms err",
                   "bound", "write MB/s", "read MB/s");
        }
        for (int s = 0; s < NSET; s++) {
            if (strncmp(settings[s].name, only_set, strlen(only_set)) != 0) continue;
            double w = median(tw[s], reps < 64 ? reps : 64),
                   rd = median(tr[s], reps < 64 ? reps : 64);
            if (rank == 0)
                printf("%-18s %8.2f %11.3g %11.3g %6s %10.0f %10.0f\n", settings[s].name,
                       raw_mb * 1e6 / (double)bytes[s], maxe[s], rms[s],
                       holds[s] ? "holds" : "BROKEN", raw_mb / w, raw_mb / rd);
        }
        static const double tols[] = {1e-2, 1e-4, 1e-6, 0};
        for (int t = 0; t < 4 && (!*only_set || !strncmp(only_set, "zfp", 3)); t++) {
            double c[64], d[64];
            for (int r = 0; r < reps && r < 64; r++)
                codec_alone(data, tols[t] * range, &c[r], &d[r]);
            double cm = median(c, reps < 64 ? reps : 64), dm = median(d, reps < 64 ? reps : 64);
            if (rank == 0)
                printf("codec alone: zfp %-14s compress %8.0f MB/s  decompress %8.0f MB/s\n",
                       t < 3 ? (t == 0   ? "acc 1e-2"
                                : t == 1 ? "acc 1e-4"
                                         : "acc 1e-6")
                             : "reversible",
                       raw_mb / cm, raw_mb / dm);
        }
    }
    if (rank == 0) unlink(path);
    free(data);
    free(back);
    MPI_Finalize();
    return 0;
}
