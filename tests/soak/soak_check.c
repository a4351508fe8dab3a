/* soak_check.c - compares a soak file with the history of soak_model.h replayed in memory.
 *
 *   soak_check FILE SEED MIN [final|compacted]
 *
 * The file must open read-only and hold commit K (file attribute "commit") with
 * MIN <= K <= MIN + 1 (a commit may be durable just before its marker line was written);
 * "final" and "compacted" require K == MIN. It must have exactly K layers (1 layer when
 * "compacted"), exactly the live arrays of the reference after commit K with the same
 * dtype, shape and chunks, and every byte of every array must equal the reference.
 * With MIN 0 a file that does not open or has no layer is commit 0. Runs on any number of
 * ranks (array slots are divided among them). Rank 0 prints
 * "soak_check: OK K=<k> layers=<n> arrays=<n> bytes=<compared>"; exit 0 only if all is right. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "afmt.h"
#include "soak_model.h"

static int g_rank, g_bad;

static void bad(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "soak_check: FAIL rank %d: ", g_rank);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    g_bad++;
}

static int finish(void) {
    int any = 0;
    MPI_Allreduce(&g_bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return any ? 1 : 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int nranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    if (argc < 4 || argc > 5 ||
        (argc == 5 && strcmp(argv[4], "final") && strcmp(argv[4], "compacted"))) {
        if (g_rank == 0) fprintf(stderr, "usage: soak_check FILE SEED MIN [final|compacted]\n");
        MPI_Finalize();
        return 2;
    }
    const char *path = argv[1];
    uint64_t seed = strtoull(argv[2], NULL, 10), min = strtoull(argv[3], NULL, 10);
    int exact = argc == 5, compacted = argc == 5 && !strcmp(argv[4], "compacted");

    afmt_file *f = NULL;
    int rc = afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f);
    if (rc != AFMT_OK) {
        if (min == 0 && !exact) {
            if (g_rank == 0)
                printf("soak_check: OK K=0 (the file does not open: %s)\n", afmt_errmsg(NULL));
            return finish();
        }
        bad("afmt_open(%s) -> %d (%s): %s", path, rc, afmt_strerror(rc), afmt_errmsg(NULL));
        return finish();
    }
    uint64_t layers = 0, K = 0;
    afmt_layers(f, &layers);
    if (layers > 0) {
        int64_t kv = -1;
        uint64_t n = 1;
        rc = afmt_get_attr(f, NULL, "commit", AFMT_INT64, &n, &kv);
        if (rc != AFMT_OK || kv < 1)
            bad("attribute commit: rc %d: %s", rc, afmt_errmsg(f));
        else
            K = (uint64_t)kv;
    }
    if (K < min || K > min + 1 || (exact && K != min))
        bad("the file holds commit %llu, the marker recorded %llu", (unsigned long long)K,
            (unsigned long long)min);
    if (layers != (compacted ? (K ? 1 : 0) : K))
        bad("%llu layers for commit %llu%s", (unsigned long long)layers, (unsigned long long)K,
            compacted ? " (compacted: want 1)" : "");

    soak_state st;
    uint64_t compared = 0;
    int live = 0;
    if (soak_replay(seed, K, &st, 1) != 0) bad("out of memory in the replay");
    for (int s = 0; s < SOAK_SLOTS; s++) live += st.a[s].live;
    int count = -1;
    afmt_count(f, &count);
    if (count != live) bad("%d live arrays, the reference has %d", count, live);
    for (int s = 0; s < SOAK_SLOTS && !g_bad; s++) {
        const soak_arr *a = &st.a[s];
        char name[16];
        snprintf(name, sizeof name, "s%d", s);
        afmt_info in;
        rc = afmt_inquire(f, name, &in);
        if (!a->live) {
            if (rc != AFMT_ENOTFOUND) bad("%s is live in the file, deleted in the reference", name);
            continue;
        }
        if (rc != AFMT_OK) {
            bad("afmt_inquire(%s) -> %d: %s", name, rc, afmt_errmsg(f));
            continue;
        }
        int same = in.dtype == a->t && in.ndim == a->ndim;
        for (int d = 0; same && d < a->ndim; d++)
            same = in.shape[d] == a->shape[d] && in.chunk[d] == a->chunk[d];
        if (!same) {
            bad("descriptor of %s differs from the reference", name);
            continue;
        }
        if (s % nranks != g_rank) continue;
        size_t es = tu_dtype_size(a->t);
        uint64_t n = soak_nel(a), zero[SOAK_MAXNDIM] = {0, 0, 0};
        uint8_t *got = malloc((size_t)(n * es));
        if (!got) {
            bad("out of memory");
            continue;
        }
        rc = afmt_read(f, name, zero, a->shape, got);
        if (rc != AFMT_OK) {
            bad("afmt_read(%s) -> %d: %s", name, rc, afmt_errmsg(f));
        } else if (memcmp(got, a->data, (size_t)(n * es)) != 0) {
            uint64_t first = 0, ndiff = 0;
            for (uint64_t e = 0; e < n; e++)
                if (memcmp(got + e * es, a->data + e * es, es) && ndiff++ == 0) first = e;
            bad("%s (commit %llu): %llu of %llu elements differ, first at index %llu", name,
                (unsigned long long)K, (unsigned long long)ndiff, (unsigned long long)n,
                (unsigned long long)first);
        }
        compared += n * es;
        free(got);
    }
    soak_free(&st);
    if ((rc = afmt_close(f)) != AFMT_OK) bad("afmt_close -> %d", rc);
    uint64_t total = 0;
    MPI_Reduce(&compared, &total, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
    if (g_rank == 0 && !g_bad)
        printf("soak_check: OK K=%llu layers=%llu arrays=%d bytes=%llu\n", (unsigned long long)K,
               (unsigned long long)layers, live, (unsigned long long)total);
    fflush(stdout);
    return finish();
}
