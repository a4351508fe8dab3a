/* test_convert.c - afmt__convert (common/convert.h): every pair of dtypes against a
 * reference in long double, the boundary values of each class, the first value that
 * does not fit, and the message helpers. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/convert.h"
#include "common/util.h"
#include "testutil.h"

#define NT 11

static int is_int(afmt_dtype t) {
    return t >= AFMT_INT8 && t <= AFMT_UINT64;
}

/* Element i of p (dtype t) as a long double (BOOL: nonzero is 1). */
static long double get_ld(const void *p, afmt_dtype t, size_t i) {
    switch (t) {
    case AFMT_BOOL:
        return ((const uint8_t *)p)[i] != 0;
    case AFMT_INT8:
        return ((const int8_t *)p)[i];
    case AFMT_INT16:
        return ((const int16_t *)p)[i];
    case AFMT_INT32:
        return ((const int32_t *)p)[i];
    case AFMT_INT64:
        return (long double)((const int64_t *)p)[i];
    case AFMT_UINT8:
        return ((const uint8_t *)p)[i];
    case AFMT_UINT16:
        return ((const uint16_t *)p)[i];
    case AFMT_UINT32:
        return ((const uint32_t *)p)[i];
    case AFMT_UINT64:
        return (long double)((const uint64_t *)p)[i];
    case AFMT_FLOAT32:
        return ((const float *)p)[i];
    default:
        return ((const double *)p)[i];
    }
}

static void range_ld(afmt_dtype t, long double *lo, long double *hi) {
    static const long double los[NT] = {
        0, -128.0L, -32768.0L, -2147483648.0L, -9223372036854775808.0L, 0, 0, 0, 0, 0, 0};
    static const long double his[NT] = {
        1,      127.0L,   32767.0L,      2147483647.0L,           9223372036854775807.0L,
        255.0L, 65535.0L, 4294967295.0L, 18446744073709551615.0L, 0,
        0};
    *lo = los[t];
    *hi = his[t];
}

/* The reference: 1 if v fits dt, and then its converted value stored at out. */
static int ref_one(long double v, afmt_dtype dt, void *out) {
    if (dt == AFMT_BOOL) {
        *(uint8_t *)out = v != 0;
        return 1;
    }
    if (is_int(dt)) {
        if (isnan(v) || isinf(v)) return 0;
        long double tv = truncl(v), lo, hi;
        range_ld(dt, &lo, &hi);
        if (tv < lo || tv > hi) return 0;
        switch (dt) {
        case AFMT_INT8:
            *(int8_t *)out = (int8_t)tv;
            break;
        case AFMT_INT16:
            *(int16_t *)out = (int16_t)tv;
            break;
        case AFMT_INT32:
            *(int32_t *)out = (int32_t)tv;
            break;
        case AFMT_INT64:
            *(int64_t *)out = (int64_t)tv;
            break;
        case AFMT_UINT8:
            *(uint8_t *)out = (uint8_t)tv;
            break;
        case AFMT_UINT16:
            *(uint16_t *)out = (uint16_t)tv;
            break;
        case AFMT_UINT32:
            *(uint32_t *)out = (uint32_t)tv;
            break;
        default:
            *(uint64_t *)out = (uint64_t)tv;
            break;
        }
        return 1;
    }
    if (dt == AFMT_FLOAT32) {
        if (!isinf(v) && fabsl(v) > (long double)FLT_MAX) return 0;
        *(float *)out = (float)v;
        return 1;
    }
    *(double *)out = (double)v;
    return 1;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* n test values of dtype t: random bit patterns (NaN, infinities, huge and tiny floats
 * among them), small integers, the type's limits, fractions. */
static void fill(void *p, afmt_dtype t, size_t n) {
    size_t es = afmt__dtype_size(t);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = next();
        uint8_t *e = (uint8_t *)p + i * es;
        switch (i % 4) {
        case 0:
            memcpy(e, &r, es);
            break; /* random bits */
        case 1: {  /* a small integer, or a fraction */
            double v = (double)((int64_t)(r % 601) - 300) / ((r >> 20) % 2 ? 1.0 : 4.0);
            if (t == AFMT_FLOAT32) {
                float fv = (float)v;
                memcpy(e, &fv, 4);
            } else if (t == AFMT_FLOAT64) {
                memcpy(e, &v, 8);
            } else {
                int64_t iv = (int64_t)v;
                if (t >= AFMT_UINT8 && iv < 0) iv = -iv;
                if (t == AFMT_BOOL) iv &= 1;
                uint64_t u = (uint64_t)iv; /* little-endian host: the low bytes */
                memcpy(e, &u, es);
            }
            break;
        }
        case 2:
            memset(e, 0xFF, es);
            break; /* -1, the unsigned maximum, NaN */
        default: { /* the top of the range, either sign */
            uint64_t u = (r & 1) ? ~(uint64_t)0 >> 1 : (uint64_t)1 << 63;
            if (t == AFMT_FLOAT32) {
                float fv = (r & 1) ? FLT_MAX : -FLT_MAX;
                memcpy(e, &fv, 4);
            } else if (t == AFMT_FLOAT64) {
                double dv = (r & 2) ? 0x1p63 : (r & 1) ? -0x1p63 : 1e300;
                memcpy(e, &dv, 8);
            } else {
                memcpy(e, (uint8_t *)&u + (8 - es), es); /* the high bytes */
            }
        }
        }
    }
}

static int same_elem(const void *a, const void *b, afmt_dtype t) {
    if (t == AFMT_FLOAT32) {
        float x, y;
        memcpy(&x, a, 4);
        memcpy(&y, b, 4);
        if (isnan(x) || isnan(y)) return isnan(x) && isnan(y);
    } else if (t == AFMT_FLOAT64) {
        double x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (isnan(x) || isnan(y)) return isnan(x) && isnan(y);
    }
    return !memcmp(a, b, afmt__dtype_size(t));
}

/* Every pair of dtypes on every value of fill(): the result is the reference's, and the
 * first bad index is the reference's first value that does not fit. */
static void test_all_pairs(void **state) {
    (void)state;
    if (LDBL_MANT_DIG < 64 || afmt__host_is_big_endian()) skip();
    enum { N = 4001 };
    uint8_t *src = malloc(N * 8), *dst = malloc(N * 8), *want = malloc(8);
    assert_non_null(src);
    assert_non_null(dst);
    assert_non_null(want);
    for (int s = 0; s < NT; s++) {
        for (int round = 0; round < 3; round++) {
            fill(src, (afmt_dtype)s, N);
            for (int d = 0; d < NT; d++) {
                size_t es = afmt__dtype_size((afmt_dtype)s), ed = afmt__dtype_size((afmt_dtype)d);
                /* Convert from every start so that each bad value is the first once. */
                size_t from = 0;
                while (from < N) {
                    size_t n = N - from, bad = (size_t)-1, want_bad = n;
                    for (size_t i = 0; i < n; i++)
                        if (!ref_one(get_ld(src + (from + i) * es, (afmt_dtype)s, 0), (afmt_dtype)d,
                                     want)) {
                            want_bad = i;
                            break;
                        }
                    memset(dst, 0xA5, n * ed);
                    int rc =
                        afmt__convert(dst, (afmt_dtype)d, src + from * es, (afmt_dtype)s, n, &bad);
                    if (want_bad == n) {
                        if (rc != AFMT_OK)
                            fail_msg("%s -> %s from %zu: rc %d bad %zu, want all to fit",
                                     afmt__dtype_name((afmt_dtype)s),
                                     afmt__dtype_name((afmt_dtype)d), from, rc, bad);
                    } else if (rc != AFMT_ERANGE || bad != want_bad) {
                        char v[64];
                        afmt__value_str(v, sizeof v, src + (from + want_bad) * es, (afmt_dtype)s);
                        fail_msg("%s -> %s from %zu: rc %d bad %zu, want ERANGE at %zu (%s)",
                                 afmt__dtype_name((afmt_dtype)s), afmt__dtype_name((afmt_dtype)d),
                                 from, rc, bad, want_bad, v);
                    }
                    for (size_t i = 0; i < want_bad; i++) {
                        ref_one(get_ld(src + (from + i) * es, (afmt_dtype)s, 0), (afmt_dtype)d,
                                want);
                        if (!same_elem(dst + i * ed, want, (afmt_dtype)d)) {
                            char v[64], g[64], w[64];
                            afmt__value_str(v, sizeof v, src + (from + i) * es, (afmt_dtype)s);
                            afmt__value_str(g, sizeof g, dst + i * ed, (afmt_dtype)d);
                            afmt__value_str(w, sizeof w, want, (afmt_dtype)d);
                            fail_msg("%s -> %s: %s gave %s, want %s",
                                     afmt__dtype_name((afmt_dtype)s),
                                     afmt__dtype_name((afmt_dtype)d), v, g, w);
                        }
                    }
                    for (size_t i = want_bad * ed; i < n * ed; i++)
                        if (dst[i] != 0xA5) fail_msg("written past the first bad value");
                    from += want_bad + 1;
                }
            }
        }
    }
    free(src);
    free(dst);
    free(want);
}

#define CONV_OK(dst, dt, src, st, n)                                                               \
    assert_int_equal(afmt__convert(dst, dt, src, st, n, NULL), AFMT_OK)
#define CONV_BAD(dst, dt, src, st, n, at)                                                          \
    do {                                                                                           \
        size_t bad_ = (size_t)-1;                                                                  \
        assert_int_equal(afmt__convert(dst, dt, src, st, n, &bad_), AFMT_ERANGE);                  \
        assert_int_equal(bad_, at);                                                                \
    } while (0)

static void test_integers(void **state) {
    (void)state;
    const int8_t i8[2] = {INT8_MIN, INT8_MAX};
    uint8_t u8[3];
    int64_t i64[3];
    CONV_BAD(u8, AFMT_UINT8, i8, AFMT_INT8, 2, 0);
    CONV_OK(i64, AFMT_INT64, i8, AFMT_INT8, 2);
    assert_true(i64[0] == INT8_MIN && i64[1] == INT8_MAX);
    const int16_t i16[3] = {127, -128, 128};
    int8_t o8[3];
    CONV_BAD(o8, AFMT_INT8, i16, AFMT_INT16, 3, 2);
    assert_true(o8[0] == 127 && o8[1] == -128);
    const uint64_t u64[2] = {(uint64_t)INT64_MAX, UINT64_MAX};
    CONV_BAD(i64, AFMT_INT64, u64, AFMT_UINT64, 2, 1);
    assert_true(i64[0] == INT64_MAX);
    const int64_t big[2] = {INT64_MIN, -1};
    uint64_t o64[2];
    CONV_BAD(o64, AFMT_UINT64, big, AFMT_INT64, 2, 0);
    const int32_t i32[3] = {0, 255, 256};
    CONV_BAD(u8, AFMT_UINT8, i32, AFMT_INT32, 3, 2);
    assert_true(u8[0] == 0 && u8[1] == 255);
}

static void test_floats_to_integers(void **state) {
    (void)state;
    /* Truncation toward zero; the exclusive bounds of each range. */
    const double d[] = {-0.9, 255.9, 2.5, -2.5};
    uint8_t u8[4];
    int8_t i8[4];
    CONV_BAD(u8, AFMT_UINT8, d, AFMT_FLOAT64, 4, 3);
    assert_true(u8[0] == 0 && u8[1] == 255 && u8[2] == 2);
    CONV_BAD(i8, AFMT_INT8, d, AFMT_FLOAT64, 4, 1);
    const double m1 = -1.0, u256 = 256.0;
    CONV_BAD(u8, AFMT_UINT8, &m1, AFMT_FLOAT64, 1, 0);
    CONV_BAD(u8, AFMT_UINT8, &u256, AFMT_FLOAT64, 1, 0);
    const double i32v[3] = {2147483647.5, -2147483648.9, -2147483649.0};
    int32_t i32[3];
    CONV_BAD(i32, AFMT_INT32, i32v, AFMT_FLOAT64, 3, 2);
    assert_true(i32[0] == INT32_MAX && i32[1] == INT32_MIN);
    const double i64v[2] = {-0x1p63, 0x1p63};
    int64_t i64[2];
    CONV_BAD(i64, AFMT_INT64, i64v, AFMT_FLOAT64, 2, 1);
    assert_true(i64[0] == INT64_MIN);
    const double u64v[2] = {0x1.fffffffffffffp63, 0x1p64}; /* the last double below 2^64 */
    uint64_t u64[2];
    CONV_BAD(u64, AFMT_UINT64, u64v, AFMT_FLOAT64, 2, 1);
    assert_true(u64[0] == 18446744073709549568ull);
    const float f[4] = {1.5f, NAN, INFINITY, -INFINITY};
    int32_t o[4];
    CONV_BAD(o, AFMT_INT32, f, AFMT_FLOAT32, 4, 1);
    assert_int_equal(o[0], 1);
    CONV_BAD(o, AFMT_INT32, f + 2, AFMT_FLOAT32, 2, 0);
    CONV_BAD(o, AFMT_INT32, f + 3, AFMT_FLOAT32, 1, 0);
}

static void test_to_floats(void **state) {
    (void)state;
    /* Integers round to nearest: 2^53 + 1 is not a double. */
    const int64_t i[3] = {((int64_t)1 << 53) + 1, INT64_MIN, INT64_MAX};
    double d[3];
    CONV_OK(d, AFMT_FLOAT64, i, AFMT_INT64, 3);
    assert_true(d[0] == 0x1p53 && d[1] == -0x1p63 && d[2] == 0x1p63);
    const uint64_t umax = UINT64_MAX;
    float f;
    CONV_OK(&f, AFMT_FLOAT32, &umax, AFMT_UINT64, 1);
    assert_true(f == 0x1p64f);
    const int32_t i24 = (1 << 24) + 1;
    CONV_OK(&f, AFMT_FLOAT32, &i24, AFMT_INT32, 1);
    assert_true(f == 0x1p24f);
    /* float64 -> float32: FLT_MAX fits, beyond it does not; NaN, infinities, tiny kept. */
    const double dv[6] = {(double)FLT_MAX, NAN, -INFINITY, 1e-50, 0.1, 1e39};
    float fo[6];
    CONV_BAD(fo, AFMT_FLOAT32, dv, AFMT_FLOAT64, 6, 5);
    assert_true(fo[0] == FLT_MAX && isnan(fo[1]) && isinf(fo[2]) && fo[2] < 0 && fo[3] == 0.0f &&
                fo[4] == 0.1f);
    const double neg = -1e39, dmax = DBL_MAX;
    CONV_BAD(fo, AFMT_FLOAT32, &neg, AFMT_FLOAT64, 1, 0);
    CONV_BAD(fo, AFMT_FLOAT32, &dmax, AFMT_FLOAT64, 1, 0);
    const float fv[2] = {FLT_MAX, NAN};
    CONV_OK(d, AFMT_FLOAT64, fv, AFMT_FLOAT32, 2);
    assert_true(d[0] == (double)FLT_MAX && isnan(d[1]));
}

static void test_bool(void **state) {
    (void)state;
    const uint8_t b[3] = {0, 1, 7}; /* a stored byte other than 0 is true */
    int32_t i[3];
    CONV_OK(i, AFMT_INT32, b, AFMT_BOOL, 3);
    assert_true(i[0] == 0 && i[1] == 1 && i[2] == 1);
    uint8_t o[4];
    CONV_OK(o, AFMT_BOOL, b, AFMT_BOOL, 3);
    assert_true(o[0] == 0 && o[1] == 1 && o[2] == 1);
    const double d[4] = {0.0, -0.0, NAN, -3.5};
    CONV_OK(o, AFMT_BOOL, d, AFMT_FLOAT64, 4);
    assert_true(o[0] == 0 && o[1] == 0 && o[2] == 1 && o[3] == 1);
    const int64_t big = INT64_MIN;
    CONV_OK(o, AFMT_BOOL, &big, AFMT_INT64, 1);
    assert_int_equal(o[0], 1);
}

static void test_misc(void **state) {
    (void)state;
    int32_t x = 5, y = 0;
    assert_int_equal(afmt__convert(&y, (afmt_dtype)11, &x, AFMT_INT32, 1, NULL), AFMT_EINVAL);
    assert_int_equal(afmt__convert(&y, AFMT_INT32, &x, (afmt_dtype)-1, 1, NULL), AFMT_EINVAL);
    CONV_OK(&y, AFMT_INT32, &x, AFMT_INT32, 1);
    assert_int_equal(y, 5);
    CONV_OK(&y, AFMT_INT32, &x, AFMT_FLOAT64, 0); /* nothing to do */
    char s[64];
    const int64_t m = INT64_MIN;
    afmt__value_str(s, sizeof s, &m, AFMT_INT64);
    assert_string_equal(s, "-9223372036854775808");
    const uint64_t u = UINT64_MAX;
    afmt__value_str(s, sizeof s, &u, AFMT_UINT64);
    assert_string_equal(s, "18446744073709551615");
    const double d = 1e300;
    afmt__value_str(s, sizeof s, &d, AFMT_FLOAT64);
    assert_string_equal(s, "1.0000000000000001e+300");
    const float nan = NAN;
    afmt__value_str(s, sizeof s, &nan, AFMT_FLOAT32);
    assert_string_equal(s, "nan");
    assert_string_equal(afmt__dtype_range_str(AFMT_UINT8), "[0, 255]");
    assert_string_equal(afmt__dtype_range_str(AFMT_INT32), "[-2147483648, 2147483647]");
    assert_string_equal(afmt__dtype_range_str((afmt_dtype)12), "?");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_all_pairs),
    cmocka_unit_test(test_integers),
    cmocka_unit_test(test_floats_to_integers),
    cmocka_unit_test(test_to_floats),
    cmocka_unit_test(test_bool),
    cmocka_unit_test(test_misc),
};

TU_MAIN("convert", tests)
