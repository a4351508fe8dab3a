/* memview.c - the caller's memory layout of a write or read (memview.h). */
#include "api/memview.h"

#include <stdint.h>
#include <string.h>

void afmt__memview_whole(afmt_memview *mv, int ndim, const uint64_t *count) {
    memset(mv, 0, sizeof *mv);
    for (int d = 0; d < ndim; d++) mv->shape[d] = count[d];
    mv->whole = 1;
}

int afmt__memview_box(afmt_file *f, const char *fn, const afmt_array *arr, const uint64_t *count,
                      const uint64_t *mem_shape, const uint64_t *mem_start, afmt_memview *mv) {
    const afmt_array_rec *a = &arr->d;
    memset(mv, 0, sizeof *mv);
    if (a->ndim == 0) {
        mv->whole = 1;
        return AFMT_OK;
    }
    if (!mem_shape || !mem_start)
        return afmt__fail(f->errmsg, AFMT_EINVAL, "%s(\"%s\"): %s is NULL for a %d-d array", fn,
                          a->name, mem_shape ? "mem_start" : "mem_shape", a->ndim);
    uint64_t bytes = arr->esize;
    int whole = 1;
    for (int d = 0; d < a->ndim; d++) {
        if (mem_start[d] > mem_shape[d] || count[d] > mem_shape[d] - mem_start[d])
            return afmt__fail(f->errmsg, AFMT_EINVAL,
                              "%s(\"%s\"): mem_start[%d]=%llu + count[%d]=%llu exceeds "
                              "mem_shape[%d]=%llu (the box must lie inside the memory array)",
                              fn, a->name, d, (unsigned long long)mem_start[d], d,
                              (unsigned long long)count[d], d, (unsigned long long)mem_shape[d]);
        if (bytes > SIZE_MAX / mem_shape[d])
            return afmt__fail(f->errmsg, AFMT_EINVAL,
                              "%s(\"%s\"): a memory array of shape[%d]=%llu and more does not fit "
                              "in this process's address space",
                              fn, a->name, d, (unsigned long long)mem_shape[d]);
        bytes *= mem_shape[d];
        mv->shape[d] = mem_shape[d];
        mv->base[d] = mem_start[d];
        whole &= mem_start[d] == 0 && mem_shape[d] == count[d];
    }
    mv->whole = whole;
    return AFMT_OK;
}
