/* test_index.c - the merged index, fed with hand-built layers (footer.h types). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "index/index.h"

static afmt_array_rec def(uint64_t id, const char *name, afmt_dtype t, int ndim,
                          const uint64_t *shape, const uint64_t *chunk) {
    afmt_array_rec r;
    memset(&r, 0, sizeof r);
    r.id = id;
    r.kind = AFMT_REC_DEFINE;
    r.dtype = t;
    r.ndim = ndim;
    snprintf(r.name, sizeof r.name, "%s", name);
    for (int d = 0; d < ndim; d++) {
        r.shape[d] = shape[d];
        r.chunk[d] = chunk[d];
        snprintf(r.dims[d], sizeof r.dims[d], "dim%d", d);
    }
    return r;
}

static afmt_array_rec del(uint64_t id, const char *name) {
    afmt_array_rec r;
    memset(&r, 0, sizeof r);
    r.id = id;
    r.kind = AFMT_REC_DELETE;
    snprintf(r.name, sizeof r.name, "%s", name);
    return r;
}

static afmt_block_rec blk(uint64_t offset, uint64_t stored, uint64_t raw) {
    afmt_block_rec b = {offset, stored, raw, 0, AFMT_CODEC_NONE, 0};
    return b;
}

static afmt_chunk_rec chk(uint64_t array_id, uint64_t ci, uint64_t block, uint64_t offset,
                          uint64_t size) {
    afmt_chunk_rec c = {array_id, ci, block, offset, size};
    return c;
}

/* The value pointer is borrowed from static storage (the index copies it). */
static afmt_attr_rec attr(uint64_t array_id, const char *key, afmt_dtype t, uint64_t n,
                          const void *v) {
    afmt_attr_rec a;
    memset(&a, 0, sizeof a);
    a.array_id = array_id;
    snprintf(a.key, sizeof a.key, "%s", key);
    a.dtype = t;
    a.n = n;
    a.value = (uint8_t *)(uintptr_t)v;
    return a;
}

#define LAYER(L, id)                                                                               \
    afmt_layer L;                                                                                  \
    memset(&L, 0, sizeof L);                                                                       \
    L.layer_id = (id);                                                                             \
    L.time_ns = 1000 * (id);                                                                       \
    L.nranks = 4;                                                                                  \
    L.next_array_id = 100
#define SET(L, field, arr)                                                                         \
    do {                                                                                           \
        L.field = arr;                                                                             \
        L.n_##field = sizeof(arr) / sizeof(arr[0]);                                                \
    } while (0)

static const uint64_t T_SHAPE[] = {10, 6}, T_CHUNK[] = {4, 3}; /* 3 x 2 chunks */
static const uint64_t P_SHAPE[] = {5}, P_CHUNK[] = {5};
static const char HELLO[] = "hello", HOST[] = "node01";
static const double UNITS1[] = {1.0, 2.0}, UNITS2[] = {3.0};

/* Layer 1: arrays temp (id 1, float64 10x6 by 4x3) and pres (id 2, int32 5), three
 * chunks in two blocks, a file, an array and a layer attribute. */
static void apply_layer1(afmt_index *x) {
    LAYER(L, 1);
    afmt_array_rec arrays[] = {def(1, "temp", AFMT_FLOAT64, 2, T_SHAPE, T_CHUNK),
                               def(2, "pres", AFMT_INT32, 1, P_SHAPE, P_CHUNK)};
    afmt_block_rec blocks[] = {blk(4096, 100, 1000), blk(4196, 20, 20)};
    afmt_chunk_rec chunks[] = {chk(1, 0, 0, 0, 4 * 3 * 8), chk(1, 5, 0, 96, 2 * 3 * 8),
                               chk(2, 0, 1, 0, 5 * 4)};
    afmt_attr_rec attrs[] = {attr(AFMT_ATTR_FILE, "title", AFMT_UINT8, 5, HELLO),
                             attr(1, "units", AFMT_FLOAT64, 2, UNITS1),
                             attr(AFMT_ATTR_LAYER, "host", AFMT_UINT8, 6, HOST)};
    SET(L, arrays, arrays);
    SET(L, blocks, blocks);
    SET(L, chunks, chunks);
    SET(L, attrs, attrs);
    L.next_array_id = 3;
    L.data_offset = 4096;
    char msg[AFMT_ERRMSG_MAX] = "";
    int rc = afmt__index_apply(x, &L, 5000, 300, msg);
    if (rc != AFMT_OK) fail_msg("layer 1: %d %s", rc, msg);
}

/* Layer 2: overwrites temp chunk 0, adds temp chunk 1, replaces the units attribute. */
static void apply_layer2(afmt_index *x) {
    LAYER(L, 2);
    afmt_block_rec blocks[] = {blk(6000, 150, 192)};
    afmt_chunk_rec chunks[] = {chk(1, 0, 0, 0, 96), chk(1, 1, 0, 96, 96)};
    afmt_attr_rec attrs[] = {attr(1, "units", AFMT_FLOAT64, 1, UNITS2)};
    SET(L, blocks, blocks);
    SET(L, chunks, chunks);
    SET(L, attrs, attrs);
    L.next_array_id = 3;
    char msg[AFMT_ERRMSG_MAX] = "";
    int rc = afmt__index_apply(x, &L, 6200, 100, msg);
    if (rc != AFMT_OK) fail_msg("layer 2: %d %s", rc, msg);
}

/* Layer 3: deletes temp and defines a new temp (id 3, uint8 4), with one chunk. */
static void apply_layer3(afmt_index *x) {
    LAYER(L, 3);
    const uint64_t s[] = {4}, c[] = {4};
    afmt_array_rec arrays[] = {del(1, "temp"), def(3, "temp", AFMT_UINT8, 1, s, c)};
    afmt_block_rec blocks[] = {blk(7000, 4, 4)};
    afmt_chunk_rec chunks[] = {chk(3, 0, 0, 0, 4)};
    SET(L, arrays, arrays);
    SET(L, blocks, blocks);
    SET(L, chunks, chunks);
    L.next_array_id = 4;
    char msg[AFMT_ERRMSG_MAX] = "";
    int rc = afmt__index_apply(x, &L, 7100, 100, msg);
    if (rc != AFMT_OK) fail_msg("layer 3: %d %s", rc, msg);
}

static void check_blocks(const afmt_index *x, uint64_t b, uint64_t nrefs, uint64_t nlive) {
    assert_true(b < x->n_blocks);
    if (x->blocks[b].nrefs != nrefs || x->blocks[b].nlive != nlive)
        fail_msg("block %llu: nrefs %llu nlive %llu, want %llu %llu", (unsigned long long)b,
                 (unsigned long long)x->blocks[b].nrefs, (unsigned long long)x->blocks[b].nlive,
                 (unsigned long long)nrefs, (unsigned long long)nlive);
}

static void test_three_layers(void **state) {
    (void)state;
    afmt_index x;
    afmt__index_init(&x);
    assert_int_equal(x.next_array_id, 1);
    assert_null(afmt__index_find(&x, "temp"));
    assert_int_equal(afmt__index_live_count(&x), 0);

    apply_layer1(&x);
    afmt_array *t = afmt__index_find(&x, "temp");
    assert_non_null(t);
    assert_int_equal(t->d.id, 1);
    assert_int_equal(t->esize, 8);
    assert_int_equal(afmt__grid_nchunks(&t->grid), 6);
    assert_ptr_equal(afmt__index_by_id(&x, 2), afmt__index_find(&x, "pres"));
    assert_int_equal(x.next_array_id, 3);
    assert_int_equal(x.n_blocks, 2);
    const afmt_chunk_loc *loc = afmt__index_chunk(&x, 1, 5);
    assert_non_null(loc);
    assert_int_equal(loc->block, 0);
    assert_int_equal(loc->offset, 96);
    assert_int_equal(loc->size, 48);
    assert_null(afmt__index_chunk(&x, 1, 1)); /* never written: fill */
    check_blocks(&x, 0, 2, 2);
    check_blocks(&x, 1, 1, 1);
    assert_int_equal(x.blocks[1].layer_id, 1);
    const afmt_attr_rec *a = afmt__index_get_attr(&x, AFMT_ATTR_FILE, "title");
    assert_non_null(a);
    assert_int_equal(a->n, 5);
    assert_memory_equal(a->value, "hello", 5);
    assert_ptr_not_equal(a->value, HELLO); /* copied */
    a = afmt__index_get_attr(&x, 1, "units");
    assert_non_null(a);
    assert_int_equal(a->n, 2);
    assert_null(afmt__index_get_attr(&x, 2, "units"));
    assert_null(afmt__index_get_attr(&x, AFMT_ATTR_FILE, "host")); /* layer attr only */
    assert_int_equal(x.n_layers, 1);
    afmt_layer_info *li = &x.layers[0];
    assert_int_equal(li->layer_id, 1);
    assert_int_equal(li->footer_offset, 5000);
    assert_int_equal(li->footer_length, 300);
    assert_int_equal(li->data_offset, 4096);
    assert_int_equal(li->time_ns, 1000);
    assert_int_equal(li->nranks, 4);
    assert_int_equal(li->n_blocks, 2);
    assert_int_equal(li->n_chunks, 3);
    assert_int_equal(li->stored_bytes, 120);
    assert_int_equal(li->raw_bytes, 1020);
    assert_int_equal(li->n_attrs, 1);
    assert_string_equal(li->attrs[0].key, "host");
    assert_memory_equal(li->attrs[0].value, "node01", 6);

    apply_layer2(&x);
    loc = afmt__index_chunk(&x, 1, 0);
    assert_non_null(loc);
    assert_int_equal(loc->block, 2); /* global block index = 2 + 0 */
    assert_int_equal(loc->offset, 0);
    assert_non_null(afmt__index_chunk(&x, 1, 1));
    check_blocks(&x, 0, 2, 1); /* chunk 0 moved out */
    check_blocks(&x, 2, 2, 2);
    a = afmt__index_get_attr(&x, 1, "units");
    assert_int_equal(a->n, 1);
    assert_true(((const double *)(const void *)a->value)[0] == 3.0);
    assert_int_equal(t->n_attrs, 1); /* replaced, not added */

    apply_layer3(&x);
    afmt_array *t2 = afmt__index_find(&x, "temp");
    assert_non_null(t2);
    assert_int_equal(t2->d.id, 3);
    assert_int_equal(t2->d.dtype, AFMT_UINT8);
    afmt_array *old = afmt__index_by_id(&x, 1);
    assert_non_null(old);
    assert_false(old->live);
    assert_null(afmt__index_chunk(&x, 1, 0));
    assert_null(afmt__index_chunk(&x, 1, 1));
    assert_null(afmt__index_chunk(&x, 1, 5));
    assert_null(afmt__index_get_attr(&x, 1, "units"));
    assert_non_null(afmt__index_chunk(&x, 3, 0));
    assert_int_equal(afmt__index_chunk(&x, 3, 0)->block, 3);
    check_blocks(&x, 0, 2, 0);
    check_blocks(&x, 1, 1, 1);
    check_blocks(&x, 2, 2, 0);
    check_blocks(&x, 3, 1, 1);
    assert_int_equal(x.next_array_id, 4);
    assert_int_equal(afmt__index_live_count(&x), 2);
    assert_string_equal(afmt__index_live_at(&x, 0)->d.name, "pres");
    assert_string_equal(afmt__index_live_at(&x, 1)->d.name, "temp");
    assert_null(afmt__index_live_at(&x, 2));
    assert_int_equal(x.n_arrays, 3); /* deleted ones are kept */
    assert_int_equal(x.n_layers, 3);
    assert_int_equal(x.layers[2].layer_id, 3);
    assert_int_equal(x.layers[1].n_attrs, 0);
    /* File attributes survive. */
    assert_non_null(afmt__index_get_attr(&x, AFMT_ATTR_FILE, "title"));

    /* Session calls on top. */
    char msg[AFMT_ERRMSG_MAX] = "";
    afmt_array_rec r = def(10, "pres", AFMT_INT8, 1, P_SHAPE, P_CHUNK);
    assert_int_equal(afmt__index_define(&x, &r, msg), AFMT_EEXIST);
    assert_non_null(strstr(msg, "pres"));
    /* Re-defining the same id is idempotent. */
    r = def(2, "pres", AFMT_INT32, 1, P_SHAPE, P_CHUNK);
    assert_int_equal(afmt__index_define(&x, &r, msg), AFMT_OK);
    assert_int_equal(afmt__index_live_count(&x), 2);
    assert_int_equal(afmt__index_find(&x, "pres")->d.id, 2);
    assert_non_null(afmt__index_chunk(&x, 2, 0)); /* chunks kept */
    /* A re-set may not change the shape. */
    const uint64_t s6[] = {6};
    r = def(2, "pres", AFMT_INT32, 1, s6, P_CHUNK);
    assert_int_equal(afmt__index_define(&x, &r, msg), AFMT_EINVAL);
    /* A deleted id is never defined again: it stays deleted. */
    r = def(1, "temp", AFMT_FLOAT64, 2, T_SHAPE, T_CHUNK);
    assert_int_equal(afmt__index_define(&x, &r, msg), AFMT_EINVAL);
    assert_false(afmt__index_by_id(&x, 1)->live);
    assert_int_equal(afmt__index_find(&x, "temp")->d.id, 3);
    /* Set attributes: replace keeps one entry; unknown or dead arrays are refused. */
    const int32_t v = 42;
    assert_int_equal(afmt__index_set_attr(&x, 2, "k", AFMT_INT32, 1, &v), AFMT_OK);
    assert_int_equal(afmt__index_set_attr(&x, 2, "k", AFMT_INT32, 1, &v), AFMT_OK);
    assert_int_equal(afmt__index_by_id(&x, 2)->n_attrs, 1);
    assert_int_equal(afmt__index_set_attr(&x, 1, "k", AFMT_INT32, 1, &v), AFMT_ENOTFOUND);
    assert_int_equal(afmt__index_set_attr(&x, 99, "k", AFMT_INT32, 1, &v), AFMT_ENOTFOUND);
    assert_int_equal(afmt__index_set_attr(&x, 2, "", AFMT_INT32, 1, &v), AFMT_EINVAL);
    assert_int_equal(afmt__index_set_attr(&x, 2, "k", (afmt_dtype)99, 1, &v), AFMT_EINVAL);
    assert_int_equal(afmt__index_set_attr(&x, AFMT_ATTR_FILE, "empty", AFMT_UINT8, 0, NULL),
                     AFMT_OK);
    assert_int_equal(afmt__index_get_attr(&x, AFMT_ATTR_FILE, "empty")->n, 0);
    /* Delete: unknown id, live, again. */
    assert_int_equal(afmt__index_delete(&x, 99), AFMT_ENOTFOUND);
    assert_int_equal(afmt__index_delete(&x, 2), AFMT_OK);
    assert_int_equal(afmt__index_delete(&x, 2), AFMT_OK);
    assert_null(afmt__index_find(&x, "pres"));
    check_blocks(&x, 1, 1, 0);
    assert_int_equal(afmt__index_live_count(&x), 1);
    assert_string_equal(afmt__index_live_at(&x, 0)->d.name, "temp");
    afmt__index_free(&x);
    afmt__index_free(&x);
}

/* A fresh index holding layer 1, and a layer to apply that must fail with ECORRUPT
 * and a message containing each of the given words. */
static void expect_corrupt(const afmt_layer *L, const char *w1, const char *w2, const char *w3) {
    afmt_index x;
    afmt__index_init(&x);
    apply_layer1(&x);
    uint64_t nb = x.n_blocks, nl = x.n_layers;
    char msg[AFMT_ERRMSG_MAX] = "";
    assert_int_equal(afmt__index_apply(&x, L, 9000, 10, msg), AFMT_ECORRUPT);
    const char *w[] = {w1, w2, w3};
    for (int i = 0; i < 3; i++)
        if (w[i] && !strstr(msg, w[i])) fail_msg("message \"%s\" lacks \"%s\"", msg, w[i]);
    /* Nothing of the failed layer's blocks or chunks went in. */
    assert_int_equal(x.n_blocks, nb);
    assert_int_equal(x.n_layers, nl);
    check_blocks(&x, 0, 2, 2);
    assert_int_equal(afmt__index_chunk(&x, 1, 0)->block, 0);
    afmt__index_free(&x);
}

static void test_corrupt(void **state) {
    (void)state;
    afmt_block_rec blocks[] = {blk(9000, 1000, 1000)};
    {
        LAYER(L, 7);
        afmt_chunk_rec chunks[] = {chk(1, 0, 0, 0, 96), chk(99, 0, 0, 0, 8)};
        SET(L, blocks, blocks);
        SET(L, chunks, chunks);
        expect_corrupt(&L, "layer 7", "99", "unknown");
    }
    {
        LAYER(L, 7);
        afmt_chunk_rec chunks[] = {chk(1, 6, 0, 0, 48)};
        SET(L, blocks, blocks);
        SET(L, chunks, chunks);
        expect_corrupt(&L, "layer 7", "\"temp\"", "chunk index 6");
    }
    {
        /* Edge chunk 5 is 2x3 elements: 96 bytes is wrong. */
        LAYER(L, 7);
        afmt_chunk_rec chunks[] = {chk(1, 5, 0, 0, 96)};
        SET(L, blocks, blocks);
        SET(L, chunks, chunks);
        expect_corrupt(&L, "\"temp\"", "chunk 5", "96");
    }
    {
        LAYER(L, 7);
        afmt_chunk_rec chunks[] = {chk(1, 0, 1, 0, 96)}; /* block 1 of 1 */
        SET(L, blocks, blocks);
        SET(L, chunks, chunks);
        expect_corrupt(&L, "layer 7", "temp", "block 1");
    }
    {
        LAYER(L, 7);
        afmt_chunk_rec chunks[] = {chk(1, 0, 0, 950, 96)}; /* past the raw size */
        SET(L, blocks, blocks);
        SET(L, chunks, chunks);
        expect_corrupt(&L, "layer 7", "temp", "chunk 0");
    }
    {
        /* A chunk of an array deleted in the same layer. */
        LAYER(L, 7);
        afmt_array_rec arrays[] = {del(2, "pres")};
        afmt_chunk_rec chunks[] = {chk(2, 0, 0, 0, 20)};
        SET(L, arrays, arrays);
        SET(L, blocks, blocks);
        SET(L, chunks, chunks);
        expect_corrupt(&L, "layer 7", "deleted", "pres");
    }
    {
        LAYER(L, 7);
        const int8_t v = 1;
        afmt_attr_rec attrs[] = {attr(99, "k", AFMT_INT8, 1, &v)};
        SET(L, attrs, attrs);
        expect_corrupt(&L, "layer 7", "99", "\"k\"");
    }
    {
        LAYER(L, 7);
        const int8_t v = 1;
        afmt_array_rec arrays[] = {del(2, "pres")};
        afmt_attr_rec attrs[] = {attr(2, "k", AFMT_INT8, 1, &v)};
        SET(L, arrays, arrays);
        SET(L, attrs, attrs);
        expect_corrupt(&L, "layer 7", "deleted", "pres");
    }
    {
        /* A new id taking the name of a live array. */
        LAYER(L, 7);
        afmt_array_rec arrays[] = {def(5, "temp", AFMT_INT8, 1, P_SHAPE, P_CHUNK)};
        SET(L, arrays, arrays);
        expect_corrupt(&L, "layer 7", "temp", NULL);
    }
    {
        /* A malformed definition (chunk > shape) is caught before any change. */
        LAYER(L, 7);
        const uint64_t s[] = {4}, c[] = {5};
        afmt_array_rec arrays[] = {def(5, "x", AFMT_INT8, 1, s, c)};
        SET(L, arrays, arrays);
        expect_corrupt(&L, "layer 7", "id 5", NULL);
    }
}

static void test_scalar_and_sparse(void **state) {
    (void)state;
    afmt_index x;
    afmt__index_init(&x);
    LAYER(L, 1);
    const uint64_t big[] = {1000000000000ull}, one[] = {1};
    afmt_array_rec arrays[] = {def(1, "s", AFMT_FLOAT32, 0, NULL, NULL),
                               def(2, "sparse", AFMT_UINT16, 1, big, one)};
    afmt_block_rec blocks[] = {blk(0, 10, 10)};
    afmt_chunk_rec chunks[] = {chk(1, 0, 0, 0, 4), chk(2, 5, 0, 4, 2),
                               chk(2, 999999999999ull, 0, 6, 2)};
    SET(L, arrays, arrays);
    SET(L, blocks, blocks);
    SET(L, chunks, chunks);
    char msg[AFMT_ERRMSG_MAX] = "";
    assert_int_equal(afmt__index_apply(&x, &L, 0, 0, msg), AFMT_OK);
    assert_non_null(afmt__index_chunk(&x, 1, 0));
    assert_non_null(afmt__index_chunk(&x, 2, 999999999999ull));
    check_blocks(&x, 0, 3, 3);
    /* Deleting a huge sparse array scans the map instead of the grid. */
    assert_int_equal(afmt__index_delete(&x, 2), AFMT_OK);
    check_blocks(&x, 0, 3, 1);
    assert_null(afmt__index_chunk(&x, 2, 5));
    assert_non_null(afmt__index_chunk(&x, 1, 0));
    afmt__index_free(&x);
}

static void test_many_arrays_and_names(void **state) {
    (void)state;
    /* Names of equal length: with -DAFMT_INDEX_TEST_WEAK_HASH they all collide, which
     * exercises the collision chains; without it this is a plain scale test. */
    afmt_index x;
    afmt__index_init(&x);
    enum { N = 3000 };
    char name[32], msg[AFMT_ERRMSG_MAX];
    const uint64_t s[] = {8}, c[] = {4};
    for (uint64_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "a%05llu", (unsigned long long)i);
        afmt_array_rec r = def(i + 1, name, AFMT_INT8, 1, s, c);
        assert_int_equal(afmt__index_define(&x, &r, msg), AFMT_OK);
    }
    assert_int_equal(x.next_array_id, N + 1);
    /* Delete every third, then check every name. */
    for (uint64_t i = 0; i < N; i += 3) assert_int_equal(afmt__index_delete(&x, i + 1), AFMT_OK);
    for (uint64_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "a%05llu", (unsigned long long)i);
        afmt_array *a = afmt__index_find(&x, name);
        if (i % 3 == 0) {
            assert_null(a);
        } else {
            assert_non_null(a);
            assert_int_equal(a->d.id, i + 1);
        }
    }
    assert_int_equal(afmt__index_live_count(&x), N - (N + 2) / 3);
    for (uint64_t k = 0; k < afmt__index_live_count(&x); k++) {
        afmt_array *a = afmt__index_live_at(&x, k);
        assert_true(a->live);
        if (k) assert_true(a->d.id > afmt__index_live_at(&x, k - 1)->d.id);
    }
    /* Redefine the deleted names with new ids. */
    for (uint64_t i = 0; i < N; i += 3) {
        snprintf(name, sizeof name, "a%05llu", (unsigned long long)i);
        afmt_array_rec r = def(N + 1 + i, name, AFMT_INT8, 1, s, c);
        assert_int_equal(afmt__index_define(&x, &r, msg), AFMT_OK);
        r.id = N * 10 + i; /* the same name again, other id */
        assert_int_equal(afmt__index_define(&x, &r, msg), AFMT_EEXIST);
    }
    for (uint64_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "a%05llu", (unsigned long long)i);
        afmt_array *a = afmt__index_find(&x, name);
        assert_non_null(a);
        assert_int_equal(a->d.id, i % 3 == 0 ? N + 1 + i : i + 1);
    }
    assert_null(afmt__index_find(&x, "b00000"));
    assert_int_equal(x.by_name.count, N);
    afmt__index_free(&x);
}

static void test_replay_and_compaction(void **state) {
    (void)state;
    afmt_index x;
    afmt__index_init(&x);
    char msg[AFMT_ERRMSG_MAX] = "";
    /* Session: define A (5), delete it, define A (6); then the committed layer that
     * carries the same records is applied on top: idempotent. */
    afmt_array_rec a5 = def(5, "A", AFMT_UINT8, 1, (const uint64_t[]){2000}, (const uint64_t[]){1});
    afmt_array_rec a6 = def(6, "A", AFMT_UINT8, 1, (const uint64_t[]){10}, (const uint64_t[]){1});
    afmt_array_rec b7 = def(7, "B", AFMT_UINT8, 1, (const uint64_t[]){10}, (const uint64_t[]){1});
    assert_int_equal(afmt__index_define(&x, &a5, msg), AFMT_OK);
    assert_int_equal(afmt__index_delete(&x, 5), AFMT_OK);
    assert_int_equal(afmt__index_define(&x, &a6, msg), AFMT_OK);
    {
        LAYER(L, 1);
        afmt_array_rec arrays[] = {a5, del(5, "A"), a6};
        SET(L, arrays, arrays);
        L.next_array_id = 7;
        /* Applied as the writer's own layer: its records are in the index already. As a
         * layer of a file the DEFINE of the deleted id 5 would be damage. */
        assert_int_equal(afmt__index_apply(&x, &L, 0, 0, msg), AFMT_ECORRUPT);
        assert_non_null(strstr(msg, "deleted"));
        assert_int_equal(afmt__index_apply_own(&x, &L, 0, 0, msg), AFMT_OK);
    }
    assert_int_equal(afmt__index_find(&x, "A")->d.id, 6);
    assert_false(afmt__index_by_id(&x, 5)->live);
    assert_int_equal(x.next_array_id, 7);
    /* Many chunks of one array, then its deletion in a layer that also writes another:
     * the chunk locations are compacted and the other array's stay right. */
    assert_int_equal(afmt__index_define(&x, &b7, msg), AFMT_OK);
    {
        LAYER(L, 2);
        afmt_array_rec arrays[] = {
            def(8, "C", AFMT_UINT8, 1, (const uint64_t[]){2000}, (const uint64_t[]){1}), b7};
        afmt_block_rec blocks[] = {blk(0, 2010, 2010)};
        afmt_chunk_rec chunks[2010];
        for (uint64_t i = 0; i < 2000; i++) chunks[i] = chk(8, i, 0, i, 1);
        for (uint64_t i = 0; i < 10; i++) chunks[2000 + i] = chk(7, i, 0, 2000 + i, 1);
        SET(L, arrays, arrays);
        SET(L, blocks, blocks);
        SET(L, chunks, chunks);
        assert_int_equal(afmt__index_apply(&x, &L, 0, 0, msg), AFMT_OK);
    }
    check_blocks(&x, 0, 2010, 2010);
    {
        LAYER(L, 3);
        afmt_array_rec arrays[] = {del(8, "C")};
        afmt_block_rec blocks[] = {blk(0, 3, 3)};
        afmt_chunk_rec chunks[] = {chk(7, 3, 0, 0, 1), chk(7, 9, 0, 2, 1)};
        SET(L, arrays, arrays);
        SET(L, blocks, blocks);
        SET(L, chunks, chunks);
        assert_int_equal(afmt__index_apply(&x, &L, 0, 0, msg), AFMT_OK);
    }
    assert_true(x.n_locs < 1000); /* compacted */
    check_blocks(&x, 0, 2010, 8);
    check_blocks(&x, 1, 2, 2);
    for (uint64_t i = 0; i < 10; i++) {
        const afmt_chunk_loc *l = afmt__index_chunk(&x, 7, i);
        assert_non_null(l);
        if (i == 3 || i == 9) {
            assert_int_equal(l->block, 1);
            assert_int_equal(l->offset, i == 3 ? 0 : 2);
        } else {
            assert_int_equal(l->block, 0);
            assert_int_equal(l->offset, 2000 + i);
        }
    }
    assert_null(afmt__index_chunk(&x, 8, 0));
    afmt__index_free(&x);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_three_layers),          cmocka_unit_test(test_corrupt),
    cmocka_unit_test(test_scalar_and_sparse),     cmocka_unit_test(test_many_arrays_and_names),
    cmocka_unit_test(test_replay_and_compaction),
};

TU_MAIN("index", tests)
