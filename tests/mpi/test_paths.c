/* test_paths.c - MPI integration: file-system hazards of shared directories.
 *  - compaction's new file: a name nobody can predict, created exclusively; a link or a
 *    file planted at the old predictable name "<path>.compact" or at the very name tried
 *    is neither followed nor written; leftovers of this user are removed, others' kept;
 *    no temporary file is left after success or after an injected failure;
 *  - compaction keeps the file's mode and group, and through a symbolic link compacts the
 *    target and leaves the link a link;
 *  - one writer per file, whatever its name: a second writer through a symbolic link, a
 *    hard link or a relative path after chdir gets AFMT_EBUSY; readers are never blocked;
 *    ranks with different working directories open rank 0's file;
 *  - only regular files: a FIFO as the data file or as its lock file is refused at once
 *    (alarm() turns a hang into a failure). */

#include "model.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "api/file.h"     /* afmt__opts_set_backend (internal) */
#include "storage/lock.h" /* afmt__lock_read */
#include "storage/storage.h"

/* A hang is a failure: every test arms this many seconds. */
#define HANG_S 60

/* ---- helpers ------------------------------------------------------------------------- */

/* COLLECTIVE: a fresh directory for one test (its path: static storage, a ring of 4). */
static const char *mkdir0(const char *tag) {
    static char ring[4][600];
    static int next;
    char *d = ring[next];
    next = (next + 1) % 4;
    snprintf(d, sizeof ring[0], "%s.d", tu_path(NULL, tag));
    if (tu_rank() == 0 && mkdir(d, 0755) != 0) rec(__LINE__, "mkdir(%s): %s", d, strerror(errno));
    MPI_Barrier(MPI_COMM_WORLD);
    return d;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p) == 0 ? 0 : 0;
}

/* COLLECTIVE: removes a test directory and everything in it. */
static void rmdir0(const char *d) {
    MPI_Barrier(MPI_COMM_WORLD);
    if (tu_rank() == 0) nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    MPI_Barrier(MPI_COMM_WORLD);
}

/* "<a>/<b>" in a ring of static buffers. */
static const char *join(const char *a, const char *b) {
    static char ring[16][700];
    static int next;
    char *p = ring[next];
    next = (next + 1) % 16;
    snprintf(p, sizeof ring[0], "%s/%s", a, b);
    return p;
}

/* COLLECTIVE: rank 0's lstat of p, shared: its st_mode (0 if missing), uid, gid. */
static void lstat0(const char *p, unsigned *mode, long *uid, long *gid) {
    long v[3] = {0, -1, -1};
    struct stat sb;
    if (tu_rank() == 0 && lstat(p, &sb) == 0) {
        v[0] = (long)sb.st_mode;
        v[1] = (long)sb.st_uid;
        v[2] = (long)sb.st_gid;
    }
    MPI_Bcast(v, 3, MPI_LONG, 0, MPI_COMM_WORLD);
    *mode = (unsigned)v[0];
    if (uid) *uid = v[1];
    if (gid) *gid = v[2];
}

/* COLLECTIVE: 1 on every rank if rank 0 sees p itself (lstat: a link, even a dangling
 * one, counts; exists0 of model.h follows it). */
static int lexists0(const char *p) {
    unsigned m;
    lstat0(p, &m, NULL, NULL);
    return m != 0;
}

/* COLLECTIVE: rank 0 makes a symbolic link at p to target. */
static void symlink0(const char *target, const char *p) {
    MPI_Barrier(MPI_COMM_WORLD);
    if (tu_rank() == 0 && symlink(target, p) != 0)
        rec(__LINE__, "symlink(%s, %s): %s", target, p, strerror(errno));
    MPI_Barrier(MPI_COMM_WORLD);
}

/* COLLECTIVE: the target of link p as rank 0 reads it ("" if none). */
static void readlink0(const char *p, char *buf, int n) {
    buf[0] = 0;
    if (tu_rank() == 0) {
        ssize_t k = readlink(p, buf, (size_t)n - 1);
        buf[k > 0 ? k : 0] = 0;
    }
    MPI_Bcast(buf, n, MPI_CHAR, 0, MPI_COMM_WORLD);
}

/* COLLECTIVE: names in directory d that start with prefix and contain ".compact", except
 * `keep` ones listed (NULL-terminated); each is recorded as a failure at line. */
static int temps_left(const char *d, const char *prefix, const char *const *keep, int line) {
    int n = 0;
    if (tu_rank() == 0) {
        DIR *dir = opendir(d);
        struct dirent *e;
        while (dir && (e = readdir(dir)) != NULL) {
            if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || !strstr(e->d_name, ".compact"))
                continue;
            int kept = 0;
            for (int i = 0; keep && keep[i]; i++) kept |= strcmp(keep[i], e->d_name) == 0;
            if (kept) continue;
            rec(line, "temporary file %s/%s left behind", d, e->d_name);
            n++;
        }
        if (dir) closedir(dir);
    }
    MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return n;
}

#define N_ELEMS 101 /* odd: the ranks' shares differ */

/* COLLECTIVE over f's ranks: each writes its share of array "a" (values base + i), then
 * they commit. */
static void put(afmt_file *f, int32_t base, int line) {
    const uint64_t shape[1] = {N_ELEMS}, chunk[1] = {7};
    afmt_info info;
    if (afmt_inquire(f, "a", &info) != AFMT_OK)
        EXPECT_OK_AT(line, f, afmt_define(f, "a", AFMT_INT32, 1, shape, chunk, NULL, NULL));
    uint64_t lo = (uint64_t)N_ELEMS * (uint64_t)f->rank / (uint64_t)f->size;
    uint64_t hi = (uint64_t)N_ELEMS * (uint64_t)(f->rank + 1) / (uint64_t)f->size;
    int32_t v[N_ELEMS];
    for (uint64_t i = lo; i < hi; i++) v[i - lo] = base + (int32_t)i;
    if (hi > lo) {
        const uint64_t st[1] = {lo}, ct[1] = {hi - lo};
        EXPECT_OK_AT(line, f, afmt_write(f, "a", st, ct, v));
    }
    EXPECT_OK_AT(line, f, afmt_commit(f));
}

/* Reads all of "a" and compares it with base + i. */
static void check(afmt_file *f, int32_t base, int line) {
    const uint64_t st[1] = {0}, ct[1] = {N_ELEMS};
    int32_t v[N_ELEMS];
    int rc = afmt_read(f, "a", st, ct, v);
    if (rc != AFMT_OK) {
        rec(line, "afmt_read -> %d: %s", rc, NSTR(afmt_errmsg(f)));
        return;
    }
    for (int i = 0; i < N_ELEMS; i++)
        if (v[i] != base + i) {
            rec(line, "a[%d] = %d, want %d", i, v[i], base + i);
            return;
        }
}

/* COLLECTIVE: opens path read-only, checks "a" against base, closes. */
static void check_file(const char *path, int32_t base, int line) {
    afmt_file *r = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, line);
    if (r) {
        check(r, base, line);
        EXPECT_OK_AT(line, r, afmt_close(r));
    }
}

/* COLLECTIVE: 1 if the lock on the file itself (hard links) applies in directory d: the
 * library takes it on local file systems only (src/storage/lock.c). */
static int inode_locks_here(const char *d) {
    struct statfs sf;
    int yes = 0;
    if (tu_rank() == 0 && statfs(d, &sf) == 0) {
        unsigned long t = (unsigned long)sf.f_type;
        yes = t == 0x01021994UL || t == 0xEF53UL || t == 0x58465342UL || t == 0x9123683EUL ||
              t == 0x794C7630UL;
    }
    MPI_Bcast(&yes, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return yes;
}

/* ---- compaction: the new file -------------------------------------------------------- */

/* A link and another user's file planted at the old predictable name "<path>.compact",
 * and at the exact name compaction tries first (the test knob makes it known): never
 * followed, never written, never removed; the data file stays a regular file. */
static void test_paths_planted(void **state) {
    (void)state;
    alarm(HANG_S);
    const char *d = mkdir0("pt-plant");
    const char *path = join(d, "data.afmt"), *victim = join(d, "victim");
    const char *old = join(d, "data.afmt.compact");
    const char *planted = join(d, "data.afmt.compact-PLANTED00001");
    const char *leftover = join(d, "data.afmt.compact-LEFTOVER0001");
    const char *others = join(d, "data.afmt.compact-OTHERUSER001");
    int root = geteuid() == 0;
    char text[256];
    write0(victim, "victim\n");
    symlink0("victim", old);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (f) {
        put(f, 10, __LINE__);
        put(f, 20, __LINE__);
        EXPECT_OK(f, afmt_compact(f));
        EXPECT_LAYERS(f, 1);
        check(f, 20, __LINE__);
    }
    unsigned m;
    lstat0(old, &m, NULL, NULL);
    EXPECT(S_ISLNK(m));
    read0(victim, text, sizeof text);
    EXPECT(strcmp(text, "victim\n") == 0);
    lstat0(path, &m, NULL, NULL);
    EXPECT(S_ISREG(m));

    /* The exact name compaction tries first: a link there is not followed (O_EXCL), the
     * next name is taken. A file of another user there (root only: chown) is not
     * touched; a leftover of this user at such a name is removed. */
    if (tu_rank() == 0) {
        unlink(old);
        if (symlink("victim", planted) != 0) rec(__LINE__, "symlink: %s", strerror(errno));
    }
    write0(leftover, "leftover of an interrupted compaction\n");
    write0(others, "another user's file\n");
    if (root && tu_rank() == 0 && chown(others, 65534, 65534) != 0)
        rec(__LINE__, "chown: %s", strerror(errno));
    write0(old, "another user's file at the old name\n");
    if (root && tu_rank() == 0 && chown(old, 65534, 65534) != 0)
        rec(__LINE__, "chown: %s", strerror(errno));
    if (f) {
        put(f, 30, __LINE__);
        afmt__storage_set_temp_suffix("PLANTED00001");
        EXPECT_OK(f, afmt_compact(f));
        afmt__storage_set_temp_suffix(NULL);
        EXPECT_LAYERS(f, 1);
        check(f, 30, __LINE__);
    }
    lstat0(planted, &m, NULL, NULL);
    EXPECT(S_ISLNK(m));
    read0(victim, text, sizeof text);
    EXPECT(strcmp(text, "victim\n") == 0);
    lstat0(path, &m, NULL, NULL);
    EXPECT(S_ISREG(m));
    EXPECT(!lexists0(leftover));
    if (root) {
        long uid;
        lstat0(others, &m, &uid, NULL);
        EXPECT(S_ISREG(m) && uid == 65534);
        read0(others, text, sizeof text);
        EXPECT(strcmp(text, "another user's file\n") == 0);
        lstat0(old, &m, &uid, NULL);
        EXPECT(S_ISREG(m) && uid == 65534);
        read0(old, text, sizeof text);
        EXPECT(strcmp(text, "another user's file at the old name\n") == 0);
    }
    /* Another user's file at the first name tried: not reused either. */
    if (root && f) {
        afmt__storage_set_temp_suffix("OTHERUSER001");
        EXPECT_OK(f, afmt_compact(f));
        afmt__storage_set_temp_suffix(NULL);
        read0(others, text, sizeof text);
        EXPECT(strcmp(text, "another user's file\n") == 0);
    }
    if (f) EXPECT_OK(NULL, afmt_close(f));
    /* Left: the link and (root) the other user's files; a non-root run's own planted
     * files at those names were leftovers of this user: removed. */
    const char *keep[] = {"data.afmt.compact-PLANTED00001", "data.afmt.compact",
                          "data.afmt.compact-OTHERUSER001", NULL};
    const char *keep_user[] = {"data.afmt.compact-PLANTED00001", NULL};
    temps_left(d, "data.afmt", root ? keep : keep_user, __LINE__);
    check_file(path, 30, __LINE__);
    rmdir0(d);
    alarm(0);
    done();
}

/* Through a symbolic link: the target is compacted, the link stays the same link; the
 * mode and group of the file are kept; no temporary file is left. */
static void test_paths_symlink_mode(void **state) {
    (void)state;
    alarm(HANG_S);
    const char *d = mkdir0("pt-sym");
    const char *real = join(d, "real.afmt"), *link = join(d, "link.afmt");
    char text[600];
    /* a link to a missing file: create through it is refused, nothing made */
    symlink0("real.afmt", link);
    const char *needles[] = {"symbolic link", NULL};
    expect_fail(link, 1, AFMT_TRUNC, NULL, AFMT_EINVAL, __LINE__, needles);
    EXPECT(!lexists0(real));
    afmt_file *f = xopen(MPI_COMM_WORLD, real, 0, 0, NULL, __LINE__);
    if (f) {
        put(f, 1, __LINE__);
        put(f, 2, __LINE__);
        EXPECT_OK(NULL, afmt_close(f));
    }
    /* Mode 0640 and a group other than ours (root: any gid; others: a supplementary
     * group, if there is one). */
    long gid = -1;
    if (tu_rank() == 0) {
        gid_t groups[64];
        int ng = getgroups(64, groups);
        if (geteuid() == 0) gid = 4242;
        for (int i = 0; gid < 0 && i < ng; i++)
            if (groups[i] != getegid()) gid = (long)groups[i];
        if (chmod(real, 0640) != 0) rec(__LINE__, "chmod: %s", strerror(errno));
        if (gid >= 0 && chown(real, (uid_t)-1, (gid_t)gid) != 0) {
            rec(__LINE__, "chown(%ld): %s", gid, strerror(errno));
            gid = -1;
        }
    }
    MPI_Bcast(&gid, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    f = xopen(MPI_COMM_WORLD, link, 1, AFMT_RDWR, NULL, __LINE__);
    if (f) {
        check(f, 2, __LINE__);
        put(f, 3, __LINE__);
        EXPECT_OK(f, afmt_compact(f));
        EXPECT_LAYERS(f, 1);
        check(f, 3, __LINE__);
        put(f, 4, __LINE__); /* the handle goes on in the compacted file */
        EXPECT_OK(f, afmt_compact(f));
        check(f, 4, __LINE__);
        /* still locked while open: under both names */
        expect_fail(real, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, NULL);
        EXPECT_OK(NULL, afmt_close(f));
    }
    unsigned m;
    long g;
    lstat0(link, &m, NULL, NULL);
    EXPECT(S_ISLNK(m));
    readlink0(link, text, sizeof text);
    EXPECT(strcmp(text, "real.afmt") == 0);
    lstat0(real, &m, NULL, &g);
    EXPECT(S_ISREG(m));
    if ((m & 07777) != 0640) rec(__LINE__, "mode %04o after compaction, want 0640", m & 07777);
    if (gid >= 0 && g != gid) rec(__LINE__, "group %ld after compaction, want %ld", g, gid);
    if (gid < 0 && tu_rank() == 0) fprintf(stderr, "note: no second group: group not tested\n");
    EXPECT(!lexists0(lock_of(real)) && !lexists0(lock_of(link)));
    temps_left(d, "", NULL, __LINE__);
    check_file(real, 4, __LINE__);
    check_file(link, 4, __LINE__);
    afmt_file *r = xopen(MPI_COMM_WORLD, real, 1, AFMT_RDONLY, NULL, __LINE__);
    if (r) {
        EXPECT_LAYERS(r, 1);
        EXPECT_OK(NULL, afmt_close(r));
    }
    rmdir0(d);
    alarm(0);
    done();
}

/* A compaction that fails (a storage fault on one rank, at several steps) leaves no
 * temporary file and the file as it was; so does one on the memory backend. */
static void test_paths_failed_compaction(void **state) {
    (void)state;
    alarm(HANG_S);
    const char *d = mkdir0("pt-fail");
    const char *path = join(d, "data.afmt");
    const afmt_storage_fault cases[] = {
        {AFMT_FAULT_WRITE, 1, ENOSPC, AFMT_FAULT_FAIL, 0},
        {AFMT_FAULT_SYNC, 1, EIO, AFMT_FAULT_FAIL, -1},
        {AFMT_FAULT_WRITE, 2, EIO, AFMT_FAULT_SHORT, 0},
        {AFMT_FAULT_SYNC, 2, EIO, AFMT_FAULT_FAIL, tu_size() - 1},
    };
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    int32_t base = 100;
    if (f) put(f, base, __LINE__);
    for (size_t k = 0; f && k < sizeof cases / sizeof cases[0]; k++) {
        put(f, ++base, __LINE__);
        afmt_storage_fault spec = cases[k];
        if (spec.rank >= tu_size()) spec.rank = 0;
        EXPECT_OK(NULL, afmt__storage_set_fault(&spec));
        int rc = afmt_compact(f);
        afmt__storage_set_fault(NULL);
        if (rc == AFMT_OK) rec(__LINE__, "case %zu: afmt_compact succeeded despite the fault", k);
        int lo = rc, hi = rc;
        MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        if (lo != hi) rec(__LINE__, "case %zu: ranks disagree: %d .. %d", k, lo, hi);
        temps_left(d, "", NULL, __LINE__);
        check(f, base, __LINE__);
    }
    if (f) {
        EXPECT_LAYERS(f, 1 + sizeof cases / sizeof cases[0]);
        EXPECT_OK(f, afmt_compact(f)); /* and then one goes through */
        EXPECT_LAYERS(f, 1);
        EXPECT_OK(NULL, afmt_close(f));
    }
    temps_left(d, "", NULL, __LINE__);
    check_file(path, base, __LINE__);

    /* Memory backend (images live in one process: rank 0 alone): compaction works on a
     * name of its own; an image at the first name tried is not reused. */
    afmt_opts *o = NULL;
    EXPECT_OK(NULL, afmt_opts_create(&o));
    EXPECT_OK(NULL, afmt__opts_set_backend(o, "memory"));
    const char *mp = join(d, "mem.afmt"), *taken = join(d, "mem.afmt.compact-MEMTEMP00001");
    afmt_file *g = tu_rank() == 0 ? xopen(MPI_COMM_SELF, mp, 0, 0, o, __LINE__) : NULL;
    if (g) {
        EXPECT_OK(NULL, afmt__storage_mem_put(taken, (const uint8_t *)"x", 1));
        put(g, 7, __LINE__);
        put(g, 8, __LINE__);
        afmt__storage_set_temp_suffix("MEMTEMP00001");
        EXPECT_OK(g, afmt_compact(g));
        afmt__storage_set_temp_suffix(NULL);
        EXPECT_LAYERS(g, 1);
        check(g, 8, __LINE__);
        EXPECT_OK(NULL, afmt_close(g));
        uint8_t *img = NULL;
        uint64_t len = 0;
        EXPECT_OK(NULL, afmt__storage_mem_get(taken, &img, &len));
        EXPECT(len == 1 && img && img[0] == 'x');
        free(img);
    }
    afmt_opts_free(o);
    rmdir0(d);
    alarm(0);
    done();
}

/* ---- one writer per file, whatever its name ------------------------------------------ */

/* Two writers through a symbolic link (either way round): the second gets AFMT_EBUSY;
 * readers through either name are not blocked. */
static void test_paths_lock_symlink(void **state) {
    (void)state;
    alarm(HANG_S);
    const char *d = mkdir0("pt-lksym");
    const char *real = join(d, "real.afmt"), *link = join(d, "link.afmt");
    const char *other = mkdir0("pt-lksym2");
    const char *far = join(other, "far.afmt"); /* an absolute link from another directory */
    afmt_file *f = xopen(MPI_COMM_WORLD, real, 0, 0, NULL, __LINE__);
    if (f) put(f, 5, __LINE__);
    symlink0("real.afmt", link);
    symlink0(real, far);
    const char *needles[] = {"locked for writing", NULL};
    if (f) {
        expect_fail(link, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, needles);
        expect_fail(far, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, needles);
        expect_fail(link, 1, AFMT_TRUNC, NULL, AFMT_EBUSY, __LINE__, needles);
        check_file(link, 5, __LINE__);
        check_file(far, 5, __LINE__);
        EXPECT_OK(NULL, afmt_close(f));
    }
    EXPECT(!lexists0(lock_of(real)));
    f = xopen(MPI_COMM_WORLD, far, 1, AFMT_RDWR, NULL, __LINE__);
    if (f) {
        EXPECT(lexists0(lock_of(real)) && !lexists0(lock_of(far)));
        expect_fail(real, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, needles);
        expect_fail(link, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, needles);
        check_file(real, 5, __LINE__);
        put(f, 6, __LINE__);
        EXPECT_OK(NULL, afmt_close(f));
    }
    EXPECT(!lexists0(lock_of(real)));
    check_file(link, 6, __LINE__);
    rmdir0(other);
    rmdir0(d);
    alarm(0);
    done();
}

/* A hard link (a second name of the same inode): the second writer gets AFMT_EBUSY, also
 * afmt_create with AFMT_TRUNC, which must not empty the file; readers are not blocked. */
static void test_paths_lock_hardlink(void **state) {
    (void)state;
    alarm(HANG_S);
    const char *d = mkdir0("pt-lkhard");
    const char *a = join(d, "a.afmt"), *b = join(d, "b.afmt");
    if (!inode_locks_here(d)) {
        if (tu_rank() == 0)
            fprintf(stderr, "note: %s is not a local file system: hard links not tested\n", d);
        rmdir0(d);
        alarm(0);
        done();
        return;
    }
    afmt_file *f = xopen(MPI_COMM_WORLD, a, 0, 0, NULL, __LINE__);
    if (f) put(f, 40, __LINE__);
    MPI_Barrier(MPI_COMM_WORLD);
    if (tu_rank() == 0 && link(a, b) != 0) rec(__LINE__, "link: %s", strerror(errno));
    MPI_Barrier(MPI_COMM_WORLD);
    const char *needles[] = {"locked for writing", "hard link", NULL};
    if (f) {
        expect_fail(b, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, needles);
        expect_fail(b, 1, AFMT_TRUNC, NULL, AFMT_EBUSY, __LINE__, needles);
        EXPECT(!lexists0(lock_of(b))); /* the refused writer's lock file is gone */
        check_file(b, 40, __LINE__);
        put(f, 41, __LINE__);
        check_file(b, 41, __LINE__);
        EXPECT_OK(NULL, afmt_close(f));
    }
    /* The other way round, and after the first writer is gone the second gets in. */
    f = xopen(MPI_COMM_WORLD, b, 1, AFMT_RDWR, NULL, __LINE__);
    if (f) {
        expect_fail(a, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, needles);
        put(f, 42, __LINE__);
        EXPECT_OK(NULL, afmt_close(f));
    }
    check_file(a, 42, __LINE__);
    EXPECT(!lexists0(lock_of(a)) && !lexists0(lock_of(b)));
    /* Compaction makes a new file: the lock moves to it, so a hard link made to the new
     * file afterwards is refused as well. */
    const char *c = join(d, "c.afmt");
    f = xopen(MPI_COMM_WORLD, a, 1, AFMT_RDWR, NULL, __LINE__);
    if (f) {
        EXPECT_OK(f, afmt_compact(f));
        MPI_Barrier(MPI_COMM_WORLD);
        if (tu_rank() == 0 && link(a, c) != 0) rec(__LINE__, "link: %s", strerror(errno));
        MPI_Barrier(MPI_COMM_WORLD);
        expect_fail(c, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, needles);
        check_file(c, 42, __LINE__);
        put(f, 43, __LINE__);
        EXPECT_OK(NULL, afmt_close(f));
    }
    check_file(c, 43, __LINE__);
    EXPECT(!lexists0(lock_of(a)) && !lexists0(lock_of(c)));
    /* A compaction whose directory sync fails after the rename (AFMT_EIO): the file moved,
     * so the handle and the lock move with it all the same. */
    const char *e = join(d, "e.afmt");
    f = xopen(MPI_COMM_WORLD, a, 1, AFMT_RDWR, NULL, __LINE__);
    if (f) {
        afmt_storage_fault spec = {AFMT_FAULT_DIRSYNC, 1, EIO, AFMT_FAULT_FAIL, 0};
        EXPECT_OK(NULL, afmt__storage_set_fault(&spec));
        EXPECT_RC(f, afmt_compact(f), AFMT_EIO);
        afmt__storage_set_fault(NULL);
        MPI_Barrier(MPI_COMM_WORLD);
        if (tu_rank() == 0 && link(a, e) != 0) rec(__LINE__, "link: %s", strerror(errno));
        MPI_Barrier(MPI_COMM_WORLD);
        expect_fail(e, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, needles);
        put(f, 44, __LINE__);
        EXPECT_OK(NULL, afmt_close(f));
    }
    check_file(e, 44, __LINE__);
    EXPECT(!lexists0(lock_of(a)) && !lexists0(lock_of(e)));
    rmdir0(d);
    alarm(0);
    done();
}

/* A relative path, then the application changes directory: the lock, compaction and the
 * release stay on the file that was opened; ranks with different working directories
 * open rank 0's file. */
static void test_paths_lock_chdir(void **state) {
    (void)state;
    alarm(HANG_S);
    char home[PATH_MAX];
    if (!getcwd(home, sizeof home)) rec(__LINE__, "getcwd: %s", strerror(errno));
    const char *d1 = mkdir0("pt-cd1"), *d2 = mkdir0("pt-cd2");
    const char *abs1 = join(d1, "x.afmt");
    if (chdir(d1) != 0) rec(__LINE__, "chdir: %s", strerror(errno));
    afmt_file *f = xopen(MPI_COMM_WORLD, "x.afmt", 0, 0, NULL, __LINE__);
    if (chdir(d2) != 0) rec(__LINE__, "chdir: %s", strerror(errno));
    if (f) {
        put(f, 60, __LINE__);
        const char *needles[] = {"locked for writing", NULL};
        expect_fail(abs1, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, needles);
        EXPECT_OK(f, afmt_compact(f));
        EXPECT_LAYERS(f, 1);
        check(f, 60, __LINE__);
        put(f, 61, __LINE__);
        EXPECT(lexists0(lock_of(abs1)));
        EXPECT_OK(NULL, afmt_close(f));
    }
    EXPECT(!lexists0(lock_of(abs1)));
    EXPECT(!lexists0(join(d2, "x.afmt")) && !lexists0(join(d2, "x.afmt.lock")));
    temps_left(d1, "", NULL, __LINE__);
    temps_left(d2, "", NULL, __LINE__);
    check_file(abs1, 61, __LINE__);
    afmt_file *r = xopen(MPI_COMM_WORLD, abs1, 1, AFMT_RDONLY, NULL, __LINE__);
    if (r) {
        EXPECT_LAYERS(r, 2);
        EXPECT_OK(NULL, afmt_close(r));
    }
    /* Rank 0 in d1, the others in d2 (where "x.afmt" is missing): everybody opens d1's. */
    if (chdir(tu_rank() == 0 ? d1 : d2) != 0) rec(__LINE__, "chdir: %s", strerror(errno));
    f = xopen(MPI_COMM_WORLD, "x.afmt", 1, AFMT_RDWR, NULL, __LINE__);
    if (f) {
        check(f, 61, __LINE__);
        put(f, 62, __LINE__);
        EXPECT_OK(NULL, afmt_close(f));
    }
    if (chdir(home) != 0) rec(__LINE__, "chdir: %s", strerror(errno));
    EXPECT(!lexists0(join(d2, "x.afmt")));
    check_file(abs1, 62, __LINE__);
    rmdir0(d1);
    rmdir0(d2);
    alarm(0);
    done();
}

/* ---- only regular files --------------------------------------------------------------- */

/* A FIFO as the data file: create, open, open_layer refuse it at once with AFMT_EINVAL
 * (MPI-IO and POSIX backends); no lock file is left. A FIFO or a link as the lock file:
 * AFMT_EIO at once, the FIFO left alone; readers unaffected. */
static void test_paths_fifo(void **state) {
    (void)state;
    alarm(HANG_S);
    const char *d = mkdir0("pt-fifo");
    const char *p = join(d, "fifo.afmt");
    MPI_Barrier(MPI_COMM_WORLD);
    if (tu_rank() == 0 && mkfifo(p, 0644) != 0) rec(__LINE__, "mkfifo: %s", strerror(errno));
    MPI_Barrier(MPI_COMM_WORLD);
    const char *needles[] = {"FIFO", "not a regular file", NULL};
    expect_fail(p, 0, AFMT_RDONLY, NULL, AFMT_EINVAL, __LINE__, needles);
    expect_fail(p, 0, AFMT_RDWR, NULL, AFMT_EINVAL, __LINE__, needles);
    expect_fail(p, 1, AFMT_TRUNC, NULL, AFMT_EINVAL, __LINE__, needles);
    expect_fail(p, 1, 0, NULL, AFMT_EINVAL, __LINE__, needles);
    afmt_file *l = NULL;
    int rc = afmt_open_layer(MPI_COMM_WORLD, p, 1, NULL, &l);
    if (rc != AFMT_EINVAL) rec(__LINE__, "afmt_open_layer -> %d: %s", rc, afmt_errmsg(NULL));
    afmt_opts *o = NULL;
    EXPECT_OK(NULL, afmt_opts_create(&o));
    EXPECT_OK(NULL, afmt__opts_set_backend(o, "posix"));
    expect_fail(p, 0, AFMT_RDONLY, o, AFMT_EINVAL, __LINE__, needles);
    afmt_opts_free(o);
    EXPECT(!lexists0(lock_of(p)));
    unsigned m;
    lstat0(p, &m, NULL, NULL);
    EXPECT(S_ISFIFO(m));

    /* A FIFO, then a symbolic link, as the lock file of a regular file. */
    const char *q = join(d, "data.afmt"), *victim = join(d, "victim");
    afmt_file *f = xopen(MPI_COMM_WORLD, q, 0, 0, NULL, __LINE__);
    if (f) {
        put(f, 9, __LINE__);
        EXPECT_OK(NULL, afmt_close(f));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (tu_rank() == 0 && mkfifo(lock_of(q), 0644) != 0)
        rec(__LINE__, "mkfifo: %s", strerror(errno));
    MPI_Barrier(MPI_COMM_WORLD);
    const char *needles2[] = {"writer lock", "FIFO", NULL};
    expect_fail(q, 0, AFMT_RDWR, NULL, AFMT_EIO, __LINE__, needles2);
    expect_fail(q, 1, AFMT_TRUNC, NULL, AFMT_EIO, __LINE__, needles2);
    check_file(q, 9, __LINE__);
    if (tu_rank() == 0) {
        afmt_lock_holder h;
        char msg[AFMT_ERRMSG_MAX];
        rc = afmt__lock_read(lock_of(q), &h, msg);
        if (rc != AFMT_EIO || !strstr(msg, "FIFO"))
            rec(__LINE__, "afmt__lock_read of a FIFO -> %d: %s", rc, msg);
    }
    lstat0(lock_of(q), &m, NULL, NULL);
    EXPECT(S_ISFIFO(m));
    /* a link to a stale-looking lock elsewhere: not followed, not broken, not removed */
    char stale[300];
    snprintf(stale, sizeof stale, "host=elsewhere pid=1 job=1 time=2020-01-01T00:00:00Z\n");
    write0(victim, stale);
    MPI_Barrier(MPI_COMM_WORLD);
    if (tu_rank() == 0) unlink(lock_of(q));
    symlink0("victim", lock_of(q));
    const char *needles3[] = {"writer lock", "symbolic link", NULL};
    expect_fail(q, 0, AFMT_RDWR, NULL, AFMT_EIO, __LINE__, needles3);
    lstat0(lock_of(q), &m, NULL, NULL);
    EXPECT(S_ISLNK(m));
    char text[300];
    read0(victim, text, sizeof text);
    EXPECT(strcmp(text, stale) == 0);
    rmdir0(d);
    alarm(0);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_planted),
        cmocka_unit_test(test_paths_symlink_mode),
        cmocka_unit_test(test_paths_failed_compaction),
        cmocka_unit_test(test_paths_lock_symlink),
        cmocka_unit_test(test_paths_lock_hardlink),
        cmocka_unit_test(test_paths_lock_chdir),
        cmocka_unit_test(test_paths_fifo),
    };
    return tu_main(argc, argv, "mpi.paths", tests, sizeof tests / sizeof tests[0]);
}
