/* test_sparse.c - the sparse exchange (src/mpi/sparse.h) on its own, on 1-4 ranks.
 *  - Patterns: each rank sends to some ranks (itself included) messages of 1 byte to 30
 *    KiB whose bytes name sender, receiver and position; every rank must receive exactly
 *    the messages meant for it, in source order, byte for byte. With the default limits
 *    (short messages in round 1, the rest of long ones in round 2), with only the lengths
 *    in round 1 and round 2 in pieces of 1000 bytes, and with 16 bytes and pieces of 7.
 *  - Ranks with nothing to send: they send no message at all (the stats hook) and still
 *    receive theirs.
 *  - Many exchanges back to back (on alternating and on the same tag), with patterns that
 *    change every time: no message of one is taken by the next.
 *  - A failure on one rank (the caller's rc, a bad destination): every rank returns the
 *    same code and message, nothing is left unreceived, and the next exchange works.
 *  - The flag is the OR over the ranks.
 * Allocation failures inside the exchange are covered by tests/fault/test_oom_mpi.c (the
 * commit with shared chunks). */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "mpi/sparse.h"

#define TAG AFMT__SPARSE_TAG_BASE

static MPI_Comm comm;
static char errmsg[AFMT_ERRMSG_MAX];

static afmt__group group(void) {
    afmt__group g = {comm, tu_rank(), tu_size(), errmsg};
    return g;
}

static uint8_t byte_of(int src, int dst, uint64_t i, unsigned seed) {
    uint64_t x = ((uint64_t)src * 1000003u + (uint64_t)dst * 7919u + seed * 104729u) ^ (i * 31u);
    return (uint8_t)(x ^ (x >> 8) ^ (x >> 17));
}

/* The length of src's message to dst in pattern seed; 0: none. Some ranks send nothing. */
static uint64_t len_of(int src, int dst, unsigned seed, int size) {
    unsigned h = (unsigned)src * 2654435761u ^ (unsigned)dst * 40503u ^ seed * 2246822519u;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    if (size > 2 && (unsigned)src == seed % (unsigned)size) return 0; /* a silent rank */
    switch (h % 7) {
    case 0:
    case 1:
        return 0;
    case 2:
        return 1;
    case 3:
        return 1 + h % 200;
    case 4:
        return 8192; /* exactly round 1's most */
    case 5:
        return 8193 + h % 2000; /* one byte over and more */
    default:
        return 20000 + h % 10000;
    }
}

/* COLLECTIVE. One exchange of pattern seed on tag; checks what came back. Returns rc. */
static int run_pattern(unsigned seed, int tag, int line) {
    int rank = tu_rank(), size = tu_size();
    int *dest = malloc(sizeof *dest * (size_t)size);
    uint8_t **buf = calloc((size_t)size, sizeof *buf);
    uint64_t *len = malloc(sizeof *len * (size_t)size), n = 0;
    /* Destinations in a scrambled order: the exchange must not rely on an order. */
    for (int k = 0; k < size; k++) {
        int d = (k * 3 + rank) % size;
        if (size % 3 == 0) d = (k + rank) % size;
        uint64_t l = len_of(rank, d, seed, size);
        dest[n] = d;
        len[n] = l;
        buf[n] = malloc(l ? l : 1);
        for (uint64_t i = 0; i < l; i++) buf[n][i] = byte_of(rank, d, i, seed);
        n++;
    }
    afmt__group g = group();
    afmt__sparse_msg *in = NULL;
    uint64_t n_in = 0;
    int rc = afmt__sparse_exchange(&g, tag, AFMT_OK, n, dest, (const uint8_t *const *)buf, len,
                                   NULL, &in, &n_in, "test");
    if (rc != AFMT_OK) rec(line, "seed %u: exchange -> %d: %s", seed, rc, errmsg);
    uint64_t k = 0;
    for (int src = 0; rc == AFMT_OK && src < size; src++) {
        uint64_t l = len_of(src, rank, seed, size);
        if (l == 0) continue;
        if (k >= n_in || in[k].src != src) {
            rec(line, "seed %u: rank %d: no message from rank %d (entry %llu is from %d)", seed,
                rank, src, (unsigned long long)k, k < n_in ? in[k].src : -1);
            break;
        }
        if (in[k].len != l) {
            rec(line, "seed %u: rank %d: %llu bytes from rank %d, want %llu", seed, rank,
                (unsigned long long)in[k].len, src, (unsigned long long)l);
        } else {
            for (uint64_t i = 0; i < l; i++)
                if (in[k].data[i] != byte_of(src, rank, i, seed)) {
                    rec(line, "seed %u: rank %d: byte %llu from rank %d differs", seed, rank,
                        (unsigned long long)i, src);
                    break;
                }
        }
        k++;
    }
    if (rc == AFMT_OK && k != n_in)
        rec(line, "seed %u: rank %d received %llu messages, want %llu", seed, rank,
            (unsigned long long)n_in, (unsigned long long)k);
    afmt__sparse_free(in, n_in);
    for (uint64_t i = 0; i < n; i++) free(buf[i]);
    free(buf);
    free(dest);
    free(len);
    return rc;
}

/* COLLECTIVE. Nothing of any exchange is left unreceived on comm: every message of an
 * exchange was received when it returned on every rank. */
static void expect_drained(int line) {
    MPI_Barrier(comm);
    int flag = 1;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &flag, &st);
    if (flag) rec(line, "a message (tag %d from rank %d) is left over", st.MPI_TAG, st.MPI_SOURCE);
    /* No rank sends again before every rank looked. */
    MPI_Barrier(comm);
}

static void test_patterns(void **state) {
    (void)state;
    static const uint64_t limits[][2] = {{UINT64_MAX, 0}, {0, 1000}, {16, 7}};
    for (int l = 0; l < 3; l++) {
        afmt__sparse_set_limits(limits[l][0], limits[l][1]);
        for (unsigned seed = 0; seed < 6; seed++)
            run_pattern(seed + 10 * (unsigned)l, TAG, __LINE__);
        expect_drained(__LINE__);
    }
    afmt__sparse_set_limits(UINT64_MAX, 0);
    done();
}

/* Only the last rank sends (to rank 0 and to itself); everyone else has nothing: they
 * send no message, and rank 0 gets the one meant for it. */
static void test_nothing_to_send(void **state) {
    (void)state;
    int rank = tu_rank(), size = tu_size();
    uint8_t a[3] = {1, 2, 3}, b[40000];
    for (size_t i = 0; i < sizeof b; i++) b[i] = (uint8_t)(i * 7);
    int dest[2] = {0, size - 1};
    const uint8_t *buf[2] = {b, a};
    uint64_t len[2] = {sizeof b, sizeof a};
    afmt__sparse_stats s0, s1;
    afmt__sparse_get_stats(&s0);
    afmt__group g = group();
    afmt__sparse_msg *in = NULL;
    uint64_t n_in = 0;
    int sender = rank == size - 1;
    int rc = afmt__sparse_exchange(&g, TAG + 2, AFMT_OK, sender ? (size > 1 ? 2 : 1) : 0, dest, buf,
                                   len, NULL, &in, &n_in, "test");
    afmt__sparse_get_stats(&s1);
    EXPECT(rc == AFMT_OK);
    EXPECT(s1.calls == s0.calls + 1);
    if (!sender) EXPECT(s1.sent == s0.sent); /* not one message, not even to rank 0 */
    /* The sender: one round-1 message to rank 0 and the rest of 40000 bytes in round 2;
     * its own message is a copy. */
    if (sender && size > 1) EXPECT(s1.sent == s0.sent + 2);
    if (sender && size == 1) EXPECT(s1.sent == s0.sent);
    if (rank == 0) {
        EXPECT(n_in == 1); /* with one rank, its own copy of b */
        if (n_in >= 1) {
            EXPECT(in[0].src == size - 1);
            EXPECT(in[0].len == sizeof b);
            if (in[0].len == sizeof b) EXPECT(memcmp(in[0].data, b, sizeof b) == 0);
        }
    } else if (sender) {
        EXPECT(n_in == 1 && in[0].src == rank && in[0].len == 3 && in[0].data[2] == 3);
    } else {
        EXPECT(n_in == 0 && in == NULL);
        EXPECT(s1.received == s0.received);
    }
    afmt__sparse_free(in, n_in);
    expect_drained(__LINE__);
    done();
}

/* Exchanges back to back, on two tags and on one, with tiny limits too (round 2 on some
 * ranks while others are already in the next round 1). */
static void test_many_rounds(void **state) {
    (void)state;
    for (unsigned i = 0; i < 120; i++) {
        if (i == 60) afmt__sparse_set_limits(8, 3000);
        run_pattern(100 + i, i < 40 ? TAG + 2 * (int)(i % 2) : TAG, __LINE__);
    }
    afmt__sparse_set_limits(UINT64_MAX, 0);
    expect_drained(__LINE__);
    done();
}

/* One rank fails before the exchange (its rc) or names a bad destination: every rank gets
 * its code and message, the others' messages were drained, and the next exchange works. */
static void test_failure_agreed(void **state) {
    (void)state;
    int rank = tu_rank(), size = tu_size();
    for (int mode = 0; mode < 2; mode++) {
        uint8_t b[20000];
        memset(b, rank, sizeof b);
        int dest[1] = {(rank + 1) % size};
        const uint8_t *buf[1] = {b};
        uint64_t len[1] = {sizeof b};
        int victim = size - 1, rc = AFMT_OK;
        if (rank == victim && mode == 0)
            rc = afmt__fail(errmsg, AFMT_ENOMEM, "injected on %d", rank);
        if (rank == victim && mode == 1) dest[0] = size + 3;
        afmt__group g = group();
        afmt__sparse_msg *in = (afmt__sparse_msg *)1;
        uint64_t n_in = 99;
        rc = afmt__sparse_exchange(&g, TAG + 4, rc, 1, dest, buf, len, NULL, &in, &n_in, "test");
        int want = mode == 0 ? AFMT_ENOMEM : AFMT_EINVAL;
        if (rc != want) rec(__LINE__, "mode %d: -> %d, want %d: %s", mode, rc, want, errmsg);
        if (mode == 0 && !strstr(errmsg, "injected on"))
            rec(__LINE__, "mode 0: the message is not the victim's: %s", errmsg);
        if (mode == 1 && !strstr(errmsg, "is not one of"))
            rec(__LINE__, "mode 1: the message does not name the destination: %s", errmsg);
        EXPECT(in == NULL && n_in == 0);
        expect_drained(__LINE__);
        run_pattern(77 + (unsigned)mode, TAG + 4, __LINE__);
    }
    done();
}

static void test_flag(void **state) {
    (void)state;
    int rank = tu_rank(), size = tu_size();
    for (int who = -1; who < size; who++) {
        int flag = rank == who;
        afmt__group g = group();
        afmt__sparse_msg *in = NULL;
        uint64_t n_in = 0;
        int rc =
            afmt__sparse_exchange(&g, TAG, AFMT_OK, 0, NULL, NULL, NULL, &flag, &in, &n_in, "test");
        EXPECT(rc == AFMT_OK);
        if (flag != (who >= 0)) rec(__LINE__, "flag set on rank %d: OR is %d", who, flag);
        EXPECT(n_in == 0);
    }
    done();
}

static int setup(void **state) {
    (void)state;
    MPI_Comm_dup(MPI_COMM_WORLD, &comm);
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    MPI_Comm_free(&comm);
    return 0;
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_patterns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_to_send, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_rounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_agreed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flag, setup, teardown),
    };
    return tu_main(argc, argv, "mpi_sparse", tests, sizeof tests / sizeof tests[0]);
}
