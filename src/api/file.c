/* file.c - handles: create, open, open_layer, rollback, close, the registry of live
 * handles, argument checks shared by the API functions, afmt_errmsg, and the handle's
 * side of the lower modules: the agreement and data movement (mpiutil.h) and the writer
 * lock (lock.h) on f's communicator and message buffer. Loading the chain: load.c. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/fetch.h"
#include "api/file.h"
#include "api/load.h"
#include "common/util.h"

/* Live handles, so that a call on a closed (freed) handle is refused instead of crashing:
 * the one piece of process-wide state besides the codec table. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static afmt_hmap live_set;

static int live_add(const afmt_file *f) {
    pthread_mutex_lock(&live_mu);
    int rc = afmt__hmap_put(&live_set, (uint64_t)(uintptr_t)f, 0, 1);
    pthread_mutex_unlock(&live_mu);
    return rc;
}

static void live_del(const afmt_file *f) {
    pthread_mutex_lock(&live_mu);
    afmt__hmap_del(&live_set, (uint64_t)(uintptr_t)f, 0);
    if (live_set.count == 0) afmt__hmap_free(&live_set);
    pthread_mutex_unlock(&live_mu);
}

static int is_live(const afmt_file *f) {
    pthread_mutex_lock(&live_mu);
    int ok = f && afmt__hmap_get(&live_set, (uint64_t)(uintptr_t)f, 0) != NULL;
    pthread_mutex_unlock(&live_mu);
    return ok;
}

int afmt__check_live(const afmt_file *f, const char *fn) {
    if (!f) return afmt__fail(NULL, AFMT_EINVAL, "%s: file handle is NULL", fn);
    if (!is_live(f))
        return afmt__fail(NULL, AFMT_EINVAL, "%s: file handle is closed or invalid", fn);
    return AFMT_OK;
}

int afmt__check(const afmt_file *f, const char *fn) {
    int rc = afmt__check_live(f, fn);
    if (rc == AFMT_OK && f->stale)
        rc = afmt__fail(NULL, AFMT_ESTATE,
                        "%s(%s): the handle lost track of the file after a failed commit; "
                        "close it (afmt_close) and reopen the file",
                        fn, f->path);
    return rc;
}

int afmt__check_writable(afmt_file *f, const char *fn) {
    if (f->mode != AFMT_RDWR)
        return afmt__fail(f->errmsg, AFMT_EREADONLY, "%s: %s is open read-only", fn, f->path);
    return AFMT_OK;
}

int afmt__lookup(afmt_file *f, const char *fn, const char *name, afmt_array **out) {
    if (!name) return afmt__fail(f->errmsg, AFMT_EINVAL, "%s: array name is NULL", fn);
    *out = afmt__index_find(&f->idx, name);
    if (!*out)
        return afmt__fail(f->errmsg, AFMT_ENOTFOUND, "%s(\"%s\"): no such array in %s", fn, name,
                          f->path);
    return AFMT_OK;
}

int afmt__check_region(afmt_file *f, const char *fn, const afmt_array *arr, const uint64_t *start,
                       const uint64_t *count) {
    const afmt_array_rec *d = &arr->d;
    if (d->ndim == 0) return AFMT_OK;
    if (!start || !count)
        return afmt__fail(f->errmsg, AFMT_EINVAL, "%s(\"%s\"): %s is NULL for a %d-d array", fn,
                          d->name, start ? "count" : "start", d->ndim);
    for (int i = 0; i < d->ndim; i++) {
        if (count[i] == 0)
            return afmt__fail(f->errmsg, AFMT_EINVAL, "%s(\"%s\"): count[%d]=0 is empty", fn,
                              d->name, i);
        if (start[i] >= d->shape[i] || count[i] > d->shape[i] - start[i])
            return afmt__fail(f->errmsg, AFMT_EINVAL,
                              "%s(\"%s\"): start[%d]=%llu + count[%d]=%llu exceeds shape[%d]=%llu",
                              fn, d->name, i, (unsigned long long)start[i], i,
                              (unsigned long long)count[i], i, (unsigned long long)d->shape[i]);
    }
    return AFMT_OK;
}

uint8_t *afmt__scratch(afmt_file *f, uint64_t n) {
    if (afmt__grow_bytes(&f->scratch, &f->scratch_cap, n) != AFMT_OK) {
        afmt__fail(f->errmsg, AFMT_ENOMEM, "out of memory for a chunk of %llu bytes",
                   (unsigned long long)n);
        return NULL;
    }
    return f->scratch;
}

afmt_pool *afmt__file_pool(afmt_file *f) {
    /* A pool that cannot be made (out of memory) is no error: the caller's thread does it. */
    if (!f->pool && f->threads > 1 && afmt__pool_create(&f->pool, f->threads) != AFMT_OK)
        f->pool = NULL;
    return f->pool;
}

int afmt__ensure_alloc(afmt_file *f) {
    if (f->alloc) return AFMT_OK;
    /* No spill directory: the allocator falls back to $TMPDIR, else /tmp. */
    afmt_alloc_config cfg = {f->opts.block_size, f->opts.mem_budget, f->opts.spill_dir,
                             f->opts.codec,      f->opts.level,      afmt__file_pool(f)};
    if (afmt__alloc_create(&f->alloc, &cfg) != AFMT_OK)
        return afmt__fail(f->errmsg, AFMT_ENOMEM, "out of memory for the block allocator");
    return AFMT_OK;
}

const char *afmt_errmsg(const afmt_file *f) {
    /* A closed handle's last message (e.g. why afmt_close failed) is in the thread buffer;
     * asking must not overwrite it. */
    if (is_live(f)) return f->errmsg;
    return afmt__thread_errbuf();
}

/* ---- the agreement and data movement on the handle's communicator (mpiutil.h) ---- */

static afmt__group group_of(afmt_file *f) {
    afmt__group g = {f->comm, f->rank, f->size, f->errmsg};
    return g;
}

int afmt__file_agree(afmt_file *f, int rc) {
    return afmt__agree(f->comm, f->rank, f->size, rc, f->errmsg);
}

int afmt__file_agree_flags(afmt_file *f, int rc, int *flags, int nflags) {
    afmt__group g = group_of(f);
    char what[AFMT_ERRMSG_MAX];
    int keys[2];
    snprintf(what, sizeof what, "afmt(%s)", f->path);
    return afmt__agree_keyed(&g, 1, rc, flags, nflags, keys, what);
}

static const char *call_name(int call) {
    static const char *const n[] = {"?",
                                    "afmt_define",
                                    "afmt_delete",
                                    "afmt_set_attr",
                                    "afmt_commit",
                                    "afmt_discard",
                                    "afmt_rollback",
                                    "afmt_read_all",
                                    "afmt_commit_wait",
                                    "afmt_commit_start"};
    return call > 0 && call < (int)(sizeof n / sizeof n[0]) ? n[call] : "?";
}

int afmt__enter(afmt_file *f, int call, int rc, int *flags, int nflags) {
    afmt__group g = group_of(f);
    char what[AFMT_ERRMSG_MAX];
    int keys[2];
    snprintf(what, sizeof what, "%s(%s)", call_name(call), f->path);
    int arc = afmt__agree_keyed(&g, call, rc, flags, nflags, keys, what);
    if (arc == AFMT_EINVAL && keys[0] != keys[1])
        /* Some ranks are in another collective call of this handle (a call made on some
         * ranks only): every rank of this Allreduce says so, none goes on. */
        return afmt__fail(f->errmsg, AFMT_EINVAL,
                          "%s: the ranks are not in the same call (%s on some, %s on others): "
                          "collective calls must be made on every rank, in the same order",
                          what, call_name(keys[0]), call_name(keys[1]));
    /* Every collective call first finishes a commit in flight (afmt_commit_start): the
     * calls after it see the file as that commit leaves it. */
    if (arc == AFMT_OK && f->drain) arc = afmt__drain_finish(f, call_name(call));
    return arc;
}

int afmt__share_buf(afmt_file *f, afmt_buf *b, int rc, const char *what) {
    afmt__group g = group_of(f);
    return afmt__share_buf_comm(&g, b, rc, what);
}

int afmt__gather_bytes(afmt_file *f, const void *buf, uint64_t len, uint8_t **out, uint64_t *lens,
                       const char *what) {
    afmt__group g = group_of(f);
    return afmt__gather_bytes_comm(&g, buf, len, out, lens, what);
}

/* ---- handle life cycle ---------------------------------------------------------- */

/* COLLECTIVE (every rank is here: file_alloc agreed). f->real_path: f->path resolved once
 * on rank 0 (storage.h), so that every later path operation names the same file on every
 * rank, whatever symbolic links, chdir or the ranks' working directories do. The same code
 * on every rank. */
static int resolve_path(afmt_file *f, int create, const char *fn) {
    char msg[AFMT_ERRMSG_MAX];
    int rc = afmt__storage_resolve(f->opts.storage, f->comm, f->path, create, &f->real_path, msg);
    if (rc != AFMT_OK) afmt__fail(f->errmsg, rc, "%s(%s): %s", fn, f->path, msg);
    return rc;
}

static void file_free(afmt_file *f) {
    if (!f) return;
    afmt__drain_drop(f); /* a commit never waited for: the file keeps the previous one */
    afmt__staging_free(&f->staging);
    afmt__alloc_free(f->alloc); /* waits for its blocks in the pool */
    afmt__alloc_free(f->alloc_spare);
    afmt__pool_free(f->pool);
    afmt__fetch_free(f);
    for (uint64_t i = 0; i < f->n_pend_attrs; i++) free(f->pend_attrs[i].value);
    free(f->pend_attrs);
    free(f->pend_arrays);
    afmt__consist_free(&f->consist);
    afmt__index_free(&f->idx);
    afmt__cache_free(f->cache);
    afmt__opts_clear(&f->opts);
    /* node and read_node may be shm itself: freed once. */
    if (f->bg_comm != MPI_COMM_NULL) MPI_Comm_free(&f->bg_comm);
    if (f->bg_node != MPI_COMM_NULL) MPI_Comm_free(&f->bg_node);
    if (f->bg_leaders != MPI_COMM_NULL) MPI_Comm_free(&f->bg_leaders);
    if (f->node_ready && f->node != f->shm) MPI_Comm_free(&f->node);
    if (f->node_ready && f->leaders != MPI_COMM_NULL) MPI_Comm_free(&f->leaders);
    if (f->read_node_ready && f->read_node != f->shm) MPI_Comm_free(&f->read_node);
    if (f->shm != MPI_COMM_NULL) MPI_Comm_free(&f->shm);
    if (f->comm != MPI_COMM_NULL) MPI_Comm_free(&f->comm);
    free(f->scratch);
    free(f->stored_buf);
    free(f->decode_buf);
    free(f->lock.path); /* NULL: afmt__lock_drop ran on every path that took it */
    free(f->real_path);
    free(f->path);
    free(f);
}

/* The durability level of options o (NULL: the default): the hint afmt_durability when it
 * names a level, else afmt_opts_set_durability's. */
static afmt_durability durability_of(const afmt_opts *o) {
    if (!o) return AFMT_DURABILITY_FULL;
    char val[16];
    int flag = 0;
    if (o->info != MPI_INFO_NULL)
        MPI_Info_get(o->info, "afmt_durability", (int)sizeof val - 1, val, &flag);
    if (flag && !strcmp(val, "full")) return AFMT_DURABILITY_FULL;
    if (flag && !strcmp(val, "data")) return AFMT_DURABILITY_DATA;
    if (flag && !strcmp(val, "none")) return AFMT_DURABILITY_NONE;
    return o->durability;
}

/* The retention setting of options o (NULL: off): the hints afmt_keep and
 * afmt_dead_fraction where they parse, else afmt_opts_set_retention's. */
static void retention_of(const afmt_opts *o, uint64_t *keep, double *frac) {
    *keep = o ? o->keep : 0;
    *frac = o ? o->dead_fraction : 0.0;
    if (!o || o->info == MPI_INFO_NULL) return;
    char val[64], *end = NULL;
    int flag = 0;
    MPI_Info_get(o->info, "afmt_keep", (int)sizeof val - 1, val, &flag);
    if (flag && val[0] >= '0' && val[0] <= '9') {
        errno = 0;
        unsigned long long k = strtoull(val, &end, 10);
        if (errno == 0 && *end == '\0') *keep = (uint64_t)k;
    }
    flag = 0;
    MPI_Info_get(o->info, "afmt_dead_fraction", (int)sizeof val - 1, val, &flag);
    if (flag && val[0] != '\0') {
        double d = strtod(val, &end);
        if (*end == '\0' && d >= 0.0 && d < 1.0) *frac = d;
    }
    if (*frac == 0.0) *frac = 0.0; /* -0.0 is off too, and must key alike */
}

/* COLLECTIVE, on the user's communicator g. Every rank must give the same retention
 * setting: a key made of it (> 0), compared over the ranks (message in g->errmsg). */
static int retention_agree(afmt__group *g, const afmt_opts *o, int rc, const char *fn,
                           const char *path) {
    uint64_t keep;
    double frac;
    retention_of(o, &keep, &frac);
    uint8_t b[16];
    afmt__put_u64(b, keep);
    memcpy(b + 8, &frac, 8);
    int keys[2], key = 1 + (int)(afmt__checksum(b, sizeof b) & 0x3fffffff);
    int krc = afmt__agree_keyed(g, key, rc, NULL, 0, keys, fn);
    if (krc == AFMT_EINVAL && keys[0] != keys[1])
        afmt__fail(g->errmsg, krc,
                   "%s(%s): the ranks gave different retention settings "
                   "(afmt_opts_set_retention or the hints afmt_keep, afmt_dead_fraction; this "
                   "rank: keep %llu, dead fraction %g): give every rank the same",
                   fn, path, (unsigned long long)keep, frac);
    return krc;
}

static const char *durability_name(int d) {
    return d == AFMT_DURABILITY_NONE ? "none" : d == AFMT_DURABILITY_DATA ? "data" : "full";
}

/* COLLECTIVE. The handle's memory and communicator. The duplicate comes first on every
 * rank (it is collective), then the allocations, then one agreement on the user's
 * communicator (the duplicate may be what failed), so that every rank goes on, or every
 * rank returns the same code, before any other collective. */
static int file_alloc(MPI_Comm comm, const char *path, unsigned mode, const afmt_opts *opts,
                      afmt_file **out, const char *fn) {
    *out = NULL;
    if (comm == MPI_COMM_NULL)
        return afmt__fail(NULL, AFMT_EINVAL, "%s: comm is MPI_COMM_NULL", fn);
    if (!path || !*path) return afmt__fail(NULL, AFMT_EINVAL, "%s: path is NULL or empty", fn);
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) return afmt__fail(NULL, AFMT_ESTATE, "%s(%s): MPI is not initialized", fn, path);
    char msg[AFMT_ERRMSG_MAX] = "";
    int rc = AFMT_OK, urank = 0, usize = 1;
    MPI_Comm dup = MPI_COMM_NULL;
    if (MPI_Comm_rank(comm, &urank) != MPI_SUCCESS || MPI_Comm_size(comm, &usize) != MPI_SUCCESS)
        return afmt__fail(NULL, AFMT_EMPI, "%s(%s): comm is not a valid communicator", fn, path);
    if (MPI_Comm_dup(comm, &dup) != MPI_SUCCESS) {
        dup = MPI_COMM_NULL;
        rc = afmt__fail(msg, AFMT_EMPI, "%s(%s): MPI_Comm_dup failed", fn, path);
    } else {
        /* Communication failures must come back as AFMT_EMPI, not abort the job. */
        MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
    }
    afmt_file *f = calloc(1, sizeof *f);
    if (f) {
        f->comm = dup;
        f->shm = MPI_COMM_NULL; /* split once every rank has the handle (below) */
        f->bg_comm = f->bg_node = f->bg_leaders = MPI_COMM_NULL;
        f->lock.fd = -1; /* no inode lock (0 is a descriptor) */
        f->mode = mode;
        f->view_layer = UINT64_MAX;
        afmt__index_init(&f->idx);
        afmt__staging_init(&f->staging);
        f->rank = urank;
        f->size = usize;
        int arc = afmt__opts_copy(&f->opts, opts);
        f->opts.durability = durability_of(opts);
        retention_of(opts, &f->opts.keep, &f->opts.dead_fraction);
        /* A URL is read through the HTTP backend whatever the options say. */
        f->opts.storage = afmt__storage_kind_of(path, f->opts.storage);
        if (arc == AFMT_OK && !(f->path = strdup(path))) arc = AFMT_ENOMEM;
        if (arc == AFMT_OK) arc = afmt__cache_create(&f->cache, f->opts.cache_size);
        if (arc != AFMT_OK && rc == AFMT_OK)
            rc = afmt__fail(msg, arc, "%s(%s): %s while setting up the handle", fn, path,
                            afmt_strerror(arc));
        if (arc == AFMT_OK && f->opts.info != MPI_INFO_NULL) {
            char val[64];
            int flag = 0;
            MPI_Info_get(f->opts.info, "afmt_collective_write", (int)sizeof val - 1, val, &flag);
            f->collective_write = flag && (!strcmp(val, "true") || !strcmp(val, "1"));
            flag = 0;
            MPI_Info_get(f->opts.info, "afmt_index_aggregation", (int)sizeof val - 1, val, &flag);
            f->segment_per_rank = flag && !strcmp(val, "rank");
            flag = 0;
            MPI_Info_get(f->opts.info, "afmt_node_group_size", (int)sizeof val - 1, val, &flag);
            long g = flag ? strtol(val, NULL, 10) : 0;
            f->node_group = g > 0 && g <= INT_MAX ? (int)g : 0;
            flag = 0;
            MPI_Info_get(f->opts.info, "afmt_data_aggregation", (int)sizeof val - 1, val, &flag);
            f->data_per_node = flag && !strcmp(val, "node");
            flag = 0;
            MPI_Info_get(f->opts.info, "afmt_async_commit", (int)sizeof val - 1, val, &flag);
            f->async_foreground = flag && !strcmp(val, "foreground");
        }
    } else if (rc == AFMT_OK) {
        rc = afmt__fail(msg, AFMT_ENOMEM, "%s(%s): out of memory while setting up the handle", fn,
                        path);
    }
    /* The agreement also checks that every rank gave the same alignment (the key's
     * quotient by 3: 1 for none, else its log2 + 2): ranks that place their regions
     * differently would overlap; and the same durability (the remainder): a commit whose
     * ranks sync differently is only as durable as the least. */
    int key = 1, keys[2];
    for (uint64_t a = opts ? opts->alignment : 0; a; a >>= 1) key++;
    key = key * 3 + (int)durability_of(opts);
    afmt__group g = {comm, urank, usize, msg};
    int krc = afmt__agree_keyed(&g, key, rc, NULL, 0, keys, fn);
    if (krc == AFMT_EINVAL && keys[0] / 3 != keys[1] / 3)
        afmt__fail(msg, krc,
                   "%s(%s): the ranks gave different alignments (afmt_opts_set_alignment: %llu "
                   "to %llu bytes): give every rank the same",
                   fn, path, keys[0] / 3 > 1 ? 1ull << (keys[0] / 3 - 2) : 0ull,
                   keys[1] / 3 > 1 ? 1ull << (keys[1] / 3 - 2) : 0ull);
    else if (krc == AFMT_EINVAL && keys[0] != keys[1])
        afmt__fail(msg, krc,
                   "%s(%s): the ranks gave different durability levels (afmt_opts_set_durability "
                   "or the hint afmt_durability: %s and %s): give every rank the same",
                   fn, path, durability_name(keys[0] % 3), durability_name(keys[1] % 3));
    rc = krc;
    /* And the same retention (afmt_opts_set_retention): a compaction is collective. */
    if (rc == AFMT_OK) rc = retention_agree(&g, opts, rc, fn, path);
    if (rc != AFMT_OK) {
        if (f) {
            f->comm = MPI_COMM_NULL;
            file_free(f);
        }
        if (dup != MPI_COMM_NULL) MPI_Comm_free(&dup);
        return afmt__fail(NULL, rc, "%s", msg);
    }
    /* The node, once for the handle (commit, afmt_read_all and the thread count use it).
     * A failed split leaves MPI_COMM_NULL: the thread count then counts this rank alone,
     * and the commit or afmt_read_all that needs the node fails with AFMT_EMPI. */
    f->shm = MPI_COMM_NULL;
    f->shm_rank = 0;
    f->shm_size = 1;
    if (MPI_Comm_split_type(dup, MPI_COMM_TYPE_SHARED, urank, MPI_INFO_NULL, &f->shm) !=
            MPI_SUCCESS ||
        MPI_Comm_rank(f->shm, &f->shm_rank) != MPI_SUCCESS ||
        MPI_Comm_size(f->shm, &f->shm_size) != MPI_SUCCESS) {
        if (f->shm != MPI_COMM_NULL) MPI_Comm_free(&f->shm);
        f->shm = MPI_COMM_NULL;
        f->shm_rank = 0;
        f->shm_size = 1;
    }
    f->threads = f->opts.threads;
    if (f->threads == 0) {
        /* This rank's share of the cores it may run on: its CPU set divided by the ranks
         * on its node (ranks pinned to disjoint sets each count their own set, which
         * undercounts; threads never change the file, only the speed). */
        f->threads = afmt__pool_cpus() / f->shm_size;
        if (f->threads < 1) f->threads = 1;
    }
    *out = f;
    return AFMT_OK;
}

/* Fails f's setup on every rank alike (rc is agreed): the message goes to the thread
 * buffer. */
static int setup_fail(afmt_file *f, int rc) {
    char msg[AFMT_ERRMSG_MAX];
    memcpy(msg, f->errmsg, sizeof msg);
    live_del(f); /* if it got that far */
    if (f->st) f->st->ops->close(f->st);
    f->st = NULL;
    afmt__lock_drop(&f->lock); /* only if this setup took it: a busy lock is someone else's */
    file_free(f);
    return afmt__fail(NULL, rc, "%s", msg);
}

/* COLLECTIVE. Takes f's writer lock on rank 0 (lock.h; not for memory images, which live
 * in this process only: unit tests, fuzzers) and agrees: every rank returns the same code
 * with rank 0's message. Should only the agreement fail (MPI), rank 0 holds the lock:
 * setup_fail releases it. Needs f->real_path. */
static int lock_acquire(afmt_file *f, const char *fn) {
    if (f->opts.storage == AFMT_STORAGE_MEMORY) return AFMT_OK;
    int rc = AFMT_OK;
    if (f->rank == 0) rc = afmt__lock_take_writer(&f->lock, f->real_path, fn, f->path, f->errmsg);
    return afmt__file_agree(f, rc);
}

/* COLLECTIVE. afmt_create, once the file exists: the inode lock of a new file. */
static int lock_inode(afmt_file *f, const char *fn) {
    if (f->opts.storage == AFMT_STORAGE_MEMORY) return AFMT_OK;
    int rc = AFMT_OK;
    if (f->rank == 0) rc = afmt__lock_take_inode(&f->lock, f->real_path, fn, f->path, f->errmsg);
    return afmt__file_agree(f, rc);
}

/* COLLECTIVE. Rank 0's *exists (the others pass 0) on every rank, in one agreement. */
static int exists_agree(afmt_file *f, int *exists) {
    afmt__group g = group_of(f);
    char what[AFMT_ERRMSG_MAX];
    int keys[2];
    snprintf(what, sizeof what, "afmt_open(%s)", f->path);
    return afmt__agree_keyed(&g, 1, AFMT_OK, exists, 1, keys, what);
}

int afmt__lock_inode_copy(afmt_file *f, int fd, int *out) {
    return afmt__lock_copy_inode(&f->lock, fd, out, f->path, f->errmsg);
}

void afmt__lock_inode_adopt(afmt_file *f, int fd) {
    afmt__lock_adopt_inode(&f->lock, fd);
}

#ifdef AFMT_TESTING
static int fixed_identity; /* a function, not an exported variable: abi.prefix */
void afmt__set_fixed_identity(int on) {
    fixed_identity = on != 0;
}
int afmt__fixed_identity(void) {
    return fixed_identity;
}
#endif

static void make_uuid(uint8_t *uuid) {
#ifdef AFMT_TESTING
    if (fixed_identity) {
        for (int i = 0; i < 16; i++) uuid[i] = (uint8_t)(0xA0 + i);
        return;
    }
#endif
    FILE *r = fopen("/dev/urandom", "rb");
    size_t got = r ? fread(uuid, 1, 16, r) : 0;
    if (r) fclose(r);
    if (got != 16) {
        /* No /dev/urandom: time and pid still make collisions unlikely. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t a = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        uint64_t b = afmt__checksum(&a, sizeof a) ^ (uint64_t)getpid();
        afmt__put_u64(uuid, a);
        afmt__put_u64(uuid + 8, b);
    }
    uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40); /* RFC 4122 version 4 */
    uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
}

/* COLLECTIVE. The rest of afmt_create once f holds the writer lock: the storage, the inode
 * lock, an empty file (superblock, no layer). On failure f is freed (setup_fail). */
static int create_locked(afmt_file *f, unsigned flags, const char *fn);

int afmt_create(MPI_Comm comm, const char *path, unsigned flags, const afmt_opts *opts,
                afmt_file **out) {
    if (!out) return afmt__fail(NULL, AFMT_EINVAL, "afmt_create: f (output) is NULL");
    *out = NULL;
    if (flags & ~(unsigned)(AFMT_TRUNC | AFMT_RDWR))
        return afmt__fail(NULL, AFMT_EINVAL, "afmt_create(%s): unknown flags 0x%x",
                          path ? path : "(null)", flags);
    if (afmt__storage_kind_of(path, AFMT_STORAGE_MPIIO) == AFMT_STORAGE_HTTP)
        return afmt__fail(NULL, AFMT_EINVAL,
                          "afmt_create(%s): remote files (http://, https://, s3://) are read-only: "
                          "create the file locally or on a parallel file system, then upload it",
                          path);
    afmt_file *f;
    int rc = file_alloc(comm, path, AFMT_RDWR, opts, &f, "afmt_create");
    if (rc != AFMT_OK) return rc;
    if ((rc = resolve_path(f, 1, "afmt_create")) != AFMT_OK) return setup_fail(f, rc);
    /* The writer lock comes first: AFMT_TRUNC must not empty a file another job writes. */
    if ((rc = lock_acquire(f, "afmt_create")) != AFMT_OK) return setup_fail(f, rc);
    if ((rc = create_locked(f, flags, "afmt_create")) != AFMT_OK) return rc;
    *out = f;
    return AFMT_OK;
}

/* COLLECTIVE. The rest of afmt_create once f holds the writer lock: the storage, the inode
 * lock, an empty file (superblock, no layer). On failure f is freed (setup_fail). */
static int create_locked(afmt_file *f, unsigned flags, const char *fn) {
    unsigned sf = AFMT_ST_READ | AFMT_ST_WRITE | AFMT_ST_CREATE;
    if (!(flags & AFMT_TRUNC)) sf |= AFMT_ST_EXCL;
    int rc = afmt__storage_open(f->opts.storage, f->comm, f->real_path, sf, f->opts.info, &f->st,
                                f->errmsg);
    f->idx.st = f->st; /* the lazy index reads segments from it (lazy.h) */
    f->idx.segcache_limit = f->opts.index_cache;
    if (rc != AFMT_OK) {
        if (rc == AFMT_EEXIST)
            afmt__fail(f->errmsg, rc, "%s(%s): the file exists (use AFMT_TRUNC)", fn, f->path);
        return setup_fail(f, rc);
    }
    /* A new file has an inode to lock only now; before the truncation, in any case. */
    if ((rc = lock_inode(f, fn)) != AFMT_OK) return setup_fail(f, rc);
    /* Truncate (collective for MPI-IO) and agree before rank 0 writes: a rank that truncates
     * late would cut the superblock off. */
    rc = f->st->ops->truncate(f->st, 0);
    if (rc != AFMT_OK) memcpy(f->errmsg, f->st->errmsg, sizeof f->errmsg);
    if ((rc = afmt__file_agree(f, rc)) != AFMT_OK) return setup_fail(f, rc);
    /* An empty file: a superblock with no layer, generation 1. */
    memset(&f->super, 0, sizeof f->super);
    f->super.version = AFMT_FORMAT_VERSION;
    f->super.generation = 1;
    f->super.eof = AFMT_SUPER_REGION;
    f->super.next_array_id = 1;
    if (f->rank == 0) make_uuid(f->super.uuid);
    if (MPI_Bcast(f->super.uuid, 16, MPI_BYTE, 0, f->comm) != MPI_SUCCESS)
        rc = afmt__fail(f->errmsg, AFMT_EMPI, "%s(%s): MPI_Bcast of the uuid failed", fn, f->path);
    if (rc == AFMT_OK && f->rank == 0) {
        uint8_t region[AFMT_SUPER_REGION];
        memset(region, 0, sizeof region);
        afmt__super_encode(&f->super, region + afmt__super_slot_offset(f->super.generation));
        rc = f->st->ops->write_at(f->st, 0, region, sizeof region);
        if (rc != AFMT_OK) memcpy(f->errmsg, f->st->errmsg, sizeof f->errmsg);
    }
    rc = afmt__file_agree(f, rc);
    if (rc == AFMT_OK) {
        if (f->opts.durability != AFMT_DURABILITY_NONE) rc = f->st->ops->sync(f->st);
        if (rc != AFMT_OK) memcpy(f->errmsg, f->st->errmsg, sizeof f->errmsg);
        /* The handle joins the live set before the last agreement, which covers it. */
        if (rc == AFMT_OK && live_add(f) != AFMT_OK)
            rc = afmt__fail(f->errmsg, AFMT_ENOMEM, "%s(%s): out of memory", fn, f->path);
        rc = afmt__file_agree(f, rc);
    }
    if (rc != AFMT_OK) return setup_fail(f, rc);
    f->idx.next_array_id = 1;
    return AFMT_OK;
}

int afmt_open(MPI_Comm comm, const char *path, unsigned mode, const afmt_opts *opts,
              afmt_file **out) {
    if (!out) return afmt__fail(NULL, AFMT_EINVAL, "afmt_open: f (output) is NULL");
    *out = NULL;
    int create = mode == (AFMT_RDWR | AFMT_CREATE);
    if (mode != AFMT_RDONLY && mode != AFMT_RDWR && !create)
        return afmt__fail(NULL, AFMT_EINVAL,
                          "afmt_open(%s): mode 0x%x is neither AFMT_RDONLY, AFMT_RDWR nor "
                          "AFMT_RDWR | AFMT_CREATE",
                          path ? path : "(null)", mode);
    if (mode != AFMT_RDONLY && afmt__storage_kind_of(path, AFMT_STORAGE_MPIIO) == AFMT_STORAGE_HTTP)
        return afmt__fail(NULL, AFMT_EINVAL,
                          "afmt_open(%s): remote files (http://, https://, s3://) are read-only: "
                          "open them with AFMT_RDONLY",
                          path);
    mode &= ~(unsigned)AFMT_CREATE;
    afmt_file *f;
    int rc = file_alloc(comm, path, mode, opts, &f, "afmt_open");
    if (rc != AFMT_OK) return rc;
    if ((rc = resolve_path(f, create, "afmt_open")) != AFMT_OK) return setup_fail(f, rc);
    if (create) {
        /* The lock before the decision: of two jobs racing, the second gets AFMT_EBUSY
         * instead of creating over the first. Rank 0 decides, every rank follows. */
        int exists = 0;
        if ((rc = lock_acquire(f, "afmt_open")) == AFMT_OK) {
            exists = f->rank == 0 && afmt__storage_exists(f->opts.storage, f->real_path);
            rc = exists_agree(f, &exists);
        }
        if (rc != AFMT_OK) return setup_fail(f, rc);
        if (!exists) {
            if ((rc = create_locked(f, 0, "afmt_open")) != AFMT_OK) return rc;
            *out = f;
            return AFMT_OK;
        }
    }
    unsigned sf = AFMT_ST_READ | (mode == AFMT_RDWR ? AFMT_ST_WRITE : 0);
    rc = afmt__storage_open(f->opts.storage, f->comm, f->real_path, sf, f->opts.info, &f->st,
                            f->errmsg);
    if (rc != AFMT_OK) {
        /* A URL's message names the URL and the HTTP status: kept. */
        if (rc == AFMT_ENOTFOUND && f->opts.storage != AFMT_STORAGE_HTTP)
            afmt__fail(f->errmsg, rc, "afmt_open(%s): no such file", path);
        return setup_fail(f, rc);
    }
    /* Writers lock after the open (a missing file stays AFMT_ENOTFOUND, opening changes
     * nothing) and before the load, so the handle starts from the holder's last commit.
     * Readers take no lock: they see the last commit whatever a writer does. */
    if (mode == AFMT_RDWR && !create) rc = lock_acquire(f, "afmt_open");
    if (rc != AFMT_OK) return setup_fail(f, rc);
    /* The handle joins the live set first: the load's agreements cover it. */
    if (live_add(f) != AFMT_OK)
        rc = afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_open(%s): out of memory", path);
    if ((rc = afmt__load_agreed(f, rc)) != AFMT_OK) return setup_fail(f, rc);
    *out = f;
    return AFMT_OK;
}

int afmt_open_layer(MPI_Comm comm, const char *path, uint64_t layer, const afmt_opts *opts,
                    afmt_file **out) {
    if (!out) return afmt__fail(NULL, AFMT_EINVAL, "afmt_open_layer: f (output) is NULL");
    *out = NULL;
    if (layer == 0 || layer == UINT64_MAX)
        return afmt__fail(NULL, AFMT_ERANGE, "afmt_open_layer(%s): layer %llu is not a layer id",
                          path ? path : "(null)", (unsigned long long)layer);
    afmt_file *f;
    int rc = file_alloc(comm, path, AFMT_RDONLY, opts, &f, "afmt_open_layer");
    if (rc != AFMT_OK) return rc;
    f->view_layer = layer;
    rc = resolve_path(f, 0, "afmt_open_layer");
    if (rc == AFMT_OK)
        rc = afmt__storage_open(f->opts.storage, f->comm, f->real_path, AFMT_ST_READ, f->opts.info,
                                &f->st, f->errmsg);
    if (rc == AFMT_ENOTFOUND && f->opts.storage != AFMT_STORAGE_HTTP)
        afmt__fail(f->errmsg, rc, "afmt_open_layer(%s): no such file", path);
    if (rc != AFMT_OK) return setup_fail(f, rc);
    if (live_add(f) != AFMT_OK)
        rc = afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_open_layer(%s): out of memory", path);
    if ((rc = afmt__load_agreed(f, rc)) != AFMT_OK) return setup_fail(f, rc);
    *out = f;
    return AFMT_OK;
}

/* Rank 0 of a rollback: the checksum of layer li's footer, read back (the slot records
 * it, and the handle's index keeps no footer bytes). */
static int footer_checksum(afmt_file *f, const afmt_layer_info *li, uint64_t *sum) {
    uint8_t *buf = malloc(li->footer_length ? (size_t)li->footer_length : 1);
    if (!buf) return afmt__fail(f->errmsg, AFMT_ENOMEM, "afmt_rollback: out of memory");
    int rc = f->st->ops->read_at(f->st, li->footer_offset, buf, li->footer_length);
    if (rc != AFMT_OK)
        afmt__fail(f->errmsg, rc, "afmt_rollback: %s", f->st->errmsg);
    else
        *sum = afmt__checksum(buf, (size_t)li->footer_length);
    free(buf);
    return rc;
}

int afmt__write_slot(afmt_file *f, afmt_storage *st, const afmt_super *next, int rc, const char *fn,
                     afmt_durability durability, int *late_rc) {
    afmt__group g = group_of(f);
    char what[AFMT_ERRMSG_MAX];
    snprintf(what, sizeof what, "%s(%s)", fn, f->path);
    return afmt__publish_slot(&g, st, next, rc, what, durability == AFMT_DURABILITY_FULL, late_rc);
}

int afmt__file_stale(afmt_file *f, int rc, const char *fmt, ...) {
    char why[AFMT_ERRMSG_MAX], what[AFMT_ERRMSG_MAX];
    memcpy(why, f->errmsg, sizeof why);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    f->stale = 1;
    return afmt__fail(f->errmsg, rc, "%s (%s): close the handle and reopen the file", what, why);
}

/* COLLECTIVE. The rollback's slot is written: the file is rolled back whatever follows,
 * so the handle must follow it (like a commit after its durable point): reload, or
 * become stale. A failed sync (rc) is reported after that, as a commit reports it. */
static int rollback_adopt(afmt_file *f, uint64_t layer, int rc) {
    char late[AFMT_ERRMSG_MAX];
    memcpy(late, f->errmsg, sizeof late);
    int lrc = afmt__reload(f);
    if (lrc != AFMT_OK)
        return afmt__file_stale(f, lrc,
                                "afmt_rollback(%s): the file is rolled back to layer %llu, but "
                                "loading it failed",
                                f->path, (unsigned long long)layer);
    if (rc != AFMT_OK)
        return afmt__fail(f->errmsg, rc,
                          "%s; the file is rolled back to layer %llu, but whether that survives "
                          "a crash is unknown",
                          late, (unsigned long long)layer);
    return AFMT_OK;
}

int afmt_rollback(afmt_file *f, uint64_t layer) {
    const char *fn = "afmt_rollback";
    int rc = afmt__check(f, fn);
    if (rc != AFMT_OK) return rc;
    if ((rc = afmt__check_writable(f, fn)) != AFMT_OK) return rc;
    int any = f->staging.n > 0 || f->n_pend_arrays > 0 || f->n_pend_attrs > 0;
    if ((rc = afmt__enter(f, AFMT_CALL_ROLLBACK, AFMT_OK, &any, 1)) != AFMT_OK) return rc;
    if (any)
        return afmt__fail(f->errmsg, AFMT_ESTATE,
                          "afmt_rollback(%s): there are uncommitted changes; commit them first",
                          f->path);
    uint64_t k = 0;
    while (k < f->idx.n_layers && f->idx.layers[k].layer_id != layer) k++;
    if (k == f->idx.n_layers)
        return afmt__fail(f->errmsg, AFMT_ERANGE,
                          "afmt_rollback(%s): layer %llu is not in the file's chain (%llu layers)",
                          f->path, (unsigned long long)layer, (unsigned long long)f->idx.n_layers);
    if (k + 1 == f->idx.n_layers) return AFMT_OK;
    /* A new superblock generation pointing at layer k's footer: like a commit, one slot
     * write decides. Later layers stay in the file as dead space; layer ids go on from the
     * highest ever used (super.layer_id), so none is reused. */
    const afmt_layer_info *li = &f->idx.layers[k];
    if (f->super.generation == UINT64_MAX) /* the same on every rank */
        return afmt__fail(f->errmsg, AFMT_ERANGE,
                          "afmt_rollback(%s): the generation counter is exhausted (2^64-1): "
                          "compact the file (afmt_compact) to start it over",
                          f->path);
    afmt_super next = f->super;
    next.generation++;
    next.footer_offset = li->footer_offset;
    next.footer_length = li->footer_length;
    next.nlayers = k + 1;
    if (f->rank == 0) rc = footer_checksum(f, li, &next.footer_checksum);
    int sync_rc;
    if ((rc = afmt__write_slot(f, f->st, &next, rc, "afmt_rollback", f->opts.durability,
                               &sync_rc)) != AFMT_OK)
        return rc;
    return rollback_adopt(f, layer, sync_rc);
}

int afmt_close(afmt_file *f) {
    int rc = afmt__check_live(f, "afmt_close");
    if (rc != AFMT_OK) return rc;
    /* A stale handle has nothing to commit: its staged changes are in the file. */
    if (f->mode == AFMT_RDWR && !f->stale) rc = afmt__commit(f);
    if (rc == AFMT_OK && f->mode == AFMT_RDWR && !f->stale) rc = afmt__retain(f, "afmt_close");
    live_del(f);
    /* Closing is collective for MPI-IO but its outcome is per rank: agreed (the commit's
     * was), so that every rank returns the same code. */
    int crc = f->st ? f->st->ops->close(f->st) : AFMT_OK;
    f->st = NULL;
    if (rc == AFMT_OK) {
        if (crc != AFMT_OK) afmt__fail(f->errmsg, crc, "afmt_close(%s): closing failed", f->path);
        rc = afmt__file_agree(f, crc);
    }
    char msg[AFMT_ERRMSG_MAX];
    memcpy(msg, f->errmsg, sizeof msg);
    /* Last: the commit above has been agreed on by every rank, so no rank writes any more
     * when the next writer may come in. */
    afmt__lock_drop(&f->lock);
    file_free(f);
    if (rc != AFMT_OK) afmt__fail(NULL, rc, "%s", msg);
    return rc;
}

int afmt_layers(afmt_file *f, uint64_t *n) {
    int rc = afmt__check(f, "afmt_layers");
    if (rc != AFMT_OK) return rc;
    if (!n) return afmt__fail(f->errmsg, AFMT_EINVAL, "afmt_layers: n is NULL");
    *n = f->idx.n_layers;
    return AFMT_OK;
}

int afmt_layer_id(afmt_file *f, uint64_t index, uint64_t *id, uint64_t *time_ns) {
    int rc = afmt__check(f, "afmt_layer_id");
    if (rc != AFMT_OK) return rc;
    if (index >= f->idx.n_layers)
        return afmt__fail(f->errmsg, AFMT_ERANGE, "afmt_layer_id: index %llu outside [0, %llu)",
                          (unsigned long long)index, (unsigned long long)f->idx.n_layers);
    if (id) *id = f->idx.layers[index].layer_id;
    if (time_ns) *time_ns = f->idx.layers[index].time_ns;
    return AFMT_OK;
}
