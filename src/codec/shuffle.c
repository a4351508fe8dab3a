/* shuffle.c - byte transpose by element size (the shuffle pre-filter).
 *
 * Every kernel works on a part of a shuffled buffer: m elements whose streams lie
 * `stride` bytes apart (the whole buffer's element count), so that the read and write
 * paths can (un)shuffle one row of a chunk straight between the caller's array and the
 * block, with no gather copy in between.
 *
 * On x86-64, esize 4 and 8 take an SSE2 path (always present there): 16 elements are
 * loaded as esize 16-byte registers and sent through rounds of unpacklo/unpackhi_epi8
 * (register j with register j + esize/2); four rounds transpose them into esize
 * registers of 16 same-position bytes, and the inverse takes three rounds (esize 8) or
 * two (esize 4). Elsewhere, and for esize 2, a SWAR path loads 8 elements as esize
 * 64-bit words and transposes them in registers (several GB/s at -O2 with no
 * intrinsics; byte loops run at 1-2 GB/s). Both assume a little-endian host; other hosts
 * and the tails use blocked byte loops. */
#include "codec/shuffle.h"

#include <stdint.h>
#include <string.h>

#include "common/util.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define LO32 0x00000000FFFFFFFFull
#define HI32 0xFFFFFFFF00000000ull
#define M8   0x00FF00FF00FF00FFull
#define M16  0x0000FFFF0000FFFFull

static inline uint64_t ld64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline void st64(uint8_t *p, uint64_t v) {
    memcpy(p, &v, 8);
}

/* Swaps the bytes/halves selected by mask between a (upper positions) and b (lower
 * positions): the step of a transpose by recursive 2x2 blocks. */
#define SWAP_BLK(a, b, mask, sh)                                                                   \
    do {                                                                                           \
        uint64_t t_ = (((a) >> (sh)) ^ (b)) & (mask);                                              \
        (b) ^= t_;                                                                                 \
        (a) ^= t_ << (sh);                                                                         \
    } while (0)

#if !defined(__SSE2__) /* the SSE2 paths below transpose with unpack instructions */
/* 8x8 byte transpose: on entry x[j] byte k = element j byte k; on exit x[k] byte j. */
static inline void transpose8x8(uint64_t x[8]) {
    SWAP_BLK(x[0], x[1], M8, 8);
    SWAP_BLK(x[2], x[3], M8, 8);
    SWAP_BLK(x[4], x[5], M8, 8);
    SWAP_BLK(x[6], x[7], M8, 8);
    SWAP_BLK(x[0], x[2], M16, 16);
    SWAP_BLK(x[1], x[3], M16, 16);
    SWAP_BLK(x[4], x[6], M16, 16);
    SWAP_BLK(x[5], x[7], M16, 16);
    SWAP_BLK(x[0], x[4], LO32, 32);
    SWAP_BLK(x[1], x[5], LO32, 32);
    SWAP_BLK(x[2], x[6], LO32, 32);
    SWAP_BLK(x[3], x[7], LO32, 32);
}

/* Two 4x4 byte transposes at once, one in each 32-bit half. Self-inverse. */
static inline void transpose4x4x2(uint64_t x[4]) {
    SWAP_BLK(x[0], x[1], M8, 8);
    SWAP_BLK(x[2], x[3], M8, 8);
    SWAP_BLK(x[0], x[2], M16, 16);
    SWAP_BLK(x[1], x[3], M16, 16);
}
#endif

/* The even bytes of w packed into the low 32 bits. */
static inline uint64_t pack_even(uint64_t w) {
    w &= M8;
    w = (w | (w >> 8)) & M16;
    return (w | (w >> 16)) & LO32;
}
/* The inverse of pack_even: the low 32 bits spread to the even bytes. */
static inline uint64_t spread_even(uint64_t v) {
    v &= LO32;
    v = (v | (v << 16)) & M16;
    return (v | (v << 8)) & M8;
}

/* In every kernel: d/s point at the part's first element (stream 0 for the shuffled
 * side), m elements, streams `st` bytes apart. They return the elements done. */

/* Byte loops for the tail, other element sizes and big-endian hosts. The stream-outer
 * order is blocked so that the source block stays in cache across the esize passes. */
static void shuffle_bytes(uint8_t *restrict d, const uint8_t *restrict s, size_t i0, size_t m,
                          size_t st, size_t esize) {
    const size_t blk = 4096;
    for (size_t b = i0; b < m; b += blk) {
        size_t c = m - b < blk ? m - b : blk;
        for (size_t k = 0; k < esize; k++) {
            uint8_t *restrict o = d + k * st + b;
            const uint8_t *restrict p = s + b * esize + k;
            for (size_t i = 0; i < c; i++) o[i] = p[i * esize];
        }
    }
}
static void unshuffle_bytes(uint8_t *restrict d, const uint8_t *restrict s, size_t i0, size_t m,
                            size_t st, size_t esize) {
    const size_t blk = 4096;
    for (size_t b = i0; b < m; b += blk) {
        size_t c = m - b < blk ? m - b : blk;
        for (size_t k = 0; k < esize; k++) {
            const uint8_t *restrict p = s + k * st + b;
            uint8_t *restrict o = d + b * esize + k;
            for (size_t i = 0; i < c; i++) o[i * esize] = p[i];
        }
    }
}

static size_t shuffle2(uint8_t *restrict d, const uint8_t *restrict s, size_t m, size_t st) {
    size_t i = 0;
    for (; i + 8 <= m; i += 8) {
        uint64_t w0 = ld64(s + 2 * i), w1 = ld64(s + 2 * i + 8);
        st64(d + i, pack_even(w0) | (pack_even(w1) << 32));
        st64(d + st + i, pack_even(w0 >> 8) | (pack_even(w1 >> 8) << 32));
    }
    return i;
}
static size_t unshuffle2(uint8_t *restrict d, const uint8_t *restrict s, size_t m, size_t st) {
    size_t i = 0;
    for (; i + 8 <= m; i += 8) {
        uint64_t y0 = ld64(s + i), y1 = ld64(s + st + i);
        st64(d + 2 * i, spread_even(y0) | (spread_even(y1) << 8));
        st64(d + 2 * i + 8, spread_even(y0 >> 32) | (spread_even(y1 >> 32) << 8));
    }
    return i;
}

#if defined(__SSE2__)
/* One round on E registers (E a constant, so the arrays stay in registers; the unroll
 * pragmas make sure of it at -O2 too, where the loops would otherwise go through the
 * stack at a third of the speed). */
#define UNPACK_ROUND(r, E)                                                                         \
    do {                                                                                           \
        __m128i t_[E];                                                                             \
        _Pragma("GCC unroll 16") for (int j_ = 0; j_ < (E) / 2; j_++) {                            \
            t_[2 * j_] = _mm_unpacklo_epi8(r[j_], r[j_ + (E) / 2]);                                \
            t_[2 * j_ + 1] = _mm_unpackhi_epi8(r[j_], r[j_ + (E) / 2]);                            \
        }                                                                                          \
        _Pragma("GCC unroll 16") for (int j_ = 0; j_ < (E); j_++) r[j_] = t_[j_];                  \
    } while (0)
#define DEFINE_SSE2_SHUFFLE(E, UNROUNDS)                                                           \
    static size_t shuffle##E(uint8_t *restrict d, const uint8_t *restrict s, size_t m,             \
                             size_t st) {                                                          \
        size_t i = 0;                                                                              \
        for (; i + 16 <= m; i += 16) {                                                             \
            __m128i r[E];                                                                          \
            _Pragma("GCC unroll 16") for (int j = 0; j < (E); j++) r[j] =                          \
                _mm_loadu_si128((const __m128i *)(const void *)(s + i * (E) + 16 * (size_t)j));    \
            UNPACK_ROUND(r, E);                                                                    \
            UNPACK_ROUND(r, E);                                                                    \
            UNPACK_ROUND(r, E);                                                                    \
            UNPACK_ROUND(r, E);                                                                    \
            _Pragma("GCC unroll 16") for (int k = 0; k < (E); k++)                                 \
                _mm_storeu_si128((__m128i *)(void *)(d + (size_t)k * st + i), r[k]);               \
        }                                                                                          \
        return i;                                                                                  \
    }                                                                                              \
    static size_t unshuffle##E(uint8_t *restrict d, const uint8_t *restrict s, size_t m,           \
                               size_t st) {                                                        \
        size_t i = 0;                                                                              \
        for (; i + 16 <= m; i += 16) {                                                             \
            __m128i r[E];                                                                          \
            _Pragma("GCC unroll 16") for (int k = 0; k < (E); k++) r[k] =                          \
                _mm_loadu_si128((const __m128i *)(const void *)(s + (size_t)k * st + i));          \
            _Pragma("GCC unroll 16") for (int k = 0; k < (UNROUNDS); k++) UNPACK_ROUND(r, E);      \
            _Pragma("GCC unroll 16") for (int j = 0; j < (E); j++)                                 \
                _mm_storeu_si128((__m128i *)(void *)(d + i * (E) + 16 * (size_t)j), r[j]);         \
        }                                                                                          \
        return i;                                                                                  \
    }
DEFINE_SSE2_SHUFFLE(4, 2)
DEFINE_SSE2_SHUFFLE(8, 3)
#else
static size_t shuffle4(uint8_t *restrict d, const uint8_t *restrict s, size_t m, size_t st) {
    size_t i = 0;
    for (; i + 8 <= m; i += 8) {
        /* w0 = e0|e1, w1 = e2|e3, w2 = e4|e5, w3 = e6|e7; regroup to x[j] = e_j|e_{j+4}. */
        const uint8_t *p = s + 4 * i;
        uint64_t w0 = ld64(p), w1 = ld64(p + 8), w2 = ld64(p + 16), w3 = ld64(p + 24);
        uint64_t x[4] = {(w0 & LO32) | (w2 << 32), (w0 >> 32) | (w2 & HI32),
                         (w1 & LO32) | (w3 << 32), (w1 >> 32) | (w3 & HI32)};
        transpose4x4x2(x);
        for (size_t k = 0; k < 4; k++) st64(d + k * st + i, x[k]);
    }
    return i;
}
static size_t unshuffle4(uint8_t *restrict d, const uint8_t *restrict s, size_t m, size_t st) {
    size_t i = 0;
    for (; i + 8 <= m; i += 8) {
        uint64_t x[4];
        for (size_t k = 0; k < 4; k++) x[k] = ld64(s + k * st + i);
        transpose4x4x2(x);
        uint8_t *p = d + 4 * i;
        st64(p, (x[0] & LO32) | (x[1] << 32));
        st64(p + 8, (x[2] & LO32) | (x[3] << 32));
        st64(p + 16, (x[0] >> 32) | (x[1] & HI32));
        st64(p + 24, (x[2] >> 32) | (x[3] & HI32));
    }
    return i;
}

static size_t shuffle8(uint8_t *restrict d, const uint8_t *restrict s, size_t m, size_t st) {
    size_t i = 0;
    for (; i + 8 <= m; i += 8) {
        uint64_t x[8];
        for (size_t j = 0; j < 8; j++) x[j] = ld64(s + 8 * (i + j));
        transpose8x8(x);
        for (size_t k = 0; k < 8; k++) st64(d + k * st + i, x[k]);
    }
    return i;
}
static inline void unshuffle8_group(uint8_t *restrict d, const uint8_t *restrict s, size_t st,
                                    size_t i) {
    uint64_t x[8];
    for (size_t k = 0; k < 8; k++) x[k] = ld64(s + k * st + i);
    transpose8x8(x);
    for (size_t j = 0; j < 8; j++) st64(d + 8 * (i + j), x[j]);
}
static size_t unshuffle8(uint8_t *restrict d, const uint8_t *restrict s, size_t m, size_t st) {
    size_t i = 0;
    /* Two groups per step read 16 contiguous bytes of each of the 8 streams: about 2x
     * faster than one group, as each stream's cache lines are used before eviction. */
    for (; i + 16 <= m; i += 16) {
        unshuffle8_group(d, s, st, i);
        unshuffle8_group(d, s, st, i + 8);
    }
    for (; i + 8 <= m; i += 8) unshuffle8_group(d, s, st, i);
    return i;
}
#endif

void afmt__shuffle_part(void *dst, const void *src, size_t m, size_t n, size_t e0, size_t esize) {
    uint8_t *d = (uint8_t *)dst + e0;
    const uint8_t *s = src;
    if (m == 0 || esize == 0) return;
    if (esize == 1) {
        memcpy(d, s, m);
        return;
    }
    size_t done = 0;
    if (!afmt__host_is_big_endian()) {
        if (esize == 2)
            done = shuffle2(d, s, m, n);
        else if (esize == 4)
            done = shuffle4(d, s, m, n);
        else if (esize == 8)
            done = shuffle8(d, s, m, n);
    }
    shuffle_bytes(d, s, done, m, n, esize);
}

void afmt__unshuffle_part(void *dst, const void *src, size_t m, size_t n, size_t e0, size_t esize) {
    uint8_t *d = dst;
    const uint8_t *s = (const uint8_t *)src + e0;
    if (m == 0 || esize == 0) return;
    if (esize == 1) {
        memcpy(d, s, m);
        return;
    }
    size_t done = 0;
    if (!afmt__host_is_big_endian()) {
        if (esize == 2)
            done = unshuffle2(d, s, m, n);
        else if (esize == 4)
            done = unshuffle4(d, s, m, n);
        else if (esize == 8)
            done = unshuffle8(d, s, m, n);
    }
    unshuffle_bytes(d, s, done, m, n, esize);
}

void afmt__shuffle(void *dst, const void *src, size_t n, size_t esize) {
    afmt__shuffle_part(dst, src, n, n, 0, esize);
}

void afmt__unshuffle(void *dst, const void *src, size_t n, size_t esize) {
    afmt__unshuffle_part(dst, src, n, n, 0, esize);
}
