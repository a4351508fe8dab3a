/* test_align.c - MPI integration: afmt_opts_set_alignment (file-system placement).
 *  - The layout of every layer, as the file holds it: with alignment A, the first region
 *    starts at the layer's data_offset rounded up to A, each writing rank's region (its
 *    blocks, then its index segment right after them) starts on a multiple of A, in rank
 *    order, each taking its bytes rounded up to A, a rank without bytes taking none, and
 *    the footer starts at the next multiple of A after the last region. With 0 (the
 *    default) the same rule gives the old layout exactly: no gap anywhere.
 *  - Data read back equals data written, after each commit, reopened on every rank, on
 *    fewer ranks and on one; a layer without data (metadata only); appending with another
 *    alignment (or none) than the file was written with; compaction places its BASE layer
 *    the same way and the file stays readable and writable.
 *  - afmt_opts_set_alignment refuses what is neither 0 nor a power of two in [512, 1 GiB]
 *    (and keeps the value it had); ranks that give different values are refused by
 *    afmt_create and afmt_open on every rank. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/file.h"       /* f->idx, f->super, f->st, afmt__commit_stats */
#include "format/segment.h" /* the layer's segments, read from the file */

#define KIB ((uint64_t)1024)

typedef unsigned long long ull;

static uint64_t up(uint64_t x, uint64_t a) {
    return a ? (x + a - 1) / a * a : x;
}

/* COLLECTIVE over f's communicator (MPI_COMM_WORLD here). Checks the placement of f's
 * newest layer against the rule above, from the bytes each rank says it wrote in the last
 * commit or compaction (afmt__commit_stats) and the layer as the file holds it: its footer
 * (root table) and its segments (block records), read back. A segment is written by a
 * node's leader (or by every rank, with afmt_index_aggregation=rank) right after its own
 * blocks; the other ranks' regions are their blocks alone. Returns the number of regions. */
static uint64_t check_layout(afmt_file *f, uint64_t a, const char *what, int line) {
    afmt_commit_stats st;
    memset(&st, 0, sizeof st);
    EXPECT_OK_AT(line, f, afmt__commit_stats(f, &st));
    int size = f->size;
    uint64_t *mine = calloc((size_t)size, sizeof *mine);
    MPI_Allgather(&st.bytes_written, 1, MPI_UINT64_T, mine, 1, MPI_UINT64_T, f->comm);
    uint64_t foff = f->super.footer_offset;
    afmt_layer L;
    read_newest_layer(f, &L, what, line); /* the footer and the segments, from the file */
    uint64_t pos = up(L.data_offset, a), sum = 0, regions = 0;
    for (int r = 0; r < size; r++) {
        uint64_t lo = UINT64_MAX, stored = 0, nb = 0, nseg = 0;
        for (uint64_t b = 0; b < L.n_blocks; b++) {
            const afmt_block_rec *B = &L.blocks[b];
            if (B->rank != (uint32_t)r) continue;
            if (B->offset < lo) lo = B->offset;
            stored += B->stored_size;
            nb++;
        }
        if (mine[r] == 0) {
            if (nb) rec(line, "%s: rank %d wrote no bytes but has %llu blocks", what, r, (ull)nb);
        } else {
            regions++;
            if (a && pos % a) rec(line, "%s: rank %d's region at %llu", what, r, (ull)pos);
            if (nb && lo != pos)
                rec(line, "%s: rank %d's first block at %llu, want %llu (A %llu)", what, r, (ull)lo,
                    (ull)pos, (ull)a);
            if (a && nb && lo % a)
                rec(line, "%s: rank %d's first block at %llu, not a multiple of %llu", what, r,
                    (ull)lo, (ull)a);
        }
        for (uint64_t s = 0; s < L.n_segs; s++) {
            const afmt_seg_rec *g = &L.segs[s];
            if (g->writer != (uint32_t)r) continue;
            nseg++;
            /* The segment right after the rank's blocks, ending its region. */
            if (g->offset != pos + stored || g->offset + g->length != pos + mine[r])
                rec(line,
                    "%s: rank %d's segment at %llu (%llu bytes), want %llu (its region: %llu "
                    "bytes at %llu)",
                    what, r, (ull)g->offset, (ull)g->length, (ull)(pos + stored), (ull)mine[r],
                    (ull)pos);
        }
        if (nseg > 1 || (mine[r] && nseg == 0 && stored != mine[r]))
            rec(line, "%s: rank %d: %llu segments, %llu stored bytes of %llu", what, r, (ull)nseg,
                (ull)stored, (ull)mine[r]);
        pos += up(mine[r], a);
        sum += mine[r];
    }
    if (foff != pos)
        rec(line, "%s: footer at %llu, want %llu (data_offset %llu, A %llu)", what, (ull)foff,
            (ull)pos, (ull)L.data_offset, (ull)a);
    if (a && foff % a)
        rec(line, "%s: footer at %llu, not a multiple of %llu", what, (ull)foff, (ull)a);
    /* Without alignment: no gap at all (the layout of the writers before the option). */
    if (!a && foff != L.data_offset + sum)
        rec(line, "%s: footer at %llu, want data_offset %llu + %llu bytes", what, (ull)foff,
            (ull)L.data_offset, (ull)sum);
    afmt__layer_free(&L);
    free(mine);
    return regions;
}

/* Rank q's rows of commit k (of 193): contiguous slabs, not on chunk boundaries. In
 * commit 1 rank 1 % size writes nothing, the others a smaller piece. */
static void rows_of(int q, int k, int size, uint64_t *lo, uint64_t *n) {
    uint64_t a = 193u * (uint64_t)q / (uint64_t)size, b = 193u * (uint64_t)(q + 1) / (uint64_t)size;
    *lo = a;
    *n = b - a;
    if (k == 1) {
        *lo = a + 3 < b ? a + 3 : a;
        *n =
            size > 1 && q == 1 % size ? 0 : (b - *lo < 5 + (uint64_t)q ? b - *lo : 5 + (uint64_t)q);
    }
}

static void write_slabs(afmt_file *f, model *m, int k, uint64_t seed) {
    int size = tu_size();
    for (int q = 0; q < size; q++) {
        uint64_t lo, n;
        rows_of(q, k, size, &lo, &n);
        if (n == 0) continue;
        uint64_t st[2] = {lo, k == 1 ? 2 : 0}, ct[2] = {n, k == 1 ? 55 : 67};
        m_write(f, &m[0], q, st, ct, seed, __LINE__);
    }
    /* A second array, written by one rank: uneven regions (in commit 1 by rank 0, so that
     * rank 1 writes nothing at all when there are two ranks or more). */
    uint64_t st[1] = {(uint64_t)k * 13}, ct[1] = {1001 - (uint64_t)k * 13};
    m_write(f, &m[1], k == 1 ? 0 : size - 1, st, ct, seed + 7, __LINE__);
}

static afmt_opts *opts_aligned(uint64_t a, int line) {
    afmt_opts *o = NULL;
    EXPECT_OK_AT(line, NULL, afmt_opts_create(&o));
    EXPECT_OK_AT(line, NULL, afmt_opts_set_block_size(o, 8 * KIB)); /* several blocks a rank */
    EXPECT_OK_AT(line, NULL, afmt_opts_set_alignment(o, a));
    return o;
}

/* Writes with alignment a (three layers: data, data from some ranks, metadata only),
 * reopens, appends with alignment a2, compacts with a2, appends again. */
static void run_case(uint64_t a, uint64_t a2, const char *tag, int line) {
    const char *path = tu_path(NULL, tag);
    model m[2];
    uint64_t shape[2] = {193, 67}, chunk[2] = {10, 7}, vshape[1] = {1001}, vchunk[1] = {64};
    m_init(&m[0], "u", AFMT_FLOAT64, 2, shape, chunk, NULL);
    m_init(&m[1], "v", AFMT_INT32, 1, vshape, vchunk, NULL);
    afmt_opts *o = opts_aligned(a, line);
    char what[96];
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, AFMT_TRUNC, o, line);
    if (f) {
        for (int i = 0; i < 2; i++) EXPECT_OK_AT(line, f, m_define(f, &m[i]));
        for (int k = 0; k < 2; k++) {
            write_slabs(f, m, k, 100u + (uint64_t)k);
            commit_check(f, m, 2, line);
            snprintf(what, sizeof what, "%s: commit %d (A %llu)", tag, k, (ull)a);
            uint64_t want =
                k == 0 || tu_size() == 1 ? (uint64_t)tu_size() : (uint64_t)tu_size() - 1;
            if (check_layout(f, a, what, line) != want)
                rec(line, "%s: not %llu regions", what, (ull)want);
        }
        int64_t v = 42;
        EXPECT_OK_AT(line, f, afmt_set_attr(f, NULL, "meta", AFMT_INT64, 1, &v));
        commit_check(f, m, 2, line);
        snprintf(what, sizeof what, "%s: metadata-only commit (A %llu)", tag, (ull)a);
        EXPECT(check_layout(f, a, what, line) == 0);
        close_reopen_check(f, path, m, 2, line);
    }
    afmt_opts_free(o);

    o = opts_aligned(a2, line);
    f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, o, line);
    if (f) {
        write_slabs(f, m, 2, 300);
        commit_check(f, m, 2, line);
        snprintf(what, sizeof what, "%s: appended (A %llu over %llu)", tag, (ull)a2, (ull)a);
        check_layout(f, a2, what, line);
        EXPECT_OK_AT(line, f, afmt_compact(f));
        EXPECT_LAYERS(f, 1);
        EXPECT(f->idx.layers[0].data_offset == 4096);
        snprintf(what, sizeof what, "%s: compacted (A %llu)", tag, (ull)a2);
        EXPECT(check_layout(f, a2, what, line) >= 1);
        m_check_each(f, m, 2, 0, line);
        write_slabs(f, m, 1, 400);
        commit_check(f, m, 2, line);
        snprintf(what, sizeof what, "%s: after compaction (A %llu)", tag, (ull)a2);
        check_layout(f, a2, what, line);
        close_reopen_check(f, path, m, 2, line);
    }
    afmt_opts_free(o);
    m_free_each(m, 2);
    rm_path(path);
}

static void test_default_layout(void **state) {
    (void)state;
    run_case(0, 0, "al0", __LINE__);
    done();
}

static void test_align_4k(void **state) {
    (void)state;
    run_case(4096, 0, "al4k", __LINE__);
    done();
}

static void test_align_64k(void **state) {
    (void)state;
    run_case(65536, 4096, "al64k", __LINE__);
    done();
}

/* The collective write path (afmt_collective_write) places the regions the same way. */
static void test_align_collective(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "alcoll");
    model m[2];
    uint64_t shape[2] = {193, 67}, chunk[2] = {10, 7}, vshape[1] = {1001}, vchunk[1] = {64};
    m_init(&m[0], "u", AFMT_FLOAT64, 2, shape, chunk, NULL);
    m_init(&m[1], "v", AFMT_INT32, 1, vshape, vchunk, NULL);
    afmt_opts *o = opts_aligned(512, __LINE__);
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "afmt_collective_write", "true");
    MPI_Info_set(info, "striping_unit", "512");           /* MPI-IO hints pass through alongside */
    MPI_Info_set(info, "afmt_index_aggregation", "rank"); /* a segment per rank */
    EXPECT_OK(NULL, afmt_opts_set_mpi_info(o, info));
    MPI_Info_free(&info);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, AFMT_TRUNC, o, __LINE__);
    if (f) {
        EXPECT(f->collective_write);
        for (int i = 0; i < 2; i++) EXPECT_OK(f, m_define(f, &m[i]));
        for (int k = 0; k < 2; k++) {
            write_slabs(f, m, k, 500u + (uint64_t)k);
            commit_check(f, m, 2, __LINE__);
            check_layout(f, 512, "collective", __LINE__);
        }
        close_reopen_check(f, path, m, 2, __LINE__);
    }
    afmt_opts_free(o);
    m_free_each(m, 2);
    rm_path(path);
    done();
}

static void test_bad_values(void **state) {
    (void)state;
    EXPECT_RC(NULL, afmt_opts_set_alignment(NULL, 4096), AFMT_EINVAL);
    afmt_opts *o = NULL;
    EXPECT_OK(NULL, afmt_opts_create(&o));
    static const uint64_t good[] = {0, 512, 1024, 4096, 65536, 1u << 20, 1u << 30};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        EXPECT_OK(NULL, afmt_opts_set_alignment(o, good[i]));
    static const uint64_t bad[] = {1,          2,          256,        511,        513,
                                   1000,       4095,       4097,       3u << 20,   (1u << 30) + 512,
                                   1ull << 31, 1ull << 40, UINT64_MAX, 1ull << 63, 65536 + 4096};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = afmt_opts_set_alignment(o, bad[i]);
        const char *msg = afmt_errmsg(NULL);
        char val[32];
        snprintf(val, sizeof val, "%llu bytes", (ull)bad[i]);
        if (rc != AFMT_EINVAL)
            rec(__LINE__, "afmt_opts_set_alignment(%llu) -> %d, want AFMT_EINVAL", (ull)bad[i], rc);
        else if (!msg || !strstr(msg, val) || !strstr(msg, "[512, 1073741824]") ||
                 !strstr(msg, "afmt_opts_set_alignment"))
            rec(__LINE__, "afmt_opts_set_alignment(%llu): message \"%s\"", (ull)bad[i], NSTR(msg));
    }
    /* A refused value leaves the option as it was: 4096, as the layout shows. */
    EXPECT_OK(NULL, afmt_opts_set_alignment(o, 4096));
    EXPECT_RC(NULL, afmt_opts_set_alignment(o, 3000), AFMT_EINVAL);
    const char *path = tu_path(NULL, "albad");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, AFMT_TRUNC, o, __LINE__);
    if (f) {
        uint64_t shape[1] = {5000}, chunk[1] = {100};
        EXPECT_OK(f, afmt_define(f, "a", AFMT_UINT8, 1, shape, chunk, NULL, NULL));
        uint8_t buf[1000];
        for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 7 + (size_t)tu_rank());
        uint64_t st[1] = {(uint64_t)tu_rank() * 1000}, ct[1] = {1000};
        EXPECT_OK(f, afmt_write(f, "a", st, ct, buf));
        EXPECT_OK(f, afmt_commit(f));
        check_layout(f, 4096, "kept after a refused value", __LINE__);
        EXPECT(f->super.footer_offset % 4096 == 0 && f->super.footer_offset >= 8192);
        EXPECT_OK(f, afmt_close(f));
    }
    afmt_opts_free(o);
    rm_path(path);
    done();
}

/* Ranks that give different alignments: afmt_create and afmt_open refuse on every rank,
 * naming the values; nothing is created. */
static void test_ranks_disagree(void **state) {
    (void)state;
    int rank = tu_rank(), size = tu_size();
    const char *path = tu_path(NULL, "aldis");
    static const uint64_t pairs[][2] = {{4096, 65536}, {0, 512}, {1u << 30, 0}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        afmt_opts *o = opts_aligned(rank == 0 ? pairs[i][0] : pairs[i][1], __LINE__);
        afmt_file *f = NULL;
        int rc = afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, o, &f);
        uint64_t lo = pairs[i][0] < pairs[i][1] ? pairs[i][0] : pairs[i][1];
        uint64_t hi = pairs[i][0] < pairs[i][1] ? pairs[i][1] : pairs[i][0];
        if (size == 1) {
            EXPECT(rc == AFMT_OK && f != NULL); /* one rank cannot disagree with itself */
            if (f) EXPECT_OK(f, afmt_close(f));
        } else {
            char want[128];
            snprintf(want, sizeof want,
                     "different alignments (afmt_opts_set_alignment: %llu to %llu", (ull)lo,
                     (ull)hi);
            const char *msg = afmt_errmsg(NULL);
            if (rc != AFMT_EINVAL || f != NULL)
                rec(__LINE__, "afmt_create with %llu/%llu -> %d, want AFMT_EINVAL",
                    (ull)pairs[i][0], (ull)pairs[i][1], rc);
            else if (!msg || !strstr(msg, want))
                rec(__LINE__, "afmt_create: message \"%s\", want \"%s\"", NSTR(msg), want);
            if (f) afmt_close(f);
            EXPECT(fsize(path) == -1); /* nothing was created */
        }
        afmt_opts_free(o);
        MPI_Barrier(MPI_COMM_WORLD);
    }
    /* afmt_open the same (a file made with agreeing ranks). */
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, AFMT_TRUNC, NULL, __LINE__);
    if (f) EXPECT_OK(f, afmt_close(f));
    afmt_opts *o = opts_aligned(rank == size - 1 ? 8192 : 0, __LINE__);
    int rc = afmt_open(MPI_COMM_WORLD, path, AFMT_RDWR, o, &f);
    if (size > 1) {
        EXPECT(rc == AFMT_EINVAL && f == NULL);
        const char *msg = afmt_errmsg(NULL);
        if (!msg || !strstr(msg, "afmt_open(") || !strstr(msg, "0 to 8192"))
            rec(__LINE__, "afmt_open: message \"%s\"", NSTR(msg));
    } else {
        EXPECT(rc == AFMT_OK);
    }
    if (rc == AFMT_OK && f) EXPECT_OK(f, afmt_close(f));
    afmt_opts_free(o);
    rm_path(path);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_layout), cmocka_unit_test(test_align_4k),
        cmocka_unit_test(test_align_64k),      cmocka_unit_test(test_align_collective),
        cmocka_unit_test(test_bad_values),     cmocka_unit_test(test_ranks_disagree),
    };
    return tu_main(argc, argv, "mpi_align", tests, sizeof tests / sizeof tests[0]);
}
