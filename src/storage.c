/* storage.c - backend dispatch: open (with the cross-rank agreement on its outcome),
 * rename, remove and exists by kind; the piece limit shared by the backends; the fault
 * wrapper (storage_fault.c) put around a new storage while a test has set a fault spec. */
#include "storage.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MAX_PIECE ((uint64_t)1 << 30)

/* Test-only knob (see storage.h); a plain static because tests set it between I/O. */
static uint64_t max_piece = DEFAULT_MAX_PIECE;

void afmt_storage_set_max_piece(uint64_t bytes) {
    if (bytes == 0) bytes = DEFAULT_MAX_PIECE;
    if (bytes > (uint64_t)INT_MAX) bytes = (uint64_t)INT_MAX;
    max_piece = bytes;
}

uint64_t afmt_storage_max_piece_(void) {
    return max_piece;
}

/* The memory backend must work in fuzzers that never call MPI_Init: it needs MPI only
 * when MPI is up. */
static int mpi_active(void) {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    if (!init) return 0;
    MPI_Finalized(&fin);
    return !fin;
}

void afmt_storage_free_(afmt_storage *st) {
    if (!st) return;
    if (st->comm != MPI_COMM_NULL) MPI_Comm_free(&st->comm);
    free(st->path);
    free(st);
}

/* errno text, whichever strerror_r the C library declares. */
static const char *errtext(int e, char *buf, size_t n) {
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(e, buf, n);
#else
    if (strerror_r(e, buf, n) != 0) snprintf(buf, n, "errno %d", e);
    return buf;
#endif
}

/* Every rank returns the code and message of the lowest failing rank (afmt__agree_comm),
 * so that the failing rank's cause, not "failed on another rank", is what all report. */
static int agree(MPI_Comm comm, int rc, char *errmsg) {
    char local[AFMT_ERRMSG_MAX] = "";
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    return afmt__agree_comm(comm, rank, size, rc, errmsg ? errmsg : local);
}

/* Rank 0 stats path and broadcasts the result, so EEXIST/ENOTFOUND are decided once and
 * identically on every rank (not by racing opens). Returns AFMT_OK or the agreed code. */
static int precheck(MPI_Comm comm, const char *path, unsigned flags, char *errmsg) {
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    int msg[2] = {0, 0}; /* {2 directory / 1 exists / 0 missing / -1 stat failed, errno} */
    if (rank == 0) {
        struct stat sb;
        if (stat(path, &sb) == 0)
            msg[0] = S_ISDIR(sb.st_mode) ? 2 : 1;
        else if (errno == ENOENT)
            msg[0] = 0;
        else {
            msg[0] = -1;
            msg[1] = errno;
        }
    }
    if (MPI_Bcast(msg, 2, MPI_INT, 0, comm) != MPI_SUCCESS)
        return afmt_fail(errmsg, AFMT_EMPI, "open(%s): MPI_Bcast of the existence check failed",
                         path);
    if (msg[0] < 0) {
        char eb[256];
        return afmt_fail(errmsg, AFMT_EIO, "open(%s): stat on rank 0: %s", path,
                         errtext(msg[1], eb, sizeof eb));
    }
    if (msg[0] == 2) /* MPI-IO would print its own complaint about reading a directory */
        return afmt_fail(errmsg, AFMT_EINVAL, "open(%s): is a directory", path);
    if (msg[0] == 1 && (flags & AFMT_ST_EXCL))
        return afmt_fail(errmsg, AFMT_EEXIST, "open(%s): file exists (exclusive create)", path);
    if (msg[0] == 0 && !(flags & AFMT_ST_CREATE))
        return afmt_fail(errmsg, AFMT_ENOTFOUND, "open(%s): no such file", path);
    return AFMT_OK;
}

int afmt_storage_open(afmt_storage_kind kind, MPI_Comm comm, const char *path, unsigned flags,
                      MPI_Info info, afmt_storage **out, char *errmsg) {
    if (out) *out = NULL;
    if (!out || !path || !path[0])
        return afmt_fail(errmsg, AFMT_EINVAL, "afmt_storage_open: NULL or empty argument");
    if (kind != AFMT_STORAGE_MPIIO && kind != AFMT_STORAGE_POSIX && kind != AFMT_STORAGE_MEMORY)
        return afmt_fail(errmsg, AFMT_EINVAL, "open(%s): unknown storage kind %d", path, (int)kind);
    /* Creating a file means writing it; make that implicit rather than an error. */
    if (flags & AFMT_ST_CREATE) flags |= AFMT_ST_WRITE;
    if (!(flags & (AFMT_ST_READ | AFMT_ST_WRITE)) ||
        (flags & ~(unsigned)(AFMT_ST_READ | AFMT_ST_WRITE | AFMT_ST_CREATE | AFMT_ST_EXCL)))
        return afmt_fail(errmsg, AFMT_EINVAL, "open(%s): bad flags 0x%x", path, flags);
    if ((flags & AFMT_ST_EXCL) && !(flags & AFMT_ST_CREATE))
        return afmt_fail(errmsg, AFMT_EINVAL, "open(%s): EXCL without CREATE", path);

    int use_mpi = kind != AFMT_STORAGE_MEMORY || mpi_active();
    if (use_mpi && comm == MPI_COMM_NULL)
        return afmt_fail(errmsg, AFMT_EINVAL, "open(%s): MPI_COMM_NULL", path);

    /* Dup first: it is collective and must happen on every rank whatever else fails. */
    MPI_Comm dup = MPI_COMM_NULL;
    if (use_mpi && MPI_Comm_dup(comm, &dup) != MPI_SUCCESS)
        return afmt_fail(errmsg, AFMT_EMPI, "open(%s): MPI_Comm_dup failed", path);

    int rc = AFMT_OK;
    afmt_storage *st = calloc(1, sizeof *st);
    /* Tests: the fault wrapper's state, allocated now so that wrapping cannot fail later. */
    void *fw = NULL;
    int want_fault = afmt_storage_fault_active_();
    if (st) {
        st->kind = kind;
        st->comm = dup;
        st->path = strdup(path);
        if (want_fault) fw = afmt_storage_fault_alloc_();
    }
    if (!st || !st->path || (want_fault && !fw)) {
        rc = afmt_fail(errmsg, AFMT_ENOMEM, "open(%s): out of memory", path);
        if (!st && dup != MPI_COMM_NULL) MPI_Comm_free(&dup);
    }
    if (use_mpi) rc = agree(comm, rc, errmsg);
    if (rc == AFMT_OK && kind != AFMT_STORAGE_MEMORY) rc = precheck(st->comm, path, flags, errmsg);
    if (rc != AFMT_OK) {
        afmt_storage_fault_free_(fw);
        afmt_storage_free_(st);
        return rc;
    }

    switch (kind) {
    case AFMT_STORAGE_MPIIO:
        rc = afmt_storage_mpiio_open_(st, flags, info, errmsg);
        break;
    case AFMT_STORAGE_POSIX:
        rc = afmt_storage_posix_open_(st, flags, errmsg);
        break;
    default:
        rc = afmt_storage_mem_open_(st, flags, errmsg);
        break;
    }
    /* The MPI-IO backend agrees internally (its close is collective); the per-rank
     * backends agree here and undo a local success with their (local) close. */
    if (kind != AFMT_STORAGE_MPIIO && use_mpi) {
        int local_ok = rc == AFMT_OK;
        rc = agree(st->comm, rc, errmsg);
        if (rc != AFMT_OK && local_ok) {
            afmt_storage_fault_free_(fw);
            st->ops->close(st);
            return rc;
        }
    }
    if (rc != AFMT_OK) {
        afmt_storage_fault_free_(fw);
        afmt_storage_free_(st);
        return rc;
    }
    if (fw) afmt_storage_fault_wrap_(st, fw);
    *out = st;
    return AFMT_OK;
}

/* fsync of path's parent directory, so that a rename in it survives a crash. */
static int sync_parent(const char *path, char *errmsg) {
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == path)
        strcpy(dir, "/");
    else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir)
            return afmt_fail(errmsg, AFMT_EINVAL, "rename: path too long: %s", path);
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    char eb[256];
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return afmt_fail(errmsg, AFMT_EIO, "rename: open(%s) for fsync: %s", dir,
                         errtext(errno, eb, sizeof eb));
    int rc = AFMT_OK;
    /* Some file systems cannot sync a directory (EINVAL/ENOTSUP); nothing more to do. */
    if (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP)
        rc = afmt_fail(errmsg, AFMT_EIO, "rename: fsync(%s): %s", dir,
                       errtext(errno, eb, sizeof eb));
    close(fd);
    return rc;
}

int afmt_storage_rename(afmt_storage_kind kind, const char *from, const char *to, char *errmsg) {
    if (!from || !to) return afmt_fail(errmsg, AFMT_EINVAL, "afmt_storage_rename: NULL path");
    if (kind == AFMT_STORAGE_MEMORY) {
        int rc = afmt_storage_mem_rename_(from, to, errmsg);
        return rc == AFMT_OK ? afmt_storage_fault_dirsync_(to, errmsg) : rc;
    }
    if (rename(from, to) != 0) {
        char eb[256];
        int e = errno;
        return afmt_fail(errmsg, e == ENOENT ? AFMT_ENOTFOUND : AFMT_EIO, "rename(%s, %s): %s",
                         from, to, errtext(e, eb, sizeof eb));
    }
    int rc = sync_parent(to, errmsg);
    return rc == AFMT_OK ? afmt_storage_fault_dirsync_(to, errmsg) : rc; /* tests */
}

int afmt_storage_remove(afmt_storage_kind kind, const char *path, char *errmsg) {
    if (!path) return afmt_fail(errmsg, AFMT_EINVAL, "afmt_storage_remove: NULL path");
    if (kind == AFMT_STORAGE_MEMORY) return afmt_storage_mem_remove_(path, errmsg);
    if (unlink(path) != 0 && errno != ENOENT) {
        char eb[256];
        return afmt_fail(errmsg, AFMT_EIO, "unlink(%s): %s", path, errtext(errno, eb, sizeof eb));
    }
    return AFMT_OK;
}

int afmt_storage_exists(afmt_storage_kind kind, const char *path) {
    if (!path) return 0;
    if (kind == AFMT_STORAGE_MEMORY) return afmt_storage_mem_exists_(path);
    struct stat sb;
    return stat(path, &sb) == 0;
}
