/* cmd_stats.c - afmt stats (min, max, mean, non-fill count per array) and afmt diff
 * (arrays and values that differ between two files). Both read arrays in slabs along
 * the outermost dimensions, divided among the ranks, and reduce the results. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "api/file.h"
#include "cli.h"

typedef unsigned long long ull;

/* ---- stats ------------------------------------------------------------------------ */

typedef struct {
    uint64_t nonfill, nan;
    double sum, comp; /* Neumaier-compensated sum of the non-fill, non-NaN values */
    int64_t imin, imax;
    uint64_t umin, umax;
    double fmin, fmax;
} acc;

static void acc_init(acc *a) {
    memset(a, 0, sizeof *a);
    a->imin = INT64_MAX;
    a->imax = INT64_MIN;
    a->umin = UINT64_MAX;
    a->umax = 0;
    a->fmin = INFINITY;
    a->fmax = -INFINITY;
}

static void acc_add(acc *a, double v) {
    double t = a->sum + v;
    if (fabs(a->sum) >= fabs(v))
        a->comp += (a->sum - t) + v;
    else
        a->comp += (v - t) + a->sum;
    a->sum = t;
}

static void acc_slab(acc *a, afmt_dtype t, const void *buf, uint64_t n, const uint8_t *fill) {
    size_t es = cli_dtype_size(t);
    const uint8_t *p = buf;
    cli_kind k = cli_dtype_kind(t);
    double fv = k == CLI_KIND_FLOAT ? cli_get_f64(fill, t, 0) : 0.0;
    for (uint64_t i = 0; i < n; i++) {
        if (k == CLI_KIND_FLOAT) {
            double v = cli_get_f64(buf, t, i);
            if (v == fv || (isnan(v) && isnan(fv))) continue;
            a->nonfill++;
            if (isnan(v)) {
                a->nan++;
                continue;
            }
            if (v < a->fmin) a->fmin = v;
            if (v > a->fmax) a->fmax = v;
            acc_add(a, v);
            continue;
        }
        if (memcmp(p + i * es, fill, es) == 0) continue;
        a->nonfill++;
        if (k == CLI_KIND_SIGNED) {
            int64_t v = cli_get_i64(buf, t, i);
            if (v < a->imin) a->imin = v;
            if (v > a->imax) a->imax = v;
            acc_add(a, (double)v);
        } else {
            uint64_t v = cli_get_u64(buf, t, i);
            if (v < a->umin) a->umin = v;
            if (v > a->umax) a->umax = v;
            acc_add(a, (double)v);
        }
    }
}

static void acc_reduce(acc *a) {
    uint64_t c[2] = {a->nonfill, a->nan};
    double s[2] = {a->sum, a->comp};
    MPI_Allreduce(MPI_IN_PLACE, c, 2, MPI_UINT64_T, MPI_SUM, cli.comm);
    MPI_Allreduce(MPI_IN_PLACE, s, 2, MPI_DOUBLE, MPI_SUM, cli.comm);
    MPI_Allreduce(MPI_IN_PLACE, &a->imin, 1, MPI_INT64_T, MPI_MIN, cli.comm);
    MPI_Allreduce(MPI_IN_PLACE, &a->imax, 1, MPI_INT64_T, MPI_MAX, cli.comm);
    MPI_Allreduce(MPI_IN_PLACE, &a->umin, 1, MPI_UINT64_T, MPI_MIN, cli.comm);
    MPI_Allreduce(MPI_IN_PLACE, &a->umax, 1, MPI_UINT64_T, MPI_MAX, cli.comm);
    MPI_Allreduce(MPI_IN_PLACE, &a->fmin, 1, MPI_DOUBLE, MPI_MIN, cli.comm);
    MPI_Allreduce(MPI_IN_PLACE, &a->fmax, 1, MPI_DOUBLE, MPI_MAX, cli.comm);
    a->nonfill = c[0];
    a->nan = c[1];
    a->sum = s[0];
    a->comp = s[1];
}

/* Reads [start, start + count) of the array in slabs of at most the budget into buf and
 * adds them to a. 0, or -1 with the library's message in msg. */
static int box_stats(afmt_file *f, const afmt_info *info, const uint64_t *start,
                     const uint64_t *count, const uint8_t *fill, void *buf, acc *a, char *msg,
                     size_t msglen) {
    cli_slabs s;
    uint64_t st[AFMT_MAX_NDIM], cn[AFMT_MAX_NDIM];
    cli_slabs_init(&s, info, start, count, cli_dtype_size(info->dtype), cli_slab_budget());
    for (uint64_t i = 0; i < s.n; i++) {
        uint64_t n = cli_slab_at(&s, i, st, cn);
        if (afmt_read(f, info->name, st, cn, buf) != AFMT_OK) {
            snprintf(msg, msglen, "%s", afmt_errmsg(f));
            return -1;
        }
        acc_slab(a, info->dtype, buf, n, fill);
    }
    return 0;
}

/* Collective over the ranks: the statistics of one array. Only the written chunks
 * (idx[n], sorted) are read: every other element is the fill value, which the statistics
 * leave out, so a never-written array costs nothing whatever its size. The runs of
 * chunks are divided among the ranks. */
static int array_stats(const char *path, afmt_file *f, const afmt_info *info, const afmt_array *arr,
                       const uint64_t *idx, uint64_t nidx, const uint8_t *fill, acc *a) {
    size_t es = cli_dtype_size(info->dtype);
    uint64_t budget = cli_slab_budget(), cap = budget / es ? budget / es : 1;
    cli_run *runs = NULL;
    uint64_t nruns = 0, lo, hi, st[AFMT_MAX_NDIM], cn[AFMT_MAX_NDIM];
    acc_init(a);
    char msg[1024] = "out of memory for a slab";
    int failed = cli_runs_build(&arr->grid, es, budget, idx, nidx, &runs, &nruns) != 0;
    cli_slab_share(nruns, cli.rank, cli.size, &lo, &hi);
    void *buf = failed || lo == hi ? NULL : malloc((size_t)(cap * es) + 1);
    if (!failed && lo < hi && !buf) failed = 1;
    for (uint64_t i = lo; !failed && i < hi; i++) {
        cli_run_box(&arr->grid, &runs[i], st, cn);
        if (box_stats(f, info, st, cn, fill, buf, a, msg, sizeof msg) != 0) failed = 1;
    }
    free(buf);
    free(runs);
    int rc = cli_agree_msg(path, failed, msg);
    if (rc == CLI_OK) acc_reduce(a);
    return rc;
}

typedef struct {
    char name[AFMT_MAX_NAME + 1], ename[CLI_ESC_NAME]; /* raw (JSON) and escaped (text) */
    char dtype[16], elems[24], nonfill[24], nan[24];
    char min[64], max[64], mean[64];
} stat_row;

static void stat_row_fill(stat_row *r, const afmt_info *info, const acc *a) {
    snprintf(r->name, sizeof r->name, "%s", info->name);
    cli_esc(info->name, r->ename, sizeof r->ename);
    snprintf(r->dtype, sizeof r->dtype, "%s", cli_dtype_name(info->dtype));
    snprintf(r->elems, sizeof r->elems, "%llu", (ull)cli_nelems(info));
    snprintf(r->nonfill, sizeof r->nonfill, "%llu", (ull)a->nonfill);
    snprintf(r->nan, sizeof r->nan, "%llu", (ull)a->nan);
    uint64_t valid = a->nonfill - a->nan;
    if (valid == 0) {
        strcpy(r->min, "-");
        strcpy(r->max, "-");
        strcpy(r->mean, "-");
        return;
    }
    switch (cli_dtype_kind(info->dtype)) {
    case CLI_KIND_SIGNED:
        snprintf(r->min, sizeof r->min, "%lld", (long long)a->imin);
        snprintf(r->max, sizeof r->max, "%lld", (long long)a->imax);
        break;
    case CLI_KIND_UNSIGNED:
        snprintf(r->min, sizeof r->min, "%llu", (ull)a->umin);
        snprintf(r->max, sizeof r->max, "%llu", (ull)a->umax);
        break;
    default:
        cli_format_double(r->min, sizeof r->min, a->fmin, info->dtype == AFMT_FLOAT32);
        cli_format_double(r->max, sizeof r->max, a->fmax, info->dtype == AFMT_FLOAT32);
        break;
    }
    cli_format_double(r->mean, sizeof r->mean, (a->sum + a->comp) / (double)valid, 0);
}

static void stats_print(FILE *o, const char *path, const stat_row *r, uint64_t n, int json) {
    if (json) {
        fputs("{\"file\": ", o);
        cli_json_str(o, path, strlen(path));
        fputs(", \"arrays\": [", o);
        for (uint64_t i = 0; i < n; i++) {
            fputs(i ? ",\n  {\"name\": " : "\n  {\"name\": ", o);
            cli_json_str(o, r[i].name, strlen(r[i].name));
            fprintf(o, ", \"dtype\": \"%s\", \"elements\": %s, \"non_fill\": %s, \"nan\": %s",
                    r[i].dtype, r[i].elems, r[i].nonfill, r[i].nan);
            const char *k[3] = {"min", "max", "mean"}, *v[3] = {r[i].min, r[i].max, r[i].mean};
            for (int j = 0; j < 3; j++) {
                int num = strcmp(v[j], "-") && strcmp(v[j], "nan") && strcmp(v[j], "inf") &&
                          strcmp(v[j], "-inf");
                if (!strcmp(v[j], "-"))
                    fprintf(o, ", \"%s\": null", k[j]);
                else
                    fprintf(o, num ? ", \"%s\": %s" : ", \"%s\": \"%s\"", k[j], v[j]);
            }
            fputc('}', o);
        }
        fputs(n ? "\n]}\n" : "]}\n", o);
        return;
    }
    const char *head[8] = {"NAME", "DTYPE", "ELEMENTS", "NON-FILL", "NAN", "MIN", "MAX", "MEAN"};
    size_t w[8];
    for (int c = 0; c < 8; c++) w[c] = strlen(head[c]);
    for (uint64_t i = 0; i < n; i++) {
        const char *cell[8] = {r[i].ename, r[i].dtype, r[i].elems, r[i].nonfill,
                               r[i].nan,   r[i].min,   r[i].max,   r[i].mean};
        for (int c = 0; c < 8; c++)
            if (strlen(cell[c]) > w[c]) w[c] = strlen(cell[c]);
    }
    for (int c = 0; c < 7; c++) fprintf(o, c >= 2 ? "%*s  " : "%-*s  ", (int)w[c], head[c]);
    fprintf(o, "%s\n", head[7]);
    for (uint64_t i = 0; i < n; i++) {
        const char *cell[8] = {r[i].ename, r[i].dtype, r[i].elems, r[i].nonfill,
                               r[i].nan,   r[i].min,   r[i].max,   r[i].mean};
        for (int c = 0; c < 7; c++) fprintf(o, c >= 2 ? "%*s  " : "%-*s  ", (int)w[c], cell[c]);
        fprintf(o, "%s\n", cell[7]);
    }
}

int cmd_stats(int argc, char **argv) {
    static const cli_optdef defs[] = {{"json", 0, 0}, {NULL, 0, 0}};
    cli_args a;
    int done, rc = cli_parse(argc, argv, defs, &a, &done);
    if (done) return rc;
    if (a.npos < 1 || a.npos > 2) return cli_usage_error("stats", "expected FILE [ARRAY]");
    const char *path = a.pos[0], *only = a.npos == 2 ? a.pos[1] : NULL;
    afmt_file *f;
    if ((rc = cli_open(path, AFMT_RDONLY, 0, &f)) != CLI_OK) return rc;
    int n = 0;
    afmt_count(f, &n);
    afmt_info info;
    if (only && afmt_inquire(f, only, &info) != AFMT_OK) {
        cli_close(path, f);
        return cli_error(path, "no array \"%s\" (see afmt ls %s)", only, path);
    }
    stat_row *rows = calloc((size_t)n + 1, sizeof *rows);
    cli_chunks ch;
    if (!rows || cli_chunks_build(&f->idx, &ch) != 0) {
        free(rows);
        cli_close(path, f);
        return cli_error(path, "out of memory");
    }
    uint64_t nrows = 0;
    for (int i = 0; rc == CLI_OK && i < n; i++) {
        if (afmt_info_at(f, i, &info) != AFMT_OK) continue;
        if (only && strcmp(info.name, only)) continue;
        const afmt_array *arr = afmt__index_find(&f->idx, info.name);
        uint8_t fill[8];
        cli_fill_native(arr->d.fill, info.dtype, fill);
        uint64_t clo, chi;
        cli_chunks_of(&ch, arr->d.id, &clo, &chi);
        acc ac;
        rc = array_stats(path, f, &info, arr, ch.idx + clo, chi - clo, fill, &ac);
        if (rc == CLI_OK) stat_row_fill(&rows[nrows++], &info, &ac);
    }
    if (rc == CLI_OK && cli.rank == 0)
        stats_print(stdout, path, rows, nrows, a.val[cli_opt(defs, "json")] != NULL);
    cli_chunks_free(&ch);
    free(rows);
    int crc = cli_close(path, f);
    return rc != CLI_OK ? rc : crc;
}

/* ---- diff ------------------------------------------------------------------------- */

typedef struct {
    double rtol, atol;
    int tol; /* a tolerance was given */
} tolerance;

/* What the comparison of an array found: the pairs that differ, those of them with a NaN
 * or an infinity on either side, and the largest |a - b| and |a - b| / |b| over the pairs
 * of finite values (integers: every pair), equal ones included. */
typedef struct {
    uint64_t ndiff, nonfinite;
    double max_abs, max_rel;
} diffacc;

/* |d| <= thr for an exact integer difference d against a tolerance thr (>= 0), exactly:
 * d is never rounded to a double, so 2^62 + 1 and 2^62 differ under --atol 0.5. */
static int int_within(uint64_t d, double thr) {
    if (!(thr >= 0)) return 0;
    if (thr >= 18446744073709551616.0) return 1;
    return d <= (uint64_t)thr; /* thr >= 0: the conversion rounds down */
}

static void note_max(diffacc *da, double d, double b) {
    double r = b != 0 ? d / fabs(b) : d > 0 ? INFINITY : 0;
    if (d > da->max_abs) da->max_abs = d;
    if (r > da->max_rel) da->max_rel = r;
}

/* Compares element i of x (file A: a) and y (file B: b), numpy.isclose's rule with NaN
 * equal to NaN: equal if a == b, if both are NaN, or, with a tolerance, if both are
 * finite and |a - b| <= atol + rtol * |b|. Integers compare exactly, and with a
 * tolerance by their exact difference. Adds the pair to da (ndiff not counted: the
 * caller does); 1 if equal. */
static int compare_pair(const void *x, const void *y, afmt_dtype t, uint64_t i, const tolerance *tl,
                        diffacc *da) {
    switch (cli_dtype_kind(t)) {
    case CLI_KIND_FLOAT: {
        double a = cli_get_f64(x, t, i), b = cli_get_f64(y, t, i);
        if (a == b || (isnan(a) && isnan(b))) return 1;
        if (!isfinite(a) || !isfinite(b)) {
            da->nonfinite++;
            return 0;
        }
        double d = fabs(a - b);
        note_max(da, d, b);
        return tl->tol && d <= tl->atol + tl->rtol * fabs(b);
    }
    case CLI_KIND_SIGNED: {
        int64_t a = cli_get_i64(x, t, i), b = cli_get_i64(y, t, i);
        if (a == b) return 1;
        uint64_t d = a > b ? (uint64_t)a - (uint64_t)b : (uint64_t)b - (uint64_t)a;
        note_max(da, (double)d, (double)b);
        return tl->tol && int_within(d, tl->atol + tl->rtol * fabs((double)b));
    }
    default: {
        uint64_t a = cli_get_u64(x, t, i), b = cli_get_u64(y, t, i);
        if (a == b) return 1;
        uint64_t d = a > b ? a - b : b - a;
        note_max(da, (double)d, (double)b);
        return tl->tol && int_within(d, tl->atol + tl->rtol * (double)b);
    }
    }
}

typedef struct {
    const char *pa, *pb;
    char ea[CLI_ESC_SIZE(4096)], eb[CLI_ESC_SIZE(4096)]; /* the paths escaped, for reports */
    afmt_file *fa, *fb;
    int quiet;
    uint64_t ndiff; /* differences found (rank 0's count of report lines) */
} diff_ctx;

static void report(diff_ctx *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* One line of diff's output (rank 0, unless quiet). */
static void vline(const diff_ctx *c, const char *fmt, va_list ap) {
    if (c->quiet || cli.rank != 0) return;
    vprintf(fmt, ap);
    fputc('\n', stdout);
}

static void report(diff_ctx *c, const char *fmt, ...) {
    c->ndiff++;
    va_list ap;
    va_start(ap, fmt);
    vline(c, fmt, ap);
    va_end(ap);
}

/* A line that reports no difference (an array equal within the tolerances). */
static void note(diff_ctx *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void note(diff_ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vline(c, fmt, ap);
    va_end(ap);
}

static const afmt_attr_rec *find_attr(const afmt_attr_rec *t, uint64_t n, const char *key) {
    for (uint64_t i = 0; i < n; i++)
        if (!strcmp(t[i].key, key)) return &t[i];
    return NULL;
}

static void attr_text(char *buf, size_t n, const afmt_attr_rec *r) {
    FILE *m = fmemopen(buf, n, "w");
    if (!m) {
        snprintf(buf, n, "?");
        return;
    }
    cli_text_values(m, r->dtype, r->n, r->value, 8);
    fclose(m);
    buf[n - 1] = 0;
}

static void diff_attrs(diff_ctx *c, const char *what, const afmt_attr_rec *ta, uint64_t na,
                       const afmt_attr_rec *tb, uint64_t nb) {
    char va[256], vb[256], k[CLI_ESC_NAME];
    for (uint64_t i = 0; i < na; i++) {
        const afmt_attr_rec *b = find_attr(tb, nb, ta[i].key);
        cli_qesc(ta[i].key, k, sizeof k);
        if (!b) {
            report(c, "%s: attribute \"%s\" only in %s", what, k, c->ea);
            continue;
        }
        size_t bytes = (size_t)(ta[i].n * cli_dtype_size(ta[i].dtype));
        if (b->dtype == ta[i].dtype && b->n == ta[i].n &&
            (bytes == 0 || !memcmp(b->value, ta[i].value, bytes)))
            continue;
        attr_text(va, sizeof va, &ta[i]);
        attr_text(vb, sizeof vb, b);
        report(c, "%s: attribute \"%s\" differs: %s (%s) vs %s (%s)", what, k, va,
               cli_dtype_name(ta[i].dtype), vb, cli_dtype_name(b->dtype));
    }
    for (uint64_t i = 0; i < nb; i++)
        if (!find_attr(ta, na, tb[i].key))
            report(c, "%s: attribute \"%s\" only in %s", what, cli_qesc(tb[i].key, k, sizeof k),
                   c->eb);
}

/* The chunks of A's grid to read: those written in A and those that overlap a chunk
 * written in B (idx of A and of B sorted). *n is the count, or UINT64_MAX when there
 * would be more than max: then every chunk is read. */
static int chunks_to_compare(const afmt_array *xa, const uint64_t *ia, uint64_t na,
                             const afmt_array *xb, const uint64_t *ib, uint64_t nb, uint64_t max,
                             uint64_t **out, uint64_t *n) {
    uint64_t cap = na + nb + 1, k = 0;
    uint64_t *v = cap <= max + 1 ? malloc(sizeof *v * (size_t)cap) : NULL;
    *out = NULL;
    *n = UINT64_MAX;
    if (cap > max + 1) return 0;
    if (!v) return -1;
    memcpy(v, ia, sizeof *v * (size_t)na);
    k = na;
    int same_grid = xa->grid.ndim == xb->grid.ndim;
    for (int d = 0; same_grid && d < xa->grid.ndim; d++)
        same_grid = xa->grid.chunk[d] == xb->grid.chunk[d];
    for (uint64_t i = 0; i < nb; i++) {
        uint64_t cc[AFMT_MAX_NDIM], o[AFMT_MAX_NDIM], e[AFMT_MAX_NDIM];
        afmt_grid_iter it;
        if (same_grid) {
            it.index = ib[i];
        } else {
            afmt__grid_chunk_coord(&xb->grid, ib[i], cc);
            afmt__grid_chunk_box(&xb->grid, cc, o, e);
            afmt__grid_iter_init(&it, &xa->grid, o, e);
        }
        while (same_grid || afmt__grid_iter_next(&it)) {
            if (k == max) {
                free(v);
                return 0;
            }
            if (k == cap) {
                uint64_t nc = cap * 2 < max ? cap * 2 : max;
                uint64_t *p = realloc(v, sizeof *v * (size_t)nc);
                if (!p) {
                    free(v);
                    return -1;
                }
                v = p;
                cap = nc;
            }
            v[k++] = it.index;
            if (same_grid) break;
        }
    }
    cli_sort_unique(v, &k);
    *out = v;
    *n = k;
    return 0;
}

/* Collective: compares the values of one array present in both files with the same
 * dtype and shape. Only the chunks written in A or B are read (in runs of A's grid);
 * elsewhere both files read their fill values, compared once, so never-written parts
 * cost nothing whatever their size. */
static int diff_values(diff_ctx *c, const afmt_info *ia, const afmt_array *xa, const uint64_t *ca,
                       uint64_t na, const afmt_array *xb, const uint64_t *cb, uint64_t nb,
                       const tolerance *tl) {
    size_t es = cli_dtype_size(ia->dtype);
    uint64_t budget = cli_slab_budget() / 2 + 1, cap = budget / es ? budget / es : 1;
    uint64_t *sel = NULL, nsel = 0, nruns = 0, lo = 0, hi = 0;
    cli_run *runs = NULL;
    /* At most 2^24 chunk indices (128 MiB) to compare; more: every chunk is read. */
    int failed = chunks_to_compare(xa, ca, na, xb, cb, nb, (uint64_t)1 << 24, &sel, &nsel) != 0;
    if (!failed && nsel != UINT64_MAX)
        failed = cli_runs_build(&xa->grid, es, budget, sel, nsel, &runs, &nruns) != 0;
    uint64_t nwork = nsel == UINT64_MAX ? 1 : nruns; /* all: one box, the whole array */
    cli_slab_share(nwork, cli.rank, cli.size, &lo, &hi);
    if (nsel == UINT64_MAX) { /* the whole array, its slabs divided among the ranks */
        lo = 0;
        hi = failed ? 0 : 1;
    }
    uint8_t *x = NULL, *y = NULL;
    if (!failed && lo < hi) {
        x = malloc((size_t)(cap * es) + 1);
        y = malloc((size_t)(cap * es) + 1);
        failed = !x || !y;
    }
    char msg[1024] = "out of memory for a slab";
    diffacc da = {0, 0, 0, 0};
    uint64_t first = UINT64_MAX, st[AFMT_MAX_NDIM], cn[AFMT_MAX_NDIM], bs[AFMT_MAX_NDIM],
             bc[AFMT_MAX_NDIM];
    for (uint64_t r = lo; !failed && r < hi; r++) {
        cli_slabs s;
        uint64_t slo = 0, shi;
        if (nsel == UINT64_MAX) {
            cli_slabs_init(&s, ia, NULL, NULL, es, budget);
            cli_slab_share(s.n, cli.rank, cli.size, &slo, &shi);
        } else {
            cli_run_box(&xa->grid, &runs[r], bs, bc);
            cli_slabs_init(&s, ia, bs, bc, es, budget);
            shi = s.n;
        }
        for (uint64_t i = slo; !failed && i < shi; i++) {
            uint64_t n = cli_slab_at(&s, i, st, cn);
            afmt_file *bad = NULL;
            if (afmt_read(c->fa, ia->name, st, cn, x) != AFMT_OK)
                bad = c->fa;
            else if (afmt_read(c->fb, ia->name, st, cn, y) != AFMT_OK)
                bad = c->fb;
            if (bad) {
                snprintf(msg, sizeof msg, "%s: %s", bad == c->fa ? c->pa : c->pb, afmt_errmsg(bad));
                failed = 1;
                break;
            }
            if (!tl->tol && !memcmp(x, y, (size_t)(n * es))) continue;
            int seen = 0;
            for (uint64_t k = 0; k < n; k++) {
                if (compare_pair(x, y, ia->dtype, k, tl, &da)) continue;
                da.ndiff++;
                if (seen++) continue;
                /* The index in the whole array of the slab's first difference. */
                uint64_t cc[AFMT_MAX_NDIM], lin = 0;
                cli_unravel(ia->ndim, cn, k, cc);
                for (int d = 0; d < ia->ndim; d++) lin = lin * ia->shape[d] + st[d] + cc[d];
                if (lin < first) first = lin;
            }
        }
    }
    free(x);
    free(y);
    free(runs);
    /* Which file failed is known on the failing rank only: the message names it. */
    int frc = cli_agree_msg(NULL, failed, msg);
    if (frc != CLI_OK) {
        free(sel);
        return frc;
    }
    uint64_t counts[2] = {da.ndiff, da.nonfinite};
    double maxima[2] = {da.max_abs, da.max_rel};
    MPI_Allreduce(MPI_IN_PLACE, counts, 2, MPI_UINT64_T, MPI_SUM, cli.comm);
    MPI_Allreduce(MPI_IN_PLACE, maxima, 2, MPI_DOUBLE, MPI_MAX, cli.comm);
    MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_UINT64_T, MPI_MIN, cli.comm);
    da.ndiff = counts[0];
    da.nonfinite = counts[1];
    da.max_abs = maxima[0];
    da.max_rel = maxima[1];
    /* The chunks not read hold the fill value in both files: their elements compare as
     * the two fill values do, and if those differ, the first of them is the origin of
     * the first such chunk (chunk order is element order for chunk origins). */
    uint8_t fa[8], fb[8];
    cli_fill_native(xa->d.fill, ia->dtype, fa);
    cli_fill_native(xb->d.fill, ia->dtype, fb);
    diffacc facc = {0, 0, 0, 0};
    int fill_equal = compare_pair(fa, fb, ia->dtype, 0, tl, &facc);
    if (nsel != UINT64_MAX && (!fill_equal || facc.max_abs > 0 || facc.max_rel > 0)) {
        uint64_t covered = 0, gap = UINT64_MAX, cc[AFMT_MAX_NDIM], o[AFMT_MAX_NDIM];
        for (uint64_t i = 0; i < nsel; i++) {
            afmt__grid_chunk_coord(&xa->grid, sel[i], cc);
            covered += afmt__grid_chunk_box(&xa->grid, cc, NULL, NULL);
            if (gap == UINT64_MAX && sel[i] != i) gap = i;
        }
        if (gap == UINT64_MAX && nsel < afmt__grid_nchunks(&xa->grid)) gap = nsel;
        if (gap != UINT64_MAX) {
            if (facc.max_abs > da.max_abs) da.max_abs = facc.max_abs;
            if (facc.max_rel > da.max_rel) da.max_rel = facc.max_rel;
        }
        if (gap != UINT64_MAX && !fill_equal) {
            da.ndiff += cli_nelems(ia) - covered;
            if (facc.nonfinite) da.nonfinite += cli_nelems(ia) - covered;
            afmt__grid_chunk_coord(&xa->grid, gap, cc);
            afmt__grid_chunk_box(&xa->grid, cc, o, NULL);
            uint64_t lin = 0;
            for (int d = 0; d < ia->ndim; d++) lin = lin * ia->shape[d] + o[d];
            if (lin < first) first = lin;
        }
    }
    free(sel);
    char en[CLI_ESC_NAME], ma[64], mr[64];
    cli_qesc(ia->name, en, sizeof en);
    cli_num_sig(da.max_abs, 7, ma, sizeof ma);
    cli_num_sig(da.max_rel, 7, mr, sizeof mr);
    if (da.ndiff == 0) {
        /* Equal, exactly or within the tolerances: how close, when not exactly. */
        if (da.max_abs > 0 || da.max_rel > 0)
            note(c, "array \"%s\": equal within the tolerances; max abs diff %s, max rel diff %s",
                 en, ma, mr);
        return CLI_OK;
    }
    uint64_t idx[AFMT_MAX_NDIM], one[AFMT_MAX_NDIM];
    cli_unravel(ia->ndim, ia->shape, first, idx);
    for (int d = 0; d < ia->ndim; d++) one[d] = 1;
    uint8_t va[8] = {0}, vb[8] = {0};
    char sa[64] = "?", sb[64] = "?", where[AFMT_MAX_NDIM * 21 + 3];
    if (cli.rank == 0 && afmt_read(c->fa, ia->name, idx, one, va) == AFMT_OK &&
        afmt_read(c->fb, ia->name, idx, one, vb) == AFMT_OK) {
        cli_format_value(sa, sizeof sa, va, ia->dtype, 0);
        cli_format_value(sb, sizeof sb, vb, ia->dtype, 0);
    }
    char inner[AFMT_MAX_NDIM * 21 + 1], nf[64] = "";
    snprintf(where, sizeof where, "[%s]", cli_u64_list(idx, ia->ndim, ",", inner, sizeof inner));
    if (da.nonfinite)
        snprintf(nf, sizeof nf, "; %llu of them with NaN or infinity", (ull)da.nonfinite);
    report(c,
           "array \"%s\": %llu of %llu values differ; first at %s: %s vs %s; max abs diff %s, "
           "max rel diff %s%s",
           en, (ull)da.ndiff, (ull)cli_nelems(ia), where, sa, sb, ma, mr, nf);
    return CLI_OK;
}

static int same_shape(const afmt_info *a, const afmt_info *b) {
    if (a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return 1;
}

int cmd_diff(int argc, char **argv) {
    static const cli_optdef defs[] = {
        {"rtol", 0, 1}, {"atol", 0, 1}, {"quiet", 'q', 0}, {NULL, 0, 0}};
    cli_args a;
    int done, rc = cli_parse(argc, argv, defs, &a, &done);
    if (done) return rc;
    if (a.npos != 2) return cli_usage_error("diff", "expected two files A and B");
    tolerance tl = {0, 0, 0};
    const char *rs = a.val[cli_opt(defs, "rtol")], *as = a.val[cli_opt(defs, "atol")];
    if (rs && (cli_parse_double(rs, &tl.rtol) != 0 || !(tl.rtol >= 0)))
        return cli_usage_error("diff", "--rtol needs a number >= 0, not '%s'", rs);
    if (as && (cli_parse_double(as, &tl.atol) != 0 || !(tl.atol >= 0)))
        return cli_usage_error("diff", "--atol needs a number >= 0, not '%s'", as);
    tl.tol = tl.rtol > 0 || tl.atol > 0;
    diff_ctx c;
    memset(&c, 0, sizeof c);
    c.pa = a.pos[0];
    c.pb = a.pos[1];
    c.quiet = a.val[cli_opt(defs, "quiet")] != NULL;
    cli_esc(c.pa, c.ea, sizeof c.ea);
    cli_esc(c.pb, c.eb, sizeof c.eb);
    if ((rc = cli_open(c.pa, AFMT_RDONLY, 0, &c.fa)) != CLI_OK) return rc;
    if ((rc = cli_open(c.pb, AFMT_RDONLY, 0, &c.fb)) != CLI_OK) {
        cli_close(c.pa, c.fa);
        return rc;
    }
    int na = 0, nb = 0;
    afmt_count(c.fa, &na);
    afmt_count(c.fb, &nb);
    cli_chunks cha, chb;
    memset(&chb, 0, sizeof chb);
    if (cli_chunks_build(&c.fa->idx, &cha) != 0 || cli_chunks_build(&c.fb->idx, &chb) != 0) {
        cli_chunks_free(&cha);
        cli_close(c.pa, c.fa);
        cli_close(c.pb, c.fb);
        return cli_error(NULL, "out of memory");
    }
    for (int i = 0; rc == CLI_OK && i < na; i++) {
        afmt_info ia, ib;
        afmt_info_at(c.fa, i, &ia);
        char en[CLI_ESC_NAME];
        cli_qesc(ia.name, en, sizeof en);
        if (afmt_inquire(c.fb, ia.name, &ib) != AFMT_OK) {
            report(&c, "array \"%s\" only in %s", en, c.ea);
            continue;
        }
        char sa[AFMT_MAX_NDIM * 21 + 1], sb[AFMT_MAX_NDIM * 21 + 1];
        if (ia.dtype != ib.dtype) {
            report(&c, "array \"%s\": dtype %s vs %s", en, cli_dtype_name(ia.dtype),
                   cli_dtype_name(ib.dtype));
            continue;
        }
        if (!same_shape(&ia, &ib)) {
            report(&c, "array \"%s\": shape [%s] vs [%s]", en,
                   cli_u64_list(ia.shape, ia.ndim, ",", sa, sizeof sa),
                   cli_u64_list(ib.shape, ib.ndim, ",", sb, sizeof sb));
            continue;
        }
        const afmt_array *xa = afmt__index_find(&c.fa->idx, ia.name);
        const afmt_array *xb = afmt__index_find(&c.fb->idx, ia.name);
        if (memcmp(xa->d.fill, xb->d.fill, 8) != 0) {
            uint8_t fa[8], fb[8];
            cli_fill_native(xa->d.fill, ia.dtype, fa);
            cli_fill_native(xb->d.fill, ia.dtype, fb);
            cli_format_value(sa, sizeof sa, fa, ia.dtype, 0);
            cli_format_value(sb, sizeof sb, fb, ia.dtype, 0);
            report(&c, "array \"%s\": fill value %s vs %s", en, sa, sb);
        }
        char what[CLI_ESC_NAME + 16];
        snprintf(what, sizeof what, "array \"%s\"", en);
        diff_attrs(&c, what, xa->attrs, xa->n_attrs, xb->attrs, xb->n_attrs);
        uint64_t alo, ahi, blo, bhi;
        cli_chunks_of(&cha, xa->d.id, &alo, &ahi);
        cli_chunks_of(&chb, xb->d.id, &blo, &bhi);
        rc = diff_values(&c, &ia, xa, cha.idx + alo, ahi - alo, xb, chb.idx + blo, bhi - blo, &tl);
    }
    for (int i = 0; rc == CLI_OK && i < nb; i++) {
        afmt_info ib, ia;
        afmt_info_at(c.fb, i, &ib);
        char en[CLI_ESC_NAME];
        if (afmt_inquire(c.fa, ib.name, &ia) != AFMT_OK)
            report(&c, "array \"%s\" only in %s", cli_qesc(ib.name, en, sizeof en), c.eb);
    }
    if (rc == CLI_OK)
        diff_attrs(&c, "file", c.fa->idx.file_attrs, c.fa->idx.n_file_attrs, c.fb->idx.file_attrs,
                   c.fb->idx.n_file_attrs);
    cli_chunks_free(&cha);
    cli_chunks_free(&chb);
    int ca = cli_close(c.pa, c.fa), cb = cli_close(c.pb, c.fb);
    if (rc != CLI_OK) return rc;
    if (ca != CLI_OK || cb != CLI_OK) return CLI_ERROR;
    return c.ndiff ? CLI_DIFF : CLI_OK;
}
