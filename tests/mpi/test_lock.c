/* test_lock.c - MPI integration: the writer lock "<path>.lock". A writable handle holds it
 * (content names this host and rank 0's pid), a second writer gets AFMT_EBUSY on every
 * rank naming the holder, readers are never blocked, close and failed opens release it, a
 * stale lock of this host is broken, a lock of another host is not, AFMT_NO_LOCK=1 skips
 * locking, the memory backend takes none, compaction keeps it, and the lock is the one of
 * the resolved file (a symbolic link takes and breaks its target's lock). Links, hard
 * links, chdir and FIFOs: tests/mpi/test_paths.c. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "api/file.h" /* afmt__opts_set_backend (internal) */

/* ---- helpers of this file ------------------------------------------------------------ */

/* COLLECTIVE: removes path, its compaction temp and its lock. */
static void rm_all(const char *path) {
    MPI_Barrier(MPI_COMM_WORLD);
    if (tu_rank() == 0) unlink(lock_of(path));
    tu_remove(path);
}

/* This host's name (as the lock writes it) and rank 0's pid, the same on every rank. */
static void holder0(char *host, size_t n, long *pid) {
    if (gethostname(host, n) != 0) snprintf(host, n, "unknown");
    host[n - 1] = 0;
    *pid = (long)getpid();
    MPI_Bcast(host, (int)n, MPI_CHAR, 0, MPI_COMM_WORLD);
    MPI_Bcast(pid, 1, MPI_LONG, 0, MPI_COMM_WORLD);
}

/* A pid that names no process (above Linux's largest pid, 2^22, and checked). */
static long dead_pid(void) {
    long p = (1L << 22) + 12345;
    while (kill((pid_t)p, 0) == 0 || errno != ESRCH) p++;
    MPI_Bcast(&p, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    return p;
}

/* A small committed array, so reopened files can be checked. */
static void put_data(afmt_file *f, int32_t base) {
    const uint64_t shape[1] = {64}, chunk[1] = {16};
    int32_t v[64];
    for (int i = 0; i < 64; i++) v[i] = base + i;
    afmt_info info;
    if (afmt_inquire(f, "a", &info) != AFMT_OK)
        EXPECT_OK(f, afmt_define(f, "a", AFMT_INT32, 1, shape, chunk, NULL, NULL));
    if (tu_rank() == 0) {
        const uint64_t st[1] = {0};
        EXPECT_OK(f, afmt_write(f, "a", st, shape, v));
    }
    EXPECT_OK(f, afmt_commit(f));
}

static void check_data(afmt_file *f, int32_t base, int line) {
    const uint64_t st[1] = {0}, ct[1] = {64};
    int32_t v[64];
    int rc = afmt_read(f, "a", st, ct, v);
    if (rc != AFMT_OK) {
        rec(line, "afmt_read -> %d: %s", rc, afmt_errmsg(f));
        return;
    }
    for (int i = 0; i < 64; i++)
        if (v[i] != base + i) {
            rec(line, "a[%d] = %d, want %d", i, v[i], base + i);
            return;
        }
}

/* ---- tests ----------------------------------------------------------------------------- */

/* create holds the lock; a second writer (same process, so alive) gets EBUSY naming the
 * holder; readers work meanwhile; close removes it and the next writer gets in. */
static void test_lock_basic(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "lk-basic");
    const char *lp = lock_of(path);
    char host[256], text[1024], want[600];
    long pid;
    holder0(host, sizeof host, &pid);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (f) {
        EXPECT(exists0(lp));
        read0(lp, text, sizeof text);
        snprintf(want, sizeof want, "host=%s pid=%ld job=", host, pid);
        if (strncmp(text, want, strlen(want)) != 0)
            rec(__LINE__, "lock holds \"%s\", want it to start with \"%s\"", text, want);
        const char *job = getenv("SLURM_JOB_ID");
        snprintf(want, sizeof want, " job=%s time=", job && *job ? job : "-");
        if (!strstr(text, want)) rec(__LINE__, "lock \"%s\" lacks \"%s\"", text, want);
        EXPECT(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
        put_data(f, 100);

        /* A second writer: EBUSY on every rank, the holder named. */
        char hs[300], ps[64], cmd[700];
        snprintf(hs, sizeof hs, "host=%s", host);
        snprintf(ps, sizeof ps, "pid=%ld", pid);
        snprintf(cmd, sizeof cmd, "afmt unlock %s", path);
        const char *needles[] = {path, "locked for writing", hs, ps, "since", cmd, NULL};
        expect_fail(path, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, needles);
        EXPECT(afmt_strerror(AFMT_EBUSY) &&
               strcmp(afmt_strerror(AFMT_EBUSY), "unknown error code"));
        /* create, even with TRUNC, must not empty a locked file */
        const char *needles2[] = {"afmt_create", "locked for writing", hs, NULL};
        expect_fail(path, 1, AFMT_TRUNC, NULL, AFMT_EBUSY, __LINE__, needles2);
        expect_fail(path, 1, 0, NULL, AFMT_EBUSY, __LINE__, needles2);
        /* the holder's lock is untouched by the failed attempts */
        char again[1024];
        read0(lp, again, sizeof again);
        EXPECT(strcmp(again, text) == 0);

        /* Readers: never blocked; they see the last commit. */
        afmt_file *r = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
        if (r) {
            check_data(r, 100, __LINE__);
            EXPECT_OK(r, afmt_close(r));
        }
        uint64_t id = 0;
        EXPECT_OK(f, afmt_layer_id(f, 0, &id, NULL));
        afmt_file *l = NULL;
        int rc = afmt_open_layer(MPI_COMM_WORLD, path, id, NULL, &l);
        if (rc != AFMT_OK) rec(__LINE__, "afmt_open_layer -> %d: %s", rc, afmt_errmsg(NULL));
        if (all_true(rc == AFMT_OK, MPI_COMM_WORLD)) {
            check_data(l, 100, __LINE__);
            EXPECT_OK(l, afmt_close(l));
        }
        /* a reader's close leaves the writer's lock alone */
        EXPECT(exists0(lp));
        /* the writer still works */
        put_data(f, 200);
        EXPECT_OK(NULL, afmt_close(f));
    }
    EXPECT(!exists0(lp));
    /* After close: a writer gets in (and holds the lock in its turn). */
    afmt_file *g = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, NULL, __LINE__);
    if (g) {
        EXPECT(exists0(lp));
        check_data(g, 200, __LINE__);
        EXPECT_OK(NULL, afmt_close(g));
    }
    EXPECT(!exists0(lp));
    rm_all(path);
    done();
}

/* A stale lock (this host, a pid that does not exist) is broken automatically, by open
 * and by create; the new lock names this process. */
static void test_lock_stale(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "lk-stale");
    const char *lp = lock_of(path);
    char host[256], text[1024], stale[600], want[600];
    long pid, dead = dead_pid();
    holder0(host, sizeof host, &pid);
    snprintf(stale, sizeof stale, "host=%s pid=%ld job=4242 time=2020-01-02T03:04:05Z\n", host,
             dead);
    snprintf(want, sizeof want, "host=%s pid=%ld ", host, pid);

    /* create over a stale lock (a job killed before its create finished) */
    write0(lp, stale);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (f) {
        read0(lp, text, sizeof text);
        if (strncmp(text, want, strlen(want)) != 0)
            rec(__LINE__, "lock holds \"%s\" after breaking, want \"%s...\"", text, want);
        put_data(f, 7);
        EXPECT_OK(NULL, afmt_close(f));
    }
    EXPECT(!exists0(lp));
    /* open over a stale lock (a job killed during a commit, restarted on this node) */
    write0(lp, stale);
    f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, NULL, __LINE__);
    if (f) {
        read0(lp, text, sizeof text);
        if (strncmp(text, want, strlen(want)) != 0)
            rec(__LINE__, "lock holds \"%s\" after breaking, want \"%s...\"", text, want);
        check_data(f, 7, __LINE__);
        put_data(f, 8);
        EXPECT_OK(NULL, afmt_close(f));
    }
    EXPECT(!exists0(lp));
    /* no temporary of the breaking is left behind */
    char aside[1000];
    snprintf(aside, sizeof aside, "%s.break.%s.%ld", lp, host, pid);
    EXPECT(!exists0(aside));
    rm_all(path);
    done();
}

/* A lock of another host, or one that names no holder, is never broken: EBUSY. */
static void test_lock_foreign(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "lk-foreign");
    const char *lp = lock_of(path);
    char text[1024];
    long dead = dead_pid();
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (f) {
        put_data(f, 1);
        EXPECT_OK(NULL, afmt_close(f));
    }
    char foreign[300];
    /* The pid does not exist here, but it is another host's pid: not stale. */
    snprintf(foreign, sizeof foreign, "host=elsewhere pid=%ld job=777 time=2026-01-01T00:00:00Z\n",
             dead);
    write0(lp, foreign);
    const char *needles[] = {"locked for writing",         "host=elsewhere", "job=777",
                             "since 2026-01-01T00:00:00Z", "afmt unlock",    NULL};
    expect_fail(path, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, needles);
    expect_fail(path, 1, AFMT_TRUNC, NULL, AFMT_EBUSY, __LINE__, needles);
    read0(lp, text, sizeof text);
    EXPECT(strcmp(text, foreign) == 0);
    /* readers are not blocked, and the file was not emptied by the refused create */
    afmt_file *r = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDONLY, NULL, __LINE__);
    if (r) {
        check_data(r, 1, __LINE__);
        EXPECT_OK(r, afmt_close(r));
    }
    EXPECT(exists0(lp));
    /* empty or garbage content (a writer between creating and filling it): busy */
    write0(lp, "");
    const char *needles2[] = {"locked for writing", "unknown holder", NULL};
    expect_fail(path, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, needles2);
    write0(lp, "garbage\n");
    expect_fail(path, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, needles2);
    rm_all(path);
    done();
}

/* Failed creates and opens release the lock they took (and leave others' alone). */
static void test_lock_failures(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "lk-fail");
    const char *lp = lock_of(path);
    /* open of a missing file: ENOTFOUND, no lock file made */
    expect_fail(path, 0, AFMT_RDWR, NULL, AFMT_ENOTFOUND, __LINE__, NULL);
    EXPECT(!exists0(lp));
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (f) EXPECT_OK(NULL, afmt_close(f));
    /* create without TRUNC on an existing file: EEXIST, the lock it took is gone */
    expect_fail(path, 1, 0, NULL, AFMT_EEXIST, __LINE__, NULL);
    EXPECT(!exists0(lp));
    /* open of a damaged file: ECORRUPT, lock gone */
    write0(path, "this is not an afmt file, just some text of a few bytes\n");
    expect_fail(path, 0, AFMT_RDWR, NULL, AFMT_ECORRUPT, __LINE__, NULL);
    EXPECT(!exists0(lp));
    /* create in a missing directory: EIO, nothing left */
    char bad[700];
    snprintf(bad, sizeof bad, "%s.nodir/x.afmt", path);
    expect_fail(bad, 1, 0, NULL, AFMT_EIO, __LINE__, NULL);
    rm_all(path);
    done();
}

/* AFMT_NO_LOCK=1: no lock taken, none checked; the memory backend takes none either. */
static void test_lock_disabled(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "lk-nolock");
    const char *lp = lock_of(path);
    setenv("AFMT_NO_LOCK", "1", 1);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (f) {
        EXPECT(!exists0(lp));
        put_data(f, 3);
        EXPECT_OK(NULL, afmt_close(f));
    }
    /* a foreign lock is ignored, and left as it is */
    const char *foreign = "host=elsewhere pid=99 job=1 time=2026-01-01T00:00:00Z\n";
    write0(lp, foreign);
    f = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, NULL, __LINE__);
    if (f) {
        check_data(f, 3, __LINE__);
        EXPECT_OK(NULL, afmt_close(f));
    }
    char text[256];
    read0(lp, text, sizeof text);
    EXPECT(strcmp(text, foreign) == 0);
    /* "0" means locking is on */
    setenv("AFMT_NO_LOCK", "0", 1);
    expect_fail(path, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, NULL);
    unsetenv("AFMT_NO_LOCK");
    expect_fail(path, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, NULL);
    rm_all(path);

    /* memory backend: no lock file, and two writable handles of one image are allowed */
    afmt_opts *o = NULL;
    EXPECT_OK(NULL, afmt_opts_create(&o));
    EXPECT_OK(NULL, afmt__opts_set_backend(o, "memory"));
    const char *mp = tu_path(NULL, "lk-mem");
    f = xopen(MPI_COMM_WORLD, mp, 0, 0, o, __LINE__);
    if (f) {
        EXPECT(!exists0(lock_of(mp)));
        put_data(f, 5);
        afmt_file *g = xopen(MPI_COMM_WORLD, mp, 1, AFMT_RDWR, o, __LINE__);
        if (g) EXPECT_OK(NULL, afmt_close(g));
        EXPECT_OK(NULL, afmt_close(f));
    }
    afmt_opts_free(o);
    done();
}

/* Compaction renames its new file over path: the lock survives it, still excludes other
 * writers, and is gone after close. */
static void test_lock_compact(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "lk-compact");
    const char *lp = lock_of(path);
    char before[1024], after[1024];
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (f) {
        read0(lp, before, sizeof before);
        for (int i = 0; i < 3; i++) put_data(f, 10 * i);
        EXPECT_OK(f, afmt_compact(f));
        uint64_t nl = 0;
        EXPECT_OK(f, afmt_layers(f, &nl));
        EXPECT(nl == 1);
        EXPECT(exists0(lp));
        read0(lp, after, sizeof after);
        EXPECT(strcmp(before, after) == 0);
        expect_fail(path, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, NULL);
        put_data(f, 40);
        check_data(f, 40, __LINE__);
        EXPECT_OK(NULL, afmt_close(f));
    }
    EXPECT(!exists0(lp));
    afmt_file *g = xopen(MPI_COMM_WORLD, path, 1, AFMT_RDWR, NULL, __LINE__);
    if (g) {
        check_data(g, 40, __LINE__);
        EXPECT_OK(g, afmt_compact(g));
        EXPECT_OK(NULL, afmt_close(g));
    }
    EXPECT(!exists0(lp));
    rm_all(path);
    done();
}

/* A writer on a sub-communicator: the lock is per file, not per communicator. Each rank
 * on MPI_COMM_SELF writes its own file and sees its own lock; rank 0's file is also
 * refused to a world-wide writer while rank 0 holds it. */
static void test_lock_self(void **state) {
    (void)state;
    const char *base = tu_path(NULL, "lk-self");
    char mine[700];
    snprintf(mine, sizeof mine, "%s.r%d", base, tu_rank());
    unlink(mine);
    afmt_file *f = NULL;
    int rc = afmt_create(MPI_COMM_SELF, mine, AFMT_TRUNC, NULL, &f);
    if (rc != AFMT_OK) rec(__LINE__, "afmt_create(SELF) -> %d: %s", rc, afmt_errmsg(NULL));
    struct stat sb;
    char lk[720];
    snprintf(lk, sizeof lk, "%s.lock", mine);
    EXPECT(rc != AFMT_OK || stat(lk, &sb) == 0);
    int ok = all_true(rc == AFMT_OK, MPI_COMM_WORLD);
    if (ok) {
        char r0[700];
        snprintf(r0, sizeof r0, "%s.r0", base);
        expect_fail(r0, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, NULL);
    }
    if (rc == AFMT_OK) EXPECT_OK(NULL, afmt_close(f));
    EXPECT(stat(lk, &sb) != 0);
    unlink(mine);
    MPI_Barrier(MPI_COMM_WORLD);
    done();
}

/* Through a symbolic link a writer takes the lock of the file the link names, and breaks
 * a stale one of it (the restart case), never "<link>.lock"; a writer of the target is
 * then refused, and close removes the target's lock. */
static void test_lock_resolved(void **state) {
    (void)state;
    const char *path = tu_path(NULL, "lk-resolved");
    char link[700], host[256], want[600], text[1024], stale[600];
    snprintf(link, sizeof link, "%s-link", path);
    long pid, dead = dead_pid();
    holder0(host, sizeof host, &pid);
    afmt_file *f = xopen(MPI_COMM_WORLD, path, 0, 0, NULL, __LINE__);
    if (f) {
        put_data(f, 11);
        EXPECT_OK(NULL, afmt_close(f));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (tu_rank() == 0 && symlink(path, link) != 0) rec(__LINE__, "symlink failed");
    snprintf(stale, sizeof stale, "host=%s pid=%ld job=1 time=2020-01-02T03:04:05Z\n", host, dead);
    write0(lock_of(path), stale);
    f = xopen(MPI_COMM_WORLD, link, 1, AFMT_RDWR, NULL, __LINE__);
    if (f) {
        read0(lock_of(path), text, sizeof text);
        snprintf(want, sizeof want, "host=%s pid=%ld ", host, pid);
        if (strncmp(text, want, strlen(want)) != 0)
            rec(__LINE__, "target's lock holds \"%s\", want \"%s...\"", text, want);
        EXPECT(!exists0(lock_of(link)));
        const char *needles[] = {"locked for writing", NULL};
        expect_fail(path, 0, AFMT_RDWR, NULL, AFMT_EBUSY, __LINE__, needles);
        check_data(f, 11, __LINE__);
        put_data(f, 12);
        EXPECT_OK(NULL, afmt_close(f));
    }
    EXPECT(!exists0(lock_of(path)) && !exists0(lock_of(link)));
    MPI_Barrier(MPI_COMM_WORLD);
    if (tu_rank() == 0) unlink(link);
    rm_all(path);
    done();
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_basic),    cmocka_unit_test(test_lock_stale),
        cmocka_unit_test(test_lock_foreign),  cmocka_unit_test(test_lock_failures),
        cmocka_unit_test(test_lock_disabled), cmocka_unit_test(test_lock_compact),
        cmocka_unit_test(test_lock_self),     cmocka_unit_test(test_lock_resolved),
    };
    return tu_main(argc, argv, "mpi.lock", tests, sizeof tests / sizeof tests[0]);
}
