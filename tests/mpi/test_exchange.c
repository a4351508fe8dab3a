/* test_exchange.c - the commit's exchange of shared chunks when ranks misbehave.
 *
 * - An overlap is named by the pair of ranks that overlap (it used to name the first two
 *   contributors of the chunk, which need not be that pair).
 * - Ranks whose metadata disagree (another ndim, chunk shape or dtype): every record a
 *   rank receives is checked against its own index, and the commit fails with AFMT_EINVAL
 *   on every rank, writing nothing. A rank used to decode another rank's boxes with its
 *   own ndim (a heap overflow, which the sanitizer build catches) or let rank 0 write a
 *   layer that afmt then refused to open.
 * - A collective metadata call made on some ranks only meets the others' call in its
 *   first Allreduce: both fail with AFMT_EINVAL (afmt__enter) instead of going on into
 *   mismatched collectives.
 * - The sparse exchange's cost (mpi/sparse.h stats hook): a rank that staged nothing sends
 *   no message in a commit of whole chunks, and in one where other ranks merge shared
 *   chunks only its answers as an owner (to ranks that sent it keys); a commit of whole
 *   chunks only makes one exchange round (the keys), one with partial chunks three; the
 *   data reads back right through the handle and a reopened file, also with round 2 of
 *   every exchange cut into pieces of 100 bytes, commit after commit.
 * The disagreement cases switch the commit's comparison of the metadata calls off
 * (afmt_opts_set_check_collective(o, 0)), which would otherwise catch them first: here the
 * exchange's and the layer's own checks must hold. */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi/sparse.h" /* afmt__sparse_get_stats, afmt__sparse_set_limits */

static int same_everywhere(int rc) {
    int lo = 0, hi = 0;
    MPI_Allreduce(&rc, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&rc, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return lo == hi;
}

static void write1(afmt_file *f, const char *name, uint64_t s, uint64_t n, int line) {
    uint64_t *buf = malloc(sizeof(uint64_t) * (n ? n : 1));
    for (uint64_t i = 0; i < n; i++) buf[i] = (s + i) * 3 + 1;
    uint64_t st[1] = {s}, ct[1] = {n};
    int rc = afmt_write(f, name, st, ct, buf);
    if (rc != AFMT_OK) rec(line, "afmt_write(%s) -> %d: %s", name, rc, NSTR(afmt_errmsg(f)));
    free(buf);
}

/* Ranks 0 and 2 write overlapping boxes of chunk 0, rank 1 a box beside them, the others
 * nothing in it: the message names ranks 0 and 2. */
static void test_overlap_names_the_pair(void **state) {
    (void)state;
    int rank = tu_rank(), size = tu_size();
    if (size < 3) {
        done();
        return;
    }
    const char *path = tu_path(NULL, "xchg-overlap");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (f) {
        uint64_t shape[1] = {100}, chunk[1] = {100};
        EXPECT_OK(f, afmt_define(f, "v", AFMT_UINT64, 1, shape, chunk, NULL, NULL));
        if (rank == 0) write1(f, "v", 0, 10, __LINE__);
        if (rank == 1) write1(f, "v", 20, 10, __LINE__);
        if (rank == 2) write1(f, "v", 5, 10, __LINE__);
        int rc = afmt_commit(f);
        EXPECT(same_everywhere(rc));
        if (rc != AFMT_EINVAL)
            rec(__LINE__, "commit -> %d, want AFMT_EINVAL: %s", rc, NSTR(afmt_errmsg(f)));
        if (!strstr(afmt_errmsg(f), "ranks 0 and 2 wrote overlapping"))
            rec(__LINE__, "the overlap names other ranks: %s", afmt_errmsg(f));
        EXPECT_OK(f, afmt_discard(f));
        EXPECT_OK(NULL, afmt_close(f));
    }
    rm_path(path);
    done();
}

/* COLLECTIVE. A file with one commit ("base"), then each rank defines "x" as def(rank)
 * says and writes what wr(rank) says; with the digest check off, the commit must fail
 * with AFMT_EINVAL on every rank from the records' own checks, and the file must still be
 * the first commit. */
typedef void (*def_fn)(afmt_file *f, int rank, int size);

static void disagree_case(const char *what, def_fn def, def_fn wr) {
    int rank = tu_rank(), size = tu_size();
    const char *path = tu_path(NULL, "xchg-disagree");
    afmt_opts *o = NULL;
    TU_OK(NULL, afmt_opts_create(&o));
    TU_OK(NULL, afmt_opts_set_check_collective(o, 0));
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    afmt_opts_free(o);
    if (f) {
        uint64_t shape[1] = {8};
        EXPECT_OK(f, afmt_define(f, "base", AFMT_INT32, 1, shape, NULL, NULL, NULL));
        EXPECT_OK(f, afmt_commit(f));
        def(f, rank, size);
        wr(f, rank, size);
        int rc = afmt_commit(f);
        EXPECT(same_everywhere(rc));
        if (rc != AFMT_EINVAL)
            rec(__LINE__, "%s: commit -> %d (%s), want AFMT_EINVAL: %s", what, rc,
                NSTR(afmt_strerror(rc)), NSTR(afmt_errmsg(f)));
        if (strstr(NSTR(afmt_errmsg(f)), "disagree on collective call") ||
            strstr(NSTR(afmt_errmsg(f)), "collective metadata calls"))
            rec(__LINE__, "%s: the digest check ran although it is off: %s", what, afmt_errmsg(f));
        if (tu_rank() == 0 && getenv("AFMT_TEST_VERBOSE"))
            printf("  %s: %s\n", what, afmt_errmsg(f));
        EXPECT_OK(f, afmt_discard(f));
        EXPECT_OK(NULL, afmt_close(f));
    }
    /* Nothing was written: the file opens and is the first commit. */
    afmt_file *g = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
    if (g) {
        EXPECT_LAYERS(g, 1);
        afmt_info info;
        EXPECT_RC(g, afmt_inquire(g, "x", &info), AFMT_ENOTFOUND);
        EXPECT_OK(NULL, afmt_close(g));
    }
    rm_path(path);
}

/* The last rank defines "x" 2-d, the others 1-d, with as many elements. */
static void def_ndim(afmt_file *f, int rank, int size) {
    if (rank == size - 1) {
        uint64_t shape[2] = {8, 8 * (uint64_t)size}, chunk[2] = {8, 8};
        EXPECT_OK(f, afmt_define(f, "x", AFMT_UINT64, 2, shape, chunk, NULL, NULL));
    } else {
        uint64_t shape[1] = {64 * (uint64_t)size}, chunk[1] = {64};
        EXPECT_OK(f, afmt_define(f, "x", AFMT_UINT64, 1, shape, chunk, NULL, NULL));
    }
}

/* The last rank defines "x" with chunks of 7, the others of 64. */
static void def_chunk(afmt_file *f, int rank, int size) {
    uint64_t shape[1] = {64 * (uint64_t)size}, chunk[1] = {rank == size - 1 ? 7 : 64};
    EXPECT_OK(f, afmt_define(f, "x", AFMT_UINT64, 1, shape, chunk, NULL, NULL));
}

/* The last rank defines "x" as uint32, the others as uint64 (payload sizes differ). */
static void def_dtype(afmt_file *f, int rank, int size) {
    uint64_t shape[1] = {64 * (uint64_t)size}, chunk[1] = {64};
    EXPECT_OK(f, afmt_define(f, "x", rank == size - 1 ? AFMT_UINT32 : AFMT_UINT64, 1, shape, chunk,
                             NULL, NULL));
}

/* Every rank that has "x" writes parts of two chunks around its own (partial chunks
 * shared with its neighbours) and a whole chunk. 2-d: rows 2..5 of every column. */
static void wr_parts(afmt_file *f, int rank, int size) {
    afmt_info info;
    if (afmt_inquire(f, "x", &info) != AFMT_OK) return;
    if (info.ndim == 2) {
        uint64_t n = 4 * 8 * (uint64_t)size;
        uint64_t *buf = calloc(n, sizeof *buf);
        uint64_t st[2] = {2, 0}, ct[2] = {4, 8 * (uint64_t)size};
        EXPECT_OK(f, afmt_write(f, "x", st, ct, buf));
        free(buf);
        return;
    }
    uint64_t n = info.shape[0], s = 64 * (uint64_t)rank;
    if (info.dtype == AFMT_UINT32) {
        uint32_t v[64] = {0};
        uint64_t st[1] = {s}, ct[1] = {64};
        EXPECT_OK(f, afmt_write(f, "x", st, ct, v)); /* a whole chunk of its own */
        st[0] = s - 20;
        ct[0] = 2;
        EXPECT_OK(f, afmt_write(f, "x", st, ct, v)); /* and 8 bytes of its neighbour's */
        return;
    }
    write1(f, "x", s + 10, 20, __LINE__);
    if (s + 128 < n) write1(f, "x", s + 64 + 5, 3, __LINE__); /* not the last chunk */
    if (rank > 0) write1(f, "x", s - 3, 2, __LINE__);
}

static void test_disagree_ndim(void **state) {
    (void)state;
    if (tu_size() > 1) disagree_case("ndim", def_ndim, wr_parts);
    done();
}

static void test_disagree_chunk(void **state) {
    (void)state;
    if (tu_size() > 1) disagree_case("chunk", def_chunk, wr_parts);
    done();
}

static void test_disagree_dtype(void **state) {
    (void)state;
    if (tu_size() > 1) disagree_case("dtype", def_dtype, wr_parts);
    done();
}

/* The last rank defines "x" twice as long (the same chunks): each rank writes its own
 * chunk whole, and the last rank's key goes to the owner its longer array gives it. The
 * owner's own definition names another owner: the ranks disagree, and the overlap check
 * would have been blind to a second writer of that chunk. */
static void def_shape(afmt_file *f, int rank, int size) {
    uint64_t shape[1] = {64 * (uint64_t)size * (rank == size - 1 ? 2u : 1u)}, chunk[1] = {64};
    EXPECT_OK(f, afmt_define(f, "x", AFMT_UINT64, 1, shape, chunk, NULL, NULL));
}

static void wr_whole(afmt_file *f, int rank, int size) {
    (void)size;
    write1(f, "x", 64 * (uint64_t)rank, 64, __LINE__);
}

static void test_disagree_shape(void **state) {
    (void)state;
    if (tu_size() > 1) disagree_case("shape", def_shape, wr_whole);
    done();
}

/* A collective call made on some ranks only: the last rank defines "x" (or rank 0 sets an
 * attribute) while the others commit. Both calls meet in their first Allreduce and fail
 * with AFMT_EINVAL saying the ranks are not in the same call; nothing changed, so the
 * ranks are in step again and the next commit works. */
static void test_call_on_some_ranks(void **state) {
    (void)state;
    int rank = tu_rank(), size = tu_size();
    if (size < 2) {
        done();
        return;
    }
    const char *path = tu_path(NULL, "xchg-some");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    for (int k = 0; f && k < 2; k++) {
        int lone = k == 0 ? size - 1 : 0, rc;
        if (rank == lone && k == 0) {
            uint64_t shape[1] = {8};
            rc = afmt_define(f, "x", AFMT_INT32, 1, shape, NULL, NULL, NULL);
        } else if (rank == lone) {
            int64_t one = 1;
            rc = afmt_set_attr(f, NULL, "only_here", AFMT_INT64, 1, &one);
        } else {
            rc = afmt_commit(f);
        }
        EXPECT(same_everywhere(rc));
        if (rc != AFMT_EINVAL || !strstr(afmt_errmsg(f), "not in the same call"))
            rec(__LINE__, "round %d: -> %d: %s", k, rc, NSTR(afmt_errmsg(f)));
        EXPECT_OK(f, afmt_commit(f)); /* in step again: nothing to commit */
        afmt_info info;
        EXPECT_RC(f, afmt_inquire(f, "x", &info), AFMT_ENOTFOUND);
    }
    if (f) EXPECT_OK(NULL, afmt_close(f));
    afmt_file *g = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
    if (g) {
        EXPECT_LAYERS(g, 0);
        EXPECT_OK(NULL, afmt_close(g));
    }
    rm_path(path);
    done();
}

/* ---- the sparse exchange's cost ---- */

#define SP_CHUNK 64

static uint64_t sp_val(uint64_t i, int k) {
    return i * 1000003u + (uint64_t)k * 17u + 5;
}

/* The range rank r writes in commit k: partial (whole == 0) the last 44 - k elements of
 * chunk r and the first 20 + k of chunk r + 1, each chunk shared with a neighbour (and
 * the first 20 + k of chunk r merged with the committed content where rank r - 1 writes
 * nothing); whole: chunk r. The last rank writes nothing on 3 ranks or more. */
static void sp_range(int r, int size, int k, int whole, uint64_t n, uint64_t *s, uint64_t *c) {
    *s = *c = 0;
    if (size >= 3 && r == size - 1) return;
    uint64_t a = SP_CHUNK * (uint64_t)r + (whole ? 0 : 20 + (uint64_t)k);
    uint64_t b = a + SP_CHUNK;
    if (b > n) b = n;
    *s = a;
    *c = b - a;
}

/* COLLECTIVE. Commit k: every rank writes its range, commits, and reads the whole array
 * back against the model (which every rank keeps for all ranks). *d: what this rank's
 * sparse exchanges did during the commit. */
static void sp_commit(afmt_file *f, uint64_t *want, uint64_t n, int k, int whole,
                      afmt__sparse_stats *d, int line) {
    int rank = tu_rank(), size = tu_size();
    for (int r = 0; r < size; r++) {
        uint64_t s, c;
        sp_range(r, size, k, whole, n, &s, &c);
        for (uint64_t i = s; i < s + c; i++) want[i] = sp_val(i, k);
        if (r == rank && c) {
            uint64_t *buf = malloc(sizeof *buf * c);
            for (uint64_t i = 0; i < c; i++) buf[i] = sp_val(s + i, k);
            EXPECT_OK_AT(line, f, afmt_write(f, "v", &s, &c, buf));
            free(buf);
        }
    }
    afmt__sparse_stats a, b;
    afmt__sparse_get_stats(&a);
    EXPECT_OK_AT(line, f, afmt_commit(f));
    afmt__sparse_get_stats(&b);
    d->calls = b.calls - a.calls;
    d->sent = b.sent - a.sent;
    d->received = b.received - a.received;
    d->round2 = b.round2 - a.round2;
    uint64_t *got = calloc(n, sizeof *got), s0 = 0;
    EXPECT_OK_AT(line, f, afmt_read(f, "v", &s0, &n, got));
    for (uint64_t i = 0; i < n; i++)
        if (got[i] != want[i]) {
            rec(line, "commit %d: v[%llu] = %llu, want %llu", k, (unsigned long long)i,
                (unsigned long long)got[i], (unsigned long long)want[i]);
            break;
        }
    free(got);
}

static void test_sparse_cost(void **state) {
    (void)state;
    int rank = tu_rank(), size = tu_size();
    int silent = size >= 3 && rank == size - 1;
    uint64_t n = SP_CHUNK * (uint64_t)size + 37, chunk[1] = {SP_CHUNK};
    uint64_t *want = malloc(sizeof *want * n);
    for (int lim = 0; lim < 2; lim++) {
        if (lim) afmt__sparse_set_limits(0, 100); /* round 2 for all, in pieces */
        const char *path = tu_path(NULL, "xchg-sparse");
        memset(want, 0, sizeof *want * n);
        afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
        if (f) {
            EXPECT_OK(f, afmt_define(f, "v", AFMT_UINT64, 1, &n, chunk, NULL, NULL));
            for (int k = 0; k < 4; k++) {
                int whole = k == 1;
                afmt__sparse_stats d;
                sp_commit(f, want, n, k, whole, &d, __LINE__);
                if (d.calls != (whole ? 1u : 3u))
                    rec(__LINE__, "commit %d: %llu exchange rounds, want %d", k,
                        (unsigned long long)d.calls, whole ? 1 : 3);
                /* A rank that staged nothing sends no key and no piece; as an owner it
                 * answers only ranks that sent it keys of partial chunks. */
                if (silent && whole && d.sent != 0)
                    rec(__LINE__, "commit %d: the rank that wrote nothing sent %llu messages", k,
                        (unsigned long long)d.sent);
                if (silent && !whole && !lim && d.sent > d.received)
                    rec(__LINE__,
                        "commit %d: the rank that wrote nothing sent %llu messages, "
                        "received %llu",
                        k, (unsigned long long)d.sent, (unsigned long long)d.received);
                if (lim && !whole && size > 1 && d.round2 == 0)
                    rec(__LINE__, "commit %d: round 2 did not run with only lengths in round 1", k);
                if (getenv("AFMT_TEST_VERBOSE"))
                    printf("  [rank %d/%d] commit %d (%s, limits %d): rounds %llu, sent %llu, "
                           "received %llu\n",
                           rank, size, k, whole ? "whole chunks" : "shared chunks", lim,
                           (unsigned long long)d.calls, (unsigned long long)d.sent,
                           (unsigned long long)d.received);
            }
            EXPECT_OK(NULL, afmt_close(f));
        }
        afmt_file *g = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
        if (g) {
            uint64_t *got = calloc(n, sizeof *got), s0 = 0;
            EXPECT_OK(g, afmt_read(g, "v", &s0, &n, got));
            EXPECT(memcmp(got, want, sizeof *got * n) == 0);
            free(got);
            EXPECT_LAYERS(g, 4);
            EXPECT_OK(NULL, afmt_close(g));
        }
        rm_path(path);
    }
    afmt__sparse_set_limits(UINT64_MAX, 0);
    free(want);
    done();
}

/* A slab decomposition that matches the chunk ownership (rank r writes chunks
 * [3r, 3r + 3) of 3P, whole): every rank owns its own keys, so the commit's exchange sends
 * no message at all; a second commit where each rank writes its right neighbour's slab
 * sends each key to one owner. The data reads back either way. */
static void test_slab_keys_stay_home(void **state) {
    (void)state;
    int rank = tu_rank(), size = tu_size();
    uint64_t n = SP_CHUNK * 3 * (uint64_t)size, chunk[1] = {SP_CHUNK};
    const char *path = tu_path(NULL, "xchg-slab");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (f) {
        EXPECT_OK(f, afmt_define(f, "v", AFMT_UINT64, 1, &n, chunk, NULL, NULL));
        uint64_t c = SP_CHUNK * 3, *buf = malloc(sizeof *buf * c);
        for (int k = 0; k < 2; k++) {
            int r = (rank + k) % size; /* k = 1: the neighbour's slab */
            uint64_t s = c * (uint64_t)r;
            for (uint64_t i = 0; i < c; i++) buf[i] = sp_val(s + i, k);
            EXPECT_OK(f, afmt_write(f, "v", &s, &c, buf));
            afmt__sparse_stats a, b;
            afmt__sparse_get_stats(&a);
            EXPECT_OK(f, afmt_commit(f));
            afmt__sparse_get_stats(&b);
            uint64_t sent = b.sent - a.sent, want = k && size > 1 ? 1 : 0;
            if (sent != want)
                rec(__LINE__, "commit %d: rank %d sent %llu messages, want %llu", k, rank,
                    (unsigned long long)sent, (unsigned long long)want);
            uint64_t s0 = 0, *got = calloc(n, sizeof *got);
            EXPECT_OK(f, afmt_read(f, "v", &s0, &n, got));
            for (uint64_t i = 0; i < n; i++)
                if (got[i] != sp_val(i, k)) {
                    rec(__LINE__, "commit %d: v[%llu] = %llu, want %llu", k, (unsigned long long)i,
                        (unsigned long long)got[i], (unsigned long long)sp_val(i, k));
                    break;
                }
            free(got);
        }
        free(buf);
        EXPECT_OK(NULL, afmt_close(f));
    }
    rm_path(path);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overlap_names_the_pair),
        cmocka_unit_test(test_disagree_ndim),
        cmocka_unit_test(test_disagree_chunk),
        cmocka_unit_test(test_disagree_dtype),
        cmocka_unit_test(test_disagree_shape),
        cmocka_unit_test(test_call_on_some_ranks),
        cmocka_unit_test(test_sparse_cost),
        cmocka_unit_test(test_slab_keys_stay_home),
    };
    return tu_main(argc, argv, "mpi_exchange", tests, sizeof tests / sizeof tests[0]);
}
