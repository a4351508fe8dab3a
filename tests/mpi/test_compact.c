/* test_compact.c - MPI integration: compaction keeps every live byte, drops dead data,
 * leaves one layer, and the file goes on being used on any rank count. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_line(afmt_file *f, model *m, uint64_t lo, uint64_t hi, uint64_t seed, int line) {
    int np = tu_size();
    for (int r = 0; r < np; r++) {
        uint64_t s = lo + (hi - lo) * (uint64_t)r / (uint64_t)np;
        uint64_t c = lo + (hi - lo) * (uint64_t)(r + 1) / (uint64_t)np - s;
        if (c) m_write(f, m, (r + 1) % np, &s, &c, seed, line);
    }
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Checks one int32 attribute. */
static void check_attr(afmt_file *f, const char *array, const char *key, int32_t want, int line) {
    int32_t v = 0;
    uint64_t n = 1;
    int rc = afmt_get_attr(f, array, key, AFMT_INT32, &n, &v);
    if (rc != AFMT_OK || n != 1 || v != want)
        rec(line, "attr %s/%s -> %d n=%llu v=%d, want %d", NSTR(array), key, rc,
            (unsigned long long)n, v, want);
}

/* Compares everything afmt_info_at reports, in order, with a saved listing. */
static void save_infos(afmt_file *f, afmt_info *out, int *n, int line) {
    *n = 0;
    int rc = afmt_count(f, n);
    if (rc != AFMT_OK) rec(line, "afmt_count -> %d", rc);
    for (int i = 0; i < *n && i < 8; i++) {
        memset(&out[i], 0, sizeof out[i]);
        rc = afmt_info_at(f, i, &out[i]);
        if (rc != AFMT_OK) rec(line, "afmt_info_at(%d) -> %d", i, rc);
    }
}

static void compare_infos(const afmt_info *a, int na, const afmt_info *b, int nb, int line) {
    if (na != nb) {
        rec(line, "%d arrays, want %d", nb, na);
        return;
    }
    for (int i = 0; i < na && i < 8; i++) {
        int bad =
            strcmp(a[i].name, b[i].name) || a[i].dtype != b[i].dtype || a[i].ndim != b[i].ndim;
        for (int d = 0; !bad && d < a[i].ndim; d++)
            bad = a[i].shape[d] != b[i].shape[d] || a[i].chunk[d] != b[i].chunk[d] ||
                  strcmp(a[i].dims[d], b[i].dims[d]);
        if (bad)
            rec(line, "array %d: %s differs after compaction (now %s)", i, a[i].name, b[i].name);
    }
}

/* Layers with overwrites, a deleted array, attributes; compaction keeps every byte of
 * live content, drops the dead data, leaves one layer; the file is usable afterwards. */
static void test_compact_basic(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "cp-basic");
    int np = tu_size();
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[4], dead;
    unsigned char fill[8];
    const uint64_t sa[2] = {60, 50}, ca[2] = {7, 9}, sb[1] = {3000}, cb[1] = {128},
                   sd[3] = {5, 6, 7}, cd[3] = {2, 4, 3};
    const char *dims[3] = {"z", "y", "x"};
    tconst(AFMT_INT32, -9, fill);
    m_init(&ms[0], "A", AFMT_INT32, 2, sa, ca, fill);
    m_init(&ms[1], "B", AFMT_FLOAT64, 1, sb, cb, NULL);
    m_init(&ms[2], "S", AFMT_UINT16, 0, NULL, NULL, NULL);
    tconst(AFMT_FLOAT32, 6, fill);
    m_init(&ms[3], "D", AFMT_FLOAT32, 3, sd, cd, fill); /* partly written, custom dims */
    m_init(&dead, "C", AFMT_UINT64, 1, sb, cb, NULL);
    afmt_info before[8], after[8];
    int nb = 0, na = 0;
    if (f) {
        for (int i = 0; i < 3; i++) EXPECT_OK(f, m_define(f, &ms[i]));
        EXPECT_OK(f, m_define(f, &dead));
        EXPECT_OK(f, afmt_define(f, "D", AFMT_FLOAT32, 3, sd, cd, dims, ms[3].fill));
        int32_t av = 1;
        EXPECT_OK(f, afmt_set_attr(f, "A", "version", AFMT_INT32, 1, &av));
        EXPECT_OK(f, afmt_set_attr(f, NULL, "run", AFMT_INT32, 1, &av));
        EXPECT_OK(f, afmt_set_attr(f, "C", "gone", AFMT_INT32, 1, &av));
        /* layer 1: everything */
        uint64_t st[2] = {0, 0}, ct[2] = {60, 50};
        m_write_rows(f, &ms[0], st, ct, 0, 1, __LINE__);
        write_line(f, &ms[1], 0, 3000, 2, __LINE__);
        write_line(f, &dead, 0, 3000, 3, __LINE__);
        m_write(f, &ms[2], 0, NULL, NULL, 4, __LINE__);
        uint64_t s3[3] = {1, 1, 1}, c3[3] = {3, 4, 5};
        m_write(f, &ms[3], np - 1, s3, c3, 5, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        /* layer 2: overwrite half of A, all of B */
        st[0] = 10, st[1] = 5, ct[0] = 31, ct[1] = 40;
        m_write_rows(f, &ms[0], st, ct, 0, 6, __LINE__);
        write_line(f, &ms[1], 0, 3000, 7, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        /* layer 3: delete C, overwrite A again, attribute changes */
        EXPECT_OK(f, afmt_delete(f, "C"));
        st[0] = 0, st[1] = 0, ct[0] = 60, ct[1] = 20;
        m_write_rows(f, &ms[0], st, ct, 0, 8, __LINE__);
        m_write(f, &ms[2], np - 1, NULL, NULL, 9, __LINE__);
        av = 2;
        EXPECT_OK(f, afmt_set_attr(f, "A", "version", AFMT_INT32, 1, &av));
        EXPECT_OK(f, afmt_commit(f));
        for (int i = 0; i < 4; i++) m_committed(&ms[i]);
        EXPECT_LAYERS(f, 3);
        check_all(f, ms, 4, __LINE__);
        save_infos(f, before, &nb, __LINE__);
        long long sz_before = fsize(path);
        MPI_Barrier(MPI_COMM_WORLD);

        EXPECT_OK(f, afmt_compact(f));
        long long sz_after = fsize(path);
        EXPECT_LAYERS(f, 1);
        if (!(sz_after > 0 && sz_after < sz_before))
            rec(__LINE__, "file size %lld before compaction, %lld after", sz_before, sz_after);
        /* C was 24000 bytes of random data, B's first version 24000 more */
        if (!(sz_after < sz_before - 24000))
            rec(__LINE__, "compaction freed only %lld bytes", sz_before - sz_after);
        char cpath[600];
        snprintf(cpath, sizeof cpath, "%s.compact", path);
        EXPECT(!file_exists(cpath));
        check_all(f, ms, 4, __LINE__);
        save_infos(f, after, &na, __LINE__);
        compare_infos(before, nb, after, na, __LINE__);
        check_attr(f, "A", "version", 2, __LINE__);
        check_attr(f, NULL, "run", 1, __LINE__);
        EXPECT_RC(f, afmt_inquire(f, "C", &after[7]), AFMT_ENOTFOUND);
        /* the handle goes on: one more layer */
        st[0] = 50, st[1] = 45, ct[0] = 10, ct[1] = 5;
        m_write_rows(f, &ms[0], st, ct, 0, 10, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        m_committed(&ms[0]);
        EXPECT_LAYERS(f, 2);
        check_all(f, ms, 4, __LINE__);
        close_reopen_check(f, path, ms, 4, __LINE__);
        /* reopen on a different rank count (and every rank), compact there, go on */
        int me = tu_rank();
        MPI_Comm sub;
        MPI_Comm_split(MPI_COMM_WORLD, me < (np > 1 ? np - 1 : 1) ? 0 : MPI_UNDEFINED, me, &sub);
        if (sub != MPI_COMM_NULL) {
            afmt_file *g = xopen(sub, path, 1, AFMT_RDWR, NULL, __LINE__);
            if (g) {
                EXPECT_LAYERS(g, 2);
                check_all(g, ms, 4, __LINE__);
                check_attr(g, "A", "version", 2, __LINE__);
                EXPECT_OK(g, afmt_compact(g));
                EXPECT_LAYERS(g, 1);
                check_all(g, ms, 4, __LINE__);
                EXPECT_OK(g, afmt_close(g));
            }
            MPI_Comm_free(&sub);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, NULL, __LINE__);
    }
    if (f) {
        EXPECT_LAYERS(f, 1);
        check_all(f, ms, 4, __LINE__);
        write_line(f, &ms[1], 100, 2900, 11, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        uint64_t st[2] = {3, 3}, ct[2] = {3, 3};
        m_write(f, &ms[0], 0, st, ct, 12, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        for (int i = 0; i < 4; i++) m_committed(&ms[i]);
        EXPECT_LAYERS(f, 3);
        check_all(f, ms, 4, __LINE__);
        check_attr(f, NULL, "run", 1, __LINE__);
        close_reopen_check(f, path, ms, 4, __LINE__);
    }
    m_free_each(ms, 4);
    m_free(&dead);
    rm_path(path);
    done();
}

/* Compaction with pending writes (and a pending definition, deletion, attribute): they are
 * committed first and are part of the single layer. */
static void test_compact_pending(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "cp-pending");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[2];
    const uint64_t s[1] = {777}, c[1] = {50};
    m_init(&ms[0], "p", AFMT_INT16, 1, s, c, NULL);
    m_init(&ms[1], "q", AFMT_UINT8, 1, s, c, NULL);
    if (f) {
        EXPECT_OK(f, m_define(f, &ms[0]));
        write_line(f, &ms[0], 0, 777, 1, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        write_line(f, &ms[0], 100, 600, 2, __LINE__); /* pending */
        EXPECT_OK(f, m_define(f, &ms[1]));            /* pending */
        write_line(f, &ms[1], 13, 400, 3, __LINE__);
        int32_t v = 3;
        EXPECT_OK(f, afmt_set_attr(f, "q", "k", AFMT_INT32, 1, &v));
        EXPECT_OK(f, afmt_compact(f));
        for (int i = 0; i < 2; i++) m_committed(&ms[i]);
        EXPECT_LAYERS(f, 1);
        check_all(f, ms, 2, __LINE__);
        check_attr(f, "q", "k", 3, __LINE__);
        EXPECT_OK(f, afmt_commit(f)); /* nothing left to commit */
        EXPECT_LAYERS(f, 1);
        close_reopen_check(f, path, ms, 2, __LINE__);
    }
    m_free_each(ms, 2);
    rm_path(path);
    done();
}

/* A big deleted array: the compacted file is much smaller; a single-layer file without dead
 * data keeps its content; compacting twice in a row is harmless. */
static void test_compact_deleted(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "cp-del");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[1], big;
    const uint64_t s[1] = {1000}, c[1] = {100}, sb[1] = {1 << 20}, cbig[1] = {65536};
    m_init(&ms[0], "small", AFMT_INT32, 1, s, c, NULL);
    m_init(&big, "big", AFMT_UINT64, 1, sb, cbig, NULL);
    if (f) {
        EXPECT_OK(f, m_define(f, &ms[0]));
        write_line(f, &ms[0], 0, 1000, 1, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        m_committed(&ms[0]);
        EXPECT_OK(f, afmt_compact(f)); /* single layer, nothing dead */
        EXPECT_LAYERS(f, 1);
        check_all(f, ms, 1, __LINE__);
        EXPECT_OK(f, m_define(f, &big));
        write_line(f, &big, 0, 1 << 20, 2, __LINE__); /* 8 MiB random */
        EXPECT_OK(f, afmt_commit(f));
        long long sz_big = fsize(path);
        EXPECT(sz_big > 8 << 20);
        EXPECT_OK(f, afmt_delete(f, "big"));
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_LAYERS(f, 3);
        EXPECT_OK(f, afmt_compact(f));
        long long sz = fsize(path);
        if (!(sz > 0 && sz < 1 << 20))
            rec(__LINE__, "after deleting 8 MiB and compacting: %lld bytes (before %lld)", sz,
                sz_big);
        EXPECT_LAYERS(f, 1);
        check_all(f, ms, 1, __LINE__);
        EXPECT_OK(f, afmt_compact(f));
        EXPECT_LAYERS(f, 1);
        EXPECT(fsize(path) <= sz);
        check_all(f, ms, 1, __LINE__);
        close_reopen_check(f, path, ms, 1, __LINE__);
    }
    m_free(&ms[0]);
    m_free(&big);
    rm_path(path);
    done();
}

/* Compaction keeps the codec choices readable: a file written with zstd and small blocks,
 * many layers, compacted, read everywhere. */
static void test_compact_many_layers(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "cp-many");
    int np = tu_size();
    afmt_opts *o = NULL;
    EXPECT_OK(NULL, afmt_opts_create(&o));
    EXPECT_OK(NULL, afmt_opts_set_codec(o, AFMT_CODEC_ZSTD, 0));
    EXPECT_OK(NULL, afmt_opts_set_block_size(o, 1024));
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    model ms[2];
    const uint64_t s[2] = {33, 47}, c[2] = {8, 8};
    m_init(&ms[0], "g", AFMT_FLOAT64, 2, s, c, NULL);
    m_init(&ms[1], "h", AFMT_INT8, 2, s, NULL, NULL);
    if (f) {
        for (int i = 0; i < 2; i++) EXPECT_OK(f, m_define(f, &ms[i]));
        for (int l = 0; l < 10; l++) {
            uint64_t st[2] = {(uint64_t)(l * 3) % 20, (uint64_t)(l * 7) % 30};
            uint64_t ct[2] = {13, 17};
            m_write_rows(f, &ms[0], st, ct, 0, (uint64_t)SMOOTH | (uint64_t)l, __LINE__);
            if (l % 3 == 0) m_write_rows(f, &ms[1], st, ct, 0, 100 + (uint64_t)l, __LINE__);
            (void)np;
            EXPECT_OK(f, afmt_commit(f));
        }
        for (int i = 0; i < 2; i++) m_committed(&ms[i]);
        EXPECT_LAYERS(f, 10);
        long long sz0 = fsize(path);
        EXPECT_OK(f, afmt_compact(f));
        EXPECT_LAYERS(f, 1);
        EXPECT(fsize(path) < sz0);
        check_all(f, ms, 2, __LINE__);
        close_reopen_check(f, path, ms, 2, __LINE__);
    }
    m_free_each(ms, 2);
    afmt_opts_free(o);
    rm_path(path);
    done();
}

/* A stale "<path>.compact" (left by a crash during compaction) does not disturb opening the
 * file, and a compaction goes through over it. */
static void test_compact_stale_temp(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "cp-stale");
    char cpath[600];
    snprintf(cpath, sizeof cpath, "%s.compact", path);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[1];
    const uint64_t s[2] = {21, 22}, c[2] = {5, 5};
    m_init(&ms[0], "t", AFMT_UINT32, 2, s, c, NULL);
    if (f) {
        EXPECT_OK(f, m_define(f, &ms[0]));
        uint64_t st[2] = {0, 0}, ct[2] = {21, 22};
        m_write_rows(f, &ms[0], st, ct, 0, 1, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        st[0] = 2, st[1] = 3, ct[0] = 9, ct[1] = 9;
        m_write_rows(f, &ms[0], st, ct, 0, 2, __LINE__);
        EXPECT_OK(f, afmt_close(f));
        m_committed(&ms[0]);
        MPI_Barrier(MPI_COMM_WORLD);
        if (tu_rank() == 0) { /* a half-written compaction result */
            FILE *fp = fopen(cpath, "wb");
            if (fp) {
                for (int i = 0; i < 5000; i++) fputc(i * 13, fp);
                fclose(fp);
            }
        }
        MPI_Barrier(MPI_COMM_WORLD);
        reopen_check(path, ms, 1, __LINE__);
        f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, NULL, __LINE__);
    }
    if (f) {
        EXPECT_OK(f, afmt_compact(f));
        EXPECT_LAYERS(f, 1);
        check_all(f, ms, 1, __LINE__);
        EXPECT(!file_exists(cpath));
        close_reopen_check(f, path, ms, 1, __LINE__);
    }
    m_free(&ms[0]);
    rm_path(path);
    done();
}

/* Compaction by a single rank (MPI_COMM_SELF) of a file written by all, then all read. */
static void test_compact_self(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "cp-self");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[1];
    const uint64_t s[1] = {4321}, c[1] = {100};
    m_init(&ms[0], "v", AFMT_FLOAT64, 1, s, c, NULL);
    if (f) {
        EXPECT_OK(f, m_define(f, &ms[0]));
        write_line(f, &ms[0], 0, 4321, 1, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        write_line(f, &ms[0], 1000, 3000, 2, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        m_committed(&ms[0]);
        EXPECT_OK(f, afmt_close(f));
        if (tu_rank() == 0) {
            afmt_file *g = xopen(MPI_COMM_SELF, path, 1, AFMT_RDWR, NULL, __LINE__);
            if (g) {
                EXPECT_OK(g, afmt_compact(g));
                EXPECT_LAYERS(g, 1);
                check_all(g, ms, 1, __LINE__);
                EXPECT_OK(g, afmt_close(g));
            }
        }
        MPI_Barrier(MPI_COMM_WORLD);
        reopen_check(path, ms, 1, __LINE__);
    }
    m_free(&ms[0]);
    rm_path(path);
    done();
}

/* Compaction without any chunk: arrays defined (with attributes) but never written, and a
 * file with nothing at all; afterwards one layer, everything as before. */
static void test_compact_no_data(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "cp-nodata");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[2];
    unsigned char fill[8];
    const uint64_t s[2] = {7, 9}, c[2] = {3, 4};
    tconst(AFMT_INT16, -4, fill);
    m_init(&ms[0], "empty2d", AFMT_INT16, 2, s, c, fill);
    tconst(AFMT_FLOAT64, -4, fill);
    m_init(&ms[1], "empty0d", AFMT_FLOAT64, 0, NULL, NULL, fill);
    if (f) {
        for (int i = 0; i < 2; i++) EXPECT_OK(f, m_define(f, &ms[i]));
        int32_t v = 11;
        EXPECT_OK(f, afmt_set_attr(f, "empty2d", "k", AFMT_INT32, 1, &v));
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_OK(f, afmt_compact(f));
        EXPECT_LAYERS(f, 1);
        check_all(f, ms, 2, __LINE__);
        check_attr(f, "empty2d", "k", 11, __LINE__);
        close_reopen_check(f, path, ms, 2, __LINE__);
    }
    const char *path2 = tu_path(NULL, "cp-nothing");
    f = xopen(MPI_COMM_WORLD, path2, 0, 0, NULL, __LINE__);
    if (f) {
        EXPECT_OK(f, afmt_compact(f));
        EXPECT_LAYERS(f, 1);
        EXPECT_OK(f, afmt_close(f));
        reopen_check(path2, ms, 0, __LINE__);
    }
    m_free_each(ms, 2);
    rm_path(path);
    rm_path(path2);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compact_basic),      cmocka_unit_test(test_compact_pending),
        cmocka_unit_test(test_compact_deleted),    cmocka_unit_test(test_compact_many_layers),
        cmocka_unit_test(test_compact_stale_temp), cmocka_unit_test(test_compact_self),
        cmocka_unit_test(test_compact_no_data),
    };
    return tu_main(argc, argv, "mpi.compact", tests, sizeof tests / sizeof tests[0]);
}
