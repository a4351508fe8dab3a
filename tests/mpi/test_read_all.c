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
 * chunks fall through from layer 3 to 2 to 1; "v" (int32, 1-d) only in layer 2. */
static void make_file(const char *path, model ms[2]) {
    afmt_opts *o = rank_opts();
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
 * odd overlapping boxes, 3 as 2 with rank 0 reading nothing. */
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
    for (int kind = 0; kind < 4; kind++) {
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
    make_file(path, ms);
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
    make_file(path, ms);
    afmt_opts *o = NULL;
    EXPECT_OK(NULL, afmt_opts_create(&o));
    EXPECT_OK(NULL, afmt_opts_set_index_cache(o, 0));
    run_bytes(path, o, ms);
    afmt_opts_free(o);
    m_free_each(ms, 2);
    rm_path(path);
    done();
}

/* The counters. D: the segments one rank's afmt_read of the whole array reads. Every rank
 * reading it all: afmt_read_all reads D per node (group_ranks: nodes of that many ranks,
 * 0: the real ones), afmt_read D per rank. Disjoint bands: afmt_read_all reads no more
 * than the ranks' afmt_read together, and at least what any one of them needs. */
static void run_counts(const char *path, int group_ranks) {
    afmt__set_read_node_ranks(group_ranks);
    MPI_Comm node;
    if (group_ranks)
        MPI_Comm_split(MPI_COMM_WORLD, tu_rank() / group_ranks, tu_rank(), &node);
    else
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, tu_rank(), MPI_INFO_NULL, &node);
    int nsize = 1;
    MPI_Comm_size(node, &nsize);
    double *a = malloc(sizeof(double) * ROWS * COLS);
    uint64_t all[2] = {ROWS, COLS}, zero[2] = {0, 0};
    /* D, on each rank alone */
    afmt_file *g = reopen(path, NULL);
    if (g) EXPECT_OK(g, afmt_read(g, "u", zero, all, a));
    uint64_t d = 0, e = 0, r = 0;
    if (g) afmt__segcache_stats(&g->idx, &e, &e, &d);
    uint64_t indep = node_reads(g, node);
    if (g) EXPECT_OK(g, afmt_close(g));
    if (d < 3)
        rec(__LINE__, "afmt_read of everything read %llu segments, want >= 3 (layers)",
            (unsigned long long)d);
    if (indep != d * (uint64_t)nsize)
        rec(__LINE__, "afmt_read: %llu segment reads on a node of %d ranks, want %llu",
            (unsigned long long)indep, nsize, (unsigned long long)(d * (uint64_t)nsize));
    g = reopen(path, NULL);
    if (g) EXPECT_OK(g, afmt_read_all(g, "u", zero, all, a));
    uint64_t coll = node_reads(g, node);
    if (coll != d)
        rec(__LINE__,
            "afmt_read_all: %llu segment reads on a node of %d ranks, want %llu (once "
            "each)",
            (unsigned long long)coll, nsize, (unsigned long long)d);
    if (g) EXPECT_OK(g, afmt_close(g));
    /* disjoint bands */
    uint64_t s[2], c[2];
    int any = selection(1, s, c);
    g = reopen(path, NULL);
    if (g) EXPECT_OK(g, afmt_read(g, "u", any ? s : zero, any ? c : zero, a));
    if (g) afmt__segcache_stats(&g->idx, &e, &e, &r);
    uint64_t most = 0, sum = node_reads(g, node);
    MPI_Allreduce(&r, &most, 1, MPI_UINT64_T, MPI_MAX, node);
    if (g) EXPECT_OK(g, afmt_close(g));
    g = reopen(path, NULL);
    if (g) EXPECT_OK(g, afmt_read_all(g, "u", s, c, any ? a : NULL));
    coll = node_reads(g, node);
    if (g) EXPECT_OK(g, afmt_close(g));
    if (coll > sum || coll < most)
        rec(__LINE__,
            "disjoint bands: afmt_read_all read %llu segments on the node, afmt_read "
            "%llu (at most %llu on one rank)",
            (unsigned long long)coll, (unsigned long long)sum, (unsigned long long)most);
    if (nsize > 1 && coll == sum && sum > most)
        rec(__LINE__, "disjoint bands: afmt_read_all shared no segment read (%llu)",
            (unsigned long long)coll);
    free(a);
    MPI_Comm_free(&node);
    afmt__set_read_node_ranks(0);
}

static void test_counts(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "ra-count");
    model ms[2];
    make_file(path, ms);
    run_counts(path, 0);
    run_counts(path, 2); /* nodes of 2 ranks */
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
    make_file(path, ms);
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
    MPI_Barrier(MPI_COMM_WORLD);
    if (tu_rank() == 0 && off) {
        FILE *fp = fopen(path, "r+b");
        unsigned char byte = 0;
        if (fp && fseek(fp, (long)off + 70, SEEK_SET) == 0 && fread(&byte, 1, 1, fp) == 1) {
            byte ^= 0x10;
            fseek(fp, (long)off + 70, SEEK_SET);
            fwrite(&byte, 1, 1, fp);
        }
        if (fp) fclose(fp);
    }
    MPI_Barrier(MPI_COMM_WORLD);
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
    make_file(path, ms);
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
