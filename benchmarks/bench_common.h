/* bench_common.h - what the afmt-bench driver (afmt_bench.c) and its backends share:
 * the description of one workload (arrays, this rank's write region, this reader's read
 * region, the data), the per-repetition metrics a backend fills in, and small helpers
 * (timers, n-d box copies, byte shuffle, LZ4 of one chunk).
 *
 * Conventions: every array is C-ordered, at most 3-D; each writer rank owns one slab
 * along dim 0 (write region), each reader one slab of a possibly different partition
 * (read region, N-to-M reads). Times are seconds, the largest over the ranks that take
 * part; sizes are bytes. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_MAXDIM 3

typedef enum { DT_F32, DT_F64 } bench_dtype;

typedef struct {
    char name[32];
    int ndim;
    bench_dtype dt;
    size_t es;                     /* element size in bytes */
    uint64_t gshape[BENCH_MAXDIM]; /* global shape */
    uint64_t chunk[BENCH_MAXDIM];  /* chunk shape (afmt and HDF5 use the same) */
    uint64_t wstart[BENCH_MAXDIM]; /* this writer's region */
    uint64_t wcount[BENCH_MAXDIM];
    uint64_t rstart[BENCH_MAXDIM]; /* this reader's region (readers only) */
    uint64_t rcount[BENCH_MAXDIM];
    uint64_t file_off;       /* raw (MPI-IO) layout: offset of the array in a step */
    void *data;              /* this writer's data, wcount elements */
    uint64_t wbytes, rbytes; /* bytes of the write / read region */
} bench_array;

/* Metrics of one repetition, each the max over ranks (-1 = not measured). */
enum {
    M_W_TOTAL,  /* create/open .. close of the write phase, all steps */
    M_W_CREATE, /* file create + array definitions (afmt: define, HDF5: H5Fcreate) */
    M_W_WRITE,  /* afmt_write / H5Dcreate+H5Dwrite / MPI_File_write_at_all */
    M_W_COMMIT, /* afmt_commit */
    M_W_CLOSE,  /* close (HDF5: H5Fflush + H5Fclose, MPI-IO: sync + close) */
    M_R_TOTAL,
    M_R_OPEN,
    M_R_READ,
    M_R_CLOSE,
    M_C_CODEC,    /* codec alone: gather + shuffle + compress of every chunk */
    M_C_GATHER,   /*   of which: gathering a chunk's box into one buffer (3-D) */
    M_C_SHUFFLE,  /*  of which: byte shuffle */
    M_C_COMPRESS, /* of which: the codec */
    M_C_CWRITE,   /* codec alone: write of the compressed bytes + sync + close (independent
                   * MPI_File_write_at like afmt's default; -C: collective) */
    M_C_CREAD,    /* codec alone: read of the compressed bytes */
    M_C_DECODE,   /* codec alone: decompress + unshuffle + scatter */
    /* library-internal commit breakdown (afmt__commit_stats, summed over the commits) */
    M_S_COMPRESS,  /* sealing blocks: compression + checksum, in afmt_write and commit */
    M_S_EXCHANGE,  /* commit: resolving chunks shared between ranks */
    M_S_DATAWRITE, /* commit: the data block write (+ agreement) */
    M_S_GATHER,    /* commit: block/chunk metadata to rank 0 */
    M_S_FOOTER,    /* commit: footer build + write (rank 0) */
    M_S_SYNC,      /* commit: both syncs and the superblock slot write */
    M_S_OTHER,     /* commit: the rest (last seal, offsets, sharing the footer, index) */
    M_RSS0,        /* MiB resident before the write phase (after clear_refs) */
    M_HWM,         /* MiB peak resident during the write phase */
    M_RSSR0,       /* MiB resident before the read phase */
    M_HWMR,        /* MiB peak resident during the read phase */
    M_COUNT
};

typedef struct {
    double m[M_COUNT];
    uint64_t stored_bytes; /* file size after the write phase (codec: compressed bytes) */
    int verified;          /* 1 ok, 0 mismatch, -1 not checked */
} bench_rep;

/* What a backend is asked to do. */
typedef struct {
    const char *backend; /* "afmt", "hdf5", "mpiio", "codec" */
    int codec;           /* 0 none, 1 lz4, 2 zstd */
    int level;
    int shuffle;         /* applied only with a codec */
    uint64_t block_size; /* afmt */
    uint64_t mem_budget; /* afmt */
    int collective;      /* afmt: afmt_collective_write hint; codec: collective I/O */
    int steps;
    char path[4096];
    const char *spill_dir;
    int threads;    /* afmt: afmt_opts_set_threads, or -1 for the library's default */
    int durability; /* afmt: afmt_opts_set_durability (0 full, 1 data, 2 none), or -1 */
} bench_case;

typedef struct {
    MPI_Comm world; /* all ranks (writers) */
    MPI_Comm rcomm; /* readers (MPI_COMM_NULL on ranks that do not read) */
    int rank, size, rrank, rsize;
    int narr;
    bench_array *arr;
    uint64_t raw_rank;   /* bytes one rank writes per step */
    uint64_t raw_total;  /* bytes all ranks write per step */
    uint64_t step_bytes; /* raw layout: bytes of one step in a raw file */
} bench_work;

/* ---- helpers (afmt_bench.c) ---- */
double bench_now(void);
/* Max over comm of v (every rank gets it). */
double bench_max(MPI_Comm comm, double v);
/* Copies a box of count elements from src (shape sshape, box at sstart) into dst (shape
 * dshape, box at dstart). */
void bench_box_copy(int nd, size_t es, const uint64_t *count, void *dst, const uint64_t *dshape,
                    const uint64_t *dstart, const void *src, const uint64_t *sshape,
                    const uint64_t *sstart);
/* Order-independent, position-dependent checksum of a region's data. */
uint64_t bench_region_sum(const bench_array *a, int array_index, const uint64_t *start,
                          const uint64_t *count, const void *buf);
/* Prints a message with the rank and aborts the job. */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---- HDF5 backend (bench_hdf5.c; absent when built without parallel HDF5) ---- */
int bench_hdf5_available(void);
/* Write phase and read phase; fill the M_W_* and M_R_* metrics. The read phase runs on
 * the readers (w->rcomm) into bufs[a] (rcount elements each). */
void bench_hdf5_write(const bench_case *c, bench_work *w, bench_rep *r);
void bench_hdf5_read(const bench_case *c, bench_work *w, bench_rep *r, void **bufs);

#endif
