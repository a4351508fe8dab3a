/* sparse.h - the sparse exchange: every rank sends one message to each of a few ranks of
 * its choice and learns who sent to it, with no step whose cost grows with the number of
 * ranks P beyond O(log P): the nonblocking consensus (NBX) of Hoefler, Siebert and
 * Lumsdaine (PPoPP 2010). A rank with nothing to send pays one MPI_Ibarrier and one
 * MPI_Allreduce, and touches no array of P entries. A mechanism like mpiutil.h: it knows
 * nothing of handles. */
#ifndef AFMT_SPARSE_H
#define AFMT_SPARSE_H

#include <mpi.h>
#include <stdint.h>

#include "mpi/mpiutil.h"

/* The tags of the sparse exchanges: 7200..7299. A call with tag t uses t and t + 1 on its
 * communicator; a caller gives each of its rounds its own even tag. */
#define AFMT__SPARSE_TAG_BASE 7200
#define AFMT__SPARSE_TAG_END  7299

/* A message received: its source rank and its len (> 0) bytes (malloc'd); head is
 * internal (the bytes that came in round 1). */
typedef struct {
    int src;
    uint64_t len, head;
    uint8_t *data;
} afmt__sparse_msg;

/* COLLECTIVE. Sends len[i] bytes from buf[i] to rank dest[i] for i < n_dest (the dests
 * distinct and in [0, size); entries with len 0 send nothing; the own rank is a local
 * copy) and returns in *in (malloc'd, n_in entries, sorted by source) every message sent
 * to this rank. rc is the caller's outcome so far: a rank with rc != AFMT_OK sends
 * nothing but still takes part, and every rank returns the code of the lowest failing
 * rank (afmt__agree). flag (may be NULL): in, this rank's flag; out, the OR over the
 * ranks (carried by the agreement, so it costs nothing).
 *
 * The protocol: round 1 is NBX: an MPI_Issend (tag) to each destination of the length
 * and of the first bytes (at most 8 KiB) of the message, received with MPI_Improbe and
 * MPI_Mrecv into a buffer on the stack, so that a rank that cannot allocate still drains
 * every message; once its own Issends have completed (each was received) a rank enters an
 * MPI_Ibarrier, and when that completes, every message of the round has been received.
 * Then one agreement (the outcomes, flag, and whether any message is longer); no byte of
 * round 2 moves unless every rank is ready. Round 2, only if some message is longer: the
 * rest of each long message point to point (tag + 1) in pieces of at most 1 GiB (an int
 * count each), then one more agreement. Nothing of the exchange is in flight when it
 * returns, whatever the outcome. */
int afmt__sparse_exchange(const afmt__group *g, int tag, int rc, uint64_t n_dest, const int *dest,
                          const uint8_t *const *buf, const uint64_t *len, int *flag,
                          afmt__sparse_msg **in, uint64_t *n_in, const char *what);

/* Frees what afmt__sparse_exchange returned (in may be NULL). */
void afmt__sparse_free(afmt__sparse_msg *in, uint64_t n_in);

/* The message from src in in[0..n_in) (sorted by source), or NULL. */
const afmt__sparse_msg *afmt__sparse_find(const afmt__sparse_msg *in, uint64_t n_in, int src);

#ifdef AFMT_TESTING
/* Test hooks, to be set alike on every rank. inline_bytes: the most bytes of a message
 * sent in round 1 (0: only the lengths; more than 8 KiB: the default, 8 KiB); piece: the
 * largest piece of round 2 (0 or more than INT_MAX: the default, 1 GiB). */
void afmt__sparse_set_limits(uint64_t inline_bytes, uint64_t piece);
/* What this process did in afmt__sparse_exchange since it started: calls, messages sent
 * to another rank (round 1 and every piece of round 2), messages received from another
 * rank, and calls that needed round 2. */
typedef struct {
    uint64_t calls, sent, received, round2;
} afmt__sparse_stats;
void afmt__sparse_get_stats(afmt__sparse_stats *out);
#endif

#endif
