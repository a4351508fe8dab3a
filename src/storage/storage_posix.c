/* storage_posix.c - the POSIX backend: one file descriptor per rank (meant for one
 * process: serial tools); whole transfers in pieces (util.h afmt__pread_all: EINTR and
 * short transfers retried). */
#include "storage/storage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

typedef struct {
    int fd;
} posix_impl;

static int sys_fail(afmt_storage *st, int e, const char *op, uint64_t off, uint64_t len) {
    char eb[256];
    return afmt__fail(st->errmsg, AFMT_EIO, "%s(%s, off=%llu, len=%llu): %s", op, st->path,
                      (unsigned long long)off, (unsigned long long)len,
                      afmt__errno_text(e, eb, sizeof eb));
}

/* The request that failed: what was left of len after done, at most one piece. */
static uint64_t left(uint64_t len, uint64_t done, uint64_t piece) {
    return len - done < piece ? len - done : piece;
}

/* off_t is signed: the whole range must fit in it. */
static int range_ok(afmt_storage *st, const char *op, uint64_t off, uint64_t len) {
    if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off || len > SIZE_MAX)
        return afmt__fail(st->errmsg, AFMT_EINVAL, "%s(%s, off=%llu, len=%llu): out of range", op,
                          st->path, (unsigned long long)off, (unsigned long long)len);
    return AFMT_OK;
}

static int p_read_at(afmt_storage *st, uint64_t off, void *buf, uint64_t len) {
    posix_impl *p = st->impl;
    int rc = range_ok(st, "pread", off, len);
    if (rc) return rc;
    uint64_t piece = afmt__storage_max_piece(), done = 0;
    int r = afmt__pread_all(p->fd, buf, len, off, piece, &done);
    if (r < 0) return sys_fail(st, errno, "pread", off + done, left(len, done, piece));
    if (r > 0)
        return afmt__fail(st->errmsg, AFMT_EIO,
                          "pread(%s, off=%llu, len=%llu): short read (end of file at "
                          "off=%llu)",
                          st->path, (unsigned long long)off, (unsigned long long)len,
                          (unsigned long long)(off + done));
    return AFMT_OK;
}

static int p_write_at(afmt_storage *st, uint64_t off, const void *buf, uint64_t len) {
    posix_impl *p = st->impl;
    int rc = range_ok(st, "pwrite", off, len);
    if (rc) return rc;
    uint64_t piece = afmt__storage_max_piece(), done = 0;
    if (afmt__pwrite_all(p->fd, buf, len, off, piece, &done) != 0)
        return sys_fail(st, errno, "pwrite", off + done, left(len, done, piece));
    return AFMT_OK;
}

static int p_sync(afmt_storage *st) {
    posix_impl *p = st->impl;
    if (fsync(p->fd) != 0) return sys_fail(st, errno, "fsync", 0, 0);
    return AFMT_OK;
}

static int p_size(afmt_storage *st, uint64_t *out) {
    posix_impl *p = st->impl;
    struct stat sb;
    if (fstat(p->fd, &sb) != 0) return sys_fail(st, errno, "fstat", 0, 0);
    *out = (uint64_t)sb.st_size;
    return AFMT_OK;
}

static int p_truncate(afmt_storage *st, uint64_t size) {
    posix_impl *p = st->impl;
    int rc = range_ok(st, "ftruncate", size, 0);
    if (rc) return rc;
    while (ftruncate(p->fd, (off_t)size) != 0) {
        if (errno != EINTR) return sys_fail(st, errno, "ftruncate", size, 0);
    }
    return AFMT_OK;
}

static int p_close(afmt_storage *st) {
    posix_impl *p = st->impl;
    int rc = AFMT_OK;
    if (p) {
        /* No retry on EINTR: on Linux the descriptor is gone either way. */
        if (close(p->fd) != 0) rc = sys_fail(st, errno, "close", 0, 0);
        free(p);
    }
    afmt__storage_free(st);
    return rc;
}

static const afmt_storage_ops posix_ops = {p_read_at, p_write_at, p_write_at, p_sync,
                                           p_size,    p_truncate, p_close};

/* open(2) of a regular file only: O_NONBLOCK, so that a FIFO put in place of the file
 * after afmt__storage_open's check cannot make the open wait for a writer; a non-regular
 * file is closed again (EINVAL); O_NONBLOCK is cleared on the regular file. -1 with errno
 * set on failure. */
static int open_regular(const char *path, int oflags, mode_t mode) {
    int fd;
    do fd = open(path, oflags | O_NONBLOCK, mode);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return -1;
    struct stat sb;
    int e = 0, fl;
    if (fstat(fd, &sb) != 0)
        e = errno;
    else if (!S_ISREG(sb.st_mode))
        e = EINVAL;
    else if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0)
        e = errno;
    if (e) {
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* The failure of open_regular (errno e) as a code and message. */
static int open_fail(afmt_storage *st, int e, char *errmsg) {
    char eb[256];
    if (e == EINVAL)
        return afmt__fail(errmsg, AFMT_EINVAL, "open(%s): not a regular file", st->path);
    return afmt__fail(errmsg,
                      e == EEXIST   ? AFMT_EEXIST
                      : e == ENOENT ? AFMT_ENOTFOUND
                                    : AFMT_EIO,
                      "open(%s): %s", st->path, afmt__errno_text(e, eb, sizeof eb));
}

/* Runs after the existence check of afmt__storage_open. Rank 0 opens first (with O_EXCL
 * when asked) and tells the others, who then open the file it made; so several ranks on
 * one path never race each other's O_EXCL. */
int afmt__storage_posix_open(afmt_storage *st, unsigned flags, char *errmsg) {
    st->ops = &posix_ops;
    st->impl = NULL;
    int rank = 0, size = 1;
    if (st->comm != MPI_COMM_NULL) {
        MPI_Comm_rank(st->comm, &rank);
        MPI_Comm_size(st->comm, &size);
    }
    /* The descriptor first, the allocation last: a rank short of memory must still take
     * part in the broadcast below (afmt__storage_open agrees on the outcome after). */
    int fd = -1;

    int oflags = ((flags & AFMT_ST_WRITE) ? O_RDWR : O_RDONLY) | O_CLOEXEC;
    int rc0 = AFMT_OK, rc = AFMT_OK;
    if (rank == 0) {
        int f0 = oflags | ((flags & AFMT_ST_CREATE) ? O_CREAT : 0) |
                 ((flags & AFMT_ST_EXCL) ? O_EXCL : 0);
        fd = open_regular(st->path, f0, 0666);
        if (fd < 0) rc = open_fail(st, errno, errmsg);
        rc0 = rc;
    }
    if (size > 1 && MPI_Bcast(&rc0, 1, MPI_INT, 0, st->comm) != MPI_SUCCESS) rc0 = AFMT_EMPI;
    if (rank != 0) {
        if (rc0 != AFMT_OK) {
            rc = afmt__fail(errmsg, rc0, "open(%s): failed on rank 0", st->path);
        } else {
            fd = open_regular(st->path, oflags, 0);
            if (fd < 0) rc = open_fail(st, errno, errmsg);
        }
    }
    posix_impl *p = rc == AFMT_OK ? malloc(sizeof *p) : NULL;
    if (rc == AFMT_OK && !p)
        rc = afmt__fail(errmsg, AFMT_ENOMEM, "open(%s): out of memory", st->path);
    if (rc != AFMT_OK) {
        if (fd >= 0) close(fd);
        return rc;
    }
    p->fd = fd;
    st->impl = p;
    return AFMT_OK;
}
