/* crash_content.h - the deterministic content of step s of the crash test, shared by
 * crash_writer.c (which writes it) and crash_check.c (which recomputes it).
 *
 * Arrays:
 *  - "field": float64 [48][64][128] = 3 MiB, chunks [12][24][40] (no dimension divides
 *    evenly). Every step rewrites all of it with field_val(i, s). Rank r of n writes rows
 *    [48r/n, 48(r+1)/n) of dim 0, in two calls (columns [0,56) and [56,128)), so chunks are
 *    shared by ranks and by two calls of one rank: the commit merges pieces.
 *  - "part": int32 [300][500], chunks [64][96], fill -1. Step s rewrites only the box
 *    part_box(s) with part_val(i, s); elements outside keep the value of an older step or
 *    the fill. Rank r writes rows [h*r/n, h*(r+1)/n) of the box.
 *  - file attribute "step": int64 s.
 * Commit s is layer s (one commit per step, the first also defines the arrays). */
#ifndef CRASH_CONTENT_H
#define CRASH_CONTENT_H

#include <stdint.h>
#include <string.h>

#define F_D0     48
#define F_D1     64
#define F_D2     128
#define F_C0     12
#define F_C1     24
#define F_C2     40
#define F_SPLIT2 56 /* each rank writes its rows in two calls: columns [0,56), [56,128) */
#define F_N      ((uint64_t)F_D0 * F_D1 * F_D2)

#define P_D0   300
#define P_D1   500
#define P_C0   64
#define P_C1   96
#define P_H    60 /* rows of the box rewritten per step */
#define P_W    150
#define P_FILL (-1)
#define P_N    ((uint64_t)P_D0 * P_D1)

#define CRASH_BLOCK_SIZE ((uint64_t)64 << 10)

static inline uint64_t crash_mix(uint64_t i, uint64_t s) {
    uint64_t x = i * 0x9E3779B97F4A7C15ull + s * 0xBF58476D1CE4E5B9ull + 0x2545F4914F6CDD1Dull;
    x ^= x >> 31;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 29;
    return x;
}

/* Exact in binary64: an integer below 2^20 over 8, plus the step. */
static inline double field_val(uint64_t i, uint64_t s) {
    return (double)(crash_mix(i, s) % 1000003u) / 8.0 + (double)s;
}

static inline int32_t part_val(uint64_t i, uint64_t s) {
    return (int32_t)(crash_mix(i, s ^ 0x5555) % 2000000000u);
}

/* The box of "part" that step s rewrites: rows [*r0, +P_H), columns [*c0, +P_W). */
static inline void part_box(uint64_t s, uint64_t *r0, uint64_t *c0) {
    *r0 = (s * 37u) % (P_D0 - P_H + 1);
    *c0 = (s * 53u) % (P_D1 - P_W + 1);
}

/* Rows [lo, hi) of n equal-ish parts of len: part r. */
static inline void crash_split(uint64_t len, int r, int n, uint64_t *lo, uint64_t *hi) {
    *lo = len * (uint64_t)r / (uint64_t)n;
    *hi = len * (uint64_t)(r + 1) / (uint64_t)n;
}

/* The whole "part" array after steps 1..S (P_N elements). */
static inline void part_model(int32_t *out, uint64_t S) {
    for (uint64_t i = 0; i < P_N; i++) out[i] = P_FILL;
    for (uint64_t s = 1; s <= S; s++) {
        uint64_t r0, c0;
        part_box(s, &r0, &c0);
        for (uint64_t r = r0; r < r0 + P_H; r++)
            for (uint64_t c = c0; c < c0 + P_W; c++) {
                uint64_t i = r * P_D1 + c;
                out[i] = part_val(i, s);
            }
    }
}

#endif
