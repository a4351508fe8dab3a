/* afmt_open_layer (time travel) and afmt_rollback (restart from an older checkpoint). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define N 1000

/* Step s writes value s*1000+i on rank-interleaved, chunk-unaligned slices. */
static void write_step(afmt_file *f, int s) {
    int r = tu_rank(), p = tu_size();
    uint64_t lo = (uint64_t)N * (uint64_t)r / (uint64_t)p,
             hi = (uint64_t)N * (uint64_t)(r + 1) / (uint64_t)p;
    uint64_t n = hi - lo;
    int64_t *v = malloc(sizeof(int64_t) * (n ? n : 1));
    for (uint64_t i = 0; i < n; i++) v[i] = s * 1000 + (int64_t)(lo + i);
    if (n) TU_OK(f, afmt_write(f, "x", &lo, &n, v));
    int64_t st = s;
    TU_OK(f, afmt_set_attr(f, NULL, "step", AFMT_INT64, 1, &st));
    free(v);
}

static void check_step(afmt_file *f, int s) {
    int64_t v[N];
    uint64_t st = 0, ct = N, n = 1;
    TU_OK(f, afmt_read(f, "x", &st, &ct, v));
    for (int i = 0; i < N; i++) assert_int_equal(v[i], s * 1000 + i);
    int64_t step = 0;
    TU_OK(f, afmt_get_attr(f, NULL, "step", AFMT_INT64, &n, &step));
    assert_int_equal(step, s);
}

static void test_time_travel_and_rollback(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rollback");
    afmt_file *f;
    uint64_t shape = N, chunk = 64;
    TU_OK(NULL, afmt_create(MPI_COMM_WORLD, path, 0, NULL, &f));
    TU_OK(f, afmt_define(f, "x", AFMT_INT64, 1, &shape, &chunk, NULL, NULL));
    for (int s = 1; s <= 4; s++) {
        write_step(f, s);
        TU_OK(f, afmt_commit(f));
    }
    uint64_t ids[4], nl = 0;
    TU_OK(f, afmt_layers(f, &nl));
    assert_int_equal(nl, 4);
    for (uint64_t i = 0; i < 4; i++) TU_OK(f, afmt_layer_id(f, i, &ids[i], NULL));
    assert_int_equal(afmt_layer_id(f, 4, NULL, NULL), AFMT_ERANGE);
    TU_OK(f, afmt_close(f));

    /* Every older layer is still readable. */
    for (int s = 1; s <= 4; s++) {
        TU_OK(NULL, afmt_open_layer(MPI_COMM_WORLD, path, ids[s - 1], NULL, &f));
        check_step(f, s);
        TU_OK(f, afmt_layers(f, &nl));
        assert_int_equal(nl, (uint64_t)s);
        assert_int_equal(afmt_write(f, "x", NULL, NULL, NULL), AFMT_EREADONLY);
        TU_OK(f, afmt_close(f));
    }
    assert_int_equal(afmt_open_layer(MPI_COMM_WORLD, path, ids[3] + 10, NULL, &f), AFMT_ERANGE);
    assert_null(f);

    /* Roll back to step 2, check, then commit step 5 on top and reopen. */
    TU_OK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDWR, NULL, &f));
    assert_int_equal(afmt_rollback(f, ids[3] + 10), AFMT_ERANGE);
    write_step(f, 9);
    assert_int_equal(afmt_rollback(f, ids[1]), AFMT_ESTATE);
    TU_OK(f, afmt_commit(f)); /* step 9 becomes layer 5 */
    TU_OK(f, afmt_rollback(f, ids[1]));
    check_step(f, 2);
    TU_OK(f, afmt_layers(f, &nl));
    assert_int_equal(nl, 2);
    write_step(f, 5);
    TU_OK(f, afmt_commit(f));
    uint64_t newest;
    TU_OK(f, afmt_layer_id(f, 2, &newest, NULL));
    assert_true(newest > ids[3] + 1); /* ids of dead layers are never reused */
    TU_OK(f, afmt_close(f));
    TU_OK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f));
    check_step(f, 5);
    TU_OK(f, afmt_layers(f, &nl));
    assert_int_equal(nl, 3);
    TU_OK(f, afmt_close(f));
    /* Compaction drops the dead layers. */
    TU_OK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDWR, NULL, &f));
    TU_OK(f, afmt_compact(f));
    check_step(f, 5);
    TU_OK(f, afmt_close(f));
    tu_remove(path);
}

/* afmt_discard drops staged writes and metadata on every rank; close then commits nothing. */
static void test_discard(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "discard");
    afmt_file *f;
    uint64_t shape = N, chunk = 64, nl = 0;
    TU_OK(NULL, afmt_create(MPI_COMM_WORLD, path, 0, NULL, &f));
    TU_OK(f, afmt_define(f, "x", AFMT_INT64, 1, &shape, &chunk, NULL, NULL));
    write_step(f, 1);
    TU_OK(f, afmt_commit(f));
    write_step(f, 2);
    TU_OK(f, afmt_define(f, "y", AFMT_INT64, 1, &shape, &chunk, NULL, NULL));
    TU_OK(f, afmt_delete(f, "x"));
    TU_OK(f, afmt_discard(f));
    int n = 0;
    TU_OK(f, afmt_count(f, &n));
    assert_int_equal(n, 1);
    check_step(f, 1);
    TU_OK(f, afmt_commit(f)); /* nothing staged: no layer */
    TU_OK(f, afmt_layers(f, &nl));
    assert_int_equal(nl, 1);
    write_step(f, 3);
    TU_OK(f, afmt_discard(f));
    TU_OK(f, afmt_close(f));
    TU_OK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f));
    check_step(f, 1);
    TU_OK(f, afmt_layers(f, &nl));
    assert_int_equal(nl, 1);
    assert_int_equal(afmt_discard(f), AFMT_EREADONLY);
    TU_OK(f, afmt_close(f));
    tu_remove(path);
}

/* Asking a closed handle for its message must not overwrite the thread's last message. */
static void test_errmsg_after_close(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "errmsg");
    afmt_file *f;
    TU_OK(NULL, afmt_create(MPI_COMM_WORLD, path, 0, NULL, &f));
    TU_OK(f, afmt_close(f));
    assert_int_equal(afmt_layers(NULL, NULL), AFMT_EINVAL);
    char before[1024];
    snprintf(before, sizeof before, "%s", afmt_errmsg(NULL));
    assert_non_null(strstr(before, "afmt_layers"));
    assert_string_equal(afmt_errmsg(f), before);
    assert_string_equal(afmt_errmsg(NULL), before);
    /* A directory is not a file: a clear error, no MPI-IO noise. */
    assert_int_equal(afmt_open(MPI_COMM_WORLD, AFMT_TEST_SCRATCH, AFMT_RDONLY, NULL, &f),
                     AFMT_EINVAL);
    assert_non_null(strstr(afmt_errmsg(NULL), "is a directory"));
    tu_remove(path);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_errmsg_after_close),
    cmocka_unit_test(test_discard),
    cmocka_unit_test(test_time_travel_and_rollback),
};
TU_MAIN("rollback", tests)
