/* test_retention.c - MPI integration: checkpoint retention (afmt_compact_keep). Twenty
 * commits with partial rewrites, an array defined and later deleted, attributes; keeping
 * the newest 3 leaves 4 layers whose ids are the old ones; every kept layer (and the
 * BASE, which reads as the newest layer folded) opens with afmt_open_layer and reads bit
 * for bit what was committed at that step; rollback to a kept layer works; the newest
 * state is unchanged; a storage failure at any write or sync of the compaction leaves
 * the file byte for byte as before and the handle usable. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"

#define N      4096 /* elements of "u" (uint32) */
#define CHUNK  256
#define STEPS  20
#define KEEP   3
#define NV     512 /* elements of "v", defined at step 5, deleted at step 18 */
#define V_FROM 5
#define V_TO   18

typedef unsigned long long ull;

/* What the file holds after each step: u, v (if live), the attribute "step". */
typedef struct {
    uint32_t u[N];
    uint32_t v[NV];
    int has_v;
    uint64_t id; /* the layer id of the step's commit */
} snap;

static uint32_t value(int step, uint64_t i) {
    return (uint32_t)step * 2654435761u ^ (uint32_t)(i * 40503u);
}

/* Step s rewrites a window of u (a different one each step, about a quarter of it),
 * each rank its part; v is written whole at V_FROM and half at later steps. */
static void do_step(afmt_file *f, int s, snap *cur) {
    int np = tu_size(), me = tu_rank();
    uint64_t lo = (uint64_t)(s * 613) % (N - N / 4), hi = lo + N / 4;
    for (uint64_t i = lo; i < hi; i++) cur->u[i] = value(s, i);
    uint64_t a = lo + (hi - lo) * (uint64_t)me / (uint64_t)np;
    uint64_t b = lo + (hi - lo) * (uint64_t)(me + 1) / (uint64_t)np;
    if (b > a) {
        uint64_t st = a, ct = b - a;
        EXPECT_OK(f, afmt_write(f, "u", &st, &ct, cur->u + a));
    }
    if (s == V_FROM) {
        uint64_t shape = NV, chunk = 128;
        EXPECT_OK(f, afmt_define(f, "v", AFMT_UINT32, 1, &shape, &chunk, NULL, NULL));
        cur->has_v = 1;
    }
    if (cur->has_v && s < V_TO) {
        uint64_t vlo = s == V_FROM ? 0 : NV / 2, n = NV - vlo;
        for (uint64_t i = vlo; i < NV; i++) cur->v[i] = value(s + 100, i);
        uint64_t st = vlo + n * (uint64_t)me / (uint64_t)np;
        uint64_t ct = vlo + n * (uint64_t)(me + 1) / (uint64_t)np - st;
        if (ct) EXPECT_OK(f, afmt_write(f, "v", &st, &ct, cur->v + st));
    }
    if (s == V_TO) {
        EXPECT_OK(f, afmt_delete(f, "v"));
        cur->has_v = 0;
    }
    int32_t sv = s;
    EXPECT_OK(f, afmt_set_attr(f, NULL, "step", AFMT_INT32, 1, &sv));
    EXPECT_OK(f, afmt_commit(f));
    uint64_t nl = 0;
    EXPECT_OK(f, afmt_layers(f, &nl));
    EXPECT_OK(f, afmt_layer_id(f, nl - 1, &cur->id, NULL));
}

/* The handle reads exactly what snapshot want holds (step: the attribute). */
static void check_snap(afmt_file *f, const snap *want, int step, int line) {
    static uint32_t got[N];
    uint64_t st = 0, ct = N;
    EXPECT_OK_AT(line, f, afmt_read(f, "u", &st, &ct, got));
    if (memcmp(got, want->u, sizeof got) != 0) rec(line, "step %d: u differs", step);
    afmt_info info;
    int vrc = afmt_inquire(f, "v", &info);
    if (want->has_v) {
        ct = NV;
        EXPECT_OK_AT(line, f, afmt_read(f, "v", &st, &ct, got));
        if (vrc != AFMT_OK || memcmp(got, want->v, sizeof want->v) != 0)
            rec(line, "step %d: v differs", step);
    } else if (vrc != AFMT_ENOTFOUND) {
        rec(line, "step %d: v is there (%d), want it deleted or never defined", step, vrc);
    }
    int32_t sv = 0;
    uint64_t n = 1;
    EXPECT_OK_AT(line, f, afmt_get_attr(f, NULL, "step", AFMT_INT32, &n, &sv));
    if (sv != step) rec(line, "attribute step is %d, want %d", sv, step);
}

/* Opens path as of layer id and checks it against want. */
static void check_layer_view(const char *path, const snap *want, int step, int line) {
    afmt_file *g = NULL;
    int rc = afmt_open_layer(MPI_COMM_WORLD, path, want->id, NULL, &g);
    if (rc != AFMT_OK) {
        rec(line, "afmt_open_layer(%llu) (step %d) -> %d: %s", (ull)want->id, step, rc,
            NSTR(afmt_errmsg(g)));
        if (g) afmt_close(g);
        return;
    }
    check_snap(g, want, step, line);
    EXPECT_OK(g, afmt_close(g));
}

/* The whole file on rank 0 (NULL elsewhere), for byte comparisons. */
static uint8_t *slurp(const char *path, long long *len) {
    *len = fsize(path);
    if (tu_rank() != 0 || *len < 0) return NULL;
    uint8_t *p = malloc((size_t)*len + 1);
    FILE *fp = fopen(path, "rb");
    if (!p || !fp || fread(p, 1, (size_t)*len, fp) != (size_t)*len) {
        rec(__LINE__, "cannot read %s", path);
        free(p);
        p = NULL;
    }
    if (fp) fclose(fp);
    return p;
}

static snap *g_snaps; /* g_snaps[s] = after step s (1-based) */

/* The file of STEPS commits, with the snapshots in g_snaps. */
static afmt_file *make_file(const char *path) {
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (!f) return NULL;
    uint64_t shape = N, chunk = CHUNK;
    EXPECT_OK(f, afmt_define(f, "u", AFMT_UINT32, 1, &shape, &chunk, NULL, NULL));
    snap *cur = calloc(1, sizeof *cur);
    for (int s = 1; s <= STEPS; s++) {
        do_step(f, s, cur);
        g_snaps[s] = *cur;
    }
    free(cur);
    return f;
}

/* The start of a test on the file of STEPS commits: a fresh path of tag in *path,
 * g_snaps allocated and filled. NULL (g_snaps freed, the test done) if the file could not
 * be made: the caller returns. */
static afmt_file *start_steps(const char *tag, const char **path) {
    *path = tu_path(NULL, tag);
    g_snaps = calloc(STEPS + 1, sizeof *g_snaps);
    afmt_file *f = make_file(*path);
    if (!f) {
        free(g_snaps);
        done();
    }
    return f;
}

static void test_keep_three(void **state) {
    (void)state;
    const char *path;
    afmt_file *f = start_steps("keep3", &path);
    if (!f) return;
    long long before = fsize(path);
    EXPECT_OK(f, afmt_compact_keep(f, KEEP));
    long long after = fsize(path);
    uint64_t nl = 0;
    EXPECT_OK(f, afmt_layers(f, &nl));
    if (nl != KEEP + 1)
        rec(__LINE__, "%llu layers after keep %d, want %d", (ull)nl, KEEP, KEEP + 1);
    /* The ids are the old ones: the BASE has the newest folded layer's. */
    for (uint64_t i = 0; i < nl && i <= KEEP; i++) {
        uint64_t id = 0;
        EXPECT_OK(f, afmt_layer_id(f, i, &id, NULL));
        uint64_t want = g_snaps[STEPS - KEEP + (int)i].id;
        if (id != want)
            rec(__LINE__, "layer %llu has id %llu, want %llu", (ull)i, (ull)id, (ull)want);
    }
    if (after >= before) rec(__LINE__, "the file grew: %lld -> %lld bytes", before, after);
    check_snap(f, &g_snaps[STEPS], STEPS, __LINE__);
    for (int s = STEPS - KEEP; s <= STEPS; s++) check_layer_view(path, &g_snaps[s], s, __LINE__);
    /* A folded layer is gone. */
    afmt_file *g = NULL;
    int rc = afmt_open_layer(MPI_COMM_WORLD, path, g_snaps[STEPS - KEEP - 1].id, NULL, &g);
    if (rc != AFMT_ERANGE) rec(__LINE__, "a folded layer opens: %d", rc);
    if (g) afmt_close(g);
    /* Rollback to a kept layer, then the file goes on. */
    EXPECT_OK(f, afmt_rollback(f, g_snaps[STEPS - 2].id));
    check_snap(f, &g_snaps[STEPS - 2], STEPS - 2, __LINE__);
    snap *cur = calloc(1, sizeof *cur);
    *cur = g_snaps[STEPS - 2];
    do_step(f, STEPS + 1, cur);
    if (cur->id <= g_snaps[STEPS].id) rec(__LINE__, "a layer id was reused: %llu", (ull)cur->id);
    /* Again, now over a rolled-back tail: the chain is BASE (step 17), 18, 21; the dead
     * layers 19 and 20 go, the three of the chain stay (the oldest is always folded). */
    EXPECT_OK(f, afmt_compact_keep(f, KEEP));
    EXPECT_OK(f, afmt_layers(f, &nl));
    EXPECT(nl == 3);
    check_snap(f, cur, STEPS + 1, __LINE__);
    EXPECT_OK(f, afmt_close(f));
    check_layer_view(path, cur, STEPS + 1, __LINE__);
    check_layer_view(path, &g_snaps[STEPS - 2], STEPS - 2, __LINE__);
    check_layer_view(path, &g_snaps[STEPS - 3], STEPS - 3, __LINE__);
    g = NULL;
    rc = afmt_open_layer(MPI_COMM_WORLD, path, g_snaps[STEPS].id, NULL, &g);
    if (rc != AFMT_ERANGE) rec(__LINE__, "a rolled-back layer opens: %d", rc);
    if (g) afmt_close(g);
    free(cur);
    free(g_snaps);
    rm_path(path);
    done();
}

/* keep at least the layer count: every layer stays, the oldest becomes the BASE under its
 * own id; keep 0 is afmt_compact (one layer). */
static void test_keep_many(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "keepall");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (!f) {
        done();
        return;
    }
    uint64_t shape = N, chunk = CHUNK;
    EXPECT_OK(f, afmt_define(f, "u", AFMT_UINT32, 1, &shape, &chunk, NULL, NULL));
    snap *s = calloc(4, sizeof *s);
    for (int i = 1; i <= 3; i++) {
        s[i] = s[i - 1];
        do_step(f, i, &s[i]);
    }
    EXPECT_OK(f, afmt_compact_keep(f, 10));
    uint64_t nl = 0, id = 0;
    EXPECT_OK(f, afmt_layers(f, &nl));
    EXPECT(nl == 3);
    EXPECT_OK(f, afmt_layer_id(f, 0, &id, NULL));
    EXPECT(id == s[1].id);
    for (int i = 1; i <= 3; i++) check_layer_view(path, &s[i], i, __LINE__);
    /* Rolled back to layer 1, one layer left: it is the BASE under its own id, and the
     * next commit still gets an id above every id used (3), not 2. */
    EXPECT_OK(f, afmt_rollback(f, s[1].id));
    EXPECT_OK(f, afmt_compact_keep(f, 3));
    EXPECT_OK(f, afmt_layers(f, &nl));
    EXPECT(nl == 1);
    EXPECT_OK(f, afmt_layer_id(f, 0, &id, NULL));
    EXPECT(id == s[1].id);
    check_layer_view(path, &s[1], 1, __LINE__);
    snap *t = calloc(1, sizeof *t);
    *t = s[1];
    do_step(f, 4, t);
    if (t->id <= s[3].id) rec(__LINE__, "layer id %llu reused (3 was used)", (ull)t->id);
    s[3] = *t;
    free(t);
    EXPECT_OK(f, afmt_compact_keep(f, 0));
    EXPECT_OK(f, afmt_layers(f, &nl));
    EXPECT(nl == 1);
    check_snap(f, &s[3], 4, __LINE__);
    EXPECT_OK(f, afmt_close(f));
    rm_path(path);
    /* Layers written by 1 rank, kept by all: the rewritten layers' blocks, divided among
     * the compacting ranks, and their segments name those ranks, which the footer's
     * nranks must cover. */
    if (tu_rank() == 0) {
        afmt_file *one = NULL;
        afmt_opts *o = NULL;
        EXPECT_OK(NULL, afmt_opts_create(&o));
        EXPECT_OK(NULL, afmt_opts_set_block_size(o, 1024)); /* a block per chunk: 16 */
        EXPECT_OK(one, afmt_create(MPI_COMM_SELF, path, 0, o, &one));
        afmt_opts_free(o);
        EXPECT_OK(one, afmt_define(one, "u", AFMT_UINT32, 1, &shape, &chunk, NULL, NULL));
        for (int i = 1; i <= 3; i++) {
            uint64_t st = 0, ct = N;
            EXPECT_OK(one, afmt_write(one, "u", &st, &ct, s[i].u));
            int32_t sv = i;
            EXPECT_OK(one, afmt_set_attr(one, NULL, "step", AFMT_INT32, 1, &sv));
            EXPECT_OK(one, afmt_commit(one));
            s[i].has_v = 0;
            s[i].id = (uint64_t)i;
        }
        EXPECT_OK(one, afmt_close(one));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, NULL, __LINE__);
    if (f) {
        EXPECT_OK(f, afmt_compact_keep(f, 2));
        EXPECT_OK(f, afmt_close(f));
        for (int i = 1; i <= 3; i++) check_layer_view(path, &s[i], i, __LINE__);
    }
    free(s);
    rm_path(path);
    done();
}

/* The nth write or sync of the compaction fails on one rank: every rank gets the same
 * error, the file is byte for byte as before, the handle goes on (a later keep
 * compaction succeeds). */
static void test_keep_faults(void **state) {
    (void)state;
    const char *path;
    afmt_file *f = start_steps("keepfault", &path);
    if (!f) return;
    long long len0 = 0;
    uint8_t *orig = slurp(path, &len0);
    static const afmt_fault_op ops[] = {AFMT_FAULT_WRITE, AFMT_FAULT_WRITE_ALL, AFMT_FAULT_SYNC};
    int np = tu_size(), tried = 0;
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        for (uint64_t nth = 1; nth < 64; nth++) {
            int victim = (int)(nth % (uint64_t)np);
            afmt_storage_fault spec = {ops[o], nth, ENOSPC, AFMT_FAULT_FAIL, victim};
            uint64_t inj0 = afmt__storage_fault_injected();
            EXPECT_OK(NULL, afmt__storage_set_fault(&spec));
            int rc = afmt_compact_keep(f, KEEP);
            int hit = afmt__storage_fault_injected() > inj0;
            afmt__storage_set_fault(NULL);
            int any = !all_true(!hit, MPI_COMM_WORLD);
            int same =
                all_true(rc == AFMT_OK, MPI_COMM_WORLD) || all_true(rc != AFMT_OK, MPI_COMM_WORLD);
            if (!same)
                rec(__LINE__, "op %d nth %llu: ranks disagree (rc %d)", (int)ops[o], (ull)nth, rc);
            if (!any) {
                if (rc != AFMT_OK)
                    rec(__LINE__, "op %d nth %llu: rc %d without a fault: %s", (int)ops[o],
                        (ull)nth, rc, afmt_errmsg(f));
                break; /* past the last call of op: the compaction succeeded */
            }
            tried++;
            if (rc == AFMT_OK) {
                /* A fault after the rename (the directory sync is not among ops): impossible. */
                rec(__LINE__, "op %d nth %llu: a fault and AFMT_OK", (int)ops[o], (ull)nth);
                break;
            }
            long long len = 0;
            uint8_t *now = slurp(path, &len);
            if (tu_rank() == 0 && (len != len0 || !now || memcmp(now, orig, (size_t)len) != 0))
                rec(__LINE__, "op %d nth %llu: the file changed (%lld -> %lld bytes)", (int)ops[o],
                    (ull)nth, len0, len);
            free(now);
            check_snap(f, &g_snaps[STEPS], STEPS, __LINE__);
        }
        /* The last round succeeded: the kept layers are there, and they are what the next
         * op's compactions start from. */
        for (int s = STEPS - KEEP; s <= STEPS; s++)
            check_layer_view(path, &g_snaps[s], s, __LINE__);
        free(orig);
        orig = slurp(path, &len0);
    }
    if (tried < 3) rec(__LINE__, "only %d faults injected", tried);
    EXPECT_OK(f, afmt_close(f));
    free(orig);
    free(g_snaps);
    rm_path(path);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_three),
        cmocka_unit_test(test_keep_many),
        cmocka_unit_test(test_keep_faults),
    };
    return tu_main(argc, argv, "mpi.retention", tests, sizeof tests / sizeof tests[0]);
}
