/* test_bigfile.c - a file past 2 GiB and 4 GiB, written by 2 ranks (ctest bigfile.2ranks).
 *
 * Two commits, each ~1.1 GiB per rank, codec none (so the file really is that large):
 * commit 1 writes array "a", commit 2 array "b", both 1-D uint64 of N elements in chunks
 * of 8 MiB, where element i holds i ("b": i ^ B_XOR), so any sample is cheap to check.
 * Rank r writes half r, split off the chunk grid (the boundary chunk is merged at commit).
 * After commit 1 the file exceeds 2^31 bytes, after commit 2 it exceeds 2^32, and "b"'s
 * data lies across the 4 GiB offset. The default memory budget (512 MiB) makes each rank
 * spill part of its blocks.
 *
 * Then the file is reopened on 2 ranks and on 1 rank and samples are checked: the chunks
 * whose stored bytes straddle the file offsets 2^31 and 2^32 (found through the index),
 * the rank boundary, the ends, and a deterministic spread of regions. The file is removed
 * at the end (also after a failure). Prints the time of each phase. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "afmt.h"
#include "api/file.h" /* the index: which chunk lies at a file offset */

#define CHUNK  ((uint64_t)1 << 20)   /* elements: 8 MiB */
#define NELEM  ((uint64_t)295284321) /* 2.2 GiB per array, 1.1 GiB per rank */
#define B_XOR  0x5A5A000000000000ull
#define WCHUNK 8 /* chunks per afmt_write call (64 MiB buffer) */

static int g_rank, g_size, g_bad;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "bigfile: FAIL rank %d line %d: ", g_rank, __LINE__);                  \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            g_bad++;                                                                               \
        }                                                                                          \
    } while (0)
#define CHECK_RC(f, call)                                                                          \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        CHECK(rc_ == AFMT_OK, "%s -> %d (%s): %s", #call, rc_, afmt_strerror(rc_),                 \
              afmt_errmsg(f));                                                                     \
    } while (0)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double g_t0;
static void phase(const char *what) {
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) printf("bigfile: %-44s %7.2f s\n", what, now() - g_t0);
    fflush(stdout);
    g_t0 = now();
}

static uint64_t want(uint64_t i, int arr) {
    return arr ? i ^ B_XOR : i;
}

static long long fsize(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/* Writes this rank's half of array arr (0: "a", 1: "b"), then commits. */
static void write_half(afmt_file *f, int arr) {
    const char *name = arr ? "b" : "a";
    uint64_t lo = NELEM * (uint64_t)g_rank / (uint64_t)g_size;
    uint64_t hi = NELEM * (uint64_t)(g_rank + 1) / (uint64_t)g_size;
    uint64_t *buf = malloc(sizeof(uint64_t) * WCHUNK * CHUNK);
    CHECK(buf != NULL, "out of memory");
    /* Pieces end on chunk boundaries, except at the ends of the half. */
    for (uint64_t s = lo; buf && s < hi;) {
        uint64_t e = (s / CHUNK + WCHUNK) * CHUNK;
        if (e > hi) e = hi;
        for (uint64_t i = s; i < e; i++) buf[i - s] = want(i, arr);
        uint64_t st[1] = {s}, ct[1] = {e - s};
        int rc = afmt_write(f, name, st, ct, buf);
        CHECK(rc == AFMT_OK, "afmt_write(%s, %llu, %llu) -> %d: %s", name, (unsigned long long)s,
              (unsigned long long)(e - s), rc, afmt_errmsg(f));
        if (rc != AFMT_OK) break;
        s = e;
    }
    free(buf);
}

/* Reads [s, s+n) of arr through f and checks every element. */
static void check_region(afmt_file *f, int arr, uint64_t s, uint64_t n, const char *what) {
    if (s >= NELEM) return;
    if (n > NELEM - s) n = NELEM - s;
    uint64_t *got = malloc(sizeof(uint64_t) * n);
    if (!got) {
        CHECK(0, "out of memory for %llu elements", (unsigned long long)n);
        return;
    }
    uint64_t st[1] = {s}, ct[1] = {n};
    int rc = afmt_read(f, arr ? "b" : "a", st, ct, got);
    CHECK(rc == AFMT_OK, "%s: afmt_read(%s, %llu, %llu) -> %d: %s", what, arr ? "b" : "a",
          (unsigned long long)s, (unsigned long long)n, rc, afmt_errmsg(f));
    uint64_t bad = 0, first = 0;
    for (uint64_t k = 0; rc == AFMT_OK && k < n; k++)
        if (got[k] != want(s + k, arr) && bad++ == 0) first = k;
    CHECK(bad == 0, "%s: %llu of %llu elements from %llu differ, first at %llu: %016llx", what,
          (unsigned long long)bad, (unsigned long long)n, (unsigned long long)s,
          (unsigned long long)(s + first), (unsigned long long)(bad ? got[first] : 0));
    free(got);
}

/* The element of arr whose stored bytes lie at file offset off (-1 if none): a scan of the
 * index. Codec none: a chunk's bytes sit at block offset + offset inside the block. */
static int64_t element_at(afmt_file *f, int arr, uint64_t off) {
    afmt_array *a = afmt__index_find(&f->idx, arr ? "b" : "a");
    if (!a) return -1;
    char why[AFMT_ERRMSG_MAX];
    if (afmt__index_load_all(&f->idx, why) != AFMT_OK) return -1; /* the whole chunk map */
    for (uint64_t c = 0; c * CHUNK < NELEM; c++) {
        const afmt_chunk_loc *l = afmt__index_chunk(&f->idx, a->d.id, c);
        if (!l) continue;
        const afmt_block_rec *b = &f->idx.blocks[l->block].b;
        if (b->codec != 0) return -1;
        uint64_t at = b->offset + l->offset;
        if (off >= at && off < at + l->size) return (int64_t)(c * CHUNK + (off - at) / 8);
    }
    return -1;
}

/* The sample checks, on a handle over any number of ranks; each rank checks all. */
static void check_samples(afmt_file *f, const char *how) {
    char what[128];
    uint64_t layers = 0;
    CHECK_RC(f, afmt_layers(f, &layers));
    CHECK(layers == 2, "%s: %llu layers, want 2", how, (unsigned long long)layers);
    /* Across the file offsets 2^31 and 2^32: 1 MiB each side. */
    const uint64_t offs[2] = {(uint64_t)1 << 31, (uint64_t)1 << 32};
    for (int k = 0; k < 2; k++) {
        int found = 0;
        for (int arr = 0; arr < 2; arr++) {
            int64_t e = element_at(f, arr, offs[k]);
            if (e < 0) continue;
            found = 1;
            if (g_rank == 0 && !strcmp(how, "writer handle"))
                printf("bigfile: file offset 2^%d holds %s[%lld]\n", k ? 32 : 31, arr ? "b" : "a",
                       (long long)e);
            uint64_t s = (uint64_t)e > 131072 ? (uint64_t)e - 131072 : 0;
            snprintf(what, sizeof what, "%s: across file offset 2^%d", how, k ? 32 : 31);
            check_region(f, arr, s, 262144, what);
        }
        CHECK(found, "%s: no chunk is stored at file offset 2^%d", how, k ? 32 : 31);
    }
    for (int arr = 0; arr < 2; arr++) {
        uint64_t mid = NELEM / 2, bc = mid / CHUNK * CHUNK;
        snprintf(what, sizeof what, "%s: rank boundary", how);
        check_region(f, arr, mid - 5000, 10000, what);
        check_region(f, arr, bc, CHUNK, what); /* the whole merged chunk */
        snprintf(what, sizeof what, "%s: ends", how);
        check_region(f, arr, 0, 70000, what);
        check_region(f, arr, NELEM - 70000, 70000, what);
        check_region(f, arr, NELEM / CHUNK * CHUNK - 3, 10, what); /* into the edge chunk */
        snprintf(what, sizeof what, "%s: across 3 chunks", how);
        check_region(f, arr, 77 * CHUNK - 5, 2 * CHUNK + 10, what);
        /* A deterministic spread of 48 regions of 3000 elements. */
        uint64_t x = 12345 + (uint64_t)arr;
        for (int k = 0; k < 48; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            snprintf(what, sizeof what, "%s: sample %d", how, k);
            check_region(f, arr, (x >> 20) % NELEM, 3000, what);
        }
    }
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    char path[512];
    long pid = (long)getpid();
    MPI_Bcast(&pid, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    snprintf(path, sizeof path, "%s/afmt-bigfile-%ld.afmt", argc > 1 ? argv[1] : AFMT_TEST_DISK,
             pid);
    double t_start = now();
    g_t0 = t_start;

    afmt_opts *o = NULL;
    afmt_opts_create(&o);
    CHECK_RC(NULL, afmt_opts_set_codec(o, AFMT_CODEC_NONE, 0));
    CHECK_RC(NULL, afmt_opts_set_block_size(o, CHUNK * 8));
    CHECK_RC(NULL, afmt_opts_set_spill_dir(o, argc > 1 ? argv[1] : AFMT_TEST_DISK));
    afmt_file *f = NULL;
    int rc = afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, o, &f);
    CHECK(rc == AFMT_OK, "afmt_create(%s) -> %d: %s", path, rc, afmt_errmsg(NULL));
    if (rc == AFMT_OK) {
        uint64_t shape[1] = {NELEM}, chunk[1] = {CHUNK};
        CHECK_RC(f, afmt_define(f, "a", AFMT_UINT64, 1, shape, chunk, NULL, NULL));
        CHECK_RC(f, afmt_define(f, "b", AFMT_UINT64, 1, shape, chunk, NULL, NULL));
        write_half(f, 0);
        phase("staged \"a\" (1.1 GiB per rank)");
        CHECK_RC(f, afmt_commit(f));
        phase("commit 1");
        if (g_rank == 0)
            CHECK(fsize(path) > (1ll << 31), "after commit 1 the file has %lld bytes, want > 2^31",
                  fsize(path));
        write_half(f, 1);
        phase("staged \"b\" (1.1 GiB per rank)");
        CHECK_RC(f, afmt_commit(f));
        phase("commit 2");
        check_samples(f, "writer handle");
        CHECK_RC(NULL, afmt_close(f));
        phase("checked on the writer handle, closed");
    }
    afmt_opts_free(o);
    long long size = fsize(path);
    if (g_rank == 0) {
        printf("bigfile: %s has %lld bytes (%.2f GiB)\n", path, size,
               (double)size / (double)(1ull << 30));
        CHECK(size > (1ll << 32), "the file has %lld bytes, want > 2^32", size);
    }

    f = NULL;
    rc = afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f);
    CHECK(rc == AFMT_OK, "afmt_open on %d ranks -> %d: %s", g_size, rc, afmt_errmsg(NULL));
    if (rc == AFMT_OK) {
        check_samples(f, "reopened on all ranks");
        CHECK_RC(NULL, afmt_close(f));
    }
    phase("reopened on all ranks and checked");
    if (g_rank == 0) {
        rc = afmt_open(MPI_COMM_SELF, path, AFMT_RDONLY, NULL, &f);
        CHECK(rc == AFMT_OK, "afmt_open on 1 rank -> %d: %s", rc, afmt_errmsg(NULL));
        if (rc == AFMT_OK) {
            check_samples(f, "reopened on one rank");
            CHECK_RC(NULL, afmt_close(f));
        }
    }
    phase("reopened on one rank and checked");

    if (g_rank == 0) unlink(path);
    int any = 0;
    MPI_Allreduce(&g_bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (g_rank == 0) printf("bigfile: %s in %.1f s\n", any ? "FAILED" : "passed", now() - t_start);
    MPI_Finalize();
    return any ? 1 : 0;
}
