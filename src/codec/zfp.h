/* zfp.h - the ZFP codec (id 3, format.md 8): one chunk per block, compressed as a 1-4
 * dimensional field behind ZFP's full header, so that the stored bytes decode with no
 * other information. Built in when libzfp is found (AFMT_HAVE_ZFP); otherwise every call
 * but afmt__zfp_available fails with AFMT_ECODEC. */
#ifndef AFMT_ZFP_H
#define AFMT_ZFP_H

#include <stddef.h>
#include <stdint.h>

#include "afmt.h"

/* What a chunk is compressed as: the mode and its parameter (afmt_zfp_mode), the element
 * type (FLOAT32, FLOAT64; INT32, INT64 in reversible mode) and the chunk's real extent in
 * C order. */
typedef struct {
    int mode;
    double param;
    afmt_dtype dtype;
    int ndim;
    uint64_t extent[AFMT_MAX_NDIM];
} afmt_zfp_field;

/* 1 if this library has the ZFP codec. */
int afmt__zfp_available(void);
/* AFMT_OK if mode and param are a valid setting (afmt.h afmt_array_opts_set_zfp), else
 * AFMT_EINVAL with why (a static string). */
int afmt__zfp_check(int mode, double param, const char **why);
/* The most stored bytes the chunk may take; 0 without ZFP or for a field ZFP cannot hold. */
size_t afmt__zfp_bound(const afmt_zfp_field *z);
/* Compresses the chunk's values src (src_len bytes: the field's values, little-endian)
 * into dst (cap >= afmt__zfp_bound). AFMT_OK and *out, or AFMT_ECODEC (ZFP failed or is
 * missing), AFMT_ENOMEM. Thread-safe: touches only its arguments. */
int afmt__zfp_compress(const afmt_zfp_field *z, const void *src, size_t src_len, void *dst,
                       size_t cap, size_t *out);
/* Decompresses one stored ZFP block into exactly raw_len bytes, from its header alone.
 * AFMT_ECORRUPT if the header is not ZFP's, names another size, or the stream does not
 * decode; AFMT_ECODEC without ZFP; AFMT_ENOMEM. A crafted stream cannot make ZFP read
 * past the stored bytes: they are decoded from a zero-padded copy as long as the longest
 * stream the header allows. */
int afmt__zfp_decompress(const void *src, size_t src_len, void *dst, size_t raw_len);

#endif
