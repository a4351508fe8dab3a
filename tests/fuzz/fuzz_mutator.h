/* fuzz_mutator.h - the structure-aware mutator of the fuzz targets (fuzz_mutator.c).
 *
 * A flipped byte of an afmt file is nearly always caught by a checksum, so plain
 * byte-level fuzzing tests little beyond XXH3. This mutator parses a candidate file image
 * the way docs/format.md lays it out (superblock slots, trailers, footer chain, footer
 * header, array, block, chunk and attribute records, heap strings, block payloads; in
 * format v2 the root table and the index segments it names, with their headers, block
 * and chunk records), edits one field or record (boundary values, values of other fields,
 * duplicated, removed, swapped or transplanted records, extra dimensions, renamed strings,
 * re-encoded blocks, pointers to other footers or segments, segment records with the
 * root record made to agree, an appended layer) and then re-seals every checksum (blocks,
 * segments, root records, footers, trailers, slots), so the structural rules are what the
 * library and the tool must catch. It is the one place of the fuzz code that knows the
 * byte layout. */
#ifndef AFMT_FUZZ_MUTATOR_H
#define AFMT_FUZZ_MUTATOR_H

#include <stddef.h>
#include <stdint.h>

/* Recomputes every checksum of the image for the bytes it names: the block checksums of
 * every footer and segment found (for blocks inside the image), each segment's trailing
 * checksum (for bytes that start with the segment magic, outside every footer) and the
 * checksum of each root record (for the bytes it names), each footer's trailing checksum,
 * the footer checksum of every trailer and slot (for the footer each points at) and each
 * slot's own checksum. Footers are those the slots, the trailers and the prev pointers
 * name; segments those the root records of v2 footers name. */
void fz_reseal(uint8_t *img, size_t n);

/* One mutation of the image data[0, size) in a buffer of max_size bytes; returns the new
 * size. Deterministic for (data, size, max_size, seed) given the byte mutator's state.
 * An image that does not parse as an afmt file gets byte-level mutations only. */
size_t fz_mutate(uint8_t *data, size_t size, size_t max_size, unsigned seed);

/* A structure-aware crossover: a copy of a with records of b's footers transplanted into
 * its footers (strings and values carried along), or, if either does not parse, a byte
 * splice of the two; re-sealed. Returns the size written to out (<= max_out). */
size_t fz_crossover(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint8_t *out,
                    size_t max_out, unsigned seed);

/* The name of the last mutation fz_mutate or fz_crossover applied (tests, statistics). */
const char *fz_last_op(void);

/* Footers found in the image (for tests) and the largest raw_size of any block record of
 * them (the tool target skips files whose blocks would need more memory than a fuzzer
 * allows, when told to). */
int fz_footers(const uint8_t *img, size_t n);
uint64_t fz_max_block_raw(const uint8_t *img, size_t n);

#endif
