/* test_attrs.c - MPI integration: file and array attributes, every dtype, overwrite,
 * capacity and type errors, visibility after reopen, no leak across delete/redefine. */
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

/* An attribute the tests expect: key, type, values. */
typedef struct {
    const char *array; /* NULL = file */
    char key[64];
    afmt_dtype t;
    uint64_t n;
    unsigned char *v;
} attr;

static void a_make(attr *a, const char *array, const char *key, afmt_dtype t, uint64_t n,
                   uint64_t seed) {
    a->array = array;
    snprintf(a->key, sizeof a->key, "%s", key);
    a->t = t;
    a->n = n;
    a->v = malloc(n * esz(t) + 1);
    for (uint64_t i = 0; i < n; i++) val(t, a->v + i * esz(t), i, seed);
}

static void a_set(afmt_file *f, const attr *a, int line) {
    int rc = afmt_set_attr(f, a->array, a->key, a->t, a->n, a->v);
    if (rc != AFMT_OK)
        rec(line, "afmt_set_attr(%s, %s) -> %d: %s", NSTR(a->array), a->key, rc,
            NSTR(afmt_errmsg(f)));
}

/* get_attr with exactly the capacity, a larger capacity and a too small one. */
static void a_check(afmt_file *f, const attr *a, int line) {
    size_t es = esz(a->t);
    uint64_t cap = a->n + 5, n = cap;
    unsigned char *buf = malloc((a->n + 5) * es);
    memset(buf, 0x5A, (a->n + 5) * es);
    int rc = afmt_get_attr(f, a->array, a->key, a->t, &n, buf);
    if (rc != AFMT_OK || n != a->n || memcmp(buf, a->v, a->n * es) != 0) {
        rec(line, "afmt_get_attr(%s, %s) -> %d, n=%llu (want %llu), %s: %s", NSTR(a->array), a->key,
            rc, (unsigned long long)n, (unsigned long long)a->n,
            rc == AFMT_OK && n == a->n ? "values differ" : "", NSTR(afmt_errmsg(f)));
    } else {
        /* untouched past the stored values */
        for (size_t b = a->n * es; b < cap * es; b++)
            if (buf[b] != 0x5A) {
                rec(line, "afmt_get_attr(%s, %s) wrote past the %llu stored values", NSTR(a->array),
                    a->key, (unsigned long long)a->n);
                break;
            }
    }
    n = a->n;
    rc = afmt_get_attr(f, a->array, a->key, a->t, &n, buf);
    if (rc != AFMT_OK || n != a->n)
        rec(line, "afmt_get_attr(%s, %s) exact capacity -> %d, n=%llu", NSTR(a->array), a->key, rc,
            (unsigned long long)n);
    if (a->n > 1) {
        n = a->n - 1;
        rc = afmt_get_attr(f, a->array, a->key, a->t, &n, buf);
        if (rc != AFMT_ERANGE || n != a->n)
            rec(line, "afmt_get_attr(%s, %s) capacity %llu -> %d, n=%llu; want ERANGE, n=%llu",
                NSTR(a->array), a->key, (unsigned long long)(a->n - 1), rc, (unsigned long long)n,
                (unsigned long long)a->n);
    }
    free(buf);
}

#define NATTR 16

static void make_attrs(attr *as) {
    static const char text[] = "degrees Celsius, measured at 2 m";
    int k = 0;
    for (int t = 0; t < 11; t++) { /* file attributes: every dtype, lengths 1..3000 */
        char key[32];
        snprintf(key, sizeof key, "file_t%d", t);
        uint64_t n = t == 4 ? 3000 : (uint64_t)(1 + t * 3);
        a_make(&as[k++], NULL, key, (afmt_dtype)t, n, 50 + (uint64_t)t);
    }
    a_make(&as[k], NULL, "title", AFMT_UINT8, sizeof text - 1, 0);
    memcpy(as[k++].v, text, sizeof text - 1);
    a_make(&as[k++], "temp", "units_code", AFMT_INT32, 1, 60);
    a_make(&as[k++], "temp", "range", AFMT_FLOAT64, 2, 61);
    a_make(&as[k], "temp", "units", AFMT_UINT8, 7, 0);
    memcpy(as[k++].v, "celsius", 7);
    a_make(&as[k++], "pres", "range", AFMT_FLOAT64, 2, 62); /* same key, other array */
}

static void free_attrs(attr *as, int n) {
    for (int i = 0; i < n; i++) free(as[i].v);
}

static void define_arrays(afmt_file *f, model *ms) {
    const uint64_t s[2] = {10, 12}, c[2] = {4, 5};
    m_init(&ms[0], "temp", AFMT_FLOAT32, 2, s, c, NULL);
    m_init(&ms[1], "pres", AFMT_FLOAT64, 1, s, NULL, NULL);
    if (f)
        for (int i = 0; i < 2; i++) EXPECT_OK(f, m_define(f, &ms[i]));
}

/* COLLECTIVE: reopens with WORLD, a sub-communicator and SELF; checks every attribute. */
static void reopen_attrs(const char *path, const attr *as, int na, int line) {
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
                for (int i = 0; i < na; i++) a_check(f, &as[i], line);
                EXPECT_OK(f, afmt_close(f));
            }
            MPI_Comm_free(&c);
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
}

/* File and array attributes of every dtype and several lengths, visible at once, after
 * commit and after reopening on other rank counts. */
static void test_attr_types(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "at-types");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[2];
    attr as[NATTR];
    make_attrs(as);
    define_arrays(f, ms);
    if (f) {
        for (int i = 0; i < NATTR; i++) a_set(f, &as[i], __LINE__);
        for (int i = 0; i < NATTR; i++) a_check(f, &as[i], __LINE__); /* visible at once */
        EXPECT_OK(f, afmt_commit(f));
        uint64_t nl = 0;
        EXPECT_OK(f, afmt_layers(f, &nl));
        EXPECT(nl == 1);
        for (int i = 0; i < NATTR; i++) a_check(f, &as[i], __LINE__);
        EXPECT_OK(f, afmt_close(f));
        reopen_attrs(path, as, NATTR, __LINE__);
    }
    m_free(&ms[0]);
    m_free(&ms[1]);
    free_attrs(as, NATTR);
    rm_path(path);
    done();
}

/* Overwriting: new type and length replace the old value; attributes untouched by later
 * layers stay visible (fall through); newest wins after reopen. */
static void test_attr_overwrite(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "at-over");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[2];
    attr as[NATTR];
    make_attrs(as);
    define_arrays(f, ms);
    if (f) {
        for (int i = 0; i < NATTR; i++) a_set(f, &as[i], __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        /* same epoch twice: the last set wins */
        attr a1, a2;
        a_make(&a1, "temp", "range", AFMT_INT16, 9, 70);
        a_set(f, &a1, __LINE__);
        a_make(&a2, "temp", "range", AFMT_UINT64, 4, 71);
        a_set(f, &a2, __LINE__);
        a_check(f, &a2, __LINE__);
        uint64_t n = 10;
        int16_t i16[10];
        EXPECT_RC(f, afmt_get_attr(f, "temp", "range", AFMT_INT16, &n, i16), AFMT_ETYPE);
        n = 10;
        double d[10];
        EXPECT_RC(f, afmt_get_attr(f, "temp", "range", AFMT_FLOAT64, &n, d), AFMT_ETYPE);
        /* the same key of the other array is untouched */
        a_check(f, &as[15], __LINE__);
        free(as[13].v);
        as[13] = a2;
        /* a file attribute rewritten in layer 2, a string made shorter */
        free(as[11].v);
        a_make(&as[11], NULL, "title", AFMT_UINT8, 3, 0);
        memcpy(as[11].v, "abc", 3);
        a_set(f, &as[11], __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        free(a1.v);
        for (int i = 0; i < NATTR; i++) a_check(f, &as[i], __LINE__);
        EXPECT_OK(f, afmt_close(f));
        reopen_attrs(path, as, NATTR, __LINE__);
        /* layer 3 from a reopened handle: one more overwrite, data untouched */
        f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, NULL, __LINE__);
    }
    if (f) {
        free(as[0].v);
        a_make(&as[0], NULL, "file_t0", AFMT_FLOAT32, 5, 80);
        a_set(f, &as[0], __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        uint64_t nl = 0;
        EXPECT_OK(f, afmt_layers(f, &nl));
        EXPECT(nl == 3);
        EXPECT_OK(f, afmt_close(f));
        reopen_attrs(path, as, NATTR, __LINE__);
    }
    m_free(&ms[0]);
    m_free(&ms[1]);
    free_attrs(as, NATTR);
    rm_path(path);
    done();
}

/* ERANGE with *n set, ETYPE, ENOTFOUND (key, array), bad arguments. */
static void test_attr_errors(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "at-err");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[2];
    define_arrays(f, ms);
    if (f) {
        double v[6] = {1, 2, 3, 4, 5, 6};
        EXPECT_OK(f, afmt_set_attr(f, "pres", "six", AFMT_FLOAT64, 6, v));
        EXPECT_OK(f, afmt_set_attr(f, NULL, "six", AFMT_FLOAT64, 6, v));
        for (int pass = 0; pass < 2; pass++) { /* before and after commit */
            for (int fa = 0; fa < 2; fa++) {
                const char *arr = fa ? NULL : "pres";
                double out[6] = {0, 0, -7, -7, -7, -7};
                uint64_t n = 2;
                EXPECT_RC(f, afmt_get_attr(f, arr, "six", AFMT_FLOAT64, &n, out), AFMT_ERANGE);
                EXPECT(n == 6);
                EXPECT(out[2] == -7 && out[5] == -7); /* nothing past the capacity */
                n = 0;
                EXPECT_RC(f, afmt_get_attr(f, arr, "six", AFMT_FLOAT64, &n, out), AFMT_ERANGE);
                EXPECT(n == 6);
                n = 6;
                EXPECT_OK(f, afmt_get_attr(f, arr, "six", AFMT_FLOAT64, &n, out));
                EXPECT(n == 6 && out[5] == 6.0);
                n = 6;
                float fl[6];
                EXPECT_RC(f, afmt_get_attr(f, arr, "six", AFMT_FLOAT32, &n, fl), AFMT_ETYPE);
                n = 6;
                EXPECT_RC(f, afmt_get_attr(f, arr, "six", AFMT_UINT64, &n, out), AFMT_ETYPE);
                n = 6;
                EXPECT_RC(f, afmt_get_attr(f, arr, "missing", AFMT_FLOAT64, &n, out),
                          AFMT_ENOTFOUND);
                n = 6;
                EXPECT_RC(f, afmt_get_attr(f, arr, NULL, AFMT_FLOAT64, &n, out), AFMT_EINVAL);
                EXPECT_RC(f, afmt_get_attr(f, arr, "six", AFMT_FLOAT64, NULL, out), AFMT_EINVAL);
            }
            double out[6];
            uint64_t n = 6;
            EXPECT_RC(f, afmt_get_attr(f, "temp", "six", AFMT_FLOAT64, &n, out), AFMT_ENOTFOUND);
            n = 6;
            EXPECT_RC(f, afmt_get_attr(f, "nope", "six", AFMT_FLOAT64, &n, out), AFMT_ENOTFOUND);
            n = 6;
            EXPECT_RC(NULL, afmt_get_attr(NULL, NULL, "six", AFMT_FLOAT64, &n, out), AFMT_EINVAL);
            if (pass == 0) EXPECT_OK(f, afmt_commit(f));
        }
        /* set_attr errors (collective, same arguments everywhere) */
        double one = 1;
        EXPECT_RC(f, afmt_set_attr(f, "nope", "k", AFMT_FLOAT64, 1, &one), AFMT_ENOTFOUND);
        EXPECT_RC(f, afmt_set_attr(f, NULL, NULL, AFMT_FLOAT64, 1, &one), AFMT_EINVAL);
        EXPECT_RC(f, afmt_set_attr(f, NULL, "k", AFMT_FLOAT64, 1, NULL), AFMT_EINVAL);
        int rc = afmt_set_attr(f, NULL, "k", (afmt_dtype)99, 1, &one);
        if (rc != AFMT_EINVAL && rc != AFMT_ETYPE)
            rec(__LINE__, "afmt_set_attr with dtype 99 -> %d, want EINVAL or ETYPE", rc);
        EXPECT_RC(NULL, afmt_set_attr(NULL, NULL, "k", AFMT_FLOAT64, 1, &one), AFMT_EINVAL);
        uint64_t n = 1;
        EXPECT_RC(f, afmt_get_attr(f, NULL, "k", AFMT_FLOAT64, &n, &one), AFMT_ENOTFOUND);
        EXPECT_OK(f, afmt_close(f));
    }
    m_free(&ms[0]);
    m_free(&ms[1]);
    rm_path(path);
    done();
}

/* Attributes of a deleted array do not leak into a new array of the same name: deleted and
 * redefined in one epoch, and across commits and reopen. */
static void test_attr_deleted_array(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "at-del");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[2];
    define_arrays(f, ms);
    int32_t v = 7;
    uint64_t n;
    int32_t out = 0;
    if (f) {
        EXPECT_OK(f, afmt_set_attr(f, "temp", "a1", AFMT_INT32, 1, &v));
        EXPECT_OK(f, afmt_set_attr(f, "pres", "p1", AFMT_INT32, 1, &v));
        EXPECT_OK(f, afmt_commit(f));
        /* case 1: delete and redefine in the same epoch */
        EXPECT_OK(f, afmt_delete(f, "temp"));
        n = 1;
        EXPECT_RC(f, afmt_get_attr(f, "temp", "a1", AFMT_INT32, &n, &out), AFMT_ENOTFOUND);
        EXPECT_OK(f, m_define(f, &ms[0]));
        n = 1;
        EXPECT_RC(f, afmt_get_attr(f, "temp", "a1", AFMT_INT32, &n, &out), AFMT_ENOTFOUND);
        EXPECT_OK(f, afmt_set_attr(f, "temp", "a2", AFMT_INT32, 1, &v));
        EXPECT_OK(f, afmt_commit(f));
        n = 1;
        EXPECT_RC(f, afmt_get_attr(f, "temp", "a1", AFMT_INT32, &n, &out), AFMT_ENOTFOUND);
        /* case 2: delete, commit, redefine, commit */
        EXPECT_OK(f, afmt_delete(f, "pres"));
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_OK(f, m_define(f, &ms[1]));
        n = 1;
        EXPECT_RC(f, afmt_get_attr(f, "pres", "p1", AFMT_INT32, &n, &out), AFMT_ENOTFOUND);
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_OK(f, afmt_close(f));
    }
    /* after reopen (all rank counts): only the new attribute */
    int me = tu_rank(), np = tu_size();
    for (int k = 0; f && k < 3; k++) {
        MPI_Comm c = MPI_COMM_NULL;
        if (k == 0) MPI_Comm_dup(MPI_COMM_WORLD, &c);
        if (k == 1)
            MPI_Comm_split(MPI_COMM_WORLD, me < (np > 1 ? np - 1 : 1) ? 0 : MPI_UNDEFINED, me, &c);
        if (k == 2) MPI_Comm_dup(MPI_COMM_SELF, &c);
        if (c != MPI_COMM_NULL) {
            afmt_file *g = xopen(c, path, 1, AFMT_RDONLY, NULL, __LINE__);
            if (g) {
                n = 1;
                EXPECT_RC(g, afmt_get_attr(g, "temp", "a1", AFMT_INT32, &n, &out), AFMT_ENOTFOUND);
                n = 1;
                EXPECT_RC(g, afmt_get_attr(g, "pres", "p1", AFMT_INT32, &n, &out), AFMT_ENOTFOUND);
                n = 1;
                out = 0;
                EXPECT_OK(g, afmt_get_attr(g, "temp", "a2", AFMT_INT32, &n, &out));
                EXPECT(n == 1 && out == 7);
                int cnt = 0;
                EXPECT_OK(g, afmt_count(g, &cnt));
                EXPECT(cnt == 2);
                EXPECT_OK(g, afmt_close(g));
            }
            MPI_Comm_free(&c);
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
    m_free(&ms[0]);
    m_free(&ms[1]);
    rm_path(path);
    done();
}

/* Attributes on a read-only handle: readable, not settable. */
static void test_attr_readonly(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "at-ro");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    int64_t v[3] = {-1, 0, 1};
    if (f) {
        EXPECT_OK(f, afmt_set_attr(f, NULL, "v", AFMT_INT64, 3, v));
        EXPECT_OK(f, afmt_close(f)); /* close commits */
        f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
    }
    if (f) {
        int64_t out[3] = {0};
        uint64_t n = 3;
        EXPECT_OK(f, afmt_get_attr(f, NULL, "v", AFMT_INT64, &n, out));
        EXPECT(n == 3 && out[0] == -1 && out[2] == 1);
        EXPECT_RC(f, afmt_set_attr(f, NULL, "v", AFMT_INT64, 3, v), AFMT_EREADONLY);
        EXPECT_OK(f, afmt_close(f));
    }
    rm_path(path);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attr_types),    cmocka_unit_test(test_attr_overwrite),
        cmocka_unit_test(test_attr_errors),   cmocka_unit_test(test_attr_deleted_array),
        cmocka_unit_test(test_attr_readonly),
    };
    return tu_main(argc, argv, "mpi.attrs", tests, sizeof tests / sizeof tests[0]);
}
