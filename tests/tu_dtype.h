/* tu_dtype.h - the size of a dtype's element, for every test program: the cmocka suites
 * (through testutil.h) and the ones that use only afmt.h (http_check, soak). afmt.h has
 * no such call, and these programs do not reach into the library's internals. */
#ifndef AFMT_TU_DTYPE_H
#define AFMT_TU_DTYPE_H

#include <stddef.h>

#include "afmt.h"

/* Size in bytes of one element of type t (8 for any other value). */
static inline size_t tu_dtype_size(afmt_dtype t) {
    switch (t) {
    case AFMT_BOOL:
    case AFMT_INT8:
    case AFMT_UINT8:
        return 1;
    case AFMT_INT16:
    case AFMT_UINT16:
        return 2;
    case AFMT_INT32:
    case AFMT_UINT32:
    case AFMT_FLOAT32:
        return 4;
    default:
        return 8;
    }
}

#endif
