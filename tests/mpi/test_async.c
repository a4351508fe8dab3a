/* test_async.c - MPI integration: afmt_commit_start / afmt_commit_wait.
 *  - async = sync: the same steps committed with afmt_commit and with start/wait give
 *    files equal byte for byte (uuid and commit time fixed by a test hook), on the MPI-IO
 *    and POSIX backends, with and without spill, with 1 and 3 threads; edge chunks, a scalar,
 * chunks shared between ranks (merged at the start); while a commit drains, reads see the committed
 *    layers plus this rank's writes at both levels (the commit in flight and the writes
 *    staged since), spilled blocks included, and the next step is staged meanwhile;
 *  - the collective calls finish a commit in flight: set_attr, a second start, discard,
 *    close; afmt_commit_wait with nothing in flight is AFMT_OK;
 *  - a storage failure in the background (ENOSPC on each write of rank 0: blocks, segment,
 *    footer; on another rank's blocks; a failed fsync) comes back from afmt_commit_wait,
 *    or from the next collective call, with the same code on every rank and a message
 *    naming the layer, the rank and the errno; the file and a reopened handle read as the
 *    previous layer, and the step written again commits;
 *  - the memory backend commits at the start; read-only handles are refused;
 *  - all of it in both modes of the start: the collective part on the caller's thread, and
 *    (run as mpi.test_async_mt, under MPI_THREAD_MULTIPLE) on the helper thread, with the
 *    next step written while the helper seals and prepares the layer. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/file.h" /* afmt__set_fixed_identity, afmt__opts_set_backend */
#include "storage/storage.h"

#define NM 4

/* a: rows of 5 per rank (+3 on the last) in chunks of 4: slab edges share chunks. */
static void models_init(model *m) {
    uint64_t rows = (uint64_t)tu_size() * 5 + 3;
    const uint64_t sa[3] = {rows, 11, 6}, ca[3] = {4, 5, 4};
    const uint64_t sb[1] = {1001}, cb[1] = {64};
    const uint64_t sc[2] = {7, 9}, cc[2] = {3, 4};
    m_init(&m[0], "a", AFMT_FLOAT64, 3, sa, ca, NULL);
    m_init(&m[1], "s", AFMT_INT32, 0, NULL, NULL, NULL);
    m_init(&m[2], "b", AFMT_UINT8, 1, sb, cb, NULL);
    m_init(&m[3], "c", AFMT_INT64, 2, sc, cc, NULL);
}

static void rows_of(int r, uint64_t *r0, uint64_t *nr) {
    *r0 = (uint64_t)r * 5;
    *nr = 5 + (r == tu_size() - 1 ? 3 : 0);
}

/* Step 1: a, s, b defined; every rank its slab of a and strided pieces of b; rank 0 s. */
static void step1(afmt_file *f, model *m, int line) {
    for (int i = 0; i < 3; i++) EXPECT_OK_AT(line, f, m_define(f, &m[i]));
    for (int r = 0; r < tu_size(); r++) {
        uint64_t r0, nr;
        rows_of(r, &r0, &nr);
        const uint64_t st[3] = {r0, 0, 0}, ct[3] = {nr, 11, 6};
        m_write(f, &m[0], r, st, ct, 1 | SMOOTH, line);
        for (uint64_t pos = (uint64_t)r * 37; pos < 1001; pos += (uint64_t)tu_size() * 37) {
            uint64_t l = pos + 37 <= 1001 ? 37 : 1001 - pos;
            m_write(f, &m[2], r, &pos, &l, 3, line);
        }
    }
    m_write(f, &m[1], 0, NULL, NULL, 4, line);
}

/* Step 2: a box inside each rank's slab, over chunks of the step before. */
static void step2(afmt_file *f, model *m, int line) {
    for (int r = 0; r < tu_size(); r++) {
        uint64_t r0, nr;
        rows_of(r, &r0, &nr);
        const uint64_t st[3] = {r0 + 1, 2, 1}, ct[3] = {3, 7, 4};
        m_write(f, &m[0], r, st, ct, 5, line);
    }
}

/* Step 3: c defined and written by the last rank, s again by rank 0. */
static void step3(afmt_file *f, model *m, int line) {
    EXPECT_OK_AT(line, f, m_define(f, &m[3]));
    const uint64_t st[2] = {0, 0}, ct[2] = {7, 9};
    m_write(f, &m[3], tu_size() - 1, st, ct, 6, line);
    m_write(f, &m[1], 0, NULL, NULL, 7, line);
}

static int g_threads = 1; /* afmt_opts_set_threads of the handles of run_equal */

static afmt_opts *opts_for(const char *backend, uint64_t budget) {
    afmt_opts *o = NULL;
    if (afmt_opts_create(&o) != AFMT_OK) return NULL;
    afmt_opts_set_block_size(o, 4096);
    afmt_opts_set_threads(o, g_threads);
    if (budget) afmt_opts_set_mem_budget(o, budget);
    if (backend) afmt__opts_set_backend(o, backend);
    return o;
}

static void set_step(afmt_file *f, int64_t step, int line) {
    EXPECT_OK_AT(line, f, afmt_set_attr(f, NULL, "step", AFMT_INT64, 1, &step));
}

/* The three steps, each committed with afmt_commit. */
static void write_sync(const char *path, const char *backend, uint64_t budget, model *m) {
    afmt_opts *o = opts_for(backend, budget);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    afmt_opts_free(o);
    if (!f) return;
    step1(f, m, __LINE__);
    EXPECT_OK(f, afmt_commit(f));
    m_committed(&m[0]), m_committed(&m[1]), m_committed(&m[2]);
    step2(f, m, __LINE__);
    set_step(f, 2, __LINE__);
    EXPECT_OK(f, afmt_commit(f));
    step3(f, m, __LINE__);
    EXPECT_OK(f, afmt_commit(f));
    for (int i = 0; i < NM; i++) m_committed(&m[i]);
    EXPECT_OK(f, afmt_close(f));
}

/* How afmt_commit_start runs here: the collective part on the helper thread under
 * MPI_THREAD_MULTIPLE (AFMT_TEST_THREAD_LEVEL=multiple, the mpi.test_async_mt tests), else
 * on the caller's thread. */
static int start_mode(void) {
    int level = MPI_THREAD_SINGLE;
    MPI_Query_thread(&level);
    return level == MPI_THREAD_MULTIPLE ? 2 : 1;
}

/* The same steps with start/wait: each step is staged while the one before drains. */
static void write_async(const char *path, const char *backend, uint64_t budget, model *m) {
    afmt_opts *o = opts_for(backend, budget);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    afmt_opts_free(o);
    if (!f) return;
    EXPECT_OK(f, afmt_commit_wait(f)); /* nothing in flight */
    step1(f, m, __LINE__);
    EXPECT_OK(f, afmt_commit_start(f));
    EXPECT(f->drain != NULL);
    EXPECT(afmt__drain_mode(f) == start_mode());
    /* Into the second allocator, while the helper may still be sealing and preparing
     * step 1 (background mode); then the reads see the committed layers (none) plus this
     * rank's own writes at both levels. */
    step2(f, m, __LINE__);
    m_check_each(f, m, 3, 1, __LINE__);
    set_step(f, 2, __LINE__); /* finishes step 1 first */
    EXPECT(f->drain == NULL);
    EXPECT_LAYERS(f, 1);
    EXPECT_OK(f, afmt_commit_start(f));
    EXPECT_OK(f, afmt_commit_wait(f));
    EXPECT_LAYERS(f, 2);
    for (int i = 0; i < 3; i++) m_committed(&m[i]);
    m_check_each(f, m, 3, 0, __LINE__);
    step3(f, m, __LINE__);
    EXPECT_OK(f, afmt_commit_start(f));
    for (int i = 0; i < NM; i++) m_committed(&m[i]);
    EXPECT_OK(f, afmt_close(f)); /* finishes step 3 */
}

static void run_equal(const char *backend, uint64_t budget) {
    afmt__set_fixed_identity(1);
    model ms[NM], ma[NM];
    models_init(ms);
    models_init(ma);
    char ps[512], pa[512];
    snprintf(ps, sizeof ps, "%s", tu_path(NULL, "async-sync"));
    snprintf(pa, sizeof pa, "%s", tu_path(NULL, "async-async"));
    write_sync(ps, backend, budget, ms);
    write_async(pa, backend, budget, ma);
    afmt__set_fixed_identity(0);
    if (!same_bytes(ps, pa))
        rec(__LINE__, "start/wait and afmt_commit wrote different files (%s, budget %llu)",
            backend ? backend : "mpiio", (unsigned long long)budget);
    reopen_check(pa, ma, NM, __LINE__);
    rm_path(ps);
    rm_path(pa);
    m_free_each(ms, NM);
    m_free_each(ma, NM);
    done();
}

static void test_equal_mpiio(void **state) {
    (void)state;
    run_equal(NULL, 0);
}

static void test_equal_posix_spill(void **state) {
    (void)state;
    run_equal("posix", 3 * 4096); /* a budget of three blocks: most blocks spill */
}

static void test_equal_mpiio_spill(void **state) {
    (void)state;
    run_equal(NULL, 2 * 4096);
}

/* With 3 threads: chunks encoded and blocks compressed by the pool, while the commit
 * before drains (the start's seal waits for them before the helper takes the allocator). */
static void test_equal_threads(void **state) {
    (void)state;
    g_threads = 3;
    run_equal(NULL, 0);
    run_equal("posix", 3 * 4096);
    g_threads = 1;
}

/* A second start finishes the first; discard and close finish the one in flight. */
static void test_finish_points(void **state) {
    (void)state;
    model m[NM];
    models_init(m);
    const char *path = tu_path(NULL, "async-finish");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (f) {
        step1(f, m, __LINE__);
        EXPECT_OK(f, afmt_commit_start(f));
        for (int i = 0; i < 3; i++) m_committed(&m[i]);
        step2(f, m, __LINE__);
        EXPECT_OK(f, afmt_commit_start(f)); /* waits for step 1, starts step 2 */
        EXPECT_LAYERS(f, 1);
        EXPECT_OK(f, afmt_commit_wait(f));
        EXPECT_LAYERS(f, 2);
        for (int i = 0; i < 3; i++) m_committed(&m[i]);
        m_check_each(f, m, 3, 0, __LINE__);
        /* Discard while a commit drains: the commit lands, the writes after it go. */
        step3(f, m, __LINE__);
        EXPECT_OK(f, afmt_commit_start(f));
        for (int i = 0; i < NM; i++) m_committed(&m[i]);
        const uint64_t st[3] = {0, 0, 0}, ct[3] = {2, 2, 2};
        double junk[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
        EXPECT_OK(f, afmt_write(f, "a", st, ct, junk));
        EXPECT_OK(f, afmt_discard(f));
        EXPECT_LAYERS(f, 3);
        m_check_each(f, m, NM, 0, __LINE__);
        /* Close with a commit in flight: it is durable after afmt_close. */
        step2(f, m, __LINE__);
        EXPECT_OK(f, afmt_commit_start(f));
        for (int i = 0; i < NM; i++) m_committed(&m[i]);
        EXPECT_OK(f, afmt_close(f));
        afmt_file *g = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
        if (g) {
            EXPECT_LAYERS(g, 4);
            EXPECT_RC(g, afmt_commit_start(g), AFMT_EREADONLY);
            EXPECT_RC(g, afmt_commit_wait(g), AFMT_EREADONLY);
            EXPECT_OK(g, afmt_close(g));
        }
        reopen_check(path, m, NM, __LINE__);
    }
    rm_path(path);
    m_free_each(m, NM);
    done();
}

/* The memory backend has no helper: the start commits. */
static void test_memory_backend(void **state) {
    (void)state;
    model m[NM];
    models_init(m);
    afmt_opts *o = opts_for("memory", 0);
    afmt_file *f = xopen(MPI_COMM_SELF, "/async-mem", 0, AFMT_TRUNC, o, __LINE__);
    afmt_opts_free(o);
    if (f) {
        const uint64_t st[1] = {0}, ct[1] = {1001};
        EXPECT_OK(f, m_define(f, &m[2]));
        unsigned char *buf = malloc(1001);
        for (int i = 0; i < 1001; i++) buf[i] = (unsigned char)(i * 7 + tu_rank());
        EXPECT_OK(f, afmt_write(f, "b", st, ct, buf));
        EXPECT_OK(f, afmt_commit_start(f));
        EXPECT(f->drain == NULL);
        EXPECT_LAYERS(f, 1);
        EXPECT_OK(f, afmt_commit_wait(f));
        unsigned char *back = calloc(1, 1001);
        EXPECT_OK(f, afmt_read(f, "b", st, ct, back));
        EXPECT(memcmp(buf, back, 1001) == 0);
        free(buf);
        free(back);
        EXPECT_OK(f, afmt_close(f));
    }
    m_free_each(m, NM);
    done();
}

/* A copy of src's expected content (freed with free() of all and mine). */
static void m_dup(model *dst, const model *src) {
    *dst = *src;
    size_t bytes = (size_t)src->n * src->es + 1;
    dst->all = malloc(bytes);
    dst->mine = malloc(bytes);
    memcpy(dst->all, src->all, bytes - 1);
    memcpy(dst->mine, src->mine, bytes - 1);
}

static void expect_in(const char *msg, const char *part, int line) {
    if (!strstr(msg, part)) rec(line, "message \"%s\" lacks \"%s\"", msg, part);
}

/* A fault in the background on rank victim: the nth call of op on its drain's storage. */
typedef struct {
    afmt_fault_op op;
    int victim; /* -1: the last rank */
    uint64_t nth;
    int by_next_call; /* 1: reported by afmt_set_attr instead of afmt_commit_wait */
} bg_case;

static void run_bg_case(const bg_case *c) {
    int victim = c->victim < 0 ? tu_size() - 1 : c->victim;
    model m[NM], l1[NM];
    models_init(m);
    memset(l1, 0, sizeof l1);
    const char *path = tu_path(NULL, "async-fault");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (f) {
        step1(f, m, __LINE__);
        EXPECT_OK(f, afmt_commit(f));
        for (int i = 0; i < 3; i++) m_committed(&m[i]);
        for (int i = 0; i < NM; i++) m_dup(&l1[i], &m[i]); /* layer 1 */
        step2(f, m, __LINE__);
        afmt_storage_fault spec = {c->op, c->nth, ENOSPC, AFMT_FAULT_FAIL, victim};
        afmt__storage_set_fault(&spec);
        EXPECT_OK(f, afmt_commit_start(f));
        int rc = c->by_next_call ? afmt_set_attr(f, NULL, "after", AFMT_INT32, 1, &victim)
                                 : afmt_commit_wait(f);
        uint64_t injected = tu_rank() == victim ? afmt__storage_fault_calls(c->op) : 0;
        afmt__storage_set_fault(NULL);
        if (rc != AFMT_EIO)
            rec(__LINE__, "op %d nth %llu on rank %d: rc %d, want AFMT_EIO", (int)c->op,
                (unsigned long long)c->nth, victim, rc);
        if (tu_rank() == victim && injected < c->nth)
            rec(__LINE__, "only %llu calls of op %d on rank %d", (unsigned long long)injected,
                (int)c->op, victim);
        char want[64];
        snprintf(want, sizeof want, "on rank %d", victim);
        expect_in(afmt_errmsg(f), "layer 2", __LINE__);
        expect_in(afmt_errmsg(f), want, __LINE__);
        expect_in(afmt_errmsg(f), "No space left on device", __LINE__);
        expect_in(afmt_errmsg(f), c->by_next_call ? "afmt_set_attr" : "afmt_commit_wait", __LINE__);
        /* The handle is back at layer 1, nothing staged: the failed step is gone. */
        EXPECT_LAYERS(f, 1);
        int32_t v = 0;
        uint64_t n = 1;
        EXPECT_RC(f, afmt_get_attr(f, NULL, "after", AFMT_INT32, &n, &v), AFMT_ENOTFOUND);
        m_check_each(f, l1, 3, 0, __LINE__);
        reopen_check(path, l1, 3, __LINE__);
        /* The step written again commits. */
        step2(f, m, __LINE__);
        EXPECT_OK(f, afmt_commit_start(f));
        EXPECT_OK(f, afmt_commit_wait(f));
        EXPECT_LAYERS(f, 2);
        for (int i = 0; i < 3; i++) m_committed(&m[i]);
        EXPECT_OK(f, afmt_close(f));
        reopen_check(path, m, 3, __LINE__);
    }
    rm_path(path);
    m_free_each(m, NM);
    for (int i = 0; i < NM; i++) free(l1[i].all), free(l1[i].mine);
}

static void test_background_faults(void **state) {
    (void)state;
    /* Rank 0 writes its blocks, the node's index segment and the footer: each fails. */
    const bg_case cases[] = {
        {AFMT_FAULT_WRITE, 0, 1, 0},  {AFMT_FAULT_WRITE, 0, 2, 0}, {AFMT_FAULT_WRITE, 0, 3, 0},
        {AFMT_FAULT_WRITE, -1, 1, 0}, {AFMT_FAULT_SYNC, -1, 1, 0}, {AFMT_FAULT_WRITE, -1, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_bg_case(&cases[i]);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_mpiio),       cmocka_unit_test(test_equal_posix_spill),
        cmocka_unit_test(test_equal_mpiio_spill), cmocka_unit_test(test_equal_threads),
        cmocka_unit_test(test_finish_points),     cmocka_unit_test(test_memory_backend),
        cmocka_unit_test(test_background_faults),
    };
    return tu_main(argc, argv, "async", tests, sizeof tests / sizeof tests[0]);
}
