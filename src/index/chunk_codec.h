/* chunk_codec.h - a whole chunk stored with its array's own compression setting
 * (afmt_define_with; format.md 6): its values bit-rounded, then its payload packed into the
 * allocator's open block when the setting's codec and level are the allocator's, else
 * compressed here into a block of its own (ZFP always: one chunk per block, format.md 8),
 * the bound checked when asked. Knows nothing of handles: the caller says what the
 * allocator compresses with. */
#ifndef AFMT_CHUNK_CODEC_H
#define AFMT_CHUNK_CODEC_H

#include <stdint.h>

#include "format/codec_params.h"
#include "index/alloc.h"
#include "index/index.h"

typedef struct {
    uint32_t codec; /* what the allocator's open blocks are compressed with */
    int level;
    int check; /* afmt_opts_set_check_bounds: verify every lossy value against its bound */
} afmt_store_ctx;

/* 1 if arr has a setting of its own (then afmt__chunk_store_own stores its chunks), with
 * the setting in *s; 0 for an array without one, or whose parameters this version cannot
 * read (its chunks then go the default way; afmt_inquire_codec reports those). */
int afmt__chunk_has_setting(const afmt_array *arr, afmt_codec_setting *s);

/* Stores the whole chunk chunk_index of arr (extent ext, nelems native values in native,
 * which this may change: they are bit-rounded in place) as s says: *out is its chunk
 * record (block = the allocator's block number). Failures: AFMT_ENOMEM, AFMT_EINVAL (NaN
 * or infinity for ZFP's lossy modes), AFMT_ECODEC (a bound the check found broken, the
 * codec failed), or the allocator's (AFMT_EIO: spill); the message, naming the chunk, in
 * why (AFMT_ERRMSG_MAX bytes). */
int afmt__chunk_store_own(afmt_alloc *a, const afmt_store_ctx *c, const afmt_array *arr,
                          const afmt_codec_setting *s, uint64_t chunk_index, const uint64_t *ext,
                          void *native, uint64_t nelems, afmt_chunk_rec *out, char *why);

/* BitRound (format.md 6): n float32 (es 4) or float64 (es 8) native values keep keepbits
 * mantissa bits, rounded to nearest, ties to even; NaN and infinities stay. A value that
 * would round up past the largest finite float is truncated instead. */
void afmt__bitround(void *vals, uint64_t n, size_t es, unsigned keepbits);

#endif
