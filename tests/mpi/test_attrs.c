/* test_attrs.c - MPI integration: file and array attributes, every dtype, overwrite,
 * capacity and type errors, visibility after reopen, no leak across delete/redefine. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An attribute the tests expect: key, type, values. */
typedef struct {
    const char *array; /* NULL = file */
    char key[64];
    afmt_dtype t;
    uint64_t n;
    unsigned char *v;
} attr;

static void a_make(attr *a, const char *array, const char *key, afmt_dtype t, uint64_t n,
                   uint64_t seed) {
    a->array = array;
    snprintf(a->key, sizeof a->key, "%s", key);
    a->t = t;
    a->n = n;
    a->v = malloc(n * tu_dtype_size(t) + 1);
    for (uint64_t i = 0; i < n; i++) val(t, a->v + i * tu_dtype_size(t), i, seed);
}

static void a_set(afmt_file *f, const attr *a, int line) {
    int rc = afmt_set_attr(f, a->array, a->key, a->t, a->n, a->v);
    if (rc != AFMT_OK)
        rec(line, "afmt_set_attr(%s, %s) -> %d: %s", NSTR(a->array), a->key, rc,
            NSTR(afmt_errmsg(f)));
}

/* get_attr with exactly the capacity, a larger capacity and a too small one. */
static void a_check(afmt_file *f, const attr *a, int line) {
    size_t es = tu_dtype_size(a->t);
    uint64_t cap = a->n + 5, n = cap;
    unsigned char *buf = malloc((a->n + 5) * es);
    memset(buf, 0x5A, (a->n + 5) * es);
    int rc = afmt_get_attr(f, a->array, a->key, a->t, &n, buf);
    if (rc != AFMT_OK || n != a->n || memcmp(buf, a->v, a->n * es) != 0) {
        rec(line, "afmt_get_attr(%s, %s) -> %d, n=%llu (want %llu), %s: %s", NSTR(a->array), a->key,
            rc, (unsigned long long)n, (unsigned long long)a->n,
            rc == AFMT_OK && n == a->n ? "values differ" : "", NSTR(afmt_errmsg(f)));
    } else {
        /* untouched past the stored values */
        for (size_t b = a->n * es; b < cap * es; b++)
            if (buf[b] != 0x5A) {
                rec(line, "afmt_get_attr(%s, %s) wrote past the %llu stored values", NSTR(a->array),
                    a->key, (unsigned long long)a->n);
                break;
            }
    }
    n = a->n;
    rc = afmt_get_attr(f, a->array, a->key, a->t, &n, buf);
    if (rc != AFMT_OK || n != a->n)
        rec(line, "afmt_get_attr(%s, %s) exact capacity -> %d, n=%llu", NSTR(a->array), a->key, rc,
            (unsigned long long)n);
    if (a->n > 1) {
        n = a->n - 1;
        rc = afmt_get_attr(f, a->array, a->key, a->t, &n, buf);
        if (rc != AFMT_ERANGE || n != a->n)
            rec(line, "afmt_get_attr(%s, %s) capacity %llu -> %d, n=%llu; want ERANGE, n=%llu",
                NSTR(a->array), a->key, (unsigned long long)(a->n - 1), rc, (unsigned long long)n,
                (unsigned long long)a->n);
    }
    free(buf);
}

#define NATTR 16

static void make_attrs(attr *as) {
    static const char text[] = "degrees Celsius, measured at 2 m";
    int k = 0;
    for (int t = 0; t < 11; t++) { /* file attributes: every dtype, lengths 1..3000 */
        char key[32];
        snprintf(key, sizeof key, "file_t%d", t);
        uint64_t n = t == 4 ? 3000 : (uint64_t)(1 + t * 3);
        a_make(&as[k++], NULL, key, (afmt_dtype)t, n, 50 + (uint64_t)t);
    }
    a_make(&as[k], NULL, "title", AFMT_UINT8, sizeof text - 1, 0);
    memcpy(as[k++].v, text, sizeof text - 1);
    a_make(&as[k++], "temp", "units_code", AFMT_INT32, 1, 60);
    a_make(&as[k++], "temp", "range", AFMT_FLOAT64, 2, 61);
    a_make(&as[k], "temp", "units", AFMT_UINT8, 7, 0);
    memcpy(as[k++].v, "celsius", 7);
    a_make(&as[k++], "pres", "range", AFMT_FLOAT64, 2, 62); /* same key, other array */
}

static void free_attrs(attr *as, int n) {
    for (int i = 0; i < n; i++) free(as[i].v);
}

static void define_arrays(afmt_file *f, model *ms) {
    const uint64_t s[2] = {10, 12}, c[2] = {4, 5};
    m_init(&ms[0], "temp", AFMT_FLOAT32, 2, s, c, NULL);
    m_init(&ms[1], "pres", AFMT_FLOAT64, 1, s, NULL, NULL);
    if (f)
        for (int i = 0; i < 2; i++) EXPECT_OK(f, m_define(f, &ms[i]));
}

/* COLLECTIVE: reopens with WORLD, a sub-communicator and SELF; checks every attribute. */
static void reopen_attrs(const char *path, const attr *as, int na, int line) {
    for (int v = 0; v < 3; v++) {
        MPI_Comm c = reopen_comm(v);
        if (c != MPI_COMM_NULL) {
            afmt_file *f = xopen(c, path, 1, AFMT_RDONLY, NULL, line);
            if (f) {
                for (int i = 0; i < na; i++) a_check(f, &as[i], line);
                EXPECT_OK(f, afmt_close(f));
            }
            MPI_Comm_free(&c);
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
}

/* File and array attributes of every dtype and several lengths, visible at once, after
 * commit and after reopening on other rank counts. */
static void test_attr_types(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "at-types");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[2];
    attr as[NATTR];
    make_attrs(as);
    define_arrays(f, ms);
    if (f) {
        for (int i = 0; i < NATTR; i++) a_set(f, &as[i], __LINE__);
        for (int i = 0; i < NATTR; i++) a_check(f, &as[i], __LINE__); /* visible at once */
        EXPECT_OK(f, afmt_commit(f));
        uint64_t nl = 0;
        EXPECT_OK(f, afmt_layers(f, &nl));
        EXPECT(nl == 1);
        for (int i = 0; i < NATTR; i++) a_check(f, &as[i], __LINE__);
        EXPECT_OK(f, afmt_close(f));
        reopen_attrs(path, as, NATTR, __LINE__);
    }
    m_free(&ms[0]);
    m_free(&ms[1]);
    free_attrs(as, NATTR);
    rm_path(path);
    done();
}

/* Overwriting: new type and length replace the old value; attributes untouched by later
 * layers stay visible (fall through); newest wins after reopen. */
static void test_attr_overwrite(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "at-over");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[2];
    attr as[NATTR];
    make_attrs(as);
    define_arrays(f, ms);
    if (f) {
        for (int i = 0; i < NATTR; i++) a_set(f, &as[i], __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        /* same epoch twice: the last set wins */
        attr a1, a2;
        a_make(&a1, "temp", "range", AFMT_INT16, 9, 70);
        a_set(f, &a1, __LINE__);
        a_make(&a2, "temp", "range", AFMT_UINT64, 4, 71);
        a_set(f, &a2, __LINE__);
        a_check(f, &a2, __LINE__);
        /* another dtype converts the newest value (rounded to nearest, test_read_as) */
        uint64_t n = 10;
        double d[10];
        EXPECT_OK(f, afmt_get_attr(f, "temp", "range", AFMT_FLOAT64, &n, d));
        EXPECT(n == 4);
        for (int i = 0; i < 4; i++) {
            uint64_t u;
            memcpy(&u, a2.v + 8 * i, 8);
            EXPECT(d[i] == (double)u);
        }
        /* the same key of the other array is untouched */
        a_check(f, &as[15], __LINE__);
        free(as[13].v);
        as[13] = a2;
        /* a file attribute rewritten in layer 2, a string made shorter */
        free(as[11].v);
        a_make(&as[11], NULL, "title", AFMT_UINT8, 3, 0);
        memcpy(as[11].v, "abc", 3);
        a_set(f, &as[11], __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        free(a1.v);
        for (int i = 0; i < NATTR; i++) a_check(f, &as[i], __LINE__);
        EXPECT_OK(f, afmt_close(f));
        reopen_attrs(path, as, NATTR, __LINE__);
        /* layer 3 from a reopened handle: one more overwrite, data untouched */
        f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, NULL, __LINE__);
    }
    if (f) {
        free(as[0].v);
        a_make(&as[0], NULL, "file_t0", AFMT_FLOAT32, 5, 80);
        a_set(f, &as[0], __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        uint64_t nl = 0;
        EXPECT_OK(f, afmt_layers(f, &nl));
        EXPECT(nl == 3);
        EXPECT_OK(f, afmt_close(f));
        reopen_attrs(path, as, NATTR, __LINE__);
    }
    m_free(&ms[0]);
    m_free(&ms[1]);
    free_attrs(as, NATTR);
    rm_path(path);
    done();
}

/* ERANGE with *n set, conversion, ENOTFOUND (key, array), bad arguments. */
static void test_attr_errors(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "at-err");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[2];
    define_arrays(f, ms);
    if (f) {
        double v[6] = {1, 2, 3, 4, 5, 6};
        EXPECT_OK(f, afmt_set_attr(f, "pres", "six", AFMT_FLOAT64, 6, v));
        EXPECT_OK(f, afmt_set_attr(f, NULL, "six", AFMT_FLOAT64, 6, v));
        for (int pass = 0; pass < 2; pass++) { /* before and after commit */
            for (int fa = 0; fa < 2; fa++) {
                const char *arr = fa ? NULL : "pres";
                double out[6] = {0, 0, -7, -7, -7, -7};
                uint64_t n = 2;
                EXPECT_RC(f, afmt_get_attr(f, arr, "six", AFMT_FLOAT64, &n, out), AFMT_ERANGE);
                EXPECT(n == 6);
                EXPECT(out[2] == -7 && out[5] == -7); /* nothing past the capacity */
                n = 0;
                EXPECT_RC(f, afmt_get_attr(f, arr, "six", AFMT_FLOAT64, &n, out), AFMT_ERANGE);
                EXPECT(n == 6);
                n = 6;
                EXPECT_OK(f, afmt_get_attr(f, arr, "six", AFMT_FLOAT64, &n, out));
                EXPECT(n == 6 && out[5] == 6.0);
                n = 6;
                float fl[6];
                EXPECT_OK(f, afmt_get_attr(f, arr, "six", AFMT_FLOAT32, &n, fl));
                EXPECT(fl[0] == 1.0f && fl[5] == 6.0f); /* converted */
                n = 6;
                uint64_t u6[6];
                EXPECT_OK(f, afmt_get_attr(f, arr, "six", AFMT_UINT64, &n, u6));
                EXPECT(u6[0] == 1 && u6[5] == 6);
                n = 6;
                EXPECT_RC(f, afmt_get_attr(f, arr, "six", (afmt_dtype)11, &n, u6), AFMT_EINVAL);
                n = 6;
                EXPECT_RC(f, afmt_get_attr(f, arr, "missing", AFMT_FLOAT64, &n, out),
                          AFMT_ENOTFOUND);
                n = 6;
                EXPECT_RC(f, afmt_get_attr(f, arr, NULL, AFMT_FLOAT64, &n, out), AFMT_EINVAL);
                EXPECT_RC(f, afmt_get_attr(f, arr, "six", AFMT_FLOAT64, NULL, out), AFMT_EINVAL);
            }
            double out[6];
            uint64_t n = 6;
            EXPECT_RC(f, afmt_get_attr(f, "temp", "six", AFMT_FLOAT64, &n, out), AFMT_ENOTFOUND);
            n = 6;
            EXPECT_RC(f, afmt_get_attr(f, "nope", "six", AFMT_FLOAT64, &n, out), AFMT_ENOTFOUND);
            n = 6;
            EXPECT_RC(NULL, afmt_get_attr(NULL, NULL, "six", AFMT_FLOAT64, &n, out), AFMT_EINVAL);
            if (pass == 0) EXPECT_OK(f, afmt_commit(f));
        }
        /* set_attr errors (collective, same arguments everywhere) */
        double one = 1;
        EXPECT_RC(f, afmt_set_attr(f, "nope", "k", AFMT_FLOAT64, 1, &one), AFMT_ENOTFOUND);
        EXPECT_RC(f, afmt_set_attr(f, NULL, NULL, AFMT_FLOAT64, 1, &one), AFMT_EINVAL);
        EXPECT_RC(f, afmt_set_attr(f, NULL, "k", AFMT_FLOAT64, 1, NULL), AFMT_EINVAL);
        int rc = afmt_set_attr(f, NULL, "k", (afmt_dtype)99, 1, &one);
        if (rc != AFMT_EINVAL && rc != AFMT_ETYPE)
            rec(__LINE__, "afmt_set_attr with dtype 99 -> %d, want EINVAL or ETYPE", rc);
        EXPECT_RC(NULL, afmt_set_attr(NULL, NULL, "k", AFMT_FLOAT64, 1, &one), AFMT_EINVAL);
        uint64_t n = 1;
        EXPECT_RC(f, afmt_get_attr(f, NULL, "k", AFMT_FLOAT64, &n, &one), AFMT_ENOTFOUND);
        EXPECT_OK(f, afmt_close(f));
    }
    m_free(&ms[0]);
    m_free(&ms[1]);
    rm_path(path);
    done();
}

/* Attributes of a deleted array do not leak into a new array of the same name: deleted and
 * redefined in one epoch, and across commits and reopen. */
static void test_attr_deleted_array(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "at-del");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    model ms[2];
    define_arrays(f, ms);
    int32_t v = 7;
    uint64_t n;
    int32_t out = 0;
    if (f) {
        EXPECT_OK(f, afmt_set_attr(f, "temp", "a1", AFMT_INT32, 1, &v));
        EXPECT_OK(f, afmt_set_attr(f, "pres", "p1", AFMT_INT32, 1, &v));
        EXPECT_OK(f, afmt_commit(f));
        /* case 1: delete and redefine in the same epoch */
        EXPECT_OK(f, afmt_delete(f, "temp"));
        n = 1;
        EXPECT_RC(f, afmt_get_attr(f, "temp", "a1", AFMT_INT32, &n, &out), AFMT_ENOTFOUND);
        EXPECT_OK(f, m_define(f, &ms[0]));
        n = 1;
        EXPECT_RC(f, afmt_get_attr(f, "temp", "a1", AFMT_INT32, &n, &out), AFMT_ENOTFOUND);
        EXPECT_OK(f, afmt_set_attr(f, "temp", "a2", AFMT_INT32, 1, &v));
        EXPECT_OK(f, afmt_commit(f));
        n = 1;
        EXPECT_RC(f, afmt_get_attr(f, "temp", "a1", AFMT_INT32, &n, &out), AFMT_ENOTFOUND);
        /* case 2: delete, commit, redefine, commit */
        EXPECT_OK(f, afmt_delete(f, "pres"));
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_OK(f, m_define(f, &ms[1]));
        n = 1;
        EXPECT_RC(f, afmt_get_attr(f, "pres", "p1", AFMT_INT32, &n, &out), AFMT_ENOTFOUND);
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_OK(f, afmt_close(f));
    }
    /* after reopen (all rank counts): only the new attribute */
    for (int k = 0; f && k < 3; k++) {
        MPI_Comm c = reopen_comm(k);
        if (c != MPI_COMM_NULL) {
            afmt_file *g = xopen(c, path, 1, AFMT_RDONLY, NULL, __LINE__);
            if (g) {
                n = 1;
                EXPECT_RC(g, afmt_get_attr(g, "temp", "a1", AFMT_INT32, &n, &out), AFMT_ENOTFOUND);
                n = 1;
                EXPECT_RC(g, afmt_get_attr(g, "pres", "p1", AFMT_INT32, &n, &out), AFMT_ENOTFOUND);
                n = 1;
                out = 0;
                EXPECT_OK(g, afmt_get_attr(g, "temp", "a2", AFMT_INT32, &n, &out));
                EXPECT(n == 1 && out == 7);
                int cnt = 0;
                EXPECT_OK(g, afmt_count(g, &cnt));
                EXPECT(cnt == 2);
                EXPECT_OK(g, afmt_close(g));
            }
            MPI_Comm_free(&c);
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
    m_free(&ms[0]);
    m_free(&ms[1]);
    rm_path(path);
    done();
}

/* Attributes on a read-only handle: readable, not settable. */
static void test_attr_readonly(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "at-ro");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    int64_t v[3] = {-1, 0, 1};
    if (f) {
        EXPECT_OK(f, afmt_set_attr(f, NULL, "v", AFMT_INT64, 3, v));
        EXPECT_OK(f, afmt_close(f)); /* close commits */
        f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
    }
    if (f) {
        int64_t out[3] = {0};
        uint64_t n = 3;
        EXPECT_OK(f, afmt_get_attr(f, NULL, "v", AFMT_INT64, &n, out));
        EXPECT(n == 3 && out[0] == -1 && out[2] == 1);
        EXPECT_RC(f, afmt_set_attr(f, NULL, "v", AFMT_INT64, 3, v), AFMT_EREADONLY);
        EXPECT_OK(f, afmt_close(f));
    }
    rm_path(path);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attr_types),    cmocka_unit_test(test_attr_overwrite),
        cmocka_unit_test(test_attr_errors),   cmocka_unit_test(test_attr_deleted_array),
        cmocka_unit_test(test_attr_readonly),
    };
    return tu_main(argc, argv, "mpi.attrs", tests, sizeof tests / sizeof tests[0]);
}
