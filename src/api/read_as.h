/* read_as.h - afmt_read_as (read_as.c): the test hook on its piece size. */
#ifndef AFMT_READ_AS_H
#define AFMT_READ_AS_H

#include <stdint.h>

/* The most bytes of stored elements afmt_read_as reads at a time before converting them. */
#define AFMT_READ_AS_PIECE ((uint64_t)16 << 20)

#ifdef AFMT_TESTING
/* Test hook: afmt_read_as reads pieces of at most bytes (0: AFMT_READ_AS_PIECE), so that
 * small arrays take several. Process-wide; not for concurrent threads. */
void afmt__set_read_as_piece(uint64_t bytes);
#endif

#endif
