/* golden.h - the text form of a golden file's content (tests/golden/MANIFEST), shared by
 * golden_gen.c, which renders what it wrote (from its own model of the arrays, never from
 * reading the file back), and golden_check.c, which renders what it reads.
 *
 * One line per array and per attribute:
 *
 *   array NAME DTYPE shape [S0 S1] chunk [C0 C1] dims [D0 D1] xxh64 HEX values V0 V1 ...
 *   attr ARRAY KEY DTYPE n N [V0 V1 ...]        (ARRAY "-" for a file attribute; UINT8
 *                                                 values also shown as a quoted string)
 *   noattr ARRAY KEY                            (absent: deleted with its array)
 *
 * xxh64 is XXH64 (seed 0) of every element in C order, little endian (the file's own
 * byte order); "values" shows the first and the last GOLDEN_SHOWN / 2 elements, so that a
 * reader of the manifest sees what the array holds. Floats print with %.9g / %.17g (exact). */
#ifndef AFMT_GOLDEN_H
#define AFMT_GOLDEN_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "afmt.h"

#define GOLDEN_SHOWN 6

static const char *const golden_dtypes[] = {"BOOL",   "INT8",    "INT16",  "INT32",
                                            "INT64",  "UINT8",   "UINT16", "UINT32",
                                            "UINT64", "FLOAT32", "FLOAT64"};
#define GOLDEN_NDTYPES ((int)(sizeof golden_dtypes / sizeof golden_dtypes[0]))

static inline const char *golden_dtype_name(afmt_dtype t) {
    return (int)t >= 0 && (int)t < GOLDEN_NDTYPES ? golden_dtypes[t] : "?";
}

static inline int golden_dtype_parse(const char *s, afmt_dtype *t) {
    for (int i = 0; i < GOLDEN_NDTYPES; i++)
        if (strcmp(s, golden_dtypes[i]) == 0) {
            *t = (afmt_dtype)i;
            return 0;
        }
    return -1;
}

static inline size_t golden_esize(afmt_dtype t) {
    static const size_t sz[] = {1, 1, 2, 4, 8, 1, 2, 4, 8, 4, 8};
    return (int)t >= 0 && (int)t < GOLDEN_NDTYPES ? sz[t] : 0;
}

/* Elements of an array of the given shape (a scalar: 1). */
static inline uint64_t golden_elems(int ndim, const uint64_t *shape) {
    uint64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    return n;
}

/* Element i of data (type t) as text. */
static inline void golden_put_value(FILE *fp, afmt_dtype t, const void *data, uint64_t i) {
    const uint8_t *p = (const uint8_t *)data + i * golden_esize(t);
    switch (t) {
    case AFMT_BOOL:
    case AFMT_UINT8:
        fprintf(fp, "%u", (unsigned)p[0]);
        break;
    case AFMT_INT8:
        fprintf(fp, "%d", (int)(int8_t)p[0]);
        break;
    case AFMT_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        fprintf(fp, "%d", (int)v);
        break;
    }
    case AFMT_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        fprintf(fp, "%u", (unsigned)v);
        break;
    }
    case AFMT_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        fprintf(fp, "%" PRId32, v);
        break;
    }
    case AFMT_UINT32: {
        uint32_t v;
        memcpy(&v, p, 4);
        fprintf(fp, "%" PRIu32, v);
        break;
    }
    case AFMT_INT64: {
        int64_t v;
        memcpy(&v, p, 8);
        fprintf(fp, "%" PRId64, v);
        break;
    }
    case AFMT_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        fprintf(fp, "%" PRIu64, v);
        break;
    }
    case AFMT_FLOAT32: {
        float v;
        memcpy(&v, p, 4);
        fprintf(fp, "%.9g", (double)v);
        break;
    }
    case AFMT_FLOAT64: {
        double v;
        memcpy(&v, p, 8);
        fprintf(fp, "%.17g", v);
        break;
    }
    }
}

static inline void golden_put_dims(FILE *fp, const char *what, int ndim, const uint64_t *v) {
    fprintf(fp, " %s [", what);
    for (int d = 0; d < ndim; d++) fprintf(fp, "%s%" PRIu64, d ? " " : "", v[d]);
    fputc(']', fp);
}

/* The array line of info with content data (every element, C order). */
static inline void golden_put_array(FILE *fp, const afmt_info *in, const void *data) {
    uint64_t n = golden_elems(in->ndim, in->shape);
    fprintf(fp, "array %s %s", in->name, golden_dtype_name(in->dtype));
    golden_put_dims(fp, "shape", in->ndim, in->shape);
    golden_put_dims(fp, "chunk", in->ndim, in->chunk);
    fputs(" dims [", fp);
    for (int d = 0; d < in->ndim; d++) fprintf(fp, "%s%s", d ? " " : "", in->dims[d]);
    fprintf(fp, "] xxh64 %016llx values",
            (unsigned long long)XXH64(data, (size_t)n * golden_esize(in->dtype), 0));
    for (uint64_t i = 0; i < n; i++) {
        if (n > GOLDEN_SHOWN && i == GOLDEN_SHOWN / 2) {
            fputs(" ...", fp); /* then the last GOLDEN_SHOWN / 2 */
            i = n - GOLDEN_SHOWN / 2;
        }
        fputc(' ', fp);
        golden_put_value(fp, in->dtype, data, i);
    }
    fputc('\n', fp);
}

/* The attr line of n values of type t (array NULL: a file attribute). */
static inline void golden_put_attr(FILE *fp, const char *array, const char *key, afmt_dtype t,
                                   uint64_t n, const void *values) {
    fprintf(fp, "attr %s %s %s n %" PRIu64 " [", array ? array : "-", key, golden_dtype_name(t), n);
    for (uint64_t i = 0; i < n; i++) {
        if (i) fputc(' ', fp);
        golden_put_value(fp, t, values, i);
    }
    fputc(']', fp);
    if (t == AFMT_UINT8) {
        fputs(" \"", fp);
        for (uint64_t i = 0; i < n; i++) {
            unsigned c = ((const uint8_t *)values)[i];
            if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
                fputc((int)c, fp);
            else
                fprintf(fp, "\\x%02x", c);
        }
        fputc('"', fp);
    }
    fputc('\n', fp);
}

/* ---- layout lines (format v2 and later entries of the manifest) ------------------------
 *
 *   slot version V                       the version of the superblock slot in use
 *   footer ID version V [segments N [ranges overlap|apart]] [base]
 *
 * one footer line per layer of the chain, oldest first: the footer's version, for a v2
 * footer the number of index segments in its root table (docs/format.md 9.2) and, for
 * two or more, whether the key ranges of two of them overlap (writers whose chunks
 * interleave in key order), and "base" for a layer flagged BASE (a compacted file).
 * Rendered from the file's bytes by the fixed positions of docs/format.md 3.1, 5.1 and
 * 9.2, not through the library: they say which structures a golden file exercises, so
 * that a file regenerated in another format, or with one segment where it should have
 * several, does not go unnoticed. */

static inline uint32_t golden_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t golden_u64(const uint8_t *p) {
    return (uint64_t)golden_u32(p) | (uint64_t)golden_u32(p + 4) << 32;
}

static inline int golden_key_lt(const uint8_t *a, const uint8_t *b) { /* (array, chunk) */
    uint64_t a0 = golden_u64(a), b0 = golden_u64(b);
    return a0 != b0 ? a0 < b0 : golden_u64(a + 8) < golden_u64(b + 8);
}

/* The valid slot of the highest generation in p[0, n) (docs/format.md 3.3, without the
 * checks that need the chain): its offset, or -1. */
static inline long golden_pick_slot(const uint8_t *p, size_t n) {
    long s = -1;
    uint64_t gen = 0;
    for (size_t at = 0; at <= 2048; at += 2048) {
        if (n < at + 128 || memcmp(p + at, "AFMTSUPR", 8) != 0 ||
            XXH3_64bits(p + at, 120) != golden_u64(p + at + 120))
            continue;
        if (s < 0 || golden_u64(p + at + 32) > gen) {
            s = (long)at;
            gen = golden_u64(p + at + 32);
        }
    }
    return s;
}

/* Writes the layout lines of the file image p[0, n) to fp; -1 (and a line saying why) if
 * it does not hold a readable chain. */
static inline int golden_put_layout(FILE *fp, const uint8_t *p, size_t n) {
    enum { MAXL = 64 };
    long s = golden_pick_slot(p, n);
    if (s < 0) {
        fputs("layout: no valid slot\n", fp);
        return -1;
    }
    const uint8_t *slot = p + s;
    fprintf(fp, "slot version %u\n", golden_u32(slot + 8));
    uint64_t off[MAXL], len[MAXL];
    int nl = 0;
    for (uint64_t o = golden_u64(slot + 40), l = golden_u64(slot + 48); l && nl < MAXL; nl++) {
        if (o > n || l > n - o || l < 184 || memcmp(p + o, "AFMTLAYR", 8) != 0) {
            fprintf(fp, "layout: no footer at %llu\n", (unsigned long long)o);
            return -1;
        }
        off[nl] = o;
        len[nl] = l;
        o = golden_u64(p + o + 24);
        l = golden_u64(p + off[nl] + 32);
    }
    for (int k = nl - 1; k >= 0; k--) {
        const uint8_t *f = p + off[k];
        uint32_t v = golden_u32(f + 8);
        fprintf(fp, "footer %llu version %u", (unsigned long long)golden_u64(f + 16), v);
        if (v >= 2) {
            uint64_t ns = golden_u64(f + 120), rs = golden_u32(f + 152);
            uint64_t at = golden_u32(f + 12) + golden_u64(f + 104);
            fprintf(fp, " segments %llu", (unsigned long long)ns);
            if (ns > len[k] / 80 || at + ns * rs > len[k]) {
                fputs(" (root table outside the footer)\n", fp);
                return -1;
            }
            int overlap = 0;
            for (uint64_t i = 0; i < ns; i++)
                for (uint64_t j = i + 1; j < ns; j++) {
                    const uint8_t *a = f + at + i * rs, *b = f + at + j * rs;
                    overlap |= !golden_key_lt(a + 56, b + 40) && !golden_key_lt(b + 56, a + 40);
                }
            if (ns >= 2) fputs(overlap ? " ranges overlap" : " ranges apart", fp);
        }
        if (golden_u32(f + 60) & 1) fputs(" base", fp);
        fputc('\n', fp);
    }
    return 0;
}

#endif
