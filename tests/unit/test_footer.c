/* test_footer.c - layer footer encode/decode: round trips and rejection of every kind of
 * damage (the decoder must never crash, over-read or accept a damaged footer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"
#include "format/footer.h"
#include "format/superblock.h"
#include "testutil.h"

/* Header offsets of format version 1 (docs/format.md). */
enum {
    H_VERSION = 8,
    H_HEADER_SIZE = 12,
    H_PREV_OFFSET = 24,
    H_PREV_LENGTH = 32,
    H_DATA_OFFSET = 40,
    H_NRANKS = 56,
    H_FLAGS = 60,
    H_NEXT_ARRAY_ID = 64,
    H_N_ARRAYS = 72,
    H_N_BLOCKS = 80,
    H_N_CHUNKS = 88,
    H_N_ATTRS = 96,
    H_ARRAYS_SIZE = 104,
    H_BLOCKS_SIZE = 112,
    H_CHUNKS_SIZE = 120,
    H_ATTRS_SIZE = 128,
    H_HEAP_SIZE = 136,
    H_ARRAY_REC_SIZE = 144,
    H_ARRAY_DIM_SIZE = 148,
    H_BLOCK_REC_SIZE = 152,
    H_CHUNK_REC_SIZE = 156,
    H_ATTR_REC_SIZE = 160,
    H_FEATURES = 164,
    H_SIZE = 176
};

static void resum(uint8_t *p, size_t len) {
    afmt__put_u64(p + len - 8, afmt__checksum(p, len - 8));
}

static void set_attr(afmt_attr_rec *a, uint64_t array_id, const char *key, afmt_dtype t, uint64_t n,
                     const void *v) {
    memset(a, 0, sizeof *a);
    a->array_id = array_id;
    snprintf(a->key, sizeof a->key, "%s", key);
    a->dtype = t;
    a->n = n;
    size_t bytes = (size_t)n * afmt__dtype_size(t);
    a->value = bytes ? malloc(bytes) : NULL;
    if (bytes) memcpy(a->value, v, bytes);
}

static void define(afmt_array_rec *r, uint64_t id, const char *name, afmt_dtype t, int ndim,
                   const uint64_t *shape, const uint64_t *chunk) {
    memset(r, 0, sizeof *r);
    r->id = id;
    r->kind = AFMT_REC_DEFINE;
    r->dtype = t;
    r->ndim = ndim;
    snprintf(r->name, sizeof r->name, "%s", name);
    for (int d = 0; d < ndim; d++) {
        r->shape[d] = shape[d];
        r->chunk[d] = chunk[d];
        snprintf(r->dims[d], sizeof r->dims[d], "dim%d", d);
    }
}

/* A small layer: 1 array of 2 dims, 2 blocks, 3 chunks, 2 attributes. */
static void small_layer(afmt_layer *L) {
    memset(L, 0, sizeof *L);
    L->layer_id = 2;
    L->prev_offset = 5000;
    L->prev_length = 300;
    L->data_offset = 6000;
    L->time_ns = 1700000000123456789ull;
    L->nranks = 2;
    L->next_array_id = 4;
    L->n_arrays = 1;
    L->arrays = calloc(1, sizeof *L->arrays);
    uint64_t shape[2] = {10, 6}, chunk[2] = {5, 6};
    define(&L->arrays[0], 3, "temp", AFMT_FLOAT32, 2, shape, chunk);
    L->arrays[0].flags = AFMT_ARRAY_SHUFFLE;
    L->n_blocks = 2;
    L->blocks = calloc(2, sizeof *L->blocks);
    L->blocks[0] = (afmt_block_rec){6000, 100, 240, 0x1234, AFMT_CODEC_LZ4, 0};
    L->blocks[1] = (afmt_block_rec){6100, 120, 120, 0x5678, AFMT_CODEC_NONE, 1};
    L->n_chunks = 3;
    L->chunks = calloc(3, sizeof *L->chunks);
    L->chunks[0] = (afmt_chunk_rec){3, 0, 0, 0, 120};
    L->chunks[1] = (afmt_chunk_rec){3, 1, 1, 0, 120};
    L->chunks[2] = (afmt_chunk_rec){3, 7, 0, 120, 120};
    L->n_attrs = 2;
    L->attrs = calloc(2, sizeof *L->attrs);
    set_attr(&L->attrs[0], AFMT_ATTR_FILE, "units", AFMT_UINT8, 1, "K");
    double v[2] = {1.5, -2};
    set_attr(&L->attrs[1], 3, "range", AFMT_FLOAT64, 2, v);
}

static uint8_t *encode(const afmt_layer *L, size_t *len) {
    afmt_buf b;
    afmt__buf_init(&b);
    assert_int_equal(afmt__footer_encode(L, &b), AFMT_OK);
    *len = b.len;
    return b.data;
}

static void assert_layers_equal(const afmt_layer *a, const afmt_layer *b) {
    assert_int_equal(a->layer_id, b->layer_id);
    assert_int_equal(a->prev_offset, b->prev_offset);
    assert_int_equal(a->prev_length, b->prev_length);
    assert_int_equal(a->data_offset, b->data_offset);
    assert_int_equal(a->time_ns, b->time_ns);
    assert_int_equal(a->next_array_id, b->next_array_id);
    assert_int_equal(a->nranks, b->nranks);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->n_arrays, b->n_arrays);
    for (uint64_t i = 0; i < a->n_arrays; i++) {
        const afmt_array_rec *x = &a->arrays[i], *y = &b->arrays[i];
        assert_int_equal(x->id, y->id);
        assert_int_equal(x->kind, y->kind);
        assert_string_equal(x->name, y->name);
        if (x->kind == AFMT_REC_DELETE) continue;
        assert_int_equal(x->flags, y->flags);
        assert_int_equal(x->dtype, y->dtype);
        assert_int_equal(x->ndim, y->ndim);
        size_t es = afmt__dtype_size(x->dtype);
        assert_memory_equal(x->fill, y->fill, es);
        for (size_t k = es; k < 8; k++) assert_int_equal(y->fill[k], 0);
        for (int d = 0; d < x->ndim; d++) {
            assert_int_equal(x->shape[d], y->shape[d]);
            assert_int_equal(x->chunk[d], y->chunk[d]);
            assert_string_equal(x->dims[d], y->dims[d]);
        }
    }
    assert_int_equal(a->n_blocks, b->n_blocks);
    for (uint64_t i = 0; i < a->n_blocks; i++)
        assert_memory_equal(&a->blocks[i], &b->blocks[i], sizeof a->blocks[i]);
    assert_int_equal(a->n_chunks, b->n_chunks);
    for (uint64_t i = 0; i < a->n_chunks; i++)
        assert_memory_equal(&a->chunks[i], &b->chunks[i], sizeof a->chunks[i]);
    assert_int_equal(a->n_attrs, b->n_attrs);
    for (uint64_t i = 0; i < a->n_attrs; i++) {
        const afmt_attr_rec *x = &a->attrs[i], *y = &b->attrs[i];
        assert_int_equal(x->array_id, y->array_id);
        assert_string_equal(x->key, y->key);
        assert_int_equal(x->dtype, y->dtype);
        assert_int_equal(x->n, y->n);
        if (x->n) assert_memory_equal(x->value, y->value, x->n * afmt__dtype_size(x->dtype));
    }
}

static void roundtrip(const afmt_layer *L) {
    size_t len;
    uint8_t *p = encode(L, &len);
    afmt_layer D;
    char msg[AFMT_ERRMSG_MAX];
    int rc = afmt__footer_decode(p, len, &D, msg);
    if (rc != AFMT_OK) fail_msg("decode: %d %s", rc, msg);
    assert_layers_equal(L, &D);
    /* Encoding the decoded layer gives the same bytes: the encoding is canonical. */
    size_t len2;
    uint8_t *p2 = encode(&D, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(p, p2, len);
    assert_int_equal(afmt__get_u64(p + len - 8), afmt__checksum(p, len - 8));
    assert_int_equal(afmt__footer_checksum(p, len), afmt__checksum(p, len));
    free(p);
    free(p2);
    afmt__layer_free(&D);
}

static void test_roundtrip_small(void **state) {
    (void)state;
    afmt_layer L;
    small_layer(&L);
    roundtrip(&L);
    afmt__layer_free(&L);
}

static void test_roundtrip_empty(void **state) {
    (void)state;
    afmt_layer L;
    memset(&L, 0, sizeof L);
    L.layer_id = 1;
    L.data_offset = AFMT_SUPER_REGION;
    L.nranks = 1;
    L.next_array_id = 1;
    size_t len;
    uint8_t *p = encode(&L, &len);
    assert_int_equal(len, H_SIZE + 8);
    free(p);
    roundtrip(&L);
}

static void test_roundtrip_big(void **state) {
    (void)state;
    afmt_layer L;
    memset(&L, 0, sizeof L);
    L.layer_id = 77;
    L.prev_offset = 0; /* a BASE layer starts its chain */
    L.prev_length = 0;
    L.data_offset = 1ull << 40;
    L.nranks = 100000;
    L.flags = AFMT_LAYER_BASE;
    L.next_array_id = 100;
    L.n_arrays = 6;
    L.arrays = calloc(L.n_arrays, sizeof *L.arrays);
    char longname[AFMT_MAX_NAME + 1];
    memset(longname, 'n', AFMT_MAX_NAME);
    longname[AFMT_MAX_NAME] = 0;
    define(&L.arrays[0], 1, "scalar", AFMT_FLOAT64, 0, NULL, NULL);
    double pi = 3.14159;
    memcpy(L.arrays[0].fill, &pi, 8); /* little-endian host assumed by this test */
    uint64_t s1[1] = {1000}, c1[1] = {7};
    define(&L.arrays[1], 2, longname, AFMT_INT16, 1, s1, c1);
    L.arrays[1].fill[0] = 0xff;
    L.arrays[1].fill[1] = 0x7f;
    uint64_t s5[5] = {2, 3, 4, 5, 6}, c5[5] = {1, 3, 2, 5, 4};
    define(&L.arrays[2], 50, "five", AFMT_BOOL, 5, s5, c5);
    uint64_t s32[32], c32[32];
    for (int d = 0; d < 32; d++) s32[d] = c32[d] = 1 + (uint64_t)(d % 2);
    s32[31] = UINT64_MAX / (1ull << 20); /* large, still within u64 elements */
    define(&L.arrays[3], 60, "thirtytwo", AFMT_UINT64, 32, s32, c32);
    for (int d = 0; d < 32; d++) {
        memset(L.arrays[3].dims[d], 'a' + d % 26, AFMT_MAX_DIMNAME);
        L.arrays[3].dims[d][AFMT_MAX_DIMNAME] = 0;
    }
    memset(&L.arrays[4], 0, sizeof L.arrays[4]);
    L.arrays[4].id = 5;
    L.arrays[4].kind = AFMT_REC_DELETE;
    snprintf(L.arrays[4].name, sizeof L.arrays[4].name, "gone");
    memset(&L.arrays[5], 0, sizeof L.arrays[5]);
    L.arrays[5].id = 99;
    L.arrays[5].kind = AFMT_REC_DELETE;
    memcpy(L.arrays[5].name, longname, sizeof longname);

    L.n_blocks = 300;
    L.blocks = calloc(L.n_blocks, sizeof *L.blocks);
    for (uint64_t i = 0; i < L.n_blocks; i++)
        L.blocks[i] = (afmt_block_rec){
            L.data_offset + i * 5000, 5000, 1u << 20, i * 31, (uint32_t)(i % 3 == 0 ? 300 : 2),
            (uint32_t)(i % 1000)};
    L.n_chunks = 20000;
    L.chunks = calloc(L.n_chunks, sizeof *L.chunks);
    for (uint64_t i = 0; i < L.n_chunks; i++)
        L.chunks[i] = (afmt_chunk_rec){2 + i / 10000, (i % 10000) * 3, i % 300, (i % 50) * 8, 8};

    L.n_attrs = 5;
    L.attrs = calloc(L.n_attrs, sizeof *L.attrs);
    set_attr(&L.attrs[0], AFMT_ATTR_FILE, "title", AFMT_UINT8, 5, "hello");
    set_attr(&L.attrs[1], AFMT_ATTR_LAYER, "provenance", AFMT_UINT8, 11, "afmt 0.1.0 ");
    int32_t iv[3] = {-1, 0, 1};
    set_attr(&L.attrs[2], 2, longname, AFMT_INT32, 3, iv);
    set_attr(&L.attrs[3], 50, "empty", AFMT_UINT8, 0, NULL);
    uint64_t u = UINT64_MAX;
    set_attr(&L.attrs[4], 60, "max", AFMT_UINT64, 1, &u);
    roundtrip(&L);
    afmt__layer_free(&L);
}

/* Every single-byte change is caught (by the checksum first) and gives ECORRUPT. */
static void test_flip_every_byte(void **state) {
    (void)state;
    afmt_layer L;
    small_layer(&L);
    size_t len;
    uint8_t *p = encode(&L, &len);
    afmt__layer_free(&L);
    uint8_t *q = malloc(len);
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    for (size_t m = 0; m < sizeof masks; m++)
        for (size_t i = 0; i < len; i++) {
            memcpy(q, p, len);
            q[i] ^= masks[m];
            afmt_layer D;
            char msg[AFMT_ERRMSG_MAX];
            int rc = afmt__footer_decode(q, len, &D, msg);
            if (rc != AFMT_ECORRUPT) fail_msg("byte %zu ^ 0x%02x: rc %d", i, masks[m], rc);
            assert_null(D.arrays);
            assert_int_equal(D.n_chunks, 0);
        }
    free(q);
    free(p);
}

static void test_truncation(void **state) {
    (void)state;
    afmt_layer L;
    small_layer(&L);
    size_t len;
    uint8_t *p = encode(&L, &len);
    afmt__layer_free(&L);
    for (size_t n = 0; n < len; n++) {
        /* An exact-size copy, so ASan catches any read past n. */
        uint8_t *q = malloc(n ? n : 1);
        memcpy(q, p, n);
        afmt_layer D;
        char msg[AFMT_ERRMSG_MAX];
        assert_int_equal(afmt__footer_decode(q, n, &D, msg), AFMT_ECORRUPT);
        /* The tail of a longer footer with a "valid" checksum of its own. */
        if (n >= 8) {
            resum(q, n);
            assert_int_equal(afmt__footer_decode(q, n, &D, msg), AFMT_ECORRUPT);
        }
        free(q);
    }
    free(p);
}

static void test_newer_version(void **state) {
    (void)state;
    afmt_layer L;
    small_layer(&L);
    size_t len;
    uint8_t *p = encode(&L, &len);
    afmt__layer_free(&L);
    afmt__put_u32(p + H_VERSION, AFMT_FORMAT_VERSION + 1);
    resum(p, len);
    afmt_layer D;
    char msg[AFMT_ERRMSG_MAX];
    assert_int_equal(afmt__footer_decode(p, len, &D, msg), AFMT_EVERSION);
    assert_non_null(strstr(msg, "version 3"));
    /* Without the re-checksum it is damage, not a newer version. */
    afmt__put_u32(p + H_VERSION, AFMT_FORMAT_VERSION + 1);
    p[len - 1] ^= 1;
    assert_int_equal(afmt__footer_decode(p, len, &D, msg), AFMT_ECORRUPT);
    free(p);
}

/* ---- one bad field at a time, re-checksummed so the structural check must catch it ---- */

typedef struct {
    uint8_t *p;
    size_t len;
    uint64_t arr, blk, chk, att, heap; /* section offsets */
} enc;

static enc enc_small(void) {
    afmt_layer L;
    small_layer(&L);
    enc e;
    e.p = encode(&L, &e.len);
    afmt__layer_free(&L);
    e.arr = H_SIZE;
    e.blk = e.arr + afmt__get_u64(e.p + H_ARRAYS_SIZE);
    e.chk = e.blk + afmt__get_u64(e.p + H_BLOCKS_SIZE);
    e.att = e.chk + afmt__get_u64(e.p + H_CHUNKS_SIZE);
    e.heap = e.att + afmt__get_u64(e.p + H_ATTRS_SIZE);
    return e;
}

typedef enum { P32, P64, P8 } width;

/* Encodes the small layer, patches one field, re-checksums and expects rc with a message
 * containing want (NULL: any). */
static void expect_patch(const char *what, uint64_t where, width w, uint64_t val, int rc,
                         const char *want) {
    enc e = enc_small();
    uint64_t off = 0;
    /* where is section-relative: high byte selects the section. */
    uint64_t sect = where >> 56, rel = where & ((1ull << 56) - 1);
    uint64_t base[] = {0, e.arr, e.blk, e.chk, e.att, e.heap};
    off = base[sect] + rel;
    assert_true(off + (w == P64 ? 8 : w == P32 ? 4 : 1) <= e.len - 8);
    if (w == P64) afmt__put_u64(e.p + off, val);
    if (w == P32) afmt__put_u32(e.p + off, (uint32_t)val);
    if (w == P8) e.p[off] = (uint8_t)val;
    resum(e.p, e.len);
    afmt_layer D;
    char msg[AFMT_ERRMSG_MAX] = "";
    int got = afmt__footer_decode(e.p, e.len, &D, msg);
    if (got != rc) fail_msg("%s: rc %d, want %d (%s)", what, got, rc, msg);
    if (rc != AFMT_OK && want && !strstr(msg, want))
        fail_msg("%s: message \"%s\" lacks \"%s\"", what, msg, want);
    if (rc == AFMT_OK)
        afmt__layer_free(&D);
    else
        assert_null(D.arrays);
    free(e.p);
}

#define HDR(x)    ((uint64_t)(x))
#define ARR(x)    ((1ull << 56) | (uint64_t)(x))
#define BLK(i, x) ((2ull << 56) | (uint64_t)((i)*40 + (x)))
#define CHK(i, x) ((3ull << 56) | (uint64_t)((i)*40 + (x)))
#define ATT(i, x) ((4ull << 56) | (uint64_t)((i)*56 + (x)))
#define HEAP(x)   ((5ull << 56) | (uint64_t)(x))

static void test_bad_header(void **state) {
    (void)state;
    expect_patch("magic", HDR(0), P8, 'X', AFMT_ECORRUPT, "bad magic");
    expect_patch("version 0", HDR(H_VERSION), P32, 0, AFMT_ECORRUPT, "version 0");
    expect_patch("header size small", HDR(H_HEADER_SIZE), P32, 100, AFMT_ECORRUPT, "header size");
    expect_patch("header size huge", HDR(H_HEADER_SIZE), P32, 0xffffffffu, AFMT_ECORRUPT,
                 "header size");
    expect_patch("header size +8", HDR(H_HEADER_SIZE), P32, H_SIZE + 8, AFMT_ECORRUPT,
                 "does not equal");
    expect_patch("array rec size", HDR(H_ARRAY_REC_SIZE), P32, 47, AFMT_ECORRUPT,
                 "array record size");
    expect_patch("dim rec size", HDR(H_ARRAY_DIM_SIZE), P32, 31, AFMT_ECORRUPT, "dim record size");
    expect_patch("block rec size", HDR(H_BLOCK_REC_SIZE), P32, 39, AFMT_ECORRUPT,
                 "block record size");
    expect_patch("chunk rec size", HDR(H_CHUNK_REC_SIZE), P32, 0, AFMT_ECORRUPT,
                 "chunk record size");
    expect_patch("attr rec size", HDR(H_ATTR_REC_SIZE), P32, 55, AFMT_ECORRUPT,
                 "attribute record size");
    expect_patch("chunk rec size bigger", HDR(H_CHUNK_REC_SIZE), P32, 48, AFMT_ECORRUPT,
                 "chunk section size");
    /* Counts that overflow count * record size, or exceed the sections. */
    expect_patch("n_blocks overflow", HDR(H_N_BLOCKS), P64, UINT64_MAX / 8, AFMT_ECORRUPT,
                 "block section");
    expect_patch("n_chunks overflow", HDR(H_N_CHUNKS), P64, (UINT64_MAX / 40) + 1, AFMT_ECORRUPT,
                 "chunk section");
    expect_patch("n_chunks huge", HDR(H_N_CHUNKS), P64, 1ull << 40, AFMT_ECORRUPT, "chunk section");
    expect_patch("n_attrs huge", HDR(H_N_ATTRS), P64, UINT64_MAX, AFMT_ECORRUPT,
                 "attribute section");
    expect_patch("n_arrays huge", HDR(H_N_ARRAYS), P64, UINT64_MAX, AFMT_ECORRUPT, "array section");
    expect_patch("n_arrays 2", HDR(H_N_ARRAYS), P64, 2, AFMT_ECORRUPT, "array record 1");
    expect_patch("n_arrays 0", HDR(H_N_ARRAYS), P64, 0, AFMT_ECORRUPT, "bytes after");
    expect_patch("heap size", HDR(H_HEAP_SIZE), P64, 1, AFMT_ECORRUPT, "does not equal");
    expect_patch("heap size wrap", HDR(H_HEAP_SIZE), P64, UINT64_MAX - 100, AFMT_ECORRUPT,
                 "does not equal");
    expect_patch("arrays size wrap", HDR(H_ARRAYS_SIZE), P64, UINT64_MAX, AFMT_ECORRUPT, NULL);
    expect_patch("blocks size", HDR(H_BLOCKS_SIZE), P64, 40, AFMT_ECORRUPT, "block section");
    expect_patch("layer flags", HDR(H_FLAGS), P32, 0x10, AFMT_ECORRUPT, "layer flags 0x10");
    expect_patch("nranks 0", HDR(H_NRANKS), P32, 0, AFMT_ECORRUPT, "nranks");
    expect_patch("next id 0", HDR(H_NEXT_ARRAY_ID), P64, 0, AFMT_ECORRUPT, "next_array_id");
    expect_patch("next id too small", HDR(H_NEXT_ARRAY_ID), P64, 3, AFMT_ECORRUPT, "id 3");
    expect_patch("data offset", HDR(H_DATA_OFFSET), P64, 100, AFMT_ECORRUPT, "data_offset");
    expect_patch("prev half", HDR(H_PREV_LENGTH), P64, 0, AFMT_ECORRUPT, "previous footer");
    expect_patch("prev overlaps data", HDR(H_PREV_LENGTH), P64, 1000, AFMT_ECORRUPT,
                 "previous footer");
    expect_patch("prev wraps", HDR(H_PREV_LENGTH), P64, UINT64_MAX - 10, AFMT_ECORRUPT,
                 "previous footer");
    expect_patch("prev in superblock", HDR(H_PREV_OFFSET), P64, 10, AFMT_ECORRUPT,
                 "previous footer");
    /* Compatible: unknown feature bits and reserved bytes are ignored. */
    expect_patch("features", HDR(H_FEATURES), P32, 0xffffffffu, AFMT_OK, NULL);
    expect_patch("reserved", HDR(170), P8, 0x5a, AFMT_OK, NULL);
}

/* Array record of the small layer: fixed part at ARR(0), dims at ARR(48), ARR(80). Heap:
 * "temp" at 0, "dim0" at 4, "dim1" at 8, then attribute keys and values. */
static void test_bad_array(void **state) {
    (void)state;
    expect_patch("id 0", ARR(0), P64, 0, AFMT_ECORRUPT, "id 0 not in");
    expect_patch("id >= next", ARR(0), P64, 4, AFMT_ECORRUPT, "id 4 not in");
    expect_patch("kind", ARR(8), P32, 3, AFMT_ECORRUPT, "unknown kind 3");
    expect_patch("kind 0", ARR(8), P32, 0, AFMT_ECORRUPT, "unknown kind 0");
    expect_patch("flags", ARR(12), P32, 2, AFMT_ECORRUPT, "unknown flags 0x2");
    expect_patch("dtype", ARR(16), P32, 11, AFMT_ECORRUPT, "invalid dtype 11");
    expect_patch("dtype huge", ARR(16), P32, 0x80000000u, AFMT_ECORRUPT, "invalid dtype");
    expect_patch("ndim 33", ARR(20), P32, 33, AFMT_ECORRUPT, "ndim 33");
    expect_patch("ndim huge", ARR(20), P32, 0xffffffffu, AFMT_ECORRUPT, "ndim");
    expect_patch("ndim 3", ARR(20), P32, 3, AFMT_ECORRUPT, "run past");
    expect_patch("ndim 1", ARR(20), P32, 1, AFMT_ECORRUPT, "bytes after");
    expect_patch("name offset", ARR(24), P64, 1000, AFMT_ECORRUPT, "outside the heap");
    expect_patch("name offset wrap", ARR(24), P64, UINT64_MAX - 1, AFMT_ECORRUPT,
                 "outside the heap");
    expect_patch("name length 0", ARR(32), P64, 0, AFMT_ECORRUPT, "length 0");
    expect_patch("name length 256", ARR(32), P64, 256, AFMT_ECORRUPT, "length 256");
    expect_patch("name length huge", ARR(32), P64, UINT64_MAX, AFMT_ECORRUPT, "out of range");
    expect_patch("name NUL", HEAP(1), P8, 0, AFMT_ECORRUPT, "NUL");
    expect_patch("fill padding", ARR(40 + 5), P8, 1, AFMT_ECORRUPT, "padding byte 5");
    expect_patch("shape 0", ARR(48), P64, 0, AFMT_ECORRUPT, "dim 0 has shape 0");
    expect_patch("chunk 0", ARR(56), P64, 0, AFMT_ECORRUPT, "chunk 0");
    expect_patch("chunk > shape", ARR(80 + 8), P64, 7, AFMT_ECORRUPT, "dim 1 has shape 6, chunk 7");
    expect_patch("dim name length 64", ARR(48 + 24), P64, 64, AFMT_ECORRUPT, "dim 0 name");
    expect_patch("dim name length 0", ARR(80 + 24), P64, 0, AFMT_ECORRUPT, "dim 1 name");
    expect_patch("dim name offset", ARR(80 + 16), P64, 1u << 20, AFMT_ECORRUPT, "outside");
    expect_patch("dim name NUL", HEAP(9), P8, 0, AFMT_ECORRUPT, "NUL");
    expect_patch("shape overflow", ARR(48), P64, UINT64_MAX, AFMT_ECORRUPT, "overflows");
    /* A valid change stays valid: the test harness itself is not what fails. */
    expect_patch("fill byte", ARR(40 + 3), P8, 0x7f, AFMT_OK, NULL);
}

static void test_bad_delete_record(void **state) {
    (void)state;
    afmt_layer L;
    small_layer(&L);
    L.arrays[0].kind = AFMT_REC_DELETE;
    size_t len;
    uint8_t *p = encode(&L, &len);
    afmt__layer_free(&L);
    afmt_layer D;
    char msg[AFMT_ERRMSG_MAX];
    assert_int_equal(afmt__footer_decode(p, len, &D, msg), AFMT_OK);
    assert_int_equal(D.arrays[0].kind, AFMT_REC_DELETE);
    assert_string_equal(D.arrays[0].name, "temp");
    assert_int_equal(D.arrays[0].ndim, 0);
    afmt__layer_free(&D);
    static const size_t fields[] = {12, 16, 40, 47};
    for (size_t f = 0; f < 4; f++) {
        uint8_t *q = malloc(len);
        memcpy(q, p, len);
        q[H_SIZE + fields[f]] = 1;
        resum(q, len);
        assert_int_equal(afmt__footer_decode(q, len, &D, msg), AFMT_ECORRUPT);
        assert_non_null(strstr(msg, "DELETE"));
        free(q);
    }
    free(p);
}

static void test_bad_blocks_chunks(void **state) {
    (void)state;
    expect_patch("block offset < data", BLK(0, 0), P64, 5999, AFMT_ECORRUPT,
                 "block record 0: offset 5999");
    expect_patch("block size wrap", BLK(1, 8), P64, UINT64_MAX, AFMT_ECORRUPT, "block record 1");
    expect_patch("codec 0 sizes", BLK(0, 32), P32, 0, AFMT_ECORRUPT, "codec 0");
    expect_patch("rank", BLK(1, 36), P32, 2, AFMT_ECORRUPT, "rank 2 of nranks 2");
    /* Unknown codecs decode; the read fails later with ECODEC. */
    expect_patch("unknown codec", BLK(0, 32), P32, 0xdeadbeefu, AFMT_OK, NULL);
    expect_patch("chunk block", CHK(1, 16), P64, 9, AFMT_ECORRUPT,
                 "chunk record 1 references block 9 of 2");
    expect_patch("chunk block huge", CHK(2, 16), P64, UINT64_MAX, AFMT_ECORRUPT, "references");
    expect_patch("chunk past block", CHK(2, 24), P64, 121, AFMT_ECORRUPT, "not inside block 0");
    expect_patch("chunk size past", CHK(0, 32), P64, 241, AFMT_ECORRUPT, "not inside block 0");
    expect_patch("chunk wrap", CHK(2, 24), P64, UINT64_MAX - 50, AFMT_ECORRUPT, "not inside");
    expect_patch("chunk size 0", CHK(1, 32), P64, 0, AFMT_ECORRUPT, "not inside");
    expect_patch("chunk order", CHK(1, 8), P64, 8, AFMT_ECORRUPT, "does not sort");
    expect_patch("chunk duplicate", CHK(1, 8), P64, 0, AFMT_ECORRUPT, "does not sort");
    expect_patch("chunk of another array", CHK(0, 0), P64, 1, AFMT_OK, NULL);
    expect_patch("chunk array id 0", CHK(0, 0), P64, 0, AFMT_ECORRUPT, "array id 0");
    expect_patch("chunk array id big", CHK(2, 0), P64, 4, AFMT_ECORRUPT, "array id 4");
}

/* Attribute 0: file "units" UINT8 n=1; attribute 1: array 3 "range" FLOAT64 n=2. */
static void test_bad_attrs(void **state) {
    (void)state;
    expect_patch("attr array id", ATT(1, 0), P64, 4, AFMT_ECORRUPT, "array id 4");
    expect_patch("attr layer scope", ATT(1, 0), P64, UINT64_MAX, AFMT_OK, NULL);
    expect_patch("attr key length 0", ATT(0, 16), P64, 0, AFMT_ECORRUPT, "key (length 0)");
    expect_patch("attr key length 256", ATT(0, 16), P64, 256, AFMT_ECORRUPT, "key (length 256)");
    expect_patch("attr key outside", ATT(1, 8), P64, 500, AFMT_ECORRUPT, "outside the heap");
    expect_patch("attr dtype", ATT(1, 24), P32, 11, AFMT_ECORRUPT, "invalid dtype 11");
    expect_patch("attr n", ATT(1, 32), P64, 3, AFMT_ECORRUPT, "need 24 bytes, not 16");
    expect_patch("attr n overflow", ATT(1, 32), P64, 1ull << 61, AFMT_ECORRUPT, "values");
    expect_patch("attr vlen", ATT(0, 48), P64, 2, AFMT_ECORRUPT, "need 1 bytes, not 2");
    expect_patch("attr voff", ATT(1, 40), P64, 1000, AFMT_ECORRUPT, "outside the heap");
    expect_patch("attr voff wrap", ATT(1, 40), P64, UINT64_MAX - 3, AFMT_ECORRUPT, "outside");
    expect_patch("attr dtype change", ATT(1, 24), P32, AFMT_INT64, AFMT_OK, NULL);
}

/* A footer written with larger records (fields appended by a later writer) decodes to the
 * same layer: the reader strides over what it does not know. */
static void test_larger_records(void **state) {
    (void)state;
    afmt_layer L;
    small_layer(&L);
    enc e = enc_small();
    const uint64_t extra = 8;
    afmt_buf b;
    afmt__buf_init(&b);
    afmt__buf_append(&b, e.p, H_SIZE);
    afmt__buf_zero(&b, extra); /* header grows */
    /* one array record: fixed part 48 + extra, 2 dims of 32 + extra */
    afmt__buf_append(&b, e.p + e.arr, 48);
    afmt__buf_zero(&b, extra);
    for (int d = 0; d < 2; d++) {
        afmt__buf_append(&b, e.p + e.arr + 48 + 32 * (uint64_t)d, 32);
        afmt__buf_zero(&b, extra);
    }
    for (int i = 0; i < 2; i++) {
        afmt__buf_append(&b, e.p + e.blk + 40 * (uint64_t)i, 40);
        afmt__buf_zero(&b, extra);
    }
    for (int i = 0; i < 3; i++) {
        afmt__buf_append(&b, e.p + e.chk + 40 * (uint64_t)i, 40);
        afmt__buf_zero(&b, extra);
    }
    for (int i = 0; i < 2; i++) {
        afmt__buf_append(&b, e.p + e.att + 56 * (uint64_t)i, 56);
        afmt__buf_zero(&b, extra);
    }
    afmt__buf_append(&b, e.p + e.heap, e.len - 8 - e.heap);
    afmt__buf_zero(&b, 8);
    uint8_t *p = b.data;
    afmt__put_u32(p + H_HEADER_SIZE, (uint32_t)(H_SIZE + extra));
    afmt__put_u32(p + H_ARRAY_REC_SIZE, (uint32_t)(48 + extra));
    afmt__put_u32(p + H_ARRAY_DIM_SIZE, (uint32_t)(32 + extra));
    afmt__put_u32(p + H_BLOCK_REC_SIZE, (uint32_t)(40 + extra));
    afmt__put_u32(p + H_CHUNK_REC_SIZE, (uint32_t)(40 + extra));
    afmt__put_u32(p + H_ATTR_REC_SIZE, (uint32_t)(56 + extra));
    afmt__put_u64(p + H_ARRAYS_SIZE, 48 + 2 * 32 + 3 * extra);
    afmt__put_u64(p + H_BLOCKS_SIZE, 2 * (40 + extra));
    afmt__put_u64(p + H_CHUNKS_SIZE, 3 * (40 + extra));
    afmt__put_u64(p + H_ATTRS_SIZE, 2 * (56 + extra));
    afmt__put_u32(p + H_FEATURES, 1); /* e.g. "chunk statistics present" */
    resum(p, b.len);
    afmt_layer D;
    char msg[AFMT_ERRMSG_MAX];
    int rc = afmt__footer_decode(p, b.len, &D, msg);
    if (rc != AFMT_OK) fail_msg("%s", msg);
    assert_layers_equal(&L, &D);
    afmt__layer_free(&D);
    afmt__layer_free(&L);
    afmt__buf_free(&b);
    free(e.p);
}

static void test_encode_rejects(void **state) {
    (void)state;
    afmt_layer L;
    afmt_buf b;
    afmt__buf_init(&b);
    afmt__buf_append(&b, "xy", 2);
    small_layer(&L);
    afmt_chunk_rec t = L.chunks[0];
    L.chunks[0] = L.chunks[1];
    L.chunks[1] = t;
    assert_int_equal(afmt__footer_encode(&L, &b), AFMT_EINVAL);
    assert_non_null(strstr(afmt__thread_errbuf(), "sorted"));
    qsort(L.chunks, L.n_chunks, sizeof *L.chunks, afmt__chunk_rec_cmp);
    L.arrays[0].dims[1][0] = 0;
    assert_int_equal(afmt__footer_encode(&L, &b), AFMT_EINVAL);
    snprintf(L.arrays[0].dims[1], sizeof L.arrays[0].dims[1], "y");
    L.arrays[0].id = 4;
    assert_int_equal(afmt__footer_encode(&L, &b), AFMT_EINVAL);
    L.arrays[0].id = 3;
    L.chunks[2].block = 2;
    assert_int_equal(afmt__footer_encode(&L, &b), AFMT_EINVAL);
    L.chunks[2].block = 0;
    assert_int_equal(b.len, 2); /* failures leave out untouched */
    /* Garbage in the fill padding is not written. */
    memset(L.arrays[0].fill, 0xee, 8);
    assert_int_equal(afmt__footer_encode(&L, &b), AFMT_OK);
    assert_memory_equal(b.data, "xy", 2);
    afmt_layer D;
    char msg[AFMT_ERRMSG_MAX];
    assert_int_equal(afmt__footer_decode(b.data + 2, b.len - 2, &D, msg), AFMT_OK);
    assert_int_equal(D.arrays[0].fill[3], 0xee);
    assert_int_equal(D.arrays[0].fill[4], 0);
    afmt__layer_free(&D);
    /* errmsg NULL: the message goes to the thread buffer. */
    b.data[2] ^= 1;
    assert_int_equal(afmt__footer_decode(b.data + 2, b.len - 2, &D, NULL), AFMT_ECORRUPT);
    assert_non_null(strstr(afmt__thread_errbuf(), "checksum"));
    afmt__buf_free(&b);
    afmt__layer_free(&L);
}

/* A cheap deterministic fuzz: random byte edits re-checksummed must never crash, and
 * anything accepted must re-encode (the decoder only accepts encodable layers). */
static void test_fuzz_rechecksummed(void **state) {
    (void)state;
    enc e = enc_small();
    uint8_t *q = malloc(e.len);
    uint64_t x = 88172645463325252ull;
    int accepted = 0;
    for (int it = 0; it < 200000; it++) {
        memcpy(q, e.p, e.len);
        int edits = 1 + it % 3;
        for (int k = 0; k < edits; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t pos = (size_t)(x % (e.len - 8));
            q[pos] = (uint8_t)(x >> 32);
        }
        resum(q, e.len);
        afmt_layer D;
        char msg[AFMT_ERRMSG_MAX];
        int rc = afmt__footer_decode(q, e.len, &D, msg);
        assert_true(rc == AFMT_OK || rc == AFMT_ECORRUPT || rc == AFMT_EVERSION);
        if (rc == AFMT_OK) {
            accepted++;
            afmt_buf b;
            afmt__buf_init(&b);
            assert_int_equal(afmt__footer_encode(&D, &b), AFMT_OK);
            afmt__buf_free(&b);
            afmt__layer_free(&D);
        }
    }
    assert_true(accepted > 0);
    free(q);
    free(e.p);
}

/* The worked example of docs/format.md section 17: if this fails, update the document. */
static void test_doc_example(void **state) {
    (void)state;
    afmt_layer L;
    memset(&L, 0, sizeof L);
    L.layer_id = 1;
    L.data_offset = 4096;
    L.time_ns = 1700000000000000000ull;
    L.nranks = 1;
    L.next_array_id = 2;
    uint64_t shape[1] = {4}, chunk[1] = {2};
    afmt_array_rec a;
    define(&a, 1, "t", AFMT_INT32, 1, shape, chunk);
    a.flags = AFMT_ARRAY_SHUFFLE;
    snprintf(a.dims[0], sizeof a.dims[0], "x");
    L.arrays = &a;
    L.n_arrays = 1;
    const uint8_t block[16] = {1, 2, 0, 0, 0, 0, 0, 0, 3, 4, 0, 0, 0, 0, 0, 0};
    afmt_block_rec b = {4096, 16, 16, afmt__checksum(block, 16), 0, 0};
    assert_int_equal(b.checksum, 0x7c29297ff088ce75ull);
    L.blocks = &b;
    L.n_blocks = 1;
    afmt_chunk_rec c[2] = {{1, 0, 0, 0, 8}, {1, 1, 0, 8, 8}};
    L.chunks = c;
    L.n_chunks = 2;
    afmt_attr_rec at;
    memset(&at, 0, sizeof at);
    at.array_id = 1;
    snprintf(at.key, sizeof at.key, "units");
    at.dtype = AFMT_UINT8;
    at.n = 1;
    at.value = (uint8_t *)"K";
    L.attrs = &at;
    L.n_attrs = 1;
    size_t len;
    uint8_t *p = encode(&L, &len);
    assert_int_equal(len, 448);
    assert_int_equal(afmt__get_u64(p + len - 8), 0x5f0fe27c0fc79b04ull);
    assert_int_equal(afmt__footer_checksum(p, len), 0xc808bd239c8e914eull);
    assert_memory_equal(p + len - 16, "txunitsK", 8);
    free(p);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_roundtrip_small),   cmocka_unit_test(test_roundtrip_empty),
    cmocka_unit_test(test_roundtrip_big),     cmocka_unit_test(test_flip_every_byte),
    cmocka_unit_test(test_truncation),        cmocka_unit_test(test_newer_version),
    cmocka_unit_test(test_bad_header),        cmocka_unit_test(test_bad_array),
    cmocka_unit_test(test_bad_delete_record), cmocka_unit_test(test_bad_blocks_chunks),
    cmocka_unit_test(test_bad_attrs),         cmocka_unit_test(test_larger_records),
    cmocka_unit_test(test_encode_rejects),    cmocka_unit_test(test_fuzz_rechecksummed),
    cmocka_unit_test(test_doc_example),
};

TU_MAIN("footer", tests)
