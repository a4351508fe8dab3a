/* convert.c - conversion between the numeric dtypes (convert.h has the rules). One
 * function per pair of dtypes, made by the X-macros below: a first pass checks that every
 * element fits (branch-free, so -O3 vectorizes it), a second converts; only when some
 * element does not fit is the first one searched for. */
#include "common/convert.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* The dtypes in afmt_dtype order: name, C type, kind (B bool, S signed, U unsigned,
 * F float32, D float64). Two copies, so that a row of the one can expand the other. */
#define CV_TYPES_SRC(X)                                                                            \
    X(BOOL, uint8_t, B)                                                                            \
    X(INT8, int8_t, S)                                                                             \
    X(INT16, int16_t, S)                                                                           \
    X(INT32, int32_t, S)                                                                           \
    X(INT64, int64_t, S)                                                                           \
    X(UINT8, uint8_t, U)                                                                           \
    X(UINT16, uint16_t, U)                                                                         \
    X(UINT32, uint32_t, U)                                                                         \
    X(UINT64, uint64_t, U)                                                                         \
    X(FLOAT32, float, F)                                                                           \
    X(FLOAT64, double, D)
#define CV_TYPES_DST(X, SN, ST, SK)                                                                \
    X(SN, ST, SK, BOOL, uint8_t, B)                                                                \
    X(SN, ST, SK, INT8, int8_t, S)                                                                 \
    X(SN, ST, SK, INT16, int16_t, S)                                                               \
    X(SN, ST, SK, INT32, int32_t, S)                                                               \
    X(SN, ST, SK, INT64, int64_t, S)                                                               \
    X(SN, ST, SK, UINT8, uint8_t, U)                                                               \
    X(SN, ST, SK, UINT16, uint16_t, U)                                                             \
    X(SN, ST, SK, UINT32, uint32_t, U)                                                             \
    X(SN, ST, SK, UINT64, uint64_t, U)                                                             \
    X(SN, ST, SK, FLOAT32, float, F)                                                               \
    X(SN, ST, SK, FLOAT64, double, D)

/* The integer targets' ranges: ILO (signed only) and IHI as integers; FLO and FHI the
 * exclusive bounds a float must lie strictly between (its truncation then fits). For
 * int64 FLO is the double just below -2^63: none lies between it and -2^63. */
#define ILO_INT8   ((int64_t)INT8_MIN)
#define ILO_INT16  ((int64_t)INT16_MIN)
#define ILO_INT32  ((int64_t)INT32_MIN)
#define ILO_INT64  INT64_MIN
#define IHI_INT8   ((uint64_t)INT8_MAX)
#define IHI_INT16  ((uint64_t)INT16_MAX)
#define IHI_INT32  ((uint64_t)INT32_MAX)
#define IHI_INT64  ((uint64_t)INT64_MAX)
#define IHI_UINT8  ((uint64_t)UINT8_MAX)
#define IHI_UINT16 ((uint64_t)UINT16_MAX)
#define IHI_UINT32 ((uint64_t)UINT32_MAX)
#define IHI_UINT64 UINT64_MAX
#define FLO_INT8   (-129.0)
#define FHI_INT8   128.0
#define FLO_INT16  (-32769.0)
#define FHI_INT16  32768.0
#define FLO_INT32  (-2147483649.0)
#define FHI_INT32  2147483648.0
#define FLO_INT64  (-0x1.0000000000001p63)
#define FHI_INT64  0x1p63
#define FLO_UINT8  (-1.0)
#define FHI_UINT8  256.0
#define FLO_UINT16 (-1.0)
#define FHI_UINT16 65536.0
#define FLO_UINT32 (-1.0)
#define FHI_UINT32 4294967296.0
#define FLO_UINT64 (-1.0)
#define FHI_UINT64 0x1p64

/* Range checks through functions, so that no comparison is against its own type's limit
 * (-Wtype-limits) before inlining folds them. */
static inline int fit_ss(int64_t v, int64_t lo, uint64_t hi) {
    return v >= lo && (v < 0 || (uint64_t)v <= hi);
}
static inline int fit_su(int64_t v, uint64_t hi) {
    return v >= 0 && (uint64_t)v <= hi;
}
static inline int fit_u(uint64_t v, uint64_t hi) {
    return v <= hi;
}
static inline int fit_fi(double v, double lo, double hi) {
    return v > lo && v < hi; /* false for NaN */
}
static inline int fit_f32(double v) {
    return !(v > (double)FLT_MAX || v < -(double)FLT_MAX) || isinf(v); /* NaN fits */
}

/* FIT_<source kind><target kind>(v, target name): 1 if v fits. */
#define FIT_BB(v, DN) 1
#define FIT_BS(v, DN) 1
#define FIT_BU(v, DN) 1
#define FIT_BF(v, DN) 1
#define FIT_BD(v, DN) 1
#define FIT_SB(v, DN) 1
#define FIT_UB(v, DN) 1
#define FIT_FB(v, DN) 1
#define FIT_DB(v, DN) 1
#define FIT_SS(v, DN) fit_ss((int64_t)(v), ILO_##DN, IHI_##DN)
#define FIT_SU(v, DN) fit_su((int64_t)(v), IHI_##DN)
#define FIT_US(v, DN) fit_u((uint64_t)(v), IHI_##DN)
#define FIT_UU(v, DN) fit_u((uint64_t)(v), IHI_##DN)
#define FIT_SF(v, DN) 1
#define FIT_SD(v, DN) 1
#define FIT_UF(v, DN) 1
#define FIT_UD(v, DN) 1
#define FIT_FS(v, DN) fit_fi((double)(v), FLO_##DN, FHI_##DN)
#define FIT_FU(v, DN) fit_fi((double)(v), FLO_##DN, FHI_##DN)
#define FIT_DS(v, DN) fit_fi((double)(v), FLO_##DN, FHI_##DN)
#define FIT_DU(v, DN) fit_fi((double)(v), FLO_##DN, FHI_##DN)
#define FIT_FF(v, DN) 1
#define FIT_FD(v, DN) 1
#define FIT_DD(v, DN) 1
#define FIT_DF(v, DN) fit_f32((double)(v))

/* CV_<source kind><target kind>(v, target C type): the converted value (v fits). */
#define CV_TOBOOL(v)       ((uint8_t)((v) != 0))
#define CV_FROMBOOL(v, DT) ((DT)((v) != 0))
#define CV_BB(v, DT)       CV_TOBOOL(v)
#define CV_SB(v, DT)       CV_TOBOOL(v)
#define CV_UB(v, DT)       CV_TOBOOL(v)
#define CV_FB(v, DT)       CV_TOBOOL(v)
#define CV_DB(v, DT)       CV_TOBOOL(v)
#define CV_BS(v, DT)       CV_FROMBOOL(v, DT)
#define CV_BU(v, DT)       CV_FROMBOOL(v, DT)
#define CV_BF(v, DT)       CV_FROMBOOL(v, DT)
#define CV_BD(v, DT)       CV_FROMBOOL(v, DT)
#define CV_SS(v, DT)       ((DT)(v))
#define CV_SU(v, DT)       ((DT)(v))
#define CV_US(v, DT)       ((DT)(v))
#define CV_UU(v, DT)       ((DT)(v))
#define CV_SF(v, DT)       ((DT)(v))
#define CV_SD(v, DT)       ((DT)(v))
#define CV_UF(v, DT)       ((DT)(v))
#define CV_UD(v, DT)       ((DT)(v))
#define CV_FS(v, DT)       ((DT)(v))
#define CV_FU(v, DT)       ((DT)(v))
#define CV_DS(v, DT)       ((DT)(v))
#define CV_DU(v, DT)       ((DT)(v))
#define CV_FF(v, DT)       ((DT)(v))
#define CV_FD(v, DT)       ((DT)(v))
#define CV_DD(v, DT)       ((DT)(v))
#define CV_DF(v, DT)       ((DT)(v))

/* The converter of one pair: the number of leading elements converted (n if all fit). */
typedef size_t cv_fn(void *restrict dst, const void *restrict src, size_t n);

#define CV_PAIR(SN, ST, SK, DN, DT, DK)                                                            \
    static size_t cv_##SN##_##DN(void *restrict dstp, const void *restrict srcp, size_t n) {       \
        const ST *s = srcp;                                                                        \
        DT *d = dstp;                                                                              \
        int bad = 0;                                                                               \
        for (size_t i = 0; i < n; i++) bad |= !FIT_##SK##DK(s[i], DN);                             \
        size_t ok = n;                                                                             \
        if (bad)                                                                                   \
            for (ok = 0; FIT_##SK##DK(s[ok], DN); ok++) continue;                                  \
        for (size_t i = 0; i < ok; i++) d[i] = CV_##SK##DK(s[i], DT);                              \
        return ok;                                                                                 \
    }
#define CV_ROW(SN, ST, SK) CV_TYPES_DST(CV_PAIR, SN, ST, SK)
CV_TYPES_SRC(CV_ROW)

#define CV_ENTRY(SN, ST, SK, DN, DT, DK) cv_##SN##_##DN,
#define CV_TABLE_ROW(SN, ST, SK)         {CV_TYPES_DST(CV_ENTRY, SN, ST, SK)},
/* [source][target], in afmt_dtype order. */
static cv_fn *const cv_table[11][11] = {CV_TYPES_SRC(CV_TABLE_ROW)};

static int dtype_ok(afmt_dtype t) {
    return (int)t >= (int)AFMT_BOOL && (int)t <= (int)AFMT_FLOAT64;
}

int afmt__convert(void *dst, afmt_dtype dt, const void *src, afmt_dtype st, size_t n,
                  size_t *first_bad) {
    if (!dtype_ok(dt) || !dtype_ok(st)) return AFMT_EINVAL;
    size_t ok = cv_table[st][dt](dst, src, n);
    if (ok == n) return AFMT_OK;
    if (first_bad) *first_bad = ok;
    return AFMT_ERANGE;
}

void afmt__value_str(char *buf, size_t cap, const void *p, afmt_dtype t) {
    if (!cap) return;
    union {
        int8_t i8;
        int16_t i16;
        int32_t i32;
        int64_t i64;
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        float f;
        double d;
    } v;
    size_t es = t == AFMT_INT16 || t == AFMT_UINT16                        ? 2
                : t == AFMT_INT32 || t == AFMT_UINT32 || t == AFMT_FLOAT32 ? 4
                : t == AFMT_INT64 || t == AFMT_UINT64 || t == AFMT_FLOAT64 ? 8
                                                                           : 1;
    memcpy(&v, p, es);
    switch (t) {
    case AFMT_BOOL:
        snprintf(buf, cap, "%d", v.u8 != 0);
        break;
    case AFMT_INT8:
        snprintf(buf, cap, "%d", (int)v.i8);
        break;
    case AFMT_INT16:
        snprintf(buf, cap, "%d", (int)v.i16);
        break;
    case AFMT_INT32:
        snprintf(buf, cap, "%" PRId32, v.i32);
        break;
    case AFMT_INT64:
        snprintf(buf, cap, "%" PRId64, v.i64);
        break;
    case AFMT_UINT8:
        snprintf(buf, cap, "%u", (unsigned)v.u8);
        break;
    case AFMT_UINT16:
        snprintf(buf, cap, "%u", (unsigned)v.u16);
        break;
    case AFMT_UINT32:
        snprintf(buf, cap, "%" PRIu32, v.u32);
        break;
    case AFMT_UINT64:
        snprintf(buf, cap, "%" PRIu64, v.u64);
        break;
    case AFMT_FLOAT32:
        snprintf(buf, cap, "%.9g", (double)v.f);
        break;
    case AFMT_FLOAT64:
        snprintf(buf, cap, "%.17g", v.d);
        break;
    default:
        snprintf(buf, cap, "?");
        break;
    }
}

const char *afmt__dtype_range_str(afmt_dtype t) {
    static const char *const r[11] = {"[0, 1]",
                                      "[-128, 127]",
                                      "[-32768, 32767]",
                                      "[-2147483648, 2147483647]",
                                      "[-9223372036854775808, 9223372036854775807]",
                                      "[0, 255]",
                                      "[0, 65535]",
                                      "[0, 4294967295]",
                                      "[0, 18446744073709551615]",
                                      "[-3.40282347e+38, 3.40282347e+38]",
                                      "[-1.7976931348623157e+308, 1.7976931348623157e+308]"};
    return dtype_ok(t) ? r[t] : "?";
}
