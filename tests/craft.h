/* craft.h - crafted files for the tests of the validity rules (format.md 16): load a
 * file written through the API, edit fields of its slots and footers, and RE-SEAL every
 * checksum that covers the edit (the footer's own, its trailer's and the slot's
 * footer_checksum, the slot's own), so that the rule under test, not a checksum, is what
 * rejects the file. Single process: no MPI. Failures abort the test (cmocka). */
#ifndef AFMT_CRAFT_H
#define AFMT_CRAFT_H

#include <stddef.h>
#include <stdint.h>

#include "format/footer.h"
#include "format/superblock.h"

typedef struct {
    uint8_t *p;
    uint64_t len;
} craft_img;

/* Reads a whole file into img / writes img as a whole file (replacing it). */
void craft_load(craft_img *img, const char *path);
void craft_save(const craft_img *img, const char *path);
void craft_free(craft_img *img);

/* The valid slot of the highest generation (0 = A, 1 = B) and its contents. */
int craft_slot(const craft_img *img, afmt_super *s);
/* Writes s into slot which (encoded, checksummed). */
void craft_put_slot(craft_img *img, int which, const afmt_super *s);

/* Footer k (0 = the newest) of the chain of the current slot: offset and length. */
void craft_footer(const craft_img *img, int k, uint64_t *off, uint64_t *len);
/* Decodes footer k (it must decode). */
void craft_layer(const craft_img *img, int k, afmt_layer *L);
/* File offset of field rel of footer k; of the fixed part of array record i; of block
 * record i; of chunk record i; of attribute record i (the footer's record sizes). */
uint64_t craft_at(const craft_img *img, int k, uint64_t rel);
uint64_t craft_array_rec(const craft_img *img, int k, uint64_t i);
uint64_t craft_block_rec(const craft_img *img, int k, uint64_t i);
uint64_t craft_chunk_rec(const craft_img *img, int k, uint64_t i);
uint64_t craft_attr_rec(const craft_img *img, int k, uint64_t i);
/* Little-endian field access at a file offset. */
void craft_put_u64(craft_img *img, uint64_t off, uint64_t v);
void craft_put_u32(craft_img *img, uint64_t off, uint32_t v);
uint64_t craft_get_u64(const craft_img *img, uint64_t off);
/* After bytes of footer k were edited in place: recomputes its own checksum, the
 * footer_checksum of its trailer and, for k = 0, the current slot's footer_checksum
 * (and the slot's checksum). */
void craft_reseal(craft_img *img, int k);

/* Replaces the newest footer by the encoding of L (afmt__footer_encode: L must pass its
 * static checks) with a new trailer, and updates the current slot (length, checksum,
 * eof); the file ends at the new eof. */
void craft_replace_newest(craft_img *img, const afmt_layer *L);
/* Appends a layer: data (n bytes of blocks) at the current eof, then the footer of L
 * (whose block offsets are relative to the data: they are made absolute; layer id,
 * prev pointer and data_offset are set, next_array_id and nranks kept if not 0), its
 * trailer, and a new slot (generation + 1). */
void craft_append_layer(craft_img *img, afmt_layer *L, const uint8_t *data, uint64_t n);

#endif
