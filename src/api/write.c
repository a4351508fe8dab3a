/* write.c - afmt_write: cuts a hyperslab into chunks with no communication. A fully
 * covered chunk is encoded (chunk_encode.c) straight into the delta allocator; a partly
 * covered one is staged (staging.c) in a dense buffer with the boxes this rank wrote, to
 * be merged at commit (exchange.c). */
#include <stdlib.h>
#include <string.h>

#include "api/file.h"
#include "api/memview.h"
#include "common/util.h"
#include "format/grid.h"
#include "index/chunk_codec.h"
#include "index/chunk_encode.h"
#include "index/staging.h"

static const uint64_t zeros[AFMT_MAX_NDIM];

/* A fully written chunk's place in the open block, between stage_reserve and
 * stage_done: the caller encodes the payload into dst in between. */
typedef struct {
    afmt_staged *s;
    int fresh; /* the entry was made for this chunk: forgotten if the reservation fails */
    void *dst;
    uint64_t block, offset, size;
} stage_slot;

/* Reserves room for the encoded payload of a fully written chunk (nelems elements). */
static int stage_reserve(afmt_file *f, const afmt_array *arr, uint64_t chunk_index, uint64_t nelems,
                         stage_slot *out) {
    int rc = afmt__ensure_alloc(f);
    if (rc != AFMT_OK) return rc;
    if (afmt__staging_get(&f->staging, arr->d.id, chunk_index, &out->s, &out->fresh) != AFMT_OK)
        return afmt__fail(f->errmsg, AFMT_ENOMEM, "out of memory staging a chunk");
    out->size = nelems * arr->esize;
    rc = afmt__alloc_reserve(f->alloc, out->size, &out->dst, &out->block, &out->offset);
    if (rc != AFMT_OK) {
        if (out->fresh) afmt__staging_forget_new(&f->staging, out->s);
        return afmt__fail(f->errmsg, rc, "%s", afmt__alloc_errmsg(f->alloc));
    }
    return AFMT_OK;
}

/* Records the encoded chunk as staged. Only now is its older partial state freed: the
 * payload may have been encoded from it. */
static void stage_done(const stage_slot *sl) {
    afmt_staged *s = sl->s;
    afmt__staged_release(s);
    s->full = 1;
    s->block = sl->block;
    s->offset = sl->offset;
    s->size = sl->size;
}

/* A whole chunk of an array with its own compression setting (chunk_codec.h): gathered
 * from buf into a buffer of its own (the setting may round the values in place), stored,
 * then staged. */
static int stage_whole_own(afmt_file *f, const afmt_array *arr, const afmt_codec_setting *set,
                           const afmt_grid_iter *it, const uint64_t *bstart, const uint64_t *bshape,
                           const void *buf) {
    int rc = afmt__ensure_alloc(f);
    if (rc != AFMT_OK) return rc;
    uint8_t *native = malloc((size_t)(it->nelems * arr->esize) + 1);
    if (!native)
        return afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_write(\"%s\"): out of memory", arr->d.name);
    afmt__box_copy(arr->d.ndim, arr->esize, it->extent, native, it->extent, zeros, buf, bshape,
                   bstart);
    afmt_staged *s;
    int fresh = 0;
    afmt_chunk_rec r;
    char why[AFMT_ERRMSG_MAX];
    afmt_store_ctx c = {f->opts.codec, f->opts.level, f->opts.check_bounds};
    if (afmt__staging_get(&f->staging, arr->d.id, it->index, &s, &fresh) != AFMT_OK)
        rc = afmt__fail(f->errmsg, AFMT_ENOMEM, "out of memory staging a chunk");
    else if ((rc = afmt__chunk_store_own(f->alloc, &c, arr, set, it->index, it->extent, native,
                                         it->nelems, &r, why)) != AFMT_OK) {
        if (fresh) afmt__staging_forget_new(&f->staging, s);
        afmt__fail(f->errmsg, rc, "afmt_write(\"%s\"): %s", arr->d.name, why);
    } else {
        stage_slot sl = {s, fresh, NULL, r.block, r.offset, r.size};
        stage_done(&sl);
    }
    free(native);
    return rc;
}

/* A chunk the region covers wholly: encoded from buf (the selection at start, laid out in
 * memory as mv says) straight into the open block, by the pool where there is one
 * (afmt_write waits for it before returning). The work buffer, if the host needs one,
 * comes first: nothing fails after the reservation. */
static int stage_whole(afmt_file *f, const afmt_array *arr, const afmt_grid_iter *it,
                       const uint64_t *start, const afmt_memview *mv, const void *buf) {
    uint64_t bstart[AFMT_MAX_NDIM];
    for (int d = 0; d < arr->d.ndim; d++) bstart[d] = it->origin[d] - start[d] + mv->base[d];
    afmt_codec_setting set;
    if (afmt__chunk_has_setting(arr, &set))
        return stage_whole_own(f, arr, &set, it, bstart, mv->shape, buf);
    uint64_t need = afmt__chunk_encode_work(arr, it->extent, mv->shape);
    uint8_t *work = NULL;
    if (need && !(work = afmt__scratch(f, need))) return AFMT_ENOMEM; /* message set */
    stage_slot sl;
    int rc = stage_reserve(f, arr, it->index, it->nelems, &sl);
    if (rc != AFMT_OK) return rc;
    afmt__chunk_encode_box_later(f->alloc, arr, sl.dst, it->extent, buf, mv->shape, bstart, work);
    stage_done(&sl);
    return AFMT_OK;
}

/* The next partial state of a staged entry, built aside (stage_piece). */
typedef struct {
    uint8_t *data;
    uint64_t *rect;
    uint32_t nrect, cap;
} partial_state;

/* This rank wrote the whole chunk before: its payload decoded back into dense. */
static int whole_to_dense(afmt_file *f, const afmt_array *arr, const afmt_staged *s,
                          uint64_t nelems, uint8_t *dense) {
    uint8_t *enc = afmt__scratch(f, nelems * arr->esize);
    if (!enc) return AFMT_ENOMEM; /* message set */
    int rc = afmt__alloc_read(f->alloc, s->block, s->offset, enc, s->size);
    if (rc != AFMT_OK) return afmt__fail(f->errmsg, rc, "%s", afmt__alloc_errmsg(f->alloc));
    afmt__chunk_decode(arr, dense, enc, nelems);
    return AFMT_OK;
}

/* Builds s's next partial state aside in *p: the dense buffer (a whole chunk staged before
 * is decoded into it and becomes the first box) and room for one more box. On failure
 * *p holds what was made so far, for stage_piece to free. */
static int partial_prepare(afmt_file *f, const afmt_array *arr, const afmt_grid_iter *it,
                           const afmt_staged *s, partial_state *p) {
    uint64_t bytes = it->nelems * arr->esize;
    p->data = s->full ? NULL : s->data;
    p->rect = s->full ? NULL : s->rect;
    p->nrect = s->full ? 0 : s->nrect;
    p->cap = s->full ? 0 : s->cap_rect;
    if (!p->data && !(p->data = malloc((size_t)bytes)))
        return afmt__fail(f->errmsg, AFMT_ENOMEM, "out of memory staging a chunk of %llu bytes",
                          (unsigned long long)bytes);
    if (s->full) {
        int rc = whole_to_dense(f, arr, s, it->nelems, p->data);
        if (rc != AFMT_OK) return rc;
        p->nrect = 1;
    }
    if (afmt__boxes_reserve(&p->rect, &p->cap, p->nrect + 1, arr->d.ndim) != AFMT_OK)
        return afmt__fail(f->errmsg, AFMT_ENOMEM, "out of memory staging a chunk");
    return AFMT_OK;
}

/* Puts the prepared state into s and adds the box [sel_start, +sel_count) of buf's
 * selection (at start, laid out as mv says). Cannot fail. */
static void partial_install(const afmt_array *arr, const afmt_grid_iter *it, afmt_staged *s,
                            const partial_state *p, const uint64_t *start, const afmt_memview *mv,
                            const void *buf) {
    int nd = arr->d.ndim;
    if (s->full) {
        /* Rewriting a whole chunk: sealing it again after each piece would decode and
         * encode it at every write; the commit merges it once. */
        s->mixed = 1;
        uint64_t *first = afmt__box_at(p->rect, nd, 0);
        for (int d = 0; d < nd; d++) {
            first[d] = 0;
            first[nd + d] = it->extent[d];
        }
    } else {
        uint64_t vol = 1;
        for (int d = 0; d < nd; d++) vol *= it->sel_count[d];
        for (uint32_t r = 0; r < p->nrect && !s->mixed; r++) { /* p: s's boxes, maybe moved */
            const uint64_t *b = afmt__box_at(p->rect, nd, r);
            s->mixed = afmt__box_overlap(nd, b, b + nd, it->sel_start, it->sel_count);
        }
        s->covered += vol;
    }
    s->full = 0;
    s->data = p->data;
    s->rect = p->rect;
    s->cap_rect = p->cap;
    s->nrect = p->nrect;
    uint64_t *box = afmt__box_at(s->rect, nd, s->nrect);
    uint64_t bstart[AFMT_MAX_NDIM];
    for (int d = 0; d < nd; d++) {
        box[d] = it->sel_start[d];
        box[nd + d] = it->sel_count[d];
        bstart[d] = it->origin[d] + it->sel_start[d] - start[d] + mv->base[d];
    }
    s->nrect++;
    afmt__box_copy(nd, arr->esize, it->sel_count, s->data, it->extent, it->sel_start, buf,
                   mv->shape, bstart);
}

/* A partial chunk whose boxes, none overlapping another, now cover it: sealed at once as a
 * whole chunk, as if written in one call (row-by-row writes into a chunk then cost what one
 * write of the chunk costs, instead of a dense buffer kept and merged at the commit). If
 * sealing fails (no memory, the spill file), the chunk just stays partial: nothing is
 * lost, the commit merges it as before. */
static void seal_if_covered(afmt_file *f, const afmt_array *arr, const afmt_grid_iter *it,
                            afmt_staged *s) {
    if (s->full || s->mixed || s->covered != it->nelems || afmt__ensure_alloc(f) != AFMT_OK) return;
    afmt_chunk_rec r;
    afmt_codec_setting set;
    char why[AFMT_ERRMSG_MAX];
    afmt_store_ctx c = {f->opts.codec, f->opts.level, f->opts.check_bounds};
    int rc = afmt__chunk_has_setting(arr, &set)
                 ? afmt__chunk_store_own(f->alloc, &c, arr, &set, it->index, it->extent, s->data,
                                         it->nelems, &r, why)
                 : afmt__chunk_store(f->alloc, arr, it->index, s->data, it->nelems, &r);
    if (rc != AFMT_OK) return;
    stage_slot sl = {s, 0, NULL, r.block, r.offset, r.size};
    stage_done(&sl);
}

/* Adds a partly covered chunk's part of buf to its staged entry. Everything that can fail
 * is built aside first and swapped in last: a failure leaves the entry as it was. */
static int stage_piece(afmt_file *f, const afmt_array *arr, const afmt_grid_iter *it,
                       const uint64_t *start, const afmt_memview *mv, const void *buf) {
    afmt_staged *s;
    int fresh;
    if (afmt__staging_get(&f->staging, arr->d.id, it->index, &s, &fresh) != AFMT_OK)
        return afmt__fail(f->errmsg, AFMT_ENOMEM, "out of memory staging a chunk");
    partial_state p;
    int rc = partial_prepare(f, arr, it, s, &p);
    if (rc != AFMT_OK) {
        /* Only buffers made here are freed; a kept entry's own buffers stay its own. */
        if (p.data != s->data) free(p.data);
        if (s->full) free(p.rect);
        if (fresh) afmt__staging_forget_new(&f->staging, s);
        return rc;
    }
    partial_install(arr, it, s, &p, start, mv, buf);
    seal_if_covered(f, arr, it, s);
    return AFMT_OK;
}

/* afmt_write (box 0: buf holds exactly the selection) and afmt_write_box: the checks, then
 * every chunk the selection touches. */
static int write_box(afmt_file *f, const char *fn, const char *name, const uint64_t *start,
                     const uint64_t *count, int box, const uint64_t *mem_shape,
                     const uint64_t *mem_start, const void *buf) {
    int rc = afmt__check(f, fn);
    if (rc != AFMT_OK) return rc;
    if ((rc = afmt__check_writable(f, fn)) != AFMT_OK) return rc;
    afmt_array *arr;
    if ((rc = afmt__lookup(f, fn, name, &arr)) != AFMT_OK) return rc;
    if (!buf) return afmt__fail(f->errmsg, AFMT_EINVAL, "%s(\"%s\"): buf is NULL", fn, name);
    if ((rc = afmt__check_region(f, fn, arr, start, count)) != AFMT_OK) return rc;
    int nd = arr->d.ndim;
    afmt_memview mv;
    if (box)
        rc = afmt__memview_box(f, fn, arr, count, mem_shape, mem_start, &mv);
    else
        afmt__memview_whole(&mv, nd, count);
    if (rc != AFMT_OK) return rc;
    afmt_grid_iter it;
    afmt__grid_iter_init(&it, &arr->grid, nd ? start : zeros, nd ? count : zeros);
    while (rc == AFMT_OK && afmt__grid_iter_next(&it))
        rc = it.full ? stage_whole(f, arr, &it, nd ? start : zeros, &mv, buf)
                     : stage_piece(f, arr, &it, nd ? start : zeros, &mv, buf);
    /* Whole chunks are encoded from buf on the pool: done before buf goes back. */
    if (f->alloc) afmt__alloc_fill_wait(f->alloc);
    return rc;
}

int afmt_write(afmt_file *f, const char *name, const uint64_t *start, const uint64_t *count,
               const void *buf) {
    return write_box(f, "afmt_write", name, start, count, 0, NULL, NULL, buf);
}

int afmt_write_box(afmt_file *f, const char *name, const uint64_t *start, const uint64_t *count,
                   const uint64_t *mem_shape, const uint64_t *mem_start, const void *buf) {
    return write_box(f, "afmt_write_box", name, start, count, 1, mem_shape, mem_start, buf);
}
