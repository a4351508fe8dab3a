/* test_storage.c - the three storage backends through the one interface, one process. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"

static const afmt_storage_kind kinds[3] = {AFMT_STORAGE_MPIIO, AFMT_STORAGE_POSIX,
                                           AFMT_STORAGE_MEMORY};

static afmt_storage_kind kind_of(void **state) {
    return *(const afmt_storage_kind *)*state;
}

/* The handle's message, or the thread's one for calls without a handle. */
static const char *st_msg(const afmt_storage *st) {
    return st ? st->errmsg : afmt__thread_errbuf();
}

/* Asserts a storage call succeeded, showing the backend's message if not. */
#define ST_OK(st, call)                                                                            \
    do {                                                                                           \
        int st_rc_ = (call);                                                                       \
        if (st_rc_ != AFMT_OK) fail_msg("%s -> %d: %s", #call, st_rc_, st_msg(st));                \
    } while (0)

static afmt_storage *open_ok(afmt_storage_kind k, const char *path, unsigned flags) {
    char msg[AFMT_ERRMSG_MAX] = "";
    afmt_storage *st = NULL;
    int rc = afmt__storage_open(k, MPI_COMM_SELF, path, flags, MPI_INFO_NULL, &st, msg);
    if (rc != AFMT_OK) fail_msg("open(%s, 0x%x) -> %d: %s", path, flags, rc, msg);
    assert_non_null(st);
    return st;
}

static void fill(uint8_t *p, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) tu_value(p + i, 1, i, seed);
}

/* A fresh name: a file path in scratch (or just a registry name for memory). */
static const char *fresh(afmt_storage_kind k, const char *tag) {
    const char *p = tu_path(NULL, tag);
    if (k == AFMT_STORAGE_MEMORY) afmt__storage_remove(k, p, NULL);
    return p;
}

static void test_open_modes(void **state) {
    afmt_storage_kind k = kind_of(state);
    const char *path = fresh(k, "st-open");
    char msg[AFMT_ERRMSG_MAX] = "";
    afmt_storage *st = (afmt_storage *)&msg; /* must be reset to NULL on failure */

    assert_int_equal(afmt__storage_exists(k, path), 0);
    assert_int_equal(
        afmt__storage_open(k, MPI_COMM_SELF, path, AFMT_ST_READ, MPI_INFO_NULL, &st, msg),
        AFMT_ENOTFOUND);
    assert_null(st);
    assert_non_null(strstr(msg, path));
    assert_int_equal(afmt__storage_exists(k, path), 0);

    st = open_ok(k, path, AFMT_ST_WRITE | AFMT_ST_CREATE | AFMT_ST_EXCL);
    uint64_t sz = 99;
    ST_OK(st, st->ops->size(st, &sz));
    assert_int_equal(sz, 0);
    ST_OK(st, st->ops->write_at(st, 0, "abc", 3));
    ST_OK(st, st->ops->close(st));
    assert_int_equal(afmt__storage_exists(k, path), 1);

    st = NULL;
    msg[0] = '\0';
    assert_int_equal(afmt__storage_open(k, MPI_COMM_SELF, path,
                                        AFMT_ST_WRITE | AFMT_ST_CREATE | AFMT_ST_EXCL,
                                        MPI_INFO_NULL, &st, msg),
                     AFMT_EEXIST);
    assert_null(st);
    assert_true(strlen(msg) > 0);

    /* CREATE without EXCL opens the existing file, content intact. */
    st = open_ok(k, path, AFMT_ST_WRITE | AFMT_ST_CREATE);
    char got[4] = "";
    ST_OK(st, st->ops->read_at(st, 0, got, 3));
    assert_memory_equal(got, "abc", 3);
    ST_OK(st, st->ops->close(st));

    /* Bad arguments. */
    assert_int_equal(afmt__storage_open(k, MPI_COMM_SELF, path, 0, MPI_INFO_NULL, &st, msg),
                     AFMT_EINVAL);
    assert_int_equal(afmt__storage_open(k, MPI_COMM_SELF, path, AFMT_ST_READ | AFMT_ST_EXCL,
                                        MPI_INFO_NULL, &st, msg),
                     AFMT_EINVAL);
    assert_int_equal(
        afmt__storage_open(k, MPI_COMM_SELF, NULL, AFMT_ST_READ, MPI_INFO_NULL, &st, msg),
        AFMT_EINVAL);
    ST_OK(NULL, afmt__storage_remove(k, path, msg));
}

static void test_roundtrip(void **state) {
    afmt_storage_kind k = kind_of(state);
    const char *path = fresh(k, "st-rt");
    afmt_storage *st = open_ok(k, path, AFMT_ST_WRITE | AFMT_ST_CREATE);
    uint8_t a[1000], b[777], c[5000], got[8192];
    fill(a, sizeof a, 1);
    fill(b, sizeof b, 2);
    fill(c, sizeof c, 3);
    /* Out of order, with a gap [1000, 4096) that must read as zeros. */
    ST_OK(st, st->ops->write_at(st, 4096, b, sizeof b));
    ST_OK(st, st->ops->write_at(st, 0, a, sizeof a));
    ST_OK(st, st->ops->write_at_all(st, 4096 + sizeof b, c, sizeof c));
    ST_OK(st, st->ops->write_at(st, 100, "", 0)); /* empty write: no effect */
    ST_OK(st, st->ops->write_at_all(st, 0, NULL, 0));
    uint64_t sz = 0, want = 4096 + sizeof b + sizeof c;
    ST_OK(st, st->ops->size(st, &sz));
    assert_int_equal(sz, want);

    ST_OK(st, st->ops->read_at(st, 0, got, sizeof a));
    assert_memory_equal(got, a, sizeof a);
    ST_OK(st, st->ops->read_at(st, 1000, got, 4096 - 1000));
    for (size_t i = 0; i < 4096 - 1000; i++) assert_int_equal(got[i], 0);
    ST_OK(st, st->ops->read_at(st, 4096, got, sizeof b + sizeof c));
    assert_memory_equal(got, b, sizeof b);
    assert_memory_equal(got + sizeof b, c, sizeof c);
    ST_OK(st, st->ops->read_at(st, 10, got, 5)); /* unaligned inner read */
    assert_memory_equal(got, a + 10, 5);
    ST_OK(st, st->ops->read_at(st, want, got, 0)); /* empty read at the end is fine */

    /* Overwrite inside. */
    ST_OK(st, st->ops->write_at(st, 500, "XYZ", 3));
    ST_OK(st, st->ops->read_at(st, 499, got, 5));
    assert_int_equal(got[0], a[499]);
    assert_memory_equal(got + 1, "XYZ", 3);
    assert_int_equal(got[4], a[503]);

    /* Past the end: EIO with a message naming the path and "short read". */
    st->errmsg[0] = '\0';
    assert_int_equal(st->ops->read_at(st, want - 10, got, 20), AFMT_EIO);
    assert_non_null(strstr(st->errmsg, path));
    assert_non_null(strstr(st->errmsg, "short read"));
    assert_int_equal(st->ops->read_at(st, want + 100, got, 1), AFMT_EIO);
    ST_OK(st, st->ops->sync(st));
    ST_OK(st, st->ops->close(st));

    /* Read-only reopen sees the data, and cannot write. */
    st = open_ok(k, path, AFMT_ST_READ);
    ST_OK(st, st->ops->read_at(st, 4096, got, sizeof b));
    assert_memory_equal(got, b, sizeof b);
    st->errmsg[0] = '\0';
    assert_int_not_equal(st->ops->write_at(st, 0, "q", 1), AFMT_OK);
    assert_true(strlen(st->errmsg) > 0);
    ST_OK(st, st->ops->close(st));
    ST_OK(NULL, afmt__storage_remove(k, path, NULL));
}

static void test_truncate_sync(void **state) {
    afmt_storage_kind k = kind_of(state);
    const char *path = fresh(k, "st-trunc");
    afmt_storage *st = open_ok(k, path, AFMT_ST_WRITE | AFMT_ST_CREATE);
    uint8_t d[3000], got[3000];
    fill(d, sizeof d, 7);
    ST_OK(st, st->ops->write_at(st, 0, d, sizeof d));
    ST_OK(st, st->ops->sync(st));
    ST_OK(st, st->ops->truncate(st, 1200));
    uint64_t sz = 0;
    ST_OK(st, st->ops->size(st, &sz));
    assert_int_equal(sz, 1200);
    assert_int_equal(st->ops->read_at(st, 1100, got, 200), AFMT_EIO);
    ST_OK(st, st->ops->read_at(st, 0, got, 1200));
    assert_memory_equal(got, d, 1200);
    /* Growing by truncate zero-fills. */
    ST_OK(st, st->ops->truncate(st, 2000));
    ST_OK(st, st->ops->size(st, &sz));
    assert_int_equal(sz, 2000);
    ST_OK(st, st->ops->read_at(st, 1200, got, 800));
    for (int i = 0; i < 800; i++) assert_int_equal(got[i], 0);
    ST_OK(st, st->ops->truncate(st, 0));
    ST_OK(st, st->ops->size(st, &sz));
    assert_int_equal(sz, 0);
    ST_OK(st, st->ops->sync(st));
    ST_OK(st, st->ops->close(st));
    ST_OK(NULL, afmt__storage_remove(k, path, NULL));
}

static void write_file(afmt_storage_kind k, const char *path, const char *text) {
    afmt_storage *st = open_ok(k, path, AFMT_ST_WRITE | AFMT_ST_CREATE);
    ST_OK(st, st->ops->truncate(st, 0));
    ST_OK(st, st->ops->write_at(st, 0, text, strlen(text)));
    ST_OK(st, st->ops->sync(st));
    ST_OK(st, st->ops->close(st));
}

static void test_rename_remove_exists(void **state) {
    afmt_storage_kind k = kind_of(state);
    const char *a = fresh(k, "st-ren-a");
    const char *b = fresh(k, "st-ren-b");
    char msg[AFMT_ERRMSG_MAX] = "";
    write_file(k, a, "new content");
    write_file(k, b, "old");
    assert_int_equal(afmt__storage_exists(k, a), 1);
    assert_int_equal(afmt__storage_exists(k, b), 1);

    ST_OK(NULL, afmt__storage_rename(k, a, b, msg));
    assert_int_equal(afmt__storage_exists(k, a), 0);
    assert_int_equal(afmt__storage_exists(k, b), 1);
    afmt_storage *st = open_ok(k, b, AFMT_ST_READ);
    uint64_t sz = 0;
    ST_OK(st, st->ops->size(st, &sz));
    assert_int_equal(sz, strlen("new content"));
    char got[32] = "";
    ST_OK(st, st->ops->read_at(st, 0, got, sz));
    assert_memory_equal(got, "new content", sz);

    /* Removing a name while a handle is open: the handle keeps working. */
    ST_OK(NULL, afmt__storage_remove(k, b, msg));
    assert_int_equal(afmt__storage_exists(k, b), 0);
    memset(got, 0, sizeof got);
    ST_OK(st, st->ops->read_at(st, 0, got, 3));
    assert_memory_equal(got, "new", 3);
    ST_OK(st, st->ops->close(st));

    /* Missing: remove is fine, rename fails with a message. */
    ST_OK(NULL, afmt__storage_remove(k, b, msg));
    msg[0] = '\0';
    assert_int_not_equal(afmt__storage_rename(k, a, b, msg), AFMT_OK);
    assert_non_null(strstr(msg, a));
}

/* 10 MB through 1 MB pieces: the loops must stitch pieces at the right offsets. */
static void test_pieces(void **state) {
    afmt_storage_kind k = kind_of(state);
    const char *path = fresh(k, "st-piece");
    const size_t n = 10 * 1000 * 1000 + 17;
    uint8_t *d = malloc(n), *got = malloc(n);
    assert_non_null(d);
    assert_non_null(got);
    fill(d, n, 11);
    afmt__storage_set_max_piece(1 << 20);
    afmt_storage *st = open_ok(k, path, AFMT_ST_WRITE | AFMT_ST_CREATE);
    ST_OK(st, st->ops->write_at(st, 3, d, n));
    memset(got, 0, n);
    ST_OK(st, st->ops->read_at(st, 3, got, n));
    assert_memory_equal(got, d, n);
    /* write_at_all: above 1 MiB goes through the derived block type plus a remainder. */
    ST_OK(st, st->ops->write_at_all(st, n + 3, d, n));
    memset(got, 0, n);
    ST_OK(st, st->ops->read_at(st, n + 3, got, n));
    assert_memory_equal(got, d, n);
    uint64_t sz = 0;
    ST_OK(st, st->ops->size(st, &sz));
    assert_int_equal(sz, 2 * n + 3);
    /* A short read in a later piece is still caught. */
    assert_int_equal(st->ops->read_at(st, n + 3, got, n + 1), AFMT_EIO);
    ST_OK(st, st->ops->close(st));
    afmt__storage_set_max_piece(0);
    free(d);
    free(got);
    ST_OK(NULL, afmt__storage_remove(k, path, NULL));
}

static void test_two_handles(void **state) {
    afmt_storage_kind k = kind_of(state);
    const char *path = fresh(k, "st-two");
    afmt_storage *w = open_ok(k, path, AFMT_ST_WRITE | AFMT_ST_CREATE);
    afmt_storage *r = open_ok(k, path, AFMT_ST_READ);
    ST_OK(w, w->ops->write_at(w, 0, "shared", 6));
    ST_OK(w, w->ops->sync(w));
    char got[6];
    ST_OK(r, r->ops->read_at(r, 0, got, 6));
    assert_memory_equal(got, "shared", 6);
    ST_OK(r, r->ops->close(r));
    ST_OK(w, w->ops->close(w));
    ST_OK(NULL, afmt__storage_remove(k, path, NULL));
}

static void test_mem_get_put(void **state) {
    (void)state;
    const char *name = "mem:get-put";
    uint8_t *data = (uint8_t *)&state;
    uint64_t len = 5;
    afmt__storage_remove(AFMT_STORAGE_MEMORY, name, NULL);
    assert_int_equal(afmt__storage_mem_get(name, &data, &len), AFMT_ENOTFOUND);
    assert_null(data);
    assert_int_equal(len, 0);

    ST_OK(NULL, afmt__storage_mem_put(name, (const uint8_t *)"hello", 5));
    afmt_storage *st = open_ok(AFMT_STORAGE_MEMORY, name, AFMT_ST_WRITE);
    char got[8] = "";
    ST_OK(st, st->ops->read_at(st, 0, got, 5));
    assert_memory_equal(got, "hello", 5);
    ST_OK(st, st->ops->write_at(st, 8, "!", 1)); /* grows with a zero gap */
    ST_OK(NULL, afmt__storage_mem_get(name, &data, &len));
    assert_int_equal(len, 9);
    assert_memory_equal(data, "hello\0\0\0!", 9);
    free(data);
    /* put replaces the content under an open handle, as overwriting a file would. */
    ST_OK(NULL, afmt__storage_mem_put(name, (const uint8_t *)"ab", 2));
    uint64_t sz = 0;
    ST_OK(st, st->ops->size(st, &sz));
    assert_int_equal(sz, 2);
    ST_OK(st, st->ops->close(st));
    ST_OK(NULL, afmt__storage_mem_put(name, NULL, 0));
    ST_OK(NULL, afmt__storage_mem_get(name, &data, &len));
    assert_int_equal(len, 0);
    free(data);
    ST_OK(NULL, afmt__storage_remove(AFMT_STORAGE_MEMORY, name, NULL));
    assert_int_equal(afmt__storage_exists(AFMT_STORAGE_MEMORY, name), 0);
}

/* The MPI-IO message format: operation, path, offset, length, MPI text. */
static void test_mpiio_message(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "st-msg");
    afmt_storage *st = open_ok(AFMT_STORAGE_MPIIO, path, AFMT_ST_WRITE | AFMT_ST_CREATE);
    ST_OK(st, st->ops->close(st));
    st = open_ok(AFMT_STORAGE_MPIIO, path, AFMT_ST_READ);
    int rc = st->ops->write_at(st, 4096, "x", 1); /* read-only: MPI refuses */
    assert_int_equal(rc, AFMT_EIO);
    assert_non_null(strstr(st->errmsg, "write_at("));
    assert_non_null(strstr(st->errmsg, path));
    assert_non_null(strstr(st->errmsg, "off=4096"));
    assert_non_null(strstr(st->errmsg, "len=1"));
    ST_OK(st, st->ops->close(st));
    tu_remove(path);
}

/* One entry per backend, named so that a failure says which. */
// clang-format off
#define PER_KIND(f)                                                 \
    {#f "/mpiio", f, NULL, NULL, (void *)&kinds[0]},                \
    {#f "/posix", f, NULL, NULL, (void *)&kinds[1]},                \
    {#f "/memory", f, NULL, NULL, (void *)&kinds[2]}
// clang-format on

static const struct CMUnitTest tests[] = {
    PER_KIND(test_open_modes),
    PER_KIND(test_roundtrip),
    PER_KIND(test_truncate_sync),
    PER_KIND(test_rename_remove_exists),
    PER_KIND(test_pieces),
    PER_KIND(test_two_handles),
    cmocka_unit_test(test_mem_get_put),
    cmocka_unit_test(test_mpiio_message),
};

TU_MAIN("storage", tests)
