/* soak_writer.c - the writer of the soak test (scripts/soak kills it with SIGKILL).
 *
 *   soak_writer FILE SEED START NCOMMITS MARKER RSSLOG
 *
 * START 1 creates FILE (AFMT_TRUNC); otherwise FILE is opened read-write and its file
 * attribute "commit" must be START-1. It then makes commits START .. START+NCOMMITS-1 of
 * the history of soak_model.h (random defines, deletes, redefines and hyperslab writes of
 * random sizes), each followed, only after afmt_commit returned, by rank 0 appending
 * "k\n" to MARKER and fsyncing it. Every rank appends its pid to MARKER.pids (the script
 * kills by pid); rank 0 appends "C k" to MARKER.phase before each afmt_commit.
 * Every 50 commits (k % 50 == 0) and at its end rank 0 appends
 * "k pid VmHWM_kB VmRSS_kB ru_maxrss_kB" to RSSLOG. Failures print "soak_writer: FAIL". */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "afmt.h"
#include "soak_model.h"

static int g_rank;

static void die(afmt_file *f, const char *what, int rc) {
    fprintf(stderr, "soak_writer: FAIL rank %d: %s -> %d (%s): %s\n", g_rank, what, rc,
            afmt_strerror(rc), afmt_errmsg(f));
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

static void append_line(int fd, const char *line, int sync) {
    size_t n = strlen(line);
    if (write(fd, line, n) != (ssize_t)n || (sync && fsync(fd) != 0)) {
        fprintf(stderr, "soak_writer: FAIL rank %d: side file write: %s\n", g_rank,
                strerror(errno));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

/* kB value of "key:" in /proc/self/status, or -1. */
static long status_kb(const char *key) {
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fp && fgets(line, sizeof line, fp))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    if (fp) fclose(fp);
    return v;
}

static void rss_sample(const char *rsslog, uint64_t k) {
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    getrusage(RUSAGE_SELF, &ru);
    char line[160];
    snprintf(line, sizeof line, "%llu %ld %ld %ld %ld\n", (unsigned long long)k, (long)getpid(),
             status_kb("VmHWM"), status_kb("VmRSS"), (long)ru.ru_maxrss);
    int fd = open(rsslog, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        append_line(fd, line, 0);
        close(fd);
    }
}

/* Writes this rank's part of box [start, start+count) of slot s at commit k: rows of
 * dimension 0 split among the ranks, then two calls split along the last dimension. */
static void write_box(afmt_file *f, uint64_t seed, uint64_t k, int s, const soak_arr *a,
                      const uint64_t *start, const uint64_t *count, int nranks, uint8_t *buf) {
    uint64_t lo, hi;
    soak_split(count[0], g_rank, nranks, &lo, &hi);
    if (hi == lo) return;
    uint64_t st[SOAK_MAXNDIM], ct[SOAK_MAXNDIM];
    for (int d = 0; d < a->ndim; d++) {
        st[d] = start[d];
        ct[d] = count[d];
    }
    st[0] += lo;
    ct[0] = hi - lo;
    int L = a->ndim - 1;
    uint64_t full = ct[L], base = st[L],
             cut = full >= 2 ? 1 + (k + (uint64_t)s) % (full - 1) : full;
    char name[16];
    snprintf(name, sizeof name, "s%d", s);
    for (int part = 0; part < 2; part++) {
        st[L] = part ? base + cut : base;
        ct[L] = part ? full - cut : cut;
        if (ct[L] == 0) continue;
        soak_fill_box(seed, k, s, a, st, ct, buf);
        int rc = afmt_write(f, name, st, ct, buf);
        if (rc != AFMT_OK) die(f, "afmt_write", rc);
    }
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int nranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    if (argc != 7) {
        if (g_rank == 0)
            fprintf(stderr, "usage: soak_writer FILE SEED START NCOMMITS MARKER RSSLOG\n");
        MPI_Finalize();
        return 2;
    }
    const char *path = argv[1], *marker = argv[5], *rsslog = argv[6];
    uint64_t seed = strtoull(argv[2], NULL, 10), start = strtoull(argv[3], NULL, 10),
             ncommits = strtoull(argv[4], NULL, 10);
    if (start < 1) {
        if (g_rank == 0) fprintf(stderr, "soak_writer: START must be >= 1\n");
        MPI_Finalize();
        return 2;
    }
    char side[4200], line[96];
    snprintf(side, sizeof side, "%s.pids", marker);
    int pfd = open(side, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (pfd >= 0) {
        snprintf(line, sizeof line, "%ld\n", (long)getpid());
        append_line(pfd, line, 0);
        close(pfd);
    }
    int mfd = -1, phfd = -1;
    if (g_rank == 0) {
        mfd = open(marker, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        snprintf(side, sizeof side, "%s.phase", marker);
        phfd = open(side, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (mfd < 0 || phfd < 0) {
            fprintf(stderr, "soak_writer: FAIL: cannot open %s: %s\n", marker, strerror(errno));
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }

    afmt_opts *o = NULL;
    int rc = afmt_opts_create(&o);
    if (rc == AFMT_OK) rc = afmt_opts_set_block_size(o, (uint64_t)32 << 10);
    if (rc == AFMT_OK) rc = afmt_opts_set_cache_size(o, (uint64_t)1 << 20);
    if (rc != AFMT_OK) die(NULL, "options", rc);
    afmt_file *f = NULL;
    if (start == 1) {
        if ((rc = afmt_create(MPI_COMM_WORLD, path, AFMT_TRUNC, o, &f)) != AFMT_OK)
            die(NULL, "afmt_create", rc);
    } else {
        if ((rc = afmt_open(MPI_COMM_WORLD, path, AFMT_RDWR, o, &f)) != AFMT_OK)
            die(NULL, "afmt_open", rc);
        int64_t prev = -1;
        uint64_t n = 1;
        if ((rc = afmt_get_attr(f, NULL, "commit", AFMT_INT64, &n, &prev)) != AFMT_OK)
            die(f, "afmt_get_attr(commit)", rc);
        if ((uint64_t)prev != start - 1) {
            fprintf(stderr, "soak_writer: FAIL: file holds commit %lld, expected %llu\n",
                    (long long)prev, (unsigned long long)(start - 1));
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }

    soak_state st;
    soak_replay(seed, start - 1, &st, 0); /* descriptors only */
    uint8_t *buf = malloc((size_t)SOAK_MAX_EL * 8);
    if (!buf) die(f, "malloc", AFMT_ENOMEM);
    soak_op ops[SOAK_SLOTS];
    for (uint64_t k = start; k < start + ncommits; k++) {
        soak_plan(seed, k, &st, ops);
        for (int s = 0; s < SOAK_SLOTS; s++) {
            const soak_op *op = &ops[s];
            char name[16];
            snprintf(name, sizeof name, "s%d", s);
            if (op->del && (rc = afmt_delete(f, name)) != AFMT_OK) die(f, "afmt_delete", rc);
            if (op->def) {
                const soak_arr *a = &op->desc;
                uint8_t fill[8];
                soak_put(fill, a->fill, tu_dtype_size(a->t));
                if ((rc = afmt_define(f, name, a->t, a->ndim, a->shape, a->chunk, NULL, fill)) !=
                    AFMT_OK)
                    die(f, "afmt_define", rc);
            }
            if (op->write)
                write_box(f, seed, k, s, op->def ? &op->desc : &st.a[s], op->start, op->count,
                          nranks, buf);
        }
        soak_apply(seed, k, &st, ops, 0);
        int64_t kv = (int64_t)k;
        if ((rc = afmt_set_attr(f, NULL, "commit", AFMT_INT64, 1, &kv)) != AFMT_OK)
            die(f, "afmt_set_attr(commit)", rc);
        if (g_rank == 0) {
            snprintf(line, sizeof line, "C %llu\n", (unsigned long long)k);
            append_line(phfd, line, 0);
        }
        if ((rc = afmt_commit(f)) != AFMT_OK) die(f, "afmt_commit", rc);
        if (g_rank == 0) {
            snprintf(line, sizeof line, "%llu\n", (unsigned long long)k);
            append_line(mfd, line, 1);
            snprintf(line, sizeof line, "D %llu\n", (unsigned long long)k);
            append_line(phfd, line, 0);
            if (k % 50 == 0) rss_sample(rsslog, k);
        }
    }
    if (g_rank == 0) rss_sample(rsslog, start + ncommits - 1);
    free(buf);
    soak_free(&st);
    if ((rc = afmt_close(f)) != AFMT_OK) die(NULL, "afmt_close", rc);
    afmt_opts_free(o);
    if (g_rank == 0) {
        close(mfd);
        close(phfd);
    }
    MPI_Finalize();
    return 0;
}
