/* lock.c - the writer lock "<path>.lock" (see lock.h).
 *
 * Why a lock file created with O_EXCL, and not fcntl/flock: exclusive creation is atomic
 * on local file systems, NFS v3 and later, Lustre and GPFS, while fcntl locks are missing
 * or unreliable on some parallel file systems (and flock is local to a node on others).
 * It also leaves a trace a person can read (`cat file.afmt.lock`, `afmt unlock`).
 *
 * The lock file is named after the handle's resolved path (storage.h), so a symbolic link
 * or a relative path after a chdir finds the same lock. A hard link (a second name of the
 * same inode) does not: for it rank 0 also holds flock() on the data file itself, but only
 * on local file systems (the list in inode_lock_safe). On NFS, MPI-IO implementations lock
 * the whole file around each read and write (Open MPI's OMPIO does by default), and NFS
 * clients turn flock into such byte-range locks: a lock held for the life of the handle
 * would block the job's own I/O and every reader. On local file systems flock and fcntl
 * locks never meet, and flock belongs to the open file description: a second handle in the
 * same process conflicts too, and the lock dies with the process (nothing stale).
 *
 * The cost of a lock file is that it survives a crash. A crashed writer would then block
 * its own restart, which checkpoint/restart flows must not need a person for, so a lock
 * whose holder ran on this host and no longer exists is broken automatically. A holder on
 * another host cannot be checked from here and is never broken automatically: the message
 * tells how (`afmt unlock`). */
#include "storage/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/vfs.h>
#endif

#include "common/error.h"
#include "common/util.h"

char *afmt__lock_path(const char *path) {
    size_t n = strlen(path);
    char *p = malloc(n + 6);
    if (!p) return NULL;
    memcpy(p, path, n);
    memcpy(p + n, ".lock", 6);
    return p;
}

static void my_host(char *buf, size_t n) {
    if (gethostname(buf, n) != 0) snprintf(buf, n, "unknown");
    buf[n - 1] = 0;
    /* The line is space-separated key=value: keep it parseable whatever the name holds. */
    for (char *c = buf; *c; c++)
        if (*c <= ' ' || *c == '=' || *c > '~') *c = '_';
    if (!buf[0]) snprintf(buf, n, "unknown");
}

/* Copies the value of key ("host=") from the line into out (up to a blank). */
static int field(const char *line, const char *key, char *out, size_t n) {
    size_t kl = strlen(key);
    for (const char *p = line; *p;) {
        while (*p == ' ' || *p == '\t') p++;
        if (!strncmp(p, key, kl)) {
            p += kl;
            size_t i = 0;
            while (p[i] && p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') i++;
            if (i >= n) i = n - 1;
            memcpy(out, p, i);
            out[i] = 0;
            return 1;
        }
        while (*p && *p != ' ' && *p != '\t') p++;
    }
    return 0;
}

static void parse(afmt_lock_holder *h) {
    char pid[32];
    h->parsed = 0;
    h->host[0] = h->job[0] = h->time[0] = 0;
    h->pid = 0;
    if (!field(h->raw, "job=", h->job, sizeof h->job)) snprintf(h->job, sizeof h->job, "-");
    if (!field(h->raw, "time=", h->time, sizeof h->time)) snprintf(h->time, sizeof h->time, "?");
    if (!field(h->raw, "host=", h->host, sizeof h->host) || !h->host[0]) return;
    if (!field(h->raw, "pid=", pid, sizeof pid)) return;
    char *end = NULL;
    errno = 0;
    long v = strtol(pid, &end, 10);
    if (errno || !end || *end || v <= 0 || v != (long)(pid_t)v) return;
    h->pid = v;
    h->parsed = 1;
}

/* "a FIFO", ... for a lock file that is not a regular one. */
static const char *type_name(mode_t m) {
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
           : S_ISLNK(m)  ? "a symbolic link"
                         : "of an unknown type";
}

int afmt__lock_read(const char *lock_path, afmt_lock_holder *h, char *errmsg) {
    char eb[256];
    memset(h, 0, sizeof *h);
    /* Only a regular file is a lock: O_NOFOLLOW and O_NONBLOCK, so that a planted link is
     * not followed and a FIFO does not make the read wait for a writer forever. */
    int fd = open(lock_path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat sb;
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) return AFMT_ENOTFOUND;
        if (e == ELOOP && lstat(lock_path, &sb) == 0 && S_ISLNK(sb.st_mode))
            return afmt__fail(errmsg, AFMT_EIO,
                              "the writer lock %s is a symbolic link, not a lock file: remove it",
                              lock_path);
        return afmt__fail(errmsg, AFMT_EIO, "cannot read the writer lock %s: %s", lock_path,
                          afmt__errno_text(e, eb, sizeof eb));
    }
    int src = fstat(fd, &sb), serr = errno;
    if (src != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        if (src != 0)
            return afmt__fail(errmsg, AFMT_EIO, "cannot read the writer lock %s: %s", lock_path,
                              afmt__errno_text(serr, eb, sizeof eb));
        return afmt__fail(errmsg, AFMT_EIO,
                          "the writer lock %s is %s, not a lock file (a regular file): remove it",
                          lock_path, type_name(sb.st_mode));
    }
    uint64_t got = 0; /* up to the end of the file (1) or of the buffer (0) */
    if (afmt__pread_all(fd, h->raw, sizeof h->raw - 1, 0, sizeof h->raw, &got) < 0) {
        int e = errno;
        close(fd);
        return afmt__fail(errmsg, AFMT_EIO, "cannot read the writer lock %s: %s", lock_path,
                          afmt__errno_text(e, eb, sizeof eb));
    }
    close(fd);
    h->raw[got] = 0;
    /* One line: the rest (a newline, garbage) is not part of the holder. */
    h->raw[strcspn(h->raw, "\n")] = 0;
    parse(h);
    return AFMT_OK;
}

int afmt__lock_is_local(const afmt_lock_holder *h) {
    char host[256];
    my_host(host, sizeof host);
    return h->parsed && strcmp(host, h->host) == 0;
}

/* 1 if /proc says the process is a zombie: killed, but not reaped yet. In containers
 * whose init does not reap orphans, a SIGKILLed writer stays a zombie for good, and
 * kill(pid, 0) still succeeds on it. */
static int is_zombie(long pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *fp = fopen(path, "r");
    if (!fp) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')'); /* the command name may hold spaces and parens */
    return rp && rp[1] == ' ' && rp[2] == 'Z';
}

int afmt__lock_is_stale(const afmt_lock_holder *h) {
    if (!afmt__lock_is_local(h)) return 0;
    /* EPERM means the process exists (another user's): alive. Only ESRCH says gone. A
     * recycled pid reads as alive: the safe side (afmt unlock --force remains). */
    if (kill((pid_t)h->pid, 0) != 0) return errno == ESRCH;
    return is_zombie(h->pid);
}

void afmt__lock_describe(const afmt_lock_holder *h, char *buf, size_t n) {
    if (h->parsed)
        snprintf(buf, n, "host=%s pid=%ld job=%s since %s", h->host, h->pid, h->job, h->time);
    else
        snprintf(buf, n,
                 "an unknown holder (the lock file holds \"%.200s\": being written, or "
                 "left by a crash while it was written)",
                 h->raw);
}

/* The line of this process. */
static void my_line(char *buf, size_t n) {
    char host[256], job[128], when[64];
    my_host(host, sizeof host);
    const char *j = getenv("SLURM_JOB_ID");
    snprintf(job, sizeof job, "%s", j && *j ? j : "-");
    for (char *c = job; *c; c++)
        if (*c <= ' ' || *c > '~') *c = '_';
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    else
        snprintf(when, sizeof when, "?");
    snprintf(buf, n, "host=%s pid=%ld job=%s time=%s\n", host, (long)getpid(), job, when);
}

/* One exclusive creation: AFMT_OK, AFMT_EEXIST (someone holds it) or AFMT_EIO. */
static int create_once(const char *lock_path, char *errmsg) {
    char eb[256], line[512];
    int fd = open(lock_path, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        if (e == EEXIST) return AFMT_EEXIST;
        if (e == ENOENT || e == ENOTDIR) {
            /* The lock is the first thing made next to the file: a missing directory shows
             * here, and turning locking off would not help. */
            const char *slash = strrchr(lock_path, '/');
            int n = slash ? (slash == lock_path ? 1 : (int)(slash - lock_path)) : 1;
            return afmt__fail(errmsg, AFMT_EIO,
                              "the directory %.*s does not exist (or is not a directory): "
                              "create it first",
                              n, slash ? lock_path : ".");
        }
        return afmt__fail(errmsg, AFMT_EIO,
                          "cannot create the writer lock %s: %s (AFMT_NO_LOCK=1 writes without "
                          "one, see docs/api.md)",
                          lock_path, afmt__errno_text(e, eb, sizeof eb));
    }
    my_line(line, sizeof line);
    uint64_t put = 0;
    int e = afmt__pwrite_all(fd, line, strlen(line), 0, sizeof line, &put) != 0 ? errno : 0;
    /* close() flushes to the server on NFS (close-to-open consistency): after it another
     * node reads the holder. */
    if (close(fd) != 0 && !e) e = errno;
    if (e) {
        unlink(lock_path);
        return afmt__fail(errmsg, AFMT_EIO, "cannot write the writer lock %s: %s", lock_path,
                          afmt__errno_text(e, eb, sizeof eb));
    }
    return AFMT_OK;
}

int afmt__lock_break(const char *lock_path, const afmt_lock_holder *seen, char *errmsg) {
    char eb[256];
    /* Two processes may judge the same stale lock at once. If both simply unlinked it,
     * the slower one could remove the lock the faster one has just created. So the lock
     * is moved aside under a name of our own (rename is atomic, only one mover wins), the
     * moved content is compared with what was judged, and put back if it is not that. */
    char host[256];
    my_host(host, sizeof host);
    size_t n = strlen(lock_path) + strlen(host) + 64;
    char *aside = malloc(n);
    if (!aside) return afmt__fail(errmsg, AFMT_ENOMEM, "out of memory");
    snprintf(aside, n, "%s.break.%s.%ld", lock_path, host, (long)getpid());
    if (rename(lock_path, aside) != 0) {
        int e = errno;
        free(aside);
        if (e == ENOENT) return AFMT_ENOTFOUND;
        return afmt__fail(errmsg, AFMT_EIO, "cannot remove the stale writer lock %s: %s", lock_path,
                          afmt__errno_text(e, eb, sizeof eb));
    }
    afmt_lock_holder now;
    int rc = afmt__lock_read(aside, &now, errmsg);
    if (rc == AFMT_OK && strcmp(now.raw, seen->raw) != 0) {
        /* A fresh lock of another writer: put it back (a third writer that created a lock
         * in this instant would be replaced; that race needs three writers at once). */
        rename(aside, lock_path);
        free(aside);
        return AFMT_EBUSY;
    }
    if (unlink(aside) != 0 && rc == AFMT_OK) {
        int e = errno;
        rc = afmt__fail(errmsg, AFMT_EIO, "cannot remove %s: %s", aside,
                        afmt__errno_text(e, eb, sizeof eb));
    }
    free(aside);
    return rc == AFMT_ENOTFOUND ? AFMT_OK : rc;
}

int afmt__lock_take(const char *lock_path, afmt_lock_holder *h, int *broke, char *errmsg) {
    *broke = 0;
    memset(h, 0, sizeof *h);
    for (int attempt = 0;; attempt++) {
        int rc = create_once(lock_path, errmsg);
        if (rc != AFMT_EEXIST) return rc;
        rc = afmt__lock_read(lock_path, h, errmsg);
        if (rc == AFMT_ENOTFOUND && attempt < 2) continue; /* released meanwhile */
        if (rc == AFMT_ENOTFOUND) {
            snprintf(h->raw, sizeof h->raw, "(removed and created again while checked)");
            parse(h);
        } else if (rc != AFMT_OK) {
            return rc;
        }
        /* Break a stale lock once; a second stale lock in a row means something else is
         * going on, and is reported instead. */
        if (attempt == 0 && afmt__lock_is_stale(h)) {
            rc = afmt__lock_break(lock_path, h, errmsg);
            if (rc == AFMT_OK) {
                *broke = 1;
                continue;
            }
            if (rc == AFMT_ENOTFOUND) continue; /* another writer moved it first: race on */
            if (rc != AFMT_EBUSY) return rc;
            /* It changed under us: someone else took it; report that holder. */
            if (afmt__lock_read(lock_path, h, errmsg) == AFMT_ENOTFOUND) continue;
        }
        char who[768];
        afmt__lock_describe(h, who, sizeof who);
        return afmt__fail(errmsg, AFMT_EBUSY, "locked for writing by %s", who);
    }
}

/* ---- the lock of a writable handle ------------------------------------------------ */

/* AFMT_NO_LOCK set to anything but "" or "0". */
static int no_lock_env(void) {
    const char *v = getenv("AFMT_NO_LOCK");
    return v && *v && strcmp(v, "0") != 0;
}

/* 1 if flock() on fd's file system is safe to hold for a handle's life and useful: a
 * local file system (all its users are on this node), where flock and fcntl locks never
 * meet. Elsewhere (NFS, Lustre, GPFS, ... : see the top of this file) no inode lock. */
static int inode_lock_safe(int fd) {
#if defined(__linux__)
    struct statfs sf;
    if (fstatfs(fd, &sf) != 0) return 0;
    switch ((unsigned long)sf.f_type) {
    case 0xEF53UL:     /* ext2, ext3, ext4 */
    case 0x58465342UL: /* XFS */
    case 0x9123683EUL: /* Btrfs */
    case 0x2FC12FC1UL: /* ZFS */
    case 0xF2F52010UL: /* F2FS */
    case 0x01021994UL: /* tmpfs (/dev/shm) */
    case 0x794C7630UL: /* overlayfs (containers) */
        return 1;
    default:
        return 0;
    }
#else
    (void)fd;
    return 0;
#endif
}

/* An exclusive flock on fd without waiting, where inode_lock_safe: AFMT_OK (*held says
 * whether it is held) or AFMT_EBUSY. A file system that refuses it (ENOLCK, EINVAL, ...)
 * leaves the lock file alone in charge. */
static int flock_fd(int fd, int *held) {
    *held = 0;
    if (!inode_lock_safe(fd)) return AFMT_OK;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR) continue;
        return errno == EWOULDBLOCK ? AFMT_EBUSY : AFMT_OK;
    }
    *held = 1;
    return AFMT_OK;
}

/* Rank 0, holding lk's lock file: the inode lock on the file real_path, if it exists
 * and is a regular file (else the storage open that follows reports it; a file still to
 * be created is locked by afmt__lock_take_inode after its creation). */
static int lock_inode0(afmt__lock *lk, const char *real_path, const char *fn, const char *path,
                       char *errmsg) {
    if (lk->fd >= 0) return AFMT_OK;
    int fd;
    do fd = open(real_path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return AFMT_OK;
    struct stat sb;
    int held = 0, rc = AFMT_OK;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) rc = flock_fd(fd, &held);
    if (held)
        lk->fd = fd;
    else
        close(fd);
    if (rc == AFMT_EBUSY)
        afmt__fail(errmsg, rc,
                   "%s(%s): locked for writing under another name of the same file (a hard "
                   "link to it; the lock file next to that name names the holder)",
                   fn, path);
    return rc;
}

int afmt__lock_take_writer(afmt__lock *lk, const char *real_path, const char *fn, const char *path,
                           char *errmsg) {
    if (no_lock_env()) return AFMT_OK;
    char msg[AFMT_ERRMSG_MAX];
    char *lp = afmt__lock_path(real_path);
    afmt_lock_holder h;
    int broke = 0, rc; /* a stale lock was broken: silent, the restart case (lock.h) */
    if (!lp) return afmt__fail(errmsg, AFMT_ENOMEM, "%s(%s): out of memory", fn, path);
    /* The command that frees it in one step: plain unlock breaks only what it can check
     * (a dead process of this host); another host's or an unreadable lock needs --force. */
    if ((rc = afmt__lock_take(lp, &h, &broke, msg)) == AFMT_EBUSY)
        afmt__fail(errmsg, rc, "%s(%s): %s; if that job is gone, run \"afmt unlock %s%s\"", fn,
                   path, msg, path, h.parsed && afmt__lock_is_local(&h) ? "" : " --force");
    else if (rc != AFMT_OK)
        afmt__fail(errmsg, rc, "%s(%s): %s", fn, path, msg);
    if (rc == AFMT_OK && (rc = lock_inode0(lk, real_path, fn, path, errmsg)) != AFMT_OK) unlink(lp);
    if (rc == AFMT_OK)
        lk->path = lp;
    else
        free(lp);
    return rc;
}

int afmt__lock_take_inode(afmt__lock *lk, const char *real_path, const char *fn, const char *path,
                          char *errmsg) {
    return lk->path ? lock_inode0(lk, real_path, fn, path, errmsg) : AFMT_OK;
}

int afmt__lock_copy_inode(const afmt__lock *lk, int fd, int *out, const char *path, char *errmsg) {
    *out = -1;
    if (lk->fd < 0 || fd < 0) return AFMT_OK;
    char eb[256];
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0), held = 0;
    if (d < 0)
        return afmt__fail(errmsg, AFMT_EIO, "afmt_compact(%s): dup of the new file: %s", path,
                          afmt__errno_text(errno, eb, sizeof eb));
    /* A new file of a name nobody knew: nobody else can hold its lock. */
    if (flock_fd(d, &held) != AFMT_OK || !held) {
        close(d);
        return afmt__fail(errmsg, AFMT_EIO, "afmt_compact(%s): cannot lock the new file", path);
    }
    *out = d;
    return AFMT_OK;
}

void afmt__lock_adopt_inode(afmt__lock *lk, int fd) {
    if (lk->fd >= 0) close(lk->fd); /* the old file's: it has no name any more */
    lk->fd = fd;
}

void afmt__lock_drop(afmt__lock *lk) {
    /* The inode lock goes with its descriptor. */
    if (lk->fd >= 0) close(lk->fd);
    lk->fd = -1;
    if (!lk->path) return;
    /* A failure to remove it is not an error of the call (and must not overwrite the
     * thread's message): the lock then reads as stale once this process is gone, and the
     * next writer on this host breaks it. */
    (void)unlink(lk->path);
    free(lk->path);
    lk->path = NULL;
}
