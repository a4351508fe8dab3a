/* chunk_encode.h - a chunk's payload in file form and back: native elements <->
 * little-endian, byte-shuffled when the array's flag says so (format.md 6). Whole chunks,
 * a chunk gathered from a box of the caller's array, or a part of a chunk scattered into
 * one, in one pass where the host allows. Knows nothing of handles or of the API calls:
 * what memory a call needs, the caller provides (a work buffer, an allocator). */
#ifndef AFMT_CHUNK_ENCODE_H
#define AFMT_CHUNK_ENCODE_H

#include <stdint.h>

#include "index/alloc.h"
#include "index/index.h"

/* Whole chunks: nelems native elements <-> file form. src and dst must not overlap.
 * Need no memory: never fail. */
void afmt__chunk_encode(const afmt_array *arr, void *dst, const void *src, uint64_t nelems);
void afmt__chunk_decode(const afmt_array *arr, void *dst, const void *src, uint64_t nelems);
/* The big-endian hosts' encode (elements byte-swapped, then shuffled when the flag says
 * so), callable on any host so that a unit test covers it. */
void afmt__chunk_encode_swapped(const afmt_array *arr, void *dst, const void *src, uint64_t nelems);

/* Bytes of work buffer afmt__chunk_encode_box needs for a chunk of extent ext from a
 * source array of shape src_shape: 0 where it encodes straight from the source (the box
 * is one run of it, or a little-endian host gathers and shuffles in one pass). */
uint64_t afmt__chunk_encode_work(const afmt_array *arr, const uint64_t *ext,
                                 const uint64_t *src_shape);
/* Encodes the whole chunk of extent ext from the box at src_start of the C-ordered array
 * src (shape src_shape) into dst. work: afmt__chunk_encode_work bytes (NULL if 0). */
void afmt__chunk_encode_box(const afmt_array *arr, void *dst, const uint64_t *ext, const void *src,
                            const uint64_t *src_shape, const uint64_t *src_start, uint8_t *work);

/* afmt__chunk_encode_box into a payload just reserved in a (dst: its place), deferred to
 * the allocator's pool where it has one (afmt__alloc_defer_fill; little-endian hosts):
 * src must then stay valid until afmt__alloc_fill_wait(a). Otherwise encoded now. */
void afmt__chunk_encode_box_later(afmt_alloc *a, const afmt_array *arr, void *dst,
                                  const uint64_t *ext, const void *src, const uint64_t *src_shape,
                                  const uint64_t *src_start, uint8_t *work);

/* Bytes of work buffer afmt__chunk_decode_box needs for a chunk of nelems elements: 0
 * where it decodes straight into the destination (little-endian hosts). */
uint64_t afmt__chunk_decode_work(const afmt_array *arr, uint64_t nelems);
/* Decodes the box [sel_start, +sel_count) of a chunk payload (file form, extent ext) into
 * the box at dst_start of the C-ordered array dst (shape dst_shape). work:
 * afmt__chunk_decode_work bytes (NULL if 0). */
void afmt__chunk_decode_box(const afmt_array *arr, const void *payload, const uint64_t *ext,
                            const uint64_t *sel_start, const uint64_t *sel_count, void *dst,
                            const uint64_t *dst_shape, const uint64_t *dst_start, uint8_t *work);

/* Encodes a whole chunk (native elements) into a fresh place of the allocator: *out is its
 * chunk record (block = the allocator's block number). Fails as afmt__alloc_reserve does
 * (message in afmt__alloc_errmsg(a)), leaving nothing reserved. */
int afmt__chunk_store(afmt_alloc *a, const afmt_array *arr, uint64_t chunk_index,
                      const void *native, uint64_t nelems, afmt_chunk_rec *out);

#endif
