/* test_threads.c - afmt.h's thread-safety promise, proven: several threads, each with its
 * own handles on its own communicator, create, write, commit, read back, reopen and close
 * files at the same time, register codecs and provoke failures, and every byte read back
 * is the byte written. Built with -DAFMT_TSAN=ON (scripts/test --tsan) ThreadSanitizer
 * fails the run on any data race inside afmt.
 *
 * The threads share what the library shares between handles: the codec registry, the
 * memory backend's image registry, the table of live handles, the per-thread message
 * buffers, the zstd contexts; and within each handle, its pool of worker threads
 * (afmt_opts_set_threads: 1 to 3 threads, sealing and decompressing blocks). In each round half the
 * threads use the memory backend, half the POSIX one (in AFMT_TEST_SCRATCH); both are
 * single-process, so the test runs on one rank. The rounds start together (a barrier), so that the
 * threads overlap the most: TSan sees a race only between accesses that no lock happened to order.
 * Exit status: 0 pass, 1 fail, 77 skipped (MPI lacks MPI_THREAD_MULTIPLE). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "afmt.h"
#include "api/file.h" /* afmt__opts_set_backend (a test hook) */

#define NTHREADS 4
#define ROUNDS   10
#define ROWS     37
#define COLS     29
#define CODEC_ID 5000 /* + thread index: one user codec per thread */

typedef struct {
    int idx;
    MPI_Comm comm;
    char path[512];
    char err[2048]; /* first failure, "" if none */
} worker;

static pthread_barrier_t barrier;

#define CHECK(w, cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond) && !(w)->err[0]) {                                                             \
            int n_ =                                                                               \
                snprintf((w)->err, sizeof(w)->err, "thread %d, line %d: ", (w)->idx, __LINE__);    \
            snprintf((w)->err + n_, sizeof(w)->err - (size_t)n_, __VA_ARGS__);                     \
        }                                                                                          \
    } while (0)
#define CALL(w, f, call)                                                                           \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        CHECK(w, rc_ == AFMT_OK, "%s -> %s: %s", #call, afmt_err_name(rc_), afmt_errmsg(f));       \
    } while (0)

/* The value of element i of thread t's array in round r: every thread, round and
 * position differs, so bytes of another handle would show. */
static double value(int t, int r, uint64_t i) {
    return (double)t * 1e6 + (double)r * 1e4 + (double)i * 0.5;
}

/* A user codec of its own per thread: bytes XOR a key (the thread's), so that a block
 * decoded with another thread's codec reads wrong. */
static size_t xor_bound(size_t n) {
    return n;
}
static int xor_apply(const void *src, size_t n, void *dst, uint8_t key) {
    for (size_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = ((const uint8_t *)src)[i] ^ key;
    return 0;
}
#define XOR_CODEC(k)                                                                               \
    static int xor_c##k(const void *s, size_t n, void *d, size_t cap, size_t *out, int level) {    \
        (void)level;                                                                               \
        if (n > cap) return 1;                                                                     \
        *out = n;                                                                                  \
        return xor_apply(s, n, d, (uint8_t)(0x51 + k));                                            \
    }                                                                                              \
    static int xor_d##k(const void *s, size_t n, void *d, size_t len) {                            \
        return n == len ? xor_apply(s, n, d, (uint8_t)(0x51 + k)) : 1;                             \
    }
XOR_CODEC(0)
XOR_CODEC(1)
XOR_CODEC(2)
XOR_CODEC(3)
static const afmt_codec_desc codecs[NTHREADS] = {
    {AFMT_CODEC_DESC_VERSION, CODEC_ID + 0, "xor0", xor_bound, xor_c0, xor_d0},
    {AFMT_CODEC_DESC_VERSION, CODEC_ID + 1, "xor1", xor_bound, xor_c1, xor_d1},
    {AFMT_CODEC_DESC_VERSION, CODEC_ID + 2, "xor2", xor_bound, xor_c2, xor_d2},
    {AFMT_CODEC_DESC_VERSION, CODEC_ID + 3, "xor3", xor_bound, xor_c3, xor_d3},
};

/* Reads the whole array back and compares it with what round r wrote. */
static void check_contents(worker *w, afmt_file *f, int r) {
    static const uint64_t start[2] = {0, 0}, count[2] = {ROWS, COLS};
    double got[ROWS * COLS];
    memset(got, 0, sizeof got);
    CALL(w, f, afmt_read(f, "u", start, count, got));
    for (uint64_t i = 0; i < ROWS * COLS && !w->err[0]; i++)
        CHECK(w, got[i] == value(w->idx, r, i), "round %d: u[%llu] = %g, wrote %g", r,
              (unsigned long long)i, got[i], value(w->idx, r, i));
}

/* Half the threads of each round use the POSIX backend, half the memory one; each thread
 * alternates between them. */
static int is_posix(const worker *w, int r) {
    return (w->idx + r) % 2 != 0;
}

static afmt_opts *make_opts(worker *w, int r) {
    afmt_opts *o = NULL;
    CALL(w, NULL, afmt_opts_create(&o));
    if (!o) return NULL;
    CALL(w, NULL, afmt__opts_set_backend(o, is_posix(w, r) ? "posix" : "memory"));
    CALL(w, NULL, afmt_opts_set_block_size(o, 4096));
    CALL(w, NULL, afmt_opts_set_cache_size(o, 8192));
    /* Rounds rotate through LZ4, zstd and the thread's own codec. */
    afmt_codec c = r % 3 == 0   ? AFMT_CODEC_LZ4
                   : r % 3 == 1 ? AFMT_CODEC_ZSTD
                                : (afmt_codec)(CODEC_ID + w->idx);
    CALL(w, NULL, afmt_opts_set_codec(o, c, 0));
    /* Each handle's own pool too (afmt_opts_set_threads): 1, 2 or 3 threads of work. */
    CALL(w, NULL, afmt_opts_set_threads(o, 1 + (w->idx + r) % 3));
    return o;
}

/* One round: a file with two commits (all rows, then the upper half rewritten), read
 * back through the writing handle and through a fresh read-only one. */
static void round_trip(worker *w, int r) {
    afmt_opts *o = make_opts(w, r);
    afmt_file *f = NULL;
    static const uint64_t shape[2] = {ROWS, COLS}, chunk[2] = {8, 7};
    double buf[ROWS * COLS];
    for (uint64_t i = 0; i < ROWS * COLS; i++) buf[i] = value(w->idx, r, i) + 1.0;
    CALL(w, NULL, afmt_create(w->comm, w->path, AFMT_TRUNC, o, &f));
    afmt_opts_free(o);
    if (!f) return;
    CALL(w, f, afmt_define(f, "u", AFMT_FLOAT64, 2, shape, chunk, NULL, NULL));
    const uint64_t start[2] = {0, 0};
    CALL(w, f, afmt_write(f, "u", start, shape, buf)); /* every value + 1 */
    CALL(w, f, afmt_commit(f));
    for (uint64_t i = 0; i < ROWS * COLS; i++) buf[i] = value(w->idx, r, i);
    const uint64_t half[2] = {ROWS / 2 + 1, COLS};
    CALL(w, f, afmt_write(f, "u", start, half, buf));
    const uint64_t rest_start[2] = {ROWS / 2 + 1, 0}, rest[2] = {ROWS - (ROWS / 2 + 1), COLS};
    CALL(w, f, afmt_write(f, "u", rest_start, rest, buf + (ROWS / 2 + 1) * COLS));
    CALL(w, f, afmt_commit(f));
    check_contents(w, f, r);
    CALL(w, f, afmt_close(f));

    o = make_opts(w, r);
    f = NULL;
    CALL(w, NULL, afmt_open(w->comm, w->path, AFMT_RDONLY, o, &f));
    afmt_opts_free(o);
    if (!f) return;
    uint64_t layers = 0;
    CALL(w, f, afmt_layers(f, &layers));
    CHECK(w, layers == 2, "round %d: %llu layers, committed 2", r, (unsigned long long)layers);
    check_contents(w, f, r);
    /* A failure on this handle names this thread's array, whatever the others do. */
    char name[32];
    snprintf(name, sizeof name, "missing-%d-%d", w->idx, r);
    afmt_info info;
    CHECK(w, afmt_inquire(f, name, &info) == AFMT_ENOTFOUND, "inquire(%s) found it", name);
    CHECK(w, strstr(afmt_errmsg(f), name) != NULL, "errmsg(f) \"%s\" lacks %s", afmt_errmsg(f),
          name);
    CALL(w, f, afmt_close(f));
}

/* afmt_errmsg(NULL) is per thread: this thread's failure stays its message while the
 * other threads fail with theirs. */
static void thread_message(worker *w) {
    char path[600];
    snprintf(path, sizeof path, "%s.no-such-file-of-thread-%d", w->path, w->idx);
    afmt_file *f = NULL;
    int rc = afmt_open(w->comm, path, AFMT_RDONLY, NULL, &f);
    CHECK(w, rc != AFMT_OK && f == NULL, "open(%s) -> %s", path, afmt_err_name(rc));
    pthread_barrier_wait(&barrier); /* every thread has failed by now */
    CHECK(w, strstr(afmt_errmsg(NULL), path) != NULL, "errmsg(NULL) \"%s\" is not about %s",
          afmt_errmsg(NULL), path);
}

static void *run(void *arg) {
    worker *w = arg;
    CALL(w, NULL, afmt_codec_register(&codecs[w->idx]));
    pthread_barrier_wait(&barrier); /* every codec registered before any file uses one */
    for (int r = 0; r < ROUNDS; r++) {
        pthread_barrier_wait(&barrier); /* the rounds start together: the most overlap */
        round_trip(w, r);
    }
    thread_message(w);
    return NULL;
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    int size = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (provided < MPI_THREAD_MULTIPLE || size != 1) {
        printf("test_threads: SKIP: %s\n",
               size != 1 ? "runs on one rank only" : "MPI lacks MPI_THREAD_MULTIPLE");
        MPI_Finalize();
        return 77;
    }
    worker w[NTHREADS];
    pthread_t th[NTHREADS];
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].idx = i;
        MPI_Comm_dup(MPI_COMM_SELF, &w[i].comm); /* one communicator per thread */
        snprintf(w[i].path, sizeof w[i].path, "%s/afmt-threads-%ld-%d.afmt", AFMT_TEST_SCRATCH,
                 (long)getpid(), i);
    }
    for (int i = 0; i < NTHREADS; i++) pthread_create(&th[i], NULL, run, &w[i]);
    int failed = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        if (w[i].err[0]) {
            fprintf(stderr, "test_threads: FAIL: %s\n", w[i].err);
            failed = 1;
        }
        unlink(w[i].path); /* the POSIX file; memory images go with the process */
        MPI_Comm_free(&w[i].comm);
    }
    pthread_barrier_destroy(&barrier);
    if (!failed)
        printf("test_threads: %d threads x %d rounds, every byte read back as written\n", NTHREADS,
               ROUNDS);
    MPI_Finalize();
    return failed;
}
