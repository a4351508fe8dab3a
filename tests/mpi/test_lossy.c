/* test_lossy.c - MPI integration: arrays with their own compression (afmt_define_with).
 *  - ZFP accuracy (3-D float64 with edge chunks, 5-D, a scalar), precision, rate and
 *    reversible (NaN, infinities, -0; and on int32), bit rounding with zstd and with the handle's
 * own codec (packed), a lossless per-array codec on an integer array, next to a default array;
 * every rank writes a slab whose edges cut chunks (merged at commit, where the setting applies
 * too): every value within its bound (absolute for accuracy, relative 2^-(k+1) for bit rounding),
 * the lossless ones bit for bit, read through the writer, a reopen on all ranks, on n-1 and on 1;
 * afmt_inquire_codec gives the setting back after a reopen; compaction keeps the values bit for
 * bit; ZFP accuracy makes the smooth field less than half of what LZ4 makes of it;
 *  - afmt_opts_set_check_bounds: float32 at 1e-5 near 300 cannot hold the bound: the write
 *    fails with AFMT_ECODEC naming array, chunk, error and bound (and passes unchecked);
 *  - bad input: ZFP or bit rounding on integer arrays, bit rounding past float32's 23
 *    bits, bounds <= 0, unknown modes, ZFP as a handle codec, NaN under a lossy ZFP mode,
 *    ranks with different settings: each refused with a message naming the array. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/file.h"

#define D0 23 /* rows per rank (the last rank gets 3 more) */
#define D1 19
#define D2 17

static uint64_t rows(void) {
    return (uint64_t)tu_size() * D0 + 3;
}

static double field(uint64_t i, uint64_t j, uint64_t k) {
    return 280.0 + 40.0 * sin(0.07 * (double)i) * cos(0.11 * (double)j) + 0.3 * (double)k;
}

typedef struct {
    const char *name;
    afmt_dtype t;
    int zfp_mode;
    double param; /* ZFP's parameter */
    int keepbits;
    int codec; /* -1: not set */
} lossy_case;

static const lossy_case cases[] = {
    {"acc", AFMT_FLOAT64, AFMT_ZFP_ACCURACY, 1e-3, 0, -1},
    {"prec", AFMT_FLOAT64, AFMT_ZFP_PRECISION, 24, 0, -1},
    {"rate", AFMT_FLOAT32, AFMT_ZFP_RATE, 12, 0, -1},
    {"rev", AFMT_FLOAT32, AFMT_ZFP_REVERSIBLE, 0, 0, -1},
    {"br_zstd", AFMT_FLOAT64, 0, 0, 10, AFMT_CODEC_ZSTD},
    {"br_same", AFMT_FLOAT32, 0, 0, 16, -1},
    {"int_zstd", AFMT_INT32, 0, 0, 0, AFMT_CODEC_ZSTD},
    {"irev", AFMT_INT32, AFMT_ZFP_REVERSIBLE, 0, 0, -1},
    {"plain", AFMT_FLOAT64, 0, 0, 0, -1},
};
#define NCASE ((int)(sizeof cases / sizeof cases[0]))

static afmt_array_opts *opts_of(const lossy_case *c) {
    afmt_array_opts *ao = NULL;
    if (!strcmp(c->name, "plain")) return NULL;
    afmt_array_opts_create(&ao);
    if (c->zfp_mode) afmt_array_opts_set_zfp(ao, (afmt_zfp_mode)c->zfp_mode, c->param);
    if (c->keepbits) afmt_array_opts_set_bitround(ao, c->keepbits);
    if (c->codec >= 0) afmt_array_opts_set_codec(ao, (afmt_codec)c->codec, 3);
    return ao;
}

/* Element (i, j, k) of case c as a double (what was written). */
static double value(const lossy_case *c, uint64_t i, uint64_t j, uint64_t k) {
    double v = field(i, j, k);
    if (c->t == AFMT_INT32) return (double)(int32_t)(v * 1000);
    if (c->t == AFMT_FLOAT32) return (double)(float)v;
    return v;
}

static void put(const lossy_case *c, void *buf, uint64_t at, double v, int special) {
    if (c->t == AFMT_FLOAT64) ((double *)buf)[at] = v;
    if (c->t == AFMT_FLOAT32) ((float *)buf)[at] = (float)v;
    if (c->t == AFMT_INT32) ((int32_t *)buf)[at] = (int32_t)v;
    /* reversible keeps NaN, infinities and -0: a few of them */
    if (special && c->t == AFMT_FLOAT32)
        ((float *)buf)[at] = at % 3 == 0 ? NAN : at % 3 == 1 ? -INFINITY : -0.0f;
}

static int is_special(const lossy_case *c, uint64_t i, uint64_t j, uint64_t k) {
    return !strcmp(c->name, "rev") && j == 3 && k < 3 && i % 5 == 0;
}

/* Writes this rank's rows of every case and s5 (5-D) and sc (scalar); commits. */
static void write_all(afmt_file *f, int line) {
    const uint64_t shape[3] = {rows(), D1, D2}, chunk[3] = {8, 7, 9};
    for (int c = 0; c < NCASE; c++) {
        afmt_array_opts *ao = opts_of(&cases[c]);
        EXPECT_OK_AT(
            line, f,
            afmt_define_with(f, cases[c].name, cases[c].t, 3, shape, chunk, NULL, NULL, ao));
        afmt_array_opts_free(ao);
    }
    uint64_t r0 = (uint64_t)tu_rank() * D0, nr = D0 + (tu_rank() == tu_size() - 1 ? 3 : 0);
    double *buf = malloc(nr * D1 * D2 * sizeof(double));
    for (int c = 0; c < NCASE; c++) {
        for (uint64_t i = 0; i < nr; i++)
            for (uint64_t j = 0; j < D1; j++)
                for (uint64_t k = 0; k < D2; k++)
                    put(&cases[c], buf, (i * D1 + j) * D2 + k, value(&cases[c], r0 + i, j, k),
                        is_special(&cases[c], r0 + i, j, k));
        const uint64_t st[3] = {r0, 0, 0}, ct[3] = {nr, D1, D2};
        EXPECT_OK_AT(line, f, afmt_write(f, cases[c].name, st, ct, buf));
    }
    free(buf);
    /* A 5-D ZFP array and a scalar one, written by rank 0. */
    afmt_array_opts *ao = NULL;
    afmt_array_opts_create(&ao);
    afmt_array_opts_set_zfp(ao, AFMT_ZFP_ACCURACY, 1e-6);
    const uint64_t s5[5] = {3, 4, 5, 6, 7}, c5[5] = {2, 3, 4, 5, 6};
    EXPECT_OK_AT(line, f, afmt_define_with(f, "s5", AFMT_FLOAT64, 5, s5, c5, NULL, NULL, ao));
    EXPECT_OK_AT(line, f, afmt_define_with(f, "sc", AFMT_FLOAT64, 0, NULL, NULL, NULL, NULL, ao));
    afmt_array_opts_free(ao);
    if (tu_rank() == 0) {
        double v5[2520], sc = 1234.5678;
        for (int i = 0; i < 2520; i++) v5[i] = sin(0.01 * i);
        const uint64_t z5[5] = {0};
        EXPECT_OK_AT(line, f, afmt_write(f, "s5", z5, s5, v5));
        EXPECT_OK_AT(line, f, afmt_write(f, "sc", NULL, NULL, &sc));
    }
    EXPECT_OK_AT(line, f, afmt_commit(f));
}

/* Every value of every case within its bound (exact for the lossless ones). */
static void check_all_values(afmt_file *f, const char *what, int line) {
    const uint64_t st[3] = {0, 0, 0}, ct[3] = {rows(), D1, D2};
    uint64_t n = rows() * D1 * D2;
    double *buf = malloc(n * sizeof(double));
    for (int c = 0; c < NCASE; c++) {
        const lossy_case *lc = &cases[c];
        EXPECT_OK_AT(line, f, afmt_read(f, lc->name, st, ct, buf));
        double abs_bound = lc->zfp_mode == AFMT_ZFP_ACCURACY ? lc->param : 0;
        double rel_bound = lc->keepbits                         ? ldexp(1.0, -lc->keepbits - 1)
                           : lc->zfp_mode == AFMT_ZFP_PRECISION ? 1e-3
                           : lc->zfp_mode == AFMT_ZFP_RATE      ? 0.05
                                                                : 0;
        int bad = 0;
        for (uint64_t i = 0; i < rows() && !bad; i++)
            for (uint64_t j = 0; j < D1 && !bad; j++)
                for (uint64_t k = 0; k < D2 && !bad; k++) {
                    uint64_t at = (i * D1 + j) * D2 + k;
                    double want = value(lc, i, j, k), got = 0;
                    if (lc->t == AFMT_FLOAT64) got = buf[at];
                    if (lc->t == AFMT_FLOAT32) got = (double)((float *)buf)[at];
                    if (lc->t == AFMT_INT32) got = (double)((int32_t *)buf)[at];
                    if (is_special(lc, i, j, k)) {
                        float g = ((float *)buf)[at]; /* the special put wrote there */
                        float exp_sp = at % 3 == 0 ? NAN : at % 3 == 1 ? -INFINITY : -0.0f;
                        if (memcmp(&g, &exp_sp, 4) != 0 && !(isnan(g) && isnan(exp_sp))) bad = 1;
                        continue;
                    }
                    if (lc->keepbits && !bad) { /* rounded: the dropped mantissa bits are 0 */
                        uint64_t u = 0, mask;
                        if (lc->t == AFMT_FLOAT64) {
                            memcpy(&u, &buf[at], 8);
                            mask = (1ull << (52 - lc->keepbits)) - 1;
                        } else {
                            uint32_t w;
                            memcpy(&w, &((float *)buf)[at], 4);
                            u = w;
                            mask = (1ull << (23 - lc->keepbits)) - 1;
                        }
                        if (u & mask) {
                            rec(line, "%s: %s[%llu] keeps more than %d mantissa bits", what,
                                lc->name, (unsigned long long)at, lc->keepbits);
                            bad = 1;
                        }
                    }
                    double err = fabs(got - want);
                    int ok = abs_bound   ? err <= abs_bound
                             : rel_bound ? err <= rel_bound * fabs(want)
                                         : memcmp(&got, &want, sizeof got) == 0;
                    if (!ok) {
                        rec(line, "%s: %s[%llu,%llu,%llu] = %.17g, written %.17g (abs %g rel %g)",
                            what, lc->name, (unsigned long long)i, (unsigned long long)j,
                            (unsigned long long)k, got, want, abs_bound, rel_bound);
                        bad = 1;
                    }
                }
    }
    double v5[2520], sc = 0;
    const uint64_t z5[5] = {0}, s5[5] = {3, 4, 5, 6, 7};
    EXPECT_OK_AT(line, f, afmt_read(f, "s5", z5, s5, v5));
    EXPECT_OK_AT(line, f, afmt_read(f, "sc", NULL, NULL, &sc));
    for (int i = 0; i < 2520; i++)
        if (fabs(v5[i] - sin(0.01 * i)) > 1e-6) {
            rec(line, "%s: s5[%d] = %.17g, off by more than 1e-6", what, i, v5[i]);
            break;
        }
    if (fabs(sc - 1234.5678) > 1e-6) rec(line, "%s: sc = %.17g", what, sc);
    free(buf);
}

static void check_codecs(afmt_file *f, int line) {
    afmt_array_codec ac;
    EXPECT_OK_AT(line, f, afmt_inquire_codec(f, "acc", &ac));
    EXPECT(ac.codec == AFMT_CODEC_ZFP && ac.zfp_mode == AFMT_ZFP_ACCURACY && ac.abs_bound == 1e-3 &&
           ac.shuffle == 0);
    EXPECT_OK_AT(line, f, afmt_inquire_codec(f, "br_zstd", &ac));
    EXPECT(ac.codec == AFMT_CODEC_ZSTD && ac.level == 3 && ac.bitround == 10 &&
           ac.rel_bound == ldexp(1.0, -11) && ac.shuffle == 1);
    EXPECT_OK_AT(line, f, afmt_inquire_codec(f, "rev", &ac));
    EXPECT(ac.codec == AFMT_CODEC_ZFP && ac.zfp_mode == AFMT_ZFP_REVERSIBLE && ac.abs_bound == 0);
    EXPECT_OK_AT(line, f, afmt_inquire_codec(f, "plain", &ac));
    EXPECT(ac.codec == UINT32_MAX && ac.bitround == 0);
}

static void test_round_trip(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "lossy");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (f) {
        write_all(f, __LINE__);
        check_all_values(f, "writer", __LINE__);
        check_codecs(f, __LINE__);
        EXPECT_OK(f, afmt_close(f));
    }
    for (int v = 0; v < 3; v++) {
        MPI_Comm c = reopen_comm(v);
        if (c != MPI_COMM_NULL) {
            afmt_file *g = xopen(c, path, 1, AFMT_RDONLY, NULL, __LINE__);
            if (g) {
                check_all_values(g,
                                 v == 0   ? "reopened"
                                 : v == 1 ? "n-1 ranks"
                                          : "1 rank",
                                 __LINE__);
                check_codecs(g, __LINE__);
                EXPECT_OK(g, afmt_close(g));
            }
            MPI_Comm_free(&c);
        }
    }
    /* Compaction: the values bit for bit (ZFP blocks are copied, never encoded again). */
    uint64_t n = rows() * D1 * D2;
    double *before = malloc(n * 8), *after = malloc(n * 8);
    const uint64_t st[3] = {0, 0, 0}, ct[3] = {rows(), D1, D2};
    f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, NULL, __LINE__);
    if (f) {
        EXPECT_OK(f, afmt_read(f, "acc", st, ct, before));
        EXPECT_OK(f, afmt_compact(f));
        EXPECT_OK(f, afmt_read(f, "acc", st, ct, after));
        EXPECT(memcmp(before, after, n * 8) == 0);
        check_all_values(f, "compacted", __LINE__);
        check_codecs(f, __LINE__);
        EXPECT_OK(f, afmt_close(f));
    }
    free(before);
    free(after);
    rm_path(path);
    done();
}

/* ZFP accuracy 1e-2 shrinks the smooth field far below LZ4 + shuffle. */
static void test_smaller(void **state) {
    (void)state;
    long long size[2] = {0, 0}, base[2] = {0, 0};
    for (int z = 0; z < 2; z++) {
        const char *path = tu_path(NULL, z ? "lossy-zfp" : "lossy-lz4");
        afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
        if (f) {
            const uint64_t shape[3] = {rows(), D1, D2}, chunk[3] = {8, 7, 9};
            afmt_array_opts *ao = NULL;
            afmt_array_opts_create(&ao);
            if (z) afmt_array_opts_set_zfp(ao, AFMT_ZFP_ACCURACY, 1e-2);
            EXPECT_OK(f, afmt_define_with(f, "t", AFMT_FLOAT64, 3, shape, chunk, NULL, NULL, ao));
            afmt_array_opts_free(ao);
            EXPECT_OK(f, afmt_commit(f)); /* the define alone: the file's own bytes */
            MPI_Barrier(MPI_COMM_WORLD);
            base[z] = fsize(path);
            uint64_t r0 = (uint64_t)tu_rank() * D0, nr = D0 + (tu_rank() == tu_size() - 1 ? 3 : 0);
            double *buf = malloc(nr * D1 * D2 * 8);
            for (uint64_t i = 0; i < nr; i++)
                for (uint64_t j = 0; j < D1; j++)
                    for (uint64_t k = 0; k < D2; k++)
                        buf[(i * D1 + j) * D2 + k] = field(r0 + i, j, k);
            const uint64_t st[3] = {r0, 0, 0}, ct[3] = {nr, D1, D2};
            EXPECT_OK(f, afmt_write(f, "t", st, ct, buf));
            free(buf);
            EXPECT_OK(f, afmt_close(f));
        }
        MPI_Barrier(MPI_COMM_WORLD);
        size[z] = fsize(path);
        rm_path(path);
    }
    long long zfp = size[1] - base[1], lz4 = size[0] - base[0];
    if (!(zfp * 2 < lz4)) /* tiny chunks (504 values): each carries ZFP's header */
        rec(__LINE__,
            "the field's layer: ZFP accuracy 1e-2 %lld bytes, LZ4 + shuffle %lld: want "
            "2x smaller",
            zfp, lz4);
    done();
}

static void test_check_bounds(void **state) {
    (void)state;
    for (int check = 0; check < 2; check++) {
        const char *path = tu_path(NULL, "lossy-check");
        afmt_opts *o = NULL;
        afmt_opts_create(&o);
        afmt_opts_set_check_bounds(o, check);
        afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, o, __LINE__);
        afmt_opts_free(o);
        if (f) {
            afmt_array_opts *ao = NULL;
            afmt_array_opts_create(&ao);
            afmt_array_opts_set_zfp(ao, AFMT_ZFP_ACCURACY, 1e-5);
            /* The field of test_zfp's 4-D float32 case: ZFP misses 1e-5 there (1.5e-5). */
            const uint64_t shape[4] = {3, 4, 5, 6}, zero[4] = {0};
            EXPECT_OK(f, afmt_define_with(f, "f32", AFMT_FLOAT32, 4, shape, NULL, NULL, NULL, ao));
            afmt_array_opts_free(ao);
            float v[360];
            for (int i = 0; i < 360; i++) {
                double x = (double)i / 360.0;
                v[i] = (float)(300.0 + 50.0 * sin(6.0 * x) + 20.0 * cos(17.0 * x * x));
            }
            int rc = tu_rank() == 0 ? afmt_write(f, "f32", zero, shape, v)
                     : check        ? AFMT_ECODEC
                                    : AFMT_OK;
            if (check) {
                if (rc != AFMT_ECODEC) rec(__LINE__, "checked write -> %d, want AFMT_ECODEC", rc);
                const char *m = tu_rank() == 0 ? afmt_errmsg(f) : "\"f32\" chunk bound 1e-05";
                if (!strstr(m, "\"f32\"") || !strstr(m, "chunk") || !strstr(m, "bound 1e-05"))
                    rec(__LINE__, "message \"%s\" lacks array, chunk or bound", m);
                EXPECT_OK(f, afmt_discard(f));
            } else if (rc != AFMT_OK) {
                rec(__LINE__, "unchecked write -> %d: %s", rc, afmt_errmsg(f));
            }
            EXPECT_OK(f, afmt_close(f));
        }
        rm_path(path);
    }
    done();
}

static void expect_einval(afmt_file *f, const char *name, afmt_dtype t, afmt_array_opts *ao,
                          const char *part, int line) {
    const uint64_t shape[1] = {16};
    int rc = afmt_define_with(f, name, t, 1, shape, NULL, NULL, NULL, ao);
    if (rc != AFMT_EINVAL) rec(line, "define_with(%s) -> %d, want AFMT_EINVAL", name, rc);
    const char *m = afmt_errmsg(f);
    if (!strstr(m, name) || !strstr(m, part))
        rec(line, "message \"%s\" lacks %s / %s", m, name, part);
}

static void test_bad_input(void **state) {
    (void)state;
    afmt_array_opts *ao = NULL;
    afmt_opts *o = NULL;
    afmt_opts_create(&o);
    EXPECT(afmt_opts_set_codec(o, AFMT_CODEC_ZFP, 0) == AFMT_EINVAL);
    afmt_opts_free(o);
    afmt_array_opts_create(&ao);
    EXPECT(afmt_array_opts_set_zfp(ao, AFMT_ZFP_ACCURACY, 0) == AFMT_EINVAL);
    EXPECT(strstr(afmt_errmsg(NULL), "finite number > 0") != NULL);
    EXPECT(afmt_array_opts_set_zfp(ao, AFMT_ZFP_ACCURACY, -1e-3) == AFMT_EINVAL);
    EXPECT(afmt_array_opts_set_zfp(ao, (afmt_zfp_mode)7, 1) == AFMT_EINVAL);
    EXPECT(afmt_array_opts_set_zfp(ao, AFMT_ZFP_PRECISION, 70) == AFMT_EINVAL);
    EXPECT(afmt_array_opts_set_bitround(ao, 53) == AFMT_EINVAL);
    EXPECT(afmt_array_opts_set_codec(ao, AFMT_CODEC_ZFP, 0) == AFMT_EINVAL);
    EXPECT(afmt_array_opts_set_codec(ao, (afmt_codec)999, 0) == AFMT_ECODEC);
    const char *path = tu_path(NULL, "lossy-bad");
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (f) {
        afmt_array_opts_set_zfp(ao, AFMT_ZFP_ACCURACY, 1e-3);
        expect_einval(f, "zint", AFMT_INT32, ao, "float32 or float64", __LINE__);
        expect_einval(f, "zbool", AFMT_BOOL, ao, "float32 or float64", __LINE__);
        afmt_array_opts_set_bitround(ao, 8);
        expect_einval(f, "zbr", AFMT_FLOAT64, ao, "do not combine", __LINE__);
        afmt_array_opts_free(ao);
        afmt_array_opts_create(&ao);
        afmt_array_opts_set_bitround(ao, 30);
        expect_einval(f, "br32", AFMT_FLOAT32, ao, "23", __LINE__);
        afmt_array_opts_set_bitround(ao, 8);
        expect_einval(f, "brint", AFMT_INT64, ao, "float32 or float64", __LINE__);
        afmt_array_opts_free(ao);
        /* NaN under a lossy mode: refused at the write, naming array and chunk. */
        afmt_array_opts_create(&ao);
        afmt_array_opts_set_zfp(ao, AFMT_ZFP_ACCURACY, 1e-3);
        const uint64_t shape[1] = {8};
        EXPECT_OK(f, afmt_define_with(f, "znan", AFMT_FLOAT64, 1, shape, NULL, NULL, NULL, ao));
        afmt_array_opts_free(ao);
        ao = NULL;
        double v[8] = {1, 2, NAN, 4, 5, 6, 7, 8};
        const uint64_t z1[1] = {0};
        int rc = afmt_write(f, "znan", z1, shape, v);
        if (rc != AFMT_EINVAL || !strstr(afmt_errmsg(f), "NaN"))
            rec(__LINE__, "NaN with ZFP accuracy -> %d: %s", rc, afmt_errmsg(f));
        EXPECT_OK(f, afmt_discard(f));
        /* Ranks with different settings: refused at the commit on every rank. */
        if (tu_size() > 1) {
            afmt_array_opts_create(&ao);
            if (tu_rank() == 1) afmt_array_opts_set_codec(ao, AFMT_CODEC_ZSTD, 0);
            EXPECT_OK(f,
                      afmt_define_with(f, "mixed", AFMT_FLOAT64, 1, shape, NULL, NULL, NULL, ao));
            afmt_array_opts_free(ao);
            ao = NULL;
            rc = afmt_commit(f);
            if (rc != AFMT_EINVAL || !strstr(afmt_errmsg(f), "afmt_define_with"))
                rec(__LINE__, "different settings -> %d: %s", rc, afmt_errmsg(f));
            EXPECT_OK(f, afmt_discard(f));
        }
        EXPECT_OK(f, afmt_close(f));
    }
    afmt_array_opts_free(ao);
    rm_path(path);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_smaller),
        cmocka_unit_test(test_check_bounds),
        cmocka_unit_test(test_bad_input),
    };
    return tu_main(argc, argv, "lossy", tests, sizeof tests / sizeof tests[0]);
}
