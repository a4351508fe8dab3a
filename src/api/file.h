/* file.h - the handle behind afmt_file and afmt_opts, and the internal calls that the
 * API glue (file.c, array.c), the write path (write.c), the read path (read.c), the
 * commit (exchange.c, commit.c) and compaction (compact.c) share. */
#ifndef AFMT_FILE_H
#define AFMT_FILE_H

#include <mpi.h>
#include <stdint.h>

#include "afmt.h"
#include "api/consistency.h"
#include "common/error.h"
#include "common/hmap.h"
#include "common/pool.h"
#include "format/footer.h"
#include "format/publish.h"
#include "format/superblock.h"
#include "index/alloc.h"
#include "index/cache.h"
#include "index/index.h"
#include "index/lazy.h"
#include "index/staging.h"
#include "mpi/mpiutil.h"
#include "storage/lock.h"
#include "storage/storage.h"

typedef struct afmt_fetch_slot afmt_fetch_slot;
typedef struct afmt_drain afmt_drain; /* commit_async.c */

struct afmt_opts {
    uint32_t codec;
    int level;
    int shuffle;
    uint64_t block_size, mem_budget, cache_size, index_cache;
    char *spill_dir;    /* NULL = $TMPDIR or /tmp */
    MPI_Info info;      /* MPI_INFO_NULL or a dup owned by the options */
    uint64_t alignment; /* 0, or a power of two: where each rank's region and the footer
                         * of a layer start (commit.c); the same on every rank (file.c) */
    afmt_storage_kind storage;
    int check_collective; /* compare the ranks' metadata calls at commit (consistency.h) */
    int threads;          /* afmt_opts_set_threads: 0 = this rank's share of its node's cores */
    int check_bounds;     /* afmt_opts_set_check_bounds: decode lossy blocks, check the bound */
    afmt_durability durability; /* afmt_opts_set_durability; in a handle's copy, the level the
                                 * hint afmt_durability gives (file.c), the same on every rank */
    uint64_t keep;              /* afmt_opts_set_retention; in a handle's copy, what the hints */
    double dead_fraction;       /* afmt_keep, afmt_dead_fraction give (file.c); 0: off */
};

#ifdef AFMT_TESTING
/* Test hook: the storage backend, "mpiio" (default), "posix" or "memory". */
int afmt__opts_set_backend(afmt_opts *o, const char *name);
/* Test hook: the footer version commits write, 2 (default) or 1 (the block and chunk
 * tables in the footer; the segments are still written, as dead bytes), so that the tests
 * of the version-1 rules can craft files through the API. */
void afmt__set_write_version(uint32_t v);
/* Test hook: nonzero makes new files' uuid and every layer's commit time fixed values,
 * so that two files written alike compare byte for byte (the thread-count tests). */
void afmt__set_fixed_identity(int on);
int afmt__fixed_identity(void);
#endif
/* Copies src (NULL = defaults) into dst, which must be freed with afmt__opts_clear. */
int afmt__opts_copy(afmt_opts *dst, const afmt_opts *src);
void afmt__opts_clear(afmt_opts *o);

/* Where the last commit's time went, on this rank (seconds; MPI_Wtime). compress counts
 * the blocks sealed during the afmt_write calls before the commit too. */
typedef struct {
    double compress, exchange, write, gather, footer, sync, total;
    uint64_t bytes_written;  /* stored bytes this rank wrote */
    uint64_t blocks, chunks; /* this rank's */
} afmt_commit_stats;

/* Internal (benchmarks): the stats of the handle's last commit. */
int afmt__commit_stats(afmt_file *f, afmt_commit_stats *out);

struct afmt_file {
    MPI_Comm comm;
    int rank, size;
    char *path;      /* as the caller gave it: for messages */
    char *real_path; /* resolved once at create/open on rank 0, the same on every rank: for
                      * every path operation (storage opens, lock, compaction; storage.h) */
    unsigned mode;   /* AFMT_RDONLY or AFMT_RDWR */
    afmt_opts opts;
    int collective_write; /* hint afmt_collective_write=true */
    int segment_per_rank; /* hint afmt_index_aggregation=rank: no node-level aggregation */
    int node_group;       /* hint afmt_node_group_size: most ranks per node group, 0: all */
    int data_per_node;    /* hint afmt_data_aggregation=node: the leader writes the node's data */
    /* The ranks of this rank's node, split once when the handle is made
     * (MPI_COMM_TYPE_SHARED; MPI_COMM_NULL if that failed): the default thread count, and
     * the base of node and read_node, which are shm itself unless cut further. */
    MPI_Comm shm;
    int shm_rank, shm_size;
    /* The ranks of this rank's node group (shm, cut into groups of node_group
     * ranks if set), set up by the first commit: its leader (node rank 0) writes the node's
     * index segment (aggregate.h), and with node_data (data_per_node on every rank, and
     * node groups) the node's data blocks; the leaders (leaders: MPI_COMM_NULL on other
     * ranks, rank 0 first) send rank 0 their root records. */
    MPI_Comm node, leaders;
    int node_rank, node_size, n_nodes, node_ready, node_data;
    /* The ranks that share afmt_read_all's segment reads (read_all.c): always this rank's
     * node (shm), whatever the aggregation hint, or runs of read_node_ranks ranks (a test
     * hook); set up by the first afmt_read_all that has segments to bring in. */
    MPI_Comm read_node;
    int read_node_rank, read_node_size, read_node_ready, read_node_ranks;
    afmt_storage *st;
    afmt_super super;    /* the committed superblock this handle stands on */
    uint64_t view_layer; /* newest layer id to load (afmt_open_layer), else UINT64_MAX */
    afmt_index idx;
    afmt_cache *cache;
    afmt_alloc *alloc; /* created on the first write */
    /* While a commit drains (afmt_commit_start), drain holds its allocator and staged
     * chunks and the writes go to alloc and staging; alloc_spare is the drained allocator
     * kept for reuse. */
    afmt_drain *drain;
    afmt_alloc *alloc_spare;
    /* The background mode of afmt_commit_start (commit_async.c): duplicates of comm, node
     * and leaders for the helper's collectives, made by the first such start (bg_ready);
     * async_foreground: the hint afmt_async_commit=foreground keeps the collective part on
     * the caller's thread. */
    MPI_Comm bg_comm, bg_node, bg_leaders;
    int bg_ready, async_foreground;
    /* Threads of work for sealing blocks and decompressing the blocks a read needs
     * (afmt_opts_set_threads, resolved at create/open: >= 1); the pool of threads - 1
     * workers is started on first use, never when threads is 1 (pool.h). */
    int threads;
    afmt_pool *pool;
    struct afmt_fetch_slot *fslots; /* afmt__fetch_blocks' blocks in the pool (fetch.c) */
    int n_fslots;
    afmt__staging staging; /* the chunks this rank wrote since the last commit */
    /* Metadata changes since the last commit; the same on every rank (collective calls). */
    afmt_array_rec *pend_arrays;
    uint64_t n_pend_arrays, cap_pend_arrays;
    afmt_attr_rec *pend_attrs;
    uint64_t n_pend_attrs, cap_pend_attrs;
    /* The calls behind those records, as this rank made them, checked at commit. */
    afmt_consist consist;
    uint8_t *scratch; /* a chunk-sized work buffer of the read and write paths */
    uint64_t scratch_cap;
    uint8_t *stored_buf; /* compressed bytes of the block being read (read.c) */
    uint64_t stored_cap;
    uint8_t *decode_buf; /* a block decompressed for a read that uses all of it (read.c) */
    uint64_t decode_cap;
    afmt_commit_stats stats;
    /* The writer lock this handle holds (rank 0 of a writable handle; lock.h): none on
     * read-only handles, other ranks, the memory backend, with AFMT_NO_LOCK. */
    afmt__lock lock;
    /* 1 after a commit made its layer durable but the handle could not load it back (out
     * of memory twice over): its index no longer matches the file, so every call but
     * afmt_close fails with AFMT_ESTATE. */
    int stale;
    char errmsg[AFMT_ERRMSG_MAX];
};

/* Returns AFMT_OK if f is a live handle, else AFMT_EINVAL with a message naming fn; a
 * stale handle (afmt_file.stale) gets AFMT_ESTATE. */
int afmt__check(const afmt_file *f, const char *fn);
/* The same without the stale check (afmt_close). */
int afmt__check_live(const afmt_file *f, const char *fn);
/* AFMT_EREADONLY with a message if f is read-only. */
int afmt__check_writable(afmt_file *f, const char *fn);
/* The live array name, or AFMT_ENOTFOUND / AFMT_EINVAL with a message naming fn. */
int afmt__lookup(afmt_file *f, const char *fn, const char *name, afmt_array **out);
/* Validates a hyperslab of arr for fn: AFMT_EINVAL with a message naming the dim. */
int afmt__check_region(afmt_file *f, const char *fn, const afmt_array *arr, const uint64_t *start,
                       const uint64_t *count);
/* A work buffer of at least n bytes (f->scratch), or NULL (message set). */
uint8_t *afmt__scratch(afmt_file *f, uint64_t n);
/* The handle's pool (f->pool, started on first use), or NULL where f->threads is 1 or
 * the pool could not be made: then the work runs on the caller's thread, with the same
 * result. */
afmt_pool *afmt__file_pool(afmt_file *f);
/* The compression setting of a new array (array_opts.c): ao's, checked against dtype t
 * (AFMT_EINVAL with a message naming the array), into r's codec fields and SHUFFLE flag;
 * ao NULL or empty: none recorded (the writer's default, as afmt_define). */
int afmt__array_setting(afmt_file *f, const char *name, afmt_dtype t, const afmt_array_opts *ao,
                        afmt_array_rec *r);
/* Creates the handle's allocator (f->alloc) on first use: AFMT_ENOMEM with a message. */
int afmt__ensure_alloc(afmt_file *f);

/* The handle's side of the agreement (mpiutil.h holds the one implementation; these
 * wrappers give it f->comm, f->rank, f->size and f->errmsg). */
/* COLLECTIVE. Agrees on the outcome of a step: if any rank has rc != AFMT_OK, every rank
 * returns the code of the lowest failing rank and receives its message into f->errmsg
 * (and the thread buffer). MPI failures become AFMT_EMPI. */
int afmt__file_agree(afmt_file *f, int rc);
/* COLLECTIVE. The first communication of a collective call that the ranks may reach
 * with different local outcomes: afmt__file_agree on rc, flags[0..nflags) become their OR over
 * the ranks (nflags <= AFMT_ENTER_MAXFLAGS), and if some rank is in another call of this
 * handle (call differs: a collective call made on some ranks only), every rank in the
 * Allreduce gets AFMT_EINVAL saying so, instead of going on into mismatched collectives.
 * One MPI_Allreduce of a fixed size (and a broadcast only on failure). */
#define AFMT_CALL_DEFINE       1
#define AFMT_CALL_DELETE       2
#define AFMT_CALL_SET_ATTR     3
#define AFMT_CALL_COMMIT       4
#define AFMT_CALL_DISCARD      5
#define AFMT_CALL_ROLLBACK     6
#define AFMT_CALL_READ_ALL     7
#define AFMT_CALL_COMMIT_WAIT  8
#define AFMT_CALL_COMMIT_START 9
#define AFMT_ENTER_MAXFLAGS    AFMT__AGREE_MAXFLAGS
int afmt__enter(afmt_file *f, int call, int rc, int *flags, int nflags);

/* COLLECTIVE (exchange.c). Resolves partly covered chunks: detects overlaps between
 * ranks and merges the pieces of each chunk on one rank over its older content, encoded
 * into the allocator: *merged (malloc'd) lists the chunk records of the chunks this rank
 * merged. The staged entries are not changed; the layer's chunks are this rank's whole
 * staged chunks plus *merged. */
int afmt__exchange(afmt_file *f, afmt_chunk_rec **merged, uint64_t *n_merged);

/* COLLECTIVE (commit.c). Writes one layer into st: the sealed blocks of alloc at
 * offsets after super->eof, the footer made of this rank's chunk records (block =
 * local block number of alloc) and rank 0's arrays/attrs, the trailer, then the next
 * superblock slot. On success *super is the new committed superblock and *footer (if
 * not NULL) holds the footer bytes on every rank. */
typedef struct {
    afmt_storage *st;
    afmt_alloc *alloc;
    afmt_chunk_rec *chunks;
    uint64_t n_chunks;
    const afmt_array_rec *arrays;
    uint64_t n_arrays;
    const afmt_attr_rec *attrs;
    uint64_t n_attrs;
    uint32_t flags;
    uint64_t next_array_id;
    afmt_super *super;
    int late_rc; /* out: the last sync failed after the slot was written (layer adopted) */
    int durable; /* out: the slot was written: the layer is the file's newest, whatever
                  * afmt__write_layer returns */
    struct afmt_layer_plan *plan; /* non-NULL: prepare only (afmt_commit_start) */
    afmt_durability durability;   /* the syncs: a commit's the handle's, compaction FULL */
    /* non-NULL: a layer rewritten as it was (afmt_compact_keep): its id and time instead
     * of new ones, its attributes as they are (no new provenance: the original "nranks"
     * stays there, the header's counts the rewriting ranks, the writers of its blocks);
     * the slot keeps the highest layer id of super and this one. */
    const afmt_layer *replay;
    /* Not 0: the new layer's id (afmt_compact_keep's BASE takes the id of the newest layer
     * it folds) instead of the next one or the replayed layer's; the slot keeps the
     * highest of super's and this one. */
    uint64_t layer_id;
} afmt_layer_job;
int afmt__write_layer(afmt_file *f, afmt_layer_job *job, afmt_buf *footer);

/* A commit started by afmt_commit_start. afmt__commit_collect fills its inputs (this
 * rank's records and the pending metadata, with its own copies of the attribute values,
 * and the superblock it follows); afmt__commit_layer prepares the layer: everything every
 * rank had to agree on is done, what is left is local writes, a sync per rank and the
 * slot (ready 1; nothing is written, the handle's superblock is unchanged). */
typedef struct afmt_layer_plan {
    int collected;  /* 1 once afmt__commit_collect filled the inputs */
    int foreground; /* in: this rank wants the layer prepared on the caller's thread; out:
                     * some rank does (then every rank does) */
    afmt_chunk_rec *chunks;
    uint64_t n_chunks;
    afmt_array_rec *arrays;
    uint64_t n_arrays;
    afmt_attr_rec *attrs; /* values owned */
    uint64_t n_attrs;
    uint64_t next_array_id;
    afmt_super super;      /* the committed superblock the layer follows */
    int ready;             /* 1 once afmt__write_layer prepared it */
    uint64_t base, stored; /* this rank's region: its sealed blocks' bytes at base */
    afmt_buf seg;          /* a node leader's index segment, at seg_at */
    uint64_t seg_at;
    afmt_buf tail; /* rank 0: footer and trailer, at foff */
    uint64_t foff;
    afmt_buf footer; /* every rank: the footer bytes, for the index at the end */
    afmt_super next; /* every rank: the superblock that will name the layer */
    /* The background mode's helper wrote the slot (afmt__write_slot) once every rank's
     * bytes were durable: the layer is the file's newest; late_rc, late_msg: the outcome
     * of the sync after it. */
    int published, late_rc;
    char late_msg[AFMT_ERRMSG_MAX];
} afmt_layer_plan;
void afmt__layer_plan_free(afmt_layer_plan *p);

/* COLLECTIVE (commit.c). afmt__commit's first steps for afmt_commit_start: the entry
 * (pre_rc, a failure found before, is agreed there), the check of the ranks' metadata
 * calls, the exchange of shared chunks (merged into f->alloc) and this rank's records
 * into plan. Nothing to commit on any rank: AFMT_OK with plan->collected 0. The handle
 * keeps its staged chunks and pending metadata (afmt__commit_clear_pending drops the
 * latter once the commit is under way). */
int afmt__commit_collect(afmt_file *f, afmt_layer_plan *plan, int pre_rc);
/* The pending metadata records of f, cleared (they are in a plan now). */
void afmt__commit_clear_pending(afmt_file *f);
/* COLLECTIVE over f->comm, f->node and f->leaders (commit.c). Seals a (the blocks of
 * the plan's chunks; the wait for their compression is here), and prepares the layer into
 * plan (afmt__write_layer with the plan). f may be a view of the handle with its own
 * communicators, message and stats (commit_async.c): this reads f->idx and f's settings,
 * and writes only f->errmsg and f->stats. */
int afmt__commit_layer(afmt_file *f, afmt_layer_plan *plan, afmt_alloc *a);
/* COLLECTIVE (commit.c). The end of a prepared layer once every rank's writes are synced
 * (agreed before): rank 0 writes and syncs the slot (fn names the call in messages),
 * unless the helper did (plan->published); the handle takes the layer, t is cleared and
 * a reset. Returns AFMT_OK, or the failure; then *durable says whether the slot was
 * written (the layer is the file's newest). */
int afmt__commit_finish(afmt_file *f, afmt_layer_plan *plan, afmt__staging *t, afmt_alloc *a,
                        const char *fn, int *durable);

/* COLLECTIVE (commit_async.c). Finishes the commit in flight, if any (f->drain is the
 * same on every rank): joins this rank's helper, agrees, and writes the slot
 * (afmt__commit_finish); a failure on any rank is returned on every rank, naming the layer
 * and the rank, and the handle is reset to the file (as afmt_discard). fn names the call. */
int afmt__drain_finish(afmt_file *f, const char *fn);
/* LOCAL. Joins this rank's helper and frees the commit in flight without finishing it: the
 * file keeps the previous commit (handle teardown). */
void afmt__drain_drop(afmt_file *f);
/* LOCAL. Returns once the commit in flight (if any) is past its collective part: its
 * allocator is sealed and the handle's index is no longer read by its helper. Every
 * independent call but afmt_write and the inquiries calls it first. */
void afmt__drain_settle(afmt_file *f);
/* How the commit in flight runs (tests): 0 none, 1 prepared at the start (the helper
 * only writes), 2 prepared by the helper (background mode). */
int afmt__drain_mode(const afmt_file *f);
/* The entry of a chunk staged by the commit in flight on this rank, or NULL. */
const afmt_staged *afmt__drain_find(const afmt_file *f, uint64_t array_id, uint64_t chunk_index);
/* afmt__alloc_read of the commit in flight's allocator, safe against its helper; the
 * allocator's message in why (AFMT_ERRMSG_MAX bytes) on failure. */
int afmt__drain_alloc_read(afmt_file *f, uint64_t block, uint64_t offset, void *dst, uint64_t n,
                           char *why);

/* COLLECTIVE. afmt_commit without the handle checks (afmt_close and afmt_compact). */
int afmt__commit(afmt_file *f);
/* COLLECTIVE. Retention after a durable commit (afmt_opts_set_retention; retain.c): if the
 * handle's keep or dead fraction calls for it, afmt_compact_keep. fn names the caller in
 * the message of a failure, which also says that the commit is durable. The same code on
 * every rank; AFMT_OK at once (no MPI call) when retention is off or, with keep alone,
 * not due; else one agreement, and the compaction when it is due. */
int afmt__retain(afmt_file *f, const char *fn);
/* COLLECTIVE. afmt__file_agree that also ORs flags[0, nflags) over the ranks
 * (nflags <= AFMT__AGREE_MAXFLAGS). */
int afmt__file_agree_flags(afmt_file *f, int rc, int *flags, int nflags);
/* COLLECTIVE. Reads the superblock and the footer chain (rank 0) and builds f->idx on
 * every rank. */
int afmt__load(afmt_file *f);
/* COLLECTIVE. Rebuilds f->idx from the file (afmt__load into a fresh index); on failure
 * the handle keeps its old index and superblock. */
int afmt__reload(afmt_file *f);
/* The file moved on but the handle could not follow: marks it stale (only afmt_close is
 * valid) and sets "<what> (<f->errmsg so far>): close the handle and reopen the file",
 * what formatted from fmt. Returns rc. */
int afmt__file_stale(afmt_file *f, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Rank 0 of afmt_compact, around the rename of the new file (open as fd) over f's file:
 * lock.h's afmt__lock_copy_inode and afmt__lock_adopt_inode on f's lock. */
int afmt__lock_inode_copy(afmt_file *f, int fd, int *out);
void afmt__lock_inode_adopt(afmt_file *f, int fd);

/* COLLECTIVE. publish.h's slot write and sync on f's ranks, messages "fn(path): ...". The
 * sync after the slot only at AFMT_DURABILITY_FULL (afmt_opts_set_durability). */
int afmt__write_slot(afmt_file *f, afmt_storage *st, const afmt_super *next, int rc, const char *fn,
                     afmt_durability durability, int *late_rc);

/* mpiutil.h's data movement on the handle's communicator, message in f->errmsg. */
int afmt__share_buf(afmt_file *f, afmt_buf *b, int rc, const char *what);
int afmt__gather_bytes(afmt_file *f, const void *buf, uint64_t len, uint8_t **out, uint64_t *lens,
                       const char *what);

#endif
