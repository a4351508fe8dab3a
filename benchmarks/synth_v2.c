/* synth_v2.c - a file as W writer ranks x C chunks each x 1 layer would leave it, made
 * through the library's own encoders (afmt__segment_encode, afmt__segment_root,
 * afmt__footer_encode, afmt__trailer_encode, afmt__super_encode), and the cost of opening
 * it and reading one chunk on one rank (docs/performance.md, "Format v2 metadata at
 * scale").
 *
 *   synth_v2 gen [-w 100000] [-c 100] [-e 1] [-n 128] [-d /dev/shm]
 *       writes DIR/synth-W-C-v2.afmt (each writer: one block of C chunks of E float64
 *       elements, codec none, then its index segment; the footer holds the root table of
 *       W segments), DIR/synth-W-C-v2nK.afmt (the same with a segment per node of K
 *       writers, as the node aggregation writes it: a node's blocks, then its segment; not
 *       made for -n 1) and DIR/synth-W-C-v1.afmt (the same blocks, no segments, every block
 *       and chunk record in one version-1 footer). The array "x" has W*C*E elements,
 *       chunk E, element i holds the value i.
 *   synth_v2 open FILE [-r WRITER]
 *       (one rank) afmt_open + afmt_read of one chunk (writer W/2's chunk C/2 by default)
 *       and prints: the RSS right after MPI_Init, the open and read times, the peak RSS
 *       (getrusage ru_maxrss) and the index's bytes. Run it as a fresh process per
 *       measurement (benchmarks/meta_scale.sh does, 5 times per file). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "api/file.h"
#include "format/segment.h"

typedef unsigned long long ull;

static void fail(const char *what) {
    fprintf(stderr, "synth_v2: %s\n", what);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A /proc/self/status field in KiB (VmRSS, VmHWM). */
static long proc_kib(const char *field) {
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fp && fgets(line, sizeof line, fp))
        if (!strncmp(line, field, n) && line[n] == ':') v = strtol(line + n + 1, NULL, 10);
    if (fp) fclose(fp);
    return v;
}

static void put(FILE *fp, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, fp) != n) fail("write failed");
}

static void array_rec(afmt_array_rec *a, uint64_t elems, uint64_t chunk) {
    memset(a, 0, sizeof *a);
    a->id = 1;
    a->kind = AFMT_REC_DEFINE;
    a->dtype = AFMT_FLOAT64;
    a->ndim = 1;
    snprintf(a->name, sizeof a->name, "x");
    snprintf(a->dims[0], sizeof a->dims[0], "dim0");
    a->shape[0] = elems;
    a->chunk[0] = chunk;
    a->codec = AFMT_CODEC_UNSET;
}

/* Footer + trailer at foff, then the superblock region (slot B: the empty create
 * generation 1, slot A: generation 2 naming the layer). */
static void finish(FILE *fp, const afmt_layer *L, uint64_t foff) {
    afmt_buf fb;
    afmt__buf_init(&fb);
    if (afmt__footer_encode(L, &fb) != AFMT_OK) fail(afmt__thread_errbuf());
    uint64_t flen = fb.len, fsum = afmt__footer_checksum(fb.data, flen);
    uint8_t tr[AFMT_TRAILER_SIZE];
    afmt__trailer_encode(foff, flen, fsum, tr);
    put(fp, fb.data, fb.len);
    put(fp, tr, sizeof tr);
    afmt__buf_free(&fb);
    afmt_super s;
    memset(&s, 0, sizeof s);
    s.version = AFMT_FORMAT_VERSION;
    for (int i = 0; i < 16; i++) s.uuid[i] = (uint8_t)(0x5a ^ (i * 37));
    s.uuid[6] = (uint8_t)((s.uuid[6] & 0x0f) | 0x40);
    s.uuid[8] = (uint8_t)((s.uuid[8] & 0x3f) | 0x80);
    s.generation = 1;
    s.eof = AFMT_SUPER_REGION;
    s.next_array_id = 1;
    uint8_t region[AFMT_SUPER_REGION] = {0};
    afmt__super_encode(&s, region + afmt__super_slot_offset(1));
    s.generation = 2;
    s.footer_offset = foff;
    s.footer_length = flen;
    s.footer_checksum = fsum;
    s.eof = foff + flen + AFMT_TRAILER_SIZE;
    s.nlayers = 1;
    s.layer_id = 1;
    s.next_array_id = 2;
    afmt__super_encode(&s, region + afmt__super_slot_offset(2));
    if (fseek(fp, 0, SEEK_SET) != 0) fail("seek failed");
    put(fp, region, sizeof region);
}

/* Version 2 into path: K writers per node (K = 1: a segment per writer), each node's
 * ranks' blocks one after the other, then the node's segment (written by its lowest rank,
 * format.md 9.4); the root table in the footer. */
static void gen_v2(const char *path, afmt_layer *L, uint64_t W, uint64_t C, uint64_t E,
                   uint64_t K) {
    uint64_t raw = C * E * sizeof(double), nodes = (W + K - 1) / K;
    double *blk = malloc((size_t)raw);
    afmt_block_rec *B = malloc(sizeof *B * (size_t)K);
    afmt_chunk_rec *sc = malloc(sizeof *sc * (size_t)(K * C));
    L->segs = malloc(sizeof *L->segs * (size_t)nodes);
    double t0 = now();
    FILE *fp = fopen(path, "wb");
    if (!fp || !blk || !B || !sc || !L->segs) fail("cannot create the v2 file");
    static char iobuf[1 << 22];
    setvbuf(fp, iobuf, _IOFBF, sizeof iobuf);
    put(fp, (uint8_t[AFMT_SUPER_REGION]){0}, AFMT_SUPER_REGION);
    L->version = 2;
    uint64_t at = AFMT_SUPER_REGION;
    afmt_buf seg;
    afmt__buf_init(&seg);
    for (uint64_t n = 0; n < nodes; n++) {
        uint64_t first = n * K, k = 0;
        for (uint64_t w = first; w < W && w < first + K; w++, k++) {
            for (uint64_t i = 0; i < C * E; i++) blk[i] = (double)(w * C * E + i);
            B[k] = (afmt_block_rec){at,         raw, raw, afmt__checksum(blk, raw), AFMT_CODEC_NONE,
                                    (uint32_t)w};
            for (uint64_t i = 0; i < C; i++)
                sc[k * C + i] =
                    (afmt_chunk_rec){1, w * C + i, k, i * E * sizeof(double), E * sizeof(double)};
            put(fp, blk, (size_t)raw);
            at += raw;
        }
        seg.len = 0;
        if (afmt__segment_encode(1, (uint32_t)first, B, k, sc, k * C, &seg) != AFMT_OK)
            fail(afmt__thread_errbuf());
        afmt__segment_root(seg.data, seg.len, at, &L->segs[n]);
        put(fp, seg.data, seg.len);
        at += seg.len;
    }
    L->n_segs = nodes;
    L->seg_blocks = W;
    L->seg_chunks = W * C;
    finish(fp, L, at);
    if (fclose(fp) != 0) fail("close failed");
    printf("# gen: %s: %llu writers x %llu chunks of %llu float64 (%llu chunk records), %llu "
           "segments (%llu writers each), data and segments %.1f MiB, file %.1f MiB, in %.1f s\n",
           path, (ull)W, (ull)C, (ull)E, (ull)(W * C), (ull)nodes, (ull)K,
           (double)(at - AFMT_SUPER_REGION) / 1048576.0, (double)(at + 80 * nodes) / 1048576.0,
           now() - t0);
    free(L->segs);
    L->segs = NULL;
    L->n_segs = L->seg_blocks = L->seg_chunks = 0;
    afmt__buf_free(&seg);
    free(blk);
    free(B);
    free(sc);
}

static void gen(const char *dir, uint64_t W, uint64_t C, uint64_t E, uint64_t K) {
    char p2[512], p1[512];
    uint64_t raw = C * E * sizeof(double);
    double *blk = malloc((size_t)raw);
    afmt_layer L;
    memset(&L, 0, sizeof L);
    afmt_array_rec arr;
    array_rec(&arr, W * C * E, E);
    L.layer_id = 1;
    L.data_offset = AFMT_SUPER_REGION;
    L.time_ns = (uint64_t)time(NULL) * 1000000000u;
    L.next_array_id = 2;
    L.nranks = (uint32_t)W;
    L.arrays = &arr;
    L.n_arrays = 1;
    snprintf(p2, sizeof p2, "%s/synth-%llu-%llu-v2.afmt", dir, (ull)W, (ull)C);
    gen_v2(p2, &L, W, C, E, 1);
    if (K > 1) {
        snprintf(p2, sizeof p2, "%s/synth-%llu-%llu-v2n%llu.afmt", dir, (ull)W, (ull)C, (ull)K);
        gen_v2(p2, &L, W, C, E, K);
    }
    snprintf(p1, sizeof p1, "%s/synth-%llu-%llu-v1.afmt", dir, (ull)W, (ull)C);
    /* Version 1: the blocks alone, every block and chunk record in the footer. */
    static char iobuf[1 << 22];
    double t0 = now();
    FILE *fp = fopen(p1, "wb");
    if (!fp || !blk) fail("cannot create the v1 file");
    setvbuf(fp, iobuf, _IOFBF, sizeof iobuf);
    put(fp, (uint8_t[AFMT_SUPER_REGION]){0}, AFMT_SUPER_REGION);
    L.version = 1;
    L.blocks = malloc(sizeof *L.blocks * (size_t)W);
    L.chunks = malloc(sizeof *L.chunks * (size_t)(W * C));
    if (!L.blocks || !L.chunks) fail("out of memory for the v1 tables");
    uint64_t at = AFMT_SUPER_REGION;
    for (uint64_t w = 0; w < W; w++) {
        for (uint64_t i = 0; i < C * E; i++) blk[i] = (double)(w * C * E + i);
        L.blocks[w] =
            (afmt_block_rec){at, raw, raw, afmt__checksum(blk, raw), AFMT_CODEC_NONE, (uint32_t)w};
        for (uint64_t i = 0; i < C; i++)
            L.chunks[w * C + i] =
                (afmt_chunk_rec){1, w * C + i, w, i * E * sizeof(double), E * sizeof(double)};
        put(fp, blk, (size_t)raw);
        at += raw;
    }
    L.n_blocks = W;
    L.n_chunks = W * C;
    finish(fp, &L, at);
    if (fclose(fp) != 0) fail("close failed");
    printf("# gen: %s: the same blocks, one v1 footer of %llu block and %llu chunk records, "
           "file %.1f MiB, in %.1f s\n",
           p1, (ull)W, (ull)(W * C), (double)(at + 40 * W + 40 * W * C) / 1048576.0, now() - t0);
    free(L.blocks);
    free(L.chunks);
    free(blk);
}

static void open_one(const char *path, long writer) {
    long rss0 = proc_kib("VmRSS"), hwm0 = proc_kib("VmHWM");
    double t0 = now();
    afmt_file *f = NULL;
    int rc = afmt_open(MPI_COMM_SELF, path, AFMT_RDONLY, NULL, &f);
    if (rc != AFMT_OK) fail(afmt_errmsg(NULL));
    double t1 = now();
    uint64_t open_mem = afmt__index_memory(&f->idx);
    afmt_info info;
    if (afmt_inquire(f, "x", &info) != AFMT_OK) fail(afmt_errmsg(f));
    uint64_t E = info.chunk[0], nch = info.shape[0] / E, W = f->idx.layers[0].nranks;
    uint64_t C = nch / W;
    unsigned version = f->idx.layers[0].version;
    unsigned long long nsegs = f->idx.layers[0].n_segs;
    uint64_t w = writer >= 0 ? (uint64_t)writer : W / 2, start = (w * C + C / 2) * E;
    double *buf = malloc(sizeof *buf * (size_t)E);
    double t2 = now();
    if (!buf || afmt_read(f, "x", &start, &E, buf) != AFMT_OK) fail(afmt_errmsg(f));
    double t3 = now();
    for (uint64_t i = 0; i < E; i++)
        if (buf[i] != (double)(start + i)) fail("read back a wrong value");
    uint64_t read_mem = afmt__index_memory(&f->idx);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    afmt_close(f);
    free(buf);
    printf("open %s version %u segments %llu: open_s %.6f read_s %.6f total_s %.6f | "
           "rss_after_init_mib %.1f "
           "(hwm %.1f) peak_rss_mib %.1f delta_mib %.1f | index_bytes after open %llu, after the "
           "read %llu\n",
           path, version, nsegs, t1 - t0, t3 - t2, t3 - t0, (double)rss0 / 1024.0,
           (double)hwm0 / 1024.0, (double)ru.ru_maxrss / 1024.0,
           (double)(ru.ru_maxrss - rss0) / 1024.0, (ull)open_mem, (ull)read_mem);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    if (argc < 2)
        fail("usage: synth_v2 gen [-w W] [-c C] [-e E] [-n K] [-d DIR] | open FILE [-r WRITER]");
    const char *dir = "/dev/shm", *file = NULL;
    uint64_t W = 100000, C = 100, E = 1, K = 128;
    long writer = -1;
    int mode_gen = !strcmp(argv[1], "gen");
    if (!mode_gen && (strcmp(argv[1], "open") || argc < 3)) fail("unknown mode");
    int first = mode_gen ? 2 : 3;
    if (!mode_gen) file = argv[2];
    for (int i = first; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-w"))
            W = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "-c"))
            C = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "-e"))
            E = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "-d"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "-n"))
            K = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "-r"))
            writer = strtol(argv[i + 1], NULL, 10);
        else
            fail("unknown option");
    }
    if (mode_gen)
        gen(dir, W, C, E, K ? K : 1);
    else
        open_one(file, writer);
    MPI_Finalize();
    return 0;
}
