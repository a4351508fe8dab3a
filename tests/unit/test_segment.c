/* test_segment.c - format version 2 (docs/format.md 9): index segments and the root table.
 * Round trips through the encoders, the attach that joins segments into one block and
 * chunk table, and every check of 9.1 (X2-X9) and 9.2 (G1-G8) refusing damage, with the
 * message naming the layer and the segment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"
#include "format/footer.h"
#include "format/segment.h"
#include "format/superblock.h"
#include "testutil.h"

#define DATA 4096u

/* Writer w's segment: nb blocks of 64 raw bytes at DATA + 1000*w, and chunks of array
 * `arr` with indices idx[0..nc) (sorted), 16 bytes each, spread over the blocks. */
static void make_seg(afmt_buf *out, uint32_t w, uint64_t arr, const uint64_t *idx, uint64_t nc,
                     uint64_t nb) {
    afmt_block_rec B[4];
    afmt_chunk_rec C[16];
    for (uint64_t b = 0; b < nb; b++)
        B[b] = (afmt_block_rec){DATA + 1000 * w + 100 * b, 64, 64, 0x1234 + b, 0, w};
    for (uint64_t i = 0; i < nc; i++)
        C[i] = (afmt_chunk_rec){arr, idx[i], i % nb, 16 * (i / nb), 16};
    assert_int_equal(afmt__segment_encode(7, w, B, nb, C, nc, out), AFMT_OK);
}

/* A v2 layer 7 of 3 ranks whose footer lies at foff, with n segments given as bytes. */
static void make_layer(afmt_layer *L, const afmt_buf *segs, const uint64_t *lens, uint64_t n,
                       const uint64_t *offs) {
    memset(L, 0, sizeof *L);
    L->version = AFMT_FORMAT_VERSION;
    L->layer_id = 7;
    L->data_offset = DATA;
    L->nranks = 3;
    L->next_array_id = 4;
    L->segs = calloc((size_t)n, sizeof *L->segs);
    assert_non_null(L->segs);
    uint64_t at = 0;
    for (uint64_t i = 0; i < n; i++) {
        afmt__segment_root(segs->data + at, lens[i], offs[i], &L->segs[i]);
        L->seg_blocks += L->segs[i].n_blocks;
        L->seg_chunks += L->segs[i].n_chunks;
        at += lens[i];
    }
    L->n_segs = n;
}

/* Two writers whose key ranges interleave (array 2: writer 0 has chunks 0, 2, 4; writer 1
 * has 1, 3); attach joins them into one sorted table with block indices past the first
 * segment's blocks. */
static void test_round_trip(void **state) {
    (void)state;
    afmt_buf segs;
    afmt__buf_init(&segs);
    uint64_t a[] = {0, 2, 4}, b[] = {1, 3};
    make_seg(&segs, 0, 2, a, 3, 2);
    uint64_t l0 = segs.len;
    make_seg(&segs, 1, 2, b, 2, 1);
    uint64_t lens[] = {l0, segs.len - l0}, offs[] = {DATA + 500, DATA + 1500};
    assert_int_equal(l0, afmt__segment_size(2, 3));
    afmt_layer L;
    make_layer(&L, &segs, lens, 2, offs);
    assert_int_equal(L.segs[0].first_chunk, 0);
    assert_int_equal(L.segs[0].last_chunk, 4);
    assert_int_equal(L.segs[1].writer, 1);
    char msg[AFMT_ERRMSG_MAX];
    assert_int_equal(afmt__segments_attach(&L, segs.data, segs.len, 9000, msg), AFMT_OK);
    assert_int_equal(L.n_blocks, 3);
    assert_int_equal(L.n_chunks, 5);
    for (uint64_t i = 0; i < 5; i++) assert_int_equal(L.chunks[i].chunk_index, i);
    assert_int_equal(L.chunks[1].block, 2); /* writer 1's only block, after writer 0's two */
    assert_int_equal(L.blocks[2].offset, DATA + 1000);
    /* The footer with its root table round-trips. */
    afmt_buf fb;
    afmt__buf_init(&fb);
    assert_int_equal(afmt__footer_encode(&L, &fb), AFMT_OK);
    afmt_layer D;
    assert_int_equal(afmt__footer_decode(fb.data, fb.len, &D, msg), AFMT_OK);
    assert_int_equal(D.version, 2);
    assert_int_equal(D.n_segs, 2);
    assert_int_equal(D.n_chunks, 0); /* not attached yet */
    assert_int_equal(D.seg_chunks, 5);
    assert_memory_equal(&D.segs[1], &L.segs[1], sizeof D.segs[1]);
    assert_int_equal(afmt__segments_attach(&D, segs.data, segs.len, 9000, msg), AFMT_OK);
    assert_int_equal(D.n_chunks, 5);
    afmt__layer_free(&D);
    afmt__layer_free(&L);
    afmt__buf_free(&fb);
    afmt__buf_free(&segs);
}

/* Re-seals a damaged segment's own checksum and the root record's, so that the check
 * after the checksums is what fails. */
static void reseal(uint8_t *p, uint64_t len, afmt_seg_rec *g) {
    afmt__put_u64(p + len - 8, afmt__checksum(p, (size_t)(len - 8)));
    g->checksum = afmt__checksum(p, (size_t)len);
}

typedef struct {
    const char *what;
    uint64_t at;    /* byte to change */
    uint64_t value; /* new u64 there (or u32 if small) */
    int u32;
    int reseal;
    const char *expect; /* in the message */
} damage;

static void test_segment_damage(void **state) {
    (void)state;
    static const damage cases[] = {
        {"root checksum", 70, 0x55, 0, 0, "root table's checksum"},
        {"own checksum", 70, 0x55, 0, 2, "bad checksum"},
        {"magic", 0, 0x58, 0, 1, "bad magic"},
        {"version", 8, 3, 1, 1, "segment version 3"},
        {"header size", 12, 8, 1, 1, "header size 8"},
        {"count", 32, 4, 0, 1, "need other than"},
        {"layer id", 16, 6, 0, 1, "does not match the root table"},
        {"writer", 48, 2, 1, 1, "does not match the root table"},
        {"block before data", 64, 10, 0, 1, "not inside the layer's data"},
        {"block past footer", 64, 8990, 0, 1, "not inside the layer's data"},
        {"codec 0 size", 64 + 8, 65, 0, 1, "codec 0"},
        {"block rank", 64 + 36, 3, 1, 1, "rank 3 of nranks 3"},
        {"chunk array 0", 64 + 80, 0, 0, 1, "array id 0"},
        {"chunk order", 64 + 80 + 40 + 8, 0, 0, 1, "sort strictly"},
        {"chunk block", 64 + 80 + 16, 2, 0, 1, "references block 2"},
        {"chunk bytes", 64 + 80 + 24, 60, 0, 1, "not inside block"},
        {"first key", 64 + 80 + 8, 1, 0, 1, "the root table says"}, /* (2,1): still sorted */
    };
    uint64_t idx[] = {0, 2, 4};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const damage *c = &cases[k];
        afmt_buf segs;
        afmt__buf_init(&segs);
        make_seg(&segs, 1, 2, idx, 3, 2);
        uint64_t lens[] = {segs.len}, offs[] = {DATA + 500};
        afmt_layer L;
        make_layer(&L, &segs, lens, 1, offs);
        if (c->u32)
            afmt__put_u32(segs.data + c->at, (uint32_t)c->value);
        else
            afmt__put_u64(segs.data + c->at, c->value);
        if (c->reseal == 1) reseal(segs.data, segs.len, &L.segs[0]);
        if (c->reseal == 2) /* the root record follows the change, the segment's own sum not */
            L.segs[0].checksum = afmt__checksum(segs.data, segs.len);
        char msg[AFMT_ERRMSG_MAX] = "";
        int rc = afmt__segments_attach(&L, segs.data, segs.len, 9000, msg);
        if (rc != AFMT_ECORRUPT || !strstr(msg, c->expect))
            fail_msg("%s: rc %d, message \"%s\"", c->what, rc, msg);
        assert_non_null(strstr(msg, "layer 7: segment 0 (rank 1, at offset 4596"));
        assert_null(L.blocks);
        afmt__layer_free(&L);
        afmt__buf_free(&segs);
    }
}

/* X9: one key in two segments of a layer. */
static void test_duplicate_key(void **state) {
    (void)state;
    afmt_buf segs;
    afmt__buf_init(&segs);
    uint64_t a[] = {0, 2}, b[] = {2, 3};
    make_seg(&segs, 0, 2, a, 2, 1);
    uint64_t l0 = segs.len;
    make_seg(&segs, 1, 2, b, 2, 1);
    uint64_t lens[] = {l0, segs.len - l0}, offs[] = {DATA + 500, DATA + 1500};
    afmt_layer L;
    make_layer(&L, &segs, lens, 2, offs);
    char msg[AFMT_ERRMSG_MAX];
    assert_int_equal(afmt__segments_attach(&L, segs.data, segs.len, 9000, msg), AFMT_ECORRUPT);
    assert_non_null(strstr(msg, "chunk (2, 2) is in two segments (0 and 1)"));
    afmt__layer_free(&L);
    afmt__buf_free(&segs);
}

/* G1-G8 at footer decode: each root record field damaged in an otherwise valid footer
 * (the footer's checksum re-sealed) is refused with a message naming the record. */
static void test_root_damage(void **state) {
    (void)state;
    afmt_buf segs;
    afmt__buf_init(&segs);
    uint64_t a[] = {0, 2, 4}, b[] = {1, 3};
    make_seg(&segs, 0, 2, a, 3, 2);
    uint64_t l0 = segs.len;
    make_seg(&segs, 1, 2, b, 2, 1);
    uint64_t lens[] = {l0, segs.len - l0}, offs[] = {DATA + 500, DATA + 1500};
    afmt_layer L;
    make_layer(&L, &segs, lens, 2, offs);
    afmt_buf fb;
    afmt__buf_init(&fb);
    assert_int_equal(afmt__footer_encode(&L, &fb), AFMT_OK);
    const uint64_t root = 176; /* no arrays: the root table follows the header */
    struct {
        uint64_t at, value;
        int u32;
        const char *expect;
    } cases[] = {
        {root + 0, 100, 0, "not inside the file after data_offset"},
        {root + 8, 100, 0, "length 100 < 112"},
        {root + 32, 0, 0, "do not fit"},
        {root + 24, 1000, 0, "do not fit"},
        {root + 48, 9, 0, "after last key"},
        {root + 40, 0, 0, "not in 1..next_array_id-1"},
        {root + 56, 4, 0, "not in 1..next_array_id-1"},
        {root + 72, 3, 1, "writer 3 of nranks 3"},
        {root + 80 + 40, 1, 0, "not sorted by first key"}, /* record 1 first key (1, 1) */
        {88, 6, 0, "the header says"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        afmt_buf q;
        afmt__buf_init(&q);
        afmt__buf_append(&q, fb.data, fb.len);
        if (cases[k].u32)
            afmt__put_u32(q.data + cases[k].at, (uint32_t)cases[k].value);
        else
            afmt__put_u64(q.data + cases[k].at, cases[k].value);
        afmt__put_u64(q.data + q.len - 8, afmt__checksum(q.data, q.len - 8));
        afmt_layer D;
        char msg[AFMT_ERRMSG_MAX] = "";
        int rc = afmt__footer_decode(q.data, q.len, &D, msg);
        if (rc != AFMT_ECORRUPT || !strstr(msg, cases[k].expect))
            fail_msg("case %zu: rc %d, message \"%s\"", k, rc, msg);
        afmt__buf_free(&q);
    }
    /* Record 1's first key (2, 1) -> (2, 0), equal to record 0's: the root table is still
     * sorted and decodes, but the segment's first chunk is not what the root says. */
    afmt__put_u64(fb.data + root + 80 + 48, 0);
    afmt__put_u64(fb.data + fb.len - 8, afmt__checksum(fb.data, fb.len - 8));
    afmt_layer D;
    char msg[AFMT_ERRMSG_MAX];
    assert_int_equal(afmt__footer_decode(fb.data, fb.len, &D, msg), AFMT_OK);
    assert_int_equal(afmt__segments_attach(&D, segs.data, segs.len, 9000, msg), AFMT_ECORRUPT);
    assert_non_null(strstr(msg, "layer 7: segment 1 (rank 1"));
    assert_non_null(strstr(msg, "the root table says (2, 0)"));
    afmt__layer_free(&D);
    afmt__layer_free(&L);
    afmt__buf_free(&fb);
    afmt__buf_free(&segs);
}

/* A v2 footer with an array record carrying codec fields round-trips them; v1 footers
 * decode with codec unset. */
static void test_codec_fields(void **state) {
    (void)state;
    afmt_layer L;
    memset(&L, 0, sizeof L);
    L.version = AFMT_FORMAT_VERSION;
    L.layer_id = 1;
    L.data_offset = DATA;
    L.nranks = 1;
    L.next_array_id = 2;
    afmt_array_rec r;
    memset(&r, 0, sizeof r);
    r.id = 1;
    r.kind = AFMT_REC_DEFINE;
    r.dtype = AFMT_FLOAT64;
    r.ndim = 1;
    r.shape[0] = 10;
    r.chunk[0] = 4;
    snprintf(r.name, sizeof r.name, "u");
    snprintf(r.dims[0], sizeof r.dims[0], "x");
    r.codec = 300;
    r.params_len = 3;
    memcpy(r.params, "abc", 3);
    L.arrays = &r;
    L.n_arrays = 1;
    afmt_buf fb;
    afmt__buf_init(&fb);
    assert_int_equal(afmt__footer_encode(&L, &fb), AFMT_OK);
    afmt_layer D;
    char msg[AFMT_ERRMSG_MAX];
    assert_int_equal(afmt__footer_decode(fb.data, fb.len, &D, msg), AFMT_OK);
    assert_int_equal(D.arrays[0].codec, 300);
    assert_int_equal(D.arrays[0].params_len, 3);
    assert_memory_equal(D.arrays[0].params, "abc", 3);
    afmt__layer_free(&D);
    /* params_length beyond the limit: damage */
    afmt__put_u64(fb.data + 176 + 64, AFMT_MAX_CODEC_PARAMS + 1);
    afmt__put_u64(fb.data + fb.len - 8, afmt__checksum(fb.data, fb.len - 8));
    assert_int_equal(afmt__footer_decode(fb.data, fb.len, &D, msg), AFMT_ECORRUPT);
    assert_non_null(strstr(msg, "codec parameters"));
    afmt__buf_free(&fb);
    /* the same layer as v1: no codec fields, read back unset */
    L.version = 1;
    afmt__buf_init(&fb);
    assert_int_equal(afmt__footer_encode(&L, &fb), AFMT_OK);
    assert_int_equal(afmt__get_u32(fb.data + 8), 1);
    assert_int_equal(afmt__footer_decode(fb.data, fb.len, &D, msg), AFMT_OK);
    assert_int_equal(D.arrays[0].codec, AFMT_CODEC_UNSET);
    assert_int_equal(D.arrays[0].params_len, 0);
    afmt__layer_free(&D);
    afmt__buf_free(&fb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),    cmocka_unit_test(test_segment_damage),
        cmocka_unit_test(test_duplicate_key), cmocka_unit_test(test_root_damage),
        cmocka_unit_test(test_codec_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
