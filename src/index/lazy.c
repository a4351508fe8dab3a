/* lazy.c - the lazily loaded index: chunk lookups through the root tables of the lazy
 * layers and a bounded cache of decoded segments (lazy.h). A segment's blocks get block
 * numbers in x->blocks the first time it is read and keep them when it is evicted and read
 * again, so block numbers (and the block cache's keys) never change while the index
 * lives. */
#include "index/lazy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "format/segment.h"

typedef unsigned long long ull;

typedef struct {
    uint64_t layer, seg;    /* layer position in x->layers, segment in its root table */
    afmt_chunk_rec *chunks; /* sorted; block = index into x->blocks */
    uint64_t n, bytes, stamp;
} seg_entry;

struct afmt_segcache {
    seg_entry *e;
    uint64_t n, cap, bytes, clock, reads;
    afmt_hmap map; /* (layer position, segment) -> entry */
};

static int key_cmp(uint64_t a1, uint64_t c1, uint64_t a2, uint64_t c2) {
    if (a1 != a2) return a1 < a2 ? -1 : 1;
    if (c1 != c2) return c1 < c2 ? -1 : 1;
    return 0;
}

int afmt__lazy_layer_init(afmt_layer_info *li, const afmt_layer *L) {
    uint64_t n = L->n_segs;
    li->segs = malloc(sizeof *li->segs * (size_t)n);
    li->maxlast = malloc(sizeof *li->maxlast * (size_t)(2 * n));
    li->seg_base = malloc(sizeof *li->seg_base * (size_t)n);
    if (!li->segs || !li->maxlast || !li->seg_base) {
        afmt__lazy_layer_free(li);
        return AFMT_ENOMEM;
    }
    memcpy(li->segs, L->segs, sizeof *li->segs * (size_t)n);
    for (uint64_t s = 0; s < n; s++) {
        const afmt_seg_rec *g = &L->segs[s];
        li->seg_base[s] = UINT64_MAX;
        int newer = s == 0 || key_cmp(g->last_array, g->last_chunk, li->maxlast[2 * s - 2],
                                      li->maxlast[2 * s - 1]) > 0;
        li->maxlast[2 * s] = newer ? g->last_array : li->maxlast[2 * s - 2];
        li->maxlast[2 * s + 1] = newer ? g->last_chunk : li->maxlast[2 * s - 1];
    }
    li->lazy = 1;
    li->next_array_id = L->next_array_id;
    return AFMT_OK;
}

void afmt__lazy_layer_free(afmt_layer_info *li) {
    free(li->segs);
    free(li->maxlast);
    free(li->seg_base);
    li->segs = NULL;
    li->maxlast = li->seg_base = NULL;
    li->lazy = 0;
}

static void entry_free(seg_entry *e) {
    free(e->chunks);
    e->chunks = NULL;
}

void afmt__segcache_free(afmt_index *x) {
    struct afmt_segcache *c = x->segcache;
    if (!c) return;
    for (uint64_t i = 0; i < c->n; i++) entry_free(&c->e[i]);
    free(c->e);
    afmt__hmap_free(&c->map);
    free(c);
    x->segcache = NULL;
}

void afmt__segcache_stats(const afmt_index *x, uint64_t *bytes, uint64_t *entries,
                          uint64_t *reads) {
    const struct afmt_segcache *c = x->segcache;
    *bytes = c ? c->bytes : 0;
    *entries = c ? c->n : 0;
    *reads = c ? c->reads : 0;
}

/* The merge checks of format.md 11.2 step 3 for a lazily read segment: every chunk of an
 * array that is live now must be inside its grid and of its size (its array cannot have
 * been defined after the layer: ids < the layer's next_array_id, checked by the segment
 * decode, were all allocated by then). Chunks of deleted arrays are never looked up. */
static int check_chunks(const afmt_index *x, const afmt_chunk_rec *C, uint64_t n, char *errmsg) {
    for (uint64_t i = 0; i < n; i++) {
        const afmt_array *a = afmt__index_by_id(x, C[i].array_id);
        if (!a)
            return afmt__fail(errmsg, AFMT_ECORRUPT, "chunk record %llu: unknown array id %llu",
                              (ull)i, (ull)C[i].array_id);
        if (!a->live) continue;
        uint64_t nch = afmt__grid_nchunks(&a->grid), want = 0;
        if (C[i].chunk_index >= nch)
            return afmt__fail(errmsg, AFMT_ECORRUPT,
                              "array %llu (\"%s\"): chunk index %llu out of the grid (%llu "
                              "chunks)",
                              (ull)a->d.id, a->d.name, (ull)C[i].chunk_index, (ull)nch);
        uint64_t cc[AFMT_MAX_NDIM];
        afmt__grid_chunk_coord(&a->grid, C[i].chunk_index, cc);
        /* elems * esize <= AFMT_MAX_CHUNK_BYTES (afmt__grid_bytes): no overflow */
        want = afmt__grid_chunk_box(&a->grid, cc, NULL, NULL) * a->esize;
        if (C[i].size != want)
            return afmt__fail(errmsg, AFMT_ECORRUPT,
                              "array %llu (\"%s\"): chunk %llu has %llu bytes, its extent needs "
                              "%llu",
                              (ull)a->d.id, a->d.name, (ull)C[i].chunk_index, (ull)C[i].size,
                              (ull)want);
    }
    return AFMT_OK;
}

/* The name of segment s of lazy layer k in messages (format.md 9.3's wording). */
static void seg_name(const afmt_index *x, uint64_t k, uint64_t s, char *out, size_t n) {
    const afmt_layer_info *li = &x->layers[k];
    afmt_layer L;
    memset(&L, 0, sizeof L);
    L.layer_id = li->layer_id;
    L.segs = li->segs;
    L.n_segs = li->n_segs;
    afmt__segment_name(&L, s, out, n);
}

/* The stored bytes of segment s of lazy layer k (*out, malloc'd), read from x->st. */
static int read_raw(afmt_index *x, uint64_t k, uint64_t s, uint8_t **out, char *errmsg) {
    const afmt_seg_rec *g = &x->layers[k].segs[s];
    char name[160];
    seg_name(x, k, s, name, sizeof name);
    *out = NULL;
    if (!x->st)
        return afmt__fail(errmsg, AFMT_EIO, "%s: the index has no storage to read it from", name);
    uint8_t *p = g->length <= SIZE_MAX ? malloc(g->length ? (size_t)g->length : 1) : NULL;
    if (!p) return afmt__fail(errmsg, AFMT_ENOMEM, "%s: out of memory to read it", name);
    int rc = x->st->ops->read_at(x->st, g->offset, p, g->length);
    if (rc != AFMT_OK) {
        free(p);
        return afmt__fail(errmsg, rc, "%s: %s", name, x->st->errmsg);
    }
    *out = p;
    return AFMT_OK;
}

/* Decodes and checks the stored bytes p of segment s of lazy layer k (its root record's
 * length): *chunks (block numbers into x->blocks, whose entries for this segment exist
 * afterwards) and their count. */
static int decode_segment(afmt_index *x, uint64_t k, uint64_t s, const uint8_t *p,
                          afmt_chunk_rec **chunks, uint64_t *n, char *errmsg) {
    afmt_layer_info *li = &x->layers[k];
    const afmt_seg_rec *g = &li->segs[s];
    afmt_layer L; /* what the segment checks need of the footer */
    memset(&L, 0, sizeof L);
    L.layer_id = li->layer_id;
    L.next_array_id = li->next_array_id;
    L.nranks = li->nranks;
    L.data_offset = li->data_offset;
    L.segs = li->segs;
    L.n_segs = li->n_segs;
    char why[AFMT_ERRMSG_MAX], name[160];
    afmt__segment_name(&L, s, name, sizeof name);
    afmt_block_rec *B = NULL;
    afmt_chunk_rec *C = NULL;
    int rc = afmt__segment_decode(p, g->length, g, &L, li->footer_offset, &B, &C, why);
    if (rc == AFMT_OK) rc = check_chunks(x, C, g->n_chunks, why);
    uint64_t base = li->seg_base[s];
    if (rc == AFMT_OK && base == UINT64_MAX) {
        if (AFMT__GROW(x->blocks, x->cap_blocks, x->n_blocks + g->n_blocks, 64) != AFMT_OK) {
            rc = afmt__fail(why, AFMT_ENOMEM, "out of memory for %llu blocks", (ull)g->n_blocks);
        } else {
            base = x->n_blocks;
            for (uint64_t b = 0; b < g->n_blocks; b++)
                x->blocks[x->n_blocks++] = (afmt_iblock){B[b], li->layer_id, 0, 0};
            for (uint64_t i = 0; i < g->n_chunks; i++) x->blocks[base + C[i].block].nrefs++;
            /* Until everything is loaded, "live" is what the segment references. */
            for (uint64_t b = 0; b < g->n_blocks; b++)
                x->blocks[base + b].nlive = x->blocks[base + b].nrefs;
            li->seg_base[s] = base;
        }
    }
    free(B);
    if (rc != AFMT_OK) {
        free(C);
        return afmt__fail(errmsg, rc, "%s: %.800s", name, why);
    }
    for (uint64_t i = 0; i < g->n_chunks; i++) C[i].block += base;
    *chunks = C;
    *n = g->n_chunks;
    return AFMT_OK;
}

/* Reads and decodes segment s of lazy layer k (read_raw, decode_segment). */
static int read_segment(afmt_index *x, uint64_t k, uint64_t s, afmt_chunk_rec **chunks, uint64_t *n,
                        char *errmsg) {
    uint8_t *p = NULL;
    int rc = read_raw(x, k, s, &p, errmsg);
    if (rc == AFMT_OK) rc = decode_segment(x, k, s, p, chunks, n, errmsg);
    free(p);
    return rc;
}

static struct afmt_segcache *cache_of(afmt_index *x) {
    if (!x->segcache) {
        x->segcache = calloc(1, sizeof *x->segcache);
        if (x->segcache) afmt__hmap_init(&x->segcache->map);
    }
    return x->segcache;
}

/* Drops least recently used entries (never keep) until the cache fits its bound. */
static void cache_trim(afmt_index *x, uint64_t keep) {
    struct afmt_segcache *c = x->segcache;
    uint64_t limit = x->segcache_limit ? x->segcache_limit : AFMT_INDEX_CACHE_DEFAULT;
    while (c->bytes > limit && c->n > 1) {
        uint64_t victim = UINT64_MAX;
        for (uint64_t i = 0; i < c->n; i++)
            if (i != keep && (victim == UINT64_MAX || c->e[i].stamp < c->e[victim].stamp))
                victim = i;
        seg_entry *v = &c->e[victim];
        afmt__hmap_del(&c->map, v->layer, v->seg);
        c->bytes -= v->bytes;
        entry_free(v);
        uint64_t last = c->n - 1;
        if (victim != last) { /* the last entry takes the victim's place */
            *v = c->e[last];
            uint64_t *slot = afmt__hmap_get(&c->map, v->layer, v->seg);
            if (slot) *slot = victim;
            if (keep == last) keep = victim;
        }
        c->n--;
    }
}

/* Room in the cache for one more entry (so that cache_add cannot fail). */
static int cache_reserve(afmt_index *x, char *errmsg) {
    struct afmt_segcache *c = cache_of(x);
    if (!c || AFMT__GROW(c->e, c->cap, c->n + 1, 16) != AFMT_OK ||
        afmt__hmap_reserve(&c->map, 1) != AFMT_OK)
        return afmt__fail(errmsg, AFMT_ENOMEM, "out of memory for the index cache");
    return AFMT_OK;
}

/* Adds the decoded segment s of layer k (C, n: the cache takes them) after cache_reserve;
 * the entry, valid until the next change of the cache. */
static const seg_entry *cache_add(afmt_index *x, uint64_t k, uint64_t s, afmt_chunk_rec *C,
                                  uint64_t n) {
    struct afmt_segcache *c = x->segcache;
    seg_entry *e = &c->e[c->n];
    *e = (seg_entry){k, s, C, n, n * sizeof *C, ++c->clock};
    afmt__hmap_put(&c->map, k, s, c->n); /* reserved */
    c->bytes += e->bytes;
    c->n++;
    cache_trim(x, c->n - 1);
    return &c->e[*afmt__hmap_get(&c->map, k, s)];
}

/* The cached entry of segment s of layer k (its use stamped), or NULL. */
static const seg_entry *cache_find(afmt_index *x, uint64_t k, uint64_t s) {
    struct afmt_segcache *c = x->segcache;
    uint64_t *v = c ? afmt__hmap_get(&c->map, k, s) : NULL;
    if (!v) return NULL;
    c->e[*v].stamp = ++c->clock;
    return &c->e[*v];
}

/* The decoded segment s of lazy layer k, from the cache or read now. */
static int get_segment(afmt_index *x, uint64_t k, uint64_t s, const seg_entry **out, char *errmsg) {
    if ((*out = cache_find(x, k, s)) != NULL) return AFMT_OK;
    int rc = cache_reserve(x, errmsg);
    if (rc != AFMT_OK) return rc;
    afmt_chunk_rec *C = NULL;
    uint64_t n = 0;
    if ((rc = read_segment(x, k, s, &C, &n, errmsg)) != AFMT_OK) return rc;
    x->segcache->reads++;
    *out = cache_add(x, k, s, C, n);
    return AFMT_OK;
}

/* Binary search of a sorted chunk table. */
static const afmt_chunk_rec *find_chunk(const afmt_chunk_rec *C, uint64_t n, uint64_t a,
                                        uint64_t i) {
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(C[mid].array_id, C[mid].chunk_index, a, i);
        if (c == 0) return &C[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The first segment of li whose first key is > (a, i): the candidates for (a, i) are the
 * ones before it (format.md 9.3). */
static uint64_t first_after(const afmt_layer_info *li, uint64_t a, uint64_t i) {
    uint64_t lo = 0, hi = li->n_segs;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (key_cmp(li->segs[mid].first_array, li->segs[mid].first_chunk, a, i) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The next segment of li, going down from *s, whose [first, last] holds (a, i): start
 * with *s = first_after(li, a, i); 0 once there is none. Below a segment whose running
 * maximum of last keys is under (a, i), no segment can hold it (format.md 9.3). */
static int next_candidate(const afmt_layer_info *li, uint64_t a, uint64_t i, uint64_t *s) {
    while (*s > 0) {
        uint64_t t = --*s;
        if (key_cmp(li->maxlast[2 * t], li->maxlast[2 * t + 1], a, i) < 0) return 0;
        if (key_cmp(li->segs[t].last_array, li->segs[t].last_chunk, a, i) >= 0) return 1;
    }
    return 0;
}

/* Searches lazy layer k: the segments whose [first, last] holds (a, i) (format.md 9.3). */
static int search_layer(afmt_index *x, uint64_t k, uint64_t a, uint64_t i, afmt_chunk_loc *out,
                        int *found, char *errmsg) {
    const afmt_layer_info *li = &x->layers[k];
    for (uint64_t s = first_after(li, a, i); next_candidate(li, a, i, &s);) {
        const seg_entry *e = NULL;
        int rc = get_segment(x, k, s, &e, errmsg);
        if (rc != AFMT_OK) return rc;
        const afmt_chunk_rec *r = find_chunk(e->chunks, e->n, a, i);
        if (r) {
            *out = (afmt_chunk_loc){r->block, r->offset, r->size};
            *found = 1;
            return AFMT_OK;
        }
    }
    return AFMT_OK;
}

int afmt__index_lookup(afmt_index *x, uint64_t array_id, uint64_t chunk_index, afmt_chunk_loc *out,
                       int *found, char *errmsg) {
    *found = 0;
    for (uint64_t k = x->n_layers; x->first_lazy < x->n_layers && k-- > x->first_lazy;) {
        /* A layer older than the array's ids cannot hold its chunks (format.md 9.3). */
        if (x->layers[k].next_array_id <= array_id) break;
        int rc = search_layer(x, k, array_id, chunk_index, out, found, errmsg);
        if (rc != AFMT_OK || *found) return rc;
    }
    const afmt_chunk_loc *l = afmt__index_chunk(x, array_id, chunk_index);
    if (l) {
        *out = *l;
        *found = 1;
    }
    return AFMT_OK;
}

/* ---- the collective read's side (afmt_read_all, read_all.c) ---------------------- */

void afmt__seg_set_init(afmt_seg_set *t) {
    memset(t, 0, sizeof *t);
    afmt__hmap_init(&t->seen);
}

void afmt__seg_set_free(afmt_seg_set *t) {
    free(t->v);
    afmt__hmap_free(&t->seen);
    afmt__seg_set_init(t);
}

void afmt__seg_set_clear(afmt_seg_set *t) {
    t->n = 0;
    afmt__hmap_clear(&t->seen);
}

int afmt__seg_set_has(const afmt_seg_set *t, uint64_t layer, uint64_t seg) {
    return afmt__hmap_get(&t->seen, layer, seg) != NULL;
}

int afmt__seg_set_add(afmt_seg_set *t, uint64_t layer, uint64_t seg) {
    if (afmt__seg_set_has(t, layer, seg)) return AFMT_OK;
    if (AFMT__GROW(t->v, t->cap, t->n + 1, 16) != AFMT_OK ||
        afmt__hmap_put(&t->seen, layer, seg, t->n) != AFMT_OK)
        return AFMT_ENOMEM;
    t->v[t->n++] = (afmt_seg_id){layer, seg};
    return AFMT_OK;
}

/* search_layer without reading: the candidates of layer k that are cached are searched;
 * the others go into need unless they are in skip. *state: 1 found, 0 not in this layer
 * (fall through), -1 undecided (a candidate is not cached). */
static int dry_layer(afmt_index *x, uint64_t k, uint64_t a, uint64_t i, const afmt_seg_set *skip,
                     afmt_seg_set *need, int *state) {
    const afmt_layer_info *li = &x->layers[k];
    *state = 0;
    for (uint64_t s = first_after(li, a, i); next_candidate(li, a, i, &s);) {
        const seg_entry *e = cache_find(x, k, s);
        if (e) {
            if (find_chunk(e->chunks, e->n, a, i)) { /* a key is in one segment (X9) */
                *state = 1;
                return AFMT_OK;
            }
            continue;
        }
        *state = -1;
        if ((!skip || !afmt__seg_set_has(skip, k, s)) && afmt__seg_set_add(need, k, s) != AFMT_OK)
            return AFMT_ENOMEM;
    }
    return AFMT_OK;
}

int afmt__index_lookup_dry(afmt_index *x, uint64_t array_id, uint64_t chunk_index,
                           const afmt_seg_set *skip, afmt_seg_set *need) {
    for (uint64_t k = x->n_layers; x->first_lazy < x->n_layers && k-- > x->first_lazy;) {
        if (x->layers[k].next_array_id <= array_id) break;
        int state = 0, rc = dry_layer(x, k, array_id, chunk_index, skip, need, &state);
        if (rc != AFMT_OK || state != 0) return rc;
    }
    return AFMT_OK;
}

uint64_t afmt__segment_length(const afmt_index *x, uint64_t k, uint64_t s) {
    return x->layers[k].segs[s].length;
}

int afmt__segment_overlaps(const afmt_index *x, uint64_t k, uint64_t s, uint64_t array_id,
                           uint64_t lo, uint64_t hi) {
    const afmt_seg_rec *g = &x->layers[k].segs[s];
    return key_cmp(g->first_array, g->first_chunk, array_id, hi) <= 0 &&
           key_cmp(g->last_array, g->last_chunk, array_id, lo) >= 0;
}

int afmt__segment_fetch(afmt_index *x, uint64_t k, uint64_t s, uint8_t **out, char *errmsg) {
    struct afmt_segcache *c = cache_of(x);
    if (!c) return afmt__fail(errmsg, AFMT_ENOMEM, "out of memory for the index cache");
    int rc = read_raw(x, k, s, out, errmsg);
    if (rc == AFMT_OK) c->reads++;
    return rc;
}

int afmt__segcache_insert(afmt_index *x, uint64_t k, uint64_t s, const uint8_t *p, char *errmsg) {
    if (cache_find(x, k, s)) return AFMT_OK;
    int rc = cache_reserve(x, errmsg);
    if (rc != AFMT_OK) return rc;
    afmt_chunk_rec *C = NULL;
    uint64_t n = 0;
    if ((rc = decode_segment(x, k, s, p, &C, &n, errmsg)) != AFMT_OK) return rc;
    cache_add(x, k, s, C, n);
    return AFMT_OK;
}

typedef struct {
    uint64_t a, c, seg;
} seg_key;

static int seg_key_cmp(const void *p, const void *q) {
    const seg_key *x = p, *y = q;
    int c = key_cmp(x->a, x->c, y->a, y->c);
    return c ? c : (x->seg < y->seg ? -1 : x->seg > y->seg);
}

/* X9 (format.md 9.2): no key in two segments of layer k, whose segments' chunks are
 * all[0..n_segs) with counts cnt. Only a reader that reads every segment can check it. */
static int check_unique(const afmt_index *x, uint64_t k, afmt_chunk_rec *const *all,
                        const uint64_t *cnt, char *errmsg) {
    const afmt_layer_info *li = &x->layers[k];
    uint64_t total = 0;
    for (uint64_t s = 0; s < li->n_segs; s++) total += cnt[s];
    if (li->n_segs < 2) return AFMT_OK;
    seg_key *v = malloc(sizeof *v * (size_t)(total ? total : 1));
    if (!v)
        return afmt__fail(errmsg, AFMT_ENOMEM, "out of memory to check layer %llu",
                          (ull)li->layer_id);
    uint64_t n = 0;
    for (uint64_t s = 0; s < li->n_segs; s++)
        for (uint64_t i = 0; i < cnt[s]; i++)
            v[n++] = (seg_key){all[s][i].array_id, all[s][i].chunk_index, s};
    qsort(v, (size_t)n, sizeof *v, seg_key_cmp);
    int rc = AFMT_OK;
    for (uint64_t i = 1; i < n && rc == AFMT_OK; i++)
        if (v[i].a == v[i - 1].a && v[i].c == v[i - 1].c)
            rc = afmt__fail(errmsg, AFMT_ECORRUPT,
                            "layer %llu: chunk (%llu, %llu) is in two segments (%llu and %llu)",
                            (ull)li->layer_id, (ull)v[i].a, (ull)v[i].c, (ull)v[i - 1].seg,
                            (ull)v[i].seg);
    free(v);
    return rc;
}

int afmt__index_load_all(afmt_index *x, char *errmsg) {
    if (x->first_lazy >= x->n_layers) return AFMT_OK;
    /* Read and check everything first, so that a failure changes nothing but the block
     * list (blocks of segments read stay numbered, as after any lookup). */
    uint64_t nseg = 0, total = 0;
    for (uint64_t k = x->first_lazy; k < x->n_layers; k++) {
        nseg += x->layers[k].n_segs;
        for (uint64_t s = 0; s < x->layers[k].n_segs; s++) total += x->layers[k].segs[s].n_chunks;
    }
    afmt_chunk_rec **all = calloc((size_t)(nseg ? nseg : 1), sizeof *all);
    uint64_t *cnt = calloc((size_t)(nseg ? nseg : 1), sizeof *cnt);
    int rc = all && cnt && afmt__index_reserve_chunks(x, total) == AFMT_OK
                 ? AFMT_OK
                 : afmt__fail(errmsg, AFMT_ENOMEM, "out of memory to load the whole index");
    uint64_t j = 0;
    for (uint64_t k = x->first_lazy; rc == AFMT_OK && k < x->n_layers; k++) {
        uint64_t first = j;
        for (uint64_t s = 0; rc == AFMT_OK && s < x->layers[k].n_segs; s++, j++)
            rc = read_segment(x, k, s, &all[j], &cnt[j], errmsg);
        if (rc == AFMT_OK) rc = check_unique(x, k, all + first, cnt + first, errmsg);
    }
    if (rc == AFMT_OK) {
        /* Exact reference counts from here on: the loaded layers' blocks start at 0 and
         * count as the chunk map is built. */
        for (uint64_t k = x->first_lazy; k < x->n_layers; k++)
            for (uint64_t b = 0; b < x->n_blocks; b++)
                if (x->blocks[b].layer_id == x->layers[k].layer_id)
                    x->blocks[b].nrefs = x->blocks[b].nlive = 0;
        j = 0;
        for (uint64_t k = x->first_lazy; k < x->n_layers; k++) {
            afmt_layer_info *li = &x->layers[k];
            for (uint64_t s = 0; s < li->n_segs; s++, j++) {
                afmt__index_apply_loaded(x, all[j], cnt[j]);
                uint64_t base = li->seg_base[s];
                for (uint64_t b = 0; b < li->segs[s].n_blocks; b++) {
                    li->stored_bytes += x->blocks[base + b].b.stored_size;
                    li->raw_bytes += x->blocks[base + b].b.raw_size;
                }
            }
            afmt__lazy_layer_free(li);
        }
        x->first_lazy = x->n_layers;
        afmt__segcache_free(x);
    }
    for (uint64_t i = 0; all && i < nseg; i++) free(all[i]);
    free(all);
    free(cnt);
    return rc;
}
