/* hmap.h - an open-addressing hash map from a (u64, u64) key to a u64 value; used for
 * the chunk index (array id, chunk index) and the staging table. */
#ifndef AFMT_HMAP_H
#define AFMT_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t k1, k2, val;
    uint8_t used; /* 0 empty, 1 used, 2 deleted */
} afmt_hmap_slot;

typedef struct {
    afmt_hmap_slot *slots;
    uint64_t cap; /* power of two or 0 */
    uint64_t count, tombs;
} afmt_hmap;

void afmt__hmap_init(afmt_hmap *m);
void afmt__hmap_free(afmt_hmap *m);
void afmt__hmap_clear(afmt_hmap *m); /* keeps the memory */
/* Inserts or replaces. AFMT_OK or AFMT_ENOMEM. */
int afmt__hmap_put(afmt_hmap *m, uint64_t k1, uint64_t k2, uint64_t val);
/* Returns a pointer to the value, NULL if absent (valid until the next put/del). */
uint64_t *afmt__hmap_get(const afmt_hmap *m, uint64_t k1, uint64_t k2);
/* Removes; 1 if it was there. */
int afmt__hmap_del(afmt_hmap *m, uint64_t k1, uint64_t k2);
/* Makes room so that the next n insertions of new keys cannot fail (nor rehash).
 * AFMT_OK or AFMT_ENOMEM. Replacing an existing key's value never allocates. */
int afmt__hmap_reserve(afmt_hmap *m, uint64_t n);
/* A 64-bit hash of n bytes (names, keys) keyed with the same per-process secret: crafted
 * strings cannot be chosen to share it. Never stored in a file. */
uint64_t afmt__hmap_hash_bytes(const void *p, size_t n);
/* Slots a look-up of the key inspects (1 if it sits in its home slot; a miss counts up to
 * the empty slot that ends its run). For tests of the worst case. */
uint64_t afmt__hmap_probe_len(const afmt_hmap *m, uint64_t k1, uint64_t k2);
/* Iteration: for (uint64_t i = 0; i < m->cap; i++) if (m->slots[i].used == 1) ...
 * The order depends on a per-process secret: never let it reach a file or another rank. */

#endif
