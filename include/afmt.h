/*
 * afmt.h - public C API of libafmt, an MPI parallel I/O library that stores many
 * named n-dimensional arrays in one file, compressed, layered and crash-safe.
 *
 * Conventions (see docs/api.md for the full reference):
 *  - Every function returns AFMT_OK (0) or a negative AFMT_E* code. Nothing in the
 *    library prints, exits, aborts or calls MPI_Abort.
 *  - afmt_strerror(code) gives a fixed text for a code; afmt_errmsg(f) gives the
 *    detailed message of the last failure on f (or, for f == NULL, on this thread).
 *  - COLLECTIVE: every rank of the file's communicator calls it, in the same order,
 *    with the same arguments. INDEPENDENT: a rank calls it alone.
 *  - Shapes, starts and counts are uint64_t arrays of length ndim in C (row-major)
 *    order; for a scalar (ndim 0) they may be NULL.
 *  - Buffers are contiguous, C order, native layout of the dtype; the file is
 *    little-endian and the library converts.
 *
 * Limits: ndim <= AFMT_MAX_NDIM, names <= AFMT_MAX_NAME bytes, dimension names <=
 * AFMT_MAX_DIMNAME bytes, chunks <= AFMT_MAX_CHUNK_BYTES bytes, arrays < 2^64 bytes.
 * Exceeding one is AFMT_EINVAL with a message.
 *
 * Threads: calls on DIFFERENT handles (afmt_file, afmt_opts) may run at the same time
 * in different threads; a handle is used by one thread at a time (the caller serializes
 * the calls on one handle, including afmt_errmsg(f)). Collective calls of concurrent
 * threads must use different communicators (MPI forbids concurrent collectives on one
 * communicator; a handle's own communicator is a duplicate of the one it was opened
 * with), and MPI must be initialized with MPI_THREAD_MULTIPLE, since every afmt call that
 * takes a handle or a communicator may call MPI. afmt_codec_register, afmt_signal_arm,
 * afmt_signal_clear, afmt_strerror, afmt_err_name, afmt_errmsg(NULL) (per thread) and the
 * version functions may be called from any thread at any time. tests/abi/test_threads.c
 * proves this under ThreadSanitizer (-DAFMT_TSAN=ON).
 *
 * ABI: while the version is 0.x, releases of the same MAJOR.MINOR are binary compatible
 * (the shared library's soname is libafmt.so.0.MINOR); a new MINOR may break it. Values
 * of error codes, afmt_dtype and afmt_codec never change (they are stored in files or
 * returned to callers), and the structures afmt_info and afmt_codec_desc keep their size
 * and layout within a MAJOR.MINOR: new fields take room from their reserved members.
 */
#ifndef AFMT_H
#define AFMT_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "afmt_version.h" /* generated: AFMT_VERSION_MAJOR .. AFMT_VERSION_STRING */

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the public functions: the shared library is built with -fvisibility=hidden and
 * exports these only. */
#ifndef AFMT_API
#if defined(__GNUC__) && __GNUC__ >= 4
#define AFMT_API __attribute__((visibility("default")))
#else
#define AFMT_API
#endif
#endif

/* ---- error codes (negative; values never change) ---------------------------- */
#define AFMT_OK        0
#define AFMT_EINVAL    (-1)  /* bad argument: NULL, out of range, too long, overlap */
#define AFMT_ENOTFOUND (-2)  /* no such array, attribute or file */
#define AFMT_EEXIST    (-3)  /* array name live, or file exists without AFMT_TRUNC */
#define AFMT_ETYPE     (-4)  /* dtype mismatch */
#define AFMT_ERANGE    (-5)  /* value does not fit (buffer too small, layer out of range) */
#define AFMT_EIO       (-6)  /* the storage failed (errno in the message) */
#define AFMT_ECORRUPT  (-7)  /* a checksum or structure check failed */
#define AFMT_EVERSION  (-8)  /* the file is of a newer format version */
#define AFMT_ENOMEM    (-9)  /* out of memory */
#define AFMT_ECODEC    (-10) /* codec missing or failed */
#define AFMT_EMPI      (-11) /* an MPI call failed */
#define AFMT_EREADONLY (-12) /* write access on a read-only handle */
#define AFMT_ESTATE    (-13) /* call not valid in the handle's state */
#define AFMT_EBUSY     (-14) /* another writer holds the file's lock ("<path>.lock") */
/* The last (most negative) code: every code is in [AFMT_E_LAST, AFMT_OK]. A new code
 * takes AFMT_E_LAST - 1 and becomes the new AFMT_E_LAST. */
#define AFMT_E_LAST AFMT_EBUSY

/* ---- limits ---------------------------------------------------------------- */
#define AFMT_MAX_NDIM    32
#define AFMT_MAX_NAME    255
#define AFMT_MAX_DIMNAME 63
/* Bytes of one chunk: the product of the chunk extents times the element size (1 GiB). */
#define AFMT_MAX_CHUNK_BYTES ((uint64_t)1 << 30)

/* Element types. The values are the dtype ids stored in files (docs/format.md section 6):
 * stable forever, never renumbered; a new type takes the next free id. */
typedef enum {
    AFMT_BOOL = 0,
    AFMT_INT8 = 1,
    AFMT_INT16 = 2,
    AFMT_INT32 = 3,
    AFMT_INT64 = 4,
    AFMT_UINT8 = 5,
    AFMT_UINT16 = 6,
    AFMT_UINT32 = 7,
    AFMT_UINT64 = 8,
    AFMT_FLOAT32 = 9,
    AFMT_FLOAT64 = 10
} afmt_dtype;

/* Codec ids are stable on disk. User codecs take ids >= 256 (afmt_codec_register).
 * AFMT_CODEC_ZFP is set per array only (afmt_array_opts_set_zfp): its blocks hold one
 * chunk each, compressed as a 1-4 dimensional field. */
typedef enum {
    AFMT_CODEC_NONE = 0,
    AFMT_CODEC_LZ4 = 1,
    AFMT_CODEC_ZSTD = 2,
    AFMT_CODEC_ZFP = 3
} afmt_codec;

/* The modes of ZFP (afmt_array_opts_set_zfp), with the meaning of their parameter. */
typedef enum {
    AFMT_ZFP_ACCURACY = 1,  /* absolute error bound: |decoded - value| <= param (> 0) */
    AFMT_ZFP_PRECISION = 2, /* param bit planes kept (1..64): a relative error */
    AFMT_ZFP_RATE = 3,      /* param bits per value (> 0): a fixed size, no error bound */
    AFMT_ZFP_REVERSIBLE = 4 /* lossless (param ignored) */
} afmt_zfp_mode;

typedef struct afmt_file afmt_file;             /* opaque handle of one open file */
typedef struct afmt_opts afmt_opts;             /* opaque options, see afmt_opts_create */
typedef struct afmt_array_opts afmt_array_opts; /* opaque array options, see afmt_define_with */

/* ---- options (all INDEPENDENT; an options object is local to the caller) ------- */

/* Creates an options object with the defaults: LZ4, shuffle on, 4 MiB blocks,
 * 512 MiB memory budget, spill directory $TMPDIR or /tmp, 64 MiB block cache,
 * no MPI_Info hints, no alignment, collective check on. Errors: EINVAL (o NULL), ENOMEM. */
AFMT_API int afmt_opts_create(afmt_opts **o);
/* Codec for new blocks. level is the codec's own scale, 0 = its default (none: 0 only;
 * LZ4: < 0 is the acceleration of LZ4 fast, 1 = default, 2..12 = LZ4 HC; zstd: its
 * levels).
 * Errors: EINVAL (NULL, level out of the codec's range), ECODEC (unknown codec id). */
AFMT_API int afmt_opts_set_codec(afmt_opts *o, afmt_codec c, int level);
/* Byte-shuffle pre-filter for arrays defined with these options (on != 0). */
AFMT_API int afmt_opts_set_shuffle(afmt_opts *o, int on);
/* Target raw bytes per block (>= 1 KiB, <= 1 GiB). A chunk never spans blocks, so a
 * chunk larger than the target makes a block of its own. */
AFMT_API int afmt_opts_set_block_size(afmt_opts *o, uint64_t bytes);
/* Compressed bytes a rank keeps in memory before commit; past it blocks spill to a
 * file in the spill directory. 0 = spill every block at once. */
AFMT_API int afmt_opts_set_mem_budget(afmt_opts *o, uint64_t bytes);
/* Directory of the spill file (a node-local disk is best). The copy is taken. */
AFMT_API int afmt_opts_set_spill_dir(afmt_opts *o, const char *dir);
/* MPI_Info hints given to MPI_File_open (duplicated; the caller keeps its own).
 * afmt's own hints: "afmt_collective_write" = "true" writes data blocks with
 * MPI_File_write_at_all instead of MPI_File_write_at. */
AFMT_API int afmt_opts_set_mpi_info(afmt_opts *o, MPI_Info info);
/* Bytes of decompressed blocks a handle caches for reads (0 disables the cache). */
AFMT_API int afmt_opts_set_cache_size(afmt_opts *o, uint64_t bytes);
/* Bytes of index metadata a handle caches (default 64 MiB). afmt_open reads only the
 * footers of a file's layers; a read then reads the index segments that hold the chunks
 * it needs (docs/format.md 9.3) and keeps them, least recently used dropped first, up to
 * this bound (at least the segment in use is kept). A file's size in chunks no longer
 * decides a handle's memory. */
AFMT_API int afmt_opts_set_index_cache(afmt_opts *o, uint64_t bytes);
/* File-system placement of what a commit writes: with bytes > 0, each rank's region of a
 * layer (its blocks; on a node's leader, then the node's index segment) and the layer's
 * footer start at a multiple of bytes (set it to the Lustre stripe size, the
 * "striping_unit" hint, or the GPFS block size), so that no two ranks write into one
 * stripe; the gaps are left unwritten (holes, counted as unreferenced bytes by afmt info).
 * 0 (default) packs the regions back to back. Compaction places its layer the same way.
 * Every rank of the communicator must give the same value: afmt_create and afmt_open fail
 * with AFMT_EINVAL on every rank otherwise. Readers need no setting: any file reads with
 * any. Errors: EINVAL (o NULL; bytes neither 0 nor a power of two in [512, 1 GiB]). */
AFMT_API int afmt_opts_set_alignment(afmt_opts *o, uint64_t bytes);
/* Whether afmt_commit (and afmt_close, afmt_compact, which commit) first checks that every
 * rank made the same afmt_define, afmt_delete and afmt_set_attr calls since the last
 * commit, with the same arguments (on != 0; on by default). A mismatch is AFMT_EINVAL on
 * every rank, naming the first differing call, array and field; nothing is written. It
 * costs one small MPI_Allreduce per commit and a hash of each metadata call. Off: nothing
 * is compared and disagreeing ranks are undefined behaviour (the commit may fail with
 * AFMT_EINVAL or AFMT_ECORRUPT, or write rank 0's metadata). Give every rank the same
 * setting. */
AFMT_API int afmt_opts_set_check_collective(afmt_opts *o, int on);
/* Threads of work per handle for sealing blocks (shuffle is done as chunks are written;
 * compression and checksum of each full block) and, on read, decompressing the blocks a
 * read needs: the calling thread plus n - 1 worker threads of the handle, started on first
 * use. n = 1: no thread is created, everything runs on the calling thread. n = 0
 * (default): this rank's share of its node's cores, i.e. the CPUs of its affinity mask
 * divided by the ranks of its node (MPI_COMM_TYPE_SHARED, found at afmt_create/afmt_open),
 * at least 1. The file is byte for byte the same whatever n is (blocks are cut and stored
 * in the same order), and so is what reads return. Worker threads never call MPI: any MPI
 * thread level works (MPI_THREAD_SINGLE included). Errors: EINVAL (o NULL, n < 0 or
 * n > 256). */
AFMT_API int afmt_opts_set_threads(afmt_opts *o, int n);
/* Whether every lossy block is checked before the commit (on != 0; default off): a block
 * of a ZFP array in accuracy mode is decoded again and every value compared with what was
 * written, and bit-rounded values with the originals; a value off by more than the
 * array's bound makes the afmt_write (or the commit that seals the block) fail with
 * AFMT_ECODEC naming the array, the chunk, the error and the bound. Costs a decode of
 * every lossy block. Errors: EINVAL (o NULL). */
AFMT_API int afmt_opts_set_check_bounds(afmt_opts *o, int on);
/* What a commit syncs (afmt_opts_set_durability; docs/reliability.md, "Durability
 * levels", says what a crash or a power loss can lose at each). */
typedef enum {
    AFMT_DURABILITY_FULL = 0, /* default: data, segments and footer synced, then the
                               * superblock slot written and synced: a returned commit
                               * survives a power loss */
    AFMT_DURABILITY_DATA = 1, /* the sync before the slot only: a power loss may lose the
                               * last commit (or rollback), never mixes two */
    AFMT_DURABILITY_NONE = 2  /* no sync at all (scratch files): a power loss may lose any
                               * number of recent commits or leave a file afmt_open refuses */
} afmt_durability;
/* The syncs of afmt_commit, afmt_commit_start/wait, afmt_rollback and afmt_close's commit
 * (FULL, DATA or NONE, above); NONE also skips afmt_create's sync of the new file.
 * afmt_compact always syncs fully (its rename replaces the whole file). A process killed
 * without a power loss (SIGKILL, a crash of the application) loses nothing at any level:
 * the page cache survives it. The MPI_Info hint "afmt_durability" = "full", "data" or
 * "none" overrides it (other values are ignored). Every rank of the communicator must
 * use the same level: afmt_create and afmt_open fail with AFMT_EINVAL on every rank
 * otherwise. The file's bytes are the same at every level. Errors: EINVAL (o NULL, d not
 * one of the three). */
AFMT_API int afmt_opts_set_durability(afmt_opts *o, afmt_durability d);
/* Checkpoint retention applied after each commit (docs/reliability.md, "Automatic
 * retention"): once afmt_commit, afmt_commit_wait or afmt_close's commit has made its
 * layer durable, the handle checks the file and, when the rule below holds, runs
 * afmt_compact_keep(f, keep) (afmt_compact when keep is 0) as part of the same call.
 *  - keep > 0, dead_fraction 0: compacts when afmt_layers > keep + 1, so that after every
 *    commit the file holds at most keep + 1 layers (the BASE and the keep newest).
 *  - keep 0, dead_fraction in (0, 1): compacts (afmt_compact) when more than that
 *    fraction of the file's bytes is dead.
 *  - both: compacts when afmt_layers > keep + 1 and more than dead_fraction is dead: the
 *    file keeps at least keep + 1 layers, and is rewritten only once enough is reclaimable.
 *  - both 0 (default): never (no check, no cost).
 * Dead bytes are the bytes the newest layer does not need: the stored bytes of the blocks
 * none of whose chunks is the current version of a live array's chunk (superseded by a
 * newer layer, or of a deleted array), and the footers and index segments of the older
 * layers; the fraction divides them by the file's end (the newest commit's). A block
 * with one current chunk counts as live, so the fraction never overstates. It is
 * counted from the handle's index, made whole for it (each layer's index segments are
 * read once, and kept, until a compaction rewrites the file: what afmt_compact reads
 * too; no data block is read).
 * A call that has changes staged on some rank when it would run (afmt_commit_wait with
 * writes made while the commit was in flight) skips the check; the next call checks.
 * The commit is durable before the compaction starts, and the compaction is atomic: when
 * it fails, the file is as the commit left it (or, failing after its rename, compacted, as
 * afmt_compact says) and the call returns the compaction's code, the same on every rank,
 * with a message that says the commit is durable, that the retention failed, and which of
 * the two the file is (afmt_close still frees the handle). The MPI_Info hints "afmt_keep"
 * (a decimal integer) and "afmt_dead_fraction" (a decimal number in [0, 1)) override
 * keep and dead_fraction (values that do not parse are ignored). Every rank of the
 * communicator must use the same setting: afmt_create and afmt_open fail with
 * AFMT_EINVAL on every rank otherwise. Readers ignore it. Errors: EINVAL (o NULL,
 * dead_fraction NaN or outside [0, 1)). */
AFMT_API int afmt_opts_set_retention(afmt_opts *o, uint64_t keep, double dead_fraction);
/* Frees o (NULL is fine). */
AFMT_API int afmt_opts_free(afmt_opts *o);

/* ---- array options (INDEPENDENT; local to the caller) -------------------------
 * How one array is compressed, given to afmt_define_with; what is not set comes from the
 * handle's options (afmt_opts_set_codec, afmt_opts_set_shuffle). The setting is recorded
 * in the file with the array: every later writer, on any rank count, and compaction use
 * it, and readers need nothing (afmt_inquire_codec, `afmt ls`, `afmt info` show it). */

/* Creates array options with nothing set. Errors: EINVAL (ao NULL), ENOMEM. */
AFMT_API int afmt_array_opts_create(afmt_array_opts **ao);
/* Lossless codec and level of the array, as afmt_opts_set_codec (NONE, LZ4, ZSTD or a
 * user codec id; AFMT_CODEC_ZFP is set with afmt_array_opts_set_zfp). Clears a ZFP
 * setting. Errors: EINVAL (NULL, level out of range, AFMT_CODEC_ZFP), ECODEC (unknown). */
AFMT_API int afmt_array_opts_set_codec(afmt_array_opts *ao, afmt_codec c, int level);
/* Byte shuffle of the array's chunks (on != 0). Ignored by ZFP. Errors: EINVAL. */
AFMT_API int afmt_array_opts_set_shuffle(afmt_array_opts *ao, int on);
/* ZFP for the array: mode and its parameter (afmt_zfp_mode). Lossy modes need a float32
 * or float64 array, reversible also takes int32 and int64 (checked by afmt_define_with).
 * Each chunk is one ZFP field of its own dimensions (a scalar: 1 value; more than 4
 * dimensions: the leading ones merged into the first of 4). Errors: EINVAL (NULL, unknown
 * mode, accuracy or rate <= 0 or not finite, precision outside 1..64), ECODEC (this
 * library was built without ZFP). */
AFMT_API int afmt_array_opts_set_zfp(afmt_array_opts *ao, afmt_zfp_mode mode, double param);
/* Bit rounding (netCDF-4's BitRound): each float32/float64 value keeps its keepbits most
 * significant mantissa bits, rounded to nearest (ties to even), before shuffle and the
 * lossless codec; the relative error is at most 2^-(keepbits+1). 0 turns it off.
 * Errors: EINVAL (NULL, keepbits < 0 or > 52; with ZFP, or on another dtype: at define). */
AFMT_API int afmt_array_opts_set_bitround(afmt_array_opts *ao, int keepbits);
/* Frees ao (NULL is fine). */
AFMT_API int afmt_array_opts_free(afmt_array_opts *ao);

/* ---- files ----------------------------------------------------------------- */
#define AFMT_RDONLY 0x1
#define AFMT_RDWR   0x2
#define AFMT_TRUNC  0x4
#define AFMT_CREATE 0x8 /* afmt_open with AFMT_RDWR: create the file if it is missing */

/* COLLECTIVE. Creates path (AFMT_EEXIST if it exists, unless flags has AFMT_TRUNC)
 * and writes an empty file (superblock, no layer). opts may be NULL (defaults); it
 * is copied. On failure *f is NULL and afmt_errmsg(NULL) tells why. Like every writable
 * handle it takes the writer lock "<path>.lock" (first, so AFMT_TRUNC never empties a
 * file another writer holds) until afmt_close: AFMT_EBUSY, naming the holder, if a live
 * writer holds it; a lock left by a dead process on this host is broken. A URL path
 * (http://, https://, s3://) is AFMT_EINVAL: remote files are read-only. */
AFMT_API int afmt_create(MPI_Comm comm, const char *path, unsigned flags, const afmt_opts *opts,
                         afmt_file **f);
/* COLLECTIVE. Opens an existing file; mode is AFMT_RDONLY or AFMT_RDWR. comm may have
 * any size, unrelated to the writers'. Rank 0 reads the superblock and footers and
 * broadcasts them. AFMT_RDWR takes the writer lock "<path>.lock" until afmt_close (see
 * afmt_create); AFMT_RDONLY takes none and is never blocked by a writer. With
 * AFMT_RDONLY, path may be a URL: http://, https:// or s3://BUCKET/KEY, read by byte-range
 * requests (libcurl; docs/api.md section 6, "Remote files": hints afmt_http_*, AWS_*
 * variables). Errors: ENOTFOUND, ECORRUPT, EVERSION, EIO (also: the server failed, denied
 * access, timed out, or the remote file changed; the message names the URL and the HTTP
 * status), EINVAL (also: AFMT_RDWR on a URL), EBUSY (RDWR: locked by a live writer; the
 * message names its host, pid, job id and since when).
 * mode AFMT_RDWR | AFMT_CREATE (open-or-create, the restart pattern): the writer lock
 * first, then rank 0 decides once for every rank: an existing file is opened with its
 * layers, a missing one is created empty as afmt_create does (afmt_layers then gives 0).
 * Any other combination with AFMT_CREATE is AFMT_EINVAL, as is AFMT_CREATE on a URL. */
AFMT_API int afmt_open(MPI_Comm comm, const char *path, unsigned mode, const afmt_opts *opts,
                       afmt_file **f);
/* COLLECTIVE. Opens the file read-only as it was right after the commit of layer id
 * layer (afmt_layer_id/`afmt info` list the ids): newer layers are ignored, so older
 * checkpoints can be read until afmt_compact removes them. path may be a URL, as for
 * afmt_open with AFMT_RDONLY. Errors as afmt_open, plus
 * AFMT_ERANGE if no layer of that id is in the file's chain. */
AFMT_API int afmt_open_layer(MPI_Comm comm, const char *path, uint64_t layer, const afmt_opts *opts,
                             afmt_file **f);
/* COLLECTIVE. Makes layer id layer the newest, crash-safe like a commit (one superblock
 * slot write decides): the file then reads as right after that layer's commit, the later
 * layers become dead space (reclaimed by afmt_compact) and the next commit goes on from
 * it with a fresh layer id. Errors: EREADONLY, ESTATE (uncommitted changes on some rank),
 * ERANGE (no such layer in the chain). */
AFMT_API int afmt_rollback(afmt_file *f, uint64_t layer);
/* COLLECTIVE. Commits pending writes first (if any, and the file is writable; then
 * retention runs as after afmt_commit: afmt_opts_set_retention), then frees f, also when
 * that commit or retention fails (its code is returned; its message is in
 * afmt_errmsg(NULL), as f is gone). */
AFMT_API int afmt_close(afmt_file *f);

/* ---- arrays ---------------------------------------------------------------- */

/* COLLECTIVE. Defines an array. chunk NULL: afmt chooses it (docs/api.md afmt_define): an
 * array of at most 4 MiB is one chunk; else, with T = 2 MiB / element size, the last
 * dimensions are taken whole while their product P stays <= T, the next one gets
 * floor(T / P) and the ones before it 1 (chunks of 1 to 2 MiB). dims NULL =
 * "dim0".."dimN-1"; fill NULL = zero (fill points at one element of type t).
 * ndim 0 is a scalar. The array is visible at once and durable at the next commit.
 * Errors: EEXIST (name live), EINVAL (name, dtype, ndim, shape NULL or 0, chunk 0 or >
 * shape, dimension names), EREADONLY. */
AFMT_API int afmt_define(afmt_file *f, const char *name, afmt_dtype t, int ndim,
                         const uint64_t *shape, const uint64_t *chunk, const char *const *dims,
                         const void *fill);
/* COLLECTIVE. afmt_define with the array's own compression (ao; NULL: as afmt_define),
 * recorded in the file. Every rank must pass the same setting. Errors: those of
 * afmt_define, and EINVAL naming the array, the setting and why (a lossy codec on an
 * integer or bool array, bit rounding beyond the dtype's mantissa (23 bits for float32)
 * or with ZFP), ECODEC (ZFP in a library built without it). */
AFMT_API int afmt_define_with(afmt_file *f, const char *name, afmt_dtype t, int ndim,
                              const uint64_t *shape, const uint64_t *chunk, const char *const *dims,
                              const void *fill, const afmt_array_opts *ao);

/* INDEPENDENT. Stages the hyperslab [start, start+count) for the next commit. Any rank
 * may write any region; regions of different ranks in one commit must not overlap
 * (afmt_commit reports it as AFMT_EINVAL naming the array and chunk). buf may be reused
 * when the call returns. Errors: ENOTFOUND, EINVAL (region), EREADONLY, ENOMEM, EIO
 * (spill file). */
AFMT_API int afmt_write(afmt_file *f, const char *name, const uint64_t *start,
                        const uint64_t *count, const void *buf);

/* INDEPENDENT. Reads the hyperslab as of the last commit plus this rank's own staged
 * writes. Never-written elements read as the fill value. Errors: ENOTFOUND, EINVAL,
 * ECORRUPT (damaged block, naming array and chunk), ECODEC, EIO. */
AFMT_API int afmt_read(afmt_file *f, const char *name, const uint64_t *start, const uint64_t *count,
                       void *buf);

/* INDEPENDENT. afmt_write from a box of a larger array in memory: the selection
 * [start, start+count) of the file's array comes from the box [mem_start,
 * mem_start+count) of buf, a C-ordered array of shape mem_shape (same ndim, same dtype):
 * the interior of a ghosted (halo) field, or any sub-box. Rows are gathered straight into
 * the chunks; the memory array is never copied whole. Otherwise as afmt_write. Errors: those
 * of afmt_write, and EINVAL (mem_shape or mem_start NULL, a box outside mem_shape, naming
 * the array, the dimension and the values). */
AFMT_API int afmt_write_box(afmt_file *f, const char *name, const uint64_t *start,
                            const uint64_t *count, const uint64_t *mem_shape,
                            const uint64_t *mem_start, const void *buf);
/* INDEPENDENT. afmt_read into a box of a larger array in memory (as afmt_write_box): only
 * the box [mem_start, mem_start+count) of buf (shape mem_shape) is written; the rest of
 * buf (a ghosted field's halo) is left as it was. Otherwise as afmt_read. */
AFMT_API int afmt_read_box(afmt_file *f, const char *name, const uint64_t *start,
                           const uint64_t *count, const uint64_t *mem_shape,
                           const uint64_t *mem_start, void *buf);

/* COLLECTIVE. afmt_read of each rank's own hyperslab (the same arguments; the selections
 * may overlap, differ or be empty), sharing the index reads: the ranks of a node
 * (MPI_COMM_TYPE_SHARED) find which index segments their selections need, and each
 * segment is read once per node and broadcast to the node's ranks that need it, instead
 * of once per rank; then each rank reads its data blocks itself, as afmt_read does. Worth
 * it when many ranks read from a reopened file at once (a restart). A rank with nothing
 * to read passes a count with a 0 extent (start and buf are then not used). Every rank
 * returns the same code: ENOTFOUND, EINVAL (bad selection or buffer on any rank),
 * ECORRUPT (a damaged index segment, naming its layer and segment, or block), ECODEC,
 * EIO, ENOMEM, EMPI. */
AFMT_API int afmt_read_all(afmt_file *f, const char *name, const uint64_t *start,
                           const uint64_t *count, void *buf);
/* INDEPENDENT. afmt_read into a buffer of dtype t (as HDF5's memory type): buf holds
 * elements of t. t the array's dtype: exactly afmt_read, no copy. Otherwise each element
 * is converted (docs/api.md 8, "Type conversion"): integers exactly when in range, floats
 * to integers truncated toward zero, integers to floats rounded to nearest, float64 to
 * float32 rounded to nearest (NaN and infinities kept), anything to BOOL as nonzero = 1.
 * The stored elements are read in pieces of at most 16 MiB and converted. Errors: those
 * of afmt_read; EINVAL (t not a dtype); ERANGE: an element does not fit t (NaN or an
 * infinity to an integer, a value outside t's range), the message naming the array, the
 * element's coordinates, its value and t's range (buf is then partly written). */
AFMT_API int afmt_read_as(afmt_file *f, const char *name, const uint64_t *start,
                          const uint64_t *count, afmt_dtype t, void *buf);

/* COLLECTIVE. Makes everything staged on every rank durable as one new layer,
 * atomically: after a crash the file holds all of this commit or none of it. Every rank
 * returns the same code. Nothing staged: no layer is written, AFMT_OK. On failure the
 * file is as after the previous commit and the staged changes are kept. With retention
 * set (afmt_opts_set_retention) the compaction it calls for runs after the layer is
 * durable; if that fails, the commit stands, the file is as the commit left it and the
 * compaction's code is returned (the message says so). */
AFMT_API int afmt_commit(afmt_file *f);

/* COLLECTIVE. Starts a commit and returns as soon as the application may go on. Here, on
 * the caller's thread: the ranks' agreement, the merge of chunks written by several ranks
 * and this rank's records. The rest runs on a helper thread of this rank, in one of two
 * modes (agreed over the ranks). Background mode (MPI initialized with
 * MPI_THREAD_MULTIPLE on every rank, unless the hint afmt_async_commit=foreground): the
 * helpers seal the blocks (their compression runs on the handle's worker threads), agree
 * each rank's offset, the segments and the footer over the handle's own duplicated
 * communicators, write and sync, and rank 0's writes the superblock slot once every rank's
 * data is synced. Start mode (any other thread level): the sealing, offsets, segments and
 * footer run here, the helper only writes and syncs through the file system's POSIX
 * interface with no MPI call, and afmt_commit_wait writes the slot. Either way the layer
 * exists only once the slot is written after every rank's data is durable; a crash before
 * leaves the file as the previous commit left it, and the file is byte for byte what
 * afmt_commit gives. Until afmt_commit_wait, afmt_write stages into a second allocator (as
 * much memory again as the first, afmt_opts_set_mem_budget) and afmt_read sees the
 * committed layers plus this rank's writes, those of the commit in flight included (in the
 * background mode it first waits for the helper's agreement). Every collective call on
 * the handle (afmt_define, afmt_delete, afmt_set_attr, afmt_commit, afmt_commit_start,
 * afmt_discard, afmt_rollback, afmt_compact, afmt_read_all, afmt_close) first finishes a
 * commit in flight, as afmt_commit_wait does, and returns its error if it failed (then
 * the call itself did nothing). The memory backend and the hint
 * afmt_data_aggregation=node (whose data moves over MPI) commit synchronously here. Every
 * rank returns the same code; a failure here is afmt_commit's (the file is as after the
 * previous commit, the staged changes are kept). Nothing staged: AFMT_OK, nothing starts. */
AFMT_API int afmt_commit_start(afmt_file *f);
/* COLLECTIVE. Waits for the commit afmt_commit_start started (none: AFMT_OK at once) and
 * makes it durable: every rank's helper is joined, the ranks agree, rank 0 writes and
 * syncs the superblock slot (start mode; in the background mode the helpers did), and the
 * handle takes the new layer. Every rank returns the same code. A failure in the
 * background (a write or sync failing, ENOSPC) is reported
 * on every rank with a message naming the layer and the rank it happened on; the file
 * stays as the previous commit left it, and the handle drops the failed commit's changes
 * and the writes staged since it started, as afmt_discard does (write the step again).
 * Then retention runs as after afmt_commit (afmt_opts_set_retention), unless a rank has
 * staged changes since the start (the next commit's check covers them).
 * Errors: EIO, ENOMEM, EMPI, and afmt_commit's. */
AFMT_API int afmt_commit_wait(afmt_file *f);

/* COLLECTIVE. Drops everything staged since the last commit on every rank (writes,
 * defines, deletes, attributes): the handle reads as the last commit again. For a failed
 * step that must not become a checkpoint (afmt_close would commit it). EREADONLY. */
AFMT_API int afmt_discard(afmt_file *f);

/* COLLECTIVE. Deletes an array: it disappears at once from this handle, the deletion is
 * durable at the next commit, its space is reclaimed by afmt_compact. Its staged writes
 * are dropped. Errors: ENOTFOUND, EREADONLY. */
AFMT_API int afmt_delete(afmt_file *f, const char *name);
/* COLLECTIVE. Commits pending writes, rewrites all live data as one layer into a new file
 * next to path (an unpredictable name, created exclusively; it gets path's mode and
 * group) and renames it over path; afterwards afmt_layers is 1. A crash at any moment
 * leaves either the old or the new file whole. */
AFMT_API int afmt_compact(afmt_file *f);
/* COLLECTIVE. Checkpoint retention: afmt_compact that keeps the keep newest layers as
 * they were (same ids, times, contents and provenance: afmt_open_layer and afmt_rollback
 * still reach them) and folds all older ones into one BASE layer under the id of the
 * newest layer folded (it reads as that layer did). Afterwards afmt_layers is keep + 1,
 * or the number of layers before if that is smaller (the oldest is always folded, under
 * its own id). keep 0 is afmt_compact. Crash-safe and atomic like afmt_compact: a failure
 * leaves the file as it was. Errors as afmt_compact. */
AFMT_API int afmt_compact_keep(afmt_file *f, uint64_t keep);

/* COLLECTIVE. Sets attribute key of array (NULL = of the file) to n values of type t
 * (a string is n bytes of AFMT_UINT8). Visible at once, durable at the next commit. */
AFMT_API int afmt_set_attr(afmt_file *f, const char *array, const char *key, afmt_dtype t,
                           uint64_t n, const void *values);
/* INDEPENDENT. *n in: capacity of values in elements; out: number stored (also when the
 * capacity is too small: then AFMT_ERANGE, "N values do not fit in a capacity of M").
 * values holds elements of t; a t other than the stored dtype converts each value
 * (docs/api.md 8, "Type conversion"; a string is UINT8 bytes like any other). ERANGE also when a
 * value does not fit t (the message names the array, the key, the value's index, the value and t's
 * range). EINVAL (t not a dtype), ENOTFOUND. */
AFMT_API int afmt_get_attr(afmt_file *f, const char *array, const char *key, afmt_dtype t,
                           uint64_t *n, void *values);

/* The descriptor of an array (afmt_info_at, afmt_inquire). Sized by the limits, plus
 * reserved room: fields added later take from reserved, so the size and the offsets of the
 * fields below stay the same within a MAJOR.MINOR (the library zeroes reserved). */
typedef struct {
    char name[AFMT_MAX_NAME + 1]; /* NUL-terminated */
    afmt_dtype dtype;
    int ndim;
    uint64_t shape[AFMT_MAX_NDIM], chunk[AFMT_MAX_NDIM]; /* [0, ndim) are set */
    char dims[AFMT_MAX_NDIM][AFMT_MAX_DIMNAME + 1];      /* NUL-terminated, [0, ndim) */
    uint64_t reserved[16];
} afmt_info;

/* INDEPENDENT. Number of live arrays. */
AFMT_API int afmt_count(afmt_file *f, int *n);
/* INDEPENDENT. Live array number index (0-based, in definition order). ERANGE. */
AFMT_API int afmt_info_at(afmt_file *f, int index, afmt_info *info);
/* INDEPENDENT. Descriptor of a live array; ENOTFOUND if absent. */
AFMT_API int afmt_inquire(afmt_file *f, const char *name, afmt_info *info);

/* An array's compression as the file records it (afmt_inquire_codec). */
typedef struct {
    uint32_t codec;         /* afmt_codec or a user id; UINT32_MAX: the writer's default
                             * (an array defined with afmt_define: each block says) */
    int level;              /* the codec's level (0: its default) */
    int shuffle;            /* 1 if the chunks are byte-shuffled */
    afmt_zfp_mode zfp_mode; /* with AFMT_CODEC_ZFP, else 0 */
    double zfp_param;       /* the mode's parameter */
    int bitround;           /* mantissa bits kept, 0: no bit rounding */
    double abs_bound;       /* the absolute error bound (ZFP accuracy), else 0 */
    double rel_bound;       /* the relative error bound (bit rounding), else 0 */
    uint64_t reserved[8];
} afmt_array_codec;
/* INDEPENDENT. The compression of a live array. Errors: ENOTFOUND, EINVAL. */
AFMT_API int afmt_inquire_codec(afmt_file *f, const char *name, afmt_array_codec *out);
/* INDEPENDENT. Number of committed layers (layers visible to this handle). */
AFMT_API int afmt_layers(afmt_file *f, uint64_t *n);
/* INDEPENDENT. The id of committed layer number index (0 = oldest, afmt_layers - 1 =
 * newest) and its commit time in Unix nanoseconds (either output may be NULL). ERANGE. */
AFMT_API int afmt_layer_id(afmt_file *f, uint64_t index, uint64_t *id, uint64_t *time_ns);

/* INDEPENDENT. Layer provenance: attribute key of committed layer number index (0 =
 * oldest), like afmt_get_attr. Every commit records, on its own: "host" (rank 0's host
 * name), "nranks" (INT64, the writer's rank count), "nodes" (INT64, the nodes whose
 * leaders wrote the layer's index segments), "time_ns" (UINT64), and when set in
 * rank 0's environment "slurm_job_id", "slurm_array_task_id", "slurm_job_num_nodes"
 * (strings, UINT8). ERANGE (index; capacity; a value that does not fit t), ENOTFOUND,
 * EINVAL (t not a dtype). */
AFMT_API int afmt_layer_attr(afmt_file *f, uint64_t index, const char *key, afmt_dtype t,
                             uint64_t *n, void *values);

/* ---- checkpoint on a signal ------------------------------------------------ */

/* INDEPENDENT, process-wide. Installs a handler for signum (e.g. SIGUSR1, which Slurm
 * sends before the time limit with --signal) that only sets a flag, and clears the flag.
 * Errors: EINVAL (SIGKILL, SIGSTOP, invalid). */
AFMT_API int afmt_signal_arm(int signum);
/* COLLECTIVE over comm. *pending = 1 on every rank if the armed signal reached ANY rank
 * (a logical OR), so all ranks checkpoint together. The flag stays set (the job is about
 * to checkpoint and leave); afmt_signal_clear resets it. Errors: EINVAL, EMPI. */
AFMT_API int afmt_signal_pending(MPI_Comm comm, int *pending);
/* INDEPENDENT. Resets this process's flag. */
AFMT_API int afmt_signal_clear(void);

/* ---- codecs ---------------------------------------------------------------- */

/* The layout version of afmt_codec_desc that this header describes. */
#define AFMT_CODEC_DESC_VERSION 1

/* A user codec. version must be AFMT_CODEC_DESC_VERSION (the layout the caller was
 * compiled with; afmt_codec_register refuses any other). compress writes at most dst_cap
 * bytes and sets *dst_len; it returns 0, or nonzero when it fails or the output does not
 * fit (the block is then stored raw). decompress must produce exactly dst_len bytes and
 * return 0, nonzero otherwise. bound returns the largest output compress can make for
 * src_len bytes. */
typedef struct {
    uint32_t version; /* AFMT_CODEC_DESC_VERSION */
    uint32_t id;      /* >= 256; stable on disk */
    const char *name;
    size_t (*bound)(size_t src_len);
    int (*compress)(const void *src, size_t src_len, void *dst, size_t dst_cap, size_t *dst_len,
                    int level);
    int (*decompress)(const void *src, size_t src_len, void *dst, size_t dst_len);
} afmt_codec_desc;

/* INDEPENDENT, process-wide (like an HDF5 filter). Registers a codec (copied) so that
 * files may be written with afmt_opts_set_codec(o, id, level) and read. A file that uses
 * a codec this process lacks still opens; reading such a block returns AFMT_ECODEC
 * naming the id. Errors: EINVAL (version is not AFMT_CODEC_DESC_VERSION, id < 256, NULL
 * members), EEXIST (id taken), ENOMEM (also: 64 codecs registered already). */
AFMT_API int afmt_codec_register(const afmt_codec_desc *codec);

/* ---- messages and version (all INDEPENDENT, never fail) ------------------------ */

/* A fixed text for code ("file is damaged" for AFMT_ECORRUPT); "unknown error code" for a
 * value that is no code (> AFMT_OK or < AFMT_E_LAST). */
AFMT_API const char *afmt_strerror(int code);
/* The name of code's macro ("AFMT_ECORRUPT", "AFMT_OK"), for logs and bindings;
 * "unknown" for a value that is no code. */
AFMT_API const char *afmt_err_name(int code);
/* The detailed message of the last failure on f; f NULL: of the last failure on this
 * thread (each thread has its own). Empty ("") before any failure. */
AFMT_API const char *afmt_errmsg(const afmt_file *f);
/* The library's version as "MAJOR.MINOR.PATCH" (AFMT_VERSION_STRING of its build). */
AFMT_API const char *afmt_version(void);
/* The library's version as MAJOR * 10000 + MINOR * 100 + PATCH (AFMT_VERSION_NUMBER of
 * its build): compare it with the AFMT_VERSION_NUMBER a caller was compiled with. */
AFMT_API unsigned afmt_version_number(void);

#ifdef __cplusplus
}
#endif
#endif /* AFMT_H */
