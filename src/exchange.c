/* exchange.c - the first step of a commit: resolving chunks that are not wholly written
 * by one rank. Phase A sends every staged chunk's key (and, for partial chunks, the boxes
 * written) to the chunk's owner rank (a hash of the key), which detects overlaps between
 * ranks and picks one merger per partial chunk: the contributor that wrote most of it.
 * Phase B sends the pieces to their merger (MPI_Alltoallv), which lays them over the
 * chunk's committed content (or fill) where they do not cover it, and encodes the result
 * into its allocator. Afterwards every staged chunk is full. */
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "grid.h"
#include "util.h"

static int owner_of(uint64_t a, uint64_t c, int size) {
    uint64_t x = a * 0x9E3779B97F4A7C15ull ^ (c + 0x632BE59BD9B4E019ull);
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    return (int)(x % (uint64_t)size);
}

static uint64_t box_volume(int nd, const uint64_t *count) {
    uint64_t v = 1;
    for (int d = 0; d < nd; d++) v *= count[d];
    return v;
}

/* A record as received by an owner in phase A. */
typedef struct {
    uint64_t a, c;
    int rank;
    uint32_t full, nrect;
    const uint8_t *rects; /* nrect * 2 * nd u64, little-endian */
    uint64_t volume;
    uint64_t seq; /* position among the records from that rank */
    int merger;
} key_rec;

static int key_cmp(const void *x, const void *y) {
    const key_rec *p = x, *q = y;
    if (p->a != q->a) return p->a < q->a ? -1 : 1;
    if (p->c != q->c) return p->c < q->c ? -1 : 1;
    return p->rank - q->rank;
}

static int arr_ndim(afmt_file *f, uint64_t a) {
    const afmt_array *arr = afmt_index_by_id(&f->idx, a);
    return arr ? arr->d.ndim : 0;
}

static void get_rect(const uint8_t *p, int nd, uint64_t *start, uint64_t *count) {
    for (int d = 0; d < nd; d++) {
        start[d] = afmt_get_u64(p + 8 * (size_t)d);
        count[d] = afmt_get_u64(p + 8 * (size_t)(nd + d));
    }
}

/* Owner side of phase A: checks overlaps and picks mergers. rc != OK names the first
 * overlap found. */
static int decide(afmt_file *f, key_rec *k, uint64_t n) {
    int rc = AFMT_OK;
    if (n > 1) qsort(k, (size_t)n, sizeof *k, key_cmp);
    for (uint64_t i = 0; i < n;) {
        uint64_t j = i + 1;
        while (j < n && k[j].a == k[i].a && k[j].c == k[i].c) j++;
        int nd = arr_ndim(f, k[i].a);
        int any_full = 0, best = -1;
        uint64_t best_vol = 0;
        for (uint64_t x = i; x < j; x++) {
            any_full |= k[x].full != 0;
            if (best < 0 || k[x].volume > best_vol) {
                best = k[x].rank;
                best_vol = k[x].volume;
            }
        }
        int overlap = j - i > 1 && any_full;
        uint64_t s1[AFMT_MAX_NDIM], c1[AFMT_MAX_NDIM], s2[AFMT_MAX_NDIM], c2[AFMT_MAX_NDIM];
        for (uint64_t x = i; !overlap && x < j; x++)
            for (uint64_t y = x + 1; !overlap && y < j; y++)
                for (uint32_t r1 = 0; !overlap && r1 < k[x].nrect; r1++)
                    for (uint32_t r2 = 0; !overlap && r2 < k[y].nrect; r2++) {
                        get_rect(k[x].rects + (size_t)r1 * 16 * (size_t)nd, nd, s1, c1);
                        get_rect(k[y].rects + (size_t)r2 * 16 * (size_t)nd, nd, s2, c2);
                        overlap = afmt_box_overlap(nd, s1, c1, s2, c2);
                    }
        if (overlap && rc == AFMT_OK) {
            const afmt_array *arr = afmt_index_by_id(&f->idx, k[i].a);
            rc = afmt_fail(f->errmsg, AFMT_EINVAL,
                           "afmt_commit(\"%s\"): ranks %d and %d wrote overlapping regions of "
                           "chunk %llu in one commit",
                           arr ? arr->d.name : "?", k[i].rank, k[i + 1].rank,
                           (unsigned long long)k[i].c);
        }
        for (uint64_t x = i; x < j; x++) k[x].merger = (j - i == 1 && k[x].full) ? -1 : best;
        i = j;
    }
    return rc;
}

/* Lays the boxes of a received piece into the merger's staged dense buffer. */
static int take_piece(const afmt_array *arr, afmt_staged *s, const uint8_t *p, uint32_t nrect,
                      const uint8_t *data) {
    int nd = arr->d.ndim;
    uint64_t cc[AFMT_MAX_NDIM], origin[AFMT_MAX_NDIM], ext[AFMT_MAX_NDIM];
    afmt_grid_chunk_coord(&arr->grid, s->chunk_index, cc);
    afmt_grid_chunk_box(&arr->grid, cc, origin, ext);
    if (s->nrect + nrect > s->cap_rect) {
        uint32_t cap = s->nrect + nrect;
        uint64_t *r = realloc(s->rect, sizeof(uint64_t) * 2 * (size_t)(nd ? nd : 1) * cap);
        if (!r) return AFMT_ENOMEM;
        s->rect = r;
        s->cap_rect = cap;
    }
    static const uint64_t zeros[AFMT_MAX_NDIM];
    for (uint32_t r = 0; r < nrect; r++) {
        uint64_t *rect = s->rect + (size_t)2 * (size_t)nd * s->nrect;
        get_rect(p + (size_t)r * 16 * (size_t)nd, nd, rect, rect + nd);
        afmt_box_copy(nd, arr->esize, rect + nd, s->data, ext, rect, data, rect + nd, zeros);
        data += box_volume(nd, rect + nd) * arr->esize;
        s->nrect++;
    }
    return AFMT_OK;
}

/* Merges a partial chunk of this rank (its own and received boxes) over the committed
 * content and stages it as a full chunk. */
static int merge_chunk(afmt_file *f, const afmt_array *arr, afmt_staged *s) {
    int nd = arr->d.ndim;
    uint64_t cc[AFMT_MAX_NDIM], origin[AFMT_MAX_NDIM], ext[AFMT_MAX_NDIM];
    afmt_grid_chunk_coord(&arr->grid, s->chunk_index, cc);
    uint64_t ne = afmt_grid_chunk_box(&arr->grid, cc, origin, ext);
    /* Which elements are written? Only if some are not do we read the older content. */
    uint8_t *mask = calloc((size_t)ne, 1);
    if (!mask) return AFMT_ENOMEM;
    uint64_t covered = 0;
    for (uint32_t r = 0; r < s->nrect; r++) {
        const uint64_t *rect = s->rect + (size_t)2 * (size_t)nd * r;
        uint64_t vol = box_volume(nd, rect + nd), idx[AFMT_MAX_NDIM] = {0};
        for (uint64_t e = 0; e < vol; e++) {
            uint64_t lin = 0;
            for (int d = 0; d < nd; d++) lin = lin * ext[d] + rect[d] + idx[d];
            covered += mask[lin] == 0;
            mask[lin] = 1;
            for (int d = nd - 1; d >= 0; d--) {
                if (++idx[d] < rect[nd + d]) break;
                idx[d] = 0;
            }
        }
    }
    free(mask);
    int rc = AFMT_OK;
    uint8_t *data = s->data;
    uint8_t *tmp = NULL;
    if (covered < ne) {
        tmp = malloc((size_t)(ne * arr->esize));
        if (!tmp) return AFMT_ENOMEM;
        rc = afmt__read_committed_chunk(f, arr, s->chunk_index, tmp);
        for (uint32_t r = 0; rc == AFMT_OK && r < s->nrect; r++) {
            const uint64_t *rect = s->rect + (size_t)2 * (size_t)nd * r;
            afmt_box_copy(nd, arr->esize, rect + nd, tmp, ext, rect, s->data, ext, rect);
        }
        data = tmp;
    }
    if (rc == AFMT_OK) rc = afmt__stage_full(f, arr, s->chunk_index, data, ne);
    free(tmp);
    return rc;
}

/* COLLECTIVE. Sends out[r] to rank r (the buffers are freed) and receives into *rbuf. */
static int exchange_bufs(afmt_file *f, afmt_buf *out, uint64_t *scount, uint8_t **rbuf,
                         uint64_t *rcount, uint64_t *rdispl, const char *what) {
    afmt_buf all;
    afmt_buf_init(&all);
    int oom = 0;
    for (int r = 0; r < f->size; r++) {
        scount[r] = out[r].len;
        oom |= out[r].oom;
        afmt_buf_append(&all, out[r].data, out[r].len);
        afmt_buf_free(&out[r]);
    }
    int rc =
        oom || all.oom ? afmt_fail(f->errmsg, AFMT_ENOMEM, "afmt_commit: out of memory") : AFMT_OK;
    rc = afmt__agree(f, rc);
    if (rc == AFMT_OK) {
        rc = afmt__alltoallv_bytes(f->comm, all.data, scount, rbuf, rcount, rdispl);
        if (rc != AFMT_OK) afmt_fail(f->errmsg, rc, "afmt_commit: %s failed", what);
    }
    afmt_buf_free(&all);
    return afmt__agree(f, rc);
}

int afmt__exchange(afmt_file *f) {
    int size = f->size, rc = AFMT_OK;
    uint64_t *scount = calloc((size_t)size * 4, sizeof(uint64_t));
    afmt_buf *out = calloc((size_t)size, sizeof(afmt_buf));
    uint8_t *rbuf = NULL, *rbuf2 = NULL, *sbuf = NULL;
    key_rec *keys = NULL;
    int32_t *merger = NULL;
    if (!scount || !out) {
        rc = afmt_fail(f->errmsg, AFMT_ENOMEM, "afmt_commit: out of memory");
        goto done_early;
    }
    uint64_t *rcount = scount + size, *rdispl = scount + 2 * size, *soff = scount + 3 * size;

    /* Phase A: keys (and boxes of partial chunks) to owners. */
    for (uint64_t i = 0; i < f->n_staged; i++) {
        const afmt_staged *s = &f->staged[i];
        int o = owner_of(s->array_id, s->chunk_index, size);
        int nd = arr_ndim(f, s->array_id);
        afmt_buf_u64(&out[o], s->array_id);
        afmt_buf_u64(&out[o], s->chunk_index);
        afmt_buf_u32(&out[o], (uint32_t)s->full);
        afmt_buf_u32(&out[o], s->full ? 0 : s->nrect);
        for (uint32_t r = 0; !s->full && r < s->nrect; r++)
            for (int d = 0; d < 2 * nd; d++)
                afmt_buf_u64(&out[o], s->rect[(size_t)2 * (size_t)nd * r + (size_t)d]);
    }
    rc = exchange_bufs(f, out, scount, &rbuf, rcount, rdispl, "exchanging chunk keys");
    if (rc != AFMT_OK) goto done;

    /* Owner: parse, decide. */
    uint64_t nk = 0, cap = 0;
    for (int src = 0; src < size && rc == AFMT_OK; src++) {
        const uint8_t *p = rbuf + rdispl[src], *end = p + rcount[src];
        uint64_t seq = 0;
        while (p < end) {
            if (nk == cap) {
                cap = cap ? 2 * cap : 256;
                key_rec *kk = realloc(keys, sizeof *kk * (size_t)cap);
                if (!kk) {
                    rc = afmt_fail(f->errmsg, AFMT_ENOMEM, "afmt_commit: out of memory");
                    break;
                }
                keys = kk;
            }
            key_rec *k = &keys[nk++];
            k->a = afmt_get_u64(p);
            k->c = afmt_get_u64(p + 8);
            k->full = afmt_get_u32(p + 16);
            k->nrect = afmt_get_u32(p + 20);
            k->rank = src;
            k->seq = seq++;
            k->rects = p + 24;
            int nd = arr_ndim(f, k->a);
            const afmt_array *arr = afmt_index_by_id(&f->idx, k->a);
            k->volume = 0;
            if (k->full && arr) {
                uint64_t cc[AFMT_MAX_NDIM], o[AFMT_MAX_NDIM], e[AFMT_MAX_NDIM];
                afmt_grid_chunk_coord(&arr->grid, k->c, cc);
                k->volume = afmt_grid_chunk_box(&arr->grid, cc, o, e);
            }
            for (uint32_t r = 0; r < k->nrect; r++) {
                uint64_t s0[AFMT_MAX_NDIM], c0[AFMT_MAX_NDIM];
                get_rect(k->rects + (size_t)r * 16 * (size_t)nd, nd, s0, c0);
                k->volume += box_volume(nd, c0);
            }
            p += 24 + (size_t)k->nrect * 16 * (size_t)nd;
        }
    }
    if (rc == AFMT_OK) rc = decide(f, keys, nk);
    rc = afmt__agree(f, rc);
    if (rc != AFMT_OK) goto done;

    /* Tell each contributor the merger of each of its records (int32, in its order). */
    sbuf = malloc((size_t)(nk ? nk : 1) * 4);
    if (!sbuf) rc = afmt_fail(f->errmsg, AFMT_ENOMEM, "afmt_commit: out of memory");
    rc = afmt__agree(f, rc);
    if (rc != AFMT_OK) goto done;
    for (int r = 0; r < size; r++) scount[r] = 0;
    for (uint64_t i = 0; i < nk; i++) scount[keys[i].rank] += 4;
    soff[0] = 0;
    for (int r = 1; r < size; r++) soff[r] = soff[r - 1] + scount[r - 1];
    for (uint64_t i = 0; i < nk; i++)
        afmt_put_u32(sbuf + soff[keys[i].rank] + 4 * keys[i].seq, (uint32_t)keys[i].merger);
    free(rbuf);
    rbuf = NULL;
    rc = afmt__alltoallv_bytes(f->comm, sbuf, scount, &rbuf, rcount, rdispl);
    if (rc != AFMT_OK) afmt_fail(f->errmsg, rc, "afmt_commit: exchanging merge decisions failed");
    rc = afmt__agree(f, rc);
    if (rc != AFMT_OK) goto done;
    /* My records went to owners in staged order grouped by owner; rebuild that order. */
    merger = malloc(sizeof(int32_t) * (size_t)(f->n_staged ? f->n_staged : 1));
    if (!merger) rc = afmt_fail(f->errmsg, AFMT_ENOMEM, "afmt_commit: out of memory");
    if (rc == AFMT_OK) {
        for (int r = 0; r < size; r++) soff[r] = 0;
        for (uint64_t i = 0; i < f->n_staged; i++) {
            int o = owner_of(f->staged[i].array_id, f->staged[i].chunk_index, size);
            merger[i] = (int32_t)afmt_get_u32(rbuf + rdispl[o] + soff[o]);
            soff[o] += 4;
        }
    }
    rc = afmt__agree(f, rc);
    if (rc != AFMT_OK) goto done;

    /* Phase B: pieces to their mergers. */
    for (uint64_t i = 0; i < f->n_staged; i++) {
        const afmt_staged *s = &f->staged[i];
        if (s->full || merger[i] == f->rank || merger[i] < 0) continue;
        const afmt_array *arr = afmt_index_by_id(&f->idx, s->array_id);
        int nd = arr->d.ndim, m = merger[i];
        uint64_t cc[AFMT_MAX_NDIM], origin[AFMT_MAX_NDIM], ext[AFMT_MAX_NDIM];
        afmt_grid_chunk_coord(&arr->grid, s->chunk_index, cc);
        afmt_grid_chunk_box(&arr->grid, cc, origin, ext);
        afmt_buf_u64(&out[m], s->array_id);
        afmt_buf_u64(&out[m], s->chunk_index);
        afmt_buf_u32(&out[m], s->nrect);
        afmt_buf_u32(&out[m], 0);
        for (uint32_t r = 0; r < s->nrect; r++)
            for (int d = 0; d < 2 * nd; d++)
                afmt_buf_u64(&out[m], s->rect[(size_t)2 * (size_t)nd * r + (size_t)d]);
        static const uint64_t zeros[AFMT_MAX_NDIM];
        for (uint32_t r = 0; r < s->nrect; r++) {
            const uint64_t *rect = s->rect + (size_t)2 * (size_t)nd * r;
            uint64_t bytes = box_volume(nd, rect + nd) * arr->esize;
            size_t at = out[m].len;
            afmt_buf_zero(&out[m], (size_t)bytes);
            if (out[m].oom) break;
            afmt_box_copy(nd, arr->esize, rect + nd, out[m].data + at, rect + nd, zeros, s->data,
                          ext, rect);
        }
    }
    rc = exchange_bufs(f, out, scount, &rbuf2, rcount, rdispl, "exchanging shared chunks");
    if (rc != AFMT_OK) goto done;

    /* Merger: lay received pieces into its own partial entries. */
    for (int src = 0; src < size && rc == AFMT_OK; src++) {
        const uint8_t *p = rbuf2 + rdispl[src], *end = p + rcount[src];
        while (p < end && rc == AFMT_OK) {
            uint64_t a = afmt_get_u64(p), c = afmt_get_u64(p + 8);
            uint32_t nrect = afmt_get_u32(p + 16);
            const afmt_array *arr = afmt_index_by_id(&f->idx, a);
            int nd = arr->d.ndim;
            const uint8_t *rects = p + 24, *data = rects + (size_t)nrect * 16 * (size_t)nd;
            uint64_t *pos = afmt_hmap_get(&f->staged_map, a, c);
            if (!pos || f->staged[*pos].full) {
                rc = afmt_fail(f->errmsg, AFMT_EINVAL,
                               "afmt_commit(\"%s\"): internal error: chunk %llu merged on a rank "
                               "that did not stage it",
                               arr->d.name, (unsigned long long)c);
                break;
            }
            rc = take_piece(arr, &f->staged[*pos], rects, nrect, data);
            uint64_t bytes = 0;
            for (uint32_t r = 0; r < nrect; r++) {
                uint64_t s0[AFMT_MAX_NDIM], c0[AFMT_MAX_NDIM];
                get_rect(rects + (size_t)r * 16 * (size_t)nd, nd, s0, c0);
                bytes += box_volume(nd, c0) * arr->esize;
            }
            p = data + bytes;
        }
    }
    if (rc != AFMT_OK && rc != AFMT_EINVAL)
        afmt_fail(f->errmsg, rc, "afmt_commit: out of memory merging shared chunks");
    /* The pieces merged elsewhere were delivered: drop them now, whatever happens to the
     * local merges below, or a retried commit would send them twice (a false overlap). */
    uint64_t w = 0;
    for (uint64_t i = 0; i < f->n_staged; i++) {
        afmt_staged *s = &f->staged[i];
        if (!s->full && merger[i] >= 0 && merger[i] != f->rank) {
            free(s->data);
            free(s->rect);
            continue;
        }
        merger[w] = merger[i];
        f->staged[w++] = *s;
    }
    f->n_staged = w;
    afmt__staged_reindex(f);
    /* Merge my partial chunks (a failed merge keeps the union of pieces for a retry). */
    for (uint64_t i = 0; rc == AFMT_OK && i < f->n_staged; i++) {
        afmt_staged *s = &f->staged[i];
        if (s->full || merger[i] != f->rank) continue;
        const afmt_array *arr = afmt_index_by_id(&f->idx, s->array_id);
        rc = merge_chunk(f, arr, s);
        if (rc == AFMT_ENOMEM)
            afmt_fail(f->errmsg, rc, "afmt_commit: out of memory merging a chunk");
    }
    rc = afmt__agree(f, rc);
done:
    for (int r = 0; r < size; r++) afmt_buf_free(&out[r]);
done_early:
    free(out);
    free(scount);
    free(rbuf);
    free(rbuf2);
    free(sbuf);
    free(keys);
    free(merger);
    return rc;
}
