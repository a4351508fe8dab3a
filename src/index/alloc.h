/* alloc.h - the rank-local delta allocator. Chunk payloads are packed into an open raw
 * block; a full block is compressed at once into an in-memory arena of stored bytes;
 * past the memory budget the arena is appended to a spill file (created in the spill
 * directory, unlinked at once so a crash leaves nothing behind). At commit the stored
 * bytes are handed out as contiguous pieces, oldest first, for one write at the rank's
 * offset. Blocks never mix ranks: one allocator per rank and handle. */
#ifndef AFMT_ALLOC_H
#define AFMT_ALLOC_H

#include <stdint.h>

#include "common/error.h"
#include "common/pool.h"

typedef struct afmt_alloc afmt_alloc;

typedef struct {
    uint64_t rel_offset;  /* offset of the stored bytes from the start of this rank's data */
    uint64_t stored_size; /* after compression (== raw_size when codec is 0) */
    uint64_t raw_size;
    uint64_t checksum; /* XXH3-64 of the stored bytes */
    uint32_t codec;    /* the codec actually used: 0 when compression did not shrink it */
} afmt_alloc_block;

typedef struct {
    uint64_t block_size;   /* target raw bytes per block */
    uint64_t mem_budget;   /* stored bytes kept in memory before spilling */
    const char *spill_dir; /* NULL or "": $TMPDIR, or /tmp (resolved here only) */
    uint32_t codec;
    int level;
    /* NULL or a pool of one thread: blocks are sealed on the caller's thread as they
     * fill. Otherwise a full block is handed to the pool (its deferred fills run, then it
     * is compressed and checksummed there) and the caller goes on filling the next one;
     * results enter the arena in block order, so the stored bytes are the same whatever
     * the pool. The pool must outlive the allocator. */
    afmt_pool *pool;
} afmt_alloc_config;

/* Returns AFMT_OK or AFMT_ENOMEM. The config is copied (spill_dir too). */
int afmt__alloc_create(afmt_alloc **out, const afmt_alloc_config *cfg);
void afmt__alloc_free(afmt_alloc *a);
/* The message of the last failure (names the operation, spill path and errno). */
const char *afmt__alloc_errmsg(const afmt_alloc *a);

/* Reserves n bytes for one chunk payload in the open block and returns where the caller
 * writes it (*dst, valid until the next call on a), the block number and the offset of
 * the payload inside the raw block. If the open block is non-empty and the payload does
 * not fit in the target size, the open block is sealed (compressed) first. A payload
 * larger than the target size gets a block of its own. Errors: AFMT_ENOMEM, AFMT_EIO
 * (spill), AFMT_ECODEC. */
int afmt__alloc_reserve(afmt_alloc *a, uint64_t n, void **dst, uint64_t *block, uint64_t *offset);
/* Deferred fills (a pool of more than one thread only): the payload of the last
 * afmt__alloc_reserve is written later, by fn(arg, dst) on the thread that seals its block
 * (a job of the pool, before the compression), so that encoding chunks runs on the pool
 * too. arg (size bytes) is copied, 16-byte aligned. Returns 1 if deferred; 0 (no pool, no
 * reservation since the last call, out of memory) if the caller must write the bytes
 * itself now. Whatever fn reads must stay valid until afmt__alloc_fill_wait, which the
 * caller runs before it returns to the application. */
typedef void (*afmt_alloc_fill_fn)(const void *arg, void *dst);
int afmt__alloc_defer_fill(afmt_alloc *a, afmt_alloc_fill_fn fn, const void *arg, size_t size);
/* Returns once every deferred fill has run: the open block's (split between this thread
 * and the pool) and those of the blocks in the pool (their compression may still run). */
void afmt__alloc_fill_wait(afmt_alloc *a);

/* Adds an already stored block (compaction copies blocks without recompressing) as a
 * block of its own; the open block is sealed first. */
int afmt__alloc_add_stored(afmt_alloc *a, const void *stored, uint64_t stored_size,
                           uint64_t raw_size, uint32_t codec, uint64_t checksum, uint64_t *block);
/* Seals the open block, if any, and waits for every block handed to the pool: then all
 * blocks are in the block table and the arena (or the spill file). */
int afmt__alloc_seal(afmt_alloc *a);

/* Sealed blocks so far, those still in the pool included (block numbers 0..n-1); the
 * open block, if any, is number n. block_at and the byte counts below cover the blocks
 * out of the pool only: afmt__alloc_seal first. */
uint64_t afmt__alloc_nblocks(const afmt_alloc *a);
const afmt_alloc_block *afmt__alloc_block_at(const afmt_alloc *a, uint64_t i);
/* Stored bytes of all sealed blocks. */
uint64_t afmt__alloc_stored_bytes(const afmt_alloc *a);
/* Stored bytes now in memory / in the spill file (for tests and stats). */
uint64_t afmt__alloc_mem_bytes(const afmt_alloc *a);
uint64_t afmt__alloc_spilled_bytes(const afmt_alloc *a);

/* Seconds spent compressing and checksumming blocks since the last reset (commit stats;
 * with a pool, the sum over its threads). */
double afmt__alloc_seal_seconds(const afmt_alloc *a);

/* Read-your-writes: copies n raw bytes at offset of block (sealed or open) into dst,
 * decompressing a sealed block (the last one decompressed is kept); a block still in the
 * pool is waited for. */
int afmt__alloc_read(afmt_alloc *a, uint64_t block, uint64_t offset, void *dst, uint64_t n);

/* Hands out the stored bytes of all sealed blocks in order, as contiguous pieces of at
 * most max bytes: *pos is the caller's cursor (start at 0); on return *p, *n is the next
 * piece (pointing into the arena or into a staging buffer read from the spill file,
 * valid until the next call) and *pos has advanced; *n == 0 at the end. */
int afmt__alloc_next_piece(afmt_alloc *a, uint64_t *pos, uint64_t max, const void **p, uint64_t *n);

#ifdef AFMT_TESTING
/* Test hook: the nth block compressed from now on (1 = the next; 0: off) fails with rc
 * (as a codec failing with rc would), on whatever thread compresses it. */
void afmt__alloc_fail_compress(int nth, int rc);
#endif

/* Forgets all blocks (after a commit or when the staged writes are dropped); memory
 * buffers are kept for reuse, the spill file is truncated. */
void afmt__alloc_reset(afmt_alloc *a);

#endif
