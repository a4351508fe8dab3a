/* segment.c - index segments (docs/format.md 9.1): encoding, the checks X1-X9, reading a
 * layer's segments and attaching them to its decoded footer. The decoder treats its input
 * as hostile, like footer.c: counts are bounded by the length before anything is
 * allocated. */
#include "format/segment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static const uint8_t SEG_MAGIC[8] = {'A', 'F', 'M', 'T', 'S', 'E', 'G', 'M'};

enum { SEG_VERSION = 2, BLOCK_REC = 40, CHUNK_REC = 40 };

typedef unsigned long long ull;

uint64_t afmt__segment_size(uint64_t nb, uint64_t nc) {
    uint64_t a = 0, b = 0, t = 0;
    if (!afmt__mul_ok(nb, BLOCK_REC, &a) || !afmt__mul_ok(nc, CHUNK_REC, &b) ||
        !afmt__add_ok(a, b, &t) || !afmt__add_ok(t, AFMT_SEG_HEADER + 8, &t))
        return 0;
    return t;
}

static int chunk_key_cmp(uint64_t a1, uint64_t c1, uint64_t a2, uint64_t c2) {
    if (a1 != a2) return a1 < a2 ? -1 : 1;
    if (c1 != c2) return c1 < c2 ? -1 : 1;
    return 0;
}

int afmt__segment_encode(uint64_t layer_id, uint32_t writer, const afmt_block_rec *blocks,
                         uint64_t nb, const afmt_chunk_rec *chunks, uint64_t nc, afmt_buf *out) {
    if (nc == 0) return afmt__fail(NULL, AFMT_EINVAL, "afmt__segment_encode: no chunk records");
    for (uint64_t i = 0; i < nc; i++) {
        const afmt_chunk_rec *c = &chunks[i];
        uint64_t e = 0;
        if (i > 0 && afmt__chunk_rec_cmp(&chunks[i - 1], c) >= 0)
            return afmt__fail(NULL, AFMT_EINVAL,
                              "afmt__segment_encode: chunk records %llu and %llu are not "
                              "strictly sorted",
                              (ull)i - 1, (ull)i);
        if (c->block >= nb || c->size == 0 || !afmt__add_ok(c->offset, c->size, &e) ||
            e > blocks[c->block].raw_size)
            return afmt__fail(NULL, AFMT_EINVAL,
                              "afmt__segment_encode: chunk record %llu (array %llu, chunk %llu) "
                              "points outside its block",
                              (ull)i, (ull)c->array_id, (ull)c->chunk_index);
    }
    for (uint64_t i = 0; i < nb; i++)
        if ((blocks[i].codec == AFMT_CODEC_NONE && blocks[i].stored_size != blocks[i].raw_size) ||
            blocks[i].raw_size > AFMT_MAX_BLOCK_RAW)
            return afmt__fail(NULL, AFMT_EINVAL, "afmt__segment_encode: block %llu invalid",
                              (ull)i);
    uint64_t size = afmt__segment_size(nb, nc);
    size_t start = out->len;
    if (size == 0 || size > SIZE_MAX - start || afmt__buf_reserve(out, (size_t)size) != AFMT_OK)
        return afmt__fail(NULL, AFMT_ENOMEM, "afmt__segment_encode: out of memory");
    uint8_t h[AFMT_SEG_HEADER] = {0};
    memcpy(h, SEG_MAGIC, 8);
    afmt__put_u32(h + 8, SEG_VERSION);
    afmt__put_u32(h + 12, AFMT_SEG_HEADER);
    afmt__put_u64(h + 16, layer_id);
    afmt__put_u64(h + 24, nb);
    afmt__put_u64(h + 32, nc);
    afmt__put_u32(h + 40, BLOCK_REC);
    afmt__put_u32(h + 44, CHUNK_REC);
    afmt__put_u32(h + 48, writer);
    afmt__buf_append(out, h, sizeof h);
    uint8_t r[BLOCK_REC]; /* = CHUNK_REC */
    for (uint64_t i = 0; i < nb; i++) {
        afmt__block_rec_put(r, &blocks[i]);
        afmt__buf_append(out, r, sizeof r);
    }
    for (uint64_t i = 0; i < nc; i++) {
        afmt__chunk_rec_put(r, &chunks[i]);
        afmt__buf_append(out, r, sizeof r);
    }
    afmt__buf_u64(out, afmt__checksum(out->data + start, out->len - start));
    return AFMT_OK; /* reserved above: no append can have failed */
}

void afmt__segment_root(const uint8_t *seg, uint64_t len, uint64_t offset, afmt_seg_rec *g) {
    uint64_t nb = afmt__get_u64(seg + 24), nc = afmt__get_u64(seg + 32);
    const uint8_t *c0 = seg + AFMT_SEG_HEADER + nb * BLOCK_REC;
    const uint8_t *cl = c0 + (nc - 1) * CHUNK_REC;
    memset(g, 0, sizeof *g);
    g->offset = offset;
    g->length = len;
    g->checksum = afmt__checksum(seg, (size_t)len);
    g->n_blocks = nb;
    g->n_chunks = nc;
    g->first_array = afmt__get_u64(c0);
    g->first_chunk = afmt__get_u64(c0 + 8);
    g->last_array = afmt__get_u64(cl);
    g->last_chunk = afmt__get_u64(cl + 8);
    g->writer = afmt__get_u32(seg + 48);
}

void afmt__segment_name(const afmt_layer *L, uint64_t s, char *out, size_t n) {
    const afmt_seg_rec *g = &L->segs[s];
    snprintf(out, n, "layer %llu: segment %llu (rank %u, at offset %llu, %llu bytes)",
             (ull)L->layer_id, (ull)s, g->writer, (ull)g->offset, (ull)g->length);
}

#define BAD(...) afmt__fail(errmsg, AFMT_ECORRUPT, __VA_ARGS__)

/* X7: block record i at q. */
static int decode_block(const uint8_t *q, uint64_t i, const afmt_layer *L, uint64_t footer_offset,
                        afmt_block_rec *b, char *errmsg) {
    afmt__block_rec_get(q, b);
    uint64_t e = 0;
    if (b->offset < L->data_offset || !afmt__add_ok(b->offset, b->stored_size, &e) ||
        e > footer_offset)
        return BAD("block record %llu at offset %llu (%llu bytes) is not inside the layer's data "
                   "[%llu, %llu)",
                   (ull)i, (ull)b->offset, (ull)b->stored_size, (ull)L->data_offset,
                   (ull)footer_offset);
    char why[256];
    if (afmt__block_rec_bad(b, i, L->nranks, why, sizeof why)) return BAD("%s", why);
    return AFMT_OK;
}

/* X8: chunk record i at q (prev: record i-1, or NULL). */
static int decode_chunk(const uint8_t *q, uint64_t i, const afmt_layer *L,
                        const afmt_block_rec *blocks, uint64_t nb, const afmt_chunk_rec *prev,
                        afmt_chunk_rec *c, char *errmsg) {
    afmt__chunk_rec_get(q, c);
    if (c->array_id == 0 || c->array_id >= L->next_array_id)
        return BAD("chunk record %llu: array id %llu not in 1..next_array_id-1 = %llu", (ull)i,
                   (ull)c->array_id, (ull)(L->next_array_id - 1));
    if (prev && afmt__chunk_rec_cmp(prev, c) >= 0)
        return BAD("chunk record %llu (array %llu, chunk %llu) does not sort strictly after "
                   "record %llu (array %llu, chunk %llu)",
                   (ull)i, (ull)c->array_id, (ull)c->chunk_index, (ull)(i - 1), (ull)prev->array_id,
                   (ull)prev->chunk_index);
    if (c->block >= nb)
        return BAD("chunk record %llu references block %llu of %llu", (ull)i, (ull)c->block,
                   (ull)nb);
    uint64_t e = 0;
    if (c->size == 0 || !afmt__add_ok(c->offset, c->size, &e) || e > blocks[c->block].raw_size)
        return BAD("chunk record %llu: bytes [%llu, +%llu) are not inside block %llu of raw size "
                   "%llu",
                   (ull)i, (ull)c->offset, (ull)c->size, (ull)c->block,
                   (ull)blocks[c->block].raw_size);
    return AFMT_OK;
}

/* X2-X6: checksums, magic, version, sizes, and what the header must repeat. *hs, *bs, *cs:
 * the header and record sizes. */
static int decode_seg_header(const uint8_t *p, uint64_t len, const afmt_seg_rec *g,
                             const afmt_layer *L, uint32_t *hs, uint32_t *bs, uint32_t *cs,
                             char *errmsg) {
    if (len != g->length || len < AFMT_SEG_MIN)
        return BAD("%llu bytes where the root table says %llu", (ull)len, (ull)g->length);
    uint64_t whole = afmt__checksum(p, (size_t)len);
    if (whole != g->checksum)
        return BAD("does not match the root table's checksum (root 0x%016llx, computed 0x%016llx)",
                   (ull)g->checksum, (ull)whole);
    uint64_t stored = afmt__get_u64(p + len - 8), computed = afmt__checksum(p, (size_t)(len - 8));
    if (stored != computed)
        return BAD("bad checksum (stored 0x%016llx, computed 0x%016llx)", (ull)stored,
                   (ull)computed);
    if (memcmp(p, SEG_MAGIC, 8) != 0) return BAD("bad magic");
    uint32_t version = afmt__get_u32(p + 8);
    *hs = afmt__get_u32(p + 12);
    *bs = afmt__get_u32(p + 40);
    *cs = afmt__get_u32(p + 44);
    if (version != SEG_VERSION) return BAD("segment version %u, not %d", version, SEG_VERSION);
    if (*hs < AFMT_SEG_HEADER || *bs < BLOCK_REC || *cs < CHUNK_REC)
        return BAD("header size %u, block record size %u or chunk record size %u below %d, %d, %d",
                   *hs, *bs, *cs, AFMT_SEG_HEADER, BLOCK_REC, CHUNK_REC);
    uint64_t nb = afmt__get_u64(p + 24), nc = afmt__get_u64(p + 32), a = 0, b = 0, t = 0;
    if (!afmt__mul_ok(nb, *bs, &a) || !afmt__mul_ok(nc, *cs, &b) || !afmt__add_ok(a, b, &t) ||
        !afmt__add_ok(t, (uint64_t)*hs + 8, &t) || t != len)
        return BAD("%llu blocks and %llu chunks need other than the segment's %llu bytes", (ull)nb,
                   (ull)nc, (ull)len);
    uint64_t lid = afmt__get_u64(p + 16);
    uint32_t writer = afmt__get_u32(p + 48);
    if (lid != L->layer_id || nb != g->n_blocks || nc != g->n_chunks || writer != g->writer)
        return BAD("its header (layer %llu, %llu blocks, %llu chunks, rank %u) does not match the "
                   "root table (layer %llu, %llu blocks, %llu chunks, rank %u)",
                   (ull)lid, (ull)nb, (ull)nc, writer, (ull)L->layer_id, (ull)g->n_blocks,
                   (ull)g->n_chunks, g->writer);
    return AFMT_OK;
}

int afmt__segment_decode(const uint8_t *p, uint64_t len, const afmt_seg_rec *g, const afmt_layer *L,
                         uint64_t footer_offset, afmt_block_rec **blocks, afmt_chunk_rec **chunks,
                         char *errmsg) {
    *blocks = NULL;
    *chunks = NULL;
    uint32_t hs = 0, bs = 0, cs = 0;
    int rc = decode_seg_header(p, len, g, L, &hs, &bs, &cs, errmsg);
    if (rc != AFMT_OK) return rc;
    uint64_t nb = g->n_blocks, nc = g->n_chunks; /* <= len / 40: the products fit */
    afmt_block_rec *B = malloc(sizeof *B * (size_t)(nb ? nb : 1));
    afmt_chunk_rec *C = malloc(sizeof *C * (size_t)nc);
    if (!B || !C) {
        free(B);
        free(C);
        return afmt__fail(errmsg, AFMT_ENOMEM, "out of memory for %llu blocks and %llu chunks",
                          (ull)nb, (ull)nc);
    }
    const uint8_t *q = p + hs;
    for (uint64_t i = 0; rc == AFMT_OK && i < nb; i++, q += bs)
        rc = decode_block(q, i, L, footer_offset, &B[i], errmsg);
    for (uint64_t i = 0; rc == AFMT_OK && i < nc; i++, q += cs)
        rc = decode_chunk(q, i, L, B, nb, i ? &C[i - 1] : NULL, &C[i], errmsg);
    if (rc == AFMT_OK &&
        (chunk_key_cmp(C[0].array_id, C[0].chunk_index, g->first_array, g->first_chunk) != 0 ||
         chunk_key_cmp(C[nc - 1].array_id, C[nc - 1].chunk_index, g->last_array, g->last_chunk) !=
             0))
        rc = BAD("its chunks run from (%llu, %llu) to (%llu, %llu), the root table says (%llu, "
                 "%llu) to (%llu, %llu)",
                 (ull)C[0].array_id, (ull)C[0].chunk_index, (ull)C[nc - 1].array_id,
                 (ull)C[nc - 1].chunk_index, (ull)g->first_array, (ull)g->first_chunk,
                 (ull)g->last_array, (ull)g->last_chunk);
    if (rc != AFMT_OK) {
        free(B);
        free(C);
        return rc;
    }
    *blocks = B;
    *chunks = C;
    return AFMT_OK;
}

int afmt__segments_bytes(const afmt_layer *L, uint64_t *total) {
    uint64_t t = 0;
    for (uint64_t s = 0; s < L->n_segs; s++)
        if (!afmt__add_ok(t, L->segs[s].length, &t)) return AFMT_ECORRUPT;
    *total = t;
    return AFMT_OK;
}

int afmt__segments_read(afmt_storage *st, const afmt_layer *L, afmt_buf *out, char *errmsg) {
    uint64_t total = 0;
    if (afmt__segments_bytes(L, &total) != AFMT_OK || total > SIZE_MAX - out->len)
        return afmt__fail(errmsg, AFMT_ECORRUPT, "layer %llu: its segments' lengths overflow",
                          (ull)L->layer_id);
    if (afmt__buf_reserve(out, (size_t)total) != AFMT_OK)
        return afmt__fail(errmsg, AFMT_ENOMEM,
                          "layer %llu: out of memory for %llu bytes of index segments",
                          (ull)L->layer_id, (ull)total);
    for (uint64_t s = 0; s < L->n_segs; s++) {
        const afmt_seg_rec *g = &L->segs[s];
        int rc = st->ops->read_at(st, g->offset, out->data + out->len, g->length);
        if (rc != AFMT_OK) {
            char name[160];
            afmt__segment_name(L, s, name, sizeof name);
            return afmt__fail(errmsg, rc, "%s: %s", name, st->errmsg);
        }
        out->len += (size_t)g->length;
    }
    return AFMT_OK;
}

/* The root table position of the segment whose blocks include joined block index b. */
static uint64_t seg_of_block(const afmt_layer *L, uint64_t b) {
    uint64_t s = 0;
    while (s + 1 < L->n_segs && b >= L->segs[s].n_blocks) b -= L->segs[s++].n_blocks;
    return s;
}

/* Merges the sorted runs of the segments' chunks (each already strictly sorted) into key
 * order by a plain sort of the concatenation; equal neighbours are keys in two segments. */
int afmt__segments_attach(afmt_layer *L, const uint8_t *p, uint64_t len, uint64_t footer_offset,
                          char *errmsg) {
    if (L->version == 1 || L->n_segs == 0) return AFMT_OK;
    uint64_t total = 0;
    if (afmt__segments_bytes(L, &total) != AFMT_OK || total != len)
        return afmt__fail(errmsg, AFMT_ECORRUPT,
                          "layer %llu: %llu bytes of segments where the root table lists %llu",
                          (ull)L->layer_id, (ull)len, (ull)total);
    /* Counts are bounded by the lengths read: L->seg_* (checked against the root table)
     * fit in memory in records of 40 bytes each. */
    afmt_block_rec *B = malloc(sizeof *B * (size_t)(L->seg_blocks ? L->seg_blocks : 1));
    afmt_chunk_rec *C = malloc(sizeof *C * (size_t)(L->seg_chunks ? L->seg_chunks : 1));
    int rc = (B && C) ? AFMT_OK
                      : afmt__fail(errmsg, AFMT_ENOMEM,
                                   "layer %llu: out of memory for %llu blocks and %llu "
                                   "chunks",
                                   (ull)L->layer_id, (ull)L->seg_blocks, (ull)L->seg_chunks);
    uint64_t nb = 0, nc = 0, at = 0;
    for (uint64_t s = 0; rc == AFMT_OK && s < L->n_segs; s++) {
        const afmt_seg_rec *g = &L->segs[s];
        afmt_block_rec *sb = NULL;
        afmt_chunk_rec *sc = NULL;
        char why[AFMT_ERRMSG_MAX]; /* afmt__fail fills AFMT_ERRMSG_MAX bytes */
        rc = afmt__segment_decode(p + at, g->length, g, L, footer_offset, &sb, &sc, why);
        if (rc != AFMT_OK) {
            char name[160];
            afmt__segment_name(L, s, name, sizeof name);
            afmt__fail(errmsg, rc, "%s: %.800s", name, why);
            break;
        }
        memcpy(B + nb, sb, sizeof *B * (size_t)g->n_blocks);
        for (uint64_t i = 0; i < g->n_chunks; i++) {
            C[nc + i] = sc[i];
            C[nc + i].block += nb;
        }
        nb += g->n_blocks;
        nc += g->n_chunks;
        at += g->length;
        free(sb);
        free(sc);
    }
    if (rc == AFMT_OK && L->n_segs > 1) {
        qsort(C, (size_t)nc, sizeof *C, afmt__chunk_rec_cmp);
        for (uint64_t i = 1; i < nc; i++)
            if (afmt__chunk_rec_cmp(&C[i - 1], &C[i]) == 0) {
                rc = afmt__fail(errmsg, AFMT_ECORRUPT,
                                "layer %llu: chunk (%llu, %llu) is in two segments (%llu and "
                                "%llu)",
                                (ull)L->layer_id, (ull)C[i].array_id, (ull)C[i].chunk_index,
                                (ull)seg_of_block(L, C[i - 1].block),
                                (ull)seg_of_block(L, C[i].block));
                break;
            }
    }
    if (rc != AFMT_OK) {
        free(B);
        free(C);
        return rc;
    }
    free(L->blocks);
    free(L->chunks);
    L->blocks = B;
    L->n_blocks = nb;
    L->chunks = C;
    L->n_chunks = nc;
    return AFMT_OK;
}
