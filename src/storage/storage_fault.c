/* storage_fault.c - TEST ONLY: a storage wrapper that injects failures (storage.h,
 * afmt__storage_set_fault). afmt__storage_open wraps a storage while a spec is set: the
 * wrapper takes the storage's ops and impl and calls them back with the real ones swapped
 * in, so the real backend writes its messages into the same st->errmsg. */
#include "storage/storage.h"

#ifdef AFMT_TESTING /* the whole file: the release library has no fault injection */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const afmt_storage_ops *ops; /* the real backend's */
    void *impl;
} fault_impl;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int active;       /* a spec is set */
static int rank_matches; /* this process is spec.rank (or spec.rank is -1) */
static afmt_storage_fault spec;
static uint64_t calls[AFMT_FAULT_NOPS];
static uint64_t injected;

static const char *const op_names[AFMT_FAULT_NOPS] = {
    "read_at", "write_at", "write_at_all", "sync", "get_size", "truncate", "fsync_dir"};

int afmt__storage_set_fault(const afmt_storage_fault *s) {
    if (s && ((unsigned)s->op >= AFMT_FAULT_NOPS ||
              (s->mode != AFMT_FAULT_FAIL && s->mode != AFMT_FAULT_SHORT)))
        return afmt__fail(NULL, AFMT_EINVAL, "afmt__storage_set_fault: bad op %d or mode %d",
                          (int)s->op, (int)s->mode);
    int me = 0;
    if (s && s->rank >= 0) {
        int init = 0, fin = 0;
        MPI_Initialized(&init);
        if (init) MPI_Finalized(&fin);
        if (init && !fin) MPI_Comm_rank(MPI_COMM_WORLD, &me);
    }
    pthread_mutex_lock(&mu);
    active = s != NULL;
    if (s) {
        spec = *s;
        if (spec.err == 0) spec.err = EIO;
        rank_matches = spec.rank < 0 || spec.rank == me;
    }
    memset(calls, 0, sizeof calls);
    pthread_mutex_unlock(&mu);
    return AFMT_OK;
}

uint64_t afmt__storage_fault_calls(afmt_fault_op op) {
    if ((unsigned)op >= AFMT_FAULT_NOPS) return 0;
    pthread_mutex_lock(&mu);
    uint64_t n = calls[op];
    pthread_mutex_unlock(&mu);
    return n;
}

uint64_t afmt__storage_fault_injected(void) {
    pthread_mutex_lock(&mu);
    uint64_t n = injected;
    pthread_mutex_unlock(&mu);
    return n;
}

int afmt__storage_fault_active(void) {
    pthread_mutex_lock(&mu);
    int a = active;
    pthread_mutex_unlock(&mu);
    return a;
}

void *afmt__storage_fault_alloc(void) {
    return calloc(1, sizeof(fault_impl));
}

void afmt__storage_fault_free(void *w) {
    free(w);
}

/* Counts a call of op; 1 if it is the one to fail (then *err and *mode say how). */
static int hit(afmt_fault_op op, int *err, afmt_fault_mode *mode) {
    int h = 0;
    pthread_mutex_lock(&mu);
    if (active) {
        calls[op]++;
        if (spec.op == op && spec.nth != 0 && calls[op] == spec.nth && rank_matches) {
            h = 1;
            injected++;
            *err = spec.err;
            *mode = spec.mode;
        }
    }
    pthread_mutex_unlock(&mu);
    return h;
}

/* The injected failure, worded like the real backends: "op(path, off=.., len=..): <errno
 * text> (injected fault...)"; sync and get_size name only the path, truncate the size. */
static int inj_fail(afmt_storage *st, afmt_fault_op op, uint64_t off, uint64_t len, int e,
                    uint64_t done) {
    char eb[256], range[96] = "", note[96] = "";
    if (op == AFMT_FAULT_TRUNCATE)
        snprintf(range, sizeof range, ", size=%llu", (unsigned long long)off);
    else if (op != AFMT_FAULT_SYNC && op != AFMT_FAULT_SIZE)
        snprintf(range, sizeof range, ", off=%llu, len=%llu", (unsigned long long)off,
                 (unsigned long long)len);
    if (done > 0) snprintf(note, sizeof note, " after %llu bytes", (unsigned long long)done);
    return afmt__fail(st->errmsg, AFMT_EIO, "%s(%s%s): %s (injected fault%s)", op_names[op],
                      st->path, range, afmt__errno_text(e, eb, sizeof eb), note);
}

static const afmt_storage_ops fault_ops;

/* The real backend in place for one call, then the wrapper again. */
static fault_impl *enter(afmt_storage *st) {
    fault_impl *w = st->impl;
    st->ops = w->ops;
    st->impl = w->impl;
    return w;
}

static void leave(afmt_storage *st, fault_impl *w) {
    w->impl = st->impl;
    st->ops = &fault_ops;
    st->impl = w;
}

static int f_read_at(afmt_storage *st, uint64_t off, void *buf, uint64_t len) {
    int e = 0;
    afmt_fault_mode mode = AFMT_FAULT_FAIL;
    int h = hit(AFMT_FAULT_READ, &e, &mode);
    fault_impl *w = enter(st);
    int rc = AFMT_OK;
    uint64_t half = len / 2;
    if (!h) {
        rc = st->ops->read_at(st, off, buf, len);
    } else if (e == EINTR) {
        /* Interrupted after half (SHORT) or nothing: the rest is retried at once. */
        uint64_t first = mode == AFMT_FAULT_SHORT ? half : 0;
        if (first) rc = st->ops->read_at(st, off, buf, first);
        if (rc == AFMT_OK) rc = st->ops->read_at(st, off + first, (char *)buf + first, len - first);
    } else if (mode == AFMT_FAULT_SHORT) {
        if (half) rc = st->ops->read_at(st, off, buf, half);
        if (rc == AFMT_OK) rc = inj_fail(st, AFMT_FAULT_READ, off, len, e, half);
    } else {
        rc = inj_fail(st, AFMT_FAULT_READ, off, len, e, 0);
    }
    leave(st, w);
    return rc;
}

static int f_write_at(afmt_storage *st, uint64_t off, const void *buf, uint64_t len) {
    int e = 0;
    afmt_fault_mode mode = AFMT_FAULT_FAIL;
    int h = hit(AFMT_FAULT_WRITE, &e, &mode);
    fault_impl *w = enter(st);
    int rc = AFMT_OK;
    uint64_t half = len / 2;
    if (!h) {
        rc = st->ops->write_at(st, off, buf, len);
    } else if (e == EINTR) {
        uint64_t first = mode == AFMT_FAULT_SHORT ? half : 0;
        if (first) rc = st->ops->write_at(st, off, buf, first);
        if (rc == AFMT_OK)
            rc = st->ops->write_at(st, off + first, (const char *)buf + first, len - first);
    } else if (mode == AFMT_FAULT_SHORT) {
        if (half) rc = st->ops->write_at(st, off, buf, half);
        if (rc == AFMT_OK) rc = inj_fail(st, AFMT_FAULT_WRITE, off, len, e, half);
    } else {
        rc = inj_fail(st, AFMT_FAULT_WRITE, off, len, e, 0);
    }
    leave(st, w);
    return rc;
}

/* Collective: exactly one call of the real write_at_all whatever happens, so the ranks
 * never disagree on the number of collectives (an EINTR is retried before it). */
static int f_write_at_all(afmt_storage *st, uint64_t off, const void *buf, uint64_t len) {
    int e = 0;
    afmt_fault_mode mode = AFMT_FAULT_FAIL;
    int h = hit(AFMT_FAULT_WRITE_ALL, &e, &mode);
    fault_impl *w = enter(st);
    int rc;
    if (!h || e == EINTR) {
        rc = st->ops->write_at_all(st, off, buf, len);
    } else {
        uint64_t part = mode == AFMT_FAULT_SHORT ? len / 2 : 0;
        rc = st->ops->write_at_all(st, off, buf, part);
        if (rc == AFMT_OK) rc = inj_fail(st, AFMT_FAULT_WRITE_ALL, off, len, e, part);
    }
    leave(st, w);
    return rc;
}

/* Collective for MPI-IO: the real sync always runs, the failure is reported after it. */
static int f_sync(afmt_storage *st) {
    int e = 0;
    afmt_fault_mode mode = AFMT_FAULT_FAIL;
    int h = hit(AFMT_FAULT_SYNC, &e, &mode);
    fault_impl *w = enter(st);
    int rc = st->ops->sync(st);
    if (rc == AFMT_OK && h && e != EINTR) rc = inj_fail(st, AFMT_FAULT_SYNC, 0, 0, e, 0);
    leave(st, w);
    return rc;
}

static int f_size(afmt_storage *st, uint64_t *out) {
    int e = 0;
    afmt_fault_mode mode = AFMT_FAULT_FAIL;
    int h = hit(AFMT_FAULT_SIZE, &e, &mode);
    fault_impl *w = enter(st);
    int rc = h && e != EINTR ? inj_fail(st, AFMT_FAULT_SIZE, 0, 0, e, 0) : st->ops->size(st, out);
    leave(st, w);
    return rc;
}

/* Collective for MPI-IO: a failing rank takes part with its current size (no change). */
static int f_truncate(afmt_storage *st, uint64_t size) {
    int e = 0;
    afmt_fault_mode mode = AFMT_FAULT_FAIL;
    int h = hit(AFMT_FAULT_TRUNCATE, &e, &mode);
    fault_impl *w = enter(st);
    int rc;
    if (!h || e == EINTR) {
        rc = st->ops->truncate(st, size);
    } else {
        uint64_t cur = 0;
        rc = st->ops->size(st, &cur);
        int trc = st->ops->truncate(st, cur);
        if (rc == AFMT_OK) rc = trc;
        if (rc == AFMT_OK) rc = inj_fail(st, AFMT_FAULT_TRUNCATE, size, 0, e, 0);
    }
    leave(st, w);
    return rc;
}

static int f_close(afmt_storage *st) {
    fault_impl *w = st->impl;
    st->ops = w->ops;
    st->impl = w->impl;
    free(w);
    return st->ops->close(st);
}

static const afmt_storage_ops fault_ops = {f_read_at, f_write_at, f_write_at_all, f_sync,
                                           f_size,    f_truncate, f_close};

void afmt__storage_fault_wrap(afmt_storage *st, void *wp) {
    fault_impl *w = wp;
    w->ops = st->ops;
    w->impl = st->impl;
    st->ops = &fault_ops;
    st->impl = w;
}

int afmt__storage_fault_dirsync(const char *to, char *errmsg) {
    int e = 0;
    afmt_fault_mode mode = AFMT_FAULT_FAIL;
    if (!hit(AFMT_FAULT_DIRSYNC, &e, &mode) || e == EINTR) return AFMT_OK;
    char eb[256];
    return afmt__fail(errmsg, AFMT_EIO, "%s(directory of %s): %s (injected fault)",
                      op_names[AFMT_FAULT_DIRSYNC], to, afmt__errno_text(e, eb, sizeof eb));
}

#endif /* AFMT_TESTING */
