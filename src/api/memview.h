/* memview.h - where a write's or read's elements lie in the caller's memory: a box of a
 * larger C-ordered array (afmt_write_box, afmt_read_box: the interior of a ghosted field),
 * or, for afmt_write and afmt_read, the whole of a buffer of exactly the selection's
 * shape. The write and read paths gather and scatter through it chunk by chunk, so the
 * larger array is never copied whole. */
#ifndef AFMT_MEMVIEW_H
#define AFMT_MEMVIEW_H

#include <stdint.h>

#include "api/file.h"

typedef struct {
    uint64_t shape[AFMT_MAX_NDIM]; /* the memory array's shape */
    uint64_t base[AFMT_MAX_NDIM];  /* where the selection starts in it */
    int whole;                     /* 1: shape is the selection's count, base 0 */
} afmt_memview;

/* LOCAL. The view of a buffer holding exactly the selection count[ndim]. */
void afmt__memview_whole(afmt_memview *mv, int ndim, const uint64_t *count);
/* LOCAL. The view of the box [mem_start, mem_start + count) of a memory array of shape
 * mem_shape, checked: both given for ndim > 0, every mem_shape[d] >= 1, the box inside
 * (mem_start[d] + count[d] <= mem_shape[d]), the array's bytes within SIZE_MAX. ndim 0:
 * one element, the arguments unused. AFMT_EINVAL naming fn, the array, the dimension and
 * the values. count is checked already (afmt__check_region). */
int afmt__memview_box(afmt_file *f, const char *fn, const afmt_array *arr, const uint64_t *count,
                      const uint64_t *mem_shape, const uint64_t *mem_start, afmt_memview *mv);
#endif
