/* test_abi.c - the ABI promises of afmt.h: error names and texts for every code, the
 * version macros and functions against the CMake project version, the stable dtype ids,
 * the layout of afmt_info, and the version check of afmt_codec_register. It links the
 * shared library as an application does, so it uses only what libafmt.so exports. None
 * of these calls needs MPI to be initialized. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "afmt.h"

#ifndef AFMT_EXPECT_VERSION
#error "the build passes AFMT_EXPECT_VERSION (PROJECT_VERSION of CMake)"
#endif

/* Every code with its macro's name: the table the library must reproduce. */
#define CODE(c)                                                                                    \
    { c, #c }
static const struct {
    int code;
    const char *name;
} all_codes[] = {
    CODE(AFMT_OK),        CODE(AFMT_EINVAL), CODE(AFMT_ENOTFOUND), CODE(AFMT_EEXIST),
    CODE(AFMT_ETYPE),     CODE(AFMT_ERANGE), CODE(AFMT_EIO),       CODE(AFMT_ECORRUPT),
    CODE(AFMT_EVERSION),  CODE(AFMT_ENOMEM), CODE(AFMT_ECODEC),    CODE(AFMT_EMPI),
    CODE(AFMT_EREADONLY), CODE(AFMT_ESTATE), CODE(AFMT_EBUSY),
};
#define NCODES (sizeof all_codes / sizeof all_codes[0])

/* The codes are exactly AFMT_OK, -1, ..., AFMT_E_LAST, and the table above lists each. */
static void test_code_range(void **state) {
    (void)state;
    assert_int_equal(AFMT_E_LAST, -(int)(NCODES - 1));
    for (size_t i = 0; i < NCODES; i++) assert_int_equal(all_codes[i].code, -(int)i);
}

/* Every code from AFMT_OK down to AFMT_E_LAST: its macro's name, and a text that is
 * neither empty, nor the unknown-code text, nor another code's. */
static void test_every_code(void **state) {
    (void)state;
    const char *unknown_text = afmt_strerror(AFMT_E_LAST - 1);
    const char *unknown_name = afmt_err_name(AFMT_E_LAST - 1);
    for (int c = AFMT_OK; c >= AFMT_E_LAST; c--) {
        const char *name = afmt_err_name(c), *text = afmt_strerror(c);
        assert_non_null(name);
        assert_non_null(text);
        assert_string_equal(name, all_codes[-c].name);
        assert_true(text[0] != 0);
        assert_string_not_equal(text, unknown_text);
        assert_string_not_equal(name, unknown_name);
        for (int d = c + 1; d <= AFMT_OK; d++) {
            assert_string_not_equal(text, afmt_strerror(d));
            assert_string_not_equal(name, afmt_err_name(d));
        }
    }
}

/* Values that are no code: the fixed unknown texts, never NULL, never a code's. */
static void test_out_of_range(void **state) {
    (void)state;
    const int bad[] = {AFMT_E_LAST - 1, AFMT_E_LAST - 100, 1, 42, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_string_equal(afmt_strerror(bad[i]), "unknown error code");
        assert_string_equal(afmt_err_name(bad[i]), "unknown");
    }
}

/* The generated version header, the library's functions and CMake's project version
 * agree (the header is generated from it; this proves the plumbing). */
static void test_version(void **state) {
    (void)state;
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", AFMT_VERSION_MAJOR, AFMT_VERSION_MINOR,
             AFMT_VERSION_PATCH);
    assert_string_equal(want, AFMT_EXPECT_VERSION);
    assert_string_equal(AFMT_VERSION_STRING, AFMT_EXPECT_VERSION);
    assert_string_equal(afmt_version(), AFMT_EXPECT_VERSION);
    unsigned major = 0, minor = 0, patch = 0;
    assert_int_equal(sscanf(AFMT_EXPECT_VERSION, "%u.%u.%u", &major, &minor, &patch), 3);
    assert_int_equal(AFMT_VERSION_NUMBER, major * 10000 + minor * 100 + patch);
    assert_int_equal(afmt_version_number(), AFMT_VERSION_NUMBER);
#if AFMT_VERSION_NUMBER < 100 /* usable in #if */
    fail_msg("AFMT_VERSION_NUMBER %d is below 0.1.0", AFMT_VERSION_NUMBER);
#endif
}

/* The dtype values are the on-disk ids of docs/format.md section 6. */
static void test_dtype_ids(void **state) {
    (void)state;
    const afmt_dtype t[] = {AFMT_BOOL,   AFMT_INT8,    AFMT_INT16,  AFMT_INT32,
                            AFMT_INT64,  AFMT_UINT8,   AFMT_UINT16, AFMT_UINT32,
                            AFMT_UINT64, AFMT_FLOAT32, AFMT_FLOAT64};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) assert_int_equal(t[i], (int)i);
}

/* afmt_info: sized by the limits, the fields where 0.1.0 put them, reserved room last
 * (the Fortran module mirrors this layout byte for byte). */
static void test_info_layout(void **state) {
    (void)state;
    afmt_info info;
    assert_int_equal(sizeof info.name, AFMT_MAX_NAME + 1);
    assert_int_equal(sizeof info.shape / sizeof info.shape[0], AFMT_MAX_NDIM);
    assert_int_equal(sizeof info.dims / sizeof info.dims[0], AFMT_MAX_NDIM);
    assert_int_equal(sizeof info.dims[0], AFMT_MAX_DIMNAME + 1);
    assert_int_equal(offsetof(afmt_info, name), 0);
    assert_int_equal(offsetof(afmt_info, dtype), 256);
    assert_int_equal(offsetof(afmt_info, ndim), 260);
    assert_int_equal(offsetof(afmt_info, shape), 264);
    assert_int_equal(offsetof(afmt_info, chunk), 264 + 32 * 8);
    assert_int_equal(offsetof(afmt_info, dims), 264 + 64 * 8);
    assert_int_equal(offsetof(afmt_info, reserved), 264 + 64 * 8 + 32 * 64);
    assert_int_equal(sizeof(afmt_info), 264 + 64 * 8 + 32 * 64 + 16 * 8);
}

static size_t id_bound(size_t n) {
    return n;
}
static int id_compress(const void *src, size_t n, void *dst, size_t cap, size_t *out, int level) {
    (void)level;
    if (n > cap) return 1;
    memcpy(dst, src, n);
    *out = n;
    return 0;
}
static int id_decompress(const void *src, size_t n, void *dst, size_t len) {
    if (n != len) return 1;
    memcpy(dst, src, n);
    return 0;
}

/* A descriptor of another layout version is refused with a message that says what to
 * do; the right version registers. */
static void test_codec_desc_version(void **state) {
    (void)state;
    afmt_codec_desc d = {
        AFMT_CODEC_DESC_VERSION, 4000, "abi-identity", id_bound, id_compress, id_decompress};
    const uint32_t wrong[] = {0, AFMT_CODEC_DESC_VERSION + 1, 0xffffffffu};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        afmt_codec_desc w = d;
        w.version = wrong[i];
        assert_int_equal(afmt_codec_register(&w), AFMT_EINVAL);
        const char *msg = afmt_errmsg(NULL);
        char num[32];
        snprintf(num, sizeof num, "descriptor version %u,", (unsigned)wrong[i]);
        if (!strstr(msg, num) || !strstr(msg, "AFMT_CODEC_DESC_VERSION"))
            fail_msg("message does not name the version: %s", msg);
    }
    assert_int_equal(afmt_codec_register(&d), AFMT_OK);
    /* Refused descriptors left nothing behind: the id was free until now. */
    assert_int_equal(afmt_codec_register(&d), AFMT_EEXIST);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_code_range),         cmocka_unit_test(test_every_code),
    cmocka_unit_test(test_out_of_range),       cmocka_unit_test(test_version),
    cmocka_unit_test(test_dtype_ids),          cmocka_unit_test(test_info_layout),
    cmocka_unit_test(test_codec_desc_version),
};

int main(void) {
    return cmocka_run_group_tests_name("abi", tests, NULL, NULL);
}
