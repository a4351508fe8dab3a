/* superblock.h - the two superblock slots at offset 0 (the LMDB two-meta-page idea) and
 * the trailer that follows every footer. Byte layout: docs/format.md. */
#ifndef AFMT_SUPERBLOCK_H
#define AFMT_SUPERBLOCK_H

#include <stddef.h>
#include <stdint.h>

#define AFMT_FORMAT_VERSION 1
#define AFMT_SUPER_REGION   4096 /* bytes reserved at offset 0; the first layer starts here */
#define AFMT_SLOT_SIZE      128  /* encoded size of one slot */
#define AFMT_SLOT_A_OFFSET  0
#define AFMT_SLOT_B_OFFSET  2048
#define AFMT_TRAILER_SIZE   32

typedef struct {
    uint32_t version;       /* format version that wrote the slot */
    uint8_t uuid[16];       /* file identity, fixed at create */
    uint64_t generation;    /* +1 per commit; the slot written is generation % 2 */
    uint64_t footer_offset; /* newest footer; 0 with footer_length 0 = no layer yet */
    uint64_t footer_length;
    uint64_t footer_checksum; /* XXH3-64 of the footer bytes, checked before decoding */
    uint64_t eof;             /* committed end of file: where the next layer starts */
    uint64_t nlayers;         /* layers in the footer chain */
    uint64_t layer_id;        /* id of the newest layer (ids are never reused) */
    uint64_t next_array_id;   /* smallest array id never used */
} afmt_super;

/* Encodes s into out[AFMT_SLOT_SIZE] (magic, fields, checksum). */
void afmt_super_encode(const afmt_super *s, uint8_t *out);
/* Decodes one slot: AFMT_OK, AFMT_ECORRUPT (magic or checksum bad), AFMT_EVERSION
 * (a whole slot of a newer format version). */
int afmt_super_decode(const uint8_t *slot, afmt_super *s);
/* Given the first AFMT_SUPER_REGION bytes of a file (len may be shorter for a truncated
 * file), picks the valid slot with the highest generation. *which = 0 (A) or 1 (B).
 * AFMT_ECORRUPT if no slot is valid (message in errmsg names both slots' problems),
 * AFMT_EVERSION if the best slot is of a newer version. */
int afmt_super_pick(const uint8_t *region, size_t len, afmt_super *s, int *which, char *errmsg);
/* Offset of the slot that a commit with this new generation writes. */
uint64_t afmt_super_slot_offset(uint64_t generation);

/* Trailer: footer offset, length, checksum, then the magic "AFMTTRLR". */
void afmt_trailer_encode(uint64_t footer_offset, uint64_t footer_length, uint64_t footer_checksum,
                         uint8_t *out);
int afmt_trailer_decode(const uint8_t *p, uint64_t *footer_offset, uint64_t *footer_length,
                        uint64_t *footer_checksum);

#endif
