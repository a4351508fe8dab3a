/* chain.c - the footer chain of a superblock slot, walked and checked newest first
 * (format.md 11.1). Every footer is read with its trailer in one request into a buffer
 * that is reused; nothing is allocated by a count the file states (a chain of crafted
 * length costs one footer's memory at a time). */
#include "format/chain.h"
#include "format/segment.h"

#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"

typedef unsigned long long ull;

/* C5: the trailer after the footer at [off, +len) whose XXH3-64 is sum. */
static const char *trailer_problem(const uint8_t *tr, uint64_t off, uint64_t len, uint64_t sum) {
    uint64_t to = 0, tl = 0, tc = 0;
    if (afmt__trailer_decode(tr, &to, &tl, &tc) != AFMT_OK) return "bad magic or footer range";
    if (to != off || tl != len) return "it names another footer";
    if (tc != sum) return "its footer checksum does not match the footer";
    return NULL;
}

/* C8: the layer's blocks (v1) or segments (v2) lie in [data_offset, off), where off is
 * the footer's offset. */
static int check_placement(const afmt_layer *L, uint64_t off, char *errmsg) {
    if (L->data_offset > off)
        return afmt__fail(errmsg, AFMT_ECORRUPT,
                          "layer %llu: data_offset %llu lies after its footer", (ull)L->layer_id,
                          (ull)L->data_offset);
    for (uint64_t s = 0; s < L->n_segs; s++) {
        const afmt_seg_rec *G = &L->segs[s];
        if (G->offset + G->length > off) /* the decoder checked that it does not wrap */
            return afmt__fail(errmsg, AFMT_ECORRUPT,
                              "layer %llu: segment %llu at offset %llu (%llu bytes) is not inside "
                              "the layer's data [%llu, %llu)",
                              (ull)L->layer_id, (ull)s, (ull)G->offset, (ull)G->length,
                              (ull)L->data_offset, (ull)off);
    }
    for (uint64_t b = 0; b < L->n_blocks; b++) {
        const afmt_block_rec *B = &L->blocks[b];
        /* The decoder checked offset >= data_offset and that the sum does not wrap. */
        if (B->offset + B->stored_size > off)
            return afmt__fail(errmsg, AFMT_ECORRUPT,
                              "layer %llu: block %llu at offset %llu (%llu bytes) is not inside "
                              "the layer's data [%llu, %llu)",
                              (ull)L->layer_id, (ull)b, (ull)B->offset, (ull)B->stored_size,
                              (ull)L->data_offset, (ull)off);
    }
    return AFMT_OK;
}

/* The state of one walk, so that each step below takes one argument for it. */
typedef struct {
    afmt_storage *st;
    const afmt_super *s;
    afmt_chain_fn fn;
    void *ctx;
    afmt_buf buf;            /* the footer and its trailer, reused for every footer */
    afmt_buf segs;           /* a v2 footer's segments, reused likewise */
    int segments;            /* read them */
    afmt_chain_pos here;     /* the footer being walked */
    uint64_t newest_next_id; /* next_array_id of the newest footer, for C10 */
    char *errmsg;
} walker;

/* C1, C2: the footer is one of the nlayers the slot counts and lies in the file. */
static int check_range(const walker *w) {
    const afmt_super *s = w->s;
    uint64_t end = 0;
    if (w->here.k >= s->nlayers)
        return afmt__fail(w->errmsg, AFMT_ECORRUPT,
                          "the chain is longer than the %llu layers the superblock counts",
                          (ull)s->nlayers);
    if (w->here.offset < AFMT_SUPER_REGION || !afmt__add_ok(w->here.offset, w->here.length, &end) ||
        !afmt__add_ok(end, AFMT_TRAILER_SIZE, &end) || end > s->eof)
        return afmt__fail(w->errmsg, AFMT_ECORRUPT, "lies outside the committed file [%d, %llu)",
                          AFMT_SUPER_REGION, (ull)s->eof);
    return AFMT_OK;
}

/* C3: the footer and its trailer in one request. */
static int read_footer(walker *w) {
    const uint64_t off = w->here.offset, len = w->here.length;
    int rc;
    w->buf.len = 0;
    if (len > SIZE_MAX - AFMT_TRAILER_SIZE ||
        afmt__buf_reserve(&w->buf, (size_t)len + AFMT_TRAILER_SIZE) != AFMT_OK)
        return afmt__fail(w->errmsg, AFMT_ENOMEM, "out of memory for a footer of %llu bytes",
                          (ull)len);
    if ((rc = w->st->ops->read_at(w->st, off, w->buf.data, len + AFMT_TRAILER_SIZE)) != AFMT_OK)
        afmt__fail(w->errmsg, rc, "%s", w->st->errmsg);
    return rc;
}

/* C4: the newest footer has the checksum the slot records. */
static int check_slot_checksum(const walker *w, const uint8_t *F, uint64_t len, uint64_t sum) {
    if (w->here.k != 0 || sum == w->s->footer_checksum) return AFMT_OK;
    /* Tell a damaged footer from a slot that points at another, intact one. */
    int self = len >= 8 && afmt__checksum(F, (size_t)(len - 8)) == afmt__get_u64(F + len - 8);
    return afmt__fail(w->errmsg, AFMT_ECORRUPT, "does not match the superblock's checksum%s",
                      self ? " (the footer checks itself: the slot points at another footer)"
                           : ": the footer is damaged");
}

/* C5: the trailer after the footer names it and its checksum. */
static int check_trailer(const walker *w, const uint8_t *F, uint64_t len, uint64_t sum) {
    const uint64_t off = w->here.offset;
    const char *why = trailer_problem(F + len, off, len, sum);
    if (!why) return AFMT_OK;
    return afmt__fail(w->errmsg, AFMT_ECORRUPT, "its trailer at offset %llu is damaged: %s",
                      (ull)(off + len), why);
}

/* C7: ids strictly decrease along the chain and never exceed the slot's highest id;
 * otherwise a later commit could reuse one. */
static int check_layer_id(const walker *w, const afmt_layer *L) {
    const afmt_chain_pos *here = &w->here;
    if (L->layer_id != 0 && !(here->k == 0 && L->layer_id > w->s->layer_id) &&
        !(here->k > 0 && L->layer_id >= here->newer_id))
        return AFMT_OK;
    if (here->k == 0)
        return afmt__fail(w->errmsg, AFMT_ECORRUPT,
                          "layer id %llu is above the highest id %llu the superblock records",
                          (ull)L->layer_id, (ull)w->s->layer_id);
    return afmt__fail(w->errmsg, AFMT_ECORRUPT,
                      "layer id %llu is out of order in the chain (not below the newer layer "
                      "%llu)",
                      (ull)L->layer_id, (ull)here->newer_id);
}

/* C7, C8 on the decoded layer, then the callback; the layer counts as walked once its
 * checks pass, whatever the callback says. */
static int visit_layer(walker *w, const uint8_t *F, afmt_layer *L) {
    afmt_chain_pos *here = &w->here;
    int rc = check_layer_id(w, L);
    if (rc == AFMT_OK) rc = check_placement(L, here->offset, w->errmsg);
    /* v2: the segments (format.md 9.1, X1-X9), so that the layer has its blocks and
     * chunks like a v1 one. */
    w->segs.len = 0;
    if (rc == AFMT_OK && w->segments) rc = afmt__segments_read(w->st, L, &w->segs, w->errmsg);
    if (rc == AFMT_OK && w->segments)
        rc = afmt__segments_attach(L, w->segs.data, (uint64_t)w->segs.len, here->offset, w->errmsg);
    if (rc != AFMT_OK) return rc;
    if (here->k == 0) w->newest_next_id = L->next_array_id;
    here->walked++;
    if (!w->fn) return AFMT_OK;
    afmt_chain_link link = {here->k, here->offset, here->length,         F,
                            L,       w->segs.data, (uint64_t)w->segs.len};
    return w->fn(w->ctx, &link, w->errmsg);
}

/* One footer, C1 to C8 in order; on success here moves to the next older footer. */
static int walk_link(walker *w) {
    const uint64_t len = w->here.length;
    int rc = check_range(w);
    if (rc == AFMT_OK) rc = read_footer(w);
    if (rc != AFMT_OK) return rc;
    const uint8_t *F = w->buf.data;
    uint64_t sum = afmt__footer_checksum(F, len);
    if ((rc = check_slot_checksum(w, F, len, sum)) != AFMT_OK) return rc;
    if ((rc = check_trailer(w, F, len, sum)) != AFMT_OK) return rc;
    afmt_layer L; /* C6 */
    char msg[AFMT_ERRMSG_MAX];
    if ((rc = afmt__footer_decode(F, len, &L, msg)) != AFMT_OK) {
        afmt__fail(w->errmsg, rc, "%s", msg);
        return rc;
    }
    /* Read before the callback, which may take the layer over and zero it. */
    const uint64_t id = L.layer_id, prev_off = L.prev_offset, prev_len = L.prev_length;
    rc = visit_layer(w, F, &L);
    afmt__layer_free(&L);
    if (rc != AFMT_OK) return rc;
    w->here.k++;
    w->here.newer_id = id;
    w->here.offset = prev_off;
    w->here.length = prev_len;
    return AFMT_OK;
}

/* C9, C10: the chain has as many layers as the slot counts, and the slot's next array id
 * is not below the newest layer's. */
static int check_totals(const walker *w) {
    const afmt_super *s = w->s;
    if (w->here.walked != s->nlayers)
        return afmt__fail(w->errmsg, AFMT_ECORRUPT,
                          "the superblock counts %llu layers, the chain has %llu", (ull)s->nlayers,
                          (ull)w->here.walked);
    if (w->here.walked > 0 && s->next_array_id < w->newest_next_id)
        return afmt__fail(w->errmsg, AFMT_ECORRUPT,
                          "the superblock's next_array_id %llu is below the newest layer's %llu",
                          (ull)s->next_array_id, (ull)w->newest_next_id);
    return AFMT_OK;
}

int afmt__chain_walk(afmt_storage *st, const afmt_super *s, int segments, afmt_chain_fn fn,
                     void *ctx, afmt_chain_pos *pos, char *errmsg) {
    walker w = {.st = st, .s = s, .fn = fn, .ctx = ctx, .errmsg = errmsg, .segments = segments};
    w.here = (afmt_chain_pos){0, s->footer_offset, s->footer_length, UINT64_MAX, 0};
    afmt__buf_init(&w.buf);
    afmt__buf_init(&w.segs);
    int rc = AFMT_OK;
    while (rc == AFMT_OK && w.here.length > 0) rc = walk_link(&w);
    afmt__buf_free(&w.buf);
    afmt__buf_free(&w.segs);
    if (rc == AFMT_OK) rc = check_totals(&w);
    if (pos) *pos = w.here;
    return rc;
}
