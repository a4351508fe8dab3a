/* write.c - afmt_write: cuts a hyperslab into chunks with no communication. A fully
 * covered chunk is encoded (little-endian, shuffled) straight into the delta allocator;
 * a partly covered one is staged in a dense buffer with the boxes this rank wrote, to be
 * merged at commit (exchange.c). */
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "grid.h"
#include "shuffle.h"
#include "util.h"

void afmt__chunk_encode_swapped(const afmt_array *arr, void *dst, const void *src,
                                uint64_t nelems) {
    size_t es = arr->esize, n = (size_t)nelems;
    if (!(arr->d.flags & AFMT_ARRAY_SHUFFLE)) {
        memcpy(dst, src, n * es);
        afmt_bswap_elems(dst, n, es);
        return;
    }
    /* Byte k of a swapped element is byte es-1-k of the native one: after the shuffle,
     * plane k (the k-th bytes of all elements) must hold native plane es-1-k. Reversing
     * the order of the planes in place needs no buffer, so encoding cannot fail. */
    afmt_shuffle(dst, src, n, es);
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
    if (afmt_host_is_big_endian() && es > 1) {
        afmt__chunk_encode_swapped(arr, dst, src, nelems);
        return;
    }
    if (arr->d.flags & AFMT_ARRAY_SHUFFLE)
        afmt_shuffle(dst, src, (size_t)nelems, es);
    else
        memcpy(dst, src, (size_t)(nelems * es));
}

void afmt__chunk_decode(const afmt_array *arr, void *dst, const void *src, uint64_t nelems) {
    size_t es = arr->esize;
    if (arr->d.flags & AFMT_ARRAY_SHUFFLE)
        afmt_unshuffle(dst, src, (size_t)nelems, es);
    else
        memcpy(dst, src, (size_t)(nelems * es));
    if (afmt_host_is_big_endian()) afmt_bswap_elems(dst, (size_t)nelems, es);
}

int afmt__ensure_alloc(afmt_file *f) {
    if (f->alloc) return AFMT_OK;
    afmt_alloc_config cfg = {f->opts.block_size, f->opts.mem_budget, f->opts.spill_dir,
                             f->opts.codec, f->opts.level};
    if (afmt_alloc_create(&f->alloc, &cfg) != AFMT_OK)
        return afmt_fail(f->errmsg, AFMT_ENOMEM, "out of memory for the block allocator");
    return AFMT_OK;
}

/* The staged entry of a chunk, created empty (partial, no boxes) if absent. */
static int staged_get(afmt_file *f, uint64_t array_id, uint64_t chunk_index, afmt_staged **out) {
    uint64_t *pos = afmt_hmap_get(&f->staged_map, array_id, chunk_index);
    if (pos) {
        *out = &f->staged[*pos];
        return AFMT_OK;
    }
    if (AFMT__GROW(f->staged, f->cap_staged, f->n_staged + 1, 64) != AFMT_OK) return AFMT_ENOMEM;
    if (afmt_hmap_put(&f->staged_map, array_id, chunk_index, f->n_staged) != AFMT_OK)
        return AFMT_ENOMEM;
    afmt_staged *s = &f->staged[f->n_staged++];
    memset(s, 0, sizeof *s);
    s->array_id = array_id;
    s->chunk_index = chunk_index;
    *out = s;
    return AFMT_OK;
}

static void staged_release(afmt_staged *s) {
    free(s->data);
    free(s->rect);
    s->data = NULL;
    s->rect = NULL;
    s->nrect = s->cap_rect = 0;
}

void afmt__staged_clear(afmt_file *f) {
    for (uint64_t i = 0; i < f->n_staged; i++) staged_release(&f->staged[i]);
    f->n_staged = 0;
    afmt_hmap_clear(&f->staged_map);
}

void afmt__staged_drop_array(afmt_file *f, uint64_t array_id) {
    uint64_t w = 0;
    for (uint64_t i = 0; i < f->n_staged; i++) {
        if (f->staged[i].array_id == array_id) {
            staged_release(&f->staged[i]);
            continue;
        }
        f->staged[w++] = f->staged[i];
    }
    if (w == f->n_staged) return;
    f->n_staged = w;
    /* Dead payloads stay in the allocator as garbage. */
    afmt__staged_reindex(f);
}

void afmt__staged_reindex(afmt_file *f) {
    /* Positions moved; the map only shrinks, so re-inserting needs no new memory. */
    afmt_hmap_clear(&f->staged_map);
    for (uint64_t i = 0; i < f->n_staged; i++)
        afmt_hmap_put(&f->staged_map, f->staged[i].array_id, f->staged[i].chunk_index, i);
}

/* Forgets the entry staged_get just created for a call that then failed, so that the
 * handle is as it was (a chunk never written must not turn into an empty partial one). */
static void staged_forget_new(afmt_file *f, const afmt_staged *s) {
    afmt_hmap_del(&f->staged_map, s->array_id, s->chunk_index);
    f->n_staged--;
}

/* A fully written chunk's place in the open block, between stage_reserve and
 * stage_done: the caller encodes the payload into dst in between. */
typedef struct {
    afmt_staged *s;
    void *dst;
    uint64_t block, offset, size;
} stage_slot;

/* Reserves room for the encoded payload of a fully written chunk (nelems elements). */
static int stage_reserve(afmt_file *f, const afmt_array *arr, uint64_t chunk_index, uint64_t nelems,
                         stage_slot *out) {
    int rc = afmt__ensure_alloc(f);
    if (rc != AFMT_OK) return rc;
    int fresh = afmt_hmap_get(&f->staged_map, arr->d.id, chunk_index) == NULL;
    if (staged_get(f, arr->d.id, chunk_index, &out->s) != AFMT_OK)
        return afmt_fail(f->errmsg, AFMT_ENOMEM, "out of memory staging a chunk");
    out->size = nelems * arr->esize;
    rc = afmt_alloc_reserve(f->alloc, out->size, &out->dst, &out->block, &out->offset);
    if (rc != AFMT_OK) {
        if (fresh) staged_forget_new(f, out->s);
        return afmt_fail(f->errmsg, rc, "%s", afmt_alloc_errmsg(f->alloc));
    }
    return AFMT_OK;
}

/* Records the encoded chunk as staged. Only now is its older partial state freed: the
 * payload may have been encoded from it (exchange.c merges into s->data). */
static void stage_done(const stage_slot *sl) {
    afmt_staged *s = sl->s;
    staged_release(s);
    s->full = 1;
    s->block = sl->block;
    s->offset = sl->offset;
    s->size = sl->size;
}

int afmt__stage_full(afmt_file *f, const afmt_array *arr, uint64_t chunk_index, const void *native,
                     uint64_t nelems) {
    stage_slot sl;
    int rc = stage_reserve(f, arr, chunk_index, nelems, &sl);
    if (rc != AFMT_OK) return rc;
    afmt__chunk_encode(arr, sl.dst, native, nelems);
    stage_done(&sl);
    return AFMT_OK;
}

int afmt__encode_chunk(afmt_file *f, const afmt_array *arr, uint64_t chunk_index,
                       const void *native, uint64_t nelems, afmt_chunk_rec *out) {
    int rc = afmt__ensure_alloc(f);
    if (rc != AFMT_OK) return rc;
    void *dst;
    uint64_t block, offset, size = nelems * arr->esize;
    rc = afmt_alloc_reserve(f->alloc, size, &dst, &block, &offset);
    if (rc != AFMT_OK) return afmt_fail(f->errmsg, rc, "%s", afmt_alloc_errmsg(f->alloc));
    afmt__chunk_encode(arr, dst, native, nelems);
    *out = (afmt_chunk_rec){arr->d.id, chunk_index, block, offset, size};
    return AFMT_OK;
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
        afmt_shuffle_part(c->dst, src, (size_t)len, c->nelems, (size_t)a_off, c->es);
    else
        memcpy(c->dst + (size_t)a_off * c->es, src, (size_t)len * c->es);
}

/* Adds the box [sel_start, +sel_count) of buf's selection to a partial staged chunk.
 * Everything that can fail (the dense buffer, the decoded older payload, the box list)
 * is built aside first and swapped in last: a failure leaves the entry as it was. */
static int stage_piece(afmt_file *f, const afmt_array *arr, const afmt_grid_iter *it,
                       const uint64_t *start, const uint64_t *count, const void *buf) {
    int fresh = afmt_hmap_get(&f->staged_map, arr->d.id, it->index) == NULL;
    afmt_staged *s;
    if (staged_get(f, arr->d.id, it->index, &s) != AFMT_OK)
        return afmt_fail(f->errmsg, AFMT_ENOMEM, "out of memory staging a chunk");
    int nd = arr->d.ndim;
    size_t es = arr->esize, rect_bytes = sizeof(uint64_t) * 2 * (size_t)(nd ? nd : 1);
    uint64_t bytes = it->nelems * es;
    uint8_t *data = s->full ? NULL : s->data;
    uint64_t *rect = s->full ? NULL : s->rect;
    uint32_t nrect = s->full ? 0 : s->nrect, cap = s->full ? 0 : s->cap_rect;
    int rc = AFMT_OK;
    if (!data && !(data = malloc((size_t)bytes)))
        rc = afmt_fail(f->errmsg, AFMT_ENOMEM, "out of memory staging a chunk of %llu bytes",
                       (unsigned long long)bytes);
    if (rc == AFMT_OK && s->full) {
        /* This rank wrote the whole chunk before: decode it back into the dense buffer;
         * it becomes the first box. */
        uint8_t *enc = afmt__scratch(f, bytes);
        if (!enc) rc = AFMT_ENOMEM; /* message set */
        if (rc == AFMT_OK &&
            (rc = afmt_alloc_read(f->alloc, s->block, s->offset, enc, s->size)) != AFMT_OK)
            afmt_fail(f->errmsg, rc, "%s", afmt_alloc_errmsg(f->alloc));
        if (rc == AFMT_OK) afmt__chunk_decode(arr, data, enc, it->nelems);
        nrect = 1;
    }
    if (rc == AFMT_OK && nrect + 1 > cap) {
        uint32_t ncap = cap ? 2 * cap : 4;
        uint64_t *r = realloc(rect, rect_bytes * ncap);
        if (!r)
            rc = afmt_fail(f->errmsg, AFMT_ENOMEM, "out of memory staging a chunk");
        else {
            rect = r;
            cap = ncap;
        }
    }
    if (rc != AFMT_OK) {
        /* Only buffers made here are freed; a kept entry's own buffers stay its own. */
        if (data != s->data) free(data);
        if (s->full) free(rect);
        if (fresh) staged_forget_new(f, s);
        return rc;
    }
    if (s->full) {
        for (int d = 0; d < nd; d++) {
            rect[d] = 0;
            rect[nd + d] = it->extent[d];
        }
    }
    /* From here nothing fails: the new state goes in. */
    s->full = 0;
    s->data = data;
    s->rect = rect;
    s->cap_rect = cap;
    s->nrect = nrect;
    uint64_t *box = s->rect + (size_t)2 * (size_t)nd * s->nrect;
    uint64_t bstart[AFMT_MAX_NDIM];
    for (int d = 0; d < nd; d++) {
        box[d] = it->sel_start[d];
        box[nd + d] = it->sel_count[d];
        bstart[d] = it->origin[d] + it->sel_start[d] - start[d];
    }
    s->nrect++;
    afmt_box_copy(nd, es, it->sel_count, s->data, it->extent, it->sel_start, buf, count, bstart);
    return AFMT_OK;
}

static const uint64_t zeros[AFMT_MAX_NDIM];

/* If the box [bstart, +extent) of a C-ordered array of shape is one contiguous run of
 * memory, its first byte; else NULL. Then the chunk can be encoded without a copy. */
static const uint8_t *box_contiguous(int nd, const uint64_t *extent, const uint64_t *shape,
                                     const uint64_t *bstart, size_t es, const void *buf) {
    int k = 0;
    while (k < nd && extent[k] == 1) k++;
    for (int d = k + 1; d < nd; d++)
        if (extent[d] != shape[d]) return NULL;
    uint64_t lin = 0;
    for (int d = 0; d < nd; d++) lin = lin * shape[d] + bstart[d];
    return (const uint8_t *)buf + lin * es;
}

int afmt_write(afmt_file *f, const char *name, const uint64_t *start, const uint64_t *count,
               const void *buf) {
    const char *fn = "afmt_write";
    int rc = afmt__check(f, fn);
    if (rc != AFMT_OK) return rc;
    if ((rc = afmt__check_writable(f, fn)) != AFMT_OK) return rc;
    afmt_array *arr;
    if ((rc = afmt__lookup(f, fn, name, &arr)) != AFMT_OK) return rc;
    if (!buf) return afmt_fail(f->errmsg, AFMT_EINVAL, "afmt_write(\"%s\"): buf is NULL", name);
    if ((rc = afmt__check_region(f, fn, arr, start, count)) != AFMT_OK) return rc;
    int nd = arr->d.ndim;
    size_t es = arr->esize;
    afmt_grid_iter it;
    afmt_grid_iter_init(&it, &arr->grid, nd ? start : zeros, nd ? count : zeros);
    while (rc == AFMT_OK && afmt_grid_iter_next(&it)) {
        if (!it.full) {
            rc = stage_piece(f, arr, &it, start, count, buf);
            continue;
        }
        uint64_t bstart[AFMT_MAX_NDIM];
        for (int d = 0; d < nd; d++) bstart[d] = it.origin[d] - start[d];
        const uint8_t *src = box_contiguous(nd, it.extent, count, bstart, es, buf);
        if (src) {
            rc = afmt__stage_full(f, arr, it.index, src, it.nelems);
        } else if (!afmt_host_is_big_endian()) {
            /* Not one run of buf: encode it row by row, straight into the block. */
            stage_slot sl;
            rc = stage_reserve(f, arr, it.index, it.nelems, &sl);
            if (rc != AFMT_OK) break;
            encode_ctx c = {sl.dst, buf, (size_t)it.nelems, es,
                            (arr->d.flags & AFMT_ARRAY_SHUFFLE) != 0};
            afmt_box_runs(nd, it.extent, it.extent, zeros, count, bstart, encode_run, &c);
            stage_done(&sl);
        } else {
            /* Big-endian hosts swap a gathered copy (afmt__chunk_encode). */
            uint8_t *tmp = afmt__scratch(f, it.nelems * es);
            if (!tmp) return AFMT_ENOMEM;
            afmt_box_copy(nd, es, it.extent, tmp, it.extent, zeros, buf, count, bstart);
            rc = afmt__stage_full(f, arr, it.index, tmp, it.nelems);
        }
    }
    return rc;
}
