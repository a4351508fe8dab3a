/* superblock.h - the two superblock slots at offset 0 (the LMDB two-meta-page idea) and
 * the trailer that follows every footer. Byte layout: docs/format.md. */
#ifndef AFMT_SUPERBLOCK_H
#define AFMT_SUPERBLOCK_H

#include <stddef.h>
#include <stdint.h>

#define AFMT_FORMAT_VERSION 2
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
void afmt__super_encode(const afmt_super *s, uint8_t *out);
/* Decodes one slot: AFMT_OK, AFMT_ECORRUPT (magic or checksum bad), AFMT_EVERSION
 * (a whole slot of a newer format version). */
int afmt__super_decode(const uint8_t *slot, afmt_super *s);
/* One slot (which: 0 = A, 1 = B) of the first len bytes of a file, checked as in
 * format.md 3.2: AFMT_OK (valid), AFMT_ENOTFOUND (empty: 128 zero bytes), AFMT_ECORRUPT
 * (missing or invalid), AFMT_EVERSION (a whole slot of a newer version). why (whylen
 * bytes) gets the reason when it is not valid. */
int afmt__super_check_slot(const uint8_t *region, size_t len, int which, afmt_super *s, char *why,
                           size_t whylen);

/* Both slots and the choice between them (format.md 3.3). */
typedef struct {
    afmt_super slot[2];
    int state[2];     /* afmt__super_check_slot's code */
    int usable[2];    /* valid and eof <= the file size */
    char why[2][200]; /* why a slot is not usable */
    int chosen;       /* 0 (A) or 1 (B); -1 if none */
} afmt_super_view;
/* Checks both slots of region (the first len bytes of the file, read BEFORE size, the
 * file's size) and picks the usable slot with the highest generation (A on a tie).
 * AFMT_EVERSION if a slot is of a newer version, AFMT_ECORRUPT if both slots are valid
 * but name different uuids or if no slot is usable (errmsg names both slots' problems).
 * v is filled in any case (chosen too, if a slot is usable, whatever the code). */
int afmt__super_examine(const uint8_t *region, size_t len, uint64_t size, afmt_super_view *v,
                        char *errmsg);
/* afmt__super_examine without a file size (every valid slot is usable): the chosen slot
 * in *s, *which = 0 (A) or 1 (B). */
int afmt__super_pick(const uint8_t *region, size_t len, afmt_super *s, int *which, char *errmsg);
/* Offset of the slot that a commit with this new generation writes. */
uint64_t afmt__super_slot_offset(uint64_t generation);

/* Trailer: footer offset, length, checksum, then the magic "AFMTTRLR". */
void afmt__trailer_encode(uint64_t footer_offset, uint64_t footer_length, uint64_t footer_checksum,
                          uint8_t *out);
int afmt__trailer_decode(const uint8_t *p, uint64_t *footer_offset, uint64_t *footer_length,
                         uint64_t *footer_checksum);

#endif
