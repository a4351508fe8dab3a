/* test_oom.c - allocation failure paths. Linked with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup
 * so that every allocation that afmt's own code (the static library) and this file make
 * goes through the wrappers below; Open MPI and the codec libraries are shared objects and
 * allocate outside them. While armed, the wrappers count allocations and make the Nth one
 * fail (one failure per run).
 *
 * For each scenario and N = 1, 2, ... until the call completes without reaching the Nth
 * allocation: set up a file on the memory backend (unarmed), arm, make the call, disarm.
 * The call must return AFMT_OK or AFMT_ENOMEM (never crash); after AFMT_ENOMEM the same
 * call without failure must succeed (the handle stays usable) and the data must be right:
 * through the handle, after a commit, and through a fresh handle. Leaks are found by the
 * sanitizer build (LeakSanitizer). One rank (MPI_COMM_SELF): the collective calls (define,
 * set_attr, open, create, commit) have no other rank to disagree with.
 *
 * Scenarios: afmt_define, afmt_set_attr, afmt_write (whole chunks, the first write of a
 * handle, a partial chunk, a partial write into chunks staged whole before),
 * afmt_read (committed blocks, own staged writes), afmt_open, afmt_create, afmt_commit,
 * afmt_discard (rebuilds the index), afmt__footer_decode. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "afmt.h"
#include "api/file.h" /* afmt__opts_set_backend */
#include "format/footer.h"
#include "format/superblock.h"
#include "storage/storage.h"

#include "oom_wrap.h"

/* ---- checks ------------------------------------------------------------------------- */

static int g_bad;
static const char *g_scenario = "";
static unsigned long g_n;

static void bad(int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "test_oom.c:%d: %s, allocation %lu: ", line, g_scenario, g_n);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    g_bad++;
}
#define CHECK_OK(f, call)                                                                          \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != AFMT_OK) bad(__LINE__, "%s -> %d: %s", #call, rc_, afmt_errmsg(f));             \
    } while (0)

/* ---- the data ----------------------------------------------------------------------- */

#define R 40
#define C 50
static uint64_t model[R * C]; /* what "a" must read as through the handle */

static uint64_t v(uint64_t i, uint64_t seed) {
    return seed * 1000003u + i * 7u;
}

/* Not malloc'd: the buffer must not take part in the counted allocations. */
static int write_box(afmt_file *f, uint64_t r0, uint64_t nr, uint64_t c0, uint64_t nc,
                     uint64_t seed) {
    static uint64_t buf[R * C];
    for (uint64_t r = 0; r < nr; r++)
        for (uint64_t c = 0; c < nc; c++) buf[r * nc + c] = v((r0 + r) * C + c0 + c, seed);
    uint64_t st[2] = {r0, c0}, ct[2] = {nr, nc};
    return afmt_write(f, "a", st, ct, buf);
}

static void model_box(uint64_t r0, uint64_t nr, uint64_t c0, uint64_t nc, uint64_t seed) {
    for (uint64_t r = r0; r < r0 + nr; r++)
        for (uint64_t c = c0; c < c0 + nc; c++) model[r * C + c] = v(r * C + c, seed);
}

/* Compares all of "a" with the model. */
static void check_a(afmt_file *f, const char *what, int line) {
    static uint64_t buf[R * C];
    uint64_t st[2] = {0, 0}, ct[2] = {R, C};
    int rc = afmt_read(f, "a", st, ct, buf);
    if (rc != AFMT_OK) {
        bad(line, "%s: afmt_read -> %d: %s", what, rc, afmt_errmsg(f));
        return;
    }
    int wrong = 0;
    for (int i = 0; i < R * C; i++) wrong += buf[i] != model[i];
    if (wrong) bad(line, "%s: %d of %d elements wrong", what, wrong, R * C);
}

/* ---- scenarios ---------------------------------------------------------------------- */

typedef struct {
    char path[64];
    afmt_opts *o;
    afmt_file *f;
    uint8_t *footer; /* footer_decode */
    uint64_t footer_len;
    uint64_t buf[R * C]; /* read results */
} ctx;

static afmt_opts *mem_opts(void) {
    afmt_opts *o = NULL;
    afmt_opts_create(&o);
    afmt__opts_set_backend(o, "memory");
    afmt_opts_set_codec(o, AFMT_CODEC_LZ4, 0);
    afmt_opts_set_block_size(o, 4096);
    return o;
}

/* Layer 1: "a" [40, 50] in chunks [8, 16] (edge chunks), all seed 1, a file attribute. */
static int base_file(ctx *c, int keep_open) {
    static unsigned serial;
    snprintf(c->path, sizeof c->path, "oom-%u", serial++);
    c->o = mem_opts();
    int rc = afmt_create(MPI_COMM_SELF, c->path, 0, c->o, &c->f);
    if (rc != AFMT_OK) return rc;
    uint64_t shape[2] = {R, C}, chunk[2] = {8, 16};
    CHECK_OK(c->f, afmt_define(c->f, "a", AFMT_UINT64, 2, shape, chunk, NULL, NULL));
    CHECK_OK(c->f, write_box(c->f, 0, R, 0, C, 1));
    int64_t step = 1;
    CHECK_OK(c->f, afmt_set_attr(c->f, NULL, "step", AFMT_INT64, 1, &step));
    CHECK_OK(c->f, afmt_commit(c->f));
    model_box(0, R, 0, C, 1);
    if (!keep_open) {
        CHECK_OK(NULL, afmt_close(c->f));
        c->f = NULL;
    }
    return AFMT_OK;
}

static int setup_open(ctx *c) {
    return base_file(c, 1);
}

static int setup_closed(ctx *c) {
    return base_file(c, 0);
}

/* A fresh handle on layer 1: its allocator does not exist yet (write_first). */
static int setup_reopened(ctx *c) {
    int rc = base_file(c, 0);
    if (rc) return rc;
    return afmt_open(MPI_COMM_SELF, c->path, AFMT_RDWR, c->o, &c->f);
}

/* Open, with staged changes: a partial box, a define, an attribute. */
static int setup_staged(ctx *c) {
    int rc = base_file(c, 1);
    if (rc) return rc;
    CHECK_OK(c->f, write_box(c->f, 3, 7, 5, 20, 4));
    model_box(3, 7, 5, 20, 4);
    uint64_t shape[1] = {10};
    CHECK_OK(c->f, afmt_define(c->f, "s", AFMT_INT32, 1, shape, NULL, NULL, NULL));
    CHECK_OK(c->f, afmt_set_attr(c->f, "a", "units", AFMT_UINT8, 5, "meter"));
    return AFMT_OK;
}

/* Open, with whole chunks staged (rows 8..23, seed 2): a partial write into them turns
 * them back into dense buffers (write_partial_over_full). */
static int setup_staged_full(ctx *c) {
    int rc = base_file(c, 1);
    if (rc) return rc;
    CHECK_OK(c->f, write_box(c->f, 8, 16, 0, C, 2));
    model_box(8, 16, 0, C, 2);
    return AFMT_OK;
}

/* A new file without any array or layer (define_first). */
static int setup_empty(ctx *c) {
    static unsigned serial;
    snprintf(c->path, sizeof c->path, "oom-empty-%u", serial++);
    c->o = mem_opts();
    return afmt_create(MPI_COMM_SELF, c->path, 0, c->o, &c->f);
}

static int setup_footer(ctx *c) {
    int rc = base_file(c, 0);
    if (rc) return rc;
    uint8_t *img = NULL;
    uint64_t len = 0;
    if ((rc = afmt__storage_mem_get(c->path, &img, &len)) != AFMT_OK) return rc;
    afmt_super s;
    char msg[AFMT_ERRMSG_MAX];
    rc = afmt__super_pick(img, (size_t)(len < AFMT_SUPER_REGION ? len : AFMT_SUPER_REGION), &s,
                          NULL, msg);
    if (rc == AFMT_OK && s.footer_offset + s.footer_length <= len) {
        c->footer = malloc((size_t)s.footer_length);
        if (c->footer) memcpy(c->footer, img + s.footer_offset, (size_t)s.footer_length);
        c->footer_len = s.footer_length;
    }
    free(img);
    return c->footer ? AFMT_OK : AFMT_ECORRUPT;
}

/* The calls (armed). */
static int op_define(ctx *c) {
    uint64_t shape[2] = {10, 12}, chunk[2] = {3, 5};
    const char *dims[2] = {"y", "x"};
    int32_t fill = -1;
    return afmt_define(c->f, "n", AFMT_INT32, 2, shape, chunk, dims, &fill);
}

static int op_set_attr(ctx *c) {
    return afmt_set_attr(c->f, "a", "units", AFMT_UINT8, 5, "meter");
}

static int op_write_full(ctx *c) {
    return write_box(c->f, 8, 16, 0, C, 2); /* rows 8..23: two whole chunk rows */
}

static int op_write_partial(ctx *c) {
    return write_box(c->f, 3, 7, 5, 20, 3);
}

static int op_write_over_full(ctx *c) {
    return write_box(c->f, 10, 9, 7, 30, 3); /* inside the staged whole chunks */
}

static int op_read(ctx *c) {
    uint64_t st[2] = {0, 0}, ct[2] = {R, C};
    return afmt_read(c->f, "a", st, ct, c->buf);
}

static int op_open(ctx *c) {
    int rc = afmt_open(MPI_COMM_SELF, c->path, AFMT_RDWR, c->o, &c->f);
    if (rc != AFMT_OK && c->f) bad(__LINE__, "afmt_open failed but returned a handle");
    return rc;
}

static int setup_create(ctx *c) {
    static unsigned serial;
    snprintf(c->path, sizeof c->path, "oom-create-%u", serial++);
    return AFMT_OK;
}

static int op_create(ctx *c) {
    int rc = afmt_create(MPI_COMM_SELF, c->path, AFMT_TRUNC, c->o, &c->f);
    if (rc != AFMT_OK && c->f) bad(__LINE__, "afmt_create failed but returned a handle");
    return rc;
}

static int op_commit(ctx *c) {
    return afmt_commit(c->f);
}

static int op_discard(ctx *c) {
    return afmt_discard(c->f);
}

static int op_footer(ctx *c) {
    afmt_layer L;
    char msg[AFMT_ERRMSG_MAX];
    int rc = afmt__footer_decode(c->footer, c->footer_len, &L, msg);
    if (rc == AFMT_OK) afmt__layer_free(&L);
    return rc;
}

/* After the call succeeded (first time or redone): record its effect in the model. */
static void after_write_full(ctx *c) {
    (void)c;
    model_box(8, 16, 0, C, 2);
}

static void after_write_partial(ctx *c) {
    (void)c;
    model_box(3, 7, 5, 20, 3);
}

static void after_write_over_full(ctx *c) {
    (void)c;
    model_box(10, 9, 7, 30, 3);
}

static void after_discard(ctx *c) {
    (void)c;
    model_box(0, R, 0, C, 1); /* back to layer 1 */
}

static void after_create(ctx *c) {
    uint64_t shape[2] = {R, C}, chunk[2] = {8, 16};
    CHECK_OK(c->f, afmt_define(c->f, "a", AFMT_UINT64, 2, shape, chunk, NULL, NULL));
    CHECK_OK(c->f, write_box(c->f, 0, R, 0, C, 1));
    int64_t step = 1;
    CHECK_OK(c->f, afmt_set_attr(c->f, NULL, "step", AFMT_INT64, 1, &step));
    model_box(0, R, 0, C, 1);
}

static void after_create_empty(ctx *c) {
    after_create(c);
}

/* What must hold of a handle (and, reopened, of the file) after each call. */
static void expect_extras(afmt_file *f, const char *which, const char *what, int line) {
    afmt_info info;
    int want_n = strchr(which, 'n') != NULL, want_u = strchr(which, 'u') != NULL;
    int want_s = strchr(which, 's') != NULL;
    int rc = afmt_inquire(f, "n", &info);
    if (want_n &&
        (rc != AFMT_OK || info.ndim != 2 || info.shape[1] != 12 || strcmp(info.dims[0], "y") != 0))
        bad(line, "%s: array n: %d: %s", what, rc, afmt_errmsg(f));
    if (!want_n && rc != AFMT_ENOTFOUND) bad(line, "%s: array n exists (%d)", what, rc);
    rc = afmt_inquire(f, "s", &info);
    if (want_s != (rc == AFMT_OK)) bad(line, "%s: array s: %d", what, rc);
    if (want_n) {
        int32_t x[2] = {0, 0};
        uint64_t st[2] = {9, 10}, ct[2] = {1, 2};
        rc = afmt_read(f, "n", st, ct, x);
        if (rc != AFMT_OK || x[0] != -1 || x[1] != -1)
            bad(line, "%s: array n does not read as its fill: %d", what, rc);
    }
    char units[8] = "";
    uint64_t n = sizeof units;
    rc = afmt_get_attr(f, "a", "units", AFMT_UINT8, &n, units);
    if (want_u && (rc != AFMT_OK || n != 5 || memcmp(units, "meter", 5) != 0))
        bad(line, "%s: attribute units: %d: %s", what, rc, afmt_errmsg(f));
    if (!want_u && rc != AFMT_ENOTFOUND) bad(line, "%s: attribute units exists (%d)", what, rc);
    int64_t step = 0;
    n = 1;
    rc = afmt_get_attr(f, NULL, "step", AFMT_INT64, &n, &step);
    if (rc != AFMT_OK || step != 1) bad(line, "%s: attribute step: %d", what, rc);
}

typedef struct {
    const char *id; /* the command-line name */
    const char *name;
    int (*setup)(ctx *);
    int (*op)(ctx *);
    void (*after)(ctx *);
    const char *extras; /* what exists afterwards: n (array), s (array), u (attribute) */
} scenario;

static const scenario scenarios[] = {
    {"define", "afmt_define", setup_open, op_define, NULL, "n"},
    {"define_first", "afmt_define (first array)", setup_empty, op_define, after_create_empty, "n"},
    {"set_attr", "afmt_set_attr", setup_open, op_set_attr, NULL, "u"},
    {"write_full", "afmt_write (whole chunks)", setup_open, op_write_full, after_write_full, ""},
    {"write_first", "afmt_write (first write of a handle)", setup_reopened, op_write_full,
     after_write_full, ""},
    {"write_partial", "afmt_write (partial chunks)", setup_open, op_write_partial,
     after_write_partial, ""},
    {"write_over_full", "afmt_write (partial, into staged whole chunks)", setup_staged_full,
     op_write_over_full, after_write_over_full, ""},
    {"read_committed", "afmt_read (committed)", setup_open, op_read, NULL, ""},
    {"read_staged", "afmt_read (own staged writes)", setup_staged, op_read, NULL, "su"},
    {"open", "afmt_open", setup_closed, op_open, NULL, ""},
    {"create", "afmt_create", setup_create, op_create, after_create, ""},
    {"commit", "afmt_commit", setup_staged, op_commit, NULL, "su"},
    {"discard", "afmt_discard", setup_staged, op_discard, after_discard, ""},
    {"footer_decode", "afmt__footer_decode", setup_footer, op_footer, NULL, NULL},
};

static void teardown(ctx *c) {
    if (c->f) {
        int rc = afmt_close(c->f);
        if (rc != AFMT_OK) bad(__LINE__, "afmt_close -> %d: %s", rc, afmt_errmsg(NULL));
    }
    if (c->path[0]) afmt__storage_remove(AFMT_STORAGE_MEMORY, c->path, NULL);
    afmt_opts_free(c->o);
    free(c->footer);
    memset(c, 0, sizeof *c);
}

/* The state after the call (and its effects) on the handle, then committed and reopened. */
static void check_after(const scenario *s, ctx *c) {
    if (!s->extras) return; /* footer_decode: no handle */
    if (!c->f) {
        bad(__LINE__, "no handle after the call");
        return;
    }
    check_a(c->f, "through the handle", __LINE__);
    if (s->op == op_read) {
        int wrong = 0;
        for (int i = 0; i < R * C; i++) wrong += c->buf[i] != model[i];
        if (wrong) bad(__LINE__, "the read returned %d wrong elements", wrong);
    }
    expect_extras(c->f, s->extras, "through the handle", __LINE__);
    CHECK_OK(c->f, afmt_commit(c->f));
    CHECK_OK(NULL, afmt_close(c->f));
    c->f = NULL;
    int rc = afmt_open(MPI_COMM_SELF, c->path, AFMT_RDONLY, c->o, &c->f);
    if (rc != AFMT_OK) {
        bad(__LINE__, "reopen -> %d: %s", rc, afmt_errmsg(NULL));
        return;
    }
    check_a(c->f, "reopened", __LINE__);
    expect_extras(c->f, s->extras, "reopened", __LINE__);
}

/* A commit whose allocations fail from the n-th on, for every n: it fails before its
 * durable point (the handle as before), or after it with the repair (reloading the
 * index) failing too: then the handle is stale. A stale handle answers AFMT_ESTATE to
 * everything but afmt_close, closes cleanly, and the file holds the new layer. Returns
 * the number of rounds that ended stale (the test fails if none did). */
static unsigned long run_stale(void) {
    unsigned long stale = 0, n;
    g_scenario = "afmt_commit (allocations fail from one on)";
    for (n = 1;; n++) {
        g_n = n;
        ctx c;
        memset(&c, 0, sizeof c);
        if (setup_staged(&c) != AFMT_OK) {
            bad(__LINE__, "setup failed: %s", afmt_errmsg(NULL));
            teardown(&c);
            break;
        }
        oom_arm(n, 1);
        int rc = afmt_commit(c.f);
        oom_disarm();
        if (!oom_injected()) { /* the commit needs fewer than n allocations */
            if (rc != AFMT_OK) bad(__LINE__, "without a failure -> %d: %s", rc, afmt_errmsg(c.f));
            teardown(&c);
            break;
        }
        if (rc == AFMT_OK) { /* the repair needed no allocation that failed */
            check_a(c.f, "after a repaired commit", __LINE__);
            teardown(&c);
            continue;
        }
        if (rc != AFMT_ENOMEM) bad(__LINE__, "-> %d, want AFMT_ENOMEM: %s", rc, afmt_errmsg(c.f));
        if (!strstr(afmt_errmsg(c.f), "reloading the file failed too")) {
            /* Failed before the durable point: the handle keeps its staged changes. */
            CHECK_OK(c.f, afmt_commit(c.f));
            check_a(c.f, "after a failed, retried commit", __LINE__);
            teardown(&c);
            continue;
        }
        stale++;
        uint64_t st[2] = {0, 0}, ct[2] = {1, 1}, one;
        int r1 = afmt_commit(c.f), r2 = afmt_read(c.f, "a", st, ct, &one);
        if (r1 != AFMT_ESTATE || r2 != AFMT_ESTATE)
            bad(__LINE__, "a stale handle: commit -> %d, read -> %d, want AFMT_ESTATE", r1, r2);
        if (!strstr(afmt_errmsg(NULL), "reopen"))
            bad(__LINE__, "the stale handle's message does not say to reopen: %s",
                afmt_errmsg(NULL));
        afmt_file *old = c.f;
        c.f = NULL;
        CHECK_OK(NULL, afmt_close(old));
        CHECK_OK(NULL, afmt_open(MPI_COMM_SELF, c.path, AFMT_RDWR, c.o, &c.f));
        if (c.f) {
            check_a(c.f, "reopened after a stale handle", __LINE__);
            expect_extras(c.f, "su", "reopened after a stale handle", __LINE__);
        }
        teardown(&c);
    }
    if (stale == 0) bad(__LINE__, "no round reached a stale handle: the test proves nothing");
    printf("test_oom: %-32s %4lu rounds, %lu ended with a stale handle\n",
           "afmt_commit (fail from n on)", n - 1, stale);
    return n - 1;
}

/* Returns the number of failures injected into the scenario; only > 0: that round alone. */
static unsigned long run(const scenario *s, unsigned long only) {
    unsigned long injected = 0, n = only ? only : 1;
    g_scenario = s->name;
    int trace = getenv("AFMT_OOM_TRACE") != NULL;
    for (;; n++) {
        if (only && n != only) break;
        if (trace) {
            fprintf(stderr, "test_oom: %s: failing allocation %lu\n", s->id, n);
            fflush(stderr);
        }
        g_n = n;
        ctx c;
        memset(&c, 0, sizeof c);
        if (s->setup && s->setup(&c) != AFMT_OK) {
            bad(__LINE__, "setup failed: %s", afmt_errmsg(NULL));
            teardown(&c);
            break;
        }
        if (!c.o) c.o = mem_opts();
        oom_arm(n, 0);
        int rc = s->op(&c);
        oom_disarm();
        if (!oom_injected()) { /* the call needs fewer than n allocations: done */
            if (rc != AFMT_OK) bad(__LINE__, "without a failure -> %d: %s", rc, afmt_errmsg(c.f));
            if (s->after) s->after(&c);
            check_after(s, &c);
            teardown(&c);
            break;
        }
        injected++;
        if (trace) {
            fprintf(stderr, "test_oom: %s: allocation %lu failed: -> %d: %s\n", s->id, n, rc,
                    rc ? afmt_errmsg(c.f) : "");
            fflush(stderr);
        }
        char msg[AFMT_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s", rc ? afmt_errmsg(c.f) : "");
        if (rc != AFMT_OK && !msg[0]) bad(__LINE__, "-> %d without a message", rc);
        if (rc != AFMT_OK && rc != AFMT_ENOMEM) {
            bad(__LINE__, "-> %d (%s), want AFMT_OK or AFMT_ENOMEM: %s", rc, afmt_strerror(rc),
                afmt_errmsg(c.f));
        } else if (rc == AFMT_ENOMEM) {
            /* The same call again, without failures: the handle is still usable. */
            rc = s->op(&c);
            if (rc != AFMT_OK) {
                bad(__LINE__, "redone after AFMT_ENOMEM -> %d (%s): %s", rc, afmt_strerror(rc),
                    afmt_errmsg(c.f));
                teardown(&c);
                continue;
            }
        }
        if (rc == AFMT_OK) {
            if (s->after) s->after(&c);
            check_after(s, &c);
        }
        teardown(&c);
        if (n > 100000) {
            bad(__LINE__, "more than 100000 allocations?");
            break;
        }
    }
    printf("test_oom: %-32s %4lu allocations failed in turn\n", s->name, injected);
    fflush(stdout);
    return injected;
}

/* test_oom [SCENARIO [N]]: all scenarios, one, or one round of one (to reproduce). */
int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    unsigned long total = 0;
    size_t ns = sizeof scenarios / sizeof scenarios[0], ran = 0;
    unsigned long only = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
    for (size_t i = 0; i < ns; i++) {
        if (argc > 1 && strcmp(argv[1], scenarios[i].id) != 0) continue;
        total += run(&scenarios[i], only);
        ran++;
    }
    if (argc == 1 || strcmp(argv[1], "stale") == 0) {
        total += run_stale();
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "test_oom: no scenario \"%s\"; one of:", argv[1]);
        for (size_t i = 0; i < ns; i++) fprintf(stderr, " %s", scenarios[i].id);
        fputc('\n', stderr);
        g_bad++;
    }
    printf("test_oom: %lu allocation failures injected in %zu scenario(s): %s\n", total, ran,
           g_bad ? "FAILED" : "passed");
    MPI_Finalize();
    return g_bad ? 1 : 0;
}
