/* fetch.c - committed chunks (fetch.h): block records checked, stored bytes read and
 * verified, decompressed through the handle's cache or decode buffer; a chunk's committed
 * content or its fill value. */
#include "api/fetch.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "common/util.h"
#include "index/chunk_encode.h"

static const uint64_t zeros[AFMT_MAX_NDIM];

void afmt__fill_box(const afmt_array *arr, void *buf, const uint64_t *bshape,
                    const uint64_t *bstart, const uint64_t *count) {
    int nd = arr->d.ndim;
    size_t es = arr->esize;
    uint8_t fill[8];
    memcpy(fill, arr->d.fill, 8);
    if (afmt__host_is_big_endian()) afmt__bswap_elems(fill, 1, es);
    int zero = 1;
    for (size_t i = 0; i < es; i++) zero &= fill[i] == 0;
    /* Walk the rows of the box (innermost dim contiguous). */
    uint64_t inner = nd ? count[nd - 1] : 1, rows = 1;
    for (int d = 0; d + 1 < nd; d++) rows *= count[d];
    uint64_t idx[AFMT_MAX_NDIM] = {0};
    for (uint64_t r = 0; r < rows; r++) {
        uint64_t lin = 0;
        for (int d = 0; d < nd; d++) lin = lin * bshape[d] + bstart[d] + (d + 1 < nd ? idx[d] : 0);
        uint8_t *p = (uint8_t *)buf + lin * es;
        if (zero)
            memset(p, 0, (size_t)(inner * es));
        else
            for (uint64_t i = 0; i < inner; i++) memcpy(p + i * es, fill, es);
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < count[d]) break;
            idx[d] = 0;
        }
    }
}

/* The checks of a block record before any of it is read or allocated. The footer decoder
 * made them already (format.md 8); repeated here because the bound on raw_size is what
 * keeps a damaged file from making a read allocate gigabytes. */
static int check_block(afmt_file *f, uint64_t b, const char *what) {
    const afmt_block_rec *B = &f->idx.blocks[b].b;
    if (B->raw_size > AFMT_MAX_BLOCK_RAW || B->stored_size > SIZE_MAX)
        return afmt__fail(f->errmsg, AFMT_ECORRUPT,
                          "%s: block at offset %llu claims %llu raw bytes (limit %llu)", what,
                          (unsigned long long)B->offset, (unsigned long long)B->raw_size,
                          (unsigned long long)AFMT_MAX_BLOCK_RAW);
    if (B->codec == AFMT_CODEC_NONE && B->stored_size != B->raw_size)
        return afmt__fail(f->errmsg, AFMT_ECORRUPT, "%s: raw block at %llu has %llu != %llu bytes",
                          what, (unsigned long long)B->offset, (unsigned long long)B->stored_size,
                          (unsigned long long)B->raw_size);
    return AFMT_OK;
}

/* A buffer of n bytes for a block's raw bytes: the handle's decode buffer (whole) or a
 * fresh one for the cache (a spare of the cache if one fits). NULL: out of memory. */
static uint8_t *raw_buffer(afmt_file *f, int whole, uint64_t n) {
    if (whole)
        return afmt__grow_bytes(&f->decode_buf, &f->decode_cap, n) == AFMT_OK ? f->decode_buf
                                                                              : NULL;
    uint8_t *out = afmt__cache_spare(f->cache, n);
    return out ? out : malloc(n ? (size_t)n : 1);
}

/* Reads block b of the index, in the order of format.md 8: the stored bytes, their
 * checksum (damage is reported as damage even where the codec is missing), the codec,
 * then the decompression into a buffer of raw_size bytes (*out, from raw_buffer).
 * Compressed bytes go through a buffer the handle keeps: a fresh multi-MiB malloc per
 * block costs an mmap, page faults and an munmap each time. Raw blocks (codec 0) are read
 * straight into *out. On failure *out is NULL (nothing to free but decode_buf, kept). */
static int load_block(afmt_file *f, uint64_t b, int whole, uint8_t **out, const char *what) {
    const afmt_iblock *ib = &f->idx.blocks[b];
    const afmt_block_rec *B = &ib->b;
    int plain = B->codec == AFMT_CODEC_NONE;
    uint8_t *stored;
    *out = NULL;
    if (plain) {
        stored = raw_buffer(f, whole, B->raw_size);
    } else {
        stored = afmt__grow_bytes(&f->stored_buf, &f->stored_cap, B->stored_size) == AFMT_OK
                     ? f->stored_buf
                     : NULL;
    }
    if (!stored) return afmt__fail(f->errmsg, AFMT_ENOMEM, "%s: out of memory", what);
    int rc = f->st->ops->read_at(f->st, B->offset, stored, B->stored_size);
    if (rc != AFMT_OK)
        afmt__fail(f->errmsg, rc, "%s: %s", what, f->st->errmsg);
    else if (afmt__checksum(stored, (size_t)B->stored_size) != B->checksum)
        rc = afmt__fail(f->errmsg, AFMT_ECORRUPT,
                        "%s: block at offset %llu (%llu bytes, layer %llu) fails its checksum",
                        what, (unsigned long long)B->offset, (unsigned long long)B->stored_size,
                        (unsigned long long)ib->layer_id);
    else if (!plain && !afmt__codec_known(B->codec))
        rc = afmt__fail(f->errmsg, AFMT_ECODEC,
                        "%s: block at offset %llu uses codec id %u, which this process lacks "
                        "(register it with afmt_codec_register)",
                        what, (unsigned long long)B->offset, B->codec);
    if (plain) {
        if (rc == AFMT_OK)
            *out = stored;
        else if (!whole)
            free(stored);
        return rc;
    }
    if (rc != AFMT_OK) return rc;
    uint8_t *raw = raw_buffer(f, whole, B->raw_size);
    if (!raw) return afmt__fail(f->errmsg, AFMT_ENOMEM, "%s: out of memory", what);
    rc = afmt__codec_decompress(B->codec, stored, (size_t)B->stored_size, raw, (size_t)B->raw_size);
    if (rc != AFMT_OK) {
        if (!whole) free(raw);
        return afmt__fail(f->errmsg, rc,
                          "%s: block at offset %llu does not decompress with codec %s", what,
                          (unsigned long long)B->offset, afmt__codec_name(B->codec));
    }
    *out = raw;
    return AFMT_OK;
}

int afmt__fetch_block(afmt_file *f, uint64_t b, int whole, const uint8_t **raw, const char *what) {
    const uint8_t *hit = afmt__cache_get(f->cache, b, NULL);
    if (hit) {
        *raw = hit;
        return AFMT_OK;
    }
    int rc = check_block(f, b, what);
    if (rc != AFMT_OK) return rc;
    uint8_t *out;
    if ((rc = load_block(f, b, whole, &out, what)) != AFMT_OK) return rc;
    *raw = whole ? out : afmt__cache_put(f->cache, b, out, f->idx.blocks[b].b.raw_size);
    return AFMT_OK;
}

/* ---- several blocks at a time (afmt__fetch_blocks) ---- */

/* A block in the pool: its stored bytes read by the caller's thread (into buf, the slot's
 * own, for a whole block or a compressed one; straight into raw for a partly used raw
 * block), and what the job made of them. raw: for a partly used block a buffer the cache
 * takes afterwards; for a whole one the job decompresses into a scratch buffer of its
 * thread (NULL here). The scratch buffers are the slots' own buffers, each taken by a
 * running job through its busy flag, lowest first: only as many are grown as threads
 * run jobs at once. A buffer per slot was 4 MiB more of fresh memory per slot at every
 * open, page faults that cost the 2-thread read about 8 %. */
struct afmt_fetch_slot {
    afmt_pool_job job;
    const afmt_iblock *ib;
    const afmt_fetch_req *req;
    uint64_t i;
    uint8_t *buf, *own, *stored, *raw;
    uint64_t buf_cap, own_cap;
    atomic_int busy;
    afmt_fetch_slot *ring;
    int nscratch;
    void (*use)(void *ctx, uint64_t i, const uint8_t *raw);
    void *ctx;
    int rc;
    char errmsg[AFMT_ERRMSG_MAX];
};

/* A free scratch slot of s's ring, taken: the lowest free one, so that only as many own
 * buffers as threads run jobs at once are ever grown. One is always free: there are no
 * more jobs than slots. */
static afmt_fetch_slot *scratch_take(afmt_fetch_slot *s) {
    for (int k = 0;; k = (k + 1) % s->nscratch) {
        int idle = 0;
        if (atomic_compare_exchange_strong(&s->ring[k].busy, &idle, 1)) return &s->ring[k];
    }
}

void afmt__fetch_free(afmt_file *f) {
    for (int i = 0; i < f->n_fslots; i++) {
        free(f->fslots[i].buf);
        free(f->fslots[i].own);
    }
    free(f->fslots);
    f->fslots = NULL;
    f->n_fslots = 0;
}

/* The pool's job: load_block's checks and decompression (the same messages, into the
 * slot), then the caller's use. */
static void fetch_job(void *arg) {
    afmt_fetch_slot *s = arg;
    const afmt_block_rec *B = &s->ib->b;
    const char *what = s->req->what;
    int plain = B->codec == AFMT_CODEC_NONE, rc = AFMT_OK;
    afmt_fetch_slot *scratch = NULL;
    if (afmt__checksum(s->stored, (size_t)B->stored_size) != B->checksum)
        rc = afmt__fail(s->errmsg, AFMT_ECORRUPT,
                        "%s: block at offset %llu (%llu bytes, layer %llu) fails its checksum",
                        what, (unsigned long long)B->offset, (unsigned long long)B->stored_size,
                        (unsigned long long)s->ib->layer_id);
    else if (!plain && !afmt__codec_known(B->codec))
        rc = afmt__fail(s->errmsg, AFMT_ECODEC,
                        "%s: block at offset %llu uses codec id %u, which this process lacks "
                        "(register it with afmt_codec_register)",
                        what, (unsigned long long)B->offset, B->codec);
    else if (s->req->whole && plain)
        s->raw = s->stored;
    else if (s->req->whole) {
        scratch = scratch_take(s);
        s->raw = afmt__grow_bytes(&scratch->own, &scratch->own_cap, B->raw_size) == AFMT_OK
                     ? scratch->own
                     : NULL;
        if (!s->raw) rc = afmt__fail(s->errmsg, AFMT_ENOMEM, "%s: out of memory", what);
    }
    if (rc == AFMT_OK && !plain &&
        (rc = afmt__codec_decompress(B->codec, s->stored, (size_t)B->stored_size, s->raw,
                                     (size_t)B->raw_size)) != AFMT_OK)
        afmt__fail(s->errmsg, rc, "%s: block at offset %llu does not decompress with codec %s",
                   what, (unsigned long long)B->offset, afmt__codec_name(B->codec));
    s->rc = rc;
    if (rc == AFMT_OK) s->use(s->ctx, s->i, s->raw);
    if (scratch) atomic_store(&scratch->busy, 0);
}

/* Reads the stored bytes of reqs[i]'s block into slot s (caller's thread): load_block's
 * first steps. On failure nothing is left to free. */
static int fetch_read(afmt_file *f, afmt_fetch_slot *s, const afmt_fetch_req *r) {
    const afmt_iblock *ib = &f->idx.blocks[r->block];
    const afmt_block_rec *B = &ib->b;
    int plain = B->codec == AFMT_CODEC_NONE;
    int rc = check_block(f, r->block, r->what);
    if (rc != AFMT_OK) return rc;
    s->ib = ib;
    s->req = r;
    int ok = 1;
    s->raw = NULL; /* whole: the job's scratch buffer (fetch_job) */
    if (!r->whole) {
        uint8_t *spare = afmt__cache_spare(f->cache, B->raw_size);
        s->raw = spare ? spare : malloc(B->raw_size ? (size_t)B->raw_size : 1);
        ok = s->raw != NULL;
    }
    s->stored =
        plain && !r->whole
            ? s->raw
            : (afmt__grow_bytes(&s->buf, &s->buf_cap, B->stored_size) == AFMT_OK ? s->buf : NULL);
    if (!ok || !s->stored) {
        if (!r->whole) free(s->raw);
        return afmt__fail(f->errmsg, AFMT_ENOMEM, "%s: out of memory", r->what);
    }
    rc = f->st->ops->read_at(f->st, B->offset, s->stored, B->stored_size);
    if (rc != AFMT_OK) {
        if (!r->whole) free(s->raw);
        return afmt__fail(f->errmsg, rc, "%s: %s", r->what, f->st->errmsg);
    }
    return AFMT_OK;
}

int afmt__fetch_blocks(afmt_file *f, const afmt_fetch_req *reqs, uint64_t n,
                       void (*use)(void *ctx, uint64_t i, const uint8_t *raw), void *ctx) {
    afmt_pool *pool = afmt__file_pool(f);
    int nslots = 2 * afmt__pool_threads(pool);
    if (pool && !f->fslots) {
        if ((f->fslots = calloc((size_t)nslots, sizeof *f->fslots)) != NULL) {
            f->n_fslots = nslots;
            for (int k = 0; k < nslots; k++) {
                f->fslots[k].ring = f->fslots;
                f->fslots[k].nscratch = nslots;
                atomic_init(&f->fslots[k].busy, 0);
            }
        }
    }
    if (!pool || !f->fslots || nslots < 2) {
        for (uint64_t i = 0; i < n; i++) {
            const uint8_t *raw;
            int rc = afmt__fetch_block(f, reqs[i].block, reqs[i].whole, &raw, reqs[i].what);
            if (rc != AFMT_OK) return rc;
            use(ctx, i, raw);
        }
        return AFMT_OK;
    }
    /* A ring of n_fslots blocks in the pool: the caller reads the next block's stored
     * bytes while the pool works on the ones before, and takes them back oldest first
     * (the cache gets the partly used ones; the first failure in request order wins: a
     * read failure comes after those of the blocks submitted before it). */
    int rc = AFMT_OK, head = 0, npend = 0, nslot = f->n_fslots;
    int read_rc = AFMT_OK;
    char read_msg[AFMT_ERRMSG_MAX];
    uint64_t i = 0;
    while (npend > 0 || (rc == AFMT_OK && read_rc == AFMT_OK && i < n)) {
        if (rc == AFMT_OK && read_rc == AFMT_OK && i < n && npend < nslot) {
            const uint8_t *hit = afmt__cache_get(f->cache, reqs[i].block, NULL);
            if (hit) { /* valid until the next put: used now */
                use(ctx, i++, hit);
                continue;
            }
            afmt_fetch_slot *sl = &f->fslots[(head + npend) % nslot];
            if ((read_rc = fetch_read(f, sl, &reqs[i])) != AFMT_OK) {
                memcpy(read_msg, f->errmsg, sizeof read_msg);
                continue;
            }
            sl->i = i++;
            sl->use = use;
            sl->ctx = ctx;
            sl->job.fn = fetch_job;
            sl->job.arg = sl;
            afmt__pool_submit(pool, &sl->job);
            npend++;
            continue;
        }
        afmt_fetch_slot *sl = &f->fslots[head];
        afmt__pool_wait(pool, &sl->job);
        if (sl->rc != AFMT_OK && rc == AFMT_OK)
            rc = afmt__fail(f->errmsg, sl->rc, "%s", sl->errmsg);
        if (!sl->req->whole) {
            if (sl->rc == AFMT_OK)
                afmt__cache_put(f->cache, sl->req->block, sl->raw, sl->ib->b.raw_size);
            else
                free(sl->raw);
        }
        head = (head + 1) % nslot;
        npend--;
    }
    if (rc == AFMT_OK && read_rc != AFMT_OK) rc = afmt__fail(f->errmsg, read_rc, "%s", read_msg);
    return rc;
}

void afmt__chunk_what(char *w, size_t n, const afmt_array *arr, uint64_t ci) {
    snprintf(w, n, "afmt_read(\"%s\"): chunk %llu", arr->d.name, (unsigned long long)ci);
}

int afmt__read_committed_chunk(afmt_file *f, const afmt_array *arr, uint64_t chunk_index,
                               void *dst) {
    uint64_t cc[AFMT_MAX_NDIM], origin[AFMT_MAX_NDIM], ext[AFMT_MAX_NDIM];
    afmt__grid_chunk_coord(&arr->grid, chunk_index, cc);
    uint64_t ne = afmt__grid_chunk_box(&arr->grid, cc, origin, ext);
    afmt_chunk_loc where;
    int found = 0;
    char what[AFMT_MAX_NAME + 64], why[AFMT_ERRMSG_MAX];
    afmt__chunk_what(what, sizeof what, arr, chunk_index);
    int lrc = afmt__index_lookup(&f->idx, arr->d.id, chunk_index, &where, &found, why);
    if (lrc != AFMT_OK) return afmt__fail(f->errmsg, lrc, "%s: %.800s", what, why);
    const afmt_chunk_loc *loc = found ? &where : NULL;
    if (!loc) {
        afmt__fill_box(arr, dst, ext, zeros, ext);
        return AFMT_OK;
    }
    const uint8_t *raw;
    int rc = afmt__fetch_block(f, loc->block, 0, &raw, what);
    if (rc == AFMT_OK) afmt__chunk_decode(arr, dst, raw + loc->offset, ne);
    return rc;
}
