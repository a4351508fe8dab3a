/* chunk_codec.c - a whole chunk stored with its array's own setting: see chunk_codec.h. */
#include "index/chunk_codec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/zfp.h"
#include "common/error.h"
#include "common/util.h"
#include "index/chunk_encode.h"

typedef unsigned long long ull;

int afmt__chunk_has_setting(const afmt_array *arr, afmt_codec_setting *s) {
    char why[AFMT_ERRMSG_MAX];
    if (afmt__codec_setting_get(&arr->d, s, why) != AFMT_OK) return 0;
    return s->codec != AFMT_CODEC_UNSET;
}

/* One value: rounded to keep its k most significant of m mantissa bits (w bits in all). */
static uint64_t round_bits(uint64_t u, unsigned m, unsigned k, unsigned w) {
    unsigned drop = m - k;
    uint64_t expmask = (w == 64 ? ~0ull >> 1 : 0x7fffffffull) & ~((1ull << m) - 1);
    if (drop == 0 || (u & expmask) == expmask) return u; /* NaN, infinity: as they are */
    uint64_t half = 1ull << (drop - 1), keep = ~((1ull << drop) - 1);
    uint64_t r = (u + half - 1 + ((u >> drop) & 1)) & keep; /* to nearest, ties to even */
    if (w == 32) r &= 0xffffffffull;
    if ((r & expmask) == expmask) r = u & keep; /* past the largest finite: truncate */
    return r;
}

void afmt__bitround(void *vals, uint64_t n, size_t es, unsigned keepbits) {
    if (es == 8 && keepbits < 52) {
        uint64_t *v = vals;
        for (uint64_t i = 0; i < n; i++) v[i] = round_bits(v[i], 52, keepbits, 64);
    } else if (es == 4 && keepbits < 23) {
        uint32_t *v = vals;
        for (uint64_t i = 0; i < n; i++) v[i] = (uint32_t)round_bits(v[i], 23, keepbits, 32);
    }
}

/* Value i of float32 (es 4) or float64 (es 8) values. */
static double value_at(const void *v, size_t es, uint64_t i) {
    return es == 8 ? ((const double *)v)[i] : (double)((const float *)v)[i];
}

/* The check of bit rounding: every rounded value within 2^-(k+1) of the original,
 * relatively (finite values; NaN and infinities kept). */
static int check_rounded(const afmt_array *arr, uint64_t ci, const void *orig, const void *r,
                         uint64_t n, unsigned k, char *why) {
    double bound = ldexp(1.0, -(int)k - 1);
    for (uint64_t i = 0; i < n; i++) {
        double a = value_at(orig, arr->esize, i), b = value_at(r, arr->esize, i);
        if (!isfinite(a)) continue;
        double rel = a == 0 ? fabs(b) : fabs(a - b) / fabs(a);
        if (rel > bound)
            return afmt__fail(why, AFMT_ECODEC,
                              "array \"%s\" chunk %llu: value %llu rounded to %d bits is off by "
                              "%.3g relatively, more than the bound %.3g",
                              arr->d.name, (ull)ci, (ull)i, (int)k, rel, bound);
    }
    return AFMT_OK;
}

/* The check of ZFP's accuracy mode: the stored bytes decoded again, every value within
 * tol of what was written; reversible (tol < 0): every value equal, bit for bit. */
static int check_zfp(const afmt_array *arr, uint64_t ci, const void *vals, const uint8_t *stored,
                     size_t n, size_t raw, double tol, char *why) {
    void *back = malloc(raw ? raw : 1);
    if (!back)
        return afmt__fail(why, AFMT_ENOMEM,
                          "array \"%s\" chunk %llu: out of memory checking "
                          "its bound",
                          arr->d.name, (ull)ci);
    int rc = afmt__zfp_decompress(stored, n, back, raw);
    if (rc == AFMT_OK && tol < 0) {
        int same = raw == 0 || memcmp(vals, back, raw) == 0;
        free(back);
        if (!same)
            return afmt__fail(why, AFMT_ECODEC,
                              "array \"%s\" chunk %llu: ZFP reversible did not give the values "
                              "back bit for bit",
                              arr->d.name, (ull)ci);
        return AFMT_OK;
    }
    double worst = 0;
    uint64_t at = 0, count = raw / arr->esize;
    for (uint64_t i = 0; rc == AFMT_OK && i < count; i++) {
        double e = fabs(value_at(vals, arr->esize, i) - value_at(back, arr->esize, i));
        if (!(e <= worst)) worst = e, at = i;
    }
    free(back);
    if (rc != AFMT_OK)
        return afmt__fail(why, AFMT_ECODEC,
                          "array \"%s\" chunk %llu: its ZFP block does not "
                          "decode again (%s)",
                          arr->d.name, (ull)ci, afmt_strerror(rc));
    if (!(worst <= tol))
        return afmt__fail(why, AFMT_ECODEC,
                          "array \"%s\" chunk %llu: value %llu is off by %.3g, more than the ZFP "
                          "accuracy bound %.3g%s",
                          arr->d.name, (ull)ci, (ull)at, worst, tol,
                          arr->d.dtype == AFMT_FLOAT32 ? " (a float32 may not hold that "
                                                         "accuracy at this magnitude)"
                                                       : "");
    return AFMT_OK;
}

/* The chunk's payload compressed into stored (malloc'd): with ZFP (vals: the values) or
 * with s's codec; the raw payload itself (codec 0) where that is not smaller. */
static int compress_own(const afmt_array *arr, const afmt_store_ctx *c, const afmt_codec_setting *s,
                        uint64_t ci, const uint64_t *ext, const uint8_t *payload, size_t raw,
                        uint8_t **stored, size_t *n, uint32_t *codec, char *why) {
    afmt_zfp_field z;
    size_t bound;
    int zfp = s->codec == AFMT_CODEC_ZFP;
    if (zfp) {
        memset(&z, 0, sizeof z);
        z.mode = (int)s->zfp_mode;
        z.param = s->zfp_param;
        z.dtype = arr->d.dtype;
        z.ndim = arr->d.ndim;
        memcpy(z.extent, ext, sizeof(uint64_t) * (size_t)arr->d.ndim);
        bound = afmt__zfp_bound(&z);
    } else {
        bound = afmt__codec_bound(s->codec, raw);
    }
    if (bound < raw) bound = raw;
    if (!(*stored = malloc(bound ? bound : 1)))
        return afmt__fail(why, AFMT_ENOMEM, "array \"%s\" chunk %llu: out of memory (%zu bytes)",
                          arr->d.name, (ull)ci, bound);
    int rc = zfp ? afmt__zfp_compress(&z, payload, raw, *stored, bound, n)
                 : afmt__codec_compress(s->codec, s->level, payload, raw, *stored, bound, n);
    if (rc == AFMT_ENOMEM || (zfp && rc != AFMT_OK))
        return afmt__fail(why, rc, "array \"%s\" chunk %llu: compressing with %s: %s", arr->d.name,
                          (ull)ci, afmt__codec_name(s->codec), afmt_strerror(rc));
    *codec = s->codec;
    int exact = s->zfp_mode == AFMT_ZFP_REVERSIBLE;
    if (zfp && rc == AFMT_OK && c->check && (exact || s->zfp_mode == AFMT_ZFP_ACCURACY) &&
        (rc = check_zfp(arr, ci, payload, *stored, *n, raw, exact ? -1 : s->zfp_param, why)) !=
            AFMT_OK)
        return rc;
    if (rc != AFMT_OK || *n >= raw) { /* as a packed block: raw where nothing is gained */
        if (raw) memcpy(*stored, payload, raw);
        *n = raw;
        *codec = 0;
    }
    return AFMT_OK;
}

int afmt__chunk_store_own(afmt_alloc *a, const afmt_store_ctx *c, const afmt_array *arr,
                          const afmt_codec_setting *s, uint64_t chunk_index, const uint64_t *ext,
                          void *native, uint64_t nelems, afmt_chunk_rec *out, char *why) {
    size_t raw = (size_t)(nelems * arr->esize);
    int zfp = s->codec == AFMT_CODEC_ZFP, rc = AFMT_OK;
    if (zfp && (arr->d.flags & AFMT_ARRAY_SHUFFLE))
        return afmt__fail(why, AFMT_EINVAL,
                          "array \"%s\": its record asks for ZFP on shuffled chunks, which "
                          "format.md 6 does not allow",
                          arr->d.name);
    int is_float = arr->d.dtype == AFMT_FLOAT32 || arr->d.dtype == AFMT_FLOAT64;
    if (zfp && !is_float && s->zfp_mode != AFMT_ZFP_REVERSIBLE) /* a crafted record */
        return afmt__fail(why, AFMT_EINVAL,
                          "array \"%s\": its record asks for a lossy ZFP mode on %s values",
                          arr->d.name, afmt__dtype_name(arr->d.dtype));
    if (zfp && s->zfp_mode != AFMT_ZFP_REVERSIBLE)
        for (uint64_t i = 0; i < nelems; i++)
            if (!isfinite(value_at(native, arr->esize, i)))
                return afmt__fail(why, AFMT_EINVAL,
                                  "array \"%s\" chunk %llu: value %llu is NaN or infinite, which "
                                  "ZFP's lossy modes cannot store (use AFMT_ZFP_REVERSIBLE or a "
                                  "lossless codec)",
                                  arr->d.name, (ull)chunk_index, (ull)i);
    if (s->filter == AFMT_FILTER_BITROUND) {
        void *orig = NULL;
        if (c->check && !(orig = malloc(raw ? raw : 1)))
            return afmt__fail(why, AFMT_ENOMEM, "array \"%s\": out of memory", arr->d.name);
        if (orig) memcpy(orig, native, raw);
        afmt__bitround(native, nelems, arr->esize, s->keepbits);
        if (orig) rc = check_rounded(arr, chunk_index, orig, native, nelems, s->keepbits, why);
        free(orig);
        if (rc != AFMT_OK) return rc;
    }
    if (!zfp && s->codec == c->codec && s->level == c->level) {
        void *dst; /* the allocator compresses like this: packed with the other chunks */
        uint64_t block, offset;
        if ((rc = afmt__alloc_reserve(a, raw, &dst, &block, &offset)) != AFMT_OK)
            return afmt__fail(why, rc, "%s", afmt__alloc_errmsg(a));
        afmt__chunk_encode(arr, dst, native, nelems);
        *out = (afmt_chunk_rec){arr->d.id, chunk_index, block, offset, raw};
        return AFMT_OK;
    }
    /* A block of its own: ZFP compresses the values (little-endian host, no shuffle), the
     * others the payload in file form. */
    uint8_t *payload = native, *enc = NULL, *stored = NULL;
    if (!zfp) {
        if (!(enc = malloc(raw ? raw : 1)))
            return afmt__fail(why, AFMT_ENOMEM, "array \"%s\": out of memory", arr->d.name);
        afmt__chunk_encode(arr, enc, native, nelems);
        payload = enc;
    }
    size_t n = 0;
    uint32_t codec = 0;
    uint64_t block = 0;
    rc = compress_own(arr, c, s, chunk_index, ext, payload, raw, &stored, &n, &codec, why);
    if (rc == AFMT_OK &&
        (rc = afmt__alloc_add_stored(a, stored, n, raw, codec, afmt__checksum(stored, n),
                                     &block)) != AFMT_OK)
        afmt__fail(why, rc, "%s", afmt__alloc_errmsg(a));
    free(enc);
    free(stored);
    if (rc == AFMT_OK) *out = (afmt_chunk_rec){arr->d.id, chunk_index, block, 0, raw};
    return rc;
}
