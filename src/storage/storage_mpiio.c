/* storage_mpiio.c - the MPI-IO backend: one MPI_File on a dup of the caller's
 * communicator, every MPI error turned into a code and a message. */
#include "storage/storage.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/statvfs.h>

/* Block of the derived type in write_at_all: counts of it reach 2 PiB per call. */
#define BLOCK ((uint64_t)1 << 20)

typedef struct {
    MPI_File fh;
    MPI_Datatype block; /* MPI_Type_contiguous(BLOCK, MPI_BYTE), committed */
} mpiio_impl;

/* MPI error class -> afmt code: file errors are storage failures (EIO, or the specific
 * ENOTFOUND/EEXIST), anything else is a failure of MPI itself. */
static int map_class(int mpirc) {
    int cls = MPI_ERR_OTHER;
    MPI_Error_class(mpirc, &cls);
    switch (cls) {
    case MPI_ERR_NO_SUCH_FILE:
        return AFMT_ENOTFOUND;
    case MPI_ERR_FILE_EXISTS:
        return AFMT_EEXIST;
    case MPI_ERR_IO:
    case MPI_ERR_FILE:
    case MPI_ERR_ACCESS:
    case MPI_ERR_AMODE:
    case MPI_ERR_BAD_FILE:
    case MPI_ERR_NO_SPACE:
    case MPI_ERR_QUOTA:
    case MPI_ERR_READ_ONLY:
    case MPI_ERR_FILE_IN_USE:
    case MPI_ERR_UNSUPPORTED_OPERATION:
    case MPI_ERR_NOT_SAME:
        return AFMT_EIO;
    default:
        return AFMT_EMPI;
    }
}

/* "op(path, off=.., len=..): <MPI text>" into msgbuf; returns the mapped code. */
static int mpi_fail(char *msgbuf, int mpirc, const char *op, const char *path, uint64_t off,
                    uint64_t len) {
    char text[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(mpirc, text, &n) != MPI_SUCCESS) {
        text[0] = '\0';
        n = 0;
    }
    text[n < MPI_MAX_ERROR_STRING ? n : MPI_MAX_ERROR_STRING - 1] = '\0';
    /* Calls without a byte range (open, sync, close) name only the path. */
    if (off == 0 && len == 0)
        return afmt__fail(msgbuf, map_class(mpirc), "%s(%s): %s", op, path, text);
    return afmt__fail(msgbuf, map_class(mpirc), "%s(%s, off=%llu, len=%llu): %s", op, path,
                      (unsigned long long)off, (unsigned long long)len, text);
}

/* MPI_Offset is signed: the whole range [off, off+len) must fit in it. */
static int range_ok(afmt_storage *st, const char *op, uint64_t off, uint64_t len) {
    if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
        return afmt__fail(st->errmsg, AFMT_EINVAL, "%s(%s, off=%llu, len=%llu): beyond 2^63", op,
                          st->path, (unsigned long long)off, (unsigned long long)len);
    return AFMT_OK;
}

static int m_read_at(afmt_storage *st, uint64_t off, void *buf, uint64_t len) {
    mpiio_impl *m = st->impl;
    int rc = range_ok(st, "read_at", off, len);
    if (rc) return rc;
    uint64_t piece = afmt__storage_max_piece(), done = 0;
    while (done < len) {
        int n = (int)(len - done < piece ? len - done : piece);
        MPI_Status status;
        int mrc = MPI_File_read_at(m->fh, (MPI_Offset)(off + done), (char *)buf + done, n, MPI_BYTE,
                                   &status);
        if (mrc != MPI_SUCCESS)
            return mpi_fail(st->errmsg, mrc, "read_at", st->path, off + done, (uint64_t)n);
        int got = 0;
        if ((mrc = MPI_Get_count(&status, MPI_BYTE, &got)) != MPI_SUCCESS)
            return mpi_fail(st->errmsg, mrc, "read_at/MPI_Get_count", st->path, off + done,
                            (uint64_t)n);
        /* MPI-IO reports end of file as a short count, not as an error. */
        if (got != n)
            return afmt__fail(st->errmsg, AFMT_EIO,
                              "read_at(%s, off=%llu, len=%llu): short read (%d of %d bytes at "
                              "off=%llu; past end of file?)",
                              st->path, (unsigned long long)off, (unsigned long long)len,
                              got < 0 ? 0 : got, n, (unsigned long long)(off + done));
        done += (uint64_t)n;
    }
    return AFMT_OK;
}

static int m_write_at(afmt_storage *st, uint64_t off, const void *buf, uint64_t len) {
    mpiio_impl *m = st->impl;
    int rc = range_ok(st, "write_at", off, len);
    if (rc) return rc;
    uint64_t piece = afmt__storage_max_piece(), done = 0;
    while (done < len) {
        int n = (int)(len - done < piece ? len - done : piece);
        MPI_Status status;
        int mrc = MPI_File_write_at(m->fh, (MPI_Offset)(off + done), (const char *)buf + done, n,
                                    MPI_BYTE, &status);
        if (mrc != MPI_SUCCESS)
            return mpi_fail(st->errmsg, mrc, "write_at", st->path, off + done, (uint64_t)n);
        int put = 0;
        if ((mrc = MPI_Get_count(&status, MPI_BYTE, &put)) != MPI_SUCCESS)
            return mpi_fail(st->errmsg, mrc, "write_at/MPI_Get_count", st->path, off + done,
                            (uint64_t)n);
        if (put > 0 && put < n) {
            /* A short count with progress: write the rest (as write(2) callers do). */
            done += (uint64_t)put;
            continue;
        }
        if (put != n) {
            /* No progress. Open MPI's OMPIO reports a full disk this way, without errno:
             * say ENOSPC when the file system has less room than we still need. */
            struct statvfs vs;
            int full = statvfs(st->path, &vs) == 0 &&
                       (uint64_t)vs.f_bavail * (uint64_t)vs.f_frsize < len - done;
            return afmt__fail(st->errmsg, AFMT_EIO,
                              "write_at(%s, off=%llu, len=%llu): short write (%d of %d bytes)%s",
                              st->path, (unsigned long long)(off + done), (unsigned long long)n,
                              put < 0 ? 0 : put, n, full ? ": No space left on device" : "");
        }
        done += (uint64_t)n;
    }
    return AFMT_OK;
}

/* Always exactly two collective calls on every rank, whatever its length (0 included):
 * whole 1 MiB blocks of the derived type, then the remainder in bytes. Ranks thus never
 * disagree on the number of collectives, and no count exceeds an int. A local argument
 * error still takes part with empty calls, so the others do not hang. */
static int m_write_at_all(afmt_storage *st, uint64_t off, const void *buf, uint64_t len) {
    mpiio_impl *m = st->impl;
    int rc = range_ok(st, "write_at_all", off, len);
    uint64_t nblocks = len / BLOCK, rest = len % BLOCK;
    if (rc == AFMT_OK && nblocks > (uint64_t)INT_MAX)
        rc = afmt__fail(st->errmsg, AFMT_EINVAL,
                        "write_at_all(%s, off=%llu, len=%llu): longer than 2 PiB", st->path,
                        (unsigned long long)off, (unsigned long long)len);
    if (rc != AFMT_OK) {
        nblocks = rest = 0;
        off = 0;
    }

    MPI_Status status;
    int mrc = MPI_File_write_at_all(m->fh, (MPI_Offset)off, buf, (int)nblocks, m->block, &status);
    if (mrc != MPI_SUCCESS && rc == AFMT_OK)
        rc = mpi_fail(st->errmsg, mrc, "write_at_all", st->path, off, nblocks * BLOCK);
    uint64_t roff = off + nblocks * BLOCK;
    const char *rbuf = rest ? (const char *)buf + nblocks * BLOCK : buf;
    mrc = MPI_File_write_at_all(m->fh, (MPI_Offset)roff, rbuf, (int)rest, MPI_BYTE, &status);
    if (mrc != MPI_SUCCESS && rc == AFMT_OK)
        rc = mpi_fail(st->errmsg, mrc, "write_at_all", st->path, roff, rest);
    return rc;
}

static int m_sync(afmt_storage *st) {
    mpiio_impl *m = st->impl;
    int mrc = MPI_File_sync(m->fh);
    if (mrc != MPI_SUCCESS) return mpi_fail(st->errmsg, mrc, "sync", st->path, 0, 0);
    return AFMT_OK;
}

static int m_size(afmt_storage *st, uint64_t *out) {
    mpiio_impl *m = st->impl;
    MPI_Offset sz = 0;
    int mrc = MPI_File_get_size(m->fh, &sz);
    if (mrc != MPI_SUCCESS) return mpi_fail(st->errmsg, mrc, "get_size", st->path, 0, 0);
    *out = (uint64_t)sz;
    return AFMT_OK;
}

static int m_truncate(afmt_storage *st, uint64_t size) {
    mpiio_impl *m = st->impl;
    int rc = range_ok(st, "set_size", size, 0);
    /* Collective: take part even with a bad size (then with the current size). */
    MPI_Offset cur = 0;
    if (rc != AFMT_OK) MPI_File_get_size(m->fh, &cur);
    int mrc = MPI_File_set_size(m->fh, rc == AFMT_OK ? (MPI_Offset)size : cur);
    if (mrc != MPI_SUCCESS && rc == AFMT_OK)
        rc = mpi_fail(st->errmsg, mrc, "set_size", st->path, size, 0);
    return rc;
}

static int m_close(afmt_storage *st) {
    mpiio_impl *m = st->impl;
    int rc = AFMT_OK;
    if (m) {
        int mrc = MPI_File_close(&m->fh);
        if (mrc != MPI_SUCCESS) rc = mpi_fail(st->errmsg, mrc, "close", st->path, 0, 0);
        MPI_Type_free(&m->block);
        free(m);
    }
    afmt__storage_free(st);
    return rc;
}

static const afmt_storage_ops mpiio_ops = {m_read_at, m_write_at, m_write_at_all, m_sync,
                                           m_size,    m_truncate, m_close};

int afmt__storage_mpiio_open(afmt_storage *st, unsigned flags, MPI_Info info, char *errmsg) {
    st->ops = &mpiio_ops;
    st->impl = NULL;
    /* Local preparations first, agreed before the collective open, so that a failure
     * here cannot leave an MPI_File open on some ranks only. */
    int rc = AFMT_OK;
    mpiio_impl *m = calloc(1, sizeof *m);
    if (!m) rc = afmt__fail(errmsg, AFMT_ENOMEM, "open(%s): out of memory", st->path);
    int mrc = MPI_SUCCESS;
    if (m) {
        m->block = MPI_DATATYPE_NULL;
        mrc = MPI_Type_contiguous((int)BLOCK, MPI_BYTE, &m->block);
        if (mrc == MPI_SUCCESS) mrc = MPI_Type_commit(&m->block);
        if (mrc != MPI_SUCCESS)
            rc = mpi_fail(errmsg, mrc, "open/MPI_Type_contiguous", st->path, 0, 0);
    }
    int all = rc;
    if (MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MIN, st->comm) != MPI_SUCCESS) all = AFMT_EMPI;
    if (all == AFMT_OK) {
        int amode = (flags & AFMT_ST_WRITE) ? MPI_MODE_RDWR : MPI_MODE_RDONLY;
        if (flags & AFMT_ST_CREATE) amode |= MPI_MODE_CREATE;
        if (flags & AFMT_ST_EXCL) amode |= MPI_MODE_EXCL;
        mrc = MPI_File_open(st->comm, st->path, amode, info, &m->fh);
        int opened = mrc == MPI_SUCCESS;
        if (!opened) {
            m->fh = MPI_FILE_NULL;
            rc = mpi_fail(errmsg, mrc, "open", st->path, 0, 0);
        } else {
            /* ERRORS_RETURN is the handle's default already; set it so that a changed
             * default (on MPI_FILE_NULL) cannot turn I/O errors into aborts. */
            mrc = MPI_File_set_errhandler(m->fh, MPI_ERRORS_RETURN);
            if (mrc != MPI_SUCCESS)
                rc = mpi_fail(errmsg, mrc, "open/MPI_File_set_errhandler", st->path, 0, 0);
        }
        int mine[2] = {rc, opened}, both[2] = {AFMT_EMPI, 0};
        if (MPI_Allreduce(mine, both, 2, MPI_INT, MPI_MIN, st->comm) != MPI_SUCCESS)
            both[0] = AFMT_EMPI;
        all = both[0];
        /* Undo a local open only if every rank opened: close is collective. Should the
         * open have failed on some ranks only (implementations agree on open errors, so
         * not expected), the handle is leaked rather than a close left hanging. */
        if (all != AFMT_OK && opened && both[1]) MPI_File_close(&m->fh);
    }
    if (all != AFMT_OK) {
        if (rc == AFMT_OK)
            rc = afmt__fail(errmsg, all, "open(%s): failed on another rank", st->path);
        if (m) {
            if (m->block != MPI_DATATYPE_NULL) MPI_Type_free(&m->block);
            free(m);
        }
        return rc;
    }
    st->impl = m;
    return AFMT_OK;
}
