/* crash_writer.c - the victim of the crash test (run_crash.sh kills it with SIGKILL).
 *
 *   crash_writer FILE START_STEP NSTEPS MARKER
 *
 * START_STEP 1 creates FILE (AFMT_TRUNC) and defines the arrays; otherwise FILE is opened
 * read-write and must hold step START_STEP-1. For each step s it writes the content of
 * crash_content.h, sets the file attribute "step" = s and commits; only after afmt_commit
 * returned does rank 0 append "s\n" to MARKER and fsync it, so the marker never claims a
 * commit that did not return. After every commit rank 0 also checks that the file is
 * exactly as long as the committed end (a tail left by a killed commit must be gone) and
 * that the new layer's data starts at the previous committed end (the tail is reused).
 *
 * Side files for the script: every rank appends its pid to MARKER.pids at start (so the
 * script can kill exactly this job by id), and rank 0 appends its phase to MARKER.phase
 * ("W s" writing, "C s" in afmt_commit, "D s" done), unsynced, so the script can tell
 * where the kill landed. A failure prints "crash_writer: FAIL ..." and exits nonzero.
 *
 * With CRASH_ASYNC=1 (MPI_THREAD_MULTIPLE: afmt_commit_start's background mode) or
 * CRASH_ASYNC=start (plain MPI_Init) in the environment each step commits with afmt_commit_start
 * and sleeps 20 ms (the solver computing) while the commit drains; the next step's writes stage
 * meanwhile and its afmt_set_attr finishes the commit, after which step s-1 goes to the marker; the
 * last step is finished by afmt_commit_wait.
 *
 * CRASH_DURABILITY=full|data|none sets afmt_opts_set_durability (default full). A SIGKILL
 * loses no write the process made (the page cache survives it), so the file must read as
 * a commit whole at every level: only a power loss tells the levels apart.
 *
 * CRASH_RETAIN=K sets afmt_opts_set_retention(o, K, 0): from step K + 2 on every commit is
 * followed, inside afmt_commit, by afmt_compact_keep (the kills aimed at "C s" land in it
 * too). After each commit the file then has min(s, K + 1) layers, and only commits that
 * did not compact are checked for the place of their layer. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "afmt.h"
#include "api/file.h" /* f->super.eof: the committed end, for the file size check */
#include "crash_content.h"

static int g_rank;
static uint64_t g_retain; /* CRASH_RETAIN: keep K, 0 = off */

static void die(afmt_file *f, const char *what, int rc) {
    fprintf(stderr, "crash_writer: FAIL rank %d: %s -> %d (%s): %s\n", g_rank, what, rc,
            afmt_strerror(rc), afmt_errmsg(f));
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

static void append_line(int fd, const char *fmt, uint64_t v, int sync) {
    char line[64];
    int n = snprintf(line, sizeof line, fmt, (unsigned long long)v);
    if (write(fd, line, (size_t)n) != n || (sync && fsync(fd) != 0)) {
        fprintf(stderr, "crash_writer: FAIL rank %d: marker write: %s\n", g_rank, strerror(errno));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

/* After the commit of step s returned (or, asynchronously, was finished): rank 0 records
 * it in the marker and checks the file's size and the new layer's place. */
static void after_commit(afmt_file *f, uint64_t s, uint64_t old_eof, const char *path, int mfd,
                         int phfd) {
    if (g_rank == 0) {
        append_line(mfd, "%llu\n", s, 1);
        append_line(phfd, "D %llu\n", s, 0);
        struct stat sb;
        memset(&sb, 0, sizeof sb);
        if (stat(path, &sb) != 0 || (uint64_t)sb.st_size != f->super.eof) {
            fprintf(stderr,
                    "crash_writer: FAIL: after commit %llu the file has %lld bytes, the "
                    "committed end is %llu (an orphaned tail survived the commit)\n",
                    (unsigned long long)s, (long long)sb.st_size, (unsigned long long)f->super.eof);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        /* The new layer starts at the old committed end: a tail is overwritten, not
         * skipped. */
        const afmt_layer_info *L = &f->idx.layers[f->idx.n_layers - 1];
        uint64_t want = g_retain && s > g_retain + 1 ? g_retain + 1 : s;
        int compacted = want != s; /* its layer was rewritten into a new file */
        if (f->idx.n_layers != want || (!compacted && L->data_offset != old_eof)) {
            fprintf(stderr,
                    "crash_writer: FAIL: commit %llu made layer %llu with data at %llu, "
                    "want layer %llu at the previous committed end %llu\n",
                    (unsigned long long)s, (unsigned long long)f->idx.n_layers,
                    (unsigned long long)L->data_offset, (unsigned long long)want,
                    (unsigned long long)old_eof);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
}

int main(int argc, char **argv) {
    /* CRASH_ASYNC=1: MPI_THREAD_MULTIPLE, so that afmt_commit_start runs the commit's
     * collective part and the slot on its helper thread; CRASH_ASYNC=start: plain MPI_Init,
     * that part at the start and the slot at the wait. */
    const char *env_async = getenv("CRASH_ASYNC");
    int async = env_async && (!strcmp(env_async, "1") || !strcmp(env_async, "start"));
    if (env_async && !strcmp(env_async, "1")) {
        int got = MPI_THREAD_SINGLE;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &got);
    } else {
        MPI_Init(&argc, &argv);
    }
    int nranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    if (argc != 5) {
        if (g_rank == 0) fprintf(stderr, "usage: crash_writer FILE START_STEP NSTEPS MARKER\n");
        MPI_Finalize();
        return 2;
    }
    const char *path = argv[1], *marker = argv[4];
    uint64_t start = strtoull(argv[2], NULL, 10), nsteps = strtoull(argv[3], NULL, 10);
    uint64_t old_eof = 0;
    if (start < 1) {
        if (g_rank == 0) fprintf(stderr, "crash_writer: START_STEP must be >= 1\n");
        MPI_Finalize();
        return 2;
    }

    char side[4200];
    snprintf(side, sizeof side, "%s.pids", marker);
    int pfd = open(side, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (pfd >= 0) {
        append_line(pfd, "%llu\n", (uint64_t)getpid(), 0);
        close(pfd);
    }
    int mfd = -1, phfd = -1;
    if (g_rank == 0) {
        mfd = open(marker, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        snprintf(side, sizeof side, "%s.phase", marker);
        phfd = open(side, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (mfd < 0 || phfd < 0) {
            fprintf(stderr, "crash_writer: FAIL: cannot open %s: %s\n", marker, strerror(errno));
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }

    afmt_opts *o = NULL;
    int rc = afmt_opts_create(&o);
    if (rc == AFMT_OK) rc = afmt_opts_set_block_size(o, CRASH_BLOCK_SIZE);
    const char *env_dur = getenv("CRASH_DURABILITY");
    if (rc == AFMT_OK && env_dur && strcmp(env_dur, "full"))
        rc = afmt_opts_set_durability(o, !strcmp(env_dur, "data")   ? AFMT_DURABILITY_DATA
                                         : !strcmp(env_dur, "none") ? AFMT_DURABILITY_NONE
                                                                    : (afmt_durability)-1);
    const char *env_ret = getenv("CRASH_RETAIN");
    g_retain = env_ret ? strtoull(env_ret, NULL, 10) : 0;
    if (rc == AFMT_OK && g_retain) rc = afmt_opts_set_retention(o, g_retain, 0.0);
    if (rc != AFMT_OK) die(NULL, "options", rc);

    afmt_file *f = NULL;
    if (start == 1) {
        rc = afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, o, &f);
        if (rc != AFMT_OK) die(NULL, "afmt_create", rc);
        uint64_t fs[3] = {F_D0, F_D1, F_D2}, fc[3] = {F_C0, F_C1, F_C2};
        uint64_t ps[2] = {P_D0, P_D1}, pc[2] = {P_C0, P_C1};
        const char *fd[3] = {"z", "y", "x"};
        int32_t pfill = P_FILL;
        if ((rc = afmt_define(f, "field", AFMT_FLOAT64, 3, fs, fc, fd, NULL)) != AFMT_OK)
            die(f, "afmt_define(field)", rc);
        if ((rc = afmt_define(f, "part", AFMT_INT32, 2, ps, pc, NULL, &pfill)) != AFMT_OK)
            die(f, "afmt_define(part)", rc);
    } else {
        rc = afmt_open(MPI_COMM_WORLD, path, AFMT_RDWR, o, &f);
        if (rc != AFMT_OK) die(NULL, "afmt_open", rc);
        int64_t prev = -1;
        uint64_t n = 1;
        if ((rc = afmt_get_attr(f, NULL, "step", AFMT_INT64, &n, &prev)) != AFMT_OK)
            die(f, "afmt_get_attr(step)", rc);
        if ((uint64_t)prev != start - 1) {
            fprintf(stderr, "crash_writer: FAIL: file holds step %lld, expected %llu\n",
                    (long long)prev, (unsigned long long)(start - 1));
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }

    /* This rank's rows of "field", both column halves in one buffer each. */
    uint64_t r_lo, r_hi;
    crash_split(F_D0, g_rank, nranks, &r_lo, &r_hi);
    uint64_t rows = r_hi - r_lo;
    double *fb = malloc(sizeof(double) * (size_t)(rows * F_D1 * F_D2 + 1));
    int32_t *pb = malloc(sizeof(int32_t) * (size_t)(P_H * P_W));
    if (!fb || !pb) die(f, "malloc", AFMT_ENOMEM);

    for (uint64_t s = start; s < start + nsteps; s++) {
        if (g_rank == 0) append_line(phfd, "W %llu\n", s, 0);
        for (int half = 0; half < 2 && rows > 0; half++) {
            uint64_t c0 = half ? F_SPLIT2 : 0, cw = half ? F_D2 - F_SPLIT2 : F_SPLIT2;
            uint64_t k = 0;
            for (uint64_t z = r_lo; z < r_hi; z++)
                for (uint64_t y = 0; y < F_D1; y++)
                    for (uint64_t x = c0; x < c0 + cw; x++)
                        fb[k++] = field_val((z * F_D1 + y) * F_D2 + x, s);
            uint64_t st[3] = {r_lo, 0, c0}, ct[3] = {rows, F_D1, cw};
            if ((rc = afmt_write(f, "field", st, ct, fb)) != AFMT_OK)
                die(f, "afmt_write(field)", rc);
        }
        uint64_t pr0, pc0, lo, hi;
        part_box(s, &pr0, &pc0);
        crash_split(P_H, g_rank, nranks, &lo, &hi);
        if (hi > lo) {
            uint64_t k = 0;
            for (uint64_t r = pr0 + lo; r < pr0 + hi; r++)
                for (uint64_t c = pc0; c < pc0 + P_W; c++) pb[k++] = part_val(r * P_D1 + c, s);
            uint64_t st[2] = {pr0 + lo, pc0}, ct[2] = {hi - lo, P_W};
            if ((rc = afmt_write(f, "part", st, ct, pb)) != AFMT_OK) die(f, "afmt_write(part)", rc);
        }
        int64_t sv = (int64_t)s;
        if ((rc = afmt_set_attr(f, NULL, "step", AFMT_INT64, 1, &sv)) != AFMT_OK)
            die(f, "afmt_set_attr(step)", rc);
        if (async && s > start) after_commit(f, s - 1, old_eof, path, mfd, phfd);
        if (g_rank == 0) append_line(phfd, "C %llu\n", s, 0);
        old_eof = f->super.eof;
        if (async) {
            /* The commit drains while the solver computes (and the next step's writes
             * stage): the kills aimed at "C s" land in the drain. */
            if ((rc = afmt_commit_start(f)) != AFMT_OK) die(f, "afmt_commit_start", rc);
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        } else {
            if ((rc = afmt_commit(f)) != AFMT_OK) die(f, "afmt_commit", rc);
            after_commit(f, s, old_eof, path, mfd, phfd);
        }
    }
    if (async && nsteps > 0) {
        if ((rc = afmt_commit_wait(f)) != AFMT_OK) die(f, "afmt_commit_wait", rc);
        after_commit(f, start + nsteps - 1, old_eof, path, mfd, phfd);
    }
    free(fb);
    free(pb);
    if ((rc = afmt_close(f)) != AFMT_OK) die(NULL, "afmt_close", rc);
    afmt_opts_free(o);
    if (g_rank == 0) {
        close(mfd);
        close(phfd);
    }
    MPI_Finalize();
    return 0;
}
