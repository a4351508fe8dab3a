/* testutil.h - shared helpers of the cmocka suites (unit and MPI). */
#ifndef AFMT_TESTUTIL_H
#define AFMT_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <mpi.h>

#include "afmt.h"
#include "tu_dtype.h"

/* Runs a cmocka group inside MPI_Init/MPI_Finalize; the exit status is nonzero if the
 * group failed on ANY rank (so mpiexec reports it). Only rank 0 prints cmocka's summary
 * unless AFMT_TEST_VERBOSE is set. */
int tu_main(int argc, char **argv, const char *group, const struct CMUnitTest *tests,
            size_t ntests);
#define TU_MAIN(group, tests)                                                                      \
    int main(int argc, char **argv) {                                                              \
        return tu_main(argc, argv, group, tests, sizeof(tests) / sizeof(tests[0]));                \
    }

int tu_rank(void);
int tu_size(void);
/* A fresh path "<dir>/afmt-<tag>-<pid>-<counter>.afmt", the same on every rank of
 * MPI_COMM_WORLD (COLLECTIVE), removed first. dir NULL = AFMT_TEST_SCRATCH. The string is
 * static storage of the helper (a ring of 8). */
const char *tu_path(const char *dir, const char *tag);
/* Removes path and path.compact (rank 0 only) between two barriers. COLLECTIVE. */
void tu_remove(const char *path);
/* Asserts rc == AFMT_OK, printing afmt_errmsg(f) on failure. */
#define TU_OK(f, call)                                                                             \
    do {                                                                                           \
        int tu_rc_ = (call);                                                                       \
        if (tu_rc_ != AFMT_OK)                                                                     \
            fail_msg("%s -> %d (%s): %s", #call, tu_rc_, afmt_strerror(tu_rc_), afmt_errmsg(f));   \
    } while (0)
/* Deterministic test value of element (global linear index i, seed s) as bytes of
 * esize: a cheap hash, so every position differs and errors show. */
void tu_value(void *dst, size_t esize, uint64_t i, uint64_t seed);

#endif
