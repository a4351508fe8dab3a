/* test_read_as.c - reads into another dtype: afmt_read_as of int32 and float64 arrays
 * with edge chunks into int64, float32, float64 and uint8, whole and in small pieces (the
 * piece size hook), against a reference conversion; AFMT_ERANGE naming the array, the
 * element and the value; afmt_get_attr converting int32 to int64 and float64 to float32,
 * and its ERANGE; the capacity ERANGE still told apart by its message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/read_as.h"
#include "testutil.h"

enum { R = 13, C = 11, D0 = 5, D1 = 7, D2 = 6 };

static int32_t ival(uint64_t i) {
    return (int32_t)((i * 1000003u) % 4000001u) - 2000000;
}
static int32_t sval(uint64_t i) {
    return (int32_t)(i % 201u); /* fits uint8 */
}
static double dval(uint64_t i) {
    return i == 100 ? NAN : (double)i * 0.37 - 40.0;
}

/* "i" (int32 13 x 11, chunks 4 x 3), "s" (int32, the same, values in [0, 200]) and "d"
 * (float64 5 x 7 x 6, chunks 2 x 3 x 4, a NaN at linear index 100), written by rank 0,
 * committed. */
static afmt_file *make_file(const char *path) {
    afmt_file *f;
    const uint64_t s2[2] = {R, C}, c2[2] = {4, 3}, s3[3] = {D0, D1, D2}, c3[3] = {2, 3, 4};
    TU_OK(NULL, afmt_create(MPI_COMM_WORLD, path, 0, NULL, &f));
    TU_OK(f, afmt_define(f, "i", AFMT_INT32, 2, s2, c2, NULL, NULL));
    TU_OK(f, afmt_define(f, "s", AFMT_INT32, 2, s2, c2, NULL, NULL));
    TU_OK(f, afmt_define(f, "d", AFMT_FLOAT64, 3, s3, c3, NULL, NULL));
    if (tu_rank() == 0) {
        int32_t iv[R * C], sv[R * C];
        double dv[D0 * D1 * D2];
        for (uint64_t k = 0; k < R * C; k++) iv[k] = ival(k), sv[k] = sval(k);
        for (uint64_t k = 0; k < D0 * D1 * D2; k++) dv[k] = dval(k);
        const uint64_t z[3] = {0, 0, 0};
        TU_OK(f, afmt_write(f, "i", z, s2, iv));
        TU_OK(f, afmt_write(f, "s", z, s2, sv));
        TU_OK(f, afmt_write(f, "d", z, s3, dv));
    }
    TU_OK(f, afmt_commit(f));
    return f;
}

/* Checks the 2-d box (st, ct) of an int32 array (values val) read as t. */
static void check_i2(afmt_file *f, const char *name, int32_t (*val)(uint64_t), const uint64_t *st,
                     const uint64_t *ct, afmt_dtype t) {
    size_t n = (size_t)(ct[0] * ct[1]);
    void *buf = malloc(n * 8);
    assert_non_null(buf);
    TU_OK(f, afmt_read_as(f, name, st, ct, t, buf));
    for (size_t k = 0; k < n; k++) {
        uint64_t g = (st[0] + k / ct[1]) * C + st[1] + k % ct[1];
        int32_t v = val(g);
        switch (t) {
        case AFMT_INT64:
            assert_true(((int64_t *)buf)[k] == v);
            break;
        case AFMT_FLOAT32:
            assert_true(((float *)buf)[k] == (float)v);
            break;
        case AFMT_FLOAT64:
            assert_true(((double *)buf)[k] == (double)v);
            break;
        case AFMT_UINT8:
            assert_true(((uint8_t *)buf)[k] == (uint8_t)v);
            break;
        case AFMT_INT32:
            assert_true(((int32_t *)buf)[k] == v);
            break;
        default:
            fail_msg("dtype %d not checked here", (int)t);
        }
    }
    free(buf);
}

/* Checks the 3-d box (st, ct) of "d" read as float32 or int64 (no NaN in the box). */
static void check_d3(afmt_file *f, const uint64_t *st, const uint64_t *ct, afmt_dtype t) {
    size_t n = (size_t)(ct[0] * ct[1] * ct[2]);
    void *buf = malloc(n * 8);
    assert_non_null(buf);
    TU_OK(f, afmt_read_as(f, "d", st, ct, t, buf));
    for (size_t k = 0; k < n; k++) {
        uint64_t a = st[0] + k / (ct[1] * ct[2]), b = st[1] + k / ct[2] % ct[1],
                 c = st[2] + k % ct[2];
        double v = dval((a * D1 + b) * D2 + c);
        if (t == AFMT_FLOAT32) {
            float got = ((float *)buf)[k];
            assert_true(isnan(v) ? isnan(got) : got == (float)v);
        } else {
            assert_true(((int64_t *)buf)[k] == (int64_t)v); /* truncated toward zero */
        }
    }
    free(buf);
}

static void test_read_as(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "readas");
    afmt_file *f = make_file(path);
    int r = tu_rank();
    /* Each rank its own box, edge chunks included. */
    const uint64_t st[2] = {(uint64_t)r % 4, (uint64_t)(r * 2) % 5}, ct[2] = {R - st[0], C - st[1]};
    const uint64_t pieces[] = {0, 8, 3 * 4, 100, 11 * 8 + 4};
    for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
        afmt__set_read_as_piece(pieces[p]);
        check_i2(f, "i", ival, st, ct, AFMT_INT64);
        check_i2(f, "i", ival, st, ct, AFMT_FLOAT32);
        check_i2(f, "i", ival, st, ct, AFMT_FLOAT64);
        check_i2(f, "i", ival, st, ct, AFMT_INT32); /* the stored dtype: afmt_read */
        check_i2(f, "s", sval, st, ct, AFMT_UINT8);
        const uint64_t s3[3] = {0, 0, 0}, c3[3] = {D0, D1, D2}, t3[3] = {3, 0, 1},
                       u3[3] = {2, 7, 5};
        check_d3(f, s3, c3, AFMT_FLOAT32);
        check_d3(f, t3, u3, AFMT_INT64); /* past the NaN at [2, 2, 4] */
        /* The NaN does not fit int64: the message names the array, the element, the value. */
        int64_t out[D0 * D1 * D2];
        assert_int_equal(afmt_read_as(f, "d", s3, c3, AFMT_INT64, out), AFMT_ERANGE);
        const char *m = afmt_errmsg(f);
        if (!strstr(m, "afmt_read_as(\"d\")") || !strstr(m, "element [2, 2, 4]") ||
            !strstr(m, "index 100 of") || !strstr(m, "nan") || !strstr(m, "int64"))
            fail_msg("message: %s", m);
        /* "i" into uint8: the first negative or large value, by its coordinates. */
        const uint64_t s1[2] = {1, 2}, c1[2] = {2, 9};
        uint8_t u8[18];
        assert_int_equal(afmt_read_as(f, "i", s1, c1, AFMT_UINT8, u8), AFMT_ERANGE);
        char want[128];
        snprintf(want, sizeof want, "element [1, 2] (index 0 of the selection) (%d, int32)",
                 (int)ival(1 * C + 2));
        m = afmt_errmsg(f);
        if (!strstr(m, "afmt_read_as(\"i\")") || !strstr(m, want) ||
            !strstr(m, "does not fit uint8 [0, 255]"))
            fail_msg("message: %s (want %s)", m, want);
    }
    afmt__set_read_as_piece(0);
    /* A scalar; bad arguments. */
    TU_OK(f, afmt_define(f, "sc", AFMT_FLOAT32, 0, NULL, NULL, NULL, NULL));
    float one = 2.75f;
    if (r == 0) TU_OK(f, afmt_write(f, "sc", NULL, NULL, &one));
    TU_OK(f, afmt_commit(f));
    int16_t i16 = 0;
    TU_OK(f, afmt_read_as(f, "sc", NULL, NULL, AFMT_INT16, &i16));
    assert_int_equal(i16, 2);
    assert_int_equal(afmt_read_as(f, "sc", NULL, NULL, (afmt_dtype)11, &i16), AFMT_EINVAL);
    assert_int_equal(afmt_read_as(f, "sc", NULL, NULL, AFMT_INT16, NULL), AFMT_EINVAL);
    assert_int_equal(afmt_read_as(f, "none", NULL, NULL, AFMT_INT16, &i16), AFMT_ENOTFOUND);
    const uint64_t bs[2] = {0, 0}, bc[2] = {R + 1, 1};
    int64_t i64[R + 1];
    assert_int_equal(afmt_read_as(f, "i", bs, bc, AFMT_INT64, i64), AFMT_EINVAL);
    TU_OK(f, afmt_close(f));
    tu_remove(path);
}

static void test_get_attr(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "attras");
    afmt_file *f = make_file(path);
    const int32_t steps[3] = {1, -2, 300};
    const double dts[2] = {0.25, 1e39};
    TU_OK(f, afmt_set_attr(f, "i", "steps", AFMT_INT32, 3, steps));
    TU_OK(f, afmt_set_attr(f, NULL, "dt", AFMT_FLOAT64, 2, dts));
    TU_OK(f, afmt_set_attr(f, "i", "units", AFMT_UINT8, 1, "K"));
    for (int pass = 0; pass < 2; pass++) { /* staged, then committed and reopened */
        int64_t i64[3];
        uint64_t n = 3;
        TU_OK(f, afmt_get_attr(f, "i", "steps", AFMT_INT64, &n, i64));
        assert_true(n == 3 && i64[0] == 1 && i64[1] == -2 && i64[2] == 300);
        float fl[3];
        n = 3;
        TU_OK(f, afmt_get_attr(f, "i", "steps", AFMT_FLOAT32, &n, fl));
        assert_true(fl[0] == 1.0f && fl[1] == -2.0f && fl[2] == 300.0f);
        uint8_t u8[3];
        n = 3;
        assert_int_equal(afmt_get_attr(f, "i", "steps", AFMT_UINT8, &n, u8), AFMT_ERANGE);
        const char *m = afmt_errmsg(f);
        if (!strstr(m, "afmt_get_attr(\"i\", \"steps\"): value 1 (-2, int32) does not fit "
                       "uint8 [0, 255]"))
            fail_msg("message: %s", m);
        n = 3;
        assert_int_equal(afmt_get_attr(f, NULL, "dt", AFMT_FLOAT32, &n, fl), AFMT_ERANGE);
        m = afmt_errmsg(f);
        if (!strstr(m, "afmt_get_attr(file, \"dt\"): value 1 (9.9999999999999994e+38, float64)"))
            fail_msg("message: %s", m);
        n = 1; /* the capacity's ERANGE: *n set, its own message */
        assert_int_equal(afmt_get_attr(f, NULL, "dt", AFMT_FLOAT32, &n, fl), AFMT_ERANGE);
        assert_true(n == 2 && strstr(afmt_errmsg(f), "do not fit in a capacity of 1"));
        /* A string is UINT8 bytes: read as UINT8 as stored, or converted like any bytes. */
        char s[2] = {0};
        n = 1;
        TU_OK(f, afmt_get_attr(f, "i", "units", AFMT_UINT8, &n, s));
        assert_true(n == 1 && s[0] == 'K');
        n = 1;
        TU_OK(f, afmt_get_attr(f, "i", "units", AFMT_INT64, &n, i64));
        assert_true(i64[0] == 'K');
        n = 3;
        assert_int_equal(afmt_get_attr(f, "i", "steps", (afmt_dtype)11, &n, i64), AFMT_EINVAL);
        if (pass == 0) {
            TU_OK(f, afmt_close(f));
            TU_OK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f));
        }
    }
    /* Layer provenance converts too: nranks (INT64) as INT32. */
    int32_t nr = 0;
    uint64_t one = 1;
    TU_OK(f, afmt_layer_attr(f, 0, "nranks", AFMT_INT32, &one, &nr));
    assert_int_equal(nr, tu_size());
    TU_OK(f, afmt_close(f));
    tu_remove(path);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_read_as),
    cmocka_unit_test(test_get_attr),
};

TU_MAIN("read_as", tests)
