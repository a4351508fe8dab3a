/* fault_disk.c - real resource exhaustion, driven by run_disk.sh on a small tmpfs that it
 * mounts (as root) for the run.
 *
 *   fault_disk fulldisk DIR          DIR is a small file system (8 MiB): the file lives there
 *   fault_disk spillfull SPILL DIR   SPILL is a 1 MiB file system, the last rank's spill
 *                                    directory; the file and the other ranks' spill
 *                                    directories live in DIR
 *
 * fulldisk: commits layers of incompressible data until the file system is full. The
 * failing commit must return AFMT_EIO on every rank, naming the step and ENOSPC; a fresh
 * handle must read every earlier layer exactly (afmt_open_layer for each); and after
 * afmt_discard a small commit succeeds: its data is written over the failed commit's
 * orphaned tail, whose pages the file already owns, so it needs no new space.
 *
 * spillfull: a memory budget of 0 spills every block. The last rank's spill directory
 * fills up: its afmt_write fails with AFMT_EIO naming ENOSPC and the spill file; the
 * commit then returns AFMT_EIO on every rank naming ENOSPC, and the file is unchanged.
 * After afmt_discard (which truncates the spill file) a smaller write and commit work.
 *
 * Prints one line per finding; exit status 0 = all checks passed on every rank. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "afmt.h"

static int g_rank, g_size, g_bad;

static void bad(int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[rank %d/%d] fault_disk.c:%d: ", g_rank, g_size, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    g_bad++;
}
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) bad(__LINE__, "expected %s", #c);                                                \
    } while (0)
#define CHECK_OK(f, call)                                                                          \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != AFMT_OK) bad(__LINE__, "%s -> %d: %s", #call, rc_, afmt_errmsg(f));             \
    } while (0)

static int same_everywhere(int rc) {
    int lo = 0, hi = 0;
    MPI_Allreduce(&rc, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&rc, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return lo == hi;
}

static int all_true(int v) {
    int all = 0;
    MPI_Allreduce(&v, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return all;
}

static void say(const char *fmt, ...) {
    if (g_rank != 0) return;
    va_list ap;
    va_start(ap, fmt);
    printf("fault_disk: ");
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    va_end(ap);
}

/* Incompressible, position-unique values. */
static uint64_t val(uint64_t i, uint64_t seed) {
    uint64_t x = i * 0x9E3779B97F4A7C15ull + seed * 0xBF58476D1CE4E5B9ull + 1;
    x ^= x >> 31;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 29);
}

static int write_seeded(afmt_file *f, const char *name, uint64_t s, uint64_t n, uint64_t seed) {
    uint64_t *buf = malloc(sizeof(uint64_t) * n);
    if (!buf) return AFMT_ENOMEM;
    for (uint64_t i = 0; i < n; i++) buf[i] = val(s + i, seed);
    uint64_t st[1] = {s}, ct[1] = {n};
    int rc = afmt_write(f, name, st, ct, buf);
    free(buf);
    return rc;
}

/* Elements of [s, s+n) that differ from seed (seed 0: the fill value 0). */
static uint64_t count_wrong(afmt_file *f, const char *name, uint64_t s, uint64_t n, uint64_t seed) {
    uint64_t *buf = malloc(sizeof(uint64_t) * n), wrong = 0;
    uint64_t st[1] = {s}, ct[1] = {n};
    int rc = afmt_read(f, name, st, ct, buf);
    if (rc != AFMT_OK) {
        bad(__LINE__, "afmt_read(%s, %llu, +%llu) -> %d: %s", name, (unsigned long long)s,
            (unsigned long long)n, rc, afmt_errmsg(f));
        free(buf);
        return n;
    }
    for (uint64_t i = 0; i < n; i++) wrong += buf[i] != (seed ? val(s + i, seed) : 0);
    free(buf);
    return wrong;
}

/* ---- fulldisk ------------------------------------------------------------------------ */

#define PERC   ((uint64_t)32768) /* elements per rank and commit: 256 KiB */
#define CHUNK  ((uint64_t)8192)  /* 64 KiB chunks */
#define MAXC   ((uint64_t)256)   /* commits the array has room for */
#define SMALLN ((uint64_t)CHUNK) /* the small commit after the failure: one chunk */

/* Region of commit k on rank r of "x". */
static uint64_t region(uint64_t k, int r) {
    return (k * (uint64_t)g_size + (uint64_t)r) * PERC;
}

/* Checks a handle that sees commits 0..nk-1 (commit k wrote seed k + 1 into its regions)
 * and, when small > 0, the small commit (rank 0, seed 1000, at region(nk - 1, 0) .. ). */
static void check_commits(afmt_file *g, uint64_t nk, int with_small, const char *what) {
    uint64_t layers = 0;
    CHECK_OK(g, afmt_layers(g, &layers));
    if (layers != nk + 1) /* + the layer of the define */
        bad(__LINE__, "%s: %llu layers, want %llu", what, (unsigned long long)layers,
            (unsigned long long)(nk + 1));
    for (uint64_t k = 0; k < nk; k++) {
        int small = with_small && k + 1 == nk;
        for (int r = 0; r < g_size; r++) {
            uint64_t s = region(k, r), n = PERC, seed = small ? 1000 : k + 1;
            if (small) n = r == 0 ? SMALLN : 0;
            uint64_t w = n ? count_wrong(g, "x", s, n, seed) : 0;
            if (w)
                bad(__LINE__, "%s: commit %llu, rank %d's region: %llu of %llu elements wrong",
                    what, (unsigned long long)k, r, (unsigned long long)w, (unsigned long long)n);
        }
    }
    /* Past the last commit: the fill value. */
    uint64_t past = with_small ? region(nk - 1, 0) + SMALLN : region(nk, 0);
    uint64_t w = count_wrong(g, "x", past, PERC, 0);
    if (w)
        bad(__LINE__, "%s: %llu elements past the last commit are not the fill", what,
            (unsigned long long)w);
}

static int fulldisk(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/full.afmt", dir);
    afmt_opts *o = NULL;
    afmt_opts_create(&o);
    afmt_opts_set_codec(o, AFMT_CODEC_NONE, 0);
    afmt_opts_set_block_size(o, CHUNK * 8);
    afmt_file *f = NULL;
    int rc = afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, o, &f);
    if (!all_true(rc == AFMT_OK)) {
        bad(__LINE__, "afmt_create(%s) -> %d: %s", path, rc, afmt_errmsg(NULL));
        afmt_opts_free(o);
        return 1;
    }
    uint64_t shape[1] = {MAXC * PERC * (uint64_t)g_size}, chunk[1] = {CHUNK};
    CHECK_OK(f, afmt_define(f, "x", AFMT_UINT64, 1, shape, chunk, NULL, NULL));
    CHECK_OK(f, afmt_commit(f));

    /* Commit until the file system is full. */
    uint64_t k = 0;
    for (; k < MAXC; k++) {
        rc = write_seeded(f, "x", region(k, g_rank), PERC, k + 1);
        if (rc != AFMT_OK) bad(__LINE__, "afmt_write -> %d: %s", rc, afmt_errmsg(f));
        rc = afmt_commit(f);
        if (!same_everywhere(rc))
            bad(__LINE__, "commit %llu: codes differ between ranks", (unsigned long long)k);
        if (rc != AFMT_OK) break;
    }
    const char *msg = afmt_errmsg(f);
    say("fulldisk on %d ranks: commit %llu failed: %d (%s): %s", g_size, (unsigned long long)k, rc,
        afmt_strerror(rc), msg);
    if (k == MAXC) bad(__LINE__, "the file system never filled up");
    if (rc != AFMT_EIO) bad(__LINE__, "the failed commit -> %d, want AFMT_EIO: %s", rc, msg);
    if (!strstr(msg, "afmt_commit(")) bad(__LINE__, "message names no commit step: %s", msg);
    if (!strstr(msg, strerror(ENOSPC)) && !strstr(msg, "ENOSPC")) {
        /* KNOWN BUG (storage_mpiio.c): Open MPI's OMPIO reports a write on a full file
         * system as MPI_SUCCESS with a short count (it prints the errno text to stderr
         * itself), ROMIO as MPI_ERR_IO "input/output error": the backend's message then
         * says "short write" or "input/output error" and never names ENOSPC. */
        const char *e = getenv("AFMT_TEST_KNOWN_BUGS");
        int strict = e && *e && strcmp(e, "0") != 0;
        if (strict || (!strstr(msg, "short write") && !strstr(msg, "MPI_ERR_IO")))
            bad(__LINE__, "message does not name ENOSPC: %s", msg);
        else
            say("KNOWN BUG: the message does not name ENOSPC (\"%s\")", strerror(ENOSPC));
    }

    /* Nothing committed is lost: a fresh handle, and each layer on its own. */
    uint64_t nk = k;
    afmt_file *g = NULL;
    rc = afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &g);
    if (all_true(rc == AFMT_OK)) {
        check_commits(g, nk, 0, "reopened after ENOSPC");
        uint64_t ids[MAXC + 1], nl = 0;
        afmt_layers(g, &nl);
        for (uint64_t i = 0; i < nl && i <= MAXC; i++) afmt_layer_id(g, i, &ids[i], NULL);
        CHECK_OK(g, afmt_close(g));
        for (uint64_t i = 1; i < nl && i <= MAXC; i++) {
            afmt_file *h = NULL;
            rc = afmt_open_layer(MPI_COMM_WORLD, path, ids[i], NULL, &h);
            if (!all_true(rc == AFMT_OK)) {
                bad(__LINE__, "afmt_open_layer(%llu) -> %d: %s", (unsigned long long)ids[i], rc,
                    afmt_errmsg(NULL));
                continue;
            }
            char what[64];
            snprintf(what, sizeof what, "layer %llu alone", (unsigned long long)ids[i]);
            check_commits(h, i, 0, what);
            CHECK_OK(h, afmt_close(h));
        }
        say("fulldisk: %llu committed layers read back whole", (unsigned long long)nk);
    } else {
        bad(__LINE__, "afmt_open after ENOSPC -> %d: %s", rc, afmt_errmsg(NULL));
    }

    /* Drop the failed commit; a small one fits over its orphaned tail. */
    CHECK_OK(f, afmt_discard(f));
    if (g_rank == 0) CHECK_OK(f, write_seeded(f, "x", region(nk, 0), SMALLN, 1000));
    rc = afmt_commit(f);
    CHECK(same_everywhere(rc));
    say("fulldisk: a small commit after the failure: %d (%s)%s%s", rc, afmt_strerror(rc),
        rc ? ": " : "", rc ? afmt_errmsg(f) : "");
    if (rc != AFMT_OK) {
        bad(__LINE__, "the small commit after ENOSPC -> %d: %s", rc, afmt_errmsg(f));
        afmt_discard(f);
    } else {
        nk++;
    }
    /* Whatever is durable now reads whole. */
    int small_ok = rc == AFMT_OK;
    afmt_file *h = NULL;
    rc = afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &h);
    if (all_true(rc == AFMT_OK)) {
        check_commits(h, nk, small_ok, "reopened after the small commit");
        CHECK_OK(h, afmt_close(h));
    } else {
        bad(__LINE__, "afmt_open after the small commit -> %d: %s", rc, afmt_errmsg(NULL));
    }
    rc = afmt_close(f);
    CHECK(same_everywhere(rc));
    CHECK(rc == AFMT_OK);
    afmt_opts_free(o);
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) unlink(path);
    return 0;
}

/* ---- spillfull ----------------------------------------------------------------------- */

#define SPER   ((uint64_t)65536) /* elements per rank: 512 KiB */
#define SCHUNK ((uint64_t)8192)

static int spillfull(const char *spill, const char *dir) {
    int victim = g_size - 1;
    char path[4096], mydir[4096];
    snprintf(path, sizeof path, "%s/spillfull.afmt", dir);
    snprintf(mydir, sizeof mydir, "%s/spill-%d", dir, g_rank);
    if (g_rank != victim && mkdir(mydir, 0700) != 0 && errno != EEXIST)
        bad(__LINE__, "mkdir(%s): %s", mydir, strerror(errno));
    afmt_opts *o = NULL;
    afmt_opts_create(&o);
    afmt_opts_set_codec(o, AFMT_CODEC_NONE, 0);
    afmt_opts_set_block_size(o, SCHUNK * 8);
    afmt_opts_set_mem_budget(o, 0);
    afmt_opts_set_spill_dir(o, g_rank == victim ? spill : mydir);
    afmt_file *f = NULL;
    int rc = afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, o, &f);
    if (!all_true(rc == AFMT_OK)) {
        bad(__LINE__, "afmt_create(%s) -> %d: %s", path, rc, afmt_errmsg(NULL));
        afmt_opts_free(o);
        return 1;
    }
    /* 4 MiB per rank in the array; layer 1: each rank's first 512 KiB. */
    uint64_t per = 8 * SPER, shape[1] = {per * (uint64_t)g_size}, chunk[1] = {SCHUNK};
    uint64_t base = (uint64_t)g_rank * per;
    CHECK_OK(f, afmt_define(f, "s", AFMT_UINT64, 1, shape, chunk, NULL, NULL));
    CHECK_OK(f, write_seeded(f, "s", base, SPER, 1));
    rc = afmt_commit(f);
    if (rc != AFMT_OK) bad(__LINE__, "the first commit -> %d: %s", rc, afmt_errmsg(f));

    /* Layer 2 would be 4 MiB per rank: the victim's 1 MiB spill directory fills up. */
    int wrc = AFMT_OK;
    char wmsg[1024] = "";
    for (uint64_t s = 0; s < per && wrc == AFMT_OK; s += SPER) {
        wrc = write_seeded(f, "s", base + s, SPER, 2);
        if (wrc != AFMT_OK) snprintf(wmsg, sizeof wmsg, "%s", afmt_errmsg(f));
    }
    if (g_rank == victim) {
        printf("fault_disk: spillfull on %d ranks: the victim's write: %d (%s): %s\n", g_size, wrc,
               afmt_strerror(wrc), wmsg);
        fflush(stdout);
        if (wrc != AFMT_EIO) bad(__LINE__, "the victim's afmt_write -> %d, want AFMT_EIO", wrc);
        if (!strstr(wmsg, strerror(ENOSPC))) bad(__LINE__, "write message lacks ENOSPC: %s", wmsg);
        if (!strstr(wmsg, spill)) bad(__LINE__, "write message lacks the spill dir: %s", wmsg);
    } else if (wrc != AFMT_OK) {
        bad(__LINE__, "afmt_write -> %d: %s", wrc, wmsg);
    }
    rc = afmt_commit(f);
    const char *msg = afmt_errmsg(f);
    say("spillfull: the commit: %d (%s): %s", rc, afmt_strerror(rc), msg);
    CHECK(same_everywhere(rc));
    if (rc != AFMT_EIO) bad(__LINE__, "the commit -> %d, want AFMT_EIO: %s", rc, msg);
    if (!strstr(msg, strerror(ENOSPC))) bad(__LINE__, "commit message lacks ENOSPC: %s", msg);
    uint64_t layers = 0;
    CHECK_OK(f, afmt_layers(f, &layers));
    CHECK(layers == 1);

    /* The file is unchanged: layer 1 only. */
    afmt_file *g = NULL;
    rc = afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &g);
    if (all_true(rc == AFMT_OK)) {
        CHECK_OK(g, afmt_layers(g, &layers));
        CHECK(layers == 1);
        for (int r = 0; r < g_size; r++) {
            CHECK(count_wrong(g, "s", (uint64_t)r * per, SPER, 1) == 0);
            CHECK(count_wrong(g, "s", (uint64_t)r * per + SPER, per - SPER, 0) == 0);
        }
        CHECK_OK(g, afmt_close(g));
    } else {
        bad(__LINE__, "afmt_open after the failed commit -> %d: %s", rc, afmt_errmsg(NULL));
    }

    /* Discard (frees the spill space) and commit something that fits. */
    CHECK_OK(f, afmt_discard(f));
    CHECK_OK(f, write_seeded(f, "s", base + SPER, SPER, 3));
    rc = afmt_commit(f);
    CHECK(same_everywhere(rc));
    if (rc != AFMT_OK) bad(__LINE__, "the commit after discard -> %d: %s", rc, afmt_errmsg(f));
    rc = afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &g);
    if (all_true(rc == AFMT_OK)) {
        CHECK_OK(g, afmt_layers(g, &layers));
        CHECK(layers == 2);
        for (int r = 0; r < g_size; r++) {
            CHECK(count_wrong(g, "s", (uint64_t)r * per, SPER, 1) == 0);
            CHECK(count_wrong(g, "s", (uint64_t)r * per + SPER, SPER, 3) == 0);
            CHECK(count_wrong(g, "s", (uint64_t)r * per + 2 * SPER, per - 2 * SPER, 0) == 0);
        }
        CHECK_OK(g, afmt_close(g));
    } else {
        bad(__LINE__, "afmt_open after the last commit -> %d: %s", rc, afmt_errmsg(NULL));
    }
    rc = afmt_close(f);
    CHECK(same_everywhere(rc));
    CHECK(rc == AFMT_OK);
    afmt_opts_free(o);
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) unlink(path);
    if (g_rank != victim) rmdir(mydir);
    return 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    int usage = 0;
    if (argc == 3 && !strcmp(argv[1], "fulldisk"))
        fulldisk(argv[2]);
    else if (argc == 4 && !strcmp(argv[1], "spillfull"))
        spillfull(argv[2], argv[3]);
    else
        usage = 1;
    if (usage && g_rank == 0)
        fprintf(stderr, "usage: fault_disk fulldisk DIR | fault_disk spillfull SPILLDIR DIR\n");
    int any = 0, mine = g_bad || usage;
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    say("%s", any ? "FAILED" : "passed");
    MPI_Finalize();
    return any ? 1 : 0;
}
