/* read.h - the read path shared by afmt_read (read.c) and afmt_read_all (read_all.c). */
#ifndef AFMT_READ_H
#define AFMT_READ_H

#include <stdint.h>

#include "api/file.h"
#include "api/memview.h"

/* INDEPENDENT. afmt_read once the handle, the array and the region are checked: the
 * chunks of the hyperslab from this rank's staged writes, the committed blocks (through
 * the index's lookups and the block cache) or the fill value, into buf. */
int afmt__read_region(afmt_file *f, const afmt_array *arr, const uint64_t *start,
                      const uint64_t *count, void *buf);
/* afmt__read_region into the memory layout mv (memview.h): a box of a larger array. */
int afmt__read_region_mv(afmt_file *f, const afmt_array *arr, const uint64_t *start,
                         const uint64_t *count, const afmt_memview *mv, void *buf);

#ifdef AFMT_TESTING
/* Test hook: f's afmt_read_all node groups are runs of n consecutive ranks of its
 * communicator instead of its node (0, the default), so that one machine plays several
 * nodes. Takes effect if f's first afmt_read_all comes later. */
void afmt__set_read_node_ranks(afmt_file *f, int n);
#endif

#endif
