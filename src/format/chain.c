/* chain.c - the footer chain of a superblock slot, walked and checked newest first
 * (format.md 11.1). Every footer is read with its trailer in one request into a buffer
 * that is reused; nothing is allocated by a count the file states (a chain of crafted
 * length costs one footer's memory at a time). */
#include "format/chain.h"

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

/* C8: the layer's blocks lie in [data_offset, off), where off is the footer's offset. */
static int check_placement(const afmt_layer *L, uint64_t off, char *errmsg) {
    if (L->data_offset > off)
        return afmt__fail(errmsg, AFMT_ECORRUPT,
                          "layer %llu: data_offset %llu lies after its footer", (ull)L->layer_id,
                          (ull)L->data_offset);
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

int afmt__chain_walk(afmt_storage *st, const afmt_super *s, afmt_chain_fn fn, void *ctx,
                     afmt_chain_pos *pos, char *errmsg) {
    afmt_chain_pos here = {0, s->footer_offset, s->footer_length, UINT64_MAX, 0};
    uint64_t newest_next_id = 0;
    afmt_buf buf;
    afmt__buf_init(&buf);
    int rc = AFMT_OK;
    while (here.length > 0) {
        const uint64_t off = here.offset, len = here.length;
        uint64_t end = 0;
        /* C1, C2 */
        if (here.k >= s->nlayers) {
            rc = afmt__fail(errmsg, AFMT_ECORRUPT,
                            "the chain is longer than the %llu layers the superblock counts",
                            (ull)s->nlayers);
            break;
        }
        if (off < AFMT_SUPER_REGION || !afmt__add_ok(off, len, &end) ||
            !afmt__add_ok(end, AFMT_TRAILER_SIZE, &end) || end > s->eof) {
            rc = afmt__fail(errmsg, AFMT_ECORRUPT, "lies outside the committed file [%d, %llu)",
                            AFMT_SUPER_REGION, (ull)s->eof);
            break;
        }
        /* C3: the footer and its trailer in one request. */
        buf.len = 0;
        if (len > SIZE_MAX - AFMT_TRAILER_SIZE ||
            afmt__buf_reserve(&buf, (size_t)len + AFMT_TRAILER_SIZE) != AFMT_OK) {
            rc = afmt__fail(errmsg, AFMT_ENOMEM, "out of memory for a footer of %llu bytes",
                            (ull)len);
            break;
        }
        if ((rc = st->ops->read_at(st, off, buf.data, len + AFMT_TRAILER_SIZE)) != AFMT_OK) {
            afmt__fail(errmsg, rc, "%s", st->errmsg);
            break;
        }
        const uint8_t *F = buf.data;
        uint64_t sum = afmt__footer_checksum(F, len);
        /* C4 */
        if (here.k == 0 && sum != s->footer_checksum) {
            /* Tell a damaged footer from a slot that points at another, intact one. */
            int self =
                len >= 8 && afmt__checksum(F, (size_t)(len - 8)) == afmt__get_u64(F + len - 8);
            rc = afmt__fail(errmsg, AFMT_ECORRUPT, "does not match the superblock's checksum%s",
                            self ? " (the footer checks itself: the slot points at another footer)"
                                 : ": the footer is damaged");
            break;
        }
        /* C5 */
        const char *why = trailer_problem(F + len, off, len, sum);
        if (why) {
            rc = afmt__fail(errmsg, AFMT_ECORRUPT, "its trailer at offset %llu is damaged: %s",
                            (ull)(off + len), why);
            break;
        }
        /* C6 */
        afmt_layer L;
        char msg[AFMT_ERRMSG_MAX];
        if ((rc = afmt__footer_decode(F, len, &L, msg)) != AFMT_OK) {
            afmt__fail(errmsg, rc, "%s", msg);
            break;
        }
        /* C7: ids strictly decrease along the chain and never exceed the slot's highest
         * id; otherwise a later commit could reuse one. */
        if (L.layer_id == 0 || (here.k == 0 && L.layer_id > s->layer_id) ||
            (here.k > 0 && L.layer_id >= here.newer_id)) {
            if (here.k == 0)
                rc = afmt__fail(errmsg, AFMT_ECORRUPT,
                                "layer id %llu is above the highest id %llu the superblock "
                                "records",
                                (ull)L.layer_id, (ull)s->layer_id);
            else
                rc = afmt__fail(errmsg, AFMT_ECORRUPT,
                                "layer id %llu is out of order in the chain (not below the "
                                "newer layer %llu)",
                                (ull)L.layer_id, (ull)here.newer_id);
            afmt__layer_free(&L);
            break;
        }
        /* C8 */
        if ((rc = check_placement(&L, off, errmsg)) != AFMT_OK) {
            afmt__layer_free(&L);
            break;
        }
        if (here.k == 0) newest_next_id = L.next_array_id;
        const uint64_t id = L.layer_id, prev_off = L.prev_offset, prev_len = L.prev_length;
        here.walked++;
        if (fn) {
            afmt_chain_link link = {here.k, off, len, F, &L};
            rc = fn(ctx, &link, errmsg);
        }
        afmt__layer_free(&L);
        if (rc != AFMT_OK) break;
        here.k++;
        here.newer_id = id;
        here.offset = prev_off;
        here.length = prev_len;
    }
    afmt__buf_free(&buf);
    /* C9, C10 */
    if (rc == AFMT_OK && here.walked != s->nlayers)
        rc = afmt__fail(errmsg, AFMT_ECORRUPT,
                        "the superblock counts %llu layers, the chain has %llu", (ull)s->nlayers,
                        (ull)here.walked);
    if (rc == AFMT_OK && here.walked > 0 && s->next_array_id < newest_next_id)
        rc = afmt__fail(errmsg, AFMT_ECORRUPT,
                        "the superblock's next_array_id %llu is below the newest layer's %llu",
                        (ull)s->next_array_id, (ull)newest_next_id);
    if (pos) *pos = here;
    return rc;
}
