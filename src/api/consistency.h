/* consistency.h - the digest of a handle's collective metadata calls since the last
 * commit (afmt_define, afmt_delete, afmt_set_attr), and the check at the start of a commit
 * that every rank made the same calls with the same arguments.
 *
 * Each of those calls agrees with the other ranks on its outcome and that every rank is
 * in the same call (afmt__enter), but not on its arguments: each rank applies them to its
 * own index and queues a record, and the commit writes rank 0's records. Ranks that
 * disagree would write a layer the library then refuses to open, so the commit compares
 * one running XXH3-64 digest per rank (one small allreduce) and, only on a mismatch, finds
 * and names the first differing call from a log of the calls' canonical encodings.
 * afmt_opts_set_check_collective(o, 0) turns both the log and the check off. */
#ifndef AFMT_CONSISTENCY_H
#define AFMT_CONSISTENCY_H

#include <stdint.h>

#include "afmt.h"
#include "common/util.h"
#include "format/footer.h"

typedef struct {
    afmt_buf log;    /* one record per call, in call order (consistency.c: the encoding) */
    uint64_t ncalls; /* records in log */
    uint64_t digest; /* XXH3-64 chained over the records: the digest of the log */
} afmt_consist;

/* Room for the record of one more call. A metadata call makes it before it changes
 * anything, so that running out of memory (AFMT_ENOMEM, nothing logged) leaves the handle
 * as it was, and the afmt__consist_note_* call after its success cannot fail. AFMT_OK
 * at once when the check is off. */
int afmt__consist_reserve(afmt_file *f);

/* Record a call that succeeded (after afmt__consist_reserve). r is the define's record
 * (fill little-endian, dims filled in); array is the attribute's owner (NULL = the file)
 * and a its record (value little-endian). No-ops when the check is off. */
void afmt__consist_note_define(afmt_file *f, const afmt_array_rec *r);
void afmt__consist_note_delete(afmt_file *f, const char *name);
void afmt__consist_note_set_attr(afmt_file *f, const char *array, const afmt_attr_rec *a);

/* Forget the calls: their records were committed or discarded. */
void afmt__consist_reset(afmt_consist *c);
void afmt__consist_free(afmt_consist *c);

/* COLLECTIVE (the commit's first step after afmt__enter, which made sure that every rank
 * is in the commit). With the check on: AFMT_OK if every rank made the same metadata
 * calls since the last commit; otherwise AFMT_EINVAL on every rank with the same message
 * naming the first differing call (its number and kind), the array, the field and the
 * values of rank 0 and of a rank that differs. Changes nothing. With the check off:
 * AFMT_OK without communicating. */
int afmt__consist_check(afmt_file *f);

#endif
