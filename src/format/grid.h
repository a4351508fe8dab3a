/* grid.h - chunk-grid arithmetic (regular grid, truncated edge chunks) and copies of
 * n-dimensional boxes between C-ordered buffers. All sizes are element counts. */
#ifndef AFMT_GRID_H
#define AFMT_GRID_H

#include <stddef.h>
#include <stdint.h>

#include "afmt.h"

/* A chunk grid: shape and chunk of ndim dims (ndim 0: a scalar, one chunk of one
 * element). nchunk[d] = ceil(shape[d] / chunk[d]). */
typedef struct {
    int ndim;
    uint64_t shape[AFMT_MAX_NDIM];
    uint64_t chunk[AFMT_MAX_NDIM];
    uint64_t nchunk[AFMT_MAX_NDIM];
} afmt_grid;

/* Fills g; returns AFMT_EINVAL if a dim is 0, chunk > shape, or the total number of
 * chunks or elements overflows u64. */
int afmt__grid_init(afmt_grid *g, int ndim, const uint64_t *shape, const uint64_t *chunk);
/* The byte sizes of an array of elements of esize bytes on grid g: *array_bytes of the
 * whole array, *chunk_bytes of one full (untruncated) chunk; either may be NULL. Returns
 * AFMT_EINVAL if esize is 0, the array's bytes do not fit in a u64 or a chunk's exceed
 * AFMT_MAX_CHUNK_BYTES (format.md 6); the outputs are set whenever they fit in a u64. */
int afmt__grid_bytes(const afmt_grid *g, size_t esize, uint64_t *array_bytes,
                     uint64_t *chunk_bytes);
/* The chunk shape afmt_define gives an array defined without one (chunk NULL; docs/api.md
 * afmt_define): an array of at most AFMT_AUTO_CHUNK_MAX bytes (or with a dimension of
 * extent 0, or ndim 0) is one chunk. Else, with T = AFMT_AUTO_CHUNK_TARGET / esize
 * elements: from the last (fastest) dimension towards the first, each is taken whole while
 * the product P of the extents taken stays <= T; the next dimension gets floor(T / P)
 * (>= 1, below its extent, not necessarily a divisor of it) and those before it 1. A chunk
 * is then more than T/2 and at most T elements: 1 to 2 MiB. Deterministic (every rank
 * computes the same). esize 0 counts as 1. */
#define AFMT_AUTO_CHUNK_TARGET ((uint64_t)2 << 20)
#define AFMT_AUTO_CHUNK_MAX    ((uint64_t)4 << 20)
void afmt__grid_auto_chunk(int ndim, const uint64_t *shape, size_t esize, uint64_t *chunk);
/* Total number of chunks. */
uint64_t afmt__grid_nchunks(const afmt_grid *g);
/* Linear (C-order) chunk index of chunk coordinates ccoord[ndim], and the inverse. */
uint64_t afmt__grid_chunk_index(const afmt_grid *g, const uint64_t *ccoord);
void afmt__grid_chunk_coord(const afmt_grid *g, uint64_t index, uint64_t *ccoord);
/* Origin (element coords) and real extent (edge chunks truncated) of a chunk; returns
 * the number of elements of the chunk. */
uint64_t afmt__grid_chunk_box(const afmt_grid *g, const uint64_t *ccoord, uint64_t *origin,
                              uint64_t *extent);

/* Iterates over the chunks a hyperslab [start, start+count) touches, in C order of
 * chunk coordinates. Usage:
 *   afmt_grid_iter it; afmt__grid_iter_init(&it, g, start, count);
 *   while (afmt__grid_iter_next(&it)) { it.index, it.ccoord, it.origin, it.extent,
 *       it.sel_start (selection start inside the chunk), it.sel_count, it.full } */
typedef struct {
    const afmt_grid *g;
    uint64_t lo[AFMT_MAX_NDIM], hi[AFMT_MAX_NDIM]; /* chunk coord range, hi inclusive */
    uint64_t start[AFMT_MAX_NDIM], count[AFMT_MAX_NDIM];
    int started, done;
    uint64_t index;
    uint64_t ccoord[AFMT_MAX_NDIM];
    uint64_t origin[AFMT_MAX_NDIM], extent[AFMT_MAX_NDIM];
    uint64_t sel_start[AFMT_MAX_NDIM], sel_count[AFMT_MAX_NDIM];
    uint64_t nelems; /* elements of the whole chunk */
    int full;        /* 1 if the hyperslab covers the whole chunk */
} afmt_grid_iter;
void afmt__grid_iter_init(afmt_grid_iter *it, const afmt_grid *g, const uint64_t *start,
                          const uint64_t *count);
int afmt__grid_iter_next(afmt_grid_iter *it);

/* Copies the box of size count[ndim] from src (a C-ordered array of shape src_shape,
 * box at src_start) to dst (shape dst_shape, box at dst_start). Elements are esize
 * bytes. Contiguous inner runs are copied with one memcpy each. ndim 0: one element. */
void afmt__box_copy(int ndim, size_t esize, const uint64_t *count, void *dst,
                    const uint64_t *dst_shape, const uint64_t *dst_start, const void *src,
                    const uint64_t *src_shape, const uint64_t *src_start);

/* Visits the runs of a box of size count[ndim] that are contiguous in two C-ordered
 * arrays at once: a (shape a_shape, box at a_start) and b (shape b_shape, box at
 * b_start). For each run, in C order, fn(ctx, a_off, b_off, len) gets the element
 * offsets of its first element in a and in b and its length in elements. Rows that
 * follow each other in both arrays are merged into one run. The read and write paths
 * (un)shuffle a chunk row by row with it, straight between the block and the caller's
 * array. ndim 0, or an empty box: one run of 1 / nothing. */
typedef void (*afmt_run_fn)(void *ctx, uint64_t a_off, uint64_t b_off, uint64_t len);
void afmt__box_runs(int ndim, const uint64_t *count, const uint64_t *a_shape,
                    const uint64_t *a_start, const uint64_t *b_shape, const uint64_t *b_start,
                    afmt_run_fn fn, void *ctx);

/* 1 if the boxes [a0, a0+ac) and [b0, b0+bc) intersect. */
int afmt__box_overlap(int ndim, const uint64_t *a0, const uint64_t *ac, const uint64_t *b0,
                      const uint64_t *bc);

#endif
