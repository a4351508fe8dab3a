/* cmd_verify.c - afmt verify: checks a whole file with its own walk of the format
 * (docs/format.md), independent of afmt_open, so that it can describe files the library
 * refuses. Rank 0 reads the superblock slots and every footer of the chain and checks
 * the metadata; the block list is broadcast and the blocks are divided among the ranks
 * by bytes; failures are gathered to rank 0, which prints the report. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "codec.h"
#include "file.h"
#include "util.h"

typedef unsigned long long ull;

/* ---- problems and notes (rank 0) ----------------------------------------------------- */

typedef struct {
    char **line;
    uint64_t n, cap;
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
        if (!p) return;
        l->line = p;
        l->cap = cap;
    }
    l->line[l->n] = strdup(buf);
    if (l->line[l->n]) l->n++;
}

static void lines_free(lines *l) {
    for (uint64_t i = 0; i < l->n; i++) free(l->line[i]);
    free(l->line);
    memset(l, 0, sizeof *l);
}

/* ---- the metadata walk (rank 0) ------------------------------------------------------ */

/* One block to check; all u64 so that the list is broadcast as bytes. */
typedef struct {
    uint64_t offset, stored, raw, checksum, codec;
    uint64_t pool;  /* the layer (position in the pool) */
    uint64_t index; /* block index in its layer */
} vblock;

/* A decoded footer. */
typedef struct {
    uint64_t offset, length;
    afmt_layer L;
    int checked; /* its chunk records and blocks were examined */
} pooled;

typedef struct {
    afmt_storage *st;
    const char *path;
    uint64_t size;
    lines damage, notes;
    pooled *pool;
    uint64_t npool, cap_pool;
    afmt_hmap by_offset; /* footer offset -> pool position */
    afmt_hmap names;     /* array id -> (pool position << 32 | array record index) */
    afmt_hmap bad;       /* offsets of footers found damaged */
    vblock *blocks;
    uint64_t nblocks, cap_blocks;
    uint64_t chunk_records;
    uint8_t *live; /* per vblock: holds a current chunk (primary chain whole) */
    int have_live;
} verifier;

static const char *slot_name(int i) {
    return i ? "slot B (offset 2048)" : "slot A (offset 0)";
}

static const char *array_name(verifier *v, uint64_t id, char *buf, size_t n) {
    const uint64_t *p = afmt_hmap_get(&v->names, id, 0);
    if (!p) {
        snprintf(buf, n, "array id %llu", (ull)id);
        return buf;
    }
    const afmt_array_rec *r = &v->pool[*p >> 32].L.arrays[*p & 0xffffffffu];
    snprintf(buf, n, "array \"%s\"", r->name);
    return buf;
}

/* The slot's state as in docs/format.md 3.2; AFMT_OK if valid. */
static int slot_check(const uint8_t *region, uint64_t len, int i, afmt_super *s, char *why,
                      size_t n) {
    uint64_t off = i ? AFMT_SLOT_B_OFFSET : AFMT_SLOT_A_OFFSET;
    memset(s, 0, sizeof *s);
    if (len < off + AFMT_SLOT_SIZE) {
        snprintf(why, n, "missing: the file has only %llu bytes", (ull)len);
        return AFMT_ECORRUPT;
    }
    const uint8_t *p = region + off;
    int zero = 1;
    for (int k = 0; k < AFMT_SLOT_SIZE; k++) zero &= p[k] == 0;
    if (zero) {
        snprintf(why, n, "empty");
        return AFMT_ENOTFOUND;
    }
    if (memcmp(p, "AFMTSUPR", 8) != 0) {
        snprintf(why, n, "bad magic");
        return AFMT_ECORRUPT;
    }
    uint64_t stored = afmt_get_u64(p + AFMT_SLOT_SIZE - 8);
    uint64_t computed = afmt_checksum(p, AFMT_SLOT_SIZE - 8);
    if (stored != computed) {
        snprintf(why, n, "bad checksum (stored 0x%016llx, computed 0x%016llx)", (ull)stored,
                 (ull)computed);
        return AFMT_ECORRUPT;
    }
    uint32_t version = afmt_get_u32(p + 8);
    if (version > AFMT_FORMAT_VERSION) {
        snprintf(why, n, "format version %u, newer than this afmt's %d", version,
                 AFMT_FORMAT_VERSION);
        return AFMT_EVERSION;
    }
    int rc = afmt_super_decode(p, s);
    if (rc != AFMT_OK) {
        if (version == 0)
            snprintf(why, n, "bad version 0");
        else if (s->eof < AFMT_SUPER_REGION)
            snprintf(why, n, "eof %llu lies inside the superblock region", (ull)s->eof);
        else
            snprintf(why, n,
                     "inconsistent footer pointer (offset %llu, length %llu, %llu layers, "
                     "eof %llu)",
                     (ull)s->footer_offset, (ull)s->footer_length, (ull)s->nlayers, (ull)s->eof);
        return AFMT_ECORRUPT;
    }
    return AFMT_OK;
}

static int pool_add(verifier *v, uint64_t off, uint64_t len, afmt_layer *L) {
    if (v->npool == v->cap_pool) {
        uint64_t cap = v->cap_pool ? 2 * v->cap_pool : 16;
        pooled *p = realloc(v->pool, sizeof *p * (size_t)cap);
        if (!p) return -1;
        v->pool = p;
        v->cap_pool = cap;
    }
    pooled *e = &v->pool[v->npool];
    e->offset = off;
    e->length = len;
    e->L = *L;
    e->checked = 0;
    afmt_hmap_put(&v->by_offset, off, 0, v->npool);
    for (uint64_t i = 0; i < L->n_arrays && i <= 0xffffffffu; i++)
        if (!afmt_hmap_get(&v->names, L->arrays[i].id, 0) || L->arrays[i].kind == AFMT_REC_DEFINE)
            afmt_hmap_put(&v->names, L->arrays[i].id, 0, (v->npool << 32) | i);
    return (int)v->npool++;
}

/* Walks the chain of slot s: returns the pool positions newest first in *chain (*n of
 * them) and 1 if the chain is whole, 0 if it broke (damage recorded). */
static int walk(verifier *v, const afmt_super *s, const char *from, uint64_t **chain, uint64_t *n) {
    *n = 0;
    *chain = malloc(sizeof **chain * (size_t)(s->nlayers + 1));
    if (!*chain) return 0;
    uint64_t off = s->footer_offset, len = s->footer_length, prev_id = UINT64_MAX;
    int whole = 1;
    while (len > 0) {
        uint64_t pos = *n;
        char where[160];
        if (pos == 0)
            snprintf(where, sizeof where, "newest footer (of %s) at offset %llu (%llu bytes)", from,
                     (ull)off, (ull)len);
        else
            snprintf(where, sizeof where,
                     "footer %llu of the chain of %s, counted from the newest, at offset %llu "
                     "(%llu bytes), below layer %llu",
                     (ull)pos + 1, from, (ull)off, (ull)len, (ull)prev_id);
        if (pos >= s->nlayers) {
            lines_add(&v->damage, "layer chain of %s: longer than the %llu layers it counts", from,
                      (ull)s->nlayers);
            whole = 0;
            break;
        }
        const uint64_t *known = afmt_hmap_get(&v->by_offset, off, 0);
        const afmt_layer *L = NULL;
        if (known && v->pool[*known].length == len) {
            L = &v->pool[*known].L;
            (*chain)[(*n)++] = *known;
        } else if (afmt_hmap_get(&v->bad, off, 0)) {
            whole = 0; /* reported already, from the other chain */
            break;
        } else {
            uint64_t end;
            if (off < AFMT_SUPER_REGION || !afmt_add_ok(off, len, &end) ||
                !afmt_add_ok(end, AFMT_TRAILER_SIZE, &end) || end > s->eof) {
                lines_add(&v->damage, "%s: lies outside the committed file [4096, %llu)", where,
                          (ull)s->eof);
                whole = 0;
                afmt_hmap_put(&v->bad, off, 0, 1);
                break;
            }
            if (end - AFMT_TRAILER_SIZE > v->size) {
                lines_add(&v->damage, "%s: lies past the end of the file (%llu bytes): truncated",
                          where, (ull)v->size);
                whole = 0;
                afmt_hmap_put(&v->bad, off, 0, 1);
                break;
            }
            uint8_t *buf = malloc((size_t)len);
            if (!buf) {
                lines_add(&v->damage, "%s: out of memory to read it", where);
                whole = 0;
                afmt_hmap_put(&v->bad, off, 0, 1);
                break;
            }
            if (v->st->ops->read_at(v->st, off, buf, len) != AFMT_OK) {
                lines_add(&v->damage, "%s: cannot be read: %s", where, v->st->errmsg);
                free(buf);
                whole = 0;
                afmt_hmap_put(&v->bad, off, 0, 1);
                break;
            }
            if (pos == 0 && afmt_footer_checksum(buf, len) != s->footer_checksum) {
                uint64_t own = afmt_get_u64(buf + len - 8);
                int self = len >= 8 && afmt_checksum(buf, (size_t)(len - 8)) == own;
                lines_add(&v->damage, "%s: does not match the checksum in %s%s", where, from,
                          self ? " (the footer checks itself: the slot points at another footer)"
                               : ": the footer is damaged");
                free(buf);
                whole = 0;
                afmt_hmap_put(&v->bad, off, 0, 1);
                break;
            }
            afmt_layer dec;
            char msg[AFMT_ERRMSG_MAX];
            int rc = afmt_footer_decode(buf, len, &dec, msg);
            /* The trailer after it. */
            if (rc == AFMT_OK) {
                uint8_t tr[AFMT_TRAILER_SIZE];
                uint64_t to = 0, tl = 0, tc = 0;
                if (off + len + AFMT_TRAILER_SIZE > v->size)
                    lines_add(&v->damage,
                              "layer %llu: trailer at offset %llu lies past the end "
                              "of the file: truncated",
                              (ull)dec.layer_id, (ull)(off + len));
                else if (v->st->ops->read_at(v->st, off + len, tr, sizeof tr) != AFMT_OK)
                    lines_add(&v->damage, "layer %llu: trailer at offset %llu cannot be read: %s",
                              (ull)dec.layer_id, (ull)(off + len), v->st->errmsg);
                else if (afmt_trailer_decode(tr, &to, &tl, &tc) != AFMT_OK || to != off ||
                         tl != len || tc != afmt_footer_checksum(buf, len))
                    lines_add(&v->damage,
                              "layer %llu: trailer at offset %llu is damaged or does not "
                              "describe its footer",
                              (ull)dec.layer_id, (ull)(off + len));
            }
            free(buf);
            if (rc != AFMT_OK) {
                lines_add(&v->damage, "%s: %s", where, msg);
                whole = 0;
                afmt_hmap_put(&v->bad, off, 0, 1);
                break;
            }
            int at = pool_add(v, off, len, &dec);
            if (at < 0) {
                afmt_layer_free(&dec);
                lines_add(&v->damage, "%s: out of memory", where);
                whole = 0;
                afmt_hmap_put(&v->bad, off, 0, 1);
                break;
            }
            L = &v->pool[at].L;
            (*chain)[(*n)++] = (uint64_t)at;
        }
        if (L->layer_id >= prev_id) {
            lines_add(&v->damage,
                      "layer %llu at offset %llu: layer ids do not decrease along the "
                      "chain (after layer %llu)",
                      (ull)L->layer_id, (ull)off, (ull)prev_id);
            whole = 0;
            break;
        }
        prev_id = L->layer_id;
        if (L->flags & AFMT_LAYER_BASE) break;
        off = L->prev_offset;
        len = L->prev_length;
    }
    if (whole && *n != s->nlayers) {
        lines_add(&v->damage, "%s counts %llu layers but its chain has %llu", from, (ull)s->nlayers,
                  (ull)*n);
        whole = 0;
    }
    return whole;
}

static int vblock_cmp(const void *a, const void *b) {
    const vblock *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Chunk records and blocks of one chain, oldest first. partial: the chain is broken
 * below these layers, so arrays defined there are unknown (not reported). */
static void check_chain(verifier *v, const uint64_t *chain, uint64_t n, int partial,
                        afmt_hmap *latest) {
    afmt_index x;
    afmt_index_init(&x);
    for (uint64_t k = n; k-- > 0;) {
        pooled *p = &v->pool[chain[k]];
        const afmt_layer *L = &p->L;
        const ull lid = (ull)L->layer_id;
        /* The array and attribute records only: chunk and block checks are ours. */
        afmt_layer meta = *L;
        meta.blocks = NULL;
        meta.n_blocks = 0;
        meta.chunks = NULL;
        meta.n_chunks = 0;
        char msg[AFMT_ERRMSG_MAX];
        if (afmt_index_apply(&x, &meta, p->offset, p->length, msg) != AFMT_OK && !partial)
            lines_add(&v->damage, "layer %llu (footer at offset %llu): %s", lid, (ull)p->offset,
                      msg);
        if (latest) {
            for (uint64_t i = 0; i < L->n_arrays; i++) {
                if (L->arrays[i].kind != AFMT_REC_DELETE) continue;
                for (uint64_t s = 0; s < latest->cap; s++)
                    if (latest->slots[s].used == 1 && latest->slots[s].k1 == L->arrays[i].id)
                        afmt_hmap_del(latest, latest->slots[s].k1, latest->slots[s].k2);
            }
        }
        uint64_t first_block = v->nblocks;
        if (!p->checked) {
            /* Blocks: inside [data_offset, footer offset), within the file, no overlap. */
            for (uint64_t b = 0; b < L->n_blocks; b++) {
                const afmt_block_rec *B = &L->blocks[b];
                uint64_t end;
                if (B->offset < L->data_offset || !afmt_add_ok(B->offset, B->stored_size, &end) ||
                    end > p->offset) {
                    lines_add(&v->damage,
                              "layer %llu, block %llu at offset %llu (%llu bytes): outside the "
                              "layer's data [%llu, %llu)",
                              lid, (ull)b, (ull)B->offset, (ull)B->stored_size, (ull)L->data_offset,
                              (ull)p->offset);
                    continue;
                }
                if (v->nblocks == v->cap_blocks) {
                    uint64_t cap = v->cap_blocks ? 2 * v->cap_blocks : 64;
                    vblock *q = realloc(v->blocks, sizeof *q * (size_t)cap);
                    if (!q) break;
                    v->blocks = q;
                    v->cap_blocks = cap;
                }
                v->blocks[v->nblocks++] = (vblock){
                    B->offset, B->stored_size, B->raw_size, B->checksum, B->codec, chain[k], b};
            }
            qsort(v->blocks + first_block, (size_t)(v->nblocks - first_block), sizeof *v->blocks,
                  vblock_cmp);
            for (uint64_t b = first_block + 1; b < v->nblocks; b++)
                if (v->blocks[b].offset < v->blocks[b - 1].offset + v->blocks[b - 1].stored)
                    lines_add(&v->damage,
                              "layer %llu: block %llu at offset %llu overlaps block %llu at "
                              "offset %llu",
                              lid, (ull)v->blocks[b].index, (ull)v->blocks[b].offset,
                              (ull)v->blocks[b - 1].index, (ull)v->blocks[b - 1].offset);
        }
        for (uint64_t i = 0; i < L->n_chunks; i++) {
            const afmt_chunk_rec *c = &L->chunks[i];
            const afmt_array *a = afmt_index_by_id(&x, c->array_id);
            if (!p->checked) {
                v->chunk_records++;
                char nb[AFMT_MAX_NAME + 32];
                const ull ci = (ull)c->chunk_index;
                if (!a) {
                    if (!partial)
                        lines_add(&v->damage,
                                  "layer %llu, array id %llu, chunk %llu: the array is not defined",
                                  lid, (ull)c->array_id, ci);
                } else if (!a->live) {
                    lines_add(&v->damage, "layer %llu, %s, chunk %llu: the array is deleted", lid,
                              array_name(v, c->array_id, nb, sizeof nb), ci);
                } else {
                    uint64_t nch = afmt_grid_nchunks(&a->grid), cc[AFMT_MAX_NDIM], want = 0;
                    if (c->chunk_index >= nch) {
                        lines_add(&v->damage,
                                  "layer %llu, array \"%s\", chunk %llu: outside the grid of %llu "
                                  "chunks",
                                  lid, a->d.name, ci, (ull)nch);
                    } else {
                        afmt_grid_chunk_coord(&a->grid, c->chunk_index, cc);
                        uint64_t el = afmt_grid_chunk_box(&a->grid, cc, NULL, NULL);
                        if (!afmt_mul_ok(el, a->esize, &want) || c->size != want)
                            lines_add(&v->damage,
                                      "layer %llu, array \"%s\", chunk %llu: %llu bytes, but its "
                                      "extent of %llu elements needs %llu",
                                      lid, a->d.name, ci, (ull)c->size, (ull)el, (ull)want);
                    }
                    uint64_t end;
                    if (c->block >= L->n_blocks || !afmt_add_ok(c->offset, c->size, &end) ||
                        end > L->blocks[c->block].raw_size)
                        lines_add(&v->damage,
                                  "layer %llu, array \"%s\", chunk %llu: [%llu, +%llu) is not "
                                  "inside block %llu",
                                  lid, a->d.name, ci, (ull)c->offset, (ull)c->size, (ull)c->block);
                }
            }
            if (latest && a && a->live)
                afmt_hmap_put(latest, c->array_id, c->chunk_index,
                              ((uint64_t)chain[k] << 32) | (c->block & 0xffffffffu));
        }
        p->checked = 1;
    }
    afmt_index_free(&x);
}

/* Rank 0: everything but reading the blocks. Returns CLI_OK, or CLI_ERROR after printing
 * a one-line error (not an afmt file, newer version). */
static int metadata(verifier *v, int quiet) {
    int rc = v->st->ops->size(v->st, &v->size);
    if (rc != AFMT_OK) return cli_error(v->path, "%s", v->st->errmsg);
    uint8_t region[AFMT_SUPER_REGION];
    uint64_t rl = v->size < AFMT_SUPER_REGION ? v->size : AFMT_SUPER_REGION;
    if (rl && v->st->ops->read_at(v->st, 0, region, rl) != AFMT_OK)
        return cli_error(v->path, "%s", v->st->errmsg);
    afmt_super s[2];
    int src[2], best = -1;
    char why[2][256];
    for (int i = 0; i < 2; i++) {
        src[i] = slot_check(region, rl, i, &s[i], why[i], sizeof why[i]);
        if (src[i] == AFMT_EVERSION)
            return cli_error(v->path, "%s: %s: use a newer afmt", slot_name(i), why[i]);
    }
    for (int i = 0; i < 2; i++)
        if (src[i] == AFMT_OK && (best < 0 || s[i].generation > s[best].generation)) best = i;
    for (int i = 0; i < 2; i++) {
        if (src[i] == AFMT_OK) {
            lines_add(&v->notes, "%s: generation %llu, %llu layer%s, eof %llu: valid%s",
                      slot_name(i), (ull)s[i].generation, (ull)s[i].nlayers,
                      s[i].nlayers == 1 ? "" : "s", (ull)s[i].eof, i == best ? ", current" : "");
        } else if (src[i] == AFMT_ENOTFOUND) {
            lines_add(&v->notes, "%s: empty", slot_name(i));
        } else {
            if (best < 0)
                lines_add(&v->damage, "%s: %s (no valid slot: the file cannot be opened)",
                          slot_name(i), why[i]);
            else
                lines_add(&v->damage,
                          "%s: %s (the file opens from %s, generation %llu; if the damaged slot "
                          "held a newer commit, that commit is lost)",
                          slot_name(i), why[i], best ? "slot B" : "slot A",
                          (ull)s[best].generation);
        }
    }
    if (best < 0) return CLI_OK;
    if (src[0] == AFMT_OK && src[1] == AFMT_OK && memcmp(s[0].uuid, s[1].uuid, 16) != 0)
        lines_add(&v->damage, "the slots name different file UUIDs");
    const afmt_super *cur = &s[best];
    if (cur->eof > v->size)
        lines_add(&v->damage,
                  "%s says the file ends at %llu but it has %llu bytes: truncated (%llu bytes "
                  "missing)",
                  slot_name(best), (ull)cur->eof, (ull)v->size, (ull)(cur->eof - v->size));
    else if (!quiet && v->size > cur->eof)
        lines_add(&v->notes,
                  "%llu bytes past the committed end (an interrupted commit or a "
                  "rollback's leftovers; ignored)",
                  (ull)(v->size - cur->eof));

    uint64_t *chain = NULL, n = 0;
    char from[64];
    snprintf(from, sizeof from, "%s", best ? "slot B" : "slot A");
    int whole = walk(v, cur, from, &chain, &n);
    afmt_hmap latest;
    afmt_hmap_init(&latest);
    check_chain(v, chain, n, !whole, whole ? &latest : NULL);
    if (whole)
        lines_add(&v->notes, "layer chain: %llu layer%s, footers and trailers checked", (ull)n,
                  n == 1 ? "" : "s");
    int other = 1 - best;
    if (!whole && src[other] == AFMT_OK && s[other].footer_length > 0) {
        uint64_t *chain2 = NULL, n2 = 0;
        char from2[64];
        snprintf(from2, sizeof from2, "%s", other ? "slot B" : "slot A");
        lines_add(&v->notes,
                  "the chain of %s is broken: checking the chain of %s (generation %llu) as well",
                  from, from2, (ull)s[other].generation);
        int whole2 = walk(v, &s[other], from2, &chain2, &n2);
        check_chain(v, chain2, n2, !whole2, NULL);
        free(chain2);
    }
    free(chain);
    qsort(v->blocks, (size_t)v->nblocks, sizeof *v->blocks, vblock_cmp);
    if (whole) {
        /* Which blocks still hold current chunks (to tell what a damaged block costs). */
        v->live = calloc((size_t)v->nblocks + 1, 1);
        v->have_live = v->live != NULL;
        afmt_hmap pos;
        afmt_hmap_init(&pos);
        for (uint64_t b = 0; v->live && b < v->nblocks; b++)
            afmt_hmap_put(&pos, v->blocks[b].pool, v->blocks[b].index, b);
        for (uint64_t i = 0; v->live && i < latest.cap; i++) {
            if (latest.slots[i].used != 1) continue;
            uint64_t val = latest.slots[i].val;
            const uint64_t *b = afmt_hmap_get(&pos, val >> 32, val & 0xffffffffu);
            if (b) v->live[*b] = 1;
        }
        afmt_hmap_free(&pos);
    }
    afmt_hmap_free(&latest);
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
    if (afmt_checksum(*sbuf, (size_t)b->stored) != b->checksum) return BAD_CHECKSUM;
    if (b->codec == AFMT_CODEC_NONE) return b->stored == b->raw ? 0 : BAD_RAWSIZE;
    if (!afmt_codec_known((uint32_t)b->codec)) return BAD_CODEC;
    if (b->raw > *rcap) {
        uint8_t *p = realloc(*rbuf, (size_t)b->raw);
        if (!p) return BAD_MEMORY;
        *rbuf = p;
        *rcap = b->raw;
    }
    if (afmt_codec_decompress((uint32_t)b->codec, *sbuf, (size_t)b->stored, *rbuf,
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

/* Checks this rank's share; returns the failures as (position, code) pairs. */
static uint64_t *check_share(afmt_storage *st, const vblock *blocks, uint64_t n, uint64_t *nfail,
                             uint64_t *bytes_done) {
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
        if (code) {
            if (*nfail == cap) {
                cap = cap ? 2 * cap : 16;
                uint64_t *p = realloc(fail, sizeof *p * 2 * (size_t)cap);
                if (!p) continue;
                fail = p;
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
    const char *cost = "";
    if (v->have_live && v->live)
        cost = v->live[pos] ? "" : " [no current chunk: only reads of older layers fail]";
    lines_add(&v->damage, "layer %llu, block %llu at offset %llu (%llu bytes, %s): %s; %s%s",
              (ull)L->layer_id, (ull)b->index, (ull)b->offset, (ull)b->stored,
              afmt_codec_name((uint32_t)b->codec), bad_text(code),
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
    afmt_hmap_init(&v.by_offset);
    afmt_hmap_init(&v.names);
    afmt_hmap_init(&v.bad);
    char msg[AFMT_ERRMSG_MAX];
    if (afmt_storage_open(AFMT_STORAGE_MPIIO, cli.comm, path, AFMT_ST_READ, MPI_INFO_NULL, &v.st,
                          msg) != AFMT_OK)
        return cli_error(path, "%s", msg);
    rc = CLI_OK;
    if (cli.rank == 0) rc = metadata(&v, quiet);
    rc = cli_agree(rc);
    uint64_t n = v.nblocks;
    if (rc == CLI_OK) {
        MPI_Bcast(&n, 1, MPI_UINT64_T, 0, cli.comm);
        if (cli.rank != 0) {
            v.blocks = malloc(sizeof *v.blocks * (size_t)(n + 1));
            v.nblocks = n;
        }
        int ok = v.blocks != NULL || n == 0;
        rc = cli_agree_msg(path, !ok, "out of memory for the block list");
    }
    uint64_t nfail = 0, *fail = NULL, bytes = 0;
    if (rc == CLI_OK && n) {
        afmt__bcast_bytes(cli.comm, v.blocks, sizeof *v.blocks * n, 0);
        fail = check_share(v.st, v.blocks, n, &nfail, &bytes);
    }
    if (rc == CLI_OK) {
        /* Gather the failures on rank 0. */
        int cnt = (int)(2 * nfail), *cnts = NULL, *displ = NULL;
        uint64_t *all = NULL, total_bytes = 0;
        MPI_Reduce(&bytes, &total_bytes, 1, MPI_UINT64_T, MPI_SUM, 0, cli.comm);
        if (cli.rank == 0) {
            cnts = calloc((size_t)cli.size, sizeof *cnts);
            displ = calloc((size_t)cli.size, sizeof *displ);
        }
        MPI_Gather(&cnt, 1, MPI_INT, cnts, 1, MPI_INT, 0, cli.comm);
        int sum = 0;
        if (cli.rank == 0) {
            for (int r = 0; r < cli.size; r++) {
                displ[r] = sum;
                sum += cnts[r];
            }
            all = malloc(sizeof *all * (size_t)(sum + 1));
        }
        MPI_Gatherv(fail, cnt, MPI_UINT64_T, all, cnts, displ, MPI_UINT64_T, 0, cli.comm);
        if (cli.rank == 0) {
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
            if (!quiet)
                for (uint64_t i = 0; i < v.notes.n; i++) printf("%s\n", v.notes.line[i]);
            if (!quiet)
                printf("blocks: %llu checked (%llu bytes stored), chunk records: %llu checked\n",
                       (ull)n, (ull)total_bytes, (ull)v.chunk_records);
            for (uint64_t i = 0; i < v.damage.n; i++) printf("damaged: %s\n", v.damage.line[i]);
            if (v.damage.n)
                printf("%s: DAMAGED (%llu problem%s)\n", path, (ull)v.damage.n,
                       v.damage.n == 1 ? "" : "s");
            else
                printf("%s: OK\n", path);
            fflush(stdout);
            rc = v.damage.n ? CLI_DIFF : CLI_OK;
        }
        free(cnts);
        free(displ);
        free(all);
    }
    free(fail);
    v.st->ops->close(v.st);
    for (uint64_t i = 0; i < v.npool; i++) afmt_layer_free(&v.pool[i].L);
    free(v.pool);
    free(v.blocks);
    free(v.live);
    afmt_hmap_free(&v.by_offset);
    afmt_hmap_free(&v.names);
    afmt_hmap_free(&v.bad);
    lines_free(&v.damage);
    lines_free(&v.notes);
    return rc;
}
