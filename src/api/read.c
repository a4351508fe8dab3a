/* read.c - afmt_read, and the independent part of afmt_read_all (read_all.c): maps a
 * hyperslab to chunks, takes each from this rank's staged writes (staging.c), the
 * committed index (newest layer wins) or the fill value, fetches each needed block once
 * (grouped by block; fetch.c: read, verify, decompress, cache) and decodes each chunk's
 * selection straight into the caller's buffer (chunk_encode.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/fetch.h"
#include "api/file.h"
#include "api/memview.h"
#include "api/read.h"
#include "common/util.h"
#include "format/grid.h"
#include "index/chunk_encode.h"
#include "index/staging.h"

static const uint64_t zeros[AFMT_MAX_NDIM];

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

/* Where the chunk's selected part starts in the caller's buffer (the selection at start,
 * laid out as mv says). */
static void sel_in_buf(int nd, const read_item *it, const uint64_t *start, const afmt_memview *mv,
                       uint64_t *bstart) {
    for (int d = 0; d < nd; d++)
        bstart[d] = it->origin[d] + it->sel_start[d] - start[d] + mv->base[d];
}

/* Copies the selected part of a decoded chunk (native, its extent) into buf. */
static void copy_out(const afmt_array *arr, const read_item *it, const void *chunk, void *buf,
                     const uint64_t *start, const afmt_memview *mv) {
    int nd = arr->d.ndim;
    uint64_t bstart[AFMT_MAX_NDIM];
    sel_in_buf(nd, it, start, mv, bstart);
    afmt__box_copy(nd, arr->esize, it->sel_count, buf, mv->shape, bstart, chunk, it->extent,
                   it->sel_start);
}

/* The whole chunk as this rank sees it into out (nelems native elements, its extent),
 * from level on: 0, this rank's staged writes; 1, those of the commit in flight
 * (afmt_commit_start); 2, the committed layers. A partly written chunk is its writes over
 * the level below. enc: room for the chunk's encoded payload. */
static int chunk_at_level(afmt_file *f, const afmt_array *arr, uint64_t index, uint64_t nelems,
                          const uint64_t *extent, int level, uint8_t *out, uint8_t *enc) {
    int nd = arr->d.ndim, rc = AFMT_OK;
    const afmt_staged *s = NULL;
    if (level == 0) s = afmt__staging_find(&f->staging, arr->d.id, index);
    if (level == 1) s = afmt__drain_find(f, arr->d.id, index);
    if (level >= 2) return afmt__read_committed_chunk(f, arr, index, out);
    if (!s) return chunk_at_level(f, arr, index, nelems, extent, level + 1, out, enc);
    if (s->full) {
        if (level == 1) {
            char why[AFMT_ERRMSG_MAX];
            if ((rc = afmt__drain_alloc_read(f, s->block, s->offset, enc, s->size, why)) != AFMT_OK)
                afmt__fail(f->errmsg, rc, "afmt_read(\"%s\"): the commit in flight: %s",
                           arr->d.name, why);
        } else if ((rc = afmt__alloc_read(f->alloc, s->block, s->offset, enc, s->size)) !=
                   AFMT_OK) {
            afmt__fail(f->errmsg, rc, "afmt_read(\"%s\"): %s", arr->d.name,
                       afmt__alloc_errmsg(f->alloc));
        }
        if (rc == AFMT_OK) afmt__chunk_decode(arr, out, enc, nelems);
        return rc;
    }
    rc = chunk_at_level(f, arr, index, nelems, extent, level + 1, out, enc);
    for (uint32_t r = 0; rc == AFMT_OK && r < s->nrect; r++) {
        const uint64_t *rect = afmt__box_at(s->rect, nd, r);
        afmt__box_copy(nd, arr->esize, rect + nd, out, extent, rect, s->data, extent, rect);
    }
    return rc;
}

/* A chunk this rank staged, here or in the commit in flight: its content as of now
 * (committed, then own writes on top). */
static int read_staged(afmt_file *f, const afmt_array *arr, const read_item *it, void *buf,
                       const uint64_t *start, const afmt_memview *mv) {
    uint64_t bytes = it->nelems * arr->esize;
    uint8_t *tmp = malloc((size_t)bytes * 2 + 1);
    if (!tmp)
        return afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_read(\"%s\"): out of memory", arr->d.name);
    int rc = chunk_at_level(f, arr, it->index, it->nelems, it->extent, 0, tmp, tmp + bytes);
    if (rc == AFMT_OK) copy_out(arr, it, tmp, buf, start, mv);
    free(tmp);
    return rc;
}

/* The read's list of chunks to take from committed blocks (*items, *n: malloc'd). Staged
 * and never written chunks are served on the way: read_staged, fill value. */
static int collect_items(afmt_file *f, const afmt_array *arr, const uint64_t *start,
                         const uint64_t *count, const afmt_memview *mv, void *buf,
                         read_item **items, uint64_t *n) {
    int nd = arr->d.ndim, rc = AFMT_OK;
    uint64_t cap = 0;
    afmt_grid_iter it;
    afmt__grid_iter_init(&it, &arr->grid, start, count);
    while (rc == AFMT_OK && afmt__grid_iter_next(&it)) {
        read_item ri;
        ri.index = it.index;
        ri.nelems = it.nelems;
        ri.full = it.full;
        memcpy(ri.origin, it.origin, sizeof(uint64_t) * (size_t)nd);
        memcpy(ri.extent, it.extent, sizeof(uint64_t) * (size_t)nd);
        memcpy(ri.sel_start, it.sel_start, sizeof(uint64_t) * (size_t)nd);
        memcpy(ri.sel_count, it.sel_count, sizeof(uint64_t) * (size_t)nd);
        if (afmt__staging_find(&f->staging, arr->d.id, it.index) ||
            afmt__drain_find(f, arr->d.id, it.index)) {
            rc = read_staged(f, arr, &ri, buf, start, mv);
            continue;
        }
        afmt_chunk_loc where;
        int found = 0;
        char why[AFMT_ERRMSG_MAX];
        if ((rc = afmt__index_lookup(&f->idx, arr->d.id, it.index, &where, &found, why)) != AFMT_OK)
            return afmt__fail(f->errmsg, rc, "afmt_read(\"%s\"): chunk %llu: %.800s", arr->d.name,
                              (unsigned long long)it.index, why);
        const afmt_chunk_loc *loc = found ? &where : NULL;
        if (!loc) {
            uint64_t bstart[AFMT_MAX_NDIM];
            sel_in_buf(nd, &ri, start, mv, bstart);
            afmt__fill_box(arr, buf, mv->shape, bstart, it.sel_count);
            continue;
        }
        if (AFMT__GROW(*items, cap, *n + 1, 16) != AFMT_OK)
            return afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_read(\"%s\"): out of memory",
                              arr->d.name);
        ri.block = loc->block;
        ri.offset = loc->offset;
        (*items)[(*n)++] = ri;
    }
    return rc;
}

/* Decodes the listed chunks (sorted by block, offset) into buf: each block fetched once,
 * into the decode buffer instead of the cache when this read uses all of it. */
static int read_items(afmt_file *f, const afmt_array *arr, const read_item *items, uint64_t n,
                      void *buf, const uint64_t *start, const afmt_memview *mv) {
    int nd = arr->d.ndim, rc = AFMT_OK;
    const uint8_t *raw = NULL;
    for (uint64_t i = 0; rc == AFMT_OK && i < n; i++) {
        const read_item *ri = &items[i];
        if (i == 0 || ri->block != items[i - 1].block) {
            uint64_t n_in = 1;
            while (i + n_in < n && items[i + n_in].block == ri->block) n_in++;
            char what[AFMT_MAX_NAME + 64];
            afmt__chunk_what(what, sizeof what, arr, ri->index);
            rc =
                afmt__fetch_block(f, ri->block, n_in >= f->idx.blocks[ri->block].nlive, &raw, what);
            if (rc != AFMT_OK) break;
        }
        uint64_t need = afmt__chunk_decode_work(arr, ri->nelems);
        uint8_t *work = NULL;
        if (need && !(work = afmt__scratch(f, need))) return AFMT_ENOMEM; /* message set */
        uint64_t bstart[AFMT_MAX_NDIM];
        sel_in_buf(nd, ri, start, mv, bstart);
        afmt__chunk_decode_box(arr, raw + ri->offset, ri->extent, ri->sel_start, ri->sel_count, buf,
                               mv->shape, bstart, work);
    }
    return rc;
}

/* The chunks of one block, for read_blocks' use (on any thread of the pool). */
typedef struct {
    const afmt_array *arr;
    const read_item *items;
    const uint64_t *first; /* request i: items [first[i], first[i+1]) */
    void *buf;
    const uint64_t *start;
    const afmt_memview *mv;
} blocks_ctx;

static void use_block(void *ctx, uint64_t i, const uint8_t *raw) {
    const blocks_ctx *c = ctx;
    int nd = c->arr->d.ndim;
    for (uint64_t k = c->first[i]; k < c->first[i + 1]; k++) {
        const read_item *ri = &c->items[k];
        uint64_t bstart[AFMT_MAX_NDIM];
        sel_in_buf(nd, ri, c->start, c->mv, bstart);
        afmt__chunk_decode_box(c->arr, raw + ri->offset, ri->extent, ri->sel_start, ri->sel_count,
                               c->buf, c->mv->shape, bstart, NULL);
    }
}

/* read_items with the handle's pool: the blocks decompressed and their chunks decoded
 * into buf on several threads (fetch.h), each chunk's part of buf written by one thread.
 * Only where decoding needs no work buffer (little-endian hosts); else read_items. */
static int read_blocks(afmt_file *f, const afmt_array *arr, const read_item *items, uint64_t n,
                       void *buf, const uint64_t *start, const afmt_memview *mv) {
    uint64_t nb = 0;
    for (uint64_t i = 0; i < n; i++) nb += i == 0 || items[i].block != items[i - 1].block;
    afmt_fetch_req *reqs = malloc(sizeof *reqs * (size_t)(nb ? nb : 1));
    uint64_t *first = malloc(sizeof *first * (size_t)(nb + 1));
    if (!reqs || !first) {
        free(reqs);
        free(first);
        return afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_read(\"%s\"): out of memory", arr->d.name);
    }
    uint64_t b = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (i > 0 && items[i].block == items[i - 1].block) continue;
        uint64_t n_in = 1;
        while (i + n_in < n && items[i + n_in].block == items[i].block) n_in++;
        reqs[b].block = items[i].block;
        reqs[b].whole = n_in >= f->idx.blocks[items[i].block].nlive;
        afmt__chunk_what(reqs[b].what, sizeof reqs[b].what, arr, items[i].index);
        first[b++] = i;
    }
    first[nb] = n;
    blocks_ctx c = {arr, items, first, buf, start, mv};
    int rc = afmt__fetch_blocks(f, reqs, nb, use_block, &c);
    free(reqs);
    free(first);
    return rc;
}

/* Bools: any nonzero byte reads as 1 (format.md 6), from a block, a staged chunk or the
 * fill value alike; in a memory box, the box's runs only. */
static void bool_run(void *ctx, uint64_t a_off, uint64_t b_off, uint64_t len) {
    (void)b_off;
    afmt__bool_normalize((uint8_t *)ctx + a_off, (size_t)len);
}

int afmt__read_region_mv(afmt_file *f, const afmt_array *arr, const uint64_t *start,
                         const uint64_t *count, const afmt_memview *mv, void *buf) {
    int nd = arr->d.ndim;
    if (nd == 0) start = count = zeros;
    read_item *items = NULL;
    uint64_t n_items = 0;
    int rc = collect_items(f, arr, start, count, mv, buf, &items, &n_items);
    /* Each block once, in file order. */
    if (rc == AFMT_OK && n_items > 1) qsort(items, (size_t)n_items, sizeof *items, item_cmp);
    if (rc == AFMT_OK) {
        /* Several blocks and a pool: decompressed and decoded on its threads. */
        int parallel = n_items > 1 && items[0].block != items[n_items - 1].block &&
                       afmt__chunk_decode_work(arr, items[0].nelems) == 0 && afmt__file_pool(f);
        rc = parallel ? read_blocks(f, arr, items, n_items, buf, start, mv)
                      : read_items(f, arr, items, n_items, buf, start, mv);
    }
    free(items);
    if (rc == AFMT_OK && arr->d.dtype == AFMT_BOOL && mv->whole) {
        uint64_t n = 1;
        for (int d = 0; d < nd; d++) n *= count[d];
        afmt__bool_normalize(buf, (size_t)n);
    } else if (rc == AFMT_OK && arr->d.dtype == AFMT_BOOL) {
        afmt__box_runs(nd, count, mv->shape, mv->base, mv->shape, mv->base, bool_run, buf);
    }
    return rc;
}

int afmt__read_region(afmt_file *f, const afmt_array *arr, const uint64_t *start,
                      const uint64_t *count, void *buf) {
    afmt_memview mv;
    afmt__memview_whole(&mv, arr->d.ndim, arr->d.ndim ? count : zeros);
    return afmt__read_region_mv(f, arr, start, count, &mv, buf);
}

/* afmt_read (box 0) and afmt_read_box. */
static int read_box(afmt_file *f, const char *fn, const char *name, const uint64_t *start,
                    const uint64_t *count, int box, const uint64_t *mem_shape,
                    const uint64_t *mem_start, void *buf) {
    int rc = afmt__check(f, fn);
    if (rc != AFMT_OK) return rc;
    afmt_array *arr;
    if ((rc = afmt__lookup(f, fn, name, &arr)) != AFMT_OK) return rc;
    if (!buf) return afmt__fail(f->errmsg, AFMT_EINVAL, "%s(\"%s\"): buf is NULL", fn, name);
    if ((rc = afmt__check_region(f, fn, arr, start, count)) != AFMT_OK) return rc;
    afmt_memview mv;
    int nd = arr->d.ndim;
    if (box)
        rc = afmt__memview_box(f, fn, arr, count, mem_shape, mem_start, &mv);
    else
        afmt__memview_whole(&mv, nd, nd ? count : zeros);
    if (rc != AFMT_OK) return rc;
    afmt__drain_settle(f); /* a background commit's helper reads the index until then */
    return afmt__read_region_mv(f, arr, start, count, &mv, buf);
}

int afmt_read(afmt_file *f, const char *name, const uint64_t *start, const uint64_t *count,
              void *buf) {
    return read_box(f, "afmt_read", name, start, count, 0, NULL, NULL, buf);
}

int afmt_read_box(afmt_file *f, const char *name, const uint64_t *start, const uint64_t *count,
                  const uint64_t *mem_shape, const uint64_t *mem_start, void *buf) {
    return read_box(f, "afmt_read_box", name, start, count, 1, mem_shape, mem_start, buf);
}
