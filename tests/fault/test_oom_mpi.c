/* test_oom_mpi.c - the same outcome on every rank, whatever fails on ONE rank.
 *
 * Linked like test_oom.c with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup:
 * every allocation of libafmt.a (and of this file) goes through the wrappers below; Open
 * MPI and the codec libraries allocate outside them. Storage steps fail through the
 * storage fault wrapper (storage.h, afmt__storage_set_fault).
 *
 * For each scenario (create, open, define, commit without and with shared chunks, compact,
 * compact keeping the newest layer, rollback, close), each victim rank r and each n = 1, 2, ...
 * until the call completes without reaching it:
 *  - allocation cases: the n-th allocation of rank r during the call fails (ENOMEM);
 *  - storage cases: the n-th call of one storage operation (read, write, sync, size,
 *    truncate, the directory sync after a rename) on rank r fails (EIO).
 * Only rank r fails. Each case must end:
 *  - within a few seconds (alarm(): a hang kills the job and fails the test);
 *  - with the same code on every rank (MPI_MIN == MPI_MAX of the codes), AFMT_OK or the
 *    injected failure's code (ENOMEM / EIO), never another;
 *  - with the file reopening (a second, read-only handle) as exactly the previous commit,
 *    or the new one where the call succeeded or its layer became durable;
 *  - with the handle as it was (or, where a commit, rollback or compaction had already
 *    switched the file, on the new state or stale: then only afmt_close works): the
 *    handle reads what it read before, and the failed call retried on it succeeds and
 *    gives the right data.
 * Leaks are found by the sanitizer build (LeakSanitizer).
 *
 * Files live on the POSIX backend in the scratch directory (/dev/shm: fast, and shared by
 * the ranks, which the memory backend's per-process images are not); the storage cases
 * of create, commit, compaction, rollback and close (and the allocation cases of create
 * and open) run on the MPI-IO backend too, whose open, sync, truncate and close
 * are collective, with the hint afmt_collective_write (data written by write_at_all in
 * rounds). Every allocation and every storage call is failed in turn: no case is skipped or
 * sampled, except in the sanitizer build (ASan makes each case about ten times slower; CI
 * runs it there on 2 ranks, and on 2, 3 and 4 in the release build): there the allocation
 * cases are n = 1..12 and then every 6th n (every storage case of the POSIX pass still
 * runs), and the MPI-IO pass keeps only the storage cases of the shared commit and of
 * compaction; AFMT_OOM_MPI_ALL=1 runs everything there too.
 * `test_oom_mpi SCENARIO [VICTIM [N]]` runs part of it.
 *
 * The data: "a", uint64 [8, 6P] in chunks [4, 6]. Layer 1: rank r writes columns
 * [6r, 6r+6) (two whole chunks of its own). The local layer 2: rank r rewrites rows 0..3
 * of its columns (one whole chunk), defines "b" and sets the file attribute "step" = 2.
 * The shared layer 2: rank r writes rows 1..2 of columns [6r+3, 6r+9): halves of two
 * chunks, each shared with a neighbour, merged over layer 1 by the exchange. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "afmt.h"
#include "api/file.h" /* afmt__opts_set_backend */
#include "storage/storage.h"

#include "oom_wrap.h"

#ifndef AFMT_TEST_SCRATCH
#define AFMT_TEST_SCRATCH "/dev/shm"
#endif

/* ---- reporting ---------------------------------------------------------------------- */

static int g_rank, g_size, g_bad;
static char g_case[256]; /* the running case, for messages and the hang handler */

static void bad(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[rank %d/%d] test_oom_mpi.c:%d: %s: ", g_rank, g_size, line, g_case);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
    va_end(ap);
    g_bad++;
}

#define CHECK_OK(f, call)                                                                          \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != AFMT_OK) bad(__LINE__, "%s -> %d: %s", #call, rc_, afmt_errmsg(f));             \
    } while (0)

/* A case that does not end in time is a hang: say which, and end the job. */
static void on_alarm(int sig) {
    (void)sig;
    char m[400];
    int n =
        snprintf(m, sizeof m, "[rank %d] test_oom_mpi: HANG (no progress in %s)\n", g_rank, g_case);
    if (n > 0) (void)!write(2, m, (size_t)(n < (int)sizeof m ? n : (int)sizeof m - 1));
    _exit(3);
}

#define CASE_SECONDS 20 /* generous: ASan and four ranks on two cores */

static int imin(int v) {
    int r = v;
    MPI_Allreduce(&v, &r, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return r;
}

static int imax(int v) {
    int r = v;
    MPI_Allreduce(&v, &r, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return r;
}

/* ---- the data ----------------------------------------------------------------------- */

#define R  8
#define CW 6 /* columns per rank */
#define CR 4 /* chunk rows */

/* Which content "a" has: a file's, or (_VIEW) what this rank's handle reads while its
 * layer 2 is staged: its own writes over layer 1 (read-your-writes is local). */
enum { BASE = 1, LOCAL = 2, SHARED = 3, LOCAL_VIEW = 4, SHARED_VIEW = 5 };

static uint64_t ncols(void) {
    return CW * (uint64_t)g_size;
}

static uint64_t val(uint64_t i, uint64_t j, uint64_t seed) {
    return seed * 1000003u + (i * ncols() + j) * 7u + 1;
}

/* The value of a[i][j] in a file whose content is `content`. */
static uint64_t expect(int content, uint64_t i, uint64_t j) {
    uint64_t mine = CW * (uint64_t)g_rank;
    if (content == LOCAL && i < CR) return val(i, j, 2);
    if (content == SHARED && i >= 1 && i <= 2 && j >= 3) return val(i, j, 2);
    if (content == LOCAL_VIEW && i < CR && j >= mine && j < mine + CW) return val(i, j, 2);
    if (content == SHARED_VIEW && i >= 1 && i <= 2 && j >= mine + 3 && j < mine + 3 + CW)
        return val(i, j, 2);
    return val(i, j, 1);
}

static int write_box(afmt_file *f, uint64_t r0, uint64_t nr, uint64_t c0, uint64_t nc,
                     uint64_t seed) {
    static uint64_t buf[R * CW * 4 * 2];
    for (uint64_t r = 0; r < nr; r++)
        for (uint64_t c = 0; c < nc; c++) buf[r * nc + c] = val(r0 + r, c0 + c, seed);
    uint64_t st[2] = {r0, c0}, ct[2] = {nr, nc};
    return afmt_write(f, "a", st, ct, buf);
}

/* What a handle or file must show. layers 0: not checked. */
typedef struct {
    int content;
    int has_b;
    int step; /* the file attribute "step", 0: absent */
    uint64_t layers;
} state;

static const state ST_BASE = {BASE, 0, 0, 1};
static const state ST_LOCAL = {LOCAL, 1, 2, 2};
static const state ST_SHARED = {SHARED, 1, 2, 2};

/* Mismatches of f against s (reported with `what` when report is set). */
static int check_state(afmt_file *f, const state *s, int report, const char *what, int line) {
    int n = 0;
    static uint64_t buf[R * CW * 4];
    uint64_t st[2] = {0, 0}, ct[2] = {R, ncols()}, layers = 0;
    int rc = afmt_read(f, "a", st, ct, buf);
    if (rc != AFMT_OK) {
        if (report) bad(line, "%s: afmt_read(a) -> %d: %s", what, rc, afmt_errmsg(f));
        return 1;
    }
    uint64_t wrong = 0, first = 0;
    for (uint64_t i = 0; i < R; i++)
        for (uint64_t j = 0; j < ncols(); j++)
            if (buf[i * ncols() + j] != expect(s->content, i, j) && wrong++ == 0)
                first = i * ncols() + j;
    if (wrong) {
        n++;
        if (report)
            bad(line, "%s: %llu elements of a differ from content %d, first at %llu", what,
                (unsigned long long)wrong, s->content, (unsigned long long)first);
    }
    afmt_info info;
    rc = afmt_inquire(f, "b", &info);
    if ((rc == AFMT_OK) != s->has_b) {
        n++;
        if (report) bad(line, "%s: array b: %d, want %s", what, rc, s->has_b ? "it" : "none");
    }
    int64_t step = 0;
    uint64_t cnt = 1;
    rc = afmt_get_attr(f, NULL, "step", AFMT_INT64, &cnt, &step);
    if (s->step ? rc != AFMT_OK || step != s->step : rc != AFMT_ENOTFOUND) {
        n++;
        if (report)
            bad(line, "%s: attribute step -> %d (%lld), want %d", what, rc, (long long)step,
                s->step);
    }
    if (s->layers && (afmt_layers(f, &layers) != AFMT_OK || layers != s->layers)) {
        n++;
        if (report)
            bad(line, "%s: %llu layers, want %llu", what, (unsigned long long)layers,
                (unsigned long long)s->layers);
    }
    return n;
}

/* ---- options, files ------------------------------------------------------------------ */

static int g_mpiio; /* the cases' files on the MPI-IO backend (else POSIX) */

static afmt_opts *opts(void) {
    afmt_opts *o = NULL;
    afmt_opts_create(&o);
    if (!g_mpiio) afmt__opts_set_backend(o, "posix");
    if (g_mpiio) {
        /* Collective data writes: write_at_all in rounds agreed by an Allreduce each. */
        MPI_Info info;
        MPI_Info_create(&info);
        MPI_Info_set(info, "afmt_collective_write", "true");
        afmt_opts_set_mpi_info(o, info);
        MPI_Info_free(&info);
    }
    afmt_opts_set_codec(o, AFMT_CODEC_LZ4, 0);
    afmt_opts_set_block_size(o, 1024);
    afmt_opts_set_spill_dir(o, AFMT_TEST_SCRATCH);
    return o;
}

static char g_path[512];
static afmt_opts *g_o;

/* COLLECTIVE. Removes the case's file, its lock and a leftover of compaction. */
static void remove_files(void) {
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) {
        char p[600];
        unlink(g_path);
        snprintf(p, sizeof p, "%s.lock", g_path);
        unlink(p);
        snprintf(p, sizeof p, "%s.compact", g_path);
        unlink(p);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* COLLECTIVE. The file of layer 1 (and with `local`, the committed local layer 2). */
static afmt_file *make_file(int local, int keep_open) {
    afmt_file *f = NULL;
    int rc = afmt_create(MPI_COMM_WORLD, g_path, AFMT_TRUNC, g_o, &f);
    if (rc != AFMT_OK) {
        bad(__LINE__, "setup: afmt_create -> %d: %s", rc, afmt_errmsg(NULL));
        return NULL;
    }
    uint64_t shape[2] = {R, ncols()}, chunk[2] = {CR, CW};
    CHECK_OK(f, afmt_define(f, "a", AFMT_UINT64, 2, shape, chunk, NULL, NULL));
    CHECK_OK(f, write_box(f, 0, R, CW * (uint64_t)g_rank, CW, 1));
    CHECK_OK(f, afmt_commit(f));
    if (local) {
        CHECK_OK(f, write_box(f, 0, CR, CW * (uint64_t)g_rank, CW, 2));
        uint64_t bshape[1] = {4};
        CHECK_OK(f, afmt_define(f, "b", AFMT_INT32, 1, bshape, NULL, NULL, NULL));
        int64_t step = 2;
        CHECK_OK(f, afmt_set_attr(f, NULL, "step", AFMT_INT64, 1, &step));
        CHECK_OK(f, afmt_commit(f));
    }
    if (!keep_open) {
        CHECK_OK(NULL, afmt_close(f));
        f = NULL;
    }
    return f;
}

/* Stages the local layer 2 (whole chunks, a define, an attribute). */
static void stage_local(afmt_file *f) {
    CHECK_OK(f, write_box(f, 0, CR, CW * (uint64_t)g_rank, CW, 2));
    uint64_t bshape[1] = {4};
    CHECK_OK(f, afmt_define(f, "b", AFMT_INT32, 1, bshape, NULL, NULL, NULL));
    int64_t step = 2;
    CHECK_OK(f, afmt_set_attr(f, NULL, "step", AFMT_INT64, 1, &step));
}

/* Stages the shared layer 2: halves of two chunks, each shared with a neighbour. */
static void stage_shared(afmt_file *f) {
    uint64_t c0 = CW * (uint64_t)g_rank + 3, nc = CW;
    if (c0 + nc > ncols()) nc = ncols() - c0;
    CHECK_OK(f, write_box(f, 1, 2, c0, nc, 2));
    uint64_t bshape[1] = {4};
    CHECK_OK(f, afmt_define(f, "b", AFMT_INT32, 1, bshape, NULL, NULL, NULL));
    int64_t step = 2;
    CHECK_OK(f, afmt_set_attr(f, NULL, "step", AFMT_INT64, 1, &step));
}

/* COLLECTIVE. The file, opened afresh read-only, reads as s (or, with alt, as alt);
 * returns 1 for s, 2 for alt, 0 for neither (reported), the same on every rank. */
static int check_file(const state *s, const state *alt, const char *what, int line) {
    afmt_file *g = NULL;
    int rc = afmt_open(MPI_COMM_WORLD, g_path, AFMT_RDONLY, g_o, &g);
    if (imin(rc) != imax(rc)) bad(line, "%s: reopening: codes differ between ranks", what);
    if (rc != AFMT_OK) {
        bad(line, "%s: reopening -> %d: %s", what, rc, afmt_errmsg(NULL));
        return 0;
    }
    int seen = check_state(g, s, !alt, what, line) == 0 ? 1 : 0;
    if (!seen && alt) seen = check_state(g, alt, 0, what, line) == 0 ? 2 : 0;
    if (!seen && alt) bad(line, "%s: the file reads neither as the old nor as the new state", what);
    CHECK_OK(NULL, afmt_close(g));
    if (imin(seen) != imax(seen)) bad(line, "%s: the ranks see different files", what);
    return imin(seen);
}

/* ---- scenarios ---------------------------------------------------------------------- */

typedef struct {
    afmt_file *f; /* the handle the call works on, or makes */
} ctx;

typedef struct scenario scenario;
struct scenario {
    const char *id;
    int (*setup)(ctx *); /* COLLECTIVE, unarmed */
    int (*op)(ctx *);    /* the call that fails on one rank */
    /* After the call (rc agreed): checks the handle and the file, retries. COLLECTIVE. */
    void (*after)(ctx *, int rc, int injected);
};

static int setup_none(ctx *c) {
    (void)c;
    return AFMT_OK;
}

static int setup_closed(ctx *c) {
    (void)c;
    make_file(0, 0);
    return AFMT_OK;
}

/* A handle opened afresh on layer 1: its pending lists are empty (a define allocates). */
static int setup_open(ctx *c) {
    make_file(0, 0);
    int rc = afmt_open(MPI_COMM_WORLD, g_path, AFMT_RDWR, g_o, &c->f);
    if (rc != AFMT_OK) bad(__LINE__, "setup: afmt_open -> %d: %s", rc, afmt_errmsg(NULL));
    return rc;
}

static int setup_local(ctx *c) {
    c->f = make_file(0, 1);
    if (c->f) stage_local(c->f);
    return c->f ? AFMT_OK : AFMT_EIO;
}

static int setup_shared(ctx *c) {
    c->f = make_file(0, 1);
    if (c->f) stage_shared(c->f);
    return c->f ? AFMT_OK : AFMT_EIO;
}

static int setup_two_layers(ctx *c) {
    c->f = make_file(1, 1);
    return c->f ? AFMT_OK : AFMT_EIO;
}

static int op_create(ctx *c) {
    return afmt_create(MPI_COMM_WORLD, g_path, AFMT_TRUNC, g_o, &c->f);
}

static int op_open(ctx *c) {
    return afmt_open(MPI_COMM_WORLD, g_path, AFMT_RDWR, g_o, &c->f);
}

static int op_define(ctx *c) {
    uint64_t bshape[1] = {4};
    return afmt_define(c->f, "b", AFMT_INT32, 1, bshape, NULL, NULL, NULL);
}

static int op_commit(ctx *c) {
    return afmt_commit(c->f);
}

static int op_compact(ctx *c) {
    return afmt_compact(c->f);
}

static int op_compact_keep(ctx *c) {
    return afmt_compact_keep(c->f, 1);
}

static int op_rollback(ctx *c) {
    uint64_t id = 0;
    if (afmt_layer_id(c->f, 0, &id, NULL) != AFMT_OK) return AFMT_EINVAL;
    return afmt_rollback(c->f, id);
}

static int op_close(ctx *c) {
    afmt_file *f = c->f;
    c->f = NULL; /* freed whatever the outcome */
    return afmt_close(f);
}

/* The handle after a failure: 1 if it is stale (every call but close says AFMT_ESTATE). */
static int is_stale(afmt_file *f) {
    uint64_t n = 0;
    int rc = afmt_layers(f, &n);
    if (imin(rc) != imax(rc)) bad(__LINE__, "afmt_layers on the handle: codes differ");
    return rc == AFMT_ESTATE;
}

static void after_create(ctx *c, int rc, int injected) {
    (void)injected;
    int have = c->f != NULL;
    if (imin(have) != imax(have)) bad(__LINE__, "a handle on some ranks only");
    if (rc != AFMT_OK) {
        if (have) bad(__LINE__, "afmt_create failed but returned a handle");
        /* The same call again, without a failure. */
        rc = op_create(c);
        if (rc != AFMT_OK) {
            bad(__LINE__, "afmt_create retried -> %d: %s", rc, afmt_errmsg(NULL));
            return;
        }
    }
    afmt_file *f = c->f;
    uint64_t shape[2] = {R, ncols()}, chunk[2] = {CR, CW};
    CHECK_OK(f, afmt_define(f, "a", AFMT_UINT64, 2, shape, chunk, NULL, NULL));
    CHECK_OK(f, write_box(f, 0, R, CW * (uint64_t)g_rank, CW, 1));
    CHECK_OK(f, afmt_commit(f));
    check_state(f, &ST_BASE, 1, "the created handle", __LINE__);
    check_file(&ST_BASE, NULL, "the created file", __LINE__);
}

static void after_open(ctx *c, int rc, int injected) {
    (void)injected;
    int have = c->f != NULL;
    if (imin(have) != imax(have)) bad(__LINE__, "a handle on some ranks only");
    if (rc != AFMT_OK) {
        if (have) bad(__LINE__, "afmt_open failed but returned a handle");
        check_file(&ST_BASE, NULL, "after a failed open", __LINE__);
        rc = op_open(c); /* the lock must have been released */
        if (rc != AFMT_OK) {
            bad(__LINE__, "afmt_open retried -> %d: %s", rc, afmt_errmsg(NULL));
            return;
        }
    }
    check_state(c->f, &ST_BASE, 1, "the opened handle", __LINE__);
    stage_local(c->f);
    CHECK_OK(c->f, afmt_commit(c->f));
    check_file(&ST_LOCAL, NULL, "a commit through the opened handle", __LINE__);
}

static void after_define(ctx *c, int rc, int injected) {
    (void)injected;
    afmt_info info;
    if (rc != AFMT_OK) {
        /* As it was: no "b" on any rank, and the define works. */
        int has = afmt_inquire(c->f, "b", &info) == AFMT_OK;
        if (imax(has)) bad(__LINE__, "a failed define left array b on some rank");
        rc = op_define(c);
        if (imin(rc) != imax(rc)) bad(__LINE__, "the retried define: codes differ");
        if (rc != AFMT_OK) bad(__LINE__, "afmt_define retried -> %d: %s", rc, afmt_errmsg(c->f));
    }
    CHECK_OK(c->f, write_box(c->f, 0, CR, CW * (uint64_t)g_rank, CW, 2));
    int64_t step = 2;
    CHECK_OK(c->f, afmt_set_attr(c->f, NULL, "step", AFMT_INT64, 1, &step));
    CHECK_OK(c->f, afmt_commit(c->f));
    check_file(&ST_LOCAL, NULL, "after define and commit", __LINE__);
}

/* A commit (or a close) that failed: the file is the old state, or the new one where the
 * layer became durable; the handle matches it, or is stale. Retrying gives the new. */
static void after_commit_of(ctx *c, int rc, const state *want) {
    if (rc == AFMT_OK) {
        check_state(c->f, want, 1, "the committed handle", __LINE__);
        check_file(want, NULL, "the committed file", __LINE__);
        return;
    }
    int seen = check_file(&ST_BASE, want, "after a failed commit", __LINE__);
    if (is_stale(c->f)) {
        /* The layer is durable, the handle could not load it. */
        if (seen != 2) bad(__LINE__, "a stale handle, but the file is not the new layer");
        return;
    }
    /* Durable with a late failure: the handle adopted the layer. Not durable: the staged
     * changes are kept, and the handle reads them (its own writes only). */
    state now = *want;
    if (seen != 2) {
        now.content = want->content == LOCAL ? LOCAL_VIEW : SHARED_VIEW;
        now.layers = 1;
    }
    check_state(c->f, &now, 1, "the handle after a failed commit", __LINE__);
    rc = afmt_commit(c->f);
    if (imin(rc) != imax(rc)) bad(__LINE__, "the retried commit: codes differ");
    if (rc != AFMT_OK) bad(__LINE__, "afmt_commit retried -> %d: %s", rc, afmt_errmsg(c->f));
    check_state(c->f, want, 1, "the handle after the retried commit", __LINE__);
    check_file(want, NULL, "after the retried commit", __LINE__);
}

static void after_commit_local(ctx *c, int rc, int injected) {
    (void)injected;
    after_commit_of(c, rc, &ST_LOCAL);
}

static void after_commit_shared(ctx *c, int rc, int injected) {
    (void)injected;
    after_commit_of(c, rc, &ST_SHARED);
}

static void after_close(ctx *c, int rc, int injected) {
    (void)c;
    (void)injected;
    if (rc == AFMT_OK)
        check_file(&ST_LOCAL, NULL, "after a close", __LINE__);
    else
        check_file(&ST_BASE, &ST_LOCAL, "after a failed close", __LINE__);
    /* The lock is gone: a writer can open the file. */
    afmt_file *f = NULL;
    rc = afmt_open(MPI_COMM_WORLD, g_path, AFMT_RDWR, g_o, &f);
    if (rc != AFMT_OK) bad(__LINE__, "afmt_open after close -> %d: %s", rc, afmt_errmsg(NULL));
    if (f) CHECK_OK(NULL, afmt_close(f));
}

static void after_compact(ctx *c, int rc, int injected) {
    (void)injected;
    state one = ST_LOCAL, two = ST_LOCAL;
    one.layers = 1;
    if (rc == AFMT_OK) {
        check_state(c->f, &one, 1, "the compacted handle", __LINE__);
        check_file(&one, NULL, "the compacted file", __LINE__);
        return;
    }
    /* The data is the same either way; the layer count says whether the rename came. */
    int seen = check_file(&two, &one, "after a failed compaction", __LINE__);
    if (is_stale(c->f)) {
        if (seen != 2) bad(__LINE__, "a stale handle, but the file is not compacted");
        return;
    }
    check_state(c->f, seen == 2 ? &one : &two, 1, "the handle after a failed compaction", __LINE__);
    rc = afmt_compact(c->f);
    if (imin(rc) != imax(rc)) bad(__LINE__, "the retried compaction: codes differ");
    if (rc != AFMT_OK) bad(__LINE__, "afmt_compact retried -> %d: %s", rc, afmt_errmsg(c->f));
    check_state(c->f, &one, 1, "the handle after the retried compaction", __LINE__);
    check_file(&one, NULL, "after the retried compaction", __LINE__);
    /* And the handle goes on: a commit after the compaction. */
    CHECK_OK(c->f, write_box(c->f, CR, R - CR, CW * (uint64_t)g_rank, CW, 2));
    CHECK_OK(c->f, afmt_commit(c->f));
}

/* Keep 1 of 2 layers: the file reads the same and has 2 layers before and after (the
 * BASE under layer 1's id, layer 2 as it was), so only the data and the handle tell. */
static void after_compact_keep(ctx *c, int rc, int injected) {
    (void)injected;
    state two = ST_LOCAL;
    if (rc == AFMT_OK) {
        check_state(c->f, &two, 1, "the handle after afmt_compact_keep", __LINE__);
        check_file(&two, NULL, "the file after afmt_compact_keep", __LINE__);
        return;
    }
    check_file(&two, NULL, "after a failed afmt_compact_keep", __LINE__);
    if (is_stale(c->f)) return;
    check_state(c->f, &two, 1, "the handle after a failed afmt_compact_keep", __LINE__);
    rc = op_compact_keep(c);
    if (imin(rc) != imax(rc)) bad(__LINE__, "the retried afmt_compact_keep: codes differ");
    if (rc != AFMT_OK) bad(__LINE__, "afmt_compact_keep retried -> %d: %s", rc, afmt_errmsg(c->f));
    check_state(c->f, &two, 1, "the handle after the retried afmt_compact_keep", __LINE__);
    check_file(&two, NULL, "after the retried afmt_compact_keep", __LINE__);
    CHECK_OK(c->f, write_box(c->f, CR, R - CR, CW * (uint64_t)g_rank, CW, 2));
    CHECK_OK(c->f, afmt_commit(c->f));
}

static void after_rollback(ctx *c, int rc, int injected) {
    (void)injected;
    state back = ST_BASE;
    if (rc == AFMT_OK) {
        check_state(c->f, &back, 1, "the rolled back handle", __LINE__);
        check_file(&back, NULL, "the rolled back file", __LINE__);
    } else {
        int seen = check_file(&ST_LOCAL, &back, "after a failed rollback", __LINE__);
        if (is_stale(c->f)) {
            if (seen != 2) bad(__LINE__, "a stale handle, but the file is not rolled back");
            return;
        }
        check_state(c->f, seen == 2 ? &back : &ST_LOCAL, 1, "the handle after a failed rollback",
                    __LINE__);
        rc = op_rollback(c);
        if (imin(rc) != imax(rc)) bad(__LINE__, "the retried rollback: codes differ");
        if (rc != AFMT_OK) bad(__LINE__, "afmt_rollback retried -> %d: %s", rc, afmt_errmsg(c->f));
        check_state(c->f, &back, 1, "the handle after the retried rollback", __LINE__);
        check_file(&back, NULL, "after the retried rollback", __LINE__);
    }
    /* The next commit chains onto layer 1. */
    CHECK_OK(c->f, write_box(c->f, 0, CR, CW * (uint64_t)g_rank, CW, 2));
    CHECK_OK(c->f, afmt_commit(c->f));
    state next = {LOCAL, 0, 0, 2};
    check_file(&next, NULL, "a commit after the rollback", __LINE__);
}

static const scenario scenarios[] = {
    {"create", setup_none, op_create, after_create},
    {"open", setup_closed, op_open, after_open},
    {"define", setup_open, op_define, after_define},
    {"commit", setup_local, op_commit, after_commit_local},
    {"commit_shared", setup_shared, op_commit, after_commit_shared},
    {"compact", setup_two_layers, op_compact, after_compact},
    {"compact_keep", setup_two_layers, op_compact_keep, after_compact_keep},
    {"rollback", setup_two_layers, op_rollback, after_rollback},
    {"close", setup_local, op_close, after_close},
};
#define NSCEN (sizeof scenarios / sizeof scenarios[0])

/* ---- running cases ------------------------------------------------------------------- */

typedef enum { KIND_ALLOC, KIND_STORAGE } fault_kind;

static const char *const op_names[] = {"read", "write",    "write_all", "sync",
                                       "size", "truncate", "dirsync"};

/* One case: the n-th allocation (or call of storage op sop) of rank victim fails during the
 * scenario's call. Returns 1 if the failure was injected (the call reached it). */
static int run_case(const scenario *s, fault_kind kind, afmt_fault_op sop, int victim,
                    unsigned long n) {
    snprintf(g_case, sizeof g_case, "%s on %d ranks (%s): %s %lu of rank %d", s->id, g_size,
             g_mpiio ? "MPI-IO" : "POSIX", kind == KIND_ALLOC ? "allocation" : op_names[sop], n,
             victim);
    alarm(CASE_SECONDS);
    ctx c = {NULL};
    /* Storages opened from now on are wrapped (count only until armed). */
    afmt_storage_fault count = {sop, 0, 0, AFMT_FAULT_FAIL, -1};
    if (kind == KIND_STORAGE) afmt__storage_set_fault(&count);
    int rc = s->setup(&c);
    if (imin(rc) != AFMT_OK) {
        bad(__LINE__, "setup failed");
        afmt__storage_set_fault(NULL);
        if (c.f) afmt_close(c.f);
        remove_files();
        alarm(0);
        return 0;
    }
    uint64_t inj0 = afmt__storage_fault_injected();
    if (kind == KIND_STORAGE) {
        afmt_storage_fault spec = {sop, n, EIO, AFMT_FAULT_FAIL, victim};
        afmt__storage_set_fault(&spec);
    } else if (g_rank == victim) {
        oom_arm(n, 0);
    }
    rc = s->op(&c);
    oom_disarm();
    int hit = kind == KIND_ALLOC ? oom_injected() > 0 : afmt__storage_fault_injected() > inj0;
    if (kind == KIND_STORAGE) afmt__storage_set_fault(NULL);
    int injected = imax(hit);
    if (imin(rc) != imax(rc)) {
        /* The ranks took different branches: nothing after this would line up. */
        bad(__LINE__, "the ranks returned different codes (%d here: %s)", rc,
            rc ? (c.f ? afmt_errmsg(c.f) : afmt_errmsg(NULL)) : "");
        MPI_Barrier(MPI_COMM_WORLD);
        MPI_Abort(MPI_COMM_WORLD, 4);
    }
    int want = kind == KIND_ALLOC ? AFMT_ENOMEM : AFMT_EIO;
    if (!injected && rc != AFMT_OK)
        bad(__LINE__, "-> %d without a failure: %s", rc, afmt_errmsg(c.f));
    if (injected && rc != AFMT_OK && rc != want)
        bad(__LINE__, "-> %d (%s), want AFMT_OK or %s: %s", rc, afmt_strerror(rc),
            afmt_strerror(want), c.f ? afmt_errmsg(c.f) : afmt_errmsg(NULL));
    if (rc != AFMT_OK && !afmt_errmsg(c.f)[0]) bad(__LINE__, "-> %d without a message", rc);
    if (getenv("AFMT_OOM_TRACE") && g_rank == 0)
        fprintf(stderr, "%s: -> %d %s\n", g_case, rc, rc ? afmt_errmsg(c.f) : "");
    s->after(&c, rc, injected);
    if (c.f) {
        int crc = afmt_close(c.f);
        if (imin(crc) != imax(crc)) bad(__LINE__, "afmt_close: codes differ");
        if (crc != AFMT_OK) bad(__LINE__, "afmt_close -> %d: %s", crc, afmt_errmsg(NULL));
    }
    remove_files();
    alarm(0);
    return injected;
}

typedef struct {
    unsigned long cases, injected;
} tally;

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* The sanitizer build's stride over the allocation cases (see the top). */
static unsigned long g_stride = 1;
#define FIRST_ALL 12

/* Every n for one victim until the call completes without reaching the n-th. */
static void run_victim(const scenario *s, fault_kind kind, afmt_fault_op sop, int victim,
                       unsigned long only, tally *t) {
    for (unsigned long n = only ? only : 1;;
         n += kind == KIND_ALLOC && n >= FIRST_ALL && !only ? g_stride : 1) {
        int inj = run_case(s, kind, sop, victim, n);
        t->cases++;
        t->injected += (unsigned long)inj;
        if (!inj || only) break;
        if (n > 20000) {
            bad(__LINE__, "more than 20000 failures in one call?");
            break;
        }
    }
}

static const afmt_fault_op storage_ops[] = {
    AFMT_FAULT_READ, AFMT_FAULT_WRITE,    AFMT_FAULT_WRITE_ALL, AFMT_FAULT_SYNC,
    AFMT_FAULT_SIZE, AFMT_FAULT_TRUNCATE, AFMT_FAULT_DIRSYNC};

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    signal(SIGALRM, on_alarm);
    const char *all_env = getenv("AFMT_OOM_MPI_ALL");
    int everything = !SANITIZED || (all_env && *all_env && strcmp(all_env, "0") != 0);
    if (!everything) g_stride = 6;
    const char *only_s = argc > 1 ? argv[1] : NULL;
    int only_v = argc > 2 ? atoi(argv[2]) : -1;
    unsigned long only_n = argc > 3 ? strtoul(argv[3], NULL, 10) : 0;
    long pid = (long)getpid();
    MPI_Bcast(&pid, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    snprintf(g_path, sizeof g_path, "%s/afmt-oommpi-%ld.afmt", AFMT_TEST_SCRATCH, pid);
    double t0 = MPI_Wtime();
    int ran = 0;
    unsigned long all_cases = 0, all_injected = 0;
    for (int backend = 0; backend < 2; backend++) {
        g_mpiio = backend;
        g_o = opts();
        for (size_t i = 0; i < NSCEN; i++) {
            const scenario *s = &scenarios[i];
            if (only_s && strcmp(only_s, s->id) != 0) continue;
            ran = 1;
            tally ta = {0, 0}, ts = {0, 0};
            double ts0 = MPI_Wtime();
            /* Allocations: POSIX, and MPI-IO for create and open (its open allocates;
             * compaction opens the same way); otherwise the backend does not change what
             * afmt allocates. */
            int alloc_mpiio = everything && (!strcmp(s->id, "create") || !strcmp(s->id, "open"));
            for (int v = 0; (!backend || alloc_mpiio) && v < g_size; v++)
                if (only_v < 0 || only_v == v) run_victim(s, KIND_ALLOC, 0, v, only_n, &ta);
            /* Storage steps: every scenario on POSIX; on MPI-IO those with collective
             * storage calls in the failing call (all but open and define). */
            int mpiio_too =
                !strcmp(s->id, "commit_shared") || !strcmp(s->id, "compact") ||
                (everything &&
                 (!strcmp(s->id, "commit") || !strcmp(s->id, "close") || !strcmp(s->id, "create") ||
                  !strcmp(s->id, "rollback") || !strcmp(s->id, "compact_keep")));
            for (size_t k = 0;
                 (!backend || mpiio_too) && k < sizeof storage_ops / sizeof *storage_ops; k++)
                for (int v = 0; v < g_size; v++)
                    if (only_v < 0 || only_v == v)
                        run_victim(s, KIND_STORAGE, storage_ops[k], v, only_n, &ts);
            all_cases += ta.cases + ts.cases;
            all_injected += ta.injected + ts.injected;
            if (g_rank == 0 && (ta.cases || ts.cases)) {
                printf("test_oom_mpi: %d ranks, %-6s %-14s %5lu allocation cases (%lu failed), "
                       "%4lu storage cases (%lu failed), %.1f s\n",
                       g_size, backend ? "MPI-IO" : "POSIX", s->id, ta.cases, ta.injected, ts.cases,
                       ts.injected, MPI_Wtime() - ts0);
                fflush(stdout);
            }
        }
        afmt_opts_free(g_o);
        g_o = NULL;
    }
    snprintf(g_case, sizeof g_case, "the end");
    if (!ran) bad(__LINE__, "no scenario \"%s\"", only_s ? only_s : "");
    int total_bad = 0;
    MPI_Allreduce(&g_bad, &total_bad, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (g_rank == 0)
        printf("test_oom_mpi: %d ranks: %lu cases, %lu failures injected%s: %s (%d failed "
               "checks), %.1f s\n",
               g_size, all_cases, all_injected,
               everything ? "" : " (sanitizer build: allocations 1..12, then every 6th)",
               total_bad ? "FAILED" : "passed", total_bad, MPI_Wtime() - t0);
    MPI_Finalize();
    return total_bad ? 1 : 0;
}
