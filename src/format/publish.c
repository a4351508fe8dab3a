/* publish.c - the superblock slot write that makes a commit or a rollback the file's
 * state, and the sync after it (publish.h). One copy, so that both keep the same
 * crash and error behaviour: a torn slot fails its checksum and readers keep the other. */
#include "format/publish.h"

#include "common/error.h"

int afmt__publish_slot(const afmt__group *g, afmt_storage *st, const afmt_super *next, int rc,
                       const char *what, int sync, int *late_rc) {
    *late_rc = AFMT_OK;
    if (rc == AFMT_OK && g->rank == 0) {
        uint8_t slot[AFMT_SLOT_SIZE];
        afmt__super_encode(next, slot);
        rc = st->ops->write_at(st, afmt__super_slot_offset(next->generation), slot, sizeof slot);
        if (rc != AFMT_OK)
            afmt__fail(g->errmsg, rc, "%s: writing the superblock: %s", what, st->errmsg);
    }
    if ((rc = afmt__agree(g->comm, g->rank, g->size, rc, g->errmsg)) != AFMT_OK) return rc;
    if (!sync) return AFMT_OK; /* a lower durability level (afmt_opts_set_durability) */
    /* The slot is written: from here it is what a reader finds, so a failed sync must not
     * pretend otherwise (a retry would rewrite the footer the slot points at); the caller
     * adopts the new state and reports *late_rc. */
    rc = st->ops->sync(st);
    if (rc != AFMT_OK)
        afmt__fail(g->errmsg, rc, "%s: syncing the superblock: %s", what, st->errmsg);
    *late_rc = afmt__agree(g->comm, g->rank, g->size, rc, g->errmsg);
    return AFMT_OK;
}
