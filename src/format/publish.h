/* publish.h - the point of no return of a commit and a rollback: the next superblock slot,
 * written by rank 0 and synced (docs/architecture.md 5 steps 7-8, 9). A mechanism: it
 * takes the ranks (mpiutil.h), the storage and the slot, not a handle. */
#ifndef AFMT_PUBLISH_H
#define AFMT_PUBLISH_H

#include "format/superblock.h"
#include "mpi/mpiutil.h"
#include "storage/storage.h"

/* COLLECTIVE. rc is this rank's outcome so far. If it is AFMT_OK on rank 0, rank 0
 * encodes next into its slot (afmt__super_slot_offset(next->generation)) and writes it;
 * then one agreement. A failure there: that code on every rank, nothing written that a
 * reader could find. Else the slot is written (the caller's durable point, whatever
 * follows): with sync nonzero every rank syncs and *late_rc is the agreed outcome of that
 * sync (sync 0: no sync, *late_rc AFMT_OK), and the call returns AFMT_OK. Messages:
 * "what: writing the superblock: <storage's>", "what: syncing the superblock: <storage's>". */
int afmt__publish_slot(const afmt__group *g, afmt_storage *st, const afmt_super *next, int rc,
                       const char *what, int sync, int *late_rc);

#endif
