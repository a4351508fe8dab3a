/* index.h - the merged in-memory index of a file: arrays, attributes, blocks and the
 * chunk map, built by applying layers oldest to newest (newest wins). Every rank holds
 * the same index. Metadata changes of the running session (define, delete, set_attr)
 * are applied at once too; applying them again from the committed layer is idempotent. */
#ifndef AFMT_INDEX_H
#define AFMT_INDEX_H

#include <stdint.h>

#include "footer.h"
#include "grid.h"
#include "hmap.h"

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
    uint64_t n_blocks, n_chunks, stored_bytes, raw_bytes;
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
    afmt_layer_info *layers; /* oldest first */
    uint64_t n_layers, cap_layers;
    uint64_t next_array_id; /* >= 1 */
    uint64_t *live;         /* positions of the live arrays, ascending (definition order) */
    uint64_t n_live, cap_live;
} afmt_index;

void afmt_index_init(afmt_index *x);
void afmt_index_free(afmt_index *x);

/* Applies a decoded layer found at footer_offset/footer_length: its array records,
 * attributes, blocks (appended to blocks) and chunks (replacing older locations). Checks
 * what the footer decoder cannot: chunks of unknown or deleted arrays, chunk indices out
 * of the grid, chunk sizes that do not match the chunk's extent, attributes of unknown
 * arrays: AFMT_ECORRUPT with a message in errmsg. AFMT_ENOMEM. */
int afmt_index_apply(afmt_index *x, const afmt_layer *L, uint64_t footer_offset,
                     uint64_t footer_length, char *errmsg);

/* Defines (or, for an id already present, re-sets) an array from its record; the name
 * of a different live array must not be taken (AFMT_EEXIST). Raises next_array_id. */
int afmt_index_define(afmt_index *x, const afmt_array_rec *r, char *errmsg);
/* Marks array id deleted and drops its chunk locations (no-op if already dead). */
int afmt_index_delete(afmt_index *x, uint64_t id);
/* Sets (replaces) an attribute; array_id AFMT_ATTR_FILE or a live array's id. The value
 * is copied. */
int afmt_index_set_attr(afmt_index *x, uint64_t array_id, const char *key, afmt_dtype t, uint64_t n,
                        const void *value_le);
/* Room reserved ahead, so that the change after an agreement between ranks cannot fail
 * (array.c): one more array for afmt_index_define of a new id; the list entry of key for
 * afmt_index_put_attr (array_id AFMT_ATTR_FILE or a live array; AFMT_ENOTFOUND else). */
int afmt_index_reserve_array(afmt_index *x);
int afmt_index_reserve_attr(afmt_index *x, uint64_t array_id, const char *key);
/* Sets (replaces) an attribute to value_le, a malloc'd buffer the index takes over (freed
 * on failure). */
int afmt_index_put_attr(afmt_index *x, uint64_t array_id, const char *key, afmt_dtype t, uint64_t n,
                        uint8_t *value_le);
/* The attribute, or NULL. */
const afmt_attr_rec *afmt_index_get_attr(const afmt_index *x, uint64_t array_id, const char *key);

/* The live array of that name, or NULL. */
afmt_array *afmt_index_find(const afmt_index *x, const char *name);
/* The array of that id (live or not), or NULL. */
afmt_array *afmt_index_by_id(const afmt_index *x, uint64_t id);
/* Live arrays in definition order. */
uint64_t afmt_index_live_count(const afmt_index *x);
afmt_array *afmt_index_live_at(const afmt_index *x, uint64_t i);

/* The committed location of a chunk, or NULL if it was never written (reads as fill). */
const afmt_chunk_loc *afmt_index_chunk(const afmt_index *x, uint64_t array_id,
                                       uint64_t chunk_index);

#endif
