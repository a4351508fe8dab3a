/* golden_gen.c - made the golden files of format v1 and their manifest, ONCE, and then
 * those of format v2. Not run by CI, and never to be run again for a format whose files
 * are committed (docs/reliability.md, "Golden files"): the committed files are the format
 * promise, and regenerating them would hide the very change they exist to catch. It stays
 * buildable as the record of how they were made.
 *
 *   mpiexec -n 3 golden_gen OUTDIR          format v1 (afmt 0.1.0): the .afmt files and
 *                                           MANIFEST into OUTDIR
 *   mpiexec -n 3 golden_gen --v2 OUTDIR V1  format v2: the v2-*.afmt files and
 *                                           OUTDIR/MANIFEST.v2, the entries to append to
 *                                           MANIFEST; V1 is the directory of the committed
 *                                           v1 files (v2-mixed.afmt starts as a copy of
 *                                           V1/shared.afmt)
 *
 * The manifest is rendered from the generator's own model of what it wrote (golden.h),
 * never by reading the files back; golden_check then proves the files read as modelled.
 * Only the layout lines of the v2 entries (format versions, index segments, BASE) are
 * read from the bytes written, to pin the structures each file exercises.
 * Three ranks, so that chunks are written by several ranks (v2: several index segments
 * per layer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "golden.h"
#include "model.h" /* val, tconst: the test values */

#define NO_FILL INT64_MIN

typedef struct {
    afmt_info in;
    uint8_t fill[8];
    uint8_t *data;
    int live;
} garr;

typedef struct {
    char array[256]; /* "" = a file attribute */
    char key[64];
    afmt_dtype t;
    uint64_t n;
    uint8_t v[512];
    int gone; /* deleted with its array: must read as absent */
} gattr;

typedef struct {
    const char *name;
    char path[1200];
    afmt_file *f;
    garr a[24];
    int na;
    gattr at[64];
    int nat;
    char *sections[16];
    uint64_t ids[16];
    int nl;
} gfile;

static int g_rank, g_size;
static const char *g_dir;
static FILE *g_man;
static int g_v2; /* --v2: the entries get layout lines */

static void die(const char *what, int rc, int line) {
    fprintf(stderr, "golden_gen: line %d: %s -> %d (%s): %s\n", line, what, rc, afmt_strerror(rc),
            afmt_errmsg(NULL));
    MPI_Abort(MPI_COMM_WORLD, 1);
}
#define CK(g, call)                                                                                \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != AFMT_OK) {                                                                      \
            fprintf(stderr, "golden_gen: %s\n", afmt_errmsg((g)->f));                              \
            die(#call, rc_, __LINE__);                                                             \
        }                                                                                          \
    } while (0)

static garr *find(gfile *g, const char *name) {
    for (int i = 0; i < g->na; i++)
        if (g->a[i].live && !strcmp(g->a[i].in.name, name)) return &g->a[i];
    die(name, AFMT_ENOTFOUND, __LINE__);
    return NULL;
}

static void gopen(gfile *g, const char *name, const afmt_opts *o, int create) {
    if (create) {
        memset(g, 0, sizeof *g);
        g->name = name;
        snprintf(g->path, sizeof g->path, "%s/%s", g_dir, name);
        CK(g, afmt_create(MPI_COMM_WORLD, g->path, AFMT_TRUNC, o, &g->f));
    } else {
        CK(g, afmt_open(MPI_COMM_WORLD, g->path, AFMT_RDWR, o, &g->f));
    }
}

/* Defines an array (chunk NULL: one chunk; dims NULL: dim0..; fill NO_FILL: zero). */
static void gdefine(gfile *g, const char *name, afmt_dtype t, int ndim, const uint64_t *shape,
                    const uint64_t *chunk, const char *const *dims, int64_t fill) {
    garr *a = &g->a[g->na++];
    memset(a, 0, sizeof *a);
    snprintf(a->in.name, sizeof a->in.name, "%s", name);
    a->in.dtype = t;
    a->in.ndim = ndim;
    for (int d = 0; d < ndim; d++) {
        a->in.shape[d] = shape[d];
        a->in.chunk[d] = chunk ? chunk[d] : shape[d];
        snprintf(a->in.dims[d], sizeof a->in.dims[d], "%s", dims ? dims[d] : "");
        if (!dims) snprintf(a->in.dims[d], sizeof a->in.dims[d], "dim%d", d);
    }
    if (fill != NO_FILL) tconst(t, fill, a->fill);
    size_t es = golden_esize(t);
    uint64_t n = golden_elems(ndim, shape);
    a->data = malloc((size_t)n * es);
    if (!a->data) die("malloc", AFMT_ENOMEM, __LINE__);
    for (uint64_t i = 0; i < n; i++) memcpy(a->data + i * es, a->fill, es);
    a->live = 1;
    CK(g, afmt_define(g->f, name, t, ndim, shape, chunk, dims,
                      fill != NO_FILL ? (const void *)a->fill : NULL));
}

/* Rank writer stages the box [start, start+count) of name with val(seed); every rank
 * records it in its model. */
static void gwrite(gfile *g, const char *name, const uint64_t *start, const uint64_t *count,
                   uint64_t seed, int writer) {
    garr *a = find(g, name);
    int nd = a->in.ndim;
    size_t es = golden_esize(a->in.dtype);
    uint64_t n = golden_elems(nd, count), idx[AFMT_MAX_NDIM] = {0};
    uint8_t *buf = malloc((size_t)n * es + 1);
    if (!buf) die("malloc", AFMT_ENOMEM, __LINE__);
    for (uint64_t k = 0; k < n; k++) {
        uint64_t gi = 0;
        for (int d = 0; d < nd; d++) gi = gi * a->in.shape[d] + start[d] + idx[d];
        val(a->in.dtype, buf + k * es, gi, seed);
        memcpy(a->data + gi * es, buf + k * es, es);
        for (int d = nd - 1; d >= 0 && ++idx[d] == count[d]; d--) idx[d] = 0;
    }
    if (writer == g_rank) CK(g, afmt_write(g->f, name, nd ? start : NULL, nd ? count : NULL, buf));
    free(buf);
}

/* The whole array, by one rank. */
static void gwrite_all(gfile *g, const char *name, uint64_t seed) {
    garr *a = find(g, name);
    uint64_t st[AFMT_MAX_NDIM] = {0};
    gwrite(g, name, st, a->in.shape, seed, 0);
}

static void gattr_set(gfile *g, const char *array, const char *key, afmt_dtype t, uint64_t n,
                      const void *v) {
    gattr *at = NULL;
    for (int i = 0; i < g->nat && !at; i++)
        if (!strcmp(g->at[i].array, array ? array : "") && !strcmp(g->at[i].key, key))
            at = &g->at[i];
    if (!at) at = &g->at[g->nat++];
    at->gone = 0;
    snprintf(at->array, sizeof at->array, "%s", array ? array : "");
    snprintf(at->key, sizeof at->key, "%s", key);
    at->t = t;
    at->n = n;
    memcpy(at->v, v, (size_t)n * golden_esize(t));
    CK(g, afmt_set_attr(g->f, array, key, t, n, v));
}

static void gdelete(gfile *g, const char *name) {
    garr *a = find(g, name);
    a->live = 0;
    for (int i = 0; i < g->nat; i++)
        if (!strcmp(g->at[i].array, name)) g->at[i].gone = 1;
    CK(g, afmt_delete(g->f, name));
}

static int cmp_arr(const void *x, const void *y) {
    const garr *a = x, *b = y;
    if (a->live != b->live) return b->live - a->live;
    return strcmp(a->in.name, b->in.name);
}

static int cmp_attr(const void *x, const void *y) {
    const gattr *a = x, *b = y;
    int c = strcmp(a->array, b->array);
    return c ? c : strcmp(a->key, b->key);
}

/* The model's state as a manifest section body. */
static char *render(gfile *g) {
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out) die("open_memstream", AFMT_ENOMEM, __LINE__);
    fprintf(out, "nranks %d\n", g_size);
    garr sorted[24];
    memcpy(sorted, g->a, sizeof sorted);
    qsort(sorted, (size_t)g->na, sizeof *sorted, cmp_arr);
    for (int i = 0; i < g->na && sorted[i].live; i++)
        golden_put_array(out, &sorted[i].in, sorted[i].data);
    qsort(g->at, (size_t)g->nat, sizeof *g->at, cmp_attr);
    for (int i = 0; i < g->nat; i++)
        if (g->at[i].gone)
            fprintf(out, "noattr %s %s\n", g->at[i].array, g->at[i].key);
        else
            golden_put_attr(out, g->at[i].array[0] ? g->at[i].array : NULL, g->at[i].key,
                            g->at[i].t, g->at[i].n, g->at[i].v);
    fclose(out);
    return buf;
}

static void record_layers(gfile *g) {
    uint64_t nl = 0;
    CK(g, afmt_layers(g->f, &nl));
    CK(g, afmt_layer_id(g->f, nl - 1, &g->ids[g->nl], NULL));
    g->sections[g->nl++] = render(g);
}

static void gcommit(gfile *g) {
    CK(g, afmt_commit(g->f));
    record_layers(g);
}

/* Compaction leaves one layer: the older sections go. */
static void gcompact(gfile *g) {
    CK(g, afmt_compact(g->f));
    for (int i = 0; i < g->nl; i++) free(g->sections[i]);
    g->nl = 0;
    record_layers(g);
}

/* The layout lines of the file at path (golden.h), from its bytes. */
static void put_layout(const char *path) {
    FILE *fp = fopen(path, "rb");
    struct stat sb;
    uint8_t *img = fp && stat(path, &sb) == 0 ? malloc((size_t)sb.st_size + 1) : NULL;
    size_t n = img ? fread(img, 1, (size_t)sb.st_size, fp) : 0;
    if (fp) fclose(fp);
    if (!img || golden_put_layout(g_man, img, n) != 0) die(path, AFMT_ECORRUPT, __LINE__);
    free(img);
}

static void gclose(gfile *g, const char *about) {
    CK(g, afmt_close(g->f));
    if (g_rank == 0) {
        struct stat sb;
        stat(g->path, &sb);
        fprintf(g_man, "\n# %s (%lld bytes)\n", about, (long long)sb.st_size);
        fprintf(g_man, "file %s layers %d ids", g->name, g->nl);
        for (int i = 0; i < g->nl; i++) fprintf(g_man, " %llu", (unsigned long long)g->ids[i]);
        fputc('\n', g_man);
        if (g_v2) put_layout(g->path);
        fprintf(g_man, "section newest\n%send\n", g->sections[g->nl - 1]);
        for (int i = 0; g->nl > 1 && i < g->nl; i++)
            fprintf(g_man, "section layer %llu\n%send\n", (unsigned long long)g->ids[i],
                    g->sections[i]);
        printf("golden_gen: %s: %lld bytes, %d layer(s)\n", g->path, (long long)sb.st_size, g->nl);
    }
    for (int i = 0; i < g->nl; i++) free(g->sections[i]);
    for (int i = 0; i < g->na; i++) free(g->a[i].data);
}

static afmt_opts *opts(afmt_codec c, int level, int shuffle) {
    afmt_opts *o = NULL;
    if (afmt_opts_create(&o) != AFMT_OK || afmt_opts_set_codec(o, c, level) != AFMT_OK ||
        afmt_opts_set_shuffle(o, shuffle) != AFMT_OK)
        die("options", AFMT_EINVAL, __LINE__);
    if (g_v2) { /* one index segment per rank: three ranks on one host would make one */
        MPI_Info info;
        MPI_Info_create(&info);
        MPI_Info_set(info, "afmt_index_aggregation", "rank");
        if (afmt_opts_set_mpi_info(o, info) != AFMT_OK) die("options", AFMT_EINVAL, __LINE__);
        MPI_Info_free(&info);
    }
    return o;
}

/* The v2 files' default options (LZ4, shuffle) with a segment per rank. */
static afmt_opts *v2_opts(void) {
    static afmt_opts *o;
    if (!o) o = opts(AFMT_CODEC_LZ4, 0, 1);
    return o;
}

/* ---- the files ------------------------------------------------------------------------ */

/* Every dtype: 2-D [5][7] in [2][3] chunks (edge chunks in both dimensions), the last row
 * and column left at a fill value; a scalar. LZ4 with shuffle (the defaults). */
static void make_dtypes(void) {
    gfile g;
    gopen(&g, "dtypes.afmt", NULL, 1);
    const uint64_t s[2] = {5, 7}, c[2] = {2, 3}, st[2] = {0, 0}, ct[2] = {4, 6};
    for (int t = 0; t < GOLDEN_NDTYPES; t++) {
        char name[32];
        snprintf(name, sizeof name, "t_%s", golden_dtypes[t]);
        for (char *p = name; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        gdefine(&g, name, (afmt_dtype)t, 2, s, c, NULL, t == AFMT_BOOL ? 1 : 3);
        gwrite(&g, name, st, ct, 100 + (uint64_t)t, 0);
    }
    gdefine(&g, "scalar", AFMT_FLOAT64, 0, NULL, NULL, NULL, NO_FILL);
    gwrite(&g, "scalar", NULL, NULL, 7, 0);
    gcommit(&g);
    gclose(&g, "every dtype, edge chunks, fill values, a scalar (LZ4 + shuffle)");
}

/* One codec: layer 1 with shuffle (a float and an int array, compressible values), layer 2
 * without it (reopened with shuffle off: two more arrays). */
static void make_codec(const char *name, afmt_codec codec, int level, const char *about) {
    gfile g;
    afmt_opts *o = opts(codec, level, 1);
    gopen(&g, name, o, 1);
    const uint64_t s[2] = {12, 10}, c[2] = {8, 8}, s1[1] = {60}, c1[1] = {32};
    gdefine(&g, "shuffled", AFMT_FLOAT64, 2, s, c, NULL, NO_FILL);
    gwrite_all(&g, "shuffled", SMOOTH | 1);
    gdefine(&g, "shuffled_ints", AFMT_INT32, 1, s1, c1, NULL, NO_FILL);
    gwrite_all(&g, "shuffled_ints", SMOOTH | 2);
    gcommit(&g);
    CK(&g, afmt_close(g.f));
    afmt_opts_free(o);
    o = opts(codec, level, 0);
    gopen(&g, name, o, 0);
    gdefine(&g, "plain", AFMT_FLOAT64, 2, s, c, NULL, NO_FILL);
    gwrite_all(&g, "plain", SMOOTH | 3);
    gdefine(&g, "plain_ints", AFMT_INT16, 1, s1, c1, NULL, NO_FILL);
    gwrite_all(&g, "plain_ints", SMOOTH | 4);
    gcommit(&g);
    gclose(&g, about);
    afmt_opts_free(o);
}

/* Four layers: overwrites, a delete, a redefinition of the deleted name, attributes that
 * change; every layer's state is a section. */
static void make_layers(void) {
    gfile g;
    gopen(&g, "layers.afmt", NULL, 1);
    const uint64_t sa[2] = {6, 10}, ca[2] = {4, 4}, sb[1] = {12}, cb[1] = {5};
    int64_t step = 1;
    gdefine(&g, "a", AFMT_INT32, 2, sa, ca, NULL, -1);
    const uint64_t st[2] = {0, 0}, ct[2] = {4, 10};
    gwrite(&g, "a", st, ct, 1, 0);
    gdefine(&g, "b", AFMT_UINT16, 1, sb, cb, NULL, NO_FILL);
    gwrite_all(&g, "b", 11);
    gattr_set(&g, NULL, "step", AFMT_INT64, 1, &step);
    gattr_set(&g, "a", "units", AFMT_UINT8, 1, "m");
    gattr_set(&g, "b", "note", AFMT_UINT8, 5, "old b");
    gcommit(&g);
    const uint64_t st2[2] = {2, 3}, ct2[2] = {4, 6};
    gwrite(&g, "a", st2, ct2, 2, 0);
    step = 2;
    gattr_set(&g, NULL, "step", AFMT_INT64, 1, &step);
    gcommit(&g);
    gdelete(&g, "b");
    const uint64_t sc[3] = {3, 3, 3}, cc[3] = {2, 2, 2};
    const double scale[2] = {0.5, 2.0};
    gdefine(&g, "c", AFMT_FLOAT32, 3, sc, cc, NULL, NO_FILL);
    gwrite_all(&g, "c", 3);
    gattr_set(&g, "c", "scale", AFMT_FLOAT64, 2, scale);
    step = 3;
    gattr_set(&g, NULL, "step", AFMT_INT64, 1, &step);
    gcommit(&g);
    const uint64_t sb4[1] = {4};
    gdefine(&g, "b", AFMT_INT8, 1, sb4, NULL, NULL, NO_FILL);
    gwrite_all(&g, "b", 4);
    gattr_set(&g, "a", "units", AFMT_UINT8, 2, "km");
    step = 4;
    gattr_set(&g, NULL, "step", AFMT_INT64, 1, &step);
    gcommit(&g);
    gclose(&g, "four layers: overwrite, delete, redefine a deleted name, changed attributes");
}

/* Attributes of every dtype, on the file, an array and a scalar; one changed in layer 2. */
static void make_attrs(void) {
    gfile g;
    gopen(&g, "attrs.afmt", NULL, 1);
    const uint64_t s[1] = {4};
    gdefine(&g, "x", AFMT_INT32, 1, s, NULL, NULL, NO_FILL);
    gwrite_all(&g, "x", 5);
    gdefine(&g, "s", AFMT_UINT64, 0, NULL, NULL, NULL, 9);
    for (int t = 0; t < GOLDEN_NDTYPES; t++) {
        uint8_t v[3 * 8];
        for (uint64_t i = 0; i < 3; i++)
            val((afmt_dtype)t, v + i * golden_esize((afmt_dtype)t), i, 200 + (uint64_t)t);
        char key[32];
        snprintf(key, sizeof key, "f_%s", golden_dtypes[t]);
        gattr_set(&g, NULL, key, (afmt_dtype)t, 3, v);
        snprintf(key, sizeof key, "x_%s", golden_dtypes[t]);
        gattr_set(&g, "x", key, (afmt_dtype)t, 1 + (uint64_t)t % 3, v);
    }
    gattr_set(&g, NULL, "title", AFMT_UINT8, 16, "golden \"attrs\"\t!");
    const int16_t one = -5;
    gattr_set(&g, "s", "on_scalar", AFMT_INT16, 1, &one);
    gcommit(&g);
    const double changed[4] = {-1.5, 0.0, 1e300, 2.5e-300};
    gattr_set(&g, NULL, "f_FLOAT64", AFMT_FLOAT64, 4, changed);
    gattr_set(&g, "x", "x_INT8", AFMT_UINT8, 3, "new");
    gcommit(&g);
    gclose(&g, "attributes of every dtype on the file, an array, a scalar; layer 2 changes two");
}

/* Chunks shared by ranks: rank r writes rows [3r, 3r+3) of a [9][10] array in [4][4]
 * chunks and the elements [7r, 7r+7) of a 1-D array in chunks of 8. Needs 3 ranks. */
static void shared_layer(gfile *g) {
    const uint64_t s[2] = {9, 10}, c[2] = {4, 4}, s1[1] = {21}, c1[1] = {8};
    gdefine(g, "field", AFMT_FLOAT64, 2, s, c, NULL, NO_FILL);
    gdefine(g, "part", AFMT_INT64, 1, s1, c1, NULL, NO_FILL);
    for (int r = 0; r < 3; r++) {
        const uint64_t st[2] = {3 * (uint64_t)r, 0}, ct[2] = {3, 10};
        gwrite(g, "field", st, ct, 20, r);
        const uint64_t st1[1] = {7 * (uint64_t)r}, ct1[1] = {7};
        gwrite(g, "part", st1, ct1, 21, r);
    }
    gcommit(g);
}

static void make_shared(void) {
    gfile g;
    gopen(&g, "shared.afmt", NULL, 1);
    shared_layer(&g);
    gclose(&g, "chunks written by three ranks in one commit");
}

/* Three layers (overwrites, a delete), then afmt_compact: one layer. */
static void make_compacted(void) {
    gfile g;
    gopen(&g, "compacted.afmt", NULL, 1);
    const uint64_t s[2] = {7, 9}, c[2] = {3, 4}, s1[1] = {10};
    gdefine(&g, "kept", AFMT_UINT32, 2, s, c, NULL, 77);
    gdefine(&g, "gone", AFMT_INT16, 1, s1, NULL, NULL, NO_FILL);
    const uint64_t st[2] = {0, 0}, ct[2] = {7, 5};
    gwrite(&g, "kept", st, ct, 30, 0);
    gwrite_all(&g, "gone", 31);
    gcommit(&g);
    const uint64_t st2[2] = {3, 2}, ct2[2] = {4, 7};
    gwrite(&g, "kept", st2, ct2, 32, 0);
    gcommit(&g);
    gdelete(&g, "gone");
    const int32_t v = 3;
    gattr_set(&g, "kept", "after", AFMT_INT32, 1, &v);
    gcommit(&g);
    gcompact(&g);
    gclose(&g, "three layers compacted into one");
}

/* Edge cases of the grid: 1-D, 3-D and 5-D arrays whose chunks do not divide the shape,
 * chunk == shape, chunks of one element, dimension names, never-written arrays and a
 * never-written scalar (fill values), a written scalar. zstd without shuffle. */
static void make_edges(void) {
    gfile g;
    afmt_opts *o = opts(AFMT_CODEC_ZSTD, 0, 0);
    gopen(&g, "edges.afmt", o, 1);
    const uint64_t s1[1] = {13}, c1[1] = {5};
    gdefine(&g, "line", AFMT_UINT32, 1, s1, c1, NULL, NO_FILL);
    gwrite_all(&g, "line", 40);
    const uint64_t s3[3] = {5, 6, 7}, c3[3] = {2, 4, 3};
    const char *const dims[3] = {"z", "y", "x"};
    gdefine(&g, "cube", AFMT_INT16, 3, s3, c3, dims, 7);
    const uint64_t st3[3] = {1, 2, 3}, ct3[3] = {4, 3, 4};
    gwrite(&g, "cube", st3, ct3, 41, 0);
    const uint64_t sw[2] = {3, 4};
    gdefine(&g, "whole", AFMT_FLOAT32, 2, sw, NULL, NULL, NO_FILL);
    gwrite_all(&g, "whole", 42);
    const uint64_t so[2] = {3, 3}, co[2] = {1, 1};
    gdefine(&g, "ones", AFMT_UINT8, 2, so, co, NULL, NO_FILL);
    gwrite_all(&g, "ones", 43);
    const uint64_t s5[5] = {2, 1, 3, 1, 2}, c5[5] = {1, 1, 2, 1, 2};
    gdefine(&g, "five", AFMT_BOOL, 5, s5, c5, NULL, NO_FILL);
    gwrite_all(&g, "five", 44);
    gdefine(&g, "never", AFMT_FLOAT64, 1, s1, c1, NULL, -2);
    gdefine(&g, "s_written", AFMT_INT64, 0, NULL, NULL, NULL, NO_FILL);
    gwrite(&g, "s_written", NULL, NULL, 45, 0);
    gdefine(&g, "s_never", AFMT_INT32, 0, NULL, NULL, NULL, 42);
    gcommit(&g);
    gclose(&g, "grid edges: 1-D, 3-D, 5-D, chunk = shape, chunks of one, fill values, scalars");
    afmt_opts_free(o);
}

/* ---- format v2 ----------------------------------------------------------------------- */

/* Three ranks write interleaved chunks: rank r the chunk rows k of "field" with
 * k % 3 == r and the chunks c of "ids" with c % 3 == r, so that the key ranges of the
 * three index segments overlap; rows of "shared" split across chunk boundaries (each
 * partial chunk merged by one writer); a scalar by rank 2. Layer 2 (zstd, no shuffle):
 * rank 1 rewrites a box across chunks the three ranks wrote, rank 2 writes a new array,
 * rank 0 nothing (two segments); "ids" deleted. Layer 3: attributes only (no segment). */
static void make_v2_segments(void) {
    gfile g;
    gopen(&g, "v2-segments.afmt", v2_opts(), 1);
    const uint64_t sf[2] = {12, 10}, cf[2] = {2, 5}, si[1] = {40}, ci[1] = {4};
    const uint64_t ss[2] = {9, 10}, cs[2] = {4, 4};
    const char *const dims[2] = {"row", "col"};
    gdefine(&g, "field", AFMT_FLOAT64, 2, sf, cf, dims, NO_FILL);
    gdefine(&g, "ids", AFMT_INT32, 1, si, ci, NULL, -1);
    gdefine(&g, "shared", AFMT_UINT16, 2, ss, cs, NULL, 5);
    gdefine(&g, "t", AFMT_FLOAT64, 0, NULL, NULL, NULL, NO_FILL);
    for (uint64_t k = 0; k < 6; k++) {
        const uint64_t st[2] = {2 * k, 0}, ct[2] = {2, 10};
        gwrite(&g, "field", st, ct, 50, (int)(k % 3));
    }
    for (uint64_t c = 0; c < 9; c++) { /* chunk 9 stays at the fill value */
        const uint64_t st[1] = {4 * c}, ct[1] = {4};
        gwrite(&g, "ids", st, ct, 51, (int)(c % 3));
    }
    for (int r = 0; r < 3; r++) {
        const uint64_t st[2] = {3 * (uint64_t)r, 0}, ct[2] = {3, 8};
        gwrite(&g, "shared", st, ct, 52, r);
    }
    gwrite(&g, "t", NULL, NULL, 53, 2);
    gattr_set(&g, NULL, "title", AFMT_UINT8, 18, "golden v2 segments");
    gattr_set(&g, "field", "units", AFMT_UINT8, 2, "Pa");
    gcommit(&g);
    CK(&g, afmt_close(g.f));
    afmt_opts *o = opts(AFMT_CODEC_ZSTD, 0, 0);
    gopen(&g, "v2-segments.afmt", o, 0);
    const uint64_t st2[2] = {3, 2}, ct2[2] = {4, 6};
    gwrite(&g, "field", st2, ct2, 54, 1);
    gdelete(&g, "ids");
    const uint64_t sl[1] = {7}, cl[1] = {3}, z[1] = {0};
    gdefine(&g, "late", AFMT_INT8, 1, sl, cl, NULL, NO_FILL);
    gwrite(&g, "late", z, sl, 55, 2);
    int64_t step = 2;
    gattr_set(&g, NULL, "step", AFMT_INT64, 1, &step);
    gcommit(&g);
    step = 3;
    gattr_set(&g, NULL, "step", AFMT_INT64, 1, &step);
    gattr_set(&g, "late", "note", AFMT_UINT8, 4, "late");
    gcommit(&g);
    gclose(&g, "v2: three index segments whose key ranges interleave; a layer of two "
               "segments (one rank writes nothing), a delete; a layer of no segment");
    afmt_opts_free(o);
}

/* Copies file from to to (rank 0). */
static void copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[8192];
    size_t n;
    int ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
    if (in) fclose(in);
    if (out && fclose(out) != 0) ok = 0;
    if (!ok) die(from, AFMT_EIO, __LINE__);
}

/* The committed v1 file shared.afmt with a v2 layer on top (a chain of mixed versions):
 * the generator replays shared.afmt's layer into OUTDIR/v2-mixed.afmt for its model, then
 * puts the v1 file's bytes in its place and commits, on three ranks, a box across the v1
 * chunks (rank 0), a range of "part" (rank 2) and a new array (rank 1). */
static void make_v2_mixed(const char *v1dir) {
    gfile g;
    gopen(&g, "v2-mixed.afmt", v2_opts(), 1);
    shared_layer(&g);
    CK(&g, afmt_close(g.f));
    if (g_rank == 0) {
        char from[1200];
        snprintf(from, sizeof from, "%s/shared.afmt", v1dir);
        copy_file(from, g.path);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    gopen(&g, "v2-mixed.afmt", v2_opts(), 0);
    const uint64_t st[2] = {2, 3}, ct[2] = {3, 6}, sp[1] = {5}, cp[1] = {10};
    gwrite(&g, "field", st, ct, 60, 0);
    gwrite(&g, "part", sp, cp, 61, 2);
    const uint64_t sa[1] = {6}, ca[1] = {2}, z[1] = {0};
    gdefine(&g, "added", AFMT_INT64, 1, sa, ca, NULL, NO_FILL);
    gwrite(&g, "added", z, sa, 62, 1);
    gattr_set(&g, NULL, "note", AFMT_UINT8, 15, "v2 on top of v1");
    gcommit(&g);
    gclose(&g, "v2 mixed chain: the v1 golden shared.afmt with a v2 layer of three segments");
}

/* Two layers by three ranks (interleaved chunk rows, a delete), compacted on three ranks:
 * one BASE layer of format v2 whose blocks the ranks share (several segments); then a
 * layer on top of it. */
static void make_v2_compacted(void) {
    gfile g;
    gopen(&g, "v2-compacted.afmt", v2_opts(), 1);
    const uint64_t s[2] = {8, 12}, c[2] = {2, 3}, s1[1] = {30}, c1[1] = {5};
    gdefine(&g, "grid", AFMT_UINT32, 2, s, c, NULL, 9);
    gdefine(&g, "gone", AFMT_FLOAT32, 1, s1, c1, NULL, NO_FILL);
    for (uint64_t k = 0; k < 4; k++) {
        const uint64_t st[2] = {2 * k, 0}, ct[2] = {2, 12};
        gwrite(&g, "grid", st, ct, 70, (int)(k % 3));
    }
    for (int r = 0; r < 3; r++) {
        const uint64_t st[1] = {10 * (uint64_t)r}, ct[1] = {10};
        gwrite(&g, "gone", st, ct, 71, r);
    }
    gcommit(&g);
    const uint64_t st2[2] = {1, 4}, ct2[2] = {5, 6};
    gwrite(&g, "grid", st2, ct2, 72, 2);
    gdelete(&g, "gone");
    const int32_t v = 2;
    gattr_set(&g, "grid", "kept", AFMT_INT32, 1, &v);
    gcommit(&g);
    gcompact(&g);
    const uint64_t st3[2] = {6, 0}, ct3[2] = {2, 3};
    gwrite(&g, "grid", st3, ct3, 73, 1);
    gcommit(&g);
    gclose(&g, "v2 compacted on three ranks: a BASE layer of several segments, a layer on top");
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_v2 = argc == 4 && !strcmp(argv[1], "--v2");
    if ((argc != 2 && !g_v2) || g_size != 3) {
        if (g_rank == 0)
            fprintf(stderr, "usage: mpiexec -n 3 golden_gen OUTDIR\n"
                            "       mpiexec -n 3 golden_gen --v2 OUTDIR V1DIR\n");
        MPI_Finalize();
        return 2;
    }
    g_dir = argv[g_v2 ? 2 : 1];
    if (g_rank == 0) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", g_dir, g_v2 ? "MANIFEST.v2" : "MANIFEST");
        g_man = fopen(path, "w");
        if (!g_man) die(path, AFMT_EIO, __LINE__);
        if (g_v2)
            fprintf(g_man,
                    "\n# ---- format v2 -----------------------------------------------------\n"
                    "# Written once by golden_gen --v2 (afmt %s), appended to the entries of\n"
                    "# format v1 above, which stay as they are. The layout lines after each\n"
                    "# file line (golden.h) are read from the files' bytes: the structures\n"
                    "# of format v2 each file exercises. NEVER regenerate these either.\n",
                    afmt_version());
        else
            fprintf(g_man,
                    "# tests/golden/MANIFEST - what each golden file of format v1 holds "
                    "(golden.h has\n"
                    "# the line formats). Written once by golden_gen (afmt %s) from its model "
                    "of\n"
                    "# what it wrote; checked by the ctests golden.read.np*. NEVER regenerate "
                    "it nor\n"
                    "# the files for format v1: a change that breaks them breaks the format "
                    "promise\n"
                    "# (docs/reliability.md, \"Golden files\").\n",
                    afmt_version());
    }
    if (g_v2) {
        make_v2_segments();
        make_v2_mixed(argv[3]);
        make_v2_compacted();
    } else {
        make_dtypes();
        make_codec("codec-none.afmt", AFMT_CODEC_NONE, 0, "codec none, with and without shuffle");
        make_codec("codec-lz4.afmt", AFMT_CODEC_LZ4, 0, "codec LZ4, with and without shuffle");
        make_codec("codec-lz4hc.afmt", AFMT_CODEC_LZ4, 9,
                   "codec LZ4 HC (level 9), with and without shuffle");
        make_codec("codec-zstd.afmt", AFMT_CODEC_ZSTD, 0, "codec zstd, with and without shuffle");
        make_layers();
        make_attrs();
        make_shared();
        make_compacted();
        make_edges();
    }
    if (g_rank == 0) fclose(g_man);
    MPI_Finalize();
    return 0;
}
