/* fuzz_mutator.c - the structure-aware mutator (see fuzz_mutator.h). Section numbers (§)
 * are those of docs/format.md, which this file follows byte for byte.
 *
 * Model: parse() finds the slots (§3.1), the trailers (§4, by their magic), the footers
 * that slots, trailers and prev pointers name (§5, §11) and, in every footer whose
 * section sizes add up (§5.2 step 6), the records of its tables (v1: arrays, blocks,
 * chunks, attributes, §6, §8, §9.5, §10; v2: arrays, the root table §9.2, attributes)
 * and its heap (§5.3); for a v2 footer, the index segment each root record names (§9.1:
 * header, block and chunk records, when its sizes add up). Every field becomes an entry
 * (position, width, kind); every (offset, length) pair that names a byte range of the
 * file (slot -> footer, footer -> previous footer, trailer -> footer, block record ->
 * stored bytes, root record -> segment) is remembered, so that splice() can grow or
 * shrink a footer, a segment or a block and move every later offset. A mutation edits
 * the image through this model, parse() runs again, and reseal() recomputes every
 * checksum for the bytes it names, innermost first: blocks, segments, root records,
 * footers, trailers and slots. */
#include "fuzz_mutator.h"

#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "common/util.h"

#ifdef FUZZ_LIBFUZZER
/* libFuzzer's own byte-level mutator (callable from a custom mutator). */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
#endif

/* ---- the layout ----------------------------------------------------------------------- */
#define REGION     4096 /* superblock region: slots at 0 and 2048 (§3) */
#define SLOT       128  /* one slot (§3.1) */
#define TRAILER    32   /* §4 */
#define HDR        176  /* v1 footer header (§5.1) */
#define MIN_FOOTER 184  /* header + checksum (§5.2 step 1) */
static const size_t slot_at[2] = {0, 2048};
/* v1 sizes of an array record's fixed part, a dimension entry, a block, a chunk and an
 * attribute record (header offsets 144-160, §5.1); v2: a segment (root) record instead of
 * the block record, and no chunk table (offset 156 is reserved). */
static const uint32_t v1_rec[5] = {48, 32, 40, 40, 56};
static const uint32_t v2_rec[5] = {72, 32, 80, 0, 56};
#define SEG_HDR 64  /* segment header (§9.1) */
#define SEG_MIN 112 /* the shortest segment: header, one chunk record, checksum (§9.2) */

enum { S_ARRAYS, S_BLOCKS, S_CHUNKS, S_ATTRS, S_HEAP, S_END };

/* What a field means, to choose values that matter for it. */
enum {
    K_OFFSET,   /* file offset */
    K_LENGTH,   /* byte length or in-block offset */
    K_RAWSIZE,  /* block raw size */
    K_COUNT,    /* record or value count */
    K_ID,       /* array id, next_array_id */
    K_SCOPE,    /* attribute scope: 0, array id, 2^64-1 */
    K_LAYER,    /* layer id */
    K_GEN,      /* slot generation */
    K_DTYPE,    /* u32 */
    K_KIND,     /* u32 DEFINE/DELETE */
    K_FLAGS,    /* u32 */
    K_CODEC,    /* u32 */
    K_NDIM,     /* u32 */
    K_SHAPE,    /* u64 */
    K_CHUNK,    /* u64 */
    K_INDEX,    /* linear chunk index */
    K_BLOCKREF, /* block index of a chunk record */
    K_HEAPOFF,  /* heap offset (the length follows at +8) */
    K_STRLEN,   /* string length */
    K_VERSION,  /* u32 */
    K_RECSIZE,  /* u32 header or record size */
    K_RANKS,    /* u32 nranks, block rank */
    K_TIME,
    K_FILL,
    K_UUID,
    K_RESERVED
};

typedef struct {
    size_t pos;
    uint8_t width; /* 4 or 8 */
    uint8_t kind;
    int16_t footer; /* index in model.ft, or -1 */
    int16_t seg;    /* index in model.sg (a field of a segment), or -1 */
} field;

typedef struct {
    size_t off_pos, len_pos;
} pair;

typedef struct {
    size_t at, len;
    int sane;          /* section sizes add up: sec[] and the records are known */
    int v2;            /* version 2: table S_BLOCKS is the root table, S_CHUNKS is empty */
    uint32_t hs;       /* header size */
    uint32_t rs[5];    /* record sizes, as v1_rec (v2_rec) */
    uint64_t cnt[4];   /* n_arrays, n_blocks, n_chunks, n_attrs (v2: n_segments, 0) */
    size_t sec[6];     /* absolute starts of the four tables and the heap; heap end */
    size_t rec_end[4]; /* end of the last record of each table */
} footer;

/* An index segment (§9.1), as a root record names it. */
typedef struct {
    size_t at, len; /* the bytes the root record names (inside the image) */
    size_t root;    /* position of the (first) root record naming them */
    int footer;
    int sane;            /* magic, and header and records add up to len: records known */
    uint32_t hs, bs, cs; /* header and record sizes */
    uint64_t nb, nc;
} segment;

#define MAX_FOOTERS 64
#define MAX_FIELDS  8192
#define MAX_PAIRS   2048
#define MAX_RECS    2048
#define MAX_SEGS    256
#define MAX_BLOCKS  4096

typedef struct {
    uint8_t *img;
    size_t n;
    int slot[2]; /* the slot has the magic */
    footer ft[MAX_FOOTERS];
    int nft;
    size_t tr[MAX_FOOTERS]; /* trailer positions */
    int ntr;
    field fl[MAX_FIELDS];
    int nfl;
    pair pr[MAX_PAIRS];
    int npr;
    segment sg[MAX_SEGS];
    int nsg;
    size_t roots[MAX_SEGS]; /* root record positions (v2 footers) */
    int nroots;
    size_t blk[MAX_BLOCKS]; /* block record positions (v1 footers, sane segments) */
    int nblk;
} model;

static model M1, M2;
static const char *last_op = "none";

/* ---- random numbers (deterministic per seed) --------------------------------------------- */
static uint64_t rng = 1;

static uint64_t rnd(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1DULL;
}

static uint64_t below(uint64_t n) {
    return n ? rnd() % n : 0;
}

static void seed_rng(unsigned seed) {
    rng = (((uint64_t)seed << 32) | seed) ^ 0x9E3779B97F4A7C15ULL;
    if (!rng) rng = 1;
    rnd();
}

#define PICK(...)                                                                                  \
    do {                                                                                           \
        const uint64_t c_[] = {__VA_ARGS__};                                                       \
        return c_[below(sizeof c_ / sizeof c_[0])];                                                \
    } while (0)

/* Byte-level mutation: libFuzzer's under libFuzzer, a few flipped, set or copied bytes in
 * the plain drivers. */
static size_t byte_mutate(uint8_t *d, size_t n, size_t max) {
#ifdef FUZZ_LIBFUZZER
    return LLVMFuzzerMutate(d, n, max);
#else
    if (n == 0) {
        if (max == 0) return 0;
        d[0] = (uint8_t)rnd();
        return 1;
    }
    for (uint64_t k = 1 + below(4); k > 0; k--) {
        size_t i = (size_t)below(n);
        switch (below(3)) {
        case 0:
            d[i] ^= (uint8_t)(1u << below(8));
            break;
        case 1:
            d[i] = (uint8_t)rnd();
            break;
        default:
            d[i] = d[below(n)];
        }
    }
    return n;
#endif
}

static uint64_t getw(const uint8_t *p, int w) {
    return w == 4 ? afmt__get_u32(p) : afmt__get_u64(p);
}

static void putw(uint8_t *p, int w, uint64_t v) {
    if (w == 4)
        afmt__put_u32(p, (uint32_t)v);
    else
        afmt__put_u64(p, v);
}

static int in_image(const model *m, uint64_t off, uint64_t len) {
    return off <= m->n && len <= m->n - off;
}

/* ---- parsing ---------------------------------------------------------------------------- */

static int cur_seg = -1; /* the segment whose fields parse adds, or -1 */

static void add_field(model *m, size_t pos, int width, int kind, int in_footer) {
    if (m->nfl == MAX_FIELDS || pos > m->n || (size_t)width > m->n - pos) return;
    field *f = &m->fl[m->nfl++];
    f->pos = pos;
    f->width = (uint8_t)width;
    f->kind = (uint8_t)kind;
    f->footer = (int16_t)in_footer;
    f->seg = (int16_t)cur_seg;
}

static void add_pair(model *m, size_t off_pos, size_t len_pos) {
    if (m->npr == MAX_PAIRS) return;
    m->pr[m->npr].off_pos = off_pos;
    m->pr[m->npr].len_pos = len_pos;
    m->npr++;
}

/* The records of table s of footer f: starts and lengths (at most max), their count. */
static int records(const model *m, const footer *f, int s, size_t *st, size_t *ln, int max) {
    if (!f->sane) return 0;
    size_t pos = f->sec[s], end = f->sec[s + 1];
    int n = 0;
    for (uint64_t i = 0; i < f->cnt[s] && n < max; i++) {
        size_t len;
        if (s == S_ARRAYS) {
            if (end - pos < f->rs[0]) break;
            uint64_t nd = afmt__get_u32(m->img + pos + 20), dl; /* ndim (§6) */
            if (!afmt__mul_ok(nd, f->rs[1], &dl) || dl > end - pos - f->rs[0]) break;
            len = f->rs[0] + (size_t)dl;
        } else {
            len = f->rs[s + 1];
            if (end - pos < len) break;
        }
        if (st) st[n] = pos;
        if (ln) ln[n] = len;
        n++;
        pos += len;
    }
    return n;
}

/* The fields of a block record at r (§8), which v1 footers and v2 segments share; the
 * checksum at +24 is resealed, not mutated. */
static void block_fields(model *m, size_t r, int k) {
    add_field(m, r, 8, K_OFFSET, k);
    add_field(m, r + 8, 8, K_LENGTH, k);
    add_pair(m, r, r + 8);
    add_field(m, r + 16, 8, K_RAWSIZE, k);
    add_field(m, r + 32, 4, K_CODEC, k);
    add_field(m, r + 36, 4, K_RANKS, k);
    if (m->nblk < MAX_BLOCKS) m->blk[m->nblk++] = r;
}

/* The fields of a chunk record at r (§9.1, §9.5). */
static void chunk_fields(model *m, size_t r, int k) {
    add_field(m, r, 8, K_ID, k);
    add_field(m, r + 8, 8, K_INDEX, k);
    add_field(m, r + 16, 8, K_BLOCKREF, k);
    add_field(m, r + 24, 8, K_LENGTH, k);
    add_field(m, r + 32, 8, K_LENGTH, k);
}

/* The segment named by the root record at r of footer k (§9.1, §9.2). */
static void parse_segment(model *m, int k, size_t r) {
    if (m->nroots < MAX_SEGS) m->roots[m->nroots++] = r;
    uint64_t at = afmt__get_u64(m->img + r), len = afmt__get_u64(m->img + r + 8);
    if (at < REGION || len < 8 || !in_image(m, at, len)) return;
    for (int i = 0; i < m->nsg; i++)
        if (m->sg[i].at == at && m->sg[i].len == len) return; /* named twice */
    if (m->nsg == MAX_SEGS) return;
    int si = m->nsg++;
    segment *g = &m->sg[si];
    memset(g, 0, sizeof *g);
    g->at = (size_t)at;
    g->len = (size_t)len;
    g->root = r;
    g->footer = k;
    const uint8_t *p = m->img + at;
    if (len < SEG_MIN || memcmp(p, "AFMTSEGM", 8) != 0) return;
    g->hs = afmt__get_u32(p + 12);
    g->bs = afmt__get_u32(p + 40);
    g->cs = afmt__get_u32(p + 44);
    g->nb = afmt__get_u64(p + 24);
    g->nc = afmt__get_u64(p + 32);
    cur_seg = si;
    add_field(m, at + 8, 4, K_VERSION, k);
    add_field(m, at + 12, 4, K_RECSIZE, k);
    add_field(m, at + 16, 8, K_LAYER, k);
    add_field(m, at + 24, 8, K_COUNT, k);
    add_field(m, at + 32, 8, K_COUNT, k);
    add_field(m, at + 40, 4, K_RECSIZE, k);
    add_field(m, at + 44, 4, K_RECSIZE, k);
    add_field(m, at + 48, 4, K_RANKS, k);
    add_field(m, at + 52, 4, K_RESERVED, k);
    uint64_t a = 0, b = 0, t = 0;
    if (g->hs >= SEG_HDR && g->bs >= 40 && g->cs >= 40 && afmt__mul_ok(g->nb, g->bs, &a) &&
        afmt__mul_ok(g->nc, g->cs, &b) && afmt__add_ok(a, b, &t) &&
        afmt__add_ok(t, (uint64_t)g->hs + 8, &t) && t == len) {
        g->sane = 1;
        size_t q = g->at + g->hs;
        for (uint64_t i = 0; i < g->nb; i++, q += g->bs) block_fields(m, q, k);
        for (uint64_t i = 0; i < g->nc; i++, q += g->cs) chunk_fields(m, q, k);
    }
    cur_seg = -1;
}

static void parse_records(model *m, int k) {
    footer *f = &m->ft[k];
    static size_t st[MAX_RECS], ln[MAX_RECS];
    for (int s = 0; s < 4; s++) {
        int n = records(m, f, s, st, ln, MAX_RECS);
        f->rec_end[s] = n ? st[n - 1] + ln[n - 1] : f->sec[s];
        for (int i = 0; i < n; i++) {
            size_t r = st[i];
            switch (s) {
            case S_ARRAYS: /* §6 */
                add_field(m, r, 8, K_ID, k);
                add_field(m, r + 8, 4, K_KIND, k);
                add_field(m, r + 12, 4, K_FLAGS, k);
                add_field(m, r + 16, 4, K_DTYPE, k);
                add_field(m, r + 20, 4, K_NDIM, k);
                add_field(m, r + 24, 8, K_HEAPOFF, k);
                add_field(m, r + 32, 8, K_STRLEN, k);
                add_field(m, r + 40, 8, K_FILL, k);
                for (size_t d = r + f->rs[0]; d + f->rs[1] <= r + ln[i]; d += f->rs[1]) {
                    add_field(m, d, 8, K_SHAPE, k);
                    add_field(m, d + 8, 8, K_CHUNK, k);
                    add_field(m, d + 16, 8, K_HEAPOFF, k);
                    add_field(m, d + 24, 8, K_STRLEN, k);
                }
                break;
            case S_BLOCKS:
                if (!f->v2) { /* §8 */
                    block_fields(m, r, k);
                    break;
                }
                /* a root record (§9.2); the checksum at +16 is resealed, not mutated */
                add_field(m, r, 8, K_OFFSET, k);
                add_field(m, r + 8, 8, K_LENGTH, k);
                add_pair(m, r, r + 8);
                add_field(m, r + 24, 8, K_COUNT, k);
                add_field(m, r + 32, 8, K_COUNT, k);
                add_field(m, r + 40, 8, K_ID, k);
                add_field(m, r + 48, 8, K_INDEX, k);
                add_field(m, r + 56, 8, K_ID, k);
                add_field(m, r + 64, 8, K_INDEX, k);
                add_field(m, r + 72, 4, K_RANKS, k);
                add_field(m, r + 76, 4, K_RESERVED, k);
                break;
            case S_CHUNKS: /* §9.5 */
                chunk_fields(m, r, k);
                break;
            default: /* §10 */
                add_field(m, r, 8, K_SCOPE, k);
                add_field(m, r + 8, 8, K_HEAPOFF, k);
                add_field(m, r + 16, 8, K_STRLEN, k);
                add_field(m, r + 24, 4, K_DTYPE, k);
                add_field(m, r + 28, 4, K_RESERVED, k);
                add_field(m, r + 32, 8, K_COUNT, k);
                add_field(m, r + 40, 8, K_HEAPOFF, k);
                add_field(m, r + 48, 8, K_LENGTH, k);
            }
        }
    }
    /* After the footer's own fields: the segments of its root records. */
    if (f->v2) {
        int n = records(m, f, S_BLOCKS, st, NULL, MAX_RECS);
        for (int i = 0; i < n; i++) parse_segment(m, k, st[i]);
    }
}

static void parse_footer(model *m, int k) {
    footer *f = &m->ft[k];
    size_t a = f->at;
    const uint8_t *p = m->img + a;
    /* The header (§5.1); magic and the trailing checksum are not fields. */
    add_field(m, a + 8, 4, K_VERSION, k);
    add_field(m, a + 12, 4, K_RECSIZE, k);
    add_field(m, a + 16, 8, K_LAYER, k);
    add_field(m, a + 24, 8, K_OFFSET, k);
    add_field(m, a + 32, 8, K_LENGTH, k);
    add_pair(m, a + 24, a + 32);
    add_field(m, a + 40, 8, K_OFFSET, k);
    add_field(m, a + 48, 8, K_TIME, k);
    add_field(m, a + 56, 4, K_RANKS, k);
    add_field(m, a + 60, 4, K_FLAGS, k);
    add_field(m, a + 64, 8, K_ID, k);
    for (size_t i = 0; i < 4; i++) add_field(m, a + 72 + 8 * i, 8, K_COUNT, k);
    for (size_t i = 0; i < 5; i++) add_field(m, a + 104 + 8 * i, 8, K_LENGTH, k);
    for (size_t i = 0; i < 5; i++) add_field(m, a + 144 + 4 * i, 4, K_RECSIZE, k);
    add_field(m, a + 164, 4, K_FLAGS, k);
    add_field(m, a + 168, 8, K_RESERVED, k);

    f->hs = afmt__get_u32(p + 12);
    f->v2 = afmt__get_u32(p + 8) == 2;
    for (int i = 0; i < 5; i++) f->rs[i] = afmt__get_u32(p + 144 + 4 * i);
    for (int i = 0; i < 4; i++) f->cnt[i] = afmt__get_u64(p + 72 + 8 * i);
    uint64_t sizes[5];
    for (int i = 0; i < 5; i++) sizes[i] = afmt__get_u64(p + 104 + 8 * i);
    if (f->v2) { /* §5.1: segs_size at 112, n_segments at 120; no chunk table */
        f->cnt[S_BLOCKS] = afmt__get_u64(p + 120);
        f->cnt[S_CHUNKS] = 0;
        sizes[S_CHUNKS] = 0;
    }
    size_t body = f->len - 8;
    if (f->hs < HDR || f->hs > body) return;
    for (int i = 0; i < 5; i++)
        if (f->rs[i] < (f->v2 ? v2_rec : v1_rec)[i]) return;
    size_t pos = f->hs;
    for (int s = 0; s < 5; s++) {
        uint64_t sz = sizes[s];
        f->sec[s] = a + pos;
        if (sz > body - pos) return;
        pos += (size_t)sz;
    }
    f->sec[S_END] = a + pos;
    if (pos != body) return;
    f->sane = 1;
    parse_records(m, k);
}

/* The footer at [at, at+len), parsed on first sight; -1 if it cannot be one. */
static int footer_at(model *m, uint64_t at, uint64_t len) {
    if (len < MIN_FOOTER || at < REGION || !in_image(m, at, len)) return -1;
    for (int k = 0; k < m->nft; k++)
        if (m->ft[k].at == at) return m->ft[k].len == len ? k : -1;
    if (m->nft == MAX_FOOTERS) return -1;
    int k = m->nft++;
    memset(&m->ft[k], 0, sizeof m->ft[k]);
    m->ft[k].at = (size_t)at;
    m->ft[k].len = (size_t)len;
    parse_footer(m, k);
    return k;
}

static void parse(model *m, uint8_t *img, size_t n) {
    m->img = img;
    m->n = n;
    m->nft = m->ntr = m->nfl = m->npr = m->nsg = m->nroots = m->nblk = 0;
    for (int s = 0; s < 2; s++) {
        size_t a = slot_at[s];
        m->slot[s] = n >= a + SLOT && memcmp(img + a, "AFMTSUPR", 8) == 0;
        if (!m->slot[s]) continue;
        /* §3.1; footer_checksum (56) and checksum (120) are resealed */
        add_field(m, a + 8, 4, K_VERSION, -1);
        add_field(m, a + 12, 4, K_FLAGS, -1);
        add_field(m, a + 16, 8, K_UUID, -1);
        add_field(m, a + 24, 8, K_UUID, -1);
        add_field(m, a + 32, 8, K_GEN, -1);
        add_field(m, a + 40, 8, K_OFFSET, -1);
        add_field(m, a + 48, 8, K_LENGTH, -1);
        add_pair(m, a + 40, a + 48);
        add_field(m, a + 64, 8, K_OFFSET, -1);
        add_field(m, a + 72, 8, K_COUNT, -1);
        add_field(m, a + 80, 8, K_LAYER, -1);
        add_field(m, a + 88, 8, K_ID, -1);
        for (size_t i = 96; i < 120; i += 8) add_field(m, a + i, 8, K_RESERVED, -1);
        footer_at(m, afmt__get_u64(img + a + 40), afmt__get_u64(img + a + 48));
    }
    /* Trailers anywhere past the superblock region (§4): they name footers that no slot
     * may name any more (after a rollback, or a mutated pointer). */
    for (size_t at = REGION + 24; at + 8 <= n;) {
        const uint8_t *q = memmem(img + at, n - at, "AFMTTRLR", 8);
        if (!q) break;
        size_t t = (size_t)(q - img) - 24;
        at = (size_t)(q - img) + 1;
        if (m->ntr == MAX_FOOTERS) break;
        m->tr[m->ntr++] = t;
        add_field(m, t, 8, K_OFFSET, -1);
        add_field(m, t + 8, 8, K_LENGTH, -1);
        add_pair(m, t, t + 8);
        uint64_t fo = afmt__get_u64(img + t), fl = afmt__get_u64(img + t + 8);
        if (fo <= t && fl == t - fo) footer_at(m, fo, fl);
    }
    /* Previous footers (§11), found as the list grows. */
    for (int k = 0; k < m->nft; k++) {
        const uint8_t *p = img + m->ft[k].at;
        footer_at(m, afmt__get_u64(p + 24), afmt__get_u64(p + 32));
    }
}

/* ---- checksums -------------------------------------------------------------------------- */

/* Whether [at, at+len) overlaps a footer of the model. */
static int over_footer(const model *m, size_t at, size_t len) {
    for (int k = 0; k < m->nft; k++)
        if (at < m->ft[k].at + m->ft[k].len && m->ft[k].at < at + len) return 1;
    return 0;
}

static void reseal(model *m) {
    uint8_t *img = m->img;
    /* Block checksums first (§8): the segment or footer that holds the record covers
     * them. In the reverse order of discovery, as the footers below. */
    for (int i = m->nblk - 1; i >= 0; i--) {
        size_t r = m->blk[i];
        uint64_t off = afmt__get_u64(img + r), len = afmt__get_u64(img + r + 8);
        if (in_image(m, off, len))
            afmt__put_u64(img + r + 24, afmt__checksum(img + off, (size_t)len));
    }
    /* Each segment's trailing checksum (§9.1): the last 8 of the bytes its root record
     * names, where those start with the segment magic (whatever the header says since a
     * mutation) and lie outside every footer; then each root record's checksum of the
     * bytes it names, whatever they are (§9.2). */
    for (int i = m->nsg - 1; i >= 0; i--) {
        const segment *g = &m->sg[i];
        if (g->len >= 16 && !memcmp(img + g->at, "AFMTSEGM", 8) && !over_footer(m, g->at, g->len))
            afmt__put_u64(img + g->at + g->len - 8, afmt__checksum(img + g->at, g->len - 8));
    }
    for (int i = m->nroots - 1; i >= 0; i--) {
        size_t r = m->roots[i];
        uint64_t off = afmt__get_u64(img + r), len = afmt__get_u64(img + r + 8);
        if (in_image(m, off, len))
            afmt__put_u64(img + r + 16, afmt__checksum(img + off, (size_t)len));
    }
    /* Footers in the reverse order of discovery: where a stray pointer made two of them
     * overlap, those the slots and trailers name are sealed last and come out whole. */
    /* Each footer's trailing checksum (§5.4). */
    for (int k = m->nft - 1; k >= 0; k--) {
        const footer *f = &m->ft[k];
        afmt__put_u64(img + f->at + f->len - 8, afmt__checksum(img + f->at, f->len - 8));
    }
    /* Trailers and slots: the footer checksum of what they point at (§4, §3.1). */
    for (int i = 0; i < m->ntr; i++) {
        uint64_t fo = afmt__get_u64(img + m->tr[i]), fl = afmt__get_u64(img + m->tr[i] + 8);
        if (fl && in_image(m, fo, fl))
            afmt__put_u64(img + m->tr[i] + 16, afmt__checksum(img + fo, (size_t)fl));
    }
    for (int s = 0; s < 2; s++) {
        if (!m->slot[s]) continue;
        uint8_t *p = img + slot_at[s];
        uint64_t fo = afmt__get_u64(p + 40), fl = afmt__get_u64(p + 48);
        if (fl && in_image(m, fo, fl)) afmt__put_u64(p + 56, afmt__checksum(img + fo, (size_t)fl));
        afmt__put_u64(p + 120, afmt__checksum(p, 120));
    }
}

void fz_reseal(uint8_t *img, size_t n) {
    parse(&M1, img, n);
    reseal(&M1);
}

int fz_footers(const uint8_t *img, size_t n) {
    parse(&M1, (uint8_t *)img, n);
    return M1.nft;
}

uint64_t fz_max_block_raw(const uint8_t *img, size_t n) {
    parse(&M1, (uint8_t *)img, n);
    uint64_t max = 0;
    for (int i = 0; i < M1.nfl; i++)
        if (M1.fl[i].kind == K_RAWSIZE) {
            uint64_t v = afmt__get_u64(img + M1.fl[i].pos);
            if (v > max) max = v;
        }
    return max;
}

const char *fz_last_op(void) {
    return last_op;
}

/* ---- splicing ----------------------------------------------------------------------------- */

/* Replaces bytes [at, at+old) of the image by nb[0, nn) (buffer capacity cap). Offsets past
 * the old range move with the bytes after it; a pair that named exactly the old range now
 * names the new one. Returns 0 if it does not fit. The model is stale afterwards. */
static int splice(model *m, size_t at, size_t old, const uint8_t *nb, size_t nn, size_t cap) {
    if (at > m->n || old > m->n - at || m->n - old > cap || nn > cap - (m->n - old)) return 0;
    size_t end = at + old;
    uint64_t delta = (uint64_t)nn - (uint64_t)old; /* modulo 2^64 */
    for (int i = 0; i < m->npr; i++) {
        const pair *p = &m->pr[i];
        int outside = (p->off_pos + 8 <= at || p->off_pos >= end) &&
                      (p->len_pos + 8 <= at || p->len_pos >= end);
        if (old && outside && afmt__get_u64(m->img + p->off_pos) == at &&
            afmt__get_u64(m->img + p->len_pos) == old)
            afmt__put_u64(m->img + p->len_pos, nn);
    }
    for (int i = 0; i < m->nfl; i++) {
        const field *f = &m->fl[i];
        if (f->kind != K_OFFSET || (f->pos + 8 > at && f->pos < end)) continue;
        uint64_t v = afmt__get_u64(m->img + f->pos);
        if (v >= end && v != 0) afmt__put_u64(m->img + f->pos, v + delta);
    }
    memmove(m->img + at + nn, m->img + end, m->n - end);
    memcpy(m->img + at, nb, nn);
    m->n = m->n - old + nn;
    return 1;
}

/* ---- field values ------------------------------------------------------------------------ */

static int newest_slot(const model *m) {
    if (!m->slot[0] && !m->slot[1]) return -1;
    if (!m->slot[1]) return 0;
    if (!m->slot[0]) return 1;
    return afmt__get_u64(m->img + 2048 + 32) > afmt__get_u64(m->img + 32) ? 1 : 0;
}

/* The value of a random field of this kind (dflt if none). */
static uint64_t same_kind(const model *m, int kind, uint64_t dflt) {
    if (!m->nfl) return dflt;
    int start = (int)below((uint64_t)m->nfl);
    for (int i = 0; i < m->nfl; i++) {
        const field *f = &m->fl[(start + i) % m->nfl];
        if (f->kind == kind) return getw(m->img + f->pos, f->width);
    }
    return dflt;
}

/* Values that matter for the field's meaning: the limits docs/format.md sets, values just
 * past them, and sizes and offsets of the file's own structures. */
static uint64_t special(const model *m, const field *fd, uint64_t cur) {
    const footer *f = fd->footer >= 0 ? &m->ft[fd->footer] : NULL;
    uint64_t heap = f && f->sane ? f->sec[S_END] - f->sec[S_HEAP] : 0;
    const footer *g = m->nft ? &m->ft[below((uint64_t)m->nft)] : NULL;
    uint64_t gat = g ? g->at : REGION, glen = g ? g->len : MIN_FOOTER, n = m->n;
    const segment *sg = m->nsg ? &m->sg[below((uint64_t)m->nsg)] : NULL; /* §9.1 */
    uint64_t sat = sg ? sg->at : gat, slen = sg ? sg->len : SEG_MIN;
    const uint8_t *p = m->img + fd->pos;
    switch (fd->kind) {
    case K_OFFSET:
        PICK(n, n - 1, n - TRAILER, REGION, REGION - 1, gat, gat + glen, gat + glen + TRAILER,
             gat - 1, cur + 8, cur - 8, sat, sat + slen, sat - 1);
    case K_LENGTH:
        PICK(0, 1, 8, MIN_FOOTER - 1, MIN_FOOTER, glen, glen + TRAILER, n, heap, cur + 8, cur - 8,
             cur * 2, slen, SEG_MIN - 1, SEG_MIN);
    case K_RAWSIZE:
        PICK(0, afmt__get_u64(p - 8), cur + 1, cur * 2, (uint64_t)1 << 31, (uint64_t)1 << 32,
             (uint64_t)1 << 40, UINT64_MAX);
    case K_COUNT:
        PICK(0, 1, 2, cur + 1, cur - 1, cur * 2, (uint64_t)1 << 32, UINT64_MAX / 40 + 1,
             (uint64_t)1 << 61);
    case K_ID:
    case K_SCOPE: {
        uint64_t next = f ? afmt__get_u64(m->img + f->at + 64) : same_kind(m, K_ID, 1);
        PICK(0, 1, next - 1, next, next + 1, UINT64_MAX, UINT64_MAX - 1, (uint64_t)1 << 32);
    }
    case K_LAYER:
        PICK(0, 1, cur + 1, cur - 1, g ? afmt__get_u64(m->img + g->at + 16) : 1, UINT64_MAX,
             UINT64_MAX - 1);
    case K_GEN:
        PICK(0, UINT64_MAX, UINT64_MAX - 1, cur + 2, same_kind(m, K_GEN, cur));
    case K_DTYPE:
        PICK(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x80000000u, UINT32_MAX);
    case K_KIND:
        PICK(0, 1, 2, 3);
    case K_FLAGS:
        PICK(0, 1, 2, 3, 0x80000000u);
    case K_CODEC:
        PICK(0, 1, 2, 3, 255, 256, 257, UINT32_MAX);
    case K_NDIM:
        PICK(0, 1, 2, 3, 31, 32, 33, cur + 1, cur - 1, UINT32_MAX);
    case K_SHAPE:
    case K_CHUNK:
        PICK(1, 2, 3, cur + 1, cur - 1, cur * 2, cur / 2 + 1, same_kind(m, K_SHAPE, 1),
             same_kind(m, K_CHUNK, 1), fd->kind == K_CHUNK ? afmt__get_u64(p - 8) : cur,
             (uint64_t)1 << 32, ((uint64_t)1 << 32) + 1, (uint64_t)1 << 62, (uint64_t)1 << 63,
             UINT64_MAX);
    case K_INDEX:
        PICK(0, 1, cur + 1, cur - 1, (uint64_t)1 << 32, UINT64_MAX);
    case K_BLOCKREF: {
        uint64_t nb = fd->seg >= 0 ? m->sg[fd->seg].nb : f ? f->cnt[1] : 0;
        PICK(0, nb - 1, nb, nb + 1, UINT64_MAX);
    }
    case K_HEAPOFF:
        PICK(0, heap, heap - 1, cur + 1, same_kind(m, K_HEAPOFF, 0));
    case K_STRLEN:
        PICK(0, 1, 63, 64, 255, 256, heap, cur + 1, cur - 1);
    case K_VERSION:
        PICK(0, 1, 2, UINT32_MAX);
    case K_RECSIZE: {
        uint64_t v1 = HDR;
        if (fd->seg >= 0)
            v1 = fd->pos == m->sg[fd->seg].at + 12 ? SEG_HDR : 40;
        else if (f && fd->pos >= f->at + 144)
            v1 = (f->v2 ? v2_rec : v1_rec)[(fd->pos - f->at - 144) / 4];
        PICK(v1, v1 - 1, v1 + 8, v1 * 2, 0, UINT32_MAX, cur + 1);
    }
    case K_RANKS:
        PICK(0, 1, 2, cur + 1, UINT32_MAX);
    case K_TIME:
        PICK(0, UINT64_MAX, (uint64_t)1 << 63);
    case K_FILL:
        PICK(0x7ff8000000000000ULL, 0x7fc00000, 0x7ff0000000000000ULL, 0xfff0000000000000ULL,
             0x8000000000000000ULL, 0x80000000, 0x8000, 0x80, 1, 2, 0xff, 0x100, UINT64_MAX);
    case K_UUID:
        PICK(0, same_kind(m, K_UUID, 0));
    default:
        PICK(1, 0x80, UINT64_MAX);
    }
}

static uint64_t value_for(const model *m, const field *fd) {
    uint64_t cur = getw(m->img + fd->pos, fd->width), v;
    switch (below(12)) {
    case 0:
        v = 0;
        break;
    case 1:
        v = 1;
        break;
    case 2:
        v = cur + 1;
        break;
    case 3:
        v = cur - 1;
        break;
    case 4:
        v = UINT64_MAX;
        break;
    case 5:
        v = (uint64_t)1 << (fd->width * 8 - 1);
        break;
    case 6: /* a value of the same kind elsewhere, or next to it */
        v = same_kind(m, fd->kind, cur) + below(3) - 1;
        break;
    case 7: { /* a value of any field */
        const field *o = &m->fl[below((uint64_t)m->nfl)];
        v = getw(m->img + o->pos, o->width);
        break;
    }
    case 8:
        v = cur ^ ((uint64_t)1 << below((uint64_t)fd->width * 8));
        break;
    default:
        v = special(m, fd, cur);
    }
    return fd->width == 4 ? (v & 0xffffffffu) : v;
}

static int op_field(model *m) {
    if (!m->nfl) return 0;
    const field *fd = &m->fl[below((uint64_t)m->nfl)];
    putw(m->img + fd->pos, fd->width, value_for(m, fd));
    last_op = "field";
    return 1;
}

/* ---- rebuilding a footer ------------------------------------------------------------------ */

typedef struct {
    const uint8_t *p;
    size_t n;
} piece;

/* The footer being rebuilt: its records as pieces (of the image or of the arena), the bytes
 * after the last record of each table, the heap and bytes appended to it. */
static piece recs[4][MAX_RECS];
static int nrecs[4];
static piece tails[4], heap_old;
static uint8_t heap_add[8192];
static size_t heap_add_n;
static uint8_t arena[16384];
static size_t arena_n;
static uint8_t *scratch;
static size_t scratch_cap;

static int ensure_scratch(size_t n) {
    if (n <= scratch_cap) return 1;
    uint8_t *p = realloc(scratch, n);
    if (!p) return 0;
    scratch = p;
    scratch_cap = n;
    return 1;
}

static void load_layout(const model *m, const footer *f) {
    static size_t st[MAX_RECS], ln[MAX_RECS];
    for (int s = 0; s < 4; s++) {
        nrecs[s] = records(m, f, s, st, ln, MAX_RECS);
        for (int i = 0; i < nrecs[s]; i++) recs[s][i] = (piece){m->img + st[i], ln[i]};
        size_t e = nrecs[s] ? st[nrecs[s] - 1] + ln[nrecs[s] - 1] : f->sec[s];
        tails[s] = (piece){m->img + e, f->sec[s + 1] - e};
    }
    heap_old = (piece){m->img + f->sec[S_HEAP], f->sec[S_END] - f->sec[S_HEAP]};
    heap_add_n = 0;
    arena_n = 0;
}

static uint8_t *arena_get(size_t n) {
    if (n > sizeof arena - arena_n) return NULL;
    uint8_t *p = arena + arena_n;
    arena_n += n;
    return p;
}

/* Appends bytes to the heap; returns their heap offset in the rebuilt footer, or
 * UINT64_MAX if there is no room. */
static uint64_t heap_append(const uint8_t *b, size_t n) {
    if (n > sizeof heap_add - heap_add_n) return UINT64_MAX;
    memcpy(heap_add + heap_add_n, b, n);
    heap_add_n += n;
    return heap_old.n + heap_add_n - n;
}

/* Header positions of each table's record count and byte size (§5.1); 0: none. */
static const size_t cnt_at[2][4] = {{72, 80, 88, 96}, {72, 120, 0, 96}};
static const size_t size_at[2][4] = {{104, 112, 120, 128}, {104, 112, 0, 128}};

/* v2: the header's n_blocks and n_chunks as the sums over root records r[0, n) (§5.1). */
static void root_sums(uint8_t *hdr, const piece *r, int n) {
    uint64_t nb = 0, nc = 0;
    for (int i = 0; i < n; i++)
        if (r[i].n >= 40) {
            nb += afmt__get_u64(r[i].p + 24);
            nc += afmt__get_u64(r[i].p + 32);
        }
    afmt__put_u64(hdr + 80, nb);
    afmt__put_u64(hdr + 88, nc);
}

/* Writes the footer of f with the current layout into scratch; returns its length (0 if
 * it does not fit cap). The counts and section sizes of the header follow the layout (v2:
 * the sums over the root records too, 3 times in 4); the checksum is left to reseal(). */
static size_t compose(const model *m, const footer *f, size_t cap) {
    size_t len = f->hs + heap_old.n + heap_add_n + 8;
    for (int s = 0; s < 4; s++) {
        for (int i = 0; i < nrecs[s]; i++) len += recs[s][i].n;
        len += tails[s].n;
    }
    if (len > cap || !ensure_scratch(len)) return 0;
    uint8_t *o = scratch;
    memcpy(o, m->img + f->at, f->hs);
    size_t pos = f->hs;
    for (int s = 0; s < 4; s++) {
        size_t start = pos;
        for (int i = 0; i < nrecs[s]; i++) {
            memcpy(o + pos, recs[s][i].p, recs[s][i].n);
            pos += recs[s][i].n;
        }
        memcpy(o + pos, tails[s].p, tails[s].n);
        pos += tails[s].n;
        if (!cnt_at[f->v2][s]) continue;
        afmt__put_u64(o + cnt_at[f->v2][s], (uint64_t)nrecs[s]);
        afmt__put_u64(o + size_at[f->v2][s], pos - start);
    }
    if (f->v2 && below(4)) root_sums(o, recs[S_BLOCKS], nrecs[S_BLOCKS]);
    memcpy(o + pos, heap_old.p, heap_old.n);
    memcpy(o + pos + heap_old.n, heap_add, heap_add_n);
    afmt__put_u64(o + 136, heap_old.n + heap_add_n);
    memset(o + len - 8, 0, 8);
    return len;
}

static int rebuild(model *m, const footer *f, size_t cap) {
    size_t at = f->at, old = f->len;
    size_t len = compose(m, f, cap);
    return len && splice(m, at, old, scratch, len, cap);
}

static void insert_piece(int s, int at, piece p) {
    if (nrecs[s] == MAX_RECS) return;
    memmove(&recs[s][at + 1], &recs[s][at], sizeof(piece) * (size_t)(nrecs[s] - at));
    recs[s][at] = p;
    nrecs[s]++;
}

/* Where a record p goes among n records r[] sorted by the key (array_id, chunk_index) at
 * offset key of each: after the records of smaller keys. */
static int sorted_pos(const piece *r, int n, const piece *p, size_t key) {
    uint64_t a = afmt__get_u64(p->p + key), c = afmt__get_u64(p->p + key + 8);
    int i = 0;
    while (i < n) {
        uint64_t b = afmt__get_u64(r[i].p + key), d = afmt__get_u64(r[i].p + key + 8);
        if (b > a || (b == a && d >= c)) break;
        i++;
    }
    return i;
}

/* Chunk records sort by (array_id, chunk_index) (§9.5), root records by their first key
 * (§9.2): inserts keep the order 3 times in 4. */
static int insert_pos(const footer *f, int s, const piece *p) {
    int keyed = s == S_CHUNKS || (f->v2 && s == S_BLOCKS);
    if (!keyed || below(4) == 0) return (int)below((uint64_t)nrecs[s] + 1);
    return sorted_pos(recs[s], nrecs[s], p, s == S_CHUNKS ? 0 : 40);
}

static int pick_sane(const model *m) {
    if (!m->nft) return -1;
    int start = (int)below((uint64_t)m->nft);
    for (int i = 0; i < m->nft; i++)
        if (m->ft[(start + i) % m->nft].sane) return (start + i) % m->nft;
    return -1;
}

/* Copies the heap bytes [off, off+len) of footer sf (of model sm) to the heap being built;
 * returns the new offset, or the old one if they are not inside sf's heap. */
static uint64_t carry_string(const model *sm, const footer *sf, uint64_t off, uint64_t len) {
    uint64_t hsz = sf->sec[S_END] - sf->sec[S_HEAP];
    if (off > hsz || len > hsz - off || len > 4096) return off;
    uint64_t o = heap_append(sm->img + sf->sec[S_HEAP] + off, (size_t)len);
    return o == UINT64_MAX ? off : o;
}

/* A copy of record r of table s of footer j of sm, for the footer being rebuilt (record
 * sizes rs), its strings and values carried into the new heap. NULL if it cannot be. */
static piece *transplant(const model *sm, int j, int s, const uint32_t *rs, piece *out) {
    static size_t st[MAX_RECS], ln[MAX_RECS];
    const footer *sf = &sm->ft[j];
    int n = records(sm, sf, s, st, ln, MAX_RECS);
    if (!n || memcmp(sf->rs, rs, sizeof sf->rs) != 0) return NULL;
    int r = (int)below((uint64_t)n);
    uint8_t *q = arena_get(ln[r]);
    if (!q) return NULL;
    memcpy(q, sm->img + st[r], ln[r]);
    if (s == S_ARRAYS) {
        afmt__put_u64(q + 24, carry_string(sm, sf, afmt__get_u64(q + 24), afmt__get_u64(q + 32)));
        for (size_t d = rs[0]; d + rs[1] <= ln[r]; d += rs[1])
            afmt__put_u64(q + d + 16, carry_string(sm, sf, afmt__get_u64(q + d + 16),
                                                   afmt__get_u64(q + d + 24)));
    } else if (s == S_ATTRS) {
        afmt__put_u64(q + 8, carry_string(sm, sf, afmt__get_u64(q + 8), afmt__get_u64(q + 16)));
        afmt__put_u64(q + 40, carry_string(sm, sf, afmt__get_u64(q + 40), afmt__get_u64(q + 48)));
    }
    *out = (piece){q, ln[r]};
    return out;
}

/* A new record made from record r of table s: a DELETE of an array (§6), a chunk record
 * for another index (§9), an attribute in another scope (§10), a second block record. */
static int synthesize(const footer *f, int s, int r, piece *out) {
    const piece *src = &recs[s][r];
    size_t n = s == S_ARRAYS ? f->rs[0] : src->n;
    uint8_t *q = arena_get(n);
    if (!q) return 0;
    memcpy(q, src->p, n);
    switch (s) {
    case S_ARRAYS: /* DELETE: ndim, dtype, flags and fill 0 */
        afmt__put_u32(q + 8, 2);
        memset(q + 12, 0, 12);
        memset(q + 40, 0, 8);
        break;
    case S_CHUNKS: {
        uint64_t c = afmt__get_u64(q + 8);
        uint64_t v[] = {c + 1, c - 1, 0, c * 2 + 1, below(64)};
        afmt__put_u64(q + 8, v[below(5)]);
        break;
    }
    case S_BLOCKS: /* v2: a root record of another writer (v1: a second block record) */
        if (f->v2) afmt__put_u32(q + 72, afmt__get_u32(q + 72) + 1 + (uint32_t)below(3));
        break;
    case S_ATTRS: {
        uint64_t other =
            nrecs[S_ARRAYS] ? afmt__get_u64(recs[S_ARRAYS][below((uint64_t)nrecs[S_ARRAYS])].p) : 1;
        uint64_t v[] = {0, UINT64_MAX, other, afmt__get_u64(q) + 1};
        afmt__put_u64(q, v[below(4)]);
        break;
    }
    default:
        break;
    }
    *out = (piece){q, n};
    return 1;
}

/* Duplicates, removes, swaps, transplants (from sm: this file or another) or synthesizes
 * a record of one table of one footer. */
static int op_record(model *m, size_t cap, const model *sm, int only_transplant) {
    int k = pick_sane(m);
    if (k < 0) return 0;
    footer f = m->ft[k];
    load_layout(m, &f);
    int s = (int)below(4);
    if (f.v2 && s == S_CHUNKS) s = S_BLOCKS; /* v2: the root table; no chunk table */
    int n = nrecs[s];
    int act = only_transplant ? 3 : (int)below(6);
    piece p;
    switch (act) {
    case 0:
        if (!n) return 0;
        p = recs[s][below((uint64_t)n)];
        insert_piece(s, insert_pos(&f, s, &p), p);
        last_op = "record-dup";
        break;
    case 1:
        if (!n) return 0;
        {
            int r = (int)below((uint64_t)n);
            memmove(&recs[s][r], &recs[s][r + 1], sizeof(piece) * (size_t)(n - r - 1));
            nrecs[s]--;
        }
        last_op = "record-remove";
        break;
    case 2:
        if (n < 2) return 0;
        {
            int a = (int)below((uint64_t)n), b = (int)below((uint64_t)n);
            p = recs[s][a];
            recs[s][a] = recs[s][b];
            recs[s][b] = p;
        }
        last_op = "record-swap";
        break;
    case 3: {
        int j = pick_sane(sm);
        if (j < 0 || !transplant(sm, j, s, f.rs, &p)) return 0;
        insert_piece(s, insert_pos(&f, s, &p), p);
        last_op = sm == m ? "record-copy" : "record-transplant";
        break;
    }
    default:
        if (!n || !synthesize(&f, s, (int)below((uint64_t)n), &p)) return 0;
        insert_piece(s, insert_pos(&f, s, &p), p);
        last_op = "record-new";
    }
    return rebuild(m, &f, cap);
}

/* Adds a dimension (mostly of extent 1, which keeps every chunk's size and index) to an
 * array record, or removes one (§6). */
static int op_dims(model *m, size_t cap) {
    int k = pick_sane(m);
    if (k < 0) return 0;
    footer f = m->ft[k];
    load_layout(m, &f);
    if (!nrecs[S_ARRAYS]) return 0;
    int r = (int)below((uint64_t)nrecs[S_ARRAYS]);
    const piece *src = &recs[S_ARRAYS][r];
    uint32_t nd = afmt__get_u32(src->p + 20), fix = f.rs[0], dim = f.rs[1];
    int add = nd == 0 || (nd < 40 && below(2));
    uint8_t *q = arena_get(src->n + dim);
    if (!q) return 0;
    uint32_t d = (uint32_t)below((uint64_t)nd + (add ? 1 : 0));
    size_t cut = fix + (size_t)d * dim;
    memcpy(q, src->p, cut);
    size_t len;
    if (add) {
        uint8_t *e = q + cut;
        if (nd) {
            memcpy(e, src->p + fix + below(nd) * dim, dim);
        } else {
            memset(e, 0, dim);
            afmt__put_u64(e + 16, afmt__get_u64(src->p + 24)); /* the array's name */
            uint64_t nl = afmt__get_u64(src->p + 32);
            afmt__put_u64(e + 24, nl > 63 ? 63 : nl);
        }
        if (below(4)) {
            afmt__put_u64(e, 1);
            afmt__put_u64(e + 8, 1);
        }
        memcpy(e + dim, src->p + cut, src->n - cut);
        len = src->n + dim;
        nd++;
    } else {
        memcpy(q + cut, src->p + cut + dim, src->n - cut - dim);
        len = src->n - dim;
        nd--;
    }
    afmt__put_u32(q + 20, nd);
    recs[S_ARRAYS][r] = (piece){q, len};
    last_op = add ? "dim-add" : "dim-remove";
    return rebuild(m, &f, cap);
}

/* Edits a string (array name, dimension name, attribute key or value): a byte, another
 * string's reference, or a new string appended to the heap (§5.3). */
static int op_string(model *m, size_t cap) {
    if (!m->nfl) return 0;
    int start = (int)below((uint64_t)m->nfl), i;
    const field *fd = NULL;
    for (i = 0; i < m->nfl; i++) {
        fd = &m->fl[(start + i) % m->nfl];
        if (fd->kind == K_HEAPOFF && fd->footer >= 0 && m->ft[fd->footer].sane) break;
    }
    if (i == m->nfl) return 0;
    footer f = m->ft[fd->footer];
    size_t pos = fd->pos;
    uint64_t off = afmt__get_u64(m->img + pos), len = afmt__get_u64(m->img + pos + 8);
    uint64_t hsz = f.sec[S_END] - f.sec[S_HEAP];
    switch (below(3)) {
    case 0: { /* one byte of it */
        if (off >= hsz || len == 0) return 0;
        uint64_t span = len < hsz - off ? len : hsz - off;
        static const uint8_t b[] = {0, 0xff, 0x1b, '/', '"', '\\', '\n', 0xc3, '.', ' ', 'A', '%'};
        m->img[f.sec[S_HEAP] + off + below(span)] = b[below(sizeof b)];
        last_op = "string-byte";
        return 1;
    }
    case 1: { /* the reference of another string of the same footer */
        int s2 = (int)below((uint64_t)m->nfl);
        for (int j = 0; j < m->nfl; j++) {
            const field *o = &m->fl[(s2 + j) % m->nfl];
            if (o->kind == K_HEAPOFF && o->footer == fd->footer && o->pos != pos) {
                memmove(m->img + pos, m->img + o->pos, 16);
                last_op = "string-alias";
                return 1;
            }
        }
        return 0;
    }
    default: { /* a new string */
        load_layout(m, &f);
        uint8_t s[300];
        size_t n = 0;
        switch (below(5)) {
        case 0: /* another string plus one byte */
            if (off <= hsz && len <= hsz - off && len < sizeof s - 1) {
                memcpy(s, m->img + f.sec[S_HEAP] + off, (size_t)len);
                n = (size_t)len;
            }
            s[n++] = (uint8_t)(below(2) ? 'x' : rnd());
            break;
        case 1: { /* at and just past the limits: 63/64 (dimension names), 255/256 */
            static const size_t lim[] = {63, 64, 255, 256};
            n = lim[below(4)];
            memset(s, 'n', n);
            break;
        }
        case 2: /* not UTF-8 */
            n = 3;
            memcpy(s, "\xff\xfe\x80", 3);
            break;
        case 3: /* a terminal escape */
            n = 6;
            memcpy(s, "\x1b[2Ja", 6);
            break;
        default: /* empty */
            n = 0;
        }
        uint64_t o = heap_append(s, n);
        if (o == UINT64_MAX) return 0;
        size_t flen = compose(m, &f, cap);
        if (!flen) return 0;
        afmt__put_u64(scratch + (pos - f.at), o);
        afmt__put_u64(scratch + (pos - f.at) + 8, n);
        last_op = "string-new";
        return splice(m, f.at, f.len, scratch, flen, cap);
    }
    }
}

/* ---- blocks ------------------------------------------------------------------------------- */

/* Edits a block's stored bytes, or its raw bytes (decompressed, edited, compressed again
 * with a codec of §8), then fits the file around its new size. */
static int op_block(model *m, size_t cap) {
    if (!m->nblk) return 0; /* block records of v1 footers and of v2 segments */
    size_t rp = m->blk[below((uint64_t)m->nblk)];
    uint64_t off = afmt__get_u64(m->img + rp), sz = afmt__get_u64(m->img + rp + 8);
    uint64_t raw = afmt__get_u64(m->img + rp + 16);
    uint32_t codec = afmt__get_u32(m->img + rp + 32);
    if (off < REGION || !in_image(m, off, sz) || (rp + 40 > off && rp < off + sz)) return 0;
    if (below(2) || (codec != 0 && !afmt__codec_known(codec)) || raw == 0 || raw > (1u << 20)) {
        /* stored bytes: the decompressors and the checksum-after-edit path */
        if (!ensure_scratch((size_t)sz + 256)) return 0;
        memcpy(scratch, m->img + off, (size_t)sz);
        size_t nn = byte_mutate(scratch, (size_t)sz, (size_t)sz + 256);
        if (codec == 0) afmt__put_u64(m->img + rp + 16, nn);
        last_op = "block-stored";
        return splice(m, (size_t)off, (size_t)sz, scratch, nn, cap);
    }
    uint8_t *r = malloc((size_t)raw);
    if (!r) return 0;
    if (afmt__codec_decompress(codec, m->img + off, (size_t)sz, r, (size_t)raw) != AFMT_OK) {
        free(r);
        return 0;
    }
    if (below(2)) {
        byte_mutate(r, (size_t)raw, (size_t)raw);
    } else { /* values that tell: NaN, infinities, sign bits, BOOL 2 */
        static const uint64_t v[] = {0x7ff8000000000000ULL,
                                     0x7ff0000000000000ULL,
                                     0xfff0000000000000ULL,
                                     0x8000000000000000ULL,
                                     0x7fc00000,
                                     0x7f800000,
                                     2,
                                     UINT64_MAX};
        for (uint64_t t = 1 + below(4); t > 0; t--) {
            size_t w = below(2) ? 8 : 4;
            if (raw < w) break;
            size_t at = (size_t)below(raw / w) * w;
            uint8_t b[8];
            afmt__put_u64(b, v[below(8)]);
            memcpy(r + at, b, w);
        }
    }
    static const uint32_t codecs[] = {0, 1, 2};
    uint32_t c = below(2) ? codec : codecs[below(3)];
    size_t bound = c ? afmt__codec_bound(c, (size_t)raw) : (size_t)raw, nn = (size_t)raw;
    const uint8_t *out = r;
    if (c && bound && ensure_scratch(bound) &&
        afmt__codec_compress(c, 0, r, (size_t)raw, scratch, bound, &nn) == AFMT_OK) {
        out = scratch;
    } else {
        c = 0;
        nn = (size_t)raw;
    }
    afmt__put_u32(m->img + rp + 32, c);
    last_op = "block-raw";
    int ok = splice(m, (size_t)off, (size_t)sz, out, nn, cap);
    free(r);
    return ok;
}

/* ---- segments ----------------------------------------------------------------------------- */

/* Makes the root record at r agree with the segment bytes q[0, len) laid out with header
 * and record sizes hs, bs, cs (§9.2: its counts, its first and last chunk key), and the
 * sums in the header of the footer at fat with the new counts (§5.1). */
static void sync_root(model *m, size_t r, size_t fat, const uint8_t *q, size_t len, uint32_t hs,
                      uint32_t bs, uint32_t cs) {
    uint8_t *R = m->img + r, *H = m->img + fat;
    uint64_t nb = afmt__get_u64(q + 24), nc = afmt__get_u64(q + 32);
    afmt__put_u64(H + 80, afmt__get_u64(H + 80) - afmt__get_u64(R + 24) + nb);
    afmt__put_u64(H + 88, afmt__get_u64(H + 88) - afmt__get_u64(R + 32) + nc);
    afmt__put_u64(R + 24, nb);
    afmt__put_u64(R + 32, nc);
    if (nc == 0 || nb > len || nc > len || hs + nb * bs + nc * cs > len) return;
    const uint8_t *c0 = q + hs + nb * bs, *cl = c0 + (nc - 1) * cs;
    memmove(R + 40, c0, 16);
    memmove(R + 56, cl, 16);
}

/* A sane segment of the model (-1 if none). */
static int pick_segment(const model *m) {
    if (!m->nsg) return -1;
    int start = (int)below((uint64_t)m->nsg);
    for (int i = 0; i < m->nsg; i++)
        if (m->sg[(start + i) % m->nsg].sane) return (start + i) % m->nsg;
    return -1;
}

/* Edits one index segment (§9.1): a field of it, or its block or chunk records
 * duplicated, removed, swapped, synthesized (another chunk index) or copied from another
 * segment (of this file or, in a crossover, of sm); then, 3 times in 4 each, its header's
 * counts follow the records and its root record (counts, first and last key) and the
 * footer's sums follow the segment, so that the checks after the checksums (X4-X9) and
 * the merge of its records (M7-M9) decide. */
static int op_segment(model *m, size_t cap, const model *sm) {
    int gi = pick_segment(m);
    if (gi < 0) return 0;
    const segment g = m->sg[gi];
    size_t fat = m->ft[g.footer].at;
    if (sm == m && below(4) == 0) { /* a field of the segment, in place */
        int start = (int)below((uint64_t)m->nfl), i;
        for (i = 0; i < m->nfl; i++)
            if (m->fl[(start + i) % m->nfl].seg == gi) break;
        if (i == m->nfl) return 0;
        const field *fd = &m->fl[(start + i) % m->nfl];
        putw(m->img + fd->pos, fd->width, value_for(m, fd));
        if (below(4)) sync_root(m, g.root, fat, m->img + g.at, g.len, g.hs, g.bs, g.cs);
        last_op = "segment-field";
        return 1;
    }
    static piece r[2][MAX_RECS];
    int n[2] = {(int)(g.nb < MAX_RECS ? g.nb : MAX_RECS), (int)(g.nc < MAX_RECS ? g.nc : MAX_RECS)};
    if ((uint64_t)n[0] != g.nb || (uint64_t)n[1] != g.nc) return 0;
    const uint32_t rs[2] = {g.bs, g.cs};
    for (int i = 0; i < n[0]; i++) r[0][i] = (piece){m->img + g.at + g.hs + (size_t)i * g.bs, g.bs};
    for (int i = 0; i < n[1]; i++)
        r[1][i] = (piece){m->img + g.at + g.hs + g.nb * g.bs + (size_t)i * g.cs, g.cs};
    int t = below(3) ? 1 : 0; /* chunk records twice as often as block records */
    arena_n = 0;
    piece p = {NULL, 0};
    switch (sm == m ? below(5) : 4) {
    case 0:
        if (!n[t]) return 0;
        p = r[t][below((uint64_t)n[t])];
        last_op = "segment-dup";
        break;
    case 1:
        if (!n[t]) return 0;
        {
            int i = (int)below((uint64_t)n[t]);
            memmove(&r[t][i], &r[t][i + 1], sizeof(piece) * (size_t)(n[t] - i - 1));
            n[t]--;
        }
        last_op = "segment-remove";
        break;
    case 2:
        if (n[t] < 2) return 0;
        {
            int a = (int)below((uint64_t)n[t]), b = (int)below((uint64_t)n[t]);
            piece x = r[t][a];
            r[t][a] = r[t][b];
            r[t][b] = x;
        }
        last_op = "segment-swap";
        break;
    case 3: { /* a chunk record for another index of the same array */
        if (!n[1]) return 0;
        uint8_t *q = arena_get(g.cs);
        if (!q) return 0;
        memcpy(q, r[1][below((uint64_t)n[1])].p, g.cs);
        uint64_t c = afmt__get_u64(q + 8);
        uint64_t v[] = {c + 1, c - 1, 0, c * 2 + 1, below(64)};
        afmt__put_u64(q + 8, v[below(5)]);
        t = 1;
        p = (piece){q, g.cs};
        last_op = "segment-new";
        break;
    }
    default: { /* a record of another segment with the same record size */
        int start = (int)below((uint64_t)sm->nsg + 1);
        const segment *o = NULL;
        for (int j = 0; j < sm->nsg && !o; j++) {
            const segment *c = &sm->sg[(start + j) % sm->nsg];
            if (c->sane && (t ? c->nc : c->nb) && (t ? c->cs : c->bs) == rs[t]) o = c;
        }
        if (!o) return 0;
        uint64_t k = below(t ? o->nc : o->nb);
        size_t at = o->at + o->hs + (t ? o->nb * o->bs + k * o->cs : k * o->bs);
        uint8_t *q = arena_get(rs[t]);
        if (!q) return 0;
        memcpy(q, sm->img + at, rs[t]);
        p = (piece){q, rs[t]};
        last_op = sm == m ? "segment-copy" : "segment-transplant";
    }
    }
    if (p.p) { /* insert p: chunk records in key order 3 times in 4 */
        if (n[t] == MAX_RECS) return 0;
        int i = t == 1 && below(4) ? sorted_pos(r[1], n[1], &p, 0) : (int)below((uint64_t)n[t] + 1);
        memmove(&r[t][i + 1], &r[t][i], sizeof(piece) * (size_t)(n[t] - i));
        r[t][i] = p;
        n[t]++;
    }
    size_t len = g.hs + (size_t)n[0] * g.bs + (size_t)n[1] * g.cs + 8;
    if (len > cap || !ensure_scratch(len)) return 0;
    memcpy(scratch, m->img + g.at, g.hs);
    size_t pos = g.hs;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < n[k]; i++) {
            memcpy(scratch + pos, r[k][i].p, r[k][i].n);
            pos += r[k][i].n;
        }
    memset(scratch + pos, 0, 8);
    if (below(4)) {
        afmt__put_u64(scratch + 24, (uint64_t)n[0]);
        afmt__put_u64(scratch + 32, (uint64_t)n[1]);
        if (below(4)) sync_root(m, g.root, fat, scratch, len, g.hs, g.bs, g.cs);
    }
    return splice(m, g.at, g.len, scratch, len, cap);
}

/* ---- the chain ---------------------------------------------------------------------------- */

/* Makes slot s agree with the chain it names (§3.1, §11): nlayers, layer_id,
 * next_array_id and an eof that covers the footer and its trailer. */
static void sync_slot(model *m, int s) {
    uint8_t *p = m->img + slot_at[s];
    uint64_t at = afmt__get_u64(p + 40), len = afmt__get_u64(p + 48), count = 0;
    int first = -1;
    for (int guard = 0; len && guard < MAX_FOOTERS; guard++) {
        int k = -1;
        for (int i = 0; i < m->nft; i++)
            if (m->ft[i].at == at && m->ft[i].len == len) k = i;
        if (k < 0) break;
        if (first < 0) first = k;
        count++;
        const uint8_t *q = m->img + at;
        if (afmt__get_u32(q + 60) & 1) break; /* BASE (§14) */
        at = afmt__get_u64(q + 24);
        len = afmt__get_u64(q + 32);
    }
    afmt__put_u64(p + 72, count);
    if (first < 0) return;
    const uint8_t *q = m->img + m->ft[first].at;
    uint64_t id = afmt__get_u64(q + 16);
    if (afmt__get_u64(p + 80) < id || below(2)) afmt__put_u64(p + 80, id);
    afmt__put_u64(p + 88, afmt__get_u64(q + 64));
    uint64_t end = m->ft[first].at + m->ft[first].len + TRAILER;
    if (afmt__get_u64(p + 64) < end) afmt__put_u64(p + 64, end);
}

/* The segment of the model that the root record at r names, or NULL. */
static const segment *segment_of(const model *m, size_t r) {
    uint64_t at = afmt__get_u64(m->img + r), len = afmt__get_u64(m->img + r + 8);
    for (int i = 0; i < m->nsg; i++)
        if (m->sg[i].at == at && m->sg[i].len == len) return &m->sg[i];
    return NULL;
}

/* Copies the stored bytes of the block records at rec, rec + stride, ... (n of them) to
 * the end of the image at *pos, and sets the records' offsets in the copy at out (which
 * has the same layout) to the new places. Blocks not inside the image keep their offset. */
static void copy_blocks(model *m, const uint8_t *rec, uint8_t *out, uint64_t n, size_t stride,
                        size_t *pos) {
    for (uint64_t i = 0; i < n; i++) {
        uint64_t o = afmt__get_u64(rec + i * stride), l = afmt__get_u64(rec + i * stride + 8);
        if (!in_image(m, o, l)) continue;
        memmove(m->img + *pos, m->img + o, (size_t)l);
        afmt__put_u64(out + i * stride, *pos);
        *pos += (size_t)l;
    }
}

/* The bytes of the blocks of n records at rec (stride) that lie in the image. */
static size_t blocks_bytes(const model *m, const uint8_t *rec, uint64_t n, size_t stride) {
    size_t t = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t o = afmt__get_u64(rec + i * stride), l = afmt__get_u64(rec + i * stride + 8);
        if (in_image(m, o, l)) t += (size_t)l;
    }
    return t;
}

/* Appends a new layer made from a footer of the file, as a commit writes it (§13): its
 * blocks (v1), or for each root record the blocks of its segment and then the segment,
 * of the new layer id (v2), copied after the current end, then the footer with its
 * pointers set, its trailer; and points the next slot at it. */
static int op_new_layer(model *m, size_t cap) {
    int s = newest_slot(m), k = pick_sane(m);
    if (s < 0 || k < 0 || m->n < REGION) return 0;
    footer f = m->ft[k];
    const uint8_t *sp = m->img + slot_at[s];
    uint64_t top_at = afmt__get_u64(sp + 40), top_len = afmt__get_u64(sp + 48);
    uint64_t id = afmt__get_u64(sp + 80), top_id = 0;
    if (top_len && in_image(m, top_at, 24)) top_id = afmt__get_u64(m->img + top_at + 16);
    id = (id > top_id ? id : top_id) + 1;
    static size_t st[MAX_RECS];
    static uint64_t newoff[MAX_RECS];
    int nr = records(m, &f, S_BLOCKS, st, NULL, MAX_RECS); /* v1 blocks, v2 root records */
    size_t need = f.len + TRAILER, base = m->n, pos = base;
    for (int i = 0; i < nr; i++) {
        const segment *g = f.v2 ? segment_of(m, st[i]) : NULL;
        if (!f.v2)
            need += blocks_bytes(m, m->img + st[i], 1, 40);
        else if (g)
            need += g->len + (g->sane ? blocks_bytes(m, m->img + g->at + g->hs, g->nb, g->bs) : 0);
    }
    if (need > cap - m->n) return 0;
    for (int i = 0; i < nr; i++) {
        newoff[i] = afmt__get_u64(m->img + st[i]);
        if (!f.v2) {
            uint8_t rec[16];
            memcpy(rec, m->img + st[i], 16);
            copy_blocks(m, m->img + st[i], rec, 1, 40, &pos);
            newoff[i] = afmt__get_u64(rec);
            continue;
        }
        const segment *g = segment_of(m, st[i]);
        if (!g) continue;
        size_t blocks_at = pos;
        if (g->sane) pos += blocks_bytes(m, m->img + g->at + g->hs, g->nb, g->bs);
        uint8_t *S = m->img + pos; /* the copy of the segment, after its blocks */
        memmove(S, m->img + g->at, g->len);
        size_t bp = blocks_at;
        if (g->sane) copy_blocks(m, m->img + g->at + g->hs, S + g->hs, g->nb, g->bs, &bp);
        afmt__put_u64(S + 16, id);
        newoff[i] = pos;
        pos += g->len;
    }
    uint8_t *F = m->img + pos;
    memmove(F, m->img + f.at, f.len);
    for (int i = 0; i < nr; i++) afmt__put_u64(F + (st[i] - f.at), newoff[i]);
    afmt__put_u64(F + 16, id);
    afmt__put_u64(F + 24, top_len ? top_at : 0);
    afmt__put_u64(F + 32, top_len);
    afmt__put_u64(F + 40, base);
    if (below(4)) afmt__put_u32(F + 60, afmt__get_u32(F + 60) & ~1u);
    uint64_t next = afmt__get_u64(sp + 88);
    if (afmt__get_u64(F + 64) < next) afmt__put_u64(F + 64, next);
    uint8_t *T = F + f.len;
    afmt__put_u64(T, pos);
    afmt__put_u64(T + 8, f.len);
    afmt__put_u64(T + 16, 0);
    memcpy(T + 24, "AFMTTRLR", 8);
    m->n = pos + f.len + TRAILER;
    /* The commit of generation g writes slot A if g is even, B if odd (§3.3). */
    uint64_t gen = afmt__get_u64(sp + 32) + 1;
    uint8_t *d = m->img + slot_at[gen & 1];
    if (d != sp) memcpy(d, sp, SLOT);
    afmt__put_u64(d + 32, gen);
    afmt__put_u64(d + 40, pos);
    afmt__put_u64(d + 48, f.len);
    afmt__put_u64(d + 64, m->n);
    afmt__put_u64(d + 72, afmt__get_u64(d + 72) + 1);
    afmt__put_u64(d + 80, id);
    afmt__put_u64(d + 88, afmt__get_u64(F + 64));
    last_op = "layer-new";
    return 1;
}

static int op_chain(model *m, size_t cap) {
    int s = newest_slot(m);
    switch (below(5)) {
    case 0: { /* one slot copied over the other, generation -1, 0 or +1 */
        if (s < 0 || m->n < 2048 + SLOT) return 0;
        uint8_t *d = m->img + slot_at[1 - s];
        memcpy(d, m->img + slot_at[s], SLOT);
        afmt__put_u64(d + 32, afmt__get_u64(d + 32) + below(3) - 1);
        last_op = "slot-copy";
        return 1;
    }
    case 1: { /* the newest slot names another footer */
        if (s < 0 || !m->nft) return 0;
        const footer *f = &m->ft[below((uint64_t)m->nft)];
        afmt__put_u64(m->img + slot_at[s] + 40, f->at);
        afmt__put_u64(m->img + slot_at[s] + 48, f->len);
        sync_slot(m, s);
        last_op = "slot-point";
        return 1;
    }
    case 2: { /* a footer's previous footer is another one, itself or none */
        if (!m->nft) return 0;
        const footer *f = &m->ft[below((uint64_t)m->nft)];
        const footer *g = &m->ft[below((uint64_t)m->nft)];
        int none = below(4) == 0;
        afmt__put_u64(m->img + f->at + 24, none ? 0 : g->at);
        afmt__put_u64(m->img + f->at + 32, none ? 0 : g->len);
        last_op = "prev-point";
        return 1;
    }
    case 3:
        return op_new_layer(m, cap);
    default: { /* the newest layer dropped: the slot names its previous footer */
        if (s < 0) return 0;
        uint8_t *p = m->img + slot_at[s];
        uint64_t at = afmt__get_u64(p + 40), len = afmt__get_u64(p + 48);
        if (!len || !in_image(m, at, 40)) return 0;
        afmt__put_u64(p + 40, afmt__get_u64(m->img + at + 24));
        afmt__put_u64(p + 48, afmt__get_u64(m->img + at + 32));
        sync_slot(m, s);
        last_op = "layer-drop";
        return 1;
    }
    }
}

/* ---- entry points ------------------------------------------------------------------------- */

size_t fz_mutate(uint8_t *data, size_t size, size_t max_size, unsigned seed) {
    seed_rng(seed);
    model *m = &M1;
    parse(m, data, size);
    if (!m->slot[0] && !m->slot[1] && !m->nft) {
        last_op = "bytes-unparsed";
        return byte_mutate(data, size, max_size);
    }
    int seal = 1;
    for (uint64_t round = below(4) ? 1 : 2; round > 0; round--) {
        uint64_t w = below(100);
        int done = 0;
        if (w < 36)
            done = op_field(m);
        else if (w < 52)
            done = op_record(m, max_size, m, 0);
        else if (w < 57)
            done = op_dims(m, max_size);
        else if (w < 64)
            done = op_string(m, max_size);
        else if (w < 72)
            done = op_block(m, max_size);
        else if (w < 81)
            done = op_segment(m, max_size, m); /* v2 files only */
        else if (w < 90)
            done = op_chain(m, max_size);
        else {
            m->n = byte_mutate(data, m->n, max_size);
            seal = below(4) != 0; /* now and then, damage the checksums may catch */
            last_op = seal ? "bytes-resealed" : "bytes";
            done = 1;
        }
        if (!done) op_field(m);
        parse(m, data, m->n);
    }
    int s = newest_slot(m);
    if (s >= 0 && below(4) == 0) {
        sync_slot(m, s);
        parse(m, data, m->n);
    }
    if (seal)
        reseal(m);
    else
        last_op = "bytes";
    return m->n;
}

size_t fz_crossover(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint8_t *out,
                    size_t max_out, unsigned seed) {
    seed_rng(seed);
    size_t n = na < max_out ? na : max_out;
    memcpy(out, a, n);
    parse(&M1, out, n);
    parse(&M2, (uint8_t *)b, nb);
    int done = 0;
    if (pick_sane(&M1) >= 0 && pick_sane(&M2) >= 0) {
        for (uint64_t k = 1 + below(3); k > 0; k--) {
            if (!(below(3) == 0 && op_segment(&M1, max_out, &M2)) &&
                !op_record(&M1, max_out, &M2, 1))
                continue;
            done = 1;
            parse(&M1, out, M1.n);
        }
    }
    if (!done) { /* a byte splice: a's head, b's tail */
        size_t i = (size_t)below((uint64_t)n + 1), j = (size_t)below((uint64_t)nb + 1);
        size_t len = nb - j < max_out - i ? nb - j : max_out - i;
        memcpy(out + i, b + j, len);
        n = i + len;
        parse(&M1, out, n);
        last_op = "cross-bytes";
    }
    reseal(&M1);
    return M1.n;
}

#ifdef FUZZ_LIBFUZZER
/* The hooks libFuzzer looks for: every target linked with this file mutates structurally. */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    return fz_mutate(data, size, max_size, seed);
}

size_t LLVMFuzzerCustomCrossOver(const uint8_t *a, size_t na, const uint8_t *b, size_t nb,
                                 uint8_t *out, size_t max_out, unsigned int seed) {
    return fz_crossover(a, na, b, nb, out, max_out, seed);
}
#endif
