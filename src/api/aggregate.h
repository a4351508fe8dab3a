/* aggregate.h - node-level aggregation of a commit's index segments (docs/format.md 9.4):
 * the ranks of a node (MPI_COMM_TYPE_SHARED) send their block and chunk records to the
 * node's leader, which writes one index segment for the node after its own blocks. Rank 0
 * then receives one segment per node, and the root table has one record per node, not per
 * rank. The MPI_Info hint afmt_index_aggregation=rank turns it off (a segment per rank). */
#ifndef AFMT_AGGREGATE_H
#define AFMT_AGGREGATE_H

#include <stdint.h>

#include "api/file.h"

/* A node's records on its way to the leader's segment (afmt__node_meta_free frees it). */
typedef struct {
    uint8_t *all;      /* leader: every node rank's packed records, in node rank order */
    uint64_t *lens;    /* leader: their lengths */
    uint64_t *bases;   /* leader: each node rank's region offset (afmt__node_segment) */
    uint64_t nb, nc;   /* leader: the node's blocks and chunk records */
    uint64_t seg_size; /* leader: bytes of the node's segment (0: no chunk on the node) */
} afmt_node_meta;

/* COLLECTIVE (agreed). Sets up f->node on the first call; packs this rank's block records
 * (offsets relative to its region) and its chunk records (block numbers of alloc) and
 * gathers them to the node leader, which learns the node segment's size. */
int afmt__node_gather(afmt_file *f, afmt_alloc *alloc, const afmt_chunk_rec *chunks, uint64_t nc,
                      afmt_node_meta *m);

/* COLLECTIVE over the node (its outcome joins the caller's agreement). base: this rank's
 * region offset. The leader checks the node's records as the layer hdr (its header
 * fields, arrays and flags; no blocks or chunks) would hold them, against f's index (the
 * merge rules afmt_open applies: AFMT_EINVAL naming the rank that sent a bad record), and
 * encodes the node's segment into seg (file offsets: each rank's base plus its relative
 * offsets) and its root record for offset seg_at into root; other ranks leave both
 * empty. */
int afmt__node_segment(afmt_file *f, afmt_node_meta *m, uint64_t base, const afmt_layer *hdr,
                       uint64_t seg_at, afmt_buf *seg, uint8_t root[80]);

void afmt__node_meta_free(afmt_node_meta *m);

#endif
