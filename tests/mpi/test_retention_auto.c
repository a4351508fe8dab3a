/* test_retention_auto.c - MPI integration: retention as an option applied after each
 * commit (afmt_opts_set_retention, the hints afmt_keep and afmt_dead_fraction). Twenty
 * commits with keep 3: at most 4 layers after every commit, every kept layer reads back bit
 * for bit through afmt_open_layer, the file stays within 4 checkpoints (plus the
 * superblock region); the dead-fraction trigger fires at the commit where the fraction
 * passes the setting and not before (alone and with keep); ranks with different settings
 * get AFMT_EINVAL from afmt_create and afmt_open on every rank; a storage fault in the
 * automatic compaction on one rank gives every rank the same error and leaves the file as
 * the commit left it; afmt_commit_wait and afmt_close apply it too. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/superblock.h" /* AFMT_SUPER_REGION */
#include "storage/storage.h"

#define N     16384 /* elements of "u" (uint32): 64 KiB, each step rewrites all of it */
#define CHUNK 1024

typedef unsigned long long ull;

static uint32_t value(int step, uint64_t i) {
    const uint64_t k1 = UINT64_C(0x9E3779B97F4A7C15), k2 = UINT64_C(0xBF58476D1CE4E5B9);
    uint64_t x = (uint64_t)(unsigned)step * k1 ^ i * k2;
    x ^= x >> 31;
    x *= UINT64_C(0x94D049BB133111EB);
    return (uint32_t)(x >> 29);
}

/* Options with retention (keep, frac), uncompressed (sizes are exact). */
static afmt_opts *ret_opts(uint64_t keep, double frac) {
    afmt_opts *o = NULL;
    EXPECT_OK(NULL, afmt_opts_create(&o));
    EXPECT_OK(NULL, afmt_opts_set_codec(o, AFMT_CODEC_NONE, 0));
    EXPECT_OK(NULL, afmt_opts_set_retention(o, keep, frac));
    return o;
}

/* Each rank writes its part of step s's u; no commit. */
static void write_step(afmt_file *f, int s) {
    int np = tu_size(), me = tu_rank();
    uint64_t a = (uint64_t)N * (uint64_t)me / (uint64_t)np;
    uint64_t b = (uint64_t)N * (uint64_t)(me + 1) / (uint64_t)np;
    if (b <= a) return;
    uint32_t *buf = malloc(sizeof *buf * (size_t)(b - a));
    for (uint64_t i = a; i < b; i++) buf[i - a] = value(s, i);
    uint64_t st = a, ct = b - a;
    EXPECT_OK(f, afmt_write(f, "u", &st, &ct, buf));
    int32_t sv = s;
    EXPECT_OK(f, afmt_set_attr(f, NULL, "step", AFMT_INT32, 1, &sv));
    free(buf);
}

/* The handle reads exactly step s. */
static void check_step(afmt_file *f, int s, int line) {
    static uint32_t got[N];
    uint64_t st = 0, ct = N;
    EXPECT_OK_AT(line, f, afmt_read(f, "u", &st, &ct, got));
    for (uint64_t i = 0; i < N; i++)
        if (got[i] != value(s, i)) {
            rec(line, "step %d: u[%llu] = %u, want %u", s, (ull)i, got[i], value(s, i));
            break;
        }
    int32_t sv = 0;
    uint64_t n = 1;
    EXPECT_OK_AT(line, f, afmt_get_attr(f, NULL, "step", AFMT_INT32, &n, &sv));
    if (sv != s) rec(line, "attribute step is %d, want %d", sv, s);
}

/* Layer id of step s opens and reads as step s. */
static void check_layer(const char *path, uint64_t id, int s, int line) {
    afmt_file *g = NULL;
    int rc = afmt_open_layer(MPI_COMM_WORLD, path, id, NULL, &g);
    if (rc != AFMT_OK) {
        rec(line, "afmt_open_layer(%llu) (step %d) -> %d: %s", (ull)id, s, rc,
            NSTR(afmt_errmsg(g)));
        return;
    }
    check_step(g, s, line);
    EXPECT_OK(g, afmt_close(g));
}

static uint64_t newest_id(afmt_file *f) {
    uint64_t nl = layers_of(f, __LINE__), id = 0;
    if (nl) EXPECT_OK(f, afmt_layer_id(f, nl - 1, &id, NULL));
    return id;
}

static afmt_file *create_u(const char *path, const afmt_opts *o) {
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
    if (!f) return NULL;
    uint64_t shape = N, chunk = CHUNK;
    EXPECT_OK(f, afmt_define(f, "u", AFMT_UINT32, 1, &shape, &chunk, NULL, NULL));
    return f;
}

/* Twenty commits with keep 3. */
static void test_keep_three(void **state) {
    (void)state;
    enum { STEPS = 20, KEEP = 3 };
    const char *path = tu_path(NULL, "autokeep");
    afmt_opts *o = ret_opts(KEEP, 0.0);
    afmt_file *f = create_u(path, o);
    afmt_opts_free(o);
    if (!f) {
        done();
        return;
    }
    uint64_t ids[STEPS + 1] = {0};
    long long one = 0, max_size = 0;
    for (int s = 1; s <= STEPS; s++) {
        write_step(f, s);
        EXPECT_OK(f, afmt_commit(f));
        uint64_t nl = layers_of(f, __LINE__), want = (uint64_t)(s < KEEP + 1 ? s : KEEP + 1);
        if (nl != want) rec(__LINE__, "step %d: %llu layers, want %llu", s, (ull)nl, (ull)want);
        ids[s] = newest_id(f);
        long long sz = fsize(path);
        if (s == 1) one = sz - AFMT_SUPER_REGION; /* one checkpoint: data and its index */
        if (sz > max_size) max_size = sz;
    }
    check_step(f, STEPS, __LINE__);
    /* The ids of the layers are those of the last 4 commits. */
    for (uint64_t i = 0; i <= KEEP; i++) {
        uint64_t id = 0;
        EXPECT_OK(f, afmt_layer_id(f, i, &id, NULL));
        if (id != ids[STEPS - KEEP + (int)i])
            rec(__LINE__, "layer %llu has id %llu, want %llu", (ull)i, (ull)id,
                (ull)ids[STEPS - KEEP + (int)i]);
    }
    EXPECT_OK(f, afmt_close(f));
    for (int s = STEPS - KEEP; s <= STEPS; s++) check_layer(path, ids[s], s, __LINE__);
    /* Folded layers are gone. */
    afmt_file *g = NULL;
    if (afmt_open_layer(MPI_COMM_WORLD, path, ids[STEPS - KEEP - 1], NULL, &g) != AFMT_ERANGE)
        rec(__LINE__, "folded layer %llu still opens", (ull)ids[STEPS - KEEP - 1]);
    if (g) afmt_close(g);
    /* Bounded: never more than the 4 kept checkpoints (and the superblock region), with a
     * 2% margin for the layers' provenance and the BASE's own index. */
    long long bound = 4 * one + one / 50 + AFMT_SUPER_REGION;
    if (tu_rank() == 0)
        printf("# keep %d: one checkpoint %lld bytes, largest file %lld, final %lld (%.2fx)\n",
               KEEP, one, max_size, fsize(path), (double)fsize(path) / (double)one);
    if (max_size > bound) rec(__LINE__, "the file reached %lld bytes > %lld", max_size, bound);
    rm_path(path);
    done();
}

/* Six commits rewriting everything with the given setting: the layer count after each
 * must be want[s - 1]; every step reads back. */
static void run_pattern(const char *tag, uint64_t keep, double frac, const int *want, int steps,
                        int line) {
    const char *path = tu_path(NULL, tag);
    afmt_opts *o = ret_opts(keep, frac);
    afmt_file *f = create_u(path, o);
    afmt_opts_free(o);
    if (!f) return;
    for (int s = 1; s <= steps; s++) {
        write_step(f, s);
        EXPECT_OK_AT(line, f, afmt_commit(f));
        uint64_t nl = layers_of(f, line);
        if (nl != (uint64_t)want[s - 1])
            rec(line, "%s: step %d: %llu layers, want %d", tag, s, (ull)nl, want[s - 1]);
        check_step(f, s, line);
    }
    EXPECT_OK_AT(line, f, afmt_close(f));
    rm_path(path);
}

/* Full rewrites, no compression: after commit k without compaction about (k - 1) / k of
 * the file is dead (less the superblock region and the newest index). */
static void test_dead_fraction(void **state) {
    (void)state;
    /* keep 0, 0.6: 1/2 is not enough, 2/3 is: compaction to one layer at every third. */
    static const int alone[] = {1, 2, 1, 2, 1, 2};
    run_pattern("dead60", 0, 0.6, alone, 6, __LINE__);
    /* keep 0, 0.45: 1/2 passes already: every second commit compacts. */
    static const int low[] = {1, 1, 1, 1};
    run_pattern("dead45", 0, 0.45, low, 4, __LINE__);
    /* keep 2, 0.77: more than 3 layers and more than 0.77 dead; 3/4 is not enough, 4/5
     * is: the chain grows to 4, then compacts to 3 at each fifth layer. */
    static const int both[] = {1, 2, 3, 4, 3, 4, 3};
    run_pattern("dead77k2", 2, 0.77, both, 7, __LINE__);
    /* keep 2 alone: 3 layers after each commit. */
    static const int keep2[] = {1, 2, 3, 3, 3};
    run_pattern("keep2", 2, 0.0, keep2, 5, __LINE__);
    done();
}

/* Ranks that disagree: AFMT_EINVAL from afmt_create and afmt_open on every rank; the hints
 * count as the setting they give. And the setter's argument checks. */
static void test_settings(void **state) {
    (void)state;
    afmt_opts *o = NULL;
    EXPECT_OK(NULL, afmt_opts_create(&o));
    EXPECT_RC(NULL, afmt_opts_set_retention(NULL, 1, 0.0), AFMT_EINVAL);
    EXPECT_RC(NULL, afmt_opts_set_retention(o, 1, 1.0), AFMT_EINVAL);
    EXPECT_RC(NULL, afmt_opts_set_retention(o, 1, -0.25), AFMT_EINVAL);
    EXPECT_RC(NULL, afmt_opts_set_retention(o, 1, nan("")), AFMT_EINVAL);
    EXPECT_OK(NULL, afmt_opts_set_retention(o, 0, 0.0));
    afmt_opts_free(o);
    const char *path = tu_path(NULL, "autoset");
    int me = tu_rank(), np = tu_size();
    /* keep 3 on rank 0, 2 elsewhere. */
    o = ret_opts(me == 0 ? 3 : 2, 0.0);
    afmt_file *f = NULL;
    int rc = afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, o, &f);
    int want = np > 1 ? AFMT_EINVAL : AFMT_OK;
    if (rc != want) rec(__LINE__, "afmt_create, keep differs: %d, want %d", rc, want);
    if (rc == AFMT_EINVAL && !strstr(afmt_errmsg(NULL), "retention"))
        rec(__LINE__, "message: %s", afmt_errmsg(NULL));
    if (f) EXPECT_OK(f, afmt_close(f));
    afmt_opts_free(o);
    /* The same keep through a hint on rank 0 and the setter elsewhere: agreed. */
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "afmt_keep", "3");
    o = ret_opts(me == 0 ? 0 : 3, 0.0);
    if (me == 0) EXPECT_OK(NULL, afmt_opts_set_mpi_info(o, info));
    f = xopen(MPI_COMM_WORLD, path, 0, AFMT_TRUNC, o, __LINE__);
    if (f) {
        uint64_t shape = N, chunk = CHUNK;
        EXPECT_OK(f, afmt_define(f, "u", AFMT_UINT32, 1, &shape, &chunk, NULL, NULL));
        for (int s = 1; s <= 5; s++) {
            write_step(f, s);
            EXPECT_OK(f, afmt_commit(f));
        }
        EXPECT_LAYERS(f, 4); /* the hint's keep 3 applies on rank 0 as elsewhere */
        EXPECT_OK(f, afmt_close(f));
    }
    afmt_opts_free(o);
    /* afmt_open with dead fractions that differ (a hint on the last rank). */
    MPI_Info_set(info, "afmt_dead_fraction", "0.5");
    MPI_Info_delete(info, "afmt_keep");
    o = ret_opts(0, 0.25);
    if (me == np - 1) EXPECT_OK(NULL, afmt_opts_set_mpi_info(o, info));
    f = NULL;
    rc = afmt_open(MPI_COMM_WORLD, path, AFMT_RDWR, o, &f);
    if (rc != want) rec(__LINE__, "afmt_open, dead fraction differs: %d, want %d", rc, want);
    if (f) EXPECT_OK(f, afmt_close(f));
    afmt_opts_free(o);
    MPI_Info_free(&info);
    rm_path(path);
    done();
}

/* The nth write or sync of the automatic compaction fails on one rank: every rank returns
 * the same error saying the commit is durable; the commit's layer is there (one more
 * layer, not compacted), the handle and a fresh reader read it; once no fault is injected
 * the compaction goes through (4 layers again). The handle's own storage is opened
 * without a fault spec, so only the compaction's new file sees the faults. */
static void test_fault(void **state) {
    (void)state;
    enum { KEEP = 3 };
    const char *path = tu_path(NULL, "autofault");
    afmt_opts *o = ret_opts(KEEP, 0.0);
    afmt_file *f = create_u(path, o);
    afmt_opts_free(o);
    if (!f) {
        done();
        return;
    }
    int s = 0;
    uint64_t ids[256] = {0};
    while (s < KEEP + 1) {
        write_step(f, ++s);
        EXPECT_OK(f, afmt_commit(f));
        ids[s] = newest_id(f);
    }
    static const afmt_fault_op ops[] = {AFMT_FAULT_WRITE, AFMT_FAULT_WRITE_ALL, AFMT_FAULT_SYNC};
    static const uint64_t nths[] = {1, 2, 3, 5, 8, 13, 21, 34, 55, 89};
    int np = tu_size(), tried = 0;
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        for (size_t j = 0; j < sizeof nths / sizeof nths[0] && s < 200; j++) {
            uint64_t before = layers_of(f, __LINE__);
            write_step(f, ++s);
            int victim = (int)(nths[j] % (uint64_t)np);
            afmt_storage_fault spec = {ops[k], nths[j], ENOSPC, AFMT_FAULT_FAIL, victim};
            uint64_t inj0 = afmt__storage_fault_injected();
            EXPECT_OK(NULL, afmt__storage_set_fault(&spec));
            int rc = afmt_commit(f);
            int hit = afmt__storage_fault_injected() > inj0;
            afmt__storage_set_fault(NULL);
            ids[s] = newest_id(f);
            int any = !all_true(!hit, MPI_COMM_WORLD);
            int same =
                all_true(rc == AFMT_OK, MPI_COMM_WORLD) || all_true(rc == AFMT_EIO, MPI_COMM_WORLD);
            if (!same)
                rec(__LINE__, "op %d nth %llu: rc %d, not the same on every rank", (int)ops[k],
                    (ull)nths[j], rc);
            check_step(f, s, __LINE__);
            if (!any) {
                if (rc != AFMT_OK) rec(__LINE__, "rc %d without a fault: %s", rc, afmt_errmsg(f));
                EXPECT_LAYERS(f, KEEP + 1);
                /* The compaction reopened the file while the spec was set: the handle's
                 * storage is wrapped now. Reopened without one, so that the next op's
                 * faults hit the compaction again, not the commit. */
                EXPECT_OK(f, afmt_close(f));
                o = ret_opts(KEEP, 0.0);
                f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, o, __LINE__);
                afmt_opts_free(o);
                if (!f) {
                    done();
                    return;
                }
                break; /* past the compaction's last call of this op */
            }
            tried++;
            if (rc == AFMT_OK) {
                rec(__LINE__, "op %d nth %llu: a fault and AFMT_OK", (int)ops[k], (ull)nths[j]);
                continue;
            }
            if (!strstr(afmt_errmsg(f), "the commit is durable"))
                rec(__LINE__, "message: %s", afmt_errmsg(f));
            /* As the commit left it: one layer more, the newest is step s. */
            EXPECT_LAYERS(f, before + 1);
            afmt_file *r = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
            if (r) {
                check_step(r, s, __LINE__);
                EXPECT_LAYERS(r, before + 1);
                EXPECT_OK(r, afmt_close(r));
            }
            check_layer(path, ids[s - 1], s - 1, __LINE__);
        }
    }
    if (tried < 3) rec(__LINE__, "only %d faults injected", tried);
    /* The directory sync after the rename fails: the file is compacted (and the handle on
     * it), the code says its durability is unknown, the message says which state it is. */
    if (f) {
        write_step(f, ++s);
        afmt_storage_fault spec = {AFMT_FAULT_DIRSYNC, 1, EIO, AFMT_FAULT_FAIL, 0};
        EXPECT_OK(NULL, afmt__storage_set_fault(&spec));
        int rc = afmt_commit(f);
        afmt__storage_set_fault(NULL);
        ids[s] = newest_id(f);
        if (!all_true(rc == AFMT_EIO, MPI_COMM_WORLD)) rec(__LINE__, "dirsync fault: rc %d", rc);
        if (!strstr(afmt_errmsg(f), "the file is compacted"))
            rec(__LINE__, "message: %s", afmt_errmsg(f));
        EXPECT_LAYERS(f, KEEP + 1);
        check_step(f, s, __LINE__);
        /* The handle goes on: its next commit compacts again. */
        EXPECT_OK(f, afmt_close(f));
        o = ret_opts(KEEP, 0.0);
        f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, o, __LINE__);
        afmt_opts_free(o);
        if (f) {
            write_step(f, ++s);
            EXPECT_OK(f, afmt_commit(f));
            ids[s] = newest_id(f);
            EXPECT_LAYERS(f, KEEP + 1);
        }
    }
    if (f) EXPECT_OK(f, afmt_close(f));
    for (int t = s - KEEP; t <= s; t++) check_layer(path, ids[t], t, __LINE__);
    rm_path(path);
    done();
}

/* afmt_commit_start / afmt_commit_wait apply it at the wait; a wait with writes staged
 * since the start skips it and the next commit catches up; afmt_close applies it. */
static void test_async_close(void **state) {
    (void)state;
    enum { KEEP = 2 };
    const char *path = tu_path(NULL, "autoasync");
    afmt_opts *o = ret_opts(KEEP, 0.0);
    afmt_file *f = create_u(path, o);
    if (!f) {
        afmt_opts_free(o);
        done();
        return;
    }
    int s = 0;
    for (; s < 6; s++) {
        write_step(f, s + 1);
        EXPECT_OK(f, afmt_commit_start(f));
        EXPECT_OK(f, afmt_commit_wait(f));
        uint64_t nl = layers_of(f, __LINE__),
                 want = (uint64_t)(s + 1 < KEEP + 1 ? s + 1 : KEEP + 1);
        if (nl != want) rec(__LINE__, "step %d: %llu layers, want %llu", s + 1, (ull)nl, (ull)want);
        check_step(f, s + 1, __LINE__);
    }
    /* Writes staged while the commit is in flight: the wait leaves the chain at 4. */
    write_step(f, ++s);
    EXPECT_OK(f, afmt_commit_start(f));
    write_step(f, ++s);
    EXPECT_OK(f, afmt_commit_wait(f));
    EXPECT_LAYERS(f, KEEP + 2);
    EXPECT_OK(f, afmt_commit(f));
    EXPECT_LAYERS(f, KEEP + 1);
    check_step(f, s, __LINE__);
    /* The commit inside afmt_close. */
    write_step(f, ++s);
    EXPECT_OK(f, afmt_close(f));
    f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, o, __LINE__);
    if (f) {
        EXPECT_LAYERS(f, KEEP + 1);
        check_step(f, s, __LINE__);
        EXPECT_OK(f, afmt_close(f));
    }
    afmt_opts_free(o);
    rm_path(path);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_three),  cmocka_unit_test(test_dead_fraction),
        cmocka_unit_test(test_settings),    cmocka_unit_test(test_fault),
        cmocka_unit_test(test_async_close),
    };
    return tu_main(argc, argv, "mpi.retention_auto", tests, sizeof tests / sizeof tests[0]);
}
