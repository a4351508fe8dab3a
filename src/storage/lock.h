/* lock.h - the writer lock: at most one writable handle per file, across jobs.
 *
 * A writable handle (afmt_create, afmt_open with AFMT_RDWR) owns the lock file
 * "<path>.lock" of its resolved path (f->real_path: every symbolic link resolved, made
 * absolute at create/open, storage.h), which rank 0 creates with open(O_CREAT | O_EXCL)
 * and fills with one line naming the holder:
 *     host=n01 pid=1234 job=5678 time=2026-11-24T17:00:00Z
 * (job is $SLURM_JOB_ID or "-"; time is when the lock was taken, UTC). Readers take no
 * lock and are never blocked. A lock whose holder ran on this host and whose pid is gone
 * (kill(pid, 0) fails with ESRCH) is stale and is broken automatically; any other lock
 * gives AFMT_EBUSY naming the holder. On local file systems rank 0 also holds flock() on
 * the data file itself (afmt__lock.fd), which catches a second name of the same inode (a
 * hard link); lock.c says why not on the others. A lock file that is not a regular file
 * (a FIFO, a link) is never followed nor waited on: AFMT_EIO. AFMT_NO_LOCK=1 in rank 0's
 * environment disables locking, and the memory storage backend never locks.
 *
 * Every call below is INDEPENDENT and makes no MPI call (the afmt tool's `unlock` uses the
 * path-level ones on one rank); file.c takes a handle's lock on rank 0 and agrees. A
 * mechanism: it knows nothing of handles. */
#ifndef AFMT_LOCK_H
#define AFMT_LOCK_H

#include <stddef.h>

#include "afmt.h"

/* The holder named by a lock file. */
typedef struct {
    int parsed; /* 1: host and pid were found; 0: empty or unreadable content */
    char host[256];
    long pid;
    char job[128];
    char time[64];
    char raw[512]; /* the file's content as read (NUL-terminated, maybe cut) */
} afmt_lock_holder;

/* "<path>.lock", malloc'd (NULL when out of memory). */
char *afmt__lock_path(const char *path);

/* Reads and parses a lock file into *h. AFMT_OK, AFMT_ENOTFOUND (no lock file), or
 * AFMT_EIO (message in errmsg, AFMT_ERRMSG_MAX bytes; also when lock_path is not a regular
 * file: a FIFO, a symbolic link, ...). */
int afmt__lock_read(const char *lock_path, afmt_lock_holder *h, char *errmsg);

/* 1 if the holder ran on this host (its host equals gethostname here). */
int afmt__lock_is_local(const afmt_lock_holder *h);

/* 1 if the holder is known to be gone: it ran on this host (same gethostname) and
 * kill(pid, 0) fails with ESRCH. 0 otherwise (alive, another host, unparsed content). */
int afmt__lock_is_stale(const afmt_lock_holder *h);

/* "host=H pid=P job=J since T" (or a note that the content names no holder). */
void afmt__lock_describe(const afmt_lock_holder *h, char *buf, size_t n);

/* Creates the lock file for this process. A stale lock is broken (once) and the creation
 * retried. Returns AFMT_OK (*broke = 1 if a stale lock was removed first), AFMT_EBUSY
 * (*h holds the holder) or AFMT_EIO (the lock file could not be created or read). The
 * message in errmsg has no function prefix. */
int afmt__lock_take(const char *lock_path, afmt_lock_holder *h, int *broke, char *errmsg);

/* Removes the lock file if it still holds exactly seen->raw (the content that was judged,
 * so that a lock taken by someone else meanwhile is left alone). AFMT_OK (removed),
 * AFMT_ENOTFOUND (already gone), AFMT_EBUSY (it changed: not removed), AFMT_EIO. */
int afmt__lock_break(const char *lock_path, const afmt_lock_holder *seen, char *errmsg);

/* ---- the lock a writable handle holds (file.c takes it on rank 0, then agrees) ---- */

/* A writer lock held by this process. */
typedef struct {
    char *path; /* the lock file "<real_path>.lock", or NULL: none held */
    int fd;     /* the descriptor holding flock on the data file, or -1 */
} afmt__lock;
#define AFMT__LOCK_NONE                                                                            \
    { NULL, -1 }

/* Rank 0 of a writable create/open: takes the lock file of real_path and, if the file
 * exists, its inode lock, unless rank 0 has AFMT_NO_LOCK set (then holds nothing). AFMT_OK,
 * AFMT_EBUSY, AFMT_EIO, AFMT_ENOMEM, with the message (prefixed "fn(path): ") in errmsg;
 * on failure nothing is held. No MPI call. */
int afmt__lock_take_writer(afmt__lock *lk, const char *real_path, const char *fn, const char *path,
                           char *errmsg);
/* Rank 0 of afmt_create, once the file exists: takes the inode lock if lk holds the lock
 * file but no inode lock yet (the file was new). AFMT_OK or AFMT_EBUSY. */
int afmt__lock_take_inode(afmt__lock *lk, const char *real_path, const char *fn, const char *path,
                          char *errmsg);
/* Rank 0 of afmt_compact, before the new file (open as fd) is renamed over the locked
 * one: a new descriptor of it holding the inode lock (so there is no moment without one)
 * in *out, or -1 when lk holds no inode lock. AFMT_OK or AFMT_EIO (message naming path). */
int afmt__lock_copy_inode(const afmt__lock *lk, int fd, int *out, const char *path, char *errmsg);
/* After that rename: fd (from afmt__lock_copy_inode) becomes lk's inode lock; the old
 * file's descriptor is closed. */
void afmt__lock_adopt_inode(afmt__lock *lk, int fd);
/* Releases lk if it holds anything (removes the lock file, closes the inode lock's
 * descriptor). Call it after every rank is done writing. */
void afmt__lock_drop(afmt__lock *lk);

#endif
