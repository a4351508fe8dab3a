/* shuffle.c - byte transpose by element size (the shuffle pre-filter).
 *
 * esize 2, 4 and 8 take a SWAR path: 8 elements are loaded as esize 64-bit words and
 * transposed in registers into one 64-bit word per output stream. Plain byte loops run
 * at 1-2 GB/s at -O2 (gcc only vectorizes the strided byte gathers at -O3); the SWAR
 * loops run at several GB/s at -O2 and need no intrinsics. They assume a little-endian
 * host (byte k of a loaded word = bits 8k..8k+7); other hosts use the byte loops. */
#include "shuffle.h"

#include <stdint.h>
#include <string.h>

#include "util.h"

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

/* Byte loops for the tail, other element sizes and big-endian hosts. The stream-outer
 * order is blocked so that the source block stays in cache across the esize passes. */
static void shuffle_bytes(uint8_t *restrict dst, const uint8_t *restrict src, size_t i0, size_t n,
                          size_t esize) {
    const size_t blk = 4096;
    for (size_t b = i0; b < n; b += blk) {
        size_t m = n - b < blk ? n - b : blk;
        for (size_t k = 0; k < esize; k++) {
            uint8_t *restrict o = dst + k * n + b;
            const uint8_t *restrict p = src + b * esize + k;
            for (size_t i = 0; i < m; i++) o[i] = p[i * esize];
        }
    }
}
static void unshuffle_bytes(uint8_t *restrict dst, const uint8_t *restrict src, size_t i0, size_t n,
                            size_t esize) {
    const size_t blk = 4096;
    for (size_t b = i0; b < n; b += blk) {
        size_t m = n - b < blk ? n - b : blk;
        for (size_t k = 0; k < esize; k++) {
            const uint8_t *restrict p = src + k * n + b;
            uint8_t *restrict o = dst + b * esize + k;
            for (size_t i = 0; i < m; i++) o[i * esize] = p[i];
        }
    }
}

static size_t shuffle2(uint8_t *restrict d, const uint8_t *restrict s, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w0 = ld64(s + 2 * i), w1 = ld64(s + 2 * i + 8);
        st64(d + i, pack_even(w0) | (pack_even(w1) << 32));
        st64(d + n + i, pack_even(w0 >> 8) | (pack_even(w1 >> 8) << 32));
    }
    return i;
}
static size_t unshuffle2(uint8_t *restrict d, const uint8_t *restrict s, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t y0 = ld64(s + i), y1 = ld64(s + n + i);
        st64(d + 2 * i, spread_even(y0) | (spread_even(y1) << 8));
        st64(d + 2 * i + 8, spread_even(y0 >> 32) | (spread_even(y1 >> 32) << 8));
    }
    return i;
}

static size_t shuffle4(uint8_t *restrict d, const uint8_t *restrict s, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        /* w0 = e0|e1, w1 = e2|e3, w2 = e4|e5, w3 = e6|e7; regroup to x[j] = e_j|e_{j+4}. */
        const uint8_t *p = s + 4 * i;
        uint64_t w0 = ld64(p), w1 = ld64(p + 8), w2 = ld64(p + 16), w3 = ld64(p + 24);
        uint64_t x[4] = {(w0 & LO32) | (w2 << 32), (w0 >> 32) | (w2 & HI32),
                         (w1 & LO32) | (w3 << 32), (w1 >> 32) | (w3 & HI32)};
        transpose4x4x2(x);
        for (size_t k = 0; k < 4; k++) st64(d + k * n + i, x[k]);
    }
    return i;
}
static size_t unshuffle4(uint8_t *restrict d, const uint8_t *restrict s, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x[4];
        for (size_t k = 0; k < 4; k++) x[k] = ld64(s + k * n + i);
        transpose4x4x2(x);
        uint8_t *p = d + 4 * i;
        st64(p, (x[0] & LO32) | (x[1] << 32));
        st64(p + 8, (x[2] & LO32) | (x[3] << 32));
        st64(p + 16, (x[0] >> 32) | (x[1] & HI32));
        st64(p + 24, (x[2] >> 32) | (x[3] & HI32));
    }
    return i;
}

static size_t shuffle8(uint8_t *restrict d, const uint8_t *restrict s, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x[8];
        for (size_t j = 0; j < 8; j++) x[j] = ld64(s + 8 * (i + j));
        transpose8x8(x);
        for (size_t k = 0; k < 8; k++) st64(d + k * n + i, x[k]);
    }
    return i;
}
static inline void unshuffle8_group(uint8_t *restrict d, const uint8_t *restrict s, size_t n,
                                    size_t i) {
    uint64_t x[8];
    for (size_t k = 0; k < 8; k++) x[k] = ld64(s + k * n + i);
    transpose8x8(x);
    for (size_t j = 0; j < 8; j++) st64(d + 8 * (i + j), x[j]);
}
static size_t unshuffle8(uint8_t *restrict d, const uint8_t *restrict s, size_t n) {
    size_t i = 0;
    /* Two groups per step read 16 contiguous bytes of each of the 8 streams: about 2x
     * faster than one group, as each stream's cache lines are used before eviction. */
    for (; i + 16 <= n; i += 16) {
        unshuffle8_group(d, s, n, i);
        unshuffle8_group(d, s, n, i + 8);
    }
    for (; i + 8 <= n; i += 8) unshuffle8_group(d, s, n, i);
    return i;
}

void afmt_shuffle(void *dst, const void *src, size_t n, size_t esize) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (n == 0 || esize == 0) return;
    if (esize == 1) {
        memcpy(d, s, n);
        return;
    }
    size_t done = 0;
    if (!afmt_host_is_big_endian()) {
        if (esize == 2)
            done = shuffle2(d, s, n);
        else if (esize == 4)
            done = shuffle4(d, s, n);
        else if (esize == 8)
            done = shuffle8(d, s, n);
    }
    shuffle_bytes(d, s, done, n, esize);
}

void afmt_unshuffle(void *dst, const void *src, size_t n, size_t esize) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (n == 0 || esize == 0) return;
    if (esize == 1) {
        memcpy(d, s, n);
        return;
    }
    size_t done = 0;
    if (!afmt_host_is_big_endian()) {
        if (esize == 2)
            done = unshuffle2(d, s, n);
        else if (esize == 4)
            done = unshuffle4(d, s, n);
        else if (esize == 8)
            done = unshuffle8(d, s, n);
    }
    unshuffle_bytes(d, s, done, n, esize);
}
