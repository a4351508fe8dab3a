/* cmd_verify.c - afmt verify: checks a whole file with its own walk of the format
 * (docs/format.md), independent of afmt_open, so that it can describe files the library
 * refuses. Rank 0 reads the superblock slots and every footer of the chain and checks
 * the metadata; the block list is broadcast and the blocks are divided among the ranks
 * by bytes; failures are gathered to rank 0, which prints the report. */
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/file.h"
#include "cli.h"
#include "codec/codec.h"
#include "common/util.h"
#include "format/chain.h"

typedef unsigned long long ull;

/* ---- problems and notes (rank 0) ----------------------------------------------------- */

typedef struct {
    char **line;
    uint64_t n, cap;
    int *lost; /* set when a line could not be stored (out of memory) */
} lines;

static void lines_add(lines *l, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void lines_add(lines *l, const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (l->n == l->cap) {
        uint64_t cap = l->cap ? 2 * l->cap : 16;
        char **p = realloc(l->line, sizeof *p * (size_t)cap);
        if (!p) {
            *l->lost = 1;
            return;
        }
        l->line = p;
        l->cap = cap;
    }
    l->line[l->n] = strdup(buf);
    if (l->line[l->n])
        l->n++;
    else
        *l->lost = 1;
}

static void lines_free(lines *l) {
    for (uint64_t i = 0; i < l->n; i++) free(l->line[i]);
    free(l->line);
    l->line = NULL;
    l->n = l->cap = 0;
}

/* One report line on stdout: prefix, then the line escaped (it may hold names). */
static void put_line(const char *prefix, const char *line) {
    fputs(prefix, stdout);
    cli_put_esc(stdout, line, strlen(line), 0);
    fputc('\n', stdout);
}

/* ---- the metadata walk (rank 0) ------------------------------------------------------ */

/* One block to check; all u64 so that the list is broadcast as bytes. */
typedef struct {
    uint64_t offset, stored, raw, checksum, codec;
    uint64_t pool;  /* the layer (position in the pool) */
    uint64_t index; /* block index in its layer */
    uint64_t live;  /* 1: holds a current chunk of the newest state; 2: unknown */
} vblock;

/* A footer of a chain, decoded (taken over from the chain walk). */
typedef struct {
    uint64_t offset, length;
    afmt_layer L;
} pooled;

typedef struct {
    afmt_storage *st;
    const char *path;
    uint64_t size;
    lines damage, notes;
    int failed; /* an internal failure (memory): the report would be incomplete */
    char failure[AFMT_ERRMSG_MAX]; /* what failed */
    pooled *pool;
    uint64_t npool, cap_pool;
    afmt_hmap by_offset; /* footer offset -> pool position */
    afmt_hmap names;     /* array id -> (pool position << 32 | array record index) */
    afmt_hmap bad;       /* offsets of footers found damaged */
    vblock *blocks;
    uint64_t nblocks, cap_blocks;
    uint64_t chunk_records;
} verifier;

static void internal(verifier *v, const char *what) {
    if (!v->failed) snprintf(v->failure, sizeof v->failure, "%s", what);
    v->failed = 1;
}

static const char *slot_name(int i) {
    return i ? "slot B (offset 2048)" : "slot A (offset 0)";
}

static const char *array_name(verifier *v, uint64_t id, char *buf, size_t n) {
    const uint64_t *p = afmt__hmap_get(&v->names, id, 0);
    if (!p) {
        snprintf(buf, n, "array id %llu", (ull)id);
        return buf;
    }
    const afmt_array_rec *r = &v->pool[*p >> 32].L.arrays[*p & 0xffffffffu];
    snprintf(buf, n, "array \"%s\"", r->name);
    return buf;
}

/* The chain walk's callback: keeps each footer (once) in the pool, newest first in the
 * chain list of the walk. */
typedef struct {
    verifier *v;
    uint64_t *chain, n, cap;
} walk_ctx;

static int keep_footer(void *ctx, const afmt_chain_link *link, char *errmsg) {
    walk_ctx *w = ctx;
    verifier *v = w->v;
    if (w->n == w->cap) {
        uint64_t cap = w->cap ? 2 * w->cap : 16;
        uint64_t *c = realloc(w->chain, sizeof *c * (size_t)cap);
        if (!c) return afmt__fail(errmsg, AFMT_ENOMEM, "out of memory");
        w->chain = c;
        w->cap = cap;
    }
    const uint64_t *known = afmt__hmap_get(&v->by_offset, link->offset, 0);
    if (known && v->pool[*known].length == link->length) {
        w->chain[w->n++] = *known;
        return AFMT_OK;
    }
    if (v->npool == v->cap_pool) {
        uint64_t cap = v->cap_pool ? 2 * v->cap_pool : 16;
        pooled *p = realloc(v->pool, sizeof *p * (size_t)cap);
        if (!p) return afmt__fail(errmsg, AFMT_ENOMEM, "out of memory");
        v->pool = p;
        v->cap_pool = cap;
    }
    if (afmt__hmap_put(&v->by_offset, link->offset, 0, v->npool) != AFMT_OK)
        return afmt__fail(errmsg, AFMT_ENOMEM, "out of memory");
    pooled *e = &v->pool[v->npool];
    e->offset = link->offset;
    e->length = link->length;
    e->L = *link->L;
    memset(link->L, 0, sizeof *link->L); /* the pool owns it now */
    for (uint64_t i = 0; i < e->L.n_arrays && i <= 0xffffffffu; i++)
        if (!afmt__hmap_get(&v->names, e->L.arrays[i].id, 0) ||
            e->L.arrays[i].kind == AFMT_REC_DEFINE)
            afmt__hmap_put(&v->names, e->L.arrays[i].id, 0, (v->npool << 32) | i);
    w->chain[w->n++] = v->npool++;
    return AFMT_OK;
}

/* Walks the chain of slot s (named from), through the library's own checks (chain.c):
 * the pool positions newest first in w->chain. 1 if the chain is whole, 0 if it broke
 * (the damage is recorded unless the same footer was reported from the other chain). */
static int walk(verifier *v, const afmt_super *s, const char *from, walk_ctx *w) {
    memset(w, 0, sizeof *w);
    w->v = v;
    afmt_chain_pos pos;
    char msg[AFMT_ERRMSG_MAX];
    int rc = afmt__chain_walk(v->st, s, 1, keep_footer, w, &pos, msg);
    if (rc == AFMT_OK) return 1;
    if (rc == AFMT_ENOMEM) {
        internal(v, msg);
        return 0;
    }
    if (pos.length != 0 && afmt__hmap_get(&v->bad, pos.offset, 0)) return 0; /* reported */
    char where[200];
    if (pos.length == 0)
        snprintf(where, sizeof where, "layer chain of %s", from);
    else if (pos.k == 0)
        snprintf(where, sizeof where, "newest footer (of %s) at offset %llu (%llu bytes)", from,
                 (ull)pos.offset, (ull)pos.length);
    else
        snprintf(where, sizeof where,
                 "footer %llu of the chain of %s, counted from the newest, at offset %llu (%llu "
                 "bytes), below layer %llu",
                 (ull)pos.k + 1, from, (ull)pos.offset, (ull)pos.length, (ull)pos.newer_id);
    lines_add(&v->damage, "%s: %s", where, msg);
    if (pos.length != 0 && afmt__hmap_put(&v->bad, pos.offset, 0, 1) != AFMT_OK)
        internal(v, "out of memory");
    return 0;
}

/* Adds the blocks of pooled layer k to the block list (once per layer). */
static void add_blocks(verifier *v, uint64_t k, afmt_hmap *listed) {
    if (afmt__hmap_get(listed, k, 0)) return;
    if (afmt__hmap_put(listed, k, 0, 1) != AFMT_OK) {
        internal(v, "out of memory for the block list");
        return;
    }
    const afmt_layer *L = &v->pool[k].L;
    v->chunk_records += L->n_chunks;
    for (uint64_t b = 0; b < L->n_blocks; b++) {
        const afmt_block_rec *B = &L->blocks[b];
        if (v->nblocks == v->cap_blocks) {
            uint64_t cap = v->cap_blocks ? 2 * v->cap_blocks : 64;
            vblock *q = realloc(v->blocks, sizeof *q * (size_t)cap);
            if (!q) {
                internal(v, "out of memory for the block list");
                return;
            }
            v->blocks = q;
            v->cap_blocks = cap;
        }
        v->blocks[v->nblocks++] =
            (vblock){B->offset, B->stored_size, B->raw_size, B->checksum, B->codec, k, b, 2};
    }
}

/* Notes the recorded bound of each live lossy array of the merged index x, and a recorded
 * setting that cannot be read (informational, format.md 6: not damage; the blocks decode
 * without it). The values themselves cannot be checked against it: the file does not
 * keep the originals. */
static void lossy_notes(verifier *v, const afmt_index *x) {
    for (uint64_t i = 0; i < afmt__index_live_count(x); i++) {
        const afmt_array_rec *d = &afmt__index_live_at(x, i)->d;
        afmt_array_codec c;
        char why[AFMT_ERRMSG_MAX], t[160], b[160];
        if (cli_codec_of_record(d, &c, why) != 0) {
            lines_add(&v->notes,
                      "%s (informational: the blocks decode without it, each names its codec)",
                      why);
            continue;
        }
        if (!cli_codec_lossy(&c)) continue;
        cli_codec_text(&c, 0, t, sizeof t);
        cli_codec_bound(&c, b, sizeof b);
        if (c.abs_bound > 0 || c.rel_bound > 0)
            lines_add(&v->notes,
                      "array \"%s\": %s, %s (recorded; the values are not checked against "
                      "originals, which the file does not keep)",
                      d->name, t, b);
        else
            lines_add(&v->notes, "array \"%s\": %s, lossy, %s", d->name, t, b);
    }
}

/* Merges the chain (n pool positions, newest first) oldest first with the library's own
 * merge (index.c: format.md 11.2). A layer that fails is reported, and the newer ones are
 * not merged (their checks would only repeat its damage). With live (the current chain),
 * marks each listed block of the chain that holds a current chunk. */
static void merge(verifier *v, const uint64_t *chain, uint64_t n, int live) {
    afmt_index x;
    afmt__index_init(&x);
    uint64_t k = n, merged = 0;
    while (k-- > 0) {
        const pooled *p = &v->pool[chain[k]];
        char msg[AFMT_ERRMSG_MAX];
        int rc = afmt__index_apply(&x, &p->L, p->offset, p->length, msg);
        if (rc == AFMT_ENOMEM) {
            internal(v, msg);
            break;
        }
        if (rc != AFMT_OK) {
            lines_add(&v->damage, "footer at offset %llu: %s", (ull)p->offset, msg);
            if (k > 0)
                lines_add(&v->notes, "the %llu newer layer%s not merged after that damage", (ull)k,
                          k == 1 ? " was" : "s were");
            break;
        }
        merged++;
    }
    if (live && merged == n) {
        /* x.blocks holds the blocks of the layers in the order applied (oldest first). */
        afmt_hmap first;
        afmt__hmap_init(&first);
        uint64_t base = 0;
        for (uint64_t j = n; j-- > 0;) {
            if (afmt__hmap_put(&first, chain[j], 0, base) != AFMT_OK) internal(v, "out of memory");
            base += v->pool[chain[j]].L.n_blocks;
        }
        for (uint64_t b = 0; b < v->nblocks; b++) {
            const uint64_t *f0 = afmt__hmap_get(&first, v->blocks[b].pool, 0);
            if (f0 && *f0 + v->blocks[b].index < x.n_blocks)
                v->blocks[b].live = x.blocks[*f0 + v->blocks[b].index].nlive > 0;
        }
        afmt__hmap_free(&first);
    }
    if (live && merged == n) lossy_notes(v, &x);
    afmt__index_free(&x);
}

static int vblock_cmp(const void *a, const void *b) {
    const vblock *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Rank 0: everything but reading the blocks. Returns CLI_OK, or CLI_ERROR after printing
 * a one-line error (not an afmt file, newer version). The slots and the chain go through
 * the library's own checks (superblock.c, chain.c, index.c): verify reports exactly the
 * damage that afmt_open refuses, plus the damage that a fallback hides. */
static int metadata(verifier *v, int quiet) {
    /* The slots first, then the size (format.md 3.3). */
    uint64_t size0 = 0;
    int rc = v->st->ops->size(v->st, &size0);
    if (rc != AFMT_OK) return cli_error(v->path, "%s", v->st->errmsg);
    uint8_t region[AFMT_SUPER_REGION];
    uint64_t rl = size0 < AFMT_SUPER_REGION ? size0 : AFMT_SUPER_REGION;
    if (rl && v->st->ops->read_at(v->st, 0, region, rl) != AFMT_OK)
        return cli_error(v->path, "%s", v->st->errmsg);
    if (v->st->ops->size(v->st, &v->size) != AFMT_OK)
        return cli_error(v->path, "%s", v->st->errmsg);
    if (v->size < rl) rl = v->size;
    afmt_super_view sv;
    char msg[AFMT_ERRMSG_MAX];
    rc = afmt__super_examine(region, (size_t)rl, v->size, &sv, msg);
    if (rc == AFMT_EVERSION) return cli_error(v->path, "%s: use a newer afmt", msg);
    int best = -1;
    for (int i = 0; i < 2; i++)
        if (sv.usable[i] && (best < 0 || sv.slot[i].generation > sv.slot[best].generation))
            best = i;
    for (int i = 0; i < 2; i++) {
        const afmt_super *s = &sv.slot[i];
        if (sv.usable[i]) {
            lines_add(&v->notes, "%s: generation %llu, %llu layer%s, eof %llu: valid%s",
                      slot_name(i), (ull)s->generation, (ull)s->nlayers, s->nlayers == 1 ? "" : "s",
                      (ull)s->eof, i == best ? ", current" : "");
        } else if (sv.state[i] == AFMT_ENOTFOUND) {
            lines_add(&v->notes, "%s: empty", slot_name(i));
        } else {
            char what[300];
            if (sv.state[i] == AFMT_OK) /* valid, but its commit is not all in the file */
                snprintf(what, sizeof what,
                         "says the file ends at %llu but it has %llu bytes: truncated (%llu bytes "
                         "missing)",
                         (ull)s->eof, (ull)v->size, (ull)(s->eof - v->size));
            else
                snprintf(what, sizeof what, "%s", sv.why[i]);
            if (best < 0)
                lines_add(&v->damage, "%s: %s (no usable slot: the file cannot be opened)",
                          slot_name(i), what);
            else
                lines_add(&v->damage,
                          "%s: %s (the file opens from %s, generation %llu; if the damaged slot "
                          "held a newer commit, that commit is lost)",
                          slot_name(i), what, best ? "slot B" : "slot A",
                          (ull)sv.slot[best].generation);
        }
    }
    if (sv.state[0] == AFMT_OK && sv.state[1] == AFMT_OK &&
        memcmp(sv.slot[0].uuid, sv.slot[1].uuid, 16) != 0)
        lines_add(&v->damage, "%s", msg); /* the library refuses to open the file */
    if (best < 0) return CLI_OK;
    const afmt_super *cur = &sv.slot[best];
    if (!quiet && v->size > cur->eof)
        lines_add(&v->notes,
                  "%llu bytes past the committed end (an interrupted commit or a "
                  "rollback's leftovers; ignored)",
                  (ull)(v->size - cur->eof));

    afmt_hmap listed;
    afmt__hmap_init(&listed);
    char from[64];
    snprintf(from, sizeof from, "%s", best ? "slot B" : "slot A");
    walk_ctx w;
    int whole = walk(v, cur, from, &w);
    if (whole)
        lines_add(&v->notes, "layer chain: %llu layer%s, footers and trailers checked", (ull)w.n,
                  w.n == 1 ? "" : "s");
    for (uint64_t k = 0; k < w.n; k++) add_blocks(v, w.chain[k], &listed);
    if (whole) merge(v, w.chain, w.n, 1);
    int other = 1 - best;
    if (!whole && sv.usable[other] && sv.slot[other].footer_length > 0) {
        char from2[64];
        snprintf(from2, sizeof from2, "%s", other ? "slot B" : "slot A");
        lines_add(&v->notes,
                  "the chain of %s is broken: checking the chain of %s (generation %llu) as well",
                  from, from2, (ull)sv.slot[other].generation);
        walk_ctx w2;
        int whole2 = walk(v, &sv.slot[other], from2, &w2);
        for (uint64_t k = 0; k < w2.n; k++) add_blocks(v, w2.chain[k], &listed);
        if (whole2) merge(v, w2.chain, w2.n, 0);
        free(w2.chain);
    }
    free(w.chain);
    afmt__hmap_free(&listed);
    /* No block at all leaves v->blocks NULL: qsort must not get it (UBSan). */
    if (v->nblocks) qsort(v->blocks, (size_t)v->nblocks, sizeof *v->blocks, vblock_cmp);
    return CLI_OK;
}

/* ---- reading the blocks (every rank) ------------------------------------------------- */

enum { BAD_CHECKSUM = 1, BAD_DECOMPRESS, BAD_CODEC, BAD_READ, BAD_RAWSIZE, BAD_MEMORY };

static const char *bad_text(uint64_t code) {
    switch (code) {
    case BAD_CHECKSUM:
        return "the stored bytes fail their checksum";
    case BAD_DECOMPRESS:
        return "does not decompress to its raw size";
    case BAD_CODEC:
        return "uses a codec this afmt lacks (not checked past its checksum)";
    case BAD_READ:
        return "cannot be read";
    case BAD_RAWSIZE:
        return "stored raw, but its stored and raw sizes differ";
    default:
        return "out of memory to check it";
    }
}

static uint64_t check_block(afmt_storage *st, const vblock *b, uint8_t **sbuf, uint64_t *scap,
                            uint8_t **rbuf, uint64_t *rcap) {
    if (b->stored > SIZE_MAX || b->raw > SIZE_MAX) return BAD_MEMORY;
    if (b->stored > *scap) {
        uint8_t *p = realloc(*sbuf, (size_t)b->stored);
        if (!p) return BAD_MEMORY;
        *sbuf = p;
        *scap = b->stored;
    }
    if (b->stored && st->ops->read_at(st, b->offset, *sbuf, b->stored) != AFMT_OK) return BAD_READ;
    if (afmt__checksum(*sbuf, (size_t)b->stored) != b->checksum) return BAD_CHECKSUM;
    if (b->codec == AFMT_CODEC_NONE) return b->stored == b->raw ? 0 : BAD_RAWSIZE;
    if (!afmt__codec_known((uint32_t)b->codec)) return BAD_CODEC;
    if (b->raw > *rcap) {
        uint8_t *p = realloc(*rbuf, (size_t)b->raw);
        if (!p) return BAD_MEMORY;
        *rbuf = p;
        *rcap = b->raw;
    }
    if (afmt__codec_decompress((uint32_t)b->codec, *sbuf, (size_t)b->stored, *rbuf,
                               (size_t)b->raw) != AFMT_OK)
        return BAD_DECOMPRESS;
    return 0;
}

static void progress(uint64_t done, uint64_t total, int final) {
    char a[32], b[32];
    int pct = total ? (int)(done * 100 / total) : 100, width = 30, fill = pct * width / 100;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\rverify [%s] %3d%% %s of %s", bar, pct, cli_human(done, a, sizeof a),
            cli_human(total, b, sizeof b));
    if (final) fputs("\r\033[K", stderr);
    fflush(stderr);
}

/* Checks this rank's share; returns the failures as (position, code) pairs. *oom is set
 * when a block could not be checked or a failure not recorded for want of memory: the
 * report would be incomplete. */
static uint64_t *check_share(afmt_storage *st, const vblock *blocks, uint64_t n, uint64_t *nfail,
                             uint64_t *bytes_done, int *oom) {
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) total += blocks[i].stored;
    uint64_t lo = total / (uint64_t)cli.size * (uint64_t)cli.rank;
    uint64_t hi = cli.rank == cli.size - 1 ? UINT64_MAX
                                           : total / (uint64_t)cli.size * (uint64_t)(cli.rank + 1);
    uint64_t mine = 0, acc = 0;
    for (uint64_t i = 0; i < n; i++, acc += blocks[i - 1].stored)
        if (acc >= lo && acc < hi) mine += blocks[i].stored;
    const char *force = getenv("AFMT_PROGRESS");
    int show = cli.rank == 0 && ((force && *force == '1') ||
                                 (isatty(STDERR_FILENO) && mine >= ((uint64_t)64 << 20)));
    uint64_t *fail = NULL, cap = 0, done = 0;
    uint8_t *sbuf = NULL, *rbuf = NULL;
    uint64_t scap = 0, rcap = 0, last = 0;
    *nfail = 0;
    acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t at = acc;
        acc += blocks[i].stored;
        if (at < lo || at >= hi) continue; /* a block belongs to the rank holding its start */
        uint64_t code = check_block(st, &blocks[i], &sbuf, &scap, &rbuf, &rcap);
        done += blocks[i].stored;
        if (code == BAD_MEMORY) {
            *oom = 1;
        } else if (code) {
            if (*nfail == cap) {
                uint64_t ncap = cap ? 2 * cap : 16;
                uint64_t *p = realloc(fail, sizeof *p * 2 * (size_t)ncap);
                if (!p) {
                    *oom = 1;
                    continue;
                }
                fail = p;
                cap = ncap;
            }
            fail[2 * *nfail] = i;
            fail[2 * *nfail + 1] = code;
            (*nfail)++;
        }
        if (show && (done - last >= ((uint64_t)4 << 20) || done == mine)) {
            progress(done, mine, 0);
            last = done;
        }
    }
    if (show) progress(done, mine, 1);
    free(sbuf);
    free(rbuf);
    *bytes_done = done;
    return fail;
}

/* Rank 0: one line naming a damaged block's layer, offset and chunks. */
static void report_block(verifier *v, uint64_t pos, uint64_t code) {
    const vblock *b = &v->blocks[pos];
    const pooled *p = &v->pool[b->pool];
    const afmt_layer *L = &p->L;
    char what[1400];
    size_t at = 0;
    uint64_t shown = 0, total = 0, run_lo = 0, run_hi = 0;
    int open_run = 0;
    what[0] = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (at < sizeof what) {                                                                    \
            int w_ = snprintf(what + at, sizeof what - at, __VA_ARGS__);                           \
            if (w_ > 0) at += (size_t)w_;                                                          \
        }                                                                                          \
    } while (0)
    /* Chunk records are sorted by (array, chunk): group them by array, runs as a-b. */
    for (uint64_t i = 0; i < L->n_chunks;) {
        if (L->chunks[i].block != b->index) {
            i++;
            continue;
        }
        uint64_t id = L->chunks[i].array_id, cnt = 0, j;
        for (j = i; j < L->n_chunks && L->chunks[j].array_id == id; j++)
            cnt += L->chunks[j].block == b->index;
        total += cnt;
        if (shown < 24) {
            char nb[AFMT_MAX_NAME + 32];
            PUT("%s%s chunk%s ", shown ? "; " : "", array_name(v, id, nb, sizeof nb),
                cnt == 1 ? "" : "s");
            int first = 1;
            for (uint64_t k = i; k < j && shown < 24; k++) {
                const afmt_chunk_rec *c = &L->chunks[k];
                if (c->block != b->index) continue;
                shown++;
                if (open_run && c->chunk_index == run_hi + 1) {
                    run_hi = c->chunk_index;
                    continue;
                }
                if (open_run && run_hi > run_lo) PUT("-%llu", (ull)run_hi);
                PUT("%s%llu", first ? "" : ",", (ull)c->chunk_index);
                first = 0;
                open_run = 1;
                run_lo = run_hi = c->chunk_index;
            }
            if (open_run && run_hi > run_lo) PUT("-%llu", (ull)run_hi);
            open_run = 0;
        }
        i = j;
    }
    if (total > shown) PUT(" (%llu chunk records in all)", (ull)total);
#undef PUT
    const char *cost = b->live == 0 ? " [no current chunk: only reads of older layers fail]" : "";
    lines_add(&v->damage, "layer %llu, block %llu at offset %llu (%llu bytes, %s): %s; %s%s",
              (ull)L->layer_id, (ull)b->index, (ull)b->offset, (ull)b->stored,
              afmt__codec_name((uint32_t)b->codec), bad_text(code),
              total ? what : "holds no chunk record", cost);
}

int cmd_verify(int argc, char **argv) {
    static const cli_optdef defs[] = {{"quiet", 'q', 0}, {NULL, 0, 0}};
    cli_args a;
    int done, rc = cli_parse(argc, argv, defs, &a, &done);
    if (done) return rc;
    if (a.npos != 1) return cli_usage_error("verify", "expected one FILE");
    int quiet = a.val[0] != NULL;
    const char *path = a.pos[0];
    if ((rc = cli_check_file(path)) != CLI_OK) return rc;
    verifier v;
    memset(&v, 0, sizeof v);
    v.path = path;
    v.damage.lost = v.notes.lost = &v.failed;
    afmt__hmap_init(&v.by_offset);
    afmt__hmap_init(&v.names);
    afmt__hmap_init(&v.bad);
    char msg[AFMT_ERRMSG_MAX];
    if (afmt__storage_open(afmt__storage_kind_of(path, AFMT_STORAGE_MPIIO), cli.comm, path,
                           AFMT_ST_READ, MPI_INFO_NULL, &v.st, msg) != AFMT_OK)
        return cli_error(path, "%s", msg);
    rc = CLI_OK;
    if (cli.rank == 0) rc = metadata(&v, quiet);
    rc = cli_agree(rc);
    uint64_t n = v.nblocks;
    if (rc == CLI_OK) {
        MPI_Bcast(&n, 1, MPI_UINT64_T, 0, cli.comm);
        if (cli.rank != 0) {
            v.blocks = n <= SIZE_MAX / sizeof *v.blocks - 1
                           ? malloc(sizeof *v.blocks * (size_t)(n + 1))
                           : NULL;
            v.nblocks = n;
        }
        int ok = v.blocks != NULL || n == 0;
        rc = cli_agree_msg(path, !ok, "out of memory for the block list");
    }
    uint64_t nfail = 0, *fail = NULL, bytes = 0;
    int oom = 0;
    if (rc == CLI_OK && n) {
        afmt__bcast_bytes(cli.comm, v.blocks, sizeof *v.blocks * n, 0);
        fail = check_share(v.st, v.blocks, n, &nfail, &bytes, &oom);
    }
    int *cnts = NULL, *displ = NULL;
    uint64_t *all = NULL, total_bytes = 0;
    if (rc == CLI_OK) {
        /* Never a verdict after an internal failure: an incomplete check is no "OK". */
        cnts = calloc((size_t)cli.size, sizeof *cnts);
        displ = calloc((size_t)cli.size, sizeof *displ);
        int bad =
            oom || !cnts || !displ || nfail > (uint64_t)INT_MAX / 2 || (cli.rank == 0 && v.failed);
        MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, cli.comm);
        if (bad) {
            if (cli.rank == 0)
                cli_error(path, "verify could not check everything (%s): no verdict",
                          v.failed && v.failure[0] ? v.failure : "out of memory");
            rc = CLI_ERROR;
        }
    }
    if (rc == CLI_OK) {
        /* Gather the failures on rank 0. */
        int cnt = (int)(2 * nfail), sum = 0, ok = 1;
        MPI_Reduce(&bytes, &total_bytes, 1, MPI_UINT64_T, MPI_SUM, 0, cli.comm);
        MPI_Gather(&cnt, 1, MPI_INT, cnts, 1, MPI_INT, 0, cli.comm);
        if (cli.rank == 0) {
            uint64_t total = 0;
            for (int r = 0; r < cli.size; r++) {
                displ[r] = (int)total;
                total += (uint64_t)cnts[r];
                if (total > (uint64_t)INT_MAX) ok = 0;
            }
            sum = ok ? (int)total : 0;
            all = ok ? malloc(sizeof *all * (size_t)(sum + 1)) : NULL;
            ok = all != NULL;
        }
        MPI_Bcast(&ok, 1, MPI_INT, 0, cli.comm);
        if (!ok) {
            if (cli.rank == 0)
                cli_error(path, "verify could not check everything (out of memory for the "
                                "report): no verdict");
            rc = CLI_ERROR;
        } else {
            MPI_Gatherv(fail, cnt, MPI_UINT64_T, all, cnts, displ, MPI_UINT64_T, 0, cli.comm);
        }
        if (rc == CLI_OK && cli.rank == 0) {
            uint64_t nocodec = 0;
            for (int i = 0; i + 1 < sum; i += 2) {
                if (all[i + 1] == BAD_CODEC) /* stored bytes verified; only decoding not */
                    nocodec++;
                else
                    report_block(&v, all[i], all[i + 1]);
            }
            if (nocodec)
                lines_add(&v.notes,
                          "%llu block%s use%s a codec this afmt lacks: checksums verified, "
                          "decompression not checked",
                          (ull)nocodec, nocodec == 1 ? "" : "s", nocodec == 1 ? "s" : "");
            if (v.failed) {
                cli_error(path, "verify could not record everything (out of memory): no verdict");
                rc = CLI_ERROR;
            } else {
                /* Lines carry names from the file: printed escaped (cli_put_esc). */
                if (!quiet)
                    for (uint64_t i = 0; i < v.notes.n; i++) put_line("", v.notes.line[i]);
                if (!quiet)
                    printf("blocks: %llu checked (%llu bytes stored), chunk records: %llu "
                           "checked\n",
                           (ull)n, (ull)total_bytes, (ull)v.chunk_records);
                for (uint64_t i = 0; i < v.damage.n; i++) put_line("damaged: ", v.damage.line[i]);
                cli_put_esc(stdout, path, strlen(path), 0);
                if (v.damage.n)
                    printf(": DAMAGED (%llu problem%s)\n", (ull)v.damage.n,
                           v.damage.n == 1 ? "" : "s");
                else
                    printf(": OK\n");
                fflush(stdout);
                rc = v.damage.n ? CLI_DIFF : CLI_OK;
            }
        }
        MPI_Bcast(&rc, 1, MPI_INT, 0, cli.comm);
    }
    free(cnts);
    free(displ);
    free(all);
    free(fail);
    v.st->ops->close(v.st);
    for (uint64_t i = 0; i < v.npool; i++) afmt__layer_free(&v.pool[i].L);
    free(v.pool);
    free(v.blocks);
    afmt__hmap_free(&v.by_offset);
    afmt__hmap_free(&v.names);
    afmt__hmap_free(&v.bad);
    lines_free(&v.damage);
    lines_free(&v.notes);
    return rc;
}
