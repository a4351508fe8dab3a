/* seed_gen.c - writes the seed corpus of the fuzz targets: real afmt files made through
 * the public API with the memory backend (several dtypes and codecs, layers, deletes,
 * attributes, chunks shared between layers, rollback, compaction), dumped as files.
 *
 * Usage: seed_gen OUTDIR [PREFIX]   (one rank: mpiexec -n 1 seed_gen OUTDIR, or run it
 * directly). Files are named PREFIXNN-<what>, PREFIX "seed-" by default. tests/fuzz/corpus/
 * holds committed copies: seed-NN-* of format v1 (written before version 2) and
 * seed-v2-NN-* of format v2 (seed_gen OUTDIR seed-v2-), beside seed-v2-golden-* (copies
 * of the golden files of tests/golden/, written by three ranks: several index segments per
 * layer, which one rank cannot write); scripts/fuzz makes fresh ones for every run (uuids
 * and times differ each time). */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "afmt.h"
#include "api/file.h"
#include "storage/storage.h"

static const char *outdir, *prefix = "seed-";
static int n_written;

#define CK(f, call)                                                                                \
    do {                                                                                           \
        int ck_rc_ = (call);                                                                       \
        if (ck_rc_ != AFMT_OK) {                                                                   \
            fprintf(stderr, "seed_gen: %s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #call,          \
                    afmt_strerror(ck_rc_), afmt_errmsg(f));                                        \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static afmt_opts *opts(afmt_codec c, int shuffle, uint64_t block) {
    afmt_opts *o = NULL;
    CK(NULL, afmt_opts_create(&o));
    CK(NULL, afmt__opts_set_backend(o, "memory"));
    CK(NULL, afmt_opts_set_codec(o, c, 0));
    CK(NULL, afmt_opts_set_shuffle(o, shuffle));
    CK(NULL, afmt_opts_set_block_size(o, block));
    return o;
}

static afmt_file *create(const char *name, afmt_opts *o) {
    afmt_file *f = NULL;
    CK(NULL, afmt_create(MPI_COMM_SELF, name, AFMT_TRUNC, o, &f));
    return f;
}

/* Dumps memory image name as OUTDIR/seed-NN-name. */
static void dump(const char *name) {
    uint8_t *data = NULL;
    uint64_t len = 0;
    CK(NULL, afmt__storage_mem_get(name, &data, &len));
    /* No ".afmt" suffix: .gitignore ignores *.afmt, and the corpus is committed. */
    char path[4096];
    size_t stem = strlen(name) > 5 && !strcmp(name + strlen(name) - 5, ".afmt") ? strlen(name) - 5
                                                                                : strlen(name);
    snprintf(path, sizeof path, "%s/%s%02d-%.*s", outdir, prefix, ++n_written, (int)stem, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, (size_t)len, fp) != (size_t)len || fclose(fp) != 0) {
        fprintf(stderr, "seed_gen: cannot write %s\n", path);
        exit(1);
    }
    printf("seed_gen: %s (%llu bytes)\n", path, (unsigned long long)len);
    free(data);
}

/* A cheap hash for incompressible values (blocks then stay codec 0). */
static uint64_t mix(uint64_t i) {
    uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;
    x ^= x >> 31;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 29);
}

static void put_str(afmt_file *f, const char *array, const char *key, const char *s) {
    CK(f, afmt_set_attr(f, array, key, AFMT_UINT8, strlen(s), s));
}

static void seed_empty(void) {
    afmt_opts *o = opts(AFMT_CODEC_LZ4, 1, 1024);
    afmt_file *f = create("empty.afmt", o);
    CK(NULL, afmt_close(f));
    dump("empty.afmt");
    afmt_opts_free(o);
}

static void seed_basic(void) {
    afmt_opts *o = opts(AFMT_CODEC_NONE, 0, 1024);
    afmt_file *f = create("basic.afmt", o);
    uint64_t shape = 16, chunk = 4, st = 0;
    int32_t v[16];
    for (int i = 0; i < 16; i++) v[i] = i * i - 7;
    const char *dims[] = {"x"};
    CK(f, afmt_define(f, "sq", AFMT_INT32, 1, &shape, &chunk, dims, NULL));
    CK(f, afmt_write(f, "sq", &st, &shape, v));
    put_str(f, "sq", "units", "m^2");
    CK(f, afmt_commit(f));
    CK(NULL, afmt_close(f));
    dump("basic.afmt");
    afmt_opts_free(o);
}

/* The complete one: two layers, several dtypes, LZ4 and raw blocks, a delete, chunks of
 * layer 1 still live under layer 2, attributes of the file and of arrays. */
static void seed_layers(afmt_codec c, const char *name) {
    afmt_opts *o = opts(c, 1, 1024);
    afmt_file *f = create(name, o);
    uint64_t ts[2] = {24, 20}, tc[2] = {8, 8}, z[2] = {0, 0};
    double *t = malloc(sizeof(double) * 24 * 20);
    for (int i = 0; i < 24 * 20; i++) t[i] = 0.25 * i;
    const char *tdims[] = {"y", "x"};
    CK(f, afmt_define(f, "temp", AFMT_FLOAT64, 2, ts, tc, tdims, NULL));
    CK(f, afmt_write(f, "temp", z, ts, t));
    uint64_t cs = 200, cc = 32, cst = 0, cn = 150;
    int32_t cv[200], cfill = -7;
    for (int i = 0; i < 200; i++) cv[i] = i % 13;
    CK(f, afmt_define(f, "count", AFMT_INT32, 1, &cs, &cc, NULL, &cfill));
    CK(f, afmt_write(f, "count", &cst, &cn, cv));
    uint64_t fs = 300, fc = 100;
    uint8_t fv[300];
    for (int i = 0; i < 300; i++) fv[i] = (uint8_t)mix((uint64_t)i);
    CK(f, afmt_define(f, "noise", AFMT_UINT8, 1, &fs, &fc, NULL, NULL));
    CK(f, afmt_write(f, "noise", &cst, &fs, fv));
    uint64_t gs = 40, gc = 20;
    int16_t gv[40];
    for (int i = 0; i < 40; i++) gv[i] = (int16_t)(i - 20);
    CK(f, afmt_define(f, "gone", AFMT_INT16, 1, &gs, &gc, NULL, NULL));
    CK(f, afmt_write(f, "gone", &cst, &gs, gv));
    int64_t step = 1;
    CK(f, afmt_define(f, "step", AFMT_INT64, 0, NULL, NULL, NULL, NULL));
    CK(f, afmt_write(f, "step", NULL, NULL, &step));
    put_str(f, NULL, "title", "seed layers");
    put_str(f, "temp", "units", "K");
    float scale[3] = {1.0f, 0.5f, -2.0f};
    CK(f, afmt_set_attr(f, "count", "scale", AFMT_FLOAT32, 3, scale));
    CK(f, afmt_commit(f));

    /* Layer 2: the first row of temp chunks, one more count chunk, a delete, a new array. */
    uint64_t rs[2] = {8, 20};
    for (int i = 0; i < 8 * 20; i++) t[i] = -1.0 * i;
    CK(f, afmt_write(f, "temp", z, rs, t));
    uint64_t c2 = 150, n2 = 32;
    CK(f, afmt_write(f, "count", &c2, &n2, cv));
    CK(f, afmt_delete(f, "gone"));
    uint64_t ns = 64, nc = 16;
    uint16_t nv[64];
    for (int i = 0; i < 64; i++) nv[i] = (uint16_t)(1000 + i);
    CK(f, afmt_define(f, "new", AFMT_UINT16, 1, &ns, &nc, NULL, NULL));
    CK(f, afmt_write(f, "new", &cst, &ns, nv));
    step = 2;
    CK(f, afmt_write(f, "step", NULL, NULL, &step));
    put_str(f, NULL, "title", "seed layers, step 2");
    uint64_t ids[2] = {7, 9};
    CK(f, afmt_set_attr(f, "new", "ids", AFMT_UINT64, 2, ids));
    CK(f, afmt_commit(f));
    CK(NULL, afmt_close(f));
    dump(name);
    free(t);
    afmt_opts_free(o);
}

static void seed_zstd3d(void) {
    afmt_opts *o = opts(AFMT_CODEC_ZSTD, 1, 1024);
    afmt_file *f = create("zstd3d.afmt", o);
    uint64_t s[3] = {6, 5, 4}, c[3] = {3, 2, 4}, st[3] = {0, 0, 0}, n[3] = {3, 5, 4};
    float v[120], fill = 1.5f;
    for (int i = 0; i < 120; i++) v[i] = (float)(i % 10) * 0.5f;
    CK(f, afmt_define(f, "cube", AFMT_FLOAT32, 3, s, c, NULL, &fill));
    CK(f, afmt_write(f, "cube", st, n, v));
    uint64_t bs = 50, bc = 25, b0 = 0;
    uint8_t bv[50];
    for (int i = 0; i < 50; i++) bv[i] = (uint8_t)(i % 3 == 0);
    CK(f, afmt_define(f, "mask", AFMT_BOOL, 1, &bs, &bc, NULL, NULL));
    CK(f, afmt_write(f, "mask", &b0, &bs, bv));
    CK(f, afmt_commit(f));
    /* Layer 2: attributes only. */
    int64_t ver = 3;
    CK(f, afmt_set_attr(f, NULL, "version", AFMT_INT64, 1, &ver));
    CK(f, afmt_set_attr(f, "cube", "empty", AFMT_UINT8, 0, NULL));
    CK(f, afmt_commit(f));
    /* Layer 3: the other half of the cube, overlapping a chunk of layer 1 partly. */
    uint64_t st3[3] = {2, 1, 0}, n3[3] = {4, 3, 4};
    for (int i = 0; i < 48; i++) v[i] = 100.0f + (float)i;
    CK(f, afmt_write(f, "cube", st3, n3, v));
    uint64_t us = 10, uc = 10, u0 = 0, uv[10];
    for (int i = 0; i < 10; i++) uv[i] = (uint64_t)1 << (6 * i);
    CK(f, afmt_define(f, "big", AFMT_UINT64, 1, &us, &uc, NULL, NULL));
    CK(f, afmt_write(f, "big", &u0, &us, uv));
    CK(f, afmt_commit(f));
    CK(NULL, afmt_close(f));
    dump("zstd3d.afmt");
    afmt_opts_free(o);
}

static void write_x(afmt_file *f, int s) {
    uint64_t st = 0, n = 48;
    int64_t v[48];
    for (int i = 0; i < 48; i++) v[i] = s * 1000 + i;
    CK(f, afmt_write(f, "x", &st, &n, v));
    int64_t sv = s;
    CK(f, afmt_set_attr(f, NULL, "step", AFMT_INT64, 1, &sv));
}

static void seed_rollback_and_compact(void) {
    afmt_opts *o = opts(AFMT_CODEC_LZ4, 1, 1024);
    afmt_file *f = create("rollback.afmt", o);
    uint64_t s = 48, c = 16;
    CK(f, afmt_define(f, "x", AFMT_INT64, 1, &s, &c, NULL, NULL));
    uint64_t ids[3];
    for (int k = 1; k <= 3; k++) {
        write_x(f, k);
        CK(f, afmt_commit(f));
        CK(f, afmt_layer_id(f, (uint64_t)k - 1, &ids[k - 1], NULL));
    }
    CK(f, afmt_rollback(f, ids[0]));
    write_x(f, 4);
    CK(f, afmt_commit(f));
    CK(NULL, afmt_close(f));
    dump("rollback.afmt");

    /* The same, compacted: one BASE layer. */
    CK(NULL, afmt_open(MPI_COMM_SELF, "rollback.afmt", AFMT_RDWR, o, &f));
    CK(f, afmt_compact(f));
    write_x(f, 5); /* and one normal layer on top of the BASE layer */
    CK(f, afmt_commit(f));
    CK(NULL, afmt_close(f));
    uint8_t *data;
    uint64_t len;
    CK(NULL, afmt__storage_mem_get("rollback.afmt", &data, &len));
    CK(NULL, afmt__storage_mem_put("compact.afmt", data, len));
    free(data);
    dump("compact.afmt");
    afmt_opts_free(o);
}

static void seed_all_dtypes(void) {
    afmt_opts *o = opts(AFMT_CODEC_LZ4, 1, 2048);
    afmt_file *f = create("dtypes.afmt", o);
    static const char *names[11] = {"b",   "i8",  "i16", "i32", "i64", "u8",
                                    "u16", "u32", "u64", "f32", "f64"};
    uint64_t s = 10, c = 3, st = 0;
    for (int t = 0; t <= (int)AFMT_FLOAT64; t++) {
        uint8_t fill[8], v[80];
        size_t es = afmt__dtype_size((afmt_dtype)t);
        for (size_t i = 0; i < 8; i++) fill[i] = (uint8_t)(t == 0 ? (i == 0) : 0x11 * (t + 1));
        for (size_t i = 0; i < sizeof v; i++)
            v[i] = (uint8_t)(t == 0 ? (i % 2) : i * 3 + (size_t)t);
        char dim[16];
        snprintf(dim, sizeof dim, "d_%s", names[t]);
        const char *dims[] = {dim};
        CK(f, afmt_define(f, names[t], (afmt_dtype)t, 1, &s, &c, dims, fill));
        uint64_t n = (uint64_t)(t % 3 == 0 ? 10 : 7); /* some arrays keep a fill tail */
        CK(f, afmt_write(f, names[t], &st, &n, v));
        CK(f, afmt_set_attr(f, NULL, names[t], (afmt_dtype)t, 2, v));
        CK(f, afmt_set_attr(f, names[t], "first", (afmt_dtype)t, 1, v));
        (void)es;
    }
    put_str(f, NULL, "empty", "");
    CK(f, afmt_commit(f));
    CK(NULL, afmt_close(f));
    dump("dtypes.afmt");
    afmt_opts_free(o);
}

static void seed_many_chunks(void) {
    afmt_opts *o = opts(AFMT_CODEC_LZ4, 0, 1024);
    afmt_file *f = create("chunks.afmt", o);
    uint64_t s[2] = {64, 64}, c[2] = {8, 8}, z[2] = {0, 0};
    int8_t *v = malloc(64 * 64);
    for (int i = 0; i < 64 * 64; i++) v[i] = (int8_t)((i / 64 + i % 64) % 5);
    CK(f, afmt_define(f, "grid", AFMT_INT8, 2, s, c, NULL, NULL));
    CK(f, afmt_write(f, "grid", z, s, v));
    CK(f, afmt_commit(f));
    /* A diagonal of chunks rewritten, chunk-unaligned. */
    uint64_t st[2] = {4, 4}, n[2] = {24, 24};
    for (int i = 0; i < 24 * 24; i++) v[i] = (int8_t)(-i % 100);
    CK(f, afmt_write(f, "grid", st, n, v));
    CK(f, afmt_commit(f));
    CK(NULL, afmt_close(f));
    dump("chunks.afmt");
    free(v);
    afmt_opts_free(o);
}

static void seed_scalars(void) {
    afmt_opts *o = opts(AFMT_CODEC_NONE, 1, 1024);
    afmt_file *f = create("scalars.afmt", o);
    double pi = 3.14159;
    CK(f, afmt_define(f, "pi", AFMT_FLOAT64, 0, NULL, NULL, NULL, NULL));
    CK(f, afmt_write(f, "pi", NULL, NULL, &pi));
    int32_t k = 5;
    CK(f, afmt_define(f, "k", AFMT_INT32, 0, NULL, NULL, NULL, NULL));
    CK(f, afmt_write(f, "k", NULL, NULL, &k));
    CK(f, afmt_commit(f));
    /* k deleted and defined again (a new id), with a different dtype. */
    CK(f, afmt_delete(f, "k"));
    CK(f, afmt_define(f, "k", AFMT_UINT16, 0, NULL, NULL, NULL, NULL));
    uint16_t k2 = 9;
    CK(f, afmt_write(f, "k", NULL, NULL, &k2));
    CK(f, afmt_commit(f));
    CK(NULL, afmt_close(f));
    dump("scalars.afmt");
    afmt_opts_free(o);
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s OUTDIR [PREFIX]\n", argv[0]);
        return 2;
    }
    MPI_Init(&argc, &argv);
    outdir = argv[1];
    if (argc == 3) prefix = argv[2];
    seed_empty();
    seed_basic();
    seed_layers(AFMT_CODEC_LZ4, "layers-lz4.afmt");
    seed_layers(AFMT_CODEC_ZSTD, "layers-zstd.afmt");
    seed_zstd3d();
    seed_rollback_and_compact();
    seed_all_dtypes();
    seed_many_chunks();
    seed_scalars();
    MPI_Finalize();
    return 0;
}
