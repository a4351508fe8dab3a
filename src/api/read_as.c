/* read_as.c - afmt_read_as: afmt_read into a buffer of another dtype. The stored elements
 * are read (afmt__read_region, as afmt_read) into a temporary buffer of at most
 * AFMT_READ_AS_PIECE bytes at a time and converted (common/convert.h) into the caller's.
 * A piece is a run of the slowest dimension that is not taken whole, all of the faster
 * dimensions and one index of each slower one, so that it is one contiguous run of the
 * caller's buffer too. */
#include <stdio.h>
#include <stdlib.h>

#include "api/file.h"
#include "api/read.h"
#include "api/read_as.h"
#include "common/convert.h"
#include "common/util.h"

#ifdef AFMT_TESTING
static uint64_t piece_bytes;
void afmt__set_read_as_piece(uint64_t bytes) {
    piece_bytes = bytes;
}
#define PIECE_BYTES (piece_bytes ? piece_bytes : AFMT_READ_AS_PIECE)
#else
#define PIECE_BYTES AFMT_READ_AS_PIECE
#endif

/* The AFMT_ERANGE of element sel (its index in the selection, C order) of a piece. */
static int range_fail(afmt_file *f, const afmt_array *arr, const uint64_t *start,
                      const uint64_t *count, const uint64_t *inner, uint64_t sel, const void *value,
                      afmt_dtype t) {
    char coords[AFMT_MAX_NDIM * 22 + 4], v[64];
    size_t len = 0;
    coords[len++] = '[';
    for (int d = 0; d < arr->d.ndim; d++) {
        uint64_t c = start[d] + (sel / inner[d]) % count[d];
        int w = snprintf(coords + len, sizeof coords - len, "%s%llu", d ? ", " : "",
                         (unsigned long long)c);
        if (w > 0) len += (size_t)w;
    }
    coords[len++] = ']';
    coords[len] = 0;
    afmt__value_str(v, sizeof v, value, arr->d.dtype);
    return afmt__fail(f->errmsg, AFMT_ERANGE,
                      "afmt_read_as(\"%s\"): element %s (index %llu of the selection) (%s, %s) "
                      "does not fit %s %s",
                      arr->d.name, coords, (unsigned long long)sel, v,
                      afmt__dtype_name(arr->d.dtype), afmt__dtype_name(t),
                      afmt__dtype_range_str(t));
}

int afmt_read_as(afmt_file *f, const char *name, const uint64_t *start, const uint64_t *count,
                 afmt_dtype t, void *buf) {
    const char *fn = "afmt_read_as";
    int rc = afmt__check(f, fn);
    if (rc != AFMT_OK) return rc;
    afmt_array *arr;
    if ((rc = afmt__lookup(f, fn, name, &arr)) != AFMT_OK) return rc;
    if (!buf) return afmt__fail(f->errmsg, AFMT_EINVAL, "afmt_read_as(\"%s\"): buf is NULL", name);
    if (!afmt__dtype_valid((int)t))
        return afmt__fail(f->errmsg, AFMT_EINVAL, "afmt_read_as(\"%s\"): dtype %d is not valid",
                          name, (int)t);
    if ((rc = afmt__check_region(f, fn, arr, start, count)) != AFMT_OK) return rc;
    afmt__drain_settle(f); /* a background commit's helper reads the index until then */
    if (t == arr->d.dtype) return afmt__read_region(f, arr, start, count, buf); /* no copy */

    int nd = arr->d.ndim;
    afmt_dtype st = arr->d.dtype;
    size_t es = afmt__dtype_size(st), et = afmt__dtype_size(t);
    /* inner[d]: elements of the selection per index of dimension d. */
    uint64_t inner[AFMT_MAX_NDIM];
    for (int d = nd - 1; d >= 0; d--) inner[d] = d == nd - 1 ? 1 : inner[d + 1] * count[d + 1];
    /* k: the slowest dimension whose one index fits a piece; step: its indexes per piece. */
    uint64_t limit = PIECE_BYTES, step = 1;
    int k = 0;
    if (nd > 0) {
        while (k < nd - 1 && inner[k] * es > limit) k++;
        step = limit / (inner[k] * es);
        if (step < 1) step = 1;
        if (step > count[k]) step = count[k];
    }
    uint64_t piece_elems = nd > 0 ? step * inner[k] : 1;
    uint8_t *tmp = malloc((size_t)piece_elems * es);
    if (!tmp)
        return afmt__fail(f->errmsg, AFMT_ENOMEM,
                          "afmt_read_as(\"%s\"): out of memory for a piece of %llu bytes", name,
                          (unsigned long long)(piece_elems * es));

    uint64_t idx[AFMT_MAX_NDIM] = {0}, ps[AFMT_MAX_NDIM], pc[AFMT_MAX_NDIM];
    for (int d = 0; d < nd; d++) ps[d] = start[d], pc[d] = d < k ? 1 : count[d];
    for (;;) {
        /* The piece at idx[0, k]: its place in the selection, its region, its elements. */
        uint64_t off = 0;
        for (int d = 0; d <= k && d < nd; d++) {
            off += idx[d] * inner[d];
            ps[d] = start[d] + idx[d];
        }
        uint64_t nel = 1;
        if (nd > 0) {
            pc[k] = count[k] - idx[k] < step ? count[k] - idx[k] : step;
            nel = pc[k] * inner[k];
        }
        rc = afmt__read_region(f, arr, nd ? ps : NULL, nd ? pc : NULL, tmp);
        if (rc != AFMT_OK) break;
        size_t bad = 0;
        rc = afmt__convert((uint8_t *)buf + off * et, t, tmp, st, (size_t)nel, &bad);
        if (rc == AFMT_ERANGE) {
            rc = range_fail(f, arr, start, count, inner, off + bad, tmp + bad * es, t);
            break;
        }
        if (rc != AFMT_OK) break;
        /* The next piece: along k by step, then the slower dimensions like an odometer. */
        int d = k;
        if (nd == 0) break;
        idx[k] += step;
        while (d > 0 && idx[d] >= count[d]) {
            idx[d] = 0;
            idx[--d]++;
        }
        if (idx[0] >= count[0]) break;
    }
    free(tmp);
    return rc;
}
