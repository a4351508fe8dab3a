/* afmt_bench.c - afmt-bench, an IOR-like driver that writes and reads the same data with
 * afmt, parallel HDF5 (collective, chunked, no filter or shuffle + LZ4 filter 32004),
 * raw MPI-IO (collective, uncompressed; "mpiio-ind": independent) and "the codec alone"
 * (shuffle + LZ4 of every chunk in memory into warm buffers, then one contiguous write of
 * the compressed bytes per rank: the ceiling of a compressed write on this machine), in
 * one run, with the repetitions interleaved so that noise from other jobs hits every case
 * alike.
 *
 * Workloads (-w):
 *   field  N 3-D float64 (or -t float32) fields per rank, IOR-style slabs along dim 0,
 *          made by a real PDE (-k): smooth = heat diffusion of a smooth initial state,
 *          noisy = Gray-Scott from a noisy state, const = Gray-Scott from a few seeds
 *          (outside the seeds' reach the values stay exactly 0: mostly constant);
 *   vpic   VPIC-IO-like particles: 8 float32 1-D arrays per rank (x y z ux uy uz id1 id2)
 *          after a few Boris-push steps in a static E and B field;
 *   small  -n arrays (default 1000) of 4 KiB per rank: the metadata cost of a commit;
 *          --attrs N adds N attributes per array (afmt), for a metadata-heavy commit;
 *   open   one rank writes a file of --layers commits holding --chunks chunks in all,
 *          then times afmt_open of it.
 * N-to-M reads: -R M reads back with the first M ranks only (MPI_Comm_split), each
 * reading one slab of an M-way partition of dim 0.
 *
 * Every write phase is create .. close of the file (all steps); every read phase open ..
 * close. Times are the largest over the ranks; GB/s = raw bytes (1e9) / median time.
 * Output: a table on stdout, and one JSON object per case appended to -o FILE.
 * Run `afmt-bench -h` for the options; benchmarks/run.sh runs the standard set. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lz4.h>
#include <lz4hc.h>
#include <zstd.h>

#include "afmt.h"
#include "bench_common.h"

#ifdef AFMT_BENCH_HAVE_STATS
#include "api/file.h" /* afmt__commit_stats: the commit breakdown measured inside the library */
#endif

#ifndef AFMT_BENCH_SRCDIR
#define AFMT_BENCH_SRCDIR "."
#endif

#define MIB (1024.0 * 1024.0)

/* ======================================================================================
 * helpers
 * ==================================================================================== */

static int g_rank;

void bench_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "afmt-bench[%d]: ", g_rank);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 2);
    exit(2);
}

double bench_now(void) {
    return MPI_Wtime();
}

double bench_max(MPI_Comm comm, double v) {
    double m = v;
    MPI_Allreduce(&v, &m, 1, MPI_DOUBLE, MPI_MAX, comm);
    return m;
}

void bench_box_copy(int nd, size_t es, const uint64_t *count, void *dst, const uint64_t *dshape,
                    const uint64_t *dstart, const void *src, const uint64_t *sshape,
                    const uint64_t *sstart) {
    /* Rows of the innermost dim are contiguous in both buffers. */
    uint64_t rows = 1;
    for (int d = 0; d + 1 < nd; d++) rows *= count[d];
    size_t row = (size_t)(count[nd - 1] * es);
    uint64_t idx[BENCH_MAXDIM] = {0};
    for (uint64_t r = 0; r < rows; r++) {
        uint64_t so = 0, dof = 0;
        for (int d = 0; d < nd; d++) {
            uint64_t i = d + 1 < nd ? idx[d] : 0;
            so = so * sshape[d] + sstart[d] + i;
            dof = dof * dshape[d] + dstart[d] + i;
        }
        memcpy((uint8_t *)dst + dof * es, (const uint8_t *)src + so * es, row);
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < count[d]) break;
            idx[d] = 0;
        }
    }
}

static inline uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t bench_region_sum(const bench_array *a, int ai, const uint64_t *start,
                          const uint64_t *count, const void *buf) {
    int nd = a->ndim;
    uint64_t rows = 1, inner = count[nd - 1];
    for (int d = 0; d + 1 < nd; d++) rows *= count[d];
    uint64_t idx[BENCH_MAXDIM] = {0}, sum = 0, salt = (uint64_t)(ai + 1) << 48, k = 0;
    for (uint64_t r = 0; r < rows; r++) {
        uint64_t g = 0;
        for (int d = 0; d < nd; d++) g = g * a->gshape[d] + start[d] + (d + 1 < nd ? idx[d] : 0);
        for (uint64_t i = 0; i < inner; i++, k++) {
            uint64_t bits;
            if (a->es == 8) {
                memcpy(&bits, (const uint8_t *)buf + k * 8, 8);
            } else {
                uint32_t b32;
                memcpy(&b32, (const uint8_t *)buf + k * 4, 4);
                bits = b32;
            }
            sum += mix64(((g + i) | salt) ^ mix64(bits));
        }
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < count[d]) break;
            idx[d] = 0;
        }
    }
    return sum;
}

static double load1(void) {
    double l = -1;
    FILE *fp = fopen("/proc/loadavg", "r");
    if (fp) {
        if (fscanf(fp, "%lf", &l) != 1) l = -1;
        fclose(fp);
    }
    return l;
}

/* VmRSS / VmHWM of this process in MiB (-1 if unknown). */
static double proc_status_mib(const char *key) {
    FILE *fp = fopen("/proc/self/status", "r");
    if (!fp) return -1;
    char line[256];
    double v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, fp))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = strtod(line + kl + 1, NULL) / 1024.0;
            break;
        }
    fclose(fp);
    return v;
}

/* Starts a peak-memory window: returns the resident MiB now; VmHWM is reset to it. */
static double rss_window_start(void) {
    malloc_trim(0);
    FILE *fp = fopen("/proc/self/clear_refs", "w");
    if (fp) {
        fputs("5", fp); /* Linux >= 4.0: reset the peak RSS to the current RSS */
        fclose(fp);
    }
    return proc_status_mib("VmRSS");
}

static uint64_t parse_size(const char *s) {
    char *end;
    double v = strtod(s, &end);
    switch (*end) {
    case 'k':
    case 'K':
        v *= 1024;
        break;
    case 'm':
    case 'M':
        v *= 1024 * 1024;
        break;
    case 'g':
    case 'G':
        v *= 1024.0 * 1024 * 1024;
        break;
    case '\0':
        break;
    default:
        bench_die("bad size \"%s\"", s);
    }
    return (uint64_t)v;
}

static int parse_dims(const char *s, uint64_t *out) {
    int n = 0;
    const char *p = s;
    while (*p && n < BENCH_MAXDIM) {
        char *end;
        out[n++] = strtoull(p, &end, 10);
        if (end == p) bench_die("bad shape \"%s\"", s);
        p = *end ? end + 1 : end;
    }
    return n;
}

/* Byte shuffle of the codec-alone baseline. Elements of 4 and 8 bytes take an SSE2 path:
 * 16 elements are loaded as esize 16-byte registers and sent through a network of
 * unpacklo/unpackhi_epi8 steps (register j with register j + esize/2). Four rounds
 * transpose them into esize registers of 16 same-position bytes; the inverse takes three
 * rounds (esize 8) or two (esize 4). Other sizes and tails use blocked byte loops. */
#if defined(__SSE2__)
#include <emmintrin.h>
/* One round on E registers (E a constant, so the arrays stay in registers). */
#define UNPACK_ROUND(r, E)                                                                         \
    do {                                                                                           \
        __m128i t_[E];                                                                             \
        for (int j_ = 0; j_ < (E) / 2; j_++) {                                                     \
            t_[2 * j_] = _mm_unpacklo_epi8(r[j_], r[j_ + (E) / 2]);                                \
            t_[2 * j_ + 1] = _mm_unpackhi_epi8(r[j_], r[j_ + (E) / 2]);                            \
        }                                                                                          \
        for (int j_ = 0; j_ < (E); j_++) r[j_] = t_[j_];                                           \
    } while (0)
/* Shuffles (dir 0) or unshuffles (dir 1) groups of 16 elements of E bytes; returns the
 * number of elements done. */
#define DEFINE_SSE2_SHUFFLE(E, UNROUNDS)                                                           \
    static size_t shuffle_sse2_##E(uint8_t *restrict dst, const uint8_t *restrict src, size_t n) { \
        size_t i = 0;                                                                              \
        for (; i + 16 <= n; i += 16) {                                                             \
            __m128i r[E];                                                                          \
            for (int j = 0; j < (E); j++)                                                          \
                r[j] = _mm_loadu_si128((const __m128i *)(src + i * (E) + 16 * (size_t)j));         \
            UNPACK_ROUND(r, E);                                                                    \
            UNPACK_ROUND(r, E);                                                                    \
            UNPACK_ROUND(r, E);                                                                    \
            UNPACK_ROUND(r, E);                                                                    \
            for (int k = 0; k < (E); k++)                                                          \
                _mm_storeu_si128((__m128i *)(dst + (size_t)k * n + i), r[k]);                      \
        }                                                                                          \
        return i;                                                                                  \
    }                                                                                              \
    static size_t unshuffle_sse2_##E(uint8_t *restrict dst, const uint8_t *restrict src,           \
                                     size_t n) {                                                   \
        size_t i = 0;                                                                              \
        for (; i + 16 <= n; i += 16) {                                                             \
            __m128i r[E];                                                                          \
            for (int k = 0; k < (E); k++)                                                          \
                r[k] = _mm_loadu_si128((const __m128i *)(src + (size_t)k * n + i));                \
            for (int k = 0; k < (UNROUNDS); k++) UNPACK_ROUND(r, E);                               \
            for (int j = 0; j < (E); j++)                                                          \
                _mm_storeu_si128((__m128i *)(dst + i * (E) + 16 * (size_t)j), r[j]);               \
        }                                                                                          \
        return i;                                                                                  \
    }
DEFINE_SSE2_SHUFFLE(4, 2)
DEFINE_SSE2_SHUFFLE(8, 3)
#endif

static void shuffle_tail(uint8_t *restrict dst, const uint8_t *restrict src, size_t i0, size_t n,
                         size_t es) {
    const size_t blk = 2048;
    for (size_t b = i0; b < n; b += blk) {
        size_t m = n - b < blk ? n - b : blk;
        for (size_t k = 0; k < es; k++) {
            uint8_t *restrict o = dst + k * n + b;
            const uint8_t *restrict p = src + b * es + k;
            for (size_t i = 0; i < m; i++) o[i] = p[i * es];
        }
    }
}
static void unshuffle_tail(uint8_t *restrict dst, const uint8_t *restrict src, size_t i0, size_t n,
                           size_t es) {
    const size_t blk = 2048;
    for (size_t b = i0; b < n; b += blk) {
        size_t m = n - b < blk ? n - b : blk;
        for (size_t k = 0; k < es; k++) {
            const uint8_t *restrict p = src + k * n + b;
            uint8_t *restrict o = dst + b * es + k;
            for (size_t i = 0; i < m; i++) o[i * es] = p[i];
        }
    }
}

static void shuffle_bytes(uint8_t *restrict dst, const uint8_t *restrict src, size_t n, size_t es) {
    if (es == 1) {
        memcpy(dst, src, n);
        return;
    }
    size_t i = 0;
#if defined(__SSE2__)
    if (es == 4) i = shuffle_sse2_4(dst, src, n);
    if (es == 8) i = shuffle_sse2_8(dst, src, n);
#endif
    shuffle_tail(dst, src, i, n, es);
}

static void unshuffle_bytes(uint8_t *restrict dst, const uint8_t *restrict src, size_t n,
                            size_t es) {
    if (es == 1) {
        memcpy(dst, src, n);
        return;
    }
    size_t i = 0;
#if defined(__SSE2__)
    if (es == 4) i = unshuffle_sse2_4(dst, src, n);
    if (es == 8) i = unshuffle_sse2_8(dst, src, n);
#endif
    unshuffle_tail(dst, src, i, n, es);
}

/* Checks the shuffle against the byte loops once at start-up. */
static void shuffle_selftest(void) {
    enum { N = 1000 };
    static uint8_t a[N * 8], b[N * 8], c[N * 8], d[N * 8];
    for (size_t i = 0; i < sizeof a; i++) a[i] = (uint8_t)(i * 131 + (i >> 7));
    for (size_t es = 4; es <= 8; es += 4) {
        shuffle_bytes(b, a, N - 3, es);
        shuffle_tail(c, a, 0, N - 3, es);
        unshuffle_bytes(d, b, N - 3, es);
        if (memcmp(b, c, (N - 3) * es) || memcmp(d, a, (N - 3) * es))
            bench_die("shuffle self-test failed (esize %zu)", es);
    }
}

/* ---- chunk iteration over a region ---- */
typedef struct {
    int nd, done;
    uint64_t lo[BENCH_MAXDIM], hi[BENCH_MAXDIM], cc[BENCH_MAXDIM];
    uint64_t bstart[BENCH_MAXDIM], bcount[BENCH_MAXDIM]; /* the chunk's part of the region */
} citer;

static void citer_init(citer *it, const bench_array *a, const uint64_t *start,
                       const uint64_t *count) {
    it->nd = a->ndim;
    it->done = 0;
    for (int d = 0; d < a->ndim; d++) {
        if (count[d] == 0) it->done = 1;
        it->lo[d] = start[d] / a->chunk[d];
        it->hi[d] = count[d] ? (start[d] + count[d] - 1) / a->chunk[d] : it->lo[d];
        it->cc[d] = it->lo[d];
    }
    it->cc[a->ndim - 1]--; /* first next() steps onto lo */
}

static int citer_next(citer *it, const bench_array *a, const uint64_t *start,
                      const uint64_t *count) {
    if (it->done) return 0;
    int d = it->nd - 1;
    for (; d >= 0; d--) {
        if (++it->cc[d] <= it->hi[d]) break;
        it->cc[d] = it->lo[d];
    }
    if (d < 0) {
        it->done = 1;
        return 0;
    }
    for (int k = 0; k < it->nd; k++) {
        uint64_t c0 = it->cc[k] * a->chunk[k], c1 = c0 + a->chunk[k];
        if (c1 > a->gshape[k]) c1 = a->gshape[k];
        uint64_t s0 = start[k] > c0 ? start[k] : c0;
        uint64_t s1 = start[k] + count[k] < c1 ? start[k] + count[k] : c1;
        it->bstart[k] = s0;
        it->bcount[k] = s1 - s0;
    }
    return 1;
}

/* ======================================================================================
 * options
 * ==================================================================================== */

typedef struct {
    char backend[16];
    int codec, level, has_codec, has_level;
    int threads;    /* BACKEND/N: afmt threads, else -1 */
    int durability; /* BACKEND@LEVEL: afmt durability (0 full, 1 data, 2 none), else -1 */
} backend_spec;

static struct {
    backend_spec be[16];
    int nbe;
    const char *workload, *content, *dir, *out, *label, *data_cache, *spill_dir;
    uint64_t size, block_size, mem_budget;
    uint64_t chunk[BENCH_MAXDIM], lshape[BENCH_MAXDIM];
    int nchunk, nlshape;
    bench_dtype dt;
    int codec, level, shuffle, narr, steps, reps, readers, verify, collective, keep, attrs;
    int threads;    /* --threads: afmt threads of every afmt case without /N (-1: default) */
    int durability; /* --durability: of every afmt case without @LEVEL (-1: default) */
    uint64_t layers, chunks;
} opt;

static const char *codec_name(int c) {
    return c == 0 ? "none" : c == 1 ? "lz4" : c == 2 ? "zstd" : "?";
}
static int codec_parse(const char *s) {
    if (!strcmp(s, "none")) return 0;
    if (!strcmp(s, "lz4")) return 1;
    if (!strcmp(s, "zstd")) return 2;
    bench_die("unknown codec \"%s\" (none, lz4, zstd)", s);
}
static const char *durability_name(int d) {
    return d == 0 ? "full" : d == 1 ? "data" : d == 2 ? "none" : "?";
}
static int durability_parse(const char *s) {
    for (int d = 0; d < 3; d++)
        if (!strcmp(s, durability_name(d))) return d;
    bench_die("unknown durability \"%s\" (full, data, none)", s);
}

static void usage(void) {
    printf("usage: mpiexec -np P afmt-bench [options]\n"
           "  -a LIST    backends, comma-separated, each BACKEND[:CODEC[:LEVEL]]; BACKEND is\n"
           "             afmt, afmt-nocheck (afmt_opts_set_check_collective off), hdf5,\n"
           "             mpiio (collective), mpiio-ind (independent) or codec\n"
           "             (default afmt,hdf5,hdf5:none,mpiio,codec); afmt/N[:CODEC...]:\n"
           "             afmt with N threads per handle (afmt_opts_set_threads);\n"
           "             afmt[/N]@LEVEL[:CODEC...]: afmt with durability LEVEL (full,\n"
           "             data, none: afmt_opts_set_durability), e.g. afmt@none,afmt,hdf5\n"
           "  -w NAME    workload: field, vpic, small, open (default field)\n"
           "  -k NAME    field content: smooth, noisy, const (default smooth)\n"
           "  -s SIZE    raw bytes per rank per time step, all arrays (default 64M)\n"
           "  -c SHAPE   chunk shape, e.g. 32x64x64 (field), 262144 (vpic), 512 (small)\n"
           "  -g SHAPE   field: local slab shape per rank (default Zx256x256 from -s)\n"
           "  -t TYPE    field dtype: float64 (default) or float32\n"
           "  -z CODEC   none, lz4 (default), zstd; -l LEVEL codec level (0 = default)\n"
           "  -S 0|1     byte shuffle before the codec (default 1)\n"
           "  -n N       arrays (field: default 1; small: default 1000; vpic: always 8)\n"
           "  -T N       time steps per write phase, each a commit/layer (default 1)\n"
           "  -r N       repetitions (default 5), interleaved over the backends\n"
           "  -R M       read back with M ranks (default: all; 0: no read phase)\n"
           "  -d DIR     directory of the files (default /dev/shm)\n"
           "  -B SIZE    afmt block size (default: the library's)\n"
           "  -m SIZE    afmt memory budget (default: the library's)\n"
           "  -C         afmt: collective data writes (hint afmt_collective_write); codec:\n"
           "             collective write/read of the compressed bytes\n"
           "  -o FILE    append one JSON line per case to FILE\n"
           "  -L TEXT    label stored in the JSON lines\n"
           "  -D DIR     data cache: load this rank's data from DIR (or generate and save it)\n"
           "  -N         no verification of the data read back\n"
           "  --layers N --chunks N   open workload (default 100 and 1000000)\n"
           "  --spill DIR  afmt spill directory\n"
           "  --keep       keep the files (open workload: reuse the generated file)\n"
           "  --attrs N    small workload, afmt: N attributes (4 float64 each) per array\n"
           "  --threads N  afmt: afmt_opts_set_threads(N) (default: the library's, 0)\n"
           "  --durability LEVEL  afmt: full, data or none for every afmt backend without\n"
           "             @LEVEL (default: the library's, full)\n");
}

static void add_backends(const char *list) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (opt.nbe == 16) bench_die("too many backends");
        backend_spec *b = &opt.be[opt.nbe++];
        memset(b, 0, sizeof *b);
        char *c = strchr(tok, ':');
        if (c) *c++ = '\0';
        char *at = strchr(tok, '@');
        b->durability = -1;
        if (at) {
            *at++ = '\0';
            b->durability = durability_parse(at);
        }
        char *t = strchr(tok, '/');
        b->threads = -1;
        if (t) {
            *t++ = '\0';
            b->threads = atoi(t);
        }
        snprintf(b->backend, sizeof b->backend, "%s", tok);
        if (strcmp(tok, "afmt") && strcmp(tok, "afmt-nocheck") && strcmp(tok, "hdf5") &&
            strcmp(tok, "mpiio") && strcmp(tok, "mpiio-ind") && strcmp(tok, "codec"))
            bench_die("unknown backend \"%s\"", tok);
        if (at && strncmp(tok, "afmt", 4))
            bench_die("@LEVEL is for afmt backends, not \"%s\"", tok);
        if (c) {
            char *l = strchr(c, ':');
            if (l) *l++ = '\0';
            b->codec = codec_parse(c);
            b->has_codec = 1;
            if (l) {
                b->level = atoi(l);
                b->has_level = 1;
            }
        }
    }
}

static void parse_args(int argc, char **argv) {
    opt.workload = "field";
    opt.content = "smooth";
    opt.dir = "/dev/shm";
    opt.size = 64ull << 20;
    opt.dt = DT_F64;
    opt.codec = 1;
    opt.shuffle = 1;
    opt.narr = 0;
    opt.steps = 1;
    opt.reps = 5;
    opt.readers = -1;
    opt.verify = 1;
    opt.layers = 100;
    opt.chunks = 1000000;
    opt.threads = -1;
    opt.durability = -1;
    int size_given = 0;
    static struct option lo[] = {{"layers", required_argument, 0, 1},
                                 {"chunks", required_argument, 0, 2},
                                 {"spill", required_argument, 0, 3},
                                 {"keep", no_argument, 0, 4},
                                 {"attrs", required_argument, 0, 5},
                                 {"threads", required_argument, 0, 6},
                                 {"durability", required_argument, 0, 7},
                                 {"help", no_argument, 0, 'h'},
                                 {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "a:w:k:s:c:g:t:z:l:S:n:T:r:R:d:B:m:Co:L:D:Nh", lo,
                             NULL)) != -1) {
        switch (ch) {
        case 'a':
            add_backends(optarg);
            break;
        case 'w':
            opt.workload = optarg;
            break;
        case 'k':
            opt.content = optarg;
            break;
        case 's':
            opt.size = parse_size(optarg);
            size_given = 1;
            break;
        case 'c':
            opt.nchunk = parse_dims(optarg, opt.chunk);
            break;
        case 'g':
            opt.nlshape = parse_dims(optarg, opt.lshape);
            break;
        case 't':
            if (!strcmp(optarg, "float64"))
                opt.dt = DT_F64;
            else if (!strcmp(optarg, "float32"))
                opt.dt = DT_F32;
            else
                bench_die("dtype must be float32 or float64");
            break;
        case 'z':
            opt.codec = codec_parse(optarg);
            break;
        case 'l':
            opt.level = atoi(optarg);
            break;
        case 'S':
            opt.shuffle = atoi(optarg) != 0;
            break;
        case 'n':
            opt.narr = atoi(optarg);
            break;
        case 'T':
            opt.steps = atoi(optarg);
            break;
        case 'r':
            opt.reps = atoi(optarg);
            break;
        case 'R':
            opt.readers = atoi(optarg);
            break;
        case 'd':
            opt.dir = optarg;
            break;
        case 'B':
            opt.block_size = parse_size(optarg);
            break;
        case 'm':
            opt.mem_budget = parse_size(optarg);
            break;
        case 'C':
            opt.collective = 1;
            break;
        case 'o':
            opt.out = optarg;
            break;
        case 'L':
            opt.label = optarg;
            break;
        case 'D':
            opt.data_cache = optarg;
            break;
        case 'N':
            opt.verify = 0;
            break;
        case 1:
            opt.layers = strtoull(optarg, NULL, 10);
            break;
        case 2:
            opt.chunks = strtoull(optarg, NULL, 10);
            break;
        case 3:
            opt.spill_dir = optarg;
            break;
        case 4:
            opt.keep = 1;
            break;
        case 5:
            opt.attrs = atoi(optarg);
            break;
        case 6:
            opt.threads = atoi(optarg);
            break;
        case 7:
            opt.durability = durability_parse(optarg);
            break;
        case 'h':
            if (g_rank == 0) usage();
            MPI_Finalize();
            exit(0);
        default:
            if (g_rank == 0) usage();
            MPI_Finalize();
            exit(1);
        }
    }
    if (opt.nbe == 0) add_backends("afmt,hdf5,hdf5:none,mpiio,codec");
    if (!strcmp(opt.workload, "small") && !size_given) opt.size = 0; /* 4 KiB per array */
    if (opt.reps < 1 || opt.reps > 1000) bench_die("-r must be 1..1000");
    if (opt.steps < 1) bench_die("-T must be >= 1");
}

/* ======================================================================================
 * workloads
 * ==================================================================================== */

/* ---- field: a 3-D PDE on this rank's slab (Neumann boundaries at the slab's faces) ---- */

static double hash01(uint64_t a, uint64_t b, uint64_t c, uint64_t seed) {
    uint64_t h = mix64(a * 0x100000001B3ull ^ mix64(b * 0xC2B2AE3D27D4EB4Full ^ mix64(c ^ seed)));
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

#define IDX(z, y, x) (((size_t)(z)*ny + (size_t)(y)) * nx + (size_t)(x))

/* 7-point Laplacian with clamped (Neumann) neighbours. */
static inline double lap(const double *u, size_t nz, size_t ny, size_t nx, size_t z, size_t y,
                         size_t x) {
    size_t zm = z ? z - 1 : z, zp = z + 1 < nz ? z + 1 : z;
    size_t ym = y ? y - 1 : y, yp = y + 1 < ny ? y + 1 : y;
    size_t xm = x ? x - 1 : x, xp = x + 1 < nx ? x + 1 : x;
    return u[IDX(zm, y, x)] + u[IDX(zp, y, x)] + u[IDX(z, ym, x)] + u[IDX(z, yp, x)] +
           u[IDX(z, y, xm)] + u[IDX(z, y, xp)] - 6.0 * u[IDX(z, y, x)];
}

/* Heat diffusion: smooth initial temperature plus hot spots, `steps` explicit steps. */
static void gen_heat(double *u, size_t nz, size_t ny, size_t nx, uint64_t z0, uint64_t gz, int seed,
                     int steps) {
    const double PI = 3.14159265358979323846;
    double *t = malloc(sizeof(double) * nz * ny * nx);
    if (!t) bench_die("out of memory (field)");
    for (size_t z = 0; z < nz; z++)
        for (size_t y = 0; y < ny; y++)
            for (size_t x = 0; x < nx; x++) {
                double zg = (double)(z0 + z), fz = zg / (double)gz;
                double v = 300.0 + 20.0 * sin(2 * PI * (double)x / (double)nx + seed) *
                                       cos(2 * PI * (double)y / (double)ny) * sin(2 * PI * fz);
                for (int h = 0; h < 3; h++) {
                    double cz = (0.2 + 0.3 * h) * (double)gz, cy = (0.25 + 0.25 * h) * (double)ny,
                           cx = (0.7 - 0.2 * h) * (double)nx, s2 = 2.0 * 12.0 * 12.0;
                    double r2 = (zg - cz) * (zg - cz) + ((double)y - cy) * ((double)y - cy) +
                                ((double)x - cx) * ((double)x - cx);
                    v += 500.0 * exp(-r2 / s2);
                }
                u[IDX(z, y, x)] = v;
            }
    for (int s = 0; s < steps; s++) {
        for (size_t z = 0; z < nz; z++)
            for (size_t y = 0; y < ny; y++)
                for (size_t x = 0; x < nx; x++)
                    t[IDX(z, y, x)] = u[IDX(z, y, x)] + 0.12 * lap(u, nz, ny, nx, z, y, x);
        memcpy(u, t, sizeof(double) * nz * ny * nx);
    }
    free(t);
}

/* Gray-Scott (U, V); out = V. noisy: V seeded with noise everywhere; const: a few seed
 * cubes, elsewhere U = 1 and V = 0 exactly, which the update keeps exactly. */
static void gen_grayscott(double *out, size_t nz, size_t ny, size_t nx, uint64_t z0, int noisy,
                          int seed, int steps) {
    size_t n = nz * ny * nx;
    double *U = malloc(sizeof(double) * n), *U2 = malloc(sizeof(double) * n),
           *V2 = malloc(sizeof(double) * n), *V = out;
    if (!U || !U2 || !V2) bench_die("out of memory (field)");
    for (size_t z = 0; z < nz; z++)
        for (size_t y = 0; y < ny; y++)
            for (size_t x = 0; x < nx; x++) {
                size_t i = IDX(z, y, x);
                double v = 0;
                if (noisy) {
                    v = 0.5 * hash01(z0 + z, y, x, (uint64_t)seed);
                } else {
                    /* Seed cubes of side 8 every 64 cells in each dimension. */
                    uint64_t zg = z0 + z;
                    if ((zg % 64) < 8 && (y % 64) < 8 && (x % 64) < 8)
                        v = 0.25 + 0.05 * hash01(zg, y, x, (uint64_t)seed);
                }
                V[i] = v;
                U[i] = 1.0 - (noisy ? v : 2 * v);
            }
    const double Du = 0.16, Dv = 0.08, F = 0.035, K = 0.065;
    for (int s = 0; s < steps; s++) {
        for (size_t z = 0; z < nz; z++)
            for (size_t y = 0; y < ny; y++)
                for (size_t x = 0; x < nx; x++) {
                    size_t i = IDX(z, y, x);
                    double u = U[i], v = V[i], uvv = u * v * v;
                    U2[i] = u + Du * lap(U, nz, ny, nx, z, y, x) - uvv + F * (1.0 - u);
                    V2[i] = v + Dv * lap(V, nz, ny, nx, z, y, x) + uvv - (F + K) * v;
                }
        memcpy(U, U2, sizeof(double) * n);
        memcpy(V, V2, sizeof(double) * n);
    }
    free(U);
    free(U2);
    free(V2);
}
#undef IDX

/* ---- vpic: particles pushed by a Boris step in E = (E0 sin kx, 0, 0), B = (0, 0, B0) ---- */
static void gen_vpic(float **arrs, uint64_t n, uint64_t first_id, int steps) {
    const double PI = 3.14159265358979323846, L = 64.0, dt = 0.1, E0 = 0.05, B0 = 0.3;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t gid = first_id + i, cell = gid / 32; /* 32 particles per cell */
        uint64_t cx = cell % 64, cy = (cell / 64) % 64, cz = cell / 4096;
        double x = (double)cx + hash01(gid, 1, 0, 7), y = (double)cy + hash01(gid, 2, 0, 7),
               z = (double)(cz % 64) + hash01(gid, 3, 0, 7);
        /* Maxwellian momenta (Box-Muller), thermal speed 0.1. */
        double u[3];
        for (int k = 0; k < 3; k++) {
            double r1 = hash01(gid, 4 + (uint64_t)k, 1, 7), r2 = hash01(gid, 4 + (uint64_t)k, 2, 7);
            u[k] = 0.1 * sqrt(-2.0 * log(r1 + 1e-300)) * cos(2 * PI * r2);
        }
        for (int s = 0; s < steps; s++) {
            double e = E0 * sin(2 * PI * x / L);
            u[0] += 0.5 * dt * e;
            double t = 0.5 * dt * B0, sfac = 2 * t / (1 + t * t);
            double up0 = u[0] + u[1] * t, up1 = u[1] - u[0] * t;
            u[0] += up1 * sfac;
            u[1] -= up0 * sfac;
            u[0] += 0.5 * dt * e;
            x = fmod(x + dt * u[0] + L, L);
            y = fmod(y + dt * u[1] + L, L);
            z = fmod(z + dt * u[2] + L, L);
        }
        arrs[0][i] = (float)x;
        arrs[1][i] = (float)y;
        arrs[2][i] = (float)z;
        arrs[3][i] = (float)u[0];
        arrs[4][i] = (float)u[1];
        arrs[5][i] = (float)u[2];
        arrs[6][i] = (float)gid;
        arrs[7][i] = (float)cell;
    }
}

static void set_read_region(bench_work *w, bench_array *a) {
    for (int d = 0; d < a->ndim; d++) {
        a->rstart[d] = 0;
        a->rcount[d] = a->gshape[d];
    }
    if (w->rcomm != MPI_COMM_NULL) {
        uint64_t g0 = a->gshape[0], M = (uint64_t)w->rsize, j = (uint64_t)w->rrank;
        a->rstart[0] = j * g0 / M;
        a->rcount[0] = (j + 1) * g0 / M - a->rstart[0];
    } else {
        a->rcount[0] = 0;
    }
    a->rbytes = a->es;
    for (int d = 0; d < a->ndim; d++) a->rbytes *= a->rcount[d];
}

/* The data cache: this rank's data of array ai in a raw file (generation is slow, and a
 * cached run's peak memory is the benchmark's own, not the PDE solver's). */
static int cache_path(char *p, size_t n, const bench_array *a, int ai, int nranks) {
    if (!opt.data_cache) return 0;
    unsigned long long e[3] = {0, 0, 0};
    for (int d = 0; d < a->ndim; d++) e[d] = (unsigned long long)a->wcount[d];
    snprintf(p, n, "%s/afmt-bench-%s-%s-%s-%llux%llux%llu-n%d-a%d-r%dof%d.bin", opt.data_cache,
             opt.workload, opt.content, opt.dt == DT_F64 ? "f64" : "f32", e[0], e[1], e[2],
             opt.narr, ai, g_rank, nranks);
    return 1;
}

static int cache_load(bench_array *a, int ai, int nranks) {
    char p[4096];
    if (!cache_path(p, sizeof p, a, ai, nranks)) return 0;
    FILE *fp = fopen(p, "rb");
    if (!fp) return 0;
    size_t got = fread(a->data, 1, (size_t)a->wbytes, fp);
    fclose(fp);
    return got == a->wbytes;
}

static void cache_save(const bench_array *a, int ai, int nranks) {
    char p[4096];
    if (!cache_path(p, sizeof p, a, ai, nranks)) return;
    FILE *fp = fopen(p, "wb");
    if (!fp) return;
    if (fwrite(a->data, 1, (size_t)a->wbytes, fp) != a->wbytes)
        fprintf(stderr, "afmt-bench: cannot write the data cache %s\n", p);
    fclose(fp);
}

static void build_workload(bench_work *w) {
    int P = w->size, r = w->rank;
    const char *wl = opt.workload;
    if (!strcmp(wl, "field")) {
        if (opt.narr <= 0) opt.narr = 1;
        size_t es = opt.dt == DT_F64 ? 8 : 4;
        uint64_t ls[3];
        if (opt.nlshape == 3) {
            memcpy(ls, opt.lshape, sizeof ls);
        } else {
            uint64_t elems = opt.size / (uint64_t)opt.narr / es;
            ls[1] = ls[2] = 256;
            ls[0] = elems / (256 * 256);
            if (ls[0] == 0) bench_die("-s too small for a Zx256x256 slab; give -g");
        }
        uint64_t ch[3] = {32, 64, 64};
        if (opt.nchunk == 3) memcpy(ch, opt.chunk, sizeof ch);
        for (int d = 0; d < 3; d++)
            if (ch[d] > ls[d] * (d == 0 ? (uint64_t)P : 1)) ch[d] = ls[d];
        w->narr = opt.narr;
        w->arr = calloc((size_t)w->narr, sizeof *w->arr);
        for (int i = 0; i < w->narr; i++) {
            bench_array *a = &w->arr[i];
            snprintf(a->name, sizeof a->name, w->narr == 1 ? "field" : "field%03d", i);
            a->ndim = 3;
            a->dt = opt.dt;
            a->es = es;
            a->gshape[0] = ls[0] * (uint64_t)P;
            a->gshape[1] = ls[1];
            a->gshape[2] = ls[2];
            memcpy(a->chunk, ch, sizeof ch);
            a->wstart[0] = ls[0] * (uint64_t)r;
            a->wcount[0] = ls[0];
            a->wcount[1] = ls[1];
            a->wcount[2] = ls[2];
        }
    } else if (!strcmp(wl, "vpic")) {
        opt.narr = 8;
        opt.dt = DT_F32;
        uint64_t n = opt.size / 8 / 4;
        uint64_t ch = opt.nchunk ? opt.chunk[0] : 262144;
        if (ch > n * (uint64_t)P) ch = n * (uint64_t)P;
        static const char *names[8] = {"x", "y", "z", "ux", "uy", "uz", "id1", "id2"};
        w->narr = 8;
        w->arr = calloc(8, sizeof *w->arr);
        for (int i = 0; i < 8; i++) {
            bench_array *a = &w->arr[i];
            snprintf(a->name, sizeof a->name, "%s", names[i]);
            a->ndim = 1;
            a->dt = DT_F32;
            a->es = 4;
            a->gshape[0] = n * (uint64_t)P;
            a->chunk[0] = ch;
            a->wstart[0] = n * (uint64_t)r;
            a->wcount[0] = n;
        }
    } else if (!strcmp(wl, "small")) {
        if (opt.narr <= 0) opt.narr = 1000;
        uint64_t e = opt.size ? opt.size / (uint64_t)opt.narr / 8 : 512;
        if (e == 0) e = 1;
        opt.size = e * 8 * (uint64_t)opt.narr;
        w->narr = opt.narr;
        w->arr = calloc((size_t)w->narr, sizeof *w->arr);
        for (int i = 0; i < w->narr; i++) {
            bench_array *a = &w->arr[i];
            snprintf(a->name, sizeof a->name, "a%05d", i);
            a->ndim = 2;
            a->dt = DT_F64;
            a->es = 8;
            a->gshape[0] = (uint64_t)P;
            a->gshape[1] = e;
            a->chunk[0] = 1;
            a->chunk[1] = opt.nchunk ? opt.chunk[opt.nchunk - 1] : e;
            if (a->chunk[1] > e) a->chunk[1] = e;
            a->wstart[0] = (uint64_t)r;
            a->wcount[0] = 1;
            a->wcount[1] = e;
        }
    } else {
        bench_die("unknown workload \"%s\"", wl);
    }

    /* Sizes, raw layout, data. */
    w->raw_rank = 0;
    w->step_bytes = 0;
    for (int i = 0; i < w->narr; i++) {
        bench_array *a = &w->arr[i];
        a->wbytes = a->es;
        uint64_t gb = a->es;
        for (int d = 0; d < a->ndim; d++) {
            a->wbytes *= a->wcount[d];
            gb *= a->gshape[d];
            if (d > 0 && a->wcount[d] != a->gshape[d]) bench_die("slabs must span inner dims");
        }
        if (a->wbytes > (1ull << 31) - 4096) bench_die("an array's slab must be < 2 GiB");
        a->file_off = w->step_bytes;
        w->step_bytes += gb;
        w->raw_rank += a->wbytes;
        a->data = malloc((size_t)a->wbytes);
        if (!a->data) bench_die("out of memory (data)");
        set_read_region(w, a);
    }
    w->raw_total = w->raw_rank * (uint64_t)P;

    double t0 = bench_now();
    int cached = 1;
    for (int i = 0; i < w->narr; i++) cached &= cache_load(&w->arr[i], i, P);
    if (!cached) {
        if (!strcmp(wl, "field")) {
            for (int i = 0; i < w->narr; i++) {
                bench_array *a = &w->arr[i];
                size_t nz = a->wcount[0], ny = a->wcount[1], nx = a->wcount[2];
                double *tmp = a->dt == DT_F64 ? a->data : malloc(sizeof(double) * nz * ny * nx);
                if (!tmp) bench_die("out of memory (field)");
                if (!strcmp(opt.content, "smooth"))
                    gen_heat(tmp, nz, ny, nx, a->wstart[0], a->gshape[0], i, 8);
                else if (!strcmp(opt.content, "noisy"))
                    gen_grayscott(tmp, nz, ny, nx, a->wstart[0], 1, i, 4);
                else if (!strcmp(opt.content, "const"))
                    gen_grayscott(tmp, nz, ny, nx, a->wstart[0], 0, i, 6);
                else
                    bench_die("unknown content \"%s\" (smooth, noisy, const)", opt.content);
                if (a->dt == DT_F32) {
                    float *f = a->data;
                    for (size_t k = 0; k < nz * ny * nx; k++) f[k] = (float)tmp[k];
                    free(tmp);
                }
            }
        } else if (!strcmp(wl, "vpic")) {
            float *arrs[8];
            for (int i = 0; i < 8; i++) arrs[i] = w->arr[i].data;
            gen_vpic(arrs, w->arr[0].wcount[0], w->arr[0].wstart[0], 20);
        } else {
            const double PI = 3.14159265358979323846;
            for (int i = 0; i < w->narr; i++) {
                bench_array *a = &w->arr[i];
                double *d = a->data;
                for (uint64_t k = 0; k < a->wcount[1]; k++)
                    d[k] = 1.0 + 0.5 * sin(2 * PI * (double)k / (double)a->wcount[1] + i) *
                                     exp(-0.01 * (double)r);
            }
        }
        for (int i = 0; i < w->narr; i++) cache_save(&w->arr[i], i, P);
    }
    double tg = bench_max(w->world, bench_now() - t0);
    if (w->rank == 0)
        printf("# data: %s%s%s, %.1f MiB per rank, %s in %.2f s\n", wl,
               strcmp(wl, "field") ? "" : "/", strcmp(wl, "field") ? "" : opt.content,
               (double)w->raw_rank / MIB, cached ? "loaded from the cache" : "generated", tg);
}

/* ======================================================================================
 * backends
 * ==================================================================================== */

static afmt_dtype afmt_dt(const bench_array *a) {
    return a->dt == DT_F64 ? AFMT_FLOAT64 : AFMT_FLOAT32;
}

static afmt_opts *afmt_make_opts(const bench_case *c) {
    afmt_opts *o;
    if (afmt_opts_create(&o) != AFMT_OK) bench_die("afmt_opts_create");
    if (afmt_opts_set_codec(o, (afmt_codec)c->codec, c->level) != AFMT_OK)
        bench_die("afmt_opts_set_codec: %s", afmt_errmsg(NULL));
    afmt_opts_set_shuffle(o, c->codec != 0 && c->shuffle);
    if (c->block_size) afmt_opts_set_block_size(o, c->block_size);
    if (c->mem_budget) afmt_opts_set_mem_budget(o, c->mem_budget);
    if (c->spill_dir) afmt_opts_set_spill_dir(o, c->spill_dir);
    if (!strcmp(c->backend, "afmt-nocheck")) afmt_opts_set_check_collective(o, 0);
    if (c->threads >= 0 && afmt_opts_set_threads(o, c->threads) != AFMT_OK)
        bench_die("afmt_opts_set_threads: %s", afmt_errmsg(NULL));
    if (c->durability >= 0 &&
        afmt_opts_set_durability(o, (afmt_durability)c->durability) != AFMT_OK)
        bench_die("afmt_opts_set_durability: %s", afmt_errmsg(NULL));
    if (c->collective) {
        MPI_Info info;
        MPI_Info_create(&info);
        MPI_Info_set(info, "afmt_collective_write", "true");
        afmt_opts_set_mpi_info(o, info);
        MPI_Info_free(&info);
    }
    return o;
}

static void afmt_write_phase(const bench_case *c, bench_work *w, bench_rep *r) {
    afmt_opts *o = afmt_make_opts(c);
    afmt_file *f;
    double tw = 0, tc = 0;
    MPI_Barrier(w->world);
    double t0 = bench_now();
    if (afmt_create(w->world, c->path, AFMT_TRUNC, o, &f) != AFMT_OK)
        bench_die("afmt_create(%s): %s", c->path, afmt_errmsg(NULL));
    for (int i = 0; i < w->narr; i++) {
        bench_array *a = &w->arr[i];
        if (afmt_define(f, a->name, afmt_dt(a), a->ndim, a->gshape, a->chunk, NULL, NULL) !=
            AFMT_OK)
            bench_die("afmt_define(%s): %s", a->name, afmt_errmsg(f));
        for (int k = 0; k < opt.attrs; k++) {
            char key[32];
            double v[4] = {k, i, 0.5 * k, -1.0 * i};
            snprintf(key, sizeof key, "attr%d", k);
            if (afmt_set_attr(f, a->name, key, AFMT_FLOAT64, 4, v) != AFMT_OK)
                bench_die("afmt_set_attr(%s, %s): %s", a->name, key, afmt_errmsg(f));
        }
    }
    double t1 = bench_now();
    double st[M_COUNT] = {0}; /* commit breakdown, summed over the steps */
    for (int s = 0; s < c->steps; s++) {
        double a0 = bench_now();
        for (int i = 0; i < w->narr; i++) {
            bench_array *a = &w->arr[i];
            if (afmt_write(f, a->name, a->wstart, a->wcount, a->data) != AFMT_OK)
                bench_die("afmt_write(%s): %s", a->name, afmt_errmsg(f));
        }
        double a1 = bench_now();
        if (afmt_commit(f) != AFMT_OK) bench_die("afmt_commit: %s", afmt_errmsg(f));
        double a2 = bench_now();
        tw += a1 - a0;
        tc += a2 - a1;
#ifdef AFMT_BENCH_HAVE_STATS
        afmt_commit_stats cs;
        if (afmt__commit_stats(f, &cs) != AFMT_OK) bench_die("afmt__commit_stats");
        st[M_S_COMPRESS] += cs.compress;
        st[M_S_EXCHANGE] += cs.exchange;
        st[M_S_DATAWRITE] += cs.write;
        st[M_S_GATHER] += cs.gather;
        st[M_S_FOOTER] += cs.footer;
        st[M_S_SYNC] += cs.sync;
        st[M_S_OTHER] += cs.total - cs.exchange - cs.write - cs.gather - cs.footer - cs.sync;
#endif
    }
    double t2 = bench_now();
    if (afmt_close(f) != AFMT_OK) bench_die("afmt_close: %s", afmt_errmsg(NULL));
    double t3 = bench_now();
    afmt_opts_free(o);
    r->m[M_W_TOTAL] = bench_max(w->world, t3 - t0);
    r->m[M_W_CREATE] = bench_max(w->world, t1 - t0);
    r->m[M_W_WRITE] = bench_max(w->world, tw);
    r->m[M_W_COMMIT] = bench_max(w->world, tc);
    r->m[M_W_CLOSE] = bench_max(w->world, t3 - t2);
#ifdef AFMT_BENCH_HAVE_STATS
    for (int m = M_S_COMPRESS; m <= M_S_OTHER; m++) r->m[m] = bench_max(w->world, st[m]);
#else
    (void)st;
#endif
}

static void afmt_read_phase(const bench_case *c, bench_work *w, bench_rep *r, void **bufs) {
    afmt_opts *o = afmt_make_opts(c);
    afmt_file *f;
    MPI_Barrier(w->rcomm);
    double t0 = bench_now();
    if (afmt_open(w->rcomm, c->path, AFMT_RDONLY, o, &f) != AFMT_OK)
        bench_die("afmt_open(%s): %s", c->path, afmt_errmsg(NULL));
    double t1 = bench_now();
    for (int i = 0; i < w->narr; i++) {
        bench_array *a = &w->arr[i];
        if (a->rbytes && afmt_read(f, a->name, a->rstart, a->rcount, bufs[i]) != AFMT_OK)
            bench_die("afmt_read(%s): %s", a->name, afmt_errmsg(f));
    }
    double t2 = bench_now();
    if (afmt_close(f) != AFMT_OK) bench_die("afmt_close: %s", afmt_errmsg(NULL));
    double t3 = bench_now();
    afmt_opts_free(o);
    r->m[M_R_TOTAL] = bench_max(w->rcomm, t3 - t0);
    r->m[M_R_OPEN] = bench_max(w->rcomm, t1 - t0);
    r->m[M_R_READ] = bench_max(w->rcomm, t2 - t1);
    r->m[M_R_CLOSE] = bench_max(w->rcomm, t3 - t2);
}

static void mpi_check(int rc, const char *what, const char *path) {
    if (rc == MPI_SUCCESS) return;
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    MPI_Error_string(rc, s, &n);
    bench_die("%s(%s): %s", what, path, s);
}

/* Linear element offset of a slab start (slabs span the inner dims). */
static uint64_t slab_off(const bench_array *a, const uint64_t *start) {
    uint64_t lin = 0;
    for (int d = 0; d < a->ndim; d++) lin = lin * a->gshape[d] + start[d];
    return lin * a->es;
}

static void mpiio_write_phase(const bench_case *c, bench_work *w, bench_rep *r) {
    MPI_File fh;
    double tw = 0;
    MPI_Barrier(w->world);
    double t0 = bench_now();
    mpi_check(
        MPI_File_open(w->world, c->path, MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &fh),
        "MPI_File_open", c->path);
    double t1 = bench_now();
    for (int s = 0; s < c->steps; s++) {
        double a0 = bench_now();
        for (int i = 0; i < w->narr; i++) {
            bench_array *a = &w->arr[i];
            MPI_Offset off =
                (MPI_Offset)((uint64_t)s * w->step_bytes + a->file_off + slab_off(a, a->wstart));
            mpi_check(c->collective ? MPI_File_write_at_all(fh, off, a->data, (int)a->wbytes,
                                                            MPI_BYTE, MPI_STATUS_IGNORE)
                                    : MPI_File_write_at(fh, off, a->data, (int)a->wbytes, MPI_BYTE,
                                                        MPI_STATUS_IGNORE),
                      "MPI_File_write_at(_all)", c->path);
        }
        tw += bench_now() - a0;
    }
    double t2 = bench_now();
    mpi_check(MPI_File_sync(fh), "MPI_File_sync", c->path);
    mpi_check(MPI_File_close(&fh), "MPI_File_close", c->path);
    double t3 = bench_now();
    r->m[M_W_TOTAL] = bench_max(w->world, t3 - t0);
    r->m[M_W_CREATE] = bench_max(w->world, t1 - t0);
    r->m[M_W_WRITE] = bench_max(w->world, tw);
    r->m[M_W_CLOSE] = bench_max(w->world, t3 - t2);
}

static void mpiio_read_phase(const bench_case *c, bench_work *w, bench_rep *r, void **bufs) {
    MPI_File fh;
    MPI_Barrier(w->rcomm);
    double t0 = bench_now();
    mpi_check(MPI_File_open(w->rcomm, c->path, MPI_MODE_RDONLY, MPI_INFO_NULL, &fh),
              "MPI_File_open", c->path);
    double t1 = bench_now();
    uint64_t last = (uint64_t)(c->steps - 1) * w->step_bytes;
    for (int i = 0; i < w->narr; i++) {
        bench_array *a = &w->arr[i];
        MPI_Offset off = (MPI_Offset)(last + a->file_off + slab_off(a, a->rstart));
        mpi_check(c->collective ? MPI_File_read_at_all(fh, off, bufs[i], (int)a->rbytes, MPI_BYTE,
                                                       MPI_STATUS_IGNORE)
                                : MPI_File_read_at(fh, off, bufs[i], (int)a->rbytes, MPI_BYTE,
                                                   MPI_STATUS_IGNORE),
                  "MPI_File_read_at(_all)", c->path);
    }
    double t2 = bench_now();
    mpi_check(MPI_File_close(&fh), "MPI_File_close", c->path);
    double t3 = bench_now();
    r->m[M_R_TOTAL] = bench_max(w->rcomm, t3 - t0);
    r->m[M_R_OPEN] = bench_max(w->rcomm, t1 - t0);
    r->m[M_R_READ] = bench_max(w->rcomm, t2 - t1);
    r->m[M_R_CLOSE] = bench_max(w->rcomm, t3 - t2);
}

/* ---- the codec alone ---- */

typedef struct {
    uint64_t off, csize, rsize; /* in this rank's compressed buffer */
    int array, raw;
    uint64_t bstart[BENCH_MAXDIM], bcount[BENCH_MAXDIM];
} cchunk;

static struct {
    uint8_t *arena, *tmp, *shuf;
    uint64_t arena_len, arena_cap, tmp_cap;
    cchunk *ch;
    uint64_t nch, cap_ch;
    uint64_t my_off; /* this rank's offset in the last step */
} cz;

static size_t cz_bound(int codec, size_t n) {
    if (codec == 1) return (size_t)LZ4_compressBound((int)n);
    if (codec == 2) return ZSTD_compressBound(n);
    return n;
}

static size_t cz_compress(int codec, int level, const void *src, size_t n, void *dst, size_t cap) {
    if (codec == 1) {
        int k;
        if (level >= 2)
            k = LZ4_compress_HC(src, dst, (int)n, (int)cap, level);
        else if (level < 0)
            k = LZ4_compress_fast(src, dst, (int)n, (int)cap, -level);
        else
            k = LZ4_compress_default(src, dst, (int)n, (int)cap);
        return k > 0 ? (size_t)k : 0;
    }
    if (codec == 2) {
        size_t k = ZSTD_compress(dst, cap, src, n, level ? level : 3);
        return ZSTD_isError(k) ? 0 : k;
    }
    return 0;
}

static void grow_buf(uint8_t **p, uint64_t *cap, uint64_t need) {
    if (need <= *cap) return;
    uint64_t nc = *cap ? *cap : 1 << 20;
    while (nc < need) nc *= 2;
    *p = realloc(*p, (size_t)nc);
    if (!*p) bench_die("out of memory (codec)");
    *cap = nc;
}

/* Gathers, shuffles and compresses every chunk of this rank's regions into cz.arena;
 * adds the seconds of each part to t[0..2] (gather, shuffle, compress). */
static void codec_encode(const bench_case *c, bench_work *w, double *t) {
    cz.arena_len = 0;
    cz.nch = 0;
    for (int i = 0; i < w->narr; i++) {
        bench_array *a = &w->arr[i];
        citer it;
        citer_init(&it, a, a->wstart, a->wcount);
        while (citer_next(&it, a, a->wstart, a->wcount)) {
            uint64_t ne = 1;
            for (int d = 0; d < a->ndim; d++) ne *= it.bcount[d];
            uint64_t nb = ne * a->es;
            const uint8_t *src;
            grow_buf(&cz.tmp, &cz.tmp_cap, 2 * nb);
            double g0 = bench_now();
            if (a->ndim == 1) {
                src = (const uint8_t *)a->data + (it.bstart[0] - a->wstart[0]) * a->es;
            } else {
                uint64_t rel[BENCH_MAXDIM], z[BENCH_MAXDIM] = {0};
                for (int d = 0; d < a->ndim; d++) rel[d] = it.bstart[d] - a->wstart[d];
                bench_box_copy(a->ndim, a->es, it.bcount, cz.tmp, it.bcount, z, a->data, a->wcount,
                               rel);
                src = cz.tmp;
            }
            double g1 = bench_now();
            if (c->codec && c->shuffle) {
                shuffle_bytes(cz.tmp + nb, src, (size_t)ne, a->es);
                src = cz.tmp + nb;
            }
            double g2 = bench_now();
            size_t bound = cz_bound(c->codec, (size_t)nb);
            grow_buf(&cz.arena, &cz.arena_cap, cz.arena_len + bound);
            uint8_t *dst = cz.arena + cz.arena_len;
            size_t k = c->codec ? cz_compress(c->codec, c->level, src, (size_t)nb, dst, bound) : 0;
            t[0] += g1 - g0;
            t[1] += g2 - g1;
            t[2] += bench_now() - g2;
            int raw = k == 0 || k >= nb;
            if (raw) {
                memcpy(dst, src, (size_t)nb);
                k = (size_t)nb;
            }
            if (cz.nch == cz.cap_ch) {
                cz.cap_ch = cz.cap_ch ? 2 * cz.cap_ch : 1024;
                cz.ch = realloc(cz.ch, sizeof *cz.ch * (size_t)cz.cap_ch);
                if (!cz.ch) bench_die("out of memory (codec)");
            }
            cchunk *cc = &cz.ch[cz.nch++];
            cc->off = cz.arena_len;
            cc->csize = k;
            cc->rsize = nb;
            cc->array = i;
            cc->raw = raw;
            memcpy(cc->bstart, it.bstart, sizeof it.bstart);
            memcpy(cc->bcount, it.bcount, sizeof it.bcount);
            cz.arena_len += k;
        }
    }
}

static void codec_write_phase(const bench_case *c, bench_work *w, bench_rep *r) {
    double tcodec = 0, twrite = 0, tp[3] = {0, 0, 0};
    MPI_File fh;
    uint64_t file_end = 0;
    MPI_Barrier(w->world);
    double t0 = bench_now();
    for (int s = 0; s < c->steps; s++) {
        double a0 = bench_now();
        codec_encode(c, w, tp);
        double a1 = bench_now();
        tcodec += a1 - a0;
        if (s == 0)
            mpi_check(MPI_File_open(w->world, c->path, MPI_MODE_CREATE | MPI_MODE_WRONLY,
                                    MPI_INFO_NULL, &fh),
                      "MPI_File_open", c->path);
        uint64_t mine = cz.arena_len, before = 0, total = 0;
        MPI_Exscan(&mine, &before, 1, MPI_UINT64_T, MPI_SUM, w->world);
        MPI_Allreduce(&mine, &total, 1, MPI_UINT64_T, MPI_SUM, w->world);
        if (w->rank == 0) before = 0;
        cz.my_off = file_end + before;
        if (mine > (1ull << 31) - 4096) bench_die("codec: > 2 GiB per rank");
        mpi_check(c->collective ? MPI_File_write_at_all(fh, (MPI_Offset)cz.my_off, cz.arena,
                                                        (int)mine, MPI_BYTE, MPI_STATUS_IGNORE)
                                : MPI_File_write_at(fh, (MPI_Offset)cz.my_off, cz.arena, (int)mine,
                                                    MPI_BYTE, MPI_STATUS_IGNORE),
                  "MPI_File_write_at(_all)", c->path);
        file_end += total;
        twrite += bench_now() - a1;
    }
    double a2 = bench_now();
    mpi_check(MPI_File_sync(fh), "MPI_File_sync", c->path);
    mpi_check(MPI_File_close(&fh), "MPI_File_close", c->path);
    double t3 = bench_now();
    twrite += t3 - a2;
    r->m[M_W_TOTAL] = bench_max(w->world, t3 - t0);
    r->m[M_C_CODEC] = bench_max(w->world, tcodec);
    r->m[M_C_GATHER] = bench_max(w->world, tp[0]);
    r->m[M_C_SHUFFLE] = bench_max(w->world, tp[1]);
    r->m[M_C_COMPRESS] = bench_max(w->world, tp[2]);
    r->m[M_C_CWRITE] = bench_max(w->world, twrite);
}

/* Reads back this rank's compressed bytes of the last step and decodes them (only when
 * the readers are the writers: the codec alone has no index to serve other partitions). */
static void codec_read_phase(const bench_case *c, bench_work *w, bench_rep *r, void **bufs) {
    MPI_File fh;
    memset(cz.arena, 0, (size_t)cz.arena_len); /* what we decode must come from the file */
    MPI_Barrier(w->rcomm);
    double t0 = bench_now();
    mpi_check(MPI_File_open(w->rcomm, c->path, MPI_MODE_RDONLY, MPI_INFO_NULL, &fh),
              "MPI_File_open", c->path);
    double t0b = bench_now();
    mpi_check(c->collective ? MPI_File_read_at_all(fh, (MPI_Offset)cz.my_off, cz.arena,
                                                   (int)cz.arena_len, MPI_BYTE, MPI_STATUS_IGNORE)
                            : MPI_File_read_at(fh, (MPI_Offset)cz.my_off, cz.arena,
                                               (int)cz.arena_len, MPI_BYTE, MPI_STATUS_IGNORE),
              "MPI_File_read_at(_all)", c->path);
    mpi_check(MPI_File_close(&fh), "MPI_File_close", c->path);
    double t1 = bench_now();
    for (uint64_t k = 0; k < cz.nch; k++) {
        const cchunk *cc = &cz.ch[k];
        const bench_array *a = &w->arr[cc->array];
        uint64_t ne = cc->rsize / a->es;
        grow_buf(&cz.tmp, &cz.tmp_cap, 2 * cc->rsize);
        const uint8_t *src = cz.arena + cc->off;
        if (!cc->raw) {
            int ok;
            if (c->codec == 1)
                ok = LZ4_decompress_safe((const char *)src, (char *)cz.tmp, (int)cc->csize,
                                         (int)cc->rsize) == (int)cc->rsize;
            else
                ok =
                    ZSTD_decompress(cz.tmp, (size_t)cc->rsize, src, (size_t)cc->csize) == cc->rsize;
            if (!ok) bench_die("codec: chunk %llu does not decompress", (unsigned long long)k);
            src = cz.tmp;
        }
        if (c->codec && c->shuffle) {
            unshuffle_bytes(cz.tmp + cc->rsize, src, (size_t)ne, a->es);
            src = cz.tmp + cc->rsize;
        }
        uint64_t rel[BENCH_MAXDIM], z[BENCH_MAXDIM] = {0};
        for (int d = 0; d < a->ndim; d++) rel[d] = cc->bstart[d] - a->rstart[d];
        bench_box_copy(a->ndim, a->es, cc->bcount, bufs[cc->array], a->rcount, rel, src, cc->bcount,
                       z);
    }
    double t2 = bench_now();
    r->m[M_R_TOTAL] = bench_max(w->rcomm, t2 - t0);
    r->m[M_R_OPEN] = bench_max(w->rcomm, t0b - t0);
    r->m[M_C_CREAD] = bench_max(w->rcomm, t1 - t0b);
    r->m[M_C_DECODE] = bench_max(w->rcomm, t2 - t1);
}

#ifndef AFMT_BENCH_HDF5
int bench_hdf5_available(void) {
    return 0;
}
void bench_hdf5_write(const bench_case *c, bench_work *w, bench_rep *r) {
    (void)c, (void)w, (void)r;
}
void bench_hdf5_read(const bench_case *c, bench_work *w, bench_rep *r, void **bufs) {
    (void)c, (void)w, (void)r, (void)bufs;
}
#endif

/* ======================================================================================
 * driver
 * ==================================================================================== */

typedef struct {
    bench_case c;
    char label[48];
    bench_rep rep[1000];
    int nrep;
    double load_min, load_max;
    int skip_read; /* e.g. codec alone with N-to-M */
} case_state;

static int cmp_d(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

typedef struct {
    double med, min, max;
    int n;
} stat3;

static stat3 stat_of(const case_state *cs, int m) {
    double v[1000];
    int n = 0;
    for (int i = 0; i < cs->nrep; i++)
        if (cs->rep[i].m[m] >= 0) v[n++] = cs->rep[i].m[m];
    stat3 s = {-1, -1, -1, n};
    if (!n) return s;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    s.min = v[0];
    s.max = v[n - 1];
    s.med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    return s;
}

static uint64_t *g_expect; /* per array: the global checksum of the data written */

static void compute_expected(bench_work *w) {
    g_expect = calloc((size_t)w->narr, sizeof *g_expect);
    for (int i = 0; i < w->narr; i++) {
        bench_array *a = &w->arr[i];
        uint64_t s = bench_region_sum(a, i, a->wstart, a->wcount, a->data), t = 0;
        MPI_Allreduce(&s, &t, 1, MPI_UINT64_T, MPI_SUM, w->world);
        g_expect[i] = t;
    }
}

static int verify_read(bench_work *w, void **bufs) {
    int ok = 1;
    if (w->rcomm != MPI_COMM_NULL) {
        for (int i = 0; i < w->narr; i++) {
            bench_array *a = &w->arr[i];
            uint64_t s = a->rbytes ? bench_region_sum(a, i, a->rstart, a->rcount, bufs[i]) : 0,
                     t = 0;
            MPI_Allreduce(&s, &t, 1, MPI_UINT64_T, MPI_SUM, w->rcomm);
            if (t != g_expect[i]) ok = 0;
        }
    }
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, w->world);
    return all;
}

static void run_case(case_state *cs, bench_work *w, void **bufs) {
    bench_case *c = &cs->c;
    bench_rep *r = &cs->rep[cs->nrep++];
    for (int m = 0; m < M_COUNT; m++) r->m[m] = -1;
    r->verified = -1;
    double l = load1();
    if (cs->nrep == 1 || l < cs->load_min) cs->load_min = l;
    if (cs->nrep == 1 || l > cs->load_max) cs->load_max = l;

    if (w->rank == 0) unlink(c->path);
    MPI_Barrier(w->world);
    double rss0 = rss_window_start();
    const char *b = c->backend;
    if (!strncmp(b, "afmt", 4))
        afmt_write_phase(c, w, r);
    else if (!strcmp(b, "hdf5"))
        bench_hdf5_write(c, w, r);
    else if (!strncmp(b, "mpiio", 5))
        mpiio_write_phase(c, w, r);
    else
        codec_write_phase(c, w, r);
    double hwm = proc_status_mib("VmHWM");
    r->m[M_RSS0] = bench_max(w->world, rss0);
    r->m[M_HWM] = bench_max(w->world, hwm);

    uint64_t fsize = 0;
    if (w->rank == 0) {
        struct stat sb;
        if (stat(c->path, &sb) == 0) fsize = (uint64_t)sb.st_size;
    }
    MPI_Bcast(&fsize, 1, MPI_UINT64_T, 0, w->world);
    r->stored_bytes = fsize;

    if (opt.readers != 0 && !cs->skip_read) {
        for (int i = 0; i < w->narr; i++)
            if (w->arr[i].rbytes) memset(bufs[i], 0xA5, (size_t)w->arr[i].rbytes);
        MPI_Barrier(w->world);
        double rr0 = rss_window_start();
        if (w->rcomm != MPI_COMM_NULL) {
            if (!strncmp(b, "afmt", 4))
                afmt_read_phase(c, w, r, bufs);
            else if (!strcmp(b, "hdf5"))
                bench_hdf5_read(c, w, r, bufs);
            else if (!strncmp(b, "mpiio", 5))
                mpiio_read_phase(c, w, r, bufs);
            else
                codec_read_phase(c, w, r, bufs);
        }
        double rh = proc_status_mib("VmHWM");
        /* Rank 0 is always a reader: its values are the readers' maxima. */
        MPI_Bcast(r->m, M_COUNT, MPI_DOUBLE, 0, w->world);
        r->m[M_RSSR0] = bench_max(w->world, w->rcomm != MPI_COMM_NULL ? rr0 : -1);
        r->m[M_HWMR] = bench_max(w->world, w->rcomm != MPI_COMM_NULL ? rh : -1);
        if (opt.verify) r->verified = verify_read(w, bufs);
    }
    MPI_Barrier(w->world);
    if (w->rank == 0 && !opt.keep) unlink(c->path);
}

static void json_stat(FILE *fp, const char *key, stat3 s) {
    if (s.n == 0) return;
    fprintf(fp, ",\"%s\":{\"median\":%.6g,\"min\":%.6g,\"max\":%.6g}", key, s.med, s.min, s.max);
}

static char g_git[64], g_host[64], g_date[32];

static void report(case_state *cs, int ncase, bench_work *w) {
    if (w->rank != 0) return;
    static const struct {
        int m;
        const char *key;
    } phases[] = {{M_W_CREATE, "w_create_s"},
                  {M_W_WRITE, "w_write_s"},
                  {M_W_COMMIT, "w_commit_s"},
                  {M_W_CLOSE, "w_close_s"},
                  {M_R_OPEN, "r_open_s"},
                  {M_R_READ, "r_read_s"},
                  {M_R_CLOSE, "r_close_s"},
                  {M_C_CODEC, "c_codec_s"},
                  {M_C_GATHER, "c_gather_s"},
                  {M_C_SHUFFLE, "c_shuffle_s"},
                  {M_C_COMPRESS, "c_compress_s"},
                  {M_C_CWRITE, "c_cwrite_s"},
                  {M_C_CREAD, "c_cread_s"},
                  {M_C_DECODE, "c_decode_s"},
                  {M_S_COMPRESS, "s_compress_s"},
                  {M_S_EXCHANGE, "s_exchange_s"},
                  {M_S_DATAWRITE, "s_data_write_s"},
                  {M_S_GATHER, "s_meta_gather_s"},
                  {M_S_FOOTER, "s_footer_s"},
                  {M_S_SYNC, "s_sync_s"},
                  {M_S_OTHER, "s_other_s"},
                  {M_RSS0, "rss_before_w_mib"},
                  {M_HWM, "rss_peak_w_mib"},
                  {M_RSSR0, "rss_before_r_mib"},
                  {M_HWMR, "rss_peak_r_mib"}};
    const bench_array *a0 = &w->arr[0];
    char chunk[64] = "", shape[64] = "";
    for (int d = 0; d < a0->ndim; d++) {
        size_t l = strlen(chunk), k = strlen(shape);
        snprintf(chunk + l, sizeof chunk - l, "%s%llu", d ? "x" : "",
                 (unsigned long long)a0->chunk[d]);
        snprintf(shape + k, sizeof shape - k, "%s%llu", d ? "x" : "",
                 (unsigned long long)a0->wcount[d]);
    }
    uint64_t raw_w = w->raw_total * (uint64_t)opt.steps;
    int M = w->rsize;
    printf("\n# %s%s%s  %d->%d ranks  %.1f MiB/rank/step x %d step(s)  %d array(s) %s chunk %s  "
           "%d attr(s)/array  dir %s  reps %d  load %.2f..%.2f\n",
           opt.workload, strcmp(opt.workload, "field") ? "" : "/",
           strcmp(opt.workload, "field") ? "" : opt.content, w->size, opt.readers == 0 ? 0 : M,
           (double)w->raw_rank / MIB, opt.steps, w->narr, a0->dt == DT_F64 ? "f64" : "f32", chunk,
           opt.attrs, opt.dir, opt.reps, cs[0].load_min, cs[0].load_max);
    printf("%-14s %9s %9s %9s %8s | %9s %9s %9s %8s | %7s %s\n", "case", "write_s", "min", "max",
           "GB/s", "read_s", "min", "max", "GB/s", "ratio", "ok");
    for (int k = 0; k < ncase; k++) {
        case_state *s = &cs[k];
        stat3 wt = stat_of(s, M_W_TOTAL), rt = stat_of(s, M_R_TOTAL);
        double stored = 0;
        for (int i = 0; i < s->nrep; i++) stored += (double)s->rep[i].stored_bytes;
        stored /= s->nrep;
        double ratio = stored > 0 ? (double)raw_w / stored : 0;
        int ok = 1, checked = 0;
        for (int i = 0; i < s->nrep; i++)
            if (s->rep[i].verified >= 0) {
                checked = 1;
                ok &= s->rep[i].verified;
            }
        double rbytes = (double)w->raw_total; /* one step is read back */
        printf("%-14s %9.4f %9.4f %9.4f %8.3f | ", s->label, wt.med, wt.min, wt.max,
               (double)raw_w / wt.med / 1e9);
        if (rt.n)
            printf("%9.4f %9.4f %9.4f %8.3f | ", rt.med, rt.min, rt.max, rbytes / rt.med / 1e9);
        else
            printf("%9s %9s %9s %8s | ", "-", "-", "-", "-");
        printf("%7.3f %s\n", ratio, checked ? (ok ? "yes" : "NO") : "-");
        /* Phase breakdown line. */
        char line[512] = "";
        size_t L = 0;
        for (size_t p = 0; p < sizeof phases / sizeof phases[0]; p++) {
            stat3 ps = stat_of(s, phases[p].m);
            if (ps.n && L < sizeof line - 40)
                L += (size_t)snprintf(line + L, sizeof line - L, " %s=%.4g", phases[p].key, ps.med);
        }
        printf("    %s\n", line);

        if (opt.out) {
            FILE *fp = fopen(opt.out, "a");
            if (!fp) {
                fprintf(stderr, "cannot append to %s\n", opt.out);
                continue;
            }
            fprintf(fp,
                    "{\"bench\":\"afmt-bench\",\"date\":\"%s\",\"host\":\"%s\",\"git\":\"%s\","
                    "\"label\":\"%s\",\"workload\":\"%s\",\"content\":\"%s\",\"case\":\"%s\","
                    "\"backend\":\"%s\",\"codec\":\"%s\",\"level\":%d,\"shuffle\":%d,"
                    "\"dtype\":\"%s\",\"np\":%d,\"readers\":%d,\"dir\":\"%s\",\"narrays\":%d,"
                    "\"steps\":%d,\"reps\":%d,\"attrs\":%d,\"chunk\":\"%s\",\"slab\":\"%s\","
                    "\"block_size\":%llu,\"threads\":%d,\"bytes_per_rank\":%llu,\"raw_bytes\":%llu,"
                    "\"stored_bytes\":%.0f,\"ratio\":%.4f,\"load_min\":%.2f,\"load_max\":%.2f,"
                    "\"verified\":%s",
                    g_date, g_host, g_git, opt.label ? opt.label : "", opt.workload,
                    strcmp(opt.workload, "field") ? "" : opt.content, s->label, s->c.backend,
                    codec_name(s->c.codec), s->c.level, s->c.codec ? s->c.shuffle : 0,
                    a0->dt == DT_F64 ? "float64" : "float32", w->size, opt.readers == 0 ? 0 : M,
                    opt.dir, w->narr, opt.steps, s->nrep, opt.attrs, chunk, shape,
                    (unsigned long long)s->c.block_size, s->c.threads,
                    (unsigned long long)w->raw_rank, (unsigned long long)raw_w, stored, ratio,
                    s->load_min, s->load_max, checked ? (ok ? "true" : "false") : "null");
            json_stat(fp, "write_s", wt);
            if (wt.n) fprintf(fp, ",\"write_GBps\":%.4f", (double)raw_w / wt.med / 1e9);
            json_stat(fp, "read_s", rt);
            if (rt.n)
                fprintf(fp, ",\"read_GBps\":%.4f,\"read_bytes\":%llu", rbytes / rt.med / 1e9,
                        (unsigned long long)w->raw_total);
            for (size_t p = 0; p < sizeof phases / sizeof phases[0]; p++)
                json_stat(fp, phases[p].key, stat_of(s, phases[p].m));
            fprintf(fp, ",\"write_all_s\":[");
            for (int i = 0; i < s->nrep; i++)
                fprintf(fp, "%s%.6g", i ? "," : "", s->rep[i].m[M_W_TOTAL]);
            fprintf(fp, "]}\n");
            fclose(fp);
        }
    }
    fflush(stdout);
}

/* ---- open workload: one rank writes --layers commits with --chunks chunks in all ---- */
static void run_open(bench_work *w) {
    if (w->rank == 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/afmt-bench-open-%llu-%llu.afmt", opt.dir,
                 (unsigned long long)opt.layers, (unsigned long long)opt.chunks);
        uint64_t per = opt.chunks / opt.layers, ce = 16; /* 16 float32 = 64 B per chunk */
        uint64_t shape = per * opt.layers * ce;
        float *buf = malloc(sizeof(float) * (size_t)(per * ce));
        afmt_opts *o;
        afmt_opts_create(&o);
        afmt_opts_set_codec(o, AFMT_CODEC_LZ4, 0);
        afmt_file *f;
        double t0 = bench_now();
        struct stat sb;
        int reuse = opt.keep && stat(path, &sb) == 0;
        if (reuse) goto generated;
        if (afmt_create(MPI_COMM_SELF, path, AFMT_TRUNC, o, &f) != AFMT_OK)
            bench_die("afmt_create(%s): %s", path, afmt_errmsg(NULL));
        if (afmt_define(f, "a", AFMT_FLOAT32, 1, &shape, &ce, NULL, NULL) != AFMT_OK)
            bench_die("afmt_define: %s", afmt_errmsg(f));
        for (uint64_t l = 0; l < opt.layers; l++) {
            for (uint64_t i = 0; i < per * ce; i++)
                buf[i] = (float)sin(0.001 * (double)(l * per * ce + i));
            uint64_t st = l * per * ce, n = per * ce;
            if (afmt_write(f, "a", &st, &n, buf) != AFMT_OK || afmt_commit(f) != AFMT_OK)
                bench_die("layer %llu: %s", (unsigned long long)l, afmt_errmsg(f));
        }
        afmt_close(f);
    generated:;
        double tgen = bench_now() - t0;
        stat(path, &sb);
        printf("# open: %s %s (%llu layers, %llu chunks, %.1f MiB) in %.2f s\n",
               reuse ? "reused" : "generated", path, (unsigned long long)opt.layers,
               (unsigned long long)(per * opt.layers), (double)sb.st_size / MIB, tgen);
        double v[1000], cpu[1000];
        uint64_t nl = 0;
        for (int r = 0; r < opt.reps; r++) {
            double l0 = load1();
            struct timespec c0, c1;
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
            double a = bench_now();
            if (afmt_open(MPI_COMM_SELF, path, AFMT_RDONLY, o, &f) != AFMT_OK)
                bench_die("afmt_open: %s", afmt_errmsg(NULL));
            v[r] = bench_now() - a;
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
            cpu[r] = (double)(c1.tv_sec - c0.tv_sec) + 1e-9 * (double)(c1.tv_nsec - c0.tv_nsec);
            afmt_layers(f, &nl);
            uint64_t st = (uint64_t)r * 977 * ce % shape, n = ce;
            afmt_read(f, "a", &st, &n, buf);
            afmt_close(f);
            printf("#   rep %d: afmt_open %.4f s wall, %.4f s CPU (load %.2f)\n", r, v[r], cpu[r],
                   l0);
        }
        qsort(v, (size_t)opt.reps, sizeof *v, cmp_d);
        qsort(cpu, (size_t)opt.reps, sizeof *cpu, cmp_d);
        int h = opt.reps / 2;
        double med = opt.reps % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
        double cmed = opt.reps % 2 ? cpu[h] : 0.5 * (cpu[h - 1] + cpu[h]);
        printf("open  layers %llu chunks %llu  afmt_open median %.4f s min %.4f max %.4f; CPU "
               "median %.4f s min %.4f\n",
               (unsigned long long)nl, (unsigned long long)(per * opt.layers), med, v[0],
               v[opt.reps - 1], cmed, cpu[0]);
        if (opt.out) {
            FILE *fp = fopen(opt.out, "a");
            if (fp) {
                fprintf(fp,
                        "{\"bench\":\"afmt-bench\",\"date\":\"%s\",\"host\":\"%s\",\"git\":\"%s\","
                        "\"label\":\"%s\",\"workload\":\"open\",\"case\":\"afmt-open\","
                        "\"backend\":\"afmt\",\"np\":1,\"dir\":\"%s\",\"layers\":%llu,"
                        "\"chunks\":%llu,\"file_bytes\":%lld,\"generate_s\":%.3f,\"reps\":%d,"
                        "\"load\":%.2f,\"open_s\":{\"median\":%.6g,\"min\":%.6g,\"max\":%.6g},"
                        "\"open_cpu_s\":{\"median\":%.6g,\"min\":%.6g,\"max\":%.6g}}\n",
                        g_date, g_host, g_git, opt.label ? opt.label : "", opt.dir,
                        (unsigned long long)nl, (unsigned long long)(per * opt.layers),
                        (long long)sb.st_size, tgen, opt.reps, load1(), med, v[0], v[opt.reps - 1],
                        cmed, cpu[0], cpu[opt.reps - 1]);
                fclose(fp);
            }
        }
        if (!opt.keep) unlink(path);
        afmt_opts_free(o);
        free(buf);
    }
    MPI_Barrier(w->world);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    bench_work w;
    memset(&w, 0, sizeof w);
    w.world = MPI_COMM_WORLD;
    MPI_Comm_rank(w.world, &w.rank);
    MPI_Comm_size(w.world, &w.size);
    g_rank = w.rank;
    parse_args(argc, argv);
    shuffle_selftest();

    if (w.rank == 0) {
        gethostname(g_host, sizeof g_host);
        time_t t = time(NULL);
        strftime(g_date, sizeof g_date, "%Y-%m-%dT%H:%M:%S", localtime(&t));
        FILE *p = popen("git -C " AFMT_BENCH_SRCDIR " describe --always --dirty 2>/dev/null", "r");
        if (p) {
            if (!fgets(g_git, sizeof g_git, p)) g_git[0] = '\0';
            g_git[strcspn(g_git, "\n")] = '\0';
            pclose(p);
        }
    }
    if (!strcmp(opt.workload, "open")) {
        run_open(&w);
        MPI_Finalize();
        return 0;
    }

    /* Readers: the first M ranks. */
    int M = opt.readers < 0 || opt.readers > w.size ? w.size : opt.readers;
    if (opt.readers > w.size) bench_die("-R %d > %d ranks", opt.readers, w.size);
    MPI_Comm_split(w.world, w.rank < M ? 0 : MPI_UNDEFINED, w.rank, &w.rcomm);
    w.rsize = M;
    w.rrank = w.rank < M ? w.rank : -1;
    if (opt.readers < 0) opt.readers = w.size;

    build_workload(&w);
    compute_expected(&w);
    void **bufs = calloc((size_t)w.narr, sizeof *bufs);
    for (int i = 0; i < w.narr; i++) {
        bufs[i] = malloc(w.arr[i].rbytes ? (size_t)w.arr[i].rbytes : 1);
        if (!bufs[i]) bench_die("out of memory (read buffers)");
        memset(bufs[i], 0, (size_t)w.arr[i].rbytes);
    }

    /* Cases. */
    int ncase = 0;
    case_state *cs = calloc((size_t)opt.nbe, sizeof *cs);
    for (int k = 0; k < opt.nbe; k++) {
        backend_spec *b = &opt.be[k];
        if (!strcmp(b->backend, "hdf5") && !bench_hdf5_available()) {
            if (w.rank == 0) printf("# hdf5: not built (no parallel HDF5 found); skipped\n");
            continue;
        }
        case_state *s = &cs[ncase++];
        bench_case *c = &s->c;
        c->backend = b->backend;
        c->codec = b->has_codec ? b->codec : opt.codec;
        c->level = b->has_level ? b->level : opt.level;
        c->shuffle = opt.shuffle;
        c->block_size = opt.block_size;
        c->mem_budget = opt.mem_budget;
        c->collective = opt.collective;
        c->steps = opt.steps;
        c->spill_dir = opt.spill_dir;
        c->threads = b->threads >= 0 ? b->threads : opt.threads;
        c->durability = strncmp(b->backend, "afmt", 4) ? -1
                        : b->durability >= 0           ? b->durability
                                                       : opt.durability;
        char dur[8] = ""; /* "@none": in the file name and the label */
        if (c->durability >= 0) snprintf(dur, sizeof dur, "@%s", durability_name(c->durability));
        if (!strncmp(b->backend, "mpiio", 5)) c->codec = 0;
        if (!strcmp(b->backend, "mpiio")) c->collective = 1; /* the collective baseline */
        if (!strcmp(b->backend, "mpiio-ind")) c->collective = 0;
        snprintf(c->path, sizeof c->path, "%s/afmt-bench-%d-%s%s-%s-t%d.%s", opt.dir,
                 (int)getppid(), b->backend, dur, codec_name(c->codec), c->threads,
                 !strcmp(b->backend, "hdf5") ? "h5" : "dat");
        MPI_Bcast(c->path, sizeof c->path, MPI_CHAR, 0, w.world);
        if (!strncmp(b->backend, "mpiio", 5))
            snprintf(s->label, sizeof s->label, "%s", b->backend);
        else
            snprintf(s->label, sizeof s->label, "%s:%s%s%s", b->backend, codec_name(c->codec),
                     c->codec && c->shuffle ? "+sh" : "",
                     strcmp(b->backend, "hdf5") && c->collective ? "+coll" : "");
        if (b->threads >= 0 && strncmp(b->backend, "mpiio", 5))
            snprintf(s->label, sizeof s->label, "%s/%d:%s%s%s", b->backend, b->threads,
                     codec_name(c->codec), c->codec && c->shuffle ? "+sh" : "",
                     strcmp(b->backend, "hdf5") && c->collective ? "+coll" : "");
        if (dur[0]) { /* afmt@none:lz4+sh */
            char *colon = strchr(s->label, ':');
            char rest[sizeof s->label];
            snprintf(rest, sizeof rest, "%s", colon ? colon : "");
            if (colon) *colon = '\0';
            size_t used = strlen(s->label);
            snprintf(s->label + used, sizeof s->label - used, "%s%s", dur, rest);
        }
        s->skip_read = !strcmp(b->backend, "codec") && M != w.size;
    }

    for (int r = 0; r < opt.reps; r++)
        for (int k = 0; k < ncase; k++) run_case(&cs[(k + r) % ncase], &w, bufs);
    report(cs, ncase, &w);

    for (int i = 0; i < w.narr; i++) {
        free(w.arr[i].data);
        free(bufs[i]);
    }
    free(bufs);
    free(w.arr);
    free(cs);
    free(g_expect);
    if (w.rcomm != MPI_COMM_NULL) MPI_Comm_free(&w.rcomm);
    MPI_Finalize();
    return 0;
}
