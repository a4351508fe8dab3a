/* meta_scale.c - what a commit and an open cost each rank in metadata, counted rather than
 * timed (docs/performance.md, "Format v2 metadata at scale"): the bytes every rank
 * receives through MPI per commit and per open (pmpi_count.c), and the bytes its index
 * holds after the commit, after an open and after a read (afmt__index_memory). Also the
 * commit time (largest over the ranks, median over the commits).
 *
 * Every rank writes -c chunks of -e float64 elements (one contiguous slab of a 1-d array,
 * codec none) and commits, -n times; then the file is closed, opened read-only and each
 * rank reads its own first chunk. Each format version of -V runs in the same process one
 * after the other: version 1 through the test hook afmt__set_write_version(1) (every
 * chunk record in the footer, the whole index on every rank), "2" version 2 as the library
 * writes it (one index segment per node, the default), and "2r" version 2 with the hint
 * afmt_index_aggregation=rank (one segment per rank).
 *
 * Usage: mpiexec -n P meta_scale [-c 1000] [-e 1] [-n 3] [-V 1,2,2r,2g16] [-d /dev/shm]
 *                                [-b mpiio|posix] [-o results.jsonl] [-l label]
 * Rank 0 prints one line per version (and a JSON object per version with -o). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/file.h"
#include "pmpi_count.h"

typedef unsigned long long ull;

static struct {
    uint64_t chunks, elems;
    int commits;
    char versions[32];
    const char *dir, *backend, *out, *label;
} opt = {1000, 1, 3, "1,2,2r", "/dev/shm", "mpiio", NULL, ""};

static int rank, nranks;

/* VmHWM of this process in KiB (0 if unknown). */
static uint64_t hwm_kib(void) {
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    uint64_t v = 0;
    while (fp && fgets(line, sizeof line, fp))
        if (!strncmp(line, "VmHWM:", 6)) v = strtoull(line + 6, NULL, 10);
    if (fp) fclose(fp);
    return v;
}

static void die(const char *what, int rc, const afmt_file *f) {
    fprintf(stderr, "meta_scale rank %d: %s: %s (%s)\n", rank, what, afmt_strerror(rc),
            afmt_errmsg(f));
    MPI_Abort(MPI_COMM_WORLD, 1);
}

#define CHECK(call, f)                                                                             \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != AFMT_OK) die(#call, rc_, f);                                                    \
    } while (0)

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* What one rank measured, gathered to rank 0 as u64s. */
enum {
    R_COMMIT_RECV,  /* bytes received in the last commit */
    R_COMMIT_CALLS, /* MPI calls counted in it (all kinds) */
    R_COMMIT_MEM,   /* index bytes after the last commit */
    R_OPEN_RECV,
    R_OPEN_MEM,
    R_READ_RECV,
    R_READ_MEM,
    R_HWM,   /* VmHWM of the process after the case, KiB (cumulative over the cases run) */
    R_KIND0, /* bytes received in the last commit, by kind (PC_N) */
    R_N = R_KIND0 + PC_N
};

/* min, median, max of the non-root ranks' value k (all ranks if there is only one). */
static void nonroot(const uint64_t *all, int k, uint64_t out[3]) {
    int n = nranks > 1 ? nranks - 1 : 1, first = nranks > 1 ? 1 : 0;
    uint64_t *v = malloc(sizeof *v * (size_t)n);
    for (int r = 0; r < n; r++) v[r] = all[(size_t)(first + r) * R_N + (size_t)k];
    qsort(v, (size_t)n, sizeof *v, cmp_u64);
    out[0] = v[0];
    out[1] = v[n / 2];
    out[2] = v[n - 1];
    free(v);
}

/* One case: name "1" (the v1 hook), "2" (v2), "2r" (v2, a segment per rank) or "2gN" (v2,
 * a segment per group of N ranks: the hint afmt_node_group_size=N). */
static void run(const char *name) {
    uint32_t version = name[0] == '1' ? 1 : 2;
    int per_rank = name[1] == 'r';
    const char *group = name[1] == 'g' ? name + 2 : NULL; /* "2g16": groups of 16 ranks */
    char path[512];
    snprintf(path, sizeof path, "%s/meta_scale-%d-v%s.afmt", opt.dir, nranks, name);
    afmt__set_write_version(version);
    afmt_opts *o = NULL;
    CHECK(afmt_opts_create(&o), NULL);
    MPI_Info info = MPI_INFO_NULL;
    if (per_rank || group) {
        MPI_Info_create(&info);
        if (per_rank) MPI_Info_set(info, "afmt_index_aggregation", "rank");
        if (group) MPI_Info_set(info, "afmt_node_group_size", group);
        CHECK(afmt_opts_set_mpi_info(o, info), NULL);
    }
    CHECK(afmt_opts_set_codec(o, AFMT_CODEC_NONE, 0), NULL);
    CHECK(afmt_opts_set_shuffle(o, 0), NULL);
    CHECK(afmt__opts_set_backend(o, opt.backend), NULL);
    uint64_t mine = opt.chunks * opt.elems;
    uint64_t shape = mine * (uint64_t)nranks, chunk = opt.elems, start = mine * (uint64_t)rank;
    double *data = malloc(sizeof *data * (size_t)mine);
    for (uint64_t i = 0; i < mine; i++) data[i] = (double)(start + i);

    afmt_file *f = NULL;
    CHECK(afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, o, &f), f);
    CHECK(afmt_define(f, "x", AFMT_FLOAT64, 1, &shape, &chunk, NULL, NULL), f);
    double *tc = malloc(sizeof *tc * (size_t)opt.commits);
    uint64_t me[R_N] = {0};
    pmpi_counts pc;
    for (int i = 0; i < opt.commits; i++) {
        data[0] = (double)i;
        CHECK(afmt_write(f, "x", &start, &mine, data), f);
        MPI_Barrier(MPI_COMM_WORLD);
        MPI_Pcontrol(1);
        double t0 = MPI_Wtime();
        CHECK(afmt_commit(f), f);
        double t = MPI_Wtime() - t0;
        MPI_Pcontrol(0);
        MPI_Allreduce(&t, &tc[i], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    }
    pmpi_count_get(&pc);
    me[R_COMMIT_RECV] = pc.total;
    for (int k = 0; k < PC_N; k++) {
        me[R_KIND0 + k] = pc.bytes[k];
        me[R_COMMIT_CALLS] += pc.calls[k];
    }
    me[R_COMMIT_MEM] = afmt__index_memory(&f->idx);
    CHECK(afmt_close(f), NULL);

    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Pcontrol(1);
    CHECK(afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, o, &f), NULL);
    MPI_Pcontrol(0);
    pmpi_count_get(&pc);
    me[R_OPEN_RECV] = pc.total;
    me[R_OPEN_MEM] = afmt__index_memory(&f->idx);
    double back[64];
    uint64_t n = opt.elems < 64 ? opt.elems : 64;
    MPI_Pcontrol(1);
    CHECK(afmt_read(f, "x", &start, &n, back), f);
    MPI_Pcontrol(0);
    pmpi_count_get(&pc);
    me[R_READ_RECV] = pc.total;
    me[R_READ_MEM] = afmt__index_memory(&f->idx);
    int bad = back[0] != (double)(opt.commits - 1);
    for (uint64_t i = 1; i < n; i++) bad |= back[i] != (double)(start + i);
    if (bad) {
        fprintf(stderr, "meta_scale rank %d: read back wrong values\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    CHECK(afmt_close(f), NULL);
    me[R_HWM] = hwm_kib();
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        unlink(path);
        char lock[600];
        snprintf(lock, sizeof lock, "%s.lock", path);
        unlink(lock);
    }

    uint64_t *all = rank == 0 ? malloc(sizeof *all * R_N * (size_t)nranks) : NULL;
    MPI_Gather(me, R_N, MPI_UINT64_T, all, R_N, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        qsort(tc, (size_t)opt.commits, sizeof *tc, cmp_dbl);
        double tmed = tc[opt.commits / 2], tmin = tc[0], tmax = tc[opt.commits - 1];
        uint64_t cr[3], cm[3], orc[3], om[3], rm[3], calls[3], hw[3];
        nonroot(all, R_HWM, hw);
        nonroot(all, R_COMMIT_RECV, cr);
        nonroot(all, R_COMMIT_CALLS, calls);
        nonroot(all, R_COMMIT_MEM, cm);
        nonroot(all, R_OPEN_RECV, orc);
        nonroot(all, R_OPEN_MEM, om);
        nonroot(all, R_READ_MEM, rm);
        /* The kinds of the non-root rank with the median commit bytes (rank 0 if alone). */
        int who = 0;
        for (int r = nranks > 1 ? 1 : 0; r < nranks; r++)
            if (all[(size_t)r * R_N + R_COMMIT_RECV] == cr[1]) {
                who = r;
                break;
            }
        char kinds[512] = "";
        for (int k = 0; k < PC_N; k++) {
            uint64_t b = all[(size_t)who * R_N + R_KIND0 + (size_t)k];
            if (b)
                snprintf(kinds + strlen(kinds), sizeof kinds - strlen(kinds), "%s%s=%llu",
                         kinds[0] ? "," : "", pmpi_count_name(k), (ull)b);
        }
        printf("P=%-4d v%-2s commit_s %.4f (%.4f-%.4f) | commit recv B: rank0 %llu, others "
               "%llu/%llu/%llu (min/med/max; %llu MPI calls; rank %d: %s) | index B after "
               "commit: rank0 %llu, others max %llu | open recv B: rank0 %llu, others max "
               "%llu | index B after open: rank0 %llu, others max %llu; after a read: rank0 "
               "%llu, others max %llu | VmHWM MiB: rank0 %.1f, others max %.1f\n",
               nranks, name, tmed, tmin, tmax, (ull)all[R_COMMIT_RECV], (ull)cr[0], (ull)cr[1],
               (ull)cr[2], (ull)calls[1], who, kinds, (ull)all[R_COMMIT_MEM], (ull)cm[2],
               (ull)all[R_OPEN_RECV], (ull)orc[2], (ull)all[R_OPEN_MEM], (ull)om[2],
               (ull)all[R_READ_MEM], (ull)rm[2], (double)all[R_HWM] / 1024.0,
               (double)hw[2] / 1024.0);
        fflush(stdout);
        if (opt.out) {
            FILE *fp = fopen(opt.out, "a");
            if (fp) {
                fprintf(
                    fp,
                    "{\"label\":\"%s\",\"ranks\":%d,\"version\":\"%s\",\"chunks_per_rank\":%llu,"
                    "\"elems_per_chunk\":%llu,\"commits\":%d,\"backend\":\"%s\","
                    "\"commit_s\":{\"median\":%.6g,\"min\":%.6g,\"max\":%.6g},"
                    "\"commit_recv_rank0\":%llu,\"commit_recv_others\":[%llu,%llu,%llu],"
                    "\"commit_calls_others_median\":%llu,\"commit_recv_kinds\":\"%s\","
                    "\"index_after_commit_rank0\":%llu,\"index_after_commit_others_max\":%llu,"
                    "\"open_recv_rank0\":%llu,\"open_recv_others_max\":%llu,"
                    "\"index_after_open_rank0\":%llu,\"index_after_open_others_max\":%llu,"
                    "\"index_after_read_rank0\":%llu,\"index_after_read_others_max\":%llu,"
                    "\"vmhwm_kib_rank0\":%llu,\"vmhwm_kib_others_max\":%llu}\n",
                    opt.label, nranks, name, (ull)opt.chunks, (ull)opt.elems, opt.commits,
                    opt.backend, tmed, tmin, tmax, (ull)all[R_COMMIT_RECV], (ull)cr[0], (ull)cr[1],
                    (ull)cr[2], (ull)calls[1], kinds, (ull)all[R_COMMIT_MEM], (ull)cm[2],
                    (ull)all[R_OPEN_RECV], (ull)orc[2], (ull)all[R_OPEN_MEM], (ull)om[2],
                    (ull)all[R_READ_MEM], (ull)rm[2], (ull)all[R_HWM], (ull)hw[2]);
                fclose(fp);
            }
        }
    }
    free(all);
    free(tc);
    free(data);
    afmt_opts_free(o);
    if (info != MPI_INFO_NULL) MPI_Info_free(&info);
}

static void usage(void) {
    if (rank == 0)
        fprintf(stderr,
                "usage: meta_scale [-c chunks/rank] [-e elems/chunk] [-n commits] [-V 1,2,2r,2g16] "
                "[-d dir] [-b mpiio|posix] [-o out.jsonl] [-l label]\n");
    MPI_Finalize();
    exit(2);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    int c;
    while ((c = getopt(argc, argv, "c:e:n:V:d:b:o:l:h")) != -1) {
        switch (c) {
        case 'c':
            opt.chunks = strtoull(optarg, NULL, 10);
            break;
        case 'e':
            opt.elems = strtoull(optarg, NULL, 10);
            break;
        case 'n':
            opt.commits = atoi(optarg);
            break;
        case 'V':
            snprintf(opt.versions, sizeof opt.versions, "%s", optarg);
            break;
        case 'd':
            opt.dir = optarg;
            break;
        case 'b':
            opt.backend = optarg;
            break;
        case 'o':
            opt.out = optarg;
            break;
        case 'l':
            opt.label = optarg;
            break;
        default:
            usage();
        }
    }
    if (opt.chunks == 0 || opt.elems == 0 || opt.commits < 1) usage();
    for (char *tok = strtok(opt.versions, ","); tok; tok = strtok(NULL, ","))
        if (!strcmp(tok, "1") || !strcmp(tok, "2") || !strcmp(tok, "2r") ||
            (!strncmp(tok, "2g", 2) && atoi(tok + 2) > 0))
            run(tok);
    MPI_Finalize();
    return 0;
}
