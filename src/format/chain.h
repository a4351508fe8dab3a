/* chain.h - walking the footer chain of a superblock slot (format.md 11.1): the one
 * implementation of the chain checks, shared by afmt_open (file.c) and afmt verify. */
#ifndef AFMT_CHAIN_H
#define AFMT_CHAIN_H

#include <stdint.h>

#include "format/footer.h"
#include "format/superblock.h"
#include "storage/storage.h"

/* One footer of the chain that passed every check, handed to the walk's callback. */
typedef struct {
    uint64_t k; /* position: 0 = the newest */
    uint64_t offset, length;
    const uint8_t *bytes; /* the footer's length bytes (valid during the callback) */
    afmt_layer *L;        /* decoded, v2 segments attached (blocks and chunks as in v1); the
                           * callback may take it over (copy, then zero *L) */
    const uint8_t *segs;  /* v2: the bytes of its segments in root table order (valid
                           * during the callback); NULL or seg_len 0 for v1 */
    uint64_t seg_len;
} afmt_chain_link;

/* Returns AFMT_OK to go on; any other code stops the walk with that code (the callback
 * writes its message into errmsg). */
typedef int (*afmt_chain_fn)(void *ctx, const afmt_chain_link *link, char *errmsg);

/* Where a walk stopped: the position and footer pointer it was at, and the id of the
 * footer visited before it (UINT64_MAX for the newest). */
typedef struct {
    uint64_t k, offset, length, newer_id;
    uint64_t walked; /* footers that passed their checks */
} afmt_chain_pos;

/* Walks the chain of slot s over st, newest first (with segments: also reading and checking
 * every v2 segment and attaching it to its layer, format.md 9.1; without: footers only, the
 * lazily loaded index reads segments when it needs them), with the checks C1-C10 of format.md
 * 16 in their order, calling fn (may be NULL) for each footer. The slot must be valid and
 * usable (afmt__super_examine), so every footer read lies inside the file. On failure
 * errmsg gets the reason alone (no call or position prefix: *pos says where) and the code
 * is AFMT_ECORRUPT, AFMT_EVERSION (a footer of a newer version), AFMT_EIO, AFMT_ENOMEM or
 * the callback's. pos may be NULL. */
int afmt__chain_walk(afmt_storage *st, const afmt_super *s, int segments, afmt_chain_fn fn,
                     void *ctx, afmt_chain_pos *pos, char *errmsg);

#endif
