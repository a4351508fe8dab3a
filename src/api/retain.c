/* retain.c - checkpoint retention applied after a commit (afmt_opts_set_retention): once
 * the commit is durable, the handle decides from its own index, the same on every rank,
 * whether the file is to be compacted (afmt_compact_keep), and does it. The compaction is
 * atomic (compact.c): when it fails, the file is as the commit left it. */
#include <stdio.h>
#include <string.h>

#include "api/file.h"

/* The bytes of the file the newest layer does not need, from the whole index x: the
 * stored bytes of the blocks with no current chunk of a live array, and the footers and
 * index segments of the layers before the newest. */
static uint64_t dead_bytes(const afmt_index *x) {
    uint64_t dead = 0;
    for (uint64_t b = 0; b < x->n_blocks; b++)
        if (x->blocks[b].nlive == 0) dead += x->blocks[b].b.stored_size;
    for (uint64_t i = 0; i + 1 < x->n_layers; i++)
        dead += x->layers[i].footer_length + x->layers[i].seg_bytes;
    return dead;
}

int afmt__retain(afmt_file *f, const char *fn) {
    uint64_t keep = f->opts.keep, n = f->idx.n_layers;
    double frac = f->opts.dead_fraction;
    /* keep K: more than K + 1 layers. The layer count and the setting are the same on
     * every rank (the commit and the open agreed them), so every rank takes the same
     * branch here: no MPI call while nothing is due. */
    int go = keep > 0 && n > 1 && n - 1 > keep;
    int count_dead = frac > 0.0 && (keep == 0 ? n > 1 : go);
    if (!go && !count_dead) return AFMT_OK;
    /* Changes staged on some rank (writes made while an asynchronous commit was in
     * flight): a compaction would commit them. Skipped; the next commit checks. */
    int staged = f->staging.n > 0 || f->n_pend_arrays > 0 || f->n_pend_attrs > 0 || f->drain;
    int rc = AFMT_OK;
    if (count_dead && !staged) {
        /* The whole chunk map: every lazy layer's index segments, once (lazy.h). */
        char why[AFMT_ERRMSG_MAX];
        rc = afmt__index_load_all(&f->idx, why);
        if (rc != AFMT_OK)
            afmt__fail(f->errmsg, rc, "%s(%s): reading the index to count the dead bytes: %.800s",
                       fn, f->path, why);
        go = rc == AFMT_OK && f->super.eof > 0 &&
             (double)dead_bytes(&f->idx) > frac * (double)f->super.eof;
    }
    /* One agreement: the index read's outcome, whether any rank has changes staged, and
     * the decision (the same wherever the index was read). */
    int flags[2] = {staged, go};
    rc = afmt__file_agree_flags(f, rc, flags, 2);
    if (rc == AFMT_OK && flags[0]) return AFMT_OK;
    uint64_t newest = n ? f->idx.layers[n - 1].layer_id : 0;
    if (rc == AFMT_OK && flags[1]) rc = afmt_compact_keep(f, keep);
    if (rc == AFMT_OK) return AFMT_OK;
    /* Where the compaction stopped: before its rename the file (and the handle) is as the
     * commit left it; after it (a failed directory sync, or a failed reopen that made the
     * handle stale) the file is compacted, its newest state the commit's. A compaction
     * that ran leaves fewer layers (it runs only when there are more than keep + 1). */
    const char *state = f->stale              ? "the file is compacted, but this handle is stale"
                        : f->idx.n_layers < n ? "the file is compacted"
                                              : "the file is as the commit left it";
    char why[AFMT_ERRMSG_MAX];
    memcpy(why, f->errmsg, sizeof why);
    return afmt__fail(f->errmsg, rc,
                      "%s(%s): the commit is durable (layer %llu is the newest), but the automatic "
                      "retention (keep %llu, dead fraction %g) failed and %s: %.700s",
                      fn, f->path, (unsigned long long)newest, (unsigned long long)f->opts.keep,
                      f->opts.dead_fraction, state, why);
}
