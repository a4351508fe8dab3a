/* craft.c - edit-and-reseal helpers for crafted files (craft.h). Field offsets are those
 * of docs/format.md (5.1): the helpers read the record sizes from each footer's header,
 * as any reader must. */
#include "craft.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "common/util.h"

enum { H_HEADER_SIZE = 12, H_N_ARRAYS = 72, H_ARRAYS_SIZE = 104, H_BLOCKS_SIZE = 112 };
enum { H_CHUNKS_SIZE = 120, H_ARRAY_REC = 144, H_ARRAY_DIM = 148, H_BLOCK_REC = 152 };
enum { H_CHUNK_REC = 156, H_ATTR_REC = 160 };

void craft_load(craft_img *img, const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) fail_msg("craft_load: cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    img->len = (uint64_t)n;
    img->p = malloc((size_t)n + 1);
    assert_non_null(img->p);
    assert_int_equal(fread(img->p, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
}

void craft_save(const craft_img *img, const char *path) {
    FILE *fp = fopen(path, "wb");
    if (!fp) fail_msg("craft_save: cannot create %s", path);
    assert_int_equal(fwrite(img->p, 1, (size_t)img->len, fp), (size_t)img->len);
    assert_int_equal(fclose(fp), 0);
}

void craft_free(craft_img *img) {
    free(img->p);
    img->p = NULL;
    img->len = 0;
}

static void resize(craft_img *img, uint64_t len) {
    uint8_t *p = realloc(img->p, (size_t)len + 1);
    assert_non_null(p);
    if (len > img->len) memset(p + img->len, 0, (size_t)(len - img->len));
    img->p = p;
    img->len = len;
}

int craft_slot(const craft_img *img, afmt_super *s) {
    int which = -1;
    char msg[AFMT_ERRMSG_MAX];
    size_t rl = img->len < AFMT_SUPER_REGION ? (size_t)img->len : AFMT_SUPER_REGION;
    if (afmt__super_pick(img->p, rl, s, &which, msg) != AFMT_OK) fail_msg("craft_slot: %s", msg);
    return which;
}

void craft_put_slot(craft_img *img, int which, const afmt_super *s) {
    afmt__super_encode(s, img->p + (which ? AFMT_SLOT_B_OFFSET : AFMT_SLOT_A_OFFSET));
}

void craft_put_u64(craft_img *img, uint64_t off, uint64_t v) {
    assert_true(off + 8 <= img->len);
    afmt__put_u64(img->p + off, v);
}

void craft_put_u32(craft_img *img, uint64_t off, uint32_t v) {
    assert_true(off + 4 <= img->len);
    afmt__put_u32(img->p + off, v);
}

uint64_t craft_get_u64(const craft_img *img, uint64_t off) {
    assert_true(off + 8 <= img->len);
    return afmt__get_u64(img->p + off);
}

void craft_footer(const craft_img *img, int k, uint64_t *off, uint64_t *len) {
    afmt_super s;
    craft_slot(img, &s);
    uint64_t o = s.footer_offset, l = s.footer_length;
    for (int i = 0; i < k; i++) {
        assert_true(l > 0);
        /* prev_offset and prev_length at 24 and 32 of the header */
        uint64_t po = craft_get_u64(img, o + 24), pl = craft_get_u64(img, o + 32);
        o = po;
        l = pl;
    }
    assert_true(l > 0 && o + l <= img->len);
    *off = o;
    *len = l;
}

void craft_layer(const craft_img *img, int k, afmt_layer *L) {
    uint64_t off, len;
    craft_footer(img, k, &off, &len);
    char msg[AFMT_ERRMSG_MAX];
    if (afmt__footer_decode(img->p + off, len, L, msg) != AFMT_OK)
        fail_msg("craft_layer %d: %s", k, msg);
}

uint64_t craft_at(const craft_img *img, int k, uint64_t rel) {
    uint64_t off, len;
    craft_footer(img, k, &off, &len);
    assert_true(rel < len);
    return off + rel;
}

static uint32_t hdr_u32(const craft_img *img, int k, uint64_t rel) {
    return afmt__get_u32(img->p + craft_at(img, k, rel));
}

uint64_t craft_array_rec(const craft_img *img, int k, uint64_t i) {
    uint64_t pos = craft_at(img, k, hdr_u32(img, k, H_HEADER_SIZE));
    uint32_t rec = hdr_u32(img, k, H_ARRAY_REC), dim = hdr_u32(img, k, H_ARRAY_DIM);
    for (uint64_t j = 0; j < i; j++) pos += rec + (uint64_t)afmt__get_u32(img->p + pos + 20) * dim;
    return pos;
}

static uint64_t section(const craft_img *img, int k, int which) {
    uint64_t pos =
        hdr_u32(img, k, H_HEADER_SIZE) + craft_get_u64(img, craft_at(img, k, H_ARRAYS_SIZE));
    if (which >= 1) pos += craft_get_u64(img, craft_at(img, k, H_BLOCKS_SIZE));
    if (which >= 2) pos += craft_get_u64(img, craft_at(img, k, H_CHUNKS_SIZE));
    return craft_at(img, k, pos);
}

uint64_t craft_block_rec(const craft_img *img, int k, uint64_t i) {
    return section(img, k, 0) + i * hdr_u32(img, k, H_BLOCK_REC);
}

uint64_t craft_chunk_rec(const craft_img *img, int k, uint64_t i) {
    return section(img, k, 1) + i * hdr_u32(img, k, H_CHUNK_REC);
}

uint64_t craft_attr_rec(const craft_img *img, int k, uint64_t i) {
    return section(img, k, 2) + i * hdr_u32(img, k, H_ATTR_REC);
}

void craft_reseal(craft_img *img, int k) {
    uint64_t off, len;
    craft_footer(img, k, &off, &len);
    uint8_t *F = img->p + off;
    afmt__put_u64(F + len - 8, afmt__checksum(F, (size_t)(len - 8)));
    uint64_t sum = afmt__footer_checksum(F, len);
    afmt__put_u64(F + len + 16, sum); /* the trailer's footer_checksum */
    if (k == 0) {
        afmt_super s;
        int which = craft_slot(img, &s);
        s.footer_checksum = sum;
        craft_put_slot(img, which, &s);
    }
}

void craft_replace_newest(craft_img *img, const afmt_layer *L) {
    afmt_super s;
    int which = craft_slot(img, &s);
    afmt_buf b;
    afmt__buf_init(&b);
    assert_int_equal(afmt__footer_encode(L, &b), AFMT_OK);
    uint64_t off = s.footer_offset, len = b.len;
    resize(img, off + len + AFMT_TRAILER_SIZE);
    memcpy(img->p + off, b.data, (size_t)len);
    uint64_t sum = afmt__footer_checksum(b.data, len);
    afmt__trailer_encode(off, len, sum, img->p + off + len);
    afmt__buf_free(&b);
    s.footer_length = len;
    s.footer_checksum = sum;
    s.eof = off + len + AFMT_TRAILER_SIZE;
    craft_put_slot(img, which, &s);
}

void craft_append_layer(craft_img *img, afmt_layer *L, const uint8_t *data, uint64_t n) {
    afmt_super s;
    craft_slot(img, &s);
    uint64_t base = s.eof;
    for (uint64_t i = 0; i < L->n_blocks; i++) L->blocks[i].offset += base;
    L->layer_id = s.layer_id + 1;
    L->prev_offset = s.footer_offset;
    L->prev_length = s.footer_length;
    L->data_offset = base;
    if (!L->next_array_id) L->next_array_id = s.next_array_id;
    if (!L->nranks) L->nranks = 1;
    afmt_buf b;
    afmt__buf_init(&b);
    assert_int_equal(afmt__footer_encode(L, &b), AFMT_OK);
    uint64_t foff = base + n, len = b.len;
    resize(img, foff + len + AFMT_TRAILER_SIZE);
    if (n) memcpy(img->p + base, data, (size_t)n);
    memcpy(img->p + foff, b.data, (size_t)len);
    uint64_t sum = afmt__footer_checksum(b.data, len);
    afmt__trailer_encode(foff, len, sum, img->p + foff + len);
    afmt__buf_free(&b);
    s.generation++;
    s.footer_offset = foff;
    s.footer_length = len;
    s.footer_checksum = sum;
    s.eof = foff + len + AFMT_TRAILER_SIZE;
    s.nlayers++;
    s.layer_id = L->layer_id;
    if (s.next_array_id < L->next_array_id) s.next_array_id = L->next_array_id;
    craft_put_slot(img, afmt__super_slot_offset(s.generation) ? 1 : 0, &s);
}
