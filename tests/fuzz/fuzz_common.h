/* fuzz_common.h - shared pieces of the libFuzzer targets (fuzz_open.c, fuzz_read.c) and
 * their plain regression driver (fuzz_regress.c).
 *
 * A target gets a candidate file image, stores it as a named image of the memory backend
 * and opens it through the public API (afmt_open needs MPI, so the first call runs
 * MPI_Init once; LLVMFuzzerInitialize does it too). Every input is tried twice:
 *
 *  - as it is: checksum and structure checks of damaged bytes;
 *  - "fixed": with every checksum recomputed (fz_reseal of fuzz_mutator.c: slots, every
 *    footer the slots, trailers and prev pointers name, their trailers and block
 *    checksums), so that mutated bytes get past XXH3 and reach the record decoders, the
 *    index merge, the codecs and the read path, as a buggy writer's file would. (Inputs
 *    from the structure-aware mutator are sealed already; the second pass is for the
 *    rest, e.g. crash files and byte-level mutants.)
 *
 * Contract checks: a call returns one of the codes its documentation allows, with a
 * message; any other outcome aborts (a crash for libFuzzer and for the driver). */
#ifndef AFMT_FUZZ_COMMON_H
#define AFMT_FUZZ_COMMON_H

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/lsan_interface.h>
#define FUZZ_LSAN 1
#endif
#endif

#include "afmt.h"
#include "api/file.h"
#include "common/util.h"
#include "fuzz_mutator.h"
#include "storage/storage.h"
#include "tu_dtype.h"

/* Limits that keep one input fast and small (a fuzzed shape can name petabytes). */
#define FUZZ_MAX_ARRAY_BYTES ((uint64_t)16 << 20) /* arrays larger are not read */
#define FUZZ_MAX_CHUNKS      ((uint64_t)1 << 16)  /* ... nor arrays of more chunks */
#define FUZZ_MAX_BLOCK_BYTES ((uint64_t)64 << 20) /* files naming larger blocks: no reads */
#define FUZZ_MAX_ATTR_VALUES ((uint64_t)1 << 20)
#define FUZZ_MAX_CHAIN       64

#define FUZZ_BIT(code) (1u << (unsigned)(-(code)))
#define FUZZ_OK_BIT    1u

static inline void fuzz_mpi_init(void) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        /* Open MPI would catch SIGABRT and SIGSEGV itself and exit: the fuzzer's (and the
         * sanitizers') handlers must see them to save the input. */
        setenv("OMPI_MCA_opal_signal", "", 0);
        int provided = 0;
#ifdef FUZZ_LSAN
        /* What MPI_Init allocates for good is no leak of an input (and its stacks, through
         * libraries without frame pointers, defeat scripts/lsan.supp). */
        __lsan_disable();
#endif
        MPI_Init_thread(NULL, NULL, MPI_THREAD_SINGLE, &provided);
#ifdef FUZZ_LSAN
        __lsan_enable();
#endif
    }
}

/* 1 if what contains one of the ';'-separated texts of $AFMT_FUZZ_KNOWN: a known,
 * reported failure that a hunt for further bugs may step over (never set in CI). */
static inline int fuzz_known(const char *what) {
    const char *k = getenv("AFMT_FUZZ_KNOWN");
    while (k && *k) {
        const char *e = strchr(k, ';');
        size_t n = e ? (size_t)(e - k) : strlen(k);
        for (const char *w = what; n && *w; w++)
            if (strncmp(w, k, n) == 0) return 1;
        k = e ? e + 1 : NULL;
    }
    return 0;
}

/* Aborts unless rc is AFMT_OK or one of the codes in allowed (FUZZ_BIT(AFMT_E...)), and
 * unless a failure comes with a message. */
static inline void fuzz_expect(int rc, unsigned allowed, const char *what, const afmt_file *f) {
    if (rc == AFMT_OK) return;
    if (rc < AFMT_ESTATE || rc > 0 || !(allowed & FUZZ_BIT(rc))) {
        if (fuzz_known(what)) return;
        fprintf(stderr, "fuzz: %s returned %d (%s), not an allowed code: %s\n", what, rc,
                afmt_strerror(rc), afmt_errmsg(f));
        abort();
    }
    const char *m = afmt_errmsg(f);
    if (!m || !m[0]) {
        fprintf(stderr, "fuzz: %s returned %d (%s) without a message\n", what, rc,
                afmt_strerror(rc));
        abort();
    }
}

static inline void fuzz_require(int cond, const char *what) {
    if (!cond && !fuzz_known(what)) {
        fprintf(stderr, "fuzz: invariant violated: %s\n", what);
        abort();
    }
}

/* Options of every open: the memory backend, a small cache. */
static inline afmt_opts *fuzz_opts(void) {
    static afmt_opts *o = NULL;
    if (!o) {
        if (afmt_opts_create(&o) != AFMT_OK || afmt__opts_set_backend(o, "memory") != AFMT_OK ||
            afmt_opts_set_cache_size(o, (uint64_t)8 << 20) != AFMT_OK) {
            fprintf(stderr, "fuzz: cannot set up options\n");
            abort();
        }
    }
    return o;
}

/* Stores data as the memory image name. */
static inline void fuzz_put(const char *name, const uint8_t *data, size_t size) {
    if (afmt__storage_mem_put(name, data, (uint64_t)size) != AFMT_OK) {
        fprintf(stderr, "fuzz: afmt__storage_mem_put failed: %s\n", afmt_errmsg(NULL));
        abort();
    }
}

/* The two passes of an input (above): one(data) as it is, then one of a copy re-sealed by
 * fz_reseal, if that changed a byte (an empty input: always). */
static inline void fuzz_both(void (*one)(const uint8_t *, size_t), const uint8_t *data,
                             size_t size) {
    one(data, size);
    uint8_t *fixed = malloc(size ? size : 1);
    if (!fixed) return;
    if (size) memcpy(fixed, data, size);
    fz_reseal(fixed, size);
    if (size == 0 || memcmp(fixed, data, size) != 0) one(fixed, size);
    free(fixed);
}

/* The libFuzzer entry points of a target whose input is tried by one (fuzz_both); MPI is
 * started in both. */
#define FUZZ_TARGET(one)                                                                           \
    int LLVMFuzzerInitialize(int *argc, char ***argv) {                                            \
        (void)argc;                                                                                \
        (void)argv;                                                                                \
        fuzz_mpi_init();                                                                           \
        return 0;                                                                                  \
    }                                                                                              \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {                                 \
        fuzz_mpi_init();                                                                           \
        fuzz_both(one, data, size);                                                                \
        return 0;                                                                                  \
    }

/* Bytes of a whole array, or 0 if it is too large (or too many chunks) to read here. */
static inline uint64_t fuzz_array_bytes(const afmt_info *in) {
    uint64_t total = tu_dtype_size(in->dtype), chunks = 1;
    for (int d = 0; d < in->ndim; d++) {
        if (in->shape[d] == 0 || in->chunk[d] == 0) return 0;
        if (!afmt__mul_ok(total, in->shape[d], &total) || total > FUZZ_MAX_ARRAY_BYTES) return 0;
        uint64_t nc = in->shape[d] / in->chunk[d] + (in->shape[d] % in->chunk[d] != 0);
        if (!afmt__mul_ok(chunks, nc, &chunks) || chunks > FUZZ_MAX_CHUNKS) return 0;
    }
    return total;
}

/* 1 if no block of the open file is larger than FUZZ_MAX_BLOCK_BYTES (stored or raw):
 * reading one would allocate that much, which a fuzzer counts as out-of-memory. */
static inline int fuzz_blocks_small(afmt_file *f) {
    /* Every block is listed only once every index segment is read (lazy.h): read them
     * (a damaged one fails here and again, lazily, in the read that needs it). */
    char why[AFMT_ERRMSG_MAX];
    (void)afmt__index_load_all(&f->idx, why);
    for (uint64_t b = 0; b < f->idx.n_blocks; b++)
        if (f->idx.blocks[b].b.raw_size > FUZZ_MAX_BLOCK_BYTES ||
            f->idx.blocks[b].b.stored_size > FUZZ_MAX_BLOCK_BYTES)
            return 0;
    return 1;
}

#endif
