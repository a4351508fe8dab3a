/* storage.c - backend dispatch: open (with the cross-rank agreement on its outcome),
 * rename, remove and exists by kind; the piece limit shared by the backends; the fault
 * wrapper (storage_fault.c) put around a new storage while a test has set a fault spec. */
#include "storage/storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/random.h>
#endif

#include "common/util.h"
#include "mpi/mpiutil.h"
#include "storage/http.h"

/* Test-only knob (see storage.h); a plain static because tests set it between I/O. */
static uint64_t max_piece = AFMT_PIECE;

#ifdef AFMT_TESTING
void afmt__storage_set_max_piece(uint64_t bytes) {
    if (bytes == 0) bytes = AFMT_PIECE;
    if (bytes > (uint64_t)INT_MAX) bytes = (uint64_t)INT_MAX;
    max_piece = bytes;
}
#endif

uint64_t afmt__storage_max_piece(void) {
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

void afmt__storage_free(afmt_storage *st) {
    if (!st) return;
    if (st->comm != MPI_COMM_NULL) MPI_Comm_free(&st->comm);
    free(st->path);
    free(st);
}

/* Every rank returns the code and message of the lowest failing rank (afmt__agree),
 * so that the failing rank's cause, not "failed on another rank", is what all report. */
static int agree(MPI_Comm comm, int rc, char *errmsg) {
    char local[AFMT_ERRMSG_MAX] = "";
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    return afmt__agree(comm, rank, size, rc, errmsg ? errmsg : local);
}

/* "a FIFO", ... for messages about a file that is not a regular one. */
static const char *file_type(unsigned type) {
    switch (type) {
    case S_IFDIR:
        return "a directory";
    case S_IFIFO:
        return "a FIFO";
    case S_IFCHR:
        return "a character device";
    case S_IFBLK:
        return "a block device";
    case S_IFSOCK:
        return "a socket";
    case S_IFLNK:
        return "a symbolic link";
    default:
        return "of an unknown type";
    }
}

/* Rank 0 stats path and broadcasts the result, so EEXIST/ENOTFOUND are decided once and
 * identically on every rank (not by racing opens). Only regular files are afmt files:
 * MPI-IO would wait forever opening a FIFO (for a writer) and complain about a directory
 * in its own words. Returns AFMT_OK or the agreed code. */
static int precheck(MPI_Comm comm, const char *path, unsigned flags, char *errmsg) {
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    int msg[2] = {0, 0}; /* {2 not regular, type / 1 exists / 0 missing / -1 stat failed, errno} */
    if (rank == 0) {
        struct stat sb;
        if (stat(path, &sb) == 0) {
            msg[0] = S_ISREG(sb.st_mode) ? 1 : 2;
            msg[1] = (int)(sb.st_mode & S_IFMT);
        } else if (errno == ENOENT)
            msg[0] = 0;
        else {
            msg[0] = -1;
            msg[1] = errno;
        }
    }
    if (MPI_Bcast(msg, 2, MPI_INT, 0, comm) != MPI_SUCCESS)
        return afmt__fail(errmsg, AFMT_EMPI, "open(%s): MPI_Bcast of the existence check failed",
                          path);
    if (msg[0] < 0) {
        char eb[256];
        return afmt__fail(errmsg, AFMT_EIO, "open(%s): stat on rank 0: %s", path,
                          afmt__errno_text(msg[1], eb, sizeof eb));
    }
    if (msg[0] == 2 && (unsigned)msg[1] == S_IFDIR)
        return afmt__fail(errmsg, AFMT_EINVAL, "open(%s): is a directory", path);
    if (msg[0] == 2)
        return afmt__fail(errmsg, AFMT_EINVAL,
                          "open(%s): is %s, not a regular file (afmt files are regular files)",
                          path, file_type((unsigned)msg[1]));
    if (msg[0] == 1 && (flags & AFMT_ST_EXCL))
        return afmt__fail(errmsg, AFMT_EEXIST, "open(%s): file exists (exclusive create)", path);
    if (msg[0] == 0 && !(flags & AFMT_ST_CREATE))
        return afmt__fail(errmsg, AFMT_ENOTFOUND, "open(%s): no such file", path);
    return AFMT_OK;
}

int afmt__storage_open(afmt_storage_kind kind, MPI_Comm comm, const char *path, unsigned flags,
                       MPI_Info info, afmt_storage **out, char *errmsg) {
    if (out) *out = NULL;
    if (!out || !path || !path[0])
        return afmt__fail(errmsg, AFMT_EINVAL, "afmt__storage_open: NULL or empty argument");
    if (kind != AFMT_STORAGE_MPIIO && kind != AFMT_STORAGE_POSIX && kind != AFMT_STORAGE_MEMORY &&
        kind != AFMT_STORAGE_HTTP)
        return afmt__fail(errmsg, AFMT_EINVAL, "open(%s): unknown storage kind %d", path,
                          (int)kind);
    /* Creating a file means writing it; make that implicit rather than an error. */
    if (flags & AFMT_ST_CREATE) flags |= AFMT_ST_WRITE;
    if (!(flags & (AFMT_ST_READ | AFMT_ST_WRITE)) ||
        (flags & ~(unsigned)(AFMT_ST_READ | AFMT_ST_WRITE | AFMT_ST_CREATE | AFMT_ST_EXCL)))
        return afmt__fail(errmsg, AFMT_EINVAL, "open(%s): bad flags 0x%x", path, flags);
    if ((flags & AFMT_ST_EXCL) && !(flags & AFMT_ST_CREATE))
        return afmt__fail(errmsg, AFMT_EINVAL, "open(%s): EXCL without CREATE", path);

    int use_mpi = kind != AFMT_STORAGE_MEMORY || mpi_active();
    if (use_mpi && comm == MPI_COMM_NULL)
        return afmt__fail(errmsg, AFMT_EINVAL, "open(%s): MPI_COMM_NULL", path);

    /* Dup first: it is collective and must happen on every rank whatever else fails. */
    MPI_Comm dup = MPI_COMM_NULL;
    if (use_mpi && MPI_Comm_dup(comm, &dup) != MPI_SUCCESS)
        return afmt__fail(errmsg, AFMT_EMPI, "open(%s): MPI_Comm_dup failed", path);

    int rc = AFMT_OK;
    afmt_storage *st = calloc(1, sizeof *st);
    /* Tests: the fault wrapper's state, allocated now so that wrapping cannot fail later. */
    void *fw = NULL;
    int want_fault = afmt__storage_fault_active();
    if (st) {
        st->kind = kind;
        st->comm = dup;
        st->path = strdup(path);
        if (want_fault) fw = afmt__storage_fault_alloc();
    }
    if (!st || !st->path || (want_fault && !fw)) {
        rc = afmt__fail(errmsg, AFMT_ENOMEM, "open(%s): out of memory", path);
        if (!st && dup != MPI_COMM_NULL) MPI_Comm_free(&dup);
    }
    if (use_mpi) rc = agree(comm, rc, errmsg);
    if (rc == AFMT_OK && kind != AFMT_STORAGE_MEMORY && kind != AFMT_STORAGE_HTTP)
        rc = precheck(st->comm, path, flags, errmsg);
    if (rc != AFMT_OK) {
        afmt__storage_fault_free(fw);
        afmt__storage_free(st);
        return rc;
    }

    switch (kind) {
    case AFMT_STORAGE_MPIIO:
        rc = afmt__storage_mpiio_open(st, flags, info, errmsg);
        break;
    case AFMT_STORAGE_POSIX:
        rc = afmt__storage_posix_open(st, flags, errmsg);
        break;
    case AFMT_STORAGE_HTTP:
        rc = afmt__storage_http_open(st, flags, info, errmsg);
        break;
    default:
        rc = afmt__storage_mem_open(st, flags, errmsg);
        break;
    }
    /* The MPI-IO backend agrees internally (its close is collective); the per-rank
     * backends agree here and undo a local success with their (local) close. */
    if (kind != AFMT_STORAGE_MPIIO && use_mpi) {
        int local_ok = rc == AFMT_OK;
        rc = agree(st->comm, rc, errmsg);
        if (rc != AFMT_OK && local_ok) {
            afmt__storage_fault_free(fw);
            st->ops->close(st);
            return rc;
        }
    }
    if (rc != AFMT_OK) {
        afmt__storage_fault_free(fw);
        afmt__storage_free(st);
        return rc;
    }
    if (fw) afmt__storage_fault_wrap(st, fw);
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
            return afmt__fail(errmsg, AFMT_EINVAL, "rename: path too long: %s", path);
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    char eb[256];
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return afmt__fail(errmsg, AFMT_EIO, "rename: open(%s) for fsync: %s", dir,
                          afmt__errno_text(errno, eb, sizeof eb));
    int rc = AFMT_OK;
    /* Some file systems cannot sync a directory (EINVAL/ENOTSUP); nothing more to do. */
    if (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP)
        rc = afmt__fail(errmsg, AFMT_EIO, "rename: fsync(%s): %s", dir,
                        afmt__errno_text(errno, eb, sizeof eb));
    close(fd);
    return rc;
}

int afmt__storage_rename(afmt_storage_kind kind, const char *from, const char *to, char *errmsg) {
    if (!from || !to) return afmt__fail(errmsg, AFMT_EINVAL, "afmt__storage_rename: NULL path");
    if (kind == AFMT_STORAGE_MEMORY) {
        int rc = afmt__storage_mem_rename(from, to, errmsg);
        return rc == AFMT_OK ? afmt__storage_fault_dirsync(to, errmsg) : rc;
    }
    if (rename(from, to) != 0) {
        char eb[256];
        int e = errno;
        return afmt__fail(errmsg, e == ENOENT ? AFMT_ENOTFOUND : AFMT_EIO, "rename(%s, %s): %s",
                          from, to, afmt__errno_text(e, eb, sizeof eb));
    }
    int rc = sync_parent(to, errmsg);
    return rc == AFMT_OK ? afmt__storage_fault_dirsync(to, errmsg) : rc; /* tests */
}

int afmt__storage_remove(afmt_storage_kind kind, const char *path, char *errmsg) {
    if (!path) return afmt__fail(errmsg, AFMT_EINVAL, "afmt__storage_remove: NULL path");
    if (kind == AFMT_STORAGE_MEMORY) return afmt__storage_mem_remove(path, errmsg);
    if (unlink(path) != 0 && errno != ENOENT) {
        char eb[256];
        return afmt__fail(errmsg, AFMT_EIO, "unlink(%s): %s", path,
                          afmt__errno_text(errno, eb, sizeof eb));
    }
    return AFMT_OK;
}

int afmt__storage_exists(afmt_storage_kind kind, const char *path) {
    if (!path) return 0;
    if (kind == AFMT_STORAGE_MEMORY) return afmt__storage_mem_exists(path);
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* ---- paths ------------------------------------------------------------------------ */

/* The directory part of path ("." for a bare name, "/" for "/x"), malloc'd; and where the
 * name starts. */
static char *dir_of(const char *path, const char **base) {
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

int afmt__storage_resolve_path(const char *path, int create, char **out, char *errmsg) {
    *out = NULL;
    char *r = realpath(path, NULL);
    if (r) {
        *out = r;
        return AFMT_OK;
    }
    if (errno == ENOMEM) return afmt__fail(errmsg, AFMT_ENOMEM, "out of memory resolving %s", path);
    struct stat sb;
    if (errno == ENOENT && lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode)) {
        if (create)
            return afmt__fail(errmsg, AFMT_EINVAL,
                              "%s is a symbolic link to a missing file: create the file under the "
                              "link's target name, or remove the link",
                              path);
    } else if (errno == ENOENT) {
        /* A file still to be created: its directory resolved, plus its name. */
        const char *base;
        char *dir = dir_of(path, &base);
        if (!dir) return afmt__fail(errmsg, AFMT_ENOMEM, "out of memory resolving %s", path);
        char *rd = *base && strcmp(base, ".") && strcmp(base, "..") ? realpath(dir, NULL) : NULL;
        free(dir);
        if (rd) {
            size_t n = strlen(rd), m = strlen(base);
            char *p = malloc(n + m + 2);
            if (!p) {
                free(rd);
                return afmt__fail(errmsg, AFMT_ENOMEM, "out of memory resolving %s", path);
            }
            memcpy(p, rd, n);
            if (n == 0 || p[n - 1] != '/') p[n++] = '/';
            memcpy(p + n, base, m + 1);
            free(rd);
            *out = p;
            return AFMT_OK;
        }
    }
    /* Not resolvable: the open that follows says why (missing directory, permissions). */
    if (!(*out = strdup(path)))
        return afmt__fail(errmsg, AFMT_ENOMEM, "out of memory resolving %s", path);
    return AFMT_OK;
}

/* COLLECTIVE. Rank 0's outcome to every rank: its rc and, on success, a copy of its
 * string s in *out on every rank (rank 0 included), else its message in errmsg. The same
 * code on every rank. */
static int share_string(MPI_Comm comm, int rc, const char *s, char **out, char *errmsg) {
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    *out = NULL;
    char buf[PATH_MAX + 64];
    int hdr[2] = {rc, 0};
    if (rank == 0 && rc == AFMT_OK) {
        size_t n = strlen(s);
        if (n >= sizeof buf)
            hdr[0] =
                afmt__fail(errmsg, AFMT_EINVAL, "a path of %zu bytes is too long: %.200s...", n, s);
        else {
            memcpy(buf, s, n + 1);
            hdr[1] = (int)n + 1;
        }
    }
    if (MPI_Bcast(hdr, 2, MPI_INT, 0, comm) != MPI_SUCCESS)
        return afmt__fail(errmsg, AFMT_EMPI, "MPI_Bcast of a path failed");
    if (hdr[0] != AFMT_OK) {
        char msg[AFMT_ERRMSG_MAX];
        if (rank == 0) snprintf(msg, sizeof msg, "%s", errmsg ? errmsg : afmt__thread_errbuf());
        if (MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, 0, comm) != MPI_SUCCESS)
            return afmt__fail(errmsg, AFMT_EMPI, "MPI_Bcast of a message failed");
        msg[sizeof msg - 1] = '\0';
        if (rank != 0) afmt__fail(errmsg, hdr[0], "%s", msg);
        return hdr[0];
    }
    if (MPI_Bcast(buf, hdr[1], MPI_CHAR, 0, comm) != MPI_SUCCESS)
        return afmt__fail(errmsg, AFMT_EMPI, "MPI_Bcast of a path failed");
    buf[hdr[1] - 1] = '\0';
    *out = strdup(buf);
    int all = agree(comm, *out ? AFMT_OK : AFMT_ENOMEM, NULL);
    if (all != AFMT_OK) {
        free(*out);
        *out = NULL;
        return afmt__fail(errmsg, all, "%s while sharing the path %s", afmt_strerror(all), buf);
    }
    return AFMT_OK;
}

afmt_storage_kind afmt__storage_kind_of(const char *path, afmt_storage_kind configured) {
    return afmt__http_is_url(path) ? AFMT_STORAGE_HTTP : configured;
}

int afmt__storage_resolve(afmt_storage_kind kind, MPI_Comm comm, const char *path, int create,
                          char **out, char *errmsg) {
    *out = NULL;
    int rank = 0, rc = AFMT_OK;
    MPI_Comm_rank(comm, &rank);
    char *r = NULL;
    int as_is = kind == AFMT_STORAGE_MEMORY || kind == AFMT_STORAGE_HTTP; /* names, not paths */
    if (rank == 0 && as_is && !(r = strdup(path)))
        rc = afmt__fail(errmsg, AFMT_ENOMEM, "out of memory resolving %s", path);
    else if (rank == 0 && !as_is)
        rc = afmt__storage_resolve_path(path, create, &r, errmsg);
    rc = share_string(comm, rc, r, out, errmsg);
    free(r);
    return rc;
}

/* ---- temporary files -------------------------------------------------------------- */

#define SUFFIX_LEN 12
static const char temp_tag[] = ".compact-";
static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
static char test_suffix[SUFFIX_LEN + 1]; /* afmt__storage_set_temp_suffix */

#ifdef AFMT_TESTING
void afmt__storage_set_temp_suffix(const char *suffix) {
    snprintf(test_suffix, sizeof test_suffix, "%s", suffix ? suffix : "");
}
#endif

/* SUFFIX_LEN letters and digits (71 bits) from the kernel's generator, so that nobody can
 * plant something at the name beforehand. Without one: clock, pid and a counter, mixed. */
static void random_suffix(char *out) {
    uint8_t b[SUFFIX_LEN];
    size_t got = 0;
#if defined(__linux__)
    while (got < sizeof b) {
        ssize_t r = getrandom(b + got, sizeof b - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
#endif
    if (got < sizeof b) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        while (fd >= 0 && got < sizeof b) {
            ssize_t r = read(fd, b + got, sizeof b - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += (size_t)r;
        }
        if (fd >= 0) close(fd);
    }
    if (got < sizeof b) {
        static uint64_t counter;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                     ((uint64_t)getpid() << 16) ^ ++counter;
        for (size_t i = got; i < sizeof b; i++) {
            x = afmt__mix64(x + i);
            b[i] = (uint8_t)x;
        }
    }
    for (size_t i = 0; i < SUFFIX_LEN; i++) out[i] = alnum[b[i] % (sizeof alnum - 1)];
    out[SUFFIX_LEN] = '\0';
}

/* Rank 0: removes the leftovers of interrupted compactions of near (storage.h). Failures
 * are ignored: a leftover costs only space. */
static void remove_leftovers(const char *near) {
    const char *base;
    char *dir = dir_of(near, &base);
    if (!dir) return;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (dfd < 0) return;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    size_t bl = strlen(base), tl = sizeof temp_tag - 1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name, *rest = n + bl;
        if (strncmp(n, base, bl) != 0) continue;
        int match = strcmp(rest, ".compact") == 0 ||
                    (strncmp(rest, temp_tag, tl) == 0 && strlen(rest + tl) == SUFFIX_LEN &&
                     strspn(rest + tl, alnum) == SUFFIX_LEN);
        struct stat sb;
        /* Only this user's plain files: never a link, nor another user's file. */
        if (match && fstatat(dfd, n, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode) &&
            sb.st_uid == geteuid() && sb.st_nlink == 1)
            (void)unlinkat(dfd, n, 0);
    }
    closedir(d);
}

/* Rank 0 of afmt__storage_mktemp: a new file (image) of a fresh name next to near. */
static int create_temp(afmt_storage_kind kind, const char *near, char **name, int *fd,
                       char *errmsg) {
    size_t n = strlen(near), tl = sizeof temp_tag - 1;
    char *p = malloc(n + tl + SUFFIX_LEN + 1);
    if (!p) return afmt__fail(errmsg, AFMT_ENOMEM, "out of memory for a temporary name");
    memcpy(p, near, n);
    memcpy(p + n, temp_tag, tl);
    char *suffix = p + n + tl, eb[256];
    if (kind != AFMT_STORAGE_MEMORY) remove_leftovers(near);
    for (int attempt = 0; attempt < 64; attempt++) {
        if (attempt == 0 && test_suffix[0])
            memcpy(suffix, test_suffix, sizeof test_suffix);
        else
            random_suffix(suffix);
        if (kind == AFMT_STORAGE_MEMORY) {
            int rc = afmt__storage_mem_create(p, errmsg);
            if (rc == AFMT_EEXIST) continue;
            if (rc == AFMT_OK)
                *name = p;
            else
                free(p);
            return rc;
        }
        int d;
        do d = open(p, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        while (d < 0 && errno == EINTR);
        if (d >= 0) {
            *fd = d;
            *name = p;
            return AFMT_OK;
        }
        if (errno == EEXIST || errno == ELOOP) continue; /* taken (maybe planted): next name */
        int rc = afmt__fail(errmsg, AFMT_EIO, "cannot create the temporary file %s: %s", p,
                            afmt__errno_text(errno, eb, sizeof eb));
        free(p);
        return rc;
    }
    free(p);
    return afmt__fail(errmsg, AFMT_EIO, "cannot create a temporary file next to %s: 64 names taken",
                      near);
}

int afmt__storage_mktemp(afmt_storage_kind kind, MPI_Comm comm, const char *near,
                         afmt_storage_temp *t, char *errmsg) {
    t->path = NULL;
    t->fd = -1;
    t->made = 0;
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    char *name = NULL;
    int rc = rank == 0 ? create_temp(kind, near, &name, &t->fd, errmsg) : AFMT_OK;
    if (name) t->made = 1; /* until shared: removed below if sharing fails */
    rc = share_string(comm, rc, name, &t->path, errmsg);
    if (rc == AFMT_OK && kind == AFMT_STORAGE_MEMORY) {
        /* Memory images live in each process: every other rank makes its own. */
        if (rank != 0) rc = afmt__storage_mem_create(t->path, errmsg);
        if (rank != 0) t->made = rc == AFMT_OK;
        rc = agree(comm, rc, errmsg); /* the failing rank's message on every rank */
    }
    if (rc != AFMT_OK && name) {
        /* t->path is NULL if sharing failed: drop the name rank 0 made. */
        if (!t->path) {
            t->path = name;
            name = NULL;
        }
    }
    free(name);
    if (rc != AFMT_OK) afmt__storage_temp_drop(kind, t);
    return rc;
}

int afmt__storage_replace(afmt_storage_kind kind, afmt_storage_temp *t, const char *target,
                          char *errmsg) {
    if (!t || !t->path || !target)
        return afmt__fail(errmsg, AFMT_EINVAL, "afmt__storage_replace: NULL argument");
    if (kind == AFMT_STORAGE_MEMORY) {
        int rc = afmt__storage_mem_rename(t->path, target, errmsg);
        if (rc == AFMT_OK) t->made = 0;
        return rc == AFMT_OK ? afmt__storage_fault_dirsync(target, errmsg) : rc; /* tests */
    }
    char eb[256];
    struct stat old, mine;
    if (stat(target, &old) != 0) {
        int e = errno;
        return afmt__fail(errmsg, e == ENOENT ? AFMT_ENOTFOUND : AFMT_EIO, "stat(%s): %s", target,
                          afmt__errno_text(e, eb, sizeof eb));
    }
    if (t->fd < 0 || fstat(t->fd, &mine) != 0)
        return afmt__fail(errmsg, AFMT_EIO, "fstat(%s): %s", t->path,
                          t->fd < 0 ? "not open" : afmt__errno_text(errno, eb, sizeof eb));
    /* Group first: a change of group may clear the set-group-ID bit that the mode sets. */
    int changed = 0;
    if (mine.st_gid != old.st_gid) {
        if (fchown(t->fd, (uid_t)-1, old.st_gid) != 0)
            return afmt__fail(errmsg, AFMT_EIO,
                              "cannot give the new file %s the group (gid %ld) of %s: %s; %s is "
                              "left as it was, since a file of another group would change who "
                              "may read it (make the file's group one of yours, or run as a "
                              "member of its group)",
                              t->path, (long)old.st_gid, target,
                              afmt__errno_text(errno, eb, sizeof eb), target);
        changed = 1;
    }
    mode_t want = old.st_mode & 07777;
    if (changed || (mine.st_mode & 07777) != want) {
        if (fchmod(t->fd, want) != 0)
            return afmt__fail(errmsg, AFMT_EIO,
                              "cannot give the new file %s the mode %04o of %s: %s", t->path,
                              (unsigned)want, target, afmt__errno_text(errno, eb, sizeof eb));
        changed = 1;
    }
    /* The new owner, group and mode must survive a crash with the rename. */
    if (changed && fsync(t->fd) != 0 && errno != EINVAL && errno != ENOTSUP)
        return afmt__fail(errmsg, AFMT_EIO, "fsync(%s): %s", t->path,
                          afmt__errno_text(errno, eb, sizeof eb));
    if (rename(t->path, target) != 0) {
        int e = errno;
        return afmt__fail(errmsg, e == ENOENT ? AFMT_ENOTFOUND : AFMT_EIO, "rename(%s, %s): %s",
                          t->path, target, afmt__errno_text(e, eb, sizeof eb));
    }
    t->made = 0;
    int rc = sync_parent(target, errmsg);
    return rc == AFMT_OK ? afmt__storage_fault_dirsync(target, errmsg) : rc; /* tests */
}

void afmt__storage_temp_drop(afmt_storage_kind kind, afmt_storage_temp *t) {
    if (!t) return;
    if (t->fd >= 0) close(t->fd);
    if (t->made && t->path) {
        if (kind == AFMT_STORAGE_MEMORY)
            afmt__storage_mem_remove(t->path, NULL);
        else
            (void)unlink(t->path);
    }
    free(t->path);
    t->path = NULL;
    t->fd = -1;
    t->made = 0;
}
