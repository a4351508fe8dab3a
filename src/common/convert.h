/* convert.h - conversion between the numeric dtypes, for reads into another memory type
 * (afmt_read_as, afmt_get_attr; docs/api.md 8, "Type conversion").
 *
 * The rules, for every pair of the 11 dtypes:
 *  - the same dtype: a copy (BOOL: nonzero becomes 1);
 *  - integer to integer: the value, or not fitting if outside the target's range;
 *  - float to integer: truncated toward zero (as C and HDF5); NaN, infinities and values
 *    whose truncation is outside the target's range do not fit;
 *  - integer to float: rounded to the nearest representable value (int64 and uint64 to
 *    float64 beyond 2^53, and integers beyond 2^24 to float32, may round); always fits;
 *  - float32 to float64: exact; float64 to float32: rounded to nearest; NaN stays NaN,
 *    infinities stay infinities, a finite value of magnitude above FLT_MAX does not fit;
 *  - to BOOL: zero is 0, any other value (NaN included) is 1; from BOOL: nonzero is 1. */
#ifndef AFMT_CONVERT_H
#define AFMT_CONVERT_H

#include <stddef.h>

#include "afmt.h"

/* Converts n elements of src (dtype st, native byte order) into dst (dtype dt); the
 * buffers must not overlap. AFMT_OK; AFMT_ERANGE with *first_bad the index of the first
 * element that does not fit dt (dst[0, *first_bad) are converted, the rest untouched);
 * AFMT_EINVAL for an invalid dtype. first_bad may be NULL. */
int afmt__convert(void *dst, afmt_dtype dt, const void *src, afmt_dtype st, size_t n,
                  size_t *first_bad);

/* The element at p of dtype t as text ("-3", "1e+300", "nan"), into buf of cap bytes. */
void afmt__value_str(char *buf, size_t cap, const void *p, afmt_dtype t);
/* The range of dtype t as text: "[-128, 127]", "[-3.40282347e+38, 3.40282347e+38]". */
const char *afmt__dtype_range_str(afmt_dtype t);

#endif
