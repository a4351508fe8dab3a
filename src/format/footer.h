/* footer.h - a layer footer in memory (afmt_layer) and its encoding on disk.
 * Byte layout: docs/format.md. */
#ifndef AFMT_FOOTER_H
#define AFMT_FOOTER_H

#include <stdint.h>

#include "afmt.h"
#include "common/util.h"

#define AFMT_REC_DEFINE 1
#define AFMT_REC_DELETE 2

#define AFMT_ARRAY_SHUFFLE 0x1 /* array flag: chunks are byte-shuffled */

/* The most bytes of codec parameters an array record holds (format.md 6), and the codec
 * field of an array without a recorded codec setting. */
#define AFMT_MAX_CODEC_PARAMS 256
#define AFMT_CODEC_UNSET      UINT32_MAX

#define AFMT_LAYER_BASE 0x1 /* layer flag: self-contained (compaction); no fall-through */

/* The largest raw size of a block (format.md 8): no writer makes larger ones (a block
 * holds chunks of at most AFMT_MAX_CHUNK_BYTES, filled up to a block size of at most
 * 1 GiB), and a reader never allocates more for one. */
#define AFMT_MAX_BLOCK_RAW ((uint64_t)1 << 30)

/* Attributes with this array id describe the layer itself (provenance), not the file. */
#define AFMT_ATTR_FILE  0
#define AFMT_ATTR_LAYER UINT64_MAX

typedef struct {
    uint64_t id;   /* array ids start at 1, never reused */
    uint32_t kind; /* AFMT_REC_DEFINE or AFMT_REC_DELETE (then only id and name count) */
    uint32_t flags;
    afmt_dtype dtype;
    int ndim;
    char name[AFMT_MAX_NAME + 1];
    uint64_t shape[AFMT_MAX_NDIM], chunk[AFMT_MAX_NDIM];
    char dims[AFMT_MAX_NDIM][AFMT_MAX_DIMNAME + 1];
    uint8_t fill[8]; /* one element, little-endian, zero padded */
    /* v2 codec fields (format.md 6): the array's codec setting, AFMT_CODEC_UNSET if none
     * is recorded, and its parameters (opaque to the format). */
    uint32_t codec;
    uint32_t params_len;
    uint8_t params[AFMT_MAX_CODEC_PARAMS];
} afmt_array_rec;

typedef struct {
    uint64_t offset;      /* absolute file offset of the stored bytes */
    uint64_t stored_size; /* bytes in the file */
    uint64_t raw_size;    /* bytes after decompression */
    uint64_t checksum;    /* XXH3-64 of the stored bytes */
    uint32_t codec;       /* codec id */
    uint32_t rank;        /* writer rank */
} afmt_block_rec;

/* A root table record (format.md 9.2): where one index segment is and what it holds. */
typedef struct {
    uint64_t offset, length; /* the segment's bytes in the file */
    uint64_t checksum;       /* XXH3-64 of all length bytes */
    uint64_t n_blocks, n_chunks;
    uint64_t first_array, first_chunk, last_array, last_chunk; /* key range, inclusive */
    uint32_t writer;                                           /* the writing rank */
} afmt_seg_rec;

#define AFMT_SEG_REC_SIZE 80  /* bytes of a root table record */
#define AFMT_SEG_HEADER   64  /* bytes of a segment header */
#define AFMT_SEG_MIN      112 /* the smallest segment: header, one chunk record, checksum */

typedef struct {
    uint64_t array_id, chunk_index;
    uint64_t block;  /* index into this layer's block table */
    uint64_t offset; /* inside the raw (decompressed) block */
    uint64_t size;   /* raw bytes of the chunk: its real extent times the element size */
} afmt_chunk_rec;

typedef struct {
    uint64_t array_id; /* AFMT_ATTR_FILE, AFMT_ATTR_LAYER or an array id */
    char key[AFMT_MAX_NAME + 1];
    afmt_dtype dtype;
    uint64_t n;     /* number of values */
    uint8_t *value; /* n * dtype size bytes, little-endian (owned) */
} afmt_attr_rec;

typedef struct {
    uint64_t layer_id;
    uint64_t prev_offset, prev_length; /* previous footer, 0/0 for the first layer */
    uint64_t data_offset;              /* where this layer's blocks start */
    uint64_t time_ns;                  /* commit time, Unix epoch nanoseconds */
    uint64_t next_array_id;
    uint32_t nranks;  /* size of the writing communicator */
    uint32_t flags;   /* AFMT_LAYER_* */
    uint32_t version; /* footer format version: 2 encodes a root table (segs), anything else
                       * the version-1 block and chunk tables; decoded: 1 or 2 */
    afmt_array_rec *arrays;
    uint64_t n_arrays;
    afmt_block_rec *blocks;
    uint64_t n_blocks;
    afmt_chunk_rec *chunks; /* sorted by (array_id, chunk_index), unique */
    uint64_t n_chunks;
    afmt_attr_rec *attrs;
    uint64_t n_attrs;
    /* v2: the root table, sorted by first key. A decoded v2 footer has no blocks and
     * chunks until its segments are attached (segment.h); seg_blocks and seg_chunks are
     * the header's totals over the segments. */
    afmt_seg_rec *segs;
    uint64_t n_segs, seg_blocks, seg_chunks;
} afmt_layer;

/* Appends the encoded footer (ending with its checksum) to out: version 2 (root table
 * from L->segs; blocks and chunks are not encoded) if L->version is 2, else version 1
 * (block and chunk tables; only tests and tools still make those). Chunks must be sorted.
 * Returns AFMT_OK or AFMT_ENOMEM; AFMT_EINVAL (message in the thread buffer, out
 * unchanged) for a layer the decoder would reject: bad name/dim name length, ndim, dtype,
 * flags, id >= next_array_id, unsorted chunks, a chunk outside its block. */
int afmt__footer_encode(const afmt_layer *L, afmt_buf *out);
/* Decodes and validates a whole footer (checksum, magic, version, every count, bound,
 * string, dtype, ndim, chunk order and chunk-to-block reference). On failure L is left
 * empty and errmsg says what is wrong: AFMT_ECORRUPT, AFMT_EVERSION, AFMT_ENOMEM. */
int afmt__footer_decode(const uint8_t *p, uint64_t len, afmt_layer *L, char *errmsg);
/* The footer_checksum of the superblock slot and of the trailer: XXH3-64 of all len bytes
 * of the encoded footer (its own trailing checksum included). Same as
 * afmt__checksum(p, len); named so that writers and readers agree on it. */
uint64_t afmt__footer_checksum(const uint8_t *p, uint64_t len);
/* The 40 bytes of a block record and of a chunk record (format.md 8, 9.1), and back (no
 * check: the decoders check). */
void afmt__block_rec_put(uint8_t out[40], const afmt_block_rec *b);
void afmt__block_rec_get(const uint8_t in[40], afmt_block_rec *b);
void afmt__chunk_rec_put(uint8_t out[40], const afmt_chunk_rec *c);
void afmt__chunk_rec_get(const uint8_t in[40], afmt_chunk_rec *c);
/* Checks B2-B4 of format.md 8 on block record i (codec 0 sizes, the raw size limit, the
 * writer rank), for the footer's and the segments' decoders: 0, or 1 with "block record
 * i: <problem>" in why (n bytes). */
int afmt__block_rec_bad(const afmt_block_rec *b, uint64_t i, uint32_t nranks, char *why, size_t n);
/* The 80 bytes of a root table record, and back (no check: decode_segs checks). */
void afmt__seg_rec_encode(const afmt_seg_rec *g, uint8_t out[80]);
void afmt__seg_rec_decode(const uint8_t in[80], afmt_seg_rec *g);
/* Frees what L owns and zeroes it. */
void afmt__layer_free(afmt_layer *L);
/* qsort comparator for afmt_chunk_rec by (array_id, chunk_index). */
int afmt__chunk_rec_cmp(const void *a, const void *b);

#endif
