/* model.h - shared helpers of the MPI integration suites (tests/mpi/test_*.c): failure
 * recording that keeps collectives aligned, collective open/remove helpers, and a per-rank
 * "model" of the bytes every array is expected to hold.
 *
 * Checks never abort in the middle of a test: a failed check is recorded and the test goes
 * on, so that every rank makes the same collective calls; done() at the end of each test
 * gathers the outcome of all ranks and fails the test (with the recorded messages).
 *
 * Only the MPI suites include this header (it takes short names: rec, done, val, ...). */
#ifndef AFMT_TEST_MODEL_H
#define AFMT_TEST_MODEL_H

#include "format/footer.h" /* afmt_layer */
#include "testutil.h"

/* ---- recording checks ---------------------------------------------------------------- */

#define NSTR(s) ((s) ? (s) : "(null)")

/* Number of checks failed on this rank since the last done() (the first 8 messages are
 * kept). A test may test it to add context to its failures. */
extern int g_nfail;

/* Records a failed check at source line `line` (printf-style message). */
void rec(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define EXPECT(c)                                                                                  \
    do {                                                                                           \
        if (!(c)) rec(__LINE__, "expected %s", #c);                                                \
    } while (0)
/* The rc check of EXPECT_RC; text is the call as written (stringified by the caller). */
#define EXPECT_RC_TEXT(line, f, call, text, want)                                                  \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != (want))                                                                         \
            rec(line, "%s -> %d (%s), want %d: %s", text, rc_, NSTR(afmt_strerror(rc_)),           \
                (int)(want), NSTR(afmt_errmsg(f)));                                                \
    } while (0)
#define EXPECT_RC(f, call, want) EXPECT_RC_TEXT(__LINE__, f, call, #call, want)
/* EXPECT_OK reporting the given line (for helpers that take their caller's line). */
#define EXPECT_OK_AT(line, f, call) EXPECT_RC_TEXT(line, f, call, #call, AFMT_OK)
#define EXPECT_OK(f, call)          EXPECT_RC(f, call, AFMT_OK)

/* COLLECTIVE over MPI_COMM_WORLD: ends a test, failing it if any rank recorded a failure. */
void done(void);

/* COLLECTIVE over c: 1 if v is nonzero on every rank of c. */
int all_true(int v, MPI_Comm c);

/* COLLECTIVE over c: creates (open == 0) or opens path; NULL on every rank unless every
 * rank succeeded, so that a failure does not leave ranks waiting in collectives. */
afmt_file *xopen(MPI_Comm c, const char *path, int open, unsigned flags, const afmt_opts *o,
                 int line);

/* COLLECTIVE: removes a test file once every rank is done with it (tu_remove unlinks on
 * rank 0 before its barrier). */
void rm_path(const char *p);

/* The size of file p in bytes, -1 if it cannot be stat'ed. */
long long fsize(const char *p);

/* COLLECTIVE over MPI_COMM_WORLD: 1 on every rank if the files at p and q are equal byte
 * for byte (rank 0 compares), else 0. */
int same_bytes(const char *p, const char *q);

/* The name of path's lock file, "<path>.lock" (static storage of the helper, a ring of 8). */
const char *lock_of(const char *path);

/* COLLECTIVE over MPI_COMM_WORLD: 1 on every rank if rank 0 can stat p (a link: its
 * target), else 0. */
int exists0(const char *p);

/* COLLECTIVE over MPI_COMM_WORLD: rank 0 reads the text of p (at most n - 1 bytes) into
 * buf, NUL-terminated, and every rank gets it; "" if p cannot be opened. */
void read0(const char *p, char *buf, int n);

/* COLLECTIVE over MPI_COMM_WORLD: rank 0 writes text as the whole content of p (a lock
 * "of someone else", a file to be kept), between two barriers; a failure is recorded. */
void write0(const char *p, const char *text);

/* COLLECTIVE over MPI_COMM_WORLD: afmt_open of path in mode (create: afmt_create, mode its
 * flags), with options o, must fail with want on every rank alike, leave *f NULL, and name
 * each of the NULL-terminated needles (NULL: none) in its message. */
void expect_fail(const char *path, int create, unsigned mode, const afmt_opts *o, int want,
                 int line, const char *const *needles);

/* COLLECTIVE over MPI_COMM_WORLD: rank 0 flips bit 0x10 of the byte at off of the file at
 * path (off 0: nothing), between two barriers. */
void flip_bit(const char *path, uint64_t off);

/* The newest layer of f as the file holds it: its footer (root table) and its segments
 * (block and chunk records) read back and attached into *L (free it with
 * afmt__layer_free). A failure is recorded at line, naming what, and returned. */
int read_newest_layer(afmt_file *f, afmt_layer *L, const char *what, int line);

/* afmt_layers of f (12345 if it fails, recorded at line). */
uint64_t layers_of(afmt_file *f, int line);
#define EXPECT_LAYERS(f, want)                                                                     \
    do {                                                                                           \
        uint64_t nl_ = layers_of(f, __LINE__);                                                     \
        if (nl_ != (uint64_t)(want))                                                               \
            rec(__LINE__, "afmt_layers = %llu, want %llu", (unsigned long long)nl_,                \
                (unsigned long long)(want));                                                       \
    } while (0)

/* ---- test values --------------------------------------------------------------------- */

#define SMOOTH (1ull << 40) /* seed flag: compressible values */

/* One element of type t with the small integer value v (floats get a fraction). */
void tconst(afmt_dtype t, int64_t v, void *dst);

/* Test value of element i (global linear index) for seed: distinct everywhere, valid for
 * the type (bools 0/1, finite floats); with SMOOTH in seed, runs of equal small values. */
void val(afmt_dtype t, void *dst, uint64_t i, uint64_t seed);

/* ---- the model: expected content of one array, kept by every rank -------------------- */

typedef struct {
    char name[256];
    afmt_dtype t;
    int ndim;
    uint64_t shape[32], chunk[32];
    int nullchunk, nullfill; /* define with chunk NULL / fill NULL */
    size_t es;
    uint64_t n;
    unsigned char fill[8];
    unsigned char *all;  /* content after the next commit (all ranks' writes) */
    unsigned char *mine; /* this rank's view before it: committed + own staged writes */
} model;

/* chunk NULL: afmt_define gets NULL and chooses the chunk (grid.h afmt__grid_auto_chunk: one
 * chunk up to 4 MiB); fill NULL: zero (ditto). */
void m_init(model *m, const char *name, afmt_dtype t, int ndim, const uint64_t *shape,
            const uint64_t *chunk, const void *fill);
void m_free(model *m);
/* All elements back to the fill value (after a delete and redefine). */
void m_reset(model *m);
/* afmt_define of the array the model describes. */
int m_define(afmt_file *f, const model *m);

/* Rank `writer` stages [start, start+count) with the values of seed; every rank records
 * it in its model (and the writer in its own view). */
void m_write(afmt_file *f, model *m, int writer, const uint64_t *start, const uint64_t *count,
             uint64_t seed, int line);
/* m_write of the box [st, st+ct) of a 2-D model split by rows among the ranks: band r of
 * np (rows st[0] + ct[0] * r / np onwards) is written by rank (r + shift) % np. */
void m_write_rows(afmt_file *f, model *m, const uint64_t *st, const uint64_t *ct, int shift,
                  uint64_t seed, int line);
/* After a commit: this rank's view becomes the committed content. */
void m_committed(model *m);

/* Reads [start, start+count) and compares it with the model (local: this rank's view). */
void m_check_slab(afmt_file *f, const model *m, const uint64_t *start, const uint64_t *count,
                  int local, int line);
/* m_check_slab of the whole array. */
void m_check(afmt_file *f, const model *m, int local, int line);
/* Checks afmt_inquire's name, dtype, ndim, shape and chunk against the model. */
void m_check_info(afmt_file *f, const model *m, int line);

/* Checks that f holds exactly the nm arrays of ms with their content. */
void check_all(afmt_file *f, const model *ms, int nm, int line);

/* COLLECTIVE over MPI_COMM_WORLD: the communicator of reopen variant v in 0..2: (0) a dup
 * of MPI_COMM_WORLD, (1) a sub-communicator of max(1, size-1) ranks (MPI_COMM_NULL on the
 * rank left out), (2) a dup of MPI_COMM_SELF. The caller frees it (MPI_Comm_free). */
MPI_Comm reopen_comm(int v);

/* COLLECTIVE over MPI_COMM_WORLD: reopens path read-only with (0) every rank, (1) a
 * sub-communicator of max(1, size-1) ranks, (2) MPI_COMM_SELF on each rank, and checks
 * every array against the models each time. */
void reopen_check(const char *path, const model *ms, int nm, int line);

/* ---- steps of a round trip over nm models ms[0..nm) (failures reported at line) ----- */

/* m_check of every array (local: this rank's view). */
void m_check_each(afmt_file *f, const model *ms, int nm, int local, int line);
/* COLLECTIVE over f's communicator: commits f, brings every model's own view up to date
 * (m_committed) and checks every array's committed content. */
void commit_check(afmt_file *f, model *ms, int nm, int line);
/* COLLECTIVE over MPI_COMM_WORLD: closes f (a final commit), then reopen_check. */
void close_reopen_check(afmt_file *f, const char *path, const model *ms, int nm, int line);
/* The last epoch of a round trip: m_check_each of this rank's views, commit_check, then
 * close_reopen_check. COLLECTIVE over MPI_COMM_WORLD. */
void commit_close_check(afmt_file *f, const char *path, model *ms, int nm, int line);
/* m_free of every model. */
void m_free_each(model *ms, int nm);

#endif
