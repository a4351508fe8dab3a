/* test_disagree.c - ranks that make different collective metadata calls (afmt_define,
 * afmt_delete, afmt_set_attr) with other arguments or in another order are told at the
 * commit: AFMT_EINVAL on every rank with the same message naming the first differing call,
 * the array and the field; nothing is written (the file keeps its bytes and its last
 * commit); the staged changes stay until afmt_discard, after which agreeing calls commit
 * fine. A call made on some ranks only fails earlier, at the call itself: it meets the
 * others' commit in afmt__enter, and both fail with AFMT_EINVAL on every rank ("the ranks
 * are not in the same call"), nothing changed and nothing written. Also: afmt_close and
 * afmt_compact refuse alike, calls that fail locally do not count, many agreeing calls
 * (NaN values, arrays without dimension names) are no false positive, and
 * afmt_opts_set_check_collective(o, 0) really turns the check off. The disagreement cases
 * need 2 or more ranks and skip on 1. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NWANT  3
#define WANTSZ 256

/* ---- the committed base every case starts from ---------------------------------------- */

#define BY 6
#define BX 10

static int32_t base_value(int seed, uint64_t i) {
    return seed * 1000 + (int32_t)i;
}

/* Each rank writes the rows r, r + size, ... of "base" with values of seed. */
static void write_base(afmt_file *f, int seed, int line) {
    int r = tu_rank(), p = tu_size();
    for (uint64_t y = (uint64_t)r; y < BY; y += (uint64_t)p) {
        int32_t row[BX];
        for (uint64_t x = 0; x < BX; x++) row[x] = base_value(seed, y * BX + x);
        uint64_t st[2] = {y, 0}, ct[2] = {1, BX};
        EXPECT_OK_AT(line, f, afmt_write(f, "base", st, ct, row));
    }
}

/* Reads all of "base"; checks rows (mine_only: this rank's rows) hold seed's values. */
static void check_base(afmt_file *f, int seed, int mine_only, int line) {
    int32_t v[BY * BX];
    uint64_t st[2] = {0, 0}, ct[2] = {BY, BX};
    int rc = afmt_read(f, "base", st, ct, v);
    if (rc != AFMT_OK) {
        rec(line, "afmt_read(base) -> %d: %s", rc, NSTR(afmt_errmsg(f)));
        return;
    }
    for (uint64_t i = 0; i < BY * BX; i++) {
        if (mine_only && (int)(i / BX) % tu_size() != tu_rank()) continue;
        if (v[i] != base_value(seed, i)) {
            rec(line, "base[%llu] = %d, want %d (seed %d)", (unsigned long long)i, (int)v[i],
                (int)base_value(seed, i), seed);
            return;
        }
    }
}

/* Creates path with one commit: "base" (int32 6x10, chunks 4x4, dims y/x) written with
 * seed 1 by all ranks, and the file attribute "title" = "base". */
static afmt_file *make_base(const char *path, const afmt_opts *o, int line) {
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, AFMT_TRUNC, o, line);
    if (!f) return NULL;
    uint64_t shape[2] = {BY, BX}, chunk[2] = {4, 4};
    const char *dims[2] = {"y", "x"};
    EXPECT_OK_AT(line, f, afmt_define(f, "base", AFMT_INT32, 2, shape, chunk, dims, NULL));
    EXPECT_OK_AT(line, f, afmt_set_attr(f, NULL, "title", AFMT_UINT8, 4, "base"));
    write_base(f, 1, line);
    EXPECT_OK_AT(line, f, afmt_commit(f));
    return f;
}

/* The whole file as bytes (rank 0 only; NULL elsewhere). */
static unsigned char *slurp(const char *path, long *len) {
    *len = -1;
    if (tu_rank() != 0) return NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    unsigned char *b = NULL;
    if (fseek(fp, 0, SEEK_END) == 0 && (*len = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0) {
        b = malloc((size_t)*len + 1);
        if (b && fread(b, 1, (size_t)*len, fp) != (size_t)*len) {
            free(b);
            b = NULL;
        }
    }
    fclose(fp);
    return b;
}

/* Rank 0: the file still has exactly the bytes of snap. */
static void check_bytes(const char *path, const unsigned char *snap, long slen, int line) {
    if (tu_rank() != 0) return;
    long len;
    unsigned char *now = slurp(path, &len);
    if (!now || !snap || len != slen || memcmp(now, snap, (size_t)len) != 0)
        rec(line, "the file changed: %ld bytes, %ld before%s", len, slen,
            now && snap && len == slen ? " (contents differ)" : "");
    free(now);
}

/* A fresh read-only handle sees exactly the base commit: nlayers layers, "base" with
 * seed's values, "title", and narrays live arrays. */
static void check_reopen(const char *path, uint64_t nlayers, int seed, int narrays, int line) {
    afmt_file *r = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, line);
    if (!r) return;
    uint64_t nl = layers_of(r, line);
    if (nl != nlayers)
        rec(line, "%llu layers, want %llu", (unsigned long long)nl, (unsigned long long)nlayers);
    int n = -1;
    EXPECT_OK_AT(line, r, afmt_count(r, &n));
    if (n != narrays) rec(line, "%d arrays, want %d", n, narrays);
    check_base(r, seed, 0, line);
    char title[8] = "";
    uint64_t tn = sizeof title;
    EXPECT_OK_AT(line, r, afmt_get_attr(r, NULL, "title", AFMT_UINT8, &tn, title));
    if (tn != 4 || memcmp(title, "base", 4) != 0) rec(line, "title is not \"base\"");
    EXPECT_OK_AT(line, r, afmt_close(r));
}

/* rc must be AFMT_EINVAL; msg the same on every rank and contain every non-empty want and
 * "nothing was written". */
static void check_refusal(int rc, const char *msg, char want[NWANT][WANTSZ], int line) {
    if (rc != AFMT_EINVAL)
        rec(line, "rc = %d (%s), want AFMT_EINVAL: %s", rc, NSTR(afmt_strerror(rc)), NSTR(msg));
    char m0[1024];
    snprintf(m0, sizeof m0, "%s", msg ? msg : "");
    MPI_Bcast(m0, sizeof m0, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (strcmp(m0, msg ? msg : "") != 0)
        rec(line, "message differs from rank 0's:\n  here:   %s\n  rank 0: %s", NSTR(msg), m0);
    for (int i = 0; i < NWANT; i++)
        if (want[i][0] && !strstr(m0, want[i]))
            rec(line, "message lacks \"%s\":\n  %s", want[i], m0);
    if (!strstr(m0, "nothing was written")) rec(line, "message lacks \"nothing was written\"");
    if (tu_rank() == 0 && getenv("AFMT_TEST_VERBOSE")) printf("# %s\n", m0);
}

/* ---- the disagreements -------------------------------------------------------------- */

/* A case makes its calls on f (rank `odd` differs) and says what the message must contain.
 * Returns 1 if this rank deleted "base" (its staged rows are gone then). */
typedef int (*scenario)(afmt_file *f, int odd, char want[NWANT][WANTSZ]);

static int me(void) {
    return tu_rank();
}

/* The words for a field that is vnorm on most ranks and vodd on odd, as the message puts
 * them: rank 0's value against the lowest rank that differs from rank 0. */
static void want_field(char *w, const char *what, const char *vnorm, const char *vodd, int odd) {
    if (odd == 0)
        snprintf(w, WANTSZ, "%s is %s on rank 0 and %s on rank 1", what, vodd, vnorm);
    else
        snprintf(w, WANTSZ, "%s is %s on rank 0 and %s on rank %d", what, vnorm, vodd, odd);
}

/* Two agreeing calls, then a define of "temp" whose field differs on odd. */
static void temp_define(afmt_file *f, int odd, int which) {
    EXPECT_OK(f, afmt_set_attr(f, NULL, "step", AFMT_INT64, 1, &(int64_t){7}));
    uint64_t pshape = 3;
    EXPECT_OK(f, afmt_define(f, "pre", AFMT_INT16, 1, &pshape, NULL, NULL, NULL));
    int d = me() == odd;
    uint64_t shape[2] = {4, 64}, chunk[2] = {2, 16};
    const char *dims[2] = {"y", "x"};
    afmt_dtype t = AFMT_FLOAT64;
    double fill = 1.5;
    int ndim = 2;
    if (d && which == 0) shape[1] = 65;
    if (d && which == 1) chunk[0] = 3;
    if (d && which == 2) t = AFMT_FLOAT32;
    if (d && which == 3) fill = 2.5;
    if (d && which == 4) dims[1] = "lon";
    if (d && which == 5) ndim = 1, shape[0] = 256, chunk[0] = 16;
    float fill32 = (float)fill;
    EXPECT_OK(f, afmt_define(f, "temp", t, ndim, shape, chunk, dims,
                             t == AFMT_FLOAT32 ? (const void *)&fill32 : (const void *)&fill));
}

#define TEMP_CASE(fname, which, what, vnorm, vodd)                                                 \
    static int fname(afmt_file *f, int odd, char want[NWANT][WANTSZ]) {                            \
        temp_define(f, odd, which);                                                                \
        snprintf(want[0], WANTSZ,                                                                  \
                 "ranks disagree on collective call 3 (afmt_define(\"temp\")): ");                 \
        want_field(want[1], what, vnorm, vodd, odd);                                               \
        return 0;                                                                                  \
    }
TEMP_CASE(sc_shape, 0, "shape[1]", "64", "65")
TEMP_CASE(sc_chunk, 1, "chunk[0]", "2", "3")
TEMP_CASE(sc_dtype, 2, "dtype", "float64", "float32")
TEMP_CASE(sc_fill, 3, "fill", "1.5", "2.5")
TEMP_CASE(sc_dims, 4, "dims[1]", "\"x\"", "\"lon\"")
TEMP_CASE(sc_ndim, 5, "ndim", "2", "1")

/* An attribute of "base" with a different third value on odd. */
static int sc_attr_value(afmt_file *f, int odd, char want[NWANT][WANTSZ]) {
    double v[3] = {1, 2, me() == odd ? 3.5 : 3};
    EXPECT_OK(f, afmt_set_attr(f, "base", "scale", AFMT_FLOAT64, 3, v));
    snprintf(want[0], WANTSZ,
             "ranks disagree on collective call 1 (afmt_set_attr(\"base\", \"scale\")): ");
    want_field(want[1], "value[2]", "3", "3.5", odd);
    return 0;
}

/* A string attribute of the file with another text on odd. */
static int sc_attr_string(afmt_file *f, int odd, char want[NWANT][WANTSZ]) {
    EXPECT_OK(f, afmt_set_attr(f, NULL, "units", AFMT_UINT8, 1, me() == odd ? "C" : "K"));
    snprintf(want[0], WANTSZ, "call 1 (afmt_set_attr(file, \"units\")): ");
    want_field(want[1], "the value", "\"K\"", "\"C\"", odd);
    return 0;
}

/* A long attribute (more than the 64 bytes a record keeps of it) that differs far in. */
static int sc_attr_long(afmt_file *f, int odd, char want[NWANT][WANTSZ]) {
    double v[100];
    for (int i = 0; i < 100; i++) v[i] = i;
    if (me() == odd) v[77] = -1;
    EXPECT_OK(f, afmt_set_attr(f, "base", "long", AFMT_FLOAT64, 100, v));
    snprintf(want[0], WANTSZ,
             "ranks disagree on collective call 1 (afmt_set_attr(\"base\", \"long\")): the values "
             "(n=100) differ between rank 0 and rank %d after the first 64 bytes",
             odd == 0 ? 1 : odd);
    return 0;
}

/* Attributes whose count or dtype differ, after an agreeing one. */
static int sc_attr_count(afmt_file *f, int odd, char want[NWANT][WANTSZ]) {
    int64_t v[3] = {1, 2, 3};
    EXPECT_OK(f, afmt_set_attr(f, NULL, "same", AFMT_INT64, 3, v));
    EXPECT_OK(f, afmt_set_attr(f, "base", "n", AFMT_INT64, me() == odd ? 3 : 2, v));
    snprintf(want[0], WANTSZ, "collective call 2 (afmt_set_attr(\"base\", \"n\"))");
    want_field(want[1], "the number of values", "2", "3", odd);
    return 0;
}

static int sc_attr_dtype(afmt_file *f, int odd, char want[NWANT][WANTSZ]) {
    int32_t v = 5;
    EXPECT_OK(f, afmt_set_attr(f, NULL, "k", me() == odd ? AFMT_UINT32 : AFMT_INT32, 1, &v));
    snprintf(want[0], WANTSZ, "call 1 (afmt_set_attr(file, \"k\")): ");
    want_field(want[1], "dtype", "int32", "uint32", odd);
    return 0;
}

/* The same key on the file on odd, on "base" elsewhere. */
static int sc_attr_owner(afmt_file *f, int odd, char want[NWANT][WANTSZ]) {
    EXPECT_OK(f, afmt_set_attr(f, me() == odd ? NULL : "base", "k", AFMT_UINT8, 1, "v"));
    const char *norm = "afmt_set_attr(\"base\", \"k\")", *other = "afmt_set_attr(file, \"k\")";
    want_field(want[0], "collective call 1: it", norm, other, odd);
    return 0;
}

/* odd defines "b" then "a", the others "a" then "b". */
static int sc_order(afmt_file *f, int odd, char want[NWANT][WANTSZ]) {
    uint64_t n = 5;
    const char *first = me() == odd ? "b" : "a", *second = me() == odd ? "a" : "b";
    EXPECT_OK(f, afmt_define(f, first, AFMT_INT8, 1, &n, NULL, NULL, NULL));
    EXPECT_OK(f, afmt_define(f, second, AFMT_INT8, 1, &n, NULL, NULL, NULL));
    snprintf(want[0], WANTSZ,
             "ranks disagree on collective call 1: it is afmt_define(\"%s\") on rank 0 and "
             "afmt_define(\"%s\") on rank %d",
             odd == 0 ? "b" : "a", odd == 0 ? "a" : "b", odd == 0 ? 1 : odd);
    return 0;
}

/* ---- the runner ---------------------------------------------------------------------- */

static void then_agree(afmt_file *f, const char *path, unsigned char *snap, int line);

/* From a committed base: staged rows of seed 2, the case's calls, then afmt_commit must
 * refuse on every rank with the expected message, twice (nothing is forgotten), the file
 * unchanged; the staged rows stay until afmt_discard; afterwards agreeing calls commit. */
static void run(scenario sc, int odd, int line) {
    const char *path = tu_path(NULL, "disagree");
    afmt_file *f = make_base(path, NULL, line);
    if (!f) {
        done();
        return;
    }
    long slen;
    unsigned char *snap = slurp(path, &slen);
    write_base(f, 2, line);
    char want[NWANT][WANTSZ];
    memset(want, 0, sizeof want);
    int deleted = sc(f, odd, want);

    int rc = afmt_commit(f);
    check_refusal(rc, afmt_errmsg(f), want, line);
    char first[1024];
    snprintf(first, sizeof first, "%s", afmt_errmsg(f));
    check_bytes(path, snap, slen, line);
    check_reopen(path, 1, 1, 1, line);

    /* A retry is refused the same way: the calls are remembered, not dropped. */
    rc = afmt_commit(f);
    check_refusal(rc, afmt_errmsg(f), want, line);
    if (strcmp(first, afmt_errmsg(f)) != 0)
        rec(line, "the retry's message differs:\n  %s\n  %s", first, afmt_errmsg(f));
    check_bytes(path, snap, slen, line);
    if (!deleted) check_base(f, 2, 1, line); /* the staged rows are still staged */

    then_agree(f, path, snap, line);
}

/* After a refusal: afmt_discard on every rank, then agreeing calls commit and read back. */
static void then_agree(afmt_file *f, const char *path, unsigned char *snap, int line) {
    EXPECT_OK_AT(line, f, afmt_discard(f));
    check_base(f, 1, 0, line);
    /* Agreeing calls now commit. */
    uint64_t n = 4;
    double v[4] = {0.5, -1, NAN, 4};
    EXPECT_OK_AT(line, f, afmt_define(f, "after", AFMT_FLOAT64, 1, &n, NULL, NULL, NULL));
    if (me() == 0) {
        uint64_t st = 0;
        EXPECT_OK_AT(line, f, afmt_write(f, "after", &st, &n, v));
    }
    EXPECT_OK_AT(line, f, afmt_set_attr(f, "after", "k", AFMT_FLOAT64, 4, v));
    write_base(f, 3, line);
    EXPECT_OK_AT(line, f, afmt_commit(f));
    EXPECT_OK_AT(line, f, afmt_close(f));

    check_reopen(path, 2, 3, 2, line);
    afmt_file *r = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, line);
    if (r) {
        double got[4], ga[4];
        uint64_t st = 0, na = 4;
        EXPECT_OK_AT(line, r, afmt_read(r, "after", &st, &n, got));
        EXPECT_OK_AT(line, r, afmt_get_attr(r, "after", "k", AFMT_FLOAT64, &na, ga));
        if (memcmp(got, v, sizeof v) != 0 || memcmp(ga, v, sizeof v) != 0)
            rec(line, "\"after\" or its attribute read back wrong");
        EXPECT_OK_AT(line, r, afmt_close(r));
    }
    free(snap);
    rm_path(path);
    done();
}

/* ---- calls made on some ranks only: refused at the call itself ----------------------- */

/* A case of a call made on some ranks only: the ranks that make it return 1 with its code
 * in *rc (the others go on to afmt_commit); after the refusal, unchanged() checks that the
 * call changed nothing on this rank. */
typedef struct {
    const char *call; /* the function some ranks call */
    int (*calls)(afmt_file *f, int odd, int *rc);
    void (*unchanged)(afmt_file *f, int line);
} partial;

static void expect_array(afmt_file *f, const char *name, int want, int line) {
    afmt_info info;
    int rc = afmt_inquire(f, name, &info);
    if (rc != (want ? AFMT_OK : AFMT_ENOTFOUND))
        rec(line, "afmt_inquire(\"%s\") -> %d: the array should %s", name, rc,
            want ? "exist" : "not exist");
}

/* "x" defined on every rank but odd (the defect: an exchange of chunks of an array some
 * ranks do not know): now the define meets odd's commit. */
static int pc_define_some(afmt_file *f, int odd, int *rc) {
    if (me() == odd) return 0;
    uint64_t shape[2] = {8, 64}, chunk[2] = {4, 16};
    *rc = afmt_define(f, "x", AFMT_FLOAT32, 2, shape, chunk, NULL, NULL);
    return 1;
}
static void un_define_some(afmt_file *f, int line) {
    expect_array(f, "x", 0, line);
}

/* odd alone deletes "base". */
static int pc_delete_some(afmt_file *f, int odd, int *rc) {
    if (me() != odd) return 0;
    *rc = afmt_delete(f, "base");
    return 1;
}
static void un_delete_some(afmt_file *f, int line) {
    expect_array(f, "base", 1, line);
}

/* A file attribute set on odd only. */
static int pc_attr_some(afmt_file *f, int odd, int *rc) {
    if (me() != odd) return 0;
    *rc = afmt_set_attr(f, NULL, "note", AFMT_UINT8, 2, "hi");
    return 1;
}
static void un_attr_some(afmt_file *f, int line) {
    char v[4];
    uint64_t n = sizeof v;
    int rc = afmt_get_attr(f, NULL, "note", AFMT_UINT8, &n, v);
    if (rc != AFMT_ENOTFOUND) rec(line, "attribute \"note\" -> %d, want AFMT_ENOTFOUND", rc);
}

/* odd makes one call more at the end (after one every rank makes). */
static int pc_more_calls(afmt_file *f, int odd, int *rc) {
    uint64_t n = 5;
    EXPECT_OK(f, afmt_define(f, "a", AFMT_UINT64, 1, &n, NULL, NULL, NULL));
    if (me() != odd) return 0;
    *rc = afmt_define(f, "b", AFMT_UINT64, 1, &n, NULL, NULL, NULL);
    return 1;
}
static void un_more_calls(afmt_file *f, int line) {
    expect_array(f, "a", 1, line);
    expect_array(f, "b", 0, line);
}

/* From a committed base: staged rows of seed 2; the ranks of the case make their call while
 * the others commit. Every rank gets AFMT_EINVAL, the message says that the ranks are not
 * in the same call, nothing is written, the call changed nothing, the staged rows stay; a
 * second try of the same calls is refused alike. Then the ranks are in step again:
 * afmt_discard, and agreeing calls commit. */
static void run_partial(const partial *pc, int odd, int line) {
    const char *path = tu_path(NULL, "disagree");
    afmt_file *f = make_base(path, NULL, line);
    if (!f) {
        done();
        return;
    }
    long slen;
    unsigned char *snap = slurp(path, &slen);
    write_base(f, 2, line);
    char want[WANTSZ];
    snprintf(want, sizeof want,
             "the ranks are not in the same call (%s on some, afmt_commit on others)", pc->call);
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc = AFMT_OK;
        /* pc_more_calls' agreeing define runs once: its second try only redoes the extra. */
        if (attempt == 1 && pc->calls == pc_more_calls) {
            uint64_t n = 5;
            if (me() == odd) rc = afmt_define(f, "b", AFMT_UINT64, 1, &n, NULL, NULL, NULL);
            if (me() != odd) rc = afmt_commit(f);
        } else if (!pc->calls(f, odd, &rc)) {
            rc = afmt_commit(f);
        }
        int lo = rc, hi = rc;
        MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        if (rc != AFMT_EINVAL || lo != hi)
            rec(line, "rc = %d here, %d..%d over the ranks, want AFMT_EINVAL on every rank: %s", rc,
                lo, hi, NSTR(afmt_errmsg(f)));
        if (!strstr(NSTR(afmt_errmsg(f)), want))
            rec(line, "message lacks \"%s\":\n  %s", want, NSTR(afmt_errmsg(f)));
        if (tu_rank() == 0 && getenv("AFMT_TEST_VERBOSE")) printf("# %s\n", afmt_errmsg(f));
        check_bytes(path, snap, slen, line);
        check_reopen(path, 1, 1, 1, line);
        pc->unchanged(f, line);
        check_base(f, 2, 1, line); /* the staged rows are still staged */
    }
    then_agree(f, path, snap, line);
}

static int need_ranks(void) {
    return tu_size() >= 2;
}

#define PARTIAL_CASE(tname, fn, pc, un)                                                            \
    static void tname(void **state) {                                                              \
        (void)state;                                                                               \
        if (!need_ranks()) skip();                                                                 \
        static const partial p = {fn, pc, un};                                                     \
        run_partial(&p, tu_size() - 1, __LINE__);                                                  \
        run_partial(&p, 0, __LINE__);                                                              \
    }
PARTIAL_CASE(test_define_on_some_ranks, "afmt_define", pc_define_some, un_define_some)
PARTIAL_CASE(test_delete_on_some_ranks, "afmt_delete", pc_delete_some, un_delete_some)
PARTIAL_CASE(test_attr_on_some_ranks, "afmt_set_attr", pc_attr_some, un_attr_some)
PARTIAL_CASE(test_more_calls, "afmt_define", pc_more_calls, un_more_calls)

#define CASE(tname, sc)                                                                            \
    static void tname(void **state) {                                                              \
        (void)state;                                                                               \
        if (!need_ranks()) skip();                                                                 \
        run(sc, tu_size() - 1, __LINE__);                                                          \
        run(sc, 0, __LINE__);                                                                      \
    }
CASE(test_shape, sc_shape)
CASE(test_chunk, sc_chunk)
CASE(test_dtype, sc_dtype)
CASE(test_fill, sc_fill)
CASE(test_dims, sc_dims)
CASE(test_ndim, sc_ndim)
CASE(test_attr_value, sc_attr_value)
CASE(test_attr_string, sc_attr_string)
CASE(test_attr_long, sc_attr_long)
CASE(test_attr_count, sc_attr_count)
CASE(test_attr_dtype, sc_attr_dtype)
CASE(test_attr_owner, sc_attr_owner)
CASE(test_order, sc_order)

/* The shuffle flag comes from the handle's options: a rank that opened with shuffle off
 * defines a different array. */
static void test_shuffle_option(void **state) {
    (void)state;
    if (!need_ranks()) skip();
    int odd = tu_size() - 1;
    afmt_opts *o;
    TU_OK(NULL, afmt_opts_create(&o));
    TU_OK(NULL, afmt_opts_set_shuffle(o, me() != odd));
    const char *path = tu_path(NULL, "shuffle");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, AFMT_TRUNC, o, __LINE__);
    if (f) {
        uint64_t n = 100;
        EXPECT_OK(f, afmt_define(f, "s", AFMT_INT32, 1, &n, NULL, NULL, NULL));
        char want[NWANT][WANTSZ];
        memset(want, 0, sizeof want);
        snprintf(want[0], WANTSZ,
                 "call 1 (afmt_define(\"s\")): shuffle (afmt_opts_set_shuffle) is enabled on "
                 "rank 0 and disabled on rank %d",
                 odd);
        check_refusal(afmt_commit(f), afmt_errmsg(f), want, __LINE__);
        EXPECT_LAYERS(f, 0);
        EXPECT_OK(f, afmt_discard(f));
        EXPECT_OK(f, afmt_close(f));
    }
    afmt_opts_free(o);
    rm_path(path);
    done();
}

/* afmt_close commits first: it refuses alike, frees the handle, writes nothing. */
static void test_close_refuses(void **state) {
    (void)state;
    if (!need_ranks()) skip();
    const char *path = tu_path(NULL, "close");
    afmt_file *f = make_base(path, NULL, __LINE__);
    if (f) {
        long slen;
        unsigned char *snap = slurp(path, &slen);
        char want[NWANT][WANTSZ];
        memset(want, 0, sizeof want);
        write_base(f, 2, __LINE__);
        sc_shape(f, tu_size() - 1, want);
        check_refusal(afmt_close(f), afmt_errmsg(NULL), want, __LINE__);
        check_bytes(path, snap, slen, __LINE__);
        check_reopen(path, 1, 1, 1, __LINE__);
        free(snap);
    }
    rm_path(path);
    done();
}

/* afmt_compact commits first: it refuses alike and does not compact. */
static void test_compact_refuses(void **state) {
    (void)state;
    if (!need_ranks()) skip();
    const char *path = tu_path(NULL, "compact");
    afmt_file *f = make_base(path, NULL, __LINE__);
    if (f) {
        write_base(f, 1, __LINE__); /* a second layer, so that compaction would show */
        EXPECT_OK(f, afmt_commit(f));
        long slen;
        unsigned char *snap = slurp(path, &slen);
        char want[NWANT][WANTSZ];
        memset(want, 0, sizeof want);
        sc_attr_value(f, tu_size() - 1, want);
        check_refusal(afmt_compact(f), afmt_errmsg(f), want, __LINE__);
        check_bytes(path, snap, slen, __LINE__);
        EXPECT_LAYERS(f, 2);
        check_reopen(path, 2, 1, 1, __LINE__);
        EXPECT_OK(f, afmt_discard(f));
        EXPECT_OK(f, afmt_compact(f));
        EXPECT_LAYERS(f, 1);
        EXPECT_OK(f, afmt_close(f));
        check_reopen(path, 1, 1, 1, __LINE__);
        free(snap);
    }
    rm_path(path);
    done();
}

/* Calls that fail their local checks changed nothing and are not counted: extra failing
 * calls on one rank do not make the commit fail. */
static void test_failed_calls_do_not_count(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "failed");
    afmt_file *f = make_base(path, NULL, __LINE__);
    if (f) {
        uint64_t zero[2] = {0, 4}, shape[2] = {4, 4};
        if (me() == tu_size() - 1) {
            EXPECT_RC(f, afmt_define(f, "bad", AFMT_INT32, 2, zero, NULL, NULL, NULL), AFMT_EINVAL);
            EXPECT_RC(f, afmt_define(f, "base", AFMT_INT32, 2, shape, NULL, NULL, NULL),
                      AFMT_EEXIST);
            EXPECT_RC(f, afmt_define(f, "bad", (afmt_dtype)99, 2, shape, NULL, NULL, NULL),
                      AFMT_EINVAL);
            EXPECT_RC(f, afmt_delete(f, "nope"), AFMT_ENOTFOUND);
            EXPECT_RC(f, afmt_set_attr(f, "nope", "k", AFMT_INT8, 1, "x"), AFMT_ENOTFOUND);
            EXPECT_RC(f, afmt_set_attr(f, NULL, "", AFMT_INT8, 1, "x"), AFMT_EINVAL);
            EXPECT_RC(f, afmt_set_attr(f, NULL, "k", AFMT_INT8, 1, NULL), AFMT_EINVAL);
        }
        EXPECT_OK(f, afmt_define(f, "ok", AFMT_INT32, 2, shape, NULL, NULL, NULL));
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_LAYERS(f, 2);
        EXPECT_OK(f, afmt_close(f));
        check_reopen(path, 2, 1, 2, __LINE__);
    }
    rm_path(path);
    done();
}

/* Many agreeing calls in several commits: every dtype, NaN and -0.0 values, empty and
 * large attributes, arrays without dimension names or chunks, scalars, deletes and
 * redefinitions, overwritten keys. No false positive, and the data reads back. */
static void test_many_agreeing_calls(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "agree");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, AFMT_TRUNC, NULL, __LINE__);
    if (!f) {
        done();
        return;
    }
    enum { NARR = 60, BIG = 5000 };
    double *big = malloc(sizeof(double) * BIG);
    for (int i = 0; i < BIG; i++) big[i] = i % 7 == 0 ? NAN : i * 0.25;
    for (int commit = 0; commit < 3; commit++) {
        for (int a = 0; a < NARR; a++) {
            char name[32];
            snprintf(name, sizeof name, "c%d_a%d", commit, a);
            afmt_dtype t = (afmt_dtype)(a % 11);
            int ndim = a % 4;
            uint64_t shape[3] = {3 + (uint64_t)a % 5, 7, 2}, chunk[3] = {2, 3, 1};
            const char *dims[3] = {"t", "lat", "lon"};
            unsigned char fill[8];
            if (t == AFMT_FLOAT64) {
                double x = a % 2 ? NAN : -0.0;
                memcpy(fill, &x, 8);
            } else if (t == AFMT_FLOAT32) {
                float x = NAN;
                memcpy(fill, &x, 4);
            } else {
                tconst(t, a % 2, fill);
            }
            EXPECT_OK(f,
                      afmt_define(f, name, t, ndim, ndim ? shape : NULL, a % 3 == 0 ? NULL : chunk,
                                  a % 2 ? NULL : dims, a % 5 == 0 ? NULL : fill));
            float nan32[2] = {NAN, -NAN};
            double nan64[3] = {NAN, -0.0, INFINITY};
            EXPECT_OK(f, afmt_set_attr(f, name, "nan32", AFMT_FLOAT32, 2, nan32));
            EXPECT_OK(f, afmt_set_attr(f, name, "nan64", AFMT_FLOAT64, 3, nan64));
            EXPECT_OK(f, afmt_set_attr(f, name, "empty", AFMT_INT16, 0, NULL));
            if (a % 10 == 0) EXPECT_OK(f, afmt_set_attr(f, name, "big", AFMT_FLOAT64, BIG, big));
            if (a % 6 == 5) EXPECT_OK(f, afmt_delete(f, name));
            if (a % 12 == 11) /* redefine the deleted name */
                EXPECT_OK(f, afmt_define(f, name, AFMT_INT64, 0, NULL, NULL, NULL, NULL));
        }
        int64_t c = commit;
        EXPECT_OK(f, afmt_set_attr(f, NULL, "commit", AFMT_INT64, 1, &c));
        EXPECT_OK(f, afmt_set_attr(f, NULL, "commit", AFMT_INT64, 1, &c)); /* overwrite */
        /* A 1-D array written by every rank, chunks shared between ranks. */
        char dname[32];
        snprintf(dname, sizeof dname, "data%d", commit);
        uint64_t dn = 37, dc = 5, lo = dn * (uint64_t)me() / (uint64_t)tu_size(),
                 hi = dn * (uint64_t)(me() + 1) / (uint64_t)tu_size(), cnt = hi - lo;
        EXPECT_OK(f, afmt_define(f, dname, AFMT_INT64, 1, &dn, &dc, NULL, NULL));
        int64_t vals[37];
        for (uint64_t i = 0; i < cnt; i++) vals[i] = commit * 100 + (int64_t)(lo + i);
        if (cnt) EXPECT_OK(f, afmt_write(f, dname, &lo, &cnt, vals));
        EXPECT_OK(f, afmt_commit(f));
    }
    EXPECT_LAYERS(f, 3);
    EXPECT_OK(f, afmt_close(f));

    afmt_file *r = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
    if (r) {
        int n = -1;
        EXPECT_OK(r, afmt_count(r, &n));
        /* per commit: 60 arrays - 10 deleted + 5 redefined + the data array */
        EXPECT(n == 3 * (NARR - 10 + 5 + 1));
        for (int commit = 0; commit < 3; commit++) {
            char dname[32];
            snprintf(dname, sizeof dname, "data%d", commit);
            int64_t got[37];
            uint64_t st = 0, dn = 37;
            EXPECT_OK(r, afmt_read(r, dname, &st, &dn, got));
            for (int i = 0; i < 37; i++)
                if (got[i] != commit * 100 + i) {
                    rec(__LINE__, "%s[%d] = %lld", dname, i, (long long)got[i]);
                    break;
                }
            double gb[BIG];
            uint64_t nb = BIG;
            char name[32];
            snprintf(name, sizeof name, "c%d_a%d", commit, 10);
            EXPECT_OK(r, afmt_get_attr(r, name, "big", AFMT_FLOAT64, &nb, gb));
            EXPECT(nb == BIG && memcmp(gb, big, sizeof(double) * BIG) == 0);
        }
        EXPECT_OK(r, afmt_close(r));
    }
    free(big);
    rm_path(path);
    done();
}

/* With afmt_opts_set_check_collective(o, 0) nothing is compared: a disagreement that is
 * harmless to the file (a file attribute's value) commits, rank 0's value wins. The same
 * calls with the check on are refused, so this fails if the option does not turn it off. */
static void test_option_off(void **state) {
    (void)state;
    if (!need_ranks()) skip();
    assert_int_equal(afmt_opts_set_check_collective(NULL, 1), AFMT_EINVAL);
    for (int on = 1; on >= 0; on--) {
        afmt_opts *o;
        TU_OK(NULL, afmt_opts_create(&o));
        TU_OK(NULL, afmt_opts_set_check_collective(o, on));
        const char *path = tu_path(NULL, "off");
        afmt_file *f = make_base(path, o, __LINE__);
        if (f) {
            int64_t who = me();
            EXPECT_OK(f, afmt_set_attr(f, NULL, "who", AFMT_INT64, 1, &who));
            int rc = afmt_commit(f);
            if (rc != (on ? AFMT_EINVAL : AFMT_OK))
                rec(__LINE__, "check %s: afmt_commit -> %d (%s)", on ? "on" : "off", rc,
                    afmt_errmsg(f));
            if (on) EXPECT_OK(f, afmt_discard(f));
            EXPECT_OK(f, afmt_close(f));
            check_reopen(path, on ? 1 : 2, 1, 1, __LINE__);
            afmt_file *r = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
            if (r) {
                int64_t got = -1;
                uint64_t n = 1;
                int grc = afmt_get_attr(r, NULL, "who", AFMT_INT64, &n, &got);
                if (on ? grc != AFMT_ENOTFOUND : (grc != AFMT_OK || got != 0))
                    rec(__LINE__, "check %s: \"who\" -> %d, %lld", on ? "on" : "off", grc,
                        (long long)got);
                EXPECT_OK(r, afmt_close(r));
            }
        }
        afmt_opts_free(o);
        rm_path(path);
    }
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_define_on_some_ranks),
        cmocka_unit_test(test_shape),
        cmocka_unit_test(test_chunk),
        cmocka_unit_test(test_dtype),
        cmocka_unit_test(test_fill),
        cmocka_unit_test(test_dims),
        cmocka_unit_test(test_ndim),
        cmocka_unit_test(test_delete_on_some_ranks),
        cmocka_unit_test(test_attr_value),
        cmocka_unit_test(test_attr_string),
        cmocka_unit_test(test_attr_long),
        cmocka_unit_test(test_attr_count),
        cmocka_unit_test(test_attr_dtype),
        cmocka_unit_test(test_attr_owner),
        cmocka_unit_test(test_attr_on_some_ranks),
        cmocka_unit_test(test_more_calls),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_shuffle_option),
        cmocka_unit_test(test_close_refuses),
        cmocka_unit_test(test_compact_refuses),
        cmocka_unit_test(test_failed_calls_do_not_count),
        cmocka_unit_test(test_many_agreeing_calls),
        cmocka_unit_test(test_option_off),
    };
    return tu_main(argc, argv, "disagree", tests, sizeof tests / sizeof tests[0]);
}
