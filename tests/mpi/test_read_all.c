/* test_read_all.c - afmt_read_all, the collective read: a file of several layers written by
 * every rank with a segment per rank (afmt_index_aggregation=rank), some chunks only in
 * older layers (fall-through), reopened and read back with overlapping, disjoint, odd and
 * empty selections: the bytes equal the model's and afmt_read's; the segment-read
 * counters (afmt__segcache_stats) summed over a node show each needed segment read once
 * per node, where afmt_read reads it once per rank; a damaged segment fails every rank
 * with AFMT_ECORRUPT; bad input on one rank fails every rank with its code; a tiny index
 * cache still reads the right bytes. */
#define _POSIX_C_SOURCE 200809L
#include "api/file.h"
#include "api/read.h"
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ROWS = 29, COLS = 23 };
static const uint64_t shape_u[2] = {ROWS, COLS}, chunk_u[2] = {4, 5};

static afmt_opts *rank_opts(void) {
    afmt_opts *o = NULL;
    EXPECT_OK(NULL, afmt_opts_create(&o));
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "afmt_index_aggregation", "rank");
    EXPECT_OK(NULL, afmt_opts_set_mpi_info(o, info));
    MPI_Info_free(&info);
    return o;
}

/* Rows [lo, hi) of box (s, c) for rank r of np (a split along the first dimension). */
static void split_write(afmt_file *f, model *m, const uint64_t *s, const uint64_t *c, uint64_t seed,
                        int line) {
    int np = tu_size();
    for (int r = 0; r < np; r++) {
        uint64_t lo = c[0] * (uint64_t)r / (uint64_t)np,
                 hi = c[0] * (uint64_t)(r + 1) / (uint64_t)np;
        uint64_t st[2] = {s[0] + lo, s[1]}, ct[2] = {hi - lo, c[1]};
        if (ct[0]) m_write(f, m, r, st, ct, seed, line);
    }
}

/* The file of the suite: "u" (29 x 23 float64 in 4 x 5 chunks) in three layers, every
 * rank writing part of the first two, rank 0 alone the third (one segment), so that
 * chunks fall through from layer 3 to 2 to 1; "v" (int32, 1-d) only in layer 2. per_rank:
 * with the hint afmt_index_aggregation=rank (a segment per rank that wrote chunks), else
 * one segment per node. */
static void make_file(const char *path, model ms[2], int per_rank) {
    afmt_opts *o = per_rank ? rank_opts() : NULL;
    m_init(&ms[0], "u", AFMT_FLOAT64, 2, shape_u, chunk_u, NULL);
    const uint64_t sv[1] = {101}, cv[1] = {9};
    m_init(&ms[1], "v", AFMT_INT32, 1, sv, cv, NULL);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    if (f) {
        EXPECT_OK(f, m_define(f, &ms[0]));
        const uint64_t s1[2] = {0, 0}, c1[2] = {ROWS, COLS};
        split_write(f, &ms[0], s1, c1, 1, __LINE__);
        commit_check(f, ms, 1, __LINE__);
        EXPECT_OK(f, m_define(f, &ms[1]));
        const uint64_t s2[2] = {3, 2}, c2[2] = {15, 12};
        split_write(f, &ms[0], s2, c2, 2, __LINE__);
        const uint64_t s2v[2] = {0, 0}, c2v[2] = {101, 1};
        split_write(f, &ms[1], s2v, c2v, 3, __LINE__);
        commit_check(f, ms, 2, __LINE__);
        const uint64_t s3[2] = {9, 6}, c3[2] = {6, 7};
        m_write(f, &ms[0], 0, s3, c3, 4, __LINE__);
        commit_check(f, ms, 2, __LINE__);
        EXPECT_OK(f, afmt_close(f));
    }
    afmt_opts_free(o);
}

/* buf (the hyperslab s, c of m) against the model's committed content. */
static void expect_model(const model *m, const uint64_t *s, const uint64_t *c, const void *buf,
                         int line) {
    const unsigned char *b = buf;
    uint64_t n = c[0] * c[1], bad = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t r = s[0] + i / c[1], col = s[1] + i % c[1];
        if (memcmp(b + i * m->es, m->all + (r * m->shape[1] + col) * m->es, m->es) != 0) bad++;
    }
    if (bad)
        rec(line, "%s [%llu+%llu, %llu+%llu]: %llu elements differ from the model", m->name,
            (unsigned long long)s[0], (unsigned long long)c[0], (unsigned long long)s[1],
            (unsigned long long)c[1], (unsigned long long)bad);
}

static const model *g_model_u; /* "u" of the file test_counts reads */
static void expect_model_u(const uint64_t *s, const uint64_t *c, const void *buf, int line) {
    if (g_model_u) expect_model(g_model_u, s, c, buf, line);
}

/* Segments read by this handle so far, summed over the ranks of node (a communicator). */
static uint64_t node_reads(afmt_file *f, MPI_Comm node) {
    uint64_t bytes = 0, entries = 0, reads = 0, sum = 0;
    if (f) afmt__segcache_stats(&f->idx, &bytes, &entries, &reads);
    MPI_Allreduce(&reads, &sum, 1, MPI_UINT64_T, MPI_SUM, node);
    return sum;
}

static afmt_file *reopen(const char *path, const afmt_opts *o) {
    afmt_file *g = NULL;
    EXPECT_OK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, o, &g));
    return g;
}

/* Selection kinds: 0 the whole array on every rank (all overlap), 1 disjoint row bands, 2
 * odd overlapping boxes, 3 as 2 with rank 0 reading nothing, 4 rank 0 one chunk in layer
 * 3's key range but only in layer 1 (it needs layer 2's segment in its second round), the
 * others the first chunk row (layer 2's segment in their first round). */
static int selection(int kind, uint64_t *s, uint64_t *c) {
    int r = tu_rank(), np = tu_size();
    uint64_t R = (uint64_t)r;
    switch (kind) {
    case 0:
        s[0] = s[1] = 0;
        c[0] = ROWS;
        c[1] = COLS;
        return 1;
    case 1: {
        uint64_t lo = ROWS * R / (uint64_t)np, hi = ROWS * (R + 1) / (uint64_t)np;
        s[0] = lo;
        s[1] = 0;
        c[0] = hi - lo;
        c[1] = COLS;
        return c[0] > 0;
    }
    case 4:
        s[0] = r == 0 ? 8 : 0;
        s[1] = r == 0 ? 15 : 0;
        c[0] = 4;
        c[1] = r == 0 ? 5 : COLS;
        return 1;
    default:
        if (kind == 3 && r == 0 && np > 1) {
            s[0] = s[1] = 0;
            c[0] = c[1] = 0;
            return 0;
        }
        s[0] = (3 * R + 1) % 11;
        s[1] = (5 * R + 2) % 13;
        c[0] = ROWS - s[0] - (R % 3);
        c[1] = 7 + (R * 4) % (COLS - s[1] - 6);
        return 1;
    }
}

/* Every kind of selection: afmt_read_all's bytes equal the model's and afmt_read's (on
 * another handle); "v", written in layer 2 only, too. */
static void run_bytes(const char *path, const afmt_opts *o, const model ms[2]) {
    afmt_file *g = reopen(path, o), *h = reopen(path, o);
    if (!g || !h) {
        if (g) afmt_close(g);
        if (h) afmt_close(h);
        return;
    }
    double *a = malloc(sizeof(double) * ROWS * COLS), *b = malloc(sizeof(double) * ROWS * COLS);
    for (int kind = 0; kind < 5; kind++) {
        uint64_t s[2], c[2];
        int any = selection(kind, s, c);
        memset(a, 0xab, sizeof(double) * ROWS * COLS);
        memset(b, 0xcd, sizeof(double) * ROWS * COLS);
        int rc = afmt_read_all(g, "u", any ? s : NULL, c, any ? a : NULL);
        if (rc != AFMT_OK)
            rec(__LINE__, "kind %d: afmt_read_all -> %d: %s", kind, rc, afmt_errmsg(g));
        if (!any) continue;
        expect_model(&ms[0], s, c, a, __LINE__);
        EXPECT_OK(h, afmt_read(h, "u", s, c, b));
        if (memcmp(a, b, sizeof(double) * c[0] * c[1]) != 0)
            rec(__LINE__, "kind %d: afmt_read_all and afmt_read differ", kind);
    }
    int32_t v[101];
    uint64_t sv = (uint64_t)tu_rank() * 7 % 50, cv = 101 - sv, s2[2] = {sv, 0}, c2[2] = {cv, 1};
    EXPECT_OK(g, afmt_read_all(g, "v", &sv, &cv, v));
    model mv = ms[1]; /* as a 2-d (n x 1) view for expect_model */
    mv.shape[1] = 1;
    expect_model(&mv, s2, c2, v, __LINE__);
    free(a);
    free(b);
    EXPECT_OK(g, afmt_close(g));
    EXPECT_OK(h, afmt_close(h));
}

static void test_bytes(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "ra-bytes");
    model ms[2];
    make_file(path, ms, 1);
    run_bytes(path, NULL, ms);
    m_free_each(ms, 2);
    rm_path(path);
    done();
}

/* An index cache of 0 bytes (one segment at a time): rounds evict what they bring in,
 * the ordinary read reads again; the bytes are still right. */
static void test_tiny_cache(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "ra-tiny");
    model ms[2];
    make_file(path, ms, 1);
    afmt_opts *o = NULL;
    EXPECT_OK(NULL, afmt_opts_create(&o));
    EXPECT_OK(NULL, afmt_opts_set_index_cache(o, 0));
    run_bytes(path, o, ms);
    afmt_opts_free(o);
    m_free_each(ms, 2);
    rm_path(path);
    done();
}

/* The segments the ranks of node need together for selection kind: the node's first rank
 * reads every rank's selection of the node with afmt_read on a handle of its own
 * (MPI_COMM_SELF); its count of segment reads, on every rank of the node. */
static uint64_t node_union(const char *path, MPI_Comm node, int kind) {
    int nr = 0, ns = 1;
    MPI_Comm_rank(node, &nr);
    MPI_Comm_size(node, &ns);
    uint64_t sel[4] = {0, 0, 0, 0}, *all = malloc(sizeof(uint64_t) * 4 * (size_t)ns), reads = 0;
    if (selection(kind, sel, sel + 2) == 0) sel[2] = sel[3] = 0;
    MPI_Gather(sel, 4, MPI_UINT64_T, all, 4, MPI_UINT64_T, 0, node);
    if (nr == 0) {
        afmt_file *g = NULL;
        double *a = malloc(sizeof(double) * ROWS * COLS);
        EXPECT_OK(NULL, afmt_open(MPI_COMM_SELF, path, AFMT_RDONLY, NULL, &g));
        for (int r = 0; g && r < ns; r++)
            if (all[4 * r + 2] && all[4 * r + 3])
                EXPECT_OK(g, afmt_read(g, "u", all + 4 * r, all + 4 * r + 2, a));
        uint64_t b, e;
        if (g) afmt__segcache_stats(&g->idx, &b, &e, &reads);
        if (g) EXPECT_OK(g, afmt_close(g));
        free(a);
    }
    MPI_Bcast(&reads, 1, MPI_UINT64_T, 0, node);
    free(all);
    return reads;
}

/* The counters, for every kind of selection: afmt_read_all reads on each node exactly the
 * segments its ranks need together (node_union), once each; afmt_read on fresh handles
 * reads each rank's own (once per rank: for the whole array, D per rank). group_ranks:
 * nodes of that many ranks (the test hook), 0: the real ones. */
static void run_counts(const char *path, int group_ranks) {
    MPI_Comm node;
    if (group_ranks)
        MPI_Comm_split(MPI_COMM_WORLD, tu_rank() / group_ranks, tu_rank(), &node);
    else
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, tu_rank(), MPI_INFO_NULL, &node);
    int nsize = 1;
    MPI_Comm_size(node, &nsize);
    double *a = malloc(sizeof(double) * ROWS * COLS);
    for (int kind = 0; kind < 5; kind++) {
        uint64_t s[2], c[2], e = 0, d = 0, most = 0;
        int any = selection(kind, s, c);
        uint64_t want = node_union(path, node, kind);
        afmt_file *g = reopen(path, NULL);
        if (g && any) EXPECT_OK(g, afmt_read(g, "u", s, c, a));
        if (g) afmt__segcache_stats(&g->idx, &e, &e, &d);
        uint64_t indep = node_reads(g, node);
        MPI_Allreduce(&d, &most, 1, MPI_UINT64_T, MPI_MAX, node);
        if (g) EXPECT_OK(g, afmt_close(g));
        if (kind == 0 && (d < 3 || indep != d * (uint64_t)nsize))
            rec(__LINE__,
                "afmt_read of everything: %llu segment reads on this rank, %llu on a "
                "node of %d ranks, want >= 3 (layers) and %d times that",
                (unsigned long long)d, (unsigned long long)indep, nsize, nsize);
        g = reopen(path, NULL);
        if (g) afmt__set_read_node_ranks(g, group_ranks);
        if (g) EXPECT_OK(g, afmt_read_all(g, "u", s, c, any ? a : NULL));
        if (g && any) expect_model_u(s, c, a, __LINE__);
        uint64_t coll = node_reads(g, node);
        if (g) EXPECT_OK(g, afmt_close(g));
        if (coll != want || want < most)
            rec(__LINE__,
                "kind %d: afmt_read_all read %llu segments on a node of %d ranks, "
                "want %llu (what its ranks need together, at least %llu), afmt_read %llu",
                kind, (unsigned long long)coll, nsize, (unsigned long long)want,
                (unsigned long long)most, (unsigned long long)indep);
        if (kind == 0 && nsize > 1 && coll >= indep)
            rec(__LINE__, "afmt_read_all read %llu segments, afmt_read %llu: nothing shared",
                (unsigned long long)coll, (unsigned long long)indep);
    }
    free(a);
    MPI_Comm_free(&node);
}

static void test_counts(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "ra-count");
    model ms[2];
    make_file(path, ms, 1);
    g_model_u = &ms[0];
    run_counts(path, 0);
    run_counts(path, 2); /* nodes of 2 ranks */
    m_free_each(ms, 2);
    rm_path(path);
    path = tu_path(NULL, "ra-count-node"); /* one segment per layer (and node) */
    make_file(path, ms, 0);
    run_counts(path, 0);
    run_counts(path, 3);
    g_model_u = NULL;
    m_free_each(ms, 2);
    rm_path(path);
    done();
}

/* A damaged segment (layer 3's only one, rank 0's): afmt_read_all fails on every rank
 * with AFMT_ECORRUPT naming the layer and the segment, the rank that reads nothing too;
 * the handle still reads "v" (no chunk of it in layer 3) afterwards. */
static void test_damaged(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "ra-dmg");
    model ms[2];
    make_file(path, ms, 1);
    uint64_t off = 0;
    afmt_file *g = reopen(path, NULL);
    if (g) {
        const afmt_layer_info *li = &g->idx.layers[g->idx.n_layers - 1];
        if (li->lazy && li->n_segs == 1 && li->segs[0].length > 80)
            off = li->segs[0].offset;
        else
            rec(__LINE__, "layer 3 is not lazy with one segment");
        EXPECT_OK(g, afmt_close(g));
    }
    flip_bit(path, off ? off + 70 : 0); /* a byte of the segment's records */
    g = reopen(path, NULL);
    if (g) {
        uint64_t s[2], c[2];
        int any = selection(3, s, c);
        double *a = malloc(sizeof(double) * ROWS * COLS);
        int rc = afmt_read_all(g, "u", s, c, any ? a : NULL);
        const char *msg = afmt_errmsg(g);
        if (rc != AFMT_ECORRUPT) rec(__LINE__, "afmt_read_all -> %d, want AFMT_ECORRUPT", rc);
        if (!msg || !strstr(msg, "afmt_read_all(\"u\")") || !strstr(msg, "layer 3: segment 0"))
            rec(__LINE__, "message \"%s\" does not name the call, layer and segment", NSTR(msg));
        int32_t v[101];
        uint64_t z = 0, n = 101, s2[2] = {0, 0}, c2[2] = {101, 1};
        EXPECT_OK(g, afmt_read_all(g, "v", &z, &n, v));
        model mv = ms[1];
        mv.shape[1] = 1;
        expect_model(&mv, s2, c2, v, __LINE__);
        free(a);
        EXPECT_OK(g, afmt_close(g));
    }
    m_free_each(ms, 2);
    rm_path(path);
    done();
}

/* Bad input on the last rank only: every rank returns its code (no hang, no rank left in
 * a collective), and the next afmt_read_all works. */
static void test_bad_input(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "ra-bad");
    model ms[2];
    make_file(path, ms, 1);
    afmt_file *g = reopen(path, NULL);
    if (g) {
        int last = tu_rank() == tu_size() - 1;
        double *a = malloc(sizeof(double) * ROWS * COLS);
        uint64_t s[2] = {0, 0}, c[2] = {ROWS, COLS}, big[2] = {ROWS + 1, COLS};
        EXPECT_RC(g, afmt_read_all(g, "u", s, last ? big : c, a), AFMT_EINVAL);
        if (!strstr(afmt_errmsg(g), "exceeds shape"))
            rec(__LINE__, "message \"%s\" does not say why", afmt_errmsg(g));
        EXPECT_RC(g, afmt_read_all(g, last ? "nope" : "u", s, c, a), AFMT_ENOTFOUND);
        EXPECT_RC(g, afmt_read_all(g, "u", s, c, last ? NULL : a), AFMT_EINVAL);
        EXPECT_OK(g, afmt_read_all(g, "u", s, c, a));
        expect_model(&ms[0], s, c, a, __LINE__);
        free(a);
        EXPECT_OK(g, afmt_close(g));
    }
    m_free_each(ms, 2);
    rm_path(path);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes),     cmocka_unit_test(test_tiny_cache),
        cmocka_unit_test(test_counts),    cmocka_unit_test(test_damaged),
        cmocka_unit_test(test_bad_input),
    };
    return tu_main(argc, argv, "read_all", tests, sizeof tests / sizeof tests[0]);
}
