/* cache.h - a bounded LRU cache of decompressed blocks, keyed by a u64 block id and
 * bounded in bytes. */
#ifndef AFMT_CACHE_H
#define AFMT_CACHE_H

#include <stdint.h>

typedef struct afmt_cache afmt_cache;

/* capacity 0: nothing is kept. AFMT_OK or AFMT_ENOMEM. */
int afmt__cache_create(afmt_cache **out, uint64_t capacity);
void afmt__cache_free(afmt_cache *c);
/* The cached bytes of key, or NULL; a hit makes the entry the most recent. The pointer
 * stays valid until the next afmt__cache_put or afmt__cache_clear. */
const uint8_t *afmt__cache_get(afmt_cache *c, uint64_t key, uint64_t *len);
/* Takes ownership of data (malloc'd, len bytes): stores it as most recent and evicts the
 * least recent entries to fit (an older entry of the same key is freed first). Data
 * larger than the capacity is not kept: the cache holds it aside in a single "uncached"
 * slot and frees it at the next put or clear. Either way the return value is data
 * itself, valid until the next put or clear. Never fails (without memory for its
 * bookkeeping the data is held aside too). */
const uint8_t *afmt__cache_put(afmt_cache *c, uint64_t key, uint8_t *data, uint64_t len);
/* Frees every entry and spare. */
void afmt__cache_clear(afmt_cache *c);
/* Buffers dropped by eviction (or set aside) are kept, up to AFMT_CACHE_SPARES of them,
 * beyond the capacity: afmt__cache_spare hands one of exactly len bytes back to the
 * caller (who owns it, e.g. to fill and put), or NULL if none. */
#define AFMT_CACHE_SPARES 2
uint8_t *afmt__cache_spare(afmt_cache *c, uint64_t len);
uint64_t afmt__cache_bytes(const afmt_cache *c);

#endif
