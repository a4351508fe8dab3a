/* chunk_encode.c - chunk payloads in file form and back (chunk_encode.h): little-endian
 * elements, byte-shuffled when the array's flag says so. */
#include "index/chunk_encode.h"

#include <stddef.h>
#include <string.h>

#include "codec/shuffle.h"
#include "common/util.h"
#include "format/grid.h"

static const uint64_t zeros[AFMT_MAX_NDIM];

void afmt__chunk_encode_swapped(const afmt_array *arr, void *dst, const void *src,
                                uint64_t nelems) {
    size_t es = arr->esize, n = (size_t)nelems;
    if (!(arr->d.flags & AFMT_ARRAY_SHUFFLE)) {
        memcpy(dst, src, n * es);
        afmt__bswap_elems(dst, n, es);
        return;
    }
    /* Byte k of a swapped element is byte es-1-k of the native one: after the shuffle,
     * plane k (the k-th bytes of all elements) must hold native plane es-1-k. Reversing
     * the order of the planes in place needs no buffer, so encoding cannot fail. */
    afmt__shuffle(dst, src, n, es);
    uint8_t *d = dst;
    for (size_t k = 0; k < es / 2; k++) {
        uint8_t *a = d + k * n, *b = d + (es - 1 - k) * n;
        for (size_t i = 0; i < n; i++) {
            uint8_t t = a[i];
            a[i] = b[i];
            b[i] = t;
        }
    }
}

void afmt__chunk_encode(const afmt_array *arr, void *dst, const void *src, uint64_t nelems) {
    size_t es = arr->esize;
    if (afmt__host_is_big_endian() && es > 1) {
        afmt__chunk_encode_swapped(arr, dst, src, nelems);
        return;
    }
    if (arr->d.flags & AFMT_ARRAY_SHUFFLE)
        afmt__shuffle(dst, src, (size_t)nelems, es);
    else
        memcpy(dst, src, (size_t)(nelems * es));
}

void afmt__chunk_decode(const afmt_array *arr, void *dst, const void *src, uint64_t nelems) {
    size_t es = arr->esize;
    if (arr->d.flags & AFMT_ARRAY_SHUFFLE)
        afmt__unshuffle(dst, src, (size_t)nelems, es);
    else
        memcpy(dst, src, (size_t)(nelems * es));
    if (afmt__host_is_big_endian()) afmt__bswap_elems(dst, (size_t)nelems, es);
}

static uint64_t volume(int nd, const uint64_t *count) {
    uint64_t v = 1;
    for (int d = 0; d < nd; d++) v *= count[d];
    return v;
}

/* 1 if a box of size extent is one contiguous run of a C-ordered array of shape, wherever
 * it starts: then the chunk is encoded from it without a copy. */
static int box_is_run(int nd, const uint64_t *extent, const uint64_t *shape) {
    int k = 0;
    while (k < nd && extent[k] == 1) k++;
    for (int d = k + 1; d < nd; d++)
        if (extent[d] != shape[d]) return 0;
    return 1;
}

/* Encodes one run of a chunk from the caller's array into the payload: the gather and
 * the shuffle in one pass. a_off is in the chunk, b_off in the caller's array. */
typedef struct {
    uint8_t *dst;
    const uint8_t *src;
    size_t nelems, es;
    int shuffle;
} encode_ctx;

static void encode_run(void *ctx, uint64_t a_off, uint64_t b_off, uint64_t len) {
    const encode_ctx *c = ctx;
    const uint8_t *src = c->src + (size_t)b_off * c->es;
    if (c->shuffle)
        afmt__shuffle_part(c->dst, src, (size_t)len, c->nelems, (size_t)a_off, c->es);
    else
        memcpy(c->dst + (size_t)a_off * c->es, src, (size_t)len * c->es);
}

uint64_t afmt__chunk_encode_work(const afmt_array *arr, const uint64_t *ext,
                                 const uint64_t *src_shape) {
    int nd = arr->d.ndim;
    if (!afmt__host_is_big_endian() || box_is_run(nd, ext, src_shape)) return 0;
    return volume(nd, ext) * arr->esize;
}

void afmt__chunk_encode_box(const afmt_array *arr, void *dst, const uint64_t *ext, const void *src,
                            const uint64_t *src_shape, const uint64_t *src_start, uint8_t *work) {
    int nd = arr->d.ndim;
    size_t es = arr->esize;
    uint64_t n = volume(nd, ext);
    if (box_is_run(nd, ext, src_shape)) {
        uint64_t lin = 0;
        for (int d = 0; d < nd; d++) lin = lin * src_shape[d] + src_start[d];
        afmt__chunk_encode(arr, dst, (const uint8_t *)src + lin * es, n);
    } else if (!afmt__host_is_big_endian()) {
        /* Not one run of src: encode it row by row, straight into dst. */
        encode_ctx c = {dst, src, (size_t)n, es, (arr->d.flags & AFMT_ARRAY_SHUFFLE) != 0};
        afmt__box_runs(nd, ext, ext, zeros, src_shape, src_start, encode_run, &c);
    } else {
        /* Big-endian hosts swap a gathered copy (afmt__chunk_encode). */
        afmt__box_copy(nd, es, ext, work, ext, zeros, src, src_shape, src_start);
        afmt__chunk_encode(arr, dst, work, n);
    }
}

/* Unshuffles one run of a chunk's selection from the payload into the caller's buffer:
 * the decode and the copy-out in one pass. a_off is in the chunk, b_off in dst. */
typedef struct {
    const uint8_t *src;
    uint8_t *dst;
    size_t nelems, es;
} decode_ctx;

static void decode_run(void *ctx, uint64_t a_off, uint64_t b_off, uint64_t len) {
    const decode_ctx *c = ctx;
    afmt__unshuffle_part(c->dst + (size_t)b_off * c->es, c->src, (size_t)len, c->nelems,
                         (size_t)a_off, c->es);
}

uint64_t afmt__chunk_decode_work(const afmt_array *arr, uint64_t nelems) {
    return afmt__host_is_big_endian() ? nelems * arr->esize : 0;
}

void afmt__chunk_decode_box(const afmt_array *arr, const void *payload, const uint64_t *ext,
                            const uint64_t *sel_start, const uint64_t *sel_count, void *dst,
                            const uint64_t *dst_shape, const uint64_t *dst_start, uint8_t *work) {
    int nd = arr->d.ndim;
    size_t es = arr->esize;
    if (afmt__host_is_big_endian()) {
        /* Big-endian hosts decode the whole chunk, byte-swap, then copy. */
        afmt__chunk_decode(arr, work, payload, volume(nd, ext));
        afmt__box_copy(nd, es, sel_count, dst, dst_shape, dst_start, work, ext, sel_start);
    } else if (!(arr->d.flags & AFMT_ARRAY_SHUFFLE)) {
        afmt__box_copy(nd, es, sel_count, dst, dst_shape, dst_start, payload, ext, sel_start);
    } else {
        /* Unshuffle each run of the selection straight into dst. */
        decode_ctx dc = {payload, dst, (size_t)volume(nd, ext), es};
        afmt__box_runs(nd, sel_count, ext, sel_start, dst_shape, dst_start, decode_run, &dc);
    }
}

/* A chunk encoded later from a box of the caller's array, by a job of the allocator's
 * pool (afmt__alloc_defer_fill): what afmt__chunk_encode_box needs on a little-endian
 * host, v holding the extent, the source's shape and the box's start (nd each). */
typedef struct {
    const uint8_t *src;
    size_t es;
    int nd, shuffle;
    uint64_t v[3 * AFMT_MAX_NDIM];
} box_fill;

static void box_fill_run(const void *arg, void *dst) {
    const box_fill *b = arg;
    int nd = b->nd;
    const uint64_t *ext = b->v, *shape = b->v + nd, *start = b->v + 2 * nd;
    uint64_t n = volume(nd, ext);
    if (box_is_run(nd, ext, shape)) {
        uint64_t lin = 0;
        for (int d = 0; d < nd; d++) lin = lin * shape[d] + start[d];
        if (b->shuffle)
            afmt__shuffle(dst, b->src + lin * b->es, (size_t)n, b->es);
        else
            memcpy(dst, b->src + lin * b->es, (size_t)(n * b->es));
    } else {
        encode_ctx c = {dst, b->src, (size_t)n, b->es, b->shuffle};
        afmt__box_runs(nd, ext, ext, zeros, shape, start, encode_run, &c);
    }
}

void afmt__chunk_encode_box_later(afmt_alloc *a, const afmt_array *arr, void *dst,
                                  const uint64_t *ext, const void *src, const uint64_t *src_shape,
                                  const uint64_t *src_start, uint8_t *work) {
    int nd = arr->d.ndim;
    if (!afmt__host_is_big_endian()) {
        box_fill b;
        b.src = src;
        b.es = arr->esize;
        b.nd = nd;
        b.shuffle = (arr->d.flags & AFMT_ARRAY_SHUFFLE) != 0;
        for (int d = 0; d < nd; d++) { /* a scalar (nd 0) may come with NULL boxes */
            b.v[d] = ext[d];
            b.v[nd + d] = src_shape[d];
            b.v[2 * nd + d] = src_start[d];
        }
        size_t size = offsetof(box_fill, v) + sizeof(uint64_t) * 3 * (size_t)nd;
        if (afmt__alloc_defer_fill(a, box_fill_run, &b, size)) return;
    }
    afmt__chunk_encode_box(arr, dst, ext, src, src_shape, src_start, work);
}

int afmt__chunk_store(afmt_alloc *a, const afmt_array *arr, uint64_t chunk_index,
                      const void *native, uint64_t nelems, afmt_chunk_rec *out) {
    void *dst;
    uint64_t block, offset, size = nelems * arr->esize;
    int rc = afmt__alloc_reserve(a, size, &dst, &block, &offset);
    if (rc != AFMT_OK) return rc;
    afmt__chunk_encode(arr, dst, native, nelems);
    *out = (afmt_chunk_rec){arr->d.id, chunk_index, block, offset, size};
    return AFMT_OK;
}
