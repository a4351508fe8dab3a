/*
 * heat3d.c - a 3-D heat-diffusion solver that checkpoints with afmt and restarts from its
 * newest checkpoint on any rank count, bit-identical to an uninterrupted run.
 *
 *   mpiexec -n 4 heat3d --file run.afmt --steps 40 --checkpoint-every 10
 *   mpiexec -n 3 heat3d --file run.afmt --steps 60 --checkpoint-every 10 --restart
 *
 * The model: u_t = laplacian(u) on a grid of NX x NY x NZ points in lattice units (spacing
 * 1, diffusivity 1), explicit Euler with the 7-point stencil and dt = 1/8 (stable: the
 * limit is 1/6). The outermost layer of points is a wall held at T_WALL; the interior
 * starts at T_WALL plus three Gaussian hot spots. Time is step * dt, never accumulated.
 *
 * Decomposition: MPI_Dims_create + MPI_Cart_create over all 3 dimensions (--rank-grid
 * fixes some or all of the extents); each rank owns a box, split as evenly as possible
 * per dimension (so boxes do not follow the chunk boundaries of the file: the library
 * merges shared chunks at commit). One halo layer,
 * exchanged with MPI_Sendrecv between the MPI_Cart_shift neighbours before every step.
 *
 * Bit-identical restart: a point's new value depends only on itself and its 6 neighbours,
 * always in the same order of operations (see stencil() below), so the result does not
 * depend on the decomposition or on where a run was restarted. CMake builds this file
 * with -ffp-contract=off so that no compiler fuses a multiply-add differently.
 *
 * The file: array "temperature" float64 [x][y][z] (chunk shape from --chunk), file
 * attributes "step" (int64), "time" (float64), "dt" (float64), array attribute "units".
 * Every checkpoint writes the whole field (each rank its own box), sets step and time and
 * commits: one layer per checkpoint. A run always ends with a checkpoint at its last step.
 * With --async each checkpoint's commit drains in the background while the solver goes on
 * (afmt_commit_start), and the next checkpoint, or the end of the run, waits for it
 * (afmt_commit_wait): the same file, less time standing still. --async asks MPI for
 * MPI_THREAD_MULTIPLE, so that afmt's helper also compresses and agrees the layer with the
 * other ranks; --async-start keeps plain MPI_Init, and that part runs at the start.
 *
 * Checkpoint on a signal: --signal USR1 (the default; a comma list such as USR1,TERM, or
 * none) arms afmt_signal_arm for those signals. After every step every rank asks
 * afmt_signal_pending (collective: a logical OR over the ranks, so a signal that reached
 * one rank stops all of them together); if any rank got one, the run checkpoints at the
 * current step and exits 3. Slurm sends such a signal before the time limit (sbatch
 * --signal=USR1@SECONDS, see slurm/README.md). A signal that arrives during a checkpoint
 * stops the run right after that checkpoint, without a second one.
 *
 * Exit status: 0 finished (reached --steps), 3 stopped early after a checkpoint (--max-steps
 * reached or should_checkpoint_now() said so: the next job of a chain restarts), 1 error
 * (the afmt message is printed; an error while a checkpoint is half staged calls MPI_Abort
 * with 1, because closing the file would commit the partial checkpoint), 2 bad command line.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mpi.h>

#include "afmt.h"

#define EXIT_DONE    0
#define EXIT_ERROR   1
#define EXIT_USAGE   2
#define EXIT_STOPPED 3

#define ARRAY  "temperature"
#define T_WALL 300.0
#define DT     0.125 /* = diffusion number (h = 1, diffusivity 1); exact in binary */

/* Hot spots: centre (fractions of the domain), amplitude (K), width (fraction). */
static const double SPOTS[3][5] = {
    {0.30, 0.35, 0.40, 200.0, 0.10},
    {0.70, 0.60, 0.55, 150.0, 0.08},
    {0.45, 0.75, 0.25, 100.0, 0.12},
};

typedef struct {
    const char *file;
    uint64_t n[3], chunk[3];
    int rank_grid[3]; /* 0 = let MPI_Dims_create choose */
    int64_t steps, every, max_steps;
    int restart, grid_given, chunk_given, quiet, async;
    afmt_codec codec;
    int level;
    int threads;              /* --threads: afmt_opts_set_threads (0 = the library's default) */
    uint64_t keep;            /* --keep: retention after each checkpoint, 0 = off */
    int signals[8], nsignals; /* --signal: the signals that request a checkpoint */
} options;

typedef struct {
    MPI_Comm comm; /* the Cartesian communicator; everything runs on it */
    int rank, size, dims[3], coords[3], lo_nbr[3], hi_nbr[3];
    uint64_t n[3];         /* global grid */
    uint64_t start[3];     /* first global index of this rank's box */
    uint64_t count[3];     /* extent of the box */
    size_t ext[3];         /* extent with the halo: count + 2 */
    size_t ilo[3], ihi[3]; /* local indices [ilo, ihi) of the points that are updated */
    double *u, *v;         /* current and next field, with halo */
    uint64_t mshape[3];    /* u's shape (ext), for afmt_write_box / afmt_read_box */
    MPI_Datatype face_send_lo[3], face_send_hi[3], face_recv_lo[3], face_recv_hi[3];
    int have_types;
} domain;

/* ---- hooks ----------------------------------------------------------------------------- */

static int g_signals_armed = 0; /* afmt_signal_arm succeeded for every --signal */

/* Asks whether the run must checkpoint now and stop (exit 3), e.g. because Slurm announced
 * the end of the time limit with a signal. Called by every rank after every step (and
 * after every checkpoint); it gives the same answer on every rank: afmt_signal_pending is
 * collective over comm (a logical OR across ranks), so all ranks checkpoint together even
 * when the signal reached only some of them. g_signals_armed is the same on every rank
 * (arming failed or succeeded everywhere, see arm_signals). */
static int should_checkpoint_now(MPI_Comm comm) {
    if (!g_signals_armed) return 0;
    int pending = 0;
    int rc = afmt_signal_pending(comm, &pending);
    if (rc != AFMT_OK) {
        /* EINVAL/EMPI: the same on every rank (comm is valid; an MPI failure aborts under
         * the default error handler). Go on without the signal check. */
        fprintf(stderr, "heat3d: afmt_signal_pending: %s: %s\n", afmt_strerror(rc),
                afmt_errmsg(NULL));
        g_signals_armed = 0;
        return 0;
    }
    return pending;
}

/* ---- small helpers --------------------------------------------------------------------- */

static int g_rank = 0;

/* The signals --signal accepts, by name (without the SIG prefix). */
static const struct {
    const char *name;
    int signum;
} SIGNAMES[] = {{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM},
                {"INT", SIGINT},   {"HUP", SIGHUP},   {"ALRM", SIGALRM}};

static const char *signal_name(int signum) {
    for (size_t i = 0; i < sizeof SIGNAMES / sizeof SIGNAMES[0]; i++)
        if (SIGNAMES[i].signum == signum) return SIGNAMES[i].name;
    return "?";
}

/* "USR1,TERM" (an optional SIG prefix, any case) or "none" -> o->signals. */
static int parse_signals(const char *s, int *sigs, int *n) {
    *n = 0;
    if (!*s) return -1;
    if (strcmp(s, "none") == 0) return 0;
    const char *p = s;
    while (*p) {
        size_t len = strcspn(p, ",");
        char name[16];
        if (len == 0 || len >= sizeof name) return -1;
        memcpy(name, p, len);
        name[len] = '\0';
        for (size_t k = 0; k < len; k++) name[k] = (char)toupper((unsigned char)name[k]);
        const char *bare = strncmp(name, "SIG", 3) == 0 ? name + 3 : name;
        int found = 0;
        for (size_t i = 0; i < sizeof SIGNAMES / sizeof SIGNAMES[0] && !found; i++) {
            if (strcmp(SIGNAMES[i].name, bare) == 0) {
                found = 1;
                for (int k = 0; k < *n; k++) found += sigs[k] == SIGNAMES[i].signum;
                if (found == 1) {
                    if (*n >= 8) return -1;
                    sigs[(*n)++] = SIGNAMES[i].signum;
                }
            }
        }
        if (!found) return -1;
        p += len;
        if (*p == ',') {
            p++;
            if (!*p) return -1;
        }
    }
    return 0;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: mpiexec -n P heat3d [options]\n"
            "  --file PATH            checkpoint file (default heat3d.afmt)\n"
            "  --grid NXxNYxNZ        global grid (default 96x80x72; taken from the file on "
            "--restart)\n"
            "  --chunk CXxCYxCZ       chunk shape of the array (default 16x16x16; at most the "
            "grid)\n"
            "  --rank-grid PxQxR      the Cartesian rank grid, 0 = MPI_Dims_create's choice\n"
            "                         (default 0x0x0)\n"
            "  --steps N              the step to reach (default 100)\n"
            "  --checkpoint-every K   checkpoint when step %% K == 0 (default 10; 0 = only at "
            "the end)\n"
            "  --max-steps M          take at most M steps in this run, then checkpoint and "
            "exit 3\n"
            "                         (default 0 = no limit)\n"
            "  --restart              continue from the newest layer of FILE (any rank count)\n"
            "                         (without it FILE is created, replacing an old one)\n"
            "  --signal LIST          signals that make the run checkpoint at the current step "
            "and\n"
            "                         exit 3: a comma list of USR1 USR2 TERM INT HUP ALRM, or "
            "none\n"
            "                         (default USR1, what sbatch --signal=USR1@T sends)\n"
            "  --codec lz4|zstd|none  codec of new blocks (default lz4)\n"
            "  --level L              codec level (default 0 = the codec's default)\n"
            "  --threads N            afmt's compression threads per rank (default: the "
            "library's,\n"
            "                         this rank's share of the node's cores)\n"
            "  --keep K               after each checkpoint keep the K newest layers and fold\n"
            "                         the older ones (afmt_opts_set_retention; default 0: "
            "all kept)\n"
            "  --async                commit each checkpoint in the background "
            "(afmt_commit_start)\n"
            "                         and wait for it at the next one (afmt_commit_wait); "
            "asks MPI\n"
            "                         for MPI_THREAD_MULTIPLE, so that the compression and "
            "the\n"
            "                         commit's collectives run on afmt's helper thread too\n"
            "  --async-start          the same under plain MPI_Init: the commit's collective "
            "part\n"
            "                         (and the compression it waits for) at the start\n"
            "  --quiet                print only errors and the final line\n"
            "exit status: 0 finished, 3 stopped early after a checkpoint, 1 error, 2 usage\n");
}

static int parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || *s == '-') return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = (uint64_t)v;
    return 0;
}

static int parse_i64(const char *s, int64_t *out) {
    uint64_t v;
    if (parse_u64(s, &v) || v > (uint64_t)INT64_MAX) return -1;
    *out = (int64_t)v;
    return 0;
}

/* "96x80x72" -> n[3], every value >= 1 (>= 0 with zero_ok). */
static int parse_triple(const char *s, uint64_t n[3], int zero_ok) {
    if (!s) return -1;
    const char *p = s;
    for (int d = 0; d < 3; d++) {
        char *end = NULL;
        if (*p < '0' || *p > '9') return -1;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || (v == 0 && !zero_ok)) return -1;
        n[d] = (uint64_t)v;
        if (d < 2) {
            if (*end != 'x' && *end != 'X') return -1;
            p = end + 1;
        } else if (*end) {
            return -1;
        }
    }
    return 0;
}

/* Returns 0 and fills o, or EXIT_USAGE after printing why (rank 0), or -1 for --help. */
static int parse_args(int argc, char **argv, options *o) {
    *o = (options){.file = "heat3d.afmt",
                   .n = {96, 80, 72},
                   .chunk = {16, 16, 16},
                   .steps = 100,
                   .every = 10,
                   .codec = AFMT_CODEC_LZ4,
                   .signals = {SIGUSR1},
                   .nsignals = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        char key[64];
        /* --key=value or --key value */
        const char *eq = strchr(a, '=');
        if (eq && (size_t)(eq - a) < sizeof key) {
            memcpy(key, a, (size_t)(eq - a));
            key[eq - a] = '\0';
            val = eq + 1;
        } else {
            snprintf(key, sizeof key, "%s", a);
        }
        int takes = strcmp(key, "--file") == 0 || strcmp(key, "--grid") == 0 ||
                    strcmp(key, "--chunk") == 0 || strcmp(key, "--rank-grid") == 0 ||
                    strcmp(key, "--steps") == 0 || strcmp(key, "--checkpoint-every") == 0 ||
                    strcmp(key, "--max-steps") == 0 || strcmp(key, "--codec") == 0 ||
                    strcmp(key, "--level") == 0 || strcmp(key, "--signal") == 0 ||
                    strcmp(key, "--threads") == 0 || strcmp(key, "--keep") == 0;
        if (takes && !val) {
            if (i + 1 >= argc) {
                if (g_rank == 0) fprintf(stderr, "heat3d: %s needs a value\n", key);
                return EXIT_USAGE;
            }
            val = argv[++i];
        } else if (!takes && val) {
            if (g_rank == 0) fprintf(stderr, "heat3d: %s takes no value\n", key);
            return EXIT_USAGE;
        }
        int bad = 0;
        if (strcmp(key, "--help") == 0 || strcmp(key, "-h") == 0) {
            return -1;
        } else if (strcmp(key, "--file") == 0) {
            o->file = val;
            bad = !*val;
        } else if (strcmp(key, "--grid") == 0) {
            bad = parse_triple(val, o->n, 0);
            o->grid_given = 1;
        } else if (strcmp(key, "--chunk") == 0) {
            bad = parse_triple(val, o->chunk, 0);
            o->chunk_given = 1;
        } else if (strcmp(key, "--rank-grid") == 0) {
            uint64_t g[3];
            bad = parse_triple(val, g, 1) || g[0] > 65536 || g[1] > 65536 || g[2] > 65536;
            for (int d = 0; d < 3 && !bad; d++) o->rank_grid[d] = (int)g[d];
        } else if (strcmp(key, "--steps") == 0) {
            bad = parse_i64(val, &o->steps);
        } else if (strcmp(key, "--checkpoint-every") == 0) {
            bad = parse_i64(val, &o->every);
        } else if (strcmp(key, "--max-steps") == 0) {
            bad = parse_i64(val, &o->max_steps);
        } else if (strcmp(key, "--codec") == 0) {
            if (strcmp(val, "lz4") == 0)
                o->codec = AFMT_CODEC_LZ4;
            else if (strcmp(val, "zstd") == 0)
                o->codec = AFMT_CODEC_ZSTD;
            else if (strcmp(val, "none") == 0)
                o->codec = AFMT_CODEC_NONE;
            else
                bad = 1;
        } else if (strcmp(key, "--level") == 0) {
            char *end = NULL;
            long l = strtol(val, &end, 10);
            bad = *end != '\0' || !*val || l < -1000 || l > 1000;
            o->level = (int)l;
        } else if (strcmp(key, "--threads") == 0) {
            char *end = NULL;
            long t = strtol(val, &end, 10);
            bad = *end != '\0' || !*val || t < 1 || t > 1024;
            o->threads = (int)t;
        } else if (strcmp(key, "--keep") == 0) {
            char *end = NULL;
            unsigned long long k = strtoull(val, &end, 10);
            bad = *end != '\0' || *val < '0' || *val > '9' || k > 1000000;
            o->keep = (uint64_t)k;
        } else if (strcmp(key, "--signal") == 0) {
            bad = parse_signals(val, o->signals, &o->nsignals);
        } else if (strcmp(key, "--restart") == 0) {
            o->restart = 1;
        } else if (strcmp(key, "--quiet") == 0) {
            o->quiet = 1;
        } else if (strcmp(key, "--async") == 0 || strcmp(key, "--async-start") == 0) {
            o->async = 1;
        } else {
            if (g_rank == 0) fprintf(stderr, "heat3d: unknown option '%s' (see --help)\n", a);
            return EXIT_USAGE;
        }
        if (bad) {
            if (g_rank == 0) fprintf(stderr, "heat3d: bad value '%s' for %s\n", val, key);
            return EXIT_USAGE;
        }
    }
    return 0;
}

static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static const char *codec_name(afmt_codec c) {
    return c == AFMT_CODEC_LZ4 ? "lz4" : c == AFMT_CODEC_ZSTD ? "zstd" : "none";
}

/* Prints the error of an afmt call on this rank. */
static void report(const afmt_file *f, const char *what, int rc) {
    fprintf(stderr, "heat3d: rank %d: %s: %s: %s\n", g_rank, what, afmt_strerror(rc),
            afmt_errmsg(f));
    fflush(stderr);
}

/* After an INDEPENDENT call: 1 on every rank if it failed on any rank (the failing ranks
 * print their message), so that all ranks take the same path to the next collective. */
static int any_failed(MPI_Comm comm, const afmt_file *f, const char *what, int rc) {
    if (rc != AFMT_OK) report(f, what, rc);
    int mine = rc != AFMT_OK, any = 0;
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm);
    return any;
}

/* An error while a checkpoint is staged but not committed: afmt has no way to drop staged
 * writes, and afmt_close would commit them (a partial checkpoint), so stop the job. */
static void abort_staged(MPI_Comm comm, const char *what) {
    if (g_rank == 0)
        fprintf(stderr,
                "heat3d: %s failed; aborting without committing anything (the file "
                "still holds its last commit)\n",
                what);
    fflush(stderr);
    MPI_Abort(comm, EXIT_ERROR);
}

/* ---- the domain ------------------------------------------------------------------------ */

/* Part r of p of n points: [*lo, *lo + *cnt), the first n % p parts one larger. */
static void split(uint64_t n, int r, int p, uint64_t *lo, uint64_t *cnt) {
    uint64_t base = n / (uint64_t)p, extra = n % (uint64_t)p, ur = (uint64_t)r;
    *lo = ur * base + (ur < extra ? ur : extra);
    *cnt = base + (ur < extra ? 1 : 0);
}

static size_t lidx(const domain *d, size_t i, size_t j, size_t k) {
    return (i * d->ext[1] + j) * d->ext[2] + k;
}

/* Creates the Cartesian communicator over all ranks (before the grid size is known: a
 * restart opens the file on it to learn the shape). rank_grid: fixed extents, 0 = free.
 * Returns 0, or EXIT_USAGE if rank_grid does not fit the rank count. */
static int domain_comm(domain *d, const int rank_grid[3]) {
    memset(d, 0, sizeof *d);
    d->comm = MPI_COMM_NULL;
    int size, periods[3] = {0, 0, 0}, free_dims = 0;
    long long fixed = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    for (int a = 0; a < 3; a++) {
        d->dims[a] = rank_grid[a];
        if (rank_grid[a] > 0)
            fixed *= rank_grid[a];
        else
            free_dims++;
    }
    if (fixed > size || size % fixed != 0 || (free_dims == 0 && fixed != size)) {
        if (g_rank == 0)
            fprintf(stderr, "heat3d: --rank-grid %dx%dx%d does not fit %d ranks\n", rank_grid[0],
                    rank_grid[1], rank_grid[2], size);
        return EXIT_USAGE;
    }
    MPI_Dims_create(size, 3, d->dims);
    MPI_Cart_create(MPI_COMM_WORLD, 3, d->dims, periods, 1, &d->comm);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->size);
    MPI_Cart_coords(d->comm, d->rank, 3, d->coords);
    g_rank = d->rank;
    return 0;
}

/* This rank's box of the global grid n, the buffers and the face datatypes. Returns 0, or
 * EXIT_USAGE (on every rank) if the grid is too small for the rank grid. */
static int domain_box(domain *d, const uint64_t n[3]) {
    for (int a = 0; a < 3; a++) {
        if (n[a] < (uint64_t)d->dims[a] || n[a] < 3) {
            if (d->rank == 0)
                fprintf(stderr,
                        "heat3d: grid %llux%llux%llu is too small for the %dx%dx%d rank grid "
                        "(at least 3 points and one per rank in each dimension)\n",
                        (unsigned long long)n[0], (unsigned long long)n[1],
                        (unsigned long long)n[2], d->dims[0], d->dims[1], d->dims[2]);
            return EXIT_USAGE;
        }
    }
    for (int a = 0; a < 3; a++) {
        d->n[a] = n[a];
        split(n[a], d->coords[a], d->dims[a], &d->start[a], &d->count[a]);
        MPI_Cart_shift(d->comm, a, 1, &d->lo_nbr[a], &d->hi_nbr[a]);
        d->ext[a] = (size_t)d->count[a] + 2;
        /* Global index 0 and n-1 are the fixed wall: update local [ilo, ihi) only. */
        d->ilo[a] = d->start[a] == 0 ? 2 : 1;
        d->ihi[a] = (size_t)d->count[a] + (d->start[a] + d->count[a] == n[a] ? 0 : 1);
    }
    size_t total = d->ext[0] * d->ext[1] * d->ext[2];
    for (int a = 0; a < 3; a++) d->mshape[a] = d->ext[a];
    d->u = calloc(total, sizeof *d->u);
    d->v = calloc(total, sizeof *d->v);
    if (!d->u || !d->v) {
        fprintf(stderr, "heat3d: rank %d: out of memory\n", d->rank);
        MPI_Abort(MPI_COMM_WORLD, EXIT_ERROR);
    }
    /* Face a of the interior at local index pos along a: 1 point thick, interior extent
     * in the other two dimensions. */
    int sizes[3] = {(int)d->ext[0], (int)d->ext[1], (int)d->ext[2]};
    for (int a = 0; a < 3; a++) {
        int sub[3] = {(int)d->count[0], (int)d->count[1], (int)d->count[2]};
        sub[a] = 1;
        int at[4] = {1, (int)d->count[a], 0, (int)d->count[a] + 1};
        MPI_Datatype *types[4] = {&d->face_send_lo[a], &d->face_send_hi[a], &d->face_recv_lo[a],
                                  &d->face_recv_hi[a]};
        for (int t = 0; t < 4; t++) {
            int starts[3] = {1, 1, 1};
            starts[a] = at[t];
            MPI_Type_create_subarray(3, sizes, sub, starts, MPI_ORDER_C, MPI_DOUBLE, types[t]);
            MPI_Type_commit(types[t]);
        }
    }
    d->have_types = 1;
    return 0;
}

static void domain_free(domain *d) {
    if (d->have_types)
        for (int a = 0; a < 3; a++) {
            MPI_Type_free(&d->face_send_lo[a]);
            MPI_Type_free(&d->face_send_hi[a]);
            MPI_Type_free(&d->face_recv_lo[a]);
            MPI_Type_free(&d->face_recv_hi[a]);
        }
    d->have_types = 0;
    free(d->u);
    free(d->v);
    d->u = d->v = NULL;
    if (d->comm != MPI_COMM_NULL) MPI_Comm_free(&d->comm);
}

/* The initial condition at global point (i, j, k). */
static double initial_value(const uint64_t n[3], uint64_t i, uint64_t j, uint64_t k) {
    if (i == 0 || j == 0 || k == 0 || i == n[0] - 1 || j == n[1] - 1 || k == n[2] - 1)
        return T_WALL;
    double x = (double)i / (double)(n[0] - 1), y = (double)j / (double)(n[1] - 1),
           z = (double)k / (double)(n[2] - 1);
    double t = T_WALL;
    for (int s = 0; s < 3; s++) {
        double dx = x - SPOTS[s][0], dy = y - SPOTS[s][1], dz = z - SPOTS[s][2];
        double w = SPOTS[s][4];
        t += SPOTS[s][3] * exp(-(dx * dx + dy * dy + dz * dz) / (2.0 * w * w));
    }
    return t;
}

static void fill_initial(domain *d) {
    for (size_t i = 1; i <= d->count[0]; i++)
        for (size_t j = 1; j <= d->count[1]; j++)
            for (size_t k = 1; k <= d->count[2]; k++) {
                double t = initial_value(d->n, d->start[0] + i - 1, d->start[1] + j - 1,
                                         d->start[2] + k - 1);
                d->u[lidx(d, i, j, k)] = t;
                d->v[lidx(d, i, j, k)] = t; /* the walls of v are never written */
            }
}

/* The box of the checkpoint: the interior of u, past the one-cell halo. */
static const uint64_t interior[3] = {1, 1, 1};

static void halo_exchange(domain *d) {
    for (int a = 0; a < 3; a++) {
        /* my low face to the low neighbour, its low face into my high halo, and back */
        MPI_Sendrecv(d->u, 1, d->face_send_lo[a], d->lo_nbr[a], 10 + a, d->u, 1, d->face_recv_hi[a],
                     d->hi_nbr[a], 10 + a, d->comm, MPI_STATUS_IGNORE);
        MPI_Sendrecv(d->u, 1, d->face_send_hi[a], d->hi_nbr[a], 20 + a, d->u, 1, d->face_recv_lo[a],
                     d->lo_nbr[a], 20 + a, d->comm, MPI_STATUS_IGNORE);
    }
}

/* The update of one point from its value c and its 6 neighbours. The order of operations
 * is fixed here, so every decomposition (and every restart) gives the same bits. */
static inline double stencil(double c, double xm, double xp, double ym, double yp, double zm,
                             double zp) {
    double sum = ((((xm + xp) + ym) + yp) + zm) + zp;
    return c + DT * (sum - 6.0 * c);
}

/* One explicit step: v = u + dt * laplacian(u) on the points that are not walls, then
 * swap u and v. */
static void step_once(domain *d) {
    halo_exchange(d);
    const size_t sx = d->ext[1] * d->ext[2], sy = d->ext[2];
    const double *u = d->u;
    double *v = d->v;
    for (size_t i = d->ilo[0]; i < d->ihi[0]; i++)
        for (size_t j = d->ilo[1]; j < d->ihi[1]; j++) {
            size_t base = lidx(d, i, j, 0);
            for (size_t k = d->ilo[2]; k < d->ihi[2]; k++) {
                size_t c = base + k;
                v[c] =
                    stencil(u[c], u[c - sx], u[c + sx], u[c - sy], u[c + sy], u[c - 1], u[c + 1]);
            }
        }
    d->v = d->u;
    d->u = v;
}

/* ---- checkpoints ------------------------------------------------------------------------ */

typedef struct {
    int count;
    double seconds;
    long long file_bytes;
} ckpt_stats;

/* Writes the field + step/time and commits one layer. On failure, MPI_Abort (see above).
 * With --async the commit is started (afmt_commit_start) and the solver goes on while it
 * drains; the next checkpoint first waits for it (afmt_commit_wait), and so does the end
 * of the run (finish_async). cs->seconds counts what the solver waits for either way. */
static void checkpoint(domain *d, afmt_file *f, const options *o, int64_t step, ckpt_stats *cs) {
    double t0 = MPI_Wtime();
    int rc = o->async ? afmt_commit_wait(f) : AFMT_OK; /* the previous checkpoint */
    if (rc != AFMT_OK) {                               /* collective: the same code on every rank */
        report(f, "afmt_commit_wait", rc);
        abort_staged(d->comm, "the checkpoint");
    }
    double tq = MPI_Wtime();
    rc = afmt_write_box(f, ARRAY, d->start, d->count, d->mshape, interior, d->u);
    if (any_failed(d->comm, f, "afmt_write_box", rc)) abort_staged(d->comm, "the checkpoint");
    double t1 = MPI_Wtime();
    double now = (double)step * DT;
    rc = afmt_set_attr(f, NULL, "step", AFMT_INT64, 1, &step);
    if (rc == AFMT_OK) rc = afmt_set_attr(f, NULL, "time", AFMT_FLOAT64, 1, &now);
    if (rc != AFMT_OK) {
        report(f, "afmt_set_attr", rc);
        abort_staged(d->comm, "the checkpoint");
    }
    rc = o->async ? afmt_commit_start(f) : afmt_commit(f);
    if (rc != AFMT_OK) {
        report(f, o->async ? "afmt_commit_start" : "afmt_commit", rc);
        abort_staged(d->comm, "the checkpoint");
    }
    double t2 = MPI_Wtime();
    double times[3] = {tq - t0, t1 - tq, t2 - t1}, tmax[3];
    MPI_Reduce(times, tmax, 3, MPI_DOUBLE, MPI_MAX, 0, d->comm);
    uint64_t layers = 0, id = 0;
    if (afmt_layers(f, &layers) != AFMT_OK || layers == 0 ||
        afmt_layer_id(f, layers - 1, &id, NULL) != AFMT_OK)
        id = 0;
    cs->count++;
    cs->seconds += t2 - t0;
    if (d->rank == 0) {
        long long size = file_size(o->file);
        long long added = size >= 0 && cs->file_bytes >= 0 ? size - cs->file_bytes : -1;
        cs->file_bytes = size;
        double raw = (double)(d->n[0] * d->n[1] * d->n[2]) * (double)sizeof(double);
        if (o->quiet) {
        } else if (o->async) /* the size and layer are the previous checkpoint's */
            printf("checkpoint: step %6lld  time %10.4f  wait %.3f s  write %.3f s  start "
                   "%.3f s  (layer %llu durable, file %.2f MB)\n",
                   (long long)step, now, tmax[0], tmax[1], tmax[2], (unsigned long long)id,
                   (double)size / 1e6);
        else
            printf("checkpoint: step %6lld  time %10.4f  layer %3llu  write %.3f s  commit "
                   "%.3f s  +%.2f MB (raw %.2f MB, ratio %.2f)  file %.2f MB\n",
                   (long long)step, now, (unsigned long long)id, tmax[1], tmax[2],
                   (double)added / 1e6, raw / 1e6, added > 0 ? raw / (double)added : 0.0,
                   (double)size / 1e6);
        fflush(stdout);
    }
}

/* --async: the last checkpoint made durable before the run reports or stops. */
static void finish_async(domain *d, afmt_file *f, const options *o, ckpt_stats *cs) {
    if (!o->async) return;
    double t0 = MPI_Wtime();
    int rc = afmt_commit_wait(f);
    if (rc != AFMT_OK) {
        report(f, "afmt_commit_wait", rc);
        abort_staged(d->comm, "the last checkpoint");
    }
    cs->seconds += MPI_Wtime() - t0;
}

/* ---- main ------------------------------------------------------------------------------- */

/* Opens FILE on d->comm for a restart: the grid from the file, the step from its
 * attributes. Returns 0, or an exit status (the file is then closed). */
static int open_restart(domain *d, const options *o, const afmt_opts *opts, afmt_file **fp,
                        uint64_t n[3], int64_t *step) {
    afmt_file *f = NULL;
    int rc = afmt_open(d->comm, o->file, AFMT_RDWR, opts, &f);
    if (rc != AFMT_OK) {
        if (d->rank == 0) report(NULL, "afmt_open (restart)", rc);
        return EXIT_ERROR;
    }
    /* All INDEPENDENT calls on metadata every rank holds: the same outcome everywhere. */
    afmt_info info;
    uint64_t nlayers = 0, cnt = 1;
    double now = -1.0;
    rc = afmt_layers(f, &nlayers);
    if (rc == AFMT_OK && nlayers == 0) {
        if (d->rank == 0)
            fprintf(stderr, "heat3d: %s has no committed checkpoint to restart from\n", o->file);
        afmt_close(f);
        return EXIT_ERROR;
    }
    if (rc == AFMT_OK) rc = afmt_inquire(f, ARRAY, &info);
    if (rc == AFMT_OK) rc = afmt_get_attr(f, NULL, "step", AFMT_INT64, &cnt, step);
    cnt = 1;
    if (rc == AFMT_OK) rc = afmt_get_attr(f, NULL, "time", AFMT_FLOAT64, &cnt, &now);
    if (rc != AFMT_OK) {
        if (d->rank == 0) report(f, "reading the checkpoint's descriptor", rc);
        afmt_close(f);
        return EXIT_ERROR;
    }
    int status = 0;
    if (info.dtype != AFMT_FLOAT64 || info.ndim != 3 || *step < 0) {
        if (d->rank == 0)
            fprintf(stderr, "heat3d: %s: '" ARRAY "' is not a 3-D float64 field\n", o->file);
        status = EXIT_ERROR;
    } else if (o->grid_given &&
               (info.shape[0] != o->n[0] || info.shape[1] != o->n[1] || info.shape[2] != o->n[2])) {
        if (d->rank == 0)
            fprintf(stderr,
                    "heat3d: --grid %llux%llux%llu differs from the checkpoint's "
                    "%llux%llux%llu\n",
                    (unsigned long long)o->n[0], (unsigned long long)o->n[1],
                    (unsigned long long)o->n[2], (unsigned long long)info.shape[0],
                    (unsigned long long)info.shape[1], (unsigned long long)info.shape[2]);
        status = EXIT_USAGE;
    }
    if (status != 0) {
        afmt_close(f);
        return status;
    }
    if (d->rank == 0 && now != (double)*step * DT)
        fprintf(stderr, "heat3d: note: the checkpoint's time %.17g is not step * dt = %.17g\n", now,
                (double)*step * DT);
    if (d->rank == 0 && o->chunk_given &&
        (info.chunk[0] != o->chunk[0] || info.chunk[1] != o->chunk[1] ||
         info.chunk[2] != o->chunk[2]))
        fprintf(stderr,
                "heat3d: note: --chunk ignored on restart; the file's chunks are "
                "%llux%llux%llu\n",
                (unsigned long long)info.chunk[0], (unsigned long long)info.chunk[1],
                (unsigned long long)info.chunk[2]);
    for (int a = 0; a < 3; a++) n[a] = info.shape[a];
    *fp = f;
    return 0;
}

/* Creates FILE on d->comm and defines the array. Returns 0 or an exit status. */
static int create_file(domain *d, const options *o, const afmt_opts *opts, afmt_file **fp) {
    afmt_file *f = NULL;
    int rc = afmt_create(d->comm, o->file, AFMT_TRUNC, opts, &f);
    if (rc != AFMT_OK) {
        if (d->rank == 0) report(NULL, "afmt_create", rc);
        return EXIT_ERROR;
    }
    const char *const names[3] = {"x", "y", "z"};
    double dt = DT;
    uint64_t chunk[3]; /* a chunk is at most the grid */
    for (int a = 0; a < 3; a++) chunk[a] = o->chunk[a] < o->n[a] ? o->chunk[a] : o->n[a];
    rc = afmt_define(f, ARRAY, AFMT_FLOAT64, 3, o->n, chunk, names, NULL);
    if (rc == AFMT_OK) rc = afmt_set_attr(f, NULL, "dt", AFMT_FLOAT64, 1, &dt);
    if (rc == AFMT_OK) rc = afmt_set_attr(f, ARRAY, "units", AFMT_UINT8, 1, "K");
    if (rc != AFMT_OK) {
        if (d->rank == 0) report(f, "defining the checkpoint", rc);
        abort_staged(d->comm, "defining the array"); /* afmt_close would commit it */
    }
    *fp = f;
    return 0;
}

/* Arms afmt_signal_arm for every --signal on every rank. Returns 1 if that worked on all
 * ranks (then should_checkpoint_now polls), else 0 everywhere, after a message. */
static int arm_signals(const domain *d, const options *o) {
    int ok = 1;
    for (int i = 0; i < o->nsignals && ok; i++) {
        int rc = afmt_signal_arm(o->signals[i]);
        if (rc != AFMT_OK) {
            fprintf(stderr, "heat3d: rank %d: afmt_signal_arm(SIG%s): %s: %s\n", d->rank,
                    signal_name(o->signals[i]), afmt_strerror(rc), afmt_errmsg(NULL));
            ok = 0;
        }
    }
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, d->comm);
    if (!all && d->rank == 0 && o->nsignals > 0)
        fprintf(stderr, "heat3d: warning: no checkpoint on a signal in this run\n");
    return all && o->nsignals > 0;
}

static int run(const options *o) {
    double t_start = MPI_Wtime();
    domain d;
    if (domain_comm(&d, o->rank_grid) != 0) return EXIT_USAGE;
    /* Early, so that a warning signal during the restart's read is not lost. */
    g_signals_armed = arm_signals(&d, o);

    afmt_opts *opts = NULL;
    int rc = afmt_opts_create(&opts);
    if (rc == AFMT_OK) rc = afmt_opts_set_codec(opts, o->codec, o->level);
    if (rc == AFMT_OK) rc = afmt_opts_set_shuffle(opts, 1);
    if (rc == AFMT_OK && o->threads > 0) rc = afmt_opts_set_threads(opts, o->threads);
    /* Retention: every commit (and the wait of an asynchronous one) folds all but the
     * newest K layers once there are more than K + 1; the commit is durable first. */
    if (rc == AFMT_OK && o->keep) rc = afmt_opts_set_retention(opts, o->keep, 0.0);
    if (rc != AFMT_OK) {
        if (d.rank == 0) report(NULL, "afmt options", rc);
        afmt_opts_free(opts);
        domain_free(&d);
        return EXIT_ERROR;
    }

    uint64_t n[3] = {o->n[0], o->n[1], o->n[2]};
    int64_t step = 0;
    afmt_file *f = NULL;
    int status;
    if (o->restart) { /* the grid comes from the file */
        status = open_restart(&d, o, opts, &f, n, &step);
        if (status == 0 && (status = domain_box(&d, n)) != 0) afmt_close(f);
    } else {
        status = domain_box(&d, n);
        if (status == 0) status = create_file(&d, o, opts, &f);
    }
    afmt_opts_free(opts);
    if (status != 0) {
        domain_free(&d);
        return status;
    }

    ckpt_stats cs = {0, 0.0, 0};
    if (d.rank == 0) cs.file_bytes = file_size(o->file);
    if (o->restart) {
        double t0 = MPI_Wtime();
        rc = afmt_read_box(f, ARRAY, d.start, d.count, d.mshape, interior, d.u);
        if (any_failed(d.comm, f, "afmt_read_box", rc)) {
            afmt_close(f); /* nothing staged: no layer is written */
            domain_free(&d);
            return EXIT_ERROR;
        }
        /* v holds the walls too (they are never updated): the same values as u. */
        memcpy(d.v, d.u, d.ext[0] * d.ext[1] * d.ext[2] * sizeof *d.v);
        double tr = MPI_Wtime() - t0, trmax = 0.0;
        MPI_Reduce(&tr, &trmax, 1, MPI_DOUBLE, MPI_MAX, 0, d.comm);
        if (d.rank == 0 && !o->quiet)
            printf("heat3d: restart from %s at step %lld (time %.4f), read in %.3f s\n", o->file,
                   (long long)step, (double)step * DT, trmax);
    } else {
        fill_initial(&d);
    }

    if (d.rank == 0 && !o->quiet) {
        printf("heat3d: %d ranks as %dx%dx%d, grid %llux%llux%llu, rank 0 box %llux%llux%llu, "
               "codec %s, steps %lld -> %lld, checkpoint every %lld%s\n",
               d.size, d.dims[0], d.dims[1], d.dims[2], (unsigned long long)n[0],
               (unsigned long long)n[1], (unsigned long long)n[2], (unsigned long long)d.count[0],
               (unsigned long long)d.count[1], (unsigned long long)d.count[2], codec_name(o->codec),
               (long long)step, (long long)o->steps, (long long)o->every,
               o->every ? "" : " (only at the end)");
        if (g_signals_armed) {
            printf("heat3d: a checkpoint and exit 3 on SIG%s", signal_name(o->signals[0]));
            for (int i = 1; i < o->nsignals; i++) printf(", SIG%s", signal_name(o->signals[i]));
            printf("\n");
        }
        fflush(stdout);
    }

    status = EXIT_DONE;
    if (step >= o->steps && o->restart) {
        if (d.rank == 0 && !o->quiet)
            printf("heat3d: the checkpoint is at step %lld >= %lld: nothing to do\n",
                   (long long)step, (long long)o->steps);
    } else if (step >= o->steps) {
        checkpoint(&d, f, o, step, &cs); /* --steps 0: the initial condition */
    } else {
        int64_t taken = 0;
        double t_compute = 0.0;
        while (step < o->steps) {
            double t0 = MPI_Wtime();
            step_once(&d);
            t_compute += MPI_Wtime() - t0;
            step++;
            taken++;
            int by_signal = should_checkpoint_now(d.comm);
            int stop = by_signal || (o->max_steps > 0 && taken >= o->max_steps && step < o->steps);
            if ((o->every > 0 && step % o->every == 0) || step == o->steps || stop) {
                checkpoint(&d, f, o, step, &cs);
                /* A signal during that checkpoint: it already holds this step. */
                if (!stop && step < o->steps) stop = by_signal = should_checkpoint_now(d.comm);
            }
            if (stop && step < o->steps) {
                status = EXIT_STOPPED;
                if (d.rank == 0 && !o->quiet)
                    printf("heat3d: stopping early at step %lld of %lld (%s; checkpointed; "
                           "continue with --restart)\n",
                           (long long)step, (long long)o->steps,
                           by_signal ? "a signal asked for it" : "--max-steps");
                break;
            }
        }
        double tmax = 0.0;
        MPI_Reduce(&t_compute, &tmax, 1, MPI_DOUBLE, MPI_MAX, 0, d.comm);
        if (d.rank == 0 && !o->quiet)
            printf("heat3d: %lld steps in %.3f s of compute (%.1f Mpoint-updates/s)\n",
                   (long long)taken, tmax,
                   tmax > 0 ? (double)taken * (double)(n[0] * n[1] * n[2]) / tmax / 1e6 : 0.0);
    }

    finish_async(&d, f, o, &cs);
    uint64_t layers = 0;
    if (afmt_layers(f, &layers) != AFMT_OK) layers = 0;
    rc = afmt_close(f); /* nothing staged: every checkpoint was committed */
    if (rc != AFMT_OK) {
        if (d.rank == 0) report(NULL, "afmt_close", rc);
        status = EXIT_ERROR;
    }
    double total = MPI_Wtime() - t_start;
    if (d.rank == 0) {
        printf("heat3d: %s at step %lld (time %.4f): %d checkpoints (%.3f s), %llu layers in %s, "
               "%.3f s in all, exit %d\n",
               status == EXIT_STOPPED ? "stopped"
               : status == EXIT_DONE  ? "done"
                                      : "failed",
               (long long)step, (double)step * DT, cs.count, cs.seconds, (unsigned long long)layers,
               o->file, total, status);
        fflush(stdout);
    }
    domain_free(&d);
    return status;
}

int main(int argc, char **argv) {
    /* --async asks for MPI_THREAD_MULTIPLE: afmt_commit_start then hands the commit's
     * collective part to its helper thread (api.md); the solver calls MPI from its own
     * thread only, as before. */
    int mt = 0, got = MPI_THREAD_SINGLE;
    for (int i = 1; i < argc; i++) mt |= strcmp(argv[i], "--async") == 0;
    if (mt)
        MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &got);
    else
        MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    options o;
    int rc = parse_args(argc, argv, &o);
    if (rc == -1) {
        if (g_rank == 0) usage(stdout);
        rc = 0;
    } else if (rc == 0) {
        rc = run(&o);
    }
    MPI_Finalize();
    return rc;
}
