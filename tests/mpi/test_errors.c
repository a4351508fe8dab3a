/* test_errors.c - MPI integration: every error path of the API contract returns its exact
 * code (and a useful message), never crashes, and leaves the file as it was. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define EXPECT_RC2(f, call, w1, w2)                                                                \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != (w1) && rc_ != (w2))                                                            \
            rec(__LINE__, "%s -> %d (%s), want %d or %d: %s", #call, rc_,                          \
                NSTR(afmt_strerror(rc_)), (int)(w1), (int)(w2), NSTR(afmt_errmsg(f)));             \
    } while (0)

/* The handle's message contains every one of the given strings. */
static void expect_msg(const afmt_file *f, int line, const char *a, const char *b, const char *c) {
    const char *m = afmt_errmsg(f);
    if (!m || !strstr(m, a) || (b && !strstr(m, b)) || (c && !strstr(m, c)))
        rec(line, "afmt_errmsg = \"%s\", want it to contain \"%s\" \"%s\" \"%s\"", NSTR(m), a,
            NSTR(b), NSTR(c));
}

/* COLLECTIVE: rank 0 writes n bytes of content (random if data NULL) to path. */
static void put_file(const char *path, const void *data, size_t n) {
    MPI_Barrier(MPI_COMM_WORLD);
    if (tu_rank() == 0) {
        FILE *fp = fopen(path, "wb");
        if (fp) {
            for (size_t i = 0; i < n; i++) {
                unsigned char b;
                if (data)
                    b = ((const unsigned char *)data)[i];
                else
                    tu_value(&b, 1, i, 4242);
                fputc(b, fp);
            }
            fclose(fp);
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* COLLECTIVE: afmt_open(path) must fail with want on every rank and leave *f NULL. */
static void expect_open_fails(const char *path, int want, int line) {
    afmt_file *f = (afmt_file *)&f; /* not NULL: the call must clear it */
    int rc = afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f);
    if (rc != want)
        rec(line, "afmt_open(%s) -> %d (%s), want %d: %s", path, rc, NSTR(afmt_strerror(rc)), want,
            NSTR(afmt_errmsg(NULL)));
    if (rc == AFMT_OK && f && f != (afmt_file *)&f) {
        afmt_close(f);
    } else if (f != NULL) {
        rec(line, "afmt_open(%s) failed but left *f non-NULL", path);
    }
    const char *m = afmt_errmsg(NULL);
    if (rc != AFMT_OK && (!m || !m[0])) rec(line, "afmt_open(%s): empty afmt_errmsg(NULL)", path);
}

/* NULL handle, name, buffer, start/count for ndim > 0, and other NULL outputs. */
static void test_null_args(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "er-null");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    const uint64_t shape[2] = {4, 5}, st[2] = {0, 0}, ct[2] = {2, 2};
    int32_t buf[16] = {0};
    afmt_info info;
    int n;
    uint64_t u;
    if (f) {
        EXPECT_OK(f, afmt_define(f, "a", AFMT_INT32, 2, shape, NULL, NULL, NULL));
        EXPECT_OK(f, afmt_define(f, "s", AFMT_INT32, 0, NULL, NULL, NULL, NULL));
        /* NULL handle */
        EXPECT_RC(NULL, afmt_define(NULL, "b", AFMT_INT32, 2, shape, NULL, NULL, NULL),
                  AFMT_EINVAL);
        EXPECT_RC(NULL, afmt_write(NULL, "a", st, ct, buf), AFMT_EINVAL);
        EXPECT_RC(NULL, afmt_read(NULL, "a", st, ct, buf), AFMT_EINVAL);
        EXPECT_RC(NULL, afmt_commit(NULL), AFMT_EINVAL);
        EXPECT_RC(NULL, afmt_compact(NULL), AFMT_EINVAL);
        EXPECT_RC(NULL, afmt_delete(NULL, "a"), AFMT_EINVAL);
        EXPECT_RC(NULL, afmt_count(NULL, &n), AFMT_EINVAL);
        EXPECT_RC(NULL, afmt_info_at(NULL, 0, &info), AFMT_EINVAL);
        EXPECT_RC(NULL, afmt_inquire(NULL, "a", &info), AFMT_EINVAL);
        EXPECT_RC(NULL, afmt_layers(NULL, &u), AFMT_EINVAL);
        EXPECT_RC2(NULL, afmt_close(NULL), AFMT_EINVAL, AFMT_OK);
        /* NULL name */
        EXPECT_RC(f, afmt_define(f, NULL, AFMT_INT32, 2, shape, NULL, NULL, NULL), AFMT_EINVAL);
        EXPECT_RC(f, afmt_write(f, NULL, st, ct, buf), AFMT_EINVAL);
        EXPECT_RC(f, afmt_read(f, NULL, st, ct, buf), AFMT_EINVAL);
        EXPECT_RC(f, afmt_delete(f, NULL), AFMT_EINVAL);
        EXPECT_RC(f, afmt_inquire(f, NULL, &info), AFMT_EINVAL);
        /* NULL buffers and outputs */
        EXPECT_RC(f, afmt_write(f, "a", st, ct, NULL), AFMT_EINVAL);
        EXPECT_RC(f, afmt_read(f, "a", st, ct, NULL), AFMT_EINVAL);
        EXPECT_RC(f, afmt_write(f, "s", NULL, NULL, NULL), AFMT_EINVAL);
        EXPECT_RC(f, afmt_count(f, NULL), AFMT_EINVAL);
        EXPECT_RC(f, afmt_info_at(f, 0, NULL), AFMT_EINVAL);
        EXPECT_RC(f, afmt_inquire(f, "a", NULL), AFMT_EINVAL);
        EXPECT_RC(f, afmt_layers(f, NULL), AFMT_EINVAL);
        /* NULL start/count for ndim > 0 */
        EXPECT_RC(f, afmt_write(f, "a", NULL, ct, buf), AFMT_EINVAL);
        EXPECT_RC(f, afmt_write(f, "a", st, NULL, buf), AFMT_EINVAL);
        EXPECT_RC(f, afmt_read(f, "a", NULL, ct, buf), AFMT_EINVAL);
        EXPECT_RC(f, afmt_read(f, "a", st, NULL, buf), AFMT_EINVAL);
        EXPECT_RC(f, afmt_define(f, "b", AFMT_INT32, 2, NULL, NULL, NULL, NULL), AFMT_EINVAL);
        /* NULL path / output of create and open */
        afmt_file *g = NULL;
        const char *other = tu_path(NULL, "er-null2");
        EXPECT_RC(NULL, afmt_create(MPI_COMM_WORLD, NULL, 0, NULL, &g), AFMT_EINVAL);
        EXPECT(g == NULL);
        EXPECT_RC(NULL, afmt_create(MPI_COMM_WORLD, other, AFMT_TRUNC, NULL, NULL), AFMT_EINVAL);
        EXPECT_RC(NULL, afmt_open(MPI_COMM_WORLD, NULL, AFMT_RDONLY, NULL, &g), AFMT_EINVAL);
        EXPECT_RC(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, NULL), AFMT_EINVAL);
        EXPECT(g == NULL);
        rm_path(other);
        /* the handle is intact: the scalar write works and commits */
        int32_t v = 77, out = 0;
        if (tu_rank() == 0) EXPECT_OK(f, afmt_write(f, "s", NULL, NULL, &v));
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_OK(f, afmt_read(f, "s", NULL, NULL, &out));
        EXPECT(out == 77);
        n = -1;
        EXPECT_OK(f, afmt_count(f, &n));
        EXPECT(n == 2);
        EXPECT_OK(f, afmt_close(f));
    }
    rm_path(path);
    done();
}

/* Unknown arrays; regions out of the shape with the detailed message; count 0. */
static void test_region_errors(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "er-region");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    const uint64_t shape[2] = {50, 100}, chunk[2] = {10, 10};
    int32_t *buf = calloc(50 * 100, sizeof *buf);
    afmt_info info;
    if (f) {
        EXPECT_OK(f, afmt_define(f, "temp", AFMT_INT32, 2, shape, chunk, NULL, NULL));
        uint64_t st[2] = {0, 0}, ct[2] = {1, 1};
        EXPECT_RC(f, afmt_write(f, "nope", st, ct, buf), AFMT_ENOTFOUND);
        expect_msg(f, __LINE__, "nope", NULL, NULL);
        EXPECT_RC(f, afmt_read(f, "nope", st, ct, buf), AFMT_ENOTFOUND);
        EXPECT_RC(f, afmt_inquire(f, "nope", &info), AFMT_ENOTFOUND);
        EXPECT_RC(f, afmt_delete(f, "nope"), AFMT_ENOTFOUND);
        EXPECT_RC(f, afmt_info_at(f, 1, &info), AFMT_ERANGE);
        EXPECT_RC(f, afmt_info_at(f, -1, &info), AFMT_ERANGE);
        /* start + count beyond the shape */
        st[0] = 0, st[1] = 90, ct[0] = 10, ct[1] = 20;
        EXPECT_RC(f, afmt_write(f, "temp", st, ct, buf), AFMT_EINVAL);
        expect_msg(f, __LINE__, "temp", "exceeds", NULL);
        expect_msg(f, __LINE__, "90", "20", "100");
        EXPECT_RC(f, afmt_read(f, "temp", st, ct, buf), AFMT_EINVAL);
        expect_msg(f, __LINE__, "temp", "exceeds", NULL);
        st[0] = 41, st[1] = 0, ct[0] = 10, ct[1] = 1;
        EXPECT_RC(f, afmt_write(f, "temp", st, ct, buf), AFMT_EINVAL);
        expect_msg(f, __LINE__, "temp", "exceeds", "41");
        st[0] = 50, ct[0] = 1;
        EXPECT_RC(f, afmt_write(f, "temp", st, ct, buf), AFMT_EINVAL);
        /* overflow of start + count must not wrap around */
        st[0] = UINT64_MAX, ct[0] = 2;
        EXPECT_RC(f, afmt_write(f, "temp", st, ct, buf), AFMT_EINVAL);
        EXPECT_RC(f, afmt_read(f, "temp", st, ct, buf), AFMT_EINVAL);
        st[0] = 1, ct[0] = UINT64_MAX;
        EXPECT_RC(f, afmt_write(f, "temp", st, ct, buf), AFMT_EINVAL);
        /* count 0 */
        st[0] = 0, st[1] = 0, ct[0] = 0, ct[1] = 5;
        EXPECT_RC(f, afmt_write(f, "temp", st, ct, buf), AFMT_EINVAL);
        EXPECT_RC(f, afmt_read(f, "temp", st, ct, buf), AFMT_EINVAL);
        ct[0] = 5, ct[1] = 0;
        EXPECT_RC(f, afmt_write(f, "temp", st, ct, buf), AFMT_EINVAL);
        /* nothing of this was staged: the commit writes no layer */
        EXPECT_OK(f, afmt_commit(f));
        EXPECT(layers_of(f, __LINE__) == 1); /* the definition only */
        /* the full array is fine, its last element too */
        st[0] = 0, st[1] = 0, ct[0] = 50, ct[1] = 100;
        EXPECT_OK(f, afmt_read(f, "temp", st, ct, buf));
        st[0] = 49, st[1] = 99, ct[0] = 1, ct[1] = 1;
        EXPECT_OK(f, afmt_read(f, "temp", st, ct, buf));
        EXPECT_OK(f, afmt_close(f));
    }
    free(buf);
    rm_path(path);
    done();
}

/* Every invalid definition, with the handle intact afterwards. */
static void test_define_errors(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "er-define");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    uint64_t shape[40], chunk[40];
    for (int d = 0; d < 40; d++) shape[d] = 1, chunk[d] = 1;
    char name256[257], name255[256], dim64[65], dim63[64];
    memset(name256, 'n', 256), name256[256] = 0;
    memset(name255, 'm', 255), name255[255] = 0;
    memset(dim64, 'd', 64), dim64[64] = 0;
    memset(dim63, 'e', 63), dim63[63] = 0;
    if (f) {
        EXPECT_RC(f, afmt_define(f, "x", AFMT_INT32, 33, shape, chunk, NULL, NULL), AFMT_EINVAL);
        EXPECT_RC(f, afmt_define(f, "x", AFMT_INT32, -1, shape, chunk, NULL, NULL), AFMT_EINVAL);
        EXPECT_RC(f, afmt_define(f, name256, AFMT_INT32, 1, shape, chunk, NULL, NULL), AFMT_EINVAL);
        const char *dims_bad[2] = {"ok", dim64};
        uint64_t s2[2] = {4, 4}, c2[2] = {2, 2};
        EXPECT_RC(f, afmt_define(f, "x", AFMT_INT32, 2, s2, c2, dims_bad, NULL), AFMT_EINVAL);
        const char *dims_null[2] = {"ok", NULL};
        EXPECT_RC(f, afmt_define(f, "x", AFMT_INT32, 2, s2, c2, dims_null, NULL), AFMT_EINVAL);
        s2[1] = 0;
        EXPECT_RC(f, afmt_define(f, "x", AFMT_INT32, 2, s2, NULL, NULL, NULL), AFMT_EINVAL);
        s2[1] = 4, c2[0] = 0;
        EXPECT_RC(f, afmt_define(f, "x", AFMT_INT32, 2, s2, c2, NULL, NULL), AFMT_EINVAL);
        c2[0] = 5;
        EXPECT_RC(f, afmt_define(f, "x", AFMT_INT32, 2, s2, c2, NULL, NULL), AFMT_EINVAL);
        c2[0] = 2;
        EXPECT_RC2(f, afmt_define(f, "x", (afmt_dtype)11, 2, s2, c2, NULL, NULL), AFMT_EINVAL,
                   AFMT_ETYPE);
        EXPECT_RC2(f, afmt_define(f, "x", (afmt_dtype)-1, 2, s2, c2, NULL, NULL), AFMT_EINVAL,
                   AFMT_ETYPE);
        int n = -1;
        EXPECT_OK(f, afmt_count(f, &n));
        EXPECT(n == 0);
        /* limits themselves are fine */
        EXPECT_OK(f, afmt_define(f, name255, AFMT_INT32, 32, shape, chunk, NULL, NULL));
        const char *dims_ok[2] = {dim63, "y"};
        EXPECT_OK(f, afmt_define(f, "x", AFMT_INT32, 2, s2, c2, dims_ok, NULL));
        afmt_info info;
        EXPECT_OK(f, afmt_inquire(f, "x", &info));
        EXPECT(strcmp(info.dims[0], dim63) == 0);
        EXPECT_OK(f, afmt_inquire(f, name255, &info));
        EXPECT(info.ndim == 32 && strcmp(info.name, name255) == 0);
        /* duplicate live name, also with another type/shape */
        EXPECT_RC(f, afmt_define(f, "x", AFMT_INT32, 2, s2, c2, NULL, NULL), AFMT_EEXIST);
        EXPECT_RC(f, afmt_define(f, "x", AFMT_FLOAT64, 0, NULL, NULL, NULL, NULL), AFMT_EEXIST);
        expect_msg(f, __LINE__, "x", NULL, NULL);
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_RC(f, afmt_define(f, "x", AFMT_INT32, 2, s2, c2, NULL, NULL), AFMT_EEXIST);
        /* deleted: the name is free again */
        EXPECT_OK(f, afmt_delete(f, "x"));
        EXPECT_RC(f, afmt_delete(f, "x"), AFMT_ENOTFOUND);
        EXPECT_OK(f, afmt_define(f, "x", AFMT_INT8, 1, s2, NULL, NULL, NULL));
        EXPECT_OK(f, afmt_commit(f));
        n = -1;
        EXPECT_OK(f, afmt_count(f, &n));
        EXPECT(n == 2);
        EXPECT_OK(f, afmt_close(f));
        f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
        if (f) {
            EXPECT_OK(f, afmt_inquire(f, "x", &info));
            EXPECT(info.dtype == AFMT_INT8 && info.ndim == 1 && info.shape[0] == 4);
            EXPECT_OK(f, afmt_close(f));
        }
    }
    rm_path(path);
    done();
}

/* Every write access on a read-only handle; reads still work; bad modes. */
static void test_readonly(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "er-ro");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    const uint64_t s[1] = {10};
    int16_t buf[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, out[10] = {0};
    uint64_t st = 0, ct = 10;
    if (f) {
        EXPECT_OK(f, afmt_define(f, "a", AFMT_INT16, 1, s, NULL, NULL, NULL));
        if (tu_rank() == 0) EXPECT_OK(f, afmt_write(f, "a", &st, &ct, buf));
        EXPECT_OK(f, afmt_close(f));
        long long sz = fsize(path);
        f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
        if (f) {
            EXPECT_RC(f, afmt_write(f, "a", &st, &ct, buf), AFMT_EREADONLY);
            EXPECT_RC(f, afmt_define(f, "b", AFMT_INT16, 1, s, NULL, NULL, NULL), AFMT_EREADONLY);
            EXPECT_RC(f, afmt_delete(f, "a"), AFMT_EREADONLY);
            EXPECT_RC(f, afmt_set_attr(f, NULL, "k", AFMT_INT16, 1, buf), AFMT_EREADONLY);
            EXPECT_RC(f, afmt_commit(f), AFMT_EREADONLY);
            EXPECT_RC(f, afmt_compact(f), AFMT_EREADONLY);
            EXPECT_OK(f, afmt_read(f, "a", &st, &ct, out));
            EXPECT(memcmp(out, buf, sizeof buf) == 0);
            int n = -1;
            EXPECT_OK(f, afmt_count(f, &n));
            EXPECT(n == 1);
            EXPECT_OK(f, afmt_close(f));
        }
        EXPECT(fsize(path) == sz);
        /* bad modes */
        afmt_file *g = NULL;
        EXPECT_RC(NULL, afmt_open(MPI_COMM_WORLD, path, 0, NULL, &g), AFMT_EINVAL);
        EXPECT_RC(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY | AFMT_RDWR, NULL, &g),
                  AFMT_EINVAL);
        EXPECT_RC(NULL, afmt_open(MPI_COMM_WORLD, path, 0x80, NULL, &g), AFMT_EINVAL);
        EXPECT(g == NULL);
    }
    rm_path(path);
    done();
}

/* create on an existing path: EEXIST without TRUNC (file untouched), OK with it (empty). */
static void test_create_exists(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "er-exists");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    const uint64_t s[1] = {10};
    if (f) {
        EXPECT_OK(f, afmt_define(f, "a", AFMT_INT16, 1, s, NULL, NULL, NULL));
        EXPECT_OK(f, afmt_close(f));
        long long sz = fsize(path);
        afmt_file *g = (afmt_file *)&g;
        int rc = afmt_create(MPI_COMM_WORLD, path, 0, NULL, &g);
        if (rc != AFMT_EEXIST) rec(__LINE__, "afmt_create on an existing file -> %d", rc);
        if (rc == AFMT_OK && g && g != (afmt_file *)&g)
            afmt_close(g);
        else
            EXPECT(g == NULL);
        const char *m = afmt_errmsg(NULL);
        if (!m || !strstr(m, path)) rec(__LINE__, "message \"%s\" lacks the path", NSTR(m));
        EXPECT(fsize(path) == sz);
        /* still the old file */
        g = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
        if (g) {
            int n = -1;
            EXPECT_OK(g, afmt_count(g, &n));
            EXPECT(n == 1);
            EXPECT_OK(g, afmt_close(g));
        }
        g = xopen(MPI_COMM_WORLD, path, 0, AFMT_TRUNC, NULL, __LINE__);
        if (g) {
            int n = -1;
            uint64_t nl = 99;
            EXPECT_OK(g, afmt_count(g, &n));
            EXPECT_OK(g, afmt_layers(g, &nl));
            EXPECT(n == 0 && nl == 0);
            EXPECT_OK(g, afmt_close(g));
        }
        g = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, NULL, __LINE__);
        if (g) {
            int n = -1;
            EXPECT_OK(g, afmt_count(g, &n));
            EXPECT(n == 0);
            EXPECT_OK(g, afmt_close(g));
        }
    }
    rm_path(path);
    done();
}

/* open: missing file, garbage, empty, too short, truncated inside the newest footer, or
 * inside the data. */
static void test_open_bad_files(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "er-open");
    expect_open_fails(path, AFMT_ENOTFOUND, __LINE__);
    put_file(path, NULL, 10000);
    expect_open_fails(path, AFMT_ECORRUPT, __LINE__);
    put_file(path, "", 0);
    expect_open_fails(path, AFMT_ECORRUPT, __LINE__);
    put_file(path, "AFMT", 4);
    expect_open_fails(path, AFMT_ECORRUPT, __LINE__);
    rm_path(path);

    /* a real file with two layers, the second one metadata only (footer + trailer) */
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    long long sz1 = 0, sz2 = 0;
    const uint64_t s[1] = {4096};
    if (f) {
        EXPECT_OK(f, afmt_define(f, "a", AFMT_UINT64, 1, s, NULL, NULL, NULL));
        uint64_t *buf = malloc(4096 * 8);
        for (int i = 0; i < 4096; i++) tu_value(&buf[i], 8, (uint64_t)i, 1);
        uint64_t st = 0, ct = 4096;
        if (tu_rank() == 0) EXPECT_OK(f, afmt_write(f, "a", &st, &ct, buf));
        free(buf);
        EXPECT_OK(f, afmt_commit(f));
        sz1 = fsize(path);
        char text[300];
        memset(text, 'q', sizeof text);
        EXPECT_OK(f, afmt_set_attr(f, NULL, "note", AFMT_UINT8, sizeof text, text));
        const uint64_t s2[2] = {3, 3};
        EXPECT_OK(f, afmt_define(f, "b", AFMT_INT8, 2, s2, NULL, NULL, NULL));
        EXPECT_OK(f, afmt_commit(f));
        sz2 = fsize(path);
        EXPECT_OK(f, afmt_close(f));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    EXPECT(sz2 > sz1 + 300 && sz1 > 4096 * 8);
    if (f && sz2 > sz1 + 300) {
        /* the layer-2 footer spans [sz1, sz2 - trailer): cut a third of the way in. The
         * newest slot's eof is past the end, so it is not usable; the other slot (layer 1)
         * is (format.md 3.3): the file opens as layer 1. */
        if (tu_rank() == 0) EXPECT(truncate(path, (off_t)(sz1 + (sz2 - sz1) / 3)) == 0);
        MPI_Barrier(MPI_COMM_WORLD);
        afmt_file *g = NULL;
        uint64_t nl = 0;
        afmt_info info;
        EXPECT_OK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &g));
        if (g) {
            EXPECT_OK(g, afmt_layers(g, &nl));
            EXPECT(nl == 1);
            EXPECT_OK(g, afmt_inquire(g, "a", &info));
            EXPECT(afmt_inquire(g, "b", &info) == AFMT_ENOTFOUND);
            EXPECT_OK(g, afmt_close(g));
        }
        /* cut inside layer 1's data */
        MPI_Barrier(MPI_COMM_WORLD);
        if (tu_rank() == 0) EXPECT(truncate(path, (off_t)(sz1 / 2)) == 0);
        MPI_Barrier(MPI_COMM_WORLD);
        expect_open_fails(path, AFMT_ECORRUPT, __LINE__);
    }
    rm_path(path);
    done();
}

/* Overlapping writes of two ranks in one commit: EINVAL on every rank naming the array,
 * the file unchanged (previous content and layer count after reopen). */
static void test_overlap(void **state) {
    (void)state;
    int np = tu_size(), me = tu_rank();
    if (np < 2) {
        done();
        skip();
    }
    for (int variant = 0; variant < 4; variant++) {
        const char *path = tu_path(NULL, "er-overlap");
        afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
        const uint64_t s[1] = {100}, c[1] = {10};
        int32_t base[100], mine[100], out[100], zero[100];
        for (int i = 0; i < 100; i++) base[i] = 1000 + i, mine[i] = -me - 1, zero[i] = 0;
        const char *bad = variant == 3 ? "sc" : "ovl";
        if (f) {
            EXPECT_OK(f, afmt_define(f, "ovl", AFMT_INT32, 1, s, c, NULL, NULL));
            EXPECT_OK(f, afmt_define(f, "fine", AFMT_INT32, 1, s, c, NULL, NULL));
            EXPECT_OK(f, afmt_define(f, "sc", AFMT_INT32, 0, NULL, NULL, NULL, NULL));
            uint64_t st = 0, ct = 100;
            if (me == 0) EXPECT_OK(f, afmt_write(f, "ovl", &st, &ct, base));
            if (me == 0) EXPECT_OK(f, afmt_write(f, "sc", NULL, NULL, base));
            EXPECT_OK(f, afmt_commit(f));
            /* the failing epoch also holds a definition, an attribute and fine writes */
            const uint64_t s9[1] = {9};
            EXPECT_OK(f, afmt_define(f, "newarr", AFMT_INT8, 1, s9, NULL, NULL, NULL));
            EXPECT_OK(f, afmt_set_attr(f, NULL, "k", AFMT_INT32, 1, base));
            uint64_t sf = 100 * (uint64_t)me / (uint64_t)np;
            uint64_t cf = 100 * (uint64_t)(me + 1) / (uint64_t)np - sf;
            EXPECT_OK(f, afmt_write(f, "fine", &sf, &cf, mine));
            /* variant 0: partial pieces overlapping inside chunks 2..3
             * variant 1: a full chunk (1) written by both ranks 0 and 1
             * variant 2: rank 0 full chunks [0, 40), last rank a partial piece in chunk 3
             * variant 3: a scalar written by ranks 0 and 1 */
            uint64_t s0 = 0, c0 = 0, s1 = 0, c1 = 0;
            if (variant == 0) s0 = 12, c0 = 20, s1 = 25, c1 = 15;
            if (variant == 1) s0 = 0, c0 = 20, s1 = 10, c1 = 10;
            if (variant == 2) s0 = 0, c0 = 40, s1 = 33, c1 = 2;
            int other = variant == 2 ? np - 1 : 1;
            if (variant == 3) {
                if (me == 0 || me == 1) EXPECT_OK(f, afmt_write(f, "sc", NULL, NULL, mine));
            } else {
                if (me == 0) EXPECT_OK(f, afmt_write(f, "ovl", &s0, &c0, mine));
                if (me == other) EXPECT_OK(f, afmt_write(f, "ovl", &s1, &c1, mine));
            }
            /* the other ranks write something harmless elsewhere */
            if (me != 0 && me != other) {
                uint64_t s2 = 60 + 5 * (uint64_t)me, c2 = 3;
                EXPECT_OK(f, afmt_write(f, "ovl", &s2, &c2, mine));
            }
            int rc = afmt_commit(f);
            if (rc != AFMT_EINVAL)
                rec(__LINE__, "variant %d: overlapping commit -> %d, want EINVAL", variant, rc);
            else
                expect_msg(f, __LINE__, bad, NULL, NULL);
            EXPECT(all_true(rc == AFMT_EINVAL, MPI_COMM_WORLD));
            EXPECT(layers_of(f, __LINE__) == 1);
            rc = afmt_close(f); /* may retry the commit: either fails or nothing is left */
            if (rc != AFMT_OK && rc != AFMT_EINVAL)
                rec(__LINE__, "variant %d: close after the failed commit -> %d", variant, rc);
            f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
        }
        if (f) {
            /* nothing of the failed epoch is in the file */
            EXPECT(layers_of(f, __LINE__) == 1);
            memset(out, 0, sizeof out);
            uint64_t st = 0, ct = 100;
            EXPECT_OK(f, afmt_read(f, "ovl", &st, &ct, out));
            if (memcmp(out, base, sizeof base) != 0)
                rec(__LINE__, "variant %d: content changed by a failed commit", variant);
            memset(out, 1, sizeof out);
            EXPECT_OK(f, afmt_read(f, "fine", &st, &ct, out));
            if (memcmp(out, zero, sizeof zero) != 0)
                rec(__LINE__, "variant %d: a failed commit wrote other arrays", variant);
            EXPECT_OK(f, afmt_read(f, "sc", NULL, NULL, out));
            EXPECT(out[0] == base[0]);
            int n = -1;
            EXPECT_OK(f, afmt_count(f, &n));
            EXPECT(n == 3);
            afmt_info info;
            EXPECT_RC(f, afmt_inquire(f, "newarr", &info), AFMT_ENOTFOUND);
            uint64_t na = 1;
            int32_t v;
            EXPECT_RC(f, afmt_get_attr(f, NULL, "k", AFMT_INT32, &na, &v), AFMT_ENOTFOUND);
            EXPECT_OK(f, afmt_close(f));
        }
        if (g_nfail) rec(__LINE__, "(in overlap variant %d)", variant);
        rm_path(path);
    }
    done();
}

/* The last error code: AFMT_E_LAST once the header names it, AFMT_EBUSY before. */
#ifdef AFMT_E_LAST
#define LAST_CODE AFMT_E_LAST
#else
#define LAST_CODE AFMT_EBUSY
#endif
#define NCODES (1 - LAST_CODE) /* AFMT_OK and every AFMT_E* code */

/* afmt_strerror: non-empty, distinct, and not the text of an unknown code, for every code
 * from AFMT_OK to the last one (AFMT_EBUSY included). */
static void test_messages(void **state) {
    (void)state;
    const char *s[NCODES];
    const char *u = afmt_strerror(-999);
    EXPECT(u != NULL && u[0]);
    for (int c = 0; c < NCODES; c++) {
        s[c] = afmt_strerror(-c);
        if (!s[c] || !s[c][0]) rec(__LINE__, "afmt_strerror(%d) empty", -c);
        if (s[c] && u && strcmp(s[c], u) == 0)
            rec(__LINE__, "afmt_strerror(%d) is the text of an unknown code: \"%s\"", -c, u);
    }
    for (int a = 0; a < NCODES; a++)
        for (int b = a + 1; b < NCODES; b++)
            if (s[a] && s[b] && strcmp(s[a], s[b]) == 0)
                rec(__LINE__, "afmt_strerror(%d) == afmt_strerror(%d) = \"%s\"", -a, -b, s[a]);
    /* The code after the last is unknown: the loop covered every code. */
    EXPECT(u && strcmp(afmt_strerror(LAST_CODE - 1), u) == 0);
    u = afmt_strerror(5);
    EXPECT(u != NULL);
    EXPECT(afmt_errmsg(NULL) != NULL);
    done();
}

/* afmt_version() is "MAJOR.MINOR.PATCH" and equals the version of the CMake project that
 * built it (AFMT_TEST_PROJECT_VERSION, from project(VERSION)): a source independent of the
 * header, whose macros must agree with it too. */
static void test_version(void **state) {
    (void)state;
    const char *v = afmt_version();
    unsigned a = 99, b = 99, c = 99;
    char tail = 0;
    if (!v || sscanf(v, "%u.%u.%u%c", &a, &b, &c, &tail) != 3)
        rec(__LINE__, "afmt_version() = \"%s\", want digits.digits.digits", NSTR(v));
    if (!v || strcmp(v, AFMT_TEST_PROJECT_VERSION) != 0)
        rec(__LINE__, "afmt_version() = \"%s\", the CMake project version is \"%s\"", NSTR(v),
            AFMT_TEST_PROJECT_VERSION);
    EXPECT(a == AFMT_VERSION_MAJOR && b == AFMT_VERSION_MINOR && c == AFMT_VERSION_PATCH);
#ifdef AFMT_VERSION_NUMBER
    /* The numeric version: MAJOR * 10000 + MINOR * 100 + PATCH (as zstd's), from the
     * parts of the string, not from the macros it is made of. */
    EXPECT(AFMT_VERSION_NUMBER == a * 10000u + b * 100u + c);
    EXPECT(afmt_version_number() == AFMT_VERSION_NUMBER);
#endif
    done();
}

/* A damaged data block: reading it gives ECORRUPT naming the array, on every rank. */
static void test_damaged_block(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "er-damage");
    int np = tu_size();
    afmt_opts *o = NULL;
    EXPECT_OK(NULL, afmt_opts_create(&o));
    EXPECT_OK(NULL, afmt_opts_set_block_size(o, 1024)); /* a block per chunk */
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    afmt_opts_free(o);
    const uint64_t n = 1 << 19, s[1] = {n}, c[1] = {1 << 15}; /* 4 MiB random */
    uint64_t *buf = malloc(n * 8);
    for (uint64_t i = 0; i < n; i++) tu_value(&buf[i], 8, i, 77);
    long long sz = 0;
    if (f) {
        EXPECT_OK(f, afmt_define(f, "victim", AFMT_UINT64, 1, s, c, NULL, NULL));
        for (int r = 0; r < np; r++) {
            uint64_t st = n * (uint64_t)r / (uint64_t)np;
            uint64_t ct = n * (uint64_t)(r + 1) / (uint64_t)np - st;
            if (r == tu_rank()) EXPECT_OK(f, afmt_write(f, "victim", &st, &ct, buf + st));
        }
        EXPECT_OK(f, afmt_close(f));
        sz = fsize(path);
        EXPECT(sz > (long long)(n * 8));
        if (tu_rank() == 0) {
            FILE *fp = fopen(path, "r+b");
            EXPECT(fp != NULL);
            if (fp) {
                fseek(fp, (long)(sz / 2), SEEK_SET);
                int b = fgetc(fp);
                fseek(fp, (long)(sz / 2), SEEK_SET);
                fputc(b ^ 0x5A, fp);
                fclose(fp);
            }
        }
        MPI_Barrier(MPI_COMM_WORLD);
        f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
    }
    if (f) {
        uint64_t *out = malloc(n * 8);
        uint64_t st = 0;
        int rc = afmt_read(f, "victim", &st, s, out);
        if (rc != AFMT_ECORRUPT)
            rec(__LINE__, "reading a damaged block -> %d (%s), want ECORRUPT%s", rc,
                NSTR(afmt_strerror(rc)),
                rc == AFMT_OK && memcmp(out, buf, n * 8) != 0 ? " (and wrong bytes!)" : "");
        else
            expect_msg(f, __LINE__, "victim", NULL, NULL);
        /* again (cache must not hold the bad block as good) */
        rc = afmt_read(f, "victim", &st, s, out);
        EXPECT(rc == AFMT_ECORRUPT);
        /* the undamaged head of the array (another block) is still readable */
        uint64_t ct = 8;
        EXPECT_OK(f, afmt_read(f, "victim", &st, &ct, out));
        EXPECT(memcmp(out, buf, 64) == 0);
        free(out);
        EXPECT_OK(f, afmt_close(f));
    }
    free(buf);
    rm_path(path);
    done();
}

/* Option setters with bad values. */
static void test_opts_errors(void **state) {
    (void)state;
    afmt_opts *o = NULL;
    EXPECT_RC(NULL, afmt_opts_create(NULL), AFMT_EINVAL);
    EXPECT_OK(NULL, afmt_opts_create(&o));
    EXPECT_RC2(NULL, afmt_opts_set_codec(o, (afmt_codec)77, 0), AFMT_ECODEC, AFMT_EINVAL);
    EXPECT_RC2(NULL, afmt_opts_set_codec(o, (afmt_codec)3, 0), AFMT_ECODEC, AFMT_EINVAL);
    EXPECT_RC2(NULL, afmt_opts_set_codec(o, (afmt_codec)-1, 0), AFMT_ECODEC, AFMT_EINVAL);
    EXPECT_RC(NULL, afmt_opts_set_codec(NULL, AFMT_CODEC_LZ4, 0), AFMT_EINVAL);
    EXPECT_RC(NULL, afmt_opts_set_codec(o, AFMT_CODEC_LZ4, 13), AFMT_EINVAL);
    EXPECT_RC(NULL, afmt_opts_set_codec(o, AFMT_CODEC_ZSTD, 1000), AFMT_EINVAL);
    EXPECT_OK(NULL, afmt_opts_set_codec(o, AFMT_CODEC_ZSTD, 19));
    EXPECT_OK(NULL, afmt_opts_set_codec(o, AFMT_CODEC_LZ4, 12));
    EXPECT_OK(NULL, afmt_opts_set_codec(o, AFMT_CODEC_NONE, 0));
    EXPECT_RC(NULL, afmt_opts_set_shuffle(NULL, 1), AFMT_EINVAL);
    EXPECT_RC(NULL, afmt_opts_set_block_size(NULL, 4096), AFMT_EINVAL);
    EXPECT_RC(NULL, afmt_opts_set_block_size(o, 1023), AFMT_EINVAL);
    EXPECT_RC(NULL, afmt_opts_set_block_size(o, 0), AFMT_EINVAL);
    EXPECT_RC(NULL, afmt_opts_set_block_size(o, (1ull << 30) + 1), AFMT_EINVAL);
    EXPECT_OK(NULL, afmt_opts_set_block_size(o, 1024));
    EXPECT_OK(NULL, afmt_opts_set_block_size(o, 1ull << 30));
    EXPECT_OK(NULL, afmt_opts_set_block_size(o, 65536));
    EXPECT_RC(NULL, afmt_opts_set_mem_budget(NULL, 0), AFMT_EINVAL);
    EXPECT_RC(NULL, afmt_opts_set_spill_dir(NULL, "/tmp"), AFMT_EINVAL);
    EXPECT_RC(NULL, afmt_opts_set_spill_dir(o, NULL), AFMT_EINVAL);
    EXPECT_RC(NULL, afmt_opts_set_mpi_info(NULL, MPI_INFO_NULL), AFMT_EINVAL);
    EXPECT_RC(NULL, afmt_opts_set_cache_size(NULL, 0), AFMT_EINVAL);
    EXPECT_OK(NULL, afmt_opts_set_cache_size(o, 0));
    EXPECT_OK(NULL, afmt_opts_free(NULL));
    /* the options still work after the refused calls: a file with them */
    const char *path = tu_path(NULL, "er-opts");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    EXPECT_OK(NULL, afmt_opts_free(o));
    if (f) {
        const uint64_t s[1] = {3000};
        EXPECT_OK(f, afmt_define(f, "a", AFMT_UINT8, 1, s, NULL, NULL, NULL));
        unsigned char b[3000], out[3000];
        for (int i = 0; i < 3000; i++) b[i] = (unsigned char)(i * 7);
        uint64_t st = 0, ct = 3000;
        if (tu_rank() == 0) EXPECT_OK(f, afmt_write(f, "a", &st, &ct, b));
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_OK(f, afmt_read(f, "a", &st, &ct, out));
        EXPECT(memcmp(b, out, sizeof b) == 0);
        EXPECT_OK(f, afmt_close(f));
    }
    rm_path(path);
    done();
}

/* A file handle after its array was deleted, and collective errors stay aligned: every rank
 * gets the same code from a collective called with the same bad arguments. */
static void test_deleted_access(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "er-del");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    const uint64_t s[1] = {8};
    float v[8] = {0};
    uint64_t st = 0, ct = 8;
    if (f) {
        EXPECT_OK(f, afmt_define(f, "gone", AFMT_FLOAT32, 1, s, NULL, NULL, NULL));
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_OK(f, afmt_delete(f, "gone"));
        EXPECT_RC(f, afmt_write(f, "gone", &st, &ct, v), AFMT_ENOTFOUND);
        EXPECT_RC(f, afmt_read(f, "gone", &st, &ct, v), AFMT_ENOTFOUND);
        EXPECT_RC(f, afmt_set_attr(f, "gone", "k", AFMT_FLOAT32, 1, v), AFMT_ENOTFOUND);
        EXPECT_RC(f, afmt_delete(f, "gone"), AFMT_ENOTFOUND);
        EXPECT_OK(f, afmt_commit(f));
        EXPECT(layers_of(f, __LINE__) == 2);
        EXPECT_RC(f, afmt_read(f, "gone", &st, &ct, v), AFMT_ENOTFOUND);
        EXPECT_OK(f, afmt_close(f));
        f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
        if (f) {
            EXPECT_RC(f, afmt_read(f, "gone", &st, &ct, v), AFMT_ENOTFOUND);
            int n = -1;
            EXPECT_OK(f, afmt_count(f, &n));
            EXPECT(n == 0);
            EXPECT_OK(f, afmt_close(f));
        }
    }
    rm_path(path);
    done();
}

/* A slot of a newer format version (magic and checksum good, version 2; docs/format.md
 * section 3): afmt_open refuses the file with EVERSION. */
static void test_newer_version(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "er-version");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (f) {
        const uint64_t s[1] = {10};
        EXPECT_OK(f, afmt_define(f, "a", AFMT_INT8, 1, s, NULL, NULL, NULL));
        EXPECT_OK(f, afmt_close(f));
        MPI_Barrier(MPI_COMM_WORLD);
        if (tu_rank() == 0) {
            /* rewrite every valid slot as version 3 */
            FILE *fp = fopen(path, "r+b");
            for (long off = 0; fp && off <= 2048; off += 2048) {
                unsigned char slot[128];
                fseek(fp, off, SEEK_SET);
                if (fread(slot, 1, 128, fp) != 128 || memcmp(slot, "AFMTSUPR", 8) != 0) continue;
                slot[8] = 3, slot[9] = slot[10] = slot[11] = 0;
                uint64_t sum = (uint64_t)XXH3_64bits(slot, 120);
                for (int b = 0; b < 8; b++) slot[120 + b] = (unsigned char)(sum >> (8 * b));
                fseek(fp, off, SEEK_SET);
                fwrite(slot, 1, 128, fp);
            }
            if (fp) fclose(fp);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        expect_open_fails(path, AFMT_EVERSION, __LINE__);
    }
    rm_path(path);
    done();
}

/* A toy user codec: byte run-length encoding, (run, byte) pairs. */
static size_t toy_bound(size_t n) {
    return 2 * n + 2;
}
static int toy_compress(const void *src, size_t n, void *dst, size_t cap, size_t *len, int level) {
    const unsigned char *s = src;
    unsigned char *d = dst;
    size_t pos = 0;
    (void)level;
    for (size_t i = 0; i < n;) {
        size_t run = 1;
        while (i + run < n && s[i + run] == s[i] && run < 255) run++;
        if (pos + 2 > cap) return 1;
        d[pos++] = (unsigned char)run;
        d[pos++] = s[i];
        i += run;
    }
    *len = pos;
    return 0;
}
static int toy_decompress(const void *src, size_t n, void *dst, size_t len) {
    const unsigned char *s = src;
    unsigned char *d = dst;
    size_t out = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        if (out + s[i] > len) return 1;
        memset(d + out, s[i + 1], s[i]);
        out += s[i];
    }
    return out == len ? 0 : 1;
}
static int fail_compress(const void *src, size_t n, void *dst, size_t cap, size_t *len, int level) {
    (void)src, (void)n, (void)dst, (void)cap, (void)len, (void)level;
    return 1;
}

/* User codecs: registration errors; a file written with a codec on rank 0 (MPI_COMM_SELF)
 * reads back there, and on ranks that lack the codec it opens but reading gives ECODEC
 * naming the id; a codec whose compress fails leaves the blocks raw, readable anywhere. */
static void test_user_codec(void **state) {
    (void)state;
    int me = tu_rank(), np = tu_size();
    afmt_codec_desc d = {AFMT_CODEC_DESC_VERSION, 300, "toy", toy_bound, toy_compress,
                         toy_decompress};
    afmt_codec_desc bad = d;
    bad.id = 255;
    EXPECT_RC(NULL, afmt_codec_register(&bad), AFMT_EINVAL);
    bad.id = 299, bad.compress = NULL;
    EXPECT_RC(NULL, afmt_codec_register(&bad), AFMT_EINVAL);
    EXPECT_RC(NULL, afmt_codec_register(NULL), AFMT_EINVAL);
    afmt_opts *o = NULL;
    EXPECT_OK(NULL, afmt_opts_create(&o));
    EXPECT_RC(NULL, afmt_opts_set_codec(o, (afmt_codec)302, 0), AFMT_ECODEC); /* unknown */
    const char *paths[2] = {tu_path(NULL, "er-codec"), tu_path(NULL, "er-codec-raw")};
    const uint64_t n = 5000, s[1] = {n}, c[1] = {700};
    int32_t *buf = malloc(n * 4), *out = malloc(n * 4);
    for (uint64_t i = 0; i < n; i++) buf[i] = (int32_t)(i / 100); /* RLE-compressible */
    if (me == 0) {
        afmt_codec_desc failing = {AFMT_CODEC_DESC_VERSION, 301,           "failing", toy_bound,
                                   fail_compress,           toy_decompress};
        EXPECT_OK(NULL, afmt_codec_register(&d));
        EXPECT_RC(NULL, afmt_codec_register(&d), AFMT_EEXIST);
        EXPECT_OK(NULL, afmt_codec_register(&failing));
        for (int k = 0; k < 2; k++) {
            EXPECT_OK(NULL, afmt_opts_set_codec(o, (afmt_codec)(k ? 301 : 300), 0));
            afmt_file *f = xopen(MPI_COMM_SELF, paths[k], 0, 0, o, __LINE__);
            if (!f) continue;
            uint64_t st = 0;
            EXPECT_OK(f, afmt_define(f, "coded", AFMT_INT32, 1, s, c, NULL, NULL));
            EXPECT_OK(f, afmt_write(f, "coded", &st, s, buf));
            EXPECT_OK(f, afmt_close(f));
            f = xopen(MPI_COMM_SELF, paths[k], 1, AFMT_RDONLY, NULL, __LINE__);
            if (!f) continue;
            memset(out, 0, n * 4);
            EXPECT_OK(f, afmt_read(f, "coded", &st, s, out));
            EXPECT(memcmp(out, buf, n * 4) == 0);
            EXPECT_OK(f, afmt_close(f));
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    /* the other ranks never registered 300 or 301 */
    MPI_Comm others;
    MPI_Comm_split(MPI_COMM_WORLD, me > 0 ? 0 : MPI_UNDEFINED, me, &others);
    if (others != MPI_COMM_NULL) {
        for (int k = 0; k < 2; k++) {
            afmt_file *f = xopen(others, paths[k], 1, AFMT_RDONLY, NULL, __LINE__);
            if (!f) continue;
            uint64_t st = 0;
            memset(out, 0, n * 4);
            int rc = afmt_read(f, "coded", &st, s, out);
            if (k == 0) {
                if (rc != AFMT_ECODEC)
                    rec(__LINE__, "reading a block of an unknown codec -> %d, want ECODEC", rc);
                else
                    expect_msg(f, __LINE__, "300", NULL, NULL);
            } else {
                if (rc != AFMT_OK || memcmp(out, buf, n * 4) != 0)
                    rec(__LINE__, "blocks left raw by a failing codec: read -> %d (%s)", rc,
                        rc == AFMT_OK ? "wrong bytes" : NSTR(afmt_errmsg(f)));
            }
            EXPECT_OK(f, afmt_close(f));
        }
        MPI_Comm_free(&others);
    }
    (void)np;
    free(buf);
    free(out);
    afmt_opts_free(o);
    rm_path(paths[0]);
    rm_path(paths[1]);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_args),     cmocka_unit_test(test_region_errors),
        cmocka_unit_test(test_define_errors), cmocka_unit_test(test_readonly),
        cmocka_unit_test(test_create_exists), cmocka_unit_test(test_open_bad_files),
        cmocka_unit_test(test_overlap),       cmocka_unit_test(test_messages),
        cmocka_unit_test(test_version),       cmocka_unit_test(test_damaged_block),
        cmocka_unit_test(test_opts_errors),   cmocka_unit_test(test_deleted_access),
        cmocka_unit_test(test_newer_version), cmocka_unit_test(test_user_codec),
    };
    return tu_main(argc, argv, "mpi.errors", tests, sizeof tests / sizeof tests[0]);
}
