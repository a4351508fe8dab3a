/* util.c - byte buffers and the growth policy, whole transfers on a descriptor, dtype
 * table, byte swapping and the checksum. */
#include "common/util.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xxhash.h>

void afmt__advise_huge(void *p, size_t n) {
#if defined(MADV_HUGEPAGE)
    /* Only whole 2 MiB pages inside the buffer can be huge; smaller buffers are left. */
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (n < 2 * huge) return;
    uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1);
    uintptr_t hi = ((uintptr_t)p + n) & ~(huge - 1);
    if (hi > lo) (void)madvise((void *)lo, (size_t)(hi - lo), MADV_HUGEPAGE);
#else
    (void)p;
    (void)n;
#endif
}

int afmt__grow(void **p, uint64_t *cap, uint64_t need, size_t esz, uint64_t first) {
    if (need <= *cap && (*p || first)) return AFMT_OK;
    uint64_t nc = need ? need : 1;
    if (first) {
        nc = *cap ? *cap : first;
        while (nc < need) nc = nc > UINT64_MAX / 2 ? need : nc * 2;
    }
    if (nc > SIZE_MAX / esz) return AFMT_ENOMEM;
    void *q = realloc(*p, (size_t)nc * esz);
    if (!q) return AFMT_ENOMEM;
    afmt__advise_huge(q, (size_t)nc * esz);
    *p = q;
    *cap = nc;
    return AFMT_OK;
}

int afmt__grow_bytes(uint8_t **buf, uint64_t *cap, uint64_t need) {
    return afmt__grow((void **)buf, cap, need, 1, 0);
}

/* The one loop behind afmt__pread_all and afmt__pwrite_all. */
static int pio_all(int fd, int write, uint8_t *p, uint64_t n, uint64_t off, uint64_t max,
                   uint64_t *done) {
    *done = 0;
    if (max > SSIZE_MAX) max = SSIZE_MAX;
    while (*done < n) {
        size_t k = (size_t)(n - *done < max ? n - *done : max);
        off_t at = (off_t)(off + *done);
        ssize_t r = write ? pwrite(fd, p + *done, k, at) : pread(fd, p + *done, k, at);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0 && !write) return 1;
        if (r == 0) {
            errno = ENOSPC; /* no progress and no errno: treat as a full device */
            return -1;
        }
        *done += (uint64_t)r;
    }
    return 0;
}

int afmt__pread_all(int fd, void *p, uint64_t n, uint64_t off, uint64_t max, uint64_t *done) {
    return pio_all(fd, 0, p, n, off, max, done);
}

int afmt__pwrite_all(int fd, const void *p, uint64_t n, uint64_t off, uint64_t max,
                     uint64_t *done) {
    return pio_all(fd, 1, (uint8_t *)(uintptr_t)p, n, off, max, done);
}

void afmt__bswap_elems(void *p, size_t n, size_t esize) {
    if (esize <= 1) return;
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++, b += esize)
        for (size_t k = 0; k < esize / 2; k++) {
            uint8_t t = b[k];
            b[k] = b[esize - 1 - k];
            b[esize - 1 - k] = t;
        }
}

void afmt__buf_init(afmt_buf *b) {
    memset(b, 0, sizeof *b);
}

void afmt__buf_free(afmt_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

int afmt__buf_reserve(afmt_buf *b, size_t n) {
    if (b->oom) return AFMT_ENOMEM;
    if (n <= b->cap - b->len) return AFMT_OK;
    size_t want = b->len + n;
    if (want < b->len) {
        b->oom = 1;
        return AFMT_ENOMEM;
    }
    uint64_t cap = b->cap;
    if (afmt__grow((void **)&b->data, &cap, want, 1, 256) != AFMT_OK) {
        b->oom = 1;
        return AFMT_ENOMEM;
    }
    b->cap = (size_t)cap;
    return AFMT_OK;
}

void afmt__buf_append(afmt_buf *b, const void *p, size_t n) {
    if (n == 0 || afmt__buf_reserve(b, n) != AFMT_OK) return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void afmt__buf_u32(afmt_buf *b, uint32_t v) {
    uint8_t t[4];
    afmt__put_u32(t, v);
    afmt__buf_append(b, t, 4);
}

void afmt__buf_u64(afmt_buf *b, uint64_t v) {
    uint8_t t[8];
    afmt__put_u64(t, v);
    afmt__buf_append(b, t, 8);
}

void afmt__buf_zero(afmt_buf *b, size_t n) {
    if (n == 0 || afmt__buf_reserve(b, n) != AFMT_OK) return;
    memset(b->data + b->len, 0, n);
    b->len += n;
}

static const struct {
    size_t size;
    const char *name;
} dtypes[] = {
    [AFMT_BOOL] = {1, "bool"},       [AFMT_INT8] = {1, "int8"},       [AFMT_INT16] = {2, "int16"},
    [AFMT_INT32] = {4, "int32"},     [AFMT_INT64] = {8, "int64"},     [AFMT_UINT8] = {1, "uint8"},
    [AFMT_UINT16] = {2, "uint16"},   [AFMT_UINT32] = {4, "uint32"},   [AFMT_UINT64] = {8, "uint64"},
    [AFMT_FLOAT32] = {4, "float32"}, [AFMT_FLOAT64] = {8, "float64"},
};

int afmt__dtype_valid(int t) {
    return t >= (int)AFMT_BOOL && t <= (int)AFMT_FLOAT64;
}

size_t afmt__dtype_size(afmt_dtype t) {
    return afmt__dtype_valid((int)t) ? dtypes[t].size : 0;
}

const char *afmt__dtype_name(afmt_dtype t) {
    return afmt__dtype_valid((int)t) ? dtypes[t].name : "?";
}

void afmt__bool_normalize(void *p, size_t n) {
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++) b[i] = b[i] != 0;
}

uint64_t afmt__checksum(const void *p, size_t n) {
    return (uint64_t)XXH3_64bits(p, n);
}
