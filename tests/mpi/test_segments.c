/* test_segments.c - MPI integration of format v2's index: node-level aggregation of the
 * index segments (one segment per node, or per rank with afmt_index_aggregation=rank), the
 * lazily loaded index (a read reads only the segments it needs, through a bounded cache;
 * damage in one segment fails only the reads that need it), and read-your-writes after a
 * commit that shares no chunk records. Values are always compared with a model. */
#define _POSIX_C_SOURCE 200809L
#include "api/file.h"
#include "format/footer.h"
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rank r writes rows [lo, hi) of a 2-D array (chunk-unaligned split). */
static void write_split(afmt_file *f, model *m, uint64_t rows, uint64_t cols, uint64_t seed,
                        int line) {
    int np = tu_size();
    for (int r = 0; r < np; r++) {
        uint64_t lo = rows * (uint64_t)r / (uint64_t)np,
                 hi = rows * (uint64_t)(r + 1) / (uint64_t)np;
        uint64_t s[2] = {lo, 0}, c[2] = {hi - lo, cols};
        if (c[0]) m_write(f, m, r, s, c, seed, line);
    }
}

static afmt_opts *hint_opts(const char *key, const char *value) {
    afmt_opts *o = NULL;
    EXPECT_OK(NULL, afmt_opts_create(&o));
    if (key) {
        MPI_Info info;
        MPI_Info_create(&info);
        MPI_Info_set(info, key, value);
        EXPECT_OK(NULL, afmt_opts_set_mpi_info(o, info));
        MPI_Info_free(&info);
    }
    return o;
}

/* The newest layer's segment count and its provenance "nodes". */
static void expect_segments(afmt_file *f, uint64_t want_segs, int64_t want_nodes, int line) {
    const afmt_layer_info *li = &f->idx.layers[f->idx.n_layers - 1];
    if (li->version != 2) rec(line, "layer version %u, want 2", li->version);
    if (li->n_segs != want_segs)
        rec(line, "the layer has %llu segments, want %llu", (unsigned long long)li->n_segs,
            (unsigned long long)want_segs);
    int64_t nodes = -1;
    uint64_t n = 1;
    EXPECT_OK(f, afmt_layer_attr(f, f->idx.n_layers - 1, "nodes", AFMT_INT64, &n, &nodes));
    if (nodes != want_nodes)
        rec(line, "provenance nodes = %lld, want %lld", (long long)nodes, (long long)want_nodes);
}

/* One node here (every rank shares memory): one segment per layer however many ranks;
 * with afmt_index_aggregation=rank, one per rank that wrote chunks; with
 * afmt_node_group_size=2, one per pair of ranks. The data reads back the same either way,
 * live and after reopening on 1..np ranks. groups: the leaders the hint makes. */
static void run_aggregation(const char *key, const char *value, int groups, const char *tag) {
    const char *path = tu_path(NULL, tag);
    int np = tu_size();
    afmt_opts *o = hint_opts(key, value);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    model ms[2];
    const uint64_t sa[2] = {37, 11}, ca[2] = {5, 4}, sb[1] = {1}; /* edge chunks; a scalar */
    m_init(&ms[0], "grid", AFMT_FLOAT64, 2, sa, ca, NULL);
    m_init(&ms[1], "one", AFMT_INT32, 0, sb, NULL, NULL);
    if (f) {
        EXPECT_OK(f, m_define(f, &ms[0]));
        EXPECT_OK(f, m_define(f, &ms[1]));
        write_split(f, &ms[0], 37, 11, 1, __LINE__);
        uint64_t z = 0;
        m_write(f, &ms[1], np - 1, &z, &z, 2, __LINE__);
        commit_check(f, ms, 2, __LINE__);
        expect_segments(f, (uint64_t)groups, groups, __LINE__); /* every group wrote rows */
        /* a second layer over part of the first: newest wins through the lazy layers */
        uint64_t st[2] = {3, 2}, ct[2] = {20, 7};
        m_write(f, &ms[0], 0, st, ct, 3, __LINE__);
        commit_check(f, ms, 2, __LINE__);
        expect_segments(f, 1, groups, __LINE__); /* only rank 0 wrote */
        close_reopen_check(f, path, ms, 2, __LINE__);
    }
    afmt_opts_free(o);
    m_free_each(ms, 2);
    rm_path(path);
}

static void test_one_segment_per_node(void **state) {
    (void)state;
    run_aggregation(NULL, NULL, 1, "sg-node");
    done();
}

static void test_one_segment_per_rank(void **state) {
    (void)state;
    run_aggregation("afmt_index_aggregation", "rank", tu_size(), "sg-rank");
    done();
}

/* Groups of at most 2 consecutive ranks of the node, each with its own leader: rank 0
 * receives a root record per group. */
static void test_node_groups(void **state) {
    (void)state;
    run_aggregation("afmt_node_group_size", "2", (tu_size() + 1) / 2, "sg-group");
    done();
}

/* Many layers of small segments and a cache of one segment: every read still returns the
 * model's values (segments are read again after eviction, their blocks keep their
 * numbers); the cache never holds more than its bound plus the segment in use. */
static void test_small_cache(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "sg-cache");
    afmt_opts *o = hint_opts("afmt_index_aggregation", "rank");
    EXPECT_OK(NULL, afmt_opts_set_index_cache(o, 0));
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    model m;
    const uint64_t s[1] = {300}, c[1] = {7};
    m_init(&m, "v", AFMT_UINT16, 1, s, c, NULL);
    if (f) {
        EXPECT_OK(f, m_define(f, &m));
        for (int k = 0; k < 6; k++) {
            uint64_t st = (uint64_t)k * 40, ct = 80;
            m_write(f, &m, k % tu_size(), &st, &ct, (uint64_t)k + 10, __LINE__);
            commit_check(f, &m, 1, __LINE__);
        }
        m_check(f, &m, 0, __LINE__);
        uint64_t bytes, entries, reads;
        afmt__segcache_stats(&f->idx, &bytes, &entries, &reads);
        if (entries > 1)
            rec(__LINE__, "cache of 0 bytes holds %llu segments", (unsigned long long)entries);
        if (reads == 0) rec(__LINE__, "no segment was read");
        EXPECT_OK(f, afmt_close(f));
        /* reopened with the same bound */
        afmt_file *g = NULL;
        EXPECT_OK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, o, &g));
        if (g) {
            m_check(g, &m, 0, __LINE__);
            m_check(g, &m, 0, __LINE__); /* twice: through evictions */
            EXPECT_OK(g, afmt_close(g));
        }
    }
    afmt_opts_free(o);
    m_free(&m);
    rm_path(path);
    done();
}

/* Damage in one segment: afmt_open still succeeds (it reads footers only); reads of the
 * array whose chunks are in that segment fail with AFMT_ECORRUPT naming the layer and the
 * segment; the other array, in another layer, reads exactly. Rank 0 damages a copy. */
static void test_damaged_segment(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "sg-dmg");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[2];
    const uint64_t s[1] = {64}, c[1] = {8};
    m_init(&ms[0], "a", AFMT_INT64, 1, s, c, NULL);
    m_init(&ms[1], "b", AFMT_INT64, 1, s, c, NULL);
    uint64_t seg_off = 0;
    if (f) {
        EXPECT_OK(f, m_define(f, &ms[0]));
        EXPECT_OK(f, m_define(f, &ms[1]));
        uint64_t z = 0, n = 64;
        m_write(f, &ms[1], 0, &z, &n, 5, __LINE__); /* layer 1: b */
        commit_check(f, ms, 2, __LINE__);
        m_write(f, &ms[0], 0, &z, &n, 6, __LINE__); /* layer 2: a */
        commit_check(f, ms, 2, __LINE__);
        const afmt_layer_info *li = &f->idx.layers[f->idx.n_layers - 1];
        if (li->lazy && li->n_segs == 1)
            seg_off = li->segs[0].offset;
        else
            rec(__LINE__, "layer 2 is not lazy with one segment");
        EXPECT_OK(f, afmt_close(f));
    }
    flip_bit(path, seg_off ? seg_off + 70 : 0); /* a byte of the segment's records */
    afmt_file *g = NULL;
    EXPECT_OK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &g));
    if (g) {
        m_check(g, &ms[1], 0, __LINE__); /* b: its segment is intact */
        int64_t buf[64];
        uint64_t z = 0, n = 64;
        int rc = afmt_read(g, "a", &z, &n, buf);
        if (rc != AFMT_ECORRUPT) rec(__LINE__, "read of a -> %d, want AFMT_ECORRUPT", rc);
        const char *msg = afmt_errmsg(g);
        if (!msg || !strstr(msg, "afmt_read(\"a\")") || !strstr(msg, "layer 2: segment 0"))
            rec(__LINE__, "message \"%s\" does not name the read, layer and segment",
                msg ? msg : "(null)");
        m_check(g, &ms[1], 0, __LINE__); /* still readable afterwards */
        EXPECT_OK(g, afmt_close(g));
    }
    m_free_each(ms, 2);
    rm_path(path);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_segment_per_node), cmocka_unit_test(test_one_segment_per_rank),
        cmocka_unit_test(test_node_groups),          cmocka_unit_test(test_small_cache),
        cmocka_unit_test(test_damaged_segment),
    };
    return tu_main(argc, argv, "segments", tests, sizeof tests / sizeof tests[0]);
}
