/* exchange.c - the first step of a commit: resolving chunks that are not wholly written
 * by one rank. Phase A sends every staged chunk's key (and, for partial chunks, the boxes
 * written) to the chunk's owner rank (owner_of), which detects overlaps between
 * ranks and picks one merger per partial chunk: the contributor that wrote most of it,
 * and tells the contributors of partial chunks who it is. Phase B sends the pieces to
 * their merger, which lays them over the chunk's committed content (or fill) where they
 * do not cover it, and encodes the result into its allocator as a whole chunk for this
 * commit's layer. Without a partial chunk on any rank, the answers and phase B are
 * skipped. The staged entries are not changed, so a failed commit leaves every handle as
 * it was.
 *
 * Every transfer is a sparse exchange (mpi/sparse.h): a rank sends only to the ranks it
 * has records for and learns its senders without any step of P entries, so a rank with
 * nothing to send pays O(log P). Each step allocates what it needs, agrees once (the
 * sparse exchange's own agreement, or afmt__file_agree), then acts, so no rank leaves
 * while others wait. Every received record is checked against this rank's own index
 * before it is used (a live array of that ndim, a chunk inside its grid, boxes inside the
 * chunk, lengths inside the received bytes): ranks whose metadata disagree get
 * AFMT_EINVAL naming the array and the rank, never an access out of bounds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/fetch.h"
#include "api/file.h"
#include "common/util.h"
#include "format/grid.h"
#include "index/chunk_codec.h"
#include "index/chunk_encode.h"
#include "index/staging.h"
#include "mpi/sparse.h"

/* Phase A record: u64 array id, u64 chunk index, u32 full, u32 nrect, u32 ndim, u32 0,
 * then nrect boxes of 2*ndim u64. Phase B record: u64 array id, u64 chunk index, u32
 * nrect, u32 ndim, u64 element bytes, then the boxes and their elements. */
#define HDR_A 32
#define HDR_B 32

/* The tags of the three rounds (each uses tag and tag + 1): the keys, the owners'
 * answers, the pieces. */
#define TAG_KEYS    (AFMT__SPARSE_TAG_BASE + 0)
#define TAG_ANSWERS (AFMT__SPARSE_TAG_BASE + 2)
#define TAG_PIECES  (AFMT__SPARSE_TAG_BASE + 4)

/* A chunk's owner. An array of n >= P chunks is cut into P contiguous runs of chunk
 * indices, run k owned by rank k: a rank that wrote a slab of chunks (the usual
 * decomposition, ranks in row-major order) owns its own keys or sends them to one or two
 * ranks, instead of to min(its chunks, P - 1) ranks as a hash would. An array of fewer
 * chunks than ranks starts at a rank given by a hash of its id, so that many small arrays
 * do not all land on rank 0. The same on every rank: arrays are defined collectively (an
 * array unknown here gets the hash). */
static int owner_of(const afmt_index *x, uint64_t a, uint64_t c, int size) {
    const afmt_array *arr = afmt__index_by_id(x, a);
    uint64_t n = arr ? afmt__grid_nchunks(&arr->grid) : 0, p = (uint64_t)size;
    if (n >= p && c < n) {
        uint64_t run = n / p + (n % p != 0);
        return (int)(c / run);
    }
    return (int)((afmt__mix64(a * 0x9E3779B97F4A7C15ull) + c) % p);
}

static uint64_t box_volume(int nd, const uint64_t *count) {
    uint64_t v = 1;
    for (int d = 0; d < nd; d++) v *= count[d];
    return v;
}

static void get_rect(const uint8_t *p, int nd, uint64_t *start, uint64_t *count) {
    for (int d = 0; d < nd; d++) {
        start[d] = afmt__get_u64(p + 8 * (size_t)d);
        count[d] = afmt__get_u64(p + 8 * (size_t)(nd + d));
    }
}

/* A record as received by an owner in phase A (validated). */
typedef struct {
    uint64_t a, c;
    int rank;
    uint32_t full, nrect;
    int nd;
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

static const char *name_of(afmt_file *f, uint64_t a) {
    const afmt_array *arr = afmt__index_by_id(&f->idx, a);
    return arr ? arr->d.name : "?";
}

/* Checks a record received from rank src against this rank's index: the array is live
 * and has ndim dimensions, chunk c is in its grid, the nrect boxes at rects (avail bytes
 * from there on) lie inside the buffer and inside the chunk. *volume: their elements.
 * AFMT_EINVAL with a message naming the array and both ranks. */
static int check_record(afmt_file *f, const char *phase, int src, uint64_t a, uint64_t c,
                        uint32_t ndim, uint32_t nrect, const uint8_t *rects, uint64_t avail,
                        const afmt_array **out, uint64_t *volume) {
    const afmt_array *arr = afmt__index_by_id(&f->idx, a);
    *out = NULL;
    *volume = 0;
    if (!arr || !arr->live)
        return afmt__fail(f->errmsg, AFMT_EINVAL,
                          "afmt_commit(%s): %s: rank %d wrote chunk %llu of array id %llu, which "
                          "is not a live array on rank %d: the ranks' defines and deletes differ",
                          f->path, phase, src, (unsigned long long)c, (unsigned long long)a,
                          f->rank);
    const char *name = arr->d.name;
    int nd = arr->d.ndim;
    if (ndim != (uint32_t)nd)
        return afmt__fail(f->errmsg, AFMT_EINVAL,
                          "afmt_commit(\"%s\"): %s: rank %d wrote it as %u-d, rank %d has it "
                          "%d-d: the ranks' defines differ",
                          name, phase, src, ndim, f->rank, nd);
    uint64_t nch = afmt__grid_nchunks(&arr->grid);
    if (c >= nch)
        return afmt__fail(f->errmsg, AFMT_EINVAL,
                          "afmt_commit(\"%s\"): %s: rank %d wrote chunk %llu, outside the grid "
                          "of %llu chunks on rank %d: the ranks' shapes differ",
                          name, phase, src, (unsigned long long)c, (unsigned long long)nch,
                          f->rank);
    if (nrect > 0 && (nd == 0 || nrect > avail / (16 * (uint64_t)nd)))
        return afmt__fail(f->errmsg, AFMT_EINVAL,
                          "afmt_commit(\"%s\"): %s: rank %d sent %u boxes of chunk %llu in %llu "
                          "bytes",
                          name, phase, src, nrect, (unsigned long long)c,
                          (unsigned long long)avail);
    uint64_t cc[AFMT_MAX_NDIM], origin[AFMT_MAX_NDIM], ext[AFMT_MAX_NDIM];
    afmt__grid_chunk_coord(&arr->grid, c, cc);
    uint64_t vol = 0;
    afmt__grid_chunk_box(&arr->grid, cc, origin, ext);
    for (uint32_t r = 0; r < nrect; r++) {
        uint64_t s0[AFMT_MAX_NDIM], c0[AFMT_MAX_NDIM];
        get_rect(rects + (size_t)r * 16 * (size_t)nd, nd, s0, c0);
        for (int d = 0; d < nd; d++)
            if (c0[d] == 0 || c0[d] > ext[d] || s0[d] > ext[d] - c0[d])
                return afmt__fail(f->errmsg, AFMT_EINVAL,
                                  "afmt_commit(\"%s\"): %s: rank %d wrote a box of chunk %llu "
                                  "(start %llu, count %llu in dim %d) outside the chunk's extent "
                                  "%llu on rank %d: the ranks' shapes or chunks differ",
                                  name, phase, src, (unsigned long long)c,
                                  (unsigned long long)s0[d], (unsigned long long)c0[d], d,
                                  (unsigned long long)ext[d], f->rank);
        uint64_t v = box_volume(nd, c0);
        vol = vol > UINT64_MAX - v ? UINT64_MAX : vol + v;
    }
    *volume = vol;
    *out = arr;
    return AFMT_OK;
}

/* Owner side of phase A: checks overlaps and picks mergers. rc != OK names the first
 * overlap found and the two ranks that wrote it. */
static int decide(afmt_file *f, key_rec *k, uint64_t n) {
    int rc = AFMT_OK;
    if (n > 1) qsort(k, (size_t)n, sizeof *k, key_cmp);
    for (uint64_t i = 0; i < n;) {
        uint64_t j = i + 1;
        while (j < n && k[j].a == k[i].a && k[j].c == k[i].c) j++;
        int nd = k[i].nd, best = -1, r1 = -1, r2 = -1;
        uint64_t best_vol = 0;
        for (uint64_t x = i; x < j; x++) {
            if (best < 0 || k[x].volume > best_vol) {
                best = k[x].rank;
                best_vol = k[x].volume;
            }
            /* A whole chunk and anything else from another rank overlap. */
            if (k[x].full && j - i > 1 && r1 < 0) {
                r1 = k[x].rank;
                r2 = k[x == i ? i + 1 : i].rank;
            }
        }
        uint64_t s1[AFMT_MAX_NDIM], c1[AFMT_MAX_NDIM], s2[AFMT_MAX_NDIM], c2[AFMT_MAX_NDIM];
        for (uint64_t x = i; r1 < 0 && x < j; x++)
            for (uint64_t y = x + 1; r1 < 0 && y < j; y++)
                for (uint32_t p = 0; r1 < 0 && p < k[x].nrect; p++)
                    for (uint32_t q = 0; r1 < 0 && q < k[y].nrect; q++) {
                        get_rect(k[x].rects + (size_t)p * 16 * (size_t)nd, nd, s1, c1);
                        get_rect(k[y].rects + (size_t)q * 16 * (size_t)nd, nd, s2, c2);
                        if (afmt__box_overlap(nd, s1, c1, s2, c2)) {
                            r1 = k[x].rank;
                            r2 = k[y].rank;
                        }
                    }
        if (r1 >= 0 && rc == AFMT_OK)
            rc = afmt__fail(f->errmsg, AFMT_EINVAL,
                            "afmt_commit(\"%s\"): ranks %d and %d wrote overlapping regions of "
                            "chunk %llu in one commit",
                            name_of(f, k[i].a), r1 < r2 ? r1 : r2, r1 < r2 ? r2 : r1,
                            (unsigned long long)k[i].c);
        for (uint64_t x = i; x < j; x++) k[x].merger = (j - i == 1 && k[x].full) ? -1 : best;
        i = j;
    }
    return rc;
}

/* Owner: parses and checks the phase A records of every rank into *keys. */
static int parse_keys(afmt_file *f, const afmt__sparse_msg *in, uint64_t n_in, key_rec **keys,
                      uint64_t *nk) {
    uint64_t cap = 0;
    *nk = 0;
    for (uint64_t m = 0; m < n_in; m++) {
        int src = in[m].src;
        const uint8_t *p = in[m].data;
        uint64_t left = in[m].len, seq = 0;
        while (left > 0) {
            if (left < HDR_A)
                return afmt__fail(f->errmsg, AFMT_EINVAL,
                                  "afmt_commit(%s): chunk keys: rank %d sent a truncated record",
                                  f->path, src);
            if (AFMT__GROW(*keys, cap, *nk + 1, 256) != AFMT_OK)
                return afmt__fail(f->errmsg, AFMT_ENOMEM,
                                  "afmt_commit(%s): out of memory for the chunk keys", f->path);
            key_rec *k = &(*keys)[*nk];
            k->a = afmt__get_u64(p);
            k->c = afmt__get_u64(p + 8);
            k->full = afmt__get_u32(p + 16);
            k->nrect = afmt__get_u32(p + 20);
            uint32_t ndim = afmt__get_u32(p + 24);
            k->rank = src;
            k->seq = seq++;
            k->rects = p + HDR_A;
            const afmt_array *arr;
            uint64_t vol;
            int rc = check_record(f, "chunk keys", src, k->a, k->c, ndim, k->nrect, k->rects,
                                  left - HDR_A, &arr, &vol);
            if (rc != AFMT_OK) return rc;
            if (k->full > 1 || (k->full && k->nrect))
                return afmt__fail(f->errmsg, AFMT_EINVAL,
                                  "afmt_commit(\"%s\"): chunk keys: rank %d sent a bad record "
                                  "for chunk %llu",
                                  arr->d.name, src, (unsigned long long)k->c);
            /* Owners follow the array's chunk count: a key routed here by a rank whose
             * definition of the array differs would miss the overlap check of its chunk. */
            int own = owner_of(&f->idx, k->a, k->c, f->size);
            if (own != f->rank)
                return afmt__fail(f->errmsg, AFMT_EINVAL,
                                  "afmt_commit(\"%s\"): chunk keys: rank %d sent chunk %llu to "
                                  "rank %d, whose definition of the array makes rank %d its owner: "
                                  "the ranks disagree on the array's shape or chunks",
                                  arr->d.name, src, (unsigned long long)k->c, f->rank, own);
            k->nd = arr->d.ndim;
            if (k->full) {
                uint64_t cc[AFMT_MAX_NDIM], o[AFMT_MAX_NDIM], e[AFMT_MAX_NDIM];
                afmt__grid_chunk_coord(&arr->grid, k->c, cc);
                vol = afmt__grid_chunk_box(&arr->grid, cc, o, e);
            }
            k->volume = vol;
            uint64_t used = HDR_A + (uint64_t)k->nrect * 16 * (uint64_t)k->nd;
            p += used;
            left -= used;
            ++*nk;
        }
    }
    return AFMT_OK;
}

/* The messages of one round, grouped by destination and packed back to back in b: the
 * sparse exchange's input. Only as many entries as messages, never one per rank. */
typedef struct {
    int dest;
    uint64_t off;
} out_msg;

typedef struct {
    afmt_buf b;
    out_msg *m;
    uint64_t n, cap;
    int oom;
} outbox;

static void outbox_init(outbox *o) {
    memset(o, 0, sizeof *o);
    afmt__buf_init(&o->b);
}

/* What follows goes to dest: a new message unless the last one is to dest. */
static void outbox_to(outbox *o, int dest) {
    if (o->n > 0 && o->m[o->n - 1].dest == dest) return;
    if (AFMT__GROW(o->m, o->cap, o->n + 1, 16) != AFMT_OK) {
        o->oom = 1;
        return;
    }
    o->m[o->n++] = (out_msg){dest, o->b.len};
}

/* A staged entry and where its record goes; sorted by destination, then entry. */
typedef struct {
    int dest;
    uint64_t i;
} route;

static int route_cmp(const void *x, const void *y) {
    const route *p = x, *q = y;
    if (p->dest != q->dest) return p->dest < q->dest ? -1 : 1;
    return p->i < q->i ? -1 : p->i > q->i;
}

/* Packs this rank's records of phase A, grouped by owner, in staged order within each.
 * *partial: whether this rank staged a partial chunk. */
static int pack_keys(afmt_file *f, outbox *o, int *partial) {
    uint64_t n = f->staging.n;
    route *rt = n ? malloc(sizeof *rt * (size_t)n) : NULL;
    if (n && !rt)
        return afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_commit(%s): out of memory", f->path);
    for (uint64_t i = 0; i < n; i++) {
        const afmt_staged *s = &f->staging.items[i];
        rt[i] = (route){owner_of(&f->idx, s->array_id, s->chunk_index, f->size), i};
        *partial |= !s->full;
    }
    if (n > 1) qsort(rt, (size_t)n, sizeof *rt, route_cmp);
    for (uint64_t k = 0; k < n; k++) {
        const afmt_staged *s = &f->staging.items[rt[k].i];
        afmt_buf *b = &o->b;
        const afmt_array *arr = afmt__index_by_id(&f->idx, s->array_id);
        int nd = arr ? arr->d.ndim : 0;
        uint32_t nrect = s->full ? 0 : s->nrect;
        outbox_to(o, rt[k].dest);
        afmt__buf_u64(b, s->array_id);
        afmt__buf_u64(b, s->chunk_index);
        afmt__buf_u32(b, (uint32_t)s->full);
        afmt__buf_u32(b, nrect);
        afmt__buf_u32(b, (uint32_t)nd);
        afmt__buf_u32(b, 0);
        for (uint32_t r = 0; r < nrect; r++)
            for (int d = 0; d < 2 * nd; d++)
                afmt__buf_u64(b, s->rect[(size_t)2 * (size_t)nd * r + (size_t)d]);
    }
    free(rt);
    return AFMT_OK;
}

/* Packs the pieces this rank hands to other mergers, grouped by merger. */
static int pack_pieces(afmt_file *f, const int32_t *merger, outbox *o) {
    static const uint64_t zeros[AFMT_MAX_NDIM];
    uint64_t n = 0;
    for (uint64_t i = 0; i < f->staging.n; i++) {
        const afmt_staged *s = &f->staging.items[i];
        n += !s->full && merger[i] != f->rank && merger[i] >= 0;
    }
    if (n == 0) return AFMT_OK;
    route *rt = malloc(sizeof *rt * (size_t)n);
    if (!rt) return afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_commit(%s): out of memory", f->path);
    n = 0;
    for (uint64_t i = 0; i < f->staging.n; i++) {
        const afmt_staged *s = &f->staging.items[i];
        if (!s->full && merger[i] != f->rank && merger[i] >= 0) rt[n++] = (route){merger[i], i};
    }
    if (n > 1) qsort(rt, (size_t)n, sizeof *rt, route_cmp);
    for (uint64_t k = 0; k < n && !o->b.oom; k++) {
        const afmt_staged *s = &f->staging.items[rt[k].i];
        const afmt_array *arr = afmt__index_by_id(&f->idx, s->array_id);
        afmt_buf *b = &o->b;
        int nd = arr->d.ndim;
        uint64_t cc[AFMT_MAX_NDIM], origin[AFMT_MAX_NDIM], ext[AFMT_MAX_NDIM], bytes = 0;
        afmt__grid_chunk_coord(&arr->grid, s->chunk_index, cc);
        afmt__grid_chunk_box(&arr->grid, cc, origin, ext);
        for (uint32_t r = 0; r < s->nrect; r++)
            bytes += box_volume(nd, s->rect + (size_t)2 * (size_t)nd * r + nd) * arr->esize;
        outbox_to(o, rt[k].dest);
        afmt__buf_u64(b, s->array_id);
        afmt__buf_u64(b, s->chunk_index);
        afmt__buf_u32(b, s->nrect);
        afmt__buf_u32(b, (uint32_t)nd);
        afmt__buf_u64(b, bytes);
        for (uint32_t r = 0; r < s->nrect; r++)
            for (int d = 0; d < 2 * nd; d++)
                afmt__buf_u64(b, s->rect[(size_t)2 * (size_t)nd * r + (size_t)d]);
        for (uint32_t r = 0; r < s->nrect; r++) {
            const uint64_t *rect = s->rect + (size_t)2 * (size_t)nd * r;
            size_t at = b->len;
            afmt__buf_zero(b, (size_t)(box_volume(nd, rect + nd) * arr->esize));
            if (b->oom) break;
            afmt__box_copy(nd, arr->esize, rect + nd, b->data + at, rect + nd, zeros, s->data, ext,
                           rect);
        }
    }
    free(rt);
    return AFMT_OK;
}

/* COLLECTIVE. Sends the messages of o (freed) with the sparse exchange on the tag and
 * receives this rank's into *in (sorted by source); rc is this rank's outcome so far,
 * part of the exchange's one agreement before data moves; flag as in
 * afmt__sparse_exchange. */
static int send_outbox(afmt_file *f, int rc, outbox *o, int tag, int *flag, afmt__sparse_msg **in,
                       uint64_t *n_in, const char *what) {
    int *dest = NULL;
    const uint8_t **ptr = NULL;
    uint64_t *len = NULL, n = 0;
    if (rc == AFMT_OK && !o->oom && !o->b.oom && o->n > 0) {
        dest = malloc(sizeof *dest * (size_t)o->n);
        ptr = malloc(sizeof *ptr * (size_t)o->n);
        len = malloc(sizeof *len * (size_t)o->n);
        if (!dest || !ptr || !len) o->oom = 1;
        for (uint64_t k = 0; !o->oom && k < o->n; k++) {
            dest[k] = o->m[k].dest;
            ptr[k] = o->b.data + o->m[k].off;
            len[k] = (k + 1 < o->n ? o->m[k + 1].off : o->b.len) - o->m[k].off;
        }
        n = o->oom ? 0 : o->n;
    }
    if (rc == AFMT_OK && (o->oom || o->b.oom))
        rc = afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_commit(%s): out of memory %s", f->path, what);
    char w[AFMT_ERRMSG_MAX];
    snprintf(w, sizeof w, "afmt_commit(%s): %s", f->path, what);
    afmt__group g = {f->comm, f->rank, f->size, f->errmsg};
    rc = afmt__sparse_exchange(&g, tag, rc, n, dest, ptr, len, flag, in, n_in, w);
    free(dest);
    free(ptr);
    free(len);
    afmt__buf_free(&o->b);
    free(o->m);
    outbox_init(o);
    return rc;
}

/* A received piece: the staged entry (position) it belongs to, and its record. */
typedef struct {
    uint64_t pos;
    const uint8_t *rec;
} piece_ref;

static int ref_cmp(const void *x, const void *y) {
    const piece_ref *p = x, *q = y;
    return p->pos < q->pos ? -1 : p->pos > q->pos;
}

/* Merger: checks every received piece and lists them by the staged entry they belong to
 * (a partial chunk of this rank). */
static int list_pieces(afmt_file *f, const afmt__sparse_msg *in, uint64_t n_in, piece_ref **refs,
                       uint64_t *nref) {
    uint64_t cap = 0;
    *nref = 0;
    for (uint64_t m = 0; m < n_in; m++) {
        int src = in[m].src;
        const uint8_t *p = in[m].data;
        uint64_t left = in[m].len;
        while (left > 0) {
            if (left < HDR_B)
                return afmt__fail(f->errmsg, AFMT_EINVAL,
                                  "afmt_commit(%s): shared chunks: rank %d sent a truncated "
                                  "record",
                                  f->path, src);
            uint64_t a = afmt__get_u64(p), c = afmt__get_u64(p + 8), bytes = afmt__get_u64(p + 24);
            uint32_t nrect = afmt__get_u32(p + 16), ndim = afmt__get_u32(p + 20);
            const afmt_array *arr;
            uint64_t vol, need;
            int rc = check_record(f, "shared chunks", src, a, c, ndim, nrect, p + HDR_B,
                                  left - HDR_B, &arr, &vol);
            if (rc != AFMT_OK) return rc;
            uint64_t rb = (uint64_t)nrect * 16 * ndim;
            if (!afmt__mul_ok(vol, arr->esize, &need) || need != bytes || bytes > left - HDR_B - rb)
                return afmt__fail(f->errmsg, AFMT_EINVAL,
                                  "afmt_commit(\"%s\"): shared chunks: rank %d sent %llu bytes "
                                  "for boxes of %llu elements of chunk %llu",
                                  arr->d.name, src, (unsigned long long)bytes,
                                  (unsigned long long)vol, (unsigned long long)c);
            const afmt_staged *s = afmt__staging_find(&f->staging, a, c);
            if (!s || s->full)
                return afmt__fail(f->errmsg, AFMT_EINVAL,
                                  "afmt_commit(\"%s\"): shared chunks: rank %d sent pieces of "
                                  "chunk %llu to rank %d, which did not write it partly",
                                  arr->d.name, src, (unsigned long long)c, f->rank);
            if (AFMT__GROW(*refs, cap, *nref + 1, 64) != AFMT_OK)
                return afmt__fail(f->errmsg, AFMT_ENOMEM,
                                  "afmt_commit(%s): out of memory for the shared chunks", f->path);
            (*refs)[(*nref)++] = (piece_ref){(uint64_t)(s - f->staging.items), p};
            p += HDR_B + rb + bytes;
            left -= HDR_B + rb + bytes;
        }
    }
    if (*nref > 1) qsort(*refs, (size_t)*nref, sizeof **refs, ref_cmp);
    return AFMT_OK;
}

/* Calls fn for every box of the chunk's own staged boxes (data from s->data, in the chunk's
 * layout) and of the received pieces (data packed after the boxes). */
typedef void (*box_fn)(void *ctx, const uint64_t *start, const uint64_t *count, const uint8_t *src,
                       const uint64_t *src_shape, const uint64_t *src_start);

static void each_box(const afmt_array *arr, const afmt_staged *s, const uint64_t *ext,
                     const piece_ref *refs, uint64_t nref, box_fn fn, void *ctx) {
    static const uint64_t zeros[AFMT_MAX_NDIM];
    int nd = arr->d.ndim;
    for (uint32_t r = 0; r < s->nrect; r++) {
        const uint64_t *rect = s->rect + (size_t)2 * (size_t)nd * r;
        fn(ctx, rect, rect + nd, s->data, ext, rect);
    }
    for (uint64_t k = 0; k < nref; k++) {
        const uint8_t *p = refs[k].rec;
        uint32_t nrect = afmt__get_u32(p + 16);
        const uint8_t *rects = p + HDR_B, *data = rects + (size_t)nrect * 16 * (size_t)nd;
        for (uint32_t r = 0; r < nrect; r++) {
            uint64_t st[AFMT_MAX_NDIM], ct[AFMT_MAX_NDIM];
            get_rect(rects + (size_t)r * 16 * (size_t)nd, nd, st, ct);
            fn(ctx, st, ct, data, ct, zeros);
            data += box_volume(nd, ct) * arr->esize;
        }
    }
}

typedef struct {
    int nd;
    size_t es;
    const uint64_t *ext;
    uint8_t *mask, *dst;
    uint64_t covered;
} merge_ctx;

static void mark_box(void *ctx, const uint64_t *start, const uint64_t *count, const uint8_t *src,
                     const uint64_t *src_shape, const uint64_t *src_start) {
    merge_ctx *m = ctx;
    (void)src;
    (void)src_shape;
    (void)src_start;
    uint64_t vol = box_volume(m->nd, count), idx[AFMT_MAX_NDIM] = {0};
    for (uint64_t e = 0; e < vol; e++) {
        uint64_t lin = 0;
        for (int d = 0; d < m->nd; d++) lin = lin * m->ext[d] + start[d] + idx[d];
        m->covered += m->mask[lin] == 0;
        m->mask[lin] = 1;
        for (int d = m->nd - 1; d >= 0; d--) {
            if (++idx[d] < count[d]) break;
            idx[d] = 0;
        }
    }
}

static void copy_box(void *ctx, const uint64_t *start, const uint64_t *count, const uint8_t *src,
                     const uint64_t *src_shape, const uint64_t *src_start) {
    merge_ctx *m = ctx;
    afmt__box_copy(m->nd, m->es, count, m->dst, m->ext, start, src, src_shape, src_start);
}

/* Encodes a merged chunk (native elements, extent ext; an array's own setting may round
 * them in place) into this rank's allocator: *out is its record. The allocator is created
 * here if this rank staged no whole chunk. */
static int store_merged(afmt_file *f, const afmt_array *arr, uint64_t chunk_index,
                        const uint64_t *ext, void *native, uint64_t nelems, afmt_chunk_rec *out) {
    int rc = afmt__ensure_alloc(f);
    if (rc != AFMT_OK) return rc;
    afmt_codec_setting set;
    if (afmt__chunk_has_setting(arr, &set)) {
        char why[AFMT_ERRMSG_MAX];
        afmt_store_ctx c = {f->opts.codec, f->opts.level, f->opts.check_bounds};
        rc = afmt__chunk_store_own(f->alloc, &c, arr, &set, chunk_index, ext, native, nelems, out,
                                   why);
        if (rc != AFMT_OK) return afmt__fail(f->errmsg, rc, "afmt_commit: %s", why);
        return AFMT_OK;
    }
    rc = afmt__chunk_store(f->alloc, arr, chunk_index, native, nelems, out);
    if (rc != AFMT_OK) return afmt__fail(f->errmsg, rc, "%s", afmt__alloc_errmsg(f->alloc));
    return AFMT_OK;
}

/* Merges one partial chunk of this rank (its own boxes and the received pieces) over the
 * committed content into a work buffer and encodes it into the allocator as a whole
 * chunk (*out). The staged entry is not touched: if the commit fails, the handle (and
 * its read-your-writes) is as it was, and a retry sends the same pieces again. */
static int merge_chunk(afmt_file *f, const afmt_array *arr, const afmt_staged *s,
                       const piece_ref *refs, uint64_t nref, afmt_chunk_rec *out) {
    int nd = arr->d.ndim;
    uint64_t cc[AFMT_MAX_NDIM], origin[AFMT_MAX_NDIM], ext[AFMT_MAX_NDIM];
    afmt__grid_chunk_coord(&arr->grid, s->chunk_index, cc);
    uint64_t ne = afmt__grid_chunk_box(&arr->grid, cc, origin, ext);
    merge_ctx m = {nd, arr->esize, ext, NULL, NULL, 0};
    /* Which elements are written? Only if some are not is the older content read. */
    m.mask = calloc((size_t)ne, 1);
    m.dst = malloc((size_t)(ne * arr->esize));
    int rc = AFMT_OK;
    if (!m.mask || !m.dst)
        rc = afmt__fail(f->errmsg, AFMT_ENOMEM,
                        "afmt_commit(\"%s\"): out of memory merging chunk %llu", arr->d.name,
                        (unsigned long long)s->chunk_index);
    if (rc == AFMT_OK) {
        each_box(arr, s, ext, refs, nref, mark_box, &m);
        if (m.covered < ne) rc = afmt__read_committed_chunk(f, arr, s->chunk_index, m.dst);
    }
    if (rc == AFMT_OK) {
        each_box(arr, s, ext, refs, nref, copy_box, &m);
        rc = store_merged(f, arr, s->chunk_index, ext, m.dst, ne, out);
    }
    free(m.mask);
    free(m.dst);
    return rc;
}

/* The state of one exchange, freed by xchg_free whatever phase it reached. */
typedef struct {
    afmt_file *f;
    afmt__sparse_msg *keys_in; /* owner: phase A records, received */
    uint64_t n_keys_in;
    key_rec *keys; /* owner: the same, parsed and decided */
    uint64_t nk;
    afmt__sparse_msg *answers_in; /* contributor: the owners' answers, received */
    uint64_t n_answers_in;
    int32_t *merger;             /* contributor: the merger of each staged entry (-1: none) */
    afmt__sparse_msg *pieces_in; /* merger: phase B records, received */
    uint64_t n_pieces_in;
    piece_ref *refs; /* merger: the same, by staged entry */
    uint64_t nref;
} xchg;

static void xchg_free(xchg *x) {
    afmt__sparse_free(x->keys_in, x->n_keys_in);
    afmt__sparse_free(x->answers_in, x->n_answers_in);
    afmt__sparse_free(x->pieces_in, x->n_pieces_in);
    free(x->keys);
    free(x->merger);
    free(x->refs);
}

/* Phase A: every staged chunk's key (and boxes of partial chunks) to its owner. *partial:
 * whether any rank staged a partial chunk. */
static int phase_keys(xchg *x, int *partial) {
    outbox o;
    outbox_init(&o);
    *partial = 0;
    int rc = pack_keys(x->f, &o, partial);
    return send_outbox(x->f, rc, &o, TAG_KEYS, partial, &x->keys_in, &x->n_keys_in,
                       "exchanging chunk keys");
}

static int seq_cmp(const void *x, const void *y) {
    const key_rec *p = x, *q = y;
    if (p->rank != q->rank) return p->rank < q->rank ? -1 : 1;
    return p->seq < q->seq ? -1 : p->seq > q->seq;
}

/* Owner: checks the records, detects overlaps, picks the mergers. Local: the outcome
 * joins the next agreement. */
static int owner_decide(xchg *x) {
    int rc = parse_keys(x->f, x->keys_in, x->n_keys_in, &x->keys, &x->nk);
    if (rc == AFMT_OK) rc = decide(x->f, x->keys, x->nk);
    afmt__sparse_free(x->keys_in, x->n_keys_in);
    x->keys_in = NULL;
    x->n_keys_in = 0;
    return rc;
}

/* Owner: tells each contributor of a partial chunk its merger (int32 per partial record,
 * in the contributor's order). A whole chunk needs no answer: written by one rank it has
 * no merger, by several it is an overlap, which fails the commit. rc: owner_decide's. */
static int phase_answers(xchg *x, int rc) {
    outbox o;
    outbox_init(&o);
    if (rc == AFMT_OK && x->nk > 1) qsort(x->keys, (size_t)x->nk, sizeof *x->keys, seq_cmp);
    for (uint64_t i = 0; rc == AFMT_OK && i < x->nk; i++) {
        if (x->keys[i].full) continue;
        outbox_to(&o, x->keys[i].rank);
        afmt__buf_u32(&o.b, (uint32_t)x->keys[i].merger);
    }
    return send_outbox(x->f, rc, &o, TAG_ANSWERS, NULL, &x->answers_in, &x->n_answers_in,
                       "exchanging merge decisions");
}

/* Contributor: the merger of each staged entry from the owners' answers. My records went
 * to the owners in staged order grouped by owner: rebuild that order, checking that every
 * owner answered each partial record once with a possible merger. Local: the outcome
 * joins the agreement of phase B. */
static int read_answers(xchg *x) {
    afmt_file *f = x->f;
    const afmt__staging *t = &f->staging;
    int rc = AFMT_OK, size = f->size;
    uint64_t *cur = NULL; /* bytes of each answer message asked for */
    if (!(x->merger = malloc(sizeof(int32_t) * (size_t)(t->n ? t->n : 1))) ||
        (x->n_answers_in && !(cur = calloc((size_t)x->n_answers_in, sizeof *cur))))
        rc = afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_commit(%s): out of memory", f->path);
    for (uint64_t i = 0; rc == AFMT_OK && i < t->n; i++) {
        const afmt_staged *s = &t->items[i];
        x->merger[i] = -1;
        if (s->full) continue;
        int o = owner_of(&f->idx, s->array_id, s->chunk_index, size);
        const afmt__sparse_msg *a = afmt__sparse_find(x->answers_in, x->n_answers_in, o);
        int32_t m = -2;
        if (a) {
            uint64_t *c = &cur[a - x->answers_in];
            if (*c + 4 <= a->len) m = (int32_t)afmt__get_u32(a->data + *c);
            *c += 4;
        }
        if (m < 0 || m >= size)
            rc = afmt__fail(f->errmsg, AFMT_EINVAL,
                            "afmt_commit(\"%s\"): rank %d answered merger %d for chunk %llu: the "
                            "ranks' metadata differ",
                            name_of(f, s->array_id), o, (int)m, (unsigned long long)s->chunk_index);
        x->merger[i] = m;
    }
    for (uint64_t k = 0; rc == AFMT_OK && k < x->n_answers_in; k++)
        if (cur[k] != x->answers_in[k].len)
            rc = afmt__fail(f->errmsg, AFMT_EINVAL,
                            "afmt_commit(%s): rank %d answered %llu merge decisions, rank %d "
                            "asked for %llu: the ranks' metadata differ",
                            f->path, x->answers_in[k].src,
                            (unsigned long long)(x->answers_in[k].len / 4), f->rank,
                            (unsigned long long)(cur[k] / 4));
    free(cur);
    return rc;
}

/* Phase B: the pieces of partial chunks to their mergers; rc is read_answers'. */
static int phase_pieces(xchg *x, int rc) {
    outbox o;
    outbox_init(&o);
    if (rc == AFMT_OK) rc = pack_pieces(x->f, x->merger, &o);
    return send_outbox(x->f, rc, &o, TAG_PIECES, NULL, &x->pieces_in, &x->n_pieces_in,
                       "exchanging shared chunks");
}

/* Merger: checks the pieces and merges each of my partial chunks into the allocator as a
 * whole chunk, listed in *merged. The staged entries stay as they are on every rank: the
 * commit builds its chunk records from the whole staged chunks and *merged. Agreed. */
static int phase_merge(xchg *x, afmt_chunk_rec **merged, uint64_t *n_merged) {
    afmt_file *f = x->f;
    const afmt__staging *t = &f->staging;
    int rc = list_pieces(f, x->pieces_in, x->n_pieces_in, &x->refs, &x->nref);
    uint64_t nm = 0, k = 0;
    for (uint64_t i = 0; rc == AFMT_OK && i < t->n; i++)
        nm += !t->items[i].full && x->merger[i] == f->rank;
    if (rc == AFMT_OK && !(*merged = malloc(sizeof **merged * (size_t)(nm ? nm : 1))))
        rc = afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_commit(%s): out of memory", f->path);
    for (uint64_t i = 0; rc == AFMT_OK && i < t->n; i++) {
        const afmt_staged *s = &t->items[i];
        if (s->full || x->merger[i] != f->rank) continue;
        while (k < x->nref && x->refs[k].pos < i) k++;
        uint64_t k0 = k;
        while (k < x->nref && x->refs[k].pos == i) k++;
        /* No piece came from another rank: refs may be NULL (no pointer arithmetic on it). */
        rc = merge_chunk(f, afmt__index_by_id(&f->idx, s->array_id), s,
                         k > k0 ? x->refs + k0 : NULL, k - k0, &(*merged)[*n_merged]);
        if (rc == AFMT_OK) ++*n_merged;
    }
    return afmt__file_agree(f, rc);
}

int afmt__exchange(afmt_file *f, afmt_chunk_rec **merged, uint64_t *n_merged) {
    *merged = NULL;
    *n_merged = 0;
    xchg x;
    memset(&x, 0, sizeof x);
    x.f = f;
    int partial = 0;
    int rc = phase_keys(&x, &partial);
    if (rc == AFMT_OK) {
        rc = owner_decide(&x);
        if (!partial) {
            /* Whole chunks only, on every rank: the owners' checks were all there was to
             * do. */
            rc = afmt__file_agree(f, rc);
        } else {
            rc = phase_answers(&x, rc);
            if (rc == AFMT_OK) rc = phase_pieces(&x, read_answers(&x));
            if (rc == AFMT_OK) rc = phase_merge(&x, merged, n_merged);
        }
    }
    xchg_free(&x);
    if (rc != AFMT_OK) {
        free(*merged);
        *merged = NULL;
        *n_merged = 0;
    }
    return rc;
}
