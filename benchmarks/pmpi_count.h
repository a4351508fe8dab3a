/* pmpi_count.h - a PMPI wrapper that counts the bytes this rank RECEIVES into its own
 * buffers, by MPI call, between MPI_Pcontrol(1) (start: counters zeroed) and
 * MPI_Pcontrol(0) (stop). Linked into a benchmark, its MPI_* definitions take the place of
 * the MPI library's for every caller in the process (the library's static objects
 * included), and forward to PMPI_*.
 *
 * What counts as received (count x type size of the receive side):
 *   Bcast, Ibcast            every rank but the root
 *   Reduce                   the root; Allreduce, Iallreduce, Scan: every rank
 *   Exscan                   every rank but rank 0 (whose result is undefined)
 *   Gather(v)                the root, without its own contribution
 *   Allgather(v), Alltoall(v)  every rank, without its own contribution
 *   Scatter(v)               every rank but the root
 *   Recv, Mrecv, Sendrecv    the bytes of the message (MPI_Get_count of its status)
 *   Irecv, Imrecv            the posted count (an upper bound; afmt posts exact sizes)
 * Barriers, sends and I/O calls move nothing into this rank's buffers. One-sided and
 * shared-memory windows are not counted. */
#ifndef PMPI_COUNT_H
#define PMPI_COUNT_H

#include <stdint.h>

enum {
    PC_BCAST,
    PC_ALLREDUCE,
    PC_REDUCE,
    PC_SCAN,
    PC_GATHER,
    PC_ALLGATHER,
    PC_ALLTOALL,
    PC_SCATTER,
    PC_P2P, /* Recv, Mrecv, Sendrecv, Irecv, Imrecv */
    PC_N
};

typedef struct {
    uint64_t bytes[PC_N]; /* received, by kind */
    uint64_t calls[PC_N]; /* calls of that kind, whether they received or not */
    uint64_t total;       /* the sum of bytes[] */
} pmpi_counts;

/* The counts of the last (or running) counting window. */
void pmpi_count_get(pmpi_counts *out);
/* The name of kind k ("bcast", ...). */
const char *pmpi_count_name(int k);

#endif
