/* load.c - the layer-chain loader: rank 0 reads the superblock and the footer chain
 * (every check of format.md 3 and 11.1: superblock.c, chain.c), one broadcast shares
 * them, every rank applies the footers to its index oldest first (index.c). Used by open,
 * open_layer, discard, rollback, compaction and a commit that must reload. */
#include "api/load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "format/chain.h"
#include "format/segment.h"

/* ---- rank 0: the chain into one buffer --------------------------------------------- */

/* What collect_footer gathers: the footers of the view, newest first. */
typedef struct {
    afmt_file *f;
    afmt_buf dir, bytes; /* (offset, length, segment bytes) triples; each footer's bytes
                          * followed by its segments' (v2) */
    uint64_t n;
} chain_collect;

static int collect_footer(void *ctx, const afmt_chain_link *link, char *errmsg) {
    chain_collect *c = ctx;
    afmt_file *f = c->f;
    uint64_t id = link->L->layer_id;
    if (id > f->view_layer) return AFMT_OK; /* newer than the layer asked for */
    if (c->n == 0 && f->view_layer != UINT64_MAX && id != f->view_layer)
        return afmt__fail(errmsg, AFMT_ERANGE, "no layer %llu in the file",
                          (unsigned long long)f->view_layer);
    afmt__buf_append(&c->bytes, link->bytes, (size_t)link->length);
    if (c->bytes.oom)
        return afmt__fail(errmsg, AFMT_ENOMEM, "out of memory for a footer of %llu bytes",
                          (unsigned long long)link->length);
    if (link->seg_len) afmt__buf_append(&c->bytes, link->segs, (size_t)link->seg_len);
    afmt__buf_u64(&c->dir, link->offset);
    afmt__buf_u64(&c->dir, link->length);
    afmt__buf_u64(&c->dir, link->seg_len);
    if (c->dir.oom || c->bytes.oom)
        return afmt__fail(errmsg, AFMT_ENOMEM, "out of memory for the segments of a footer");
    c->n++;
    return AFMT_OK;
}

/* Phase 1: the superblock region, then the file size (format.md 3.3): a writer extends
 * the file before it writes the slot naming the new end, so a size read afterwards covers
 * every slot read before. The other way round, a commit in between looks like a
 * truncated file. *rl: how much of the region exists. */
static int read_region(afmt_file *f, uint8_t *region, uint64_t *rl, uint64_t *size) {
    afmt_storage *st = f->st;
    int rc = st->ops->size(st, size); /* only to know how much of the region exists */
    if (rc != AFMT_OK) return afmt__fail(f->errmsg, rc, "%s", st->errmsg);
    *rl = *size < AFMT_SUPER_REGION ? *size : AFMT_SUPER_REGION;
    if (*rl > 0 && (rc = st->ops->read_at(st, 0, region, *rl)) != AFMT_OK)
        return afmt__fail(f->errmsg, rc, "%s", st->errmsg);
    if ((rc = st->ops->size(st, size)) != AFMT_OK)
        return afmt__fail(f->errmsg, rc, "%s", st->errmsg);
    return AFMT_OK;
}

/* Phase 2: the usable slot of the highest generation becomes f->super; *chosen is 0 (A)
 * or 1 (B). */
static int pick_slot(afmt_file *f, const uint8_t *region, uint64_t rl, uint64_t size, int *chosen) {
    char why[AFMT_ERRMSG_MAX];
    afmt_super_view sv;
    int rc = afmt__super_examine(region, (size_t)rl, size, &sv, why);
    if (rc != AFMT_OK) return afmt__fail(f->errmsg, rc, "afmt_open(%s): %s", f->path, why);
    f->super = sv.slot[sv.chosen];
    *chosen = sv.chosen;
    return AFMT_OK;
}

/* Phase 3: walks the chain of f->super newest first into c, skipping footers newer than
 * the view; the message says where the chain broke. */
static int walk_chain(afmt_file *f, int chosen, chain_collect *c) {
    char why[AFMT_ERRMSG_MAX];
    afmt_chain_pos pos;
    char slot = chosen ? 'B' : 'A';
    int rc = afmt__chain_walk(f->st, &f->super, 0, collect_footer, c, &pos, why);
    if (rc == AFMT_ERANGE)
        return afmt__fail(f->errmsg, rc, "afmt_open_layer(%s): %s", f->path, why);
    if (rc != AFMT_OK && pos.length == 0)
        return afmt__fail(f->errmsg, rc, "afmt_open(%s): layer chain of slot %c: %s", f->path, slot,
                          why);
    if (rc != AFMT_OK)
        return afmt__fail(f->errmsg, rc,
                          "afmt_open(%s): layer chain of slot %c: footer %llu (from the newest) at "
                          "offset %llu (%llu bytes): %s",
                          f->path, slot, (unsigned long long)pos.k, (unsigned long long)pos.offset,
                          (unsigned long long)pos.length, why);
    if (c->n == 0 && f->view_layer != UINT64_MAX)
        return afmt__fail(f->errmsg, AFMT_ERANGE, "afmt_open_layer(%s): no layer %llu in the file",
                          f->path, (unsigned long long)f->view_layer);
    return AFMT_OK;
}

/* Phase 4: [u64 n][n x (u64 offset, u64 length, u64 segment bytes)][footer, segments...]
 * into out. */
static int pack_chain(afmt_file *f, const chain_collect *c, afmt_buf *out) {
    afmt__buf_u64(out, c->n);
    afmt__buf_append(out, c->dir.data, c->dir.len);
    afmt__buf_append(out, c->bytes.data, c->bytes.len);
    if (out->oom)
        return afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_open(%s): out of memory", f->path);
    return AFMT_OK;
}

/* Rank 0's part of loading: f->super, and the footer bytes of the chain, newest first,
 * into out (pack_chain's layout). */
static int read_chain(afmt_file *f, afmt_buf *out) {
    uint8_t region[AFMT_SUPER_REGION];
    uint64_t size = 0, rl = 0;
    int chosen = 0;
    int rc = read_region(f, region, &rl, &size);
    if (rc == AFMT_OK) rc = pick_slot(f, region, rl, size, &chosen);
    if (rc != AFMT_OK) return rc;
    chain_collect c;
    memset(&c, 0, sizeof c);
    c.f = f;
    afmt__buf_init(&c.dir);
    afmt__buf_init(&c.bytes);
    rc = walk_chain(f, chosen, &c);
    if (rc == AFMT_OK) rc = pack_chain(f, &c, out);
    afmt__buf_free(&c.dir);
    afmt__buf_free(&c.bytes);
    return rc;
}

/* ---- every rank: share and apply --------------------------------------------------- */

/* Rank 0's superblock to every rank (f->super there), after the first agreement. */
static int share_super(afmt_file *f) {
    uint8_t sb[AFMT_SLOT_SIZE];
    if (f->rank == 0) afmt__super_encode(&f->super, sb);
    if (MPI_Bcast(sb, AFMT_SLOT_SIZE, MPI_BYTE, 0, f->comm) != MPI_SUCCESS)
        return afmt__fail(f->errmsg, AFMT_EMPI, "MPI_Bcast of the superblock failed");
    if (f->rank != 0) afmt__super_decode(sb, &f->super);
    return AFMT_OK;
}

/* Decodes the packed chain and applies its footers to f->idx, oldest first (the
 * directory lists the chain newest first). Local. */
static int apply_chain(afmt_file *f, const afmt_buf *chain) {
    uint64_t n = afmt__get_u64(chain->data);
    const uint8_t *dir = chain->data + 8;
    uint64_t *starts = malloc(sizeof(uint64_t) * (size_t)(n ? n : 1));
    if (!starts) return afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_open(%s): out of memory", f->path);
    for (uint64_t i = 0, at = 8 + 24 * n; i < n; i++) {
        starts[i] = at;
        at += afmt__get_u64(dir + 24 * i + 8) + afmt__get_u64(dir + 24 * i + 16);
    }
    int rc = AFMT_OK;
    for (uint64_t k = n; rc == AFMT_OK && k-- > 0;) {
        uint64_t off = afmt__get_u64(dir + 24 * k), len = afmt__get_u64(dir + 24 * k + 8);
        uint64_t seglen = afmt__get_u64(dir + 24 * k + 16);
        afmt_layer L;
        char msg[AFMT_ERRMSG_MAX];
        rc = afmt__footer_decode(chain->data + starts[k], len, &L, msg);
        if (rc == AFMT_OK && seglen && /* none read: a lazy layer (lazy.h) */
            (rc = afmt__segments_attach(&L, chain->data + starts[k] + len, seglen, off, msg)) !=
                AFMT_OK)
            afmt__layer_free(&L);
        if (rc == AFMT_OK) {
            rc = afmt__index_apply(&f->idx, &L, off, len, msg);
            afmt__layer_free(&L);
        }
        if (rc != AFMT_OK)
            afmt__fail(f->errmsg, rc, "afmt_open(%s): layer at %llu: %s", f->path,
                       (unsigned long long)off, msg);
    }
    free(starts);
    return rc;
}

int afmt__load_agreed(afmt_file *f, int rc) {
    afmt_buf chain;
    afmt__buf_init(&chain);
    if (rc == AFMT_OK && f->rank == 0) rc = read_chain(f, &chain);
    rc = afmt__file_agree(f, rc);
    if (rc != AFMT_OK) {
        afmt__buf_free(&chain);
        return rc;
    }
    /* One broadcast of the superblock and every footer: ranks never touch the metadata
     * server for it. */
    rc = share_super(f);
    char what[AFMT_ERRMSG_MAX];
    snprintf(what, sizeof what, "afmt_open(%s): sharing the footers", f->path);
    if ((rc = afmt__share_buf(f, &chain, rc, what)) != AFMT_OK) { /* agreed */
        afmt__buf_free(&chain);
        return rc;
    }
    f->idx.st = f->st; /* where the lazy layers' segments are read from */
    f->idx.segcache_limit = f->opts.index_cache;
    rc = apply_chain(f, &chain);
    afmt__buf_free(&chain);
    if (rc == AFMT_OK && f->idx.next_array_id < f->super.next_array_id)
        f->idx.next_array_id = f->super.next_array_id;
    if (f->idx.next_array_id == 0) f->idx.next_array_id = 1;
    return afmt__file_agree(f, rc);
}

int afmt__load(afmt_file *f) {
    return afmt__load_agreed(f, AFMT_OK);
}

int afmt__reload(afmt_file *f) {
    /* Build the new index aside: if loading fails (memory, I/O) the handle keeps the one
     * it had, instead of an empty index that would reuse array ids. */
    afmt_index old = f->idx;
    afmt_super old_super = f->super;
    afmt__index_init(&f->idx);
    int rc = afmt__load(f);
    if (rc != AFMT_OK) {
        afmt__index_free(&f->idx);
        f->idx = old;
        f->super = old_super;
        return rc;
    }
    afmt__index_free(&old);
    afmt__cache_clear(f->cache); /* block numbers belong to the old index */
    return AFMT_OK;
}
