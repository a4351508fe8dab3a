/* soak_model.h - the deterministic history of the soak test, shared by soak_writer.c
 * (which writes it) and soak_check.c (which replays it in memory as the reference).
 *
 * Everything random is derived from (seed, commit number k), so the content of the file
 * after commit k can be recomputed at any time, also after the writer was SIGKILLed and
 * restarted from the last durable commit.
 *
 * SOAK_SLOTS array slots, named "s<slot>". At commit k each slot is, at random:
 *  - absent: defined (p ~ 0.35) with a random dtype, 1..3 dimensions, random shape and
 *    chunks (chunks rarely divide the shape), a random fill value;
 *  - live: deleted (p ~ 0.06), or deleted and redefined with a new descriptor in the same
 *    commit (p ~ 0.04), and/or written (p ~ 0.7): one random box (sometimes the whole
 *    array) with values val(seed, k, slot, element index). The box is split among the
 *    ranks along dimension 0 and each rank writes its part in two calls split along the
 *    last dimension, so chunks are shared by ranks and by calls (partial chunks).
 * File attribute "commit" = k (INT64). Commit k is always a layer of its own. */
#ifndef SOAK_MODEL_H
#define SOAK_MODEL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "afmt.h"
#include "tu_dtype.h"

#define SOAK_SLOTS   6
#define SOAK_MAX_EL  (256u * 1024u) /* elements per array at most */
#define SOAK_MAXNDIM 3

typedef struct {
    int live;
    afmt_dtype t;
    int ndim;
    uint64_t shape[SOAK_MAXNDIM], chunk[SOAK_MAXNDIM];
    uint64_t fill; /* the fill value's bits (low esize bytes, little-endian order) */
    uint8_t *data; /* reference content (checker only), NULL in the writer */
} soak_arr;

typedef struct {
    soak_arr a[SOAK_SLOTS];
} soak_state;

/* What commit k does to one slot. */
typedef struct {
    int del; /* delete the live array first */
    int def; /* define (after the delete, if any) with desc */
    soak_arr desc;
    int write; /* write box [start, start+count) */
    uint64_t start[SOAK_MAXNDIM], count[SOAK_MAXNDIM];
} soak_op;

static inline uint64_t soak_mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

typedef struct {
    uint64_t s;
} soak_rng;

static inline uint64_t soak_next(soak_rng *r) {
    return soak_mix(r->s++);
}
static inline uint64_t soak_below(soak_rng *r, uint64_t n) {
    return n ? soak_next(r) % n : 0;
}

/* Value bits of element idx written by commit k in slot; floats are exact small values
 * (never NaN), so a byte comparison is exact. */
static inline uint64_t soak_val(uint64_t seed, uint64_t k, int slot, uint64_t idx, afmt_dtype t) {
    uint64_t x = soak_mix(seed * 0x2545F4914F6CDD1Dull ^ soak_mix(k * 131 + (uint64_t)slot) ^
                          idx * 0xD6E8FEB86659FD93ull);
    if (t == AFMT_FLOAT64) {
        double d = (double)(x % 1000003u) / 16.0 + (double)k;
        uint64_t b;
        memcpy(&b, &d, 8);
        return b;
    }
    if (t == AFMT_FLOAT32) {
        float f = (float)(x % 65536u) / 4.0f;
        uint32_t b;
        memcpy(&b, &f, 4);
        return b;
    }
    if (k % 3 == 0) x %= 200; /* some commits are well compressible */
    return x;
}

/* Stores the low esize bytes of v at p (host order, as the buffers of afmt_write). */
static inline void soak_put(uint8_t *p, uint64_t v, size_t esize) {
    switch (esize) {
    case 1: {
        uint8_t u = (uint8_t)v;
        memcpy(p, &u, 1);
        break;
    }
    case 2: {
        uint16_t u = (uint16_t)v;
        memcpy(p, &u, 2);
        break;
    }
    case 4: {
        uint32_t u = (uint32_t)v;
        memcpy(p, &u, 4);
        break;
    }
    default:
        memcpy(p, &v, 8);
    }
}

static inline uint64_t soak_nel(const soak_arr *a) {
    uint64_t n = 1;
    for (int d = 0; d < a->ndim; d++) n *= a->shape[d];
    return n;
}

static inline void soak_random_desc(soak_rng *r, soak_arr *a) {
    static const afmt_dtype types[] = {AFMT_INT8,  AFMT_UINT16,  AFMT_INT32,
                                       AFMT_INT64, AFMT_FLOAT32, AFMT_FLOAT64};
    memset(a, 0, sizeof *a);
    a->live = 1;
    a->t = types[soak_below(r, 6)];
    a->ndim = 1 + (int)soak_below(r, 3);
    uint64_t budget = 256 + soak_below(r, SOAK_MAX_EL - 256); /* random size */
    uint64_t n = 1;
    for (int d = 0; d < a->ndim; d++) {
        uint64_t left = budget / n, maxd = a->ndim == 1 ? left : (d == 0 ? 96 : 160);
        if (maxd > left) maxd = left;
        if (maxd < 1) maxd = 1;
        a->shape[d] = 1 + soak_below(r, maxd);
        if (d == 0 && a->shape[d] < 4 && maxd >= 4) a->shape[d] = 4; /* rows for the ranks */
        n *= a->shape[d];
        a->chunk[d] = 1 + soak_below(r, a->shape[d]); /* rarely divides the shape */
        if (soak_below(r, 4) == 0 && a->chunk[d] > 8) a->chunk[d] /= 4;
    }
    a->fill = soak_below(r, 3) == 0 ? 0 : soak_next(r);
    if (a->t == AFMT_FLOAT64) a->fill = soak_val(1, 0, 0, a->fill, AFMT_FLOAT64);
    if (a->t == AFMT_FLOAT32) a->fill = soak_val(1, 0, 0, a->fill, AFMT_FLOAT32);
}

/* The operations of commit k (>= 1) on state st (the state after commit k-1). */
static inline void soak_plan(uint64_t seed, uint64_t k, const soak_state *st,
                             soak_op ops[SOAK_SLOTS]) {
    soak_rng r = {soak_mix(seed) ^ soak_mix(k * 0x100000001B3ull)};
    memset(ops, 0, sizeof(soak_op) * SOAK_SLOTS);
    for (int s = 0; s < SOAK_SLOTS; s++) {
        soak_op *op = &ops[s];
        uint64_t p = soak_below(&r, 100);
        const soak_arr *cur = &st->a[s];
        if (!cur->live) {
            if (p < 35 || k == 1) op->def = 1;
        } else if (p < 6) {
            op->del = 1;
        } else if (p < 10) {
            op->del = op->def = 1;
        }
        if (op->def) soak_random_desc(&r, &op->desc);
        const soak_arr *a = op->def ? &op->desc : (op->del || !cur->live ? NULL : cur);
        if (a && soak_below(&r, 100) < 70) {
            op->write = 1;
            int whole = soak_below(&r, 5) == 0;
            for (int d = 0; d < a->ndim; d++) {
                if (whole) {
                    op->start[d] = 0;
                    op->count[d] = a->shape[d];
                } else {
                    op->start[d] = soak_below(&r, a->shape[d]);
                    op->count[d] = 1 + soak_below(&r, a->shape[d] - op->start[d]);
                }
            }
        }
    }
}

/* Row-major index of the element at box offset (the box is start/count). */
static inline uint64_t soak_box_index(const soak_arr *a, const uint64_t *start,
                                      const uint64_t *pos) {
    uint64_t i = 0;
    for (int d = 0; d < a->ndim; d++) i = i * a->shape[d] + start[d] + pos[d];
    return i;
}

/* Fills buf (C order over box [start, start+count)) with the values of commit k. */
static inline void soak_fill_box(uint64_t seed, uint64_t k, int slot, const soak_arr *a,
                                 const uint64_t *start, const uint64_t *count, uint8_t *buf) {
    size_t es = tu_dtype_size(a->t);
    uint64_t pos[SOAK_MAXNDIM] = {0, 0, 0}, n = 1;
    for (int d = 0; d < a->ndim; d++) n *= count[d];
    for (uint64_t e = 0; e < n; e++) {
        uint64_t i = soak_box_index(a, start, pos);
        soak_put(buf + e * es, soak_val(seed, k, slot, i, a->t), es);
        for (int d = a->ndim - 1; d >= 0; d--) {
            if (++pos[d] < count[d]) break;
            pos[d] = 0;
        }
    }
}

/* Applies commit k's ops to st. with_data: keep the reference content too. */
static inline int soak_apply(uint64_t seed, uint64_t k, soak_state *st,
                             const soak_op ops[SOAK_SLOTS], int with_data) {
    for (int s = 0; s < SOAK_SLOTS; s++) {
        const soak_op *op = &ops[s];
        soak_arr *a = &st->a[s];
        if (op->del) {
            free(a->data);
            memset(a, 0, sizeof *a);
        }
        if (op->def) {
            free(a->data);
            *a = op->desc;
            a->data = NULL;
            if (with_data) {
                size_t es = tu_dtype_size(a->t);
                uint64_t n = soak_nel(a);
                a->data = malloc((size_t)(n * es));
                if (!a->data) return -1;
                for (uint64_t e = 0; e < n; e++) soak_put(a->data + e * es, a->fill, es);
            }
        }
        if (op->write && with_data) {
            size_t es = tu_dtype_size(a->t);
            uint64_t pos[SOAK_MAXNDIM] = {0, 0, 0}, n = 1;
            for (int d = 0; d < a->ndim; d++) n *= op->count[d];
            for (uint64_t e = 0; e < n; e++) {
                uint64_t i = soak_box_index(a, op->start, pos);
                soak_put(a->data + i * es, soak_val(seed, k, s, i, a->t), es);
                for (int d = a->ndim - 1; d >= 0; d--) {
                    if (++pos[d] < op->count[d]) break;
                    pos[d] = 0;
                }
            }
        }
    }
    return 0;
}

/* The state after commits 1..K. */
static inline int soak_replay(uint64_t seed, uint64_t K, soak_state *st, int with_data) {
    memset(st, 0, sizeof *st);
    soak_op ops[SOAK_SLOTS];
    for (uint64_t k = 1; k <= K; k++) {
        soak_plan(seed, k, st, ops);
        if (soak_apply(seed, k, st, ops, with_data) != 0) return -1;
    }
    return 0;
}

static inline void soak_free(soak_state *st) {
    for (int s = 0; s < SOAK_SLOTS; s++) free(st->a[s].data);
    memset(st, 0, sizeof *st);
}

/* Rows [lo, hi) of n parts of len: part r. */
static inline void soak_split(uint64_t len, int r, int n, uint64_t *lo, uint64_t *hi) {
    *lo = len * (uint64_t)r / (uint64_t)n;
    *hi = len * (uint64_t)(r + 1) / (uint64_t)n;
}

#endif
