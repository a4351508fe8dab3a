#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tu_rank(void) {
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int tu_size(void) {
    int s = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &s);
    return s;
}

const char *tu_path(const char *dir, const char *tag) {
    static char ring[8][512];
    static int next = 0, counter = 0;
    long pid = (long)getpid();
    MPI_Bcast(&pid, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    char *p = ring[next];
    next = (next + 1) % 8;
    snprintf(p, sizeof ring[0], "%s/afmt-%s-%ld-%d.afmt", dir ? dir : AFMT_TEST_SCRATCH, tag, pid,
             counter++);
    tu_remove(p);
    return p;
}

void tu_remove(const char *path) {
    MPI_Barrier(MPI_COMM_WORLD); /* nobody may still be using it */
    if (tu_rank() == 0) {
        char buf[600];
        unlink(path);
        snprintf(buf, sizeof buf, "%s.compact", path);
        unlink(buf);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

void tu_value(void *dst, size_t esize, uint64_t i, uint64_t seed) {
    uint64_t x = i * 0x9E3779B97F4A7C15ull + seed * 0xBF58476D1CE4E5B9ull + 1;
    x ^= x >> 31;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 29;
    memcpy(dst, &x, esize < 8 ? esize : 8);
    if (esize > 8) memset((char *)dst + 8, 0, esize - 8);
}

int tu_main(int argc, char **argv, const char *group, const struct CMUnitTest *tests,
            size_t ntests) {
    (void)argc;
    (void)argv;
    /* AFMT_TEST_THREAD_LEVEL=multiple: MPI_THREAD_MULTIPLE (afmt_commit_start then runs
     * the commit's collective part on its helper thread); else MPI_Init. */
    const char *lvl = getenv("AFMT_TEST_THREAD_LEVEL");
    if (lvl && !strcmp(lvl, "multiple")) {
        int got = MPI_THREAD_SINGLE;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &got);
        if (got != MPI_THREAD_MULTIPLE) {
            fprintf(stderr, "%s: MPI_THREAD_MULTIPLE not provided (%d)\n", group, got);
            MPI_Finalize();
            return 1;
        }
    } else {
        MPI_Init(&argc, &argv);
    }
    int rank = tu_rank();
    if (rank != 0 && !getenv("AFMT_TEST_VERBOSE")) {
        /* Keep the output readable: other ranks report failures through the status. */
        if (!freopen("/dev/null", "w", stdout)) return 1;
    }
    int failed = _cmocka_run_group_tests(group, tests, ntests, NULL, NULL);
    int any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0 && any && !failed) fprintf(stderr, "%s: failed on another rank\n", group);
    MPI_Finalize();
    return any ? 1 : 0;
}
