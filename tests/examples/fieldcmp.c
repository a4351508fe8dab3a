/*
 * fieldcmp.c - serial reference checks for the heat3d and postprocess examples (run on
 * one rank; uses only the public API).
 *
 *   fieldcmp cmp A B          "temperature" and the "step"/"time" attributes of the newest
 *                             layers of A and B: equal bit for bit? (exit 0 yes, 1 no)
 *   fieldcmp evolve A B N     N serial steps of heat3d's scheme from A's field must give
 *                             B's field bit for bit (a reference for the parallel solver)
 *   fieldcmp stats FILE       per-slice statistics, serially, in postprocess --csv's rows
 *   fieldcmp layers FILE      one line per layer: "index id step time" (afmt_open_layer)
 *
 * Exit status: 0 ok / equal, 1 different, 2 error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "afmt.h"

#define ARRAY "temperature"
#define DT    0.125 /* heat3d's dt; the file's "dt" attribute must agree */

typedef struct {
    uint64_t n[3];
    double *v;
    int64_t step;
    double time;
} field;

static int fail(const afmt_file *f, const char *what, int rc) {
    fprintf(stderr, "fieldcmp: %s: %s: %s\n", what, afmt_strerror(rc), afmt_errmsg(f));
    return 2;
}

/* Reads the newest "temperature" (3-D float64) and the step/time attributes of path. */
static int load(const char *path, field *fl) {
    afmt_file *f = NULL;
    int rc = afmt_open(MPI_COMM_SELF, path, AFMT_RDONLY, NULL, &f);
    if (rc != AFMT_OK) return fail(NULL, path, rc);
    afmt_info info;
    rc = afmt_inquire(f, ARRAY, &info);
    if (rc != AFMT_OK) {
        fail(f, path, rc);
        afmt_close(f);
        return 2;
    }
    if (info.dtype != AFMT_FLOAT64 || info.ndim != 3) {
        fprintf(stderr, "fieldcmp: %s: " ARRAY " is not 3-D float64\n", path);
        afmt_close(f);
        return 2;
    }
    uint64_t total = info.shape[0] * info.shape[1] * info.shape[2], one = 1;
    memcpy(fl->n, info.shape, sizeof fl->n);
    fl->v = malloc((size_t)total * sizeof *fl->v);
    if (!fl->v) {
        fprintf(stderr, "fieldcmp: out of memory\n");
        afmt_close(f);
        return 2;
    }
    uint64_t start[3] = {0, 0, 0};
    rc = afmt_read(f, ARRAY, start, info.shape, fl->v);
    if (rc == AFMT_OK) rc = afmt_get_attr(f, NULL, "step", AFMT_INT64, &one, &fl->step);
    one = 1;
    if (rc == AFMT_OK) rc = afmt_get_attr(f, NULL, "time", AFMT_FLOAT64, &one, &fl->time);
    if (rc != AFMT_OK) {
        fail(f, path, rc);
        afmt_close(f);
        free(fl->v);
        fl->v = NULL;
        return 2;
    }
    afmt_close(f);
    return 0;
}

/* 0 if equal bit for bit, 1 (after printing the first differences) otherwise. */
static int compare(const char *na, const field *a, const char *nb, const field *b) {
    if (memcmp(a->n, b->n, sizeof a->n) != 0) {
        printf("fieldcmp: shapes differ: %llux%llux%llu vs %llux%llux%llu\n",
               (unsigned long long)a->n[0], (unsigned long long)a->n[1],
               (unsigned long long)a->n[2], (unsigned long long)b->n[0],
               (unsigned long long)b->n[1], (unsigned long long)b->n[2]);
        return 1;
    }
    uint64_t total = a->n[0] * a->n[1] * a->n[2], ndiff = 0;
    double maxdiff = 0.0;
    for (uint64_t p = 0; p < total; p++) {
        if (memcmp(&a->v[p], &b->v[p], sizeof(double)) == 0) continue;
        double d = a->v[p] > b->v[p] ? a->v[p] - b->v[p] : b->v[p] - a->v[p];
        if (d > maxdiff) maxdiff = d;
        if (ndiff++ < 5) {
            uint64_t k = p % a->n[2], j = p / a->n[2] % a->n[1], i = p / a->n[2] / a->n[1];
            printf("fieldcmp: [%llu][%llu][%llu]: %s %.17g, %s %.17g\n", (unsigned long long)i,
                   (unsigned long long)j, (unsigned long long)k, na, a->v[p], nb, b->v[p]);
        }
    }
    if (ndiff) {
        printf("fieldcmp: %llu of %llu values differ (max |diff| %.3g)\n",
               (unsigned long long)ndiff, (unsigned long long)total, maxdiff);
        return 1;
    }
    printf("fieldcmp: %llu values equal bit for bit\n", (unsigned long long)total);
    return 0;
}

static int cmd_cmp(const char *pa, const char *pb) {
    field a = {0}, b = {0};
    int rc = load(pa, &a);
    if (rc == 0) rc = load(pb, &b);
    if (rc == 0) {
        rc = compare(pa, &a, pb, &b);
        if (a.step != b.step || memcmp(&a.time, &b.time, sizeof a.time) != 0) {
            printf("fieldcmp: attributes differ: step %lld time %.17g vs step %lld time %.17g\n",
                   (long long)a.step, a.time, (long long)b.step, b.time);
            rc = 1;
        } else {
            printf("fieldcmp: both at step %lld, time %.17g\n", (long long)a.step, a.time);
        }
    }
    free(a.v);
    free(b.v);
    return rc;
}

/* heat3d's scheme, written independently: walls (the outermost points) fixed, interior
 * v = u + dt * (((((u[i-1] + u[i+1]) + u[j-1]) + u[j+1]) + u[k-1]) + u[k+1] - 6 u). */
static int cmd_evolve(const char *pa, const char *pb, long nsteps) {
    field a = {0}, b = {0};
    int rc = load(pa, &a);
    if (rc == 0) rc = load(pb, &b);
    double *w = rc == 0 ? malloc((size_t)(a.n[0] * a.n[1] * a.n[2]) * sizeof *w) : NULL;
    if (rc == 0 && w) {
        const uint64_t *n = a.n;
        memcpy(w, a.v, (size_t)(n[0] * n[1] * n[2]) * sizeof *w);
        double *u = a.v, *v = w;
        const uint64_t sx = n[1] * n[2], sy = n[2];
        for (long s = 0; s < nsteps; s++) {
            for (uint64_t i = 1; i + 1 < n[0]; i++)
                for (uint64_t j = 1; j + 1 < n[1]; j++)
                    for (uint64_t k = 1; k + 1 < n[2]; k++) {
                        uint64_t c = (i * n[1] + j) * n[2] + k;
                        double sum = u[c - sx] + u[c + sx];
                        sum = sum + u[c - sy];
                        sum = sum + u[c + sy];
                        sum = sum + u[c - 1];
                        sum = sum + u[c + 1];
                        v[c] = u[c] + DT * (sum - 6.0 * u[c]);
                    }
            double *t = u;
            u = v;
            v = t;
        }
        field r = a; /* a.v and w are both freed below, whichever holds the result */
        r.v = u;
        printf("fieldcmp: %ld serial steps from step %lld of %s\n", nsteps, (long long)a.step, pa);
        rc = compare("serial", &r, pb, &b);
        if (b.step != a.step + nsteps) {
            printf("fieldcmp: %s is at step %lld, expected %lld\n", pb, (long long)b.step,
                   (long long)(a.step + nsteps));
            rc = 1;
        }
    } else if (rc == 0) {
        fprintf(stderr, "fieldcmp: out of memory\n");
        rc = 2;
    }
    free(w);
    free(a.v);
    free(b.v);
    return rc;
}

static int cmd_stats(const char *path) {
    field a = {0};
    int rc = load(path, &a);
    if (rc) return rc;
    uint64_t per = a.n[1] * a.n[2];
    double gmin = a.v[0], gmax = a.v[0], gsum = 0.0;
    printf("kind,index,min,max,mean,sum\n");
    for (uint64_t s = 0; s < a.n[0]; s++) {
        const double *v = a.v + s * per;
        double mn = v[0], mx = v[0], sum = 0.0;
        for (uint64_t p = 0; p < per; p++) {
            if (v[p] < mn) mn = v[p];
            if (v[p] > mx) mx = v[p];
            sum += v[p];
            gsum += v[p]; /* another order than postprocess's: equal within rounding */
        }
        if (mn < gmin) gmin = mn;
        if (mx > gmax) gmax = mx;
        printf("slice,%llu,%.17g,%.17g,%.17g,%.17g\n", (unsigned long long)s, mn, mx,
               sum / (double)per, sum);
    }
    printf("global,,%.17g,%.17g,%.17g,%.17g\n", gmin, gmax, gsum / (double)(per * a.n[0]), gsum);
    free(a.v);
    return 0;
}

static int cmd_layers(const char *path) {
    afmt_file *f = NULL;
    int rc = afmt_open(MPI_COMM_SELF, path, AFMT_RDONLY, NULL, &f);
    if (rc != AFMT_OK) return fail(NULL, path, rc);
    uint64_t layers = 0;
    rc = afmt_layers(f, &layers);
    uint64_t *ids = rc == AFMT_OK ? calloc((size_t)layers + 1, sizeof *ids) : NULL;
    for (uint64_t i = 0; ids && i < layers && rc == AFMT_OK; i++)
        rc = afmt_layer_id(f, i, &ids[i], NULL);
    afmt_close(f);
    if (rc != AFMT_OK || !ids) {
        free(ids);
        return fail(NULL, path, rc != AFMT_OK ? rc : AFMT_ENOMEM);
    }
    printf("layers %llu\n", (unsigned long long)layers);
    for (uint64_t i = 0; i < layers && rc == AFMT_OK; i++) {
        rc = afmt_open_layer(MPI_COMM_SELF, path, ids[i], NULL, &f);
        if (rc != AFMT_OK) {
            fail(NULL, path, rc);
            break;
        }
        int64_t step = -1;
        double t = -1.0;
        uint64_t one = 1, n = 0;
        rc = afmt_get_attr(f, NULL, "step", AFMT_INT64, &one, &step);
        one = 1;
        if (rc == AFMT_OK) rc = afmt_get_attr(f, NULL, "time", AFMT_FLOAT64, &one, &t);
        if (rc == AFMT_OK) rc = afmt_layers(f, &n);
        if (rc != AFMT_OK)
            fail(f, path, rc);
        else if (n != i + 1) {
            fprintf(stderr, "fieldcmp: afmt_open_layer(%llu) sees %llu layers, expected %llu\n",
                    (unsigned long long)ids[i], (unsigned long long)n, (unsigned long long)(i + 1));
            rc = AFMT_ERANGE;
        } else
            printf("%llu %llu %lld %.17g\n", (unsigned long long)i, (unsigned long long)ids[i],
                   (long long)step, t);
        afmt_close(f);
    }
    free(ids);
    return rc == AFMT_OK ? 0 : 2;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rc = 2;
    if (argc == 4 && strcmp(argv[1], "cmp") == 0)
        rc = cmd_cmp(argv[2], argv[3]);
    else if (argc == 5 && strcmp(argv[1], "evolve") == 0)
        rc = cmd_evolve(argv[2], argv[3], strtol(argv[4], NULL, 10));
    else if (argc == 3 && strcmp(argv[1], "stats") == 0)
        rc = cmd_stats(argv[2]);
    else if (argc == 3 && strcmp(argv[1], "layers") == 0)
        rc = cmd_layers(argv[2]);
    else
        fprintf(stderr, "usage: fieldcmp cmp A B | evolve A B N | stats FILE | layers FILE\n");
    fflush(stdout);
    MPI_Finalize();
    return rc;
}
