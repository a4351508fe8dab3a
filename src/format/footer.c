/* footer.c - encoding and validating decoding of layer footers. Byte layout: docs/format.md,
 * section "Layer footer". The decoder treats its input as hostile: every count, size,
 * offset and string is checked before it is used, with overflow-safe arithmetic. */
#include "format/footer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "format/grid.h"
#include "format/superblock.h"

static const uint8_t FOOTER_MAGIC[8] = {'A', 'F', 'M', 'T', 'L', 'A', 'Y', 'R'};

/* Header field offsets. Version 2 reuses 112, 120, 152 and 156 (FH2_*). */
enum {
    FH_MAGIC = 0,
    FH_VERSION = 8,
    FH_HEADER_SIZE = 12,
    FH_LAYER_ID = 16,
    FH_PREV_OFFSET = 24,
    FH_PREV_LENGTH = 32,
    FH_DATA_OFFSET = 40,
    FH_TIME_NS = 48,
    FH_NRANKS = 56,
    FH_FLAGS = 60,
    FH_NEXT_ARRAY_ID = 64,
    FH_N_ARRAYS = 72,
    FH_N_BLOCKS = 80,
    FH_N_CHUNKS = 88,
    FH_N_ATTRS = 96,
    FH_ARRAYS_SIZE = 104,
    FH_BLOCKS_SIZE = 112,
    FH_CHUNKS_SIZE = 120,
    FH_ATTRS_SIZE = 128,
    FH_HEAP_SIZE = 136,
    FH_ARRAY_REC_SIZE = 144,
    FH_ARRAY_DIM_SIZE = 148,
    FH_BLOCK_REC_SIZE = 152,
    FH_CHUNK_REC_SIZE = 156,
    FH_ATTR_REC_SIZE = 160,
    FH_FEATURES = 164,
    FH_RESERVED = 168, /* 8 bytes */
    FH_SIZE = 176,     /* header size */
    FH2_SEGS_SIZE = 112,
    FH2_N_SEGS = 120,
    FH2_SEG_REC_SIZE = 152
};

/* Record sizes (v1, and v2's where they differ); later writers may use larger ones
 * (fields appended). */
enum {
    ARRAY_REC = 48,
    ARRAY_REC_V2 = 72,
    ARRAY_DIM = 32,
    BLOCK_REC = 40,
    CHUNK_REC = 40,
    ATTR_REC = 56,
    SEG_REC = 80
};

#define KNOWN_LAYER_FLAGS ((uint32_t)AFMT_LAYER_BASE)
#define KNOWN_ARRAY_FLAGS ((uint32_t)AFMT_ARRAY_SHUFFLE)

typedef unsigned long long ull;

int afmt__chunk_rec_cmp(const void *a, const void *b) {
    const afmt_chunk_rec *x = a, *y = b;
    if (x->array_id != y->array_id) return x->array_id < y->array_id ? -1 : 1;
    if (x->chunk_index != y->chunk_index) return x->chunk_index < y->chunk_index ? -1 : 1;
    return 0;
}

uint64_t afmt__footer_checksum(const uint8_t *p, uint64_t len) {
    return afmt__checksum(p, (size_t)len);
}

void afmt__layer_free(afmt_layer *L) {
    if (!L) return;
    if (L->attrs)
        for (uint64_t i = 0; i < L->n_attrs; i++) free(L->attrs[i].value);
    free(L->arrays);
    free(L->blocks);
    free(L->chunks);
    free(L->segs);
    free(L->attrs);
    memset(L, 0, sizeof *L);
}

/* ---- encoding ---- */

/* Appends s to the heap and writes its (offset, length) reference at p. */
static void put_heap_ref(uint8_t *p, afmt_buf *heap, const void *s, size_t n) {
    afmt__put_u64(p, (uint64_t)heap->len);
    afmt__put_u64(p + 8, (uint64_t)n);
    afmt__buf_append(heap, s, n);
}

static int einval(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static int einval(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    afmt__vfail(NULL, AFMT_EINVAL, fmt, ap);
    va_end(ap);
    return AFMT_EINVAL;
}

/* The root table of a v2 layer (format.md 9.2): what decode_segs checks. */
static int check_encodable_segs(const afmt_layer *L) {
    for (uint64_t i = 0; i < L->n_segs; i++) {
        const afmt_seg_rec *g = &L->segs[i];
        afmt_chunk_rec first = {g->first_array, g->first_chunk, 0, 0, 0};
        afmt_chunk_rec last = {g->last_array, g->last_chunk, 0, 0, 0};
        if (g->n_chunks == 0 || g->length < AFMT_SEG_MIN || g->offset < L->data_offset ||
            afmt__chunk_rec_cmp(&first, &last) > 0 || g->first_array == 0 ||
            g->last_array >= L->next_array_id || g->writer >= L->nranks)
            return einval("afmt__footer_encode: segment record %llu invalid", (ull)i);
        if (i > 0) {
            afmt_chunk_rec prev = {L->segs[i - 1].first_array, L->segs[i - 1].first_chunk, 0, 0, 0};
            if (afmt__chunk_rec_cmp(&prev, &first) > 0)
                return einval("afmt__footer_encode: segment records %llu and %llu are not sorted "
                              "by first key",
                              (ull)i - 1, (ull)i);
        }
    }
    return AFMT_OK;
}

/* Rejects what the decoder would reject, so that a bug upstream fails the commit instead
 * of writing a file that cannot be opened. Message in the thread buffer. */
static int check_encodable(const afmt_layer *L) {
    if (L->flags & ~KNOWN_LAYER_FLAGS)
        return einval("afmt__footer_encode: unknown layer flags 0x%x", L->flags);
    if ((L->flags & AFMT_LAYER_BASE) && (L->prev_offset || L->prev_length))
        return einval("afmt__footer_encode: a BASE layer with a previous footer");
    for (uint64_t i = 0; i < L->n_arrays; i++) {
        const afmt_array_rec *r = &L->arrays[i];
        size_t nl = strnlen(r->name, AFMT_MAX_NAME + 1);
        if (nl < 1 || nl > AFMT_MAX_NAME)
            return einval("afmt__footer_encode: array record %llu: name length not in 1..%d",
                          (ull)i, AFMT_MAX_NAME);
        if (r->id == 0 || r->id >= L->next_array_id)
            return einval("afmt__footer_encode: array record %llu: id %llu not in 1..%llu", (ull)i,
                          (ull)r->id, (ull)L->next_array_id - 1);
        if (r->kind == AFMT_REC_DELETE) continue;
        if (r->kind != AFMT_REC_DEFINE)
            return einval("afmt__footer_encode: array record %llu: kind %u", (ull)i, r->kind);
        if (r->ndim < 0 || r->ndim > AFMT_MAX_NDIM || !afmt__dtype_valid((int)r->dtype) ||
            (r->flags & ~KNOWN_ARRAY_FLAGS))
            return einval("afmt__footer_encode: array \"%s\": ndim %d, dtype %d or flags 0x%x "
                          "invalid",
                          r->name, r->ndim, (int)r->dtype, r->flags);
        for (int d = 0; d < r->ndim; d++) {
            size_t dl = strnlen(r->dims[d], AFMT_MAX_DIMNAME + 1);
            if (dl < 1 || dl > AFMT_MAX_DIMNAME || r->shape[d] == 0 || r->chunk[d] == 0 ||
                r->chunk[d] > r->shape[d])
                return einval("afmt__footer_encode: array \"%s\": dim %d (name length %zu, shape "
                              "%llu, chunk %llu) invalid",
                              r->name, d, dl, (ull)r->shape[d], (ull)r->chunk[d]);
        }
        afmt_grid g;
        if (afmt__grid_init(&g, r->ndim, r->shape, r->chunk) != AFMT_OK ||
            afmt__grid_bytes(&g, afmt__dtype_size(r->dtype), NULL, NULL) != AFMT_OK)
            return einval("afmt__footer_encode: array \"%s\": its bytes or its chunk's bytes "
                          "exceed the limits",
                          r->name);
        if (r->params_len > AFMT_MAX_CODEC_PARAMS)
            return einval("afmt__footer_encode: array \"%s\": %u bytes of codec parameters, "
                          "more than %d",
                          r->name, r->params_len, AFMT_MAX_CODEC_PARAMS);
    }
    if (L->version == AFMT_FORMAT_VERSION) return check_encodable_segs(L);
    for (uint64_t i = 0; i < L->n_blocks; i++) {
        if (L->blocks[i].codec == AFMT_CODEC_NONE &&
            L->blocks[i].stored_size != L->blocks[i].raw_size)
            return einval("afmt__footer_encode: block %llu: codec 0 with stored size %llu != raw "
                          "size %llu",
                          (ull)i, (ull)L->blocks[i].stored_size, (ull)L->blocks[i].raw_size);
        if (L->blocks[i].raw_size > AFMT_MAX_BLOCK_RAW)
            return einval("afmt__footer_encode: block %llu: raw size %llu exceeds the limit of "
                          "%llu",
                          (ull)i, (ull)L->blocks[i].raw_size, (ull)AFMT_MAX_BLOCK_RAW);
    }
    for (uint64_t i = 0; i < L->n_chunks; i++) {
        const afmt_chunk_rec *c = &L->chunks[i];
        if (i > 0 && afmt__chunk_rec_cmp(&L->chunks[i - 1], c) >= 0)
            return einval("afmt__footer_encode: chunk records %llu and %llu are not strictly "
                          "sorted by (array id, chunk index)",
                          (ull)i - 1, (ull)i);
        uint64_t end = 0;
        if (c->block >= L->n_blocks || !afmt__add_ok(c->offset, c->size, &end) ||
            end > L->blocks[c->block].raw_size || c->size == 0)
            return einval("afmt__footer_encode: chunk record %llu (array %llu, chunk %llu) "
                          "points outside its block",
                          (ull)i, (ull)c->array_id, (ull)c->chunk_index);
    }
    for (uint64_t i = 0; i < L->n_attrs; i++) {
        const afmt_attr_rec *a = &L->attrs[i];
        size_t kl = strnlen(a->key, AFMT_MAX_NAME + 1);
        uint64_t vb = 0;
        if (kl < 1 || kl > AFMT_MAX_NAME || !afmt__dtype_valid((int)a->dtype) ||
            !afmt__mul_ok(a->n, afmt__dtype_size(a->dtype), &vb) || vb > SIZE_MAX ||
            (vb > 0 && !a->value))
            return einval("afmt__footer_encode: attribute record %llu invalid (key length %zu, "
                          "dtype %d, n %llu)",
                          (ull)i, kl, (int)a->dtype, (ull)a->n);
    }
    return AFMT_OK;
}

/* The sections whose size is known only once they are written (arrays, attributes and
 * the heap they both point into), built apart before the header that states their sizes. */
typedef struct {
    afmt_buf arr, att, heap;
} footer_enc;

/* One array record and its dim records (v2: with the codec fields). */
static void encode_array(footer_enc *e, const afmt_array_rec *r, int v2) {
    int def = r->kind == AFMT_REC_DEFINE;
    uint32_t ndim = def ? (uint32_t)r->ndim : 0;
    uint8_t rec[ARRAY_REC_V2] = {0};
    afmt__put_u64(rec + 0, r->id);
    afmt__put_u32(rec + 8, r->kind);
    afmt__put_u32(rec + 12, def ? r->flags : 0);
    afmt__put_u32(rec + 16, def ? (uint32_t)r->dtype : 0);
    afmt__put_u32(rec + 20, ndim);
    put_heap_ref(rec + 24, &e->heap, r->name, strnlen(r->name, AFMT_MAX_NAME));
    /* Only the element's own bytes: the padding is zero whatever the caller left. */
    if (def) memcpy(rec + 40, r->fill, afmt__dtype_size(r->dtype));
    size_t at = e->arr.len;
    afmt__buf_append(&e->arr, rec, v2 ? (size_t)ARRAY_REC_V2 : (size_t)ARRAY_REC);
    for (uint32_t d = 0; d < ndim; d++) {
        uint8_t dim[ARRAY_DIM];
        afmt__put_u64(dim + 0, r->shape[d]);
        afmt__put_u64(dim + 8, r->chunk[d]);
        put_heap_ref(dim + 16, &e->heap, r->dims[d], strnlen(r->dims[d], AFMT_MAX_DIMNAME));
        afmt__buf_append(&e->arr, dim, sizeof dim);
    }
    if (v2 && !e->arr.oom) { /* the codec fields: their heap bytes after the dim names */
        uint8_t *q = e->arr.data + at;
        afmt__put_u32(q + 48, def ? r->codec : AFMT_CODEC_UNSET);
        afmt__put_u32(q + 52, 0);
        put_heap_ref(q + 56, &e->heap, r->params, def ? r->params_len : 0);
    }
}

static void encode_arrays(footer_enc *e, const afmt_layer *L) {
    int v2 = L->version == AFMT_FORMAT_VERSION;
    for (uint64_t i = 0; i < L->n_arrays; i++) encode_array(e, &L->arrays[i], v2);
}

static void encode_attrs(footer_enc *e, const afmt_layer *L) {
    for (uint64_t i = 0; i < L->n_attrs; i++) {
        const afmt_attr_rec *a = &L->attrs[i];
        uint8_t rec[ATTR_REC] = {0};
        afmt__put_u64(rec + 0, a->array_id);
        put_heap_ref(rec + 8, &e->heap, a->key, strnlen(a->key, AFMT_MAX_NAME));
        afmt__put_u32(rec + 24, (uint32_t)a->dtype);
        afmt__put_u64(rec + 32, a->n);
        put_heap_ref(rec + 40, &e->heap, a->value, (size_t)a->n * afmt__dtype_size(a->dtype));
        afmt__buf_append(&e->att, rec, sizeof rec);
    }
}

/* The header: magic, version, the layer's own fields, the counts and section sizes, and
 * the record sizes this writer uses. */
static void encode_header(const footer_enc *e, const afmt_layer *L, afmt_buf *out) {
    int v2 = L->version == AFMT_FORMAT_VERSION;
    uint8_t h[FH_SIZE] = {0};
    memcpy(h + FH_MAGIC, FOOTER_MAGIC, 8);
    afmt__put_u32(h + FH_VERSION, v2 ? AFMT_FORMAT_VERSION : 1);
    afmt__put_u32(h + FH_HEADER_SIZE, FH_SIZE);
    afmt__put_u64(h + FH_LAYER_ID, L->layer_id);
    afmt__put_u64(h + FH_PREV_OFFSET, L->prev_offset);
    afmt__put_u64(h + FH_PREV_LENGTH, L->prev_length);
    afmt__put_u64(h + FH_DATA_OFFSET, L->data_offset);
    afmt__put_u64(h + FH_TIME_NS, L->time_ns);
    afmt__put_u32(h + FH_NRANKS, L->nranks);
    afmt__put_u32(h + FH_FLAGS, L->flags);
    afmt__put_u64(h + FH_NEXT_ARRAY_ID, L->next_array_id);
    afmt__put_u64(h + FH_N_ARRAYS, L->n_arrays);
    afmt__put_u64(h + FH_N_ATTRS, L->n_attrs);
    afmt__put_u64(h + FH_ARRAYS_SIZE, (uint64_t)e->arr.len);
    afmt__put_u64(h + FH_ATTRS_SIZE, (uint64_t)e->att.len);
    afmt__put_u64(h + FH_HEAP_SIZE, (uint64_t)e->heap.len);
    afmt__put_u32(h + FH_ARRAY_DIM_SIZE, ARRAY_DIM);
    if (v2) {
        uint64_t nb = 0, nc = 0;
        for (uint64_t i = 0; i < L->n_segs; i++) {
            nb += L->segs[i].n_blocks;
            nc += L->segs[i].n_chunks;
        }
        afmt__put_u64(h + FH_N_BLOCKS, nb);
        afmt__put_u64(h + FH_N_CHUNKS, nc);
        afmt__put_u64(h + FH2_SEGS_SIZE, L->n_segs * SEG_REC);
        afmt__put_u64(h + FH2_N_SEGS, L->n_segs);
        afmt__put_u32(h + FH_ARRAY_REC_SIZE, ARRAY_REC_V2);
        afmt__put_u32(h + FH2_SEG_REC_SIZE, SEG_REC);
    } else {
        afmt__put_u64(h + FH_N_BLOCKS, L->n_blocks);
        afmt__put_u64(h + FH_N_CHUNKS, L->n_chunks);
        afmt__put_u64(h + FH_BLOCKS_SIZE, L->n_blocks * BLOCK_REC);
        afmt__put_u64(h + FH_CHUNKS_SIZE, L->n_chunks * CHUNK_REC);
        afmt__put_u32(h + FH_ARRAY_REC_SIZE, ARRAY_REC);
        afmt__put_u32(h + FH_BLOCK_REC_SIZE, BLOCK_REC);
        afmt__put_u32(h + FH_CHUNK_REC_SIZE, CHUNK_REC);
    }
    afmt__put_u32(h + FH_ATTR_REC_SIZE, ATTR_REC);
    afmt__put_u32(h + FH_FEATURES, 0);
    afmt__buf_append(out, h, sizeof h);
}

void afmt__block_rec_put(uint8_t rec[40], const afmt_block_rec *b) {
    afmt__put_u64(rec + 0, b->offset);
    afmt__put_u64(rec + 8, b->stored_size);
    afmt__put_u64(rec + 16, b->raw_size);
    afmt__put_u64(rec + 24, b->checksum);
    afmt__put_u32(rec + 32, b->codec);
    afmt__put_u32(rec + 36, b->rank);
}

void afmt__block_rec_get(const uint8_t q[40], afmt_block_rec *b) {
    b->offset = afmt__get_u64(q);
    b->stored_size = afmt__get_u64(q + 8);
    b->raw_size = afmt__get_u64(q + 16);
    b->checksum = afmt__get_u64(q + 24);
    b->codec = afmt__get_u32(q + 32); /* any id: an unknown codec fails at read time */
    b->rank = afmt__get_u32(q + 36);
}

int afmt__block_rec_bad(const afmt_block_rec *b, uint64_t i, uint32_t nranks, char *why, size_t n) {
    if (b->codec == AFMT_CODEC_NONE && b->stored_size != b->raw_size)
        snprintf(why, n, "block record %llu: codec 0 (none) with stored size %llu != raw size %llu",
                 (ull)i, (ull)b->stored_size, (ull)b->raw_size);
    else if (b->raw_size > AFMT_MAX_BLOCK_RAW)
        snprintf(why, n, "block record %llu: raw size %llu exceeds the limit of %llu bytes", (ull)i,
                 (ull)b->raw_size, (ull)AFMT_MAX_BLOCK_RAW);
    else if (b->rank >= nranks)
        snprintf(why, n, "block record %llu: rank %u of nranks %u", (ull)i, b->rank, nranks);
    else
        return 0;
    return 1;
}

void afmt__chunk_rec_put(uint8_t rec[40], const afmt_chunk_rec *c) {
    afmt__put_u64(rec + 0, c->array_id);
    afmt__put_u64(rec + 8, c->chunk_index);
    afmt__put_u64(rec + 16, c->block);
    afmt__put_u64(rec + 24, c->offset);
    afmt__put_u64(rec + 32, c->size);
}

void afmt__chunk_rec_get(const uint8_t q[40], afmt_chunk_rec *c) {
    c->array_id = afmt__get_u64(q);
    c->chunk_index = afmt__get_u64(q + 8);
    c->block = afmt__get_u64(q + 16);
    c->offset = afmt__get_u64(q + 24);
    c->size = afmt__get_u64(q + 32);
}

static void encode_blocks(const afmt_layer *L, afmt_buf *out) {
    for (uint64_t i = 0; i < L->n_blocks; i++) {
        uint8_t rec[BLOCK_REC];
        afmt__block_rec_put(rec, &L->blocks[i]);
        afmt__buf_append(out, rec, sizeof rec);
    }
}

static void encode_segs(const afmt_layer *L, afmt_buf *out) {
    for (uint64_t i = 0; i < L->n_segs; i++) {
        uint8_t rec[SEG_REC];
        afmt__seg_rec_encode(&L->segs[i], rec);
        afmt__buf_append(out, rec, sizeof rec);
    }
}

void afmt__seg_rec_encode(const afmt_seg_rec *g, uint8_t out[80]) {
    memset(out, 0, 80);
    afmt__put_u64(out + 0, g->offset);
    afmt__put_u64(out + 8, g->length);
    afmt__put_u64(out + 16, g->checksum);
    afmt__put_u64(out + 24, g->n_blocks);
    afmt__put_u64(out + 32, g->n_chunks);
    afmt__put_u64(out + 40, g->first_array);
    afmt__put_u64(out + 48, g->first_chunk);
    afmt__put_u64(out + 56, g->last_array);
    afmt__put_u64(out + 64, g->last_chunk);
    afmt__put_u32(out + 72, g->writer);
}

void afmt__seg_rec_decode(const uint8_t q[80], afmt_seg_rec *g) {
    g->offset = afmt__get_u64(q);
    g->length = afmt__get_u64(q + 8);
    g->checksum = afmt__get_u64(q + 16);
    g->n_blocks = afmt__get_u64(q + 24);
    g->n_chunks = afmt__get_u64(q + 32);
    g->first_array = afmt__get_u64(q + 40);
    g->first_chunk = afmt__get_u64(q + 48);
    g->last_array = afmt__get_u64(q + 56);
    g->last_chunk = afmt__get_u64(q + 64);
    g->writer = afmt__get_u32(q + 72);
}

static void encode_chunks(const afmt_layer *L, afmt_buf *out) {
    for (uint64_t i = 0; i < L->n_chunks; i++) {
        uint8_t rec[CHUNK_REC];
        afmt__chunk_rec_put(rec, &L->chunks[i]);
        afmt__buf_append(out, rec, sizeof rec);
    }
}

int afmt__footer_encode(const afmt_layer *L, afmt_buf *out) {
    int rc = check_encodable(L);
    if (rc != AFMT_OK) return rc;
    footer_enc e;
    afmt__buf_init(&e.arr);
    afmt__buf_init(&e.att);
    afmt__buf_init(&e.heap);
    encode_arrays(&e, L);
    encode_attrs(&e, L);

    size_t start = out->len;
    encode_header(&e, L, out);
    afmt__buf_append(out, e.arr.data, e.arr.len);
    if (L->version == AFMT_FORMAT_VERSION) {
        encode_segs(L, out);
    } else {
        encode_blocks(L, out);
        encode_chunks(L, out);
    }
    afmt__buf_append(out, e.att.data, e.att.len);
    afmt__buf_append(out, e.heap.data, e.heap.len);
    int oom = e.arr.oom || e.att.oom || e.heap.oom || out->oom;
    afmt__buf_free(&e.arr);
    afmt__buf_free(&e.att);
    afmt__buf_free(&e.heap);
    if (oom || afmt__buf_reserve(out, 8) != AFMT_OK) {
        out->len = start; /* leave out as it was, not a half footer */
        return afmt__fail(NULL, AFMT_ENOMEM, "afmt__footer_encode: out of memory");
    }
    afmt__buf_u64(out, afmt__checksum(out->data + start, out->len - start));
    return AFMT_OK;
}

/* ---- decoding ---- */

static int fail_at(char *errmsg, uint64_t len, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int fail_at(char *errmsg, uint64_t len, const char *fmt, ...) {
    char tmp[AFMT_ERRMSG_MAX - 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    return afmt__fail(errmsg, AFMT_ECORRUPT, "layer footer (%llu bytes): %s", (ull)len, tmp);
}

typedef struct {
    const uint8_t *heap;
    uint64_t size;
} heap_t;

/* Copies the heap string at ref (offset u64, length u64) into dst (max+1 bytes) after
 * checking its length (1..max), bounds and absence of NUL bytes. Returns NULL or a
 * static description of the problem; *flen gets the length for the message. */
static const char *heap_str(const heap_t *hp, const uint8_t *ref, char *dst, size_t max,
                            uint64_t *flen) {
    uint64_t off = afmt__get_u64(ref), n = afmt__get_u64(ref + 8), end = 0;
    *flen = n;
    if (n < 1 || n > max) return "length out of range";
    if (!afmt__add_ok(off, n, &end) || end > hp->size) return "outside the heap";
    if (memchr(hp->heap + off, 0, (size_t)n)) return "contains a NUL byte";
    memcpy(dst, hp->heap + off, (size_t)n);
    dst[n] = '\0';
    return NULL;
}

/* One footer being decoded: its bytes, and what the header says of its sections. */
typedef struct {
    const uint8_t *p;
    uint64_t len;
    char *errmsg;
    uint32_t version;                             /* 1 or 2 */
    uint32_t hsize, arec, adim, brec, crec, trec; /* header and record sizes (v2: brec is
                                                   * the root record size, crec unused) */
    uint64_t na, nb, nc, nt;                      /* record counts (v2: nb = segments) */
    uint64_t sa, sh;                              /* array section and heap sizes */
    uint64_t o_arr, o_blk, o_chk, o_att;          /* section offsets */
    heap_t hp;
} footer_dec;

/* Fails with "layer footer (N bytes): <message>" (d: the footer_dec at hand). */
#define BAD(...) fail_at(d->errmsg, d->len, __VA_ARGS__)

/* The checksum, magic, version, header and record sizes. */
static int decode_header(footer_dec *d) {
    const uint8_t *p = d->p;
    uint64_t len = d->len;
    if (len < FH_SIZE + 8)
        return BAD("shorter than the minimum of %d bytes (header and checksum)", FH_SIZE + 8);
    if (len > SIZE_MAX) return BAD("does not fit in memory");
    /* The checksum first: after it, damage can only come from a faulty writer, and the
     * structural checks below say precisely what it got wrong. */
    uint64_t stored = afmt__get_u64(p + len - 8), computed = afmt__checksum(p, (size_t)(len - 8));
    if (stored != computed)
        return BAD("bad checksum (stored 0x%016llx, computed 0x%016llx)", (ull)stored,
                   (ull)computed);
    if (memcmp(p + FH_MAGIC, FOOTER_MAGIC, 8) != 0) return BAD("bad magic");
    uint32_t version = afmt__get_u32(p + FH_VERSION);
    if (version > AFMT_FORMAT_VERSION)
        return afmt__fail(d->errmsg, AFMT_EVERSION,
                          "layer footer (%llu bytes): format version %u is newer than this "
                          "reader's %d",
                          (ull)len, version, AFMT_FORMAT_VERSION);
    if (version == 0) return BAD("bad version 0");
    d->version = version;
    d->hsize = afmt__get_u32(p + FH_HEADER_SIZE);
    if (d->hsize < FH_SIZE || d->hsize > len - 8)
        return BAD("header size %u not in %d..%llu", d->hsize, FH_SIZE, (ull)(len - 8));
    d->arec = afmt__get_u32(p + FH_ARRAY_REC_SIZE);
    d->adim = afmt__get_u32(p + FH_ARRAY_DIM_SIZE);
    d->brec = afmt__get_u32(p + FH_BLOCK_REC_SIZE);
    d->crec = afmt__get_u32(p + FH_CHUNK_REC_SIZE);
    d->trec = afmt__get_u32(p + FH_ATTR_REC_SIZE);
    int amin = version == 1 ? ARRAY_REC : ARRAY_REC_V2;
    if (d->arec < (uint32_t)amin) return BAD("array record size %u < %d", d->arec, amin);
    if (d->adim < ARRAY_DIM) return BAD("array dim record size %u < %d", d->adim, ARRAY_DIM);
    if (version != 1) {
        if (d->brec < SEG_REC) return BAD("segment record size %u < %d", d->brec, SEG_REC);
    } else {
        if (d->brec < BLOCK_REC) return BAD("block record size %u < %d", d->brec, BLOCK_REC);
        if (d->crec < CHUNK_REC) return BAD("chunk record size %u < %d", d->crec, CHUNK_REC);
    }
    if (d->trec < ATTR_REC) return BAD("attribute record size %u < %d", d->trec, ATTR_REC);
    return AFMT_OK;
}

/* The record counts and section sizes: they must add up to the footer length. Counts are
 * bounded by the section sizes and the sizes by the footer length before anything is
 * allocated, so a damaged count can never ask for an absurd allocation. */
static int decode_sections(footer_dec *d) {
    const uint8_t *p = d->p;
    d->na = afmt__get_u64(p + FH_N_ARRAYS);
    d->nt = afmt__get_u64(p + FH_N_ATTRS);
    uint64_t sa = afmt__get_u64(p + FH_ARRAYS_SIZE), sb = afmt__get_u64(p + FH_BLOCKS_SIZE);
    uint64_t sc = 0, st = afmt__get_u64(p + FH_ATTRS_SIZE);
    uint64_t sh = afmt__get_u64(p + FH_HEAP_SIZE), v = 0;
    if (d->version != 1) { /* the root table in place of the block and chunk sections */
        d->nb = afmt__get_u64(p + FH2_N_SEGS);
        d->nc = 0;
        if (!afmt__mul_ok(d->nb, d->brec, &v) || v != sb)
            return BAD("root table size %llu != %llu segments * %u bytes", (ull)sb, (ull)d->nb,
                       d->brec);
    } else {
        d->nb = afmt__get_u64(p + FH_N_BLOCKS);
        d->nc = afmt__get_u64(p + FH_N_CHUNKS);
        sc = afmt__get_u64(p + FH_CHUNKS_SIZE);
        if (!afmt__mul_ok(d->nb, d->brec, &v) || v != sb)
            return BAD("block section size %llu != %llu blocks * %u bytes", (ull)sb, (ull)d->nb,
                       d->brec);
        if (!afmt__mul_ok(d->nc, d->crec, &v) || v != sc)
            return BAD("chunk section size %llu != %llu chunks * %u bytes", (ull)sc, (ull)d->nc,
                       d->crec);
    }
    if (!afmt__mul_ok(d->nt, d->trec, &v) || v != st)
        return BAD("attribute section size %llu != %llu attributes * %u bytes", (ull)st, (ull)d->nt,
                   d->trec);
    if (!afmt__mul_ok(d->na, d->arec, &v) || v > sa)
        return BAD("array section size %llu < %llu arrays * %u bytes", (ull)sa, (ull)d->na,
                   d->arec);
    uint64_t total = d->hsize;
    if (!afmt__add_ok(total, sa, &total) || !afmt__add_ok(total, sb, &total) ||
        !afmt__add_ok(total, sc, &total) || !afmt__add_ok(total, st, &total) ||
        !afmt__add_ok(total, sh, &total) || !afmt__add_ok(total, 8, &total) || total != d->len)
        return BAD("header %u + sections %llu + %llu + %llu + %llu + heap %llu + checksum 8 "
                   "does not equal the footer length",
                   d->hsize, (ull)sa, (ull)sb, (ull)sc, (ull)st, (ull)sh);
    d->sa = sa;
    d->sh = sh;
    d->o_arr = d->hsize;
    d->o_blk = d->o_arr + sa;
    d->o_chk = d->o_blk + sb;
    d->o_att = d->o_chk + sc;
    d->hp = (heap_t){p + d->o_att + st, sh};
    return AFMT_OK;
}

/* The layer's own fields (id, chain pointer, data offset, ranks, flags). */
static int decode_layer(footer_dec *d, afmt_layer *L) {
    const uint8_t *p = d->p;
    L->layer_id = afmt__get_u64(p + FH_LAYER_ID);
    L->prev_offset = afmt__get_u64(p + FH_PREV_OFFSET);
    L->prev_length = afmt__get_u64(p + FH_PREV_LENGTH);
    L->data_offset = afmt__get_u64(p + FH_DATA_OFFSET);
    L->time_ns = afmt__get_u64(p + FH_TIME_NS);
    L->nranks = afmt__get_u32(p + FH_NRANKS);
    L->flags = afmt__get_u32(p + FH_FLAGS);
    L->next_array_id = afmt__get_u64(p + FH_NEXT_ARRAY_ID);
    L->version = d->version;
    if (d->version != 1) {
        L->seg_blocks = afmt__get_u64(p + FH_N_BLOCKS);
        L->seg_chunks = afmt__get_u64(p + FH_N_CHUNKS);
    }
    /* features (compatible extensions) and the reserved bytes are ignored by design. */
    if (L->flags & ~KNOWN_LAYER_FLAGS) return BAD("unknown layer flags 0x%x", L->flags);
    if (L->nranks == 0) return BAD("nranks is 0");
    if (L->next_array_id == 0) return BAD("next_array_id is 0");
    if (L->data_offset < AFMT_SUPER_REGION)
        return BAD("data_offset %llu is inside the superblock region", (ull)L->data_offset);
    if ((L->prev_offset == 0) != (L->prev_length == 0))
        return BAD("previous footer offset %llu with length %llu", (ull)L->prev_offset,
                   (ull)L->prev_length);
    uint64_t e = 0;
    if (L->prev_length != 0 &&
        (L->prev_offset < AFMT_SUPER_REGION || !afmt__add_ok(L->prev_offset, L->prev_length, &e) ||
         !afmt__add_ok(e, AFMT_TRAILER_SIZE, &e) || e > L->data_offset))
        return BAD("previous footer at %llu, length %llu (plus trailer) does not end before "
                   "data_offset %llu",
                   (ull)L->prev_offset, (ull)L->prev_length, (ull)L->data_offset);
    if ((L->flags & AFMT_LAYER_BASE) && L->prev_length != 0)
        /* A BASE layer starts its chain: following its pointer would merge layers that it
         * was written to replace. */
        return BAD("BASE layer has a previous footer (at %llu, length %llu)", (ull)L->prev_offset,
                   (ull)L->prev_length);
    return AFMT_OK;
}

/* Room for the records. Counts are <= len / 40 here, so the products fit in size_t. */
static int alloc_records(footer_dec *d, afmt_layer *L) {
    int v2 = d->version != 1;
    if ((d->na && !(L->arrays = calloc((size_t)d->na, sizeof *L->arrays))) ||
        (d->nb && !v2 && !(L->blocks = calloc((size_t)d->nb, sizeof *L->blocks))) ||
        (d->nb && v2 && !(L->segs = calloc((size_t)d->nb, sizeof *L->segs))) ||
        (d->nc && !(L->chunks = calloc((size_t)d->nc, sizeof *L->chunks))) ||
        (d->nt && !(L->attrs = calloc((size_t)d->nt, sizeof *L->attrs))))
        return afmt__fail(d->errmsg, AFMT_ENOMEM,
                          "layer footer (%llu bytes): out of memory for %llu "
                          "arrays, %llu blocks, %llu chunks, %llu attributes",
                          (ull)d->len, (ull)d->na, (ull)d->nb, (ull)d->nc, (ull)d->nt);
    L->n_arrays = d->na;
    L->n_blocks = v2 ? 0 : d->nb;
    L->n_segs = v2 ? d->nb : 0;
    L->n_chunks = d->nc;
    L->n_attrs = d->nt;
    return AFMT_OK;
}

/* The dims of DEFINE record i (r), at *pos: names, shapes, chunks; then its grid. */
static int decode_dims(const footer_dec *d, uint64_t i, afmt_array_rec *r, uint64_t *pos) {
    uint64_t nelem = 1, flen = 0;
    for (int k = 0; k < r->ndim; k++) {
        const uint8_t *dq = d->p + *pos;
        r->shape[k] = afmt__get_u64(dq);
        r->chunk[k] = afmt__get_u64(dq + 8);
        const char *why = heap_str(&d->hp, dq + 16, r->dims[k], AFMT_MAX_DIMNAME, &flen);
        if (why)
            return BAD("array record %llu (\"%s\"): dim %d name (length %llu) %s", (ull)i, r->name,
                       k, (ull)flen, why);
        if (r->shape[k] == 0 || r->chunk[k] == 0 || r->chunk[k] > r->shape[k])
            return BAD("array record %llu (\"%s\"): dim %d has shape %llu, chunk %llu "
                       "(need 1 <= chunk <= shape)",
                       (ull)i, r->name, k, (ull)r->shape[k], (ull)r->chunk[k]);
        if (!afmt__mul_ok(nelem, r->shape[k], &nelem))
            return BAD("array record %llu (\"%s\"): element count overflows u64 at dim %d", (ull)i,
                       r->name, k);
        *pos += d->adim;
    }
    afmt_grid g;
    uint64_t abytes = 0, cbytes = 0;
    size_t es = afmt__dtype_size(r->dtype);
    if (afmt__grid_init(&g, r->ndim, r->shape, r->chunk) != AFMT_OK ||
        afmt__grid_bytes(&g, es, &abytes, &cbytes) != AFMT_OK) {
        if (!afmt__mul_ok(nelem, es, &abytes))
            return BAD("array record %llu (\"%s\"): %llu elements of %zu bytes overflow u64",
                       (ull)i, r->name, (ull)nelem, es);
        return BAD("array record %llu (\"%s\"): a chunk of %llu bytes exceeds the limit of "
                   "%llu",
                   (ull)i, r->name, (ull)cbytes, (ull)AFMT_MAX_CHUNK_BYTES);
    }
    return AFMT_OK;
}

/* Array record i at *pos (before the end of the array section): the fixed part, then a
 * DELETE's zero fields or a DEFINE's checks and dims. */
static int decode_array(const footer_dec *d, const afmt_layer *L, uint64_t i, uint64_t *pos) {
    afmt_array_rec *r = &L->arrays[i];
    uint64_t end = d->o_blk;
    if (end - *pos < d->arec)
        return BAD("array record %llu: fixed part (%u bytes) at section offset %llu runs "
                   "past the array section",
                   (ull)i, d->arec, (ull)*pos);
    const uint8_t *q = d->p + *pos;
    r->id = afmt__get_u64(q);
    r->kind = afmt__get_u32(q + 8);
    r->flags = afmt__get_u32(q + 12);
    uint32_t dtype = afmt__get_u32(q + 16), ndim = afmt__get_u32(q + 20);
    memcpy(r->fill, q + 40, 8);
    uint64_t flen = 0;
    const char *why = heap_str(&d->hp, q + 24, r->name, AFMT_MAX_NAME, &flen);
    if (why)
        return BAD("array record %llu (id %llu): name (length %llu) %s", (ull)i, (ull)r->id,
                   (ull)flen, why);
    if (r->id == 0 || r->id >= L->next_array_id)
        return BAD("array record %llu (\"%s\"): id %llu not in 1..next_array_id-1 = %llu", (ull)i,
                   r->name, (ull)r->id, (ull)(L->next_array_id - 1));
    if (ndim > AFMT_MAX_NDIM)
        return BAD("array record %llu (\"%s\"): ndim %u > %d", (ull)i, r->name, ndim,
                   AFMT_MAX_NDIM);
    *pos += d->arec;
    /* ndim <= 32 and adim < 2^32: no overflow. */
    if (end - *pos < (uint64_t)ndim * d->adim)
        return BAD("array record %llu (\"%s\"): %u dims of %u bytes run past the array "
                   "section",
                   (ull)i, r->name, ndim, d->adim);
    r->ndim = (int)ndim;
    r->dtype = (afmt_dtype)(afmt__dtype_valid((int)dtype) ? dtype : 0);
    r->codec = d->version != 1 ? afmt__get_u32(q + 48) : AFMT_CODEC_UNSET;
    uint64_t poff = d->version != 1 ? afmt__get_u64(q + 56) : 0;
    uint64_t plen = d->version != 1 ? afmt__get_u64(q + 64) : 0;
    if (r->kind == AFMT_REC_DELETE) {
        static const uint8_t zero[8] = {0};
        if (ndim != 0 || dtype != 0 || r->flags != 0 || memcmp(r->fill, zero, 8) != 0 || plen != 0)
            return BAD("array record %llu (\"%s\"): DELETE record with nonzero ndim %u, "
                       "dtype %u, flags 0x%x, fill or codec parameters",
                       (ull)i, r->name, ndim, dtype, r->flags);
        r->codec = AFMT_CODEC_UNSET;
        return AFMT_OK;
    }
    if (r->kind != AFMT_REC_DEFINE)
        return BAD("array record %llu (\"%s\"): unknown kind %u", (ull)i, r->name, r->kind);
    if (!afmt__dtype_valid((int)dtype))
        return BAD("array record %llu (\"%s\"): invalid dtype %u", (ull)i, r->name, dtype);
    if (r->flags & ~KNOWN_ARRAY_FLAGS)
        return BAD("array record %llu (\"%s\"): unknown flags 0x%x", (ull)i, r->name, r->flags);
    for (size_t k = afmt__dtype_size(r->dtype); k < 8; k++)
        if (r->fill[k])
            return BAD("array record %llu (\"%s\"): fill value padding byte %zu is 0x%02x, "
                       "not 0",
                       (ull)i, r->name, k, r->fill[k]);
    uint64_t pend = 0;
    if (plen > AFMT_MAX_CODEC_PARAMS)
        return BAD("array record %llu (\"%s\"): %llu bytes of codec parameters, more than %d",
                   (ull)i, r->name, (ull)plen, AFMT_MAX_CODEC_PARAMS);
    if (!afmt__add_ok(poff, plen, &pend) || pend > d->hp.size)
        return BAD("array record %llu (\"%s\"): codec parameters [%llu, +%llu) outside the heap "
                   "of %llu bytes",
                   (ull)i, r->name, (ull)poff, (ull)plen, (ull)d->hp.size);
    r->params_len = (uint32_t)plen;
    if (plen) memcpy(r->params, d->hp.heap + poff, (size_t)plen);
    return decode_dims(d, i, r, pos);
}

static int decode_arrays(const footer_dec *d, afmt_layer *L) {
    uint64_t pos = d->o_arr, end = d->o_blk;
    for (uint64_t i = 0; i < L->n_arrays; i++) {
        int rc = decode_array(d, L, i, &pos);
        if (rc != AFMT_OK) return rc;
    }
    if (pos != end)
        return BAD("array section has %llu bytes after its %llu records", (ull)(end - pos),
                   (ull)L->n_arrays);
    return AFMT_OK;
}

static int decode_blocks(const footer_dec *d, afmt_layer *L) {
    for (uint64_t i = 0; i < d->nb; i++) {
        const uint8_t *q = d->p + d->o_blk + i * d->brec;
        afmt_block_rec *b = &L->blocks[i];
        afmt__block_rec_get(q, b);
        uint64_t e = 0;
        if (b->offset < L->data_offset || !afmt__add_ok(b->offset, b->stored_size, &e))
            return BAD("block record %llu: offset %llu + stored size %llu is not inside the "
                       "file after data_offset %llu",
                       (ull)i, (ull)b->offset, (ull)b->stored_size, (ull)L->data_offset);
        char why[256];
        if (afmt__block_rec_bad(b, i, L->nranks, why, sizeof why)) return BAD("%s", why);
    }
    return AFMT_OK;
}

/* The v2 root table (format.md 9.2, checks G1-G8). */
static int decode_segs(const footer_dec *d, afmt_layer *L) {
    uint64_t nb = 0, nc = 0;
    for (uint64_t i = 0; i < L->n_segs; i++) {
        const uint8_t *q = d->p + d->o_blk + i * d->brec;
        afmt_seg_rec *g = &L->segs[i];
        afmt__seg_rec_decode(q, g);
        uint64_t e = 0;
        if (g->offset < L->data_offset || !afmt__add_ok(g->offset, g->length, &e))
            return BAD("segment record %llu: offset %llu + length %llu is not inside the file "
                       "after data_offset %llu",
                       (ull)i, (ull)g->offset, (ull)g->length, (ull)L->data_offset);
        if (g->length < AFMT_SEG_MIN)
            return BAD("segment record %llu: length %llu < %d", (ull)i, (ull)g->length,
                       AFMT_SEG_MIN);
        uint64_t room = (g->length - (AFMT_SEG_HEADER + 8)) / CHUNK_REC;
        if (g->n_chunks == 0 || g->n_chunks > room || g->n_blocks > room)
            return BAD("segment record %llu: %llu blocks and %llu chunks do not fit in %llu "
                       "bytes (at least one chunk)",
                       (ull)i, (ull)g->n_blocks, (ull)g->n_chunks, (ull)g->length);
        afmt_chunk_rec first = {g->first_array, g->first_chunk, 0, 0, 0};
        afmt_chunk_rec last = {g->last_array, g->last_chunk, 0, 0, 0};
        int c = afmt__chunk_rec_cmp(&first, &last);
        if (c > 0 || (g->n_chunks == 1 && c != 0))
            return BAD("segment record %llu: first key (%llu, %llu) after last key (%llu, %llu) "
                       "or not equal to it with one chunk",
                       (ull)i, (ull)g->first_array, (ull)g->first_chunk, (ull)g->last_array,
                       (ull)g->last_chunk);
        if (g->first_array == 0 || g->last_array >= L->next_array_id)
            return BAD("segment record %llu: array ids %llu..%llu not in 1..next_array_id-1 = "
                       "%llu",
                       (ull)i, (ull)g->first_array, (ull)g->last_array,
                       (ull)(L->next_array_id - 1));
        if (g->writer >= L->nranks)
            return BAD("segment record %llu: writer %u of nranks %u", (ull)i, g->writer, L->nranks);
        if (i > 0) {
            afmt_chunk_rec prev = {L->segs[i - 1].first_array, L->segs[i - 1].first_chunk, 0, 0, 0};
            if (afmt__chunk_rec_cmp(&prev, &first) > 0)
                return BAD("segment record %llu: not sorted by first key after record %llu", (ull)i,
                           (ull)(i - 1));
        }
        if (!afmt__add_ok(nb, g->n_blocks, &nb) || !afmt__add_ok(nc, g->n_chunks, &nc))
            return BAD("segment record %llu: the counts overflow", (ull)i);
    }
    if (nb != L->seg_blocks || nc != L->seg_chunks)
        return BAD("the segments hold %llu blocks and %llu chunks, the header says %llu and %llu",
                   (ull)nb, (ull)nc, (ull)L->seg_blocks, (ull)L->seg_chunks);
    return AFMT_OK;
}

static int decode_chunks(const footer_dec *d, afmt_layer *L) {
    for (uint64_t i = 0; i < d->nc; i++) {
        const uint8_t *q = d->p + d->o_chk + i * d->crec;
        afmt_chunk_rec *c = &L->chunks[i];
        afmt__chunk_rec_get(q, c);
        if (c->array_id == 0 || c->array_id >= L->next_array_id)
            return BAD("chunk record %llu: array id %llu not in 1..next_array_id-1 = %llu", (ull)i,
                       (ull)c->array_id, (ull)(L->next_array_id - 1));
        if (i > 0 && afmt__chunk_rec_cmp(&L->chunks[i - 1], c) >= 0)
            return BAD("chunk record %llu (array %llu, chunk %llu) does not sort strictly "
                       "after record %llu (array %llu, chunk %llu)",
                       (ull)i, (ull)c->array_id, (ull)c->chunk_index, (ull)(i - 1),
                       (ull)L->chunks[i - 1].array_id, (ull)L->chunks[i - 1].chunk_index);
        if (c->block >= d->nb)
            return BAD("chunk record %llu references block %llu of %llu", (ull)i, (ull)c->block,
                       (ull)d->nb);
        uint64_t e = 0;
        if (c->size == 0 || !afmt__add_ok(c->offset, c->size, &e) ||
            e > L->blocks[c->block].raw_size)
            return BAD("chunk record %llu: bytes [%llu, +%llu) are not inside block %llu of "
                       "raw size %llu",
                       (ull)i, (ull)c->offset, (ull)c->size, (ull)c->block,
                       (ull)L->blocks[c->block].raw_size);
    }
    return AFMT_OK;
}

/* One attribute record: key, owner, dtype, and its value copied out of the heap. */
static int decode_attr(const footer_dec *d, const afmt_layer *L, uint64_t i, afmt_attr_rec *a) {
    const uint8_t *q = d->p + d->o_att + i * d->trec;
    a->array_id = afmt__get_u64(q);
    uint64_t flen = 0;
    const char *why = heap_str(&d->hp, q + 8, a->key, AFMT_MAX_NAME, &flen);
    if (why) return BAD("attribute record %llu: key (length %llu) %s", (ull)i, (ull)flen, why);
    if (a->array_id != AFMT_ATTR_FILE && a->array_id != AFMT_ATTR_LAYER &&
        a->array_id >= L->next_array_id)
        return BAD("attribute record %llu (\"%s\"): array id %llu not in 1..%llu", (ull)i, a->key,
                   (ull)a->array_id, (ull)(L->next_array_id - 1));
    uint32_t dtype = afmt__get_u32(q + 24);
    if (!afmt__dtype_valid((int)dtype))
        return BAD("attribute record %llu (\"%s\"): invalid dtype %u", (ull)i, a->key, dtype);
    a->dtype = (afmt_dtype)dtype;
    a->n = afmt__get_u64(q + 32);
    uint64_t voff = afmt__get_u64(q + 40), vlen = afmt__get_u64(q + 48), want = 0, e = 0;
    if (!afmt__mul_ok(a->n, afmt__dtype_size(a->dtype), &want) || vlen != want)
        return BAD("attribute record %llu (\"%s\"): %llu values of %s need %llu bytes, not "
                   "%llu",
                   (ull)i, a->key, (ull)a->n, afmt__dtype_name(a->dtype),
                   (ull)(a->n * afmt__dtype_size(a->dtype)), (ull)vlen);
    if (!afmt__add_ok(voff, vlen, &e) || e > d->sh)
        return BAD("attribute record %llu (\"%s\"): value [%llu, +%llu) outside the heap of "
                   "%llu bytes",
                   (ull)i, a->key, (ull)voff, (ull)vlen, (ull)d->sh);
    if (vlen) {
        if (!(a->value = malloc((size_t)vlen)))
            return afmt__fail(d->errmsg, AFMT_ENOMEM, "layer footer: out of memory");
        memcpy(a->value, d->hp.heap + voff, (size_t)vlen);
    }
    return AFMT_OK;
}

int afmt__footer_decode(const uint8_t *p, uint64_t len, afmt_layer *L, char *errmsg) {
    memset(L, 0, sizeof *L);
    footer_dec d;
    memset(&d, 0, sizeof d);
    d.p = p;
    d.len = len;
    d.errmsg = errmsg;
    int rc = decode_header(&d);
    if (rc == AFMT_OK) rc = decode_sections(&d);
    if (rc == AFMT_OK) rc = decode_layer(&d, L);
    if (rc == AFMT_OK) rc = alloc_records(&d, L);
    if (rc == AFMT_OK) rc = decode_arrays(&d, L);
    if (rc == AFMT_OK) rc = d.version != 1 ? decode_segs(&d, L) : decode_blocks(&d, L);
    if (rc == AFMT_OK) rc = decode_chunks(&d, L);
    for (uint64_t i = 0; rc == AFMT_OK && i < d.nt; i++) rc = decode_attr(&d, L, i, &L->attrs[i]);
    if (rc != AFMT_OK) afmt__layer_free(L);
    return rc;
}
