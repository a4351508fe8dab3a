/* model.c - shared helpers of the MPI integration suites: see model.h. */
#include "model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/file.h"
#include "format/footer.h"
#include "format/segment.h"

int g_nfail;
static char g_msg[8][700];

void rec(int line, const char *fmt, ...) {
    if (g_nfail < 8) {
        int k = snprintf(g_msg[g_nfail], sizeof g_msg[0], "line %d: ", line);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g_msg[g_nfail] + k, sizeof g_msg[0] - (size_t)k, fmt, ap);
        va_end(ap);
    }
    g_nfail++;
}

void done(void) {
    int bad = g_nfail, any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    for (int i = 0; i < bad && i < 8; i++)
        fprintf(stderr, "[rank %d/%d] %s\n", tu_rank(), tu_size(), g_msg[i]);
    g_nfail = 0;
    if (bad) fail_msg("rank %d: %d check(s) failed (see above)", tu_rank(), bad);
    if (any) fail_msg("a check failed on another rank");
}

int all_true(int v, MPI_Comm c) {
    int all = 0;
    MPI_Allreduce(&v, &all, 1, MPI_INT, MPI_MIN, c);
    return all;
}

afmt_file *xopen(MPI_Comm c, const char *path, int open, unsigned flags, const afmt_opts *o,
                 int line) {
    afmt_file *f = NULL;
    int rc = open ? afmt_open(c, path, flags, o, &f) : afmt_create(c, path, flags, o, &f);
    if (rc != AFMT_OK || !f)
        rec(line, "%s(%s) -> %d (%s): %s", open ? "afmt_open" : "afmt_create", path, rc,
            NSTR(afmt_strerror(rc)), NSTR(afmt_errmsg(NULL)));
    if (!all_true(rc == AFMT_OK && f != NULL, c)) return NULL;
    return f;
}

void rm_path(const char *p) {
    MPI_Barrier(MPI_COMM_WORLD);
    tu_remove(p);
}

long long fsize(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

const char *lock_of(const char *path) {
    static char ring[8][720]; /* a tu_path (700) and ".lock" */
    static int next;
    char *p = ring[next];
    next = (next + 1) % 8;
    snprintf(p, sizeof ring[0], "%s.lock", path);
    return p;
}

int exists0(const char *p) {
    struct stat sb;
    int e = tu_rank() == 0 ? stat(p, &sb) == 0 : 0;
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Bcast(&e, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return e;
}

void read0(const char *p, char *buf, int n) {
    buf[0] = 0;
    if (tu_rank() == 0) {
        FILE *fp = fopen(p, "r");
        if (fp) {
            size_t got = fread(buf, 1, (size_t)n - 1, fp);
            buf[got] = 0;
            fclose(fp);
        }
    }
    MPI_Bcast(buf, n, MPI_CHAR, 0, MPI_COMM_WORLD);
}

void write0(const char *p, const char *text) {
    MPI_Barrier(MPI_COMM_WORLD);
    if (tu_rank() == 0) {
        FILE *fp = fopen(p, "w");
        if (!fp || fputs(text, fp) < 0) rec(__LINE__, "cannot write %s", p);
        if (fp) fclose(fp);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

void expect_fail(const char *path, int create, unsigned mode, const afmt_opts *o, int want,
                 int line, const char *const *needles) {
    afmt_file *g = (afmt_file *)&g;
    int rc = create ? afmt_create(MPI_COMM_WORLD, path, mode, o, &g)
                    : afmt_open(MPI_COMM_WORLD, path, mode, o, &g);
    if (rc != want)
        rec(line, "%s(%s, 0x%x) -> %d (%s), want %d: %s", create ? "afmt_create" : "afmt_open",
            path, mode, rc, NSTR(afmt_strerror(rc)), want, NSTR(afmt_errmsg(NULL)));
    if (rc == AFMT_OK && g && g != (afmt_file *)&g)
        afmt_close(g);
    else if (rc != AFMT_OK && g != NULL)
        rec(line, "*f is not NULL after a failure");
    const char *m = afmt_errmsg(NULL);
    for (int i = 0; rc != AFMT_OK && needles && needles[i]; i++)
        if (!m || !strstr(m, needles[i]))
            rec(line, "message \"%s\" lacks \"%s\"", NSTR(m), needles[i]);
    int lo = rc, hi = rc;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (lo != hi) rec(line, "ranks disagree: codes %d .. %d", lo, hi);
}

void flip_bit(const char *path, uint64_t off) {
    MPI_Barrier(MPI_COMM_WORLD);
    if (tu_rank() == 0 && off) {
        FILE *fp = fopen(path, "r+b");
        unsigned char byte = 0;
        if (fp && fseek(fp, (long)off, SEEK_SET) == 0 && fread(&byte, 1, 1, fp) == 1) {
            byte ^= 0x10;
            fseek(fp, (long)off, SEEK_SET);
            fwrite(&byte, 1, 1, fp);
        }
        if (fp) fclose(fp);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

int read_newest_layer(afmt_file *f, afmt_layer *L, const char *what, int line) {
    uint64_t foff = f->super.footer_offset, flen = f->super.footer_length;
    uint8_t *fb = malloc((size_t)flen + 1);
    afmt_buf segs;
    char msg[AFMT_ERRMSG_MAX] = "";
    memset(L, 0, sizeof *L);
    afmt__buf_init(&segs);
    int rc = f->st->ops->read_at(f->st, foff, fb, flen);
    if (rc == AFMT_OK) rc = afmt__footer_decode(fb, flen, L, msg);
    if (rc == AFMT_OK) rc = afmt__segments_read(f->st, L, &segs, msg);
    if (rc == AFMT_OK) rc = afmt__segments_attach(L, segs.data, segs.len, foff, msg);
    if (rc != AFMT_OK)
        rec(line, "%s: reading the layer at %llu -> %d: %s", what, (unsigned long long)foff, rc,
            msg);
    free(fb);
    afmt__buf_free(&segs);
    return rc;
}

int same_bytes(const char *p, const char *q) {
    int same = 0;
    if (tu_rank() == 0) {
        FILE *a = fopen(p, "rb"), *b = fopen(q, "rb");
        same = a && b;
        while (same) {
            unsigned char x[65536], y[65536];
            size_t na = fread(x, 1, sizeof x, a), nb = fread(y, 1, sizeof y, b);
            if (na != nb || memcmp(x, y, na) != 0) same = 0;
            if (na == 0 || na != nb) break;
        }
        if (a) fclose(a);
        if (b) fclose(b);
    }
    MPI_Bcast(&same, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return same;
}

uint64_t layers_of(afmt_file *f, int line) {
    uint64_t n = 12345;
    int rc = afmt_layers(f, &n);
    if (rc != AFMT_OK) rec(line, "afmt_layers -> %d: %s", rc, NSTR(afmt_errmsg(f)));
    return n;
}

void tconst(afmt_dtype t, int64_t v, void *dst) {
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

void val(afmt_dtype t, void *dst, uint64_t i, uint64_t seed) {
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

void m_init(model *m, const char *name, afmt_dtype t, int ndim, const uint64_t *shape,
            const uint64_t *chunk, const void *fill) {
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->t = t;
    m->ndim = ndim;
    m->es = tu_dtype_size(t);
    m->n = 1;
    m->nullchunk = chunk == NULL;
    m->nullfill = fill == NULL;
    for (int d = 0; d < ndim; d++) {
        m->shape[d] = shape[d];
        m->chunk[d] = chunk ? chunk[d] : shape[d];
        m->n *= shape[d];
    }
    if (!chunk && ndim > 0) afmt__grid_auto_chunk(ndim, shape, m->es, m->chunk);
    if (fill) memcpy(m->fill, fill, m->es);
    m->all = malloc(m->n * m->es + 1);
    m->mine = malloc(m->n * m->es + 1);
    for (uint64_t i = 0; i < m->n; i++) memcpy(m->all + i * m->es, m->fill, m->es);
    memcpy(m->mine, m->all, m->n * m->es);
}

void m_free(model *m) {
    free(m->all);
    free(m->mine);
    m->all = m->mine = NULL;
}

void m_reset(model *m) {
    for (uint64_t i = 0; i < m->n; i++) memcpy(m->all + i * m->es, m->fill, m->es);
    memcpy(m->mine, m->all, m->n * m->es);
}

int m_define(afmt_file *f, const model *m) {
    return afmt_define(f, m->name, m->t, m->ndim, m->ndim ? m->shape : NULL,
                       m->nullchunk || !m->ndim ? NULL : m->chunk, NULL,
                       m->nullfill ? NULL : m->fill);
}

static uint64_t slab_n(int ndim, const uint64_t *count) {
    uint64_t k = 1;
    for (int d = 0; d < ndim; d++) k *= count[d];
    return k;
}

/* mode 0: full -> slab, 1: slab -> full, 2: generate the values of seed into slab */
static void slab_do(const model *m, const uint64_t *start, const uint64_t *count,
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

void m_write(afmt_file *f, model *m, int writer, const uint64_t *start, const uint64_t *count,
             uint64_t seed, int line) {
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

void m_write_rows(afmt_file *f, model *m, const uint64_t *st, const uint64_t *ct, int shift,
                  uint64_t seed, int line) {
    int np = tu_size();
    for (int r = 0; r < np; r++) {
        uint64_t s[2] = {st[0] + ct[0] * (uint64_t)r / (uint64_t)np, st[1]};
        uint64_t c[2] = {st[0] + ct[0] * (uint64_t)(r + 1) / (uint64_t)np - s[0], ct[1]};
        if (c[0]) m_write(f, m, (r + shift) % np, s, c, seed, line);
    }
}

void m_committed(model *m) {
    memcpy(m->mine, m->all, m->n * m->es);
}

static void hexel(char *out, const unsigned char *p, size_t es) {
    for (size_t b = 0; b < es; b++) sprintf(out + 2 * b, "%02x", p[es - 1 - b]);
}

void m_check_slab(afmt_file *f, const model *m, const uint64_t *start, const uint64_t *count,
                  int local, int line) {
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

void m_check(afmt_file *f, const model *m, int local, int line) {
    uint64_t z[32] = {0};
    m_check_slab(f, m, z, m->shape, local, line);
}

void m_check_info(afmt_file *f, const model *m, int line) {
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

void check_all(afmt_file *f, const model *ms, int nm, int line) {
    int cnt = -1;
    int rc = afmt_count(f, &cnt);
    if (rc != AFMT_OK || cnt != nm) rec(line, "afmt_count -> %d, n=%d, want %d", rc, cnt, nm);
    for (int i = 0; i < nm; i++) {
        m_check_info(f, &ms[i], line);
        m_check(f, &ms[i], 0, line);
    }
}

MPI_Comm reopen_comm(int v) {
    int me = tu_rank(), np = tu_size();
    MPI_Comm c = MPI_COMM_NULL;
    if (v == 0) MPI_Comm_dup(MPI_COMM_WORLD, &c);
    if (v == 1)
        MPI_Comm_split(MPI_COMM_WORLD, me < (np > 1 ? np - 1 : 1) ? 0 : MPI_UNDEFINED, me, &c);
    if (v == 2) MPI_Comm_dup(MPI_COMM_SELF, &c);
    return c;
}

void reopen_check(const char *path, const model *ms, int nm, int line) {
    for (int v = 0; v < 3; v++) {
        MPI_Comm c = reopen_comm(v);
        if (c != MPI_COMM_NULL) {
            afmt_file *f = xopen(c, path, 1, AFMT_RDONLY, NULL, line);
            if (f) {
                uint64_t nl = 0;
                EXPECT_OK_AT(line, f, afmt_layers(f, &nl));
                check_all(f, ms, nm, line);
                int rc = afmt_close(f);
                if (rc != AFMT_OK) rec(line, "reopen variant %d: afmt_close -> %d", v, rc);
            }
            MPI_Comm_free(&c);
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
}

void m_check_each(afmt_file *f, const model *ms, int nm, int local, int line) {
    for (int i = 0; i < nm; i++) m_check(f, &ms[i], local, line);
}

void commit_check(afmt_file *f, model *ms, int nm, int line) {
    EXPECT_OK_AT(line, f, afmt_commit(f));
    for (int i = 0; i < nm; i++) {
        m_committed(&ms[i]);
        m_check(f, &ms[i], 0, line);
    }
}

void close_reopen_check(afmt_file *f, const char *path, const model *ms, int nm, int line) {
    EXPECT_OK_AT(line, f, afmt_close(f));
    reopen_check(path, ms, nm, line);
}

void commit_close_check(afmt_file *f, const char *path, model *ms, int nm, int line) {
    m_check_each(f, ms, nm, 1, line);
    commit_check(f, ms, nm, line);
    close_reopen_check(f, path, ms, nm, line);
}

void m_free_each(model *ms, int nm) {
    for (int i = 0; i < nm; i++) m_free(&ms[i]);
}
