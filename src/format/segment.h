/* segment.h - index segments of format version 2 (docs/format.md 9): one writer's block
 * records and sorted chunk records, stored after its blocks and listed by the footer's
 * root table. Encoding, the checks of 9.1 (X1-X8), reading a layer's segments, and
 * attaching them to a decoded footer so that the layer has blocks and chunks like a
 * version-1 one. */
#ifndef AFMT_SEGMENT_H
#define AFMT_SEGMENT_H

#include <stdint.h>

#include "common/util.h"
#include "format/footer.h"
#include "storage/storage.h"

/* Bytes of a segment of nb blocks and nc chunk records (0 on overflow). */
uint64_t afmt__segment_size(uint64_t nb, uint64_t nc);

/* Appends the segment of layer layer_id by writer: blocks (file offsets) and chunks
 * (sorted strictly by key, block indices into blocks, nc >= 1). AFMT_OK, AFMT_ENOMEM
 * (out unchanged), AFMT_EINVAL for records the decoder would refuse (message in the
 * thread buffer). */
int afmt__segment_encode(uint64_t layer_id, uint32_t writer, const afmt_block_rec *blocks,
                         uint64_t nb, const afmt_chunk_rec *chunks, uint64_t nc, afmt_buf *out);

/* The root record of an encoded segment (as afmt__segment_encode made it) placed at
 * offset. */
void afmt__segment_root(const uint8_t *seg, uint64_t len, uint64_t offset, afmt_seg_rec *out);

/* Decodes segment bytes p[0, len) against its root record g of layer L (whose footer lies
 * at footer_offset), with every check of format.md 9.1 in order. On success *blocks and
 * *chunks are malloc'd (g->n_blocks, g->n_chunks entries; chunk block indices local to the
 * segment). AFMT_ECORRUPT (errmsg: the problem, without naming layer or segment),
 * AFMT_ENOMEM. */
int afmt__segment_decode(const uint8_t *p, uint64_t len, const afmt_seg_rec *g, const afmt_layer *L,
                         uint64_t footer_offset, afmt_block_rec **blocks, afmt_chunk_rec **chunks,
                         char *errmsg);

/* "layer I: segment s (rank r, at offset X, N bytes)": how messages name a segment. */
void afmt__segment_name(const afmt_layer *L, uint64_t s, char *out, size_t n);

/* Total bytes of L's segments (0 for a v1 layer); AFMT_ECORRUPT if the sum overflows. */
int afmt__segments_bytes(const afmt_layer *L, uint64_t *total);

/* Appends the bytes of all of L's segments, in root table order, read from st. AFMT_EIO
 * (st's message), AFMT_ENOMEM, AFMT_ECORRUPT (a segment past the end of the file). */
int afmt__segments_read(afmt_storage *st, const afmt_layer *L, afmt_buf *out, char *errmsg);

/* Decodes the concatenated segments of L (p[0, len), root table order, as
 * afmt__segments_read made them) and gives L its blocks and chunks: the segments' block
 * tables one after the other, the chunks merged in key order with block indices into
 * that table (X9: a key in two segments is damage). A v1 layer needs none (len 0). Errors
 * name the layer and the segment. AFMT_ECORRUPT, AFMT_ENOMEM. */
int afmt__segments_attach(afmt_layer *L, const uint8_t *p, uint64_t len, uint64_t footer_offset,
                          char *errmsg);

#endif
