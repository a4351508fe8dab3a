/* commit_async.c - afmt_commit_start and afmt_commit_wait: a commit split where the
 * collective work ends. The start takes the commit's inputs on the caller's thread (commit.c:
 * the entry, the exchange, this rank's records) and hands the rest to a helper thread per
 * rank. With MPI_THREAD_MULTIPLE (the background mode) the helper also prepares the layer
 * (the seal, which waits for the blocks' compression, the offsets, the segments and the
 * footer) over the handle's own duplicates of its communicators, so the compression
 * leaves the caller's critical path too; otherwise (foreground: any thread level) the start
 * prepares it on the caller's thread and the helper only writes. The helper's writes go
 * through its own POSIX descriptor: this rank's blocks, its node's index segment, rank 0's
 * footer and trailer, then an fsync. The wait joins the helper, agrees, and only then
 * rank 0 writes the superblock slot (commit.c): the layer exists once every rank's bytes
 * are durable, as with afmt_commit. While the helper runs, afmt_write fills a second
 * allocator and staging table, and afmt_read also sees the chunks of the commit in flight
 * (read.c), once the helper's collective part is over (afmt__drain_settle). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/aggregate.h"
#include "api/file.h"
#include "common/util.h"

struct afmt_drain {
    afmt_layer_plan plan;
    afmt_alloc *alloc;     /* the commit's blocks (read-only once sealed) */
    afmt__staging staging; /* the commit's staged chunks, for reads while it drains */
    afmt_storage *st;      /* POSIX, this rank's own descriptor of the file */
    pthread_mutex_t mu;    /* the allocator: the helper's pieces against this rank's reads */
    pthread_cond_t cv;     /* settled became 1 */
    int settled;           /* the layer is prepared (or failed): the allocator is sealed */
    int background;        /* the helper prepares the layer (MPI_THREAD_MULTIPLE) */
    afmt_file *view;       /* background: the handle as the helper sees it (view_new) */
    pthread_t thread;
    int threaded; /* 1: the helper runs (else the writes ran at the start) */
    int rank;
    uint64_t layer_id;
    int rc; /* the helper's outcome, its message in msg */
    char msg[AFMT_ERRMSG_MAX];
    double write_s, sync_s;     /* the helper's time writing and syncing */
    afmt_durability durability; /* the handle's: which syncs the helper makes */
};

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int drain_fail(afmt_drain *d, int rc, const char *what, const char *why) {
    snprintf(d->msg, sizeof d->msg,
             "the commit of layer %llu failed in the background on rank %d: %s: %.800s",
             (unsigned long long)d->layer_id, d->rank, what, why);
    return rc;
}

/* This rank's part of the prepared layer, written and synced. No MPI, no handle. */
static int drain_write(afmt_drain *d) {
    afmt_storage *st = d->st;
    const afmt_layer_plan *p = &d->plan;
    double t0 = mono_s();
    int rc = AFMT_OK, wrote = 0;
    uint64_t pos = 0;
    while (rc == AFMT_OK && d->alloc) {
        const void *piece;
        uint64_t n, at = pos;
        pthread_mutex_lock(&d->mu);
        rc = afmt__alloc_next_piece(d->alloc, &pos, AFMT_PIECE, &piece, &n);
        if (rc != AFMT_OK) drain_fail(d, rc, "reading the blocks", afmt__alloc_errmsg(d->alloc));
        pthread_mutex_unlock(&d->mu);
        if (rc != AFMT_OK || n == 0) break;
        if ((rc = st->ops->write_at(st, p->base + at, piece, n)) != AFMT_OK)
            drain_fail(d, rc, "writing data blocks", st->errmsg);
        wrote = 1;
    }
    if (rc == AFMT_OK && p->seg.len) {
        if ((rc = st->ops->write_at(st, p->seg_at, p->seg.data, p->seg.len)) != AFMT_OK)
            drain_fail(d, rc, "writing the node's index segment", st->errmsg);
        wrote = 1;
    }
    if (rc == AFMT_OK && p->tail.len) {
        if ((rc = st->ops->write_at(st, p->foff, p->tail.data, p->tail.len)) != AFMT_OK)
            drain_fail(d, rc, "writing the footer", st->errmsg);
        wrote = 1;
    }
    double t1 = mono_s();
    /* Each rank syncs what it wrote (on a parallel file system, each client its own). */
    if (rc == AFMT_OK && wrote && d->durability != AFMT_DURABILITY_NONE &&
        (rc = st->ops->sync(st)) != AFMT_OK)
        drain_fail(d, rc, "syncing", st->errmsg);
    d->write_s = t1 - t0;
    d->sync_s = mono_s() - t1;
    return rc;
}

/* The background mode's end of the helper (rc: this rank's writes and sync): once every
 * rank's bytes are durable (agreed over the view, so every helper takes this path), rank 0
 * writes the slot through its own descriptor and every rank syncs (publish.h), as
 * afmt_commit does; the wait then only adopts the layer. */
static int drain_publish(afmt_drain *d, int rc) {
    afmt_file *v = d->view;
    afmt_layer_plan *p = &d->plan;
    if (rc != AFMT_OK) memcpy(v->errmsg, d->msg, sizeof v->errmsg); /* what the others learn */
    rc = afmt__file_agree(v, rc);
    if (rc == AFMT_OK)
        rc = afmt__write_slot(v, d->st, &p->next, AFMT_OK, "afmt_commit_start", d->durability,
                              &p->late_rc);
    if (rc != AFMT_OK) {
        memcpy(d->msg, v->errmsg, sizeof d->msg);
        return rc;
    }
    p->published = 1;
    if (p->late_rc != AFMT_OK) memcpy(p->late_msg, v->errmsg, sizeof p->late_msg);
    return AFMT_OK;
}

/* The helper. In the background mode it first prepares the layer with the other ranks'
 * helpers, over the view's communicators (the only MPI calls off the caller's thread). */
static void *drain_main(void *arg) {
    afmt_drain *d = arg;
    int rc = AFMT_OK;
    if (d->background) {
        afmt__pool_wait_only(1); /* the pool's workers compress; this thread is extra */
        rc = afmt__commit_layer(d->view, &d->plan, d->alloc);
        afmt__pool_wait_only(0); /* (this may be the caller's thread: drain_launch) */
        if (rc != AFMT_OK) drain_fail(d, rc, "preparing the layer", d->view->errmsg);
        pthread_mutex_lock(&d->mu);
        d->settled = 1;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
    }
    if (rc != AFMT_OK) { /* agreed: no helper writes anything */
        d->rc = rc;
        return NULL;
    }
    rc = drain_write(d);
    if (d->background) rc = drain_publish(d, rc);
    d->rc = rc;
    return NULL;
}

/* Starts the helper with every signal blocked, so that the application's signals go to
 * its own threads; where no thread can be made, the writes run here (the same result). */
static void drain_launch(afmt_drain *d) {
    sigset_t all, old;
    sigfillset(&all);
    int masked = pthread_sigmask(SIG_SETMASK, &all, &old) == 0;
    d->threaded = pthread_create(&d->thread, NULL, drain_main, d) == 0;
    if (masked) pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!d->threaded) drain_main(d);
}

static void drain_free(afmt_drain *d) {
    if (!d) return;
    if (d->threaded) pthread_join(d->thread, NULL);
    d->threaded = 0;
    afmt__layer_plan_free(&d->plan);
    afmt__staging_free(&d->staging);
    afmt__alloc_free(d->alloc);
    if (d->st) (void)d->st->ops->close(d->st);
    free(d->view);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* This rank's drain: memory and its own POSIX descriptor of the file (agreed by the
 * commit's entry). */
static int drain_new(afmt_file *f, afmt_drain **out) {
    char msg[AFMT_ERRMSG_MAX];
    afmt_drain *d = calloc(1, sizeof *d);
    *out = NULL;
    if (!d)
        return afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_commit_start(%s): out of memory", f->path);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    afmt__staging_init(&d->staging);
    afmt__buf_init(&d->plan.seg);
    afmt__buf_init(&d->plan.tail);
    afmt__buf_init(&d->plan.footer);
    d->rank = f->rank;
    int rc = afmt__storage_open(AFMT_STORAGE_POSIX, MPI_COMM_SELF, f->real_path, AFMT_ST_WRITE,
                                MPI_INFO_NULL, &d->st, msg);
    if (rc != AFMT_OK) {
        d->st = NULL;
        drain_free(d);
        return afmt__fail(f->errmsg, rc,
                          "afmt_commit_start(%s): opening the file for the background writes: %s",
                          f->path, msg);
    }
    *out = d;
    return AFMT_OK;
}

/* Whether this rank can run the commit's collective part on a helper thread: MPI gives
 * MPI_THREAD_MULTIPLE and the hint afmt_async_commit is not "foreground". */
static int background_wanted(const afmt_file *f) {
    int level = MPI_THREAD_SINGLE;
    if (f->async_foreground || MPI_Query_thread(&level) != MPI_SUCCESS) return 0;
    return level == MPI_THREAD_MULTIPLE;
}

/* COLLECTIVE (agreed). The helper's view of f: a copy of the handle with the handle's own
 * duplicates of its communicators (made once, freed with the handle), so that its
 * collectives never mix with the caller's later ones, and its own message and stats. */
static int view_new(afmt_file *f, afmt_drain *d) {
    int rc = afmt__node_setup(f);
    if ((rc = afmt__file_agree(f, rc)) != AFMT_OK) return rc;
    if (!f->bg_ready) {
        int mrc = MPI_Comm_dup(f->comm, &f->bg_comm);
        if (mrc == MPI_SUCCESS) mrc = MPI_Comm_dup(f->node, &f->bg_node);
        if (mrc == MPI_SUCCESS && f->leaders != MPI_COMM_NULL)
            mrc = MPI_Comm_dup(f->leaders, &f->bg_leaders);
        f->bg_ready = 1; /* what was made is freed with the handle */
        if (mrc != MPI_SUCCESS)
            rc = afmt__fail(f->errmsg, AFMT_EMPI,
                            "afmt_commit_start(%s): MPI_Comm_dup for the background commit failed",
                            f->path);
    }
    if (rc == AFMT_OK && !(d->view = malloc(sizeof *d->view)))
        rc = afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_commit_start(%s): out of memory", f->path);
    if ((rc = afmt__file_agree(f, rc)) != AFMT_OK) return rc;
    *d->view = *f;
    d->view->comm = f->bg_comm;
    d->view->node = f->bg_node;
    d->view->leaders = f->bg_leaders;
    d->view->drain = NULL;
    return AFMT_OK;
}

int afmt_commit_start(afmt_file *f) {
    int rc = afmt__check(f, "afmt_commit_start");
    if (rc != AFMT_OK) return rc;
    if ((rc = afmt__check_writable(f, "afmt_commit_start")) != AFMT_OK) return rc;
    /* The memory backend is this process's memory, and node data aggregation moves the
     * blocks over MPI: both commit here (the same on every rank). */
    if (f->opts.storage == AFMT_STORAGE_MEMORY || f->data_per_node) return afmt__commit(f);
    afmt_drain *d = NULL;
    int orc = drain_new(f, &d);
    afmt_layer_plan plan;
    memset(&plan, 0, sizeof plan);
    afmt__buf_init(&plan.seg);
    afmt__buf_init(&plan.tail);
    afmt__buf_init(&plan.footer);
    plan.foreground = !background_wanted(f);
    rc = afmt__commit_collect(f, &plan, orc);
    if (rc == AFMT_OK && plan.collected)
        rc = plan.foreground ? afmt__commit_layer(f, &plan, f->alloc) : view_new(f, d);
    if (rc != AFMT_OK || !plan.collected) { /* the handle keeps what it staged */
        afmt__layer_plan_free(&plan);
        drain_free(d);
        return rc;
    }
    /* The commit's chunks, blocks and metadata go with it; the next writes start afresh. */
    afmt__commit_clear_pending(f);
    d->background = !plan.foreground;
    d->durability = f->opts.durability;
    d->settled = !d->background;
    d->plan = plan;
    d->layer_id = plan.super.layer_id + 1;
    d->alloc = f->alloc;
    f->alloc = f->alloc_spare;
    f->alloc_spare = NULL;
    d->staging = f->staging;
    afmt__staging_init(&f->staging);
    f->drain = d;
    drain_launch(d);
    return AFMT_OK;
}

int afmt__drain_mode(const afmt_file *f) {
    return f->drain ? 1 + f->drain->background : 0;
}

void afmt__drain_settle(afmt_file *f) {
    afmt_drain *d = f->drain;
    if (!d) return;
    pthread_mutex_lock(&d->mu);
    while (!d->settled) pthread_cond_wait(&d->cv, &d->mu);
    pthread_mutex_unlock(&d->mu);
}

/* The commit failed before its slot: the file is its previous commit, and so must the
 * handle be. Its changes are gone; the writes staged since may name arrays it defined,
 * so they go too (as afmt_discard). A handle that cannot reload becomes stale. */
static int drain_reset(afmt_file *f, int rc) {
    char why[AFMT_ERRMSG_MAX];
    memcpy(why, f->errmsg, sizeof why);
    afmt__staging_clear(&f->staging);
    if (f->alloc) afmt__alloc_reset(f->alloc);
    int lrc = afmt__reload(f);
    if (lrc != AFMT_OK) return afmt__file_stale(f, rc, "%s; reloading the file failed too", why);
    return afmt__fail(f->errmsg, rc,
                      "%s; the file is as its previous commit left it, and this handle dropped "
                      "the failed commit's changes and the writes staged since it started (as "
                      "afmt_discard): write them again",
                      why);
}

int afmt__drain_finish(afmt_file *f, const char *fn) {
    afmt_drain *d = f->drain;
    if (!d) return AFMT_OK;
    f->drain = NULL;
    if (d->threaded) pthread_join(d->thread, NULL);
    d->threaded = 0;
    int rc = d->rc;
    if (rc != AFMT_OK) afmt__fail(f->errmsg, rc, "%s(%s): %s", fn, f->path, d->msg);
    rc = afmt__file_agree(f, rc);
    int durable = 0;
    if (rc == AFMT_OK) {
        if (d->view) f->stats = d->view->stats; /* the helper prepared the layer */
        f->stats.write = d->write_s;
        f->stats.sync = d->sync_s;
        rc = afmt__commit_finish(f, &d->plan, &d->staging, d->alloc, fn, &durable);
    }
    if (!durable && rc != AFMT_OK) rc = drain_reset(f, rc);
    /* The drained allocator, reset, serves the commit after next. */
    if (durable && !f->alloc_spare) {
        f->alloc_spare = d->alloc;
        d->alloc = NULL;
    }
    drain_free(d);
    return rc;
}

void afmt__drain_drop(afmt_file *f) {
    drain_free(f->drain);
    f->drain = NULL;
}

const afmt_staged *afmt__drain_find(const afmt_file *f, uint64_t array_id, uint64_t chunk_index) {
    return f->drain ? afmt__staging_find(&f->drain->staging, array_id, chunk_index) : NULL;
}

int afmt__drain_alloc_read(afmt_file *f, uint64_t block, uint64_t offset, void *dst, uint64_t n,
                           char *why) {
    afmt_drain *d = f->drain;
    pthread_mutex_lock(&d->mu);
    int rc = afmt__alloc_read(d->alloc, block, offset, dst, n);
    if (rc != AFMT_OK) snprintf(why, AFMT_ERRMSG_MAX, "%s", afmt__alloc_errmsg(d->alloc));
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int afmt_commit_wait(afmt_file *f) {
    int rc = afmt__check(f, "afmt_commit_wait");
    if (rc != AFMT_OK) return rc;
    if ((rc = afmt__check_writable(f, "afmt_commit_wait")) != AFMT_OK) return rc;
    /* The entry finishes the commit in flight (file.c); retention follows it. */
    if ((rc = afmt__enter(f, AFMT_CALL_COMMIT_WAIT, AFMT_OK, NULL, 0)) != AFMT_OK) return rc;
    return afmt__retain(f, "afmt_commit_wait");
}
