/* test_hints.c - MPI integration: MPI_Info hints and the 64-bit-safe transfer paths.
 *  - "afmt_collective_write" = "true": data blocks go through MPI_File_write_at_all; ranks
 *    write different amounts per commit, one of them nothing, and the round trip holds;
 *    also with blocks spilled to disk (a tiny memory budget).
 *  - afmt__set_mpi_piece(4096): the metadata gather, the exchange's all-to-all and the
 *    footer/chain broadcasts exceed the piece and take the point-to-point path.
 *  - afmt__storage_set_max_piece(64 KiB): every MPI-IO read and write of a block splits.
 * The knobs are process-wide; every test restores them. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/file.h"        /* afmt__set_mpi_piece, f->collective_write, f->super */
#include "storage/storage.h" /* afmt__storage_set_max_piece */

#define KIB ((uint64_t)1024)

/* A test case: how the file is written. */
typedef struct {
    int collective;      /* the afmt_collective_write hint */
    uint64_t mem_budget; /* UINT64_MAX: the default */
    int interleaved;     /* 0: a contiguous range per rank; 1: runs of RUN elements dealt
                            round-robin, so nearly every chunk is shared by all ranks */
    uint64_t chunk;      /* elements per chunk */
    uint64_t block_size;
    int commits;
} hcase;

#define RUN 5

/* The uint64 value of element i after commit k (incompressible: blocks are stored raw). */
static uint64_t hval(uint64_t i, int k) {
    uint64_t x = i * 0x9E3779B97F4A7C15ull + (uint64_t)k * (uint64_t)0xD1B54A32D192ED03ull + 1;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    return x ^ (x >> 32);
}

/* Contiguous layout: elements rank q writes in commit k (rank k % size writes nothing). */
static uint64_t csize(int q, int k, int size) {
    if (size > 1 && q == k % size) return 0;
    if (size == 1 && k == 0) return 0; /* one rank: the first commit writes nothing */
    return 100000u * (uint64_t)(q + 1) + 7777u * (uint64_t)k;
}

static uint64_t cstart(int q, int k, int size) {
    uint64_t s = 0;
    for (int p = 0; p < q; p++) s += csize(p, k, size);
    return s;
}

/* The array length: room for every commit's layout. */
static uint64_t hlen(const hcase *c, int size) {
    if (c->interleaved) return (uint64_t)size * 40000u + 3;
    uint64_t n = 0;
    for (int k = 0; k < c->commits; k++) {
        uint64_t e = cstart(size, k, size);
        if (e > n) n = e;
    }
    return n + 11;
}

/* Stages this rank's writes of commit k and applies every rank's to the model. */
static void stage(afmt_file *f, const hcase *c, int k, uint64_t n, uint64_t *want, uint64_t *buf) {
    int rank = tu_rank(), size = tu_size();
    if (c->interleaved) {
        /* Commit k shifts the deal by k, and skips rank k % size. */
        for (uint64_t r0 = 0, run = 0; r0 < n; r0 += RUN, run++) {
            int q = (int)((run + (uint64_t)k) % (uint64_t)size);
            if (size > 1 && q == k % size) continue;
            uint64_t len = n - r0 < RUN ? n - r0 : RUN;
            for (uint64_t i = r0; i < r0 + len; i++) want[i] = hval(i, k);
            if (q != rank) continue;
            uint64_t st[1] = {r0}, ct[1] = {len};
            EXPECT_OK(f, afmt_write(f, "a", st, ct, want + r0));
        }
        return;
    }
    for (int q = 0; q < size; q++) {
        uint64_t s0 = cstart(q, k, size), len = csize(q, k, size);
        for (uint64_t i = s0; i < s0 + len; i++) want[i] = hval(i, k);
        if (q != rank || len == 0) continue;
        /* In three calls of unequal size, none aligned to chunks. */
        uint64_t cut[4] = {s0, s0 + len / 3, s0 + len / 3 + len / 5, s0 + len};
        for (int j = 0; j < 3; j++) {
            if (cut[j + 1] == cut[j]) continue;
            for (uint64_t i = cut[j]; i < cut[j + 1]; i++) buf[i - cut[j]] = hval(i, k);
            uint64_t st[1] = {cut[j]}, ct[1] = {cut[j + 1] - cut[j]};
            EXPECT_OK(f, afmt_write(f, "a", st, ct, buf));
        }
    }
}

/* Reads the whole array through f and compares with the model. */
static void compare(afmt_file *f, uint64_t n, const uint64_t *want, const char *what, int line) {
    uint64_t *got = malloc(sizeof(uint64_t) * n), st[1] = {0}, ct[1] = {n};
    memset(got, 0xA5, sizeof(uint64_t) * n);
    int rc = afmt_read(f, "a", st, ct, got);
    if (rc != AFMT_OK) {
        rec(line, "%s: afmt_read -> %d (%s): %s", what, rc, NSTR(afmt_strerror(rc)),
            NSTR(afmt_errmsg(f)));
    } else {
        uint64_t bad = 0, first = 0;
        for (uint64_t i = 0; i < n; i++)
            if (got[i] != want[i] && bad++ == 0) first = i;
        if (bad)
            rec(line, "%s: %llu of %llu elements differ, first at %llu (got %016llx, want %016llx)",
                what, (unsigned long long)bad, (unsigned long long)n, (unsigned long long)first,
                (unsigned long long)got[first], (unsigned long long)want[first]);
    }
    free(got);
}

/* Writes c->commits commits, checking after each, then reopens on every rank count that
 * MPI_COMM_WORLD and MPI_COMM_SELF give and checks again. Returns the largest footer. */
static uint64_t run_case(const hcase *c, const char *tag, int line) {
    int size = tu_size();
    uint64_t n = hlen(c, size), max_footer = 0;
    uint64_t *want = calloc((size_t)n, sizeof(uint64_t));
    uint64_t *buf = malloc(sizeof(uint64_t) * n);
    char spill[512] = "";
    afmt_opts *o = NULL;
    MPI_Info info = MPI_INFO_NULL;
    afmt_opts_create(&o);
    EXPECT_OK(NULL, afmt_opts_set_block_size(o, c->block_size));
    if (c->mem_budget != UINT64_MAX) {
        snprintf(spill, sizeof spill, "%s/afmt-hints-spill-%d-XXXXXX", AFMT_TEST_SCRATCH,
                 tu_rank());
        if (!mkdtemp(spill)) rec(line, "mkdtemp(%s) failed", spill);
        EXPECT_OK(NULL, afmt_opts_set_mem_budget(o, c->mem_budget));
        EXPECT_OK(NULL, afmt_opts_set_spill_dir(o, spill));
    }
    if (c->collective) {
        MPI_Info_create(&info);
        MPI_Info_set(info, "afmt_collective_write", "true");
        /* A hint of the MPI-IO layer itself passes through untouched. */
        MPI_Info_set(info, "romio_cb_write", "enable");
        EXPECT_OK(NULL, afmt_opts_set_mpi_info(o, info));
        MPI_Info_free(&info); /* the options hold their own dup */
    }
    const char *path = tu_path(NULL, tag);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, line);
    if (f) {
        uint64_t shape[1] = {n}, chunk[1] = {c->chunk};
        EXPECT(f->collective_write == c->collective);
        EXPECT_OK(f, afmt_define(f, "a", AFMT_UINT64, 1, shape, chunk, NULL, NULL));
        for (int k = 0; k < c->commits; k++) {
            stage(f, c, k, n, want, buf);
            int64_t kv = k;
            EXPECT_OK(f, afmt_set_attr(f, NULL, "commit", AFMT_INT64, 1, &kv));
            int rc = afmt_commit(f);
            if (rc != AFMT_OK)
                rec(line, "%s: commit %d -> %d (%s): %s", tag, k, rc, NSTR(afmt_strerror(rc)),
                    NSTR(afmt_errmsg(f)));
            /* the metadata a commit moves: the footer and (v2) the index segments */
            if (f->idx.n_layers) {
                const afmt_layer_info *li = &f->idx.layers[f->idx.n_layers - 1];
                uint64_t meta = li->footer_length + li->seg_bytes;
                if (meta > max_footer) max_footer = meta;
            }
            char what[64];
            snprintf(what, sizeof what, "%s: after commit %d", tag, k);
            compare(f, n, want, what, line);
        }
        EXPECT_OK(f, afmt_close(f));
    }
    afmt_opts_free(o);
    if (spill[0]) rmdir(spill);

    f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, line);
    if (f) {
        uint64_t layers = 0;
        EXPECT_OK(f, afmt_layers(f, &layers));
        EXPECT(layers == (uint64_t)c->commits);
        compare(f, n, want, "reopened on all ranks", line);
        EXPECT_OK(f, afmt_close(f));
    }
    /* Each rank alone (a communicator of one). */
    f = xopen(MPI_COMM_SELF, path, 1, AFMT_RDONLY, NULL, line);
    if (f) {
        compare(f, n, want, "reopened on one rank", line);
        EXPECT_OK(f, afmt_close(f));
    }
    free(want);
    free(buf);
    rm_path(path);
    return max_footer;
}

static void test_collective_write(void **state) {
    (void)state;
    hcase c = {1, UINT64_MAX, 0, 50000, 256 * KIB, 3};
    run_case(&c, "coll", __LINE__);
    done();
}

/* Collective writes of blocks that were spilled: a rank's stored bytes come out of the
 * allocator in several pieces (spill file, then memory), each must be written. */
static void test_collective_write_spilled(void **state) {
    (void)state;
    hcase c = {1, 64 * KIB, 0, 50000, 256 * KIB, 3};
    run_case(&c, "collspill", __LINE__);
    hcase c2 = {1, 256 * KIB, 0, 5000, 256 * KIB, 3};
    run_case(&c2, "collspill2", __LINE__);
    done();
}

/* Interleaved writes with tiny chunks: thousands of chunk records, and every chunk pieced
 * together from several ranks, all through the point-to-point paths. */
static void test_mpi_piece(void **state) {
    (void)state;
    afmt__set_mpi_piece(4096);
    hcase c = {0, UINT64_MAX, 1, 16, 4 * KIB, 2};
    uint64_t footer = run_case(&c, "piece", __LINE__);
    /* The metadata did exceed the piece (else the test proves nothing). */
    EXPECT(footer > 4 * 4096);
    /* And the contiguous layout, collective, over the small pieces too. */
    hcase c2 = {1, UINT64_MAX, 0, 1000, 64 * KIB, 2};
    footer = run_case(&c2, "piece2", __LINE__);
    EXPECT(footer > 4096);
    afmt__set_mpi_piece(0); /* back to the default */
    done();
}

/* Blocks of 1 MiB and footers of many KiB move in 64 KiB pieces through MPI-IO. */
static void test_storage_piece(void **state) {
    (void)state;
    afmt__storage_set_max_piece(64 * KIB);
    hcase c = {0, UINT64_MAX, 0, 40000, 1024 * KIB, 3};
    run_case(&c, "stpiece", __LINE__);
    hcase c2 = {1, UINT64_MAX, 1, 64, 128 * KIB, 2};
    run_case(&c2, "stpiece2", __LINE__);
    afmt__storage_set_max_piece(0); /* back to the default */
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collective_write),
        cmocka_unit_test(test_collective_write_spilled),
        cmocka_unit_test(test_mpi_piece),
        cmocka_unit_test(test_storage_piece),
    };
    return tu_main(argc, argv, "mpi_hints", tests, sizeof tests / sizeof tests[0]);
}
