/* storage.h - the storage backend interface: where a file's bytes live.
 * Backends: MPI-IO (default, parallel), POSIX (serial tools, one process), memory (unit
 * tests and fuzzing; named images in this process), HTTP (read-only: http://, https://
 * and s3:// URLs, byte-range requests; storage_http.c). A backend reports failures as
 * AFMT_EIO with a message naming the operation, offset, length, path and errno text in
 * st->errmsg. Lengths are u64: backends split requests that exceed an int count. */
#ifndef AFMT_STORAGE_H
#define AFMT_STORAGE_H

#include <mpi.h>
#include <stdint.h>

#include "afmt.h"
#include "common/error.h"

typedef struct afmt_storage afmt_storage;

typedef struct {
    /* INDEPENDENT. Reads len bytes at off; reading past the end is AFMT_EIO (short). */
    int (*read_at)(afmt_storage *st, uint64_t off, void *buf, uint64_t len);
    /* INDEPENDENT. Writes len bytes at off. */
    int (*write_at)(afmt_storage *st, uint64_t off, const void *buf, uint64_t len);
    /* COLLECTIVE over the storage's communicator (a rank may pass len 0). Backends
     * without collective I/O implement it as write_at. */
    int (*write_at_all)(afmt_storage *st, uint64_t off, const void *buf, uint64_t len);
    /* COLLECTIVE for MPI-IO (MPI_File_sync); makes written bytes durable. */
    int (*sync)(afmt_storage *st);
    /* INDEPENDENT. Current size in bytes. */
    int (*size)(afmt_storage *st, uint64_t *out);
    /* COLLECTIVE for MPI-IO (MPI_File_set_size). */
    int (*truncate)(afmt_storage *st, uint64_t size);
    /* COLLECTIVE for MPI-IO. Closes and frees st (also on error). */
    int (*close)(afmt_storage *st);
} afmt_storage_ops;

typedef enum {
    AFMT_STORAGE_MPIIO = 0,
    AFMT_STORAGE_POSIX = 1,
    AFMT_STORAGE_MEMORY = 2,
    AFMT_STORAGE_HTTP = 3 /* chosen by the path (afmt__storage_kind_of), never by options */
} afmt_storage_kind;

/* The kind a path is opened with: AFMT_STORAGE_HTTP for a URL (http.h afmt__http_is_url),
 * else the configured one. */
afmt_storage_kind afmt__storage_kind_of(const char *path, afmt_storage_kind configured);

struct afmt_storage {
    const afmt_storage_ops *ops;
    afmt_storage_kind kind;
    MPI_Comm comm; /* the communicator of collective calls (a dup, owned) */
    char *path;
    char errmsg[AFMT_ERRMSG_MAX];
    void *impl; /* backend state */
};

/* Open flags. */
#define AFMT_ST_READ   0x1
#define AFMT_ST_WRITE  0x2 /* read and write */
#define AFMT_ST_CREATE 0x4 /* create if missing */
#define AFMT_ST_EXCL   0x8 /* with CREATE: fail with AFMT_EEXIST if it exists */

/* COLLECTIVE over comm (MPI-IO; POSIX and memory need comm of size 1 or tolerate any
 * size by letting each rank open the same path). info may be MPI_INFO_NULL. On failure
 * returns the code and writes a message into errmsg (AFMT_ERRMSG_MAX bytes):
 * AFMT_ENOTFOUND if the file is missing without CREATE, AFMT_EEXIST with EXCL,
 * AFMT_EINVAL if path names anything but a regular file (a directory, a FIFO, a device,
 * a socket: opening a FIFO would wait for a writer forever); every rank returns the same
 * code. CREATE implies WRITE. The memory kind also works without
 * MPI_Init (fuzzers): then comm is ignored and st->comm is MPI_COMM_NULL. */
int afmt__storage_open(afmt_storage_kind kind, MPI_Comm comm, const char *path, unsigned flags,
                       MPI_Info info, afmt_storage **out, char *errmsg);

/* ---- paths ----
 * A handle resolves its path once, at create/open, and every later path operation (the
 * storage opens, the writer lock, compaction's new file and rename) uses the result: a
 * symbolic link, a relative path after the application's chdir, "." and ".." then all
 * name the same file for the handle's whole life. The memory kind takes names as given. */

/* INDEPENDENT. The absolute path of the file path names, every symbolic link resolved:
 * realpath(path) for an existing file; for a missing one, realpath of its directory plus
 * "/" and its name. When neither resolves (a missing directory, no search permission) the
 * path as given, so that the open which follows reports its own error. With create set,
 * a dangling symbolic link (path is a link to nothing) is AFMT_EINVAL: creating through it
 * would make a file whose name afmt cannot resolve later. AFMT_OK (*out malloc'd),
 * AFMT_EINVAL or AFMT_ENOMEM (message in errmsg, no function prefix). */
int afmt__storage_resolve_path(const char *path, int create, char **out, char *errmsg);
/* COLLECTIVE over comm: afmt__storage_resolve_path on rank 0, its result (or its error and
 * message) on every rank; the memory kind: a copy of path. The same code on every rank. */
int afmt__storage_resolve(afmt_storage_kind kind, MPI_Comm comm, const char *path, int create,
                          char **out, char *errmsg);

/* A temporary file next to another one: compaction's new file. */
typedef struct {
    char *path; /* "<near>.compact-XXXXXXXXXXXX" (12 random letters and digits), malloc'd */
    int fd;     /* rank 0, file kinds: the descriptor it was created with; else -1 */
    int made;   /* 1 while this rank has a file to remove in afmt__storage_temp_drop */
} afmt_storage_temp;
#define AFMT_STORAGE_TEMP_INIT                                                                     \
    { NULL, -1, 0 }

/* COLLECTIVE over comm. Creates an empty file in near's directory under a name nobody can
 * predict, exclusively: rank 0 opens it with O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600 (so
 * a link or file planted at any name is never followed nor reused, and nobody else can
 * read it), and every rank gets its name, to open it without AFMT_ST_CREATE. The memory
 * kind: a fresh image of a new name on every rank. Before creating it, rank 0 removes the
 * leftovers of interrupted compactions of near: regular files of this user named
 * "<near>.compact-XXXXXXXXXXXX" or "<near>.compact" (the name older versions used);
 * anything else (another user's file, a link) is left alone. The same code on every rank:
 * AFMT_OK, AFMT_EIO, AFMT_ENOMEM, AFMT_EMPI. */
int afmt__storage_mktemp(afmt_storage_kind kind, MPI_Comm comm, const char *near,
                         afmt_storage_temp *t, char *errmsg);
/* INDEPENDENT (rank 0). Puts the temporary file in target's place: gives it target's
 * permission bits and group (fchmod, fchown of the group only where it differs; if the
 * group cannot be set (EPERM: the caller is not a member of target's group), nothing is
 * renamed and the call fails with AFMT_EIO: the new file must not change who may read
 * the data), then renames it over target and syncs the directory. The owner becomes the
 * caller. AFMT_OK, AFMT_EIO, AFMT_ENOTFOUND. */
int afmt__storage_replace(afmt_storage_kind kind, afmt_storage_temp *t, const char *target,
                          char *errmsg);
/* LOCAL. Closes t's descriptor, removes the file if this rank made it and it was not put
 * in place, frees the name; t is then AFMT_STORAGE_TEMP_INIT. */
void afmt__storage_temp_drop(afmt_storage_kind kind, afmt_storage_temp *t);
#ifdef AFMT_TESTING
/* TEST ONLY: the next temporary names try suffix first (12 characters), then random ones;
 * NULL: random ones only. Not thread-safe. */
void afmt__storage_set_temp_suffix(const char *suffix);
#endif

/* Path operations, INDEPENDENT (call from one rank): rename from over to (atomic where
 * the OS is; the parent directory is synced after), and remove (missing is fine). */
int afmt__storage_rename(afmt_storage_kind kind, const char *from, const char *to, char *errmsg);
int afmt__storage_remove(afmt_storage_kind kind, const char *path, char *errmsg);
/* INDEPENDENT. 1 if path exists, 0 if not. */
int afmt__storage_exists(afmt_storage_kind kind, const char *path);

#ifdef AFMT_TESTING /* the test hooks: only in the library the tests link (afmt_testing) */
/* Memory backend only: a copy of the named image (malloc'd, caller frees), so tests can
 * damage files and fuzzers can load them. AFMT_ENOTFOUND if absent. */
int afmt__storage_mem_get(const char *path, uint8_t **data, uint64_t *len);
/* Memory backend only: sets the named image to a copy of data (creates it). */
int afmt__storage_mem_put(const char *path, const uint8_t *data, uint64_t len);

/* TEST ONLY: the largest piece (bytes) one backend call moves; longer reads and writes
 * loop. Default (and after 0) 1 GiB; tests lower it to exercise the splitting. Not
 * thread-safe: set it while no I/O is in flight. */
void afmt__storage_set_max_piece(uint64_t bytes);

/* ---- TEST ONLY: fault injection (storage_fault.c) ----
 * While a fault spec is set, afmt__storage_open wraps the storage it opens in a fault
 * backend. A wrapper counts the calls of each operation on this process (over all wrapped
 * storages, from the last afmt__storage_set_fault) and makes the nth call of spec->op fail
 * with errno spec->err: the message names the operation, offset, length, path and errno
 * text ("... (injected fault)") and the code is AFMT_EIO, like a real backend failure.
 *  - mode FAIL: the call moves no bytes. The collective ones (write_at_all, sync, truncate)
 *    still take part in their collective (write_at_all with 0 bytes, truncate to the
 *    current size, sync really syncs), so the other ranks never hang.
 *  - mode SHORT: a read or write moves the first half of its bytes, then fails.
 *  - err EINTR: one retryable interruption: the wrapper retries (the rest of) the call at
 *    once, so the call succeeds; it still counts as an injected fault.
 * Storages opened while no spec is set are not wrapped; wrappers pass calls through while
 * no spec is set. Not thread-safe against I/O in flight: set it between calls. */
typedef enum {
    AFMT_FAULT_READ = 0,      /* read_at */
    AFMT_FAULT_WRITE = 1,     /* write_at */
    AFMT_FAULT_WRITE_ALL = 2, /* write_at_all */
    AFMT_FAULT_SYNC = 3,
    AFMT_FAULT_SIZE = 4,
    AFMT_FAULT_TRUNCATE = 5,
    AFMT_FAULT_DIRSYNC = 6 /* the directory sync after afmt__storage_rename or _replace: the
                            * rename is done, then it fails (whatever the storage) */
} afmt_fault_op;
#define AFMT_FAULT_NOPS 7

typedef enum { AFMT_FAULT_FAIL = 0, AFMT_FAULT_SHORT = 1 } afmt_fault_mode;

typedef struct {
    afmt_fault_op op;
    uint64_t nth; /* 1 = the first call of op after this spec was set; 0 = only count */
    int err;      /* errno of the failure: ENOSPC, EIO, EINTR, ... (0 = EIO) */
    afmt_fault_mode mode;
    int rank; /* -1: any process; else only the process of this MPI_COMM_WORLD rank */
} afmt_storage_fault;

/* Sets (a copy of) spec process-wide and resets the call counters; NULL clears it.
 * Returns AFMT_OK, or AFMT_EINVAL for an unknown op or mode. */
int afmt__storage_set_fault(const afmt_storage_fault *spec);
/* Calls of op that wrapped storages saw on this process since the spec was set. */
uint64_t afmt__storage_fault_calls(afmt_fault_op op);
/* Faults injected on this process since it started (never reset). */
uint64_t afmt__storage_fault_injected(void);
#endif /* AFMT_TESTING */

/* ---- backend-private: used by storage*.c only ---- */

/* The current piece limit (always >= 1 and <= INT_MAX). */
uint64_t afmt__storage_max_piece(void);
/* Fill in st->ops and st->impl of a storage whose kind, comm (dup) and path are set.
 * The file kinds run after afmt__storage_open's existence check on rank 0. On failure
 * they leave st->impl NULL and write errmsg; the MPI-IO one returns the same code on
 * every rank. */
int afmt__storage_mpiio_open(afmt_storage *st, unsigned flags, MPI_Info info, char *errmsg);
int afmt__storage_posix_open(afmt_storage *st, unsigned flags, char *errmsg);
int afmt__storage_mem_open(afmt_storage *st, unsigned flags, char *errmsg);
/* Collective over st->comm: rank 0 makes the first request and tells the others. Read
 * only: AFMT_ST_WRITE is AFMT_EINVAL. */
int afmt__storage_http_open(afmt_storage *st, unsigned flags, MPI_Info info, char *errmsg);
/* Frees what afmt__storage_open allocated: the comm dup (if any), path and st itself. */
void afmt__storage_free(afmt_storage *st);
/* The memory backend's path operations (on its registry). */
int afmt__storage_mem_rename(const char *from, const char *to, char *errmsg);
int afmt__storage_mem_remove(const char *path, char *errmsg);
int afmt__storage_mem_exists(const char *path);
/* A new empty image named path, exclusively: AFMT_OK, AFMT_EEXIST, AFMT_ENOMEM. */
int afmt__storage_mem_create(const char *path, char *errmsg);
#ifdef AFMT_TESTING
/* Fault injection: whether a spec is set; the wrapper's state (malloc'd, NULL when out of
 * memory), allocated before the backend opens; wrapping an opened storage in it (takes
 * w); freeing an unused one. */
int afmt__storage_fault_active(void);
void *afmt__storage_fault_alloc(void);
void afmt__storage_fault_wrap(afmt_storage *st, void *w);
void afmt__storage_fault_free(void *w);
/* Counts a directory sync after a rename of from to to; AFMT_EIO with a message in errmsg
 * if it is the one to fail, else AFMT_OK. */
int afmt__storage_fault_dirsync(const char *to, char *errmsg);
#else
/* No fault injection outside the test build: the calls fold away. */
static inline int afmt__storage_fault_active(void) {
    return 0;
}
static inline void *afmt__storage_fault_alloc(void) {
    return NULL;
}
static inline void afmt__storage_fault_wrap(afmt_storage *st, void *w) {
    (void)st;
    (void)w;
}
static inline void afmt__storage_fault_free(void *w) {
    (void)w;
}
static inline int afmt__storage_fault_dirsync(const char *to, char *errmsg) {
    (void)to;
    (void)errmsg;
    return AFMT_OK;
}
#endif

#endif
