/* test_faults.c - MPI integration: storage failures injected by the fault wrapper
 * (storage.h, afmt__storage_set_fault) at every step of the commit protocol, in open, in
 * create and in afmt_read, with the failure on ONE rank only.
 *
 * A commit case enumerates the calls of one storage operation that a commit makes on the
 * victim rank (a count-only run first gives their number T), then fails each of them in
 * turn (nth = 1..T) on a fresh file whose first commit is layer 1. Every rank must return
 * the same code (AFMT_EIO), the message must name the protocol step, the errno text and the
 * injected call; a fresh handle must read the file exactly as layer 1; and retrying the
 * commit on the same handle (the staged writes, defines and attributes are kept) must
 * succeed and give layer 2. An EINTR is retried inside the wrapper: the commit succeeds.
 *
 * The steps, as commit.c names them: the exchange's reads of committed chunks (partial
 * chunks merged over older content), "writing data blocks" (1 call per rank, 2 with a
 * spill: the spilled part and the in-memory part; write_at_all with the collective hint),
 * "writing the footer" (rank 0, footer and trailer in one call), "syncing data and footer",
 * "writing the superblock" (rank 0; slot B, or slot A in the cases with a commit before
 * layer 1), "syncing the superblock". A commit writes all of a rank's blocks in one call
 * (two with a spill), so "each block write" is each of those calls.
 *
 * Also here: a memory budget smaller than one block (every block spills at once).
 * Elsewhere: a missing spill directory (test_spill.c), a full spill directory and a full
 * disk (tests/fault, on a tmpfs), allocation failures (tests/fault/test_oom.c).
 *
 * A failure of the LAST step, "syncing the superblock", comes after the new slot was
 * written: the layer is then the newest; the handle adopts it and every rank gets
 * AFMT_EIO saying its durability is unknown; a retry has nothing left to commit
 * (test_sync2_then_retry checks that a later failing commit cannot damage it).
 *
 * Fixed bug kept as a regression: when the exchange's read of a committed chunk failed on
 * a rank that contributed a piece of a shared chunk, that rank kept the piece staged and
 * the retried commit failed with a false overlap. The test fails on it. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/file.h"          /* f->alloc: the budget test */
#include "format/superblock.h" /* the slot offsets */
#include "storage/storage.h"

/* Two uint64 arrays of PER elements per rank in chunks of CH (1 KiB, one block each with
 * 1 KiB blocks and no codec, so the byte counts are exact):
 *  "a": rank r writes its whole part [r*PER, +PER) (seven full chunks);
 *  "p": layer 1 writes it whole like "a"; layer 2 writes only windows of it: partial
 *       chunks merged over layer 1 at commit, one of them shared by ranks r and r+1. */
#define PER ((uint64_t)896)
#define CH  ((uint64_t)128)

static uint64_t g_injected; /* faults this process injected (for the summary) */
static int g_sync2_new;     /* failed "syncing the superblock" cases that read as new */

static uint64_t fval(uint64_t i, uint64_t seed) {
    return (seed << 56) ^ (i * 0x9E3779B97F4A7C15ull);
}

/* Whether layer 2 wrote element i of "p". */
static int p_written(uint64_t i, int size) {
    uint64_t r = i / PER, o = i % PER;
    if ((o >= 64 && o < 128) || (o >= 138 && o < 158)) return 1;
    return r + 1 < (uint64_t)size && ((o >= PER - 60 && o < PER - 30) || o >= PER - 20);
}

static void write_range(afmt_file *f, const char *name, uint64_t s, uint64_t n, uint64_t seed,
                        int line) {
    uint64_t *buf = malloc(sizeof(uint64_t) * n);
    for (uint64_t i = 0; i < n; i++) buf[i] = fval(s + i, seed);
    uint64_t st[1] = {s}, ct[1] = {n};
    int rc = afmt_write(f, name, st, ct, buf);
    if (rc != AFMT_OK)
        rec(line, "afmt_write(%s, %llu, %llu) -> %d: %s", name, (unsigned long long)s,
            (unsigned long long)n, rc, NSTR(afmt_errmsg(f)));
    free(buf);
}

/* With g_pre, a metadata-only commit comes before layer 1, so that layer 2's commit
 * writes the other superblock slot (A instead of B). Layer numbers below are then off by
 * one: check_state adds g_pre. */
static int g_pre;

/* COLLECTIVE. Layer 1: "a" and "p" whole with seed 1. */
static void make_layer1(afmt_file *f) {
    int rank = tu_rank(), size = tu_size();
    if (g_pre) {
        int64_t one = 1;
        EXPECT_OK(f, afmt_set_attr(f, NULL, "pre", AFMT_INT64, 1, &one));
        EXPECT_OK(f, afmt_commit(f));
    }
    uint64_t shape[1] = {PER * (uint64_t)size}, chunk[1] = {CH};
    EXPECT_OK(f, afmt_define(f, "a", AFMT_UINT64, 1, shape, chunk, NULL, NULL));
    EXPECT_OK(f, afmt_define(f, "p", AFMT_UINT64, 1, shape, chunk, NULL, NULL));
    write_range(f, "a", (uint64_t)rank * PER, PER, 1, __LINE__);
    write_range(f, "p", (uint64_t)rank * PER, PER, 1, __LINE__);
    EXPECT_OK(f, afmt_commit(f));
}

/* COLLECTIVE. Stages layer 2: "a" whole with seed 2, the windows of "p", a new array "b"
 * and a file attribute "step" = 2. */
static void stage_layer2(afmt_file *f) {
    int rank = tu_rank(), size = tu_size();
    uint64_t r0 = (uint64_t)rank * PER;
    write_range(f, "a", r0, PER, 2, __LINE__);
    write_range(f, "p", r0 + 64, 64, 2, __LINE__);
    write_range(f, "p", r0 + 138, 20, 2, __LINE__);
    if (rank + 1 < size) write_range(f, "p", r0 + PER - 60, 30, 2, __LINE__);
    if (rank > 0) write_range(f, "p", r0 - 20, 20, 2, __LINE__);
    uint64_t bshape[1] = {4};
    EXPECT_OK(f, afmt_define(f, "b", AFMT_INT32, 1, bshape, NULL, NULL, NULL));
    int64_t step = 2;
    EXPECT_OK(f, afmt_set_attr(f, NULL, "step", AFMT_INT64, 1, &step));
}

/* INDEPENDENT. Mismatches between f and the state after layer `layer` (1 or 2), over
 * every rank's part; with record, each kind of mismatch is recorded. */
static int check_state(afmt_file *f, int layer, int record, const char *what, int line) {
    int size = tu_size(), bad = 0;
    uint64_t n = PER * (uint64_t)size, layers = 0;
    int rc = afmt_layers(f, &layers);
    if (rc != AFMT_OK || layers != (uint64_t)(layer + g_pre)) {
        bad++;
        if (record)
            rec(line, "%s: %llu layers, want %d", what, (unsigned long long)layers, layer + g_pre);
    }
    uint64_t *buf = malloc(sizeof(uint64_t) * n);
    uint64_t st[1] = {0}, ct[1] = {n};
    for (int k = 0; k < 2; k++) {
        const char *name = k ? "p" : "a";
        rc = afmt_read(f, name, st, ct, buf);
        if (rc != AFMT_OK) {
            bad++;
            if (record)
                rec(line, "%s: afmt_read(%s) -> %d: %s", what, name, rc, NSTR(afmt_errmsg(f)));
            continue;
        }
        uint64_t wrong = 0, first = 0;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t seed = layer == 1 ? 1 : (k == 0 || p_written(i, size)) ? 2 : 1;
            if (buf[i] != fval(i, seed) && wrong++ == 0) first = i;
        }
        if (wrong) {
            bad++;
            if (record)
                rec(line, "%s: %s: %llu of %llu elements differ from layer %d, first at %llu", what,
                    name, (unsigned long long)wrong, (unsigned long long)n, layer,
                    (unsigned long long)first);
        }
    }
    free(buf);
    afmt_info info;
    rc = afmt_inquire(f, "b", &info);
    if (rc != (layer == 1 ? AFMT_ENOTFOUND : AFMT_OK)) {
        bad++;
        if (record) rec(line, "%s: afmt_inquire(b) -> %d at layer %d", what, rc, layer);
    }
    int64_t step = 0;
    uint64_t cnt = 1;
    rc = afmt_get_attr(f, NULL, "step", AFMT_INT64, &cnt, &step);
    if (layer == 1 ? rc != AFMT_ENOTFOUND : (rc != AFMT_OK || step != 2)) {
        bad++;
        if (record)
            rec(line, "%s: attribute step -> %d (%lld) at layer %d", what, rc, (long long)step,
                layer);
    }
    return bad;
}

/* COLLECTIVE. Opens path read-only with no fault and checks it is layer `layer`; with
 * layer 0 it may be either; returns the layer seen (0 if neither, or on failure). */
static int check_reopen(const char *path, int layer, const char *what, int line) {
    afmt_file *g = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, line);
    if (!g) return 0;
    int seen = 0;
    if (layer)
        seen = check_state(g, layer, 1, what, line) == 0 ? layer : 0;
    else if (check_state(g, 1, 0, what, line) == 0)
        seen = 1;
    else if (check_state(g, 2, 0, what, line) == 0)
        seen = 2;
    else
        rec(line, "%s: the file reads neither as layer 1 nor as layer 2", what);
    EXPECT_OK(g, afmt_close(g));
    return all_true(seen, MPI_COMM_WORLD) == seen ? seen : 0;
}

/* Every rank returned the same code. */
static int same_everywhere(int rc) {
    int lo = 0, hi = 0;
    MPI_Allreduce(&rc, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&rc, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return lo == hi;
}

static void expect_in(const char *msg, const char *part, const char *what, int line) {
    if (!msg || !strstr(msg, part))
        rec(line, "%s: message lacks \"%s\": %s", what, part, NSTR(msg));
}

/* ---- commit cases --------------------------------------------------------------------- */

typedef struct {
    const char *name;
    afmt_fault_op op;
    int err;
    afmt_fault_mode mode;
    int victim_rank0; /* 1: rank 0, 0: the last rank */
    int spill;        /* 1: a 4 KiB budget, so each rank's data is two writes */
    int collective;   /* 1: the afmt_collective_write hint (write_at_all) */
    int pre;          /* 1: a commit before layer 1, so layer 2 writes superblock slot A */
} commit_case;

/* The step commit.c names for the nth of T calls of c->op on the victim. */
static const char *expected_step(const commit_case *c, uint64_t nth, uint64_t T, int victim) {
    switch (c->op) {
    case AFMT_FAULT_READ:
        return "afmt_read(\"p\"): chunk"; /* the exchange reads a committed chunk */
    case AFMT_FAULT_WRITE:
        if (victim != 0 || nth + 2 <= T) return "writing data blocks";
        return nth + 1 == T ? "writing the footer" : "writing the superblock";
    case AFMT_FAULT_WRITE_ALL:
        return "writing data blocks";
    case AFMT_FAULT_SYNC:
        return nth == 1 ? "syncing data and footer" : "syncing the superblock";
    default:
        return "";
    }
}

static const char *op_call(afmt_fault_op op) {
    static const char *n[] = {"read_at(", "write_at(", "write_at_all(",
                              "sync(",    "get_size(", "truncate("};
    return n[op];
}

static afmt_opts *case_opts(const commit_case *c, char *dir, size_t cap) {
    afmt_opts *o = NULL;
    afmt_opts_create(&o);
    EXPECT_OK(NULL, afmt_opts_set_codec(o, AFMT_CODEC_NONE, 0));
    EXPECT_OK(NULL, afmt_opts_set_block_size(o, 1024));
    dir[0] = 0;
    if (c->spill) {
        EXPECT_OK(NULL, afmt_opts_set_mem_budget(o, 4096));
        snprintf(dir, cap, "%s/afmt-fault-spill-%d-XXXXXX", AFMT_TEST_SCRATCH, tu_rank());
        if (!mkdtemp(dir)) {
            rec(__LINE__, "mkdtemp(%s) failed", dir);
            dir[0] = 0;
        } else {
            EXPECT_OK(NULL, afmt_opts_set_spill_dir(o, dir));
        }
    }
    if (c->collective) {
        MPI_Info info;
        MPI_Info_create(&info);
        MPI_Info_set(info, "afmt_collective_write", "true");
        EXPECT_OK(NULL, afmt_opts_set_mpi_info(o, info));
        MPI_Info_free(&info);
    }
    return o;
}

/* One commit case on 1..4 ranks: a count-only run, then every call failed in turn. */
static void run_commit_case(const commit_case *c) {
    int size = tu_size(), rank = tu_rank(), victim = c->victim_rank0 ? 0 : size - 1;
    char dir[512];
    afmt_opts *o = case_opts(c, dir, sizeof dir);
    uint64_t T = 0;
    g_pre = c->pre;
    int retryable = c->err == EINTR || c->op == AFMT_FAULT_SIZE;
    char errtext[128];
    snprintf(errtext, sizeof errtext, "%s", strerror(c->err));
    for (uint64_t nth = 0; nth <= T + 1; nth++) {
        char what[160];
        snprintf(what, sizeof what, "%s, nth %llu of %llu", c->name, (unsigned long long)nth,
                 (unsigned long long)T);
        const char *path = tu_path(NULL, "fault");
        /* Wrapped from the start (count only), armed right before the commit. */
        afmt_storage_fault count = {c->op, 0, 0, AFMT_FAULT_FAIL, -1};
        EXPECT_OK(NULL, afmt__storage_set_fault(&count));
        afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
        if (!f) {
            afmt__storage_set_fault(NULL);
            break;
        }
        make_layer1(f);
        stage_layer2(f);
        afmt_storage_fault spec = {c->op, nth, c->err, c->mode, victim};
        uint64_t inj0 = afmt__storage_fault_injected();
        EXPECT_OK(NULL, afmt__storage_set_fault(&spec));
        int rc = afmt_commit(f);
        uint64_t calls = afmt__storage_fault_calls(c->op);
        int hit = afmt__storage_fault_injected() > inj0;
        afmt__storage_set_fault(NULL);
        int any_hit = !all_true(!hit, MPI_COMM_WORLD);
        g_injected += (uint64_t)hit;
        EXPECT(same_everywhere(rc));

        if (nth == 0) {
            /* Count-only: learn T on the victim; the commit itself must be fine. */
            MPI_Bcast(&calls, 1, MPI_UINT64_T, victim, MPI_COMM_WORLD);
            T = calls;
            if (rc != AFMT_OK) rec(__LINE__, "%s: commit -> %d: %s", what, rc, afmt_errmsg(f));
            if (T == 0 && c->op != AFMT_FAULT_SIZE) rec(__LINE__, "%s: no calls to fail", what);
            check_state(f, 2, 1, what, __LINE__);
        } else if (!any_hit) {
            if (nth != T + 1) rec(__LINE__, "%s: no fault injected", what);
            if (rc != AFMT_OK) rec(__LINE__, "%s: commit -> %d: %s", what, rc, afmt_errmsg(f));
            check_state(f, 2, 1, what, __LINE__);
        } else if (retryable) {
            /* EINTR is retried; a failing size after the commit only skips the truncation
             * of an orphaned tail. Either way the commit succeeds. */
            if (rc != AFMT_OK) rec(__LINE__, "%s: commit -> %d: %s", what, rc, afmt_errmsg(f));
            check_state(f, 2, 1, what, __LINE__);
            check_reopen(path, 2, what, __LINE__);
        } else {
            const char *msg = afmt_errmsg(f);
            if (rc != AFMT_EIO)
                rec(__LINE__, "%s: commit -> %d (%s), want AFMT_EIO: %s", what, rc,
                    afmt_strerror(rc), NSTR(msg));
            expect_in(msg, expected_step(c, nth, T, victim), what, __LINE__);
            expect_in(msg, errtext, what, __LINE__);
            expect_in(msg, op_call(c->op), what, __LINE__);
            expect_in(msg, path, what, __LINE__);
            expect_in(msg, "(injected fault", what, __LINE__);
            if (strstr(expected_step(c, nth, T, victim), "superblock") &&
                c->op == AFMT_FAULT_WRITE) {
                char slot[64];
                snprintf(slot, sizeof slot, "off=%d,",
                         c->pre ? AFMT_SLOT_A_OFFSET : AFMT_SLOT_B_OFFSET);
                expect_in(msg, slot, what, __LINE__);
            }
            if (rank == 0 && getenv("AFMT_TEST_VERBOSE")) printf("  %s: %s\n", what, msg);
            /* A failed "syncing the superblock" comes after the slot write: the layer is
             * the newest (the handle adopted it, the file reads as it) and nothing stays
             * staged. Any earlier step: still layer 1, the staged writes kept. */
            int sync2 = c->op == AFMT_FAULT_SYNC && nth == 2;
            if (sync2) expect_in(msg, "survives a crash is unknown", what, __LINE__);
            uint64_t layers = 0;
            EXPECT_OK(f, afmt_layers(f, &layers));
            EXPECT(layers == (uint64_t)(sync2 ? 2 : 1) + (uint64_t)g_pre);
            int seen = check_reopen(path, sync2 ? 2 : 1, what, __LINE__);
            if (sync2 && seen == 2) g_sync2_new++;
            /* Retrying the commit with what is still staged gives layer 2 (after sync2:
             * nothing is staged, the retry writes nothing). */
            rc = afmt_commit(f);
            EXPECT(same_everywhere(rc));
            if (sync2) {
                EXPECT_OK(f, afmt_layers(f, &layers));
                EXPECT(layers == 2 + (uint64_t)g_pre);
            }
            if (rc != AFMT_OK)
                rec(__LINE__, "%s: retried commit -> %d: %s", what, rc, afmt_errmsg(f));
            check_state(f, 2, 1, what, __LINE__);
            check_reopen(path, 2, what, __LINE__);
        }
        EXPECT_OK(NULL, afmt_close(f));
        rm_path(path);
        if (nth > 0 && !any_hit) break;
    }
    if (dir[0]) rmdir(dir);
    afmt_opts_free(o);
    g_pre = 0;
    done();
}

#define CASE(fn, ...)                                                                              \
    static void fn(void **state) {                                                                 \
        (void)state;                                                                               \
        const commit_case c = {#fn, __VA_ARGS__};                                                  \
        run_commit_case(&c);                                                                       \
    }

/*   name                            op                     err     mode         v0 spill coll pre
 */
CASE(commit_data_enospc, AFMT_FAULT_WRITE, ENOSPC, AFMT_FAULT_FAIL, 0, 0, 0, 0)
CASE(commit_data_spilled_short, AFMT_FAULT_WRITE, EIO, AFMT_FAULT_SHORT, 0, 1, 0, 0)
CASE(commit_rank0_writes_enospc, AFMT_FAULT_WRITE, ENOSPC, AFMT_FAULT_FAIL, 1, 1, 0, 0)
CASE(commit_rank0_writes_short, AFMT_FAULT_WRITE, EIO, AFMT_FAULT_SHORT, 1, 0, 0, 0)
CASE(commit_rank0_writes_slot_a, AFMT_FAULT_WRITE, EIO, AFMT_FAULT_FAIL, 1, 0, 0, 1)
CASE(commit_rank0_writes_slot_a_short, AFMT_FAULT_WRITE, ENOSPC, AFMT_FAULT_SHORT, 1, 0, 0, 1)
CASE(commit_collective_enospc, AFMT_FAULT_WRITE_ALL, ENOSPC, AFMT_FAULT_FAIL, 0, 1, 1, 0)
CASE(commit_collective_short, AFMT_FAULT_WRITE_ALL, EIO, AFMT_FAULT_SHORT, 0, 0, 1, 0)
CASE(commit_collective_rank0_footer, AFMT_FAULT_WRITE, EIO, AFMT_FAULT_FAIL, 1, 0, 1, 0)
CASE(commit_sync_eio, AFMT_FAULT_SYNC, EIO, AFMT_FAULT_FAIL, 0, 0, 0, 0)
CASE(commit_sync_rank0_enospc, AFMT_FAULT_SYNC, ENOSPC, AFMT_FAULT_FAIL, 1, 1, 0, 1)
CASE(commit_exchange_read_eio, AFMT_FAULT_READ, EIO, AFMT_FAULT_FAIL, 0, 0, 0, 0)
CASE(commit_exchange_read_short, AFMT_FAULT_READ, EIO, AFMT_FAULT_SHORT, 1, 1, 0, 0)
CASE(commit_size_rank0, AFMT_FAULT_SIZE, EIO, AFMT_FAULT_FAIL, 1, 0, 0, 0)
CASE(commit_eintr_writes, AFMT_FAULT_WRITE, EINTR, AFMT_FAULT_SHORT, 1, 1, 0, 0)
CASE(commit_eintr_data_last, AFMT_FAULT_WRITE, EINTR, AFMT_FAULT_FAIL, 0, 0, 0, 1)
CASE(commit_eintr_collective, AFMT_FAULT_WRITE_ALL, EINTR, AFMT_FAULT_SHORT, 0, 1, 1, 0)
CASE(commit_eintr_sync, AFMT_FAULT_SYNC, EINTR, AFMT_FAULT_FAIL, 0, 0, 0, 0)
CASE(commit_eintr_read, AFMT_FAULT_READ, EINTR, AFMT_FAULT_SHORT, 0, 0, 0, 0)

/* ---- open, create, read --------------------------------------------------------------- */

/* COLLECTIVE. A closed file of two layers (as after make_layer1 + stage_layer2). */
static const char *two_layer_file(void) {
    const char *path = tu_path(NULL, "fault-open");
    afmt_opts *o = NULL;
    afmt_opts_create(&o);
    afmt_opts_set_codec(o, AFMT_CODEC_NONE, 0);
    afmt_opts_set_block_size(o, 1024);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    if (f) {
        make_layer1(f);
        stage_layer2(f);
        EXPECT_OK(f, afmt_commit(f));
        EXPECT_OK(NULL, afmt_close(f));
    }
    afmt_opts_free(o);
    return path;
}

/* Rank 0 reads the superblock region and the footer chain on open (get_size, then
 * read_at: superblock, newest footer, older footer): each failure is AFMT_EIO on every
 * rank with the message of rank 0's failed call; EINTR is retried. */
static void test_open_faults(void **state) {
    (void)state;
    const char *path = two_layer_file();
    struct {
        afmt_fault_op op;
        int err;
        afmt_fault_mode mode;
    } kinds[] = {{AFMT_FAULT_SIZE, EIO, AFMT_FAULT_FAIL},
                 {AFMT_FAULT_READ, EIO, AFMT_FAULT_FAIL},
                 {AFMT_FAULT_READ, EIO, AFMT_FAULT_SHORT},
                 {AFMT_FAULT_READ, EINTR, AFMT_FAULT_SHORT}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        uint64_t T = 0;
        for (uint64_t nth = 0; nth <= T + 1; nth++) {
            char what[128];
            snprintf(what, sizeof what, "open: %s nth %llu of %llu (%s)", op_call(kinds[k].op),
                     (unsigned long long)nth, (unsigned long long)T, strerror(kinds[k].err));
            afmt_storage_fault spec = {kinds[k].op, nth, kinds[k].err, kinds[k].mode, 0};
            uint64_t inj0 = afmt__storage_fault_injected();
            EXPECT_OK(NULL, afmt__storage_set_fault(&spec));
            afmt_file *g = NULL;
            int rc = afmt_open(MPI_COMM_WORLD, path, AFMT_RDWR, NULL, &g);
            uint64_t calls = afmt__storage_fault_calls(kinds[k].op);
            int hit = afmt__storage_fault_injected() > inj0;
            afmt__storage_set_fault(NULL);
            g_injected += (uint64_t)hit;
            int any_hit = !all_true(!hit, MPI_COMM_WORLD);
            EXPECT(same_everywhere(rc));
            if (nth == 0) {
                MPI_Bcast(&calls, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
                T = calls;
                EXPECT(T >= (kinds[k].op == AFMT_FAULT_READ ? 3u : 1u));
            }
            if (!any_hit || kinds[k].err == EINTR) {
                if (nth > 0 && !any_hit && nth != T + 1)
                    rec(__LINE__, "%s: no fault injected", what);
                if (rc != AFMT_OK || !g) {
                    rec(__LINE__, "%s: afmt_open -> %d: %s", what, rc, afmt_errmsg(NULL));
                } else {
                    check_state(g, 2, 1, what, __LINE__);
                }
            } else {
                if (rc != AFMT_EIO || g)
                    rec(__LINE__, "%s: afmt_open -> %d (%s), want AFMT_EIO: %s", what, rc,
                        afmt_strerror(rc), afmt_errmsg(NULL));
                const char *msg = afmt_errmsg(NULL);
                expect_in(msg, strerror(kinds[k].err), what, __LINE__);
                expect_in(msg, op_call(kinds[k].op), what, __LINE__);
                expect_in(msg, path, what, __LINE__);
                expect_in(msg, "(injected fault", what, __LINE__);
            }
            if (all_true(g != NULL, MPI_COMM_WORLD)) EXPECT_OK(NULL, afmt_close(g));
            if (nth > 0 && !any_hit) break;
        }
    }
    check_reopen(path, 2, "open: after the faults", __LINE__);
    rm_path(path);
    done();
}

/* afmt_read is independent: a failed block read on the last rank is AFMT_EIO there only,
 * naming the array, the chunk and the errno; nothing bad is cached: the next read works. */
static void test_read_faults(void **state) {
    (void)state;
    int rank = tu_rank(), size = tu_size(), victim = size - 1;
    const char *path = two_layer_file();
    afmt_storage_fault count = {AFMT_FAULT_READ, 0, 0, AFMT_FAULT_FAIL, -1};
    EXPECT_OK(NULL, afmt__storage_set_fault(&count));
    afmt_file *g = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
    uint64_t n = PER * (uint64_t)size;
    uint64_t *buf = malloc(sizeof(uint64_t) * n);
    struct {
        uint64_t nth;
        int err;
        afmt_fault_mode mode;
    } kinds[] = {{1, EIO, AFMT_FAULT_FAIL},
                 {3, EIO, AFMT_FAULT_SHORT},
                 {2, ENOSPC, AFMT_FAULT_FAIL},
                 {1, EINTR, AFMT_FAULT_SHORT}};
    for (size_t k = 0; g && k < sizeof kinds / sizeof kinds[0]; k++) {
        /* A fresh handle each time, so that no block is cached yet. */
        if (k > 0) {
            EXPECT_OK(g, afmt_close(g));
            EXPECT_OK(NULL, afmt__storage_set_fault(&count));
            g = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
            if (!g) break;
        }
        afmt_storage_fault spec = {AFMT_FAULT_READ, kinds[k].nth, kinds[k].err, kinds[k].mode,
                                   victim};
        uint64_t inj0 = afmt__storage_fault_injected();
        EXPECT_OK(NULL, afmt__storage_set_fault(&spec));
        uint64_t st[1] = {0}, ct[1] = {n};
        int rc = afmt_read(g, "a", st, ct, buf);
        int hit = afmt__storage_fault_injected() > inj0;
        afmt__storage_set_fault(NULL);
        g_injected += (uint64_t)hit;
        EXPECT(hit == (rank == victim));
        if (rank != victim || kinds[k].err == EINTR) {
            EXPECT(rc == AFMT_OK);
        } else {
            if (rc != AFMT_EIO)
                rec(__LINE__, "read fault %zu: afmt_read -> %d, want AFMT_EIO: %s", k, rc,
                    afmt_errmsg(g));
            const char *msg = afmt_errmsg(g);
            expect_in(msg, "afmt_read(\"a\"): chunk ", "read fault", __LINE__);
            expect_in(msg, strerror(kinds[k].err), "read fault", __LINE__);
            expect_in(msg, "read_at(", "read fault", __LINE__);
            expect_in(msg, "(injected fault", "read fault", __LINE__);
        }
        /* Without the fault every rank reads everything right. */
        check_state(g, 2, 1, "read after a read fault", __LINE__);
    }
    if (g) EXPECT_OK(g, afmt_close(g));
    afmt__storage_set_fault(NULL);
    free(buf);
    rm_path(path);
    done();
}

/* afmt_create: truncate (every rank, collective), the superblock write (rank 0) and the
 * sync (every rank): a failure on one rank is AFMT_EIO on all, no handle; a create with
 * AFMT_TRUNC then works. */
static void test_create_faults(void **state) {
    (void)state;
    int size = tu_size();
    struct {
        afmt_fault_op op;
        int victim;
    } kinds[] = {
        {AFMT_FAULT_TRUNCATE, size - 1}, {AFMT_FAULT_WRITE, 0}, {AFMT_FAULT_SYNC, size - 1}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        const char *path = tu_path(NULL, "fault-create");
        afmt_storage_fault spec = {kinds[k].op, 1, ENOSPC, AFMT_FAULT_FAIL, kinds[k].victim};
        uint64_t inj0 = afmt__storage_fault_injected();
        EXPECT_OK(NULL, afmt__storage_set_fault(&spec));
        afmt_file *f = NULL;
        int rc = afmt_create(MPI_COMM_WORLD, path, 0, NULL, &f);
        int hit = afmt__storage_fault_injected() > inj0;
        afmt__storage_set_fault(NULL);
        g_injected += (uint64_t)hit;
        EXPECT(hit == (tu_rank() == kinds[k].victim));
        EXPECT(same_everywhere(rc));
        if (rc != AFMT_EIO || f)
            rec(__LINE__, "create fault %s: -> %d, want AFMT_EIO: %s", op_call(kinds[k].op), rc,
                afmt_errmsg(NULL));
        expect_in(afmt_errmsg(NULL), strerror(ENOSPC), "create fault", __LINE__);
        expect_in(afmt_errmsg(NULL), op_call(kinds[k].op), "create fault", __LINE__);
        if (all_true(f != NULL, MPI_COMM_WORLD)) afmt_close(f);
        f = xopen(MPI_COMM_WORLD, path, 0, AFMT_TRUNC, NULL, __LINE__);
        if (f) {
            make_layer1(f);
            EXPECT_OK(NULL, afmt_close(f));
        }
        rm_path(path);
    }
    done();
}

/* A memory budget smaller than one block works: every sealed block goes to the spill
 * file at once (nothing stays in memory), reads before the commit come from the spill
 * file, and the commit writes them. (A missing spill directory is test_spill.c's; a full
 * one is tests/fault's spillfull, it needs a tmpfs.) */
static void test_budget_below_block(void **state) {
    (void)state;
    int rank = tu_rank(), size = tu_size();
    const uint64_t ch = 2048, per = 4 * ch; /* 16 KiB chunks = blocks, 4 per rank */
    for (int codec = 0; codec < 2; codec++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/afmt-fault-budget-%d-XXXXXX", AFMT_TEST_SCRATCH, rank);
        if (!mkdtemp(dir)) {
            rec(__LINE__, "mkdtemp(%s) failed", dir);
            dir[0] = 0;
        }
        afmt_opts *o = NULL;
        afmt_opts_create(&o);
        EXPECT_OK(NULL, afmt_opts_set_codec(o, codec ? AFMT_CODEC_LZ4 : AFMT_CODEC_NONE, 0));
        EXPECT_OK(NULL, afmt_opts_set_block_size(o, ch * 8));
        EXPECT_OK(NULL, afmt_opts_set_mem_budget(o, 1000));
        if (dir[0]) EXPECT_OK(NULL, afmt_opts_set_spill_dir(o, dir));
        const char *path = tu_path(NULL, "fault-budget");
        afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
        if (f) {
            uint64_t shape[1] = {per * (uint64_t)size}, chunk[1] = {ch};
            EXPECT_OK(f, afmt_define(f, "v", AFMT_UINT64, 1, shape, chunk, NULL, NULL));
            for (uint64_t c = 0; c < 4; c++) {
                write_range(f, "v", (uint64_t)rank * per + c * ch, ch, 5, __LINE__);
                /* Sealed blocks are all in the spill file, none in memory. */
                EXPECT(f->alloc && afmt__alloc_mem_bytes(f->alloc) == 0);
                EXPECT(f->alloc && afmt__alloc_nblocks(f->alloc) == c);
            }
            EXPECT(f->alloc && afmt__alloc_spilled_bytes(f->alloc) >= 3 * 1000);
            uint64_t *buf = malloc(sizeof(uint64_t) * per * (uint64_t)size);
            uint64_t st[1] = {(uint64_t)rank * per}, ct[1] = {per}, wrong = 0;
            EXPECT_OK(f, afmt_read(f, "v", st, ct, buf)); /* read-your-writes */
            for (uint64_t i = 0; i < per; i++) wrong += buf[i] != fval(st[0] + i, 5);
            EXPECT(wrong == 0);
            EXPECT_OK(f, afmt_commit(f));
            EXPECT_OK(NULL, afmt_close(f));
            afmt_file *g = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
            if (g) {
                st[0] = 0;
                ct[0] = per * (uint64_t)size;
                EXPECT_OK(g, afmt_read(g, "v", st, ct, buf));
                wrong = 0;
                for (uint64_t i = 0; i < ct[0]; i++) wrong += buf[i] != fval(i, 5);
                EXPECT(wrong == 0);
                EXPECT_OK(g, afmt_close(g));
            }
            free(buf);
        }
        afmt_opts_free(o);
        if (dir[0]) rmdir(dir);
        rm_path(path);
    }
    done();
}

static void test_bad_spec(void **state) {
    (void)state;
    afmt_storage_fault bad = {(afmt_fault_op)AFMT_FAULT_NOPS, 1, EIO, AFMT_FAULT_FAIL, -1};
    EXPECT(afmt__storage_set_fault(&bad) == AFMT_EINVAL);
    bad.op = AFMT_FAULT_READ;
    bad.mode = (afmt_fault_mode)7;
    EXPECT(afmt__storage_set_fault(&bad) == AFMT_EINVAL);
    EXPECT(afmt__storage_set_fault(NULL) == AFMT_OK);
    EXPECT(afmt__storage_fault_calls(AFMT_FAULT_READ) == 0);
    done();
}

/* Regression: after a commit failed at "syncing the superblock" the new slot is already
 * on disk; the handle used to stay on the old superblock, so a retry rewrote that footer
 * in place and a failure of the retry left a file that no longer opened. Now the handle
 * adopts the layer: a later commit goes after it, and failing that one changes nothing. */
static void test_sync2_then_retry(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "fault-known");
    afmt_storage_fault count = {AFMT_FAULT_SYNC, 0, 0, AFMT_FAULT_FAIL, -1};
    afmt__storage_set_fault(&count);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (f) {
        make_layer1(f);
        stage_layer2(f);
        afmt_storage_fault s2 = {AFMT_FAULT_SYNC, 2, EIO, AFMT_FAULT_FAIL, tu_size() - 1};
        afmt__storage_set_fault(&s2);
        EXPECT_RC(f, afmt_commit(f), AFMT_EIO);
        /* A new commit on top, whose slot write fails. */
        write_range(f, "a", (uint64_t)tu_rank() * PER, PER, 3, __LINE__);
        /* Rank 0's writes in the retry: data, footer, superblock: fail the last. */
        afmt_storage_fault w = {AFMT_FAULT_WRITE, 3, EIO, AFMT_FAULT_FAIL, 0};
        afmt__storage_set_fault(&w);
        EXPECT_RC(f, afmt_commit(f), AFMT_EIO);
        afmt__storage_set_fault(NULL);
        afmt_file *g = NULL;
        int rc = afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &g);
        if (rc != AFMT_OK)
            rec(__LINE__, "afmt_open after a failed retry -> %d (%s): %s", rc, afmt_strerror(rc),
                afmt_errmsg(NULL));
        if (all_true(g != NULL, MPI_COMM_WORLD)) afmt_close(g);
        check_reopen(path, 2, "sync2 then failed commit", __LINE__);
        afmt_discard(f);
        afmt_close(f);
    }
    afmt__storage_set_fault(NULL);
    rm_path(path);
    done();
}

static void test_summary(void **state) {
    (void)state;
    uint64_t mine = g_injected, all = 0;
    int s2 = g_sync2_new;
    MPI_Allreduce(&mine, &all, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (tu_rank() == 0)
        printf("  test_faults on %d ranks: %llu faults injected; %d failed \"syncing the "
               "superblock\" commit(s) read as the new commit\n",
               tu_size(), (unsigned long long)all, s2);
    EXPECT(all > 0);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_spec),
        cmocka_unit_test(commit_data_enospc),
        cmocka_unit_test(commit_data_spilled_short),
        cmocka_unit_test(commit_rank0_writes_enospc),
        cmocka_unit_test(commit_rank0_writes_short),
        cmocka_unit_test(commit_rank0_writes_slot_a),
        cmocka_unit_test(commit_rank0_writes_slot_a_short),
        cmocka_unit_test(commit_collective_enospc),
        cmocka_unit_test(commit_collective_short),
        cmocka_unit_test(commit_collective_rank0_footer),
        cmocka_unit_test(commit_sync_eio),
        cmocka_unit_test(commit_sync_rank0_enospc),
        cmocka_unit_test(commit_exchange_read_eio),
        cmocka_unit_test(commit_exchange_read_short),
        cmocka_unit_test(commit_size_rank0),
        cmocka_unit_test(commit_eintr_writes),
        cmocka_unit_test(commit_eintr_data_last),
        cmocka_unit_test(commit_eintr_collective),
        cmocka_unit_test(commit_eintr_sync),
        cmocka_unit_test(commit_eintr_read),
        cmocka_unit_test(test_open_faults),
        cmocka_unit_test(test_read_faults),
        cmocka_unit_test(test_create_faults),
        cmocka_unit_test(test_budget_below_block),
        cmocka_unit_test(test_sync2_then_retry),
        cmocka_unit_test(test_summary),
    };
    return tu_main(argc, argv, "mpi_faults", tests, sizeof tests / sizeof tests[0]);
}
