/* The validity rules of docs/format.md (section 16), one crafted file each: a valid file
 * is written through the API, one field is edited and every checksum over it RE-SEALED
 * (tests/craft.h), so that the rule itself is what the library must apply. Each case
 * checks afmt_open (the code and the words of its message) and, where the file opens,
 * what reads return. With AFMT_RULES_DIR set (1 rank), every crafted file is kept there
 * with a line "NAME<TAB>EXIT<TAB>WORDS" in MANIFEST for `afmt verify`, which must apply
 * the same rules (tests/rules/run_verify_rules.sh).
 *
 * Also: the limits of afmt_define, BOOL values, the generation limit of writers, a
 * commit whose ranks disagree (refused before anything is written), and chunk indices
 * crafted to collide under the old fixed hash (the index map keeps short probes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/file.h"
#include "craft.h"
#include "model.h"
#include "testutil.h"

/* Helper B's switch for the collective-argument check (issue 11): where it exists it is
 * turned off, so that the commit's own check of the layer is what a disagreement meets. */
extern int afmt_opts_set_check_collective(afmt_opts *o, int on) __attribute__((weak));

typedef unsigned long long ull;

enum { A_ID = 1, B_ID = 2, C_ID = 3, TMP_ID = 4, D_ID = 5, E_ID = 6 };

static char base_path[512]; /* tu_path's strings are a ring of 8: keep a copy */

static int32_t a_value(int layer, uint64_t i) {
    return layer >= 3 && i < 10 ? (int32_t)(100 + i / 10) : (int32_t)(i / 10);
}

/* The base file, 3 layers:
 *  1: a INT32[100]/10 (all written), b FLOAT64[4,6]/[2,3] (all 1.5), c UINT8[50] fill 7;
 *     "tmp" defined and deleted before the commit (it uses id 4, no record);
 *  2: DELETE c; d INT16[30]/8 written 3;
 *  3: a chunk 0 rewritten; DELETE d; DEFINE e INT32[100]/10 (nothing written).
 * Rank 0 writes everything: the last block record of a layer is the last in the file. */
static void write_base(const char *path) {
    afmt_opts *o;
    TU_OK(NULL, afmt_opts_create(&o));
    TU_OK(NULL, afmt_opts_set_codec(o, AFMT_CODEC_LZ4, 0));
    afmt_file *f;
    TU_OK(NULL, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, o, &f));
    const uint64_t sa[] = {100}, ca[] = {10}, sb[] = {4, 6}, cb[] = {2, 3}, sc[] = {50};
    const uint64_t sd[] = {30}, cd[] = {8};
    uint8_t seven = 7;
    TU_OK(f, afmt_define(f, "a", AFMT_INT32, 1, sa, ca, NULL, NULL));
    TU_OK(f, afmt_define(f, "b", AFMT_FLOAT64, 2, sb, cb, NULL, NULL));
    TU_OK(f, afmt_define(f, "c", AFMT_UINT8, 1, sc, sc, NULL, &seven));
    TU_OK(f, afmt_define(f, "tmp", AFMT_UINT8, 1, sc, sc, NULL, NULL));
    TU_OK(f, afmt_delete(f, "tmp"));
    int32_t av[100];
    double bv[24];
    for (int i = 0; i < 100; i++) av[i] = a_value(1, (uint64_t)i);
    for (int i = 0; i < 24; i++) bv[i] = 1.5;
    uint64_t z[2] = {0, 0};
    if (tu_rank() == 0) {
        TU_OK(f, afmt_write(f, "a", z, sa, av));
        TU_OK(f, afmt_write(f, "b", z, sb, bv));
    }
    TU_OK(f, afmt_commit(f));
    TU_OK(f, afmt_delete(f, "c"));
    TU_OK(f, afmt_define(f, "d", AFMT_INT16, 1, sd, cd, NULL, NULL));
    int16_t dv[30];
    for (int i = 0; i < 30; i++) dv[i] = 3;
    if (tu_rank() == 0) TU_OK(f, afmt_write(f, "d", z, sd, dv));
    TU_OK(f, afmt_commit(f));
    for (int i = 0; i < 10; i++) av[i] = a_value(3, (uint64_t)i);
    uint64_t c10[] = {10};
    if (tu_rank() == 0) TU_OK(f, afmt_write(f, "a", z, c10, av));
    TU_OK(f, afmt_delete(f, "d"));
    TU_OK(f, afmt_define(f, "e", AFMT_INT32, 1, sa, ca, NULL, NULL));
    TU_OK(f, afmt_commit(f));
    TU_OK(f, afmt_close(f));
    afmt_opts_free(o);
}

/* ---- running a case ---------------------------------------------------------------- */

typedef void (*craft_fn)(craft_img *img);
typedef void (*check_fn)(afmt_file *f);

/* Keeps the crafted file for `afmt verify` (1 rank, AFMT_RULES_DIR set). */
static void keep(const char *name, const craft_img *img, int vexit, const char *vwords) {
    const char *dir = getenv("AFMT_RULES_DIR");
    if (!dir || tu_size() != 1) return;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s.afmt", dir, name);
    craft_save(img, p);
    snprintf(p, sizeof p, "%s/MANIFEST", dir);
    FILE *m = fopen(p, "a");
    assert_non_null(m);
    fprintf(m, "%s\t%d\t%s\n", name, vexit, vwords);
    fclose(m);
}

/* Crafts a copy of the base file with fn (rank 0), then opens it on every rank: want is
 * the code of afmt_open, words a part of its message (or, when it opens, check runs).
 * vexit/vwords: what `afmt verify` must say (0 OK, 1 DAMAGED with vwords). */
static void run_case(const char *name, craft_fn fn, int want, const char *words, check_fn check,
                     int vexit, const char *vwords) {
    const char *path = tu_path(NULL, name);
    if (tu_rank() == 0) {
        craft_img img;
        craft_load(&img, base_path);
        fn(&img);
        craft_save(&img, path);
        keep(name, &img, vexit, vwords);
        craft_free(&img);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    afmt_file *f = NULL;
    int rc = afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f);
    const char *m = rc == AFMT_OK ? "" : afmt_errmsg(NULL);
    if (rc != want)
        rec(__LINE__, "%s: afmt_open -> %d (%s), want %d: %s", name, rc, afmt_strerror(rc), want,
            m);
    else if (rc != AFMT_OK && words && !strstr(m, words))
        rec(__LINE__, "%s: the message lacks \"%s\": %s", name, words, m);
    if (rc == AFMT_OK) {
        if (check) check(f);
        EXPECT_OK(f, afmt_close(f));
    }
    tu_remove(path);
}

static void no_change(craft_img *img) {
    (void)img;
}

/* Reads a and compares with the values of layer state 3 (or the given one). */
static void expect_a(afmt_file *f, const char *name, int layer) {
    int32_t got[100];
    uint64_t st = 0, ct = 100;
    EXPECT_OK(f, afmt_read(f, name, &st, &ct, got));
    for (uint64_t i = 0; i < 100; i++)
        if (got[i] != a_value(layer, i)) {
            rec(__LINE__, "%s[%llu] = %d, want %d", name, (ull)i, got[i], a_value(layer, i));
            break;
        }
}

static void check_base(afmt_file *f) {
    expect_a(f, "a", 3);
    afmt_info info;
    EXPECT_OK(f, afmt_inquire(f, "e", &info));
    EXPECT_RC(f, afmt_inquire(f, "d", &info), AFMT_ENOTFOUND);
}

/* ---- edits of the newest layer's array records (layer 3: DELETE d, DEFINE e) --------- */

static uint64_t rec3(const craft_img *img, uint64_t i) {
    return craft_array_rec(img, 0, i);
}

static void define_deleted(craft_img *img) {
    craft_put_u64(img, rec3(img, 1), C_ID); /* e takes the id of c, deleted in layer 2 */
    craft_reseal(img, 0);
}

static void define_reused(craft_img *img) {
    craft_put_u64(img, rec3(img, 1), TMP_ID); /* never defined, below next_array_id */
    craft_reseal(img, 0);
}

static void delete_dead(craft_img *img) {
    craft_put_u64(img, rec3(img, 0), C_ID);
    craft_reseal(img, 0);
}

static void delete_unknown(craft_img *img) {
    craft_put_u64(img, rec3(img, 0), TMP_ID);
    craft_reseal(img, 0);
}

/* e's record redefines a (same dtype, shape, chunk and flags): a rename. */
static void redefine_as_a(craft_img *img) {
    craft_put_u64(img, rec3(img, 1), A_ID);
}

static void redefine_rename(craft_img *img) {
    redefine_as_a(img);
    int32_t fill = -5;
    uint8_t le[4];
    afmt__put_u32(le, (uint32_t)fill);
    memcpy(img->p + rec3(img, 1) + 40, le, 4); /* and a new fill value */
    craft_reseal(img, 0);
}

static void check_rename(afmt_file *f) {
    afmt_info info;
    EXPECT_RC(f, afmt_inquire(f, "a", &info), AFMT_ENOTFOUND);
    expect_a(f, "e", 3); /* the older chunks of id 1 stay */
    int n = 0;
    EXPECT_OK(f, afmt_count(f, &n));
    EXPECT(n == 2); /* b and e (= id 1) */
}

static void redefine_flags(craft_img *img) {
    redefine_as_a(img);
    craft_put_u32(img, rec3(img, 1) + 12, 0); /* SHUFFLE off: older chunks would garble */
    craft_reseal(img, 0);
}

static void redefine_dtype(craft_img *img) {
    redefine_as_a(img);
    craft_put_u32(img, rec3(img, 1) + 16, AFMT_UINT32); /* same size, other meaning */
    craft_reseal(img, 0);
}

static void redefine_chunk(craft_img *img) {
    redefine_as_a(img);
    craft_put_u64(img, rec3(img, 1) + 48 + 8, 20); /* dim 0: chunk 10 -> 20 */
    craft_reseal(img, 0);
}

static void chunk_too_big(craft_img *img) {
    uint64_t r = rec3(img, 1);
    craft_put_u64(img, r + 48, (uint64_t)1 << 29); /* INT32 [2^29] / [2^29]: 2 GiB chunks */
    craft_put_u64(img, r + 48 + 8, (uint64_t)1 << 29);
    craft_reseal(img, 0);
}

static void array_too_big(craft_img *img) {
    craft_put_u64(img, rec3(img, 1) + 48, (uint64_t)1 << 62); /* 2^62 INT32: 2^64 bytes */
    craft_reseal(img, 0);
}

/* ---- header, slot and placement edits ------------------------------------------------ */

static void base_with_prev(craft_img *img) {
    craft_put_u32(img, craft_at(img, 0, 60), AFMT_LAYER_BASE);
    craft_reseal(img, 0);
}

static void next_id_decreases(craft_img *img) {
    craft_put_u64(img, craft_at(img, 1, 64), 100); /* layer 2's next_array_id > layer 3's */
    craft_reseal(img, 1);
}

static void slot_edit(craft_img *img, int field, uint64_t v) {
    afmt_super s;
    int which = craft_slot(img, &s);
    if (field == 0) s.next_array_id = v;
    if (field == 1) s.layer_id = v;
    if (field == 2) s.nlayers = v;
    if (field == 3) s.footer_length = v;
    if (field == 4) s.generation = v;
    craft_put_slot(img, which, &s);
}

static void slot_next_id(craft_img *img) {
    slot_edit(img, 0, E_ID); /* the newest layer's next_array_id is 7 */
}

static void slot_layer_id(craft_img *img) {
    slot_edit(img, 1, 2); /* below the newest layer's id 3: verify used to say OK */
}

static void slot_nlayers(craft_img *img) {
    slot_edit(img, 2, (uint64_t)1 << 61); /* verify used to allocate 8 * (n + 1) bytes */
}

static void slot_short_footer(craft_img *img) {
    slot_edit(img, 3, 5); /* verify used to read 8 bytes before the footer */
}

static void uuid_mismatch(craft_img *img) {
    afmt_super s;
    int which = craft_slot(img, &s);
    uint8_t *other = img->p + (which ? AFMT_SLOT_A_OFFSET : AFMT_SLOT_B_OFFSET);
    afmt_super o;
    assert_int_equal(afmt__super_decode(other, &o), AFMT_OK);
    o.uuid[5] ^= 1;
    afmt__super_encode(&o, other);
}

static void truncate_to_older(craft_img *img) {
    afmt_super s;
    int which = craft_slot(img, &s);
    afmt_super o;
    assert_int_equal(
        afmt__super_decode(img->p + (which ? AFMT_SLOT_A_OFFSET : AFMT_SLOT_B_OFFSET), &o),
        AFMT_OK);
    img->len = o.eof + 3; /* the newest slot's eof is past the end, the older one's not */
}

static void check_older(afmt_file *f) {
    uint64_t n = 0;
    EXPECT_OK(f, afmt_layers(f, &n));
    EXPECT(n == 2);
    expect_a(f, "a", 1);
}

/* The first block of layer k with a codec other than none. */
static uint64_t compressed_block(const craft_img *img, int k) {
    afmt_layer L;
    craft_layer(img, k, &L);
    uint64_t b = 0;
    while (b < L.n_blocks && L.blocks[b].codec == AFMT_CODEC_NONE) b++;
    assert_true(b < L.n_blocks);
    afmt__layer_free(&L);
    return b;
}

static void block_past_footer(craft_img *img) {
    afmt_layer L;
    craft_layer(img, 0, &L);
    uint64_t last = L.n_blocks - 1;
    afmt__layer_free(&L);
    uint64_t r = craft_block_rec(img, 0, last), foff = 0, flen = 0;
    craft_footer(img, 0, &foff, &flen);
    /* now it ends one byte inside the footer (the writer's index segment lies between) */
    craft_put_u64(img, r, foff + 1 - craft_get_u64(img, r + 8));
    craft_reseal(img, 0);
}

static void raw_too_big(craft_img *img) {
    /* A decompression bomb: 2 GiB claimed by a block of a few hundred bytes. */
    craft_put_u64(img, craft_block_rec(img, 2, compressed_block(img, 2)) + 16, (uint64_t)1 << 31);
    craft_reseal(img, 2);
}

/* ---- appended layers: blocks the API does not write --------------------------------- */

/* A layer with one block (codec, stored bytes) holding chunk ci of array a. */
static void append_chunk_of_a(craft_img *img, uint32_t codec, const uint8_t *stored, uint64_t n,
                              uint64_t raw, uint64_t ci) {
    afmt_layer L;
    memset(&L, 0, sizeof L);
    afmt_block_rec blk = {0, n, raw, afmt__checksum(stored, (size_t)n), codec, 0};
    afmt_chunk_rec chk = {A_ID, ci, 0, 0, 40};
    L.blocks = &blk;
    L.n_blocks = 1;
    L.chunks = &chk;
    L.n_chunks = 1;
    craft_append_layer(img, &L, stored, n);
}

/* Chunk 5 of a (elements 50..59) as stored bytes: INT32, shuffled. */
static void chunk5_payload(uint8_t *raw, int32_t v) {
    for (int i = 0; i < 10; i++)
        for (int k = 0; k < 4; k++) raw[k * 10 + i] = (uint8_t)((uint32_t)v >> (8 * k));
}

static void unknown_codec(craft_img *img) {
    uint8_t raw[40];
    chunk5_payload(raw, 9);
    append_chunk_of_a(img, 999, raw, 40, 40, 5);
}

static void unknown_codec_damaged(craft_img *img) {
    uint8_t raw[40];
    chunk5_payload(raw, 9);
    append_chunk_of_a(img, 999, raw, 40, 40, 5);
    afmt_super s;
    craft_slot(img, &s);
    img->p[s.footer_offset - 40] ^= 0x10; /* a stored byte: the checksum fails first */
}

static void read_a_rc(afmt_file *f, int want, const char *words) {
    int32_t got[100];
    uint64_t st = 0, ct = 100;
    int rc = afmt_read(f, "a", &st, &ct, got);
    if (rc != want)
        rec(__LINE__, "read(a) -> %d, want %d: %s", rc, want, afmt_errmsg(f));
    else if (words && !strstr(afmt_errmsg(f), words))
        rec(__LINE__, "read(a): message lacks \"%s\": %s", words, afmt_errmsg(f));
}

static void check_ecodec(afmt_file *f) {
    read_a_rc(f, AFMT_ECODEC, "codec id 999");
}

static void check_checksum_first(afmt_file *f) {
    read_a_rc(f, AFMT_ECORRUPT, "fails its checksum");
}

#include <zstd.h>

/* Chunk 5 of a as zstd: one frame, or the same bytes as two frames. */
static void zstd_chunk(craft_img *img, int frames) {
    uint8_t raw[40], out[256];
    chunk5_payload(raw, 77);
    size_t n = 0;
    if (frames == 1) {
        n = ZSTD_compress(out, sizeof out, raw, 40, 1);
    } else {
        n = ZSTD_compress(out, sizeof out, raw, 20, 1);
        n += ZSTD_compress(out + n, sizeof out - n, raw + 20, 20, 1);
    }
    assert_false(ZSTD_isError(n));
    append_chunk_of_a(img, AFMT_CODEC_ZSTD, out, n, 40, 5);
}

static void zstd_one_frame(craft_img *img) {
    zstd_chunk(img, 1);
}

static void zstd_two_frames(craft_img *img) {
    zstd_chunk(img, 2);
}

static void check_zstd_one(afmt_file *f) {
    int32_t got[10];
    uint64_t st = 50, ct = 10;
    EXPECT_OK(f, afmt_read(f, "a", &st, &ct, got));
    for (int i = 0; i < 10; i++) EXPECT(got[i] == 77);
}

static void check_zstd_two(afmt_file *f) {
    read_a_rc(f, AFMT_ECORRUPT, "does not decompress");
}

/* The newest layer again, with duplicate keys: the last record of a key wins. */
static void dup_attrs(craft_img *img) {
    afmt_layer L;
    craft_layer(img, 0, &L);
    afmt_attr_rec *t = calloc(L.n_attrs + 4, sizeof *t);
    assert_non_null(t);
    memcpy(t, L.attrs, sizeof *t * (size_t)L.n_attrs);
    static const uint8_t h1[] = "first", h2[] = "second";
    static const int32_t k1 = 1, k2 = 2;
    afmt_attr_rec base = {0};
    base.array_id = AFMT_ATTR_LAYER;
    snprintf(base.key, sizeof base.key, "host");
    base.dtype = AFMT_UINT8;
    uint64_t n = L.n_attrs;
    t[n] = base, t[n].n = 5, t[n].value = (uint8_t *)h1, n++;
    t[n] = base, t[n].n = 6, t[n].value = (uint8_t *)h2, n++;
    base.array_id = AFMT_ATTR_FILE;
    snprintf(base.key, sizeof base.key, "k");
    base.dtype = AFMT_INT32;
    t[n] = base, t[n].n = 1, t[n].value = (uint8_t *)&k1, n++;
    t[n] = base, t[n].n = 1, t[n].value = (uint8_t *)&k2, n++;
    afmt_attr_rec *own = L.attrs;
    uint64_t nown = L.n_attrs;
    L.attrs = t;
    L.n_attrs = n;
    craft_replace_newest(img, &L);
    L.attrs = own;
    L.n_attrs = nown;
    free(t);
    afmt__layer_free(&L);
}

static void check_dup_attrs(afmt_file *f) {
    uint64_t nl = 0, n = 16;
    EXPECT_OK(f, afmt_layers(f, &nl));
    char host[16] = "";
    EXPECT_OK(f, afmt_layer_attr(f, nl - 1, "host", AFMT_UINT8, &n, host));
    EXPECT(n == 6 && memcmp(host, "second", 6) == 0);
    int32_t k = 0;
    n = 1;
    EXPECT_OK(f, afmt_get_attr(f, NULL, "k", AFMT_INT32, &n, &k));
    EXPECT(k == 2);
}

static void test_crafted(void **state) {
    (void)state;
    snprintf(base_path, sizeof base_path, "%s", tu_path(NULL, "rules-base"));
    write_base(base_path);
    const int C = AFMT_ECORRUPT;
    run_case("base_ok", no_change, AFMT_OK, NULL, check_base, 0, "OK");
    run_case("base_with_prev", base_with_prev, C, "BASE layer has a previous footer", NULL, 1,
             "BASE layer has a previous footer");
    run_case("define_deleted", define_deleted, C, "which was deleted", NULL, 1,
             "which was deleted");
    run_case("define_reused_id", define_reused, C, "below next_array_id", NULL, 1,
             "below next_array_id");
    run_case("delete_dead", delete_dead, C, "already deleted", NULL, 1, "already deleted");
    run_case("delete_unknown", delete_unknown, C, "never defined", NULL, 1, "never defined");
    run_case("redefine_rename", redefine_rename, AFMT_OK, NULL, check_rename, 0, "OK");
    run_case("redefine_flags", redefine_flags, C, "different flags", NULL, 1, "different flags");
    run_case("redefine_dtype", redefine_dtype, C, "different dtype", NULL, 1, "different dtype");
    run_case("redefine_chunk", redefine_chunk, C, "different chunk shape", NULL, 1,
             "different chunk shape");
    run_case("chunk_too_big", chunk_too_big, C, "a chunk of 2147483648 bytes exceeds", NULL, 1,
             "a chunk of 2147483648 bytes exceeds");
    run_case("array_too_big", array_too_big, C, "overflow u64", NULL, 1, "overflow u64");
    run_case("next_id_decreases", next_id_decreases, C, "below the previous layer's 100", NULL, 1,
             "below the previous layer's 100");
    run_case("slot_next_id", slot_next_id, C, "below the newest layer's", NULL, 1,
             "below the newest layer's");
    run_case("slot_layer_id", slot_layer_id, C, "above the highest id 2", NULL, 1,
             "above the highest id 2");
    run_case("slot_nlayers", slot_nlayers, C, "the superblock counts", NULL, 1,
             "the superblock counts");
    run_case("slot_short_footer", slot_short_footer, C, "does not match the superblock", NULL, 1,
             "does not match the superblock");
    run_case("uuid_mismatch", uuid_mismatch, C, "name different files", NULL, 1,
             "name different files");
    run_case("truncated", truncate_to_older, AFMT_OK, NULL, check_older, 1, "truncated (");
    run_case("block_past_footer", block_past_footer, C, "not inside the layer's data", NULL, 1,
             "not inside the layer's data");
    run_case("raw_too_big", raw_too_big, C, "exceeds the limit of 1073741824 bytes", NULL, 1,
             "exceeds the limit of 1073741824 bytes");
    run_case("unknown_codec", unknown_codec, AFMT_OK, NULL, check_ecodec, 0, "OK");
    run_case("unknown_codec_damaged", unknown_codec_damaged, AFMT_OK, NULL, check_checksum_first, 1,
             "fail their checksum");
    run_case("zstd_one_frame", zstd_one_frame, AFMT_OK, NULL, check_zstd_one, 0, "OK");
    run_case("zstd_two_frames", zstd_two_frames, AFMT_OK, NULL, check_zstd_two, 1,
             "does not decompress");
    run_case("duplicate_keys", dup_attrs, AFMT_OK, NULL, check_dup_attrs, 0, "OK");
    tu_remove(base_path);
    done();
}

/* ---- afmt_define: the size limits ---------------------------------------------------- */

static void test_define_limits(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rules-define");
    afmt_file *f;
    TU_OK(NULL, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, NULL, &f));
    /* 2^62 INT32 elements in chunks of 2^62: once accepted, and one write overflowed. */
    uint64_t s[2] = {(uint64_t)1 << 62, 0}, c[2] = {(uint64_t)1 << 62, 0};
    EXPECT_RC(f, afmt_define(f, "huge", AFMT_INT32, 1, s, c, NULL, NULL), AFMT_EINVAL);
    EXPECT(strstr(afmt_errmsg(f), "\"huge\"") && strstr(afmt_errmsg(f), "2^64-1"));
    /* A chunk one element over 1 GiB; exactly 1 GiB is fine. */
    s[0] = (uint64_t)1 << 40;
    c[0] = ((uint64_t)1 << 28) + 1;
    EXPECT_RC(f, afmt_define(f, "big", AFMT_FLOAT32, 1, s, c, NULL, NULL), AFMT_EINVAL);
    const char *m = afmt_errmsg(f);
    EXPECT(strstr(m, "\"big\"") && strstr(m, "1073741828 bytes") && strstr(m, "1073741824"));
    c[0] = (uint64_t)1 << 28;
    EXPECT_OK(f, afmt_define(f, "big", AFMT_FLOAT32, 1, s, c, NULL, NULL));
    /* Two dims whose chunk product is large. */
    uint64_t s2[2] = {(uint64_t)1 << 20, (uint64_t)1 << 20}, c2[2] = {1 << 15, 1 << 15};
    EXPECT_RC(f, afmt_define(f, "wide", AFMT_UINT8, 2, s2, c2, NULL, NULL), AFMT_OK);
    c2[1] = (1 << 15) + 1;
    EXPECT_RC(f, afmt_define(f, "wider", AFMT_UINT8, 2, s2, c2, NULL, NULL), AFMT_EINVAL);
    /* The element count itself overflows (grid), and count x size does. */
    uint64_t s3[2] = {(uint64_t)1 << 33, (uint64_t)1 << 31}, c3[2] = {1, 1};
    EXPECT_RC(f, afmt_define(f, "over", AFMT_UINT8, 2, s3, c3, NULL, NULL), AFMT_EINVAL);
    s3[1] = (uint64_t)1 << 30;
    EXPECT_RC(f, afmt_define(f, "over8", AFMT_INT64, 2, s3, c3, NULL, NULL), AFMT_EINVAL);
    EXPECT_RC(f, afmt_define(f, "fits", AFMT_UINT8, 2, s3, c3, NULL, NULL), AFMT_OK);
    EXPECT_OK(f, afmt_commit(f));
    EXPECT_OK(f, afmt_close(f));
    /* What was accepted reopens. */
    TU_OK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f));
    int n = 0;
    EXPECT_OK(f, afmt_count(f, &n));
    EXPECT(n == 3);
    EXPECT_OK(f, afmt_close(f));
    tu_remove(path);
    done();
}

/* ---- BOOL: any nonzero byte reads as 1 ----------------------------------------------- */

static void test_bool(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rules-bool");
    afmt_file *f;
    TU_OK(NULL, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, NULL, &f));
    const uint64_t s[] = {16}, c[] = {4};
    uint8_t fill = 0x80, v[8] = {0, 1, 2, 255, 0, 7, 1, 0}, want[16];
    TU_OK(f, afmt_define(f, "flags", AFMT_BOOL, 1, s, c, NULL, &fill));
    uint64_t st = 0, ct = 8;
    if (tu_rank() == 0) TU_OK(f, afmt_write(f, "flags", &st, &ct, v));
    TU_OK(f, afmt_set_attr(f, "flags", "mask", AFMT_BOOL, 3, (const uint8_t[]){0, 9, 1}));
    for (int i = 0; i < 16; i++) want[i] = i < 8 ? v[i] != 0 : 1; /* the fill 0x80: true */
    uint8_t got[16];
    ct = 16;
    for (int round = 0; round < 2; round++) {
        /* Round 0: staged (read-your-writes); round 1: committed. */
        memset(got, 0xee, sizeof got);
        EXPECT_OK(f, afmt_read(f, "flags", &st, &ct, got));
        if (round == 1 || tu_rank() == 0) EXPECT(memcmp(got, want, 16) == 0); /* who wrote */
        uint8_t mask[3] = {5, 5, 5};
        uint64_t nm = 3;
        EXPECT_OK(f, afmt_get_attr(f, "flags", "mask", AFMT_BOOL, &nm, mask));
        EXPECT(mask[0] == 0 && mask[1] == 1 && mask[2] == 1);
        TU_OK(f, afmt_commit(f));
    }
    EXPECT_OK(f, afmt_close(f));
    tu_remove(path);
    done();
}

/* ---- the generation counter ------------------------------------------------------------ */

static void test_generation_limit(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rules-gen");
    afmt_file *f;
    const uint64_t s[] = {8};
    int32_t v[8] = {1, 2, 3, 4, 5, 6, 7, 8}, got[8];
    uint64_t st = 0, ct = 8;
    TU_OK(NULL, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, NULL, &f));
    TU_OK(f, afmt_define(f, "x", AFMT_INT32, 1, s, s, NULL, NULL));
    if (tu_rank() == 0) TU_OK(f, afmt_write(f, "x", &st, &ct, v));
    TU_OK(f, afmt_commit(f));
    TU_OK(f, afmt_close(f));
    if (tu_rank() == 0) {
        craft_img img;
        craft_load(&img, path);
        slot_edit(&img, 4, UINT64_MAX - 1); /* the current slot: one commit left */
        craft_save(&img, path);
        craft_free(&img);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    TU_OK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDWR, NULL, &f));
    v[0] = 10;
    if (tu_rank() == 0) TU_OK(f, afmt_write(f, "x", &st, &ct, v));
    EXPECT_OK(f, afmt_commit(f)); /* generation 2^64-1 */
    v[0] = 20;
    if (tu_rank() == 0) TU_OK(f, afmt_write(f, "x", &st, &ct, v));
    EXPECT_RC(f, afmt_commit(f), AFMT_ERANGE);
    EXPECT(strstr(afmt_errmsg(f), "generation counter is exhausted") != NULL);
    uint64_t first = 0;
    EXPECT_OK(f, afmt_layer_id(f, 0, &first, NULL));
    EXPECT_OK(f, afmt_discard(f));
    EXPECT_RC(f, afmt_rollback(f, first), AFMT_ERANGE);
    /* Nothing was lost: the last commit reads back, from a fresh handle too. */
    EXPECT_OK(f, afmt_read(f, "x", &st, &ct, got));
    EXPECT(got[0] == 10);
    EXPECT_OK(f, afmt_compact(f)); /* starts the count over */
    v[0] = 30;
    if (tu_rank() == 0) TU_OK(f, afmt_write(f, "x", &st, &ct, v));
    EXPECT_OK(f, afmt_commit(f));
    EXPECT_OK(f, afmt_close(f));
    TU_OK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f));
    EXPECT_OK(f, afmt_read(f, "x", &st, &ct, got));
    EXPECT(got[0] == 30 && got[7] == 8);
    EXPECT(f->super.generation == 2);
    EXPECT_OK(f, afmt_close(f));
    tu_remove(path);
    done();
}

/* ---- ranks that disagree: the commit refuses the layer --------------------------------- */

static void test_disagreeing_ranks(void **state) {
    (void)state;
    if (tu_size() < 2) return; /* needs a rank that differs */
    const char *path = tu_path(NULL, "rules-disagree");
    afmt_opts *o;
    TU_OK(NULL, afmt_opts_create(&o));
    if (afmt_opts_set_check_collective) TU_OK(NULL, afmt_opts_set_check_collective(o, 0));
    afmt_file *f;
    const uint64_t s[] = {64}, c8[] = {8}, c16[] = {16};
    int32_t v[64];
    for (int i = 0; i < 64; i++) v[i] = i;
    uint64_t st = 0, ct = 64;
    TU_OK(NULL, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, o, &f));
    TU_OK(f, afmt_define(f, "base", AFMT_INT32, 1, s, c8, NULL, NULL));
    if (tu_rank() == 0) TU_OK(f, afmt_write(f, "base", &st, &ct, v));
    TU_OK(f, afmt_commit(f));
    TU_OK(f, afmt_close(f));
    for (int round = 0; round < 3; round++) {
        TU_OK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDWR, o, &f));
        int odd = tu_rank() == tu_size() - 1;
        if (round == 2) {
            /* Only the last rank defines y (an id rank 0 would not know): its define meets
             * the others' commit, and both fail on every rank before anything changes
             * (afmt__enter), so no layer is ever built from it. */
            int rc = odd ? afmt_define(f, "y", AFMT_INT32, 1, s, c8, NULL, NULL) : afmt_commit(f);
            EXPECT(rc == AFMT_EINVAL);
            if (!strstr(afmt_errmsg(f), "not in the same call"))
                rec(__LINE__, "round 2: %s", afmt_errmsg(f));
            int lo = rc, hi = rc;
            MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
            MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
            EXPECT(lo == hi);
            afmt_info info;
            EXPECT(afmt_inquire(f, "y", &info) == AFMT_ENOTFOUND);
            EXPECT_OK(f, afmt_close(f)); /* nothing is pending on any rank */
            continue;
        }
        if (round == 0) {
            /* The last rank defines x with other chunks and writes its whole chunks. */
            TU_OK(f, afmt_define(f, "x", AFMT_INT32, 1, s, odd ? c16 : c8, NULL, NULL));
            if (odd) TU_OK(f, afmt_write(f, "x", &st, &ct, v));
        } else {
            /* The last rank defines y with another dtype and writes its whole chunks. */
            TU_OK(f, afmt_define(f, "y", odd ? AFMT_INT64 : AFMT_INT32, 1, s, c8, NULL, NULL));
            if (odd) {
                int64_t w[64];
                for (int i = 0; i < 64; i++) w[i] = i;
                TU_OK(f, afmt_write(f, "y", &st, &ct, w));
            }
        }
        int rc = afmt_commit(f);
        EXPECT(rc == AFMT_EINVAL);
        char want[64];
        /* The leader's check of the record, or, where the chunk counts differ, the
         * exchange's owner that the last rank's definition made the wrong one. */
        snprintf(want, sizeof want, "rank %d sent ", tu_size() - 1);
        if (!strstr(afmt_errmsg(f), want)) rec(__LINE__, "commit: %s", afmt_errmsg(f));
        int lo = rc, hi = rc;
        MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        EXPECT(lo == hi);
        /* Closing commits the staged changes again (collectively): refused again. The
         * ranks' pending metadata differ, so afmt_discard (which reloads only where
         * there is some) is no way out here. */
        EXPECT(afmt_close(f) == AFMT_EINVAL);
    }
    /* The file still opens with every earlier layer. */
    TU_OK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f));
    uint64_t nl = 0;
    EXPECT_OK(f, afmt_layers(f, &nl));
    EXPECT(nl == 1);
    int32_t got[64];
    EXPECT_OK(f, afmt_read(f, "base", &st, &ct, got));
    EXPECT(memcmp(got, v, sizeof v) == 0);
    EXPECT_OK(f, afmt_close(f));
    afmt_opts_free(o);
    tu_remove(path);
    done();
}

/* ---- chunk indices that collided under the old fixed hash ------------------------------ */

/* The old hash mixed with the same unkeyed splitmix64 finalizer as afmt__mix64. */
#define old_mix afmt__mix64

/* The map's hash before it was keyed (hmap.c): all keys found below share their home
 * slot in every table of up to 2^13 slots. */
static uint64_t old_hash(uint64_t k1, uint64_t k2) {
    return old_mix(k1 ^ old_mix(k2 + 0x9E3779B97F4A7C15ull));
}

enum { NCOLL = 4000 };

static void test_hash_flood(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rules-flood");
    afmt_file *f;
    TU_OK(NULL, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, NULL, &f));
    const uint64_t s[] = {(uint64_t)1 << 62};
    TU_OK(f, afmt_define(f, "sparse", AFMT_UINT8, 1, s, (const uint64_t[]){1}, NULL, NULL));
    TU_OK(f, afmt_commit(f));
    TU_OK(f, afmt_close(f));
    if (tu_rank() == 0) {
        /* One layer of NCOLL one-byte chunks whose keys all collide under the old hash. */
        afmt_chunk_rec *ch = calloc(NCOLL, sizeof *ch);
        uint8_t *data = malloc(NCOLL);
        assert_non_null(ch);
        assert_non_null(data);
        uint64_t n = 0;
        for (uint64_t k2 = 0; n < NCOLL; k2++)
            if ((old_hash(1, k2) & 0x1fff) == 0) {
                ch[n] = (afmt_chunk_rec){1, k2, 0, n, 1};
                data[n] = (uint8_t)k2;
                n++;
            }
        afmt_block_rec blk = {0, NCOLL, NCOLL, afmt__checksum(data, NCOLL), AFMT_CODEC_NONE, 0};
        afmt_layer L;
        memset(&L, 0, sizeof L);
        L.blocks = &blk;
        L.n_blocks = 1;
        L.chunks = ch;
        L.n_chunks = NCOLL;
        craft_img img;
        craft_load(&img, path);
        craft_append_layer(&img, &L, data, NCOLL);
        craft_save(&img, path);
        craft_free(&img);
        free(ch);
        free(data);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    TU_OK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f));
    double t = MPI_Wtime() - t0;
    /* Probe lengths of every key: under the old hash they were 1..NCOLL (quadratic to
     * load); keyed, they stay short. Measured, not timed: a time is only printed. */
    uint64_t total = 0, worst = 0, n = 0;
    for (uint64_t i = 0; i < f->idx.chunks.cap; i++) {
        const afmt_hmap_slot *sl = &f->idx.chunks.slots[i];
        if (sl->used != 1) continue;
        uint64_t p = afmt__hmap_probe_len(&f->idx.chunks, sl->k1, sl->k2);
        total += p;
        worst = p > worst ? p : worst;
        n++;
    }
    EXPECT(n == NCOLL);
    if (tu_rank() == 0)
        printf("validity: %d chunk keys crafted against the old hash: open %.3f s, probes %.2f "
               "per key, worst %llu\n",
               NCOLL, t, (double)total / (double)n, (ull)worst);
    EXPECT(total <= 4 * n);
    EXPECT(worst <= 64);
    uint8_t b = 0;
    uint64_t st = 0, one = 1;
    EXPECT_OK(f, afmt_read(f, "sparse", &st, &one, &b));
    EXPECT(b == 0);
    EXPECT_OK(f, afmt_close(f));
    tu_remove(path);
    done();
}

/* ---- many records in one layer: loading stays linear ----------------------------------- */

enum { NREC = 20000 };

static void test_many_records(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "rules-many");
    afmt_file *f;
    TU_OK(NULL, afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, NULL, &f));
    TU_OK(f, afmt_close(f));
    if (tu_rank() == 0) {
        /* Layer 1: NREC scalar arrays and NREC file attributes; layer 2 deletes them all.
         * Attribute look-ups by a linear scan and one memmove of the live list per deletion
         * made such layers quadratic to load. */
        afmt_layer L;
        memset(&L, 0, sizeof L);
        L.arrays = calloc(NREC, sizeof *L.arrays);
        L.attrs = calloc(NREC, sizeof *L.attrs);
        assert_non_null(L.arrays);
        assert_non_null(L.attrs);
        static const uint8_t one = 1;
        for (uint64_t i = 0; i < NREC; i++) {
            afmt_array_rec *r = &L.arrays[i];
            r->id = i + 1;
            r->kind = AFMT_REC_DEFINE;
            r->dtype = AFMT_UINT8;
            snprintf(r->name, sizeof r->name, "a%05llu", (ull)i);
            afmt_attr_rec *t = &L.attrs[i];
            t->array_id = AFMT_ATTR_FILE;
            snprintf(t->key, sizeof t->key, "k%05llu", (ull)i);
            t->dtype = AFMT_UINT8;
            t->n = 1;
            t->value = (uint8_t *)&one;
        }
        L.n_arrays = NREC;
        L.n_attrs = NREC;
        L.next_array_id = NREC + 1;
        craft_img img;
        craft_load(&img, path);
        craft_append_layer(&img, &L, NULL, 0);
        for (uint64_t i = 0; i < NREC; i++) {
            afmt_array_rec *r = &L.arrays[i];
            memset(r, 0, sizeof *r);
            r->id = NREC - i; /* deleted newest first: each one was a long memmove */
            r->kind = AFMT_REC_DELETE;
            snprintf(r->name, sizeof r->name, "a%05llu", (ull)(NREC - 1 - i));
        }
        L.n_attrs = 0;
        craft_append_layer(&img, &L, NULL, 0);
        craft_save(&img, path);
        craft_free(&img);
        free(L.arrays);
        free(L.attrs);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    TU_OK(NULL, afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f));
    double t = MPI_Wtime() - t0;
    if (tu_rank() == 0)
        printf("validity: %d arrays and %d attributes defined in one layer, the arrays deleted "
               "in the next: open %.3f s\n",
               NREC, NREC, t);
    int n = -1;
    EXPECT_OK(f, afmt_count(f, &n));
    EXPECT(n == 0);
    uint8_t v = 0;
    uint64_t nv = 1;
    EXPECT_OK(f, afmt_get_attr(f, NULL, "k12345", AFMT_UINT8, &nv, &v));
    EXPECT(v == 1);
    EXPECT_RC(f, afmt_get_attr(f, NULL, "k99999", AFMT_UINT8, &nv, &v), AFMT_ENOTFOUND);
    EXPECT_OK(f, afmt_close(f));
    tu_remove(path);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crafted),
        cmocka_unit_test(test_define_limits),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_generation_limit),
        cmocka_unit_test(test_disagreeing_ranks),
        cmocka_unit_test(test_hash_flood),
        cmocka_unit_test(test_many_records),
    };
    /* The crafted files edit version-1 footers (craft.h): the rules of format.md 16 they
     * test hold for both versions; the version-2 structures have test_segment and
     * test_damage. */
    afmt__set_write_version(1);
    return tu_main(argc, argv, "validity", tests, sizeof tests / sizeof tests[0]);
}
