/* shuffle.h - the byte-shuffle pre-filter: a byte transpose by element size, so that
 * the k-th bytes of all elements lie together (helps LZ4/zstd on numeric data). */
#ifndef AFMT_SHUFFLE_H
#define AFMT_SHUFFLE_H

#include <stddef.h>

/* dst[k*n + i] = src[i*esize + k] for i < n elements, k < esize. src != dst.
 * esize 1: a plain copy. */
void afmt__shuffle(void *dst, const void *src, size_t n, size_t esize);
/* The inverse: dst[i*esize + k] = src[k*n + i]. */
void afmt__unshuffle(void *dst, const void *src, size_t n, size_t esize);

/* A part of a shuffled buffer of n elements: the m elements e0 .. e0+m-1.
 * afmt__shuffle_part: dst[k*n + e0 + i] = src[i*esize + k] (src holds the m elements);
 * afmt__unshuffle_part: dst[i*esize + k] = src[k*n + e0 + i] (dst receives them).
 * e0 + m <= n. Shuffling every row of a chunk this way equals afmt__shuffle of the
 * gathered chunk, without the gather. */
void afmt__shuffle_part(void *dst, const void *src, size_t m, size_t n, size_t e0, size_t esize);
void afmt__unshuffle_part(void *dst, const void *src, size_t m, size_t n, size_t e0, size_t esize);

#endif
