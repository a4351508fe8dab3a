/*
 * fieldcmp2d.c - the checker of fortran.heat2d.restart (public C API only).
 *
 *   fieldcmp2d FILE_A FILE_B STEP NLAYERS [--not-restarted]
 *
 * FILE_A is an uninterrupted heat2d run, FILE_B the same run checkpointed, stopped and
 * restarted on another rank count (with --not-restarted: the same run made another way,
 * e.g. with --async, and the last check is skipped). Checks, failing (exit 1) with a
 * message otherwise:
 *  - both have NLAYERS layers and their newest "step" attribute is STEP;
 *  - the newest "u" fields are equal bit for bit, and so are those of every layer pair
 *    (A's k-th layer vs B's k-th: the checkpoints before the restart match too);
 *  - the run did something: A's oldest and newest fields differ;
 *  - B was really restarted on another rank count: the "nranks" provenance of its first
 *    and last layers differ.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "afmt.h"

static int g_failed;

static void fail(const char *msg) {
    fprintf(stderr, "fieldcmp2d: %s\n", msg);
    g_failed = 1;
}

static int check(int rc, const char *what) {
    if (rc != AFMT_OK) {
        fprintf(stderr, "fieldcmp2d: %s: %s: %s\n", what, afmt_strerror(rc), afmt_errmsg(NULL));
        g_failed = 1;
    }
    return rc;
}

/* The field "u" of the file as it was after layer number index (0 = oldest). */
static double *field_at(const char *path, uint64_t index, uint64_t *n, int64_t *step) {
    afmt_file *f;
    uint64_t id, nl;
    if (check(afmt_open(MPI_COMM_SELF, path, AFMT_RDONLY, NULL, &f), path)) return NULL;
    int rc = afmt_layers(f, &nl);
    if (rc == AFMT_OK && index >= nl) rc = AFMT_ERANGE;
    if (rc == AFMT_OK) rc = afmt_layer_id(f, index, &id, NULL);
    afmt_close(f);
    if (check(rc, "afmt_layer_id")) return NULL;
    if (check(afmt_open_layer(MPI_COMM_SELF, path, id, NULL, &f), path)) return NULL;
    afmt_info info;
    double *u = NULL;
    if (!check(afmt_inquire(f, "u", &info), "inquire u")) {
        if (info.dtype != AFMT_FLOAT64 || info.ndim != 2) {
            fail("u is not a 2-D float64 array");
        } else {
            uint64_t start[2] = {0, 0};
            *n = info.shape[0] * info.shape[1];
            u = malloc(sizeof(double) * (size_t)*n);
            uint64_t one = 1;
            if (!u || check(afmt_read(f, "u", start, info.shape, u), "read u") ||
                check(afmt_get_attr(f, NULL, "step", AFMT_INT64, &one, step), "step")) {
                free(u);
                u = NULL;
            }
        }
    }
    afmt_close(f);
    return u;
}

static int64_t nranks_of(const char *path, uint64_t index) {
    afmt_file *f;
    int64_t nr = -1;
    uint64_t one = 1;
    if (check(afmt_open(MPI_COMM_SELF, path, AFMT_RDONLY, NULL, &f), path)) return -1;
    check(afmt_layer_attr(f, index, "nranks", AFMT_INT64, &one, &nr), "layer nranks");
    afmt_close(f);
    return nr;
}

static uint64_t layers_of(const char *path) {
    afmt_file *f;
    uint64_t nl = 0;
    if (check(afmt_open(MPI_COMM_SELF, path, AFMT_RDONLY, NULL, &f), path)) return 0;
    check(afmt_layers(f, &nl), "afmt_layers");
    afmt_close(f);
    return nl;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int restarted = 1;
    if (argc == 6 && strcmp(argv[5], "--not-restarted") == 0) {
        restarted = 0;
        argc--;
    }
    if (argc != 5) {
        fprintf(stderr, "usage: fieldcmp2d FILE_A FILE_B STEP NLAYERS [--not-restarted]\n");
        MPI_Finalize();
        return 2;
    }
    const char *a = argv[1], *b = argv[2];
    int64_t want_step = strtoll(argv[3], NULL, 10);
    uint64_t nlayers = strtoull(argv[4], NULL, 10);
    if (layers_of(a) != nlayers || layers_of(b) != nlayers) fail("number of layers");
    for (uint64_t k = 0; k < nlayers && !g_failed; k++) {
        uint64_t na = 0, nb = 0;
        int64_t sa = -1, sb = -2;
        double *ua = field_at(a, k, &na, &sa), *ub = field_at(b, k, &nb, &sb);
        if (ua && ub) {
            if (na != nb || memcmp(ua, ub, sizeof(double) * (size_t)na) != 0) {
                uint64_t ndiff = 0;
                for (uint64_t i = 0; i < na && i < nb; i++) ndiff += ua[i] != ub[i];
                fprintf(stderr, "fieldcmp2d: layer %" PRIu64 ": %" PRIu64 " values differ\n", k,
                        ndiff);
                fail("fields differ");
            }
            if (sa != sb) fail("step attributes differ");
            if (k == nlayers - 1 && sa != want_step) fail("newest step is not STEP");
        }
        free(ua);
        free(ub);
    }
    if (!g_failed) {
        uint64_t n0 = 0, n1 = 0;
        int64_t s0, s1;
        double *first = field_at(a, 0, &n0, &s0), *last = field_at(a, nlayers - 1, &n1, &s1);
        if (first && last && n0 == n1 && memcmp(first, last, sizeof(double) * (size_t)n0) == 0)
            fail("the field did not change between the first and the last checkpoint");
        free(first);
        free(last);
        if (restarted && nranks_of(b, 0) == nranks_of(b, nlayers - 1))
            fail("FILE_B's first and last layers were written on the same rank count");
    }
    if (!g_failed)
        printf("fieldcmp2d: %s and %s identical in all %" PRIu64 " layers\n", a, b, nlayers);
    MPI_Finalize();
    return g_failed ? 1 : 0;
}
