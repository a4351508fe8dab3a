/* test_roundtrip.c - MPI integration: every byte written by any decomposition of any rank
 * count reads back equal, through commit, reopen on other rank counts, codecs and shapes. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Irregular interleaved segments of [0, n): segment k has length 1 + (7k+3) mod 37, goes
 * to rank k mod size, and every 7th segment (k mod 7 == 5) stays unwritten (fill). */
static void write_segments(afmt_file *f, model *m, uint64_t seed, int line) {
    int np = tu_size();
    uint64_t pos = 0, k = 0, n = m->shape[0];
    while (pos < n) {
        uint64_t len = 1 + (7 * k + 3) % 37;
        if (len > n - pos) len = n - pos;
        if (k % 7 != 5) m_write(f, m, (int)(k % (uint64_t)np), &pos, &len, seed, line);
        pos += len;
        k++;
    }
}

/* Every dtype, 1-D, edge chunk, interleaved parts of all ranks sharing chunks. */
static void test_dtypes_1d(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rt-dtypes");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[11];
    const uint64_t shape[1] = {1007}, chunk[1] = {64};
    for (int t = 0; t < 11; t++) {
        char name[32];
        unsigned char fill[8];
        snprintf(name, sizeof name, "dtype_%d", t);
        tconst((afmt_dtype)t, -3 - t, fill);
        m_init(&ms[t], name, (afmt_dtype)t, 1, shape, chunk, fill);
        if (f) EXPECT_OK(f, m_define(f, &ms[t]));
    }
    if (f) {
        for (int t = 0; t < 11; t++) write_segments(f, &ms[t], 100 + (uint64_t)t, __LINE__);
        /* read-your-writes: own segments, fill where the others write */
        for (int t = 0; t < 11; t++) m_check(f, &ms[t], 1, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        for (int t = 0; t < 11; t++) {
            m_committed(&ms[t]);
            m_check(f, &ms[t], 0, __LINE__);
            uint64_t st = 100, ct = 333;
            m_check_slab(f, &ms[t], &st, &ct, 0, __LINE__);
        }
        close_reopen_check(f, path, ms, 11, __LINE__);
    }
    for (int t = 0; t < 11; t++) m_free(&ms[t]);
    rm_path(path);
    done();
}

/* Scalars: start/count NULL, written by one rank, or never written (fill / zero). */
static void test_scalars(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rt-scalar");
    int np = tu_size();
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[5];
    unsigned char fill[8];
    tconst(AFMT_INT32, -17, fill);
    m_init(&ms[0], "s_int32", AFMT_INT32, 0, NULL, NULL, fill);
    tconst(AFMT_FLOAT64, 42, fill);
    m_init(&ms[1], "s_float64", AFMT_FLOAT64, 0, NULL, NULL, fill);
    tconst(AFMT_UINT8, 77, fill);
    m_init(&ms[2], "s_uint8_unwritten", AFMT_UINT8, 0, NULL, NULL, fill);
    m_init(&ms[3], "s_bool", AFMT_BOOL, 0, NULL, NULL, NULL);
    m_init(&ms[4], "s_int64_zero", AFMT_INT64, 0, NULL, NULL, NULL);
    if (f) {
        for (int i = 0; i < 5; i++) EXPECT_OK(f, m_define(f, &ms[i]));
        m_check_each(f, ms, 5, 1, __LINE__); /* all fill */
        m_write(f, &ms[0], 0, NULL, NULL, 5, __LINE__);
        m_write(f, &ms[1], np - 1, NULL, NULL, 6, __LINE__);
        unsigned char one = 1;
        if (tu_rank() == 0) EXPECT_OK(f, afmt_write(f, "s_bool", NULL, NULL, &one));
        memcpy(ms[3].all, &one, 1);
        if (tu_rank() == 0) memcpy(ms[3].mine, &one, 1);
        m_check_each(f, ms, 5, 1, __LINE__);
        afmt_info info;
        EXPECT_OK(f, afmt_inquire(f, "s_float64", &info));
        EXPECT(info.ndim == 0 && info.dtype == AFMT_FLOAT64);
        commit_check(f, ms, 5, __LINE__);
        /* second layer: rewrite one scalar on another rank */
        m_write(f, &ms[0], np > 1 ? 1 : 0, NULL, NULL, 7, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        m_committed(&ms[0]);
        m_check_each(f, ms, 5, 0, __LINE__);
        close_reopen_check(f, path, ms, 5, __LINE__);
    }
    m_free_each(ms, 5);
    rm_path(path);
    done();
}

/* Rank r writes dim0 rows [lo, hi) with every other dim whole, except the last element of
 * the last dim (left as fill); the last dim is cut at a non-aligned m into two pieces, the
 * second written by rank r+1 (so pieces of one chunk come from several ranks). */
static void write_decomposed(afmt_file *f, model *m, uint64_t seed, int line) {
    int np = tu_size(), nd = m->ndim;
    uint64_t n0 = m->shape[0], L = m->shape[nd - 1];
    for (int r = 0; r < np; r++) {
        uint64_t lo = n0 * (uint64_t)r / (uint64_t)np, hi = n0 * (uint64_t)(r + 1) / (uint64_t)np;
        if (hi <= lo) continue;
        uint64_t st[32] = {0}, ct[32];
        for (int d = 0; d < nd; d++) ct[d] = m->shape[d];
        if (nd == 1) {
            uint64_t span = hi - lo, mid = lo + span / 2 + 1;
            if (span < 3) {
                st[0] = lo;
                ct[0] = span;
                m_write(f, m, r, st, ct, seed, line);
                continue;
            }
            st[0] = lo;
            ct[0] = mid - lo;
            m_write(f, m, r, st, ct, seed, line);
            st[0] = mid;
            ct[0] = hi - 1 - mid;
            if (ct[0]) m_write(f, m, (r + 1) % np, st, ct, seed, line);
            continue;
        }
        uint64_t mid = L / 2 + 1;
        st[0] = lo;
        ct[0] = hi - lo;
        ct[nd - 1] = mid;
        m_write(f, m, r, st, ct, seed, line);
        st[nd - 1] = mid;
        ct[nd - 1] = L - 1 - mid;
        if (ct[nd - 1]) m_write(f, m, (r + 1) % np, st, ct, seed, line);
    }
}

static const struct {
    int nd;
    uint64_t shape[5], chunk[5];
    afmt_dtype t;
} nd_cases[] = {
    {1, {1000}, {64}, AFMT_INT32},
    {2, {37, 53}, {8, 10}, AFMT_FLOAT64},
    {3, {13, 11, 9}, {4, 5, 2}, AFMT_UINT16},
    {4, {7, 6, 5, 9}, {3, 4, 2, 4}, AFMT_INT64},
    {5, {5, 4, 6, 3, 7}, {2, 3, 4, 2, 3}, AFMT_FLOAT32},
    {2, {3, 1000}, {2, 77}, AFMT_INT8},
    {3, {2, 3, 4}, {2, 3, 4}, AFMT_UINT32}, /* one chunk, every rank a piece */
};
#define N_ND ((int)(sizeof nd_cases / sizeof nd_cases[0]))

/* 1-D..5-D, edge chunks, decompositions not aligned to chunks, shared chunks. */
static void test_nd_edge_chunks(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rt-nd");
    int np = tu_size();
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[N_ND];
    for (int i = 0; i < N_ND; i++) {
        char name[32];
        unsigned char fill[8];
        snprintf(name, sizeof name, "nd%d_%d", nd_cases[i].nd, i);
        tconst(nd_cases[i].t, 11 + i, fill);
        m_init(&ms[i], name, nd_cases[i].t, nd_cases[i].nd, nd_cases[i].shape, nd_cases[i].chunk,
               fill);
        if (f) EXPECT_OK(f, m_define(f, &ms[i]));
    }
    if (f) {
        for (int i = 0; i < N_ND; i++) write_decomposed(f, &ms[i], 200 + (uint64_t)i, __LINE__);
        m_check_each(f, ms, N_ND, 1, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        for (int i = 0; i < N_ND; i++) {
            m_committed(&ms[i]);
            m_check(f, &ms[i], 0, __LINE__);
            uint64_t st[5], ct[5];
            for (int d = 0; d < ms[i].ndim; d++) {
                st[d] = ms[i].shape[d] / 3;
                ct[d] = (ms[i].shape[d] + 1) / 2;
                if (st[d] + ct[d] > ms[i].shape[d]) ct[d] = ms[i].shape[d] - st[d];
            }
            m_check_slab(f, &ms[i], st, ct, 0, __LINE__);
            /* pencils along every dim through an interior point (strided reads) */
            for (int d = 0; d < ms[i].ndim; d++) {
                for (int e = 0; e < ms[i].ndim; e++) st[e] = ms[i].shape[e] / 2, ct[e] = 1;
                st[d] = 0, ct[d] = ms[i].shape[d];
                m_check_slab(f, &ms[i], st, ct, 0, __LINE__);
            }
        }
        /* second layer: an interior box (partial chunks over committed data) by the last
         * rank, and a box over the fill column by rank 0 */
        for (int i = 0; i < N_ND; i++) {
            uint64_t st[5], ct[5];
            int nd = ms[i].ndim;
            for (int d = 0; d < nd; d++) {
                st[d] = ms[i].shape[d] > 2 ? 1 : 0;
                ct[d] = ms[i].shape[d] > 2 ? ms[i].shape[d] / 2 : 1;
            }
            m_write(f, &ms[i], np - 1, st, ct, 300 + (uint64_t)i, __LINE__);
            if (ms[i].shape[nd - 1] > 2 * ct[nd - 1] + 1) {
                ct[nd - 1] = 1;
                st[nd - 1] = ms[i].shape[nd - 1] - 1;
                m_write(f, &ms[i], 0, st, ct, 400 + (uint64_t)i, __LINE__);
            }
        }
        commit_close_check(f, path, ms, N_ND, __LINE__);
    }
    m_free_each(ms, N_ND);
    rm_path(path);
    done();
}

/* Custom fill values: never-written elements read as fill before and after commit. */
static void test_fill_value(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rt-fill");
    int np = tu_size();
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[4];
    unsigned char fill[8];
    const uint64_t sa[2] = {20, 30}, ca[2] = {6, 7}, sb[1] = {100}, sc[3] = {4, 5, 6},
                   cc[3] = {3, 3, 3}, sd[1] = {50}, cd[1] = {8};
    tconst(AFMT_FLOAT64, -2, fill);
    m_init(&ms[0], "fill_f64", AFMT_FLOAT64, 2, sa, ca, fill);
    m_init(&ms[1], "fill_zero_i16", AFMT_INT16, 1, sb, NULL, NULL);
    tconst(AFMT_UINT32, 0xDEADBEEF, fill);
    m_init(&ms[2], "fill_u32", AFMT_UINT32, 3, sc, cc, fill);
    tconst(AFMT_BOOL, 1, fill);
    m_init(&ms[3], "fill_bool_true", AFMT_BOOL, 1, sd, cd, fill);
    if (f) {
        for (int i = 0; i < 4; i++) EXPECT_OK(f, m_define(f, &ms[i]));
        m_check_each(f, ms, 4, 1, __LINE__); /* defined, all fill */
        EXPECT_OK(f, afmt_commit(f));        /* definitions only */
        m_check_each(f, ms, 4, 0, __LINE__);
        uint64_t st[3] = {3, 4, 0}, ct[3] = {5, 9, 0};
        m_write(f, &ms[0], 0, st, ct, 1, __LINE__);
        st[0] = 1, st[1] = 1, st[2] = 2, ct[0] = 2, ct[1] = 3, ct[2] = 2;
        m_write(f, &ms[2], np - 1, st, ct, 2, __LINE__);
        st[0] = 9, ct[0] = 13;
        m_write(f, &ms[3], np > 2 ? 2 : 0, st, ct, 3, __LINE__);
        commit_close_check(f, path, ms, 4, __LINE__);
    }
    m_free_each(ms, 4);
    rm_path(path);
    done();
}

/* Read-your-writes before commit over committed data: partly covered chunks show the
 * rank's own piece over the older layer (or fill), other ranks' staged pieces not yet. */
static void test_read_your_writes(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rt-ryw");
    int np = tu_size(), me = tu_rank();
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[2];
    unsigned char fill[8];
    const uint64_t s1[1] = {200}, c1[1] = {50}, s2[2] = {30, 40}, c2[2] = {10, 10};
    tconst(AFMT_INT32, 9, fill);
    m_init(&ms[0], "ryw1", AFMT_INT32, 1, s1, c1, fill);
    tconst(AFMT_FLOAT32, -1, fill);
    m_init(&ms[1], "ryw2", AFMT_FLOAT32, 2, s2, c2, fill);
    if (f) {
        for (int i = 0; i < 2; i++) EXPECT_OK(f, m_define(f, &ms[i]));
        /* layer 1: ryw1 whole (split by rank at non-aligned points), ryw2 rows 0..14 */
        for (int r = 0; r < np; r++) {
            uint64_t lo = 200 * (uint64_t)r / (uint64_t)np + (r ? 3 : 0);
            uint64_t hi = r == np - 1 ? 200 : 200 * (uint64_t)(r + 1) / (uint64_t)np + 3;
            uint64_t ct = hi - lo;
            m_write(f, &ms[0], r, &lo, &ct, 1, __LINE__);
            uint64_t st2[2] = {15 * (uint64_t)r / (uint64_t)np, 0};
            uint64_t ct2[2] = {15 * (uint64_t)(r + 1) / (uint64_t)np - st2[0], 40};
            if (ct2[0]) m_write(f, &ms[1], r, st2, ct2, 2, __LINE__);
        }
        EXPECT_OK(f, afmt_commit(f));
        for (int i = 0; i < 2; i++) m_committed(&ms[i]);
        /* layer 2: partial pieces, one inside chunk r, one across chunks r and r+1 */
        for (int r = 0; r < np && r < 4; r++) {
            uint64_t st = (uint64_t)r * 50 + 10 + (uint64_t)r, ct = 20;
            m_write(f, &ms[0], r, &st, &ct, 10 + (uint64_t)r, __LINE__);
            st = (uint64_t)r * 50 + 40, ct = 20;
            if (st + ct <= 200) m_write(f, &ms[0], r, &st, &ct, 20 + (uint64_t)r, __LINE__);
            /* ryw2: a box straddling the committed rows and the fill rows */
            uint64_t st2[2] = {12, 3 + 10 * (uint64_t)r}, ct2[2] = {6, 5};
            m_write(f, &ms[1], r, st2, ct2, 30 + (uint64_t)r, __LINE__);
        }
        (void)me;
        m_check_each(f, ms, 2, 1, __LINE__);
        uint64_t st = 5, ct = 190;
        m_check_slab(f, &ms[0], &st, &ct, 1, __LINE__);
        commit_check(f, ms, 2, __LINE__);
        close_reopen_check(f, path, ms, 2, __LINE__);
    }
    m_free_each(ms, 2);
    rm_path(path);
    done();
}

/* A rank rewriting its own staged region in one epoch: the later write wins. */
static void test_same_rank_rewrite(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rt-rewrite");
    int np = tu_size();
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[2];
    const uint64_t s1[1] = {1000}, c1[1] = {64};
    m_init(&ms[0], "rw", AFMT_UINT16, 1, s1, c1, NULL);
    m_init(&ms[1], "rw_scalar", AFMT_INT64, 0, NULL, NULL, NULL);
    if (f) {
        for (int i = 0; i < 2; i++) EXPECT_OK(f, m_define(f, &ms[i]));
        for (int r = 0; r < np; r++) {
            uint64_t lo = 1000 * (uint64_t)r / (uint64_t)np,
                     hi = 1000 * (uint64_t)(r + 1) / (uint64_t)np;
            uint64_t st = lo, ct = hi - lo;
            m_write(f, &ms[0], r, &st, &ct, 1, __LINE__); /* full and partial chunks */
            st = lo + 20, ct = 10;
            m_write(f, &ms[0], r, &st, &ct, 2, __LINE__); /* inside a full chunk */
            st = lo + 25, ct = (hi - lo) / 2;
            m_write(f, &ms[0], r, &st, &ct, 3, __LINE__); /* straddles several */
            /* partial pieces first, then the whole chunk around them */
            uint64_t c0 = (lo + 63) / 64 * 64; /* first chunk boundary at or after lo */
            if (c0 + 64 <= hi) {
                st = c0 + 5, ct = 3;
                m_write(f, &ms[0], r, &st, &ct, 4, __LINE__);
                st = c0, ct = 64;
                m_write(f, &ms[0], r, &st, &ct, 5, __LINE__);
                st = c0 + 60, ct = 2;
                m_write(f, &ms[0], r, &st, &ct, 6, __LINE__);
            }
        }
        m_write(f, &ms[1], np - 1, NULL, NULL, 4, __LINE__);
        m_write(f, &ms[1], np - 1, NULL, NULL, 5, __LINE__);
        commit_close_check(f, path, ms, 2, __LINE__);
    }
    m_free_each(ms, 2);
    rm_path(path);
    done();
}

/* M-to-N the other way: written by a sub-communicator, read and extended by all ranks. */
static void test_write_subcomm(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rt-sub");
    int np = tu_size(), me = tu_rank();
    int nw = np > 1 ? np - 1 : 1;
    model ms[1];
    const uint64_t s[2] = {25, 33}, c[2] = {4, 7};
    unsigned char fill[8];
    tconst(AFMT_INT16, -5, fill);
    m_init(&ms[0], "sub", AFMT_INT16, 2, s, c, fill);
    MPI_Comm sub;
    MPI_Comm_split(MPI_COMM_WORLD, me < nw ? 0 : MPI_UNDEFINED, me, &sub);
    if (sub != MPI_COMM_NULL) {
        afmt_file *f = xopen(sub, path, 0, 0, NULL, __LINE__);
        if (f) {
            EXPECT_OK(f, m_define(f, &ms[0]));
            for (int r = 0; r < nw; r++) {
                uint64_t st[2] = {25 * (uint64_t)r / (uint64_t)nw, 1};
                uint64_t ct[2] = {25 * (uint64_t)(r + 1) / (uint64_t)nw - st[0], 30};
                m_write(f, &ms[0], r, st, ct, 1, __LINE__);
            }
            EXPECT_OK(f, afmt_close(f)); /* commits */
        }
        MPI_Comm_free(&sub);
    } else {
        /* the excluded rank keeps its model in step */
        for (int r = 0; r < nw; r++) {
            uint64_t st[2] = {25 * (uint64_t)r / (uint64_t)nw, 1};
            uint64_t ct[2] = {25 * (uint64_t)(r + 1) / (uint64_t)nw - st[0], 30};
            m_write(NULL, &ms[0], r, st, ct, 1, __LINE__);
        }
    }
    m_committed(&ms[0]);
    MPI_Barrier(MPI_COMM_WORLD);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, NULL, __LINE__);
    if (f) {
        uint64_t nl = 0;
        EXPECT_OK(f, afmt_layers(f, &nl));
        EXPECT(nl == 1);
        check_all(f, ms, 1, __LINE__);
        uint64_t st[2] = {0, 0}, ct[2] = {25, 1};
        m_write(f, &ms[0], np - 1, st, ct, 2, __LINE__); /* column 0, over fill */
        st[1] = 31, ct[1] = 2;
        m_write(f, &ms[0], 0, st, ct, 3, __LINE__); /* columns 31..32, partly committed */
        EXPECT_OK(f, afmt_commit(f));
        m_committed(&ms[0]);
        check_all(f, ms, 1, __LINE__);
        close_reopen_check(f, path, ms, 1, __LINE__);
    }
    m_free(&ms[0]);
    rm_path(path);
    done();
}

/* Codecs none/lz4/zstd (with levels), shuffle on/off, 1 KiB blocks, spilling. */
static void test_codecs(void **state) {
    (void)state;
    static const struct {
        afmt_codec c;
        int level, shuffle, spill;
        uint64_t cache; /* 0: default, else cache size in bytes + 1 */
    } v[] = {
        {AFMT_CODEC_NONE, 0, 0, 0, 0}, {AFMT_CODEC_NONE, 0, 1, 0, 0},
        {AFMT_CODEC_LZ4, 0, 0, 0, 0},  {AFMT_CODEC_LZ4, 0, 1, 0, 0},
        {AFMT_CODEC_LZ4, 9, 1, 0, 0},  {AFMT_CODEC_LZ4, -5, 0, 0, 0},
        {AFMT_CODEC_ZSTD, 0, 0, 0, 0}, {AFMT_CODEC_ZSTD, 0, 1, 0, 0},
        {AFMT_CODEC_ZSTD, 7, 1, 1, 0}, {AFMT_CODEC_LZ4, 0, 1, 1, 0},
        {AFMT_CODEC_LZ4, 0, 1, 0, 1},  {AFMT_CODEC_ZSTD, 0, 0, 0, 3001},
    };
    int np = tu_size();
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        const char *path = tu_path(NULL, "rt-codec");
        afmt_opts *o = NULL;
        EXPECT_OK(NULL, afmt_opts_create(&o));
        EXPECT_OK(NULL, afmt_opts_set_codec(o, v[k].c, v[k].level));
        EXPECT_OK(NULL, afmt_opts_set_shuffle(o, v[k].shuffle));
        EXPECT_OK(NULL, afmt_opts_set_block_size(o, 1024));
        if (v[k].cache) EXPECT_OK(NULL, afmt_opts_set_cache_size(o, v[k].cache - 1));
        if (v[k].spill) {
            EXPECT_OK(NULL, afmt_opts_set_mem_budget(o, 0));
            EXPECT_OK(NULL, afmt_opts_set_spill_dir(o, AFMT_TEST_SCRATCH));
        }
        afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
        model ms[4];
        const uint64_t sa[2] = {64, 100}, ca[2] = {10, 16}, sb[1] = {5000}, cb[1] = {100},
                       sc[1] = {3000}, cc[1] = {250}, sd[3] = {9, 10, 11}, cd[3] = {4, 4, 4};
        unsigned char fill[8];
        tconst(AFMT_FLOAT64, 3, fill);
        m_init(&ms[0], "smooth", AFMT_FLOAT64, 2, sa, ca, fill);
        m_init(&ms[1], "ints", AFMT_INT32, 1, sb, cb, NULL);
        m_init(&ms[2], "bytes", AFMT_UINT8, 1, sc, cc, NULL);
        m_init(&ms[3], "cube", AFMT_UINT64, 3, sd, cd, NULL);
        if (f) {
            for (int i = 0; i < 4; i++) EXPECT_OK(f, m_define(f, &ms[i]));
            for (int r = 0; r < np; r++) {
                uint64_t st[2] = {64 * (uint64_t)r / (uint64_t)np, 0};
                uint64_t ct[2] = {64 * (uint64_t)(r + 1) / (uint64_t)np - st[0], 100};
                m_write(f, &ms[0], r, st, ct, SMOOTH | 1, __LINE__);
            }
            write_segments(f, &ms[1], SMOOTH | 2, __LINE__);
            write_segments(f, &ms[2], 3, __LINE__);
            write_decomposed(f, &ms[3], 4, __LINE__);
            commit_close_check(f, path, ms, 4, __LINE__);
        }
        if (g_nfail)
            rec(__LINE__, "in variant %zu (codec %d level %d shuffle %d spill %d cache %d)", k,
                (int)v[k].c, v[k].level, v[k].shuffle, v[k].spill, (int)v[k].cache);
        m_free_each(ms, 4);
        afmt_opts_free(o);
        rm_path(path);
    }
    done();
}

/* ndim 32 with a tiny shape, named dimensions. */
static void test_ndim32(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rt-nd32");
    int np = tu_size();
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    uint64_t shape[32], chunk[32];
    char dn[32][8];
    const char *dims[32];
    for (int d = 0; d < 32; d++) {
        shape[d] = d == 31 ? 3 : (d % 8 == 0 ? 2 : 1);
        chunk[d] = d == 31 ? 2 : 1;
        snprintf(dn[d], sizeof dn[d], "d%02d", d);
        dims[d] = dn[d];
    }
    model ms[2];
    unsigned char fill[8];
    tconst(AFMT_UINT16, 999, fill);
    m_init(&ms[0], "nd32", AFMT_UINT16, 32, shape, chunk, fill);
    m_init(&ms[1], "nd32_default_dims", AFMT_INT8, 32, shape, NULL, NULL);
    if (f) {
        EXPECT_OK(f, afmt_define(f, ms[0].name, ms[0].t, 32, shape, chunk, dims, fill));
        EXPECT_OK(f, m_define(f, &ms[1]));
        afmt_info info;
        memset(&info, 0, sizeof info);
        EXPECT_OK(f, afmt_inquire(f, "nd32", &info));
        EXPECT(info.ndim == 32 && strcmp(info.dims[31], "d31") == 0 &&
               strcmp(info.dims[0], "d00") == 0 && info.shape[31] == 3 && info.chunk[31] == 2);
        EXPECT_OK(f, afmt_inquire(f, "nd32_default_dims", &info));
        EXPECT(info.ndim == 32 && strcmp(info.dims[31], "dim31") == 0 &&
               strcmp(info.dims[0], "dim0") == 0 && info.chunk[0] == 2);
        /* 16 rows of 3 along the last dim; row k by rank k mod size, the last element of
         * row 5 left as fill */
        for (int k = 0; k < 16; k++) {
            uint64_t st[32] = {0}, ct[32];
            for (int d = 0; d < 32; d++) ct[d] = 1;
            for (int b = 0; b < 4; b++) st[8 * b] = (uint64_t)(k >> (3 - b)) & 1;
            ct[31] = k == 5 ? 2 : 3;
            for (int i = 0; i < 2; i++) m_write(f, &ms[i], k % np, st, ct, 7, __LINE__);
        }
        commit_close_check(f, path, ms, 2, __LINE__);
    }
    m_free_each(ms, 2);
    rm_path(path);
    done();
}

/* 8 MiB per rank: compressible data (the file must be much smaller than the raw bytes),
 * and random data in big chunks shared by neighbouring ranks, with zstd. */
static void test_large(void **state) {
    (void)state;
    int np = tu_size();
    const uint64_t rows = 256, cols = 4096; /* float64: 8 MiB per rank */
    for (int k = 0; k < 2; k++) {
        const char *path = tu_path(NULL, "rt-large");
        afmt_opts *o = NULL;
        EXPECT_OK(NULL, afmt_opts_create(&o));
        if (k == 1) EXPECT_OK(NULL, afmt_opts_set_codec(o, AFMT_CODEC_ZSTD, 0));
        afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
        model ms[1];
        if (k == 0) {
            const uint64_t s[2] = {rows * (uint64_t)np, cols}, c[2] = {100, 1000};
            m_init(&ms[0], "smooth_big", AFMT_FLOAT64, 2, s, c, NULL);
        } else {
            const uint64_t s[1] = {(uint64_t)np << 20}, c[1] = {300000};
            m_init(&ms[0], "random_big", AFMT_UINT64, 1, s, c, NULL);
        }
        if (f) {
            EXPECT_OK(f, m_define(f, &ms[0]));
            for (int r = 0; r < np; r++) {
                if (k == 0) {
                    uint64_t st[2] = {rows * (uint64_t)r, 0}, ct[2] = {rows, cols};
                    m_write(f, &ms[0], r, st, ct, SMOOTH | 9, __LINE__);
                } else {
                    uint64_t st = (uint64_t)r << 20, ct = 1 << 20;
                    m_write(f, &ms[0], r, &st, &ct, 10, __LINE__);
                }
            }
            EXPECT_OK(f, afmt_commit(f));
            m_committed(&ms[0]);
            m_check(f, &ms[0], 0, __LINE__);
            EXPECT_OK(f, afmt_close(f));
            long long sz = fsize(path), raw = (long long)(ms[0].n * ms[0].es);
            if (k == 0 && !(sz > 0 && sz < raw / 4))
                rec(__LINE__, "compressible %lld raw bytes stored in a %lld-byte file", raw, sz);
            if (k == 1 && !(sz >= raw && sz < raw + raw / 8 + 65536))
                rec(__LINE__, "random %lld raw bytes stored in a %lld-byte file", raw, sz);
            reopen_check(path, ms, 1, __LINE__);
        }
        m_free(&ms[0]);
        afmt_opts_free(o);
        rm_path(path);
    }
    done();
}

/* MPI_Info hint afmt_collective_write=true (MPI_File_write_at_all: every rank must take
 * part even with nothing to write), block cache disabled: commits where all ranks, one rank
 * or no rank have data. */
static void test_collective_hint(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rt-coll");
    int np = tu_size();
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "afmt_collective_write", "true");
    afmt_opts *o = NULL;
    EXPECT_OK(NULL, afmt_opts_create(&o));
    EXPECT_OK(NULL, afmt_opts_set_mpi_info(o, info));
    MPI_Info_free(&info); /* the options keep their own copy */
    EXPECT_OK(NULL, afmt_opts_set_cache_size(o, 0));
    EXPECT_OK(NULL, afmt_opts_set_block_size(o, 4096));
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    model ms[2];
    const uint64_t s1[2] = {50, 70}, c1[2] = {9, 11}, s2[1] = {20000}, c2[1] = {1000};
    m_init(&ms[0], "c2d", AFMT_FLOAT32, 2, s1, c1, NULL);
    m_init(&ms[1], "c1d", AFMT_INT64, 1, s2, c2, NULL);
    if (f) {
        for (int i = 0; i < 2; i++) EXPECT_OK(f, m_define(f, &ms[i]));
        EXPECT_OK(f, afmt_commit(f)); /* no data at all */
        write_decomposed(f, &ms[0], 1, __LINE__);
        write_segments(f, &ms[1], 2, __LINE__);
        EXPECT_OK(f, afmt_commit(f)); /* everyone */
        for (int i = 0; i < 2; i++) m_committed(&ms[i]);
        check_all(f, ms, 2, __LINE__);
        uint64_t st[2] = {3, 4}, ct[2] = {40, 7};
        m_write(f, &ms[0], 0, st, ct, 3, __LINE__); /* rank 0 only */
        EXPECT_OK(f, afmt_commit(f));
        uint64_t s = 12345, c = 4000;
        m_write(f, &ms[1], np - 1, &s, &c, 4, __LINE__); /* the last rank only */
        EXPECT_OK(f, afmt_commit(f));
        for (int i = 0; i < 2; i++) m_committed(&ms[i]);
        check_all(f, ms, 2, __LINE__);
        EXPECT_OK(f, afmt_compact(f));
        check_all(f, ms, 2, __LINE__);
        close_reopen_check(f, path, ms, 2, __LINE__);
    }
    m_free_each(ms, 2);
    afmt_opts_free(o);
    rm_path(path);
    done();
}

/* Many arrays with long names (up to the 255-byte limit): afmt_info_at lists live arrays in
 * definition order (a deleted and redefined name moves to the end), also after reopen. */
static void test_many_arrays(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rt-many");
    int np = tu_size();
    enum { NA = 300 };
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    static char names[NA][256];
    int order[NA], n_order = 0;
    for (int i = 0; i < NA; i++) {
        int len = 4 + (i * 37) % 252; /* 4..255 bytes */
        snprintf(names[i], 4, "%03d", i);
        for (int k = 3; k < len; k++) names[i][k] = (char)('a' + (i + k) % 26);
        names[i][len] = 0;
    }
    if (f) {
        for (int i = 0; i < NA; i++) {
            const uint64_t sh[1] = {(uint64_t)(1 + i % 7)};
            EXPECT_OK(f, afmt_define(f, names[i], (afmt_dtype)(i % 11), i % 3 ? 1 : 0, sh, NULL,
                                     NULL, NULL));
        }
        /* scalar i (i multiple of 3) written by rank i mod size */
        for (int i = 0; i < NA; i += 3) {
            unsigned char v[8];
            val((afmt_dtype)(i % 11), v, 0, (uint64_t)i);
            if (i % np == tu_rank()) EXPECT_OK(f, afmt_write(f, names[i], NULL, NULL, v));
        }
        EXPECT_OK(f, afmt_commit(f));
        /* delete every 10th, redefine every 20th: those go to the end */
        for (int i = 0; i < NA; i += 10) EXPECT_OK(f, afmt_delete(f, names[i]));
        for (int i = 0; i < NA; i += 20) {
            const uint64_t sh[1] = {4};
            EXPECT_OK(f, afmt_define(f, names[i], AFMT_UINT8, 1, sh, NULL, NULL, NULL));
        }
        for (int i = 0; i < NA; i++)
            if (i % 10) order[n_order++] = i;
        for (int i = 0; i < NA; i += 20) order[n_order++] = i;
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_OK(f, afmt_close(f));
    }
    for (int pass = 0; f && pass < 3; pass++) {
        MPI_Comm c;
        MPI_Comm_dup(pass == 2 ? MPI_COMM_SELF : MPI_COMM_WORLD, &c);
        afmt_file *g = pass == 0 ? NULL : xopen(c, path, 1, AFMT_RDONLY, NULL, __LINE__);
        if (pass == 0) { /* the writer's view, before closing: reopen RDWR */
            g = xopen(c, path, 1, AFMT_RDWR, NULL, __LINE__);
        }
        if (g) {
            int cnt = -1;
            EXPECT_OK(g, afmt_count(g, &cnt));
            if (cnt != n_order) rec(__LINE__, "afmt_count = %d, want %d", cnt, n_order);
            for (int k = 0; k < n_order && k < cnt; k++) {
                afmt_info info;
                memset(&info, 0, sizeof info);
                int rc = afmt_info_at(g, k, &info);
                if (rc != AFMT_OK || strcmp(info.name, names[order[k]]) != 0) {
                    rec(__LINE__, "afmt_info_at(%d) -> %d, name %.20s..., want %.20s...", k, rc,
                        info.name, names[order[k]]);
                    break;
                }
            }
            for (int i = 3; i < NA; i += 3) {
                if (i % 10 == 0) continue;
                unsigned char v[8], got[8];
                val((afmt_dtype)(i % 11), v, 0, (uint64_t)i);
                int rc = afmt_read(g, names[i], NULL, NULL, got);
                if (rc != AFMT_OK || memcmp(v, got, tu_dtype_size((afmt_dtype)(i % 11))) != 0) {
                    rec(__LINE__, "scalar %d -> %d or wrong value", i, rc);
                    break;
                }
            }
            EXPECT_OK(g, afmt_close(g));
        }
        MPI_Comm_free(&c);
    }
    rm_path(path);
    done();
}

/* Many small chunks (a big chunk table in the footer) and a big attribute: 120000 chunks of
 * 1..3 elements, written by all ranks across chunk boundaries, then reopened. */
static void test_many_chunks(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rt-chunks");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[2];
    const uint64_t s1[1] = {240000}, c1[1] = {2}, s2[2] = {300, 300}, c2[2] = {1, 3};
    m_init(&ms[0], "tiny_chunks", AFMT_UINT8, 1, s1, c1, NULL);
    m_init(&ms[1], "thin_chunks", AFMT_INT16, 2, s2, c2, NULL);
    unsigned char *big = malloc(1 << 20);
    for (int i = 0; i < 1 << 20; i++) big[i] = (unsigned char)(i * 31 + (i >> 9));
    if (f) {
        for (int i = 0; i < 2; i++) EXPECT_OK(f, m_define(f, &ms[i]));
        EXPECT_OK(f, afmt_set_attr(f, "tiny_chunks", "blob", AFMT_UINT8, 1 << 20, big));
        write_decomposed(f, &ms[0], 1, __LINE__); /* odd split points: shared chunks */
        write_decomposed(f, &ms[1], 2, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        for (int i = 0; i < 2; i++) m_committed(&ms[i]);
        check_all(f, ms, 2, __LINE__);
        close_reopen_check(f, path, ms, 2, __LINE__);
        f = xopen(MPI_COMM_SELF, path, 1, AFMT_RDONLY, NULL, __LINE__);
        if (f) {
            unsigned char *got = malloc(1 << 20);
            uint64_t n = 1 << 20;
            EXPECT_OK(f, afmt_get_attr(f, "tiny_chunks", "blob", AFMT_UINT8, &n, got));
            EXPECT(n == 1 << 20 && memcmp(got, big, 1 << 20) == 0);
            free(got);
            EXPECT_OK(f, afmt_close(f));
        }
    }
    free(big);
    m_free_each(ms, 2);
    rm_path(path);
    done();
}

/* Element-wise interleaving: element i of a line (and (i, j) of a checkerboard) written by
 * rank (i [+ j]) mod size with one afmt_write per element, so that every chunk is put
 * together from hundreds of pieces of every rank; then the same over a committed layer with
 * every 3rd element left out (merged over the older content). */
static void test_elementwise(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rt-elem");
    int np = tu_size();
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[2];
    const uint64_t s1[1] = {4000}, c1[1] = {1000}, s2[2] = {40, 50}, c2[2] = {16, 16};
    m_init(&ms[0], "line", AFMT_INT32, 1, s1, c1, NULL);
    m_init(&ms[1], "board", AFMT_UINT16, 2, s2, c2, NULL);
    if (f) {
        for (int i = 0; i < 2; i++) EXPECT_OK(f, m_define(f, &ms[i]));
        for (int pass = 0; pass < 2; pass++) {
            uint64_t one[2] = {1, 1};
            for (uint64_t i = 0; i < 4000; i++) {
                if (pass && i % 3 == 0) continue;
                m_write(f, &ms[0], (int)(i % (uint64_t)np), &i, one, 1 + (uint64_t)pass, __LINE__);
            }
            for (uint64_t i = 0; i < 40; i++)
                for (uint64_t j = 0; j < 50; j++) {
                    if (pass && (i + 2 * j) % 3 == 0) continue;
                    uint64_t st[2] = {i, j};
                    m_write(f, &ms[1], (int)((i + j) % (uint64_t)np), st, one, 3 + (uint64_t)pass,
                            __LINE__);
                }
            m_check_each(f, ms, 2, 1, __LINE__);
            commit_check(f, ms, 2, __LINE__);
        }
        close_reopen_check(f, path, ms, 2, __LINE__);
    }
    m_free_each(ms, 2);
    rm_path(path);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtypes_1d),        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_nd_edge_chunks),   cmocka_unit_test(test_fill_value),
        cmocka_unit_test(test_read_your_writes), cmocka_unit_test(test_same_rank_rewrite),
        cmocka_unit_test(test_write_subcomm),    cmocka_unit_test(test_codecs),
        cmocka_unit_test(test_ndim32),           cmocka_unit_test(test_large),
        cmocka_unit_test(test_collective_hint),  cmocka_unit_test(test_many_arrays),
        cmocka_unit_test(test_many_chunks),      cmocka_unit_test(test_elementwise),
    };
    return tu_main(argc, argv, "mpi.roundtrip", tests, sizeof tests / sizeof tests[0]);
}
