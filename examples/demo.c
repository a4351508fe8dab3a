/*
 * demo.c - a small "simulation" that checkpoints with afmt and a post-processing job that
 * reads the checkpoint back with a different number of ranks.
 *
 *   mpiexec -np 4 demo write FILE    simulate, write two layers (commits), close
 *   mpiexec -np 3 demo read FILE     reopen read-only, list, read and verify everything
 *
 * Any rank count works for either mode. The field is the exact solution of the heat
 * equation u_t = D (u_xx + u_yy + u_zz) on the unit cube with insulated walls (a sum of
 * decaying cosine modes), sampled at cell centres and rounded to 1/1024 K. It is a
 * deterministic function of (i, j, k, t), so the reader recomputes every value and
 * compares bit for bit.
 *
 * Arrays:
 *   temperature  float64 [NX][NY][NZ], chunks 16^3. Ranks own slabs of rows (dim 0)
 *                split as evenly as possible, which does not follow chunk boundaries:
 *                the library merges the chunks that several ranks share at commit.
 *   flux         int32 [NX], one value per row (the heat flux through the row, scaled),
 *                chunks of 16, written in layer 1 only (layer 2 falls through to it).
 *   step         int64 scalar, written by rank 0.
 *
 * Layer 1: step 10, t = T1, every rank writes its slab.
 * Layer 2: step 20, t = T2, only the box HOT_LO..HOT_HI is recomputed and rewritten (a
 *          local solver update), plus the scalar and the attributes "time" (float64, of
 *          the file) and "units" (a string as uint8, of temperature).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mpi.h>

#include "afmt.h"

#define NX    100
#define NY    64
#define NZ    48
#define CHUNK 16
#define DIFF  0.05 /* diffusivity D */
#define STEP1 10
#define STEP2 20
#define DT    0.01
#define T1    (STEP1 * DT)
#define T2    (STEP2 * DT)
#define UNITS "kelvin"

static const uint64_t HOT_LO[3] = {20, 10, 5}; /* box rewritten in layer 2 */
static const uint64_t HOT_HI[3] = {80, 50, 45};

static int g_rank, g_size;

static void die(const afmt_file *f, const char *call, int rc, int line) {
    fprintf(stderr, "demo: rank %d: line %d: %s -> %d (%s): %s\n", g_rank, line, call, rc,
            afmt_strerror(rc), afmt_errmsg(f));
    MPI_Abort(MPI_COMM_WORLD, 1);
}
/* Every afmt call goes through CHECK: on failure, print the detailed message and stop. */
#define CHECK(f, call)                                                                             \
    do {                                                                                           \
        int check_rc_ = (call);                                                                    \
        if (check_rc_ != AFMT_OK) die((f), #call, check_rc_, __LINE__);                            \
    } while (0)

/* Heat-equation solution: T(x,y,z,t) = 300 + sum_m a_m cos(kx pi x) cos(ky pi y)
 * cos(kz pi z) exp(-D pi^2 (kx^2 + ky^2 + kz^2) t). */
static double temperature(uint64_t i, uint64_t j, uint64_t k, double t) {
    static const double modes[3][4] = {{1, 2, 1, 20.0}, {2, 1, 3, 5.0}, {0, 3, 2, 2.5}};
    const double pi = 3.14159265358979323846;
    double x = ((double)i + 0.5) / NX, y = ((double)j + 0.5) / NY, z = ((double)k + 0.5) / NZ;
    double v = 300.0;
    for (int m = 0; m < 3; m++) {
        double kx = modes[m][0], ky = modes[m][1], kz = modes[m][2];
        v += modes[m][3] * cos(kx * pi * x) * cos(ky * pi * y) * cos(kz * pi * z) *
             exp(-DIFF * pi * pi * (kx * kx + ky * ky + kz * kz) * t);
    }
    /* Kept at the sensor resolution of 1/1024 K: the low mantissa bits are zero, which
     * the shuffle filter turns into long runs of zero bytes for the codec. */
    return round(v * 1024.0) / 1024.0;
}

static int in_hot_box(uint64_t i, uint64_t j, uint64_t k) {
    return i >= HOT_LO[0] && i < HOT_HI[0] && j >= HOT_LO[1] && j < HOT_HI[1] && k >= HOT_LO[2] &&
           k < HOT_HI[2];
}

/* The value the checkpoint must hold after both layers. */
static double expected_temperature(uint64_t i, uint64_t j, uint64_t k) {
    return temperature(i, j, k, in_hot_box(i, j, k) ? T2 : T1);
}

static int32_t flux(uint64_t i) {
    return (int32_t)lround(1000.0 * sin(3.14159265358979323846 * ((double)i + 0.5) / NX));
}

/* Rows [*lo, *hi) of rank r of p: an even split, the first n % p ranks get one more. */
static void slab(uint64_t n, int r, int p, uint64_t *lo, uint64_t *hi) {
    uint64_t base = n / (uint64_t)p, extra = n % (uint64_t)p, ur = (uint64_t)r;
    *lo = ur * base + (ur < extra ? ur : extra);
    *hi = *lo + base + (ur < extra ? 1 : 0);
}

/* Rank 0 prints one line of every rank, in rank order. */
static void print_ordered(const char *line) {
    char mine[256] = {0};
    snprintf(mine, sizeof mine, "%s", line);
    char *all = NULL;
    if (g_rank == 0) {
        all = malloc((size_t)g_size * sizeof mine);
        if (!all) MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Gather(mine, (int)sizeof mine, MPI_CHAR, all, (int)sizeof mine, MPI_CHAR, 0,
               MPI_COMM_WORLD);
    if (g_rank == 0) {
        for (int r = 0; r < g_size; r++) printf("  %s\n", all + (size_t)r * sizeof mine);
        fflush(stdout);
        free(all);
    }
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static const char *dtype_name(afmt_dtype t) {
    static const char *names[] = {"bool",   "int8",   "int16",  "int32",   "int64",  "uint8",
                                  "uint16", "uint32", "uint64", "float32", "float64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* ---- write mode --------------------------------------------------------------------- */

/* Writes temperature(t) on the part of this rank's slab that lies in the box [lo, hi);
 * returns the bytes written. */
static uint64_t write_box(afmt_file *f, const uint64_t lo[3], const uint64_t hi[3], double t) {
    uint64_t r0, r1;
    slab(NX, g_rank, g_size, &r0, &r1);
    uint64_t start[3] = {r0 > lo[0] ? r0 : lo[0], lo[1], lo[2]};
    uint64_t end0 = r1 < hi[0] ? r1 : hi[0];
    if (start[0] >= end0) return 0; /* this rank owns no row of the box */
    uint64_t count[3] = {end0 - start[0], hi[1] - lo[1], hi[2] - lo[2]};
    size_t n = (size_t)(count[0] * count[1] * count[2]);
    double *buf = malloc(n * sizeof *buf);
    if (!buf) MPI_Abort(MPI_COMM_WORLD, 1);
    size_t p = 0;
    for (uint64_t i = start[0]; i < start[0] + count[0]; i++)
        for (uint64_t j = start[1]; j < start[1] + count[1]; j++)
            for (uint64_t k = start[2]; k < start[2] + count[2]; k++)
                buf[p++] = temperature(i, j, k, t);
    CHECK(f, afmt_write(f, "temperature", start, count, buf));
    free(buf); /* afmt_write copied it */
    return n * sizeof *buf;
}

static int do_write(const char *path) {
    afmt_opts *opts = NULL;
    afmt_file *f = NULL;
    CHECK(NULL, afmt_opts_create(&opts));
    CHECK(NULL, afmt_opts_set_codec(opts, AFMT_CODEC_ZSTD, 3));
    CHECK(NULL, afmt_opts_set_shuffle(opts, 1));
    CHECK(NULL, afmt_opts_set_block_size(opts, 256 * 1024));
    CHECK(f, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, opts, &f));
    CHECK(NULL, afmt_opts_free(opts));

    const uint64_t shape[3] = {NX, NY, NZ}, chunk[3] = {CHUNK, CHUNK, CHUNK};
    const char *const dims[3] = {"x", "y", "z"};
    const uint64_t fshape[1] = {NX}, fchunk[1] = {CHUNK};
    const char *const fdims[1] = {"x"};
    CHECK(f, afmt_define(f, "temperature", AFMT_FLOAT64, 3, shape, chunk, dims, NULL));
    CHECK(f, afmt_define(f, "flux", AFMT_INT32, 1, fshape, fchunk, fdims, NULL));
    CHECK(f, afmt_define(f, "step", AFMT_INT64, 0, NULL, NULL, NULL, NULL));

    uint64_t r0, r1, raw = 0;
    slab(NX, g_rank, g_size, &r0, &r1);

    /* ---- step 10: the whole field, this rank's slab ---- */
    const uint64_t all_lo[3] = {0, 0, 0};
    raw += write_box(f, all_lo, shape, T1);
    if (r1 > r0) {
        uint64_t start[1] = {r0}, count[1] = {r1 - r0};
        int32_t *fl = malloc((size_t)count[0] * sizeof *fl);
        if (!fl) MPI_Abort(MPI_COMM_WORLD, 1);
        for (uint64_t i = r0; i < r1; i++) fl[i - r0] = flux(i);
        CHECK(f, afmt_write(f, "flux", start, count, fl));
        raw += count[0] * sizeof *fl;
        free(fl);
    }
    if (g_rank == 0) {
        int64_t step = STEP1;
        CHECK(f, afmt_write(f, "step", NULL, NULL, &step));
        raw += sizeof step;
    }
    double now = T1;
    CHECK(f, afmt_set_attr(f, NULL, "time", AFMT_FLOAT64, 1, &now));
    CHECK(f, afmt_commit(f)); /* layer 1 */

    char line[256];
    snprintf(line, sizeof line, "rank %d: rows [%3llu, %3llu) of %d", g_rank,
             (unsigned long long)r0, (unsigned long long)r1, NX);
    if (g_rank == 0)
        printf("demo write: %d ranks, temperature %dx%dx%d float64 in %d^3 chunks\n", g_size, NX,
               NY, NZ, CHUNK);
    print_ordered(line);

    /* ---- step 20: only the hot box changed ---- */
    raw += write_box(f, HOT_LO, HOT_HI, T2);
    if (g_rank == 0) {
        int64_t step = STEP2;
        CHECK(f, afmt_write(f, "step", NULL, NULL, &step));
        raw += sizeof step;
    }
    now = T2;
    CHECK(f, afmt_set_attr(f, NULL, "time", AFMT_FLOAT64, 1, &now));
    CHECK(f, afmt_set_attr(f, "temperature", "units", AFMT_UINT8, strlen(UNITS), UNITS));
    CHECK(f, afmt_commit(f)); /* layer 2 */

    uint64_t layers = 0;
    CHECK(f, afmt_layers(f, &layers));
    CHECK(f, afmt_close(f));

    unsigned long long raw_all = 0, raw_mine = raw;
    MPI_Reduce(&raw_mine, &raw_all, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    if (g_rank == 0) {
        long long size = file_size(path);
        printf("demo write: committed %llu layers (step %d at t=%.2f, step %d at t=%.2f) "
               "to %s\n",
               (unsigned long long)layers, STEP1, T1, STEP2, T2, path);
        printf("demo write: %llu raw bytes written, file %lld bytes, ratio %.2f\n", raw_all, size,
               size > 0 ? (double)raw_all / (double)size : 0.0);
        fflush(stdout);
    }
    return 0;
}

/* ---- read mode ---------------------------------------------------------------------- */

static int do_read(const char *path) {
    afmt_file *f = NULL;
    int bad = 0;
    CHECK(f, afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f));

    uint64_t layers = 0;
    int narrays = 0;
    CHECK(f, afmt_layers(f, &layers));
    CHECK(f, afmt_count(f, &narrays));
    uint64_t logical = 0;
    if (g_rank == 0)
        printf("demo read: %d ranks, %s: %llu layers, %d arrays\n", g_size, path,
               (unsigned long long)layers, narrays);
    for (int a = 0; a < narrays; a++) {
        afmt_info info;
        CHECK(f, afmt_info_at(f, a, &info));
        static const size_t esize[] = {1, 1, 2, 4, 8, 1, 2, 4, 8, 4, 8};
        uint64_t n = 1;
        char shp[512] = "", chk[512] = "";
        size_t sl = 0, cl = 0;
        for (int d = 0; d < info.ndim; d++) {
            n *= info.shape[d];
            sl += (size_t)snprintf(shp + sl, sizeof shp - sl, "%s%s=%llu", d ? ", " : "",
                                   info.dims[d], (unsigned long long)info.shape[d]);
            cl += (size_t)snprintf(chk + cl, sizeof chk - cl, "%s%llu", d ? "x" : "",
                                   (unsigned long long)info.chunk[d]);
            if (sl >= sizeof shp || cl >= sizeof chk) break;
        }
        logical += n * esize[info.dtype];
        if (g_rank == 0)
            printf("  %-12s %-8s [%s]%s%s\n", info.name, dtype_name(info.dtype),
                   info.ndim ? shp : "scalar", info.ndim ? " chunks " : "", chk);
    }
    if (layers != 2 || narrays != 3) {
        if (g_rank == 0) fprintf(stderr, "demo read: expected 2 layers and 3 arrays\n");
        bad = 1;
    }
    afmt_info ti;
    CHECK(f, afmt_inquire(f, "temperature", &ti));
    if (ti.dtype != AFMT_FLOAT64 || ti.ndim != 3 || ti.shape[0] != NX || ti.shape[1] != NY ||
        ti.shape[2] != NZ) {
        fprintf(stderr, "demo read: rank %d: temperature has the wrong descriptor\n", g_rank);
        bad = 1;
    }

    /* Each rank reads its own slab: a different decomposition than the writer's. */
    uint64_t r0, r1;
    slab(NX, g_rank, g_size, &r0, &r1);
    double max_err = 0.0, sum = 0.0;
    uint64_t hash = 0xcbf29ce484222325ULL, mismatches = 0, nvals = 0;
    if (r1 > r0) {
        uint64_t start[3] = {r0, 0, 0}, count[3] = {r1 - r0, NY, NZ};
        nvals = count[0] * NY * NZ;
        double *buf = malloc((size_t)nvals * sizeof *buf);
        if (!buf) MPI_Abort(MPI_COMM_WORLD, 1);
        CHECK(f, afmt_read(f, "temperature", start, count, buf));
        size_t p = 0;
        for (uint64_t i = r0; i < r1; i++)
            for (uint64_t j = 0; j < NY; j++)
                for (uint64_t k = 0; k < NZ; k++, p++) {
                    double want = expected_temperature(i, j, k), err = fabs(buf[p] - want);
                    if (buf[p] != want) {
                        if (mismatches++ < 5)
                            fprintf(stderr,
                                    "demo read: rank %d: temperature[%llu][%llu][%llu] = %.17g,"
                                    " expected %.17g\n",
                                    g_rank, (unsigned long long)i, (unsigned long long)j,
                                    (unsigned long long)k, buf[p], want);
                    }
                    if (err > max_err || isnan(err)) max_err = err;
                    sum += buf[p];
                }
        hash = fnv1a(hash, buf, (size_t)nvals * sizeof *buf);
        free(buf);

        uint64_t fstart[1] = {r0}, fcount[1] = {r1 - r0};
        int32_t *fl = malloc((size_t)fcount[0] * sizeof *fl);
        if (!fl) MPI_Abort(MPI_COMM_WORLD, 1);
        CHECK(f, afmt_read(f, "flux", fstart, fcount, fl));
        for (uint64_t i = r0; i < r1; i++)
            if (fl[i - r0] != flux(i)) {
                if (mismatches++ < 5)
                    fprintf(stderr, "demo read: rank %d: flux[%llu] = %d, expected %d\n", g_rank,
                            (unsigned long long)i, fl[i - r0], flux(i));
            }
        hash = fnv1a(hash, fl, (size_t)fcount[0] * sizeof *fl);
        free(fl);
    }

    /* The scalar and the attributes: every rank may read them (INDEPENDENT calls). */
    int64_t step = -1;
    CHECK(f, afmt_read(f, "step", NULL, NULL, &step));
    double now = 0.0;
    uint64_t n = 1;
    CHECK(f, afmt_get_attr(f, NULL, "time", AFMT_FLOAT64, &n, &now));
    char units[64] = {0};
    uint64_t nu = sizeof units - 1;
    CHECK(f, afmt_get_attr(f, "temperature", "units", AFMT_UINT8, &nu, units));
    if (step != STEP2 || n != 1 || now != T2 || strcmp(units, UNITS) != 0) {
        fprintf(stderr, "demo read: rank %d: step=%lld time=%g units='%s', expected %d %g '%s'\n",
                g_rank, (long long)step, now, units, STEP2, T2, UNITS);
        mismatches++;
    }

    char line[256];
    snprintf(line, sizeof line,
             "rank %d: rows [%3llu, %3llu) %7llu values  sum %.6f  fnv1a %016llx  max|err| %g",
             g_rank, (unsigned long long)r0, (unsigned long long)r1, (unsigned long long)nvals, sum,
             (unsigned long long)hash, max_err);
    print_ordered(line);

    double gmax = 0.0;
    unsigned long long gbad = 0, mybad = mismatches + (uint64_t)bad;
    MPI_Reduce(&max_err, &gmax, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Allreduce(&mybad, &gbad, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    CHECK(f, afmt_close(f));

    if (g_rank == 0) {
        long long size = file_size(path);
        printf("demo read: step %lld, time %.2f, units \"%s\"\n", (long long)step, now, units);
        printf("demo read: global max|err| %g, %llu mismatches\n", gmax, gbad);
        printf("demo read: %llu bytes of array data, file %lld bytes, compression ratio "
               "%.2f\n",
               (unsigned long long)logical, size, size > 0 ? (double)logical / (double)size : 0.0);
        printf("demo read: (the file also keeps the layer-1 values that layer 2 replaced; "
               "afmt_compact drops them)\n");
        printf("demo read: %s\n", gbad ? "FAILED" : "OK: every value matches the simulation");
        fflush(stdout);
    }
    return gbad ? 1 : 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    int rc = 2;
    if (argc == 3 && strcmp(argv[1], "write") == 0)
        rc = do_write(argv[2]);
    else if (argc == 3 && strcmp(argv[1], "read") == 0)
        rc = do_read(argv[2]);
    else if (g_rank == 0)
        fprintf(stderr, "usage: %s write FILE | read FILE   (under mpiexec, any rank count)\n",
                argv[0]);
    MPI_Finalize();
    return rc;
}
