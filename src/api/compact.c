/* compact.c - afmt_compact: rewrites the live chunks into a new file next to the file
 * ("<path>.compact-XXXXXXXXXXXX", a name nobody can predict, made exclusively: storage.h)
 * as one self-contained layer and renames it over the file. Blocks are divided among
 * ranks in contiguous runs of about equal stored bytes; a block whose raw bytes are all
 * live is copied as stored (no recompression), the live chunks of other blocks are
 * re-packed. Until the rename the old file is whole; after it, the new one (synced
 * before). Every path is the handle's resolved one: through a symbolic link the link's
 * target is compacted and the link stays a link. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/fetch.h"
#include "api/file.h"
#include "common/util.h"
#include "format/segment.h"
#include "index/cache.h"
#include "storage/lock.h"

typedef struct {
    uint64_t array_id, chunk_index, block, offset, size;
    uint64_t at; /* the block's file offset: block numbers differ between ranks (lazy.h) */
} live_chunk;

static int live_cmp(const void *a, const void *b) {
    const live_chunk *x = a, *y = b;
    if (x->at != y->at) return x->at < y->at ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Every live chunk location, sorted by (block's file offset, offset): the same list on
 * every rank. */
static int collect_live(const afmt_index *x, live_chunk **out, uint64_t *n) {
    *n = 0;
    *out = malloc(sizeof **out * (size_t)(x->chunks.count + 1));
    if (!*out) return AFMT_ENOMEM;
    for (uint64_t i = 0; i < x->chunks.cap; i++) {
        const afmt_hmap_slot *s = &x->chunks.slots[i];
        if (s->used != 1) continue;
        const afmt_array *arr = afmt__index_by_id(x, s->k1);
        if (!arr || !arr->live) continue;
        const afmt_chunk_loc *l = &x->locs[s->val];
        (*out)[(*n)++] =
            (live_chunk){s->k1, s->k2, l->block, l->offset, l->size, x->blocks[l->block].b.offset};
    }
    qsort(*out, (size_t)*n, sizeof **out, live_cmp);
    return AFMT_OK;
}

/* All live descriptors and attributes, for the self-contained layer. */
static int live_metadata(const afmt_index *x, afmt_array_rec **arrays, uint64_t *na,
                         afmt_attr_rec **attrs, uint64_t *nt) {
    uint64_t nl = afmt__index_live_count(x), nattr = x->n_file_attrs;
    for (uint64_t i = 0; i < nl; i++) nattr += afmt__index_live_at(x, i)->n_attrs;
    *arrays = malloc(sizeof **arrays * (size_t)(nl + 1));
    *attrs = malloc(sizeof **attrs * (size_t)(nattr + 1));
    if (!*arrays || !*attrs) return AFMT_ENOMEM;
    *na = *nt = 0;
    for (uint64_t i = 0; i < x->n_file_attrs; i++) (*attrs)[(*nt)++] = x->file_attrs[i];
    for (uint64_t i = 0; i < nl; i++) {
        const afmt_array *a = afmt__index_live_at(x, i);
        (*arrays)[(*na)++] = a->d;
        for (uint64_t j = 0; j < a->n_attrs; j++) (*attrs)[(*nt)++] = a->attrs[j];
    }
    return AFMT_OK;
}

/* Block ib of the index, wholly live: its stored bytes, checked, go into alloc as they
 * are (no recompression); *nb is its block number there. */
static int copy_stored(afmt_file *f, afmt_alloc *alloc, const afmt_block_rec *b, const char *what,
                       uint64_t *nb) {
    uint8_t *stored = malloc(b->stored_size ? (size_t)b->stored_size : 1);
    if (!stored) return afmt__fail(f->errmsg, AFMT_ENOMEM, "%s: out of memory", what);
    int rc = f->st->ops->read_at(f->st, b->offset, stored, b->stored_size);
    if (rc != AFMT_OK)
        afmt__fail(f->errmsg, rc, "%s: %s", what, f->st->errmsg);
    else if (afmt__checksum(stored, (size_t)b->stored_size) != b->checksum)
        rc = afmt__fail(f->errmsg, AFMT_ECORRUPT, "%s fails its checksum", what);
    if (rc == AFMT_OK) {
        rc = afmt__alloc_add_stored(alloc, stored, b->stored_size, b->raw_size, b->codec,
                                    b->checksum, nb);
        if (rc != AFMT_OK) afmt__fail(f->errmsg, rc, "%s", afmt__alloc_errmsg(alloc));
    }
    free(stored);
    return rc;
}

/* The live chunks lc[0, n) of one block, partly dead: their payloads (already in file
 * form: no decode or encode) re-packed into alloc, their new records appended to out. */
static int copy_chunks(afmt_file *f, afmt_alloc *alloc, const live_chunk *lc, uint64_t n,
                       const char *what, afmt_chunk_rec *out, uint64_t *nout) {
    const uint8_t *raw;
    int rc = afmt__fetch_block(f, lc[0].block, 0, &raw, what);
    for (uint64_t k = 0; rc == AFMT_OK && k < n; k++) {
        void *dst;
        uint64_t nb, off;
        rc = afmt__alloc_reserve(alloc, lc[k].size, &dst, &nb, &off);
        if (rc != AFMT_OK) return afmt__fail(f->errmsg, rc, "%s", afmt__alloc_errmsg(alloc));
        memcpy(dst, raw + lc[k].offset, (size_t)lc[k].size);
        out[(*nout)++] = (afmt_chunk_rec){lc[k].array_id, lc[k].chunk_index, nb, off, lc[k].size};
    }
    return rc;
}

/* Copies my share of the live blocks into alloc and records the new chunk locations. The
 * blocks that hold live chunks are split by stored bytes: a block belongs to the rank
 * whose range holds its start. */
static int copy_share(afmt_file *f, afmt_alloc *alloc, const live_chunk *lc, uint64_t n,
                      afmt_chunk_rec *out, uint64_t *nout) {
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++)
        if (i == 0 || lc[i].block != lc[i - 1].block)
            total += f->idx.blocks[lc[i].block].b.stored_size;
    uint64_t lo = total / (uint64_t)f->size * (uint64_t)f->rank;
    uint64_t hi =
        f->rank == f->size - 1 ? UINT64_MAX : total / (uint64_t)f->size * (uint64_t)(f->rank + 1);
    uint64_t acc = 0;
    *nout = 0;
    int rc = AFMT_OK;
    for (uint64_t i = 0; i < n && rc == AFMT_OK;) {
        uint64_t j = i + 1, live_bytes = lc[i].size;
        while (j < n && lc[j].block == lc[i].block) live_bytes += lc[j++].size;
        const afmt_iblock *ib = &f->idx.blocks[lc[i].block];
        uint64_t at = acc;
        acc += ib->b.stored_size;
        if (at >= lo && at < hi) {
            char what[128];
            snprintf(what, sizeof what, "afmt_compact: block at offset %llu",
                     (unsigned long long)ib->b.offset);
            uint64_t nb = 0;
            if (live_bytes != ib->b.raw_size)
                rc = copy_chunks(f, alloc, lc + i, j - i, what, out, nout);
            else if ((rc = copy_stored(f, alloc, &ib->b, what, &nb)) == AFMT_OK)
                for (uint64_t k = i; k < j; k++)
                    out[(*nout)++] = (afmt_chunk_rec){lc[k].array_id, lc[k].chunk_index, nb,
                                                      lc[k].offset, lc[k].size};
        }
        i = j;
    }
    return rc;
}

/* Rank 0: the new file takes the old one's place (mode, group, rename: storage.h). The
 * inode lock moves along, taken on the new file first so that there is no moment
 * without one. *moved: the file at f->real_path is the new one, even where the call
 * failed (the rename was done and the directory sync failed, or the rename reported a
 * failure but the temporary file is gone); the lock then follows it. */
static int put_in_place(afmt_file *f, afmt_storage_temp *t, int *moved) {
    char msg[AFMT_ERRMSG_MAX];
    int lfd = -1;
    int rc = afmt__lock_inode_copy(f, t->fd, &lfd), tried = rc == AFMT_OK;
    if (tried && (rc = afmt__storage_replace(f->opts.storage, t, f->real_path, msg)) != AFMT_OK)
        afmt__fail(f->errmsg, rc, "afmt_compact(%s): %s", f->path, msg);
    /* afmt__storage_replace clears t->made once the rename is done. */
    *moved =
        rc == AFMT_OK || (tried && (!t->made || !afmt__storage_exists(f->opts.storage, t->path)));
    if (*moved) {
        t->made = 0; /* nothing to remove: it is the file now */
        afmt__lock_inode_adopt(f, lfd);
    } else if (lfd >= 0) {
        close(lfd);
    }
    return rc;
}

/* COLLECTIVE. After the rename the file at f->real_path is the compacted one: the handle
 * reopens it and rebuilds its index, or, when any of that fails on any rank, becomes
 * stale on every rank (only afmt_close is valid), because its index and storage belong
 * to the old, unlinked file: a define, write or commit would be lost or would damage the
 * new file. rc is the outcome of the rename (a failed directory sync), reported when the
 * handle could move over. */
static int move_to_compacted(afmt_file *f, int rc) {
    char first[AFMT_ERRMSG_MAX];
    memcpy(first, f->errmsg, sizeof first);
    /* Closing the old file is tidying only: its outcome changes nothing. */
    if (f->st) (void)f->st->ops->close(f->st);
    f->st = NULL;
    int orc = afmt__storage_open(f->opts.storage, f->comm, f->real_path,
                                 AFMT_ST_READ | AFMT_ST_WRITE, f->opts.info, &f->st, f->errmsg);
    orc = afmt__file_agree(f, orc);
    if (orc == AFMT_OK) orc = afmt__reload(f);
    if (orc != AFMT_OK)
        return afmt__file_stale(
            f, orc, "afmt_compact(%s): the file is compacted, but reopening it failed", f->path);
    if (rc != AFMT_OK)
        return afmt__fail(f->errmsg, rc,
                          "afmt_compact(%s): the file is compacted and the handle reopened it, but "
                          "whether the rename survives a crash is unknown: %s",
                          f->path, first);
    return AFMT_OK;
}

/* One compaction's new file and what goes into it (compact_free frees it). */
typedef struct {
    afmt_storage_temp tmp; /* the new file's name, removed unless it was put in place */
    afmt_storage *nst;     /* the new file */
    afmt_alloc *alloc;     /* my share of the blocks */
    live_chunk *lc;        /* every live chunk, sorted by (block, offset) */
    afmt_chunk_rec *mine;  /* the records of my share */
    afmt_array_rec *arrays;
    afmt_attr_rec *attrs;
    uint64_t n, nmine, na, nt;
    afmt_super ns; /* the new file's (empty) superblock */
} compact_job;

static void compact_free(afmt_file *f, compact_job *c) {
    if (c->nst) c->nst->ops->close(c->nst);
    afmt__storage_temp_drop(f->opts.storage, &c->tmp); /* removed unless put in place */
    afmt__alloc_free(c->alloc);
    free(c->lc);
    free(c->mine);
    free(c->arrays);
    free(c->attrs);
}

/* The new file and my share of its content. Rank 0 creates the file (and removes leftovers
 * of interrupted compactions); the others open the file it made, never creating one: both
 * calls return the same code on every rank. Then local work (allocations, my share of the
 * blocks, rank 0's empty superblock region) and one agreement. */
static int compact_prepare(afmt_file *f, compact_job *c) {
    /* Every live chunk is copied: the whole index, every segment read (lazy.h). */
    char why[AFMT_ERRMSG_MAX];
    int rc = afmt__index_load_all(&f->idx, why);
    if (rc != AFMT_OK) afmt__fail(f->errmsg, rc, "afmt_compact(%s): %.800s", f->path, why);
    if ((rc = afmt__file_agree(f, rc)) != AFMT_OK) return rc;
    rc = afmt__storage_mktemp(f->opts.storage, f->comm, f->real_path, &c->tmp, f->errmsg);
    if (rc == AFMT_OK)
        rc = afmt__storage_open(f->opts.storage, f->comm, c->tmp.path, AFMT_ST_READ | AFMT_ST_WRITE,
                                f->opts.info, &c->nst, f->errmsg);
    if (rc != AFMT_OK) return rc;
    afmt_alloc_config cfg = {f->opts.block_size, f->opts.mem_budget, f->opts.spill_dir,
                             f->opts.codec,      f->opts.level,      afmt__file_pool(f)};
    /* no spill dir: $TMPDIR, /tmp */
    if (afmt__alloc_create(&c->alloc, &cfg) != AFMT_OK ||
        collect_live(&f->idx, &c->lc, &c->n) != AFMT_OK ||
        live_metadata(&f->idx, &c->arrays, &c->na, &c->attrs, &c->nt) != AFMT_OK ||
        !(c->mine = malloc(sizeof *c->mine * (size_t)(c->n + 1))))
        rc = afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_compact(%s): out of memory", f->path);
    if (rc == AFMT_OK) rc = copy_share(f, c->alloc, c->lc, c->n, c->mine, &c->nmine);
    /* A new file: the empty superblock region (rank 0), then one BASE layer. */
    c->ns = f->super;
    c->ns.generation = 0;
    c->ns.footer_offset = c->ns.footer_length = c->ns.footer_checksum = 0;
    c->ns.eof = AFMT_SUPER_REGION;
    c->ns.nlayers = 0;
    if (rc == AFMT_OK && f->rank == 0) {
        uint8_t region[AFMT_SUPER_REGION];
        memset(region, 0, sizeof region);
        rc = c->nst->ops->write_at(c->nst, 0, region, sizeof region);
        if (rc != AFMT_OK) afmt__fail(f->errmsg, rc, "afmt_compact: %s", c->nst->errmsg);
    }
    return afmt__file_agree(f, rc);
}

/* The one BASE layer into the new file (afmt__write_layer), durable; its id is id, or
 * with 0 the next one. Agreed. */
static int compact_write(afmt_file *f, compact_job *c, uint64_t id) {
    afmt_buf footer;
    afmt_layer_job job = {.st = c->nst,
                          .alloc = c->alloc,
                          .chunks = c->mine,
                          .n_chunks = c->nmine,
                          .arrays = c->arrays,
                          .n_arrays = c->na,
                          .attrs = c->attrs,
                          .n_attrs = c->nt,
                          .flags = AFMT_LAYER_BASE,
                          .next_array_id = f->idx.next_array_id,
                          .super = &c->ns,
                          .layer_id = id,
                          /* Always: the rename replaces the whole file with this one. */
                          .durability = AFMT_DURABILITY_FULL};
    int rc = afmt__write_layer(f, &job, &footer);
    afmt__buf_free(&footer);
    if (rc == AFMT_OK) rc = job.late_rc; /* never rename a file that may not be durable */
    return afmt__file_agree(f, rc);
}

/* The new file closed, every layer in it. Agreed. */
static int compact_close(afmt_file *f, compact_job *c) {
    int rc = c->nst->ops->close(c->nst);
    c->nst = NULL;
    if (rc != AFMT_OK)
        afmt__fail(f->errmsg, rc, "afmt_compact(%s): closing the new file failed", f->path);
    return afmt__file_agree(f, rc);
}

/* The switch: one rename on rank 0. If it failed after the file moved (the directory
 * sync), the handle must move too: every rank learns whether it happened. Not moved: the
 * old file stays whole, and compact_free removes the new one. */
static int compact_switch(afmt_file *f, compact_job *c) {
    int moved = 0, rc = AFMT_OK;
    if (f->rank == 0) rc = put_in_place(f, &c->tmp, &moved);
    if (MPI_Bcast(&moved, 1, MPI_INT, 0, f->comm) != MPI_SUCCESS && rc == AFMT_OK)
        rc = afmt__fail(f->errmsg, AFMT_EMPI, "afmt_compact(%s): MPI_Bcast failed", f->path);
    rc = afmt__file_agree(f, rc);
    if (moved) rc = move_to_compacted(f, rc);
    return rc;
}

int afmt_compact(afmt_file *f) {
    int rc = afmt__check(f, "afmt_compact");
    if (rc != AFMT_OK) return rc;
    if ((rc = afmt__check_writable(f, "afmt_compact")) != AFMT_OK) return rc;
    if ((rc = afmt__commit(f)) != AFMT_OK) return rc;
    compact_job c;
    memset(&c, 0, sizeof c);
    c.tmp = (afmt_storage_temp)AFMT_STORAGE_TEMP_INIT;
    rc = compact_prepare(f, &c);
    if (rc == AFMT_OK) rc = compact_write(f, &c, 0);
    if (rc == AFMT_OK) rc = compact_close(f, &c);
    if (rc == AFMT_OK) rc = compact_switch(f, &c);
    compact_free(f, &c);
    return rc;
}

/* ---- afmt_compact_keep: the newest layers kept as they were ------------------------
 * The new file holds a BASE layer with the state as of the newest layer folded (its id,
 * made like afmt_compact's from afmt_open_layer's view of that layer), then each kept
 * layer rewritten: its blocks copied as stored, its array, chunk and attribute records
 * (provenance included) as they are, its id and time; committed one after the other
 * into the new file, each checked against the old file's view as of that layer, as its
 * original commit was. Then the rename, as afmt_compact. */

/* The handle's own index and superblock, held aside while f->idx is a view of the old
 * file as of an older layer. */
typedef struct {
    afmt_index idx;
    afmt_super super;
    int held;
} held_index;

/* COLLECTIVE. f->idx becomes the file as of layer id (afmt_open_layer's view, lazy) with
 * that layer's next_array_id: what a commit right after it held. Agreed. */
static int view_load(afmt_file *f, uint64_t id, held_index *h) {
    if (!h->held) {
        h->idx = f->idx;
        h->super = f->super;
        h->held = 1;
    } else {
        afmt__index_free(&f->idx);
    }
    afmt__index_init(&f->idx);
    afmt__cache_clear(f->cache); /* block numbers belong to one index */
    uint64_t was = f->view_layer;
    f->view_layer = id;
    int rc = afmt__load(f);
    f->view_layer = was;
    f->super = h->super;
    if (rc == AFMT_OK && f->idx.n_layers)
        f->idx.next_array_id = f->idx.layers[f->idx.n_layers - 1].next_array_id;
    return rc;
}

/* The handle's own index back. */
static void view_restore(afmt_file *f, held_index *h) {
    if (!h->held) return;
    afmt__index_free(&f->idx);
    f->idx = h->idx;
    f->super = h->super;
    h->held = 0;
    afmt__cache_clear(f->cache);
}

/* Rank 0: the footer of layer li and its segments' bytes, appended to b as [u64 footer
 * length][u64 segment bytes][footer][segments]. */
static int read_kept(afmt_file *f, const afmt_layer_info *li, afmt_buf *b) {
    char why[AFMT_ERRMSG_MAX];
    afmt_layer L;
    afmt_buf segs;
    memset(&L, 0, sizeof L);
    afmt__buf_init(&segs);
    uint8_t *p = malloc(li->footer_length ? (size_t)li->footer_length : 1);
    int rc = p ? f->st->ops->read_at(f->st, li->footer_offset, p, li->footer_length) : AFMT_ENOMEM;
    if (rc == AFMT_EIO) snprintf(why, sizeof why, "%s", f->st->errmsg);
    if (rc == AFMT_ENOMEM) snprintf(why, sizeof why, "out of memory");
    if (rc == AFMT_OK && (rc = afmt__footer_decode(p, li->footer_length, &L, why)) == AFMT_OK)
        rc = afmt__segments_read(f->st, &L, &segs, why);
    if (rc == AFMT_OK) {
        afmt__buf_u64(b, li->footer_length);
        afmt__buf_u64(b, (uint64_t)segs.len);
        afmt__buf_append(b, p, (size_t)li->footer_length);
        afmt__buf_append(b, segs.data, segs.len);
        if (b->oom) {
            rc = AFMT_ENOMEM;
            snprintf(why, sizeof why, "out of memory");
        }
    }
    if (rc != AFMT_OK)
        afmt__fail(f->errmsg, rc, "afmt_compact_keep(%s): reading layer %llu: %s", f->path,
                   (unsigned long long)li->layer_id, why);
    afmt__layer_free(&L);
    afmt__buf_free(&segs);
    free(p);
    return rc;
}

/* COLLECTIVE. Layers [first, n_layers) of the handle's chain into out[0, n_layers -
 * first), oldest first, with their blocks and chunks, on every rank: rank 0 reads them,
 * one broadcast shares them. Agreed. */
static int kept_layers(afmt_file *f, uint64_t first, afmt_layer *out) {
    afmt_buf b;
    afmt__buf_init(&b);
    int rc = AFMT_OK;
    for (uint64_t i = first; f->rank == 0 && rc == AFMT_OK && i < f->idx.n_layers; i++)
        rc = read_kept(f, &f->idx.layers[i], &b);
    char what[AFMT_ERRMSG_MAX];
    snprintf(what, sizeof what, "afmt_compact_keep(%s): sharing the kept layers", f->path);
    if ((rc = afmt__share_buf(f, &b, rc, what)) != AFMT_OK) { /* agreed */
        afmt__buf_free(&b);
        return rc;
    }
    const uint8_t *p = b.data;
    for (uint64_t i = first; rc == AFMT_OK && i < f->idx.n_layers; i++) {
        const afmt_layer_info *li = &f->idx.layers[i];
        afmt_layer *L = &out[i - first];
        uint64_t flen = afmt__get_u64(p), slen = afmt__get_u64(p + 8);
        char why[AFMT_ERRMSG_MAX];
        rc = afmt__footer_decode(p + 16, flen, L, why);
        if (rc == AFMT_OK)
            rc = afmt__segments_attach(L, p + 16 + flen, slen, li->footer_offset, why);
        if (rc != AFMT_OK)
            afmt__fail(f->errmsg, rc, "afmt_compact_keep(%s): layer %llu: %s", f->path,
                       (unsigned long long)li->layer_id, why);
        p += 16 + flen + slen;
    }
    afmt__buf_free(&b);
    return afmt__file_agree(f, rc);
}

/* My share of kept layer L's blocks (contiguous runs of about equal stored bytes, as
 * copy_share) copied as stored into alloc, and the chunk records that point into them,
 * with their new block numbers, into mine. */
static int keep_share(afmt_file *f, afmt_alloc *alloc, const afmt_layer *L, uint64_t *nb,
                      afmt_chunk_rec *mine, uint64_t *nmine) {
    uint64_t total = 0, acc = 0;
    for (uint64_t i = 0; i < L->n_blocks; i++) total += L->blocks[i].stored_size;
    uint64_t lo = total / (uint64_t)f->size * (uint64_t)f->rank;
    uint64_t hi =
        f->rank == f->size - 1 ? UINT64_MAX : total / (uint64_t)f->size * (uint64_t)(f->rank + 1);
    int rc = AFMT_OK;
    for (uint64_t i = 0; i < L->n_blocks; i++) {
        uint64_t at = acc;
        acc += L->blocks[i].stored_size;
        nb[i] = UINT64_MAX;
        if (rc != AFMT_OK || at < lo || at >= hi) continue;
        char what[128];
        snprintf(what, sizeof what, "afmt_compact_keep: layer %llu: block at offset %llu",
                 (unsigned long long)L->layer_id, (unsigned long long)L->blocks[i].offset);
        rc = copy_stored(f, alloc, &L->blocks[i], what, &nb[i]);
    }
    *nmine = 0;
    for (uint64_t i = 0; rc == AFMT_OK && i < L->n_chunks; i++) {
        const afmt_chunk_rec *r = &L->chunks[i];
        if (r->block < L->n_blocks && nb[r->block] != UINT64_MAX) {
            mine[*nmine] = *r;
            mine[(*nmine)++].block = nb[r->block];
        }
    }
    return rc;
}

/* COLLECTIVE. Kept layer L into the new file after the layers already there, committed
 * with its own id, time and records (afmt__write_layer's replay) against f->idx, the old
 * file's view as of L. Agreed. */
static int keep_layer(afmt_file *f, compact_job *c, const afmt_layer *L) {
    afmt_alloc_config cfg = {f->opts.block_size, f->opts.mem_budget, f->opts.spill_dir,
                             f->opts.codec,      f->opts.level,      afmt__file_pool(f)};
    afmt_alloc *alloc = NULL;
    afmt_chunk_rec *mine = malloc(sizeof *mine * (size_t)(L->n_chunks + 1));
    uint64_t *nb = malloc(sizeof *nb * (size_t)(L->n_blocks + 1)), nmine = 0;
    int rc = AFMT_OK;
    if (!mine || !nb || afmt__alloc_create(&alloc, &cfg) != AFMT_OK)
        rc = afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_compact_keep(%s): out of memory", f->path);
    if (rc == AFMT_OK) rc = keep_share(f, alloc, L, nb, mine, &nmine);
    if ((rc = afmt__file_agree(f, rc)) == AFMT_OK) {
        afmt_buf footer;
        afmt_layer_job job = {.st = c->nst,
                              .alloc = alloc,
                              .chunks = mine,
                              .n_chunks = nmine,
                              .arrays = L->arrays,
                              .n_arrays = L->n_arrays,
                              .attrs = L->attrs,
                              .n_attrs = L->n_attrs,
                              .next_array_id = L->next_array_id,
                              .super = &c->ns,
                              .replay = L,
                              .durability = AFMT_DURABILITY_FULL}; /* as the BASE */
        rc = afmt__write_layer(f, &job, &footer);
        afmt__buf_free(&footer);
        if (rc == AFMT_OK) rc = job.late_rc;
        rc = afmt__file_agree(f, rc);
    }
    afmt__alloc_free(alloc);
    free(mine);
    free(nb);
    return rc;
}

int afmt_compact_keep(afmt_file *f, uint64_t keep) {
    int rc = afmt__check(f, "afmt_compact_keep");
    if (rc != AFMT_OK) return rc;
    if (keep == 0) return afmt_compact(f);
    if ((rc = afmt__check_writable(f, "afmt_compact_keep")) != AFMT_OK) return rc;
    if ((rc = afmt__commit(f)) != AFMT_OK) return rc;
    uint64_t n = f->idx.n_layers;
    if (n == 0) return afmt_compact(f);
    /* At least the oldest layer is folded: it becomes the BASE under its own id. */
    uint64_t kept = keep < n ? keep : n - 1, first = n - kept;
    uint64_t base_id = f->idx.layers[first - 1].layer_id, top_id = f->super.layer_id;
    if (top_id < base_id) top_id = base_id; /* never: the slot holds the highest id */
    afmt_layer *L = calloc((size_t)kept + 1, sizeof *L);
    compact_job c;
    memset(&c, 0, sizeof c);
    c.tmp = (afmt_storage_temp)AFMT_STORAGE_TEMP_INIT;
    held_index h;
    memset(&h, 0, sizeof h);
    rc = afmt__file_agree(
        f, L ? AFMT_OK
             : afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_compact_keep(%s): out of memory", f->path));
    if (rc == AFMT_OK) rc = kept_layers(f, first, L);
    if (rc == AFMT_OK) rc = view_load(f, base_id, &h);
    if (rc == AFMT_OK) rc = compact_prepare(f, &c);
    /* The BASE takes the folded layer's id; every slot keeps the highest id ever used,
     * also that of layers rolled back from (ids are never reused). */
    c.ns.layer_id = top_id;
    if (rc == AFMT_OK) rc = compact_write(f, &c, base_id);
    for (uint64_t i = 0; rc == AFMT_OK && i < kept; i++) {
        rc = view_load(f, L[i].layer_id, &h);
        if (rc == AFMT_OK) rc = keep_layer(f, &c, &L[i]);
    }
    if (rc == AFMT_OK) rc = compact_close(f, &c);
    view_restore(f, &h);
    if (rc == AFMT_OK) rc = compact_switch(f, &c);
    compact_free(f, &c);
    for (uint64_t i = 0; L && i < kept; i++) afmt__layer_free(&L[i]);
    free(L);
    return rc;
}
