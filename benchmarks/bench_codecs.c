/* bench_codecs: compression ratio, write+commit throughput and single-chunk read latency
 * of each codec / level / shuffle / block size, on three float64 fields made by a few
 * steps of a 3-D heat-diffusion stencil (7-point, explicit):
 *   smooth    low-frequency initial temperature plus two Gaussian hot spots, 10 steps;
 *   noisy     the smooth field plus a 10% per-cell perturbation (an integer hash of the
 *             cell's global coordinates), 3 steps: still rough;
 *   constant  1.0 everywhere except one hot cube per rank, 10 steps: outside the hot
 *             spot's reach the values stay exactly 1.0 (about 99% of the cells).
 * Each rank owns a slab [nz, 256, 256] of a global [nz * ranks, 256, 256] array (chunks
 * [4, 64, 64] = 128 KiB, never shared between ranks) and writes it with one afmt_write,
 * then afmt_commit. Timed: barrier, write, commit, barrier. Ratio: raw bytes / bytes of
 * the data blocks (the footer's offset from the trailer minus the 4096-byte superblock).
 * Read: the file is reopened with the block cache off and every rank reads 8 single
 * chunks of its slab; the median per rank, the largest over ranks, is reported.
 *
 *   mpiexec -np 2 bench_codecs [DIR] [MiB per rank] [repetitions]
 *   (defaults: /dev/shm, 32, 5; MiB per rank must be even)
 *
 * Prints one markdown table per field on rank 0 (medians over the repetitions). */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "afmt.h"

#define NY    256
#define NX    256
#define CZ    4
#define CY    64
#define CX    64
#define NREAD 8
#define PI    3.14159265358979323846

typedef struct {
    const char *label;
    afmt_codec codec;
    int level;
} codec_cfg;

static const codec_cfg codecs[] = {
    {"none", AFMT_CODEC_NONE, 0},   {"lz4", AFMT_CODEC_LZ4, 0},     {"lz4 HC 9", AFMT_CODEC_LZ4, 9},
    {"zstd 1", AFMT_CODEC_ZSTD, 1}, {"zstd 3", AFMT_CODEC_ZSTD, 3}, {"zstd 9", AFMT_CODEC_ZSTD, 9},
};
#define NCODEC ((int)(sizeof codecs / sizeof codecs[0]))
static const uint64_t blocks[] = {256u << 10, 4u << 20, 16u << 20};
static const char *block_label[] = {"256 KiB", "4 MiB", "16 MiB"};
#define NBLOCK 3
static const char *field_name[] = {"smooth", "noisy", "constant"};
#define NFIELD 3

static int rank, size;

static void die(const char *what, const char *msg) {
    fprintf(stderr, "bench_codecs: rank %d: %s: %s\n", rank, what, msg);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t hash3(uint64_t z, uint64_t y, uint64_t x) {
    uint64_t h = z * 0x9E3779B97F4A7C15ull ^ y * 0xC2B2AE3D27D4EB4Full ^ x * 0x165667B19E3779F9ull;
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    return h;
}

/* Explicit 7-point heat steps on the rank's slab, zero-flux (copied) boundaries. Written as
 * T + a * (sum of neighbours - 6 T) so that a region of equal values stays bit-identical. */
static void diffuse(double *t, double *tmp, uint64_t nz, int steps) {
    const double a = 0.1;
    for (int s = 0; s < steps; s++) {
        for (uint64_t z = 0; z < nz; z++)
            for (uint64_t y = 0; y < NY; y++)
                for (uint64_t x = 0; x < NX; x++) {
                    uint64_t i = (z * NY + y) * NX + x;
                    double c = t[i];
                    double zm = z ? t[i - NY * NX] : c, zp = z + 1 < nz ? t[i + NY * NX] : c;
                    double ym = y ? t[i - NX] : c, yp = y + 1 < NY ? t[i + NX] : c;
                    double xm = x ? t[i - 1] : c, xp = x + 1 < NX ? t[i + 1] : c;
                    tmp[i] = c + a * ((zm + zp + ym + yp + xm + xp) - 6.0 * c);
                }
        memcpy(t, tmp, sizeof(double) * nz * NY * NX);
    }
}

static void make_field(int kind, double *t, double *tmp, uint64_t nz) {
    uint64_t z0 = nz * (uint64_t)rank, gz = nz * (uint64_t)size;
    for (uint64_t z = 0; z < nz; z++)
        for (uint64_t y = 0; y < NY; y++)
            for (uint64_t x = 0; x < NX; x++) {
                uint64_t i = (z * NY + y) * NX + x;
                double Z = (double)(z0 + z) / (double)gz, Y = (double)y / NY, X = (double)x / NX;
                if (kind == 2) {
                    /* A hot cube of 8^3 cells in the middle of the slab. */
                    int hot = z + 4 >= nz / 2 && z < nz / 2 + 4 && y + 4 >= NY / 2 &&
                              y < NY / 2 + 4 && x + 4 >= NX / 2 && x < NX / 2 + 4;
                    t[i] = hot ? 50.0 : 1.0;
                    continue;
                }
                double v = 300.0 + 20.0 * sin(2.0 * PI * X) * cos(PI * Y) +
                           5.0 * sin(4.0 * PI * Z + 1.0) +
                           40.0 * exp(-((X - 0.3) * (X - 0.3) + (Y - 0.6) * (Y - 0.6)) * 50.0) +
                           25.0 * exp(-((X - 0.7) * (X - 0.7) + (Z - 0.4) * (Z - 0.4)) * 80.0);
                if (kind == 1)
                    v *= 1.0 + 0.1 * ((double)(hash3(z0 + z, y, x) >> 11) * 0x1.0p-53 - 0.5);
                t[i] = v;
            }
    diffuse(t, tmp, nz, kind == 1 ? 3 : 10);
}

/* Bytes of the data blocks: the newest footer's offset (from the 32-byte trailer at the
 * end of the file, docs/format.md section 4) minus the superblock region. */
static uint64_t data_bytes(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) die("open for the trailer", path);
    off_t end = lseek(fd, 0, SEEK_END);
    unsigned char tr[32];
    if (end < 32 || pread(fd, tr, 32, end - 32) != 32 || memcmp(tr + 24, "AFMTTRLR", 8) != 0)
        die("trailer", path);
    close(fd);
    uint64_t off = 0;
    for (int k = 7; k >= 0; k--) off = off << 8 | tr[k];
    return off - 4096;
}

typedef struct {
    double t_write, t_read, ratio;
} result;

static result run(const char *path, const double *data, uint64_t nz, const codec_cfg *c,
                  int shuffle, uint64_t block) {
    result res;
    afmt_opts *o;
    if (afmt_opts_create(&o) != AFMT_OK || afmt_opts_set_codec(o, c->codec, c->level) != AFMT_OK ||
        afmt_opts_set_shuffle(o, shuffle) != AFMT_OK ||
        afmt_opts_set_block_size(o, block) != AFMT_OK)
        die("options", afmt_errmsg(NULL));
    afmt_file *f;
    if (afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, o, &f) != AFMT_OK)
        die("afmt_create", afmt_errmsg(NULL));
    uint64_t shape[3] = {nz * (uint64_t)size, NY, NX}, chunk[3] = {CZ, CY, CX};
    uint64_t start[3] = {nz * (uint64_t)rank, 0, 0}, count[3] = {nz, NY, NX};
    if (afmt_define(f, "T", AFMT_FLOAT64, 3, shape, chunk, NULL, NULL) != AFMT_OK)
        die("afmt_define", afmt_errmsg(f));
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    if (afmt_write(f, "T", start, count, data) != AFMT_OK) die("afmt_write", afmt_errmsg(f));
    if (afmt_commit(f) != AFMT_OK) die("afmt_commit", afmt_errmsg(f));
    MPI_Barrier(MPI_COMM_WORLD);
    res.t_write = MPI_Wtime() - t0;
    if (afmt_close(f) != AFMT_OK) die("afmt_close", afmt_errmsg(NULL));

    double ratio = 0;
    if (rank == 0) ratio = (double)(nz * (uint64_t)size * NY * NX * 8) / (double)data_bytes(path);
    MPI_Bcast(&ratio, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    res.ratio = ratio;

    /* Single-chunk reads with a cold (disabled) block cache: each costs a whole block. */
    if (afmt_opts_set_cache_size(o, 0) != AFMT_OK) die("options", afmt_errmsg(NULL));
    if (afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, o, &f) != AFMT_OK)
        die("afmt_open", afmt_errmsg(NULL));
    double lat[NREAD], buf[CZ * CY * CX];
    uint64_t nzc = nz / CZ, ncz[3] = {CZ, CY, CX};
    for (int r = 0; r < NREAD; r++) {
        uint64_t h = hash3((uint64_t)r, (uint64_t)rank, 7);
        uint64_t s[3] = {start[0] + (h % nzc) * CZ, (h >> 20) % (NY / CY) * CY,
                         (h >> 40) % (NX / CX) * CX};
        double t1 = MPI_Wtime();
        if (afmt_read(f, "T", s, ncz, buf) != AFMT_OK) die("afmt_read", afmt_errmsg(f));
        lat[r] = MPI_Wtime() - t1;
    }
    double mine = median(lat, NREAD), worst = 0;
    MPI_Allreduce(&mine, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    res.t_read = worst;
    if (afmt_close(f) != AFMT_OK) die("afmt_close", afmt_errmsg(NULL));
    afmt_opts_free(o);
    return res;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *dir = argc > 1 ? argv[1] : "/dev/shm";
    uint64_t mib = argc > 2 ? strtoull(argv[2], NULL, 10) : 32;
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    if (mib == 0 || mib % 2 || reps < 1) {
        if (rank == 0) fprintf(stderr, "usage: bench_codecs [DIR] [even MiB per rank] [reps]\n");
        MPI_Finalize();
        return 2;
    }
    uint64_t nz = mib * 2; /* 256 x 256 doubles = 0.5 MiB per z-plane */
    uint64_t n = nz * NY * NX;
    double *data = malloc(sizeof(double) * n), *tmp = malloc(sizeof(double) * n);
    if (!data || !tmp) die("malloc", "out of memory");
    char path[512];
    /* One name for all ranks (rank 0's pid), so that concurrent runs do not collide. */
    int pid = (int)getpid();
    MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
    snprintf(path, sizeof path, "%s/bench-codecs-%d.afmt", dir, pid);
    double raw_mb = (double)(n * 8 * (uint64_t)size) / 1e6;

    if (rank == 0)
        printf("afmt %s, %d ranks, %llu MiB per rank, %d repetitions, files in %s; chunks "
               "[%d, %d, %d] float64 (128 KiB)\n"
               "cells: ratio (raw / stored data bytes) | write+commit MB/s (raw, all ranks) | "
               "ms to read one chunk with the cache off (decompresses its whole block)\n",
               afmt_version(), size, (unsigned long long)mib, reps, dir, CZ, CY, CX);
    enum { NCFG = NCODEC * 2 * NBLOCK };
    for (int fk = 0; fk < NFIELD; fk++) {
        make_field(fk, data, tmp, nz);
        static double tw[NCFG][64], tr[NCFG][64], ra[NCFG];
        int rr = reps > 64 ? 64 : reps;
        /* Repetitions outermost, so that a disturbance hits all configurations alike. */
        for (int r = 0; r < rr; r++)
            for (int ci = 0; ci < NCODEC; ci++)
                for (int sh = 0; sh < 2; sh++)
                    for (int bi = 0; bi < NBLOCK; bi++) {
                        int k = (ci * 2 + sh) * NBLOCK + bi;
                        result res = run(path, data, nz, &codecs[ci], sh, blocks[bi]);
                        tw[k][r] = res.t_write;
                        tr[k][r] = res.t_read;
                        ra[k] = res.ratio;
                    }
        if (rank == 0) {
            printf("\n**%s** field\n\n| codec | shuffle |", field_name[fk]);
            for (int bi = 0; bi < NBLOCK; bi++) printf(" %s blocks |", block_label[bi]);
            printf("\n|---|---|");
            for (int bi = 0; bi < NBLOCK; bi++) printf("---|");
            printf("\n");
            for (int ci = 0; ci < NCODEC; ci++)
                for (int sh = 0; sh < 2; sh++) {
                    printf("| %s | %s |", codecs[ci].label, sh ? "on" : "off");
                    for (int bi = 0; bi < NBLOCK; bi++) {
                        int k = (ci * 2 + sh) * NBLOCK + bi;
                        double w = median(tw[k], rr), rd = median(tr[k], rr);
                        printf(" %.2f / %.0f / %.1f |", ra[k], raw_mb / w, rd * 1e3);
                    }
                    printf("\n");
                }
            fflush(stdout);
        }
    }
    if (rank == 0) remove(path);
    free(data);
    free(tmp);
    MPI_Finalize();
    return 0;
}
