/* storage.h - the storage backend interface: where a file's bytes live.
 * Backends: MPI-IO (default, parallel), POSIX (serial tools, one process), memory (unit
 * tests and fuzzing; named images in this process). A backend reports failures as
 * AFMT_EIO with a message naming the operation, offset, length, path and errno text in
 * st->errmsg. Lengths are u64: backends split requests that exceed an int count. */
#ifndef AFMT_STORAGE_H
#define AFMT_STORAGE_H

#include <mpi.h>
#include <stdint.h>

#include "afmt.h"
#include "error.h"

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
    AFMT_STORAGE_MEMORY = 2
} afmt_storage_kind;

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
 * AFMT_ENOTFOUND if the file is missing without CREATE, AFMT_EEXIST with EXCL; every
 * rank returns the same code. CREATE implies WRITE. The memory kind also works without
 * MPI_Init (fuzzers): then comm is ignored and st->comm is MPI_COMM_NULL. */
int afmt_storage_open(afmt_storage_kind kind, MPI_Comm comm, const char *path, unsigned flags,
                      MPI_Info info, afmt_storage **out, char *errmsg);

/* Path operations, INDEPENDENT (call from one rank): rename from over to (atomic where
 * the OS is; the parent directory is synced after), and remove (missing is fine). */
int afmt_storage_rename(afmt_storage_kind kind, const char *from, const char *to, char *errmsg);
int afmt_storage_remove(afmt_storage_kind kind, const char *path, char *errmsg);
/* INDEPENDENT. 1 if path exists, 0 if not. */
int afmt_storage_exists(afmt_storage_kind kind, const char *path);

/* Memory backend only: a copy of the named image (malloc'd, caller frees), so tests can
 * damage files and fuzzers can load them. AFMT_ENOTFOUND if absent. */
int afmt_storage_mem_get(const char *path, uint8_t **data, uint64_t *len);
/* Memory backend only: sets the named image to a copy of data (creates it). */
int afmt_storage_mem_put(const char *path, const uint8_t *data, uint64_t len);

/* TEST ONLY: the largest piece (bytes) one backend call moves; longer reads and writes
 * loop. Default (and after 0) 1 GiB; tests lower it to exercise the splitting. Not
 * thread-safe: set it while no I/O is in flight. */
void afmt_storage_set_max_piece(uint64_t bytes);

/* ---- backend-private: used by storage*.c only ---- */

/* The current piece limit (always >= 1 and <= INT_MAX). */
uint64_t afmt_storage_max_piece_(void);
/* Fill in st->ops and st->impl of a storage whose kind, comm (dup) and path are set.
 * The file kinds run after afmt_storage_open's existence check on rank 0. On failure
 * they leave st->impl NULL and write errmsg; the MPI-IO one returns the same code on
 * every rank. */
int afmt_storage_mpiio_open_(afmt_storage *st, unsigned flags, MPI_Info info, char *errmsg);
int afmt_storage_posix_open_(afmt_storage *st, unsigned flags, char *errmsg);
int afmt_storage_mem_open_(afmt_storage *st, unsigned flags, char *errmsg);
/* Frees what afmt_storage_open allocated: the comm dup (if any), path and st itself. */
void afmt_storage_free_(afmt_storage *st);
/* The memory backend's path operations (on its registry). */
int afmt_storage_mem_rename_(const char *from, const char *to, char *errmsg);
int afmt_storage_mem_remove_(const char *path, char *errmsg);
int afmt_storage_mem_exists_(const char *path);

#endif
