/* alloc.c - the rank-local delta allocator: packs chunk payloads into raw blocks,
 * compresses each full block straight into one contiguous arena of stored bytes, and
 * spills the arena to an unlinked temporary file past the memory budget. */
#include "index/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "codec/codec.h"
#include "common/util.h"

/* Spilled stored bytes are handed out in pieces of at most this size, so the staging
 * buffer stays bounded whatever max the caller passes. */
#define SPILL_PIECE_MAX ((size_t)64 << 20)
#define NO_BLOCK        UINT64_MAX

/* Deferred fills of one block (afmt__alloc_defer_fill): fn(args + arg, block + offset)
 * each; args holds their arguments, each at a 16-byte aligned offset. */
typedef struct {
    afmt_alloc_fill_fn fn;
    size_t offset, arg;
} fill_rec;

typedef struct {
    fill_rec *recs;
    uint8_t *args;
    uint64_t recs_cap, args_cap;
    size_t n, args_len;
} fill_list;

/* A block handed to the pool: its raw bytes (the open block's buffer, swapped out) and
 * deferred fills, and what the jobs make of them: fill_job runs the fills (encoding the
 * chunks), then queues job, which compresses and checksums into a buffer of the slot's
 * own, copied into the arena in block order by the caller's thread when the block is
 * retired. */
typedef struct {
    afmt_pool_job fill_job, job;
    afmt_pool *pool;
    fill_list fills;
    const afmt_alloc_config *cfg;
    uint8_t *raw, *out;
    uint64_t raw_cap, out_cap;
    size_t raw_len, stored;
    uint32_t codec;
    uint64_t checksum;
    int rc;     /* AFMT_OK, or how compressing failed (nomem: out of memory for out) */
    int nomem;  /* out could not be grown to bound bytes */
    int failed; /* retired with rc != AFMT_OK: a retry compresses it again */
    size_t bound;
    double seconds;
} seal_slot;

struct afmt_alloc {
    afmt_alloc_config cfg; /* cfg.spill_dir points at spill_dir below */
    char *spill_dir;

    /* The open raw block, reused across blocks. active: a payload (maybe of 0 bytes)
     * was reserved, so the block exists even when open_len is 0. */
    uint8_t *open;
    size_t open_len;
    uint64_t open_cap;
    int open_active;
    /* The open block's deferred fills; last_off: the last reservation, the one a fill can
     * be deferred for (last_valid). open_job runs a share of them at fill_wait. */
    fill_list open_fills;
    size_t last_off, open_from, open_to;
    int last_valid;
    afmt_pool_job open_job;

    afmt_alloc_block *blocks;
    uint64_t nblocks, blocks_cap;

    /* Stored bytes [spilled, spilled + arena_len) of this rank's data. */
    uint8_t *arena;
    size_t arena_len;
    uint64_t arena_cap;

    /* Stored bytes [0, spilled) live in the spill file (-1 until first needed). */
    int spill_fd;
    uint64_t spilled;
    char spill_path[4096];

    /* Read-your-writes: stored bytes of a spilled block, and the last decompressed block. */
    uint8_t *scratch;
    uint64_t scratch_cap;
    uint8_t *cache;
    uint64_t cache_cap;
    uint64_t cache_block;

    /* next_piece: spilled bytes read back for the commit write, and the check of each
     * spilled block's checksum as its bytes pass (vblock: the next block to check, vdone:
     * its bytes hashed so far into vstate, vpos: where the next piece should start). */
    uint8_t *stage;
    uint64_t stage_cap;
    XXH3_state_t *vstate;
    uint64_t vblock, vdone, vpos;

    /* The blocks in the pool (cfg.pool with more than one thread; else slots is NULL and
     * blocks are sealed on the caller's thread): a ring of nslots, npend of them in use
     * from shead on, block numbers nblocks.. in order. */
    seal_slot *slots;
    int nslots, shead, npend;

    double seal_seconds; /* compressing and checksumming blocks, for the commit stats */
    char errmsg[AFMT_ERRMSG_MAX];
};

/* ---- small helpers ---- */

/* Grows *buf to hold need bytes (util.h): doubling from 4 KiB for the arena, exact for
 * buffers whose size is known (the open block, scratch buffers). */
static int grow(uint8_t **buf, uint64_t *cap, size_t need, int doubling) {
    return afmt__grow((void **)buf, cap, need, 1, doubling ? 4096 : 0);
}

static int oom(afmt_alloc *a, const char *op, uint64_t n) {
    return afmt__fail(a->errmsg, AFMT_ENOMEM, "afmt alloc: %s: out of memory (%llu bytes)", op,
                      (unsigned long long)n);
}

static size_t bound_of(const afmt_alloc *a, size_t raw) {
    size_t b = a->cfg.codec ? afmt__codec_bound(a->cfg.codec, raw) : 0;
    return b > raw ? b : raw;
}

/* Grows the arena to hold need bytes. Its first allocation is at least 64 MiB of address
 * space (or the budget plus a block, if smaller): glibc serves requests above its mmap
 * threshold (at most 32 MiB) with mmap, and grows such a buffer with mremap, which moves
 * page tables instead of bytes. Grown from a few KiB, the arena lived on the heap and
 * every doubling copied it (a memmove as costly as LZ4 in the profiles of a 64 MiB
 * write). Untouched pages cost no memory. */
static int grow_arena(afmt_alloc *a, size_t need) {
    if (a->arena && need <= a->arena_cap) return AFMT_OK;
    if (!a->arena) {
        size_t first = (size_t)64 << 20;
        size_t fit = bound_of(a, (size_t)a->cfg.block_size);
        fit = a->cfg.mem_budget > SIZE_MAX - fit ? SIZE_MAX : fit + (size_t)a->cfg.mem_budget;
        /* The whole budget plus a block at once where the system gives it (address
         * space: untouched pages cost nothing): a growing arena is moved by mremap, which
         * splits its huge pages (afmt__advise_huge), 0.09 s per 256 MiB on the caller's
         * thread, whatever the number of threads. */
        if (fit >= need && fit < SIZE_MAX / 2 && grow(&a->arena, &a->arena_cap, fit, 0) == AFMT_OK)
            return AFMT_OK;
        if (fit < first) first = fit;
        if (need < first) need = first;
    }
    return grow(&a->arena, &a->arena_cap, need, 1);
}

/* Whole transfers on the spill file (util.h): 0, or -1 with errno set; a spill file
 * shorter than what we wrote was tampered with (EIO). */
static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off) {
    uint64_t done;
    return afmt__pwrite_all(fd, p, n, off, UINT64_MAX, &done) == 0 ? 0 : -1;
}

static int pread_all(int fd, uint8_t *p, size_t n, uint64_t off) {
    uint64_t done;
    int r = afmt__pread_all(fd, p, n, off, UINT64_MAX, &done);
    if (r > 0) errno = EIO;
    return r == 0 ? 0 : -1;
}

static int spill_open(afmt_alloc *a) {
    if (a->spill_fd >= 0) return AFMT_OK;
    const char *dir = a->spill_dir;
    if (!dir || !*dir) dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    int len = snprintf(a->spill_path, sizeof a->spill_path, "%s/afmt-spill-XXXXXX", dir);
    if (len < 0 || (size_t)len >= sizeof a->spill_path)
        return afmt__fail(a->errmsg, AFMT_EIO, "afmt alloc: spill directory path too long: %s",
                          dir);
    int fd = mkostemp(a->spill_path, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return afmt__fail(a->errmsg, AFMT_EIO, "afmt alloc: cannot create spill file \"%s\": %s",
                          a->spill_path, afmt__errno_text(e, (char[128]){0}, 128));
    }
    /* Unlinked at once: the open fd keeps the data, and a crash leaves nothing behind. */
    if (unlink(a->spill_path) != 0) {
        int e = errno;
        close(fd);
        return afmt__fail(a->errmsg, AFMT_EIO, "afmt alloc: cannot unlink spill file \"%s\": %s",
                          a->spill_path, afmt__errno_text(e, (char[128]){0}, 128));
    }
    a->spill_fd = fd;
    return AFMT_OK;
}

/* Moves the whole arena to the end of the spill file once it holds more than the budget. */
static int maybe_spill(afmt_alloc *a) {
    if ((uint64_t)a->arena_len <= a->cfg.mem_budget) return AFMT_OK;
    int rc = spill_open(a);
    if (rc) return rc;
    if (pwrite_all(a->spill_fd, a->arena, a->arena_len, a->spilled) != 0) {
        int e = errno;
        return afmt__fail(a->errmsg, AFMT_EIO,
                          "afmt alloc: spill write of %zu bytes to \"%s\" failed: %s", a->arena_len,
                          a->spill_path, afmt__errno_text(e, (char[128]){0}, 128));
    }
    a->spilled += a->arena_len;
    a->arena_len = 0;
    /* Keep room for the budget plus a block (what a refill needs). Shrink only past twice
     * that, so the doubling growth of a normal refill never causes a shrink/grow cycle;
     * what one huge block or add_stored grew beyond is given back. */
    size_t keep = bound_of(a, (size_t)a->cfg.block_size);
    keep = a->cfg.mem_budget > SIZE_MAX - keep ? SIZE_MAX : keep + (size_t)a->cfg.mem_budget;
    if (keep < SIZE_MAX / 2 && a->arena_cap > 2 * keep && keep > 0) {
        uint8_t *p = realloc(a->arena, keep);
        if (p) { /* a failed shrink just keeps the larger buffer */
            a->arena = p;
            a->arena_cap = keep;
        }
    }
    return AFMT_OK;
}

static int push_block(afmt_alloc *a, uint64_t stored, uint64_t raw, uint64_t checksum,
                      uint32_t codec) {
    if (AFMT__GROW(a->blocks, a->blocks_cap, a->nblocks + 1, 64) != AFMT_OK)
        return oom(a, "block table", (a->nblocks + 1) * sizeof *a->blocks);
    afmt_alloc_block *b = &a->blocks[a->nblocks++];
    b->rel_offset = a->spilled + a->arena_len;
    b->stored_size = stored;
    b->raw_size = raw;
    b->checksum = checksum;
    b->codec = codec;
    a->arena_len += (size_t)stored;
    return AFMT_OK;
}

/* ---- lifecycle ---- */

int afmt__alloc_create(afmt_alloc **out, const afmt_alloc_config *cfg) {
    *out = NULL;
    afmt_alloc *a = calloc(1, sizeof *a);
    if (!a) return afmt__fail(NULL, AFMT_ENOMEM, "afmt alloc: out of memory");
    a->cfg = *cfg;
    if (cfg->spill_dir) {
        a->spill_dir = strdup(cfg->spill_dir);
        if (!a->spill_dir) {
            free(a);
            return afmt__fail(NULL, AFMT_ENOMEM, "afmt alloc: out of memory");
        }
    }
    a->cfg.spill_dir = a->spill_dir;
    a->cfg.pool = NULL;
    int threads = afmt__pool_threads(cfg->pool);
    if (cfg->pool && threads > 1) {
        /* Twice the threads: each has a block to compress while the caller fills more. */
        a->nslots = 2 * threads;
        if (!(a->slots = calloc((size_t)a->nslots, sizeof *a->slots))) {
            free(a->spill_dir);
            free(a);
            return afmt__fail(NULL, AFMT_ENOMEM, "afmt alloc: out of memory");
        }
        a->cfg.pool = cfg->pool;
        for (int i = 0; i < a->nslots; i++) {
            a->slots[i].cfg = &a->cfg;
            a->slots[i].pool = cfg->pool;
        }
    }
    a->spill_fd = -1;
    a->cache_block = NO_BLOCK;
    *out = a;
    return AFMT_OK;
}

static void fills_free(fill_list *l) {
    free(l->recs);
    free(l->args);
}

/* Waits for the blocks in the pool and forgets them (their jobs use the slots; a fill
 * job queues its block's job before it ends). */
static void drop_pending(afmt_alloc *a) {
    afmt__pool_wait(a->cfg.pool, &a->open_job);
    for (int i = 0; i < a->npend; i++) {
        seal_slot *s = &a->slots[(a->shead + i) % a->nslots];
        afmt__pool_wait(a->cfg.pool, &s->fill_job);
        afmt__pool_wait(a->cfg.pool, &s->job);
        s->fills.n = s->fills.args_len = 0;
    }
    a->npend = 0;
    a->shead = 0;
}

void afmt__alloc_free(afmt_alloc *a) {
    if (!a) return;
    if (a->slots) {
        drop_pending(a);
        for (int i = 0; i < a->nslots; i++) {
            free(a->slots[i].raw);
            free(a->slots[i].out);
            fills_free(&a->slots[i].fills);
        }
        free(a->slots);
    }
    if (a->spill_fd >= 0) close(a->spill_fd);
    free(a->open);
    fills_free(&a->open_fills);
    free(a->blocks);
    free(a->arena);
    free(a->scratch);
    free(a->cache);
    free(a->stage);
    if (a->vstate) XXH3_freeState(a->vstate);
    free(a->spill_dir);
    free(a);
}

const char *afmt__alloc_errmsg(const afmt_alloc *a) {
    return a ? a->errmsg : afmt__thread_errbuf();
}

void afmt__alloc_reset(afmt_alloc *a) {
    if (a->slots) drop_pending(a);
    a->seal_seconds = 0;
    a->nblocks = 0;
    a->arena_len = 0;
    a->open_len = 0;
    a->open_active = 0;
    a->open_fills.n = a->open_fills.args_len = 0;
    a->last_valid = 0;
    a->cache_block = NO_BLOCK;
    a->vblock = a->vdone = a->vpos = 0;
    if (a->spill_fd >= 0 && a->spilled > 0) {
        /* Frees the disk space; on failure the next spill just overwrites from offset 0. */
        if (ftruncate(a->spill_fd, 0) != 0) {
            int e = errno;
            afmt__fail(a->errmsg, AFMT_EIO, "afmt alloc: truncating spill file \"%s\": %s",
                       a->spill_path, afmt__errno_text(e, (char[128]){0}, 128));
        }
    }
    a->spilled = 0;
}

/* ---- writing ---- */

static double mono_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double afmt__alloc_seal_seconds(const afmt_alloc *a) {
    return a->seal_seconds;
}

#ifdef AFMT_TESTING
static atomic_int fail_nth, fail_rc;

void afmt__alloc_fail_compress(int nth, int rc) {
    atomic_store(&fail_rc, rc);
    atomic_store(&fail_nth, nth);
}

/* The injected failure of this compression, or AFMT_OK. */
static int injected(void) {
    int n = atomic_load(&fail_nth);
    while (n > 0)
        if (atomic_compare_exchange_weak(&fail_nth, &n, n - 1))
            return n == 1 ? atomic_load(&fail_rc) : AFMT_OK;
    return AFMT_OK;
}
#else
static int injected(void) {
    return AFMT_OK;
}
#endif

/* Compresses raw into dst (bound bytes): *stored bytes of codec *codec, the raw bytes
 * themselves (codec 0) where compression does not shrink them or the codec fails with
 * AFMT_ECODEC. Returns AFMT_OK or the codec's other failures. Touches nothing but its
 * arguments: runs on the pool's threads too. */
static int compress_block(const afmt_alloc_config *cfg, const uint8_t *raw, size_t raw_len,
                          uint8_t *dst, size_t bound, size_t *stored, uint32_t *codec) {
    uint32_t c = cfg->codec;
    size_t n = 0;
    int rc = AFMT_ECODEC;
    if (c != 0 && raw_len > 0 && afmt__codec_bound(c, raw_len) > 0) { /* 0: unknown id */
        rc = injected();
        if (rc == AFMT_OK) rc = afmt__codec_compress(c, cfg->level, raw, raw_len, dst, bound, &n);
    }
    if (rc != AFMT_OK && rc != AFMT_ECODEC) return rc;
    if (rc != AFMT_OK || n >= raw_len) {
        /* Incompressible or the codec failed: the raw bytes are the better stored form. */
        if (raw_len) memcpy(dst, raw, raw_len);
        n = raw_len;
        c = 0;
    }
    *stored = n;
    *codec = c;
    return AFMT_OK;
}

static int compress_failed(afmt_alloc *a, int rc, size_t raw) {
    return afmt__fail(a->errmsg, rc, "afmt alloc: compressing a block of %zu bytes with %s", raw,
                      afmt__codec_name(a->cfg.codec));
}

/* Seals the open block on the caller's thread, straight into the arena. */
static int seal_here(afmt_alloc *a) {
    double t0 = mono_seconds();
    size_t raw = a->open_len;
    size_t bound = bound_of(a, raw);
    if (a->arena_len > SIZE_MAX - bound) return oom(a, "seal", UINT64_MAX);
    if (grow_arena(a, a->arena_len + bound))
        return oom(a, "arena", (uint64_t)(a->arena_len + bound));

    uint8_t *dst = a->arena + a->arena_len;
    size_t stored;
    uint32_t codec;
    int rc = compress_block(&a->cfg, a->open, raw, dst, bound, &stored, &codec);
    if (rc != AFMT_OK) return compress_failed(a, rc, raw);
    rc = push_block(a, stored, raw, afmt__checksum(dst, stored), codec);
    a->seal_seconds += mono_seconds() - t0;
    if (rc) return rc;
    a->open_len = 0;
    a->open_active = 0;
    return maybe_spill(a);
}

/* ---- deferred fills ---- */

/* Runs fills [from, to) of l into the block at base. */
static void run_fills(const fill_list *l, uint8_t *base, size_t from, size_t to) {
    for (size_t i = from; i < to; i++)
        l->recs[i].fn(l->args + l->recs[i].arg, base + l->recs[i].offset);
}

int afmt__alloc_defer_fill(afmt_alloc *a, afmt_alloc_fill_fn fn, const void *arg, size_t size) {
    if (!a->slots || !a->last_valid) return 0;
    fill_list *l = &a->open_fills;
    size_t at = (l->args_len + 15) & ~(size_t)15; /* aligned for any argument struct */
    if (size > SIZE_MAX / 2 - at || AFMT__GROW(l->recs, l->recs_cap, l->n + 1, 64) != AFMT_OK ||
        grow(&l->args, &l->args_cap, at + size, 1) != AFMT_OK)
        return 0; /* out of memory: the caller fills the bytes now instead */
    memcpy(l->args + at, arg, size);
    l->args_len = at + size;
    l->recs[l->n++] = (fill_rec){fn, a->last_off, at};
    a->last_valid = 0;
    return 1;
}

/* The pool's share of the open block's fills (afmt__alloc_fill_wait). */
static void open_fill_job(void *arg) {
    afmt_alloc *a = arg;
    run_fills(&a->open_fills, a->open, a->open_from, a->open_to);
}

void afmt__alloc_fill_wait(afmt_alloc *a) {
    a->last_valid = 0;
    if (!a->slots) return;
    /* The open block's fills: half of them on the pool, the rest here. */
    fill_list *l = &a->open_fills;
    size_t half = l->n / 2;
    if (half > 0) {
        a->open_from = l->n - half;
        a->open_to = l->n;
        a->open_job.fn = open_fill_job;
        a->open_job.arg = a;
        afmt__pool_submit(a->cfg.pool, &a->open_job);
    }
    run_fills(l, a->open, 0, l->n - half);
    afmt__pool_wait(a->cfg.pool, &a->open_job);
    l->n = l->args_len = 0;
    /* The blocks in the pool: their fills run first in each block's jobs. */
    for (int i = 0; i < a->npend; i++)
        afmt__pool_wait(a->cfg.pool, &a->slots[(a->shead + i) % a->nslots].fill_job);
}

/* ---- sealing on the pool ---- */

/* The pool's job: compresses and checksums one block into the slot's own buffer. */
static void seal_job(void *arg) {
    seal_slot *s = arg;
    double t0 = mono_seconds();
    s->bound = s->cfg->codec ? afmt__codec_bound(s->cfg->codec, s->raw_len) : 0;
    if (s->bound < s->raw_len) s->bound = s->raw_len;
    s->nomem = grow(&s->out, &s->out_cap, s->bound ? s->bound : 1, 0) != AFMT_OK;
    s->rc = s->nomem ? AFMT_ENOMEM
                     : compress_block(s->cfg, s->raw, s->raw_len, s->out, s->bound, &s->stored,
                                      &s->codec);
    if (s->rc == AFMT_OK) s->checksum = afmt__checksum(s->out, s->stored);
    s->seconds = mono_seconds() - t0;
}

/* The pool's job: the block's deferred fills (encoding its chunks), then its sealing. */
static void fill_job(void *arg) {
    seal_slot *s = arg;
    run_fills(&s->fills, s->raw, 0, s->fills.n);
    s->fills.n = s->fills.args_len = 0;
    afmt__pool_submit(s->pool, &s->job);
}

/* Moves the oldest block in the pool into the arena, once its job has run: the blocks
 * enter in their order whatever order the threads finish in. On failure the block stays
 * the oldest, and the next retire tries again (compressing again after a codec failure,
 * as a seal on the caller's thread would). */
static int retire(afmt_alloc *a) {
    seal_slot *s = &a->slots[a->shead];
    afmt__pool_wait(a->cfg.pool, &s->fill_job);
    afmt__pool_wait(a->cfg.pool, &s->job);
    if (s->failed) {
        afmt__pool_submit(a->cfg.pool, &s->job);
        afmt__pool_wait(a->cfg.pool, &s->job);
        s->failed = 0;
    }
    if (s->rc != AFMT_OK) {
        s->failed = 1;
        return s->nomem ? oom(a, "seal buffer", s->bound) : compress_failed(a, s->rc, s->raw_len);
    }
    if (a->arena_len > SIZE_MAX - s->stored) return oom(a, "seal", UINT64_MAX);
    if (grow_arena(a, a->arena_len + s->stored))
        return oom(a, "arena", (uint64_t)(a->arena_len + s->stored));
    if (s->stored) memcpy(a->arena + a->arena_len, s->out, s->stored);
    int rc = push_block(a, s->stored, s->raw_len, s->checksum, s->codec);
    if (rc) return rc;
    a->seal_seconds += s->seconds;
    a->shead = (a->shead + 1) % a->nslots;
    a->npend--;
    return maybe_spill(a);
}

/* Seals the open block (the caller checked it is active): on the caller's thread, or
 * handed to the pool with its deferred fills (waiting for the oldest block first if the
 * ring is full, and taking in the blocks already done). */
static int seal_open(afmt_alloc *a) {
    if (!a->slots) return seal_here(a);
    int rc;
    if (a->npend == a->nslots && (rc = retire(a)) != AFMT_OK) return rc;
    seal_slot *s = &a->slots[(a->shead + a->npend) % a->nslots];
    uint8_t *buf = s->raw;
    uint64_t cap = s->raw_cap;
    s->raw = a->open;
    s->raw_cap = a->open_cap;
    s->raw_len = a->open_len;
    a->open = buf;
    a->open_cap = cap;
    a->open_len = 0;
    a->open_active = 0;
    a->last_valid = 0;
    fill_list fl = s->fills; /* empty: its buffers serve the next open block */
    s->fills = a->open_fills;
    a->open_fills = fl;
    s->failed = 0;
    s->job.fn = seal_job;
    s->job.arg = s;
    if (s->fills.n > 0) {
        s->fill_job.fn = fill_job;
        s->fill_job.arg = s;
        afmt__pool_submit(a->cfg.pool, &s->fill_job);
    } else {
        afmt__pool_submit(a->cfg.pool, &s->job);
    }
    a->npend++;
    while (a->npend > 0 && !a->slots[a->shead].failed &&
           afmt__pool_done(a->cfg.pool, &a->slots[a->shead].fill_job) &&
           afmt__pool_done(a->cfg.pool, &a->slots[a->shead].job))
        if ((rc = retire(a)) != AFMT_OK) return rc;
    return AFMT_OK;
}

/* Waits for every block in the pool, in order. */
static int drain(afmt_alloc *a) {
    int rc = AFMT_OK;
    while (rc == AFMT_OK && a->npend > 0) rc = retire(a);
    return rc;
}

int afmt__alloc_seal(afmt_alloc *a) {
    int rc = a->open_active ? seal_open(a) : AFMT_OK;
    if (rc == AFMT_OK && a->slots) rc = drain(a);
    /* No open block: still honour the budget, which a failed spill left exceeded (the
     * commit's seal then fails the way the write did, until the spill works). */
    if (rc == AFMT_OK && !a->open_active) rc = maybe_spill(a);
    return rc;
}

int afmt__alloc_reserve(afmt_alloc *a, uint64_t n, void **dst, uint64_t *block, uint64_t *offset) {
    a->last_valid = 0;
    /* Written without open_len + n, which could wrap. */
    uint64_t bs = a->cfg.block_size;
    if (a->open_active && (n > bs || (uint64_t)a->open_len > bs - n)) {
        int rc = seal_open(a);
        if (rc) return rc;
    }
    /* Either the block is empty now or n fits under block_size, so no overflow below. */
    if (n > SIZE_MAX / 2) return oom(a, "reserve", n);
    size_t need = a->open_len + (size_t)n;
    if (need > a->open_cap || !a->open) {
        size_t want = need;
        if (a->cfg.block_size < SIZE_MAX / 2 && want < (size_t)a->cfg.block_size)
            want = (size_t)a->cfg.block_size;
        if (grow(&a->open, &a->open_cap, want, 0)) return oom(a, "open block", want);
    }
    *dst = a->open + a->open_len;
    *block = a->nblocks + (uint64_t)a->npend;
    *offset = a->open_len;
    a->last_off = a->open_len;
    a->last_valid = 1;
    a->open_len = need;
    a->open_active = 1;
    return AFMT_OK;
}

int afmt__alloc_add_stored(afmt_alloc *a, const void *stored, uint64_t stored_size,
                           uint64_t raw_size, uint32_t codec, uint64_t checksum, uint64_t *block) {
    if ((!stored && stored_size) || (codec == 0 && stored_size != raw_size))
        return afmt__fail(a->errmsg, AFMT_EINVAL,
                          "afmt alloc: add_stored: bad block (stored %llu, raw %llu, codec %u)",
                          (unsigned long long)stored_size, (unsigned long long)raw_size, codec);
    int rc = afmt__alloc_seal(a);
    if (rc) return rc;
    if (stored_size > SIZE_MAX / 2 || a->arena_len > SIZE_MAX / 2)
        return oom(a, "add_stored", stored_size);
    size_t need = a->arena_len + (size_t)stored_size;
    if (grow_arena(a, need)) return oom(a, "arena", need);
    if (stored_size) memcpy(a->arena + a->arena_len, stored, (size_t)stored_size);
    rc = push_block(a, stored_size, raw_size, checksum, codec);
    if (rc) return rc;
    *block = a->nblocks - 1;
    return maybe_spill(a);
}

/* ---- queries ---- */

uint64_t afmt__alloc_nblocks(const afmt_alloc *a) {
    return a->nblocks + (uint64_t)a->npend;
}

const afmt_alloc_block *afmt__alloc_block_at(const afmt_alloc *a, uint64_t i) {
    return i < a->nblocks ? &a->blocks[i] : NULL;
}

uint64_t afmt__alloc_stored_bytes(const afmt_alloc *a) {
    return a->spilled + a->arena_len;
}

uint64_t afmt__alloc_mem_bytes(const afmt_alloc *a) {
    return a->arena_len;
}

uint64_t afmt__alloc_spilled_bytes(const afmt_alloc *a) {
    return a->spilled;
}

/* ---- reading ---- */

static int spill_read(afmt_alloc *a, uint8_t *dst, size_t n, uint64_t off) {
    if (pread_all(a->spill_fd, dst, n, off) != 0) {
        int e = errno;
        return afmt__fail(
            a->errmsg, AFMT_EIO, "afmt alloc: reading %zu bytes at %llu of spill file \"%s\": %s",
            n, (unsigned long long)off, a->spill_path, afmt__errno_text(e, (char[128]){0}, 128));
    }
    return AFMT_OK;
}

int afmt__alloc_read(afmt_alloc *a, uint64_t block, uint64_t offset, void *dst, uint64_t n) {
    if (block == a->nblocks + (uint64_t)a->npend && a->open_active) {
        if (offset > a->open_len || n > a->open_len - offset) goto range;
        if (a->open_fills.n) afmt__alloc_fill_wait(a);
        if (n) memcpy(dst, a->open + offset, (size_t)n);
        return AFMT_OK;
    }
    /* A block in the pool: wait for it (and those before it). A failed spill does not
     * stop it: the block is in memory (the next seal retries the spill, as without a
     * pool). */
    while (block >= a->nblocks && a->npend > 0 && block < a->nblocks + (uint64_t)a->npend) {
        uint64_t before = a->nblocks;
        int rc = retire(a);
        if (rc != AFMT_OK && a->nblocks == before) return rc;
    }
    if (block >= a->nblocks) goto range;
    const afmt_alloc_block *b = &a->blocks[block];
    if (offset > b->raw_size || n > b->raw_size - offset) goto range;
    if (n == 0) return AFMT_OK;
    int in_spill = b->rel_offset < a->spilled;

    if (b->codec == 0) { /* raw: copy the range without touching the cache */
        if (in_spill) return spill_read(a, dst, (size_t)n, b->rel_offset + offset);
        memcpy(dst, a->arena + (b->rel_offset - a->spilled) + offset, (size_t)n);
        return AFMT_OK;
    }
    if (a->cache_block != block) {
        const uint8_t *src;
        if (in_spill) {
            if (grow(&a->scratch, &a->scratch_cap, (size_t)b->stored_size, 0))
                return oom(a, "read scratch", b->stored_size);
            int rc = spill_read(a, a->scratch, (size_t)b->stored_size, b->rel_offset);
            if (rc) return rc;
            /* The spill file is outside our memory: check it came back intact. */
            if (afmt__checksum(a->scratch, (size_t)b->stored_size) != b->checksum)
                return afmt__fail(a->errmsg, AFMT_ECORRUPT,
                                  "afmt alloc: block %llu read back from spill file \"%s\" "
                                  "fails its checksum",
                                  (unsigned long long)block, a->spill_path);
            src = a->scratch;
        } else {
            src = a->arena + (b->rel_offset - a->spilled);
        }
        a->cache_block = NO_BLOCK; /* the cache is being overwritten */
        if (grow(&a->cache, &a->cache_cap, (size_t)b->raw_size, 0))
            return oom(a, "read cache", b->raw_size);
        int rc = afmt__codec_decompress(b->codec, src, (size_t)b->stored_size, a->cache,
                                        (size_t)b->raw_size);
        if (rc)
            return afmt__fail(a->errmsg, rc,
                              "afmt alloc: decompressing block %llu (%s, %llu -> %llu bytes): %s",
                              (unsigned long long)block, afmt__codec_name(b->codec),
                              (unsigned long long)b->stored_size, (unsigned long long)b->raw_size,
                              afmt_strerror(rc));
        a->cache_block = block;
    }
    memcpy(dst, a->cache + offset, (size_t)n);
    return AFMT_OK;
range:
    return afmt__fail(a->errmsg, AFMT_EINVAL,
                      "afmt alloc: read of %llu bytes at %llu of block %llu is out of range",
                      (unsigned long long)n, (unsigned long long)offset, (unsigned long long)block);
}

/* Checks the checksum of every spilled block whose bytes [at, at+len) complete, as read
 * back for the commit: the spill file is outside our memory (the read-your-writes path
 * checks the same way). A block split over two pieces is hashed in parts. */
static int verify_spilled(afmt_alloc *a, const uint8_t *buf, uint64_t at, uint64_t len) {
    if (at == 0 || at != a->vpos) {
        /* A new pass, or not where the last piece ended: start at the first block from
         * here on (a block begun before is then not checked; the commit never skips). */
        a->vblock = 0;
        while (a->vblock < a->nblocks && a->blocks[a->vblock].rel_offset < at) a->vblock++;
        a->vdone = 0;
    }
    a->vpos = at + len;
    while (a->vblock < a->nblocks) {
        const afmt_alloc_block *b = &a->blocks[a->vblock];
        uint64_t from = b->rel_offset + a->vdone, end = b->rel_offset + b->stored_size;
        if (from < at || from > at + len || (from == at + len && end > from)) break;
        uint64_t take = (end < at + len ? end : at + len) - from;
        uint64_t sum;
        if (a->vdone == 0 && take == b->stored_size) {
            sum = afmt__checksum(buf + (from - at), (size_t)take); /* the whole block here */
        } else {
            if (!a->vstate && !(a->vstate = XXH3_createState()))
                return oom(a, "checksum state", 576);
            if (a->vdone == 0) XXH3_64bits_reset(a->vstate);
            XXH3_64bits_update(a->vstate, buf + (from - at), (size_t)take);
            a->vdone += take;
            if (a->vdone < b->stored_size) break; /* continues in the next piece */
            sum = (uint64_t)XXH3_64bits_digest(a->vstate);
        }
        if (sum != b->checksum)
            return afmt__fail(a->errmsg, AFMT_ECORRUPT,
                              "afmt alloc: block %llu (%llu bytes at %llu) read back from spill "
                              "file \"%s\" fails its checksum",
                              (unsigned long long)a->vblock, (unsigned long long)b->stored_size,
                              (unsigned long long)b->rel_offset, a->spill_path);
        a->vblock++;
        a->vdone = 0;
    }
    return AFMT_OK;
}

int afmt__alloc_next_piece(afmt_alloc *a, uint64_t *pos, uint64_t max, const void **p,
                           uint64_t *n) {
    uint64_t total = a->spilled + a->arena_len;
    *p = NULL;
    *n = 0;
    if (*pos > total || max == 0)
        return afmt__fail(a->errmsg, AFMT_EINVAL,
                          "afmt alloc: next_piece at %llu of %llu stored bytes (max %llu)",
                          (unsigned long long)*pos, (unsigned long long)total,
                          (unsigned long long)max);
    if (*pos == total) return AFMT_OK;
    if (*pos < a->spilled) {
        uint64_t len = a->spilled - *pos;
        if (len > max) len = max;
        if (len > SPILL_PIECE_MAX) len = SPILL_PIECE_MAX;
        if (grow(&a->stage, &a->stage_cap, (size_t)len, 0)) return oom(a, "spill staging", len);
        int rc = spill_read(a, a->stage, (size_t)len, *pos);
        if (rc == AFMT_OK) rc = verify_spilled(a, a->stage, *pos, len);
        if (rc) return rc;
        *p = a->stage;
        *n = len;
    } else {
        /* The in-memory part is one piece: with no spill the whole commit is one write. */
        uint64_t off = *pos - a->spilled;
        uint64_t len = a->arena_len - off;
        if (len > max) len = max;
        *p = a->arena + off;
        *n = len;
    }
    *pos += *n;
    return AFMT_OK;
}
