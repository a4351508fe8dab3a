/* util.h - little-endian encoding, growable byte buffers, checked arithmetic, dtype sizes. */
#ifndef AFMT_UTIL_H
#define AFMT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "afmt.h"

/* ---- little-endian load/store (the file is little-endian; hosts may not be) ---- */
static inline void afmt__put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void afmt__put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t afmt__get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static inline uint64_t afmt__get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* 1 on a big-endian host: element bytes are swapped between memory and file there. */
static inline int afmt__host_is_big_endian(void) {
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 0;
}
/* Reverses the bytes of each of n elements of size esize in place (no-op for esize 1). */
void afmt__bswap_elems(void *p, size_t n, size_t esize);

/* The splitmix64 finalizer: every input bit affects every output bit. Unkeyed: the same
 * on every rank (the exchange's owner of a chunk); hmap.c keys it with a secret. */
static inline uint64_t afmt__mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x;
}

/* ---- checked u64 arithmetic: return 0 on overflow ---- */
static inline int afmt__mul_ok(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}
static inline int afmt__add_ok(uint64_t a, uint64_t b, uint64_t *out) {
    if (b > UINT64_MAX - a) return 0;
    *out = a + b;
    return 1;
}

/* ---- growable byte buffer used to encode footers and messages ---- */
typedef struct {
    uint8_t *data;
    size_t len, cap;
    int oom; /* sticky: a failed growth makes every later append a no-op */
} afmt_buf;

void afmt__buf_init(afmt_buf *b);
void afmt__buf_free(afmt_buf *b);
/* Ensures room for n more bytes; returns 0 or AFMT_ENOMEM (and sets b->oom). */
int afmt__buf_reserve(afmt_buf *b, size_t n);
void afmt__buf_append(afmt_buf *b, const void *p, size_t n);
void afmt__buf_u32(afmt_buf *b, uint32_t v);
void afmt__buf_u64(afmt_buf *b, uint64_t v);
void afmt__buf_zero(afmt_buf *b, size_t n);

/* ---- growing buffers and arrays: the one realloc policy ---- */
/* Grows *p (realloc, contents kept) to room for at least need elements of esz bytes;
 * *cap counts elements. first == 0: exactly need (at least 1) when it grows, for buffers
 * whose size is known; else doubling from *cap (from first if *cap is 0), which keeps
 * appends amortized O(1) (and need 0 allocates nothing). Exact growth makes a real buffer
 * even for need 0 (no NULL + 0). AFMT_OK, or
 * AFMT_ENOMEM with *p and *cap unchanged. */
int afmt__grow(void **p, uint64_t *cap, uint64_t need, size_t esz, uint64_t first);
/* afmt__grow on a typed array: AFMT__GROW(f->staged, f->cap_staged, n + 1, 64). */
#define AFMT__GROW(arr, cap, need, first)                                                          \
    afmt__grow((void **)&(arr), &(cap), (need), sizeof *(arr), (first))
/* A byte buffer grown to exactly need bytes: afmt__grow(buf, cap, need, 1, 0). */
int afmt__grow_bytes(uint8_t **buf, uint64_t *cap, uint64_t need);

/* The largest single transfer: a storage request, an MPI message, a piece of a commit's
 * data write. 1 GiB fits an int count with room, and is large enough that the cost per
 * request vanishes. */
#define AFMT_PIECE ((uint64_t)1 << 30)
/* Asks the kernel to back the whole 2 MiB pages inside [p, p+n) with transparent huge
 * pages (Linux; a no-op elsewhere and for buffers under 4 MiB). Block-sized buffers are
 * written once per block: with 4 KiB pages a fresh buffer costs a page fault every
 * 4 KiB, which profiles showed as a fifth of a compressed write. A hint: failure is
 * harmless. */
void afmt__advise_huge(void *p, size_t n);

/* ---- whole transfers on a descriptor (spill file, POSIX backend) ---- */
/* n bytes at off through fd, at most max bytes per system call, retried after EINTR and
 * short transfers. 0: done. -1: errno says why, *done holds the bytes moved before it. A
 * write that moves nothing sets ENOSPC (it would loop forever); a read that meets the end
 * of the file returns 1 instead. */
int afmt__pread_all(int fd, void *p, uint64_t n, uint64_t off, uint64_t max, uint64_t *done);
int afmt__pwrite_all(int fd, const void *p, uint64_t n, uint64_t off, uint64_t max, uint64_t *done);

/* ---- dtypes ---- */
/* Element size in bytes, 0 for an invalid dtype. */
size_t afmt__dtype_size(afmt_dtype t);
/* "float64" etc., "?" for an invalid dtype. */
const char *afmt__dtype_name(afmt_dtype t);
int afmt__dtype_valid(int t);

/* BOOL elements: every nonzero byte of p[0..n) becomes 1 (format.md 6: nonzero is true). */
void afmt__bool_normalize(void *p, size_t n);

/* XXH3-64 of n bytes: the one checksum of the format. */
uint64_t afmt__checksum(const void *p, size_t n);

#endif
