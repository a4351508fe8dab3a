/* lazy.h - the lazily loaded index (docs/format.md 9.3): a version-2 layer is applied from
 * its footer alone (arrays, attributes, the root table); a chunk lookup reads only the
 * index segments whose key range holds the chunk, through a bounded cache of decoded
 * segments. Layers applied with their chunks (v1, and v2 layers whose segments were
 * attached) stay in the index's chunk map, below the lazy ones. */
#ifndef AFMT_LAZY_H
#define AFMT_LAZY_H

#include <stdint.h>

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

/* Bytes the cache holds now and how many segments it has read since the index was built
 * (for tests and benchmarks). */
void afmt__segcache_stats(const afmt_index *x, uint64_t *bytes, uint64_t *entries, uint64_t *reads);

#endif
