/* test_durability.c - MPI integration: afmt_opts_set_durability and the hint afmt_durability.
 *  - The syncs of each level, counted on every rank by the fault wrapper (storage.h, count
 *    only): afmt_create FULL 1, DATA 1, NONE 0; afmt_commit FULL 2 (data and footer, then
 *    the slot), DATA 1 (the first), NONE 0; afmt_commit_start + afmt_commit_wait the same as
 *    afmt_commit; afmt_rollback FULL 1, DATA 0, NONE 0; afmt_compact the same number at every
 *    level (it always syncs fully), at least 2.
 *  - The files written at the three levels are equal byte for byte (fixed identity), and
 *    read back as written, reopened, at every level.
 *  - The hint overrides the option, a value that names no level is ignored; ranks with
 *    different levels are refused by afmt_create and afmt_open on every rank, with a
 *    message naming both levels; afmt_opts_set_durability refuses what is no level. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/file.h"        /* afmt__set_fixed_identity */
#include "storage/storage.h" /* afmt__storage_set_fault: the sync counter */

#define N 1000 /* elements of each rank */

typedef unsigned long long ull;

static const char *const NAMES[3] = {"full", "data", "none"};
static const uint64_t WANT_CREATE[3] = {1, 1, 0}, WANT_COMMIT[3] = {2, 1, 0},
                      WANT_ROLLBACK[3] = {1, 0, 0};

/* Counting from now: the wrapper counts the calls of each operation on this process. */
static void count_from_now(void) {
    afmt_storage_fault spec = {AFMT_FAULT_SYNC, 0, 0, AFMT_FAULT_FAIL, -1};
    EXPECT_OK(NULL, afmt__storage_set_fault(&spec));
}

static void expect_syncs(uint64_t want, const char *what, int level, int line) {
    uint64_t got = afmt__storage_fault_calls(AFMT_FAULT_SYNC);
    if (got != want)
        rec(line, "%s at durability %s: %llu syncs on rank %d, want %llu", what, NAMES[level],
            (ull)got, tu_rank(), (ull)want);
}

static afmt_opts *opts_level(int level, const char *hint) {
    afmt_opts *o = NULL;
    EXPECT_OK(NULL, afmt_opts_create(&o));
    EXPECT_OK(NULL, afmt_opts_set_durability(o, (afmt_durability)level));
    if (hint) {
        MPI_Info info;
        MPI_Info_create(&info);
        MPI_Info_set(info, "afmt_durability", hint);
        EXPECT_OK(NULL, afmt_opts_set_mpi_info(o, info));
        MPI_Info_free(&info);
    }
    return o;
}

static void write_step(afmt_file *f, int64_t step) {
    int64_t buf[N];
    uint64_t st = (uint64_t)tu_rank() * N, ct = N;
    for (uint64_t i = 0; i < N; i++) buf[i] = step * 1000000 + (int64_t)(st + i);
    EXPECT_OK(f, afmt_write(f, "a", &st, &ct, buf));
}

static void check_step(afmt_file *f, int64_t step, const char *what, int line) {
    uint64_t n = (uint64_t)tu_size() * N, st = 0;
    int64_t *buf = malloc(sizeof *buf * (size_t)n);
    int rc = afmt_read(f, "a", &st, &n, buf);
    if (rc != AFMT_OK) {
        rec(line, "%s: afmt_read -> %d: %s", what, rc, afmt_errmsg(f));
    } else {
        for (uint64_t i = 0; i < n; i++)
            if (buf[i] != step * 1000000 + (int64_t)i) {
                rec(line, "%s: element %llu is %lld, want step %lld's", what, (ull)i,
                    (long long)buf[i], (long long)step);
                break;
            }
    }
    free(buf);
}

/* Three commits (synchronous, started and waited, synchronous) and a rollback to the
 * second at level, with hint (NULL: none), counting the syncs of each call. */
static void write_file(const char *path, int level, const char *hint) {
    afmt_opts *o = opts_level(hint ? AFMT_DURABILITY_FULL : level, hint);
    count_from_now();
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, AFMT_TRUNC, o, __LINE__);
    afmt_opts_free(o);
    if (!f) {
        afmt__storage_set_fault(NULL);
        return;
    }
    expect_syncs(WANT_CREATE[level], "afmt_create", level, __LINE__);
    uint64_t shape = (uint64_t)tu_size() * N, chunk = 250;
    EXPECT_OK(f, afmt_define(f, "a", AFMT_INT64, 1, &shape, &chunk, NULL, NULL));
    write_step(f, 1);
    count_from_now();
    EXPECT_OK(f, afmt_commit(f));
    expect_syncs(WANT_COMMIT[level], "afmt_commit", level, __LINE__);
    write_step(f, 2);
    count_from_now();
    EXPECT_OK(f, afmt_commit_start(f));
    EXPECT_OK(f, afmt_commit_wait(f));
    expect_syncs(WANT_COMMIT[level], "afmt_commit_start and _wait", level, __LINE__);
    write_step(f, 3);
    count_from_now();
    EXPECT_OK(f, afmt_commit(f));
    expect_syncs(WANT_COMMIT[level], "afmt_commit", level, __LINE__);
    check_step(f, 3, "after the third commit", __LINE__);
    uint64_t id = 0;
    EXPECT_OK(f, afmt_layer_id(f, 1, &id, NULL));
    count_from_now();
    EXPECT_OK(f, afmt_rollback(f, id));
    expect_syncs(WANT_ROLLBACK[level], "afmt_rollback", level, __LINE__);
    check_step(f, 2, "after the rollback", __LINE__);
    EXPECT_OK(f, afmt_close(f));
    afmt__storage_set_fault(NULL);
}

/* Reopened at level: reads as the rollback left it; a compaction syncs as at FULL. */
static uint64_t reopen_compact(const char *path, int level) {
    afmt_opts *o = opts_level(level, NULL);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, o, __LINE__);
    afmt_opts_free(o);
    if (!f) return 0;
    check_step(f, 2, "reopened", __LINE__);
    count_from_now();
    EXPECT_OK(f, afmt_compact(f));
    uint64_t n = afmt__storage_fault_calls(AFMT_FAULT_SYNC);
    afmt__storage_set_fault(NULL);
    check_step(f, 2, "compacted", __LINE__);
    EXPECT_OK(f, afmt_close(f));
    return n;
}

static void test_levels(void **state) {
    (void)state;
    afmt__set_fixed_identity(1);
    const char *path[3];
    for (int level = 0; level < 3; level++) {
        path[level] = tu_path(NULL, NAMES[level]);
        write_file(path[level], level, NULL);
    }
    afmt__set_fixed_identity(0);
    for (int level = 1; level < 3; level++)
        if (!same_bytes(path[0], path[level]))
            rec(__LINE__, "the files written at durability full and %s differ", NAMES[level]);
    uint64_t compact_syncs[3];
    for (int level = 0; level < 3; level++) {
        compact_syncs[level] = reopen_compact(path[level], level);
        if (compact_syncs[level] < 2 || compact_syncs[level] != compact_syncs[0])
            rec(__LINE__, "afmt_compact at durability %s: %llu syncs, want %llu (full's) >= 2",
                NAMES[level], (ull)compact_syncs[level], (ull)compact_syncs[0]);
        rm_path(path[level]);
    }
    done();
}

/* The hint names the level whatever the option says; a value that names none is ignored. */
static void test_hint(void **state) {
    (void)state;
    static const char *const hints[3] = {"full", "data", "none"};
    for (int level = 0; level < 3; level++) {
        const char *path = tu_path(NULL, "dhint");
        write_file(path, level, hints[level]); /* the option says FULL */
        rm_path(path);
    }
    afmt_opts *o = opts_level(AFMT_DURABILITY_NONE, "sometimes");
    const char *path = tu_path(NULL, "dhint");
    count_from_now();
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, AFMT_TRUNC, o, __LINE__);
    afmt_opts_free(o);
    expect_syncs(0, "afmt_create with the hint \"sometimes\"", AFMT_DURABILITY_NONE, __LINE__);
    afmt__storage_set_fault(NULL);
    if (f) EXPECT_OK(f, afmt_close(f));
    rm_path(path);
    done();
}

/* Ranks that give different levels (by option or hint) are refused on every rank. */
static void test_ranks_disagree(void **state) {
    (void)state;
    int rank = tu_rank(), size = tu_size();
    const char *path = tu_path(NULL, "ddis");
    /* The file to open, made at FULL. */
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, AFMT_TRUNC, NULL, __LINE__);
    if (f) EXPECT_OK(f, afmt_close(f));
    const char *other = tu_path(NULL, "ddis");
    for (int level = 1; level < 3; level++) {
        for (int how = 0; how < 3; how++) { /* create, open, open with the hint */
            afmt_opts *o = rank == 0  ? opts_level(AFMT_DURABILITY_FULL, NULL)
                           : how == 2 ? opts_level(AFMT_DURABILITY_FULL, NAMES[level])
                                      : opts_level(level, NULL);
            afmt_file *g = NULL;
            int rc = how == 0 ? afmt_create(MPI_COMM_WORLD, other, AFMT_TRUNC, o, &g)
                              : afmt_open(MPI_COMM_WORLD, path, AFMT_RDWR, o, &g);
            afmt_opts_free(o);
            if (size == 1) {
                EXPECT(rc == AFMT_OK && g != NULL); /* one rank cannot disagree with itself */
            } else {
                char want[160];
                snprintf(want, sizeof want,
                         "different durability levels (afmt_opts_set_durability or the hint "
                         "afmt_durability: full and %s)",
                         NAMES[level]);
                const char *msg = afmt_errmsg(NULL);
                if (rc != AFMT_EINVAL || g != NULL)
                    rec(__LINE__, "%s with full/%s -> %d, want AFMT_EINVAL",
                        how ? "afmt_open" : "afmt_create", NAMES[level], rc);
                else if (!msg || !strstr(msg, want))
                    rec(__LINE__, "message \"%s\", want \"%s\"", NSTR(msg), want);
                if (how == 0) EXPECT(fsize(other) == -1); /* nothing was created */
            }
            if (g) EXPECT_OK(g, afmt_close(g));
            MPI_Barrier(MPI_COMM_WORLD);
        }
    }
    rm_path(other);
    rm_path(path);
    done();
}

static void test_bad_values(void **state) {
    (void)state;
    afmt_opts *o = NULL;
    EXPECT_OK(NULL, afmt_opts_create(&o));
    EXPECT_RC(NULL, afmt_opts_set_durability(NULL, AFMT_DURABILITY_NONE), AFMT_EINVAL);
    EXPECT_RC(NULL, afmt_opts_set_durability(o, (afmt_durability)3), AFMT_EINVAL);
    const char *msg = afmt_errmsg(NULL);
    if (!strstr(msg, "3 is not a level")) rec(__LINE__, "message \"%s\"", msg);
    EXPECT_RC(NULL, afmt_opts_set_durability(o, (afmt_durability)-1), AFMT_EINVAL);
    EXPECT_OK(NULL, afmt_opts_set_durability(o, AFMT_DURABILITY_DATA));
    EXPECT(o->durability == AFMT_DURABILITY_DATA);
    afmt_opts_free(o);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_hint),
        cmocka_unit_test(test_ranks_disagree),
        cmocka_unit_test(test_bad_values),
    };
    return tu_main(argc, argv, "mpi_durability", tests, sizeof tests / sizeof tests[0]);
}
