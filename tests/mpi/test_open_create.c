/* test_open_create.c - MPI integration: afmt_open with AFMT_RDWR | AFMT_CREATE (open or
 * create, the checkpoint/restart pattern of docs/guide.md). A missing file is created
 * empty; an existing one is opened with its layers and data, its bytes untouched; a held
 * writer lock is AFMT_EBUSY on every rank before anything is written; other flag
 * combinations and URLs are AFMT_EINVAL; a missing directory is named as such. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OC (AFMT_RDWR | AFMT_CREATE)
#define N  48 /* elements per rank */

/* COLLECTIVE: rank 0 copies file p to q (the reference of a byte comparison). */
static void copy0(const char *p, const char *q) {
    MPI_Barrier(MPI_COMM_WORLD);
    if (tu_rank() == 0) {
        FILE *a = fopen(p, "rb"), *b = fopen(q, "wb");
        char buf[65536];
        size_t n;
        while (a && b && (n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
        if (a) fclose(a);
        if (b) fclose(b);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* The open (mode) must fail with want on every rank, *f NULL, the message holding needle
 * (NULL: not checked). */
static void expect_open_fails(const char *path, unsigned mode, int want, const char *needle,
                              int line) {
    const char *const needles[] = {needle, NULL};
    expect_fail(path, 0, mode, NULL, want, line, needles);
}

/* Every rank writes its N elements of "x" (value base + global index) and commits. */
static void put_step(afmt_file *f, int32_t base) {
    uint64_t st[1] = {(uint64_t)tu_rank() * N}, ct[1] = {N};
    int32_t v[N];
    for (int i = 0; i < N; i++) v[i] = base + (int32_t)st[0] + i;
    EXPECT_OK(f, afmt_write(f, "x", st, ct, v));
    EXPECT_OK(f, afmt_set_attr(f, NULL, "step", AFMT_INT32, 1, &base));
    EXPECT_OK(f, afmt_commit(f));
}

static void check_step(afmt_file *f, int32_t base, int line) {
    uint64_t st[1] = {(uint64_t)tu_rank() * N}, ct[1] = {N}, n = 1;
    int32_t v[N], step = -1;
    EXPECT_OK_AT(line, f, afmt_get_attr(f, NULL, "step", AFMT_INT32, &n, &step));
    if (step != base) rec(line, "attribute step = %d, want %d", step, base);
    EXPECT_OK_AT(line, f, afmt_read(f, "x", st, ct, v));
    for (int i = 0; i < N; i++)
        if (v[i] != base + (int32_t)st[0] + i) {
            rec(line, "x[%d] = %d, want %d", (int)st[0] + i, v[i], base + (int)st[0] + i);
            return;
        }
}

/* Missing: created empty (no layer), writable; existing: opened with its layers and data,
 * and its bytes are those of before when nothing is written. */
static void test_create_then_open(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "oc-basic");
    char copy[720];
    snprintf(copy, sizeof copy, "%s.copy", path);
    EXPECT(!exists0(path));
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 1, OC, NULL, __LINE__);
    if (f) {
        EXPECT(layers_of(f, __LINE__) == 0);
        const uint64_t shape[1] = {(uint64_t)tu_size() * N}, chunk[1] = {16};
        EXPECT_OK(f, afmt_define(f, "x", AFMT_INT32, 1, shape, chunk, NULL, NULL));
        put_step(f, 1000);
        EXPECT_OK(NULL, afmt_close(f));
    }
    EXPECT(exists0(path));
    copy0(path, copy);
    f = xopen(MPI_COMM_WORLD, path, 1, OC, NULL, __LINE__);
    if (f) {
        EXPECT(layers_of(f, __LINE__) == 1);
        check_step(f, 1000, __LINE__);
        EXPECT_OK(NULL, afmt_close(f));
    }
    EXPECT(same_bytes(path, copy));
    /* and it goes on: a second step on top */
    f = xopen(MPI_COMM_WORLD, path, 1, OC, NULL, __LINE__);
    if (f) {
        put_step(f, 2000);
        EXPECT(layers_of(f, __LINE__) == 2);
        EXPECT_OK(NULL, afmt_close(f));
    }
    f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
    if (f) {
        check_step(f, 2000, __LINE__);
        EXPECT_OK(NULL, afmt_close(f));
    }
    rm_path(copy);
    rm_path(path);
    done();
}

/* The restart loop of docs/guide.md: run twice, the second run continues from the first's
 * last step (restart detected by afmt_layers > 0). */
static void test_restart_loop(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "oc-restart");
    for (int run = 0; run < 2; run++) {
        afmt_file *f = xopen(MPI_COMM_WORLD, path, 1, OC, NULL, __LINE__);
        if (!f) break;
        uint64_t nl = layers_of(f, __LINE__), n = 1;
        int32_t step = 0;
        if (nl == 0) {
            const uint64_t shape[1] = {(uint64_t)tu_size() * N};
            EXPECT_OK(f, afmt_define(f, "x", AFMT_INT32, 1, shape, NULL, NULL, NULL));
        } else {
            EXPECT_OK(f, afmt_get_attr(f, NULL, "step", AFMT_INT32, &n, &step));
            check_step(f, step, __LINE__);
        }
        EXPECT(run == 0 ? nl == 0 : step == 3);
        for (int k = 0; k < 3; k++) put_step(f, ++step);
        EXPECT_OK(NULL, afmt_close(f));
    }
    afmt_file *r = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
    if (r) {
        EXPECT(layers_of(r, __LINE__) == 6);
        check_step(r, 6, __LINE__);
        EXPECT_OK(NULL, afmt_close(r));
    }
    rm_path(path);
    done();
}

/* A held lock: EBUSY on every rank, before anything is written (a missing file stays
 * missing, an existing one keeps its bytes). */
static void test_locked(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "oc-locked");
    const char *lp = lock_of(path);
    char copy[720];
    snprintf(copy, sizeof copy, "%s.copy", path);
    /* another job's lock on a missing file */
    write0(lp, "host=elsewhere pid=123 job=777 time=2026-01-01T00:00:00Z\n");
    expect_open_fails(path, OC, AFMT_EBUSY, "host=elsewhere", __LINE__);
    EXPECT(!exists0(path));
    rm_path(lp);
    /* a live handle of this job */
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 1, OC, NULL, __LINE__);
    if (f) {
        const uint64_t shape[1] = {(uint64_t)tu_size() * N};
        EXPECT_OK(f, afmt_define(f, "x", AFMT_INT32, 1, shape, NULL, NULL, NULL));
        put_step(f, 5);
        copy0(path, copy);
        expect_open_fails(path, OC, AFMT_EBUSY, "locked for writing", __LINE__);
        EXPECT(same_bytes(path, copy));
        check_step(f, 5, __LINE__); /* the holder is untouched */
        EXPECT_OK(NULL, afmt_close(f));
    }
    EXPECT(!exists0(lp));
    rm_path(copy);
    rm_path(path);
    done();
}

/* The recovery recipe of docs/guide.md section 10: a failed first commit, then
 * afmt_discard, drops the definitions too; defined again, the step commits. */
static void test_discard_first_commit(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "oc-discard");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 1, OC, NULL, __LINE__);
    if (f) {
        const uint64_t shape[1] = {(uint64_t)tu_size() * N};
        EXPECT_OK(f, afmt_define(f, "x", AFMT_INT32, 1, shape, NULL, NULL, NULL));
        if (tu_size() > 1) {
            /* every rank writes element 0: an overlap, which fails every commit */
            const uint64_t st[1] = {0}, ct[1] = {1};
            int32_t v = tu_rank();
            EXPECT_OK(f, afmt_write(f, "x", st, ct, &v));
            EXPECT_RC(f, afmt_commit(f), AFMT_EINVAL);
        }
        EXPECT_OK(f, afmt_discard(f));
        afmt_info info;
        EXPECT_RC(f, afmt_inquire(f, "x", &info), AFMT_ENOTFOUND);
        EXPECT_OK(f, afmt_define(f, "x", AFMT_INT32, 1, shape, NULL, NULL, NULL));
        put_step(f, 7);
        check_step(f, 7, __LINE__);
        EXPECT(layers_of(f, __LINE__) == 1);
        EXPECT_OK(NULL, afmt_close(f));
    }
    rm_path(path);
    done();
}

/* AFMT_CREATE only with AFMT_RDWR, only in afmt_open, never on a URL; a missing
 * directory says so. */
static void test_bad_uses(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "oc-bad");
    expect_open_fails(path, AFMT_CREATE, AFMT_EINVAL, "AFMT_CREATE", __LINE__);
    expect_open_fails(path, AFMT_RDONLY | AFMT_CREATE, AFMT_EINVAL, "mode 0x9", __LINE__);
    expect_open_fails(path, OC | AFMT_TRUNC, AFMT_EINVAL, NULL, __LINE__);
    expect_open_fails(path, AFMT_RDONLY | AFMT_RDWR | AFMT_CREATE, AFMT_EINVAL, NULL, __LINE__);
    expect_open_fails("http://127.0.0.1:9/x.afmt", OC, AFMT_EINVAL, "read-only", __LINE__);
    expect_open_fails("s3://bucket/x.afmt", OC, AFMT_EINVAL, "read-only", __LINE__);
    EXPECT(!exists0(path));
    afmt_file *g = (afmt_file *)&g;
    int rc = afmt_create(MPI_COMM_WORLD, path, AFMT_CREATE, NULL, &g);
    if (rc != AFMT_EINVAL || g) rec(__LINE__, "afmt_create(AFMT_CREATE) -> %d", rc);
    EXPECT(!exists0(path));
    /* a missing directory: named, no hint about the lock */
    char bad[760], dir[720];
    snprintf(dir, sizeof dir, "%s.nodir", path);
    snprintf(bad, sizeof bad, "%s/x.afmt", dir);
    expect_open_fails(bad, OC, AFMT_EIO, "does not exist", __LINE__);
    expect_open_fails(bad, OC, AFMT_EIO, dir, __LINE__);
    rc = afmt_create(MPI_COMM_WORLD, bad, 0, NULL, &g);
    const char *m = afmt_errmsg(NULL);
    if (rc != AFMT_EIO) rec(__LINE__, "afmt_create in a missing directory -> %d", rc);
    if (!m || !strstr(m, "the directory") || !strstr(m, dir) || strstr(m, "AFMT_NO_LOCK"))
        rec(__LINE__, "afmt_create in a missing directory: \"%s\"", NSTR(m));
    EXPECT(!exists0(dir));
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_then_open), cmocka_unit_test(test_restart_loop),
        cmocka_unit_test(test_locked),           cmocka_unit_test(test_discard_first_commit),
        cmocka_unit_test(test_bad_uses),
    };
    return tu_main(argc, argv, "mpi.open_create", tests, sizeof tests / sizeof tests[0]);
}
