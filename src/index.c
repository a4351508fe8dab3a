/* index.c - the merged in-memory index: layers applied oldest to newest, newest wins. */
#include "index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "util.h"

typedef unsigned long long ull; /* for printf */

/* Ensures *cap >= need for an array of elements of esz bytes (amortized doubling). */
static int grow(void **p, uint64_t *cap, uint64_t need, size_t esz) {
    if (need <= *cap) return AFMT_OK;
    uint64_t nc = *cap ? *cap : 4;
    while (nc < need) nc = nc > UINT64_MAX / 2 ? need : nc * 2;
    if (nc > SIZE_MAX / esz) return AFMT_ENOMEM;
    void *q = realloc(*p, (size_t)nc * esz);
    if (!q) return AFMT_ENOMEM;
    *p = q;
    *cap = nc;
    return AFMT_OK;
}
#define GROW(arr, cap, need) grow((void **)&(arr), &(cap), (need), sizeof *(arr))

static uint64_t name_hash(const char *name) {
#ifdef AFMT_INDEX_TEST_WEAK_HASH
    /* Test builds only: forces collisions to exercise the collision chains. */
    return (uint64_t)strlen(name) % 3;
#else
    return afmt_checksum(name, strlen(name));
#endif
}

/* ---- by_name: the live arrays of one hash are chained under k = 0, 1, 2, ... with
 * no gaps, so a lookup stops at the first absent k. ---- */

static uint64_t *name_slot(const afmt_index *x, const char *name) {
    uint64_t h = name_hash(name);
    for (uint64_t k = 0;; k++) {
        uint64_t *v = afmt_hmap_get(&x->by_name, h, k);
        if (!v || strcmp(x->arrays[*v].d.name, name) == 0) return v;
    }
}

static int name_add(afmt_index *x, const char *name, uint64_t pos) {
    uint64_t h = name_hash(name), k = 0;
    while (afmt_hmap_get(&x->by_name, h, k)) k++;
    return afmt_hmap_put(&x->by_name, h, k, pos);
}

static void name_remove(afmt_index *x, const char *name, uint64_t pos) {
    uint64_t h = name_hash(name), k = 0, at = UINT64_MAX;
    uint64_t *v;
    for (; (v = afmt_hmap_get(&x->by_name, h, k)) != NULL; k++)
        if (*v == pos) at = k;
    if (at == UINT64_MAX) return;
    /* Move the last of the chain into the hole to keep the chain gapless. */
    if (at != k - 1) *afmt_hmap_get(&x->by_name, h, at) = *afmt_hmap_get(&x->by_name, h, k - 1);
    afmt_hmap_del(&x->by_name, h, k - 1);
}

/* ---- attributes ---- */

static afmt_attr_rec *attr_find(afmt_attr_rec *a, uint64_t n, const char *key) {
    for (uint64_t i = 0; i < n; i++)
        if (strcmp(a[i].key, key) == 0) return &a[i];
    return NULL;
}

static void attrs_free(afmt_attr_rec *a, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) free(a[i].value);
    free(a);
}

/* Value bytes of an attribute; 0 on a bad dtype or an overflow. */
static int attr_bytes(afmt_dtype t, uint64_t n, size_t *out) {
    size_t es = afmt_dtype_size(t);
    uint64_t b;
    if (!es || !afmt_mul_ok(n, es, &b) || b > SIZE_MAX) return 0;
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
static int attr_put(afmt_attr_rec **a, uint64_t *n, uint64_t *cap, uint64_t array_id,
                    const char *key, afmt_dtype t, uint64_t cnt, uint8_t *v) {
    afmt_attr_rec *r = attr_find(*a, *n, key);
    if (!r) {
        if (GROW(*a, *cap, *n + 1) != AFMT_OK) {
            free(v);
            return AFMT_ENOMEM;
        }
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
static int attr_set(afmt_attr_rec **a, uint64_t *n, uint64_t *cap, uint64_t array_id,
                    const char *key, afmt_dtype t, uint64_t cnt, const void *value) {
    size_t bytes;
    if (!attr_bytes(t, cnt, &bytes)) return AFMT_EINVAL;
    uint8_t *v = dup_bytes(value, bytes);
    if (!v) return AFMT_ENOMEM;
    return attr_put(a, n, cap, array_id, key, t, cnt, v);
}

/* ---- init / free ---- */

void afmt_index_init(afmt_index *x) {
    memset(x, 0, sizeof *x);
    afmt_hmap_init(&x->by_id);
    afmt_hmap_init(&x->by_name);
    afmt_hmap_init(&x->chunks);
    x->next_array_id = 1;
}

void afmt_index_free(afmt_index *x) {
    if (!x) return;
    for (uint64_t i = 0; i < x->n_arrays; i++) attrs_free(x->arrays[i].attrs, x->arrays[i].n_attrs);
    free(x->arrays);
    afmt_hmap_free(&x->by_id);
    afmt_hmap_free(&x->by_name);
    free(x->blocks);
    free(x->locs);
    afmt_hmap_free(&x->chunks);
    attrs_free(x->file_attrs, x->n_file_attrs);
    for (uint64_t i = 0; i < x->n_layers; i++) attrs_free(x->layers[i].attrs, x->layers[i].n_attrs);
    free(x->layers);
    free(x->live);
    afmt_index_init(x);
}

/* ---- arrays ---- */

/* Static checks of a DEFINE record; fills why and returns 0 when it is invalid. */
static int rec_ok(const afmt_array_rec *r, afmt_grid *g, char *why, size_t whylen) {
    const char *w = NULL;
    if (r->kind != AFMT_REC_DEFINE)
        w = "not a DEFINE record";
    else if (r->id == 0 || r->id == UINT64_MAX)
        w = "reserved array id";
    else if (!memchr(r->name, 0, sizeof r->name) || !r->name[0])
        w = "bad name";
    else if (!afmt_dtype_valid((int)r->dtype))
        w = "bad dtype";
    else if (afmt_grid_init(g, r->ndim, r->shape, r->chunk) != AFMT_OK)
        w = "bad ndim, shape or chunk";
    if (!w) return 1;
    snprintf(why, whylen, "%s", w);
    return 0;
}

static void raise_next_id(afmt_index *x, uint64_t id) {
    if (id != UINT64_MAX && id + 1 > x->next_array_id) x->next_array_id = id + 1;
}

int afmt_index_define(afmt_index *x, const afmt_array_rec *r, char *errmsg) {
    afmt_grid g;
    char why[64];
    if (!r) return afmt_fail(errmsg, AFMT_EINVAL, "afmt_index_define: NULL record");
    if (!rec_ok(r, &g, why, sizeof why)) {
        /* The name may be unterminated here: print at most its buffer. */
        return afmt_fail(errmsg, AFMT_EINVAL, "array %llu (\"%.*s\"): %s", (ull)r->id,
                         AFMT_MAX_NAME, r->name, why);
    }
    uint64_t *pp = afmt_hmap_get(&x->by_id, r->id, 0);
    uint64_t *taken = name_slot(x, r->name);
    if (pp) {
        afmt_array *a = &x->arrays[*pp];
        raise_next_id(x, r->id);
        /* Ids are never reused and deletions are final, so a definition of a dead id is
         * a replay (of the committed layer of this session): nothing to do. */
        if (!a->live) return AFMT_OK;
        int same = a->d.dtype == r->dtype && a->d.ndim == r->ndim;
        for (int d = 0; same && d < r->ndim; d++)
            same = a->d.shape[d] == r->shape[d] && a->d.chunk[d] == r->chunk[d];
        if (!same) {
            /* The stored chunks would no longer fit the grid. */
            return afmt_fail(errmsg, AFMT_EINVAL,
                             "array %llu (\"%s\"): a redefinition changes its dtype or shape",
                             (ull)r->id, a->d.name);
        }
        if (strcmp(a->d.name, r->name) != 0) {
            if (taken)
                return afmt_fail(errmsg, AFMT_EEXIST,
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
        return afmt_fail(errmsg, AFMT_EEXIST, "array \"%s\" exists (id %llu)", r->name,
                         (ull)x->arrays[*taken].d.id);
    /* Reserve everything first so that the insertion below cannot fail half-way. */
    if (GROW(x->arrays, x->cap_arrays, x->n_arrays + 1) != AFMT_OK ||
        GROW(x->live, x->cap_live, x->n_live + 1) != AFMT_OK ||
        afmt_hmap_reserve(&x->by_id, 1) != AFMT_OK || afmt_hmap_reserve(&x->by_name, 1) != AFMT_OK)
        return AFMT_ENOMEM;
    uint64_t pos = x->n_arrays;
    afmt_array *a = &x->arrays[pos];
    memset(a, 0, sizeof *a);
    a->d = *r;
    a->grid = g;
    a->esize = afmt_dtype_size(r->dtype);
    a->live = 1;
    afmt_hmap_put(&x->by_id, r->id, 0, pos);
    name_add(x, r->name, pos);
    x->n_arrays++;
    /* New arrays take the highest position, so the live list stays sorted. */
    x->live[x->n_live++] = pos;
    raise_next_id(x, r->id);
    return AFMT_OK;
}

int afmt_index_reserve_array(afmt_index *x) {
    if (GROW(x->arrays, x->cap_arrays, x->n_arrays + 1) != AFMT_OK ||
        GROW(x->live, x->cap_live, x->n_live + 1) != AFMT_OK ||
        afmt_hmap_reserve(&x->by_id, 1) != AFMT_OK || afmt_hmap_reserve(&x->by_name, 1) != AFMT_OK)
        return AFMT_ENOMEM;
    return AFMT_OK;
}

/* Rebuilds locs without the holes that deleted arrays left, when they are the majority.
 * Skipped silently when memory is short: the holes are only wasted space. */
static void compact_locs(afmt_index *x) {
    uint64_t n = x->chunks.count;
    if (x->n_locs < 1024 || x->n_locs - n <= x->n_locs / 2) return;
    /* Keep the spare room: afmt_index_apply reserved it before deleting arrays. */
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
    const uint64_t id = a->d.id, nch = afmt_grid_nchunks(&a->grid);
    if (nch <= x->chunks.cap) {
        for (uint64_t c = 0; c < nch && x->chunks.count; c++) {
            uint64_t *v = afmt_hmap_get(&x->chunks, id, c);
            if (!v) continue;
            x->blocks[x->locs[*v].block].nlive--;
            afmt_hmap_del(&x->chunks, id, c);
        }
    } else {
        /* Sparse huge grid: scanning the map is cheaper. Deleting never moves entries,
         * so the scan may delete as it goes. */
        for (uint64_t i = 0; i < x->chunks.cap; i++) {
            afmt_hmap_slot *s = &x->chunks.slots[i];
            if (s->used != 1 || s->k1 != id) continue;
            x->blocks[x->locs[s->val].block].nlive--;
            afmt_hmap_del(&x->chunks, s->k1, s->k2);
        }
    }
    compact_locs(x);
}

int afmt_index_delete(afmt_index *x, uint64_t id) {
    uint64_t *pp = afmt_hmap_get(&x->by_id, id, 0);
    if (!pp) return AFMT_ENOTFOUND;
    uint64_t pos = *pp;
    afmt_array *a = &x->arrays[pos];
    if (!a->live) return AFMT_OK;
    drop_chunks(x, a);
    name_remove(x, a->d.name, pos);
    /* Binary search in the sorted live list, then close the gap. */
    uint64_t lo = 0, hi = x->n_live;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (x->live[mid] < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < x->n_live && x->live[lo] == pos) {
        memmove(&x->live[lo], &x->live[lo + 1], (size_t)(x->n_live - lo - 1) * sizeof *x->live);
        x->n_live--;
    }
    /* A dead array's attributes are unreachable: release them now. */
    attrs_free(a->attrs, a->n_attrs);
    a->attrs = NULL;
    a->n_attrs = a->cap_attrs = 0;
    a->live = 0;
    return AFMT_OK;
}

/* ---- attributes, public ---- */

static afmt_array *live_by_id(const afmt_index *x, uint64_t id) {
    afmt_array *a = afmt_index_by_id(x, id);
    return a && a->live ? a : NULL;
}

int afmt_index_set_attr(afmt_index *x, uint64_t array_id, const char *key, afmt_dtype t, uint64_t n,
                        const void *value_le) {
    size_t bytes;
    if (!key_ok(key) || !attr_bytes(t, n, &bytes) || (bytes && !value_le)) return AFMT_EINVAL;
    if (array_id == AFMT_ATTR_FILE)
        return attr_set(&x->file_attrs, &x->n_file_attrs, &x->cap_file_attrs, array_id, key, t, n,
                        value_le);
    if (array_id == AFMT_ATTR_LAYER) return AFMT_EINVAL; /* those belong to a layer */
    afmt_array *a = live_by_id(x, array_id);
    if (!a) return AFMT_ENOTFOUND;
    return attr_set(&a->attrs, &a->n_attrs, &a->cap_attrs, array_id, key, t, n, value_le);
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

int afmt_index_reserve_attr(afmt_index *x, uint64_t array_id, const char *key) {
    afmt_attr_rec **a;
    uint64_t *n, *cap;
    int rc = attr_list(x, array_id, &a, &n, &cap);
    if (rc != AFMT_OK || !key_ok(key)) return rc != AFMT_OK ? rc : AFMT_EINVAL;
    if (attr_find(*a, *n, key)) return AFMT_OK;
    return GROW(*a, *cap, *n + 1);
}

int afmt_index_put_attr(afmt_index *x, uint64_t array_id, const char *key, afmt_dtype t, uint64_t n,
                        uint8_t *value_le) {
    afmt_attr_rec **a;
    uint64_t *cnt, *cap;
    size_t bytes;
    int rc = attr_list(x, array_id, &a, &cnt, &cap);
    if (rc == AFMT_OK && (!key_ok(key) || !attr_bytes(t, n, &bytes))) rc = AFMT_EINVAL;
    if (rc != AFMT_OK) {
        free(value_le);
        return rc;
    }
    return attr_put(a, cnt, cap, array_id, key, t, n, value_le); /* frees it on failure */
}

const afmt_attr_rec *afmt_index_get_attr(const afmt_index *x, uint64_t array_id, const char *key) {
    if (!key) return NULL;
    if (array_id == AFMT_ATTR_FILE) return attr_find(x->file_attrs, x->n_file_attrs, key);
    afmt_array *a = live_by_id(x, array_id);
    return a ? attr_find(a->attrs, a->n_attrs, key) : NULL;
}

/* ---- lookups ---- */

afmt_array *afmt_index_find(const afmt_index *x, const char *name) {
    if (!name) return NULL;
    uint64_t *v = name_slot(x, name);
    return v ? &x->arrays[*v] : NULL;
}

afmt_array *afmt_index_by_id(const afmt_index *x, uint64_t id) {
    uint64_t *v = afmt_hmap_get(&x->by_id, id, 0);
    return v ? &x->arrays[*v] : NULL;
}

uint64_t afmt_index_live_count(const afmt_index *x) {
    return x->n_live;
}

afmt_array *afmt_index_live_at(const afmt_index *x, uint64_t i) {
    return i < x->n_live ? &x->arrays[x->live[i]] : NULL;
}

const afmt_chunk_loc *afmt_index_chunk(const afmt_index *x, uint64_t array_id,
                                       uint64_t chunk_index) {
    uint64_t *v = afmt_hmap_get(&x->chunks, array_id, chunk_index);
    return v ? &x->locs[*v] : NULL;
}

/* ---- applying a layer ---- */

/* Checks a chunk record against the index as it stands after the layer's array records. */
static int check_chunk(const afmt_index *x, const afmt_layer *L, const afmt_chunk_rec *c,
                       char *errmsg) {
    const ull lid = (ull)L->layer_id, ci = (ull)c->chunk_index;
    afmt_array *a = afmt_index_by_id(x, c->array_id);
    if (!a)
        return afmt_fail(errmsg, AFMT_ECORRUPT, "layer %llu: chunk %llu of unknown array id %llu",
                         lid, ci, (ull)c->array_id);
    const ull aid = (ull)a->d.id;
    const char *nm = a->d.name;
    if (!a->live)
        return afmt_fail(errmsg, AFMT_ECORRUPT,
                         "layer %llu: chunk %llu of deleted array %llu (\"%s\")", lid, ci, aid, nm);
    uint64_t nch = afmt_grid_nchunks(&a->grid);
    if (c->chunk_index >= nch)
        return afmt_fail(errmsg, AFMT_ECORRUPT,
                         "layer %llu: array %llu (\"%s\"): chunk index %llu out of the grid "
                         "(%llu chunks)",
                         lid, aid, nm, ci, (ull)nch);
    uint64_t cc[AFMT_MAX_NDIM], want;
    afmt_grid_chunk_coord(&a->grid, c->chunk_index, cc);
    uint64_t elems = afmt_grid_chunk_box(&a->grid, cc, NULL, NULL);
    if (!afmt_mul_ok(elems, a->esize, &want) || c->size != want)
        return afmt_fail(errmsg, AFMT_ECORRUPT,
                         "layer %llu: array %llu (\"%s\"): chunk %llu has %llu bytes, its "
                         "extent of %llu elements needs %llu",
                         lid, aid, nm, ci, (ull)c->size, (ull)elems, (ull)(elems * a->esize));
    if (c->block >= L->n_blocks)
        return afmt_fail(errmsg, AFMT_ECORRUPT,
                         "layer %llu: array %llu (\"%s\"): chunk %llu is in block %llu of %llu",
                         lid, aid, nm, ci, (ull)c->block, (ull)L->n_blocks);
    uint64_t end;
    if (!afmt_add_ok(c->offset, c->size, &end) || end > L->blocks[c->block].raw_size)
        return afmt_fail(errmsg, AFMT_ECORRUPT,
                         "layer %llu: array %llu (\"%s\"): chunk %llu at offset %llu size %llu "
                         "exceeds block %llu (%llu raw bytes)",
                         lid, aid, nm, ci, (ull)c->offset, (ull)c->size, (ull)c->block,
                         (ull)L->blocks[c->block].raw_size);
    return AFMT_OK;
}

static int check_attr(const afmt_index *x, const afmt_layer *L, const afmt_attr_rec *t,
                      char *errmsg) {
    const ull lid = (ull)L->layer_id;
    if (t->array_id == AFMT_ATTR_FILE || t->array_id == AFMT_ATTR_LAYER) return AFMT_OK;
    afmt_array *a = afmt_index_by_id(x, t->array_id);
    if (!a)
        return afmt_fail(errmsg, AFMT_ECORRUPT,
                         "layer %llu: attribute \"%s\" of unknown array id %llu", lid, t->key,
                         (ull)t->array_id);
    if (!a->live)
        return afmt_fail(errmsg, AFMT_ECORRUPT,
                         "layer %llu: attribute \"%s\" of deleted array %llu (\"%s\")", lid, t->key,
                         (ull)t->array_id, a->d.name);
    return AFMT_OK;
}

int afmt_index_apply(afmt_index *x, const afmt_layer *L, uint64_t footer_offset,
                     uint64_t footer_length, char *errmsg) {
    const ull lid = (ull)L->layer_id;
    char why[AFMT_ERRMSG_MAX];
    afmt_grid g;

    /* 1. What can be checked before anything changes: the array records on their own. */
    uint64_t ndef = 0;
    for (uint64_t i = 0; i < L->n_arrays; i++) {
        const afmt_array_rec *r = &L->arrays[i];
        if (r->kind == AFMT_REC_DELETE) continue;
        if (!rec_ok(r, &g, why, 64))
            return afmt_fail(errmsg, AFMT_ECORRUPT, "layer %llu: array record %llu (id %llu): %s",
                             lid, (ull)i, (ull)r->id, why);
        ndef++;
    }
    for (uint64_t i = 0; i < L->n_attrs; i++) {
        const afmt_attr_rec *t = &L->attrs[i];
        size_t bytes;
        if (!memchr(t->key, 0, sizeof t->key) || !t->key[0] ||
            !attr_bytes(t->dtype, t->n, &bytes) || (bytes && !t->value))
            return afmt_fail(errmsg, AFMT_ECORRUPT,
                             "layer %llu: malformed attribute of array id %llu", lid,
                             (ull)t->array_id);
    }

    /* 2. Reserve all memory the rest needs, so that no step fails half-way for memory
     * (except attribute copies, each of which is all or nothing). */
    if (GROW(x->arrays, x->cap_arrays, x->n_arrays + ndef) != AFMT_OK ||
        GROW(x->live, x->cap_live, x->n_live + ndef) != AFMT_OK ||
        afmt_hmap_reserve(&x->by_id, ndef) != AFMT_OK ||
        afmt_hmap_reserve(&x->by_name, ndef) != AFMT_OK ||
        GROW(x->blocks, x->cap_blocks, x->n_blocks + L->n_blocks) != AFMT_OK ||
        GROW(x->locs, x->cap_locs, x->n_locs + L->n_chunks) != AFMT_OK ||
        afmt_hmap_reserve(&x->chunks, L->n_chunks) != AFMT_OK ||
        GROW(x->layers, x->cap_layers, x->n_layers + 1) != AFMT_OK)
        return afmt_fail(errmsg, AFMT_ENOMEM, "layer %llu: out of memory for the index", lid);
    afmt_layer_info li;
    memset(&li, 0, sizeof li);
    li.layer_id = L->layer_id;
    li.time_ns = L->time_ns;
    li.footer_offset = footer_offset;
    li.footer_length = footer_length;
    li.data_offset = L->data_offset;
    li.nranks = L->nranks;
    li.flags = L->flags;
    li.n_blocks = L->n_blocks;
    li.n_chunks = L->n_chunks;
    for (uint64_t i = 0; i < L->n_blocks; i++) {
        li.stored_bytes += L->blocks[i].stored_size;
        li.raw_bytes += L->blocks[i].raw_size;
    }
    uint64_t nla = 0;
    for (uint64_t i = 0; i < L->n_attrs; i++)
        nla += (uint64_t)(L->attrs[i].array_id == AFMT_ATTR_LAYER);
    if (nla) {
        li.attrs = calloc((size_t)nla, sizeof *li.attrs);
        if (!li.attrs)
            return afmt_fail(errmsg, AFMT_ENOMEM, "layer %llu: out of memory for the index", lid);
        for (uint64_t i = 0; i < L->n_attrs; i++) {
            const afmt_attr_rec *t = &L->attrs[i];
            if (t->array_id != AFMT_ATTR_LAYER) continue;
            size_t bytes = 0;
            (void)attr_bytes(t->dtype, t->n, &bytes); /* checked in step 1 */
            afmt_attr_rec *o = &li.attrs[li.n_attrs];
            *o = *t;
            o->value = dup_bytes(t->value, bytes);
            if (!o->value) {
                attrs_free(li.attrs, li.n_attrs);
                return afmt_fail(errmsg, AFMT_ENOMEM, "layer %llu: out of memory for the index",
                                 lid);
            }
            li.n_attrs++;
        }
    }

    /* 3. Array records in order (a name may be deleted and defined anew in one layer). */
    int rc = AFMT_OK;
    for (uint64_t i = 0; i < L->n_arrays && rc == AFMT_OK; i++) {
        const afmt_array_rec *r = &L->arrays[i];
        if (r->kind == AFMT_REC_DELETE) {
            /* A tombstone of an id this index never saw (defined and deleted before one
             * commit) is harmless. */
            afmt_index_delete(x, r->id);
            raise_next_id(x, r->id);
            continue;
        }
        rc = afmt_index_define(x, r, why);
        if (rc == AFMT_ENOMEM)
            afmt_fail(errmsg, rc, "layer %llu: out of memory for the index", lid);
        else if (rc != AFMT_OK)
            rc = afmt_fail(errmsg, AFMT_ECORRUPT, "layer %llu: %s", lid, why);
    }

    /* 4. Check every attribute and chunk before the first of them is applied. */
    for (uint64_t i = 0; i < L->n_attrs && rc == AFMT_OK; i++)
        rc = check_attr(x, L, &L->attrs[i], errmsg);
    for (uint64_t i = 0; i < L->n_chunks && rc == AFMT_OK; i++)
        rc = check_chunk(x, L, &L->chunks[i], errmsg);
    if (rc != AFMT_OK) {
        attrs_free(li.attrs, li.n_attrs);
        return rc;
    }

    /* 5. Apply; the memory is reserved, so nothing below fails before the attributes. */
    const uint64_t base = x->n_blocks;
    for (uint64_t i = 0; i < L->n_blocks; i++) {
        afmt_iblock *b = &x->blocks[x->n_blocks++];
        b->b = L->blocks[i];
        b->layer_id = L->layer_id;
        b->nrefs = b->nlive = 0;
    }
    for (uint64_t i = 0; i < L->n_chunks; i++) {
        const afmt_chunk_rec *c = &L->chunks[i];
        afmt_chunk_loc loc = {base + c->block, c->offset, c->size};
        uint64_t *v = afmt_hmap_get(&x->chunks, c->array_id, c->chunk_index);
        if (v) {
            /* The newer version hides the older one, which stays referenced but dead. */
            x->blocks[x->locs[*v].block].nlive--;
            x->locs[*v] = loc;
        } else {
            x->locs[x->n_locs] = loc;
            afmt_hmap_put(&x->chunks, c->array_id, c->chunk_index, x->n_locs++);
        }
        x->blocks[loc.block].nrefs++;
        x->blocks[loc.block].nlive++;
    }
    x->layers[x->n_layers++] = li;
    if (L->next_array_id > x->next_array_id) x->next_array_id = L->next_array_id;
    for (uint64_t i = 0; i < L->n_attrs; i++) {
        const afmt_attr_rec *t = &L->attrs[i];
        if (t->array_id == AFMT_ATTR_LAYER) continue;
        rc = afmt_index_set_attr(x, t->array_id, t->key, t->dtype, t->n, t->value);
        if (rc != AFMT_OK)
            return afmt_fail(errmsg, rc, "layer %llu: attribute \"%s\": %s", lid, t->key,
                             afmt_strerror(rc));
    }
    return AFMT_OK;
}
