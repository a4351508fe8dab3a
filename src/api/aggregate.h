/* aggregate.h - node-level aggregation of a commit's index segments (docs/format.md 9.4):
 * the ranks of a node (MPI_COMM_TYPE_SHARED) send their block and chunk records to the
 * node's leader, which writes one index segment for the node after its own blocks. Rank 0
 * then receives one segment per node, and the root table has one record per node, not per
 * rank. The MPI_Info hint afmt_index_aggregation=rank turns it off (a segment per rank).
 *
 * Data aggregation (hint afmt_data_aggregation=node, on every rank; off with
 * afmt_index_aggregation=rank): the leader also writes the node's data blocks. The node's
 * region is the leader's: its own blocks, then each node rank's in node rank order, then
 * the segment; the other ranks' regions are empty. They stream their sealed blocks to the
 * leader over f->node in pieces of at most 32 MiB (afmt__node_write_data). Block records
 * keep their origin rank. */
#ifndef AFMT_AGGREGATE_H
#define AFMT_AGGREGATE_H

#include <stdint.h>

#include "api/file.h"

/* A node's records on its way to the leader's segment (afmt__node_meta_free frees it). */
typedef struct {
    uint8_t *all;         /* leader: every node rank's packed records, in node rank order */
    uint64_t *lens;       /* leader: their lengths */
    uint64_t *bases;      /* leader: each node rank's region offset (afmt__node_segment) */
    uint64_t nb, nc;      /* leader: the node's blocks and chunk records */
    uint64_t seg_size;    /* leader: bytes of the node's segment (0: no chunk on the node) */
    uint64_t *stored;     /* leader: each node rank's stored block bytes */
    uint64_t node_stored; /* leader: their sum */
    uint8_t *piece[2];    /* leader with data aggregation: the receive buffers */
    uint64_t piece_cap;   /* their size */
} afmt_node_meta;

/* COLLECTIVE (not agreed). The node groups of f (f->node, f->leaders, f->n_nodes,
 * f->node_data), split on the first call, then kept: AFMT_OK or AFMT_EMPI. */
int afmt__node_setup(afmt_file *f);
/* COLLECTIVE (agreed). Sets up f->node on the first call; packs this rank's block records
 * (offsets relative to its region) and its chunk records (block numbers of alloc) and
 * gathers them to the node leader, which learns the node segment's size. */
int afmt__node_gather(afmt_file *f, afmt_alloc *alloc, const afmt_chunk_rec *chunks, uint64_t nc,
                      afmt_node_meta *m);

/* COLLECTIVE over the node (its outcome joins the caller's agreement). base: this rank's
 * region offset (with data aggregation the leader places each node rank's blocks itself:
 * bases[0] = base, bases[r] = bases[r-1] + stored[r-1]). The leader checks the node's records as
 * the layer hdr (its header fields, arrays and flags; no blocks or chunks) would hold them, against
 * f's index (the merge rules afmt_open applies: AFMT_EINVAL naming the rank that sent a bad
 * record), and encodes the node's segment into seg (file offsets: each rank's base plus its
 * relative offsets) and its root record for offset seg_at into root; other ranks leave both empty.
 */
int afmt__node_segment(afmt_file *f, afmt_node_meta *m, uint64_t base, const afmt_layer *hdr,
                       uint64_t seg_at, afmt_buf *seg, uint8_t root[80]);

/* COLLECTIVE over the node, with data aggregation (f->node_data) only, after the leader
 * wrote its own blocks at bases[0]: the other node ranks send their sealed blocks of alloc
 * in pieces (a zero-length message ends a stream; tag 7202 instead of 7201: the sender
 * failed), and the leader writes each at m->bases[r] plus its position into st. rc !=
 * AFMT_OK: this rank sends or writes nothing more, but a leader still receives every
 * stream to its end, so that no rank waits forever. Returns this rank's outcome; the
 * caller agrees on it. */
int afmt__node_write_data(afmt_file *f, afmt_node_meta *m, afmt_alloc *alloc, afmt_storage *st,
                          int rc);

#ifdef AFMT_TESTING
/* Test hook: the largest piece a node rank sends its leader (default 32 MiB; 0: default). */
void afmt__set_node_piece(uint64_t n);
#endif

void afmt__node_meta_free(afmt_node_meta *m);

#endif
