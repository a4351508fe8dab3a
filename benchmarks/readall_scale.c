/* readall_scale.c - index segment reads per node at a restart, afmt_read against
 * afmt_read_all (docs/performance.md, "Collective reads"), counted rather than timed:
 * afmt__segcache_stats of each rank's handle, summed over each node.
 *
 * P ranks write a 2-d float32 array of (16 P) x 256 elements in chunks of 4 x 16, each rank
 * 16 rows, in -n layers (layer 1 everything, layer k > 1 the first 16 >> (k - 1) rows of
 * each rank's band: chunks fall through to older layers), with one index segment per node
 * per layer (the default) or, with the hint afmt_index_aggregation=rank, one per rank.
 * The file is reopened and read with the writers' decomposition ("rows", a restart) or by
 * column bands ("cols", another decomposition), once with afmt_read on every rank and
 * once with afmt_read_all, each on a fresh handle; the two results must be equal.
 *
 * Usage: mpiexec -n P readall_scale [-n 3] [-g 0] [-d /dev/shm]
 *   -g G: nodes are runs of G ranks (the test hook afmt__set_read_node_ranks), 0: the real
 *   nodes (MPI_COMM_TYPE_SHARED). Rank 0 prints one line per case. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/file.h"
#include "api/read.h"

typedef unsigned long long ull;

enum { BAND = 16, COLS = 256, CR = 4, CC = 16 };

static int rank, nranks, layers = 3, group;
static const char *dir = "/dev/shm";

static void die(const char *what, int rc, const afmt_file *f) {
    fprintf(stderr, "readall_scale rank %d: %s: %s (%s)\n", rank, what, afmt_strerror(rc),
            afmt_errmsg(f));
    MPI_Abort(MPI_COMM_WORLD, 1);
}

#define CHECK(call, f)                                                                             \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != AFMT_OK) die(#call, rc_, f);                                                    \
    } while (0)

static afmt_opts *opts_for(const char *agg) {
    afmt_opts *o = NULL;
    CHECK(afmt_opts_create(&o), NULL);
    CHECK(afmt_opts_set_codec(o, AFMT_CODEC_NONE, 0), NULL);
    if (agg) {
        MPI_Info info;
        MPI_Info_create(&info);
        MPI_Info_set(info, "afmt_index_aggregation", agg);
        CHECK(afmt_opts_set_mpi_info(o, info), NULL);
        MPI_Info_free(&info);
    }
    return o;
}

static void write_file(const char *path, const char *agg) {
    afmt_opts *o = opts_for(agg);
    afmt_file *f = NULL;
    CHECK(afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, o, &f), NULL);
    uint64_t shape[2] = {(uint64_t)BAND * (uint64_t)nranks, COLS}, chunk[2] = {CR, CC};
    CHECK(afmt_define(f, "u", AFMT_FLOAT32, 2, shape, chunk, NULL, NULL), f);
    float *buf = malloc(sizeof(float) * BAND * COLS);
    for (int k = 0; k < layers; k++) {
        uint64_t rows = (uint64_t)(BAND >> k) ? (uint64_t)(BAND >> k) : 1;
        for (uint64_t i = 0; i < rows * COLS; i++)
            buf[i] = (float)(k * 1000000 + rank * 10000) + (float)i;
        uint64_t start[2] = {(uint64_t)rank * BAND, 0}, count[2] = {rows, COLS};
        CHECK(afmt_write(f, "u", start, count, buf), f);
        CHECK(afmt_commit(f), f);
    }
    free(buf);
    CHECK(afmt_close(f), NULL);
    afmt_opts_free(o);
}

/* Segment reads of f's handle: *total over every rank, *node_max the largest sum over the
 * ranks of one node. */
static void count(afmt_file *f, MPI_Comm node, int leader, uint64_t *total, uint64_t *node_max) {
    uint64_t bytes, entries, reads = 0, sum = 0;
    afmt__segcache_stats(&f->idx, &bytes, &entries, &reads);
    MPI_Allreduce(&reads, &sum, 1, MPI_UINT64_T, MPI_SUM, node);
    MPI_Allreduce(&reads, total, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    uint64_t mine = leader ? sum : 0;
    MPI_Allreduce(&mine, node_max, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
}

static void run_case(const char *path, const char *agg, const char *pattern, MPI_Comm node,
                     int leader, int nnodes) {
    uint64_t rows = (uint64_t)BAND * (uint64_t)nranks, start[2], cnt[2];
    if (!strcmp(pattern, "rows")) {
        start[0] = (uint64_t)rank * BAND;
        start[1] = 0;
        cnt[0] = BAND;
        cnt[1] = COLS;
    } else {
        uint64_t lo = COLS * (uint64_t)rank / (uint64_t)nranks,
                 hi = COLS * (uint64_t)(rank + 1) / (uint64_t)nranks;
        start[0] = 0;
        start[1] = lo;
        cnt[0] = rows;
        cnt[1] = hi - lo; /* 0 when there are more ranks than columns: reads nothing */
    }
    uint64_t n = cnt[0] * cnt[1];
    float *a = malloc(sizeof(float) * (n ? n : 1)), *b = malloc(sizeof(float) * (n ? n : 1));
    afmt_file *f = NULL;
    uint64_t segs = 0, ind_total, ind_node, all_total, all_node;
    CHECK(afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f), NULL);
    for (uint64_t k = f->idx.first_lazy; k < f->idx.n_layers; k++) segs += f->idx.layers[k].n_segs;
    if (n) CHECK(afmt_read(f, "u", start, cnt, a), f);
    count(f, node, leader, &ind_total, &ind_node);
    CHECK(afmt_close(f), NULL);
    CHECK(afmt_open(MPI_COMM_WORLD, path, AFMT_RDONLY, NULL, &f), NULL);
    afmt__set_read_node_ranks(f, group);
    CHECK(afmt_read_all(f, "u", start, cnt, b), f);
    count(f, node, leader, &all_total, &all_node);
    CHECK(afmt_close(f), NULL);
    int same = n == 0 || memcmp(a, b, sizeof(float) * n) == 0, all_same = 0;
    MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all_same) die("afmt_read_all and afmt_read differ", AFMT_ECORRUPT, NULL);
    if (rank == 0)
        printf("P=%-3d nodes=%-2d agg=%-4s read=%-4s layers=%d segments=%-3llu | segment reads per "
               "node (largest node): afmt_read %llu, afmt_read_all %llu | all nodes: afmt_read "
               "%llu, afmt_read_all %llu | bytes equal\n",
               nranks, nnodes, agg ? agg : "node", pattern, layers, (ull)segs, (ull)ind_node,
               (ull)all_node, (ull)ind_total, (ull)all_total);
    free(a);
    free(b);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    int c;
    while ((c = getopt(argc, argv, "n:g:d:")) != -1) {
        if (c == 'n')
            layers = atoi(optarg);
        else if (c == 'g')
            group = atoi(optarg);
        else if (c == 'd')
            dir = optarg;
        else {
            if (rank == 0) fprintf(stderr, "usage: readall_scale [-n layers] [-g G] [-d dir]\n");
            MPI_Finalize();
            return 2;
        }
    }
    if (layers < 1 || layers > 5) layers = 3;
    MPI_Comm node;
    if (group > 0)
        MPI_Comm_split(MPI_COMM_WORLD, rank / group, rank, &node);
    else
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    int nrank = 0, leader, nnodes = 0;
    MPI_Comm_rank(node, &nrank);
    leader = nrank == 0;
    MPI_Allreduce(&leader, &nnodes, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    char path[512];
    unsigned pid = (unsigned)getpid();
    MPI_Bcast(&pid, 1, MPI_UNSIGNED, 0, MPI_COMM_WORLD);
    snprintf(path, sizeof path, "%s/readall_scale-%u.afmt", dir, pid);
    const char *aggs[2] = {NULL, "rank"}, *patterns[2] = {"rows", "cols"};
    for (int i = 0; i < 2; i++) {
        write_file(path, aggs[i]);
        for (int j = 0; j < 2; j++) run_case(path, aggs[i], patterns[j], node, leader, nnodes);
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) unlink(path);
    }
    MPI_Comm_free(&node);
    MPI_Finalize();
    return 0;
}
