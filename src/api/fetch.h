/* fetch.h - the committed content of a handle's chunks: a block of the index read once,
 * verified (its record, checksum, codec; format.md 8) and decompressed, through the
 * handle's LRU cache or its decode buffer; a chunk's committed content, or its fill value
 * where it was never written. Shared by the read path (read.c), the merge of shared chunks
 * (exchange.c) and compaction (compact.c). INDEPENDENT: no communication. */
#ifndef AFMT_FETCH_H
#define AFMT_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "api/file.h"

/* The decompressed bytes of index block b, verified: from the cache if it is there; else
 * read, checked and decompressed. whole: the caller uses every live chunk of the block, so
 * it goes into the handle's decode buffer and not into the cache (keeping it gains
 * nothing and would evict blocks that partial readers share); otherwise into a buffer
 * (a spare of the cache if one fits) that the cache keeps. *raw is valid until the next
 * fetch. what names the reader for messages ("afmt_read(\"t\"): chunk 3"). */
int afmt__fetch_block(afmt_file *f, uint64_t b, int whole, const uint8_t **raw, const char *what);
/* One block of a read that afmt__fetch_blocks brings in: whole and what as for
 * afmt__fetch_block. */
typedef struct {
    uint64_t block;
    int whole;
    char what[AFMT_MAX_NAME + 64];
} afmt_fetch_req;
/* afmt__fetch_block for each of reqs[0..n), several blocks at a time: the stored bytes are
 * read on the caller's thread (storage, MPI-IO included, is never touched by the pool),
 * verified and decompressed on the handle's pool (afmt__file_pool), and use(ctx, i, raw)
 * is called once per request with its raw bytes, on any thread of the pool (use must
 * write only memory of its own request, and must not fail). A block in the cache is used
 * at once on the caller's thread. Returns the first failure in the order of reqs, with
 * afmt__fetch_block's message (use may have run for requests after it). Without a pool
 * it is afmt__fetch_block in a loop. */
int afmt__fetch_blocks(afmt_file *f, const afmt_fetch_req *reqs, uint64_t n,
                       void (*use)(void *ctx, uint64_t i, const uint8_t *raw), void *ctx);
/* Frees the buffers afmt__fetch_blocks keeps in the handle (file_free). */
void afmt__fetch_free(afmt_file *f);
/* Fills dst (native, the chunk's real extent) with the committed content of a chunk,
 * or the fill value where it was never written. */
int afmt__read_committed_chunk(afmt_file *f, const afmt_array *arr, uint64_t chunk_index,
                               void *dst);
/* Fills a box of buf (shape bshape, at bstart, size count) with arr's fill value. */
void afmt__fill_box(const afmt_array *arr, void *buf, const uint64_t *bshape,
                    const uint64_t *bstart, const uint64_t *count);
/* The name of a chunk in messages: afmt_read("name"): chunk N. */
void afmt__chunk_what(char *w, size_t n, const afmt_array *arr, uint64_t ci);

#endif
