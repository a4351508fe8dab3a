/* cmd_ls.c - afmt ls and afmt info: what the merged index of a file says about its
 * arrays, layers and blocks, and where the bytes of the file go. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/file.h"
#include "cli.h"
#include "codec/codec.h"
#include "common/util.h"

typedef unsigned long long ull;

/* ---- space accounting shared by ls and info ---------------------------------------- */

#define MAX_CODECS 8
/* Stored bytes apportioned to chunks are sums of fractions; they are kept in fixed point
 * (units of 1/STORED_ONE byte, each term rounded down exactly) so that the sums do not
 * depend on the order the index's hash map yields the chunks in (seeded per process). */
#define STORED_ONE 1024u
typedef struct {
    uint64_t raw, nchunks;
    uint64_t stored_fx; /* STORED_ONE units */
    uint32_t codecs[MAX_CODECS];
    int ncodecs;
} arr_acct;

typedef struct {
    uint64_t nlive;   /* live arrays */
    arr_acct *arr;    /* per live array (position in the live list) */
    uint64_t *bl_raw; /* per index block: raw bytes of live chunks in it */
    uint64_t live_fx; /* stored bytes apportioned to live chunks, STORED_ONE units */
    uint64_t live_chunks;
} acct;

/* Whole bytes of a fixed-point amount, rounded to nearest. */
static uint64_t fx_bytes(uint64_t fx) {
    return fx / STORED_ONE + (fx % STORED_ONE >= STORED_ONE / 2);
}

static void acct_free(acct *a) {
    free(a->arr);
    free(a->bl_raw);
    memset(a, 0, sizeof *a);
}

/* Live position of array id (a map built once). */
static int acct_build(const afmt_index *x, acct *a) {
    memset(a, 0, sizeof *a);
    a->nlive = afmt__index_live_count(x);
    a->arr = calloc((size_t)a->nlive + 1, sizeof *a->arr);
    a->bl_raw = calloc((size_t)x->n_blocks + 1, sizeof *a->bl_raw);
    afmt_hmap pos;
    afmt__hmap_init(&pos);
    int rc = a->arr && a->bl_raw ? AFMT_OK : AFMT_ENOMEM;
    for (uint64_t i = 0; rc == AFMT_OK && i < a->nlive; i++)
        rc = afmt__hmap_put(&pos, afmt__index_live_at(x, i)->d.id, 0, i);
    for (uint64_t i = 0; rc == AFMT_OK && i < x->chunks.cap; i++) {
        const afmt_hmap_slot *s = &x->chunks.slots[i];
        if (s->used != 1) continue;
        const uint64_t *p = afmt__hmap_get(&pos, s->k1, 0);
        if (!p) continue; /* a deleted array */
        const afmt_chunk_loc *l = &x->locs[s->val];
        const afmt_block_rec *b = &x->blocks[l->block].b;
        arr_acct *r = &a->arr[*p];
        __extension__ typedef unsigned __int128 u128;
        uint64_t part =
            b->raw_size ? (uint64_t)((u128)b->stored_size * l->size * STORED_ONE / b->raw_size) : 0;
        r->raw += l->size;
        r->stored_fx += part;
        r->nchunks++;
        a->live_fx += part;
        a->live_chunks++;
        a->bl_raw[l->block] += l->size;
        int have = 0;
        for (int c = 0; c < r->ncodecs; c++) have |= r->codecs[c] == b->codec;
        if (!have && r->ncodecs < MAX_CODECS) r->codecs[r->ncodecs++] = b->codec;
    }
    afmt__hmap_free(&pos);
    return rc;
}

static void codec_list(const arr_acct *r, char *buf, size_t n) {
    size_t at = 0;
    buf[0] = 0;
    if (r->ncodecs == 0) snprintf(buf, n, "-");
    for (int c = 0; c < r->ncodecs && at < n; c++) {
        int w = snprintf(buf + at, n - at, "%s%s", c ? "," : "", afmt__codec_name(r->codecs[c]));
        if (w < 0) break;
        at += (size_t)w;
    }
}

static void shape_str(const uint64_t *v, int nd, char *buf, size_t n) {
    buf[0] = '[';
    cli_u64_list(v, nd, ",", buf + 1, n - 2);
    size_t len = strlen(buf);
    buf[len] = ']';
    buf[len + 1] = 0;
}

static void dims_str(const afmt_array_rec *d, char *buf, size_t n) {
    size_t at = 0;
    buf[0] = 0;
    if (d->ndim == 0) snprintf(buf, n, "-");
    for (int i = 0; i < d->ndim && at < n; i++) {
        char e[CLI_ESC_SIZE(AFMT_MAX_DIMNAME)];
        int w = snprintf(buf + at, n - at, "%s%s", i ? "," : "", cli_esc(d->dims[i], e, sizeof e));
        if (w < 0) break;
        at += (size_t)w;
    }
}

static void fill_str(const afmt_array_rec *d, char *buf, size_t n) {
    uint8_t v[8];
    cli_fill_native(d->fill, d->dtype, v);
    cli_format_value(buf, n, v, d->dtype, 0);
}

/* The file's size as its storage sees it (a local file or a URL); 0 if unknown. */
static uint64_t file_size_of(afmt_file *f) {
    uint64_t n = 0;
    return f->st->ops->size(f->st, &n) == AFMT_OK ? n : 0;
}

/* The compression setting of a live array as text ("zfp accuracy 1e-4; lossy, |error|
 * <= 1e-4", "default, shuffle"): the setting, then for a lossy one its bound. c gets
 * the setting (NULL: not wanted); 0, or -1 if the record's parameters cannot be read
 * (then the text says so). */
static int compression_text(afmt_file *f, const afmt_array *arr, char *buf, size_t n,
                            afmt_array_codec *c) {
    afmt_array_codec tmp, *cc = c ? c : &tmp;
    if (afmt_inquire_codec(f, arr->d.name, cc) != AFMT_OK) {
        snprintf(buf, n, "unreadable (the record's codec parameters are not layout 1)");
        return -1;
    }
    char t[160], b[160];
    cli_codec_text(cc, 1, t, sizeof t);
    if (cli_codec_lossy(cc))
        snprintf(buf, n, "%s; lossy, %s", t, cli_codec_bound(cc, b, sizeof b));
    else
        snprintf(buf, n, "%s", t);
    return 0;
}

/* ---- ls --------------------------------------------------------------------------- */

static void json_attrs(FILE *o, const afmt_attr_rec *t, uint64_t n) {
    fputc('{', o);
    for (uint64_t i = 0; i < n; i++) {
        fputs(i ? ", " : "", o);
        cli_json_str(o, t[i].key, strlen(t[i].key));
        fputs(": ", o);
        cli_json_values(o, t[i].dtype, t[i].n, t[i].value);
    }
    fputc('}', o);
}

static void text_attrs(FILE *o, const char *indent, const afmt_attr_rec *t, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        char e[CLI_ESC_NAME];
        fprintf(o, "%s%s (%s) = ", indent, cli_esc(t[i].key, e, sizeof e),
                afmt__dtype_name(t[i].dtype));
        cli_text_values(o, t[i].dtype, t[i].n, t[i].value, 16);
        fputc('\n', o);
    }
}

static void json_u64s(FILE *o, const uint64_t *v, int n) {
    fputc('[', o);
    for (int i = 0; i < n; i++) fprintf(o, "%s%llu", i ? ", " : "", (ull)v[i]);
    fputc(']', o);
}

static void ls_json(FILE *o, const char *path, afmt_file *f, const acct *a) {
    const afmt_index *x = &f->idx;
    fputs("{\"file\": ", o);
    cli_json_str(o, path, strlen(path));
    fputs(", \"attributes\": ", o);
    json_attrs(o, x->file_attrs, x->n_file_attrs);
    fputs(", \"arrays\": [", o);
    for (uint64_t i = 0; i < a->nlive; i++) {
        const afmt_array *arr = afmt__index_live_at(x, i);
        const afmt_array_rec *d = &arr->d;
        const arr_acct *r = &a->arr[i];
        fputs(i ? ",\n  {" : "\n  {", o);
        fputs("\"name\": ", o);
        cli_json_str(o, d->name, strlen(d->name));
        fprintf(o, ", \"dtype\": \"%s\", \"shape\": ", afmt__dtype_name(d->dtype));
        json_u64s(o, d->shape, d->ndim);
        fputs(", \"chunk\": ", o);
        json_u64s(o, d->chunk, d->ndim);
        fputs(", \"dims\": [", o);
        for (int k = 0; k < d->ndim; k++) {
            fputs(k ? ", " : "", o);
            cli_json_str(o, d->dims[k], strlen(d->dims[k]));
        }
        fputs("], \"fill\": ", o);
        uint8_t fill_le[8];
        memcpy(fill_le, d->fill, 8);
        cli_json_values(o, d->dtype, 1, fill_le);
        fprintf(o,
                ", \"shuffle\": %s, \"chunks_written\": %llu, \"chunks_total\": %llu, "
                "\"stored_bytes\": %llu, \"raw_bytes\": %llu, \"ratio\": ",
                (d->flags & AFMT_ARRAY_SHUFFLE) ? "true" : "false", (ull)r->nchunks,
                (ull)afmt__grid_nchunks(&arr->grid), (ull)fx_bytes(r->stored_fx), (ull)r->raw);
        if (r->stored_fx > 0)
            fprintf(o, "%.4f", (double)r->raw * STORED_ONE / (double)r->stored_fx);
        else
            fputs("null", o);
        fputs(", \"codecs\": [", o);
        for (int c = 0; c < r->ncodecs; c++)
            fprintf(o, "%s\"%s\"", c ? ", " : "", afmt__codec_name(r->codecs[c]));
        fputs("], \"compression\": ", o);
        afmt_array_codec cc;
        if (afmt_inquire_codec(f, d->name, &cc) == AFMT_OK)
            cli_codec_json(o, &cc);
        else
            fputs("null", o);
        fputs(", \"attributes\": ", o);
        json_attrs(o, arr->attrs, arr->n_attrs);
        fputc('}', o);
    }
    fputs(a->nlive ? "\n]}\n" : "]}\n", o);
}

enum {
    COL_NAME,
    COL_DTYPE,
    COL_SHAPE,
    COL_CHUNK,
    COL_DIMS,
    COL_STORED,
    COL_RAW,
    COL_RATIO,
    COL_CODECS,
    NCOL
};

#define CELL 2100 /* room for 32 dims of 20 digits, 32 escaped dim names, an escaped name */

/* The cells of row i of the ls table. */
static void ls_row(const afmt_index *x, const acct *a, uint64_t i, char row[NCOL][CELL]) {
    const afmt_array_rec *d = &afmt__index_live_at(x, i)->d;
    const arr_acct *r = &a->arr[i];
    cli_esc(d->name, row[COL_NAME], CELL);
    snprintf(row[COL_DTYPE], CELL, "%s", afmt__dtype_name(d->dtype));
    shape_str(d->shape, d->ndim, row[COL_SHAPE], CELL);
    shape_str(d->chunk, d->ndim, row[COL_CHUNK], CELL);
    dims_str(d, row[COL_DIMS], CELL);
    snprintf(row[COL_STORED], CELL, "%llu", (ull)fx_bytes(r->stored_fx));
    snprintf(row[COL_RAW], CELL, "%llu", (ull)r->raw);
    if (r->stored_fx > 0)
        snprintf(row[COL_RATIO], CELL, "%.2f", (double)r->raw * STORED_ONE / (double)r->stored_fx);
    else
        snprintf(row[COL_RATIO], CELL, "-");
    codec_list(r, row[COL_CODECS], CELL);
}

static void ls_print_row(FILE *o, const size_t *w, char row[NCOL][CELL]) {
    for (int c = 0; c + 1 < NCOL; c++) {
        int right = c == COL_STORED || c == COL_RAW || c == COL_RATIO;
        fprintf(o, right ? "%*s  " : "%-*s  ", (int)w[c], row[c]);
    }
    fprintf(o, "%s\n", row[NCOL - 1]);
}

/* Two passes (widths, then lines), so memory does not grow with the number of arrays. */
static void ls_text(FILE *o, afmt_file *f, const acct *a, int lng) {
    const afmt_index *x = &f->idx;
    static const char *head[NCOL] = {"NAME",   "DTYPE", "SHAPE", "CHUNK", "DIMS",
                                     "STORED", "RAW",   "RATIO", "CODECS"};
    static char row[NCOL][CELL];
    size_t w[NCOL];
    for (int c = 0; c < NCOL; c++) w[c] = strlen(head[c]);
    for (uint64_t i = 0; i < a->nlive; i++) {
        ls_row(x, a, i, row);
        for (int c = 0; c < NCOL; c++)
            if (strlen(row[c]) > w[c]) w[c] = strlen(row[c]);
    }
    if (lng && x->n_file_attrs) {
        fprintf(o, "file attributes:\n");
        text_attrs(o, "  ", x->file_attrs, x->n_file_attrs);
    }
    for (int c = 0; c < NCOL; c++) snprintf(row[c], CELL, "%s", head[c]);
    ls_print_row(o, w, row);
    for (uint64_t i = 0; i < a->nlive; i++) {
        ls_row(x, a, i, row);
        ls_print_row(o, w, row);
        if (!lng) continue;
        const afmt_array *arr = afmt__index_live_at(x, i);
        char fb[64];
        fill_str(&arr->d, fb, sizeof fb);
        fprintf(o, "    fill: %s\n", fb);
        fprintf(o, "    chunks written: %llu of %llu\n", (ull)a->arr[i].nchunks,
                (ull)afmt__grid_nchunks(&arr->grid));
        if (arr->d.flags & AFMT_ARRAY_SHUFFLE) fprintf(o, "    shuffle: on\n");
        char ct[400];
        compression_text(f, arr, ct, sizeof ct, NULL);
        fprintf(o, "    compression: %s\n", ct);
        text_attrs(o, "    attribute ", arr->attrs, arr->n_attrs);
    }
}

int cmd_ls(int argc, char **argv) {
    static const cli_optdef defs[] = {{"long", 'l', 0}, {"json", 0, 0}, {NULL, 0, 0}};
    cli_args a;
    int done, rc = cli_parse(argc, argv, defs, &a, &done);
    if (done) return rc;
    if (a.npos != 1) return cli_usage_error("ls", "expected one FILE");
    const char *path = a.pos[0];
    afmt_file *f;
    if ((rc = cli_open(path, AFMT_RDONLY, 0, &f)) != CLI_OK) return rc;
    acct ac;
    if (acct_build(&f->idx, &ac) != AFMT_OK) {
        acct_free(&ac);
        cli_close(path, f);
        return cli_error(path, "out of memory");
    }
    if (cli.rank == 0) {
        if (a.val[cli_opt(defs, "json")])
            ls_json(stdout, path, f, &ac);
        else
            ls_text(stdout, f, &ac, a.val[cli_opt(defs, "long")] != NULL);
    }
    acct_free(&ac);
    return cli_close(path, f);
}

/* ---- info ------------------------------------------------------------------------- */

typedef struct {
    uint64_t total, superblock, metadata, live, dead, unreferenced, reclaimable, estimate;
} space;

static uint64_t attrs_bytes(const afmt_attr_rec *t, uint64_t n) {
    uint64_t b = 0;
    for (uint64_t i = 0; i < n; i++)
        b += 56 + strlen(t[i].key) + t[i].n * afmt__dtype_size(t[i].dtype);
    return b;
}

static void space_of(const afmt_file *f, const acct *a, uint64_t fsize, space *s) {
    const afmt_index *x = &f->idx;
    memset(s, 0, sizeof *s);
    s->total = fsize;
    s->superblock = AFMT_SUPER_REGION;
    uint64_t data = 0, live_blocks = 0;
    for (uint64_t i = 0; i < x->n_layers; i++) /* footers, trailers and (v2) segments */
        s->metadata += x->layers[i].footer_length + 32 + x->layers[i].seg_bytes;
    for (uint64_t b = 0; b < x->n_blocks; b++) {
        data += x->blocks[b].b.stored_size;
        live_blocks += a->bl_raw[b] > 0;
    }
    s->live = fx_bytes(a->live_fx);
    if (s->live > data) s->live = data;
    s->dead = data - s->live;
    uint64_t used = s->superblock + s->metadata + data;
    s->unreferenced = fsize > used ? fsize - used : 0;
    /* The compacted file: superblock, live data, one footer holding every live array and
     * attribute, and per writer an index segment of a record per live chunk and per block
     * that keeps live chunks (one writer's segment counted: 64 + 8 + 80 in the root). */
    uint64_t footer = 176 + 8 + 32 + 152 + 40 * a->live_chunks + 40 * live_blocks;
    footer += attrs_bytes(x->file_attrs, x->n_file_attrs);
    for (uint64_t i = 0; i < afmt__index_live_count(x); i++) {
        const afmt_array *arr = afmt__index_live_at(x, i);
        footer += 72 + 32 * (uint64_t)arr->d.ndim + strlen(arr->d.name);
        for (int d = 0; d < arr->d.ndim; d++) footer += strlen(arr->d.dims[d]);
        footer += attrs_bytes(arr->attrs, arr->n_attrs);
    }
    s->estimate = s->superblock + s->live + footer;
    s->reclaimable = fsize > s->estimate ? fsize - s->estimate : 0;
}

typedef struct {
    uint64_t bytes, nblocks, block_ranks;
} layer_extra;

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void layer_extras(const afmt_index *x, layer_extra *e) {
    uint32_t *ranks = malloc(sizeof *ranks * (size_t)(x->n_blocks + 1));
    for (uint64_t i = 0; i < x->n_layers; i++) {
        const afmt_layer_info *L = &x->layers[i];
        e[i].bytes = L->footer_offset + L->footer_length + 32 - L->data_offset;
        e[i].nblocks = L->n_blocks;
        e[i].block_ranks = 0;
        if (!ranks) continue;
        uint64_t n = 0;
        for (uint64_t b = 0; b < x->n_blocks; b++)
            if (x->blocks[b].layer_id == L->layer_id) ranks[n++] = x->blocks[b].b.rank;
        qsort(ranks, (size_t)n, sizeof *ranks, cmp_u32);
        for (uint64_t k = 0; k < n; k++) e[i].block_ranks += k == 0 || ranks[k] != ranks[k - 1];
    }
    free(ranks);
}

/* ---- provenance: what every commit records in its layer (afmt_layer_attr) ---------- */

static const char *const PROV_KEYS[] = {
    "host", "nranks", "time_ns", "slurm_job_id", "slurm_array_task_id", "slurm_job_num_nodes"};
#define N_PROV_KEYS (sizeof PROV_KEYS / sizeof PROV_KEYS[0])

static const afmt_attr_rec *layer_attr(const afmt_layer_info *L, const char *key) {
    for (uint64_t i = 0; i < L->n_attrs; i++)
        if (strcmp(L->attrs[i].key, key) == 0) return &L->attrs[i];
    return NULL;
}

static int is_prov_key(const char *key) {
    for (size_t k = 0; k < N_PROV_KEYS; k++)
        if (strcmp(PROV_KEYS[k], key) == 0) return 1;
    return 0;
}

/* Prints a provenance value for the text line: a string of printable characters as it is,
 * anything else (other bytes, other dtypes) as afmt ls prints attribute values. */
static void prov_value(FILE *o, const afmt_attr_rec *a) {
    int plain = a->dtype == AFMT_UINT8 && a->n > 0 && a->n <= 256;
    for (uint64_t i = 0; plain && i < a->n; i++)
        plain = a->value[i] > 0x20 && a->value[i] < 0x7f && a->value[i] != ',';
    if (plain)
        fwrite(a->value, 1, (size_t)a->n, o);
    else
        cli_text_values(o, a->dtype, a->n, a->value, 16);
}

/* One line per layer: "provenance: host vm, 3 ranks, Slurm job 12, array task 4, 2 nodes"
 * (the parts the layer has; none: no line), then the layer's other attributes. The commit
 * time (time_ns) is the TIME column already. */
static void text_provenance(FILE *o, const afmt_layer_info *L) {
    static const struct {
        const char *key, *before, *after, *after_one;
    } parts[] = {{"host", "host ", "", ""},
                 {"nranks", "", " ranks", " rank"},
                 {"slurm_job_id", "Slurm job ", "", ""},
                 {"slurm_array_task_id", "array task ", "", ""},
                 {"slurm_job_num_nodes", "", " nodes", " node"}};
    int any = 0;
    for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
        const afmt_attr_rec *a = layer_attr(L, parts[k].key);
        if (!a) continue;
        fputs(any ? ", " : "          provenance: ", o);
        fputs(parts[k].before, o);
        prov_value(o, a);
        int one = a->n == 1 && ((a->dtype == AFMT_UINT8 && a->value[0] == '1') ||
                                (a->dtype == AFMT_INT64 && a->value[0] == 1 &&
                                 !memcmp(a->value + 1, "\0\0\0\0\0\0\0", 7)));
        fputs(one ? parts[k].after_one : parts[k].after, o);
        any = 1;
    }
    if (any) fputc('\n', o);
    for (uint64_t i = 0; i < L->n_attrs; i++)
        if (!is_prov_key(L->attrs[i].key))
            text_attrs(o, "          layer attribute ", &L->attrs[i], 1);
}

/* "provenance": {"host": "vm", "nranks": 3, "time_ns": ..., "slurm_job_id": "12", ...},
 * every key present, null where the layer lacks it. */
static void json_provenance(FILE *o, const afmt_layer_info *L) {
    fputs("\"provenance\": {", o);
    for (size_t k = 0; k < N_PROV_KEYS; k++) {
        const afmt_attr_rec *a = layer_attr(L, PROV_KEYS[k]);
        fprintf(o, "%s\"%s\": ", k ? ", " : "", PROV_KEYS[k]);
        if (a)
            cli_json_values(o, a->dtype, a->n, a->value);
        else
            fputs("null", o);
    }
    fputc('}', o);
}

static void uuid_str(const uint8_t *u, char *buf) {
    int at = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) buf[at++] = '-';
        at += snprintf(buf + at, 3, "%02x", u[i]);
    }
}

/* Live chunks per block: (block, array position, chunk index), sorted. */
typedef struct {
    uint64_t block, array, chunk;
} bchunk;

static int bchunk_cmp(const void *a, const void *b) {
    const bchunk *x = a, *y = b;
    if (x->block != y->block) return x->block < y->block ? -1 : 1;
    if (x->array != y->array) return x->array < y->array ? -1 : 1;
    return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

static bchunk *block_chunks(const afmt_index *x, uint64_t *n) {
    bchunk *v = malloc(sizeof *v * (size_t)(x->chunks.count + 1));
    *n = 0;
    if (!v) return NULL;
    for (uint64_t i = 0; i < x->chunks.cap; i++) {
        const afmt_hmap_slot *s = &x->chunks.slots[i];
        if (s->used != 1) continue;
        const afmt_array *arr = afmt__index_by_id(x, s->k1);
        if (!arr || !arr->live) continue;
        v[(*n)++] = (bchunk){x->locs[s->val].block, s->k1, s->k2};
    }
    qsort(v, (size_t)*n, sizeof *v, bchunk_cmp);
    return v;
}

/* Prints the chunks [i, j) of one block as "name" 0-3,7 groups (text or JSON). */
static void print_block_chunks(FILE *o, const afmt_index *x, const bchunk *v, uint64_t i,
                               uint64_t j, int json) {
    int first_group = 1;
    for (uint64_t k = i; k < j;) {
        uint64_t m = k;
        while (m < j && v[m].array == v[k].array) m++;
        const afmt_array *arr = afmt__index_by_id(x, v[k].array);
        if (json) {
            fputs(first_group ? "{\"array\": " : ", {\"array\": ", o);
            cli_json_str(o, arr->d.name, strlen(arr->d.name));
            fputs(", \"chunks\": [", o);
            for (uint64_t q = k; q < m; q++)
                fprintf(o, "%s%llu", q > k ? ", " : "", (ull)v[q].chunk);
            fputs("]}", o);
        } else {
            char e[CLI_ESC_NAME];
            fprintf(o, "%s\"%s\" ", first_group ? "" : "; ", cli_qesc(arr->d.name, e, sizeof e));
            for (uint64_t q = k; q < m;) {
                uint64_t r = q;
                while (r + 1 < m && v[r + 1].chunk == v[r].chunk + 1) r++;
                if (r > q)
                    fprintf(o, "%s%llu-%llu", q > k ? "," : "", (ull)v[q].chunk, (ull)v[r].chunk);
                else
                    fprintf(o, "%s%llu", q > k ? "," : "", (ull)v[q].chunk);
                q = r + 1;
            }
        }
        first_group = 0;
        k = m;
    }
}

static void info_blocks(FILE *o, const afmt_index *x, const acct *a, int json) {
    uint64_t n = 0;
    bchunk *v = block_chunks(x, &n);
    uint64_t at = 0;
    if (!json) fprintf(o, "blocks of the chain:\n");
    for (uint64_t b = 0; b < x->n_blocks; b++) {
        const afmt_iblock *ib = &x->blocks[b];
        uint64_t end = at;
        while (v && end < n && v[end].block == b) end++;
        if (json) {
            fprintf(o,
                    "%s\n    {\"index\": %llu, \"layer\": %llu, \"offset\": %llu, "
                    "\"stored_bytes\": %llu, \"raw_bytes\": %llu, \"codec\": \"%s\", "
                    "\"rank\": %u, \"live_raw_bytes\": %llu, \"live_chunks\": [",
                    b ? "," : "", (ull)b, (ull)ib->layer_id, (ull)ib->b.offset,
                    (ull)ib->b.stored_size, (ull)ib->b.raw_size, afmt__codec_name(ib->b.codec),
                    ib->b.rank, (ull)a->bl_raw[b]);
            print_block_chunks(o, x, v, at, end, 1);
            fputs("]}", o);
        } else {
            fprintf(o,
                    "  block %llu: layer %llu, offset %llu, stored %llu, raw %llu, codec %s, "
                    "rank %u, live %llu of %llu raw bytes",
                    (ull)b, (ull)ib->layer_id, (ull)ib->b.offset, (ull)ib->b.stored_size,
                    (ull)ib->b.raw_size, afmt__codec_name(ib->b.codec), ib->b.rank,
                    (ull)a->bl_raw[b], (ull)ib->b.raw_size);
            if (end > at) {
                fputs(": ", o);
                print_block_chunks(o, x, v, at, end, 0);
            }
            fputc('\n', o);
        }
        at = end;
    }
    free(v);
}

/* ---- info: the live arrays grouped by compression setting -------------------------- */

#define MAX_GROUPS  64 /* distinct settings shown; the arrays of any further ones: "other" */
#define GROUP_NAMES 8  /* names shown per group in the text */
typedef struct {
    char text[400]; /* compression_text */
    afmt_array_codec c;
    int ok; /* c holds the setting (not "other", not unreadable) */
    uint64_t n;
} cgroup;

/* The groups of the live arrays, in order of first appearance; (*of)[i] is the group of
 * live array i. NULL if out of memory. */
static cgroup *compression_groups(afmt_file *f, uint64_t nlive, uint32_t **of, int *ng) {
    cgroup *g = calloc(MAX_GROUPS + 1, sizeof *g);
    *of = malloc(sizeof **of * (size_t)(nlive + 1));
    *ng = 0;
    if (!g || !*of) {
        free(g);
        free(*of);
        *of = NULL;
        return NULL;
    }
    for (uint64_t i = 0; i < nlive; i++) {
        char t[400];
        afmt_array_codec c;
        int ok = compression_text(f, afmt__index_live_at(&f->idx, i), t, sizeof t, &c) == 0;
        int k = 0;
        while (k < *ng && strcmp(g[k].text, t) != 0) k++;
        if (k == *ng && *ng == MAX_GROUPS) { /* one more setting than shown: "other" */
            k = MAX_GROUPS;
            snprintf(g[k].text, sizeof g[k].text, "other settings (see afmt ls -l)");
        } else if (k == *ng) {
            snprintf(g[k].text, sizeof g[k].text, "%s", t);
            g[k].c = c;
            g[k].ok = ok;
            (*ng)++;
        }
        g[k].n++;
        (*of)[i] = (uint32_t)k;
    }
    if (g[MAX_GROUPS].n) *ng = MAX_GROUPS + 1;
    return g;
}

static void info_compression(FILE *o, afmt_file *f, int json) {
    uint64_t nlive = afmt__index_live_count(&f->idx);
    uint32_t *of;
    int ng;
    cgroup *g = compression_groups(f, nlive, &of, &ng);
    if (!g) {
        fputs(json ? "null" : "compression: ? (out of memory)\n", o);
        return;
    }
    if (!json && ng) fputs("compression:\n", o);
    if (json) fputc('[', o);
    for (int k = 0; k < ng; k++) {
        uint64_t shown = 0;
        if (json) {
            fputs(k ? ",\n    {\"text\": " : "\n    {\"text\": ", o);
            cli_json_str(o, g[k].text, strlen(g[k].text));
            fputs(", \"setting\": ", o);
            if (g[k].ok)
                cli_codec_json(o, &g[k].c);
            else
                fputs("null", o);
            fputs(", \"arrays\": [", o);
        } else {
            fputs("  ", o);
        }
        for (uint64_t i = 0; i < nlive; i++) {
            if (of[i] != (uint32_t)k) continue;
            const char *name = afmt__index_live_at(&f->idx, i)->d.name;
            if (json) {
                fputs(shown ? ", " : "", o);
                cli_json_str(o, name, strlen(name));
            } else if (shown < GROUP_NAMES) {
                char e[CLI_ESC_NAME];
                fprintf(o, "%s\"%s\"", shown ? ", " : "", cli_qesc(name, e, sizeof e));
            }
            shown++;
        }
        if (json)
            fputs("]}", o);
        else if (shown > GROUP_NAMES)
            fprintf(o, " and %llu more (%llu arrays): %s\n", (ull)(shown - GROUP_NAMES), (ull)shown,
                    g[k].text);
        else
            fprintf(o, ": %s\n", g[k].text);
    }
    if (json) fputs(ng ? "\n  ]" : "]", o);
    free(of);
    free(g);
}

static void info_text(FILE *o, const char *path, afmt_file *f, const acct *a, const space *s,
                      const layer_extra *e, int blocks) {
    const afmt_index *x = &f->idx;
    char u[40], h[32], t[40];
    uuid_str(f->super.uuid, u);
    fputs("file:            ", o);
    cli_put_esc(o, path, strlen(path), 0);
    fputc('\n', o);
    fprintf(o, "format version:  %u\n", f->super.version);
    fprintf(o, "uuid:            %s\n", u);
    fprintf(o, "size:            %llu bytes (%s)\n", (ull)s->total,
            cli_human(s->total, h, sizeof h));
    fprintf(o, "generation:      %llu\n", (ull)f->super.generation);
    fprintf(o, "committed end:   %llu\n", (ull)f->super.eof);
    fprintf(o, "next layer id:   %llu\n", (ull)f->super.layer_id + 1);
    fprintf(o, "arrays:          %llu live\n", (ull)a->nlive);
    fprintf(o, "blocks:          %llu\n", (ull)x->n_blocks);
    fprintf(o, "chunks:          %llu live\n", (ull)a->live_chunks);
    fprintf(o, "layers:          %llu\n", (ull)x->n_layers);
    if (x->n_layers) {
        fprintf(o, "  %6s  %-24s  %12s  %7s  %7s  %6s  %11s  %2s  %8s  %s\n", "ID", "TIME (UTC)",
                "BYTES", "BLOCKS", "CHUNKS", "RANKS", "BLOCK_RANKS", "V", "SEGMENTS", "FLAGS");
        for (uint64_t i = 0; i < x->n_layers; i++) {
            const afmt_layer_info *L = &x->layers[i];
            fprintf(o, "  %6llu  %-24s  %12llu  %7llu  %7llu  %6u  %11llu  %2u  %8llu  %s\n",
                    (ull)L->layer_id, cli_iso_time(L->time_ns, t, sizeof t), (ull)e[i].bytes,
                    (ull)e[i].nblocks, (ull)L->n_chunks, L->nranks, (ull)e[i].block_ranks,
                    L->version, (ull)L->n_segs, (L->flags & AFMT_LAYER_BASE) ? "BASE" : "-");
            text_provenance(o, L);
        }
    }
    fprintf(o, "space:\n");
    const struct {
        const char *name;
        uint64_t v;
    } rows[] = {
        {"superblock", s->superblock}, {"metadata", s->metadata},         {"live data", s->live},
        {"dead data", s->dead},        {"unreferenced", s->unreferenced}, {"total", s->total}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        fprintf(o, "  %-13s %14llu  (%s)\n", rows[i].name, (ull)rows[i].v,
                cli_human(rows[i].v, h, sizeof h));
    fprintf(o, "  %-13s %14llu  (%s, estimated: afmt compact)\n", "reclaimable",
            (ull)s->reclaimable, cli_human(s->reclaimable, h, sizeof h));
    if (x->n_file_attrs) {
        fprintf(o, "file attributes:\n");
        text_attrs(o, "  ", x->file_attrs, x->n_file_attrs);
    }
    if (blocks) info_blocks(o, x, a, 0);
    /* Last, so that the lines above stay where scripts look for them (a block line is
     * the first to name an array in quotes). */
    info_compression(o, f, 0);
}

static void info_json(FILE *o, const char *path, afmt_file *f, const acct *a, const space *s,
                      const layer_extra *e, int blocks) {
    const afmt_index *x = &f->idx;
    char u[40], t[40];
    uuid_str(f->super.uuid, u);
    fputs("{\"file\": ", o);
    cli_json_str(o, path, strlen(path));
    fprintf(o,
            ", \"format_version\": %u, \"uuid\": \"%s\", \"size\": %llu, \"generation\": %llu, "
            "\"committed_end\": %llu, \"next_layer_id\": %llu, \"arrays\": %llu, "
            "\"blocks\": %llu, \"live_chunks\": %llu,\n \"layers\": [",
            f->super.version, u, (ull)s->total, (ull)f->super.generation, (ull)f->super.eof,
            (ull)f->super.layer_id + 1, (ull)a->nlive, (ull)x->n_blocks, (ull)a->live_chunks);
    for (uint64_t i = 0; i < x->n_layers; i++) {
        const afmt_layer_info *L = &x->layers[i];
        fprintf(o,
                "%s\n  {\"id\": %llu, \"time\": \"%s\", \"time_ns\": %llu, \"bytes\": %llu, "
                "\"data_offset\": %llu, \"footer_offset\": %llu, \"footer_length\": %llu, "
                "\"blocks\": %llu, \"chunks\": %llu, \"stored_bytes\": %llu, \"raw_bytes\": "
                "%llu, \"nranks\": %u, \"block_ranks\": %llu, \"version\": %u, \"segments\": "
                "%llu, \"segment_bytes\": %llu, \"base\": %s, ",
                i ? "," : "", (ull)L->layer_id, cli_iso_time(L->time_ns, t, sizeof t),
                (ull)L->time_ns, (ull)e[i].bytes, (ull)L->data_offset, (ull)L->footer_offset,
                (ull)L->footer_length, (ull)e[i].nblocks, (ull)L->n_chunks, (ull)L->stored_bytes,
                (ull)L->raw_bytes, L->nranks, (ull)e[i].block_ranks, L->version, (ull)L->n_segs,
                (ull)L->seg_bytes, (L->flags & AFMT_LAYER_BASE) ? "true" : "false");
        json_provenance(o, L);
        fputs(", \"attributes\": ", o);
        json_attrs(o, L->attrs, L->n_attrs);
        fputc('}', o);
    }
    fprintf(o,
            "],\n \"space\": {\"superblock\": %llu, \"metadata\": %llu, \"live\": %llu, "
            "\"dead\": %llu, \"unreferenced\": %llu, \"total\": %llu, \"reclaimable\": %llu, "
            "\"compacted_estimate\": %llu},\n \"attributes\": ",
            (ull)s->superblock, (ull)s->metadata, (ull)s->live, (ull)s->dead, (ull)s->unreferenced,
            (ull)s->total, (ull)s->reclaimable, (ull)s->estimate);
    json_attrs(o, x->file_attrs, x->n_file_attrs);
    fputs(",\n \"compression\": ", o);
    info_compression(o, f, 1);
    if (blocks) {
        fputs(",\n \"block_list\": [", o);
        info_blocks(o, x, a, 1);
        fputs("]", o);
    }
    fputs("}\n", o);
}

int cmd_info(int argc, char **argv) {
    static const cli_optdef defs[] = {{"json", 0, 0}, {"blocks", 0, 0}, {NULL, 0, 0}};
    cli_args a;
    int done, rc = cli_parse(argc, argv, defs, &a, &done);
    if (done) return rc;
    if (a.npos != 1) return cli_usage_error("info", "expected one FILE");
    const char *path = a.pos[0];
    afmt_file *f;
    if ((rc = cli_open(path, AFMT_RDONLY, 0, &f)) != CLI_OK) return rc;
    acct ac;
    memset(&ac, 0, sizeof ac);
    layer_extra *e = calloc((size_t)f->idx.n_layers + 1, sizeof *e);
    if (!e || acct_build(&f->idx, &ac) != AFMT_OK) {
        free(e);
        acct_free(&ac);
        cli_close(path, f);
        return cli_error(path, "out of memory");
    }
    if (cli.rank == 0) {
        space s;
        space_of(f, &ac, file_size_of(f), &s);
        layer_extras(&f->idx, e);
        int blocks = a.val[cli_opt(defs, "blocks")] != NULL;
        if (a.val[cli_opt(defs, "json")])
            info_json(stdout, path, f, &ac, &s, e, blocks);
        else
            info_text(stdout, path, f, &ac, &s, e, blocks);
    }
    free(e);
    acct_free(&ac);
    return cli_close(path, f);
}
