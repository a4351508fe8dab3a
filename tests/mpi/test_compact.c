/* test_compact.c - MPI integration: compaction keeps every live byte, drops dead data,
 * leaves one layer, and the file goes on being used on any rank count. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- shared helpers (identical copy in each tests/mpi/test_*.c of this suite) ---------
 * Checks never abort in the middle of a test: a failed check is recorded and the test goes
 * on, so that every rank makes the same collective calls; done() at the end of each test
 * gathers the outcome of all ranks and fails the test (with the recorded messages). */
#define NSTR(s) ((s) ? (s) : "(null)")
#define SMOOTH  (1ull << 40) /* seed flag: compressible values */
static int g_nfail;
static char g_msg[8][700];

static inline void rec(int line, const char *fmt, ...) {
    if (g_nfail < 8) {
        int k = snprintf(g_msg[g_nfail], sizeof g_msg[0], "line %d: ", line);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g_msg[g_nfail] + k, sizeof g_msg[0] - (size_t)k, fmt, ap);
        va_end(ap);
    }
    g_nfail++;
}
#define EXPECT(c)                                                                                  \
    do {                                                                                           \
        if (!(c)) rec(__LINE__, "expected %s", #c);                                                \
    } while (0)
#define EXPECT_RC(f, call, want)                                                                   \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != (want))                                                                         \
            rec(__LINE__, "%s -> %d (%s), want %d: %s", #call, rc_, NSTR(afmt_strerror(rc_)),      \
                (int)(want), NSTR(afmt_errmsg(f)));                                                \
    } while (0)
#define EXPECT_OK(f, call) EXPECT_RC(f, call, AFMT_OK)

/* COLLECTIVE over MPI_COMM_WORLD: ends a test, failing it if any rank recorded a failure. */
static inline void done(void) {
    int bad = g_nfail, any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    for (int i = 0; i < bad && i < 8; i++)
        fprintf(stderr, "[rank %d/%d] %s\n", tu_rank(), tu_size(), g_msg[i]);
    g_nfail = 0;
    if (bad) fail_msg("rank %d: %d check(s) failed (see above)", tu_rank(), bad);
    if (any) fail_msg("a check failed on another rank");
}

static inline int all_true(int v, MPI_Comm c) {
    int all = 0;
    MPI_Allreduce(&v, &all, 1, MPI_INT, MPI_MIN, c);
    return all;
}

/* COLLECTIVE over c: creates (open == 0) or opens path; NULL on every rank unless every
 * rank succeeded, so that a failure does not leave ranks waiting in collectives. */
static inline afmt_file *xopen(MPI_Comm c, const char *path, int open, unsigned flags,
                               const afmt_opts *o, int line) {
    afmt_file *f = NULL;
    int rc = open ? afmt_open(c, path, flags, o, &f) : afmt_create(c, path, flags, o, &f);
    if (rc != AFMT_OK || !f)
        rec(line, "%s(%s) -> %d (%s): %s", open ? "afmt_open" : "afmt_create", path, rc,
            NSTR(afmt_strerror(rc)), NSTR(afmt_errmsg(NULL)));
    if (!all_true(rc == AFMT_OK && f != NULL, c)) return NULL;
    return f;
}

/* COLLECTIVE: removes a test file once every rank is done with it (tu_remove unlinks on
 * rank 0 before its barrier). */
static inline void rm_path(const char *p) {
    MPI_Barrier(MPI_COMM_WORLD);
    tu_remove(p);
}

static inline long long fsize(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

static inline size_t esz(afmt_dtype t) {
    switch (t) {
    case AFMT_BOOL:
    case AFMT_INT8:
    case AFMT_UINT8:
        return 1;
    case AFMT_INT16:
    case AFMT_UINT16:
        return 2;
    case AFMT_INT32:
    case AFMT_UINT32:
    case AFMT_FLOAT32:
        return 4;
    default:
        return 8;
    }
}

/* One element of type t with the small integer value v (floats get a fraction). */
static inline void tconst(afmt_dtype t, int64_t v, void *dst) {
    switch (t) {
    case AFMT_BOOL: {
        uint8_t x = v != 0;
        memcpy(dst, &x, 1);
        break;
    }
    case AFMT_INT8:
    case AFMT_UINT8: {
        uint8_t x = (uint8_t)(uint64_t)v;
        memcpy(dst, &x, 1);
        break;
    }
    case AFMT_INT16:
    case AFMT_UINT16: {
        uint16_t x = (uint16_t)(uint64_t)v;
        memcpy(dst, &x, 2);
        break;
    }
    case AFMT_INT32:
    case AFMT_UINT32: {
        uint32_t x = (uint32_t)(uint64_t)v;
        memcpy(dst, &x, 4);
        break;
    }
    case AFMT_FLOAT32: {
        float x = (float)v + 0.25f;
        memcpy(dst, &x, 4);
        break;
    }
    case AFMT_FLOAT64: {
        double x = (double)v + 0.125;
        memcpy(dst, &x, 8);
        break;
    }
    default: {
        uint64_t x = (uint64_t)v;
        memcpy(dst, &x, 8);
        break;
    }
    }
}

/* Test value of element i (global linear index) for seed: distinct everywhere, valid for
 * the type (bools 0/1, finite floats); with SMOOTH in seed, runs of equal small values. */
static inline void val(afmt_dtype t, void *dst, uint64_t i, uint64_t seed) {
    uint64_t h;
    if (seed & SMOOTH) {
        h = (i / 16) % 1000 + (seed & 0xff);
        if (t == AFMT_FLOAT32 || t == AFMT_FLOAT64) {
            tconst(t, (int64_t)h, dst);
            return;
        }
    } else {
        tu_value(&h, 8, i, seed);
    }
    switch (t) {
    case AFMT_BOOL: {
        uint8_t b = (uint8_t)(h & 1);
        memcpy(dst, &b, 1);
        break;
    }
    case AFMT_FLOAT32: {
        float x = (float)((int64_t)(h % 2000001u) - 1000000) / 16.0f;
        memcpy(dst, &x, 4);
        break;
    }
    case AFMT_FLOAT64: {
        double x = (double)((int64_t)(h % 200000001u) - 100000000) / 64.0;
        memcpy(dst, &x, 8);
        break;
    }
    default:
        tconst(t, (int64_t)h, dst);
        break;
    }
}

/* Expected content of one array, kept by every rank. */
typedef struct {
    char name[256];
    afmt_dtype t;
    int ndim;
    uint64_t shape[32], chunk[32];
    int nullchunk, nullfill; /* define with chunk NULL / fill NULL */
    size_t es;
    uint64_t n;
    unsigned char fill[8];
    unsigned char *all;  /* content after the next commit (all ranks' writes) */
    unsigned char *mine; /* this rank's view before it: committed + own staged writes */
} model;

static inline void m_init(model *m, const char *name, afmt_dtype t, int ndim, const uint64_t *shape,
                          const uint64_t *chunk, const void *fill) {
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->t = t;
    m->ndim = ndim;
    m->es = esz(t);
    m->n = 1;
    m->nullchunk = chunk == NULL;
    m->nullfill = fill == NULL;
    for (int d = 0; d < ndim; d++) {
        m->shape[d] = shape[d];
        m->chunk[d] = chunk ? chunk[d] : shape[d];
        m->n *= shape[d];
    }
    if (fill) memcpy(m->fill, fill, m->es);
    m->all = malloc(m->n * m->es + 1);
    m->mine = malloc(m->n * m->es + 1);
    for (uint64_t i = 0; i < m->n; i++) memcpy(m->all + i * m->es, m->fill, m->es);
    memcpy(m->mine, m->all, m->n * m->es);
}

static inline void m_free(model *m) {
    free(m->all);
    free(m->mine);
    m->all = m->mine = NULL;
}

/* All elements back to the fill value (after a delete and redefine). */
static inline void m_reset(model *m) {
    for (uint64_t i = 0; i < m->n; i++) memcpy(m->all + i * m->es, m->fill, m->es);
    memcpy(m->mine, m->all, m->n * m->es);
}

static inline int m_define(afmt_file *f, const model *m) {
    return afmt_define(f, m->name, m->t, m->ndim, m->ndim ? m->shape : NULL,
                       m->nullchunk || !m->ndim ? NULL : m->chunk, NULL,
                       m->nullfill ? NULL : m->fill);
}

static inline uint64_t slab_n(int ndim, const uint64_t *count) {
    uint64_t k = 1;
    for (int d = 0; d < ndim; d++) k *= count[d];
    return k;
}

/* mode 0: full -> slab, 1: slab -> full, 2: generate the values of seed into slab */
static inline void slab_do(const model *m, const uint64_t *start, const uint64_t *count,
                           unsigned char *slab, unsigned char *full, int mode, uint64_t seed) {
    size_t es = m->es;
    if (m->ndim == 0) {
        if (mode == 0) memcpy(slab, full, es);
        if (mode == 1) memcpy(full, slab, es);
        if (mode == 2) val(m->t, slab, 0, seed);
        return;
    }
    int nd = m->ndim;
    uint64_t idx[32] = {0}, rows = 1, len = count[nd - 1];
    for (int d = 0; d < nd - 1; d++) rows *= count[d];
    for (uint64_t r = 0; r < rows; r++) {
        uint64_t off = 0;
        for (int d = 0; d < nd; d++) off = off * m->shape[d] + start[d] + (d < nd - 1 ? idx[d] : 0);
        unsigned char *s = slab + r * len * es;
        if (mode == 0) memcpy(s, full + off * es, len * es);
        if (mode == 1) memcpy(full + off * es, s, len * es);
        if (mode == 2)
            for (uint64_t j = 0; j < len; j++) val(m->t, s + j * es, off + j, seed);
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < count[d]) break;
            idx[d] = 0;
        }
    }
}

/* Rank `writer` stages [start, start+count) with the values of seed; every rank records
 * it in its model (and the writer in its own view). */
static inline void m_write(afmt_file *f, model *m, int writer, const uint64_t *start,
                           const uint64_t *count, uint64_t seed, int line) {
    uint64_t k = slab_n(m->ndim, count);
    unsigned char *buf = malloc(k * m->es + 1);
    slab_do(m, start, count, buf, NULL, 2, seed);
    slab_do(m, start, count, buf, m->all, 1, 0);
    if (writer == tu_rank()) {
        slab_do(m, start, count, buf, m->mine, 1, 0);
        int rc = afmt_write(f, m->name, m->ndim ? start : NULL, m->ndim ? count : NULL, buf);
        if (rc != AFMT_OK)
            rec(line, "afmt_write(%s) -> %d (%s): %s", m->name, rc, NSTR(afmt_strerror(rc)),
                NSTR(afmt_errmsg(f)));
    }
    free(buf);
}

static inline void m_committed(model *m) {
    memcpy(m->mine, m->all, m->n * m->es);
}

static inline void hexel(char *out, const unsigned char *p, size_t es) {
    for (size_t b = 0; b < es; b++) sprintf(out + 2 * b, "%02x", p[es - 1 - b]);
}

/* Reads [start, start+count) and compares it with the model (local: this rank's view). */
static inline void m_check_slab(afmt_file *f, const model *m, const uint64_t *start,
                                const uint64_t *count, int local, int line) {
    uint64_t k = slab_n(m->ndim, count);
    unsigned char *got = malloc(k * m->es + 1), *want = malloc(k * m->es + 1);
    memset(got, 0xA5, k * m->es);
    slab_do(m, start, count, want, local ? m->mine : m->all, 0, 0);
    int rc = afmt_read(f, m->name, m->ndim ? start : NULL, m->ndim ? count : NULL, got);
    if (rc != AFMT_OK) {
        rec(line, "afmt_read(%s) -> %d (%s): %s", m->name, rc, NSTR(afmt_strerror(rc)),
            NSTR(afmt_errmsg(f)));
    } else if (memcmp(got, want, k * m->es) != 0) {
        uint64_t first = 0, ndiff = 0;
        for (uint64_t i = k; i-- > 0;)
            if (memcmp(got + i * m->es, want + i * m->es, m->es)) {
                first = i;
                ndiff++;
            }
        char g[20] = "", w[20] = "", fl[20] = "";
        hexel(g, got + first * m->es, m->es);
        hexel(w, want + first * m->es, m->es);
        hexel(fl, m->fill, m->es);
        rec(line,
            "afmt_read(%s)%s: %llu of %llu elements differ, first at slab index %llu: "
            "got 0x%s want 0x%s (fill 0x%s)",
            m->name, local ? " (own view)" : "", (unsigned long long)ndiff, (unsigned long long)k,
            (unsigned long long)first, g, w, fl);
    }
    free(got);
    free(want);
}

static inline void m_check(afmt_file *f, const model *m, int local, int line) {
    uint64_t z[32] = {0};
    m_check_slab(f, m, z, m->shape, local, line);
}

static inline void m_check_info(afmt_file *f, const model *m, int line) {
    afmt_info info;
    memset(&info, 0, sizeof info);
    int rc = afmt_inquire(f, m->name, &info);
    if (rc != AFMT_OK) {
        rec(line, "afmt_inquire(%s) -> %d: %s", m->name, rc, NSTR(afmt_errmsg(f)));
        return;
    }
    int bad = strcmp(info.name, m->name) != 0 || info.dtype != m->t || info.ndim != m->ndim;
    for (int d = 0; !bad && d < m->ndim; d++)
        bad = info.shape[d] != m->shape[d] || info.chunk[d] != m->chunk[d];
    if (bad)
        rec(line, "afmt_inquire(%s): got name %s dtype %d ndim %d shape[0] %llu chunk[0] %llu",
            m->name, info.name, (int)info.dtype, info.ndim, (unsigned long long)info.shape[0],
            (unsigned long long)info.chunk[0]);
}

/* Checks that f holds exactly the nm arrays of ms with their content. */
static inline void check_all(afmt_file *f, const model *ms, int nm, int line) {
    int cnt = -1;
    int rc = afmt_count(f, &cnt);
    if (rc != AFMT_OK || cnt != nm) rec(line, "afmt_count -> %d, n=%d, want %d", rc, cnt, nm);
    for (int i = 0; i < nm; i++) {
        m_check_info(f, &ms[i], line);
        m_check(f, &ms[i], 0, line);
    }
}

/* COLLECTIVE over MPI_COMM_WORLD: reopens path read-only with (0) every rank, (1) a
 * sub-communicator of max(1, size-1) ranks, (2) MPI_COMM_SELF on each rank, and checks
 * every array against the models each time. */
static inline void reopen_check(const char *path, const model *ms, int nm, int line) {
    int me = tu_rank(), np = tu_size();
    for (int v = 0; v < 3; v++) {
        MPI_Comm c = MPI_COMM_NULL;
        if (v == 0) MPI_Comm_dup(MPI_COMM_WORLD, &c);
        if (v == 1)
            MPI_Comm_split(MPI_COMM_WORLD, me < (np > 1 ? np - 1 : 1) ? 0 : MPI_UNDEFINED, me, &c);
        if (v == 2) MPI_Comm_dup(MPI_COMM_SELF, &c);
        if (c != MPI_COMM_NULL) {
            afmt_file *f = xopen(c, path, 1, AFMT_RDONLY, NULL, line);
            if (f) {
                uint64_t nl = 0;
                EXPECT_OK(f, afmt_layers(f, &nl));
                check_all(f, ms, nm, line);
                int rc = afmt_close(f);
                if (rc != AFMT_OK) rec(line, "reopen variant %d: afmt_close -> %d", v, rc);
            }
            MPI_Comm_free(&c);
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
}
/* ---- end of shared helpers ---------------------------------------------------------- */

static uint64_t layers_of(afmt_file *f, int line) {
    uint64_t n = 12345;
    int rc = afmt_layers(f, &n);
    if (rc != AFMT_OK) rec(line, "afmt_layers -> %d: %s", rc, NSTR(afmt_errmsg(f)));
    return n;
}

#define EXPECT_LAYERS(f, want)                                                                     \
    do {                                                                                           \
        uint64_t nl_ = layers_of(f, __LINE__);                                                     \
        if (nl_ != (uint64_t)(want))                                                               \
            rec(__LINE__, "afmt_layers = %llu, want %llu", (unsigned long long)nl_,                \
                (unsigned long long)(want));                                                       \
    } while (0)

static void write_rows(afmt_file *f, model *m, const uint64_t *st, const uint64_t *ct,
                       uint64_t seed, int line) {
    int np = tu_size();
    for (int r = 0; r < np; r++) {
        uint64_t s[2] = {st[0] + ct[0] * (uint64_t)r / (uint64_t)np, st[1]};
        uint64_t c[2] = {st[0] + ct[0] * (uint64_t)(r + 1) / (uint64_t)np - s[0], ct[1]};
        if (c[0]) m_write(f, m, r, s, c, seed, line);
    }
}

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
        write_rows(f, &ms[0], st, ct, 1, __LINE__);
        write_line(f, &ms[1], 0, 3000, 2, __LINE__);
        write_line(f, &dead, 0, 3000, 3, __LINE__);
        m_write(f, &ms[2], 0, NULL, NULL, 4, __LINE__);
        uint64_t s3[3] = {1, 1, 1}, c3[3] = {3, 4, 5};
        m_write(f, &ms[3], np - 1, s3, c3, 5, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        /* layer 2: overwrite half of A, all of B */
        st[0] = 10, st[1] = 5, ct[0] = 31, ct[1] = 40;
        write_rows(f, &ms[0], st, ct, 6, __LINE__);
        write_line(f, &ms[1], 0, 3000, 7, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        /* layer 3: delete C, overwrite A again, attribute changes */
        EXPECT_OK(f, afmt_delete(f, "C"));
        st[0] = 0, st[1] = 0, ct[0] = 60, ct[1] = 20;
        write_rows(f, &ms[0], st, ct, 8, __LINE__);
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
        write_rows(f, &ms[0], st, ct, 10, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        m_committed(&ms[0]);
        EXPECT_LAYERS(f, 2);
        check_all(f, ms, 4, __LINE__);
        EXPECT_OK(f, afmt_close(f));
        reopen_check(path, ms, 4, __LINE__);
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
        EXPECT_OK(f, afmt_close(f));
        reopen_check(path, ms, 4, __LINE__);
    }
    for (int i = 0; i < 4; i++) m_free(&ms[i]);
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
        EXPECT_OK(f, afmt_close(f));
        reopen_check(path, ms, 2, __LINE__);
    }
    for (int i = 0; i < 2; i++) m_free(&ms[i]);
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
        EXPECT_OK(f, afmt_close(f));
        reopen_check(path, ms, 1, __LINE__);
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
            write_rows(f, &ms[0], st, ct, SMOOTH | (uint64_t)l, __LINE__);
            if (l % 3 == 0) write_rows(f, &ms[1], st, ct, 100 + (uint64_t)l, __LINE__);
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
        EXPECT_OK(f, afmt_close(f));
        reopen_check(path, ms, 2, __LINE__);
    }
    for (int i = 0; i < 2; i++) m_free(&ms[i]);
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
        write_rows(f, &ms[0], st, ct, 1, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        st[0] = 2, st[1] = 3, ct[0] = 9, ct[1] = 9;
        write_rows(f, &ms[0], st, ct, 2, __LINE__);
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
        EXPECT_OK(f, afmt_close(f));
        reopen_check(path, ms, 1, __LINE__);
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
        EXPECT_OK(f, afmt_close(f));
        reopen_check(path, ms, 2, __LINE__);
    }
    const char *path2 = tu_path(NULL, "cp-nothing");
    f = xopen(MPI_COMM_WORLD, path2, 0, 0, NULL, __LINE__);
    if (f) {
        EXPECT_OK(f, afmt_compact(f));
        EXPECT_LAYERS(f, 1);
        EXPECT_OK(f, afmt_close(f));
        reopen_check(path2, ms, 0, __LINE__);
    }
    for (int i = 0; i < 2; i++) m_free(&ms[i]);
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
