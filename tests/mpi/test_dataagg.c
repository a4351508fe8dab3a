/* test_dataagg.c - MPI integration: data aggregation (MPI_Info hint
 * afmt_data_aggregation=node, aggregate.h): the node leader writes the data blocks of every
 * rank of its node, then the node's index segment, as one region; the other ranks stream
 * their blocks to it and write nothing.
 *  - The layout, as the file holds it: every rank but the leader wrote 0 bytes
 *    (afmt__commit_stats); the layer's blocks lie contiguously from its data_offset in
 *    origin rank order, each block record keeps its origin rank (each rank's count of
 *    blocks matches), the one segment follows them and the footer follows the segment.
 *    Without the hint the same check sees one region per writing rank (the check can
 *    fail).
 *  - Data read back equals data written: after each commit, with several layers, shared
 *    (merged) chunks, ranks without data, pieces of odd sizes (the test hook
 *    afmt__set_node_piece), a small memory budget (every block spilled), reopened on every
 *    rank, on fewer and on one, and written again on fewer ranks; compaction.
 *  - Combinations: with afmt_index_aggregation=rank each rank is its own node, so every
 *    rank writes its own blocks; with afmt_collective_write=true the leader writes
 *    independently; with afmt_node_group_size=2 each group's leader writes its group's
 *    blocks (several writers); ranks that disagree on the hint all take the per-rank path.
 *  - Faults, on one rank: every storage write of the leader fails in turn (fault wrapper,
 *    storage.h), and a non-leader's spilled block is damaged so that its stream ends
 *    early: every rank returns the same code, the file reads as the previous commit, and
 *    the leader drained every stream (nothing hangs). */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/aggregate.h"  /* afmt__set_node_piece */
#include "api/file.h"       /* f->node_data, f->super, f->st, afmt__commit_stats */
#include "format/segment.h" /* the layer's segments, read from the file */
#include "index/alloc.h"    /* afmt__alloc_spilled_bytes */
#include "storage/storage.h"

#define KIB ((uint64_t)1024)

typedef unsigned long long ull;

/* Options: block size, memory budget (0: default), spill dir (NULL: default), codec none
 * (for exact byte counts) or the default LZ4 + shuffle, and the MPI_Info hints given as
 * key/value pairs (NULL-terminated). */
static afmt_opts *make_opts(uint64_t block, uint64_t budget, const char *spill, int raw,
                            const char *const *kv) {
    afmt_opts *o = NULL;
    EXPECT_OK(NULL, afmt_opts_create(&o));
    if (block) EXPECT_OK(NULL, afmt_opts_set_block_size(o, block));
    if (budget) EXPECT_OK(NULL, afmt_opts_set_mem_budget(o, budget));
    if (spill) EXPECT_OK(NULL, afmt_opts_set_spill_dir(o, spill));
    if (raw) EXPECT_OK(NULL, afmt_opts_set_codec(o, AFMT_CODEC_NONE, 0));
    if (kv && kv[0]) {
        MPI_Info info;
        MPI_Info_create(&info);
        for (int i = 0; kv[i]; i += 2) MPI_Info_set(info, kv[i], kv[i + 1]);
        EXPECT_OK(NULL, afmt_opts_set_mpi_info(o, info));
        MPI_Info_free(&info);
    }
    return o;
}

static const char *const NODE[] = {"afmt_data_aggregation", "node", NULL};

/* One item of a layer's data region: a block (rank: its origin) or a segment (its writer). */
typedef struct {
    uint64_t offset, length;
    uint32_t rank;
    int seg;
} item;

static int item_cmp(const void *a, const void *b) {
    const item *x = a, *y = b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* COLLECTIVE over f's communicator. Checks the newest layer's placement; node: the hint
 * is in effect: each group's leader (node rank 0; the groups are consecutive ranks here,
 * one machine) wrote the group's blocks, contiguously in rank order, then the group's
 * segment, and the other ranks wrote nothing; else every rank wrote its own blocks.
 * Returns the number of ranks that wrote bytes. */
static int check_layout(afmt_file *f, int node, const char *what, int line) {
    afmt_commit_stats st;
    memset(&st, 0, sizeof st);
    EXPECT_OK_AT(line, f, afmt__commit_stats(f, &st));
    int size = f->size, lead_mine = f->rank - f->node_rank;
    uint64_t *mine = calloc((size_t)size, sizeof *mine), *nbl = calloc((size_t)size, sizeof *nbl);
    int *lead = calloc((size_t)size, sizeof *lead);
    MPI_Allgather(&st.bytes_written, 1, MPI_UINT64_T, mine, 1, MPI_UINT64_T, f->comm);
    MPI_Allgather(&st.blocks, 1, MPI_UINT64_T, nbl, 1, MPI_UINT64_T, f->comm);
    MPI_Allgather(&lead_mine, 1, MPI_INT, lead, 1, MPI_INT, f->comm);
    if (f->node_data != node) rec(line, "%s: node_data %d, want %d", what, f->node_data, node);
    uint64_t foff = f->super.footer_offset;
    afmt_layer L;
    int rc = read_newest_layer(f, &L, what, line);
    int writers = 0;
    uint64_t total = 0;
    for (int r = 0; r < size; r++) {
        writers += mine[r] > 0;
        total += mine[r];
        uint64_t n = 0;
        for (uint64_t b = 0; b < L.n_blocks; b++) n += L.blocks[b].rank == (uint32_t)r;
        if (n != nbl[r]) /* the records keep their origin rank */
            rec(line, "%s: %llu block records name rank %d, which sealed %llu", what, (ull)n, r,
                (ull)nbl[r]);
        if (node && lead[r] != r && mine[r])
            rec(line, "%s: rank %d wrote %llu bytes, want 0 (its leader %d writes them)", what, r,
                (ull)mine[r], lead[r]);
    }
    if (rc == AFMT_OK && total != foff - L.data_offset)
        rec(line, "%s: the ranks wrote %llu bytes, the layer's region is %llu", what, (ull)total,
            (ull)(foff - L.data_offset));
    if (node && rc == AFMT_OK) {
        /* Blocks and segments in offset order: no gap from data_offset to the footer; each
         * group's blocks in rank order, then its leader's segment. */
        uint64_t n = L.n_blocks + L.n_segs, pos = L.data_offset;
        item *it = malloc(sizeof *it * (size_t)(n + 1));
        for (uint64_t b = 0; b < L.n_blocks; b++)
            it[b] = (item){L.blocks[b].offset, L.blocks[b].stored_size, L.blocks[b].rank, 0};
        for (uint64_t g = 0; g < L.n_segs; g++)
            it[L.n_blocks + g] = (item){L.segs[g].offset, L.segs[g].length, L.segs[g].writer, 1};
        qsort(it, (size_t)n, sizeof *it, item_cmp);
        int cur = -1, open = 0;
        uint32_t last = 0;
        for (uint64_t i = 0; i < n; i++) {
            if (it[i].offset != pos)
                rec(line, "%s: %s of rank %u at %llu, want %llu", what,
                    it[i].seg ? "segment" : "block", it[i].rank, (ull)it[i].offset, (ull)pos);
            pos = it[i].offset + it[i].length;
            int r = (int)it[i].rank;
            if (it[i].seg) {
                if (!open || r != cur)
                    rec(line, "%s: segment of rank %d at %llu after group %d's blocks", what, r,
                        (ull)it[i].offset, cur);
                open = 0;
                continue;
            }
            if (r >= size) continue;
            if (lead[r] != cur) {
                if (open) rec(line, "%s: group %d's blocks have no segment after them", what, cur);
                cur = lead[r];
                open = 1;
                last = it[i].rank;
            }
            if (it[i].rank < last)
                rec(line, "%s: rank %u's block at %llu after rank %u's", what, it[i].rank,
                    (ull)it[i].offset, last);
            last = it[i].rank;
        }
        if (open) rec(line, "%s: group %d's blocks have no segment after them", what, cur);
        if (pos != foff) rec(line, "%s: footer at %llu, want %llu", what, (ull)foff, (ull)pos);
        free(it);
    }
    afmt__layer_free(&L);
    free(mine);
    free(nbl);
    free(lead);
    return writers;
}

/* Rank q's rows [lo, lo+n) of commit k of a ROWS-row array: chunk-unaligned slabs; in
 * commit 1 rank 1 % size writes nothing and the others a window (merged chunks). */
#define ROWS ((uint64_t)301)
#define COLS ((uint64_t)50)
static void rows_of(int q, int k, int size, uint64_t *lo, uint64_t *n) {
    uint64_t a = ROWS * (uint64_t)q / (uint64_t)size, b = ROWS * (uint64_t)(q + 1) / (uint64_t)size;
    *lo = a;
    *n = b - a;
    if (k == 1) {
        *lo = a + 3 < b ? a + 3 : a;
        *n = size > 1 && q == 1 % size ? 0 : (b - *lo) / 2;
    }
}

/* Every rank records every rank's writes of commit k in its model; only the writer
 * stages them (m_write). A second array written by the last rank alone. */
static void write_layer(afmt_file *f, model *m, int k, uint64_t seed) {
    int size = f->size;
    for (int q = 0; q < size; q++) {
        uint64_t lo, n;
        rows_of(q, k, size, &lo, &n);
        if (n == 0) continue;
        uint64_t st[2] = {lo, k == 1 ? 7 : 0}, ct[2] = {n, k == 1 ? 31 : COLS};
        m_write(f, &m[0], q, st, ct, seed, __LINE__);
    }
    uint64_t st[1] = {(uint64_t)k * 17}, ct[1] = {900 - (uint64_t)k * 17};
    m_write(f, &m[1], size - 1, st, ct, seed + 100, __LINE__);
}

static void init_models(model *m) {
    const uint64_t s0[2] = {ROWS, COLS}, c0[2] = {16, 12}, s1[1] = {900}, c1[1] = {64};
    m_init(&m[0], "grid", AFMT_FLOAT64, 2, s0, c0, NULL);
    m_init(&m[1], "line", AFMT_INT32, 1, s1, c1, NULL);
}

/* Two layers with the hint (pieces of `piece` bytes, 0: the default), checked after each
 * commit and reopened; with budget, every block spills (spill dir of this rank). */
static void run_roundtrip(uint64_t piece, uint64_t budget, int raw, const char *tag) {
    const char *path = tu_path(NULL, tag);
    char dir[512] = "";
    if (budget) {
        snprintf(dir, sizeof dir, "%s/afmt-dataagg-spill-%d-XXXXXX", AFMT_TEST_SCRATCH, tu_rank());
        if (!mkdtemp(dir)) {
            rec(__LINE__, "mkdtemp(%s): %s", dir, strerror(errno));
            dir[0] = 0;
        }
    }
    afmt__set_node_piece(piece);
    afmt_opts *o = make_opts(4 * KIB, budget, dir[0] ? dir : NULL, raw, NODE);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    model m[2];
    init_models(m);
    if (f) {
        for (int i = 0; i < 2; i++) EXPECT_OK(f, m_define(f, &m[i]));
        for (int k = 0; k < 2; k++) {
            write_layer(f, m, k, 10u + (uint64_t)k);
            if (budget && f->alloc && afmt__alloc_spilled_bytes(f->alloc) == 0 &&
                afmt__alloc_stored_bytes(f->alloc) > 2 * budget)
                rec(__LINE__, "%s: nothing spilled under a budget of %llu", tag, (ull)budget);
            commit_check(f, m, 2, __LINE__);
            EXPECT(check_layout(f, 1, tag, __LINE__) == f->n_nodes);
        }
        /* A commit of metadata only: nothing to stream. */
        int64_t one = 1;
        EXPECT_OK(f, afmt_set_attr(f, NULL, "meta", AFMT_INT64, 1, &one));
        EXPECT_OK(f, afmt_commit(f));
        /* Compaction writes its BASE layer the same way. */
        EXPECT_OK(f, afmt_compact(f));
        check_all(f, m, 2, __LINE__);
        EXPECT(check_layout(f, 1, "compacted", __LINE__) == f->n_nodes);
        close_reopen_check(f, path, m, 2, __LINE__);
    }
    afmt__set_node_piece(0);
    afmt_opts_free(o);
    m_free_each(m, 2);
    rm_path(path);
    if (dir[0]) rmdir(dir);
    done();
}

/* Pieces far smaller than a rank's bytes and of no round size: many messages per stream,
 * a piece ending inside a block. */
static void test_small_pieces(void **state) {
    (void)state;
    run_roundtrip(3001, 0, 0, "dataagg-pieces");
}

/* The default piece (32 MiB): one message per rank, raw blocks. */
static void test_default_piece(void **state) {
    (void)state;
    run_roundtrip(0, 0, 1, "dataagg-default");
}

/* A budget of 8 KiB: the blocks spill, and the streams read them back piece by piece. */
static void test_spilled(void **state) {
    (void)state;
    run_roundtrip(5000, 8 * KIB, 0, "dataagg-spill");
}

/* Without the hint: one region per writing rank (the layout check tells them apart). */
static void test_without_hint(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "dataagg-off");
    afmt_opts *o = make_opts(4 * KIB, 0, NULL, 1, NULL);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    model m[2];
    init_models(m);
    if (f) {
        for (int i = 0; i < 2; i++) EXPECT_OK(f, m_define(f, &m[i]));
        write_layer(f, m, 0, 5);
        commit_check(f, m, 2, __LINE__);
        EXPECT(check_layout(f, 0, "no hint", __LINE__) == f->size);
        close_reopen_check(f, path, m, 2, __LINE__);
    }
    afmt_opts_free(o);
    m_free_each(m, 2);
    rm_path(path);
    done();
}

/* Written with the hint on every rank, then reopened for writing with the hint on
 * max(1, size-1) ranks (another node size), a layer added there, and all of it read back
 * by every rank. */
static void test_other_rank_count(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "dataagg-fewer");
    afmt__set_node_piece(2048);
    afmt_opts *o = make_opts(4 * KIB, 0, NULL, 0, NODE);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    model m[2];
    init_models(m);
    if (f) {
        for (int i = 0; i < 2; i++) EXPECT_OK(f, m_define(f, &m[i]));
        write_layer(f, m, 0, 20);
        commit_check(f, m, 2, __LINE__);
        EXPECT_OK(f, afmt_close(f));
    }
    MPI_Comm c = reopen_comm(1);
    /* Every rank records the writes of the sub-communicator's ranks (world rank q writes
     * as q of c; the left-out last rank is not among them). */
    int n = tu_size() > 1 ? tu_size() - 1 : 1;
    afmt_file *g = NULL;
    int ok = 1;
    if (c != MPI_COMM_NULL) {
        g = xopen(c, path, 1, AFMT_RDWR, o, __LINE__);
        ok = g != NULL;
    }
    if (all_true(ok, MPI_COMM_WORLD)) {
        for (int q = 0; q < n; q++) {
            uint64_t lo = ROWS * (uint64_t)q / (uint64_t)n,
                     hi = ROWS * (uint64_t)(q + 1) / (uint64_t)n;
            uint64_t st[2] = {lo, 5}, ct[2] = {hi - lo, 20};
            if (hi > lo) m_write(g, &m[0], q, st, ct, 21, __LINE__);
        }
        if (g) {
            EXPECT_OK(g, afmt_commit(g));
            EXPECT(check_layout(g, 1, "fewer ranks", __LINE__) == g->n_nodes);
        }
        for (int i = 0; i < 2; i++) m_committed(&m[i]);
        if (g) check_all(g, m, 2, __LINE__);
    }
    if (g) EXPECT_OK(g, afmt_close(g));
    if (c != MPI_COMM_NULL) MPI_Comm_free(&c);
    reopen_check(path, m, 2, __LINE__);
    afmt__set_node_piece(0);
    afmt_opts_free(o);
    m_free_each(m, 2);
    rm_path(path);
    done();
}

/* A hint combination: kv as make_opts takes it; node: data aggregation should be in
 * effect. */
static void run_combination(const char *const *kv, int node, const char *tag) {
    const char *path = tu_path(NULL, tag);
    afmt__set_node_piece(1000);
    afmt_opts *o = make_opts(4 * KIB, 0, NULL, 0, kv);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    model m[2];
    init_models(m);
    if (f) {
        for (int i = 0; i < 2; i++) EXPECT_OK(f, m_define(f, &m[i]));
        for (int k = 0; k < 2; k++) {
            write_layer(f, m, k, 30u + (uint64_t)k);
            commit_check(f, m, 2, __LINE__);
            int w = check_layout(f, node, tag, __LINE__);
            if (k == 0 && w != (node ? f->n_nodes : f->size))
                rec(__LINE__, "%s: %d ranks wrote, want %d", tag, w, node ? f->n_nodes : f->size);
        }
        close_reopen_check(f, path, m, 2, __LINE__);
    }
    afmt__set_node_piece(0);
    afmt_opts_free(o);
    m_free_each(m, 2);
    rm_path(path);
    done();
}

/* afmt_index_aggregation=rank: every rank is its own node, data aggregation is off. */
static void test_with_index_per_rank(void **state) {
    (void)state;
    const char *const kv[] = {"afmt_data_aggregation", "node", "afmt_index_aggregation", "rank",
                              NULL};
    run_combination(kv, 0, "dataagg-idxrank");
}

/* afmt_collective_write=true: the leaders write independently, the data is the same. */
static void test_with_collective(void **state) {
    (void)state;
    const char *const kv[] = {"afmt_data_aggregation", "node", "afmt_collective_write", "true",
                              NULL};
    run_combination(kv, 1, "dataagg-coll");
}

/* Groups of 2 ranks (afmt_node_group_size): several leaders, each writing its group's
 * blocks and segment as one region. */
static void test_with_groups(void **state) {
    (void)state;
    const char *const kv[] = {"afmt_data_aggregation", "node", "afmt_node_group_size", "2", NULL};
    run_combination(kv, 1, "dataagg-groups");
}

/* The hint on rank 0 only: every rank takes the per-rank path. */
static void test_hint_on_one_rank(void **state) {
    (void)state;
    const char *const on[] = {"afmt_data_aggregation", "node", NULL};
    const char *const off[] = {"afmt_data_aggregation", "rank", NULL};
    run_combination(tu_rank() == 0 ? on : off, tu_size() == 1, "dataagg-mixed");
}

/* ---- faults --------------------------------------------------------------------------- */

/* "a" of PER uint64 per rank in chunks of CH, raw 1 KiB blocks: rank r writes its part. */
#define PER ((uint64_t)700)
#define CH  ((uint64_t)100)

static void write_a(afmt_file *f, model *m, uint64_t seed) {
    for (int q = 0; q < tu_size(); q++) {
        uint64_t st[1] = {(uint64_t)q * PER}, ct[1] = {PER};
        m_write(f, m, f ? q : -1, st, ct, seed, __LINE__); /* f NULL: the model only */
    }
}

/* Every rank returned the same code. */
static int same_everywhere(int rc) {
    int lo = 0, hi = 0;
    MPI_Allreduce(&rc, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&rc, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return lo == hi;
}

/* Each storage write the leader makes in a commit of layer 2 fails in turn (a count-only
 * run first): its own blocks, each piece of each node rank's stream, the segment, the
 * footer, the slot. Every rank gets AFMT_EIO, the file reads as layer 1 (the slot
 * failure too: nothing was published), and the retried commit gives layer 2. */
static void test_leader_write_fails(void **state) {
    (void)state;
    int size = tu_size();
    uint64_t shape[1] = {PER * (uint64_t)size}, chunk[1] = {CH};
    afmt__set_node_piece(1500); /* several pieces per stream */
    afmt_opts *o = make_opts(KIB, 0, NULL, 1, NODE);
    uint64_t T = 0;
    for (uint64_t nth = 0; nth <= T + 1; nth++) {
        char what[64];
        snprintf(what, sizeof what, "leader write %llu of %llu", (ull)nth, (ull)T);
        const char *path = tu_path(NULL, "dataagg-fault");
        afmt_storage_fault count = {AFMT_FAULT_WRITE, 0, 0, AFMT_FAULT_FAIL, -1};
        EXPECT_OK(NULL, afmt__storage_set_fault(&count));
        afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
        if (!f) {
            afmt__storage_set_fault(NULL);
            break;
        }
        model m;
        m_init(&m, "a", AFMT_UINT64, 1, shape, chunk, NULL);
        EXPECT_OK(f, m_define(f, &m));
        write_a(f, &m, 1);
        commit_check(f, &m, 1, __LINE__);
        write_a(f, &m, 2);
        afmt_storage_fault spec = {AFMT_FAULT_WRITE, nth, EIO, AFMT_FAULT_FAIL, 0};
        uint64_t inj0 = afmt__storage_fault_injected();
        EXPECT_OK(NULL, afmt__storage_set_fault(&spec));
        int rc = afmt_commit(f);
        uint64_t calls = afmt__storage_fault_calls(AFMT_FAULT_WRITE);
        int hit = afmt__storage_fault_injected() > inj0;
        afmt__storage_set_fault(NULL);
        int any_hit = !all_true(!hit, MPI_COMM_WORLD);
        EXPECT(same_everywhere(rc));
        if (nth == 0) {
            MPI_Bcast(&calls, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
            T = calls;
            /* own blocks (1), the others' pieces (>= 2 each), segment, footer, slot */
            if (T < 4 + 2 * (uint64_t)(size - 1))
                rec(__LINE__, "%s: the leader made %llu writes", what, (ull)T);
            EXPECT(rc == AFMT_OK);
            m_committed(&m);
        } else if (!any_hit) {
            if (nth != T + 1) rec(__LINE__, "%s: no fault injected", what);
            EXPECT(rc == AFMT_OK);
            m_committed(&m);
        } else {
            if (rc != AFMT_EIO)
                rec(__LINE__, "%s: commit -> %d, want AFMT_EIO: %s", what, rc,
                    NSTR(afmt_errmsg(f)));
            if (nth + 2 < T && !strstr(NSTR(afmt_errmsg(f)), "writing data blocks"))
                rec(__LINE__, "%s: message: %s", what, NSTR(afmt_errmsg(f)));
            /* still layer 1, live and reopened */
            uint64_t nl = 0;
            EXPECT_OK(f, afmt_layers(f, &nl));
            EXPECT(nl == 1);
            model old;
            m_init(&old, "a", AFMT_UINT64, 1, shape, chunk, NULL);
            write_a(NULL, &old, 1);
            m_committed(&old);
            reopen_check(path, &old, 1, __LINE__);
            m_free(&old);
            /* the retry commits layer 2 */
            rc = afmt_commit(f);
            EXPECT(same_everywhere(rc));
            if (rc != AFMT_OK) rec(__LINE__, "%s: retry -> %d: %s", what, rc, NSTR(afmt_errmsg(f)));
            m_committed(&m);
        }
        m_check(f, &m, 0, __LINE__);
        EXPECT_OK(NULL, afmt_close(f));
        reopen_check(path, &m, 1, __LINE__);
        m_free(&m);
        rm_path(path);
        if (nth > 0 && !any_hit) break;
    }
    afmt__set_node_piece(0);
    afmt_opts_free(o);
    done();
}

/* The descriptor of this process's (unlinked) spill file, or -1. */
static int spill_fd(void) {
    DIR *dp = opendir("/proc/self/fd");
    if (!dp) return -1;
    int fd = -1;
    struct dirent *e;
    while (fd < 0 && (e = readdir(dp))) {
        char link[300], target[1024];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = 0;
        if (strstr(target, "afmt-spill-") && strstr(target, "(deleted)")) fd = atoi(e->d_name);
    }
    closedir(dp);
    return fd;
}

/* The last rank's spilled blocks are damaged before the commit: its stream to the leader
 * ends early (the piece fails its checksum). Every rank gets AFMT_ECORRUPT naming the
 * spill file, the file stays layer 1, and after afmt_discard the handle commits again. */
static void test_sender_fails(void **state) {
    (void)state;
    int size = tu_size(), rank = tu_rank();
    if (size == 1) { /* no node rank but the leader */
        done();
        return;
    }
    char dir[512];
    snprintf(dir, sizeof dir, "%s/afmt-dataagg-bad-%d-XXXXXX", AFMT_TEST_SCRATCH, rank);
    if (!mkdtemp(dir)) {
        rec(__LINE__, "mkdtemp(%s): %s", dir, strerror(errno));
        dir[0] = 0;
    }
    uint64_t shape[1] = {PER * (uint64_t)size}, chunk[1] = {CH};
    afmt__set_node_piece(1500);
    afmt_opts *o = make_opts(KIB, 2 * KIB, dir[0] ? dir : NULL, 1, NODE);
    const char *path = tu_path(NULL, "dataagg-sender");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    model m;
    m_init(&m, "a", AFMT_UINT64, 1, shape, chunk, NULL);
    if (f) {
        EXPECT_OK(f, m_define(f, &m));
        write_a(f, &m, 1);
        commit_check(f, &m, 1, __LINE__);
        model staged;
        m_init(&staged, "a", AFMT_UINT64, 1, shape, chunk, NULL);
        write_a(f, &staged, 2);
        m_free(&staged);
        if (rank == size - 1) {
            uint64_t spilled = f->alloc ? afmt__alloc_spilled_bytes(f->alloc) : 0;
            int fd = spill_fd();
            uint8_t b = 0;
            if (spilled < 2 * KIB || fd < 0 || pread(fd, &b, 1, (off_t)(spilled / 2)) != 1) {
                rec(__LINE__, "no spill file to damage (%llu bytes spilled, fd %d)", (ull)spilled,
                    fd);
            } else {
                b ^= 0x21;
                if (pwrite(fd, &b, 1, (off_t)(spilled / 2)) != 1) rec(__LINE__, "pwrite failed");
            }
        }
        int rc = afmt_commit(f);
        EXPECT(same_everywhere(rc));
        if (rc != AFMT_ECORRUPT)
            rec(__LINE__, "commit -> %d, want AFMT_ECORRUPT: %s", rc, NSTR(afmt_errmsg(f)));
        if (!strstr(NSTR(afmt_errmsg(f)), "spill file"))
            rec(__LINE__, "message: %s", NSTR(afmt_errmsg(f)));
        uint64_t nl = 0;
        EXPECT_OK(f, afmt_layers(f, &nl));
        EXPECT(nl == 1);
        reopen_check(path, &m, 1, __LINE__);
        /* The damaged writes dropped (the handle reads layer 1), a fresh layer commits. */
        EXPECT_OK(f, afmt_discard(f));
        m_check(f, &m, 0, __LINE__);
        write_a(f, &m, 3);
        commit_check(f, &m, 1, __LINE__);
        EXPECT(check_layout(f, 1, "after the failed commit", __LINE__) == f->n_nodes);
        EXPECT_OK(f, afmt_close(f));
        reopen_check(path, &m, 1, __LINE__);
    }
    afmt__set_node_piece(0);
    m_free(&m);
    afmt_opts_free(o);
    rm_path(path);
    if (dir[0]) rmdir(dir);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_pieces),     cmocka_unit_test(test_default_piece),
        cmocka_unit_test(test_spilled),          cmocka_unit_test(test_without_hint),
        cmocka_unit_test(test_other_rank_count), cmocka_unit_test(test_with_index_per_rank),
        cmocka_unit_test(test_with_collective),  cmocka_unit_test(test_with_groups),
        cmocka_unit_test(test_hint_on_one_rank), cmocka_unit_test(test_leader_write_fails),
        cmocka_unit_test(test_sender_fails),
    };
    return tu_main(argc, argv, "mpi_dataagg", tests, sizeof tests / sizeof tests[0]);
}
