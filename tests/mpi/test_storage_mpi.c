/* test_storage_mpi.c - the MPI-IO backend (and POSIX, one fd per rank) across ranks:
 * regions per rank through write_at and write_at_all with unequal lengths (some 0),
 * and open outcomes (ENOTFOUND, EEXIST) that agree on every rank. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"

#define ST_OK(st, call)                                                                            \
    do {                                                                                           \
        int st_rc_ = (call);                                                                       \
        if (st_rc_ != AFMT_OK)                                                                     \
            fail_msg("rank %d: %s -> %d: %s", tu_rank(), #call, st_rc_, (st)->errmsg);             \
    } while (0)

/* Unequal lengths: rank 1 (and every third after) writes nothing; rank 0 writes more
 * than 1 MiB, so write_at_all uses the derived block type there and not elsewhere. */
static uint64_t len_of(int rank, int phase) {
    if (rank % 3 == 1) return 0;
    if (rank == 0) return phase ? (1u << 20) + 4321 : 70000;
    return (uint64_t)(1000 * rank + 37 * phase + 5);
}

static uint64_t off_of(int rank, int phase, uint64_t base) {
    uint64_t off = base;
    for (int r = 0; r < rank; r++) off += len_of(r, phase);
    return off;
}

static void fill(uint8_t *p, uint64_t n, uint64_t first, uint64_t seed) {
    for (uint64_t i = 0; i < n; i++) tu_value(p + i, 1, first + i, seed);
}

/* Each rank writes its regions, everyone reads the whole file back. */
static void regions(afmt_storage_kind kind, uint64_t piece) {
    int rank = tu_rank(), size = tu_size();
    const char *path = tu_path(NULL, "stmpi");
    char msg[AFMT_ERRMSG_MAX] = "";
    afmt_storage *st = NULL;
    int rc = afmt__storage_open(kind, MPI_COMM_WORLD, path, AFMT_ST_WRITE | AFMT_ST_CREATE,
                                MPI_INFO_NULL, &st, msg);
    if (rc != AFMT_OK) fail_msg("rank %d: open -> %d: %s", rank, rc, msg);
    afmt__storage_set_max_piece(piece);

    uint64_t total0 = off_of(size, 0, 0), total1 = off_of(size, 1, 0);
    uint64_t base1 = total0 + 123; /* a gap between the two phases */
    uint64_t n0 = len_of(rank, 0), n1 = len_of(rank, 1);
    uint8_t *mine = malloc(n0 + n1 + 1);
    assert_non_null(mine);
    fill(mine, n0, off_of(rank, 0, 0), 5);
    fill(mine + n0, n1, off_of(rank, 1, base1), 5);

    ST_OK(st, st->ops->write_at(st, off_of(rank, 0, 0), mine, n0));
    if (kind == AFMT_STORAGE_MPIIO) {
        ST_OK(st, st->ops->write_at_all(st, off_of(rank, 1, base1), mine + n0, n1));
        /* MPI-IO consistency: sync, barrier, sync makes others' writes visible. */
        ST_OK(st, st->ops->sync(st));
        MPI_Barrier(MPI_COMM_WORLD);
        ST_OK(st, st->ops->sync(st));
    } else {
        ST_OK(st, st->ops->write_at(st, off_of(rank, 1, base1), mine + n0, n1));
        ST_OK(st, st->ops->sync(st));
        MPI_Barrier(MPI_COMM_WORLD);
    }

    uint64_t sz = 0, want = base1 + total1;
    ST_OK(st, st->ops->size(st, &sz));
    /* The file ends where the last nonempty region ends. */
    uint64_t end = 0;
    for (int r = 0; r < size; r++) {
        uint64_t e0 = off_of(r, 0, 0) + len_of(r, 0), e1 = off_of(r, 1, base1) + len_of(r, 1);
        if (len_of(r, 0) && e0 > end) end = e0;
        if (len_of(r, 1) && e1 > end) end = e1;
    }
    assert_int_equal(sz, end);
    assert_true(sz <= want);

    uint8_t *all = malloc(sz + 1), *exp = malloc(sz + 1);
    assert_non_null(all);
    assert_non_null(exp);
    ST_OK(st, st->ops->read_at(st, 0, all, sz));
    memset(exp, 0, sz);
    fill(exp, total0, 0, 5);
    if (sz > base1) fill(exp + base1, sz - base1, base1, 5);
    for (uint64_t i = 0; i < sz; i++)
        if (all[i] != exp[i])
            fail_msg("rank %d: byte %llu is %u, expected %u", rank, (unsigned long long)i, all[i],
                     exp[i]);
    assert_int_equal(st->ops->read_at(st, sz - 1, all, 2), AFMT_EIO);

    afmt__storage_set_max_piece(0);
    ST_OK(st, st->ops->close(st));
    free(mine);
    free(all);
    free(exp);
    tu_remove(path);
}

static void test_regions_mpiio(void **state) {
    (void)state;
    regions(AFMT_STORAGE_MPIIO, 0);
}

static void test_regions_mpiio_small_pieces(void **state) {
    (void)state;
    regions(AFMT_STORAGE_MPIIO, 4096 + 7);
}

static void test_regions_posix(void **state) {
    (void)state;
    regions(AFMT_STORAGE_POSIX, 1000);
}

/* Every rank gets the same code, whichever rank would have noticed. */
static void open_codes(afmt_storage_kind kind) {
    int rank = tu_rank();
    const char *path = tu_path(NULL, "stmpi-codes");
    char msg[AFMT_ERRMSG_MAX] = "";
    afmt_storage *st = NULL;

    int rc = afmt__storage_open(kind, MPI_COMM_WORLD, path, AFMT_ST_READ, MPI_INFO_NULL, &st, msg);
    assert_int_equal(rc, AFMT_ENOTFOUND);
    assert_null(st);
    assert_true(strlen(msg) > 0);

    rc = afmt__storage_open(kind, MPI_COMM_WORLD, path,
                            AFMT_ST_WRITE | AFMT_ST_CREATE | AFMT_ST_EXCL, MPI_INFO_NULL, &st, msg);
    if (rc != AFMT_OK) fail_msg("rank %d: exclusive create -> %d: %s", rank, rc, msg);
    ST_OK(st, st->ops->close(st));

    st = NULL;
    rc = afmt__storage_open(kind, MPI_COMM_WORLD, path,
                            AFMT_ST_WRITE | AFMT_ST_CREATE | AFMT_ST_EXCL, MPI_INFO_NULL, &st, msg);
    assert_int_equal(rc, AFMT_EEXIST);
    assert_null(st);

    /* A subset communicator works too: odd and even ranks open separately. */
    MPI_Comm half;
    MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &half);
    rc = afmt__storage_open(kind, half, path, AFMT_ST_READ, MPI_INFO_NULL, &st, msg);
    if (rc != AFMT_OK) fail_msg("rank %d: open on half -> %d: %s", rank, rc, msg);
    uint64_t sz = 1;
    ST_OK(st, st->ops->size(st, &sz));
    assert_int_equal(sz, 0);
    ST_OK(st, st->ops->close(st));
    MPI_Comm_free(&half);
    MPI_Barrier(MPI_COMM_WORLD); /* the halves are not synchronised with each other */
    tu_remove(path);
}

static void test_open_codes_mpiio(void **state) {
    (void)state;
    open_codes(AFMT_STORAGE_MPIIO);
}

static void test_open_codes_posix(void **state) {
    (void)state;
    open_codes(AFMT_STORAGE_POSIX);
}

/* truncate (collective) then every rank sees the new size. */
static void test_truncate_collective(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "stmpi-trunc");
    char msg[AFMT_ERRMSG_MAX] = "";
    afmt_storage *st = NULL;
    int rc = afmt__storage_open(AFMT_STORAGE_MPIIO, MPI_COMM_WORLD, path,
                                AFMT_ST_WRITE | AFMT_ST_CREATE, MPI_INFO_NULL, &st, msg);
    if (rc != AFMT_OK) fail_msg("open -> %d: %s", rc, msg);
    ST_OK(st, st->ops->truncate(st, 10000));
    uint64_t sz = 0;
    ST_OK(st, st->ops->size(st, &sz));
    assert_int_equal(sz, 10000);
    /* set_size need not synchronise: keep the next one from overtaking this check. */
    MPI_Barrier(MPI_COMM_WORLD);
    ST_OK(st, st->ops->truncate(st, 17));
    ST_OK(st, st->ops->size(st, &sz));
    assert_int_equal(sz, 17);
    ST_OK(st, st->ops->close(st));
    tu_remove(path);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_regions_mpiio),    cmocka_unit_test(test_regions_mpiio_small_pieces),
    cmocka_unit_test(test_regions_posix),    cmocka_unit_test(test_open_codes_mpiio),
    cmocka_unit_test(test_open_codes_posix), cmocka_unit_test(test_truncate_collective),
};

TU_MAIN("storage_mpi", tests)
