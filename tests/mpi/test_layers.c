/* test_layers.c - MPI integration: layers of successive commits, newest wins, fall-through
 * to older layers and the fill, empty commits, tombstones. */
#define _POSIX_C_SOURCE 200809L
#include "format/superblock.h" /* slot offsets, to damage a slot */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reopens path RDWR on all ranks, checks layer count and content. */
static afmt_file *reopen_rw(const char *path, const model *ms, int nm, uint64_t nl, int line) {
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, NULL, line);
    if (!f) return NULL;
    uint64_t got = layers_of(f, line);
    if (got != nl)
        rec(line, "after reopen afmt_layers = %llu, want %llu", (unsigned long long)got,
            (unsigned long long)nl);
    check_all(f, ms, nm, line);
    return f;
}

/* Several commits with partial overwrites: newest wins, unwritten parts fall through to
 * older layers (down to the fill), checked live and after reopening after each commit. */
static void test_overwrite_layers(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "ly-over");
    int np = tu_size();
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[3];
    unsigned char fill[8];
    const uint64_t sa[2] = {40, 30}, ca[2] = {7, 8}, sb[1] = {500}, cb[1] = {33};
    tconst(AFMT_INT32, -1, fill);
    m_init(&ms[0], "grid", AFMT_INT32, 2, sa, ca, fill);
    m_init(&ms[1], "static", AFMT_FLOAT64, 1, sb, cb, NULL); /* only in layer 1 */
    m_init(&ms[2], "late", AFMT_UINT8, 1, sb, cb, NULL);     /* defined in layer 2 */
    if (f) {
        EXPECT_LAYERS(f, 0);
        EXPECT_OK(f, m_define(f, &ms[0]));
        EXPECT_OK(f, m_define(f, &ms[1]));
        /* layer 1: grid rows 0..34 (35..39 stay fill), static whole */
        uint64_t st[2] = {0, 0}, ct[2] = {35, 30};
        m_write_rows(f, &ms[0], st, ct, 1, 1, __LINE__);
        for (int r = 0; r < np; r++) {
            uint64_t s = 500 * (uint64_t)r / (uint64_t)np,
                     c = 500 * (uint64_t)(r + 1) / (uint64_t)np - s;
            m_write(f, &ms[1], r, &s, &c, 2, __LINE__);
        }
        EXPECT_OK(f, afmt_commit(f));
        for (int i = 0; i < 2; i++) m_committed(&ms[i]);
        EXPECT_LAYERS(f, 1);
        check_all(f, ms, 2, __LINE__);
        EXPECT_OK(f, afmt_close(f));
        f = reopen_rw(path, ms, 2, 1, __LINE__);
    }
    if (f) {
        /* layer 2: a box not aligned to chunks, reaching into the fill rows */
        uint64_t st[2] = {5, 3}, ct[2] = {33, 19};
        m_write_rows(f, &ms[0], st, ct, 1, 3, __LINE__);
        EXPECT_OK(f, m_define(f, &ms[2]));
        uint64_t s = 10, c = 100;
        m_write(f, &ms[2], np - 1, &s, &c, 4, __LINE__);
        m_check_each(f, ms, 3, 1, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        for (int i = 0; i < 3; i++) m_committed(&ms[i]);
        EXPECT_LAYERS(f, 2);
        check_all(f, ms, 3, __LINE__);
        EXPECT_OK(f, afmt_close(f));
        f = reopen_rw(path, ms, 3, 2, __LINE__);
    }
    if (f) {
        /* layer 3: overlaps layer 2's box partly, and single elements */
        uint64_t st[2] = {20, 0}, ct[2] = {4, 25};
        m_write_rows(f, &ms[0], st, ct, 1, 5, __LINE__);
        uint64_t s1[2] = {39, 29}, c1[2] = {1, 1};
        m_write(f, &ms[0], 0, s1, c1, 6, __LINE__);
        uint64_t s = 50, c = 400;
        m_write(f, &ms[2], 0, &s, &c, 7, __LINE__);
        m_check_each(f, ms, 3, 1, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        for (int i = 0; i < 3; i++) m_committed(&ms[i]);
        EXPECT_LAYERS(f, 3);
        check_all(f, ms, 3, __LINE__);
        EXPECT_OK(f, afmt_close(f));
        f = reopen_rw(path, ms, 3, 3, __LINE__);
    }
    if (f) {
        /* layer 4: the whole grid again, then layer 5 a corner */
        uint64_t st[2] = {0, 0}, ct[2] = {40, 30};
        m_write_rows(f, &ms[0], st, ct, 1, 8, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        st[0] = 33, st[1] = 22, ct[0] = 7, ct[1] = 8;
        m_write_rows(f, &ms[0], st, ct, 1, 9, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        for (int i = 0; i < 3; i++) m_committed(&ms[i]);
        EXPECT_LAYERS(f, 5);
        check_all(f, ms, 3, __LINE__);
        close_reopen_check(f, path, ms, 3, __LINE__);
    }
    m_free_each(ms, 3);
    rm_path(path);
    done();
}

/* A commit with nothing staged writes no layer and returns OK; metadata alone does. */
static void test_empty_commit(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "ly-empty");
    int np = tu_size();
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[1];
    const uint64_t s[1] = {100}, c[1] = {16};
    m_init(&ms[0], "a", AFMT_INT16, 1, s, c, NULL);
    if (f) {
        long long sz0 = fsize(path);
        EXPECT_OK(f, afmt_commit(f)); /* nothing at all */
        EXPECT_LAYERS(f, 0);
        EXPECT(fsize(path) == sz0);
        EXPECT_OK(f, m_define(f, &ms[0]));
        EXPECT_OK(f, afmt_commit(f)); /* a definition is a change: one layer */
        EXPECT_LAYERS(f, 1);
        long long sz1 = fsize(path);
        EXPECT(sz1 > sz0);
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_LAYERS(f, 1);
        EXPECT(fsize(path) == sz1);
        uint64_t st = 3, ct = 50;
        m_write(f, &ms[0], np - 1, &st, &ct, 1, __LINE__); /* one rank writes */
        EXPECT_OK(f, afmt_commit(f));
        m_committed(&ms[0]);
        EXPECT_LAYERS(f, 2);
        long long sz2 = fsize(path);
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_LAYERS(f, 2);
        EXPECT(fsize(path) == sz2);
        check_all(f, ms, 1, __LINE__);
        int32_t v = 5;
        EXPECT_OK(f, afmt_set_attr(f, NULL, "k", AFMT_INT32, 1, &v));
        EXPECT_OK(f, afmt_commit(f)); /* an attribute is a change */
        EXPECT_LAYERS(f, 3);
        EXPECT_OK(f, afmt_close(f)); /* nothing pending: no layer */
        f = reopen_rw(path, ms, 1, 3, __LINE__);
    }
    if (f) {
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_LAYERS(f, 3);
        EXPECT_OK(f, afmt_close(f));
        f = reopen_rw(path, ms, 1, 3, __LINE__);
        if (f) EXPECT_OK(f, afmt_close(f));
    }
    m_free(&ms[0]);
    rm_path(path);
    done();
}

/* Partly covered chunks whose other part comes from older layers (several deep), with the
 * pieces of one chunk spread over ranks. */
static void test_partial_over_older(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "ly-partial");
    int np = tu_size();
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[2];
    unsigned char fill[8];
    const uint64_t s1[1] = {100}, c1[1] = {25}, s3[3] = {6, 7, 8}, c3[3] = {4, 4, 4};
    tconst(AFMT_INT64, 1234, fill);
    m_init(&ms[0], "line", AFMT_INT64, 1, s1, c1, fill);
    m_init(&ms[1], "box", AFMT_FLOAT32, 3, s3, c3, NULL);
    if (f) {
        for (int i = 0; i < 2; i++) EXPECT_OK(f, m_define(f, &ms[i]));
        /* layer 1: line [0, 90), box whole */
        for (int r = 0; r < np; r++) {
            uint64_t s = 90 * (uint64_t)r / (uint64_t)np,
                     c = 90 * (uint64_t)(r + 1) / (uint64_t)np - s;
            m_write(f, &ms[0], r, &s, &c, 1, __LINE__);
            uint64_t st[3] = {6 * (uint64_t)r / (uint64_t)np, 0, 0};
            uint64_t ct[3] = {6 * (uint64_t)(r + 1) / (uint64_t)np - st[0], 7, 8};
            if (ct[0]) m_write(f, &ms[1], r, st, ct, 2, __LINE__);
        }
        EXPECT_OK(f, afmt_commit(f));
        for (int i = 0; i < 2; i++) m_committed(&ms[i]);
        /* layers 2..4: small pieces, each rank its own, inside and across chunks */
        for (int l = 0; l < 3; l++) {
            for (int r = 0; r < np; r++) {
                uint64_t s = (uint64_t)(r * 23 + l * 7 + 3) % 95, c = 1 + (uint64_t)(r + l) % 4;
                /* ranks' pieces are disjoint: [r*23 + l*7 + 3, +4) never overlap */
                m_write(f, &ms[0], r, &s, &c, 10 + (uint64_t)(l * 4 + r), __LINE__);
                uint64_t st[3] = {(uint64_t)(l + r) % 6, (uint64_t)r, 1};
                uint64_t ct[3] = {1, 1, 5};
                m_write(f, &ms[1], r, st, ct, 30 + (uint64_t)(l * 4 + r), __LINE__);
            }
            m_check_each(f, ms, 2, 1, __LINE__);
            commit_check(f, ms, 2, __LINE__);
            EXPECT_LAYERS(f, 2 + l);
        }
        close_reopen_check(f, path, ms, 2, __LINE__);
    }
    m_free_each(ms, 2);
    rm_path(path);
    done();
}

/* Delete, then redefine the name: the tombstone stops fall-through for good. */
static void test_delete_redefine(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "ly-del");
    int np = tu_size();
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[2];
    unsigned char fill[8];
    const uint64_t s[2] = {12, 20}, c[2] = {5, 6};
    tconst(AFMT_INT32, 3, fill);
    m_init(&ms[0], "keep", AFMT_INT32, 2, s, c, fill);
    m_init(&ms[1], "x", AFMT_INT32, 2, s, c, NULL);
    if (f) {
        for (int i = 0; i < 2; i++) EXPECT_OK(f, m_define(f, &ms[i]));
        uint64_t st[2] = {0, 0}, ct[2] = {12, 20};
        for (int i = 0; i < 2; i++) m_write_rows(f, &ms[i], st, ct, 1, 1 + (uint64_t)i, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        for (int i = 0; i < 2; i++) m_committed(&ms[i]);
        /* delete x with writes staged for it: they are dropped */
        uint64_t s2[2] = {1, 1}, c2[2] = {2, 2};
        if (tu_rank() == 0) {
            int32_t buf[4] = {1, 2, 3, 4};
            EXPECT_OK(f, afmt_write(f, "x", s2, c2, buf));
        }
        EXPECT_OK(f, afmt_delete(f, "x"));
        afmt_info info;
        EXPECT_RC(f, afmt_inquire(f, "x", &info), AFMT_ENOTFOUND);
        int32_t buf[4];
        EXPECT_RC(f, afmt_read(f, "x", s2, c2, buf), AFMT_ENOTFOUND);
        int n = -1;
        EXPECT_OK(f, afmt_count(f, &n));
        EXPECT(n == 1);
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_LAYERS(f, 2);
        check_all(f, ms, 1, __LINE__);
        close_reopen_check(f, path, ms, 1, __LINE__);
        f = reopen_rw(path, ms, 1, 2, __LINE__);
    }
    if (f) {
        /* redefine x with another fill: all fill, nothing of the old x */
        tconst(AFMT_INT32, -8, fill);
        m_free(&ms[1]);
        m_init(&ms[1], "x", AFMT_INT32, 2, s, c, fill);
        EXPECT_OK(f, m_define(f, &ms[1]));
        check_all(f, ms, 2, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        check_all(f, ms, 2, __LINE__);
        uint64_t st[2] = {4, 4}, ct[2] = {3, 9};
        m_write(f, &ms[1], np - 1, st, ct, 5, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        m_committed(&ms[1]);
        check_all(f, ms, 2, __LINE__);
        /* delete and redefine in one epoch, with staged writes before the delete */
        m_write(f, &ms[1], 0, st, ct, 6, __LINE__);
        EXPECT_OK(f, afmt_delete(f, "x"));
        m_free(&ms[1]);
        const uint64_t s3[1] = {30};
        m_init(&ms[1], "x", AFMT_UINT8, 1, s3, NULL, NULL);
        EXPECT_OK(f, m_define(f, &ms[1]));
        check_all(f, ms, 2, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        check_all(f, ms, 2, __LINE__);
        close_reopen_check(f, path, ms, 2, __LINE__);
    }
    m_free_each(ms, 2);
    rm_path(path);
    done();
}

/* Many small layers; counts and content after reopen on any rank count. */
static void test_many_layers(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "ly-many");
    int np = tu_size();
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[1];
    const uint64_t s[2] = {16, 16}, c[2] = {3, 5};
    m_init(&ms[0], "m", AFMT_UINT32, 2, s, c, NULL);
    if (f) {
        EXPECT_OK(f, m_define(f, &ms[0]));
        for (int l = 0; l < 24; l++) {
            uint64_t st[2] = {(uint64_t)(l * 5) % 16, (uint64_t)(l * 3) % 16}, ct[2] = {1, 1};
            m_write(f, &ms[0], l % np, st, ct, 100 + (uint64_t)l, __LINE__);
            EXPECT_OK(f, afmt_commit(f));
            m_committed(&ms[0]);
        }
        EXPECT_LAYERS(f, 24);
        check_all(f, ms, 1, __LINE__);
        EXPECT_OK(f, afmt_close(f));
        f = reopen_rw(path, ms, 1, 24, __LINE__);
        if (f) EXPECT_OK(f, afmt_close(f));
        reopen_check(path, ms, 1, __LINE__);
    }
    m_free(&ms[0]);
    rm_path(path);
    done();
}

/* A layer appended by one rank alone (MPI_COMM_SELF) between layers of all ranks. */
static void test_single_rank_append(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "ly-self");
    int np = tu_size();
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[1];
    const uint64_t s[2] = {30, 30}, c[2] = {8, 8};
    m_init(&ms[0], "g", AFMT_INT16, 2, s, c, NULL);
    if (f) {
        EXPECT_OK(f, m_define(f, &ms[0]));
        uint64_t st[2] = {0, 0}, ct[2] = {30, 30};
        m_write_rows(f, &ms[0], st, ct, 1, 1, __LINE__);
        EXPECT_OK(f, afmt_close(f));
        m_committed(&ms[0]);
        /* the last rank alone adds layer 2 (partial chunks over layer 1) */
        st[0] = 5, st[1] = 5, ct[0] = 10, ct[1] = 13;
        if (tu_rank() == np - 1) {
            afmt_file *g = xopen(MPI_COMM_SELF, path, 1, AFMT_RDWR, NULL, __LINE__);
            if (g) {
                m_write(g, &ms[0], np - 1, st, ct, 2, __LINE__);
                EXPECT_OK(g, afmt_close(g));
            }
        } else {
            m_write(NULL, &ms[0], np - 1, st, ct, 2, __LINE__); /* model only */
        }
        m_committed(&ms[0]);
        MPI_Barrier(MPI_COMM_WORLD);
        f = reopen_rw(path, ms, 1, 2, __LINE__);
    }
    if (f) {
        uint64_t st[2] = {12, 0}, ct[2] = {4, 30};
        m_write_rows(f, &ms[0], st, ct, 1, 3, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        m_committed(&ms[0]);
        EXPECT_LAYERS(f, 3);
        check_all(f, ms, 1, __LINE__);
        close_reopen_check(f, path, ms, 1, __LINE__);
    }
    m_free(&ms[0]);
    rm_path(path);
    done();
}

/* [lo, lo+n) of a 1-D model split among the ranks. */
static void write_rows_1d(afmt_file *f, model *m, uint64_t lo, uint64_t n, uint64_t seed,
                          int line) {
    int np = tu_size();
    for (int r = 0; r < np; r++) {
        uint64_t s = lo + n * (uint64_t)r / (uint64_t)np;
        uint64_t c = lo + n * (uint64_t)(r + 1) / (uint64_t)np - s;
        if (c) m_write(f, m, r, &s, &c, seed, line);
    }
}

/* COLLECTIVE: rank 0 copies src to dst, then xors one byte at each offset in offs (n of
 * them) with 0x5A. */
static void copy_damaged(const char *src, const char *dst, const long *offs, int n) {
    MPI_Barrier(MPI_COMM_WORLD);
    if (tu_rank() == 0) {
        FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
        if (in && out) {
            int ch;
            while ((ch = fgetc(in)) != EOF) fputc(ch, out);
        }
        if (in) fclose(in);
        if (out) fclose(out);
        FILE *fp = fopen(dst, "r+b");
        for (int i = 0; fp && i < n; i++) {
            fseek(fp, offs[i], SEEK_SET);
            int b = fgetc(fp);
            fseek(fp, offs[i], SEEK_SET);
            fputc(b ^ 0x5A, fp);
        }
        if (fp) fclose(fp);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* A torn newest superblock slot (a crash while writing it): the file opens as the previous
 * commit; a new commit on it goes over the orphaned layer. Both slots torn: ECORRUPT. */
static void test_torn_superblock(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "ly-torn");
    const char *torn[2] = {tu_path(NULL, "ly-torn-a"), tu_path(NULL, "ly-torn-b")};
    const char *both = tu_path(NULL, "ly-torn-ab");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model m1[1], m2[1];
    const uint64_t s[2] = {24, 18}, c[2] = {5, 7};
    m_init(&m1[0], "t", AFMT_INT32, 2, s, c, NULL);
    m_init(&m2[0], "t", AFMT_INT32, 2, s, c, NULL);
    int n_old = 0;
    if (f) {
        EXPECT_OK(f, m_define(f, &m2[0]));
        uint64_t st[2] = {0, 0}, ct[2] = {24, 18};
        m_write_rows(f, &m2[0], st, ct, 1, 1, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        m_committed(&m2[0]);
        memcpy(m1[0].all, m2[0].all, m2[0].n * m2[0].es);
        m_committed(&m1[0]);
        st[0] = 3, st[1] = 2, ct[0] = 15, ct[1] = 11;
        m_write_rows(f, &m2[0], st, ct, 1, 2, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        m_committed(&m2[0]);
        EXPECT_OK(f, afmt_close(f));
        for (int k = 0; k < 2; k++) {
            long off = (k ? AFMT_SLOT_B_OFFSET : AFMT_SLOT_A_OFFSET) + 40;
            copy_damaged(path, torn[k], &off, 1);
            afmt_file *g = xopen(MPI_COMM_WORLD, torn[k], 1, AFMT_RDONLY, NULL, __LINE__);
            if (!g) continue;
            uint64_t nl = layers_of(g, __LINE__);
            if (nl == 1) {
                n_old++;
                check_all(g, m1, 1, __LINE__);
            } else {
                EXPECT(nl == 2);
                check_all(g, m2, 1, __LINE__);
            }
            EXPECT_OK(g, afmt_close(g));
            if (nl != 1) continue;
            /* the fallen-back file takes a new commit over the orphaned layer 2 */
            g = xopen(MPI_COMM_WORLD, torn[k], 1, AFMT_RDWR, NULL, __LINE__);
            if (!g) continue;
            uint64_t s3[2] = {20, 0}, c3[2] = {4, 18};
            m_write_rows(g, &m1[0], s3, c3, 1, 3, __LINE__);
            EXPECT_OK(g, afmt_commit(g));
            m_committed(&m1[0]);
            EXPECT_LAYERS(g, 2);
            EXPECT_OK(g, afmt_close(g));
            reopen_check(torn[k], m1, 1, __LINE__);
        }
        if (n_old != 1)
            rec(__LINE__, "%d of the 2 single-slot damages fell back to layer 1, want 1", n_old);
        long offs[2] = {AFMT_SLOT_A_OFFSET + 40, AFMT_SLOT_B_OFFSET + 40};
        copy_damaged(path, both, offs, 2);
        afmt_file *g = (afmt_file *)&g;
        int rc = afmt_open(MPI_COMM_WORLD, both, AFMT_RDONLY, NULL, &g);
        if (rc != AFMT_ECORRUPT) rec(__LINE__, "both slots damaged: afmt_open -> %d", rc);
        if (rc == AFMT_OK) afmt_close(g);
    }
    m_free(&m1[0]);
    m_free(&m2[0]);
    rm_path(both);
    rm_path(torn[0]);
    rm_path(torn[1]);
    rm_path(path);
    done();
}

/* Garbage after the last commit (an interrupted commit's data): the file opens as it was, the
 * next commit goes over the tail, and the file ends with the newest trailer again. */
static void test_orphan_tail(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "ly-tail");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[1];
    const uint64_t s[1] = {5000}, c[1] = {300};
    m_init(&ms[0], "t", AFMT_UINT16, 1, s, c, NULL);
    if (f) {
        EXPECT_OK(f, m_define(f, &ms[0]));
        uint64_t st = 0, ct = 5000;
        m_write(f, &ms[0], 0, &st, &ct, 1, __LINE__);
        EXPECT_OK(f, afmt_close(f));
        m_committed(&ms[0]);
        long long sz = fsize(path);
        MPI_Barrier(MPI_COMM_WORLD);
        if (tu_rank() == 0) {
            FILE *fp = fopen(path, "ab");
            for (int i = 0; fp && i < 100000; i++) fputc((i * 7) ^ (i >> 8), fp);
            if (fp) fclose(fp);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        EXPECT(fsize(path) == sz + 100000);
        reopen_check(path, ms, 1, __LINE__);
        f = reopen_rw(path, ms, 1, 1, __LINE__);
    }
    if (f) {
        uint64_t st = 100, ct = 1000;
        write_rows_1d(f, &ms[0], st, ct, 2, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        m_committed(&ms[0]);
        EXPECT_LAYERS(f, 2);
        check_all(f, ms, 1, __LINE__);
        close_reopen_check(f, path, ms, 1, __LINE__);
        char tail[9] = {0};
        FILE *fp = fopen(path, "rb");
        if (fp) {
            fseek(fp, -8, SEEK_END);
            if (fread(tail, 1, 8, fp) != 8) tail[0] = 0;
            fclose(fp);
        }
        if (strcmp(tail, "AFMTTRLR") != 0)
            rec(__LINE__, "the file does not end with the newest trailer (last bytes \"%s\")",
                tail);
    }
    m_free(&ms[0]);
    rm_path(path);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overwrite_layers),   cmocka_unit_test(test_empty_commit),
        cmocka_unit_test(test_partial_over_older), cmocka_unit_test(test_delete_redefine),
        cmocka_unit_test(test_many_layers),        cmocka_unit_test(test_single_rank_append),
        cmocka_unit_test(test_torn_superblock),    cmocka_unit_test(test_orphan_tail),
    };
    return tu_main(argc, argv, "mpi.layers", tests, sizeof tests / sizeof tests[0]);
}
