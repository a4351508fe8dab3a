/* shuffle.h - the byte-shuffle pre-filter: a byte transpose by element size, so that
 * the k-th bytes of all elements lie together (helps LZ4/zstd on numeric data). */
#ifndef AFMT_SHUFFLE_H
#define AFMT_SHUFFLE_H

#include <stddef.h>

/* dst[k*n + i] = src[i*esize + k] for i < n elements, k < esize. src != dst.
 * esize 1: a plain copy. */
void afmt_shuffle(void *dst, const void *src, size_t n, size_t esize);
/* The inverse: dst[i*esize + k] = src[k*n + i]. */
void afmt_unshuffle(void *dst, const void *src, size_t n, size_t esize);

#endif
