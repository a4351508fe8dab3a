/* index.c - the merged in-memory index: layers applied oldest to newest, newest wins. */
#include "index/index.h"

#include "index/lazy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"

typedef unsigned long long ull; /* for printf */

/* Amortized doubling from 4 elements (util.h). */
#define GROW(arr, cap, need) AFMT__GROW(arr, cap, need, 4)

static uint64_t name_hash(const char *name) {
#ifdef AFMT_INDEX_TEST_WEAK_HASH
    /* Test builds only: forces collisions to exercise the collision chains. */
    return (uint64_t)strlen(name) % 3;
#else
    return afmt__hmap_hash_bytes(name, strlen(name));
#endif
}

/* ---- by_name: the live arrays of one hash are chained under k = 0, 1, 2, ... with
 * no gaps, so a lookup stops at the first absent k. ---- */

static uint64_t *name_slot(const afmt_index *x, const char *name) {
    uint64_t h = name_hash(name);
    for (uint64_t k = 0;; k++) {
        uint64_t *v = afmt__hmap_get(&x->by_name, h, k);
        if (!v || strcmp(x->arrays[*v].d.name, name) == 0) return v;
    }
}

static int name_add(afmt_index *x, const char *name, uint64_t pos) {
    uint64_t h = name_hash(name), k = 0;
    while (afmt__hmap_get(&x->by_name, h, k)) k++;
    return afmt__hmap_put(&x->by_name, h, k, pos);
}

static void name_remove(afmt_index *x, const char *name, uint64_t pos) {
    uint64_t h = name_hash(name), k = 0, at = UINT64_MAX;
    uint64_t *v;
    for (; (v = afmt__hmap_get(&x->by_name, h, k)) != NULL; k++)
        if (*v == pos) at = k;
    if (at == UINT64_MAX) return;
    /* Move the last of the chain into the hole to keep the chain gapless. */
    if (at != k - 1) *afmt__hmap_get(&x->by_name, h, at) = *afmt__hmap_get(&x->by_name, h, k - 1);
    afmt__hmap_del(&x->by_name, h, k - 1);
}

/* ---- attributes ---- */

/* The attribute key of owner (list a of n), or NULL. The map holds the first attribute of
 * each key hash; only a key that shares its hash with another one (never in practice:
 * the hash is keyed) costs a scan. So loading a layer of many attributes stays linear. */
static afmt_attr_rec *attr_find(const afmt_index *x, uint64_t owner, afmt_attr_rec *a, uint64_t n,
                                const char *key) {
    const uint64_t *p = afmt__hmap_get(&x->attr_map, owner, name_hash(key));
    if (!p) return NULL;
    if (*p < n && strcmp(a[*p].key, key) == 0) return &a[*p];
    for (uint64_t i = 0; i < n; i++)
        if (strcmp(a[i].key, key) == 0) return &a[i];
    return NULL;
}

/* Drops the map entries of owner's attributes (its list is about to be freed). */
static void attr_unmap(afmt_index *x, uint64_t owner, const afmt_attr_rec *a, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        uint64_t h = name_hash(a[i].key), *p = afmt__hmap_get(&x->attr_map, owner, h);
        if (p && *p == i) afmt__hmap_del(&x->attr_map, owner, h);
    }
}

static void attrs_free(afmt_attr_rec *a, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) free(a[i].value);
    free(a);
}

/* Value bytes of an attribute; 0 on a bad dtype or an overflow. */
static int attr_bytes(afmt_dtype t, uint64_t n, size_t *out) {
    size_t es = afmt__dtype_size(t);
    uint64_t b;
    if (!es || !afmt__mul_ok(n, es, &b) || b > SIZE_MAX) return 0;
    *out = (size_t)b;
    return 1;
}

static int key_ok(const char *key) {
    return key && key[0] && strlen(key) <= AFMT_MAX_NAME;
}

static uint8_t *dup_bytes(const void *p, size_t n) {
    uint8_t *q = malloc(n ? n : 1);
    if (q && n) memcpy(q, p, n);
    return q;
}

/* Sets or replaces key in the list with v (malloc'd; the list takes it over, or frees it
 * on failure); on AFMT_ENOMEM the list is unchanged. */
static int attr_put(afmt_index *x, afmt_attr_rec **a, uint64_t *n, uint64_t *cap, uint64_t array_id,
                    const char *key, afmt_dtype t, uint64_t cnt, uint8_t *v) {
    afmt_attr_rec *r = attr_find(x, array_id, *a, *n, key);
    if (!r) {
        if (GROW(*a, *cap, *n + 1) != AFMT_OK || afmt__hmap_reserve(&x->attr_map, 1) != AFMT_OK) {
            free(v);
            return AFMT_ENOMEM;
        }
        uint64_t h = name_hash(key);
        if (!afmt__hmap_get(&x->attr_map, array_id, h))
            afmt__hmap_put(&x->attr_map, array_id, h, *n); /* reserved: cannot fail */
        r = &(*a)[(*n)++];
        memset(r, 0, sizeof *r);
        strcpy(r->key, key);
    } else {
        free(r->value);
    }
    r->array_id = array_id;
    r->dtype = t;
    r->n = cnt;
    r->value = v;
    return AFMT_OK;
}

/* attr_put of a copy of value. */
static int attr_set(afmt_index *x, afmt_attr_rec **a, uint64_t *n, uint64_t *cap, uint64_t array_id,
                    const char *key, afmt_dtype t, uint64_t cnt, const void *value) {
    size_t bytes;
    if (!attr_bytes(t, cnt, &bytes)) return AFMT_EINVAL;
    uint8_t *v = dup_bytes(value, bytes);
    if (!v) return AFMT_ENOMEM;
    return attr_put(x, a, n, cap, array_id, key, t, cnt, v);
}

/* ---- init / free ---- */

void afmt__index_init(afmt_index *x) {
    memset(x, 0, sizeof *x);
    afmt__hmap_init(&x->by_id);
    afmt__hmap_init(&x->by_name);
    afmt__hmap_init(&x->chunks);
    afmt__hmap_init(&x->attr_map);
    x->next_array_id = 1;
}

void afmt__index_free(afmt_index *x) {
    if (!x) return;
    for (uint64_t i = 0; i < x->n_arrays; i++) attrs_free(x->arrays[i].attrs, x->arrays[i].n_attrs);
    free(x->arrays);
    afmt__hmap_free(&x->by_id);
    afmt__hmap_free(&x->by_name);
    free(x->blocks);
    free(x->locs);
    afmt__hmap_free(&x->chunks);
    attrs_free(x->file_attrs, x->n_file_attrs);
    afmt__hmap_free(&x->attr_map);
    for (uint64_t i = 0; i < x->n_layers; i++) {
        attrs_free(x->layers[i].attrs, x->layers[i].n_attrs);
        afmt__lazy_layer_free(&x->layers[i]);
    }
    free(x->layers);
    afmt__segcache_free(x);
    free(x->live);
    uint64_t limit = x->segcache_limit;
    afmt__index_init(x);
    x->segcache_limit = limit;
}

/* Sums what the index holds in memory: the capacities of its arrays and tables, the slots
 * of its hash maps, the attribute values, the layer infos with the root tables of lazy
 * layers, and the decoded segments in the cache (their chunk records exactly; the cache's
 * own entry table as 48 bytes per entry plus two 32-byte map slots). malloc's own
 * overhead is not counted. For benchmarks and tests. */
static uint64_t attrs_memory(const afmt_attr_rec *a, uint64_t n, uint64_t cap) {
    uint64_t m = cap * sizeof *a;
    for (uint64_t i = 0; i < n; i++) m += a[i].n * afmt__dtype_size(a[i].dtype);
    return m;
}

uint64_t afmt__index_memory(const afmt_index *x) {
    const uint64_t slot = sizeof(afmt_hmap_slot);
    uint64_t m = x->cap_arrays * sizeof *x->arrays;
    for (uint64_t i = 0; i < x->n_arrays; i++)
        m += attrs_memory(x->arrays[i].attrs, x->arrays[i].n_attrs, x->arrays[i].cap_attrs);
    m += (x->by_id.cap + x->by_name.cap + x->chunks.cap + x->attr_map.cap) * slot;
    m += x->cap_blocks * sizeof *x->blocks + x->cap_locs * sizeof *x->locs;
    m += attrs_memory(x->file_attrs, x->n_file_attrs, x->cap_file_attrs);
    m += x->cap_layers * sizeof *x->layers + x->cap_live * sizeof *x->live;
    for (uint64_t i = 0; i < x->n_layers; i++) {
        const afmt_layer_info *li = &x->layers[i];
        m += attrs_memory(li->attrs, li->n_attrs, li->n_attrs);
        if (li->lazy) /* segs, maxlast (2 u64) and seg_base (1 u64) per segment */
            m += li->n_segs * (sizeof *li->segs + 3 * sizeof(uint64_t));
    }
    uint64_t bytes = 0, entries = 0, reads = 0;
    afmt__segcache_stats(x, &bytes, &entries, &reads);
    return m + bytes + entries * (48 + 2 * slot);
}

/* ---- arrays ---- */

/* What a repeated DEFINE may not change (format.md 11.2): it decides where and how the
 * array's older chunks decode. NULL if nothing of it differs. */
static const char *decode_change(const afmt_array_rec *old, const afmt_array_rec *r) {
    if (old->dtype != r->dtype) return "dtype";
    if (old->ndim != r->ndim) return "ndim";
    if (old->flags != r->flags) return "flags (SHUFFLE)";
    for (int d = 0; d < r->ndim; d++)
        if (old->shape[d] != r->shape[d]) return "shape";
    for (int d = 0; d < r->ndim; d++)
        if (old->chunk[d] != r->chunk[d]) return "chunk shape";
    return NULL;
}

/* Static checks of a DEFINE record; fills why and returns 0 when it is invalid. */
static int rec_ok(const afmt_array_rec *r, afmt_grid *g, char *why, size_t whylen) {
    const char *w = NULL;
    if (r->kind != AFMT_REC_DEFINE)
        w = "not a DEFINE record";
    else if (r->id == 0 || r->id == UINT64_MAX)
        w = "reserved array id";
    else if (!memchr(r->name, 0, sizeof r->name) || !r->name[0])
        w = "bad name";
    else if (!afmt__dtype_valid((int)r->dtype))
        w = "bad dtype";
    else if (afmt__grid_init(g, r->ndim, r->shape, r->chunk) != AFMT_OK)
        w = "bad ndim, shape or chunk";
    else if (afmt__grid_bytes(g, afmt__dtype_size(r->dtype), NULL, NULL) != AFMT_OK)
        w = "its bytes or its chunk's bytes exceed the limits";
    if (!w) return 1;
    snprintf(why, whylen, "%s", w);
    return 0;
}

static void raise_next_id(afmt_index *x, uint64_t id) {
    if (id != UINT64_MAX && id + 1 > x->next_array_id) x->next_array_id = id + 1;
}

int afmt__index_define(afmt_index *x, const afmt_array_rec *r, char *errmsg) {
    afmt_grid g;
    char why[64];
    if (!r) return afmt__fail(errmsg, AFMT_EINVAL, "afmt__index_define: NULL record");
    if (!rec_ok(r, &g, why, sizeof why)) {
        /* The name may be unterminated here: print at most its buffer. */
        return afmt__fail(errmsg, AFMT_EINVAL, "array %llu (\"%.*s\"): %s", (ull)r->id,
                          AFMT_MAX_NAME, r->name, why);
    }
    uint64_t *pp = afmt__hmap_get(&x->by_id, r->id, 0);
    uint64_t *taken = name_slot(x, r->name);
    if (pp) {
        afmt_array *a = &x->arrays[*pp];
        /* Ids are never reused and deletions are final (format.md 11.2). */
        if (!a->live)
            return afmt__fail(errmsg, AFMT_EINVAL, "array %llu (\"%s\"): the id was deleted",
                              (ull)r->id, r->name);
        const char *what = decode_change(&a->d, r);
        if (what) {
            /* The stored chunks would no longer decode as written. */
            return afmt__fail(errmsg, AFMT_EINVAL,
                              "array %llu (\"%s\"): a redefinition changes its %s", (ull)r->id,
                              a->d.name, what);
        }
        if (strcmp(a->d.name, r->name) != 0) {
            if (taken)
                return afmt__fail(errmsg, AFMT_EEXIST,
                                  "array %llu: name \"%s\" is taken by array %llu", (ull)r->id,
                                  r->name, (ull)x->arrays[*taken].d.id);
            /* Add the new name first: if that fails nothing has changed. */
            if (name_add(x, r->name, *pp) != AFMT_OK) return AFMT_ENOMEM;
            name_remove(x, a->d.name, *pp);
        }
        a->d = *r;
        return AFMT_OK;
    }
    if (taken)
        return afmt__fail(errmsg, AFMT_EEXIST, "array \"%s\" exists (id %llu)", r->name,
                          (ull)x->arrays[*taken].d.id);
    /* Reserve everything first so that the insertion below cannot fail half-way. */
    if (GROW(x->arrays, x->cap_arrays, x->n_arrays + 1) != AFMT_OK ||
        GROW(x->live, x->cap_live, x->n_live + 1) != AFMT_OK ||
        afmt__hmap_reserve(&x->by_id, 1) != AFMT_OK ||
        afmt__hmap_reserve(&x->by_name, 1) != AFMT_OK)
        return AFMT_ENOMEM;
    uint64_t pos = x->n_arrays;
    afmt_array *a = &x->arrays[pos];
    memset(a, 0, sizeof *a);
    a->d = *r;
    a->grid = g;
    a->esize = afmt__dtype_size(r->dtype);
    a->live = 1;
    afmt__hmap_put(&x->by_id, r->id, 0, pos);
    name_add(x, r->name, pos);
    x->n_arrays++;
    /* New arrays take the highest position, so the live list stays sorted. */
    x->live[x->n_live++] = pos;
    raise_next_id(x, r->id);
    return AFMT_OK;
}

int afmt__index_reserve_array(afmt_index *x) {
    if (GROW(x->arrays, x->cap_arrays, x->n_arrays + 1) != AFMT_OK ||
        GROW(x->live, x->cap_live, x->n_live + 1) != AFMT_OK ||
        afmt__hmap_reserve(&x->by_id, 1) != AFMT_OK ||
        afmt__hmap_reserve(&x->by_name, 1) != AFMT_OK)
        return AFMT_ENOMEM;
    return AFMT_OK;
}

/* Rebuilds locs without the holes that deleted arrays left, when they are the majority.
 * Skipped silently when memory is short: the holes are only wasted space. */
static void compact_locs(afmt_index *x) {
    uint64_t n = x->chunks.count;
    if (x->n_locs < 1024 || x->n_locs - n <= x->n_locs / 2) return;
    /* Keep the spare room: afmt__index_apply reserved it before deleting arrays. */
    uint64_t cap = n + (x->cap_locs - x->n_locs);
    afmt_chunk_loc *nl = malloc((size_t)(cap ? cap : 1) * sizeof *nl);
    if (!nl) return;
    uint64_t j = 0;
    for (uint64_t i = 0; i < x->chunks.cap; i++) {
        afmt_hmap_slot *s = &x->chunks.slots[i];
        if (s->used != 1) continue;
        nl[j] = x->locs[s->val];
        s->val = j++;
    }
    free(x->locs);
    x->locs = nl;
    x->n_locs = n;
    x->cap_locs = cap;
}

static void drop_chunks(afmt_index *x, const afmt_array *a) {
    const uint64_t id = a->d.id, nch = afmt__grid_nchunks(&a->grid);
    if (nch <= x->chunks.cap) {
        for (uint64_t c = 0; c < nch && x->chunks.count; c++) {
            uint64_t *v = afmt__hmap_get(&x->chunks, id, c);
            if (!v) continue;
            x->blocks[x->locs[*v].block].nlive--;
            afmt__hmap_del(&x->chunks, id, c);
        }
    } else {
        /* Sparse huge grid: scanning the map is cheaper. Deleting never moves entries,
         * so the scan may delete as it goes. */
        for (uint64_t i = 0; i < x->chunks.cap; i++) {
            afmt_hmap_slot *s = &x->chunks.slots[i];
            if (s->used != 1 || s->k1 != id) continue;
            x->blocks[x->locs[s->val].block].nlive--;
            afmt__hmap_del(&x->chunks, s->k1, s->k2);
        }
    }
    compact_locs(x);
}

/* Marks id deleted; fix_live: also takes it out of the live list (else the caller
 * rebuilds the list once, after many deletions: see live_rebuild). */
static int forget(afmt_index *x, uint64_t id, int fix_live) {
    uint64_t *pp = afmt__hmap_get(&x->by_id, id, 0);
    if (!pp) return AFMT_ENOTFOUND;
    uint64_t pos = *pp;
    afmt_array *a = &x->arrays[pos];
    if (!a->live) return AFMT_OK;
    name_remove(x, a->d.name, pos);
    /* Binary search in the sorted live list, then close the gap. */
    uint64_t lo = 0, hi = x->n_live;
    while (fix_live && lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (x->live[mid] < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (fix_live && lo < x->n_live && x->live[lo] == pos) {
        memmove(&x->live[lo], &x->live[lo + 1], (size_t)(x->n_live - lo - 1) * sizeof *x->live);
        x->n_live--;
    }
    /* A dead array's attributes are unreachable: release them now. */
    attr_unmap(x, id, a->attrs, a->n_attrs);
    attrs_free(a->attrs, a->n_attrs);
    a->attrs = NULL;
    a->n_attrs = a->cap_attrs = 0;
    a->live = 0;
    return AFMT_OK;
}

/* The live list without the arrays that died: one pass, after a layer's deletions (one
 * memmove per deletion would make a layer deleting many arrays quadratic). */
static void live_rebuild(afmt_index *x) {
    uint64_t w = 0;
    for (uint64_t i = 0; i < x->n_live; i++)
        if (x->arrays[x->live[i]].live) x->live[w++] = x->live[i];
    x->n_live = w;
}

int afmt__index_forget(afmt_index *x, uint64_t id) {
    return forget(x, id, 1);
}

int afmt__index_delete(afmt_index *x, uint64_t id) {
    uint64_t *pp = afmt__hmap_get(&x->by_id, id, 0);
    if (!pp) return AFMT_ENOTFOUND;
    afmt_array *a = &x->arrays[*pp];
    if (!a->live) return AFMT_OK;
    drop_chunks(x, a);
    return afmt__index_forget(x, id);
}

/* ---- attributes, public ---- */

static afmt_array *live_by_id(const afmt_index *x, uint64_t id) {
    afmt_array *a = afmt__index_by_id(x, id);
    return a && a->live ? a : NULL;
}

int afmt__index_set_attr(afmt_index *x, uint64_t array_id, const char *key, afmt_dtype t,
                         uint64_t n, const void *value_le) {
    size_t bytes;
    if (!key_ok(key) || !attr_bytes(t, n, &bytes) || (bytes && !value_le)) return AFMT_EINVAL;
    if (array_id == AFMT_ATTR_FILE)
        return attr_set(x, &x->file_attrs, &x->n_file_attrs, &x->cap_file_attrs, array_id, key, t,
                        n, value_le);
    if (array_id == AFMT_ATTR_LAYER) return AFMT_EINVAL; /* those belong to a layer */
    afmt_array *a = live_by_id(x, array_id);
    if (!a) return AFMT_ENOTFOUND;
    return attr_set(x, &a->attrs, &a->n_attrs, &a->cap_attrs, array_id, key, t, n, value_le);
}

/* The attribute list of array_id (AFMT_ATTR_FILE or a live array), or NULL. */
static int attr_list(afmt_index *x, uint64_t array_id, afmt_attr_rec ***a, uint64_t **n,
                     uint64_t **cap) {
    if (array_id == AFMT_ATTR_FILE) {
        *a = &x->file_attrs;
        *n = &x->n_file_attrs;
        *cap = &x->cap_file_attrs;
        return AFMT_OK;
    }
    afmt_array *arr = array_id == AFMT_ATTR_LAYER ? NULL : live_by_id(x, array_id);
    if (!arr) return AFMT_ENOTFOUND;
    *a = &arr->attrs;
    *n = &arr->n_attrs;
    *cap = &arr->cap_attrs;
    return AFMT_OK;
}

int afmt__index_reserve_attr(afmt_index *x, uint64_t array_id, const char *key) {
    afmt_attr_rec **a;
    uint64_t *n, *cap;
    int rc = attr_list(x, array_id, &a, &n, &cap);
    if (rc != AFMT_OK || !key_ok(key)) return rc != AFMT_OK ? rc : AFMT_EINVAL;
    if (attr_find(x, array_id, *a, *n, key)) return AFMT_OK;
    /* The list entry and its map entry (attr_put adds both for a new key). */
    if (GROW(*a, *cap, *n + 1) != AFMT_OK || afmt__hmap_reserve(&x->attr_map, 1) != AFMT_OK)
        return AFMT_ENOMEM;
    return AFMT_OK;
}

int afmt__index_put_attr(afmt_index *x, uint64_t array_id, const char *key, afmt_dtype t,
                         uint64_t n, uint8_t *value_le) {
    afmt_attr_rec **a;
    uint64_t *cnt, *cap;
    size_t bytes;
    int rc = attr_list(x, array_id, &a, &cnt, &cap);
    if (rc == AFMT_OK && (!key_ok(key) || !attr_bytes(t, n, &bytes))) rc = AFMT_EINVAL;
    if (rc != AFMT_OK) {
        free(value_le);
        return rc;
    }
    return attr_put(x, a, cnt, cap, array_id, key, t, n, value_le); /* frees it on failure */
}

const afmt_attr_rec *afmt__index_get_attr(const afmt_index *x, uint64_t array_id, const char *key) {
    if (!key) return NULL;
    if (array_id == AFMT_ATTR_FILE)
        return attr_find(x, array_id, x->file_attrs, x->n_file_attrs, key);
    afmt_array *a = live_by_id(x, array_id);
    return a ? attr_find(x, array_id, a->attrs, a->n_attrs, key) : NULL;
}

/* ---- lookups ---- */

afmt_array *afmt__index_find(const afmt_index *x, const char *name) {
    if (!name) return NULL;
    uint64_t *v = name_slot(x, name);
    return v ? &x->arrays[*v] : NULL;
}

afmt_array *afmt__index_by_id(const afmt_index *x, uint64_t id) {
    uint64_t *v = afmt__hmap_get(&x->by_id, id, 0);
    return v ? &x->arrays[*v] : NULL;
}

uint64_t afmt__index_live_count(const afmt_index *x) {
    return x->n_live;
}

afmt_array *afmt__index_live_at(const afmt_index *x, uint64_t i) {
    return i < x->n_live ? &x->arrays[x->live[i]] : NULL;
}

int afmt__index_reserve_chunks(afmt_index *x, uint64_t n) {
    if (AFMT__GROW(x->locs, x->cap_locs, x->n_locs + n, 64) != AFMT_OK ||
        afmt__hmap_reserve(&x->chunks, n) != AFMT_OK)
        return AFMT_ENOMEM;
    return AFMT_OK;
}

/* Chunk c now lives at loc (newest wins): the older version, if any, stays referenced
 * but dead. The map's and the locations' room is reserved. */
static void put_loc(afmt_index *x, const afmt_chunk_rec *c, afmt_chunk_loc loc) {
    uint64_t *v = afmt__hmap_get(&x->chunks, c->array_id, c->chunk_index);
    if (v) {
        x->blocks[x->locs[*v].block].nlive--;
        x->locs[*v] = loc;
    } else {
        x->locs[x->n_locs] = loc;
        afmt__hmap_put(&x->chunks, c->array_id, c->chunk_index, x->n_locs++);
    }
    x->blocks[loc.block].nlive++;
}

void afmt__index_apply_loaded(afmt_index *x, const afmt_chunk_rec *chunks, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        const afmt_chunk_rec *c = &chunks[i];
        const afmt_array *a = afmt__index_by_id(x, c->array_id);
        x->blocks[c->block].nrefs++;
        if (a && a->live) /* else deleted by a newer layer: never read */
            put_loc(x, c, (afmt_chunk_loc){c->block, c->offset, c->size});
    }
}

const afmt_chunk_loc *afmt__index_chunk(const afmt_index *x, uint64_t array_id,
                                        uint64_t chunk_index) {
    uint64_t *v = afmt__hmap_get(&x->chunks, array_id, chunk_index);
    return v ? &x->locs[*v] : NULL;
}

/* ---- checking a layer (format.md 11.2), without changing the index ---- */

/* The layer's array records as they take effect, on top of the index: per id touched by
 * the layer, (i << 1) | 1 for "defined by record i", 0 for "deleted"; and the names the
 * layer's live definitions hold, as chains of record numbers per name hash like by_name. */
typedef struct {
    const afmt_index *x;
    const afmt_layer *L;
    afmt_hmap ids, names;
} overlay;

typedef struct {
    int known, live;
    const afmt_array_rec *d; /* the current descriptor, if live */
    const afmt_grid *grid;   /* the index's grid, if untouched by the layer */
    const char *name;        /* its (last) name, if known */
} vstate;

static void ov_state(const overlay *o, uint64_t id, vstate *v) {
    memset(v, 0, sizeof *v);
    const uint64_t *p = afmt__hmap_get(&o->ids, id, 0);
    const afmt_array *a = afmt__index_by_id(o->x, id);
    if (p) {
        v->known = 1;
        v->live = (int)(*p & 1);
        if (v->live) v->d = &o->L->arrays[*p >> 1];
        v->name = v->live ? v->d->name : a ? a->d.name : "";
        return;
    }
    if (!a) return;
    v->known = 1;
    v->live = a->live;
    v->name = a->d.name;
    if (a->live) {
        v->d = &a->d;
        v->grid = &a->grid;
    }
}

static void chain_remove(afmt_hmap *m, uint64_t h, uint64_t val) {
    uint64_t k = 0, at = UINT64_MAX;
    uint64_t *v;
    for (; (v = afmt__hmap_get(m, h, k)) != NULL; k++)
        if (*v == val) at = k;
    if (at == UINT64_MAX) return;
    if (at != k - 1) *afmt__hmap_get(m, h, at) = *afmt__hmap_get(m, h, k - 1);
    afmt__hmap_del(m, h, k - 1);
}

static int chain_add(afmt_hmap *m, uint64_t h, uint64_t val) {
    uint64_t k = 0;
    while (afmt__hmap_get(m, h, k)) k++;
    return afmt__hmap_put(m, h, k, val);
}

/* The id of the live array that holds name now, or 0. */
static uint64_t ov_holder(const overlay *o, const char *name) {
    uint64_t h = name_hash(name);
    uint64_t *v;
    for (uint64_t k = 0; (v = afmt__hmap_get(&o->names, h, k)) != NULL; k++)
        if (strcmp(o->L->arrays[*v].name, name) == 0) return o->L->arrays[*v].id;
    /* An array of the index keeps its name unless the layer touched it. */
    const afmt_array *a = afmt__index_find(o->x, name);
    if (a && !afmt__hmap_get(&o->ids, a->d.id, 0)) return a->d.id;
    return 0;
}

/* Drops the layer's record that currently defines id from the name chains. */
static void ov_unname(overlay *o, uint64_t id) {
    const uint64_t *p = afmt__hmap_get(&o->ids, id, 0);
    if (p && (*p & 1)) chain_remove(&o->names, name_hash(o->L->arrays[*p >> 1].name), *p >> 1);
}

#define BADL(...) afmt__fail(errmsg, AFMT_ECORRUPT, __VA_ARGS__)

/* One array record against the view (load mode: a transition of format.md 11.2). */
static int check_array_load(overlay *o, uint64_t i, uint64_t next_before, char *errmsg) {
    const afmt_array_rec *r = &o->L->arrays[i];
    const ull lid = (ull)o->L->layer_id, ri = (ull)i, id = (ull)r->id;
    vstate v;
    ov_state(o, r->id, &v);
    if (r->kind == AFMT_REC_DELETE) {
        if (!v.known)
            return BADL("layer %llu: array record %llu deletes array id %llu, which was never "
                        "defined",
                        lid, ri, id);
        if (!v.live)
            return BADL("layer %llu: array record %llu deletes array %llu (\"%s\"), which is "
                        "already deleted",
                        lid, ri, id, v.name);
        ov_unname(o, r->id);
        return afmt__hmap_put(&o->ids, r->id, 0, 0) == AFMT_OK
                   ? AFMT_OK
                   : afmt__fail(errmsg, AFMT_ENOMEM, "layer %llu: out of memory", lid);
    }
    char why[64];
    afmt_grid g;
    if (!rec_ok(r, &g, why, sizeof why))
        return BADL("layer %llu: array record %llu (id %llu): %s", lid, ri, id, why);
    if (!v.known && r->id < next_before)
        return BADL("layer %llu: array record %llu defines id %llu, below next_array_id %llu of "
                    "the layers before (ids are never reused)",
                    lid, ri, id, (ull)next_before);
    if (v.known && !v.live)
        return BADL("layer %llu: array record %llu defines array %llu (\"%s\"), which was deleted "
                    "(ids are never reused)",
                    lid, ri, id, r->name);
    if (v.live) {
        const char *what = decode_change(v.d, r);
        if (what)
            return BADL("layer %llu: array record %llu redefines array %llu (\"%s\") with a "
                        "different %s",
                        lid, ri, id, v.d->name, what);
    }
    uint64_t holder = ov_holder(o, r->name);
    if (holder && holder != r->id)
        return BADL("layer %llu: array record %llu (id %llu): name \"%s\" is taken by array %llu",
                    lid, ri, id, r->name, (ull)holder);
    ov_unname(o, r->id);
    if (afmt__hmap_put(&o->ids, r->id, 0, (i << 1) | 1) != AFMT_OK ||
        chain_add(&o->names, name_hash(r->name), i) != AFMT_OK)
        return afmt__fail(errmsg, AFMT_ENOMEM, "layer %llu: out of memory", lid);
    return AFMT_OK;
}

/* One array record of the writer's own layer: the index holds it already. */
static int check_array_own(const overlay *o, uint64_t i, char *errmsg) {
    const afmt_array_rec *r = &o->L->arrays[i];
    const ull lid = (ull)o->L->layer_id, ri = (ull)i, id = (ull)r->id;
    const afmt_array *a = afmt__index_by_id(o->x, r->id);
    if (!a)
        return BADL("layer %llu: array record %llu names array id %llu, which this index never "
                    "defined",
                    lid, ri, id);
    if (r->kind == AFMT_REC_DELETE) {
        if (a->live)
            return BADL("layer %llu: array record %llu deletes array %llu (\"%s\"), which is live",
                        lid, ri, id, a->d.name);
        return AFMT_OK;
    }
    char why[64];
    afmt_grid g;
    if (!rec_ok(r, &g, why, sizeof why))
        return BADL("layer %llu: array record %llu (id %llu): %s", lid, ri, id, why);
    /* A definition deleted later in the same session is dead here. */
    if (!a->live) return AFMT_OK;
    const char *what = decode_change(&a->d, r);
    if (what || strcmp(a->d.name, r->name) != 0)
        return BADL("layer %llu: array record %llu (id %llu, \"%s\") differs from the array's "
                    "definition (%s)",
                    lid, ri, id, r->name, what ? what : "name");
    return AFMT_OK;
}

/* A chunk record against the view after the layer's array records (M7-M9), and against
 * its block (the decoder checks that too; a layer built by a commit is not decoded). */
static int check_chunk(const overlay *o, const afmt_chunk_rec *c, const afmt_grid *grid,
                       const vstate *v, char *errmsg) {
    const afmt_layer *L = o->L;
    const ull lid = (ull)L->layer_id, ci = (ull)c->chunk_index, aid = (ull)c->array_id;
    if (!v->known) return BADL("layer %llu: chunk %llu of unknown array id %llu", lid, ci, aid);
    if (!v->live)
        return BADL("layer %llu: chunk %llu of deleted array %llu (\"%s\")", lid, ci, aid, v->name);
    const char *nm = v->d->name;
    uint64_t nch = afmt__grid_nchunks(grid);
    if (c->chunk_index >= nch)
        return BADL("layer %llu: array %llu (\"%s\"): chunk index %llu out of the grid (%llu "
                    "chunks)",
                    lid, aid, nm, ci, (ull)nch);
    uint64_t cc[AFMT_MAX_NDIM], want = 0;
    afmt__grid_chunk_coord(grid, c->chunk_index, cc);
    uint64_t elems = afmt__grid_chunk_box(grid, cc, NULL, NULL);
    /* elems * esize <= AFMT_MAX_CHUNK_BYTES (afmt__grid_bytes): no overflow. */
    want = elems * afmt__dtype_size(v->d->dtype);
    if (c->size != want)
        return BADL("layer %llu: array %llu (\"%s\"): chunk %llu has %llu bytes, its extent of "
                    "%llu elements needs %llu",
                    lid, aid, nm, ci, (ull)c->size, (ull)elems, (ull)want);
    if (c->block >= L->n_blocks)
        return BADL("layer %llu: array %llu (\"%s\"): chunk %llu is in block %llu of %llu", lid,
                    aid, nm, ci, (ull)c->block, (ull)L->n_blocks);
    uint64_t end;
    if (!afmt__add_ok(c->offset, c->size, &end) || end > L->blocks[c->block].raw_size)
        return BADL("layer %llu: array %llu (\"%s\"): chunk %llu at offset %llu size %llu exceeds "
                    "block %llu (%llu raw bytes)",
                    lid, aid, nm, ci, (ull)c->offset, (ull)c->size, (ull)c->block,
                    (ull)L->blocks[c->block].raw_size);
    return AFMT_OK;
}

static int check_attr(const overlay *o, const afmt_attr_rec *t, char *errmsg) {
    const ull lid = (ull)o->L->layer_id;
    size_t bytes;
    if (!memchr(t->key, 0, sizeof t->key) || !t->key[0] || !attr_bytes(t->dtype, t->n, &bytes) ||
        (bytes && !t->value))
        return BADL("layer %llu: malformed attribute of array id %llu", lid, (ull)t->array_id);
    if (t->array_id == AFMT_ATTR_FILE || t->array_id == AFMT_ATTR_LAYER) return AFMT_OK;
    vstate v;
    ov_state(o, t->array_id, &v);
    if (!v.known)
        return BADL("layer %llu: attribute \"%s\" of unknown array id %llu", lid, t->key,
                    (ull)t->array_id);
    if (!v.live)
        return BADL("layer %llu: attribute \"%s\" of deleted array %llu (\"%s\")", lid, t->key,
                    (ull)t->array_id, v.name);
    return AFMT_OK;
}

int afmt__index_check_layer(const afmt_index *x, const afmt_layer *L, int mode, afmt_check_at *at,
                            char *errmsg) {
    const ull lid = (ull)L->layer_id;
    afmt_check_at where = {AFMT_AT_HEADER, 0};
    overlay o;
    o.x = x;
    o.L = L;
    afmt__hmap_init(&o.ids);
    afmt__hmap_init(&o.names);
    int rc = AFMT_OK;
    if (L->next_array_id < x->next_array_id)
        rc = BADL("layer %llu: next_array_id %llu is below the previous layer's %llu", lid,
                  (ull)L->next_array_id, (ull)x->next_array_id);
    if (rc == AFMT_OK && mode == AFMT_CHECK_LOAD &&
        (afmt__hmap_reserve(&o.ids, L->n_arrays) != AFMT_OK ||
         afmt__hmap_reserve(&o.names, L->n_arrays) != AFMT_OK))
        rc = afmt__fail(errmsg, AFMT_ENOMEM, "layer %llu: out of memory", lid);
    for (uint64_t i = 0; rc == AFMT_OK && i < L->n_arrays; i++) {
        where = (afmt_check_at){AFMT_AT_ARRAY, i};
        rc = mode == AFMT_CHECK_LOAD ? check_array_load(&o, i, x->next_array_id, errmsg)
                                     : check_array_own(&o, i, errmsg);
    }
    /* Chunks are sorted by array id: one look-up (and grid) per run of an array. */
    vstate v;
    afmt_grid g;
    const afmt_grid *grid = NULL;
    for (uint64_t i = 0; rc == AFMT_OK && i < L->n_chunks; i++) {
        const afmt_chunk_rec *c = &L->chunks[i];
        where = (afmt_check_at){AFMT_AT_CHUNK, i};
        if (i == 0 || c->array_id != L->chunks[i - 1].array_id) {
            ov_state(&o, c->array_id, &v);
            grid = v.grid;
            if (v.live && !grid) {
                /* Defined by this layer: rec_ok checked that its grid is valid. */
                afmt__grid_init(&g, v.d->ndim, v.d->shape, v.d->chunk);
                grid = &g;
            }
        }
        rc = check_chunk(&o, c, grid, &v, errmsg);
    }
    for (uint64_t i = 0; rc == AFMT_OK && i < L->n_attrs; i++) {
        where = (afmt_check_at){AFMT_AT_ATTR, i};
        rc = check_attr(&o, &L->attrs[i], errmsg);
    }
    afmt__hmap_free(&o.ids);
    afmt__hmap_free(&o.names);
    if (at) *at = rc == AFMT_OK ? (afmt_check_at){AFMT_AT_NONE, 0} : where;
    return rc;
}

int afmt__index_check_commit(const afmt_index *x, const afmt_layer *L, uint32_t *rank,
                             char *errmsg) {
    afmt_check_at at;
    int rc;
    if (L->flags & AFMT_LAYER_BASE) {
        /* A BASE layer starts a chain: it is applied to nothing. */
        afmt_index empty;
        afmt__index_init(&empty);
        rc = afmt__index_check_layer(&empty, L, AFMT_CHECK_LOAD, &at, errmsg);
        afmt__index_free(&empty);
    } else {
        rc = afmt__index_check_layer(x, L, AFMT_CHECK_OWN, &at, errmsg);
    }
    /* Chunk records come from the rank whose block they name; the rest is rank 0's. */
    *rank = 0;
    if (rc != AFMT_OK && at.table == AFMT_AT_CHUNK && L->chunks[at.rec].block < L->n_blocks)
        *rank = L->blocks[L->chunks[at.rec].block].rank;
    return rc;
}

#undef BADL

/* ---- applying a layer ---- */

/* Drops the chunks of the arrays a layer deleted, all at once: probing each array's grid
 * costs its chunk count, scanning the map costs its capacity; a layer that deletes many
 * arrays of huge sparse grids must not scan the map once per array. */
static void drop_deleted(afmt_index *x, const afmt_layer *L) {
    afmt_hmap scan;
    afmt__hmap_init(&scan);
    int use_scan = 0;
    for (uint64_t i = 0; i < L->n_arrays; i++) {
        const afmt_array_rec *r = &L->arrays[i];
        if (r->kind != AFMT_REC_DELETE) continue;
        afmt_array *a = afmt__index_by_id(x, r->id);
        if (!a) continue;
        if (afmt__grid_nchunks(&a->grid) <= x->chunks.cap / 8 + 16 ||
            afmt__hmap_put(&scan, r->id, 0, 1) != AFMT_OK)
            drop_chunks(x, a); /* small grid (or no memory for the set: one by one) */
        else
            use_scan = 1;
    }
    if (use_scan) {
        /* Deleting never moves entries, so the scan may delete as it goes. */
        for (uint64_t i = 0; i < x->chunks.cap; i++) {
            afmt_hmap_slot *s = &x->chunks.slots[i];
            if (s->used != 1 || !afmt__hmap_get(&scan, s->k1, 0)) continue;
            x->blocks[x->locs[s->val].block].nlive--;
            afmt__hmap_del(&x->chunks, s->k1, s->k2);
        }
        compact_locs(x);
    }
    afmt__hmap_free(&scan);
}

/* The layer-scope attributes of L, one per key: the last record of a key wins (format.md
 * 10). AFMT_OK or AFMT_ENOMEM (li->attrs then freed). */
static int layer_attrs(const afmt_layer *L, afmt_layer_info *li) {
    uint64_t nla = 0;
    for (uint64_t i = 0; i < L->n_attrs; i++)
        nla += (uint64_t)(L->attrs[i].array_id == AFMT_ATTR_LAYER);
    if (!nla) return AFMT_OK;
    afmt_hmap keys;
    afmt__hmap_init(&keys);
    li->attrs = calloc((size_t)nla, sizeof *li->attrs);
    int rc = li->attrs && afmt__hmap_reserve(&keys, nla) == AFMT_OK ? AFMT_OK : AFMT_ENOMEM;
    for (uint64_t i = 0; rc == AFMT_OK && i < L->n_attrs; i++) {
        const afmt_attr_rec *t = &L->attrs[i];
        if (t->array_id != AFMT_ATTR_LAYER) continue;
        size_t bytes = 0;
        (void)attr_bytes(t->dtype, t->n, &bytes); /* checked by afmt__index_check_layer */
        uint8_t *val = dup_bytes(t->value, bytes);
        if (!val) {
            rc = AFMT_ENOMEM;
            break;
        }
        /* An earlier record of the key: replace it in place (keeps the first position). */
        uint64_t h = name_hash(t->key), *pos = NULL;
        for (uint64_t k = 0; (pos = afmt__hmap_get(&keys, h, k)) != NULL; k++)
            if (strcmp(li->attrs[*pos].key, t->key) == 0) break;
        afmt_attr_rec *o;
        if (pos) {
            o = &li->attrs[*pos];
            free(o->value);
        } else {
            chain_add(&keys, h, li->n_attrs); /* reserved: cannot fail */
            o = &li->attrs[li->n_attrs++];
        }
        *o = *t;
        o->value = val;
    }
    afmt__hmap_free(&keys);
    if (rc != AFMT_OK) {
        attrs_free(li->attrs, li->n_attrs);
        li->attrs = NULL;
        li->n_attrs = 0;
    }
    return rc;
}

/* Reserves all memory applying L needs, so that no step fails half-way for memory
 * (except attribute copies, each of which is all or nothing). */
static int reserve_for_layer(afmt_index *x, const afmt_layer *L, int mode, char *errmsg) {
    uint64_t ndef = 0;
    for (uint64_t i = 0; mode == AFMT_CHECK_LOAD && i < L->n_arrays; i++)
        ndef += (uint64_t)(L->arrays[i].kind == AFMT_REC_DEFINE);
    if (GROW(x->arrays, x->cap_arrays, x->n_arrays + ndef) != AFMT_OK ||
        GROW(x->live, x->cap_live, x->n_live + ndef) != AFMT_OK ||
        afmt__hmap_reserve(&x->by_id, ndef) != AFMT_OK ||
        afmt__hmap_reserve(&x->by_name, ndef) != AFMT_OK ||
        GROW(x->blocks, x->cap_blocks, x->n_blocks + L->n_blocks) != AFMT_OK ||
        GROW(x->locs, x->cap_locs, x->n_locs + L->n_chunks) != AFMT_OK ||
        afmt__hmap_reserve(&x->chunks, L->n_chunks) != AFMT_OK ||
        GROW(x->layers, x->cap_layers, x->n_layers + 1) != AFMT_OK)
        return afmt__fail(errmsg, AFMT_ENOMEM, "layer %llu: out of memory for the index",
                          (ull)L->layer_id);
    return AFMT_OK;
}

/* The layer's entry in the index's list of layers, with a copy of its layer attributes. */
static int layer_info(const afmt_layer *L, uint64_t footer_offset, uint64_t footer_length,
                      afmt_layer_info *li, char *errmsg) {
    memset(li, 0, sizeof *li);
    li->layer_id = L->layer_id;
    li->time_ns = L->time_ns;
    li->footer_offset = footer_offset;
    li->footer_length = footer_length;
    li->data_offset = L->data_offset;
    li->nranks = L->nranks;
    li->flags = L->flags;
    li->n_blocks = L->n_blocks;
    li->n_chunks = L->n_chunks;
    li->version = L->version;
    li->n_segs = L->n_segs;
    li->next_array_id = L->next_array_id;
    for (uint64_t i = 0; i < L->n_segs; i++) li->seg_bytes += L->segs[i].length;
    if (L->n_segs && !L->n_chunks && !L->n_blocks) { /* lazy: the segments are not read */
        li->n_blocks = L->seg_blocks;
        li->n_chunks = L->seg_chunks;
        if (afmt__lazy_layer_init(li, L) != AFMT_OK)
            return afmt__fail(errmsg, AFMT_ENOMEM, "layer %llu: out of memory for the index",
                              (ull)L->layer_id);
    }
    for (uint64_t i = 0; i < L->n_blocks; i++) {
        li->stored_bytes += L->blocks[i].stored_size;
        li->raw_bytes += L->blocks[i].raw_size;
    }
    if (layer_attrs(L, li) != AFMT_OK) {
        afmt__lazy_layer_free(li);
        return afmt__fail(errmsg, AFMT_ENOMEM, "layer %llu: out of memory for the index",
                          (ull)L->layer_id);
    }
    return AFMT_OK;
}

/* Array records in order (a name may be deleted and defined anew in one layer). The
 * chunks of deleted arrays go after the records, in one pass. */
static int apply_arrays(afmt_index *x, const afmt_layer *L, char *errmsg) {
    char why[AFMT_ERRMSG_MAX];
    int any_delete = 0, rc = AFMT_OK;
    for (uint64_t i = 0; i < L->n_arrays && rc == AFMT_OK; i++) {
        const afmt_array_rec *r = &L->arrays[i];
        if (r->kind == AFMT_REC_DELETE) {
            forget(x, r->id, 0);
            any_delete = 1;
            continue;
        }
        rc = afmt__index_define(x, r, why);
        if (rc != AFMT_OK) /* only ENOMEM after the check */
            afmt__fail(errmsg, rc, "layer %llu: %s", (ull)L->layer_id, why);
    }
    if (any_delete) {
        live_rebuild(x);
        drop_deleted(x, L);
    }
    return rc;
}

/* Block records, appended; returns the index of the first, which chunk records count
 * from. */
static uint64_t apply_blocks(afmt_index *x, const afmt_layer *L) {
    const uint64_t base = x->n_blocks;
    for (uint64_t i = 0; i < L->n_blocks; i++) {
        afmt_iblock *b = &x->blocks[x->n_blocks++];
        b->b = L->blocks[i];
        b->layer_id = L->layer_id;
        b->nrefs = b->nlive = 0;
    }
    return base;
}

/* Chunk records: each points at a block of this layer, base the index of its first. */
static void apply_chunks(afmt_index *x, const afmt_layer *L, uint64_t base) {
    for (uint64_t i = 0; i < L->n_chunks; i++) {
        const afmt_chunk_rec *c = &L->chunks[i];
        x->blocks[base + c->block].nrefs++;
        put_loc(x, c, (afmt_chunk_loc){base + c->block, c->offset, c->size});
    }
}

/* Attribute records of arrays (the layer's own are in its layer info). */
static int apply_attrs(afmt_index *x, const afmt_layer *L, char *errmsg) {
    for (uint64_t i = 0; i < L->n_attrs; i++) {
        const afmt_attr_rec *t = &L->attrs[i];
        if (t->array_id == AFMT_ATTR_LAYER) continue;
        int rc = afmt__index_set_attr(x, t->array_id, t->key, t->dtype, t->n, t->value);
        if (rc != AFMT_OK)
            return afmt__fail(errmsg, rc, "layer %llu: attribute \"%s\": %s", (ull)L->layer_id,
                              t->key, afmt_strerror(rc));
    }
    return AFMT_OK;
}

static int apply_layer(afmt_index *x, const afmt_layer *L, uint64_t footer_offset,
                       uint64_t footer_length, int mode, char *errmsg) {
    /* 1. Every check first: a damaged layer changes nothing. */
    int rc = afmt__index_check_layer(x, L, mode, NULL, errmsg);
    if (rc != AFMT_OK) return rc;
    /* Chunks in the map must be older than every lazy layer's (lazy.h): a layer with its
     * chunks on top of lazy ones makes the whole index eager first. */
    int had_lazy = x->first_lazy < x->n_layers;
    if (had_lazy && L->n_chunks && (rc = afmt__index_load_all(x, errmsg)) != AFMT_OK) return rc;
    had_lazy = x->first_lazy < x->n_layers;

    /* 2. Reserve all memory the rest needs. */
    afmt_layer_info li;
    if ((rc = reserve_for_layer(x, L, mode, errmsg)) != AFMT_OK ||
        (rc = layer_info(L, footer_offset, footer_length, &li, errmsg)) != AFMT_OK)
        return rc;

    /* 3. Array records. The writer's own layer is in the index already. */
    if (mode == AFMT_CHECK_LOAD && (rc = apply_arrays(x, L, errmsg)) != AFMT_OK) {
        attrs_free(li.attrs, li.n_attrs);
        return rc;
    }

    /* 4. Apply; the memory is reserved, so nothing below fails before the attributes. */
    apply_chunks(x, L, apply_blocks(x, L));
    x->layers[x->n_layers++] = li;
    if (!had_lazy) x->first_lazy = li.lazy ? x->n_layers - 1 : x->n_layers;
    if (L->next_array_id > x->next_array_id) x->next_array_id = L->next_array_id;
    return apply_attrs(x, L, errmsg);
}

int afmt__index_apply(afmt_index *x, const afmt_layer *L, uint64_t footer_offset,
                      uint64_t footer_length, char *errmsg) {
    return apply_layer(x, L, footer_offset, footer_length, AFMT_CHECK_LOAD, errmsg);
}

int afmt__index_apply_own(afmt_index *x, const afmt_layer *L, uint64_t footer_offset,
                          uint64_t footer_length, char *errmsg) {
    return apply_layer(x, L, footer_offset, footer_length, AFMT_CHECK_OWN, errmsg);
}
