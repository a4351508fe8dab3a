/* grid.c - chunk-grid arithmetic and n-dimensional box copies. */
#include "format/grid.h"

#include <string.h>

#include "common/util.h"

int afmt__grid_init(afmt_grid *g, int ndim, const uint64_t *shape, const uint64_t *chunk) {
    if (!g || ndim < 0 || ndim > AFMT_MAX_NDIM) return AFMT_EINVAL;
    if (ndim > 0 && (!shape || !chunk)) return AFMT_EINVAL;
    afmt_grid t;
    memset(&t, 0, sizeof t);
    t.ndim = ndim;
    uint64_t nelem = 1, nch = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 0 || chunk[d] == 0 || chunk[d] > shape[d]) return AFMT_EINVAL;
        t.shape[d] = shape[d];
        t.chunk[d] = chunk[d];
        /* Written so that it cannot overflow, unlike (shape + chunk - 1) / chunk. */
        t.nchunk[d] = shape[d] / chunk[d] + (shape[d] % chunk[d] != 0);
        if (!afmt__mul_ok(nelem, shape[d], &nelem) || !afmt__mul_ok(nch, t.nchunk[d], &nch))
            return AFMT_EINVAL;
    }
    *g = t;
    return AFMT_OK;
}

int afmt__grid_bytes(const afmt_grid *g, size_t esize, uint64_t *array_bytes,
                     uint64_t *chunk_bytes) {
    /* afmt__grid_init made sure the element count fits; chunk[d] <= shape[d], so the
     * chunk's element count fits too. Only the products with esize can overflow. */
    uint64_t nelem = 1, celem = 1, ab = 0, cb = 0;
    for (int d = 0; d < g->ndim; d++) {
        nelem *= g->shape[d];
        celem *= g->chunk[d];
    }
    int ok = esize > 0;
    if (!afmt__mul_ok(nelem, esize, &ab))
        ok = 0;
    else if (array_bytes)
        *array_bytes = ab;
    if (!afmt__mul_ok(celem, esize, &cb))
        ok = 0;
    else if (chunk_bytes)
        *chunk_bytes = cb;
    if (cb > AFMT_MAX_CHUNK_BYTES) ok = 0;
    return ok ? AFMT_OK : AFMT_EINVAL;
}

void afmt__grid_auto_chunk(int ndim, const uint64_t *shape, size_t esize, uint64_t *chunk) {
    uint64_t es = esize ? (uint64_t)esize : 1, t = AFMT_AUTO_CHUNK_TARGET / es;
    uint64_t max = AFMT_AUTO_CHUNK_MAX / es, n = 1;
    int small = 1;
    for (int d = 0; d < ndim; d++) {
        chunk[d] = shape[d];
        if (shape[d] == 0) return; /* afmt_define refuses it */
    }
    for (int d = ndim - 1; d >= 0 && small; d--) { /* at most max elements in all? */
        if (shape[d] > max / n)
            small = 0;
        else
            n *= shape[d];
    }
    if (small) return;
    uint64_t p = 1; /* the elements of the dimensions taken whole: p <= t */
    int d = ndim - 1;
    for (; d >= 0 && shape[d] <= t / p; d--) p *= shape[d];
    /* d >= 0: the whole array (more than max >= t elements) cannot be taken whole. */
    chunk[d] = t / p; /* >= 1 as p <= t; < shape[d] as shape[d] > t / p */
    for (int e = d - 1; e >= 0; e--) chunk[e] = 1;
}

uint64_t afmt__grid_nchunks(const afmt_grid *g) {
    uint64_t n = 1;
    for (int d = 0; d < g->ndim; d++) n *= g->nchunk[d];
    return n;
}

uint64_t afmt__grid_chunk_index(const afmt_grid *g, const uint64_t *ccoord) {
    uint64_t idx = 0;
    for (int d = 0; d < g->ndim; d++) idx = idx * g->nchunk[d] + ccoord[d];
    return idx;
}

void afmt__grid_chunk_coord(const afmt_grid *g, uint64_t index, uint64_t *ccoord) {
    for (int d = g->ndim - 1; d >= 0; d--) {
        ccoord[d] = index % g->nchunk[d];
        index /= g->nchunk[d];
    }
}

uint64_t afmt__grid_chunk_box(const afmt_grid *g, const uint64_t *ccoord, uint64_t *origin,
                              uint64_t *extent) {
    uint64_t n = 1;
    for (int d = 0; d < g->ndim; d++) {
        uint64_t o = ccoord[d] * g->chunk[d];
        uint64_t rest = g->shape[d] - o;
        uint64_t e = rest < g->chunk[d] ? rest : g->chunk[d];
        if (origin) origin[d] = o;
        if (extent) extent[d] = e;
        n *= e;
    }
    return n;
}

void afmt__grid_iter_init(afmt_grid_iter *it, const afmt_grid *g, const uint64_t *start,
                          const uint64_t *count) {
    memset(it, 0, sizeof *it);
    it->g = g;
    for (int d = 0; d < g->ndim; d++) {
        uint64_t end;
        /* Empty or out-of-grid hyperslabs touch no chunk (callers validate regions and
         * report errors themselves; this only keeps the iterator safe). */
        if (count[d] == 0 || !afmt__add_ok(start[d], count[d], &end) || end > g->shape[d]) {
            it->done = 1;
            return;
        }
        it->start[d] = start[d];
        it->count[d] = count[d];
        it->lo[d] = start[d] / g->chunk[d];
        it->hi[d] = (end - 1) / g->chunk[d];
    }
}

int afmt__grid_iter_next(afmt_grid_iter *it) {
    const afmt_grid *g = it->g;
    if (it->done) return 0;
    if (!it->started) {
        it->started = 1;
        for (int d = 0; d < g->ndim; d++) it->ccoord[d] = it->lo[d];
    } else {
        /* Odometer step in C order: the last dimension varies fastest. */
        int d = g->ndim - 1;
        for (; d >= 0; d--) {
            if (it->ccoord[d] < it->hi[d]) {
                it->ccoord[d]++;
                break;
            }
            it->ccoord[d] = it->lo[d];
        }
        if (d < 0) {
            it->done = 1;
            return 0;
        }
    }
    it->index = afmt__grid_chunk_index(g, it->ccoord);
    it->nelems = afmt__grid_chunk_box(g, it->ccoord, it->origin, it->extent);
    it->full = 1;
    for (int d = 0; d < g->ndim; d++) {
        uint64_t lo = it->start[d] > it->origin[d] ? it->start[d] : it->origin[d];
        uint64_t se = it->start[d] + it->count[d], ce = it->origin[d] + it->extent[d];
        uint64_t hi = se < ce ? se : ce;
        it->sel_start[d] = lo - it->origin[d];
        it->sel_count[d] = hi - lo;
        if (it->sel_count[d] != it->extent[d]) it->full = 0;
    }
    return 1;
}

#define STRIDED(sz)                                                                                \
    for (size_t i = 0; i < n0; i++, sp += bs0, dp += bd0) memcpy(dp, sp, sz)

/* The box of size count in two C-ordered arrays a and b, reduced to as few dimensions as
 * possible, innermost first: dims of count 1 vanish, and a dim merges into the group
 * inside it when that group spans whole rows of both arrays (its stride equals the
 * group's count times the group's stride). Sets the element offsets of the box's first
 * element in a and b, and per reduced dim r (0 = innermost) its count rc[r] and element
 * strides ra[r], rb[r]. Returns the number of reduced dims, or -1 for an empty box. */
static int reduce_box(int ndim, const uint64_t *count, const uint64_t *a_shape,
                      const uint64_t *a_start, const uint64_t *b_shape, const uint64_t *b_start,
                      uint64_t *aoff, uint64_t *boff, uint64_t *rc, uint64_t *ra, uint64_t *rb) {
    uint64_t ast[AFMT_MAX_NDIM], bst[AFMT_MAX_NDIM];
    uint64_t as = 1, bs = 1;
    *aoff = *boff = 0;
    for (int d = ndim - 1; d >= 0; d--) {
        if (count[d] == 0) return -1;
        ast[d] = as;
        bst[d] = bs;
        *aoff += a_start[d] * as;
        *boff += b_start[d] * bs;
        as *= a_shape[d];
        bs *= b_shape[d];
    }
    int nr = 0;
    for (int d = ndim - 1; d >= 0; d--) {
        if (count[d] == 1) continue;
        if (nr > 0 && ra[nr - 1] * rc[nr - 1] == ast[d] && rb[nr - 1] * rc[nr - 1] == bst[d]) {
            rc[nr - 1] *= count[d];
            continue;
        }
        rc[nr] = count[d];
        ra[nr] = ast[d];
        rb[nr] = bst[d];
        nr++;
    }
    return nr;
}

void afmt__box_copy(int ndim, size_t esize, const uint64_t *count, void *dst,
                    const uint64_t *dst_shape, const uint64_t *dst_start, const void *src,
                    const uint64_t *src_shape, const uint64_t *src_start) {
    uint8_t *d8 = dst;
    const uint8_t *s8 = src;
    uint64_t soff, doff, rc[AFMT_MAX_NDIM], rss[AFMT_MAX_NDIM], rds[AFMT_MAX_NDIM];
    int nr = reduce_box(ndim, count, src_shape, src_start, dst_shape, dst_start, &soff, &doff, rc,
                        rss, rds);
    if (nr < 0) return;
    s8 += (size_t)soff * esize;
    d8 += (size_t)doff * esize;

    /* The innermost group is one contiguous run when it has unit stride on both sides. */
    size_t run = esize;
    int first = 0;
    if (nr > 0 && rss[0] == 1 && rds[0] == 1) {
        run = (size_t)rc[0] * esize;
        first = 1;
    }
    if (first == nr) {
        memcpy(d8, s8, run);
        return;
    }
    /* Byte strides of the remaining dims; odometer over all but the innermost of them. */
    size_t bs[AFMT_MAX_NDIM], bd[AFMT_MAX_NDIM];
    uint64_t idx[AFMT_MAX_NDIM];
    for (int r = first; r < nr; r++) {
        bs[r] = (size_t)rss[r] * esize;
        bd[r] = (size_t)rds[r] * esize;
        idx[r] = 0;
    }
    const size_t n0 = (size_t)rc[first], bs0 = bs[first], bd0 = bd[first];
    for (;;) {
        const uint8_t *sp = s8;
        uint8_t *dp = d8;
        /* Strided single elements: constant sizes let the compiler inline the copies. */
        switch (run) {
        case 1:
            STRIDED(1);
            break;
        case 2:
            STRIDED(2);
            break;
        case 4:
            STRIDED(4);
            break;
        case 8:
            STRIDED(8);
            break;
        default:
            STRIDED(run);
            break;
        }
        int r = first + 1;
        for (; r < nr; r++) {
            s8 += bs[r];
            d8 += bd[r];
            if (++idx[r] < rc[r]) break;
            s8 -= bs[r] * (size_t)rc[r];
            d8 -= bd[r] * (size_t)rc[r];
            idx[r] = 0;
        }
        if (r >= nr) return;
    }
}

#undef STRIDED

void afmt__box_runs(int ndim, const uint64_t *count, const uint64_t *a_shape,
                    const uint64_t *a_start, const uint64_t *b_shape, const uint64_t *b_start,
                    afmt_run_fn fn, void *ctx) {
    uint64_t aoff, boff, rc[AFMT_MAX_NDIM], ra[AFMT_MAX_NDIM], rb[AFMT_MAX_NDIM];
    int nr = reduce_box(ndim, count, a_shape, a_start, b_shape, b_start, &aoff, &boff, rc, ra, rb);
    if (nr < 0) return;
    uint64_t len = 1;
    int first = 0;
    if (nr > 0 && ra[0] == 1 && rb[0] == 1) {
        len = rc[0];
        first = 1;
    }
    uint64_t idx[AFMT_MAX_NDIM] = {0};
    for (;;) {
        fn(ctx, aoff, boff, len);
        int r = first;
        for (; r < nr; r++) {
            aoff += ra[r];
            boff += rb[r];
            if (++idx[r] < rc[r]) break;
            aoff -= ra[r] * rc[r];
            boff -= rb[r] * rc[r];
            idx[r] = 0;
        }
        if (r >= nr) return;
    }
}

int afmt__box_overlap(int ndim, const uint64_t *a0, const uint64_t *ac, const uint64_t *b0,
                      const uint64_t *bc) {
    for (int d = 0; d < ndim; d++) {
        if (ac[d] == 0 || bc[d] == 0) return 0;
        /* a0 < b0 + bc && b0 < a0 + ac, written without the additions' overflow. */
        if (a0[d] >= b0[d] ? a0[d] - b0[d] >= bc[d] : b0[d] - a0[d] >= ac[d]) return 0;
    }
    return 1;
}
