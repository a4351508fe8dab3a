/*
 * postprocess.c - parallel post-processing of a checkpoint: per-slice statistics of a
 * float64 array, on any rank count (unrelated to the writer's).
 *
 *   mpiexec -n 2 postprocess [--layer ID] [--array NAME] [--csv] [--stride S] FILE
 *
 * The slices are the indices of dimension 0: for slice i, the min, max and mean of the
 * sub-array [i, :, :, ...]. The slices are divided among the ranks in contiguous runs; each
 * rank reads its run (in batches of a few MiB) with afmt_read and computes its slices'
 * statistics; rank 0 gathers them (MPI_Gatherv) and prints a table, then the global min,
 * max, mean and total (sum of all values: the total heat for a temperature field), reduced
 * with MPI_Reduce. A slice's statistics are computed by one rank in a fixed order, so they
 * are the same bits on every rank count; the global total and mean may differ in the last
 * bits between rank counts (MPI_SUM over ranks), min and max never.
 *
 * --layer ID reads the file as it was after the commit of that layer (afmt_open_layer):
 * older checkpoints stay readable until the file is compacted. Without it: the newest.
 * Also printed: the layers, and the file attributes "step" and "time" when present.
 *
 * Exit status: 0 done, 1 error (the afmt message is printed), 2 bad command line.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#include "afmt.h"

#define BATCH_BYTES ((uint64_t)8 << 20) /* read at most this much at a time (>= 1 slice) */

typedef struct {
    const char *file, *array;
    uint64_t layer;
    int have_layer, csv;
    uint64_t stride;
} options;

static int g_rank, g_size;

static void usage(FILE *out) {
    fprintf(out, "usage: mpiexec -n P postprocess [options] FILE\n"
                 "  --layer ID     read the file as of layer ID (default: the newest)\n"
                 "  --array NAME   the float64 array (default temperature)\n"
                 "  --csv          machine-readable output: '# key value' lines, then\n"
                 "                 kind,index,min,max,mean,sum rows (all slices, %%.17g)\n"
                 "  --stride S     print every S-th slice in the table (default 1; the last "
                 "slice always)\n"
                 "exit status: 0 done, 1 error, 2 usage\n");
}

static int parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || *s == '-') return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = (uint64_t)v;
    return 0;
}

/* 0 = ok, -1 = --help, 2 = usage error (printed on rank 0). */
static int parse_args(int argc, char **argv, options *o) {
    *o = (options){.array = "temperature", .stride = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int needs =
            strcmp(a, "--layer") == 0 || strcmp(a, "--array") == 0 || strcmp(a, "--stride") == 0;
        if (needs && i + 1 >= argc) {
            if (g_rank == 0) fprintf(stderr, "postprocess: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return -1;
        if (strcmp(a, "--layer") == 0) {
            if (parse_u64(argv[++i], &o->layer)) goto bad;
            o->have_layer = 1;
        } else if (strcmp(a, "--array") == 0) {
            o->array = argv[++i];
        } else if (strcmp(a, "--stride") == 0) {
            if (parse_u64(argv[++i], &o->stride) || o->stride == 0) goto bad;
        } else if (strcmp(a, "--csv") == 0) {
            o->csv = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            if (g_rank == 0) fprintf(stderr, "postprocess: unknown option '%s' (see --help)\n", a);
            return 2;
        } else if (!o->file) {
            o->file = a;
        } else {
            if (g_rank == 0) fprintf(stderr, "postprocess: one FILE only ('%s'?)\n", a);
            return 2;
        }
        continue;
    bad:
        if (g_rank == 0) fprintf(stderr, "postprocess: bad value '%s' for %s\n", argv[i], a);
        return 2;
    }
    if (!o->file) {
        if (g_rank == 0) usage(stderr);
        return 2;
    }
    return 0;
}

static void report(const afmt_file *f, const char *what, int rc) {
    fprintf(stderr, "postprocess: rank %d: %s: %s: %s\n", g_rank, what, afmt_strerror(rc),
            afmt_errmsg(f));
    fflush(stderr);
}

/* Part r of p of n: [*lo, *lo + *cnt), the first n % p parts one larger. */
static void split(uint64_t n, int r, int p, uint64_t *lo, uint64_t *cnt) {
    uint64_t base = n / (uint64_t)p, extra = n % (uint64_t)p, ur = (uint64_t)r;
    *lo = ur * base + (ur < extra ? ur : extra);
    *cnt = base + (ur < extra ? 1 : 0);
}

/* Statistics of one slice: min, max, sum (in element order). */
typedef struct {
    double min, max, sum;
} slice_stats;

static void stats_of(const double *v, uint64_t n, slice_stats *s) {
    double mn = v[0], mx = v[0], sum = 0.0;
    for (uint64_t i = 0; i < n; i++) {
        if (v[i] < mn) mn = v[i];
        if (v[i] > mx) mx = v[i];
        sum += v[i];
    }
    s->min = mn;
    s->max = mx;
    s->sum = sum;
}

static void print_layer_ids(afmt_file *f, uint64_t layers, const char *sep) {
    for (uint64_t i = 0; i < layers; i++) {
        uint64_t id = 0;
        if (afmt_layer_id(f, i, &id, NULL) != AFMT_OK) break;
        if (layers > 24 && i == 8) { /* long chains: the first 8 and the last 8 */
            printf("%s...", sep);
            i = layers - 9;
            continue;
        }
        printf("%s%llu", i ? sep : "", (unsigned long long)id);
    }
}

static int run(const options *o) {
    afmt_file *f = NULL;
    int rc = o->have_layer ? afmt_open_layer(MPI_COMM_WORLD, o->file, o->layer, NULL, &f)
                           : afmt_open(MPI_COMM_WORLD, o->file, AFMT_RDONLY, NULL, &f);
    if (rc != AFMT_OK) {
        if (g_rank == 0) report(NULL, o->have_layer ? "afmt_open_layer" : "afmt_open", rc);
        return 1;
    }

    /* Metadata: every rank holds it, so these INDEPENDENT calls agree on every rank. */
    uint64_t layers = 0, newest = 0, time_ns = 0;
    afmt_info info;
    rc = afmt_layers(f, &layers);
    if (rc == AFMT_OK && layers > 0) rc = afmt_layer_id(f, layers - 1, &newest, &time_ns);
    if (rc == AFMT_OK) rc = afmt_inquire(f, o->array, &info);
    if (rc != AFMT_OK) {
        if (g_rank == 0) report(f, "reading the file's metadata", rc);
        afmt_close(f);
        return 1;
    }
    if (info.dtype != AFMT_FLOAT64 || info.ndim < 1) {
        if (g_rank == 0)
            fprintf(stderr, "postprocess: %s: '%s' is not a float64 array with dimensions\n",
                    o->file, o->array);
        afmt_close(f);
        return 1;
    }
    int64_t step = 0;
    double now = 0.0;
    uint64_t n1 = 1, n2 = 1;
    int have_step = afmt_get_attr(f, NULL, "step", AFMT_INT64, &n1, &step) == AFMT_OK;
    int have_time = afmt_get_attr(f, NULL, "time", AFMT_FLOAT64, &n2, &now) == AFMT_OK;

    /* This rank's slices and the batches it reads them in. */
    uint64_t nslices = info.shape[0], per_slice = 1;
    for (int a = 1; a < info.ndim; a++) per_slice *= info.shape[a];
    uint64_t s0, ns;
    split(nslices, g_rank, g_size, &s0, &ns);
    uint64_t batch = BATCH_BYTES / (per_slice * sizeof(double));
    if (batch < 1) batch = 1;
    if (batch > ns) batch = ns;
    double *buf = batch ? malloc((size_t)(batch * per_slice) * sizeof *buf) : NULL;
    slice_stats *mine = ns ? malloc((size_t)ns * sizeof *mine) : NULL;
    if ((batch && !buf) || (ns && !mine)) {
        fprintf(stderr, "postprocess: rank %d: out of memory\n", g_rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    double t0 = MPI_Wtime();
    rc = AFMT_OK;
    for (uint64_t s = 0; s < ns && rc == AFMT_OK; s += batch) {
        uint64_t nb = ns - s < batch ? ns - s : batch;
        uint64_t start[AFMT_MAX_NDIM] = {0}, count[AFMT_MAX_NDIM];
        start[0] = s0 + s;
        count[0] = nb;
        for (int a = 1; a < info.ndim; a++) count[a] = info.shape[a];
        rc = afmt_read(f, o->array, start, count, buf);
        for (uint64_t b = 0; b < nb && rc == AFMT_OK; b++)
            stats_of(buf + b * per_slice, per_slice, &mine[s + b]);
    }
    double t_read = MPI_Wtime() - t0;
    if (rc != AFMT_OK) report(f, "afmt_read", rc);
    int bad = rc != AFMT_OK, anybad = 0;
    MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    free(buf);
    if (anybad) {
        free(mine);
        afmt_close(f);
        return 1;
    }

    /* Global statistics, reduced with MPI. */
    double lmin = INFINITY, lmax = -INFINITY, lsum = 0.0;
    for (uint64_t s = 0; s < ns; s++) {
        if (mine[s].min < lmin) lmin = mine[s].min;
        if (mine[s].max > lmax) lmax = mine[s].max;
        lsum += mine[s].sum;
    }
    double gmin = 0, gmax = 0, gsum = 0, tmax = 0;
    MPI_Reduce(&lmin, &gmin, 1, MPI_DOUBLE, MPI_MIN, 0, MPI_COMM_WORLD);
    MPI_Reduce(&lmax, &gmax, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(&lsum, &gsum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    MPI_Reduce(&t_read, &tmax, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);

    /* The per-slice table on rank 0 (3 doubles per slice; int counts: the slice count of
     * a rank times 3 must fit an int, true for any array that fits a rank's memory). */
    int *counts = NULL, *displs = NULL;
    slice_stats *all = NULL;
    if (g_rank == 0) {
        counts = malloc((size_t)g_size * sizeof *counts);
        displs = malloc((size_t)g_size * sizeof *displs);
        all = malloc((size_t)nslices * sizeof *all);
        if (!counts || !displs || !all) MPI_Abort(MPI_COMM_WORLD, 1);
        for (int r = 0; r < g_size; r++) {
            uint64_t lo, cnt;
            split(nslices, r, g_size, &lo, &cnt);
            counts[r] = (int)(cnt * 3);
            displs[r] = (int)(lo * 3);
        }
    }
    MPI_Gatherv(mine, (int)(ns * 3), MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, 0,
                MPI_COMM_WORLD);
    free(mine);

    if (g_rank == 0) {
        double total_points = (double)nslices * (double)per_slice;
        double mean = gsum / total_points;
        char shape[512] = "", chunk[512] = "";
        size_t sl = 0, cl = 0;
        for (int a = 0; a < info.ndim && sl < sizeof shape && cl < sizeof chunk; a++) {
            sl += (size_t)snprintf(shape + sl, sizeof shape - sl, "%s%s=%llu", a ? ", " : "",
                                   info.dims[a], (unsigned long long)info.shape[a]);
            cl += (size_t)snprintf(chunk + cl, sizeof chunk - cl, "%s%llu", a ? "x" : "",
                                   (unsigned long long)info.chunk[a]);
        }
        char when[64] = "?";
        time_t secs = (time_t)(time_ns / 1000000000u);
        struct tm *tm = gmtime(&secs);
        if (tm) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", tm);
        if (o->csv) {
            printf("# file %s\n# ranks %d\n# layers %llu\n# layer %llu\n# layer_ids ", o->file,
                   g_size, (unsigned long long)layers, (unsigned long long)newest);
            print_layer_ids(f, layers, " ");
            printf("\n");
            if (have_step) printf("# step %lld\n", (long long)step);
            if (have_time) printf("# time %.17g\n", now);
            printf("# array %s\n# shape %s\n# chunk %s\n", o->array, shape, chunk);
            printf("kind,index,min,max,mean,sum\n");
            for (uint64_t s = 0; s < nslices; s++)
                printf("slice,%llu,%.17g,%.17g,%.17g,%.17g\n", (unsigned long long)s, all[s].min,
                       all[s].max, all[s].sum / (double)per_slice, all[s].sum);
            printf("global,,%.17g,%.17g,%.17g,%.17g\n", gmin, gmax, mean, gsum);
        } else {
            printf("postprocess: %s, read by %d ranks\n", o->file, g_size);
            printf("  layer %llu (committed %s)%s; layers visible: %llu (ids ",
                   (unsigned long long)newest, when, o->have_layer ? ", as asked" : ", the newest",
                   (unsigned long long)layers);
            print_layer_ids(f, layers, ", ");
            printf(")\n");
            if (have_step || have_time) {
                printf("  attributes:");
                if (have_step) printf(" step %lld", (long long)step);
                if (have_time) printf("%s time %.6g", have_step ? "," : "", now);
                printf("\n");
            }
            printf("  %s: float64 [%s], chunks %s; statistics per slice along %s\n", o->array,
                   shape, chunk, info.dims[0]);
            printf("  %8s %16s %16s %16s\n", info.dims[0], "min", "max", "mean");
            for (uint64_t s = 0; s < nslices; s++)
                if (s % o->stride == 0 || s == nslices - 1)
                    printf("  %8llu %16.6f %16.6f %16.6f\n", (unsigned long long)s, all[s].min,
                           all[s].max, all[s].sum / (double)per_slice);
            printf("  global: min %.6f  max %.6f  mean %.9f  total %.9e (sum over %.0f "
                   "points)\n",
                   gmin, gmax, mean, gsum, total_points);
            double mb = total_points * (double)sizeof(double) / 1e6;
            printf("  read %.2f MB in %.3f s (%.0f MB/s) on %d ranks\n", mb, tmax,
                   tmax > 0 ? mb / tmax : 0.0, g_size);
        }
        fflush(stdout);
        free(all);
        free(counts);
        free(displs);
    }
    rc = afmt_close(f);
    if (rc != AFMT_OK) {
        if (g_rank == 0) report(NULL, "afmt_close", rc);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    options o;
    int rc = parse_args(argc, argv, &o);
    if (rc == -1) {
        if (g_rank == 0) usage(stdout);
        rc = 0;
    } else if (rc == 0) {
        rc = run(&o);
    }
    MPI_Finalize();
    return rc;
}
