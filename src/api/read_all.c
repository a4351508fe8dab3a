/* read_all.c - afmt_read_all: the collective read. Before the ordinary read (read.c), the
 * ranks of each node bring the index segments their selections need into their caches,
 * each segment read once per node: a dry lookup over each rank's chunks names the
 * segments missing from its cache (lazy.h), the node gathers and deduplicates them, one
 * node rank reads each and broadcasts its bytes, and the ranks that asked for it or may
 * need it later (its key range meets their chunks) check and cache it. Rounds repeat while a rank
 * still misses segments (a chunk not found in a layer falls through to an older one), at most once
 * per lazy layer and once more. Data blocks are still read by each rank for itself. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/file.h"
#include "api/read.h"
#include "format/grid.h"

typedef unsigned long long ull;

#ifdef AFMT_TESTING
void afmt__set_read_node_ranks(afmt_file *f, int n) {
    f->read_node_ranks = n > 0 ? n : 0;
}
#endif

/* COLLECTIVE. f->read_node, once per handle (the caller agrees on the outcome): the
 * handle's node, or runs of read_node_ranks ranks (test hook). */
static int node_setup(afmt_file *f) {
    if (f->read_node_ready) return AFMT_OK;
    int n = f->read_node_ranks, rc = MPI_SUCCESS;
    if (n)
        rc = MPI_Comm_split(f->comm, f->rank / n, f->rank, &f->read_node);
    else if (f->shm == MPI_COMM_NULL)
        rc = MPI_ERR_COMM; /* the handle's split failed */
    else
        f->read_node = f->shm; /* freed with shm */
    if (rc != MPI_SUCCESS)
        return afmt__fail(f->errmsg, AFMT_EMPI, "afmt_read_all(%s): MPI_Comm_split_type failed",
                          f->path);
    f->read_node_ready = 1;
    if (MPI_Comm_rank(f->read_node, &f->read_node_rank) != MPI_SUCCESS ||
        MPI_Comm_size(f->read_node, &f->read_node_size) != MPI_SUCCESS)
        return afmt__fail(f->errmsg, AFMT_EMPI, "afmt_read_all(%s): setting up the node group",
                          f->path);
    return AFMT_OK;
}

/* COLLECTIVE over the node: 1 if ok is 1 on every rank of the node. */
static int node_all(afmt_file *f, int ok) {
    int all = 0;
    if (MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, f->read_node) != MPI_SUCCESS) return 0;
    return all;
}

/* The chunks of this rank's selection span [lo, hi] (any: it has chunks). */
typedef struct {
    int any;
    uint64_t lo, hi;
} chunk_span;

/* The segments this rank's selection needs and that its cache lacks (skip: those brought
 * in by an earlier round, evicted since by a cache too small for the round: the ordinary
 * read reads them again itself). */
static int dry_pass(afmt_file *f, const afmt_array *arr, const uint64_t *start,
                    const uint64_t *count, const afmt_seg_set *skip, afmt_seg_set *need,
                    chunk_span *span) {
    afmt_grid_iter it;
    afmt__grid_iter_init(&it, &arr->grid, start, count);
    while (afmt__grid_iter_next(&it)) {
        if (!span->any || it.index < span->lo) span->lo = it.index;
        if (!span->any || it.index > span->hi) span->hi = it.index;
        span->any = 1;
        if (afmt__staging_find(&f->staging, arr->d.id, it.index) ||
            afmt__drain_find(f, arr->d.id, it.index))
            continue; /* read_staged */
        if (afmt__index_lookup_dry(&f->idx, arr->d.id, it.index, skip, need) != AFMT_OK)
            return afmt__fail(f->errmsg, AFMT_ENOMEM,
                              "afmt_read_all(\"%s\"): out of memory for the list of index "
                              "segments to read",
                              arr->d.name);
    }
    return AFMT_OK;
}

static int id_cmp(const void *a, const void *b) {
    const uint64_t *x = a, *y = b;
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

/* One round's buffers (exchange). */
typedef struct {
    int *cnt, *disp;
    uint64_t *send, *ids; /* (layer, segment) pairs */
    int *status;          /* per unique segment: 0 read, else its reader's error */
    uint8_t **mine;       /* the bytes of the segments this rank read */
    uint8_t *recv;
} round_bufs;

static void round_free(round_bufs *b, uint64_t n_unique) {
    for (uint64_t u = 0; b->mine && u < n_unique; u++) free(b->mine[u]);
    free(b->cnt);
    free(b->disp);
    free(b->send);
    free(b->ids);
    free(b->status);
    free(b->mine);
    free(b->recv);
}

/* COLLECTIVE over the node: the node's needed (layer, segment) pairs gathered into b->ids,
 * sorted and deduplicated (*n_unique), *maxlen the longest. AFMT_OK, AFMT_ENOMEM or
 * AFMT_EMPI, the same on every node rank (no message). */
static int gather_ids(afmt_file *f, const afmt_seg_set *need, round_bufs *b, uint64_t *n_unique,
                      uint64_t *maxlen) {
    int ns = f->read_node_size;
    uint64_t total = 0;
    /* int counts of MPI_UINT64_T: a rank sends at most cap pairs (the rest, if any, are
     * read by the ordinary read). */
    uint64_t cap = (uint64_t)(INT_MAX / 2 / ns);
    int mine = (int)(need->n < cap ? need->n : cap);
    b->cnt = calloc((size_t)ns, sizeof *b->cnt);
    b->disp = calloc((size_t)ns, sizeof *b->disp);
    b->send = malloc(sizeof *b->send * (size_t)(2 * mine + 1));
    for (int i = 0; b->send && i < mine; i++) {
        b->send[2 * i] = need->v[i].layer;
        b->send[2 * i + 1] = need->v[i].seg;
    }
    if (!node_all(f, b->cnt && b->disp && b->send)) return AFMT_ENOMEM;
    if (MPI_Allgather(&mine, 1, MPI_INT, b->cnt, 1, MPI_INT, f->read_node) != MPI_SUCCESS)
        return AFMT_EMPI;
    for (int r = 0; r < ns; r++) {
        b->disp[r] = (int)(2 * total);
        total += (uint64_t)b->cnt[r];
        b->cnt[r] *= 2;
    }
    if (total == 0) return AFMT_OK; /* the same on every node rank */
    b->ids = malloc(sizeof *b->ids * (size_t)(2 * total));
    if (!node_all(f, b->ids != NULL)) return AFMT_ENOMEM;
    if (MPI_Allgatherv(b->send, 2 * mine, MPI_UINT64_T, b->ids, b->cnt, b->disp, MPI_UINT64_T,
                       f->read_node) != MPI_SUCCESS)
        return AFMT_EMPI;
    qsort(b->ids, (size_t)total, 2 * sizeof *b->ids, id_cmp);
    for (uint64_t i = 0; i < total; i++) {
        if (*n_unique && id_cmp(&b->ids[2 * i], &b->ids[2 * (*n_unique - 1)]) == 0) continue;
        b->ids[2 * *n_unique] = b->ids[2 * i];
        b->ids[2 * *n_unique + 1] = b->ids[2 * i + 1];
        uint64_t len = afmt__segment_length(&f->idx, b->ids[2 * i], b->ids[2 * i + 1]);
        if (len > *maxlen) *maxlen = len;
        ++*n_unique;
    }
    return AFMT_OK;
}

/* COLLECTIVE over the node. The node's needed segments gathered and deduplicated; node
 * rank u % size reads unique segment u and broadcasts it; each node rank that asked for
 * it, or whose chunks (span) its key range meets, checks it and puts it into its cache
 * (got: the segments this rank took). Returns this rank's outcome (the caller agrees on
 * it): a damaged segment fails those ranks (AFMT_ECORRUPT), a failed read its reader.
 * Every node rank makes the same calls. */
static int exchange(afmt_file *f, const afmt_array *arr, const afmt_seg_set *need,
                    const chunk_span *span, afmt_seg_set *got) {
    int ns = f->read_node_size, me = f->read_node_rank, rc = AFMT_OK;
    round_bufs b;
    memset(&b, 0, sizeof b);
    uint64_t n_unique = 0, maxlen = 0;
    char why[AFMT_ERRMSG_MAX];
    int grc = gather_ids(f, need, &b, &n_unique, &maxlen);
    if (grc == AFMT_ENOMEM) goto oom;
    if (grc != AFMT_OK) goto mpi;
    if (n_unique == 0) goto out;
    b.status = calloc((size_t)n_unique, sizeof *b.status);
    b.mine = calloc((size_t)n_unique, sizeof *b.mine);
    b.recv = maxlen <= SIZE_MAX ? malloc(maxlen ? (size_t)maxlen : 1) : NULL;
    if (!node_all(f, b.status && b.mine && b.recv)) goto oom;
    /* Every reader reads its segments (in parallel with the other readers), then the
     * node learns which reads failed, then each segment goes out from its reader. */
    for (uint64_t u = (uint64_t)me; u < n_unique; u += (uint64_t)ns) {
        int frc = afmt__segment_fetch(&f->idx, b.ids[2 * u], b.ids[2 * u + 1], &b.mine[u], why);
        if (frc != AFMT_OK) {
            b.status[u] = frc;
            if (rc == AFMT_OK)
                rc = afmt__fail(f->errmsg, frc, "afmt_read_all(\"%s\"): %.800s", arr->d.name, why);
        }
    }
    if (MPI_Allreduce(MPI_IN_PLACE, b.status, (int)n_unique, MPI_INT, MPI_MIN, f->read_node) !=
        MPI_SUCCESS)
        goto mpi;
    for (uint64_t u = 0; u < n_unique; u++) {
        if (b.status[u] != 0) continue; /* its reader failed: the reader reports it */
        uint64_t k = b.ids[2 * u], s = b.ids[2 * u + 1];
        int root = (int)(u % (uint64_t)ns);
        uint8_t *p = root == me ? b.mine[u] : b.recv;
        if (afmt__bcast_bytes(f->read_node, p, afmt__segment_length(&f->idx, k, s), root) !=
            AFMT_OK)
            goto mpi;
        /* Not only the ranks that asked keep it, but every rank whose chunks its key range
         * meets: one that needs it only in a later round (after a fall-through) finds it
         * then, instead of the node reading it again. */
        if (rc != AFMT_OK ||
            (!afmt__seg_set_has(need, k, s) &&
             (!span->any || !afmt__segment_overlaps(&f->idx, k, s, arr->d.id, span->lo, span->hi))))
            continue;
        int irc = afmt__segcache_insert(&f->idx, k, s, p, why);
        if (irc == AFMT_OK && afmt__seg_set_add(got, k, s) != AFMT_OK) irc = AFMT_ENOMEM;
        if (irc == AFMT_ENOMEM)
            rc = afmt__fail(f->errmsg, irc, "afmt_read_all(\"%s\"): out of memory", arr->d.name);
        else if (irc != AFMT_OK)
            rc = afmt__fail(f->errmsg, irc, "afmt_read_all(\"%s\"): %.800s", arr->d.name, why);
    }
    goto out;
oom:
    rc = afmt__fail(f->errmsg, AFMT_ENOMEM,
                    "afmt_read_all(\"%s\"): out of memory (on this rank or another of its node) "
                    "for the index segments the node reads",
                    arr->d.name);
    goto out;
mpi:
    rc = afmt__fail(f->errmsg, AFMT_EMPI,
                    "afmt_read_all(\"%s\"): an MPI call of the node's segment exchange failed",
                    arr->d.name);
out:
    round_free(&b, n_unique);
    return rc;
}

/* This rank's selection: *empty if count has a 0 extent (nothing to read: start and buf
 * unused), else checked as afmt_read checks it. */
static int check_selection(afmt_file *f, const char *fn, const afmt_array *arr,
                           const uint64_t *start, const uint64_t *count, const void *buf,
                           int *empty) {
    *empty = 0;
    int nd = arr->d.ndim;
    if (nd > 0 && count) {
        for (int d = 0; d < nd; d++) *empty |= count[d] == 0;
        if (*empty) return AFMT_OK;
    }
    if (!buf) return afmt__fail(f->errmsg, AFMT_EINVAL, "%s(\"%s\"): buf is NULL", fn, arr->d.name);
    return afmt__check_region(f, fn, arr, start, count);
}

int afmt_read_all(afmt_file *f, const char *name, const uint64_t *start, const uint64_t *count,
                  void *buf) {
    const char *fn = "afmt_read_all";
    int rc = afmt__check(f, fn);
    if (rc != AFMT_OK) return rc;
    afmt_array *arr = NULL;
    int empty = 1;
    rc = afmt__lookup(f, fn, name, &arr);
    if (rc == AFMT_OK) rc = check_selection(f, fn, arr, start, count, buf, &empty);
    static const uint64_t zeros[AFMT_MAX_NDIM];
    if (rc == AFMT_OK && arr->d.ndim == 0) start = count = zeros;
    afmt_seg_set need, got;
    chunk_span span = {0, 0, 0};
    afmt__seg_set_init(&need);
    afmt__seg_set_init(&got);
    /* A round resolves at least one lazy layer of every chunk still undecided: the bound
     * only matters when the cache cannot hold a round's segments. */
    uint64_t rounds = f->idx.n_layers - f->idx.first_lazy + 1;
    for (uint64_t round = 0;; round++) {
        afmt__seg_set_clear(&need);
        if (rc == AFMT_OK && !empty && round < rounds)
            rc = dry_pass(f, arr, start, count, &got, &need, &span);
        int more = rc == AFMT_OK && need.n > 0;
        /* Every rank's outcome (bad input on one rank fails all), whether any rank misses
         * segments, and that every rank is in this call. */
        if ((rc = afmt__enter(f, AFMT_CALL_READ_ALL, rc, &more, 1)) != AFMT_OK || !more) break;
        if (!f->read_node_ready && (rc = afmt__file_agree(f, node_setup(f))) != AFMT_OK) break;
        rc = exchange(f, arr, &need, &span, &got);
    }
    afmt__seg_set_free(&need);
    afmt__seg_set_free(&got);
    if (rc != AFMT_OK) return rc; /* agreed */
    if (!empty) rc = afmt__read_region(f, arr, start, count, buf);
    return afmt__file_agree(f, rc);
}
