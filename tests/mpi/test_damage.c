/* Damaged files (issue 6, "Reads"): a small but complete file (2 layers, several arrays
 * and dtypes, a delete, attributes, chunks of layer 1 still live under layer 2, several
 * LZ4 and raw blocks) is written to the scratch directory; then single bits of a copy are
 * flipped, one trial each: every bit of every byte on the memory backend (the same
 * parse and checks as on disk: the image is the file's bytes), then bit 0x01 at every 11th
 * byte and 0x80 at every 97th on the default backend (MPI-IO) over a copy in the scratch
 * directory. Each copy is opened and every array of its newest layer read. The outcome
 * of every trial must be one of:
 *
 *   open-corrupt  afmt_open fails with AFMT_ECORRUPT, its message naming what is damaged
 *                 (superblock slot, footer, layer);
 *   read-corrupt  the file opens; some read fails with AFMT_ECORRUPT naming the array and
 *                 chunk; every other read returns exactly the original values;
 *   fallback      the newest superblock slot is damaged: the file opens as the previous
 *                 commit (the other slot) and reads exactly as that commit;
 *   unchanged     the file opens as the newest commit and reads exactly;
 *
 * and the one the damaged region calls for: the newest slot -> fallback, the older slot
 * and the unused bytes of the superblock region -> unchanged, a footer -> open-corrupt, a
 * block that holds a live chunk -> read-corrupt (a block no live chunk uses: unchanged),
 * a trailer -> open-corrupt (afmt_open checks each footer's trailer). Never a
 * wrong value returned as AFMT_OK, never another code, never a crash. Also: the file cut
 * at a sample of lengths -> open-corrupt; bytes appended past the committed end ->
 * unchanged. Counts of bytes tried and of each outcome are printed per region. A cut
 * that keeps the first commit whole falls back to it (the newest slot's eof is past the
 * end: format.md 3.3); a shorter cut -> open-corrupt.
 *
 * Runs on 1 and 2 ranks (returns at once on more): about 4 s on 1 rank, 7 s on 2; a
 * sanitizer build takes a sample (see test_flipped_bits) unless AFMT_DAMAGE_FULL=1. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/file.h"
#include "testutil.h"

/* ---- the file's content -------------------------------------------------------- */

enum { A_TEMP, A_COUNT, A_NOISE, A_GONE, A_STEP, A_NEW, N_ARR };

typedef struct {
    const char *name;
    afmt_dtype dtype;
    size_t esize;
    int ndim;
    uint64_t shape[2], chunk[2];
} arr_spec;

static const arr_spec specs[N_ARR] = {
    {"temp", AFMT_FLOAT64, 8, 2, {48, 40}, {16, 16}},
    {"count", AFMT_INT32, 4, 1, {500}, {64}},
    {"noise", AFMT_UINT8, 1, 1, {300}, {100}},
    {"gone", AFMT_INT16, 2, 1, {100}, {50}},
    {"step", AFMT_INT64, 8, 0, {0}, {0}},
    {"new", AFMT_UINT16, 2, 1, {200}, {64}},
};

#define TEMP_ROWS2 16  /* layer 2 rewrites temp rows [0, 16): chunks 0..2 */
#define COUNT_L1   400 /* layer 1 writes count [0, 400) */
#define COUNT_L2   450 /* layer 2 writes count [400, 450) */
#define COUNT_FILL (-7)

static uint64_t nelems(const arr_spec *s) {
    uint64_t n = 1;
    for (int d = 0; d < s->ndim; d++) n *= s->shape[d];
    return n;
}

static uint8_t noise_at(uint64_t i) {
    uint64_t x = i * 0x9E3779B97F4A7C15ull + 12345;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    return (uint8_t)(x >> 56);
}

/* The value of element i of array a as of layer state (1 or 2) into dst; 0 if the array
 * does not exist in that state. */
static int expected(int a, int state, uint64_t i, void *dst) {
    switch (a) {
    case A_TEMP: {
        double v = state == 2 && i < TEMP_ROWS2 * 40 ? -1.0 * (double)i : 0.5 * (double)i;
        memcpy(dst, &v, 8);
        return 1;
    }
    case A_COUNT: {
        int32_t v = i < COUNT_L1                 ? (int32_t)(i % 13)
                    : state == 2 && i < COUNT_L2 ? (int32_t)(1000 + i)
                                                 : COUNT_FILL;
        memcpy(dst, &v, 4);
        return 1;
    }
    case A_NOISE:
        *(uint8_t *)dst = noise_at(i);
        return 1;
    case A_GONE: {
        int16_t v = (int16_t)((int64_t)i - 50);
        memcpy(dst, &v, 2);
        return state == 1;
    }
    case A_STEP: {
        int64_t v = state;
        memcpy(dst, &v, 8);
        return 1;
    }
    default: {
        uint16_t v = (uint16_t)(2000 + i);
        memcpy(dst, &v, 2);
        return state == 2;
    }
    }
}

/* The whole array a as of state (malloc'd), or NULL if it does not exist then. */
static uint8_t *expected_array(int a, int state) {
    const arr_spec *s = &specs[a];
    uint64_t n = nelems(s);
    uint8_t *buf = malloc((size_t)(n * s->esize));
    assert_non_null(buf);
    for (uint64_t i = 0; i < n; i++) {
        if (!expected(a, state, i, buf + i * s->esize)) {
            free(buf);
            return NULL;
        }
    }
    return buf;
}

/* This rank's share [*lo, *lo + *cnt) of rows [from, to). */
static void share(uint64_t from, uint64_t to, uint64_t *lo, uint64_t *cnt) {
    uint64_t n = to - from, r = (uint64_t)tu_rank(), p = (uint64_t)tu_size();
    *lo = from + n * r / p;
    *cnt = from + n * (r + 1) / p - *lo;
}

/* Writes rows [from, to) (along dim 0) of array a with its values of state. */
static void write_rows(afmt_file *f, int a, int state, uint64_t from, uint64_t to) {
    const arr_spec *s = &specs[a];
    if (s->ndim == 0) {
        uint8_t v[8];
        expected(a, state, 0, v);
        if (tu_rank() == 0) TU_OK(f, afmt_write(f, s->name, NULL, NULL, v));
        return;
    }
    uint64_t row = s->ndim == 2 ? s->shape[1] : 1, lo, cnt;
    share(from, to, &lo, &cnt);
    if (cnt == 0) return;
    uint8_t *buf = malloc((size_t)(cnt * row * s->esize));
    assert_non_null(buf);
    for (uint64_t i = 0; i < cnt * row; i++) expected(a, state, lo * row + i, buf + i * s->esize);
    uint64_t start[2] = {lo, 0}, count[2] = {cnt, row};
    TU_OK(f, afmt_write(f, s->name, start, count, buf));
    free(buf);
}

static void define(afmt_file *f, int a, const void *fill) {
    const arr_spec *s = &specs[a];
    TU_OK(f, afmt_define(f, s->name, s->dtype, s->ndim, s->ndim ? s->shape : NULL,
                         s->ndim ? s->chunk : NULL, NULL, fill));
}

static void write_file(const char *path) {
    afmt_opts *o;
    TU_OK(NULL, afmt_opts_create(&o));
    TU_OK(NULL, afmt_opts_set_codec(o, AFMT_CODEC_LZ4, 0));
    TU_OK(NULL, afmt_opts_set_block_size(o, 1024)); /* several blocks per rank and layer */
    afmt_file *f;
    TU_OK(NULL, afmt_create(MPI_COMM_WORLD, path, 0, o, &f));
    int32_t cfill = COUNT_FILL;
    for (int a = 0; a < N_ARR; a++)
        if (a != A_NEW) define(f, a, a == A_COUNT ? &cfill : NULL);
    write_rows(f, A_TEMP, 1, 0, 48);
    write_rows(f, A_COUNT, 1, 0, COUNT_L1);
    write_rows(f, A_NOISE, 1, 0, 300);
    write_rows(f, A_GONE, 1, 0, 100);
    write_rows(f, A_STEP, 1, 0, 1);
    TU_OK(f, afmt_set_attr(f, NULL, "title", AFMT_UINT8, 6, "damage"));
    TU_OK(f, afmt_set_attr(f, "temp", "units", AFMT_UINT8, 1, "K"));
    float scale[3] = {1.0f, 0.5f, -2.0f};
    TU_OK(f, afmt_set_attr(f, "count", "scale", AFMT_FLOAT32, 3, scale));
    TU_OK(f, afmt_commit(f));
    /* Layer 2: temp chunks 0..2, count chunks 6..7, a delete, a new array. */
    write_rows(f, A_TEMP, 2, 0, TEMP_ROWS2);
    write_rows(f, A_COUNT, 2, COUNT_L1, COUNT_L2);
    TU_OK(f, afmt_delete(f, "gone"));
    define(f, A_NEW, NULL);
    write_rows(f, A_NEW, 2, 0, 200);
    write_rows(f, A_STEP, 2, 0, 1);
    TU_OK(f, afmt_set_attr(f, NULL, "title", AFMT_UINT8, 8, "damage 2"));
    TU_OK(f, afmt_commit(f));
    TU_OK(f, afmt_close(f));
    afmt_opts_free(o);
}

/* ---- regions of the file ------------------------------------------------------------ */

#define MEM_NAME "damage-copy" /* the memory image of the damaged copy */

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

enum {
    R_SLOT_NEW,
    R_SLOT_OLD,
    R_PAD,
    R_BLOCK_LIVE,
    R_BLOCK_DEAD,
    R_FOOTER_NEW,
    R_FOOTER_OLD,
    R_TRAILER,
    R_SEGMENT,
    R_OTHER,
    N_REG
};
static const char *reg_name[N_REG] = {
    "superblock slot (newest)",
    "superblock slot (older)",
    "superblock padding",
    "block (live chunks)",
    "block (no live chunk)",
    "footer (newest layer)",
    "footer (older layer)",
    "trailer",
    "index segment",
    "unaccounted",
};

/* Outcomes of a trial. */
enum { O_OPEN_CORRUPT, O_READ_CORRUPT, O_FALLBACK, O_UNCHANGED, O_BAD, N_OUT };
static const char *out_name[N_OUT] = {"open-corrupt", "read-corrupt", "fallback", "unchanged",
                                      "BAD"};

/* Which outcomes each region allows (bit per outcome). */
static const unsigned reg_allows[N_REG] = {
    1u << O_FALLBACK,
    1u << O_UNCHANGED,
    1u << O_UNCHANGED,
    1u << O_READ_CORRUPT,
    1u << O_UNCHANGED,
    1u << O_OPEN_CORRUPT,
    1u << O_OPEN_CORRUPT,
    1u << O_OPEN_CORRUPT,
    /* afmt_open reads footers only; a read reads the segments it needs (format.md 9.3): a
     * segment that no read of the newest layer consults leaves every value unchanged */
    (1u << O_READ_CORRUPT) | (1u << O_UNCHANGED),
    (1u << O_OPEN_CORRUPT) | (1u << O_READ_CORRUPT) | (1u << O_UNCHANGED),
};

typedef struct {
    uint64_t size;
    uint8_t *region; /* region of each byte */
    uint64_t n_layers, n_blocks, n_live_blocks;
    uint64_t old_layer_id;
    uint64_t old_eof;       /* the committed end of the file after the first commit */
    uint8_t *ref[3][N_ARR]; /* [state][array]: expected content, NULL if absent */
    char path[512];         /* the damaged copy on disk */
    int fd;                 /* rank 0: the copy, open for writing */
    int use_mem;            /* trials on the memory image (else on the copy on disk) */
    afmt_opts *mem_opts;    /* the memory backend */
    uint8_t *cur;           /* the damaged image (every rank) */
    uint64_t cur_len;
    uint64_t counts[N_REG][N_OUT];
    uint64_t trials, bad;
} damage_ctx;

/* Maps every byte of the clean file to its region (from the index of a clean open). */
static void map_regions(damage_ctx *c, const char *clean) {
    afmt_file *f;
    TU_OK(NULL, afmt_open(MPI_COMM_WORLD, clean, AFMT_RDONLY, NULL, &f));
    char why[AFMT_ERRMSG_MAX];
    assert_int_equal(afmt__index_load_all(&f->idx, why), AFMT_OK); /* every block listed */
    c->region = malloc((size_t)c->size);
    assert_non_null(c->region);
    memset(c->region, R_OTHER, (size_t)c->size);
    uint64_t slot_new = afmt__super_slot_offset(f->super.generation);
    uint64_t slot_old = afmt__super_slot_offset(f->super.generation + 1);
    memset(c->region, R_PAD, AFMT_SUPER_REGION);
    memset(c->region + slot_new, R_SLOT_NEW, AFMT_SLOT_SIZE);
    memset(c->region + slot_old, R_SLOT_OLD, AFMT_SLOT_SIZE);
    c->n_layers = f->idx.n_layers;
    c->n_blocks = f->idx.n_blocks;
    assert_int_equal(c->n_layers, 2);
    c->old_layer_id = f->idx.layers[0].layer_id;
    c->old_eof =
        f->idx.layers[0].footer_offset + f->idx.layers[0].footer_length + AFMT_TRAILER_SIZE;
    for (uint64_t k = 0; k < f->idx.n_layers; k++) {
        const afmt_layer_info *li = &f->idx.layers[k];
        assert_true(li->footer_offset + li->footer_length + AFMT_TRAILER_SIZE <= c->size);
        memset(c->region + li->footer_offset,
               k + 1 == f->idx.n_layers ? R_FOOTER_NEW : R_FOOTER_OLD, (size_t)li->footer_length);
        memset(c->region + li->footer_offset + li->footer_length, R_TRAILER, AFMT_TRAILER_SIZE);
        /* The layer's index segments (format v2), from its footer's root table. */
        uint8_t *fb = malloc((size_t)li->footer_length);
        assert_non_null(fb);
        assert_int_equal(f->st->ops->read_at(f->st, li->footer_offset, fb, li->footer_length),
                         AFMT_OK);
        afmt_layer L;
        char msg[AFMT_ERRMSG_MAX];
        assert_int_equal(afmt__footer_decode(fb, li->footer_length, &L, msg), AFMT_OK);
        assert_int_equal(L.n_segs, li->n_segs);
        for (uint64_t g = 0; g < L.n_segs; g++)
            memset(c->region + L.segs[g].offset, R_SEGMENT, (size_t)L.segs[g].length);
        afmt__layer_free(&L);
        free(fb);
    }
    for (uint64_t b = 0; b < f->idx.n_blocks; b++) {
        const afmt_iblock *ib = &f->idx.blocks[b];
        assert_true(ib->b.offset + ib->b.stored_size <= c->size);
        int live = ib->nlive > 0;
        c->n_live_blocks += (uint64_t)live;
        memset(c->region + ib->b.offset, live ? R_BLOCK_LIVE : R_BLOCK_DEAD,
               (size_t)ib->b.stored_size);
    }
    TU_OK(f, afmt_close(f));
    /* The writer leaves no gaps: every byte is in a known region. */
    for (uint64_t i = 0; i < c->size; i++)
        if (c->region[i] == R_OTHER)
            fail_msg("byte %llu of the file is in no region", (unsigned long long)i);
}

/* Reads every array of the handle; returns the outcome for a handle at state. */
static int read_all(afmt_file *f, const damage_ctx *c, int state, char *why, size_t whylen) {
    int corrupt = 0;
    for (int a = 0; a < N_ARR; a++) {
        const arr_spec *s = &specs[a];
        afmt_info info;
        int rc = afmt_inquire(f, s->name, &info);
        if (!c->ref[state][a]) {
            if (rc != AFMT_ENOTFOUND) {
                snprintf(why, whylen, "array %s should not exist (inquire -> %d)", s->name, rc);
                return O_BAD;
            }
            continue;
        }
        if (rc != AFMT_OK) {
            snprintf(why, whylen, "inquire(%s) -> %d: %s", s->name, rc, afmt_errmsg(f));
            return O_BAD;
        }
        uint64_t bytes = nelems(s) * s->esize, start[2] = {0, 0};
        uint8_t buf[48 * 40 * 8];
        assert_true(bytes <= sizeof buf);
        memset(buf, 0xA5, (size_t)bytes);
        rc = afmt_read(f, s->name, s->ndim ? start : NULL, s->ndim ? s->shape : NULL, buf);
        if (rc == AFMT_OK) {
            if (memcmp(buf, c->ref[state][a], (size_t)bytes) != 0) {
                snprintf(why, whylen, "read(%s) returned AFMT_OK with wrong values", s->name);
                return O_BAD;
            }
            continue;
        }
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\"", s->name);
        const char *m = afmt_errmsg(f);
        if (rc != AFMT_ECORRUPT || !strstr(m, quoted) || !strstr(m, "chunk")) {
            snprintf(why, whylen, "read(%s) -> %d (%s): %s", s->name, rc, afmt_strerror(rc), m);
            return O_BAD;
        }
        corrupt = 1;
    }
    return corrupt ? O_READ_CORRUPT : -1;
}

/* One trial on the damaged copy (as it is now): opens and reads on every rank. */
static int trial(damage_ctx *c, char *why, size_t whylen) {
    why[0] = 0;
    afmt_file *f = NULL;
    int rc = afmt_open(MPI_COMM_WORLD, c->use_mem ? MEM_NAME : c->path, AFMT_RDONLY,
                       c->use_mem ? c->mem_opts : NULL, &f);
    int out;
    if (rc != AFMT_OK) {
        const char *m = afmt_errmsg(NULL);
        if (rc == AFMT_ECORRUPT && f == NULL &&
            (strstr(m, "superblock") || strstr(m, "footer") || strstr(m, "layer"))) {
            out = O_OPEN_CORRUPT;
        } else {
            snprintf(why, whylen, "open -> %d (%s): %s", rc, afmt_strerror(rc), m);
            out = O_BAD;
        }
    } else {
        uint64_t nl = 0, id = 0;
        TU_OK(f, afmt_layers(f, &nl));
        int state = nl == c->n_layers ? 2 : 1;
        if (nl != c->n_layers && nl != 1) {
            snprintf(why, whylen, "opened with %llu layers", (unsigned long long)nl);
            out = O_BAD;
        } else if (state == 1 &&
                   (afmt_layer_id(f, 0, &id, NULL) != AFMT_OK || id != c->old_layer_id)) {
            snprintf(why, whylen, "opened an unknown older layer %llu", (unsigned long long)id);
            out = O_BAD;
        } else {
            out = read_all(f, c, state, why, whylen);
            if (out < 0) out = state == 2 ? O_UNCHANGED : O_FALLBACK;
        }
        rc = afmt_close(f);
        if (rc != AFMT_OK) {
            snprintf(why, whylen, "close -> %d", rc);
            out = O_BAD;
        }
    }
    /* Every rank must have seen the same. */
    int lo = out, hi = out;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (lo != hi) {
        if (!why[0]) snprintf(why, whylen, "ranks disagree (outcomes %d..%d)", lo, hi);
        out = O_BAD;
    }
    return out;
}

/* Memory images are per process: every rank stores the same damaged image. */
static void mem_store(damage_ctx *c) {
    TU_OK(NULL, afmt__storage_mem_put(MEM_NAME, c->cur, c->cur_len));
}

static void set_byte(damage_ctx *c, uint64_t off, uint8_t v) {
    c->cur[off] = v;
    if (c->use_mem) {
        mem_store(c);
        return;
    }
    if (tu_rank() == 0) assert_int_equal(pwrite(c->fd, &v, 1, (off_t)off), 1);
    MPI_Barrier(MPI_COMM_WORLD);
}

static void record(damage_ctx *c, int reg, int out, const char *what, const char *why) {
    c->trials++;
    c->counts[reg][out]++;
    if (out == O_BAD || !(reg_allows[reg] & (1u << out))) {
        c->bad++;
        if (tu_rank() == 0 && c->bad <= 20)
            fprintf(stderr, "damage: %s (%s): %s%s%s\n", what, reg_name[reg], out_name[out],
                    why[0] ? ": " : "", why);
    }
}

static void flip_sweep(damage_ctx *c, const uint8_t *img, uint8_t bit, uint64_t stride) {
    char why[AFMT_ERRMSG_MAX + 128], what[64];
    for (uint64_t off = 0; off < c->size; off++) {
        /* Every stride-th byte, and the first byte of each region (each block, footer...). */
        if (off % stride != 0 && off > 0 && c->region[off] == c->region[off - 1]) continue;
        set_byte(c, off, (uint8_t)(img[off] ^ bit));
        int out = trial(c, why, sizeof why);
        snprintf(what, sizeof what, "byte %llu ^ 0x%02x", (unsigned long long)off, bit);
        record(c, c->region[off], out, what, why);
        if (!c->use_mem) MPI_Barrier(MPI_COMM_WORLD);
        set_byte(c, off, img[off]);
    }
}

/* Makes the damaged image the first len bytes of img plus extra bytes of 0x5a
 * (extra <= AFMT_SUPER_REGION). */
static void rewrite(damage_ctx *c, const uint8_t *img, uint64_t len, uint64_t extra) {
    memcpy(c->cur, img, (size_t)len);
    memset(c->cur + len, 0x5a, (size_t)extra);
    c->cur_len = len + extra;
    if (c->use_mem) {
        mem_store(c);
        return;
    }
    if (tu_rank() == 0) {
        assert_int_equal(ftruncate(c->fd, 0), 0);
        assert_int_equal(pwrite(c->fd, c->cur, (size_t)c->cur_len, 0), (ssize_t)c->cur_len);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

static void print_table(const damage_ctx *c, const char *backend, uint64_t trials, uint64_t cuts,
                        const uint64_t *stride, double secs) {
    if (tu_rank() != 0) return;
    char bits[256] = "";
    int all = 1;
    for (int k = 0; k < 8; k++) all &= stride[k] == 1;
    if (all) snprintf(bits, sizeof bits, "every bit of every byte");
    for (int k = 0; k < 8 && !all; k++)
        if (stride[k])
            snprintf(bits + strlen(bits), sizeof bits - strlen(bits), "%s0x%02x every %llu bytes",
                     bits[0] ? ", " : "", 1u << k, (unsigned long long)stride[k]);
    printf("damage: %s backend, %d rank(s): %llu trials in %.1f s, %llu not as required so far: "
           "%llu flipped bits (%s; and the first byte of every region), %llu cuts, 1 "
           "appended tail\n",
           backend, tu_size(), (unsigned long long)trials, secs, (unsigned long long)c->bad,
           (unsigned long long)(trials - cuts - 1), bits, (unsigned long long)cuts);
    printf("damage: %-26s %8s", "region", "flips");
    for (int o = 0; o < N_OUT; o++) printf(" %13s", out_name[o]);
    printf("\n");
    for (int r = 0; r < N_REG; r++) {
        uint64_t n = 0;
        for (int o = 0; o < N_OUT; o++) n += c->counts[r][o];
        if (!n) continue;
        printf("damage: %-26s %8llu", reg_name[r], (unsigned long long)n);
        for (int o = 0; o < N_OUT; o++) printf(" %13llu", (unsigned long long)c->counts[r][o]);
        printf("\n");
    }
    fflush(stdout);
}

/* Every kind of damage on one backend: bit 1 << k flipped at every stride[k]-th byte (0:
 * not that bit), the file cut at a sample of lengths, garbage appended. */
static void sweep(damage_ctx *c, const uint8_t *img, int use_mem, const uint64_t *stride) {
    const char *backend = use_mem ? "memory" : "MPI-IO";
    uint64_t trials0 = c->trials, cut_trials = 0;
    memset(c->counts, 0, sizeof c->counts);
    c->use_mem = use_mem;
    rewrite(c, img, c->size, 0);
    char why[AFMT_ERRMSG_MAX + 128], what[64];
    /* The undamaged copy reads as the newest commit, its older layer as commit 1. */
    int out = trial(c, why, sizeof why);
    if (out != O_UNCHANGED) fail_msg("%s: the clean file: %s: %s", backend, out_name[out], why);
    afmt_file *f;
    TU_OK(NULL, afmt_open_layer(MPI_COMM_WORLD, use_mem ? MEM_NAME : c->path, c->old_layer_id,
                                use_mem ? c->mem_opts : NULL, &f));
    assert_int_equal(read_all(f, c, 1, why, sizeof why), -1);
    TU_OK(f, afmt_close(f));

    double t0 = MPI_Wtime();
    for (int k = 0; k < 8; k++)
        if (stride[k]) flip_sweep(c, img, (uint8_t)(1u << k), stride[k]);
    /* A stride must still reach every region of the file. */
    for (int r = 0; r < N_REG; r++) {
        int present = 0;
        uint64_t n = 0;
        for (uint64_t i = 0; i < c->size && !present; i++) present = c->region[i] == r;
        for (int o = 0; o < N_OUT; o++) n += c->counts[r][o];
        if (present && n == 0) fail_msg("%s: no byte of region %s was tried", backend, reg_name[r]);
    }

    /* Cut short: the newest slot names an end beyond the file, so it is not usable
     * (format.md 3.3); the file opens as the first commit if it is all there, else not. */
    static const uint64_t cuts[] = {0, 1, 127, 128, 2048, 2175, 2176, 4095, 4096, 4097};
    const size_t ncuts = sizeof cuts / sizeof cuts[0];
    for (size_t i = 0; i < ncuts + 64; i++) {
        uint64_t len = i < ncuts ? cuts[i] : 4096 + (c->size - 4096) * (i - ncuts) / 64;
        if (len >= c->size) continue;
        rewrite(c, img, len, 0);
        out = trial(c, why, sizeof why);
        c->trials++;
        cut_trials++;
        if (out != (len >= c->old_eof ? O_FALLBACK : O_OPEN_CORRUPT)) {
            c->bad++;
            snprintf(what, sizeof what, "cut at %llu", (unsigned long long)len);
            if (tu_rank() == 0)
                fprintf(stderr, "damage: %s: %s: %s: %s\n", backend, what, out_name[out], why);
        }
    }
    /* Garbage past the committed end (an interrupted commit's tail) changes nothing. */
    rewrite(c, img, c->size, AFMT_SUPER_REGION);
    out = trial(c, why, sizeof why);
    c->trials++;
    if (out != O_UNCHANGED) {
        c->bad++;
        if (tu_rank() == 0)
            fprintf(stderr, "damage: %s: appended bytes: %s: %s\n", backend, out_name[out], why);
    }
    print_table(c, backend, c->trials - trials0, cut_trials, stride, MPI_Wtime() - t0);
}

static void test_flipped_bits(void **state) {
    (void)state;
    if (tu_size() > 2) {
        if (tu_rank() == 0) printf("damage: runs on 1 and 2 ranks only\n");
        return;
    }
    damage_ctx c;
    memset(&c, 0, sizeof c);
    c.fd = -1;
    const char *clean = tu_path(NULL, "damage");
    write_file(clean);
    snprintf(c.path, sizeof c.path, "%s", tu_path(NULL, "damage-copy"));

    /* The clean image (every rank reads it: small). */
    FILE *fp = fopen(clean, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    c.size = (uint64_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *img = malloc((size_t)c.size);
    c.cur = malloc((size_t)c.size + AFMT_SUPER_REGION);
    assert_non_null(img);
    assert_non_null(c.cur);
    assert_int_equal(fread(img, 1, (size_t)c.size, fp), c.size);
    fclose(fp);
    map_regions(&c, clean);
    if (tu_rank() == 0)
        printf("damage: file %llu bytes, %llu layers, %llu blocks (%llu with live chunks)\n",
               (unsigned long long)c.size, (unsigned long long)c.n_layers,
               (unsigned long long)c.n_blocks, (unsigned long long)c.n_live_blocks);
    for (int s = 1; s <= 2; s++)
        for (int a = 0; a < N_ARR; a++) c.ref[s][a] = expected_array(a, s);
    TU_OK(NULL, afmt_opts_create(&c.mem_opts));
    TU_OK(NULL, afmt__opts_set_backend(c.mem_opts, "memory"));
    if (tu_rank() == 0) {
        c.fd = open(c.path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        assert_true(c.fd >= 0);
    }

    /* Every bit of every byte on the memory backend (the same parse and checks, without a
     * file system), then a sample on the default backend (MPI-IO) over the copy on disk. A
     * sanitizer build (about 50 times slower per open) tries bit 0x01 at every 5th byte and
     * 0x80 at every 35th unless AFMT_DAMAGE_FULL=1. */
    static const uint64_t mem_full[8] = {1, 1, 1, 1, 1, 1, 1, 1},
                          mem_san[8] = {5, 0, 0, 0, 0, 0, 0, 35};
    static const uint64_t io_full[8] = {11, 0, 0, 0, 0, 0, 0, 97},
                          io_san[8] = {55, 0, 0, 0, 0, 0, 0, 485};
    int full = !SANITIZED || getenv("AFMT_DAMAGE_FULL");
    sweep(&c, img, 1, full ? mem_full : mem_san);
    sweep(&c, img, 0, full ? io_full : io_san);

    if (c.fd >= 0) close(c.fd);
    for (int s = 1; s <= 2; s++)
        for (int a = 0; a < N_ARR; a++) free(c.ref[s][a]);
    free(c.region);
    free(c.cur);
    free(img);
    afmt_opts_free(c.mem_opts);
    tu_remove(c.path);
    tu_remove(clean);
    if (c.bad)
        fail_msg("%llu of %llu damaged files were not handled as required",
                 (unsigned long long)c.bad, (unsigned long long)c.trials);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_flipped_bits)};
    return tu_main(argc, argv, "damage", tests, sizeof tests / sizeof tests[0]);
}
