/* commit.c - the collective commit: partial chunks are resolved (exchange.c), each rank's
 * blocks and its index segment (format.md 9.1) get their offset from an exclusive prefix
 * sum and are written contiguously (with data aggregation, aggregate.h, a node leader
 * writes its node's blocks and the others' regions are empty), the segments go to rank 0
 * which checks the layer and
 * writes the footer (root table) and trailer, everything is synced, and only then rank 0
 * writes the other superblock slot and syncs again. Until that slot is durable the file
 * is the previous commit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/aggregate.h"
#include "api/file.h"
#include "common/util.h"
#include "format/segment.h"
#include "index/staging.h"

#ifdef AFMT_TESTING
static uint32_t write_version = AFMT_FORMAT_VERSION;
void afmt__set_write_version(uint32_t v) {
    write_version = v == 1 ? 1 : AFMT_FORMAT_VERSION;
}
#else
#define write_version AFMT_FORMAT_VERSION
#endif

static uint64_t now_ns(void) {
#ifdef AFMT_TESTING
    if (afmt__fixed_identity()) return 1000000000u; /* file.h: files that compare bytewise */
#endif
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int st_fail(afmt_file *f, afmt_storage *st, int rc, const char *step) {
    return afmt__fail(f->errmsg, rc, "afmt_commit(%s): %s: %s", f->path, step, st->errmsg);
}

/* Writes this rank's sealed blocks at base: one request per piece (pieces only split
 * at 1 GiB or between spilled and in-memory bytes). rc != AFMT_OK: this rank writes
 * nothing but still takes part in the collective writes. With data aggregation a node
 * leader writes its own blocks, then its node's streams (afmt__node_write_data), the other
 * ranks send theirs; the writes are independent whatever afmt_collective_write says (the
 * ranks of a node do not write). */
static int write_blocks(afmt_file *f, afmt_layer_job *job, afmt_node_meta *node, uint64_t base,
                        uint64_t mine, int rc) {
    afmt_storage *st = job->st;
    if (f->node_data && f->node_rank != 0)
        return afmt__node_write_data(f, node, job->alloc, st, rc);
    if (!f->collective_write || f->node_data) {
        uint64_t pos = 0;
        while (rc == AFMT_OK && job->alloc) {
            const void *p;
            uint64_t n, at = pos;
            rc = afmt__alloc_next_piece(job->alloc, &pos, AFMT_PIECE, &p, &n);
            if (rc != AFMT_OK) {
                afmt__fail(f->errmsg, rc, "afmt_commit(%s): %s", f->path,
                           afmt__alloc_errmsg(job->alloc));
                break;
            }
            if (n == 0) break;
            if ((rc = st->ops->write_at(st, base + at, p, n)) != AFMT_OK)
                st_fail(f, st, rc, "writing data blocks");
        }
        return f->node_data ? afmt__node_write_data(f, node, job->alloc, st, rc) : rc;
    }
    /* Collective: every rank makes the same number of calls, with 0 bytes once done.
     * Pieces can be shorter than AFMT_PIECE (the spilled/in-memory boundary), so the ranks
     * agree each round whether anyone still has bytes. */
    uint64_t pos = 0;
    for (;;) {
        const void *p = NULL;
        uint64_t n = 0, at = pos;
        if (rc == AFMT_OK && job->alloc && pos < mine) {
            rc = afmt__alloc_next_piece(job->alloc, &pos, AFMT_PIECE, &p, &n);
            if (rc != AFMT_OK) {
                afmt__fail(f->errmsg, rc, "afmt_commit(%s): %s", f->path,
                           afmt__alloc_errmsg(job->alloc));
                n = 0;
            }
        }
        int more = n > 0, any = 0;
        if (MPI_Allreduce(&more, &any, 1, MPI_INT, MPI_MAX, f->comm) != MPI_SUCCESS) {
            if (rc == AFMT_OK)
                rc = afmt__fail(f->errmsg, AFMT_EMPI, "afmt_commit(%s): MPI_Allreduce failed",
                                f->path);
            break;
        }
        if (!any) break;
        int wrc = st->ops->write_at_all(st, base + at, p, n);
        if (wrc != AFMT_OK && rc == AFMT_OK) rc = st_fail(f, st, wrc, "writing data blocks");
    }
    return rc;
}

static int push_layer_attr(afmt_layer *L, const char *key, afmt_dtype t, uint64_t n,
                           const void *v) {
    afmt_attr_rec *a = &L->attrs[L->n_attrs];
    memset(a, 0, sizeof *a);
    size_t bytes = (size_t)n * afmt__dtype_size(t);
    if (!(a->value = malloc(bytes ? bytes : 1))) return AFMT_ENOMEM;
    memcpy(a->value, v, bytes);
    if (afmt__host_is_big_endian()) afmt__bswap_elems(a->value, (size_t)n, afmt__dtype_size(t));
    a->array_id = AFMT_ATTR_LAYER;
    snprintf(a->key, sizeof a->key, "%s", key);
    a->dtype = t;
    a->n = n;
    L->n_attrs++;
    return AFMT_OK;
}

/* The job's attributes plus this layer's provenance: who wrote it, where, when. */
static int add_provenance(afmt_file *f, const afmt_layer_job *job, afmt_layer *L) {
    static const char *env[][2] = {{"SLURM_JOB_ID", "slurm_job_id"},
                                   {"SLURM_ARRAY_TASK_ID", "slurm_array_task_id"},
                                   {"SLURM_JOB_NUM_NODES", "slurm_job_num_nodes"}};
    L->attrs = malloc(sizeof *L->attrs * (size_t)(job->n_attrs + 7));
    if (!L->attrs) return AFMT_ENOMEM;
    memcpy(L->attrs, job->attrs, sizeof *L->attrs * (size_t)job->n_attrs);
    L->n_attrs = job->n_attrs;
    if (job->replay) return AFMT_OK; /* its own provenance is among its attributes */
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "unknown");
    int64_t nranks = f->size;
    int rc = push_layer_attr(L, "host", AFMT_UINT8, strlen(host), host);
    if (rc == AFMT_OK) rc = push_layer_attr(L, "nranks", AFMT_INT64, 1, &nranks);
    int64_t nodes = f->n_nodes; /* the node leaders, each of which wrote a segment */
    if (rc == AFMT_OK) rc = push_layer_attr(L, "nodes", AFMT_INT64, 1, &nodes);
    if (rc == AFMT_OK) rc = push_layer_attr(L, "time_ns", AFMT_UINT64, 1, &L->time_ns);
    for (size_t i = 0; rc == AFMT_OK && i < sizeof env / sizeof env[0]; i++) {
        const char *v = getenv(env[i][0]);
        if (v && *v) rc = push_layer_attr(L, env[i][1], AFMT_UINT8, strlen(v), v);
    }
    return rc;
}

/* Frees what build_layer allocated (the job's own attribute values are not ours). */
static void free_built_layer(const afmt_layer_job *job, afmt_layer *L) {
    for (uint64_t i = job->n_attrs; L->attrs && i < L->n_attrs; i++) free(L->attrs[i].value);
    free(L->attrs);
    free(L->blocks);
    free(L->chunks);
    free(L->segs);
}

/* Rank 0: the root table from the leaders' [u64 offset][80-byte root record] (all, lens;
 * a leader without chunks sent [u64 offset] alone), sorted by first key; in version-1 test mode the
 * records are followed by the segment, whose bytes go to segs in root table order. */
static int build_roots(afmt_file *f, const uint8_t *all, const uint64_t *lens, afmt_layer *L,
                       afmt_buf *segs) {
    uint64_t n = 0, off = 0;
    for (int r = 0; r < f->n_nodes; r++) n += lens[r] >= 8 + AFMT_SEG_REC_SIZE;
    L->segs = malloc(sizeof *L->segs * (size_t)(n ? n : 1));
    uint64_t *from = malloc(sizeof *from * (size_t)(n ? n : 1));
    if (!L->segs || !from) {
        free(from);
        return AFMT_ENOMEM;
    }
    for (int r = 0; r < f->n_nodes; off += lens[r], r++) {
        if (lens[r] < 8 + AFMT_SEG_REC_SIZE) continue;
        from[L->n_segs] = off + 8 + AFMT_SEG_REC_SIZE;
        afmt__seg_rec_decode(all + off + 8, &L->segs[L->n_segs]);
        L->seg_blocks += L->segs[L->n_segs].n_blocks;
        L->seg_chunks += L->segs[L->n_segs].n_chunks;
        L->n_segs++;
    }
    /* Insertion sort by first key (then offset) carrying the source positions along: the
     * leaders' segments mostly come in key order already. */
    for (uint64_t i = 1; i < n; i++)
        for (uint64_t j = i; j > 0; j--) {
            afmt_seg_rec *a = &L->segs[j - 1], *b = &L->segs[j];
            afmt_chunk_rec ka = {a->first_array, a->first_chunk, 0, 0, 0};
            afmt_chunk_rec kb = {b->first_array, b->first_chunk, 0, 0, 0};
            int c = afmt__chunk_rec_cmp(&ka, &kb);
            if (c < 0 || (c == 0 && a->offset < b->offset)) break;
            afmt_seg_rec t = *a;
            *a = *b;
            *b = t;
            uint64_t u = from[j - 1];
            from[j - 1] = from[j];
            from[j] = u;
        }
    for (uint64_t i = 0; write_version == 1 && i < n; i++)
        afmt__buf_append(segs, all + from[i], (size_t)L->segs[i].length);
    free(from);
    return segs->oom ? AFMT_ENOMEM : AFMT_OK;
}

/* The new layer's id: the one asked for, the replayed layer's own, or the next one. */
static uint64_t job_layer_id(const afmt_layer_job *job) {
    if (job->layer_id) return job->layer_id;
    return job->replay ? job->replay->layer_id : job->super->layer_id + 1;
}

/* Rank 0: the layer from the leaders' root records (the leaders checked their nodes'
 * chunk records, aggregate.c). In version-1 test mode the segments are attached, so that
 * the footer can hold every record. */
static int build_layer(afmt_file *f, afmt_layer_job *job, const uint8_t *all, const uint64_t *lens,
                       uint64_t data_offset, uint64_t footer_offset, afmt_layer *L,
                       afmt_buf *segs) {
    memset(L, 0, sizeof *L);
    L->version = AFMT_FORMAT_VERSION;
    L->layer_id = job_layer_id(job);
    L->prev_offset = job->super->footer_offset;
    L->prev_length = job->super->footer_length;
    L->data_offset = data_offset;
    L->time_ns = job->replay ? job->replay->time_ns : now_ns();
    L->next_array_id = job->next_array_id;
    L->nranks = (uint32_t)f->size; /* the writers of its blocks and segments */
    L->flags = job->flags;
    int rc = build_roots(f, all, lens, L, segs);
    if (rc == AFMT_OK && write_version == 1) {
        char why[AFMT_ERRMSG_MAX];
        rc = afmt__segments_attach(L, segs->data, (uint64_t)segs->len, footer_offset, why);
        if (rc != AFMT_OK) /* a leader's segment its own encoder made: a bug, not the file */
            return afmt__fail(NULL, rc == AFMT_ECORRUPT ? AFMT_EINVAL : rc, "%s", why);
        L->version = 1;
    }
    if (rc != AFMT_OK) return rc;
    L->arrays = (afmt_array_rec *)job->arrays;
    L->n_arrays = job->n_arrays;
    return add_provenance(f, job, L);
}

/* Rank 0: the message of a failed footer build or encode, naming its real cause. */
static int footer_fail(afmt_file *f, int rc, const char *step, uint64_t nb, uint64_t nc) {
    if (rc == AFMT_ENOMEM)
        return afmt__fail(f->errmsg, rc,
                          "afmt_commit(%s): %s the footer (%llu blocks, %llu chunks): out of "
                          "memory",
                          f->path, step, (unsigned long long)nb, (unsigned long long)nc);
    return afmt__fail(f->errmsg, rc, "afmt_commit(%s): %s the footer: %s", f->path, step,
                      afmt__thread_errbuf());
}

/* Rank 0: checks the layer against its index before anything of it is written: a layer
 * afmt_open would refuse must never be written. A record a rank sent for an array it
 * defined differently (or not at all) would make every layer of the file unreadable
 * (format.md 13). */
static int check_layer(afmt_file *f, const afmt_layer *L) {
    char why[AFMT_ERRMSG_MAX];
    uint32_t bad = 0;
    int crc = afmt__index_check_commit(&f->idx, L, &bad, why);
    if (crc == AFMT_ECORRUPT)
        return afmt__fail(f->errmsg, AFMT_EINVAL,
                          "afmt_commit(%s): rank %u sent a record that would make the layer "
                          "unreadable: %s",
                          f->path, bad, why);
    if (crc != AFMT_OK)
        return afmt__fail(f->errmsg, crc, "afmt_commit(%s): checking the layer: %s", f->path, why);
    return AFMT_OK;
}

/* The state of one afmt__write_layer between its phases (layer_run_free frees it). */
typedef struct {
    uint64_t stored, mine; /* my region's block bytes (data aggregation: a leader's hold its
                            * node's, the others' none); those plus my segment's */
    uint64_t base, total;  /* my region's file offset; everyone's bytes, each rank's rounded
                            * up to the alignment */
    uint64_t start;        /* where the first region goes: the committed end, aligned */
    afmt_buf meta;         /* [u64 offset][my node's segment, if I lead it] */
    afmt_node_meta node;   /* the node's records (aggregate.h) */
    afmt_buf seg;          /* a leader's segment */
    uint64_t *lens;        /* rank 0: the length of each rank's records */
    uint8_t *all;          /* rank 0: everyone's records, in rank order */
    afmt_super next;       /* the superblock naming the new layer (rank 0's counts) */
    double t;              /* when the phase being timed began */
} layer_run;

static void layer_run_free(layer_run *r) {
    afmt__buf_free(&r->meta);
    afmt__buf_free(&r->seg);
    afmt__node_meta_free(&r->node);
    free(r->lens);
    free(r->all);
    r->lens = NULL;
    r->all = NULL;
}

/* Rank 0: encodes layer L and writes footer and trailer in one request at foff (footer
 * holds the footer bytes after); r->next becomes the superblock that names them. */
static int write_footer(afmt_file *f, afmt_layer_job *job, const afmt_layer *L, uint64_t foff,
                        afmt_buf *footer, layer_run *r) {
    afmt_storage *st = job->st;
    const afmt_super *sup = job->super;
    int rc = afmt__footer_encode(L, footer);
    if (rc != AFMT_OK) return footer_fail(f, rc, "encoding", L->n_blocks, L->n_chunks);
    uint64_t flen = footer->len, fsum = afmt__checksum(footer->data, footer->len);
    uint8_t tr[AFMT_TRAILER_SIZE];
    afmt__trailer_encode(foff, flen, fsum, tr);
    afmt__buf_append(footer, tr, sizeof tr);
    if (footer->oom)
        rc = footer_fail(f, AFMT_ENOMEM, "appending the trailer to", L->n_blocks, L->n_chunks);
    else if (job->plan) { /* afmt_commit_start: the drain writes it (commit_async.c) */
        job->plan->foff = foff;
        afmt__buf_append(&job->plan->tail, footer->data, footer->len);
        if (job->plan->tail.oom)
            rc = footer_fail(f, AFMT_ENOMEM, "copying", L->n_blocks, L->n_chunks);
    } else if ((rc = st->ops->write_at(st, foff, footer->data, footer->len)) != AFMT_OK)
        st_fail(f, st, rc, "writing the footer");
    footer->len = (size_t)flen;
    r->next.generation = sup->generation + 1;
    r->next.footer_offset = foff;
    r->next.footer_length = flen;
    r->next.footer_checksum = fsum;
    r->next.eof = foff + flen + AFMT_TRAILER_SIZE;
    r->next.nlayers = sup->nlayers + 1;
    r->next.layer_id = L->layer_id > sup->layer_id ? L->layer_id : sup->layer_id;
    r->next.next_array_id = job->next_array_id;
    return rc;
}

/* Phase 1: seal the open block. Every rank holds the same superblock: all return alike
 * on an exhausted generation counter. Agreed. */
static int layer_seal(afmt_file *f, afmt_layer_job *job) {
    int rc = AFMT_OK;
    if (job->super->generation == UINT64_MAX)
        return afmt__fail(f->errmsg, AFMT_ERANGE,
                          "afmt_commit(%s): the generation counter is exhausted (2^64-1): compact "
                          "the file (afmt_compact) to start it over",
                          f->path);
    if (job->alloc && (rc = afmt__alloc_seal(job->alloc)) != AFMT_OK)
        afmt__fail(f->errmsg, rc, "afmt_commit(%s): %s", f->path, afmt__alloc_errmsg(job->alloc));
    return afmt__file_agree(f, rc);
}

/* x rounded up to a multiple of a (0 or a power of two; 0: x). */
static uint64_t align_up(uint64_t x, uint64_t a) {
    return a ? (x + a - 1) & ~(a - 1) : x;
}

/* Phase 2: my offset, an exclusive prefix sum of the ranks' bytes after the committed
 * end, and everyone's total. With an alignment A (afmt_opts_set_alignment, the same on
 * every rank), the first region starts at the committed end rounded up to A and each
 * rank counts its bytes rounded up to A (a rank without bytes counts 0), so that every
 * region and the footer start on a multiple of A; the gaps stay unwritten. Local
 * outcome: agreed in phase 3. */
static int layer_offsets(afmt_file *f, const afmt_layer_job *job, layer_run *r) {
    int rc = AFMT_OK;
    uint64_t before = 0, a = f->opts.alignment;
    r->stored = job->alloc ? afmt__alloc_stored_bytes(job->alloc) : 0;
    /* With data aggregation the leader's region holds the node's blocks, the others' none. */
    if (f->node_data) r->stored = f->node_rank == 0 ? r->node.node_stored : 0;
    r->mine = r->stored + r->node.seg_size; /* a node leader's region ends with the segment */
    uint64_t padded = align_up(r->mine, a);
    if (MPI_Exscan(&padded, &before, 1, MPI_UINT64_T, MPI_SUM, f->comm) != MPI_SUCCESS ||
        MPI_Allreduce(&padded, &r->total, 1, MPI_UINT64_T, MPI_SUM, f->comm) != MPI_SUCCESS)
        rc = afmt__fail(f->errmsg, AFMT_EMPI, "afmt_commit(%s): MPI_Exscan failed", f->path);
    if (f->rank == 0) before = 0; /* MPI_Exscan leaves rank 0's result undefined */
    r->start = align_up(job->super->eof, a);
    r->base = r->start + before;
    r->t = MPI_Wtime();
    return rc;
}

/* Phase 3: write my blocks at my offset. The local work of phase 4 comes first (my
 * records, rank 0's length table), so that one agreement covers the data write and it. */
static int layer_write_data(afmt_file *f, afmt_layer_job *job, layer_run *r, int rc) {
    uint64_t seg_at = r->base + r->stored;
    afmt_layer hdr; /* what the leaders' checks need of the layer */
    memset(&hdr, 0, sizeof hdr);
    hdr.version = AFMT_FORMAT_VERSION;
    hdr.layer_id = job_layer_id(job);
    hdr.data_offset = job->super->eof;
    hdr.next_array_id = job->next_array_id;
    hdr.nranks = (uint32_t)f->size;
    hdr.flags = job->flags;
    hdr.arrays = (afmt_array_rec *)job->arrays;
    hdr.n_arrays = job->n_arrays;
    uint8_t root[AFMT_SEG_REC_SIZE];
    int nrc = afmt__node_segment(f, &r->node, r->base, &hdr, seg_at, &r->seg, root);
    if (rc == AFMT_OK) rc = nrc;
    afmt__buf_u64(&r->meta, seg_at);
    if (r->seg.len) afmt__buf_append(&r->meta, root, sizeof root); /* a leader's record */
    if (r->seg.len && write_version == 1) afmt__buf_append(&r->meta, r->seg.data, r->seg.len);
    if (rc == AFMT_OK && r->meta.oom)
        rc = afmt__fail(f->errmsg, AFMT_ENOMEM,
                        "afmt_commit(%s): out of memory for the node's index segment", f->path);
    if (rc == AFMT_OK && f->rank == 0 && !(r->lens = calloc((size_t)f->n_nodes, sizeof(uint64_t))))
        rc = afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_commit(%s): out of memory", f->path);
    if (!job->plan) rc = write_blocks(f, job, &r->node, r->base, r->stored, rc);
    /* The segment right after the blocks: the rank's region is one contiguous range. */
    if (rc == AFMT_OK && r->seg.len && !job->plan &&
        (rc = job->st->ops->write_at(job->st, seg_at, r->seg.data, r->seg.len)) != AFMT_OK)
        st_fail(f, job->st, rc, "writing data blocks (this rank's index segment)");
    f->stats.bytes_written = r->mine;
    f->stats.blocks = job->alloc ? afmt__alloc_nblocks(job->alloc) : 0;
    f->stats.chunks = job->n_chunks;
    return afmt__file_agree(f, rc);
}

/* Phase 4: the leaders' root records to rank 0, over the leaders' communicator: rank 0
 * receives one message per node, nothing from the other ranks. Agreed. */
static int layer_gather(afmt_file *f, layer_run *r) {
    f->stats.write = MPI_Wtime() - r->t;
    r->t = MPI_Wtime();
    char what[AFMT_ERRMSG_MAX];
    snprintf(what, sizeof what, "afmt_commit(%s): gathering the index segments", f->path);
    int rc = AFMT_OK;
    if (f->leaders != MPI_COMM_NULL) {
        afmt__group g = {f->leaders, 0, 0, f->errmsg};
        if (MPI_Comm_rank(f->leaders, &g.rank) != MPI_SUCCESS ||
            MPI_Comm_size(f->leaders, &g.size) != MPI_SUCCESS)
            rc = afmt__fail(f->errmsg, AFMT_EMPI, "%s: MPI_Comm_rank failed", what);
        else
            rc = afmt__gather_bytes_comm(&g, r->meta.data, r->meta.len, &r->all, r->lens, what);
    }
    afmt__buf_free(&r->meta);
    if ((rc = afmt__file_agree(f, rc)) != AFMT_OK) return rc;
    f->stats.gather = MPI_Wtime() - r->t;
    r->t = MPI_Wtime();
    return AFMT_OK;
}

/* Phase 5: rank 0 builds the layer from everyone's records, checks it, and writes footer
 * and trailer right after the data (after the last region, rounded up to the alignment).
 * The layer's data_offset is the committed end, whatever the alignment. Agreed. */
static int layer_footer(afmt_file *f, afmt_layer_job *job, layer_run *r, afmt_buf *footer) {
    const afmt_super *sup = job->super;
    int rc = AFMT_OK;
    r->next = *sup;
    if (f->rank == 0) {
        afmt_layer L;
        afmt_buf segs;
        afmt__buf_init(&segs);
        uint64_t foff = r->start + r->total;
        rc = build_layer(f, job, r->all, r->lens, sup->eof, foff, &L, &segs);
        if (rc != AFMT_OK) footer_fail(f, rc, "building", L.seg_blocks, L.seg_chunks);
        if (rc == AFMT_OK) rc = check_layer(f, &L);
        if (rc == AFMT_OK) rc = write_footer(f, job, &L, foff, footer, r);
        afmt__buf_free(&segs);
        free_built_layer(job, &L);
    }
    free(r->all);
    free(r->lens);
    r->all = NULL;
    r->lens = NULL;
    if ((rc = afmt__file_agree(f, rc)) != AFMT_OK) return rc;
    f->stats.footer = MPI_Wtime() - r->t;
    r->t = MPI_Wtime();
    return AFMT_OK;
}

/* Phases 6-8: sync (data, footer and trailer durable before the superblock points at
 * them), the slot (rank 0), sync. Each agreed. */
static int layer_publish(afmt_file *f, afmt_layer_job *job, layer_run *r) {
    afmt_storage *st = job->st;
    int rc = AFMT_OK;
    if (job->durability != AFMT_DURABILITY_NONE) rc = st->ops->sync(st);
    if (rc != AFMT_OK) st_fail(f, st, rc, "syncing data and footer");
    if ((rc = afmt__file_agree(f, rc)) != AFMT_OK) return rc;
    /* The slot, then its sync (publish.h): once written, the new layer is what a reader
     * finds, so the handle adopts it; the caller reports late_rc. */
    rc = afmt__write_slot(f, st, &r->next, AFMT_OK, "afmt_commit", job->durability, &job->late_rc);
    if (rc != AFMT_OK) return rc;
    job->durable = 1;
    f->stats.sync = MPI_Wtime() - r->t;
    return AFMT_OK;
}

/* Phase 9: everyone learns the new layer: rank 0's slot and footer bytes. Agreed. */
static int layer_share(afmt_file *f, afmt_super *out, const afmt_super *next, afmt_buf *footer) {
    int rc = AFMT_OK;
    uint8_t slot[AFMT_SLOT_SIZE];
    if (f->rank == 0) afmt__super_encode(next, slot);
    if (MPI_Bcast(slot, AFMT_SLOT_SIZE, MPI_BYTE, 0, f->comm) != MPI_SUCCESS)
        rc = afmt__fail(f->errmsg, AFMT_EMPI, "MPI_Bcast of the superblock failed");
    rc = afmt__share_buf(f, footer, rc, "sharing the footer");
    if (rc != AFMT_OK) {
        char why[AFMT_ERRMSG_MAX];
        memcpy(why, f->errmsg, sizeof why);
        return afmt__fail(f->errmsg, rc,
                          "afmt_commit(%s): the layer is durable but sharing it failed (%s); "
                          "reopen the file",
                          f->path, why);
    }
    afmt__super_decode(slot, out);
    return AFMT_OK;
}

/* Phase 10: drop a tail left by an interrupted commit, so the last trailer ends the file.
 * Only tidying (the next commit overwrites a tail anyway): a failure changes no outcome,
 * but every rank takes the same branch of the collective truncate. */
static void layer_tidy(afmt_file *f, afmt_storage *st, uint64_t eof) {
    uint64_t size = 0;
    if (f->rank == 0 && st->ops->size(st, &size) != AFMT_OK) size = 0;
    if (MPI_Bcast(&size, 1, MPI_UINT64_T, 0, f->comm) != MPI_SUCCESS) size = 0;
    int cut = size > eof, all_cut = 0;
    if (MPI_Allreduce(&cut, &all_cut, 1, MPI_INT, MPI_MIN, f->comm) != MPI_SUCCESS) all_cut = 0;
    if (all_cut) (void)st->ops->truncate(st, eof);
}

int afmt__write_layer(afmt_file *f, afmt_layer_job *job, afmt_buf *footer) {
    layer_run r;
    memset(&r, 0, sizeof r);
    afmt__buf_init(&r.meta);
    afmt__buf_init(&r.seg);
    afmt__buf_init(footer);
    int rc = layer_seal(f, job);
    if (rc == AFMT_OK) rc = afmt__node_gather(f, job->alloc, job->chunks, job->n_chunks, &r.node);
    if (rc == AFMT_OK) rc = layer_write_data(f, job, &r, layer_offsets(f, job, &r));
    if (rc == AFMT_OK) rc = layer_gather(f, &r);
    if (rc == AFMT_OK) rc = layer_footer(f, job, &r, footer);
    if (job->plan) { /* afmt_commit_start: the plan takes the rest */
        afmt_layer_plan *p = job->plan;
        if (rc == AFMT_OK) rc = layer_share(f, &p->next, &r.next, footer);
        if (rc == AFMT_OK) {
            p->base = r.base;
            p->stored = r.stored;
            p->seg_at = r.base + r.stored;
            p->seg = r.seg; /* moved */
            afmt__buf_init(&r.seg);
            p->footer = *footer;
            afmt__buf_init(footer);
            p->ready = 1;
        }
        layer_run_free(&r);
        afmt__buf_free(footer);
        return rc;
    }
    if (rc == AFMT_OK) rc = layer_publish(f, job, &r);
    if (rc == AFMT_OK) rc = layer_share(f, job->super, &r.next, footer);
    if (rc == AFMT_OK) layer_tidy(f, job->st, job->super->eof);
    layer_run_free(&r);
    if (rc != AFMT_OK) afmt__buf_free(footer);
    return rc;
}

/* The pending metadata records for the footer: a define and delete of the same id in one
 * commit cancel out, and attributes of arrays deleted in this commit are dropped. */
static int pending_records(afmt_file *f, afmt_array_rec **arrays, uint64_t *na,
                           afmt_attr_rec **attrs, uint64_t *nt) {
    *arrays = malloc(sizeof **arrays * (size_t)(f->n_pend_arrays + 1));
    *attrs = malloc(sizeof **attrs * (size_t)(f->n_pend_attrs + 1));
    if (!*arrays || !*attrs) return AFMT_ENOMEM;
    *na = *nt = 0;
    for (uint64_t i = 0; i < f->n_pend_arrays; i++) {
        const afmt_array_rec *r = &f->pend_arrays[i];
        int cancelled = 0;
        if (r->kind == AFMT_REC_DEFINE)
            for (uint64_t j = i + 1; j < f->n_pend_arrays; j++)
                cancelled |=
                    f->pend_arrays[j].kind == AFMT_REC_DELETE && f->pend_arrays[j].id == r->id;
        else
            for (uint64_t j = 0; j < i; j++)
                cancelled |=
                    f->pend_arrays[j].kind == AFMT_REC_DEFINE && f->pend_arrays[j].id == r->id;
        if (!cancelled) (*arrays)[(*na)++] = *r;
    }
    for (uint64_t i = 0; i < f->n_pend_attrs; i++) {
        const afmt_attr_rec *a = &f->pend_attrs[i];
        int dead = 0;
        for (uint64_t j = 0; j < f->n_pend_arrays; j++)
            dead |=
                f->pend_arrays[j].kind == AFMT_REC_DELETE && f->pend_arrays[j].id == a->array_id;
        /* A later value of the same key supersedes this one. */
        for (uint64_t j = i + 1; j < f->n_pend_attrs; j++)
            dead |=
                f->pend_attrs[j].array_id == a->array_id && !strcmp(f->pend_attrs[j].key, a->key);
        if (!dead) (*attrs)[(*nt)++] = *a;
    }
    return AFMT_OK;
}

static void pending_clear(afmt_file *f) {
    for (uint64_t i = 0; i < f->n_pend_attrs; i++) free(f->pend_attrs[i].value);
    f->n_pend_attrs = 0;
    f->n_pend_arrays = 0;
    afmt__consist_reset(&f->consist);
}

int afmt__commit_stats(afmt_file *f, afmt_commit_stats *out) {
    int rc = afmt__check(f, "afmt__commit_stats");
    if (rc == AFMT_OK) *out = f->stats;
    return rc;
}

/* COLLECTIVE (every rank is here: the failure rc was agreed). The layer is durable but
 * this handle does not hold it: its footer could not be shared or merged (memory). The
 * index is rebuilt from the file, which now is that layer; if that fails too, the handle
 * becomes stale (only afmt_close is valid). Returns AFMT_OK once the handle matches the
 * file again: the commit did happen. */
static int adopt_durable(afmt_file *f, int rc) {
    char first[AFMT_ERRMSG_MAX];
    memcpy(first, f->errmsg, sizeof first);
    int rrc = afmt__reload(f);
    if (rrc == AFMT_OK) return AFMT_OK;
    f->stale = 1;
    return afmt__fail(f->errmsg, rc,
                      "%s; reloading the file failed too (%s): close the handle and reopen the "
                      "file, which holds the new layer",
                      first, afmt_strerror(rrc));
}

/* The records of the layer this rank contributes: its whole staged chunks and the ones
 * it merged (a partly written chunk is in its merger's list), and the pending metadata
 * (the attribute values stay the handle's). */
typedef struct {
    afmt_chunk_rec *chunks;
    uint64_t nc;
    afmt_array_rec *arrays;
    uint64_t na;
    afmt_attr_rec *attrs;
    uint64_t nt;
} commit_recs;

static void commit_recs_free(commit_recs *c) {
    free(c->chunks);
    free(c->arrays);
    free(c->attrs);
}

/* Step 2: this rank's records (merged is freed). Agreed. */
static int commit_records(afmt_file *f, afmt_chunk_rec *merged, uint64_t nm, commit_recs *c) {
    const afmt__staging *t = &f->staging;
    int rc = AFMT_OK;
    memset(c, 0, sizeof *c);
    c->chunks = malloc(sizeof *c->chunks * (size_t)(t->n + nm + 1));
    if (!c->chunks || pending_records(f, &c->arrays, &c->na, &c->attrs, &c->nt) != AFMT_OK)
        rc = afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_commit(%s): out of memory", f->path);
    for (uint64_t i = 0; rc == AFMT_OK && i < t->n; i++) {
        const afmt_staged *s = &t->items[i];
        if (s->full)
            c->chunks[c->nc++] =
                (afmt_chunk_rec){s->array_id, s->chunk_index, s->block, s->offset, s->size};
    }
    for (uint64_t i = 0; rc == AFMT_OK && i < nm; i++) c->chunks[c->nc++] = merged[i];
    free(merged);
    return afmt__file_agree(f, rc);
}

/* The new layer (its footer and segments, as afmt__write_layer shared them) into this
 * rank's index. */
static int apply_footer(afmt_file *f, const afmt_buf *footer) {
    afmt_layer L;
    char msg[AFMT_ERRMSG_MAX];
    uint64_t flen = f->super.footer_length;
    int rc = flen <= footer->len ? afmt__footer_decode(footer->data, flen, &L, msg)
                                 : afmt__fail(msg, AFMT_ECORRUPT, "the shared layer is short");
    /* Only the footer is shared: a v2 layer joins the index lazily (lazy.h); the reads
     * that need its segments read them. */
    if (rc == AFMT_OK) {
        rc =
            afmt__index_apply_own(&f->idx, &L, f->super.footer_offset, f->super.footer_length, msg);
        afmt__layer_free(&L);
    }
    if (rc != AFMT_OK)
        afmt__fail(f->errmsg, rc, "afmt_commit(%s): the layer is durable but merging it failed: %s",
                   f->path, msg);
    return rc;
}

/* Step 4, once the layer is durable (rc: afmt__write_layer's): the index takes the new
 * layer, and the staged changes (t, a; the pending metadata unless the commit was
 * started asynchronously, which cleared it then), in the file now whatever follows, are
 * cleared. Agreed; a handle that could not take the layer reloads the file or becomes
 * stale (adopt_durable). */
static int commit_adopt(afmt_file *f, int rc, afmt_buf *footer, afmt__staging *t, afmt_alloc *a,
                        int clear_pending) {
    if (rc == AFMT_OK) rc = apply_footer(f, footer);
    afmt__buf_free(footer);
    afmt__staging_clear(t);
    if (a) {
        if (clear_pending) f->stats.compress = afmt__alloc_seal_seconds(a);
        afmt__alloc_reset(a);
    }
    if (clear_pending) pending_clear(f);
    rc = afmt__file_agree(f, rc);
    if (rc != AFMT_OK) rc = adopt_durable(f, rc);
    return rc;
}

/* The outcome of a commit whose layer is durable: rc (adopting it), else the failure of
 * the sync after the slot (late_rc, message late_msg), if any. */
static int late_outcome(afmt_file *f, int rc, int late_rc, const char *late_msg) {
    if (rc == AFMT_OK && late_rc != AFMT_OK)
        rc = afmt__fail(f->errmsg, late_rc,
                        "%s; the layer was written and is the newest, but whether it survives a "
                        "crash is unknown",
                        late_msg);
    return rc;
}

/* COLLECTIVE. Steps 0-2 of a commit (call names it at the entry): the entry, which also
 * ORs flags[2] (the caller's) over the ranks, the check of the ranks' metadata calls, the
 * exchange of chunks written by several ranks, and this rank's records into c. *go is 0
 * when no rank has anything to commit (then AFMT_OK and c is empty). */
static int commit_collect(afmt_file *f, int call, int pre_rc, int *flag, commit_recs *c, int *go) {
    double t0 = MPI_Wtime();
    memset(c, 0, sizeof *c);
    *go = 0;
    /* Staged chunks anywhere? Pending metadata anywhere? (The latter is the same on every
     * rank unless the ranks' calls disagree; asking keeps them on one path even then.) */
    int all[3] = {f->staging.n > 0, f->n_pend_arrays > 0 || f->n_pend_attrs > 0, *flag};
    int rc = afmt__enter(f, call, pre_rc, all, 3);
    *flag = all[2];
    if (rc != AFMT_OK) return rc;
    /* Every rank is in this commit; before anything else, and before the ranks decide
     * whether there is anything to commit: ranks that made different metadata calls are
     * told, and nothing is written. */
    if ((rc = afmt__consist_check(f)) != AFMT_OK) return rc;
    if (!all[0] && !all[1]) return AFMT_OK;
    memset(&f->stats, 0, sizeof f->stats);
    /* Step 1: chunks written by several ranks. */
    afmt_chunk_rec *merged = NULL;
    uint64_t nm = 0;
    rc = all[0] ? afmt__exchange(f, &merged, &nm) : AFMT_OK;
    f->stats.exchange = MPI_Wtime() - t0;
    if (rc != AFMT_OK) return rc;
    rc = commit_records(f, merged, nm, c);
    if (rc != AFMT_OK) commit_recs_free(c);
    *go = rc == AFMT_OK;
    return rc;
}

/* COLLECTIVE. afmt_commit. */
static int commit_run(afmt_file *f) {
    double t0 = MPI_Wtime();
    commit_recs c;
    int go = 0, flag = 0;
    int rc = commit_collect(f, AFMT_CALL_COMMIT, AFMT_OK, &flag, &c, &go);
    if (rc != AFMT_OK || !go) return rc;
    /* Step 3: the layer. */
    afmt_buf footer;
    afmt__buf_init(&footer);
    afmt_layer_job job = {.st = f->st,
                          .alloc = f->alloc,
                          .chunks = c.chunks,
                          .n_chunks = c.nc,
                          .arrays = c.arrays,
                          .n_arrays = c.na,
                          .attrs = c.attrs,
                          .n_attrs = c.nt,
                          .next_array_id = f->idx.next_array_id,
                          .super = &f->super,
                          .late_rc = AFMT_OK,
                          .durability = f->opts.durability};
    rc = afmt__write_layer(f, &job, &footer);
    char late_msg[AFMT_ERRMSG_MAX] = "";
    if (job.late_rc != AFMT_OK) memcpy(late_msg, f->errmsg, sizeof late_msg);
    commit_recs_free(&c);
    /* Before the slot was written nothing happened: the staged changes stay for a retry. */
    if (rc != AFMT_OK && !job.durable) return rc;
    rc = commit_adopt(f, rc, &footer, &f->staging, f->alloc, 1);
    f->stats.total = MPI_Wtime() - t0;
    return late_outcome(f, rc, job.late_rc, late_msg);
}

int afmt__commit(afmt_file *f) {
    return commit_run(f);
}

int afmt__commit_collect(afmt_file *f, afmt_layer_plan *plan, int pre_rc) {
    commit_recs c;
    int go = 0;
    int rc = commit_collect(f, AFMT_CALL_COMMIT_START, pre_rc, &plan->foreground, &c, &go);
    if (rc != AFMT_OK || !go) return rc;
    plan->chunks = c.chunks;
    plan->n_chunks = c.nc;
    plan->arrays = c.arrays;
    plan->n_arrays = c.na;
    plan->attrs = c.attrs;
    plan->n_attrs = 0;
    /* The plan's own copies of the attribute values: the pending records stay the
     * handle's until the commit is under way (afmt__commit_clear_pending). */
    for (uint64_t i = 0; rc == AFMT_OK && i < c.nt; i++) {
        afmt_attr_rec *r = &plan->attrs[i];
        size_t bytes = (size_t)r->n * afmt__dtype_size(r->dtype);
        uint8_t *v = malloc(bytes ? bytes : 1);
        if (v)
            memcpy(v, r->value, bytes);
        else
            rc =
                afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_commit_start(%s): out of memory", f->path);
        r->value = v;
        plan->n_attrs += v != NULL;
    }
    plan->next_array_id = f->idx.next_array_id;
    plan->super = f->super;
    plan->collected = 1;
    return afmt__file_agree(f, rc);
}

void afmt__commit_clear_pending(afmt_file *f) {
    pending_clear(f);
}

int afmt__commit_layer(afmt_file *f, afmt_layer_plan *plan, afmt_alloc *a) {
    afmt_buf footer;
    afmt__buf_init(&footer);
    afmt_layer_job job = {.st = f->st,
                          .alloc = a,
                          .chunks = plan->chunks,
                          .n_chunks = plan->n_chunks,
                          .arrays = plan->arrays,
                          .n_arrays = plan->n_arrays,
                          .attrs = plan->attrs,
                          .n_attrs = plan->n_attrs,
                          .next_array_id = plan->next_array_id,
                          .super = &plan->super,
                          .late_rc = AFMT_OK,
                          .plan = plan,
                          .durability = f->opts.durability};
    int rc = afmt__write_layer(f, &job, &footer);
    if (a) f->stats.compress = afmt__alloc_seal_seconds(a);
    return rc;
}

void afmt__layer_plan_free(afmt_layer_plan *p) {
    free(p->chunks);
    free(p->arrays);
    for (uint64_t i = 0; i < p->n_attrs; i++) free(p->attrs[i].value);
    free(p->attrs);
    p->chunks = NULL;
    p->arrays = NULL;
    p->attrs = NULL;
    p->n_chunks = p->n_arrays = p->n_attrs = 0;
    afmt__buf_free(&p->seg);
    afmt__buf_free(&p->tail);
    afmt__buf_free(&p->footer);
    p->ready = p->collected = 0;
}

int afmt__commit_finish(afmt_file *f, afmt_layer_plan *plan, afmt__staging *t, afmt_alloc *a,
                        const char *fn, int *durable) {
    int late_rc = AFMT_OK;
    char late_msg[AFMT_ERRMSG_MAX] = "";
    *durable = 0;
    if (plan->published) {
        late_rc = plan->late_rc;
        memcpy(late_msg, plan->late_msg, sizeof late_msg);
    } else {
        int rc = afmt__write_slot(f, f->st, &plan->next, AFMT_OK, fn, f->opts.durability, &late_rc);
        if (rc != AFMT_OK) return rc;
        if (late_rc != AFMT_OK) memcpy(late_msg, f->errmsg, sizeof late_msg);
    }
    *durable = 1;
    f->super = plan->next;
    layer_tidy(f, f->st, f->super.eof);
    int rc = commit_adopt(f, AFMT_OK, &plan->footer, t, a, 0);
    return late_outcome(f, rc, late_rc, late_msg);
}

int afmt_discard(afmt_file *f) {
    int rc = afmt__check(f, "afmt_discard");
    if (rc != AFMT_OK) return rc;
    if ((rc = afmt__check_writable(f, "afmt_discard")) != AFMT_OK) return rc;
    /* Defines, deletes and attributes were applied to the index at once: rebuild it from
     * the file, which still is the last commit. First, so that a failed reload leaves the
     * handle as it was and the discard can be retried. Every rank takes the same branch,
     * even where the ranks' metadata calls disagreed. */
    int any = f->n_pend_arrays > 0 || f->n_pend_attrs > 0;
    if ((rc = afmt__enter(f, AFMT_CALL_DISCARD, AFMT_OK, &any, 1)) != AFMT_OK) return rc;
    if (any && (rc = afmt__reload(f)) != AFMT_OK) return rc;
    afmt__staging_clear(&f->staging);
    if (f->alloc) afmt__alloc_reset(f->alloc);
    pending_clear(f);
    return AFMT_OK;
}

int afmt_commit(afmt_file *f) {
    int rc = afmt__check(f, "afmt_commit");
    if (rc != AFMT_OK) return rc;
    if ((rc = afmt__check_writable(f, "afmt_commit")) != AFMT_OK) return rc;
    if ((rc = afmt__commit(f)) != AFMT_OK) return rc;
    return afmt__retain(f, "afmt_commit"); /* the commit is durable: retention may follow */
}
