/* index.h - the merged in-memory index of a file: arrays, attributes, blocks and the
 * chunk map, built by applying layers oldest to newest (newest wins). Every rank holds
 * the same index. Metadata changes of the running session (define, delete, set_attr)
 * are applied at once too; the committed layer is then applied with
 * afmt__index_apply_own, which knows that its array records are in already. */
#ifndef AFMT_INDEX_H
#define AFMT_INDEX_H

#include <stdint.h>

#include "common/hmap.h"
#include "format/footer.h"
#include "format/grid.h"
#include "storage/storage.h"

typedef struct {
    afmt_array_rec d; /* the descriptor (d.kind == AFMT_REC_DEFINE) */
    afmt_grid grid;
    size_t esize; /* element size */
    int live;     /* 0 once deleted */
    afmt_attr_rec *attrs;
    uint64_t n_attrs, cap_attrs;
} afmt_array;

typedef struct {
    afmt_block_rec b;
    uint64_t layer_id;
    uint64_t nrefs; /* chunk records of all applied layers that point into this block */
    uint64_t nlive; /* of those, the ones that are the current version of a live chunk */
} afmt_iblock;

typedef struct {
    uint64_t block;  /* index into afmt_index.blocks */
    uint64_t offset; /* inside the raw block */
    uint64_t size;
} afmt_chunk_loc;

typedef struct {
    uint64_t layer_id, time_ns, footer_offset, footer_length, data_offset;
    uint32_t nranks, flags;
    uint32_t version; /* of its footer: 1, or 2 (index segments) */
    uint64_t n_blocks, n_chunks, stored_bytes, raw_bytes;
    uint64_t n_segs, seg_bytes; /* v2: its index segments and their bytes */
    /* A lazy layer (v2, applied without its segments: lazy.h) keeps its root table, the
     * prefix maximum of the segments' last keys (2 u64 per segment, for the lookup), the
     * first block number of each segment once read (UINT64_MAX before), and what a
     * segment's checks need of the footer. */
    int lazy;
    afmt_seg_rec *segs;
    uint64_t *maxlast, *seg_base;
    uint64_t next_array_id;
    afmt_attr_rec *attrs; /* AFMT_ATTR_LAYER attributes (provenance), owned */
    uint64_t n_attrs;
} afmt_layer_info;

typedef struct {
    afmt_array *arrays; /* in id (= definition) order, deleted ones too */
    uint64_t n_arrays, cap_arrays;
    afmt_hmap by_id;   /* (id, 0) -> position in arrays */
    afmt_hmap by_name; /* (hash of name, k) -> position of the live array of that name;
                        * k is 0, or 1, 2, ... for further live names of the same hash */
    afmt_iblock *blocks;
    uint64_t n_blocks, cap_blocks;
    afmt_chunk_loc *locs; /* chunk locations; the map points into this */
    uint64_t n_locs, cap_locs;
    afmt_hmap chunks; /* (array id, chunk index) -> position in locs */
    afmt_attr_rec *file_attrs;
    uint64_t n_file_attrs, cap_file_attrs;
    afmt_hmap attr_map;      /* (owner id, hash of key) -> position of the owner's first attribute
                              * with a key of that hash (a look-up never scans a whole list) */
    afmt_layer_info *layers; /* oldest first */
    uint64_t n_layers, cap_layers;
    uint64_t next_array_id; /* >= 1 */
    uint64_t *live;         /* positions of the live arrays, ascending (definition order) */
    uint64_t n_live, cap_live;
    /* The lazily loaded index (lazy.h): the layers from first_lazy on are lazy; the
     * storage their segments are read from; the cache of read segments. */
    uint64_t first_lazy;
    afmt_storage *st;
    struct afmt_segcache *segcache;
    uint64_t segcache_limit; /* bytes; 0 = the default */
} afmt_index;

void afmt__index_init(afmt_index *x);
void afmt__index_free(afmt_index *x);

/* How a layer's array records relate to the index it is checked against or applied to. */
enum {
    AFMT_CHECK_LOAD = 0, /* the index is the merged view of the older layers (opening) */
    AFMT_CHECK_OWN = 1   /* the index is the writer's own, which applied the layer's array
                          * records already when they were called (define, delete) */
};
/* Where afmt__index_check_layer found a problem: a table and a record of it. */
enum { AFMT_AT_NONE, AFMT_AT_HEADER, AFMT_AT_ARRAY, AFMT_AT_CHUNK, AFMT_AT_ATTR };
typedef struct {
    int table; /* AFMT_AT_* */
    uint64_t rec;
} afmt_check_at;

/* Checks, without changing x, that the decoded (or built) layer L may be applied to x
 * under the merge rules of format.md 11.2 (M1-M10 of section 16): next_array_id, every
 * array record (mode LOAD: as a transition of the view; mode OWN: as already reflected
 * by x), every chunk and attribute against the view after the array records, and each
 * chunk against its block. AFMT_OK, AFMT_ECORRUPT (message in errmsg, the record in *at
 * if at is not NULL) or AFMT_ENOMEM. */
int afmt__index_check_layer(const afmt_index *x, const afmt_layer *L, int mode, afmt_check_at *at,
                            char *errmsg);
/* The commit's check (rank 0, before the footer is written): L as built from every rank's
 * records, against the writer's index x (OWN), or, for a BASE layer, against an empty
 * index (LOAD). On failure *rank is the rank that sent the record at fault (the writer of
 * the chunk's block; 0 for array and attribute records). */
int afmt__index_check_commit(const afmt_index *x, const afmt_layer *L, uint32_t *rank,
                             char *errmsg);

/* Applies a decoded layer found at footer_offset/footer_length when a file is loaded:
 * afmt__index_check_layer (LOAD) first, so that a damaged layer (AFMT_ECORRUPT, message in
 * errmsg) changes nothing; then its array records, attributes, blocks (appended to
 * blocks) and chunks (replacing older locations). AFMT_ENOMEM. */
int afmt__index_apply(afmt_index *x, const afmt_layer *L, uint64_t footer_offset,
                      uint64_t footer_length, char *errmsg);
/* The same for the layer a writer just committed from this index (mode OWN): its array
 * records are in the index already; its blocks, chunks and attributes are added. */
int afmt__index_apply_own(afmt_index *x, const afmt_layer *L, uint64_t footer_offset,
                          uint64_t footer_length, char *errmsg);

/* Defines (or, for a live id, re-sets name, dimension names and fill of) an array from
 * its record; the name of a different live array must not be taken (AFMT_EEXIST); a
 * deleted id, or a redefinition that changes dtype, ndim, flags, shape or chunk, is
 * AFMT_EINVAL. Raises next_array_id. */
int afmt__index_define(afmt_index *x, const afmt_array_rec *r, char *errmsg);
/* Marks array id deleted and drops its chunk locations (no-op if already dead). */
int afmt__index_delete(afmt_index *x, uint64_t id);
/* afmt__index_delete without dropping the chunk locations (the caller drops them). */
int afmt__index_forget(afmt_index *x, uint64_t id);
/* Sets (replaces) an attribute; array_id AFMT_ATTR_FILE or a live array's id. The value
 * is copied. */
int afmt__index_set_attr(afmt_index *x, uint64_t array_id, const char *key, afmt_dtype t,
                         uint64_t n, const void *value_le);
/* Room reserved ahead, so that the change after an agreement between ranks cannot fail
 * (array.c): one more array for afmt__index_define of a new id; the list entry of key for
 * afmt__index_put_attr (array_id AFMT_ATTR_FILE or a live array; AFMT_ENOTFOUND else). */
int afmt__index_reserve_array(afmt_index *x);
int afmt__index_reserve_attr(afmt_index *x, uint64_t array_id, const char *key);
/* Sets (replaces) an attribute to value_le, a malloc'd buffer the index takes over (freed
 * on failure). */
int afmt__index_put_attr(afmt_index *x, uint64_t array_id, const char *key, afmt_dtype t,
                         uint64_t n, uint8_t *value_le);
/* The attribute, or NULL. */
const afmt_attr_rec *afmt__index_get_attr(const afmt_index *x, uint64_t array_id, const char *key);

/* The live array of that name, or NULL. */
afmt_array *afmt__index_find(const afmt_index *x, const char *name);
/* The array of that id (live or not), or NULL. */
afmt_array *afmt__index_by_id(const afmt_index *x, uint64_t id);
/* Live arrays in definition order. */
uint64_t afmt__index_live_count(const afmt_index *x);
afmt_array *afmt__index_live_at(const afmt_index *x, uint64_t i);

/* The committed location of a chunk in the layers applied with their chunks (v1, and v2
 * layers whose segments were attached or loaded), or NULL if none has it. lazy.h's
 * afmt__index_lookup searches the lazy layers too: readers use that. */
const afmt_chunk_loc *afmt__index_chunk(const afmt_index *x, uint64_t array_id,
                                        uint64_t chunk_index);
/* Applies the chunk records of a lazy layer's segment: newest wins against the map,
 * except that the lazy layers are applied oldest first after every eager one
 * (afmt__index_load_all). chunks' block numbers are indices into x->blocks already;
 * chunks of arrays that are not live are skipped (deleted by a newer layer). Memory must
 * be reserved. */
void afmt__index_apply_loaded(afmt_index *x, const afmt_chunk_rec *chunks, uint64_t n);
/* Room for n more chunk locations (AFMT_ENOMEM). */
int afmt__index_reserve_chunks(afmt_index *x, uint64_t n);

/* Bytes the index holds in memory (capacities of its arrays, tables and hash maps,
 * attribute values, root tables of lazy layers, cached segments; not malloc overhead).
 * For benchmarks and tests. */
uint64_t afmt__index_memory(const afmt_index *x);

#endif
