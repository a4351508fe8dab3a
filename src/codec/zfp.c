/* zfp.c - the ZFP codec (id 3): see zfp.h and format.md 8. */
#include "codec/zfp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int afmt__zfp_check(int mode, double param, const char **why) {
    switch (mode) {
    case AFMT_ZFP_ACCURACY:
        if (!(param > 0) || !isfinite(param)) {
            *why = "the accuracy (an absolute error bound) must be a finite number > 0";
            return AFMT_EINVAL;
        }
        return AFMT_OK;
    case AFMT_ZFP_PRECISION:
        if (!(param >= 1 && param <= 64) || param != floor(param)) {
            *why = "the precision must be a whole number of bit planes in 1..64";
            return AFMT_EINVAL;
        }
        return AFMT_OK;
    case AFMT_ZFP_RATE:
        if (!(param > 0) || !isfinite(param) || param > 64) {
            *why = "the rate must be a number of bits per value in (0, 64]";
            return AFMT_EINVAL;
        }
        return AFMT_OK;
    case AFMT_ZFP_REVERSIBLE:
        return AFMT_OK;
    default:
        *why = "unknown ZFP mode (AFMT_ZFP_ACCURACY, _PRECISION, _RATE or _REVERSIBLE)";
        return AFMT_EINVAL;
    }
}

#ifdef AFMT_HAVE_ZFP
#include <zfp.h>

int afmt__zfp_available(void) {
    /* ZFP reads and writes the values in host order, and a chunk's payload is
     * little-endian (format.md 8): little-endian hosts only. */
    return !afmt__host_is_big_endian();
}

/* The chunk as ZFP's field: nx the last dimension, the leading ones beyond 4 merged into
 * the slowest (format.md 8). NULL when out of memory or for a type ZFP lacks. */
static zfp_field *field_of(const afmt_zfp_field *z, void *data) {
    zfp_type t = z->dtype == AFMT_FLOAT32   ? zfp_type_float
                 : z->dtype == AFMT_FLOAT64 ? zfp_type_double
                 : z->dtype == AFMT_INT32   ? zfp_type_int32
                 : z->dtype == AFMT_INT64   ? zfp_type_int64
                                            : zfp_type_none;
    if (t == zfp_type_none) return NULL;
    size_t n[4] = {1, 1, 1, 1}; /* x, y, z, w */
    int nd = z->ndim, dims = nd < 1 ? 1 : nd > 4 ? 4 : nd;
    for (int d = 0; d < nd; d++) {
        int k = nd - 1 - d; /* 0 for the last (fastest) dimension */
        if (k > 3) k = 3;
        n[k] *= (size_t)z->extent[d];
    }
    switch (dims) {
    case 1:
        return zfp_field_1d(data, t, n[0]);
    case 2:
        return zfp_field_2d(data, t, n[0], n[1]);
    case 3:
        return zfp_field_3d(data, t, n[0], n[1], n[2]);
    default:
        return zfp_field_4d(data, t, n[0], n[1], n[2], n[3]);
    }
}

static void set_mode(zfp_stream *zs, const afmt_zfp_field *z, const zfp_field *fl) {
    switch (z->mode) {
    case AFMT_ZFP_ACCURACY:
        zfp_stream_set_accuracy(zs, z->param);
        break;
    case AFMT_ZFP_PRECISION:
        zfp_stream_set_precision(zs, (unsigned)z->param);
        break;
    case AFMT_ZFP_RATE:
        zfp_stream_set_rate(zs, z->param, fl->type, zfp_field_dimensionality(fl), zfp_false);
        break;
    default:
        zfp_stream_set_reversible(zs);
        break;
    }
}

size_t afmt__zfp_bound(const afmt_zfp_field *z) {
    if (!afmt__zfp_available()) return 0;
    zfp_field *fl = field_of(z, NULL);
    zfp_stream *zs = fl ? zfp_stream_open(NULL) : NULL;
    size_t n = 0;
    if (zs) {
        set_mode(zs, z, fl);
        /* The header and the final word's padding on top of ZFP's own estimate. */
        n = zfp_stream_maximum_size(zs, fl) + ZFP_HEADER_MAX_BITS / 8 + 16;
    }
    if (zs) zfp_stream_close(zs);
    if (fl) zfp_field_free(fl);
    return n;
}

int afmt__zfp_compress(const afmt_zfp_field *z, const void *src, size_t src_len, void *dst,
                       size_t cap, size_t *out) {
    if (!afmt__zfp_available()) return AFMT_ECODEC;
    zfp_field *fl = field_of(z, (void *)src);
    if (!fl) return AFMT_ENOMEM;
    int rc = AFMT_ECODEC;
    bitstream *bs = NULL;
    zfp_stream *zs = NULL;
    if (zfp_field_size(fl, NULL) * zfp_type_size(fl->type) != src_len) goto done;
    if (!(bs = stream_open(dst, cap)) || !(zs = zfp_stream_open(bs))) {
        rc = AFMT_ENOMEM;
        goto done;
    }
    set_mode(zs, z, fl);
    zfp_stream_rewind(zs);
    if (zfp_write_header(zs, fl, ZFP_HEADER_FULL) == 0) goto done;
    size_t n = zfp_compress(zs, fl); /* flushes: whole words */
    if (n == 0 || n > cap) goto done;
    *out = n;
    rc = AFMT_OK;
done:
    if (zs) zfp_stream_close(zs);
    if (bs) stream_close(bs);
    zfp_field_free(fl);
    return rc;
}

int afmt__zfp_decompress(const void *src, size_t src_len, void *dst, size_t raw_len) {
    if (!afmt__zfp_available()) return AFMT_ECODEC;
    /* The header first, from a padded copy of its words. */
    uint8_t head[ZFP_HEADER_MAX_BITS / 8 + 16];
    memset(head, 0, sizeof head);
    memcpy(head, src, src_len < sizeof head ? src_len : sizeof head);
    zfp_field *fl = zfp_field_alloc();
    bitstream *bs = stream_open(head, sizeof head);
    zfp_stream *zs = bs ? zfp_stream_open(bs) : NULL;
    uint8_t *copy = NULL;
    int rc = AFMT_ENOMEM;
    if (!fl || !zs) goto done;
    rc = AFMT_ECORRUPT;
    if (zfp_read_header(zs, fl, ZFP_HEADER_FULL) == 0) goto done;
    size_t sz = zfp_type_size(fl->type);
    if (sz == 0 || zfp_field_size(fl, NULL) * sz != raw_len) goto done;
    /* The longest stream this header allows: decoding cannot read past it. */
    size_t most = zfp_stream_maximum_size(zs, fl) + ZFP_HEADER_MAX_BITS / 8 + 16;
    if (src_len > most) goto done;
    most = (most + 7) & ~(size_t)7;
    zfp_stream_close(zs);
    stream_close(bs);
    zs = NULL;
    bs = NULL;
    rc = AFMT_ENOMEM;
    if (!(copy = malloc(most))) goto done;
    memcpy(copy, src, src_len);
    memset(copy + src_len, 0, most - src_len); /* only the padding: not the whole buffer twice */
    if (!(bs = stream_open(copy, most)) || !(zs = zfp_stream_open(bs))) goto done;
    rc = AFMT_ECORRUPT;
    zfp_stream_rewind(zs);
    zfp_field *f2 = zfp_field_alloc();
    if (!f2) {
        rc = AFMT_ENOMEM;
        goto done;
    }
    if (zfp_read_header(zs, f2, ZFP_HEADER_FULL) != 0) {
        zfp_field_set_pointer(f2, dst);
        size_t n = zfp_decompress(zs, f2);
        if (n != 0 && n <= (src_len + 7) / 8 * 8) rc = AFMT_OK;
    }
    zfp_field_free(f2);
done:
    if (zs) zfp_stream_close(zs);
    if (bs) stream_close(bs);
    if (fl) zfp_field_free(fl);
    free(copy);
    return rc;
}

#else /* no ZFP in this build */

int afmt__zfp_available(void) {
    return 0;
}
size_t afmt__zfp_bound(const afmt_zfp_field *z) {
    (void)z;
    return 0;
}
int afmt__zfp_compress(const afmt_zfp_field *z, const void *src, size_t src_len, void *dst,
                       size_t cap, size_t *out) {
    (void)z, (void)src, (void)src_len, (void)dst, (void)cap, (void)out;
    return AFMT_ECODEC;
}
int afmt__zfp_decompress(const void *src, size_t src_len, void *dst, size_t raw_len) {
    (void)src, (void)src_len, (void)dst, (void)raw_len;
    return AFMT_ECODEC;
}

#endif
