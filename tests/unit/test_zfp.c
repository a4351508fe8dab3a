/* test_zfp.c - the ZFP codec (codec/zfp.c) and the codec parameters of array records
 * (format/codec_params.c): round trips of 1 to 6 dimensional chunks and scalars in every
 * mode, reversible int32 and int64 over their whole range, the accuracy bound on every value,
 * reversible exactness (NaN, infinities, -0 included), the stored bytes decoded from their header
 * alone through the codec table, damaged and crafted streams refused without reading past them, and
 * the parameters' layout (put/get, refused layouts). Skipped where the library has no ZFP. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/zfp.h"
#include "common/error.h"
#include "format/codec_params.h"
#include "testutil.h"

static double smooth(uint64_t i, uint64_t n) {
    double x = (double)i / (double)n;
    return 300.0 + 50.0 * sin(6.0 * x) + 20.0 * cos(17.0 * x * x);
}

/* Compresses n values of dtype t (a field of ndim dims, ext) in mode/param and decodes
 * them back through the codec table; returns the max abs error, -1 on failure. */
static double round_trip(afmt_dtype t, int ndim, const uint64_t *ext, int mode, double param,
                         const void *vals, void *back, size_t *stored) {
    afmt_zfp_field z;
    memset(&z, 0, sizeof z);
    z.mode = mode;
    z.param = param;
    z.dtype = t;
    z.ndim = ndim;
    uint64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (z.extent[d] = ext[d]);
    size_t es = t == AFMT_FLOAT32 ? 4 : 8, bound = afmt__zfp_bound(&z);
    assert_true(bound > 0);
    uint8_t *dst = malloc(bound);
    size_t out = 0;
    int rc = afmt__zfp_compress(&z, vals, n * es, dst, bound, &out);
    assert_int_equal(rc, AFMT_OK);
    assert_true(out > 0 && out <= bound);
    *stored = out;
    rc = afmt__codec_decompress(AFMT_CODEC_ZFP, dst, out, back, n * es);
    free(dst);
    if (rc != AFMT_OK) return -1;
    double err = 0;
    for (uint64_t i = 0; i < n; i++) {
        double a = t == AFMT_FLOAT32 ? (double)((const float *)vals)[i] : ((const double *)vals)[i];
        double b = t == AFMT_FLOAT32 ? (double)((const float *)back)[i] : ((const double *)back)[i];
        if (fabs(a - b) > err) err = fabs(a - b);
    }
    return err;
}

static void test_modes_and_shapes(void **state) {
    (void)state;
    if (!afmt__zfp_available()) skip();
    static const uint64_t shapes[][6] = {
        {1}, {37}, {9, 13}, {5, 6, 7}, {3, 4, 5, 6}, {2, 3, 4, 5, 6}, {2, 2, 3, 4, 5, 3}};
    static const int ndims[] = {0, 1, 2, 3, 4, 5, 6};
    for (size_t k = 0; k < sizeof ndims / sizeof ndims[0]; k++)
        for (int t = 0; t < 2; t++) {
            afmt_dtype dt = t ? AFMT_FLOAT64 : AFMT_FLOAT32;
            uint64_t n = 1;
            for (int d = 0; d < ndims[k]; d++) n *= shapes[k][d];
            double *v64 = malloc(n * 8), *b64 = malloc(n * 8);
            float *v32 = (float *)v64;
            for (uint64_t i = 0; i < n; i++) {
                if (dt == AFMT_FLOAT64)
                    v64[i] = smooth(i, n);
                else
                    v32[i] = (float)smooth(i, n);
            }
            size_t st = 0;
            /* Tolerances 1e-1, 1e-3, 1e-5 (float64): below a float32's spacing near 300
             * (3e-5) no decoded float32 can meet one, which afmt_opts_set_check_bounds
             * catches (test_lossy.c). */
            for (int e = 1; e <= (dt == AFMT_FLOAT64 ? 5 : 3); e += 2) {
                double tol = pow(10.0, -e);
                double err =
                    round_trip(dt, ndims[k], shapes[k], AFMT_ZFP_ACCURACY, tol, v64, b64, &st);
                if (err < 0 || err > tol)
                    fail_msg("ndim %d %s accuracy %g: max error %g", ndims[k], afmt__dtype_name(dt),
                             tol, err);
            }
            double err = round_trip(dt, ndims[k], shapes[k], AFMT_ZFP_REVERSIBLE, 0, v64, b64, &st);
            assert_true(err == 0);
            assert_memory_equal(v64, b64, n * (dt == AFMT_FLOAT64 ? 8 : 4));
            assert_true(
                round_trip(dt, ndims[k], shapes[k], AFMT_ZFP_PRECISION, 20, v64, b64, &st) >= 0);
            size_t rate_st = 0;
            assert_true(round_trip(dt, ndims[k], shapes[k], AFMT_ZFP_RATE, 8, v64, b64, &rate_st) >=
                        0);
            free(v64);
            free(b64);
        }
}

/* Reversible keeps every bit, special values included. */
static void test_reversible_specials(void **state) {
    (void)state;
    if (!afmt__zfp_available()) skip();
    double v[64], b[64];
    for (int i = 0; i < 64; i++) v[i] = smooth((uint64_t)i, 64);
    v[3] = NAN;
    v[7] = INFINITY;
    v[8] = -INFINITY;
    v[9] = -0.0;
    v[10] = 1e-310; /* subnormal */
    v[11] = 1.7976931348623157e308;
    uint64_t ext[1] = {64};
    size_t st = 0;
    (void)round_trip(AFMT_FLOAT64, 1, ext, AFMT_ZFP_REVERSIBLE, 0, v, b, &st);
    assert_memory_equal(v, b, sizeof v);
}

/* Reversible on int32 and int64: every value back, the whole range included. */
static void test_reversible_ints(void **state) {
    (void)state;
    if (!afmt__zfp_available()) skip();
    int32_t a[256], a2[256];
    int64_t b[256], b2[256];
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 256; i++) {
        h = h * 6364136223846793005ull + 1442695040888963407ull; /* any bits */
        int32_t r32;
        int64_t r64;
        memcpy(&r32, &h, sizeof r32);
        memcpy(&r64, &h, sizeof r64);
        a[i] = i % 3 == 0 ? INT32_MAX - i : i % 3 == 1 ? INT32_MIN + i : r32;
        b[i] = i % 3 == 0 ? INT64_MAX - i : i % 3 == 1 ? INT64_MIN + i : r64;
    }
    for (int t = 0; t < 2; t++) {
        afmt_zfp_field z;
        memset(&z, 0, sizeof z);
        z.mode = AFMT_ZFP_REVERSIBLE;
        z.dtype = t ? AFMT_INT64 : AFMT_INT32;
        z.ndim = 2;
        z.extent[0] = 16;
        z.extent[1] = 16;
        void *src = t ? (void *)b : (void *)a, *dst = t ? (void *)b2 : (void *)a2;
        size_t raw = t ? sizeof b : sizeof a, cap = afmt__zfp_bound(&z), n = 0;
        uint8_t *s = malloc(cap);
        assert_int_equal(afmt__zfp_compress(&z, src, raw, s, cap, &n), AFMT_OK);
        assert_int_equal(afmt__codec_decompress(AFMT_CODEC_ZFP, s, n, dst, raw), AFMT_OK);
        assert_memory_equal(src, dst, raw);
        free(s);
    }
}

/* Bad stored bytes: ECORRUPT, never a crash or a read past them (ASan watches). */
static void test_damage(void **state) {
    (void)state;
    if (!afmt__zfp_available()) skip();
    enum { N = 4096 };
    double *v = malloc(N * 8), *b = malloc(N * 8);
    for (int i = 0; i < N; i++) v[i] = smooth((uint64_t)i, N);
    afmt_zfp_field z;
    memset(&z, 0, sizeof z);
    z.mode = AFMT_ZFP_ACCURACY;
    z.param = 1e-6;
    z.dtype = AFMT_FLOAT64;
    z.ndim = 2;
    z.extent[0] = 64;
    z.extent[1] = 64;
    size_t cap = afmt__zfp_bound(&z), n = 0;
    uint8_t *s = malloc(cap), *t = malloc(cap);
    assert_int_equal(afmt__zfp_compress(&z, v, N * 8, s, cap, &n), AFMT_OK);
    /* The wrong raw size, a short or empty stream, garbage, a header of another size. */
    assert_int_equal(afmt__codec_decompress(AFMT_CODEC_ZFP, s, n, b, N * 8 - 8), AFMT_ECORRUPT);
    assert_int_equal(afmt__codec_decompress(AFMT_CODEC_ZFP, s, 0, b, N * 8), AFMT_ECORRUPT);
    assert_int_equal(afmt__codec_decompress(AFMT_CODEC_ZFP, s, 5, b, N * 8), AFMT_ECORRUPT);
    uint8_t junk[64];
    for (int i = 0; i < 64; i++) junk[i] = (uint8_t)(i * 37 + 11);
    assert_int_equal(afmt__codec_decompress(AFMT_CODEC_ZFP, junk, sizeof junk, b, N * 8),
                     AFMT_ECORRUPT);
    /* Every truncation and a flipped bit in every byte of the first 64: never a crash; a
     * flip in the compressed bits may decode (ZFP has no checksum: the block's XXH3 in the
     * file catches it first), a damaged header or short stream does not. */
    for (size_t cut = 0; cut < n; cut += 8)
        (void)afmt__codec_decompress(AFMT_CODEC_ZFP, s, cut, b, N * 8);
    for (size_t i = 0; i < 64 && i < n; i++) {
        memcpy(t, s, n);
        t[i] ^= 0x40;
        (void)afmt__codec_decompress(AFMT_CODEC_ZFP, t, n, b, N * 8);
    }
    /* The intact stream still decodes, within its bound. */
    assert_int_equal(afmt__codec_decompress(AFMT_CODEC_ZFP, s, n, b, N * 8), AFMT_OK);
    for (int i = 0; i < N; i++) assert_true(fabs(v[i] - b[i]) <= 1e-6);
    free(v);
    free(b);
    free(s);
    free(t);
}

static void test_params_layout(void **state) {
    (void)state;
    afmt_array_rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.name, sizeof r.name, "t");
    afmt_codec_setting s = {AFMT_CODEC_ZFP, 0, AFMT_FILTER_NONE, 0, AFMT_ZFP_ACCURACY, 1e-4}, g;
    char why[AFMT_ERRMSG_MAX];
    afmt__codec_setting_put(&s, &r);
    assert_int_equal(r.codec, AFMT_CODEC_ZFP);
    assert_int_equal(r.params_len, AFMT_CODEC_PARAMS_SIZE);
    /* Little-endian, as format.md 6 lays it out. */
    static const uint8_t want[32] = {1, 0, 0,    0,    0,    0,    0,    0,    0,    0,   0,
                                     0, 0, 0,    0,    0,    1,    0,    0,    0,    0,   0,
                                     0, 0, 0x2d, 0x43, 0x1c, 0xeb, 0xe2, 0x36, 0x1a, 0x3f};
    assert_memory_equal(r.params, want, 32);
    assert_int_equal(afmt__codec_setting_get(&r, &g, why), AFMT_OK);
    assert_true(g.codec == AFMT_CODEC_ZFP && g.zfp_mode == AFMT_ZFP_ACCURACY &&
                g.zfp_param == 1e-4);
    afmt_codec_setting b = {AFMT_CODEC_ZSTD, 5, AFMT_FILTER_BITROUND, 10, 0, 0};
    afmt__codec_setting_put(&b, &r);
    assert_int_equal(afmt__codec_setting_get(&r, &g, why), AFMT_OK);
    assert_true(g.codec == AFMT_CODEC_ZSTD && g.level == 5 && g.keepbits == 10);
    /* Refused: another layout, a length other than 32, ZFP without a mode, bit rounding
     * without bits; no setting at all is the default. */
    r.params[0] = 2;
    assert_int_equal(afmt__codec_setting_get(&r, &g, why), AFMT_ECORRUPT);
    assert_non_null(strstr(why, "\"t\""));
    afmt__codec_setting_put(&b, &r);
    r.params_len = 31;
    assert_int_equal(afmt__codec_setting_get(&r, &g, why), AFMT_ECORRUPT);
    afmt__codec_setting_put(&b, &r);
    r.params[12] = 0;
    assert_int_equal(afmt__codec_setting_get(&r, &g, why), AFMT_ECORRUPT);
    afmt_codec_setting z = s;
    z.zfp_mode = 0;
    afmt__codec_setting_put(&z, &r);
    assert_int_equal(afmt__codec_setting_get(&r, &g, why), AFMT_ECORRUPT);
    afmt_codec_setting u = {AFMT_CODEC_UNSET, 0, 0, 0, 0, 0};
    afmt__codec_setting_put(&u, &r);
    assert_int_equal(r.params_len, 0);
    assert_int_equal(afmt__codec_setting_get(&r, &g, why), AFMT_OK);
    assert_int_equal(g.codec, AFMT_CODEC_UNSET);
}

static void test_check(void **state) {
    (void)state;
    const char *why = NULL;
    assert_int_equal(afmt__zfp_check(AFMT_ZFP_ACCURACY, 0, &why), AFMT_EINVAL);
    assert_int_equal(afmt__zfp_check(AFMT_ZFP_ACCURACY, -1, &why), AFMT_EINVAL);
    assert_int_equal(afmt__zfp_check(AFMT_ZFP_ACCURACY, INFINITY, &why), AFMT_EINVAL);
    assert_int_equal(afmt__zfp_check(AFMT_ZFP_ACCURACY, NAN, &why), AFMT_EINVAL);
    assert_int_equal(afmt__zfp_check(AFMT_ZFP_PRECISION, 0, &why), AFMT_EINVAL);
    assert_int_equal(afmt__zfp_check(AFMT_ZFP_PRECISION, 65, &why), AFMT_EINVAL);
    assert_int_equal(afmt__zfp_check(AFMT_ZFP_PRECISION, 2.5, &why), AFMT_EINVAL);
    assert_int_equal(afmt__zfp_check(AFMT_ZFP_RATE, 0, &why), AFMT_EINVAL);
    assert_int_equal(afmt__zfp_check(9, 1, &why), AFMT_EINVAL);
    assert_non_null(strstr(why, "unknown ZFP mode"));
    assert_int_equal(afmt__zfp_check(AFMT_ZFP_ACCURACY, 1e-9, &why), AFMT_OK);
    assert_int_equal(afmt__zfp_check(AFMT_ZFP_REVERSIBLE, -5, &why), AFMT_OK);
    assert_string_equal(afmt__codec_name(AFMT_CODEC_ZFP), "zfp");
    assert_int_equal(afmt__codec_known(AFMT_CODEC_ZFP), afmt__zfp_available());
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modes_and_shapes), cmocka_unit_test(test_reversible_specials),
        cmocka_unit_test(test_reversible_ints),  cmocka_unit_test(test_damage),
        cmocka_unit_test(test_params_layout),    cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests_name("zfp", tests, NULL, NULL);
}
