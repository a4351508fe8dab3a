/* lazy.h - the lazily loaded index (docs/format.md 9.3): a version-2 layer is applied from
 * its footer alone (arrays, attributes, the root table); a chunk lookup reads only the
 * index segments whose key range holds the chunk, through a bounded cache of decoded
 * segments. Layers applied with their chunks (v1, and v2 layers whose segments were
 * attached) stay in the index's chunk map, below the lazy ones. */
#ifndef AFMT_LAZY_H
#define AFMT_LAZY_H

#include <stdint.h>

#include "common/hmap.h"
#include "index/index.h"

/* The cache's default bound (afmt_opts_set_index_cache). */
#define AFMT_INDEX_CACHE_DEFAULT ((uint64_t)64 << 20)

/* Where a chunk is: *found 0 if no layer has it (it reads as the fill value). Searches the
 * lazy layers newest first (reading and checking the segments it needs from x->st: the
 * checks of format.md 9.1 and the merge checks of the chunks of live arrays), then the
 * chunk map. INDEPENDENT. AFMT_OK, AFMT_ECORRUPT (errmsg names the layer and the
 * segment), AFMT_EIO, AFMT_ENOMEM. */
int afmt__index_lookup(afmt_index *x, uint64_t array_id, uint64_t chunk_index, afmt_chunk_loc *out,
                       int *found, char *errmsg);

/* Reads every segment of the lazy layers and applies their chunks to the chunk map, so
 * that the index is whole (compaction, the tools, tests that look inside). On failure
 * the index is as before. */
int afmt__index_load_all(afmt_index *x, char *errmsg);

/* Frees the layer's lazy state (root table copies) and the cache. */
void afmt__lazy_layer_free(afmt_layer_info *li);
void afmt__segcache_free(afmt_index *x);

/* Makes li a lazy layer of L's root table (copies it). AFMT_ENOMEM. */
int afmt__lazy_layer_init(afmt_layer_info *li, const afmt_layer *L);

/* Bytes the cache holds now and how many segments it has read from storage since the
 * index was built (for tests and benchmarks): lookups' reads and afmt__segment_fetch's;
 * segments inserted from another rank's read do not count. */
void afmt__segcache_stats(const afmt_index *x, uint64_t *bytes, uint64_t *entries, uint64_t *reads);

/* ---- for the collective read (afmt_read_all): the ranks of a node bring the segments
 * their selections need into their caches, each segment read once per node. ---- */

/* A segment of a lazy layer: its layer's position in x->layers, its root table entry. */
typedef struct {
    uint64_t layer, seg;
} afmt_seg_id;

/* A set of segments in the order they were added (v[0..n)). */
typedef struct {
    afmt_seg_id *v;
    uint64_t n, cap;
    afmt_hmap seen; /* (layer, seg) -> position in v */
} afmt_seg_set;
void afmt__seg_set_init(afmt_seg_set *t);
void afmt__seg_set_free(afmt_seg_set *t);
void afmt__seg_set_clear(afmt_seg_set *t); /* keeps the memory */
int afmt__seg_set_has(const afmt_seg_set *t, uint64_t layer, uint64_t seg);
/* Adds (layer, seg) if it is not there. AFMT_ENOMEM. */
int afmt__seg_set_add(afmt_seg_set *t, uint64_t layer, uint64_t seg);

/* The dry lookup: afmt__index_lookup's search, reading nothing. Where the search reaches a
 * lazy layer with segments whose key range holds the chunk but that are not in the cache,
 * it stops and adds them to need (all of that layer's, except those in skip, which may be
 * NULL): the lookup cannot tell without them whether the chunk is in that layer or falls
 * through to an older one. A chunk found in a cached segment, or in no lazy layer, adds
 * nothing. Cached segments used count as uses (LRU). AFMT_OK or AFMT_ENOMEM. */
int afmt__index_lookup_dry(afmt_index *x, uint64_t array_id, uint64_t chunk_index,
                           const afmt_seg_set *skip, afmt_seg_set *need);

/* Bytes of segment s of lazy layer k (its root record). */
uint64_t afmt__segment_length(const afmt_index *x, uint64_t k, uint64_t s);
/* 1 if the key range of segment s of lazy layer k meets chunks [lo, hi] of the array. */
int afmt__segment_overlaps(const afmt_index *x, uint64_t k, uint64_t s, uint64_t array_id,
                           uint64_t lo, uint64_t hi);
/* Reads the stored bytes of segment s of lazy layer k from x->st into *out (malloc'd,
 * afmt__segment_length bytes), unchecked; counts as one read of the cache's statistics.
 * AFMT_EIO, AFMT_ENOMEM (errmsg names the layer and segment). */
int afmt__segment_fetch(afmt_index *x, uint64_t k, uint64_t s, uint8_t **out, char *errmsg);
/* Decodes and checks p, the stored bytes of segment s of lazy layer k (read by
 * afmt__segment_fetch here or on another rank), as a lookup checks the segments it reads,
 * and puts it into the cache (nothing if it is there). AFMT_ECORRUPT (errmsg names the
 * layer and the segment), AFMT_ENOMEM. */
int afmt__segcache_insert(afmt_index *x, uint64_t k, uint64_t s, const uint8_t *p, char *errmsg);

#endif
