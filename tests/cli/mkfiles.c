/* mkfiles.c - writes the afmt files the CLI tests inspect, through the public API, on
 * any number of ranks (each rank writes a slice that does not follow chunk boundaries).
 *
 *   mkfiles DIR    writes DIR/basic.afmt, DIR/copy.afmt (same content, other codec and
 *                  block size), DIR/aligned.afmt (same content and settings, written
 *                  with afmt_opts_set_alignment 4096), DIR/diff1.afmt (temp[3,4]
 *                  differs), DIR/other.afmt (arrays, shapes and attributes differ)
 *
 * Content of basic.afmt (3 layers):
 *   layer 1: temp   float64 [20,30] chunk [8,16] dims (y,x), temp[i,j] = 100 i + j + 0.5,
 *                   attributes units = "K", scale = {1.5, -2} (float64)
 *            count  int32 [100] chunk [10], count[i] = i + 1
 *            sparse float32 [50] chunk [10] fill -1, sparse[10..19] = 1..10
 *            step   int16 [10] chunk [5], step[i] = i
 *            tmp    uint8 [16], tmp[i] = i
 *            flag   int64 scalar = -42
 *            file attributes title = "cli test", version = 3 (int32)
 *   layer 2: step[3] = -1
 *   layer 3: tmp deleted; late uint16 [4] = {1, 2, 3, 4}
 *
 * Files of arrays far larger than their data (stats and diff read only written chunks):
 *   huge.afmt    h     float32 [2^50] chunk [2^20], h[2^20*5 + 7] = -4, h[2^50-3..] = 1,2,3
 *                never uint8 [2^50] chunk [2^20] fill 9, never written
 *                plane int16 [2^25, 2^25] chunk [1000, 3000] fill -1,
 *                      plane[2^24 + i, 2^24 + j] = 4 i + j + 1 (i < 3, j < 4)
 *   huge2.afmt   the same values in other chunk shapes (h [3*2^18], plane [700, 4096]),
 *                except h[2^50-2] = 5 and plane[2^24 + 1, 2^24 + 2] = 70; never's fill is 8
 *   bigchunk.afmt  x float64 [2^61] chunk [2^61] fill 1.5, never written: a 4.6 KB file
 *                whose one chunk has 2^64 bytes (made as [4] chunk [4], then its footer
 *                edited and every checksum re-sealed)
 * Per-array compression (afmt_define_with), every array written by rank 0:
 *   codecs.afmt  d float64 [8]  no setting of its own (ao NULL: "default"), d[i] = i / 2
 *                t float64 [64] chunk [16], ZFP accuracy 1e-4, t[i] = i^2 / 100 - 3 i / 10
 *                r float32 [64] chunk [16], bit rounding to 10 bits + zstd level 3 (shuffle
 *                  from the handle: on), r[i] = 1000 / (i + 1)
 *                p float64 [16], ZFP precision 16; q float32 [16], ZFP rate 8: never written
 *                v float64 [16], ZFP reversible, v[i] = i - 7.25
 *                n int32 [8], codec none, shuffle off, n[i] = -i
 *                In a build without ZFP, t, p, q and v are left out and the file
 *                DIR/nozfp is made.
 *   codecs_ref.afmt  the same arrays and values, defined with afmt_define (lossless)
 * Tolerances of afmt diff:
 *   tol_a.afmt   x   float64 [8] = {1, 2 + 2^-9, 4, 8 + 2^-8, 16, 32, 64, 128}
 *                nan float32 [6] = {1, NaN, 3, NaN, 5, inf}
 *                big int64 [4] = {2^62, 2^62 + 1, 5, -7}
 *                n   int32 [4] = {1, 2, 3, 4}
 *   tol_b.afmt   x = {1, 2, 4, 8, ..., 128}, nan as in tol_a, big = {2^62, 2^62, 5, -7},
 *                n = {1, 2, 3, 5}
 *   tol_c.afmt   as tol_b, but nan = {1, NaN, 3, 4, NaN, inf}
 * Names that would act on a terminal:
 *   esc.afmt     arrays "e<ESC>[31mred<ESC>[0m", "bad<ff>", "bad<fe>" (not UTF-8),
 *                "c1<U+009B>2J", "nl<LF>x", "q\"b\\" with dim "d<TAB>im", attribute
 *                "k<BEL>ey" = "v<U+009B>[2Jx" and file attribute "t<ESC>]0;pwned<BEL>" = 1
 */
#include <afmt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static int rank, size;

#define CHECK(f, call)                                                                             \
    do {                                                                                           \
        if ((call) != AFMT_OK) {                                                                   \
            fprintf(stderr, "mkfiles: %s: %s\n", #call, afmt_errmsg(f));                           \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                          \
        }                                                                                          \
    } while (0)

/* This rank's part [lo, hi) of n items. */
static void share(uint64_t n, uint64_t *lo, uint64_t *hi) {
    *lo = n * (uint64_t)rank / (uint64_t)size;
    *hi = n * (uint64_t)(rank + 1) / (uint64_t)size;
}

static void write_file(const char *path, afmt_codec codec, uint64_t block, int variant,
                       uint64_t alignment) {
    afmt_opts *o;
    afmt_file *f;
    CHECK(NULL, afmt_opts_create(&o));
    CHECK(NULL, afmt_opts_set_codec(o, codec, 0));
    CHECK(NULL, afmt_opts_set_block_size(o, block));
    CHECK(NULL, afmt_opts_set_alignment(o, alignment));
    CHECK(NULL, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, o, &f));
    afmt_opts_free(o);

    /* Layer 1. */
    uint64_t tshape[2] = {20, 30}, tchunk[2] = {8, 16};
    const char *tdims[2] = {"y", "x"};
    CHECK(f, afmt_define(f, "temp", AFMT_FLOAT64, 2, tshape, tchunk, tdims, NULL));
    uint64_t lo, hi;
    share(20, &lo, &hi);
    if (hi > lo) {
        double *t = malloc(sizeof *t * (size_t)((hi - lo) * 30));
        for (uint64_t i = lo; i < hi; i++)
            for (uint64_t j = 0; j < 30; j++)
                t[(i - lo) * 30 + j] = 100.0 * (double)i + (double)j + 0.5;
        uint64_t st[2] = {lo, 0}, cn[2] = {hi - lo, 30};
        CHECK(f, afmt_write(f, "temp", st, cn, t));
        free(t);
    }
    CHECK(f, afmt_set_attr(f, "temp", "units", AFMT_UINT8, 1, "K"));
    double scale[2] = {1.5, -2};
    CHECK(f, afmt_set_attr(f, "temp", "scale", AFMT_FLOAT64, 2, scale));

    uint64_t cshape[1] = {100}, cchunk[1] = {10};
    CHECK(f, afmt_define(f, "count", AFMT_INT32, 1, cshape, cchunk, NULL, NULL));
    share(100, &lo, &hi);
    if (hi > lo) {
        int32_t c[100];
        for (uint64_t i = lo; i < hi; i++) c[i - lo] = (int32_t)i + 1;
        uint64_t st[1] = {lo}, cn[1] = {hi - lo};
        CHECK(f, afmt_write(f, "count", st, cn, c));
    }

    uint64_t sshape[1] = {50}, schunk[1] = {10};
    float sfill = -1.0f;
    CHECK(f, afmt_define(f, "sparse", AFMT_FLOAT32, 1, sshape, schunk, NULL, &sfill));
    if (rank == size - 1) {
        float s[10];
        for (int i = 0; i < 10; i++) s[i] = (float)(i + 1);
        uint64_t st[1] = {10}, cn[1] = {10};
        CHECK(f, afmt_write(f, "sparse", st, cn, s));
    }

    uint64_t pshape[1] = {10}, pchunk[1] = {5};
    CHECK(f, afmt_define(f, "step", AFMT_INT16, 1, pshape, pchunk, NULL, NULL));
    if (rank == 0) {
        int16_t p[10];
        for (int i = 0; i < 10; i++) p[i] = (int16_t)i;
        uint64_t st[1] = {0}, cn[1] = {10};
        CHECK(f, afmt_write(f, "step", st, cn, p));
    }

    uint64_t ushape[1] = {16};
    CHECK(f, afmt_define(f, "tmp", AFMT_UINT8, 1, ushape, NULL, NULL, NULL));
    if (rank == 0) {
        uint8_t u[16];
        for (int i = 0; i < 16; i++) u[i] = (uint8_t)i;
        uint64_t st[1] = {0}, cn[1] = {16};
        CHECK(f, afmt_write(f, "tmp", st, cn, u));
    }

    CHECK(f, afmt_define(f, "flag", AFMT_INT64, 0, NULL, NULL, NULL, NULL));
    if (rank == 0) {
        int64_t v = -42;
        CHECK(f, afmt_write(f, "flag", NULL, NULL, &v));
    }
    CHECK(f, afmt_set_attr(f, NULL, "title", AFMT_UINT8, 8, "cli test"));
    int32_t version = 3;
    CHECK(f, afmt_set_attr(f, NULL, "version", AFMT_INT32, 1, &version));
    CHECK(f, afmt_commit(f));

    /* Layer 2. */
    if (rank == 0) {
        int16_t m = -1;
        uint64_t st[1] = {3}, cn[1] = {1};
        CHECK(f, afmt_write(f, "step", st, cn, &m));
    }
    CHECK(f, afmt_commit(f));

    /* Layer 3. */
    CHECK(f, afmt_delete(f, "tmp"));
    uint64_t lshape[1] = {4};
    CHECK(f, afmt_define(f, "late", AFMT_UINT16, 1, lshape, NULL, NULL, NULL));
    if (rank == 0) {
        uint16_t l[4] = {1, 2, 3, 4};
        uint64_t st[1] = {0}, cn[1] = {4};
        CHECK(f, afmt_write(f, "late", st, cn, l));
    }
    if (variant == 1 && rank == 0) {
        double v = 100.0 * 3 + 4 + 0.5 + 1.0;
        uint64_t st[2] = {3, 4}, cn[2] = {1, 1};
        CHECK(f, afmt_write(f, "temp", st, cn, &v));
    }
    if (variant == 2) {
        /* other.afmt: an array only here, a changed attribute, count deleted. */
        CHECK(f, afmt_delete(f, "count"));
        uint64_t oshape[1] = {3};
        CHECK(f, afmt_define(f, "extra", AFMT_INT8, 1, oshape, NULL, NULL, NULL));
        CHECK(f, afmt_set_attr(f, "temp", "units", AFMT_UINT8, 1, "C"));
    }
    CHECK(f, afmt_commit(f));
    CHECK(f, afmt_close(f));
}

static void write_huge(const char *path, int variant) {
    afmt_file *f;
    CHECK(NULL, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, NULL, &f));
    const uint64_t big = (uint64_t)1 << 50;
    uint64_t hshape[1] = {big}, hchunk[1] = {variant ? 3u << 18 : 1u << 20};
    CHECK(f, afmt_define(f, "h", AFMT_FLOAT32, 1, hshape, hchunk, NULL, NULL));
    uint64_t nchunk[1] = {1u << 20};
    uint8_t nfill = variant ? 8 : 9;
    CHECK(f, afmt_define(f, "never", AFMT_UINT8, 1, hshape, nchunk, NULL, &nfill));
    uint64_t pshape[2] = {1u << 25, 1u << 25},
             pchunk[2] = {variant ? 700 : 1000, variant ? 4096 : 3000};
    int16_t pfill = -1;
    CHECK(f, afmt_define(f, "plane", AFMT_INT16, 2, pshape, pchunk, NULL, &pfill));
    if (rank == 0) {
        float one = -4, tail[3] = {1, 2, 3};
        if (variant) tail[1] = 5;
        uint64_t st[1] = {(5u << 20) + 7}, cn[1] = {1};
        CHECK(f, afmt_write(f, "h", st, cn, &one));
        st[0] = big - 3;
        cn[0] = 3;
        CHECK(f, afmt_write(f, "h", st, cn, tail));
        int16_t p[12];
        for (int i = 0; i < 12; i++) p[i] = (int16_t)(i + 1);
        if (variant) p[4 + 2] = 70;
        uint64_t ps[2] = {1u << 24, 1u << 24}, pc[2] = {3, 4};
        CHECK(f, afmt_write(f, "plane", ps, pc, p));
    }
    CHECK(f, afmt_close(f));
}

static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* bigchunk.afmt: written as [4] chunk [4], then the newest footer's first array record
 * gets shape and chunk 2^61 and the footer, trailer and slot checksums are re-sealed
 * (docs/format.md 3, 4, 5.4), so that the file is valid with a 2^64-byte chunk. */
static void write_bigchunk(const char *path) {
    afmt_file *f;
    CHECK(NULL, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, NULL, &f));
    uint64_t shape[1] = {4};
    double fill = 1.5;
    CHECK(f, afmt_define(f, "x", AFMT_FLOAT64, 1, shape, NULL, NULL, &fill));
    CHECK(f, afmt_close(f));
    if (rank == 0) {
        FILE *fp = fopen(path, "r+b");
        static uint8_t b[1 << 16];
        size_t n = fp ? fread(b, 1, sizeof b, fp) : 0;
        uint8_t *slot = get64(b + 2048 + 32) > get64(b + 32) ? b + 2048 : b;
        uint64_t fo = get64(slot + 40), fl = get64(slot + 48);
        if (!fp || fo + fl + 32 != n) {
            fprintf(stderr, "mkfiles: %s: unexpected layout\n", path);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        uint8_t *ft = b + fo;
        uint64_t hs = get64(ft + 8) >> 32, ars = get64(ft + 144) & 0xffffffffu; /* u32 fields */
        uint8_t *dim = ft + hs + ars;
        put64(dim, (uint64_t)1 << 61);
        put64(dim + 8, (uint64_t)1 << 61);
        put64(ft + fl - 8, XXH3_64bits(ft, (size_t)fl - 8));
        uint64_t ck = XXH3_64bits(ft, (size_t)fl);
        put64(ft + fl + 16, ck);
        put64(slot + 56, ck);
        put64(slot + 120, XXH3_64bits(slot, 120));
        rewind(fp);
        if (fwrite(b, 1, n, fp) != n || fclose(fp) != 0) {
            fprintf(stderr, "mkfiles: %s: rewrite failed\n", path);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

static void write_esc(const char *path) {
    afmt_file *f;
    CHECK(NULL, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, NULL, &f));
    static const char *names[] = {"e\x1b[31mred\x1b[0m",
                                  "bad\xff",
                                  "bad\xfe",
                                  ("c1\xc2\x9b"
                                   "2J"),
                                  "nl\nx",
                                  "q\"b\\"};
    uint64_t shape[1] = {3};
    const char *dims[1] = {"d\tim"};
    for (int i = 0; i < 6; i++) {
        CHECK(f, afmt_define(f, names[i], AFMT_INT32, 1, shape, NULL, dims, NULL));
        int32_t v[3] = {i, i, i};
        uint64_t st[1] = {0}, cn[1] = {3};
        if (rank == 0) CHECK(f, afmt_write(f, names[i], st, cn, v));
    }
    CHECK(f, afmt_set_attr(f, names[0],
                           "k\x07"
                           "ey",
                           AFMT_UINT8, 7, "v\xc2\x9b[2Jx"));
    int32_t one = 1;
    CHECK(f, afmt_set_attr(f, NULL, "t\x1b]0;pwned\x07", AFMT_INT32, 1, &one));
    CHECK(f, afmt_close(f));
}

/* codecs.afmt (lossy != 0) and codecs_ref.afmt. Returns 0, or 1 if this build lacks ZFP
 * (then the ZFP arrays are left out). */
static int write_codecs(const char *path, int lossy) {
    afmt_file *f;
    CHECK(NULL, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, NULL, &f));
    afmt_array_opts *probe;
    CHECK(NULL, afmt_array_opts_create(&probe));
    int zfp = afmt_array_opts_set_zfp(probe, AFMT_ZFP_ACCURACY, 1e-4) == AFMT_OK;
    afmt_array_opts_free(probe);
    static const struct {
        const char *name;
        afmt_dtype t;
        uint64_t n, chunk;
        int kind; /* 0 default, 1 ZFP, 2 bit rounding + zstd 3, 3 none without shuffle */
        afmt_zfp_mode mode;
        double param;
        int written;
    } arrays[] = {{"d", AFMT_FLOAT64, 8, 8, 0, 0, 0, 1},
                  {"t", AFMT_FLOAT64, 64, 16, 1, AFMT_ZFP_ACCURACY, 1e-4, 1},
                  {"r", AFMT_FLOAT32, 64, 16, 2, 0, 0, 1},
                  {"p", AFMT_FLOAT64, 16, 16, 1, AFMT_ZFP_PRECISION, 16, 0},
                  {"q", AFMT_FLOAT32, 16, 16, 1, AFMT_ZFP_RATE, 8, 0},
                  {"v", AFMT_FLOAT64, 16, 16, 1, AFMT_ZFP_REVERSIBLE, 0, 1},
                  {"n", AFMT_INT32, 8, 8, 3, 0, 0, 1}};
    for (size_t k = 0; k < sizeof arrays / sizeof arrays[0]; k++) {
        if (arrays[k].kind == 1 && !zfp) continue;
        afmt_array_opts *ao = NULL;
        if (lossy && arrays[k].kind) {
            CHECK(NULL, afmt_array_opts_create(&ao));
            if (arrays[k].kind == 1)
                CHECK(NULL, afmt_array_opts_set_zfp(ao, arrays[k].mode, arrays[k].param));
            if (arrays[k].kind == 2) {
                CHECK(NULL, afmt_array_opts_set_codec(ao, AFMT_CODEC_ZSTD, 3));
                CHECK(NULL, afmt_array_opts_set_bitround(ao, 10));
            }
            if (arrays[k].kind == 3) {
                CHECK(NULL, afmt_array_opts_set_codec(ao, AFMT_CODEC_NONE, 0));
                CHECK(NULL, afmt_array_opts_set_shuffle(ao, 0));
            }
        }
        uint64_t shape[1] = {arrays[k].n}, chunk[1] = {arrays[k].chunk};
        CHECK(f, afmt_define_with(f, arrays[k].name, arrays[k].t, 1, shape, chunk, NULL, NULL, ao));
        afmt_array_opts_free(ao);
        if (rank != 0 || !arrays[k].written) continue;
        double dv[64];
        float fv[64];
        int32_t iv[64];
        for (uint64_t i = 0; i < arrays[k].n; i++) {
            double x = (double)i;
            double v = k == 0   ? x / 2
                       : k == 1 ? x * x / 100 - 3 * x / 10
                       : k == 2 ? 1000 / (x + 1)
                                : x - 7.25;
            dv[i] = v;
            fv[i] = (float)v;
            iv[i] = -(int32_t)i;
        }
        const void *buf = arrays[k].t == AFMT_FLOAT64   ? (const void *)dv
                          : arrays[k].t == AFMT_FLOAT32 ? (const void *)fv
                                                        : (const void *)iv;
        uint64_t st[1] = {0};
        CHECK(f, afmt_write(f, arrays[k].name, st, shape, buf));
    }
    CHECK(f, afmt_close(f));
    return !zfp;
}

/* tol_a.afmt (variant 0), tol_b.afmt (1), tol_c.afmt (2): see the top. */
static void write_tol(const char *path, int variant) {
    afmt_file *f;
    CHECK(NULL, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, NULL, &f));
    uint64_t s8[1] = {8}, s6[1] = {6}, s4[1] = {4}, st[1] = {0};
    CHECK(f, afmt_define(f, "x", AFMT_FLOAT64, 1, s8, NULL, NULL, NULL));
    CHECK(f, afmt_define(f, "nan", AFMT_FLOAT32, 1, s6, NULL, NULL, NULL));
    CHECK(f, afmt_define(f, "big", AFMT_INT64, 1, s4, NULL, NULL, NULL));
    CHECK(f, afmt_define(f, "n", AFMT_INT32, 1, s4, NULL, NULL, NULL));
    if (rank == 0) {
        double x[8] = {1, 2, 4, 8, 16, 32, 64, 128};
        if (variant == 0) {
            x[1] += 1.0 / 512;
            x[3] += 1.0 / 256;
        }
        float nan[6] = {1, NAN, 3, NAN, 5, INFINITY};
        if (variant == 2) {
            nan[3] = 4;
            nan[4] = NAN;
        }
        int64_t big[4] = {(int64_t)1 << 62, ((int64_t)1 << 62) + (variant == 0), 5, -7};
        int32_t n[4] = {1, 2, 3, variant == 0 ? 4 : 5};
        CHECK(f, afmt_write(f, "x", st, s8, x));
        CHECK(f, afmt_write(f, "nan", st, s6, nan));
        CHECK(f, afmt_write(f, "big", st, s4, big));
        CHECK(f, afmt_write(f, "n", st, s4, n));
    }
    CHECK(f, afmt_close(f));
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 2) {
        if (rank == 0) fprintf(stderr, "usage: mkfiles DIR\n");
        MPI_Finalize();
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/basic.afmt", argv[1]);
    write_file(path, AFMT_CODEC_LZ4, 1024, 0, 0);
    snprintf(path, sizeof path, "%s/copy.afmt", argv[1]);
    write_file(path, AFMT_CODEC_ZSTD, 1 << 20, 0, 0);
    snprintf(path, sizeof path, "%s/diff1.afmt", argv[1]);
    write_file(path, AFMT_CODEC_LZ4, 1024, 1, 0);
    snprintf(path, sizeof path, "%s/other.afmt", argv[1]);
    write_file(path, AFMT_CODEC_NONE, 1024, 2, 0);
    snprintf(path, sizeof path, "%s/aligned.afmt", argv[1]);
    write_file(path, AFMT_CODEC_LZ4, 1024, 0, 4096);
    snprintf(path, sizeof path, "%s/huge.afmt", argv[1]);
    write_huge(path, 0);
    snprintf(path, sizeof path, "%s/huge2.afmt", argv[1]);
    write_huge(path, 1);
    snprintf(path, sizeof path, "%s/bigchunk.afmt", argv[1]);
    write_bigchunk(path);
    snprintf(path, sizeof path, "%s/esc.afmt", argv[1]);
    write_esc(path);
    snprintf(path, sizeof path, "%s/codecs.afmt", argv[1]);
    int nozfp = write_codecs(path, 1);
    snprintf(path, sizeof path, "%s/codecs_ref.afmt", argv[1]);
    write_codecs(path, 0);
    if (nozfp && rank == 0) {
        snprintf(path, sizeof path, "%s/nozfp", argv[1]);
        FILE *m = fopen(path, "w");
        if (m) fclose(m);
    }
    static const char *const tol[3] = {"tol_a", "tol_b", "tol_c"};
    for (int v = 0; v < 3; v++) {
        snprintf(path, sizeof path, "%s/%s.afmt", argv[1], tol[v]);
        write_tol(path, v);
    }
    MPI_Finalize();
    return 0;
}
