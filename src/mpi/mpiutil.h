/* mpiutil.h - the agreement on a step's outcome and 64-bit-safe collectives on byte
 * counts. A mechanism: it knows nothing of handles; every call names its communicator,
 * this rank, the size and a message buffer (an afmt__group). file.h wraps these for a
 * handle (afmt__file_agree, afmt__enter, afmt__share_buf, ...). */
#ifndef AFMT_MPIUTIL_H
#define AFMT_MPIUTIL_H

#include <mpi.h>
#include <stdint.h>

#include "common/util.h"

/* The ranks of one collective step and where its message goes. */
typedef struct {
    MPI_Comm comm;
    int rank, size;
    char *errmsg; /* AFMT_ERRMSG_MAX bytes: this rank's message in, the agreed one out */
} afmt__group;

/* COLLECTIVE. Agrees on the outcome of a step: if any rank has rc != AFMT_OK, every rank
 * returns the code of the lowest failing rank and receives its message into errmsg (and
 * the thread buffer). MPI failures become AFMT_EMPI. The one agreement of the library. */
int afmt__agree(MPI_Comm comm, int rank, int size, int rc, char *errmsg);

/* COLLECTIVE. afmt__agree in one MPI_Allreduce of a fixed size that also ORs
 * flags[0..nflags) over the ranks (nflags <= AFMT__AGREE_MAXFLAGS) and checks that every
 * rank passed the same key (> 0). Keys differ: AFMT_EINVAL on every rank, keys[0] and
 * keys[1] the lowest and highest key (else both are key), errmsg untouched (the caller
 * words it). The
 * Allreduce fails: AFMT_EMPI, "what: MPI_Allreduce failed". */
#define AFMT__AGREE_MAXFLAGS 3
int afmt__agree_keyed(const afmt__group *g, int key, int rc, int *flags, int nflags, int keys[2],
                      const char *what);

/* Broadcast of len bytes in pieces of at most AFMT_PIECE (an int count each). */
int afmt__bcast_bytes(MPI_Comm comm, void *buf, uint64_t len, int root);
/* COLLECTIVE. Root 0's bytes in b to every rank (b is empty elsewhere): the length, room
 * on every rank, then one agreement (with rc, the caller's outcome so far), then the
 * bytes. Every rank returns the same code. */
int afmt__share_buf_comm(const afmt__group *g, afmt_buf *b, int rc, const char *what);
/* COLLECTIVE. Gathers each rank's len bytes to rank 0: *out (malloc'd on rank 0) holds
 * them in rank order, lens[size] (rank 0, allocated by the caller before its last
 * agreement) their sizes. Allocates first, then agrees, then moves data: every rank
 * returns the same code and message (what, and the failing rank's cause). */
int afmt__gather_bytes_comm(const afmt__group *g, const void *buf, uint64_t len, uint8_t **out,
                            uint64_t *lens, const char *what);
#ifdef AFMT_TESTING
/* Test hook: the largest message piece (default AFMT_PIECE). */
void afmt__set_mpi_piece(uint64_t bytes);
#endif

#endif
