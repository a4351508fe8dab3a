/* aggregate.c - node-level aggregation of the index segments, and optionally of the data
 * blocks (aggregate.h). Two collectives inside each node per commit (the records before
 * the offsets are known, the ranks' region offsets after; with data aggregation the
 * leader computes the offsets itself, and the blocks follow point to point), no message
 * between nodes beyond the commit's own. */
#include "api/aggregate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "format/segment.h"

enum { REC = 40, HDR = 24 }; /* bytes of a packed block or chunk record; of the header */
enum { TAG_DATA = 7201, TAG_FAILED = 7202 }; /* the data streams to the leader */

/* The largest piece a node rank sends its leader: a leader holds two (the one it writes,
 * the one arriving). */
#define NODE_PIECE ((uint64_t)32 << 20)
static uint64_t node_piece = NODE_PIECE;

#ifdef AFMT_TESTING
void afmt__set_node_piece(uint64_t n) {
    node_piece = n ? n : NODE_PIECE;
}
#endif

/* The node communicator, once per handle: MPI_COMM_TYPE_SHARED (cut into groups of at
 * most f->node_group consecutive node ranks, hint afmt_node_group_size), or each rank
 * alone with the hint afmt_index_aggregation=rank; the leaders' communicator (rank 0 is
 * its rank 0: the split keys are the ranks), how many leaders there are, and whether the
 * leaders write their groups' data (the hint afmt_data_aggregation=node on every rank:
 * all ranks take the same path even where the hints differ). */
static int node_split(afmt_file *f) {
    if (f->segment_per_rank) return MPI_Comm_split(f->comm, f->rank, 0, &f->node);
    if (f->shm == MPI_COMM_NULL) return MPI_ERR_COMM; /* the handle's split failed */
    if (!f->node_group) {
        f->node = f->shm; /* freed with shm */
        return MPI_SUCCESS;
    }
    return MPI_Comm_split(f->shm, f->shm_rank / f->node_group, f->shm_rank, &f->node);
}

int afmt__node_setup(afmt_file *f) {
    if (f->node_ready) return AFMT_OK;
    f->leaders = MPI_COMM_NULL;
    if (node_split(f) != MPI_SUCCESS)
        return afmt__fail(f->errmsg, AFMT_EMPI, "afmt_commit(%s): MPI_Comm_split_type failed",
                          f->path);
    f->node_ready = 1;
    int rc = MPI_Comm_rank(f->node, &f->node_rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(f->node, &f->node_size);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_split(f->comm, f->node_rank == 0 ? 0 : MPI_UNDEFINED, f->rank, &f->leaders);
    int mine[2] = {f->node_rank == 0, f->data_per_node && !f->segment_per_rank}, sum[2] = {0, 0};
    if (rc == MPI_SUCCESS) rc = MPI_Allreduce(mine, sum, 2, MPI_INT, MPI_SUM, f->comm);
    if (rc != MPI_SUCCESS)
        return afmt__fail(f->errmsg, AFMT_EMPI, "afmt_commit(%s): setting up the node groups",
                          f->path);
    f->n_nodes = sum[0];
    f->node_data = sum[1] == f->size;
    return AFMT_OK;
}

/* A block record with its offset relative to the rank's region, as footer.h packs it. */
static void put_block(afmt_buf *m, const afmt_alloc_block *b, uint32_t rank) {
    afmt_block_rec r = {b->rel_offset, b->stored_size, b->raw_size, b->checksum, b->codec, rank};
    uint8_t q[REC];
    afmt__block_rec_put(q, &r);
    afmt__buf_append(m, q, sizeof q);
}

static void put_chunk(afmt_buf *m, const afmt_chunk_rec *c) {
    uint8_t q[REC];
    afmt__chunk_rec_put(q, c);
    afmt__buf_append(m, q, sizeof q);
}

int afmt__node_gather(afmt_file *f, afmt_alloc *alloc, const afmt_chunk_rec *chunks, uint64_t nc,
                      afmt_node_meta *m) {
    memset(m, 0, sizeof *m);
    int rc = afmt__node_setup(f);
    /* A failed setup leaves no usable node group: every rank learns it here. */
    if ((rc = afmt__file_agree(f, rc)) != AFMT_OK) return rc;
    afmt_buf pk;
    afmt__buf_init(&pk);
    uint64_t nb = alloc ? afmt__alloc_nblocks(alloc) : 0;
    afmt__buf_u64(&pk, nb);
    afmt__buf_u64(&pk, nc);
    afmt__buf_u64(&pk, alloc ? afmt__alloc_stored_bytes(alloc) : 0);
    for (uint64_t i = 0; i < nb; i++)
        put_block(&pk, afmt__alloc_block_at(alloc, i), (uint32_t)f->rank);
    for (uint64_t i = 0; i < nc; i++) put_chunk(&pk, &chunks[i]);
    if (pk.oom) {
        rc = afmt__fail(f->errmsg, AFMT_ENOMEM,
                        "afmt_commit(%s): out of memory for this rank's index records", f->path);
        pk.len = 0;
    }
    if (f->node_rank == 0 && (!(m->lens = calloc((size_t)f->node_size, sizeof *m->lens)) ||
                              !(m->bases = calloc((size_t)f->node_size, sizeof *m->bases)) ||
                              !(m->stored = calloc((size_t)f->node_size, sizeof *m->stored))))
        rc = afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_commit(%s): out of memory", f->path);
    /* The leader's room must exist before the gather (mpiutil.h): agree on it first. */
    if ((rc = afmt__file_agree(f, rc)) != AFMT_OK) {
        afmt__buf_free(&pk);
        afmt__node_meta_free(m);
        return rc;
    }
    char what[AFMT_ERRMSG_MAX];
    snprintf(what, sizeof what, "afmt_commit(%s): gathering the node's index records", f->path);
    afmt__group g = {f->node, f->node_rank, f->node_size, f->errmsg};
    /* The node agrees on its records; the world on every node's outcome (and on rc). */
    rc = afmt__gather_bytes_comm(&g, pk.data, pk.len, &m->all, m->lens, what);
    afmt__buf_free(&pk);
    if (rc == AFMT_OK && f->node_rank == 0) {
        uint64_t at = 0, most = 0;
        for (int r = 0; r < f->node_size; at += m->lens[r], r++) {
            m->nb += afmt__get_u64(m->all + at);
            m->nc += afmt__get_u64(m->all + at + 8);
            m->stored[r] = afmt__get_u64(m->all + at + 16);
            m->node_stored += m->stored[r];
            if (r > 0 && m->stored[r] > most) most = m->stored[r];
        }
        m->seg_size = m->nc ? afmt__segment_size(m->nb, m->nc) : 0;
        /* The receive buffers, before the agreement: a leader that has them can always
         * drain its node's streams. No piece is larger than node_piece or its rank's
         * bytes. */
        m->piece_cap = most < node_piece ? most : node_piece;
        if (f->node_data && f->node_size > 1 &&
            (!(m->piece[0] = malloc((size_t)(m->piece_cap ? m->piece_cap : 1))) ||
             !(m->piece[1] = malloc((size_t)(m->piece_cap ? m->piece_cap : 1)))))
            rc = afmt__fail(f->errmsg, AFMT_ENOMEM,
                            "afmt_commit(%s): out of memory for the node's data pieces (2 x "
                            "%llu bytes)",
                            f->path, (unsigned long long)m->piece_cap);
    }
    if ((rc = afmt__file_agree(f, rc)) != AFMT_OK) afmt__node_meta_free(m);
    return rc;
}

/* Leader: the node's records checked as part of layer hdr (index.h's commit check: the
 * rules afmt_open applies to every chunk), so that no layer a reader would refuse is ever
 * written. */
static int check_node(afmt_file *f, const afmt_layer *hdr, afmt_block_rec *B, uint64_t nb,
                      afmt_chunk_rec *C, uint64_t nc) {
    afmt_layer L = *hdr;
    L.blocks = B;
    L.n_blocks = nb;
    L.chunks = C;
    L.n_chunks = nc;
    L.segs = NULL;
    L.n_segs = 0;
    L.attrs = NULL; /* rank 0 checks the attributes with the footer */
    L.n_attrs = 0;
    char why[AFMT_ERRMSG_MAX];
    uint32_t bad = 0;
    int rc = afmt__index_check_commit(&f->idx, &L, &bad, why);
    if (rc == AFMT_ECORRUPT)
        return afmt__fail(f->errmsg, AFMT_EINVAL,
                          "afmt_commit(%s): rank %u sent a record that would make the layer "
                          "unreadable: %.700s",
                          f->path, bad, why);
    if (rc != AFMT_OK)
        return afmt__fail(f->errmsg, rc, "afmt_commit(%s): checking the node's records: %.700s",
                          f->path, why);
    return AFMT_OK;
}

/* Leader: the node's block and chunk records (file offsets from bases), checked, into a
 * segment. */
static int encode_node(afmt_file *f, const afmt_node_meta *m, const uint64_t *bases,
                       const afmt_layer *hdr, afmt_buf *seg) {
    afmt_block_rec *B = malloc(sizeof *B * (size_t)(m->nb ? m->nb : 1));
    afmt_chunk_rec *C = malloc(sizeof *C * (size_t)m->nc);
    int rc = B && C ? AFMT_OK : AFMT_ENOMEM;
    uint64_t nb = 0, nc = 0, at = 0;
    for (int r = 0; rc == AFMT_OK && r < f->node_size; at += m->lens[r], r++) {
        const uint8_t *p = m->all + at;
        uint64_t rb = afmt__get_u64(p), rcn = afmt__get_u64(p + 8), first = nb;
        p += HDR;
        for (uint64_t i = 0; i < rb; i++, p += REC) {
            afmt__block_rec_get(p, &B[nb]);
            B[nb++].offset += bases[r];
        }
        for (uint64_t i = 0; i < rcn; i++, p += REC) {
            afmt__chunk_rec_get(p, &C[nc]);
            C[nc++].block += first;
        }
    }
    if (rc == AFMT_OK) {
        qsort(C, (size_t)nc, sizeof *C, afmt__chunk_rec_cmp);
        for (uint64_t i = 1; i < nc; i++)
            if (afmt__chunk_rec_cmp(&C[i - 1], &C[i]) == 0) {
                int r = (int)B[C[i].block].rank, q = (int)B[C[i - 1].block].rank;
                afmt__fail(f->errmsg, AFMT_EINVAL,
                           "afmt_commit(%s): ranks %d and %d both wrote chunk %llu of array "
                           "%llu whole",
                           f->path, q < r ? q : r, q < r ? r : q,
                           (unsigned long long)C[i].chunk_index, (unsigned long long)C[i].array_id);
                free(B);
                free(C);
                return AFMT_EINVAL;
            }
        int crc = check_node(f, hdr, B, nb, C, nc);
        if (crc != AFMT_OK) {
            free(B);
            free(C);
            return crc;
        }
        rc = afmt__segment_encode(hdr->layer_id, (uint32_t)f->rank, B, nb, C, nc, seg);
    }
    free(B);
    free(C);
    if (rc == AFMT_ENOMEM)
        return afmt__fail(f->errmsg, rc,
                          "afmt_commit(%s): out of memory for the node's index segment (%llu "
                          "blocks, %llu chunks)",
                          f->path, (unsigned long long)m->nb, (unsigned long long)m->nc);
    if (rc != AFMT_OK) /* two ranks of the node sent one chunk: the exchange's job */
        return afmt__fail(f->errmsg, AFMT_EINVAL, "afmt_commit(%s): %s", f->path,
                          afmt__thread_errbuf());
    return AFMT_OK;
}

int afmt__node_segment(afmt_file *f, afmt_node_meta *m, uint64_t base, const afmt_layer *hdr,
                       uint64_t seg_at, afmt_buf *seg, uint8_t root[80]) {
    /* m->bases was allocated (leader) before afmt__node_gather's agreement: every node
     * rank takes part here, whatever happens next. */
    int rc = AFMT_OK;
    if (f->node_data) {
        /* The leader's region holds the node's blocks in node rank order. */
        for (int r = 0; f->node_rank == 0 && r < f->node_size; r++)
            m->bases[r] = r ? m->bases[r - 1] + m->stored[r - 1] : base;
    } else if (MPI_Gather(&base, 1, MPI_UINT64_T, m->bases, 1, MPI_UINT64_T, 0, f->node) !=
               MPI_SUCCESS) {
        rc = afmt__fail(f->errmsg, AFMT_EMPI, "afmt_commit(%s): MPI_Gather of the node failed",
                        f->path);
    }
    if (rc == AFMT_OK && f->node_rank == 0 && m->nc &&
        (rc = encode_node(f, m, m->bases, hdr, seg)) == AFMT_OK) {
        afmt_seg_rec g;
        afmt__segment_root(seg->data, (uint64_t)seg->len, seg_at, &g);
        afmt__seg_rec_encode(&g, root);
    }
    return rc;
}

/* Node rank > 0: this rank's blocks to the leader, then the end of the stream. */
static int send_blocks(afmt_file *f, afmt_alloc *alloc, int rc) {
    uint64_t pos = 0;
    while (rc == AFMT_OK && alloc) {
        const void *p;
        uint64_t n;
        if ((rc = afmt__alloc_next_piece(alloc, &pos, node_piece, &p, &n)) != AFMT_OK) {
            afmt__fail(f->errmsg, rc, "afmt_commit(%s): %s", f->path, afmt__alloc_errmsg(alloc));
            break;
        }
        if (n == 0) break;
        if (MPI_Send(p, (int)n, MPI_BYTE, 0, TAG_DATA, f->node) != MPI_SUCCESS)
            return afmt__fail(f->errmsg, AFMT_EMPI,
                              "afmt_commit(%s): MPI_Send of data blocks to the node leader failed",
                              f->path);
    }
    uint8_t none = 0;
    if (MPI_Send(&none, 0, MPI_BYTE, 0, rc == AFMT_OK ? TAG_DATA : TAG_FAILED, f->node) !=
            MPI_SUCCESS &&
        rc == AFMT_OK)
        rc = afmt__fail(f->errmsg, AFMT_EMPI, "afmt_commit(%s): MPI_Send to the node leader failed",
                        f->path);
    return rc;
}

/* Leader: node rank r's stream, each piece written at bases[r] plus its position while
 * nothing failed (*rc; the next piece arrives while one is written), and drained to its
 * end in any case. A rank that reports its failure (TAG_FAILED) says why in the
 * agreement. Returns 0, or -1 if MPI failed (the stream could not be drained). */
static int recv_blocks(afmt_file *f, afmt_node_meta *m, afmt_storage *st, int r, int *rc) {
    MPI_Request q;
    int cur = 0, cap = (int)(m->piece_cap ? m->piece_cap : 1);
    uint64_t pos = 0;
    if (MPI_Irecv(m->piece[0], cap, MPI_BYTE, r, MPI_ANY_TAG, f->node, &q) != MPI_SUCCESS) {
        *rc = afmt__fail(f->errmsg, AFMT_EMPI, "afmt_commit(%s): MPI_Irecv failed", f->path);
        return -1;
    }
    for (;;) {
        MPI_Status s;
        int n = 0;
        if (MPI_Wait(&q, &s) != MPI_SUCCESS || MPI_Get_count(&s, MPI_BYTE, &n) != MPI_SUCCESS) {
            *rc = afmt__fail(f->errmsg, AFMT_EMPI,
                             "afmt_commit(%s): receiving node rank %d's data blocks failed",
                             f->path, r);
            return -1;
        }
        if (s.MPI_TAG == TAG_FAILED) return 0;
        if (n <= 0) break;
        if (MPI_Irecv(m->piece[1 - cur], cap, MPI_BYTE, r, MPI_ANY_TAG, f->node, &q) !=
            MPI_SUCCESS) {
            *rc = afmt__fail(f->errmsg, AFMT_EMPI, "afmt_commit(%s): MPI_Irecv failed", f->path);
            return -1;
        }
        if (*rc == AFMT_OK && pos + (uint64_t)n > m->stored[r])
            *rc = afmt__fail(f->errmsg, AFMT_EINVAL,
                             "afmt_commit(%s): node rank %d sent more than its %llu bytes of "
                             "data blocks",
                             f->path, r, (unsigned long long)m->stored[r]);
        int wrc = *rc == AFMT_OK
                      ? st->ops->write_at(st, m->bases[r] + pos, m->piece[cur], (uint64_t)n)
                      : AFMT_OK;
        if (wrc != AFMT_OK)
            *rc = afmt__fail(f->errmsg, wrc,
                             "afmt_commit(%s): writing data blocks (node rank %d's): %s", f->path,
                             r, st->errmsg);
        pos += (uint64_t)n;
        cur = 1 - cur;
    }
    if (*rc == AFMT_OK && pos != m->stored[r])
        *rc = afmt__fail(f->errmsg, AFMT_EINVAL,
                         "afmt_commit(%s): node rank %d sent %llu of its %llu bytes of data "
                         "blocks",
                         f->path, r, (unsigned long long)pos, (unsigned long long)m->stored[r]);
    return 0;
}

int afmt__node_write_data(afmt_file *f, afmt_node_meta *m, afmt_alloc *alloc, afmt_storage *st,
                          int rc) {
    if (f->node_rank != 0) return send_blocks(f, alloc, rc);
    for (int r = 1; r < f->node_size; r++)
        if (recv_blocks(f, m, st, r, &rc) != 0) break; /* MPI failed: nothing to drain with */
    return rc;
}

void afmt__node_meta_free(afmt_node_meta *m) {
    free(m->all);
    free(m->lens);
    free(m->bases);
    free(m->stored);
    free(m->piece[0]);
    free(m->piece[1]);
    m->all = NULL;
    m->lens = NULL;
    m->bases = NULL;
    m->stored = NULL;
    m->piece[0] = m->piece[1] = NULL;
}
