/* Checkpoint on a signal (afmt_signal_arm / afmt_signal_pending) and layer provenance. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

/* The signal reaches one rank only; every rank must learn it from the collective query. */
static void test_signal_one_rank(void **state) {
    (void)state;
    int pending = -1;
    assert_int_equal(afmt_signal_arm(SIGKILL), AFMT_EINVAL);
    TU_OK(NULL, afmt_signal_arm(SIGUSR1));
    TU_OK(NULL, afmt_signal_pending(MPI_COMM_WORLD, &pending));
    assert_int_equal(pending, 0);
    if (tu_rank() == tu_size() - 1) raise(SIGUSR1);
    TU_OK(NULL, afmt_signal_pending(MPI_COMM_WORLD, &pending));
    assert_int_equal(pending, 1);
    /* The flag stays set until cleared (the job checkpoints, then leaves). */
    TU_OK(NULL, afmt_signal_pending(MPI_COMM_WORLD, &pending));
    assert_int_equal(pending, 1);
    TU_OK(NULL, afmt_signal_clear());
    TU_OK(NULL, afmt_signal_pending(MPI_COMM_WORLD, &pending));
    assert_int_equal(pending, 0);
    assert_int_equal(afmt_signal_pending(MPI_COMM_WORLD, NULL), AFMT_EINVAL);
}

static void test_provenance(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "prov");
    afmt_file *f;
    uint64_t shape = 10, st = 0, ct = 10;
    int32_t v[10] = {0};
    setenv("SLURM_JOB_ID", "4242", 1);
    unsetenv("SLURM_ARRAY_TASK_ID");
    TU_OK(NULL, afmt_create(MPI_COMM_WORLD, path, 0, NULL, &f));
    TU_OK(f, afmt_define(f, "x", AFMT_INT32, 1, &shape, NULL, NULL, NULL));
    if (tu_rank() == 0) TU_OK(f, afmt_write(f, "x", &st, &ct, v));
    TU_OK(f, afmt_commit(f));
    unsetenv("SLURM_JOB_ID");
    if (tu_rank() == 0) TU_OK(f, afmt_write(f, "x", &st, &ct, v));
    TU_OK(f, afmt_close(f));
    TU_OK(NULL, afmt_open(MPI_COMM_SELF, path, AFMT_RDONLY, NULL, &f));
    char buf[300];
    uint64_t n = sizeof buf;
    int64_t nranks = 0;
    uint64_t one = 1;
    TU_OK(f, afmt_layer_attr(f, 0, "slurm_job_id", AFMT_UINT8, &n, buf));
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "4242", 4);
    n = sizeof buf;
    assert_int_equal(afmt_layer_attr(f, 1, "slurm_job_id", AFMT_UINT8, &n, buf), AFMT_ENOTFOUND);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    n = sizeof buf;
    TU_OK(f, afmt_layer_attr(f, 1, "host", AFMT_UINT8, &n, buf));
    assert_int_equal(n, strlen(host));
    assert_memory_equal(buf, host, n);
    TU_OK(f, afmt_layer_attr(f, 1, "nranks", AFMT_INT64, &one, &nranks));
    assert_int_equal(nranks, tu_size());
    /* time_ns is informational wall-clock time (it may step back between commits): only
     * that it is set and that the attribute equals the layer header's stamp is checked. */
    for (uint64_t k = 0; k < 2; k++) {
        uint64_t id = 0, hdr = 0, attr = 0;
        one = 1;
        TU_OK(f, afmt_layer_attr(f, k, "time_ns", AFMT_UINT64, &one, &attr));
        assert_int_equal(one, 1);
        TU_OK(f, afmt_layer_id(f, k, &id, &hdr));
        assert_true(attr > 0);
        assert_int_equal(attr, hdr);
    }
    one = 1;
    int32_t nr32 = 0; /* INT64 read as INT32: converted */
    TU_OK(f, afmt_layer_attr(f, 1, "nranks", AFMT_INT32, &one, &nr32));
    assert_int_equal(nr32, tu_size());
    one = 1;
    /* time_ns does not fit INT32: ERANGE naming the key (not the capacity's message) */
    assert_int_equal(afmt_layer_attr(f, 1, "time_ns", AFMT_INT32, &one, &nr32), AFMT_ERANGE);
    assert_non_null(strstr(afmt_errmsg(f), "\"time_ns\"): value 0"));
    assert_int_equal(afmt_layer_attr(f, 2, "host", AFMT_UINT8, &n, buf), AFMT_ERANGE);
    TU_OK(f, afmt_close(f));
    tu_remove(path);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_signal_one_rank),
    cmocka_unit_test(test_provenance),
};
TU_MAIN("signal", tests)
