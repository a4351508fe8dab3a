/* read.c - afmt_read: maps a hyperslab to chunks, takes each from this rank's staged
 * writes, the committed index (newest layer wins) or the fill value, reads each needed
 * block once (grouped by block), verifies its checksum, decompresses it (through the LRU
 * cache unless the read uses all of it) and un-shuffles each row straight into the
 * caller's buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "file.h"
#include "grid.h"
#include "shuffle.h"
#include "util.h"

static const uint64_t zeros[AFMT_MAX_NDIM];

void afmt__fill_box(const afmt_array *arr, void *buf, const uint64_t *bshape,
                    const uint64_t *bstart, const uint64_t *count) {
    int nd = arr->d.ndim;
    size_t es = arr->esize;
    uint8_t fill[8];
    memcpy(fill, arr->d.fill, 8);
    if (afmt_host_is_big_endian()) afmt_bswap_elems(fill, 1, es);
    int zero = 1;
    for (size_t i = 0; i < es; i++) zero &= fill[i] == 0;
    /* Walk the rows of the box (innermost dim contiguous). */
    uint64_t inner = nd ? count[nd - 1] : 1, rows = 1;
    for (int d = 0; d + 1 < nd; d++) rows *= count[d];
    uint64_t idx[AFMT_MAX_NDIM] = {0};
    for (uint64_t r = 0; r < rows; r++) {
        uint64_t lin = 0;
        for (int d = 0; d < nd; d++) lin = lin * bshape[d] + bstart[d] + (d + 1 < nd ? idx[d] : 0);
        uint8_t *p = (uint8_t *)buf + lin * es;
        if (zero)
            memset(p, 0, (size_t)(inner * es));
        else
            for (uint64_t i = 0; i < inner; i++) memcpy(p + i * es, fill, es);
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < count[d]) break;
            idx[d] = 0;
        }
    }
}

/* The checks of a block record before any of it is read or allocated. The footer decoder
 * made them already (format.md 8); repeated here because the bound on raw_size is what
 * keeps a damaged file from making a read allocate gigabytes. */
static int check_block(afmt_file *f, uint64_t b, const char *what) {
    const afmt_block_rec *B = &f->idx.blocks[b].b;
    if (B->raw_size > AFMT_MAX_BLOCK_RAW || B->stored_size > SIZE_MAX)
        return afmt_fail(f->errmsg, AFMT_ECORRUPT,
                         "%s: block at offset %llu claims %llu raw bytes (limit %llu)", what,
                         (unsigned long long)B->offset, (unsigned long long)B->raw_size,
                         (unsigned long long)AFMT_MAX_BLOCK_RAW);
    if (B->codec == AFMT_CODEC_NONE && B->stored_size != B->raw_size)
        return afmt_fail(f->errmsg, AFMT_ECORRUPT, "%s: raw block at %llu has %llu != %llu bytes",
                         what, (unsigned long long)B->offset, (unsigned long long)B->stored_size,
                         (unsigned long long)B->raw_size);
    return AFMT_OK;
}

/* A buffer of n bytes for a block's raw bytes: the handle's decode buffer (whole) or a
 * fresh one for the cache (a spare of the cache if one fits). NULL: out of memory. */
static uint8_t *raw_buffer(afmt_file *f, int whole, uint64_t n) {
    if (whole)
        return afmt_grow(&f->decode_buf, &f->decode_cap, n) == AFMT_OK ? f->decode_buf : NULL;
    uint8_t *out = afmt_cache_spare(f->cache, n);
    return out ? out : malloc(n ? (size_t)n : 1);
}

/* Reads block b of the index, in the order of format.md 8: the stored bytes, their
 * checksum (damage is reported as damage even where the codec is missing), the codec,
 * then the decompression into a buffer of raw_size bytes (*out, from raw_buffer).
 * Compressed bytes go through a buffer the handle keeps: a fresh multi-MiB malloc per
 * block costs an mmap, page faults and an munmap each time. Raw blocks (codec 0) are read
 * straight into *out. On failure *out is NULL (nothing to free but decode_buf, kept). */
static int load_block(afmt_file *f, uint64_t b, int whole, uint8_t **out, const char *what) {
    const afmt_iblock *ib = &f->idx.blocks[b];
    const afmt_block_rec *B = &ib->b;
    int plain = B->codec == AFMT_CODEC_NONE;
    uint8_t *stored;
    *out = NULL;
    if (plain) {
        stored = raw_buffer(f, whole, B->raw_size);
    } else {
        stored = afmt_grow(&f->stored_buf, &f->stored_cap, B->stored_size) == AFMT_OK
                     ? f->stored_buf
                     : NULL;
    }
    if (!stored) return afmt_fail(f->errmsg, AFMT_ENOMEM, "%s: out of memory", what);
    int rc = f->st->ops->read_at(f->st, B->offset, stored, B->stored_size);
    if (rc != AFMT_OK)
        afmt_fail(f->errmsg, rc, "%s: %s", what, f->st->errmsg);
    else if (afmt_checksum(stored, (size_t)B->stored_size) != B->checksum)
        rc = afmt_fail(f->errmsg, AFMT_ECORRUPT,
                       "%s: block at offset %llu (%llu bytes, layer %llu) fails its checksum", what,
                       (unsigned long long)B->offset, (unsigned long long)B->stored_size,
                       (unsigned long long)ib->layer_id);
    else if (!plain && !afmt_codec_known(B->codec))
        rc = afmt_fail(f->errmsg, AFMT_ECODEC,
                       "%s: block at offset %llu uses codec id %u, which this process lacks "
                       "(register it with afmt_codec_register)",
                       what, (unsigned long long)B->offset, B->codec);
    if (plain) {
        if (rc == AFMT_OK)
            *out = stored;
        else if (!whole)
            free(stored);
        return rc;
    }
    if (rc != AFMT_OK) return rc;
    uint8_t *raw = raw_buffer(f, whole, B->raw_size);
    if (!raw) return afmt_fail(f->errmsg, AFMT_ENOMEM, "%s: out of memory", what);
    rc = afmt_codec_decompress(B->codec, stored, (size_t)B->stored_size, raw, (size_t)B->raw_size);
    if (rc != AFMT_OK) {
        if (!whole) free(raw);
        return afmt_fail(f->errmsg, rc,
                         "%s: block at offset %llu does not decompress with codec %s", what,
                         (unsigned long long)B->offset, afmt_codec_name(B->codec));
    }
    *out = raw;
    return AFMT_OK;
}

/* The decompressed bytes of index block b, verified: from the cache if it is there; else
 * read, checked and decompressed. whole: the read uses every live chunk of the block, so
 * it goes into the handle's decode buffer and not into the cache (keeping it gains
 * nothing and would evict blocks that partial readers share); otherwise into a buffer
 * (a spare of the cache if one fits) that the cache keeps. *raw is valid until the next
 * fetch. */
static int fetch_block(afmt_file *f, uint64_t b, int whole, const uint8_t **raw, const char *what) {
    const uint8_t *hit = afmt_cache_get(f->cache, b, NULL);
    if (hit) {
        *raw = hit;
        return AFMT_OK;
    }
    int rc = check_block(f, b, what);
    if (rc != AFMT_OK) return rc;
    uint8_t *out;
    if ((rc = load_block(f, b, whole, &out, what)) != AFMT_OK) return rc;
    *raw = whole ? out : afmt_cache_put(f->cache, b, out, f->idx.blocks[b].b.raw_size);
    return AFMT_OK;
}

int afmt__fetch_block(afmt_file *f, uint64_t b, const uint8_t **raw, const char *what) {
    return fetch_block(f, b, 0, raw, what);
}

static void chunk_what(char *w, size_t n, const afmt_array *arr, uint64_t ci) {
    snprintf(w, n, "afmt_read(\"%s\"): chunk %llu", arr->d.name, (unsigned long long)ci);
}

int afmt__read_committed_chunk(afmt_file *f, const afmt_array *arr, uint64_t chunk_index,
                               void *dst) {
    uint64_t cc[AFMT_MAX_NDIM], origin[AFMT_MAX_NDIM], ext[AFMT_MAX_NDIM];
    afmt_grid_chunk_coord(&arr->grid, chunk_index, cc);
    uint64_t ne = afmt_grid_chunk_box(&arr->grid, cc, origin, ext);
    const afmt_chunk_loc *loc = afmt_index_chunk(&f->idx, arr->d.id, chunk_index);
    if (!loc) {
        afmt__fill_box(arr, dst, ext, zeros, ext);
        return AFMT_OK;
    }
    char what[AFMT_MAX_NAME + 64];
    chunk_what(what, sizeof what, arr, chunk_index);
    const uint8_t *raw;
    int rc = afmt__fetch_block(f, loc->block, &raw, what);
    if (rc == AFMT_OK) afmt__chunk_decode(arr, dst, raw + loc->offset, ne);
    return rc;
}

/* One chunk of a read that comes from a committed block. */
typedef struct {
    uint64_t block, offset, index;
    uint64_t origin[AFMT_MAX_NDIM], extent[AFMT_MAX_NDIM];
    uint64_t sel_start[AFMT_MAX_NDIM], sel_count[AFMT_MAX_NDIM];
    uint64_t nelems;
    int full;
} read_item;

static int item_cmp(const void *a, const void *b) {
    const read_item *x = a, *y = b;
    if (x->block != y->block) return x->block < y->block ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Where the chunk's selected part starts in the caller's buffer (a hyperslab at start). */
static void sel_in_buf(int nd, const read_item *it, const uint64_t *start, uint64_t *bstart) {
    for (int d = 0; d < nd; d++) bstart[d] = it->origin[d] + it->sel_start[d] - start[d];
}

/* Copies the selected part of a decoded chunk (native, its extent) into buf. */
static void copy_out(const afmt_array *arr, const read_item *it, const void *chunk, void *buf,
                     const uint64_t *start, const uint64_t *count) {
    int nd = arr->d.ndim;
    uint64_t bstart[AFMT_MAX_NDIM];
    sel_in_buf(nd, it, start, bstart);
    afmt_box_copy(nd, arr->esize, it->sel_count, buf, count, bstart, chunk, it->extent,
                  it->sel_start);
}

/* Unshuffles one run of a chunk's selection from the payload into the caller's buffer:
 * the decode and the copy-out in one pass. a_off is in the chunk, b_off in buf. */
typedef struct {
    const uint8_t *src;
    uint8_t *dst;
    size_t nelems, es;
} decode_ctx;

static void decode_run(void *ctx, uint64_t a_off, uint64_t b_off, uint64_t len) {
    const decode_ctx *c = ctx;
    afmt_unshuffle_part(c->dst + (size_t)b_off * c->es, c->src, (size_t)len, c->nelems,
                        (size_t)a_off, c->es);
}

/* A chunk this rank staged: its content as of now (committed, then own writes on top). */
static int read_staged(afmt_file *f, const afmt_array *arr, const afmt_staged *s,
                       const read_item *it, void *buf, const uint64_t *start,
                       const uint64_t *count) {
    int nd = arr->d.ndim;
    uint64_t bytes = it->nelems * arr->esize;
    uint8_t *tmp = malloc((size_t)bytes * 2 + 1);
    if (!tmp)
        return afmt_fail(f->errmsg, AFMT_ENOMEM, "afmt_read(\"%s\"): out of memory", arr->d.name);
    int rc = AFMT_OK;
    if (s->full) {
        rc = afmt_alloc_read(f->alloc, s->block, s->offset, tmp + bytes, s->size);
        if (rc != AFMT_OK)
            afmt_fail(f->errmsg, rc, "afmt_read(\"%s\"): %s", arr->d.name,
                      afmt_alloc_errmsg(f->alloc));
        else
            afmt__chunk_decode(arr, tmp, tmp + bytes, it->nelems);
    } else {
        rc = afmt__read_committed_chunk(f, arr, it->index, tmp);
        for (uint32_t r = 0; rc == AFMT_OK && r < s->nrect; r++) {
            const uint64_t *rect = s->rect + (size_t)2 * (size_t)nd * r;
            afmt_box_copy(nd, arr->esize, rect + nd, tmp, it->extent, rect, s->data, it->extent,
                          rect);
        }
    }
    if (rc == AFMT_OK) copy_out(arr, it, tmp, buf, start, count);
    free(tmp);
    return rc;
}

int afmt_read(afmt_file *f, const char *name, const uint64_t *start, const uint64_t *count,
              void *buf) {
    const char *fn = "afmt_read";
    int rc = afmt__check(f, fn);
    if (rc != AFMT_OK) return rc;
    afmt_array *arr;
    if ((rc = afmt__lookup(f, fn, name, &arr)) != AFMT_OK) return rc;
    if (!buf) return afmt_fail(f->errmsg, AFMT_EINVAL, "afmt_read(\"%s\"): buf is NULL", name);
    if ((rc = afmt__check_region(f, fn, arr, start, count)) != AFMT_OK) return rc;
    int nd = arr->d.ndim;
    if (nd == 0) start = count = zeros;
    read_item *items = NULL;
    uint64_t n_items = 0, cap_items = 0;
    afmt_grid_iter it;
    afmt_grid_iter_init(&it, &arr->grid, start, count);
    while (rc == AFMT_OK && afmt_grid_iter_next(&it)) {
        read_item ri;
        ri.index = it.index;
        ri.nelems = it.nelems;
        ri.full = it.full;
        memcpy(ri.origin, it.origin, sizeof(uint64_t) * (size_t)nd);
        memcpy(ri.extent, it.extent, sizeof(uint64_t) * (size_t)nd);
        memcpy(ri.sel_start, it.sel_start, sizeof(uint64_t) * (size_t)nd);
        memcpy(ri.sel_count, it.sel_count, sizeof(uint64_t) * (size_t)nd);
        uint64_t *sp = f->n_staged ? afmt_hmap_get(&f->staged_map, arr->d.id, it.index) : NULL;
        if (sp) {
            rc = read_staged(f, arr, &f->staged[*sp], &ri, buf, start, count);
            continue;
        }
        const afmt_chunk_loc *loc = afmt_index_chunk(&f->idx, arr->d.id, it.index);
        if (!loc) {
            uint64_t bstart[AFMT_MAX_NDIM];
            for (int d = 0; d < nd; d++) bstart[d] = it.origin[d] + it.sel_start[d] - start[d];
            afmt__fill_box(arr, buf, count, bstart, it.sel_count);
            continue;
        }
        if (AFMT__GROW(items, cap_items, n_items + 1, 16) != AFMT_OK) {
            rc = afmt_fail(f->errmsg, AFMT_ENOMEM, "afmt_read(\"%s\"): out of memory", name);
            break;
        }
        ri.block = loc->block;
        ri.offset = loc->offset;
        items[n_items++] = ri;
    }
    /* Each block once, in file order. */
    if (rc == AFMT_OK && n_items > 1) qsort(items, (size_t)n_items, sizeof *items, item_cmp);
    decode_ctx dc = {NULL, buf, 0, arr->esize};
    int fused = (arr->d.flags & AFMT_ARRAY_SHUFFLE) && !afmt_host_is_big_endian();
    int plain = !(arr->d.flags & AFMT_ARRAY_SHUFFLE) && !afmt_host_is_big_endian();
    const uint8_t *raw = NULL;
    for (uint64_t i = 0; rc == AFMT_OK && i < n_items; i++) {
        const read_item *ri = &items[i];
        char what[AFMT_MAX_NAME + 64];
        if (i == 0 || ri->block != items[i - 1].block) {
            uint64_t n_in = 1;
            while (i + n_in < n_items && items[i + n_in].block == ri->block) n_in++;
            chunk_what(what, sizeof what, arr, ri->index);
            rc = fetch_block(f, ri->block, n_in >= f->idx.blocks[ri->block].nlive, &raw, what);
            if (rc != AFMT_OK) break;
        }
        const uint8_t *payload = raw + ri->offset;
        if (plain) {
            copy_out(arr, ri, payload, buf, start, count);
            continue;
        }
        if (fused) {
            /* Unshuffle each run of the selection straight into buf. */
            uint64_t bstart[AFMT_MAX_NDIM];
            sel_in_buf(nd, ri, start, bstart);
            dc.src = payload;
            dc.nelems = (size_t)ri->nelems;
            afmt_box_runs(nd, ri->sel_count, ri->extent, ri->sel_start, count, bstart, decode_run,
                          &dc);
            continue;
        }
        uint8_t *tmp = afmt__scratch(f, ri->nelems * arr->esize);
        if (!tmp) {
            rc = AFMT_ENOMEM;
            break;
        }
        afmt__chunk_decode(arr, tmp, payload, ri->nelems);
        copy_out(arr, ri, tmp, buf, start, count);
    }
    free(items);
    if (rc == AFMT_OK && arr->d.dtype == AFMT_BOOL) {
        /* Any nonzero byte is true and reads as 1 (format.md 6), from a block, a staged
         * chunk or the fill value alike. The caller's buffer holds them all: no overflow. */
        uint64_t n = 1;
        for (int d = 0; d < nd; d++) n *= count[d];
        afmt_bool_normalize(buf, (size_t)n);
    }
    return rc;
}
