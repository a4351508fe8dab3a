/* staging.h - the staging table: the chunks this rank wrote since the last commit, found
 * by (array id, chunk index). A wholly written chunk is an encoded payload in the rank's
 * allocator (the entry records where); a partly covered one is a dense buffer of the chunk
 * and the list of boxes this rank wrote into it. The table knows nothing of handles, of
 * the allocator or of the API calls: the write path fills it, the read path reads from it,
 * the commit (exchange.c, commit.c) turns it into chunk records. */
#ifndef AFMT_STAGING_H
#define AFMT_STAGING_H

#include <stdint.h>

#include "common/hmap.h"

/* One chunk this rank staged for the next commit. */
typedef struct {
    uint64_t array_id, chunk_index;
    int full; /* 1: encoded payload in the allocator; 0: partial, dense buffer + boxes */
    uint64_t block, offset, size;
    uint8_t *data;  /* partial: the chunk (its real extent, native layout, C order) */
    uint64_t *rect; /* partial: nrect boxes of 2*ndim u64 (start rel. to chunk, count) */
    uint32_t nrect, cap_rect;
    /* partial: the elements the boxes cover while no two of them overlap (mixed 0); once
     * they cover the chunk, the write path seals it as a whole chunk. mixed 1: boxes
     * overlap, or the chunk was whole before: left to the commit's merge. */
    uint64_t covered;
    int mixed;
} afmt_staged;

typedef struct {
    afmt_staged *items; /* in the order the chunks were first staged */
    uint64_t n, cap;
    afmt_hmap map; /* (array id, chunk index) -> position in items */
} afmt__staging;

void afmt__staging_init(afmt__staging *t);
/* Frees every entry and the table itself (the handle's end). */
void afmt__staging_free(afmt__staging *t);
/* Empties the table, keeping its memory for the next commit. */
void afmt__staging_clear(afmt__staging *t);
/* Drops the entries of one array (afmt_delete). Their allocator payloads stay as garbage. */
void afmt__staging_drop_array(afmt__staging *t, uint64_t array_id);

/* The entry of a chunk, or NULL. Valid until the table next changes. */
afmt_staged *afmt__staging_find(const afmt__staging *t, uint64_t array_id, uint64_t chunk_index);
/* The entry of a chunk, created empty (partial, no boxes) if absent; *fresh says which.
 * AFMT_ENOMEM leaves the table as it was. */
int afmt__staging_get(afmt__staging *t, uint64_t array_id, uint64_t chunk_index, afmt_staged **out,
                      int *fresh);
/* Removes the entry afmt__staging_get just created, for a call that then failed: a chunk
 * never written must not turn into an empty partial one. */
void afmt__staging_forget_new(afmt__staging *t, const afmt_staged *s);

/* Frees an entry's partial state (dense buffer, box list); the entry stays. */
void afmt__staged_release(afmt_staged *s);
/* Room for need boxes of nd dimensions in a box list (*rect, *cap boxes), possibly one
 * being built aside: AFMT_ENOMEM leaves it as it was. */
int afmt__boxes_reserve(uint64_t **rect, uint32_t *cap, uint32_t need, int nd);
/* Box r of a box list: start[nd] then count[nd], relative to the chunk. */
static inline uint64_t *afmt__box_at(uint64_t *rect, int nd, uint32_t r) {
    return rect + (size_t)2 * (size_t)nd * r;
}

#endif
